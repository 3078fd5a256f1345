# SPDX-License-Identifier: MIT
# paymentd — top-level Makefile.
#
# Each module keeps its own fragment (daemon/daemon.mk, sandbox/sandbox.mk,
# wal/wal.mk, tests/tests.mk, load-tests/load.mk); this file holds what they
# share: flags from pkg-config, generated protobuf-c code and the user-facing
# targets (build, test, run, install, ...). `make help` lists them.

PREFIX      ?= /usr/local
BUILD       ?= build
CC          ?= cc
# SAN=1 builds everything with AddressSanitizer and UBSan into build-san/.
ifeq ($(SAN),1)
BUILD       := build-san
SANFLAGS    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# COV=1 builds with gcov instrumentation into build-cov/ (make test-cov).
ifeq ($(COV),1)
BUILD       := build-cov
SANFLAGS    := --coverage -DPAYMENTD_COVERAGE
endif
GEN         := $(BUILD)/gen
PKGS        := grpc libprotobuf-c libssl libcrypto libpq hiredis jansson libseccomp sqlite3 rdkafka libsystemd
PKG_CFLAGS  := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
MIGRATIONS_INSTALL_DIR ?= $(PREFIX)/share/paymentd/migrations
# paymentd-worker and paymentd-keyholder: the supervisor execs them from
# next to its own binary, else from here.
LIBEXEC_DIR ?= $(PREFIX)/libexec/paymentd

# CFLAGS/LDFLAGS are the user's; the flags the code needs live in PD_CFLAGS.
CFLAGS      ?= -O2 -g
PD_CFLAGS   := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
               -fstack-protector-strong -D_FORTIFY_SOURCE=2 -D_GNU_SOURCE -fPIE \
               -DPAYMENTD_MIGRATIONS_DIR='"$(MIGRATIONS_INSTALL_DIR)"' \
               -DPAYMENTD_DESCRIPTOR_SET='"$(GEN)/descriptors.pb"' \
               -DPAYMENTD_SCHEMA_BUNDLE='"$(GEN)/schemas.bundle"' \
               -DPAYMENTD_LIBEXEC_DIR='"$(LIBEXEC_DIR)"' \
               -I$(GEN) -Idaemon -I. $(PKG_CFLAGS) $(SANFLAGS)
ALL_CFLAGS   = $(PD_CFLAGS) $(CFLAGS)
PD_LDFLAGS  := -pie -Wl,-z,relro,-z,now $(SANFLAGS)
ALL_LDFLAGS  = $(PD_LDFLAGS) $(LDFLAGS)
LDLIBS      += $(PKG_LIBS) -lpthread -lm
# The supervisor (root) links no grpc and no protobuf: only what it runs.
SUP_LIBS    := $(shell pkg-config --libs libpq hiredis libseccomp libsystemd libcrypto 2>/dev/null) -lm

PROTOS      := proto/payment/v1/payment.proto proto/grpc/health/v1/health.proto \
               proto/grpc/reflection/v1/reflection.proto
# Everything reflection serves (v1alpha shares v1's wire format, so only its
# descriptor is needed, not C code).
DESC_PROTOS := $(PROTOS) proto/grpc/reflection/v1alpha/reflection.proto
DESC_SET    := $(GEN)/descriptors.pb
PROTO_C     := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS)) \
               $(GEN)/google/protobuf/descriptor.pb-c.c
PROTO_H     := $(PROTO_C:.c=.h)
PROTO_OBJ   := $(PROTO_C:.c=.o)

# Objects every binary links: logging, config, helpers (libc only).
COMMON_SRC  := daemon/common/util.c daemon/common/log.c daemon/common/config.c daemon/common/utf8.c daemon/common/backoff.c daemon/common/sqlstate.c
COMMON_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(COMMON_SRC))

# V=1 shows full compiler command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

BINS        :=
TEST_BINS   :=

