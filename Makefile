# goim for nginx: build, run, test, bench.
#
#   make            module, job, tools and unit tests under build/
#   make run        the embedded single-node demo (foreground)
#   make run-cluster  redis, kafka-mock, two nodes and the job (foreground)
#   make test       every suite under t/ with prove, TEST_JOBS at a time
#   make bench      benchmark scenarios -> bench/RESULTS.md
#   make bench-100k 100,000 concurrent connections -> bench/RESULTS-100k.md
#   make bench-1m   1,000,000 concurrent connections -> bench/RESULTS-1M.md
#   make bench-chat chat shape: 100k connections in personal + group rooms,
#                   group pushes, reconnects -> bench/RESULTS-100k.md
#   make bench-instr  goim_history's cost in instructions per delivery
#                   (nginx under callgrind) -> build/bench/instr/
#   make fuzz       each libFuzzer target for FUZZ_TIME seconds (fuzz/)
#   make test-asan  every suite with the module built with ASan + UBSan
#   make test-valgrind  every suite with nginx under valgrind memcheck
#   make soak       10k connections under pushes for SOAK_TIME s -> bench/SOAK.md
#   make js-test    the JavaScript client's tests and the browser suite
#   make js-pack    the npm package goim-client -> build/
#   make check-layers  the module's floors call one way (ngx_goim_module/LAYERS)

SHELL       := /bin/bash
NGINX_SRC   ?= /usr/share/nginx/src
BUILD       := build
NGX_BUILD   := $(BUILD)/nginx
GEN         := $(BUILD)/gen

CC          ?= cc
WARN        := -Wall -Wextra -Werror
CFLAGS      ?= -O2 -g
ALL_CFLAGS  := $(CFLAGS) $(WARN) -Iproto -I$(GEN) -D_GNU_SOURCE

PROTO_SRCS  := proto/goim_packet.c proto/goim_ws.c proto/goim_token.c \
               proto/goim_query.c proto/goim_cityhash.c proto/goim_jwt.c \
               proto/goim_registry.c proto/goim_recover.c \
               proto/goim_rooms.c
PROTO_OBJS  := $(PROTO_SRCS:proto/%.c=$(BUILD)/obj/%.o) \
               $(BUILD)/obj/goim.pb-c.o

