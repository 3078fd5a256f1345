# SPDX-License-Identifier: MIT
# tests/lib/tap.sh — the result helper of every shell suite (tests/suites/*,
# tests/relay/lib.sh, chaos-tests/).
#
# Contract: sourced (bash). Counts results in TAP_PASS and TAP_FAIL (start
# at 0, or at their values when already set, so a runner can accumulate)
# and prints one line per result:
#
#   ok "description"                    "ok   - description"
#   bad "description" [detail...]       "FAIL - description", then every
#                                       line of each detail indented by 4
#   check "description" command args... ok if the command exits 0, else bad
#   tap_summary [NAME]                  prints "N passed, N failed" alone on
#                                       a line ("NAME: N passed, N failed"
#                                       with NAME) and exits 0 if nothing
#                                       failed, else 1
#
# tests/run-all adds up the summary lines of all suites. The prefixes can be
# changed through TAP_OK_PREFIX and TAP_FAIL_PREFIX (defaults "ok   - " and
# "FAIL - "); detail lines never start at column 0, so they cannot be taken
# for a summary.

TAP_PASS=${TAP_PASS:-0}
TAP_FAIL=${TAP_FAIL:-0}
TAP_OK_PREFIX=${TAP_OK_PREFIX:-"ok   - "}
TAP_FAIL_PREFIX=${TAP_FAIL_PREFIX:-"FAIL - "}

ok() {
    echo "${TAP_OK_PREFIX}$*"
    TAP_PASS=$((TAP_PASS + 1))
}

bad() {
    local d
    echo "${TAP_FAIL_PREFIX}$1"
    shift
    for d in "$@"; do
        [ -n "$d" ] && printf '%s\n' "$d" | sed 's/^/    /'
    done
    TAP_FAIL=$((TAP_FAIL + 1))
}

check() {
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}

tap_summary() {
    echo "${1:+$1: }$TAP_PASS passed, $TAP_FAIL failed"
    [ "$TAP_FAIL" -eq 0 ] && exit 0
    exit 1
}
