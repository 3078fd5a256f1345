# SPDX-License-Identifier: MIT
# tests/lib/ports.sh — the one place that chooses the listening ports of the
# tests (tests/run-all and its suites), the chaos tests (chaos-tests/), the
# development stack (make run: scripts/dev-up, dev-down, stack) and the
# benchmark (load-tests/bench.sh).
#
# Contract: sourced (bash, safe under set -euo pipefail). Nothing happens on
# source; a script calls
#
#   ports_profile PROFILE     PROFILE is test, chaos, dev or bench
#
# which exports PORTS_PROFILE, PORTS_BASE (the profile's block), PG_PORT,
# REDIS_PORT, GRPC_PORT, METRICS_PORT, RELAY_METRICS_PORT, KAFKA_PORT (the
# real Kafka broker's listener; its KRaft controller takes KAFKA_PORT+1) and
# PORTS_POOL_LO/PORTS_POOL_HI (the block's range for free-port look-ups,
# also read by tests/lib/testlib.c). Then
#
#   port_for NAME             prints the port NAME has in the block (see
#                             the table below; a name not in it gets a
#                             port from the pool that is free right now)
#   port_free [NAME]          prints a port from the pool with no socket on
#                             it right now (NAME only picks where to start)
#   ports_list                prints "NAME PORT" for every port of the
#                             profile (pool: its two ends), for 11-ports
#   ports_ephemeral           prints the kernel's ephemeral range "LO HI"
#
# Every port is outside the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 here): a listener
# there can find its port taken by some program's outgoing connection.
# The one exception is the development stack's gRPC port, 50051, the
# service's documented default (the grpcurl examples use it).
#
# Blocks of 1000 ports, one per profile, so that all four can run at once:
#
#   profile  block (default)  override of the whole block
#   test     24000-24999      TEST_PORT_BASE
#   chaos    25000-25999      CHAOS_PORT_BASE
#   dev      26000-26999      DEV_PORT_BASE
#   bench    27000-27999      BENCH_PORT_BASE
#
# (If the ephemeral range ever reaches below 28000 the four blocks move to
# just below it, or if there is no room there, to just above it.)
#
# Inside a block (offsets from its base):
#
#   +0 pg  +1 redis  +2 grpc  +3 metrics  +4 relay-metrics
#   +5 kafka, +6 kafka-controller: the real Apache Kafka broker
#       (scripts/kafka-broker start DIR PORT listens on PORT and PORT+1):
#       the relay suites' broker (one suite at a time), the chaos run's,
#       make run's
#   +10 drain (22-drain's own paymentd)
#   +11 e2e, +12 e2e-metrics (27-operability-e2e)
#   +13 exec-workers, +14 exec-workers-metrics (41-exec-workers)
#   +15 ports-probe (11-ports)
#   +16 front-door, +17 front-door-metrics (45-front-door)
#   +18 tls, +19 tls-metrics (44-tls, 51-node-tls)
#   +20 keyholder, +21 keyholder-metrics (46-keyholder)
#   +22 scrape, +23 scrape-metrics, +24 scrape-relay-metrics (47-scrape)
#   +25 auth, +26 auth-metrics (48-auth)
#   +27 auth-load, +28 auth-load-metrics (49-auth-load)
#   +29 relay-failover-kafka, +30 relay-failover-kafka-controller: the real
#       broker of 36-relay-failover (its own, so that it never waits for the
#       other relay suites' broker); +31 relay-failover-metrics-a,
#       +32 relay-failover-metrics-b (its two relays' /metrics)
#   +35 pg-replica (scripts/stack replica: the streaming standby of the
#       stack's Postgres), +36 failover-grpc, +37 failover-pg
#       (37-pg-failover: its paymentd and its own primary)
#   +38 lifecycle, +39 lifecycle-metrics (61-lifecycle's authenticated
#       paymentd), +40 accounts, +41 accounts-metrics (62-accounts),
#       +42 janitor, +43 janitor-metrics (63-janitor)
#   +100..+106 chaos-pg chaos-redis chaos-grpc chaos-metrics
#       chaos-relay-metrics chaos-kafka chaos-kafka-controller: the short
#       chaos run inside make test (tests/suites/80-chaos-short), so that it
#       never shares ports with a standalone chaos run
#   +500..+999 the pool (port_free, tl_free_port() in tests/lib/testlib.c)
#
# Single ports can still be set as before: TEST_PG_PORT, TEST_REDIS_PORT,
# TEST_GRPC_PORT, TEST_METRICS_PORT, TEST_RELAY_METRICS_PORT,
# TEST_KAFKA_PORT; CHAOS_*_PORT (same names); BENCH_PG_PORT,
# BENCH_REDIS_PORT, BENCH_GRPC_PORT, BENCH_KAFKA_PORT; for dev DEV_*_PORT
# or, as scripts/dev-up always honoured, plain PG_PORT, REDIS_PORT,
# GRPC_PORT, METRICS_PORT, RELAY_METRICS_PORT (the dev broker's port only
# as DEV_KAFKA_PORT). The controller's port always follows KAFKA_PORT
# (+1). Dev's metrics ports stay 9090/9091 (documented; below the
# ephemeral range).

