/* SPDX-License-Identifier: MIT */
/*
 * sup_supervisor.c — the privileged supervisor process (see sup.h).
 *
 * Kept small on purpose: poll on a signalfd, the listening socket and the
 * workers' control channels; accept4(); pass the socket to a worker with
 * SCM_RIGHTS; reap children and act on the exit-code protocol of
 * sup_proto.h. It never reads client bytes and does not even link grpc:
 * workers are exec'd (sup_spawn.c), so a hostile client can reach only
 * sandboxed code.
 *
 * Workers: WORKER_POOL_SIZE are forked ahead of time (connected to Postgres
 * and sandboxed, waiting for a client); when none is idle a new one is
 * forked on demand, up to MAX_WORKERS. Beyond that, connections wait in the
 * kernel backlog. Workers that die before reporting READY (crash, seccomp
 * kill) throttle further forks with exponential backoff, like Postfix's
 * master, instead of fork-bombing. Workers that exit because they could not
 * connect to Postgres (SUP_EXIT_DB_DOWN: the primary is down, or a failover
 * is under way and no host is read-write yet) hold back new starts for
 * 100 ms doubling to 1 s, until a worker reports READY with its database:
 * a worker cannot reconnect by itself (its sandbox forbids new sockets), so
 * without this every client reconnect would fork a worker that fails at
 * once.
 *
 * The janitor (JANITOR=on) is forked like the exporter and restarted with
 * its own backoff when it dies (sup_proto.h, janitor section).
 */
#include "sup.h"
#include "sup_door.h"
#include "sup_kh.h"
#include "sup_pgcheck.h"
#include "sup_proto.h"
#include "sup_tls.h"
#include "common/log.h"
#include "common/util.h"
#include "front/front_h2guard.h"
#include "jan/jan.h"
#include "metrics/metrics.h"
#include "rl/rl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#define THROTTLE_MIN_MS 100
#define THROTTLE_MAX_MS 30000
#define DRAIN_EXTRA_MS  5000
/* Worker starts while Postgres refuses them (see above). */
#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 1000
/* Connections accepted while every worker is taken wait here (not in the
 * kernel backlog, where the supervisor could not see them) while the
 * longest-idle worker is reclaimed for them. */
#define WAITQ_MAX        64
#define RECLAIM_RETRY_MS 1000
#define CPU_CHECK_MS     1000

struct sup_worker {
	pid_t pid;
	int ctl;
	int ready;
	int db; /* ready with a Postgres connection */
	int assigned;
	int64_t started_ms;
	int64_t started_ns;
	/* Client fd sent but not yet acknowledged (SUP_MSG_BUSY); -1 if none.
	 * Kept open so a worker that dies with the fd in flight does not
	 * take the connection with it. */
	int pending_fd;
	int pending_hops;
	int protocol_violation; /* sent a byte sup_proto.h does not know */
	char pending_peer[SUP_PEER_MAX];
	/* Front door: the address its connection counts against ("" none). */
	char ip[SUP_DOOR_IP_MAX];
	struct sup_status *status; /* its status page (read only here) */
	int64_t reclaimed_ms;      /* SIGUSR1 sent at (0: not asked) */
	int stale;                 /* pool worker of an old TLS generation */
	int kh_handle;             /* key-holder channel (sup_kh), -1 none */
	/* CPU budget: kernel CPU ticks and completed RPCs at the last time
	 * an RPC completed. */
	unsigned long long cpu_mark;
	uint64_t done_mark;
	int cpu_killed;
	int reaped; /* waited for: its pid may be reused, never signal it */
};

struct sup_waiting {
	int fd;
	int64_t since_ms;
	char peer[SUP_PEER_MAX];
	char ip[SUP_DOOR_IP_MAX];
};

/* SUP_MAX_HANDOFF_HOPS: how often one connection may be handed on after
 * its worker died before acknowledging it; a worker acks before reading the
 * client's bytes, so the client cannot cause those deaths. */

static struct {
	const struct config *cfg;
	struct sup_worker *w;
	size_t nw;
	int listen_fd;
	int sig_fd;
	int draining;
	int64_t drain_deadline;
	int exit_status;
	int64_t throttle_until;
	int64_t throttle_ms;
	int64_t pool_refill_after;
	int64_t db_backoff_ms; /* 0: the last worker start found Postgres */
	int64_t db_retry_at;   /* no new worker before this (monotonic ms) */
	uint64_t watchdog_us;
	int64_t next_watchdog;
	int64_t next_status;
	unsigned long accepted, exits;
	struct metrics *metrics;
	int metrics_fd;
	pid_t exporter_pid;
	int64_t exporter_respawn_at;
	pid_t jan_pid;
	int64_t jan_started_ms;
	int64_t jan_respawn_at; /* 0: none scheduled */
	int64_t jan_backoff_ms; /* the next restart's delay */
	int jan_final;          /* its sandbox failed: not restarted */
	struct sup_waiting waitq[WAITQ_MAX];
	size_t nwait;
	int64_t next_cpu_check;
	long clk_tck;
} S;

static size_t
count_unassigned(void)
{
	size_t i, n = 0;

	for (i = 0; i < S.nw; i++)
		n += !S.w[i].assigned;
	return n;
}