MODULE_SRCS := $(wildcard ngx_goim_module/*.c ngx_goim_module/*.h \
                         ngx_goim_module/*/*.c ngx_goim_module/*/*.h) \
               $(wildcard proto/*.c proto/*.h) proto/goim.proto config

UNIT_TESTS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/*.c))

.PHONY: all deps module tools unit run run-cluster test bench fuzz clean \
        check-layers

all: module tools unit

deps:
	@sh tools/install-deps.sh

module: $(BUILD)/ngx_goim_module.so

tools: $(BUILD)/kafka-mock $(BUILD)/kafka-probe $(BUILD)/goim-job \
       $(BUILD)/goim-bench $(BUILD)/goim-jwt $(BUILD)/goim-floor \
       $(BUILD)/goim-produce

unit: $(UNIT_TESTS)

# --- the nginx module ---------------------------------------------------------
# Debian's nginx-dev ships headers and configure scripts but no stream
# sources, so only our target is built (docs/ARCHITECTURE.md, "building
# against Debian's nginx-dev").

$(NGX_BUILD)/objs/Makefile: config
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --with-stream=dynamic \
	        --add-dynamic-module=$(CURDIR) >configure.log 2>&1 \
	    || { tail -30 configure.log; rm -f objs/Makefile; exit 1; }

$(BUILD)/ngx_goim_module.so: $(NGX_BUILD)/objs/Makefile $(MODULE_SRCS)
	protoc-c --proto_path=proto --c_out=$(NGX_BUILD)/objs/addon/goim_gen \
	    proto/goim.proto
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile objs/ngx_goim_module.so
	cp $(NGX_BUILD)/objs/ngx_goim_module.so $@.tmp
	mv -f $@.tmp $@

# --- shared pure C (codecs, generated protobuf) -------------------------------

$(GEN)/goim.pb-c.c $(GEN)/goim.pb-c.h: proto/goim.proto
	mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) proto/goim.proto

$(BUILD)/obj/goim.pb-c.o: $(GEN)/goim.pb-c.c
	mkdir -p $(BUILD)/obj
	$(CC) $(CFLAGS) -I$(GEN) -c $< -o $@

$(BUILD)/obj/%.o: proto/%.c proto/*.h $(GEN)/goim.pb-c.h
	mkdir -p $(BUILD)/obj
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# --- tools and job -------------------------------------------------------------

$(BUILD)/kafka-mock: tools/kafka-mock.c
	mkdir -p $(BUILD)
	$(CC) $(ALL_CFLAGS) $< -o $@ -lrdkafka -lpthread

$(BUILD)/kafka-probe: tools/kafka-probe.c
	mkdir -p $(BUILD)
	$(CC) $(ALL_CFLAGS) $< -o $@ -lrdkafka

$(BUILD)/goim-bench: $(wildcard tools/bench/*.c tools/bench/*.h) $(PROTO_OBJS)
	$(CC) $(ALL_CFLAGS) -Itools/bench $(wildcard tools/bench/*.c) \
	    $(PROTO_OBJS) -o $@ -lprotobuf-c -lyajl -lcrypto

$(BUILD)/goim-jwt: tools/goim-jwt.c $(PROTO_OBJS)
	$(CC) $(ALL_CFLAGS) $< $(PROTO_OBJS) -o $@ -lprotobuf-c -lyajl -lcrypto

$(BUILD)/goim-floor: tools/goim-floor.c
	mkdir -p $(BUILD)
	$(CC) $(ALL_CFLAGS) $< -o $@ -luring

$(BUILD)/goim-produce: tools/goim-produce.c $(BUILD)/obj/goim.pb-c.o
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/obj/goim.pb-c.o -o $@ \
	    -lrdkafka -lprotobuf-c

$(BUILD)/goim-job: $(wildcard job/*.c job/*.h) $(PROTO_OBJS)
	$(CC) $(ALL_CFLAGS) -Ijob $(wildcard job/*.c) $(PROTO_OBJS) -o $@ \
	    -lrdkafka -lprotobuf-c -lhiredis -levent -levent_openssl -lyajl \
	    -lssl -lcrypto

# --- unit tests (TAP, run by prove through t/unit.t) ---------------------------

$(BUILD)/unit/%: t/unit/%.c $(PROTO_OBJS) t/unit/tap.h
	mkdir -p $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -It/unit $< $(PROTO_OBJS) -o $@ \
	    -lrdkafka -lprotobuf-c -lyajl -lcrypto -lpthread

# the job's floors below the registry (job/LAYERS), t/unit/job_*.c:
# logging, configuration, offset tracker, send queue with room batching,
# routing decision; no libevent, librdkafka or hiredis
JOB_PURE    := job/goim_job_log.c job/goim_job_conf.c \
               job/goim_job_offsets.c job/goim_job_queue.c \
               job/goim_job_rules.c
JOB_PURE_H  := job/goim_job_log.h job/goim_job_conf.h \
               job/goim_job_offsets.h job/goim_job_queue.h \
               job/goim_job_rules.h

$(BUILD)/unit/job_%: t/unit/job_%.c $(JOB_PURE) $(JOB_PURE_H) \
                     $(PROTO_OBJS) t/unit/tap.h
	mkdir -p $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -It/unit -Ijob $< $(JOB_PURE) $(PROTO_OBJS) -o $@ \
	    -lprotobuf-c -lyajl -lcrypto

# the module's pure parts (t/unit/module_*.c): the layout of a push
# between workers, a room's rate limit; no nginx headers
MODULE_PURE := ngx_goim_module/ipc/goim_imsg.c \
               ngx_goim_module/push/goim_room_schedule.c
MODULE_PURE_INCS := -Ingx_goim_module/ipc -Ingx_goim_module/push

$(BUILD)/unit/module_%: t/unit/module_%.c $(MODULE_PURE) \
                        $(MODULE_PURE:.c=.h) t/unit/tap.h
	mkdir -p $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -It/unit $(MODULE_PURE_INCS) $< $(MODULE_PURE) -o $@

# --- the module's floors call one way (docs/ARCHITECTURE.md) ----------------

check-layers:
	perl tools/check-layers.pl ngx_goim_module/LAYERS $(wildcard job/LAYERS)

# --- fuzzing: libFuzzer targets on the pure C parsers (fuzz/README.md) --------
# Each target runs on build/fuzz/corpus/<target>, seeded from
# fuzz/corpus/<target> (never written back); a crash, leak, sanitizer
# report or timeout fails `make fuzz`, its input left in
# build/fuzz/artifacts/<target>/.

FUZZ_TIME    ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all $(WARN) -Iproto
FUZZ_TARGETS := fuzz_packet fuzz_raw fuzz_ws fuzz_token fuzz_query

FUZZ_SRCS_packet := proto/goim_packet.c
FUZZ_SRCS_raw    := proto/goim_packet.c
FUZZ_SRCS_ws     := proto/goim_ws.c
FUZZ_LIBS_ws     := -lcrypto
FUZZ_SRCS_token  := proto/goim_token.c
FUZZ_LIBS_token  := -lyajl
FUZZ_SRCS_query  := proto/goim_query.c

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h proto/*.h proto/*.c
	mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(FUZZ_SRCS_$*) -o $@ $(FUZZ_LIBS_$*)

fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    corpus=$(BUILD)/fuzz/corpus/$$t; \
	    art=$(BUILD)/fuzz/artifacts/$$t; \
	    log=$(BUILD)/fuzz/$$t.log; \
	    mkdir -p $$corpus $$art; \
	    cp fuzz/corpus/$$t/* $$corpus/; \
	    echo "fuzz: $$t for $(FUZZ_TIME) s ($$log)"; \
	    if UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/fuzz/$$t \
	           -max_total_time=$(FUZZ_TIME) -timeout=10 \
	           -print_final_stats=1 -artifact_prefix=$$art/ \
	           $$corpus >$$log 2>&1; \
	    then \
	        awk -F': +' -v t=$$t \
	            '/^stat::number_of_executed_units/ { n = $$NF } \
	             /^stat::average_exec_per_sec/ { e = $$NF } \
	             /^stat::peak_rss_mb/ { m = $$NF } \
	             /^#[0-9].*(INITED|DONE)/ { c = $$0; \
	                 sub(/.*cov: /, "", c); sub(/ .*/, "", c) } \
	             END { printf "fuzz: %s ok: %s runs, %s exec/s, " \
	                          "cov %s, peak %s MB\n", t, n, e, c, m }' $$log; \
	    else \
	        tail -n 60 $$log; \
	        echo "fuzz: $$t FAILED, input in $$art/"; \
	        failed="$$failed $$t"; \
	    fi; \
	done; \
	[ -z "$$failed" ] || { echo "fuzz: failed:$$failed"; exit 1; }

