/* SPDX-License-Identifier: MIT */
/*
 * sup_proto.h — the whole supervisor <-> child protocol, in one place (as
 * Postfix's master_proto.h): how a worker is started, which descriptors it
 * gets, every byte either side writes on the control channel, the client
 * hand-off frame, and every exit code with what the supervisor does about it.
 *
 * Starting a worker. The supervisor (root) forks; the child, still in the
 * supervisor's image and running libc code only, drops to PAYMENTD_USER
 * keeping CAP_SYS_CHROOT alone (sandbox_pre_exec), arranges the descriptors
 * below and execs paymentd-worker. The worker therefore gets a fresh address
 * space and ASLR layout, and root never runs a line of grpc: libgrpc's
 * constructors run in an unprivileged process. The worker connects to
 * Postgres and Redis, starts grpc, then chroots with its one capability,
 * drops it and installs its seccomp filter (sup_lockdown) before it sends
 * SUP_MSG_READY.
 *
 *   fd  name               what
 *   0   -                  /dev/null
 *   1,2 -                  the supervisor's stdout/stderr (logs)
 *   3   SUP_FD_CTL         control channel: AF_UNIX SOCK_STREAM socketpair
 *   4   SUP_FD_METRICS     memfd of the shared metrics region (metrics.h)
 *   5   SUP_FD_CONFIG      memfd holding a struct sup_config_blob
 *   6   SUP_FD_TLS         TLS=on only: sealed memfd, struct sup_tls_blob
 *                          (certificate chain, client CA bundle, session
 *                          ticket keys) — public material only
 *   7   SUP_FD_KEY         TLS=on only: this worker's own channel to the
 *                          key-holder (AF_UNIX SOCK_SEQPACKET), which makes
 *                          the one private-key signature of its handshake
 *   8   SUP_FD_STATUS      memfd of this worker's struct sup_status page,
 *                          written by the worker, read by the supervisor
 *   argv = { "paymentd-worker", NULL }; the environment is the supervisor's.
 * Nothing else is open (the child closes every other descriptor).
 *
 * Control channel, worker -> supervisor (single bytes):
 *   'R' SUP_MSG_READY  set up and sandboxed, Postgres connected: send a client
 *   'D' SUP_MSG_NODB   set up and sandboxed, Postgres unreachable: it answers
 *                      NOT_SERVING; the supervisor picks it only as a last
 *                      resort
 *   'B' SUP_MSG_BUSY   took its client fd, before reading a byte of it; until
 *                      then the supervisor keeps its own copy and hands the
 *                      connection to another worker if this one dies
 *   'P' SUP_MSG_POOLED the client closed (or was reclaimed) before sending a
 *                      single byte: the worker has seen no client input and
 *                      is idle in the pool again, exactly as after READY
 *   'A' SUP_MSG_ABUSE  the frame guard cut its client off (GOAWAY
 *                      ENHANCE_YOUR_CALM): the supervisor refuses that
 *                      address for ABUSE_PENALTY_SECONDS (sup_door.c)
 * Anything else is a protocol violation: the supervisor logs it and kills the
 * worker (SIGKILL, counted as reason "protocol").
 *
 * Control channel, supervisor -> worker (one sendmsg each, SCM_RIGHTS with
 * exactly one descriptor, the client socket):
 *   'F' SUP_MSG_FD      a new client connection
 *   'H' SUP_MSG_HANDED  a connection handed on after the worker it was sent
 *                       to died before acknowledging it (logged)
 *   followed by the peer address, 0..SUP_PEER_MAX-1 bytes, no NUL (e.g.
 *   "ipv4:10.0.0.7:5555"): a sandboxed worker may not call getpeername(2).
 * A frame with another first byte, no descriptor, more than one, or a longer
 * peer is rejected: the worker logs it and exits SUP_EXIT_IPC.
 *
 * Signals, supervisor -> worker:
 *   SIGTERM  drain: GOAWAY, finish in-flight RPCs, exit SUP_EXIT_OK
 *   SIGUSR1  reclaim (stress mode: every worker is taken and a new client
 *            waits): sent only to a worker whose status page shows no RPC
 *            in flight; it sends GOAWAY at once and exits without lingering
 *            (or, if it has read no client byte yet, answers SUP_MSG_POOLED)
 *   SIGKILL  protocol violation, or the CPU budget was burnt (see below)
 *
 * The status page (SUP_FD_STATUS) is one page per worker, shared: the worker
 * stores, the supervisor only loads. It carries hints (a compromised worker
 * can lie in it, and hurts only itself by doing so): RPCs in flight and
 * completed, when the last one ended. The CPU budget is measured by the
 * kernel (/proc/PID/stat), not by the worker: a worker whose CPU time grows
 * by WORKER_CPU_BUDGET_SECONDS while its completed count stands still is
 * killed (worker_exits_total{reason="cpu_budget"}).
 *
 * Exit codes of a worker (the supervisor's reap() is the only reader):
 *   code  name               meaning                          supervisor action
 *   0     SUP_EXIT_OK        connection served and closed      none
 *                            (client gone, idle, max age, drain)
 *   10    SUP_EXIT_DB_LOST   Postgres connection died; clients refill the pool at most
 *                            got UNAVAILABLE and a GOAWAY      once a second (connections
 *                                                              are still served at once)
 *   11    SUP_EXIT_DB_DOWN   could not connect to Postgres at  same as 10
 *                            start; served NOT_SERVING, then
 *                            GOAWAY (or, idle in the pool,
 *                            exits after 1 s to retry)
 *   12    SUP_EXIT_RL_DOWN   idle in the pool and its Redis    same as 10
 *                            connection died
 *   20    SUP_EXIT_IPC       control channel closed or a       none (the supervisor is
 *                            malformed frame                   likely exiting)
 *   70    SUP_EXIT_SOFTWARE  internal error (grpc setup, OOM,  count as crash, throttle
 *                            bad descriptors or config blob)
 *   77    SUP_EXIT_SANDBOX   privilege drop/seccomp failed     fail closed: the supervisor
 *                                                              drains and exits 1
 *   signal SIGSYS            seccomp killed it (violation)     log ERROR, count, throttle
 *   other signals            crash (or kill -9 by an operator) count, throttle if it
 *                                                              died before READY
 * Any exit before SUP_MSG_BUSY for its client: the supervisor hands the
 * connection to another worker (at most SUP_MAX_HANDOFF_HOPS times). It
 * reads what is left on a dead worker's channel first, so a BUSY (or ABUSE)
 * sent just before the exit still counts.
 *
 * The metrics exporter, the log forwarder and the janitor are forked (not
 * exec'd: they run no grpc) and have exit codes of their own:
 * SUP_EXPORTER_EXIT_*, SUP_LOGFWD_EXIT_* and SUP_JAN_EXIT_* (the janitor's
 * section, below). A SANDBOX exit of any of them is final (not restarted).
 */
