/* SPDX-License-Identifier: MIT */
/*
 * config.h — paymentd configuration from the environment and an optional
 * .env file (ENV_FILE, default ./.env; real environment variables win).
 *
 * Contract: cfg_load() fills every field with its default, applies the .env
 * file, then the environment, and validates each value against its range.
 * On the first bad value it returns -1 with a message naming the variable
 * and what it accepts; it never exits. The table in config.c is the single
 * source of truth: `paymentd config` prints it and the README mirrors it.
 */
#ifndef PAYMENTD_CONFIG_H
#define PAYMENTD_CONFIG_H

#include <stddef.h>

struct config {
	/* Connections. */
	char database_url[512];
	char redis_url[256];
	char brokers[512];
	/* gRPC front end and supervisor. */
	char grpc_host[64];
	int grpc_port;
	int max_workers;
	int worker_pool_size;
	int worker_idle_timeout_s;
	int worker_max_age_s;
	int shutdown_grace_s;
	int max_concurrent_streams;
	/* Transport security (issue: TLS/mTLS, front door). */
	int tls;                 /* 1: TLS on the gRPC port */
	char tls_cert_file[256]; /* PEM chain, leaf first */
	char tls_key_file[256];  /* PEM private key: read by the key-holder only */
	char tls_client_ca_file[256];
	char tls_client_auth[16]; /* none | request | require */
	char tls_min_version[8];  /* 1.2 | 1.3 */
	int allow_insecure;       /* cleartext on a non-loopback address */
	/* Front door: what a client can hold before it sends an RPC. */
	int max_header_bytes;
	int handshake_timeout_s;
	int first_rpc_timeout_s;
	int stream_idle_timeout_s;
	int max_connections_per_ip;
	int connection_rate_per_ip;
	int connection_burst_per_ip;
	int worker_max_memory_mb;
	int worker_cpu_budget_s;
	char worker_sched_policy[8]; /* batch | other */
	int abuse_penalty_s;
	/* Identity (migrations/0004_identity.sql, daemon/wrk/wrk_auth.c). */
	char auth_mode[8]; /* none | token | mtls | any */
	int auth_cache_s;
	int auth_failures_per_minute;
	int reflection_public;
	/* Payments. */
	int idempotency_ttl_s;
	int db_retry_max;
	int hold_ttl_s;
	/* Janitor (hold expiry, idempotency key purge). */
	int janitor;
	double janitor_interval_s;
	int janitor_batch_size;
	char funding_currencies[256];
	/* Logging and metrics. */
	int log_level;
	int log_format;
	int metrics_port;
	char metrics_host[64]; /* "" = same as grpc_host */
	/* Sandbox. */
	char user[64];
	char chroot_dir[256];
	int sandbox;       /* 1 on, 0 off (debug only) */
	int sandbox_debug; /* log violations instead of killing */
	/* Rate limiting. */
	int rate_limit_enabled;
	int rate_limit_fail_open;
	int rate_limit_window_s;
	char rate_limits[512]; /* "Method=N,Method=N" per window */
	int rate_limit_default;
	/* Outbox relay. */
	int outbox_batch_size;
	double outbox_poll_interval_s;
	int outbox_max_retries;
	double outbox_base_delay_s;
	double outbox_max_delay_s;
	char topic_prefix[64];
	char journal_path[256];
	int relay_metrics_port;
	int relay_lease_s;       /* leadership lease of the outbox */
	char relay_txn_id[200];  /* Kafka transactional.id; "" = payment-relay:<dbname> */
	int relay_txn_timeout_s; /* Kafka transaction.timeout.ms / 1000 */
	/* Migrations. */
	char migrations_dir[256];
};

int cfg_load(struct config *c, char *err, size_t errlen);
/* Applies one KEY=VALUE assignment; used by cfg_load and the .env parser. */
int cfg_set(struct config *c, const char *key, const char *val, char *err, size_t errlen);
void cfg_defaults(struct config *c);
/* Parses a .env buffer (KEY=VALUE lines, # comments, optional quotes,
 * optional "export "). Variables set in the real environment are skipped
 * when skip_env is true. Returns 0, or -1 with err naming the line. */
int cfg_parse_env_buf(
    struct config *c, const char *buf, size_t len, int skip_env, char *err, size_t errlen);
/* Writes the table of variables (name, default, accepted range, help). */
void cfg_print_table(int markdown);

#endif
