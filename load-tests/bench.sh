#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# load-tests/bench.sh — `make bench`: paymentd against pgbench on one private,
# durable stack, same accounts, same concurrency, same run.
#
# Contract: destroys and re-creates a private PostgreSQL (fsync=on,
# synchronous_commit=on, checked) and Redis under $BENCH_STACK_DIR on ports
# outside the kernel's ephemeral range, starts paymentd (LOG_LEVEL=WARNING;
# SANDBOX and everything else come from the environment), creates
# $BENCH_ACCOUNTS funded accounts, then runs, each step $BENCH_WARMUP s of
# warmup + $BENCH_SECONDS s measured (CHECKPOINT before each):
#   AuthorizePayment, uniform accounts, at each of $BENCH_CONCURRENCY
#     (loadgen --connections = --concurrency: one worker per client, as
#     pgbench has one backend per client), then pgbench running the same
#     authorize_payment call (load-tests/pgbench/authorize-uniform.sql);
#     the two alternate which goes first so table growth biases neither;
#     all of that $BENCH_ROUNDS times (default 3): the table shows each
#     side's median round, and the per-round ratios are listed, because on
#     a small shared VM one 10-second pair can be off by 20% either way;
#   in the same rounds, authorize+capture at each of
#     $BENCH_CAPTURE_CONCURRENCY (default 32): loadgen --scenario capture
#     (a MANUAL AuthorizePayment, then CapturePayment of all of its hold on
#     the same connection; one pair = one operation) against pgbench
#     running the same two calls as two transactions
#     (load-tests/pgbench/capture.sql: authorize_payment 'MANUAL', then
#     capture_payment, one statement each); same alternation and medians,
#     the pair's latency in the table, each call's own p50/p99 below it
#     (target: >= 0.8x pgbench);
#   the hot-account variant of both; GetAccountBalance and its query;
#   the same AuthorizePayment step, once, with the users' own load tools
#     beside the C loadgen at each of $BENCH_TOOLS_CONCURRENCY (default
#     "8 64"): ghz with one connection multiplexing all calls
#     (--connections=1 --concurrency=C), ghz with one connection per call
#     (--connections=C, the loadgen's shape), and paymentd-goclient (grpc-go,
#     one channel = one connection, -concurrency C); same accounts, same
#     amounts, a fresh idempotency key per call; their payments are counted
#     in the ledger afterwards (must equal the calls answered OK);
#   new-connection cost (loadgen newconn vs pgbench -C);
#   under attack: a fourth paymentd (cleartext, the default front-door
#     limits, port_for front-door), AuthorizePayment at
#     $BENCH_ATTACK_CONCURRENCY (default 4) from 127.0.0.1 alone and then
#     with tests/lib/attack.sh's rapid-reset, HPACK-bomb and silent-socket
#     attackers running from other addresses, in every round, order
#     alternating (target: >= 0.9x without them; 45-front-door checks only
#     that the client is served without errors and not starved);
#   TLS: a second paymentd with TLS 1.3 and client certificates required
#     (scripts/gen-certs, ECDSA P-256) on the bench block's tls port, same
#     database: AuthorizePayment at each of $BENCH_TLS_CONCURRENCY (default
#     "8 64") in every round right after the cleartext step of the same
#     concurrency (target: >= 0.9x it), new connections per second with a
#     full handshake and with session resumption (a ticket from an earlier
#     connection, served by another worker process), and the serving
#     workers' RSS with and without TLS;
# then payment-verify on the result. The tools come from
# scripts/install-tools ghz goclient (run first; cached after the first
# time; BENCH_TOOLS=0 skips those rows). paymentd's /metrics is enabled on
# the bench block's metrics port (BENCH_PORT_BASE+3, BENCH_METRICS_PORT) for
# the worker start time (worker_start_seconds), printed for the newconn
# step and for the whole bench. Prints one table (also written to
# $BENCH_OUT/bench.txt, raw JSON lines in $BENCH_OUT/results.jsonl) with
# the ratio paymentd/pgbench, and a second table of the load generators
# with their ratio to the C loadgen's row of the same concurrency. Exits 1
# if any step had errors, a tool's payments did not match the ledger, or
# the ledger check failed; a missed throughput target is reported, not an error.
# Stops everything it started. All traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
STEP=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
LEVELS=${BENCH_CONCURRENCY:-1 8 32 64}
ROUNDS=${BENCH_ROUNDS:-3}
ROUND=1
HOT_C=${BENCH_HOT_CONCURRENCY:-32}
BAL_C=${BENCH_BALANCE_CONCURRENCY:-32}
NEWCONN_C=${BENCH_NEWCONN_CONCURRENCY:-4}
TOOLS_LEVELS=${BENCH_TOOLS_CONCURRENCY:-8 64}
TLS_LEVELS=${BENCH_TLS_CONCURRENCY:-8 64}
ATTACK_C=${BENCH_ATTACK_CONCURRENCY:-4}
CAPTURE_LEVELS=${BENCH_CAPTURE_CONCURRENCY:-32}
USE_TOOLS=${BENCH_TOOLS:-1}
TOOLS_BIN=${TOOLS_BIN:-$BUILD_DIR/tools/bin}
# Idempotency keys of the ghz and goclient rows start with this run's id.
RUN_ID=$(date +%s)-$$
ACCOUNTS=${BENCH_ACCOUNTS:-10000}
PREFIX=bench-
OUT=${BENCH_OUT:-$BUILD_DIR/bench}
NPROC=$(nproc)

export STACK_DIR=${BENCH_STACK_DIR:-/tmp/paymentd-bench-stack}
# The bench block of tests/lib/ports.sh, below the kernel's ephemeral range
# (a listening port in it can collide with some other client's outgoing
# connection on a busy machine); BENCH_PORT_BASE, BENCH_PG_PORT,
# BENCH_REDIS_PORT, BENCH_GRPC_PORT and BENCH_METRICS_PORT override it.
. "$ROOT/tests/lib/ports.sh"
. "$ROOT/tests/lib/attack.sh"
H2ATTACK=$BUILD_DIR/h2attack
ports_profile bench
export STACK_DURABLE=1
# METRICS_PORT (the block's +3) serves worker_start_seconds; nothing else
# scrapes it during a step.
export GRPC_HOST=127.0.0.1 METRICS_PORT LOG_LEVEL=WARNING ENV_FILE=/dev/null
export MIGRATIONS_DIR=$ROOT/migrations
# 64 clients + the warm pool must fit; the default (64) would queue one.
export MAX_WORKERS=${MAX_WORKERS:-128}
# The bench measures the payment path; the per-client limit (1000/s by
# default) would cap it. RATE_LIMIT_ENABLED=on in the environment measures
# with the Redis round trip included.
export RATE_LIMIT_ENABLED=${RATE_LIMIT_ENABLED:-off}
# One client address (127.0.0.1) opens every connection: no per-address
# front-door limits in the bench. The cleartext rows ask for TLS=off; the
# TLS rows start their own daemon with TLS on.
export MAX_CONNECTIONS_PER_IP=0 CONNECTION_RATE_PER_IP=0 ABUSE_PENALTY_SECONDS=0
export TLS=off PAYMENTD_PLAINTEXT=1
# ... and no authentication (every caller the client legacy), as the
# harness: the AUTH_MODE=token daemon below measures what identity costs.
export AUTH_MODE=none
TARGET=127.0.0.1:$GRPC_PORT

