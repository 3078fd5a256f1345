/* SPDX-License-Identifier: MIT */
/*
 * config.c — table-driven configuration (see config.h).
 *
 * Each variable has a type, a default, a range and one line of help. Values
 * are validated here, once, so the rest of the daemon can trust them.
 */
#include "config.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum ctype { C_STR, C_INT, C_DBL, C_BOOL, C_LEVEL, C_FORMAT };

struct cvar {
	const char *name;
	enum ctype type;
	size_t off;
	size_t size; /* for strings */
	const char *def;
	double min, max;
	const char *help;
};

/* Brace-initializer macros, one line each (clang-format would split them). */
// clang-format off
#define S(n, f, d, h)  { n, C_STR, offsetof(struct config, f), sizeof(((struct config *)0)->f), d, 0, 0, h }
#define I(n, f, d, lo, hi, h) { n, C_INT, offsetof(struct config, f), 0, d, lo, hi, h }
#define D(n, f, d, lo, hi, h) { n, C_DBL, offsetof(struct config, f), 0, d, lo, hi, h }
#define B(n, f, d, h)  { n, C_BOOL, offsetof(struct config, f), 0, d, 0, 1, h }
// clang-format on

static const struct cvar vars[] = {
	S("DATABASE_URL", database_url, "postgresql://paymentd@127.0.0.1:5432/paymentd",
	    "PostgreSQL connection URI (libpq syntax; postgresql+asyncpg:// is accepted)"),
	S("REDIS_URL", redis_url, "redis://localhost:6379/0",
	    "Redis for rate limiting: redis://[:password@]host:port/db"),
	S("REDPANDA_BROKERS", brokers, "localhost:19092",
	    "Kafka/Redpanda bootstrap servers, comma separated"),
	S("GRPC_HOST", grpc_host, "0.0.0.0", "Address the supervisor listens on"),
	I("GRPC_PORT", grpc_port, "50051", 1, 65535,
	    "gRPC port (HTTP/2 over TLS, or cleartext with TLS=off)"),
	I("MAX_WORKERS", max_workers, "64", 1, 4096,
	    "Concurrent connections (one worker process each); more wait in the backlog"),
	I("WORKER_POOL_SIZE", worker_pool_size, "4", 0, 4096,
	    "Pre-forked idle workers kept connected to Postgres"),
	I("WORKER_IDLE_TIMEOUT_SECONDS", worker_idle_timeout_s, "300", 1, 86400,
	    "A connection with no RPC for this long is closed (GOAWAY)"),
	I("WORKER_MAX_AGE_SECONDS", worker_max_age_s, "3600", 1, 604800,
	    "A connection older than this is drained and closed"),
	I("SHUTDOWN_GRACE_SECONDS", shutdown_grace_s, "10", 0, 3600,
	    "How long in-flight RPCs may run after SIGTERM"),
	I("MAX_CONCURRENT_STREAMS", max_concurrent_streams, "100", 1, 10000,
	    "HTTP/2 streams per connection"),
	B("TLS", tls, "on",
	    "TLS on the gRPC port; off (cleartext) only on loopback unless ALLOW_INSECURE=on"),
	S("TLS_CERT_FILE", tls_cert_file, "",
	    "Server certificate chain (PEM, leaf first; RSA or ECDSA); re-read on SIGHUP"),
	S("TLS_KEY_FILE", tls_key_file, "",
	    "Server private key (PEM); read only by the key-holder process, never by a worker"),
	S("TLS_CLIENT_CA_FILE", tls_client_ca_file, "",
	    "CA bundle (PEM) client certificates must chain to (mTLS)"),
	S("TLS_CLIENT_AUTH", tls_client_auth, "require",
	    "Client certificates: none, request (verified if sent) or require (mTLS)"),
	S("TLS_MIN_VERSION", tls_min_version, "1.2", "Lowest TLS version accepted: 1.2 or 1.3"),
	B("ALLOW_INSECURE", allow_insecure, "off",
	    "Allow TLS=off on a non-loopback GRPC_HOST (logged as a warning at every start)"),
	I("MAX_HEADER_BYTES", max_header_bytes, "16384", 1024, 1048576,
	    "Largest HTTP/2 header block a client may send (declared or actual); GOAWAY beyond"),
	I("HANDSHAKE_TIMEOUT_SECONDS", handshake_timeout_s, "5", 1, 300,
	    "Deadline for the TLS handshake and the HTTP/2 preface + SETTINGS of a connection"),
	I("FIRST_RPC_TIMEOUT_SECONDS", first_rpc_timeout_s, "30", 1, 86400,
	    "A connection that has not started an RPC this long after it opened is closed"),
	I("STREAM_IDLE_TIMEOUT_SECONDS", stream_idle_timeout_s, "120", 1, 86400,
	    "Health Watch and reflection streams without a message this long are closed"),
	I("MAX_CONNECTIONS_PER_IP", max_connections_per_ip, "16", 0, 100000,
	    "Connections (workers) one source address may hold at once (0: no cap)"),
	I("CONNECTION_RATE_PER_IP", connection_rate_per_ip, "20", 0, 1000000,
	    "New connections per second one source address may open, sustained (0: no limit)"),
	I("CONNECTION_BURST_PER_IP", connection_burst_per_ip, "40", 1, 1000000,
	    "Burst of new connections one source address may open above that rate"),
	I("WORKER_MAX_MEMORY_MB", worker_max_memory_mb, "512", 0, 1048576,
	    "Address-space limit of each worker (RLIMIT_AS; 0: none; ignored under ASan)"),
	I("WORKER_CPU_BUDGET_SECONDS", worker_cpu_budget_s, "30", 0, 86400,
	    "CPU seconds a worker may burn without completing an RPC before it is killed (0: off)"),
	S("WORKER_SCHED_POLICY", worker_sched_policy, "batch",
	    "Scheduling policy of the workers: batch (SCHED_BATCH: a woken worker thread does not preempt the one running, so a saturated host spends its CPU on payments rather than on switches) or other (SCHED_OTHER, the kernel default)"),
	I("ABUSE_PENALTY_SECONDS", abuse_penalty_s, "10", 0, 86400,
	    "An address whose connection the HTTP/2 frame guard cut off is refused this long (0: never; behind a NAT or load balancer every client shares it)"),
	S("AUTH_MODE", auth_mode, "any",
	    "Who may call: token (Bearer pd_...), mtls (client certificate), any (either), or none (every caller is the client legacy; only with TLS=off on loopback or ALLOW_INSECURE)"),
	I("AUTH_CACHE_SECONDS", auth_cache_s, "5", 0, 5,
	    "A worker reuses a credential's lookup this long: a revoked token or client fails within this bound"),
	I("AUTH_FAILURES_PER_MINUTE", auth_failures_per_minute, "20", 0, 1000000,
	    "Failed authentications one source address may make per minute before it is refused without a lookup (0: no limit)"),
	B("REFLECTION_PUBLIC", reflection_public, "off",
	    "Serve gRPC reflection to unauthenticated callers (health is always open)"),
	I("IDEMPOTENCY_KEY_TTL_SECONDS", idempotency_ttl_s, "86400", 1, 31536000,
	    "How long an idempotency key is remembered"),
	I("DB_RETRY_MAX", db_retry_max, "10", 0, 1000,
	    "Retries of a payment on serialization/deadlock failure"),
	I("HOLD_TTL_SECONDS", hold_ttl_s, "604800", 60, 2592000,
	    "Lifetime of a MANUAL payment's hold when the request sets no hold_ttl_seconds (at most 30 days)"),
	B("JANITOR", janitor, "on",
	    "Run the janitor: expires holds past hold_expires_at and deletes expired idempotency keys"),
	D("JANITOR_INTERVAL_SECONDS", janitor_interval_s, "1.0", 0.05, 3600,
	    "Pause between the janitor's rounds when it found nothing to do"),
	I("JANITOR_BATCH_SIZE", janitor_batch_size, "500", 1, 100000,
	    "Holds expired, and idempotency keys deleted, per janitor transaction"),
	S("FUNDING_CURRENCIES", funding_currencies, "USD,EUR",
	    "Currencies `paymentd migrate` keeps a funding account (acc-equity-<ccy>) for"),
	{ "LOG_LEVEL", C_LEVEL, offsetof(struct config, log_level), 0, "INFO", 0, 0,
	    "DEBUG, INFO, WARNING or ERROR" },
	{ "LOG_FORMAT", C_FORMAT, offsetof(struct config, log_format), 0, "json", 0, 0,
	    "json or console" },
	I("METRICS_PORT", metrics_port, "9090", 0, 65535, "Prometheus /metrics port (0 disables)"),
	S("METRICS_HOST", metrics_host, "127.0.0.1",
	    "Address both /metrics endpoints listen on (empty: same as GRPC_HOST)"),
	S("PAYMENTD_USER", user, "paymentd", "Unprivileged user the workers and relay run as"),
	S("PAYMENTD_CHROOT", chroot_dir, "/var/lib/paymentd/empty",
	    "Empty directory workers chroot into"),
	B("SANDBOX", sandbox, "on",
	    "Privilege drop + seccomp for workers (off only for debugging)"),
	B("SANDBOX_DEBUG", sandbox_debug, "off",
	    "Log seccomp violations instead of killing (debugging only)"),
	B("RATE_LIMIT_ENABLED", rate_limit_enabled, "on", "Redis sliding-window rate limiting"),
	B("RATE_LIMIT_FAIL_OPEN", rate_limit_fail_open, "on",
	    "Let requests through while Redis is unreachable"),
	I("RATE_LIMIT_WINDOW_SECONDS", rate_limit_window_s, "1", 1, 3600, "Sliding window length"),
	I("RATE_LIMIT_DEFAULT", rate_limit_default, "1000", 0, 100000000,
	    "Requests per window per client for methods not in RATE_LIMITS (0: unlimited)"),
	S("RATE_LIMITS", rate_limits, "",
	    "Per-method limits, e.g. AuthorizePayment=100,GetPayment=500"),
	I("OUTBOX_BATCH_SIZE", outbox_batch_size, "100", 1, 10000, "Outbox rows read per batch"),
	D("OUTBOX_POLL_INTERVAL_SECONDS", outbox_poll_interval_s, "1.0", 0.001, 3600,
	    "Outbox poll interval when idle"),
	I("OUTBOX_MAX_RETRIES", outbox_max_retries, "5", 0, 1000,
	    "Attempts before an event goes to the DLQ"),
	D("OUTBOX_BASE_DELAY_SECONDS", outbox_base_delay_s, "0.5", 0.001, 3600,
	    "First retry delay (doubles, with jitter)"),
	D("OUTBOX_MAX_DELAY_SECONDS", outbox_max_delay_s, "30", 0.001, 86400, "Retry delay cap"),
	S("KAFKA_TOPIC_PREFIX", topic_prefix, "payments",
	    "Topic = prefix + '.' + lowercased event type"),
	S("RELAY_JOURNAL_PATH", journal_path, "/var/lib/payment-relay/journal.db",
	    "SQLite WAL journal of the relay"),
	I("RELAY_METRICS_PORT", relay_metrics_port, "9091", 0, 65535,
	    "payment-relay's own /metrics port (0 disables); binds METRICS_HOST"),
	I("RELAY_LEASE_SECONDS", relay_lease_s, "5", 1, 300,
	    "Relay leadership lease: a standby takes over this long after the leader stops renewing"),
	S("RELAY_TRANSACTIONAL_ID", relay_txn_id, "",
	    "Kafka transactional.id shared by a deployment's relays (empty: payment-relay:<database>)"),
	I("RELAY_TRANSACTION_TIMEOUT_SECONDS", relay_txn_timeout_s, "60", 1, 900,
	    "Kafka transaction timeout of a window (also bounds a message's local wait)"),
	S("MIGRATIONS_DIR", migrations_dir, PAYMENTD_MIGRATIONS_DIR,
	    "Directory of NNNN_name.sql migrations"),
};

