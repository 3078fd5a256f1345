// SPDX-License-Identifier: MIT
// validate-events.js — validates messages really taken off the broker
// against the JSON Schemas in schemas/ (ajv, draft 2020-12, strict mode,
// formats checked).
// Input (stdin): one message per line, "<topic>\t<value JSON>"; the topic
// picks the schema (.paymentauthorized, .paymentdeclined, .dlq,
// .accountcreated, .accountstatuschanged).
// Prints "schema: N passed, M failed" (and the first failures) and exits
// non-zero on any failure or when there was nothing to validate.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const dir = path.join(__dirname, '..', '..', 'schemas');
const ajv = new Ajv2020({ allErrors: true, strict: true });
addFormats(ajv);
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.schema.json'))) {
  ajv.addSchema(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
}
const schemaOf = (topic) => {
  if (topic.endsWith('.paymentauthorized')) return 'payment-authorized.schema.json';
  if (topic.endsWith('.paymentdeclined')) return 'payment-declined.schema.json';
  if (topic.endsWith('.paymentcaptured')) return 'payment-captured.schema.json';
  if (topic.endsWith('.paymentvoided')) return 'payment-voided.schema.json';
  if (topic.endsWith('.paymentexpired')) return 'payment-expired.schema.json';
  if (topic.endsWith('.paymentrefunded')) return 'payment-refunded.schema.json';
  if (topic.endsWith('.dlq')) return 'dlq-record.schema.json';
  if (topic.endsWith('.accountcreated')) return 'account-created.schema.json';
  if (topic.endsWith('.accountstatuschanged')) return 'account-status-changed.schema.json';
  return null;
};
let pass = 0;
let fail = 0;
const lines = fs.readFileSync(0, 'utf8').split('\n').filter(Boolean);
for (const line of lines) {
  const tab = line.indexOf('\t');
  const topic = line.slice(0, tab);
  const id = schemaOf(topic);
  let value;
  try {
    value = JSON.parse(line.slice(tab + 1));
  } catch (e) {
    fail++;
    console.log(`not JSON on ${topic}: ${e.message}`);
    continue;
  }
  const validate = id && ajv.getSchema(`https://paymentd.local/schemas/${id}`);
  if (!validate) {
    fail++;
    console.log(`no schema for topic ${topic}`);
    continue;
  }
  if (validate(value)) {
    pass++;
  } else {
    fail++;
    if (fail <= 5) console.log(`${topic}: ${ajv.errorsText(validate.errors)}`);
  }
}
console.log(`schema: ${pass} passed, ${fail} failed`);
process.exit(fail === 0 && pass > 0 ? 0 : 1);
