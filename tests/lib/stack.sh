# SPDX-License-Identifier: MIT
# tests/lib/stack.sh — starting, checking and stopping the processes of a
# test stack: the private PostgreSQL and Redis (scripts/stack), paymentd
# (or its test-hooks build), the outbox relay and a Kafka broker: the real
# one (Apache Kafka 3.9.1 from tests/kafka/pom.xml, run by
# scripts/kafka-broker) or the Kafka-protocol mock (build/kafka-mock,
# librdkafka's mock cluster, for faults injected on cue). Used by
# tests/run-all, the suites, tests/relay/lib.sh, chaos-tests/ and
# scripts/dev-up / dev-down.
#
# Contract: sourced (bash, safe under set -euo pipefail); sources
# tests/lib/ports.sh (port_for, port_free, ports_profile). BUILD_DIR names
# the binaries (default: build/ of this checkout). Ports come from the
# environment (GRPC_PORT, ...), normally set by ports_profile. Every start
# function leaves the process running in the background, logging (stdout
# and stderr, appended) to the file it is given, and says on stderr, with
# the end of that log, why a process did not come up; a daemon that cannot
# bind its port therefore fails with its "cannot listen: ..." line shown.
#
#   stack_start_paymentd LOG [BIN [ARGS...]]
#                         starts BIN ARGS (default $BUILD_DIR/paymentd serve)
#                         and waits until it listens on 127.0.0.1:$GRPC_PORT
#                         itself and `paymentctl health` answers SERVING
#                         there; sets STACK_PID.
#                         Status 1 if it exited or did not become healthy in
#                         STACK_HEALTH_SECONDS (default 20).
#   stack_daemon LOG BIN [ARGS...]
#                         the same for use as pid=$(stack_daemon ...): prints
#                         the pid (the process is then not a child of the
#                         caller's shell; stack_stop copes with that)
#   stack_wait_healthy PID TARGET LOG [SECONDS]
#                         the health poll alone
#   stack_health TARGET   one health probe (status 0 if SERVING)
#   stack_start_relay LOG starts $BUILD_DIR/payment-relay; sets RELAY_PID
#   stack_start_kafka DIR PORT
#                         the real broker: scripts/kafka-broker start DIR
#                         PORT (KRaft single node on 127.0.0.1:PORT, its
#                         controller on PORT+1, data in DIR/data, kept
#                         across restarts; a broker still running from DIR
#                         is stopped first), output in DIR/kafka-broker.log;
#                         returns once it answers metadata. Sets
#                         KAFKA_KIND=real, KAFKA_DIR, KAFKA_BOOT
#                         (127.0.0.1:PORT), KAFKA_PID (not a child:
#                         setsid'd by kafka-broker)
#   stack_start_kafka DIR [LOG]
#                         (no port) the mock: starts kafka-mock with
#                         DIR/kafka.boot (bootstrap address) and DIR/kafka.ctl
#                         (control socket), waits for both; it creates the
#                         topics of $KAFKA_TOPIC_PREFIX (default payments)
#                         itself. Sets KAFKA_KIND=mock, KAFKA_PID, KAFKA_BOOT,
#                         KAFKA_CTL
#   stack_start_kafka_real DIR PORT, stack_start_kafka_mock DIR [LOG]
#                         the same, by name
#   stack_start_kafka_async DIR PORT
#                         the real broker's start in the background (its
#                         JVM takes seconds: let it overlap other work);
#                         stack_kafka_await then waits for it and sets
#                         KAFKA_* as stack_start_kafka DIR PORT does
#   stack_stop_kafka      stops the broker started last (real: controlled
#                         shutdown, data kept; mock: SIGTERM); no-op if none
#   stack_kafka_topics PREFIX
#                         real: PREFIX.paymentauthorized, .paymentdeclined
#                         (3 partitions), .dlq (1) with scripts/kafka-broker
#                         create-topics (repeatable; up to 3 tries, as its
#                         check can run ahead of the broker's metadata);
#                         mock: succeeds only for the prefix the mock was
#                         started with
#   stack_kafka kill9|restart|pause|resume|status
#                         a fault on the real broker (scripts/kafka-broker
#                         VERB DIR: SIGKILL / start again with its data /
#                         SIGSTOP / SIGCONT); updates KAFKA_PID. Status 1 on
#                         the mock (use kafka_ctl there)
#   kafka_ctl ARGS...     kafka-mock ctl $KAFKA_CTL ARGS (down 1, up 1,
#                         rtt 1 MS, err ...): faults on cue, mock only
#   stack_kafka_read TOPIC FORMAT [ISOLATION]
#                         every message of TOPIC, one kcat -f FORMAT line
#                         each, read to the end with isolation.level
#                         ISOLATION (default read_committed: what a
#                         consumer of committed data sees; the mock ignores
#                         it); bounded by KAFKA_READ_TIMEOUT (60) seconds;
#                         kcat's errors appended to $KAFKA_DIR/kcat.err
#   stack_stop PID...     SIGTERM to all, up to STACK_STOP_SECONDS (10) for
#                         them to exit, then SIGKILL; reaps its children
#   stack_alive PID       running (and not a zombie)
#   stack_infra_start     scripts/stack start (PostgreSQL, Redis under
#                         $STACK_DIR on PG_PORT/REDIS_PORT) and exports the
#                         environment it prints (DATABASE_URL, PG*, ...)
#   stack_infra_stop, stack_infra_destroy
#   stack_migrate LOG     paymentd migrate + reset-test-data (output to LOG,
#                         shown on failure)
#   q ARGS...             psql on the stack's database (quiet, unaligned,
#                         stop on error)
#   stack_outbox_pending  unpublished outbox rows
#   stack_wait_drained SECONDS
#                         until no outbox row is unpublished (status 1 on
#                         timeout)
#   stack_tls_env DIR     TLS for the daemons and clients started from now
#                         on, with the files scripts/gen-certs made in DIR:
#                         exports TLS=on, TLS_CERT_FILE=DIR/server.pem,
#                         TLS_KEY_FILE=DIR/server.key, TLS_CLIENT_CA_FILE=
#                         DIR/ca.pem (TLS_CLIENT_AUTH keeps its default,
#                         require) and, for paymentctl and so for
#                         stack_health, PAYMENTD_TLS_CA=DIR/ca.pem,
#                         PAYMENTD_TLS_CERT=DIR/client.pem, PAYMENTD_TLS_KEY=
#                         DIR/client.key; unsets PAYMENTD_PLAINTEXT (the
#                         harness exports 1 for the cleartext suites).
#                         (paths made absolute). Status 1, saying which, if
#                         a file is missing

