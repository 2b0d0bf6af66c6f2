"""hello on the wire: its two routes, the flags every app shares, the access
log, graceful stops, and what it answers to malformed or hostile input
(../shared/spec/apps.md, "Common to every app" and "hello").

Self-contained on purpose (starts build/apps/hello itself): the flag and
stdout checks need the whole of stdout and the exit status, and each run
talks to the server over loopback only. Every wait is bounded.
"""
import contextlib
import email.utils
import http.client
import http.server
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
from datetime import datetime, timezone

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import App, app_path, read_to_eof  # noqa: E402
HELLO = app_path("hello")

PLAINTEXT = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$")
MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
LOG_PREFIX = r"^127\.0\.0\.1 - - \[\d{2}/(?:" + MONTHS + r")/\d{4} \d{2}:\d{2}:\d{2}\] "


# --- starting and stopping the app ---------------------------------------------------

class Hello(App):
    """build/apps/hello; request() returns the http.client response itself."""

    def __init__(self, *args, port="0", start_timeout=10):
        super().__init__("hello", *args, port=port, start_timeout=start_timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r, r.read()
        finally:
            c.close()


def run_hello(args, timeout=10):
    return subprocess.run([HELLO] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


# --- raw sockets ------------------------------------------------------------------------

def exchange(port, data, timeout=5, host="127.0.0.1"):
    """Send data as it is; read until the server closes (or timeout).
    Returns (bytes received, True if the server closed the connection)."""
    s = socket.create_connection((host, port), timeout=timeout)
    out = b""
    closed = False
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may close before taking all of a hostile request
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            out += chunk
    finally:
        s.close()
    return out, closed


class Resp:
    def __init__(self, status, reason, header_list, body):
        self.status = status
        self.reason = reason
        self.header_list = header_list
        self.headers = {}
        for k, v in header_list:
            self.headers.setdefault(k.lower(), v)
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.reason} {self.header_list} {self.body[:60]!r}>"


def parse_response(data, method="GET"):
    """One response from the front of data: (Resp, rest)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise AssertionError(f"no complete response head in {data[:300]!r}")
    lines = data[:end].decode("latin-1").split("\r\n")
    rest = data[end + 4:]
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise AssertionError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    hl = []
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep or k != k.strip():
            raise AssertionError(f"bad header line {line!r}")
        hl.append((k, v.strip()))
    r = Resp(status, reason, hl, b"")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return r, rest
    te = (r.header("Transfer-Encoding") or "").lower()
    if "chunked" in te:
        body = b""
        while True:
            eol = rest.find(b"\r\n")
            size = int(rest[:eol].split(b";")[0], 16)
            rest = rest[eol + 2:]
            if size == 0:
                rest = rest[rest.find(b"\r\n") + 2:]
                break
            body += rest[:size]
            rest = rest[size + 2:]
        r.body = body
    elif r.header("Content-Length") is not None:
        n = int(r.header("Content-Length"))
        if len(rest) < n:
            raise AssertionError(f"body short: {len(rest)} of {n}")
        r.body, rest = rest[:n], rest[n:]
    else:
        r.body, rest = rest, b""
    return r, rest


def parse_responses(data, methods):
    out = []
    for m in methods:
        r, data = parse_response(data, m)
        out.append(r)
    return out, data


def get(path="/plaintext", extra=b"", version=b"HTTP/1.1", method=b"GET"):
    return method + b" " + path.encode() + b" " + version + b"\r\nHost: localhost\r\n" + extra + b"\r\n"


# --- the routes -------------------------------------------------------------------------

class Routes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Hello("--quiet").start()

    @classmethod
    def tearDownClass(cls):
        cls.app.stop()

    def check_date_and_server(self, r):
        date = r.header("Date")
        self.assertIsNotNone(date, r)
        self.assertRegex(date, IMF_FIXDATE)
        when = email.utils.parsedate_to_datetime(date)
        self.assertLess(abs((datetime.now(timezone.utc) - when).total_seconds()), 5, date)
        self.assertTrue(r.header("Server"), r)

    def test_plaintext(self):
        data, _ = exchange(self.app.port, get("/plaintext", b"Connection: close\r\n"))
        r, rest = parse_response(data)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, PLAINTEXT)
        self.assertEqual(rest, b"")
        self.assertEqual(r.header("Content-Type"), "text/plain")
        self.assertEqual(r.header("Content-Length"), "13")
        self.check_date_and_server(r)

    def test_json(self):
        status, resp, body = self.app.request("GET", "/json")
        self.assertEqual(status, 200)
        self.assertEqual(body, JSON)
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        self.assertEqual(resp.getheader("Content-Length"), str(len(JSON)))
        self.assertRegex(resp.getheader("Date"), IMF_FIXDATE)
        self.assertTrue(resp.getheader("Server"))

    def test_head_same_headers_no_body(self):
        for path in ("/plaintext", "/json"):
            with self.subTest(path=path):
                g, _ = exchange(self.app.port, get(path, b"Connection: close\r\n"))
                h, closed = exchange(self.app.port, get(path, b"Connection: close\r\n", method=b"HEAD"))
                self.assertTrue(closed)
                gr, _ = parse_response(g)
                hr, rest = parse_response(h, "HEAD")
                self.assertEqual(rest, b"", "HEAD answered with a body")
                self.assertEqual(hr.status, 200)
                strip = lambda r: [(k.lower(), v) for k, v in r.header_list if k.lower() != "date"]
                self.assertEqual(strip(hr), strip(gr))
                self.check_date_and_server(hr)

    def test_head_of_unknown_path_has_no_body(self):
        data, closed = exchange(self.app.port, get("/nope", method=b"HEAD"))
        r, rest = parse_response(data, "HEAD")
        self.assertEqual(r.status, 404)
        self.assertEqual(rest, b"")
        self.assertTrue(closed)

    def test_unknown_path_404(self):
        for path in ("/", "/nope", "/plaintext/", "/plaintext/?x=1", "/PLAINTEXT"):
            with self.subTest(path=path):
                status, _, _ = self.app.request("GET", path)
                self.assertEqual(status, 404)

    def test_query_string_names_the_same_route(self):
        # The route is the path: a query does not make /plaintext a different resource.
        for path, body in (("/plaintext?x=1x", PLAINTEXT), ("/json?", JSON)):
            with self.subTest(path=path):
                status, _, got = self.app.request("GET", path)
                self.assertEqual((status, got), (200, body))

    def test_post_501(self):
        status, resp, body = self.app.request("POST", "/plaintext", body=b"hello",
                                              headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 501)
        data, closed = exchange(self.app.port, get("/json", b"Content-Length: 5\r\n", method=b"POST") + b"hello")
        r, _ = parse_response(data)
        self.assertEqual(r.status, 501)
        self.assertTrue(closed)

    def test_other_methods_501(self):
        for m in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=m):
                status, _, _ = self.app.request(m, "/plaintext")
                self.assertEqual(status, 501)

    def test_keep_alive_default_for_http11(self):
        c = self.app.connection()
        try:
            socks = set()
            for i in range(5):
                c.request("GET", "/plaintext" if i % 2 else "/json")
                r = c.getresponse()
                self.assertEqual(r.read(), PLAINTEXT if i % 2 else JSON)
                self.assertFalse(r.will_close)
                socks.add(id(c.sock))
            self.assertEqual(len(socks), 1)
        finally:
            c.close()

    def test_connection_close_is_honoured(self):
        data, closed = exchange(self.app.port, get("/plaintext", b"Connection: close\r\n"), timeout=3)
        self.assertTrue(closed, "the server kept a Connection: close connection open")
        r, _ = parse_response(data)
        self.assertEqual(r.header("Connection"), "close")


# --- the flags every app shares ----------------------------------------------------------

def ipv6_loopback_works():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Flags(unittest.TestCase):
    def test_listening_line_exactly_once(self):
        app = Hello()
        with app:
            self.assertRegex(app.listening_line, r"^listening on http://127\.0\.0\.1:\d+$")
            self.assertNotEqual(app.port, 0)
            self.assertEqual(app.request("GET", "/plaintext")[0], 200)
            rc = app.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(app.out.decode(), f"listening on http://127.0.0.1:{app.port}\n")

    def test_explicit_host(self):
        with Hello("--host", "127.0.0.1") as app:
            self.assertEqual(app.listening_line, f"listening on http://127.0.0.1:{app.port}")

    def test_ipv6_loopback(self):
        if not ipv6_loopback_works():
            self.skipTest("no IPv6 loopback here")
        app = Hello("--host", "::1")
        with app:
            # A URL needs the brackets around an IPv6 address.
            self.assertRegex(app.listening_line, r"^listening on http://\[::1\]:\d+$")
            c = http.client.HTTPConnection("::1", app.port, timeout=5)
            try:
                c.request("GET", "/plaintext")
                r = c.getresponse()
                self.assertEqual((r.status, r.read()), (200, PLAINTEXT))
            finally:
                c.close()
            self.assertEqual(app.stop(), 0)
        self.assertEqual(app.out.decode().count("listening on"), 1)
        self.assertRegex(app.stderr_text(), r'(?m)^::1 - - \[.*\] "GET /plaintext HTTP/1\.1" 200 -$')

    def test_help(self):
        p = run_hello(["--help"])
        self.assertEqual(p.returncode, 0, p.stderr)
        for flag in (b"--host", b"--port", b"--quiet", b"--help"):
            self.assertIn(flag, p.stdout)
        self.assertNotIn(b"listening on", p.stdout)

    def test_bad_flags_exit_2(self):
        for args in (["--bogus"], ["--port", "abc"], ["--port", "70000"], ["--port", "-1"],
                     ["--port"], ["--port", "0", "extra"], ["--quiet=maybe"]):
            with self.subTest(args=args):
                p = run_hello(args)
                self.assertEqual(p.returncode, 2, (p.stdout, p.stderr))
                self.assertTrue(p.stderr.strip(), "no message on stderr")
                self.assertNotIn(b"listening on", p.stdout)

    def test_port_in_use_exits_2(self):
        # Binding fails after the scheduler is running (bind_or_exit in
        # run_servers); that path must still exit 2 with a message.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            p = run_hello(["--port", str(port)])
        self.assertIn(b"cannot listen", p.stderr)
        self.assertEqual(p.returncode, 2, f"exit status {p.returncode} (negative: killed by that signal); "
                                          f"stderr {p.stderr!r}")

    def test_quiet_silences_access_log(self):
        app = Hello("--quiet")
        with app:
            for path in ("/plaintext", "/json", "/plaintext"):
                self.assertEqual(app.request("GET", path)[0], 200)
            self.assertEqual(app.request("HEAD", "/json")[0], 200)
            self.assertEqual(app.stop(), 0)
            self.assertEqual(app.stderr_text(), "")


# --- the access log --------------------------------------------------------------------

def python_reference_log(requests):
    """What Python's own BaseHTTPRequestHandler logs for these raw requests
    (served by an http.server with hello's two routes)."""

    class Ref(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = {"/plaintext": PLAINTEXT, "/json": JSON}.get(self.path)
            if body is None:
                self.send_error(404, "Not Found", "Try /plaintext or /json")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ref)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            for data in requests:
                exchange(srv.server_address[1], data, timeout=3)
        finally:
            srv.shutdown()
            srv.server_close()
            t.join(5)
    return buf.getvalue()


def mask_dates(text):
    return re.sub(r"\[\d{2}/\w{3}/\d{4} \d{2}:\d{2}:\d{2}\]", "[DATE]", text)


def access_lines(text):
    """Only the per-request lines ("REQUESTLINE" CODE SIZE), not log_error's."""
    return [l for l in mask_dates(text).splitlines() if re.search(r'\] ".*" \d{3} \S+$', l)]


class AccessLog(unittest.TestCase):
    def test_format_matches_python(self):
        app = Hello()
        with app:
            self.assertEqual(app.request("GET", "/plaintext")[0], 200)
            self.assertEqual(app.request("GET", "/json")[0], 200)
            self.assertEqual(app.request("HEAD", "/plaintext")[0], 200)
            self.assertEqual(app.request("GET", "/nope")[0], 404)
            self.assertEqual(app.stop(), 0)
        lines = app.stderr_text().splitlines()
        self.assertRegex(lines[0], LOG_PREFIX + r'"GET /plaintext HTTP/1\.1" 200 -$')
        self.assertRegex(lines[1], LOG_PREFIX + r'"GET /json HTTP/1\.1" 200 -$')
        self.assertRegex(lines[2], LOG_PREFIX + r'"HEAD /plaintext HTTP/1\.1" 200 -$')
        # The date is local time, as Python's log_date_time_string writes it.
        stamp = re.search(r"\[(.*?)\]", lines[0]).group(1)
        logged = time.mktime(time.strptime(stamp, "%d/%b/%Y %H:%M:%S"))
        self.assertLess(abs(time.time() - logged), 60, stamp)
        # The same requests through Python's http.server log the same lines.
        reqs = [get("/plaintext", b"Connection: close\r\n"), get("/json", b"Connection: close\r\n"),
                get("/plaintext", b"Connection: close\r\n", method=b"HEAD"), get("/nope")]
        self.assertEqual(mask_dates("\n".join(lines) + "\n"), mask_dates(python_reference_log(reqs)))

    def test_one_line_per_request_on_keep_alive(self):
        app = Hello()
        with app:
            c = app.connection()
            for _ in range(7):
                c.request("GET", "/plaintext")
                c.getresponse().read()
            c.close()
            self.assertEqual(app.stop(), 0)
        lines = app.stderr_text().splitlines()
        self.assertEqual(len(lines), 7, lines)
        for l in lines:
            self.assertRegex(l, LOG_PREFIX + r'"GET /plaintext HTTP/1\.1" 200 -$')

    def test_rejected_requests_logged_as_python_does(self):
        # Python logs the request line it was sent, even when it rejects it;
        # an operator reading the log needs to see what was refused.
        reqs = [b"garbage\r\n\r\n",
                b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
                b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n",
                b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n"]
        app = Hello()
        with app:
            for data in reqs:
                exchange(app.port, data, timeout=3)
            app.stop()
        self.assertEqual(access_lines(app.stderr_text()), access_lines(python_reference_log(reqs)))


# --- signals ---------------------------------------------------------------------------

class Signals(unittest.TestCase):
    def stop_with(self, sig, *args, setup=None, limit=3.0):
        """Start hello, serve one request (so it is surely up), run setup,
        send sig; returns (exit status or None, seconds, what setup returned)."""
        app = Hello("--quiet", *args).start()
        self.addCleanup(app.stop, signal.SIGKILL)
        self.assertEqual(app.request("GET", "/plaintext")[0], 200)
        held = setup(app) if setup else []
        for s in held:
            self.addCleanup(s.close)
        t0 = time.monotonic()
        app.proc.send_signal(sig)
        try:
            rc = app.proc.wait(timeout=limit + 5)
        except subprocess.TimeoutExpired:
            rc = None
        return rc, time.monotonic() - t0, held

    @staticmethod
    def idle_keep_alive(app):
        s = socket.create_connection(("127.0.0.1", app.port), timeout=5)
        s.sendall(get("/plaintext"))
        r, _ = parse_response(s.recv(65536))
        assert r.status == 200 and r.body == PLAINTEXT
        return [s]

    def test_sigint_and_sigterm_exit_0(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig.name):
                rc, took, _ = self.stop_with(sig)
                self.assertEqual(rc, 0)
                self.assertLess(took, 3.0)

    def test_signal_right_after_the_listening_line(self):
        # "listening on" means ready: a supervisor may stop the app the moment
        # it reads that line, and must still get the graceful stop (exit 0),
        # not death by the signal's default action.
        got = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            for attempt in range(3):
                app = Hello("--quiet").start()
                self.addCleanup(app.stop, signal.SIGKILL)
                app.proc.send_signal(sig)
                try:
                    rc = app.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    rc = None
                got.setdefault(sig.name, []).append(rc)
        # A negative status is death by that signal; None: still running.
        self.assertEqual(got, {"SIGTERM": [0, 0, 0], "SIGINT": [0, 0, 0]})

    def test_signal_with_idle_keep_alive_client(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig.name):
                rc, took, held = self.stop_with(sig, setup=self.idle_keep_alive)
                self.assertEqual(rc, 0)
                self.assertLess(took, 3.0, "an idle keep-alive connection held up the stop")
                held[0].settimeout(2)
                try:
                    self.assertEqual(held[0].recv(100), b"", "the idle connection got bytes, not a close")
                except ConnectionResetError:
                    pass

    def test_signal_with_many_idle_clients(self):
        def many(app):
            socks = [socket.create_connection(("127.0.0.1", app.port), timeout=5) for _ in range(100)]
            for s in socks[:50]:
                s.sendall(get("/json"))
            for s in socks[:50]:
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
            return socks

        rc, took, _ = self.stop_with(signal.SIGTERM, setup=many)
        self.assertEqual(rc, 0)
        self.assertLess(took, 3.0)

    def test_signal_with_half_sent_request_is_bounded_by_grace(self):
        def partial(app):
            s = socket.create_connection(("127.0.0.1", app.port), timeout=5)
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.1)
            return [s]

        rc, took, _ = self.stop_with(signal.SIGTERM, "--grace", "1", setup=partial)
        self.assertEqual(rc, 0)
        self.assertLess(took, 3.0, "a half-sent request held the stop past --grace 1")

    def test_no_new_connections_after_stop(self):
        app = Hello("--quiet").start()
        port = app.port
        self.assertEqual(app.request("GET", "/json")[0], 200)
        self.assertEqual(app.stop(signal.SIGINT), 0)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --- malformed and hostile input ---------------------------------------------------------

HOSTILE = [
    # name, request bytes, expected status
    ("garbage", b"garbage\r\n\r\n", 400),
    ("binary junk", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n", 400),
    ("HTTP/2.0", b"GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/3.0", b"GET /plaintext HTTP/3.0\r\nHost: x\r\n\r\n", 505),
    ("unknown method", b"FROBNICATE /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("URL over 64 KiB", b"GET /" + b"a" * (64 * 1024 + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("URL of 1 MiB", b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("101 headers", b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" +
     b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
    ("1000 headers", b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" +
     b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n", 431),
    ("header over 64 KiB", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (64 * 1024 + 10) + b"\r\n\r\n", 431),
    ("headers over 64 KiB in all", b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" +
     b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 900) for i in range(80)) + b"\r\n", 431),
    ("Content-Length with Transfer-Encoding",
     b"POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("Transfer-Encoding with Content-Length",
     b"GET /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two Content-Lengths", b"POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    ("bad Content-Length", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello", 400),
    ("negative Content-Length", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("bad chunk size", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400),
    ("overflowing chunk size", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
    ("Transfer-Encoding gzip", b"POST /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("Transfer-Encoding gzip, chunked",
     b"GET /plaintext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("space before colon", b"GET /plaintext HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("obs-fold", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("NUL in the target", b"GET /plain\x00text HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("HTTP/1.1 without Host", b"GET /plaintext HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    ("HTTP/0.9", b"GET /plaintext\r\n\r\n", 400),
]


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.app = Hello("--quiet").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.app.stop()
        assert rc == 0, f"hello exited {rc} after the hostile input"

    def assert_healthy(self):
        self.assertIsNone(self.app.proc.poll(), "hello died")
        status, _, body = self.app.request("GET", "/plaintext", timeout=5)
        self.assertEqual((status, body), (200, PLAINTEXT))

    def test_each_answered_with_its_status_and_closed(self):
        for name, data, want in HOSTILE:
            with self.subTest(name):
                t0 = time.monotonic()
                out, closed = exchange(self.app.port, data, timeout=5)
                self.assertLess(time.monotonic() - t0, 4.5, "no answer; the server waited for more")
                r, _ = parse_response(out)
                self.assertEqual(r.status, want, r)
                self.assertEqual((r.header("Connection") or "").lower(), "close", r)
                self.assertTrue(closed, "the connection was left open after the error")
                self.assertRegex(r.header("Date") or "", IMF_FIXDATE)
                self.assert_healthy()

    def test_error_after_good_pipelined_request(self):
        out, closed = exchange(self.app.port, get("/plaintext") + b"garbage\r\n\r\n" + get("/json"))
        (ok, bad), rest = parse_responses(out, ["GET", "GET"])
        self.assertEqual((ok.status, ok.body), (200, PLAINTEXT))
        self.assertEqual(bad.status, 400)
        self.assertEqual(rest, b"", "answered a request after the one it rejected")
        self.assertTrue(closed)

    def test_limits_are_not_hit_below_them(self):
        cases = [
            ("100 headers", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
             b"".join(b"X-H%d: v\r\n" % i for i in range(98)) + b"\r\n"),
            ("a 60 KiB header", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " +
             b"b" * (60 * 1024) + b"\r\n\r\n"),
        ]
        for name, data in cases:
            with self.subTest(name):
                out, _ = exchange(self.app.port, data)
                r, _ = parse_response(out)
                self.assertEqual((r.status, r.body), (200, PLAINTEXT))
        out, _ = exchange(self.app.port, b"GET /" + b"a" * (60 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(parse_response(out)[0].status, 404)

    def test_oversized_body_refused_before_it_is_sent(self):
        out, closed = exchange(self.app.port, b"POST /plaintext HTTP/1.1\r\nHost: x\r\n"
                                              b"Content-Length: 1000000000\r\n\r\n", timeout=3)
        r, _ = parse_response(out)
        self.assertIn(r.status, (413, 501))
        self.assertTrue(closed)
        self.assert_healthy()

    def test_client_that_vanishes_mid_request(self):
        for data in (b"GET /plaintext HTTP/1.1\r\nHo", get("/plaintext") * 50,
                     b"POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"):
            for _ in range(10):
                s = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                s.sendall(data)
                s.close()
        self.assert_healthy()

    def test_slow_head_not_cut_early_and_others_served(self):
        # The header timeout (10 s by default) is too slow to wait for here;
        # check only that a slow client is not dropped after a second and
        # that it holds nobody else up.
        slow = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
        try:
            slow.sendall(b"GET /plain")
            t0 = time.monotonic()
            served = 0
            while time.monotonic() - t0 < 1.0:
                status, _, body = self.app.request("GET", "/json", timeout=2)
                self.assertEqual((status, body), (200, JSON))
                served += 1
                time.sleep(0.05)
            self.assertGreater(served, 5)
            slow.setblocking(False)
            try:
                got = slow.recv(100)
                self.fail(f"the slow client was answered or closed after 1 s: {got!r}")
            except BlockingIOError:
                pass  # still open, nothing sent: as it should be
            slow.setblocking(True)
            slow.sendall(b"text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r, _ = parse_response(read_to_eof(slow, timeout=5))
            self.assertEqual((r.status, r.body), (200, PLAINTEXT))
        finally:
            slow.close()

    def test_dribbled_request(self):
        s = socket.create_connection(("127.0.0.1", self.app.port), timeout=5)
        try:
            for b in get("/json", b"Connection: close\r\n"):
                s.sendall(bytes([b]))
                time.sleep(0.002)
            r, _ = parse_response(read_to_eof(s, timeout=5))
            self.assertEqual((r.status, r.body), (200, JSON))
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
