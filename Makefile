# likes: build, run and test the like pipeline.
#
#   make run     install what is missing, build, start the local stack and
#                the services, drive a demo burst of likes, serve until Ctrl-C
#   make test    install what is missing, build, run every test
#   make up      the stack and the services in the background
#   make down    stop them
#
# Binaries land in build/bin; the sanitizer build used by tests in
# build/asan/bin.

SHELL := /bin/bash
CC ?= cc
PKGS := rdkafka libmicrohttpd vips json-c hiredis libpq libcrypto

BUILD ?= build
SANITIZE ?=

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS = $(shell pkg-config --libs $(PKGS))

CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wformat=2 -g -Ilib
ifeq ($(SANITIZE),1)
CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined
else
CFLAGS_OPT := -O2
LDFLAGS_SAN :=
endif
ALL_CFLAGS = $(CFLAGS_COMMON) $(CFLAGS_OPT) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDLIBS = $(LDFLAGS_SAN) $(PKG_LIBS) -lpthread -lm $(LDLIBS)

LIB_SRC := $(wildcard lib/*.c)
INGEST_SRC := $(wildcard ingest/*.c)
AGGREGATOR_SRC := $(wildcard aggregator/*.c)
PERSISTER_SRC := $(wildcard persister/*.c)
LIKESCTL_SRC := $(wildcard likesctl/*.c)
UNIT_SRC := $(wildcard test/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIB_OBJ := $(call obj,$(LIB_SRC))
BINS := $(BUILD)/bin/likes-ingest $(BUILD)/bin/likes-aggregator $(BUILD)/bin/likes-persister \
        $(BUILD)/bin/likesctl
UNIT_BINS := $(patsubst test/unit/%.c,$(BUILD)/test/%,$(UNIT_SRC))

.SECONDARY:

.PHONY: all build app asan deps up down run test test-unit test-faults bench-stream lint format console clean

all: build

build: $(BINS) app

# The same sources under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=1 build units

units: $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c $(wildcard lib/*.h) $(wildcard */*.h) $(wildcard test/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/test/unit/%.o: ALL_CFLAGS += -Iaggregator -Iingest

$(BUILD)/bin/likes-ingest: $(call obj,$(INGEST_SRC)) $(LIB_OBJ)
$(BUILD)/bin/likes-aggregator: $(call obj,$(AGGREGATOR_SRC)) $(LIB_OBJ)
$(BUILD)/bin/likes-persister: $(call obj,$(PERSISTER_SRC)) $(LIB_OBJ)
$(BUILD)/bin/likesctl: $(call obj,$(LIKESCTL_SRC)) $(LIB_OBJ)

$(BINS):
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) -o $@ $^ $(ALL_LDLIBS)

# Unit tests of a process's own files link those files too.
$(BUILD)/test/test_counts: $(BUILD)/obj/aggregator/counts.o
$(BUILD)/test/test_form: $(BUILD)/obj/ingest/form.o

$(BUILD)/test/%: $(BUILD)/obj/test/unit/%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) -o $@ $^ $(ALL_LDLIBS)

deps:
	@scripts/install-deps.sh

up: deps build
	@scripts/stack.sh start
	@scripts/services.sh start

down:
	@scripts/services.sh stop || true
	@scripts/stack.sh stop

run: deps build
	@scripts/run.sh

# Python tools of the tests, in a virtual environment of the project's own.
.venv/.installed: test/requirements.txt
	@echo "  VENV    .venv"
	@python3 -m venv .venv
	@.venv/bin/pip install --quiet --disable-pip-version-check -r test/requirements.txt
	@touch $@

test: deps .venv/.installed
	@$(MAKE) --no-print-directory build asan
	@test/run.sh

# Every fault three times under heavier traffic; `make test` runs each once.
test-faults: deps
	@$(MAKE) --no-print-directory build
	@python3 test/faults/run.py

test-unit: deps
	@$(MAKE) --no-print-directory asan
	@test/run.sh unit

# Latency of live counts at 10,000 subscribers, against the stack of `make up`
# (or the one LIKES_* points at). Options go in BENCH_ARGS, e.g. "-n 2000 -d 10".
bench-stream: $(BUILD)/bin/stream-bench $(BUILD)/bin/likesctl
	@. scripts/env.sh && $(BUILD)/bin/stream-bench -l $(BUILD)/bin/likesctl $(BENCH_ARGS)

$(BUILD)/bin/stream-bench: test/bench/stream_bench.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_COMMON) $(CFLAGS_OPT) $(CFLAGS) -o $@ $< -lpthread

console:
	@scripts/console.sh $(or $(TOPIC),likes)

lint:
	@clang-format --dry-run --Werror $(wildcard lib/*.[ch] ingest/*.[ch] aggregator/*.[ch] \
		persister/*.[ch] likesctl/*.[ch] test/unit/*.[ch] test/bench/*.[ch])

format:
	@clang-format -i $(wildcard lib/*.[ch] ingest/*.[ch] aggregator/*.[ch] persister/*.[ch] \
		likesctl/*.[ch] test/unit/*.[ch] test/bench/*.[ch])

# The web app that ingest serves at /: npm ci only when node_modules is
# missing or the lock changed, then a type check and a Vite build.
APP_SRC := $(shell find app/src app/public -type f 2>/dev/null) app/index.html app/sw.js \
           app/vite.config.ts app/tsconfig.json app/package.json

app: app/dist/index.html

app/dist/index.html: app/node_modules/.package-lock.json $(APP_SRC)
	@echo "  VITE    app/dist"
	@cd app && npm run --silent build -- --logLevel warn
	@touch $@

app/node_modules/.package-lock.json: app/package-lock.json
	@echo "  NPM     app/node_modules"
	@cd app && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

clean:
	rm -rf build app/dist
