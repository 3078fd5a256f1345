/* SPDX-License-Identifier: MIT */
/*
 * migrate.c — `paymentd migrate` and `paymentd reset-test-data`
 * (see migrate.h).
 *
 * Both end by keeping the funding accounts (ensure_funding()): one per
 * currency of FUNDING_CURRENCIES, acc-equity-<lowercase ccy>, kind
 * FUNDING, overdraft the balance bound 10^17. Money enters the ledger
 * only through payments from these accounts (an account created in
 * another currency can only receive money from accounts of its own
 * currency). FUNDING_CURRENCIES is read with cfg_load(), the same way the
 * caller read its configuration, so migrate.h keeps its signatures. A
 * database whose migrations stop before 0008_accounts.sql (tests of old
 * schemas) gets none.
 */
#include "migrate.h"
#include "common/config.h"
#include "common/util.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <openssl/evp.h>

#define MIGRATION_LOCK_KEY "7301001" /* arbitrary, fixed advisory lock id */

static int
is_migration(const char *n)
{
	size_t l = strlen(n);

	return l > 9 && n[0] >= '0' && n[0] <= '9' && n[1] >= '0' && n[1] <= '9' && n[2] >= '0' &&
	    n[2] <= '9' && n[3] >= '0' && n[3] <= '9' && n[4] == '_' &&
	    strcmp(n + l - 4, ".sql") == 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = xmalloc((size_t)n + 1);
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

static void
sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int ml = 32;
	size_t i;

	EVP_Digest(data, len, md, &ml, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		snprintf(err, errlen, "%s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* The balance bound of 0006 (docs/ledger.md): a funding account may go
 * this far below zero. */
#define FUNDING_OVERDRAFT "100000000000000000"

/*
 * Creates the missing funding accounts of FUNDING_CURRENCIES on c, in one
 * transaction (idempotent: existing ones are left as they are). An
 * account of that id that is not a funding account, or in another
 * currency, is an error: payments would otherwise fund from it.
 */
static int
ensure_funding(PGconn *c, char *err, size_t errlen)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	char list[sizeof(cfg->funding_currencies)], *tok, *save = NULL;
	PGresult *r = NULL;
	int rc = -1, in_tx = 0;

	/* A partial migration set (a test of an old schema) has no funding
	 * accounts to keep: they are part of the schema from 0008 on. */
	r = PQexec(c, "SELECT count(*) FROM schema_migrations WHERE version = '0008_accounts.sql'");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		goto out;
	}
	if (PQgetvalue(r, 0, 0)[0] == '0') {
		rc = 0;
		goto out;
	}
	if (cfg_load(cfg, err, errlen) < 0)
		goto out;
	snprintf(list, sizeof(list), "%s", cfg->funding_currencies);
	if (exec_ok(c, "BEGIN", err, errlen) < 0)
		goto out;
	in_tx = 1;
	for (tok = strtok_r(list, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		char id[32];
		const char *v[3];
		size_t i;

		if (strlen(tok) != 3 || tok[0] < 'A' || tok[0] > 'Z' || tok[1] < 'A' ||
		    tok[1] > 'Z' || tok[2] < 'A' || tok[2] > 'Z') {
			snprintf(err, errlen,
			    "FUNDING_CURRENCIES: '%s' is not a currency code (three capital letters)",
			    tok);
			goto out;
		}
		snprintf(id, sizeof(id), "acc-equity-%s", tok);
		for (i = strlen("acc-equity-"); id[i]; i++)
			id[i] = (char)(id[i] - 'A' + 'a');
		v[0] = id;
		v[1] = tok;
		v[2] = FUNDING_OVERDRAFT;
		PQclear(r);
		r = PQexecParams(c,
		    "WITH a AS (INSERT INTO accounts (account_id, currency, kind) "
		    "VALUES ($1, $2, 'FUNDING') ON CONFLICT (account_id) DO NOTHING RETURNING 1), "
		    "b AS (INSERT INTO account_balances (account_id, overdraft_limit_cents) "
		    "SELECT $1, $3::bigint FROM a) "
		    "SELECT (SELECT count(*) FROM a), "
		    "(SELECT kind = 'FUNDING' AND currency = $2 FROM accounts WHERE account_id = $1)",
		    3, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "funding account %s: %s", id, PQerrorMessage(c));
			goto out;
		}
		if (PQgetvalue(r, 0, 0)[0] == '1') {
			log_info("funding account created", LF_S("account_id", id),
			    LF_S("currency", tok));
		} else if (PQgetvalue(r, 0, 1)[0] != 't') {
			snprintf(err, errlen,
			    "account %s exists but is not the funding account of %s "
			    "(kind FUNDING, currency %s)",
			    id, tok, tok);
			goto out;
		}
	}
	in_tx = 0;
	if (exec_ok(c, "COMMIT", err, errlen) < 0)
		goto out;
	rc = 0;
out:
	if (in_tx) {
		char e2[64];

		exec_ok(c, "ROLLBACK", e2, sizeof(e2));
	}
	PQclear(r);
	free(cfg);
	return rc;
}

int
migrate_run(const char *url, const char *dir, int *applied, char *err, size_t errlen)
{
	PGconn *c = NULL;
	PGresult *r = NULL;
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL, *sql = NULL;
	size_t n = 0, cap = 0, i;
	int rc = -1;

	*applied = 0;
	d = opendir(dir);
	if (d == NULL) {
		snprintf(err, errlen, "MIGRATIONS_DIR %s: %s", dir, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_migration(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = realloc(names, cap * sizeof(*names));
			if (names == NULL)
				abort();
		}
		names[n++] = xstrdup(de->d_name);
	}
	if (n > 0) /* names is NULL when the directory has none */
		qsort(names, n, sizeof(*names), cmp_str);

	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		goto out;
	}
	if (exec_ok(c,
	        "SET client_min_messages = warning; "
	        "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY "); "
	        "CREATE TABLE IF NOT EXISTS schema_migrations ("
	        " version text PRIMARY KEY, checksum text NOT NULL,"
	        " applied_at timestamptz NOT NULL DEFAULT now())",
	        err, errlen) < 0)
		goto out;

	for (i = 0; i < n; i++) {
		char path[1024], sum[65];
		const char *pv[2];
		size_t len = 0;

		if (util_fmt(path, sizeof(path), "%s/%s", dir, names[i]) < 0) {
			snprintf(err, errlen, "path too long: %s", names[i]);
			goto out;
		}
		free(sql);
		sql = read_file(path, &len);
		if (sql == NULL) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		sha256_hex(sql, len, sum);
		pv[0] = names[i];
		PQclear(r);
		r = PQexecParams(c, "SELECT checksum FROM schema_migrations WHERE version = $1", 1,
		    NULL, pv, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "%s", PQerrorMessage(c));
			goto out;
		}
		if (PQntuples(r) == 1) {
			if (strcmp(PQgetvalue(r, 0, 0), sum) != 0) {
				snprintf(err, errlen,
				    "%s was changed after it was applied "
				    "(checksum %.12s..., applied %.12s...); add a new migration instead",
				    names[i], sum, PQgetvalue(r, 0, 0));
				goto out;
			}
			continue;
		}
		if (exec_ok(c, "BEGIN", err, errlen) < 0)
			goto out;
		if (exec_ok(c, sql, err, errlen) < 0) {
			char e2[64];
			exec_ok(c, "ROLLBACK", e2, sizeof(e2));
			snprintf(err + strlen(err), errlen - strlen(err), " (in %s)", names[i]);
			goto out;
		}
		pv[1] = sum;
		PQclear(r);
		r = PQexecParams(c,
		    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", 2, NULL,
		    pv, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			snprintf(err, errlen, "%s", PQerrorMessage(c));
			goto out;
		}
		if (exec_ok(c, "COMMIT", err, errlen) < 0)
			goto out;
		log_info("migration applied", LF_S("version", names[i]));
		(*applied)++;
	}
	if (ensure_funding(c, err, errlen) < 0)
		goto out;
	rc = 0;
