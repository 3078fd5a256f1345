# SPDX-License-Identifier: MIT
# tests/tests.mk — unit and integration test binaries (libcheck).

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

# The unit tests: one file per module (tests/unit/unit.h), one main.
UNIT_SRC := tests/unit/test_main.c tests/unit/test_config.c tests/unit/test_log.c \
            tests/unit/test_util.c tests/unit/test_utf8.c tests/unit/test_backoff.c \
            tests/unit/test_sqlstate.c tests/unit/test_pay_validate.c tests/unit/test_sup_proto.c tests/unit/test_sup_door.c \
            tests/unit/test_payment_proto.c tests/unit/test_testlib.c \
            tests/unit/test_metrics.c tests/unit/test_http_min.c tests/unit/test_front_h2guard.c \
            tests/unit/test_pay_wire.c tests/unit/test_auth_token.c \
            tests/unit/test_page_token.c tests/unit/test_acct_validate.c
IT_SRC   := tests/integration/it_payments.c tests/integration/it_util.c
# tests/lib/testlib.c: what every libcheck program shares (free ports,
# processes, Postgres, the runner); also linked by tests/rl_metrics.mk,
# sandbox/sandbox.mk (sb_test) and wal/wal.mk (relay_unit).
TESTLIB_OBJ := $(BUILD)/tests/lib/testlib.o

$(BUILD)/tests/%.o: ALL_CFLAGS += $(CHECK_CFLAGS)

$(BUILD)/test_unit: $(patsubst %.c,$(BUILD)/%.o,$(UNIT_SRC)) $(TESTLIB_OBJ) $(BUILD)/daemon/ledger/pay_validate.o $(BUILD)/daemon/ledger/pay_wire.o \
		$(BUILD)/daemon/sup/sup_proto.o $(BUILD)/daemon/sup/sup_door.o $(BUILD)/daemon/metrics/metrics.o $(BUILD)/daemon/common/http_min.o \
		$(BUILD)/daemon/front/front_h2guard.o $(BUILD)/daemon/front/front_h2cut.o $(BUILD)/daemon/auth/auth_token.o $(BUILD)/daemon/ledger/page_token.o $(BUILD)/daemon/ledger/acct_validate.o $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/it_payments: $(patsubst %.c,$(BUILD)/%.o,$(IT_SRC)) $(TESTLIB_OBJ) $(BUILD)/daemon/ctl/gcli.o \
		$(BUILD)/daemon/grpc/grpc_util.o $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/it_sandbox: $(BUILD)/tests/integration/it_sandbox.o $(TESTLIB_OBJ) $(BUILD)/daemon/ctl/gcli.o \
		$(BUILD)/daemon/grpc/grpc_util.o $(SANDBOX_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

TEST_BINS += $(BUILD)/test_unit $(BUILD)/it_payments $(BUILD)/it_sandbox

# 49-auth-load's revocation timing test (run by that suite against a paymentd
# of its own, not by 20-integration).
$(BUILD)/it_auth_revoke: $(BUILD)/tests/integration/it_auth_revoke.o $(TESTLIB_OBJ) $(BUILD)/daemon/ctl/gcli.o \
		$(BUILD)/daemon/grpc/grpc_util.o $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

TEST_BINS += $(BUILD)/it_auth_revoke
