/* SPDX-License-Identifier: MIT */
/*
 * kh_key.c — the key-holder's key: loading it, and checking and making
 * one signature (contract in kh.h; the request format in sup_proto.h).
 *
 * Why the checks are this strict: a worker is where hostile input lands,
 * so a compromised one may send anything. For ECDSA and PKCS#1 v1.5 the
 * key-holder applies the padding itself, so the worst it can obtain is a
 * signature over a digest of its choice, once (the budget). RSASSA-PSS is
 * the exception: OpenSSL encodes the PSS block in the worker and hands a
 * raw private operation to the key (RSA_METHOD priv_enc), so here a raw
 * operation must be made — and a raw RSA operation on arbitrary input is a
 * decryption oracle (a recorded RSA key exchange, blinded). It is made only
 * on a block that is a complete EMSA-PSS encoding: trailer, top bits, and
 * the unmasked DB of zeros, 0x01 and a salt as long as the hash.
 */
#include "kh.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KH_MAX_KEY_PEM  ((size_t)64 * 1024)
#define KH_MAX_CERT_PEM ((size_t)1 << 20)

struct kh_key {
	EVP_PKEY *pkey;
	int alg;      /* SUP_KH_ALG_ECDSA or SUP_KH_ALG_RSA_PSS */
	int bits;     /* modulus (RSA) or group order (EC) bits */
	size_t bytes; /* RSA: modulus bytes */
};

/* Reads all of fd from offset 0 into a malloc'd, NUL-terminated buffer of at
 * most max bytes. 0 or -1 with err. The descriptor's offset is not moved
 * (the supervisor shares it and re-uses it for restarts). */
static int
read_all(int fd, size_t max, char **out, size_t *len, const char *what, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int rc = -1;

	buf = malloc(max + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", what);
		goto out;
	}
	for (;;) {
		r = pread(fd, buf + n, max + 1 - n, (off_t)n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", what, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			snprintf(err, errlen, "%s: larger than %zu bytes", what, max);
			goto out;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, max + 1);
		free(buf);
	}
	return rc;
}

/* PEM pass phrase callback: we never have one; remember that one was asked
 * for, to say "encrypted" rather than "unreadable". */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

static void
ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[160];

	ERR_error_string_n(e, msg, sizeof(msg));
	snprintf(err, errlen, "%s: %s", what, e ? msg : "failed");
	ERR_clear_error();
}

int
kh_key_load(int key_fd, int cert_fd, struct kh_key **out, char *err, size_t errlen)
{
	struct kh_key *k = NULL;
	char *pem = NULL, *cpem = NULL;
	size_t len = 0, clen = 0;
	BIO *bio = NULL;
	X509 *cert = NULL;
	int asked = 0, rc = -1;

	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (read_all(key_fd, KH_MAX_KEY_PEM, &pem, &len, "TLS_KEY_FILE", err, errlen) < 0 ||
	    read_all(cert_fd, KH_MAX_CERT_PEM, &cpem, &clen, "TLS_CERT_FILE", err, errlen) < 0)
		goto out;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		ssl_err(err, errlen, "BIO_new_mem_buf");
		goto out;
	}
	k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &asked);
	BIO_free(bio);
	bio = NULL;
	if (k->pkey == NULL) {
		if (asked) {
			snprintf(err, errlen,
			    "TLS_KEY_FILE: the key is encrypted (a pass phrase "
			    "cannot be entered here; store it unencrypted, mode 0600)");
			ERR_clear_error();
		} else {
			ssl_err(err, errlen, "TLS_KEY_FILE: no PEM private key");
		}
		goto out;
	}
	if (EVP_PKEY_is_a(k->pkey, "RSA")) {
		k->alg = SUP_KH_ALG_RSA_PSS;
		k->bits = EVP_PKEY_get_bits(k->pkey);
		k->bytes = (size_t)EVP_PKEY_get_size(k->pkey);
		if (k->bits < 2048 || k->bytes > SUP_KH_MAX_DATA) {
			snprintf(err, errlen,
			    "TLS_KEY_FILE: RSA key of %d bits (2048..4096 supported)", k->bits);
			goto out;
		}
	} else if (EVP_PKEY_is_a(k->pkey, "EC")) {
		k->alg = SUP_KH_ALG_ECDSA;
		k->bits = EVP_PKEY_get_bits(k->pkey);
	} else {
		snprintf(err, errlen, "TLS_KEY_FILE: key type %s not supported (RSA or EC only)",
		    EVP_PKEY_get0_type_name(k->pkey) ? EVP_PKEY_get0_type_name(k->pkey) : "?");
		goto out;
	}
	bio = BIO_new_mem_buf(cpem, (int)clen);
	if (bio == NULL) {
		ssl_err(err, errlen, "BIO_new_mem_buf");
		goto out;
	}
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (cert == NULL) {
		ssl_err(err, errlen, "TLS_CERT_FILE: no PEM certificate");
		goto out;
	}
	if (X509_check_private_key(cert, k->pkey) != 1) {
		ssl_err(err, errlen,
		    "TLS_KEY_FILE is not the key of TLS_CERT_FILE's first certificate");
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	BIO_free(bio);
	X509_free(cert);
	if (pem != NULL) {
		OPENSSL_cleanse(pem, len);
		free(pem);
	}
	free(cpem);
	kh_key_free(k);
	return rc;
}

