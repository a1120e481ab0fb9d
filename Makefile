# weft build. `make` builds build/weft; `make test` runs every test; `make demo`
# traces the bundled demo. V=1 prints full commands.
.DEFAULT_GOAL := all
ARCH ?= x86
BUILD := build
CC ?= cc
CLANG ?= clang
BPFTOOL ?= bpftool
LIBBPF_A ?= $(shell ls /usr/lib/$$(gcc -dumpmachine)/libbpf.a 2>/dev/null)
PYTHON ?= /usr/bin/python3

ifeq ($(V),1)
Q :=
msg =
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS ?= -O2 -g
CFLAGS += $(WARN) -Wno-format-truncation -std=gnu11 -D_GNU_SOURCE -I$(BUILD) -Ibpf -MMD -MP
LDLIBS += $(LIBBPF_A) -lelf -lz -lzstd -lcurl -lprotobuf-c -ldw -lcapstone -lpthread -lm

BPF_CFLAGS := $(BPF_EXTRA) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Ivmlinux -Ibpf \
	$(WARN) -Wno-compare-distinct-pointer-types -MMD -MP

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

# Generated sources (protobuf-c etc.) register themselves through mk/*.mk.
GEN_SRCS :=
GEN_HDRS :=
-include mk/*.mk

# The agent's sources live in one folder per stage (docs/ARCHITECTURE.md);
# headers are found by name from every folder.
USER_DIRS := $(shell find user -type d)
USER_SRCS := $(shell find user -name '*.c' | sort)
USER_OBJS := $(patsubst user/%.c,$(BUILD)/user/%.o,$(USER_SRCS)) $(patsubst %.c,$(BUILD)/%.o,$(GEN_SRCS))
LIB_OBJS := $(filter-out $(BUILD)/user/cli/main.o,$(USER_OBJS))
CFLAGS += $(addprefix -I,$(USER_DIRS))

# Unit tests mirror user/: tests/unit/<folder>/test_<name>.c -> build/tests/test_<name>.
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' | sort)
UNIT_BINS := $(patsubst %.c,$(BUILD)/tests/%,$(notdir $(UNIT_SRCS)))
vpath test_%.c $(sort $(dir $(UNIT_SRCS)))

.PHONY: all test unit e2e demo clean bench
.SECONDARY: $(BPF_OBJS) $(SKELS)
all: $(BUILD)/weft

$(BUILD)/%.bpf.o: bpf/%.bpf.c Makefile | $(BUILD)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

$(BUILD)/user/%.o: user/%.c $(SKELS) $(GEN_HDRS) | $(BUILD)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/weft: $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: %.c $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDLIBS) -lcmocka

# Replay benchmark of the agent's per-span path (bench/span_path.c): linked
# with the agent's objects like the unit tests.
$(BUILD)/bench/span_path: bench/span_path.c $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) -o $@ $(LDLIBS)

$(BUILD):
	$(Q)mkdir -p $@

unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

e2e: $(BUILD)/weft
	$(Q)$(PYTHON) -m pytest -q tests/e2e $(PYTEST_ARGS)

# Unit tests, the kernel matrix (every program on 6.1, 6.12 and this kernel),
# then end-to-end tests against real processes (needs root).
test: unit test-kernels e2e

# weft doctor --programs --strict on this kernel and, under QEMU, on the Debian
# kernels pinned in scripts/kernels.list: fails if one of them refuses one of
# weft's programs or a program is over weft's ceilings (needs root).
.PHONY: test-kernels
test-kernels: $(BUILD)/weft
	$(Q)scripts/test-kernels

demo: $(BUILD)/weft
	$(Q)tests/apps/demo/run

bench: $(BUILD)/weft
	$(Q)bench/http_overhead
	$(Q)bench/go_overhead

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.d $(BUILD)/tests/*.d) $(shell find $(BUILD)/user -name '*.d' 2>/dev/null)
