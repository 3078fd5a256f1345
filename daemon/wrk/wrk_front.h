/* SPDX-License-Identifier: MIT */
/*
 * wrk_front.h — a worker's connection front (wrk_front.c): the one thread
 * that touches the client socket. It runs TLS (when on) and the HTTP/2 frame
 * guard, and hands grpc plaintext over a socketpair made before lock-down.
 *
 * Life of a connection, as the worker's main thread sees it:
 *   wrk_front_start(fd)           the front owns the client socket now
 *   state WRK_FRONT_WAITING       no byte yet / TLS handshake / preface
 *   state WRK_FRONT_EMPTY         the client sent nothing and left, timed out
 *                                 silent, or was reclaimed before a byte: the
 *                                 socket is closed, the front can take another
 *                                 (wrk_front_start again); grpc never saw it
 *   state WRK_FRONT_OPEN          give wrk_front_grpc_fd() to grpc (once)
 *   state WRK_FRONT_CLOSED        over; wrk_front_reason() says why
 * The main thread may ask for WRK_FRONT_EMPTY early (wrk_front_abort: a
 * reclaim before any byte) and ends a connection with wrk_front_finish(),
 * which forwards what grpc has written (its GOAWAY), sends TLS close_notify
 * and closes the socket. Before it shuts grpc's server down it makes the
 * cut (wrk_front_cut, front/front_h2cut.h): from then on streams the
 * client opens never reach grpc, which would cancel them.
 */
#ifndef PAYMENTD_WRK_FRONT_H
#define PAYMENTD_WRK_FRONT_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "common/config.h"
#include "metrics/metrics.h"
#include "tls/tls_peer.h"

enum wrk_front_state {
	WRK_FRONT_IDLE,
	WRK_FRONT_WAITING,
	WRK_FRONT_EMPTY,
	WRK_FRONT_OPEN,
	WRK_FRONT_CLOSED,
};

struct wrk_front;

/* Before lock-down: the socketpair, the thread. ctx NULL: cleartext. */
struct wrk_front *
wrk_front_new(const struct config *cfg, SSL_CTX *ctx, struct metrics *m, char *err, size_t errlen);
void wrk_front_start(struct wrk_front *f, int client_fd, const char *peer);
enum wrk_front_state wrk_front_state(const struct wrk_front *f);
/* Readable whenever the state changes (one byte per change). */
int wrk_front_event_fd(const struct wrk_front *f);
/* Why the connection ended (or ended empty): a metrics_close value. */
enum metrics_close wrk_front_reason(const struct wrk_front *f);
int wrk_front_grpc_fd(const struct wrk_front *f);
/* Before the first byte: give up the client (reclaimed). */
void wrk_front_abort(struct wrk_front *f);
/* Asks the front (state OPEN) to stop passing new streams on to grpc;
 * returns at once. Once the cut is made, wrk_front_cut_done() returns 1 and
 * sets *passed to the number of streams the client opened that grpc got
 * (every one before the cut); 0 until then. wrk_front_streams_refused():
 * the streams opened after the cut, which the client retries elsewhere. */
void wrk_front_cut(struct wrk_front *f);
int wrk_front_cut_done(const struct wrk_front *f, uint64_t *passed);
uint64_t wrk_front_streams_refused(const struct wrk_front *f);
/* Flush grpc's last frames, close_notify, close; waits at most
 * timeout_ms for that. */
void wrk_front_finish(struct wrk_front *f, int timeout_ms);
/* The client certificate's identity (has_cert 0: none, or cleartext).
 * Valid from WRK_FRONT_OPEN until the next wrk_front_start. */
const struct tls_peer *wrk_front_peer(const struct wrk_front *f);
/* The negotiated TLS session was resumed (1) or not (0); -1 cleartext. */
int wrk_front_resumed(const struct wrk_front *f);

#endif
