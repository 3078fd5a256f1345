/* SPDX-License-Identifier: MIT */
/*
 * metrics.c — the shared counters and their text rendering (see metrics.h).
 *
 * Every series of every metric is rendered from the start, at 0: the label
 * sets are small fixed enums, and a series that appears only at its first
 * event hides that event from rate()/increase() and from alerts written as
 * "increase(...) > 0". Histogram sums are kept as integer nanoseconds so a
 * single atomic add updates them (a double would need a CAS loop).
 */
#include "metrics.h"
#include "common/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBUCKETS 14
static const double bucket_le[NBUCKETS] = {
	0.0005,
	0.001,
	0.0025,
	0.005,
	0.01,
	0.025,
	0.05,
	0.1,
	0.25,
	0.5,
	1,
	2.5,
	5,
	10,
};
/* As rendered in the le label (exactly the configured bounds). */
static const char *const bucket_le_str[NBUCKETS] = {
	"0.0005",
	"0.001",
	"0.0025",
	"0.005",
	"0.01",
	"0.025",
	"0.05",
	"0.1",
	"0.25",
	"0.5",
	"1",
	"2.5",
	"5",
	"10",
};

static const char *const method_names[METRICS_NMETHODS] = {
	"AuthorizePayment",
	"GetPayment",
	"GetAccountBalance",
	"HealthCheck",
	"HealthWatch",
	"Reflection",
	"CapturePayment",
	"VoidPayment",
	"RefundPayment",
	"ListPayments",
	"ListAccountEntries",
	"CreateAccount",
	"GetAccount",
	"UpdateAccountStatus",
	"Unknown",
};

/* Indexed by PaymentStatus - 1; the last slot takes anything else. */
#define NSTATUS 4
static const char *const status_names[NSTATUS] = {
	"AUTHORIZED",
	"DECLINED",
	"DUPLICATE",
	"UNKNOWN",
};

/* Indexed by PaymentErrorCode; the last slot takes anything else. */
#define NERRCODES 9
static const char *const errcode_names[NERRCODES] = {
	"NONE",
	"INSUFFICIENT_FUNDS",
	"ACCOUNT_NOT_FOUND",
	"INVALID_AMOUNT",
	"SAME_ACCOUNT",
	"CURRENCY_MISMATCH",
	"RATE_LIMITED",
	"ACCOUNT_INACTIVE",
	"UNKNOWN",
};

/* The supervisor's exit_reason() strings; the last one takes the rest.
 * "rl_down": an idle pool worker whose Redis connection failed;
 * "protocol": killed for a byte sup_proto.h does not define. */
#define NEXITS 14
static const char *const exit_names[NEXITS] = {
	"ok",
	"db_lost",
	"db_down",
	"rl_down",
	"ipc",
	"software",
	"sandbox",
	"seccomp",
	"killed",
	"protocol",
	"crash",
	"cpu_budget", /* killed: WORKER_CPU_BUDGET_SECONDS burnt without progress */
	"reclaimed",  /* exited after SIGUSR1 (stress mode) */
	"unknown_exit",
};

/* Indexed by enum metrics_close; the last slot takes anything else. */
static const char *const close_names[] = {
	"client_closed",
	"empty",
	"idle_timeout",
	"max_age",
	"sigterm",
	"db_lost",
	"db_down",
	"handshake_timeout",
	"tls_error",
	"first_rpc_timeout",
	"reclaimed",
	"guard",
	"per_ip_limit",
	"accept_rate",
	"no_worker",
	"stream_idle",
	"abuse_penalty",
	"other",
};
_Static_assert(sizeof(close_names) / sizeof(close_names[0]) == METRICS_NCLOSE + 1,
    "close_names[] must name every enum metrics_close, then \"other\"");

/* The guard's label table (metrics_guard_labels), per process: a copy,
 * so the caller's table may be a local array. */
#define GUARD_LABEL_MAX 48
static char guard_names[METRICS_GUARD_NREASONS][GUARD_LABEL_MAX];
static int guard_nnames;

