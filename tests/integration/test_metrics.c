/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c — the shared metrics (daemon/metrics.c) and the exporter
 * (daemon/metrics_http.c).
 *
 * Rendering cases check exact exposition lines. The multi-process case
 * forks writers after metrics_create(), as the supervisor does, and needs
 * every increment to land. The HTTP cases run the real exporter in a child
 * on an ephemeral 127.0.0.1 port and talk to it with plain sockets; when
 * run as root with PAYMENTD_USER present, the exporter really locks down
 * (that user, seccomp SANDBOX_EXPORTER), so a missing allowlist entry
 * kills it and fails these cases. Outbox gauges use DATABASE_URL (exported by tests/run-all).
 * promtool (Debian package prometheus) lints the rendered and the served
 * output.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <libpq-fe.h>

#include "common/config.h"
#include "common/log.h"
#include "metrics/metrics.h"
#include "common/util.h"
#include "common/version.h"
#include "tests/lib/testlib.h"

/* Larger than the exporter's request bound (8 KiB). */
#define REQ_HUGE_LEN 9000

static char big[METRICS_RENDER_MAX];

/* True if buf contains exactly this line. */
static int
has_line(const char *buf, const char *line)
{
	size_t n = strlen(line);
	const char *p = buf;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == buf || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p++;
	}
	return 0;
}

#define ck_line(buf, line) ck_assert_msg(has_line((buf), (line)), "missing line: %s", (line))

/* The number after "name " on its line, or -1. */
static double
value_of(const char *buf, const char *series)
{
	char pat[256];
	const char *p;

	snprintf(pat, sizeof(pat), "\n%s ", series);
	p = strstr(buf, pat);
	return p ? strtod(p + strlen(pat), NULL) : -1;
}

static size_t
render(const struct metrics *m, const struct metrics_outbox *ob)
{
	size_t n = metrics_render(m, big, sizeof(big), "9.9.9", ob);

	ck_assert_uint_lt(n, sizeof(big));
	ck_assert_uint_eq(strlen(big), n);
	return n;
}

/* ---- rendering ------------------------------------------------------------ */

START_TEST(render_all_series_at_zero)
{
	struct metrics *m = metrics_create();

	ck_assert_ptr_nonnull(m);
	render(m, NULL);
	ck_line(big, "# TYPE grpc_requests_total counter");
	ck_line(big, "grpc_requests_total{method=\"AuthorizePayment\",code=\"OK\"} 0");
	ck_line(big, "grpc_requests_total{method=\"Unknown\",code=\"UNAUTHENTICATED\"} 0");
	ck_line(big, "# TYPE grpc_request_duration_seconds histogram");
	ck_line(big, "grpc_request_duration_seconds_bucket{method=\"HealthWatch\",le=\"+Inf\"} 0");
	ck_line(big, "grpc_request_duration_seconds_sum{method=\"HealthWatch\"} 0.000000000");
	ck_line(big, "grpc_request_duration_seconds_count{method=\"Reflection\"} 0");
	ck_line(big, "payment_requests_total{status=\"DUPLICATE\",error_code=\"NONE\"} 0");
	ck_line(big, "payment_duration_seconds_bucket{le=\"0.0005\"} 0");
	ck_line(big, "payment_duration_seconds_count 0");
	ck_line(big, "rate_limit_exceeded_total{method=\"GetPayment\"} 0");
	ck_line(big, "rate_limiter_unavailable_total 0");
	ck_line(big, "workers_active 0");
	ck_line(big, "workers_idle 0");
	ck_line(big, "worker_exits_total{reason=\"seccomp\"} 0");
	ck_line(big, "worker_exits_total{reason=\"unknown_exit\"} 0");
	ck_line(big, "connections_accepted_total 0");
	ck_line(big, "# TYPE paymentd_build_info gauge");
	ck_line(big, "paymentd_build_info{version=\"9.9.9\"} 1");
	ck_assert_ptr_null(strstr(big, "outbox"));
	ck_assert(big[strlen(big) - 1] == '\n');
	metrics_destroy(m);
}
END_TEST

