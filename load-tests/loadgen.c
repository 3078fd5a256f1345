/* SPDX-License-Identifier: MIT */
/*
 * loadgen.c — paymentd-loadgen, a load generator for paymentd on the grpc
 * core async API.
 *
 * Contract:
 *   paymentd-loadgen [--target H:P] [--scenario uniform|hot|balance|newconn|capture]
 *       [--concurrency N] [--connections M] [--threads T]
 *       [--duration S | --requests R] [--rate RPS] [--warmup S]
 *       [--accounts K | --setup-accounts K [--database-url URL]]
 *       [--account-prefix P] [--currency C] [--amount-max CENTS]
 *       [--timeout MS] [--label TEXT] [--json]
 *       [--plaintext | [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
 *        [--tls-server-name NAME] [--tls-resume]]
 *  - Each thread owns one completion queue, its share of the M HTTP/2
 *    connections (one channel each, never shared, so M workers serve them)
 *    and its share of the N call slots. Closed loop (default): every slot
 *    keeps exactly one call outstanding. Open loop (--rate): calls are sent
 *    on a fixed schedule, at most N outstanding, and latency is measured
 *    from the *intended* send time, so a slow server is not hidden by the
 *    client waiting for it (coordinated omission).
 *  - Scenarios: uniform (payer and payee drawn uniformly from K accounts),
 *    hot (every payment moves money to or from one account), balance
 *    (GetAccountBalance of a random account), newconn (uniform payments,
 *    each on a brand-new channel and TCP connection), capture (a uniform
 *    MANUAL AuthorizePayment, then CapturePayment of all of that payment's
 *    hold on the same connection as soon as the authorization answers:
 *    the pair is one operation — throughput is pairs/s, the latency is the
 *    pair's, and each call's own latency is reported beside it; a pair
 *    whose authorization fails or declines ends there, without a capture).
 *  - --setup-accounts K creates <prefix>000000.. and <prefix>hot with libpq
 *    and tops each up from the equity account through authorize_payment,
 *    so the ledger stays balanced; re-running it is cheap and idempotent.
 *    Without accounts the seed accounts acc-payer-001/acc-payee-002 are used.
 *  - Transport as paymentctl's (daemon/ctl/gcli.h): TLS by default, the
 *    files from the flags or PAYMENTD_TLS_CA/_CERT/_KEY; cleartext with
 *    --plaintext or PAYMENTD_PLAINTEXT=1 (the test stacks). The PEM files
 *    are read once; every channel (newconn: every call) shares the
 *    credentials, so each new connection pays the handshake, not file I/O.
 *    --tls-resume gives every channel one shared TLS session cache (grpc's
 *    LRU cache), so a new connection resumes the session of an earlier one
 *    (newconn: the cost of a resumed handshake instead of a full one).
 *  - Identity: $PAYMENTD_TOKEN (an API token, pd_...) goes out as
 *    authorization: Bearer on every call; a client certificate
 *    (--tls-cert/--tls-key) authenticates by itself.
 *  - Output: a text table, or one JSON object with --json. Exit status 0 if
 *    the run completed (errors are reported, not fatal), 1 if it could not
 *    run (connect/setup failure), 2 for usage errors.
 */
#include "ctl/gcli.h"
#include "grpc/grpc_util.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <jansson.h>
#include <libpq-fe.h>

#define M_AUTHORIZE        "/payment.v1.PaymentService/AuthorizePayment"
#define M_BALANCE          "/payment.v1.PaymentService/GetAccountBalance"
#define M_CAPTURE          "/payment.v1.PaymentService/CapturePayment"
#define MAX_ACCOUNTS       1000000
#define CONNECT_TIMEOUT_MS 10000
#define NSTATUS            17        /* gRPC codes 0..16; anything else is "other" */
#define SETUP_LOCK_KEY     "7301002" /* serializes concurrent --setup-accounts */

enum scenario { SC_UNIFORM, SC_HOT, SC_BALANCE, SC_NEWCONN, SC_CAPTURE };
static const char *const scenario_names[] = { "uniform", "hot", "balance", "newconn", "capture" };
#define NPAY     7  /* PaymentStatus 0..6 */
#define NDECLINE 11 /* PaymentErrorCode 0..10 */

struct opts {
	const char *target, *dburl, *prefix, *currency, *label;
	struct gcli_transport tr;
	enum scenario sc;
	int concurrency, connections, threads, timeout_ms, json, setup;
	long accounts;
	double duration_s, warmup_s, rate;
	long long requests, amount_max, setup_balance;
	int tls_resume;
	grpc_ssl_session_cache *sessions; /* --tls-resume */
	/* $PAYMENTD_TOKEN: sent as authorization: Bearer on every call. */
	grpc_metadata auth_md[1];
	size_t nauth_md;
};

/* ---- latency histogram ----------------------------------------------
 * Log-linear buckets as in HdrHistogram: exact below 128 ns, then 64
 * sub-buckets per power of two, so any value is known within 1/64 (the
 * reported midpoint within 0.8%) at a fixed 30 KB per thread. */
#define H_SUB 64
#define H_N   (H_SUB * 60)

struct hist {
	uint64_t c[H_N];
	uint64_t n;
	int64_t min, max;
	double sum;
};

static int
h_index(int64_t v)
{
	int msb, shift, idx;

	if (v < (int64_t)2 * H_SUB)
		return v < 0 ? 0 : (int)v;
	msb = 63 - __builtin_clzll((unsigned long long)v);
	shift = msb - 6;
	idx = (shift + 1) * H_SUB + (int)(v >> shift) - H_SUB;
	return idx < H_N ? idx : H_N - 1;
}

/* Midpoint of bucket idx, in the histogram's unit. */
static double
h_value(int idx)
{
	int shift;
	double lo;

	if (idx < 2 * H_SUB)
		return idx;
	shift = idx / H_SUB - 1;
	lo = (double)((int64_t)(idx % H_SUB + H_SUB) << shift);
	return lo + (double)((int64_t)1 << shift) / 2;
}