.PHONY: chaos install-units up dev-up docker-down all proto clean test test-unit test-integration install run help deps \
        migrate reset-test-data check-build san test-bins test-e2e format format-check lint check test-cov
all: deps-check

-include sandbox/sandbox.mk
-include wal/wal.mk
include daemon/daemon.mk
-include daemon/kh/kh.mk
-include tests/tests.mk
-include tests/rl_metrics.mk
-include load-tests/load.mk
-include tests/attack/attack.mk

all: $(BINS)

deps-check:
	@pkg-config --exists $(PKGS) || { echo "missing build dependencies: run scripts/install-deps (as root)"; exit 1; }

proto: $(PROTO_C) $(PROTO_H) $(DESC_SET)

$(DESC_SET): $(DESC_PROTOS)
	@mkdir -p $(GEN)
	protoc --descriptor_set_out=$@ --include_imports --include_source_info -Iproto \
		$(patsubst proto/%,%,$(DESC_PROTOS))

$(GEN)/google/protobuf/descriptor.pb-c.c $(GEN)/google/protobuf/descriptor.pb-c.h:
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I/usr/include google/protobuf/descriptor.proto

$(BUILD)/daemon/wrk/wrk_reflect.o: $(DESC_SET)

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $<

$(GEN)/%.pb-c.o: $(GEN)/%.pb-c.c
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-unused-parameter -c -o $@ $<

# Every object depends on the generated headers (cheap, and avoids races).
$(BUILD)/%.o: %.c $(PROTO_H)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# The one C++ file (daemon/grpc/grpc_tune.cc): a setter of abseil, grpc's runtime.
CXX         ?= c++
ABSL_CFLAGS := $(shell pkg-config --cflags absl_synchronization 2>/dev/null)
ABSL_LIBS   := -labsl_synchronization
$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	$(Q)$(CXX) -std=c++17 -Wall -Wextra -Werror -fno-exceptions -fno-rtti -fPIE \
		-fstack-protector-strong -D_FORTIFY_SOURCE=2 $(ABSL_CFLAGS) $(SANFLAGS) $(CFLAGS) \
		-MMD -MP -c -o $@ $<

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# `make test`: installs what a fresh Debian 12 lacks, builds, starts a
# private Postgres/Redis/Kafka-mock stack and runs every suite.
test:
	scripts/install-deps
	BUILD=$(BUILD) scripts/install-tools
	BUILD=$(BUILD) scripts/kafka-broker install
	$(MAKE) all test-bins
	tests/run-all

# Test programs (libcheck suites, test brokers, the load generator): built
# for make test and make bench, never by a plain make nor installed.
test-bins: $(TEST_BINS)

test-unit: all test-bins
	tests/run-all unit

test-integration: all test-bins
	tests/run-all integration

# The full-stack suites (everything tests/run-all runs) without the
# dependency check: for a machine that already has them.
test-e2e: all test-bins
	tests/run-all

# ---- developer targets: format, lint, fast check, coverage ------------
# Our own C sources (generated code, fuzz corpora and fetched code excluded).
DEV_SRC      = $(shell git ls-files '*.c' '*.h' 2>/dev/null | grep -v '^tests/fuzz/corpus/')
# The flags clang-tidy needs to parse a file as the build does.
LINT_FLAGS   = -std=gnu11 -D_GNU_SOURCE -DPAYMENTD_MIGRATIONS_DIR='"x"' \
               -DPAYMENTD_DESCRIPTOR_SET='"x"' -DPAYMENTD_SCHEMA_BUNDLE='"x"' \
               -DPAYMENTD_LIBEXEC_DIR='"x"' -DPAYMENTD_TEST_HOOKS \
               -I$(GEN) -Idaemon -I. $(PKG_CFLAGS) $(shell pkg-config --cflags check 2>/dev/null)
LINT_SRC     = $(filter %.c,$(DEV_SRC))

format:
	clang-format -i $(DEV_SRC)

