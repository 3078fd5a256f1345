/* SPDX-License-Identifier: MIT */
/*
 * testlib.h — what the libcheck test programs share (build/test_unit,
 * it_payments, it_sandbox, test_rl, test_metrics, relay_unit, sb_test).
 * Linked into each of them (tests/tests.mk, tests/rl_metrics.mk,
 * sandbox/sandbox.mk, wal/wal.mk); libc, libpq and check only.
 *
 * Contract:
 *  - tl_suite() is a suite NAME of one test case NAME holding the tests (a
 *    NULL-terminated array of START_TEST names), with a timeout in seconds
 *    (0: Check's default).
 *  - tl_run() runs a suite the way every program here does and returns the
 *    exit status for main (0 if nothing failed, else 1). Check prints its
 *    summary line ("Checks: N, Failures: F, Errors: E"), which tests/run-all
 *    counts. nofork: run the cases in this process (grpc must not fork
 *    after init). tl_run_suites() runs several in one runner (one summary).
 *  - tl_free_port() is a loopback TCP port nobody has a socket on right now,
 *    from the pool of the port block tests/run-all chose (PORTS_POOL_LO..
 *    PORTS_POOL_HI, tests/lib/ports.sh), or when run alone from the 500
 *    ports just below the kernel's ephemeral range: never a port some
 *    outgoing connection could take. Fails the current test if none is
 *    (and may be called outside a test, e.g. from main, as long as one is).
 *    tl_ephemeral_range() reads that range (32768-60999 if unreadable).
 *    tl_listen() is a loopback TCP listener on such a port (its number
 *    into *port), close-on-exec; fails the current test if it cannot.
 *  - tl_spawn() starts argv (PATH searched) with this environment, stdin
 *    from in_path and stdout and stderr to the files named (NULL:
 *    /dev/null; the same name for both outputs shares one descriptor); -1
 *    if it could not.
 *  - tl_wait() reaps pid within timeout_ms (status into *status if not
 *    NULL): 0 if it exited, -1 if not (still running, or not our child).
 *    tl_stop() sends sig, waits timeout_ms, then SIGKILLs and reaps: 0 if
 *    it exited by itself within the time.
 *  - tl_children() lists the children of parent (from /proc) whose
 *    command name starts with none of the '|'-separated names in skip_comm
 *    (NULL: all): the workers of a supervisor without its log forwarder
 *    and janitor ("paymentd-log|paymentd-jan").
 *  - tl_rmtree() removes a directory tree (like rm -rf): 0 on success.
 *  - tl_now_ms() is CLOCK_MONOTONIC in milliseconds.
 *  - tl_db_url() is DATABASE_URL (fails the current test if unset);
 *    tl_db() a connection to it (fails the test if it cannot connect);
 *    tl_db_int() runs a parameterized query that returns one value and
 *    gives it as int64 (-1 for NULL), tl_db_exec() one that returns rows or
 *    nothing; both fail the current test on any error.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <libpq-fe.h>

Suite *tl_suite(const char *name, int timeout_s, const TTest *const *tests);
int tl_run(Suite *s, enum print_output mode, int nofork);
int tl_run_suites(Suite *const *suites, int n, enum print_output mode, int nofork);

void tl_ephemeral_range(int *lo, int *hi);
int tl_free_port(void);
int tl_listen(int *port);

pid_t tl_spawn(char *const argv[], const char *in_path, const char *out_path, const char *err_path);
int tl_wait(pid_t pid, int timeout_ms, int *status);
int tl_stop(pid_t pid, int sig, int timeout_ms, int *status);
int tl_children(pid_t parent, const char *skip_comm, pid_t *out, int max);
int tl_rmtree(const char *dir);
long tl_now_ms(void);

const char *tl_db_url(void);
PGconn *tl_db(void);
int64_t tl_db_int(PGconn *c, const char *sql, int n, const char *const *params);
void tl_db_exec(PGconn *c, const char *sql, int n, const char *const *params);

#endif