void
kh_key_free(struct kh_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

int
kh_key_alg(const struct kh_key *k)
{
	return k->alg;
}

int
kh_key_bits(const struct kh_key *k)
{
	return k->bits;
}

/* MGF1 (RFC 8017 B.2.1) of seed into mask. 0 or -1. */
static int
mgf1(const EVP_MD *md, const uint8_t *seed, size_t slen, uint8_t *mask, size_t mlen)
{
	uint8_t buf[SUP_KH_MAX_DATA + 4], h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	size_t done = 0, take;
	uint32_t c;

	if (slen > SUP_KH_MAX_DATA)
		return -1;
	memcpy(buf, seed, slen);
	for (c = 0; done < mlen; c++) {
		buf[slen] = (uint8_t)(c >> 24);
		buf[slen + 1] = (uint8_t)(c >> 16);
		buf[slen + 2] = (uint8_t)(c >> 8);
		buf[slen + 3] = (uint8_t)c;
		if (EVP_Digest(buf, slen + 4, h, &hl, md, NULL) != 1)
			return -1;
		take = mlen - done < hl ? mlen - done : hl;
		memcpy(mask + done, h, take);
		done += take;
	}
	return 0;
}

/* 1 if block (k->bytes long) is a complete EMSA-PSS encoding for a
 * modulus of k->bits bits with SHA-256/384/512 and salt length = hash
 * length (what TLS 1.2 and 1.3 use), else 0. */
static int
pss_shaped(const struct kh_key *k, const uint8_t *block)
{
	static const char *const mds[] = { "SHA256", "SHA384", "SHA512" };
	uint8_t db[SUP_KH_MAX_DATA];
	const uint8_t *em = block;
	size_t em_len = k->bytes, db_len, hlen, i, m, ps;
	int msbits = (k->bits - 1) & 7, ok = 0;

	memset(db, 0, sizeof(db));
	if (msbits == 0) {
		if (em[0] != 0)
			return 0;
		em++;
		em_len--;
	}
	if (msbits != 0 && (em[0] & (uint8_t)(0xFFu << msbits)) != 0)
		return 0;
	if (em[em_len - 1] != 0xbc)
		return 0;
	for (m = 0; m < sizeof(mds) / sizeof(mds[0]) && !ok; m++) {
		EVP_MD *md = EVP_MD_fetch(NULL, mds[m], NULL);

		if (md == NULL)
			continue;
		hlen = (size_t)EVP_MD_get_size(md);
		if (em_len >= 2 * hlen + 2) {
			db_len = em_len - hlen - 1;
			if (mgf1(md, em + db_len, hlen, db, db_len) == 0) {
				for (i = 0; i < db_len; i++)
					db[i] ^= em[i];
				if (msbits != 0)
					db[0] &= (uint8_t)(0xFFu >> (8 - msbits));
				ps = db_len - hlen - 1;
				ok = db[ps] == 0x01;
				for (i = 0; i < ps && ok; i++)
					ok = db[i] == 0;
			}
		}
		EVP_MD_free(md);
	}
	OPENSSL_cleanse(db, sizeof(db));
	return ok;
}

/* DER prefixes of the DigestInfo of each hash TLS 1.2 may sign with
 * (RFC 8017 9.2 note 1), with the digest length that follows. */
static const struct {
	uint8_t der[19];
	size_t len;
	size_t hlen;
} digest_infos[] = {
	{ { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
	      0x14 },
	    15, 20 },
	{ { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	      0x04, 0x05, 0x00, 0x04, 0x1c },
	    19, 28 },
	{ { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	      0x01, 0x05, 0x00, 0x04, 0x20 },
	    19, 32 },
	{ { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	      0x02, 0x05, 0x00, 0x04, 0x30 },
	    19, 48 },
	{ { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	      0x03, 0x05, 0x00, 0x04, 0x40 },
	    19, 64 },
};

static int
digest_info_ok(const uint8_t *d, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(digest_infos) / sizeof(digest_infos[0]); i++)
		if (len == digest_infos[i].len + digest_infos[i].hlen &&
		    memcmp(d, digest_infos[i].der, digest_infos[i].len) == 0)
			return 1;
	return 0;
}

