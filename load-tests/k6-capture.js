// SPDX-License-Identifier: MIT
// k6-capture.js — authorize+capture load against paymentd: the same work as
// `paymentd-loadgen --scenario capture`.
//
//   k6 run -e PROFILE=smoke|load|stress [-e TARGET=host:port]
//          [-e ACCOUNTS=10000 -e PREFIX=lg-] load-tests/k6-capture.js
//
// Each iteration is one pair: a MANUAL AuthorizePayment (a hold on the
// payer, uniform accounts as in k6-payments.js), then CapturePayment of all
// of that payment's hold, on the same connection (each VU keeps one, so one
// paymentd worker serves both calls). The capture's idempotency key is the
// authorization's with "-capture", so a retried iteration retries both with
// their own keys. Checks: both calls gRPC OK, the payment AUTHORIZED and
// then CAPTURED for its whole amount. Trends: pair_duration (the whole
// iteration), authorize_duration and capture_duration (each call's own;
// grpc_req_duration mixes the two). An iteration whose authorization fails
// or declines makes no capture; declines and refused captures are held to
// zero by thresholds (the accounts are funded: either means a bug).
import grpc from 'k6/net/grpc';
import { check, fail } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import * as common from './k6-common.js';

const client = new grpc.Client();
client.load(['../proto'], 'payment/v1/payment.proto', 'grpc/health/v1/health.proto');

const pairDuration = new Trend('pair_duration', true);
const authorizeDuration = new Trend('authorize_duration', true);
const captureDuration = new Trend('capture_duration', true);
const captured = new Counter('payments_captured');
const declined = new Counter('payments_declined');
const refused = new Counter('captures_refused');

export const options = common.options({
  payments_declined: ['count==0'],
  captures_refused: ['count==0'],
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
  const [payer, payee] = common.uniformPair();
  const key = common.idempotencyKey(data.runId);
  const amount = 1 + Math.floor(Math.random() * 1000);
  const t0 = Date.now();
  const auth = client.invoke('payment.v1.PaymentService/AuthorizePayment', {
    idempotency_key: key,
    payer_account_id: payer,
    payee_account_id: payee,
    amount_cents: amount,
    currency: common.CURRENCY,
    description: 'k6 capture load test',
    capture_method: 'CAPTURE_METHOD_MANUAL',
  }, { timeout: '5s', tags: { call: 'authorize' } });
  const t1 = Date.now();
  authorizeDuration.add(t1 - t0);
  const held = check(auth, {
    'authorize status is OK': (r) => r && r.status === grpc.StatusOK,
    'payment authorized (held)': (r) => r && r.message && r.message.status === 'PAYMENT_STATUS_AUTHORIZED',
    'has payment id': (r) => r && r.message && typeof r.message.paymentId === 'string' && r.message.paymentId.length === 26,
  });
  if (auth && auth.message && auth.message.status === 'PAYMENT_STATUS_DECLINED') {
    declined.add(1, { code: auth.message.error ? auth.message.error.code : 'none' });
  }
  if (!held) {
    return false;
  }
  const cap = client.invoke('payment.v1.PaymentService/CapturePayment', {
    idempotency_key: `${key}-capture`,
    payment_id: auth.message.paymentId,
    amount_cents: 0,
  }, { timeout: '5s', tags: { call: 'capture' } });
  const t2 = Date.now();
  captureDuration.add(t2 - t1);
  pairDuration.add(t2 - t0);
  const ok = check(cap, {
    'capture status is OK': (r) => r && r.status === grpc.StatusOK,
    'capture not refused': (r) => r && r.message && !r.message.error,
    'payment captured in full': (r) => r && r.message && r.message.payment &&
      r.message.payment.status === 'PAYMENT_STATUS_CAPTURED' &&
      String(r.message.payment.capturedAmountCents) === String(amount),
  });
  if (cap && cap.message && cap.message.error) {
    refused.add(1, { code: cap.message.error.code });
  } else if (ok) {
    captured.add(1);
  }
  return ok;
}