/* A worker's status page: one shared page, zeroed (sup_proto.h). */
static int
status_page(struct sup_status **st)
{
	int fd = memfd_create("paymentd-status", MFD_CLOEXEC);
	void *p;

	if (fd < 0)
		return -1;
	if (ftruncate(fd, 4096) < 0 ||
	    (p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED) {
		close(fd);
		return -1;
	}
	*st = p;
	return fd;
}

/* Starts one worker (sup_spawn.c); returns its slot or -1. */
static int
spawn(void)
{
	struct sup_status *st = NULL;
	int sv[2], status_fd, kh_fd = -1, kh_handle = -1;
	pid_t pid;

	if (S.nw >= (size_t)S.cfg->max_workers)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("socketpair failed", LF_S("error", strerror(errno)));
		return -1;
	}
	status_fd = status_page(&st);
	if (status_fd < 0) {
		log_error("status page: memfd failed", LF_S("error", strerror(errno)));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (S.cfg->tls && (kh_fd = sup_kh_channel(&kh_handle)) < 0) {
		log_error("no key-holder channel for a new worker");
		close(sv[0]);
		close(sv[1]);
		close(status_fd);
		munmap(st, 4096);
		return -1;
	}
	pid = sup_spawn_worker(sv[1], metrics_shm_fd(), status_fd, sup_tls_fd(), kh_fd);
	close(status_fd);
	if (kh_fd >= 0)
		close(kh_fd);
	if (pid < 0) {
		log_error("fork failed", LF_S("error", strerror(errno)));
		close(sv[0]);
		close(sv[1]);
		munmap(st, 4096);
		if (kh_handle >= 0)
			sup_kh_release(kh_handle);
		return -1;
	}
	close(sv[1]);
	memset(&S.w[S.nw], 0, sizeof(S.w[S.nw]));
	S.w[S.nw].status = st;
	S.w[S.nw].kh_handle = kh_handle;
	S.w[S.nw].pid = pid;
	S.w[S.nw].ctl = sv[0];
	S.w[S.nw].ready = 0;
	S.w[S.nw].db = 0;
	S.w[S.nw].assigned = 0;
	S.w[S.nw].started_ms = util_now_ms();
	S.w[S.nw].started_ns = util_now_ns();
	S.w[S.nw].pending_fd = -1;
	S.w[S.nw].pending_hops = 0;
	S.w[S.nw].protocol_violation = 0;
	return (int)S.nw++;
}

static int
throttled(void)
{
	return S.throttle_until > util_now_ms();
}

/* New workers would not find Postgres yet (a worker just exited DB_DOWN). */
static int
db_backoff(void)
{
	return S.db_retry_at > util_now_ms();
}

static void
fill_pool(void)
{
	if (S.pool_refill_after > util_now_ms())
		return;
	while (!S.draining && !throttled() && !db_backoff() &&
	    count_unassigned() < (size_t)S.cfg->worker_pool_size &&
	    S.nw < (size_t)S.cfg->max_workers)
		if (spawn() < 0)
			break;
}

/*
 * Picks an idle worker: one that is ready with Postgres first, else one
 * still starting, else a fresh one (which retries Postgres), and only as a
 * last resort one that has no database (it answers NOT_SERVING).
 */
static int
pick_worker(void)
{
	size_t i;
	int starting = -1, nodb = -1, slot;

	for (i = 0; i < S.nw; i++) {
		if (S.w[i].assigned)
			continue;
		if (S.w[i].ready && S.w[i].db)
			return (int)i;
		if (!S.w[i].ready && starting < 0)
			starting = (int)i;
		if (S.w[i].ready && !S.w[i].db && nodb < 0)
			nodb = (int)i;
	}
	if (starting >= 0)
		return starting;
	if (!throttled() && !db_backoff() && (slot = spawn()) >= 0)
		return slot;
	return nodb;
}

/*
 * Hands a client connection (fd owned by the caller, always consumed) to a
 * worker. The supervisor keeps its copy until the worker acknowledges it;
 * `hops` counts earlier workers that died before doing so. ip is the
 * address the connection counts against (sup_door), released when the
 * connection ends, whichever way.
 */
static void
dispatch(int fd, const char *peer, const char *ip, int hops)
{
	int slot;

	if (S.draining || hops > SUP_MAX_HANDOFF_HOPS) {
		log_warn("connection dropped before any worker took it", LF_I("handoffs", hops),
		    LF_B("draining", S.draining));
		metrics_conn_closed(S.metrics, METRICS_CLOSE_NO_WORKER);
		sup_door_release(ip);
		close(fd);
		return;
	}
	for (;;) {
		slot = pick_worker();
		if (slot < 0 && db_backoff() && S.nwait < WAITQ_MAX) {
			/* Handed on from a worker that left for want of
			 * Postgres: wait for the next start, not a reset. */
			S.waitq[S.nwait].fd = fd;
			S.waitq[S.nwait].since_ms = util_now_ms();
			snprintf(S.waitq[S.nwait].peer, sizeof(S.waitq[S.nwait].peer), "%s", peer);
			snprintf(S.waitq[S.nwait].ip, sizeof(S.waitq[S.nwait].ip), "%s", ip);
			S.nwait++;
			return;
		}
		if (slot < 0) {
			/* Throttled between can_accept and here: nothing
			 * can serve it now. Close rather than hold it. */
			log_warn("no worker available; connection refused");
			metrics_conn_closed(S.metrics, METRICS_CLOSE_NO_WORKER);
			sup_door_release(ip);
			close(fd);
			return;
		}
		if (sup_proto_send_client(S.w[slot].ctl, fd, peer, hops > 0) == 0) {
			struct sup_worker *w = &S.w[slot];

			w->assigned = 1;
			w->pending_fd = fd;
			w->pending_hops = hops;
			w->reclaimed_ms = 0;
			w->cpu_mark = 0;
			snprintf(w->pending_peer, sizeof(w->pending_peer), "%s", peer);
			snprintf(w->ip, sizeof(w->ip), "%s", ip);
			return;
		}
		/* That worker is gone (its SIGCHLD is pending): mark it
		 * so it is not picked again, and try the next one. */
		S.w[slot].assigned = 1;
	}
}

static int
can_accept(void)
{
	if (S.draining || S.listen_fd < 0)
		return 0;
	if (count_unassigned() > 0)
		return 1;
	return S.nw < (size_t)S.cfg->max_workers && !throttled() && !db_backoff();
}

/* Listen while a worker is free, or while there is room to hold a new
 * connection until one is reclaimed for it. */
static int
want_accept(void)
{
	return can_accept() ||
	    (!S.draining && S.listen_fd >= 0 && S.nwait < WAITQ_MAX && !throttled() &&
	        !db_backoff());
}

static int64_t
load64(const int64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/*
 * Stress mode (Postfix's master does the same when its process limit is
 * reached): every worker is taken and a client waits, so the connection
 * that has been idle longest (no RPC in flight, not already closing) is
 * asked to go (SIGUSR1: GOAWAY, or back to the pool if its client never
 * sent a byte). Returns 1 if one was asked.
 */
static int
reclaim_one(void)
{
	int64_t now = util_now_ms(), best_last = INT64_MAX;
	struct sup_worker *best = NULL;
	size_t i;

	for (i = 0; i < S.nw; i++) {
		struct sup_worker *w = &S.w[i];
		int64_t last;
		uint32_t phase;

		if (!w->assigned || w->pending_fd >= 0 || w->status == NULL || w->stale ||
		    w->cpu_killed)
			continue;
		if (w->reclaimed_ms != 0 && now - w->reclaimed_ms < RECLAIM_RETRY_MS)
			continue;
		phase = __atomic_load_n(&w->status->phase, __ATOMIC_RELAXED);
		if (phase == SUP_PHASE_CLOSING || phase == SUP_PHASE_POOL ||
		    __atomic_load_n(&w->status->inflight, __ATOMIC_RELAXED) > 0)
			continue;
		last = load64(&w->status->last_rpc_ms);
		if (load64(&w->status->conn_start_ms) > last)
			last = load64(&w->status->conn_start_ms);
		if (last < best_last) {
			best_last = last;
			best = w;
		}
	}
	if (best == NULL)
		return 0;
	best->reclaimed_ms = now;
	log_info("every worker is taken; reclaiming the longest-idle connection",
	    LF_I("worker_pid", best->pid), LF_I("idle_ms", now - best_last),
	    LF_I("waiting", (int64_t)S.nwait));
	kill(best->pid, SIGUSR1);
	return 1;
}

static size_t
count_reclaiming(void)
{
	int64_t now = util_now_ms();
	size_t i, n = 0;

	for (i = 0; i < S.nw; i++)
		n += S.w[i].assigned && S.w[i].reclaimed_ms != 0 &&
		    now - S.w[i].reclaimed_ms < RECLAIM_RETRY_MS;
	return n;
}

/* Serves waiting connections as workers free up; the ones that waited a
 * whole handshake timeout are closed (a client would have given up). */
static void
serve_waiting(void)
{
	int64_t now = util_now_ms();
	size_t i, k = 0;

	for (i = 0; i < S.nwait; i++) {
		struct sup_waiting *q = &S.waitq[i];

		if (now - q->since_ms >= (int64_t)S.cfg->handshake_timeout_s * 1000 || S.draining) {
			metrics_conn_closed(S.metrics, METRICS_CLOSE_NO_WORKER);
			sup_door_release(q->ip);
			close(q->fd);
			continue;
		}
		S.waitq[k++] = *q;
	}
	S.nwait = k;
	while (S.nwait > 0 && can_accept()) {
		struct sup_waiting q = S.waitq[0];

		memmove(&S.waitq[0], &S.waitq[1], (S.nwait - 1) * sizeof(S.waitq[0]));
		S.nwait--;
		dispatch(q.fd, q.peer, q.ip, 0);
	}
	/* (No reclaiming while worker starts are held back: the freed slot
	 * could not be refilled.) */
	while (!db_backoff() && count_reclaiming() < S.nwait && reclaim_one())
		;
}

static void
do_accept(void)
{
	while (want_accept()) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(S.listen_fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
		char peer[SUP_PEER_MAX], ip[SUP_DOOR_IP_MAX];
		enum sup_door_verdict v;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_error("accept failed", LF_S("error", strerror(errno)));
			return;
		}
		S.accepted++;
		metrics_connection_accepted(S.metrics);
		if (rl_peer_from_addr(&ss, peer, sizeof(peer)) < 0)
			peer[0] = '\0';
		sup_door_ip(peer, ip);
		v = sup_door_admit(ip, util_now_ms());
		if (v != SUP_DOOR_OK) {
			/* Closed unread: the cheapest answer to a flood. */
			enum metrics_close why = v == SUP_DOOR_RATE ? METRICS_CLOSE_ACCEPT_RATE
			    : v == SUP_DOOR_PENALTY                 ? METRICS_CLOSE_ABUSE_PENALTY
			                                            : METRICS_CLOSE_PER_IP_LIMIT;

			metrics_conn_closed(S.metrics, why);
			log_debug("connection refused at the front door", LF_S("peer", peer),
			    LF_S("reason", metrics_close_name(why)));
			/* A reset, not a FIN: no TIME_WAIT or FIN exchange per
			 * refused connection of a flood. */
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 },
			    sizeof(struct linger));
			close(fd);
			continue;
		}
		if (can_accept() && S.nwait == 0) {
			dispatch(fd, peer, ip, 0);
			continue;
		}
		S.waitq[S.nwait].fd = fd;
		S.waitq[S.nwait].since_ms = util_now_ms();
		snprintf(S.waitq[S.nwait].peer, sizeof(S.waitq[S.nwait].peer), "%s", peer);
		snprintf(S.waitq[S.nwait].ip, sizeof(S.waitq[S.nwait].ip), "%s", ip);
		S.nwait++;
		serve_waiting();
	}
}

