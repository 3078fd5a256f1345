/* SPDX-License-Identifier: MIT */
/*
 * auth_admin.c — `paymentd client` (see auth_admin.h): the argument parser,
 * the credential values it accepts, and one function per subcommand.
 *
 * Output is one line per object, each starting with the object's kind and
 * the client's name, then key=value fields in a fixed order, so
 * `grep '^grant shop '` or awk picks out what a script needs:
 *
 *   client NAME id=N status=ACTIVE|REVOKED admin=yes|no created=T revoked=T|-
 *   credential NAME kind=KIND value=V created=T revoked=T|-   (token: hint=H)
 *   grant NAME pattern=P debit=yes|no read=yes|no created=T
 *   limit NAME method=M limit=N
 *   token: pd_...                                            (once, on create/rotate)
 *
 * Commands that change something add the previous state (previous=...), and
 * print only after their transaction committed, so what is printed is what
 * the database holds.
 */
#include "auth_admin.h"
#include "auth_token.h"
#include "common/config.h"
#include "common/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define ADM_PROG        "paymentd client"
#define ADM_LEGACY      "legacy"
#define ADM_MAX_CREDS   32
#define ADM_VALUE_MAX   512 /* client_credentials.value */
#define ADM_DNS_MAX     253
#define ADM_NAME_MAX    63 /* clients.name */
#define ADM_PATTERN_MAX 64 /* account_grants.account_pattern, before its '*' */
#define ADM_LIMIT_MAX   100000000
#define ADM_TS          40 /* an rfc3339() text, or "-" */

enum {
	O_ADMIN = 1U << 0,
	O_TOKEN = 1U << 1,
	O_JSON = 1U << 2,
	O_DEBIT = 1U << 3,
	O_READ = 1U << 4,
	O_CLEAR = 1U << 5,
	O_CRED = 1U << 6, /* the credential options */
};

static const struct opt {
	const char *name;
	const char *kind; /* credential options: the kind they add */
	unsigned flag;
	int from_file; /* --mtls-cert: the value is a PEM file to hash */
} adm_opts[] = {
	{ "--admin", NULL, O_ADMIN, 0 },
	{ "--token", NULL, O_TOKEN, 0 },
	{ "--json", NULL, O_JSON, 0 },
	{ "--debit", NULL, O_DEBIT, 0 },
	{ "--read", NULL, O_READ, 0 },
	{ "--clear", NULL, O_CLEAR, 0 },
	{ "--mtls-uri", "mtls_uri", O_CRED, 0 },
	{ "--mtls-dns", "mtls_dns", O_CRED, 0 },
	{ "--mtls-sha256", "mtls_sha256", O_CRED, 0 },
	{ "--mtls-cert", "mtls_sha256", O_CRED, 1 },
};

/* The methods client_limits may name: the worker's rate-limited RPCs. */
static const char *const adm_methods[] = { "AuthorizePayment", "GetPayment", "GetAccountBalance" };
static const char *const adm_kinds[] = { "mtls_uri", "mtls_dns", "mtls_sha256", "token" };

struct cred {
	const char *kind;
	char value[ADM_VALUE_MAX + 1];
	char hint[AUTH_TOKEN_HINT_LEN + 1];
	char created[ADM_TS];
};

struct args {
	unsigned flags;
	const char *pos[3];
	int npos;
	struct cred creds[ADM_MAX_CREDS + 1]; /* + the token of create */
	int ncreds;
};

struct client {
	char id[24];
	int active, admin;
	char created[ADM_TS], revoked[ADM_TS];
};

struct adm;

struct sub {
	const char *name;
	const char *synopsis; /* what follows "paymentd client NAME" */
	const char *pos[4];   /* names of the positional arguments, NULL-ended */
	int min_pos;
	unsigned opts;
	int (*run)(struct adm *a, struct args *g);
};

struct adm {
	PGconn *c;
	const struct sub *s;
	int takes_away; /* the command may take a permission away: wait after COMMIT */
};

/* ---- messages ------------------------------------------------------- */

static int __attribute__((format(printf, 1, 2))) adm_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(ADM_PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static int __attribute__((format(printf, 2, 3)))
adm_usage_fail(const struct sub *s, const char *fmt, ...)
{
	va_list ap;

	fputs(ADM_PROG " ", stderr);
	fputs(s->name, stderr);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: " ADM_PROG " %s %s\n", s->name, s->synopsis);
	return 2;
}

/* A credential value as text on one line: bytes that could break a line
 * or a terminal (blanks, controls, non-ASCII, and the backslash itself)
 * as \xNN. Values written by this tool never need it; rows written by
 * hand might. */
static void
adm_put_value(const char *v)
{
	const unsigned char *p;

	for (p = (const unsigned char *)v; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '\\')
			putchar(*p);
		else
			printf("\\x%02x", *p);
	}
}

static const char *
yes_no(int b)
{
	return b ? "yes" : "no";
}

static const char *
flags_name(int debit, int read)
{
	if (debit && read)
		return "debit+read";
	return debit ? "debit" : read ? "read" : "none";
}

static void
print_client(const char *name, const struct client *cl)
{
	printf("client %s id=%s status=%s admin=%s created=%s revoked=%s\n", name, cl->id,
	    cl->active ? "ACTIVE" : "REVOKED", yes_no(cl->admin), cl->created, cl->revoked);
}

static void
print_cred(const char *name, const char *kind, const char *value, const char *hint,
    const char *created, const char *revoked)
{
	if (strcmp(kind, "token") == 0) {
		printf("credential %s kind=token hint=%s", name, hint);
	} else {
		printf("credential %s kind=%s value=", name, kind);
		adm_put_value(value);
	}
	printf(" created=%s revoked=%s\n", created, revoked);
}

