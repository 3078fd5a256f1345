# SPDX-License-Identifier: MIT
# daemon/daemon.mk — paymentd (the root supervisor), paymentd-worker (the
# exec'd, sandboxed grpc worker), paymentctl and payment-verify.
#
# Which folder links into which binary is the privilege map: paymentd gets
# sup/, metrics/, rl/ (config check, peer names), ledger/migrate,
# auth/auth_admin + auth_token (`paymentd client`, libpq + libcrypto),
# jan/ (the janitor, a forked child: libpq) and common/ — no grpc, no
# protobuf, no libssl (`ldd build/paymentd` shows it);
# front/front_h2guard only for the names of its verdicts (metrics labels:
# the supervisor never feeds it a byte);
# paymentd-worker gets wrk/, grpc/, ledger/, rl/, metrics/ and common/.

SUP_SRC := daemon/sup/sup_main.c daemon/sup/sup_supervisor.c daemon/sup/sup_listen.c \
           daemon/sup/sup_spawn.c daemon/sup/sup_logfwd.c daemon/sup/sup_lockdown.c \
           daemon/sup/sup_proto.c daemon/sup/sup_door.c daemon/sup/sup_tls.c \
           daemon/sup/sup_pgcheck.c daemon/sup/sup_kh.c daemon/ledger/migrate.c daemon/rl/rl.c \
           daemon/auth/auth_admin.c daemon/auth/auth_token.c \
           daemon/front/front_h2guard.c \
           daemon/metrics/metrics.c daemon/metrics/metrics_http.c daemon/common/http_min.c \
           daemon/jan/jan_main.c daemon/jan/jan_sweep.c
SUP_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SUP_SRC))

WRK_SRC := daemon/wrk/wrk_main.c daemon/wrk/wrk_worker.c daemon/wrk/wrk_rpc.c daemon/wrk/wrk_auth.c daemon/auth/auth_token.c \
           daemon/wrk/wrk_life.c daemon/wrk/wrk_account.c \
           daemon/wrk/wrk_health.c daemon/wrk/wrk_reflect.c daemon/grpc/grpc_util.c \
           daemon/ledger/ledger.c daemon/ledger/ledger_life.c daemon/ledger/page_token.c \
           daemon/ledger/ledger_acct.c daemon/ledger/acct_validate.c \
           daemon/ledger/pay_validate.c daemon/ledger/pay_wire.c daemon/rl/rl.c \
           daemon/metrics/metrics.c daemon/sup/sup_lockdown.c daemon/sup/sup_proto.c \
           daemon/wrk/wrk_front.c daemon/tls/tls_server.c daemon/tls/tls_remotekey.c daemon/tls/tls_peer.c \
           daemon/front/front_h2guard.c daemon/front/front_h2cut.c
WRK_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(WRK_SRC)) $(BUILD)/daemon/grpc/grpc_tune.o

PAYMENTCTL_SRC := daemon/ctl/ctl_main.c daemon/ctl/gcli.c daemon/grpc/grpc_util.c
PAYMENTCTL_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(PAYMENTCTL_SRC))

BINS += $(BUILD)/paymentd $(BUILD)/paymentd-worker $(BUILD)/paymentctl $(BUILD)/payment-verify

$(BUILD)/paymentd: $(SUP_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SUP_LIBS)

$(BUILD)/paymentd-worker: $(WRK_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(ABSL_LIBS)

$(BUILD)/paymentctl: $(PAYMENTCTL_OBJ) $(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/payment-verify: $(BUILD)/daemon/ctl/ctl_verify.o $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Test-only builds (make test): the same supervisor and worker plus a
# method that makes a sandboxed worker attempt forbidden syscalls
# (daemon/wrk/wrk_testhooks.c) and a hook that kills a worker at hand-off.
# paymentd-testhooks execs paymentd-worker-testhooks.
TH_SUP_OBJ := $(patsubst %.c,$(BUILD)/testhooks/%.o,$(SUP_SRC))
TH_WRK_OBJ := $(patsubst %.c,$(BUILD)/testhooks/%.o,$(WRK_SRC) daemon/wrk/wrk_testhooks.c)
$(BUILD)/testhooks/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $< (test hooks)"
	$(Q)$(CC) $(ALL_CFLAGS) -DPAYMENTD_TEST_HOOKS -MMD -MP -c -o $@ $<

$(BUILD)/testhooks/daemon/wrk/wrk_reflect.o: $(DESC_SET)

$(BUILD)/paymentd-testhooks: $(TH_SUP_OBJ) $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SUP_LIBS)

$(BUILD)/paymentd-worker-testhooks: $(TH_WRK_OBJ) $(BUILD)/daemon/grpc/grpc_tune.o $(SANDBOX_OBJ) \
		$(COMMON_OBJ) $(PROTO_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(ABSL_LIBS)

TEST_BINS += $(BUILD)/paymentd-testhooks $(BUILD)/paymentd-worker-testhooks
