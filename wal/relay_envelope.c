/* SPDX-License-Identifier: MIT */
/*
 * relay_envelope.c — outbox row to message bodies (see relay_envelope.h).
 *
 * Validation is by the JSON Schemas in schemas/ themselves, compiled in
 * (relay_schema.c): anything the relay puts on an event topic validates
 * there, and the relay suites check real messages with ajv too.
 */
#include "relay_envelope.h"
#include "relay_schema.h"
#include "common/backoff.h"
#include "common/utf8.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

const char *const relay_event_types[] = { "PaymentAuthorized", "PaymentDeclined",
	"PaymentCaptured", "PaymentVoided", "PaymentExpired", "PaymentRefunded", "AccountCreated",
	"AccountStatusChanged", NULL };

int
relay_event_topic(const char *event_type)
{
	int i;

	for (i = 0; relay_event_types[i] != NULL; i++)
		if (strcmp(relay_event_types[i], event_type) == 0)
			return i;
	return -1;
}

int
relay_topic(const char *prefix, const char *event_type, char *out, size_t outlen)
{
	size_t n = strlen(prefix), i, k;

	if (!*event_type || n + 1 + strlen(event_type) + 1 > outlen)
		return -1;
	memcpy(out, prefix, n);
	out[n] = '.';
	for (i = 0, k = n + 1; event_type[i]; i++) {
		unsigned char c = (unsigned char)event_type[i];
		if (!isalnum(c) && c != '_' && c != '-')
			return -1; /* not a legal topic character */
		out[k++] = (char)tolower(c);
	}
	out[k] = '\0';
	return 0;
}

/* utf8_cut() under the name the relay's unit tests use. */
size_t
relay_utf8_cut(const char *s, size_t max)
{
	return utf8_cut(s, max);
}

static int
digits(const char *s, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* The value of two characters digits() has accepted. */
static int
two(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

int
relay_is_datetime(const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
	    !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) ||
	    s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return 0;
	if (two(s + 5) < 1 || two(s + 5) > 12 || two(s + 8) < 1 || two(s + 8) > 31 ||
	    two(s + 11) > 23 || two(s + 14) > 59 || two(s + 17) > 60)
		return 0;
	s += 19;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
	}
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
		return 1;
	return (*s == '+' || *s == '-') && digits(s + 1, 2) && s[3] == ':' && digits(s + 4, 2) &&
	    s[6] == '\0';
}

/* Appends s as a JSON string. Its source is Postgres text (valid UTF-8),
 * so only quotes, backslashes and control characters need escaping. */
static char *
put_str(char *p, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	*p++ = '"';
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			*p++ = '\\';
			*p++ = (char)ch;
		} else if (ch < 0x20) {
			*p++ = '\\';
			*p++ = 'u';
			*p++ = '0';
			*p++ = '0';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 15];
		} else {
			*p++ = (char)ch;
		}
	}
	*p++ = '"';
	return p;
}

/* Appends s without its NUL: build_envelope() terminates the whole buffer. */
static char *
put_lit(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n); /* NOLINT(bugprone-not-null-terminated-result) */
	return p + n;
}

static char *
build_envelope(const struct relay_row *r)
{
	size_t cap = 128 + strlen(r->payload) +
	    6 *
	        (strlen(r->event_id) + strlen(r->aggregate_type) + strlen(r->aggregate_id) +
	            strlen(r->event_type) + strlen(r->created_at));
	char *buf = malloc(cap), *p = buf;

	if (buf == NULL)
		return NULL;
	p = put_lit(p, "{\"event_id\":");
	p = put_str(p, r->event_id);
	p = put_lit(p, ",\"aggregate_type\":");
	p = put_str(p, r->aggregate_type);
	p = put_lit(p, ",\"aggregate_id\":");
	p = put_str(p, r->aggregate_id);
	p = put_lit(p, ",\"event_type\":");
	p = put_str(p, r->event_type);
	p = put_lit(p, ",\"payload\":");
	p = put_lit(p, r->payload);
	p = put_lit(p, ",\"timestamp\":");
	p = put_str(p, r->created_at);
	p = put_lit(p, "}");
	*p = '\0';
	return buf;
}

