/* SPDX-License-Identifier: MIT */
/*
 * front_h2guard.c — the HTTP/2 frame guard (contract in front_h2guard.h):
 * a byte-at-a-time state machine over the client's preface, frame headers
 * and HPACK prefixes, token buckets per frame kind, and the outbound frame
 * boundary tracker. No I/O, no allocation, no copy of payload bytes.
 */
#include "front/front_h2guard.h"

#include <stdlib.h>
#include <string.h>

/* Frame types and flags (RFC 9113 section 6). */
#define T_DATA          0x0
#define T_HEADERS       0x1
#define T_PRIORITY      0x2
#define T_RST_STREAM    0x3
#define T_SETTINGS      0x4
#define T_PUSH_PROMISE  0x5
#define T_PING          0x6
#define T_GOAWAY        0x7
#define T_WINDOW_UPDATE 0x8
#define T_CONTINUATION  0x9
#define F_ACK           0x1
#define F_END_STREAM    0x1
#define F_END_HEADERS   0x4
#define F_PADDED        0x8
#define F_PRIORITY      0x20

/* Framing states: the preface, a frame header, then the payload phases of
 * a frame in this order (each may be absent): the pad length byte, the 5
 * priority bytes of HEADERS, the header block fragment (walked by HPACK),
 * bytes skipped unread (padding, DATA, control payloads). */
enum { S_PREFACE = 0, S_HDR, S_PADLEN, S_PRIO, S_FRAG, S_SKIP };

/* HPACK walker states: at a representation's first byte, inside a
 * multi-byte integer, at a string's length byte, skipping a string. */
enum { HP_REP = 0, HP_INT, HP_STRLEN, HP_SKIP };
/* Representation kinds (RFC 7541 section 6). */
enum { K_INDEXED = 0, K_LITERAL, K_SIZE_UPDATE };

/* RFC 7541 5.1 sets no bound; 5 continuation bytes carry 35 bits, more
 * than any value that fits the uint32_t every limit here is. */
#define HPACK_INT_MAX_CONT 5

static const char *const reasons[FRONT_H2G_NVERDICTS] = {
	[FRONT_H2G_OK] = "ok",
	[FRONT_H2G_BAD_PREFACE] = "bad_preface",
	[FRONT_H2G_PROTOCOL] = "protocol",
	[FRONT_H2G_HEADER_TOO_LARGE] = "header_too_large",
	[FRONT_H2G_HPACK_LITERAL_TOO_LARGE] = "hpack_literal_too_large",
	[FRONT_H2G_HPACK_MALFORMED] = "hpack_malformed",
	[FRONT_H2G_RAPID_RESET] = "rapid_reset",
	[FRONT_H2G_RST_FLOOD] = "rst_flood",
	[FRONT_H2G_PING_FLOOD] = "ping_flood",
	[FRONT_H2G_SETTINGS_FLOOD] = "settings_flood",
	[FRONT_H2G_WINDOW_UPDATE_FLOOD] = "window_update_flood",
	[FRONT_H2G_PRIORITY_FLOOD] = "priority_flood",
	[FRONT_H2G_EMPTY_DATA_FLOOD] = "empty_data_flood",
	[FRONT_H2G_UNKNOWN_FLOOD] = "unknown_frame_flood",
	[FRONT_H2G_CONTINUATION_FLOOD] = "continuation_flood",
};

const char *
front_h2g_reason(enum front_h2g_verdict v)
{
	if ((unsigned)v >= FRONT_H2G_NVERDICTS)
		return "unknown";
	return reasons[v];
}

uint32_t
front_h2g_goaway_code(enum front_h2g_verdict v)
{
	switch (v) {
	case FRONT_H2G_OK: return 0;
	case FRONT_H2G_BAD_PREFACE:
	case FRONT_H2G_PROTOCOL: return FRONT_H2_PROTOCOL_ERROR;
	case FRONT_H2G_HPACK_MALFORMED: return FRONT_H2_COMPRESSION_ERROR;
	default: return FRONT_H2_ENHANCE_YOUR_CALM;
	}
}

