/* SPDX-License-Identifier: MIT */
/*
 * ctl_main.c — paymentctl, a small command-line client for paymentd.
 *
 *   paymentctl [--target host:port] [--timeout ms] [-H key:value]...
 *              [--plaintext | [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
 *               [--tls-server-name NAME]] COMMAND
 *     health [SERVICE]
 *     authorize --key K --payer P --payee Q --amount CENTS --currency C [--description D]
 *               [--capture-method automatic|manual] [--hold-ttl S] [--metadata K=V]...
 *     get PAYMENT_ID
 *     capture PAYMENT_ID --key K [--amount CENTS]
 *     void PAYMENT_ID --key K [--reason R]
 *     refund PAYMENT_ID --key K [--amount CENTS] [--reason R]
 *     payments ACCOUNT_ID [--status S] [--page-size N] [--page-token T] [--all]
 *     entries ACCOUNT_ID [--start T] [--end T] [--page-size N] [--page-token T] [--all]
 *     balance ACCOUNT_ID [--as-of T]
 *     account create [--id ID] --currency C [--overdraft CENTS] [--metadata K=V]...
 *     account get ACCOUNT_ID
 *     account status ACCOUNT_ID ACTIVE|FROZEN|CLOSED [--reason R]
 *     help
 *
 * Prints the response as proto3 JSON (camelCase names, enum names), like
 * grpcurl, so README examples look the same with either tool. Exit status:
 * 0 for an OK gRPC status, 1 for any other status (printed to stderr as
 * "ERROR:" then "  Code: CODE" and "  Message: details" lines), 2 for usage
 * errors (a message naming the option or argument on stderr).
 *
 * Both tables below drive everything: getopt_long's option array and the
 * `paymentctl --help` text come from opt_specs[], dispatch and the command
 * list from commands[]. Options may appear before or after the command;
 * those marked with commands are accepted only with one of them. Numbers
 * go through util_parse_i64, so "12x", "" or an overflow is an error, never
 * a silent 12 or 0. Words the client must turn into wire values (the
 * capture method, a payment status, an account status, K=V metadata) are
 * checked here too: a bad one is a usage error naming the choices. What
 * only the server can judge (amounts, ids, times, sizes) goes out as given.
 * Idempotency keys are the caller's, as with authorize: a missing --key
 * goes out empty and the server answers INVALID_ARGUMENT (a key made up
 * here would defeat the retry it exists for).
 *
 * --all (payments, entries) follows next_page_token until the last page
 * and prints every item in one object.
 *
 * Transport: TLS unless told otherwise (secure by default): --tls-ca and
 * friends (or PAYMENTD_TLS_CA / _CERT / _KEY) configure it, with neither
 * the system's roots are used; --plaintext or PAYMENTD_PLAINTEXT=1 (the
 * test stacks' cleartext servers) select cleartext. The precedence is
 * gcli.h's; a bad combination or an unreadable file is a usage error.
 */
#include "gcli.h"
#include "grpc/grpc_util.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <jansson.h>

#define MAX_HEADERS    8
#define TIMEOUT_MAX_MS 3600000
/* Far above the server's 20 entries: the server, not the client, owns
 * that limit (it answers INVALID_ARGUMENT naming it). */
#define MAX_METADATA 100
/* --all stops after this many pages: a server handing out tokens forever
 * must not keep the client looping. */
#define MAX_PAGES 100000

struct kv {
	char *key, *value;
};

struct ctl {
	const char *target;
	int timeout_ms;
	struct gcli_transport tr;
	struct gcli_md md[MAX_HEADERS];
	char mdbuf[MAX_HEADERS][256];
	size_t nmd;
	int help;
	/* authorize, capture, void, refund */
	const char *key, *payer, *payee, *currency, *desc, *reason;
	int64_t amount, hold_ttl;
	int capture_method; /* Payment__V1__CaptureMethod */
	struct kv meta[MAX_METADATA];
	size_t nmeta;
	/* payments, entries, balance */
	int status; /* Payment__V1__PaymentStatus, 0 = any */
	int32_t page_size;
	const char *page_token, *start, *end, *as_of;
	int all;
	/* account create */
	const char *account_id;
	int64_t overdraft;
	const char *token_file;
};

/* ---- options ---------------------------------------------------------- */

/* Options without a short letter: codes above any char. */
enum {
	OPT_PLAINTEXT = 256,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_SERVER_NAME,
	OPT_TOKEN_FILE,
	OPT_CAPTURE_METHOD,
	OPT_HOLD_TTL,
	OPT_METADATA,
	OPT_REASON,
	OPT_STATUS,
	OPT_PAGE_SIZE,
	OPT_PAGE_TOKEN,
	OPT_START,
	OPT_END,
	OPT_ALL,
	OPT_AS_OF,
	OPT_ID,
	OPT_OVERDRAFT,
};

struct opt_spec {
	const char *name;
	int code;            /* short option letter (or OPT_*), getopt's return value */
	const char *metavar; /* NULL: takes no argument */
	const char *cmds;    /* NULL: global; else only with these, "void,account status" */
	const char *help;
};

