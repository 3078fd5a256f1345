/* SPDX-License-Identifier: MIT */
/*
 * wrk_auth.c — authentication of each call (see wrk_auth.h).
 *
 * Why a cache in the worker and not in shared memory: a worker serves one
 * connection, and a connection nearly always presents one credential, so
 * a handful of slots hit on every call after the first; sharing would buy
 * nothing but a lock across sandboxes. Why the bound is short (<= 5 s):
 * it is the time a revoked token keeps working on an open connection.
 */
#include "wrk_auth.h"
#include "wrk.h"
#include "auth/auth_token.h"
#include "common/log.h"
#include "common/util.h"
#include "ledger/ledger.h"
#include "metrics/metrics.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CACHE_SLOTS 8
/* "t:" + SHA-256 hex of the token, or "m:" + the certificate's. */
#define KEY_MAX        (2 + AUTH_TOKEN_HASH_HEX)
#define FAIL_WINDOW_MS 60000

struct entry {
	char key[KEY_MAX];
	struct ledger_client c;
	int64_t at_ms; /* when the database last answered; 0: free slot */
	/* The answer was no: a client retrying with its revoked token costs
	 * one lookup per AUTH_CACHE_SECONDS, not one per call. was_good: the
	 * credential had worked (revoked, not guessed: not a failure of the
	 * address). */
	int negative, was_good;
};

struct wrk_auth {
	struct entry e[CACHE_SLOTS];
	/* Failed attempts on this connection, for when Redis cannot count. */
	int64_t fail_window_start_ms;
	int fail_count;
	int64_t throttled_until_ms;
};

struct wrk_auth *
wrk_auth_new(void)
{
	auth_token_init();
	return xcalloc(1, sizeof(struct wrk_auth));
}

void
wrk_auth_free(struct wrk_auth *a)
{
	free(a);
}

void
wrk_auth_forget(struct wrk_auth *a, int64_t client_id)
{
	size_t i;

	for (i = 0; i < CACHE_SLOTS; i++)
		if (a->e[i].at_ms != 0 && !a->e[i].negative && a->e[i].c.client_id == client_id)
			memset(&a->e[i], 0, sizeof(a->e[i]));
}

