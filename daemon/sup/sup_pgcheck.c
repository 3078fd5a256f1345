/* SPDX-License-Identifier: MIT */
/*
 * sup_pgcheck.c — refuses a configuration Postgres cannot serve: every
 * worker holds one Postgres session for its whole life, so MAX_WORKERS
 * workers (WORKER_POOL_SIZE of them idle ahead of time, the rest on demand)
 * plus the relay and a metrics scrape need that many of the server's
 * non-reserved connection slots. Found at start, this is one clear message;
 * found under load, it would be workers failing one by one with "too many
 * clients" while the pool refills.
 *
 * With several hosts in DATABASE_URL (a primary and standbys,
 * target_session_attrs=read-write) libpq connects to the primary, so that
 * is the server checked; standbys must allow as many (Postgres requires a
 * hot standby's max_connections to be at least its primary's).
 *
 * Contract: sup_pgcheck() returns 0 when the numbers fit or Postgres cannot
 * be asked (down at start is not a configuration error: workers retry and
 * answer NOT_SERVING meanwhile; *checked is then 0), and -1 with err naming
 * both numbers when they do not.
 */
#include "sup_pgcheck.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* The relay's session and one exporter scrape beside the workers. */
#define SUP_PG_OTHER_SESSIONS 2

int
sup_pgcheck(const struct config *cfg, int *checked, int *available, char *err, size_t errlen)
{
	const char *sql = "SELECT current_setting('max_connections')::int"
	                  " - current_setting('superuser_reserved_connections')::int"
	                  " - (SELECT count(*)::int FROM pg_stat_activity"
	                  "    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
	                  "      AND usename IS DISTINCT FROM current_user)";
	PGconn *c = NULL;
	PGresult *r = NULL;
	int need = cfg->max_workers + SUP_PG_OTHER_SESSIONS, have, rc = 0;

	*checked = 0;
	*available = -1;
	c = PQconnectdb(cfg->database_url);
	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		goto out;
	/* Sessions of other roles (another service on the same server) are
	 * taken from what is left; our own role's are ours to replace. */
	r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		goto out;
	{
		int64_t v;

		if (util_parse_i64(PQgetvalue(r, 0, 0), -1000000, 1000000, &v) < 0)
			goto out;
		have = (int)v;
	}
	*checked = 1;
	*available = have;
	if (need > have) {
		/* With several hosts in DATABASE_URL, name the one asked (the
		 * primary of the moment; its standbys need as many). */
		snprintf(err, errlen,
		    "MAX_WORKERS=%d needs %d Postgres connections (one per worker, plus the "
		    "relay and a scrape); %s:%s allows %d more (max_connections - reserved - "
		    "other roles' sessions): lower MAX_WORKERS or raise max_connections",
		    cfg->max_workers, need, PQhost(c), PQport(c), have);
		rc = -1;
	}
out:
	PQclear(r);
	PQfinish(c);
	return rc;
}