static const struct opt_spec opt_specs[] = {
	{ "target", 't', "HOST:PORT", NULL,
	    "server (default $PAYMENTD_TARGET, else localhost:50051)" },
	{ "timeout", 'T', "MS", NULL, "deadline of the call, 1..3600000 ms (default 10000)" },
	{ "header", 'H', "KEY:VALUE", NULL,
	    "request metadata, e.g. \"x-client-id: c1\" (up to 8)" },
	{ "plaintext", OPT_PLAINTEXT, NULL, NULL,
	    "cleartext, no TLS (also PAYMENTD_PLAINTEXT=1); default is TLS" },
	{ "tls-ca", OPT_TLS_CA, "FILE", NULL,
	    "PEM roots for the server (default $PAYMENTD_TLS_CA, else system roots)" },
	{ "tls-cert", OPT_TLS_CERT, "FILE", NULL,
	    "client certificate, PEM, for mTLS (default $PAYMENTD_TLS_CERT)" },
	{ "tls-key", OPT_TLS_KEY, "FILE", NULL,
	    "its private key, PEM (default $PAYMENTD_TLS_KEY)" },
	{ "tls-server-name", OPT_TLS_SERVER_NAME, "NAME", NULL,
	    "name the server certificate must hold (default: target host)" },
	{ "token-file", OPT_TOKEN_FILE, "FILE", NULL,
	    "API token (pd_...) sent as authorization: Bearer (default $PAYMENTD_TOKEN)" },
	{ "help", 'h', NULL, NULL, "print this help and exit" },
	{ "key", 'k', "K", "authorize,capture,void,refund",
	    "idempotency key (yours: the same key retries the same call)" },
	{ "payer", 'p', "P", "authorize", "payer account id" },
	{ "payee", 'q', "Q", "authorize", "payee account id" },
	{ "amount", 'a', "CENTS", "authorize,capture,refund",
	    "any 64-bit integer; the server judges it (capture/refund: 0 = all)" },
	{ "currency", 'c', "C", "authorize,account create", "ISO 4217 code, e.g. USD" },
	{ "description", 'd', "D", "authorize", "free text (default empty)" },
	{ "capture-method", OPT_CAPTURE_METHOD, "M", "authorize",
	    "automatic (default: money moves now) or manual (a hold until capture)" },
	{ "hold-ttl", OPT_HOLD_TTL, "SECONDS", "authorize",
	    "manual: seconds until the hold expires (0 = the server's HOLD_TTL_SECONDS)" },
	{ "metadata", OPT_METADATA, "K=V", "authorize,account create",
	    "a metadata entry; repeat for more (the server allows 20)" },
	{ "reason", OPT_REASON, "R", "void,refund,account status", "free text (default empty)" },
	{ "status", OPT_STATUS, "S", "payments",
	    "only payments in status S: AUTHORIZED DECLINED CAPTURED VOIDED EXPIRED" },
	{ "page-size", OPT_PAGE_SIZE, "N", "payments,entries",
	    "items per page (server default 100, at most 1000)" },
	{ "page-token", OPT_PAGE_TOKEN, "T", "payments,entries",
	    "nextPageToken of the previous page" },
	{ "all", OPT_ALL, NULL, "payments,entries", "follow nextPageToken to the last page" },
	{ "start", OPT_START, "TIME", "entries", "RFC 3339, entries at or after it" },
	{ "end", OPT_END, "TIME", "entries", "RFC 3339, entries before it" },
	{ "as-of", OPT_AS_OF, "TIME", "balance", "RFC 3339: the balance at that instant" },
	{ "id", OPT_ID, "ACCOUNT_ID", "account create",
	    "the new account's id (default: generated)" },
	{ "overdraft", OPT_OVERDRAFT, "CENTS", "account create",
	    "overdraft limit (default 0; the server judges it)" },
};

static void usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("paymentctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(paymentctl --help lists commands and options)\n", stderr);
	exit(2);
}

static const struct opt_spec *
opt_by_code(int code)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(opt_specs); i++)
		if (opt_specs[i].code == code)
			return &opt_specs[i];
	abort();
}

/* A number option: the whole argument in min..max, else exit 2 naming it. */
static int64_t
num_opt(int code, const char *arg, int64_t min, int64_t max, const char *unit)
{
	const struct opt_spec *o = opt_by_code(code);
	int64_t v;

	char range[64];

	if (util_parse_i64(arg, min, max, &v) == 0)
		return v;
	if (min == INT64_MIN && max == INT64_MAX) {
		if (errno == ERANGE)
			usage_error("--%s: %s does not fit in 64 bits", o->name, arg);
		usage_error("--%s: invalid value \"%s\" (expected a 64-bit integer)", o->name, arg);
	}
	snprintf(range, sizeof(range), "%" PRId64 "..%" PRId64 "%s", min, max, unit);
	if (errno == ERANGE)
		usage_error("--%s: %s is out of range (%s)", o->name, arg, range);
	usage_error("--%s: invalid value \"%s\" (expected an integer in %s)", o->name, arg, range);
}

static void add_header(struct ctl *c, const char *arg);

/* The token from --token-file (first line) or $PAYMENTD_TOKEN, as an
 * authorization header. A file keeps the secret out of ps and shell
 * history; either way it is never printed. */
static void
add_token(struct ctl *c)
{
	char tok[256], hdr[300];
	const char *env = getenv("PAYMENTD_TOKEN");

	if (c->token_file != NULL) {
		FILE *f = fopen(c->token_file, "r");

		if (f == NULL)
			usage_error("--token-file: cannot open %s", c->token_file);
		if (fgets(tok, sizeof(tok), f) == NULL)
			tok[0] = '\0';
		fclose(f);
		tok[strcspn(tok, "\r\n")] = '\0';
		if (tok[0] == '\0')
			usage_error("--token-file: %s holds no token", c->token_file);
	} else if (env != NULL && env[0] != '\0') {
		if (strlen(env) >= sizeof(tok))
			usage_error("PAYMENTD_TOKEN: too long");
		snprintf(tok, sizeof(tok), "%s", env);
	} else {
		return;
	}
	snprintf(hdr, sizeof(hdr), "authorization:Bearer %s", tok);
	add_header(c, hdr);
}

static void
add_header(struct ctl *c, const char *arg)
{
	const char *colon = strchr(arg, ':');
	char *v;

	if (colon == NULL || colon == arg)
		usage_error("--header: expected KEY:VALUE, got \"%s\"", arg);
	if (c->nmd >= MAX_HEADERS)
		usage_error("--header: at most %d headers", MAX_HEADERS);
	if (strlen(arg) >= sizeof(c->mdbuf[0]))
		usage_error("--header: longer than %zu bytes", sizeof(c->mdbuf[0]) - 1);
	snprintf(c->mdbuf[c->nmd], sizeof(c->mdbuf[0]), "%s", arg);
	c->mdbuf[c->nmd][colon - arg] = '\0';
	v = c->mdbuf[c->nmd] + (colon - arg) + 1;
	while (*v == ' ')
		v++;
	c->md[c->nmd].key = c->mdbuf[c->nmd];
	c->md[c->nmd].value = v;
	c->nmd++;
}

/* An enum value from its short name (case-insensitive, "manual") or its
 * full proto name ("CAPTURE_METHOD_MANUAL"); values below min are not
 * offered. Exits 2 listing the choices otherwise. */
