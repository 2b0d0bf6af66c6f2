# tendril -- build, test, benchmark, install.
#
#   make                 library, apps, benchmarks (installs missing Debian packages first)
#   make test            everything CI runs: the suite, the suite under ASan+UBSan, TSan unit tests, a fuzz smoke run
#   make check           the suite once, in this build (SAN=address,undefined for sanitizers;
#                        SAN=thread: the cross-thread unit tests under ThreadSanitizer)
#   make c10k            the c10k comet benchmark (the main job)
#   make bench           build the benchmarks; make bench-micro / bench-peers / bench-multicore / bench-cluster / bench-tls run them
#   make install PREFIX=/usr/local
#   make POLLER=kqueue   the kqueue backend (on Linux: against libkqueue, KQUEUE_PREFIX=...)
SHELL := /bin/bash
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
# Objects of apps and benchmarks are intermediate files to make: keep them,
# or every `make` relinks (and recompiles) them.
.SECONDARY:

UNAME   := $(shell uname -s)
POLLER  ?= $(if $(filter Linux,$(UNAME)),epoll,kqueue)
SAN     ?=
BUILD   ?= $(if $(SAN),$(if $(findstring thread,$(SAN)),build-tsan,build-san),build)$(if $(filter kqueue,$(POLLER)),$(if $(filter Linux,$(UNAME)),-kqueue,),)
PREFIX  ?= /usr/local
CXX     ?= g++
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)

# --- flags -------------------------------------------------------------------
CPPFLAGS_ALL := -I$(BUILD)/include -MMD -MP
# Sanitizer builds: -O1 (what ASan recommends) and line tables only, which
# compile in half the time of -O2 -g and still give file:line in reports.
OPTFLAGS     := $(if $(SAN),-O1 -g1,-O2 -g)
CXXFLAGS_ALL := -std=c++20 $(OPTFLAGS) -Wall -Wextra -pthread $(CXXFLAGS)
LDLIBS_LIB   := -lboost_context -lhttp_parser -lxxhash -lssl -lcrypto -lhiredis
LDFLAGS_ALL  := -pthread $(LDFLAGS)

ifneq ($(SAN),)
  CXXFLAGS_ALL += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS_ALL  += -fsanitize=$(SAN)
endif
# UBSan's vptr check tests whether memory is readable by writing it into a
# pipe(2) of its own; with the descriptors exhausted (the EMFILE tests) that
# pipe cannot be made, and the first check of each type reports a false
# "object has invalid vptr" and kills the process.
ifneq ($(findstring undefined,$(SAN)),)
  CXXFLAGS_ALL += -fno-sanitize=vptr
endif

ifeq ($(POLLER),kqueue)
  ifeq ($(UNAME),Linux)
    KQUEUE_PREFIX ?= /usr
    ifeq ($(wildcard $(KQUEUE_PREFIX)/include/kqueue/sys/event.h),)
      $(error POLLER=kqueue on Linux needs libkqueue's headers ($(KQUEUE_PREFIX)/include/kqueue/sys/event.h not found). Debian 12 does not package libkqueue; build it from source into a prefix and pass KQUEUE_PREFIX=that-prefix)
    endif
    CPPFLAGS_ALL += -I$(KQUEUE_PREFIX)/include/kqueue
    LDLIBS_LIB   += -L$(KQUEUE_PREFIX)/lib -Wl,-rpath,$(KQUEUE_PREFIX)/lib -lkqueue
  endif
endif

# --- Debian packages -----------------------------------------------------------
PKGS_BUILD := g++ make pkg-config libboost-context-dev libhttp-parser-dev libxxhash-dev libssl-dev libhiredis-dev \
              libcli11-dev nlohmann-json3-dev
PKGS_TEST  := doctest-dev python3 curl wrk xxhash clang libclang-rt-14-dev procps psmisc \
              chromium nodejs npm redis-server
PKGS_BENCH := wrk golang-go python3-gevent python3-tornado nodejs nginx-light gnuplot-nox procps redis-server

# Installs what is missing, with sudo when not root. Nothing to do elsewhere than Debian.
define install_pkgs
	@if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  missing=""; \
	  for p in $(1); do \
	    case "$$p" in npm) command -v npm >/dev/null 2>&1 && continue;; nodejs) command -v node >/dev/null 2>&1 && continue;; esac; \
	    dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    echo "make: installing Debian packages:$$missing"; \
	    sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
	      { echo "make: could not install:$$missing" >&2; exit 1; }; \
	  fi; \
	fi
