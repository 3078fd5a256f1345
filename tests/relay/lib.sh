# SPDX-License-Identifier: MIT
# tests/relay/lib.sh — shared by the tests/suites/3x-relay-* scripts.
#
# Contract: sourced by a suite after `set -uo pipefail`, with the harness's
# environment (DATABASE_URL/PG*, BUILD_DIR, STACK_DIR, TEST_LOG_DIR, the
# test block's ports) or the same variables set by hand. Sources
# tests/lib/tap.sh (ok, bad, check, tap_summary) and tests/lib/stack.sh (q,
# kafka_ctl, stack_kafka, stack_start_relay, stack_stop, ...).
#
# The broker switch. A suite runs each scenario on one broker, chosen by
# KAFKA when the scenario's relay_setup runs:
#   KAFKA=mock   build/kafka-mock (librdkafka's mock cluster): in memory, no
#                transactions, faults on cue (kafka_ctl down/up/rtt/err).
#                A fresh mock per relay_setup.
#   KAFKA=real   Apache Kafka 3.9.1 (scripts/kafka-broker): one broker per
#                suite on port_for kafka (and +1) with its data under
#                $STACK_DIR/kafka-SUITE, kept across relay restarts and
#                scenarios (each scenario has its own topics); its start
#                begins in the background when this file is sourced, so it
#                overlaps the mock's scenarios; faults are the process's
#                own: stack_kafka kill9|restart|pause|resume.
# `for KAFKA in $(relay_brokers mock real); do ... done` runs a block on
# both; relay_brokers drops a broker that KAFKA in the suite's environment
# excludes (KAFKA=mock tests/run-all relay: the mock only, for machines
# without Java; KAFKA=real: the real broker only; unset: both).
#
# relay_setup NAME prepares a scenario on $KAFKA: stops a relay left by the
# previous scenario, starts its broker (see above), creates its topics
# TP.paymentauthorized, TP.paymentdeclined, TP.dlq with TP=relay-NAME-ID
# (exported as KAFKA_TOPIC_PREFIX), a fresh journal directory D under
# $STACK_DIR/relay-NAME-BROKER and the relay log LOG; ID ($$ and the
# broker's initial) keeps the scenario's idempotency keys and correlation
# ids apart from the other broker's run of it. Every result line it prints
# from then on starts with [mock] or [real]. An EXIT trap (set when this
# file is sourced; TERM and INT exit through it) stops the relay and the
# brokers whatever happens. relay_finish prints the
# "NAME: N passed, N failed" line and sets the exit code.
#
# Pairs (suite 36, the chaos failover scenarios): relay_start_as NAME
# [VAR=VALUE...] starts one more relay with its own journal $D/NAME/ (as on
# its own host), its log next to $LOG (relay_log NAME) and its pid
# (relay_pid NAME); relay_stop_as NAME stops it with SIGTERM (CONT first:
# it may be stopped) and returns its exit status; relay_setup and the EXIT
# trap stop them all. relay_setup also expires a lease left by an earlier
# scenario's relay (killed, so it could not hand it over) and forgets its
# open window (its broker, a mock, may be gone; its rows are still pending
# and go out on this scenario's topics): each scenario starts clean.
# relay_status prints `payment-relay status`; relay_lease_field NAME one of
# its fields.
# The real broker's port is port_for ${RELAY_KAFKA_PORT_NAME:-kafka} (and
# +1): a suite that may run beside the others names its own.
#
# check_exactly_once compares the broker with Postgres by event_id: every
# row the scenario's relays published (published_at >= T0, the scenario's
# start) is on its topics exactly once — a payment topic or the DLQ — and
# the topics hold nothing else. The broker is read to its end with
# isolation.level=read_committed (kcat, stack_kafka_read): on the real
# broker that is what a consumer of committed data sees (on the mock,
# which ignores isolation, it is everything). unordered_events counts
# messages whose outbox_seq does not grow with the offset within their
# topic and key.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$ROOT/tests/lib/tap.sh"
. "$ROOT/tests/lib/stack.sh"
STACK_DIR=${STACK_DIR:-$ROOT/.stack-test}
TEST_LOG_DIR=${TEST_LOG_DIR:-$STACK_DIR/logs}
export ENV_FILE=${ENV_FILE:-/dev/null}
[ -n "${PORTS_BASE:-}" ] || ports_profile test
RELAY_KAFKA_ONLY=${KAFKA:-}
case $RELAY_KAFKA_ONLY in
    '' | mock | real) ;;
    *) echo "relay: KAFKA must be mock or real, not '$RELAY_KAFKA_ONLY'" >&2; exit 2 ;;
