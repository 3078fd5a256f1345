/* SPDX-License-Identifier: MIT */
/*
 * http_min.c — the smallest HTTP/1.1 server that Prometheus can scrape:
 * GET (or HEAD) /metrics, one request per connection, shared by paymentd's
 * metrics exporter and the relay (see http_min.h for the contract).
 *
 * Every request is bounded in size (REQ_MAX) and in time (IO_TIMEOUT_MS to
 * read the head, WRITE_TIMEOUT_MS to send), so a slow or hostile client
 * cannot hold a single-threaded caller for long; a body is never read.
 */
#include "http_min.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#define REQ_MAX          8192
#define IO_TIMEOUT_MS    2000
#define WRITE_TIMEOUT_MS 5000
#define DRAIN_MS         200

static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd p = { fd, events, 0 };
		int64_t left = deadline_ms - util_now_ms();
		int n;

		if (left <= 0)
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

	if (util_fmt(hdr, sizeof(hdr),
	        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
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
respond_text(
    int fd, int status, const char *reason, const char *extra, const char *msg, int head_only)
{
	respond(
	    fd, status, reason, "text/plain; charset=utf-8", extra, msg, strlen(msg), head_only);
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
			if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
			    wait_fd(fd, POLLIN, deadline_ms) == 0)
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

void
http_serve_one(int fd, http_render_fn render, void *arg)
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
		respond_text(
		    fd, 431, "Request Header Fields Too Large", NULL, "request too large\n", 0);
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
	head_only = strcmp(req, "HEAD") == 0; /* headers only, errors too */
	if ((q = strchr(sp1 + 1, '?')) != NULL)
		*q = '\0'; /* Prometheus may add parameters; none are used */
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
		const char *body = NULL;
		size_t len = 0;

		if (render(arg, &body, &len) < 0) {
			respond_text(fd, 500, "Internal Server Error", NULL,
			    "metrics unavailable\n", head_only);
			goto out;
		}
		respond(fd, 200, "OK", "text/plain; version=0.0.4", NULL, body, len, head_only);
	}
out:
	linger_close(fd);
}
