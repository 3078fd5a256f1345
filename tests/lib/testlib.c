/* SPDX-License-Identifier: MIT */
/*
 * testlib.c — see testlib.h.
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

extern char **environ;

Suite *
tl_suite(const char *name, int timeout_s, const TTest *const *tests)
{
	Suite *s = suite_create(name);
	TCase *tc = tcase_create(name);

	if (timeout_s > 0)
		tcase_set_timeout(tc, timeout_s);
	for (; *tests != NULL; tests++)
		tcase_add_test(tc, *tests);
	suite_add_tcase(s, tc);
	return s;
}

int
tl_run_suites(Suite *const *suites, int n, enum print_output mode, int nofork)
{
	SRunner *sr = srunner_create(suites[0]);
	int failed, i;

	for (i = 1; i < n; i++)
		srunner_add_suite(sr, suites[i]);
	if (nofork)
		srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, mode);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

int
tl_run(Suite *s, enum print_output mode, int nofork)
{
	return tl_run_suites(&s, 1, mode, nofork);
}

/* ---- ports ---------------------------------------------------------------- */

static long
env_long(const char *name)
{
	const char *v = getenv(name);
	char *e;
	long n;

	if (v == NULL || *v == '\0')
		return -1;
	n = strtol(v, &e, 10);
	return *e == '\0' && n > 0 && n < 65536 ? n : -1;
}

void
tl_ephemeral_range(int *lo, int *hi)
{
	char line[64] = "", *e;
	FILE *f;
	long l, h;

	*lo = 32768;
	*hi = 60999;
	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) == NULL)
		return;
	if (fgets(line, sizeof(line), f) != NULL) {
		l = strtol(line, &e, 10);
		h = strtol(e, NULL, 10);
		if (l > 0 && h >= l && h < 65536) {
			*lo = (int)l;
			*hi = (int)h;
		}
	}
	fclose(f);
}

/* The pool to pick from: the harness's, else just below the ephemeral range. */
static void
port_pool(int *lo, int *hi)
{
	long plo = env_long("PORTS_POOL_LO"), phi = env_long("PORTS_POOL_HI");
	int elo, ehi;

	if (plo > 0 && phi >= plo) {
		*lo = (int)plo;
		*hi = (int)phi;
		return;
	}
	tl_ephemeral_range(&elo, &ehi);
	*hi = elo - 1;
	*lo = elo - 500 > 1024 ? elo - 500 : 1024;
}

/* Whether 127.0.0.1:port can be bound now (no SO_REUSEADDR: a port in
 * TIME_WAIT counts as taken too). */
static int
port_unused(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

int
tl_free_port(void)
{
	struct timespec ts;
	int lo, hi, n, start, i;

	/* No ck_assert on the way to success: this also runs outside a test
	 * (it_sandbox's main picks its daemon's port). */
	port_pool(&lo, &hi);
	n = hi - lo + 1;
	if (n <= 0)
		ck_abort_msg("no port pool (PORTS_POOL_LO/PORTS_POOL_HI)");
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Different processes start at different places of the pool. */
	start = (int)(((unsigned long)getpid() * 7919UL + (unsigned long)ts.tv_nsec) %
	    (unsigned long)n);
	for (i = 0; i < n; i++) {
		int p = lo + (start + i) % n;
		if (port_unused(p))
			return p;
	}
	fprintf(stderr, "testlib: no free port in %d-%d\n", lo, hi);
	ck_abort_msg("no free port in %d-%d", lo, hi);
	return -1;
}

int
tl_listen(int *port)
{
	struct sockaddr_in a;
	int i, fd;

	for (i = 0; i < 20; i++) {
		int p = tl_free_port();

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)p);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 64) == 0) {
			*port = p;
			return fd;
		}
		close(fd); /* taken since tl_free_port() looked: another one */
	}
	ck_abort_msg("cannot listen on a free loopback port: %s", strerror(errno));
	return -1;
}

/* ---- processes ---------------------------------------------------------- */

pid_t
tl_spawn(char *const argv[], const char *in_path, const char *out_path, const char *err_path)
{
	posix_spawn_file_actions_t fa;
	const char *in = in_path ? in_path : "/dev/null";
	const char *out = out_path ? out_path : "/dev/null";
	const char *err = err_path ? err_path : "/dev/null";
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (strcmp(out, err) == 0)
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	else
		posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "testlib: cannot start %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

long
tl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
tl_wait(pid_t pid, int timeout_ms, int *status)
{
	long until = tl_now_ms() + timeout_ms;
	int st;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (tl_now_ms() >= until)
			return -1;
		usleep(10000);
	}
}

int
tl_stop(pid_t pid, int sig, int timeout_ms, int *status)
{
	if (pid <= 0)
		return -1;
	kill(pid, sig);
	if (tl_wait(pid, timeout_ms, status) == 0)
		return 0;
	kill(pid, SIGKILL);
	tl_wait(pid, 10000, status);
	return -1;
}

/* Does comm start with one of the '|'-separated names of list? */
static int
tl_comm_in(const char *comm, const char *list)
{
	const char *p = list, *bar;
	size_t n;

	for (;;) {
		bar = strchr(p, '|');
		n = bar ? (size_t)(bar - p) : strlen(p);
		if (n > 0 && strncmp(comm, p, n) == 0)
			return 1;
		if (bar == NULL)
			return 0;
		p = bar + 1;
	}
}

int
tl_children(pid_t parent, const char *skip_comm, pid_t *out, int max)
{
	char path[64], buf[4096], *s, *e;
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)parent, (int)parent);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	for (s = buf; n < max; s = e) {
		long v = strtol(s, &e, 10);
		char cp[64], comm[32] = "";
		FILE *cf;

		if (e == s)
			break;
		if (skip_comm != NULL) {
			snprintf(cp, sizeof(cp), "/proc/%ld/comm", v);
			if ((cf = fopen(cp, "r")) != NULL) {
				if (fgets(comm, sizeof(comm), cf) == NULL)
					comm[0] = '\0';
				fclose(cf);
			}
			if (tl_comm_in(comm, skip_comm))
				continue;
		}
		out[n++] = (pid_t)v;
	}
	return n;
}

static int
rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

int
tl_rmtree(const char *dir)
{
	if (access(dir, F_OK) != 0)
		return errno == ENOENT ? 0 : -1;
	return nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- Postgres ------------------------------------------------------------ */

const char *
tl_db_url(void)
{
	const char *u = getenv("DATABASE_URL");

	ck_assert_msg(u != NULL, "DATABASE_URL is not set: run through tests/run-all or export it");
	return u;
}

PGconn *
tl_db(void)
{
	PGconn *c = PQconnectdb(tl_db_url());

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "db: %s", PQerrorMessage(c));
	return c;
}

int64_t
tl_db_int(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	int64_t v = -1;

	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
	ck_assert_msg(PQntuples(r) == 1, "%s: %d rows", sql, PQntuples(r));
	if (!PQgetisnull(r, 0, 0))
		v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

void
tl_db_exec(PGconn *c, const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);

	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
	    "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}
