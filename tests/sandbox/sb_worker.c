/* SPDX-License-Identifier: MIT */
/*
 * sb_worker.c — the worker look-alike (see sb_test.h). It follows the
 * order paymentd's worker uses: grpc_init, completion queue, server,
 * registered method (payload read into a byte buffer), grpc_server_start,
 * "already connected" database sockets, then sandbox_enter, then the
 * client socket arrives over SCM_RIGHTS and grpc serves it.
 *
 * Modes: worker (grpc, worker profile), relay (relay profile, SQLite
 * journal, line protocol on the control socket), exporter (exporter
 * profile, a listening socket bound before the lock-down), nonroot (drops
 * to the user itself first, then sandbox_enter), drop (sandbox_drop only,
 * no filter). Each operation is attempted on request and answered with
 * "rc=N errno=E" — if the sandbox lets the process live.
 */
#include "sb_test.h"
#include "sup/sup_proto.h"
#include "tests/lib/testlib.h" /* tl_free_port() */
#undef fail                    /* check.h's old macro: fail() below is ours */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sqlite3.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

static int db_pair[2] = { -1, -1 }; /* stands in for libpq/hiredis sockets */
static int listen_fd = -1;          /* exporter: bound before the lock-down */
static int listen_port;
static int old_thread_pipe[2] = { -1, -1 };
static const char *relay_dir;

static void
report(const char *msg)
{
	if (write(SB_CTL_FD, msg, strlen(msg)) < 0)
		_exit(90);
}

static void
fail(const char *what, const char *err)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "E%s: %s", what, err);
	report(buf);
	_exit(3);
}

/* SB_OUTER_FILTER=file (names, one a line): stand in for a systemd
 * unit's SystemCallFilter= — default EPERM, those names allowed, applied
 * under no_new_privs — so the sandbox must work stacked under it. Built
 * while still root (the file may be private), loaded later. */
static scmp_filter_ctx
build_outer_filter(void)
{
	const char *path = getenv("SB_OUTER_FILTER");
	char name[64];
	scmp_filter_ctx ctx;
	FILE *f;
	int nr, n = 0;

	if (path == NULL || path[0] == '\0')
		return NULL;
	if ((f = fopen(path, "r")) == NULL)
		fail("outer filter", strerror(errno));
	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL)
		fail("outer filter", "seccomp_init");
	while (fscanf(f, "%63s", name) == 1) {
		nr = seccomp_syscall_resolve_name(name);
		if (nr >= 0 && seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) == 0)
			n++;
	}
	fclose(f);
	if (n == 0)
		fail("outer filter", "no syscalls");
	return ctx;
}

static void
load_outer_filter(scmp_filter_ctx ctx)
{
	if (ctx == NULL)
		return;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_load(ctx) != 0)
		fail("outer filter", "load");
	seccomp_release(ctx);
}

/* Become the user without the sandbox's help, as a unit with User= (or
 * a non-root start) would have done before exec. */
static void
pre_drop(const struct sandbox_ids *ids)
{
	if (setgroups(0, NULL) < 0 || setresgid(ids->gid, ids->gid, ids->gid) < 0 ||
	    setresuid(ids->uid, ids->uid, ids->uid) < 0)
		fail("pre-drop", strerror(errno));
}

static void *
noop(void *arg)
{
	return arg;
}

/* A thread started BEFORE the lock-down, like grpc's own: TSYNC must have
 * put the filter on it too. On request it tries socket(). */
static void *
old_thread(void *arg)
{
	char c;

	(void)arg;
	if (read(old_thread_pipe[0], &c, 1) == 1)
		(void)socket(AF_INET, SOCK_STREAM, 0);
	return NULL;
}

