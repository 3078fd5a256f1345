/* SPDX-License-Identifier: MIT */
/*
 * sb_test.c — libcheck cases for the sandbox (sandbox/), on workers that
 * mimic paymentd's (sb_worker.c) and are fed a real loopback connection
 * by a supervisor/client in this process (sb_client.c).
 *
 * What it proves, from the kernel's point of view (/proc/PID/status):
 * after the drop a worker has the sandbox user in all four uid/gid
 * fields, no supplementary groups but its own, no capabilities,
 * NoNewPrivs 1, Seccomp 2 on every thread (grpc's included, via TSYNC),
 * its root in the empty chroot; setuid(0) fails; a real unary gRPC call
 * is served inside the sandbox; forbidden syscalls kill it with SIGSYS
 * while this process carries on; soft denials return their errno; debug
 * mode reports instead of killing; the relay profile can use its SQLite
 * journal and open IP sockets but not exec/fork; the policy is fully
 * documented in docs/sandbox.md. Needs root (it drops privileges).
 *
 * Also `sb_test --policy worker|relay|exporter` prints a profile's policy
 * (name, action, condition, reason) for scripts (tests/suites/40-sandbox).
 */
#include "sb_test.h"
#include "sandbox/sandbox.h"
#include "tests/lib/testlib.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grpc/grpc.h>

static uid_t sb_uid;
static gid_t sb_gid;
static char tmp_chroot[64], relay_dir[64];

static void
grpc_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	grpc_init();
}

/* Spawns a worker and fails the test if it did not lock down. */
static void
spawn_ok(struct sbw *w, const char *mode, const char *arg, int debug)
{
	char msg[512];
	int r = sbw_spawn(w, mode, arg, debug, msg, sizeof(msg));

	ck_assert_msg(r == 0, "worker (%s) did not lock down: %s", mode, msg);
}

static void
assert_killed_by_sigsys(struct sbw *w, const char *what)
{
	ck_assert_msg(sbw_wait(w, 10000) == 0, "%s: worker still alive", what);
	ck_assert_msg(WIFSIGNALED(w->status) && WTERMSIG(w->status) == SIGSYS,
	    "%s: worker ended with status 0x%x, not by SIGSYS", what, w->status);
}

static void
assert_status_dropped(pid_t pid, int expect_seccomp)
{
	char path[64];
	struct sb_status st;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ck_assert_int_eq(sb_read_status(path, &st), 0);
	ck_assert_int_eq(st.found & SB_ST_ALL, SB_ST_ALL);
	for (i = 0; i < 4; i++) {
		ck_assert_uint_eq(st.uid[i], sb_uid);
		ck_assert_uint_eq(st.gid[i], sb_gid);
	}
	ck_assert_msg(st.ngroups == 0 || (st.ngroups == 1 && st.groups[0] == sb_gid),
	    "supplementary groups left: %d", st.ngroups);
	ck_assert_msg(st.cap_eff == 0 && st.cap_prm == 0 && st.cap_inh == 0 && st.cap_amb == 0,
	    "capabilities left: eff %llx prm %llx inh %llx amb %llx", st.cap_eff, st.cap_prm,
	    st.cap_inh, st.cap_amb);
	ck_assert_int_eq(st.no_new_privs, 1);
	ck_assert_int_eq(st.seccomp, expect_seccomp);
}

/* --- the drop --- */