static void
print_token(const char *tok)
{
	printf("token: %s\n", tok);
	fflush(stdout);
	fputs(ADM_PROG ": warning: the token above is shown only this once; store it now "
	               "(the database keeps only its SHA-256)\n",
	    stderr);
}

/* ---- values --------------------------------------------------------- */

static int
in_list(const char *s, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static int
is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* clients.name's CHECK: ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ */
static int
valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > ADM_NAME_MAX || !is_alnum(s[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return 0;
	return 1;
}

/* account_grants.account_pattern's CHECK: ^[A-Za-z0-9._:-]{0,64}\*?$, not
 * empty. */
static int
valid_pattern(const char *s)
{
	size_t i, n = strlen(s);

	if (n > 0 && s[n - 1] == '*')
		n--;
	else if (n == 0)
		return 0;
	if (n > ADM_PATTERN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != ':' && s[i] != '-')
			return 0;
	return 1;
}

static int
hex_digit(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A SHA-256 as 64 hex digits, colons anywhere between them ignored (the
 * AB:CD:... form `openssl x509 -fingerprint` prints), into lowercase. */
static int
norm_sha256(const char *in, char out[65])
{
	size_t n = 0;

	for (; *in; in++) {
		if (*in == ':')
			continue;
		if (!hex_digit(*in) || n == 64)
			return -1;
		out[n++] = (*in >= 'A' && *in <= 'F') ? (char)(*in - 'A' + 'a') : *in;
	}
	out[n] = '\0';
	return n == 64 ? 0 : -1;
}

/* A URI SAN: scheme ":" rest, printable ASCII without blanks. */
static int
valid_uri(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > ADM_VALUE_MAX ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return 0;
	for (i = 1; i < n && s[i] != ':'; i++)
		if (!is_alnum(s[i]) && s[i] != '+' && s[i] != '.' && s[i] != '-')
			return 0;
	if (i == n || i + 1 == n)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

/* A DNS SAN: letters, digits, '.', '-', '_' and the '*' of a wildcard. */
static int
valid_dns(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > ADM_DNS_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_' && s[i] != '*')
			return 0;
	return 1;
}

/* SHA-256 of the DER encoding of the first certificate in a PEM file:
 * what the worker compares against the certificate a client presents. */
static int
cert_sha256(const char *path, char out[65])
{
	FILE *f = fopen(path, "r");
	X509 *x = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int rc = 1;

	if (f == NULL) {
		adm_fail("--mtls-cert %s: %s", path, strerror(errno));
		goto out;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	if (x == NULL) {
		adm_fail("--mtls-cert %s: no PEM certificate in it "
		         "(want a -----BEGIN CERTIFICATE----- block)",
		    path);
		goto out;
	}
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		adm_fail("--mtls-cert %s: cannot compute the certificate's SHA-256", path);
		goto out;
	}
	util_hex(md, 32, out);
	rc = 0;
out:
	X509_free(x);
	if (f != NULL)
		fclose(f);
	return rc;
}

/* The value of one credential option into cr: 0, 1 (a file error, said),
 * or 2 (a malformed value, said with the usage). */
static int
cred_value(const struct sub *s, const struct opt *o, const char *v, struct cred *cr)
{
	memset(cr, 0, sizeof(*cr));
	cr->kind = o->kind;
	if (o->from_file)
		return cert_sha256(v, cr->value);
	if (strcmp(o->kind, "mtls_sha256") == 0) {
		if (norm_sha256(v, cr->value) < 0)
			return adm_usage_fail(s,
			    "%s %s: want the certificate's SHA-256 as 64 hex digits (colons "
			    "allowed)",
			    o->name, v);
		return 0;
	}
	if (strcmp(o->kind, "mtls_uri") == 0 ? !valid_uri(v) : !valid_dns(v))
		return adm_usage_fail(s,
		    strcmp(o->kind, "mtls_uri") == 0
		        ? "%s %s: want a URI SAN (scheme:rest, printable ASCII without blanks, at "
		          "most 512 bytes)"
		        : "%s %s: want a DNS SAN (letters, digits, '.', '-', '_', '*'; at most 253 "
		          "bytes)",
		    o->name, v);
	memcpy(cr->value, v, strlen(v) + 1);
	/* DNS names compare case-insensitively (RFC 4343); the worker
	 * lowercases a certificate's DNS SANs the same way. */
	if (strcmp(o->kind, "mtls_dns") == 0) {
		char *c;

		for (c = cr->value; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	return 0;
}

/* ---- arguments ------------------------------------------------------ */

static const struct opt *
find_opt(const char *arg, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(adm_opts); i++)
		if (strlen(adm_opts[i].name) == len && strncmp(adm_opts[i].name, arg, len) == 0)
			return &adm_opts[i];
	return NULL;
}

/* Options are the arguments starting with "--" (a "--NAME=VALUE" form
 * too), anywhere after the subcommand; "--" ends them. 0, 1 or 2 (said),
 * or -1 when --help printed the subcommand's usage. */
static int
parse_args(const struct sub *s, int argc, char **argv, struct args *g)
{
	int i, rc, max_pos = 0, end = 0;

	memset(g, 0, sizeof(*g));
	while (s->pos[max_pos] != NULL)
		max_pos++;
	for (i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq, *val;
		const struct opt *o;
		size_t len;

		if (!end && strcmp(arg, "--") == 0) {
			end = 1;
			continue;
		}
		if (!end && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
			printf("usage: " ADM_PROG " %s %s\n", s->name, s->synopsis);
			return -1;
		}
		if (end || strncmp(arg, "--", 2) != 0) {
			if (g->npos == max_pos)
				return adm_usage_fail(s, "unexpected argument %s", arg);
			g->pos[g->npos++] = arg;
			continue;
		}
		eq = strchr(arg, '=');
		len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		o = find_opt(arg, len);
		if (o == NULL)
			return adm_usage_fail(s, "unknown option %.*s", (int)len, arg);
		if ((s->opts & o->flag) == 0)
			return adm_usage_fail(
			    s, "%s does not apply to `" ADM_PROG " %s`", o->name, s->name);
		if (o->flag != O_CRED) {
			if (eq != NULL)
				return adm_usage_fail(s, "%s takes no value", o->name);
			g->flags |= o->flag;
			continue;
		}
		val = eq != NULL ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
		if (val == NULL)
			return adm_usage_fail(s, "%s needs a value", o->name);
		if (g->ncreds == ADM_MAX_CREDS)
			return adm_usage_fail(s, "at most %d credentials at once", ADM_MAX_CREDS);
		rc = cred_value(s, o, val, &g->creds[g->ncreds]);
		if (rc != 0)
			return rc;
		g->flags |= O_CRED;
		g->ncreds++;
	}
	if (g->npos < s->min_pos)
		return adm_usage_fail(s, "missing %s", s->pos[g->npos]);
	return 0;
}

static int
check_name(struct adm *a, const char *name)
{
	if (valid_name(name))
		return 0;
	return adm_usage_fail(a->s,
	    "invalid client name \"%s\" (want 1-63 of A-Z a-z 0-9 . _ -, starting with a "
	    "letter or digit)",
	    name);
}

static int
refuse_legacy(const char *name)
{
	if (strcmp(name, ADM_LEGACY) != 0)
		return 0;
	return adm_fail("the client " ADM_LEGACY " cannot have credentials: it is the identity "
	                "of AUTH_MODE=none, which no authenticated caller may assume");
}

/* ---- database ------------------------------------------------------- */

static int
db_ok(const PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static const char *
db_state(const PGresult *r)
{
	const char *st = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return st != NULL ? st : "";
}

/* One line saying what failed: Postgres's primary message with its
 * SQLSTATE, never the statement; the missing schema said as such. */
static int
db_fail(struct adm *a, const PGresult *r, const char *what)
{
	const char *st = db_state(r);
	const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char conn[256];
	size_t n;

	if (strcmp(st, "42P01") == 0 || strcmp(st, "42883") == 0 || strcmp(st, "42703") == 0)
		return adm_fail("%s: the database lacks the identity schema "
		                "(migrations/0004_identity.sql): run `paymentd migrate` first (%s)",
		    what, msg != NULL ? msg : st);
	if (msg == NULL) { /* no result: the connection failed */
		snprintf(conn, sizeof(conn), "%s", PQerrorMessage(a->c));
		n = strcspn(conn, "\n");
		conn[n] = '\0';
		return adm_fail("%s: database connection lost: %s", what, conn);
	}
	return adm_fail("%s: database error %s: %s", what, st, msg);
}

static PGresult *
db_q(struct adm *a, const char *sql, int n, const char *const *pv)
{
	return PQexecParams(a->c, sql, n, NULL, pv, NULL, NULL, 0);
}

/* A statement without parameters or rows: 0, or 1 (said). */
static int
db_cmd(struct adm *a, const char *sql, const char *what)
{
	PGresult *r = PQexec(a->c, sql);
	int rc = db_ok(r) ? 0 : db_fail(a, r, what);

	PQclear(r);
	return rc;
}

static void
copy_cell(char *dst, size_t len, const PGresult *r, int row, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(r, row, col) ? "-" : PQgetvalue(r, row, col));
}

static int
cell_bool(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

/* Finds the client NAME inside the caller's transaction and locks its row
 * (every command locks only this one row, so two admin commands cannot
 * deadlock). With takes_away, the command may take a permission away:
 * db_commit() then waits for the payments that read the old state (see
 * wait_older()). 0, or 1 (said: "no client named X"). */
static int
client_open(struct adm *a, const char *name, int lock, struct client *cl)
{
	PGresult *r;
	const char *pv[1] = { name };
	int rc = 1;

	memset(cl, 0, sizeof(*cl));
	r = db_q(a, "SELECT client_id FROM clients WHERE name = $1", 1, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "looking up the client");
		goto out;
	}
	if (PQntuples(r) != 1) {
		rc = adm_fail("no client named %s", name);
		goto out;
	}
	copy_cell(cl->id, sizeof(cl->id), r, 0, 0);
	pv[0] = cl->id;
	if (lock)
		a->takes_away = 1;
	PQclear(r);
	r = db_q(a,
	    "SELECT status = 'ACTIVE', is_admin, rfc3339(created_at), rfc3339(revoked_at) "
	    "FROM clients WHERE client_id = $1 FOR UPDATE",
	    1, pv);
	if (!db_ok(r) || PQntuples(r) != 1) {
		rc = db_fail(a, r, "reading the client");
		goto out;
	}
	cl->active = cell_bool(r, 0, 0);
	cl->admin = cell_bool(r, 0, 1);
	copy_cell(cl->created, sizeof(cl->created), r, 0, 2);
	copy_cell(cl->revoked, sizeof(cl->revoked), r, 0, 3);
	rc = 0;
out:
	PQclear(r);
	return rc;
}

/*
 * After a COMMIT that took a permission away: waits until every
 * transaction that had an id when it committed has ended. A payment takes
 * its transaction id before it reads the client and its grants
 * (authorize_payment in migrations/0004), so once this returns, every
 * payment that read the old state has committed or rolled back, and every
 * later one reads the new state. Waits at most WAIT_OLDER_S; past that it
 * warns (naming what is still running) and returns 0: the change itself is
 * committed.
 */
#define WAIT_OLDER_S 60
static int
wait_older(struct adm *a)
{
	PGresult *r = PQexec(a->c, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text");
	char xmax[32];
	const char *pv[1] = { xmax };
	int i, rc = 0;

	if (!db_ok(r) || PQntuples(r) != 1) {
		rc = db_fail(a, r, "reading the snapshot after the change");
		goto out;
	}
	snprintf(xmax, sizeof(xmax), "%s", PQgetvalue(r, 0, 0));
	for (i = 0; i < WAIT_OLDER_S * 100; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		PQclear(r);
		r = db_q(a, "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8", 1, pv);
		if (!db_ok(r) || PQntuples(r) != 1) {
			rc = db_fail(a, r, "waiting for older transactions");
			goto out;
		}
		if (cell_bool(r, 0, 0))
			goto out;
		nanosleep(&ts, NULL);
	}
	fflush(stdout);
	fprintf(stderr,
	    ADM_PROG ": warning: transactions older than the change still run after %d s (see "
	             "pg_stat_activity); a payment among them may still commit under the old "
	             "permissions\n",
	    WAIT_OLDER_S);
out:
	PQclear(r);
	return rc;
}

/* COMMIT, then (for a command that took a permission away) wait_older(). */
static int
db_commit(struct adm *a)
{
	int rc = db_cmd(a, "COMMIT", "committing");

	if (rc == 0 && a->takes_away)
		rc = wait_older(a);
	return rc;
}

static int
refuse_revoked(const char *name, const struct client *cl, const char *what)
{
	if (cl->active)
		return 0;
	return adm_fail(
	    "client %s is revoked (since %s): it cannot get %s", name, cl->revoked, what);
}

/* Adds cr to client id; a value another live credential already holds is
 * refused naming its client (the unique index client_credentials_live
 * catches a concurrent insert). 0, or 1 (said). */
static int
cred_insert(struct adm *a, const char *id, struct cred *cr)
{
	const char *pv[4] = { cr->kind, cr->value, id, cr->hint };
	PGresult *r;
	int rc = 1;

	r = db_q(a,
	    "SELECT c.name FROM client_credentials k JOIN clients c USING (client_id) "
	    "WHERE k.kind = $1 AND k.value = $2 AND k.revoked_at IS NULL",
	    2, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "checking the credential");
		goto out;
	}
	if (PQntuples(r) > 0) {
		rc = strcmp(cr->kind, "token") == 0
		    ? adm_fail("the new token's hash is already in use (retry)")
		    : adm_fail("%s credential %s is already a live credential of client %s "
		               "(revoke it there first)",
		          cr->kind, cr->value, PQgetvalue(r, 0, 0));
		goto out;
	}
	PQclear(r);
	r = db_q(a,
	    "INSERT INTO client_credentials (kind, value, client_id, hint) "
	    "VALUES ($1, $2, $3, $4) RETURNING rfc3339(created_at)",
	    4, pv);
	if (!db_ok(r)) {
		if (strcmp(db_state(r), "23505") == 0)
			rc = adm_fail("%s credential %s was just added as a live credential by "
			              "someone else",
			    cr->kind, cr->value);
		else
			rc = db_fail(a, r, "adding the credential");
		goto out;
	}
	copy_cell(cr->created, sizeof(cr->created), r, 0, 0);
	rc = 0;
out:
	PQclear(r);
	return rc;
}

/* A fresh token as the credential cr (its hash and hint); the token
 * itself in tok. */
static int
token_cred(struct cred *cr, char tok[AUTH_TOKEN_LEN + 1])
{
	memset(cr, 0, sizeof(*cr));
	cr->kind = "token";
	if (auth_token_new(tok) < 0)
		return adm_fail("getrandom: %s", strerror(errno));
	auth_token_hash(tok, strlen(tok), cr->value);
	auth_token_hint(tok, cr->hint);
	return 0;
}

/* ---- subcommands ---------------------------------------------------- */

static int
cmd_create(struct adm *a, struct args *g)
{
	const char *name = g->pos[0];
	const char *pv[2] = { name, (g->flags & O_ADMIN) ? "true" : "false" };
	char tok[AUTH_TOKEN_LEN + 1] = "";
	struct client cl;
	PGresult *r = NULL;
	int rc, i;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if ((g->ncreds > 0 || (g->flags & O_TOKEN)) && (rc = refuse_legacy(name)) != 0)
		return rc;
	if ((g->flags & O_TOKEN) && (rc = token_cred(&g->creds[g->ncreds++], tok)) != 0)
		goto out;
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0)
		goto out;
	r = db_q(a,
	    "INSERT INTO clients (name, is_admin) VALUES ($1, $2::boolean) "
	    "RETURNING client_id, rfc3339(created_at)",
	    2, pv);
	if (!db_ok(r)) {
		rc = strcmp(db_state(r), "23505") == 0
		    ? adm_fail("a client named %s already exists", name)
		    : db_fail(a, r, "creating the client");
		goto out;
	}
	memset(&cl, 0, sizeof(cl));
	copy_cell(cl.id, sizeof(cl.id), r, 0, 0);
	copy_cell(cl.created, sizeof(cl.created), r, 0, 1);
	snprintf(cl.revoked, sizeof(cl.revoked), "-");
	cl.active = 1;
	cl.admin = (g->flags & O_ADMIN) != 0;
	for (i = 0; i < g->ncreds; i++)
		if ((rc = cred_insert(a, cl.id, &g->creds[i])) != 0)
			goto out;
	if ((rc = db_commit(a)) != 0)
		goto out;
	print_client(name, &cl);
	for (i = 0; i < g->ncreds; i++)
		print_cred(name, g->creds[i].kind, g->creds[i].value, g->creds[i].hint,
		    g->creds[i].created, "-");
	if (tok[0] != '\0')
		print_token(tok);
out:
	explicit_bzero(tok, sizeof(tok));
	PQclear(r);
	return rc;
}

/* Every client as one JSON object per line inside one array: valid JSON
 * for jq, and still one line per client for grep. Built by Postgres
 * (json_build_object keeps the key order), so the supervisor binary needs
 * no JSON library. */
static int
list_json(struct adm *a)
{
	PGresult *r;
	int i, n, rc = 1;

	r = db_q(a,
	    "SELECT json_build_object('name', c.name, 'id', c.client_id, 'status', c.status, "
	    " 'admin', c.is_admin, 'created_at', rfc3339(c.created_at), "
	    " 'revoked_at', rfc3339(c.revoked_at), "
	    " 'credentials', coalesce((SELECT json_agg(json_build_object("
	    "   'kind', k.kind, "
	    "   'value', CASE WHEN k.kind <> 'token' THEN k.value END, "
	    "   'hint', CASE WHEN k.kind = 'token' THEN k.hint END, "
	    "   'created_at', rfc3339(k.created_at), 'revoked_at', rfc3339(k.revoked_at)) "
	    "   ORDER BY k.credential_id) FROM client_credentials k "
	    "   WHERE k.client_id = c.client_id), '[]'), "
	    " 'grants', coalesce((SELECT json_agg(json_build_object("
	    "   'pattern', g.account_pattern, 'debit', g.can_debit, 'read', g.can_read, "
	    "   'created_at', rfc3339(g.created_at)) ORDER BY g.account_pattern COLLATE \"C\") "
	    "   FROM account_grants g WHERE g.client_id = c.client_id), '[]'), "
	    " 'limits', coalesce((SELECT json_agg(json_build_object("
	    "   'method', l.method, 'limit', l.limit_per_window) ORDER BY l.method COLLATE \"C\") "
	    "   FROM client_limits l WHERE l.client_id = c.client_id), '[]')) "
	    "FROM clients c ORDER BY c.name COLLATE \"C\"",
	    0, NULL);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "listing the clients");
		goto out;
	}
	n = PQntuples(r);
	fputs("[", stdout);
	for (i = 0; i < n; i++)
		printf("%s\n  %s", i ? "," : "", PQgetvalue(r, i, 0));
	fputs(n ? "\n]\n" : "]\n", stdout);
	rc = 0;
out:
	PQclear(r);
	return rc;
}

static int
list_client_rows(struct adm *a, const char *id, const char *name)
{
	const char *pv[1] = { id };
	PGresult *r;
	int i, rc = 1;

	r = db_q(a,
	    "SELECT kind, value, hint, rfc3339(created_at), rfc3339(revoked_at) "
	    "FROM client_credentials WHERE client_id = $1 ORDER BY credential_id",
	    1, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "listing the credentials");
		goto out;
	}
	for (i = 0; i < PQntuples(r); i++)
		print_cred(name, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		    PQgetvalue(r, i, 3), PQgetisnull(r, i, 4) ? "-" : PQgetvalue(r, i, 4));
	PQclear(r);
	r = db_q(a,
	    "SELECT account_pattern, can_debit, can_read, rfc3339(created_at) "
	    "FROM account_grants WHERE client_id = $1 ORDER BY account_pattern COLLATE \"C\"",
	    1, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "listing the grants");
		goto out;
	}
	for (i = 0; i < PQntuples(r); i++)
		printf("grant %s pattern=%s debit=%s read=%s created=%s\n", name,
		    PQgetvalue(r, i, 0), yes_no(cell_bool(r, i, 1)), yes_no(cell_bool(r, i, 2)),
		    PQgetvalue(r, i, 3));
	PQclear(r);
	r = db_q(a,
	    "SELECT method, limit_per_window FROM client_limits WHERE client_id = $1 "
	    "ORDER BY method COLLATE \"C\"",
	    1, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "listing the limits");
		goto out;
	}
	for (i = 0; i < PQntuples(r); i++)
		printf("limit %s method=%s limit=%s\n", name, PQgetvalue(r, i, 0),
		    PQgetvalue(r, i, 1));
	rc = 0;
