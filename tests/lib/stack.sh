# tests/lib/stack.sh — starting, checking and stopping the processes of a
# test stack: the private PostgreSQL and Redis (scripts/stack), paymentd
# (or its test-hooks build), the outbox relay and the Kafka-protocol mock
# broker. Used by tests/run-all, the suites, tests/relay/lib.sh,
# chaos-tests/ and scripts/dev-up / dev-down.
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
#   stack_start_kafka DIR [LOG]
#                         starts kafka-mock with DIR/kafka.boot (bootstrap
#                         address) and DIR/kafka.ctl (control socket), waits
#                         for both; sets KAFKA_PID, KAFKA_BOOT, KAFKA_CTL
#   kafka_ctl ARGS...     kafka-mock ctl $KAFKA_CTL ARGS (down 1, up 1,
#                         rtt 1 MS, err ...)
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

STACK_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=ports.sh
. "$STACK_LIB_ROOT/tests/lib/ports.sh"
BUILD_DIR=${BUILD_DIR:-$STACK_LIB_ROOT/build}
STACK_PID= RELAY_PID= KAFKA_PID= KAFKA_BOOT= KAFKA_CTL=

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

stack_start_kafka() {   # stack_start_kafka DIR [LOG]
    local dir=$1 log=${2:-$1/kafka-mock.log} i
    mkdir -p "$dir"
    rm -f "$dir/kafka.boot" "$dir/kafka.ctl"
    "$BUILD_DIR/kafka-mock" --bootstrap-file "$dir/kafka.boot" --control "$dir/kafka.ctl" >>"$log" 2>&1 &
    KAFKA_PID=$!
    KAFKA_CTL=$dir/kafka.ctl
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