/* utime + stime of a process, in clock ticks, from /proc/PID/stat (the
 * kernel's account, not the worker's). 0 if it cannot be read. */
static unsigned long long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may contain spaces */
	if (p == NULL)
		return 0;
	/* After ") ": field 3 (state) ... 14 utime, 15 stime. */
	for (field = 2; field < 14 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL)
		return 0;
	{
		char *end;

		errno = 0;
		ut = strtoull(p, &end, 10);
		st = strtoull(end, &end, 10);
		if (errno != 0 || *end != ' ')
			return 0;
	}
	return ut + st;
}

/* A worker that burns WORKER_CPU_BUDGET_SECONDS of CPU while completing no
 * RPC is spinning on something a client sent: kill it (sup_proto.h). */
static void
cpu_check(void)
{
	int64_t now = util_now_ms();
	unsigned long long budget;
	size_t i;

	if (S.cfg->worker_cpu_budget_s <= 0 || now < S.next_cpu_check)
		return;
	S.next_cpu_check = now + CPU_CHECK_MS;
	budget = (unsigned long long)S.cfg->worker_cpu_budget_s * (unsigned long long)S.clk_tck;
	for (i = 0; i < S.nw; i++) {
		struct sup_worker *w = &S.w[i];
		unsigned long long t;
		uint64_t done;

		if (!w->assigned || w->status == NULL || w->cpu_killed)
			continue;
		t = cpu_ticks(w->pid);
		done = __atomic_load_n(&w->status->rpcs_done, __ATOMIC_RELAXED);
		if (w->cpu_mark == 0 || done != w->done_mark || t < w->cpu_mark) {
			w->cpu_mark = t;
			w->done_mark = done;
			continue;
		}
		if (t - w->cpu_mark > budget) {
			log_warn(
			    "worker burnt its CPU budget without completing an RPC; killing it",
			    LF_I("worker_pid", w->pid),
			    LF_D("cpu_seconds", (double)(t - w->cpu_mark) / (double)S.clk_tck));
			w->cpu_killed = 1;
			kill(w->pid, SIGKILL);
		}
	}
}

