/* SPDX-License-Identifier: MIT */
/*
 * front_h2cut.h — the cut a worker's front makes in what a client sends
 * when the connection is about to end: from the cut on, frames of streams
 * the client opens later are dropped before they reach grpc.
 *
 * Why: grpc core cancels a stream that reaches it after the server's
 * shutdown began (status CANCELLED, which clients do not retry), and a
 * multiplexing client keeps opening streams until it reads the GOAWAY. With
 * the cut made first, grpc never hears of those streams; its final GOAWAY
 * names the last stream it did get, and the client retries the rest on a
 * new connection (streams above a GOAWAY's last-stream-id were not
 * processed, RFC 9113 6.8).
 *
 * Contract:
 *   - front_h2cut_init() starts at the byte where the guard (which has seen
 *     every byte passed on so far) stands; the streams the guard has seen
 *     open are "passed". A frame whose header was partly passed already is
 *     passed whole, and if it opens a stream that stream is passed too.
 *   - front_h2cut_apply() takes the client's next bytes, in order, split
 *     anyhow (the result does not depend on the split), and writes what
 *     grpc may see: every frame on stream 0 (SETTINGS, PING, connection
 *     WINDOW_UPDATE, GOAWAY) and every frame of a passed stream; a frame of
 *     a later stream (HEADERS, CONTINUATION, DATA, RST_STREAM,
 *     WINDOW_UPDATE, PRIORITY, anything) is dropped whole.
 *   - It checks nothing: the guard still sees every byte first.
 * Dropped HEADERS change the client's HPACK table, which grpc's decoder then
 * lacks; only a header block of a passed stream sent after the cut (gRPC
 * clients send none: no trailers) would decode wrongly, and grpc would end
 * the connection with COMPRESSION_ERROR, which clients see as UNAVAILABLE.
 */
#ifndef PAYMENTD_FRONT_H2CUT_H
#define PAYMENTD_FRONT_H2CUT_H

#include <stddef.h>
#include <stdint.h>

#include "front/front_h2guard.h"

/* Private fields (public only to live inside the front's state). */
struct front_h2cut {
	uint32_t last_passed; /* highest client stream grpc may see */
	uint32_t last_dropped;
	uint32_t preface_left;
	uint32_t payload_left;
	uint8_t hdr[FRONT_H2G_FRAME_HDR];
	uint8_t hdr_have;
	uint8_t hdr_sent; /* header bytes passed on before the cut */
	uint8_t drop;     /* the current frame's payload is dropped */
	uint64_t streams_passed;
	uint64_t streams_dropped;
	uint64_t frames_dropped;
};

void front_h2cut_init(struct front_h2cut *c, const struct front_h2g *g);

/* Filters in[0..n) into out, which has room for n + FRONT_H2G_FRAME_HDR
 * bytes (header bytes held from an earlier call come out first); returns
 * the bytes written. */
size_t front_h2cut_apply(struct front_h2cut *c, const uint8_t *in, size_t n, uint8_t *out);

/* What the cut did so far. settled is 0 while a frame header partly passed
 * before the cut is not complete (it may still open a stream), 1 once
 * streams_passed is final. streams_passed: streams the client opened that
 * grpc sees (every one before the cut) up to last_passed; streams_dropped,
 * frames_dropped: the streams opened after the cut and their frames. */
struct front_h2cut_stats {
	int settled;
	uint32_t last_passed;
	uint64_t streams_passed;
	uint64_t streams_dropped;
	uint64_t frames_dropped;
};
void front_h2cut_stats(const struct front_h2cut *c, struct front_h2cut_stats *st);

#endif
