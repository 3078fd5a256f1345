# SPDX-License-Identifier: MIT
# wal/wal.mk — payment-relay (outbox -> Kafka) with its SQLite journal, the
# Kafka-protocol test broker, the sample consumer, the relay's unit tests
# and the operator targets (docs/relay.md).

JOURNAL_SRC := wal/journal/journal_store.c wal/journal/journal_window.c wal/journal/journal_failure.c
RELAY_LIB_SRC := wal/relay_envelope.c wal/relay_schema.c wal/relay_topics.c wal/relay_pg.c wal/relay_lease.c wal/relay_status.c wal/relay_kafka.c wal/relay_recover.c wal/relay_metrics.c wal/relay_window.c \
                 daemon/common/http_min.c $(JOURNAL_SRC)
RELAY_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(RELAY_LIB_SRC))
RELAY_CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

# schemas/*.schema.json compiled into the relay (relay_schema.c): for each
# file its name, a newline, its JSON and a NUL.
SCHEMA_FILES := $(sort $(wildcard schemas/*.schema.json))
$(GEN)/schemas.bundle: $(SCHEMA_FILES)
	@mkdir -p $(dir $@)
	@echo "  GEN     $@"
	$(Q)for f in $(SCHEMA_FILES); do printf '%s\n' "$${f##*/}"; cat "$$f"; printf '\000'; done > $@
$(BUILD)/wal/relay_schema.o: $(GEN)/schemas.bundle

$(BUILD)/payment-relay: $(BUILD)/wal/relay_main.o $(RELAY_LIB_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kafka-mock: $(BUILD)/tests/kafka/kafka_mock.o $(BUILD)/wal/relay_envelope.o $(BUILD)/wal/relay_schema.o $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sample-consumer: $(BUILD)/wal/sample_consumer.o $(BUILD)/wal/relay_envelope.o $(BUILD)/wal/relay_schema.o $(COMMON_OBJ)
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
# first) and makes them itself on request (payment-relay create-topics,
# one per event type and the DLQ); the mock broker creates them on start.
kafka-create-topics: $(BUILD)/payment-relay
	REDPANDA_BROKERS=$(REDPANDA_BROKERS) KAFKA_TOPIC_PREFIX=$(KAFKA_TOPIC_PREFIX) \
		$(BUILD)/payment-relay create-topics

kafka-consume:
	kcat -b $(REDPANDA_BROKERS) -C -X isolation.level=read_committed \
		$$(for t in paymentauthorized paymentdeclined paymentcaptured paymentvoided paymentexpired \
			paymentrefunded accountcreated accountstatuschanged; do printf -- '-t $(KAFKA_TOPIC_PREFIX).%s ' $$t; done) \
		-f '%t [%p] @%o key=%k %h\n%s\n\n' -e

kafka-consume-dlq:
	kcat -b $(REDPANDA_BROKERS) -C -X isolation.level=read_committed -t $(KAFKA_TOPIC_PREFIX).dlq -f '%t [%p] @%o %h\n%s\n\n' -e

outbox-logs:
	@f=$${STACK_DIR:-.stack}/logs/relay.log; if test -f $$f; then tail -n 100 -f $$f; \
		else journalctl -u payment-relay -f; fi
