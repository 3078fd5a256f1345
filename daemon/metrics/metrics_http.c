/* SPDX-License-Identifier: MIT */
/*
 * metrics_http.c — the metrics exporter process: serves GET /metrics
 * through http_min.c (see metrics.h for the contract).
 *
 * It is reachable by anyone who can reach METRICS_PORT, so it is locked
 * down like a worker (unprivileged user, seccomp profile SANDBOX_EXPORTER:
 * no exec, no fork, no file writes), holds only stdio and its listening
 * socket, maps the shared counters read-only, and bounds every request in
 * size and time. Connections are served side by side from one poll() loop
 * (http_min.c), each with its own deadline, so idle or trickling sockets
 * cannot hold a scrape back. One request per connection (Connection:
 * close) keeps the parser trivial; Prometheus does not need keep-alive.
 */
#include "metrics.h"
#include "common/http_min.h"
#include "sup/sup_lockdown.h"
#include "common/log.h"
#include "sandbox/sandbox.h"
#include "common/util.h"
#include "common/version.h"
#include "sup/sup_proto.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <libpq-fe.h>

/* stdio, the listening socket, libpq's socket (and the resolver's, while
 * it connects), every connection http_min.c may hold, and some slack. */
#define EXPORTER_MAX_FDS (HTTP_MIN_MAX_CONNS + 32)
/* A burst of connects (a scrape behind many idle sockets) must not
 * overflow the accept queue: a dropped SYN costs the client a second. */
#define EXPORTER_BACKLOG 128

static const char outbox_sql[] =
    "SELECT count(*) FILTER (WHERE published_at IS NULL), "
    "COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(created_at) FILTER (WHERE published_at IS NULL)), 0)::float8, "
    "count(*) FILTER (WHERE published_at IS NOT NULL AND last_error IS NULL), "
    "count(*) FILTER (WHERE published_at IS NOT NULL AND last_error IS NOT NULL), "
    "COALESCE(sum(retry_count), 0) FROM outbox";

static volatile sig_atomic_t got_term;

static void
on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

int
metrics_listen(const char *host, int port, char *err, size_t errlen)
{
	return util_tcp_listen(host, port, EXPORTER_BACKLOG, "METRICS_PORT", err, errlen);
}

struct exporter {
	const struct config *cfg;
	struct metrics *shm;
	PGconn *pg;
	int db_state; /* -1 unknown, 0 failing, 1 ok: log transitions only */
	char *body;
};

static PGconn *
pg_connect(const char *url)
{
	/* Keywords after dbname override what the URL sets: bounded connect
	 * and statement time, so a sick database cannot stall a scrape.
	 * gssencmode comes first, so a URL may still ask for it: the
	 * default "prefer" makes the GSS library list /etc/gss/mech.d,
	 * which the exporter's seccomp profile does not allow. */
	const char *const kw[] = { "gssencmode", "dbname", "connect_timeout", "application_name",
		"options", NULL };
	const char *const val[] = { "disable", url, "2", "paymentd-metrics",
		"-c statement_timeout=2000", NULL };

	return PQconnectdbParams(kw, val, 1);
}

static void
db_state(struct exporter *e, int ok, const char *why)
{
	if (ok && e->db_state != 1)
		log_info("outbox metrics: database reachable");
	else if (!ok && e->db_state != 0)
		log_warn("outbox metrics: database unavailable; reporting outbox_metrics_up 0",
		    LF_S("error", why));
	e->db_state = ok;
}

/* One attempt on the current (or a fresh) connection; 0 on success. */
static int
outbox_try(struct exporter *e, struct metrics_outbox *ob, char *why, size_t whylen)
{
	PGresult *res = NULL;
	char *end;
	int rc = -1;

	if (e->pg != NULL && PQstatus(e->pg) != CONNECTION_OK) {
		PQfinish(e->pg);
		e->pg = NULL;
	}
	if (e->pg == NULL) {
		e->pg = pg_connect(e->cfg->database_url);
		if (PQstatus(e->pg) != CONNECTION_OK) {
			snprintf(why, whylen, "%s", PQerrorMessage(e->pg));
			PQfinish(e->pg);
			e->pg = NULL;
			goto out;
		}
	}
	/* Extended protocol (PQexecParams): one statement, no parameters
	 * needed, nothing untrusted in the text. */
	res = PQexecParams(e->pg, outbox_sql, 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 5) {
		snprintf(why, whylen, "%s", PQerrorMessage(e->pg));
		goto out;
	}
	ob->pending = strtoll(PQgetvalue(res, 0, 0), &end, 10);
	ob->oldest_age_s = strtod(PQgetvalue(res, 0, 1), &end);
	ob->published = strtoll(PQgetvalue(res, 0, 2), &end, 10);
	ob->dead_lettered = strtoll(PQgetvalue(res, 0, 3), &end, 10);
	ob->failed_attempts = strtoll(PQgetvalue(res, 0, 4), &end, 10);
	if (ob->oldest_age_s < 0)
		ob->oldest_age_s = 0; /* created_at from a skewed clock */
	rc = 0;
out:
	if (res)
		PQclear(res);
	return rc;
}