out:
	PQclear(r);
	return rc;
}

static int
cmd_list(struct adm *a, struct args *g)
{
	PGresult *r = NULL;
	struct client cl;
	int i, rc;

	/* One snapshot for all the queries below. */
	if ((rc = db_cmd(a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	         "starting the transaction")) != 0)
		goto out;
	if (g->flags & O_JSON) {
		rc = list_json(a);
		goto out;
	}
	r = db_q(a,
	    "SELECT client_id, name, status = 'ACTIVE', is_admin, rfc3339(created_at), "
	    "rfc3339(revoked_at) FROM clients ORDER BY name COLLATE \"C\"",
	    0, NULL);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "listing the clients");
		goto out;
	}
	for (i = 0; i < PQntuples(r) && rc == 0; i++) {
		copy_cell(cl.id, sizeof(cl.id), r, i, 0);
		cl.active = cell_bool(r, i, 2);
		cl.admin = cell_bool(r, i, 3);
		copy_cell(cl.created, sizeof(cl.created), r, i, 4);
		copy_cell(cl.revoked, sizeof(cl.revoked), r, i, 5);
		print_client(PQgetvalue(r, i, 1), &cl);
		rc = list_client_rows(a, cl.id, PQgetvalue(r, i, 1));
	}
out:
	PQclear(r);
	return rc;
}

