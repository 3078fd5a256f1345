/* SPDX-License-Identifier: MIT */
/*
 * test_front_h2guard.c — daemon/front/front_h2guard.c on byte sequences
 * built here frame by frame with real HPACK (RFC 7541 encodings, one
 * Huffman string from its appendix C.4.1): a grpc-like exchange passes
 * whole, byte by byte and split at random; each attack (rapid reset, HPACK
 * literal bomb, oversized and endless header blocks, PING / SETTINGS /
 * WINDOW_UPDATE / PRIORITY / empty DATA / unknown frame floods) is cut
 * where it must be; slow but legitimate traffic over simulated time is
 * not; the outbound boundary tracker and the GOAWAY bytes. And
 * daemon/front/front_h2cut.c on the same frames: what grpc sees after the
 * cut, made at a frame boundary, inside a frame header, inside a payload and
 * inside the preface, for any split of the later bytes.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front/front_h2cut.h"
#include "front/front_h2guard.h"
#include "unit_suites_extra.h"

#define T_DATA     0x0
#define T_HEADERS  0x1
#define T_PRIORITY 0x2
#define T_RST      0x3
#define T_SETTINGS 0x4
#define T_PUSH     0x5
#define T_PING     0x6
#define T_GOAWAY   0x7
#define T_WU       0x8
#define T_CONT     0x9
#define F_ACK      0x1
#define F_ES       0x1
#define F_EH       0x4
#define F_PADDED   0x8
#define F_PRIO     0x20
#define MAX_HDR    16384
#define BLOCK_20K  ((size_t)20 * 1024)

/* ---- byte buffers and frame builders ---------------------------------- */

struct bb {
	uint8_t *p;
	size_t n, cap;
};

