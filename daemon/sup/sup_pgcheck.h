/* SPDX-License-Identifier: MIT */
/*
 * sup_pgcheck.h — does Postgres have a session for every worker? (sup_pgcheck.c)
 */
#ifndef PAYMENTD_SUP_PGCHECK_H
#define PAYMENTD_SUP_PGCHECK_H

#include <stddef.h>

#include "common/config.h"

/* 0 (fits, or Postgres unreachable: *checked 0) or -1 with err. */
int sup_pgcheck(const struct config *cfg, int *checked, int *available, char *err, size_t errlen);

#endif
