/* SPDX-License-Identifier: MIT */
/*
 * tls_remotekey.c — the worker's half of the key-holder (contract in
 * tls_remotekey.h).
 *
 * How signing reaches the key-holder: the key installed in the SSL_CTX is a
 * legacy EC_KEY or RSA object holding the certificate's public key only,
 * with a method of our own (EC_KEY_METHOD sign/sign_sig, RSA_METHOD
 * priv_enc). OpenSSL 3.0 marks such a key "foreign" (its method is not the
 * built-in one) and, instead of exporting it to a provider (which would
 * need the private half), routes every signature through the legacy
 * EVP_PKEY_METHOD and so through our method. That API is deprecated in 3.0,
 * hence OPENSSL_SUPPRESS_DEPRECATED in this one file; the provider
 * alternative (a signature provider of our own) would be a module's worth
 * of code for the same four calls. For RSA-PSS, libssl encodes the PSS
 * block itself and asks for a raw private operation (RSA_NO_PADDING); for
 * PKCS#1 v1.5 it asks for a PKCS#1-padded operation on the DigestInfo. The
 * key-holder checks both shapes (kh_key.c).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "tls_remotekey.h"
#include "common/log.h"
#include "sup/sup_proto.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

static EC_KEY_METHOD *ec_meth;
static RSA_METHOD *rsa_meth;
static int ec_idx = -1, rsa_idx = -1;
static int probe_alg = SUP_KH_ALG_ECDSA;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request and its reply. 0 with rep, or -1 (logged). */
static int
remote(int fd, int alg, const unsigned char *data, size_t len, struct sup_kh_rep *rep)
{
	struct sup_kh_req req;
	unsigned char buf[sizeof(*rep) + 1];
	struct pollfd p;
	int64_t deadline;
	ssize_t n;
	const char *why;
	int e = 0;

	if (fd < 0 || len > SUP_KH_MAX_DATA) {
		why = "no channel or request too long";
		goto fail;
	}
	/* A reply that came after an earlier request timed out is stale. */
	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
	}
	memset(&req, 0, sizeof(req));
	req.version = SUP_KH_VERSION;
	req.alg = (uint8_t)alg;
	req.len = (uint16_t)len;
	memcpy(req.data, data, len);
	if (send(fd, &req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		e = errno;
		why = e == EPIPE ? "channel closed (refused)" : "send";
		goto fail;
	}
	deadline = now_ms() + SUP_KH_TIMEOUT_MS;
	for (;;) {
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			why = "no reply in time";
			goto fail;
		}
		p.fd = fd;
		p.events = POLLIN;
		p.revents = 0;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			e = errno;
			why = "poll";
			goto fail;
		}
		if (!p.revents)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n == 0) {
			why = "channel closed (refused)";
			goto fail;
		}
		if (n != (ssize_t)sizeof(*rep)) {
			why = "malformed reply";
			goto fail;
		}
		memcpy(rep, buf, sizeof(*rep));
		if (rep->status != SUP_KH_STATUS_OK || rep->len == 0 ||
		    rep->len > sizeof(rep->sig)) {
			why = "signature failed in the key-holder";
			goto fail;
		}
		return 0;
	}
fail:
	log_warn("key-holder signature failed", LF_S("reason", why),
	    LF_S("error", e ? strerror(e) : "-"));
	return -1;
}

static int
ex_fd(void *v)
{
	return v == NULL ? -1 : (int)((intptr_t)v - 1);
}

/* --- ECDSA --- */

static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	struct sup_kh_rep rep;
	const unsigned char *p;

	(void)kinv;
	(void)r;
	if (dlen < 0 ||
	    remote(ex_fd(EC_KEY_get_ex_data(ec, ec_idx)), SUP_KH_ALG_ECDSA, dgst, (size_t)dlen,
	        &rep) < 0)
		return NULL;
	p = rep.sig;
	return d2i_ECDSA_SIG(NULL, &p, rep.len);
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
    const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	struct sup_kh_rep rep;

	(void)type;
	(void)kinv;
	(void)r;
	if (dlen < 0 ||
	    remote(ex_fd(EC_KEY_get_ex_data(ec, ec_idx)), SUP_KH_ALG_ECDSA, dgst, (size_t)dlen,
	        &rep) < 0)
		return 0;
	/* The caller's buffer is ECDSA_size() long, the largest DER. */
	if (rep.len > (unsigned)ECDSA_size(ec))
		return 0;
	memcpy(sig, rep.sig, rep.len);
	*siglen = rep.len;
	return 1;
}

/* Precomputing k needs the private key: there is none here. */
static int
ec_sign_setup(EC_KEY *ec, BN_CTX *ctx, BIGNUM **kinv, BIGNUM **r)
{
	(void)ec;
	(void)ctx;
	(void)kinv;
	(void)r;
	return 0;
}

/* --- RSA --- */

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	struct sup_kh_rep rep;
	int alg;

	if (padding == RSA_NO_PADDING)
		alg = SUP_KH_ALG_RSA_PSS; /* the PSS block libssl encoded */
	else if (padding == RSA_PKCS1_PADDING)
		alg = SUP_KH_ALG_RSA_PKCS1; /* a DigestInfo */
	else
		return -1;
	if (flen < 0 ||
	    remote(ex_fd(RSA_get_ex_data(rsa, rsa_idx)), alg, from, (size_t)flen, &rep) < 0)
		return -1;
	if (rep.len != (unsigned)RSA_size(rsa))
		return -1;
	memcpy(to, rep.sig, rep.len);
	return rep.len;
}

