/* SPDX-License-Identifier: MIT */
/*
 * wrk_front.c — the worker's connection front (see wrk_front.h).
 *
 * Why a layer in front of grpc at all: grpc_server_add_channel_from_fd
 * accepts insecure credentials only (it builds the transport with no
 * handshaker), and Debian 12's grpc 1.51 has no defence against rapid reset
 * or HPACK bombs. So this thread owns the client socket: it runs OpenSSL on
 * it, feeds every byte the client sends through the frame guard
 * (front/front_h2guard.h: frame headers and HPACK lengths only, never
 * payloads), and copies the plaintext to grpc's end of a socketpair that was
 * made before lock-down (the sandbox allows no socket(2) afterwards).
 * Abuse ends the connection with GOAWAY(ENHANCE_YOUR_CALM), written at a
 * frame boundary of grpc's own output so the client can parse it.
 *
 * Deadlines enforced here, all from the moment the client was taken:
 * HANDSHAKE_TIMEOUT_SECONDS for the first byte, the TLS handshake and the
 * HTTP/2 preface + first SETTINGS together. A client that sends nothing and
 * leaves (or stays silent until that deadline, or is reclaimed) leaves the
 * worker untouched by client input, so it goes back to the pool.
 *
 * The copy costs one read and one write per chunk and direction; chunks are
 * up to BUF_SIZE, so a busy connection moves whole HTTP/2 frames per call.
 */
#include "wrk_front.h"
#include "front/front_h2cut.h"
#include "front/front_h2guard.h"
#include "common/log.h"
#include "common/util.h"
#include "sup/sup_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <openssl/err.h>

#define BUF_SIZE          ((size_t)64 * 1024)
#define FLUSH_BOUNDARY_MS 100

#define CMD_START  'S'
#define CMD_ABORT  'A'
#define CMD_FINISH 'F'
#define CMD_CUT    'C' /* only wakes the pump: cut_req says what to do */

struct wrk_front {
	const struct config *cfg;
	SSL_CTX *ctx;
	struct metrics *m;
	pthread_t th;
	int cmd[2]; /* main -> front */
	int ev[2];  /* front -> main */
	int plain;  /* our end of the socketpair */
	int grpc;   /* grpc's end */
	int client;
	SSL *ssl;
	char peer[SUP_PEER_MAX];
	int state;  /* enum wrk_front_state, atomic */
	int reason; /* enum metrics_close, atomic */
	int resumed;
	struct tls_peer ident; /* written before WRK_FRONT_OPEN, read after */
	int finishing;
	int64_t finish_deadline; /* set by the main thread before CMD_FINISH */
	struct front_h2g guard;
	struct front_h2g_out out_track;
	/* The cut (wrk_front_cut): asked for by the main thread, made by the
	 * pump between two chunks; cut_ready/cut_passed/cut_dropped are what
	 * the main thread reads back (atomics). */
	int cut_req, cutting, cut_ready;
	uint64_t cut_passed, cut_dropped;
	struct front_h2cut cut;
	uint8_t cut_buf[BUF_SIZE];
	uint8_t in[BUF_SIZE + FRONT_H2G_FRAME_HDR]; /* client -> grpc */
	size_t in_len, in_off;
	uint8_t out[BUF_SIZE]; /* grpc -> client */
	size_t out_len, out_off;
};

static void
set_state(struct wrk_front *f, enum wrk_front_state st, enum metrics_close why)
{
	char b = (char)st;

	__atomic_store_n(&f->reason, (int)why, __ATOMIC_RELAXED);
	__atomic_store_n(&f->state, (int)st, __ATOMIC_RELEASE);
	if (write(f->ev[1], &b, 1) < 0) {
		/* The main thread polls the state too; a full pipe is fine. */
	}
}

enum wrk_front_state
wrk_front_state(const struct wrk_front *f)
{
	return (enum wrk_front_state)__atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
}

enum metrics_close
wrk_front_reason(const struct wrk_front *f)
{
	return (enum metrics_close)__atomic_load_n(&f->reason, __ATOMIC_RELAXED);
}

int
wrk_front_event_fd(const struct wrk_front *f)
{
	return f->ev[0];
}