static int
relay_sqlite(void)
{
	char path[512];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1, i, n = -1;

	/* A new connection after the lock-down: opens journal.db, its -wal
	 * and -shm files, writes, checkpoints, closes (unlinks -wal/-shm). */
	snprintf(path, sizeof(path), "%s/journal.db", relay_dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
	        NULL) != SQLITE_OK)
		goto out;
	for (i = 0; i < 50; i++)
		if (sqlite3_exec(db, "INSERT INTO cursor(v) VALUES (randomblob(200))", NULL, NULL,
		        NULL) != SQLITE_OK)
			goto out;
	if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
	    SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM cursor", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto out;
	n = sqlite3_column_int(st, 0);
	rc = n >= 50 ? 0 : -1;
out:
	if (rc < 0 && db != NULL)
		fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	errno = 0;
	return rc;
}

static int
relay_connect(int port)
{
	struct sockaddr_in sa;
	int fd, rc = -1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, "hi", 2, MSG_NOSIGNAL) == 2)
		rc = 0;
	close(fd);
	return rc;
}

static int
resolve_localhost(void)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	rc = getaddrinfo("localhost", "5432", &hints, &res);
	if (res != NULL)
		freeaddrinfo(res);
	errno = 0;
	return rc == 0 ? 0 : -1;
}

/* Exporter: serve one HTTP-ish request on the inherited listener. */
static int
serve_one(void)
{
	struct pollfd p = { listen_fd, POLLIN, 0 };
	char buf[64];
	int fd, rc = -1;

	if (poll(&p, 1, 5000) != 1)
		return -1;
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	if (recv(fd, buf, sizeof(buf), 0) > 0 && send(fd, "metrics 1\n", 10, MSG_NOSIGNAL) == 10)
		rc = 0;
	close(fd);
	return rc;
}