static void
bb_put(struct bb *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	if (n > 0)
		memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void
bb_u8(struct bb *b, unsigned v)
{
	uint8_t c = (uint8_t)v;

	bb_put(b, &c, 1);
}

static void
bb_u32(struct bb *b, uint32_t v)
{
	bb_u8(b, v >> 24);
	bb_u8(b, v >> 16);
	bb_u8(b, v >> 8);
	bb_u8(b, v);
}

static void
bb_free(struct bb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void
frame_hdr(struct bb *b, uint32_t len, unsigned type, unsigned flags, uint32_t id)
{
	bb_u8(b, len >> 16);
	bb_u8(b, len >> 8);
	bb_u8(b, len);
	bb_u8(b, type);
	bb_u8(b, flags);
	bb_u32(b, id);
}

static void
frame(struct bb *b, unsigned type, unsigned flags, uint32_t id, const void *pl, size_t n)
{
	frame_hdr(b, (uint32_t)n, type, flags, id);
	bb_put(b, pl, n);
}

/* The preface and a SETTINGS like grpc-go's (ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 4 MiB). */
static void
preface(struct bb *b)
{
	static const uint8_t settings[] = { 0, 2, 0, 0, 0, 0, 0, 4, 0, 0x40, 0, 0 };

	bb_put(b, FRONT_H2G_PREFACE, FRONT_H2G_PREFACE_LEN);
	frame(b, T_SETTINGS, 0, 0, settings, sizeof(settings));
}

/* HPACK integer (RFC 7541 5.1) with the first byte's high bits `top`. */
static void
hp_int(struct bb *b, unsigned bits, unsigned top, uint64_t v)
{
	uint64_t mask = (1u << bits) - 1;

	if (v < mask) {
		bb_u8(b, top | (unsigned)v);
		return;
	}
	bb_u8(b, top | (unsigned)mask);
	v -= mask;
	while (v >= 128) {
		bb_u8(b, (unsigned)(v & 127) | 128);
		v >>= 7;
	}
	bb_u8(b, (unsigned)v);
}

static void
hp_str(struct bb *b, const char *s)
{
	hp_int(b, 7, 0, strlen(s));
	bb_put(b, s, strlen(s));
}

/* The request headers of a unary grpc call; with dyn, the second call's:
 * :authority, :path, te and user-agent from the dynamic table the first
 * one filled (newest first: user-agent 62, te 63, :path 64, :authority 65). */
static void
grpc_request_block(struct bb *h, int dyn)
{
	/* www.example.com, Huffman-coded (RFC 7541 C.4.1) */
	static const uint8_t huff[] = { 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
		0xf4, 0xff };

	bb_u8(h, 0x83); /* :method POST (static 3) */
	bb_u8(h, 0x86); /* :scheme http (static 6) */
	if (dyn) {
		bb_u8(h, 0x80 | 65);    /* :authority */
		bb_u8(h, 0x80 | 64);    /* :path */
		hp_int(h, 4, 0x00, 31); /* content-type, as the first call */
		hp_str(h, "application/grpc");
		bb_u8(h, 0x80 | 63); /* te: trailers */
		bb_u8(h, 0x80 | 62); /* user-agent */
		return;
	}
	hp_int(h, 6, 0x40, 1); /* :authority, incremental indexing */
	hp_int(h, 7, 0x80, sizeof(huff));
	bb_put(h, huff, sizeof(huff));
	hp_int(h, 6, 0x40, 4); /* :path (static 4) */
	hp_str(h, "/payment.v1.PaymentService/AuthorizePayment");
	hp_int(h, 4, 0x00, 31); /* content-type (static 31), without indexing */
	hp_str(h, "application/grpc");
	bb_u8(h, 0x40); /* te, new name, incremental indexing */
	hp_str(h, "te");
	hp_str(h, "trailers");
	bb_u8(h, 0x10); /* never indexed, new name */
	hp_str(h, "authorization");
	hp_str(h, "Bearer abc");
	hp_int(h, 6, 0x40, 58); /* user-agent (static 58) */
	hp_str(h, "grpc-c/29.0.0 (linux; chttp2)");
}

/* One request: HEADERS (split into HEADERS + CONTINUATION when split is
 * set), then a DATA message with END_STREAM. */
static void
grpc_request(struct bb *b, uint32_t id, int dyn, int split)
{
	static const uint8_t msg[] = { 0, 0, 0, 0, 6, 0x0a, 4, 'k', 'e', 'y', '1' };
	struct bb h = { 0 };

	grpc_request_block(&h, dyn);
	if (split && h.n > 3) {
		frame(b, T_HEADERS, 0, id, h.p, 2);
		frame(b, T_CONT, F_EH, id, h.p + 2, h.n - 2);
	} else {
		frame(b, T_HEADERS, F_EH, id, h.p, h.n);
	}
	frame(b, T_DATA, F_ES, id, msg, sizeof(msg));
	bb_free(&h);
}

/* A whole grpc-like connection from the client. */
static void
grpc_exchange(struct bb *b)
{
	static const uint8_t wu[] = { 0, 0x3f, 0, 1 };
	static const uint8_t ping[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t rst[] = { 0, 0, 0, 8 };      /* CANCEL */
	static const uint8_t prio[] = { 0, 0, 0, 0, 16 }; /* on an idle stream: allowed */
	static const uint8_t goaway[] = { 0, 0, 0, 7, 0, 0, 0, 0 };
	struct bb h = { 0 };
	uint8_t pad[7] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	preface(b);
	frame(b, T_WU, 0, 0, wu, sizeof(wu));
	frame(b, T_SETTINGS, F_ACK, 0, NULL, 0);
	grpc_request(b, 1, 0, 0);
	frame(b, T_PING, F_ACK, 0, ping, sizeof(ping));
	frame(b, T_PING, 0, 0, ping, sizeof(ping));
	grpc_request(b, 3, 1, 1);
	frame(b, T_WU, 0, 3, wu, sizeof(wu));
	frame(b, T_PRIORITY, 0, 5, prio, sizeof(prio));
	/* HEADERS with PADDED and PRIORITY: padding and priority bytes of
	 * 0xff must not be taken for HPACK. */
	grpc_request_block(&h, 1);
	frame_hdr(b, (uint32_t)(1 + 5 + h.n + sizeof(pad)), T_HEADERS, F_EH | F_PADDED | F_PRIO, 5);
	bb_u8(b, sizeof(pad));
	bb_put(b, pad, 5);
	bb_put(b, h.p, h.n);
	bb_put(b, pad, sizeof(pad));
	/* padded DATA with a payload, a half-close (empty DATA with
	 * END_STREAM: not an "empty" frame) and the client cancels the call */
	frame_hdr(b, 1 + 3 + 4, T_DATA, F_PADDED, 5);
	bb_u8(b, 4);
	bb_put(b, pad, 3);
	bb_put(b, pad, 4);
	frame(b, T_DATA, F_ES, 5, NULL, 0);
	frame(b, T_RST, 0, 5, rst, sizeof(rst));
	frame(b, T_GOAWAY, 0, 0, goaway, sizeof(goaway));
	bb_free(&h);
}

static struct front_h2g_limits
lims(void)
{
	struct front_h2g_limits l;

	front_h2g_default_limits(&l, MAX_HDR);
	return l;
}

/* Feeds p[0..n) in chunks of 1..max_chunk bytes (an LCG picks the sizes;
 * max_chunk 0: all at once); returns the verdict, *off the offset. */
static enum front_h2g_verdict
feed_split(const uint8_t *p, size_t n, size_t max_chunk, uint32_t seed, uint64_t *off)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	enum front_h2g_verdict v = FRONT_H2G_OK;
	size_t i = 0;

	front_h2g_init(&g, &l);
	while (i < n) {
		size_t k = n - i;

		if (max_chunk > 0) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % max_chunk;
			if (k > n - i)
				k = n - i;
		}
		v = front_h2g_feed(&g, p + i, k, 1000);
		i += k;
	}
	*off = front_h2g_offset(&g);
	return v;
}

/* The verdict must not depend on how the bytes were split. */
static enum front_h2g_verdict
verdict_any_split(const uint8_t *p, size_t n, uint64_t *off)
{
	uint64_t o1, o2;
	enum front_h2g_verdict v = feed_split(p, n, 0, 0, off);
	uint32_t seed;

	ck_assert_int_eq(feed_split(p, n, 1, 0, &o1), v);
	ck_assert_uint_eq(o1, *off);
	for (seed = 1; seed < 6; seed++) {
		ck_assert_int_eq(feed_split(p, n, 13, seed, &o2), v);
		ck_assert_uint_eq(o2, *off);
	}
	return v;
}

/* A fresh guard past the preface and SETTINGS (at now_ms 0). */
static void
started(struct front_h2g *g, const struct front_h2g_limits *l)
{
	struct bb b = { 0 };

	front_h2g_init(g, l);
	preface(&b);
	ck_assert_int_eq(front_h2g_feed(g, b.p, b.n, 0), FRONT_H2G_OK);
	ck_assert(front_h2g_preface_done(g));
	bb_free(&b);
}

static enum front_h2g_verdict
send_frame(struct front_h2g *g, unsigned type, unsigned flags, uint32_t id, const void *pl,
    size_t n, int64_t now)
{
	struct bb b = { 0 };
	enum front_h2g_verdict v;

	frame(&b, type, flags, id, pl, n);
	v = front_h2g_feed(g, b.p, b.n, now);
	bb_free(&b);
	return v;
}

/* HEADERS on a new stream with a tiny real block (:method POST, :scheme
 * http, :path /) then RST_STREAM CANCEL: one rapid-reset pair. */
static void
rapid_pair(struct bb *b, uint32_t id)
{
	static const uint8_t block[] = { 0x83, 0x86, 0x84 };
	static const uint8_t cancel[] = { 0, 0, 0, 8 };

	frame(b, T_HEADERS, F_EH, id, block, sizeof(block));
	frame(b, T_RST, 0, id, cancel, sizeof(cancel));
}

/* ---- the tests ---------------------------------------------------------- */

START_TEST(valid_exchange_passes_any_split)
{
	struct bb b = { 0 };
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	uint64_t off;
	size_t i;

	grpc_exchange(&b);
	ck_assert_int_eq(verdict_any_split(b.p, b.n, &off), FRONT_H2G_OK);
	ck_assert_uint_eq(off, b.n);

	/* Byte by byte: the preface is done exactly at the end of the first
	 * SETTINGS frame (24 + 9 + 12 bytes), not one byte earlier. */
	front_h2g_init(&g, &l);
	for (i = 0; i < b.n; i++) {
		ck_assert_int_eq(front_h2g_preface_done(&g), i >= 24 + 9 + 12);
		ck_assert_int_eq(front_h2g_feed(&g, b.p + i, 1, (int64_t)i), FRONT_H2G_OK);
	}
	ck_assert(front_h2g_preface_done(&g));
	ck_assert_uint_eq(front_h2g_last_stream(&g), 5);
	ck_assert_uint_eq(front_h2g_streams_opened(&g), 3);
	ck_assert_int_eq(front_h2g_verdict(&g), FRONT_H2G_OK);
	bb_free(&b);
}
END_TEST

START_TEST(bad_preface)
{
	static const char *const bad[] = { "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\r" };
	static const uint64_t at[] = { 1, 12, 24 };
	struct bb b = { 0 };
	uint64_t off;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(verdict_any_split((const uint8_t *)bad[i], strlen(bad[i]), &off),
		    FRONT_H2G_BAD_PREFACE);
		ck_assert_uint_eq(off, at[i]); /* cut at the first wrong byte */
	}
	/* A right preface followed by something else than SETTINGS. */
	bb_put(&b, FRONT_H2G_PREFACE, FRONT_H2G_PREFACE_LEN);
	frame(&b, T_PING, 0, 0, "12345678", 8);
	ck_assert_int_eq(verdict_any_split(b.p, b.n, &off), FRONT_H2G_PROTOCOL);
	ck_assert_uint_eq(off, 24 + 9);
	b.n = 0;
	bb_put(&b, FRONT_H2G_PREFACE, FRONT_H2G_PREFACE_LEN);
	frame(&b, T_SETTINGS, F_ACK, 0, NULL, 0);
	ck_assert_int_eq(verdict_any_split(b.p, b.n, &off), FRONT_H2G_PROTOCOL);
	/* Just the preface: fine so far, but not done. */
	{
		struct front_h2g_limits l = lims();
		struct front_h2g g;

		front_h2g_init(&g, &l);
		ck_assert_int_eq(
		    front_h2g_feed(&g, (const uint8_t *)FRONT_H2G_PREFACE, 24, 0), FRONT_H2G_OK);
		ck_assert(!front_h2g_preface_done(&g));
	}
	bb_free(&b);
}
END_TEST

