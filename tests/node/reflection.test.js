// SPDX-License-Identifier: MIT
// Reflection, health and contract tests with independent clients
// (@grpc/grpc-js + grpc-js-reflection-client): no .proto file is loaded,
// everything comes from paymentd's reflection service, as with grpcurl.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

const target = process.env.PAYMENTD_TARGET;
if (!target) throw new Error('PAYMENTD_TARGET must be set (tests/run-all sets it)');
const runId = `node${Date.now()}`;
const creds = grpc.credentials.createInsecure();
const SERVICES = [
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
  'payment.v1.AccountService',
  'payment.v1.PaymentService',
];

async function packageFor(version, symbol) {
  const r = new GrpcReflection(target, creds, {}, version);
  const d = await r.getDescriptorBySymbol(symbol);
  return d.getPackageObject({ keepCase: true, enums: String, longs: String, defaults: true });
}

const unary = (client, method, req, md = new grpc.Metadata()) =>
  new Promise((resolve, reject) => {
    client[method](req, md, (err, res) => (err ? reject(err) : resolve(res)));
  });

for (const version of ['v1', 'v1alpha']) {
  test(`${version}: list_services names every service`, async () => {
    const r = new GrpcReflection(target, creds, {}, version);
    const services = (await r.listServices()).sort();
    assert.deepStrictEqual(services, SERVICES);
  });

  test(`${version}: describe payment.v1.PaymentService`, async () => {
    const r = new GrpcReflection(target, creds, {}, version);
    const methods = (await r.listMethods('payment.v1.PaymentService')).map((m) => m.name).sort();
    assert.deepStrictEqual(methods, ['AuthorizePayment', 'CapturePayment', 'GetAccountBalance',
      'GetPayment', 'ListAccountEntries', 'ListPayments', 'RefundPayment', 'VoidPayment']);
  });

  test(`${version}: describe payment.v1.AccountService`, async () => {
    const r = new GrpcReflection(target, creds, {}, version);
    const methods = (await r.listMethods('payment.v1.AccountService')).map((m) => m.name).sort();
    assert.deepStrictEqual(methods, ['CreateAccount', 'GetAccount', 'UpdateAccountStatus']);
  });

  test(`${version}: file_by_filename returns the file`, async () => {
    const r = new GrpcReflection(target, creds, {}, version);
    const d = await r.getDescriptorByFileName('payment/v1/payment.proto');
    const pkg = d.getPackageObject({ keepCase: true });
    assert.ok(pkg.payment.v1.PaymentService, 'PaymentService in descriptor');
  });

  test(`${version}: unknown symbol is an error`, async () => {
    const r = new GrpcReflection(target, creds, {}, version);
    await assert.rejects(r.getDescriptorBySymbol('no.such.Thing'));
  });
}

