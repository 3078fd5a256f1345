/* SPDX-License-Identifier: MIT */
/*
 * rl.h — per-client, per-method sliding-window rate limiting in Redis.
 *
 * Contract: one handle per worker process, opened after fork and before
 * the sandbox locks down (it needs connect(2) once; it never reconnects,
 * because a locked-down worker cannot open sockets). Every decision is one
 * atomic Lua script on the key "ratelimit:<method>:<client>": a ZSET log of
 * the admitted requests of the last RATE_LIMIT_WINDOW_SECONDS on Redis's
 * own clock. Rejected requests are never recorded, so they do not consume
 * quota. When Redis cannot be reached or errs, rl_check() reports
 * RL_UNAVAILABLE_ALLOW (RATE_LIMIT_FAIL_OPEN=on) or RL_UNAVAILABLE_DENY
 * (off) and logs a warning at most once per 10 s. No call blocks longer
 * than RL_TIMEOUT_MS per Redis round trip (two on the NOSCRIPT path).
 *
 * Not thread-safe: the worker calls it from its single dispatch thread.
 */
#ifndef PAYMENTD_RL_H
#define PAYMENTD_RL_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* Connect and command timeout for Redis. */
#define RL_TIMEOUT_MS 200
/* x-client-id: at most this many bytes of [A-Za-z0-9._:@/+=-]. */
#define RL_CLIENT_ID_MAX 64
/* Buffer size for rl_client_identity() (an IPv6 address fits too). */
#define RL_CLIENT_MAX (RL_CLIENT_ID_MAX + 1)

/* Methods that RATE_LIMITS may name; other names get RATE_LIMIT_DEFAULT. */
enum rl_method { RL_M_AUTHORIZE_PAYMENT, RL_M_GET_PAYMENT, RL_M_GET_ACCOUNT_BALANCE, RL_NMETHODS };

struct rl;

/* The rl_method of a short method name, or -1. */
int rl_method_index(const char *method);

enum rl_verdict { RL_ALLOW, RL_DENY, RL_UNAVAILABLE_ALLOW, RL_UNAVAILABLE_DENY };

/*
 * Validates RATE_LIMITS and REDIS_URL without touching the network, so the
 * supervisor can refuse a bad configuration at startup instead of every
 * worker failing later. 0, or -1 with err naming the variable.
 */
int rl_config_check(const struct config *cfg, char *err, size_t errlen);

/*
 * Connects to REDIS_URL (AUTH and SELECT as given), loads the script.
 * Returns 0 with a handle even when Redis is unreachable (rl_down() is then
 * true); -1 only for configuration errors (bad RATE_LIMITS or REDIS_URL).
 * With RATE_LIMIT_ENABLED=off the handle allows everything and never
 * connects.
 */
int rl_open(const struct config *cfg, struct rl **out, char *err, size_t errlen);
void rl_close(struct rl *r);

/*
 * method is the short name ("AuthorizePayment"); client comes from
 * rl_client_identity(). A limit of 0 means unlimited (no Redis call). On
 * RL_DENY sets *retry_after_ms (1 .. window length): when the oldest
 * admitted request leaves the window; otherwise sets it to 0. Transport errors (timeout, reset) mark the handle
 * down for good; an error reply (e.g. Redis OOM) fails only that request.
 */
enum rl_verdict
rl_check(struct rl *r, const char *method, const char *client, int64_t *retry_after_ms);
/* The same with the client's own limit for method (limit >= 0, from
 * client_limits; 0 = unlimited) or the configured one (limit < 0). */
enum rl_verdict rl_check_limit(
    struct rl *r, const char *method, const char *client, int limit, int64_t *retry_after_ms);
/*
 * Failed authentications from one source address (a rl_client_identity()
 * address) in the last minute, against token guessing: record = 0 only
 * asks whether addr is already at limit (RL_DENY, *retry_after_ms until a
 * failure leaves the window; nothing is written); record = 1 also counts
 * one more failure. Same Redis log as rl_check, key "authfail:<addr>".
 */
#define RL_AUTH_WINDOW_US ((int64_t)60 * 1000000)
enum rl_verdict
rl_auth_failures(struct rl *r, const char *addr, int limit, int record, int64_t *retry_after_ms);
/*
 * Credentials that authenticated recently (any worker, 10 minutes): mark
 * = 1 records cred_hash (a SHA-256 hex) as good; mark = 0 asks whether it
 * is. A throttled address still gets its known-good tokens checked, so
 * guessing from a shared (NAT) address cannot lock out the clients behind
 * it. 0 when Redis cannot say.
 */
int rl_auth_seen(struct rl *r, const char *cred_hash, int mark);
int rl_down(const struct rl *r);
/*
 * The Redis socket, or -1 when down or disabled. Redis never speaks
 * first, so an idle worker can poll it like the Postgres socket: readable
 * or hung up means the connection is gone (Redis restarted) and a fresh
 * worker should take this one's place before a client is handed to it.
 */
int rl_fd(const struct rl *r);
const char *rl_verdict_name(enum rl_verdict v);

/* ---- parsing helpers, exposed for unit tests ------------------------ */

/*
 * Parses "Method=N,Method=N" (blanks around items allowed; empty string
 * allowed) into limits[], which starts as def_limit for every method.
 * Unknown or repeated methods, empty items, and N outside 0..100000000
 * are errors naming RATE_LIMITS.
 */
int
rl_parse_limits(const char *spec, int def_limit, int limits[RL_NMETHODS], char *err, size_t errlen);

struct rl_url {
	char host[256];
	int port;
	int db;
	char user[128];     /* ACL user; empty for the default user */
	char password[256]; /* empty: no AUTH */
};
/* redis://[[user]:password@]host[:port][/db]; host may be [IPv6]; user
 * and password may be percent-encoded. -1 with err naming REDIS_URL. */
int rl_parse_url(const char *url, struct rl_url *u, char *err, size_t errlen);

/*
 * The rate-limit identity of a caller: x_client_id when present and sane
 * (1..RL_CLIENT_ID_MAX bytes of [A-Za-z0-9._:@/+=-]), else the address of
 * grpc_peer without its port ("ipv4:10.0.0.1:5555" -> "10.0.0.1",
 * "ipv6:[::1]:5555" or "ipv6:%5B::1%5D:5555" -> "::1", IPv4-mapped IPv6
 * -> the IPv4 address; "unix:..." -> "unix"). Returns 0, or -1 when
 * neither is usable (out is then "unknown": such callers share one
 * budget) or outlen < RL_CLIENT_MAX.
 */
int rl_client_identity(const char *x_client_id, const char *grpc_peer, char *out, size_t outlen);

/*
 * grpc_call_get_peer() says only "fd:N" for connections added with
 * grpc_server_add_channel_from_fd, so ask the kernel instead: formats
 * getpeername(fd) as a grpc-style peer ("ipv4:a.b.c.d:port",
 * "ipv6:[addr]:port", "unix:"). For the supervisor, on the socket it just
 * accepted (it hands the string to the worker with the socket: the
 * worker's seccomp profile does not allow getpeername). 0, or -1 with errno.
 */
int rl_peer_from_fd(int fd, char *out, size_t outlen);
/* The same from the address accept4() returned (one syscall less per
 * connection: the supervisor formats every accepted peer). */
struct sockaddr_storage;
int rl_peer_from_addr(const struct sockaddr_storage *sa, char *out, size_t outlen);

#endif