# Fails on any drift from .clang-format (what CI would reformat).
format-check:
	clang-format --dry-run --Werror $(DEV_SRC)

# clang-tidy with the committed .clang-tidy; any finding fails. One run per
# file: in one run over many files clang-tidy 14's valist checker stops
# seeing va_start after the first file (LLVM bug 41311) and flags every v*printf.
lint: proto
	@rc=0; for f in $(LINT_SRC); do \
		clang-tidy --quiet --warnings-as-errors='*' $$f -- $(LINT_FLAGS) || rc=1; \
	done; exit $$rc

# Fast: style, lint and the unit tests (no servers).
check: format-check lint $(BUILD)/test_unit
	$(BUILD)/test_unit

# Line and branch coverage of every suite, per folder (lcov). Workers run
# with SANDBOX=off here: a sandboxed process may not write .gcda files.
test-cov:
	scripts/install-deps
	BUILD=build-cov scripts/install-tools
	BUILD=build-cov scripts/kafka-broker install
	$(MAKE) COV=1 all test-bins
	find build-cov -name '*.gcda' -delete
	BUILD=build-cov SANDBOX=off tests/run-all || true
	scripts/coverage build-cov

san:
	$(MAKE) SAN=1 all

# Fault injection under load (full profile; `make test` runs --short).
chaos: all
	chaos-tests/run

run: all
	scripts/dev-up

migrate: all
	MIGRATIONS_DIR=$${MIGRATIONS_DIR:-$(CURDIR)/migrations} $(BUILD)/paymentd migrate

reset-test-data: all
	$(BUILD)/paymentd reset-test-data

INSTALL_BINS = $(BUILD)/paymentd $(BUILD)/paymentctl $(BUILD)/payment-relay $(BUILD)/payment-verify $(BUILD)/sample-consumer
# Units, sysusers.d and tmpfiles.d: sandbox/sandbox.mk (install-systemd).
install: all install-units
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MIGRATIONS_INSTALL_DIR) \
		$(DESTDIR)$(PREFIX)/share/doc/paymentd
	install -m 0755 $(INSTALL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(LIBEXEC_DIR)
	install -m 0755 $(BUILD)/paymentd-worker $(BUILD)/paymentd-keyholder $(DESTDIR)$(LIBEXEC_DIR)/
	install -m 0644 migrations/*.sql $(DESTDIR)$(MIGRATIONS_INSTALL_DIR)/
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/paymentd/

install-units: install-systemd

# Docker (for users who have it; the tested path is `make run`).
up:
	docker compose up -d postgres redis redpanda

dev-up:
	docker compose up -d --build

docker-down:
	docker compose down

clean:
	rm -rf build build-san build-cov

help:
	@echo "make            build paymentd, paymentctl, payment-relay into $(BUILD)/"
	@echo "make test       install deps, build, run all tests on a private stack"
	@echo "make run        bring up the local stack and paymentd (scripts/dev-up)"
	@echo "make proto      generate protobuf-c code into $(GEN)/"
	@echo "make migrate    apply migrations to DATABASE_URL"
	@echo "make reset-test-data  recreate acc-payer-001 / acc-payee-002"
	@echo "make san        build with ASan/UBSan into build-san/"
	@echo "make check      format-check + lint + unit tests (fast, no servers)"
	@echo "make test-e2e   every full-stack suite (no dependency install)"
	@echo "make test-cov   line/branch coverage per folder (build-cov/, lcov)"
	@echo "make format     clang-format -i every C source (.clang-format)"
	@echo "make lint       clang-tidy with .clang-tidy"
	@echo "make chaos      fault-injection scenarios under load (chaos-tests/)"
	@echo "make bench      paymentd vs pgbench on a private durable stack"
	@echo "make fuzz       libFuzzer harnesses (tests/fuzz/)"
	@echo "make install    install under PREFIX=$(PREFIX)"