# --- sanitizers: AddressSanitizer + UBSan (make test-asan) ----------------------
# A second configured nginx tree builds build/asan/ngx_goim_module.so with
# ASan and UBSan; the proto objects, unit tests and job are built with them
# too (UBSan fatal there: any report fails the binary). Debian's nginx is
# not instrumented, so tools/asan-nginx.sh runs it with libasan preloaded;
# the reports land in error.log, which the harness checks after every
# block (TEST_NGINX_ASAN, t/lib/Test/Goim.pm).

ASAN_DIR        := $(BUILD)/asan
ASAN_NGX        := $(BUILD)/nginx-asan
ASAN_FLAGS      := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_CFLAGS     := -O1 -g $(ASAN_FLAGS) -fno-sanitize-recover=all \
                   $(WARN) -Iproto -I$(GEN) -D_GNU_SOURCE
ASAN_PROTO_OBJS := $(PROTO_OBJS:$(BUILD)/obj/%=$(ASAN_DIR)/obj/%)
ASAN_UNIT_TESTS := $(UNIT_TESTS:$(BUILD)/unit/%=$(ASAN_DIR)/unit/%)

.PHONY: asan test-asan

asan: $(ASAN_DIR)/ngx_goim_module.so $(ASAN_DIR)/ubsan-options.so \
      $(ASAN_DIR)/goim-job $(ASAN_UNIT_TESTS)

# detect_leaks=0: configure runs some of its test programs
$(ASAN_NGX)/objs/Makefile: config
	rm -rf $(ASAN_NGX)
	mkdir -p $(BUILD)
	cp -r $(NGINX_SRC) $(ASAN_NGX)
	cd $(ASAN_NGX) && . ./conf_flags && ASAN_OPTIONS=detect_leaks=0 \
	    ./configure "$${NGX_CONF_FLAGS[@]}" --with-stream=dynamic \
	        --with-cc-opt="$(ASAN_FLAGS)" \
	        --with-ld-opt="-fsanitize=address,undefined" \
	        --add-dynamic-module=$(CURDIR) >configure.log 2>&1 \
	    || { tail -30 configure.log; rm -f objs/Makefile; exit 1; }

$(ASAN_DIR)/ngx_goim_module.so: $(ASAN_NGX)/objs/Makefile $(MODULE_SRCS)
	protoc-c --proto_path=proto --c_out=$(ASAN_NGX)/objs/addon/goim_gen \
	    proto/goim.proto
	$(MAKE) -C $(ASAN_NGX) -f objs/Makefile objs/ngx_goim_module.so
	mkdir -p $(ASAN_DIR)
	cp $(ASAN_NGX)/objs/ngx_goim_module.so $@.tmp
	mv -f $@.tmp $@