static int
enum_opt(int code, const char *arg, const ProtobufCEnumDescriptor *d, const char *prefix, int min)
{
	const struct opt_spec *o = opt_by_code(code);
	size_t plen = strlen(prefix), i, off = 0;
	char choices[256];

	for (i = 0; i < d->n_values; i++) {
		const ProtobufCEnumValue *v = &d->values[i];
		if (v->value < min)
			continue;
		if (strcasecmp(arg, v->name) == 0 ||
		    (strncmp(v->name, prefix, plen) == 0 && strcasecmp(arg, v->name + plen) == 0))
			return v->value;
		off += (size_t)snprintf(
		    choices + off, sizeof(choices) - off, "%s%s", off ? ", " : "", v->name + plen);
		if (off >= sizeof(choices))
			abort(); /* the enums are small and fixed */
	}
	usage_error("--%s: unknown value \"%s\" (expected one of %s)", o->name, arg, choices);
}

/* --metadata K=V: K non-empty, '=' required, each key once. */
static void
add_metadata(struct ctl *c, const char *arg)
{
	const char *eq = strchr(arg, '=');
	size_t i;

	if (eq == NULL || eq == arg)
		usage_error("--metadata: expected KEY=VALUE, got \"%s\"", arg);
	if (c->nmeta >= MAX_METADATA)
		usage_error("--metadata: at most %d entries", MAX_METADATA);
	c->meta[c->nmeta].key = strndup(arg, (size_t)(eq - arg));
	c->meta[c->nmeta].value = strdup(eq + 1);
	if (c->meta[c->nmeta].key == NULL || c->meta[c->nmeta].value == NULL)
		fatal("out of memory");
	for (i = 0; i < c->nmeta; i++)
		if (strcmp(c->meta[i].key, c->meta[c->nmeta].key) == 0)
			usage_error("--metadata: key \"%s\" given twice", c->meta[i].key);
	c->nmeta++;
}

static void
set_opt(struct ctl *c, int code, const char *arg)
{
	switch (code) {
	case 't': c->target = arg; break;
	case 'T': c->timeout_ms = (int)num_opt(code, arg, 1, TIMEOUT_MAX_MS, " ms"); break;
	case 'H': add_header(c, arg); break;
	case 'h': c->help = 1; break;
	case OPT_PLAINTEXT: c->tr.plaintext = 1; break;
	case OPT_TLS_CA: c->tr.ca_file = arg; break;
	case OPT_TLS_CERT: c->tr.cert_file = arg; break;
	case OPT_TLS_KEY: c->tr.key_file = arg; break;
	case OPT_TLS_SERVER_NAME: c->tr.server_name = arg; break;
	case OPT_TOKEN_FILE: c->token_file = arg; break;
	case 'k': c->key = arg; break;
	case 'p': c->payer = arg; break;
	case 'q': c->payee = arg; break;
	case 'a': c->amount = num_opt(code, arg, INT64_MIN, INT64_MAX, ""); break;
	case 'c': c->currency = arg; break;
	case 'd': c->desc = arg; break;
	case OPT_CAPTURE_METHOD:
		c->capture_method = enum_opt(code, arg, &payment__v1__capture_method__descriptor,
		    "CAPTURE_METHOD_", PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_AUTOMATIC);
		break;
	case OPT_HOLD_TTL: c->hold_ttl = num_opt(code, arg, INT64_MIN, INT64_MAX, ""); break;
	case OPT_METADATA: add_metadata(c, arg); break;
	case OPT_REASON: c->reason = arg; break;
	case OPT_STATUS:
		c->status = enum_opt(code, arg, &payment__v1__payment_status__descriptor,
		    "PAYMENT_STATUS_", PAYMENT__V1__PAYMENT_STATUS__PAYMENT_STATUS_AUTHORIZED);
		break;
	case OPT_PAGE_SIZE: c->page_size = (int32_t)num_opt(code, arg, 1, INT32_MAX, ""); break;
	case OPT_PAGE_TOKEN: c->page_token = arg; break;
	case OPT_START: c->start = arg; break;
	case OPT_END: c->end = arg; break;
	case OPT_ALL: c->all = 1; break;
	case OPT_AS_OF: c->as_of = arg; break;
	case OPT_ID: c->account_id = arg; break;
	case OPT_OVERDRAFT: c->overdraft = num_opt(code, arg, INT64_MIN, INT64_MAX, ""); break;
	default: abort();
	}
}

/*
 * The one option parser: fills *c, collects the non-option words (command
 * first) into pos[] and returns how many; given[i] tells whether
 * opt_specs[i] appeared. "-" in optstring returns words in order (code 1)
 * regardless of POSIXLY_CORRECT; "--" ends the options.
 */
static int
parse_args(struct ctl *c, int argc, char **argv, char **pos, int *given)
{
	struct option lo[ARRAY_LEN(opt_specs) + 1];
	char shorts[2 + 2 * ARRAY_LEN(opt_specs) + 1], *s = shorts;
	int npos = 0, code;
	size_t i;

	*s++ = '-';
	*s++ = ':'; /* report a missing argument as ':' */
	for (i = 0; i < ARRAY_LEN(opt_specs); i++) {
		const struct opt_spec *o = &opt_specs[i];
		lo[i] = (struct option){ o->name, o->metavar ? required_argument : no_argument,
			NULL, o->code };
		if (o->code > 255)
			continue; /* long only */
		*s++ = (char)o->code;
		if (o->metavar)
			*s++ = ':';
	}
	*s = '\0';
	memset(&lo[i], 0, sizeof(lo[i]));

	opterr = 0;
	while ((code = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		if (code == 1) {
			pos[npos++] = optarg;
			continue;
		}
		if (code == ':')
			usage_error("%s: missing value", argv[optind - 1]);
		if (code == '?') {
			if (optopt && strncmp(argv[optind - 1], "--", 2) == 0)
				usage_error("%s: takes no value", argv[optind - 1]);
			if (optopt)
				usage_error("unknown option -%c", optopt);
			usage_error("unknown option %s", argv[optind - 1]);
		}
		set_opt(c, code, optarg);
		given[opt_by_code(code) - opt_specs] = 1;
	}
	while (optind < argc)
		pos[npos++] = argv[optind++];
	return npos;
}

/* ---- output ----------------------------------------------------------- */

static const char *
enum_name(const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
	return ev ? ev->name : "UNKNOWN";
}

static void
print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	printf("%s\n", s);
	free(s);
	json_decref(o);
}

