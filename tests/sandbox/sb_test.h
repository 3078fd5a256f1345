/* SPDX-License-Identifier: MIT */
/*
 * sb_test.h — pieces of the sandbox test program (build/sb_test).
 *
 * The program is both sides of paymentd's worker hand-off:
 *  - sb_worker.c: run as `sb_test --worker MODE` (fork+exec of itself, so
 *    each worker starts with a clean grpc), it does what a paymentd worker
 *    does — grpc_init, completion queue, server with a registered method,
 *    grpc_server_start, sandbox_enter — then receives its client socket
 *    over SCM_RIGHTS and serves unary RPCs. The payload names an operation
 *    to attempt inside the sandbox; the reply is "rc=N errno=E".
 *  - sb_client.c: the supervisor and client side — spawns a worker,
 *    accepts a loopback TCP connection from a grpc core client in this
 *    process and passes it to the worker, then makes calls.
 *  - sb_proc.c: reads /proc/PID/status the way an auditor would.
 *  - sb_test.c: the libcheck cases.
 */
#ifndef SB_TEST_H
#define SB_TEST_H

#include <stddef.h>
#include <sys/types.h>
#include <grpc/grpc.h>

#define SB_METHOD "/sbtest.Sandbox/Try"
#define SB_CTL_FD 3 /* the worker's end of the control socketpair */

/* --- worker side --- */
int sbw_main(int argc, char **argv);

/* --- supervisor/client side --- */
struct sbw {
	pid_t pid;
	int ctl;    /* control socketpair (our end) */
	int errfd;  /* the worker's stderr (a pipe: workers may not write files) */
	int status; /* wait status once reaped */
	int reaped;
};

/* Environment for every worker spawned (set by the test setup). */
struct sbw_env {
	const char *user;       /* sandbox user, normally "paymentd" */
	const char *chroot_dir; /* the empty jail */
	const char *relay_dir;  /* journal directory for relay mode */
};
extern struct sbw_env sb_env;

/* Spawns `sb_test --worker MODE [ARG]` and waits until it reports ready
 * ("R") or failed ("E<message>"). Returns 0 ready, 1 failed (msg filled),
 * -1 on a harness error. */
int
sbw_spawn(struct sbw *w, const char *mode, const char *arg, int debug, char *msg, size_t msglen);
/* Waits up to timeout_ms for the worker to exit; 0 when reaped. */
int sbw_wait(struct sbw *w, int timeout_ms);
/* Kills (SIGKILL) and reaps a worker still running; closes descriptors. */
void sbw_destroy(struct sbw *w);
/* Whatever the worker wrote to stderr so far (NUL-terminated). */
size_t sbw_stderr(struct sbw *w, char *buf, size_t len);
/* Line protocol on the control socket (relay mode): sends op, reads reply. */
int sbw_ctl_op(struct sbw *w, const char *op, char *reply, size_t len);

struct sbc {
	int lfd; /* loopback listener the channel connects to */
	int port;
	int passed; /* connection handed to the worker */
	grpc_channel *ch;
};
int sbc_open(struct sbc *c);
void sbc_close(struct sbc *c);
/* One unary call; the first one also accepts the connection and passes it
 * to worker w. Returns the grpc status; reply holds the response body. */
grpc_status_code
sbc_call(struct sbc *c, struct sbw *w, const char *payload, char *reply, size_t rlen);

/* --- /proc --- */
struct sb_status {
	unsigned long uid[4], gid[4];
	int ngroups;
	unsigned long groups[32];
	unsigned long long cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;
	int found; /* bitmask of the fields parsed */
};
#define SB_ST_ALL 0x3f
int sb_read_status(const char *path, struct sb_status *st);
/* Number of threads of pid whose status says Seccomp: mode; *total gets
 * the thread count. */
int sb_threads_with_seccomp(pid_t pid, int mode, int *total);
/* A limit from /proc/PID/limits by its name there ("Max open files");
 * "unlimited" reads as ~0. (prlimit(2) on another uid's process needs
 * CAP_SYS_RESOURCE, which containers often withhold even from root.) */
int sb_read_limit(pid_t pid, const char *name, unsigned long long *soft, unsigned long long *hard);

#endif
