/*
 * metrics_http.c — the metrics exporter process: a minimal HTTP/1.1 server
 * for GET /metrics (see metrics.h for the contract).
 *
 * It is reachable by anyone who can reach METRICS_PORT, so it is locked
 * down like a worker (unprivileged user, seccomp profile SANDBOX_EXPORTER:
 * no exec, no fork, no file writes), holds only stdio and its listening
 * socket, maps the shared counters read-only, and bounds every request
 * in size (REQ_MAX) and in time (a total deadline, so a slow client cannot
 * hold the single-threaded loop for longer than IO_TIMEOUT_MS). One request
 * per connection (Connection: close) keeps the parser trivial; Prometheus
 * does not need keep-alive.
 */
#include "metrics.h"
#include "lockdown.h"
#include "log.h"
#include "sandbox.h"
#include "util.h"
#include "version.h"
#include "wrk_exit.h"

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

#define REQ_MAX          8192
#define IO_TIMEOUT_MS    2000
#define WRITE_TIMEOUT_MS 5000
#define DRAIN_MS         200
#define LISTEN_BACKLOG   16
#define EXPORTER_MAX_FDS 32

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
	struct addrinfo hints, *res = NULL, *ai;
	char portstr[16];
	int fd = -1, one = 1, gai;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	gai = getaddrinfo(host && host[0] ? host : NULL, portstr, &hints, &res);
	if (gai != 0) {
		snprintf(err, errlen, "METRICS_HOST %s: %s", host ? host : "", gai_strerror(gai));
		goto out;
	}
	snprintf(err, errlen, "METRICS_PORT %d: no usable address", port);
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
			break;
		snprintf(err, errlen, "METRICS_PORT: bind %s:%d: %s", host && host[0] ? host : "*",
		    port, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	if (res)
		freeaddrinfo(res);
	return fd;
}

/* ---- HTTP ------------------------------------------------------------- */

static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		int64_t left = deadline_ms - util_now_ms();
		int n;

		if (left <= 0 || got_term)
			return -1;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int
write_all(int fd, const char *p, size_t n, int64_t deadline_ms)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    wait_fd(fd, POLLOUT, deadline_ms) == 0)
			continue;
		return -1;
	}
	return 0;
}

static int
respond(int fd, int status, const char *reason, const char *ctype, const char *extra,
    const char *body, size_t bodylen, int head_only)
{
	char hdr[512];
	int64_t deadline = util_now_ms() + WRITE_TIMEOUT_MS;

	if (util_fmt(hdr, sizeof(hdr), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
	    status, reason, ctype, bodylen, extra ? extra : "") < 0)
		return -1;
	if (write_all(fd, hdr, strlen(hdr), deadline) < 0)
		return -1;
	if (!head_only && bodylen > 0 && write_all(fd, body, bodylen, deadline) < 0)
		return -1;
	return 0;
}

static void
respond_text(int fd, int status, const char *reason, const char *extra, const char *msg,
    int head_only)
{
	respond(fd, status, reason, "text/plain; charset=utf-8", extra, msg, strlen(msg), head_only);
}

/*
 * Reads the request head (up to the blank line) into req. Returns its
 * length, 0 if the client went away, -1 on timeout, -2 if it exceeds
 * REQ_MAX. A body, if any, is never read: nothing here accepts one.
 */
static ssize_t
read_head(int fd, char *req, int64_t deadline_ms)
{
	size_t n = 0;

	for (;;) {
		ssize_t r;

		if (n >= REQ_MAX)
			return -2;
		r = recv(fd, req + n, REQ_MAX - n, 0);
		if (r == 0)
			return 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLIN, deadline_ms) == 0)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : 0;
		}
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
			return (ssize_t)n;
	}
}

/* Closing with unread input makes the kernel send RST, which can destroy
 * the response in flight: half-close and drain briefly first. */
static void
linger_close(int fd)
{
	char sink[4096];
	int64_t deadline = util_now_ms() + DRAIN_MS;
	size_t total = 0;

	shutdown(fd, SHUT_WR);
	while (total < 65536 && wait_fd(fd, POLLIN, deadline) == 0) {
		ssize_t r = recv(fd, sink, sizeof(sink), 0);
		if (r <= 0)
			break;
		total += (size_t)r;
	}
	close(fd);
}

