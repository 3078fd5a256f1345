# tests/relay/lib.sh — shared by the tests/suites/3x-relay-* scripts.
#
# Contract: sourced by a suite after `set -uo pipefail`, with the harness's
# environment (DATABASE_URL/PG*, BUILD_DIR, STACK_DIR, TEST_LOG_DIR) or the
# same variables set by hand. Sources tests/lib/tap.sh (ok, bad, check,
# tap_summary) and tests/lib/stack.sh (q, kafka_ctl, stack_start_relay,
# stack_stop, ...). relay_setup NAME starts a private kafka-mock (its own
# process, loopback only, kept up across relay restarts) and prepares a
# journal directory under $STACK_DIR/relay-NAME; an EXIT trap stops the
# relay and the mock whatever happens. relay_finish prints the
# "NAME: N passed, N failed" line and sets the exit code.
# check_exactly_once compares the broker with Postgres by event_id: every
# row the relays of this suite published is on the broker exactly once
# (payment topics or DLQ), and the broker holds nothing else.
# unordered_events counts messages whose outbox_seq does not grow with the
# offset within their topic and key.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tests/lib/tap.sh"
. "$ROOT/tests/lib/stack.sh"
STACK_DIR=${STACK_DIR:-$ROOT/.stack-test}
TEST_LOG_DIR=${TEST_LOG_DIR:-$STACK_DIR/logs}
export ENV_FILE=${ENV_FILE:-/dev/null}

relay_cleanup() {
    [ -n "$RELAY_PID" ] && kill -KILL "$RELAY_PID" 2>/dev/null
    stack_stop "$RELAY_PID" "$KAFKA_PID"
    RELAY_PID=; KAFKA_PID=
}

relay_setup() {   # relay_setup NAME
    D=$STACK_DIR/relay-$1
    rm -rf "$D"; mkdir -p "$D" "$TEST_LOG_DIR"
    # The relay drops to the paymentd user when started as root.
    [ "$(id -u)" = 0 ] && id paymentd >/dev/null 2>&1 && chown paymentd: "$D"
    LOG=$TEST_LOG_DIR/relay-$1.log; : >"$LOG"
    trap relay_cleanup EXIT
    stack_start_kafka "$D" "$D/mock.log" || bad "$1: kafka-mock did not start"
    BOOT=$KAFKA_BOOT
    export REDPANDA_BROKERS=$BOOT RELAY_JOURNAL_PATH=$D/journal.db KAFKA_TOPIC_PREFIX=payments
    export OUTBOX_POLL_INTERVAL_SECONDS=${OUTBOX_POLL_INTERVAL_SECONDS:-0.1}
    export OUTBOX_BATCH_SIZE=${OUTBOX_BATCH_SIZE:-100}
    export OUTBOX_BASE_DELAY_SECONDS=${OUTBOX_BASE_DELAY_SECONDS:-0.1}
    export OUTBOX_MAX_DELAY_SECONDS=${OUTBOX_MAX_DELAY_SECONDS:-2}
    export OUTBOX_MAX_RETRIES=${OUTBOX_MAX_RETRIES:-3}
    # What this suite's relays publish: rows published from now on.
    T0=$(q -c "SELECT now()")
    q >/dev/null <<'SQL'
INSERT INTO accounts (account_id, currency)
  SELECT 'relay-payer-' || i, 'USD' FROM generate_series(0, 9) i
  UNION ALL VALUES ('relay-payer-late', 'USD'), ('relay-payee-late', 'USD') ON CONFLICT DO NOTHING;
INSERT INTO account_balances (account_id, overdraft_limit_cents)
  SELECT account_id, 1000000000 FROM accounts WHERE account_id LIKE 'relay-pay%'
  ON CONFLICT DO NOTHING;
SQL
}

start_relay() { stack_start_relay "$LOG"; }
stop_relay() {
    [ -n "$RELAY_PID" ] || return 0
    STACK_STOP_SECONDS=60 stack_stop "$RELAY_PID"; RELAY_PID=
}
wait_log() {   # wait_log PATTERN COUNT SECONDS: until PATTERN was logged COUNT times
    local t=0
    while [ "$(grep -c -- "$1" "$LOG")" -lt "$2" ]; do
        sleep 0.1; t=$((t + 1)); [ $t -ge $(($3 * 10)) ] && return 1
    done
}
relay_alive() { stack_alive "$RELAY_PID"; }