#ifndef PAYMENTD_SUP_PROTO_H
#define PAYMENTD_SUP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* Descriptors of an exec'd worker. */
#define SUP_FD_CTL               3
#define SUP_FD_METRICS           4
#define SUP_FD_CONFIG            5
#define SUP_FD_TLS               6
#define SUP_FD_KEY               7
#define SUP_FD_STATUS            8
#define SUP_FD_LAST              SUP_FD_STATUS
#define SUP_WORKER_EXE           "paymentd-worker"
#define SUP_WORKER_TESTHOOKS_EXE "paymentd-worker-testhooks"

/* Worker -> supervisor. */
#define SUP_MSG_READY  'R'
#define SUP_MSG_NODB   'D'
#define SUP_MSG_BUSY   'B'
#define SUP_MSG_POOLED 'P'
#define SUP_MSG_ABUSE  'A'
/* Supervisor -> worker. */
#define SUP_MSG_FD     'F'
#define SUP_MSG_HANDED 'H'

/* Room for the peer address of a hand-off frame, NUL included. */
#define SUP_PEER_MAX         96
#define SUP_MAX_HANDOFF_HOPS 3

/* Worker exit codes. */
#define SUP_EXIT_OK       0
#define SUP_EXIT_DB_LOST  10
#define SUP_EXIT_DB_DOWN  11
#define SUP_EXIT_RL_DOWN  12
#define SUP_EXIT_IPC      20
#define SUP_EXIT_SOFTWARE 70
#define SUP_EXIT_SANDBOX  77