esac
KAFKA=${KAFKA:-mock}
RELAY_SUITE=$(basename "$0"); RELAY_SUITE=${RELAY_SUITE#*-}
RELAY_REAL_DIR=$STACK_DIR/kafka-$RELAY_SUITE
TAP_OK_BASE=$TAP_OK_PREFIX TAP_FAIL_BASE=$TAP_FAIL_PREFIX

relay_brokers() {   # relay_brokers BROKER...: those the environment's KAFKA allows
    local b
    for b in "$@"; do
        [ -z "$RELAY_KAFKA_ONLY" ] || [ "$RELAY_KAFKA_ONLY" = "$b" ] && echo "$b"
    done
}

declare -A RELAYS=() RELAY_LOGS=()
relay_start_as() {   # relay_start_as NAME [VAR=VALUE...]
    local name=$1; shift
    mkdir -p "$D/$name"
    [ "$(id -u)" = 0 ] && id paymentd >/dev/null 2>&1 && chown paymentd: "$D/$name"
    RELAY_LOGS[$name]=${LOG%.log}-$name.log
    env RELAY_JOURNAL_PATH="$D/$name/journal.db" "$@" "$BUILD_DIR/payment-relay" >>"${RELAY_LOGS[$name]}" 2>&1 &
    RELAYS[$name]=$!
}
relay_pid() { echo "${RELAYS[$1]:-}"; }
relay_log() { echo "${RELAY_LOGS[$1]:-/dev/null}"; }
relay_stop_as() {   # relay_stop_as NAME: SIGTERM (after SIGCONT); its exit status
    local pid=${RELAYS[$1]:-} rc=0
    [ -n "$pid" ] || return 0
    kill -CONT "$pid" 2>/dev/null
    STACK_STOP_SECONDS=60 stack_stop "$pid"
    wait "$pid" 2>/dev/null; rc=$?
    unset "RELAYS[$1]"
    return $rc
}
relay_stop_all() {
    local n
    for n in "${!RELAYS[@]}"; do relay_stop_as "$n"; done
    return 0
}
relay_status() { "$BUILD_DIR/payment-relay" status; }
relay_lease_field() { relay_status | sed -n "s/^$1: //p"; }   # relay_lease_field NAME

relay_cleanup() {
    local n
    for n in "${!RELAYS[@]}"; do kill -KILL "${RELAYS[$n]}" 2>/dev/null; done
    [ -n "$RELAY_PID" ] && kill -KILL "$RELAY_PID" 2>/dev/null
    stack_stop "$RELAY_PID"
    RELAY_PID=
    stack_stop_kafka
    # The suite's real broker, also when it never got to use it.
    [ -z "$STACK_KAFKA_ASYNC_PID" ] || wait "$STACK_KAFKA_ASYNC_PID" 2>/dev/null
    "$STACK_KAFKA_BROKER" stop "$RELAY_REAL_DIR" >/dev/null 2>&1
    return 0
}

# The real broker of this suite, started once (fresh data), then reused.
# Its start begins in the background as the suite begins (relay_early),
# overlapping the mock's scenarios.
relay_early() {
    [ "$RELAY_KAFKA_ONLY" = mock ] && return 0
    "$STACK_KAFKA_BROKER" stop "$RELAY_REAL_DIR" >/dev/null 2>&1
    rm -rf "$RELAY_REAL_DIR"
    stack_start_kafka_async "$RELAY_REAL_DIR" "$(port_for "${RELAY_KAFKA_PORT_NAME:-kafka}")"
}
relay_real_broker() {
    [ "$KAFKA_KIND" = real ] && [ "$KAFKA_DIR" = "$RELAY_REAL_DIR" ] && return 0
    stack_stop_kafka	# a mock
    local t0=$SECONDS
    if [ -n "$STACK_KAFKA_ASYNC_PID" ]; then
        stack_kafka_await || return 1
        echo "note - Apache Kafka broker pid $KAFKA_PID on $KAFKA_BOOT for this suite (waited $((SECONDS - t0)) s for its start)"
        return 0
    fi
    "$STACK_KAFKA_BROKER" stop "$RELAY_REAL_DIR" >/dev/null 2>&1
    rm -rf "$RELAY_REAL_DIR"
    stack_start_kafka "$RELAY_REAL_DIR" "$(port_for "${RELAY_KAFKA_PORT_NAME:-kafka}")" || return 1
    echo "note - Apache Kafka broker pid $KAFKA_PID on $KAFKA_BOOT for this suite (up in $((SECONDS - t0)) s)"
}

relay_setup() {   # relay_setup NAME (on $KAFKA)
    case $KAFKA in
        mock | real) ;;
        *) echo "relay_setup: KAFKA must be mock or real, not '$KAFKA'" >&2; exit 2 ;;
    esac
    stop_relay
    relay_stop_all
    TAP_OK_PREFIX="$TAP_OK_BASE[$KAFKA] " TAP_FAIL_PREFIX="$TAP_FAIL_BASE[$KAFKA] "
    echo "--- $1 on the $KAFKA broker (at $SECONDS s)"
    ID=$$${KAFKA:0:1}
    TP=relay-$1-$ID
    D=$STACK_DIR/relay-$1-$KAFKA
    rm -rf "$D"; mkdir -p "$D" "$TEST_LOG_DIR"
    # The relay drops to the paymentd user when started as root.
    [ "$(id -u)" = 0 ] && id paymentd >/dev/null 2>&1 && chown paymentd: "$D"
    LOG=$TEST_LOG_DIR/relay-$1-$KAFKA.log; : >"$LOG"
    export KAFKA_TOPIC_PREFIX=$TP
    if [ "$KAFKA" = mock ]; then
        stack_stop_kafka	# the previous scenario's mock (or the real broker)
        stack_start_kafka_mock "$D" "$D/mock.log" || bad "$1: kafka-mock did not start"
    else
        relay_real_broker || bad "$1: the Kafka broker did not start"
        stack_kafka_topics "$TP" || bad "$1: could not create the topics $TP.*"
    fi
    BOOT=$KAFKA_BOOT
    export REDPANDA_BROKERS=$BOOT RELAY_JOURNAL_PATH=$D/journal.db
    export OUTBOX_POLL_INTERVAL_SECONDS=${OUTBOX_POLL_INTERVAL_SECONDS:-0.1}
    export OUTBOX_BATCH_SIZE=${OUTBOX_BATCH_SIZE:-100}
    export OUTBOX_BASE_DELAY_SECONDS=${OUTBOX_BASE_DELAY_SECONDS:-0.1}
    export OUTBOX_MAX_DELAY_SECONDS=${OUTBOX_MAX_DELAY_SECONDS:-2}
    export OUTBOX_MAX_RETRIES=${OUTBOX_MAX_RETRIES:-3}
    # No relay of this database runs now: a lease left by a killed one
    # (which could not hand it over) is over.
    q >/dev/null <<'SQL'