/* Attempts op; fills out with "rc=N errno=E" if still alive. */
static void
run_op(const char *op, char *out, size_t len)
{
	long rc = 0;
	int e;

	errno = 0;
	if (strcmp(op, "ping") == 0) {
		rc = 0;
	} else if (strcmp(op, "open_ro") == 0) {
		rc = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	} else if (strcmp(op, "openat_proc") == 0) {
		rc = openat(AT_FDCWD, "/proc/self/status", O_RDONLY);
	} else if (strcmp(op, "open_wr") == 0) {
		rc = open("/sandbox-escape", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	} else if (strcmp(op, "open_rdwr") == 0) {
		rc = openat(AT_FDCWD, "/etc/passwd", O_RDWR);
	} else if (strcmp(op, "execve") == 0) {
		char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)"id", NULL };
		rc = execve("/bin/sh", argv, NULL);
	} else if (strcmp(op, "socket_inet") == 0) {
		rc = socket(AF_INET, SOCK_STREAM, 0);
	} else if (strcmp(op, "socket_unix") == 0) {
		rc = socket(AF_UNIX, SOCK_STREAM, 0);
	} else if (strcmp(op, "socket_netlink") == 0) {
		rc = socket(AF_NETLINK, SOCK_RAW, 0);
	} else if (strcmp(op, "socket_packet") == 0) {
		rc = socket(AF_PACKET, SOCK_RAW, 0);
	} else if (strcmp(op, "connect") == 0) {
		rc = syscall(SYS_connect, db_pair[0], NULL, 0);
	} else if (strcmp(op, "bind") == 0) {
		rc = syscall(SYS_bind, db_pair[0], NULL, 0);
	} else if (strcmp(op, "listen") == 0) {
		rc = syscall(SYS_listen, db_pair[0], 1);
	} else if (strcmp(op, "accept") == 0) {
		rc = syscall(SYS_accept4, db_pair[0], NULL, NULL, 0);
	} else if (strcmp(op, "fork") == 0) {
		rc = fork();
		if (rc == 0)
			_exit(0);
	} else if (strcmp(op, "vfork") == 0) {
		/* A violation on purpose: the test proves the filter stops vfork. */
		rc = vfork(); /* NOLINT(clang-analyzer-security.insecureAPI.vfork) */
		if (rc == 0)
			_exit(0);
	} else if (strcmp(op, "clone3") == 0) {
		rc = syscall(SYS_clone3, NULL, 0);
	} else if (strcmp(op, "mmap_exec") == 0) {
		void *p = mmap(
		    NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rc = p == MAP_FAILED ? -1 : 0;
	} else if (strcmp(op, "mprotect_exec") == 0) {
		void *p = mmap(
		    NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rc = p == MAP_FAILED ? -1 : mprotect(p, 4096, PROT_READ | PROT_EXEC);
	} else if (strcmp(op, "thread") == 0) {
		pthread_t t;
		e = pthread_create(&t, NULL, noop, NULL);
		if (e == 0)
			e = pthread_join(t, NULL);
		rc = e ? -1 : 0;
		errno = e;
	} else if (strcmp(op, "old_thread_socket") == 0) {
		if (write(old_thread_pipe[1], "x", 1) == 1)
			sleep(3); /* the kill arrives first */
		rc = 0;
	} else if (strcmp(op, "setuid0") == 0) {
		rc = setuid(0);
	} else if (strcmp(op, "setgid0") == 0) {
		rc = setgid(0);
	} else if (strcmp(op, "ptrace") == 0) {
		rc = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
	} else if (strcmp(op, "kill_init") == 0) {
		rc = kill(1, 0);
	} else if (strcmp(op, "tgkill_other") == 0) {
		rc = syscall(SYS_tgkill, (long)getppid(), (long)getppid(), 0L);
	} else if (strcmp(op, "setrlimit") == 0) {
		struct rlimit rl = { 8, 8 };
		rc = setrlimit(RLIMIT_NOFILE, &rl);
	} else if (strcmp(op, "getrlimit") == 0) {
		struct rlimit rl;
		rc = getrlimit(RLIMIT_NOFILE, &rl);
	} else if (strcmp(op, "ioctl_tiocsti") == 0) {
		char c = 'x';
		rc = ioctl(STDERR_FILENO, TIOCSTI, &c);
	} else if (strcmp(op, "isatty") == 0) {
		rc = isatty(STDERR_FILENO);
	} else if (strcmp(op, "chroot") == 0) {
		rc = chroot("/");
	} else if (strcmp(op, "unshare") == 0) {
		rc = syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */);
	} else if (strcmp(op, "sockio") == 0) {
		/* What libpq/hiredis do on their established connections. */
		struct pollfd pfd = { db_pair[1], POLLIN, 0 };
		char buf[8];
		rc = send(db_pair[0], "q", 1, MSG_NOSIGNAL) == 1 && poll(&pfd, 1, 1000) == 1 &&
		        recv(db_pair[1], buf, sizeof(buf), 0) == 1
		    ? 0
		    : -1;
	} else if (strcmp(op, "getrandom") == 0) {
		char buf[16];
		rc = getrandom(buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) ? 0 : -1;
	} else if (strcmp(op, "sqlite") == 0) {
		rc = relay_sqlite();
	} else if (strncmp(op, "connect:", 8) == 0) {
		char *end;
		long port;

		port = strtol(op + 8, &end, 10);
		if (end == op + 8 || *end != '\0' || port < 1 || port > 65535) {
			errno = EINVAL;
			rc = -1;
		} else {
			rc = relay_connect((int)port);
		}
	} else if (strcmp(op, "resolve") == 0) {
		rc = resolve_localhost();
	} else if (strcmp(op, "port") == 0) {
		rc = listen_port;
	} else if (strcmp(op, "serve1") == 0) {
		rc = serve_one();
	} else if (strcmp(op, "pdeathsig") == 0) {
		rc = prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	} else if (strcmp(op, "getpdeath") == 0) {
		int sig = -1;
		rc = prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
		if (rc == 0)
			rc = sig;
	} else if (strcmp(op, "dumpable") == 0) {
		rc = prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	} else if (strcmp(op, "write_stderr") == 0) {
		rc = write(STDERR_FILENO, "worker says hello\n", 18);
	} else {
		snprintf(out, len, "unknown op %s", op);
		return;
	}
	e = errno;
	snprintf(out, len, "rc=%ld errno=%d", rc < 0 ? -1L : rc, rc < 0 ? e : 0);
}

