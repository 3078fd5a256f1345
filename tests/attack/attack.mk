# SPDX-License-Identifier: MIT
# tests/attack/attack.mk — h2attack, the hand-written HTTP/2 attacker of
# tests/suites/45-front-door (connection exhaustion, floods, rapid reset,
# HPACK bomb, slow streams). A test tool: built by make test, never
# installed. Included by the top Makefile.

H2ATTACK_OBJ := $(BUILD)/tests/attack/h2attack.o

$(BUILD)/h2attack: $(H2ATTACK_OBJ) $(COMMON_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

TEST_BINS += $(BUILD)/h2attack