int
wrk_front_grpc_fd(const struct wrk_front *f)
{
	return f->grpc;
}

const struct tls_peer *
wrk_front_peer(const struct wrk_front *f)
{
	return &f->ident;
}

int
wrk_front_resumed(const struct wrk_front *f)
{
	return f->ctx == NULL ? -1 : f->resumed;
}

/* A command from the main thread, if one is waiting (0 if none). */
static char
take_cmd(struct wrk_front *f)
{
	char c = 0;

	if (read(f->cmd[0], &c, 1) != 1)
		return 0;
	return c;
}

static void
send_cmd(struct wrk_front *f, char c)
{
	if (write(f->cmd[1], &c, 1) != 1)
		abort(); /* a pipe of ours, never full: broken invariant */
}

static int
ms_left(int64_t deadline)
{
	int64_t left = deadline - util_now_ms();

	return left <= 0 ? 0 : left > 1000 ? 1000 : (int)left;
}

static void
close_client(struct wrk_front *f, int notify)
{
	if (f->ssl != NULL) {
		if (notify)
			SSL_shutdown(f->ssl); /* close_notify, best effort */
		SSL_free(f->ssl);
		f->ssl = NULL;
	}
	if (f->client >= 0) {
		close(f->client);
		f->client = -1;
	}
	ERR_clear_error();
}

/*
 * Waits for the client's first byte without reading it. 1: bytes are
 * there; 0: the connection ended empty (reason in *why).
 */
static int
first_byte(struct wrk_front *f, int64_t deadline, enum metrics_close *why)
{
	for (;;) {
		struct pollfd p[2] = { { f->client, POLLIN | POLLRDHUP, 0 },
			{ f->cmd[0], POLLIN, 0 } };
		char b;
		ssize_t n;

		if (util_now_ms() >= deadline) {
			*why = METRICS_CLOSE_HANDSHAKE_TIMEOUT;
			return 0;
		}
		if (poll(p, 2, ms_left(deadline)) < 0 && errno != EINTR) {
			*why = METRICS_CLOSE_CLIENT_CLOSED;
			return 0;
		}
		if (p[1].revents && take_cmd(f) == CMD_ABORT) {
			*why = METRICS_CLOSE_RECLAIMED;
			return 0;
		}
		if (!p[0].revents)
			continue;
		n = recv(f->client, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0)
			return 1;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		*why = METRICS_CLOSE_EMPTY;
		return 0;
	}
}

