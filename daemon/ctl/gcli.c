/* SPDX-License-Identifier: MIT */
/*
 * gcli.c — blocking unary client calls and the cleartext / TLS transport
 * they go over (gcli.h).
 */
#include "gcli.h"
#include "grpc/grpc_util.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#define PEM_MAX  (1 << 20) /* far above any certificate chain or key */
#define ARGS_MAX 8

void
gcli_global_init(void)
{
	grpc_init();
}

/*
 * Reads the PEM file path whole into a NUL-terminated malloc'd *out (*len
 * bytes); what names the setting in messages. 0, or -1 with err set.
 */
static int
read_pem(const char *what, const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0;
	int rc = -1;

	*out = NULL;
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open %s: %s", what, path, strerror(errno));
		goto out;
	}
	buf = xmalloc(PEM_MAX + 1);
	n = fread(buf, 1, PEM_MAX + 1, f);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (n > PEM_MAX) {
		snprintf(err, errlen, "%s: %s is larger than %d bytes", what, path, PEM_MAX);
		goto out;
	}
	buf[n] = '\0';
	/* grpc would only fail at the handshake, as UNAVAILABLE: say it now. */
	if (strstr(buf, "-----BEGIN ") == NULL) {
		snprintf(err, errlen, "%s: %s holds no PEM block", what, path);
		goto out;
	}
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		explicit_bzero(buf, n); /* it may have been a private key */
		free(buf);
	}
	if (f != NULL)
		fclose(f);
	return rc;
}

/* *value from the environment variable env when the flag left it unset;
 * *origin names where it came from. An empty variable counts as unset. */
static void
from_env(const char **value, const char **origin, const char *env)
{
	const char *v = getenv(env);

	if (*value == NULL && v != NULL && *v != '\0') {
		*value = v;
		*origin = env;
	}
}

/* PAYMENTD_PLAINTEXT as a boolean in *on; -1 with err for other words. */
static int
env_plaintext(int *on, char *err, size_t errlen)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "", "0", "false", "no", "off" };
	const char *v = getenv("PAYMENTD_PLAINTEXT");
	size_t i;

	*on = 0;
	if (v == NULL)
		return 0;
	for (i = 0; i < ARRAY_LEN(yes); i++)
		if (strcasecmp(v, yes[i]) == 0) {
			*on = 1;
			return 0;
		}
	for (i = 0; i < ARRAY_LEN(no); i++)
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	snprintf(err, errlen, "PAYMENTD_PLAINTEXT: expected 1 or 0, got \"%s\"", v);
	return -1;
}

int
gcli_transport_setup(struct gcli_transport *t, char *err, size_t errlen)
{
	const char *o_ca = "--tls-ca", *o_cert = "--tls-cert", *o_key = "--tls-key";
	grpc_ssl_pem_key_cert_pair pair = { NULL, NULL };
	char *roots = NULL, *chain = NULL, *key = NULL;
	size_t roots_len = 0, chain_len = 0, key_len = 0;
	int env_plain = 0, rc = -1;

	t->tls = 0;
	t->creds = NULL;
	if (t->plaintext) {
		if (t->ca_file || t->cert_file || t->key_file || t->server_name) {
			snprintf(err, errlen,
			    "--plaintext excludes --tls-ca, --tls-cert, --tls-key and --tls-server-name");
			goto out;
		}
		t->creds = grpc_insecure_credentials_create();
		rc = 0;
		goto out;
	}
	from_env(&t->ca_file, &o_ca, "PAYMENTD_TLS_CA");
	from_env(&t->cert_file, &o_cert, "PAYMENTD_TLS_CERT");
	from_env(&t->key_file, &o_key, "PAYMENTD_TLS_KEY");
	if ((t->cert_file == NULL) != (t->key_file == NULL)) {
		snprintf(err, errlen, "%s needs %s too (a client certificate goes with its key)",
		    t->cert_file ? o_cert : o_key,
		    t->cert_file ? "--tls-key or PAYMENTD_TLS_KEY"
		                 : "--tls-cert or PAYMENTD_TLS_CERT");
		goto out;
	}
	if (!t->ca_file && !t->cert_file && !t->server_name) {
		if (env_plaintext(&env_plain, err, errlen) < 0)
			goto out;
		if (env_plain) {
			t->creds = grpc_insecure_credentials_create();
			rc = 0;
			goto out;
		}
	}
	if (t->ca_file && read_pem(o_ca, t->ca_file, &roots, &roots_len, err, errlen) < 0)
		goto out;
	if (t->cert_file) {
		if (read_pem(o_cert, t->cert_file, &chain, &chain_len, err, errlen) < 0 ||
		    read_pem(o_key, t->key_file, &key, &key_len, err, errlen) < 0)
			goto out;
		pair.cert_chain = chain;
		pair.private_key = key;
	}
	/* NULL roots: grpc's defaults (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, else
	 * its bundled or the system's); NULL verify options: full chain and
	 * name verification. grpc copies the strings. */
	t->creds = grpc_ssl_credentials_create(roots, chain ? &pair : NULL, NULL, NULL);
	if (t->creds == NULL) {
		snprintf(err, errlen, "grpc could not make TLS credentials from the given files");
		goto out;
	}
	t->tls = 1;
	rc = 0;
out:
	if (key != NULL) {
		explicit_bzero(key, key_len);
		free(key);
	}
	free(chain);
	free(roots);
	return rc;
}