static void
outbox_query(struct exporter *e, struct metrics_outbox *ob)
{
	char why[512] = "";
	int had_conn = e->pg != NULL;

	memset(ob, 0, sizeof(*ob));
	ob->queried = 1;
	if (outbox_try(e, ob, why, sizeof(why)) == 0 ||
	    /* A connection that died since the last scrape (Postgres
	     * restart) gets one fresh attempt before reporting down. */
	    (had_conn && e->pg != NULL && PQstatus(e->pg) != CONNECTION_OK &&
	        outbox_try(e, ob, why, sizeof(why)) == 0)) {
		ob->up = 1;
		db_state(e, 1, NULL);
		return;
	}
	why[strcspn(why, "\n")] = '\0';
	db_state(e, 0, why);
}

/* http_min's render callback: the shared counters plus the outbox. */
static int
exporter_render(void *arg, const char **body, size_t *len)
{
	struct exporter *e = arg;
	struct metrics_outbox ob;

	outbox_query(e, &ob);
	*len = metrics_render(e->shm, e->body, METRICS_RENDER_MAX, PAYMENTD_VERSION, &ob);
	if (*len >= METRICS_RENDER_MAX) {
		log_error(
		    "metrics output exceeds METRICS_RENDER_MAX", LF_I("bytes", (int64_t)*len));
		return -1;
	}
	*body = e->body;
	return 0;
}

static void
setup_signals(void)
{
	util_child_signals(on_term);
}

/*
 * Lock-down: PAYMENTD_USER, rlimits, no_new_privs, then the seccomp
 * profile SANDBOX_EXPORTER (accept on the inherited socket, connect for
 * Postgres, read-only opens). No chroot: libpq and the resolver read /etc.
 */
static void
lock_down(const struct config *cfg)
{
	sup_lockdown_enter(cfg, SANDBOX_EXPORTER, NULL, EXPORTER_MAX_FDS, "metrics exporter");
}

void
metrics_exporter_main(const struct config *cfg, struct metrics *shm, int listen_fd)
{
	struct exporter e;
	struct http_min_server *srv;
	pid_t parent = getppid();

	memset(&e, 0, sizeof(e));
	e.cfg = cfg;
	e.shm = shm;
	e.db_state = -1;
	setup_signals();
	prctl(PR_SET_NAME, "paymentd-metric", 0, 0, 0);
	log_init("metrics", cfg->log_level, cfg->log_format);
	/* Keep only stdio and the listening socket: whatever else the
	 * supervisor holds (worker channels, the gRPC socket) is not ours. */
	if (listen_fd > 3)
		close_range(3, (unsigned)listen_fd - 1, 0);
	close_range((unsigned)listen_fd + 1, ~0U, 0);
	if (util_set_nonblock(listen_fd, 1) < 0) {
		log_error("metrics exporter: bad listening socket", LF_S("error", strerror(errno)));
		exit(SUP_EXPORTER_EXIT_SOFTWARE);
	}
	e.body = xmalloc(METRICS_RENDER_MAX);
	srv = http_min_server_new(listen_fd, exporter_render, &e);
	if (srv == NULL) {
		log_error("metrics exporter: out of memory");
		exit(SUP_EXPORTER_EXIT_SOFTWARE);
	}
	if (metrics_protect_readonly(shm) < 0) {
		log_error("metrics exporter: mprotect failed", LF_S("error", strerror(errno)));
		exit(SUP_EXPORTER_EXIT_SOFTWARE);
	}
	lock_down(cfg);
	/* Never outlive the supervisor. Set after lock_down: the kernel
	 * clears the parent-death signal when the uid changes. If the parent
	 * died before this point, nobody would ever send it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) {
		log_warn("metrics exporter: supervisor gone before startup finished");
		_exit(SUP_EXPORTER_EXIT_OK);
	}
	log_info("metrics exporter serving /metrics");

	while (!got_term)
		if (http_min_serve(srv, 1000) < 0 && errno != EINTR) {
			log_warn("metrics exporter: poll failed", LF_S("error", strerror(errno)));
			poll(NULL, 0, 100); /* do not spin */
		}
	http_min_server_free(srv);
	if (e.pg)
		PQfinish(e.pg);
	free(e.body);
	/* _exit: nothing is buffered, and atexit work (LeakSanitizer in SAN
	 * builds) cannot run in a process that may no longer ptrace itself. */
	util_exit_now(SUP_EXPORTER_EXIT_OK, !cfg->sandbox);
}
