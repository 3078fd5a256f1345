/* SPDX-License-Identifier: MIT */
/*
 * tls_peer.c — a client certificate's identity (see tls_peer.h).
 */
#include "tls_peer.h"
#include "common/util.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

/* A SAN value usable as a credential: 1..TLS_PEER_NAME_MAX bytes of
 * printable ASCII (an embedded NUL or control byte would let a name
 * differ from what an operator sees in `openssl x509 -text`). */
static int
san_copy(const ASN1_IA5STRING *s, char *out)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int i, n = ASN1_STRING_length(s);

	if (n <= 0 || n > TLS_PEER_NAME_MAX)
		return -1;
	for (i = 0; i < n; i++)
		if (d[i] < 0x21 || d[i] > 0x7e)
			return -1;
	memcpy(out, d, (size_t)n);
	out[n] = '\0';
	return 0;
}

int
tls_peer_from_cert(X509 *cert, struct tls_peer *p)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	GENERAL_NAMES *names;
	int k, n;

	memset(p, 0, sizeof(*p));
	if (cert == NULL)
		return 0;
	if (!X509_digest(cert, EVP_sha256(), md, &mdlen) || mdlen != 32)
		return -1;
	util_hex(md, mdlen, p->sha256);
	p->has_cert = 1;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return 0;
	n = sk_GENERAL_NAME_num(names);
	for (k = 0; k < n; k++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, k);

		if (g->type == GEN_URI && p->nuri < TLS_PEER_NAMES) {
			if (san_copy(g->d.uniformResourceIdentifier, p->uri[p->nuri]) == 0)
				p->nuri++;
		} else if (g->type == GEN_DNS && p->ndns < TLS_PEER_NAMES) {
			if (san_copy(g->d.dNSName, p->dns[p->ndns]) == 0) {
				char *c;

				/* DNS names compare case-insensitively (RFC
				 * 4343); `paymentd client` stores them lowercased. */
				for (c = p->dns[p->ndns]; *c; c++)
					if (*c >= 'A' && *c <= 'Z')
						*c = (char)(*c - 'A' + 'a');
				p->ndns++;
			}
		}
	}
	GENERAL_NAMES_free(names);
	return 0;
}
