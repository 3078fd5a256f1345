/* SPDX-License-Identifier: MIT */
/*
 * front_h2guard.h — the HTTP/2 frame guard of a worker's front thread: a
 * pure, allocation-free parser of what a client sends (after TLS) that
 * spots the attacks grpc C core 1.51 has no defence against, before the
 * bytes reach grpc, and a tiny tracker of what grpc sends back so the front
 * can put a GOAWAY of its own between two of grpc's frames.
 *
 * Contract (inbound, client -> server):
 *   - front_h2g_feed() takes the client's bytes in order, split anyhow: one
 *     call with everything or one call per byte give the same verdict at the
 *     same byte (the parser is a byte-exact state machine; only now_ms,
 *     which feeds the token buckets, is taken per call).
 *   - It reads the 24-byte preface, every 9-byte frame header, the pad
 *     length byte of PADDED HEADERS/DATA and, inside header blocks, the
 *     HPACK representation prefixes and string length prefixes (RFC 7541).
 *     Every other byte (DATA, string contents, padding, control payloads)
 *     is skipped by length, never copied, never retained.
 *   - The first violation is returned and is sticky: every later call
 *     returns it again without looking at the bytes. The caller then stops
 *     forwarding, sends front_h2g_goaway() (code front_h2g_goaway_code()) at
 *     an outbound frame boundary and closes.
 *   - struct front_h2g is fixed-size: O(1) memory per connection, no malloc.
 * What it does not do: decode headers (Huffman or table lookups), track the
 * HPACK dynamic table or flow-control windows, or check SETTINGS values;
 * grpc does all of that, and none of it makes grpc buffer without bound.
 *
 * Outbound (server -> client): front_h2g_out_* only follows grpc's frame
 * lengths; grpc's first bytes are its SETTINGS frame (no preface that way).
 */
#ifndef PAYMENTD_FRONT_H2GUARD_H
#define PAYMENTD_FRONT_H2GUARD_H

#include <stddef.h>
#include <stdint.h>

/* HTTP/2 error codes the front puts in its GOAWAY (RFC 9113 section 7). */
#define FRONT_H2_PROTOCOL_ERROR    0x1
#define FRONT_H2_COMPRESSION_ERROR 0x9
#define FRONT_H2_ENHANCE_YOUR_CALM 0xb

#define FRONT_H2G_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define FRONT_H2G_PREFACE_LEN 24
#define FRONT_H2G_FRAME_HDR   9
#define FRONT_H2G_GOAWAY_LEN  17

/* ---- default limits (front_h2g_default_limits) ------------------------
 * Rates are per connection. A rate is "per_sec" tokens a second into a
 * bucket holding at most "burst"; each counted frame takes one token and a
 * frame finding the bucket empty is the violation. Every bucket starts
 * full. The numbers leave legitimate gRPC clients (C core, grpc-go, Java)
 * one to two orders of magnitude of headroom, while the attacks they stop
 * need 10^4..10^5 frames a second to hurt.
 *
 * The SETTINGS_MAX_FRAME_SIZE every HTTP/2 peer must accept, and what grpc
 * advertises unless GRPC_ARG_HTTP2_MAX_FRAME_SIZE says otherwise. It caps
 * every frame but DATA (grpc's BDP-driven flow control may raise the size
 * it advertises, which clients then use for DATA) and HEADERS/CONTINUATION
 * (bounded by max_header_bytes, plus at most 255 padding + 6 bytes). */
#define FRONT_H2G_MAX_FRAME_SIZE 16384
/* A header block of max_header_bytes needs 1..2 frames from every real
 * encoder; 64 still allows one that splits it into 256-byte pieces, and
 * stops a stream of empty CONTINUATIONs (CVE-2024-27316 style) at once. */
#define FRONT_H2G_MAX_CONTINUATIONS 64
/* Streams the client opened with HEADERS and then reset (CVE-2023-44487,
 * "rapid reset"): each costs grpc a call it sets up and tears down. A
 * client cancels an RPC only on a deadline or a user abort; 100 a second
 * on one connection is far past what a payment client does, and the attack
 * ran at 10^5 a second. */
