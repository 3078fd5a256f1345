/* SPDX-License-Identifier: MIT */
/*
 * relay_metrics.h — the relay's own Prometheus endpoint (RELAY_METRICS_PORT).
 *
 * Contract: relay_metrics_listen() binds the port (call it before the
 * privilege drop; a port of 0 disables it and returns -1 with no error).
 * relay_metrics_start() starts the one serving thread (after the drop,
 * before the seccomp filter, which TSYNC then applies to it too), which
 * serves any number of scrapes side by side (http_min.h); SIGTERM
 * and SIGINT stay blocked there so the main loop keeps receiving them. The
 * main loop publishes its counters with relay_metrics_update(); the thread
 * only reads a copy of them, so a scrape never waits for a window, a broker
 * or Postgres, and works best exactly when those are stuck.
 */
#ifndef PAYMENTD_RELAY_METRICS_H
#define PAYMENTD_RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct relay_metrics_snapshot {
	uint64_t published, dlq, windows, recovered, failures;
	int64_t backlog;             /* unpublished rows at the last sample; -1 unknown */
	int64_t last_window_unix_ms; /* end of the last settled window; 0 none yet */
	int broker_waiting;          /* a window is waiting for the broker */
	int lease_held;              /* this relay leads the outbox */
	int64_t epoch;               /* its lease epoch (0: standby) */
	uint64_t takeovers;          /* leases this process took from another holder */
	int64_t fenced_exits;        /* relay_lease.fenced_exits at the last sample; -1 unknown */
};

int relay_metrics_listen(const char *host, int port, char *err, size_t errlen);
int relay_metrics_start(int listen_fd, char *err, size_t errlen);
void relay_metrics_update(const struct relay_metrics_snapshot *s);
/* Renders the exposition text into buf; returns its length (>= len: too small). */
size_t relay_metrics_render(
    const struct relay_metrics_snapshot *s, const char *version, char *buf, size_t len);

#endif
