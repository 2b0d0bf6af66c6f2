# libFuzzer targets for tendril -- included by the main Makefile
# (`-include test/fuzz/fuzz.mk`); nothing else is needed.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_SUMMARY=file] [FUZZ_JOBS=2]
#       build every test/fuzz/fuzz_*.cpp with clang (libFuzzer + ASan + UBSan)
#       into build-fuzz/, run each for FUZZ_SECONDS from its seed corpus
#       (test/fuzz/corpus/<target>, copied to build-fuzz/corpus/<target>, where
#       the corpus grows) plus test/fuzz/regressions/<target>, FUZZ_JOBS at a
#       time; print a summary, append "passed failed 0" to FUZZ_SUMMARY if set,
#       and fail if any target crashed. Crash inputs: build-fuzz/crashes/,
#       logs: build-fuzz/logs/.
#   make fuzz-regress
#       run every target once over test/fuzz/regressions/<target>/ (inputs
#       that once crashed), without fuzzing.
#   make fuzz-build       just build the targets.
#   make fuzz-run-<target> [FUZZ_SECONDS=N]   fuzz one target.
#
# A crash input replays with: build-fuzz/bin/<target> build-fuzz/crashes/<file>
# FUZZ_KNOWN_BUGS=ignore (environment): tolerate the known, unfixed library bugs
# listed in test/fuzz/README.md, to look for others meanwhile.

FUZZ_DIR     := test/fuzz
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SUMMARY ?=
ifeq ($(origin FUZZ_CXX),undefined)
  FUZZ_CXX := $(firstword $(shell command -v clang++-14 clang++ 2>/dev/null) clang++)
endif
ifeq ($(origin FUZZ_JOBS),undefined)
  FUZZ_JOBS := $(shell nproc 2>/dev/null || echo 2)
endif

FUZZ_TARGETS := $(sort $(patsubst $(FUZZ_DIR)/%.cpp,%,$(wildcard $(FUZZ_DIR)/fuzz_*.cpp)))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/bin/%)

