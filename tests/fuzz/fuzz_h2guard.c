/* SPDX-License-Identifier: MIT */
/*
 * fuzz_h2guard.c — libFuzzer harness for daemon/front/front_h2guard.c, the
 * HTTP/2 frame guard every byte a TLS client sends goes through.
 *
 * Input: one mode byte, then the bytes. Mode bit 0 puts a valid preface and
 * SETTINGS frame in front (so that most inputs reach the frame and HPACK
 * code), bits 1-2 pick the limits (defaults; a 64-byte header cap; every
 * bucket off), bits 3-7 seed the split points.
 *
 * Contract: never crashes or trips ASan/UBSan; aborts (a finding) if the
 * verdict or the counters depend on how the bytes are split (whole, byte by
 * byte, random chunks), if a verdict is out of range or has no label, if a
 * violation is not sticky (a later feed changes the verdict or consumes a
 * byte), if OK does not consume everything, or if the outbound tracker's
 * boundaries differ between splits or until_boundary does not lead to one.
 * And daemon/front/front_h2cut.c, started where the guard stood after an
 * input-chosen prefix: aborts if what it passes on, or its counters, depend
 * on the split of the rest, if it writes more than it was given plus the
 * header bytes it held, or if the streams it passed and dropped disagree
 * with the guard's count of streams opened when every frame was whole.
 */
#include "front/front_h2cut.h"
#include "front/front_h2guard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	enum front_h2g_verdict v;
	uint64_t off, opened;
	uint32_t last;
	int preface;
};

static void
limits_for(unsigned mode, struct front_h2g_limits *l)
{
	front_h2g_default_limits(l, 16384);
	if (mode == 1) {
		l->max_header_bytes = 64;
		l->max_continuations = 3;
	} else if (mode == 2) {
		memset(&l->rapid_reset, 0, sizeof(l->rapid_reset));
		l->rst_stream.burst = l->ping.burst = l->settings.burst = 0;
		l->window_update.burst = l->priority.burst = l->empty_data.burst = 0;
		l->unknown.burst = 0;
	} else if (mode == 3) {
		/* tiny buckets that refill fast: exercises the refill path */
		l->ping = (struct front_h2g_rate){ 1000000, 1 };
		l->rapid_reset = (struct front_h2g_rate){ 1, 1 };
	}
}

/* Feeds p[0..n) in chunks (max_chunk 0: at once); each chunk at now_ms,
 * which advances by step per chunk. */
static struct run
feed(const struct front_h2g_limits *l, const uint8_t *p, size_t n, size_t max_chunk, uint32_t seed,
    int64_t step)
{
	struct front_h2g g;
	struct run r;
	size_t i = 0;
	int64_t now = 1000;

	front_h2g_init(&g, l);
	while (i < n) {
		size_t k = n - i;

		if (max_chunk > 0) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % max_chunk;
			if (k > n - i)
				k = n - i;
		}
		r.v = front_h2g_feed(&g, p + i, k, now);
		if (r.v != front_h2g_verdict(&g))
			abort();
		i += k;
		now += step;
	}
	r.v = front_h2g_verdict(&g);
	r.off = front_h2g_offset(&g);
	r.opened = front_h2g_streams_opened(&g);
	r.last = front_h2g_last_stream(&g);
	r.preface = front_h2g_preface_done(&g);
	if ((unsigned)r.v >= FRONT_H2G_NVERDICTS || front_h2g_reason(r.v) == NULL)
		abort();
	if (r.v == FRONT_H2G_OK ? r.off != n : (r.off == 0 || r.off > n))
		abort();
	if (r.v != FRONT_H2G_OK) {
		/* sticky: nothing more is consumed */
		if (front_h2g_feed(&g, p, n, now) != r.v || front_h2g_offset(&g) != r.off)
			abort();
	}
	return r;
}

static int
same(const struct run *a, const struct run *b)
{
	return a->v == b->v && a->off == b->off && a->opened == b->opened && a->last == b->last &&
	    a->preface == b->preface;
}