START_TEST(render_counters_and_histogram)
{
	struct metrics *m = metrics_create();

	metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 0, 0.003);
	metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 0, 0.003);
	metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 8, 0.0001);
	metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 14, 0.001); /* le is inclusive */
	metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 0, 12.5);   /* beyond 10: +Inf only */
	metrics_rpc(m, METRICS_M_GET_PAYMENT, 99, 0.2);         /* bad code -> UNKNOWN */
	metrics_rpc(m, METRICS_M_GET_PAYMENT, -1, -3);          /* negative time -> 0 */
	metrics_rpc(m, (enum metrics_method)42, 0, 0.01);       /* bad method -> Unknown */
	render(m, NULL);

	ck_line(big, "grpc_requests_total{method=\"AuthorizePayment\",code=\"OK\"} 3");
	ck_line(
	    big, "grpc_requests_total{method=\"AuthorizePayment\",code=\"RESOURCE_EXHAUSTED\"} 1");
	ck_line(big, "grpc_requests_total{method=\"AuthorizePayment\",code=\"UNAVAILABLE\"} 1");
	ck_line(big, "grpc_requests_total{method=\"GetPayment\",code=\"UNKNOWN\"} 2");
	ck_line(big, "grpc_requests_total{method=\"Unknown\",code=\"OK\"} 1");
	/* Cumulative buckets. */
	ck_line(big,
	    "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"0.0005\"} 1");
	ck_line(big,
	    "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"0.001\"} 2");
	ck_line(big,
	    "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"0.0025\"} 2");
	ck_line(big,
	    "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"0.005\"} 4");
	ck_line(
	    big, "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"10\"} 4");
	ck_line(
	    big, "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"+Inf\"} 5");
	ck_line(big, "grpc_request_duration_seconds_sum{method=\"AuthorizePayment\"} 12.507100000");
	ck_line(big, "grpc_request_duration_seconds_count{method=\"AuthorizePayment\"} 5");
	ck_line(big, "grpc_request_duration_seconds_bucket{method=\"GetPayment\",le=\"0.0005\"} 1");
	ck_line(big, "grpc_request_duration_seconds_bucket{method=\"GetPayment\",le=\"0.25\"} 2");
	ck_line(big, "grpc_request_duration_seconds_sum{method=\"GetPayment\"} 0.200000000");
	ck_line(big, "grpc_request_duration_seconds_count{method=\"GetPayment\"} 2");
	metrics_destroy(m);
}
END_TEST

START_TEST(render_payments_workers_and_limits)
{
	struct metrics *m = metrics_create();

	metrics_payment(m, 1, 0, 0.004);
	metrics_payment(m, 2, 1, 0.02);
	metrics_payment(m, 2, 1, 0.03);
	metrics_payment(m, 3, 0, 0.001);
	metrics_payment(m, 0, 42, 0.001); /* both out of range */
	metrics_rate_limited(m, METRICS_M_AUTHORIZE_PAYMENT);
	metrics_rate_limited(m, METRICS_M_AUTHORIZE_PAYMENT);
	metrics_rl_unavailable(m);
	metrics_worker_exit(m, "ok");
	metrics_worker_exit(m, "ok");
	metrics_worker_exit(m, "seccomp");
	metrics_worker_exit(m, "what?");
	metrics_worker_exit(m, NULL);
	metrics_set_workers(m, 3, 4);
	metrics_connection_accepted(m);
	/* NULL handle: a no-op, never a crash. */
	metrics_rpc(NULL, METRICS_M_GET_PAYMENT, 0, 1);
	metrics_payment(NULL, 1, 0, 1);
	metrics_worker_exit(NULL, "ok");
	render(m, NULL);

	ck_line(big, "payment_requests_total{status=\"AUTHORIZED\",error_code=\"NONE\"} 1");
	ck_line(
	    big, "payment_requests_total{status=\"DECLINED\",error_code=\"INSUFFICIENT_FUNDS\"} 2");
	ck_line(big, "payment_requests_total{status=\"DUPLICATE\",error_code=\"NONE\"} 1");
	ck_line(big, "payment_requests_total{status=\"UNKNOWN\",error_code=\"UNKNOWN\"} 1");
	ck_line(
	    big, "payment_requests_total{status=\"DECLINED\",error_code=\"ACCOUNT_INACTIVE\"} 0");
	ck_line(big, "payment_duration_seconds_bucket{le=\"0.005\"} 3");
	ck_line(big, "payment_duration_seconds_bucket{le=\"0.025\"} 4");
	ck_line(big, "payment_duration_seconds_bucket{le=\"0.05\"} 5");
	ck_line(big, "payment_duration_seconds_sum 0.056000000");
	ck_line(big, "payment_duration_seconds_count 5");
	ck_line(big, "rate_limit_exceeded_total{method=\"AuthorizePayment\"} 2");
	ck_line(big, "rate_limiter_unavailable_total 1");
	ck_line(big, "worker_exits_total{reason=\"ok\"} 2");
	ck_line(big, "worker_exits_total{reason=\"seccomp\"} 1");
	ck_line(big, "worker_exits_total{reason=\"unknown_exit\"} 2");
	ck_line(big, "workers_active 3");
	ck_line(big, "workers_idle 4");
	ck_line(big, "connections_accepted_total 1");
	metrics_destroy(m);
}
END_TEST