void
front_h2g_default_limits(struct front_h2g_limits *lim, uint32_t max_header_bytes)
{
	memset(lim, 0, sizeof(*lim));
	lim->max_header_bytes = max_header_bytes;
	lim->max_frame_size = FRONT_H2G_MAX_FRAME_SIZE;
	lim->max_continuations = FRONT_H2G_MAX_CONTINUATIONS;
	lim->rapid_reset = (struct front_h2g_rate){ FRONT_H2G_RAPID_RESET_RATE,
		FRONT_H2G_RAPID_RESET_BURST };
	lim->rst_stream = (struct front_h2g_rate){ FRONT_H2G_RST_RATE, FRONT_H2G_RST_BURST };
	lim->ping = (struct front_h2g_rate){ FRONT_H2G_PING_RATE, FRONT_H2G_PING_BURST };
	lim->settings = (struct front_h2g_rate){ FRONT_H2G_SETTINGS_RATE,
		FRONT_H2G_SETTINGS_BURST };
	lim->window_update = (struct front_h2g_rate){ FRONT_H2G_WINDOW_UPDATE_RATE,
		FRONT_H2G_WINDOW_UPDATE_BURST };
	lim->priority = (struct front_h2g_rate){ FRONT_H2G_PRIORITY_RATE,
		FRONT_H2G_PRIORITY_BURST };
	lim->empty_data = (struct front_h2g_rate){ FRONT_H2G_EMPTY_DATA_RATE,
		FRONT_H2G_EMPTY_DATA_BURST };
	lim->unknown = (struct front_h2g_rate){ FRONT_H2G_UNKNOWN_RATE, FRONT_H2G_UNKNOWN_BURST };
}

/* ---- token buckets ---------------------------------------------------- */

static void
bucket_init(struct front_h2g_bucket *b, const struct front_h2g_rate *r)
{
	b->milli = (uint64_t)r->burst * 1000;
	b->last_ms = INT64_MIN; /* the first take starts the clock */
}

/* Takes one token; 1 if there was one, 0 if the bucket is dry. Integer
 * arithmetic in thousandths of a token, so that 100/s refills exactly one
 * token per 10 ms whatever the caller's clock granularity. */
static int
bucket_take(struct front_h2g_bucket *b, const struct front_h2g_rate *r, int64_t now_ms)
{
	uint64_t cap = (uint64_t)r->burst * 1000;

	if (r->burst == 0)
		return 1;
	if (b->last_ms == INT64_MIN) {
		b->last_ms = now_ms;
	} else if (now_ms > b->last_ms) {
		/* Unsigned difference: now_ms - last_ms may not fit int64_t. */
		uint64_t el = (uint64_t)now_ms - (uint64_t)b->last_ms;

		/* el * per_sec thousandths; bounded before multiplying. */
		if (r->per_sec != 0) {
			if (el > cap / r->per_sec)
				b->milli = cap;
			else
				b->milli += el * r->per_sec;
			if (b->milli > cap)
				b->milli = cap;
		}
		b->last_ms = now_ms;
	}
	if (b->milli < 1000)
		return 0;
	b->milli -= 1000;
	return 1;
}

/* ---- inbound ---------------------------------------------------------- */

void
front_h2g_init(struct front_h2g *g, const struct front_h2g_limits *lim)
{
	memset(g, 0, sizeof(*g));
	g->lim = *lim;
	g->verdict = FRONT_H2G_OK;
	g->state = S_PREFACE;
	g->hp_state = HP_REP;
	bucket_init(&g->b_rapid_reset, &lim->rapid_reset);
	bucket_init(&g->b_rst, &lim->rst_stream);
	bucket_init(&g->b_ping, &lim->ping);
	bucket_init(&g->b_settings, &lim->settings);
	bucket_init(&g->b_window_update, &lim->window_update);
	bucket_init(&g->b_priority, &lim->priority);
	bucket_init(&g->b_empty_data, &lim->empty_data);
	bucket_init(&g->b_unknown, &lim->unknown);
}