/* A HEADERS frame announcing 16 KiB whose first literal declares 2 GiB:
 * fed byte by byte, the guard stops a few bytes into the block. */
START_TEST(two_gib_literal_cut_early)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	struct bb b = { 0 }, h = { 0 };
	int variant;

	for (variant = 0; variant < 3; variant++) {
		size_t i;

		b.n = h.n = 0;
		preface(&b);
		bb_u8(&h, 0x83);
		if (variant == 0) {
			bb_u8(&h, 0x40); /* new name: the name is the bomb */
			hp_int(&h, 7, 0x00, 2147483648u);
		} else if (variant == 1) {
			hp_int(&h, 6, 0x40, 4);           /* :path name from the table */
			hp_int(&h, 7, 0x80, 2147483647u); /* Huffman value */
		} else {
			bb_u8(&h, 0x10); /* never indexed; small name, huge value */
			hp_str(&h, "x-big");
			hp_int(&h, 7, 0x00, MAX_HDR + 1);
		}
		frame_hdr(&b, MAX_HDR, T_HEADERS, F_EH, 1);
		bb_put(&b, h.p, h.n);
		/* then what would be the literal's bytes */
		for (i = 0; i < 4096; i++)
			bb_u8(&b, 'A');

		front_h2g_init(&g, &l);
		for (i = 0; i < b.n; i++)
			if (front_h2g_feed(&g, b.p + i, 1, 0) != FRONT_H2G_OK)
				break;
		ck_assert_int_eq(front_h2g_verdict(&g), FRONT_H2G_HPACK_LITERAL_TOO_LARGE);
		/* cut on the length integer's last byte: preface, SETTINGS,
		 * frame header, the prefix bytes and nothing more */
		ck_assert_uint_eq(front_h2g_offset(&g), 24 + 21 + 9 + h.n);
		ck_assert_uint_lt(front_h2g_offset(&g), 16384);
		ck_assert_uint_eq(i + 1, front_h2g_offset(&g));
	}
	/* A literal declaring exactly max_header_bytes passes the literal
	 * check (its bytes then overflow the block: header_too_large); one
	 * more is hpack_literal_too_large. */
	{
		struct front_h2g_limits small = lims();
		uint8_t lit[200];
		uint32_t len;

		memset(lit, 'v', sizeof(lit));
		small.max_header_bytes = 200;
		for (len = 200; len <= 201; len++) {
			started(&g, &small);
			h.n = 0;
			bb_u8(&h, 0x00);
			hp_str(&h, "n");
			hp_int(&h, 7, 0, len);
			ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, h.p, h.n, 0),
			    len == 200 ? FRONT_H2G_OK : FRONT_H2G_HPACK_LITERAL_TOO_LARGE);
		}
		ck_assert_int_eq(send_frame(&g, T_CONT, F_EH, 1, lit, sizeof(lit), 0),
		    FRONT_H2G_HPACK_LITERAL_TOO_LARGE); /* sticky */
		started(&g, &small);
		ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, h.p, h.n - 2, 0), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_CONT, 0, 1, "I", 2, 0), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_CONT, F_EH, 1, lit, sizeof(lit), 0),
		    FRONT_H2G_HEADER_TOO_LARGE);
	}
	bb_free(&b);
	bb_free(&h);
}
END_TEST

/* Appends n bytes of valid HPACK: literals "x-pad: <value>" without indexing. */
static void
padding_headers(struct bb *h, size_t n)
{
	size_t start = h->n;

	while (h->n - start + 8 < n) {
		size_t left = n - (h->n - start), v = left - 8 > 100 ? 100 : left - 8;
		char val[101];

		memset(val, 'v', v);
		val[v] = '\0';
		bb_u8(h, 0x00);
		hp_str(h, "x-pad");
		hp_str(h, val);
	}
	while (h->n - start < n)
		bb_u8(h, 0x82); /* :method GET, 1 byte each */
}

START_TEST(header_block_over_limit_across_continuations)
{
	struct bb b = { 0 }, h = { 0 };
	uint64_t off;
	size_t cut;

	preface(&b);
	padding_headers(&h, BLOCK_20K);
	ck_assert_uint_eq(h.n, BLOCK_20K);
	frame(&b, T_HEADERS, 0, 1, h.p, 8192);
	frame(&b, T_CONT, 0, 1, h.p + 8192, 8192);
	cut = b.n + 9; /* the header of the CONTINUATION that overflows */
	frame(&b, T_CONT, F_EH, 1, h.p + 16384, h.n - 16384);
	ck_assert_int_eq(verdict_any_split(b.p, b.n, &off), FRONT_H2G_HEADER_TOO_LARGE);
	ck_assert_uint_eq(off, cut);

	/* Exactly 16 KiB in three frames is fine. */
	b.n = 0;
	h.n = 0;
	padding_headers(&h, 16384);
	preface(&b);
	frame(&b, T_HEADERS, 0, 1, h.p, 8000);
	frame(&b, T_CONT, 0, 1, h.p + 8000, 8000);
	frame(&b, T_CONT, F_EH, 1, h.p + 16000, 384);
	ck_assert_int_eq(verdict_any_split(b.p, b.n, &off), FRONT_H2G_OK);
	ck_assert_uint_eq(off, b.n);

	/* One 20 KiB HEADERS frame: cut at its header. */
	b.n = 0;
	h.n = 0;
	padding_headers(&h, BLOCK_20K);
	preface(&b);
	cut = b.n + 9;
	frame(&b, T_HEADERS, F_EH, 1, h.p, h.n);
	ck_assert_int_eq(verdict_any_split(b.p, b.n, &off), FRONT_H2G_HEADER_TOO_LARGE);
	ck_assert_uint_eq(off, cut);
	bb_free(&b);
	bb_free(&h);
}
END_TEST

START_TEST(continuation_flood)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	int i;

	/* 64 CONTINUATIONs (the last ends the block) are allowed... */
	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, "\x83", 1, 0), FRONT_H2G_OK);
	for (i = 0; i < 63; i++)
		ck_assert_int_eq(send_frame(&g, T_CONT, 0, 1, NULL, 0, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_CONT, F_EH, 1, "\x86", 1, 0), FRONT_H2G_OK);
	/* ...and counted per block: */
	ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 3, "\x83", 1, 0), FRONT_H2G_OK);
	for (i = 0; i < 64; i++)
		ck_assert_int_eq(send_frame(&g, T_CONT, 0, 3, NULL, 0, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_CONT, 0, 3, NULL, 0, 0), FRONT_H2G_CONTINUATION_FLOOD);
}
END_TEST