START_TEST(method_names_map)
{
	ck_assert_int_eq(metrics_method_from_name("AuthorizePayment"), METRICS_M_AUTHORIZE_PAYMENT);
	ck_assert_int_eq(
	    metrics_method_from_name("GetAccountBalance"), METRICS_M_GET_ACCOUNT_BALANCE);
	ck_assert_int_eq(metrics_method_from_name("HealthWatch"), METRICS_M_HEALTH_WATCH);
	ck_assert_int_eq(metrics_method_from_name("Reflection"), METRICS_M_REFLECTION);
	ck_assert_int_eq(metrics_method_from_name("TestSyscall"), METRICS_M_UNKNOWN);
	ck_assert_int_eq(metrics_method_from_name("Unknown"), METRICS_M_UNKNOWN);
	ck_assert_int_eq(metrics_method_from_name(NULL), METRICS_M_UNKNOWN);
	ck_assert_str_eq(metrics_method_name(METRICS_M_HEALTH_CHECK), "HealthCheck");
	ck_assert_str_eq(metrics_method_name((enum metrics_method) - 1), "Unknown");
}
END_TEST

START_TEST(label_values_escaped)
{
	struct metrics *m = metrics_create();

	metrics_render(m, big, sizeof(big), "1.0\"beta\\2\nx", NULL);
	ck_line(big, "paymentd_build_info{version=\"1.0\\\"beta\\\\2\\nx\"} 1");
	metrics_destroy(m);
}
END_TEST

START_TEST(outbox_lines)
{
	struct metrics *m = metrics_create();
	struct metrics_outbox ob = { 1, 0, 0, 0, 0, 0, 0 };

	render(m, &ob);
	ck_line(big, "outbox_metrics_up 0");
	ck_assert_ptr_null(strstr(big, "outbox_pending_events"));
	ck_assert_ptr_null(strstr(big, "outbox_oldest_pending_age_seconds"));
	ob.up = 1;
	ob.pending = 42;
	ob.oldest_age_s = 7.25;
	ob.published = 1000;
	ob.dead_lettered = 3;
	ob.failed_attempts = 11;
	render(m, &ob);
	ck_line(big, "relay_published_events 1000");
	ck_line(big, "relay_dead_lettered_events 3");
	ck_line(big, "relay_failed_publish_attempts 11");
	ck_line(big, "outbox_metrics_up 1");
	ck_line(big, "# TYPE outbox_pending_events gauge");
	ck_line(big, "outbox_pending_events 42");
	ck_line(big, "outbox_oldest_pending_age_seconds 7.250");
	metrics_destroy(m);
}
END_TEST

