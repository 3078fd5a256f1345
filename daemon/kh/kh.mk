# SPDX-License-Identifier: MIT
# daemon/kh/kh.mk — paymentd-keyholder, the sandboxed process that holds
# the TLS private key (sup_proto.h, "key-holder channel"), and kh_test, its
# standalone test (tests/kh/: a real key-holder, a worker-like TLS server
# signing through it, an OpenSSL client). Included by the top Makefile after
# daemon/daemon.mk.
#
# The privilege map: paymentd-keyholder links libcrypto (not libssl) and
# common/, sandbox/, sup_lockdown.c, sup_proto.c — nothing that parses
# network input. The supervisor's half (daemon/sup/sup_kh.c) only passes
# descriptors and is in SUP_SRC without any crypto library.

KH_SRC  := daemon/kh/kh_main.c daemon/kh/kh_serve.c daemon/kh/kh_key.c \
           daemon/sup/sup_lockdown.c daemon/sup/sup_proto.c
KH_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(KH_SRC))
KH_LIBS := $(shell pkg-config --libs libcrypto libseccomp 2>/dev/null)

BINS += $(BUILD)/paymentd-keyholder

$(BUILD)/paymentd-keyholder: $(KH_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(KH_LIBS) -lm

KH_TEST_SRC := tests/kh/kh_test.c
KH_TEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(KH_TEST_SRC)) $(BUILD)/daemon/tls/tls_remotekey.o \
               $(BUILD)/daemon/sup/sup_kh.o $(BUILD)/daemon/sup/sup_spawn.o $(BUILD)/daemon/sup/sup_proto.o \
               $(BUILD)/daemon/sup/sup_lockdown.o $(BUILD)/tests/lib/testlib.o

$(BUILD)/kh_test: $(KH_TEST_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ) | $(BUILD)/paymentd-keyholder
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) \
		$(shell pkg-config --libs libssl libcrypto libseccomp libpq check 2>/dev/null) -lm

TEST_BINS += $(BUILD)/kh_test
