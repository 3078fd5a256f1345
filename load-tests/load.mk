# SPDX-License-Identifier: MIT
# load-tests/load.mk — the load generator, the ledger verifier, the
# benchmark and the libFuzzer harnesses. Included by the top Makefile.
#
#   make verify          build payment-verify and check DATABASE_URL's ledger
#                        (VERIFY_KAFKA=host:port also compares with the broker)
#   make loadgen         build paymentd-loadgen
#   make bench           load-tests/bench.sh: paymentd vs pgbench on a private
#                        durable stack (about 8 minutes with 3 rounds)
#   make fuzz            build the harnesses with clang and run each for
#                        FUZZ_RUNS executions (FUZZ_SECONDS caps the time)

LOADGEN_OBJ := $(BUILD)/load-tests/loadgen.o $(BUILD)/daemon/ctl/gcli.o $(BUILD)/daemon/grpc/grpc_util.o $(BUILD)/daemon/grpc/grpc_tune.o

$(BUILD)/paymentd-loadgen: $(LOADGEN_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(ABSL_LIBS)

# A test and bench tool: built by make test / make bench, never installed.
TEST_BINS += $(BUILD)/paymentd-loadgen

.PHONY: verify loadgen bench fuzz fuzz-build

loadgen: $(BUILD)/paymentd-loadgen

verify: $(BUILD)/payment-verify
	$(BUILD)/payment-verify $(if $(VERIFY_KAFKA),--kafka $(VERIFY_KAFKA))

bench: $(BUILD)/paymentd $(BUILD)/paymentd-worker $(BUILD)/paymentctl $(BUILD)/paymentd-loadgen $(BUILD)/payment-verify $(BUILD)/h2attack
	BUILD_DIR=$(CURDIR)/$(BUILD) load-tests/bench.sh

# ---- fuzzing (clang + libFuzzer, separate from the gcc build) ----------
# The code under test is compiled again with coverage instrumentation and
# ASan/UBSan into $(BUILD)/fuzz/; only the harness objects get the fuzzer's
# main(). Corpora live in tests/fuzz/corpus/<harness>/ (seeds, kept small);
# new inputs found during a run go to $(BUILD)/fuzz/work/<harness>/.
FUZZ_CC      ?= clang
FUZZ_RUNS    ?= 10000000
FUZZ_SECONDS ?=
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# Deferred (=) so pkg-config only runs when a fuzz target is built.
FUZZ_CFLAGS   = -std=gnu11 -g -O1 -D_GNU_SOURCE -Wall -Wextra -Werror \
                -DPAYMENTD_MIGRATIONS_DIR='"/nonexistent"' \
                -DPAYMENTD_DESCRIPTOR_SET='"$(DESC_SET)"' \
                -I$(GEN) -Idaemon -I. $(shell pkg-config --cflags libprotobuf-c libcrypto 2>/dev/null) $(FUZZ_SAN)
FUZZ_LIBS     = $(shell pkg-config --libs libprotobuf-c libcrypto 2>/dev/null)
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_HARNESSES := fuzz_authorize fuzz_env fuzz_reflect fuzz_getreq fuzz_h2guard fuzz_wire \
                  fuzz_lifecycle fuzz_page_token

# Library sources each harness needs (besides its own file).
FUZZ_LIB_fuzz_authorize := daemon/ledger/pay_validate.c daemon/common/util.c daemon/common/log.c daemon/common/utf8.c $(GEN)/payment/v1/payment.pb-c.c
FUZZ_LIB_fuzz_env       := daemon/common/config.c daemon/common/log.c daemon/common/util.c daemon/common/utf8.c
FUZZ_LIB_fuzz_reflect   := daemon/wrk/wrk_reflect.c daemon/common/util.c daemon/common/log.c daemon/common/utf8.c \
                           $(GEN)/grpc/reflection/v1/reflection.pb-c.c \
                           $(GEN)/google/protobuf/descriptor.pb-c.c
FUZZ_LIB_fuzz_getreq    := daemon/ledger/pay_validate.c daemon/common/util.c daemon/common/log.c daemon/common/utf8.c $(GEN)/payment/v1/payment.pb-c.c \
                           $(GEN)/grpc/health/v1/health.pb-c.c
FUZZ_LIB_fuzz_h2guard   := daemon/front/front_h2guard.c daemon/front/front_h2cut.c
FUZZ_LIB_fuzz_wire      := daemon/ledger/pay_wire.c $(GEN)/payment/v1/payment.pb-c.c \
                           $(GEN)/grpc/health/v1/health.pb-c.c $(GEN)/grpc/reflection/v1/reflection.pb-c.c
FUZZ_LIB_fuzz_lifecycle := daemon/ledger/pay_wire.c daemon/ledger/pay_validate.c daemon/ledger/acct_validate.c \
                           daemon/common/util.c daemon/common/log.c daemon/common/utf8.c \
                           $(GEN)/payment/v1/payment.pb-c.c
FUZZ_LIB_fuzz_page_token := daemon/ledger/page_token.c

$(FUZZ_DIR)/obj/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-unused-parameter -fsanitize=fuzzer-no-link -c -o $@ $<

# Generated sources live under $(GEN), i.e. already below $(BUILD).
$(FUZZ_DIR)/gen/%.o: $(GEN)/%.c $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-unused-parameter -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/daemon/wrk/wrk_reflect.o: $(DESC_SET)

fuzz_objs = $(foreach s,$(FUZZ_LIB_$(1)),$(if $(filter $(GEN)/%,$(s)),$(patsubst $(GEN)/%.c,$(FUZZ_DIR)/gen/%.o,$(s)),$(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(s))))

define FUZZ_LINK
$(FUZZ_DIR)/$(1): $(FUZZ_DIR)/obj/tests/fuzz/$(1).o $(call fuzz_objs,$(1))
	@echo "  FUZZLD  $$@"
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$^ $(FUZZ_LIBS)
endef
$(foreach h,$(FUZZ_HARNESSES),$(eval $(call FUZZ_LINK,$(h))))

fuzz-build: $(addprefix $(FUZZ_DIR)/,$(FUZZ_HARNESSES))

fuzz: fuzz-build
	FUZZ_DIR=$(FUZZ_DIR) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_SECONDS=$(FUZZ_SECONDS) \
		tests/fuzz/run-fuzzers $(FUZZ_HARNESSES)
