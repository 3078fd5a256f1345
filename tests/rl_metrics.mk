# SPDX-License-Identifier: MIT
# tests/rl_metrics.mk — tests of the rate limiter (daemon/rl.c, against a
# real Redis) and of the metrics (daemon/metrics*.c: rendering, shared
# counters across processes, the HTTP exporter, promtool). Run by
# tests/suites/25-ratelimit and tests/suites/26-metrics. Include it from the
# top Makefile after tests/tests.mk (it uses CHECK_LIBS and TESTLIB_OBJ
# from there).

$(BUILD)/test_rl: $(BUILD)/tests/integration/test_rl.o $(TESTLIB_OBJ) $(BUILD)/daemon/rl/rl.o $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/test_metrics: $(BUILD)/tests/integration/test_metrics.o $(TESTLIB_OBJ) $(BUILD)/daemon/metrics/metrics.o \
		$(BUILD)/daemon/metrics/metrics_http.o $(BUILD)/daemon/common/http_min.o $(BUILD)/daemon/sup/sup_lockdown.o $(SANDBOX_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

TEST_BINS += $(BUILD)/test_rl $(BUILD)/test_metrics