static void
exporter_spawn(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("fork metrics exporter failed", LF_S("error", strerror(errno)));
		S.exporter_respawn_at = util_now_ms() + 1000;
		return;
	}
	if (pid == 0)
		metrics_exporter_main(S.cfg, S.metrics, S.metrics_fd); /* closes the rest */
	S.exporter_pid = pid;
	S.exporter_respawn_at = 0;
}

static void
jan_spawn(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_error("fork janitor failed", LF_S("error", strerror(errno)));
		S.jan_respawn_at = util_now_ms() + SUP_JAN_RESTART_MIN_MS;
		return;
	}
	if (pid == 0)
		jan_main(S.cfg, S.metrics); /* closes the rest */
	S.jan_pid = pid;
	S.jan_started_ms = util_now_ms();
	S.jan_respawn_at = 0;
}

/* The janitor is gone (sup_proto.h: its exit codes and the backoff). */
static void
jan_reaped(pid_t pid, int status)
{
	int64_t now = util_now_ms();
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	S.jan_pid = 0;
	if (code == SUP_JAN_EXIT_SANDBOX) {
		S.jan_final = 1;
		log_kv(LOG_CRIT,
		    "janitor could not enter its sandbox; not restarting it (holds expire only "
		    "when a capture or void meets them)",
		    (const struct log_field[]){ LF_I("old_pid", pid), { 0 } });
		return;
	}
	if (S.draining)
		return;
	if (now - S.jan_started_ms >= SUP_JAN_HEALTHY_MS || S.jan_backoff_ms == 0)
		S.jan_backoff_ms = SUP_JAN_RESTART_MIN_MS;
	S.jan_respawn_at = now + S.jan_backoff_ms;
	if (WIFSIGNALED(status))
		log_kv(WTERMSIG(status) == SIGSYS ? LOG_ERROR : LOG_WARNING,
		    WTERMSIG(status) == SIGSYS ? "janitor killed by seccomp; restarting it"
		                               : "janitor killed; restarting it",
		    (const struct log_field[]){ LF_I("old_pid", pid),
		        LF_I("signal", WTERMSIG(status)), LF_I("restart_in_ms", S.jan_backoff_ms),
		        { 0 } });
	else
		log_warn("janitor exited; restarting it", LF_I("old_pid", pid),
		    LF_I("status", code), LF_I("restart_in_ms", S.jan_backoff_ms));
	S.jan_backoff_ms *= 2;
	if (S.jan_backoff_ms > SUP_JAN_RESTART_MAX_MS)
		S.jan_backoff_ms = SUP_JAN_RESTART_MAX_MS;
}