struct hist {
	uint64_t bucket[NBUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
	uint64_t sum_ns;
};

struct metrics {
	uint64_t rpc[METRICS_NMETHODS][METRICS_NCODES];
	struct hist rpc_dur[METRICS_NMETHODS];
	uint64_t pay[NSTATUS][NERRCODES];
	struct hist pay_dur;
	uint64_t rl_exceeded[METRICS_NMETHODS];
	uint64_t rl_unavailable;
	uint64_t exits[NEXITS];
	uint64_t accepted;
	int64_t workers_active;
	int64_t workers_idle;
	uint64_t worker_starts;                     /* fork to READY, completed */
	uint64_t worker_start_us;                   /* their sum */
	uint64_t closes[METRICS_NCLOSE + 1];        /* last: "other" */
	uint64_t guard[METRICS_GUARD_NREASONS + 1]; /* last: out of range */
	uint64_t streams_idle_closed;
	uint64_t tls_handshakes[2]; /* [resumed] */
	struct hist tls_handshake_dur;
	uint64_t kh_signatures;
	uint64_t authfail[METRICS_NAUTHFAIL];
	struct client_slot {
		int state; /* 0 free, 1 being claimed, 2 named */
		char name[64];
		uint64_t denied[METRICS_NDENIED];
	} clients[METRICS_CLIENT_SLOTS + 1]; /* last: "other" */
	uint64_t jan_holds_expired;
	uint64_t jan_keys_purged;
	uint64_t jan_errors;
	int64_t jan_last_success_ms; /* unix ms; 0: none yet */
};

#define ADD(p, n)   __atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

static int shm_fd = -1;

struct metrics *
metrics_create(void)
{
	void *p = MAP_FAILED;
	int fd;

	/* A memfd rather than anonymous memory: exec'd workers map it too. */
	fd = memfd_create("paymentd-metrics", MFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)sizeof(struct metrics)) == 0)
		p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	shm_fd = fd;
	return p; /* a new memfd reads as zeroes */
}

int
metrics_shm_fd(void)
{
	return shm_fd;
}

struct metrics *
metrics_attach(int fd)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0 || st.st_size != (off_t)sizeof(struct metrics))
		return NULL;
	p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

void
metrics_worker_started(struct metrics *m, int64_t us)
{
	if (m == NULL || us < 0)
		return;
	ADD(&m->worker_start_us, (uint64_t)us);
	ADD(&m->worker_starts, 1);
}

void
metrics_destroy(struct metrics *m)
{
	if (m != NULL)
		munmap(m, sizeof(*m));
}

int
metrics_protect_readonly(struct metrics *m)
{
	return mprotect(m, sizeof(*m), PROT_READ);
}

enum metrics_method
metrics_method_from_name(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < METRICS_M_UNKNOWN; i++)
		if (strcmp(name, method_names[i]) == 0)
			return (enum metrics_method)i;
	return METRICS_M_UNKNOWN;
}

const char *
metrics_method_name(enum metrics_method mm)
{
	return (unsigned)mm < METRICS_NMETHODS ? method_names[mm] : method_names[METRICS_M_UNKNOWN];
}

static unsigned
method_slot(enum metrics_method mm)
{
	return (unsigned)mm < METRICS_NMETHODS ? (unsigned)mm : METRICS_M_UNKNOWN;
}

static void
observe(struct hist *h, double seconds)
{
	int i;

	if (!(seconds > 0)) /* also NaN */
		seconds = 0;
	if (seconds > 1e9) /* keeps the ns sum far from overflow */
		seconds = 1e9;
	for (i = 0; i < NBUCKETS && seconds > bucket_le[i]; i++)
		;
	ADD(&h->bucket[i], 1);
	ADD(&h->sum_ns, (uint64_t)llround(seconds * 1e9));
}

void
metrics_rpc(struct metrics *m, enum metrics_method mm, int grpc_code, double seconds)
{
	unsigned s = method_slot(mm);

	if (m == NULL)
		return;
	if (grpc_code < 0 || grpc_code >= METRICS_NCODES)
		grpc_code = 2; /* UNKNOWN */
	ADD(&m->rpc[s][grpc_code], 1);
	observe(&m->rpc_dur[s], seconds);
}

void
metrics_payment(struct metrics *m, int status, int error_code, double seconds)
{
	int si = status >= 1 && status <= 3 ? status - 1 : NSTATUS - 1;
	int ei = error_code >= 0 && error_code < NERRCODES - 1 ? error_code : NERRCODES - 1;

	if (m == NULL)
		return;
	ADD(&m->pay[si][ei], 1);
	observe(&m->pay_dur, seconds);
}