/* The value of metadata key (any length), or NULL. */
static const char *
md_find(const grpc_metadata_array *md, const char *key, size_t *len)
{
	size_t i, kl = strlen(key);

	for (i = 0; i < md->count; i++) {
		const grpc_slice *k = &md->metadata[i].key;

		if (GRPC_SLICE_LENGTH(*k) == kl && memcmp(GRPC_SLICE_START_PTR(*k), key, kl) == 0) {
			*len = GRPC_SLICE_LENGTH(md->metadata[i].value);
			return (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
		}
	}
	return NULL;
}

static struct entry *
cache_find(struct wrk_auth *a, const char *key)
{
	size_t i;

	for (i = 0; i < CACHE_SLOTS; i++)
		if (a->e[i].at_ms != 0 && strcmp(a->e[i].key, key) == 0)
			return &a->e[i];
	return NULL;
}

/* A slot for key: its own, a free one, or the least recently confirmed. */
static struct entry *
cache_slot(struct wrk_auth *a, const char *key)
{
	struct entry *e = cache_find(a, key), *old = &a->e[0];
	size_t i;

	if (e != NULL)
		return e;
	for (i = 0; i < CACHE_SLOTS; i++) {
		if (a->e[i].at_ms == 0)
			return &a->e[i];
		if (a->e[i].at_ms < old->at_ms)
			old = &a->e[i];
	}
	return old;
}

static void
fill_identity(const struct ledger_client *c, const char *how, struct wrk_identity *id)
{
	char err[128];
	size_t i;

	memset(id, 0, sizeof(*id));
	id->client_id = c->client_id;
	snprintf(id->name, sizeof(id->name), "%s", c->name);
	id->is_admin = c->is_admin;
	id->how = how;
	/* '@' cannot start an address or an AUTH_MODE=none x-client-id key of
	 * another deployment's meaning: the namespaces stay apart. */
	snprintf(id->rl_key, sizeof(id->rl_key), "@%s", c->name);
	for (i = 0; i < RL_NMETHODS; i++)
		id->limits[i] = -1;
	/* client_limits rows were validated by their CHECK constraints; an
	 * unknown method name (added by a newer release) is ignored. */
	if (c->limits[0] && rl_parse_limits(c->limits, -1, id->limits, err, sizeof(err)) < 0) {
		for (i = 0; i < RL_NMETHODS; i++)
			id->limits[i] = -1;
		log_warn("client limits not understood; configured limits apply",
		    LF_S("client", c->name), LF_S("limits", c->limits), LF_S("error", err));
	}
}

/* 1 if addr may not make another unverified attempt now. */
static int
throttled(struct wrk_auth *a, struct wrk *w, const char *addr, int64_t now, int64_t *retry_ms)
{
	int limit = wrk_config(w)->auth_failures_per_minute;

	*retry_ms = 0;
	if (limit <= 0)
		return 0;
	if (now < a->throttled_until_ms) {
		*retry_ms = a->throttled_until_ms - now;
		return 1;
	}
	if (now - a->fail_window_start_ms < FAIL_WINDOW_MS && a->fail_count >= limit) {
		*retry_ms = a->fail_window_start_ms + FAIL_WINDOW_MS - now;
		return 1;
	}
	if (rl_auth_failures(wrk_rl(w), addr, limit, 0, retry_ms) == RL_DENY) {
		a->throttled_until_ms = now + *retry_ms;
		return 1;
	}
	return 0;
}

static void
record_failure(struct wrk_auth *a, struct wrk *w, const char *addr, int64_t now)
{
	int limit = wrk_config(w)->auth_failures_per_minute;
	int64_t retry_ms = 0;

	if (limit <= 0)
		return;
	if (now - a->fail_window_start_ms >= FAIL_WINDOW_MS) {
		a->fail_window_start_ms = now;
		a->fail_count = 0;
	}
	a->fail_count++;
	if (rl_auth_failures(wrk_rl(w), addr, limit, 1, &retry_ms) == RL_DENY)
		a->throttled_until_ms = now + retry_ms;
}

static int
refuse(struct wrk *w, struct wrk_reply *rep, enum metrics_authfail why, const char *addr,
    const char *msg)
{
	metrics_auth_failure(wrk_metrics(w), why);
	log_info("call not authenticated", LF_S("peer", addr), LF_S("reason", msg));
	wrk_reply_status(rep, GRPC_STATUS_UNAUTHENTICATED, "%s", msg);
	return 1;
}

int
wrk_auth_call(struct wrk_auth *a, struct wrk *w, const grpc_metadata_array *md,
    const struct tls_peer *peer, const char *addr, int64_t deadline_ms, struct wrk_identity *id,
    struct wrk_reply *rep)
{
	const struct config *cfg = wrk_config(w);
	const char *mode = cfg->auth_mode, *authz, *how;
	const char *kind[LEDGER_CRED_MAX], *value[LEDGER_CRED_MAX];
	char key[KEY_MAX], hash[AUTH_TOKEN_HASH_HEX], err[256];
	int tokens = strcmp(mode, "token") == 0 || strcmp(mode, "any") == 0;
	int certs = strcmp(mode, "mtls") == 0 || strcmp(mode, "any") == 0;
	int64_t now = util_now_ms(), retry_ms;
	struct ledger_client c;
	struct entry *e;
	enum ledger_rc rc;
	size_t alen = 0;
	int n = 0, i, known;

	if (strcmp(mode, "none") == 0) {
		char xcid[RL_CLIENT_ID_MAX + 2];
		size_t xl = 0;
		const char *x = md_find(md, "x-client-id", &xl);

		memset(&c, 0, sizeof(c));
		c.client_id = ledger_legacy_client(wrk_ledger(w));
		snprintf(c.name, sizeof(c.name), "legacy");
		c.is_admin = 1;
		fill_identity(&c, "none", id);
		/* As before identities: the asserted x-client-id, else the
		 * address, is who the limiter counts. */
		xcid[0] = '\0';
		if (x != NULL && xl < sizeof(xcid)) {
			memcpy(xcid, x, xl);
			xcid[xl] = '\0';
		}
		rl_client_identity(xcid, addr, id->rl_key, sizeof(id->rl_key));
		return 0;
	}

	authz = tokens ? md_find(md, "authorization", &alen) : NULL;
	if (authz != NULL) {
		/* RFC 6750: the scheme is case-insensitive, one space. */
		if (alen < 7 || strncasecmp(authz, "Bearer ", 7) != 0 ||
		    !auth_token_wellformed(authz + 7, alen - 7)) {
			/* Costs no lookup, but it is a failed attempt all the
			 * same: it counts toward the address's limit. */
			record_failure(a, w, addr, now);
			return refuse(w, rep, METRICS_AUTHFAIL_MALFORMED, addr,
			    "authorization: expected \"Bearer pd_...\" with a paymentd API token");
		}
		auth_token_hash(authz + 7, alen - 7, hash);
		snprintf(key, sizeof(key), "t:%s", hash);
		kind[n] = "token";
		value[n++] = hash;
		how = "token";
	} else if (certs && peer != NULL && peer->has_cert) {
		snprintf(key, sizeof(key), "m:%s", peer->sha256);
		kind[n] = "mtls_sha256";
		value[n++] = peer->sha256;
		for (i = 0; i < peer->nuri && n < LEDGER_CRED_MAX; i++) {
			kind[n] = "mtls_uri";
			value[n++] = peer->uri[i];
		}
		for (i = 0; i < peer->ndns && n < LEDGER_CRED_MAX; i++) {
			kind[n] = "mtls_dns";
			value[n++] = peer->dns[i];
		}
		how = "mtls";
	} else {
		return refuse(w, rep, METRICS_AUTHFAIL_MISSING, addr,
		    strcmp(mode, "token") == 0 ? "no credentials: send authorization: Bearer pd_..."
		        : strcmp(mode, "mtls") == 0
		        ? "no credentials: connect with a client certificate"
		        : "no credentials: send authorization: Bearer pd_... or connect with a "
		          "client certificate");
	}

	e = cache_find(a, key);
	if (e != NULL && now - e->at_ms < (int64_t)cfg->auth_cache_s * 1000) {
		if (!e->negative) {
			fill_identity(&e->c, how, id);
			return 0;
		}
		if (!e->was_good)
			record_failure(a, w, addr, now);
		return refuse(w, rep,
		    e->was_good ? METRICS_AUTHFAIL_REVOKED : METRICS_AUTHFAIL_UNKNOWN, addr,
		    e->was_good ? "credential revoked" : "unknown or revoked credential");
	}
	/* A credential that worked on this connection is re-checked, never
	 * throttled (a stale "no" remembers whether it had worked). Only
	 * tokens can be guessed: a certificate was vouched for by the CA
	 * during the handshake. A token that worked anywhere in the last
	 * minutes (rl_auth_seen) is checked even when the address is
	 * throttled: guessing from a shared address must not lock out the
	 * clients behind it. */
	known = e != NULL && (!e->negative || e->was_good);
	if (e != NULL && e->negative)
		memset(e, 0, sizeof(*e));
	if (!known && strcmp(how, "token") == 0 && throttled(a, w, addr, now, &retry_ms) &&
	    !rl_auth_seen(wrk_rl(w), hash, 0)) {
		metrics_auth_failure(wrk_metrics(w), METRICS_AUTHFAIL_THROTTLED);
		wrk_reply_status(rep, GRPC_STATUS_RESOURCE_EXHAUSTED,
		    "too many failed authentications from this address; retry after %lld ms",
		    (long long)retry_ms);
		snprintf(rep->retry_after, sizeof(rep->retry_after), "%d",
		    (int)((retry_ms + 999) / 1000));
		return 1;
	}
	if (wrk_ledger(w) == NULL) {
		wrk_reply_status(rep, GRPC_STATUS_UNAVAILABLE,
		    "database unavailable: credentials cannot be checked; retry");
		return 1;
	}
	rc = ledger_client_lookup(wrk_ledger(w), kind, value, n, deadline_ms, &c, err, sizeof(err));
	switch (rc) {
	case LEDGER_OK:
		if (strcmp(how, "token") == 0 && !known)
			rl_auth_seen(wrk_rl(w), hash, 1);
		e = cache_slot(a, key);
		memset(e, 0, sizeof(*e));
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->c = c;
		e->at_ms = now;
		fill_identity(&c, how, id);
		return 0;
	case LEDGER_NOT_FOUND:
		/* A token that worked before (here or, within minutes, on any
		 * worker) was revoked or rotated, not guessed: its client's
		 * retries must not throttle the address and lock out the new
		 * token of the same client. */
		if (!known && strcmp(how, "token") == 0 && rl_auth_seen(wrk_rl(w), hash, 0))
			known = 1;
		if (!known)
			record_failure(a, w, addr, now);
		e = cache_slot(a, key);
		memset(e, 0, sizeof(*e));
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->at_ms = now;
		e->negative = 1;
		e->was_good = known;
		return refuse(w, rep, known ? METRICS_AUTHFAIL_REVOKED : METRICS_AUTHFAIL_UNKNOWN,
		    addr, known ? "credential revoked" : "unknown or revoked credential");
	case LEDGER_DENIED:
		record_failure(a, w, addr, now);
		return refuse(w, rep, METRICS_AUTHFAIL_AMBIGUOUS, addr, err);
	case LEDGER_UNAVAILABLE:
		wrk_db_lost(w);
		/* fall through */
	default:
		log_warn(
		    "credential lookup failed", LF_S("error", err), LF_S("rc", ledger_rc_name(rc)));
		wrk_reply_status(rep,
		    rc == LEDGER_TIMEOUT ? GRPC_STATUS_DEADLINE_EXCEEDED : GRPC_STATUS_UNAVAILABLE,
		    "credentials could not be checked (%s); retry", ledger_rc_name(rc));
		return 1;
	}
}
