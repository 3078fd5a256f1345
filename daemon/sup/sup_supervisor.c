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
 * master, instead of fork-bombing.
 */
#include "sup.h"
#include "sup_proto.h"
#include "common/log.h"
#include "common/util.h"
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
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#define THROTTLE_MIN_MS 100
#define THROTTLE_MAX_MS 30000
#define DRAIN_EXTRA_MS  5000

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
	uint64_t watchdog_us;
	int64_t next_watchdog;
	int64_t next_status;
	unsigned long accepted, exits;
	struct metrics *metrics;
	int metrics_fd;
	pid_t exporter_pid;
	int64_t exporter_respawn_at;
} S;

static size_t
count_unassigned(void)
{
	size_t i, n = 0;

	for (i = 0; i < S.nw; i++)
		n += !S.w[i].assigned;
	return n;
}

/* Starts one worker (sup_spawn.c); returns its slot or -1. */
static int
spawn(void)
{
	int sv[2];
	pid_t pid;

	if (S.nw >= (size_t)S.cfg->max_workers)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error("socketpair failed", LF_S("error", strerror(errno)));
		return -1;
	}
	pid = sup_spawn_worker(sv[1], metrics_shm_fd());
	if (pid < 0) {
		log_error("fork failed", LF_S("error", strerror(errno)));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[1]);
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

