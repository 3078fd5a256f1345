# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# chaos-tests/pg-failover.sh — the pg-failover scenario of chaos-tests/run
# (sourced by it after lib.sh; defines s_pg_failover).
#
# The scenario's stack (stack_up) gets a synchronous streaming standby
# (scripts/stack replica start, on the chaos block's pg-replica port);
# paymentd and the relay are restarted with the multi-host DATABASE_URL
# (target_session_attrs=read-write). Under the clients' load the primary is
# stopped (immediate: a crash), the standby promoted FAILOVER_GAP seconds
# later; then the usual checks run against the new primary: every key
# answered and exactly one payment per key, the ledger and payment-verify,
# events exactly once on the broker, both /metrics. Also: clients saw
# UNAVAILABLE and nothing else, health SERVING again without restarting
# paymentd.

FAILOVER_GAP=${FAILOVER_GAP:-3}

s_pg_failover() {
    local rport url st others unavail
    rport=$(port_for pg-replica)
    url="postgresql://paymentd@127.0.0.1:$PG_PORT,127.0.0.1:$rport/paymentd?target_session_attrs=read-write"
    if ! PG_REPLICA_PORT=$rport "$ROOT/scripts/stack" replica start >"$CHAOS_DIR/logs/replica.log" 2>&1; then
        bad "pg-failover: the standby did not start"; sed 's/^/   /' "$CHAOS_DIR/logs/replica.log" | tail -n 10
        return
    fi
    stack_stop "$PAYMENTD_PID" "$RELAY_PID"
    export DATABASE_URL=$url
    relay_start
    paymentd_start || { bad "pg-failover: paymentd did not start with $url"; return; }
    ok "pg-failover: paymentd and the relay on $url (standby synchronous)"
    load_start "$CLIENTS" "$PER"
    sleep 1
    PG_REPLICA_PORT=$rport "$ROOT/scripts/stack" primary stop immediate >>"$CHAOS_DIR/logs/replica.log" 2>&1
    sleep "$FAILOVER_GAP"
    PG_REPLICA_PORT=$rport "$ROOT/scripts/stack" replica promote >>"$CHAOS_DIR/logs/replica.log" 2>&1 \
        && ok "pg-failover: primary stopped (immediate), standby promoted ${FAILOVER_GAP} s later" \
        || bad "pg-failover: promote failed"
    # From here q, psql and the checks read the new primary.
    export PGPORT=$rport
    load_wait
    unavail=$(cat "$CHAOS_DIR"/load/client-*.tsv | awk -F'\t' '$2 == "UNAVAILABLE"' | wc -l)
    others=$(cat "$CHAOS_DIR"/load/client-*.tsv | awk -F'\t' '$2 != "OK" && $2 != "UNAVAILABLE" { print $2 }' | sort | uniq -c | tr '\n' ' ')
    [ "$unavail" -gt 0 ] && ok "pg-failover: $unavail requests got UNAVAILABLE during the switch" \
        || bad "pg-failover: no client saw UNAVAILABLE"
    [ -z "$others" ] && ok "pg-failover: no other error than UNAVAILABLE" || bad "pg-failover: other errors: $others"
    for _ in $(seq 20); do st=$(health_of); [ "$st" = SERVING ] && break; sleep 0.5; done
    [ "$st" = SERVING ] && kill -0 "$PAYMENTD_PID" \
        && ok "pg-failover: SERVING on the new primary without restarting paymentd" \
        || bad "pg-failover: did not recover (health '$st')"
    finish pg-failover
    # (The next scenario's stack_up exports its own DATABASE_URL and PG*.)
}
