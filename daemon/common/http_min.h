/* SPDX-License-Identifier: MIT */
/*
 * http_min.h — a minimal HTTP/1.1 server for /metrics endpoints, shared by
 * paymentd's metrics exporter and payment-relay.
 *
 * Contract: http_min_server_new() takes a non-blocking listening socket
 * (util_tcp_listen()) and a render callback; each http_min_serve() call is
 * one round of a single poll() over that socket and every open connection,
 * so any number of idle or trickling clients never delay another scrape:
 * each connection has its own deadlines (HTTP_MIN_READ_MS to deliver a
 * complete request head, HTTP_MIN_WRITE_MS to take the response) and all
 * I/O is non-blocking. At most HTTP_MIN_MAX_CONNS connections are open; a
 * new one beyond that displaces the oldest that has not been answered yet
 * (or one lingering after its answer). GET/HEAD /metrics gets what
 * render() hands back (text/plain; version=0.0.4; render returns 0, or -1
 * for a 500), other paths 404, other methods 405, a late or oversized
 * head 408/431; one request per connection (Connection: close). render()
 * runs in the caller's thread, inside http_min_serve(); the body stays
 * owned by the callback (it is copied before the next render). An accept
 * that fails (EMFILE: keep RLIMIT_NOFILE above HTTP_MIN_MAX_CONNS plus the
 * caller's own descriptors) pauses the listening socket for 100 ms rather
 * than spinning.
 *
 * http_min_response() is the protocol part alone (no I/O), for tests.
 */
#ifndef PAYMENTD_HTTP_MIN_H
#define PAYMENTD_HTTP_MIN_H

#include <stddef.h>

#define HTTP_MIN_MAX_CONNS 64
#define HTTP_MIN_REQ_MAX   8192 /* request head bound (431 beyond) */
#define HTTP_MIN_READ_MS   2000 /* accept to complete head (408 after) */
#define HTTP_MIN_WRITE_MS  5000 /* to send the whole response */

typedef int (*http_render_fn)(void *arg, const char **body, size_t *len);

struct http_min_server;

/* NULL with errno on allocation failure. The listening socket stays the
 * caller's (http_min_server_free() does not close it). */
struct http_min_server *http_min_server_new(int listen_fd, http_render_fn render, void *arg);
/* Closes every open connection and frees the server; NULL is a no-op. */
void http_min_server_free(struct http_min_server *s);

/*
 * One round: waits at most max_wait_ms (-1: until something happens) for
 * the listening socket, a connection or the next deadline, then does all
 * the work that is ready. Returns 0, or -1 with errno when poll() failed
 * (EINTR: a signal interrupted the wait; the caller checks its flags and
 * calls again).
 */
int http_min_serve(struct http_min_server *s, int max_wait_ms);

/* Connections open right now (for tests and logs). */
int http_min_open_connections(const struct http_min_server *s);

/*
 * The whole response to one request head (head: NUL-terminated, modified
 * in place), or to an error status when status != 0 (408, 431: the head
 * is then ignored). *out is malloc'd (the caller frees it). 0, or -1
 * (out of memory).
 */
int http_min_response(
    char *head, int status, http_render_fn render, void *arg, char **out, size_t *outlen);

#endif