START_TEST(render_reports_truncation)
{
	struct metrics *m = metrics_create();
	char small[100], *exact;
	size_t full, n;

	metrics_rpc(m, METRICS_M_GET_PAYMENT, 0, 0.01);
	full = metrics_render(m, big, sizeof(big), "v", NULL);
	n = metrics_render(m, small, sizeof(small), "v", NULL);
	ck_assert_uint_eq(n, full);
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert(strncmp(small, big, sizeof(small) - 1) == 0);
	exact = malloc(full + 1);
	ck_assert_uint_eq(metrics_render(m, exact, full + 1, "v", NULL), full);
	ck_assert_str_eq(exact, big);
	ck_assert_uint_eq(metrics_render(m, NULL, 0, "v", NULL), full);
	free(exact);
	metrics_destroy(m);
}
END_TEST

/* ---- many processes, one region -------------------------------------------- */

START_TEST(children_share_counters)
{
	enum { NCHILD = 8, PER = 50000 };
	struct metrics *m = metrics_create();
	char line[160];
	pid_t pids[NCHILD];
	int i, st;

	for (i = 0; i < NCHILD; i++) {
		pids[i] = fork();
		ck_assert_int_ge(pids[i], 0);
		if (pids[i] == 0) {
			int k;
			for (k = 0; k < PER; k++) {
				metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 0, 0.001);
				metrics_connection_accepted(m);
				metrics_payment(m, 1, 0, 0.002);
			}
			_exit(0);
		}
	}
	for (i = 0; i < NCHILD; i++) {
		ck_assert_int_eq(waitpid(pids[i], &st, 0), pids[i]);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	render(m, NULL);
	snprintf(line, sizeof(line),
	    "grpc_requests_total{method=\"AuthorizePayment\",code=\"OK\"} %d", NCHILD * PER);
	ck_line(big, line);
	snprintf(line, sizeof(line),
	    "grpc_request_duration_seconds_bucket{method=\"AuthorizePayment\",le=\"0.001\"} %d",
	    NCHILD * PER);
	ck_line(big, line);
	snprintf(line, sizeof(line),
	    "grpc_request_duration_seconds_count{method=\"AuthorizePayment\"} %d", NCHILD * PER);
	ck_line(big, line);
	ck_line(
	    big, "grpc_request_duration_seconds_sum{method=\"AuthorizePayment\"} 400.000000000");
	snprintf(line, sizeof(line), "connections_accepted_total %d", NCHILD * PER);
	ck_line(big, line);
	snprintf(line, sizeof(line),
	    "payment_requests_total{status=\"AUTHORIZED\",error_code=\"NONE\"} %d", NCHILD * PER);
	ck_line(big, line);
	metrics_destroy(m);
}
END_TEST

/* ---- promtool --------------------------------------------------------------- */

static void
promtool_ok(const char *text)
{
	char path[] = "/tmp/test_metrics.XXXXXX", outp[64], out[4096] = "";
	char *argv[] = { "promtool", "check", "metrics", NULL };
	FILE *f;
	int fd = mkstemp(path), st = -1;
	size_t n = 0;
	pid_t pid;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	snprintf(outp, sizeof(outp), "%s.out", path);
	pid = tl_spawn(argv, path, outp, outp);
	ck_assert_int_gt(pid, 0);
	ck_assert_msg(tl_wait(pid, 30000, &st) == 0, "promtool check metrics did not finish");
	if ((f = fopen(outp, "r")) != NULL) {
		n = fread(out, 1, sizeof(out) - 1, f);
		fclose(f);
	}
	out[n] = '\0';
	unlink(path);
	unlink(outp);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "promtool check metrics: status %d: %s", st, out);
}

START_TEST(promtool_accepts_rendering)
{
	struct metrics *m = metrics_create();
	struct metrics_outbox ob = { 1, 1, 3, 12.5, 40, 2, 7 };

	metrics_rpc(m, METRICS_M_AUTHORIZE_PAYMENT, 0, 0.003);
	metrics_payment(m, 2, 1, 0.02);
	metrics_worker_exit(m, "crash");
	render(m, &ob);
	promtool_ok(big);
	ob.up = 0;
	render(m, &ob);
	promtool_ok(big);
	metrics_destroy(m);
}
END_TEST