void
metrics_rate_limited(struct metrics *m, enum metrics_method mm)
{
	if (m != NULL)
		ADD(&m->rl_exceeded[method_slot(mm)], 1);
}

void
metrics_rl_unavailable(struct metrics *m)
{
	if (m != NULL)
		ADD(&m->rl_unavailable, 1);
}

void
metrics_worker_exit(struct metrics *m, const char *reason)
{
	int i;

	if (m == NULL)
		return;
	for (i = 0; i < NEXITS - 1; i++)
		if (reason != NULL && strcmp(reason, exit_names[i]) == 0)
			break;
	ADD(&m->exits[i], 1);
}

void
metrics_set_workers(struct metrics *m, int active, int idle)
{
	if (m == NULL)
		return;
	STORE(&m->workers_active, (int64_t)active);
	STORE(&m->workers_idle, (int64_t)idle);
}

void
metrics_connection_accepted(struct metrics *m)
{
	if (m != NULL)
		ADD(&m->accepted, 1);
}

void
metrics_conn_closed(struct metrics *m, enum metrics_close why)
{
	if (m != NULL)
		ADD(&m->closes[(unsigned)why < METRICS_NCLOSE ? (unsigned)why : METRICS_NCLOSE], 1);
}

enum metrics_close
metrics_close_from_name(const char *name)
{
	int i;

	for (i = 0; name != NULL && i < METRICS_NCLOSE; i++)
		if (strcmp(name, close_names[i]) == 0)
			return (enum metrics_close)i;
	return METRICS_NCLOSE;
}

const char *
metrics_close_name(enum metrics_close why)
{
	return close_names[(unsigned)why < METRICS_NCLOSE ? (unsigned)why : METRICS_NCLOSE];
}

void
metrics_guard_labels(const char *const *names, int n)
{
	int i;

	guard_nnames = 0;
	if (names == NULL || n <= 0)
		return;
	if (n > METRICS_GUARD_NREASONS)
		n = METRICS_GUARD_NREASONS;
	for (i = 0; i < n; i++)
		snprintf(guard_names[i], sizeof(guard_names[i]), "%s", names[i] ? names[i] : "");
	guard_nnames = n;
}

void
metrics_guard_abuse(struct metrics *m, int reason_index)
{
	if (m == NULL)
		return;
	if (reason_index < 0 || reason_index >= METRICS_GUARD_NREASONS)
		reason_index = METRICS_GUARD_NREASONS;
	ADD(&m->guard[reason_index], 1);
}

void
metrics_stream_closed_idle(struct metrics *m)
{
	if (m != NULL)
		ADD(&m->streams_idle_closed, 1);
}

void
metrics_tls_handshake(struct metrics *m, int resumed, double seconds)
{
	if (m == NULL)
		return;
	ADD(&m->tls_handshakes[resumed ? 1 : 0], 1);
	observe(&m->tls_handshake_dur, seconds);
}

void
metrics_auth_failure(struct metrics *m, enum metrics_authfail why)
{
	if (m != NULL && (unsigned)why < METRICS_NAUTHFAIL)
		ADD(&m->authfail[why], 1);
}

/* The slot counting client: found by name, else claimed with a CAS (two
 * workers racing for one new name may each claim a slot; rendering sums
 * slots of the same name). */
static struct client_slot *
client_slot(struct metrics *m, const char *client)
{
	size_t i;

	for (i = 0; i < METRICS_CLIENT_SLOTS; i++) {
		struct client_slot *c = &m->clients[i];
		int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);

		if (st == 2 && strcmp(c->name, client) == 0)
			return c;
		if (st == 0) {
			int expect = 0;

			if (__atomic_compare_exchange_n(
			        &c->state, &expect, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				snprintf(c->name, sizeof(c->name), "%s", client);
				__atomic_store_n(&c->state, 2, __ATOMIC_RELEASE);
				return c;
			}
		}
	}
	return &m->clients[METRICS_CLIENT_SLOTS];
}

void
metrics_permission_denied(struct metrics *m, const char *client, enum metrics_denied why)
{
	if (m != NULL && client != NULL && (unsigned)why < METRICS_NDENIED)
		ADD(&client_slot(m, client)->denied[why], 1);
}