static enum front_h2g_verdict
fail(struct front_h2g *g, enum front_h2g_verdict v)
{
	g->verdict = v;
	return v;
}

/* A stream the client may send DATA, WINDOW_UPDATE or RST_STREAM on: its
 * own (odd) and not idle. The server never opens streams (grpc does not
 * push), so an even id is idle too (RFC 9113 5.1: PROTOCOL_ERROR). */
static int
client_stream_known(const struct front_h2g *g, uint32_t id)
{
	return id != 0 && (id & 1) == 1 && id <= g->last_stream;
}

/* Adds n tokens (capped at the burst) to a bucket. */
static void
bucket_credit(struct front_h2g_bucket *b, const struct front_h2g_rate *r, uint32_t n)
{
	uint64_t cap = (uint64_t)r->burst * 1000;

	b->milli += (uint64_t)n * 1000;
	if (b->milli > cap)
		b->milli = cap;
}

/* HEADERS on a new stream id: the stream is opened. */
static void
stream_opened(struct front_h2g *g, uint32_t id)
{
	bucket_credit(&g->b_ping, &g->lim.ping, FRONT_H2G_PING_PER_STREAM);
	bucket_credit(
	    &g->b_window_update, &g->lim.window_update, FRONT_H2G_WINDOW_UPDATE_PER_STREAM);
	uint32_t shift = g->last_stream == 0 ? 64 : (id - g->last_stream) / 2;

	g->recent_open = shift >= 64 ? 0 : g->recent_open << shift;
	g->recent_open |= 1;
	g->last_stream = id;
	g->streams_opened++;
}

/* RST_STREAM from the client on a known stream: both buckets, the
 * rapid-reset one first when the stream was opened by HEADERS and not
 * reset before (within the last 64 stream ids, which covers every
 * open-then-reset pattern; older streams still cost a token of rst). */
static enum front_h2g_verdict
stream_reset(struct front_h2g *g, uint32_t id, int64_t now_ms)
{
	uint32_t back = (g->last_stream - id) / 2;

	if (back < 64 && (g->recent_open >> back & 1) == 1) {
		g->recent_open &= ~((uint64_t)1 << back);
		if (!bucket_take(&g->b_rapid_reset, &g->lim.rapid_reset, now_ms))
			return fail(g, FRONT_H2G_RAPID_RESET);
	}
	if (!bucket_take(&g->b_rst, &g->lim.rst_stream, now_ms))
		return fail(g, FRONT_H2G_RST_FLOOD);
	return FRONT_H2G_OK;
}

static enum front_h2g_verdict
take(struct front_h2g *g, struct front_h2g_bucket *b, const struct front_h2g_rate *r,
    int64_t now_ms, enum front_h2g_verdict v)
{
	if (!bucket_take(b, r, now_ms))
		return fail(g, v);
	return FRONT_H2G_OK;
}

/* The end of a frame's payload. */
static enum front_h2g_verdict
frame_end(struct front_h2g *g)
{
	g->state = S_HDR;
	if ((g->type == T_HEADERS || g->type == T_CONTINUATION) && (g->flags & F_END_HEADERS)) {
		/* A representation may not span header blocks. */
		if (g->hp_state != HP_REP)
			return fail(g, FRONT_H2G_HPACK_MALFORMED);
		g->in_block = 0;
	}
	if (g->type == T_SETTINGS && !g->preface_done)
		g->preface_done = 1; /* the first frame is SETTINGS, checked */
	return FRONT_H2G_OK;
}

static enum front_h2g_verdict
enter_skip(struct front_h2g *g)
{
	g->state = S_SKIP;
	g->phase_left = g->frame_left;
	if (g->phase_left == 0)
		return frame_end(g);
	return FRONT_H2G_OK;
}

static enum front_h2g_verdict
enter_frag(struct front_h2g *g)
{
	g->state = S_FRAG;
	g->phase_left = g->frag_len;
	if (g->phase_left == 0)
		return enter_skip(g);
	return FRONT_H2G_OK;
}

