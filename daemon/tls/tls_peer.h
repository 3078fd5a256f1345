/* SPDX-License-Identifier: MIT */
/*
 * tls_peer.h — what a verified client certificate says about its holder,
 * in the terms of client_credentials (migrations/0004_identity.sql):
 * its URI and DNS subject alternative names and the SHA-256 of its DER.
 *
 * Contract: tls_peer_from_cert() only reads the certificate (OpenSSL has
 * already verified the chain when the handshake completed); names longer
 * than TLS_PEER_NAME_MAX or with bytes outside printable ASCII are
 * skipped, not truncated, so a credential can never match a prefix of a
 * name. DNS names are lowercased. At most TLS_PEER_NAMES of each kind are
 * kept.
 */
#ifndef PAYMENTD_TLS_PEER_H
#define PAYMENTD_TLS_PEER_H

#include <openssl/x509.h>

#define TLS_PEER_NAMES    3
#define TLS_PEER_NAME_MAX 512 /* what `paymentd client` accepts for a URI */

struct tls_peer {
	int has_cert;
	char sha256[65]; /* lowercase hex */
	int nuri, ndns;
	char uri[TLS_PEER_NAMES][TLS_PEER_NAME_MAX + 1];
	char dns[TLS_PEER_NAMES][TLS_PEER_NAME_MAX + 1];
};

/* Fills *p from cert (NULL: no certificate, p->has_cert = 0). 0, or -1
 * when the fingerprint cannot be computed. */
int tls_peer_from_cert(X509 *cert, struct tls_peer *p);

#endif
