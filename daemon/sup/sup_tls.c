/* SPDX-License-Identifier: MIT */
/*
 * sup_tls.c — the public half of the TLS material, as the supervisor hands
 * it to workers (SUP_FD_TLS, struct sup_tls_blob in sup_proto.h).
 *
 * Contract: sup_tls_load() reads TLS_CERT_FILE and TLS_CLIENT_CA_FILE as
 * root (they may be readable by root only), draws fresh session-ticket keys
 * and seals all of it into a memfd that every worker started afterwards
 * gets; sup_tls_fd() is that memfd (-1 with TLS=off). A reload (SIGHUP)
 * builds a new memfd first and swaps only if that worked, so a broken file
 * on disk never takes the running pair away. The supervisor does not parse
 * certificates (it links no TLS library): it checks the PEM armour only;
 * the worker's OpenSSL and the key-holder check the rest, and fail loudly.
 *
 * Ticket keys are drawn anew at every load: workers of one generation can
 * resume each other's sessions (each connection has its own process), and a
 * reload also rotates the keys, so a leaked ticket key ages out with the
 * certificate pair it came with.
 */
#include "sup_tls.h"
#include "sup_proto.h"
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>

static struct {
	int fd;
	uint64_t generation;
} T = { -1, 0 };

/* Reads a whole PEM file (at most SUP_TLS_MAX_PEM bytes) into *out. */
static int
read_pem(
    const char *var, const char *path, const char *armour, char **out, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	ssize_t n = 0;
	int fd = -1, rc = -1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s %s: %s", var, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > (off_t)SUP_TLS_MAX_PEM) {
		snprintf(err, errlen, "%s %s: not a regular file of 1..%u bytes", var, path,
		    SUP_TLS_MAX_PEM);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)(st.st_size - n));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "%s %s: short read", var, path);
			goto out;
		}
		n += r;
	}
	buf[n] = '\0';
	if (strstr(buf, armour) == NULL || memchr(buf, '\0', (size_t)n) != NULL) {
		snprintf(err, errlen, "%s %s: no \"%s\" block (PEM expected)", var, path, armour);
		goto out;
	}
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int
build(const struct config *cfg, char *err, size_t errlen)
{
	struct sup_tls_blob hdr;
	char *cert = NULL, *ca = NULL;
	int fd, rc = -1;

	memset(&hdr, 0, sizeof(hdr));
	if (read_pem("TLS_CERT_FILE", cfg->tls_cert_file, "-----BEGIN CERTIFICATE-----", &cert, err,
	        errlen) < 0)
		goto out;
	if (cfg->tls_client_ca_file[0] != '\0' &&
	    read_pem("TLS_CLIENT_CA_FILE", cfg->tls_client_ca_file, "-----BEGIN CERTIFICATE-----",
	        &ca, err, errlen) < 0)
		goto out;
	if (getrandom(hdr.ticket_keys, sizeof(hdr.ticket_keys), 0) !=
	    (ssize_t)sizeof(hdr.ticket_keys)) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		goto out;
	}
	hdr.generation = T.generation + 1;
	fd = sup_proto_tls_fd(&hdr, cert, ca, err, errlen);
	explicit_bzero(hdr.ticket_keys, sizeof(hdr.ticket_keys));
	if (fd < 0)
		goto out;
	if (T.fd >= 0)
		close(T.fd);
	T.fd = fd;
	T.generation = hdr.generation;
	rc = 0;
out:
	free(cert);
	free(ca);
	return rc;
}

int
sup_tls_check(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->tls)
		return 0;
	if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
		snprintf(err, errlen,
		    "TLS=on needs TLS_CERT_FILE and TLS_KEY_FILE (or set TLS=off for cleartext "
		    "on loopback; scripts/gen-certs makes a local CA and pair)");
		return -1;
	}
	if (strcmp(cfg->tls_client_auth, "none") != 0 && cfg->tls_client_ca_file[0] == '\0') {
		snprintf(err, errlen,
		    "TLS_CLIENT_AUTH=%s needs TLS_CLIENT_CA_FILE (the CA client certificates "
		    "chain to), or TLS_CLIENT_AUTH=none",
		    cfg->tls_client_auth);
		return -1;
	}
	return 0;
}

int
sup_tls_load(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->tls)
		return 0;
	if (sup_tls_check(cfg, err, errlen) < 0)
		return -1;
	return build(cfg, err, errlen);
}

int
sup_tls_fd(void)
{
	return T.fd;
}

uint64_t
sup_tls_generation(void)
{
	return T.generation;
}