/* Shutdown: SIGTERM was sent at the drain; a batch is one transaction, so
 * one that overruns SUP_JAN_STOP_MS is killed without losing anything. */
static void
jan_stop(void)
{
	int64_t until = util_now_ms() + SUP_JAN_STOP_MS;

	if (S.jan_pid <= 0)
		return;
	kill(S.jan_pid, SIGTERM);
	while (util_now_ms() < until) {
		if (waitpid(S.jan_pid, NULL, WNOHANG) == S.jan_pid) {
			S.jan_pid = 0;
			return;
		}
		poll(NULL, 0, 20);
	}
	log_warn("janitor did not stop in time; killing it", LF_I("janitor_pid", S.jan_pid));
	kill(S.jan_pid, SIGKILL);
	waitpid(S.jan_pid, NULL, 0);
	S.jan_pid = 0;
}

static const char *
exit_reason(int status, const struct sup_worker *w, int *abnormal)
{
	int killed_for_protocol = w->protocol_violation;

	*abnormal = 0;
	if (w->cpu_killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		*abnormal = 1; /* logged as an error: a client made it spin */
		return "cpu_budget";
	}
	if (WIFEXITED(status)) {
		switch (WEXITSTATUS(status)) {
		case SUP_EXIT_OK: return w->reclaimed_ms != 0 ? "reclaimed" : "ok";
		case SUP_EXIT_DB_LOST: return "db_lost";
		case SUP_EXIT_DB_DOWN: return "db_down";
		case SUP_EXIT_RL_DOWN: return "rl_down";
		case SUP_EXIT_IPC: return "ipc";
		case SUP_EXIT_SANDBOX: *abnormal = 1; return "sandbox";
		case SUP_EXIT_SOFTWARE: *abnormal = 1; return "software";
		default: *abnormal = 1; return "unknown_exit";
		}
	}
	*abnormal = 1;
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		return "seccomp";
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		return killed_for_protocol ? "protocol" : "killed";
	return "crash";
}

static void
begin_drain(int status)
{
	size_t i;

	if (S.draining)
		return;
	S.draining = 1;
	S.exit_status = status;
	S.drain_deadline = util_now_ms() + (int64_t)S.cfg->shutdown_grace_s * 1000 + DRAIN_EXTRA_MS;
	sd_notify(0, "STOPPING=1\nSTATUS=draining");
	log_info("draining: no new connections; workers finish in-flight RPCs",
	    LF_I("workers", (int64_t)S.nw));
	if (S.listen_fd >= 0) {
		close(S.listen_fd);
		S.listen_fd = -1;
	}
	for (i = 0; i < S.nw; i++)
		kill(S.w[i].pid, SIGTERM);
	if (S.jan_pid > 0)
		kill(S.jan_pid, SIGTERM);
}

static void read_ctl(struct sup_worker *w);

static void
reap(void)
{
	int status, abnormal;
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct sup_worker *w = NULL;
		const char *reason;

		if (S.exporter_pid > 0 && pid == S.exporter_pid) {
			S.exporter_pid = 0;
			if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXPORTER_EXIT_SANDBOX) {
				log_error(
				    "metrics exporter could not drop privileges; not restarting it");
				continue;
			}
			log_warn("metrics exporter died; restarting in 1 s", LF_I("old_pid", pid));
			S.exporter_respawn_at = util_now_ms() + 1000;
			continue;
		}
		if (S.jan_pid > 0 && pid == S.jan_pid) {
			jan_reaped(pid, status);
			continue;
		}
		if (sup_logfwd_reaped(pid, status))
			continue;
		switch (sup_kh_reaped(pid, status)) {
		case 0: break;
		case 2: /* sup_kh logged why: its sandbox failed */ begin_drain(1); continue;
		default: continue;
		}

		for (i = 0; i < S.nw; i++)
			if (S.w[i].pid == pid) {
				w = &S.w[i];
				break;
			}
		if (w == NULL)
			continue;
		S.exits++;
		reason = exit_reason(status, w, &abnormal);
		metrics_worker_exit(S.metrics, reason);
		if (abnormal) {
			log_error("worker died", LF_I("worker_pid", pid), LF_S("reason", reason),
			    LF_I("status",
			        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)),
			    LF_B("had_client", w->assigned), LF_B("was_ready", w->ready));
		} else {
			log_debug("worker exited", LF_I("worker_pid", pid), LF_S("reason", reason));
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_SANDBOX) {
			log_kv(
			    LOG_CRIT, "a worker could not enter its sandbox; failing closed", NULL);
			begin_drain(1);
		}
		/* Pool workers that lost or never had Postgres: refill the
		 * pool at a calm pace; connections are still served. */
		if (!w->assigned && WIFEXITED(status) &&
		    (WEXITSTATUS(status) == SUP_EXIT_DB_LOST ||
		        WEXITSTATUS(status) == SUP_EXIT_DB_DOWN ||
		        WEXITSTATUS(status) == SUP_EXIT_RL_DOWN))
			S.pool_refill_after = util_now_ms() + 1000;
		/* Any worker that found no Postgres: back off new starts (the
		 * exits of workers started before the delay do not extend it). */
		if (WIFEXITED(status) && WEXITSTATUS(status) == SUP_EXIT_DB_DOWN && !db_backoff()) {
			S.db_backoff_ms = S.db_backoff_ms ? S.db_backoff_ms * 2 : DB_BACKOFF_MIN_MS;
			if (S.db_backoff_ms > DB_BACKOFF_MAX_MS)
				S.db_backoff_ms = DB_BACKOFF_MAX_MS;
			S.db_retry_at = util_now_ms() + S.db_backoff_ms;
			log_warn("workers find no Postgres; delaying worker starts",
			    LF_I("delay_ms", S.db_backoff_ms));
		}
		/* Crashes before READY slow down all forking instead of
		 * spinning (a broken build or sandbox would fork-bomb). */
		if (abnormal && !w->ready) {
			S.throttle_ms = S.throttle_ms ? S.throttle_ms * 2 : THROTTLE_MIN_MS;
			if (S.throttle_ms > THROTTLE_MAX_MS)
				S.throttle_ms = THROTTLE_MAX_MS;
			S.throttle_until = util_now_ms() + S.throttle_ms;
			log_warn("throttling worker starts", LF_I("delay_ms", S.throttle_ms));
		}
		/* What it said before it died still counts: a SUP_MSG_BUSY not
		 * read yet means it had taken the connection (bytes of it are
		 * gone with it, so it must not be handed on), a SUP_MSG_ABUSE
		 * still penalizes the address. */
		w->reaped = 1;
		read_ctl(w);
		close(w->ctl);
		if (w->status != NULL)
			munmap(w->status, 4096);
		if (w->kh_handle >= 0)
			sup_kh_release(w->kh_handle);
		if (w->pending_fd >= 0) {
			/* Died with the connection in flight, before reading a
			 * byte of it (e.g. it was leaving the pool because
			 * Redis or Postgres went away): give it to another. */
			int fd = w->pending_fd, hops = w->pending_hops + 1;
			char peer[sizeof(w->pending_peer)], ip[sizeof(w->ip)];

			memcpy(peer, w->pending_peer, sizeof(peer));
			memcpy(ip, w->ip, sizeof(ip));
			*w = S.w[--S.nw];
			log_info("worker died before taking its connection; handing it on",
			    LF_I("worker_pid", pid), LF_S("reason", reason),
			    LF_I("handoffs", hops));
			dispatch(fd, peer, ip, hops);
			continue;
		}
		sup_door_release(w->ip);
		*w = S.w[--S.nw];
	}
}