/* Charges a fragment to the header block's budget, before one byte of it
 * is read: a 20 KiB block is cut at the frame header that overflows it. */
static enum front_h2g_verdict
charge_fragment(struct front_h2g *g, uint32_t frag_len)
{
	if ((uint64_t)g->block_bytes + frag_len > g->lim.max_header_bytes)
		return fail(g, FRONT_H2G_HEADER_TOO_LARGE);
	g->block_bytes += frag_len;
	g->frag_len = frag_len;
	return FRONT_H2G_OK;
}

/* After the pad length byte (or at once when the frame has none): the
 * layout of the rest of the payload is known. */
static enum front_h2g_verdict
payload_layout(struct front_h2g *g, int64_t now_ms)
{
	uint32_t prio = (g->type == T_HEADERS && (g->flags & F_PRIORITY)) ? 5 : 0;

	if ((uint32_t)g->pad_len + prio > g->frame_left)
		return fail(g, FRONT_H2G_PROTOCOL);
	switch (g->type) {
	case T_HEADERS:
		if (charge_fragment(g, g->frame_left - g->pad_len - prio) != FRONT_H2G_OK)
			return g->verdict;
		if (prio != 0) {
			g->state = S_PRIO;
			g->phase_left = prio;
			return FRONT_H2G_OK;
		}
		return enter_frag(g);
	case T_CONTINUATION:
		if (charge_fragment(g, g->frame_left) != FRONT_H2G_OK)
			return g->verdict;
		return enter_frag(g);
	case T_DATA:
		/* Padding only is as empty as no payload at all. */
		if (g->frame_left == g->pad_len && !(g->flags & F_END_STREAM) &&
		    take(g, &g->b_empty_data, &g->lim.empty_data, now_ms,
		        FRONT_H2G_EMPTY_DATA_FLOOD) != FRONT_H2G_OK)
			return g->verdict;
		return enter_skip(g);
	default: return enter_skip(g);
	}
}

