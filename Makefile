# goroutine-lua — one entry point for building, testing and installing.
#
#   make            build build/goroutine-lua, build/goroutine.so, build/libgoroutine.a
#   make deps       install the Debian packages the project needs (as root)
#   make test       run every spec, under goroutine-lua and under stock lua5.4
#   make asan       the whole suite with AddressSanitizer + UBSan
#   make tsan       the whole suite with ThreadSanitizer
#   make model      model-check the channel protocol (src/chan.pml) with spin
#   make soak       the soak test (SOAK_MINUTES=10): goroutines and channel ops by the million, memory flat

PREFIX   ?= /usr/local
BUILD    ?= build
CC       ?= cc
LUA      ?= lua5.4
BUSTED   ?= /usr/bin/busted

LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)

OPT      ?= -O2 -g
SANFLAGS ?=
CFLAGS   := $(OPT) -std=gnu11 -Wall -Wextra -pthread -fPIC -fvisibility=hidden \
            $(LUA_CFLAGS) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS  := -pthread $(SANFLAGS) $(EXTRA_LDFLAGS)

CORE_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
HEADERS  := $(wildcard src/*.h)

BIN := $(BUILD)/goroutine-lua
MOD := $(BUILD)/goroutine.so
LIB := $(BUILD)/libgoroutine.a

all: $(BIN) $(MOD) $(LIB)

$(BUILD)/obj/%.o: src/%.c $(HEADERS) | $(BUILD)/obj
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj:
	mkdir -p $@

$(LIB): $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

# The module leaves Lua's symbols to the host (lua5.4 exports them).
$(MOD): $(CORE_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ -lm

$(BIN): $(BUILD)/obj/main.o $(LIB)
	$(CC) $(LDFLAGS) -Wl,-E -o $@ $^ $(LUA_LIBS) -lreadline -lm -ldl

# ---------------------------------------------------------------- packages
DEB_PACKAGES := lua5.4 liblua5.4-dev lua-busted libreadline-dev build-essential pkg-config \
                clang libclang-rt-14-dev luarocks spin tmux

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "all build dependencies present"; fi

# ------------------------------------------------------------------- tests
# C tests: each spec/c/*_test.c is a program printing "N passed, N failed".
CTEST_SRC := $(wildcard spec/c/*_test.c)
CTESTS    := $(CTEST_SRC:spec/c/%.c=$(BUILD)/%)

$(BUILD)/%_test: spec/c/%_test.c $(LIB) $(HEADERS)
	$(CC) $(CFLAGS) -Isrc $< $(LIB) -o $@ $(LDFLAGS) $(LUA_LIBS) -lm -ldl

ctests: $(CTESTS)

# spec/run.sh runs the busted suite twice: under goroutine-lua, then with
# `require "goroutine"` from stock lua5.4 (module mode).
test: all ctests
	CTESTS="$(CTESTS)" BUILD=$(BUILD) LUA=$(LUA) BUSTED=$(BUSTED) sh spec/run.sh

SAN_COMMON := -O1 -g -fno-omit-frame-pointer
# Lua yields and raises with _longjmp from an uninstrumented liblua, which
# ThreadSanitizer cannot unwind its shadow call stack through: without
# entry/exit instrumentation that stack cannot overflow (reports keep the
# faulting frame and the stack as unwound at the access).
TSAN_FLAGS := -fsanitize=thread --param=tsan-instrument-func-entry-exit=0

asan:
	$(MAKE) BUILD=build/asan OPT="$(SAN_COMMON)" \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all ctests
	CTESTS="$(CTEST_SRC:spec/c/%.c=build/asan/%)" BUILD=build/asan SANITIZER=asan LUA=$(LUA) BUSTED=$(BUSTED) sh spec/run.sh

tsan:
	$(MAKE) BUILD=build/tsan OPT="$(SAN_COMMON)" SANFLAGS="$(TSAN_FLAGS)" all ctests
	CTESTS="$(CTEST_SRC:spec/c/%.c=build/tsan/%)" BUILD=build/tsan SANITIZER=tsan LUA=$(LUA) BUSTED=$(BUSTED) sh spec/run.sh

# src/chan.pml, the channel wake-up protocol, checked exhaustively by spin:
# each property holds, and each mutation of the protocol is caught.
model:
	BUILD=$(BUILD) CC=$(CC) sh spec/model.sh

# make faults: allocation failure injection.  A build (build/faults) with
# -DGR_FAULT_INJECTION and ASan+UBSan, in which GR_FAIL_AT=N fails the
# runtime's N-th allocation (src/alloc.h); spec/faults/run.sh runs each
# script of spec/faults/ failing each allocation in turn, with
# LeakSanitizer on, and checks every run ends cleanly.
# spec/faults/host.c does the same for the C API (build/faults/fault_host).
faults:
	$(MAKE) BUILD=build/faults OPT="$(SAN_COMMON)" EXTRA_CFLAGS=-DGR_FAULT_INJECTION \
	  SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  build/faults/goroutine-lua build/faults/fault_host
	BUILD=build/faults sh spec/faults/run.sh

$(BUILD)/fault_host: spec/faults/host.c $(LIB) $(HEADERS)
	$(CC) $(CFLAGS) -Isrc $< $(LIB) -o $@ $(LDFLAGS) $(LUA_LIBS) -lm -ldl

clean:
	rm -rf build

.PHONY: all deps test ctests asan tsan model faults clean

# make soak [SOAK_MINUTES=10]: spec/soak/soak.lua under goroutine-lua on 4
# worker threads: waves of 10,000 goroutines, 1,000,000 goroutines and
# 10,000,000 channel operations per 10 minutes (scaled to SOAK_MINUTES,
# which is also its time budget), every sum checked, and RSS at the end
# within 10% of RSS after the first wave.  MALLOC_ARENA_MAX=1: glibc gives
# each thread that allocates an arena of its own and keeps freed memory in
# it, so with 4 workers RSS creeps toward 4 times the peak working set
# whatever the runtime does (docs/reliability.md, "Memory"); one arena
# makes RSS measure the runtime's own memory.  A run that hangs is stopped
# two minutes past its budget.
SOAK_MINUTES ?= 10

soak: $(BIN)
	timeout $$(awk 'BEGIN { print int($(SOAK_MINUTES) * 60 + 120) }') \
	  env GOROUTINE_MAXPROCS=4 MALLOC_ARENA_MAX=1 SOAK_MINUTES=$(SOAK_MINUTES) $(BIN) spec/soak/soak.lua

.PHONY: soak

# -------------------------------------------------------------- benchmarks
# make bench: every workload in bench/ under goroutine-lua and its Go twin,
# alternately, BENCH_RUNS times each with BENCH_PROCS worker threads (see
# bench/run.lua for the other knobs); the table goes to stdout and
# bench/results/latest.{json,md}.  make bench-plot draws latest.json as
# bench/results/latest.html.  Go (golang-go) is needed here only: it is not
# a build or test dependency, and make deps does not install it.
GO ?= go

bench: all
	@if ! command -v $(GO) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "bench: no Go toolchain: installing golang-go"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; \
	  else \
	    echo "bench: no Go toolchain: run 'sudo apt-get install golang-go' (or set GO=/path/to/go)" >&2; \
	    exit 1; \
	  fi; \
	fi
	BUILD=$(BUILD) GO=$(GO) LUA=$(LUA) sh bench/run.sh

bench-plot:
	@test -f bench/results/latest.json || { echo "bench-plot: no bench/results/latest.json: run make bench first" >&2; exit 1; }
	$(LUA) bench/plot.lua bench/results/latest.json bench/results/latest.html

.PHONY: bench bench-plot

# ------------------------------------------------------------------ fuzzing
# make fuzz [FUZZ_SECONDS=60]: the codec's libFuzzer target
# (spec/c/fuzz_codec.c, clang -fsanitize=fuzzer,address,undefined) over the
# seed corpus spec/fuzz/corpus; what it learns goes to $(BUILD)/fuzz/corpus,
# a crashing input to $(BUILD)/fuzz/crash-*.  clang and libFuzzer come from
# Debian's clang-14 and libclang-rt-14-dev: needed here only, not by the
# build or make deps.  make fuzz-corpus rewrites the seed corpus.
FUZZ_CC      ?= $(shell command -v clang-14 || command -v clang)
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -std=gnu11 -pthread \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC     := spec/c/fuzz_codec.c src/codec.c src/obj.c

$(BUILD)/fuzz/fuzz_codec: $(FUZZ_SRC) $(HEADERS)
	@mkdir -p $(BUILD)/fuzz; \
	echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' > $(BUILD)/fuzz/check.c; \
	if [ -z "$(FUZZ_CC)" ] || ! $(FUZZ_CC) -fsanitize=fuzzer $(BUILD)/fuzz/check.c -o $(BUILD)/fuzz/check >/dev/null 2>&1; then \
	  echo "fuzz: needs clang with libFuzzer: run 'sudo apt-get install clang-14 libclang-rt-14-dev' (or set FUZZ_CC)" >&2; \
	  exit 1; \
	fi
	$(FUZZ_CC) $(FUZZ_FLAGS) $(LUA_CFLAGS) -Isrc $(FUZZ_SRC) -o $@ $(LUA_LIBS) -lm

fuzz: $(BUILD)/fuzz/fuzz_codec
	mkdir -p $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_codec -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ \
	  $(BUILD)/fuzz/corpus spec/fuzz/corpus

fuzz-corpus: $(FUZZ_SRC) $(HEADERS)
	mkdir -p $(BUILD)/fuzz spec/fuzz/corpus
	$(CC) -O1 -g -std=gnu11 -pthread -DFUZZ_CORPUS_MAIN $(LUA_CFLAGS) -Isrc $(FUZZ_SRC) \
	  -o $(BUILD)/fuzz/gen_corpus $(LUA_LIBS) -lm
	rm -f spec/fuzz/corpus/seed-*
	$(BUILD)/fuzz/gen_corpus spec/fuzz/corpus

.PHONY: fuzz fuzz-corpus

# ---------------------------------------------------------------- embedding
# The shared library is for C hosts, which link Lua themselves: it needs
# liblua5.4.so (one Lua in the process: the host's), where the module takes
# Lua's symbols from the lua5.4 executable that loads it.  It exports the
# gr_* functions of goroutine.h and luaopen_goroutine only.
VERSION := $(shell grep '^.define GR_VERSION' src/goroutine.h | cut -d'"' -f2)
SOMAJOR := 0
SONAME  := libgoroutine.so.$(SOMAJOR)
SHLIB   := $(BUILD)/libgoroutine.so
EMBED   := $(BUILD)/embed-example

all: $(SHLIB)

$(SHLIB): $(CORE_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--no-undefined -o $@ $^ $(LUA_LIBS) -lm

# examples/embed/host.c, built and run by make test (spec/embed_spec.lua).
$(EMBED): examples/embed/host.c $(LIB) $(HEADERS)
	$(CC) $(CFLAGS) -Isrc $< $(LIB) -o $@ $(LDFLAGS) $(LUA_LIBS) -lm -ldl

ctests: $(EMBED)
$(CTESTS): spec/c/ctest.h

# --------------------------------------------------------------- installing
# make install [PREFIX=/usr/local] [DESTDIR=]: the command, the module, the
# library (static, and shared with its soname links) with goroutine.h,
# goroutine-lua.pc and the man page.  The module goes where lua5.4 looks
# for C modules: for PREFIX=/usr, Debian's directory (pkg-config lua5.4's
# INSTALL_CMOD); otherwise $(PREFIX)/lib/lua/5.4, which lua5.4 searches for
# /usr/local (never a directory outside PREFIX).  LUA_CMOD=dir overrides.
# make uninstall removes exactly the files install puts.
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
LUA_CMOD     ?= $(or $(if $(filter /usr,$(PREFIX)),$(shell pkg-config --variable=INSTALL_CMOD lua5.4 2>/dev/null)),$(PREFIX)/lib/lua/5.4)

INSTALLED := $(BINDIR)/goroutine-lua $(LUA_CMOD)/goroutine.so \
  $(LIBDIR)/libgoroutine.a $(LIBDIR)/libgoroutine.so.$(VERSION) \
  $(LIBDIR)/$(SONAME) $(LIBDIR)/libgoroutine.so $(INCLUDEDIR)/goroutine.h \
  $(PKGCONFIGDIR)/goroutine-lua.pc $(MANDIR)/man1/goroutine-lua.1

# In the .pc file, directories under PREFIX are written from ${prefix};
# prefix itself is ${pcfiledir}/../.. when the file sits in
# $(PREFIX)/lib/pkgconfig, so it holds wherever the tree is copied (a
# DESTDIR: PKG_CONFIG_PATH=$(DESTDIR)$(PKGCONFIGDIR) pkg-config ... works).
pcdir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
PC_PREFIX = $(if $(filter $(PREFIX)/lib/pkgconfig,$(PKGCONFIGDIR)),$${pcfiledir}/../..,$(PREFIX))

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LUA_CMOD) $(DESTDIR)$(LIBDIR) \
	  $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/goroutine-lua
	install -m 755 $(MOD) $(DESTDIR)$(LUA_CMOD)/goroutine.so
	install -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libgoroutine.a
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/libgoroutine.so.$(VERSION)
	ln -sf libgoroutine.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libgoroutine.so
	install -m 644 src/goroutine.h $(DESTDIR)$(INCLUDEDIR)/goroutine.h
	sed -e 's|@PREFIX@|$(PC_PREFIX)|' -e 's|@LIBDIR@|$(call pcdir,$(LIBDIR))|' \
	  -e 's|@INCLUDEDIR@|$(call pcdir,$(INCLUDEDIR))|' -e 's|@VERSION@|$(VERSION)|' \
	  goroutine-lua.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/goroutine-lua.pc
	install -m 644 docs/goroutine-lua.1 $(DESTDIR)$(MANDIR)/man1/goroutine-lua.1

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

.PHONY: install uninstall
