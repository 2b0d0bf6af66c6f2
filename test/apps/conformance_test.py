"""RFC 9112 / RFC 9110 conformance of every app, rule by rule, over raw sockets.

Each rule is one test method of CommonRules, and each app is a subclass, so a
failure names the rule and the app (e.g. CometConformance.test_invalid_host_is_400).
apps.md is authoritative where it speaks (../shared/spec/apps.md, "Common to every
app"); where it is silent the rules are RFC 9112 (message syntax and framing) and
RFC 9110 (semantics), and where those leave a choice, what Python's http.server does.
blobd's Range and conditional requests (RFC 9110 13 and 14) are in BlobdConformance.

Every app runs with --header-timeout 2 so the 408 rule is checked in seconds; every
wait is bounded.
"""
import email.utils
import hashlib
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import App, app_path  # noqa: E402

HOST = "127.0.0.1"
HEADER_TIMEOUT = 2.0
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$")


# --- raw HTTP -------------------------------------------------------------------------------

class Resp:
    def __init__(self, version, status, reason, headers, body):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # lower-case name -> list of values
        self.body = body

    def h(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def closes(self):
        return any(t.strip().lower() == "close" for v in self.headers.get("connection", []) for t in v.split(","))

    def __repr__(self):
        return f"<{self.version} {self.status} {self.reason!r} {self.headers} {self.body[:80]!r}>"


def parse_one(data, method="GET", closed=True):
    """One response from the front of data: (Resp, rest), or (None, data) if it
    is not all there yet. Framing as RFC 9112 6.3 has a client find it."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None, data
    lines = data[:end].decode("latin-1").split("\r\n")
    m = re.fullmatch(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?", lines[0])
    if not m:
        raise AssertionError(f"bad status line {lines[0]!r} in {data[:200]!r}")
    status = int(m.group(2))
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or name != name.strip() or not name:
            raise AssertionError(f"bad header line {line!r}")
        headers.setdefault(name.lower(), []).append(value.strip())
    rest = data[end + 4:]
    r = Resp(m.group(1), status, m.group(3) or "", headers, b"")
    if method == "HEAD" or status < 200 or status in (204, 304):
        return r, rest
    te = headers.get("transfer-encoding")
    if te:
        if te[-1].lower() != "chunked":
            raise AssertionError(f"response transfer coding {te}")
        body = b""
        while True:
            nl = rest.find(b"\r\n")
            if nl < 0:
                return None, data
            size = int(rest[:nl].split(b";")[0], 16)
            if len(rest) < nl + 2 + size + 2:
                return None, data
            body += rest[nl + 2:nl + 2 + size]
            rest = rest[nl + 2 + size + 2:]
            if size == 0:
                r.body = body
                return r, rest  # (no trailers from these servers)
    cl = headers.get("content-length")
    if cl:
        if len(set(cl)) != 1:
            raise AssertionError(f"several Content-Lengths {cl}")
        n = int(cl[0])
        if len(rest) < n:
            return None, data
        r.body = rest[:n]
        return r, rest[n:]
    if not closed:
        return None, data
    r.body = rest
    return r, b""


def parse_all(data, methods=("GET",), closed=True):
    """Every response in data, in order (interim 1xx ones included)."""
    out = []
    methods = list(methods)
    while data:
        method = methods[0] if methods else "GET"
        r, data = parse_one(data, method, closed)
        if r is None:
            raise AssertionError(f"an incomplete response: {data[:300]!r}")
        out.append(r)
        if r.status >= 200 and methods:
            methods.pop(0)
    return out


def connect(port, timeout=5.0):
    return socket.create_connection((HOST, port), timeout=timeout)


def read_until_close(s, timeout=5.0):
    """Everything until the server closes: (bytes, True) or, if it is still
    open when the time is up, (bytes, False)."""
    out = bytearray()  # not bytes: += on bytes is quadratic over a multi-MiB download
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(out), False
        s.settimeout(left)
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            return bytes(out), False
        except ConnectionResetError:
            return bytes(out), True
        if not chunk:
            return bytes(out), True
        out += chunk


def read_responses(s, n, methods=("GET",), timeout=5.0):
    """Read until n final responses are complete (the connection may stay open)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        got, rest, done = [], data, True
        ms = list(methods)
        while rest:
            r, rest2 = parse_one(rest, ms[0] if ms else "GET", closed=False)
            if r is None:
                done = False
                break
            rest = rest2
            got.append(r)
            if r.status >= 200 and ms:
                ms.pop(0)
        finals = [r for r in got if r.status >= 200]
        if len(finals) >= n and done:
            return got
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"only {len(finals)} of {n} responses in {timeout}s: {data[:400]!r}")
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            # Close-delimited last body, or fewer responses than asked.
            return parse_all(data, methods, closed=True)
        data += chunk


def exchange(port, data, methods=("GET",), timeout=5.0):
    """Send data; read until the server closes. (responses, closed, seconds)."""
    s = connect(port, timeout)
    t0 = time.monotonic()
    try:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before taking all of a hostile request
        out, closed = read_until_close(s, timeout)
    finally:
        s.close()
    took = time.monotonic() - t0
    return parse_all(out, methods, closed=True) if out else [], closed, took


def req(method, target, version="HTTP/1.1", headers=(("Host", "x"),), body=b"", extra=b""):
    head = f"{method} {target} {version}\r\n".encode("latin-1")
    for k, v in headers:
        head += f"{k}: {v}\r\n".encode("latin-1")
    return head + extra + b"\r\n" + body


def chunked(*pieces):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


# --- the rules every app keeps ------------------------------------------------------------------