#define FRONT_H2G_RAPID_RESET_RATE  100
#define FRONT_H2G_RAPID_RESET_BURST 200
/* Every RST_STREAM, including repeats on streams already reset or long
 * gone (which the rapid-reset bucket does not see): same budget. */
#define FRONT_H2G_RST_RATE  100
#define FRONT_H2G_RST_BURST 200
/* Non-ACK PING (CVE-2019-9512: each one makes the server queue an ACK).
 * C core clients ping at most a few times a second, but grpc-go's BDP
 * estimator sends one PING per round trip while response DATA keeps
 * arriving, so a busy grpc-go connection can ping tens of times a second;
 * 100/s costs grpc 1.7 KB/s of ACKs at worst. ACKs are not counted: they
 * answer our (grpc's) own pings and make the server queue nothing. */
#define FRONT_H2G_PING_RATE  100
#define FRONT_H2G_PING_BURST 200
/* Non-ACK SETTINGS (CVE-2019-9515: each one makes the server queue an
 * ACK and re-apply settings): one at start plus grpc-go's window updates
 * as its BDP estimate doubles (at most ~9 of them). ACKs not counted. */
#define FRONT_H2G_SETTINGS_RATE  10
#define FRONT_H2G_SETTINGS_BURST 20
/* WINDOW_UPDATE: grpc-go sends one per stream and one for the connection
 * each time a quarter of a window has been read, so a connection with many
 * small RPCs sends several per RPC: be generous. */
#define FRONT_H2G_WINDOW_UPDATE_RATE  1000
#define FRONT_H2G_WINDOW_UPDATE_BURST 2000
/* Both of the above also earn tokens with every stream the client opens:
 * a client's PINGs (grpc-go's BDP probes, grpc core's keepalives) and
 * WINDOW_UPDATEs follow the responses it reads, so a connection carrying
 * thousands of RPCs a second sends thousands of each (measured: ghz and
 * paymentd-goclient on one connection were cut at 100 PINGs/s and 1000
 * WINDOW_UPDATEs/s before this). A flood without streams still meets the
 * time-based budget; streams themselves are bounded by the rapid-reset
 * bucket and by grpc's MAX_CONCURRENT_STREAMS. */
#define FRONT_H2G_PING_PER_STREAM          2
#define FRONT_H2G_WINDOW_UPDATE_PER_STREAM 8
/* PRIORITY (CVE-2019-9513, priority tree churn): gRPC clients send none;
 * browsers' HTTP/2 stacks a few per stream. */
#define FRONT_H2G_PRIORITY_RATE  100
#define FRONT_H2G_PRIORITY_BURST 200
/* DATA with no payload and no END_STREAM (CVE-2019-9518, empty frames):
 * useless to a real client (a half-close carries END_STREAM). */
#define FRONT_H2G_EMPTY_DATA_RATE  100
#define FRONT_H2G_EMPTY_DATA_BURST 200
/* Frames of types grpc 1.51 does not know (ALTSVC, ORIGIN,
 * PRIORITY_UPDATE, ...): must be ignored by the receiver, hence free to
 * flood with; gRPC clients send none. */
#define FRONT_H2G_UNKNOWN_RATE  100
#define FRONT_H2G_UNKNOWN_BURST 200

/* The verdicts; front_h2g_reason() gives each a fixed snake_case label
 * (the metrics code keeps one counter per verdict, FRONT_H2G_NVERDICTS):
 *   ok                     no violation so far
 *   bad_preface            the first 24 bytes are not the HTTP/2 preface
 *   protocol               malformed framing: first frame not SETTINGS,
 *                          CONTINUATION outside a header block or another
 *                          frame inside one, a bad length (PING != 8,
 *                          RST_STREAM / WINDOW_UPDATE != 4, PRIORITY != 5,
 *                          SETTINGS % 6, ACK with payload, padding longer
 *                          than the frame, over max_frame_size), a bad
 *                          stream id (0 where one is needed, not 0 where
 *                          none is, even, or a frame on a stream the client
 *                          never opened), PUSH_PROMISE from a client
 *   header_too_large       a header block's fragments exceed max_header_bytes
 *   hpack_literal_too_large a string literal declares > max_header_bytes
 *   hpack_malformed        an HPACK integer over 2^32-1 or with more than 5
 *                          continuation bytes, or a block ending inside a
 *                          representation
 *   rapid_reset            too many streams opened then reset by the client
 *   rst_flood, ping_flood, settings_flood, window_update_flood,
 *   priority_flood, empty_data_flood, unknown_frame_flood
 *                          the bucket of that frame kind ran dry
 *   continuation_flood     more than max_continuations in one header block */
