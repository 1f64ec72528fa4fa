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

PREFIX ?= /usr/local
VERSION := 0.2.0
SONAME := libdevmemtcp.so.0

LIB_SRCS := $(wildcard lib/*.c)
LIB_HDRS := include/devmemtcp.h $(wildcard lib/*.h)
LIB_PIC := $(patsubst lib/%.c,$(BUILD)/lib/pic/%.o,$(LIB_SRCS))
LIB_OBJ := $(patsubst lib/%.c,$(BUILD)/lib/static/%.o,$(LIB_SRCS))
LIB_SO := $(BUILD)/lib/libdevmemtcp.so.$(VERSION)
LIB_A := $(BUILD)/lib/libdevmemtcp.a
LIB_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -Iinclude -Ilib -fvisibility=hidden $(MNL_CFLAGS)
TOOL_SRCS := $(wildcard tools/devmemtcp/*.c)
TOOL := $(BUILD)/bin/devmemtcp

TEST_SRCS := $(wildcard tests/progs/*.c)
TEST_PROGS := $(patsubst tests/progs/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_PROGS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
EXAMPLE_PROGS := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))
# A libcuda.so.1 without a GPU (memfd memory, udmabuf dma-bufs) for the CUDA
# code paths' tests: tests/standin/libcuda.c.
CUDA_STANDIN := $(BUILD)/tests/cuda-standin/libcuda.so.1
KMOD_FILES := $(wildcard kernel/*/*.c kernel/*/*.h)

# The NCCL net plugin: nccl/*.c with the library's PIC objects inside, only
# the ncclNetPlugin_vN tables exported (nccl/nccl-net.map).
NCCL_SRCS := $(wildcard nccl/*.c)
NCCL_PLUGIN := $(BUILD)/nccl/libnccl-net-devmemtcp.so
NCCL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) -Inccl -Iinclude -fvisibility=hidden $(MNL_CFLAGS)

.PHONY: all lib deps vm vm-debug demo check test bench checkpatch rig-progs install clean asan

all: lib $(if $(TOOL_SRCS),$(TOOL)) $(TEST_PROGS) $(CUDA_STANDIN) $(BENCH_PROGS) $(EXAMPLE_PROGS) $(if $(NCCL_SRCS),$(NCCL_PLUGIN))

# libdevmemtcp: shared (soname + version script) and static; `make install`
# writes its devmemtcp.pc for the PREFIX given then.
lib: $(if $(LIB_SRCS),$(LIB_SO) $(LIB_A))

$(BUILD)/lib/pic/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -fPIC -c $< -o $@

$(BUILD)/lib/static/%.o: lib/%.c $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(LIB_SO): $(LIB_PIC) lib/devmemtcp.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/devmemtcp.map \
		-Wl,--no-undefined $(LDFLAGS) $(LIB_PIC) -o $@ $(MNL_LIBS) -ldl
	ln -sf $(notdir $@) $(BUILD)/lib/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/lib/libdevmemtcp.so

$(LIB_A): $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

# The tool links the static library: one file to run in the VM or copy.
$(TOOL): $(TOOL_SRCS) $(wildcard tools/devmemtcp/*.h) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Iinclude $(TOOL_SRCS) -o $@ $(LDFLAGS) $(LIB_A) $(MNL_LIBS) -ldl

install: all
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/devmemtcp.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(LIB_SO)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libdevmemtcp.so
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' lib/devmemtcp.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/devmemtcp.pc
	$(if $(TOOL_SRCS),install -m 755 $(TOOL) $(DESTDIR)$(PREFIX)/bin/)
	$(if $(wildcard man/man3/*.3),install -d $(DESTDIR)$(PREFIX)/share/man/man3 && install -m 644 man/man3/*.3 $(DESTDIR)$(PREFIX)/share/man/man3/)
	$(if $(wildcard man/man7/*.7),install -d $(DESTDIR)$(PREFIX)/share/man/man7 && install -m 644 man/man7/*.7 $(DESTDIR)$(PREFIX)/share/man/man7/)
	$(if $(wildcard man/man8/*.8),install -d $(DESTDIR)$(PREFIX)/share/man/man8 && install -m 644 man/man8/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/)

# The examples use only the public header, like a program outside the
# tree would (linked statically, so they run in the VM as they are).
$(BUILD)/examples/%: examples/%.c include/devmemtcp.h $(if $(LIB_SRCS),$(LIB_A))
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Iinclude $< -o $@ $(LDFLAGS) $(if $(LIB_SRCS),$(LIB_A)) \
		$(MNL_LIBS) -ldl -lpthread

# Bench programs may use the library (linked statically).
$(BUILD)/bench/%: bench/%.c $(LIB_HDRS) $(if $(LIB_SRCS),$(LIB_A))
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Iinclude $< -o $@ $(LDFLAGS) $(if $(LIB_SRCS),$(LIB_A)) \
		$(MNL_LIBS) -ldl -lpthread

# Test programs may use the library (linked statically) and lib/dmt-uapi.h.
$(BUILD)/tests/%: tests/progs/%.c $(wildcard tests/progs/*.h) $(LIB_HDRS) $(if $(LIB_SRCS),$(LIB_A))
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Itests/progs -Iinclude -Ilib $(MNL_CFLAGS) $< -o $@ \
		$(LDFLAGS) $(if $(LIB_SRCS),$(LIB_A)) $(MNL_LIBS) -ldl -lpthread

$(BUILD)/nccl/%.o: nccl/%.c $(wildcard nccl/*.h) include/devmemtcp.h
	@mkdir -p $(@D)
	$(CC) $(NCCL_CFLAGS) -fPIC -c $< -o $@

$(NCCL_PLUGIN): $(patsubst nccl/%.c,$(BUILD)/nccl/%.o,$(NCCL_SRCS)) $(LIB_PIC) nccl/nccl-net.map
	$(CC) -shared -Wl,--version-script=nccl/nccl-net.map -Wl,--no-undefined \
		$(LDFLAGS) $(filter %.o,$^) -o $@ $(MNL_LIBS) -ldl -lpthread

$(CUDA_STANDIN): tests/standin/libcuda.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -fPIC -shared -fvisibility=hidden \
		-Wl,-soname,libcuda.so.1 -Wl,--no-undefined $< -o $@ -lpthread

# The plugin's tests: the ABI layouts (nccl/nccl_net.h) and the harness that
# dlopens the plugin (it links nothing of ours).
$(BUILD)/tests/nccl-%: tests/progs/nccl-%.c $(wildcard tests/progs/*.h) $(wildcard nccl/*.h)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Itests/progs -Inccl -Iinclude $< -o $@ -ldl -lpthread

# The uapi numbers we define ourselves, checked against the rig kernel's
# own installed headers.
rig-progs: $(BUILD)/tests/uapi-consts-rig
$(BUILD)/tests/uapi-consts-rig: tests/progs/uapi-consts.c lib/dmt-uapi.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -DDMT_RIG_HEADERS -isystem $(RIG_HEADERS) \
		-Itests/progs -Ilib $< -o $@

# The same library, tool and test programs with AddressSanitizer and
# UBSan, in build/asan: tests/run runs the "# asan: yes" host files again
# against it.
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" all rig-progs

deps:
	@bash -c '. vm/lib.sh && need_root && host_deps && say "host packages present"'

vm: deps
	vm/build

vm-debug: deps
	vm/build --debug

# The main job: a devmem transfer (devmem TX -> dmveth -> devmem RX) in the VM.
demo: vm
	$(MAKE) all
	vm/run -- tests/demo

# Every test: host tests, then the VM suites on the normal and the debug
# kernel.  The last line is "N passed, N failed, N skipped".
check: vm vm-debug
	$(MAKE) all rig-progs asan
	tests/run

test:
	tests/run

# Numbers, not verdicts (not part of `make check`): devmemtcp against iperf3,
# ncdevmem, the copy path and memcpy, side by side in one VM boot plus the
# host's loopback; the table on stdout, bench/results/latest.json (and a
# dated copy) and SVG plots.  BENCH_QUICK=1: one round, tiny sizes.
bench: vm
	$(MAKE) all
	bench/run

checkpatch:
	@test -n "$(KSRC)" || { echo "run vm/build first (checkpatch comes from the kernel tree)"; exit 1; }
	perl $(KSRC)/scripts/checkpatch.pl --strict --no-tree -f $(KMOD_FILES)

clean:
	rm -rf $(BUILD)
