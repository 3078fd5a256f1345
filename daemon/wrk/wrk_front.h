/* SPDX-License-Identifier: MIT */
/*
 * wrk_front.h — a worker's connection front (wrk_front.c): TLS (when on)
 * and the HTTP/2 frame guard between the client socket and grpc, which gets
 * plaintext over a socketpair made before lock-down.
 *
 * Two threads, one owner at a time. The front's own thread takes the
 * client: it waits for the first byte and runs the TLS handshake, so the
 * main thread stays free to notice a reclaim or SIGTERM. From
 * WRK_FRONT_OPEN on, the main thread alone copies bytes (wrk_front_step),
 * between its grpc polls, in the same loop that runs the calls: a request
 * then costs one wake-up of one thread instead of a hand-off through a
 * second thread each way.
 *
 * Life of a connection, as the worker's main thread sees it:
 *   wrk_front_start(fd)           the front owns the client socket now
 *   state WRK_FRONT_WAITING       no byte yet / TLS handshake / preface
 *   state WRK_FRONT_EMPTY         the client sent nothing and left, timed out
 *                                 silent, or was reclaimed before a byte: the
 *                                 socket is closed, the front can take another
 *                                 (wrk_front_start again); grpc never saw it
 *   state WRK_FRONT_OPEN          give wrk_front_grpc_fd() to grpc (once);
 *                                 from now on call wrk_front_step
 *   state WRK_FRONT_CLOSED        over; wrk_front_reason() says why
 * The main thread may ask for WRK_FRONT_EMPTY early (wrk_front_abort: a
 * reclaim before any byte) and ends a connection with wrk_front_finish(),
 * which forwards what grpc has written (its GOAWAY), sends TLS close_notify
 * and closes the socket.
 *
 * While the main thread is inside a call (a database transaction), client
 * bytes wait in the kernel's socket buffer: grpc could not read them before
 * the call ends either (the main thread is its only poller). The frame
 * guard's rates are token buckets with bursts, so the bunched arrival after
 * a slow call is within what an honest client sends.
 */
#ifndef PAYMENTD_WRK_FRONT_H
#define PAYMENTD_WRK_FRONT_H

#include <poll.h>
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
/* The descriptors wrk_front_step asks to wait on: client, socketpair. */
#define WRK_FRONT_NFDS 2
/* Main thread, state WRK_FRONT_OPEN: one non-blocking pass of the copy
 * both ways. 1: bytes moved (call again); 0: would block: poll p (fd -1:
 * nothing to wait for) for at most *timeout_ms (the preface deadline, or
 * 1000), then hand the result to wrk_front_events; -1: the connection is
 * over (state WRK_FRONT_CLOSED, wrk_front_reason says why). */
int wrk_front_step(struct wrk_front *f, struct pollfd p[WRK_FRONT_NFDS], int *timeout_ms);
void wrk_front_events(struct wrk_front *f, const struct pollfd p[WRK_FRONT_NFDS]);
/* A grpc batch was started: grpc has probably written its end already, so
 * the next step reads ours without waiting for poll to say so (anything
 * grpc writes on its own, e.g. a PING ack, poll reports). */
void wrk_front_grpc_moved(struct wrk_front *f);
/* Flush grpc's last frames, close_notify, close; waits at most
 * timeout_ms for that. */
void wrk_front_finish(struct wrk_front *f, int timeout_ms);
/* The client certificate's identity (has_cert 0: none, or cleartext).
 * Valid from WRK_FRONT_OPEN until the next wrk_front_start. */
const struct tls_peer *wrk_front_peer(const struct wrk_front *f);
/* The negotiated TLS session was resumed (1) or not (0); -1 cleartext. */
int wrk_front_resumed(const struct wrk_front *f);

#endif
