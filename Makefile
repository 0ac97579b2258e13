# wcache - a write-back cache for unmodified programs.
#
#   make            build/libwcache.so, build/wcache and the examples
#   make test       install missing test dependencies, build, run the tests
#   make demo       run an example program with and without the shim
#   make bench      the benchmark report (build/bench/report.md, ratios.png)
#   make check-long the long variants of the randomised tests

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror
CPPFLAGS += -Iinclude -D_GNU_SOURCE
PICFLAGS := -fPIC -fvisibility=hidden
B       := build

CACHE_SRC := $(wildcard cache/*.c) $(wildcard cache/*.S)
SHIM_SRC  := $(filter-out shim/cli.c,$(wildcard shim/*.c))
CACHE_OBJ := $(patsubst %,$(B)/obj/%.o,$(CACHE_SRC))
SHIM_OBJ  := $(patsubst %,$(B)/obj/%.o,$(SHIM_SRC))
EXAMPLES  := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
TEST_SRC  := $(wildcard tests/test_*.c)
TESTS     := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
TEST_LIB  := $(patsubst %,$(B)/obj/%.o,$(wildcard tests/lib_*.c))
TEST_PROGS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/prog_*.c))
HEADERS   := $(wildcard include/wcache/*.h) $(wildcard cache/*.h) $(wildcard shim/*.h)

.PHONY: all test check-long bench demo deps deps-build clean
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

$(B)/libwcache.so: $(SHIM_OBJ) $(CACHE_OBJ)
	$(CC) -shared -Wl,-z,defs -Wl,-z,now -o $@ $^ -ldl -lpthread

$(B)/wcache: shim/cli.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -DWCACHE_LIBDIR='"$(abspath $(B))"' \
		-o $@ $< -ldl

$(B)/examples/%: examples/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread

# ---- tests ---------------------------------------------------------------

# The fortified variant #includes the plain one.
$(B)/tests/prog_difftest_fortify: tests/prog_difftest.c

deps-build:
	@sh tests/deps.sh build

deps:
	@sh tests/deps.sh test

TEST_CPPFLAGS := $(CPPFLAGS) -Itests -DWCT_BUILD_DIR='"$(abspath $(B))"' \
	-DWCT_SRC_DIR='"$(abspath .)"'

$(B)/obj/tests/%.c.o: tests/%.c $(HEADERS) $(wildcard tests/*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -c $< -o $@

# Stand-alone programs that the tests run with and without the shim.
$(B)/tests/prog_%: tests/prog_%.c tests/lib_shim.h
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread

$(B)/tests/test_%: $(B)/obj/tests/test_%.c.o $(TEST_LIB) $(B)/libwcache_core.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcriterion -ldl -lpthread

$(B)/debug/tests/test_%: $(B)/obj/tests/test_%.c.o $(TEST_LIB) $(B)/debug/libwcache_core.a
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ -lcriterion -ldl -lpthread

test: all $(TEST_PROGS) $(TESTS) $(DEBUG_TESTS)
	@sh tests/run.sh $(TESTS) $(DEBUG_TESTS)

check-long: all $(TEST_PROGS) $(TESTS) $(DEBUG_TESTS)
	@WCT_LONG=1 sh tests/run.sh $(TESTS) $(DEBUG_TESTS)

$(B)/bench_engine: tests/bench/bench_engine.c $(B)/obj/tests/lib_sys.c.o $(B)/libwcache_core.a
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $^ -ldl -lpthread

$(B)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -o $@ $< -lpthread

bench: all $(B)/bench_engine $(B)/bench/timeit $(B)/bench/workload
	@sh tests/bench/bench.sh $(B)

demo: all
	@sh examples/demo.sh

clean:
	rm -rf $(B)
