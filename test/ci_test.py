"""CI must never go green on nothing: a runner that crashes, a missing test
binary or a run that executed no test is a failure in the closing line."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ci  # noqa: E402  (test/ci.py)


def run_py(*args):
    return subprocess.run([sys.executable, os.path.join(HERE, "run.py")] + list(args), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


class CiCountsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.summary = os.path.join(self.tmp.name, "summary.txt")
        open(self.summary, "w").close()

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_missing_unit_binary_is_a_failure(self):
        p = run_py("--build", self.tmp.name, "--suite", "unit")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("0 passed, 1 failed", p.stdout)
        self.assertIn("no unit test binary", p.stdout)

    def test_a_run_that_ran_no_test_fails(self):
        p = run_py("--build", self.tmp.name, "--suite", "integration", "--only", "no-such-test-file")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("0 passed, 1 failed", p.stdout)

    def test_a_runner_that_crashes_counts_as_a_failure(self):
        # Exits non-zero before writing its summary line, as run.py did when
        # the unit binary was missing (a traceback, then "0 passed, 0 failed").
        crash = [sys.executable, "-c", "import sys; sys.exit(3)"]
        self.assertEqual(ci.counted_run(crash, self.summary, "crash"), (0, 1, 0))

    def test_a_runner_that_fails_without_counting_is_a_failure(self):
        lie = [sys.executable, "-c", f"open({self.summary!r}, 'a').write('5 0 0\\n'); raise SystemExit(1)"]
        self.assertEqual(ci.counted_run(lie, self.summary, "lie"), (5, 1, 0))

    def test_counts_come_from_this_step_only(self):
        with open(self.summary, "a") as f:
            f.write("100 0 0\n")
        ok = [sys.executable, "-c", f"open({self.summary!r}, 'a').write('3 0 1\\n')"]
        self.assertEqual(ci.counted_run(ok, self.summary, "ok"), (3, 0, 1))

    def test_failed_tests_are_named_for_the_closing_lines(self):
        # CI's log is read from its tail: the names of what failed must be there.
        ci.FAILURES.clear()
        passed, failed, _ = ci.suite_counts(self.tmp.name, self.summary, ["--suite", "unit"])
        self.assertGreaterEqual(failed, 1)
        self.assertTrue(any("unit" in f and "no unit test binary" in f for f in ci.FAILURES), ci.FAILURES)

    def test_the_suite_over_an_empty_build_fails(self):
        passed, failed, _ = ci.suite_counts(self.tmp.name, self.summary, ["--suite", "unit"])
        self.assertEqual(passed, 0)
        self.assertGreaterEqual(failed, 1)


if __name__ == "__main__":
    unittest.main()