static int
cmd_revoke(struct adm *a, struct args *g)
{
	const char *name = g->pos[0];
	struct client cl;
	const char *pv[1];
	PGresult *r = NULL;
	int rc;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 1, &cl)) != 0)
		goto out;
	if (!cl.active) {
		rc = adm_fail("client %s is already revoked (since %s)", name, cl.revoked);
		goto out;
	}
	pv[0] = cl.id;
	r = db_q(a,
	    "UPDATE clients SET status = 'REVOKED', revoked_at = now() WHERE client_id = $1 "
	    "RETURNING rfc3339(revoked_at)",
	    1, pv);
	if (!db_ok(r) || PQntuples(r) != 1) {
		rc = db_fail(a, r, "revoking the client");
		goto out;
	}
	copy_cell(cl.revoked, sizeof(cl.revoked), r, 0, 0);
	cl.active = 0;
	if ((rc = db_commit(a)) != 0)
		goto out;
	print_client(name, &cl);
out:
	PQclear(r);
	return rc;
}

static int
cmd_add_credential(struct adm *a, struct args *g)
{
	const char *name = g->pos[0];
	struct client cl;
	int rc, i;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if (g->ncreds == 0)
		return adm_usage_fail(a->s, "give at least one credential option");
	if ((rc = refuse_legacy(name)) != 0)
		return rc;
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 0, &cl)) != 0 ||
	    (rc = refuse_revoked(name, &cl, "new credentials")) != 0)
		return rc;
	for (i = 0; i < g->ncreds; i++)
		if ((rc = cred_insert(a, cl.id, &g->creds[i])) != 0)
			return rc;
	if ((rc = db_commit(a)) != 0)
		return rc;
	for (i = 0; i < g->ncreds; i++)
		print_cred(name, g->creds[i].kind, g->creds[i].value, "", g->creds[i].created, "-");
	return 0;
}