/* CVE-2023-44487: 500,000 HEADERS + RST_STREAM pairs, all in the same ms. */
START_TEST(rapid_reset_cut_within_burst)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	struct bb b = { 0 };
	uint32_t pairs, ok = 0;
	enum front_h2g_verdict v = FRONT_H2G_OK;

	started(&g, &l);
	for (pairs = 0; pairs < 500000 && v == FRONT_H2G_OK; pairs++) {
		b.n = 0;
		rapid_pair(&b, 2 * pairs + 1);
		v = front_h2g_feed(&g, b.p, b.n, 5);
		if (v == FRONT_H2G_OK)
			ok++;
	}
	ck_assert_int_eq(v, FRONT_H2G_RAPID_RESET);
	ck_assert_uint_le(ok, FRONT_H2G_RAPID_RESET_BURST);
	ck_assert_uint_eq(ok, FRONT_H2G_RAPID_RESET_BURST); /* the burst is usable */
	ck_assert_uint_eq(front_h2g_streams_opened(&g), ok + 1);
	ck_assert_uint_eq(front_h2g_last_stream(&g), 2 * ok + 1);
	/* Sticky: more bytes are not looked at. */
	{
		uint64_t off = front_h2g_offset(&g);

		ck_assert_int_eq(
		    front_h2g_feed(&g, (const uint8_t *)"garbage", 7, 6), FRONT_H2G_RAPID_RESET);
		ck_assert_uint_eq(front_h2g_offset(&g), off);
	}
	bb_free(&b);
}
END_TEST

START_TEST(slow_resets_are_fine)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	struct bb b = { 0 };
	uint32_t i;
	int64_t now = 0;

	/* At exactly the rate (one pair per 10 ms) for 100 s, with the burst
	 * already spent at the start. */
	started(&g, &l);
	for (i = 0; i < FRONT_H2G_RAPID_RESET_BURST; i++) {
		b.n = 0;
		rapid_pair(&b, 2 * i + 1);
		ck_assert_int_eq(front_h2g_feed(&g, b.p, b.n, now), FRONT_H2G_OK);
	}
	for (; i < 10000 + FRONT_H2G_RAPID_RESET_BURST; i++) {
		now += 10;
		b.n = 0;
		rapid_pair(&b, 2 * i + 1);
		ck_assert_int_eq(front_h2g_feed(&g, b.p, b.n, now), FRONT_H2G_OK);
	}
	/* Twice the rate: tokens run out after about 2 * burst pairs. */
	for (; front_h2g_verdict(&g) == FRONT_H2G_OK; i++) {
		now += 5;
		b.n = 0;
		rapid_pair(&b, 2 * i + 1);
		front_h2g_feed(&g, b.p, b.n, now);
	}
	ck_assert_int_eq(front_h2g_verdict(&g), FRONT_H2G_RAPID_RESET);

	/* A client that cancels one RPC in ten at 1000 RPC/s (100 resets/s
	 * too, but spread out) over 60 s of simulated time. */
	started(&g, &l);
	now = 0;
	for (i = 0; i < 60000; i++) {
		b.n = 0;
		if (i % 10 == 0)
			rapid_pair(&b, 2 * i + 1);
		else
			grpc_request(&b, 2 * i + 1, 1, 0);
		ck_assert_int_eq(front_h2g_feed(&g, b.p, b.n, now), FRONT_H2G_OK);
		now += 1;
	}
	ck_assert_uint_eq(front_h2g_streams_opened(&g), 60000);
	bb_free(&b);
}
END_TEST

/* Refill is exact: 100/s gives one token per 10 ms, not 0.9 at 9 ms. */
START_TEST(bucket_refill_is_exact)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	int64_t wait;
	int i;

	for (wait = 9; wait <= 10; wait++) {
		started(&g, &l);
		for (i = 0; i < FRONT_H2G_PING_BURST; i++)
			ck_assert_int_eq(
			    send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 100), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 100 + wait),
		    wait == 10 ? FRONT_H2G_OK : FRONT_H2G_PING_FLOOD);
	}
	/* the token of 10 ms is spent: the next one in the same ms is not there */
	ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 110), FRONT_H2G_PING_FLOOD);
	/* A long idle refills to the burst, not beyond; this one is so long
	 * that idle ms * 100/s would wrap a uint64_t around to 84 thousandths. */
	started(&g, &l);
	for (i = 0; i < FRONT_H2G_PING_BURST; i++)
		ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 0), FRONT_H2G_OK);
	for (i = 0; i < FRONT_H2G_PING_BURST; i++)
		ck_assert_int_eq(
		    send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, (int64_t)184467440737095517),
		    FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, (int64_t)184467440737095517),
	    FRONT_H2G_PING_FLOOD);
}
END_TEST

/* Which resets count as opened-then-reset: any of the last 64 streams
 * opened, each once; older ones only on the rst bucket. */
START_TEST(rapid_reset_window)
{
	static const uint8_t cancel[] = { 0, 0, 0, 8 };
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	uint32_t id;

	l.rapid_reset = (struct front_h2g_rate){ 0, 5 };
	l.rst_stream = (struct front_h2g_rate){ 0, 1000 };
	/* Open 10 streams, then cancel them oldest first: the 6th is one too many. */
	started(&g, &l);
	for (id = 1; id <= 19; id += 2)
		ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, id, "\x83", 1, 0), FRONT_H2G_OK);
	for (id = 1; id <= 9; id += 2)
		ck_assert_int_eq(send_frame(&g, T_RST, 0, id, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 11, cancel, 4, 0), FRONT_H2G_RAPID_RESET);

	/* 100 streams: 1 is out of the window, 199 and 73 (63 back) are in it,
	 * and a stream already reset is not counted again. */
	l.rapid_reset = (struct front_h2g_rate){ 0, 2 };
	started(&g, &l);
	for (id = 1; id <= 199; id += 2)
		ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, id, "\x83", 1, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 1, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 71, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 199, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 199, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 73, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 197, cancel, 4, 0), FRONT_H2G_RAPID_RESET);

	/* Skipped stream ids were never opened: resetting one is not rapid. */
	l.rapid_reset = (struct front_h2g_rate){ 0, 1 };
	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 11, "\x83", 1, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 5, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 1, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 11, cancel, 4, 0), FRONT_H2G_RAPID_RESET);
}
END_TEST

START_TEST(repeated_rst_is_rst_flood)
{
	static const uint8_t cancel[] = { 0, 0, 0, 8 };
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	int i;

	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
	for (i = 0; i < FRONT_H2G_RST_BURST; i++)
		ck_assert_int_eq(send_frame(&g, T_RST, 0, 1, cancel, 4, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_RST, 0, 1, cancel, 4, 0), FRONT_H2G_RST_FLOOD);
}
END_TEST

/* burst frames of one kind in the same ms pass, the next one is `v`;
 * spread at the bucket's rate, 10 times the burst pass. */
static void
flood_case(unsigned type, unsigned flags, uint32_t id, const void *pl, size_t n, uint32_t burst,
    uint32_t rate, enum front_h2g_verdict v, uint32_t already)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	uint32_t i;
	int64_t now = 0;

	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
	for (i = already; i < burst; i++)
		ck_assert_int_eq(send_frame(&g, type, flags, id, pl, n, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, type, flags, id, pl, n, 0), v);

	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
	for (i = 0; i < 10 * burst; i++) {
		now += 1000 / rate;
		ck_assert_int_eq(send_frame(&g, type, flags, id, pl, n, now), FRONT_H2G_OK);
	}
}

