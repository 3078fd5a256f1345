# SPDX-License-Identifier: MIT
# chaos-tests/lib.sh — shared helpers for the chaos scenarios.
#
# Each scenario runs against its own full stack (private Postgres, Redis,
# relay, paymentd, its own Kafka topics) under $CHAOS_DIR, drives payments
# with many concurrent clients, injects one kind of fault, and then checks
# what a user cares about:
#   - every idempotency key a client saw succeed still maps to exactly one
#     payment (retrying it returns DUPLICATE with the same payment id);
#   - keys whose request failed (UNAVAILABLE, DEADLINE_EXCEEDED...) are
#     retried until they get an answer, and still make at most one payment;
#   - the ledger invariants hold (entries sum to zero, balances equal their
#     entries and last balance_after, no overdraft), and payment-verify
#     finds no violation, hash chains included (docs/ledger.md);
#   - after the relay drains, each event is on the broker exactly once:
#     the committed messages (read with isolation.level=read_committed)
#     against the published outbox rows, by event_id — no duplicate, none
#     lost, nothing else;
#   - both /metrics endpoints (paymentd's, the relay's) answer and agree.
# Results are printed as "ok - ..." / "FAIL - ..." lines and counted.
#
# The broker (KAFKA):
#   real (default)  Apache Kafka 3.9.1 (scripts/kafka-broker), one process
#                   for the whole run on KAFKA_PORT (and +1) of the chaos
#                   block (CHAOS_KAFKA_PORT overrides it), data under
#                   $CHAOS_DIR/kafka; every scenario gets its own topics
#                   (prefix chaos-N-RUN); broker-outage kills it with
#                   SIGKILL and starts it again with its data.
#   mock            build/kafka-mock, a new one per scenario (machines
#                   without Java); broker-outage is kafka_ctl down/up.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# ok/bad/check/tap_summary, and the stack helpers (ports_profile, q,
# stack_start_paymentd, stack_start_relay, stack_start_kafka, kafka_ctl,
# stack_stop, ...).
. "$ROOT/tests/lib/tap.sh"
. "$ROOT/tests/lib/stack.sh"
CHAOS_DIR=${CHAOS_DIR:-$ROOT/.stack-chaos}
export STACK_DIR=$CHAOS_DIR/stack
# The chaos block of tests/lib/ports.sh (CHAOS_PORT_BASE, CHAOS_*_PORT
# override it). Both /metrics endpoints on, as in production: they are
# scraped after every fault (check_metrics).
ports_profile chaos || exit 1
KAFKA=${KAFKA:-real}
case $KAFKA in
    real | mock) ;;
    *) echo "chaos: KAFKA must be real or mock, not '$KAFKA'" >&2; exit 2 ;;
esac
CHAOS_KAFKA_DIR=$CHAOS_DIR/kafka
CHAOS_N=0
export GRPC_HOST=127.0.0.1
export ENV_FILE=/dev/null LOG_LEVEL=${LOG_LEVEL:-WARNING}
export STACK_DURABLE=1 MIGRATIONS_DIR=$ROOT/migrations
export WORKER_POOL_SIZE=4 MAX_WORKERS=128 SHUTDOWN_GRACE_SECONDS=10
# Cleartext on loopback, one client address: see tests/run-all.
export TLS=${TLS:-off} PAYMENTD_PLAINTEXT=1 MAX_CONNECTIONS_PER_IP=0 CONNECTION_RATE_PER_IP=0 ABUSE_PENALTY_SECONDS=0
export AUTH_MODE=${AUTH_MODE:-none}
export OUTBOX_POLL_INTERVAL_SECONDS=0.1 OUTBOX_BASE_DELAY_SECONDS=0.1 OUTBOX_MAX_DELAY_SECONDS=2
T=127.0.0.1:$GRPC_PORT

PAYMENTD_PID=

# The run's real broker: started by the first scenario (fresh data), and
# again by a later one if a fault left it down.
chaos_broker() {
    local t0=$SECONDS
    if [ "$KAFKA_KIND" = real ] && stack_kafka status >/dev/null 2>&1; then return 0; fi
    if [ "$KAFKA_KIND" = real ]; then
        echo "note - the broker was not running after the last scenario: starting it again"
        stack_kafka resume >/dev/null 2>&1
        stack_stop_kafka
    else
        "$STACK_KAFKA_BROKER" stop "$CHAOS_KAFKA_DIR" >/dev/null 2>&1
        rm -rf "$CHAOS_KAFKA_DIR"
    fi
    stack_start_kafka "$CHAOS_KAFKA_DIR" "$KAFKA_PORT" || return 1
    echo "note - Apache Kafka broker pid $KAFKA_PID on $KAFKA_BOOT (up in $((SECONDS - t0)) s)"
}
# At the end of the run (chaos-tests/run's EXIT trap).
chaos_broker_stop() { [ "$KAFKA_KIND" = real ] && stack_stop_kafka; return 0; }