static void
read_ctl(struct sup_worker *w)
{
	char buf[16];
	ssize_t n, i;

again:
	n = recv(w->ctl, buf, sizeof(buf), MSG_DONTWAIT);
	for (i = 0; i < n; i++) {
		if (!sup_proto_worker_byte_ok(buf[i])) {
			/* Only a compromised or broken worker does this. */
			log_error("protocol violation on a worker channel; killing the worker",
			    LF_I("worker_pid", w->pid), LF_I("byte", (unsigned char)buf[i]));
			w->protocol_violation = 1;
			if (!w->reaped)
				kill(w->pid, SIGKILL);
			return;
		}
		if ((buf[i] == SUP_MSG_READY || buf[i] == SUP_MSG_NODB) && !w->ready) {
			int64_t us = (util_now_ns() - w->started_ns) / 1000;

			w->ready = 1;
			w->db = buf[i] == SUP_MSG_READY;
			S.throttle_ms = 0; /* a healthy start resets backoff */
			if (w->db && S.db_backoff_ms != 0) {
				log_info("a new worker found Postgres; worker starts resume");
				S.db_backoff_ms = 0;
				S.db_retry_at = 0;
			}
			metrics_worker_started(S.metrics, us);
			log_debug("worker ready", LF_I("worker_pid", w->pid), LF_I("start_us", us),
			    LF_B("db", w->db));
		} else if (buf[i] == SUP_MSG_BUSY && w->pending_fd >= 0) {
			close(w->pending_fd); /* the worker has its own copy */
			w->pending_fd = -1;
		} else if (buf[i] == SUP_MSG_ABUSE && w->assigned && w->ip[0] != '\0') {
			log_warn("frame guard cut a client off; refusing its address for a while",
			    LF_I("worker_pid", w->pid), LF_S("address", w->ip),
			    LF_I("seconds", S.cfg->abuse_penalty_s));
			sup_door_penalize(
			    w->ip, util_now_ms(), (int64_t)S.cfg->abuse_penalty_s * 1000);
		} else if (buf[i] == SUP_MSG_POOLED && w->assigned && w->pending_fd < 0) {
			/* Its client left (or was reclaimed) without a byte:
			 * the worker saw no client input and is as fresh as
			 * a pool worker. */
			sup_door_release(w->ip);
			w->ip[0] = '\0';
			w->reclaimed_ms = 0;
			w->cpu_mark = 0;
			if (w->stale && !w->reaped)
				kill(w->pid, SIGTERM); /* old TLS generation */
			else
				w->assigned = 0;
		}
	}
	/* A dead worker's channel is read to its end (the poll loop reads
	 * one buffer per wake-up, as before). */
	if (w->reaped && n == (ssize_t)sizeof(buf))
		goto again;
}

/*
 * SIGHUP: re-read the certificate chain, the client CA bundle and the key.
 * Workers started from now on use the new pair; pool workers of the old
 * one are retired (they built their TLS context already); connections in
 * flight keep the session they negotiated. A broken new file keeps the
 * old pair (logged), it never leaves the service without one.
 */
