/* SPDX-License-Identifier: MIT */
/*
 * test_util.c — daemon/common/util.c: the random pool.
 */
#include <check.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"
#include "tests/lib/testlib.h"
#include "common/util.h"

/* util_random() keeps a pool; a forked child must never hand out the
 * bytes its parent will (two workers minting the same payment ids). */
START_TEST(random_pool_not_shared_across_fork)
{
	unsigned char a[16], b[16], warm[8];
	int pfd[2], st;
	pid_t pid;

	ck_assert_int_eq(util_random(warm, sizeof(warm)), 0); /* pool filled */
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		unsigned char c[16];
		if (util_random(c, sizeof(c)) < 0 || write(pfd[1], c, sizeof(c)) != sizeof(c))
			_exit(1);
		_exit(0);
	}
	ck_assert_int_eq(util_random(a, sizeof(a)), 0);
	ck_assert_int_eq((int)read(pfd[0], b, sizeof(b)), (int)sizeof(b));
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	/* Successive draws differ too, across a pool refill. */
	for (int i = 0; i < 40; i++) {
		ck_assert_int_eq(util_random(b, sizeof(b)), 0);
		ck_assert(memcmp(a, b, sizeof(a)) != 0);
		memcpy(a, b, sizeof(a));
	}
	close(pfd[0]);
	close(pfd[1]);
}
END_TEST

Suite *
util_suite(void)
{
	const TTest *const tests[] = {
		random_pool_not_shared_across_fork,
		NULL,
	};

	return tl_suite("util", 0, tests);
}
