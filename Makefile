# devmemtcp: see README.md.  `make demo` runs the main job, `make check`
# runs every test; both install what they need first (as root).
CACHE ?= $(or $(DEVMEMTCP_CACHE),/var/cache/devmemtcp)
BUILD := build
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror
MNL_CFLAGS = $(shell pkg-config --cflags libmnl 2>/dev/null)
MNL_LIBS = $(shell pkg-config --libs libmnl 2>/dev/null || echo -lmnl)
RIG_HEADERS = $(CACHE)/tools/current/usr/include
KSRC = $(shell sed -n 's/^SRC=//p' $(CACHE)/build/normal/devmemtcp.env 2>/dev/null)

TEST_SRCS := $(wildcard tests/progs/*.c)
TEST_PROGS := $(patsubst tests/progs/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_PROGS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
KMOD_FILES := $(wildcard kernel/*/*.c kernel/*/*.h)

.PHONY: all deps vm vm-debug demo check test bench checkpatch rig-progs clean

all: $(TEST_PROGS) $(BENCH_PROGS)

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) $< -o $@

$(BUILD)/tests/%: tests/progs/%.c $(wildcard tests/progs/*.h)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Itests/progs $(MNL_CFLAGS) $< -o $@ $(MNL_LIBS)

# The uapi numbers we define ourselves, checked against the rig kernel's
# own installed headers.
rig-progs: $(BUILD)/tests/uapi-consts-rig
$(BUILD)/tests/uapi-consts-rig: tests/progs/uapi-consts.c $(wildcard tests/progs/*.h)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -DDMT_RIG_HEADERS -isystem $(RIG_HEADERS) \
		-Itests/progs $< -o $@

deps:
	@bash -c '. vm/lib.sh && need_root && host_deps && say "host packages present"'

vm: deps
	vm/build

vm-debug: deps
	vm/build --debug

# The main job: a devmem transfer (devmem TX -> dmveth -> devmem RX) in the VM.
demo: vm
	vm/run -- tests/demo

# Every test: host tests, then the VM suites on the normal and the debug
# kernel.  The last line is "N passed, N failed, N skipped".
check: vm vm-debug
	$(MAKE) all rig-progs
	tests/run

test:
	tests/run

# Numbers, not verdicts: dmveth throughput against memcpy and veth, measured
# side by side in one VM boot.
bench: vm
	$(MAKE) all
	vm/run -- bench/dmveth

checkpatch:
	@test -n "$(KSRC)" || { echo "run vm/build first (checkpatch comes from the kernel tree)"; exit 1; }
	perl $(KSRC)/scripts/checkpatch.pl --strict --no-tree -f $(KMOD_FILES)

clean:
	rm -rf $(BUILD)