stack_up() {
    stack_infra_stop	# a previous run's servers
    # Everything of the previous scenario but the run's broker.
    mkdir -p "$CHAOS_DIR"
    find "$CHAOS_DIR" -mindepth 1 -maxdepth 1 ! -name kafka -exec rm -rf {} +
    mkdir -p "$CHAOS_DIR/logs" "$CHAOS_DIR/relay" "$CHAOS_DIR/load"
    [ "$(id -u)" = 0 ] && chown paymentd: "$CHAOS_DIR/relay"
    stack_infra_start || return 1
    stack_migrate "$CHAOS_DIR/logs/migrate.log" || return 1
    q >/dev/null <<'SQL'
INSERT INTO accounts (account_id, currency)
  SELECT 'chaos-' || i, 'USD' FROM generate_series(0, 19) i;
INSERT INTO account_balances (account_id) SELECT 'chaos-' || i FROM generate_series(0, 19) i;
SELECT authorize_payment(legacy_client_id(), 'fund-chaos-' || i, 'acc-equity-usd', 'chaos-' || i, 10000000, 'USD', '',
       sha256(convert_to('fund-chaos-' || i, 'UTF8')), 'fund-chaos-' || i, 86400, 'reset-test-data')
  FROM generate_series(0, 19) i;
DELETE FROM outbox WHERE correlation_id = 'reset-test-data';
SQL
    CHAOS_N=$((CHAOS_N + 1))
    export KAFKA_TOPIC_PREFIX=chaos-$CHAOS_N-$$
    if [ "$KAFKA" = real ]; then
        chaos_broker || return 1
        stack_kafka_topics "$KAFKA_TOPIC_PREFIX" || return 1
    else
        stack_start_kafka_mock "$CHAOS_DIR" "$CHAOS_DIR/logs/kafka-mock.log" || return 1
    fi
    export REDPANDA_BROKERS=$KAFKA_BOOT RELAY_JOURNAL_PATH=$CHAOS_DIR/relay/journal.db
    relay_start
    paymentd_start
}

paymentd_start() {
    local rc=0
    stack_start_paymentd "$CHAOS_DIR/logs/paymentd.log" || rc=1
    PAYMENTD_PID=$STACK_PID
    return $rc
}
relay_start() { stack_start_relay "$CHAOS_DIR/logs/relay.log"; }

stack_down() {
    stack_stop "$PAYMENTD_PID" "$RELAY_PID"
    [ "$KAFKA_KIND" = mock ] && stack_stop_kafka
    stack_infra_stop
}

# The broker goes away for SECONDS and comes back: real, SIGKILL and a
# restart with its data (the restart itself takes some seconds more);
# mock, kafka_ctl down/up.
broker_down() {   # broker_down SECONDS
    if [ "$KAFKA" = real ]; then
        stack_kafka kill9 || return 1
        sleep "$1"
        stack_kafka restart
    else
        kafka_ctl down 1 || return 1
        sleep "$1"
        kafka_ctl up 1
    fi
}

# One client: N payments with its own keys, one connection per request
# (like the seed's k6 script). Records "key<TAB>code<TAB>status<TAB>id".
client() {   # client ID N
    local id=$1 n=$2 i key out code st pid amt
    local payer="chaos-$((id % 20))" payee="chaos-$(((id + 1) % 20))"
    for i in $(seq "$n"); do
        key="chaos-$RUN-$id-$i"
        amt=$((1 + RANDOM % 500))
        out=$("$BUILD_DIR/paymentctl" --target "$T" --timeout 5000 authorize --key "$key" \
            --payer "$payer" --payee "$payee" --amount "$amt" --currency USD 2>&1)
        if grep -q '"status"' <<<"$out"; then
            code=OK
            st=$(echo "$out" | sed -n 's/.*"status": "\([A-Z_]*\)".*/\1/p')
            pid=$(echo "$out" | sed -n 's/.*"paymentId": "\([^"]*\)".*/\1/p')
        else
            code=$(echo "$out" | sed -n 's/.*Code: \([A-Z_]*\).*/\1/p'); code=${code:-NOCONN}
            st=-; pid=-
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$code" "$st" "$pid" "$payer" "$payee" "$amt" \
            >>"$CHAOS_DIR/load/client-$id.tsv"
    done
}
load_start() {   # load_start CLIENTS PER_CLIENT
    RUN=$(date +%s%N); LOAD_PIDS=()
    local c
    for c in $(seq "$1"); do client "$c" "$2" & LOAD_PIDS+=($!); done
}
load_wait() { local p; for p in "${LOAD_PIDS[@]}"; do wait "$p"; done; }

