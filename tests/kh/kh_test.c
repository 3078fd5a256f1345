/* SPDX-License-Identifier: MIT */
/*
 * kh_test.c — the key-holder end to end without the rest of paymentd: a
 * real paymentd-keyholder started by sup_kh.c (as root: dropped and
 * sandboxed exactly as under paymentd), a worker-like child that loads
 * only the certificate, installs the remote key (tls_remotekey.c), locks
 * itself down with the worker's seccomp profile and serves TLS on a
 * socketpair, and an OpenSSL client in this process that verifies the
 * certificate and the handshake signature.
 *
 * Keys are generated with the openssl CLI into a temporary directory at
 * start (never committed). Cases: TLS 1.3 and 1.2 with ECDSA P-256/P-384,
 * RSA-2048/2049 with PSS and PKCS#1 v1.5; the budget; malformed requests;
 * SIGKILL and restart (budget kept); reload; refused keys; the sandbox
 * failing closed; and the key isolation scan of /proc/PID/mem (worker: no
 * key bytes; key-holder: the private value is there).
 *
 * `kh_test --scan PID KEY.pem` prints, for each kind of key bytes
 * (der, priv-be, priv-le, pem-line), "found" or "absent" in PID's memory,
 * and exits 0; tests/suites/46-keyholder runs it against a real paymentd.
 */
#include "tests/lib/testlib.h"
#include "common/config.h"
#include "common/util.h"
#include "sandbox/sandbox.h"
#include "sup/sup_kh.h"
#include "sup/sup_proto.h"
#include "tls/tls_remotekey.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[32];  /* keys, certificates, the jail */
static char jail[48]; /* empty, root-owned 0555 */

/* ---- helpers ---------------------------------------------------------- */