static void
set_nonempty(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

static void
set_int64(json_t *o, const char *k, int64_t v)
{
	char buf[32];

	/* proto3 JSON renders int64 as a string; zero values are omitted. */
	if (v != 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)v);
		json_object_set_new(o, k, json_string(buf));
	}
}

static void
set_enum(json_t *o, const char *k, const ProtobufCEnumDescriptor *d, int v)
{
	json_object_set_new(o, k, json_string(enum_name(d, v)));
}

static int
decode_failed(void)
{
	fprintf(stderr, "ERROR: could not decode the response\n");
	return 1;
}

/* ---- the call --------------------------------------------------------- */

/*
 * Packs req, makes one unary call and returns 0 with *res holding an OK
 * response (the caller frees it), or prints the failure and returns 1.
 */
static int
call(const struct ctl *c, const char *method, const ProtobufCMessage *req, struct gcli_result *res)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *buf = xmalloc(len);
	grpc_channel *ch;
	int rc = 1;

	protobuf_c_message_pack(req, buf);
	ch = gcli_channel_over(&c->tr, c->target, NULL, 0);
	if (gcli_unary(ch, method, buf, len, c->timeout_ms, c->md, c->nmd, res) < 0) {
		fprintf(stderr, "ERROR: could not start the call\n");
	} else if (res->status != GRPC_STATUS_OK) {
		fprintf(stderr, "ERROR:\n  Code: %s\n  Message: %s\n", gu_status_name(res->status),
		    res->details);
		if (res->retry_after[0])
			fprintf(stderr, "  Retry-After: %s\n", res->retry_after);
		gcli_result_free(res);
	} else {
		rc = 0;
	}
	free(buf);
	grpc_channel_destroy(ch);
	return rc;
}

/* ---- commands --------------------------------------------------------- */

static int
cmd_health(struct ctl *c, char **args, int nargs)
{
	Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	Grpc__Health__V1__HealthCheckResponse *r;
	struct gcli_result res;
	json_t *o;
	int rc;

	q.service = nargs > 0 ? args[0] : (char *)"";
	if (call(c, "/grpc.health.v1.Health/Check", &q.base, &res) != 0)
		return 1;
	r = grpc__health__v1__health_check_response__unpack(NULL, res.len, res.body);
	gcli_result_free(&res);
	if (r == NULL)
		return decode_failed();
	o = json_object();
	set_enum(o, "status", &grpc__health__v1__health_check_response__serving_status__descriptor,
	    r->status);
	print_json(o);
	rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
	grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	return rc;
}

/* Protobuf-c map entries of every message share this layout. */
struct map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};

/* c->meta as map entries of descriptor d: the returned pointer array and
 * the entries in *store, both the caller's to free. */
static void **
meta_entries(const struct ctl *c, const ProtobufCMessageDescriptor *d, struct map_entry **store)
{
	void **ptrs = xcalloc(c->nmeta + 1, sizeof(*ptrs));
	size_t i;

	*store = xcalloc(c->nmeta + 1, sizeof(**store));
	for (i = 0; i < c->nmeta; i++) {
		struct map_entry *e = &(*store)[i];
		protobuf_c_message_init(d, e);
		e->key = c->meta[i].key;
		e->value = c->meta[i].value;
		ptrs[i] = e;
	}
	return ptrs;
}

static void
set_metadata(json_t *o, size_t n, void *const *entries)
{
	json_t *m;
	size_t i;

	if (n == 0)
		return;
	m = json_object();
	for (i = 0; i < n; i++) {
		const struct map_entry *e = entries[i];
		json_object_set_new(m, e->key, json_string(e->value));
	}
	json_object_set_new(o, "metadata", m);
}

static void
set_error(json_t *o, const Payment__V1__PaymentError *err)
{
	json_t *e;

	if (err == NULL)
		return;
	e = json_object();
	set_enum(e, "code", &payment__v1__payment_error_code__descriptor, err->code);
	set_nonempty(e, "message", err->message);
	json_object_set_new(o, "error", e);
}

static json_t *
payment_json(const Payment__V1__Payment *pm)
{
	json_t *p = json_object();

	set_nonempty(p, "paymentId", pm->payment_id);
	set_nonempty(p, "payerAccountId", pm->payer_account_id);
	set_nonempty(p, "payeeAccountId", pm->payee_account_id);
	set_int64(p, "amountCents", pm->amount_cents);
	set_nonempty(p, "currency", pm->currency);
	set_enum(p, "status", &payment__v1__payment_status__descriptor, pm->status);
	set_nonempty(p, "description", pm->description);
	set_nonempty(p, "createdAt", pm->created_at);
	set_nonempty(p, "updatedAt", pm->updated_at);
	if (pm->capture_method != PAYMENT__V1__CAPTURE_METHOD__CAPTURE_METHOD_UNSPECIFIED)
		set_enum(p, "captureMethod", &payment__v1__capture_method__descriptor,
		    pm->capture_method);
	set_int64(p, "capturedAmountCents", pm->captured_amount_cents);
	set_int64(p, "refundedAmountCents", pm->refunded_amount_cents);
	set_nonempty(p, "holdExpiresAt", pm->hold_expires_at);
	set_metadata(p, pm->n_metadata, (void *const *)pm->metadata);
	return p;
}

static json_t *
account_json(const Payment__V1__Account *a)
{
	json_t *o = json_object();

	set_nonempty(o, "accountId", a->account_id);
	set_nonempty(o, "currency", a->currency);
	set_nonempty(o, "status", a->status);
	set_int64(o, "overdraftLimitCents", a->overdraft_limit_cents);
	set_int64(o, "availableBalanceCents", a->available_balance_cents);
	set_int64(o, "pendingBalanceCents", a->pending_balance_cents);
	set_nonempty(o, "createdAt", a->created_at);
	set_metadata(o, a->n_metadata, (void *const *)a->metadata);
	return o;
}

static json_t *
entry_json(const Payment__V1__LedgerEntry *e)
{
	json_t *o = json_object();

	set_int64(o, "entryId", e->entry_id);
	set_nonempty(o, "paymentId", e->payment_id);
	set_nonempty(o, "direction", e->direction);
	set_int64(o, "amountCents", e->amount_cents);
	set_nonempty(o, "currency", e->currency);
	set_int64(o, "balanceAfterCents", e->balance_after_cents);
	set_nonempty(o, "createdAt", e->created_at);
	set_nonempty(o, "kind", e->kind);
	set_nonempty(o, "refundId", e->refund_id);
	return o;
}

