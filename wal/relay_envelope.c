/*
 * relay_envelope.c — outbox row to Kafka message (see relay_envelope.h).
 */
#include "relay_envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

static int
known_type(const char *t)
{
	return t && (strcmp(t, "PaymentAuthorized") == 0 || strcmp(t, "PaymentDeclined") == 0);
}

int
relay_topic(const char *prefix, const char *event_type, char *out, size_t outlen)
{
	size_t n = strlen(prefix), i, k;

	if (n + 1 + strlen(event_type) + 1 > outlen || !*event_type)
		return -1;
	memcpy(out, prefix, n);
	out[n] = '.';
	for (i = 0, k = n + 1; event_type[i]; i++) {
		unsigned char c = (unsigned char)event_type[i];
		if (!isalnum(c) && c != '_' && c != '-')
			return -1;	/* not a legal topic character */
		out[k++] = (char)tolower(c);
	}
	out[k] = '\0';
	return 0;
}

int
relay_envelope(const struct relay_row *r, char **out, char *why, size_t whylen)
{
	json_t *payload = NULL, *env = NULL, *v;
	json_error_t je;
	int rc = -1;

	*out = NULL;
	if (!known_type(r->event_type)) {
		snprintf(why, whylen, "unknown event type '%.64s'", r->event_type ? r->event_type : "");
		goto out;
	}
	payload = json_loads(r->payload ? r->payload : "", JSON_REJECT_DUPLICATES, &je);
	if (payload == NULL) {
		snprintf(why, whylen, "payload is not JSON: %s", je.text);
		goto out;
	}
	if (!json_is_object(payload)) {
		snprintf(why, whylen, "payload is not a JSON object");
		goto out;
	}
	v = json_object_get(payload, "payment_id");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		snprintf(why, whylen, "payload lacks payment_id");
		goto out;
	}
	v = json_object_get(payload, "status");
	if (!json_is_string(v) || (strcmp(json_string_value(v), "AUTHORIZED") &&
	    strcmp(json_string_value(v), "DECLINED"))) {
		snprintf(why, whylen, "payload status must be AUTHORIZED or DECLINED");
		goto out;
	}
	if (!json_is_integer(json_object_get(payload, "amount_cents"))) {
		snprintf(why, whylen, "payload amount_cents must be an integer");
		goto out;
	}
	env = json_pack("{s:s, s:s, s:s, s:s, s:O, s:s}",
	    "event_id", r->event_id, "aggregate_type", r->aggregate_type,
	    "aggregate_id", r->aggregate_id, "event_type", r->event_type,
	    "payload", payload, "timestamp", r->created_at);
	if (env == NULL) {
		snprintf(why, whylen, "cannot build envelope");
		goto out;
	}
	*out = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (*out == NULL) {
		snprintf(why, whylen, "cannot serialize envelope");
		goto out;
	}
	rc = 0;
out:
	json_decref(payload);
	json_decref(env);
	return rc;
}

char *
relay_dlq_record(const struct relay_row *r, const char *envelope, int retry_count,
    const char *failed_at, const char *error)
{
	json_t *o, *env = envelope ? json_loads(envelope, 0, NULL) : NULL;
	char *s, raw[512];

	if (env == NULL) {
		/* Poison: keep what identifies the event, not the bad payload
		 * itself in full (it may be what made it poison). */
		snprintf(raw, sizeof(raw), "%.500s", r->payload ? r->payload : "");
		env = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}",
		    "event_id", r->event_id, "aggregate_type", r->aggregate_type,
		    "aggregate_id", r->aggregate_id, "event_type", r->event_type,
		    "raw_payload", raw, "timestamp", r->created_at);
	}
	o = json_pack("{s:o, s:I, s:i, s:s, s:s}", "envelope", env,
	    "outbox_seq", (json_int_t)r->seq, "retry_count", retry_count,
	    "failed_at", failed_at, "error", error);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	return s;
}

int64_t
relay_backoff_ms(int attempt, double base_s, double max_s, uint32_t rnd)
{
	double d = base_s * 1000.0;
	double jitter;
	int i;

	for (i = 0; i < attempt && d < max_s * 1000.0; i++)
		d *= 2;
	if (d > max_s * 1000.0)
		d = max_s * 1000.0;
	/* +-25%: spread retries of many relays/events apart. */
	jitter = ((double)(rnd % 1001) / 1000.0 - 0.5) * 0.5;
	d += d * jitter;
	return d < 1 ? 1 : (int64_t)d;
}
