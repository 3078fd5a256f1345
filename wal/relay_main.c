/* SPDX-License-Identifier: MIT */
/*
 * relay_main.c — payment-relay: publishes the Postgres outbox to
 * Kafka/Redpanda exactly once, through broker outages and its own crashes.
 *
 * This file is the process (unrecoverable conditions call fatal()): the
 * settings and signals, the jittered backoff every outage waits with, the
 * sandbox and the order of the start, the wait for the lease (a standby
 * waits here until the leader's lease expires), then windows until SIGTERM,
 * which hands the lease over. `payment-relay status` prints the outbox's
 * leadership and lag from Postgres (relay_status.c). What a
 * window does, and why that is exactly once, is relay_window.c; the
 * Postgres and Kafka sides are relay_pg.c and relay_kafka.c.
 * docs/relay.md has the argument and the operational side.
 */
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "journal/journal.h"
#include "relay_kafka.h"
#include "relay_lease.h"
#include "relay_metrics.h"
#include "relay_pg.h"
#include "relay_envelope.h"
#include "relay_schema.h"
#include "relay_topics.h"
#include "relay_retry.h"
#include "relay_status.h"
#include "relay_window.h"
#include "sandbox/sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (!stop && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint32_t
rnd32(void)
{
	uint32_t v;

	if (util_random(&v, sizeof(v)) < 0)
		v = (uint32_t)util_now_ns();
	return v;
}

static void backoff(int attempt);

/* What relay_pg.c, relay_kafka.c and the windows wait with through an
 * outage. */
static const struct relay_retry retry = { &stop, backoff };

/* The process state, handed to every relay_window_*() call. */
static struct relay R = { .retry = &retry };

/* The wait before retry number attempt, from OUTBOX_*_DELAY_SECONDS;
 * cut short by SIGTERM. */
static void
backoff(int attempt)
{
	sleep_ms(relay_backoff_ms(
	    attempt, R.cfg.outbox_base_delay_s, R.cfg.outbox_max_delay_s, rnd32()));
}

/* The stats line (every 10 s, or now when forced) and the /metrics copy. */
static void
stats(int force)
{
	int64_t now = util_now_ms(), backlog = -1;
	char err[256];

	if (!force && now < R.next_stats_ms)
		return;
	R.next_stats_ms = now + 10000;
	if (R.pg.conn != NULL && relay_pg_backlog(R.pg.conn, &backlog, err, sizeof(err)) < 0)
		backlog = -1;
	R.backlog = backlog;
	if (R.pg.conn != NULL) {
		int64_t epoch, fenced;

		if (relay_lease_read(R.pg.conn, &epoch, &fenced, NULL, err, sizeof(err)) == 0)
			R.fenced_exits = fenced;
	}
	relay_window_metrics(&R);
	log_info("relay stats", LF_I("published", (int64_t)R.published),
	    LF_I("dlq", (int64_t)R.dlqd), LF_I("windows", (int64_t)R.windows),
	    LF_I("recovered", (int64_t)R.recovered), LF_I("failures", (int64_t)R.failures),
	    LF_I("backlog", backlog), LF_I("epoch", R.epoch),
	    LF_I("lease_renewed_ms_ago", R.epoch > 0 ? relay_lease_renewed_ago_ms() : -1));
}

/* ---- process -------------------------------------------------------- */

/*
 * The relay's name in Postgres: host and journal path (hashed to fit
 * application_name). A session holding the lock under the same name can
 * only be this journal's previous process.
 */
