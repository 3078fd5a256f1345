/* SPDX-License-Identifier: MIT */
/*
 * sb_policy.c — what each seccomp profile allows, and why (one row per
 * rule; docs/sandbox.md carries the same table for readers, and the
 * sandbox test fails if a row here is missing there).
 *
 * Contract: sb_rules[] is the complete policy apart from the default
 * action (kill the process). A syscall without a row is killed. A row with
 * err != 0 is a soft denial: the call fails with that errno, used only
 * where libc/grpc probe something and cope with the failure. Rows with
 * comparisons match only when every comparison holds; anything else about
 * that syscall falls through to the default (kill).
 *
 * Built from what `strace -f` and debug mode showed a worker (grpc 1.51
 * core server with epoll1, libpq, hiredis, glibc 2.36) and the relay
 * (librdkafka, SQLite WAL, libpq) actually calling — see tests/sandbox/
 * and docs/sandbox.md — not from a generic "service" list. The exporter
 * is the relay's network-client half plus accept, without file writes.
 * The log forwarder (SB_L) gets read, write, writev, rt_sigreturn and
 * exit_group: it copies a pipe it holds to a file it holds. The key-holder
 * (SB_K) gets what its poll loop over the sockets it was handed calls
 * (poll, recvmsg, sendto, newfstatat for a channel's inode, shutdown,
 * close; write for logs), plus memory and getrandom for the signatures: no
 * open, no socket, no connect, no threads, no read (strace of kh_test,
 * tests/kh/).
 */
#include "sb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

/* The key-holder's profile, row by row like the log forwarder's. */
#define SB_K (1u << SANDBOX_KEYHOLDER)
/* The janitor's, likewise: libpq's blocking I/O on the one connection it
 * opened before the lock-down (recvfrom, sendto, poll), logs (write),
 * malloc, timestamps, its SIGTERM handler, getrandom for OpenSSL when the
 * connection uses TLS, exit; gettid, sigaltstack and rt_sigprocmask for
 * what ASan (SAN builds) and libpq's PQfinish call on the way out (debug
 * mode, suite 63-janitor). No socket, connect, open, threads, fork. */
#define SB_J (1u << SANDBOX_JANITOR)

/* Brace-initializer macros, one line each (clang-format would split them). */
// clang-format off
#define CMP(i, o, a, b) { .arg = (i), .op = (o), .datum_a = (a), .datum_b = (b) }
/* Plain allow. */
#define ALLOW(n, p, w)            { n, p, 0, 0, 0, { CMP(0, 0, 0, 0) }, "", w }
/* Allow when one comparison holds. */
#define ALLOW_IF(n, p, c0, s, w)  { n, p, 0, 0, 1, { c0 }, s, w }
/* Fail with an errno (optionally only when a comparison holds). */
#define DENY(n, p, e, w)          { n, p, e, 0, 0, { CMP(0, 0, 0, 0) }, "", w }
#define DENY_IF(n, p, e, c0, s, w) { n, p, e, 0, 1, { c0 }, s, w }
// clang-format on

/* Flags that make an open write or create something. */
#define OPEN_WRITE_FLAGS \
	((scmp_datum_t)(O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY)))

