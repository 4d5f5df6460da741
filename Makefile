# ngx_loyalty_module: build, test and run on Debian 12 with the stock nginx.
#
#   make            build the module (.so) and the worker
#   make test       unit tests of the core, then the end-to-end suite (prove)
#   make run        redis-server + nginx + worker on loopback, Ctrl-C stops all
#   make test SANITIZE=1   the same suite with the module built under ASan/UBSan
#   make valgrind   the same suite with nginx and the worker under memcheck
#   make chaos      races and faults at full size (minutes; CHAOS_ROUNDS=N)
#   make bench      performance figures against a plain proxy_pass: HTTP
#                   scenarios (wrk), instructions per request (callgrind),
#                   the worker's drain; make bench-rss: nginx's RSS over 1M
#                   requests (docs/performance.md)

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
        bench-cost bench-rss bench-worker clean

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
	$(CC) $(CFLAGS) -I$(CORE_DIR) -I$(GEN) -o $@ $< $(CORE_SRCS) \
	    $(LDFLAGS) -lcmocka

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do $$t || exit 1; done

# --- tests and the demo ------------------------------------------------------

# The concurrency tests open about a thousand sockets at once.
test: all unit
	ulimit -n 8192 2>/dev/null || ulimit -n $$(ulimit -Hn); \
	LOYALTY_BUILD=$(BUILD) LOYALTY_SANITIZE=$(SANITIZE) prove -j2 t/

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

bench-worker: all
	LOYALTY_BUILD=$(BUILD) perl bench/worker-drain.pl $(ACCRUALS) $(CUSTOMERS)

clean:
	rm -rf build run