static void
path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static int
run(char *const argv[])
{
	char log[128];
	int st = 0;
	pid_t p;

	path(log, sizeof(log), "openssl.log");
	p = tl_spawn(argv, NULL, log, log);
	if (p < 0 || tl_wait(p, 60000, &st) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* name.key / name.crt: a self-signed certificate for "localhost". */
static int
gen(const char *name, const char *newkey, const char *pkeyopt)
{
	char key[128], crt[128], kf[32], cf[32];

	snprintf(kf, sizeof(kf), "%s.key", name);
	snprintf(cf, sizeof(cf), "%s.crt", name);
	path(key, sizeof(key), kf);
	path(crt, sizeof(crt), cf);
	{
		char *argv[] = { "openssl", "req", "-x509", "-newkey", (char *)newkey, "-nodes",
			"-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
			"-addext", "subjectAltName=DNS:localhost", pkeyopt ? "-pkeyopt" : NULL,
			(char *)pkeyopt, NULL };
		if (run(argv) < 0)
			return -1;
	}
	return chmod(key, 0600);
}

static void
cfg_for(struct config *c, const char *name)
{
	cfg_defaults(c);
	c->tls = 1;
	snprintf(c->tls_key_file, sizeof(c->tls_key_file), "%s/%s.key", dir, name);
	snprintf(c->tls_cert_file, sizeof(c->tls_cert_file), "%s/%s.crt", dir, name);
	c->max_workers = 8;
	c->sandbox = geteuid() == 0;
	snprintf(c->chroot_dir, sizeof(c->chroot_dir), "%s", jail);
}

static void
start(const char *name)
{
	static struct config c; /* the key-holder's restarts re-use it */
	char err[512];

	cfg_for(&c, name);
	ck_assert_msg(sup_kh_start(&c, err, sizeof(err)) == 0, "sup_kh_start: %s", err);
	ck_assert_int_gt(sup_kh_pid(), 0);
}

static void
stop(void)
{
	pid_t p = sup_kh_pid();
	int st;

	sup_kh_stop();
	if (p > 0)
		tl_stop(p, SIGTERM, 5000, &st);
}

/* The worker-like server: loads name.crt only, signs through kh_fd, locks
 * down as a worker, serves one TLS connection on fd (peer: the client's
 * end, closed in the child): echoes one record,
 * then waits for the client to close. Exit 0, or 3 if the handshake failed. */
static pid_t
worker(const char *name, int kh_fd, int fd, int peer)
{
	pid_t p = fork();
	char crt[128], cf[32], err[256];
	struct sandbox_ids ids;
	struct sandbox_opts o;
	SSL_CTX *ctx;
	SSL *s;
	char buf[64];
	int n;

	if (p != 0)
		return p;
	close(peer); /* the client's end: its close must be our end of file */
	snprintf(cf, sizeof(cf), "%s.crt", name);
	path(crt, sizeof(crt), cf);
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
	    tls_remotekey_use(ctx, kh_fd, err, sizeof(err)) < 0) {
		fprintf(stderr, "worker: %s\n", err);
		_exit(2);
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (geteuid() == 0) {
		memset(&o, 0, sizeof(o));
		o.profile = SANDBOX_WORKER;
		o.chroot_dir = jail;
		if (sandbox_resolve("paymentd", &ids, err, sizeof(err)) < 0 ||
		    sandbox_enter(&ids, &o, err, sizeof(err)) < 0) {
			fprintf(stderr, "worker sandbox: %s\n", err);
			_exit(77);
		}
	}
	s = SSL_new(ctx);
	SSL_set_fd(s, fd);
	if (SSL_accept(s) != 1)
		_exit(3);
	n = SSL_read(s, buf, sizeof(buf));
	if (n > 0)
		SSL_write(s, buf, n);
	while (SSL_read(s, buf, sizeof(buf)) > 0) {
	}
	_exit(0);
}

struct hs {
	int version;         /* TLS1_2_VERSION / TLS1_3_VERSION */
	const char *sigalgs; /* NULL: OpenSSL's default list */
	const char *ciphers; /* TLS 1.2 only */
};

/* One client handshake over fd against name.crt; returns the SSL (open) and
 * the peer's signature type, or NULL. */
static SSL *
client(const char *name, int fd, const struct hs *h, int *sig_nid)
{
	char crt[128], cf[32], buf[16];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *s;

	snprintf(cf, sizeof(cf), "%s.crt", name);
	path(crt, sizeof(crt), cf);
	ck_assert(ctx != NULL);
	ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, crt, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_min_proto_version(ctx, h->version);
	SSL_CTX_set_max_proto_version(ctx, h->version);
	if (h->sigalgs != NULL)
		ck_assert_int_eq(SSL_CTX_set1_sigalgs_list(ctx, h->sigalgs), 1);
	if (h->ciphers != NULL)
		ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, h->ciphers), 1);
	s = SSL_new(ctx);
	SSL_CTX_free(ctx);
	SSL_set_fd(s, fd);
	SSL_set1_host(s, "localhost");
	if (SSL_connect(s) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_free(s);
		return NULL;
	}
	ck_assert_int_eq(SSL_get_verify_result(s), X509_V_OK);
	ck_assert_int_eq(SSL_version(s), h->version);
	if (SSL_get_peer_signature_type_nid(s, sig_nid) != 1)
		*sig_nid = NID_undef;
	ck_assert_int_eq(SSL_write(s, "ping\n", 5), 5);
	ck_assert_int_eq(SSL_read(s, buf, sizeof(buf)), 5);
	ck_assert(memcmp(buf, "ping\n", 5) == 0);
	return s;
}

/* A handshake through a fresh channel: the worker child exits 0. Returns
 * the channel's worker end (kept open by the caller) via *kh_out. */