START_TEST(floods)
{
	static const uint8_t wu[] = { 0, 0, 0x10, 0 };
	static const uint8_t prio[] = { 0, 0, 0, 0, 200 };

	flood_case(T_PING, 0, 0, "abcdefgh", 8, FRONT_H2G_PING_BURST, FRONT_H2G_PING_RATE,
	    FRONT_H2G_PING_FLOOD, 0);
	/* the preface's SETTINGS took the first token */
	flood_case(T_SETTINGS, 0, 0, "\0\x04\0\x01\0\0", 6, FRONT_H2G_SETTINGS_BURST,
	    FRONT_H2G_SETTINGS_RATE, FRONT_H2G_SETTINGS_FLOOD, 1);
	flood_case(T_WU, 0, 0, wu, 4, FRONT_H2G_WINDOW_UPDATE_BURST, FRONT_H2G_WINDOW_UPDATE_RATE,
	    FRONT_H2G_WINDOW_UPDATE_FLOOD, 0);
	flood_case(T_WU, 0, 1, wu, 4, FRONT_H2G_WINDOW_UPDATE_BURST, FRONT_H2G_WINDOW_UPDATE_RATE,
	    FRONT_H2G_WINDOW_UPDATE_FLOOD, 0);
	flood_case(T_PRIORITY, 0, 3, prio, 5, FRONT_H2G_PRIORITY_BURST, FRONT_H2G_PRIORITY_RATE,
	    FRONT_H2G_PRIORITY_FLOOD, 0);
	flood_case(T_DATA, 0, 1, NULL, 0, FRONT_H2G_EMPTY_DATA_BURST, FRONT_H2G_EMPTY_DATA_RATE,
	    FRONT_H2G_EMPTY_DATA_FLOOD, 0);
	/* padding only is empty too */
	flood_case(T_DATA, F_PADDED, 1, "\x03xyz", 4, FRONT_H2G_EMPTY_DATA_BURST,
	    FRONT_H2G_EMPTY_DATA_RATE, FRONT_H2G_EMPTY_DATA_FLOOD, 0);
	flood_case(0x10, 0, 0, "x", 1, FRONT_H2G_UNKNOWN_BURST, FRONT_H2G_UNKNOWN_RATE,
	    FRONT_H2G_UNKNOWN_FLOOD, 0);
}
END_TEST

/* A busy connection: 100,000 RPCs in one second, each with the PING and
 * WINDOW_UPDATEs a grpc client sends as it reads the response. Its streams
 * earn it that budget; the same frames without streams are a flood. */
START_TEST(busy_connection_earns_control_frames)
{
	static const uint8_t wu[] = { 0, 0, 0x10, 0 };
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	uint32_t id = 1;
	int i;

	started(&g, &l);
	for (i = 0; i < 100000; i++, id += 2) {
		int64_t t = i / 100; /* 100 RPCs per ms */

		ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, id, "\x83", 1, t), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_DATA, F_ES, id, "d", 1, t), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, t), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_WU, 0, 0, wu, 4, t), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_WU, 0, id, wu, 4, t), FRONT_H2G_OK);
	}
	/* No more streams: the time budget alone is left. */
	for (i = 0; i <= FRONT_H2G_PING_BURST + 10; i++)
		if (send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 1000) != FRONT_H2G_OK)
			break;
	ck_assert_int_le(i, FRONT_H2G_PING_BURST + 1);
	ck_assert_int_eq(front_h2g_verdict(&g), FRONT_H2G_PING_FLOOD);
}
END_TEST

/* ACKs, DATA with a payload or END_STREAM and GOAWAY are not rate-limited. */
START_TEST(uncounted_frames)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	int i;

	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
	for (i = 0; i < 100000; i++) {
		ck_assert_int_eq(send_frame(&g, T_PING, F_ACK, 0, "abcdefgh", 8, 0), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_SETTINGS, F_ACK, 0, NULL, 0, 0), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_DATA, 0, 1, "d", 1, 0), FRONT_H2G_OK);
		ck_assert_int_eq(send_frame(&g, T_DATA, F_ES, 1, NULL, 0, 0), FRONT_H2G_OK);
	}
	/* A bucket with burst 0 is off. */
	l.ping.burst = 0;
	started(&g, &l);
	for (i = 0; i < 100000; i++)
		ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 0), FRONT_H2G_OK);
	/* A clock going back refills nothing and breaks nothing. */
	l = lims();
	started(&g, &l);
	for (i = 0; i < FRONT_H2G_PING_BURST; i++)
		ck_assert_int_eq(
		    send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 1000000 - i), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "abcdefgh", 8, 0), FRONT_H2G_PING_FLOOD);
}
END_TEST

struct bad_frame {
	const char *what;
	unsigned type, flags;
	uint32_t id;
	const char *pl;
	size_t n;
};

START_TEST(protocol_errors)
{
	static const struct bad_frame cases[] = {
		{ "CONTINUATION without a block", T_CONT, F_EH, 1, "\x83", 1 },
		{ "PING of 7", T_PING, 0, 0, "1234567", 7 },
		{ "PING ACK of 9", T_PING, F_ACK, 0, "123456789", 9 },
		{ "PING on a stream", T_PING, 0, 1, "12345678", 8 },
		{ "RST_STREAM of 5", T_RST, 0, 1, "\0\0\0\x08\0", 5 },
		{ "RST_STREAM on stream 0", T_RST, 0, 0, "\0\0\0\x08", 4 },
		{ "RST_STREAM on an idle stream", T_RST, 0, 3, "\0\0\0\x08", 4 },
		{ "RST_STREAM on an even stream", T_RST, 0, 2, "\0\0\0\x08", 4 },
		{ "WINDOW_UPDATE of 3", T_WU, 0, 0, "\0\0\x01", 3 },
		{ "WINDOW_UPDATE on an idle stream", T_WU, 0, 9, "\0\0\0\x01", 4 },
		{ "SETTINGS of 7", T_SETTINGS, 0, 0, "\0\x04\0\0\0\x01\0", 7 },
		{ "SETTINGS ACK with payload", T_SETTINGS, F_ACK, 0, "\0\x04\0\0\0\x01", 6 },
		{ "SETTINGS on a stream", T_SETTINGS, 0, 1, "", 0 },
		{ "PRIORITY on stream 0", T_PRIORITY, 0, 0, "\0\0\0\x01\x10", 5 },
		{ "PRIORITY of 4", T_PRIORITY, 0, 3, "\0\0\0\x01", 4 },
		{ "HEADERS on an even stream", T_HEADERS, F_EH, 4, "\x83", 1 },
		{ "HEADERS on stream 0", T_HEADERS, F_EH, 0, "\x83", 1 },
		{ "HEADERS PADDED of 0", T_HEADERS, F_EH | F_PADDED, 3, "", 0 },
		{ "HEADERS padding past the end", T_HEADERS, F_EH | F_PADDED, 3, "\x05\x83\x84",
		    3 },
		{ "HEADERS PRIORITY of 3", T_HEADERS, F_EH | F_PRIO, 3, "\0\0\0", 3 },
		{ "HEADERS PADDED PRIORITY short", T_HEADERS, F_EH | F_PADDED | F_PRIO, 3,
		    "\x01\0\0\0\0\x10", 6 },
		{ "DATA on stream 0", T_DATA, 0, 0, "x", 1 },
		{ "DATA on an idle stream", T_DATA, 0, 3, "x", 1 },
		{ "DATA padding past the end", T_DATA, F_PADDED, 1, "\x02x", 2 },
		{ "PUSH_PROMISE from a client", T_PUSH, F_EH, 1, "\0\0\0\x02\x83", 5 },
		{ "GOAWAY of 4", T_GOAWAY, 0, 0, "\0\0\0\0", 4 },
		{ "GOAWAY on a stream", T_GOAWAY, 0, 1, "\0\0\0\0\0\0\0\0", 8 },
	};
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_frame *c = &cases[i];

		started(&g, &l);
		ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
		ck_assert_msg(
		    send_frame(&g, c->type, c->flags, c->id, c->pl, c->n, 0) == FRONT_H2G_PROTOCOL,
		    "%s: %s", c->what, front_h2g_reason(front_h2g_verdict(&g)));
	}

	/* Frames interrupting a header block, or a CONTINUATION of another stream. */
	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, "\x83", 1, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_PING, 0, 0, "12345678", 8, 0), FRONT_H2G_PROTOCOL);
	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, "\x83", 1, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_DATA, 0, 1, "x", 1, 0), FRONT_H2G_PROTOCOL);
	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, "\x83", 1, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_CONT, F_EH, 3, "\x83", 1, 0), FRONT_H2G_PROTOCOL);

	/* Over max_frame_size: SETTINGS, GOAWAY and unknown frames (only the
	 * header is sent: the cut comes before the payload). */
	{
		static const unsigned types[] = { T_SETTINGS, T_GOAWAY, 0x20 };
		struct bb b = { 0 };

		for (i = 0; i < 3; i++) {
			started(&g, &l);
			b.n = 0;
			frame_hdr(
			    &b, FRONT_H2G_MAX_FRAME_SIZE + 6 - 4, types[i], 0, 0); /* % 6 == 0 */
			ck_assert_int_eq(front_h2g_feed(&g, b.p, b.n, 0), FRONT_H2G_PROTOCOL);
		}
		/* DATA is not capped: grpc may advertise a larger frame size. */
		started(&g, &l);
		ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 1, "\x83", 1, 0), FRONT_H2G_OK);
		b.n = 0;
		frame_hdr(&b, 0xffffff, T_DATA, 0, 1);
		ck_assert_int_eq(front_h2g_feed(&g, b.p, b.n, 0), FRONT_H2G_OK);
		bb_free(&b);
	}
}
END_TEST

