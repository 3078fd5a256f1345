// SPDX-License-Identifier: MIT
// TLS and mutual TLS on paymentd's gRPC port, seen by independent clients:
// @grpc/grpc-js (the calls) and node's own tls module (what the handshake
// negotiated, and which alert ends a refused one). Driven by
// tests/suites/51-node-tls, which starts the server and sets:
//   TLS_TARGET  127.0.0.1:PORT of a paymentd with TLS=on
//   TLS_CERTS   the scripts/gen-certs directory its certificates come from
//   TLS_PHASE   require: the server has TLS_CLIENT_AUTH=require
//               none:    TLS_CLIENT_AUTH=none and TLS_MIN_VERSION=1.3
// Every refused connection must fail as UNAVAILABLE well within the 5 s
// deadline: a refused handshake that hangs until the deadline is a defect.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const tls = require('node:tls');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const target = process.env.TLS_TARGET;
const certs = process.env.TLS_CERTS;
const phase = process.env.TLS_PHASE;
if (!target || !certs || !['require', 'none'].includes(phase)) {
  throw new Error('TLS_TARGET, TLS_CERTS and TLS_PHASE=require|none must be set (tests/suites/51-node-tls)');
}
const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const DEADLINE_MS = 5000;
const runId = `nodetls${phase}${Date.now()}`;

const protoRoot = path.join(__dirname, '..', '..', 'proto');
const pkgDef = protoLoader.loadSync(['payment/v1/payment.proto', 'grpc/health/v1/health.proto'], {
  includeDirs: [protoRoot], keepCase: true, enums: String, longs: String, defaults: true,
});
const pkg = grpc.loadPackageDefinition(pkgDef);
const file = (name) => fs.readFileSync(path.join(certs, name));

// creds({ca, cert}): TLS roots from ca (file name), client pair NAME.pem/.key.
function creds({ ca = 'ca.pem', cert = null } = {}) {
  return cert
    ? grpc.credentials.createSsl(file(ca), file(`${cert}.key`), file(`${cert}.pem`))
    : grpc.credentials.createSsl(file(ca));
}

function unary(client, method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, new grpc.Metadata(), { deadline: Date.now() + DEADLINE_MS },
      (err, res) => (err ? reject(err) : resolve(res)));
  });
}