/* call() + unpack with descriptor d: the message, or NULL after printing
 * why (*rc then holds the exit status). */
static ProtobufCMessage *
call_unpack(const struct ctl *c, const char *method, const ProtobufCMessage *req,
    const ProtobufCMessageDescriptor *d, int *rc)
{
	struct gcli_result res;
	ProtobufCMessage *m;

	*rc = 1;
	if (call(c, method, req, &res) != 0)
		return NULL;
	m = protobuf_c_message_unpack(d, NULL, res.len, res.body);
	gcli_result_free(&res);
	if (m == NULL)
		*rc = decode_failed();
	else
		*rc = 0;
	return m;
}

static int
cmd_authorize(struct ctl *c, char **args, int nargs)
{
	Payment__V1__AuthorizePaymentRequest q = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
	Payment__V1__AuthorizePaymentResponse *r;
	struct map_entry *store;
	json_t *o;
	int rc;

	(void)args;
	(void)nargs;
	/* Missing fields go out empty: the server says what is wrong. */
	q.idempotency_key = (char *)(c->key ? c->key : "");
	q.payer_account_id = (char *)(c->payer ? c->payer : "");
	q.payee_account_id = (char *)(c->payee ? c->payee : "");
	q.amount_cents = c->amount;
	q.currency = (char *)(c->currency ? c->currency : "");
	q.description = (char *)(c->desc ? c->desc : "");
	q.capture_method = (Payment__V1__CaptureMethod)c->capture_method;
	q.hold_ttl_seconds = c->hold_ttl;
	q.n_metadata = c->nmeta;
	q.metadata = (Payment__V1__AuthorizePaymentRequest__MetadataEntry **)meta_entries(
	    c, &payment__v1__authorize_payment_request__metadata_entry__descriptor, &store);
	r = (Payment__V1__AuthorizePaymentResponse *)call_unpack(c,
	    "/payment.v1.PaymentService/AuthorizePayment", &q.base,
	    &payment__v1__authorize_payment_response__descriptor, &rc);
	free(q.metadata);
	free(store);
	if (r == NULL)
		return rc;
	o = json_object();
	set_nonempty(o, "paymentId", r->payment_id);
	set_enum(o, "status", &payment__v1__payment_status__descriptor, r->status);
	set_error(o, r->error);
	set_nonempty(o, "processedAt", r->processed_at);
	print_json(o);
	payment__v1__authorize_payment_response__free_unpacked(r, NULL);
	return 0;
}

static int
cmd_get(struct ctl *c, char **args, int nargs)
{
	Payment__V1__GetPaymentRequest q = PAYMENT__V1__GET_PAYMENT_REQUEST__INIT;
	Payment__V1__GetPaymentResponse *r;
	json_t *o;
	int rc;

	(void)nargs;
	q.payment_id = args[0];
	r = (Payment__V1__GetPaymentResponse *)call_unpack(c,
	    "/payment.v1.PaymentService/GetPayment", &q.base,
	    &payment__v1__get_payment_response__descriptor, &rc);
	if (r == NULL)
		return rc;
	if (r->payment == NULL) {
		payment__v1__get_payment_response__free_unpacked(r, NULL);
		return decode_failed();
	}
	o = json_object();
	json_object_set_new(o, "payment", payment_json(r->payment));
	print_json(o);
	payment__v1__get_payment_response__free_unpacked(r, NULL);
	return 0;
}

/* The common tail of capture/void/refund replies. */
static void
print_op_reply(json_t *o, const Payment__V1__Payment *pm, const Payment__V1__PaymentError *err,
    protobuf_c_boolean replayed)
{
	if (pm != NULL)
		json_object_set_new(o, "payment", payment_json(pm));
	set_error(o, err);
	if (replayed)
		json_object_set_new(o, "replayed", json_true());
	print_json(o);
}

static int
cmd_capture(struct ctl *c, char **args, int nargs)
{
	Payment__V1__CapturePaymentRequest q = PAYMENT__V1__CAPTURE_PAYMENT_REQUEST__INIT;
	Payment__V1__CapturePaymentResponse *r;
	int rc;

	(void)nargs;
	q.idempotency_key = (char *)(c->key ? c->key : "");
	q.payment_id = args[0];
	q.amount_cents = c->amount;
	r = (Payment__V1__CapturePaymentResponse *)call_unpack(c,
	    "/payment.v1.PaymentService/CapturePayment", &q.base,
	    &payment__v1__capture_payment_response__descriptor, &rc);
	if (r == NULL)
		return rc;
	print_op_reply(json_object(), r->payment, r->error, r->replayed);
	payment__v1__capture_payment_response__free_unpacked(r, NULL);
	return 0;
}

static int
cmd_void(struct ctl *c, char **args, int nargs)
{
	Payment__V1__VoidPaymentRequest q = PAYMENT__V1__VOID_PAYMENT_REQUEST__INIT;
	Payment__V1__VoidPaymentResponse *r;
	int rc;

	(void)nargs;
	q.idempotency_key = (char *)(c->key ? c->key : "");
	q.payment_id = args[0];
	q.reason = (char *)(c->reason ? c->reason : "");
	r = (Payment__V1__VoidPaymentResponse *)call_unpack(c,
	    "/payment.v1.PaymentService/VoidPayment", &q.base,
	    &payment__v1__void_payment_response__descriptor, &rc);
	if (r == NULL)
		return rc;
	print_op_reply(json_object(), r->payment, r->error, r->replayed);
	payment__v1__void_payment_response__free_unpacked(r, NULL);
	return 0;
}