static void
h_add(struct hist *h, int64_t v)
{
	if (v < 0)
		v = 0;
	h->c[h_index(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += (double)v;
}

static void
h_merge(struct hist *dst, const struct hist *src)
{
	int i;

	if (src->n == 0)
		return;
	for (i = 0; i < H_N; i++)
		dst->c[i] += src->c[i];
	if (dst->n == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->n += src->n;
	dst->sum += src->sum;
}

/* Value at quantile q (0..1), clamped to the exact min and max. */
static double
h_quantile(const struct hist *h, double q)
{
	uint64_t want, seen = 0;
	int i;
	double v;

	if (h->n == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)h->n);
	if (want < 1)
		want = 1;
	for (i = 0; i < H_N; i++) {
		seen += h->c[i];
		if (seen >= want)
			break;
	}
	v = h_value(i < H_N ? i : H_N - 1);
	if (v < (double)h->min)
		v = (double)h->min;
	if (v > (double)h->max)
		v = (double)h->max;
	return v;
}

/* ---- per-thread state ------------------------------------------------ */

struct stats {
	struct hist h;             /* latency of recorded calls (capture: pairs), ns */
	struct hist h_auth, h_cap; /* capture: each call of the pair, ns */
	uint64_t grpc[NSTATUS + 1];
	uint64_t pay[NPAY];           /* PaymentStatus of AuthorizePayment answers */
	uint64_t decline[NDECLINE];   /* PaymentErrorCode of DECLINED */
	uint64_t cap_pay[NPAY];       /* capture: PaymentStatus of the captured payment */
	uint64_t cap_error[NDECLINE]; /* capture: PaymentErrorCode of refused captures */
	uint64_t bad_response;        /* OK without a decodable body */
	uint64_t recorded;            /* calls after warmup (in h) */
	uint64_t in_window;           /* recorded calls completed before the end */
	uint64_t warmup;              /* calls that completed during warmup */
	uint64_t start_failed;        /* grpc refused to start a call */
	uint64_t unsent;              /* open loop: scheduled but never sent */
	int64_t max_lag_ns;           /* open loop: worst send delay */
};

struct thr;

struct slot {
	struct thr *t;
	grpc_channel *own; /* newconn: this call's channel */
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	int64_t t_start; /* latency origin (intended time if open loop) */
	int64_t t_call;  /* capture: when this call of the pair was sent */
	int busy;
	int kind;            /* 0 authorize, 1 balance, 2 capture */
	int ci;              /* the channel of this call (capture: of the pair) */
	char payment_id[80]; /* capture: the payment the authorization made */
	uint64_t key_seq;    /* capture: the authorization key's sequence number */
};

struct thr {
	int id;
	pthread_t th;
	grpc_completion_queue *cq;
	grpc_channel **ch;
	void **reg_auth, **reg_bal, **reg_cap;
	int nch, next_ch;
	struct slot *slots;
	int nslots, busy;
	int *free_list;
	int nfree;
	uint64_t rng, seq;
	int64_t sched_origin, sched_step; /* open loop, ns */
	uint64_t sched_k;
	struct stats st;
	char err[256];
};

static struct opts O;
static char run_id[16];
static char hot_id[80];
static int64_t T0, T_MEASURE, T_END; /* monotonic ns */
static atomic_llong tickets;         /* --requests budget left */
static volatile sig_atomic_t interrupted;
static pthread_barrier_t start_barrier;
static atomic_int setup_failed;
static double client_cpu_s; /* user+sys of this process during the run */

static int64_t
now_ns(void)
{
	return util_now_ns();
}

static uint64_t
rnd(struct thr *t)
{
	/* xorshift64*: fast, per thread, good enough to pick accounts. */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 2685821657736338717ULL;
}

static void
account_name(char *buf, size_t len, long i)
{
	snprintf(buf, len, "%s%06ld", O.prefix, i);
}

static grpc_channel *
new_channel(void)
{
	/* A private subchannel pool gives every channel its own TCP
	 * connection (and so its own paymentd worker); gcli turns retries
	 * off, so each measured call is exactly one attempt. */
	grpc_arg args[2] = { { .type = GRPC_ARG_INTEGER,
	    .key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
	    .value.integer = 1 } };
	size_t n = 1;

	if (O.sessions != NULL)
		args[n++] = grpc_ssl_session_cache_create_channel_arg(O.sessions);
	return gcli_channel_over(&O.tr, O.target, args, n);
}

/* Connects ch eagerly and waits for READY, so connection setup is not
 * part of the measurement (except in newconn, which skips this). */
static int
wait_ready(grpc_channel *ch, grpc_completion_queue *cq, int timeout_ms)
{
	gpr_timespec dl = gu_deadline_ms(timeout_ms);
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);
	int tag;

	while (st != GRPC_CHANNEL_READY) {
		grpc_event ev;

		if (st == GRPC_CHANNEL_SHUTDOWN)
			return -1;
		grpc_channel_watch_connectivity_state(ch, st, dl, cq, &tag);
		/* The watch always completes, at the latest at dl. */
		ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE || ev.tag != &tag || !ev.success)
			return -1;
		st = grpc_channel_check_connectivity_state(ch, 1);
	}
	return 0;
}

/* Packs the next request of this scenario into buf; returns its length. */
static size_t
build_request(struct thr *t, struct slot *s, uint8_t *buf, size_t cap)
{
	char a[80], b[80], key[96];
	long k = O.accounts;

	if (O.sc == SC_BALANCE) {
		Payment__V1__GetAccountBalanceRequest rq =
		    PAYMENT__V1__GET_ACCOUNT_BALANCE_REQUEST__INIT;

		s->kind = 1;
		if (k > 0)
			account_name(a, sizeof(a), (long)(rnd(t) % (uint64_t)k));
		else
			snprintf(
			    a, sizeof(a), "%s", (rnd(t) & 1) ? "acc-payer-001" : "acc-payee-002");
		rq.account_id = a;
		if (protobuf_c_message_get_packed_size(&rq.base) > cap)
			abort(); /* ids are bounded above; cannot happen */
		return protobuf_c_message_pack(&rq.base, buf);
	} else {
		Payment__V1__AuthorizePaymentRequest rq =
		    PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
		int flip = (int)(rnd(t) & 1);

		s->kind = 0;
		if (O.sc == SC_HOT) {
			if (k > 0)
				account_name(b, sizeof(b), (long)(rnd(t) % (uint64_t)k));
			else
				snprintf(b, sizeof(b), "acc-payee-002");
			snprintf(a, sizeof(a), "%s", hot_id);
		} else if (k > 0) {
			uint64_t i = rnd(t) % (uint64_t)k;
			/* j != i, uniform over the other k-1 accounts. */
			uint64_t j = (i + 1 + rnd(t) % (uint64_t)(k - 1)) % (uint64_t)k;
			account_name(a, sizeof(a), (long)i);
			account_name(b, sizeof(b), (long)j);
			flip = 0;
		} else {
			snprintf(a, sizeof(a), "acc-payer-001");
			snprintf(b, sizeof(b), "acc-payee-002");
		}
		s->key_seq = t->seq;
		snprintf(key, sizeof(key), "lg-%s-%d-%" PRIu64, run_id, t->id, t->seq++);
		if (O.sc == SC_CAPTURE)
			rq.capture_method = PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_MANUAL;
		rq.idempotency_key = key;
		rq.payer_account_id = flip ? b : a;
		rq.payee_account_id = flip ? a : b;
		rq.amount_cents = 1 + (int64_t)(rnd(t) % (uint64_t)O.amount_max);
		rq.currency = (char *)O.currency;
		rq.description = (char *)"paymentd-loadgen";
		if (protobuf_c_message_get_packed_size(&rq.base) > cap)
			abort();
		return protobuf_c_message_pack(&rq.base, buf);
	}
}