static int
set_var(struct config *c, const struct cvar *v, const char *val, char *err, size_t errlen)
{
	char *p = (char *)c + v->off;
	char *end;

	switch (v->type) {
	case C_STR: {
		size_t n = strlen(val);
		if (n >= v->size) {
			snprintf(err, errlen, "%s: value too long (%zu bytes, at most %zu)",
			    v->name, n, v->size - 1);
			return -1;
		}
		memcpy(p, val, n + 1);
		return 0;
	}
	case C_INT: {
		int64_t x;
		if (util_parse_i64(val, (int64_t)v->min, (int64_t)v->max, &x) < 0) {
			snprintf(err, errlen, "%s: invalid value \"%.64s\" (integer %.0f..%.0f)",
			    v->name, val, v->min, v->max);
			return -1;
		}
		*(int *)p = (int)x;
		return 0;
	}
	case C_DBL: {
		double x;
		errno = 0;
		x = strtod(val, &end);
		/* strtod skips leading blanks; reject them as util_parse_i64 does. */
		if (errno || end == val || isspace((unsigned char)*val) || *end != '\0' ||
		    !isfinite(x) || x < v->min || x > v->max) {
			snprintf(err, errlen, "%s: invalid value \"%.64s\" (number %g..%g)",
			    v->name, val, v->min, v->max);
			return -1;
		}
		*(double *)p = x;
		return 0;
	}
	case C_BOOL:
		if (!strcasecmp(val, "on") || !strcasecmp(val, "true") || !strcmp(val, "1") ||
		    !strcasecmp(val, "yes"))
			*(int *)p = 1;
		else if (!strcasecmp(val, "off") || !strcasecmp(val, "false") ||
		    !strcmp(val, "0") || !strcasecmp(val, "no"))
			*(int *)p = 0;
		else {
			snprintf(err, errlen,
			    "%s: invalid value \"%.64s\" (on/off, true/false, 1/0)", v->name, val);
			return -1;
		}
		return 0;
	case C_LEVEL: {
		int l = log_parse_level(val);
		if (l < 0) {
			snprintf(err, errlen,
			    "%s: invalid value \"%.64s\" (DEBUG, INFO, WARNING, ERROR)", v->name,
			    val);
			return -1;
		}
		*(int *)p = l;
		return 0;
	}
	case C_FORMAT:
		if (!strcasecmp(val, "json"))
			*(int *)p = LOG_FORMAT_JSON;
		else if (!strcasecmp(val, "console"))
			*(int *)p = LOG_FORMAT_CONSOLE;
		else {
			snprintf(err, errlen, "%s: invalid value \"%.64s\" (json or console)",
			    v->name, val);
			return -1;
		}
		return 0;
	}
	abort();
}

