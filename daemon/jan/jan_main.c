/* SPDX-License-Identifier: MIT */
/*
 * jan_main.c — the janitor process (see jan.h; its start, lock-down,
 * signals and exit codes are daemon/sup/sup_proto.h's janitor section).
 *
 * Forked by the supervisor, it keeps only stdio, drops to PAYMENTD_USER
 * keeping CAP_SYS_CHROOT alone, opens its one Postgres connection as that
 * user, then chroots and installs SANDBOX_JANITOR (no socket, no connect,
 * no open): the order of an exec'd worker, without the exec, because the
 * resolver and a unix socket path are not reachable from the empty chroot.
 * It then loops: a batch of each job; again at once while a batch came back
 * full, else sleep JANITOR_INTERVAL_SECONDS. A failed batch waits longer
 * (jittered backoff from the interval to JAN_ERROR_CAP_S). The sleep is a
 * poll on the Postgres socket, so a server that goes away (restart,
 * failover, pg_terminate_backend) is noticed at once and the janitor exits
 * SUP_JAN_EXIT_DB_LOST for the supervisor to start a fresh one. SIGTERM
 * only sets a flag, read between statements.
 */
#include "jan.h"
#include "common/backoff.h"
#include "common/log.h"
#include "common/util.h"
#include "sandbox/sandbox.h"
#include "sup/sup_lockdown.h"
#include "sup/sup_proto.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

/* Longest wait after failed batches (a broken function, a long lock). */
#define JAN_ERROR_CAP_S 60.0

static volatile sig_atomic_t got_term;

static void
jan_on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static struct {
	const struct config *cfg;
	struct metrics *m;
	int locked; /* the seccomp filter is on: no atexit work (LSan, gcov) */
} J;

static void __attribute__((noreturn)) jan_exit(int code)
{
	/* Nothing is buffered. Locked down, not even _exit: AddressSanitizer
	 * (SAN builds) intercepts it to run LeakSanitizer, whose thread
	 * suspension the filter forbids, so the exit code would become a
	 * SIGSYS. (Sandboxed, coverage is not collected anyway.) */
	if (J.locked && J.cfg->sandbox)
		syscall(SYS_exit_group, code);
	util_exit_now(code, 1);
}

static int64_t
jan_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* As root with SANDBOX=on: become PAYMENTD_USER now, keeping
 * CAP_SYS_CHROOT alone for the chroot after the connect. */
static void
jan_drop_identity(const struct config *cfg)
{
	struct sandbox_ids ids;
	char err[256];

	if (!cfg->sandbox || geteuid() != 0)
		return;
	if (sandbox_resolve(cfg->user, &ids, err, sizeof(err)) < 0 ||
	    sandbox_pre_exec(&ids, err, sizeof(err)) < 0) {
		log_kv(LOG_CRIT, "janitor: privilege drop failed; not running",
		    (const struct log_field[]){ LF_S("error", err), { 0 } });
		jan_exit(SUP_JAN_EXIT_SANDBOX);
	}
}

/* The one connection, with bounded statements. NULL with err. */
static PGconn *
jan_connect(const char *url, char *err, size_t errlen)
{
	/* Keywords before dbname are defaults the URL may override; after it,
	 * application_name names this session for pg_stat_activity. gssencmode
	 * as ledger_open: no Kerberos probe unless asked for. */
	const char *const kw[] = { "gssencmode", "connect_timeout", "dbname", "application_name",
		NULL };
	const char *const val[] = { getenv("PGGSSENCMODE") ? NULL : "disable",
		getenv("PGCONNECT_TIMEOUT") ? NULL : "5", url, "paymentd-janitor", NULL };
	PGconn *c = PQconnectdbParams(kw, val, 1);
	PGresult *r = NULL;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		goto fail;
	}
	/* A batch is short; a lock held for long by someone else makes it
	 * fail and retry later rather than hang the janitor. */
	r = PQexecParams(c,
	    "SELECT set_config('statement_timeout', '30s', false), "
	    "set_config('lock_timeout', '10s', false), set_config('TimeZone', 'UTC', false)",
	    0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "session setup: %s", PQerrorMessage(c));
		goto fail;
	}
	PQclear(r);
	return c;
fail:
	err[strcspn(err, "\n")] = '\0';
	PQclear(r);
	PQfinish(c);
	return NULL;
}

/* Sleeps up to seconds, watching the connection. 0 timed out, 1 SIGTERM,
 * -1 the connection is gone (Postgres speaks first only to say goodbye). */
