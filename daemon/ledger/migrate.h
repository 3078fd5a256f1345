/* SPDX-License-Identifier: MIT */
/*
 * migrate.h — schema migrations and test data.
 *
 * Contract: migrate_run() applies, in name order, every NNNN_*.sql file of
 * dir that schema_migrations does not list, each in its own transaction
 * together with its schema_migrations row; re-running is a no-op. A file
 * whose checksum differs from the applied one is an error (never edit an
 * applied migration). Concurrent runs serialise on an advisory lock.
 * migrate_reset_test_data() wipes all ledger data and creates the seed
 * accounts, funding them through authorize_payment so balances equal
 * their ledger entries. Both return 0 or -1 with err.
 */
#ifndef PAYMENTD_MIGRATE_H
#define PAYMENTD_MIGRATE_H

#include <stddef.h>

int migrate_run(const char *url, const char *dir, int *applied, char *err, size_t errlen);
int migrate_reset_test_data(const char *url, char *err, size_t errlen);

#endif
