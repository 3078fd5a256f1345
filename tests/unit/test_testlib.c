/* SPDX-License-Identifier: MIT */
/*
 * test_testlib.c — tests/lib/testlib.c, the helpers of the libcheck
 * programs: free ports come from the harness's pool (or from below the
 * ephemeral range when run alone) and are free; listeners, spawning,
 * stopping, children and tree removal do what they say.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"
#include "tests/lib/testlib.h"

START_TEST(free_port_from_the_pool)
{
	char *lo_env = getenv("PORTS_POOL_LO"), *hi_env = getenv("PORTS_POOL_HI");
	char save_lo[16] = "", save_hi[16] = "", v[16];
	int lo, hi, p, i;

	tl_ephemeral_range(&lo, &hi);
	if (lo_env && hi_env) {
		snprintf(save_lo, sizeof(save_lo), "%s", lo_env);
		snprintf(save_hi, sizeof(save_hi), "%s", hi_env);
	}
	/* A pool given by the harness: ten ports below the ephemeral range. */
	snprintf(v, sizeof(v), "%d", lo - 100);
	setenv("PORTS_POOL_LO", v, 1);
	snprintf(v, sizeof(v), "%d", lo - 91);
	setenv("PORTS_POOL_HI", v, 1);
	for (i = 0; i < 20; i++) {
		p = tl_free_port();
		ck_assert_int_ge(p, lo - 100);
		ck_assert_int_le(p, lo - 91);
	}
	/* Alone: just below the ephemeral range, never inside it. */
	unsetenv("PORTS_POOL_LO");
	unsetenv("PORTS_POOL_HI");
	for (i = 0; i < 20; i++) {
		p = tl_free_port();
		ck_assert_int_lt(p, lo);
		ck_assert_int_ge(p, lo - 500);
	}
	/* The pool of the harness running us, if any. */
	if (save_lo[0]) {
		setenv("PORTS_POOL_LO", save_lo, 1);
		setenv("PORTS_POOL_HI", save_hi, 1);
		p = tl_free_port();
		ck_assert_int_ge(p, strtol(save_lo, NULL, 10));
		ck_assert_int_le(p, strtol(save_hi, NULL, 10));
		ck_assert_msg(
		    p < lo || p > hi, "pool port %d inside the ephemeral range %d-%d", p, lo, hi);
	}
}
END_TEST

START_TEST(listen_takes_a_free_port_and_free_port_skips_it)
{
	char *lo_env = getenv("PORTS_POOL_LO"), *hi_env = getenv("PORTS_POOL_HI");
	char save_lo[16] = "", save_hi[16] = "", v[16];
	int want = tl_free_port(), port, fd, c, i;
	struct sockaddr_in a;

	if (lo_env && hi_env) {
		snprintf(save_lo, sizeof(save_lo), "%s", lo_env);
		snprintf(save_hi, sizeof(save_hi), "%s", hi_env);
	}
	/* A pool of one free port: the listener gets exactly it. */
	snprintf(v, sizeof(v), "%d", want);
	setenv("PORTS_POOL_LO", v, 1);
	setenv("PORTS_POOL_HI", v, 1);
	fd = tl_listen(&port);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(port, want);
	c = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	close(c);
	/* Back in the whole pool, the port now listening is never offered. */
	if (save_lo[0]) {
		setenv("PORTS_POOL_LO", save_lo, 1);
		setenv("PORTS_POOL_HI", save_hi, 1);
	} else {
		unsetenv("PORTS_POOL_LO");
		unsetenv("PORTS_POOL_HI");
	}
	for (i = 0; i < 50; i++)
		ck_assert_int_ne(tl_free_port(), port);
	close(fd);
}
END_TEST

START_TEST(spawn_wait_stop_children)
{
	char *sleeper[] = { "sleep", "30", NULL },
	     *echo[] = { "sh", "-c", "echo out; echo err >&2", NULL };
	char *bogus[] = { "/nonexistent/program", NULL };
	char path[] = "/tmp/testlib-XXXXXX", file[64], buf[64];
	pid_t a, b, kids[8];
	int st, n, i, fd, seen = 0;
	ssize_t r;

	a = tl_spawn(sleeper, NULL, NULL, NULL);
	b = tl_spawn(sleeper, NULL, NULL, NULL);
	ck_assert_int_gt(a, 0);
	ck_assert_int_gt(b, 0);
	n = tl_children(getpid(), NULL, kids, 8);
	for (i = 0; i < n; i++)
		seen += kids[i] == a || kids[i] == b;
	ck_assert_int_eq(seen, 2);
	n = tl_children(getpid(), "sleep", kids, 8);
	for (i = 0; i < n; i++)
		ck_assert(kids[i] != a && kids[i] != b);
	ck_assert_int_eq(tl_wait(a, 100, &st), -1); /* still running */
	ck_assert_int_eq(tl_stop(a, SIGTERM, 5000, &st), 0);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	/* One that does not exit in time is killed (signal 0 asks nothing). */
	ck_assert_int_eq(tl_stop(b, 0, 100, &st), -1);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(file, sizeof(file), "%s/both", path);
	a = tl_spawn(echo, NULL, file, file);
	ck_assert_int_eq(tl_wait(a, 5000, &st), 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fd = open(file, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_gt(r, 0);
	buf[r] = '\0';
	ck_assert_str_eq(buf, "out\nerr\n");
	ck_assert_int_eq(tl_spawn(bogus, NULL, NULL, NULL), -1);
	ck_assert_int_eq(tl_rmtree(path), 0);
}
END_TEST

START_TEST(rmtree_removes_everything)
{
	char path[] = "/tmp/testlib-XXXXXX", p[128];
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(p, sizeof(p), "%s/a", path);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b", path);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b/file", path);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/link", path);
	ck_assert_int_eq(symlink("/etc", p), 0); /* removed, not followed */
	ck_assert_int_eq(tl_rmtree(path), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(access("/etc/passwd", F_OK), 0);
	ck_assert_int_eq(tl_rmtree(path), 0); /* already gone: fine */
}
END_TEST

Suite *
testlib_suite(void)
{
	const TTest *const tests[] = {
		free_port_from_the_pool,
		listen_takes_a_free_port_and_free_port_skips_it,
		spawn_wait_stop_children,
		rmtree_removes_everything,
		NULL,
	};

	return tl_suite("testlib", 30, tests);
}