# Payments, each committed on its own, through authorize_payment: every
# 7th has amount 0 and is declined (a PaymentDeclined event).
stream() {   # stream N PREFIX SLEEP_SECONDS
    q >/dev/null <<SQL
DO \$\$ BEGIN
  FOR i IN 1..$1 LOOP
    PERFORM authorize_payment('$2-' || i, 'relay-payer-' || (i % 10), 'acc-payee-002',
        CASE WHEN i % 7 = 0 THEN 0 ELSE 1 END, 'USD', '',
        sha256(convert_to('$2-' || i, 'UTF8')), '$2-p' || i, 86400, '$2-corr-' || i);
    COMMIT;
    PERFORM pg_sleep($3);
  END LOOP;
END \$\$;
SQL
}

# Every message of the payment topics: topic \t partition \t offset \t key \t headers
dump() {
    for t in paymentauthorized paymentdeclined; do
        kcat -b "$BOOT" -C -t "payments.$t" -e -q -f '%t\t%p\t%o\t%k\t%h\n' 2>/dev/null
    done
}
dump_values() {   # topic \t value, for the schema validator
    for t in "$@"; do kcat -b "$BOOT" -C -t "payments.$t" -e -q -f '%t\t%s\n' 2>/dev/null; done
}
ids_of() { grep -o 'event_id=[0-9a-f-]*' | cut -d= -f2; }
# Messages (from dump) whose outbox_seq is not above the previous one of
# their topic and key, in offset order.
unordered_events() {
    dump | sort -t$'\t' -k1,1 -k2,2n -k3,3n | awk -F'\t' '{
        match($5, /outbox_seq=[0-9]+/); s = substr($5, RSTART + 11, RLENGTH - 11) + 0
        k = $1 "|" $4; if (k in last && s <= last[k]) bad++; last[k] = s } END { print bad + 0 }'
}

check_exactly_once() {   # check_exactly_once LABEL
    local label=$1 msgs distinct dlq rows extra missing both
    dump >"$D/dump"
    ids_of <"$D/dump" | sort >"$D/ids.broker"
    kcat -b "$BOOT" -C -t payments.dlq -e -q -f '%h\n' 2>/dev/null | ids_of | sort >"$D/ids.dlq"
    q -c "SELECT event_id FROM outbox WHERE published_at >= '$T0' ORDER BY 1" >"$D/ids.pg"
    msgs=$(wc -l <"$D/ids.broker")
    distinct=$(sort -u "$D/ids.broker" | wc -l)
    dlq=$(wc -l <"$D/ids.dlq")
    rows=$(wc -l <"$D/ids.pg")
    sort -u "$D/ids.broker" "$D/ids.dlq" >"$D/ids.all"
    missing=$(comm -23 "$D/ids.pg" "$D/ids.all" | wc -l)
    extra=$(comm -13 "$D/ids.pg" "$D/ids.all" | wc -l)
    both=$(comm -12 <(sort -u "$D/ids.broker") <(sort -u "$D/ids.dlq") | wc -l)
    if [ "$msgs" = "$distinct" ] && [ "$missing" = 0 ] && [ "$extra" = 0 ] && [ "$both" = 0 ] \
        && [ "$rows" -gt 0 ] && [ "$((msgs + dlq))" = "$rows" ]; then
        ok "$label: $rows published rows = $msgs messages ($distinct distinct event ids) + $dlq dead-lettered"
    else
        bad "$label: rows=$rows messages=$msgs distinct=$distinct dlq=$dlq missing=$missing extra=$extra in_both=$both"
    fi
}

validate_schemas() {   # validate_schemas LABEL TOPIC...
    local label=$1 out; shift
    if ! (cd "$ROOT/tests/relay" && { [ -d node_modules/ajv-formats ] ||
        npm install --no-audit --no-fund --loglevel=error >/dev/null 2>&1; }); then
        bad "$label: npm install of the schema validator failed"; return
    fi
    out=$(dump_values "$@" | node "$ROOT/tests/relay/validate-events.js")
    if [ $? = 0 ]; then ok "$label: real messages valid against schemas/ (${out##*$'\n'})"
    else bad "$label: $out"; fi
}

relay_finish() {
    stop_relay
    local name; name=$(basename "$0"); name=${name#*-}
    tap_summary "$name"
}