PORTS_BLOCK=1000
PORTS_POOL_OFFSET=500
# name:offset for port_for and ports_list (the service ports come first).
PORTS_NAMED="pg:0 redis:1 grpc:2 metrics:3 relay-metrics:4 kafka:5 kafka-controller:6
drain:10 e2e:11 e2e-metrics:12 exec-workers:13 exec-workers-metrics:14 ports-probe:15 front-door:16 front-door-metrics:17 tls:18 tls-metrics:19 keyholder:20 keyholder-metrics:21 scrape:22 scrape-metrics:23 scrape-relay-metrics:24 auth:25 auth-metrics:26 auth-load:27 auth-load-metrics:28
relay-failover-kafka:29 relay-failover-kafka-controller:30 relay-failover-metrics-a:31 relay-failover-metrics-b:32
pg-replica:35 failover-grpc:36 failover-pg:37
lifecycle:38 lifecycle-metrics:39 accounts:40 accounts-metrics:41 janitor:42 janitor-metrics:43
chaos-pg:100 chaos-redis:101 chaos-grpc:102 chaos-metrics:103 chaos-relay-metrics:104
chaos-kafka:105 chaos-kafka-controller:106"

ports_ephemeral() {
    local lo=32768 hi=60999
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
        read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
    fi
    echo "$lo $hi"
}

# _ports_default_base INDEX: the default base of profile INDEX (0 test,
# 1 chaos, 2 dev, 3 bench), outside the live ephemeral range.
_ports_default_base() {
    local idx=$1 lo hi first=24000 span=$((4 * PORTS_BLOCK)) top bottom
    read -r lo hi <<<"$(ports_ephemeral)"
    if [ $((first + span)) -le "$lo" ] || [ "$first" -gt "$hi" ]; then
        echo $((first + idx * PORTS_BLOCK)); return 0
    fi
    top=$((lo / PORTS_BLOCK * PORTS_BLOCK))
    if [ $((top - span)) -ge 1024 ]; then
        echo $((top - span + idx * PORTS_BLOCK)); return 0
    fi
    bottom=$(((hi + PORTS_BLOCK) / PORTS_BLOCK * PORTS_BLOCK))
    if [ $((bottom + span - 1)) -le 65535 ]; then
        echo $((bottom + idx * PORTS_BLOCK)); return 0
    fi
    echo "ports: no room for the port blocks outside the ephemeral range $lo-$hi" >&2
    return 1
}

_ports_offset() {   # _ports_offset NAME: its offset, or nothing
    local e
    for e in $PORTS_NAMED; do
        [ "${e%%:*}" = "$1" ] && { echo "${e#*:}"; return 0; }
    done
    return 1
}

