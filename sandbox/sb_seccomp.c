/*
 * sb_seccomp.c — the seccomp allowlists (see sandbox.h and
 * docs/sandbox.md, which lists every syscall with the reason).
 *
 * Default action: kill the whole process (SCMP_ACT_KILL_PROCESS), so a
 * compromised grpc thread cannot survive a violation. Filters are loaded
 * with TSYNC: grpc's threads already exist when a worker locks down, and
 * threads created later inherit the filter. Only the native architecture
 * is allowed (libseccomp kills other arches by default). Soft denials
 * (EACCES/ENOSYS) exist only where libc or absl probe and cope.
 */
#include "sandbox.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <seccomp.h>

/* Plain allows shared by every profile: what grpc, libpq, hiredis and
 * glibc need to run threads, poll sockets and keep time. */
static const char *const base_allow[] = {
	/* I/O on descriptors opened before lock-down */
	"read", "write", "readv", "writev", "pread64", "pwrite64",
	"recvfrom", "sendto", "recvmsg", "sendmsg", "close", "shutdown",
	"getsockopt", "setsockopt", "getsockname", "getpeername", "fcntl", "ioctl",
	"fstat", "newfstatat", "lseek", "dup", "dup3",
	/* event loops: grpc (epoll1 engine, eventfd wakeups), libpq (poll) */
	"poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_ctl", "epoll_create1",
	"eventfd2", "pipe2",
	/* threads and synchronisation */
	"futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity",
	"gettid", "getpid", "nanosleep", "clock_nanosleep", "clock_gettime",
	"clock_getres", "gettimeofday", "getrandom", "membarrier",
	/* memory (mmap/mprotect are added below without PROT_EXEC) */
	"munmap", "mremap", "madvise", "brk",
	/* signals and exit */
	"rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack",
	"restart_syscall", "exit", "exit_group",
	/* harmless identity reads */
	"getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
	"getrlimit", "prlimit64", "uname", "sysinfo",
	NULL,
};

/* The relay keeps its journal (SQLite opens -wal/-shm files next to it)
 * and librdkafka reconnects to brokers, so it needs files and sockets. */
static const char *const relay_allow[] = {
	"openat", "open", "unlink", "unlinkat", "fsync", "fdatasync", "ftruncate",
	"flock", "access", "faccessat", "faccessat2", "statx", "stat", "lstat",
	"getcwd", "readlink", "rename", "renameat", "mkdir", "fchown", "fchmod",
	"connect", "bind", "getdents64", "select", "pselect6", "timerfd_create",
	"timerfd_settime", "statfs", "fstatfs",
	NULL,
};

/* The metrics exporter serves HTTP on a socket the supervisor bound, and
 * opens one Postgres connection per scrape for the outbox gauges. */
static const char *const exporter_allow[] = {
	"accept4", "accept", "connect", "openat", "open", "statx", "stat",
	"access", "faccessat", "faccessat2",
	NULL,
};

static int
count(const char *const *l)
{
	int n = 0;

	while (l[n] != NULL)
		n++;
	return n;
}

int
sandbox_allowlist_size(enum sandbox_profile p)
{
	/* + clone, mmap, mprotect, prctl (conditional rules) */
	int n = count(base_allow) + 4;

	if (p == SANDBOX_RELAY)
		n += count(relay_allow) + 1;	/* + socket */
	if (p == SANDBOX_EXPORTER)
		n += count(exporter_allow) + 1;	/* + socket */
	return n;
}

/* Debug mode: report the syscall and make it fail with ENOSYS, so one run
 * shows every missing entry instead of dying at the first. Only write(2)
 * here: async-signal-safe and always allowed. */
static void
on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	char buf[96];
	int n;
	ucontext_t *uc = uc_;

	(void)sig;
	n = snprintf(buf, sizeof(buf), "seccomp(debug): blocked syscall %d (pid %d)\n",
	    si->si_syscall, (int)getpid());
	if (write(2, buf, (size_t)n) < 0) { /* nothing to do */ }
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long)-ENOSYS;
#else
	(void)uc;
#endif
}

static int
add_list(scmp_filter_ctx ctx, const char *const *l, char *err, size_t errlen)
{
	int i, nr, rc;

	for (i = 0; l[i] != NULL; i++) {
		nr = seccomp_syscall_resolve_name(l[i]);
		if (nr == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0) {
			snprintf(err, errlen, "seccomp rule %s: %s", l[i], strerror(-rc));
			return -1;
		}
	}
	return 0;
}

#define RULE(ctx, act, name, ...) do { \
	int r_ = seccomp_rule_add((ctx), (act), SCMP_SYS(name), __VA_ARGS__); \
	if (r_ < 0) { \
		snprintf(err, errlen, "seccomp rule %s: %s", #name, strerror(-r_)); \
		goto out; \
	} \
} while (0)

int
sandbox_seccomp(enum sandbox_profile p, int debug, char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	int rc = -1, r;

	if (debug) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigsys;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGSYS, &sa, NULL);
	}
	ctx = seccomp_init(debug ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0) {
		snprintf(err, errlen, "seccomp TSYNC: %s", strerror(-r));
		goto out;
	}
	if (add_list(ctx, base_allow, err, errlen) < 0)
		goto out;
	/* Threads only: a clone without CLONE_THREAD would be a fork. */
	RULE(ctx, SCMP_ACT_ALLOW, clone, 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* clone3 passes flags in memory, which seccomp cannot inspect: make
	 * glibc fall back to clone. */
	RULE(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
	/* Memory may never become executable after lock-down. */
	RULE(ctx, SCMP_ACT_ALLOW, mmap, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	RULE(ctx, SCMP_ACT_ALLOW, mprotect, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Threads name themselves (pthread_setname_np on self). */
	RULE(ctx, SCMP_ACT_ALLOW, prctl, 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));

	if (p == SANDBOX_WORKER) {
		/* libc and absl probe files (/proc, /etc, timezone data):
		 * refuse softly; there is nothing to read in the chroot. */
		RULE(ctx, SCMP_ACT_ERRNO(EACCES), openat, 0);
		if (seccomp_syscall_resolve_name("open") != __NR_SCMP_ERROR)
			RULE(ctx, SCMP_ACT_ERRNO(EACCES), open, 0);
	} else {
		if (add_list(ctx, p == SANDBOX_RELAY ? relay_allow : exporter_allow, err, errlen) < 0)
			goto out;
		/* New sockets only for IP and local IPC. */
		RULE(ctx, SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET));
		RULE(ctx, SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_INET6));
		RULE(ctx, SCMP_ACT_ALLOW, socket, 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	}
	/* abort() raises SIGABRT on itself; allow signals to self only. */
	RULE(ctx, SCMP_ACT_ALLOW, tgkill, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));

	if ((r = seccomp_load(ctx)) < 0) {
		snprintf(err, errlen, "seccomp_load: %s", strerror(-r));
		goto out;
	}
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}