/* ---- the exporter over HTTP --------------------------------------------------- */

struct exporter {
	pid_t pid;
	int port;
	int sandboxed;
};

static int
can_sandbox(const struct config *c)
{
	return geteuid() == 0 && getpwnam(c->user) != NULL;
}

static struct exporter
start_exporter(struct metrics *m, const char *dburl)
{
	struct exporter e;
	struct config c;
	char err[256];
	int fd = -1, i;

	cfg_defaults(&c);
	snprintf(c.database_url, sizeof(c.database_url), "%s", dburl);
	c.log_level = LOG_WARNING;
	c.sandbox = can_sandbox(&c);
	/* A port of the harness's block (another process may take one between
	 * the look and the bind: then the next). */
	for (i = 0; i < 20 && fd < 0; i++) {
		e.port = tl_free_port();
		fd = metrics_listen("127.0.0.1", e.port, err, sizeof(err));
	}
	ck_assert_msg(fd >= 0, "metrics_listen: %s", err);
	e.sandboxed = c.sandbox;
	e.pid = fork();
	ck_assert_int_ge(e.pid, 0);
	if (e.pid == 0)
		metrics_exporter_main(&c, m, fd);
	close(fd);
	return e;
}

static void
stop_exporter(struct exporter *e)
{
	int st;

	ck_assert_int_eq(kill(e->pid, SIGTERM), 0);
	ck_assert_msg(tl_wait(e->pid, 3000, &st) == 0, "exporter ignored SIGTERM");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exporter status %d", st);
}