die() { echo "bench: $*" >&2; exit 1; }
for b in paymentd paymentctl paymentd-loadgen payment-verify; do
    [ -x "$BUILD_DIR/$b" ] || die "$BUILD_DIR/$b missing (make bench builds it)"
done
[ -x "$PG_BIN/pgbench" ] || die "pgbench not found in $PG_BIN"
command -v jq >/dev/null || die "jq missing (scripts/install-deps)"
command -v curl >/dev/null || die "curl missing (scripts/install-deps)"
for p in "$PG_PORT" "$REDIS_PORT" "$GRPC_PORT" "$METRICS_PORT" "$(port_for tls)" "$(port_for tls-metrics)"; do
    if ss -Htln "sport = :$p" | grep -q .; then die "port $p is in use (set BENCH_*_PORT)"; fi
done

# ghz and paymentd-goclient, pinned; a no-op once they are built.
if [ "$USE_TOOLS" = 1 ]; then
    BUILD=$BUILD_DIR TOOLS_DIR=$TOOLS_BIN scripts/install-tools ghz goclient ||
        die "scripts/install-tools ghz goclient failed (BENCH_TOOLS=0 skips the ghz/goclient rows)"
    for b in ghz paymentd-goclient; do
        [ -x "$TOOLS_BIN/$b" ] || die "$TOOLS_BIN/$b missing after scripts/install-tools"
    done
fi

mkdir -p "$OUT"
: >"$OUT/results.jsonl"; rm -f "$OUT/attack.txt"
PAYMENTD_PID=
cleanup() {
    local p
    attack_stop
    for p in "$PAYMENTD_PID" "${TLS_PID:-}" "${AUTH_PID:-}" "${FD_PID:-}"; do
        [ -n "$p" ] && kill -0 "$p" 2>/dev/null || continue
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then scripts/stack stop >/dev/null 2>&1 || true
    else scripts/stack destroy >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "bench: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) before start"
scripts/stack destroy >/dev/null 2>&1 || true	# STACK_DURABLE applies at initdb only
env_out=$(scripts/stack start) || die "stack did not start"
set -a; eval "$env_out"; set +a
SU=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d paymentd -qAtX)
fsync=$("${SU[@]}" -c "SHOW fsync"); sc=$("${SU[@]}" -c "SHOW synchronous_commit")
[ "$fsync" = on ] && [ "$sc" = on ] || die "stack is not durable (fsync=$fsync synchronous_commit=$sc)"

"$BUILD_DIR/paymentd" migrate >"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log"; die "migrate failed"; }
"$BUILD_DIR/paymentd" reset-test-data >>"$OUT/migrate.log" 2>&1 || { cat "$OUT/migrate.log"; die "reset-test-data failed"; }
# pgbench passes the client legacy's id as paymentd does (looked up once).
LEGACY_ID=$("${SU[@]}" -c "SELECT legacy_client_id()")
"$BUILD_DIR/paymentd" serve >"$OUT/paymentd.log" 2>&1 &
PAYMENTD_PID=$!
# The TLS daemon: same database and accounts, its own gRPC port and its own
# /metrics (the handshake counters) from the bench block.
TLS_PORT=$(port_for tls) TLS_METRICS_PORT=$(port_for tls-metrics)
TLS_TARGET=localhost:$TLS_PORT
scripts/gen-certs "$OUT/certs" >/dev/null || die "scripts/gen-certs failed"
TLSF=(--tls-ca "$OUT/certs/ca.pem" --tls-cert "$OUT/certs/client.pem" --tls-key "$OUT/certs/client.key")
# Its caller is the client dev (client.pem's URI SAN), an ordinary client
# with a '*' grant: the TLS rows pay for authentication and the grant check.
"$BUILD_DIR/paymentd" client create dev --mtls-uri spiffe://paymentd.local/client/dev >/dev/null &&
    "$BUILD_DIR/paymentd" client grant dev '*' --debit --read >/dev/null || die "client dev"
GRPC_PORT=$TLS_PORT METRICS_PORT=$TLS_METRICS_PORT TLS=on TLS_MIN_VERSION=1.3 TLS_CLIENT_AUTH=require AUTH_MODE=any \
    TLS_CERT_FILE=$OUT/certs/server.pem TLS_KEY_FILE=$OUT/certs/server.key TLS_CLIENT_CA_FILE=$OUT/certs/ca.pem \
    "$BUILD_DIR/paymentd" serve >"$OUT/paymentd-tls.log" 2>&1 &
TLS_PID=$!
# The authenticating cleartext daemon: AUTH_MODE=token, the client bench
# (bearer token, '*' grant, not admin) against the AUTH_MODE=none daemon
# above (every caller the admin client legacy): the cost of identity —
# the token lookup (cached per connection), the grant check and the client
# lock inside authorize_payment — with TLS out of the picture.
AUTH_PORT=$(port_for auth) AUTH_METRICS_PORT=$(port_for auth-metrics)
AUTH_TARGET=127.0.0.1:$AUTH_PORT
BENCH_TOKEN=$("$BUILD_DIR/paymentd" client create bench --token 2>/dev/null | sed -n 's/^token: //p')
[ -n "$BENCH_TOKEN" ] && "$BUILD_DIR/paymentd" client grant bench '*' --debit --read >/dev/null ||
    die "client bench"
GRPC_PORT=$AUTH_PORT METRICS_PORT=$AUTH_METRICS_PORT AUTH_MODE=token \
    "$BUILD_DIR/paymentd" serve >"$OUT/paymentd-auth.log" 2>&1 &
