/* SPDX-License-Identifier: MIT */
/*
 * tls_server.h — a worker's server SSL_CTX (tls_server.c): chain and client
 * CAs from the supervisor's blob, the private key behind the key-holder.
 */
#ifndef PAYMENTD_TLS_SERVER_H
#define PAYMENTD_TLS_SERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "common/config.h"

/* Before lock-down. tls_fd: SUP_FD_TLS; kh_fd: SUP_FD_KEY (kept open: the
 * handshake signs through it). Returns a context, or NULL with err. */
SSL_CTX *tls_server_ctx(const struct config *cfg, int tls_fd, int kh_fd, char *err, size_t errlen);

#endif