static int
b64url_char(char c)
{
	return is_alnum(c) || c == '-' || c == '_';
}

static int
cmd_revoke_credential(struct adm *a, struct args *g)
{
	const char *name = g->pos[0], *kind = g->pos[1], *value = g->pos[2];
	char norm[ADM_VALUE_MAX + 1];
	const char *pv[3];
	struct client cl;
	PGresult *r = NULL;
	int rc, i, by_hint = 0;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if (!in_list(kind, adm_kinds, ARRAY_LEN(adm_kinds)))
		return adm_usage_fail(a->s,
		    "unknown credential kind %s (want mtls_uri, mtls_dns, mtls_sha256 or token)",
		    kind);
	if (strlen(value) > ADM_VALUE_MAX)
		return adm_usage_fail(a->s, "VALUE is longer than %d bytes", ADM_VALUE_MAX);
	snprintf(norm, sizeof(norm), "%s", value);
	if (strcmp(kind, "mtls_sha256") == 0 && norm_sha256(value, norm) < 0)
		return adm_usage_fail(a->s, "%s: want 64 hex digits (colons allowed)", value);
	if (strcmp(kind, "token") == 0) {
		/* By its hint, as `list` shows it, or by the token itself. */
		if (auth_token_wellformed(value, strlen(value))) {
			auth_token_hash(value, strlen(value), norm);
		} else {
			by_hint = strlen(value) == AUTH_TOKEN_HINT_LEN;
			for (i = 0; by_hint && value[i]; i++)
				by_hint = b64url_char(value[i]);
			if (!by_hint)
				return adm_usage_fail(a->s,
				    "a token is revoked by its %d-character hint (see `" ADM_PROG
				    " list`) or by the whole token",
				    AUTH_TOKEN_HINT_LEN);
		}
	}
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 1, &cl)) != 0)
		goto out;
	pv[0] = cl.id;
	pv[1] = kind;
	pv[2] = norm;
	r = db_q(a,
	    by_hint ? "UPDATE client_credentials SET revoked_at = now() WHERE client_id = $1 "
	              "AND kind = $2 AND hint = $3 AND revoked_at IS NULL "
	              "RETURNING value, hint, rfc3339(created_at), rfc3339(revoked_at)"
	            : "UPDATE client_credentials SET revoked_at = now() WHERE client_id = $1 "
	              "AND kind = $2 AND value = $3 AND revoked_at IS NULL "
	              "RETURNING value, hint, rfc3339(created_at), rfc3339(revoked_at)",
	    3, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "revoking the credential");
		goto out;
	}
	if (PQntuples(r) == 0) {
		if (strcmp(kind, "token") != 0)
			rc = adm_fail("client %s has no live %s credential %s", name, kind, norm);
		else if (by_hint)
			rc = adm_fail("client %s has no live token with hint %s", name, norm);
		else
			rc = adm_fail("client %s has no live token equal to the one given", name);
		goto out;
	}
	if (PQntuples(r) > 1) { /* nothing committed: the transaction rolls back */
		rc = adm_fail("hint %s matches %d live tokens of client %s: revoke by the whole "
		              "token, or use rotate-token",
		    norm, PQntuples(r), name);
		goto out;
	}
	if ((rc = db_commit(a)) != 0)
		goto out;
	print_cred(name, kind, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
	    PQgetvalue(r, 0, 3));
