// Helpers shared by the unit tests.
//
// Tests that must end the process (a stack overflow, an uncaught exception in
// a fiber, a deadlock) run as a child: the unit test binary re-executes
// itself with `--child NAME`, and the test asserts on the child's exit and
// stderr. Register such a scenario with TENDRIL_CHILD(name) { ... }.
#pragma once

#include <csignal>
#include <functional>
#include <map>
#include <string>

namespace tendril::test {

std::map<std::string, std::function<int()>>& child_scenarios();

struct ChildRegistrar {
    ChildRegistrar(const char* name, std::function<int()> fn) { child_scenarios()[name] = std::move(fn); }
};

struct ChildResult {
    int exit_code = -1;    // when it exited
    int signal = 0;        // when a signal ended it
    std::string err;       // its stderr
    std::string out;       // its stdout
};

// Run the scenario in a fresh process (extra environment "K=V" entries optional).
ChildResult run_child(const std::string& name, const std::map<std::string, std::string>& env = {});

// Resident set size of this process in bytes (from /proc/self/statm).
long resident_bytes();

// For a test that cannot run on every machine:
//   TEST_CASE("IPv6 sockets" * doctest::skip(test::skip_unless(have_ipv6(), "IPv6 sockets", "no ::1 here")))
// doctest counts the case as skipped, and the reason is printed at the end
// of the run ("skipped test case: NAME: WHY"), so a skip is never silent.
bool skip_unless(bool available, const char* test_name, const char* why);

}  // namespace tendril::test

#define TENDRIL_CHILD_CAT2(a, b) a##b
#define TENDRIL_CHILD_CAT(a, b) TENDRIL_CHILD_CAT2(a, b)
#define TENDRIL_CHILD(name)                                                                     \
    static int TENDRIL_CHILD_CAT(tendril_child_fn_, __LINE__)();                                \
    static ::tendril::test::ChildRegistrar TENDRIL_CHILD_CAT(tendril_child_reg_, __LINE__)(     \
        name, TENDRIL_CHILD_CAT(tendril_child_fn_, __LINE__));                                  \
    static int TENDRIL_CHILD_CAT(tendril_child_fn_, __LINE__)()