# After the fault: every key exactly one payment, answers stable on retry.
check_keys() {
    local label=$1 total=0 okc=0 failed=0 mism=0 lost=0 unanswered=0 k code st pid payer payee amt out
    cat "$CHAOS_DIR"/load/client-*.tsv >"$CHAOS_DIR/load/all.tsv" 2>/dev/null
    total=$(wc -l <"$CHAOS_DIR/load/all.tsv")
    while IFS=$'\t' read -r k code st pid payer payee amt; do
        # Retry every key with its own parameters, as a client must after
        # an error; a key whose first attempt failed is retried until it
        # is answered.
        for _ in $(seq 20); do
            out=$("$BUILD_DIR/paymentctl" --target "$T" --timeout 5000 authorize --key "$k" \
                --payer "$payer" --payee "$payee" --amount "$amt" --currency USD 2>&1)
            grep -q '"status"' <<<"$out" && break
            sleep 0.5
        done
        if ! grep -q '"status"' <<<"$out"; then
            unanswered=$((unanswered + 1))
            [ $unanswered -le 3 ] && echo "   unanswered: key $k ($code at first), last retry: $(echo "$out" | tr -d '\n' | cut -c1-200)"
        fi
        if [ "$code" = OK ]; then
            okc=$((okc + 1))
            # A success the client saw must replay: DUPLICATE, same payment.
            if ! { grep -q "PAYMENT_STATUS_DUPLICATE" <<<"$out" && grep -q "\"$pid\"" <<<"$out"; }; then
                mism=$((mism + 1))
                [ $mism -le 3 ] && echo "   mismatch: key $k first answer $st $pid, retry: $(echo "$out" | tr -d '\n ' | cut -c1-200)"
            fi
        else
            failed=$((failed + 1))
        fi
    done <"$CHAOS_DIR/load/all.tsv"
    [ "$unanswered" = 0 ] && ok "$label: every key answered on retry after the fault" \
        || bad "$label: $unanswered keys still unanswered after the fault"
    lost=$(q -c "SELECT count(*) FROM (SELECT idempotency_key FROM payments WHERE idempotency_key LIKE 'chaos-%'
                 GROUP BY idempotency_key HAVING count(*) > 1) d")
    [ "$mism" = 0 ] && ok "$label: all $okc keys answered during the fault replay as DUPLICATE of their payment" \
        || bad "$label: $mism of $okc answered keys do not map to their original payment"
    [ "$lost" = 0 ] && ok "$label: no key made two payments ($total requests, $failed failed during the fault)" \
        || bad "$label: $lost keys made more than one payment"
    local answered_missing
    answered_missing=$(awk -F'\t' '$2 == "OK" {print $4}' "$CHAOS_DIR/load/all.tsv" | while read -r p; do
        [ "$(q -c "SELECT count(*) FROM payments WHERE payment_id = '$p'")" = 1 ] || echo "$p"; done | wc -l)
    [ "$answered_missing" = 0 ] && ok "$label: every payment a client was told about exists" \
        || bad "$label: $answered_missing answered payments are missing"
}

check_ledger() {
    local label=$1 v
    v=$(q -c "SELECT coalesce(sum(CASE direction WHEN 'DEBIT' THEN -amount_cents ELSE amount_cents END), 0) FROM ledger_entries")
    [ "$v" = 0 ] && ok "$label: ledger entries sum to zero" || bad "$label: ledger sums to $v"
    v=$(q -c "SELECT count(*) FROM account_balances b WHERE b.available_cents <> coalesce((SELECT sum(CASE
              direction WHEN 'DEBIT' THEN -amount_cents ELSE amount_cents END) FROM ledger_entries e
              WHERE e.account_id = b.account_id), 0) OR b.available_cents < -b.overdraft_limit_cents")
    [ "$v" = 0 ] && ok "$label: every balance equals its entries, no overdraft" || bad "$label: $v accounts off"
    v=$(q -c "SELECT count(*) FROM payments p WHERE status = 'AUTHORIZED' AND (SELECT count(*) FROM ledger_entries e
              WHERE e.payment_id = p.payment_id) <> 2")
    [ "$v" = 0 ] && ok "$label: every authorized payment has one DEBIT and one CREDIT" || bad "$label: $v payments lack entries"
    # Every invariant payment-verify knows, on one snapshot, and the hash
    # chains recomputed in C: a fault must not leave an entry whose hash,
    # or a balance row whose last_hash, disagrees with the ledger.
    local out rc
    out=$("$BUILD_DIR/payment-verify" --database-url "$DATABASE_URL" 2>&1); rc=$?
    if [ $rc = 0 ] && grep -q '^ok    ledger hash chain' <<<"$out"; then
        ok "$label: payment-verify: 0 violations,$(grep '^ok    ledger hash chain' <<<"$out" | cut -d: -f2-)"
    else
        bad "$label: payment-verify exit $rc"; grep -v '^ok ' <<<"$out" | head -n 30 | sed 's/^/   /'
    fi
}

