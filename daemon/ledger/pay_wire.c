/* SPDX-License-Identifier: MIT */
/*
 * pay_wire.c — the wire-level string check (see pay_wire.h).
 *
 * Contract: pay_wire_check() reads the protobuf encoding itself (tags,
 * varints, lengths) and asks the protobuf-c descriptor only what a field
 * number means; it never decodes into C strings, so a NUL inside a string
 * is seen where the client put it. It is stricter than protobuf-c 1.4.1
 * where that is lax (a field number 0 kept as an unknown field, a 10th
 * varint byte above 1), so that no encoding it passes decodes two ways.
 */
#include "pay_wire.h"

#include <stdio.h>
#include <string.h>

/* Field numbers are 29 bits (protobuf encoding spec). */
#define WIRE_MAX_FIELD 0x1fffffffu

struct walk {
	const uint8_t *base; /* start of the whole request: offsets in msg */
	char *msg;
	size_t msglen;
	char path[256]; /* "payment.description": dotted field names */
	size_t pathlen;
};

/* A varint of at most 10 bytes whose value fits 64 bits. Returns its
 * length in bytes, or 0 if it is truncated or too long. */
static size_t
wire_varint(const uint8_t *p, size_t n, uint64_t *v)
{
	uint64_t x = 0;
	size_t i;

	for (i = 0; i < n && i < 10; i++) {
		/* The 10th byte carries bit 63 only. */
		if (i == 9 && p[i] > 1)
			return 0;
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

/* Appends ".name" (or "name" at the top) to the path; returns the old
 * length to restore. A path longer than the buffer is cut, not refused:
 * it only names the field in a message. */
static size_t
path_push(struct walk *w, const char *name)
{
	size_t old = w->pathlen;
	int k = snprintf(w->path + old, sizeof(w->path) - old, "%s%s", old ? "." : "", name);

	if (k > 0)
		w->pathlen = old + (size_t)k < sizeof(w->path) ? old + (size_t)k
		                                               : sizeof(w->path) - 1;
	return old;
}

static void
path_pop(struct walk *w, size_t old)
{
	w->pathlen = old;
	w->path[old] = '\0';
}

/* The bytes of one string field's value. TAB, LF and CR are text in a
 * free-form description, and nothing any id or code may carry. */
static int
check_string(struct walk *w, const ProtobufCFieldDescriptor *fd, const uint8_t *s, size_t n)
{
	int ws_ok = strcmp(fd->name, "description") == 0;
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t c = s[i];

		if ((c < 0x20 && !(ws_ok && (c == '\t' || c == '\n' || c == '\r'))) || c == 0x7f) {
			snprintf(w->msg, w->msglen,
			    "%s contains a control character (0x%02x at byte %zu)", w->path, c, i);
			return PAY_WIRE_REJECTED;
		}
		/* U+0080..U+009F are C2 80..C2 9F; C2 is never a continuation
		 * byte, so this pair is that code point wherever it stands. */
		if (c == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f) {
			snprintf(w->msg, w->msglen,
			    "%s contains a control character (U+%04X at byte %zu)", w->path,
			    (unsigned)s[i + 1], i);
			return PAY_WIRE_REJECTED;
		}
	}
	return PAY_WIRE_OK;
}

static int
walk_msg(struct walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n, int depth)
{
	const ProtobufCFieldDescriptor *fd;
	uint64_t tag, len;
	size_t pos = 0, k, at, old;
	unsigned wt;
	int rc = PAY_WIRE_OK;

	if (depth > PAY_WIRE_MAX_DEPTH) {
		snprintf(w->msg, w->msglen, "malformed protobuf: %s nests messages deeper than %d",
		    w->path, PAY_WIRE_MAX_DEPTH);
		rc = PAY_WIRE_MALFORMED;
		goto out;
	}
	while (pos < n) {
		at = (size_t)(p - w->base) + pos;
		k = wire_varint(p + pos, n - pos, &tag);
		if (k == 0) {
			snprintf(w->msg, w->msglen,
			    "malformed protobuf: bad tag varint at byte %zu", at);
			rc = PAY_WIRE_MALFORMED;
			goto out;
		}
		pos += k;
		wt = (unsigned)(tag & 7);
		if ((tag >> 3) == 0 || (tag >> 3) > WIRE_MAX_FIELD) {
			snprintf(w->msg, w->msglen,
			    "malformed protobuf: field number %llu at byte %zu",
			    (unsigned long long)(tag >> 3), at);
			rc = PAY_WIRE_MALFORMED;
			goto out;
		}
		fd = protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
		if (fd &&
		    (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) &&
		    wt != 2) {
			snprintf(w->msg, w->msglen,
			    "malformed protobuf: field %s%s%s has wire type %u, not length-delimited, at byte %zu",
			    w->path, w->pathlen ? "." : "", fd->name, wt, at);
			rc = PAY_WIRE_MALFORMED;
			goto out;
		}
		switch (wt) {
		case 0: /* varint */
			k = wire_varint(p + pos, n - pos, &len);
			if (k == 0) {
				snprintf(w->msg, w->msglen,
				    "malformed protobuf: bad varint of field %llu at byte %zu",
				    (unsigned long long)(tag >> 3), at);
				rc = PAY_WIRE_MALFORMED;
				goto out;
			}
			pos += k;
			break;
		case 1: /* fixed64 */
		case 5: /* fixed32 */
			k = wt == 1 ? 8 : 4;
			if (n - pos < k) {
				snprintf(w->msg, w->msglen,
				    "malformed protobuf: field %llu runs past the end at byte %zu",
				    (unsigned long long)(tag >> 3), at);
				rc = PAY_WIRE_MALFORMED;
				goto out;
			}
			pos += k;
			break;
		case 2: /* length-delimited */
			k = wire_varint(p + pos, n - pos, &len);
			if (k == 0 || len > n - pos - k) {
				snprintf(w->msg, w->msglen,
				    "malformed protobuf: length of field %llu runs past the end at byte %zu",
				    (unsigned long long)(tag >> 3), at);
				rc = PAY_WIRE_MALFORMED;
				goto out;
			}
			pos += k;
			if (fd && fd->type == PROTOBUF_C_TYPE_STRING) {
				old = path_push(w, fd->name);
				rc = check_string(w, fd, p + pos, (size_t)len);
				path_pop(w, old);
			} else if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
				old = path_push(w, fd->name);
				rc = walk_msg(w, (const ProtobufCMessageDescriptor *)fd->descriptor,
				    p + pos, (size_t)len, depth + 1);
				path_pop(w, old);
			}
			if (rc != PAY_WIRE_OK)
				goto out;
			pos += (size_t)len;
			break;
		default: /* 3, 4: groups (proto2 only, protobuf-c refuses them); 6, 7: none */
			snprintf(w->msg, w->msglen,
			    "malformed protobuf: wire type %u of field %llu at byte %zu", wt,
			    (unsigned long long)(tag >> 3), at);
			rc = PAY_WIRE_MALFORMED;
			goto out;
		}
	}
out:
	return rc;
}

int
pay_wire_check(
    const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
	struct walk w;
	char dummy[1];

	if (msg == NULL || msglen == 0) {
		msg = dummy;
		msglen = sizeof(dummy);
	}
	msg[0] = '\0';
	w.base = buf;
	w.msg = msg;
	w.msglen = msglen;
	w.path[0] = '\0';
	w.pathlen = 0;
	return walk_msg(&w, d, buf, len, 1);
}
