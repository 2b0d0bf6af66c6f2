"""The apps' pages in a real browser: headless Chromium (Debian's /usr/bin/chromium)
driven by playwright-core from Node (test/browser/comet_app.mjs).

playwright-core is installed with `npm ci` from test/browser/package-lock.json into
$TENDRIL_BUILD/npm (its npm cache too), never into the source tree. Without Chromium,
node or npm the test is skipped, loudly, never passed.
"""
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
import unittest.mock

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, App, app_path  # noqa: E402

ROOT = os.environ.get("TENDRIL_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHROMIUM = "/usr/bin/chromium"
BROWSER_DIR = os.path.join(ROOT, "test", "browser")
NPM_PREFIX = os.path.join(BUILD, "npm")
NODE_TIMEOUT = 60
NPM_TIMEOUT = 300


def skip_loudly(test, reason):
    print(f"\n*** SKIPPED {test.id()}: {reason}", file=sys.stdout, flush=True)
    test.skipTest(reason)


def node_major(node):
    p = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
    return int(p.stdout.strip().lstrip("v").split(".")[0])


def install_playwright(npm):
    """npm ci test/browser's lockfile into NPM_PREFIX, unless it is already there.
    Returns None, or what went wrong."""
    os.makedirs(NPM_PREFIX, exist_ok=True)
    with open(os.path.join(BROWSER_DIR, "package.json")) as f:
        wanted = json.load(f)["dependencies"]["playwright-core"]
    installed = os.path.join(NPM_PREFIX, "node_modules", "playwright-core", "package.json")
    files = ["package.json", "package-lock.json"]
    same = all(os.path.exists(os.path.join(NPM_PREFIX, f)) and
               filecmp.cmp(os.path.join(BROWSER_DIR, f), os.path.join(NPM_PREFIX, f), shallow=False)
               for f in files)
    if same and os.path.exists(installed):
        with open(installed) as f:
            if json.load(f).get("version") == wanted:
                return None
    for f in files:
        shutil.copyfile(os.path.join(BROWSER_DIR, f), os.path.join(NPM_PREFIX, f))
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
               npm_config_audit="false")
    p = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund",
                        "--cache", os.path.join(NPM_PREFIX, "cache")],
                       cwd=NPM_PREFIX, env=env, capture_output=True, text=True, timeout=NPM_TIMEOUT)
    if p.returncode != 0 or not os.path.exists(installed):
        return f"npm ci in {NPM_PREFIX} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return None


class BrowserTest(unittest.TestCase):
    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            skip_loudly(self, f"{CHROMIUM} not found: apt-get install chromium (or make deps-test)")
        self.node, self.npm = shutil.which("node"), shutil.which("npm")
        if not self.node or not self.npm:
            skip_loudly(self, "node/npm not found: apt-get install nodejs npm (or make deps-test)")
        if node_major(self.node) < 20:
            skip_loudly(self, f"playwright-core needs node >= 20; {self.node} is older")
        if not os.access(app_path("comet"), os.X_OK):
            self.fail(f"{app_path('comet')} is not built (make apps)")
        had_modules = os.path.exists(os.path.join(BROWSER_DIR, "node_modules"))
        problem = install_playwright(self.npm)
        self.assertIsNone(problem, problem)
        if not had_modules:
            self.assertFalse(os.path.exists(os.path.join(BROWSER_DIR, "node_modules")),
                             "the npm install wrote node_modules into the source tree")

    def run_node(self, script, *args):
        env = dict(os.environ, TENDRIL_NPM_PREFIX=NPM_PREFIX, CHROMIUM=CHROMIUM)
        # Its own session, so a timeout takes Chromium down with it.
        p = subprocess.Popen([self.node, os.path.join(BROWSER_DIR, script)] + list(args),
                             cwd=BROWSER_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=NODE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            self.fail(f"{script} did not finish in {NODE_TIMEOUT} s:\n{out[-6000:]}")
        finally:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # whatever it left behind
            except ProcessLookupError:
                pass
        print(f"\n{out.rstrip()}", flush=True)
        return p.returncode, out

    def test_comet_app_page(self):
        shot = os.path.join(BUILD, "screenshots", "comet_app.png")
        if os.path.exists(shot):
            os.remove(shot)
        with App("comet", quiet=True) as app:
            rc, out = self.run_node("comet_app.mjs", app.url("/").rstrip("/"), shot)
            self.assertEqual(rc, 0, f"comet_app.mjs failed:\n{out[-6000:]}")
            self.assertIsNone(app.proc.poll(), "comet died during the browser test")
            # The browser is gone: so is its waiter (hang-up removal), within a second or two.
            deadline = time.monotonic() + 2
            while app.get("/")[2] != b"0" and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(app.get("/"), (200, unittest.mock.ANY, b"0"), "the page's waiter outlived the browser")
        with open(shot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG")


if __name__ == "__main__":
    unittest.main()