void
gcli_transport_release(struct gcli_transport *t)
{
	if (t->creds != NULL)
		grpc_channel_credentials_release(t->creds);
	t->creds = NULL;
}

void
gcli_transport_describe(const struct gcli_transport *t, char *buf, size_t len)
{
	if (!t->tls) {
		snprintf(buf, len, "plaintext");
		return;
	}
	snprintf(buf, len, "TLS (roots %s%s%s%s%s)", t->ca_file ? t->ca_file : "grpc default",
	    t->cert_file ? ", client certificate " : "", t->cert_file ? t->cert_file : "",
	    t->server_name ? ", server name " : "", t->server_name ? t->server_name : "");
}

grpc_channel *
gcli_channel_over(
    const struct gcli_transport *t, const char *target, const grpc_arg *extra, size_t nextra)
{
	grpc_arg args[ARGS_MAX];
	grpc_channel_args ca = { 0, args };

	if (t->creds == NULL || nextra > ARGS_MAX - 2)
		abort(); /* a caller bug: no transport set up, or too many args */
	args[ca.num_args].type = GRPC_ARG_INTEGER;
	args[ca.num_args].key = (char *)GRPC_ARG_ENABLE_RETRIES;
	args[ca.num_args++].value.integer = 0;
	if (t->tls && t->server_name) {
		args[ca.num_args].type = GRPC_ARG_STRING;
		args[ca.num_args].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
		args[ca.num_args++].value.string = (char *)t->server_name;
	}
	if (nextra > 0)
		memcpy(&args[ca.num_args], extra, nextra * sizeof(*extra));
	ca.num_args += nextra;
	return grpc_channel_create(target, t->creds, &ca);
}

grpc_channel *
gcli_channel(const char *target, int fresh_connection)
{
	struct gcli_transport t = { .creds = grpc_insecure_credentials_create() };
	grpc_arg pool = { .type = GRPC_ARG_INTEGER,
		.key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL,
		.value.integer = 1 };
	grpc_channel *ch = gcli_channel_over(&t, target, &pool, fresh_connection ? 1 : 0);

	gcli_transport_release(&t);
	return ch;
}

int
gcli_unary(grpc_channel *ch, const char *method, const uint8_t *req, size_t len, int timeout_ms,
    const struct gcli_md *md, size_t nmd, struct gcli_result *res)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_metadata_array init_md, trail_md;
	grpc_byte_buffer *send = gu_bb_new(req, len), *recv = NULL;
	grpc_metadata send_md[8];
	grpc_slice method_s = grpc_slice_from_static_string(method);
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	grpc_call *call;
	grpc_event ev;
	size_t i;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	memset(ops, 0, sizeof(ops));
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	if (nmd > ARRAY_LEN(send_md))
		nmd = ARRAY_LEN(send_md);
	for (i = 0; i < nmd; i++) {
		memset(&send_md[i], 0, sizeof(send_md[i]));
		send_md[i].key = grpc_slice_from_copied_string(md[i].key);
		send_md[i].value = grpc_slice_from_copied_string(md[i].value);
	}
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method_s, NULL,
	    gu_deadline_ms(timeout_ms), NULL);
	if (call == NULL)
		goto out;

	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = nmd;
	ops[0].data.send_initial_metadata.metadata = send_md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &res->status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
		grpc_call_unref(call);
		goto out;
	}
	ev = grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		abort(); /* pluck with an infinite deadline cannot time out */
	snprintf(res->details, sizeof(res->details), "%.*s", (int)GRPC_SLICE_LENGTH(details),
	    (const char *)GRPC_SLICE_START_PTR(details));
	if (recv != NULL) {
		if (gu_bb_read(recv, &res->body, &res->len) == 0)
			res->has_body = 1;
		grpc_byte_buffer_destroy(recv);
	}
	gu_md_get(&init_md, "x-correlation-id", res->correlation_id, sizeof(res->correlation_id));
	gu_md_get(&trail_md, "retry-after", res->retry_after, sizeof(res->retry_after));
	grpc_call_unref(call);
	rc = 0;
out:
	for (i = 0; i < nmd; i++) {
		grpc_slice_unref(send_md[i].key);
		grpc_slice_unref(send_md[i].value);
	}
	grpc_slice_unref(details);
	grpc_byte_buffer_destroy(send);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_completion_queue_shutdown(cq);
	while (
	    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return rc;
}

void
gcli_result_free(struct gcli_result *res)
{
	free(res->body);
	res->body = NULL;
	res->len = 0;
}
