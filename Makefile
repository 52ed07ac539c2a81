# goim for nginx: build, run, test, bench.
#
#   make            module, job, tools and unit tests under build/
#   make run        the embedded single-node demo (foreground)
#   make test       every suite under t/ with prove
#   make bench      benchmark scenarios -> bench/RESULTS.md

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
               proto/goim_query.c proto/goim_cityhash.c proto/goim_jwt.c
PROTO_OBJS  := $(PROTO_SRCS:proto/%.c=$(BUILD)/obj/%.o) \
               $(BUILD)/obj/goim.pb-c.o

MODULE_SRCS := $(wildcard ngx_goim_module/*.c ngx_goim_module/*.h) \
               $(wildcard proto/*.c proto/*.h) proto/goim.proto config

UNIT_TESTS  := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/*.c))

.PHONY: all deps module tools unit run test bench clean

all: module tools unit

deps:
	@sh tools/install-deps.sh

module: $(BUILD)/ngx_goim_module.so

tools: $(BUILD)/kafka-mock $(BUILD)/kafka-probe $(BUILD)/goim-job \
       $(BUILD)/goim-bench $(BUILD)/goim-jwt

unit: $(UNIT_TESTS)

# --- the nginx module ---------------------------------------------------------
# Debian's nginx-dev ships headers and configure scripts but no stream
# sources, so only our target is built (DESIGN.md "External parts").

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

$(BUILD)/goim-bench: tools/goim-bench.c $(PROTO_OBJS)
	$(CC) $(ALL_CFLAGS) $< $(PROTO_OBJS) -o $@ -lprotobuf-c -lyajl -lcrypto

$(BUILD)/goim-jwt: tools/goim-jwt.c $(PROTO_OBJS)
	$(CC) $(ALL_CFLAGS) $< $(PROTO_OBJS) -o $@ -lprotobuf-c -lyajl -lcrypto

$(BUILD)/goim-job: $(wildcard job/*.c job/*.h) $(PROTO_OBJS)
	$(CC) $(ALL_CFLAGS) -Ijob $(wildcard job/*.c) $(PROTO_OBJS) -o $@ \
	    -lrdkafka -lprotobuf-c -lhiredis -levent -lyajl -lcrypto

# --- unit tests (TAP, run by prove through t/unit.t) ---------------------------

$(BUILD)/unit/%: t/unit/%.c $(PROTO_OBJS) t/unit/tap.h
	mkdir -p $(BUILD)/unit
	$(CC) $(ALL_CFLAGS) -It/unit $< $(PROTO_OBJS) -o $@ \
	    -lrdkafka -lprotobuf-c -lyajl -lcrypto -lpthread

# --- the two README commands ---------------------------------------------------

run: deps all
	sh conf/run-embedded.sh

test: deps all
	prove -r t

bench: deps all
	sh bench/run.sh

clean:
	rm -rf $(BUILD) t/servroot*