static void
handshake(const char *name, const struct hs *h, int want_nid, int *kh_out)
{
	int sv[2], handle, kh, nid = 0, st = 0;
	pid_t w;
	SSL *s;

	kh = sup_kh_channel(&handle);
	ck_assert_int_ge(kh, 0);
	sup_kh_tick();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	w = worker(name, kh, sv[1], sv[0]);
	ck_assert_int_gt(w, 0);
	close(sv[1]);
	s = client(name, sv[0], h, &nid);
	ck_assert_msg(s != NULL, "%s: handshake failed", name);
	ck_assert_int_eq(nid, want_nid);
	SSL_shutdown(s);
	SSL_free(s);
	close(sv[0]);
	ck_assert_int_eq(tl_wait(w, 10000, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker status %d", st);
	if (kh_out != NULL)
		*kh_out = kh;
	else
		close(kh);
}

/* ---- memory scan ------------------------------------------------------ */

struct needle {
	const char *what;
	unsigned char b[4096];
	size_t n;
};

/* The bytes of the key as they might sit in memory: its DER, the private
 * value (EC scalar or RSA prime p) big- and little-endian (BIGNUM limbs),
 * and the second line of its PEM text. Returns how many. */
static int
needles(const char *pem_path, struct needle *nd)
{
	FILE *f = fopen(pem_path, "r");
	EVP_PKEY *pk;
	BIGNUM *bn = NULL;
	unsigned char *der = NULL;
	char line[128];
	int n = 0, len;

	if (f == NULL)
		return -1;
	pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	rewind(f);
	if (pk == NULL || fgets(line, sizeof(line), f) == NULL ||
	    fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	len = i2d_PrivateKey(pk, &der);
	if (len > 0 && (size_t)len <= sizeof(nd[n].b)) {
		nd[n].what = "der";
		memcpy(nd[n].b, der, (size_t)len);
		nd[n++].n = (size_t)len;
	}
	OPENSSL_free(der);
	if (EVP_PKEY_get_bn_param(pk,
	        EVP_PKEY_is_a(pk, "RSA") ? OSSL_PKEY_PARAM_RSA_FACTOR1 : OSSL_PKEY_PARAM_PRIV_KEY,
	        &bn) == 1) {
		nd[n].what = "priv-be";
		nd[n].n = (size_t)BN_num_bytes(bn);
		BN_bn2binpad(bn, nd[n].b, (int)nd[n].n);
		n++;
		nd[n].what = "priv-le";
		nd[n].n = (size_t)BN_num_bytes(bn);
		BN_bn2lebinpad(bn, nd[n].b, (int)nd[n].n);
		n++;
	}
	BN_clear_free(bn);
	EVP_PKEY_free(pk);
	line[strcspn(line, "\r\n")] = '\0';
	nd[n].what = "pem-line";
	nd[n].n = strlen(line);
	memcpy(nd[n].b, line, nd[n].n);
	return n + 1;
}

/* Sets found[i] for every needle present in pid's readable memory.
 * Returns the number of bytes scanned, or -1. */
static long
scan(pid_t pid, const struct needle *nd, int nn, int *found)
{
	char mp[64], line[512];
	FILE *maps;
	int mem, i;
	long total = 0;
	size_t chunk = 1u << 20, over = 4096;
	unsigned char *buf = malloc(chunk + over);

	snprintf(mp, sizeof(mp), "/proc/%d/maps", (int)pid);
	maps = fopen(mp, "r");
	snprintf(mp, sizeof(mp), "/proc/%d/mem", (int)pid);
	mem = open(mp, O_RDONLY);
	if (maps == NULL || mem < 0 || buf == NULL) {
		if (maps)
			fclose(maps);
		if (mem >= 0)
			close(mem);
		free(buf);
		return -1;
	}
	memset(found, 0, sizeof(int) * (size_t)nn);
	while (fgets(line, sizeof(line), maps) != NULL) {
		unsigned long lo, hi, at;
		char *end;

		/* "lo-hi perms ..." */
		errno = 0;
		lo = strtoul(line, &end, 16);
		if (errno != 0 || *end != '-')
			continue;
		hi = strtoul(end + 1, &end, 16);
		if (errno != 0 || *end != ' ' || end[1] != 'r' || hi <= lo ||
		    strstr(line, "[vvar]") != NULL)
			continue;
		for (at = lo; at < hi; at += chunk) {
			size_t want = hi - at < chunk + over ? hi - at : chunk + over;
			ssize_t got = pread(mem, buf, want, (off_t)at);

			if (got <= 0)
				break;
			total += got;
			for (i = 0; i < nn; i++)
				if (!found[i] && memmem(buf, (size_t)got, nd[i].b, nd[i].n) != NULL)
					found[i] = 1;
		}
	}
	fclose(maps);
	close(mem);
	free(buf);
	return total;
}

/* ---- cases ------------------------------------------------------------ */

START_TEST(tls13_ecdsa_p256)
{
	const struct hs h = { TLS1_3_VERSION, NULL, NULL };

	start("ec256");
	handshake("ec256", &h, NID_X9_62_id_ecPublicKey, NULL);
	stop();
}
END_TEST

START_TEST(tls13_ecdsa_p384)
{
	const struct hs h = { TLS1_3_VERSION, "ECDSA+SHA384", NULL };

	start("ec384");
	handshake("ec384", &h, NID_X9_62_id_ecPublicKey, NULL);
	stop();
}
END_TEST

START_TEST(tls13_rsa_pss)
{
	const struct hs h = { TLS1_3_VERSION, "rsa_pss_rsae_sha256", NULL };
	const struct hs h512 = { TLS1_3_VERSION, "rsa_pss_rsae_sha512", NULL };

	start("rsa2048");
	handshake("rsa2048", &h, NID_rsassaPss, NULL);
	handshake("rsa2048", &h512, NID_rsassaPss, NULL);
	stop();
	/* 2049 bits: the PSS block starts with a zero byte. */
	start("rsa2049");
	handshake("rsa2049", &h, NID_rsassaPss, NULL);
	stop();
}
END_TEST

START_TEST(tls12_ecdhe_ecdsa)
{
	const struct hs h = { TLS1_2_VERSION, NULL, "ECDHE-ECDSA-AES128-GCM-SHA256" };

	start("ec256");
	handshake("ec256", &h, NID_X9_62_id_ecPublicKey, NULL);
	stop();
}
END_TEST

START_TEST(tls12_ecdhe_rsa)
{
	const struct hs pss = { TLS1_2_VERSION, "rsa_pss_rsae_sha256",
		"ECDHE-RSA-AES128-GCM-SHA256" };
	const struct hs v15 = { TLS1_2_VERSION, "RSA+SHA256", "ECDHE-RSA-AES128-GCM-SHA256" };
	const struct hs v15_384 = { TLS1_2_VERSION, "RSA+SHA384", "ECDHE-RSA-AES256-GCM-SHA384" };

	start("rsa2048");
	handshake("rsa2048", &pss, NID_rsassaPss, NULL);
	handshake("rsa2048", &v15, NID_rsaEncryption, NULL);
	handshake("rsa2048", &v15_384, NID_rsaEncryption, NULL);
	stop();
}
END_TEST

/* A worker that already signed its handshake asks for more: refused and
 * cut off; a fresh channel gets exactly one. */
START_TEST(budget)
{
	const struct hs h = { TLS1_3_VERSION, NULL, NULL };
	int kh, handle, fresh;
	char b;

	start("ec256");
	handshake("ec256", &h, NID_X9_62_id_ecPublicKey, &kh);
	ck_assert_int_eq(tls_remotekey_probe(kh), -1);
	ck_assert_int_eq(tls_remotekey_probe(kh), -1);
	close(kh);
	fresh = sup_kh_channel(&handle);
	ck_assert_int_ge(fresh, 0);
	ck_assert_int_eq(tls_remotekey_probe(fresh), 0);
	ck_assert_int_eq(tls_remotekey_probe(fresh), -1);
	/* Cut off means end of file for the worker, though the supervisor
	 * still holds the key-holder's end. */
	ck_assert_int_eq(recv(fresh, &b, 1, 0), 0);
	close(fresh);
	sup_kh_release(handle);
	stop();
}
END_TEST

/* Sends raw bytes (and optionally a descriptor) on a fresh channel; 1 if the
 * key-holder closed it without an answer. */
static int
refused(const void *msg, size_t len, int pass_fd)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cb;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	struct sup_kh_rep rep;
	int handle, fd = sup_kh_channel(&handle), r;
	struct timeval tv = { 5, 0 };

	ck_assert_int_ge(fd, 0);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *)msg;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (pass_fd >= 0) {
		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.buf;
		mh.msg_controllen = sizeof(cb.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	ck_assert_int_eq(sendmsg(fd, &mh, 0), (ssize_t)len);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r = (int)recv(fd, &rep, sizeof(rep), 0);
	close(fd);
	sup_kh_release(handle);
	return r == 0;
}

START_TEST(malformed)
{
	struct sup_kh_req req, ok;
	unsigned char big[sizeof(req) + 8];
	int handle, fd;
	struct sup_kh_rep rep;

	start("ec256");
	memset(&ok, 0, sizeof(ok));
	ok.version = SUP_KH_VERSION;
	ok.alg = SUP_KH_ALG_ECDSA;
	ok.len = 32;
	/* The well-formed request is answered... */
	fd = sup_kh_channel(&handle);
	ck_assert_int_eq(send(fd, &ok, sizeof(ok), 0), (ssize_t)sizeof(ok));
	ck_assert_int_eq(recv(fd, &rep, sizeof(rep), 0), (ssize_t)sizeof(rep));
	ck_assert_int_eq(rep.status, SUP_KH_STATUS_OK);
	ck_assert_int_gt(rep.len, 8);
	close(fd);
	sup_kh_release(handle);
	/* ...and every deviation closes the channel. */
	ck_assert(refused(&ok, sizeof(ok) - 1, -1)); /* short */
	memset(big, 0, sizeof(big));
	memcpy(big, &ok, sizeof(ok));
	ck_assert(refused(big, sizeof(big), -1)); /* long */
	ck_assert(refused(&ok, sizeof(ok), 0));   /* with a descriptor */
	req = ok;
	req.version = 2;
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok;
	req.alg = SUP_KH_ALG_RSA_PKCS1; /* not this key's */
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok;
	req.alg = 9;
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok;
	req.len = 20; /* SHA-1 */
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok;
	req.len = 600;
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok;
	req.data[100] = 1; /* bytes past len */
	ck_assert(refused(&req, sizeof(req), -1));
	stop();

	/* RSA: a raw operation only on a real EMSA-PSS block. */
	start("rsa2048");
	req = ok;
	req.alg = SUP_KH_ALG_RSA_PSS;
	req.len = 256;
	memset(req.data, 0x5a, 256);
	req.data[0] = 0x12;
	req.data[255] = 0xbc; /* trailer and top bit right, DB garbage */
	ck_assert(refused(&req, sizeof(req), -1));
	req.data[255] = 0x01;
	ck_assert(refused(&req, sizeof(req), -1));
	req.len = 255;
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok;
	req.alg = SUP_KH_ALG_RSA_PKCS1;
	req.len = 51; /* the right length, not a DigestInfo */
	memset(req.data, 0x30, 51);
	ck_assert(refused(&req, sizeof(req), -1));
	req = ok; /* ECDSA of an RSA key */
	ck_assert(refused(&req, sizeof(req), -1));
	stop();
}
END_TEST

/* SIGKILL: the key-holder is restarted, channels are re-sent, budgets
 * survive (a spent channel stays spent), a second quick death waits. */
START_TEST(restart)
{
	const struct hs h = { TLS1_3_VERSION, NULL, NULL };
	int spent_h, spent, fresh_h, fresh, st = 0;
	pid_t old, now, prober;
	long t0;

	start("ec256");
	spent = sup_kh_channel(&spent_h);
	fresh = sup_kh_channel(&fresh_h);
	ck_assert_int_eq(tls_remotekey_probe(spent), 0);
	sup_kh_tick(); /* reads the "spent" report */
	old = sup_kh_pid();
	kill(old, SIGKILL);
	ck_assert_int_eq(waitpid(old, &st, 0), old);
	ck_assert_int_eq(sup_kh_reaped(old, st), 1);
	ck_assert_int_eq(sup_kh_pid(), 0);
	ck_assert_int_eq(sup_kh_reaped(old + 100000, st), 0);
	/* It was up for well over a second? No: restarts are throttled. */
	ck_assert_int_ge(sup_kh_timeout_ms(), 0);
	while (sup_kh_pid() == 0) {
		sup_kh_tick();
		usleep(20000);
	}
	now = sup_kh_pid();
	ck_assert_int_ne(now, old);
	ck_assert_int_eq(tls_remotekey_probe(fresh), 0);
	ck_assert_int_eq(tls_remotekey_probe(spent), -1);
	/* A handshake on a channel made after the restart. */
	handshake("ec256", &h, NID_X9_62_id_ecPublicKey, NULL);
	/* A request made while no key-holder runs waits in the channel and
	 * the next one answers it (the prober is a child: this process
	 * must keep ticking). */
	close(fresh);
	sup_kh_release(fresh_h);
	fresh = sup_kh_channel(&fresh_h);
	kill(now, SIGKILL);
	ck_assert_int_eq(waitpid(now, &st, 0), now);
	ck_assert_int_eq(sup_kh_reaped(now, st), 1);
	prober = fork();
	if (prober == 0)
		_exit(tls_remotekey_probe(fresh) == 0 ? 0 : 1);
	t0 = tl_now_ms();
	while (sup_kh_pid() == 0 && tl_now_ms() - t0 < 3000) {
		sup_kh_tick();
		usleep(20000);
	}
	ck_assert_int_gt(sup_kh_pid(), 0);
	ck_assert_int_eq(tl_wait(prober, 5000, &st), 0);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "request made meanwhile not answered");
	/* That probe spent the channel's budget. */
	sup_kh_tick();
	ck_assert_int_eq(tls_remotekey_probe(fresh), -1);
	close(fresh);
	close(spent);
	sup_kh_release(fresh_h);
	sup_kh_release(spent_h);
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
	stop();
}
END_TEST

START_TEST(reload)
{
	const struct hs h = { TLS1_3_VERSION, NULL, NULL };
	struct config c;
	char err[512];
	pid_t old, now;
	int st = 0;

	start("ec256");
	old = sup_kh_pid();
	/* A key that is not the certificate's: refused, the old one stays. */
	cfg_for(&c, "ec256");
	snprintf(c.tls_key_file, sizeof(c.tls_key_file), "%s/ec384.key", dir);
	ck_assert_int_eq(sup_kh_reload(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "bad TLS key") != NULL, "%s", err);
	ck_assert_int_eq(sup_kh_pid(), old);
	handshake("ec256", &h, NID_X9_62_id_ecPublicKey, NULL);
	/* A new pair: replaced; the old key-holder exits. */
	{
		static struct config c2;

		cfg_for(&c2, "rsa2048");
		ck_assert_msg(sup_kh_reload(&c2, err, sizeof(err)) == 0, "%s", err);
	}
	now = sup_kh_pid();
	ck_assert_int_ne(now, old);
	ck_assert_int_eq(tl_wait(old, 5000, &st), 0);
	ck_assert_int_eq(sup_kh_reaped(old, st), 1);
	handshake("rsa2048", &h, NID_rsassaPss, NULL);
	stop();
}
END_TEST

START_TEST(refused_keys)
{
	struct config c;
	char err[512], enc[128], key[128];

	/* Not the certificate's key. */
	cfg_for(&c, "ec256");
	snprintf(c.tls_key_file, sizeof(c.tls_key_file), "%s/rsa2048.key", dir);
	ck_assert_int_eq(sup_kh_start(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "exit 65") != NULL, "%s", err);
	/* Encrypted. */
	path(enc, sizeof(enc), "enc.key");
	path(key, sizeof(key), "ec256.key");
	{
		char *argv[] = { "openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:x",
			"-out", enc, NULL };
		ck_assert_int_eq(run(argv), 0);
	}
	cfg_for(&c, "ec256");
	snprintf(c.tls_key_file, sizeof(c.tls_key_file), "%s", enc);
	ck_assert_int_eq(sup_kh_start(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "exit 65") != NULL, "%s", err);
	/* Missing. */
	cfg_for(&c, "ec256");
	snprintf(c.tls_key_file, sizeof(c.tls_key_file), "%s/nope.key", dir);
	ck_assert_int_eq(sup_kh_start(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "TLS_KEY_FILE") != NULL, "%s", err);
	/* TLS off: nothing started, no channel. */
	cfg_for(&c, "ec256");
	c.tls = 0;
	ck_assert_int_eq(sup_kh_start(&c, err, sizeof(err)), 0);
	ck_assert_int_eq(sup_kh_pid(), 0);
	{
		int handle;
		ck_assert_int_eq(sup_kh_channel(&handle), -1);
	}
}
END_TEST

/* The jail is not empty: the key-holder cannot lock down and the start
 * fails closed (root only: otherwise there is no drop to fail). */
START_TEST(sandbox_fails_closed)
{
	struct config c;
	char err[512];

	if (geteuid() != 0)
		return;
	cfg_for(&c, "ec256");
	snprintf(c.chroot_dir, sizeof(c.chroot_dir), "%s", dir);
	ck_assert_int_eq(sup_kh_start(&c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "exit 77") != NULL, "%s", err);
}
END_TEST

/* The worker's memory, during a served connection, holds no byte of the
 * key; the key-holder's does (so the scan finds what is there). The
 * worker is forked before this process reads the key to make the needles,
 * so it cannot inherit them. */
static void
isolation(const char *name)
{
	const struct hs h = { TLS1_3_VERSION, NULL, NULL };
	static struct needle nd[8];
	int found[8], kfound[8], i, nn, sv[2], handle, kh, nid = 0, any = 0, st;
	char key[128], kf[32];
	pid_t w;
	SSL *s;

	if (geteuid() != 0)
		return; /* reading another uid's memory needs root */
	start(name);
	kh = sup_kh_channel(&handle);
	sup_kh_tick();
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	w = worker(name, kh, sv[1], sv[0]);
	close(sv[1]);
	s = client(name, sv[0], &h, &nid);
	ck_assert(s != NULL);
	snprintf(kf, sizeof(kf), "%s.key", name);
	path(key, sizeof(key), kf);
	nn = needles(key, nd);
	ck_assert_int_ge(nn, 3);
	ck_assert_int_gt(scan(w, nd, nn, found), 100000);
	ck_assert_int_gt(scan(sup_kh_pid(), nd, nn, kfound), 100000);
	for (i = 0; i < nn; i++) {
		printf("key_isolation %s: %-8s worker %s, key-holder %s\n", name, nd[i].what,
		    found[i] ? "FOUND" : "absent", kfound[i] ? "found" : "absent");
		ck_assert_msg(!found[i], "%s: %s found in the worker", name, nd[i].what);
		any |= kfound[i];
	}
	ck_assert_msg(any, "%s: the scan found nothing even in the key-holder", name);
	SSL_free(s);
	close(sv[0]);
	tl_wait(w, 5000, &st);
	close(kh);
	sup_kh_release(handle);
	stop();
}

START_TEST(key_isolation_ec) { isolation("ec256"); }
END_TEST

START_TEST(key_isolation_rsa) { isolation("rsa2048"); }
END_TEST

/* ---- main ------------------------------------------------------------- */

static int
scan_main(const char *pid, const char *pem)
{
	static struct needle nd[8];
	int found[8], nn, i;
	int64_t p;

	nn = needles(pem, nd);
	if (nn < 0 || util_parse_i64(pid, 1, INT32_MAX, &p) < 0 ||
	    scan((pid_t)p, nd, nn, found) < 0) {
		fprintf(stderr, "kh_test --scan: cannot read %s or /proc/%s\n", pem, pid);
		return 2;
	}
	for (i = 0; i < nn; i++)
		printf("%s %s\n", nd[i].what, found[i] ? "found" : "absent");
	return 0;
}

static int
setup(void)
{
	char tmpl[] = "/tmp/kh_test.XXXXXX";

	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	snprintf(jail, sizeof(jail), "%s/empty", dir);
	if (mkdir(jail, 0555) < 0 || chmod(dir, 0755) < 0)
		return -1;
	if (gen("ec256", "ec", "ec_paramgen_curve:P-256") < 0 ||
	    gen("ec384", "ec", "ec_paramgen_curve:P-384") < 0 ||
	    gen("rsa2048", "rsa:2048", NULL) < 0 || gen("rsa2049", "rsa:2049", NULL) < 0)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	const TTest *const tests[] = { tls13_ecdsa_p256, tls13_ecdsa_p384, tls13_rsa_pss,
		tls12_ecdhe_ecdsa, tls12_ecdhe_rsa, budget, malformed, restart, reload,
		refused_keys, sandbox_fails_closed, key_isolation_ec, key_isolation_rsa, NULL };
	int rc;

	if (argc == 4 && strcmp(argv[1], "--scan") == 0)
		return scan_main(argv[2], argv[3]);
	signal(SIGPIPE, SIG_IGN);
	if (setup() < 0) {
		fprintf(stderr, "kh_test: cannot generate test keys with openssl in %s\n", dir);
		return 1;
	}
	rc = tl_run(tl_suite("keyholder", 120, tests), CK_NORMAL, 0);
	tl_rmtree(dir);
	return rc;
}
