// SPDX-License-Identifier: MIT
// Identity on paymentd's gRPC port seen by an independent client,
// @grpc/grpc-js: a bearer token (as call credentials combined with the TLS
// channel credentials, or as plain call metadata) and a client certificate
// both authorize payments, as the client they belong to (checked in the
// database with psql); without either the call is UNAUTHENTICATED; and on
// a connection that stays open, a revoked client is refused at its very
// next AuthorizePayment while a rotated token stops working within
// AUTH_CACHE_SECONDS. Driven by tests/suites/51-node-tls (phase auth), which
// starts paymentd with TLS=on, TLS_CLIENT_AUTH=request, AUTH_MODE=any and
// sets:
//   AUTH_TARGET   127.0.0.1:PORT
//   AUTH_CERTS    the scripts/gen-certs directory (client.pem is client dev)
//   AUTH_CLIENT, AUTH_TOKEN                 a client with can_debit and
//                                           can_read on acc-payer-001
//   AUTH_REVOKE_CLIENT, AUTH_REVOKE_TOKEN   another such client (revoked here)
//   AUTH_ROTATE_CLIENT, AUTH_ROTATE_TOKEN   another such client (rotated here)
//   PAYMENTD_BIN  the paymentd binary (for `paymentd client ...`); psql and
//                 `paymentd client` reach the database through PG* and
//                 DATABASE_URL
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const env = process.env;
for (const k of ['AUTH_TARGET', 'AUTH_CERTS', 'AUTH_CLIENT', 'AUTH_TOKEN', 'AUTH_REVOKE_CLIENT', 'AUTH_REVOKE_TOKEN',
  'AUTH_ROTATE_CLIENT', 'AUTH_ROTATE_TOKEN', 'PAYMENTD_BIN']) {
  if (!env[k]) throw new Error(`${k} must be set (tests/suites/51-node-tls)`);
}
const target = env.AUTH_TARGET;
const DEADLINE_MS = 5000;
const runId = `nodeauth${process.pid}x${Date.now()}`;
const PAYER = 'acc-payer-001';
const PAYEE = 'acc-payee-002';

const protoRoot = path.join(__dirname, '..', '..', 'proto');
const pkgDef = protoLoader.loadSync(['payment/v1/payment.proto', 'grpc/health/v1/health.proto'], {
  includeDirs: [protoRoot], keepCase: true, enums: String, longs: String, defaults: true,
});
const pkg = grpc.loadPackageDefinition(pkgDef);
const file = (name) => fs.readFileSync(path.join(env.AUTH_CERTS, name));