/* Metrics exporter exit codes. */
#define SUP_EXPORTER_EXIT_OK       0
#define SUP_EXPORTER_EXIT_SOFTWARE 70
#define SUP_EXPORTER_EXIT_SANDBOX  77

/* Log forwarder exit codes. */
#define SUP_LOGFWD_EXIT_OK      0
#define SUP_LOGFWD_EXIT_SANDBOX 77

/* ---- janitor (daemon/jan/) -------------------------------------------
 * One process (JANITOR=on, the default) that expires holds past
 * hold_expires_at and deletes expired idempotency and operation keys, in
 * bounded batches (migrations/0009_janitor.sql). The supervisor forks it
 * after the exporter; it runs libpq only, in the supervisor's image, and
 * inherits the shared metrics mapping (its counters, metrics.h). It has no
 * control channel and is handed no descriptor: it closes everything but
 * stdio, so it holds no listening socket and no worker channel.
 *
 * Start, as a worker but without the exec: signals reset (handlers only
 * set flags), PR_SET_NAME "paymentd-jan"; as root with SANDBOX=on it drops
 * to PAYMENTD_USER keeping CAP_SYS_CHROOT alone (sandbox_pre_exec), arms
 * PR_SET_PDEATHSIG, opens its ONE Postgres connection (application_name
 * paymentd-janitor; as the unprivileged user, before the chroot, like a
 * worker: no resolver or socket files inside it), then locks down with
 * SANDBOX_JANITOR: chroot to PAYMENTD_CHROOT (empty), chdir, capabilities
 * gone, RLIMIT_NOFILE SUP_JAN_MAX_FDS, no_new_privs, a seccomp profile
 * with no socket, connect, open, fork or exec at all. Like a worker it
 * therefore cannot reconnect: a lost connection ends it and the
 * supervisor starts a new one.
 *
 * Signals, supervisor -> janitor: SIGTERM (drain, shutdown): the statement
 * in flight finishes (bounded by statement_timeout; a batch is one
 * transaction, so SIGKILL at any point loses nothing), then exit 0.
 *
 * Exit codes (the supervisor's reap() is the only reader):
 *   code  name                  meaning                     supervisor action
 *   0     SUP_JAN_EXIT_OK       SIGTERM, supervisor gone    restart unless draining
 *   10    SUP_JAN_EXIT_DB_LOST  its connection died         restart, backoff
 *   11    SUP_JAN_EXIT_DB_DOWN  no Postgres at start        restart, backoff
 *   70    SUP_JAN_EXIT_SOFTWARE internal error              restart, backoff
 *   77    SUP_JAN_EXIT_SANDBOX  lock-down failed            final: logged CRITICAL,
 *                                                           not restarted
 *   signal (SIGKILL, SIGSYS, crash)                         restart, backoff
 * Backoff: a restart waits SUP_JAN_RESTART_MIN_MS, doubling with every
 * death up to SUP_JAN_RESTART_MAX_MS; it starts over at the minimum once a
 * janitor has lived SUP_JAN_HEALTHY_MS. So a Postgres outage costs one
 * connection attempt per SUP_JAN_RESTART_MAX_MS, never a crash loop, and
 * the janitor is back within that much of Postgres coming back.
 * At shutdown the supervisor waits SUP_JAN_STOP_MS for it after SIGTERM,
 * then kills it.
 */
#define SUP_JAN_EXIT_OK        0
#define SUP_JAN_EXIT_DB_LOST   10
#define SUP_JAN_EXIT_DB_DOWN   11
#define SUP_JAN_EXIT_SOFTWARE  70
#define SUP_JAN_EXIT_SANDBOX   77
#define SUP_JAN_RESTART_MIN_MS 250
#define SUP_JAN_RESTART_MAX_MS 4000
#define SUP_JAN_HEALTHY_MS     10000
#define SUP_JAN_STOP_MS        3000
#define SUP_JAN_MAX_FDS        16
/* ---- end of janitor ---------------------------------------------------- */