/* Starts the call of s (its request in buf) on ch; 0, or -1 with the
 * failure counted and nothing left to release. */
static int
start_call(
    struct thr *t, struct slot *s, grpc_channel *ch, void *reg, const uint8_t *buf, size_t len)
{
	grpc_op ops[6];

	s->call = grpc_channel_create_registered_call(
	    ch, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, reg, gu_deadline_ms(O.timeout_ms), NULL);
	if (s->call == NULL)
		goto fail;
	s->send = gu_bb_new(buf, len);
	s->recv = NULL;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = O.nauth_md;
	ops[0].data.send_initial_metadata.metadata = O.auth_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &s->recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &s->trail_md;
	ops[5].data.recv_status_on_client.status = &s->status;
	ops[5].data.recv_status_on_client.status_details = &s->details;
	if (grpc_call_start_batch(s->call, ops, 6, s, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(s->call);
		grpc_byte_buffer_destroy(s->send);
		grpc_slice_unref(s->details);
		grpc_metadata_array_destroy(&s->init_md);
		grpc_metadata_array_destroy(&s->trail_md);
		goto fail;
	}
	s->busy = 1;
	t->busy++;
	return 0;
fail:
	s->call = NULL;
	s->send = NULL;
	if (s->own) {
		grpc_channel_destroy(s->own);
		s->own = NULL;
	}
	t->st.start_failed++;
	return -1;
}

/* Starts one operation on slot s with latency origin t_origin; 0 or -1. */
static int
issue(struct thr *t, struct slot *s, int64_t t_origin)
{
	uint8_t buf[512];
	size_t len;
	grpc_channel *ch;
	void *reg;

	len = build_request(t, s, buf, sizeof(buf));
	if (O.sc == SC_NEWCONN) {
		s->own = new_channel();
		ch = s->own;
		reg = grpc_channel_register_call(ch, M_AUTHORIZE, NULL, NULL);
	} else {
		s->ci = t->next_ch++ % t->nch;
		ch = t->ch[s->ci];
		reg = s->kind ? t->reg_bal[s->ci] : t->reg_auth[s->ci];
	}
	s->t_start = t_origin;
	s->t_call = t_origin;
	return start_call(t, s, ch, reg, buf, len);
}

/* The second call of a capture pair: all of the hold of s->payment_id,
 * on the connection the authorization went over, under a key derived
 * from the authorization's. */
static int
issue_capture(struct thr *t, struct slot *s)
{
	Payment__V1__CapturePaymentRequest rq = PAYMENT__V1__CAPTURE_PAYMENT_REQUEST__INIT;
	uint8_t buf[512];
	char key[96];
	size_t len;

	snprintf(key, sizeof(key), "lg-%s-%d-%" PRIu64 "-capture", run_id, t->id, s->key_seq);
	rq.idempotency_key = key;
	rq.payment_id = s->payment_id;
	rq.amount_cents = 0;
	if (protobuf_c_message_get_packed_size(&rq.base) > sizeof(buf))
		abort(); /* ids are bounded above; cannot happen */
	len = protobuf_c_message_pack(&rq.base, buf);
	s->kind = 2;
	s->t_call = now_ns();
	return start_call(t, s, t->ch[s->ci], t->reg_cap[s->ci], buf, len);
}

/* Releases what the finished call of s holds (the slot stays). */
static void
release_call(struct thr *t, struct slot *s)
{
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	grpc_byte_buffer_destroy(s->send);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
	grpc_call_unref(s->call);
	s->call = NULL;
	s->recv = s->send = NULL;
	if (s->own) {
		grpc_channel_destroy(s->own);
		s->own = NULL;
	}
	s->busy = 0;
	t->busy--;
}

/* Reads the OK answer of s's call (kind 0, 1, 2) into the statistics (rec:
 * after warmup); returns 1 if it authorized a payment a capture pair must
 * now capture (its id in s->payment_id). */
static int
account_body(struct stats *st, struct slot *s, const uint8_t *body, size_t len, int rec)
{
	int capture_next = 0;

	if (s->kind == 0) {
		Payment__V1__AuthorizePaymentResponse *r =
		    payment__v1__authorize_payment_response__unpack(NULL, len, body);
		if (r == NULL || (unsigned)r->status >= NPAY) {
			st->bad_response += (uint64_t)rec;
		} else {
			if (rec) {
				st->pay[r->status]++;
				if (r->status ==
				    PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_DECLINED)
					st->decline[r->error && (unsigned)r->error->code < NDECLINE
					        ? r->error->code
					        : 0]++;
			}
			if (O.sc == SC_CAPTURE &&
			    r->status == PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_AUTHORIZED &&
			    r->payment_id[0] != '\0' &&
			    strlen(r->payment_id) < sizeof(s->payment_id)) {
				snprintf(s->payment_id, sizeof(s->payment_id), "%s", r->payment_id);
				capture_next = 1;
			}
		}
		if (r)
			payment__v1__authorize_payment_response__free_unpacked(r, NULL);
	} else if (s->kind == 1) {
		Payment__V1__GetAccountBalanceResponse *r =
		    payment__v1__get_account_balance_response__unpack(NULL, len, body);
		if (r == NULL || r->account_id[0] == '\0')
			st->bad_response += (uint64_t)rec;
		if (r)
			payment__v1__get_account_balance_response__free_unpacked(r, NULL);
	} else {
		Payment__V1__CapturePaymentResponse *r =
		    payment__v1__capture_payment_response__unpack(NULL, len, body);
		if (r == NULL ||
		    (r->error == NULL &&
		        (r->payment == NULL || (unsigned)r->payment->status >= NPAY))) {
			st->bad_response += (uint64_t)rec;
		} else if (rec) {
			if (r->error != NULL)
				st->cap_error[(unsigned)r->error->code < NDECLINE ? r->error->code
				                                                  : 0]++;
			else
				st->cap_pay[r->payment->status]++;
		}
		if (r)
			payment__v1__capture_payment_response__free_unpacked(r, NULL);
	}
	return capture_next;
}

/* Accounts one finished call and releases its resources; returns 1 if
 * the slot goes on with the capture of its pair, 0 when its operation
 * is over. */
static int
complete(struct thr *t, struct slot *s, int64_t now)
{
	struct stats *st = &t->st;
	int rec = s->t_start >= T_MEASURE, capture_next = 0;
	uint8_t *body = NULL;
	size_t len = 0;

	if (rec) {
		st->grpc[(unsigned)s->status < NSTATUS ? s->status : NSTATUS]++;
		if (O.sc == SC_CAPTURE)
			h_add(s->kind == 2 ? &st->h_cap : &st->h_auth, now - s->t_call);
	}
	if (s->status == GRPC_STATUS_OK) {
		if (s->recv == NULL || gu_bb_read(s->recv, &body, &len) < 0)
			st->bad_response += (uint64_t)rec;
		else
			capture_next = account_body(st, s, body, len, rec);
		free(body);
	} else if (rec && t->err[0] == '\0') {
		/* Keep the first error's text: it usually explains the rest. */
		snprintf(t->err, sizeof(t->err), "%s%s: %.*s", s->kind == 2 ? "capture: " : "",
		    gu_status_name(s->status), (int)GRPC_SLICE_LENGTH(s->details),
		    (const char *)GRPC_SLICE_START_PTR(s->details));
	}
	release_call(t, s);
	/* A capture that cannot start ends the pair (counted in start_failed). */
	if (capture_next && issue_capture(t, s) == 0)
		return 1;
	if (!rec) {
		st->warmup++;
	} else {
		st->recorded++;
		if (now <= T_END)
			st->in_window++;
		h_add(&st->h, now - s->t_start);
	}
	return 0;
}

/* May another call start now? Takes a ticket in --requests mode. */
static int
may_issue(int64_t now)
{
	if (interrupted || now >= T_END)
		return 0;
	if (O.requests > 0)
		return atomic_fetch_sub(&tickets, 1) > 0;
	return 1;
}

static int64_t
sched_time(struct thr *t, uint64_t k)
{
	return t->sched_origin + (int64_t)k * t->sched_step;
}

static void
run_loop(struct thr *t)
{
	int open = O.rate > 0;
	int i, stop = 0;

	if (!open) {
		int64_t now = now_ns();
		for (i = 0; i < t->nslots && !stop; i++) {
			if (!may_issue(now)) {
				stop = 1;
				break;
			}
			issue(t, &t->slots[i], now);
		}
	}
	for (;;) {
		int64_t now = now_ns(), wake;
		grpc_event ev;

		if (open && !stop) {
			/* Send everything that is due, while slots are free. */
			while (t->nfree > 0 && sched_time(t, t->sched_k) <= now) {
				int64_t due = sched_time(t, t->sched_k);
				struct slot *s;

				if (due >= T_END || !may_issue(due)) {
					stop = 1;
					break;
				}
				s = &t->slots[t->free_list[--t->nfree]];
				t->sched_k++;
				if (now - due > t->st.max_lag_ns)
					t->st.max_lag_ns = now - due;
				if (issue(t, s, due) < 0)
					t->free_list[t->nfree++] = (int)(s - t->slots);
			}
			if (now >= T_END || interrupted)
				stop = 1;
		}
		if (t->busy == 0 && (stop || !open))
			break;
		/* Sleep until the next scheduled send — unless every slot is busy,
		 * then only a completion can let us send (don't spin meanwhile). */
		wake = open && !stop && t->nfree > 0 ? sched_time(t, t->sched_k) : now + 100000000;
		if (wake > T_END && !stop)
			wake = T_END;
		if (wake < now)
			wake = now;
		ev = grpc_completion_queue_next(t->cq,
		    gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
		        gpr_time_from_nanos(wake - now, GPR_TIMESPAN)),
		    NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		now = now_ns();
		{
			struct slot *s = ev.tag;
			if (complete(t, s, now))
				continue; /* the pair's capture is on its way */
			if (open) {
				t->free_list[t->nfree++] = (int)(s - t->slots);
			} else if (!stop) {
				if (may_issue(now))
					issue(t, s, now);
				else
					stop = 1;
			}
		}
	}
	if (open && O.requests == 0 && T_END > sched_time(t, t->sched_k)) {
		/* Scheduled sends that never happened: the client (slot cap) or
		 * the server could not keep up with the rate. */
		t->st.unsent += (uint64_t)((T_END - sched_time(t, t->sched_k) + t->sched_step - 1) /
		    t->sched_step);
	}
}

static void *
thread_main(void *arg)
{
	struct thr *t = arg;
	int i;

	for (i = 0; i < t->nch; i++) {
		t->ch[i] = new_channel();
		t->reg_auth[i] = grpc_channel_register_call(t->ch[i], M_AUTHORIZE, NULL, NULL);
		t->reg_bal[i] = grpc_channel_register_call(t->ch[i], M_BALANCE, NULL, NULL);
		t->reg_cap[i] = grpc_channel_register_call(t->ch[i], M_CAPTURE, NULL, NULL);
		if (wait_ready(t->ch[i], t->cq, CONNECT_TIMEOUT_MS) < 0) {
			char how[384];

			/* A refused TLS handshake looks like this too: say which. */
			gcli_transport_describe(&O.tr, how, sizeof(how));
			(void)util_fmt(t->err, sizeof(t->err),
			    "connection %d to %s not ready within %d ms over %s", i, O.target,
			    CONNECT_TIMEOUT_MS, how);
			atomic_store(&setup_failed, 1);
			break;
		}
	}
	pthread_barrier_wait(&start_barrier); /* main sets T0 meanwhile */
	pthread_barrier_wait(&start_barrier);
	if (!atomic_load(&setup_failed)) {
		t->err[0] = '\0';
		/* Threads interleave their schedules: thread i starts i/rate later. */
		if (O.rate > 0)
			t->sched_origin = T0 + (int64_t)((double)t->id * 1e9 / O.rate);
		run_loop(t);
	}
	return NULL;
}

/* ---- account setup (libpq) ------------------------------------------- */

static int
setup_accounts(char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(O.dburl);
	PGresult *r = NULL;
	char k[24], bal[32], equity[64], keyp[64];
	const char *v[6];
	int rc = -1, i;
	int64_t t0 = now_ns();

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "setup: connect: %s", PQerrorMessage(c));
		goto out;
	}
	snprintf(k, sizeof(k), "%ld", O.accounts);
	snprintf(bal, sizeof(bal), "%lld", O.setup_balance);
	snprintf(equity, sizeof(equity), "acc-equity-%s", O.currency);
	for (i = 0; equity[i]; i++)
		if (equity[i] >= 'A' && equity[i] <= 'Z')
			equity[i] = (char)(equity[i] - 'A' + 'a');
	snprintf(keyp, sizeof(keyp), "lg-setup-%s-", run_id);
	r = PQexec(c, "BEGIN; SELECT pg_advisory_xact_lock(" SETUP_LOCK_KEY ")");
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		goto sqlerr;
	PQclear(r);
	v[0] = equity;
	r = PQexecParams(
	    c, "SELECT 1 FROM accounts WHERE account_id = $1", 1, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		goto sqlerr;
	if (PQntuples(r) != 1) {
		snprintf(err, errlen,
		    "setup: funding account %s does not exist "
		    "(run `paymentd reset-test-data` first)",
		    equity);
		goto out;
	}
	PQclear(r);
	/* $1 prefix, $2 currency, $3 K, $4 target balance, $5 key prefix, $6 equity. */
	v[0] = O.prefix;
	v[1] = O.currency;
	v[2] = k;
	v[3] = bal;
	v[4] = keyp;
	v[5] = equity;
	r = PQexecParams(c,
	    "WITH ids AS (SELECT $1 || lpad(i::text, 6, '0') AS id "
	    "               FROM generate_series(0, $3::int - 1) i "
	    "             UNION ALL SELECT $1 || 'hot') "
	    "INSERT INTO accounts (account_id, currency) SELECT id, $2 FROM ids "
	    "ON CONFLICT (account_id) DO NOTHING",
	    3, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto sqlerr;
	PQclear(r);
	r = PQexecParams(c,
	    "WITH ids AS (SELECT $1 || lpad(i::text, 6, '0') AS id "
	    "               FROM generate_series(0, $2::int - 1) i "
	    "             UNION ALL SELECT $1 || 'hot') "
	    "INSERT INTO account_balances (account_id) SELECT id FROM ids "
	    "ON CONFLICT (account_id) DO NOTHING",
	    2, NULL, (const char *[]){ v[0], v[2] }, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto sqlerr;
	PQclear(r);
	/* Top up every account below half the target, one real payment each
	 * from the equity account, so balances stay backed by entries. */
	r = PQexecParams(c,
	    "WITH ids AS (SELECT $1 || lpad(i::text, 6, '0') AS id "
	    "               FROM generate_series(0, $3::int - 1) i "
	    "             UNION ALL SELECT $1 || 'hot'), "
	    "t AS (SELECT b.account_id, $4::bigint - b.available_cents AS amt "
	    "        FROM account_balances b JOIN ids ON ids.id = b.account_id "
	    "       WHERE b.available_cents < $4::bigint / 2 ORDER BY b.account_id) "
	    "SELECT count(*) FILTER (WHERE r.o_status = 'AUTHORIZED'), count(*), "
	    "       min(r.o_error_message) FILTER (WHERE r.o_status <> 'AUTHORIZED') "
	    "  FROM t CROSS JOIN LATERAL authorize_payment(legacy_client_id(), $5 || t.account_id, $6, t.account_id, "
	    "       t.amt, $2, 'paymentd-loadgen opening balance', "
	    "       sha256(convert_to($5 || t.account_id, 'UTF8')), $5 || t.account_id, 86400, "
	    "       'loadgen-setup') r",
	    6, NULL, v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		goto sqlerr;
	if (strcmp(PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1)) != 0) {
		snprintf(err, errlen, "setup: %s of %s top-ups authorized: %s", PQgetvalue(r, 0, 0),
		    PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
		goto out;
	}
	if (!O.json)
		fprintf(stderr,
		    "setup: %ld accounts + %s ready, %s topped up to %lld cents in %.2f s\n",
		    O.accounts, hot_id, PQgetvalue(r, 0, 1), O.setup_balance,
		    (double)(now_ns() - t0) / 1e9);
	PQclear(r);
	r = PQexec(c, "COMMIT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		goto sqlerr;
	rc = 0;
	goto out;
sqlerr:
	snprintf(err, errlen, "setup: %s", PQerrorMessage(c));
	err[strcspn(err, "\n")] = '\0';
out:
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* ---- reporting -------------------------------------------------------- */

static const char *const pay_names[NPAY] = { "UNSPECIFIED", "AUTHORIZED", "DECLINED", "DUPLICATE",
	"CAPTURED", "VOIDED", "EXPIRED" };
static const char *const decline_names[NDECLINE] = { "UNSPECIFIED", "INSUFFICIENT_FUNDS",
	"ACCOUNT_NOT_FOUND", "INVALID_AMOUNT", "SAME_ACCOUNT", "CURRENCY_MISMATCH", "RATE_LIMITED",
	"ACCOUNT_INACTIVE", "INVALID_STATE", "AMOUNT_EXCEEDS_REMAINING", "BALANCE_LIMIT" };

/* min, mean, the quantiles and max of h, in ms. */
static json_t *
lat_json(const struct hist *h)
{
	static const double qs[] = { 0.5, 0.9, 0.95, 0.99, 0.999 };
	static const char *const qn[] = { "p50", "p90", "p95", "p99", "p999" };
	json_t *lat = json_object();
	size_t i;

	json_object_set_new(lat, "min", json_real((double)h->min / 1e6));
	json_object_set_new(lat, "mean", json_real(h->n ? h->sum / (double)h->n / 1e6 : 0));
	for (i = 0; i < ARRAY_LEN(qs); i++)
		json_object_set_new(lat, qn[i], json_real(h_quantile(h, qs[i]) / 1e6));
	json_object_set_new(lat, "max", json_real((double)h->max / 1e6));
	return lat;
}

static void
lat_line(const char *label, const struct hist *h)
{
	printf(
	    "  %-14s min %.3f  mean %.3f  p50 %.3f  p90 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
	    label, (double)h->min / 1e6, h->n ? h->sum / (double)h->n / 1e6 : 0,
	    h_quantile(h, 0.5) / 1e6, h_quantile(h, 0.9) / 1e6, h_quantile(h, 0.95) / 1e6,
	    h_quantile(h, 0.99) / 1e6, h_quantile(h, 0.999) / 1e6, (double)h->max / 1e6);
}

static uint64_t
errors_of(const struct stats *s)
{
	uint64_t e = s->bad_response + s->start_failed;
	int i;

	for (i = 1; i <= NSTATUS; i++)
		e += s->grpc[i];
	return e;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* {"NAME": count} of the non-zero counts of c[0..n) */
static json_t *
counts_json(const uint64_t *c, const char *const *names, int n)
{
	json_t *o = json_object();
	int i;

	for (i = 0; i < n; i++)
		if (c[i])
			json_object_set_new(o, names[i], json_integer((json_int_t)c[i]));
	return o;
}

static void
report(const struct stats *s, double window_s, const char *first_err)
{
	double tput = window_s > 0 ? (double)s->in_window / window_s : 0;
	uint64_t errors = errors_of(s);
	int i;

	if (O.json) {
		json_t *o = json_object(), *gs = json_object();
		char *txt;

		json_object_set_new(
		    o, "label", json_string(O.label ? O.label : scenario_names[O.sc]));
		json_object_set_new(o, "scenario", json_string(scenario_names[O.sc]));
		json_object_set_new(o, "mode", json_string(O.rate > 0 ? "open" : "closed"));
		json_object_set_new(o, "target", json_string(O.target));
		json_object_set_new(o, "transport", json_string(O.tr.tls ? "tls" : "plaintext"));
		json_object_set_new(o, "concurrency", json_integer(O.concurrency));
		json_object_set_new(
		    o, "connections", json_integer(O.sc == SC_NEWCONN ? 0 : O.connections));
		json_object_set_new(o, "threads", json_integer(O.threads));
		json_object_set_new(o, "accounts", json_integer(O.accounts));
		if (O.rate > 0)
			json_object_set_new(o, "rate_target", json_real(O.rate));
		json_object_set_new(o, "duration_s", json_real(window_s));
		json_object_set_new(o, "requests", json_integer((json_int_t)s->recorded));
		json_object_set_new(
		    o, "requests_in_window", json_integer((json_int_t)s->in_window));
		json_object_set_new(o, "warmup_requests", json_integer((json_int_t)s->warmup));
		json_object_set_new(o, "throughput_rps", json_real(tput));
		json_object_set_new(o, "errors", json_integer((json_int_t)errors));
		json_object_set_new(o, "bad_responses", json_integer((json_int_t)s->bad_response));
		json_object_set_new(o, "start_failures", json_integer((json_int_t)s->start_failed));
		if (O.rate > 0) {
			json_object_set_new(o, "unsent", json_integer((json_int_t)s->unsent));
			json_object_set_new(
			    o, "max_send_lag_ms", json_real((double)s->max_lag_ns / 1e6));
		}
		if (O.sc == SC_NEWCONN)
			json_object_set_new(o, "connections_per_s", json_real(tput));
		/* The client shares the machine with the server: say what it cost. */
		json_object_set_new(o, "client_cpu_s", json_real(client_cpu_s));
		json_object_set_new(o, "latency_ms", lat_json(&s->h));
		if (O.sc == SC_CAPTURE) {
			/* latency_ms is the pair's; each call's own beside it */
			json_object_set_new(o, "authorize_latency_ms", lat_json(&s->h_auth));
			json_object_set_new(o, "capture_latency_ms", lat_json(&s->h_cap));
		}
		for (i = 0; i <= NSTATUS; i++)
			if (s->grpc[i])
				json_object_set_new(gs, i < NSTATUS ? gu_status_name(i) : "OTHER",
				    json_integer((json_int_t)s->grpc[i]));
		json_object_set_new(o, "grpc_status", gs);
		json_object_set_new(o, "payment_status", counts_json(s->pay, pay_names, NPAY));
		json_object_set_new(
		    o, "decline_codes", counts_json(s->decline, decline_names, NDECLINE));
		if (O.sc == SC_CAPTURE) {
			/* the captured payments' status, and refused captures by code */
			json_object_set_new(
			    o, "capture_status", counts_json(s->cap_pay, pay_names, NPAY));
			json_object_set_new(o, "capture_errors",
			    counts_json(s->cap_error, decline_names, NDECLINE));
		}
		if (first_err && first_err[0])
			json_object_set_new(o, "first_error", json_string(first_err));
		txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s\n", txt);
		free(txt);
		json_decref(o);
		return;
	}
	printf("paymentd-loadgen  %s  scenario=%s  mode=%s  target=%s  transport=%s\n",
	    O.label ? O.label : "", scenario_names[O.sc], O.rate > 0 ? "open" : "closed", O.target,
	    O.tr.tls ? "tls" : "plaintext");
	printf("  %-14s %d outstanding, %d connections, %d threads, %ld accounts\n", "shape",
	    O.concurrency, O.sc == SC_NEWCONN ? 0 : O.connections, O.threads, O.accounts);
	if (O.rate > 0)
		printf("  %-14s target %.1f/s, unsent %" PRIu64 ", max send lag %.3f ms\n",
		    "open loop", O.rate, s->unsent, (double)s->max_lag_ns / 1e6);
	printf("  %-14s %.2f s (after %.1f s warmup, %" PRIu64 " calls excluded)\n", "window",
	    window_s, O.warmup_s, s->warmup);
	printf("  %-14s %" PRIu64 " (%" PRIu64 " within the window)\n", "requests", s->recorded,
	    s->in_window);
	printf("  %-14s %.1f %s\n", "throughput", tput,
	    O.sc == SC_NEWCONN       ? "req/s (= connections/s)"
	        : O.sc == SC_CAPTURE ? "pairs/s (authorize + capture)"
	                             : "req/s");
	printf("  %-14s %" PRIu64 "\n", "errors", errors);
	lat_line(O.sc == SC_CAPTURE ? "pair ms" : "latency ms", &s->h);
	if (O.sc == SC_CAPTURE) {
		lat_line("authorize ms", &s->h_auth);
		lat_line("capture ms", &s->h_cap);
	}
	printf("  %-14s", "grpc status");
	for (i = 0; i <= NSTATUS; i++)
		if (s->grpc[i])
			printf(
			    " %s %" PRIu64, i < NSTATUS ? gu_status_name(i) : "OTHER", s->grpc[i]);
	if (s->bad_response)
		printf(" BAD_RESPONSE %" PRIu64, s->bad_response);
	if (s->start_failed)
		printf(" START_FAILED %" PRIu64, s->start_failed);
	printf("\n");
	if (O.sc != SC_BALANCE) {
		printf("  %-14s", "payments");
		for (i = 1; i < 4; i++)
			printf(" %s %" PRIu64, pay_names[i], s->pay[i]);
		for (i = 0; i < NDECLINE; i++)
			if (s->decline[i])
				printf(" [%s %" PRIu64 "]", decline_names[i], s->decline[i]);
		printf("\n");
	}
	if (O.sc == SC_CAPTURE) {
		printf("  %-14s", "captures");
		for (i = 0; i < NPAY; i++)
			if (s->cap_pay[i])
				printf(" %s %" PRIu64, pay_names[i], s->cap_pay[i]);
		for (i = 0; i < NDECLINE; i++)
			if (s->cap_error[i])
				printf(" [%s %" PRIu64 "]", decline_names[i], s->cap_error[i]);
		printf("\n");
	}
	printf("  %-14s %.2f s CPU (user+sys) in this client\n", "client cost", client_cpu_s);
	if (first_err && first_err[0])
		printf("  %-14s %s\n", "first error", first_err);
}

/* ---- main --------------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: paymentd-loadgen [options]\n"
	    "  --target HOST:PORT        paymentd (default $PAYMENTD_TARGET or 127.0.0.1:50051)\n"
	    "  --scenario NAME           uniform | hot | balance | newconn | capture (default uniform)\n"
	    "                            capture: MANUAL authorize + CapturePayment, one pair = one op\n"
	    "  --concurrency N           outstanding calls (closed loop) or cap (open loop); default 1\n"
	    "  --connections M           HTTP/2 connections = paymentd workers (default N)\n"
	    "  --threads T               client threads, one completion queue each\n"
	    "  --duration S              run time in seconds (default 10)\n"
	    "  --requests R              stop after R calls instead\n"
	    "  --rate RPS                open loop at RPS calls/s (latency from intended send time)\n"
	    "  --warmup S                seconds excluded from the statistics (default 0)\n"
	    "  --timeout MS              per-call deadline (default 5000)\n"
	    "  --accounts K              use existing accounts PREFIX000000..K-1 (and PREFIXhot)\n"
	    "  --setup-accounts K        create/top up those accounts first (libpq, DATABASE_URL)\n"
	    "  --setup-balance CENTS     top-up target per account (default 1000000000)\n"
	    "  --database-url URL        for --setup-accounts (default $DATABASE_URL)\n"
	    "  --account-prefix P        default lg-\n"
	    "  --currency C              default USD\n"
	    "  --amount-max CENTS        payment amounts are 1..CENTS (default 1000)\n"
	    "  --label TEXT              name of this run in the report\n"
	    "  --json                    one JSON object instead of the table\n"
	    "  --plaintext               cleartext (also PAYMENTD_PLAINTEXT=1); default TLS\n"
	    "  --tls-ca FILE             PEM roots for the server (default $PAYMENTD_TLS_CA,\n"
	    "                            else the system's)\n"
	    "  --tls-cert FILE           client certificate for mutual TLS ($PAYMENTD_TLS_CERT)\n"
	    "  --tls-key FILE            its private key ($PAYMENTD_TLS_KEY)\n"
	    "  --tls-server-name NAME    name the server's certificate must carry\n"
	    "  --tls-resume              share one TLS session cache: new connections resume\n");
	exit(2);
}

static double
num_arg(const char *name, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
		fprintf(stderr, "paymentd-loadgen: %s: expected a number in %g..%g, got \"%s\"\n",
		    name, lo, hi, s);
		exit(2);
	}
	return v;
}

static void
parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "target", 1, NULL, 't' },
		{ "scenario", 1, NULL, 's' },
		{ "concurrency", 1, NULL, 'c' },
		{ "connections", 1, NULL, 'm' },
		{ "threads", 1, NULL, 'T' },
		{ "duration", 1, NULL, 'd' },
		{ "requests", 1, NULL, 'n' },
		{ "rate", 1, NULL, 'r' },
		{ "warmup", 1, NULL, 'w' },
		{ "timeout", 1, NULL, 'o' },
		{ "accounts", 1, NULL, 'k' },
		{ "setup-accounts", 1, NULL, 'K' },
		{ "setup-balance", 1, NULL, 'B' },
		{ "database-url", 1, NULL, 'D' },
		{ "account-prefix", 1, NULL, 'p' },
		{ "currency", 1, NULL, 'C' },
		{ "amount-max", 1, NULL, 'a' },
		{ "label", 1, NULL, 'l' },
		{ "json", 0, NULL, 'j' },
		{ "help", 0, NULL, 'h' },
		{ "plaintext", 0, NULL, 'P' },
		{ "tls-ca", 1, NULL, 'A' },
		{ "tls-cert", 1, NULL, 'E' },
		{ "tls-key", 1, NULL, 'Y' },
		{ "tls-server-name", 1, NULL, 'N' },
		{ "tls-resume", 0, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	int c, i;
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);

	O.target = getenv("PAYMENTD_TARGET") ? getenv("PAYMENTD_TARGET") : "127.0.0.1:50051";
	O.dburl = getenv("DATABASE_URL");
	O.prefix = "lg-";
	O.currency = "USD";
	O.concurrency = 1;
	O.duration_s = 10;
	O.timeout_ms = 5000;
	O.amount_max = 1000;
	O.setup_balance = 1000000000LL;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 't': O.target = optarg; break;
		case 's':
			for (i = 0; i < (int)ARRAY_LEN(scenario_names); i++)
				if (strcmp(optarg, scenario_names[i]) == 0)
					break;
			if (i == (int)ARRAY_LEN(scenario_names)) {
				fprintf(stderr, "paymentd-loadgen: unknown scenario %s\n", optarg);
				exit(2);
			}
			O.sc = (enum scenario)i;
			break;
		case 'c': O.concurrency = (int)num_arg("--concurrency", optarg, 1, 10000); break;
		case 'm': O.connections = (int)num_arg("--connections", optarg, 1, 4096); break;
		case 'T': O.threads = (int)num_arg("--threads", optarg, 1, 256); break;
		case 'd': O.duration_s = num_arg("--duration", optarg, 0.1, 86400); break;
		case 'n': O.requests = (long long)num_arg("--requests", optarg, 1, 1e12); break;
		case 'r': O.rate = num_arg("--rate", optarg, 0.1, 1e7); break;
		case 'w': O.warmup_s = num_arg("--warmup", optarg, 0, 3600); break;
		case 'o': O.timeout_ms = (int)num_arg("--timeout", optarg, 1, 3600000); break;
		case 'k': O.accounts = (long)num_arg("--accounts", optarg, 0, MAX_ACCOUNTS); break;
		case 'K':
			O.accounts = (long)num_arg("--setup-accounts", optarg, 0, MAX_ACCOUNTS);
			O.setup = 1;
			break;
		case 'B':
			O.setup_balance = (long long)num_arg("--setup-balance", optarg, 1, 1e15);
			break;
		case 'D': O.dburl = optarg; break;
		case 'p': O.prefix = optarg; break;
		case 'C': O.currency = optarg; break;
		case 'a': O.amount_max = (long long)num_arg("--amount-max", optarg, 1, 1e15); break;
		case 'l': O.label = optarg; break;
		case 'j': O.json = 1; break;
		case 'P': O.tr.plaintext = 1; break;
		case 'A': O.tr.ca_file = optarg; break;
		case 'E': O.tr.cert_file = optarg; break;
		case 'Y': O.tr.key_file = optarg; break;
		case 'N': O.tr.server_name = optarg; break;
		case 'R': O.tls_resume = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (O.accounts == 1 && O.sc != SC_BALANCE && O.sc != SC_HOT) {
		fprintf(stderr, "paymentd-loadgen: uniform payments need at least 2 accounts\n");
		exit(2);
	}
	if (strlen(O.currency) != 3) {
		fprintf(stderr, "paymentd-loadgen: --currency must be a 3-letter code\n");
		exit(2);
	}
	if (strlen(O.prefix) > 40) {
		fprintf(stderr, "paymentd-loadgen: --account-prefix is limited to 40 bytes\n");
		exit(2);
	}
	if (O.setup && O.dburl == NULL) {
		fprintf(stderr,
		    "paymentd-loadgen: --setup-accounts needs --database-url or DATABASE_URL\n");
		exit(2);
	}
	if (O.connections == 0)
		O.connections = O.rate > 0 ? (O.concurrency < 8 ? O.concurrency : 8)
		                           : O.concurrency;
	if (O.connections > O.concurrency && O.rate == 0)
		O.connections = O.concurrency; /* an idle connection measures nothing */
	if (O.threads == 0) {
		/* Half the CPUs (1..4): the loadgen shares the machine with the
		 * server it measures, and a second completion queue on 2 CPUs
		 * costs more than it gives: at c=32 the capture scenario took
		 * 281 us of client CPU per pair with 2 threads, 191 with 1, at
		 * the same throughput. */
		int want = O.sc == SC_NEWCONN ? O.concurrency : O.connections;
		O.threads = (int)(nproc < 2 ? 1 : nproc / 2 > 4 ? 4 : nproc / 2);
		if (O.threads > want)
			O.threads = want;
	}
	if (O.sc != SC_NEWCONN && O.threads > O.connections)
		O.threads = O.connections;
	if (O.threads > O.concurrency)
		O.threads = O.concurrency;
	if (O.accounts > 0)
		snprintf(hot_id, sizeof(hot_id), "%shot", O.prefix);
	else
		snprintf(hot_id, sizeof(hot_id), "acc-payer-001");
}

static void
on_int(int sig)
{
	(void)sig;
	interrupted = 1;
}

int
main(int argc, char **argv)
{
	struct thr *th = NULL;
	struct stats total;
	char err[512] = "", first_err[256] = "";
	uint8_t rb[8];
	int i, j, rc = 1;
	int64_t t_last;
	double window, cpu0;

	parse_args(argc, argv);
	if (util_random(rb, sizeof(rb)) < 0)
		fatal("getrandom failed");
	for (i = 0; i < 6; i++)
		snprintf(run_id + 2 * (size_t)i, 3, "%02x", rb[i]);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_int);
	signal(SIGTERM, on_int);

	gu_tune_runtime(); /* before grpc_init: see daemon/grpc_tune.cc */
	grpc_init();
	if (getenv("PAYMENTD_TOKEN") != NULL && getenv("PAYMENTD_TOKEN")[0] != '\0') {
		char bearer[300];

		snprintf(bearer, sizeof(bearer), "Bearer %s", getenv("PAYMENTD_TOKEN"));
		O.auth_md[0].key = grpc_slice_from_static_string("authorization");
		O.auth_md[0].value = grpc_slice_from_copied_string(bearer);
		O.nauth_md = 1;
	}
	/* Before the account setup: a bad TLS flag must not leave it half
	 * done against the database. */
	if (gcli_transport_setup(&O.tr, err, sizeof(err)) < 0) {
		fprintf(stderr, "paymentd-loadgen: %s\n", err);
		grpc_shutdown();
		return 2;
	}
	if (O.tls_resume) {
		if (!O.tr.tls) {
			fprintf(stderr, "paymentd-loadgen: --tls-resume needs TLS\n");
			gcli_transport_release(&O.tr);
			grpc_shutdown();
			return 2;
		}
		O.sessions = grpc_ssl_session_cache_create_lru(1024);
	}
	if (O.setup && setup_accounts(err, sizeof(err)) < 0) {
		fprintf(stderr, "paymentd-loadgen: %s\n", err);
		gcli_transport_release(&O.tr);
		grpc_shutdown();
		return 1;
	}
	th = xcalloc((size_t)O.threads, sizeof(*th));
	pthread_barrier_init(&start_barrier, NULL, (unsigned)O.threads + 1);
	atomic_store(&tickets, O.requests);
	for (i = 0; i < O.threads; i++) {
		struct thr *t = &th[i];
		int nconn = O.sc == SC_NEWCONN
		    ? 0
		    : O.connections / O.threads + (i < O.connections % O.threads);

		t->id = i;
		t->cq = grpc_completion_queue_create_for_next(NULL);
		t->nch = nconn;
		t->ch = xcalloc((size_t)nconn + 1, sizeof(grpc_channel *));
		t->reg_auth = xcalloc((size_t)nconn + 1, sizeof(void *));
		t->reg_bal = xcalloc((size_t)nconn + 1, sizeof(void *));
		t->reg_cap = xcalloc((size_t)nconn + 1, sizeof(void *));
		t->nslots = O.concurrency / O.threads + (i < O.concurrency % O.threads);
		t->slots = xcalloc((size_t)t->nslots, sizeof(*t->slots));
		t->free_list = xcalloc((size_t)t->nslots, sizeof(int));
		for (j = 0; j < t->nslots; j++) {
			t->slots[j].t = t;
			t->free_list[t->nfree++] = t->nslots - 1 - j;
		}
		memcpy(&t->rng, rb, sizeof(t->rng));
		t->rng ^= 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
		if (t->rng == 0)
			t->rng = 1;
		if (O.rate > 0)
			t->sched_step = (int64_t)(1e9 * O.threads / O.rate);
		if (pthread_create(&t->th, NULL, thread_main, t) != 0)
			fatal("pthread_create failed");
	}
	pthread_barrier_wait(&start_barrier); /* every connection is ready */
	cpu0 = cpu_seconds();
	T0 = now_ns();
	T_MEASURE = T0 + (int64_t)(O.warmup_s * 1e9);
	/* --requests runs until the budget is spent (each call still has its
	 * deadline); --duration ends issuing at T_END. */
	T_END = O.requests > 0 ? INT64_MAX : T_MEASURE + (int64_t)(O.duration_s * 1e9);
	pthread_barrier_wait(&start_barrier);
	for (i = 0; i < O.threads; i++)
		pthread_join(th[i].th, NULL);
	t_last = now_ns();
	client_cpu_s = cpu_seconds() - cpu0;

	memset(&total, 0, sizeof(total));
	for (i = 0; i < O.threads; i++) {
		struct stats *s = &th[i].st;
		h_merge(&total.h, &s->h);
		h_merge(&total.h_auth, &s->h_auth);
		h_merge(&total.h_cap, &s->h_cap);
		for (j = 0; j <= NSTATUS; j++)
			total.grpc[j] += s->grpc[j];
		for (j = 0; j < NPAY; j++) {
			total.pay[j] += s->pay[j];
			total.cap_pay[j] += s->cap_pay[j];
		}
		for (j = 0; j < NDECLINE; j++) {
			total.decline[j] += s->decline[j];
			total.cap_error[j] += s->cap_error[j];
		}
		total.bad_response += s->bad_response;
		total.recorded += s->recorded;
		total.in_window += s->in_window;
		total.warmup += s->warmup;
		total.start_failed += s->start_failed;
		total.unsent += s->unsent;
		if (s->max_lag_ns > total.max_lag_ns)
			total.max_lag_ns = s->max_lag_ns;
		if (first_err[0] == '\0' && th[i].err[0])
			snprintf(first_err, sizeof(first_err), "%s", th[i].err);
	}
	if (atomic_load(&setup_failed)) {
		fprintf(stderr, "paymentd-loadgen: %s\n", first_err);
		goto out;
	}
	window = (double)((O.requests > 0 ? t_last : T_END) - T_MEASURE) / 1e9;
	if (window < 0)
		window = 0;
	report(&total, window, first_err);
	rc = 0;
out:
	for (i = 0; i < O.threads; i++) {
		struct thr *t = &th[i];
		for (j = 0; j < t->nch; j++)
			if (t->ch[j])
				grpc_channel_destroy(t->ch[j]);
		grpc_completion_queue_shutdown(t->cq);
		while (grpc_completion_queue_next(t->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
		           .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(t->cq);
		free(t->ch);
		free(t->reg_auth);
		free(t->reg_bal);
		free(t->reg_cap);
		free(t->slots);
		free(t->free_list);
	}
	free(th);
	pthread_barrier_destroy(&start_barrier);
	if (O.sessions != NULL)
		grpc_ssl_session_cache_destroy(O.sessions);
	gcli_transport_release(&O.tr);
	grpc_shutdown();
	return rc;
}
