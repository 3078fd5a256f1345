# SPDX-License-Identifier: MIT
# wal/wal.mk — payment-relay (outbox -> Kafka) with its SQLite journal, the
# Kafka-protocol test broker, the sample consumer, the relay's unit tests
# and the operator targets (docs/relay.md).

JOURNAL_SRC := wal/journal/journal_store.c wal/journal/journal_window.c wal/journal/journal_failure.c
RELAY_LIB_SRC := wal/relay_envelope.c wal/relay_pg.c wal/relay_lease.c wal/relay_status.c wal/relay_kafka.c wal/relay_recover.c wal/relay_metrics.c wal/relay_window.c \
                 daemon/common/http_min.c $(JOURNAL_SRC)
RELAY_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(RELAY_LIB_SRC))
RELAY_CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

$(BUILD)/payment-relay: $(BUILD)/wal/relay_main.o $(RELAY_LIB_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kafka-mock: $(BUILD)/tests/kafka/kafka_mock.o
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sample-consumer: $(BUILD)/wal/sample_consumer.o $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/relay_unit: $(BUILD)/tests/relay/relay_unit.o $(BUILD)/tests/lib/testlib.o $(RELAY_LIB_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(RELAY_CHECK_LIBS)

$(BUILD)/tests/relay/%.o: ALL_CFLAGS += $(shell pkg-config --cflags check 2>/dev/null)

RELAY_BINS := $(BUILD)/payment-relay $(BUILD)/sample-consumer
BINS += $(RELAY_BINS)
# kafka-mock is a test broker (librdkafka's mock cluster): never installed.
TEST_BINS += $(BUILD)/relay_unit $(BUILD)/kafka-mock

.PHONY: relay run-outbox-processor run-sample-consumer kafka-topics kafka-create-topics \
        kafka-consume kafka-consume-dlq outbox-logs

relay: $(RELAY_BINS) $(BUILD)/kafka-mock

# make run's broker when its stack is up (.stack/env), else docker-compose's Redpanda.
STACK_DIR ?= .stack
REDPANDA_BROKERS ?= $(or $(shell sed -n 's/^REDPANDA_BROKERS=//p' $(STACK_DIR)/env 2>/dev/null),localhost:19092)
KAFKA_TOPIC_PREFIX ?= payments

run-outbox-processor: $(BUILD)/payment-relay
	$(BUILD)/payment-relay

run-sample-consumer: $(BUILD)/sample-consumer
	$(BUILD)/sample-consumer --from-beginning

kafka-topics:
	kcat -b $(REDPANDA_BROKERS) -L | grep -E '^ *topic '

# The relay publishes to existing topics (it reads their partition counts
# first). The mock broker creates them itself; on a real Kafka/Redpanda:
kafka-create-topics:
	@if [ -f $(STACK_DIR)/kafka/broker.pid ] && kill -0 $$(cat $(STACK_DIR)/kafka/broker.pid) 2>/dev/null; then \
		scripts/kafka-broker create-topics $(STACK_DIR)/kafka $(lastword $(subst :, ,$(REDPANDA_BROKERS))) $(KAFKA_TOPIC_PREFIX); \
	elif command -v rpk >/dev/null; then \
		for t in paymentauthorized paymentdeclined; do \
			rpk topic create -X brokers=$(REDPANDA_BROKERS) $(KAFKA_TOPIC_PREFIX).$$t -p 3; done; \
		rpk topic create -X brokers=$(REDPANDA_BROKERS) $(KAFKA_TOPIC_PREFIX).dlq -p 1; \
	else \
		for t in paymentauthorized paymentdeclined; do \
			docker compose exec -T redpanda rpk topic create $(KAFKA_TOPIC_PREFIX).$$t -p 3; done; \
		docker compose exec -T redpanda rpk topic create $(KAFKA_TOPIC_PREFIX).dlq -p 1; \
	fi

kafka-consume:
	kcat -b $(REDPANDA_BROKERS) -C -X isolation.level=read_committed -t $(KAFKA_TOPIC_PREFIX).paymentauthorized \
		-t $(KAFKA_TOPIC_PREFIX).paymentdeclined -f '%t [%p] @%o key=%k %h\n%s\n\n' -e

kafka-consume-dlq:
	kcat -b $(REDPANDA_BROKERS) -C -X isolation.level=read_committed -t $(KAFKA_TOPIC_PREFIX).dlq -f '%t [%p] @%o %h\n%s\n\n' -e

outbox-logs:
	@f=$${STACK_DIR:-.stack}/logs/relay.log; if test -f $$f; then tail -n 100 -f $$f; \
		else journalctl -u payment-relay -f; fi
