// SPDX-License-Identifier: MIT
// k6-balance.js — GetAccountBalance load against paymentd (read path).
//
//   k6 run -e PROFILE=smoke|load|stress [-e TARGET=host:port]
//          [-e ACCOUNTS=10000 -e PREFIX=lg-] load-tests/k6-balance.js
//
// One connection per VU, kept for the whole test. Checks: gRPC OK, the
// answer names the account asked for, and its currency is set.
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import * as common from './k6-common.js';

const client = new grpc.Client();
client.load(['../proto'], 'payment/v1/payment.proto');

export const options = common.options();

export default function () {
  if (__ITER === 0) {
    client.connect(common.TARGET, { plaintext: true, timeout: '5s' });
  }
  const account = common.randomAccount();
  const res = client.invoke('payment.v1.PaymentService/GetAccountBalance', { account_id: account },
    { timeout: '5s' });
  check(res, {
    'status is OK': (r) => r && r.status === grpc.StatusOK,
    'right account': (r) => r && r.message && r.message.accountId === account,
    'has currency': (r) => r && r.message && r.message.currency === common.CURRENCY,
  });
}