STACK_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=ports.sh
. "$STACK_LIB_ROOT/tests/lib/ports.sh"
BUILD_DIR=${BUILD_DIR:-$STACK_LIB_ROOT/build}
STACK_PID= RELAY_PID= KAFKA_PID= KAFKA_BOOT= KAFKA_CTL= KAFKA_KIND= KAFKA_DIR= KAFKA_MOCK_PREFIX=
STACK_KAFKA_BROKER=$STACK_LIB_ROOT/scripts/kafka-broker

q() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }

stack_alive() {   # stack_alive PID
    local line st
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
    # An orphan nobody reaps stays a zombie: that is not running.
    read -r line <"/proc/$1/stat" 2>/dev/null || return 1
    st=${line##*) }
    [ "${st%% *}" != Z ]
}

stack_stop() {   # stack_stop PID...
    local p t any secs=${STACK_STOP_SECONDS:-10}
    for p in "$@"; do [ -n "$p" ] && { kill -TERM "$p" 2>/dev/null || true; }; done
    for ((t = 0; t < secs * 10; t++)); do
        any=0
        for p in "$@"; do stack_alive "$p" && any=1; done
        [ "$any" = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do stack_alive "$p" && { kill -KILL "$p" 2>/dev/null || true; }; done
    for p in "$@"; do [ -n "$p" ] && { wait "$p" 2>/dev/null || true; }; done
    return 0
}

stack_tls_env() {   # stack_tls_env DIR
    local d f
    d=$(cd "$1" 2>/dev/null && pwd) || { echo "stack: no directory $1 (scripts/gen-certs $1 makes it)" >&2; return 1; }
    for f in ca.pem server.pem server.key client.pem client.key; do
        [ -r "$d/$f" ] || { echo "stack: $d/$f is missing (scripts/gen-certs $d makes it)" >&2; return 1; }
    done
    export TLS=on TLS_CERT_FILE=$d/server.pem TLS_KEY_FILE=$d/server.key TLS_CLIENT_CA_FILE=$d/ca.pem
    export PAYMENTD_TLS_CA=$d/ca.pem PAYMENTD_TLS_CERT=$d/client.pem PAYMENTD_TLS_KEY=$d/client.key
    unset PAYMENTD_PLAINTEXT
    # TLS deployments authenticate their callers: the harness's AUTH_MODE=
    # none is refused with TLS on. client.pem is the client `dev`.
    export AUTH_MODE=${STACK_TLS_AUTH_MODE:-any}
    stack_dev_client
}

# The client `dev` that scripts/gen-certs' client.pem (URI SAN
# spiffe://paymentd.local/client/dev) authenticates as, with can_debit and
# can_read on every account: created once per database, like an operator
# onboarding a service with `paymentd client`.
stack_dev_client() {
    local have
    have=$(q -c "SELECT count(*) FROM clients WHERE name = 'dev'" 2>/dev/null) || {
        echo "stack: cannot read clients (migrations applied?)" >&2; return 1; }
    [ "$have" = 1 ] && return 0
    "$BUILD_DIR/paymentd" client create dev --mtls-uri spiffe://paymentd.local/client/dev >/dev/null &&
        "$BUILD_DIR/paymentd" client grant dev '*' --debit --read >/dev/null
}

# Every suite's client is 127.0.0.1, and the failed-authentication count
# per address (AUTH_FAILURES_PER_MINUTE) lives in the harness's Redis: a
# suite that makes failed attempts clears it when it is done, and one that
# onboards new token clients clears it before, so no suite inherits another's
# throttled address.
stack_auth_unthrottle() {
    redis-cli -u "${REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}" DEL authfail:127.0.0.1 >/dev/null 2>&1 || true
}

# stack_client NAME [create options...]: a fresh client for a test; prints
# its token when --token is among the options (the only time it is shown).
stack_client() {
    local name=$1 out
    shift
    out=$("$BUILD_DIR/paymentd" client create "$name" "$@") || return 1
    sed -n 's/^token: //p' <<<"$out"
}

stack_health() {   # stack_health TARGET
    "$BUILD_DIR/paymentctl" --target "$1" --timeout 2000 health >/dev/null 2>&1
}

_stack_log_tail() {   # _stack_log_tail LOG
    if [ -s "$1" ]; then tail -n 20 "$1" | sed 's/^/    /'; else echo "    (log $1 is empty)"; fi
}

# Whether PID itself holds the listening socket on PORT (not some other
# process that happens to answer there).
_stack_listens() {   # _stack_listens PID PORT
    ss -Htlnp "( sport = :$2 )" 2>/dev/null | grep -q "pid=$1,"
}

stack_wait_healthy() {   # stack_wait_healthy PID TARGET LOG [SECONDS]
    local pid=$1 target=$2 log=$3 secs=${4:-${STACK_HEALTH_SECONDS:-20}} i rc
    for ((i = 0; i < secs * 10; i++)); do
        stack_alive "$pid" || break
        _stack_listens "$pid" "${target##*:}" && stack_health "$target" && return 0
        sleep 0.1
    done
    stack_alive "$pid" && _stack_listens "$pid" "${target##*:}" && stack_health "$target" && return 0
    if stack_alive "$pid"; then
        echo "stack: pid $pid is running but not healthy on $target after ${secs}s; end of $log:" >&2
    else
        rc=0; wait "$pid" 2>/dev/null || rc=$?
        echo "stack: pid $pid exited (status $rc) before it was healthy on $target; end of $log:" >&2
    fi
    _stack_log_tail "$log" >&2
    return 1
}

stack_start_paymentd() {   # stack_start_paymentd LOG [BIN [ARGS...]]
    local log=$1 bin=${2:-$BUILD_DIR/paymentd}
    shift
    [ $# -gt 0 ] && shift
    [ $# -gt 0 ] || set -- serve
    mkdir -p "$(dirname "$log")"
    "$bin" "$@" >>"$log" 2>&1 &
    STACK_PID=$!
    stack_wait_healthy "$STACK_PID" "127.0.0.1:$GRPC_PORT" "$log"
}

stack_daemon() {   # pid=$(stack_daemon LOG BIN [ARGS...])
    local rc=0
    stack_start_paymentd "$@" || rc=$?
    echo "$STACK_PID"
    return $rc
}

stack_start_relay() {   # stack_start_relay LOG
    mkdir -p "$(dirname "$1")"
    "$BUILD_DIR/payment-relay" >>"$1" 2>&1 &
    RELAY_PID=$!
}

stack_start_kafka() {   # stack_start_kafka DIR PORT (real) | DIR [LOG] (mock)
    case ${2:-} in
        '' | *[!0-9]*) stack_start_kafka_mock "$@" ;;
        *) stack_start_kafka_real "$@" ;;
    esac
}

stack_start_kafka_mock() {   # stack_start_kafka_mock DIR [LOG]
    local dir=$1 log=${2:-$1/kafka-mock.log} i
    mkdir -p "$dir"
    rm -f "$dir/kafka.boot" "$dir/kafka.ctl"
    "$BUILD_DIR/kafka-mock" --bootstrap-file "$dir/kafka.boot" --control "$dir/kafka.ctl" >>"$log" 2>&1 &
    KAFKA_PID=$!
    KAFKA_CTL=$dir/kafka.ctl KAFKA_KIND=mock KAFKA_DIR=$dir
    KAFKA_MOCK_PREFIX=${KAFKA_TOPIC_PREFIX:-payments}
    for ((i = 0; i < 100; i++)); do
        [ -s "$dir/kafka.boot" ] && [ -S "$KAFKA_CTL" ] && break
        stack_alive "$KAFKA_PID" || break
        sleep 0.05
    done
    if ! [ -s "$dir/kafka.boot" ] || ! [ -S "$KAFKA_CTL" ]; then
        echo "stack: kafka-mock (pid $KAFKA_PID) did not come up; end of $log:" >&2
        _stack_log_tail "$log" >&2
        return 1
    fi
    KAFKA_BOOT=$(cat "$dir/kafka.boot")
}

stack_start_kafka_real() {   # stack_start_kafka_real DIR PORT
    local dir=$1 port=$2
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    KAFKA_KIND=real KAFKA_DIR=$dir KAFKA_CTL= KAFKA_PID= KAFKA_BOOT=127.0.0.1:$port
    # A broker left running from DIR (a run that was killed) holds the ports.
    "$STACK_KAFKA_BROKER" stop "$dir" >>"$dir/kafka-broker.log" 2>&1 || true
    if ! "$STACK_KAFKA_BROKER" start "$dir" "$port" >>"$dir/kafka-broker.log" 2>&1; then
        echo "stack: the Kafka broker did not start on 127.0.0.1:$port; end of $dir/kafka-broker.log:" >&2
        _stack_log_tail "$dir/kafka-broker.log" >&2
        return 1
    fi
    KAFKA_PID=$(cat "$dir/broker.pid" 2>/dev/null)
}

STACK_KAFKA_ASYNC_PID= STACK_KAFKA_ASYNC_DIR= STACK_KAFKA_ASYNC_PORT=
stack_start_kafka_async() {   # stack_start_kafka_async DIR PORT
    mkdir -p "$1"
    STACK_KAFKA_ASYNC_DIR=$(cd "$1" && pwd) STACK_KAFKA_ASYNC_PORT=$2
    (stack_start_kafka_real "$STACK_KAFKA_ASYNC_DIR" "$2") &
    STACK_KAFKA_ASYNC_PID=$!
}

stack_kafka_await() {   # status 1 if the background start failed (it said why)
    local rc=0
    [ -n "$STACK_KAFKA_ASYNC_PID" ] || { echo "stack: no broker is starting" >&2; return 1; }
    wait "$STACK_KAFKA_ASYNC_PID" || rc=$?
    STACK_KAFKA_ASYNC_PID=
    [ "$rc" = 0 ] || return 1
    KAFKA_KIND=real KAFKA_DIR=$STACK_KAFKA_ASYNC_DIR KAFKA_CTL= KAFKA_BOOT=127.0.0.1:$STACK_KAFKA_ASYNC_PORT
    KAFKA_PID=$(cat "$KAFKA_DIR/broker.pid" 2>/dev/null)
}

stack_stop_kafka() {
    case $KAFKA_KIND in
        real) "$STACK_KAFKA_BROKER" stop "$KAFKA_DIR" >>"$KAFKA_DIR/kafka-broker.log" 2>&1 || true ;;
        mock) stack_stop "$KAFKA_PID" ;;
    esac
    KAFKA_PID= KAFKA_KIND= KAFKA_CTL=
    return 0
}