/* The configuration a worker runs with, as the supervisor loaded it (the
 * worker cannot re-read ENV_FILE: it may be readable by root only). Both
 * binaries come from one build; magic, size and version catch a mismatch. */
#define SUP_CONFIG_MAGIC "PDCFG001"
struct sup_config_blob {
	char magic[8];
	uint32_t size; /* sizeof(struct config) */
	char version[32];
	struct config cfg;
};

/* A worker's status page (SUP_FD_STATUS). Fields are written with relaxed
 * atomic stores by the worker and read the same way by the supervisor. */
#define SUP_STATUS_MAGIC 0x50445354u /* "PDST" */
struct sup_status {
	uint32_t magic;
	uint32_t phase;        /* SUP_PHASE_* */
	int64_t conn_start_ms; /* CLOCK_MONOTONIC ms the client was taken */
	int64_t last_rpc_ms;   /* last RPC start or end (monotonic ms) */
	uint64_t rpcs_done;    /* RPCs completed on this connection */
	int32_t inflight;      /* RPCs in flight (unary + reflection; not Watch) */
	int32_t pad;
};
#define SUP_PHASE_POOL    0 /* waiting for a client */
#define SUP_PHASE_FRONT   1 /* client taken, TLS / preface not done */
#define SUP_PHASE_SERVING 2 /* HTTP/2 up, serving RPCs */
#define SUP_PHASE_CLOSING 3 /* GOAWAY sent */

/* The TLS material of a worker (SUP_FD_TLS): a header, then cert_len bytes
 * of PEM certificate chain, then ca_len bytes of PEM CA bundle (0: none).
 * Public material only; the private key stays with the key-holder. */
#define SUP_TLS_MAGIC      "PDTLS001"
#define SUP_TLS_TICKET_LEN 80 /* OpenSSL's SSL_CTX_set_tlsext_ticket_keys */
#define SUP_TLS_MAX_PEM    (1u << 20)
struct sup_tls_blob {
	char magic[8];
	uint32_t cert_len;
	uint32_t ca_len;
	uint64_t generation; /* bumps on every SIGHUP reload */
	unsigned char ticket_keys[SUP_TLS_TICKET_LEN];
};