START_TEST(hpack_integers_and_blocks)
{
	static const struct {
		const char *what;
		const char *blk;
		size_t n;
		enum front_h2g_verdict v;
	} cases[] = {
		{ "6 continuation bytes", "\xff\x80\x80\x80\x80\x80\x01", 7,
		    FRONT_H2G_HPACK_MALFORMED },
		{ "6 continuation bytes, small value", "\xff\x80\x80\x80\x80\x80\x00", 7,
		    FRONT_H2G_HPACK_MALFORMED },
		{ "index over 2^32-1", "\xff\xff\xff\xff\xff\x0f", 6, FRONT_H2G_HPACK_MALFORMED },
		{ "index 2^32-1", "\xff\x80\xff\xff\xff\x0f", 6, FRONT_H2G_OK },
		{ "5 continuation bytes", "\xff\x80\x80\x80\x80\x01", 6, FRONT_H2G_OK },
		{ "indexed 0", "\x80", 1, FRONT_H2G_HPACK_MALFORMED },
		{ "size update 4096", "\x3f\xe1\x1f\x83", 4, FRONT_H2G_OK },
		{ "block ends inside a string", "\x44\x05/pay", 6, FRONT_H2G_HPACK_MALFORMED },
		{ "block ends inside an integer", "\x83\xff\x80", 3, FRONT_H2G_HPACK_MALFORMED },
		{ "block ends before a value", "\x40\x02te", 4, FRONT_H2G_HPACK_MALFORMED },
		{ "empty name and value", "\x40\x00\x00", 3, FRONT_H2G_OK },
		{ "string length 2^32", "\x40\x7f\x81\xff\xff\xff\x0f", 7,
		    FRONT_H2G_HPACK_MALFORMED },
		{ "empty block", "", 0, FRONT_H2G_OK },
	};
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct bb b = { 0 };
		uint64_t off;

		preface(&b);
		frame(&b, T_HEADERS, F_EH, 1, cases[i].blk, cases[i].n);
		ck_assert_msg(verdict_any_split(b.p, b.n, &off) == cases[i].v, "%s", cases[i].what);
		bb_free(&b);
	}
	/* A string and an integer split across HEADERS and CONTINUATION, and
	 * across CONTINUATIONs, walk as one block. */
	started(&g, &l);
	ck_assert_int_eq(send_frame(&g, T_HEADERS, 0, 1, "\x83\x44\x0a/payme", 9, 0), FRONT_H2G_OK);
	ck_assert_int_eq(send_frame(&g, T_CONT, 0, 1, "nt/x\x0f\xff", 6, 0), FRONT_H2G_OK);
	ck_assert_int_eq(
	    send_frame(&g, T_CONT, F_EH, 1, "\x10\x03\x61\x62\x63", 5, 0), FRONT_H2G_OK);
	/* the next block starts afresh: its first byte is a representation */
	ck_assert_int_eq(send_frame(&g, T_HEADERS, F_EH, 3, "\xbe", 1, 0), FRONT_H2G_OK);
	/* trailers on an open stream do not open a stream */
	ck_assert_int_eq(
	    send_frame(&g, T_HEADERS, F_EH | F_ES, 3, "\x40\x00\x00", 3, 0), FRONT_H2G_OK);
	ck_assert_uint_eq(front_h2g_streams_opened(&g), 2);
	ck_assert_uint_eq(front_h2g_last_stream(&g), 3);
}
END_TEST

START_TEST(reasons_and_codes)
{
	int i, j;

	for (i = 0; i < FRONT_H2G_NVERDICTS; i++) {
		const char *r = front_h2g_reason((enum front_h2g_verdict)i);
		size_t k;

		ck_assert_ptr_nonnull(r);
		ck_assert_uint_gt(strlen(r), 1);
		for (k = 0; r[k] != '\0'; k++)
			ck_assert((r[k] >= 'a' && r[k] <= 'z') || r[k] == '_');
		for (j = 0; j < i; j++)
			ck_assert_str_ne(r, front_h2g_reason((enum front_h2g_verdict)j));
	}
	ck_assert_str_eq(front_h2g_reason(FRONT_H2G_OK), "ok");
	ck_assert_str_eq(front_h2g_reason(FRONT_H2G_RAPID_RESET), "rapid_reset");
	ck_assert_str_eq(front_h2g_reason(FRONT_H2G_HEADER_TOO_LARGE), "header_too_large");
	ck_assert_str_eq(front_h2g_reason(FRONT_H2G_NVERDICTS), "unknown");
	ck_assert_uint_eq(front_h2g_goaway_code(FRONT_H2G_OK), 0);
	ck_assert_uint_eq(front_h2g_goaway_code(FRONT_H2G_PROTOCOL), FRONT_H2_PROTOCOL_ERROR);
	ck_assert_uint_eq(front_h2g_goaway_code(FRONT_H2G_BAD_PREFACE), FRONT_H2_PROTOCOL_ERROR);
	ck_assert_uint_eq(
	    front_h2g_goaway_code(FRONT_H2G_HPACK_MALFORMED), FRONT_H2_COMPRESSION_ERROR);
	ck_assert_uint_eq(front_h2g_goaway_code(FRONT_H2G_RAPID_RESET), FRONT_H2_ENHANCE_YOUR_CALM);
	ck_assert_uint_eq(
	    front_h2g_goaway_code(FRONT_H2G_HPACK_LITERAL_TOO_LARGE), FRONT_H2_ENHANCE_YOUR_CALM);
}
END_TEST