test('payments invoked through reflection alone', async () => {
  const pkg = await packageFor('v1', 'payment.v1.PaymentService');
  const client = new pkg.payment.v1.PaymentService(target, creds);
  const md = new grpc.Metadata();
  md.set('x-correlation-id', `${runId}-corr`);
  const req = {
    idempotency_key: `${runId}-k1`, payer_account_id: 'acc-payer-001',
    payee_account_id: 'acc-payee-002', amount_cents: 1, currency: 'USD', description: 'node',
  };
  const a = await unary(client, 'AuthorizePayment', req, md);
  assert.strictEqual(a.status, 'PAYMENT_STATUS_AUTHORIZED');
  assert.match(a.payment_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.match(a.processed_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const b = await unary(client, 'AuthorizePayment', req);
  assert.strictEqual(b.status, 'PAYMENT_STATUS_DUPLICATE');
  assert.strictEqual(b.payment_id, a.payment_id);
  const g = await unary(client, 'GetPayment', { payment_id: a.payment_id });
  assert.strictEqual(g.payment.amount_cents, '1');
  assert.strictEqual(g.payment.status, 'PAYMENT_STATUS_AUTHORIZED');
  const bal = await unary(client, 'GetAccountBalance', { account_id: 'acc-payee-002' });
  assert.strictEqual(bal.currency, 'USD');
  await assert.rejects(unary(client, 'AuthorizePayment', { ...req, idempotency_key: '' }),
    (e) => e.code === grpc.status.INVALID_ARGUMENT && /idempotency_key/.test(e.details));
  client.close();
});

test('hold, partial capture and refunds on one channel (grpc-js, reflection alone)', async () => {
  const pkg = await packageFor('v1', 'payment.v1.PaymentService');
  const client = new pkg.payment.v1.PaymentService(target, creds);
  const a = await unary(client, 'AuthorizePayment', {
    idempotency_key: `${runId}-hold`, payer_account_id: 'acc-payer-001',
    payee_account_id: 'acc-payee-002', amount_cents: 900, currency: 'USD',
    capture_method: 'CAPTURE_METHOD_MANUAL', hold_ttl_seconds: 600,
    // grpc-js-reflection-client builds its types from the descriptors
    // without protobufjs' map support, so a map field is its wire form:
    // repeated {key, value} entries (grpcurl shows the same bytes as a map).
    metadata: [{ key: 'order', value: runId }],
  });
  assert.strictEqual(a.status, 'PAYMENT_STATUS_AUTHORIZED');
  // Calls multiplexed on the channel: a capture and a void race, exactly one wins.
  const [cap, vo] = await Promise.all([
    unary(client, 'CapturePayment', { idempotency_key: `${runId}-cap`, payment_id: a.payment_id, amount_cents: 600 }),
    unary(client, 'VoidPayment', { idempotency_key: `${runId}-void`, payment_id: a.payment_id }),
  ]);
  const captured = cap.payment.status === 'PAYMENT_STATUS_CAPTURED' && !cap.error;
  const voided = vo.payment.status === 'PAYMENT_STATUS_VOIDED' && !vo.error;
  assert.ok(captured !== voided, `one of capture/void wins: ${JSON.stringify([cap, vo])}`);
  const loser = captured ? vo : cap;
  assert.strictEqual(loser.error.code, 'PAYMENT_ERROR_CODE_INVALID_STATE');
  if (captured) {
    assert.strictEqual(cap.payment.captured_amount_cents, '600');
    assert.deepStrictEqual(cap.payment.metadata.map((e) => [e.key, e.value]), [['order', runId]]);
    const r1 = await unary(client, 'RefundPayment', { idempotency_key: `${runId}-r1`, payment_id: a.payment_id, amount_cents: 400 });
    assert.strictEqual(r1.payment.refunded_amount_cents, '400');
    const again = await unary(client, 'RefundPayment', { idempotency_key: `${runId}-r1`, payment_id: a.payment_id, amount_cents: 400 });
    assert.strictEqual(again.replayed, true);
    assert.strictEqual(again.refund.refund_id, r1.refund.refund_id);
    const r2 = await unary(client, 'RefundPayment', { idempotency_key: `${runId}-r2`, payment_id: a.payment_id, amount_cents: 300 });
    assert.strictEqual(r2.error.code, 'PAYMENT_ERROR_CODE_AMOUNT_EXCEEDS_REMAINING');
  }
  const list = await unary(client, 'ListPayments', { account_id: 'acc-payer-001', page_size: 5 });
  assert.ok(list.payments.some((p) => p.payment_id === a.payment_id), 'ListPayments names the payment');
  client.close();
});

test('health Check and Watch', async () => {
  const pkg = await packageFor('v1', 'grpc.health.v1.Health');
  const client = new pkg.grpc.health.v1.Health(target, creds);
  const c = await unary(client, 'Check', { service: '' });
  assert.strictEqual(c.status, 'SERVING');
  const first = await new Promise((resolve, reject) => {
    const call = client.Watch({ service: 'payment.v1.PaymentService' });
    call.on('data', (m) => { resolve(m.status); call.cancel(); });
    call.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
  });
  assert.strictEqual(first, 'SERVING');
  const unknown = await new Promise((resolve, reject) => {
    const call = client.Watch({ service: 'no.such.Service' });
    call.on('data', (m) => { resolve(m.status); call.cancel(); });
    call.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
  });
  assert.strictEqual(unknown, 'SERVICE_UNKNOWN');
  client.close();
});
