/* SPDX-License-Identifier: MIT */
/*
 * http_min.c — the smallest HTTP/1.1 server that Prometheus can scrape:
 * GET (or HEAD) /metrics, one request per connection, many connections at
 * once from one poll() loop (see http_min.h for the contract).
 *
 * Why a connection table rather than one blocking connection at a time:
 * a caller serving one client until it finishes lets eight idle sockets
 * (each allowed HTTP_MIN_READ_MS) hold a scrape back past Prometheus'
 * 10 s timeout. Here every descriptor is non-blocking and every connection
 * carries its own deadline, so a round never waits for one client. A body
 * is never read: nothing here accepts one.
 */
#include "http_min.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#define DRAIN_MS        200   /* linger after the answer, reading */
#define DRAIN_MAX       65536 /* bytes read while lingering */
#define ACCEPT_PAUSE_MS 100   /* after an accept error such as EMFILE */

enum conn_state {
	C_FREE,
	C_READ,  /* reading the request head */
	C_WRITE, /* sending the response */
	C_DRAIN, /* answered and half-closed: reading what is left */
};

struct conn {
	int fd;
	enum conn_state state;
	int64_t opened_ms;   /* eviction order */
	int64_t deadline_ms; /* of the current state */
	size_t in_len, drained;
	char *out; /* the whole response, malloc'd */
	size_t out_len, out_off;
	char in[HTTP_MIN_REQ_MAX + 1];
};

struct http_min_server {
	int listen_fd;
	http_render_fn render;
	void *arg;
	int64_t accept_paused_until;
	int nopen;
	struct conn c[HTTP_MIN_MAX_CONNS];
};

/* ---- protocol ----------------------------------------------------------- */

static int
build(int status, const char *reason, const char *ctype, const char *extra, const char *body,
    size_t bodylen, int head_only, char **out, size_t *outlen)
{
	char hdr[512];
	size_t hlen;
	int n;

	n = util_fmt(hdr, sizeof(hdr),
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
	    status, reason, ctype, bodylen, extra ? extra : "");
	if (n < 0)
		return -1;
	hlen = strlen(hdr);
	if (head_only)
		bodylen = 0;
	*out = malloc(hlen + bodylen);
	if (*out == NULL)
		return -1;
	memcpy(*out, hdr, hlen);
	if (bodylen > 0)
		memcpy(*out + hlen, body, bodylen);
	*outlen = hlen + bodylen;
	return 0;
}

static int
build_text(int status, const char *reason, const char *extra, const char *msg, int head_only,
    char **out, size_t *outlen)
{
	return build(status, reason, "text/plain; charset=utf-8", extra, msg, strlen(msg),
	    head_only, out, outlen);
}

int
http_min_response(
    char *head, int status, http_render_fn render, void *arg, char **out, size_t *outlen)
{
	char *sp1, *sp2, *q;
	const char *body = NULL;
	size_t len = 0;
	int head_only;

	if (status == 408)
		return build_text(
		    408, "Request Timeout", NULL, "request timeout\n", 0, out, outlen);
	if (status == 431)
		return build_text(431, "Request Header Fields Too Large", NULL,
		    "request too large\n", 0, out, outlen);
	head[strcspn(head, "\r\n")] = '\0';
	sp1 = strchr(head, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (sp1 == NULL || sp2 == NULL || strchr(sp2 + 1, ' ') != NULL ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp1[1] != '/')
		return build_text(400, "Bad Request", NULL, "bad request\n", 0, out, outlen);
	*sp1 = *sp2 = '\0';
	head_only = strcmp(head, "HEAD") == 0; /* headers only, errors too */
	if ((q = strchr(sp1 + 1, '?')) != NULL)
		*q = '\0'; /* Prometheus may add parameters; none are used */
	if (strcmp(sp1 + 1, "/metrics") != 0)
		return build_text(
		    404, "Not Found", NULL, "not found; try /metrics\n", head_only, out, outlen);
	if (strcmp(head, "GET") != 0 && !head_only)
		return build_text(405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
		    "method not allowed\n", 0, out, outlen);
	if (render(arg, &body, &len) < 0)
		return build_text(500, "Internal Server Error", NULL, "metrics unavailable\n",
		    head_only, out, outlen);
	return build(
	    200, "OK", "text/plain; version=0.0.4", NULL, body, len, head_only, out, outlen);
}

/* ---- connections ---------------------------------------------------------- */

struct http_min_server *
http_min_server_new(int listen_fd, http_render_fn render, void *arg)
{
	struct http_min_server *s = calloc(1, sizeof(*s));
	int i;

	if (s == NULL)
		return NULL;
	s->listen_fd = listen_fd;
	s->render = render;
	s->arg = arg;
	for (i = 0; i < HTTP_MIN_MAX_CONNS; i++)
		s->c[i].fd = -1;
	return s;
}

static void
conn_close(struct http_min_server *s, struct conn *c)
{
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
	c->state = C_FREE;
	s->nopen--;
}

void
http_min_server_free(struct http_min_server *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < HTTP_MIN_MAX_CONNS; i++)
		if (s->c[i].state != C_FREE)
			conn_close(s, &s->c[i]);
	free(s);
}