START_TEST(goaway_bytes)
{
	static const uint8_t want[FRONT_H2G_GOAWAY_LEN] = { 0, 0, 8, 7, 0, 0, 0, 0, 0, 0x12, 0x34,
		0x56, 0x79, 0, 0, 0, 0x0b };
	uint8_t out[FRONT_H2G_GOAWAY_LEN];
	struct front_h2g_out o;

	memset(out, 0xaa, sizeof(out));
	/* the reserved bit of the stream id is cleared */
	ck_assert_uint_eq(front_h2g_goaway(out, 0x92345679u, FRONT_H2_ENHANCE_YOUR_CALM), 17);
	ck_assert_mem_eq(out, want, sizeof(want));
	/* it is one whole frame to the outbound tracker */
	front_h2g_out_init(&o);
	front_h2g_out_feed(&o, out, sizeof(out));
	ck_assert(front_h2g_out_at_boundary(&o));
	ck_assert_uint_eq(front_h2g_out_frames(&o), 1);
}
END_TEST

START_TEST(outbound_boundaries)
{
	static const uint8_t settings[] = { 0, 3, 0, 0, 0, 100, 0, 6, 0, 0, 0x40, 0 };
	struct bb b = { 0 }, h = { 0 };
	uint8_t *bound;
	uint32_t seed = 7;
	int round;
	size_t i;

	/* grpc's side of a call: SETTINGS, ACK, HEADERS, DATA, trailers, a
	 * RST_STREAM, a PING and a big DATA. */
	frame(&b, T_SETTINGS, 0, 0, settings, sizeof(settings));
	frame(&b, T_SETTINGS, F_ACK, 0, NULL, 0);
	frame(&b, T_HEADERS, F_EH, 1,
	    "\x88\x5f\x10"
	    "application/grpc",
	    19);
	frame(&b, T_DATA, 0, 1, "\0\0\0\0\x02\x08\x01", 7);
	frame(&b, T_HEADERS, F_EH | F_ES, 1, "\x40\x0bgrpc-status\x01\x30", 15);
	frame(&b, T_RST, 0, 3, "\0\0\0\x08", 4);
	frame(&b, T_PING, 0, 0, "12345678", 8);
	padding_headers(&h, 40000);
	frame(&b, T_DATA, 0, 5, h.p, h.n);
	/* where the frames end: 0, then after each */
	bound = calloc(b.n + 1, 1);
	ck_assert_ptr_nonnull(bound);
	for (i = 0; i < b.n;) {
		bound[i] = 1;
		i += 9 + ((size_t)b.p[i] << 16 | (size_t)b.p[i + 1] << 8 | b.p[i + 2]);
	}
	ck_assert_uint_eq(i, b.n);
	bound[b.n] = 1;

	for (round = 0; round < 50; round++) {
		struct front_h2g_out o;
		size_t at = 0;

		front_h2g_out_init(&o);
		ck_assert(front_h2g_out_at_boundary(&o));
		ck_assert_uint_eq(front_h2g_out_until_boundary(&o), 0);
		while (at < b.n) {
			size_t k, u;

			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % (round < 25 ? 20 : 5000);
			if (k > b.n - at)
				k = b.n - at;
			front_h2g_out_feed(&o, b.p + at, k);
			at += k;
			ck_assert_int_eq(front_h2g_out_at_boundary(&o), bound[at]);
			/* Forwarding what until_boundary says, again and again,
			 * lands exactly on the next boundary. */
			if (round % 2 == 1) {
				while ((u = front_h2g_out_until_boundary(&o)) > 0) {
					ck_assert(!bound[at]);
					ck_assert_uint_le(at + u, b.n);
					front_h2g_out_feed(&o, b.p + at, u);
					at += u;
				}
				ck_assert(bound[at]);
				ck_assert(front_h2g_out_at_boundary(&o));
			}
		}
		ck_assert_uint_eq(front_h2g_out_frames(&o), 8);
		ck_assert_uint_eq(front_h2g_out_rst_streams(&o), 1);
	}
	free(bound);
	bb_free(&b);
	bb_free(&h);
}
END_TEST

/* ---- the cut (front_h2cut.c) ------------------------------------------- */

struct cut_run {
	struct bb out;
	struct front_h2cut_stats st;
	int settled_before_end;
};

/* The guard reads pre (all passed on), the cut starts there and filters
 * post in chunks of 1..max_chunk bytes (0: at once). */
static struct cut_run
cut_run(const struct bb *pre, const struct bb *post, size_t max_chunk, uint32_t seed)
{
	struct front_h2g_limits l = lims();
	struct front_h2g g;
	struct front_h2cut c;
	struct cut_run r;
	uint8_t buf[256 + FRONT_H2G_FRAME_HDR];
	size_t i = 0;

	memset(&r, 0, sizeof(r));
	front_h2g_init(&g, &l);
	ck_assert_int_eq(front_h2g_feed(&g, pre->p, pre->n, 0), FRONT_H2G_OK);
	front_h2cut_init(&c, &g);
	front_h2cut_stats(&c, &r.st);
	r.settled_before_end = r.st.settled;
	while (i < post->n) {
		size_t k = post->n - i;

		if (max_chunk > 0) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % max_chunk;
		}
		if (k > 256)
			k = 256;
		if (k > post->n - i)
			k = post->n - i;
		bb_put(&r.out, buf, front_h2cut_apply(&c, post->p + i, k, buf));
		i += k;
	}
	front_h2cut_stats(&c, &r.st);
	ck_assert(r.st.settled);
	return r;
}

/* Every split gives want, and the counters of the whole-buffer run. */
static struct cut_run
cut_check(const struct bb *pre, const struct bb *post, const struct bb *want)
{
	struct cut_run whole = cut_run(pre, post, 0, 0);
	size_t chunk;
	uint32_t seed;

	ck_assert_uint_eq(whole.out.n, want->n);
	ck_assert(want->n == 0 || memcmp(whole.out.p, want->p, want->n) == 0);
	for (chunk = 1; chunk <= 40; chunk += 13) {
		for (seed = 1; seed < 6; seed++) {
			struct cut_run r = cut_run(pre, post, chunk, seed);

			ck_assert_uint_eq(r.out.n, want->n);
			ck_assert(want->n == 0 || memcmp(r.out.p, want->p, want->n) == 0);
			ck_assert_uint_eq(r.st.streams_passed, whole.st.streams_passed);
			ck_assert_uint_eq(r.st.streams_dropped, whole.st.streams_dropped);
			ck_assert_uint_eq(r.st.frames_dropped, whole.st.frames_dropped);
			ck_assert_uint_eq(r.st.last_passed, whole.st.last_passed);
			bb_free(&r.out);
		}
	}
	bb_free(&whole.out);
	return whole;
}