stack_kafka_topics() {   # stack_kafka_topics PREFIX
    case $KAFKA_KIND in
        real)
            # create-topics checks them with kcat -L at once, and a broker
            # can answer that before its metadata has the new topics ("has
            # 'no' partitions"): it is repeatable (--if-not-exists), so again.
            local try
            for try in 1 2 3; do
                "$STACK_KAFKA_BROKER" create-topics "$KAFKA_DIR" "${KAFKA_BOOT##*:}" "$1" \
                    >>"$KAFKA_DIR/kafka-broker.log" 2>&1 && return 0
                sleep 1
            done
            echo "stack: creating the topics $1.* failed 3 times; end of $KAFKA_DIR/kafka-broker.log:" >&2
            _stack_log_tail "$KAFKA_DIR/kafka-broker.log" >&2
            return 1 ;;
        mock)
            [ "$1" = "$KAFKA_MOCK_PREFIX" ] && return 0
            echo "stack: kafka-mock has the topics $KAFKA_MOCK_PREFIX.* only (start it with KAFKA_TOPIC_PREFIX=$1)" >&2
            return 1 ;;
        *) echo "stack: no broker started" >&2; return 1 ;;
    esac
}

stack_kafka() {   # stack_kafka kill9|restart|pause|resume|status
    if [ "$KAFKA_KIND" != real ]; then
        echo "stack: stack_kafka $1 needs the real broker (the mock takes kafka_ctl)" >&2
        return 1
    fi
    if [ "$1" = status ]; then "$STACK_KAFKA_BROKER" status "$KAFKA_DIR"; return; fi
    "$STACK_KAFKA_BROKER" "$1" "$KAFKA_DIR" >>"$KAFKA_DIR/kafka-broker.log" 2>&1 || {
        echo "stack: kafka-broker $1 failed; end of $KAFKA_DIR/kafka-broker.log:" >&2
        _stack_log_tail "$KAFKA_DIR/kafka-broker.log" >&2
        return 1
    }
    [ "$1" != restart ] || KAFKA_PID=$(cat "$KAFKA_DIR/broker.pid" 2>/dev/null)
}

