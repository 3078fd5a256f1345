/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — Prometheus metrics shared by every paymentd process.
 *
 * Contract: the supervisor calls metrics_create() once, before it forks
 * anything; the region is a MAP_SHARED memfd, so every worker started later
 * (forked, or exec'd with the memfd: metrics_attach) updates the same memory. Updates are single relaxed atomic adds/stores on
 * fixed-size arrays: no locks, no allocation, no syscalls, so they are safe
 * in a sandboxed worker, from any thread, and a worker killed mid-update
 * cannot leave a lock held. Every update function accepts m == NULL (a
 * no-op), so callers need no "metrics disabled" branches. Counters only go
 * up; a scrape reads them without stopping writers, so values within one
 * scrape may be a few increments apart (histogram _count and the +Inf
 * bucket are always equal because both come from the same bucket sum).
 *
 * metrics_exporter_main() is the body of the small HTTP process that
 * serves GET /metrics (metrics_http.c).
 */
#ifndef PAYMENTD_METRICS_H
#define PAYMENTD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

enum metrics_method {
	METRICS_M_AUTHORIZE_PAYMENT,
	METRICS_M_GET_PAYMENT,
	METRICS_M_GET_ACCOUNT_BALANCE,
	METRICS_M_HEALTH_CHECK,
	METRICS_M_HEALTH_WATCH,
	METRICS_M_REFLECTION,
	METRICS_M_CAPTURE_PAYMENT,
	METRICS_M_VOID_PAYMENT,
	METRICS_M_REFUND_PAYMENT,
	METRICS_M_LIST_PAYMENTS,
	METRICS_M_LIST_ACCOUNT_ENTRIES,
	METRICS_M_CREATE_ACCOUNT,
	METRICS_M_GET_ACCOUNT,
	METRICS_M_UPDATE_ACCOUNT_STATUS,
	METRICS_M_UNKNOWN,
	METRICS_NMETHODS
};

/* gRPC status codes 0..16; anything else is counted as UNKNOWN (2). */
#define METRICS_NCODES 17

struct metrics;

/* What the exporter learns at scrape time from Postgres. */
struct metrics_outbox {
	int queried;         /* 0: render no outbox lines at all */
	int up;              /* 1: the values below are valid */
	int64_t pending;     /* outbox rows with published_at IS NULL */
	double oldest_age_s; /* age of the oldest of them (0 if none) */
	/* The relay's outcomes, as recorded in the outbox itself, so every
	 * relay restart and every exporter sees the same numbers. */
	int64_t published;       /* published_at set, no error: on the broker */
	int64_t dead_lettered;   /* published_at set with last_error: in the DLQ */
	int64_t failed_attempts; /* sum of retry_count: failed publish attempts */
};

/* Shared mapping of a new memfd, zeroed; NULL with errno on failure.
 * metrics_shm_fd() is that memfd (close-on-exec): the supervisor hands it
 * to each exec'd worker, which maps it with metrics_attach(). */
struct metrics *metrics_create(void);
int metrics_shm_fd(void);
struct metrics *metrics_attach(int fd);
/* A worker reached READY us microseconds after its fork. */
void metrics_worker_started(struct metrics *m, int64_t us);
void metrics_destroy(struct metrics *m);
/* Makes this process's view read-only (the exporter only reads). */
int metrics_protect_readonly(struct metrics *m);

/* Maps a worker method short name ("AuthorizePayment", "HealthCheck",
 * "Reflection", ...) to its index; unknown names -> METRICS_M_UNKNOWN. */
enum metrics_method metrics_method_from_name(const char *name);
const char *metrics_method_name(enum metrics_method mm);

/* One finished RPC: its final gRPC status and wall time. */
void metrics_rpc(struct metrics *m, enum metrics_method mm, int grpc_code, double seconds);
/* One AuthorizePayment outcome: status is a PaymentStatus (1 AUTHORIZED,
 * 2 DECLINED, 3 DUPLICATE, others UNKNOWN), error_code a PaymentErrorCode
 * (0 NONE .. 7 ACCOUNT_INACTIVE, others UNKNOWN). */
void metrics_payment(struct metrics *m, int status, int error_code, double seconds);
void metrics_rate_limited(struct metrics *m, enum metrics_method mm);
void metrics_rl_unavailable(struct metrics *m);
/* reason: the supervisor's exit_reason() string ("ok", "db_lost", ...,
 * "cpu_budget", "reclaimed"); anything else counts as "unknown_exit". */
void metrics_worker_exit(struct metrics *m, const char *reason);
void metrics_set_workers(struct metrics *m, int active, int idle);
void metrics_connection_accepted(struct metrics *m);

/* Why a client connection ended (worker or supervisor side):
 * paymentd_connections_closed_total{reason=metrics_close_name(why)}. */
enum metrics_close {
	METRICS_CLOSE_CLIENT_CLOSED,     /* "client_closed": the client hung up */
	METRICS_CLOSE_EMPTY,             /* "empty": closed before any byte (worker pooled again) */
	METRICS_CLOSE_IDLE_TIMEOUT,      /* "idle_timeout" */
	METRICS_CLOSE_MAX_AGE,           /* "max_age" */
	METRICS_CLOSE_SIGTERM,           /* "sigterm": drained on shutdown */
	METRICS_CLOSE_DB_LOST,           /* "db_lost" */
	METRICS_CLOSE_DB_DOWN,           /* "db_down" */
	METRICS_CLOSE_HANDSHAKE_TIMEOUT, /* "handshake_timeout" */
	METRICS_CLOSE_TLS_ERROR,         /* "tls_error" */
	METRICS_CLOSE_FIRST_RPC_TIMEOUT, /* "first_rpc_timeout" */
	METRICS_CLOSE_RECLAIMED,         /* "reclaimed": SIGUSR1 in stress mode */
	METRICS_CLOSE_GUARD,             /* "guard": HTTP/2 frame guard (detail: guard family) */
	METRICS_CLOSE_PER_IP_LIMIT,      /* "per_ip_limit": MAX_CONNECTIONS_PER_IP */
	METRICS_CLOSE_ACCEPT_RATE,       /* "accept_rate": CONNECTION_RATE_PER_IP bucket empty */
	METRICS_CLOSE_NO_WORKER,         /* "no_worker": MAX_WORKERS taken, none reclaimable */
	METRICS_CLOSE_STREAM_IDLE,       /* "stream_idle": closed for STREAM_IDLE_TIMEOUT_SECONDS */
	METRICS_CLOSE_ABUSE_PENALTY,     /* "abuse_penalty": refused, address cut off for abuse */
	METRICS_NCLOSE                   /* not a reason: counted as "other" */
};
void metrics_conn_closed(struct metrics *m, enum metrics_close why);
/* Name <-> reason; an unknown name gives METRICS_NCLOSE, an out-of-range
 * reason the name "other". */
enum metrics_close metrics_close_from_name(const char *name);
const char *metrics_close_name(enum metrics_close why);

/*
 * HTTP/2 frame guard verdicts: paymentd_h2_guard_violations_total{reason}.
 * Workers count by index; the names live with the guard, which registers
 * them once with metrics_guard_labels() in the process that renders (the
 * supervisor, before it forks the exporter: the table is inherited). The
 * names are copied (up to 47 bytes each; the caller's table may be a local
 * array); n is capped at METRICS_GUARD_NREASONS; a later call replaces
 * the table. Names must be distinct and not "other": an index outside
 * 0..n-1 counts as "other", which is always rendered; unregistered, only
 * "other" is.
 */
#define METRICS_GUARD_NREASONS 16
void metrics_guard_labels(const char *const *names, int n);
void metrics_guard_abuse(struct metrics *m, int reason_index);

/* A stream reset for STREAM_IDLE_TIMEOUT_SECONDS without progress:
 * paymentd_streams_idle_closed_total. */
void metrics_stream_closed_idle(struct metrics *m);
/* A completed TLS handshake, resumed or full, and its duration:
 * paymentd_tls_handshakes_total{resumed="true|false"} and the histogram
 * paymentd_tls_handshake_seconds. */
void metrics_tls_handshake(struct metrics *m, int resumed, double seconds);
/*
 * Identity (daemon/wrk/wrk_auth.c). A call refused before any client was
 * known: paymentd_auth_failures_total{reason}. A known client refused a
 * permission: paymentd_permission_denied_total{client,reason}; the first
 * METRICS_CLIENT_SLOTS client names get their own series, later ones
 * count as client="other".
 */
enum metrics_authfail {
	METRICS_AUTHFAIL_MISSING,   /* "missing": no token, no certificate */
	METRICS_AUTHFAIL_MALFORMED, /* "malformed": not a Bearer pd_ token */
	METRICS_AUTHFAIL_UNKNOWN,   /* "unknown": no live credential matches */
	METRICS_AUTHFAIL_AMBIGUOUS, /* "ambiguous": a certificate names two clients */
	METRICS_AUTHFAIL_THROTTLED, /* "throttled": AUTH_FAILURES_PER_MINUTE reached */
	METRICS_AUTHFAIL_REVOKED,   /* "revoked": the client was revoked meanwhile */
	METRICS_NAUTHFAIL
};
enum metrics_denied {
	METRICS_DENIED_DEBIT,   /* "can_debit" */
	METRICS_DENIED_READ,    /* "can_read" */
	METRICS_DENIED_FUNDING, /* "funding_account": debit needs an admin */
	METRICS_DENIED_ADMIN,   /* "admin": the method needs an admin client */
	METRICS_NDENIED
};
#define METRICS_CLIENT_SLOTS 64
void metrics_auth_failure(struct metrics *m, enum metrics_authfail why);
void metrics_permission_denied(struct metrics *m, const char *client, enum metrics_denied why);
/* One signature made by the key-holder: paymentd_keyholder_signatures_total. */
void metrics_kh_signature(struct metrics *m);
/*
 * The janitor (daemon/jan/). A successful batch: holds it expired and keys
 * it deleted (paymentd_janitor_holds_expired_total,
 * paymentd_janitor_keys_purged_total) and when it finished, in ms since
 * the epoch (paymentd_janitor_last_success_timestamp_seconds, 0 until the
 * first). A failed one (SQL error, lost connection):
 * paymentd_janitor_errors_total.
 */
void metrics_janitor_batch(struct metrics *m, int64_t holds, int64_t keys, int64_t unix_ms);
void metrics_janitor_error(struct metrics *m);

/*
 * Renders the text exposition format 0.0.4 into buf (always NUL-terminated
 * when len > 0). version is the paymentd_build_info label (escaped here);
 * ob may be NULL (no outbox lines). Returns the length the full output
 * needs, like snprintf: a result >= len means it was truncated.
 */
size_t metrics_render(const struct metrics *m, char *buf, size_t len, const char *version,
    const struct metrics_outbox *ob);
/* Large enough for metrics_render() with any counter values. */
#define METRICS_RENDER_MAX ((size_t)128 * 1024)

/* ---- the exporter (metrics_http.c) --------------------------------- */

/*
 * Binds and listens on host:port (host "" = all addresses; a name or a
 * literal). For the supervisor, before it forks the exporter. -1 with err.
 */
int metrics_listen(const char *host, int port, char *err, size_t errlen);

/*
 * The exporter process: locks itself down (PAYMENTD_USER, seccomp profile
 * SANDBOX_EXPORTER, no chroot) unless SANDBOX=off, then serves GET
 * /metrics on listen_fd, many connections side by side (http_min.h),
 * until SIGTERM (exit 0).
 * Exits 77 if the sandbox cannot be entered (fail closed, like a worker)
 * and 70 on other setup failures. The outbox gauges come from its own
 * libpq connection to DATABASE_URL, (re)opened at scrape time.
 */
void metrics_exporter_main(const struct config *cfg, struct metrics *shm, int listen_fd)
    __attribute__((noreturn));

#endif
