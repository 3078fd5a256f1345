# SPDX-License-Identifier: MIT
# sandbox/sandbox.mk — the sandbox library (privilege drop + seccomp
# profiles) linked into paymentd and payment-relay, its test program, and
# the systemd units' install target. Included by the top Makefile before
# daemon/daemon.mk (which links $(SANDBOX_OBJ) into paymentd).

SANDBOX_SRC := sandbox/sb_drop.c sandbox/sb_seccomp.c sandbox/sb_policy.c
SANDBOX_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SANDBOX_SRC))

# tests/sandbox/: a standalone worker look-alike (grpc core server, locks
# down, serves a real unary RPC to a grpc core client in the parent) plus
# the libcheck cases; run by tests/suites/40-sandbox.
SB_CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
SB_CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)
SB_TEST_SRC := tests/sandbox/sb_test.c tests/sandbox/sb_worker.c tests/sandbox/sb_client.c \
               tests/sandbox/sb_proc.c
SB_TEST_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SB_TEST_SRC))

$(BUILD)/tests/sandbox/%.o: ALL_CFLAGS += $(SB_CHECK_CFLAGS)

$(BUILD)/sb_test: $(SB_TEST_OBJ) $(BUILD)/tests/lib/testlib.o $(BUILD)/daemon/sup/sup_proto.o $(SANDBOX_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(SB_CHECK_LIBS)

TEST_BINS += $(BUILD)/sb_test

# Units reference /usr/local/bin; with another PREFIX they are rewritten.
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SB_UNITS    := paymentd.service paymentd.socket payment-relay.service

.PHONY: install-systemd
install-systemd:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) \
		$(DESTDIR)$(PREFIX)/share/doc/paymentd
	for u in $(SB_UNITS); do \
		sed "s|/usr/local/|$(PREFIX)/|g" systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 0644 systemd/sysusers.d/paymentd.conf $(DESTDIR)$(SYSUSERSDIR)/paymentd.conf
	install -m 0644 systemd/tmpfiles.d/paymentd.conf $(DESTDIR)$(TMPFILESDIR)/paymentd.conf
	install -m 0644 systemd/paymentd.env.example docs/sandbox.md \
		$(DESTDIR)$(PREFIX)/share/doc/paymentd/
