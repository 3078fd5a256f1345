# SPDX-License-Identifier: MIT
# tests/lib/attack.sh — background HTTP/2 attackers for the "legitimate
# client under attack" measurements: 45-front-door's (h) check and
# `make bench`'s attack step run the same three.
#
# Contract: sourced (bash; safe under set -euo pipefail). Needs H2ATTACK
# (the h2attack binary). Then
#
#   attack_loop OUT TARGET ARGS...   runs `h2attack --target TARGET ARGS...`
#                                    again and again (0.05 s apart), all at
#                                    nice 19, appending to OUT, until TERMed
#                                    (the TERM ends the attacker it is
#                                    running too) or the script is gone
#   attack_start DIR TARGET          starts the three attackers (rapid reset
#                                    from 127.0.0.14, HPACK bomb from .15,
#                                    16 silent sockets from .16; output in
#                                    DIR/attack-{rr,hp,si}.out) in the
#                                    background, their pids in ATTACK_PIDS
#   attack_stop                      TERMs and reaps them
#   attack_count DIR KIND            attacker connections of KIND (rr, hp,
#                                    si) that ended so far
#
# The attackers are niced: on loopback their own CPU is taken from the
# server and the legitimate client, which a remote attacker's is not. Each
# uses an address of its own (never 127.0.0.1, the legitimate client's), so
# per-address limits hurt only them.
ATTACK_PIDS=()

attack_loop() {
    local out=$1 target=$2 c=
    shift 2
    trap 'kill $c 2>/dev/null; exit 0' TERM
    # The whole loop runs at nice 19, not only h2attack: the loop's own
    # fork and exec of every attacker cost as much CPU as the attack does,
    # and a remote attacker's would not be taken from this machine. The
    # pause between attackers is a read timeout on a pipe nobody writes to
    # (no sleep process to exec each time).
    renice -n 19 -p "$BASHPID" >/dev/null
    local fifo
    fifo=$(mktemp -u "${TMPDIR:-/tmp}/attack-loop.XXXXXX")
    mkfifo "$fifo" && exec 9<>"$fifo" && rm -f "$fifo"
    # $$ is the sourcing script: a loop whose script is gone stops.
    while kill -0 $$ 2>/dev/null; do
        "$H2ATTACK" --target "$target" "$@" >>"$out" 2>&1 &
        c=$!
        wait "$c" || true	# an attacker refused at the door is the point
        read -r -t 0.05 -u 9 _ || true
    done
}

attack_start() {
    local dir=$1 target=$2
    : >"$dir/attack-rr.out"; : >"$dir/attack-hp.out"; : >"$dir/attack-si.out"
    attack_loop "$dir/attack-rr.out" "$target" --src 127.0.0.14 --wait-ms 500 rapid-reset 100000 &
    ATTACK_PIDS+=($!)
    attack_loop "$dir/attack-hp.out" "$target" --src 127.0.0.15 --wait-ms 500 hpack-bomb 2147483648 &
    ATTACK_PIDS+=($!)
    attack_loop "$dir/attack-si.out" "$target" --src 127.0.0.16 --hold 10 silent 16 &
    ATTACK_PIDS+=($!)
}

attack_stop() {
    local p
    for p in "${ATTACK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${ATTACK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ATTACK_PIDS=()
}

attack_count() { grep -c '^result' "$1/attack-$2.out" 2>/dev/null || true; }
