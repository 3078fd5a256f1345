// SPDX-License-Identifier: MIT
// k6-newconn.js — the original service's k6 pattern: every iteration
// connects, authorizes one payment and closes, so each payment pays for a
// TCP connection, the HTTP/2 handshake and (in paymentd) handing the
// connection to a worker. Compare with k6-payments.js to see that cost;
// paymentd-loadgen --scenario newconn measures the same thing.
//
//   k6 run -e PROFILE=smoke|load|stress [-e TARGET=host:port]
//          [-e ACCOUNTS=10000 -e PREFIX=lg-] load-tests/k6-newconn.js
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import * as common from './k6-common.js';

const client = new grpc.Client();
client.load(['../proto'], 'payment/v1/payment.proto');

// A connection per call is slower than a kept one: the budget is wider.
export const options = common.options({
  grpc_req_duration: ['p(95)<250'],
});

export function setup() {
  return { runId: common.newRunId() };
}

export default function (data) {
  client.connect(common.TARGET, { plaintext: true, timeout: '5s' });
  const [payer, payee] = common.uniformPair();
  const res = client.invoke('payment.v1.PaymentService/AuthorizePayment', {
    idempotency_key: common.idempotencyKey(data.runId),
    payer_account_id: payer,
    payee_account_id: payee,
    amount_cents: 1 + Math.floor(Math.random() * 1000),
    currency: common.CURRENCY,
    description: 'k6 new connection',
  }, { timeout: '5s' });
  check(res, {
    'status is OK': (r) => r && r.status === grpc.StatusOK,
    'payment authorized': (r) => r && r.message && r.message.status === 'PAYMENT_STATUS_AUTHORIZED',
  });
  client.close();
}