// Health Check and a real payment (then read back) over channel credentials c.
async function paymentsWork(c, options = {}, tag = 'ok') {
  const health = new pkg.grpc.health.v1.Health(target, c, options);
  const payments = new pkg.payment.v1.PaymentService(target, c, options);
  try {
    const h = await unary(health, 'Check', { service: '' });
    assert.strictEqual(h.status, 'SERVING');
    const a = await unary(payments, 'AuthorizePayment', {
      idempotency_key: `${runId}-${tag}`, payer_account_id: 'acc-payer-001',
      payee_account_id: 'acc-payee-002', amount_cents: 1, currency: 'USD', description: 'node tls',
    });
    assert.strictEqual(a.status, 'PAYMENT_STATUS_AUTHORIZED');
    assert.match(a.payment_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    const g = await unary(payments, 'GetPayment', { payment_id: a.payment_id });
    assert.strictEqual(g.payment.amount_cents, '1');
  } finally {
    health.close();
    payments.close();
  }
}

// A Health Check over c must end UNAVAILABLE, before the deadline.
async function refused(c, options = {}) {
  const health = new pkg.grpc.health.v1.Health(target, c, options);
  const t0 = Date.now();
  try {
    await assert.rejects(unary(health, 'Check', { service: '' }), (e) => {
      assert.strictEqual(grpc.status[e.code], 'UNAVAILABLE', `code ${grpc.status[e.code]}: ${e.details}`);
      return true;
    });
  } finally {
    health.close();
  }
  const ms = Date.now() - t0;
  assert.ok(ms < DEADLINE_MS - 500, `refusal took ${ms} ms (deadline ${DEADLINE_MS} ms)`);
  return ms;
}

// A raw TLS connection (ALPN h2); resolves with what was negotiated, or
// with the error that ended it. In TLS 1.3 the client finishes before the
// server has judged its certificate, so after 'secureConnect' it waits for
// the server's verdict: an alert, or nothing for 500 ms.
function rawTls({ ca = 'ca.pem', cert = null, maxVersion, minVersion } = {}) {
  return new Promise((resolve) => {
    const opts = { host, port, servername: 'localhost', ALPNProtocols: ['h2'], ca: file(ca) };
    if (cert) Object.assign(opts, { cert: file(`${cert}.pem`), key: file(`${cert}.key`) });
    if (maxVersion) opts.maxVersion = maxVersion;
    if (minVersion) opts.minVersion = minVersion;
    const s = tls.connect(opts);
    let info = null;
    const timer = setTimeout(() => { s.destroy(); resolve({ info, error: null }); }, DEADLINE_MS);
    s.on('secureConnect', () => {
      info = {
        protocol: s.getProtocol(), alpn: s.alpnProtocol, authorized: s.authorized,
        san: s.getPeerCertificate().subjectaltname,
      };
      // An HTTP/2 preface makes the server read, and so send its alert.
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      setTimeout(() => { clearTimeout(timer); s.destroy(); resolve({ info, error: null }); }, 500);
    });
    s.on('error', (error) => { clearTimeout(timer); s.destroy(); resolve({ info, error }); });
  });
}

if (phase === 'require') {
  test('mTLS: Health and AuthorizePayment with the client certificate', async () => {
    await paymentsWork(creds({ cert: 'client' }), {}, 'mtls');
  });

  test('the handshake: TLS 1.3, ALPN h2, server certificate for 127.0.0.1 verified', async () => {
    const { info, error } = await rawTls({ cert: 'client' });
    assert.ifError(error);
    assert.deepStrictEqual([info.protocol, info.alpn, info.authorized], ['TLSv1.3', 'h2', true]);
    assert.match(info.san, /IP Address:127\.0\.0\.1/);
  });

  test('the server name is checked: override localhost works, another name is refused', async () => {
    await paymentsWork(creds({ cert: 'client' }), { 'grpc.ssl_target_name_override': 'localhost' }, 'sni');
    await refused(creds({ cert: 'client' }), { 'grpc.ssl_target_name_override': 'wrong.example' });
  });

  test('roots of another CA (other-ca.pem): UNAVAILABLE', async () => {
    await refused(creds({ ca: 'other-ca.pem', cert: 'client' }));
  });

  test('expired client certificate: UNAVAILABLE, the server says "certificate expired"', async () => {
    await refused(creds({ cert: 'client-expired' }));
    const { error } = await rawTls({ cert: 'client-expired' });
    assert.ok(error, 'the server accepted an expired client certificate');
    assert.match(error.code || '', /CERTIFICATE_EXPIRED/, String(error));
  });

  test('client certificate of an unknown CA: UNAVAILABLE, the server says "unknown ca"', async () => {
    await refused(creds({ cert: 'client-unknown' }));
    const { error } = await rawTls({ cert: 'client-unknown' });
    assert.ok(error, 'the server accepted a certificate of an unknown CA');
    assert.match(error.code || '', /UNKNOWN_CA/, String(error));
  });

  test('no client certificate against TLS_CLIENT_AUTH=require: UNAVAILABLE', async () => {
    await refused(creds());
    const { error } = await rawTls();
    assert.ok(error, 'the server accepted a client without a certificate');
    assert.match(error.code || '', /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE/, String(error));
  });

  test('a cleartext client (createInsecure) fails cleanly: UNAVAILABLE, no hang', async () => {
    await refused(grpc.credentials.createInsecure());
  });

  test('TLS 1.2 is still accepted with the default TLS_MIN_VERSION=1.2', async () => {
    const { info, error } = await rawTls({ cert: 'client', maxVersion: 'TLSv1.2' });
    assert.ifError(error);
    assert.deepStrictEqual([info.protocol, info.alpn], ['TLSv1.2', 'h2']);
  });
} else {
  test('TLS_CLIENT_AUTH=none: a TLS client without a certificate is served (with a token: AUTH_MODE=any)', async () => {
    // TLS_TOKEN: a client with can_debit and can_read on acc-payer-001.
    const token = grpc.credentials.createFromMetadataGenerator((_params, cb) => {
      const md = new grpc.Metadata();
      md.add('authorization', `Bearer ${process.env.TLS_TOKEN}`);
      cb(null, md);
    });
    await paymentsWork(grpc.credentials.combineChannelCredentials(creds(), token), {}, 'nocert');
  });

  test('TLS_CLIENT_AUTH=none: wrong roots are still refused (UNAVAILABLE)', async () => {
    await refused(grpc.credentials.createSsl(file('other-ca.pem')));
  });

  test('TLS_MIN_VERSION=1.3: a TLS 1.2 client is refused, TLS 1.3 is served', async () => {
    const old = await rawTls({ maxVersion: 'TLSv1.2' });
    assert.ok(old.error, `TLS 1.2 was accepted: ${JSON.stringify(old.info)}`);
    assert.match(old.error.code || '', /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|WRONG_VERSION/, String(old.error));
    const cur = await rawTls({ minVersion: 'TLSv1.3' });
    assert.ifError(cur.error);
    assert.strictEqual(cur.info.protocol, 'TLSv1.3');
  });
}