# The library for Linux (epoll, sendfile, openat2), whatever POLLER says.
FUZZ_LIB_SRCS := $(filter-out %_epoll.cpp %_kqueue.cpp %_linux.cpp %_bsd.cpp %_generic.cpp, \
                   $(wildcard core/*.cpp sched/*.cpp net/*.cpp net/redis/*.cpp http/*.cpp)) \
                 sched/poller_epoll.cpp net/sendfile_linux.cpp core/open_beneath_linux.cpp
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.cpp=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB      := $(FUZZ_BUILD)/libtendril.a

FUZZ_CPPFLAGS := -I$(FUZZ_BUILD)/include -MMD -MP
FUZZ_CXXFLAGS := -std=c++20 -O1 -g -Wall -Wextra -pthread -fno-omit-frame-pointer -fno-sanitize-recover=all
FUZZ_SAN      := fuzzer-no-link,address,undefined
FUZZ_LDLIBS   := -lboost_context -lhttp_parser -lxxhash -lssl -lcrypto -lhiredis
# The target mains are built and linked with libFuzzer's main.
$(FUZZ_BUILD)/obj/$(FUZZ_DIR)/%.o: FUZZ_SAN := fuzzer,address,undefined

# Each run: -timeout per input, -rss_limit_mb, crash inputs to build-fuzz/crashes.
FUZZ_RUN_FLAGS ?= -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
FUZZ_ENV       := ASAN_OPTIONS=abort_on_error=0:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
# No -jN in the sub-makes when this make already shares a jobserver.
FUZZ_SUBMAKE    = $(MAKE) --no-print-directory $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(FUZZ_JOBS))

.PHONY: fuzz fuzz-build fuzz-regress fuzz-deps $(FUZZ_TARGETS:%=fuzz-run-%)
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/obj/$(FUZZ_DIR)/%.o)

fuzz-deps: deps-build
	$(call install_pkgs,clang libclang-rt-14-dev)

fuzz-build: $(FUZZ_BINS)

$(FUZZ_BUILD)/include/tendril:
	@mkdir -p $(dir $@)
	@ln -sfn $(CURDIR) $@

$(FUZZ_BUILD)/obj/%.o: %.cpp | $(FUZZ_BUILD)/include/tendril
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_CXXFLAGS) -fsanitize=$(FUZZ_SAN) -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/bin/%: $(FUZZ_BUILD)/obj/$(FUZZ_DIR)/%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined -pthread $< $(FUZZ_LIB) $(FUZZ_LDLIBS) -o $@

# One target for FUZZ_SECONDS. Always succeeds; the verdict goes to
# build-fuzz/results/<target> for `make fuzz` to count.
$(FUZZ_TARGETS:%=fuzz-run-%): fuzz-run-%: $(FUZZ_BUILD)/bin/%
	@t=$*; corpus=$(FUZZ_BUILD)/corpus/$$t; log=$(FUZZ_BUILD)/logs/$$t.log; \
	mkdir -p $$corpus $(FUZZ_BUILD)/crashes $(FUZZ_BUILD)/logs $(FUZZ_BUILD)/results; \
	if [ -d $(FUZZ_DIR)/corpus/$$t ]; then cp -f $(FUZZ_DIR)/corpus/$$t/* $$corpus/ 2>/dev/null; fi; \
	seeds=""; [ -d $(FUZZ_DIR)/regressions/$$t ] && seeds=$(FUZZ_DIR)/regressions/$$t; \
	echo "fuzz: $$t for $(FUZZ_SECONDS)s (log: $$log)"; \
	if $(FUZZ_ENV) $< $$corpus $$seeds -max_total_time=$(FUZZ_SECONDS) $(FUZZ_RUN_FLAGS) \
	     -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- >$$log 2>&1; then \
	  echo pass > $(FUZZ_BUILD)/results/$$t; \
	  echo "fuzz: $$t: ok -- $$(grep -o 'Done [0-9]* runs in [0-9]* second' $$log | tail -n 1)s," \
	       "cov $$(grep -o 'cov: [0-9]*' $$log | tail -n 1 | cut -d' ' -f2)," \
	       "corpus $$(ls $$corpus | wc -l) files"; \
	else \
	  echo fail > $(FUZZ_BUILD)/results/$$t; \
	  echo "fuzz: $$t: FAILED -- from $$log:"; \
	  sed -n '/fuzz check failed\|ERROR: \|runtime error\|^SUMMARY/,$$p' $$log | grep -v '^    #[0-9]' | head -n 40 | sed 's/^/    /'; \
	  echo "fuzz: $$t: crash input(s):"; grep -o "Test unit written to .*" $$log | sed 's/^/    /'; \
	fi

fuzz: fuzz-deps
	@$(FUZZ_SUBMAKE) fuzz-build || { \
	  echo "fuzz: the targets did not build"; \
	  if [ -n "$(FUZZ_SUMMARY)" ]; then echo "0 $(words $(FUZZ_TARGETS)) 0" >> "$(FUZZ_SUMMARY)"; fi; exit 1; }
	@rm -rf $(FUZZ_BUILD)/results
	@$(FUZZ_SUBMAKE) $(FUZZ_TARGETS:%=fuzz-run-%)
	@p=0; f=0; echo "fuzz: summary ($(FUZZ_SECONDS)s per target)"; \
	for t in $(FUZZ_TARGETS); do \
	  r=$$(cat $(FUZZ_BUILD)/results/$$t 2>/dev/null || echo fail); \
	  if [ "$$r" = pass ]; then p=$$((p+1)); else f=$$((f+1)); fi; \
	  printf '  %-24s %s\n' $$t $$r; \
	done; \
	echo "fuzz: $$p passed, $$f failed"; \
	if [ $$f != 0 ]; then echo "fuzz: crash inputs are in $(FUZZ_BUILD)/crashes/; add them to $(FUZZ_DIR)/regressions/<target>/"; fi; \
	if [ -n "$(FUZZ_SUMMARY)" ]; then echo "$$p $$f 0" >> "$(FUZZ_SUMMARY)"; fi; \
	[ $$f = 0 ]

fuzz-regress: fuzz-deps
	@$(FUZZ_SUBMAKE) fuzz-build
	@p=0; f=0; mkdir -p $(FUZZ_BUILD)/logs; \
	for t in $(FUZZ_TARGETS); do \
	  files=$$(find $(FUZZ_DIR)/regressions/$$t -type f 2>/dev/null | sort); \
	  if [ -z "$$files" ]; then printf '  %-24s no regression inputs\n' $$t; continue; fi; \
	  n=0; bad=0; \
	  for in in $$files; do \
	    n=$$((n+1)); log=$(FUZZ_BUILD)/logs/regress-$$t-$$(basename $$in).log; \
	    if $(FUZZ_ENV) $(FUZZ_BUILD)/bin/$$t $(FUZZ_RUN_FLAGS) $$in >$$log 2>&1; then rm -f $$log; \
	    else \
	      bad=$$((bad+1)); \
	      printf '    FAILED %s (log: %s)\n' $$in $$log; \
	      grep -m1 -A1 -E 'fuzz check failed|ERROR: |runtime error' $$log | cut -c1-240 | sed 's/^/           /'; \
	    fi; \
	  done; \
	  if [ $$bad = 0 ]; then p=$$((p+1)); printf '  %-24s ok (%s inputs)\n' $$t $$n; \
	  else f=$$((f+1)); printf '  %-24s FAILED (%s of %s inputs)\n' $$t $$bad $$n; fi; \
	done; \
	echo "fuzz-regress: $$p passed, $$f failed"; \
	if [ -n "$(FUZZ_SUMMARY)" ]; then echo "$$p $$f 0" >> "$(FUZZ_SUMMARY)"; fi; \
	[ $$f = 0 ]

-include $(wildcard $(FUZZ_BUILD)/obj/*/*.d $(FUZZ_BUILD)/obj/$(FUZZ_DIR)/*.d)