void
metrics_kh_signature(struct metrics *m)
{
	if (m != NULL)
		ADD(&m->kh_signatures, 1);
}

void
metrics_janitor_batch(struct metrics *m, int64_t holds, int64_t keys, int64_t unix_ms)
{
	if (m == NULL)
		return;
	if (holds > 0)
		ADD(&m->jan_holds_expired, (uint64_t)holds);
	if (keys > 0)
		ADD(&m->jan_keys_purged, (uint64_t)keys);
	STORE(&m->jan_last_success_ms, unix_ms);
}

void
metrics_janitor_error(struct metrics *m)
{
	if (m != NULL)
		ADD(&m->jan_errors, 1);
}

/* ---- rendering ------------------------------------------------------- */

struct out {
	char *buf;
	size_t len;
	size_t pos; /* bytes the full output needs so far */
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (o->pos < o->len)
		n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	else
		n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped (0.0.4). */
static void
put_label_value(struct out *o, const char *v)
{
	for (; *v; v++) {
		switch (*v) {
		case '\\': put(o, "\\\\"); break;
		case '"': put(o, "\\\""); break;
		case '\n': put(o, "\\n"); break;
		default: put(o, "%c", *v); break;
		}
	}
}

static void
header(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* labels is "" or `name="value"` (already escaped), without braces. */
static void
put_hist(struct out *o, const char *name, const char *labels, const struct hist *h)
{
	uint64_t cum = 0;
	int i;

	for (i = 0; i <= NBUCKETS; i++) {
		cum += LOAD(&h->bucket[i]);
		put(o, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, labels[0] ? "," : "",
		    i < NBUCKETS ? bucket_le_str[i] : "+Inf", (unsigned long long)cum);
	}
	put(o, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	    (double)LOAD(&h->sum_ns) / 1e9);
	put(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
	    (unsigned long long)cum);
}

size_t
metrics_render(const struct metrics *m, char *buf, size_t len, const char *version,
    const struct metrics_outbox *ob)
{
	struct out o = { buf, len, 0 };
	char lbl[64];
	int i, j;

	if (len > 0)
		buf[0] = '\0';

	header(&o, "grpc_requests_total", "counter",
	    "gRPC requests finished, by method and status code.");
	for (i = 0; i < METRICS_NMETHODS; i++)
		for (j = 0; j < METRICS_NCODES; j++)
			put(&o, "grpc_requests_total{method=\"%s\",code=\"%s\"} %llu\n",
			    method_names[i], util_grpc_code_name(j),
			    (unsigned long long)LOAD(&m->rpc[i][j]));

	header(&o, "grpc_request_duration_seconds", "histogram",
	    "Time from a request's arrival to its final status, by method.");
	for (i = 0; i < METRICS_NMETHODS; i++) {
		snprintf(lbl, sizeof(lbl), "method=\"%s\"", method_names[i]);
		put_hist(&o, "grpc_request_duration_seconds", lbl, &m->rpc_dur[i]);
	}

	header(&o, "payment_requests_total", "counter",
	    "AuthorizePayment outcomes, by payment status and error code.");
	for (i = 0; i < NSTATUS; i++)
		for (j = 0; j < NERRCODES; j++)
			put(&o, "payment_requests_total{status=\"%s\",error_code=\"%s\"} %llu\n",
			    status_names[i], errcode_names[j],
			    (unsigned long long)LOAD(&m->pay[i][j]));

	header(&o, "payment_duration_seconds", "histogram",
	    "Time to process an AuthorizePayment that produced a payment outcome.");
	put_hist(&o, "payment_duration_seconds", "", &m->pay_dur);

	header(&o, "rate_limit_exceeded_total", "counter",
	    "Requests rejected by the rate limiter, by method.");
	for (i = 0; i < METRICS_NMETHODS; i++)
		put(&o, "rate_limit_exceeded_total{method=\"%s\"} %llu\n", method_names[i],
		    (unsigned long long)LOAD(&m->rl_exceeded[i]));

	header(&o, "rate_limiter_unavailable_total", "counter",
	    "Requests decided without Redis (allowed if RATE_LIMIT_FAIL_OPEN, else refused).");
	put(&o, "rate_limiter_unavailable_total %llu\n",
	    (unsigned long long)LOAD(&m->rl_unavailable));

	header(&o, "workers_active", "gauge", "Worker processes serving a client connection.");
	put(&o, "workers_active %lld\n", (long long)LOAD(&m->workers_active));
	header(&o, "workers_idle", "gauge", "Worker processes waiting for a client connection.");
	put(&o, "workers_idle %lld\n", (long long)LOAD(&m->workers_idle));

	header(&o, "worker_start_seconds", "summary",
	    "Time from fork to READY of a worker (exec, Postgres and Redis connect, warm-up, lock-down).");
	put(&o, "worker_start_seconds_sum %.6f\n", (double)LOAD(&m->worker_start_us) / 1e6);
	put(&o, "worker_start_seconds_count %llu\n", (unsigned long long)LOAD(&m->worker_starts));

	header(&o, "worker_exits_total", "counter", "Worker process exits, by reason.");
	for (i = 0; i < NEXITS; i++)
		put(&o, "worker_exits_total{reason=\"%s\"} %llu\n", exit_names[i],
		    (unsigned long long)LOAD(&m->exits[i]));

	header(&o, "connections_accepted_total", "counter",
	    "Client connections accepted by the supervisor.");
	put(&o, "connections_accepted_total %llu\n", (unsigned long long)LOAD(&m->accepted));

	header(&o, "paymentd_connections_closed_total", "counter",
	    "Client connections closed, by why they ended (supervisor or worker side).");
	for (i = 0; i <= METRICS_NCLOSE; i++)
		put(&o, "paymentd_connections_closed_total{reason=\"%s\"} %llu\n", close_names[i],
		    (unsigned long long)LOAD(&m->closes[i]));

	header(&o, "paymentd_h2_guard_violations_total", "counter",
	    "Connections the HTTP/2 frame guard closed, by the rule they broke.");
	{
		uint64_t other = 0;

		for (i = 0; i <= METRICS_GUARD_NREASONS; i++) {
			uint64_t v = LOAD(&m->guard[i]);

			if (i >= guard_nnames) {
				other += v;
				continue;
			}
			put(&o, "paymentd_h2_guard_violations_total{reason=\"");
			put_label_value(&o, guard_names[i]);
			put(&o, "\"} %llu\n", (unsigned long long)v);
		}
		put(&o, "paymentd_h2_guard_violations_total{reason=\"other\"} %llu\n",
		    (unsigned long long)other);
	}

	header(&o, "paymentd_streams_idle_closed_total", "counter",
	    "HTTP/2 streams reset after STREAM_IDLE_TIMEOUT_SECONDS without progress.");
	put(&o, "paymentd_streams_idle_closed_total %llu\n",
	    (unsigned long long)LOAD(&m->streams_idle_closed));

	header(&o, "paymentd_tls_handshakes_total", "counter",
	    "TLS handshakes completed on the gRPC port, by whether the session was resumed.");
	put(&o, "paymentd_tls_handshakes_total{resumed=\"false\"} %llu\n",
	    (unsigned long long)LOAD(&m->tls_handshakes[0]));
	put(&o, "paymentd_tls_handshakes_total{resumed=\"true\"} %llu\n",
	    (unsigned long long)LOAD(&m->tls_handshakes[1]));
	header(&o, "paymentd_tls_handshake_seconds", "histogram",
	    "Duration of the completed TLS handshakes on the gRPC port.");
	put_hist(&o, "paymentd_tls_handshake_seconds", "", &m->tls_handshake_dur);

	header(&o, "paymentd_keyholder_signatures_total", "counter",
	    "Private-key signatures the key-holder made for worker handshakes.");
	put(&o, "paymentd_keyholder_signatures_total %llu\n",
	    (unsigned long long)LOAD(&m->kh_signatures));

	{
		static const char *const af[METRICS_NAUTHFAIL] = { "missing", "malformed",
			"unknown", "ambiguous", "throttled", "revoked" };
		static const char *const dn[METRICS_NDENIED] = { "can_debit", "can_read",
			"funding_account", "admin" };
		size_t ci, cj, k;

		header(&o, "paymentd_auth_failures_total", "counter",
		    "Calls refused before a client was identified, by reason.");
		for (ci = 0; ci < METRICS_NAUTHFAIL; ci++)
			put(&o, "paymentd_auth_failures_total{reason=\"%s\"} %llu\n", af[ci],
			    (unsigned long long)LOAD(&m->authfail[ci]));
		header(&o, "paymentd_permission_denied_total", "counter",
		    "Calls of an identified client refused for a missing permission.");
		for (ci = 0; ci <= METRICS_CLIENT_SLOTS; ci++) {
			const struct client_slot *c = &m->clients[ci];
			int last = ci == METRICS_CLIENT_SLOTS, dup = 0;

			if (!last && __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != 2)
				continue;
			for (cj = 0; cj < ci && !last && !dup; cj++)
				dup = __atomic_load_n(&m->clients[cj].state, __ATOMIC_ACQUIRE) ==
				        2 &&
				    strcmp(m->clients[cj].name, c->name) == 0;
			if (dup)
				continue; /* summed into its first slot */
			for (k = 0; k < METRICS_NDENIED; k++) {
				uint64_t v = LOAD(&c->denied[k]);

				for (cj = ci + 1; cj < METRICS_CLIENT_SLOTS && !last; cj++)
					if (__atomic_load_n(
					        &m->clients[cj].state, __ATOMIC_ACQUIRE) == 2 &&
					    strcmp(m->clients[cj].name, c->name) == 0)
						v += LOAD(&m->clients[cj].denied[k]);
				if (v == 0 && !last)
					continue;
				put(&o, "paymentd_permission_denied_total{client=\"");
				put_label_value(&o, last ? "other" : c->name);
				put(&o, "\",reason=\"%s\"} %llu\n", dn[k], (unsigned long long)v);
			}
		}
	}

	header(&o, "paymentd_janitor_holds_expired_total", "counter",
	    "Holds the janitor expired (hold_expires_at passed; PaymentExpired written).");
	put(&o, "paymentd_janitor_holds_expired_total %llu\n",
	    (unsigned long long)LOAD(&m->jan_holds_expired));
	header(&o, "paymentd_janitor_keys_purged_total", "counter",
	    "Expired idempotency and operation keys the janitor deleted.");
	put(&o, "paymentd_janitor_keys_purged_total %llu\n",
	    (unsigned long long)LOAD(&m->jan_keys_purged));
	header(&o, "paymentd_janitor_errors_total", "counter",
	    "Janitor batches that failed (SQL error or lost Postgres connection).");
	put(&o, "paymentd_janitor_errors_total %llu\n", (unsigned long long)LOAD(&m->jan_errors));
	header(&o, "paymentd_janitor_last_success_timestamp_seconds", "gauge",
	    "When the janitor last finished a batch without error (unix time; 0: never).");
	put(&o, "paymentd_janitor_last_success_timestamp_seconds %.3f\n",
	    (double)LOAD(&m->jan_last_success_ms) / 1e3);

	header(&o, "paymentd_build_info", "gauge",
	    "Always 1; the version label names the paymentd release.");
	put(&o, "paymentd_build_info{version=\"");
	put_label_value(&o, version ? version : "");
	put(&o, "\"} 1\n");

	if (ob != NULL && ob->queried) {
		header(&o, "outbox_metrics_up", "gauge",
		    "1 if the outbox gauges below could be read from Postgres at this scrape.");
		put(&o, "outbox_metrics_up %d\n", ob->up ? 1 : 0);
		if (ob->up) {
			header(&o, "outbox_pending_events", "gauge",
			    "Outbox events not yet published.");
			put(&o, "outbox_pending_events %lld\n", (long long)ob->pending);
			header(&o, "outbox_oldest_pending_age_seconds", "gauge",
			    "Age of the oldest unpublished outbox event (0 when none).");
			put(&o, "outbox_oldest_pending_age_seconds %.3f\n", ob->oldest_age_s);
			header(&o, "relay_published_events", "gauge",
			    "Outbox events the relay published (rows with published_at and no error).");
			put(&o, "relay_published_events %lld\n", (long long)ob->published);
			header(&o, "relay_dead_lettered_events", "gauge",
			    "Outbox events the relay sent to the DLQ.");
			put(&o, "relay_dead_lettered_events %lld\n", (long long)ob->dead_lettered);
			header(&o, "relay_failed_publish_attempts", "gauge",
			    "Failed publish attempts recorded on outbox rows (retry_count summed).");
			put(&o, "relay_failed_publish_attempts %lld\n",
			    (long long)ob->failed_attempts);
		}
	}
	return o.pos;
}
