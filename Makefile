# wcache - a write-back cache for unmodified programs.
#
#   make            build/libwcache.so, build/wcache and the examples
#   make test       install missing test dependencies, build, run the tests
#   make demo       run an example program with and without the shim
#   make bench      the benchmark report (build/bench/report.md, ratios.png)
#   make check-long the long variants of the randomised tests, and real
#                   programs on a GlusterFS mount (tests/check_gluster.sh)
#   make install    PREFIX (/usr/local) and DESTDIR: bin/wcache,
#                   lib/wcache/libwcache.so, the man page, bash completion
#   make uninstall  remove what install put there

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror
CPPFLAGS += -Iinclude -D_GNU_SOURCE
PICFLAGS := -fPIC -fvisibility=hidden
B       := build

CACHE_SRC := $(wildcard cache/*.c) $(wildcard cache/*.S)
# The `wcache` command: the launcher, ls/recover/guard, the replay, and
# the shared config rules.
SHIM_SRC  := $(filter-out shim/cli%.c,$(wildcard shim/*.c))
CLI_SRC   := shim/cli.c shim/cli_stats.c shim/cli_recover.c shim/config.c \
	cache/replay.c cache/seekio.c cache/sys.c cache/clock.c
CACHE_OBJ := $(patsubst %,$(B)/obj/%.o,$(CACHE_SRC))
SHIM_OBJ  := $(patsubst %,$(B)/obj/%.o,$(SHIM_SRC))
EXAMPLES  := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
TEST_SRC  := $(wildcard tests/test_*.c)
TESTS     := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
TEST_LIB  := $(patsubst %,$(B)/obj/%.o,$(wildcard tests/lib_*.c))
TEST_PROGS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/prog_*.c)) \
	$(patsubst tests/%.c,$(B)/tests/%.so,$(wildcard tests/so_*.c)) \
	$(B)/tests/prog_points_tls
HEADERS   := $(wildcard include/wcache/*.h) $(wildcard cache/*.h) $(wildcard shim/*.h)

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
LIBDIR  := $(PREFIX)/lib/wcache
MANDIR  := $(PREFIX)/share/man/man1
COMPDIR := $(PREFIX)/share/bash-completion/completions

.PHONY: all test check-long bench demo deps deps-build clean install uninstall
# Keep object files between runs (no trailing `rm` after the tests).
.SECONDARY:
all: $(B)/libwcache.so $(B)/wcache $(EXAMPLES)

$(B)/obj/%.c.o: %.c $(HEADERS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(PICFLAGS) -c $< -o $@

$(B)/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PICFLAGS) -c $< -o $@

# The engine with its invariants asserted (cache/check.c), for the engine's
# suites: `make test` runs them against both builds.
DEBUG_OBJ := $(patsubst %,$(B)/debug/obj/%.o,$(CACHE_SRC))
DEBUG_TESTS := $(patsubst tests/%.c,$(B)/debug/tests/%,\
	$(wildcard tests/test_cache_*.c tests/test_engine_*.c))

$(B)/debug/obj/%.c.o: %.c $(HEADERS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DWC_DEBUG -O1 -g $(WARN) $(PICFLAGS) -c $< -o $@

$(B)/debug/libwcache_core.a: $(DEBUG_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The engine alone, for tests and the micro-benchmark.
$(B)/libwcache_core.a: $(CACHE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# -fini: shim/proc.c, wc_dt_fini. -Bsymbolic-functions: the library's own
# calls of the functions it exports (write_all's write, fstat64's fstat)
# are bound to its own definitions when it is linked, not looked up by the
# dynamic linker in every process it starts in (59 lookups: about 32,000
# instructions of a start-up of 320,000, callgrind of /bin/true).
$(B)/libwcache.so: $(SHIM_OBJ) $(CACHE_OBJ)
	$(CC) -shared -Wl,-z,defs -Wl,-z,now -Wl,-Bsymbolic-functions \
		-Wl,-fini=wc_dt_fini -o $@ $^ -ldl -lpthread

$(B)/wcache: $(CLI_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -DWCACHE_LIBDIR='"$(abspath $(B))"' \
		-o $@ $(CLI_SRC) -ldl

# The installed command: it finds ../lib/wcache/libwcache.so beside
# itself first (a relocated tree works), then $(LIBDIR).
# Built again whenever LIBDIR differs from the one it was built with
# (a second install with another PREFIX kept the first's: probe AA).
$(B)/install/wcache: $(CLI_SRC) $(HEADERS) $(B)/install/libdir
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -DWCACHE_LIBDIR='"$(LIBDIR)"' \
		-o $@ $(CLI_SRC) -ldl

$(B)/install/libdir: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = "$(LIBDIR)" ] || echo "$(LIBDIR)" > $@

.PHONY: FORCE
FORCE:

install: $(B)/libwcache.so $(B)/install/wcache
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(MANDIR) \
		$(DESTDIR)$(COMPDIR)
	install -m 755 $(B)/install/wcache $(DESTDIR)$(BINDIR)/wcache
	install -m 755 $(B)/libwcache.so $(DESTDIR)$(LIBDIR)/libwcache.so
	sed 's|/usr/local/lib/wcache|$(LIBDIR)|g' docs/wcache.1 \
		> $(DESTDIR)$(MANDIR)/wcache.1
	chmod 644 $(DESTDIR)$(MANDIR)/wcache.1
	install -m 644 docs/wcache.bash-completion $(DESTDIR)$(COMPDIR)/wcache

# wcache's own directory goes too; the shared ones (bin, man1...) stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/wcache $(DESTDIR)$(LIBDIR)/libwcache.so \
		$(DESTDIR)$(MANDIR)/wcache.1 $(DESTDIR)$(COMPDIR)/wcache
	-rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null

# The same under AddressSanitizer: the tests run `recover` on corrupt files.
$(B)/asan/wcache: $(CLI_SRC) $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -O1 -g -fsanitize=address,undefined \
		-fno-omit-frame-pointer $(WARN) \
		-DWCACHE_LIBDIR='"$(abspath $(B))"' -o $@ $(CLI_SRC) -ldl

$(B)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread

# The shim built with ThreadSanitizer, for the thread tests (issue 6). The
# files whose exported calls the sanitizer's runtime makes itself while it
# starts (mmap, getrlimit/setrlimit, sigaction: meta.c, proc.c and what
# was split from it (signals.c, flusher.c, stats_report.c), ownfd.c,
# env.c, real.c, open.c: the symbolizer opens files) and guard.c (its
# children share the program's memory and thread pointer) are built
# without instrumentation; everything else is; all of them make their
# pass-through calls through the table (WC_KCALL_TABLE: shim/kcall.h
# (K3)). WC_TEST_WIDEN_RACES (shim.h)
# makes lookups that race with close meet stale pointers often. shim/tsan.c
# (only in this build) has the symbolizer read its files before the shim
# starts, not from inside a report.
TSAN_PLAIN := shim/meta.c shim/proc.c shim/signals.c shim/flusher.c \
	shim/stats_report.c shim/ownfd.c shim/env.c shim/real.c shim/open.c \
	shim/guard.c
TSAN_OBJ  := $(patsubst %,$(B)/tsan/obj/%.o,$(SHIM_SRC) $(CACHE_SRC))
TSAN_PROGS := $(patsubst %,$(B)/tsan/prog_%,threads sigstorm fdstress tsanrace \
	freenumber)

$(B)/tsan/obj/%.c.o: %.c $(HEADERS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DWC_TEST_WIDEN_RACES -DWC_KCALL_TABLE -O1 -g $(WARN) \
		$(PICFLAGS) $(if $(filter $<,$(TSAN_PLAIN)),,-fsanitize=thread) \
		-c $< -o $@

$(B)/tsan/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PICFLAGS) -c $< -o $@

$(B)/tsan/libwcache.so: $(TSAN_OBJ)
	$(CC) -shared -fsanitize=thread -Wl,-z,defs -Wl,-z,now \
		-Wl,-Bsymbolic-functions -o $@ $^ \
		-ldl -lpthread

$(B)/tsan/prog_%: tests/prog_%.c tests/lib_shim.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) -O1 -g -fsanitize=thread $(WARN) -o $@ $< \
		-lpthread

# The engine's threaded and randomised suites once more under
# AddressSanitizer and UBSan, engine, test library and test alike, with
# the debug build's invariants: overflows of the stack arrays the write
# path and write-back use (iovecs, range copies), the tests' heap, and
# undefined behaviour (shifts, overflows, misaligned loads) stop the test.
# The engine's own tables (pages, files, batches) are mmap'd
# (wc_big_alloc), which ASan does not guard: the debug build's
# invariants watch those. tests/asan_defaults.c leaves SIGSEGV to the
# engine's non-faulting copy (cache/ucopy.c).
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
ASAN_ENGINE_OBJ := $(patsubst %,$(B)/asan/obj/%.o,$(CACHE_SRC))
ASAN_TEST_LIB := $(patsubst %,$(B)/asan/obj/%.o,$(wildcard tests/lib_*.c)) \
	$(B)/asan/obj/tests/asan_defaults.c.o
ASAN_TESTS := $(patsubst %,$(B)/asan/tests/test_engine_%,\
	async threads random blk store)

$(B)/asan/obj/cache/%.c.o: cache/%.c $(HEADERS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DWC_DEBUG -O1 -g $(ASAN_FLAGS) $(WARN) $(PICFLAGS) \
		-c $< -o $@

$(B)/asan/libwcache_core.a: $(ASAN_ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/asan/obj/tests/%.c.o: tests/%.c $(HEADERS) $(wildcard tests/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) -O1 -g $(ASAN_FLAGS) $(WARN) -c $< -o $@

$(B)/asan/tests/test_%: $(B)/asan/obj/tests/test_%.c.o $(ASAN_TEST_LIB) \
		$(B)/asan/libwcache_core.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) -o $@ $^ -lcriterion -ldl -lpthread

# The biased locks under stress (include/wcache/blk.h, WC_BLK_STRESS): a
# claim at every second fast-path entry, and owners that yield inside
# their sections, for the thread tests' revokers to meet them there.
STRESS_OBJ := $(patsubst %,$(B)/stress/obj/%.o,$(SHIM_SRC) $(CACHE_SRC))

$(B)/stress/obj/%.c.o: %.c $(HEADERS) | deps-build
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DWC_BLK_STRESS $(CFLAGS) $(WARN) $(PICFLAGS) \
		-c $< -o $@

$(B)/stress/obj/%.S.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PICFLAGS) -c $< -o $@

$(B)/stress/libwcache.so: $(STRESS_OBJ)
	$(CC) -shared -Wl,-z,defs -Wl,-z,now -Wl,-Bsymbolic-functions \
		-Wl,-fini=wc_dt_fini -o $@ $^ -ldl -lpthread

# ---- tests ---------------------------------------------------------------

# The fortified variant #includes the plain one.
$(B)/tests/prog_difftest_fortify: tests/prog_difftest.c
$(B)/tests/prog_stdio_fortify: tests/prog_stdio.c

deps-build:
	@sh tests/deps.sh build

deps: deps-build
	@sh tests/deps.sh test

TEST_CPPFLAGS := $(CPPFLAGS) -Itests -DWCT_BUILD_DIR='"$(abspath $(B))"' \
	-DWCT_SRC_DIR='"$(abspath .)"'

$(B)/obj/tests/%.c.o: tests/%.c $(HEADERS) $(wildcard tests/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

# A statically linked program, which LD_PRELOAD cannot reach.
# A library preloaded after the shim, whose destructor writes after the
# shim's exit work (test_shim_shared.c).
$(B)/tests/so_%.so: tests/so_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -shared -fPIC -o $@ $<

$(B)/tests/prog_static: tests/prog_static.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -static -o $@ $<

# A program linked with a library whose constructor starts a thread.
$(B)/tests/prog_ctorthread: tests/prog_ctorthread.c tests/lib_shim.h \
		$(B)/tests/so_ctorthread.so
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -o $@ $< -L$(B)/tests -Wl,--no-as-needed \
		-l:so_ctorthread.so -Wl,--as-needed \
		-Wl,-rpath,$(abspath $(B)/tests) -lpthread

# Stand-alone programs that the tests run with and without the shim.
$(B)/tests/prog_%: tests/prog_%.c tests/lib_shim.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread

# The consistency points' scenarios include asynchronous I/O: POSIX aio,
# libaio and liburing (libaio-dev, liburing-dev).
$(B)/tests/prog_points: tests/prog_points.c tests/lib_shim.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread -laio -luring
# The same with a large static TLS block (every thread's stack holds it).
$(B)/tests/prog_points_tls: tests/prog_points.c tests/lib_shim.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) -DWCT_BIG_TLS $(CFLAGS) $(WARN) -o $@ $< \
		-lpthread -laio -luring

# The FUSE server of the error tests (libfuse3-dev).
FUSE_PROGS := $(B)/tests/fuse_failfs
$(B)/tests/fuse_failfs: tests/fuse_failfs.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $$(pkg-config --cflags fuse3) $(CFLAGS) $(WARN) \
		-o $@ $< $$(pkg-config --libs fuse3)

$(B)/tests/test_%: $(B)/obj/tests/test_%.c.o $(TEST_LIB) $(B)/libwcache_core.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcriterion -ldl -lpthread

$(B)/debug/tests/test_%: $(B)/obj/tests/test_%.c.o $(TEST_LIB) $(B)/debug/libwcache_core.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcriterion -ldl -lpthread

test: all $(B)/asan/wcache $(TEST_PROGS) $(FUSE_PROGS) $(TESTS) $(DEBUG_TESTS) \
	$(B)/tsan/libwcache.so $(TSAN_PROGS) $(B)/stress/libwcache.so \
	$(ASAN_TESTS)
	@sh tests/run.sh $(TESTS) $(DEBUG_TESTS) $(ASAN_TESTS)

# Then real programs on a private GlusterFS volume, with and without the
# shim (tests/check_gluster.sh; says "skipped" where GlusterFS cannot run).
check-long: all $(B)/asan/wcache $(TEST_PROGS) $(FUSE_PROGS) $(TESTS) $(DEBUG_TESTS) \
	$(B)/stress/libwcache.so $(B)/tsan/libwcache.so $(TSAN_PROGS) $(ASAN_TESTS)
	@WCT_LONG=1 sh tests/run.sh $(TESTS) $(DEBUG_TESTS) $(ASAN_TESTS)
	@WCT_BACKGROUND=1 sh tests/run.sh $(filter $(B)/tests/test_shim_%,$(TESTS))
	@sh tests/check_gluster.sh $(B)

$(B)/bench_engine: tests/bench/bench_engine.c $(B)/obj/tests/lib_sys.c.o $(B)/libwcache_core.a
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $^ -ldl -lpthread

$(B)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread

$(B)/bench/empty.so: tests/bench/empty.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -shared -fPIC -o $@ $<

$(B)/bench/nowrite.so: tests/bench/nowrite.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -shared -fPIC -o $@ $< -ldl

$(B)/bench/thread.so: tests/bench/thread.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -shared -fPIC -o $@ $< -lpthread

bench: all $(B)/bench_engine $(B)/bench/timeit $(B)/bench/workload \
	$(B)/bench/empty.so $(B)/bench/nowrite.so $(B)/bench/thread.so
	@sh tests/bench/bench.sh $(B)

demo: all
	@sh examples/demo.sh

clean:
	rm -rf $(B)