START_TEST(credentials_after_drop)
{
	struct sbw w;
	struct sb_status st;
	unsigned long long soft, hard;
	char path[64], root[256];
	ssize_t n;
	int total, filtered;

	spawn_ok(&w, "worker", NULL, 0);
	assert_status_dropped(w.pid, 2);
	/* We run as full root (CAP_SETPCAP), so the bounding set went too. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)w.pid);
	ck_assert_int_eq(sb_read_status(path, &st), 0);
	ck_assert_msg(st.cap_bnd == 0, "bounding set left: %llx", st.cap_bnd);
	/* The root of the worker is the empty jail. */
	snprintf(path, sizeof(path), "/proc/%d/root", (int)w.pid);
	n = readlink(path, root, sizeof(root) - 1);
	ck_assert_int_gt(n, 0);
	root[n] = '\0';
	ck_assert_str_eq(root, sb_env.chroot_dir);
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)w.pid);
	n = readlink(path, root, sizeof(root) - 1);
	ck_assert_int_gt(n, 0);
	root[n] = '\0';
	ck_assert_str_eq(root, sb_env.chroot_dir);
	/* Every thread, grpc's (started before the lock-down) included. */
	filtered = sb_threads_with_seccomp(w.pid, 2, &total);
	ck_assert_int_ge(total, 3);
	ck_assert_int_eq(filtered, total);
	/* Limits: no cores, no files, bounded descriptors; NPROC untouched. */
	ck_assert_int_eq(sb_read_limit(w.pid, "Max core file size", &soft, &hard), 0);
	ck_assert_uint_eq(hard, 0);
	ck_assert_int_eq(sb_read_limit(w.pid, "Max file size", &soft, &hard), 0);
	ck_assert_uint_eq(hard, 0);
	ck_assert_int_eq(sb_read_limit(w.pid, "Max open files", &soft, &hard), 0);
	ck_assert_uint_eq(soft, 64);
	ck_assert_int_eq(sb_read_limit(w.pid, "Max processes", &soft, &hard), 0);
	ck_assert_uint_ne(soft, 0);
	sbw_destroy(&w);
}
END_TEST

