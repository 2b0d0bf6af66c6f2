#!/usr/bin/env python3
"""Run every test suite of one build and print `N passed, M failed`.

Suites:
  unit         the doctest binary (test/*/*_test.cpp), counted per test case
  integration  test/**/*_test.py: unittest modules that start the built apps
               as real processes and talk to them with real clients
  scripts      test/**/*_test.sh: shell tests (the install/pkg-config check)

Environment handed to the tests: TENDRIL_BUILD (the build directory, absolute),
TENDRIL_ROOT (the source tree). Skipped tests are shown, never counted as passed.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def add(self, name, passed, failed, skipped=0, detail=None):
        self.passed += passed
        self.failed += failed
        self.skipped += skipped
        if failed:
            self.failures.append((name, detail))
        mark = "ok" if not failed else "FAILED"
        why = f": {detail}" if failed and detail else ""
        print(f"== {name}: {passed} passed, {failed} failed, {skipped} skipped [{mark}]{why}", flush=True)


def run_unit(build, tally, extra):
    exe = os.path.join(build, "test", "unit_tests")
    t0 = time.time()
    if not os.access(exe, os.X_OK):
        tally.add("unit", 0, 1, detail=f"no unit test binary at {exe} (build it first)")
        return
    p = subprocess.run([exe, "--no-intro"] + extra, cwd=ROOT, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout
    m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed\s*\|\s*(\d+) skipped", out)
    if not m:
        sys.stdout.write(out[-4000:])
        tally.add("unit", 0, 1, detail="the unit test binary did not finish (crash?)")
        return
    total, passed, failed, skipped = map(int, m.groups())
    if failed or p.returncode != 0:
        sys.stdout.write(out[-20000:])
    # doctest counts the cases a filter left out as skipped too: only an
    # unfiltered run's skips are the tests' own (their reasons are printed
    # at the end of the binary's output).
    if not extra:
        for line in out.splitlines():
            if line.startswith("skipped test case: "):
                print(line, flush=True)
    tally.add(f"unit ({time.time() - t0:.1f}s)", passed, failed + (1 if p.returncode and not failed else 0),
              skipped if not extra else 0, detail=failed_unit_cases(out) if failed else None)


def failed_unit_cases(out):
    """'case name (file:line: the failed check)' for each doctest case that failed."""
    found = []
    for block in out.split("=" * 79):
        case = re.search(r"TEST CASE:\s+(.*)", block)
        error = re.search(r"^(\S+:\d+): (?:ERROR|FATAL ERROR): (.*)$", block, re.M)
        if case and error:
            found.append(f"{case.group(1).strip()} ({error.group(1)}: {error.group(2)[:160]})")
    return "; ".join(found) or None


def discover(pattern_suffix):
    found = []
    for d, _, files in os.walk(os.path.join(ROOT, "test")):
        for f in sorted(files):
            if f.endswith(pattern_suffix):
                found.append(os.path.join(d, f))
    return sorted(found)


class CountingResult(unittest.TextTestResult):
    pass


def run_integration(tally, only):
    for path in discover("_test.py"):
        rel = os.path.relpath(path, ROOT)
        if only and not any(o in rel for o in only):
            continue
        t0 = time.time()
        loader = unittest.TestLoader()
        # Each test directory is its own top level (test modules import their
        # neighbours, such as harness.py, by plain name).
        test_dir = os.path.dirname(path)
        if test_dir not in sys.path:
            sys.path.insert(0, test_dir)
        suite = loader.discover(test_dir, pattern=os.path.basename(path), top_level_dir=test_dir)
        runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1, resultclass=CountingResult)
        res = runner.run(suite)
        failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
        skipped = len(res.skipped)
        passed = res.testsRun - failed - skipped
        detail = None
        if failed:
            # The test's id and the last line of its traceback: CI shows only
            # the tail of its log, and this is what has to be in it.
            detail = "; ".join(f"{t.id()}: {(tb.strip().splitlines() or ['?'])[-1][:200]}"
                               for t, tb in res.failures + res.errors)
        tally.add(f"{rel} ({time.time() - t0:.1f}s)", passed, failed, skipped, detail=detail)


def run_scripts(tally, only):
    for path in discover("_test.sh"):
        rel = os.path.relpath(path, ROOT)
        if only and not any(o in rel for o in only):
            continue
        t0 = time.time()
        p = subprocess.run(["bash", path], cwd=ROOT, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode == 77:
            print(p.stdout[-2000:])
            tally.add(f"{rel}", 0, 0, 1)
            continue
        if p.returncode != 0:
            print(p.stdout[-6000:])
        tally.add(f"{rel} ({time.time() - t0:.1f}s)", int(p.returncode == 0), int(p.returncode != 0))


def main():
    # A shell starts background commands with SIGINT and SIGQUIT ignored, and
    # an ignored SIGQUIT is inherited: tendril then leaves it alone (no fiber
    # dump), as it should, and the tests of the dump would fail for the way
    # the suite was launched. The tests start from the default dispositions.
    # (SIGINT gets Python's own handler: the children see the default, and
    # run.py still unwinds on ^C.)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--make", default="make")
    ap.add_argument("--suite", action="append", choices=["unit", "integration", "scripts"])
    ap.add_argument("--only", action="append", default=[], help="run integration/script tests whose path contains this")
    ap.add_argument("--summary-file", help="append 'passed failed skipped' here")
    ap.add_argument("unit_args", nargs="*")
    args = ap.parse_args()
    build = os.path.abspath(os.path.join(ROOT, args.build))
    os.environ["TENDRIL_BUILD"] = build
    os.environ["TENDRIL_ROOT"] = ROOT
    suites = args.suite or ["unit", "integration", "scripts"]
    tally = Tally()
    if "unit" in suites:
        run_unit(build, tally, args.unit_args)
    if "integration" in suites:
        run_integration(tally, args.only)
    if "scripts" in suites:
        run_scripts(tally, args.only)
    if tally.passed == 0 and tally.failed == 0:
        tally.add("nothing", 0, 1, detail="no test ran")
    if tally.failures:
        print("failed suites: " + ", ".join(n for n, _ in tally.failures))
    if tally.skipped:
        print(f"({tally.skipped} skipped: see the lines above for why)")
    if args.summary_file:
        with open(args.summary_file, "a") as f:
            f.write(f"{tally.passed} {tally.failed} {tally.skipped}\n")
            for name, detail in tally.failures:
                f.write(f"F {args.build}: {name}" + (f": {detail}" if detail else "") + "\n")
    print(f"{tally.passed} passed, {tally.failed} failed")
    sys.exit(1 if tally.failed else 0)


if __name__ == "__main__":
    main()