$(ASAN_DIR)/ubsan-options.so: tools/ubsan-options.c
	mkdir -p $(ASAN_DIR)
	$(CC) $(CFLAGS) $(WARN) -shared -fPIC $< -o $@

$(ASAN_DIR)/obj/goim.pb-c.o: $(GEN)/goim.pb-c.c
	mkdir -p $(ASAN_DIR)/obj
	$(CC) -O1 -g $(ASAN_FLAGS) -fno-sanitize-recover=all -I$(GEN) -c $< -o $@

$(ASAN_DIR)/obj/%.o: proto/%.c proto/*.h $(GEN)/goim.pb-c.h
	mkdir -p $(ASAN_DIR)/obj
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(ASAN_DIR)/unit/%: t/unit/%.c $(ASAN_PROTO_OBJS) t/unit/tap.h
	mkdir -p $(ASAN_DIR)/unit
	$(CC) $(ASAN_CFLAGS) -It/unit $< $(ASAN_PROTO_OBJS) -o $@ \
	    -lrdkafka -lprotobuf-c -lyajl -lcrypto -lpthread

$(ASAN_DIR)/unit/job_%: t/unit/job_%.c $(JOB_PURE) $(JOB_PURE_H) \
                        $(ASAN_PROTO_OBJS) t/unit/tap.h
	mkdir -p $(ASAN_DIR)/unit
	$(CC) $(ASAN_CFLAGS) -It/unit -Ijob $< $(JOB_PURE) $(ASAN_PROTO_OBJS) \
	    -o $@ -lprotobuf-c -lyajl -lcrypto

$(ASAN_DIR)/unit/module_%: t/unit/module_%.c $(MODULE_PURE) \
                           $(MODULE_PURE:.c=.h) t/unit/tap.h
	mkdir -p $(ASAN_DIR)/unit
	$(CC) $(ASAN_CFLAGS) -It/unit $(MODULE_PURE_INCS) $< $(MODULE_PURE) -o $@

$(ASAN_DIR)/goim-job: $(wildcard job/*.c job/*.h) $(ASAN_PROTO_OBJS)
	mkdir -p $(ASAN_DIR)
	$(CC) $(ASAN_CFLAGS) -Ijob $(wildcard job/*.c) $(ASAN_PROTO_OBJS) -o $@ \
	    -lrdkafka -lprotobuf-c -lhiredis -levent -levent_openssl -lyajl \
	    -lssl -lcrypto

# the whole t/ suite: nginx through tools/asan-nginx.sh with the ASan
# module, the unit tests from build/asan/unit, the job's suites with the
# ASan goim-job
test-asan: deps all asan
	$(ASAN_DIR)/goim-job --version
	$(ASAN_DIR)/goim-job -t -c conf/goim-job.conf
	export TEST_NGINX_ASAN=1 \
	    TEST_NGINX_BINARY=$(CURDIR)/tools/asan-nginx.sh \
	    TEST_GOIM_JOB=$(CURDIR)/$(ASAN_DIR)/goim-job \
	    TEST_GOIM_MODULE=$(CURDIR)/$(ASAN_DIR)/ngx_goim_module.so \
	    TEST_GOIM_UNIT_DIR=$(CURDIR)/$(ASAN_DIR)/unit; \
	$(PROVE_ALL)

# --- the JavaScript client, the demo page, the browser suite (clients/) --------
# `make deps` also installs clients/js's dev dependencies (ws, playwright-core,
# typescript; pinned by its package-lock.json) into clients/js/node_modules,
# which git ignores.  Their tests run in `make test` (t/100-js-client.t,
# t/110-browser.t); `make js-test` runs only them, `make js-pack` writes the
# npm package to build/.

JS_DIR := clients/js

.PHONY: js-deps js-test js-pack
deps: js-deps

js-deps:
	@sh tools/install-deps.sh
	@if [ ! -f $(JS_DIR)/node_modules/.package-lock.json ] \
	    || [ $(JS_DIR)/package-lock.json -nt \
	         $(JS_DIR)/node_modules/.package-lock.json ] \
	    || [ $(JS_DIR)/package.json -nt \
	         $(JS_DIR)/node_modules/.package-lock.json ]; \
	then \
	    echo "npm ci in $(JS_DIR)"; \
	    cd $(JS_DIR) && npm ci --no-audit --no-fund --ignore-scripts; \
	fi

js-test: js-deps module
	prove t/100-js-client.t t/110-browser.t

js-pack: js-deps
	mkdir -p $(BUILD)
	cd $(JS_DIR) && npm pack --pack-destination $(CURDIR)/$(BUILD)

# --- the two README commands ---------------------------------------------------

run: deps all
	sh conf/run-embedded.sh

# redis-server, kafka-mock, two nginx nodes and the job (foreground)
run-cluster: deps all
	bash conf/run-cluster.sh

# The suites run TEST_JOBS at a time (prove -j): each has its own random
# ports and servroot (t/lib/Test/Goim.pm, t/lib/GoimCluster.pm).  Then
# TEST_SERIAL run one by one, alone: run-cluster.sh's block of ports, the
# CPU-heavy JavaScript and browser suites, and the suites that measure
# time (drains, sub-second Redis timeouts, the cluster's recovery
# bounds), which fail when another suite takes the CPU.  Both runs go on
# when one fails; either fails the target.
TEST_JOBS   ?= $(shell n=$$(nproc 2>/dev/null || echo 2); \
                       [ "$$n" -gt 4 ] && n=4; echo $$n)
TEST_SERIAL := t/043-drain.t t/050-redis-session.t t/090-cluster.t \
               t/092-run-cluster.t t/100-js-client.t t/110-browser.t
# the longest first, so that the others run beside them
TEST_FIRST  := t/082-job.t t/080-kafka-producer.t
TEST_PAR     = $(TEST_FIRST) $(filter-out $(TEST_SERIAL) $(TEST_FIRST), \
                   $(sort $(wildcard t/*.t t/*/*.t)))