out:
	PQclear(r);
	return rc;
}

static int
cmd_grant(struct adm *a, struct args *g)
{
	const char *name = g->pos[0], *pattern = g->pos[1];
	const char *pv[4];
	const char *previous = "none";
	struct client cl;
	PGresult *r = NULL;
	int rc;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if (!valid_pattern(pattern))
		return adm_usage_fail(a->s,
		    "invalid PATTERN \"%s\" (want an account id, a prefix followed by '*', or '*': "
		    "up to 64 of A-Z a-z 0-9 . _ : -)",
		    pattern);
	if ((g->flags & (O_DEBIT | O_READ)) == 0)
		return adm_usage_fail(
		    a->s, "give --debit, --read or both (revoke-grant removes a grant)");
	/* With the lock: a re-grant may take a flag away. */
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 1, &cl)) != 0 ||
	    (rc = refuse_revoked(name, &cl, "new grants")) != 0)
		goto out;
	pv[0] = cl.id;
	pv[1] = pattern;
	pv[2] = (g->flags & O_DEBIT) ? "true" : "false";
	pv[3] = (g->flags & O_READ) ? "true" : "false";
	r = db_q(a,
	    "SELECT can_debit, can_read FROM account_grants "
	    "WHERE client_id = $1 AND account_pattern = $2",
	    2, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "reading the grant");
		goto out;
	}
	if (PQntuples(r) == 1)
		previous = flags_name(cell_bool(r, 0, 0), cell_bool(r, 0, 1));
	PQclear(r);
	r = db_q(a,
	    "INSERT INTO account_grants (client_id, account_pattern, can_debit, can_read) "
	    "VALUES ($1, $2, $3::boolean, $4::boolean) "
	    "ON CONFLICT (client_id, account_pattern) DO UPDATE "
	    "SET can_debit = EXCLUDED.can_debit, can_read = EXCLUDED.can_read "
	    "RETURNING rfc3339(created_at)",
	    4, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "granting");
		goto out;
	}
	if ((rc = db_commit(a)) != 0)
		goto out;
	printf("grant %s pattern=%s debit=%s read=%s created=%s previous=%s\n", name, pattern,
	    yes_no(g->flags & O_DEBIT), yes_no(g->flags & O_READ), PQgetvalue(r, 0, 0), previous);