/* The drop alone (no filter yet): root cannot be regained. */
START_TEST(setuid_fails_after_drop)
{
	struct sbw w;
	char reply[256];

	spawn_ok(&w, "drop", NULL, 0);
	/* No filter of our own yet (only a unit's, when one is emulated). */
	assert_status_dropped(w.pid, getenv("SB_OUTER_FILTER") != NULL ? 2 : 0);
	ck_assert_int_eq(sbw_ctl_op(&w, "setuid0", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=-1 errno=1"); /* EPERM */
	ck_assert_int_eq(sbw_ctl_op(&w, "setgid0", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=-1 errno=1");
	/* The parent-death signal armed before the drop survived the uid
	 * change (the kernel clears it; sandbox_drop re-arms it). */
	ck_assert_int_eq(sbw_ctl_op(&w, "getpdeath", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=9 errno=0"); /* SIGKILL */
	/* Inside the empty chroot there is no /etc/passwd to open. */
	ck_assert_int_eq(sbw_ctl_op(&w, "open_ro", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=-1 errno=2"); /* ENOENT */
	sbw_destroy(&w);
}
END_TEST

/* --- gRPC inside the sandbox --- */

START_TEST(unary_rpc_in_sandbox)
{
	struct sbw w;
	struct sbc c;
	char reply[256], err[4096] = "";

	grpc_setup();
	spawn_ok(&w, "worker", NULL, 0);
	ck_assert_int_eq(sbc_open(&c), 0);
	ck_assert_int_eq(sbc_call(&c, &w, "ping", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	/* Several calls on the one connection, exercising what a worker does. */
	ck_assert_int_eq(sbc_call(&c, &w, "sockio", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	ck_assert_int_eq(sbc_call(&c, &w, "getrandom", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	ck_assert_int_eq(sbc_call(&c, &w, "getrlimit", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	ck_assert_int_eq(sbc_call(&c, &w, "write_stderr", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=18 errno=0");
	/* A new thread after the lock-down works (clone with CLONE_THREAD). */
	ck_assert_int_eq(sbc_call(&c, &w, "thread", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	/* Soft denials. */
	ck_assert_int_eq(sbc_call(&c, &w, "open_ro", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=-1 errno=13"); /* EACCES */
	ck_assert_int_eq(sbc_call(&c, &w, "openat_proc", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=-1 errno=13");
	ck_assert_int_eq(sbc_call(&c, &w, "clone3", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=-1 errno=38"); /* ENOSYS: glibc falls back to clone */
	ck_assert_int_eq(sbc_call(&c, &w, "isatty", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0"); /* isatty() == 0: ENOTTY answered */
	/* Still the same worker, still serving. */
	ck_assert_int_eq(kill(w.pid, 0), 0);
	ck_assert_int_eq(sbc_call(&c, &w, "ping", reply, sizeof(reply)), GRPC_STATUS_OK);
	sbw_stderr(&w, err, sizeof(err));
	ck_assert_msg(strstr(err, "worker says hello") != NULL, "stderr: %s", err);
	sbc_close(&c);
	sbw_destroy(&w);
}
END_TEST

/* --- violations kill the worker, not the supervisor --- */

static const char *const kill_ops[] = {
	"execve",
	"socket_inet",
	"socket_unix",
	"socket_netlink",
	"open_wr",
	"open_rdwr",
	"mmap_exec",
	"mprotect_exec",
	"fork",
	"vfork",
	"setuid0",
	"ptrace",
	"kill_init",
	"tgkill_other",
	"setrlimit",
	"ioctl_tiocsti",
	"connect",
	"bind",
	"listen",
	"accept",
	"chroot",
	"unshare",
	"old_thread_socket",
};

START_TEST(violation_kills_worker)
{
	const char *op = kill_ops[_i];
	struct sbw w, w2;
	struct sbc c, c2;
	char reply[256];

	grpc_setup();
	spawn_ok(&w, "worker", NULL, 0);
	ck_assert_int_eq(sbc_open(&c), 0);
	ck_assert_int_eq(sbc_call(&c, &w, "ping", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_msg(sbc_call(&c, &w, op, reply, sizeof(reply)) != GRPC_STATUS_OK,
	    "%s was answered: %s", op, reply);
	assert_killed_by_sigsys(&w, op);
	sbc_close(&c);
	sbw_destroy(&w);
	/* The supervisor side carries on: a fresh worker serves at once. */
	spawn_ok(&w2, "worker", NULL, 0);
	ck_assert_int_eq(sbc_open(&c2), 0);
	ck_assert_int_eq(sbc_call(&c2, &w2, "ping", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	sbc_close(&c2);
	sbw_destroy(&w2);
}
END_TEST

/* --- debug mode reports instead of killing --- */

START_TEST(debug_mode_reports)
{
	struct sbw w;
	struct sbc c;
	char reply[256], err[4096] = "", want[64];

	grpc_setup();
	spawn_ok(&w, "worker", NULL, 1);
	ck_assert_int_eq(sbc_open(&c), 0);
	ck_assert_int_eq(sbc_call(&c, &w, "socket_inet", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=-1 errno=38"); /* ENOSYS */
	ck_assert_int_eq(sbc_call(&c, &w, "ping", reply, sizeof(reply)), GRPC_STATUS_OK);
	snprintf(want, sizeof(want), "blocked syscall %d (pid %d)", (int)SYS_socket, (int)w.pid);
	sbw_stderr(&w, err, sizeof(err));
	ck_assert_msg(strstr(err, want) != NULL, "no \"%s\" in stderr: %s", want, err);
	/* Soft denials and the memory rules are unchanged in debug mode. */
	ck_assert_int_eq(sbc_call(&c, &w, "open_ro", reply, sizeof(reply)), GRPC_STATUS_OK);
	ck_assert_str_eq(reply, "rc=-1 errno=13");
	sbc_close(&c);
	sbw_destroy(&w);
}
END_TEST

/* --- the relay profile --- */

/* Under a unit's filter (SB_OUTER_FILTER) the relay starts as the user,
 * as payment-relay.service (User=paymentd) starts it; otherwise as root,
 * dropping itself, as payment-relay does when started by root. */
static const char *
relay_arg(void)
{
	return getenv("SB_OUTER_FILTER") != NULL ? "user" : NULL;
}

START_TEST(relay_profile_works)
{
	struct sbw w;
	char reply[256], op[64], buf[8] = "", path[128];
	ssize_t n;
	int lfd, fd, port;

	spawn_ok(&w, "relay", relay_arg(), 0);
	assert_status_dropped(w.pid, 2);
	snprintf(path, sizeof(path), "/proc/%d/root", (int)w.pid);
	n = readlink(path, op, sizeof(op) - 1);
	ck_assert_int_gt(n, 0);
	op[n] = '\0';
	ck_assert_str_eq(op, "/"); /* no chroot: see docs/sandbox.md */
	/* A new SQLite connection after the lock-down: -wal/-shm, fsync. */
	ck_assert_int_eq(sbw_ctl_op(&w, "sqlite", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	/* Name resolution (hosts file; netlink probe refused softly). */
	ck_assert_int_eq(sbw_ctl_op(&w, "resolve", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	ck_assert_int_eq(sbw_ctl_op(&w, "socket_netlink", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=-1 errno=97"); /* EAFNOSUPPORT */
	/* bind is refused, not killed: a librdkafka broker thread was seen
	 * calling it (docs/sandbox.md); the relay still cannot bind. */
	ck_assert_int_eq(sbw_ctl_op(&w, "bind", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=-1 errno=13"); /* EACCES */
	/* A new TCP connection, as librdkafka makes to brokers. */
	lfd = tl_listen(&port);
	snprintf(op, sizeof(op), "connect:%d", port);
	ck_assert_int_eq(sbw_ctl_op(&w, op, reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	fd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, 2), 2);
	ck_assert_str_eq(buf, "hi");
	close(fd);
	close(lfd);
	sbw_destroy(&w);
}
END_TEST

static const char *const relay_kill_ops[] = {
	"execve",
	"fork",
	"socket_packet",
	"ptrace",
	"mmap_exec",
	"setuid0",
	"kill_init",
	"listen",
};

START_TEST(relay_violation_kills)
{
	const char *op = relay_kill_ops[_i];
	struct sbw w;
	char reply[256];

	spawn_ok(&w, "relay", relay_arg(), 0);
	ck_assert_msg(sbw_ctl_op(&w, op, reply, sizeof(reply)) != 0, "%s answered: %s", op, reply);
	assert_killed_by_sigsys(&w, op);
	sbw_destroy(&w);
}
END_TEST

/* --- the metrics exporter profile --- */

START_TEST(exporter_profile_works)
{
	struct sbw w;
	struct sockaddr_in sa;
	char reply[256], buf[32] = "", *end;
	int fd, port;

	spawn_ok(&w, "exporter", NULL, 0);
	assert_status_dropped(w.pid, 2);
	ck_assert_int_eq(sbw_ctl_op(&w, "port", reply, sizeof(reply)), 0);
	ck_assert_int_eq(strncmp(reply, "rc=", 3), 0);
	port = (int)strtol(reply + 3, &end, 10);
	ck_assert_str_eq(end, " errno=0");
	ck_assert_int_gt(port, 0);
	ck_assert_int_le(port, 65535);
	/* A scrape: we connect, it accepts (accept4) and answers. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(write(fd, "GET /metrics\r\n\r\n", 16), 16);
	ck_assert_int_eq(sbw_ctl_op(&w, "serve1", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 10);
	ck_assert_str_eq(buf, "metrics 1\n");
	close(fd);
	/* Reads files (libpq, resolver), resolves names, re-arms PDEATHSIG. */
	ck_assert_int_eq(sbw_ctl_op(&w, "open_ro", reply, sizeof(reply)), 0);
	ck_assert_msg(strncmp(reply, "rc=-1", 5) != 0, "open_ro: %s", reply);
	ck_assert_int_eq(sbw_ctl_op(&w, "resolve", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	ck_assert_int_eq(sbw_ctl_op(&w, "pdeathsig", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "rc=0 errno=0");
	sbw_destroy(&w);
}
END_TEST

static const char *const exporter_kill_ops[] = {
	"open_wr",
	"open_rdwr",
	"execve",
	"fork",
	"listen",
	"bind",
	"socket_packet",
	"ptrace",
	"mmap_exec",
	"setuid0",
	"dumpable",
};

START_TEST(exporter_violation_kills)
{
	const char *op = exporter_kill_ops[_i];
	struct sbw w;
	char reply[256];

	spawn_ok(&w, "exporter", NULL, 0);
	ck_assert_msg(sbw_ctl_op(&w, op, reply, sizeof(reply)) != 0, "%s answered: %s", op, reply);
	assert_killed_by_sigsys(&w, op);
	sbw_destroy(&w);
}
END_TEST

/* --- started without root --- */

START_TEST(nonroot_same_user)
{
	struct sbw w;
	char reply[256], path[64], root[64];
	ssize_t n;

	spawn_ok(&w, "nonroot", "same", 0);
	assert_status_dropped(w.pid, 2);
	snprintf(path, sizeof(path), "/proc/%d/root", (int)w.pid);
	n = readlink(path, root, sizeof(root) - 1);
	ck_assert_int_gt(n, 0);
	root[n] = '\0';
	ck_assert_str_eq(root, "/"); /* chroot impossible without root: skipped */
	ck_assert_msg(sbw_ctl_op(&w, "execve", reply, sizeof(reply)) != 0, "execve answered");
	assert_killed_by_sigsys(&w, "execve");
	sbw_destroy(&w);
}
END_TEST

START_TEST(nonroot_other_user_fails)
{
	struct sbw w;
	char msg[512];

	ck_assert_int_eq(sbw_spawn(&w, "nonroot", "other", 0, msg, sizeof(msg)), 1);
	ck_assert_msg(strstr(msg, "without root") != NULL, "error: %s", msg);
	sbw_destroy(&w);
}
END_TEST

/* --- fail closed (in this forked test process: nothing must change) --- */

static void
assert_unchanged(void)
{
	struct sb_status st;

	ck_assert_int_eq(sb_read_status("/proc/self/status", &st), 0);
	ck_assert_uint_eq(st.uid[1], 0);
	ck_assert_int_eq(st.seccomp, 0);
}

START_TEST(fail_closed)
{
	struct sandbox_ids ids, root_ids = { 0, 0, "root" };
	struct sandbox_opts o = { SANDBOX_WORKER, NULL, 0, 64, 0 };
	char err[512], dir[64] = "/tmp/sbtest-jail-XXXXXX", file[128];
	int fd;

	ck_assert_int_eq(sandbox_resolve("no-such-user-sbtest", &ids, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "no-such-user-sbtest") != NULL, "%s", err);
	ck_assert_int_eq(sandbox_resolve("root", &ids, err, sizeof(err)), -1);
	ck_assert_int_eq(sandbox_resolve(sb_env.user, &ids, err, sizeof(err)), 0);
	ck_assert_uint_eq(ids.uid, sb_uid);

	/* A worker without its jail. */
	ck_assert_int_eq(sandbox_enter(&ids, &o, err, sizeof(err)), -1);
	assert_unchanged();
	/* A jail that is not empty. */
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/leftover", dir);
	fd = open(file, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	o.chroot_dir = dir;
	ck_assert_int_eq(sandbox_enter(&ids, &o, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not empty") != NULL, "%s", err);
	assert_unchanged();
	unlink(file);
	/* A jail others can write to. */
	chmod(dir, 0777);
	ck_assert_int_eq(sandbox_enter(&ids, &o, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "writable") != NULL, "%s", err);
	assert_unchanged();
	rmdir(dir);
	/* A jail that does not exist. */
	ck_assert_int_eq(sandbox_enter(&ids, &o, err, sizeof(err)), -1);
	assert_unchanged();
	/* Never "drop" to root. */
	o.chroot_dir = sb_env.chroot_dir;
	ck_assert_int_eq(sandbox_enter(&root_ids, &o, err, sizeof(err)), -1);
	assert_unchanged();
}
END_TEST

/* --- the policy: documented, and free of the dangerous calls --- */

static int
allowed(enum sandbox_profile p, const char *name)
{
	struct sandbox_rule_info r[256];
	int i, n = sandbox_policy(p, r, 256);

	for (i = 0; i < n && i < 256; i++)
		if (strcmp(r[i].name, name) == 0 && strcmp(r[i].action, "allow") == 0)
			return 1;
	return 0;
}

START_TEST(policy_documented_and_tight)
{
	static const char *const never[] = {
		"execve",
		"execveat",
		"fork",
		"vfork",
		"ptrace",
		"kill",
		"tkill",
		"setuid",
		"setgid",
		"setresuid",
		"setgroups",
		"chroot",
		"mount",
		"umount2",
		"unshare",
		"setns",
		"pivot_root",
		"process_vm_writev",
		"process_vm_readv",
		"bpf",
		"init_module",
		"finit_module",
		"kexec_load",
		"keyctl",
		"add_key",
		"userfaultfd",
		"perf_event_open",
		"io_uring_setup",
		"pkey_mprotect",
		"personality",
		"seccomp",
		"listen",
		"bind",
		"clone3",
		"openat2",
		"memfd_create",
	};
	static const char *const worker_never[] = { "socket", "connect", "accept", "accept4",
		"openat", "open", "unlink", "pipe2" };
	struct sandbox_rule_info r[256];
	const char *docs_path = getenv("SB_DOCS") ? getenv("SB_DOCS") : "docs/sandbox.md";
	char *docs, needle[96];
	FILE *f;
	long len;
	int p, i, n;

	f = fopen(docs_path, "r");
	ck_assert_msg(f != NULL, "cannot read %s", docs_path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	docs = calloc(1, (size_t)len + 1);
	ck_assert_int_eq(fread(docs, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	for (p = SANDBOX_WORKER; p <= SANDBOX_JANITOR; p++) {
		n = sandbox_policy((enum sandbox_profile)p, r, 256);
		ck_assert_int_gt(n, 0);
		ck_assert_int_le(n, 256);
		for (i = 0; i < n; i++) {
			snprintf(needle, sizeof(needle), "`%s`", r[i].name);
			ck_assert_msg(strstr(docs, needle) != NULL,
			    "profile %d: %s is not documented in %s", p, r[i].name, docs_path);
			ck_assert_msg(r[i].why[0] != '\0', "%s has no reason", r[i].name);
		}
		for (i = 0; i < (int)(sizeof(never) / sizeof(never[0])); i++)
			ck_assert_msg(
			    !allowed((enum sandbox_profile)p, never[i]), "%s allowed", never[i]);
	}
	for (i = 0; i < (int)(sizeof(worker_never) / sizeof(worker_never[0])); i++)
		ck_assert_msg(
		    !allowed(SANDBOX_WORKER, worker_never[i]), "worker allows %s", worker_never[i]);
	/* The relay accepts scrapes (RELAY_METRICS_PORT, bound before its
	 * drop) but never binds or listens itself. */
	ck_assert(allowed(SANDBOX_RELAY, "accept4") && !allowed(SANDBOX_RELAY, "bind") &&
	    !allowed(SANDBOX_RELAY, "listen"));
	/* The log forwarder copies a pipe to a file: five syscalls, no more. */
	ck_assert_int_eq(sandbox_allowlist_size(SANDBOX_LOGFWD), 5);
	ck_assert(allowed(SANDBOX_LOGFWD, "read") && allowed(SANDBOX_LOGFWD, "write") &&
	    !allowed(SANDBOX_LOGFWD, "openat") && !allowed(SANDBOX_LOGFWD, "socket") &&
	    !allowed(SANDBOX_LOGFWD, "mmap"));
	/* The key-holder signs over channels it is handed: no socket, no
	 * file, no network of its own. */
	ck_assert(allowed(SANDBOX_KEYHOLDER, "recvmsg") && !allowed(SANDBOX_KEYHOLDER, "socket") &&
	    !allowed(SANDBOX_KEYHOLDER, "openat") && !allowed(SANDBOX_KEYHOLDER, "connect") &&
	    !allowed(SANDBOX_KEYHOLDER, "accept4") && !allowed(SANDBOX_KEYHOLDER, "read"));
	/* The janitor speaks SQL over the one connection it opened before the
	 * lock-down: no new socket, no file, no process. */
	ck_assert(allowed(SANDBOX_JANITOR, "recvfrom") && !allowed(SANDBOX_JANITOR, "socket") &&
	    !allowed(SANDBOX_JANITOR, "connect") && !allowed(SANDBOX_JANITOR, "openat") &&
	    !allowed(SANDBOX_JANITOR, "accept4") && !allowed(SANDBOX_JANITOR, "clone"));
	static const char *const exporter_never[] = { "unlink", "ftruncate", "pwrite64", "fsync",
		"bind", "listen" };
	for (i = 0; i < (int)(sizeof(exporter_never) / sizeof(exporter_never[0])); i++)
		ck_assert_msg(!allowed(SANDBOX_EXPORTER, exporter_never[i]), "exporter allows %s",
		    exporter_never[i]);
	ck_assert_int_lt(
	    sandbox_allowlist_size(SANDBOX_WORKER), sandbox_allowlist_size(SANDBOX_EXPORTER));
	ck_assert_int_lt(
	    sandbox_allowlist_size(SANDBOX_EXPORTER), sandbox_allowlist_size(SANDBOX_RELAY));
	printf("sb_test: allowlist sizes: worker %d, relay %d, exporter %d\n",
	    sandbox_allowlist_size(SANDBOX_WORKER), sandbox_allowlist_size(SANDBOX_RELAY),
	    sandbox_allowlist_size(SANDBOX_EXPORTER));
	free(docs);
}
END_TEST

static int
print_policy(const char *profile)
{
	struct sandbox_rule_info r[256];
	enum sandbox_profile p;
	int i, n;

	if (strcmp(profile, "worker") == 0)
		p = SANDBOX_WORKER;
	else if (strcmp(profile, "relay") == 0)
		p = SANDBOX_RELAY;
	else if (strcmp(profile, "exporter") == 0)
		p = SANDBOX_EXPORTER;
	else if (strcmp(profile, "logfwd") == 0)
		p = SANDBOX_LOGFWD;
	else if (strcmp(profile, "keyholder") == 0)
		p = SANDBOX_KEYHOLDER;
	else if (strcmp(profile, "janitor") == 0)
		p = SANDBOX_JANITOR;
	else
		return 2;
	n = sandbox_policy(p, r, 256);
	for (i = 0; i < n && i < 256; i++)
		printf("%s\t%s\t%s\t%s\n", r[i].name, r[i].action, r[i].cond, r[i].why);
	return 0;
}

/* The jail: the installed one when it is sane, else a private one. */
static int
pick_chroot(void)
{
	static const char *installed = "/var/lib/paymentd/empty";
	struct stat st;

	if (stat(installed, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == 0 &&
	    (st.st_mode & 022) == 0) {
		sb_env.chroot_dir = installed;
		return 0;
	}
	snprintf(tmp_chroot, sizeof(tmp_chroot), "/tmp/sbtest-empty-XXXXXX");
	if (mkdtemp(tmp_chroot) == NULL || chmod(tmp_chroot, 0555) < 0)
		return -1;
	sb_env.chroot_dir = tmp_chroot;
	return 0;
}

static int
make_relay_dir(void)
{
	char path[128];
	int fd;

	snprintf(relay_dir, sizeof(relay_dir), "/tmp/sbtest-relay-XXXXXX");
	if (mkdtemp(relay_dir) == NULL || chown(relay_dir, sb_uid, sb_gid) < 0)
		return -1;
	/* The journal belongs to the user (as StateDirectory= makes it);
	 * SQLite running as root gives its -wal/-shm the same owner. */
	snprintf(path, sizeof(path), "%s/journal.db", relay_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fchown(fd, sb_uid, sb_gid) < 0)
		return -1;
	close(fd);
	sb_env.relay_dir = relay_dir;
	return 0;
}

static void
cleanup_dirs(void)
{
	if (relay_dir[0] && tl_rmtree(relay_dir) != 0)
		fprintf(stderr, "sb_test: could not remove %s\n", relay_dir);
	if (tmp_chroot[0])
		rmdir(tmp_chroot);
}

int
main(int argc, char **argv)
{
	struct passwd *pw;
	const char *user = getenv("SB_USER");
	Suite *s;
	TCase *tc;
	int rc;

	sb_env.user = user ? user : "paymentd";
	if (argc >= 3 && strcmp(argv[1], "--worker") == 0) {
		sb_env.chroot_dir = getenv("SB_CHROOT");
		return sbw_main(argc, argv);
	}
	if (argc >= 3 && strcmp(argv[1], "--policy") == 0)
		return print_policy(argv[2]);

	if (geteuid() != 0) {
		printf("sb_test: needs root (it drops privileges and chroots); run as root\n");
		return 1;
	}
	if ((pw = getpwnam(sb_env.user)) == NULL) {
		printf("sb_test: user %s missing (scripts/install-deps creates it)\n", sb_env.user);
		return 1;
	}
	sb_uid = pw->pw_uid;
	sb_gid = pw->pw_gid;
	if (pick_chroot() < 0 || make_relay_dir() < 0) {
		printf(
		    "sb_test: cannot prepare the chroot/relay directories: %s\n", strerror(errno));
		cleanup_dirs();
		return 1;
	}
	printf("sb_test: user %s (%u:%u), chroot %s\n", sb_env.user, (unsigned)sb_uid,
	    (unsigned)sb_gid, sb_env.chroot_dir);

	s = suite_create("sandbox");
	tc = tcase_create("drop");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, credentials_after_drop);
	tcase_add_test(tc, setuid_fails_after_drop);
	tcase_add_test(tc, nonroot_same_user);
	tcase_add_test(tc, nonroot_other_user_fails);
	tcase_add_test(tc, fail_closed);
	suite_add_tcase(s, tc);
	tc = tcase_create("grpc");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, unary_rpc_in_sandbox);
	tcase_add_test(tc, debug_mode_reports);
	tcase_add_loop_test(
	    tc, violation_kills_worker, 0, (int)(sizeof(kill_ops) / sizeof(kill_ops[0])));
	suite_add_tcase(s, tc);
	tc = tcase_create("relay");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, relay_profile_works);
	tcase_add_loop_test(tc, relay_violation_kills, 0,
	    (int)(sizeof(relay_kill_ops) / sizeof(relay_kill_ops[0])));
	suite_add_tcase(s, tc);
	tc = tcase_create("exporter");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, exporter_profile_works);
	tcase_add_loop_test(tc, exporter_violation_kills, 0,
	    (int)(sizeof(exporter_kill_ops) / sizeof(exporter_kill_ops[0])));
	suite_add_tcase(s, tc);
	tc = tcase_create("policy");
	tcase_add_test(tc, policy_documented_and_tight);
	suite_add_tcase(s, tc);

	rc = tl_run(s, CK_VERBOSE, 0);
	cleanup_dirs();
	return rc;
}