static int
cmd_refund(struct ctl *c, char **args, int nargs)
{
	Payment__V1__RefundPaymentRequest q = PAYMENT__V1__REFUND_PAYMENT_REQUEST__INIT;
	Payment__V1__RefundPaymentResponse *r;
	json_t *o;
	int rc;

	(void)nargs;
	q.idempotency_key = (char *)(c->key ? c->key : "");
	q.payment_id = args[0];
	q.amount_cents = c->amount;
	q.reason = (char *)(c->reason ? c->reason : "");
	r = (Payment__V1__RefundPaymentResponse *)call_unpack(c,
	    "/payment.v1.PaymentService/RefundPayment", &q.base,
	    &payment__v1__refund_payment_response__descriptor, &rc);
	if (r == NULL)
		return rc;
	o = json_object();
	if (r->refund != NULL) {
		json_t *f = json_object();
		set_nonempty(f, "refundId", r->refund->refund_id);
		set_nonempty(f, "paymentId", r->refund->payment_id);
		set_int64(f, "amountCents", r->refund->amount_cents);
		set_nonempty(f, "reason", r->refund->reason);
		set_nonempty(f, "createdAt", r->refund->created_at);
		json_object_set_new(o, "refund", f);
	}
	print_op_reply(o, r->payment, r->error, r->replayed);
	payment__v1__refund_payment_response__free_unpacked(r, NULL);
	return 0;
}

/* Checks the page token a list call got back: empty ends --all; the one
 * just sent again would loop forever. */
static int
next_page(const char *sent, const char *got, int *pages)
{
	if (got == NULL || got[0] == '\0')
		return 0;
	if (sent != NULL && strcmp(sent, got) == 0) {
		fprintf(stderr, "ERROR: the server returned the page token it was sent\n");
		return -1;
	}
	if (++*pages >= MAX_PAGES) {
		fprintf(stderr, "ERROR: more than %d pages\n", MAX_PAGES);
		return -1;
	}
	return 1;
}

static int
cmd_payments(struct ctl *c, char **args, int nargs)
{
	Payment__V1__ListPaymentsRequest q = PAYMENT__V1__LIST_PAYMENTS_REQUEST__INIT;
	json_t *o = json_object(), *items = json_array();
	char *token = xstrdup(c->page_token ? c->page_token : "");
	int rc = 0, pages = 0, more;

	(void)nargs;
	q.account_id = args[0];
	q.page_size = c->page_size;
	q.status = (Payment__V1__PaymentStatus)c->status;
	do {
		Payment__V1__ListPaymentsResponse *r;
		size_t i;

		q.page_token = token;
		r = (Payment__V1__ListPaymentsResponse *)call_unpack(c,
		    "/payment.v1.PaymentService/ListPayments", &q.base,
		    &payment__v1__list_payments_response__descriptor, &rc);
		if (r == NULL)
			goto out;
		for (i = 0; i < r->n_payments; i++)
			json_array_append_new(items, payment_json(r->payments[i]));
		more = c->all ? next_page(token, r->next_page_token, &pages) : 0;
		free(token);
		token = xstrdup(r->next_page_token);
		payment__v1__list_payments_response__free_unpacked(r, NULL);
		if (more < 0) {
			rc = 1;
			goto out;
		}
	} while (more);
	json_object_set_new(o, "payments", items);
	items = NULL;
	set_nonempty(o, "nextPageToken", token);
	print_json(o);
	o = NULL;
out:
	json_decref(items);
	json_decref(o);
	free(token);
	return rc;
}

static int
cmd_entries(struct ctl *c, char **args, int nargs)
{
	Payment__V1__ListAccountEntriesRequest q = PAYMENT__V1__LIST_ACCOUNT_ENTRIES_REQUEST__INIT;
	json_t *o = json_object(), *items = json_array();
	char *token = xstrdup(c->page_token ? c->page_token : "");
	int rc = 0, pages = 0, more;

	(void)nargs;
	q.account_id = args[0];
	q.page_size = c->page_size;
	q.start_time = (char *)(c->start ? c->start : "");
	q.end_time = (char *)(c->end ? c->end : "");
	do {
		Payment__V1__ListAccountEntriesResponse *r;
		size_t i;

		q.page_token = token;
		r = (Payment__V1__ListAccountEntriesResponse *)call_unpack(c,
		    "/payment.v1.PaymentService/ListAccountEntries", &q.base,
		    &payment__v1__list_account_entries_response__descriptor, &rc);
		if (r == NULL)
			goto out;
		for (i = 0; i < r->n_entries; i++)
			json_array_append_new(items, entry_json(r->entries[i]));
		more = c->all ? next_page(token, r->next_page_token, &pages) : 0;
		free(token);
		token = xstrdup(r->next_page_token);
		payment__v1__list_account_entries_response__free_unpacked(r, NULL);
		if (more < 0) {
			rc = 1;
			goto out;
		}
	} while (more);
	json_object_set_new(o, "entries", items);
	items = NULL;
	set_nonempty(o, "nextPageToken", token);
	print_json(o);
	o = NULL;
out:
	json_decref(items);
	json_decref(o);
	free(token);
	return rc;
}

static int
cmd_balance(struct ctl *c, char **args, int nargs)
{
	Payment__V1__GetAccountBalanceRequest q = PAYMENT__V1__GET_ACCOUNT_BALANCE_REQUEST__INIT;
	Payment__V1__GetAccountBalanceResponse *r;
	json_t *o;
	int rc;

	(void)nargs;
	q.account_id = args[0];
	q.as_of = (char *)(c->as_of ? c->as_of : "");
	r = (Payment__V1__GetAccountBalanceResponse *)call_unpack(c,
	    "/payment.v1.PaymentService/GetAccountBalance", &q.base,
	    &payment__v1__get_account_balance_response__descriptor, &rc);
	if (r == NULL)
		return rc;
	o = json_object();
	set_nonempty(o, "accountId", r->account_id);
	set_int64(o, "availableBalanceCents", r->available_balance_cents);
	set_int64(o, "pendingBalanceCents", r->pending_balance_cents);
	set_nonempty(o, "currency", r->currency);
	print_json(o);
	payment__v1__get_account_balance_response__free_unpacked(r, NULL);
	return 0;
}

/* The three AccountService calls answer an Account. */
static int
account_call(struct ctl *c, const char *method, const ProtobufCMessage *q)
{
	Payment__V1__Account *a;
	int rc;

	a = (Payment__V1__Account *)call_unpack(
	    c, method, q, &payment__v1__account__descriptor, &rc);
	if (a == NULL)
		return rc;
	print_json(account_json(a));
	payment__v1__account__free_unpacked(a, NULL);
	return 0;
}

