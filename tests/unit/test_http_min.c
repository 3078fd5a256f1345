/* SPDX-License-Identifier: MIT */
/*
 * test_http_min.c — daemon/common/http_min.c, its protocol half
 * (http_min_response): what each request head, or a late or oversized
 * one, is answered with, byte for byte where it matters. The connection
 * table under idle and trickling sockets is tests/suites/47-scrape, on the
 * real exporter and relay.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/http_min.h"
#include "unit_suites_extra.h"

static int renders;

static int
render_ok(void *arg, const char **body, size_t *len)
{
	renders++;
	*body = arg;
	*len = strlen(arg);
	return 0;
}

static int
render_fail(void *arg, const char **body, size_t *len)
{
	(void)arg;
	(void)body;
	(void)len;
	renders++;
	return -1;
}

/* The response to head (or to status), NUL-terminated, malloc'd. */
static char *
answer(const char *head, int status, http_render_fn fn)
{
	char req[HTTP_MIN_REQ_MAX + 1], *out = NULL, *s;
	size_t n = 0;

	strcpy(req, head);
	ck_assert_int_eq(http_min_response(req, status, fn, "a 1\n", &out, &n), 0);
	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, out, n);
	s[n] = '\0';
	free(out);
	return s;
}

#define ck_answer_starts(resp, prefix) \
	ck_assert_msg(strncmp((resp), (prefix), strlen(prefix)) == 0, "%.120s", (resp))

START_TEST(get_metrics)
{
	char *r;

	renders = 0;
	r = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, render_ok);
	ck_assert_str_eq(r,
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	    "Content-Length: 4\r\nConnection: close\r\n\r\na 1\n");
	free(r);
	r = answer("GET /metrics?name[]=x HTTP/1.0\n\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 200 OK\r\n");
	free(r);
	/* HEAD: the same headers (Content-Length of the body), no body. */
	r = answer("HEAD /metrics HTTP/1.1\r\n\r\n", 0, render_ok);
	ck_assert_str_eq(r,
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
	    "Content-Length: 4\r\nConnection: close\r\n\r\n");
	free(r);
	ck_assert_int_eq(renders, 3);
}
END_TEST

START_TEST(errors)
{
	char *r;

	renders = 0;
	r = answer("GET /other HTTP/1.1\r\n\r\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 404 Not Found\r\n");
	ck_assert_ptr_nonnull(strstr(r, "\r\n\r\nnot found; try /metrics\n"));
	free(r);
	r = answer("HEAD / HTTP/1.1\r\n\r\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 404 ");
	ck_assert_str_eq(strstr(r, "\r\n\r\n"), "\r\n\r\n");
	free(r);
	r = answer("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 405 Method Not Allowed\r\n");
	ck_assert_ptr_nonnull(strstr(r, "\r\nAllow: GET, HEAD\r\n"));
	free(r);
	r = answer("HELLO\r\n\r\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 400 Bad Request\r\n");
	free(r);
	r = answer("GET /metrics SMTP/1.0\r\n\r\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 400 ");
	free(r);
	r = answer("GET  /metrics HTTP/1.1\r\n\r\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 400 ");
	free(r);
	r = answer("GET metrics HTTP/1.1\r\n\r\n", 0, render_ok);
	ck_answer_starts(r, "HTTP/1.1 400 ");
	free(r);
	ck_assert_int_eq(renders, 0); /* none of those renders the metrics */

	r = answer("GET /metrics HTTP/1.1\r\n\r\n", 0, render_fail);
	ck_answer_starts(r, "HTTP/1.1 500 Internal Server Error\r\n");
	free(r);
	ck_assert_int_eq(renders, 1);

	/* Deadline and size verdicts ignore the head. */
	r = answer("GET /metrics HTTP/1.1\r\n", 408, render_ok);
	ck_answer_starts(r, "HTTP/1.1 408 Request Timeout\r\n");
	ck_assert_ptr_nonnull(strstr(r, "\r\nConnection: close\r\n"));
	free(r);
	r = answer("", 431, render_ok);
	ck_answer_starts(r, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
	free(r);
	ck_assert_int_eq(renders, 1);
}
END_TEST

Suite *
http_min_suite(void)
{
	Suite *s = suite_create("http_min");
	TCase *tc = tcase_create("response");

	tcase_add_test(tc, get_metrics);
	tcase_add_test(tc, errors);
	suite_add_tcase(s, tc);
	return s;
}