/* RSA key exchange would decrypt with the private key: not offered. */
static int
rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	(void)flen;
	(void)from;
	(void)to;
	(void)rsa;
	(void)padding;
	return -1;
}

static int
methods(char *err, size_t errlen)
{
	if (ec_meth != NULL)
		return 0;
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ec_meth = EC_KEY_METHOD_new(EC_KEY_get_default_method());
	rsa_meth = RSA_meth_dup(RSA_get_default_method());
	if (ec_idx < 0 || rsa_idx < 0 || ec_meth == NULL || rsa_meth == NULL ||
	    RSA_meth_set1_name(rsa_meth, "paymentd key-holder") != 1 ||
	    RSA_meth_set_priv_enc(rsa_meth, rsa_priv_enc) != 1 ||
	    RSA_meth_set_priv_dec(rsa_meth, rsa_priv_dec) != 1) {
		snprintf(err, errlen, "remote key: cannot build the key methods");
		EC_KEY_METHOD_free(ec_meth);
		RSA_meth_free(rsa_meth);
		ec_meth = NULL;
		rsa_meth = NULL;
		return -1;
	}
	EC_KEY_METHOD_set_sign(ec_meth, ec_sign, ec_sign_setup, ec_sign_sig);
	return 0;
}

static EVP_PKEY *
remote_ec(EVP_PKEY *pub, int kh_fd)
{
	EC_KEY *src = EVP_PKEY_get1_EC_KEY(pub), *ec = NULL;
	EVP_PKEY *pk = NULL;

	if (src == NULL || (ec = EC_KEY_new()) == NULL || EC_KEY_set_method(ec, ec_meth) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(src)) != 1 ||
	    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) != 1 ||
	    EC_KEY_set_ex_data(ec, ec_idx, (void *)(intptr_t)(kh_fd + 1)) != 1 ||
	    (pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_EC_KEY(pk, ec) != 1) {
		EVP_PKEY_free(pk);
		EC_KEY_free(ec);
		pk = NULL;
	}
	EC_KEY_free(src);
	return pk;
}

static EVP_PKEY *
remote_rsa(EVP_PKEY *pub, int kh_fd)
{
	const RSA *src = EVP_PKEY_get0_RSA(pub);
	const BIGNUM *n = NULL, *e = NULL;
	BIGNUM *n2 = NULL, *e2 = NULL;
	RSA *rsa = NULL;
	EVP_PKEY *pk = NULL;

	if (src == NULL)
		return NULL;
	RSA_get0_key(src, &n, &e, NULL);
	if (n == NULL || e == NULL || (n2 = BN_dup(n)) == NULL || (e2 = BN_dup(e)) == NULL ||
	    (rsa = RSA_new()) == NULL || RSA_set_method(rsa, rsa_meth) != 1 ||
	    RSA_set0_key(rsa, n2, e2, NULL) != 1)
		goto fail;
	n2 = e2 = NULL;
	if (RSA_set_ex_data(rsa, rsa_idx, (void *)(intptr_t)(kh_fd + 1)) != 1 ||
	    (pk = EVP_PKEY_new()) == NULL || EVP_PKEY_assign_RSA(pk, rsa) != 1)
		goto fail;
	return pk;
fail:
	BN_free(n2);
	BN_free(e2);
	RSA_free(rsa);
	EVP_PKEY_free(pk);
	return NULL;
}

int
tls_remotekey_use(SSL_CTX *ctx, int kh_fd, char *err, size_t errlen)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	EVP_PKEY *pub, *pk = NULL;
	int rc = -1, alg;

	if (methods(err, errlen) < 0)
		goto out;
	if (cert == NULL || (pub = X509_get0_pubkey(cert)) == NULL) {
		snprintf(err, errlen, "remote key: no certificate loaded");
		goto out;
	}
	if (EVP_PKEY_is_a(pub, "EC")) {
		alg = SUP_KH_ALG_ECDSA;
		pk = remote_ec(pub, kh_fd);
	} else if (EVP_PKEY_is_a(pub, "RSA")) {
		alg = SUP_KH_ALG_RSA_PKCS1;
		pk = remote_rsa(pub, kh_fd);
	} else {
		snprintf(err, errlen, "remote key: certificate key type %s not supported",
		    EVP_PKEY_get0_type_name(pub) ? EVP_PKEY_get0_type_name(pub) : "?");
		goto out;
	}
	if (pk == NULL) {
		snprintf(err, errlen, "remote key: cannot build the public key");
		goto out;
	}
	/* Also checks the key against the certificate (public halves). */
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
		unsigned long e = ERR_get_error();
		char msg[160];

		ERR_error_string_n(e, msg, sizeof(msg));
		snprintf(err, errlen, "remote key: SSL_CTX_use_PrivateKey: %s", msg);
		goto out;
	}
	probe_alg = alg;
	rc = 0;
out:
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rc;
}

int
tls_remotekey_probe(int kh_fd)
{
	/* DigestInfo of SHA-256 over an all-zero digest, or that digest. */
	static const unsigned char info[19 + 32] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86,
		0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
	struct sup_kh_rep rep;

	if (probe_alg == SUP_KH_ALG_ECDSA)
		return remote(kh_fd, SUP_KH_ALG_ECDSA, info + 19, 32, &rep);
	return remote(kh_fd, SUP_KH_ALG_RSA_PKCS1, info, sizeof(info), &rep);
}