enum front_h2g_verdict {
	FRONT_H2G_OK = 0,
	FRONT_H2G_BAD_PREFACE,
	FRONT_H2G_PROTOCOL,
	FRONT_H2G_HEADER_TOO_LARGE,
	FRONT_H2G_HPACK_LITERAL_TOO_LARGE,
	FRONT_H2G_HPACK_MALFORMED,
	FRONT_H2G_RAPID_RESET,
	FRONT_H2G_RST_FLOOD,
	FRONT_H2G_PING_FLOOD,
	FRONT_H2G_SETTINGS_FLOOD,
	FRONT_H2G_WINDOW_UPDATE_FLOOD,
	FRONT_H2G_PRIORITY_FLOOD,
	FRONT_H2G_EMPTY_DATA_FLOOD,
	FRONT_H2G_UNKNOWN_FLOOD,
	FRONT_H2G_CONTINUATION_FLOOD,
	FRONT_H2G_NVERDICTS
};

/* A token bucket's parameters; burst 0 turns the bucket off (unlimited). */
struct front_h2g_rate {
	uint32_t per_sec;
	uint32_t burst;
};

struct front_h2g_limits {
	/* Cap on a header block's total fragment bytes (HEADERS + CONTINUATION
	 * up to END_HEADERS, without padding and priority fields) and on any
	 * HPACK string literal's declared length. Config MAX_HEADER_BYTES. */
	uint32_t max_header_bytes;
	uint32_t max_frame_size;    /* FRONT_H2G_MAX_FRAME_SIZE */
	uint32_t max_continuations; /* per header block */
	struct front_h2g_rate rapid_reset;
	struct front_h2g_rate rst_stream;
	struct front_h2g_rate ping;
	struct front_h2g_rate settings;
	struct front_h2g_rate window_update;
	struct front_h2g_rate priority;
	struct front_h2g_rate empty_data;
	struct front_h2g_rate unknown;
};

/* Private state of a token bucket: thousandths of a token. */
struct front_h2g_bucket {
	uint64_t milli;
	int64_t last_ms;
};

/* One connection's inbound guard. The fields are private (the struct is
 * public only so that it can live inside the caller's connection state). */
struct front_h2g {
	struct front_h2g_limits lim;
	enum front_h2g_verdict verdict;
	uint64_t offset; /* bytes consumed */
	uint64_t streams_opened;
	uint32_t last_stream;
	/* bit i: stream last_stream - 2i was opened by HEADERS and not reset */
	uint64_t recent_open;
	/* framing */
	uint8_t state; /* preface, frame header, payload phases */
	uint8_t hdr_have;
	uint8_t hdr[FRONT_H2G_FRAME_HDR];
	uint8_t type;
	uint8_t flags;
	uint8_t pad_len;
	uint8_t first_frame_seen;
	uint8_t preface_done;
	uint32_t preface_have;
	uint32_t stream;
	uint32_t frame_left; /* payload bytes of this frame not consumed yet */
	uint32_t phase_left; /* bytes left in the current payload phase */
	uint32_t frag_len;   /* header block fragment bytes of this frame */
	/* header block */
	uint8_t in_block;
	uint32_t block_stream;
	uint32_t block_bytes;
	uint32_t block_frames; /* CONTINUATIONs so far */
	/* HPACK walker */
	uint8_t hp_state;
	uint8_t hp_kind;    /* representation being read */
	uint8_t hp_strings; /* string literals still to read in it */
	uint8_t hp_int_len; /* continuation bytes of the integer so far */
	uint8_t hp_int_is_len;
	uint64_t hp_int;
	uint32_t hp_skip; /* string bytes still to skip */
	/* buckets, in the order of the rates in struct front_h2g_limits */
	struct front_h2g_bucket b_rapid_reset, b_rst, b_ping, b_settings, b_window_update,
	    b_priority, b_empty_data, b_unknown;
};

