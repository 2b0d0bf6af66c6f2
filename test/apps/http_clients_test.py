"""hello against real HTTP clients nobody here wrote: curl, Python's
http.client and urllib, wrk, and many concurrent keep-alive clients
(../shared/spec/apps.md, "Common to every app" and "hello").

Self-contained (starts build/apps/hello itself); loopback only; every wait
is bounded and everything started is stopped.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BUILD  # noqa: E402

PLAINTEXT = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'
BODIES = {"/plaintext": PLAINTEXT, "/json": JSON}


class App(harness.App):
    """An app that has answered once before the tests begin."""

    def start(self):
        super().start()
        # Let the app finish starting (and wire up its signal handling)
        # before the tests begin; hello_test checks that window itself.
        c = self.connection(5)
        try:
            c.request("GET", "/plaintext" if self.name == "hello" else "/")
            c.getresponse().read()
        finally:
            c.close()
        return self

    def url(self, path="/plaintext"):
        return super().url(path)


def recv_until_close(s, timeout=5):
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError(f"the server did not close the connection; got {out[:300]!r}")
        if not chunk:
            return out
        out += chunk
    raise AssertionError("the server did not close the connection")


class _OneFile:
    """Lets several http.client.HTTPResponse objects read one after another
    from the same buffered stream (each would otherwise make its own, and
    one's read-ahead would swallow the next response)."""

    class _Unclosable:
        def __init__(self, f):
            self._f = f

        def close(self):
            pass  # HTTPResponse closes its fp at the end of each body

        def __getattr__(self, name):
            return getattr(self._f, name)

    def __init__(self, f):
        self.f = self._Unclosable(f)

    def makefile(self, *a, **kw):
        return self.f


def read_responses(sock, methods, timeout=5):
    sock.settimeout(timeout)
    f = sock.makefile("rb")
    out = []
    try:
        for m in methods:
            r = http.client.HTTPResponse(_OneFile(f), method=m)
            r.begin()
            out.append((r.status, {k.lower(): v for k, v in r.getheaders()}, r.read(), r.will_close))
    finally:
        f.close()
    return out


# --- curl -----------------------------------------------------------------------------

@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class Curl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = App("hello", "--quiet").start()

    @classmethod
    def tearDownClass(cls):
        assert cls.app.stop() == 0

    def curl(self, *args, timeout=10):
        p = subprocess.run(["curl", "--silent", "--show-error", "--max-time", "5", "--noproxy", "*"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout, p.stderr.decode(errors="replace")

    def test_keep_alive_reuse(self):
        rc, out, err = self.curl("-v", self.app.url("/plaintext"), self.app.url("/json"), self.app.url("/plaintext"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, PLAINTEXT + JSON + PLAINTEXT)
        self.assertEqual(len(re.findall(r"(?i)re-using existing .*connection", err)), 2, err)
        self.assertNotIn("Closing connection", err.split("Re-using")[0] if "Re-using" in err else err)

    def test_http10(self):
        rc, out, err = self.curl("-v", "--http1.0", self.app.url("/plaintext"), self.app.url("/json"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, PLAINTEXT + JSON)
        self.assertIn("> GET /plaintext HTTP/1.0", err)
        self.assertNotRegex(err, r"(?i)re-using existing")  # 1.0 without keep-alive: a new connection each

    def test_http10_keep_alive(self):
        rc, out, err = self.curl("-v", "--http1.0", "-H", "Connection: keep-alive",
                                 self.app.url("/plaintext"), self.app.url("/json"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, PLAINTEXT + JSON)
        self.assertRegex(err, r"(?i)< Connection: keep-alive")
        self.assertRegex(err, r"(?i)re-using existing .*connection")

    def test_head(self):
        rc, out, err = self.curl("-I", self.app.url("/plaintext"), self.app.url("/json"))
        self.assertEqual(rc, 0, err)
        heads = out.decode().split("\r\n\r\n")
        self.assertEqual(heads[2:], [""], out)  # two heads and nothing after them
        self.assertRegex(heads[0], r"^HTTP/1\.1 200 ")
        self.assertIn("Content-Length: 13", heads[0])
        self.assertIn("Content-Type: text/plain", heads[0])
        self.assertIn(f"Content-Length: {len(JSON)}", heads[1])
        self.assertIn("Content-Type: application/json", heads[1])

    def test_head_http10(self):
        rc, out, err = self.curl("-I", "--http1.0", self.app.url("/json"))
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.decode(), r"^HTTP/1\.[01] 200 ")

    def test_compressed_is_ignored_gracefully(self):
        rc, out, err = self.curl("-v", "--compressed", "-D", "-", "-o", "/dev/null", self.app.url("/plaintext"))
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"(?i)> Accept-Encoding: .*gzip")
        self.assertNotRegex(out.decode(), r"(?i)content-encoding")
        rc, body, err = self.curl("--compressed", self.app.url("/json"))
        self.assertEqual((rc, body), (0, JSON), err)
        rc, body, err = self.curl("-H", "Accept-Encoding: br, zstd, gzip;q=0.5, *;q=0", self.app.url("/plaintext"))
        self.assertEqual((rc, body), (0, PLAINTEXT), err)

    def test_expect_100_continue(self):
        # hello has no POST: the body is taken (after 100 Continue) and 501 comes back.
        payload = "x" * 5000
        t0 = time.monotonic()
        rc, out, err = self.curl("-v", "-H", "Expect: 100-continue", "--data-binary", payload,
                                 "-w", "%{http_code}", "-o", "/dev/null", self.app.url("/plaintext"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"501")
        self.assertIn("< HTTP/1.1 100 Continue", err)
        self.assertLess(time.monotonic() - t0, 0.9, "curl waited out its 100-continue timeout")

    def test_expect_100_continue_on_get(self):
        rc, out, err = self.curl("-v", "-X", "GET", "-H", "Expect: 100-continue", "--data-binary", "y" * 3000,
                                 self.app.url("/plaintext"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, PLAINTEXT)
        self.assertIn("< HTTP/1.1 100 Continue", err)

    def test_expect_disabled(self):
        big = tempfile.NamedTemporaryFile()
        self.addCleanup(big.close)
        big.write(b"z" * 200000)
        big.flush()
        rc, out, err = self.curl("-v", "-H", "Expect:", "--data-binary", "@" + big.name,
                                 "-w", "%{http_code}", "-o", "/dev/null", self.app.url("/plaintext"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"501")
        self.assertNotIn("> Expect", err)
        self.assertNotIn("100 Continue", err)
        rc, out, err = self.curl("-X", "GET", "-H", "Expect:", "--data-binary", "z" * 5000, self.app.url("/json"))
        self.assertEqual((rc, out), (0, JSON), err)

    def test_expect_unknown_expectation(self):
        rc, out, err = self.curl("-H", "Expect: something-else", "-w", " %{http_code}", self.app.url("/plaintext"))
        self.assertEqual(rc, 0, err)
        code = out.rsplit(b" ", 1)[1]
        self.assertIn(code, (b"200", b"417"))
        self.assertEqual(self.curl(self.app.url("/plaintext"))[1], PLAINTEXT)

    def test_h2c_upgrade_offer_is_ignored(self):
        # curl --http2 over http:// offers "Upgrade: h2c"; a server that does
        # not speak HTTP/2 answers in HTTP/1.1 and keeps the connection.
        rc, out, err = self.curl("-v", "--http2", self.app.url("/plaintext"), self.app.url("/json"))
        if rc != 0 and "not support" in err.lower():
            self.skipTest("this curl has no HTTP/2")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, PLAINTEXT + JSON)
        self.assertIn("< HTTP/1.1 200", err)
        self.assertNotIn("101 Switching", err)
        self.assertRegex(err, r"(?i)re-using existing .*connection")


@unittest.skipUnless(shutil.which("wget"), "wget is not installed")
class Wget(unittest.TestCase):
    def test_two_urls_one_connection(self):
        with App("hello", "--quiet") as app:
            p = subprocess.run(["wget", "--no-proxy", "--tries=1", "--timeout=5", "-O", "-",
                                app.url("/plaintext"), app.url("/json")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
            err = p.stderr.decode(errors="replace")
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(p.stdout, PLAINTEXT + JSON)
            self.assertIn("Reusing existing connection", err)
            self.assertEqual(app.stop(), 0)


# --- Python's http.client and urllib ------------------------------------------------------

class PythonClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = App("hello", "--quiet").start()

    @classmethod
    def tearDownClass(cls):
        assert cls.app.stop() == 0

    def test_keep_alive_many_requests_one_connection(self):
        c = self.app.connection()
        try:
            sock = None
            for i in range(30):
                path = "/plaintext" if i % 3 else "/json"
                method = "HEAD" if i % 7 == 6 else "GET"
                c.request(method, path)
                r = c.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200)
                self.assertEqual(body, b"" if method == "HEAD" else BODIES[path])
                self.assertEqual(r.getheader("Content-Length"), str(len(BODIES[path])))
                self.assertFalse(r.will_close)
                if sock is None:
                    sock = c.sock
                self.assertIs(c.sock, sock, f"request {i} went over a new connection")
        finally:
            c.close()

    def test_keep_alive_survives_a_404(self):
        # A 404 from send_error closes (as Python's does); http.client must see
        # that and reconnect cleanly.
        c = self.app.connection()
        try:
            c.request("GET", "/nope")
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 404)
            self.assertTrue(r.will_close)
            c.request("GET", "/json")
            r = c.getresponse()
            self.assertEqual((r.status, r.read()), (200, JSON))
        finally:
            c.close()

    def test_http10_raw(self):
        s = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
        try:
            s.sendall(b"GET /plaintext HTTP/1.0\r\n\r\n")
            out = recv_until_close(s)
        finally:
            s.close()
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertRegex(head, rb"^HTTP/1\.[01] 200 ")
        self.assertEqual(body, PLAINTEXT)
        self.assertIn(b"\r\nContent-Length: 13", head)

    def test_http10_keep_alive_raw(self):
        s = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
        try:
            s.sendall(b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            (st, h, body, will_close), = read_responses(s, ["GET"])
            self.assertEqual((st, body), (200, PLAINTEXT))
            self.assertEqual(h.get("connection", "").lower(), "keep-alive")
            s.sendall(b"GET /json HTTP/1.0\r\n\r\n")  # no keep-alive this time: closes after
            (st, h, body, will_close), = read_responses(s, ["GET"])
            self.assertEqual((st, body), (200, JSON))
            self.assertEqual(recv_until_close(s), b"")
        finally:
            s.close()

    def test_three_pipelined_requests_in_order(self):
        s = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
        try:
            s.sendall(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /json/second HTTP/1.1\r\nHost: a\r\n\r\n")
            got = read_responses(s, ["GET", "GET", "GET"])
            self.assertEqual([(st, b) for st, _, b, _ in got], [(200, JSON), (200, PLAINTEXT), (404, got[2][2])])
            self.assertTrue(got[2][3])  # the 404 closes
        finally:
            s.close()

    def test_pipelined_with_head_and_close(self):
        s = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
        try:
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"HEAD /json HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                      b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")  # after the close: never answered
            got = read_responses(s, ["GET", "HEAD", "GET", "GET"])
            self.assertEqual([(st, b) for st, _, b, _ in got],
                             [(200, PLAINTEXT), (200, b""), (200, JSON), (200, PLAINTEXT)])
            self.assertEqual(got[1][1]["content-length"], str(len(JSON)))
            self.assertEqual([w for *_, w in got], [False, False, False, True])
            self.assertEqual(recv_until_close(s), b"", "answered a request sent after Connection: close")
        finally:
            s.close()

    def test_long_pipeline_with_a_reader(self):
        n = 2000
        s = socket.create_connection(("127.0.0.1", self.app.port), timeout=10)
        try:
            reqs = b"".join(b"GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % (b"json" if i % 2 else b"plaintext")
                            for i in range(n - 1))
            reqs += b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            result = {}
            t = threading.Thread(target=lambda: result.update(r=read_responses(s, ["GET"] * n, timeout=10)))
            t.start()
            s.sendall(reqs)
            t.join(20)
            self.assertFalse(t.is_alive(), "the pipeline stalled")
            bodies = [b for _, _, b, _ in result["r"]]
            self.assertEqual(bodies, [JSON if i % 2 else PLAINTEXT for i in range(n - 1)] + [PLAINTEXT])
        finally:
            s.close()

    def test_chunked_request_body(self):
        c = self.app.connection()
        try:
            for _ in range(3):
                c.request("GET", "/plaintext", body=iter([b"abc", b"defgh", b"i" * 5000]), encode_chunked=True)
                r = c.getresponse()
                self.assertEqual((r.status, r.read()), (200, PLAINTEXT))
                self.assertFalse(r.will_close)
        finally:
            c.close()

    def test_chunked_response(self):
        # hello always sends Content-Length; comet's /wait is the app whose
        # HTTP/1.1 answer is chunked.
        if not os.path.exists(os.path.join(BUILD, "apps", "comet")):
            self.skipTest("comet is not built")
        with App("comet", "--quiet") as comet:
            c = comet.connection(timeout=5)
            try:
                c.request("GET", "/wait")
                r = c.getresponse()  # the head comes before the wait ends
                self.assertEqual(r.status, 200)
                self.assertEqual((r.getheader("Transfer-Encoding") or "").lower(), "chunked")
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:  # until the waiter is registered
                    n = comet.connection(5)
                    n.request("GET", "/")
                    count = n.getresponse().read()
                    n.close()
                    if count == b"1":
                        break
                    time.sleep(0.02)
                n = comet.connection(5)
                n.request("GET", "/notify")
                self.assertEqual(n.getresponse().read(), b"1")
                n.close()
                self.assertEqual(r.read(), b"1")
                self.assertFalse(r.will_close)
                c.request("GET", "/")  # the same connection goes on
                self.assertEqual(c.getresponse().read(), b"0")
            finally:
                c.close()
            self.assertEqual(comet.stop(), 0)

    def test_urllib(self):
        for path, body in BODIES.items():
            with urllib.request.urlopen(self.app.url(path), timeout=5) as r:
                self.assertEqual((r.status, r.read()), (200, body))
        req = urllib.request.Request(self.app.url("/json"), method="HEAD")
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual((r.status, r.read()), (200, b""))
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(self.app.url("/missing"), timeout=5)
        self.assertEqual(e.exception.code, 404)
        e.exception.close()


# --- wrk --------------------------------------------------------------------------------

@unittest.skipUnless(shutil.which("wrk"), "wrk is not installed")
class Wrk(unittest.TestCase):
    def run_wrk(self, app, *extra):
        p = subprocess.run(["wrk", "-t1", "-c20", "-d2s", "--timeout", "2s"] + list(extra) + [app.url("/plaintext")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 0, out)
        return out

    def check(self, out):
        done = re.search(r"(\d+) requests in", out)
        self.assertTrue(done and int(done.group(1)) > 0, out)
        m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        self.assertIsNone(m, out)
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        self.assertIsNone(m, out)
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return int(done.group(1)), float(rps.group(1)) if rps else 0.0

    def test_plaintext_keep_alive(self):
        with App("hello", "--quiet") as app:
            out = self.run_wrk(app)
            n, rps = self.check(out)
            print(f"\n  wrk -t1 -c20 -d2s /plaintext: {n} requests, {rps:.0f} req/s", flush=True)
            c = app.connection()
            c.request("GET", "/plaintext")
            self.assertEqual(c.getresponse().read(), PLAINTEXT)
            c.close()
            self.assertEqual(app.stop(), 0)

    def test_plaintext_pipelined(self):
        # wrk pipelines when its script returns several requests at once
        # (the TechEmpower plaintext setup: depth 16).
        script = tempfile.NamedTemporaryFile("w", suffix=".lua")
        self.addCleanup(script.close)
        script.write(PIPELINE_LUA)
        script.flush()
        with App("hello", "--quiet") as app:
            p = subprocess.run(["wrk", "-t1", "-c10", "-d1s", "--timeout", "2s", "-s", script.name,
                                app.url("/plaintext"), "--", "16"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            out = p.stdout.decode(errors="replace")
            self.assertEqual(p.returncode, 0, out)
            n, rps = self.check(out)
            print(f"\n  wrk -t1 -c10 -d1s, pipeline depth 16: {n} requests, {rps:.0f} req/s", flush=True)
            self.assertEqual(app.stop(), 0)


PIPELINE_LUA = """
init = function(args)
   local depth = tonumber(args[1]) or 1
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, (i % 2 == 0) and "/json" or "/plaintext")
   end
   req = table.concat(r)
end
request = function()
   return req
end
"""


# --- many concurrent clients ------------------------------------------------------------

class ManyClients(unittest.TestCase):
    THREADS = 200
    REQUESTS = 20

    def test_200_clients_20_keep_alive_requests_each(self):
        with App("hello", "--quiet") as app:
            errors = []
            done = [0]
            lock = threading.Lock()
            start = threading.Barrier(self.THREADS, timeout=20)

            def client(k):
                c = app.connection(timeout=20)
                try:
                    start.wait()
                    sock = None
                    for i in range(self.REQUESTS):
                        path = "/json" if (i + k) % 2 else "/plaintext"
                        c.request("GET", path)
                        r = c.getresponse()
                        body = r.read()
                        if r.status != 200 or body != BODIES[path] or r.will_close:
                            raise AssertionError(f"{path}: {r.status} {body[:60]!r} will_close={r.will_close}")
                        if sock is None:
                            sock = c.sock
                        elif c.sock is not sock:
                            raise AssertionError(f"request {i} needed a new connection")
                        with lock:
                            done[0] += 1
                except Exception as e:  # noqa: BLE001 - collected and reported below
                    with lock:
                        errors.append(f"client {k}: {type(e).__name__}: {e}")
                finally:
                    c.close()

            threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(self.THREADS)]
            t0 = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(0.1, 30 - (time.monotonic() - t0)))
            stuck = sum(t.is_alive() for t in threads)
            self.assertEqual(stuck, 0, f"{stuck} clients still running after 30 s")
            self.assertEqual(errors[:5], [])
            self.assertEqual(done[0], self.THREADS * self.REQUESTS)
            self.assertIsNone(app.proc.poll())
            self.assertEqual(app.stop(), 0)


if __name__ == "__main__":
    unittest.main()