const struct sb_rule sb_rules[] = {
	/* --- I/O on descriptors opened before lock-down --- */
	ALLOW(
	    "read", SB_ALL | SB_L, "socket/pipe I/O: hiredis, the control socket, eventfd wakeups"),
	ALLOW("write", SB_ALL | SB_L | SB_K | SB_J,
	    "socket I/O; logs to stderr (a pipe to the supervisor)"),
	ALLOW("writev", SB_ALL | SB_L | SB_K | SB_J,
	    "glibc writes its fatal diagnostics (\"stack smashing detected\") with it"),
	ALLOW("recvfrom", SB_ALL | SB_J, "libpq and hiredis read their sockets (recv)"),
	ALLOW("sendto", SB_ALL | SB_K | SB_J, "libpq and hiredis write their sockets (send)"),
	ALLOW("recvmsg", SB_ALL | SB_K,
	    "grpc reads the client socket; the worker receives it over SCM_RIGHTS"),
	ALLOW("sendmsg", SB_ALL, "grpc writes the client socket; librdkafka writes to brokers"),
	ALLOW("close", SB_ALL | SB_K | SB_J, "closing connections"),
	ALLOW("shutdown", SB_ALL | SB_K, "grpc shuts the endpoint down on GOAWAY/disconnect"),
	ALLOW("setsockopt", SB_ALL, "grpc sets TCP_NODELAY and TCP_INQ on the received socket"),
	ALLOW("getsockname", SB_ALL,
	    "grpc records the local address of the new channel; libpq after connect"),
	ALLOW("fcntl", SB_ALL,
	    "O_NONBLOCK and F_DUPFD_CLOEXEC on the client socket; SQLite's byte-range locks"),
	ALLOW("fstat", SB_ALL | SB_K | SB_J,
	    "stdio sizes buffers from fstat of its descriptor (aarch64/older glibc)"),
	ALLOW("newfstatat", SB_ALL | SB_K | SB_J,
	    "glibc 2.33+ implements fstat() (and stat()) with it; a path is useless in the empty chroot"),
	/* ioctl: only the requests seen in use. TIOCSTI and friends would
	 * let a worker type into a terminal its stderr happens to be. */
	ALLOW_IF("ioctl", SB_ALL, CMP(1, SCMP_CMP_EQ, FIONBIO, 0), "request == FIONBIO",
	    "switching a socket to non-blocking (ioctl form)"),
	ALLOW_IF("ioctl", SB_ALL, CMP(1, SCMP_CMP_EQ, FIONREAD, 0), "request == FIONREAD",
	    "bytes pending on a socket"),
	DENY_IF("ioctl", SB_ALL, ENOTTY, CMP(1, SCMP_CMP_EQ, TCGETS, 0), "request == TCGETS",
	    "isatty() (stdio buffering): answered \"not a terminal\""),

	/* --- event loops --- */
	ALLOW("poll", SB_ALL | SB_K | SB_J,
	    "libpq and hiredis wait for their sockets; librdkafka's broker threads"),
	ALLOW("ppoll", SB_ALL | SB_K | SB_J, "poll() on aarch64 (x86_64 glibc uses poll)"),
	ALLOW("epoll_wait", SB_W, "grpc's epoll1 polling engine"),
	ALLOW("epoll_pwait", SB_W, "epoll_wait() on aarch64"),
	ALLOW("epoll_ctl", SB_W, "grpc adds the received client socket to its epoll set"),

	/* --- threads and synchronisation --- */
	/* clone: only threads. Without CLONE_THREAD it would be a fork. */
	ALLOW_IF("clone", SB_ALL, CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD),
	    "flags & CLONE_THREAD", "grpc's timer manager and executor start threads on demand"),
	/* clone3 passes its flags in memory seccomp cannot read: refuse it
	 * softly so glibc (2.34+) falls back to clone, which we can check. */
	DENY("clone3", SB_ALL, ENOSYS,
	    "its flags are in memory seccomp cannot inspect; glibc falls back to clone"),
	ALLOW("futex", SB_ALL, "mutexes and condition variables (glibc, absl, grpc)"),
	ALLOW("set_robust_list", SB_ALL, "glibc registers it in every new thread"),
	ALLOW("rseq", SB_ALL, "glibc 2.35+ registers restartable sequences in every new thread"),
	ALLOW("sched_yield", SB_ALL, "absl spinlocks and grpc's thread pool back off"),
	ALLOW("sched_getaffinity", SB_ALL,
	    "grpc/absl count CPUs (the /sys and /proc files are not reachable)"),
	ALLOW("sched_getparam", SB_ALL,
	    "glibc's pthread_create() reads the creating thread's policy the first time a non-main thread (grpc's timer thread) starts one"),
	ALLOW("sched_getscheduler", SB_ALL, "as sched_getparam"),
	ALLOW("getpid", SB_ALL | SB_K | SB_J,
	    "log lines carry the pid; raise()/abort() target ourselves"),
	ALLOW("gettid", SB_ALL | SB_J,
	    "thread ids for logs (absl, librdkafka); ASan registers new threads with it"),
	ALLOW("clock_nanosleep", SB_ALL, "nanosleep()/usleep() in glibc 2.36"),
	ALLOW("clock_gettime", SB_ALL | SB_K | SB_J,
	    "deadlines and timestamps (vDSO first; syscall when the clocksource has no vDSO)"),
	ALLOW(
	    "gettimeofday", SB_ALL | SB_J, "wall-clock timestamps (vDSO first, syscall fallback)"),
	ALLOW("getrandom", SB_ALL | SB_K | SB_J,
	    "payment ids (ULID), correlation ids, absl hash seeds, retry jitter"),
	/* tgkill only to our own process: raise()/abort() deliver SIGABRT to
	 * themselves; signalling anyone else stays forbidden. */
	{ "tgkill", SB_ALL, 0, SB_SELF_PID, 1, { CMP(0, SCMP_CMP_EQ, 0, 0) }, "tgid == own pid",
	    "abort()/raise() signal the calling thread" },

	/* --- memory --- */
	/* mmap/mprotect never with PROT_EXEC: no new code after lock-down. */
	ALLOW_IF("mmap", SB_ALL | SB_K | SB_J, CMP(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
	    "!(prot & PROT_EXEC)", "malloc arenas, thread stacks; SQLite maps its -shm file"),
	ALLOW_IF("mprotect", SB_ALL, CMP(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0),
	    "!(prot & PROT_EXEC)", "malloc grows arenas; thread stack guard pages"),
	ALLOW("munmap", SB_ALL | SB_K | SB_J, "freeing large allocations and thread stacks"),
	ALLOW("mremap", SB_ALL | SB_J, "realloc() of large (mmapped) message buffers"),
	ALLOW("madvise", SB_ALL | SB_J,
	    "glibc releases stacks of exited threads (MADV_DONTNEED); malloc trims"),
	ALLOW("brk", SB_ALL | SB_K | SB_J, "the main heap"),

	/* --- signals and exit --- */
	ALLOW(
	    "rt_sigprocmask", SB_ALL | SB_J, "grpc and glibc block signals around thread creation"),
	ALLOW("rt_sigreturn", SB_ALL | SB_L | SB_J,
	    "returning from a signal handler (SIGTERM sets the drain flag)"),
	ALLOW("sigaltstack", SB_ALL | SB_J,
	    "ASan/UBSan give every new thread an alternate signal stack (affects only the caller)"),
	ALLOW("restart_syscall", SB_ALL | SB_J,
	    "the kernel restarts a sleep interrupted by a signal"),
	ALLOW("exit", SB_ALL, "a thread ends"),
	ALLOW("exit_group", SB_ALL | SB_L | SB_K | SB_J, "the process ends"),

	/* --- harmless reads --- */
	/* prlimit64 only as getrlimit(): pid 0 (self) and no new limit — a
	 * worker must not change the limits of the other workers (same uid). */
	{ "prlimit64", SB_ALL, 0, 0, 2, { CMP(0, SCMP_CMP_EQ, 0, 0), CMP(2, SCMP_CMP_EQ, 0, 0) },
	    "pid == 0 && new_limit == NULL",
	    "getrlimit() (glibc reads RLIMIT_STACK for thread stacks)" },
	ALLOW("uname", SB_ALL,
	    "grpc checks the kernel version before enabling TCP features on a new endpoint"),
	/* prctl only to name the calling thread or re-arm its own
	 * parent-death signal; nothing that changes privileges or dumping. */
	ALLOW_IF("prctl", SB_ALL, CMP(0, SCMP_CMP_EQ, PR_SET_NAME, 0), "option == PR_SET_NAME",
	    "grpc/librdkafka name their new threads (pthread_setname_np on self)"),
	ALLOW_IF("prctl", SB_ALL, CMP(0, SCMP_CMP_EQ, PR_SET_PDEATHSIG, 0),
	    "option == PR_SET_PDEATHSIG",
	    "die with the supervisor: the exporter arms it after its drop"),
	ALLOW("getppid", SB_ALL,
	    "is the supervisor still our parent (after arming PR_SET_PDEATHSIG)"),

	/* --- files --- */
	/* Workers: nothing to read in the empty chroot, so refuse read-only
	 * opens softly (glibc/absl/OpenSSL probe /etc/localtime, zoneinfo,
	 * /proc/stat, /sys/devices/system/cpu/online, openssl.cnf); an open
	 * that would write or create anything kills. */
	DENY_IF("openat", SB_W, EACCES, CMP(2, SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0),
	    "read-only flags", "soft denial of library probes; write/create opens are killed"),
	DENY_IF("open", SB_W, EACCES, CMP(1, SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0),
	    "read-only flags", "as openat (x86_64 only; absent on aarch64)"),
	DENY("openat2", SB_ALL, ENOSYS,
	    "its flags are in memory seccomp cannot inspect; callers fall back to openat"),
	/* Relay: SQLite opens journal.db-wal/-shm next to the journal;
	 * glibc reads resolv.conf/hosts/nsswitch.conf when librdkafka or libpq
	 * resolve a name. Which files it can reach is systemd's job
	 * (ProtectSystem=strict: StateDirectory is the only writable path). */
	ALLOW("openat", SB_R, "SQLite -wal/-shm files; resolv.conf, hosts, localtime"),
	/* Exporter: reads what name resolution and libpq read; writes nothing. */
	ALLOW_IF("openat", SB_E, CMP(2, SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0), "read-only flags",
	    "exporter: resolv.conf, hosts, passwd (libpq user), localtime; write/create opens are killed"),
	ALLOW_IF("open", SB_E, CMP(1, SCMP_CMP_MASKED_EQ, OPEN_WRITE_FLAGS, 0), "read-only flags",
	    "as openat (x86_64 only)"),
	ALLOW("open", SB_R, "as openat (x86_64 only)"),
	ALLOW("lseek", SB_R | SB_E, "SQLite and stdio position within files"),
	ALLOW("pread64", SB_R, "SQLite reads journal pages"),
	ALLOW("pwrite64", SB_R, "SQLite writes journal pages and the -wal file"),
	ALLOW("fsync", SB_R, "SQLite syncs the journal directory after creating a file"),
	ALLOW("fdatasync", SB_R, "SQLite commits durably (synchronous=FULL)"),
	ALLOW("ftruncate", SB_R, "SQLite truncates the -wal file at a checkpoint, sizes -shm"),
	ALLOW("unlink", SB_R, "SQLite removes -wal/-shm when the last connection closes"),
	ALLOW("unlinkat", SB_R, "unlink() on aarch64"),
	ALLOW("access", SB_R, "SQLite checks whether a -wal file exists"),
	ALLOW("faccessat", SB_R, "access() on aarch64"),
	ALLOW("faccessat2", SB_R, "access() with flags (glibc 2.33+)"),
	ALLOW("readlink", SB_R, "SQLite resolves symlinks in the journal path"),
	ALLOW("getdents64", SB_R,
	    "libpq's GSSAPI probe lists /etc/gss/mech.d when the relay reconnects to Postgres"),
	ALLOW("getcwd", SB_R, "SQLite makes a relative RELAY_JOURNAL_PATH absolute"),
	ALLOW("geteuid", SB_R | SB_E,
	    "SQLite (chown of new files only as root), libpq's default user name"),
	ALLOW("getuid", SB_R | SB_E, "libpq looks up the OS user when none is configured"),

	/* --- accepting (exporter only) --- */
	/* The exporter accepts scrapes on a socket the supervisor bound and
	 * listened on before the fork; it never binds or listens itself. */
	ALLOW("accept4", SB_R | SB_E,
	    "exporter, relay: accept a Prometheus scrape on the listening socket bound before the lock-down"),
	ALLOW("accept", SB_R | SB_E, "as accept4 (older libc paths)"),

	/* --- new connections (relay; exporter's Postgres connection) --- */
	ALLOW_IF("socket", SB_R | SB_E, CMP(0, SCMP_CMP_EQ, AF_INET, 0), "domain == AF_INET",
	    "librdkafka broker connections, libpq reconnects, DNS queries"),
	ALLOW_IF("socket", SB_R | SB_E, CMP(0, SCMP_CMP_EQ, AF_INET6, 0), "domain == AF_INET6",
	    "as AF_INET"),
	ALLOW_IF("socket", SB_R | SB_E, CMP(0, SCMP_CMP_EQ, AF_UNIX, 0), "domain == AF_UNIX",
	    "libpq over the Postgres unix socket; glibc asks nscd"),
	/* getaddrinfo(AI_ADDRCONFIG) asks the kernel for addresses over
	 * netlink; refused, glibc assumes both families are configured.
	 * systemd's RestrictAddressFamilies= gives the same answer. */
	DENY_IF("socket", SB_R | SB_E, EAFNOSUPPORT, CMP(0, SCMP_CMP_EQ, AF_NETLINK, 0),
	    "domain == AF_NETLINK",
	    "getaddrinfo's interface probe: answered \"not supported\" (was a kill: broker reconnects died)"),
	DENY("bind", SB_R, EACCES,
	    "a librdkafka broker thread was seen calling bind during relay restarts (SIGSYS under chaos); refused, not killed: the relay binds its metrics port before the lock-down and needs no other"),
	ALLOW("connect", SB_R | SB_E, "librdkafka brokers, Postgres, DNS servers"),
	ALLOW("getsockopt", SB_R | SB_E,
	    "SO_ERROR after a non-blocking connect; librdkafka reads buffer sizes"),
	ALLOW("sendmmsg", SB_R | SB_E, "glibc's resolver sends the A and AAAA queries together"),
	ALLOW("eventfd2", SB_R, "librdkafka wakeup fds for brokers learned from metadata"),
	ALLOW("pipe2", SB_R, "librdkafka wakeup pipes (when eventfd is unavailable)"),
};