/* Checks a complete frame header and starts its payload. */
static enum front_h2g_verdict
frame_start(struct front_h2g *g, int64_t now_ms)
{
	const uint8_t *h = g->hdr;
	uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	uint32_t id = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) &
	    0x7fffffffu; /* the reserved bit is ignored on receipt */
	const struct front_h2g_limits *lim = &g->lim;
	int ack;

	g->type = h[3];
	g->flags = h[4];
	g->stream = id;
	g->frame_left = len;
	g->pad_len = 0;
	g->frag_len = 0;
	ack = (g->flags & F_ACK) != 0;

	if (!g->first_frame_seen) {
		/* RFC 9113 3.4: the preface continues with a SETTINGS frame. */
		if (g->type != T_SETTINGS || ack)
			return fail(g, FRONT_H2G_PROTOCOL);
		g->first_frame_seen = 1;
	}
	/* RFC 9113 6.10: a header block is contiguous. */
	if (g->in_block) {
		if (g->type != T_CONTINUATION || id != g->block_stream)
			return fail(g, FRONT_H2G_PROTOCOL);
	} else if (g->type == T_CONTINUATION) {
		return fail(g, FRONT_H2G_PROTOCOL);
	}

	switch (g->type) {
	case T_DATA:
		if (!client_stream_known(g, id))
			return fail(g, FRONT_H2G_PROTOCOL);
		break;
	case T_HEADERS:
		if (id == 0 || (id & 1) == 0)
			return fail(g, FRONT_H2G_PROTOCOL);
		/* Otherwise a trailer section (or a closed stream: grpc's call). */
		if (id > g->last_stream)
			stream_opened(g, id);
		g->in_block = 1;
		g->block_stream = id;
		g->block_bytes = 0;
		g->block_frames = 0;
		g->hp_state = HP_REP;
		g->hp_strings = 0;
		break;
	case T_CONTINUATION:
		if (++g->block_frames > lim->max_continuations)
			return fail(g, FRONT_H2G_CONTINUATION_FLOOD);
		break;
	case T_PRIORITY:
		if (id == 0 || len != 5)
			return fail(g, FRONT_H2G_PROTOCOL);
		if (take(g, &g->b_priority, &lim->priority, now_ms, FRONT_H2G_PRIORITY_FLOOD) !=
		    FRONT_H2G_OK)
			return g->verdict;
		break;
	case T_RST_STREAM:
		if (len != 4 || !client_stream_known(g, id))
			return fail(g, FRONT_H2G_PROTOCOL);
		if (stream_reset(g, id, now_ms) != FRONT_H2G_OK)
			return g->verdict;
		break;
	case T_SETTINGS:
		if (id != 0 || (ack && len != 0) || len % 6 != 0 || len > lim->max_frame_size)
			return fail(g, FRONT_H2G_PROTOCOL);
		if (!ack &&
		    take(g, &g->b_settings, &lim->settings, now_ms, FRONT_H2G_SETTINGS_FLOOD) !=
		        FRONT_H2G_OK)
			return g->verdict;
		break;
	case T_PUSH_PROMISE: return fail(g, FRONT_H2G_PROTOCOL); /* RFC 9113 8.4 */
	case T_PING:
		if (id != 0 || len != 8)
			return fail(g, FRONT_H2G_PROTOCOL);
		if (!ack &&
		    take(g, &g->b_ping, &lim->ping, now_ms, FRONT_H2G_PING_FLOOD) != FRONT_H2G_OK)
			return g->verdict;
		break;
	case T_GOAWAY:
		if (id != 0 || len < 8 || len > lim->max_frame_size)
			return fail(g, FRONT_H2G_PROTOCOL);
		break;
	case T_WINDOW_UPDATE:
		if (len != 4 || (id != 0 && !client_stream_known(g, id)))
			return fail(g, FRONT_H2G_PROTOCOL);
		if (take(g, &g->b_window_update, &lim->window_update, now_ms,
		        FRONT_H2G_WINDOW_UPDATE_FLOOD) != FRONT_H2G_OK)
			return g->verdict;
		break;
	default:
		if (len > lim->max_frame_size)
			return fail(g, FRONT_H2G_PROTOCOL);
		if (take(g, &g->b_unknown, &lim->unknown, now_ms, FRONT_H2G_UNKNOWN_FLOOD) !=
		    FRONT_H2G_OK)
			return g->verdict;
		break;
	}

	if ((g->type == T_HEADERS || g->type == T_DATA) && (g->flags & F_PADDED)) {
		if (len < 1)
			return fail(g, FRONT_H2G_PROTOCOL);
		g->state = S_PADLEN;
		return FRONT_H2G_OK;
	}
	return payload_layout(g, now_ms);
}

/* ---- HPACK walker ------------------------------------------------------ */

static enum front_h2g_verdict
string_done(struct front_h2g *g)
{
	g->hp_strings--;
	g->hp_state = g->hp_strings != 0 ? HP_STRLEN : HP_REP;
	return FRONT_H2G_OK;
}

/* An integer (g->hp_int) is complete: act on it. */
static enum front_h2g_verdict
int_done(struct front_h2g *g)
{
	if (g->hp_int_is_len) {
		/* Cut a declared 2 GiB literal here, a handful of bytes in. */
		if (g->hp_int > g->lim.max_header_bytes)
			return fail(g, FRONT_H2G_HPACK_LITERAL_TOO_LARGE);
		g->hp_skip = (uint32_t)g->hp_int;
		if (g->hp_skip == 0)
			return string_done(g);
		g->hp_state = HP_SKIP;
		return FRONT_H2G_OK;
	}
	switch (g->hp_kind) {
	case K_INDEXED:
		/* RFC 7541 6.1: index 0 is a decoding error. */
		if (g->hp_int == 0)
			return fail(g, FRONT_H2G_HPACK_MALFORMED);
		g->hp_state = HP_REP;
		break;
	case K_LITERAL:
		/* Name index 0: a name string, then the value string. */
		g->hp_strings = g->hp_int == 0 ? 2 : 1;
		g->hp_state = HP_STRLEN;
		break;
	default: g->hp_state = HP_REP; break;
	}
	return FRONT_H2G_OK;
}