static int
dial(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Reads until EOF (or 5 s); returns bytes read into out (NUL-terminated). */
static size_t
read_all(int fd, char *out, size_t cap)
{
	size_t n = 0;
	int64_t deadline = util_now_ms() + 5000;

	while (n + 1 < cap) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t r;
		int64_t left = deadline - util_now_ms();

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		r = read(fd, out + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return n;
}

/* One request; the full response (head and body) into out. */
static size_t
http(int port, const char *req, char *out, size_t cap)
{
	int fd = dial(port);
	size_t n;

	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	n = read_all(fd, out, cap);
	close(fd);
	return n;
}

static const char *
body_of(const char *resp)
{
	const char *p = strstr(resp, "\r\n\r\n");

	ck_assert_ptr_nonnull(p);
	return p + 4;
}

static char resp[METRICS_RENDER_MAX + 4096];

START_TEST(http_serves_metrics)
{
	struct metrics *m = metrics_create();
	struct exporter e = start_exporter(m, tl_db_url());
	const char *body;
	long clen;

	/* Incremented after the fork: the exporter must see shared memory. */
	metrics_connection_accepted(m);
	metrics_connection_accepted(m);
	metrics_set_workers(m, 5, 2);

	http(e.port, "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n", resp,
	    sizeof(resp));
	ck_assert_msg(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%.200s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4\r\n"));
	ck_assert_ptr_nonnull(strstr(resp, "\r\nConnection: close\r\n"));
	body = body_of(resp);
	clen = strtol(strstr(resp, "Content-Length: ") + 16, NULL, 10);
	ck_assert_int_eq(clen, (long)strlen(body));
	ck_line(body, "connections_accepted_total 2");
	ck_line(body, "workers_active 5");
	ck_line(body, "workers_idle 2");
	ck_line(body, "paymentd_build_info{version=\"" PAYMENTD_VERSION "\"} 1");
	ck_line(body, "outbox_metrics_up 1");
	ck_assert_msg(value_of(body, "outbox_pending_events") >= 0, "no outbox_pending_events");
	ck_assert_msg(value_of(body, "outbox_oldest_pending_age_seconds") >= 0, "no outbox age");
	promtool_ok(body);

	/* Query strings are ignored; HTTP/1.0 works; HEAD has no body. */
	http(e.port, "GET /metrics?x=1 HTTP/1.0\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	http(e.port, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	ck_assert_str_eq(body_of(resp), "");

	if (e.sandboxed) {
		/* It dropped to PAYMENTD_USER before serving. */
		char path[64], status[4096], uidline[64];
		struct passwd *pw = getpwnam("paymentd");
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)e.pid);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		n = fread(status, 1, sizeof(status) - 1, f);
		status[n] = '\0';
		fclose(f);
		ck_assert_ptr_nonnull(pw);
		snprintf(uidline, sizeof(uidline), "\nUid:\t%u\t%u\t%u\t%u\n", (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_uid, (unsigned)pw->pw_uid, (unsigned)pw->pw_uid);
		ck_assert_msg(strstr(status, uidline) != NULL, "exporter not running as paymentd");
		ck_assert_msg(
		    strstr(status, "\nSeccomp:\t2\n") != NULL, "exporter has no seccomp filter");
		ck_assert_msg(
		    strstr(status, "\nNoNewPrivs:\t1\n") != NULL, "exporter lacks no_new_privs");
	}
	stop_exporter(&e);
	metrics_destroy(m);
}
END_TEST

START_TEST(http_errors)
{
	struct metrics *m = metrics_create();
	struct exporter e = start_exporter(m, tl_db_url());
	char huge[REQ_HUGE_LEN];
	int64_t t0;
	int fd;

	http(e.port, "GET /other HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert_msg(strncmp(resp, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%.100s", resp);
	http(e.port, "GET / HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 404 ", 13) == 0);
	http(e.port, "HEAD /nope HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 404 ", 13) == 0);
	ck_assert_str_eq(body_of(resp), "");
	http(
	    e.port, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", resp, sizeof(resp));
	ck_assert_msg(
	    strncmp(resp, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0, "%.100s", resp);
	ck_assert_ptr_nonnull(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
	http(e.port, "DELETE /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 405 ", 13) == 0);
	http(e.port, "HELLO\r\n\r\n", resp, sizeof(resp));
	ck_assert_msg(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%.100s", resp);
	http(e.port, "GET /metrics SMTP/1.0\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);

	/* A head larger than the bound, never terminated. */
	memset(huge, 'a', sizeof(huge) - 1);
	memcpy(huge, "GET /metrics HTTP/1.1\r\nX: ", 26);
	huge[sizeof(huge) - 1] = '\0';
	http(e.port, huge, resp, sizeof(resp));
	ck_assert_msg(strncmp(resp, "HTTP/1.1 431 ", 13) == 0, "%.100s", resp);

	/* A client that sends nothing is cut off after the read timeout,
	 * and the exporter then serves the next one. */
	t0 = util_now_ms();
	fd = dial(e.port);
	read_all(fd, resp, sizeof(resp));
	close(fd);
	ck_assert_msg(strncmp(resp, "HTTP/1.1 408 ", 13) == 0, "%.100s", resp);
	ck_assert_int_ge(util_now_ms() - t0, 1500);
	ck_assert_int_lt(util_now_ms() - t0, 4500);
	http(e.port, "GET /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);

	stop_exporter(&e);
	metrics_destroy(m);
}
END_TEST

START_TEST(http_outbox_gauges_from_postgres)
{
	struct metrics *m = metrics_create();
	struct exporter e;
	PGconn *c = tl_db();
	char seq[32];
	const char *seq_p[1] = { seq };
	const char *body;
	long long before, after, seqn;
	double age;

	/* One old unpublished event of our own, removed again below. */
	seqn = tl_db_int(c,
	    "INSERT INTO outbox (aggregate_type, aggregate_id, partition_key, event_type, "
	    "payload, created_at) VALUES ('test', 'metrics-test', 'metrics-test', 'MetricsTest', "
	    "'{}', now() - interval '1 hour') RETURNING seq",
	    0, NULL);
	snprintf(seq, sizeof(seq), "%lld", seqn);
	e = start_exporter(m, tl_db_url());
	before = tl_db_int(c, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, NULL);
	http(e.port, "GET /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	after = tl_db_int(c, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, NULL);
	tl_db_int(c,
	    "WITH d AS (DELETE FROM outbox WHERE seq = $1::bigint RETURNING 1) SELECT count(*) FROM d",
	    1, seq_p);
	PQfinish(c);

	ck_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	body = body_of(resp);
	ck_line(body, "outbox_metrics_up 1");
	ck_assert_int_ge(before, 1);
	if (before == after) /* nothing else touched the outbox meanwhile */
		ck_assert_int_eq((long long)value_of(body, "outbox_pending_events"), before);
	ck_assert(value_of(body, "outbox_pending_events") >= 1);
	age = value_of(body, "outbox_oldest_pending_age_seconds");
	ck_assert_msg(age >= 3600 && age < 3600 + 600, "oldest age %f", age);
	stop_exporter(&e);
	metrics_destroy(m);
}
END_TEST

START_TEST(http_outbox_down_when_db_unreachable)
{
	struct metrics *m = metrics_create();
	struct exporter e;
	char url[128];
	const char *body;

	/* A port nobody listens on. */
	snprintf(url, sizeof(url), "postgresql://paymentd@127.0.0.1:%d/paymentd", tl_free_port());
	e = start_exporter(m, url);
	http(e.port, "GET /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	body = body_of(resp);
	ck_line(body, "outbox_metrics_up 0");
	ck_assert_ptr_null(strstr(body, "outbox_pending_events"));
	ck_assert_ptr_null(strstr(body, "outbox_oldest_pending_age_seconds"));
	ck_line(body, "connections_accepted_total 0");
	promtool_ok(body);
	stop_exporter(&e);
	metrics_destroy(m);
}
END_TEST

START_TEST(exporter_exits_when_supervisor_dies)
{
	struct metrics *m = metrics_create();
	struct exporter e;
	const char *url = tl_db_url(); /* fail here, not in the child */
	pid_t mid;
	int pp[2], st;

	/* Orphans get reparented to us, so we can reap the exporter. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(pp), 0);
	mid = fork();
	ck_assert_int_ge(mid, 0);
	if (mid == 0) { /* plays the supervisor */
		e = start_exporter(m, url);
		if (write(pp[1], &e, sizeof(e)) != (ssize_t)sizeof(e))
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pp[0], &e, sizeof(e)), (ssize_t)sizeof(e));
	/* Serving means it is past the privilege drop (which clears a
	 * parent-death signal set earlier). */
	http(e.port, "GET /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	ck_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	kill(mid, SIGKILL);
	ck_assert_int_eq(waitpid(mid, &st, 0), mid);
	ck_assert_msg(tl_wait(e.pid, 3000, &st) == 0, "exporter outlived its parent");
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(pp[0]);
	close(pp[1]);
	metrics_destroy(m);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tr = tcase_create("render");
	TCase *th = tcase_create("http");

	log_init("test_metrics", LOG_WARNING, LOG_FORMAT_JSON);
	tcase_add_test(tr, render_all_series_at_zero);
	tcase_add_test(tr, render_counters_and_histogram);
	tcase_add_test(tr, render_payments_workers_and_limits);
	tcase_add_test(tr, method_names_map);
	tcase_add_test(tr, label_values_escaped);
	tcase_add_test(tr, outbox_lines);
	tcase_add_test(tr, render_reports_truncation);
	tcase_add_test(tr, children_share_counters);
	tcase_add_test(tr, promtool_accepts_rendering);
	tcase_set_timeout(tr, 30);
	suite_add_tcase(s, tr);

	tcase_add_test(th, http_serves_metrics);
	tcase_add_test(th, http_errors);
	tcase_add_test(th, http_outbox_gauges_from_postgres);
	tcase_add_test(th, http_outbox_down_when_db_unreachable);
	tcase_add_test(th, exporter_exits_when_supervisor_dies);
	tcase_set_timeout(th, 30);
	suite_add_tcase(s, th);
	return tl_run(s, CK_NORMAL, 0);
}
