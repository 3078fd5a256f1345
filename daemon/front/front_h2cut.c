/* SPDX-License-Identifier: MIT */
/*
 * front_h2cut.c — the front's cut of a client's later streams (contract in
 * front_h2cut.h): frame headers are held until complete, then the frame is
 * passed or dropped whole by its stream id. No I/O, no allocation.
 */
#include "front/front_h2cut.h"

#include <string.h>

#define T_HEADERS 0x1

static uint32_t
hdr_len(const uint8_t *h)
{
	return (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
}

static uint32_t
hdr_stream(const uint8_t *h)
{
	return ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) &
	    0x7fffffffu;
}

void
front_h2cut_init(struct front_h2cut *c, const struct front_h2g *g)
{
	struct front_h2g_pos pos;

	memset(c, 0, sizeof(*c));
	front_h2g_position(g, &pos);
	c->last_passed = front_h2g_last_stream(g);
	c->streams_passed = front_h2g_streams_opened(g);
	c->preface_left = pos.preface_left;
	c->payload_left = pos.payload_left; /* a frame already passed in part */
	c->hdr_have = c->hdr_sent = pos.hdr_have;
	memcpy(c->hdr, pos.hdr, pos.hdr_have);
}

/* A complete frame header: pass or drop the frame. Returns 1 to pass. */
static int
decide(struct front_h2cut *c)
{
	uint32_t id = hdr_stream(c->hdr);
	int opens = c->hdr[3] == T_HEADERS && id > c->last_passed;

	if (c->hdr_sent > 0 || id == 0 || id <= c->last_passed) {
		/* Begun before the cut, connection-level, or a passed stream. A
		 * HEADERS frame begun before the cut opens a passed stream. */
		if (opens) {
			c->last_passed = id;
			c->streams_passed++;
		}
		return 1;
	}
	if (opens && id > c->last_dropped) {
		c->last_dropped = id;
		c->streams_dropped++;
	}
	c->frames_dropped++;
	return 0;
}

size_t
front_h2cut_apply(struct front_h2cut *c, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;

	while (i < n) {
		size_t k;

		if (c->preface_left > 0) {
			k = n - i < c->preface_left ? n - i : c->preface_left;
			memcpy(out + o, in + i, k);
			o += k;
			i += k;
			c->preface_left -= (uint32_t)k;
			continue;
		}
		if (c->payload_left > 0) {
			k = n - i < c->payload_left ? n - i : c->payload_left;
			if (!c->drop) {
				memcpy(out + o, in + i, k);
				o += k;
			}
			i += k;
			c->payload_left -= (uint32_t)k;
			continue;
		}
		/* A frame header: bytes before the cut went out already;
		 * those after it wait until the header is whole. */
		c->hdr[c->hdr_have++] = in[i++];
		if (c->hdr_have < FRONT_H2G_FRAME_HDR)
			continue;
		c->drop = !decide(c);
		if (!c->drop) {
			memcpy(out + o, c->hdr + c->hdr_sent, FRONT_H2G_FRAME_HDR - c->hdr_sent);
			o += FRONT_H2G_FRAME_HDR - c->hdr_sent;
		}
		c->payload_left = hdr_len(c->hdr);
		c->hdr_have = c->hdr_sent = 0;
	}
	return o;
}

void
front_h2cut_stats(const struct front_h2cut *c, struct front_h2cut_stats *st)
{
	st->settled = c->hdr_sent == 0;
	st->last_passed = c->last_passed;
	st->streams_passed = c->streams_passed;
	st->streams_dropped = c->streams_dropped;
	st->frames_dropped = c->frames_dropped;
}