/* Relay/nonroot/drop modes: ops arrive as lines on the control socket. */
static void
serve_ctl(void)
{
	char op[128], out[256];
	ssize_t n;

	for (;;) {
		n = read(SB_CTL_FD, op, sizeof(op) - 1);
		if (n <= 0)
			_exit(0);
		op[n] = '\0';
		op[strcspn(op, "\n")] = '\0';
		run_op(op, out, sizeof(out));
		report(out);
	}
}

/* The worker's half of the hand-off (sup_proto.c, as paymentd-worker). */
static int
recv_fd(int s)
{
	char peer[SUP_PEER_MAX];
	int fd = -1, handed_on;

	if (sup_proto_recv_client(s, &fd, peer, &handed_on) != 1)
		return -1;
	return fd;
}

static char *
payload_string(grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader rd;
	grpc_slice s;
	char *out;
	size_t n;

	if (bb == NULL || !grpc_byte_buffer_reader_init(&rd, bb))
		return strdup("");
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	n = GRPC_SLICE_LENGTH(s);
	out = malloc(n + 1);
	if (out != NULL) {
		memcpy(out, GRPC_SLICE_START_PTR(s), n);
		out[n] = '\0';
	}
	grpc_slice_unref(s);
	return out;
}

static void
serve_grpc(grpc_server *srv, grpc_completion_queue *cq, void *method)
{
	for (;;) {
		grpc_call *call = NULL;
		gpr_timespec deadline;
		grpc_metadata_array md;
		grpc_byte_buffer *req = NULL, *resp;
		grpc_op ops[4];
		grpc_event ev;
		grpc_slice body;
		int cancelled = 0;
		char out[256], *op;

		grpc_metadata_array_init(&md);
		if (grpc_server_request_registered_call(srv, method, &call, &deadline, &md, &req,
		        cq, cq, (void *)1) != GRPC_CALL_OK)
			_exit(4);
		ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE || !ev.success)
			_exit(5);
		op = payload_string(req);
		run_op(op ? op : "", out, sizeof(out));
		body = grpc_slice_from_copied_string(out);
		resp = grpc_raw_byte_buffer_create(&body, 1);
		grpc_slice_unref(body);

		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[1].op = GRPC_OP_SEND_MESSAGE;
		ops[1].data.send_message.send_message = resp;
		ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
		ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
		ops[3].data.recv_close_on_server.cancelled = &cancelled;
		if (grpc_call_start_batch(call, ops, 4, (void *)2, NULL) != GRPC_CALL_OK)
			_exit(6);
		ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type != GRPC_OP_COMPLETE)
			_exit(7);
		grpc_byte_buffer_destroy(resp);
		grpc_byte_buffer_destroy(req);
		grpc_metadata_array_destroy(&md);
		grpc_call_unref(call);
		free(op);
	}
}

