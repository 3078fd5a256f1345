# sandbox/sandbox.mk — privilege drop and seccomp policies, linked into
# paymentd and payment-relay.
SANDBOX_SRC := sandbox/sb_drop.c sandbox/sb_seccomp.c
SANDBOX_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SANDBOX_SRC))