/* ---- key-holder channel (SUP_FD_KEY) -------------------------------
 * (the key-holder's own section: its start, descriptors, the request and
 * reply of a signature, its budget and exit codes)
 *
 * The TLS private key never enters a worker (the OpenSSH monitor and
 * relayd's "ca" process pattern): paymentd-keyholder (daemon/kh/) holds it
 * and makes the one signature of each worker's handshake.
 *
 * Starting it (daemon/sup/sup_kh.c; TLS=on only). The supervisor (root)
 * opens TLS_KEY_FILE and TLS_CERT_FILE (O_RDONLY | O_CLOEXEC) and keeps
 * both open, so that a restarted key-holder gets the same key even if the
 * file changed on disk (only SIGHUP picks up a new one). It forks; the child
 * drops to PAYMENTD_USER keeping CAP_SYS_CHROOT alone (sandbox_pre_exec, as
 * a worker) and execs paymentd-keyholder (beside paymentd, else in
 * PAYMENTD_LIBEXEC_DIR) with
 *
 *   fd  name                 what
 *   0   -                    /dev/null
 *   1,2 -                    the supervisor's stdout/stderr (logs)
 *   3   SUP_KH_FD_CTL        control: AF_UNIX SOCK_SEQPACKET to the supervisor
 *   4   SUP_KH_FD_KEYFILE    TLS_KEY_FILE (read with pread from offset 0)
 *   5   SUP_FD_CONFIG        the config blob, exactly as a worker's
 *   6   SUP_KH_FD_CERTFILE   TLS_CERT_FILE (leaf first)
 *   argv = { "paymentd-keyholder", NULL }. Nothing else is open.
 *
 * The key-holder reads the PEM key (RSA or EC; an encrypted key is
 * refused), checks that it is the leaf certificate's, closes 4 and 6, wipes
 * its copies of the PEM text, makes one signature to warm up the DRBG, then
 * locks down: SANDBOX_KEYHOLDER, chrooted into CHROOT_DIR, not dumpable,
 * RLIMIT_NOFILE MAX_WORKERS + SUP_KH_SPARE_FDS. Then it sends
 * SUP_KH_MSG_READY. sup_kh_start() and sup_kh_reload() wait up to
 * SUP_KH_START_MS for it, so a bad key or a key that does not match the
 * certificate fails the start (or the reload, keeping the old key-holder).
 *
 * Control channel (one message = one SEQPACKET record):
 *   key-holder -> supervisor:
 *     'R' SUP_KH_MSG_READY  1 byte, once: key loaded, sandboxed
 *     'S' SUP_KH_MSG_SPENT  9 bytes: 'S' + the uint64_t inode number
 *                           (fstat st_ino) of a channel whose budget is now
 *                           spent; sent before the reply that spends it, so
 *                           a restarted key-holder never grants it again
 *     anything else: the supervisor logs it and kills the key-holder.
 *   supervisor -> key-holder (exactly one descriptor, SCM_RIGHTS, the
 *   key-holder's end of one worker's channel):
 *     'C' SUP_KH_MSG_CHANNEL  a channel with its budget intact
 *     'X' SUP_KH_MSG_SPENT_CHANNEL  a channel re-sent to a restarted (or
 *                           reloaded) key-holder whose budget is spent
 *     end of file: the supervisor is gone; the key-holder exits.
 * The supervisor keeps its copy of the key-holder's end of every live
 * channel (until the worker is reaped) to re-send it to a new key-holder;
 * it never reads or writes a byte of a channel itself.
 *
 * Channel (the worker's SUP_FD_KEY; AF_UNIX SOCK_SEQPACKET). The worker
 * sends one struct sup_kh_req, exactly sizeof bytes and no descriptor; the
 * key-holder answers with one struct sup_kh_rep. Requests are checked
 * strictly: version SUP_KH_VERSION; alg must be that of the loaded key;
 *   SUP_KH_ALG_ECDSA     data = a digest, len 32, 48 or 64; the reply is
 *                        the DER ECDSA-Sig-Value
 *   SUP_KH_ALG_RSA_PSS   data = the modulus-size block OpenSSL hands to a
 *                        raw private operation for RSASSA-PSS; it must be
 *                        a complete EMSA-PSS encoding (0xbc trailer, top
 *                        bits clear, unmasked DB = zeros 0x01 salt, hash
 *                        SHA-256/384/512 with salt length = hash length, as
 *                        TLS uses): a raw RSA operation on anything else
 *                        (a recorded RSA key exchange, blinded) would be a
 *                        decryption oracle. Reply: the block^d, modulus size
 *   SUP_KH_ALG_RSA_PKCS1 data = a DigestInfo (SHA-1/224/256/384/512) of at
 *                        most SUP_KH_RSA_DIGESTINFO_MAX bytes; the key-holder
 *                        adds the PKCS#1 v1.5 type 1 padding itself
 * and the bytes of data past len must be zero. A malformed request (size,
 * descriptors, version, alg, len, shape) closes the channel (shutdown, so
 * the worker sees end of file) and is logged as a warning.
 *
 * Budget: SUP_KH_SIGNS_PER_CHANNEL signatures per channel. A worker serves
 * one connection and TLS renegotiation is off, so one full handshake needs
 * one signature (a resumed one none). A request beyond the budget is
 * logged as abuse (ERROR, with the count) and the channel is cut off.
 * A worker waits at most SUP_KH_TIMEOUT_MS for a reply.
 *
 * Exit codes of the key-holder (sup_kh_reaped() is the only reader):
 *   0  SUP_KH_EXIT_OK       SIGTERM or the supervisor gone   none
 *   2  SUP_KH_EXIT_USAGE    not started by paymentd          -
 *   65 SUP_KH_EXIT_KEY      key unreadable, unsupported,     at start/reload:
 *                           encrypted or not the cert's      refused; later:
 *                                                            restart, throttled
 *   70 SUP_KH_EXIT_SOFTWARE internal error                   restart, throttled
 *   77 SUP_KH_EXIT_SANDBOX  privilege drop/seccomp failed    fail closed
 *   signal (SIGSYS, SIGKILL, crash)                          restart, throttled
 * A restart is immediate when the key-holder had run for SUP_KH_RESTART_MS,
 * else SUP_KH_RESTART_MS after its start (one that keeps dying starts at
 * most once per SUP_KH_RESTART_MS); every live channel is re-sent to the
 * new key-holder ('C' or 'X'). Requests a worker made meanwhile wait in
 * its channel and are answered by the new key-holder.
 */
