#!/usr/bin/env python3
"""What `make test` (and CI) runs: the whole suite twice -- a normal build and
an AddressSanitizer + UndefinedBehaviorSanitizer build --, the cross-thread
unit tests under ThreadSanitizer, then a short fuzz run of every fuzz target. Ends with one line: `N passed, M failed`.

Environment: FUZZ_SECONDS (per target; default 20, less when the run so far
leaves too little of CI's 15 minutes on 2 cores; 0 skips fuzzing),
TENDRIL_CI_SAN=0 skips the sanitizer passes (for a quick local run).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, **kw).returncode


FAILURES = []  # "build: suite: test id: last traceback line", printed again at the very end


def counted_run(cmd, summary, what):
    """Run a step that appends "passed failed skipped" lines to `summary`,
    and return its counts. A step that exits non-zero without having
    counted a failure (it crashed, or its runner is broken) is a failure:
    CI must never print a clean line over a run that did not happen."""
    before = os.path.getsize(summary) if os.path.exists(summary) else 0
    rc = sh(cmd)
    passed = failed = skipped = 0
    with open(summary) as f:
        f.seek(before)
        for line in f:
            if line.startswith("F "):
                FAILURES.append(line[2:].strip())
                continue
            p, fl, sk = map(int, line.split())
            passed, failed, skipped = passed + p, failed + fl, skipped + sk
    if rc != 0 and failed == 0:
        print(f"######## {what}: exited with status {rc} without reporting a failure: counted as one", flush=True)
        FAILURES.append(f"{what}: exited with status {rc}")
        failed = 1
    return passed, failed, skipped


def suite_counts(build_dir, summary, extra=()):
    return counted_run([sys.executable, "test/run.py", "--build", build_dir, "--summary-file", summary] + list(extra),
                       summary, f"the suite in {build_dir}")


# The whole run must end inside CI's 15 minutes. Fuzzing comes last and is
# the one elastic part: on a slow or busy machine it gets what is left (at
# least 5 s per target) instead of pushing the run past the limit.
CI_BUDGET_SECONDS = 840
FUZZ_OVERHEAD_SECONDS = 90  # building the fuzz targets, replaying their corpora


def fuzz_seconds_left(elapsed, jobs):
    targets = len([f for f in os.listdir(os.path.join(ROOT, "test", "fuzz"))
                   if f.startswith("fuzz_") and f.endswith(".cpp")]) or 1
    rounds = -(-targets // max(1, int(jobs)))
    left = CI_BUDGET_SECONDS - elapsed - FUZZ_OVERHEAD_SECONDS
    seconds = max(5, min(20, int(left / rounds)))
    if seconds < 20:
        print(f"\nci: {elapsed:.0f}s gone of {CI_BUDGET_SECONDS}s: fuzzing {seconds}s per target, not 20",
              flush=True)
    return seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make", default="make")
    ap.add_argument("--jobs", default=str(os.cpu_count() or 2))
    args = ap.parse_args()
    make = args.make.split()
    summary = tempfile.NamedTemporaryFile("w+", delete=False, suffix=".txt").name
    everything = ["lib", "apps", "bench"]
    passes = [("normal", [], "build", everything)]
    if os.environ.get("TENDRIL_CI_SAN", "1") != "0":
        passes.append(("address+undefined sanitizers", ["SAN=address,undefined"], "build-san", everything))
        # The Makefile narrows SAN=thread to the cross-thread unit tests.
        passes.append(("thread sanitizer", ["SAN=thread"], "build-tsan", []))
    passed = failed = skipped = 0
    t_start = time.time()
    for name, flags, build_dir, targets in passes:
        print(f"\n######## {name} build", flush=True)
        t0 = time.time()
        rc = sh(make + [f"-j{args.jobs}", "--no-print-directory"] + flags + targets +
                [f"{build_dir}/test/unit_tests"])
        if rc != 0:
            print(f"######## {name}: BUILD FAILED", flush=True)
            FAILURES.append(f"{name}: the build failed")
            failed += 1
            continue
        print(f"######## {name}: built in {time.time() - t0:.0f}s; running the suite", flush=True)
        p, fl, sk = suite_counts(build_dir, summary, [] if targets else ["--suite", "unit"])
        passed, failed, skipped = passed + p, failed + fl, skipped + sk
    fuzz_seconds = os.environ.get("FUZZ_SECONDS")
    if fuzz_seconds is None:
        fuzz_seconds = str(fuzz_seconds_left(time.time() - t_start, args.jobs))
    if fuzz_seconds != "0" and os.path.exists(os.path.join(ROOT, "test", "fuzz")):
        print(f"\n######## fuzzing, {fuzz_seconds}s per target", flush=True)
        p, fl, sk = counted_run(make + ["--no-print-directory", "fuzz", f"FUZZ_SECONDS={fuzz_seconds}",
                                        f"FUZZ_SUMMARY={summary}"], summary, "fuzzing")
        passed, failed, skipped = passed + p, failed + fl, skipped + sk
    os.unlink(summary)
    if passed == 0 and failed == 0:
        print("######## no test ran at all: counted as a failure", flush=True)
        failed = 1
    print(f"\nCI took {time.time() - t_start:.0f}s; {skipped} skipped")
    for line in FAILURES:
        print(f"FAILED {line}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