UPDATE relay_lease SET expires_at = now() WHERE expires_at > now();
DELETE FROM relay_windows;
SQL
    # What this scenario's relays publish: rows published from now on.
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
    return 0
}
relay_alive() { stack_alive "$RELAY_PID"; }

# Payments, each committed on its own, through authorize_payment: every
# 7th has amount 0 and is declined (a PaymentDeclined event). The acting
# client is CLIENT (default legacy, the AUTH_MODE=none caller); see
# relay_client for one that may debit the relay's payers.
stream() {   # stream N PREFIX SLEEP_SECONDS [CLIENT]
    q >/dev/null <<SQL
DO \$\$ BEGIN
  FOR i IN 1..$1 LOOP
    PERFORM authorize_payment((SELECT client_id FROM clients WHERE name = '${4:-legacy}'),
        '$2-' || i, 'relay-payer-' || (i % 10), 'acc-payee-002',
        CASE WHEN i % 7 = 0 THEN 0 ELSE 1 END, 'USD', '',
        sha256(convert_to('$2-' || i, 'UTF8')), '$2-p' || i, 86400, '$2-corr-' || i);
    COMMIT;
    PERFORM pg_sleep($3);
  END LOOP;
END \$\$;
SQL
}

# A non-admin client NAME that may debit the relay-payer-* accounts.
relay_client() {   # relay_client NAME
    q >/dev/null <<SQL
INSERT INTO clients (name) VALUES ('$1') ON CONFLICT DO NOTHING;
INSERT INTO account_grants (client_id, account_pattern, can_debit)
  SELECT client_id, 'relay-payer-*', true FROM clients WHERE name = '$1'
  ON CONFLICT DO NOTHING;
SQL
}