static int
handshake(struct wrk_front *f, int64_t deadline)
{
	int64_t t0 = util_now_ns();

	f->ssl = SSL_new(f->ctx);
	if (f->ssl == NULL || SSL_set_fd(f->ssl, f->client) != 1)
		return -1;
	SSL_set_accept_state(f->ssl);
	for (;;) {
		int r = SSL_do_handshake(f->ssl), e;
		struct pollfd p = { f->client, 0, 0 };

		if (r == 1)
			break;
		e = SSL_get_error(f->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			p.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			p.events = POLLOUT;
		else {
			char buf[256];
			unsigned long le = ERR_peek_last_error();

			ERR_error_string_n(le, buf, sizeof(buf));
			log_info("TLS handshake failed", LF_S("peer", f->peer),
			    LF_S("error", le ? buf : "connection closed"));
			return -1;
		}
		if (util_now_ms() >= deadline)
			return -2;
		if (poll(&p, 1, ms_left(deadline)) < 0 && errno != EINTR)
			return -1;
	}
	f->resumed = SSL_session_reused(f->ssl);
	/* Resumed sessions carry the client certificate in the ticket. */
	if (tls_peer_from_cert(SSL_get0_peer_certificate(f->ssl), &f->ident) < 0)
		memset(&f->ident, 0, sizeof(f->ident));
	metrics_tls_handshake(f->m, f->resumed, (double)(util_now_ns() - t0) / 1e9);
	return 0;
}

/* Reads from the client: >0 bytes, 0 EOF, -1 error, -EAGAIN would block
 * (*want_write: TLS needs the socket writable first). */
static ssize_t
client_read(struct wrk_front *f, uint8_t *buf, size_t len, int *want_write)
{
	*want_write = 0;
	if (f->ssl == NULL) {
		ssize_t n = read(f->client, buf, len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return -EAGAIN;
		return n;
	}
	{
		int r = SSL_read(f->ssl, buf, (int)len), e;

		if (r > 0)
			return r;
		e = SSL_get_error(f->ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			return -EAGAIN;
		if (e == SSL_ERROR_WANT_WRITE) {
			*want_write = 1;
			return -EAGAIN;
		}
		ERR_clear_error();
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
}

static ssize_t
client_write(struct wrk_front *f, const uint8_t *buf, size_t len, int *want_read)
{
	*want_read = 0;
	if (f->ssl == NULL) {
		ssize_t n = send(f->client, buf, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return -EAGAIN;
		return n;
	}
	{
		int r = SSL_write(f->ssl, buf, (int)len), e;

		if (r > 0)
			return r;
		e = SSL_get_error(f->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE)
			return -EAGAIN;
		if (e == SSL_ERROR_WANT_READ) {
			*want_read = 1;
			return -EAGAIN;
		}
		ERR_clear_error();
		return -1;
	}
}

/* Writes grpc's pending output to the client, then up to the next frame
 * boundary (reading more from grpc if the frame is not all here yet), then
 * our GOAWAY. Bounded by FLUSH_BOUNDARY_MS: a client that does not read
 * gets its socket closed without one. */
static void
goaway(struct wrk_front *f, uint32_t code)
{
	int64_t deadline = util_now_ms() + FLUSH_BOUNDARY_MS;
	uint8_t frame[17];
	size_t flen = front_h2g_goaway(frame, front_h2g_last_stream(&f->guard), code), off = 0;
	int wr;

	while (util_now_ms() < deadline) {
		size_t need = front_h2g_out_until_boundary(&f->out_track);
		struct pollfd p = { f->client, POLLOUT, 0 };

		if (need == 0 && front_h2g_out_at_boundary(&f->out_track))
			break;
		if (f->out_off == f->out_len) {
			ssize_t n = read(f->plain, f->out, sizeof(f->out));
			f->out_off = 0;
			f->out_len = n > 0 ? (size_t)n : 0;
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				return; /* grpc gone mid-frame: nothing sane to add */
			if (n < 0) {
				struct pollfd q = { f->plain, POLLIN, 0 };
				poll(&q, 1, 10);
			}
			continue;
		}
		{
			size_t chunk = f->out_len - f->out_off;
			ssize_t n;

			if (need > 0 && chunk > need)
				chunk = need;
			n = client_write(f, f->out + f->out_off, chunk, &wr);
			if (n > 0) {
				front_h2g_out_feed(&f->out_track, f->out + f->out_off, (size_t)n);
				f->out_off += (size_t)n;
			} else if (n == -EAGAIN) {
				poll(&p, 1, 10);
			} else {
				return;
			}
		}
	}
	if (!front_h2g_out_at_boundary(&f->out_track))
		return;
	while (off < flen && util_now_ms() < deadline + FLUSH_BOUNDARY_MS) {
		ssize_t n = client_write(f, frame + off, flen - off, &wr);
		struct pollfd p = { f->client, POLLOUT, 0 };

		if (n > 0)
			off += (size_t)n;
		else if (n == -EAGAIN)
			poll(&p, 1, 10);
		else
			return;
	}
}

/* After our last frame: close_notify and FIN, then wait (discarding
 * input) until the client closes or the finish deadline passes, so a
 * client that was still sending does not get a reset that could destroy
 * the GOAWAY it has not read yet. */
static void
linger(struct wrk_front *f)
{
	uint8_t junk[4096];

	if (f->ssl != NULL) {
		SSL_shutdown(f->ssl);
		ERR_clear_error();
	}
	shutdown(f->client, SHUT_WR);
	while (util_now_ms() < f->finish_deadline) {
		struct pollfd p = { f->client, POLLIN | POLLRDHUP, 0 };
		ssize_t n;

		if (poll(&p, 1, ms_left(f->finish_deadline)) <= 0)
			break;
		n = read(f->client, junk, sizeof(junk));
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
	}
}

/* What the main thread may read of the cut. */
static void
cut_publish(struct wrk_front *f)
{
	struct front_h2cut_stats st;

	front_h2cut_stats(&f->cut, &st);
	__atomic_store_n(&f->cut_dropped, st.streams_dropped, __ATOMIC_RELAXED);
	if (st.settled) {
		__atomic_store_n(&f->cut_passed, st.streams_passed, __ATOMIC_RELAXED);
		__atomic_store_n(&f->cut_ready, 1, __ATOMIC_RELEASE);
	}
}

/* Between two chunks every byte the guard has seen is passed on (or
 * waits in f->in to be written): the cut starts exactly there. */
static void
cut_start(struct wrk_front *f)
{
	front_h2cut_init(&f->cut, &f->guard);
	f->cutting = 1;
	cut_publish(f);
}

/*
 * Copies bytes both ways until one side ends. Returns the close reason.
 */
static enum metrics_close
pump(struct wrk_front *f, int64_t preface_deadline)
{
	/* c_ready/p_ready: the side may have bytes to read. A read that
	 * would block, or a short read of a plain socket (the kernel buffer
	 * was drained), clears it; poll sets it again. Without them every
	 * pass tried both sides, and each call cost several reads that
	 * returned EAGAIN. TLS keeps reading until OpenSSL says it would
	 * block: a record may already sit in its buffer. */
	int client_eof = 0, plain_eof = 0, c_ready = 1, p_ready = 1;

	f->in_len = f->in_off = f->out_len = f->out_off = 0;
	for (;;) {
		struct pollfd p[3];
		int progress = 0, rd_wants_write = 0, wr_wants_read = 0;
		short cev = 0, pev = 0;
		int timeout = 1000;

		if (!f->cutting && __atomic_load_n(&f->cut_req, __ATOMIC_ACQUIRE))
			cut_start(f);
		/* client -> guard -> (cut) -> grpc */
		if (f->in_off == f->in_len && !client_eof && !f->finishing && c_ready) {
			/* After the cut the client's bytes land in cut_buf and
			 * what grpc may see is written from there into in. */
			uint8_t *rb = f->cutting ? f->cut_buf : f->in;
			ssize_t n = client_read(f, rb, BUF_SIZE, &rd_wants_write);

			if (n == -EAGAIN || (n > 0 && f->ssl == NULL && (size_t)n < BUF_SIZE))
				c_ready = 0;
			if (n > 0) {
				enum front_h2g_verdict v = front_h2g_feed(
				    &f->guard, rb, (size_t)n, util_now_ms());

				if (v != FRONT_H2G_OK) {
					metrics_guard_abuse(f->m, (int)v);
					log_warn("HTTP/2 frame guard: closing the connection with "
					         "GOAWAY(ENHANCE_YOUR_CALM)",
					    LF_S("peer", f->peer),
					    LF_S("reason", front_h2g_reason(v)),
					    LF_I("streams",
					        (int64_t)front_h2g_streams_opened(&f->guard)));
					shutdown(f->plain, SHUT_WR); /* grpc sees the client end */
					goaway(f, front_h2g_goaway_code(v));
					/* FIN after the GOAWAY, then discard what the
					 * client still sends for a moment: closing with
					 * unread input would send a reset, and a reset can
					 * destroy the GOAWAY before the client reads it. */
					f->finish_deadline = util_now_ms() + FLUSH_BOUNDARY_MS;
					linger(f);
					return METRICS_CLOSE_GUARD;
				}
				f->in_off = 0;
				f->in_len = (size_t)n;
				if (f->cutting) {
					f->in_len = front_h2cut_apply(
					    &f->cut, f->cut_buf, (size_t)n, f->in);
					cut_publish(f);
				}
				progress = 1;
			} else if (n == 0 || n == -1) {
				client_eof = 1;
				shutdown(f->plain, SHUT_WR);
				progress = 1;
			}
		}
		if (f->in_off < f->in_len) {
			ssize_t n = write(f->plain, f->in + f->in_off, f->in_len - f->in_off);

			if (n > 0) {
				f->in_off += (size_t)n;
				progress = 1;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				return METRICS_CLOSE_CLIENT_CLOSED; /* grpc dropped it */
			}
		}
		/* grpc -> client */
		if (f->out_off == f->out_len && !plain_eof && p_ready) {
			ssize_t n = read(f->plain, f->out, sizeof(f->out));

			if ((n < 0 && errno == EAGAIN) || (n > 0 && (size_t)n < sizeof(f->out)))
				p_ready = 0;
			if (n > 0) {
				f->out_off = 0;
				f->out_len = (size_t)n;
				progress = 1;
			} else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				plain_eof = 1;
				progress = 1;
			}
		}
		if (f->out_off < f->out_len) {
			ssize_t n = client_write(
			    f, f->out + f->out_off, f->out_len - f->out_off, &wr_wants_read);

			if (n > 0) {
				front_h2g_out_feed(&f->out_track, f->out + f->out_off, (size_t)n);
				f->out_off += (size_t)n;
				progress = 1;
			} else if (n == -1) {
				return METRICS_CLOSE_CLIENT_CLOSED;
			}
		}
		if (plain_eof && f->out_off == f->out_len)
			return METRICS_CLOSE_CLIENT_CLOSED; /* grpc closed the transport */
		if (client_eof && f->in_off == f->in_len && f->out_off == f->out_len)
			return METRICS_CLOSE_CLIENT_CLOSED;
		if (f->finishing && f->out_off == f->out_len) {
			/* Drain what grpc still has, briefly, then let the
			 * client read it and close first (linger). */
			struct pollfd q = { f->plain, POLLIN, 0 };
			if (poll(&q, 1, 20) <= 0) {
				linger(f);
				return METRICS_CLOSE_CLIENT_CLOSED;
			}
			p_ready = 1;
			continue;
		}
		if (preface_deadline != 0) {
			if (front_h2g_preface_done(&f->guard)) {
				preface_deadline = 0;
			} else if (util_now_ms() >= preface_deadline) {
				log_info(
				    "no HTTP/2 preface in time; closing", LF_S("peer", f->peer));
				return METRICS_CLOSE_HANDSHAKE_TIMEOUT;
			} else {
				timeout = ms_left(preface_deadline);
			}
		}
		if (progress)
			continue;
		if (f->ssl != NULL && SSL_pending(f->ssl) > 0 && f->in_off == f->in_len) {
			c_ready = 1;
			continue;
		}

		if (f->in_off == f->in_len && !client_eof)
			cev |= rd_wants_write ? POLLOUT : POLLIN;
		if (f->out_off < f->out_len)
			cev |= wr_wants_read ? POLLIN : POLLOUT;
		if (f->in_off < f->in_len)
			pev |= POLLOUT;
		if (f->out_off == f->out_len && !plain_eof)
			pev |= POLLIN;
		p[0].fd = cev ? f->client : -1;
		p[0].events = cev;
		p[1].fd = pev ? f->plain : -1;
		p[1].events = pev;
		p[2].fd = f->cmd[0];
		p[2].events = POLLIN;
		p[0].revents = p[1].revents = p[2].revents = 0;
		if (poll(p, 3, timeout) < 0 && errno != EINTR)
			return METRICS_CLOSE_CLIENT_CLOSED;
		if (p[0].revents)
			c_ready = 1;
		if (p[1].revents)
			p_ready = 1;
		if (p[2].revents) {
			char c = take_cmd(f);
			if (c == CMD_FINISH || c == CMD_ABORT)
				f->finishing = 1;
		}
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL) && !(p[0].revents & POLLIN) &&
		    !client_eof) {
			client_eof = 1;
			shutdown(f->plain, SHUT_WR);
		}
	}
}

static void
serve_one(struct wrk_front *f)
{
	int64_t deadline = util_now_ms() + (int64_t)f->cfg->handshake_timeout_s * 1000;
	struct front_h2g_limits lim;
	enum metrics_close why;
	int r;

	f->resumed = 0;
	memset(&f->ident, 0, sizeof(f->ident));
	f->finishing = 0;
	f->cutting = 0;
	if (!first_byte(f, deadline, &why)) {
		close_client(f, 0);
		set_state(f, WRK_FRONT_EMPTY, why);
		return;
	}
	if (f->ctx != NULL && (r = handshake(f, deadline)) < 0) {
		close_client(f, 0);
		set_state(f, WRK_FRONT_CLOSED,
		    r == -2 ? METRICS_CLOSE_HANDSHAKE_TIMEOUT : METRICS_CLOSE_TLS_ERROR);
		return;
	}
	front_h2g_default_limits(&lim, (uint32_t)f->cfg->max_header_bytes);
	front_h2g_init(&f->guard, &lim);
	front_h2g_out_init(&f->out_track);
	set_state(f, WRK_FRONT_OPEN, METRICS_CLOSE_CLIENT_CLOSED);
	why = pump(f, deadline);
	close_client(f, why != METRICS_CLOSE_GUARD && !f->finishing);
	shutdown(f->plain, SHUT_RDWR);
	set_state(f, WRK_FRONT_CLOSED, why);
}

static void *
front_main(void *arg)
{
	struct wrk_front *f = arg;
	sigset_t all;

	/* Signals are for the main thread (its handlers only set flags). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct pollfd p = { f->cmd[0], POLLIN, 0 };
		char c;

		if (poll(&p, 1, -1) < 0)
			continue;
		c = take_cmd(f);
		if (c == CMD_START && f->client >= 0)
			serve_one(f);
	}
	return NULL;
}

struct wrk_front *
wrk_front_new(const struct config *cfg, SSL_CTX *ctx, struct metrics *m, char *err, size_t errlen)
{
	struct wrk_front *f = xcalloc(1, sizeof(*f));
	int sv[2] = { -1, -1 }, ok = 0;

	f->cfg = cfg;
	f->ctx = ctx;
	f->m = m;
	f->client = -1;
	f->cmd[0] = f->cmd[1] = f->ev[0] = f->ev[1] = -1;
	if (pipe2(f->cmd, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(f->ev, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
		snprintf(err, errlen, "front: pipe/socketpair: %s", strerror(errno));
		goto out;
	}
	f->plain = sv[0];
	f->grpc = sv[1];
	if (pthread_create(&f->th, NULL, front_main, f) != 0) {
		snprintf(err, errlen, "front: pthread_create failed");
		goto out;
	}
	ok = 1;
out:
	if (!ok) {
		if (sv[0] >= 0) {
			close(sv[0]);
			close(sv[1]);
		}
		free(f);
		f = NULL;
	}
	return f;
}

void
wrk_front_start(struct wrk_front *f, int client_fd, const char *peer)
{
	char c;

	while (read(f->ev[0], &c, 1) == 1)
		; /* events of an earlier, empty connection */
	snprintf(f->peer, sizeof(f->peer), "%s", peer);
	f->client = client_fd;
	__atomic_store_n(&f->cut_req, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&f->cut_ready, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&f->cut_dropped, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&f->state, (int)WRK_FRONT_WAITING, __ATOMIC_RELEASE);
	send_cmd(f, CMD_START);
}

void
wrk_front_abort(struct wrk_front *f)
{
	send_cmd(f, CMD_ABORT);
}

void
wrk_front_cut(struct wrk_front *f)
{
	if (__atomic_exchange_n(&f->cut_req, 1, __ATOMIC_ACQ_REL))
		return;
	send_cmd(f, CMD_CUT);
}

int
wrk_front_cut_done(const struct wrk_front *f, uint64_t *passed)
{
	if (!__atomic_load_n(&f->cut_ready, __ATOMIC_ACQUIRE))
		return 0;
	*passed = __atomic_load_n(&f->cut_passed, __ATOMIC_RELAXED);
	return 1;
}

uint64_t
wrk_front_streams_refused(const struct wrk_front *f)
{
	return __atomic_load_n(&f->cut_dropped, __ATOMIC_RELAXED);
}

void
wrk_front_finish(struct wrk_front *f, int timeout_ms)
{
	int64_t deadline = util_now_ms() + timeout_ms;

	f->finish_deadline = deadline;
	if (wrk_front_state(f) == WRK_FRONT_OPEN)
		send_cmd(f, CMD_FINISH);
	while (wrk_front_state(f) == WRK_FRONT_OPEN && util_now_ms() < deadline) {
		struct pollfd p = { f->ev[0], POLLIN, 0 };
		char c;

		poll(&p, 1, ms_left(deadline));
		while (read(f->ev[0], &c, 1) == 1)
			;
	}
}
