/* SPDX-License-Identifier: MIT */
/*
 * relay_window.h — the relay's windows (relay_window.c) and the process
 * state they run on.
 *
 * Contract: the process (relay_main.c) owns one struct relay and hands it
 * to every call; relay_window.c keeps no state of its own. Before the
 * first call the process fills cfg, retry, pg (url, ident, retry), topic
 * and ident; j is open before anything but relay_window_connect() and
 * relay_window_producer(). Unrecoverable conditions (Postgres refusing,
 * the journal failing) call fatal(). "-1 when stopping": *retry->stop was
 * set while waiting.
 */
#ifndef PAYMENTD_RELAY_WINDOW_H
#define PAYMENTD_RELAY_WINDOW_H

#include <stdint.h>

#include "common/config.h"
#include "journal/journal.h"
#include "relay_kafka.h"
#include "relay_pg.h"
#include "relay_retry.h"

struct relay {
	struct config cfg;
	const struct relay_retry *retry; /* the stop flag and the backoff */
	struct relay_pg_link pg;
	struct journal *j;
	struct relay_kafka *k; /* NULL while a window replaces it */
	char topic[RELAY_NTOPICS][128];
	char ident[64];       /* application_name: host + journal */
	char txn_id[256];     /* Kafka transactional.id */
	int64_t epoch;        /* the lease epoch this relay leads with (0: standby) */
	uint64_t takeovers;   /* leases this process took from another holder */
	int64_t fenced_exits; /* relay_lease.fenced_exits at the last sample; -1 unknown */
	struct relay_cursors cur;
	uint64_t published, dlqd, windows, recovered, failures;
	int64_t next_stats_ms, next_metadata_ms, held_since_ms;
	int64_t backlog, last_window_unix_ms; /* for /metrics */
	int broker_waiting;
};

/* Postgres connected: 0, or -1 when stopping. */
int relay_window_connect(struct relay *r);
/* A new producer in r->k, its delivery reports aimed at window events: 0.
 * Transactional (r->txn_id); relay_window_txn_init() once the lease is held. */
int relay_window_producer(struct relay *r);
/* init_transactions, waiting while the broker is away: fences every older
 * producer of r->txn_id and ends its open transaction. 0, or -1 when stopping. */
int relay_window_txn_init(struct relay *r);
/* The exit of a relay that lost the lease (a zombie): says why, counts it
 * in Postgres and exits with RELAY_EXIT_FENCED, settling nothing. */
void relay_window_fenced(struct relay *r, const char *why) __attribute__((noreturn));
/* Partition counts and a journaled cursor for every partition: 0, or -1.
 * Due again at r->next_metadata_ms. */
int relay_window_metadata(struct relay *r);
/* Resolves the open window, if any — Postgres's copy, which any relay can
 * read; a journal window that disagrees with it is discarded (and said) —
 * by a read_committed scan of its partitions (why is logged): 0, or -1. */
int relay_window_recover(struct relay *r, const char *why);
/* One window: the rows handled, 0 when there was nothing to do, -2 when
 * rows are held back by a writer in flight, -1 when stopping. */
int relay_window_next(struct relay *r);
/* Hands the counters to the /metrics thread. */
void relay_window_metrics(const struct relay *r);

#endif
