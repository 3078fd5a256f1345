/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c — daemon/metrics/metrics.c: the transport-security
 * families (connection close reasons, HTTP/2 guard verdicts with their
 * registered labels, idle streams, TLS handshakes and their histogram,
 * key-holder signatures) and the worker exit reasons, as exact exposition
 * lines. The older families, the shared region across processes, promtool
 * and the exporter are tests/integration/test_metrics.c (26-metrics).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "metrics/metrics.h"
#include "unit_suites_extra.h"

static char out[METRICS_RENDER_MAX];

/* True if text contains exactly this line. */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p++;
	}
	return 0;
}

#define ck_line(line) ck_assert_msg(has_line(out, (line)), "missing line: %s", (line))
#define ck_no(text)   ck_assert_msg(strstr(out, (text)) == NULL, "unexpected: %s", (text))

static void
render(const struct metrics *m)
{
	size_t n = metrics_render(m, out, sizeof(out), "1.2.3", NULL);

	ck_assert_uint_lt(n, sizeof(out));
	ck_assert_uint_eq(strlen(out), n);
}

START_TEST(new_families_at_zero)
{
	struct metrics *m = metrics_create();
	char line[160];
	int i;

	ck_assert_ptr_nonnull(m);
	render(m);
	ck_line("# TYPE paymentd_connections_closed_total counter");
	for (i = 0; i <= METRICS_NCLOSE; i++) {
		snprintf(line, sizeof(line), "paymentd_connections_closed_total{reason=\"%s\"} 0",
		    metrics_close_name((enum metrics_close)i));
		ck_line(line);
	}
	ck_line("paymentd_connections_closed_total{reason=\"first_rpc_timeout\"} 0");
	ck_line("paymentd_connections_closed_total{reason=\"other\"} 0");
	ck_line("# TYPE paymentd_h2_guard_violations_total counter");
	/* No labels registered in this process: only "other". */
	ck_line("paymentd_h2_guard_violations_total{reason=\"other\"} 0");
	ck_line("# TYPE paymentd_streams_idle_closed_total counter");
	ck_line("paymentd_streams_idle_closed_total 0");
	ck_line("paymentd_tls_handshakes_total{resumed=\"false\"} 0");
	ck_line("paymentd_tls_handshakes_total{resumed=\"true\"} 0");
	ck_line("# TYPE paymentd_tls_handshake_seconds histogram");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"0.0005\"} 0");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"+Inf\"} 0");
	ck_line("paymentd_tls_handshake_seconds_sum 0.000000000");
	ck_line("paymentd_tls_handshake_seconds_count 0");
	ck_line("paymentd_keyholder_signatures_total 0");
	ck_line("worker_exits_total{reason=\"cpu_budget\"} 0");
	ck_line("worker_exits_total{reason=\"reclaimed\"} 0");
	ck_line("worker_exits_total{reason=\"unknown_exit\"} 0");
	metrics_destroy(m);
}
END_TEST

START_TEST(close_reasons)
{
	struct metrics *m = metrics_create();

	metrics_conn_closed(m, METRICS_CLOSE_CLIENT_CLOSED);
	metrics_conn_closed(m, METRICS_CLOSE_HANDSHAKE_TIMEOUT);
	metrics_conn_closed(m, METRICS_CLOSE_HANDSHAKE_TIMEOUT);
	metrics_conn_closed(m, METRICS_CLOSE_PER_IP_LIMIT);
	metrics_conn_closed(m, metrics_close_from_name("reclaimed"));
	metrics_conn_closed(m, METRICS_NCLOSE);               /* not a reason */
	metrics_conn_closed(m, (enum metrics_close) - 1);     /* neither */
	metrics_conn_closed(m, metrics_close_from_name("x")); /* unknown name */
	metrics_conn_closed(NULL, METRICS_CLOSE_EMPTY);       /* a no-op */
	render(m);
	ck_line("paymentd_connections_closed_total{reason=\"client_closed\"} 1");
	ck_line("paymentd_connections_closed_total{reason=\"handshake_timeout\"} 2");
	ck_line("paymentd_connections_closed_total{reason=\"per_ip_limit\"} 1");
	ck_line("paymentd_connections_closed_total{reason=\"reclaimed\"} 1");
	ck_line("paymentd_connections_closed_total{reason=\"empty\"} 0");
	ck_line("paymentd_connections_closed_total{reason=\"other\"} 3");
	metrics_destroy(m);
}
END_TEST

START_TEST(close_names_map)
{
	static const char *const names[] = { "client_closed", "empty", "idle_timeout", "max_age",
		"sigterm", "db_lost", "db_down", "handshake_timeout", "tls_error",
		"first_rpc_timeout", "reclaimed", "guard", "per_ip_limit", "accept_rate",
		"no_worker", "stream_idle", "abuse_penalty" };
	int i;

	ck_assert_int_eq((int)(sizeof(names) / sizeof(names[0])), METRICS_NCLOSE);
	for (i = 0; i < METRICS_NCLOSE; i++) {
		ck_assert_str_eq(metrics_close_name((enum metrics_close)i), names[i]);
		ck_assert_int_eq(metrics_close_from_name(names[i]), i);
	}
	ck_assert_int_eq(metrics_close_from_name("GUARD"), METRICS_NCLOSE);
	ck_assert_int_eq(metrics_close_from_name("other"), METRICS_NCLOSE);
	ck_assert_int_eq(metrics_close_from_name(NULL), METRICS_NCLOSE);
	ck_assert_str_eq(metrics_close_name(METRICS_NCLOSE), "other");
	ck_assert_str_eq(metrics_close_name((enum metrics_close)99), "other");
}
END_TEST

