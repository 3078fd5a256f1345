/* SPDX-License-Identifier: MIT */
/*
 * pay_wire.h — checks the string fields of a request on its wire bytes,
 * before protobuf-c decodes it.
 *
 * Why on the wire: protobuf-c hands a string field to C as a NUL-ended
 * char *, so "acc-payer-001\0evil" decodes to "acc-payer-001" and the two
 * keys "k\0AAA" and "k\0BBB" decode to the same "k". Every check after
 * decoding sees less than the client sent; only the wire bytes say what
 * was sent.
 *
 * Contract of pay_wire_check(d, buf, len, msg, msglen):
 *  - walks the protobuf wire format of buf[0..len) as a message of
 *    descriptor d: field numbers are looked up in d; fields of type STRING
 *    (singular, repeated or in a oneof) have their bytes checked; fields of
 *    type MESSAGE are walked with their own descriptor, at most
 *    PAY_WIRE_MAX_DEPTH messages deep; other known fields and unknown
 *    fields are skipped by their wire type; BYTES fields are not checked;
 *  - a string is rejected if it holds a C0 control (0x00..0x1F), DEL (0x7F)
 *    or a C1 control (U+0080..U+009F, UTF-8 C2 80..C2 9F); a field named
 *    "description" may hold TAB, LF and CR. UTF-8 validity is not judged
 *    here (pay_validate does that for the fields that reach SQL);
 *  - returns PAY_WIRE_OK (0); PAY_WIRE_REJECTED (-1) with msg naming the
 *    field's path and what was found, e.g. "payer_account_id contains a
 *    control character (0x00 at byte 13)" (byte = offset in the string),
 *    meant for INVALID_ARGUMENT verbatim; or PAY_WIRE_MALFORMED (-2) with
 *    msg saying what is wrong (bad varint, a length past the end, field
 *    number 0, a group or reserved wire type 3/4/6/7, a string or message
 *    field not length-delimited, nesting deeper than the cap) — the caller
 *    answers "malformed request";
 *  - the first problem found wins; msg is always NUL-ended (msglen > 0);
 *  - no allocation, no global state; reads at most len bytes of buf.
 */
#ifndef PAYMENTD_PAY_WIRE_H
#define PAYMENTD_PAY_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define PAY_WIRE_OK        0
#define PAY_WIRE_REJECTED  (-1)
#define PAY_WIRE_MALFORMED (-2)
#define PAY_WIRE_MAX_DEPTH 16

int pay_wire_check(
    const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, char *msg, size_t msglen);

#endif
