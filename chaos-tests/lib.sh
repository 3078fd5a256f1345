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
#   - the ledger invariants hold (entries sum to zero, available + pending
#     of every balance equal its entries, pending = the sum of its open
#     holds, no overdraft, refunded <= captured and = the sum of the
#     refunds, the entries each payment's state calls for), and
#     payment-verify finds no violation, hash chains included
#     (docs/ledger.md);
#   - where a scenario ran the lifecycle stream too (life_start: MANUAL
#     authorize -> partial capture -> partial refund, every call retried
#     with its own key until answered), every such key was answered, a
#     retry of it replays the first result (same payment, same refund id),
#     and no capture or refund happened twice: one CAPTURE entry pair and
#     the captured amount asked for per payment, one refund row (two REFUND
#     entries) per refund key, amounts as asked (check_life);
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

# One call of the lifecycle stream: paymentctl ARGS... until it answers
# (exit 0: JSON on stdout), at most 40 tries 0.25 s apart; the answer in
# $LIFE_OUT, the first try's outcome (OK or the gRPC code) in $LIFE_FIRST.
life_call() {
    local try out code
    LIFE_FIRST= LIFE_OUT=
    for try in $(seq 40); do
        if out=$("$BUILD_DIR/paymentctl" --target "$T" --timeout 5000 "$@" 2>&1) && jq -e . >/dev/null 2>&1 <<<"$out"; then
            LIFE_OUT=$out
            LIFE_FIRST=${LIFE_FIRST:-OK}
            return 0
        fi
        code=$(sed -n 's/.*Code: \([A-Z_]*\).*/\1/p' <<<"$out"); LIFE_FIRST=${LIFE_FIRST:-${code:-NOCONN}}
        sleep 0.25
    done
    return 1
}
# One lifecycle client: N MANUAL payments between its two accounts (others
# than client()'s pairs use too), each authorized, then captured for all
# but 0..49 cents of the hold, then refunded half of what was captured.
# Records "op<TAB>key<TAB>payment<TAB>amount<TAB>first<TAB>result" per call
# in $CHAOS_DIR/load/life-ID.tsv: result = the payment's status after it
# (refund: the refund id), UNANSWERED if no try got an answer.
life_client() {   # life_client ID N
    local id=$1 n=$2 i key pid amt cap ref res first
    local payer="chaos-$(((id + 10) % 20))" payee="chaos-$(((id + 13) % 20))"
    local f=$CHAOS_DIR/load/life-$id.tsv
    for i in $(seq "$n"); do
        key="chaosl-$RUN-$id-$i"
        amt=$((100 + RANDOM % 900)); cap=$((amt - RANDOM % 50)); ref=$((cap / 2))
        if ! life_call authorize --key "$key" --payer "$payer" --payee "$payee" --amount "$amt" \
            --currency USD --capture-method manual --metadata "chaos=$RUN"; then
            printf 'authorize\t%s\t-\t%s\t%s\tUNANSWERED\n' "$key" "$amt" "$LIFE_FIRST" >>"$f"; continue
        fi
        pid=$(jq -r '.paymentId // "-"' <<<"$LIFE_OUT"); res=$(jq -r .status <<<"$LIFE_OUT")
        first=$LIFE_FIRST
        # A retry of an authorization that committed before its worker died
        # answers DUPLICATE: the payment itself says what came of it.
        if [ "$res" = PAYMENT_STATUS_DUPLICATE ] && life_call get "$pid"; then
            res=$(jq -r .payment.status <<<"$LIFE_OUT")
        fi
        printf 'authorize\t%s\t%s\t%s\t%s\t%s\n' "$key" "$pid" "$amt" "$first" "$res" >>"$f"
        [ "$res" = PAYMENT_STATUS_AUTHORIZED ] || continue
        if life_call capture "$pid" --key "$key-capture" --amount "$cap"; then
            res=$(jq -r 'if .error then "ERROR:" + .error.code else .payment.status end' <<<"$LIFE_OUT")
        else
            res=UNANSWERED
        fi
        printf 'capture\t%s\t%s\t%s\t%s\t%s\n' "$key-capture" "$pid" "$cap" "$LIFE_FIRST" "$res" >>"$f"
        [ "$res" = PAYMENT_STATUS_CAPTURED ] || continue
        if life_call refund "$pid" --key "$key-refund" --amount "$ref" --reason chaos; then
            res=$(jq -r 'if .error then "ERROR:" + .error.code else .refund.refundId end' <<<"$LIFE_OUT")
        else
            res=UNANSWERED
        fi
        printf 'refund\t%s\t%s\t%s\t%s\t%s\n' "$key-refund" "$pid" "$ref" "$LIFE_FIRST" "$res" >>"$f"
    done
}
life_start() {   # life_start CLIENTS PER_CLIENT (after load_start: same RUN, joins LOAD_PIDS)
    local c
    for c in $(seq "$1"); do life_client "$c" "$2" & LOAD_PIDS+=($!); done
}