endef

.PHONY: deps deps-build deps-test deps-bench deps-redis
deps-build:
	$(call install_pkgs,$(PKGS_BUILD))
deps-test: deps-build
	$(call install_pkgs,$(PKGS_TEST))
deps-bench: deps-build
	$(call install_pkgs,$(PKGS_BENCH))
deps-redis:
	$(call install_pkgs,redis-server)
deps: deps-test

# --- sources -----------------------------------------------------------------
# Platform files are picked here, not by #ifdefs in the code.
SENDFILE     := $(if $(filter Linux,$(UNAME)),linux,bsd)
PLATFORM_SRCS := sched/poller_epoll.cpp sched/poller_kqueue.cpp net/sendfile_linux.cpp net/sendfile_bsd.cpp \
                 core/open_beneath_linux.cpp core/open_beneath_generic.cpp
LIB_SRCS     := $(filter-out $(PLATFORM_SRCS),$(wildcard core/*.cpp sched/*.cpp net/*.cpp net/redis/*.cpp http/*.cpp)) \
                sched/poller_$(POLLER).cpp net/sendfile_$(SENDFILE).cpp \
                core/open_beneath_$(if $(filter Linux,$(UNAME)),linux,generic).cpp
LIB_OBJS     := $(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o)
LIB          := $(BUILD)/libtendril.a

APP_NAMES    := $(notdir $(patsubst %/,%,$(dir $(wildcard apps/*/main.cpp))))
APPS         := $(APP_NAMES:%=$(BUILD)/apps/%)
BENCH_SRCS   := $(wildcard bench/*.cpp)
BENCHES      := $(BENCH_SRCS:bench/%.cpp=$(BUILD)/bench/%)
TEST_SRCS    := $(wildcard test/*/*_test.cpp) test/main.cpp
TEST_OBJS    := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
UNIT         := $(BUILD)/test/unit_tests
HEADERS      := $(wildcard core/*.hpp sched/*.hpp net/*.hpp net/redis/*.hpp http/*.hpp)

# ThreadSanitizer (SAN=thread) counts every fiber as a thread and gives up
# at 8128, which the suite's 10,000-fiber cases pass; its run covers what
# crosses threads -- the scheduler, its primitives and their unit tests --
# linked against core/ and sched/ alone, so that it builds in a minute.
UNIT_LINK    := $(LIB)
CHECK_NEEDS  := lib apps bench $(UNIT)
CHECK_SUITES :=
ifneq ($(findstring thread,$(SAN)),)
  TEST_SRCS    := test/sched/threads_test.cpp test/sched/channel_test.cpp test/sched/sync_test.cpp test/main.cpp
  TEST_OBJS    := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
  UNIT_LINK    := $(filter $(BUILD)/obj/core/% $(BUILD)/obj/sched/%,$(LIB_OBJS))
  CHECK_NEEDS  := $(UNIT)
  CHECK_SUITES := --suite unit
endif

# In-tree code includes <tendril/layer/file.hpp>, exactly as installed code does.
INCLUDE_LINK := $(BUILD)/include/tendril

.PHONY: all lib apps bench
all: deps-build lib apps bench
lib: $(LIB)
apps: $(APPS)
bench: $(BENCHES)

$(INCLUDE_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn $(CURDIR) $@

# deps-build first (order-only: it never makes an object stale), so that
# `make -j` on a fresh machine installs the headers before compiling.
$(BUILD)/obj/%.o: %.cpp | $(INCLUDE_LINK) deps-build
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(CXXFLAGS_ALL) -c $< -o $@

# The scheduler switches fibers with a hand-pushed return address
# (core/context.hpp, jump_context), which needs the red zone off there.
ifeq ($(shell uname -m),x86_64)
$(BUILD)/obj/sched/scheduler.o: CXXFLAGS_ALL += -mno-red-zone -DTENDRIL_NO_RED_ZONE
endif

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# Generated sources (HTML pages embedded into apps) go to $(BUILD)/gen.
$(BUILD)/gen/%.html.inc: apps/%.html
	@mkdir -p $(dir $@)
	@{ printf 'R"TENDRIL_HTML('; cat $<; printf ')TENDRIL_HTML"\n'; } > $@

APP_HTML := $(wildcard apps/*/*.html)
$(BUILD)/obj/apps/%.o: CPPFLAGS_ALL += -I$(BUILD)/gen
$(foreach f,$(APP_HTML),$(eval $(BUILD)/obj/$(dir $(f))main.o: $(f:apps/%.html=$(BUILD)/gen/%.html.inc)))