struct exporter {
	const struct config *cfg;
	struct metrics      *shm;
	PGconn              *pg;
	int                  db_state;	/* -1 unknown, 0 failing, 1 ok: log transitions only */
	char                *body;
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
		ob->oldest_age_s = 0;	/* created_at from a skewed clock */
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

static void
serve_one(struct exporter *e, int fd)
{
	char req[REQ_MAX + 1], *sp1, *sp2, *eol, *q;
	ssize_t n = read_head(fd, req, util_now_ms() + IO_TIMEOUT_MS);
	int head_only;

	if (n == 0)
		goto out;
	if (n == -1) {
		respond_text(fd, 408, "Request Timeout", NULL, "request timeout\n", 0);
		goto out;
	}
	if (n == -2) {
		respond_text(fd, 431, "Request Header Fields Too Large", NULL, "request too large\n", 0);
		goto out;
	}
	eol = strpbrk(req, "\r\n");
	*eol = '\0';
	sp1 = strchr(req, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/') {
		respond_text(fd, 400, "Bad Request", NULL, "bad request\n", 0);
		goto out;
	}
	*sp1 = *sp2 = '\0';
	head_only = strcmp(req, "HEAD") == 0;	/* headers only, errors too */
	if ((q = strchr(sp1 + 1, '?')) != NULL)
		*q = '\0';	/* Prometheus may add parameters; none are used */
	if (strcmp(sp1 + 1, "/metrics") != 0) {
		respond_text(fd, 404, "Not Found", NULL, "not found; try /metrics\n", head_only);
		goto out;
	}
	if (strcmp(req, "GET") != 0 && !head_only) {
		respond_text(fd, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
		    "method not allowed\n", 0);
		goto out;
	}
	{
		struct metrics_outbox ob;
		size_t len;

		outbox_query(e, &ob);
		len = metrics_render(e->shm, e->body, METRICS_RENDER_MAX, PAYMENTD_VERSION, &ob);
		if (len >= METRICS_RENDER_MAX) {
			log_error("metrics output exceeds METRICS_RENDER_MAX", LF_I("bytes", (int64_t)len));
			respond_text(fd, 500, "Internal Server Error", NULL, "metrics too large\n", head_only);
			goto out;
		}
		respond(fd, 200, "OK", "text/plain; version=0.0.4", NULL, e->body, len, head_only);
	}
out:
	linger_close(fd);
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
	lockdown_enter(cfg, SANDBOX_EXPORTER, NULL, EXPORTER_MAX_FDS, "metrics exporter");
}

void
metrics_exporter_main(const struct config *cfg, struct metrics *shm, int listen_fd)
{
	struct exporter e;
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
		exit(WRK_EXIT_SOFTWARE);
	}
	e.body = xmalloc(METRICS_RENDER_MAX);
	if (metrics_protect_readonly(shm) < 0) {
		log_error("metrics exporter: mprotect failed", LF_S("error", strerror(errno)));
		exit(WRK_EXIT_SOFTWARE);
	}
	lock_down(cfg);
	/* Never outlive the supervisor. Set after lock_down: the kernel
	 * clears the parent-death signal when the uid changes. If the parent
	 * died before this point, nobody would ever send it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent) {
		log_warn("metrics exporter: supervisor gone before startup finished");
		_exit(WRK_EXIT_OK);
	}
	log_info("metrics exporter serving /metrics");

	while (!got_term) {
		struct pollfd p = { listen_fd, POLLIN, 0 };
		int fd;

		if (poll(&p, 1, 1000) <= 0)
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED) {
				log_warn("metrics exporter: accept failed", LF_S("error", strerror(errno)));
				poll(NULL, 0, 100);	/* e.g. EMFILE: do not spin */
			}
			continue;
		}
		serve_one(&e, fd);
	}
	if (e.pg)
		PQfinish(e.pg);
	free(e.body);
	/* _exit: nothing is buffered, and atexit work (LeakSanitizer in SAN
	 * builds) cannot run in a process that may no longer ptrace itself. */
	_exit(WRK_EXIT_OK);
}
