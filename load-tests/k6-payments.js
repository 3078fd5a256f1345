// SPDX-License-Identifier: MIT
// k6-payments.js — AuthorizePayment load against paymentd.
//
//   k6 run -e PROFILE=smoke|load|stress [-e SCENARIO=uniform|hot]
//          [-e TARGET=host:port] [-e ACCOUNTS=10000 -e PREFIX=lg-] load-tests/k6-payments.js
//
// Each VU opens one connection on its first iteration and keeps it (one
// paymentd worker per VU), like paymentd-loadgen --connections = VUs. Every
// call uses a fresh idempotency key, so every call is a new payment; the
// checks require gRPC OK and PAYMENT_STATUS_AUTHORIZED (accounts are
// funded, so a decline means something is wrong).
import grpc from 'k6/net/grpc';
import { check, fail } from 'k6';
import { Counter } from 'k6/metrics';
import * as common from './k6-common.js';

const client = new grpc.Client();
client.load(['../proto'], 'payment/v1/payment.proto', 'grpc/health/v1/health.proto');

const SCENARIO = __ENV.SCENARIO || 'uniform';
const authorized = new Counter('payments_authorized');
const declined = new Counter('payments_declined');

export const options = common.options({
  // Business declines are OK responses: hold them to zero separately.
  payments_declined: ['count==0'],
});

export function setup() {
  client.connect(common.TARGET, { plaintext: true, timeout: '5s' });
  const h = client.invoke('grpc.health.v1.Health/Check', { service: 'payment.v1.PaymentService' });
  if (!h || h.status !== grpc.StatusOK || h.message.status !== 'SERVING') {
    fail(`paymentd at ${common.TARGET} is not SERVING: ${h && h.error ? h.error.message : 'no answer'}`);
  }
  client.close();
  return { runId: common.newRunId() };
}

export default function (data) {
  if (__ITER === 0) {
    client.connect(common.TARGET, { plaintext: true, timeout: '5s' });
  }
  const [payer, payee] = SCENARIO === 'hot' ? common.hotPair() : common.uniformPair();
  const res = client.invoke('payment.v1.PaymentService/AuthorizePayment', {
    idempotency_key: common.idempotencyKey(data.runId),
    payer_account_id: payer,
    payee_account_id: payee,
    amount_cents: 1 + Math.floor(Math.random() * 1000),
    currency: common.CURRENCY,
    description: 'k6 load test',
  }, { timeout: '5s', tags: { scenario_kind: SCENARIO } });
  const ok = check(res, {
    'status is OK': (r) => r && r.status === grpc.StatusOK,
    'payment authorized': (r) => r && r.message && r.message.status === 'PAYMENT_STATUS_AUTHORIZED',
    'has payment id': (r) => r && r.message && typeof r.message.paymentId === 'string' && r.message.paymentId.length === 26,
  });
  if (res && res.message && res.message.status === 'PAYMENT_STATUS_AUTHORIZED') {
    authorized.add(1);
  } else if (res && res.message && res.message.status === 'PAYMENT_STATUS_DECLINED') {
    declined.add(1, { code: res.message.error ? res.message.error.code : 'none' });
  }
  return ok;
}