int
cfg_set(struct config *c, const char *key, const char *val, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (strcmp(vars[i].name, key) == 0)
			return set_var(c, &vars[i], val, err, errlen);
	return 1; /* not ours: ignored */
}

void
cfg_defaults(struct config *c)
{
	char err[256];
	size_t i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (set_var(c, &vars[i], vars[i].def, err, sizeof(err)) != 0)
			abort(); /* a default outside its own range is a bug */
}

static int
known(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (strcmp(vars[i].name, key) == 0)
			return 1;
	return 0;
}

int
cfg_parse_env_buf(
    struct config *c, const char *buf, size_t len, int skip_env, char *err, size_t errlen)
{
	size_t pos = 0;
	int lineno = 0;

	while (pos < len) {
		char line[1024], key[128], *val, *eq, *s, *e;
		size_t n = 0;

		lineno++;
		while (pos < len && buf[pos] != '\n') {
			if (n + 1 < sizeof(line))
				line[n++] = buf[pos];
			else {
				snprintf(err, errlen, ".env line %d: longer than %zu bytes", lineno,
				    sizeof(line) - 1);
				return -1;
			}
			if (buf[pos] == '\0') {
				snprintf(err, errlen, ".env line %d: NUL byte", lineno);
				return -1;
			}
			pos++;
		}
		pos++;
		line[n] = '\0';
		if (n && line[n - 1] == '\r')
			line[--n] = '\0';
		s = line;
		while (*s != '\0' && isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if (strncmp(s, "export ", 7) == 0)
			s += 7;
		eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, errlen, ".env line %d: expected KEY=VALUE", lineno);
			return -1;
		}
		e = eq;
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		if ((size_t)(e - s) >= sizeof(key) || e == s) {
			snprintf(err, errlen, ".env line %d: bad variable name", lineno);
			return -1;
		}
		memcpy(key, s, (size_t)(e - s));
		key[e - s] = '\0';
		val = eq + 1;
		while (isspace((unsigned char)*val))
			val++;
		if (*val == '"' || *val == '\'') {
			char q = *val++;
			char *close = strrchr(val, q);
			if (close == NULL) {
				snprintf(err, errlen, ".env line %d: unterminated quote", lineno);
				return -1;
			}
			*close = '\0';
		} else {
			/* Unquoted: strip a trailing " # comment" and blanks. */
			char *h = strstr(val, " #");
			if (h)
				*h = '\0';
			e = val + strlen(val);
			while (e > val && isspace((unsigned char)e[-1]))
				*--e = '\0';
		}
		if (skip_env && getenv(key) != NULL)
			continue;
		if (!known(key))
			continue; /* other tools' variables may share the file */
		if (cfg_set(c, key, val, err, errlen) < 0) {
			char tmp[512];
			snprintf(tmp, sizeof(tmp), ".env line %d: %s", lineno, err);
			snprintf(err, errlen, "%s", tmp);
			return -1;
		}
	}
	return 0;
}

