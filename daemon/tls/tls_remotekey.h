/* SPDX-License-Identifier: MIT */
/*
 * tls_remotekey.h — a worker's TLS private key that is not there: every
 * signature is made by the key-holder over the worker's channel
 * (SUP_FD_KEY; protocol in sup/sup_proto.h, "key-holder channel").
 *
 * Contract:
 *  - tls_remotekey_use() takes the leaf certificate already in ctx, builds a
 *    key holding only its public half whose signing goes to the key-holder
 *    on kh_fd, and installs it with SSL_CTX_use_PrivateKey(). EC (ECDSA) and
 *    RSA (RSASSA-PSS and PKCS#1 v1.5) certificates. kh_fd stays open and
 *    owned by the caller for as long as ctx is used. 0, or -1 with err.
 *  - During a handshake each signature is one request and one reply,
 *    blocking the calling thread for at most SUP_KH_TIMEOUT_MS. Only
 *    send/recv/poll on kh_fd and clock_gettime: fine under the worker's
 *    seccomp filter. A refusal, timeout or closed channel fails the
 *    signature (the handshake then fails with an internal error alert).
 *  - tls_remotekey_probe() asks the key-holder for one signature of a fixed
 *    digest, of the kind the last tls_remotekey_use() key makes (tests:
 *    the budget). 0 if one came back, -1 if refused, timed out or closed.
 */
#ifndef PAYMENTD_TLS_REMOTEKEY_H
#define PAYMENTD_TLS_REMOTEKEY_H

#include <stddef.h>

#include <openssl/ssl.h>

int tls_remotekey_use(SSL_CTX *ctx, int kh_fd, char *err, size_t errlen);
int tls_remotekey_probe(int kh_fd);

#endif