static void
reload_tls(void)
{
	char err[512];
	size_t i;

	if (!S.cfg->tls) {
		log_info("SIGHUP: TLS is off; nothing to reload");
		return;
	}
	if (sup_kh_reload(S.cfg, err, sizeof(err)) < 0) {
		log_error("SIGHUP: key not reloaded; keeping the current pair", LF_S("error", err));
		return;
	}
	if (sup_tls_load(S.cfg, err, sizeof(err)) < 0) {
		log_error("SIGHUP: certificate not reloaded; keeping the current chain",
		    LF_S("error", err));
		return;
	}
	for (i = 0; i < S.nw; i++)
		if (!S.w[i].assigned) {
			S.w[i].assigned = 1; /* never handed a client again */
			S.w[i].stale = 1;
			kill(S.w[i].pid, SIGTERM);
		} else {
			S.w[i].stale = 1; /* if it comes back to the pool */
		}
	log_info("SIGHUP: TLS certificate and key reloaded; new connections use them",
	    LF_I("generation", (int64_t)sup_tls_generation()));
}

static void
on_signal(void)
{
	struct signalfd_siginfo si;

	while (read(S.sig_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD: reap(); break;
		case SIGTERM:
		case SIGINT: begin_drain(0); break;
		case SIGHUP: reload_tls(); break;
		default: break;
		}
	}
}

static void
notify_periodic(void)
{
	int64_t now = util_now_ms();

	if (S.watchdog_us && now >= S.next_watchdog) {
		sd_notify(0, "WATCHDOG=1");
		S.next_watchdog = now + (int64_t)(S.watchdog_us / 2000);
	}
	if (now >= S.next_status) {
		sd_notifyf(0, "STATUS=%zu workers (%zu idle), %lu connections accepted", S.nw,
		    count_unassigned(), S.accepted);
		S.next_status = now + 1000;
	}
}