static int
jan_wait(PGconn *c, double seconds)
{
	int64_t deadline = util_now_ms() + (int64_t)(seconds * 1000.0);

	while (!got_term) {
		int64_t left = deadline - util_now_ms();
		struct pollfd p = { PQsocket(c), POLLIN, 0 };
		PGnotify *nf;
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, left > 1000 ? 1000 : (int)left);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n <= 0)
			continue;
		if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
			return -1;
		while ((nf = PQnotifies(c)) != NULL)
			PQfreemem(nf);
		if (p.revents & (POLLHUP | POLLERR))
			return -1;
	}
	return 1;
}

static void
jan_loop(PGconn *c)
{
	const int batch = J.cfg->janitor_batch_size;
	const double interval = J.cfg->janitor_interval_s;
	unsigned seed = (unsigned)getpid() ^ (unsigned)jan_unix_ms();
	int errs = 0;

	while (!got_term) {
		struct jan_batch b;
		char err[512];
		double delay = interval;
		int rc = jan_sweep_once(c, batch, &b, err, sizeof(err));

		metrics_janitor_batch(J.m, b.holds, b.keys, rc == JAN_SWEEP_OK ? jan_unix_ms() : 0);
		if (b.holds > 0 || b.keys > 0)
			log_info("janitor batch", LF_I("holds_expired", b.holds > 0 ? b.holds : 0),
			    LF_I("keys_purged", b.keys > 0 ? b.keys : 0));
		if (rc == JAN_SWEEP_LOST) {
			metrics_janitor_error(J.m);
			log_warn("janitor: lost its Postgres connection; exiting to be restarted",
			    LF_S("error", err));
			PQfinish(c);
			jan_exit(SUP_JAN_EXIT_DB_LOST);
		}
		if (rc == JAN_SWEEP_FAILED) {
			int k;

			for (k = 0; k < b.failed; k++)
				metrics_janitor_error(J.m);
			delay = backoff_delay(
			    errs, interval, JAN_ERROR_CAP_S, (uint32_t)rand_r(&seed));
			if (delay < interval)
				delay = interval;
			errs++;
			log_warn("janitor batch failed; retrying later", LF_S("error", err),
			    LF_I("consecutive_failures", errs), LF_D("retry_in_s", delay));
		} else {
			if (errs > 0)
				log_info(
				    "janitor batches succeed again", LF_I("after_failures", errs));
			errs = 0;
			if (jan_sweep_full(&b, batch))
				continue; /* more are due now: no pause */
		}
		if (jan_wait(c, delay) < 0) {
			snprintf(err, sizeof(err), "%s", PQerrorMessage(c));
			err[strcspn(err, "\n")] = '\0';
			metrics_janitor_error(J.m);
			log_warn("janitor: Postgres closed the connection; exiting to be restarted",
			    LF_S("error", err));
			PQfinish(c);
			jan_exit(SUP_JAN_EXIT_DB_LOST);
		}
	}
}

void
jan_main(const struct config *cfg, struct metrics *m)
{
	pid_t parent = getppid();
	char err[512];
	PGconn *c;

	J.cfg = cfg;
	J.m = m;
	util_child_signals(jan_on_term);
	prctl(PR_SET_NAME, "paymentd-jan", 0, 0, 0);
	log_init("janitor", cfg->log_level, cfg->log_format);
	/* Only stdio: the supervisor's listening sockets, worker channels,
	 * signalfd and key files are not ours. */
	close_range(3, ~0U, 0);
	jan_drop_identity(cfg);
	/* The uid change cleared any parent-death signal: arm it now (the
	 * lock-down keeps it). If the parent is already gone, nobody would
	 * ever send it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		jan_exit(SUP_JAN_EXIT_OK);
	c = jan_connect(cfg->database_url, err, sizeof(err));
	if (c == NULL) {
		metrics_janitor_error(m);
		log_warn("janitor: no Postgres; exiting to be restarted", LF_S("error", err));
		jan_exit(SUP_JAN_EXIT_DB_DOWN);
	}
	sup_lockdown_enter(cfg, SANDBOX_JANITOR, cfg->chroot_dir, SUP_JAN_MAX_FDS, "janitor");
	J.locked = 1;
	log_info("janitor running", LF_D("interval_s", cfg->janitor_interval_s),
	    LF_I("batch_size", cfg->janitor_batch_size), LF_B("sandbox", cfg->sandbox));
	jan_loop(c);
	PQfinish(c);
	log_info("janitor stopped");
	jan_exit(SUP_JAN_EXIT_OK);
}