PROVE_ALL    = prove -j$(TEST_JOBS) $(TEST_PAR); par=$$?; \
               prove $(TEST_SERIAL); ser=$$?; \
               [ $$par -eq 0 ] && [ $$ser -eq 0 ]

test: deps all
	$(PROVE_ALL)

# every suite with nginx (master and workers) under valgrind memcheck: a
# block fails on an error in goim code (t/lib/Test/Goim.pm); about 5
# minutes on 2 CPUs (timeouts scaled by TEST_NGINX_VALGRIND_SCALE).  One
# suite at a time: memcheck takes a CPU per nginx process already.
.PHONY: test-valgrind
test-valgrind: deps all
	TEST_NGINX_VALGRIND=1 prove -r t

bench: deps all
	sh bench/run.sh

# RSS, shm and fds of nginx holding 10k connections under pushes: flat or
# not (bench/soak.sh, bench/SOAK.md)
SOAK_TIME ?= 600
.PHONY: soak
soak: deps module tools
	SOAK_TIME=$(SOAK_TIME) bash bench/soak.sh

# 100,000 connections (50,000 TCP + 50,000 WebSocket) on 6 workers, then
# room pushes to all of them; appends to bench/RESULTS-100k.md (~1 min)
.PHONY: bench-100k
bench-100k: deps module tools
	sh bench/run-100k.sh

# goim_history off and on, alternating, with nginx under callgrind:
# instructions per delivery, which the machine's load does not move
# (bench/instr.sh; ~6 min)
.PHONY: bench-instr
bench-instr: deps module tools
	sh bench/instr.sh

# the chat shape (bench/run-chat.sh): BENCH_CHAT_CONNS (100,000) connections,
# each in a personal and a 10-member group room, pushes to random groups
# for BENCH_CHAT_DELIVERIES (50,000) deliveries/s, 1 % reconnecting a
# second; appends to bench/RESULTS-100k.md (~3 min at 100k)
.PHONY: bench-chat
bench-chat: deps module tools
	sh bench/run-chat.sh

# 1,000,000 connections (BENCH_1M_CLIENTS) on one nginx in a network
# namespace of its own: memory per connection by kernel cache, room
# pushes and a broadcast to all, a reload when the registry's slots
# allow; appends to bench/RESULTS-1M.md (~10 min and ~13 GB at 1M;
# refuses to start when it would leave under BENCH_1M_RESERVE_GB free)
.PHONY: bench-1m
bench-1m: deps module tools
	sh bench/run-1m.sh

# --- Debian packages (debian/, tools/deb-build.sh, tools/test-deb.t) ----------
# make deb: libnginx-mod-goim and goim-job built with debhelper from a
# copy of the working tree, version from git, checked by lintian; the two
# packages land in build/, the rest in build/deb/.  make test-deb (root,
# changes the system, so not part of make test): installs them with
# apt-get into the system nginx, runs a node and the job, pushes, then
# removes them and restores what it changed.

.PHONY: deb test-deb

deb: deps
	bash tools/deb-build.sh

test-deb: deb tools
	prove -v tools/test-deb.t

clean:
	rm -rf $(BUILD) t/servroot*