static int
cmd_account_create(struct ctl *c, char **args, int nargs)
{
	Payment__V1__CreateAccountRequest q = PAYMENT__V1__CREATE_ACCOUNT_REQUEST__INIT;
	struct map_entry *store;
	int rc;

	(void)args;
	(void)nargs;
	q.account_id = (char *)(c->account_id ? c->account_id : "");
	q.currency = (char *)(c->currency ? c->currency : "");
	q.overdraft_limit_cents = c->overdraft;
	q.n_metadata = c->nmeta;
	q.metadata = (Payment__V1__CreateAccountRequest__MetadataEntry **)meta_entries(
	    c, &payment__v1__create_account_request__metadata_entry__descriptor, &store);
	rc = account_call(c, "/payment.v1.AccountService/CreateAccount", &q.base);
	free(q.metadata);
	free(store);
	return rc;
}

static int
cmd_account_get(struct ctl *c, char **args, int nargs)
{
	Payment__V1__GetAccountRequest q = PAYMENT__V1__GET_ACCOUNT_REQUEST__INIT;

	(void)nargs;
	q.account_id = args[0];
	return account_call(c, "/payment.v1.AccountService/GetAccount", &q.base);
}

static int
cmd_account_status(struct ctl *c, char **args, int nargs)
{
	static const char *const statuses[] = { "ACTIVE", "FROZEN", "CLOSED" };
	Payment__V1__UpdateAccountStatusRequest q =
	    PAYMENT__V1__UPDATE_ACCOUNT_STATUS_REQUEST__INIT;
	size_t i;

	(void)nargs;
	for (i = 0; i < ARRAY_LEN(statuses); i++)
		if (strcasecmp(args[1], statuses[i]) == 0)
			break;
	if (i == ARRAY_LEN(statuses))
		usage_error(
		    "account status: unknown status \"%s\" (expected ACTIVE, FROZEN or CLOSED)",
		    args[1]);
	q.account_id = args[0];
	q.status = (char *)statuses[i];
	q.reason = (char *)(c->reason ? c->reason : "");
	return account_call(c, "/payment.v1.AccountService/UpdateAccountStatus", &q.base);
}

static int cmd_help(struct ctl *c, char **args, int nargs);

struct command {
	const char *name;  /* one word, or two ("account create") */
	const char *usage; /* what follows the name */
	int min_args, max_args;
	int (*run)(struct ctl *c, char **args, int nargs);
	const char *help;
};

static const struct command commands[] = {
	{ "health", "[SERVICE]", 0, 1, cmd_health,
	    "Health/Check (default: whole server); exit 0 if SERVING" },
	{ "authorize",
	    "--key K --payer P --payee Q --amount CENTS --currency C [--description D]"
	    " [--capture-method automatic|manual] [--hold-ttl S] [--metadata K=V]...",
	    0, 0, cmd_authorize, "AuthorizePayment (a replayed key: DUPLICATE)" },
	{ "get", "PAYMENT_ID", 1, 1, cmd_get, "GetPayment" },
	{ "capture", "PAYMENT_ID --key K [--amount CENTS]", 1, 1, cmd_capture,
	    "CapturePayment of a manual payment's hold (default: all of it)" },
	{ "void", "PAYMENT_ID --key K [--reason R]", 1, 1, cmd_void,
	    "VoidPayment: release a manual payment's hold" },
	{ "refund", "PAYMENT_ID --key K [--amount CENTS] [--reason R]", 1, 1, cmd_refund,
	    "RefundPayment (default: all that is left to refund)" },
	{ "payments", "ACCOUNT_ID [--status S] [--page-size N] [--page-token T] [--all]", 1, 1,
	    cmd_payments, "ListPayments where the account is payer or payee, newest first" },
	{ "entries",
	    "ACCOUNT_ID [--start TIME] [--end TIME] [--page-size N] [--page-token T] [--all]", 1, 1,
	    cmd_entries, "ListAccountEntries: the account's ledger entries, newest first" },
	{ "balance", "ACCOUNT_ID [--as-of TIME]", 1, 1, cmd_balance, "GetAccountBalance" },
	{ "account create",
	    "[--id ACCOUNT_ID] --currency C [--overdraft CENTS] [--metadata K=V]...", 0, 0,
	    cmd_account_create, "AccountService/CreateAccount (admin)" },
	{ "account get", "ACCOUNT_ID", 1, 1, cmd_account_get, "AccountService/GetAccount" },
	{ "account status", "ACCOUNT_ID ACTIVE|FROZEN|CLOSED [--reason R]", 2, 2,
	    cmd_account_status, "AccountService/UpdateAccountStatus (admin)" },
	{ "help", "", 0, 0, cmd_help, "print this help and exit" },
};

/* Whether the comma-separated command list l holds name. */
static int
cmds_has(const char *l, const char *name)
{
	size_t n = strlen(name);

	while (l != NULL && *l) {
		const char *end = strchr(l, ',');
		size_t len = end ? (size_t)(end - l) : strlen(l);

		if (len == n && strncmp(l, name, n) == 0)
			return 1;
		l = end ? end + 1 : NULL;
	}
	return 0;
}

/* "create, get or status": the subcommands of group, for messages. */
static const char *
subcommands(const char *group)
{
	static char buf[128];
	size_t i, off = 0, glen = strlen(group), n = 0, k = 0;

	for (i = 0; i < ARRAY_LEN(commands); i++)
		if (strncmp(commands[i].name, group, glen) == 0 && commands[i].name[glen] == ' ')
			n++;
	for (i = 0; i < ARRAY_LEN(commands); i++) {
		if (strncmp(commands[i].name, group, glen) != 0 || commands[i].name[glen] != ' ')
			continue;
		k++;
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
		    k == 1       ? ""
		        : k == n ? " or "
		                 : ", ",
		    commands[i].name + glen + 1);
		if (off >= sizeof(buf))
			abort(); /* a fixed table */
	}
	return buf;
}