ports_profile() {   # ports_profile test|chaos|dev|bench
    local idx pre base_var base lo hi
    case ${1:-} in
        test) idx=0 pre=TEST ;;
        chaos) idx=1 pre=CHAOS ;;
        dev) idx=2 pre=DEV ;;
        bench) idx=3 pre=BENCH ;;
        *) echo "ports_profile: unknown profile '${1:-}' (test, chaos, dev or bench)" >&2; return 2 ;;
    esac
    base_var=${pre}_PORT_BASE
    base=${!base_var:-}
    [ -n "$base" ] || base=$(_ports_default_base "$idx") || return 1
    export PORTS_PROFILE=$1 PORTS_BASE=$base
    export PORTS_POOL_LO=$((base + PORTS_POOL_OFFSET)) PORTS_POOL_HI=$((base + PORTS_BLOCK - 1))
    local v_pg=${pre}_PG_PORT v_redis=${pre}_REDIS_PORT v_grpc=${pre}_GRPC_PORT
    local v_metrics=${pre}_METRICS_PORT v_relay=${pre}_RELAY_METRICS_PORT v_kafka=${pre}_KAFKA_PORT
    if [ "$1" = dev ]; then
        read -r lo hi <<<"$(ports_ephemeral)"
        local dm=9090 drm=9091
        if [ "$drm" -ge "$lo" ] && [ "$dm" -le "$hi" ]; then dm=$((base + 3)) drm=$((base + 4)); fi
        export PG_PORT=${!v_pg:-${PG_PORT:-$base}}
        export REDIS_PORT=${!v_redis:-${REDIS_PORT:-$((base + 1))}}
        export GRPC_PORT=${!v_grpc:-${GRPC_PORT:-50051}}
        export METRICS_PORT=${!v_metrics:-${METRICS_PORT:-$dm}}
        export RELAY_METRICS_PORT=${!v_relay:-${RELAY_METRICS_PORT:-$drm}}
        # (No plain KAFKA_PORT here: it is new, and the harness exports its
        # own test-block KAFKA_PORT to everything it runs.)
        export KAFKA_PORT=${!v_kafka:-$((base + 5))}
    else
        export PG_PORT=${!v_pg:-$base}
        export REDIS_PORT=${!v_redis:-$((base + 1))}
        export GRPC_PORT=${!v_grpc:-$((base + 2))}
        export METRICS_PORT=${!v_metrics:-$((base + 3))}
        export RELAY_METRICS_PORT=${!v_relay:-$((base + 4))}
        export KAFKA_PORT=${!v_kafka:-$((base + 5))}
    fi
}

_ports_need_profile() {
    [ -n "${PORTS_BASE:-}" ] && return 0
    echo "ports: no profile chosen (call ports_profile, or run under tests/run-all)" >&2
    return 1
}

port_for() {   # port_for NAME
    local off
    _ports_need_profile || return 1
    case $1 in
        pg) echo "$PG_PORT"; return 0 ;;
        redis) echo "$REDIS_PORT"; return 0 ;;
        grpc) echo "$GRPC_PORT"; return 0 ;;
        metrics) echo "$METRICS_PORT"; return 0 ;;
        relay-metrics) echo "$RELAY_METRICS_PORT"; return 0 ;;
        kafka) echo "$KAFKA_PORT"; return 0 ;;
        kafka-controller) echo $((KAFKA_PORT + 1)); return 0 ;;
    esac
    if off=$(_ports_offset "$1"); then echo $((PORTS_BASE + off)); return 0; fi
    port_free "$1"
}

# A port with no socket in any state on it (ss sees every local address).
_ports_unused() {
    ! ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .
}

port_free() {   # port_free [NAME]
    local n=$((PORTS_POOL_HI - PORTS_POOL_LO + 1)) start i p
    _ports_need_profile || return 1
    if [ -n "${1:-}" ]; then start=$(($(cksum <<<"$1" | cut -d' ' -f1) % n))
    else start=$(((RANDOM * 32768 + RANDOM + $$) % n)); fi
    for ((i = 0; i < n; i++)); do
        p=$((PORTS_POOL_LO + (start + i) % n))
        if _ports_unused "$p"; then echo "$p"; return 0; fi
    done
    echo "ports: no free port in $PORTS_POOL_LO-$PORTS_POOL_HI" >&2
    return 1
}

ports_list() {
    local e name
    _ports_need_profile || return 1
    for e in $PORTS_NAMED; do
        name=${e%%:*}
        echo "$name $(port_for "$name")"
    done
    echo "pool-lo $PORTS_POOL_LO"
    echo "pool-hi $PORTS_POOL_HI"
}