out:
	PQclear(r);
	return rc;
}

static int
cmd_revoke_grant(struct adm *a, struct args *g)
{
	const char *name = g->pos[0], *pattern = g->pos[1];
	const char *pv[2];
	struct client cl;
	PGresult *r = NULL;
	int rc;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if (!valid_pattern(pattern))
		return adm_usage_fail(a->s, "invalid PATTERN \"%s\"", pattern);
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 1, &cl)) != 0)
		goto out;
	pv[0] = cl.id;
	pv[1] = pattern;
	r = db_q(a,
	    "DELETE FROM account_grants WHERE client_id = $1 AND account_pattern = $2 "
	    "RETURNING can_debit, can_read",
	    2, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "revoking the grant");
		goto out;
	}
	if (PQntuples(r) == 0) {
		rc = adm_fail("client %s has no grant on %s", name, pattern);
		goto out;
	}
	if ((rc = db_commit(a)) != 0)
		goto out;
	printf("grant %s pattern=%s deleted previous=%s\n", name, pattern,
	    flags_name(cell_bool(r, 0, 0), cell_bool(r, 0, 1)));
out:
	PQclear(r);
	return rc;
}

static int
cmd_rotate_token(struct adm *a, struct args *g)
{
	const char *name = g->pos[0];
	char tok[AUTH_TOKEN_LEN + 1] = "";
	struct cred cr;
	struct client cl;
	const char *pv[1];
	PGresult *r = NULL;
	int rc, i;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if ((rc = refuse_legacy(name)) != 0)
		return rc;
	if ((rc = token_cred(&cr, tok)) != 0)
		goto out;
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 1, &cl)) != 0 ||
	    (rc = refuse_revoked(name, &cl, "a new token")) != 0)
		goto out;
	pv[0] = cl.id;
	r = db_q(a,
	    "UPDATE client_credentials SET revoked_at = now() "
	    "WHERE client_id = $1 AND kind = 'token' AND revoked_at IS NULL "
	    "RETURNING hint, rfc3339(created_at), rfc3339(revoked_at), credential_id",
	    1, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "revoking the old tokens");
		goto out;
	}
	if ((rc = cred_insert(a, cl.id, &cr)) != 0 || (rc = db_commit(a)) != 0)
		goto out;
	for (i = 0; i < PQntuples(r); i++)
		print_cred(name, "token", "", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 2));
	print_cred(name, "token", "", cr.hint, cr.created, "-");
	print_token(tok);
out:
	explicit_bzero(tok, sizeof(tok));
	PQclear(r);
	return rc;
}

static int
cmd_set_limit(struct adm *a, struct args *g)
{
	const char *name = g->pos[0], *method = g->pos[1], *n = g->pos[2];
	int clear = (g->flags & O_CLEAR) != 0;
	char num[24], previous[24] = "none";
	const char *pv[3];
	struct client cl;
	PGresult *r = NULL;
	int64_t v = 0;
	int rc;

	if ((rc = check_name(a, name)) != 0)
		return rc;
	if (!in_list(method, adm_methods, ARRAY_LEN(adm_methods)))
		return adm_usage_fail(a->s,
		    "unknown METHOD %s (want AuthorizePayment, GetPayment or GetAccountBalance)",
		    method);
	if (clear && n != NULL)
		return adm_usage_fail(a->s, "give N or --clear, not both");
	if (!clear && n == NULL)
		return adm_usage_fail(a->s, "missing N (or --clear)");
	if (n != NULL && strcmp(n, "default") == 0)
		clear = 1;
	else if (n != NULL && util_parse_i64(n, 0, ADM_LIMIT_MAX, &v) < 0)
		return adm_usage_fail(a->s,
		    "N must be a whole number from 0 (unlimited) to %d, or \"default\"; got \"%s\"",
		    ADM_LIMIT_MAX, n);
	snprintf(num, sizeof(num), "%lld", (long long)v);
	if ((rc = db_cmd(a, "BEGIN", "starting the transaction")) != 0 ||
	    (rc = client_open(a, name, 0, &cl)) != 0)
		goto out;
	if (!clear && (rc = refuse_revoked(name, &cl, "new limits")) != 0)
		goto out;
	pv[0] = cl.id;
	pv[1] = method;
	pv[2] = num;
	r = db_q(a,
	    clear ? "DELETE FROM client_limits WHERE client_id = $1 AND method = $2 "
	            "RETURNING limit_per_window"
	          : "SELECT limit_per_window FROM client_limits "
	            "WHERE client_id = $1 AND method = $2",
	    2, pv);
	if (!db_ok(r)) {
		rc = db_fail(a, r, "reading the limit");
		goto out;
	}
	if (PQntuples(r) == 1)
		copy_cell(previous, sizeof(previous), r, 0, 0);
	if (clear && PQntuples(r) == 0) {
		rc = adm_fail("client %s has no limit for %s (it already uses RATE_LIMITS / "
		              "RATE_LIMIT_DEFAULT)",
		    name, method);
		goto out;
	}
	if (!clear) {
		PQclear(r);
		r = db_q(a,
		    "INSERT INTO client_limits (client_id, method, limit_per_window) "
		    "VALUES ($1, $2, $3::integer) ON CONFLICT (client_id, method) "
		    "DO UPDATE SET limit_per_window = EXCLUDED.limit_per_window",
		    3, pv);
		if (!db_ok(r)) {
			rc = db_fail(a, r, "setting the limit");
			goto out;
		}
	}
	if ((rc = db_commit(a)) != 0)
		goto out;
	if (clear)
		printf("limit %s method=%s deleted previous=%s\n", name, method, previous);
	else
		printf("limit %s method=%s limit=%s previous=%s\n", name, method, num, previous);
out:
	PQclear(r);
	return rc;
}