int
relay_envelope(const struct relay_row *r, char **out, char *why, size_t whylen)
{
	json_t *payload = NULL, *env = NULL;
	json_error_t je;
	char file[96];
	int rc = -1;

	*out = NULL;
	if (relay_schema_load(why, whylen) < 0)
		goto out;
	if (relay_event_topic(r->event_type) < 0 ||
	    relay_schema_file(r->event_type, file, sizeof(file)) < 0 || !relay_schema_has(file)) {
		snprintf(why, whylen, "unknown event type '%.64s'", r->event_type);
		goto out;
	}
	payload = json_loads(r->payload, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (payload == NULL) {
		snprintf(why, whylen, "payload is not JSON: %s", je.text);
		goto out;
	}
	/* The envelope as consumers will see it, checked against the event
	 * type's schema (which includes the envelope's). */
	env = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s}", "event_id", r->event_id,
	    "aggregate_type", r->aggregate_type, "aggregate_id", r->aggregate_id, "event_type",
	    r->event_type, "payload", payload, "timestamp", r->created_at);
	if (env == NULL) {
		snprintf(why, whylen, "the row's fields are not valid UTF-8 text");
		goto out;
	}
	if (relay_schema_check(file, env, why, whylen) < 0)
		goto out;
	/* The payload goes in as Postgres wrote it (jsonb text, just parsed
	 * and checked): re-serialising it would cost a third of the relay's
	 * CPU time for the same JSON. */
	*out = build_envelope(r);
	if (*out == NULL) {
		snprintf(why, whylen, "cannot build the envelope");
		goto out;
	}
	rc = 0;
out:
	json_decref(env);
	json_decref(payload);
	return rc;
}

char *
relay_dlq_record(const struct relay_row *r, const char *envelope, int retry_count,
    const char *failed_at, const char *error)
{
	json_t *o = NULL, *env = envelope ? json_loads(envelope, 0, NULL) : NULL;
	char *s = NULL, *errtxt = NULL;
	size_t cut;

	if (env == NULL) {
		/* Keep what identifies the event, not the whole bad payload: it
		 * may be what made the event fail (too large, say). */
		cut = utf8_cut(r->payload, RELAY_RAW_PAYLOAD_MAX);
		env = json_pack("{s:s, s:s, s:s, s:s, s:s%, s:s}", "event_id", r->event_id,
		    "aggregate_type", r->aggregate_type, "aggregate_id", r->aggregate_id,
		    "event_type", r->event_type, "raw_payload", r->payload, cut, "timestamp",
		    r->created_at);
		if (env == NULL)
			goto out;
	}
	cut = utf8_cut(error, 1000);
	errtxt = strndup(error, cut);
	if (errtxt == NULL)
		goto out;
	o = json_pack("{s:o, s:I, s:i, s:s, s:s}", "envelope", env, "outbox_seq",
	    (json_int_t)r->seq, "retry_count", retry_count, "failed_at", failed_at, "error",
	    errtxt[0] ? errtxt : "unknown error");
	env = NULL; /* "o" stole it, even on failure */
	if (o != NULL)
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(env);
	json_decref(o);
	free(errtxt);
	return s;
}

int
relay_classify(const struct relay_row *r, int max_retries, size_t max_bytes, const char *now,
    char **value, char *error, size_t errlen)
{
	/* Room left for the headers and the record batch around the value. */
	size_t limit = max_bytes > 4096 ? max_bytes - 4096 : 0;
	char why[400] = "";
	char *envelope = NULL;

	error[0] = '\0';
	if (relay_envelope(r, &envelope, why, sizeof(why)) < 0)
		snprintf(error, errlen, "invalid event: %s", why);
	else if (r->retry_count > 0 && r->retry_count >= max_retries)
		snprintf(error, errlen, "retries exhausted (%d): %s", r->retry_count,
		    r->last_error[0] ? r->last_error : "unknown error");
	else if (strncmp(r->last_error, "permanent: ", 11) == 0)
		snprintf(error, errlen, "%s", r->last_error);
	else if (strlen(envelope) > limit)
		snprintf(error, errlen, "message too large: %zu bytes (limit %zu)",
		    strlen(envelope), limit);
	if (error[0] == '\0') {
		*value = envelope;
		return 0;
	}
	/* The DLQ record repeats a valid envelope when it fits, else only the
	 * event's identity and the start of its payload. */
	*value = relay_dlq_record(r, envelope && strlen(envelope) < max_bytes / 2 ? envelope : NULL,
	    r->retry_count, now, error);
	free(envelope);
	return *value != NULL ? 1 : -1;
}

int64_t
relay_backoff_ms(int attempt, double base_s, double max_s, uint32_t rnd)
{
	double d = backoff_delay(attempt, base_s * 1000.0, max_s * 1000.0, rnd);

	return d < 1 ? 1 : (int64_t)d;
}