int
http_min_open_connections(const struct http_min_server *s)
{
	return s->nopen;
}

/* Sends what the socket takes now; the answer done, half-closes and
 * lingers: closing with unread input makes the kernel send RST, which can
 * destroy the response in flight. */
static void
conn_write(struct http_min_server *s, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			c->out_off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* POLLOUT next round */
		conn_close(s, c);
		return;
	}
	free(c->out);
	c->out = NULL;
	shutdown(c->fd, SHUT_WR);
	c->state = C_DRAIN;
	c->drained = 0;
	c->deadline_ms = util_now_ms() + DRAIN_MS;
}

/* The head is complete (status 0) or has failed (408, 431): answer. */
static void
conn_answer(struct http_min_server *s, struct conn *c, int status)
{
	c->in[c->in_len] = '\0';
	if (http_min_response(c->in, status, s->render, s->arg, &c->out, &c->out_len) < 0) {
		conn_close(s, c); /* out of memory: nothing sensible to say */
		return;
	}
	c->out_off = 0;
	c->state = C_WRITE;
	c->deadline_ms = util_now_ms() + HTTP_MIN_WRITE_MS;
	conn_write(s, c);
}

static int
head_complete(const char *p, size_t n)
{
	return memmem(p, n, "\r\n\r\n", 4) != NULL || memmem(p, n, "\n\n", 2) != NULL;
}

static void
conn_read(struct http_min_server *s, struct conn *c)
{
	for (;;) {
		ssize_t r;

		if (c->in_len >= HTTP_MIN_REQ_MAX) {
			conn_answer(s, c, 431);
			return;
		}
		r = recv(c->fd, c->in + c->in_len, HTTP_MIN_REQ_MAX - c->in_len, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) { /* gone (or reset) before asking anything */
			conn_close(s, c);
			return;
		}
		/* Only the new bytes and the three before them can complete
		 * the blank line: a trickling client costs O(n), not O(n^2). */
		{
			size_t from = c->in_len > 3 ? c->in_len - 3 : 0;

			c->in_len += (size_t)r;
			if (head_complete(c->in + from, c->in_len - from)) {
				conn_answer(s, c, 0);
				return;
			}
		}
	}
}

static void
conn_drain(struct http_min_server *s, struct conn *c)
{
	char sink[4096];

	for (;;) {
		ssize_t r = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0 || (c->drained += (size_t)r) > DRAIN_MAX) {
			conn_close(s, c);
			return;
		}
	}
}

/*
 * A free slot, making one if the table is full: the oldest connection
 * lingering after its answer, else the oldest still being read (an idle
 * or trickling client: the newcomer is likelier to be a real scrape). A
 * response being written is never cut. NULL: every slot is writing.
 */