# Both exporters answer after the fault and agree that the outbox drained.
check_metrics() {
    local label=$1 r p
    r=$(curl -sf --max-time 3 "http://127.0.0.1:$RELAY_METRICS_PORT/metrics")
    if grep -qx 'payment_relay_up 1' <<<"$r" && grep -qx 'payment_relay_waiting_for_broker 0' <<<"$r"; then
        ok "$label: relay /metrics answers, not waiting for the broker"
    else
        bad "$label: relay /metrics: $(head -c 200 <<<"${r:-no answer}")"
    fi
    p=$(curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics")
    if grep -qx 'outbox_metrics_up 1' <<<"$p" && grep -qx 'outbox_pending_events 0' <<<"$p"; then
        ok "$label: paymentd /metrics answers, outbox_pending_events 0"
    else
        bad "$label: paymentd /metrics: $(grep -E '^outbox_(metrics_up|pending_events)' <<<"$p" | tr '\n' ' ')"
    fi
}

check_events() {
    local label=$1 msgs distinct rows pend dups lost extra dlq tp
    stack_wait_drained 60
    pend=$(stack_outbox_pending)
    [ "$pend" = 0 ] && ok "$label: the relay drained the outbox" || bad "$label: $pend events still unpublished"
    kill -0 "$RELAY_PID" 2>/dev/null && ok "$label: relay still running" || bad "$label: relay died"
    # What a consumer of committed data sees, by event_id, against the rows.
    for tp in paymentauthorized paymentdeclined; do
        stack_kafka_read "$KAFKA_TOPIC_PREFIX.$tp" '%h\n'
    done | grep -o 'event_id=[0-9a-f-]*' | cut -d= -f2 | sort >"$CHAOS_DIR/events"
    stack_kafka_read "$KAFKA_TOPIC_PREFIX.dlq" '%h\n' | grep -o 'event_id=[0-9a-f-]*' | cut -d= -f2 |
        sort >"$CHAOS_DIR/events.dlq"
    q -c "SELECT event_id FROM outbox WHERE published_at IS NOT NULL ORDER BY 1" >"$CHAOS_DIR/events.pg"
    msgs=$(wc -l <"$CHAOS_DIR/events")
    distinct=$(sort -u "$CHAOS_DIR/events" | wc -l)
    dlq=$(wc -l <"$CHAOS_DIR/events.dlq")
    rows=$(wc -l <"$CHAOS_DIR/events.pg")
    dups=$((msgs - distinct))
    sort -u "$CHAOS_DIR/events" "$CHAOS_DIR/events.dlq" >"$CHAOS_DIR/events.all"
    lost=$(comm -23 "$CHAOS_DIR/events.pg" "$CHAOS_DIR/events.all" | wc -l)
    extra=$(comm -13 "$CHAOS_DIR/events.pg" "$CHAOS_DIR/events.all" | wc -l)
    [ "$dups" = 0 ] && [ "$lost" = 0 ] && [ "$extra" = 0 ] && [ "$rows" -gt 0 ] && [ $((msgs + dlq)) = "$rows" ] \
        && ok "$label: events exactly once on the $KAFKA broker ($msgs committed messages = $distinct event ids = $((rows - dlq)) outbox rows + $dlq dead-lettered; 0 duplicates, 0 lost; read_committed)" \
        || bad "$label: $KAFKA broker, read_committed: messages=$msgs distinct=$distinct duplicates=$dups dlq=$dlq outbox=$rows lost=$lost extra=$extra"
}

health_of() { "$BUILD_DIR/paymentctl" --target "$T" --timeout 2000 health 2>/dev/null | sed -n 's/.*"status": "\([A-Z_]*\)".*/\1/p'; }