AUTH_PID=$!
# The front-door daemon: cleartext, no authentication, and the front-door
# limits at their defaults (the other daemons have them off: every bench
# connection comes from 127.0.0.1), for the attack step.
FD_PORT=$(port_for front-door) FD_METRICS_PORT=$(port_for front-door-metrics)
FD_TARGET=127.0.0.1:$FD_PORT
env -u MAX_CONNECTIONS_PER_IP -u CONNECTION_RATE_PER_IP -u ABUSE_PENALTY_SECONDS \
    GRPC_PORT=$FD_PORT METRICS_PORT=$FD_METRICS_PORT "$BUILD_DIR/paymentd" serve >"$OUT/paymentd-fd.log" 2>&1 &
FD_PID=$!
# wait_healthy NAME LOG paymentctl-args...: until the daemon answers a
# health check (10 s at most), else its log's tail and exit.
wait_healthy() {
    local name=$1 log=$2
    shift 2
    for _ in $(seq 100); do
        "$BUILD_DIR/paymentctl" "$@" health >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    "$BUILD_DIR/paymentctl" "$@" health >/dev/null 2>&1 || { tail -n 20 "$log"; die "$name not healthy"; }
}
wait_healthy "paymentd (front door)" "$OUT/paymentd-fd.log" --target "$FD_TARGET"
wait_healthy "paymentd (AUTH_MODE=token)" "$OUT/paymentd-auth.log" --target "$AUTH_TARGET"
wait_healthy paymentd "$OUT/paymentd.log" --target "$TARGET"
wait_healthy "paymentd (TLS)" "$OUT/paymentd-tls.log" --target "$TLS_TARGET" "${TLSF[@]}"
echo "bench: durable stack (fsync=$fsync, synchronous_commit=$sc), paymentd on $TARGET, /metrics on :$METRICS_PORT" \
     "(SANDBOX=${SANDBOX:-on}, RATE_LIMIT_ENABLED=$RATE_LIMIT_ENABLED, MAX_WORKERS=$MAX_WORKERS)"

LG=("$BUILD_DIR/paymentd-loadgen" --target "$TARGET" --account-prefix "$PREFIX" --json)
LG_CLEAR=("${LG[@]}")
LG_TLS=("$BUILD_DIR/paymentd-loadgen" --target "$TLS_TARGET" "${TLSF[@]}" --account-prefix "$PREFIX" --json)
LG_FD=("$BUILD_DIR/paymentd-loadgen" --target "$FD_TARGET" --account-prefix "$PREFIX" --json)
LG_AUTH=(env PAYMENTD_TOKEN="$BENCH_TOKEN" "$BUILD_DIR/paymentd-loadgen" --target "$AUTH_TARGET" --account-prefix "$PREFIX" --json)
"${LG[@]}" --setup-accounts "$ACCOUNTS" --scenario balance --requests 1 >/dev/null ||
    die "account setup failed"
echo "bench: $ACCOUNTS accounts ${PREFIX}000000.. + ${PREFIX}hot funded; each step ${WARMUP}s warmup + ${STEP}s measured"

# CPU accounting, in clock ticks: machine busy and total from /proc/stat,
# and what the bench's own processes used — this script's tree (paymentd,
# its workers, loadgen, pgbench) and the postmaster's tree, each counted
# with its reaped children (cutime/cstime), so processes that exit during a
# step still count. On a shared machine the rest is other people's load.
PM_PID=$(head -n1 "$STACK_DIR/pg/data/postmaster.pid")
tree_cpu() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$*" '
        BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) root[r[i]] = 1 }
        { pid = $1; line = $0; sub(/^[0-9]+ \(.*\) /, "", line); split(line, f, " ")
          pp[pid] = f[2]; c[pid] = f[12] + f[13] + f[14] + f[15] }
        END { for (p in pp) { q = p; while (q > 1) { if (q in root) { t += c[p]; break } q = pp[q] } }
              print t + 0 }'
}
cpu_snap() {
    echo "$(awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat) $(tree_cpu $$ "$PM_PID")"
}
checkpoint() { "${SU[@]}" -c CHECKPOINT >/dev/null; }
# "busy ext": machine CPU busy % and the part of it not used by the bench,
# between two cpu_snap snapshots.
busy_pct() {
    echo "$1 $2" | awk '{ d = $5 - $2; if (d <= 0) { print "0 0"; exit }
        b = 100 * ($4 - $1) / d; o = 100 * ($6 - $3) / d; e = b - o
        printf "%.0f %.0f", b, (e > 0 ? e : 0) }'
}

