/* SPDX-License-Identifier: MIT */
/*
 * wrk_auth.h — who is calling: the worker's authentication of each call
 * (AUTH_MODE) against client_credentials, with a short cache.
 *
 * Contract: wrk_auth_call() runs on the worker's dispatch thread before a
 * non-health call is served. It returns 0 with *id filled (the acting
 * client), or 1 with rep filled (UNAUTHENTICATED, RESOURCE_EXHAUSTED when
 * the source address made too many failed attempts, or UNAVAILABLE when
 * the database is gone). A successful lookup is reused for at most
 * AUTH_CACHE_SECONDS (<= 5 s): a revoked token or client fails within that
 * bound (payments check the client's status again in their own
 * transaction, so a revoked client cannot pay even inside it). Failed
 * attempts are counted per source address in Redis (rl_auth_failures) and
 * in this worker (if Redis is down or off); at AUTH_FAILURES_PER_MINUTE
 * further unknown credentials are refused without a database lookup,
 * while credentials that already succeeded on this connection go on
 * working.
 *
 * Credentials, by mode: token — `authorization: Bearer pd_…`; mtls — the
 * verified client certificate's URI/DNS SANs or SHA-256; any — a token if
 * one is sent (a bad token is not rescued by a certificate), else the
 * certificate; none — every caller is the client `legacy`, and x-client-id
 * (or the address) is the rate-limit identity, as before identities.
 */
#ifndef PAYMENTD_WRK_AUTH_H
#define PAYMENTD_WRK_AUTH_H

#include <stdint.h>
#include <grpc/grpc.h>

#include "rl/rl.h"
#include "tls/tls_peer.h"

struct wrk;
struct wrk_reply;

struct wrk_identity {
	int64_t client_id;
	char name[64];
	int is_admin;
	int limits[RL_NMETHODS];    /* per-client limits; -1: the configured one */
	char rl_key[RL_CLIENT_MAX]; /* rate-limit identity */
	const char *how;            /* "token", "mtls" or "none" */
};

struct wrk_auth;

struct wrk_auth *wrk_auth_new(void);
void wrk_auth_free(struct wrk_auth *a);

/* md: the call's metadata; peer: the connection's certificate identity;
 * addr: the source address as rl_client_identity() gives it. */
int wrk_auth_call(struct wrk_auth *a, struct wrk *w, const grpc_metadata_array *md,
    const struct tls_peer *peer, const char *addr, int64_t deadline_ms, struct wrk_identity *id,
    struct wrk_reply *rep);

/* The client was refused by the database as revoked: forget it now. */
void wrk_auth_forget(struct wrk_auth *a, int64_t client_id);

#endif