static void
normalize_db_url(struct config *c)
{
	/* The Python service used SQLAlchemy URLs; libpq wants plain ones. */
	static const char *prefixes[] = { "postgresql+asyncpg://", "postgresql+psycopg://",
		"postgresql+psycopg2://", "postgres+asyncpg://" };
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (strncmp(c->database_url, prefixes[i], pl) == 0) {
			char tmp[sizeof(c->database_url)];
			snprintf(tmp, sizeof(tmp), "postgresql://%s", c->database_url + pl);
			memcpy(c->database_url, tmp, sizeof(tmp));
			return;
		}
	}
}

static int
db_url_is_uri(const char *u)
{
	return strncmp(u, "postgresql://", 13) == 0 || strncmp(u, "postgres://", 11) == 0;
}

/* The value of `key` in DATABASE_URL, into out (1), or 0 if it is not
 * there: a query parameter of a URI, or a keyword of a conninfo string
 * ("host=a,b port=1,2", values optionally single-quoted). Only read for
 * the check below; libpq parses the URL for real (and reports its own
 * syntax errors at connect). */
static int
db_url_param(const char *u, const char *key, char *out, size_t outlen)
{
	size_t kl = strlen(key), n;
	const char *p, *k, *v;

	if (db_url_is_uri(u)) {
		for (p = strchr(u, '?'); p != NULL; p = strchr(p, '&')) {
			p++;
			if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
				n = strcspn(p + kl + 1, "&");
				snprintf(out, outlen, "%.*s", (int)n, p + kl + 1);
				return 1;
			}
		}
		return 0;
	}
	for (p = u;;) {
		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			return 0;
		k = p;
		p += strcspn(p, "= \t\r\n");
		n = (size_t)(p - k);
		p += strspn(p, " \t\r\n");
		if (*p != '=')
			return 0;
		p++;
		p += strspn(p, " \t\r\n");
		if (*p == '\'') {
			v = ++p;
			while (*p != '\0' && !(*p == '\'' && p[-1] != '\\'))
				p++;
		} else {
			v = p;
			p += strcspn(p, " \t\r\n");
		}
		if (n == kl && strncmp(k, key, kl) == 0) {
			snprintf(out, outlen, "%.*s", (int)(p - v), v);
			return 1;
		}
		if (*p == '\'')
			p++;
	}
}

