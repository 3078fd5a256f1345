/*
 * ctl_main.c — paymentctl, a small command-line client for paymentd.
 *
 *   paymentctl [--target host:port] [--timeout ms] [-H key:value]... COMMAND
 *     health [SERVICE]
 *     authorize --key K --payer P --payee Q --amount CENTS --currency C [--description D]
 *     get PAYMENT_ID
 *     balance ACCOUNT_ID
 *
 * Prints the response as proto3 JSON (camelCase names, enum names), like
 * grpcurl, so README examples look the same with either tool. Exit status:
 * 0 for an OK gRPC status, 1 for any other status (printed to stderr as
 * "ERROR: CODE: details"), 2 for usage errors.
 */
#include "gcli.h"
#include "grpc/grpc_util.h"
#include "common/util.h"
#include "payment/v1/payment.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

static void
usage(void)
{
	fprintf(stderr,
	    "usage: paymentctl [--target host:port] [--timeout ms] [-H key:value]... COMMAND\n"
	    "  health [SERVICE]\n"
	    "  authorize --key K --payer P --payee Q --amount CENTS --currency C [--description D]\n"
	    "  get PAYMENT_ID\n"
	    "  balance ACCOUNT_ID\n");
	exit(2);
}

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

int
main(int argc, char **argv)
{
	const char *target = getenv("PAYMENTD_TARGET");
	const char *key = NULL, *payer = NULL, *payee = NULL, *currency = NULL, *desc = "";
	long long amount = 0;
	int timeout = 10000, c, rc = 1;
	struct gcli_md md[8];
	char mdbuf[8][256];
	size_t nmd = 0;
	struct gcli_result res;
	grpc_channel *ch;
	uint8_t *req = NULL;
	size_t reqlen = 0;
	const char *method, *cmd;
	static const struct option opts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "header", required_argument, NULL, 'H' },
		{ "key", required_argument, NULL, 'k' },
		{ "payer", required_argument, NULL, 'p' },
		{ "payee", required_argument, NULL, 'q' },
		{ "amount", required_argument, NULL, 'a' },
		{ "currency", required_argument, NULL, 'c' },
		{ "description", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};

	if (target == NULL)
		target = "localhost:50051";
	while ((c = getopt_long(argc, argv, "+t:T:H:", opts, NULL)) != -1) {
		switch (c) {
		case 't': target = optarg; break;
		case 'T': timeout = atoi(optarg); break;
		case 'H': {
			char *colon = strchr(optarg, ':');
			if (colon == NULL || nmd >= ARRAY_LEN(md) || strlen(optarg) >= sizeof(mdbuf[0]))
				usage();
			snprintf(mdbuf[nmd], sizeof(mdbuf[nmd]), "%s", optarg);
			mdbuf[nmd][colon - optarg] = '\0';
			md[nmd].key = mdbuf[nmd];
			md[nmd].value = mdbuf[nmd] + (colon - optarg) + 1;
			while (*md[nmd].value == ' ')
				md[nmd].value++;
			nmd++;
			break;
		}
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	cmd = argv[optind++];
	/* Command options may follow the command. */
	while ((c = getopt_long(argc, argv, "+k:p:q:a:c:d:", opts, NULL)) != -1) {
		switch (c) {
		case 'k': key = optarg; break;
		case 'p': payer = optarg; break;
		case 'q': payee = optarg; break;
		case 'a': amount = strtoll(optarg, NULL, 10); break;
		case 'c': currency = optarg; break;
		case 'd': desc = optarg; break;
		default: usage();
		}
	}

	if (strcmp(cmd, "health") == 0) {
		Grpc__Health__V1__HealthCheckRequest r = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		r.service = optind < argc ? argv[optind] : (char *)"";
		method = "/grpc.health.v1.Health/Check";
		reqlen = protobuf_c_message_get_packed_size(&r.base);
		req = xmalloc(reqlen);
		protobuf_c_message_pack(&r.base, req);
	} else if (strcmp(cmd, "authorize") == 0) {
		Payment__V1__AuthorizePaymentRequest r = PAYMENT__V1__AUTHORIZE_PAYMENT_REQUEST__INIT;
		r.idempotency_key = (char *)(key ? key : "");
		r.payer_account_id = (char *)(payer ? payer : "");
		r.payee_account_id = (char *)(payee ? payee : "");
		r.amount_cents = amount;
		r.currency = (char *)(currency ? currency : "");
		r.description = (char *)desc;
		method = "/payment.v1.PaymentService/AuthorizePayment";
		reqlen = protobuf_c_message_get_packed_size(&r.base);
		req = xmalloc(reqlen);
		protobuf_c_message_pack(&r.base, req);
	} else if (strcmp(cmd, "get") == 0 && optind < argc) {
		Payment__V1__GetPaymentRequest r = PAYMENT__V1__GET_PAYMENT_REQUEST__INIT;
		r.payment_id = argv[optind];
		method = "/payment.v1.PaymentService/GetPayment";
		reqlen = protobuf_c_message_get_packed_size(&r.base);
		req = xmalloc(reqlen);
		protobuf_c_message_pack(&r.base, req);
	} else if (strcmp(cmd, "balance") == 0 && optind < argc) {
		Payment__V1__GetAccountBalanceRequest r = PAYMENT__V1__GET_ACCOUNT_BALANCE_REQUEST__INIT;
		r.account_id = argv[optind];
		method = "/payment.v1.PaymentService/GetAccountBalance";
		reqlen = protobuf_c_message_get_packed_size(&r.base);
		req = xmalloc(reqlen);
		protobuf_c_message_pack(&r.base, req);
	} else {
		usage();
	}

	gcli_global_init();
	ch = gcli_channel(target, 0);
	if (gcli_unary(ch, method, req, reqlen, timeout, md, nmd, &res) < 0) {
		fprintf(stderr, "ERROR: could not start the call\n");
		goto out;
	}
	if (res.status != GRPC_STATUS_OK) {
		fprintf(stderr, "ERROR:\n  Code: %s\n  Message: %s\n", gu_status_name(res.status), res.details);
		if (res.retry_after[0])
			fprintf(stderr, "  Retry-After: %s\n", res.retry_after);
		goto done;
	}
	if (strcmp(cmd, "health") == 0) {
		Grpc__Health__V1__HealthCheckResponse *r =
		    grpc__health__v1__health_check_response__unpack(NULL, res.len, res.body);
		json_t *o = json_object();
		if (r == NULL) goto bad;
		json_object_set_new(o, "status", json_string(enum_name(
		    &grpc__health__v1__health_check_response__serving_status__descriptor, r->status)));
		print_json(o);
		rc = r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
		grpc__health__v1__health_check_response__free_unpacked(r, NULL);
	} else if (strcmp(cmd, "authorize") == 0) {
		Payment__V1__AuthorizePaymentResponse *r =
		    payment__v1__authorize_payment_response__unpack(NULL, res.len, res.body);
		json_t *o = json_object();
		if (r == NULL) goto bad;
		set_nonempty(o, "paymentId", r->payment_id);
		json_object_set_new(o, "status", json_string(enum_name(
		    &payment__v1__payment_status__descriptor, r->status)));
		if (r->error) {
			json_t *e = json_object();
			json_object_set_new(e, "code", json_string(enum_name(
			    &payment__v1__payment_error_code__descriptor, r->error->code)));
			set_nonempty(e, "message", r->error->message);
			json_object_set_new(o, "error", e);
		}
		set_nonempty(o, "processedAt", r->processed_at);
		print_json(o);
		rc = 0;
		payment__v1__authorize_payment_response__free_unpacked(r, NULL);
	} else if (strcmp(cmd, "get") == 0) {
		Payment__V1__GetPaymentResponse *r =
		    payment__v1__get_payment_response__unpack(NULL, res.len, res.body);
		json_t *o = json_object(), *p = json_object();
		if (r == NULL || r->payment == NULL) goto bad;
		set_nonempty(p, "paymentId", r->payment->payment_id);
		set_nonempty(p, "payerAccountId", r->payment->payer_account_id);
		set_nonempty(p, "payeeAccountId", r->payment->payee_account_id);
		set_int64(p, "amountCents", r->payment->amount_cents);
		set_nonempty(p, "currency", r->payment->currency);
		json_object_set_new(p, "status", json_string(enum_name(
		    &payment__v1__payment_status__descriptor, r->payment->status)));
		set_nonempty(p, "description", r->payment->description);
		set_nonempty(p, "createdAt", r->payment->created_at);
		set_nonempty(p, "updatedAt", r->payment->updated_at);
		json_object_set_new(o, "payment", p);
		print_json(o);
		rc = 0;
		payment__v1__get_payment_response__free_unpacked(r, NULL);
	} else {
		Payment__V1__GetAccountBalanceResponse *r =
		    payment__v1__get_account_balance_response__unpack(NULL, res.len, res.body);
		json_t *o = json_object();
		if (r == NULL) goto bad;
		set_nonempty(o, "accountId", r->account_id);
		set_int64(o, "availableBalanceCents", r->available_balance_cents);
		set_int64(o, "pendingBalanceCents", r->pending_balance_cents);
		set_nonempty(o, "currency", r->currency);
		print_json(o);
		rc = 0;
		payment__v1__get_account_balance_response__free_unpacked(r, NULL);
	}
	goto done;
bad:
	fprintf(stderr, "ERROR: could not decode the response\n");
done:
	gcli_result_free(&res);
out:
	free(req);
	grpc_channel_destroy(ch);
	return rc;
}
