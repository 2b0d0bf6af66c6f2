"""comet's wire contract (shared/spec/apps.md, "comet" and "Common to every app"),
checked against the built app with real clients: raw sockets, http.client, asyncio
streams for the 500-waiter runs, and curl.

Every wait is bounded: sockets have timeouts, polls have deadlines, the asyncio
runs have an overall timeout, and every App is stopped by its context manager.
"""
import asyncio
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import App, app_path, assert_no_data, have, read_head, read_to_eof  # noqa: E402

HOST = "127.0.0.1"
MANY = 500

# Python's BaseHTTPRequestHandler.log_request line, e.g.
# 127.0.0.1 - - [22/Nov/2026 04:43:54] "GET / HTTP/1.1" 200 -
LOG_LINE = re.compile(r'^127\.0\.0\.1 - - \[(\d\d)/([A-Z][a-z]{2})/(\d{4}) (\d\d):(\d\d):(\d\d)\] "(.*)" (\d{3}) (-|\d+)$')
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


# --- raw-socket helpers ------------------------------------------------------------

def request_bytes(method, path, version="HTTP/1.1", extra=""):
    host = "Host: 127.0.0.1\r\n" if version == "HTTP/1.1" else ""
    return f"{method} {path} {version}\r\n{host}{extra}\r\n".encode()


def read_chunked(sock, buf=b"", timeout=3.0):
    """Decode one chunked body; return (body, bytes after it)."""
    sock.settimeout(timeout)

    def need(pred):
        nonlocal buf
        while not pred(buf):
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed inside a chunked body: {buf!r}")
            buf += chunk

    body = b""
    while True:
        need(lambda b: b"\r\n" in b)
        size_line, buf = buf.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            need(lambda b: b"\r\n" in b)  # no trailers expected: just the final CRLF
            line, buf = buf.split(b"\r\n", 1)
            if line != b"":
                raise AssertionError(f"unexpected trailer {line!r}")
            return body, buf
        need(lambda b: len(b) >= size + 2)
        body += buf[:size]
        if buf[size:size + 2] != b"\r\n":
            raise AssertionError(f"chunk not followed by CRLF: {buf!r}")
        buf = buf[size + 2:]


def wait_for(predicate, timeout, interval=0.01):
    """Poll predicate() until it is truthy or timeout passes; return (value, seconds)."""
    t0 = time.monotonic()
    while True:
        value = predicate()
        if value or time.monotonic() - t0 >= timeout:
            return value, time.monotonic() - t0
        time.sleep(interval)


def count(app):
    status, _, body = app.get("/")
    assert status == 200, status
    return int(body)


def wait_count(app, n, timeout):
    """Poll GET / until it reports n; return (last count, seconds)."""
    last = [None]

    def ok():
        last[0] = count(app)
        return last[0] == n

    _, took = wait_for(ok, timeout)
    return last[0], took


def park(app, version="HTTP/1.1", path="/wait"):
    """Open a waiter and read its head; return (sock, status_line, headers, leftover)."""
    s = socket.create_connection((HOST, app.port), timeout=5)
    s.sendall(request_bytes("GET", path, version))
    status_line, headers, rest = read_head(s)
    return s, status_line, headers, rest


def kib(app, field):
    """A VmXXX figure of the app's /proc/PID/status, in KiB."""
    with open(f"/proc/{app.proc.pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{app.proc.pid}/status")


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# --- many waiters at once (asyncio streams) ------------------------------------------

async def _open_waiter(port, version):
    r, w = await asyncio.open_connection(HOST, port)
    w.write(request_bytes("GET", "/wait", version))
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"waiter got {head!r}")
    return r, w, version, head.lower()


async def open_waiters(port, n, versions=("HTTP/1.0", "HTTP/1.1")):
    # Connect in batches of 100 so the listen queue is never the thing under test.
    out = []
    for start in range(0, n, 100):
        batch = [_open_waiter(port, versions[i % len(versions)]) for i in range(start, min(n, start + 100))]
        out += await asyncio.gather(*batch)
    return out


