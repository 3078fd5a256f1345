/* SPDX-License-Identifier: MIT */
/*
 * kafka_mock.c — a Kafka-protocol test broker: librdkafka's mock cluster
 * run as its own process on loopback, with a control channel for faults.
 *
 *   kafka-mock [--brokers N] [--bootstrap-file PATH] [--control PATH]
 *
 * Prints the bootstrap address ("127.0.0.1:PORT,...") on stdout (and into
 * --bootstrap-file), creates the paymentd topics, then serves until SIGTERM
 * or "quit". The control channel is a unix stream socket taking one
 * command per line and answering "ok" or "error: ...":
 *   down <broker-id>            broker stops answering (connections drop)
 *   up <broker-id>              broker is back
 *   rtt <broker-id> <ms>        add round-trip latency
 *   err <apikey> <errcode> <n>  next n requests of that API fail with errcode
 *                               (apikey 0 = Produce; e.g. err 0 10 1 for
 *                               MSG_SIZE_TOO_LARGE)
 *   ping | quit
 * `kafka-mock ctl PATH COMMAND...` sends one command and prints the answer
 * (so shell tests need no netcat).
 * Limits (librdkafka's, not ours): data lives in memory only, and
 * transaction isolation is ignored. The mock keeps running across client
 * restarts, which is what relay crash tests need.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "wal/relay_envelope.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
reply(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0) { /* client gone */
	}
}

/* A whole decimal int in lo..hi (atoi/sscanf would take "1x" as 1). */
static int
int_arg(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static void
command(rd_kafka_mock_cluster_t *mc, int fd, char *line)
{
	int arg[3] = { 0, 0, 0 }, n = 0, a, b, c;
	char *cmd, *tok, *save = NULL;
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

	if ((cmd = strtok_r(line, " \t\r", &save)) == NULL) {
		reply(fd, "error: empty command\n");
		return;
	}
	while ((tok = strtok_r(NULL, " \t\r", &save)) != NULL) {
		if (n == 3 || int_arg(tok, INT_MIN, INT_MAX, &arg[n]) < 0) {
			reply(fd, "error: arguments must be up to three integers\n");
			return;
		}
		n++;
	}
	a = arg[0];
	b = arg[1];
	c = arg[2];
	if (strcmp(cmd, "down") == 0)
		e = rd_kafka_mock_broker_set_down(mc, a);
	else if (strcmp(cmd, "up") == 0)
		e = rd_kafka_mock_broker_set_up(mc, a);
	else if (strcmp(cmd, "rtt") == 0)
		e = rd_kafka_mock_broker_set_rtt(mc, a, b);
	else if (strcmp(cmd, "err") == 0) {
		rd_kafka_resp_err_t errs[64];
		int i;
		if (c < 1 || c > 64) {
			reply(fd, "error: count must be 1..64\n");
			return;
		}
		for (i = 0; i < c; i++)
			errs[i] = (rd_kafka_resp_err_t)b;
		rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)c, errs);
	} else if (strcmp(cmd, "ping") == 0) {
		;
	} else if (strcmp(cmd, "quit") == 0) {
		stop = 1;
	} else {
		reply(fd, "error: unknown command\n");
		return;
	}
	if (e) {
		char buf[256];
		snprintf(buf, sizeof(buf), "error: %s\n", rd_kafka_err2str(e));
		reply(fd, buf);
		return;
	}
	reply(fd, "ok\n");
}

int
main(int argc, char **argv)
{
	const char *bootfile = NULL, *ctl = NULL;
	const char *prefix = getenv("KAFKA_TOPIC_PREFIX") ? getenv("KAFKA_TOPIC_PREFIX")
	                                                  : "payments";
	int brokers = 1, lfd = -1, i;
	char errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	const char *boot;

	if (argc >= 4 && strcmp(argv[1], "ctl") == 0) {
		struct sockaddr_un sa;
		char line[256] = "", buf[256];
		ssize_t n;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			fprintf(stderr, "kafka-mock ctl: %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		for (i = 3; i < argc; i++) {
			strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
			strncat(line, i + 1 < argc ? " " : "\n", sizeof(line) - strlen(line) - 1);
		}
		if (write(fd, line, strlen(line)) < 0)
			return 1;
		shutdown(fd, SHUT_WR);
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return 1;
		buf[n] = 0;
		fputs(buf, stdout);
		return strncmp(buf, "ok", 2) == 0 ? 0 : 1;
	}
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--brokers") && i + 1 < argc) {
			if (int_arg(argv[++i], 1, 64, &brokers) < 0) {
				fprintf(stderr,
				    "kafka-mock: --brokers: expected 1..64, not \"%s\"\n", argv[i]);
				return 2;
			}
		} else if (!strcmp(argv[i], "--bootstrap-file") && i + 1 < argc)
			bootfile = argv[++i];
		else if (!strcmp(argv[i], "--control") && i + 1 < argc)
			ctl = argv[++i];
		else {
			fprintf(stderr,
			    "usage: kafka-mock [--brokers N] [--bootstrap-file PATH] [--control PATH]\n");
			return 2;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "kafka-mock: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (mc == NULL) {
		fprintf(stderr, "kafka-mock: could not create the mock cluster\n");
		return 1;
	}
	/* The relay's topics: one per event type (3 partitions), the DLQ (1). */
	for (i = 0; relay_event_types[i] != NULL; i++) {
		char t[128];

		if (relay_topic(prefix, relay_event_types[i], t, sizeof(t)) < 0) {
			fprintf(stderr, "kafka-mock: KAFKA_TOPIC_PREFIX too long\n");
			return 1;
		}
		rd_kafka_mock_topic_create(mc, t, 3, 1);
	}
	{
		char t[128];

		snprintf(t, sizeof(t), "%s.dlq", prefix);
		rd_kafka_mock_topic_create(mc, t, 1, 1);
	}
	boot = rd_kafka_mock_cluster_bootstraps(mc);
	printf("%s\n", boot);
	fflush(stdout);
	if (bootfile) {
		FILE *f = fopen(bootfile, "w");
		if (f == NULL || fprintf(f, "%s\n", boot) < 0 || fclose(f) != 0) {
			fprintf(stderr, "kafka-mock: %s: %s\n", bootfile, strerror(errno));
			return 1;
		}
	}
	if (ctl) {
		struct sockaddr_un sa;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ctl);
		unlink(ctl);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(lfd, 8) < 0) {
			fprintf(
			    stderr, "kafka-mock: control socket %s: %s\n", ctl, strerror(errno));
			return 1;
		}
	}
	while (!stop) {
		struct pollfd p = { lfd, POLLIN, 0 };
		if (lfd < 0) {
			poll(NULL, 0, 200);
			continue;
		}
		if (poll(&p, 1, 200) > 0) {
			int cfd = accept(lfd, NULL, NULL);
			char buf[512];
			ssize_t n;
			size_t have = 0;
			if (cfd < 0)
				continue;
			/* One short-lived client at a time: read lines until EOF. */
			while ((n = read(cfd, buf + have, sizeof(buf) - 1 - have)) > 0) {
				char *nl;
				have += (size_t)n;
				buf[have] = 0;
				while ((nl = strchr(buf, '\n')) != NULL) {
					*nl = 0;
					command(mc, cfd, buf);
					memmove(buf, nl + 1, have - (size_t)(nl + 1 - buf) + 1);
					have -= (size_t)(nl + 1 - buf);
				}
				if (have >= sizeof(buf) - 1)
					have = 0;
			}
			close(cfd);
		}
	}
	if (ctl)
		unlink(ctl);
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