// One psql value (the stack's database, from PG*).
function sql(query) {
  return execFileSync('psql', ['-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' }).trim();
}
// Who owns payment ID, and the client_name of its outbox row: "NAME NAME".
function ownerOf(id) {
  return sql(`SELECT c.name || ' ' || o.client_name FROM payments p JOIN clients c USING (client_id)
                JOIN outbox o ON o.aggregate_id = p.payment_id WHERE p.payment_id = '${id}'`);
}
const rowsOfKey = (key) => sql(`SELECT count(*) FROM payments WHERE idempotency_key = '${key}'`);
function paymentdClient(...args) {
  return execFileSync(env.PAYMENTD_BIN, ['client', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const tlsOnly = () => grpc.credentials.createSsl(file('ca.pem'));
const withCert = (name) => grpc.credentials.createSsl(file('ca.pem'), file(`${name}.key`), file(`${name}.pem`));
// TLS channel credentials that add "authorization: Bearer TOKEN" to every
// call (token() is asked at each call, so a test can change it).
function withToken(token) {
  const callCreds = grpc.credentials.createFromMetadataGenerator((_params, cb) => {
    const md = new grpc.Metadata();
    md.add('authorization', `Bearer ${token()}`);
    cb(null, md);
  });
  return grpc.credentials.combineChannelCredentials(tlsOnly(), callCreds);
}

function unary(client, method, req, md = new grpc.Metadata()) {
  return new Promise((resolve, reject) => {
    client[method](req, md, { deadline: Date.now() + DEADLINE_MS }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
const authorize = (client, key, md) => unary(client, 'AuthorizePayment', {
  idempotency_key: key, payer_account_id: PAYER, payee_account_id: PAYEE, amount_cents: 1, currency: 'USD',
  description: 'node auth',
}, md);
const bearer = (token) => {
  const md = new grpc.Metadata();
  md.add('authorization', `Bearer ${token}`);
  return md;
};
// rejects(promise, CODE, fragment): the call fails with that status and a
// message containing fragment.
async function rejects(p, code, fragment) {
  await assert.rejects(p, (e) => {
    assert.strictEqual(grpc.status[e.code], code, `code ${grpc.status[e.code]}: ${e.details}`);
    assert.ok(e.details.includes(fragment), `message "${e.details}" lacks "${fragment}"`);
    return true;
  });
}
const payments = (c) => new pkg.payment.v1.PaymentService(target, c);

// A payment that must be AUTHORIZED and belong to OWNER (payments.client_id
// and the outbox row's client_name), then readable with GetPayment.
async function paysAs(client, key, owner, md) {
  const a = await authorize(client, key, md);
  assert.strictEqual(a.status, 'PAYMENT_STATUS_AUTHORIZED');
  assert.match(a.payment_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.strictEqual(ownerOf(a.payment_id), `${owner} ${owner}`);
  const g = await unary(client, 'GetPayment', { payment_id: a.payment_id }, md);
  assert.strictEqual(g.payment.payment_id, a.payment_id);
  return a.payment_id;
}

test('bearer token as call credentials combined with TLS: AUTHORIZED, the payment is the token\'s client\'s', async () => {
  const c = payments(withToken(() => env.AUTH_TOKEN));
  try {
    await paysAs(c, `${runId}-gen`, env.AUTH_CLIENT);
    const b = await unary(c, 'GetAccountBalance', { account_id: PAYER });
    assert.strictEqual(b.account_id, PAYER);
  } finally { c.close(); }
});

test('bearer token in the call metadata over TLS without a client certificate: AUTHORIZED', async () => {
  const c = payments(tlsOnly());
  try {
    await paysAs(c, `${runId}-md`, env.AUTH_CLIENT, bearer(env.AUTH_TOKEN));
  } finally { c.close(); }
});

test('client certificate client.pem: AUTHORIZED as the client dev', async () => {
  const c = payments(withCert('client'));
  try {
    await paysAs(c, `${runId}-cert`, 'dev');
  } finally { c.close(); }
});

test('neither token nor certificate: UNAUTHENTICATED, nothing written; health still answers', async () => {
  const c = payments(tlsOnly());
  const h = new pkg.grpc.health.v1.Health(target, tlsOnly());
  try {
    await rejects(authorize(c, `${runId}-anon`), 'UNAUTHENTICATED', 'no credentials');
    await rejects(unary(c, 'GetAccountBalance', { account_id: PAYER }), 'UNAUTHENTICATED', 'no credentials');
    assert.strictEqual(rowsOfKey(`${runId}-anon`), '0');
    const r = await unary(h, 'Check', { service: '' });
    assert.strictEqual(r.status, 'SERVING');
  } finally { c.close(); h.close(); }
});

test('an unknown token, and a malformed one: UNAUTHENTICATED', async () => {
  const c = payments(tlsOnly());
  try {
    const unknown = `pd_${Buffer.alloc(32, 7).toString('base64url')}`;
    await rejects(authorize(c, `${runId}-unk`, bearer(unknown)), 'UNAUTHENTICATED', 'unknown or revoked credential');
    await rejects(authorize(c, `${runId}-bad`, bearer('not-a-token')), 'UNAUTHENTICATED', 'expected "Bearer pd_..."');
    assert.strictEqual(rowsOfKey(`${runId}-unk`), '0');
  } finally { c.close(); }
});

test('a client revoked while its connection is open: its next AuthorizePayment on it fails at once', async () => {
  const c = payments(withToken(() => env.AUTH_REVOKE_TOKEN));
  try {
    // The first call authenticates (and so caches) the token on this connection.
    await paysAs(c, `${runId}-rev1`, env.AUTH_REVOKE_CLIENT);
    paymentdClient('revoke', env.AUTH_REVOKE_CLIENT);
    await rejects(authorize(c, `${runId}-rev2`), 'UNAUTHENTICATED', `client ${env.AUTH_REVOKE_CLIENT} is revoked`);
    assert.strictEqual(rowsOfKey(`${runId}-rev2`), '0');
  } finally { c.close(); }
});

test('a token rotated while its connection is open: refused there within AUTH_CACHE_SECONDS, at once on a new one; the new token works', async () => {
  const old = env.AUTH_ROTATE_TOKEN;
  const c = payments(withToken(() => old));
  try {
    await unary(c, 'GetAccountBalance', { account_id: PAYER });
    const out = paymentdClient('rotate-token', env.AUTH_ROTATE_CLIENT);
    const fresh = (out.match(/^token: (pd_[A-Za-z0-9_-]{43})$/m) || [])[1];
    assert.ok(fresh && fresh !== old, `rotate-token printed no new token: ${out}`);
    const t0 = Date.now();
    let err = null;
    while (Date.now() - t0 < 8000) {
      try {
        await unary(c, 'GetAccountBalance', { account_id: PAYER });
      } catch (e) { err = e; break; }
      await new Promise((r) => setTimeout(r, 200));
    }
    const ms = Date.now() - t0;
    assert.ok(err, 'the old token still works 8 s after rotate-token on the open connection');
    assert.strictEqual(grpc.status[err.code], 'UNAUTHENTICATED', err.details);
    assert.match(err.details, /revoked/);
    assert.ok(ms <= 5000 + 1000, `the old token was refused only after ${ms} ms (AUTH_CACHE_SECONDS is at most 5)`);
    const n = payments(tlsOnly());
    try {
      await rejects(unary(n, 'GetAccountBalance', { account_id: PAYER }, bearer(old)), 'UNAUTHENTICATED', 'revoked');
      await paysAs(n, `${runId}-rot`, env.AUTH_ROTATE_CLIENT, bearer(fresh));
    } finally { n.close(); }
  } finally { c.close(); }
});