static void
check_out(const uint8_t *p, size_t n, uint32_t seed)
{
	struct front_h2g_out whole, o;
	size_t i = 0;

	front_h2g_out_init(&whole);
	front_h2g_out_feed(&whole, p, n);
	front_h2g_out_init(&o);
	while (i < n) {
		size_t k, u;

		seed = seed * 1103515245u + 12345u;
		k = 1 + (seed >> 8) % 64;
		if (k > n - i)
			k = n - i;
		front_h2g_out_feed(&o, p + i, k);
		i += k;
		u = front_h2g_out_until_boundary(&o);
		if ((u == 0) != front_h2g_out_at_boundary(&o))
			abort();
		/* Every other step, forward up to the boundary as the front does:
		 * the rest of a header, then its payload, and it is there. */
		if (seed & 0x100) {
			int steps = 0;

			while ((u = front_h2g_out_until_boundary(&o)) > 0 && u <= n - i) {
				front_h2g_out_feed(&o, p + i, u);
				i += u;
				if (++steps > 2)
					abort();
			}
		}
	}
	if (front_h2g_out_at_boundary(&o) != front_h2g_out_at_boundary(&whole) ||
	    front_h2g_out_until_boundary(&o) != front_h2g_out_until_boundary(&whole) ||
	    front_h2g_out_frames(&o) != front_h2g_out_frames(&whole) ||
	    front_h2g_out_rst_streams(&o) != front_h2g_out_rst_streams(&whole))
		abort();
}

/* The cut after p[0..at) was read by the guard, over p[at..n) in chunks
 * of 1..max_chunk (0: at once); the bytes passed on go to out. */
static size_t
cut_feed(const struct front_h2g_limits *l, const uint8_t *p, size_t n, size_t at, size_t max_chunk,
    uint32_t seed, uint8_t *out, struct front_h2cut *c)
{
	struct front_h2g g;
	size_t i = at, o = 0;

	front_h2g_init(&g, l);
	front_h2g_feed(&g, p, at, 0);
	front_h2cut_init(c, &g);
	while (i < n) {
		size_t k = n - i, w;

		if (max_chunk > 0) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 8) % max_chunk;
			if (k > n - i)
				k = n - i;
		}
		w = front_h2cut_apply(c, p + i, k, out + o);
		if (w > k + FRONT_H2G_FRAME_HDR - 1) /* at most a held header more */
			abort();
		o += w;
		i += k;
	}
	return o;
}

static void
check_cut(const struct front_h2g_limits *l, const uint8_t *p, size_t n, uint32_t seed)
{
	struct front_h2cut a, b;
	struct front_h2cut_stats sa, sb;
	struct front_h2g g;
	uint8_t *o1, *o2;
	size_t at, n1, n2;

	if (n == 0)
		return;
	at = (size_t)(seed * 2654435761u) % (n + 1);
	o1 = malloc(n + FRONT_H2G_FRAME_HDR);
	o2 = malloc(n + FRONT_H2G_FRAME_HDR);
	if (o1 == NULL || o2 == NULL)
		abort();
	n1 = cut_feed(l, p, n, at, 0, 0, o1, &a);
	n2 = cut_feed(l, p, n, at, 5, seed, o2, &b);
	front_h2cut_stats(&a, &sa);
	front_h2cut_stats(&b, &sb);
	if (n1 != n2 || memcmp(o1, o2, n1) != 0 || n1 > n - at + FRONT_H2G_FRAME_HDR ||
	    sa.streams_passed != sb.streams_passed || sa.streams_dropped != sb.streams_dropped ||
	    sa.frames_dropped != sb.frames_dropped || sa.last_passed != sb.last_passed ||
	    sa.settled != sb.settled)
		abort();
	/* A clean input read whole by the guard: every stream it saw open was
	 * either passed or dropped by the cut. */
	front_h2g_init(&g, l);
	if (front_h2g_feed(&g, p, n, 0) == FRONT_H2G_OK && sa.settled &&
	    sa.streams_passed + sa.streams_dropped != front_h2g_streams_opened(&g))
		abort();
	free(o1);
	free(o2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t start[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	                               "\x00\x00\x06\x04\x00\x00\x00\x00\x00"
	                               "\x00\x02\x00\x00\x00\x00";
	struct front_h2g_limits l;
	struct run whole, r;
	uint8_t *buf;
	size_t n, pre;
	unsigned mode;
	uint32_t seed;

	if (size == 0 || size > 1 << 20)
		return 0;
	mode = data[0];
	seed = mode >> 3;
	pre = (mode & 1) ? sizeof(start) - 1 : 0;
	n = pre + size - 1;
	buf = malloc(n ? n : 1);
	if (buf == NULL)
		abort();
	memcpy(buf, start, pre);
	memcpy(buf + pre, data + 1, size - 1);
	limits_for((mode >> 1) & 3, &l);

	whole = feed(&l, buf, n, 0, 0, 0);
	r = feed(&l, buf, n, 1, 0, 0);
	if (!same(&whole, &r))
		abort();
	r = feed(&l, buf, n, 97, seed + 1, 0);
	if (!same(&whole, &r))
		abort();
	/* With time passing per chunk, only the invariants inside feed(). */
	(void)feed(&l, buf, n, 7, seed + 2, 3);

	check_out(data + 1, size - 1, seed);
	check_cut(&l, buf, n, seed + 3);
	free(buf);
	return 0;
}