static void
print_usage(FILE *f)
{
	size_t i;

	fputs("usage: paymentctl [--target host:port] [--timeout ms] [-H key:value]...\n"
	      "                  [--plaintext | --tls-ca FILE [--tls-cert FILE --tls-key FILE]]"
	      " COMMAND\n",
	    f);
	for (i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(f, "  %s%s%s\n", commands[i].name, commands[i].usage[0] ? " " : "",
		    commands[i].usage);
}

/* "  left  help", help in column 28 or on the next line if left is long. */
static void
help_line(FILE *f, const char *left, const char *help)
{
	if (strlen(left) <= 24)
		fprintf(f, "  %-24s  %s\n", left, help);
	else
		fprintf(f, "  %s\n  %-24s  %s\n", left, "", help);
}

static int
cmd_help(struct ctl *c, char **args, int nargs)
{
	char left[256];
	size_t i, j;

	(void)c;
	(void)args;
	(void)nargs;
	printf("usage: paymentctl [OPTIONS] COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < ARRAY_LEN(commands); i++) {
		snprintf(left, sizeof(left), "%s%s%s", commands[i].name,
		    commands[i].usage[0] ? " " : "", commands[i].usage);
		help_line(stdout, left, commands[i].help);
	}
	for (j = 0; j < 1 + ARRAY_LEN(commands); j++) {
		/* j == 0: global options, then each command's own. */
		const char *cmd = j == 0 ? NULL : commands[j - 1].name;
		int header = 0;

		for (i = 0; i < ARRAY_LEN(opt_specs); i++) {
			const struct opt_spec *o = &opt_specs[i];
			if (cmd == NULL ? o->cmds != NULL : !cmds_has(o->cmds, cmd))
				continue;
			if (!header++)
				printf("\n%s%s:\n", cmd ? cmd : "options", cmd ? " options" : "");
			if (o->code > 255)
				snprintf(left, sizeof(left), "    --%s%s%s", o->name,
				    o->metavar ? " " : "", o->metavar ? o->metavar : "");
			else
				snprintf(left, sizeof(left), "-%c, --%s%s%s", o->code, o->name,
				    o->metavar ? " " : "", o->metavar ? o->metavar : "");
			help_line(stdout, left, o->help);
		}
	}
	printf("\nTransport: TLS by default, verified against --tls-ca (else the system's\n"
	       "roots); --tls-cert and --tls-key add a client certificate (mutual TLS).\n"
	       "A TLS option or PAYMENTD_TLS_CA/_CERT/_KEY wins over PAYMENTD_PLAINTEXT=1;\n"
	       "--plaintext with a TLS option is a usage error.\n"
	       "\nOptions may come before or after the command. Output is proto3 JSON\n"
	       "(like grpcurl). Exit status: 0 OK, 1 any other gRPC status (printed as\n"
	       "\"ERROR:\" with Code and Message on stderr; a failed TLS handshake is\n"
	       "UNAVAILABLE), 2 usage error.\n");
	return 0;
}

/* "a,b,c" as "a, b or c" in buf. */
static void
cmds_words(const char *l, char *buf, size_t len)
{
	size_t n = 1, k = 0, off = 0;
	const char *p;

	for (p = l; *p; p++)
		n += *p == ',';
	for (p = l; *p && off < len; k++) {
		size_t w = strcspn(p, ",");

		off += (size_t)snprintf(buf + off, len - off, "%s%.*s",
		    k == 0           ? ""
		        : k == n - 1 ? " or "
		                     : ", ",
		    (int)w, p);
		p += w + (p[w] == ',');
	}
}

/* Exits 2 if an option of other commands was given with cmd. */
static void
check_opts(const struct command *cmd, const int *given)
{
	size_t i;
	char names[160];

	for (i = 0; i < ARRAY_LEN(opt_specs); i++) {
		if (!given[i] || opt_specs[i].cmds == NULL ||
		    cmds_has(opt_specs[i].cmds, cmd->name))
			continue;
		cmds_words(opt_specs[i].cmds, names, sizeof(names));
		usage_error(
		    "--%s is an option of %s, not of %s", opt_specs[i].name, names, cmd->name);
	}
}

/*
 * The command pos[] names: one word, or two for "account create" and
 * the like; *nwords says how many it took. Exits 2 if none matches.
 */
static const struct command *
find_command(char **pos, int npos, int *nwords)
{
	const char *group = NULL;
	size_t i, n0 = strlen(pos[0]);

	for (i = 0; i < ARRAY_LEN(commands); i++) {
		const char *name = commands[i].name, *sp = strchr(name, ' ');

		if (sp == NULL) {
			if (strcmp(name, pos[0]) == 0) {
				*nwords = 1;
				return &commands[i];
			}
			continue;
		}
		if ((size_t)(sp - name) != n0 || strncmp(name, pos[0], n0) != 0)
			continue;
		group = pos[0];
		if (npos > 1 && strcmp(sp + 1, pos[1]) == 0) {
			*nwords = 2;
			return &commands[i];
		}
	}
	if (group == NULL)
		usage_error("unknown command \"%s\"", pos[0]);
	if (npos < 2)
		usage_error("%s: missing subcommand (%s)", group, subcommands(group));
	usage_error("%s: unknown subcommand \"%s\" (%s)", group, pos[1], subcommands(group));
}

int
main(int argc, char **argv)
{
	struct ctl c = { .target = getenv("PAYMENTD_TARGET"), .timeout_ms = 10000 };
	int given[ARRAY_LEN(opt_specs)] = { 0 };
	char **pos = xcalloc((size_t)argc + 1, sizeof(*pos));
	const struct command *cmd = NULL;
	int npos, nargs, nwords, rc;
	size_t i;

	if (c.target == NULL)
		c.target = "localhost:50051";
	npos = parse_args(&c, argc, argv, pos, given);
	if (c.help) {
		free(pos);
		return cmd_help(&c, NULL, 0);
	}
	if (npos == 0) {
		print_usage(stderr);
		free(pos);
		return 2;
	}
	cmd = find_command(pos, npos, &nwords);
	nargs = npos - nwords;
	if (nargs < cmd->min_args)
		usage_error("%s: missing argument (usage: paymentctl %s %s)", cmd->name, cmd->name,
		    cmd->usage);
	if (nargs > cmd->max_args)
		usage_error(
		    "%s: unexpected argument \"%s\"", cmd->name, pos[nwords + cmd->max_args]);
	check_opts(cmd, given);
	if (cmd->run != cmd_help) {
		char err[512];

		gcli_global_init();
		if (gcli_transport_setup(&c.tr, err, sizeof(err)) < 0)
			usage_error("%s", err);
		add_token(&c);
	}
	rc = cmd->run(&c, pos + nwords, nargs);
	gcli_transport_release(&c.tr);
	for (i = 0; i < c.nmeta; i++) {
		free(c.meta[i].key);
		free(c.meta[i].value);
	}
	free(pos);
	return rc;
}
