# wal/wal.mk — payment-relay (outbox -> Kafka) with its SQLite journal, the
# Kafka-protocol test broker and the sample consumer.

RELAY_SRC := wal/relay.c wal/journal.c wal/relay_envelope.c
RELAY_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(RELAY_SRC))

$(BUILD)/payment-relay: $(RELAY_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kafka-mock: $(BUILD)/tests/kafka/kafka_mock.o
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sample-consumer: $(BUILD)/wal/sample_consumer.o $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

BINS += $(BUILD)/payment-relay $(BUILD)/kafka-mock $(BUILD)/sample-consumer

.PHONY: run-outbox-processor run-sample-consumer kafka-topics kafka-create-topics \
        kafka-consume kafka-consume-dlq outbox-logs

REDPANDA_BROKERS ?= localhost:19092
KAFKA_TOPIC_PREFIX ?= payments

run-outbox-processor: $(BUILD)/payment-relay
	$(BUILD)/payment-relay

run-sample-consumer: $(BUILD)/sample-consumer
	$(BUILD)/sample-consumer

kafka-topics:
	kcat -b $(REDPANDA_BROKERS) -L | grep -E '^ *topic '

# The relay publishes to existing topics. The local mock broker creates
# them itself; on Redpanda (docker compose) rpk does it.
kafka-create-topics:
	for t in paymentauthorized paymentdeclined; do \
		docker compose exec -T redpanda rpk topic create $(KAFKA_TOPIC_PREFIX).$$t -p 3; done
	docker compose exec -T redpanda rpk topic create $(KAFKA_TOPIC_PREFIX).dlq -p 1

kafka-consume:
	kcat -b $(REDPANDA_BROKERS) -C -t $(KAFKA_TOPIC_PREFIX).paymentauthorized \
		-t $(KAFKA_TOPIC_PREFIX).paymentdeclined -f '%t [%p] @%o key=%k %h\n%s\n\n' -e

kafka-consume-dlq:
	kcat -b $(REDPANDA_BROKERS) -C -t $(KAFKA_TOPIC_PREFIX).dlq -f '%t [%p] @%o %h\n%s\n\n' -e

outbox-logs:
	@f=$${STACK_DIR:-.stack}/logs/relay.log; test -f $$f && tail -n 100 -f $$f || \
		journalctl -u payment-relay -f