static struct conn *
slot_for_new(struct http_min_server *s)
{
	struct conn *lingering = NULL, *reading = NULL;
	int i;

	for (i = 0; i < HTTP_MIN_MAX_CONNS; i++) {
		struct conn *c = &s->c[i];

		if (c->state == C_FREE)
			return c;
		if (c->state == C_DRAIN &&
		    (lingering == NULL || c->opened_ms < lingering->opened_ms))
			lingering = c;
		if (c->state == C_READ && (reading == NULL || c->opened_ms < reading->opened_ms))
			reading = c;
	}
	if (lingering == NULL)
		lingering = reading;
	if (lingering != NULL)
		conn_close(s, lingering);
	return lingering;
}

static void
accept_ready(struct http_min_server *s, int64_t now)
{
	int i;

	/* Bounded per round, so a flood of connects cannot starve the
	 * connections already open. */
	for (i = 0; i < HTTP_MIN_MAX_CONNS; i++) {
		struct conn *c;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				s->accept_paused_until = now + ACCEPT_PAUSE_MS; /* EMFILE */
			return;
		}
		c = slot_for_new(s);
		if (c == NULL) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct conn, in));
		c->fd = fd;
		c->state = C_READ;
		c->opened_ms = now;
		c->deadline_ms = now + HTTP_MIN_READ_MS;
		s->nopen++;
		conn_read(s, c); /* a scrape's head usually came with the connect */
	}
}

/* Deadlines that passed: a late head gets its 408, a stuck write or a
 * linger that ran out is closed. */
static void
expire(struct http_min_server *s, int64_t now)
{
	int i;

	for (i = 0; i < HTTP_MIN_MAX_CONNS; i++) {
		struct conn *c = &s->c[i];

		if (c->state == C_FREE || c->deadline_ms > now)
			continue;
		if (c->state == C_READ)
			conn_answer(s, c, 408);
		else
			conn_close(s, c);
	}
}

/* poll()'s timeout for waking at next (INT64_MAX: never). */
static int
wait_ms(int64_t now, int64_t next)
{
	if (next == INT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > INT32_MAX ? INT32_MAX : (int)(next - now);
}

int
http_min_serve(struct http_min_server *s, int max_wait_ms)
{
	struct pollfd p[HTTP_MIN_MAX_CONNS + 1];
	int idx[HTTP_MIN_MAX_CONNS + 1];
	int64_t now = util_now_ms(), next = max_wait_ms < 0 ? INT64_MAX : now + max_wait_ms;
	int n = 0, i, listening;

	expire(s, now);
	listening = now >= s->accept_paused_until;
	if (listening) {
		p[n] = (struct pollfd){ s->listen_fd, POLLIN, 0 };
		idx[n++] = -1;
	} else if (s->accept_paused_until < next) {
		next = s->accept_paused_until;
	}
	for (i = 0; i < HTTP_MIN_MAX_CONNS; i++) {
		struct conn *c = &s->c[i];

		if (c->state == C_FREE)
			continue;
		p[n] = (struct pollfd){ c->fd, c->state == C_WRITE ? POLLOUT : POLLIN, 0 };
		idx[n++] = i;
		if (c->deadline_ms < next)
			next = c->deadline_ms;
	}
	if (poll(p, (nfds_t)n, wait_ms(now, next)) < 0)
		return -1;
	now = util_now_ms();
	for (i = 0; i < n; i++) {
		struct conn *c;

		if (p[i].revents == 0)
			continue;
		if (idx[i] < 0)
			continue; /* accepted last, below */
		c = &s->c[idx[i]];
		/* POLLHUP/POLLERR: the read or write below sees why. */
		switch (c->state) {
		case C_READ: conn_read(s, c); break;
		case C_WRITE: conn_write(s, c); break;
		case C_DRAIN: conn_drain(s, c); break;
		case C_FREE: break;
		}
	}
	if (listening && p[0].revents != 0)
		accept_ready(s, now);
	return 0;
}
