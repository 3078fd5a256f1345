/* SPDX-License-Identifier: MIT */
/*
 * main.c — the paymentd command line.
 *
 *   paymentd [serve]          run the supervisor (default)
 *   paymentd migrate          apply migrations from MIGRATIONS_DIR
 *   paymentd client ...       manage clients, credentials, grants, limits
 *   paymentd reset-test-data  recreate the seed accounts (wipes ledger data)
 *   paymentd config [--markdown]  print every variable, default and range
 *   paymentd version
 *
 * Configuration errors exit with status 2 and a message naming the variable.
 */
#include "common/config.h"
#include "common/log.h"
#include "ledger/migrate.h"
#include "auth/auth_admin.h"
#include "sup.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PAYMENTD_VERSION
#define PAYMENTD_VERSION "0.1.0"
#endif

static struct config cfg;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: paymentd [serve|migrate|reset-test-data|client ...|config [--markdown]|"
	    "version]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "serve";
	char err[512];
	int applied;

	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("paymentd %s\n", PAYMENTD_VERSION);
		return 0;
	}
	if (strcmp(cmd, "config") == 0) {
		cfg_print_table(argc > 2 && strcmp(argv[2], "--markdown") == 0);
		return 0;
	}
	if (cfg_load(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "paymentd: configuration error: %s\n", err);
		return 2;
	}
	log_init("paymentd", cfg.log_level, cfg.log_format);
	/* Bound libpq's connect so an unreachable host cannot hang a worker. */
	setenv("PGCONNECT_TIMEOUT", "5", 0);

	if (strcmp(cmd, "serve") == 0) {
		log_init("supervisor", cfg.log_level, cfg.log_format);
		sup_run(&cfg);
	}
	if (strcmp(cmd, "migrate") == 0) {
		if (migrate_run(cfg.database_url, cfg.migrations_dir, &applied, err, sizeof(err)) <
		    0)
			fatal("migrate: %s", err);
		log_info("migrations up to date", LF_I("applied", applied));
		return 0;
	}
	if (strcmp(cmd, "client") == 0)
		return auth_admin_main(&cfg, argc - 2, argv + 2);
	if (strcmp(cmd, "reset-test-data") == 0) {
		if (migrate_reset_test_data(cfg.database_url, err, sizeof(err)) < 0)
			fatal("reset-test-data: %s", err);
		log_info("test data reset: acc-payer-001 (USD 100000), acc-payee-002 (USD 50000), "
		         "acc-eur-003 (EUR 100000), acc-frozen-004, acc-closed-005");
		return 0;
	}
	usage();
}
