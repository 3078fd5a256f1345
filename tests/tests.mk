# tests/tests.mk — unit and integration test binaries (libcheck).

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

UNIT_SRC := tests/unit/test_unit.c
IT_SRC   := tests/integration/it_payments.c tests/integration/it_util.c

$(BUILD)/tests/%.o: ALL_CFLAGS += $(CHECK_CFLAGS)

$(BUILD)/test_unit: $(patsubst %.c,$(BUILD)/%.o,$(UNIT_SRC)) $(BUILD)/daemon/ledger/pay_validate.o $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/it_payments: $(patsubst %.c,$(BUILD)/%.o,$(IT_SRC)) $(BUILD)/daemon/ctl/gcli.o \
		$(BUILD)/daemon/grpc/grpc_util.o $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/it_sandbox: $(BUILD)/tests/integration/it_sandbox.o $(BUILD)/daemon/ctl/gcli.o \
		$(BUILD)/daemon/grpc/grpc_util.o $(SANDBOX_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

TEST_BINS += $(BUILD)/test_unit $(BUILD)/it_payments $(BUILD)/it_sandbox