const int sb_nrules = (int)(sizeof(sb_rules) / sizeof(sb_rules[0]));

const char *
sb_errname(int err)
{
	switch (err) {
	case 0: return "allow";
	case EACCES: return "EACCES";
	case ENOSYS: return "ENOSYS";
	case ENOTTY: return "ENOTTY";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EPERM: return "EPERM";
	default: return "errno";
	}
}

int
sandbox_policy(enum sandbox_profile p, struct sandbox_rule_info *out, int max)
{
	int i, n = 0;

	for (i = 0; i < sb_nrules; i++) {
		if (!(sb_rules[i].prof & (1u << p)))
			continue;
		if (out != NULL && n < max) {
			out[n].name = sb_rules[i].name;
			out[n].action = sb_errname(sb_rules[i].err);
			out[n].cond = sb_rules[i].cond;
			out[n].why = sb_rules[i].why;
		}
		n++;
	}
	return n;
}

int
sandbox_allowlist_size(enum sandbox_profile p)
{
	int i, j, n = 0, dup;

	for (i = 0; i < sb_nrules; i++) {
		if (!(sb_rules[i].prof & (1u << p)) || sb_rules[i].err != 0)
			continue;
		dup = 0;
		for (j = 0; j < i && !dup; j++)
			dup = (sb_rules[j].prof & (1u << p)) && sb_rules[j].err == 0 &&
			    strcmp(sb_rules[j].name, sb_rules[i].name) == 0;
		n += !dup;
	}
	return n;
}
