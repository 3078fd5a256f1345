# daemon/daemon.mk — paymentd (supervisor + workers) and paymentctl.

PAYMENTD_SRC := daemon/main.c daemon/sup_supervisor.c daemon/sup_listen.c \
                daemon/wrk_worker.c daemon/wrk_rpc.c daemon/wrk_health.c \
                daemon/ledger.c daemon/migrate.c daemon/pay_validate.c \
                daemon/grpc_util.c daemon/wrk_reflect.c daemon/lockdown.c daemon/rl.c daemon/metrics.c daemon/metrics_http.c daemon/http_min.c
PAYMENTD_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(PAYMENTD_SRC)) $(BUILD)/daemon/grpc_tune.o

PAYMENTCTL_SRC := daemon/ctl_main.c daemon/gcli.c daemon/grpc_util.c
PAYMENTCTL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(PAYMENTCTL_SRC))

BINS += $(BUILD)/paymentd $(BUILD)/paymentctl

$(BUILD)/paymentd: $(PAYMENTD_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(ABSL_LIBS)

$(BUILD)/paymentctl: $(PAYMENTCTL_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Test-only build: the same daemon plus a method that makes a sandboxed
# worker attempt forbidden syscalls (daemon/wrk_testhooks.c).
TESTHOOKS_OBJ := $(patsubst %.c,$(BUILD)/testhooks/%.o,$(PAYMENTD_SRC) daemon/wrk_testhooks.c)
$(BUILD)/testhooks/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (test hooks)"
	$(Q)$(CC) $(ALL_CFLAGS) -DPAYMENTD_TEST_HOOKS -MMD -MP -c -o $@ $<

$(BUILD)/testhooks/daemon/wrk_reflect.o: $(DESC_SET)

$(BUILD)/paymentd-testhooks: $(TESTHOOKS_OBJ) $(BUILD)/daemon/grpc_tune.o $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(ABSL_LIBS)

BINS += $(BUILD)/paymentd-testhooks