class CommonRules:
    """Mixed into one TestCase per app. A subclass sets NAME, ARGS, PATH (a
    resource answered 200) and check_ok()."""
    NAME = None
    ARGS = ()
    PATH = "/"

    @classmethod
    def app_args(cls):
        return list(cls.ARGS)

    @classmethod
    def setUpClass(cls):
        if not os.access(app_path(cls.NAME), os.X_OK):
            raise AssertionError(f"{app_path(cls.NAME)} is not built (make apps)")
        cls.app = App(cls.NAME, *cls.app_args(), "--header-timeout", str(HEADER_TIMEOUT), quiet=True).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.app.stop()
        assert rc == 0, f"{cls.NAME} exited {rc}"

    def check_ok(self, r, body_sent=b""):
        self.assertEqual(r.status, 200, r)

    # helpers

    def new_app(self, *extra):
        app = App(self.NAME, *self.app_args(), "--header-timeout", str(HEADER_TIMEOUT), *extra, quiet=True).start()
        self.addCleanup(app.stop, signal.SIGKILL)
        return app

    def assert_healthy(self):
        self.assertIsNone(self.app.proc.poll(), f"{self.NAME} died")
        rs, _, _ = exchange(self.app.port, req("GET", self.PATH, headers=(("Host", "x"), ("Connection", "close"))))
        self.assertEqual(len(rs), 1, rs)
        self.check_ok(rs[0])

    def assert_error(self, data, want, why=""):
        """One error response with status want (a tuple: any of them), the
        headers every response carries, Connection: close, and a close."""
        rs, closed, took = exchange(self.app.port, data)
        wants = want if isinstance(want, tuple) else (want,)
        self.assertTrue(rs, f"{why}: no response at all (closed={closed}, after {took:.1f}s)")
        r = rs[-1]
        self.assertIn(r.status, wants, f"{why}: {r}")
        self.assertEqual([x.status for x in rs if x.status >= 200], [r.status], f"{why}: {rs}")
        self.assertLess(took, HEADER_TIMEOUT, f"{why}: answered only after {took:.1f}s (waited for more input)")
        self.assertRegex(r.h("Date") or "", IMF_FIXDATE, why)
        self.assertIsNotNone(r.h("Server"), why)
        if r.status >= 400:
            self.assertTrue(r.closes(), f"{why}: no Connection: close on {r}")
            self.assertTrue(closed, f"{why}: the connection stayed open after {r.status}")
        self.assert_healthy()
        return r

    def ok_request(self, version="HTTP/1.1", target=None, headers=None, **kw):
        hs = [("Host", "x")] if headers is None else list(headers)
        return req("GET", target or self.PATH, version, hs, **kw)

    # --- persistent connections (RFC 9112 9.3) --------------------------------------------------

    def test_http11_is_persistent_by_default(self):
        s = connect(self.app.port)
        try:
            for i in range(3):
                s.sendall(self.ok_request())
                r = read_responses(s, 1)[-1]
                self.check_ok(r)
                self.assertFalse(r.closes(), f"request {i}: {r}")
                self.assertEqual(r.version, "HTTP/1.1")
        finally:
            s.close()

    def test_http11_connection_close_is_honoured(self):
        rs, closed, _ = exchange(self.app.port, self.ok_request(headers=[("Host", "x"), ("Connection", "close")]))
        self.check_ok(rs[0])
        self.assertTrue(rs[0].closes(), rs[0])
        self.assertTrue(closed)

    def test_connection_close_token_is_case_insensitive_and_in_a_list(self):
        for value in ("Close", "keep-alive, close", "CLOSE"):
            with self.subTest(value):
                rs, closed, _ = exchange(self.app.port, self.ok_request(headers=[("Host", "x"), ("Connection", value)]))
                self.check_ok(rs[0])
                self.assertTrue(closed, f"Connection: {value} left the connection open")

    def test_http10_closes_by_default(self):
        rs, closed, _ = exchange(self.app.port, self.ok_request("HTTP/1.0", headers=[]))
        self.assertEqual(len(rs), 1, rs)
        self.check_ok(rs[0])
        self.assertTrue(closed, "an HTTP/1.0 request without keep-alive left the connection open")
        self.assertFalse(any(v.lower() == "keep-alive" for v in rs[0].headers.get("connection", [])), rs[0])

    def test_http10_keep_alive_is_persistent(self):
        s = connect(self.app.port)
        try:
            for i in range(2):
                s.sendall(self.ok_request("HTTP/1.0", headers=[("Connection", "keep-alive")]))
                r = read_responses(s, 1)[-1]
                self.check_ok(r)
                self.assertIn("keep-alive", [v.lower() for v in r.headers.get("connection", [])], r)
        finally:
            s.close()

    def test_pipelined_requests_are_answered_in_order(self):
        data = self.ok_request() + req("GET", "/no-such-thing-?", headers=(("Host", "x"),)) + self.ok_request(
            headers=[("Host", "x"), ("Connection", "close")])
        rs, closed, _ = exchange(self.app.port, data, methods=("GET", "GET", "GET"))
        finals = [r for r in rs if r.status >= 200]
        self.assertGreaterEqual(len(finals), 2, rs)
        self.check_ok(finals[0])
        if not finals[1].closes():  # a 404 may close (as Python's send_error does)
            self.assertEqual(len(finals), 3, rs)
            self.check_ok(finals[2])
        self.assertTrue(closed)

    def test_leading_empty_line_is_ignored(self):
        # RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
        rs, _, _ = exchange(self.app.port, b"\r\n" + self.ok_request(headers=[("Host", "x"), ("Connection", "close")]))
        self.check_ok(rs[0])

    # --- request line and version (RFC 9112 2.3, 3) -------------------------------------------------

    def test_higher_minor_version_is_served_as_http11(self):
        # RFC 9110 6.2: a higher minor version is handled as the highest one we implement.
        rs, _, _ = exchange(self.app.port, self.ok_request("HTTP/1.9", headers=[("Host", "x"), ("Connection", "close")]))
        self.check_ok(rs[0])
        self.assertEqual(rs[0].version, "HTTP/1.1")

    def test_major_version_2_or_3_is_505(self):
        for v in ("HTTP/2.0", "HTTP/3.0", "HTTP/9.9"):
            with self.subTest(v):
                self.assert_error(self.ok_request(v), 505, v)

    def test_http2_connection_preface_is_505(self):
        self.assert_error(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "h2 preface")

    def test_malformed_versions_are_400(self):
        for v in ("HTTP/1", "HTTP/1.x", "HTTP/01.1", "HTTP/1.10", "http/1.1", "HTTX/1.1", "HTTP/1.1 ", "HTTP/2", "HTTP/"):
            with self.subTest(v):
                self.assert_error(self.ok_request(v), 400, repr(v))

    def test_http09_request_is_400_at_once(self):
        # No version: HTTP/0.9, which has no headers to wait for. Python serves it;
        # tendril refuses it at once (not after the header timeout).
        for data in (b"GET " + self.PATH.encode() + b"\r\n", b"GET " + self.PATH.encode() + b"\r\n\r\n"):
            with self.subTest(data):
                self.assert_error(data, 400, repr(data))

    def test_request_line_of_other_than_three_parts_is_400(self):
        p = self.PATH.encode()
        for line in (b"GET  " + p + b" HTTP/1.1", b"GET " + p + b"  HTTP/1.1", b"GET\t" + p + b"\tHTTP/1.1",
                     b"GET " + p + b" HTTP/1.1 extra", b" GET " + p + b" HTTP/1.1", b"GET"):
            with self.subTest(line):
                self.assert_error(line + b"\r\nHost: x\r\n\r\n", 400, repr(line))

    def test_absolute_form_target_reaches_the_same_resource(self):
        # RFC 9112 3.2.2: a server MUST accept the absolute form.
        for target in (f"http://example.com{self.PATH}", f"http://127.0.0.1:{self.app.port}{self.PATH}"):
            with self.subTest(target):
                rs, _, _ = exchange(self.app.port, self.ok_request(target=target, headers=[
                    ("Host", "example.com"), ("Connection", "close")]))
                self.check_ok(rs[0])

    def test_query_string_does_not_change_the_route(self):
        sep = "&" if "?" in self.PATH else "?"
        rs, _, _ = exchange(self.app.port, self.ok_request(target=self.PATH + sep + "x=1&y",
                                                           headers=[("Host", "x"), ("Connection", "close")]))
        self.check_ok(rs[0])

    def test_asterisk_form_is_for_options_only(self):
        self.assert_error(b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "GET *")
        # OPTIONS * is optional (RFC 9110 9.1): Python answers 501 when there is no do_OPTIONS.
        rs, _, _ = exchange(self.app.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(rs[-1].status, (200, 204, 501), rs)
        if rs[-1].status in (200, 204):
            self.assertIsNotNone(rs[-1].h("Allow"), rs[-1])
        self.assert_healthy()

    def test_fragment_in_target_is_400(self):
        self.assert_error(self.ok_request(target=self.PATH + "#frag"), 400, "fragment")

    def test_origin_form_must_start_with_a_slash(self):
        self.assert_error(self.ok_request(target=self.PATH.lstrip("/") or "x"), 400, "no slash")

    def test_request_target_over_64_kib_is_414(self):
        self.assert_error(self.ok_request(target="/" + "a" * (64 * 1024 + 10)), 414, "long target")

    def test_target_just_under_the_limit_is_not_414(self):
        rs, _, _ = exchange(self.app.port, self.ok_request(target="/" + "a" * (60 * 1024),
                                                           headers=[("Host", "x"), ("Connection", "close")]))
        self.assertNotIn(rs[0].status, (400, 414, 431), rs[0])

    def test_unknown_method_is_501(self):
        for m in ("BREW", "FROBNICATE", "get"):
            with self.subTest(m):
                self.assert_error(req(m, self.PATH), 501, m)

    def test_garbage_is_400(self):
        for data in (b"garbage\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(64)) + b"\r\n\r\n"):
            with self.subTest(data[:10]):
                self.assert_error(data, 400, "garbage")

    # --- header fields (RFC 9112 5, RFC 9110 5) -------------------------------------------------------

    def test_http11_without_host_is_400(self):
        self.assert_error(self.ok_request(headers=[]), 400, "no Host")

    def test_http10_without_host_is_served(self):
        rs, _, _ = exchange(self.app.port, self.ok_request("HTTP/1.0", headers=[]))
        self.check_ok(rs[0])

    def test_two_host_fields_are_400(self):
        self.assert_error(self.ok_request(headers=[("Host", "a"), ("Host", "b")]), 400, "two Hosts")
        self.assert_error(self.ok_request(headers=[("Host", "a"), ("Host", "a")]), 400, "two equal Hosts")

    def test_invalid_host_is_400(self):
        # RFC 9112 3.2: a Host field with an invalid value MUST get a 400.
        for value in ("a b", "a/b", "user@a", "a:b", "a:80:80", "[::1", "a\"b", "a%zz"):
            with self.subTest(value):
                self.assert_error(self.ok_request(headers=[("Host", value)]), 400, repr(value))

    def test_valid_hosts_are_served(self):
        for value in ("example.com", "example.com:8080", "127.0.0.1:1", "[::1]", "[::1]:80", "xn--n3h.example",
                      "a-b_c~d.e", "a%41", ""):
            with self.subTest(value):
                rs, _, _ = exchange(self.app.port, self.ok_request(headers=[("Host", value), ("Connection", "close")]))
                self.check_ok(rs[0])

    def test_whitespace_before_colon_is_400(self):
        # RFC 9112 5.1: MUST reject with 400.
        for line in (b"Host : x", b"Host\t: x"):
            with self.subTest(line):
                self.assert_error(b"GET " + self.PATH.encode() + b" HTTP/1.1\r\n" + line + b"\r\n\r\n", 400, repr(line))

    def test_obs_fold_is_400(self):
        # RFC 9112 5.2: a server MAY reject obs-fold with 400 (tendril does, as no
        # front end agrees on what it means).
        self.assert_error(self.ok_request(extra=b"X-A: a\r\n b\r\n"), 400, "obs-fold")

    def test_whitespace_before_the_first_field_is_400(self):
        # RFC 9112 2.2: reject, or ignore the line; it must not become a header.
        self.assert_error(b"GET " + self.PATH.encode() + b" HTTP/1.1\r\n Host: x\r\n\r\n", 400, "leading space")

    def test_control_characters_are_400(self):
        p = self.PATH.encode()
        for name, data in (("NUL in a value", b"GET " + p + b" HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
                           ("CR without LF", b"GET " + p + b" HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n"),
                           ("NUL in the target", b"GET " + p + b"\x00 HTTP/1.1\r\nHost: x\r\n\r\n"),
                           ("empty field name", b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n")):
            with self.subTest(name):
                self.assert_error(data, 400, name)

    def test_header_field_over_64_kib_is_431(self):
        self.assert_error(self.ok_request(extra=b"X-Big: " + b"b" * (64 * 1024 + 10) + b"\r\n"), 431, "big header")

    def test_more_than_100_fields_is_431(self):
        self.assert_error(self.ok_request(extra=b"".join(b"X-%d: v\r\n" % i for i in range(101))), 431, "101 fields")

    # --- message body framing (RFC 9112 6) -----------------------------------------------------------

    def test_content_length_with_transfer_encoding_is_400(self):
        # RFC 9112 6.1: MAY reject; tendril does (smuggling), and closes.
        self.assert_error(req("POST", self.PATH, headers=(("Host", "x"), ("Content-Length", "5"),
                                                          ("Transfer-Encoding", "chunked")), body=b"0\r\n\r\n"),
                          400, "CL+TE")
        self.assert_error(req("POST", self.PATH, headers=(("Host", "x"), ("Transfer-Encoding", "chunked"),
                                                          ("Content-Length", "5")), body=b"0\r\n\r\n"),
                          400, "TE+CL")

    def test_connect_with_a_body_is_400(self):
        # RFC 9110 9.3.6: CONNECT has no content. Read as framed by http-parser
        # (the head ends the message), this body would be a second request.
        smuggled = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
        self.assert_error(b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
                          + smuggled, 400, "CONNECT with Content-Length")
        self.assert_error(b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                          400, "CONNECT with chunked")

    def test_request_line_padded_past_its_limit_is_400(self):
        # Past the line limit (64 KiB + 64) the line is not kept; its checks
        # (single spaces, "HTTP/") must not be skipped with it.
        pad = b" " * (70 * 1024)
        self.assert_error(b"GET /" + pad + b"HT)P/1.1\r\nHost: x\r\n\r\n", 400, "spaces, then a bad version")
        self.assert_error(b"GET /" + pad + b"HTTP/1.1\r\nHost: x\r\n\r\n", 400, "spaces before the version")

    def test_differing_or_duplicate_content_lengths_are_400(self):
        for values in (("5", "6"), ("5", "5"), ("5, 6",), ("5, 5",)):
            with self.subTest(values):
                hs = [("Host", "x")] + [("Content-Length", v) for v in values]
                self.assert_error(req("POST", self.PATH, headers=hs, body=b"hello!"), 400, repr(values))

    def test_invalid_content_length_is_400(self):
        for v in ("-1", "+5", "5x", "0x5", "", " ", "1e3", "99999999999999999999999"):
            with self.subTest(v):
                self.assert_error(req("POST", self.PATH, headers=(("Host", "x"), ("Content-Length", v)), body=b"hello"),
                                  400, repr(v))

    def test_chunked_not_the_final_coding_is_400(self):
        # RFC 9112 6.3: the length cannot be known; MUST answer 400 and close.
        self.assert_error(req("POST", self.PATH, headers=(("Host", "x"), ("Transfer-Encoding", "chunked, gzip")),
                              body=b"0\r\n\r\n"), 400, "chunked, gzip")

    def test_unknown_transfer_coding_is_501(self):
        # apps.md: 501 unknown transfer coding (RFC 9112 6.1 SHOULD).
        for te in ("gzip, chunked", "identity", "x-foo, chunked"):
            with self.subTest(te):
                self.assert_error(req("POST", self.PATH, headers=(("Host", "x"), ("Transfer-Encoding", te)),
                                      body=b"0\r\n\r\n"), 501, te)

    def test_chunked_twice_is_400(self):
        for hs in ((("Transfer-Encoding", "chunked, chunked"),),
                   (("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked"))):
            with self.subTest(hs):
                self.assert_error(req("POST", self.PATH, headers=(("Host", "x"),) + hs, body=b"0\r\n\r\n"), 400, repr(hs))

    def test_transfer_encoding_in_http10_is_400(self):
        # RFC 9112 6.1: faulty framing in an HTTP/1.0 message.
        self.assert_error(req("POST", self.PATH, "HTTP/1.0", headers=(("Transfer-Encoding", "chunked"),),
                              body=b"0\r\n\r\n"), 400, "TE in 1.0")

    def test_bad_chunked_framing_is_400(self):
        te = (("Host", "x"), ("Transfer-Encoding", "chunked"))
        for name, body in (("bad size", b"zz\r\nhello\r\n0\r\n\r\n"),
                           ("overflowing size", b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
                           ("data longer than its size", b"3\r\nabcX\r\n0\r\n\r\n"),
                           ("CR without LF after the size", b"5\rXhello\r\n0\r\n\r\n"),
                           ("negative size", b"-5\r\nhello\r\n0\r\n\r\n")):
            with self.subTest(name):
                self.assert_error(req("POST", self.PATH, headers=te, body=body), 400, name)

    def test_transfer_coding_name_is_case_insensitive(self):
        rs, _, _ = exchange(self.app.port, req("GET", self.PATH, headers=(
            ("Host", "x"), ("Transfer-Encoding", "Chunked"), ("Connection", "close")), body=chunked(b"abc")))
        self.check_ok(rs[-1], b"abc")

    def test_request_bodies_are_framed_and_the_connection_reused(self):
        # Content-Length, chunked (with an extension and a trailer), then a request
        # without a body: all three answered on one connection (RFC 9112 6.3).
        body = b"hello"
        data = (req("GET", self.PATH, headers=(("Host", "x"), ("Content-Length", "5")), body=body)
                + req("GET", self.PATH, headers=(("Host", "x"), ("Transfer-Encoding", "chunked")),
                      body=b"2;ext=1\r\nhe\r\n3\r\nllo\r\n0\r\nX-Trailer: t\r\n\r\n")
                + self.ok_request(headers=[("Host", "x"), ("Connection", "close")]))
        rs, closed, _ = exchange(self.app.port, data, methods=("GET",) * 3)
        self.assertEqual(len(rs), 3, rs)
        self.check_ok(rs[0], body)
        self.check_ok(rs[1], body)
        self.check_ok(rs[2])
        self.assertTrue(closed)

    # --- timeouts -------------------------------------------------------------------------------------

    def test_stalled_request_head_gets_408(self):
        # Wherever the head stops -- inside the method, the line, or the fields --
        # the client gets 408 once the header timeout has passed, then a close.
        p = self.PATH.encode()
        stalls = [b"G", b"GET " + p, b"GET " + p + b" HTTP/1.1\r\nHost: x\r\n", b"\r\nGE"]
        results = [None] * len(stalls)

        def run(i):
            s = connect(self.app.port, timeout=HEADER_TIMEOUT + 8)
            try:
                t0 = time.monotonic()
                s.sendall(stalls[i])
                out, closed = read_until_close(s, HEADER_TIMEOUT + 6)
                results[i] = (out, closed, time.monotonic() - t0)
            finally:
                s.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stalls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HEADER_TIMEOUT + 10)
        for stall, (out, closed, took) in zip(stalls, results):
            with self.subTest(stall):
                self.assertTrue(out, f"no response after {took:.1f}s (closed={closed})")
                r = parse_all(out)[0]
                self.assertEqual(r.status, 408, r)
                self.assertTrue(r.closes() and closed, r)
                self.assertGreater(took, HEADER_TIMEOUT * 0.75, "cut before the header timeout")
                self.assertLess(took, HEADER_TIMEOUT + 3, "408 long after the header timeout")
        self.assert_healthy()

    def test_idle_keep_alive_connection_is_not_408(self):
        # The header timeout runs from a request's first byte, not while idle.
        s = connect(self.app.port)
        try:
            s.sendall(self.ok_request())
            self.check_ok(read_responses(s, 1)[-1])
            s.settimeout(HEADER_TIMEOUT + 0.5)
            try:
                got = s.recv(100)
                self.fail(f"an idle connection got {got!r} within the header timeout")
            except socket.timeout:
                pass
            s.sendall(self.ok_request(headers=[("Host", "x"), ("Connection", "close")]))
            self.check_ok(read_responses(s, 1)[-1])
        finally:
            s.close()

    # --- HEAD (RFC 9110 9.3.2) -----------------------------------------------------------------------

    def test_head_has_the_headers_of_get_and_no_body(self):
        rs, _, _ = exchange(self.app.port, self.ok_request(headers=[("Host", "x"), ("Connection", "close")]))
        get = rs[0]
        s = connect(self.app.port)
        try:
            # HEAD, then GET on the same connection: a body after the HEAD would
            # be taken for the start of the second response.
            s.sendall(req("HEAD", self.PATH) + self.ok_request(headers=[("Host", "x"), ("Connection", "close")]))
            out, closed = read_until_close(s)
        finally:
            s.close()
        head, second = parse_all(out, methods=("HEAD", "GET"))
        self.assertEqual(head.status, get.status)
        self.assertEqual(head.body, b"")
        for name in ("content-type", "content-length", "etag", "last-modified", "content-disposition"):
            self.assertEqual(head.headers.get(name), get.headers.get(name), name)
        self.check_ok(second)

    def test_head_of_an_error_has_no_body(self):
        rs, closed, _ = exchange(self.app.port, req("HEAD", self.PATH + "/../no/such/thing", headers=(
            ("Host", "x"), ("Connection", "close"))), methods=("HEAD",))
        self.assertEqual(len(rs), 1, rs)
        self.assertEqual(rs[0].body, b"")
        self.assertTrue(closed)

    # --- Expect (RFC 9110 10.1.1) -------------------------------------------------------------------

    def test_expect_100_continue_gets_100_before_the_body(self):
        s = connect(self.app.port)
        try:
            s.sendall(req("GET", self.PATH, headers=(("Host", "x"), ("Content-Length", "5"),
                                                     ("Expect", "100-continue"), ("Connection", "close"))))
            s.settimeout(3)
            first = s.recv(65536)
            self.assertTrue(first.startswith(b"HTTP/1.1 100 "), first)
            s.sendall(b"hello")
            out, _ = read_until_close(s)
            rs = parse_all(first + out)
            self.assertEqual(rs[0].status, 100)
            self.check_ok(rs[-1], b"hello")
        finally:
            s.close()

    def test_expect_is_case_insensitive(self):
        s = connect(self.app.port)
        try:
            s.sendall(req("GET", self.PATH, headers=(("Host", "x"), ("Content-Length", "5"),
                                                     ("Expect", "100-Continue"), ("Connection", "close"))))
            s.settimeout(3)
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 100 "))
        finally:
            s.close()

    def test_http10_expect_gets_no_100(self):
        # RFC 9110 10.1.1: an HTTP/1.0 client cannot know a 1xx.
        rs, _, _ = exchange(self.app.port, req("GET", self.PATH, "HTTP/1.0", headers=(
            ("Content-Length", "5"), ("Expect", "100-continue")), body=b"hello"))
        self.assertEqual([r.status for r in rs if r.status < 200], [], rs)
        self.check_ok(rs[-1], b"hello")

    def test_expect_without_a_body_gets_no_100(self):
        rs, _, _ = exchange(self.app.port, req("GET", self.PATH, headers=(
            ("Host", "x"), ("Expect", "100-continue"), ("Connection", "close"))))
        self.assertEqual([r.status for r in rs], [rs[-1].status], rs)
        self.check_ok(rs[-1])

    # --- graceful stop (apps.md: SIGINT/SIGTERM) -----------------------------------------------------

    def in_flight_request(self):
        """(first part, rest) of a request that is in flight once the first part
        is sent: here, all of the head but its last CRLF."""
        full = self.ok_request(headers=[("Host", "x"), ("Connection", "close")])
        return full[:-2], full[-2:]

    def check_in_flight(self, r):
        self.check_ok(r)

    def test_sigterm_lets_a_request_in_flight_finish_and_exits_0(self):
        app = self.new_app()
        idle = connect(app.port)
        busy = connect(app.port)
        try:
            idle.sendall(self.ok_request())
            self.check_ok(read_responses(idle, 1)[-1])
            first, rest = self.in_flight_request()
            busy.sendall(first)
            time.sleep(0.2)
            t0 = time.monotonic()
            app.send_signal(signal.SIGTERM)
            _, idle_closed = read_until_close(idle, 3)
            self.assertTrue(idle_closed, "the idle keep-alive connection was not closed at the stop")
            time.sleep(0.2)
            with self.assertRaises(OSError, msg="still accepting after SIGTERM"):
                connect(app.port, timeout=1).close()
            busy.sendall(rest)
            out, closed = read_until_close(busy, 5)
            self.assertTrue(out, "the request in flight got no answer")
            r = parse_all(out)[-1]
            self.check_in_flight(r)
            self.assertTrue(r.closes() and closed, r)
            self.assertEqual(app.wait(timeout=8), 0)
            self.assertLess(time.monotonic() - t0, 4)
        finally:
            idle.close()
            busy.close()


# --- the apps -------------------------------------------------------------------------------------

class HelloConformance(CommonRules, unittest.TestCase):
    NAME = "hello"
    PATH = "/plaintext"

    def check_ok(self, r, body_sent=b""):
        self.assertEqual((r.status, r.body), (200, b"Hello, World!"), r)
        self.assertEqual(r.h("Content-Type"), "text/plain")

    def test_json_route_with_a_query_and_absolute_form(self):
        for target in ("/json?x=1", "http://x/json", "http://x/json?y"):
            with self.subTest(target):
                rs, _, _ = exchange(self.app.port, req("GET", target, headers=(("Host", "x"), ("Connection", "close"))))
                self.assertEqual((rs[0].status, rs[0].body), (200, b'{"message":"Hello, World!"}'), rs[0])


class CometConformance(CommonRules, unittest.TestCase):
    NAME = "comet"
    PATH = "/"

    def check_ok(self, r, body_sent=b""):
        self.assertEqual(r.status, 200, r)
        self.assertRegex(r.body, rb"^\d+$", r)

    def test_wait_and_notify_in_absolute_form(self):
        s = connect(self.app.port)
        try:
            s.sendall(req("GET", "http://x/wait?t=1"))
            s.settimeout(3)
            head = s.recv(65536)
            self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
            rs, _, _ = exchange(self.app.port, req("GET", "http://x/notify", headers=(("Host", "x"), ("Connection", "close"))))
            self.assertEqual(rs[0].body, b"1")
            got = head
            deadline = time.monotonic() + 3
            while not got.endswith(b"0\r\n\r\n") and time.monotonic() < deadline:
                got += s.recv(65536)
            self.assertEqual(parse_all(got, closed=False)[0].body, b"1")
        finally:
            s.close()


class HashdConformance(CommonRules, unittest.TestCase):
    NAME = "hashd"
    PATH = "/"

    def check_ok(self, r, body_sent=b""):
        self.assertEqual((r.status, r.body), (200, hashlib.md5(body_sent).hexdigest().encode()), r)

    def in_flight_request(self):
        head = req("POST", "/?alg=sha256", headers=(("Host", "x"), ("Content-Length", "6"), ("Connection", "close")))
        return head + b"abc", b"def"

    def check_in_flight(self, r):
        self.assertEqual((r.status, r.body), (200, hashlib.sha256(b"abcdef").hexdigest().encode()), r)

    def test_sigterm_lets_a_chunked_upload_in_flight_finish(self):
        app = self.new_app()
        s = connect(app.port)
        try:
            s.sendall(req("PUT", "/", headers=(("Host", "x"), ("Transfer-Encoding", "chunked"))) + b"3\r\nabc\r\n")
            time.sleep(0.2)
            app.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            s.sendall(b"3\r\ndef\r\n0\r\n\r\n")
            out, closed = read_until_close(s, 5)
            r = parse_all(out)[-1]
            self.assertEqual((r.status, r.body), (200, hashlib.md5(b"abcdef").hexdigest().encode()), r)
            self.assertEqual(app.wait(timeout=8), 0)
        finally:
            s.close()

    def test_post_expect_100_then_digest_and_unknown_alg_refused_without_100(self):
        s = connect(self.app.port)
        try:
            s.sendall(req("POST", "/?alg=sha1", headers=(("Host", "x"), ("Content-Length", "5"),
                                                        ("Expect", "100-continue"))))
            s.settimeout(3)
            self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 100 "))
            s.sendall(b"hello")
            r = read_responses(s, 1)[-1]
            self.assertEqual(r.body, hashlib.sha1(b"hello").hexdigest().encode())
            # The connection is still good; an unknown algorithm is refused before any 100.
            s.sendall(req("POST", "/?alg=nope", headers=(("Host", "x"), ("Content-Length", "5"),
                                                        ("Expect", "100-continue"))))
            rs = read_responses(s, 1)
            self.assertEqual([r.status for r in rs], [400], rs)
        finally:
            s.close()


class BlobdConformance(CommonRules, unittest.TestCase):
    NAME = "blobd"
    PATH = "/"

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="conformance.")
        cls.path = os.path.join(cls.dir, "blob.bin")
        cls.data = os.urandom(10_000)
        with open(cls.path, "wb") as f:
            f.write(cls.data)
        cls.mtime = int(time.time()) - 86400
        os.utime(cls.path, (cls.mtime, cls.mtime))
        cls.ARGS = ("--blob", cls.path)
        super().setUpClass()
        rs, _, _ = exchange(cls.app.port, req("GET", "/", headers=(("Host", "x"), ("Connection", "close"))))
        cls.etag = rs[0].h("ETag")
        cls.last_modified = rs[0].h("Last-Modified")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def check_ok(self, r, body_sent=b""):
        self.assertEqual((r.status, r.body), (200, self.data), r)

    def get(self, *headers, method="GET"):
        rs, _, _ = exchange(self.app.port, req(method, "/", headers=(("Host", "x"), ("Connection", "close")) + headers),
                            methods=(method,))
        self.assertEqual(len(rs), 1, rs)
        return rs[0]

    def date(self, delta):
        return email.utils.formatdate(self.mtime + delta, usegmt=True)

    # Range (RFC 9110 14)

    def test_range_unit_is_case_insensitive(self):
        for unit in ("bytes", "Bytes", "BYTES"):
            with self.subTest(unit):
                r = self.get(("Range", f"{unit}=0-9"))
                self.assertEqual((r.status, r.body, r.h("Content-Range")), (206, self.data[:10], "bytes 0-9/10000"), r)

    def test_range_forms_206(self):
        n = len(self.data)
        for rng, first, last in (("bytes=0-9", 0, 9), ("bytes=9990-", 9990, n - 1), ("bytes=-10", n - 10, n - 1),
                                 ("bytes=5-5", 5, 5), ("bytes=9995-20000", 9995, n - 1), ("bytes=-20000", 0, n - 1)):
            with self.subTest(rng):
                r = self.get(("Range", rng))
                self.assertEqual(r.status, 206, r)
                self.assertEqual(r.h("Content-Range"), f"bytes {first}-{last}/{n}")
                self.assertEqual(r.h("Content-Length"), str(last - first + 1))
                self.assertEqual(r.body, self.data[first:last + 1])

    def test_unsatisfiable_range_is_416_with_the_size(self):
        for rng in ("bytes=10000-", "bytes=20000-30000", "bytes=-0"):
            with self.subTest(rng):
                r = self.get(("Range", rng))
                self.assertEqual((r.status, r.h("Content-Range")), (416, "bytes */10000"), r)

    def test_unusable_range_is_ignored(self):
        for rng in ("items=0-9", "bytes=5-2", "bytes=x-9", "bytes", "bytes=0-1,5-6"):
            with self.subTest(rng):
                r = self.get(("Range", rng))
                self.assertEqual((r.status, r.body, r.h("Content-Range")), (200, self.data, None), r)

    def test_if_range(self):
        for if_range, want in ((self.etag, 206), ('"other"', 200), ("W/" + self.etag, 200),
                               (self.last_modified, 206), (self.date(-10), 200)):
            with self.subTest(if_range):
                r = self.get(("Range", "bytes=0-9"), ("If-Range", if_range))
                self.assertEqual(r.status, want, r)
                self.assertEqual(r.body, self.data[:10] if want == 206 else self.data)

    # Preconditions (RFC 9110 13), in the order of 13.2.2

    def test_if_match_failing_is_412(self):
        for value in ('"nope"', "W/" + self.etag, '"a", "b"'):
            with self.subTest(value):
                r = self.get(("If-Match", value))
                self.assertEqual(r.status, 412, r)
                self.assertNotIn(self.data[:32], r.body)

    def test_if_match_holding_is_served(self):
        for value in (self.etag, "*", f'"a", {self.etag}'):
            with self.subTest(value):
                self.check_ok(self.get(("If-Match", value)))
        r = self.get(("If-Match", self.etag), ("Range", "bytes=0-3"))
        self.assertEqual((r.status, r.body), (206, self.data[:4]))

    def test_if_unmodified_since(self):
        self.assertEqual(self.get(("If-Unmodified-Since", self.date(-3600))).status, 412)
        self.check_ok(self.get(("If-Unmodified-Since", self.last_modified)))
        self.check_ok(self.get(("If-Unmodified-Since", self.date(3600))))
        self.check_ok(self.get(("If-Unmodified-Since", "not a date")))
        # Ignored when If-Match is there (RFC 9110 13.1.4).
        self.check_ok(self.get(("If-Match", self.etag), ("If-Unmodified-Since", self.date(-3600))))
        # The 412 comes before Range and before If-None-Match.
        self.assertEqual(self.get(("If-Unmodified-Since", self.date(-3600)), ("Range", "bytes=0-3")).status, 412)
        self.assertEqual(self.get(("If-Match", '"nope"'), ("If-None-Match", self.etag)).status, 412)

    def test_if_none_match_is_304(self):
        for value in (self.etag, "W/" + self.etag, "*", f'"a", {self.etag}'):
            for method in ("GET", "HEAD"):
                with self.subTest(value=value, method=method):
                    r = self.get(("If-None-Match", value), method=method)
                    self.assertEqual((r.status, r.body, r.h("ETag")), (304, b"", self.etag), r)
                    self.assertRegex(r.h("Date") or "", IMF_FIXDATE)
        self.check_ok(self.get(("If-None-Match", '"nope"')))
        # In two fields, as one list.
        rs, _, _ = exchange(self.app.port, req("GET", "/", headers=(("Host", "x"), ("If-None-Match", '"a"'),
                                                                    ("If-None-Match", self.etag), ("Connection", "close"))))
        self.assertEqual(rs[0].status, 304)

    def test_if_modified_since_is_304_unless_if_none_match(self):
        self.assertEqual(self.get(("If-Modified-Since", self.last_modified)).status, 304)
        self.assertEqual(self.get(("If-Modified-Since", self.date(60))).status, 304)
        self.check_ok(self.get(("If-Modified-Since", self.date(-60))))
        self.check_ok(self.get(("If-Modified-Since", "yesterday")))
        self.check_ok(self.get(("If-None-Match", '"nope"'), ("If-Modified-Since", self.date(60))))
        self.assertEqual(self.get(("If-None-Match", self.etag), ("Range", "bytes=0-3")).status, 304)

    def test_a_304_keeps_the_connection_in_step(self):
        s = connect(self.app.port)
        try:
            s.sendall(req("GET", "/", headers=(("Host", "x"), ("If-None-Match", self.etag)))
                      + req("GET", "/", headers=(("Host", "x"), ("If-Match", '"nope"')))
                      + req("GET", "/", headers=(("Host", "x"), ("Range", "bytes=0-3"), ("Connection", "close"))))
            out, _ = read_until_close(s)
            rs = parse_all(out, methods=("GET",) * 3)
            self.assertEqual([r.status for r in rs][:2], [304, 412], rs)
            if len(rs) == 3:
                self.assertEqual((rs[2].status, rs[2].body), (206, self.data[:4]))
        finally:
            s.close()

    def test_root_mode_takes_the_absolute_form_and_a_query(self):
        root = os.path.join(self.dir, "root")
        os.makedirs(root, exist_ok=True)
        with open(os.path.join(root, "a.txt"), "wb") as f:
            f.write(b"file a\n")
        app = App("blobd", "--root", root, quiet=True).start()
        self.addCleanup(app.stop, signal.SIGKILL)
        for target in ("/a.txt", "/a.txt?v=2", "http://x/a.txt", f"http://127.0.0.1:{app.port}/a.txt?v", "HTTP://X/a.txt"):
            with self.subTest(target):
                rs, _, _ = exchange(app.port, req("GET", target, headers=(("Host", "x"), ("Connection", "close"))))
                self.assertEqual((rs[0].status, rs[0].body), (200, b"file a\n"), rs[0])
        self.assertEqual(app.stop(), 0)

    def test_sigterm_lets_a_download_in_flight_finish(self):
        big = os.path.join(self.dir, "big.bin")
        data = os.urandom(8 << 20)
        with open(big, "wb") as f:
            f.write(data)
        app = App("blobd", "--blob", big, "--chunk-size", "65536", quiet=True).start()
        self.addCleanup(app.stop, signal.SIGKILL)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(5)
        s.connect((HOST, app.port))
        try:
            s.sendall(req("GET", "/", headers=(("Host", "x"), ("Connection", "close"))))
            got = s.recv(16384)
            time.sleep(0.2)
            app.send_signal(signal.SIGTERM)
            out, closed = read_until_close(s, 10)
            r = parse_all(got + out)[0]
            self.assertEqual((r.status, len(r.body)), (200, len(data)))
            self.assertTrue(r.body == data, "the body differs")
            self.assertEqual(app.wait(timeout=8), 0)
        finally:
            s.close()


if __name__ == "__main__":
    unittest.main()