/* The first byte of an integer with a prefix of `bits` bits (RFC 7541 5.1). */
static enum front_h2g_verdict
int_start(struct front_h2g *g, uint8_t b, unsigned bits)
{
	uint8_t mask = (uint8_t)((1u << bits) - 1);

	g->hp_int = b & mask;
	g->hp_int_len = 0;
	if ((b & mask) < mask)
		return int_done(g);
	g->hp_state = HP_INT;
	return FRONT_H2G_OK;
}

static enum front_h2g_verdict
int_more(struct front_h2g *g, uint8_t b)
{
	g->hp_int += (uint64_t)(b & 0x7f) << (7 * g->hp_int_len);
	g->hp_int_len++;
	if (g->hp_int > UINT32_MAX)
		return fail(g, FRONT_H2G_HPACK_MALFORMED);
	if (b & 0x80) {
		if (g->hp_int_len >= HPACK_INT_MAX_CONT)
			return fail(g, FRONT_H2G_HPACK_MALFORMED);
		return FRONT_H2G_OK;
	}
	return int_done(g);
}

/* Walks n fragment bytes; returns how many it consumed (n, or up to and
 * including the byte of a violation). */
static size_t
hpack_walk(struct front_h2g *g, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && g->verdict == FRONT_H2G_OK) {
		uint8_t b;

		if (g->hp_state == HP_SKIP) {
			size_t k = n - i < g->hp_skip ? n - i : g->hp_skip;

			i += k;
			g->hp_skip -= (uint32_t)k;
			if (g->hp_skip == 0)
				string_done(g);
			continue;
		}
		b = p[i++];
		switch (g->hp_state) {
		case HP_REP:
			g->hp_int_is_len = 0;
			if (b & 0x80) { /* 1xxxxxxx indexed field */
				g->hp_kind = K_INDEXED;
				int_start(g, b, 7);
			} else if (b & 0x40) { /* 01xxxxxx literal, incremental indexing */
				g->hp_kind = K_LITERAL;
				int_start(g, b, 6);
			} else if (b & 0x20) { /* 001xxxxx dynamic table size update */
				g->hp_kind = K_SIZE_UPDATE;
				int_start(g, b, 5);
			} else { /* 0000xxxx without indexing, 0001xxxx never indexed */
				g->hp_kind = K_LITERAL;
				int_start(g, b, 4);
			}
			break;
		case HP_STRLEN: /* H bit, then a 7-bit prefix length */
			g->hp_int_is_len = 1;
			int_start(g, b, 7);
			break;
		case HP_INT: int_more(g, b); break;
		default: abort(); /* not a state */
		}
	}
	return i;
}

/* ---- inbound driver ----------------------------------------------------- */

enum front_h2g_verdict
front_h2g_feed(struct front_h2g *g, const uint8_t *p, size_t n, int64_t now_ms)
{
	size_t i = 0;

	while (i < n && g->verdict == FRONT_H2G_OK) {
		size_t avail = n - i, k;

		switch (g->state) {
		case S_PREFACE:
			if (p[i++] != (uint8_t)FRONT_H2G_PREFACE[g->preface_have]) {
				fail(g, FRONT_H2G_BAD_PREFACE);
				break;
			}
			if (++g->preface_have == FRONT_H2G_PREFACE_LEN)
				g->state = S_HDR;
			break;
		case S_HDR:
			g->hdr[g->hdr_have++] = p[i++];
			if (g->hdr_have == FRONT_H2G_FRAME_HDR) {
				g->hdr_have = 0;
				frame_start(g, now_ms);
			}
			break;
		case S_PADLEN:
			g->pad_len = p[i++];
			g->frame_left--;
			payload_layout(g, now_ms);
			break;
		case S_PRIO:
			k = avail < g->phase_left ? avail : g->phase_left;
			i += k;
			g->phase_left -= (uint32_t)k;
			g->frame_left -= (uint32_t)k;
			if (g->phase_left == 0)
				enter_frag(g);
			break;
		case S_FRAG:
			k = avail < g->phase_left ? avail : g->phase_left;
			k = hpack_walk(g, p + i, k);
			i += k;
			g->phase_left -= (uint32_t)k;
			g->frame_left -= (uint32_t)k;
			if (g->verdict == FRONT_H2G_OK && g->phase_left == 0)
				enter_skip(g);
			break;
		case S_SKIP:
			k = avail < g->phase_left ? avail : g->phase_left;
			i += k;
			g->phase_left -= (uint32_t)k;
			g->frame_left -= (uint32_t)k;
			if (g->phase_left == 0)
				frame_end(g);
			break;
		default: abort(); /* not a state */
		}
	}
	g->offset += i;
	return g->verdict;
}

