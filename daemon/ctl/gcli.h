/* SPDX-License-Identifier: MIT */
/*
 * gcli.h — a minimal blocking unary gRPC client over the grpc C core.
 *
 * Contract: gcli_unary() performs one unary call on an existing channel and
 * fills *res; it returns 0 whenever the call completed with any gRPC status
 * (inspect res->status) and -1 only if grpc refused to start the call.
 * res->body is malloc'd and owned by the caller (gcli_result_free). Thread
 * safe: each call uses its own completion queue, so many threads may share
 * one channel (that is how tests make concurrent streams on one HTTP/2
 * connection).
 *
 * Transport (struct gcli_transport, shared by paymentctl and
 * paymentd-loadgen): gcli_transport_setup() settles cleartext or TLS from
 * what the command line gave and the environment, in this order:
 *   1. plaintext (--plaintext): cleartext h2c; no TLS setting may be given
 *      on the command line with it;
 *   2. any TLS file (the flag, else PAYMENTD_TLS_CA / PAYMENTD_TLS_CERT /
 *      PAYMENTD_TLS_KEY, each on its own) or a server name: TLS;
 *   3. PAYMENTD_PLAINTEXT=1 (true/yes/on): cleartext; so a TLS setting in
 *      the environment wins over it: a stray PAYMENTD_PLAINTEXT never turns
 *      a configured TLS client into a cleartext one;
 *   4. otherwise TLS with grpc's default roots (secure by default).
 * TLS verifies the server's chain against ca_file (else the default roots)
 * and its name against the target's host or server_name (grpc's
 * GRPC_SSL_TARGET_NAME_OVERRIDE_ARG); cert_file + key_file (both or
 * neither) make it mutual TLS. The PEM files are read once, at setup, into
 * one credentials object that every channel of the transport shares.
 */
#ifndef PAYMENTD_GCLI_H
#define PAYMENTD_GCLI_H

#include <stddef.h>
#include <stdint.h>
#include <grpc/grpc.h>

struct gcli_md {
	const char *key;
	const char *value;
};

struct gcli_result {
	grpc_status_code status;
	char details[512];
	uint8_t *body;
	size_t len;
	int has_body;
	char correlation_id[129]; /* from initial metadata, if echoed */
	char retry_after[32];     /* from trailing metadata, if any */
};

struct gcli_transport {
	/* inputs: from the command line (NULL / 0: not given) */
	int plaintext;
	const char *ca_file, *cert_file, *key_file, *server_name;
	/* set by gcli_transport_setup */
	int tls;
	grpc_channel_credentials *creds;
};

void gcli_global_init(void);
/* Resolves t (rules above) and loads its credentials; call after
 * grpc_init(). 0, or -1 with a message naming the flag or variable at
 * fault in err (nothing was sent). */
int gcli_transport_setup(struct gcli_transport *t, char *err, size_t errlen);
void gcli_transport_release(struct gcli_transport *t);
/* One line saying what t speaks, e.g. "TLS (roots ca.pem, client cert
 * client.pem)" or "plaintext". */
void gcli_transport_describe(const struct gcli_transport *t, char *buf, size_t len);
/* A channel to host:port over t, retries off (each call is exactly one
 * attempt), plus the extra channel args (up to 6; may be NULL / 0). */
grpc_channel *gcli_channel_over(
    const struct gcli_transport *t, const char *target, const grpc_arg *extra, size_t nextra);
/* Cleartext channel to host:port (the tests' own); fresh_connection=1
 * disables subchannel sharing so each channel gets its own TCP connection. */
grpc_channel *gcli_channel(const char *target, int fresh_connection);
int gcli_unary(grpc_channel *ch, const char *method, const uint8_t *req, size_t len, int timeout_ms,
    const struct gcli_md *md, size_t nmd, struct gcli_result *res);
void gcli_result_free(struct gcli_result *res);

#endif