# The benchmark can run the comet server in its own process (--same-process).
$(BUILD)/obj/bench/%.o: CPPFLAGS_ALL += -I$(BUILD)/gen
$(BUILD)/obj/bench/c10k.o: $(BUILD)/gen/comet/app.html.inc

$(BUILD)/apps/%: $(BUILD)/obj/apps/%/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS_ALL) $< $(LIB) $(LDLIBS_LIB) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS_ALL) $< $(LIB) $(LDLIBS_LIB) -o $@

# Tests compile against doctest, a test-only package.
$(TEST_OBJS): | deps-test

$(UNIT): $(TEST_OBJS) $(UNIT_LINK)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS_ALL) $(TEST_OBJS) $(UNIT_LINK) $(LDLIBS_LIB) -o $@

# --- tests -------------------------------------------------------------------
# `make check` runs the suite once in this build; `make test` is what CI runs.
TEST_ARGS ?=
.PHONY: check unit test test-fast
unit: deps-test $(UNIT)
	$(UNIT) $(TEST_ARGS)

check: deps-test $(CHECK_NEEDS)
	@python3 test/run.py --build $(BUILD) --make "$(MAKE)" $(CHECK_SUITES) $(TEST_ARGS)

test: deps-test
	@python3 test/ci.py --make "$(MAKE)" --jobs $(JOBS)

# --- benchmarks --------------------------------------------------------------
.PHONY: c10k bench-micro bench-peers bench-multicore bench-cluster bench-tls
C10K_ARGS ?=
c10k: deps-build $(if $(findstring --redis,$(C10K_ARGS)),deps-redis) lib apps bench
	$(BUILD)/bench/c10k $(C10K_ARGS)

# HTTPS beside nginx with TLS (same certificate): /plaintext, handshakes, a
# 1 GiB download (bench/TLS.md).
bench-tls: deps-bench lib apps bench
	python3 bench/tls.py --build $(BUILD)

# comet --redis: N = 15,000 waiters over 3 comet processes and one
# redis-server, then the same N on one comet, in the same run.
CLUSTER_N ?= 15000
bench-cluster: deps-build deps-redis lib apps bench
	$(BUILD)/bench/c10k -n $(CLUSTER_N) --nodes 3 --redis
	$(BUILD)/bench/c10k -n $(CLUSTER_N)

bench-micro: deps-build bench
	@for b in $(BUILD)/bench/micro_*; do echo "== $$b"; $$b || exit 1; done

bench-peers: deps-bench lib apps bench
	python3 bench/peers.py --build $(BUILD)
	python3 bench/multicore.py --build $(BUILD)

# tendril on 2 threads vs nginx (2 workers) and Go (GOMAXPROCS=2): bench/MULTICORE.md
bench-multicore: deps-bench lib apps bench
	python3 bench/multicore.py --build $(BUILD)

# The soak: every app under mixed load (comet cycles, wrk, uploads, downloads,
# hostile clients) for SOAK_SECONDS, failing if memory or descriptors grow or
# any request fails. Not part of `make test`.
SOAK_SECONDS ?= 600
.PHONY: soak
soak: deps-test apps
	python3 test/soak.py --build $(BUILD) --seconds $(SOAK_SECONDS)

# --- install -----------------------------------------------------------------
.PHONY: install
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libtendril.a
	for h in $(HEADERS); do install -D -m 644 $$h $(DESTDIR)$(PREFIX)/include/tendril/$$h; done
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'libdir=$${prefix}/lib' '' \
	  'Name: tendril' 'Description: fibers, channels and a BaseHTTPServer-like handler over epoll/kqueue' \
	  'Version: 0.1.0' 'Cflags: -std=c++20 -pthread -I$${includedir}' \
	  'Libs: -L$${libdir} -ltendril $(LDLIBS_LIB) -pthread' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/tendril.pc

# Fuzzing: `make fuzz FUZZ_SECONDS=N`, `make fuzz-regress` (test/fuzz/fuzz.mk).
-include test/fuzz/fuzz.mk

.PHONY: clean
clean:
	rm -rf build build-san build-tsan build-fuzz build-kqueue build-san-kqueue

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d)
-include $(wildcard $(BUILD)/obj/apps/*/*.d $(BUILD)/obj/bench/*.d)