static void
fill_pool(void)
{
	if (S.pool_refill_after > util_now_ms())
		return;
	while (!S.draining && !throttled() &&
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
	if (!throttled() && (slot = spawn()) >= 0)
		return slot;
	return nodb;
}

/*
 * Hands a client connection (fd owned by the caller, always consumed) to a
 * worker. The supervisor keeps its copy until the worker acknowledges it;
 * `hops` counts earlier workers that died before doing so.
 */
static void
dispatch(int fd, const char *peer, int hops)
{
	int slot;

	if (S.draining || hops > SUP_MAX_HANDOFF_HOPS) {
		log_warn("connection dropped before any worker took it", LF_I("handoffs", hops),
		    LF_B("draining", S.draining));
		close(fd);
		return;
	}
	for (;;) {
		slot = pick_worker();
		if (slot < 0) {
			/* Throttled between can_accept and here: nothing
			 * can serve it now. Close rather than hold it. */
			log_warn("no worker available; connection refused");
			close(fd);
			return;
		}
		if (sup_proto_send_client(S.w[slot].ctl, fd, peer, hops > 0) == 0) {
			S.w[slot].assigned = 1;
			S.w[slot].pending_fd = fd;
			S.w[slot].pending_hops = hops;
			snprintf(
			    S.w[slot].pending_peer, sizeof(S.w[slot].pending_peer), "%s", peer);
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
	return S.nw < (size_t)S.cfg->max_workers && !throttled();
}

static void
do_accept(void)
{
	while (can_accept()) {
		int fd = accept4(S.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		char peer[SUP_PEER_MAX];

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_error("accept failed", LF_S("error", strerror(errno)));
			return;
		}
		S.accepted++;
		metrics_connection_accepted(S.metrics);
		if (rl_peer_from_fd(fd, peer, sizeof(peer)) < 0)
			peer[0] = '\0';
		dispatch(fd, peer, 0);
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

static const char *
exit_reason(int status, int killed_for_protocol, int *abnormal)
{
	*abnormal = 0;
	if (WIFEXITED(status)) {
		switch (WEXITSTATUS(status)) {
		case SUP_EXIT_OK: return "ok";
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
}

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
		if (sup_logfwd_reaped(pid, status))
			continue;

		for (i = 0; i < S.nw; i++)
			if (S.w[i].pid == pid) {
				w = &S.w[i];
				break;
			}
		if (w == NULL)
			continue;
		S.exits++;
		reason = exit_reason(status, w->protocol_violation, &abnormal);
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
		/* Crashes before READY slow down all forking instead of
		 * spinning (a broken build or sandbox would fork-bomb). */
		if (abnormal && !w->ready) {
			S.throttle_ms = S.throttle_ms ? S.throttle_ms * 2 : THROTTLE_MIN_MS;
			if (S.throttle_ms > THROTTLE_MAX_MS)
				S.throttle_ms = THROTTLE_MAX_MS;
			S.throttle_until = util_now_ms() + S.throttle_ms;
			log_warn("throttling worker starts", LF_I("delay_ms", S.throttle_ms));
		}
		close(w->ctl);
		if (w->pending_fd >= 0) {
			/* Died with the connection in flight, before reading a
			 * byte of it (e.g. it was leaving the pool because
			 * Redis or Postgres went away): give it to another. */
			int fd = w->pending_fd, hops = w->pending_hops + 1;
			char peer[sizeof(w->pending_peer)];

			memcpy(peer, w->pending_peer, sizeof(peer));
			*w = S.w[--S.nw];
			log_info("worker died before taking its connection; handing it on",
			    LF_I("worker_pid", pid), LF_S("reason", reason),
			    LF_I("handoffs", hops));
			dispatch(fd, peer, hops);
			continue;
		}
		*w = S.w[--S.nw];
	}
}

static void
read_ctl(struct sup_worker *w)
{
	char buf[16];
	ssize_t n = recv(w->ctl, buf, sizeof(buf), MSG_DONTWAIT), i;

	for (i = 0; i < n; i++) {
		if (!sup_proto_worker_byte_ok(buf[i])) {
			/* Only a compromised or broken worker does this. */
			log_error("protocol violation on a worker channel; killing the worker",
			    LF_I("worker_pid", w->pid), LF_I("byte", (unsigned char)buf[i]));
			w->protocol_violation = 1;
			kill(w->pid, SIGKILL);
			return;
		}
		if ((buf[i] == SUP_MSG_READY || buf[i] == SUP_MSG_NODB) && !w->ready) {
			int64_t us = (util_now_ns() - w->started_ns) / 1000;

			w->ready = 1;
			w->db = buf[i] == SUP_MSG_READY;
			S.throttle_ms = 0; /* a healthy start resets backoff */
			metrics_worker_started(S.metrics, us);
			log_debug("worker ready", LF_I("worker_pid", w->pid), LF_I("start_us", us),
			    LF_B("db", w->db));
		} else if (buf[i] == SUP_MSG_BUSY && w->pending_fd >= 0) {
			close(w->pending_fd); /* the worker has its own copy */
			w->pending_fd = -1;
		}
	}
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
	char err[256];
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

	if (rl_config_check(cfg, err, sizeof(err)) < 0)
		fatal("%s", err);
	/* Before any fork: every worker and the exporter share it. */
	S.metrics = metrics_create();
	if (S.metrics == NULL)
		fatal("metrics: mmap: %s", strerror(errno));
	if (cfg->metrics_port > 0) {
		S.metrics_fd = metrics_listen(
		    cfg->metrics_host[0] ? cfg->metrics_host : cfg->grpc_host, cfg->metrics_port,
		    err, sizeof(err));
		if (S.metrics_fd < 0)
			fatal("cannot listen for metrics: %s", err);
		exporter_spawn();
	}

	if (sup_spawn_init(cfg, err, sizeof(err)) < 0)
		fatal("%s", err);

	S.listen_fd = sup_listen_open(cfg->grpc_host, cfg->grpc_port, &activated, err, sizeof(err));
	if (S.listen_fd < 0)
		fatal("cannot listen: %s", err);
	if (util_set_nonblock(S.listen_fd, 1) < 0)
		fatal("listen socket: %s", strerror(errno));
	if (sd_watchdog_enabled(0, &S.watchdog_us) <= 0)
		S.watchdog_us = 0;

	fill_pool();
	log_info("paymentd listening", LF_S("host", cfg->grpc_host), LF_I("port", cfg->grpc_port),
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
			while (S.nw > 0 && waitpid(-1, NULL, 0) > 0)
				S.nw--;
			log_info("paymentd stopped", LF_I("connections", (int64_t)S.accepted));
			exit(S.exit_status);
		}
		fill_pool();
		if (!S.draining && S.metrics_fd >= 0 && S.exporter_pid == 0 &&
		    S.exporter_respawn_at && util_now_ms() >= S.exporter_respawn_at)
			exporter_spawn();
		metrics_set_workers(
		    S.metrics, (int)(S.nw - count_unassigned()), (int)count_unassigned());
		pfd[n].fd = S.sig_fd;
		pfd[n].events = POLLIN;
		pfd[n++].revents = 0;
		if (can_accept()) {
			pfd[n].fd = S.listen_fd;
			pfd[n].events = POLLIN;
			pfd[n++].revents = 0;
		}
		for (i = 0; i < S.nw; i++) {
			/* Only READY and BUSY come this way; after that, deaths
			 * arrive as SIGCHLD. */
			pfd[n].fd = S.w[i].ready && S.w[i].pending_fd < 0 ? -1 : S.w[i].ctl;
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
	}
}
