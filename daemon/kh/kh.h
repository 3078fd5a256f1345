/* SPDX-License-Identifier: MIT */
/*
 * kh.h — paymentd-keyholder, the one process that holds the TLS private
 * key (the protocol is in sup/sup_proto.h, "key-holder channel").
 *
 * Contract:
 *  - kh_key_load() reads the PEM private key on key_fd and the leaf
 *    certificate on cert_fd (both with pread from offset 0; neither is
 *    closed), refuses encrypted keys, key types other than RSA and EC, and a
 *    key that is not the certificate's. Every buffer that held PEM or DER
 *    text is wiped before it is freed. 0 with *out, or -1 with err.
 *  - kh_key_alg() is the SUP_KH_ALG_* family the key signs with
 *    (SUP_KH_ALG_ECDSA for EC; SUP_KH_ALG_RSA_PSS for RSA, which also
 *    accepts SUP_KH_ALG_RSA_PKCS1).
 *  - kh_sign() checks one request strictly against the loaded key and
 *    signs it: 0 with rep filled (status OK); -1 the request is malformed
 *    (why in err: the caller cuts the channel off); -2 the signing itself
 *    failed (rep carries SUP_KH_STATUS_FAILED, why in err).
 *  - kh_serve() is the key-holder's loop after lock-down: channels arrive
 *    on ctl, requests on the channels; it returns (exit code) only when the
 *    supervisor is gone or ctl broke.
 */
#ifndef PAYMENTD_KH_H
#define PAYMENTD_KH_H

#include <stddef.h>

#include "common/config.h"
#include "sup/sup_proto.h"

struct kh_key;

int kh_key_load(int key_fd, int cert_fd, struct kh_key **out, char *err, size_t errlen);
void kh_key_free(struct kh_key *k);
int kh_key_alg(const struct kh_key *k);
int kh_key_bits(const struct kh_key *k);
int kh_sign(const struct kh_key *k, const struct sup_kh_req *req, struct sup_kh_rep *rep, char *err,
    size_t errlen);

int kh_serve(const struct config *cfg, const struct kh_key *k, int ctl);

#endif