/* ---- dispatch ------------------------------------------------------- */

static int cmd_help(struct adm *a, struct args *g);

static const struct sub adm_subs[] = {
	{ "create",
	    "NAME [--admin] [--token] [--mtls-uri URI]... [--mtls-dns NAME]... "
	    "[--mtls-sha256 HEX]... [--mtls-cert FILE.pem]...",
	    { "NAME", NULL }, 1, O_ADMIN | O_TOKEN | O_CRED, cmd_create },
	{ "list", "[--json]", { NULL }, 0, O_JSON, cmd_list },
	{ "revoke", "NAME", { "NAME", NULL }, 1, 0, cmd_revoke },
	{ "add-credential",
	    "NAME (--mtls-uri URI | --mtls-dns NAME | --mtls-sha256 HEX | --mtls-cert "
	    "FILE.pem)...",
	    { "NAME", NULL }, 1, O_CRED, cmd_add_credential },
	{ "revoke-credential",
	    "NAME KIND VALUE   (KIND: mtls_uri mtls_dns mtls_sha256 token; a token by its hint)",
	    { "NAME", "KIND", "VALUE", NULL }, 3, 0, cmd_revoke_credential },
	{ "grant", "NAME PATTERN [--debit] [--read]   (PATTERN: ACCOUNT_ID, PREFIX* or *)",
	    { "NAME", "PATTERN", NULL }, 2, O_DEBIT | O_READ, cmd_grant },
	{ "revoke-grant", "NAME PATTERN", { "NAME", "PATTERN", NULL }, 2, 0, cmd_revoke_grant },
	{ "rotate-token", "NAME", { "NAME", NULL }, 1, 0, cmd_rotate_token },
	{ "set-limit",
	    "NAME METHOD (N | default | --clear)   (METHOD: AuthorizePayment GetPayment "
	    "GetAccountBalance; N per RATE_LIMIT_WINDOW_SECONDS, 0 = unlimited)",
	    { "NAME", "METHOD", "N", NULL }, 2, O_CLEAR, cmd_set_limit },
	{ "help", "", { NULL }, 0, 0, cmd_help },
};

static const struct sub *
adm_find_sub(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_LEN(adm_subs); i++)
		if (strcmp(adm_subs[i].name, name) == 0)
			return &adm_subs[i];
	return NULL;
}

static void
print_usage(FILE *f)
{
	size_t i;

	fputs("usage:\n", f);
	for (i = 0; i < ARRAY_LEN(adm_subs); i++)
		fprintf(f, "  " ADM_PROG " %s%s%s\n", adm_subs[i].name,
		    adm_subs[i].synopsis[0] ? " " : "", adm_subs[i].synopsis);
	fputs("Connects to DATABASE_URL. Exit status: 0 done, 1 refused or failed, 2 usage "
	      "error.\nSee docs/clients.md.\n",
	    f);
}

static int
cmd_help(struct adm *a, struct args *g)
{
	(void)a;
	(void)g;
	print_usage(stdout);
	return 0;
}

int
auth_admin_main(const struct config *cfg, int argc, char **argv)
{
	static const char *const kw[] = { "application_name", "dbname", NULL };
	const char *val[3] = { "paymentd-client", cfg->database_url, NULL };
	struct adm a = { NULL, NULL, 0 };
	struct args g;
	int rc;

	if (argc < 1) {
		print_usage(stderr);
		return 2;
	}
	a.s = adm_find_sub(
	    strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ? "help" : argv[0]);
	if (a.s == NULL) {
		fprintf(stderr, ADM_PROG ": unknown command %s\n", argv[0]);
		print_usage(stderr);
		return 2;
	}
	if ((rc = parse_args(a.s, argc - 1, argv + 1, &g)) != 0)
		return rc < 0 ? 0 : rc;
	if (a.s->run == cmd_help)
		return cmd_help(&a, &g);
	auth_token_init();
	/* The connection string's own application_name, if any, wins. */
	a.c = PQconnectdbParams(kw, val, 1);
	if (PQstatus(a.c) != CONNECTION_OK) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(a.c));
		msg[strcspn(msg, "\n")] = '\0';
		rc = adm_fail("cannot connect to the database (DATABASE_URL): %s", msg);
	} else {
		/* Migrations' NOTICEs are not this tool's output. */
		rc = db_cmd(&a, "SET client_min_messages = warning", "configuring the session");
		if (rc == 0)
			rc = a.s->run(&a, &g);
	}
	/* Closing without COMMIT rolls back whatever a refusal left open. */
	PQfinish(a.c);
	explicit_bzero(&g, sizeof(g));
	if (fflush(stdout) != 0 && rc == 0)
		rc = adm_fail("writing the output: %s", strerror(errno));
	return rc;
}