# Messages (dump's lines) whose `client` header is not the outbox row's
# client_name: absent exactly when the row has none (written before
# migration 0004), else equal to it, and never twice.
wrong_client_headers() {   # wrong_client_headers SINCE
    q -F $'\t' -c "SELECT event_id, coalesce(client_name, '-') FROM outbox WHERE published_at >= '$1'" >"$D/clients"
    dump | awk -F'\t' 'NR == FNR { cl[$1] = $2; next }
        { match($5, /event_id=[0-9a-f-]+/); id = substr($5, RSTART + 9, RLENGTH - 9)
          n = split($5, hs, ","); got = "-"; seen = 0
          for (i = 1; i <= n; i++) if (substr(hs[i], 1, 7) == "client=") { got = substr(hs[i], 8); seen++ }
          if (!(id in cl) || got != cl[id] || seen > 1) bad++ }
        END { print bad + 0 }' "$D/clients" -
}

# Every committed message of the scenario's payment topics:
# topic \t partition \t offset \t key \t headers
dump() {   # dump [ISOLATION]
    local t
    for t in paymentauthorized paymentdeclined; do
        stack_kafka_read "$TP.$t" '%t\t%p\t%o\t%k\t%h\n' "${1:-read_committed}"
    done
}
dump_values() {   # topic \t value, for the schema validator
    local t
    for t in "$@"; do stack_kafka_read "$TP.$t" '%t\t%s\n'; done
}
dump_dlq() { stack_kafka_read "$TP.dlq" "${1:-%h\t%s\n}"; }   # dump_dlq [FORMAT]
ids_of() { grep -o 'event_id=[0-9a-f-]*' | cut -d= -f2; }
# Messages (from dump) whose outbox_seq is not above the previous one of
# their topic and key, in offset order.
unordered_events() {
    dump | sort -t$'\t' -k1,1 -k2,2n -k3,3n | awk -F'\t' '{
        match($5, /outbox_seq=[0-9]+/); s = substr($5, RSTART + 11, RLENGTH - 11) + 0
        k = $1 "|" $4; if (k in last && s <= last[k]) bad++; last[k] = s } END { print bad + 0 }'
}

check_exactly_once() {   # check_exactly_once LABEL
    local label=$1 msgs distinct dlq rows extra missing both dups unc=""
    dump >"$D/dump"
    ids_of <"$D/dump" | sort >"$D/ids.broker"
    dump_dlq '%h\n' | ids_of | sort >"$D/ids.dlq"
    q -c "SELECT event_id FROM outbox WHERE published_at >= '$T0' ORDER BY 1" >"$D/ids.pg"
    msgs=$(wc -l <"$D/ids.broker")
    distinct=$(sort -u "$D/ids.broker" | wc -l)
    dups=$((msgs - distinct))
    dlq=$(wc -l <"$D/ids.dlq")
    rows=$(wc -l <"$D/ids.pg")
    sort -u "$D/ids.broker" "$D/ids.dlq" >"$D/ids.all"
    missing=$(comm -23 "$D/ids.pg" "$D/ids.all" | wc -l)
    extra=$(comm -13 "$D/ids.pg" "$D/ids.all" | wc -l)
    both=$(comm -12 <(sort -u "$D/ids.broker") <(sort -u "$D/ids.dlq") | wc -l)
    # On the real broker, also what a read_uncommitted consumer sees: the
    # same while the relay writes no transactions (said, not judged).
    [ "$KAFKA" = real ] && unc="; read_uncommitted sees $(dump read_uncommitted | wc -l)"
    if [ "$msgs" = "$distinct" ] && [ "$missing" = 0 ] && [ "$extra" = 0 ] && [ "$both" = 0 ] \
        && [ "$rows" -gt 0 ] && [ "$((msgs + dlq))" = "$rows" ]; then
        ok "$label: exactly once: $rows published rows = $msgs committed messages ($distinct distinct event ids, $dups duplicates, $missing lost) + $dlq dead-lettered (read_committed$unc)"
    else
        bad "$label: rows=$rows messages=$msgs distinct=$distinct duplicates=$dups dlq=$dlq lost=$missing extra=$extra in_both=$both (read_committed$unc)"
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
    relay_stop_all
    TAP_OK_PREFIX=$TAP_OK_BASE TAP_FAIL_PREFIX=$TAP_FAIL_BASE
    echo "note - $RELAY_SUITE took $SECONDS s"
    tap_summary "$RELAY_SUITE"
}

trap relay_cleanup EXIT
trap 'exit 143' TERM	# (so that EXIT runs: the real broker is not a child)
trap 'exit 130' INT
relay_early