out:
	PQclear(r);
	if (c)
		PQfinish(c);
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(sql);
	return rc;
}

/* The seed's test accounts plus a few that exercise declines. Funding
 * comes from the equity account, whose overdraft limit is what the bank
 * has issued, so every balance is backed by ledger entries. */
static const struct {
	const char *id, *currency, *status;
	long long funding;
} seed_accounts[] = {
	{ "acc-payer-001", "USD", "ACTIVE", 100000 },
	{ "acc-payee-002", "USD", "ACTIVE", 50000 },
	{ "acc-eur-003", "EUR", "ACTIVE", 100000 },
	{ "acc-frozen-004", "USD", "FROZEN", 0 },
	{ "acc-closed-005", "USD", "CLOSED", 0 },
};

int
migrate_reset_test_data(const char *url, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = NULL;
	size_t i;
	int rc = -1;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connect: %s", PQerrorMessage(c));
		goto out;
	}
	if (exec_ok(c,
	        "SET client_min_messages = warning; BEGIN; "
	        "TRUNCATE ledger_entries, refunds, operation_keys, payments, idempotency_keys, outbox, "
	        "account_balances, accounts; "
	        "INSERT INTO accounts (account_id, currency, kind) VALUES "
	        "('acc-equity-usd', 'USD', 'FUNDING'), ('acc-equity-eur', 'EUR', 'FUNDING'); "
	        "INSERT INTO account_balances (account_id, overdraft_limit_cents) VALUES "
	        "('acc-equity-usd', 100000000000000000), ('acc-equity-eur', 100000000000000000)",
	        err, errlen) < 0)
		goto out;
	for (i = 0; i < ARRAY_LEN(seed_accounts); i++) {
		char amount[32], key[96], pid[64];
		const char *v[4];
		const char *fund[6];

		v[0] = seed_accounts[i].id;
		v[1] = seed_accounts[i].currency;
		PQclear(r);
		r = PQexecParams(c, "INSERT INTO accounts (account_id, currency) VALUES ($1, $2)",
		    2, NULL, v, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			goto sqlerr;
		PQclear(r);
		r = PQexecParams(c, "INSERT INTO account_balances (account_id) VALUES ($1)", 1,
		    NULL, v, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			goto sqlerr;
		if (seed_accounts[i].funding > 0) {
			snprintf(amount, sizeof(amount), "%lld", seed_accounts[i].funding);
			snprintf(key, sizeof(key), "seed-funding-%s", seed_accounts[i].id);
			snprintf(pid, sizeof(pid), "seed-%s", seed_accounts[i].id);
			fund[0] = key;
			fund[1] = strcmp(seed_accounts[i].currency, "EUR") == 0 ? "acc-equity-eur"
			                                                        : "acc-equity-usd";
			fund[2] = seed_accounts[i].id;
			fund[3] = amount;
			fund[4] = seed_accounts[i].currency;
			fund[5] = pid;
			PQclear(r);
			r = PQexecParams(c,
			    "SELECT o_status FROM authorize_payment(legacy_client_id(), $1, $2, $3, "
			    "$4::bigint, $5, 'opening balance', sha256(convert_to($1, 'UTF8')), $6, "
			    "86400, 'reset-test-data')",
			    6, NULL, fund, NULL, NULL, 0);
			if (PQresultStatus(r) != PGRES_TUPLES_OK)
				goto sqlerr;
			if (strcmp(PQgetvalue(r, 0, 0), "AUTHORIZED") != 0) {
				snprintf(
				    err, errlen, "funding %s was declined", seed_accounts[i].id);
				goto out;
			}
		}
		if (strcmp(seed_accounts[i].status, "ACTIVE") != 0) {
			v[1] = seed_accounts[i].status;
			PQclear(r);
			r = PQexecParams(c, "UPDATE accounts SET status = $2 WHERE account_id = $1",
			    2, NULL, v, NULL, NULL, 0);
			if (PQresultStatus(r) != PGRES_COMMAND_OK)
				goto sqlerr;
		}
	}
	/* Opening balances are bookkeeping, not business events: drop their
	 * outbox rows so consumers only see real payments. */
	if (exec_ok(c, "DELETE FROM outbox WHERE correlation_id = 'reset-test-data'; COMMIT", err,
	        errlen) < 0)
		goto out;
	/* The TRUNCATE dropped the funding accounts of any other
	 * FUNDING_CURRENCIES too. */
	if (ensure_funding(c, err, errlen) < 0)
		goto out;
	rc = 0;
	goto out;
sqlerr:
	snprintf(err, errlen, "%s", PQerrorMessage(c));
out:
	PQclear(r);
	PQfinish(c);
	return rc;
}