/* Checks req against k; 0 if well-formed, else -1 with err. */
static int
check(const struct kh_key *k, const struct sup_kh_req *req, char *err, size_t errlen)
{
	size_t i, len = req->len;

	if (req->version != SUP_KH_VERSION) {
		snprintf(err, errlen, "version %u", (unsigned)req->version);
		return -1;
	}
	if (len > SUP_KH_MAX_DATA) {
		snprintf(err, errlen, "length %zu", len);
		return -1;
	}
	for (i = len; i < SUP_KH_MAX_DATA; i++)
		if (req->data[i] != 0) {
			snprintf(err, errlen, "bytes after the data");
			return -1;
		}
	switch (req->alg) {
	case SUP_KH_ALG_ECDSA:
		if (k->alg != SUP_KH_ALG_ECDSA) {
			snprintf(err, errlen, "ECDSA requested of an RSA key");
			return -1;
		}
		if (len != 32 && len != 48 && len != 64) {
			snprintf(err, errlen, "ECDSA digest of %zu bytes", len);
			return -1;
		}
		return 0;
	case SUP_KH_ALG_RSA_PSS:
		if (k->alg != SUP_KH_ALG_RSA_PSS) {
			snprintf(err, errlen, "RSA requested of an EC key");
			return -1;
		}
		if (len != k->bytes) {
			snprintf(err, errlen, "PSS block of %zu bytes for a %zu-byte modulus", len,
			    k->bytes);
			return -1;
		}
		if (!pss_shaped(k, req->data)) {
			snprintf(err, errlen, "block is not an EMSA-PSS encoding");
			return -1;
		}
		return 0;
	case SUP_KH_ALG_RSA_PKCS1:
		if (k->alg != SUP_KH_ALG_RSA_PSS) {
			snprintf(err, errlen, "RSA requested of an EC key");
			return -1;
		}
		if (len > SUP_KH_RSA_DIGESTINFO_MAX || !digest_info_ok(req->data, len)) {
			snprintf(
			    err, errlen, "not a DigestInfo of a supported hash (%zu bytes)", len);
			return -1;
		}
		return 0;
	default: snprintf(err, errlen, "algorithm %u", (unsigned)req->alg); return -1;
	}
}

int
kh_sign(const struct kh_key *k, const struct sup_kh_req *req, struct sup_kh_rep *rep, char *err,
    size_t errlen)
{
	EVP_PKEY_CTX *ctx = NULL;
	size_t siglen = sizeof(rep->sig);
	int rc = -1;

	memset(rep, 0, sizeof(*rep));
	if (check(k, req, err, errlen) < 0)
		goto out;
	rc = -2;
	rep->status = SUP_KH_STATUS_FAILED;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1) {
		ssl_err(err, errlen, "EVP_PKEY_sign_init");
		goto out;
	}
	/* No digest is set on ctx: the data is signed as it is (a digest for
	 * ECDSA, a DigestInfo padded here for PKCS#1, the finished block for
	 * PSS). */
	if (req->alg != SUP_KH_ALG_ECDSA &&
	    EVP_PKEY_CTX_set_rsa_padding(
	        ctx, req->alg == SUP_KH_ALG_RSA_PSS ? RSA_NO_PADDING : RSA_PKCS1_PADDING) != 1) {
		ssl_err(err, errlen, "RSA padding");
		goto out;
	}
	if (EVP_PKEY_sign(ctx, rep->sig, &siglen, req->data, req->len) != 1 ||
	    siglen > sizeof(rep->sig)) {
		ssl_err(err, errlen, "EVP_PKEY_sign");
		goto out;
	}
	rep->status = SUP_KH_STATUS_OK;
	rep->len = (uint16_t)siglen;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}