stack_kafka_read() {   # stack_kafka_read TOPIC FORMAT [ISOLATION]
    timeout "${KAFKA_READ_TIMEOUT:-60}" kcat -b "$KAFKA_BOOT" -C -X "isolation.level=${3:-read_committed}" \
        -t "$1" -e -q -f "$2" 2>>"${KAFKA_DIR:-/tmp}/kcat.err"
}

kafka_ctl() { "$BUILD_DIR/kafka-mock" ctl "$KAFKA_CTL" "$@" >/dev/null; }

stack_infra_start() {
    local out
    out=$("$STACK_LIB_ROOT/scripts/stack" start) || return 1
    set -a
    eval "$out"
    set +a
}
stack_infra_stop() { "$STACK_LIB_ROOT/scripts/stack" stop >/dev/null 2>&1 || true; }
stack_infra_destroy() { "$STACK_LIB_ROOT/scripts/stack" destroy >/dev/null 2>&1 || true; }

stack_migrate() {   # stack_migrate LOG
    mkdir -p "$(dirname "$1")"
    if "$BUILD_DIR/paymentd" migrate >>"$1" 2>&1 && "$BUILD_DIR/paymentd" reset-test-data >>"$1" 2>&1; then
        return 0
    fi
    echo "stack: migrate / reset-test-data failed; end of $1:" >&2
    _stack_log_tail "$1" >&2
    return 1
}

stack_outbox_pending() { q -c "SELECT count(*) FROM outbox WHERE published_at IS NULL"; }

stack_wait_drained() {   # stack_wait_drained SECONDS
    local t
    for ((t = 0; t < $1 * 5; t++)); do
        [ "$(stack_outbox_pending)" = 0 ] && return 0
        sleep 0.2
    done
    [ "$(stack_outbox_pending)" = 0 ]
}