/* Outbound (grpc -> client) frame boundary tracker. Private fields. */
struct front_h2g_out {
	uint8_t hdr_have;
	uint8_t hdr[FRONT_H2G_FRAME_HDR];
	uint32_t payload_left;
	uint64_t frames;
	uint64_t rst_streams;
};

/* Fills lim with the defaults above and max_header_bytes. */
void front_h2g_default_limits(struct front_h2g_limits *lim, uint32_t max_header_bytes);

/* The verdict's fixed label ("rapid_reset", ...); "unknown" outside the enum. */
const char *front_h2g_reason(enum front_h2g_verdict v);

/* The GOAWAY error code for a verdict: PROTOCOL_ERROR for bad_preface and
 * protocol, COMPRESSION_ERROR for hpack_malformed, ENHANCE_YOUR_CALM for
 * every limit; 0 (NO_ERROR) for ok. */
uint32_t front_h2g_goaway_code(enum front_h2g_verdict v);

/* Starts a connection's guard with a copy of *lim. */
void front_h2g_init(struct front_h2g *g, const struct front_h2g_limits *lim);

/* Feeds the next n bytes the client sent; now_ms is a monotonic clock in
 * ms (it may stand still, it should not go back: if it does, buckets just
 * do not refill). Returns the first violation so far (sticky) or OK. */
enum front_h2g_verdict
front_h2g_feed(struct front_h2g *g, const uint8_t *p, size_t n, int64_t now_ms);

/* The current verdict (as the last feed returned). */
enum front_h2g_verdict front_h2g_verdict(const struct front_h2g *g);

/* Bytes consumed: everything fed while OK; after a violation, up to and
 * including the byte that completed it (the rest was not looked at). */
uint64_t front_h2g_offset(const struct front_h2g *g);

/* 1 once the preface and the client's first SETTINGS frame (its whole
 * payload) have been seen, else 0. */
int front_h2g_preface_done(const struct front_h2g *g);

/* Highest client stream id seen in a HEADERS frame (0: none), for the
 * last-stream-id of GOAWAY. */
uint32_t front_h2g_last_stream(const struct front_h2g *g);

/* Streams the client opened (HEADERS on a new stream id). */
uint64_t front_h2g_streams_opened(const struct front_h2g *g);

/* Where the parser stands, for a filter that starts at this byte
 * (front_h2cut): preface bytes still to come; or the frame header bytes
 * read so far (hdr_have 1..8, copied to hdr); or the payload bytes of the
 * current frame still to come (0 at a frame boundary). */
struct front_h2g_pos {
	uint32_t preface_left;
	uint32_t payload_left;
	uint8_t hdr_have;
	uint8_t hdr[FRONT_H2G_FRAME_HDR];
};
void front_h2g_position(const struct front_h2g *g, struct front_h2g_pos *pos);

void front_h2g_out_init(struct front_h2g_out *o);
/* Follows the next n bytes grpc sent (any split). */
void front_h2g_out_feed(struct front_h2g_out *o, const uint8_t *p, size_t n);
/* 1 if the bytes fed so far end exactly at a frame boundary, else 0. */
int front_h2g_out_at_boundary(const struct front_h2g_out *o);
/* Bytes still to forward to reach the next boundary: 0 at one; the rest of
 * the payload inside a frame; inside a 9-byte header (length not known yet)
 * the rest of the header: forward those, feed them and ask again. */
size_t front_h2g_out_until_boundary(const struct front_h2g_out *o);
/* Frames grpc completed the header of, and how many were RST_STREAM (a
 * server resetting streams at a client's request is the "MadeYouReset"
 * variant of rapid reset; the front may rate-limit on it). */
uint64_t front_h2g_out_frames(const struct front_h2g_out *o);
uint64_t front_h2g_out_rst_streams(const struct front_h2g_out *o);

/* Writes a GOAWAY frame (stream 0, no debug data) into out; returns 17. */
size_t
front_h2g_goaway(uint8_t out[FRONT_H2G_GOAWAY_LEN], uint32_t last_stream_id, uint32_t error_code);

#endif