/* How many hosts DATABASE_URL names: libpq tries them in order. */
static int
db_url_hosts(const char *u)
{
	char hosts[sizeof(((struct config *)0)->database_url)];
	const char *a, *at;
	size_t n, i;
	int count = 1;

	if (db_url_param(u, "host", hosts, sizeof(hosts)) ||
	    db_url_param(u, "hostaddr", hosts, sizeof(hosts))) {
		for (i = 0; hosts[i] != '\0'; i++)
			count += hosts[i] == ',';
		return count;
	}
	if (!db_url_is_uri(u))
		return 1;
	a = strstr(u, "://") + 3;
	n = strcspn(a, "/?");
	at = memrchr(a, '@', n);
	if (at != NULL) {
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	for (i = 0; i < n; i++)
		count += a[i] == ',';
	return count;
}

/*
 * A DATABASE_URL with several hosts (a primary and its standbys) must say
 * target_session_attrs=read-write (or primary): libpq's default, any,
 * takes the first host that answers, a standby too, and every payment
 * would then fail there as a read-only transaction. With it, a fresh
 * connection skips hosts that are down or in recovery, which is how
 * workers find the new primary after a failover.
 */
static int
check_db_url(const struct config *c, char *err, size_t errlen)
{
	char tsa[32] = "";
	const char *env = getenv("PGTARGETSESSIONATTRS");
	int hosts = db_url_hosts(c->database_url);

	if (hosts < 2)
		return 0;
	if (!db_url_param(c->database_url, "target_session_attrs", tsa, sizeof(tsa)) && env != NULL)
		snprintf(tsa, sizeof(tsa), "%s", env);
	if (strcmp(tsa, "read-write") == 0 || strcmp(tsa, "primary") == 0)
		return 0;
	snprintf(err, errlen,
	    "DATABASE_URL: names %d hosts but target_session_attrs is \"%.20s\", not read-write "
	    "or primary: libpq would connect to whichever host answers first, a standby too; "
	    "add target_session_attrs=read-write (URI: ?target_session_attrs=read-write)",
	    hosts, tsa[0] ? tsa : "any");
	return -1;
}

int
cfg_load(struct config *c, char *err, size_t errlen)
{
	const char *path = getenv("ENV_FILE");
	FILE *f;
	size_t i;

	cfg_defaults(c);
	f = fopen(path ? path : ".env", "r");
	if (f != NULL) {
		char buf[65536];
		size_t n = fread(buf, 1, sizeof(buf), f);
		int bad = ferror(f) || !feof(f);
		fclose(f);
		if (bad) {
			snprintf(err, errlen, "ENV_FILE %s: unreadable or larger than %zu bytes",
			    path ? path : ".env", sizeof(buf));
			return -1;
		}
		if (cfg_parse_env_buf(c, buf, n, 1, err, errlen) < 0)
			return -1;
	} else if (path != NULL) {
		snprintf(err, errlen, "ENV_FILE %s: %s", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i].name);
		if (v != NULL && set_var(c, &vars[i], v, err, errlen) < 0)
			return -1;
	}
	normalize_db_url(c);
	if (check_db_url(c, err, errlen) < 0)
		return -1;
	if (c->worker_pool_size > c->max_workers) {
		snprintf(err, errlen, "WORKER_POOL_SIZE: %d exceeds MAX_WORKERS (%d)",
		    c->worker_pool_size, c->max_workers);
		return -1;
	}
	if (strcmp(c->tls_client_auth, "none") != 0 && strcmp(c->tls_client_auth, "request") != 0 &&
	    strcmp(c->tls_client_auth, "require") != 0) {
		snprintf(err, errlen,
		    "TLS_CLIENT_AUTH: invalid value \"%.32s\" (none, request or require)",
		    c->tls_client_auth);
		return -1;
	}
	if (strcmp(c->worker_sched_policy, "batch") != 0 &&
	    strcmp(c->worker_sched_policy, "other") != 0) {
		snprintf(err, errlen,
		    "WORKER_SCHED_POLICY: invalid value \"%.32s\" (batch or other)",
		    c->worker_sched_policy);
		return -1;
	}
	if (strcmp(c->tls_min_version, "1.2") != 0 && strcmp(c->tls_min_version, "1.3") != 0) {
		snprintf(err, errlen, "TLS_MIN_VERSION: invalid value \"%.32s\" (1.2 or 1.3)",
		    c->tls_min_version);
		return -1;
	}
	if (strcmp(c->auth_mode, "none") != 0 && strcmp(c->auth_mode, "token") != 0 &&
	    strcmp(c->auth_mode, "mtls") != 0 && strcmp(c->auth_mode, "any") != 0) {
		snprintf(err, errlen,
		    "AUTH_MODE: invalid value \"%.32s\" (none, token, mtls or any)", c->auth_mode);
		return -1;
	}
	if (strcmp(c->auth_mode, "none") == 0 && c->tls) {
		snprintf(err, errlen,
		    "AUTH_MODE: none needs TLS=off (a TLS deployment authenticates its callers)");
		return -1;
	}
	if (strcmp(c->auth_mode, "mtls") == 0 &&
	    (!c->tls || strcmp(c->tls_client_auth, "none") == 0)) {
		snprintf(err, errlen,
		    "AUTH_MODE: mtls needs TLS=on and TLS_CLIENT_AUTH request or "
		    "require");
		return -1;
	}
	if (c->outbox_base_delay_s > c->outbox_max_delay_s) {
		snprintf(err, errlen,
		    "OUTBOX_BASE_DELAY_SECONDS: must not exceed OUTBOX_MAX_DELAY_SECONDS");
		return -1;
	}
	return 0;
}

void
cfg_print_table(int markdown)
{
	size_t i;

	if (markdown)
		printf("| Variable | Default | Accepted | Description |\n|---|---|---|---|\n");
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const struct cvar *v = &vars[i];
		char range[64];

		switch (v->type) {
		case C_INT: snprintf(range, sizeof(range), "%.0f..%.0f", v->min, v->max); break;
		case C_DBL: snprintf(range, sizeof(range), "%g..%g", v->min, v->max); break;
		case C_BOOL: snprintf(range, sizeof(range), "on/off"); break;
		case C_LEVEL: snprintf(range, sizeof(range), "DEBUG/INFO/WARNING/ERROR"); break;
		case C_FORMAT: snprintf(range, sizeof(range), "json/console"); break;
		default: snprintf(range, sizeof(range), "string, < %zu bytes", v->size); break;
		}
		if (markdown)
			if (v->def[0] != '\0')
				printf(
				    "| `%s` | `%s` | %s | %s |\n", v->name, v->def, range, v->help);
			else /* an empty code span renders as two backticks */
				printf("| `%s` | (empty) | %s | %s |\n", v->name, range, v->help);
		else
			printf("%-30s %-45s %-26s %s\n", v->name, v->def, range, v->help);
	}
}
