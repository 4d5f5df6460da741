# ngx_loyalty_module: build, test and run on Debian 12 with the stock nginx.
#
#   make            build the module (.so) and the worker
#   make test       unit tests of the core, the end-to-end suite (prove),
#                   then the bench scripts at a tiny size
#   make run        redis-server + nginx + worker on loopback, Ctrl-C stops all
#   make test SANITIZE=1   the same suite with the module built under ASan/UBSan
#   make valgrind   the same suite with nginx and the worker under memcheck
#   make chaos      races and faults at full size (minutes; CHAOS_ROUNDS=N)
#   make bench      performance figures against a plain proxy_pass: HTTP
#                   scenarios (wrk), instructions per request (callgrind),
#                   the worker's drain; make bench-rss: nginx's RSS over 1M
#                   requests (docs/performance.md)
#   make fuzz       each libFuzzer harness of fuzz/ for FUZZ_SECONDS
#   make fuzz-coverage   the lines of the parsers their corpora reach

NGINX_SRC ?= /usr/share/nginx/src
SANITIZE  ?=

ifeq ($(SANITIZE),1)
BUILD      := build/sanitize
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
else
BUILD      := build/release
SAN_FLAGS  :=
endif

NGX_BUILD  := $(BUILD)/nginx
MODULE_SO  := $(BUILD)/ngx_http_loyalty_module.so
WORKER     := $(BUILD)/loyalty-worker
GEN        := $(BUILD)/gen

# The stock binary's hardening flags, plus the sanitizers when asked.
NGX_CC_OPT := -g -O2 -fstack-protector-strong -Wformat \
              -Werror=format-security -fPIC -D_FORTIFY_SOURCE=2 $(SAN_FLAGS)
NGX_LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC $(SAN_FLAGS)

CC      ?= cc
CFLAGS  := -std=gnu11 -g -O2 -Wall -Wextra -Werror -fstack-protector-strong \
           -D_FORTIFY_SOURCE=2 $(SAN_FLAGS)
LDFLAGS := $(SAN_FLAGS)