static void
make_ident(void)
{
	char host[256] = "", lock[4096], abs[4096];
	uint64_t h = 1469598103934665603ULL;
	const char *p;

	gethostname(host, sizeof(host) - 1);
	/* The lock file exists by now, so the absolute path is stable. */
	snprintf(lock, sizeof(lock), "%.4000s.lock", R.cfg.journal_path);
	if (realpath(lock, abs) == NULL)
		snprintf(abs, sizeof(abs), "%s", lock);
	for (p = host; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '|') * 1099511628211ULL;
	for (p = abs; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(R.ident, sizeof(R.ident), "payment-relay/%016llx", (unsigned long long)h);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * glibc's qsort asks sysconf(_SC_PHYS_PAGES) — sysinfo(2), which the
 * relay's seccomp profile does not allow — the first time it sorts more
 * than 1 KiB, and caches the answer. Sort once while that is still
 * allowed, so that recovery scans (and librdkafka) never ask.
 */
static void
warm_libc(void)
{
	int64_t warm[512];
	size_t i;

	for (i = 0; i < ARRAY_LEN(warm); i++)
		warm[i] = (int64_t)(ARRAY_LEN(warm) - i);
	qsort(warm, ARRAY_LEN(warm), sizeof(warm[0]), cmp_i64);
}

static struct sandbox_opts
sandbox_options(void)
{
	struct sandbox_opts o;

	memset(&o, 0, sizeof(o));
	o.profile = SANDBOX_RELAY;
	o.chroot_dir = NULL; /* the journal lives on the real file system */
	o.debug = R.cfg.sandbox_debug;
	o.max_fds = 256;
	return o;
}

/*
 * Identity and limits, before any thread exists: glibc changes the ids of
 * every thread with a signal, and librdkafka's broker threads lose a poll
 * to it (a second of stall at every start). The lock file is handed to the
 * relay's user so that a later run as that user can open it.
 */
static void
drop_privileges(int lock_fd)
{
	struct sandbox_opts o = sandbox_options();
	struct sandbox_ids ids;
	char err[512];

	warm_libc();
	if (geteuid() == 0) {
		if (sandbox_resolve(R.cfg.user, &ids, err, sizeof(err)) < 0)
			fatal("sandbox: %s", err);
		if (fchown(lock_fd, ids.uid, ids.gid) < 0)
			fatal("sandbox: chown of the journal lock: %s", strerror(errno));
	} else {
		/* Already unprivileged: keep the identity, apply the rest. */
		memset(&ids, 0, sizeof(ids));
		ids.uid = geteuid();
		ids.gid = getegid();
	}
	if (sandbox_drop(&ids, &o, err, sizeof(err)) < 0)
		fatal("sandbox: %s", err);
}

/* The seccomp filter, on every thread (TSYNC). */
static void
lock_down(void)
{
	char err[512];

	if (sandbox_seccomp(SANDBOX_RELAY, R.cfg.sandbox_debug, err, sizeof(err)) < 0)
		fatal("sandbox: %s", err);
}

/* Settings, logging, signals and topic names. 0, or -1 (said on stderr). */
static int
configure(void)
{
	struct sigaction sa;
	char err[512];
	size_t i;

	if (cfg_load(&R.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "payment-relay: configuration error: %s\n", err);
		return -1;
	}
	log_init("relay", R.cfg.log_level, R.cfg.log_format);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setenv("PGCONNECT_TIMEOUT", "5", 0);
	/* <prefix>.<lowercased event type>, one per type (the seed's
	 * payments.paymentauthorized, payments.paymentdeclined, and the
	 * lifecycle's and accounts' since), each checked against its schema. */
	for (i = 0; i < RELAY_T_DLQ; i++)
		if (relay_topic(R.cfg.topic_prefix, relay_event_types[i], R.topic[i],
		        sizeof(R.topic[0])) < 0) {
			fprintf(stderr, "payment-relay: KAFKA_TOPIC_PREFIX is too long\n");
			return -1;
		}
	snprintf(R.topic[RELAY_T_DLQ], sizeof(R.topic[0]), "%s.dlq", R.cfg.topic_prefix);
	if (relay_schema_load(err, sizeof(err)) < 0) {
		fprintf(stderr, "payment-relay: compiled-in schemas: %s\n", err);
		return -1;
	}
	return 0;
}

/* The renewal thread found a later epoch: this relay is a zombie. */
static void
on_lease_lost(int64_t mine, int64_t now)
{
	char why[128];

	snprintf(why, sizeof(why), "lease lost (epoch %lld < %lld): not settling", (long long)mine,
	    (long long)now);
	log_error("fenced: another relay leads the outbox now; exiting without settling",
	    LF_S("error", why), LF_I("epoch", mine));
	fflush(NULL);
	_exit(RELAY_EXIT_FENCED);
}

/*
 * Leadership: as a standby, ask for the lease until the holder's expires
 * (or it is free, or this relay's own from its previous run); then end the
 * expired holder's sessions, renew from a thread, and fence every older
 * producer of the transactional id (init_transactions), before anything is
 * read or scanned. 0, or -1 when stopping.
 */
static int
lead(void)
{
	struct relay_lease_take t;
	int64_t last_log = 0, poll = (int64_t)R.cfg.relay_lease_s * 100;
	char err[512];
	int attempt = 0, rc, n;

	if (poll < 100)
		poll = 100;
	if (poll > 500)
		poll = 500;
	for (;;) {
		if (stop || relay_window_connect(&R) < 0)
			return -1;
		rc = relay_lease_try(R.pg.conn, R.ident, R.cfg.relay_lease_s, &t, err, sizeof(err));
		if (rc == RELAY_PG_FATAL)
			fatal("%s", err);
		if (rc != 0) {
			relay_pg_lost(&R.pg, "relay lease", err);
			backoff(attempt++);
			continue;
		}
		attempt = 0;
		if (t.taken)
			break;
		if (util_now_ms() - last_log >= 30000) {
			log_info("standby: another relay holds the lease; waiting",
			    LF_S("holder", t.prev_holder), LF_I("epoch", t.epoch),
			    LF_I("expires_in_ms", t.expires_in_ms));
			last_log = util_now_ms();
		}
		sleep_ms(poll);
	}
	R.epoch = t.epoch;
	if (t.takeover) {
		R.takeovers++;
		/* A hung holder keeps nothing: its sessions end here (the same
		 * role may do that), so no lock or slot of it outlives the lease. */
		if (relay_lease_terminate(R.pg.conn, t.prev_holder, &n, err, sizeof(err)) < 0)
			log_warn(
			    "could not end the previous holder's sessions", LF_S("error", err));
		else if (n > 0)
			log_info("ended the previous holder's sessions",
			    LF_S("holder", t.prev_holder), LF_I("sessions", n));
	}
	log_info("lease taken: leading the outbox", LF_I("epoch", R.epoch),
	    LF_S("previous_holder", t.prev_holder), LF_B("takeover", t.takeover),
	    LF_I("lease_seconds", R.cfg.relay_lease_s));
	if (relay_lease_renewer_start(R.cfg.database_url, R.ident, R.epoch, R.cfg.relay_lease_s,
	        on_lease_lost, err, sizeof(err)) < 0)
		fatal("%s", err);
	relay_window_metrics(&R);
	return relay_window_txn_init(&R);
}

/* The deployment's transactional.id: RELAY_TRANSACTIONAL_ID, else
 * "payment-relay:<database>" — the same on every host of the pair. */
static void
make_txn_id(void)
{
	const char *db = R.pg.conn != NULL ? PQdb(R.pg.conn) : NULL;

	if (R.cfg.relay_txn_id[0])
		snprintf(R.txn_id, sizeof(R.txn_id), "%s", R.cfg.relay_txn_id);
	else
		snprintf(
		    R.txn_id, sizeof(R.txn_id), "payment-relay:%s", db && db[0] ? db : "outbox");
}

/*
 * Everything up to the first window, in the order the sandbox needs: the
 * journal lock (flock is not in the seccomp profile) as the invoking
 * user; then the identity drop, before any thread exists; then the first
 * Postgres connection and the producer (library initialisation, the first
 * threads), which need calls the running relay does not; then the seccomp
 * filter; then the journal, opened as the relay's user, who owns its
 * files; last the cursors and the recovery of an unsettled window.
 * 0, or -1 when stopping.
 */
static int
start(void)
{
	struct journal_stats st;
	char err[512];
	int lock_fd = -1, metrics_fd;

	if (journal_lock(R.cfg.journal_path, &lock_fd, err, sizeof(err)) < 0)
		fatal("%s", err);
	make_ident();
	R.pg = (struct relay_pg_link){ R.cfg.database_url, R.ident, &retry, NULL };
	R.backlog = -1;
	/* The metrics port is bound before the drop (any port number), its
	 * thread started after it (identity changes before any thread) and
	 * before the seccomp filter, which TSYNC applies to it as well. */
	metrics_fd = relay_metrics_listen(
	    R.cfg.metrics_host[0] ? R.cfg.metrics_host : R.cfg.grpc_host, R.cfg.relay_metrics_port,
	    err, sizeof(err));
	if (metrics_fd < 0 && R.cfg.relay_metrics_port > 0)
		fatal("%s", err);
	if (R.cfg.sandbox)
		drop_privileges(lock_fd);
	if (metrics_fd >= 0) {
		if (relay_metrics_start(metrics_fd, err, sizeof(err)) < 0)
			fatal("%s", err);
		relay_window_metrics(&R);
	}
	R.fenced_exits = -1;
	if (relay_window_connect(&R) < 0)
		return -1;
	make_txn_id();
	if (relay_window_producer(&R) < 0)
		return -1;
	if (R.cfg.sandbox)
		lock_down();
	if (journal_open(R.cfg.journal_path, lock_fd, &R.j, err, sizeof(err)) < 0)
		fatal("%s", err);
	if (journal_stats(R.j, &st, err, sizeof(err)) < 0)
		fatal("journal failure: %s", err);
	log_info("payment-relay starting", LF_S("brokers", R.cfg.brokers),
	    LF_S("journal", R.cfg.journal_path),
	    LF_I("journal_max_published_seq", st.max_published_seq),
	    LF_I("journal_windows", st.windows), LF_I("journal_dlq", st.dlq),
	    LF_I("journal_open_window", st.open_window), LF_I("batch", R.cfg.outbox_batch_size),
	    LF_I("max_retries", R.cfg.outbox_max_retries), LF_B("sandbox", R.cfg.sandbox),
	    LF_I("metrics_port", metrics_fd >= 0 ? R.cfg.relay_metrics_port : 0),
	    LF_S("transactional_id", R.txn_id), LF_I("lease_seconds", R.cfg.relay_lease_s));
	if (lead() < 0)
		return -1;
	if (relay_window_metadata(&R) < 0 || relay_window_recover(&R, "restart") < 0)
		return -1;
	log_info("payment-relay running", LF_I("topics", RELAY_NTOPICS),
	    LF_I("partitions_authorized", R.cur.n[RELAY_T_AUTHORIZED]),
	    LF_I("partitions_declined", R.cur.n[RELAY_T_DECLINED]));
	return 0;
}

/* Windows until SIGTERM, with the stats line and the metadata refresh. */
static void
serve(void)
{
	int64_t poll_ms = (int64_t)(R.cfg.outbox_poll_interval_s * 1000);
	int n;

	if (poll_ms < 1)
		poll_ms = 1;
	while (!stop) {
		n = relay_window_next(&R);
		if (n == -1)
			break;
		stats(0);
		if (util_now_ms() >= R.next_metadata_ms && relay_window_metadata(&R) < 0)
			break;
		/* Rows handled: look again at once (backlog drains at full
		 * speed). Held back by a writer in flight: look again soon.
		 * Idle: OUTBOX_POLL_INTERVAL_SECONDS. */
		if (n == -2)
			sleep_ms(poll_ms < 50 ? poll_ms : 50);
		else if (n == 0)
			sleep_ms(poll_ms);
	}
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "status") == 0) {
		if (configure() < 0)
			return 2;
		return relay_status_print(R.cfg.database_url, stdout);
	}
	if (argc >= 2 && strcmp(argv[1], "create-topics") == 0) {
		char err[512], *end = NULL;
		long parts = 3;

		if (argc == 4 && strcmp(argv[2], "--partitions") == 0) {
			parts = strtol(argv[3], &end, 10);
			if (end == argv[3] || *end != '\0')
				parts = 0;
		}
		if ((argc != 2 && argc != 4) || parts < 1 || parts > 10000) {
			fprintf(stderr, "usage: payment-relay create-topics [--partitions N]\n");
			return 2;
		}
		if (configure() < 0)
			return 2;
		if (relay_topics_create(R.cfg.brokers, R.topic, RELAY_NTOPICS, (int)parts, 10000,
		        stdout, err, sizeof(err)) < 0) {
			fprintf(stderr, "payment-relay: create-topics: %s\n", err);
			return 1;
		}
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr,
		    "usage: payment-relay [status | create-topics [--partitions N]] (configured by "
		    "the environment; see docs/relay.md)\n");
		return 2;
	}
	if (configure() < 0)
		return 2;
	if (start() == 0)
		serve();
	stats(1);
	if (R.epoch > 0) {
		char err[512];

		/* A clean stop hands over at once: a standby need not wait out
		 * the lease (an unsettled window is in Postgres for it). */
		relay_lease_renewer_stop();
		if (R.pg.conn != NULL &&
		    relay_lease_release(R.pg.conn, R.epoch, err, sizeof(err)) < 0)
			log_warn("could not release the lease", LF_S("error", err));
		else
			log_info("lease released", LF_I("epoch", R.epoch));
	}
	relay_kafka_destroy(R.k);
	relay_cursors_free(&R.cur);
	journal_close(R.j);
	relay_pg_close(&R.pg);
	log_info("payment-relay stopped", LF_I("published", (int64_t)R.published),
	    LF_I("dlq", (int64_t)R.dlqd));
	return 0;
}
