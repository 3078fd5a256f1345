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
/* reason: the supervisor's exit_reason() string ("ok", "db_lost", ...);
 * anything else counts as "unknown_exit". */
void metrics_worker_exit(struct metrics *m, const char *reason);
void metrics_set_workers(struct metrics *m, int active, int idle);
void metrics_connection_accepted(struct metrics *m);

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
 * /metrics on listen_fd, one connection at a time, until SIGTERM (exit 0).
 * Exits 77 if the sandbox cannot be entered (fail closed, like a worker)
 * and 70 on other setup failures. The outbox gauges come from its own
 * libpq connection to DATABASE_URL, (re)opened at scrape time.
 */
void metrics_exporter_main(const struct config *cfg, struct metrics *shm, int listen_fd)
    __attribute__((noreturn));

#endif
