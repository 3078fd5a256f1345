/* SPDX-License-Identifier: MIT */
/*
 * wrk_main.c — main() of paymentd-worker, the image the supervisor execs
 * for every worker (sup_proto.h has the descriptor contract).
 *
 * Contract: started by paymentd only. Takes its configuration from the
 * sealed memfd on SUP_FD_CONFIG (never from the environment or ENV_FILE,
 * which may be readable by root alone), maps the shared metrics from
 * SUP_FD_METRICS, and serves one connection over SUP_FD_CTL
 * (wrk_worker_run). Run by hand it says so and exits 2.
 */
#include "wrk.h"
#include "common/log.h"
#include "metrics/metrics.h"
#include "sup/sup_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

static struct config cfg;

int
main(int argc, char **argv)
{
	struct metrics *m;
	struct sup_status *status;
	struct stat st;
	char err[256];
	int type = 0;
	socklen_t tl = sizeof(type);

	(void)argv;
	/* Two malloc arenas, not 8 per core: each reserves 64 MiB of address
	 * space, and the worker runs under RLIMIT_AS (WORKER_MAX_MEMORY_MB).
	 * The dispatch thread is the only hot allocator. */
	mallopt(M_ARENA_MAX, 2);
	if (argc != 1 || fstat(SUP_FD_CTL, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(SUP_FD_CTL, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
		fprintf(stderr, "paymentd-worker: started by paymentd only (see sup_proto.h)\n");
		return 2;
	}
	if (sup_proto_config_read(SUP_FD_CONFIG, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "paymentd-worker: %s\n", err);
		return SUP_EXIT_SOFTWARE;
	}
	close(SUP_FD_CONFIG);
	log_init("worker", cfg.log_level, cfg.log_format);
	/* Before any thread exists (grpc's, the front's): they inherit it.
	 * A worker wakes two or three of its threads per call; under
	 * SCHED_OTHER each wake-up may preempt whatever runs, the database
	 * included, and on a saturated host those extra switches cost about
	 * a tenth of the payments (make bench). SCHED_BATCH keeps fair
	 * shares and only drops the wake-up preemption. */
	if (strcmp(cfg.worker_sched_policy, "batch") == 0) {
		struct sched_param sp = { 0 };

		if (sched_setscheduler(0, SCHED_BATCH, &sp) < 0)
			log_warn("WORKER_SCHED_POLICY=batch not applied",
			    LF_S("error", strerror(errno)));
	}
	m = metrics_attach(SUP_FD_METRICS);
	if (m == NULL) {
		log_error("cannot map the shared metrics");
		return SUP_EXIT_SOFTWARE;
	}
	close(SUP_FD_METRICS);
	if (fcntl(SUP_FD_CTL, F_SETFD, FD_CLOEXEC) < 0)
		return SUP_EXIT_SOFTWARE;
	status = mmap(NULL, sizeof(*status), PROT_READ | PROT_WRITE, MAP_SHARED, SUP_FD_STATUS, 0);
	if (status == MAP_FAILED) {
		log_error("cannot map the status page");
		return SUP_EXIT_SOFTWARE;
	}
	close(SUP_FD_STATUS);
	status->magic = SUP_STATUS_MAGIC;
	wrk_worker_run(&cfg, SUP_FD_CTL, m, status);
}