CORE_DIR  := ngx_loyalty_module/core
CORE_SRCS := $(wildcard $(CORE_DIR)/*.c)
CORE_HDRS := $(wildcard $(CORE_DIR)/*.h)
LUA_SRCS  := $(wildcard ngx_loyalty_module/lua/*.lua)
MOD_SRCS  := $(wildcard ngx_loyalty_module/*.c ngx_loyalty_module/*.h)
LUA_HDR   := $(GEN)/loyalty_lua.h

WORKER_SRCS := $(wildcard worker/*.c)
UNIT_SRCS   := $(wildcard t/unit/test_*.c)
UNIT_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all deps module worker unit test valgrind chaos run bench bench-http \
        bench-redis \
        bench-cost bench-rss bench-worker fuzz fuzz-build fuzz-coverage clean

all: module worker

deps:
	@sh tools/deps.sh

# --- the module, against a configured copy of Debian's nginx tree ----------

# nginx's Makefile lists the sources: configure again when the list changes
SOURCES_LIST := $(BUILD)/sources.list
$(shell mkdir -p $(BUILD); \
        echo $(sort $(wildcard ngx_loyalty_module/*.[ch] $(CORE_DIR)/*.[ch])) \
        | cmp -s - $(SOURCES_LIST) \
        || echo $(sort $(wildcard ngx_loyalty_module/*.[ch] $(CORE_DIR)/*.[ch])) \
           > $(SOURCES_LIST))

$(NGX_BUILD)/objs/Makefile: config $(SOURCES_LIST) $(NGINX_SRC)/conf_flags \
                            | deps
	rm -rf $(NGX_BUILD)
	cp -r $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && bash -c '. ./conf_flags && ./configure \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	    --add-dynamic-module=$(CURDIR)' > ../configure.log 2>&1 \
	    || { tail -n 30 $(BUILD)/configure.log; exit 1; }

# on a bare machine nginx-dev is not there yet: deps brings it
$(NGINX_SRC)/conf_flags: | deps
	@test -f $@

module: $(NGX_BUILD)/objs/Makefile | deps
	@sh tools/embed-lua.sh $(NGX_BUILD)/objs/addon/loyalty/loyalty_lua.h \
	    $(LUA_SRCS)
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	@# a new file under the name, never a write into the loaded one
	cmp -s $(NGX_BUILD)/objs/ngx_http_loyalty_module.so $(MODULE_SO) \
	    || { cp $(NGX_BUILD)/objs/ngx_http_loyalty_module.so $(MODULE_SO).tmp \
	         && mv -f $(MODULE_SO).tmp $(MODULE_SO); }

# --- the worker and the unit tests share the pure core ---------------------

$(LUA_HDR): $(LUA_SRCS) tools/embed-lua.sh
	@mkdir -p $(GEN)
	sh tools/embed-lua.sh $@ $(LUA_SRCS)

worker: $(WORKER)

$(WORKER): $(WORKER_SRCS) $(wildcard worker/*.h) $(CORE_SRCS) $(CORE_HDRS) \
           $(LUA_HDR) | deps
	$(CC) $(CFLAGS) -I$(CORE_DIR) -I$(GEN) -o $@.tmp $(WORKER_SRCS) \
	    $(CORE_SRCS) $(LDFLAGS) -lhiredis -ljansson
	mv -f $@.tmp $@

$(BUILD)/unit/%: t/unit/%.c t/unit/unit_helpers.h $(CORE_SRCS) $(CORE_HDRS) \
                  $(LUA_HDR) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(CORE_DIR) -I$(GEN) -Iworker -o $@ $< $(CORE_SRCS) \
	    $(UNIT_EXTRA) $(LDFLAGS) -lcmocka

# the worker's pure parts, tested like the core
$(BUILD)/unit/test_spool_record: UNIT_EXTRA := worker/worker_spool_record.c
$(BUILD)/unit/test_spool_record: worker/worker_spool_record.c \
                                 worker/worker_spool_record.h
$(BUILD)/unit/test_account: UNIT_EXTRA := worker/worker_account.c
$(BUILD)/unit/test_account: worker/worker_account.c worker/worker_account.h

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do $$t || exit 1; done

# --- tests and the demo ------------------------------------------------------

# The concurrency tests open about a thousand sockets at once.  Then the
# bench scripts at a tiny size (t/bench/), alone: they load both cores.
test: all unit
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) LOYALTY_SANITIZE=$(SANITIZE) prove -j2 t/
	@sh tools/deps.sh wrk $(if $(SANITIZE),,valgrind)
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) LOYALTY_SANITIZE=$(SANITIZE) prove t/bench/

# Slower: one file at a time; memcheck's findings are judged per file
# (check_valgrind in t/lib/Loyalty/Test.pm).
valgrind: all
	@sh tools/deps.sh valgrind
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) LOYALTY_VALGRIND=1 prove t/

# Races and faults at full size, one file at a time (they load the machine
# on their own); CHAOS_ROUNDS=N cuts every loop of bursts or faults to N,
# CHAOS_REPORT=FILE appends the measured figures to FILE.  See
# docs/reliability.md.
chaos: all
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) LOYALTY_SANITIZE=$(SANITIZE) prove -v t/chaos/

run: all
	LOYALTY_BUILD=$(BUILD) sh tools/run.sh

# --- performance: figures printed, nothing asserted ---------------------------

# The worker's drain of a backlog and Redis bytes per account; ACCRUALS and
# CUSTOMERS size it.
ACCRUALS  ?= 1000000
CUSTOMERS ?= 100000

# One after the other: each needs the two cores to itself.
bench: all
	@$(MAKE) -s bench-http
	@$(MAKE) -s bench-cost
	@$(MAKE) -s bench-redis
	@$(MAKE) -s bench-worker

# The HTTP scenarios against a plain proxy_pass (DURATION, PAIRS,
# CONNECTIONS, WORKERS in the environment; scenario names in SCENARIOS).
bench-http: all
	@sh tools/deps.sh wrk
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) perl bench/http.pl $(SCENARIOS)

# Instructions per request under callgrind (SECONDS per side).
bench-cost: all
	@sh tools/deps.sh wrk valgrind
	LOYALTY_BUILD=$(BUILD) perl bench/cost.pl $(or $(SCENARIOS),coupon confirm)

# nginx's RSS over a million requests (REQUESTS, STEP): a few minutes.
bench-rss: all
	@sh tools/deps.sh wrk
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) perl bench/rss.pl

# What Redis's thread spends per command by pipeline depth, and per
# checkout by coupon batch size (CALLS, CHECKOUTS).
bench-redis: all
	LOYALTY_BUILD=$(BUILD) perl bench/redis-cost.pl

bench-worker: all
	LOYALTY_BUILD=$(BUILD) perl bench/worker-drain.pl $(ACCRUALS) $(CUSTOMERS)

# --- fuzzing: the pure parsers under libFuzzer, ASan and UBSan ----------------

# FUZZ_TARGETS narrows the run (FUZZ_TARGETS="cart money"); each harness
# grows its corpus in build/fuzz/corpus/<target>, seeded from fuzz/corpus.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= cart money code spool_record account
FUZZ_DIR     := build/fuzz
FUZZ_CC      := clang
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -Wall -Wextra -Werror \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                -I$(CORE_DIR) -Iworker -Ifuzz
FUZZ_GEN     := $(FUZZ_DIR)/gen/loyalty_lua.h
FUZZ_SRCS    := $(CORE_SRCS) worker/worker_spool_record.c \
                worker/worker_account.c
FUZZ_HDRS    := $(CORE_HDRS) worker/worker_spool_record.h \
                worker/worker_account.h

$(FUZZ_GEN): $(LUA_SRCS) tools/embed-lua.sh
	@mkdir -p $(dir $@)
	sh tools/embed-lua.sh $@ $(LUA_SRCS)

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_alloc.h $(FUZZ_SRCS) \
                    $(FUZZ_HDRS) $(FUZZ_GEN)
	@sh tools/deps.sh clang libclang-rt-14-dev
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(FUZZ_DIR)/gen -o $@ $< $(FUZZ_SRCS)

fuzz-build: $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    rm -rf $(FUZZ_DIR)/crash/$$t; \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/crash/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s, log in $(FUZZ_DIR)/$$t.log"; \
	    dict=; [ -f fuzz/$$t.dict ] && dict=-dict=fuzz/$$t.dict; \
	    $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	        -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash/$$t/ \
	        $$dict $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t \
	        > $(FUZZ_DIR)/$$t.log 2>&1; \
	    grep -E '^(#[0-9]+ +DONE|Done|stat::|SUMMARY)' $(FUZZ_DIR)/$$t.log; \
	    if ls $(FUZZ_DIR)/crash/$$t | grep -q .; then \
	        echo "fuzz: $$t failed, input in $(FUZZ_DIR)/crash/$$t"; \
	        exit 1; \
	    fi; \
	done

# Which lines of the parsers each target's corpus reaches (the seeds and
# what make fuzz grew), by llvm-cov.
$(FUZZ_DIR)/cov_%: fuzz/fuzz_%.c fuzz/fuzz_alloc.h $(FUZZ_SRCS) \
                   $(FUZZ_HDRS) $(FUZZ_GEN)
	@sh tools/deps.sh clang libclang-rt-14-dev llvm
	$(FUZZ_CC) -std=gnu11 -g -O1 -fsanitize=fuzzer \
	    -fprofile-instr-generate -fcoverage-mapping \
	    -I$(CORE_DIR) -Iworker -Ifuzz -I$(FUZZ_DIR)/gen -o $@ $< $(FUZZ_SRCS)

fuzz-coverage: $(patsubst %,$(FUZZ_DIR)/cov_%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    case $$t in \
	    cart)  src="$(CORE_DIR)/loyalty_cart.c $(CORE_DIR)/loyalty_json.c" ;; \
	    money) src="$(CORE_DIR)/loyalty_money.c" ;; \
	    code)  src="$(CORE_DIR)/loyalty_code.c" ;; \
	    account) src="worker/worker_account.c" ;; \
	    *)     src="worker/worker_spool_record.c $(CORE_DIR)/loyalty_json.c" ;; \
	    esac; \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	    LLVM_PROFILE_FILE=$(FUZZ_DIR)/cov_$$t.profraw \
	        $(FUZZ_DIR)/cov_$$t -runs=0 $(FUZZ_DIR)/corpus/$$t \
	        fuzz/corpus/$$t > $(FUZZ_DIR)/cov_$$t.log 2>&1 || exit 1; \
	    llvm-profdata merge -sparse -o $(FUZZ_DIR)/cov_$$t.profdata \
	        $(FUZZ_DIR)/cov_$$t.profraw || exit 1; \
	    echo "fuzz-coverage: $$t"; \
	    llvm-cov report $(FUZZ_DIR)/cov_$$t \
	        -instr-profile=$(FUZZ_DIR)/cov_$$t.profdata $$src || exit 1; \
	done

clean:
	rm -rf build run
