/* SPDX-License-Identifier: MIT */
/*
 * relay_metrics.c — GET /metrics for payment-relay (see relay_metrics.h).
 *
 * One thread serves scrapes through http_min.c (every connection side by
 * side from one poll() loop, each with its own deadline, so idle sockets
 * cannot hold a scrape back) from a snapshot the main loop publishes; it
 * never touches Postgres, Kafka or the journal. The counters are the
 * relay's own view (what it published, dead-lettered and recovered since
 * it started); paymentd's exporter shows the outbox table's view (totals
 * across relay restarts).
 */
#include "relay_metrics.h"
#include "common/http_min.h"
#include "common/log.h"
#include "common/util.h"
#include "common/version.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#define RENDER_MAX 8192
/* A burst of connects (a scrape behind many idle sockets) must not
 * overflow the accept queue: a dropped SYN costs the client a second. */
#define LISTEN_BACKLOG 128

/* The main loop's last published numbers; the mutex is only ever held for
 * a struct copy, so neither side waits on the other's work. */
static pthread_mutex_t M_lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay_metrics_snapshot M = { 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, -1 };

static struct http_min_server *server;

int
relay_metrics_listen(const char *host, int port, char *err, size_t errlen)
{
	if (port <= 0) {
		if (errlen)
			err[0] = '\0';
		return -1;
	}
	return util_tcp_listen(host, port, LISTEN_BACKLOG, "RELAY_METRICS_PORT", err, errlen);
}

void
relay_metrics_update(const struct relay_metrics_snapshot *s)
{
	pthread_mutex_lock(&M_lock);
	M = *s;
	pthread_mutex_unlock(&M_lock);
}

static void
snap(struct relay_metrics_snapshot *s)
{
	pthread_mutex_lock(&M_lock);
	*s = M;
	pthread_mutex_unlock(&M_lock);
}

/* Appends to buf at *off; keeps counting past the end so the caller sees
 * how much was needed. */
static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*off < len ? buf + *off : NULL, *off < len ? len - *off : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n;
}

size_t
relay_metrics_render(
    const struct relay_metrics_snapshot *s, const char *version, char *buf, size_t len)
{
	const struct {
		const char *name, *help;
		uint64_t v;
	} counters[] = {
		{ "published_events_total", "Events this process published to their topic.",
		    s->published },
		{ "dead_lettered_events_total", "Events this process sent to the DLQ.", s->dlq },
		{ "windows_total", "Windows settled (read, journaled, produced, marked).",
		    s->windows },
		{ "recovered_events_total",
		    "Events of interrupted windows resolved from the journal and the broker.",
		    s->recovered },
		{ "failed_publish_attempts_total",
		    "Events whose publish failed and will be retried.", s->failures },
		{ "lease_takeovers_total",
		    "Leases this process took over from another (expired) relay.", s->takeovers },
	};
	size_t off = 0, i;

	put(buf, len, &off,
	    "# HELP payment_relay_up 1 while the relay process serves this endpoint.\n"
	    "# TYPE payment_relay_up gauge\npayment_relay_up 1\n");
	put(buf, len, &off,
	    "# HELP payment_relay_build_info Version of payment-relay.\n"
	    "# TYPE payment_relay_build_info gauge\npayment_relay_build_info{version=\"%s\"} 1\n",
	    version);
	for (i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		put(buf, len, &off,
		    "# HELP payment_relay_%s %s\n# TYPE payment_relay_%s counter\n"
		    "payment_relay_%s %llu\n",
		    counters[i].name, counters[i].help, counters[i].name, counters[i].name,
		    (unsigned long long)counters[i].v);
	if (s->backlog >= 0)
		put(buf, len, &off,
		    "# HELP payment_relay_outbox_backlog Unpublished outbox rows at the last sample (every 10 s).\n"
		    "# TYPE payment_relay_outbox_backlog gauge\npayment_relay_outbox_backlog %lld\n",
		    (long long)s->backlog);
	put(buf, len, &off,
	    "# HELP payment_relay_last_window_timestamp_seconds When the last window was settled (0: none yet).\n"
	    "# TYPE payment_relay_last_window_timestamp_seconds gauge\npayment_relay_last_window_timestamp_seconds %.3f\n",
	    (double)s->last_window_unix_ms / 1000.0);
	put(buf, len, &off,
	    "# HELP payment_relay_waiting_for_broker 1 while a window waits for broker acknowledgements.\n"
	    "# TYPE payment_relay_waiting_for_broker gauge\npayment_relay_waiting_for_broker %d\n",
	    s->broker_waiting ? 1 : 0);
	put(buf, len, &off,
	    "# HELP payment_relay_lease_held 1 while this relay holds the outbox lease (leads), 0 as a standby.\n"
	    "# TYPE payment_relay_lease_held gauge\npayment_relay_lease_held %d\n",
	    s->lease_held ? 1 : 0);
	put(buf, len, &off,
	    "# HELP payment_relay_epoch Lease epoch this relay leads with (0: standby).\n"
	    "# TYPE payment_relay_epoch gauge\npayment_relay_epoch %lld\n",
	    (long long)s->epoch);
	if (s->fenced_exits >= 0)
		put(buf, len, &off,
		    "# HELP payment_relay_fenced_exits_total Relays of this outbox that found themselves fenced and exited (relay_lease.fenced_exits, sampled every 10 s).\n"
		    "# TYPE payment_relay_fenced_exits_total counter\npayment_relay_fenced_exits_total %lld\n",
		    (long long)s->fenced_exits);
	return off;
}

struct render_buf {
	char buf[RENDER_MAX];
};

/* Used by the serving thread only. */
static struct render_buf render_space;

static int
render_cb(void *arg, const char **body, size_t *len)
{
	struct render_buf *rb = arg;
	struct relay_metrics_snapshot s;

	snap(&s);
	*len = relay_metrics_render(&s, PAYMENTD_VERSION, rb->buf, sizeof(rb->buf));
	if (*len >= sizeof(rb->buf))
		return -1;
	*body = rb->buf;
	return 0;
}

static void *
serve(void *arg)
{
	(void)arg;
	for (;;)
		if (http_min_serve(server, -1) < 0 && errno != EINTR)
			poll(NULL, 0, 100); /* do not spin */
	return NULL;
}

int
relay_metrics_start(int fd, char *err, size_t errlen)
{
	pthread_t t;
	sigset_t block, old;
	int e;

	if (util_set_nonblock(fd, 1) < 0) {
		snprintf(err, errlen, "RELAY_METRICS_PORT: %s", strerror(errno));
		return -1;
	}
	server = http_min_server_new(fd, render_cb, &render_space);
	if (server == NULL) {
		snprintf(err, errlen, "RELAY_METRICS_PORT: %s", strerror(errno));
		return -1;
	}
	/* Signals stay with the main loop, which owns shutdown. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	e = pthread_create(&t, NULL, serve, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errlen, "RELAY_METRICS_PORT: thread: %s", strerror(e));
		return -1;
	}
	pthread_detach(t);
	return 0;
}