START_TEST(guard_labels)
{
	static const char *const names[] = { "ping_flood", "settings_flood", "rst_flood",
		"bad\"label" };
	struct metrics *m = metrics_create();

	metrics_guard_labels(names, 4);
	metrics_guard_abuse(m, 0);
	metrics_guard_abuse(m, 2);
	metrics_guard_abuse(m, 2);
	metrics_guard_abuse(m, 3);
	metrics_guard_abuse(m, 5);                      /* counted, not named: other */
	metrics_guard_abuse(m, -1);                     /* out of range: other */
	metrics_guard_abuse(m, METRICS_GUARD_NREASONS); /* out of range: other */
	metrics_guard_abuse(NULL, 0);
	render(m);
	ck_line("paymentd_h2_guard_violations_total{reason=\"ping_flood\"} 1");
	ck_line("paymentd_h2_guard_violations_total{reason=\"settings_flood\"} 0");
	ck_line("paymentd_h2_guard_violations_total{reason=\"rst_flood\"} 2");
	ck_line("paymentd_h2_guard_violations_total{reason=\"bad\\\"label\"} 1");
	ck_line("paymentd_h2_guard_violations_total{reason=\"other\"} 3");

	/* More names than slots: capped; nothing is lost to "other". */
	{
		static const char *const many[METRICS_GUARD_NREASONS + 3] = { "r0", "r1", "r2",
			"r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
			"r15", "r16", "r17", "r18" };

		metrics_guard_labels(many, METRICS_GUARD_NREASONS + 3);
		render(m);
		ck_line("paymentd_h2_guard_violations_total{reason=\"r5\"} 1");
		ck_line("paymentd_h2_guard_violations_total{reason=\"r15\"} 0");
		ck_no("reason=\"r16\"");
		ck_line("paymentd_h2_guard_violations_total{reason=\"other\"} 2");
	}

	/* The table is copied: the caller's may be a local array. */
	{
		const char *local[2] = { "first", "second" };

		metrics_guard_labels(local, 2);
		local[0] = "changed";
		local[1] = NULL;
		render(m);
		ck_line("paymentd_h2_guard_violations_total{reason=\"first\"} 1");
		ck_line("paymentd_h2_guard_violations_total{reason=\"second\"} 0");
		ck_line("paymentd_h2_guard_violations_total{reason=\"other\"} 6");
		ck_no("changed");
	}

	/* Unregistered again: every count is "other". */
	metrics_guard_labels(NULL, 3);
	render(m);
	ck_no("reason=\"ping_flood\"");
	ck_line("paymentd_h2_guard_violations_total{reason=\"other\"} 7");
	metrics_destroy(m);
}
END_TEST

START_TEST(tls_streams_keyholder)
{
	struct metrics *m = metrics_create();

	metrics_tls_handshake(m, 0, 0.004);
	metrics_tls_handshake(m, 0, 0.02);
	metrics_tls_handshake(m, 1, 0.0004);
	metrics_tls_handshake(m, 7, 12); /* any non-zero is resumed; beyond 10 s: +Inf */
	metrics_tls_handshake(NULL, 1, 1);
	metrics_stream_closed_idle(m);
	metrics_stream_closed_idle(m);
	metrics_stream_closed_idle(NULL);
	metrics_kh_signature(m);
	metrics_kh_signature(m);
	metrics_kh_signature(m);
	metrics_kh_signature(NULL);
	render(m);
	ck_line("paymentd_tls_handshakes_total{resumed=\"false\"} 2");
	ck_line("paymentd_tls_handshakes_total{resumed=\"true\"} 2");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"0.0005\"} 1");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"0.0025\"} 1");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"0.005\"} 2");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"0.025\"} 3");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"10\"} 3");
	ck_line("paymentd_tls_handshake_seconds_bucket{le=\"+Inf\"} 4");
	ck_line("paymentd_tls_handshake_seconds_sum 12.024400000");
	ck_line("paymentd_tls_handshake_seconds_count 4");
	ck_line("paymentd_streams_idle_closed_total 2");
	ck_line("paymentd_keyholder_signatures_total 3");
	metrics_destroy(m);
}
END_TEST

START_TEST(worker_exit_reasons)
{
	struct metrics *m = metrics_create();

	metrics_worker_exit(m, "cpu_budget");
	metrics_worker_exit(m, "reclaimed");
	metrics_worker_exit(m, "reclaimed");
	metrics_worker_exit(m, "cpu");
	render(m);
	ck_line("worker_exits_total{reason=\"cpu_budget\"} 1");
	ck_line("worker_exits_total{reason=\"reclaimed\"} 2");
	ck_line("worker_exits_total{reason=\"unknown_exit\"} 1");
	ck_line("worker_exits_total{reason=\"crash\"} 0");
	metrics_destroy(m);
}
END_TEST

Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("families");

	tcase_add_test(tc, new_families_at_zero);
	tcase_add_test(tc, close_reasons);
	tcase_add_test(tc, close_names_map);
	tcase_add_test(tc, guard_labels);
	tcase_add_test(tc, tls_streams_keyholder);
	tcase_add_test(tc, worker_exit_reasons);
	suite_add_tcase(s, tc);
	return s;
}
