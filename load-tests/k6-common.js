// SPDX-License-Identifier: MIT
// k6-common.js — shared by the k6 scripts in load-tests/: test profiles
// (smoke/load/stress, chosen with -e PROFILE=...), account selection and
// idempotency keys. The scripts mirror paymentd-loadgen's scenarios so
// numbers from either tool describe the same work.
//
// Accounts: with -e ACCOUNTS=K the scripts use PREFIX000000..K-1 and
// PREFIXhot (PREFIX from -e PREFIX=, default "lg-"), which
//   paymentd-loadgen --setup-accounts K --scenario balance --requests 1
// creates and funds. Without ACCOUNTS they use the seed accounts
// acc-payer-001 / acc-payee-002 from `paymentd reset-test-data`.
import exec from 'k6/execution';

export const TARGET = __ENV.TARGET || __ENV.PAYMENTD_TARGET || '127.0.0.1:50051';
export const ACCOUNTS = parseInt(__ENV.ACCOUNTS || '0', 10);
export const PREFIX = __ENV.PREFIX || 'lg-';
export const CURRENCY = __ENV.CURRENCY || 'USD';
const PROFILE = __ENV.PROFILE || 'smoke';

// Thresholds are per profile: smoke must be flawless and fast, load must
// stay within the latency budget at a steady concurrency, stress may
// degrade but not fail.
const profiles = {
  smoke: {
    scenarios: { smoke: { executor: 'constant-vus', vus: 1, duration: __ENV.DURATION || '30s' } },
    thresholds: {
      grpc_req_duration: ['p(95)<50', 'p(99)<100'],
      checks: ['rate==1.0'],
    },
  },
  load: {
    scenarios: {
      load: {
        executor: 'ramping-vus',
        startVUs: 0,
        stages: [
          { duration: '30s', target: parseInt(__ENV.VUS || '32', 10) },
          { duration: __ENV.DURATION || '2m', target: parseInt(__ENV.VUS || '32', 10) },
          { duration: '15s', target: 0 },
        ],
        gracefulRampDown: '10s',
      },
    },
    thresholds: {
      grpc_req_duration: ['p(95)<100', 'p(99)<250'],
      checks: ['rate>0.999'],
    },
  },
  stress: {
    scenarios: {
      stress: {
        // Open model: the arrival rate rises whatever the latency, so an
        // overloaded server shows up as latency and errors, not as a
        // quietly lower request rate.
        executor: 'ramping-arrival-rate',
        startRate: 100,
        timeUnit: '1s',
        preAllocatedVUs: 100,
        maxVUs: parseInt(__ENV.MAX_VUS || '400', 10),
        stages: [
          { duration: '1m', target: 1000 },
          { duration: '1m', target: 2000 },
          { duration: '1m', target: parseInt(__ENV.PEAK_RATE || '4000', 10) },
          { duration: '30s', target: 0 },
        ],
      },
    },
    thresholds: {
      grpc_req_duration: ['p(95)<500'],
      checks: ['rate>0.99'],
      dropped_iterations: ['count<1000'],
    },
  },
};

export function options(extraThresholds) {
  const p = profiles[PROFILE];
  if (!p) {
    throw new Error(`unknown PROFILE ${PROFILE} (smoke, load or stress)`);
  }
  return { scenarios: p.scenarios, thresholds: Object.assign({}, p.thresholds, extraThresholds || {}) };
}

export function accountName(i) {
  return PREFIX + String(i).padStart(6, '0');
}

function randomIndex(n) {
  return Math.floor(Math.random() * n);
}

// [payer, payee] for the uniform scenario: distinct, uniformly chosen.
export function uniformPair() {
  if (ACCOUNTS < 2) {
    return Math.random() < 0.5 ? ['acc-payer-001', 'acc-payee-002'] : ['acc-payee-002', 'acc-payer-001'];
  }
  const i = randomIndex(ACCOUNTS);
  const j = (i + 1 + randomIndex(ACCOUNTS - 1)) % ACCOUNTS;
  return [accountName(i), accountName(j)];
}

// [payer, payee] for the hot scenario: one side is always the hot account.
export function hotPair() {
  const hot = ACCOUNTS > 0 ? PREFIX + 'hot' : 'acc-payer-001';
  const other = ACCOUNTS > 0 ? accountName(randomIndex(ACCOUNTS)) : 'acc-payee-002';
  return Math.random() < 0.5 ? [hot, other] : [other, hot];
}

export function randomAccount() {
  if (ACCOUNTS < 1) {
    return Math.random() < 0.5 ? 'acc-payer-001' : 'acc-payee-002';
  }
  return accountName(randomIndex(ACCOUNTS));
}

// Unique per run, VU and iteration: a retry of the same iteration would
// reuse it (that is what idempotency keys are for), a new one never does.
export function idempotencyKey(runId) {
  return `k6-${runId}-${exec.vu.idInTest}-${exec.vu.iterationInInstance}`;
}

export function newRunId() {
  return Date.now().toString(36) + Math.floor(Math.random() * 1e9).toString(36);
}