# After the fault, for the lifecycle stream: every call answered, each key
# replays its first result, nothing done twice.
check_life() {
    local label=$1 f=$CHAOS_DIR/load/lifecycle.tsv op k pid amt first res out again
    local total=0 unanswered=0 refused=0 failed=0 mism=0 n v
    cat "$CHAOS_DIR"/load/life-*.tsv 2>/dev/null | grep -v '^$' >"$f.tmp"; mv "$f.tmp" "$f"
    total=$(wc -l <"$f")
    while IFS=$'\t' read -r op k pid amt first res; do
        [ "$first" = OK ] || failed=$((failed + 1))
        case $res in
            UNANSWERED) unanswered=$((unanswered + 1)); continue ;;
            ERROR:*) refused=$((refused + 1)) ;;
        esac
        # The same call again, as a client retrying after the fault: the
        # first result, marked replayed (authorize: DUPLICATE).
        case $op in
            authorize)
                out=$("$BUILD_DIR/paymentctl" --target "$T" --timeout 5000 authorize --key "$k" \
                    --payer "$(q -c "SELECT payer_account_id FROM payments WHERE payment_id = '$pid'")" \
                    --payee "$(q -c "SELECT payee_account_id FROM payments WHERE payment_id = '$pid'")" \
                    --amount "$amt" --currency USD --capture-method manual --metadata "chaos=$RUN" 2>&1)
                again=$(jq -r 'select(.status == "PAYMENT_STATUS_DUPLICATE") | .paymentId' <<<"$out" 2>/dev/null)
                [ "$again" = "$pid" ] ;;
            capture)
                out=$("$BUILD_DIR/paymentctl" --target "$T" --timeout 5000 capture "$pid" --key "$k" --amount "$amt" 2>&1)
                again=$(jq -r 'select(.replayed == true) | if .error then "ERROR:" + .error.code else .payment.status end' <<<"$out" 2>/dev/null)
                [ "$again" = "$res" ] ;;
            refund)
                out=$("$BUILD_DIR/paymentctl" --target "$T" --timeout 5000 refund "$pid" --key "$k" --amount "$amt" --reason chaos 2>&1)
                again=$(jq -r 'select(.replayed == true) | if .error then "ERROR:" + .error.code else .refund.refundId end' <<<"$out" 2>/dev/null)
                [ "$again" = "$res" ] ;;
        esac || {
            mism=$((mism + 1))
            [ $mism -le 3 ] && echo "   replay mismatch: $op key $k first $res, again: $(tr -d '\n ' <<<"$out" | cut -c1-200)"
        }
    done <"$f"
    n=$(grep -c '^capture' "$f"); v=$(grep -c '^refund' "$f")
    [ "$total" -gt 0 ] && [ "$unanswered" = 0 ] \
        && ok "$label: lifecycle stream: all $total calls answered ($n captures, $v refunds; $failed first tries failed during the fault)" \
        || bad "$label: lifecycle stream: $unanswered of $total calls unanswered"
    [ "$refused" = 0 ] && ok "$label: lifecycle stream: no capture or refund refused" \
        || bad "$label: lifecycle stream: $refused captures/refunds refused ($(grep -o 'ERROR:[A-Z_]*' "$f" | sort | uniq -c | tr '\n' ' '))"
    [ "$mism" = 0 ] && ok "$label: lifecycle stream: every key replays its first result (same payment, same refund id)" \
        || bad "$label: lifecycle stream: $mism keys do not replay their first result"
    # Nothing twice: per payment of the stream, the capture asked for once
    # (one CAPTURE pair, its amount), one refund per refund key that got one
    # (its amount, two REFUND entries), the totals on the payment row.
    # The answered captures and refunds as VALUES (ids are [0-9A-Z] ULIDs,
    # amounts digits: nothing to quote).
    local cv rv
    cv=$(awk -F'\t' '$1 == "capture" && $6 == "PAYMENT_STATUS_CAPTURED" { printf "%s(\x27%s\x27, %s)", (n++ ? ", " : ""), $3, $4 }' "$f")
    rv=$(awk -F'\t' '$1 == "refund" && $6 !~ /^(UNANSWERED|ERROR:)/ { printf "%s(\x27%s\x27, %s, \x27%s\x27)", (n++ ? ", " : ""), $3, $4, $6 }' "$f")
    cv=${cv:+VALUES $cv}; rv=${rv:+VALUES $rv}
    [ -n "$cv" ] || cv="SELECT NULL::text, NULL::bigint WHERE false"
    [ -n "$rv" ] || rv="SELECT NULL::text, NULL::bigint, NULL::text WHERE false"
    v=$(q -c "WITH c (payment_id, amt) AS ($cv), r (payment_id, amt, refund_id) AS ($rv)
              SELECT (SELECT count(*) FROM c JOIN payments p USING (payment_id)
                       WHERE p.status <> 'CAPTURED' OR p.captured_amount_cents <> c.amt
                          OR (SELECT count(*) FROM ledger_entries e WHERE e.payment_id = c.payment_id AND e.kind = 'CAPTURE') <> 2)
                  || ' ' || (SELECT count(*) FROM r LEFT JOIN refunds f USING (refund_id)
                       WHERE f.refund_id IS NULL OR f.payment_id <> r.payment_id OR f.amount_cents <> r.amt
                          OR (SELECT count(*) FROM ledger_entries e WHERE e.refund_id = r.refund_id AND e.kind = 'REFUND') <> 2)
                  || ' ' || (SELECT count(*) FROM payments p WHERE p.idempotency_key LIKE 'chaosl-$RUN-%'
                       AND ((SELECT count(*) FROM refunds f WHERE f.payment_id = p.payment_id)
                              <> (SELECT count(*) FROM r WHERE r.payment_id = p.payment_id)
                            OR p.refunded_amount_cents <> (SELECT coalesce(sum(amt), 0) FROM r WHERE r.payment_id = p.payment_id)))
                  || ' ' || (SELECT count(*) FROM c) || ' ' || (SELECT count(*) FROM r)" 2>&1 | tail -n1)
    [ "$(cut -d' ' -f1-3 <<<"$v")" = "0 0 0" ] \
        && ok "$label: lifecycle stream: no capture or refund happened twice ($(cut -d' ' -f4 <<<"$v") captures: one CAPTURE pair each, the amount asked; $(cut -d' ' -f5 <<<"$v") refunds: one row and one REFUND pair per key)" \
        || bad "$label: lifecycle stream: captures off: $(cut -d' ' -f1 <<<"$v"), refunds off: $(cut -d' ' -f2 <<<"$v"), payments whose refunds differ from the keys answered: $(cut -d' ' -f3 <<<"$v") ($v)"
}

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
    # A hold moves money from available to pending and posts nothing: what
    # the entries add up to is available + pending.
    v=$(q -c "SELECT count(*) FROM account_balances b WHERE b.available_cents + b.pending_cents <> coalesce((SELECT sum(CASE
              direction WHEN 'DEBIT' THEN -amount_cents ELSE amount_cents END) FROM ledger_entries e
              WHERE e.account_id = b.account_id), 0) OR b.available_cents < -b.overdraft_limit_cents")
    [ "$v" = 0 ] && ok "$label: every balance (available + pending) equals its entries, no overdraft" || bad "$label: $v accounts off"
    v=$(q -c "SELECT count(*) FROM account_balances b WHERE b.pending_cents <> coalesce((SELECT sum(p.amount_cents)
              FROM payments p WHERE p.payer_account_id = b.account_id AND p.capture_method = 'MANUAL'
              AND p.status = 'AUTHORIZED'), 0)")
    [ "$v" = 0 ] && ok "$label: every pending balance is the sum of its open holds" || bad "$label: $v accounts' pending differs from their open holds"
    v=$(q -c "SELECT count(*) FROM payments p WHERE p.refunded_amount_cents > p.captured_amount_cents
              OR p.refunded_amount_cents <> coalesce((SELECT sum(f.amount_cents) FROM refunds f WHERE f.payment_id = p.payment_id), 0)")
    [ "$v" = 0 ] && ok "$label: refunded <= captured, and = the sum of the refunds, for every payment" || bad "$label: $v payments refunded beyond what was captured or off their refunds"
    # The entries each state calls for: AUTOMATIC AUTHORIZED one PAYMENT
    # pair; CAPTURED one CAPTURE pair; a hold (open, voided, expired) and a
    # decline none; plus one REFUND pair per refund.
    v=$(q -c "SELECT count(*) FROM payments p, LATERAL (SELECT count(*) FILTER (WHERE kind = 'PAYMENT') AS pay,
                     count(*) FILTER (WHERE kind = 'CAPTURE') AS cap, count(*) FILTER (WHERE kind = 'REFUND') AS ref
                FROM ledger_entries e WHERE e.payment_id = p.payment_id) e
              WHERE e.pay <> CASE WHEN p.status = 'AUTHORIZED' AND p.capture_method = 'AUTOMATIC' THEN 2 ELSE 0 END
                 OR e.cap <> CASE WHEN p.status = 'CAPTURED' THEN 2 ELSE 0 END
                 OR e.ref <> 2 * (SELECT count(*) FROM refunds f WHERE f.payment_id = p.payment_id)")
    [ "$v" = 0 ] && ok "$label: every payment has the entries its state calls for (one DEBIT and one CREDIT per posting)" || bad "$label: $v payments lack entries or have extra ones"
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
    # One topic per event type (the relay's <prefix>.<lowercased type>):
    # the seed's two and every type the outbox holds (lifecycle, accounts).
    for tp in $( { echo paymentauthorized; echo paymentdeclined
                   q -c "SELECT DISTINCT lower(event_type) FROM outbox"; } | sort -u); do
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
