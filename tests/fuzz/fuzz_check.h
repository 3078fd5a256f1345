/* SPDX-License-Identifier: MIT */
/*
 * fuzz_check.h — oracles the fuzz harnesses share (header only: each
 * harness is its own program).
 *
 * fuzz_check_id(): pay_validate_id()'s verdict on id must be explained —
 * a refusal carries a message; an acceptance means 1..max bytes of the
 * documented account/payment id alphabet. Anything else aborts (a finding).
 */
#ifndef PAYMENTD_FUZZ_CHECK_H
#define PAYMENTD_FUZZ_CHECK_H

#include <stdlib.h>
#include <string.h>

#include "ledger/pay_validate.h"

static inline void
fuzz_check_id(const char *field, const char *id, size_t max)
{
	char msg[256];
	size_t i, n = strlen(id);

	msg[0] = '\0';
	if (pay_validate_id(field, id, max, msg, sizeof(msg)) < 0) {
		if (msg[0] == '\0')
			abort();
		return;
	}
	if (n == 0 || n > max)
		abort();
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '-' || c == '_' || c == '.' || c == ':'))
			abort();
	}
}

#endif