enum front_h2g_verdict
front_h2g_verdict(const struct front_h2g *g)
{
	return g->verdict;
}

uint64_t
front_h2g_offset(const struct front_h2g *g)
{
	return g->offset;
}

int
front_h2g_preface_done(const struct front_h2g *g)
{
	return g->preface_done;
}

uint32_t
front_h2g_last_stream(const struct front_h2g *g)
{
	return g->last_stream;
}

uint64_t
front_h2g_streams_opened(const struct front_h2g *g)
{
	return g->streams_opened;
}

void
front_h2g_position(const struct front_h2g *g, struct front_h2g_pos *pos)
{
	memset(pos, 0, sizeof(*pos));
	if (g->state == S_PREFACE) {
		pos->preface_left = FRONT_H2G_PREFACE_LEN - g->preface_have;
	} else if (g->state == S_HDR) {
		pos->hdr_have = g->hdr_have;
		memcpy(pos->hdr, g->hdr, g->hdr_have);
	} else {
		pos->payload_left = g->frame_left; /* the pad length byte included */
	}
}

/* ---- outbound ------------------------------------------------------------ */

void
front_h2g_out_init(struct front_h2g_out *o)
{
	memset(o, 0, sizeof(*o));
}

void
front_h2g_out_feed(struct front_h2g_out *o, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (o->payload_left > 0) {
			size_t k = n < o->payload_left ? n : o->payload_left;

			p += k;
			n -= k;
			o->payload_left -= (uint32_t)k;
			continue;
		}
		o->hdr[o->hdr_have++] = *p++;
		n--;
		if (o->hdr_have == FRONT_H2G_FRAME_HDR) {
			o->hdr_have = 0;
			o->payload_left = (uint32_t)o->hdr[0] << 16 | (uint32_t)o->hdr[1] << 8 |
			    o->hdr[2];
			o->frames++;
			if (o->hdr[3] == T_RST_STREAM)
				o->rst_streams++;
		}
	}
}

int
front_h2g_out_at_boundary(const struct front_h2g_out *o)
{
	return o->hdr_have == 0 && o->payload_left == 0;
}

size_t
front_h2g_out_until_boundary(const struct front_h2g_out *o)
{
	if (o->payload_left > 0)
		return o->payload_left;
	if (o->hdr_have > 0)
		return FRONT_H2G_FRAME_HDR - o->hdr_have;
	return 0;
}

uint64_t
front_h2g_out_frames(const struct front_h2g_out *o)
{
	return o->frames;
}

uint64_t
front_h2g_out_rst_streams(const struct front_h2g_out *o)
{
	return o->rst_streams;
}

static void
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

size_t
front_h2g_goaway(uint8_t out[FRONT_H2G_GOAWAY_LEN], uint32_t last_stream_id, uint32_t error_code)
{
	out[0] = 0; /* length 8: last-stream-id + error code */
	out[1] = 0;
	out[2] = 8;
	out[3] = T_GOAWAY;
	out[4] = 0;
	put32(out + 5, 0);
	put32(out + 9, last_stream_id & 0x7fffffffu);
	put32(out + 13, error_code);
	return FRONT_H2G_GOAWAY_LEN;
}
