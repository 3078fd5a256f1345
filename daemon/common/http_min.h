/* SPDX-License-Identifier: MIT */
/*
 * http_min.h — a minimal HTTP/1.1 responder for /metrics endpoints.
 *
 * Contract (the listening socket comes from util_tcp_listen()):
 * http_serve_one() takes ownership of one
 * accepted, non-blocking connection: it reads the request head, answers
 * GET/HEAD /metrics with what render() hands back (text/plain; version
 * 0.0.4; render returns 0, or -1 for a 500), other paths with 404, other
 * methods with 405, slow or oversized requests with 408/431, then closes.
 * The body stays owned by render's caller. No threads, no allocation.
 */
#ifndef PAYMENTD_HTTP_MIN_H
#define PAYMENTD_HTTP_MIN_H

#include <stddef.h>

typedef int (*http_render_fn)(void *arg, const char **body, size_t *len);

void http_serve_one(int fd, http_render_fn render, void *arg);

#endif