# run_loadgen LABEL SCENARIO CONCURRENCY [loadgen args...]
run_loadgen() {
    local label=$1 sc=$2 c=$3; shift 3
    local a b
    checkpoint
    a=$(cpu_snap)
    "${LG[@]}" --scenario "$sc" --accounts "$ACCOUNTS" --concurrency "$c" \
        --duration "$STEP" --warmup "$WARMUP" --label "$label" "$@" >"$OUT/lg-$label.json" ||
        die "loadgen step $label failed"
    b=$(cpu_snap)
    read -r busy ext <<<"$(busy_pct "$a" "$b")"
    jq -c --argjson busy "$busy" --argjson ext "$ext" '{tool: "paymentd", label: .label, concurrency: .concurrency, rps: .throughput_rps,
        p50: .latency_ms.p50, p95: .latency_ms.p95, p99: .latency_ms.p99, p999: .latency_ms.p999,
        errors: .errors, busy: $busy, ext: $ext, client_cpu_s: .client_cpu_s, declined: (.payment_status.DECLINED // 0),
        first_error: .first_error, round: '"$ROUND"'}
        + (if .scenario == "capture" then {auth_p50: .authorize_latency_ms.p50, auth_p99: .authorize_latency_ms.p99,
              cap_p50: .capture_latency_ms.p50, cap_p99: .capture_latency_ms.p99,
              capture_refused: (.capture_errors | add // 0),
              declined: ((.payment_status.DECLINED // 0) + (.capture_errors | add // 0))} else {} end)' \
        "$OUT/lg-$label.json" >>"$OUT/results.jsonl"
}

# run_pgbench LABEL SCRIPT CONCURRENCY [pgbench args...] — pgbench runs
# warmup+step seconds; its per-transaction log is cut to the same measured
# window as the loadgen's (transactions completing in [start+W, start+W+S]).
run_pgbench() {
    local label=$1 script=$2 c=$3; shift 3
    local j=$((c < NPROC ? c : NPROC)) a b failed busy ext
    rm -f "$OUT/pgb-$label".log*
    checkpoint
    a=$(cpu_snap)
    "$PG_BIN/pgbench" -n -M prepared -h 127.0.0.1 -p "$PG_PORT" -U paymentd -c "$c" -j "$j" \
        -T $((WARMUP + STEP)) -D naccts="$ACCOUNTS" -D prefix="$PREFIX" -D lid="$LEGACY_ID" -f "$script" \
        -l --log-prefix="$OUT/pgb-$label.log" "$@" paymentd >"$OUT/pgb-$label.out" 2>&1 ||
        { cat "$OUT/pgb-$label.out"; die "pgbench step $label failed"; }
    b=$(cpu_snap)
    read -r busy ext <<<"$(busy_pct "$a" "$b")"
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$OUT/pgb-$label.out")
    # Log columns: client tx latency_us script epoch_s epoch_us.
    cat "$OUT/pgb-$label".log* | awk -v w="$WARMUP" -v s="$STEP" '
        { t = $5 + $6 / 1e6; if ($3 ~ /^[0-9]+$/) { st = t - $3 / 1e6; if (t0 == "" || st < t0) t0 = st }
          line[NR] = sprintf("%.6f %s", t, $3) }
        END { for (i = 1; i <= NR; i++) { split(line[i], f, " ");
                if (f[1] >= t0 + w && f[1] <= t0 + w + s) print f[2] } }' |
        sort -n | awk -v s="$STEP" -v label="$label" -v c="$c" -v failed="${failed:-0}" \
            -v busy="$busy" -v ext="$ext" -v round="$ROUND" '
        /^[0-9]+$/ { v[++n] = $1 } !/^[0-9]+$/ { bad++ }
        function q(p,  k) { k = int(p * n + 0.999999); if (k < 1) k = 1; return n ? v[k] / 1000 : 0 }
        END { printf "{\"tool\":\"pgbench\",\"label\":\"%s\",\"concurrency\":%d,\"rps\":%.1f,", label, c, n / s
              printf "\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"p999\":%.3f,", q(0.5), q(0.95), q(0.99), q(0.999)
              printf "\"errors\":%d,\"busy\":%d,\"ext\":%d,\"round\":%d}\n", failed + bad, busy, ext, round }' >>"$OUT/results.jsonl"
}

# Client CPU of one foreground command: this shell's reaped-children times
# (bash `times`, second line; written to a file by the shell itself, since a
# $(...) subshell has no children of its own) before and after it.
times_cpu() {   # times_cpu FILE0 FILE1: user+sys seconds between the two
    awk 'FNR == 2 { for (i = 1; i <= 2; i++) { split($i, t, "m"); v = t[1] * 60 + t[2]; s += (NR == FNR ? -v : v) } }
         END { printf "%.2f", s }' "$1" "$2"
}
# ledger_count KEY_PREFIX: "ROWS DECLINED" of the payments with that key prefix.
ledger_count() {
    "${SU[@]}" -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE status = 'DECLINED')
                          FROM payments WHERE idempotency_key LIKE '$1%'"
}

# ghz's call data: a Go text/template over the whole file, run per call
# (--data-file is used as is; -d would be re-marshalled by ghz with its keys
# sorted, which breaks a variable shared by two fields). Payer and payee
# uniform over the funded accounts and never equal, 1..1000 cents, a fresh
# key per call ({{.RequestNumber}} is unique within a run, .UUID per call).
ghz_data() {   # ghz_data KEY_PREFIX
    cat <<EOF
{"idempotency_key": "$1{{.RequestNumber}}-{{.UUID}}",
 {{- \$p := randomInt 0 $ACCOUNTS }}
 "payer_account_id": "$PREFIX{{ printf "%06d" \$p }}",
 "payee_account_id": "$PREFIX{{ printf "%06d" (mod (add \$p (randomInt 1 $ACCOUNTS)) $ACCOUNTS) }}",
 "amount_cents": {{ randomInt 1 1001 }}, "currency": "USD", "description": "ghz"}
EOF
}

# run_ghz TOOL LABEL CONCURRENCY CONNECTIONS — ghz for warmup+step seconds
# (--duration-stop=wait: every call it started is answered and counted);
# like pgbench's log, its per-call details are cut to the calls completing
# in [start+W, start+W+S] (start = the first call's start). errors = every
# non-OK call of the run, plus any difference between the calls answered
# OK and the payments the ledger holds under the run's key prefix.
run_ghz() {
    local tool=$1 label=$2 c=$3 conns=$4 kp a b busy ext rows declined clcpu
    kp="$tool-$RUN_ID-$label-"
    ghz_data "$kp" >"$OUT/ghz-data-$tool-$label.json"
    checkpoint
    a=$(cpu_snap)
    times >"$OUT/.times0"
    TZ=UTC "$TOOLS_BIN/ghz" --insecure --proto "$ROOT/proto/payment/v1/payment.proto" \
        --import-paths "$ROOT/proto" --call payment.v1.PaymentService.AuthorizePayment \
        --data-file "$OUT/ghz-data-$tool-$label.json" --concurrency "$c" --connections "$conns" \
        --duration "$((WARMUP + STEP))s" --duration-stop wait --timeout 20s \
        --format json --output "$OUT/ghz-$tool-$label.json" "$TARGET" 2>"$OUT/ghz-$tool-$label.err" ||
        { cat "$OUT/ghz-$tool-$label.err"; die "ghz step $tool $label failed"; }
    times >"$OUT/.times1"
    b=$(cpu_snap)
    read -r busy ext <<<"$(busy_pct "$a" "$b")"
    read -r rows declined <<<"$(ledger_count "$kp")"
    clcpu=$(times_cpu "$OUT/.times0" "$OUT/.times1"); rm -f "$OUT/.times0" "$OUT/.times1"
    jq -c --arg tool "$tool" --arg lbl "$label" --argjson c "$c" --argjson conns "$conns" \
        --argjson w "$WARMUP" --argjson s "$STEP" --argjson busy "$busy" --argjson ext "$ext" \
        --argjson clcpu "$clcpu" \
        --argjson rows "$rows" --argjson declined "$declined" '
        def ts: capture("^(?<d>[^.Z]+)(?<f>[.][0-9]+)?Z$")
            | ((.d + "Z") | fromdateiso8601) + ("0" + (.f // ".0") | tonumber);
        [ .details[] | { t: (.timestamp | ts), l: (.latency / 1e6), ok: (.status == "OK"), e: .error } ] as $d
        | ($d | map(.t - .l / 1000) | min) as $t0
        | ([ $d[] | select(.t >= $t0 + $w and .t <= $t0 + $w + $s) | .l ] | sort) as $v
        | ($v | length) as $n
        | def q(p): if $n == 0 then 0 else $v[([((p * $n) | ceil) - 1, 0] | max)] * 1000 | round / 1000 end;
        ($d | map(select(.ok)) | length) as $ok
        | { tool: $tool, label: $lbl, concurrency: $c, connections: $conns, rps: ($n / $s * 10 | round / 10),
            p50: q(0.5), p95: q(0.95), p99: q(0.99), p999: q(0.999),
            errors: (($d | length) - $ok + (if $rows != $ok then 1 else 0 end)),
            busy: $busy, ext: $ext, client_cpu_s: $clcpu, declined: $declined,
            calls: ($d | length), ok: $ok, ledger_rows: $rows,
            first_error: ([ $d[] | select(.ok | not) | .e ][0] // null), round: 1 }' \
        "$OUT/ghz-$tool-$label.json" >>"$OUT/results.jsonl"
}

# run_goclient LABEL CONCURRENCY — paymentd-goclient, one channel (one
# HTTP/2 connection), C calls in flight, for the step's seconds. It has no
# warmup: it waits for the channel to be READY before its clock starts,
# and every finished call counts (no p99.9: it does not report one).
run_goclient() {
    local label=$1 c=$2 kp a b busy ext rows declined clcpu rc=0
    kp="gc-$RUN_ID-$label"
    checkpoint
    a=$(cpu_snap)
    times >"$OUT/.times0"
    "$TOOLS_BIN/paymentd-goclient" -target "$TARGET" -concurrency "$c" -duration "${STEP}s" \
        -prefix "$PREFIX" -accounts "$ACCOUNTS" -amount 1 -amount-max 1000 -key-prefix "$kp" \
        -json >"$OUT/goclient-$label.json" 2>"$OUT/goclient-$label.err" || rc=$?
    times >"$OUT/.times1"
    b=$(cpu_snap)
    [ "$rc" -le 1 ] && jq -e .requests "$OUT/goclient-$label.json" >/dev/null 2>&1 ||
        { cat "$OUT/goclient-$label.err"; die "paymentd-goclient step $label failed (exit $rc)"; }
    read -r busy ext <<<"$(busy_pct "$a" "$b")"
    read -r rows declined <<<"$(ledger_count "$kp-")"
    clcpu=$(times_cpu "$OUT/.times0" "$OUT/.times1"); rm -f "$OUT/.times0" "$OUT/.times1"
    jq -c --arg lbl "$label" --argjson busy "$busy" --argjson ext "$ext" \
        --argjson clcpu "$clcpu" \
        --argjson rows "$rows" --argjson declined "$declined" '
        { tool: "goclient", label: $lbl, concurrency: .concurrency, connections: .connections,
          rps: .throughput_rps, p50: .latency_ms.p50, p95: .latency_ms.p95, p99: .latency_ms.p99, p999: null,
          errors: ((.requests - .ok) + (if $rows != .ok then 1 else 0 end)),
          busy: $busy, ext: $ext, client_cpu_s: $clcpu, declined: $declined,
          calls: .requests, ok: .ok, ledger_rows: $rows,
          first_error: (if .first_error == "" then null else .first_error end), round: 1 }' \
        "$OUT/goclient-$label.json" >>"$OUT/results.jsonl"
}

# worker_starts: "SUM COUNT" of worker_start_seconds on paymentd's /metrics.
worker_starts() {
    curl -fsS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | awk '
        $1 == "worker_start_seconds_sum" { s = $2 } $1 == "worker_start_seconds_count" { c = $2 }
        END { if (c != "") print s, c; else print "- -" }'
}
# ws_mean "SUM0 COUNT0" "SUM1 COUNT1": the mean start time between two scrapes.
ws_mean() {
    echo "$1 $2" | awk '$1 == "-" || $3 == "-" { print "could not read /metrics"; exit }
        { n = $4 - $2; if (n <= 0) { print "no worker started"; exit }
          printf "%.2f ms mean over %d worker starts", 1000 * ($3 - $1) / n, n }'
}

# worker_rss PID N: mean VmRSS (KiB) of the N largest paymentd-worker
# children of supervisor PID: during a step at concurrency N those are the
# N serving workers (idle pool workers have touched less memory).
worker_rss() {   # worker_rss SUPERVISOR_PID N
    local c
    for c in $(pgrep -P "$1"); do
        [ "$(cat "/proc/$c/comm" 2>/dev/null)" = paymentd-worker ] || continue
        awk '/^VmRSS:/ { print $2 }' "/proc/$c/status" 2>/dev/null
    done | sort -rn | head -n "$2" | awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n; else print 0 }'
}
# run_loadgen_rss LABEL PID C ...: run_loadgen, sampling the serving workers'
# RSS halfway through the measured window.
run_loadgen_rss() {
    local label=$1 pid=$2 c=$3 sampler; shift 3
    ( sleep $((WARMUP + STEP / 2)); worker_rss "$pid" "$c" >"$OUT/rss-$label" ) & sampler=$!
    run_loadgen "$label" uniform "$c" --connections "$c" "$@"
    wait "$sampler" 2>/dev/null || true
}

PGB=load-tests/pgbench
i=0
for ROUND in $(seq "$ROUNDS"); do
    for c in $LEVELS; do
        echo "bench: AuthorizePayment uniform, concurrency $c (round $ROUND of $ROUNDS)"
        if [ $((i % 2)) = 0 ]; then
            run_loadgen_rss "authorize-c$c" "$PAYMENTD_PID" "$c"
            run_pgbench "authorize-c$c" "$PGB/authorize-uniform.sql" "$c"
        else
            run_pgbench "authorize-c$c" "$PGB/authorize-uniform.sql" "$c"
            run_loadgen_rss "authorize-c$c" "$PAYMENTD_PID" "$c"
        fi
        i=$((i + 1))
        if [[ " $TLS_LEVELS " == *" $c "* ]]; then
            echo "bench: AuthorizePayment uniform over TLS 1.3 + mTLS, concurrency $c (round $ROUND of $ROUNDS)"
            LG=("${LG_TLS[@]}")
            run_loadgen_rss "tls-authorize-c$c" "$TLS_PID" "$c"
            echo "bench: AuthorizePayment uniform with a bearer token (AUTH_MODE=token), concurrency $c (round $ROUND of $ROUNDS)"
            LG=("${LG_AUTH[@]}")
            run_loadgen_rss "auth-authorize-c$c" "$AUTH_PID" "$c"
            LG=("${LG_CLEAR[@]}")
        fi
    done
    if [ "$ATTACK_C" -gt 0 ]; then
        echo "bench: AuthorizePayment uniform, concurrency $ATTACK_C, default front-door limits, without and with attackers (round $ROUND of $ROUNDS)"
        LG=("${LG_FD[@]}")
        for k in 0 1; do
            if [ $(((i + k) % 2)) = 0 ]; then
                run_loadgen "frontdoor-c$ATTACK_C" uniform "$ATTACK_C" --connections "$ATTACK_C"
            else
                attack_start "$OUT" "$FD_TARGET"
                run_loadgen "attack-frontdoor-c$ATTACK_C" uniform "$ATTACK_C" --connections "$ATTACK_C"
                attack_stop
                echo "attack round $ROUND: $(attack_count "$OUT" rr) rapid-reset, $(attack_count "$OUT" hp) hpack-bomb, $(attack_count "$OUT" si) silent-socket attacker connections" >>"$OUT/attack.txt"
                # Until the silent sockets' workers are gone (handshake timeout).
                sleep 6
            fi
        done
        i=$((i + 1))
        LG=("${LG_CLEAR[@]}")
    fi
    for c in $CAPTURE_LEVELS; do
        echo "bench: authorize+capture (MANUAL AuthorizePayment, then CapturePayment), concurrency $c (round $ROUND of $ROUNDS)"
        if [ $((i % 2)) = 0 ]; then
            run_loadgen "capture-c$c" capture "$c" --connections "$c"
            run_pgbench "capture-c$c" "$PGB/capture.sql" "$c"
        else
            run_pgbench "capture-c$c" "$PGB/capture.sql" "$c"
            run_loadgen "capture-c$c" capture "$c" --connections "$c"
        fi
        i=$((i + 1))
    done
done
ROUND=1
if [ "$USE_TOOLS" = 1 ]; then
    for c in $TOOLS_LEVELS; do
        echo "bench: AuthorizePayment uniform, concurrency $c: ghz on 1 connection, ghz on $c, paymentd-goclient (1 channel)"
        run_ghz ghz-1conn "authorize-c$c" "$c" 1
        run_ghz ghz-Nconn "authorize-c$c" "$c" "$c"
        run_goclient "authorize-c$c" "$c"
    done
fi
echo "bench: AuthorizePayment hot account, concurrency $HOT_C"
run_loadgen "hot-c$HOT_C" hot "$HOT_C" --connections "$HOT_C"
run_pgbench "hot-c$HOT_C" "$PGB/authorize-hot.sql" "$HOT_C"
echo "bench: GetAccountBalance, concurrency $BAL_C"
run_loadgen "balance-c$BAL_C" balance "$BAL_C" --connections "$BAL_C"
run_pgbench "balance-c$BAL_C" "$PGB/balance.sql" "$BAL_C"
echo "bench: new connection per AuthorizePayment, concurrency $NEWCONN_C"
ws_newconn0=$(worker_starts)
run_loadgen "newconn-c$NEWCONN_C" newconn "$NEWCONN_C"
ws_newconn1=$(worker_starts)
run_pgbench "newconn-c$NEWCONN_C" "$PGB/authorize-uniform.sql" "$NEWCONN_C" -C
echo "bench: new TLS connection per AuthorizePayment, concurrency $NEWCONN_C: full handshake, then resumed"
tls_hs() {   # tls_hs: "FULL RESUMED SUM_S COUNT" of the TLS daemon's handshakes so far
    curl -fsS --max-time 5 "http://127.0.0.1:$TLS_METRICS_PORT/metrics" 2>/dev/null | awk '
        $1 == "paymentd_tls_handshakes_total{resumed=\"false\"}" { f = $2 }
        $1 == "paymentd_tls_handshakes_total{resumed=\"true\"}" { r = $2 }
        $1 == "paymentd_tls_handshake_seconds_sum" { s = $2 }
        $1 == "paymentd_tls_handshake_seconds_count" { c = $2 }
        END { print f + 0, r + 0, s + 0, c + 0 }'
}
# hs_mean "F R S C" "F R S C": mean server-side handshake (first byte to
# Finished, the key-holder's signature included) between two snapshots.
hs_mean() {
    echo "$1 $2" | awk '{ n = $8 - $4; if (n <= 0) { print "no handshake"; exit }
        printf "%.2f ms mean over %d handshakes (%d full, %d resumed)", 1000 * ($7 - $3) / n, n, $5 - $1, $6 - $2 }'
}
LG=("${LG_TLS[@]}")
hs0=$(tls_hs)
run_loadgen "tls-newconn-c$NEWCONN_C" newconn "$NEWCONN_C"
hs1=$(tls_hs)
run_loadgen "tls-resume-newconn-c$NEWCONN_C" newconn "$NEWCONN_C" --tls-resume
hs2=$(tls_hs)
LG=("${LG_CLEAR[@]}")

ws_end=$(worker_starts)
verify_out=$("$BUILD_DIR/payment-verify" --max-report 5 2>&1) && verify_rc=0 || verify_rc=$?

# Per tool and step, the round with the median throughput (all of its
# figures, so a row stays one real measurement).
MEDIAN='group_by([.tool, .label]) | map(sort_by(.rps) | .[(length - 1) / 2 | floor])
    | sort_by((.label | if startswith("authorize-") then 0 elif startswith("capture-") then 1
                        elif startswith("hot") then 2 elif startswith("balance") then 3 else 4 end), .concurrency)'


{
    echo
    echo "paymentd vs pgbench — $(date -u +%FT%TZ), $(nproc) CPUs, ${STEP}s per step after ${WARMUP}s warmup, $ACCOUNTS accounts, fsync+synchronous_commit on"
    printf "%-15s %4s | %9s %6s %6s %6s %6s %4s %4s %5s | %9s %6s %6s %6s %4s %4s | %6s\n" \
        step conc "paymentd/s" p50ms p95ms p99ms p999ms cpu% ext% clcpu "pgbench/s" p50ms p95ms p99ms cpu% ext% ratio
    jq -rs "$MEDIAN"'
        | (map(select(.tool == "pgbench")) | INDEX(.label)) as $pg
        | map(select(.tool == "paymentd" and (.label | test("^(tls|auth|frontdoor|attack)-") | not)))[]
        | . as $p | ($pg[$p.label] // {}) as $g
        | [ $p.label, $p.concurrency, $p.rps, $p.p50, $p.p95, $p.p99, $p.p999, $p.busy, $p.ext, $p.client_cpu_s,
            ($g.rps // 0), ($g.p50 // 0), ($g.p95 // 0), ($g.p99 // 0), ($g.busy // 0), ($g.ext // 0),
            (if ($g.rps // 0) > 0 then $p.rps / $g.rps else 0 end), $p.errors + ($g.errors // 0) ]
        | @tsv' "$OUT/results.jsonl" |
    while IFS=$'\t' read -r l c r p50 p95 p99 p999 busy ext clcpu gr g50 g95 g99 gbusy gext ratio errs; do
        printf "%-15s %4s | %9.1f %6.2f %6.2f %6.2f %6.2f %4s %4s %5.1f | %9.1f %6.2f %6.2f %6.2f %4s %4s | %5.2fx%s\n" \
            "$l" "$c" "$r" "$p50" "$p95" "$p99" "$p999" "$busy" "$ext" "$clcpu" "$gr" "$g50" "$g95" "$g99" "$gbusy" "$gext" "$ratio" \
            "$([ "$errs" != 0 ] && echo "  ($errs errors)")"
    done
    if [ "$USE_TOOLS" = 1 ]; then
        echo
        echo "load generators, same AuthorizePayment step and accounts (ratio = throughput / the C loadgen's row above at that concurrency)"
        printf "%-15s %4s | %-9s %5s | %9s %6s %6s %6s %6s %4s %4s %5s | %6s\n" \
            step conc tool conns "calls/s" p50ms p95ms p99ms p999ms cpu% ext% clcpu "vs C"
        jq -rs --arg levels "$TOOLS_LEVELS" "$MEDIAN"'
            | ($levels | split(" ") | map(select(. != "") | tonumber)) as $lv
            | (map(select(.tool == "paymentd")) | INDEX(.label)) as $lg
            | ["paymentd", "ghz-1conn", "ghz-Nconn", "goclient"] as $order
            | [ .[] | select((.label | startswith("authorize-")) and (.concurrency as $c | $lv | index($c)))
                    | select(.tool as $t | $order | index($t)) ]
            | sort_by(.concurrency, (.tool as $t | $order | index($t)))[]
            | ($lg[.label].rps // 0) as $base
            | [ .label, .concurrency, (if .tool == "paymentd" then "loadgen" else .tool end),
                (.connections // .concurrency), .rps, .p50, .p95, .p99, (.p999 // "-"), .busy, .ext,
                (.client_cpu_s // 0), (if $base > 0 then .rps / $base else "-" end), .errors,
                (if .ledger_rows != null then "\(.ledger_rows) in ledger" else "" end) ]
            | @tsv' "$OUT/results.jsonl" |
        while IFS=$'\t' read -r l c t n r p50 p95 p99 p999 busy ext clcpu ratio errs led; do
            [ "$p999" = - ] || p999=$(printf "%.2f" "$p999")
            [ "$ratio" = - ] || ratio=$(printf "%.2fx" "$ratio")
            printf "%-15s %4s | %-9s %5s | %9.1f %6.2f %6.2f %6.2f %6s %4s %4s %5.1f | %6s%s\n" \
                "$l" "$c" "$t" "$n" "$r" "$p50" "$p95" "$p99" "$p999" "$busy" "$ext" "$clcpu" "$ratio" \
                "$([ "$errs" != 0 ] && echo "  ($errs errors; $led)")"
        done
        echo "loadgen = paymentd-loadgen (C, grpc core), one connection per call in flight, median round; ghz-1conn ="
        echo "ghz --connections=1 --concurrency=C (all calls multiplexed on one HTTP/2 connection, served by one worker,"
        echo "one RPC at a time); ghz-Nconn = ghz --connections=C; goclient = paymentd-goclient, one grpc-go channel"
        echo "(one connection), C calls in flight, no warmup. ghz and goclient ran once, after the rounds; errors"
        echo "include non-OK calls and any gap between calls answered OK and the payments found in the ledger under"
        echo "the run's idempotency key prefix. clcpu = the client's CPU seconds (whole run, warmup included)."
    fi
    echo
    echo "TLS 1.3 + client certificates (ECDSA P-256, key in the key-holder) vs cleartext, same round medians"
    printf "%-24s %4s | %9s %6s %6s %6s %4s | %9s %6s | %6s | %9s %9s\n" \
        step conc "tls/s" p50ms p99ms p999ms cpu% "clear/s" p99ms ratio "tlsRSS" "clearRSS"
    jq -rs "$MEDIAN"'
        | (map(select(.tool == "paymentd")) | INDEX(.label)) as $p
        | map(select(.tool == "paymentd" and (.label | startswith("tls-authorize-"))))[]
        | . as $t | ($p[$t.label | ltrimstr("tls-")] // {}) as $c
        | [ $t.label, $t.concurrency, $t.rps, $t.p50, $t.p99, $t.p999, $t.busy, ($c.rps // 0), ($c.p99 // 0),
            (if ($c.rps // 0) > 0 then $t.rps / $c.rps else 0 end), $t.errors + ($c.errors // 0) ]
        | @tsv' "$OUT/results.jsonl" |
    while IFS=$'\t' read -r l c r p50 p99 p999 busy cr cp99 ratio errs; do
        trss=$(cat "$OUT/rss-$l" 2>/dev/null || echo 0); crss=$(cat "$OUT/rss-${l#tls-}" 2>/dev/null || echo 0)
        printf "%-24s %4s | %9.1f %6.2f %6.2f %6.2f %4s | %9.1f %6.2f | %5.2fx | %6.1f MiB %6.1f MiB%s\n" \
            "$l" "$c" "$r" "$p50" "$p99" "$p999" "$busy" "$cr" "$cp99" "$ratio" \
            "$(echo "$trss" | awk '{ print $1 / 1024 }')" "$(echo "$crss" | awk '{ print $1 / 1024 }')" \
            "$([ "$errs" != 0 ] && echo "  ($errs errors)")"
    done
    jq -rs "$MEDIAN"' | (map(select(.tool == "paymentd")) | INDEX(.label)) as $p
        | map(select(.tool == "paymentd" and (.label | startswith("tls-authorize-"))))[]
        | ($p[.label | ltrimstr("tls-")].rps // 0) as $c
        | "  target TLS >= 0.90x cleartext at concurrency \(.concurrency): \(if $c <= 0 then "no cleartext figure"
            elif .rps >= 0.9 * $c then "met" else "MISSED" end) (\(.rps | floor)/s vs \($c | floor)/s)"' \
        "$OUT/results.jsonl"
    echo
    echo "Identity: AUTH_MODE=token (client bench, bearer token, '*' grant) vs AUTH_MODE=none (client legacy), cleartext,"
    echo "same round medians; both include the ledger hash chain (it is always on; docs/ledger.md gives its own cost)"
    jq -rs "$MEDIAN"' | (map(select(.tool == "paymentd")) | INDEX(.label)) as $p
        | map(select(.tool == "paymentd" and (.label | startswith("auth-authorize-"))))[]
        | ($p[.label | ltrimstr("auth-")] // {}) as $c
        | "  concurrency \(.concurrency): \(.rps | floor)/s p50 \(.p50) ms p99 \(.p99) ms vs \(($c.rps // 0) | floor)/s p50 \($c.p50 // 0) ms: \(if ($c.rps // 0) > 0 then ((.rps / $c.rps * 100 | round) / 100 | tostring) + "x" else "no figure" end); goal >= 0.95x: \(if ($c.rps // 0) <= 0 then "no figure" elif .rps >= 0.95 * $c.rps then "met" else "MISSED" end)\(if .errors > 0 then ", \(.errors) errors" else "" end)"' \
        "$OUT/results.jsonl"
    if [ "$ATTACK_C" -gt 0 ]; then
        echo "Under attack: AuthorizePayment from 127.0.0.1 with rapid-reset, HPACK-bomb and silent-socket attackers"
        echo "(tests/lib/attack.sh, other addresses, nice 19) vs without them, default front-door limits, same round medians"
        jq -rs "$MEDIAN"' | (map(select(.tool == "paymentd")) | INDEX(.label)) as $p
            | map(select(.tool == "paymentd" and (.label | startswith("attack-"))))[]
            | ($p[.label | ltrimstr("attack-")] // {}) as $c
            | def ms: (. // 0) * 100 | round / 100 | tostring;
            "  concurrency \(.concurrency): \(.rps | floor)/s p50 \(.p50 | ms) ms p99 \(.p99 | ms) ms vs \(($c.rps // 0) | floor)/s p50 \($c.p50 | ms) ms p99 \($c.p99 | ms) ms: \(if ($c.rps // 0) > 0 then ((.rps / $c.rps * 100 | round) / 100 | tostring) + "x" else "no figure" end); target >= 0.90x: \(if ($c.rps // 0) <= 0 then "no figure" elif .rps >= 0.9 * $c.rps then "met" else "MISSED" end)\(if .errors > 0 then ", \(.errors) errors" else "" end)"' \
            "$OUT/results.jsonl"
        if [ "$ROUNDS" -gt 1 ]; then
            jq -rs 'map(select(.tool == "paymentd" and (.label | test("^(attack-)?frontdoor-")))) | group_by(.label | ltrimstr("attack-"))[]
                | (map(select(.label | startswith("attack-") | not)) | INDEX(.round | tostring)) as $b
                | "  per-round ratios: " + ([ .[] | select(.label | startswith("attack-")) | . as $a
                    | ($b[$a.round | tostring].rps // 0) as $r
                    | if $r > 0 then ($a.rps / $r * 100 | round / 100 | tostring) else "-" end ] | join(" "))' \
                "$OUT/results.jsonl"
        fi
        sed 's/^/  /' "$OUT/attack.txt" 2>/dev/null || true
    fi
    echo "New connections (one payment each; the TLS rows with a full handshake, then resumed):"
    jq -rs 'map(select(.tool == "paymentd" and (.label | test("newconn"))))[]
        | "  \(.label): \(.rps) new connections/s (one payment each), p50 \(.p50) ms, p99 \(.p99) ms\(if .errors > 0 then ", \(.errors) errors" else "" end)"' \
        "$OUT/results.jsonl"
    echo "  server-side TLS handshake: full-handshake step $(hs_mean "$hs0" "$hs1"); resumed step $(hs_mean "$hs1" "$hs2")"
    echo "worker start (worker_start_seconds on /metrics, fork to READY): newconn step $(ws_mean "$ws_newconn0" "$ws_newconn1");" \
         "whole bench $(ws_mean "0 0" "$ws_end")"
    echo "cpu% = whole-machine CPU busy during the step, ext% = the part of it used by processes outside the bench"
    echo "(other users of a shared machine: compare only steps with low ext%); clcpu = CPU seconds the loadgen used."
    echo "newconn: paymentd latency includes TCP + HTTP/2 setup and a worker hand-off; pgbench -C latency excludes"
    echo "its connect time (its throughput includes it). Target: uniform AuthorizePayment >= 0.80x pgbench:"
    jq -rs "$MEDIAN"' | (map(select(.tool == "pgbench")) | INDEX(.label)) as $pg
        | map(select(.tool == "paymentd" and (.label | startswith("authorize-"))))[]
        | ($pg[.label].rps // 0) as $g
        | "  concurrency \(.concurrency): \(if $g <= 0 then "no pgbench figure" elif .rps >= 0.8 * $g
            then "met" else "MISSED" end) (\(.rps | floor)/s vs \($g | floor)/s)"' \
        "$OUT/results.jsonl"
    echo "Target: authorize+capture pairs (MANUAL AuthorizePayment + CapturePayment) >= 0.80x pgbench's same two calls:"
    jq -rs "$MEDIAN"' | (map(select(.tool == "pgbench")) | INDEX(.label)) as $pg
        | map(select(.tool == "paymentd" and (.label | startswith("capture-"))))[]
        | ($pg[.label].rps // 0) as $g
        | def ms: (. // 0) * 100 | round / 100 | tostring;
        "  concurrency \(.concurrency): \(if $g <= 0 then "no pgbench figure" elif .rps >= 0.8 * $g
            then "met" else "MISSED" end) (\(.rps | floor) pairs/s vs \($g | floor)/s); pair p50/p99 \(.p50 | ms)/\(.p99 | ms) ms = authorize \(.auth_p50 | ms)/\(.auth_p99 | ms) ms + capture \(.cap_p50 | ms)/\(.cap_p99 | ms) ms\(if (.capture_refused // 0) > 0 then "; \(.capture_refused) captures refused" else "" end)"' \
        "$OUT/results.jsonl"
    if [ "$ROUNDS" -gt 1 ]; then
        echo "per-round ratios (paymentd/pgbench, rounds in order; the table uses each side's median round):"
        jq -rs 'map(select(.label | startswith("authorize-") or startswith("capture-"))) | group_by(.label)[]
            | (map(select(.tool == "pgbench")) | INDEX(.round | tostring)) as $g
            | "  \(.[0].label): " + ([ .[] | select(.tool == "paymentd") | . as $p
                | ($g[$p.round | tostring].rps // 0) as $r
                | if $r > 0 then ($p.rps / $r * 100 | round / 100 | tostring) else "-" end ] | join(" "))' \
            "$OUT/results.jsonl"
    fi
    echo "ledger after the bench (payment-verify): $(grep -E '^payment-verify: [0-9]+ violation' <<<"$verify_out" ||
        echo "could not check (exit $verify_rc): $(grep -m1 -E '^payment-verify: .*(ERROR|connect|failed)' <<<"$verify_out")")"
} | tee "$OUT/bench.txt"

errors=$(jq -s 'map(.errors) | add' "$OUT/results.jsonl")
if [ "$verify_rc" != 0 ]; then echo "$verify_out"; fi
[ "$errors" = 0 ] && [ "$verify_rc" = 0 ]