#define SUP_KH_EXE               "paymentd-keyholder"
#define SUP_KH_FD_CTL            3
#define SUP_KH_FD_KEYFILE        4
#define SUP_KH_FD_CERTFILE       6
#define SUP_KH_SPARE_FDS         16
#define SUP_KH_MSG_READY         'R'
#define SUP_KH_MSG_SPENT         'S'
#define SUP_KH_MSG_CHANNEL       'C'
#define SUP_KH_MSG_SPENT_CHANNEL 'X'
#define SUP_KH_START_MS          5000
#define SUP_KH_RESTART_MS        1000
#define SUP_KH_TIMEOUT_MS        2000

#define SUP_KH_VERSION            1
#define SUP_KH_ALG_ECDSA          1
#define SUP_KH_ALG_RSA_PSS        2
#define SUP_KH_ALG_RSA_PKCS1      3
#define SUP_KH_MAX_DATA           512 /* RSA-4096 */
#define SUP_KH_RSA_DIGESTINFO_MAX 83  /* SHA-512: 19 + 64 */
#define SUP_KH_SIGNS_PER_CHANNEL  1
#define SUP_KH_STATUS_OK          0
#define SUP_KH_STATUS_FAILED      1 /* the key-holder's own signing error */

struct sup_kh_req {
	uint8_t version;
	uint8_t alg;
	uint16_t len; /* host order: both ends run on one machine */
	uint8_t data[SUP_KH_MAX_DATA];
};
struct sup_kh_rep {
	uint8_t status;
	uint8_t pad;
	uint16_t len;
	uint8_t sig[SUP_KH_MAX_DATA];
};

#define SUP_KH_EXIT_OK       0
#define SUP_KH_EXIT_USAGE    2
#define SUP_KH_EXIT_KEY      65
#define SUP_KH_EXIT_SOFTWARE 70
#define SUP_KH_EXIT_SANDBOX  77
/* ---- end of key-holder channel --------------------------------------- */

/* 1 if b is a byte a worker may send, else 0. */
int sup_proto_worker_byte_ok(char b);

/* Sends a client socket (not consumed) with its peer address. 0 or -1. */
int sup_proto_send_client(int ctl, int fd, const char *peer, int handed_on);

/* Receives one hand-off frame. Returns 1 with *fd, peer (NUL-terminated)
 * and *handed_on filled; 0 on end of file; -1 on a read error (errno);
 * -2 on a malformed frame (any descriptor that came with it is closed). */
int sup_proto_recv_client(int ctl, int *fd, char peer[SUP_PEER_MAX], int *handed_on);

/* Writes the TLS blob (header + cert + ca) into a new sealed memfd; returns
 * it, or -1 with err. read: maps fd and returns malloc'd copies of the two
 * PEM texts (NUL-terminated; *ca NULL when none) and the header. */
int sup_proto_tls_fd(
    const struct sup_tls_blob *hdr, const char *cert, const char *ca, char *err, size_t errlen);
int sup_proto_tls_read(
    int fd, struct sup_tls_blob *hdr, char **cert, char **ca, char *err, size_t errlen);

/* Writes cfg into a new sealed memfd; returns it, or -1 with err. */
int sup_proto_config_fd(const struct config *cfg, char *err, size_t errlen);
/* Reads and checks the blob on fd into *cfg. 0, or -1 with err. */
int sup_proto_config_read(int fd, struct config *cfg, char *err, size_t errlen);

#endif
