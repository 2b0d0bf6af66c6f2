#!/usr/bin/env python3
"""What `make test` (and CI) runs: the whole suite twice -- a normal build and
an AddressSanitizer + UndefinedBehaviorSanitizer build -- then a short fuzz
run of every fuzz target. Ends with one line: `N passed, M failed`.

Environment: FUZZ_SECONDS (per target, default 45 -- CI stays near 10 min on
2 cores; 0 skips fuzzing),
TENDRIL_CI_SAN=0 skips the sanitizer pass (for a quick local run).
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--make", default="make")
    ap.add_argument("--jobs", default=str(os.cpu_count() or 2))
    args = ap.parse_args()
    make = args.make.split()
    summary = tempfile.NamedTemporaryFile("w+", delete=False, suffix=".txt").name
    passes = [("normal", [])]
    if os.environ.get("TENDRIL_CI_SAN", "1") != "0":
        passes.append(("address+undefined sanitizers", ["SAN=address,undefined"]))
    build_failures = 0
    t_start = time.time()
    for name, flags in passes:
        print(f"\n######## {name} build", flush=True)
        t0 = time.time()
        build_dir = "build-san" if flags else "build"
        rc = sh(make + [f"-j{args.jobs}", "--no-print-directory"] + flags +
                ["lib", "apps", "bench", f"{build_dir}/test/unit_tests"])
        if rc != 0:
            print(f"######## {name}: BUILD FAILED", flush=True)
            build_failures += 1
            continue
        print(f"######## {name}: built in {time.time() - t0:.0f}s; running the suite", flush=True)
        sh([sys.executable, "test/run.py", "--build", build_dir, "--summary-file", summary])
    fuzz_seconds = os.environ.get("FUZZ_SECONDS", "45")
    if fuzz_seconds != "0" and os.path.exists(os.path.join(ROOT, "test", "fuzz")):
        print(f"\n######## fuzzing, {fuzz_seconds}s per target", flush=True)
        sh(make + ["--no-print-directory", "fuzz", f"FUZZ_SECONDS={fuzz_seconds}",
                   f"FUZZ_SUMMARY={summary}"])
    passed = failed = skipped = 0
    with open(summary) as f:
        for line in f:
            p, fl, sk = map(int, line.split())
            passed, failed, skipped = passed + p, failed + fl, skipped + sk
    os.unlink(summary)
    failed += build_failures
    print(f"\nCI took {time.time() - t_start:.0f}s; {skipped} skipped")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