int
sbw_main(int argc, char **argv)
{
	const char *mode = argv[2], *arg = argc > 3 ? argv[3] : "";
	const char *sb_debug = getenv("SB_DEBUG");
	int debug = sb_debug != NULL && strcmp(sb_debug, "1") == 0;
	struct sandbox_ids ids;
	struct sandbox_opts o;
	grpc_completion_queue *cq = NULL;
	grpc_server *srv = NULL;
	grpc_server_credentials *creds;
	void *method = NULL;
	pthread_t t;
	char err[512];
	int fd, as_user;
	scmp_filter_ctx outer;

	signal(SIGPIPE, SIG_IGN);
	relay_dir = getenv("SB_RELAY_DIR");
	memset(&o, 0, sizeof(o));
	o.debug = debug;
	if (sandbox_resolve(sb_env.user, &ids, err, sizeof(err)) < 0)
		fail("sandbox_resolve", err);
	/* "as user": started unprivileged (nonroot mode; the relay under
	 * User=paymentd). The outer (unit) filter comes after that, as
	 * systemd applies it after switching users, before exec. */
	outer = build_outer_filter();
	as_user = strcmp(mode, "nonroot") == 0 || strcmp(arg, "user") == 0;
	if (as_user)
		pre_drop(&ids);
	load_outer_filter(outer);

	if (strcmp(mode, "worker") == 0) {
		grpc_init();
		cq = grpc_completion_queue_create_for_next(NULL);
		srv = grpc_server_create(NULL, NULL);
		method = grpc_server_register_method(
		    srv, SB_METHOD, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
		grpc_server_register_completion_queue(srv, cq, NULL);
		grpc_server_start(srv);
		if (method == NULL)
			fail("grpc", "register method");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, db_pair) < 0 ||
	    pipe2(old_thread_pipe, O_CLOEXEC) < 0 ||
	    pthread_create(&t, NULL, old_thread, NULL) != 0)
		fail("setup", strerror(errno));

	/* Die with the test process, as workers die with the supervisor:
	 * sandbox_drop() must keep this across the uid change. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail("setup", strerror(errno));
	if (strcmp(mode, "exporter") == 0) {
		/* The supervisor binds and listens before the fork: on a free
		 * port of the harness's block (another process may take it
		 * between the look and the bind: then the next one). */
		struct sockaddr_in sa;
		int tries, bound = 0;
		for (tries = 0; tries < 20 && !bound; tries++) {
			listen_port = tl_free_port();
			memset(&sa, 0, sizeof(sa));
			sa.sin_family = AF_INET;
			sa.sin_port = htons((uint16_t)listen_port);
			sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (listen_fd < 0)
				fail("listen", strerror(errno));
			bound = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
			if (!bound)
				close(listen_fd);
		}
		if (!bound || listen(listen_fd, 4) < 0)
			fail("listen", strerror(errno));
	}
	if (strcmp(mode, "relay") == 0) {
		/* The journal exists and is open before the lock-down, as in
		 * payment-relay (journal_open runs first). */
		char path[512];
		sqlite3 *db;
		if (relay_dir == NULL)
			fail("relay", "SB_RELAY_DIR unset");
		snprintf(path, sizeof(path), "%s/journal.db", relay_dir);
		if (sqlite3_open(path, &db) != SQLITE_OK ||
		    sqlite3_exec(db,
		        "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS cursor(v BLOB);", NULL,
		        NULL, NULL) != SQLITE_OK)
			fail("sqlite", sqlite3_errmsg(db));
		/* kept open, like the relay's journal handle */
	}

	if (strcmp(mode, "nonroot") == 0 && strcmp(arg, "other") == 0) {
		/* Asking an unprivileged process to become someone else. */
		ids.uid = 65534;
		ids.gid = 65534;
		snprintf(ids.user, sizeof(ids.user), "nobody");
	}

	o.profile = strcmp(mode, "relay") == 0 ? SANDBOX_RELAY
	    : strcmp(mode, "exporter") == 0    ? SANDBOX_EXPORTER
	                                       : SANDBOX_WORKER;
	o.chroot_dir = o.profile == SANDBOX_WORKER ? sb_env.chroot_dir : NULL;
	o.max_fds = o.profile == SANDBOX_WORKER ? 64 : 256;
	if (strcmp(mode, "drop") == 0) {
		if (sandbox_drop(&ids, &o, err, sizeof(err)) < 0)
			fail("sandbox_drop", err);
	} else if (sandbox_enter(&ids, &o, err, sizeof(err)) < 0) {
		fail("sandbox_enter", err);
	}
	report("R");

	if (strcmp(mode, "worker") != 0)
		serve_ctl();

	fd = recv_fd(SB_CTL_FD);
	if (fd < 0)
		_exit(8);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		_exit(9);
	creds = grpc_insecure_server_credentials_create();
	grpc_server_add_channel_from_fd(srv, fd, creds);
	grpc_server_credentials_release(creds);
	serve_grpc(srv, cq, method);
	return 0;
}
