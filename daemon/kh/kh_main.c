/* SPDX-License-Identifier: MIT */
/*
 * kh_main.c — main() of paymentd-keyholder, the process that holds the TLS
 * private key (descriptors and protocol: sup_proto.h, "key-holder
 * channel").
 *
 * Contract: started by paymentd only (run by hand it says so and exits
 * SUP_KH_EXIT_USAGE). Not dumpable from its first line, so no process of
 * the same uid (a worker) can read its memory while it holds the key
 * unsandboxed. Loads the key (SUP_KH_FD_KEYFILE) and checks it against the
 * certificate (SUP_KH_FD_CERTFILE), closes both, signs once so OpenSSL's
 * lazy set-up (DRBG seeding, provider loading) happens before the filter,
 * locks down with SANDBOX_KEYHOLDER, reports SUP_KH_MSG_READY and serves
 * (kh_serve.c). Exit codes: sup_proto.h.
 */
#include "kh.h"
#include "common/log.h"
#include "common/util.h"
#include "sup/sup_lockdown.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

static struct config cfg;

/* A signature of a fixed digest, so every lazy initialisation inside
 * libcrypto runs before the seccomp filter (it would open files). */
static int
warm_up(const struct kh_key *k, char *err, size_t errlen)
{
	static const unsigned char sha256_info[19] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
		0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
	struct sup_kh_req req;
	struct sup_kh_rep rep;

	memset(&req, 0, sizeof(req));
	req.version = SUP_KH_VERSION;
	if (kh_key_alg(k) == SUP_KH_ALG_ECDSA) {
		req.alg = SUP_KH_ALG_ECDSA;
		req.len = 32;
	} else {
		req.alg = SUP_KH_ALG_RSA_PKCS1;
		memcpy(req.data, sha256_info, sizeof(sha256_info));
		req.len = sizeof(sha256_info) + 32;
	}
	return kh_sign(k, &req, &rep, err, errlen) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	struct kh_key *k = NULL;
	struct stat st;
	char err[256];
	char ready = SUP_KH_MSG_READY;
	int type = 0;
	socklen_t tl = sizeof(type);

	(void)argv;
	/* Before the key is in memory: same-uid processes may not ptrace or
	 * read /proc/PID/mem of a non-dumpable one. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (argc != 1 || fstat(SUP_KH_FD_CTL, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(SUP_KH_FD_CTL, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    type != SOCK_SEQPACKET) {
		fprintf(stderr, "paymentd-keyholder: started by paymentd only (see sup_proto.h)\n");
		return SUP_KH_EXIT_USAGE;
	}
	if (sup_proto_config_read(SUP_FD_CONFIG, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "paymentd-keyholder: %s\n", err);
		return SUP_KH_EXIT_SOFTWARE;
	}
	close(SUP_FD_CONFIG);
	log_init("keyholder", cfg.log_level, cfg.log_format);
	/* Logs go to a pipe whose reader may be restarting. */
	signal(SIGPIPE, SIG_IGN);
	if (kh_key_load(SUP_KH_FD_KEYFILE, SUP_KH_FD_CERTFILE, &k, err, sizeof(err)) < 0) {
		log_kv(LOG_CRIT, "cannot load the TLS key",
		    (const struct log_field[]){ LF_S("error", err), { 0 } });
		return SUP_KH_EXIT_KEY;
	}
	close(SUP_KH_FD_KEYFILE);
	close(SUP_KH_FD_CERTFILE);
	if (warm_up(k, err, sizeof(err)) < 0) {
		log_kv(LOG_CRIT, "the TLS key cannot sign",
		    (const struct log_field[]){ LF_S("error", err), { 0 } });
		return SUP_KH_EXIT_KEY;
	}
	ERR_clear_error();
	/* glibc's first gmtime_r() (every log line) loads /etc/localtime:
	 * now, while there is one and open(2) is allowed. */
	tzset();
	log_debug("key loaded", LF_I("bits", kh_key_bits(k)));
	/* Exits SUP_EXIT_SANDBOX (= SUP_KH_EXIT_SANDBOX) on failure. */
	sup_lockdown_enter(&cfg, SANDBOX_KEYHOLDER, cfg.chroot_dir,
	    cfg.max_workers + SUP_KH_SPARE_FDS, "key-holder");
	if (send(SUP_KH_FD_CTL, &ready, 1, MSG_NOSIGNAL) != 1)
		util_exit_now(SUP_KH_EXIT_OK, 0); /* the supervisor went away meanwhile */
	log_info("key-holder ready", LF_S("key", kh_key_alg(k) == SUP_KH_ALG_ECDSA ? "ec" : "rsa"),
	    LF_I("bits", kh_key_bits(k)), LF_I("budget_per_channel", SUP_KH_SIGNS_PER_CHANNEL));
	/* _exit: libcrypto's atexit clean-up is not worth allowing more
	 * syscalls for, and the filter forbids coverage's file writes. */
	util_exit_now(kh_serve(&cfg, k, SUP_KH_FD_CTL), 0);
}
