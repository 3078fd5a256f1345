/* SPDX-License-Identifier: MIT */
/*
 * ctl_main.c — paymentctl, a small command-line client for paymentd.
 *
 *   paymentctl [--target host:port] [--timeout ms] [-H key:value]...
 *              [--plaintext | [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
 *               [--tls-server-name NAME]] COMMAND
 *     health [SERVICE]
 *     authorize --key K --payer P --payee Q --amount CENTS --currency C [--description D]
 *     get PAYMENT_ID
 *     balance ACCOUNT_ID
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
 * those marked with a command are accepted only with that command. Numbers
 * go through util_parse_i64, so "12x", "" or an overflow is an error, never
 * a silent 12 or 0.
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
#include <jansson.h>

#define MAX_HEADERS    8
#define TIMEOUT_MAX_MS 3600000

struct ctl {
	const char *target;
	int timeout_ms;
	struct gcli_transport tr;
	struct gcli_md md[MAX_HEADERS];
	char mdbuf[MAX_HEADERS][256];
	size_t nmd;
	int help;
	/* authorize */
	const char *key, *payer, *payee, *currency, *desc;
	int64_t amount;
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
};

struct opt_spec {
	const char *name;
	int code;            /* short option letter (or OPT_*), getopt's return value */
	const char *metavar; /* NULL: takes no argument */
	const char *cmd;     /* NULL: global; else only with this command */
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
	{ "key", 'k', "K", "authorize", "idempotency key" },
	{ "payer", 'p', "P", "authorize", "payer account id" },
	{ "payee", 'q', "Q", "authorize", "payee account id" },
	{ "amount", 'a', "CENTS", "authorize",
	    "any 64-bit integer; the server declines <= 0, > 10^15" },
	{ "currency", 'c', "C", "authorize", "ISO 4217 code, e.g. USD" },
	{ "description", 'd', "D", "authorize", "free text (default empty)" },
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

static int
cmd_authorize(struct ctl *c, char **args, int nargs)
{
	Payment__V1__AuthorizePaymentRequest q = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
	Payment__V1__AuthorizePaymentResponse *r;
	struct gcli_result res;
	json_t *o;

	(void)args;
	(void)nargs;
	/* Missing fields go out empty: the server says what is wrong. */
	q.idempotency_key = (char *)(c->key ? c->key : "");
	q.payer_account_id = (char *)(c->payer ? c->payer : "");
	q.payee_account_id = (char *)(c->payee ? c->payee : "");
	q.amount_cents = c->amount;
	q.currency = (char *)(c->currency ? c->currency : "");
	q.description = (char *)(c->desc ? c->desc : "");
	if (call(c, "/payment.v1.PaymentService/AuthorizePayment", &q.base, &res) != 0)
		return 1;
	r = payment__v1__authorize_payment_response__unpack(NULL, res.len, res.body);
	gcli_result_free(&res);
	if (r == NULL)
		return decode_failed();
	o = json_object();
	set_nonempty(o, "paymentId", r->payment_id);
	set_enum(o, "status", &payment__v1__payment_status__descriptor, r->status);
	if (r->error) {
		json_t *e = json_object();
		set_enum(e, "code", &payment__v1__payment_error_code__descriptor, r->error->code);
		set_nonempty(e, "message", r->error->message);
		json_object_set_new(o, "error", e);
	}
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
	const Payment__V1__Payment *pm;
	struct gcli_result res;
	json_t *o, *p;

	(void)nargs;
	q.payment_id = args[0];
	if (call(c, "/payment.v1.PaymentService/GetPayment", &q.base, &res) != 0)
		return 1;
	r = payment__v1__get_payment_response__unpack(NULL, res.len, res.body);
	gcli_result_free(&res);
	if (r == NULL || r->payment == NULL) {
		if (r)
			payment__v1__get_payment_response__free_unpacked(r, NULL);
		return decode_failed();
	}
	pm = r->payment;
	o = json_object();
	p = json_object();
	set_nonempty(p, "paymentId", pm->payment_id);
	set_nonempty(p, "payerAccountId", pm->payer_account_id);
	set_nonempty(p, "payeeAccountId", pm->payee_account_id);
	set_int64(p, "amountCents", pm->amount_cents);
	set_nonempty(p, "currency", pm->currency);
	set_enum(p, "status", &payment__v1__payment_status__descriptor, pm->status);
	set_nonempty(p, "description", pm->description);
	set_nonempty(p, "createdAt", pm->created_at);
	set_nonempty(p, "updatedAt", pm->updated_at);
	json_object_set_new(o, "payment", p);
	print_json(o);
	payment__v1__get_payment_response__free_unpacked(r, NULL);
	return 0;
}

static int
cmd_balance(struct ctl *c, char **args, int nargs)
{
	Payment__V1__GetAccountBalanceRequest q = PAYMENT__V1__GET_ACCOUNT_BALANCE_REQUEST__INIT;
	Payment__V1__GetAccountBalanceResponse *r;
	struct gcli_result res;
	json_t *o;

	(void)nargs;
	q.account_id = args[0];
	if (call(c, "/payment.v1.PaymentService/GetAccountBalance", &q.base, &res) != 0)
		return 1;
	r = payment__v1__get_account_balance_response__unpack(NULL, res.len, res.body);
	gcli_result_free(&res);
	if (r == NULL)
		return decode_failed();
	o = json_object();
	set_nonempty(o, "accountId", r->account_id);
	set_int64(o, "availableBalanceCents", r->available_balance_cents);
	set_int64(o, "pendingBalanceCents", r->pending_balance_cents);
	set_nonempty(o, "currency", r->currency);
	print_json(o);
	payment__v1__get_account_balance_response__free_unpacked(r, NULL);
	return 0;
}

static int cmd_help(struct ctl *c, char **args, int nargs);

struct command {
	const char *name;
	const char *usage; /* what follows the name */
	int min_args, max_args;
	int (*run)(struct ctl *c, char **args, int nargs);
	const char *help;
};

static const struct command commands[] = {
	{ "health", "[SERVICE]", 0, 1, cmd_health,
	    "Health/Check (default: whole server); exit 0 if SERVING" },
	{ "authorize", "--key K --payer P --payee Q --amount CENTS --currency C [--description D]",
	    0, 0, cmd_authorize, "AuthorizePayment (a replayed key: DUPLICATE)" },
	{ "get", "PAYMENT_ID", 1, 1, cmd_get, "GetPayment" },
	{ "balance", "ACCOUNT_ID", 1, 1, cmd_balance, "GetAccountBalance" },
	{ "help", "", 0, 0, cmd_help, "print this help and exit" },
};

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
			if (cmd == NULL ? o->cmd != NULL
			                : o->cmd == NULL || strcmp(o->cmd, cmd) != 0)
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

/* Exits 2 if an option of another command was given with cmd. */
static void
check_opts(const struct command *cmd, const int *given)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(opt_specs); i++)
		if (given[i] && opt_specs[i].cmd && strcmp(opt_specs[i].cmd, cmd->name) != 0)
			usage_error("--%s is an option of %s, not of %s", opt_specs[i].name,
			    opt_specs[i].cmd, cmd->name);
}

