/* SPDX-License-Identifier: MIT */
/*
 * sb_client.c — the supervisor and client side of the sandbox tests (see
 * sb_test.h): spawns workers (fork + exec of this program, so grpc starts
 * clean in each), accepts a loopback TCP connection made by a grpc core
 * client channel and hands it to the worker over SCM_RIGHTS, exactly as
 * paymentd's supervisor does, then drives unary calls.
 */
#include "sb_test.h"
#include "sup/sup_proto.h"
#include "tests/lib/testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

struct sbw_env sb_env;

/* Reads one message from the control socket within timeout_ms. */
static ssize_t
ctl_read(int fd, char *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	n = read(fd, buf, len - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

int
sbw_spawn(struct sbw *w, const char *mode, const char *arg, int debug, char *msg, size_t msglen)
{
	int ctl[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char buf[512];
	ssize_t n;

	memset(w, 0, sizeof(*w));
	w->pid = -1;
	w->ctl = w->errfd = -1;
	msg[0] = '\0';
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) < 0 ||
	    pipe2(errp, O_CLOEXEC) < 0)
		return -1;
	w->pid = fork();
	if (w->pid < 0)
		return -1;
	if (w->pid == 0) {
		char *argv[5] = { (char *)"sb_test", (char *)"--worker", (char *)mode,
			(char *)(arg ? arg : ""), NULL };
		/* dup2 clears CLOEXEC on the copies the worker keeps. */
		if (dup2(ctl[1], SB_CTL_FD) < 0 || dup2(errp[1], STDERR_FILENO) < 0)
			_exit(120);
		setenv("SB_DEBUG", debug ? "1" : "0", 1);
		setenv("SB_USER", sb_env.user, 1);
		setenv("SB_CHROOT", sb_env.chroot_dir, 1);
		if (sb_env.relay_dir)
			setenv("SB_RELAY_DIR", sb_env.relay_dir, 1);
		/* SB_STRACE_DIR=dir: run the worker under `strace -f` (one
		 * trace per worker) to see what it calls after the lock-down —
		 * how the allowlist was built; see docs/sandbox.md. */
		if (getenv("SB_STRACE_DIR") != NULL) {
			char out[512], self[512];
			ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
			char *sargv[] = { (char *)"strace", (char *)"-f", (char *)"-o", out, self,
				argv[1], argv[2], argv[3], NULL };
			if (sl <= 0)
				_exit(122);
			self[sl] = '\0';
			snprintf(out, sizeof(out), "%s/%s.%d", getenv("SB_STRACE_DIR"), mode,
			    (int)getpid());
			execvp("strace", sargv);
			_exit(123);
		}
		execv("/proc/self/exe", argv);
		_exit(121);
	}
	close(ctl[1]);
	close(errp[1]);
	w->ctl = ctl[0];
	w->errfd = errp[0];
	fcntl(w->errfd, F_SETFL, O_NONBLOCK);
	n = ctl_read(w->ctl, buf, sizeof(buf), 20000);
	if (n <= 0) {
		snprintf(msg, msglen, "worker sent nothing");
		return -1;
	}
	if (buf[0] == 'R')
		return 0;
	snprintf(msg, msglen, "%s", buf[0] == 'E' ? buf + 1 : buf);
	return 1;
}

int
sbw_wait(struct sbw *w, int timeout_ms)
{
	if (w->reaped)
		return 0;
	if (w->pid <= 0 || tl_wait(w->pid, timeout_ms, &w->status) < 0)
		return -1;
	w->reaped = 1;
	return 0;
}

void
sbw_destroy(struct sbw *w)
{
	if (w->pid > 0 && !w->reaped) {
		kill(w->pid, SIGKILL);
		sbw_wait(w, 5000);
	}
	if (w->ctl >= 0)
		close(w->ctl);
	if (w->errfd >= 0)
		close(w->errfd);
	w->ctl = w->errfd = -1;
}

size_t
sbw_stderr(struct sbw *w, char *buf, size_t len)
{
	size_t have = strlen(buf);
	ssize_t n;

	while (have + 1 < len && (n = read(w->errfd, buf + have, len - 1 - have)) > 0)
		have += (size_t)n;
	buf[have] = '\0';
	return have;
}

int
sbw_ctl_op(struct sbw *w, const char *op, char *reply, size_t len)
{
	reply[0] = '\0';
	if (write(w->ctl, op, strlen(op)) != (ssize_t)strlen(op))
		return -1;
	return ctl_read(w->ctl, reply, len, 10000) > 0 ? 0 : -1;
}

int
sbc_open(struct sbc *c)
{
	grpc_channel_credentials *creds;
	char target[64];

	memset(c, 0, sizeof(*c));
	c->lfd = tl_listen(&c->port); /* a port of the harness's block */
	snprintf(target, sizeof(target), "127.0.0.1:%d", c->port);
	creds = grpc_insecure_credentials_create();
	c->ch = grpc_channel_create(target, creds, NULL);
	grpc_channel_credentials_release(creds);
	return c->ch != NULL ? 0 : -1;
}

void
sbc_close(struct sbc *c)
{
	if (c->ch != NULL)
		grpc_channel_destroy(c->ch);
	if (c->lfd >= 0)
		close(c->lfd);
	c->ch = NULL;
	c->lfd = -1;
}

/* The supervisor's half of the hand-off, with the real frame code. */
static int
pass_connection(struct sbc *c, struct sbw *w)
{
	struct pollfd p = { c->lfd, POLLIN, 0 };
	int fd, rc;

	if (poll(&p, 1, 10000) != 1)
		return -1;
	fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = sup_proto_send_client(w->ctl, fd, "ipv4:127.0.0.1:1", 0);
	close(fd);
	return rc;
}

grpc_status_code
sbc_call(struct sbc *c, struct sbw *w, const char *payload, char *reply, size_t rlen)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice body = grpc_slice_from_copied_string(payload);
	grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&body, 1), *resp = NULL;
	grpc_metadata_array init_md, trail_md;
	grpc_slice details = grpc_empty_slice();
	grpc_status_code st = GRPC_STATUS_UNKNOWN;
	gpr_timespec deadline = gpr_time_add(
	    gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(15, GPR_TIMESPAN));
	grpc_op ops[6];
	grpc_call *call;
	grpc_event ev;

	reply[0] = '\0';
	grpc_slice_unref(body);
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
	    grpc_slice_from_static_string(SB_METHOD), NULL, deadline, NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &st;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
		st = GRPC_STATUS_INTERNAL;
		goto out;
	}
	/* The channel connects on its first call: accept it and hand it over
	 * while the call waits for the worker. */
	if (!c->passed) {
		if (pass_connection(c, w) < 0) {
			grpc_call_cancel(call, NULL);
			snprintf(reply, rlen, "hand-off failed");
		}
		c->passed = 1;
	}
	ev = grpc_completion_queue_pluck(cq, (void *)1, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE)
		st = GRPC_STATUS_INTERNAL;
	if (resp != NULL) {
		grpc_byte_buffer_reader rd;
		if (grpc_byte_buffer_reader_init(&rd, resp)) {
			grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
			size_t n = GRPC_SLICE_LENGTH(s) < rlen - 1 ? GRPC_SLICE_LENGTH(s)
			                                           : rlen - 1;
			memcpy(reply, GRPC_SLICE_START_PTR(s), n);
			reply[n] = '\0';
			grpc_slice_unref(s);
			grpc_byte_buffer_reader_destroy(&rd);
		}
		grpc_byte_buffer_destroy(resp);
	}
out:
	grpc_call_unref(call);
	grpc_byte_buffer_destroy(req);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_slice_unref(details);
	grpc_completion_queue_shutdown(cq);
	while (
	    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return st;
}