static void
cut_case_free(struct bb *pre, struct bb *post, struct bb *want)
{
	bb_free(pre);
	bb_free(post);
	bb_free(want);
}

START_TEST(cut_at_boundary_drops_later_streams)
{
	static const uint8_t msg[] = { 0, 0, 0, 0, 2, 0x0a, 0 };
	static const uint8_t wu[] = { 0, 0, 1, 0 };
	static const uint8_t ping[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t rst[] = { 0, 0, 0, 8 };
	static const uint8_t prio[] = { 0, 0, 0, 0, 16 };
	struct bb pre = { 0 }, post = { 0 }, want = { 0 }, h = { 0 };
	struct cut_run r;

	preface(&pre);
	grpc_request(&pre, 1, 0, 0);
	grpc_request_block(&h, 1);
	frame(&pre, T_HEADERS, F_EH, 3, h.p, h.n); /* stream 3: its DATA comes later */

	frame(&post, T_DATA, F_ES, 3, msg, sizeof(msg)); /* passed stream: passes */
	frame(&want, T_DATA, F_ES, 3, msg, sizeof(msg));
	frame(&post, T_PING, 0, 0, ping, sizeof(ping)); /* stream 0: passes */
	frame(&want, T_PING, 0, 0, ping, sizeof(ping));
	frame(&post, T_HEADERS, 0, 5, h.p, 2); /* later streams: dropped whole */
	frame(&post, T_CONT, F_EH, 5, h.p + 2, h.n - 2);
	frame(&post, T_DATA, F_ES, 5, msg, sizeof(msg));
	frame(&post, T_WU, 0, 5, wu, sizeof(wu));
	frame(&post, T_RST, 0, 5, rst, sizeof(rst));
	frame(&post, T_WU, 0, 0, wu, sizeof(wu)); /* the connection's window: passes */
	frame(&want, T_WU, 0, 0, wu, sizeof(wu));
	frame(&post, T_SETTINGS, F_ACK, 0, NULL, 0);
	frame(&want, T_SETTINGS, F_ACK, 0, NULL, 0);
	grpc_request(&post, 7, 1, 0);
	frame(&post, T_PRIORITY, 0, 9, prio, sizeof(prio));
	frame(&post, T_RST, 0, 1, rst, sizeof(rst)); /* a passed stream again */
	frame(&want, T_RST, 0, 1, rst, sizeof(rst));

	r = cut_check(&pre, &post, &want);
	ck_assert(r.settled_before_end);
	ck_assert_uint_eq(r.st.streams_passed, 2);
	ck_assert_uint_eq(r.st.last_passed, 3);
	ck_assert_uint_eq(r.st.streams_dropped, 2);        /* 5 and 7 */
	ck_assert_uint_eq(r.st.frames_dropped, 5 + 2 + 1); /* stream 5's, 7's, 9's */
	cut_case_free(&pre, &post, &want);
	bb_free(&h);
}
END_TEST

START_TEST(cut_inside_a_header_passes_that_frame)
{
	struct bb all = { 0 }, pre = { 0 }, post = { 0 }, want = { 0 };
	struct cut_run r;
	size_t split, at;

	preface(&all);
	grpc_request(&all, 1, 0, 0);
	at = all.n;
	grpc_request(&all, 3, 1, 1); /* HEADERS + CONTINUATION + DATA */
	split = at + 4;              /* 4 bytes of stream 3's HEADERS header passed */
	bb_put(&pre, all.p, split);
	bb_put(&post, all.p + split, all.n - split);
	bb_put(&want, all.p + split, all.n - split);
	grpc_request(&post, 5, 1, 0);

	r = cut_check(&pre, &post, &want);
	ck_assert(!r.settled_before_end);          /* it may still open a stream */
	ck_assert_uint_eq(r.st.streams_passed, 2); /* 1, and 3 which began before the cut */
	ck_assert_uint_eq(r.st.last_passed, 3);
	ck_assert_uint_eq(r.st.streams_dropped, 1);
	ck_assert_uint_eq(r.st.frames_dropped, 2);
	bb_free(&all);
	cut_case_free(&pre, &post, &want);
}
END_TEST

START_TEST(cut_inside_a_payload_and_the_preface)
{
	struct bb all = { 0 }, pre = { 0 }, post = { 0 }, want = { 0 };
	struct cut_run r;
	size_t split;

	/* Inside stream 1's DATA: the rest of it passes, stream 3 does not. */
	preface(&all);
	grpc_request(&all, 1, 0, 0);
	split = all.n - 4;
	bb_put(&pre, all.p, split);
	bb_put(&post, all.p + split, 4);
	bb_put(&want, all.p + split, 4);
	grpc_request(&post, 3, 1, 0);
	r = cut_check(&pre, &post, &want);
	ck_assert_uint_eq(r.st.streams_passed, 1);
	ck_assert_uint_eq(r.st.streams_dropped, 1);
	ck_assert_uint_eq(r.st.frames_dropped, 2);
	cut_case_free(&pre, &post, &want); /* and zeroes them for reuse */

	/* Inside the preface: the preface and SETTINGS pass, stream 1 not. */
	bb_put(&pre, all.p, 10);
	bb_put(&post, all.p + 10, all.n - 10);
	bb_put(&want, all.p + 10, FRONT_H2G_PREFACE_LEN - 10 + 9 + 12);
	r = cut_check(&pre, &post, &want);
	ck_assert(r.settled_before_end);
	ck_assert_uint_eq(r.st.streams_passed, 0);
	ck_assert_uint_eq(r.st.last_passed, 0);
	ck_assert_uint_eq(r.st.streams_dropped, 1);
	bb_free(&all);
	cut_case_free(&pre, &post, &want);
}
END_TEST

Suite *
front_h2guard_suite(void)
{
	Suite *s = suite_create("front_h2guard");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, valid_exchange_passes_any_split);
	tcase_add_test(tc, bad_preface);
	tcase_add_test(tc, two_gib_literal_cut_early);
	tcase_add_test(tc, header_block_over_limit_across_continuations);
	tcase_add_test(tc, continuation_flood);
	tcase_add_test(tc, rapid_reset_cut_within_burst);
	tcase_add_test(tc, slow_resets_are_fine);
	tcase_add_test(tc, bucket_refill_is_exact);
	tcase_add_test(tc, rapid_reset_window);
	tcase_add_test(tc, repeated_rst_is_rst_flood);
	tcase_add_test(tc, floods);
	tcase_add_test(tc, busy_connection_earns_control_frames);
	tcase_add_test(tc, uncounted_frames);
	tcase_add_test(tc, protocol_errors);
	tcase_add_test(tc, hpack_integers_and_blocks);
	tcase_add_test(tc, reasons_and_codes);
	tcase_add_test(tc, goaway_bytes);
	tcase_add_test(tc, outbound_boundaries);
	suite_add_tcase(s, tc);
	tc = tcase_create("cut");
	tcase_add_test(tc, cut_at_boundary_drops_later_streams);
	tcase_add_test(tc, cut_inside_a_header_passes_that_frame);
	tcase_add_test(tc, cut_inside_a_payload_and_the_preface);
	suite_add_tcase(s, tc);
	return s;
}