async def _read_body(r, version, head):
    if version == "HTTP/1.0":
        if b"transfer-encoding" in head or b"content-length" in head:
            raise AssertionError(f"HTTP/1.0 waiter must get a close-delimited body: {head!r}")
        return await r.read()  # to EOF
    if b"transfer-encoding: chunked" not in head:
        raise AssertionError(f"HTTP/1.1 waiter must get a chunked body: {head!r}")
    body = b""
    while True:
        size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            if await r.readuntil(b"\r\n") != b"\r\n":
                raise AssertionError("unexpected trailer")
            return body
        body += (await r.readexactly(size + 2))[:-2]


async def _reuse(r, w):
    w.write(request_bytes("GET", "/reused"))
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    return head, await r.readexactly(length)


def close_writers(waiters):
    for _, w, _, _ in waiters:
        w.close()


# --- the tests -----------------------------------------------------------------------

class CometTest(unittest.TestCase):
    def setUp(self):
        if not os.access(app_path("comet"), os.X_OK):
            self.fail(f"{app_path('comet')} is not built (make apps)")

    # GET /wait ------------------------------------------------------------------------

    def test_wait_headers_arrive_before_notify_http11_chunked_and_reusable(self):
        with App("comet", quiet=True) as app:
            s, status_line, headers, rest = park(app, "HTTP/1.1")
            try:
                self.assertEqual(status_line, "HTTP/1.1 200 OK")
                self.assertEqual(headers.get("content-type"), "text/plain")
                self.assertEqual(headers.get("transfer-encoding"), "chunked")
                self.assertNotIn("content-length", headers)
                self.assertIn("date", headers)
                self.assertIn("server", headers)
                self.assertEqual(rest, b"")
                assert_no_data(s)  # parked: no body before the notify
                self.assertEqual(app.get("/notify")[2], b"1")
                body, rest = read_chunked(s, rest)
                self.assertEqual(body, b"1")
                self.assertEqual(rest, b"")
                # The same connection serves the next request.
                s.sendall(request_bytes("GET", "/"))
                status_line, headers, rest = read_head(s)
                self.assertEqual(status_line, "HTTP/1.1 200 OK")
                n = int(headers["content-length"])
                while len(rest) < n:
                    rest += s.recv(65536)
                self.assertEqual(rest, b"0")
            finally:
                s.close()

    def test_wait_http10_is_close_delimited(self):
        with App("comet", quiet=True) as app:
            s, status_line, headers, rest = park(app, "HTTP/1.0")
            try:
                self.assertRegex(status_line, r"^HTTP/1\.[01] 200 ")
                self.assertEqual(headers.get("content-type"), "text/plain")
                self.assertNotIn("content-length", headers)
                self.assertNotIn("transfer-encoding", headers)
                assert_no_data(s)
                self.assertEqual(app.get("/notify")[2], b"1")
                self.assertEqual(read_to_eof(s, rest), b"1")
            finally:
                s.close()

    def test_wait_http10_keep_alive_request_is_still_close_delimited(self):
        with App("comet", quiet=True) as app:
            s = socket.create_connection((HOST, app.port), timeout=5)
            try:
                s.sendall(b"GET /wait HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                _, headers, rest = read_head(s)
                self.assertNotIn("transfer-encoding", headers)
                self.assertNotIn("content-length", headers)
                self.assertEqual(wait_count(app, 1, 2)[0], 1)
                app.get("/notify")
                self.assertEqual(read_to_eof(s, rest), b"1")
            finally:
                s.close()

    def test_wait_with_http_client_and_a_query_string(self):
        with App("comet", quiet=True) as app:
            c = http.client.HTTPConnection(HOST, app.port, timeout=5)
            try:
                c.request("GET", "/wait?since=0")
                r = c.getresponse()  # returns once the head is in: before any notify
                self.assertEqual(r.status, 200)
                self.assertEqual(r.getheader("Content-Type"), "text/plain")
                self.assertEqual(count(app), 1)
                self.assertEqual(app.get("/notify?x=1")[2], b"1")
                self.assertEqual(r.read(), b"1")
                c.request("GET", "/")  # kept alive
                r = c.getresponse()
                self.assertEqual(r.read(), b"0")
            finally:
                c.close()

    def test_one_connection_waits_again_and_again(self):
        # What the /app page does: /wait, get n, /wait again on the same connection.
        with App("comet", quiet=True) as app:
            c = http.client.HTTPConnection(HOST, app.port, timeout=5)
            other, _, _, rest = park(app, "HTTP/1.1")
            try:
                for i in range(30):
                    c.request("GET", "/wait")
                    r = c.getresponse()
                    self.assertEqual(r.status, 200)
                    self.assertEqual(count(app), 2, f"round {i}")
                    self.assertEqual(app.get("/notify")[2], b"2", f"round {i}")
                    self.assertEqual(r.read(), b"2", f"round {i}")
                    body, rest = read_chunked(other, rest)
                    self.assertEqual(body, b"2")
                    other.sendall(request_bytes("GET", "/wait"))
                    _, _, rest = read_head(other, buf=rest)
            finally:
                c.close()
                other.close()

    def test_wait_http11_with_connection_close(self):
        with App("comet", quiet=True) as app:
            s = socket.create_connection((HOST, app.port), timeout=5)
            try:
                s.sendall(request_bytes("GET", "/wait", extra="Connection: close\r\n"))
                _, headers, rest = read_head(s)
                self.assertEqual(wait_count(app, 1, 2)[0], 1)
                self.assertEqual(app.get("/notify")[2], b"1")
                data = read_to_eof(s, rest)  # the server closes after this response
                if headers.get("transfer-encoding") == "chunked":
                    self.assertTrue(data.endswith(b"0\r\n\r\n"), data)
                    self.assertEqual(data, b"1\r\n1\r\n0\r\n\r\n")
                else:
                    self.assertEqual(data, b"1")
            finally:
                s.close()

    def test_curl_waiters_http10_and_http11_and_reuse(self):
        if not have("curl"):
            self.skipTest("curl is not installed")
        with App("comet", quiet=True) as app:
            procs = [
                subprocess.Popen(["curl", "-s", "-S", "--max-time", "10", "-0", app.url("/wait")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE),
                subprocess.Popen(["curl", "-s", "-S", "--max-time", "10", "--http1.1", app.url("/wait")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE),
                # Two URLs on one connection: the /wait body, then / on the same connection.
                subprocess.Popen(["curl", "-s", "-S", "-v", "--max-time", "10", "--http1.1",
                                  app.url("/wait"), app.url("/after")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE),
            ]
            try:
                self.assertEqual(wait_count(app, 3, 5)[0], 3)
                self.assertEqual(app.get("/notify")[2], b"3")
                outs = [p.communicate(timeout=10) for p in procs]
                self.assertEqual([p.returncode for p in procs], [0, 0, 0], [o[1] for o in outs])
                self.assertEqual(outs[0][0], b"3")
                self.assertEqual(outs[1][0], b"3")
                self.assertEqual(outs[2][0], b"30")  # "3" from /wait, then "0" from /after
                self.assertEqual(outs[2][1].count(b"Connected to"), 1, outs[2][1].decode(errors="replace"))
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()

    def test_head_wait_does_not_park(self):
        with App("comet", quiet=True) as app:
            s = socket.create_connection((HOST, app.port), timeout=5)
            try:
                s.sendall(request_bytes("HEAD", "/wait"))
                status_line, headers, rest = read_head(s)
                self.assertEqual(status_line, "HTTP/1.1 200 OK")
                self.assertEqual(headers.get("content-type"), "text/plain")
                self.assertEqual(rest, b"")
                # Same connection, at once: the count is 0 and no body came.
                s.sendall(request_bytes("GET", "/"))
                status_line, headers, rest = read_head(s)
                while len(rest) < int(headers["content-length"]):
                    rest += s.recv(65536)
                self.assertEqual(rest, b"0")
                self.assertEqual(app.get("/notify")[2], b"0")
            finally:
                s.close()

    # GET / , other paths, /notify ---------------------------------------------------------

    def test_root_and_other_paths_report_the_count(self):
        with App("comet", quiet=True) as app:
            for path in ["/", "/anything", "/wait/", "/notify/x", "/?q=1"]:
                status, headers, body = app.get(path)
                self.assertEqual((status, body), (200, b"0"), path)
                self.assertEqual(headers.get("Content-Type"), "text/plain", path)
                self.assertEqual(headers.get("Content-Length"), "1", path)
            socks = [park(app, v)[0] for v in ("HTTP/1.0", "HTTP/1.1", "HTTP/1.1")]
            try:
                self.assertEqual(wait_count(app, 3, 2)[0], 3)
                for path in ["/", "/anything", "/wait/", "/notify/x"]:
                    self.assertEqual(app.get(path)[2], b"3", path)
                status, headers, body = app.request("HEAD", "/")
                self.assertEqual((status, body, headers.get("Content-Length")), (200, b"", "1"))
                self.assertEqual(count(app), 3)  # HEAD / did not park or notify
            finally:
                close_all(socks)

    def test_notify_with_no_waiters_returns_0(self):
        with App("comet", quiet=True) as app:
            status, headers, body = app.get("/notify")
            self.assertEqual((status, body), (200, b"0"))
            self.assertEqual(headers.get("Content-Type"), "text/plain")
            self.assertEqual(count(app), 0)

    def test_notify_delivers_only_to_waiters_registered_then(self):
        with App("comet", quiet=True) as app:
            first = [park(app, "HTTP/1.1") for _ in range(2)]
            try:
                self.assertEqual(wait_count(app, 2, 2)[0], 2)
                self.assertEqual(app.get("/notify")[2], b"2")
                for s, _, _, rest in first:
                    self.assertEqual(read_chunked(s, rest)[0], b"2")
                later, _, _, rest = park(app, "HTTP/1.0")
                try:
                    self.assertEqual(wait_count(app, 1, 2)[0], 1)
                    self.assertEqual(app.get("/notify")[2], b"1")
                    self.assertEqual(read_to_eof(later, rest), b"1")
                finally:
                    later.close()
            finally:
                close_all(s for s, _, _, _ in first)

    # The protocol with MANY waiters, and memory ------------------------------------------

    def test_protocol_with_500_waiters(self):
        with App("comet", quiet=True) as app:
            rss0 = kib(app, "VmRSS")

            async def run():
                waiters = await open_waiters(app.port, MANY)
                try:
                    n, took = await asyncio.to_thread(wait_count, app, MANY, 10)
                    self.assertEqual(n, MANY, "GET / never reported every waiter")
                    rss_now = kib(app, "VmRSS")
                    await asyncio.sleep(0.2)  # parked stacks are compacted after 20 ms
                    rss, hwm = kib(app, "VmRSS"), kib(app, "VmHWM")
                    print(f"\ncomet: {MANY} parked waiters: VmRSS {rss} KiB ({rss_now} KiB the moment the "
                          f"last one parked, {rss0} KiB idle, peak {hwm} KiB): "
                          f"{(rss - rss0) / MANY:.1f} KiB per waiter", flush=True)
                    self.assertLess((max(rss, rss_now) - rss0) / MANY, 64, "more than 64 KiB per parked waiter")
                    status, _, body = await asyncio.to_thread(app.get, "/notify")
                    self.assertEqual((status, body), (200, str(MANY).encode()))
                    bodies = await asyncio.gather(*(_read_body(r, v, h) for r, _, v, h in waiters))
                    self.assertEqual(set(bodies), {str(MANY).encode()})
                    self.assertEqual(len(bodies), MANY)
                    # HTTP/1.1 waiters keep their connection: a few ask again on it.
                    kept = [(r, w) for r, w, v, _ in waiters if v == "HTTP/1.1"][:20]
                    for head, body in await asyncio.gather(*(_reuse(r, w) for r, w in kept)):
                        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
                        self.assertEqual(body, b"0")
                finally:
                    close_writers(waiters)

            asyncio.run(asyncio.wait_for(run(), 40))
            self.assertEqual(count(app), 0)

    def test_500_waiters_that_hang_up_leak_nothing(self):
        with App("comet", quiet=True) as app:
            fds0 = app.open_fds()

            async def run():
                waiters = await open_waiters(app.port, MANY)
                try:
                    self.assertEqual((await asyncio.to_thread(wait_count, app, MANY, 10))[0], MANY)
                    self.assertGreaterEqual(app.open_fds(), fds0 + MANY)
                finally:
                    close_writers(waiters)
                    await asyncio.sleep(0)

            asyncio.run(asyncio.wait_for(run(), 30))
            n, took = wait_count(app, 0, 3)
            self.assertEqual(n, 0, f"GET / still reports {n} waiters after they all hung up")
            fds, _ = wait_for(lambda: app.open_fds() <= fds0 + 1, 3)
            self.assertTrue(fds, f"server holds {app.open_fds()} fds, {fds0} before the waiters came")
            self.assertEqual(app.get("/notify")[2], b"0")

    # Hang-ups ------------------------------------------------------------------------------

    def test_hang_up_removes_the_waiter_promptly_and_it_is_never_notified(self):
        with App("comet", quiet=True) as app:
            waiters = [park(app, "HTTP/1.1" if i % 2 else "HTTP/1.0") for i in range(20)]
            try:
                self.assertEqual(wait_count(app, 20, 2)[0], 20)
                gone, staying = waiters[:10], waiters[10:]
                close_all(s for s, _, _, _ in gone)
                n, took = wait_count(app, 10, 1.0)
                print(f"\ncomet: 10 of 20 waiters hung up; GET / reported 10 after {took * 1000:.0f} ms",
                      flush=True)
                self.assertEqual(n, 10, f"GET / still reports {n} a second after 10 of 20 waiters hung up")
                self.assertLess(took, 1.0)
                # The notify counts only the 10 still there, and each of them gets 10.
                self.assertEqual(app.get("/notify")[2], b"10")
                for s, status_line, headers, rest in staying:
                    if headers.get("transfer-encoding") == "chunked":
                        self.assertEqual(read_chunked(s, rest)[0], b"10")
                    else:
                        self.assertEqual(read_to_eof(s, rest), b"10")
                self.assertEqual(count(app), 0)
            finally:
                close_all(s for s, _, _, _ in waiters)

    def test_hang_up_with_reset(self):
        with App("comet", quiet=True) as app:
            s, _, _, _ = park(app)
            self.assertEqual(wait_count(app, 1, 2)[0], 1)
            # SO_LINGER 0: close() sends RST instead of FIN.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            self.assertEqual(wait_count(app, 0, 1.0)[0], 0)
            self.assertEqual(app.get("/notify")[2], b"0")

    # Common to every app -------------------------------------------------------------------

    def test_listening_line_is_exact_and_alone(self):
        with App("comet", quiet=True) as app:
            self.assertRegex(app.listening_line, r"^listening on http://127\.0\.0\.1:\d+$")
            self.assertNotEqual(app.port, 0)
            self.assertEqual(count(app), 0)
            self.assertEqual(app.stop(), 0)
        # A fixed port is printed as given.
        probe = socket.socket()
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        probe.close()
        p = subprocess.Popen([app_path("comet"), "--port", str(port), "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline()
            self.assertEqual(line, f"listening on http://127.0.0.1:{port}\n".encode())
            c = http.client.HTTPConnection(HOST, port, timeout=5)
            c.request("GET", "/")
            self.assertEqual(c.getresponse().read(), b"0")
            c.close()
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=5)
            self.assertEqual(out, b"", "more than the one line on stdout")
            self.assertEqual(p.returncode, 0, err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_help_exits_0_with_usage(self):
        p = subprocess.run([app_path("comet"), "--help"], capture_output=True, timeout=5)
        self.assertEqual(p.returncode, 0)
        text = p.stdout.decode()
        self.assertIn("Usage", text)
        for flag in ("--host", "--port", "--quiet", "--help"):
            self.assertIn(flag, text)

    def test_bad_flags_exit_2_with_a_message(self):
        for args in (["--bogus"], ["--port", "abc"], ["--port", "70000"], ["--port", "-1"], ["--port"]):
            p = subprocess.run([app_path("comet")] + args, capture_output=True, timeout=5)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.strip(), f"no message on stderr for {args}")
            self.assertNotIn(b"listening on", p.stdout, args)

    def test_access_log_format(self):
        with App("comet") as app:
            app.get("/")
            app.get("/some/path?x=1")
            app.raw(b"GET /old HTTP/1.0\r\n\r\n")
            s, _, _, _ = park(app, "HTTP/1.1")
            try:
                app.get("/notify")
                read_chunked(s)
            finally:
                s.close()
            before = time.localtime()
            self.assertEqual(app.stop(), 0)
            log = app.stderr_text()
        lines = [line for line in log.splitlines() if line.strip()]
        requests = []
        for line in lines:
            m = LOG_LINE.match(line)
            self.assertIsNotNone(m, f"not a Common Log Format line: {line!r}")
            day, mon, year, hh, mm, ss, request, code, size = m.groups()
            self.assertIn(mon, MONTHS)
            self.assertTrue(1 <= int(day) <= 31 and 0 <= int(hh) < 24 and 0 <= int(mm) < 60, line)
            self.assertLessEqual(abs(int(year) - before.tm_year), 1, line)
            requests.append((request, code, size))
        self.assertEqual(requests, [
            ("GET / HTTP/1.1", "200", "-"),
            ("GET /some/path?x=1 HTTP/1.1", "200", "-"),
            ("GET /old HTTP/1.0", "200", "-"),
            ("GET /wait HTTP/1.1", "200", "-"),
            ("GET /notify HTTP/1.1", "200", "-"),
        ])
        # The date is local time, like Python's log_date_time_string().
        m = LOG_LINE.match(lines[-1])
        logged = time.strptime(" ".join(m.groups()[:6]), "%d %b %Y %H %M %S")
        self.assertLess(abs(time.mktime(logged) - time.mktime(before)), 120)

    def test_access_log_names_refused_requests_like_python(self):
        # Python's send_error() logs the request line as received:
        #   127.0.0.1 - - [date] "BREW / HTTP/1.1" 501 -
        with App("comet") as app:
            app.raw(b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n")
            app.raw(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
            self.assertEqual(app.stop(), 0)
            log = app.stderr_text()
        requests = [m.group(7, 8, 9) for m in map(LOG_LINE.match, log.splitlines()) if m]
        self.assertIn(("BREW / HTTP/1.1", "501", "-"), requests, log)
        self.assertIn(("GET / HTTP/2.0", "505", "-"), requests, log)

    def test_quiet_silences_the_access_log(self):
        with App("comet", quiet=True) as app:
            app.get("/")
            app.get("/notify")
            app.raw(b"garbage\r\n\r\n")
            self.assertEqual(app.stop(), 0)
            self.assertNotIn('"GET / HTTP/1.1"', app.stderr_text())

    def _stop_with_parked_waiters(self, sig):
        with App("comet", quiet=True) as app:
            waiters = [park(app, v)[0] for v in ("HTTP/1.0", "HTTP/1.1", "HTTP/1.1")]
            # An idle keep-alive connection: not a request in flight, must not hold up the exit.
            idle = socket.create_connection((HOST, app.port), timeout=5)
            idle.sendall(request_bytes("GET", "/"))
            read_head(idle)
            curl = None
            if have("curl"):
                curl = subprocess.Popen(["curl", "-s", "--max-time", "10", app.url("/wait")],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            parked = len(waiters) + (curl is not None)
            try:
                self.assertEqual(wait_count(app, parked, 3)[0], parked)
                t0 = time.monotonic()
                app.proc.send_signal(sig)
                for s in waiters + [idle]:
                    try:
                        read_to_eof(s, timeout=5)  # the connection is closed (after whatever it got)
                    except ConnectionResetError:
                        pass
                rc = app.wait(timeout=8)
                took = time.monotonic() - t0
                print(f"\ncomet: {signal.Signals(sig).name} with {parked} parked waiters and an idle "
                      f"connection: exit {rc} after {took * 1000:.0f} ms", flush=True)
                self.assertEqual(rc, 0)
                # The grace period (5 s) is for requests in flight; there are none.
                self.assertLess(took, 3, f"took {took:.1f}s to exit")
                if curl:
                    out, _ = curl.communicate(timeout=5)
                    self.assertNotRegex(out, rb"\d", "curl's waiter was notified during shutdown")
                # Nothing listens any more.
                with self.assertRaises(OSError):
                    socket.create_connection((HOST, app.port), timeout=1).close()
            finally:
                close_all(waiters + [idle])
                if curl and curl.poll() is None:
                    curl.kill()
                    curl.wait()

    def test_sigterm_with_parked_waiters_exits_0_and_closes_them(self):
        self._stop_with_parked_waiters(signal.SIGTERM)

    def test_sigint_with_parked_waiters_exits_0_and_closes_them(self):
        self._stop_with_parked_waiters(signal.SIGINT)

    def test_signal_right_after_the_listening_line_is_graceful(self):
        # The line says "ready": from then on SIGINT/SIGTERM must mean a graceful stop
        # (exit 0), not death by the signal's default action.
        outcomes = []
        for i in range(20):
            sig = signal.SIGTERM if i % 2 else signal.SIGINT
            p = subprocess.Popen([app_path("comet"), "--port", "0", "--quiet"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            try:
                line = p.stdout.readline()
                self.assertTrue(line.startswith(b"listening on http://"), line)
                p.send_signal(sig)
                outcomes.append((sig.name, p.wait(timeout=5)))
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
        killed = [o for o in outcomes if o[1] != 0]
        if killed:
            self.fail(f"{len(killed)} of {len(outcomes)} runs did not exit 0 "
                      f"(negative: killed by that signal), e.g. {killed[:4]}")

    def test_grace_period_bounds_a_request_in_flight(self):
        with App("comet", "--grace", "1", quiet=True) as app:
            stuck = socket.create_connection((HOST, app.port), timeout=5)
            try:
                stuck.sendall(b"GET / HTTP/1.1\r\nHo")  # half a head, never finished
                self.assertEqual(count(app), 0)
                t0 = time.monotonic()
                app.proc.send_signal(signal.SIGTERM)
                self.assertEqual(app.wait(timeout=8), 0)
                took = time.monotonic() - t0
                self.assertLess(took, 3, f"--grace 1, yet it took {took:.1f}s to exit")
                try:
                    read_to_eof(stuck, timeout=2)
                except ConnectionResetError:
                    pass
            finally:
                stuck.close()

    def test_shutdown_does_not_pass_off_a_released_waiter_as_a_complete_response(self):
        # apps.md: at shutdown parked waiters "are released with a 503 or closed". The 200
        # head is already out, so only a close is left; for HTTP/1.1 that close must leave
        # the chunked body unterminated. A terminating 0-length chunk would tell the client
        # it got a whole, valid response whose body is "" -- not a number n, and not a close.
        with App("comet", quiet=True) as app:
            c = http.client.HTTPConnection(HOST, app.port, timeout=5)
            try:
                c.request("GET", "/wait")
                r = c.getresponse()
                self.assertEqual(count(app), 1)
                app.proc.send_signal(signal.SIGTERM)
                with self.assertRaises((http.client.IncompleteRead, ConnectionError),
                                       msg="the released waiter saw a complete 200 response with an empty body"):
                    body = r.read()
                    print(f"\ncomet: released HTTP/1.1 waiter read a complete body {body!r}", flush=True)
                self.assertEqual(app.wait(timeout=8), 0)
            finally:
                c.close()

    # Malformed input ------------------------------------------------------------------------

    def test_malformed_requests_get_their_status_and_the_server_stays_healthy(self):
        cases = [
            ("garbage", b"garbage\r\n\r\n", 400),
            ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("HTTP/3.7", b"GET / HTTP/3.7\r\nHost: x\r\n\r\n", 505),
            ("BREW", b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
            ("POST", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 501),
            ("CL+TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("two CL", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
            ("bad chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("TE gzip", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            ("long URI", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            ("huge header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n", 431),
            ("binary", b"\x00\x01\x02\xff\r\n\r\n", 400),
            ("negative CL", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
            ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400),
            ("body too large", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n", 413),
        ]
        with App("comet", quiet=True) as app:
            waiter, _, _, rest = park(app, "HTTP/1.1")
            try:
                for name, data, want in cases:
                    out = app.raw(data, timeout=3)
                    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", out)
                    self.assertIsNotNone(m, f"{name}: no status line in {out[:200]!r}")
                    self.assertEqual(int(m.group(1)), want, f"{name}: {out[:200]!r}")
                    if want == 400:
                        self.assertRegex(out.split(b"\r\n\r\n")[0].lower(), rb"connection: close", name)
                    # Still healthy: answers, and the parked waiter is still counted.
                    self.assertEqual(count(app), 1, name)
                self.assertEqual(app.get("/notify")[2], b"1")
                self.assertEqual(read_chunked(waiter, rest)[0], b"1")
                self.assertIsNone(app.proc.poll())
            finally:
                waiter.close()


if __name__ == "__main__":
    unittest.main()
