/* SPDX-License-Identifier: MIT */
/*
 * tls_server.c — the worker's server-side TLS context (see tls_server.h).
 *
 * Built once per worker, before lock-down (OpenSSL reads its configuration
 * file and seeds its DRBG then; after chroot and seccomp it only computes
 * and reads/writes the client socket). What goes in and why:
 *   - the certificate chain and client CA bundle from the supervisor's
 *     sealed blob (SUP_FD_TLS): the worker cannot open TLS_* files itself,
 *     they may be readable by root only;
 *   - a private key that is not there: tls_remotekey_use() installs the
 *     certificate's public key with a method that asks the key-holder for
 *     the handshake's one signature;
 *   - TLS 1.2 only with ECDHE and AEAD suites (forward secrecy; no RSA key
 *     exchange, so the key-holder is never a decryption oracle), TLS 1.3
 *     with OpenSSL's defaults; no renegotiation (a worker gets one
 *     signature per connection), no compression;
 *   - ALPN: h2 or nothing — a client that offers ALPN without h2 is not a
 *     gRPC client and gets no_application_protocol;
 *   - stateless session tickets under the supervisor's per-generation keys,
 *     so a client reconnecting to another worker process resumes without a
 *     signature (no server-side session cache: each process lives for one
 *     connection).
 */
#include "tls_server.h"
#include "tls_remotekey.h"
#include "sup/sup_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static void
ssl_err(char *err, size_t errlen, const char *what)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "no detail");
	snprintf(err, errlen, "%s: %s", what, buf);
	ERR_clear_error();
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = { 2, 'h', '2' };
	unsigned char *sel = NULL;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* Leaf (with its AUX trust data, if any) then the rest of the chain. */
static int
load_chain(SSL_CTX *ctx, const char *pem, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = NULL;
	int rc = -1;

	if (b == NULL || (x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL)) == NULL) {
		ssl_err(err, errlen, "TLS_CERT_FILE: no certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		ssl_err(err, errlen, "TLS_CERT_FILE: certificate refused");
		goto out;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) { /* takes x on success */
			ssl_err(err, errlen, "TLS_CERT_FILE: chain certificate refused");
			goto out;
		}
	x = NULL;
	ERR_clear_error(); /* the loop ends on "no start line" */
	rc = 0;
out:
	X509_free(x);
	BIO_free(b);
	return rc;
}

/* Trust store for client certificates, and the CA names the server sends
 * in its CertificateRequest so clients pick the right certificate. */
static int
load_client_ca(SSL_CTX *ctx, const char *pem, char *err, size_t errlen)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_STORE *st = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
	X509 *x;
	int rc = -1, n = 0;

	if (b == NULL || names == NULL) {
		ssl_err(err, errlen, "TLS_CLIENT_CA_FILE");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(x));

		if (X509_STORE_add_cert(st, x) != 1 || nm == NULL ||
		    sk_X509_NAME_push(names, nm) <= 0) {
			X509_NAME_free(nm);
			X509_free(x);
			ssl_err(err, errlen, "TLS_CLIENT_CA_FILE: certificate refused");
			goto out;
		}
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		snprintf(err, errlen, "TLS_CLIENT_CA_FILE: no certificate in it");
		goto out;
	}
	SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
	names = NULL;
	rc = 0;
out:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	BIO_free(b);
	return rc;
}

SSL_CTX *
tls_server_ctx(const struct config *cfg, int tls_fd, int kh_fd, char *err, size_t errlen)
{
	struct sup_tls_blob hdr;
	char *cert = NULL, *ca = NULL;
	SSL_CTX *ctx = NULL;
	unsigned char seed;
	int ok = 0, mode = SSL_VERIFY_NONE;

	if (sup_proto_tls_read(tls_fd, &hdr, &cert, &ca, err, errlen) < 0)
		goto out;
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1 || RAND_bytes(&seed, 1) != 1) {
		ssl_err(err, errlen, "OpenSSL initialisation");
		goto out;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ssl_err(err, errlen, "SSL_CTX_new");
		goto out;
	}
	if (SSL_CTX_set_min_proto_version(ctx,
	        strcmp(cfg->tls_min_version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		ssl_err(err, errlen, "TLS versions and ciphers");
		goto out;
	}
	SSL_CTX_set_options(
	    ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* TLS 1.3: AES-128-GCM first (as fast as anything for gRPC's small
	 * records, with AES-NI), then the other two. */
	if (SSL_CTX_set_ciphersuites(ctx,
	        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
	        "TLS_CHACHA20_POLY1305_SHA256") != 1) {
		ssl_err(err, errlen, "TLS 1.3 cipher suites");
		goto out;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No read-ahead (SSL_CTX_set_read_ahead): with it, a cleartext HTTP/2
	 * client was no longer refused at once but only at the handshake
	 * deadline (51-node-tls measures it). */
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	if (load_chain(ctx, cert, err, errlen) < 0)
		goto out;
	if (tls_remotekey_use(ctx, kh_fd, err, errlen) < 0)
		goto out;
	if (ca != NULL && load_client_ca(ctx, ca, err, errlen) < 0)
		goto out;
	if (strcmp(cfg->tls_client_auth, "require") == 0)
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
	else if (strcmp(cfg->tls_client_auth, "request") == 0)
		mode = SSL_VERIFY_PEER;
	SSL_CTX_set_verify(ctx, mode, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	/* Resumption across worker processes: stateless tickets only. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"paymentd", 8) != 1 ||
	    SSL_CTX_set_tlsext_ticket_keys(ctx, hdr.ticket_keys, sizeof(hdr.ticket_keys)) != 1) {
		ssl_err(err, errlen, "session tickets");
		goto out;
	}
	ok = 1;
out:
	OPENSSL_cleanse(hdr.ticket_keys, sizeof(hdr.ticket_keys));
	free(cert);
	free(ca);
	if (!ok) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}