int
main(int argc, char **argv)
{
	struct ctl c = { .target = getenv("PAYMENTD_TARGET"), .timeout_ms = 10000 };
	int given[ARRAY_LEN(opt_specs)] = { 0 };
	char **pos = xcalloc((size_t)argc + 1, sizeof(*pos));
	const struct command *cmd = NULL;
	int npos, nargs, rc;
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
	for (i = 0; i < ARRAY_LEN(commands) && cmd == NULL; i++)
		if (strcmp(commands[i].name, pos[0]) == 0)
			cmd = &commands[i];
	if (cmd == NULL)
		usage_error("unknown command \"%s\"", pos[0]);
	nargs = npos - 1;
	if (nargs < cmd->min_args)
		usage_error("%s: missing argument (usage: paymentctl %s %s)", cmd->name, cmd->name,
		    cmd->usage);
	if (nargs > cmd->max_args)
		usage_error("%s: unexpected argument \"%s\"", cmd->name, pos[1 + cmd->max_args]);
	check_opts(cmd, given);
	if (cmd->run != cmd_help) {
		char err[512];

		gcli_global_init();
		if (gcli_transport_setup(&c.tr, err, sizeof(err)) < 0)
			usage_error("%s", err);
		add_token(&c);
	}
	rc = cmd->run(&c, pos + 1, nargs);
	gcli_transport_release(&c.tr);
	free(pos);
	return rc;
}