void
sup_run(const struct config *cfg)
{
	struct pollfd *pfd;
	sigset_t set;
	char err[512];
	int activated;
	size_t i;

	memset(&S, 0, sizeof(S));
	S.listen_fd = S.sig_fd = -1;
	S.metrics_fd = -1;
	S.cfg = cfg;
	S.w = xcalloc((size_t)cfg->max_workers, sizeof(*S.w));
	pfd = xcalloc((size_t)cfg->max_workers + 2, sizeof(*pfd));

	signal(SIGPIPE, SIG_IGN);
	sup_logfwd_start(cfg);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	S.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (S.sig_fd < 0)
		fatal("signalfd: %s", strerror(errno));

	/* Configuration errors first, before anything is forked or bound:
	 * a refused start leaves nothing behind. */
	if (rl_config_check(cfg, err, sizeof(err)) < 0 || sup_tls_check(cfg, err, sizeof(err)) < 0)
		fatal("%s", err);
	{
		int checked, avail;

		if (sup_pgcheck(cfg, &checked, &avail, err, sizeof(err)) < 0)
			fatal("%s", err);
		if (!checked)
			log_warn("Postgres unreachable at start; MAX_WORKERS not checked against "
			         "max_connections");
	}
	/* Before any fork: every worker and the exporter share it. */
	S.metrics = metrics_create();
	if (S.metrics == NULL)
		fatal("metrics: mmap: %s", strerror(errno));

	if (sup_spawn_init(cfg, err, sizeof(err)) < 0)
		fatal("%s", err);
	sup_door_init(
	    cfg->max_connections_per_ip, cfg->connection_rate_per_ip, cfg->connection_burst_per_ip);
	S.clk_tck = sysconf(_SC_CLK_TCK);
	if (S.clk_tck <= 0)
		S.clk_tck = 100;
	if (cfg->tls) {
		if (sup_tls_load(cfg, err, sizeof(err)) < 0)
			fatal("%s", err);
		if (sup_kh_start(cfg, err, sizeof(err)) < 0)
			fatal("key-holder: %s", err);
	}

	S.listen_fd = sup_listen_open(cfg->grpc_host, cfg->grpc_port, &activated, err, sizeof(err));
	if (S.listen_fd < 0)
		fatal("cannot listen: %s", err);
	if (util_set_nonblock(S.listen_fd, 1) < 0)
		fatal("listen socket: %s", strerror(errno));
	if (!cfg->tls) {
		int lo = sup_listen_is_loopback(S.listen_fd);

		if (!lo && !cfg->allow_insecure)
			fatal("TLS=off on a non-loopback address (%s): payments would cross the "
			      "network in cleartext; configure TLS_CERT_FILE/TLS_KEY_FILE, or set "
			      "ALLOW_INSECURE=on to accept that",
			    cfg->grpc_host);
		log_warn(lo ? "TLS=off: the gRPC port speaks CLEARTEXT HTTP/2 (loopback only)"
		            : "TLS=off with ALLOW_INSECURE=on: the gRPC port speaks CLEARTEXT "
		              "HTTP/2 on a network address; anyone on the path can read and "
		              "alter payments",
		    LF_S("host", cfg->grpc_host), LF_I("port", cfg->grpc_port));
	}
	/* cfg_load refused AUTH_MODE=none with TLS on; TLS=off itself was
	 * refused above off loopback without ALLOW_INSECURE. */
	if (strcmp(cfg->auth_mode, "none") == 0)
		log_warn("AUTH_MODE=none: callers are NOT authenticated; every caller acts as the "
		         "admin client legacy and may move any account's money",
		    LF_S("host", cfg->grpc_host), LF_I("port", cfg->grpc_port));
	else if (!cfg->tls)
		log_warn("TLS=off: API tokens cross the connection in cleartext",
		    LF_S("auth_mode", cfg->auth_mode));
	if (cfg->metrics_port > 0) {
		const char *labels[FRONT_H2G_NVERDICTS];
		int k;

		/* The exporter renders the workers' guard counters by name. */
		for (k = 0; k < FRONT_H2G_NVERDICTS; k++)
			labels[k] = front_h2g_reason((enum front_h2g_verdict)k);
		metrics_guard_labels(labels, FRONT_H2G_NVERDICTS);
		S.metrics_fd = metrics_listen(
		    cfg->metrics_host[0] ? cfg->metrics_host : cfg->grpc_host, cfg->metrics_port,
		    err, sizeof(err));
		if (S.metrics_fd < 0)
			fatal("cannot listen for metrics: %s", err);
		exporter_spawn();
	}
	if (cfg->janitor)
		jan_spawn();
	else
		log_info("JANITOR=off: holds are not expired and expired keys are not deleted "
		         "in the background");
	if (sd_watchdog_enabled(0, &S.watchdog_us) <= 0)
		S.watchdog_us = 0;

	fill_pool();
	log_info("paymentd listening", LF_S("host", cfg->grpc_host), LF_I("port", cfg->grpc_port),
	    LF_B("tls", cfg->tls), LF_S("client_auth", cfg->tls ? cfg->tls_client_auth : "none"),
	    LF_B("socket_activated", activated), LF_I("max_workers", cfg->max_workers),
	    LF_I("pool_size", cfg->worker_pool_size), LF_B("sandbox", cfg->sandbox),
	    LF_S("worker", sup_spawn_path()));
	sd_notify(0, "READY=1");

	for (;;) {
		nfds_t n = 0;
		int timeout = 1000;

		if (S.draining && (S.nw == 0 || util_now_ms() >= S.drain_deadline)) {
			for (i = 0; i < S.nw; i++) {
				log_warn("worker did not drain in time; killing",
				    LF_I("worker_pid", S.w[i].pid));
				kill(S.w[i].pid, SIGKILL);
			}
			if (S.exporter_pid > 0) {
				kill(S.exporter_pid, SIGTERM);
				waitpid(S.exporter_pid, NULL, 0);
				S.exporter_pid = 0;
			}
			jan_stop();
			while (S.nw > 0 && waitpid(-1, NULL, 0) > 0)
				S.nw--;
			sup_kh_stop();
			log_info("paymentd stopped", LF_I("connections", (int64_t)S.accepted));
			exit(S.exit_status);
		}
		fill_pool();
		sup_kh_tick();
		serve_waiting();
		cpu_check();
		if (!S.draining && S.metrics_fd >= 0 && S.exporter_pid == 0 &&
		    S.exporter_respawn_at && util_now_ms() >= S.exporter_respawn_at)
			exporter_spawn();
		if (!S.draining && S.jan_pid == 0 && !S.jan_final && S.jan_respawn_at &&
		    util_now_ms() >= S.jan_respawn_at)
			jan_spawn();
		metrics_set_workers(
		    S.metrics, (int)(S.nw - count_unassigned()), (int)count_unassigned());
		pfd[n].fd = S.sig_fd;
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
		if (want_accept()) {
			pfd[n].fd = S.listen_fd;
			pfd[n].events = POLLIN;
			pfd[n++].revents = 0;
		}
		for (i = 0; i < S.nw; i++) {
			/* READY, BUSY and POOLED come this way; deaths arrive
			 * as SIGCHLD. */
			pfd[n].fd = S.w[i].ctl;
			pfd[n].events = POLLIN;
			pfd[n++].revents = 0;
		}
		if (throttled()) {
			int64_t left = S.throttle_until - util_now_ms();
			timeout = left < timeout ? (int)left + 1 : timeout;
		}
		if (S.pool_refill_after > util_now_ms()) {
			int64_t left = S.pool_refill_after - util_now_ms();
			timeout = left < timeout ? (int)left + 1 : timeout;
		}
		if (db_backoff()) {
			int64_t left = S.db_retry_at - util_now_ms();
			timeout = left < timeout ? (int)left + 1 : timeout;
		}
		if (S.nwait > 0 && timeout > 100)
			timeout = 100; /* reclaim retries, waiting-room expiry */
		if (S.jan_pid == 0 && S.jan_respawn_at && !S.draining) {
			int64_t left = S.jan_respawn_at - util_now_ms();
			timeout = left < timeout ? (int)(left > 0 ? left : 0) + 1 : timeout;
		}
		{
			int kt = sup_kh_timeout_ms();
			if (kt >= 0 && kt < timeout)
				timeout = kt;
		}
		if (S.cfg->worker_cpu_budget_s > 0 && timeout > CPU_CHECK_MS)
			timeout = CPU_CHECK_MS;
		if (S.watchdog_us && S.watchdog_us / 4000 < (uint64_t)timeout)
			timeout = (int)(S.watchdog_us / 4000);
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		notify_periodic();
		if (pfd[0].revents)
			on_signal();
		/* Worker slots may have moved during reap(): rescan by fd. */
		for (i = 0; i < S.nw; i++) {
			nfds_t k;
			for (k = 1; k < n; k++)
				if (pfd[k].fd == S.w[i].ctl && pfd[k].revents) {
					read_ctl(&S.w[i]);
					break;
				}
		}
		if (S.listen_fd >= 0 && n > 1 && pfd[1].fd == S.listen_fd && pfd[1].revents)
			do_accept();
		serve_waiting();
	}
}
