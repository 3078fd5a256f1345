/* SPDX-License-Identifier: MIT */
/*
 * relay_topics.h — creating the relay's topics (see relay_topics.c).
 */
#ifndef PAYMENTD_RELAY_TOPICS_H
#define PAYMENTD_RELAY_TOPICS_H

#include <stddef.h>
#include <stdio.h>

int relay_topics_create(const char *brokers, char topics[][128], int n, int partitions,
    int timeout_ms, FILE *out, char *err, size_t errlen);

#endif
