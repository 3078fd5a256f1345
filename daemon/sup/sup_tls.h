/* SPDX-License-Identifier: MIT */
/*
 * sup_tls.h — the certificate chain, client CA bundle and session-ticket
 * keys every worker gets as SUP_FD_TLS (sup_tls.c). The private key is not
 * here: only the key-holder (sup_kh.h) ever opens TLS_KEY_FILE.
 */
#ifndef PAYMENTD_SUP_TLS_H
#define PAYMENTD_SUP_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* TLS=on: the variables that must go together are set. 0 or -1 with err. */
int sup_tls_check(const struct config *cfg, char *err, size_t errlen);
/* Reads the files and seals a new blob (also on reload: the old blob stays
 * if this fails). TLS=off: does nothing. 0 or -1 with err. */
int sup_tls_load(const struct config *cfg, char *err, size_t errlen);
/* The current blob's memfd (close-on-exec; -1 with TLS=off). */
int sup_tls_fd(void);
uint64_t sup_tls_generation(void);

#endif
