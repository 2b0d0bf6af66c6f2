"""blobd's wire contract (shared/spec/apps.md, "blobd" and "Common to every app"),
checked against the built app with real clients: curl, Python's http.client, and raw
sockets wherever the exact request target matters (curl and most clients would
normalise a traversal before sending it).

The files served live in a temporary directory made per test class; next to the
served directory sits a secret file whose content must never appear in any answer.
Large files (a 1 GiB sparse file, a 200 MiB random one) are made by the tests that
need them and removed afterwards.

Every wait is bounded: sockets have timeouts, subprocesses have timeouts, polls have
deadlines, and every App is stopped by its context manager.
"""
import email.utils
import hashlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zlib

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import App, app_path, have, parse_head, read_head, read_to_eof, RssSampler  # noqa: E402

HOST = "127.0.0.1"
MiB = 1 << 20
GiB = 1 << 30
RSS_BUDGET_KIB = 4 * 1024
IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$")
ETAG = re.compile(r'^(W/)?"[\x21\x23-\x7e]*"$')


# --- raw HTTP ---------------------------------------------------------------------------


def status_of(status_line):
    m = re.match(r"^HTTP/1\.[01] (\d{3}) ", status_line)
    if not m:
        raise AssertionError(f"not a status line: {status_line!r}")
    return int(m.group(1))


def read_response(sock, buf=b"", head_request=False, timeout=5.0):
    """harness.read_response with the status as a number."""
    status_line, headers, body, rest = harness.read_response(sock, buf, head_request, timeout)
    return status_of(status_line), headers, body, rest


def exchange(port, target, method=b"GET", headers=b"", timeout=5.0):
    """Send one request with exactly this target (bytes) and Connection: close;
    return (status, headers, body, everything received)."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
        data = read_to_eof(s, timeout=timeout, reset_is_close=True)
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, hdrs = parse_head(head)
    return status_of(status_line), hdrs, body, data


def get(app, path, headers=None, method="GET", timeout=10):
    c = http.client.HTTPConnection(HOST, app.port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class Download(threading.Thread):
    """GET target on its own connection, reading the body at `rate` bytes/s at
    most (None: as fast as it comes); keeps a running count and a CRC-32."""

    def __init__(self, port, target, rate=None, rcvbuf=None, timeout=60):
        super().__init__(daemon=True)
        self.port, self.target, self.rate, self.rcvbuf, self.timeout = port, target, rate, rcvbuf, timeout
        self.got = 0
        self.crc = 0
        self.length = None
        self.status = None
        self.started_at = self.done_at = None
        self.error = None
        self._abort = threading.Event()

    def abort(self):
        self._abort.set()

    def run(self):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if self.rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            s.settimeout(self.timeout)
            s.connect((HOST, self.port))
            try:
                s.sendall(f"GET {self.target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                status_line, headers, rest = read_head(s, timeout=self.timeout)
                self.status = status_of(status_line)
                self.length = int(headers["content-length"])
                self.started_at = time.monotonic()
                self.crc = zlib.crc32(rest, self.crc)
                self.got = len(rest)
                buf = bytearray(256 * 1024)
                view = memoryview(buf)
                deadline = time.monotonic() + self.timeout
                while self.got < self.length and not self._abort.is_set():
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"download not done after {self.timeout}s ({self.got} bytes)")
                    if self.rate:
                        ahead = self.got / self.rate - (time.monotonic() - self.started_at)
                        if ahead > 0:
                            time.sleep(min(ahead, 0.05))
                            continue
                    n = s.recv_into(view, min(len(buf), self.length - self.got))
                    if n == 0:
                        raise ConnectionError(f"closed after {self.got} of {self.length} bytes")
                    self.crc = zlib.crc32(view[:n], self.crc)
                    self.got += n
                self.done_at = time.monotonic()
            finally:
                s.close()
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.error = e


def file_crc(path):
    crc = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                return crc
            crc = zlib.crc32(b, crc)


def settle_rss(app, seconds=0.3):
    time.sleep(seconds)
    return app.rss_kib()


def short_reason(test, body, *words):
    """A 404's body: short text that says why."""
    test.assertLess(len(body), 200, body)
    text = body.decode()
    test.assertTrue(text.strip(), "the 404 body is empty")
    if words:
        test.assertTrue(any(w in text for w in words), f"{text!r} does not say {words}")


# --- the tests ----------------------------------------------------------------------------

class BlobdTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(app_path("blobd"), os.X_OK):
            raise AssertionError(f"{app_path('blobd')} is not built (make apps)")
        missing = [t for t in ("curl", "head") if not have(t)]
        if missing:
            raise unittest.SkipTest(f"missing tools: {missing}")
        cls.base = base = tempfile.mkdtemp(prefix="blobd_test.")
        cls.secret = b"TOP-SECRET-" + os.urandom(8).hex().encode()
        cls.secret_path = os.path.join(base, "secret.txt")
        with open(cls.secret_path, "wb") as f:
            f.write(cls.secret + b"\n")
        os.makedirs(os.path.join(base, "outside"))
        with open(os.path.join(base, "outside", "secret.txt"), "wb") as f:
            f.write(cls.secret + b" (2)\n")
        cls.root = root = os.path.join(base, "root")
        os.makedirs(os.path.join(root, "sub", "deep"))
        os.makedirs(os.path.join(root, "dir.html"))
        cls.content = {
            "index.html": b"<!doctype html><title>t</title><p>hello</p>\n",
            "notes.txt": b"plain text notes\n",
            "data.json": b'{"a": [1, 2, 3]}\n',
            "pic.png": b"\x89PNG\r\n\x1a\n" + os.urandom(300),
            "thing.xyz": os.urandom(77),
            "noext": b"no extension\n",
            "sp ace.txt": b"a space in the name\n",
            "empty.txt": b"",
            "sub/deep/file.txt": b"deep inside\n",
            "sub/page.html": b"<p>sub page</p>\n",
        }
        for rel, data in cls.content.items():
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
        links = {
            "link_in": "notes.txt",                                   # inside: works
            "chain_in_a": "chain_in_b", "chain_in_b": "sub/deep/file.txt",  # chain inside: works
            "sub/link_up": "../notes.txt",                            # inside, via ..: works
            "dir_in": "sub",                                          # directory inside: works
            "rel_out": "../secret.txt",                               # relative, outside
            "abs_out": cls.secret_path,                               # absolute, outside
            "chain_a": "chain_b", "chain_b": "sub/chain_c",           # chain that ends outside
            "sub/chain_c": "../../outside/secret.txt",
            "sub/link_out": "../../secret.txt",
            "dir_out": "..",                                          # directory outside
            "abs_dir_out": base,
            "slash": "/",
            "loop_a": "loop_b", "loop_b": "loop_a",
        }
        for rel, target in links.items():
            os.symlink(target, os.path.join(root, rel))
        # --blob FILE
        cls.blob_path = os.path.join(base, "blob.bin")
        cls.blob = os.urandom(100_003)
        with open(cls.blob_path, "wb") as f:
            f.write(cls.blob)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)

    def blob_app(self, *extra):
        return App("blobd", "--blob", self.blob_path, *extra, quiet=True)

    def root_app(self, *extra):
        return App("blobd", "--root", self.root, *extra, quiet=True)

    def assertFileHeaders(self, headers, path, name, ctype, length):
        st = os.stat(path)
        self.assertEqual(headers.get("content-type"), ctype)
        self.assertEqual(headers.get("content-length"), str(length))
        self.assertEqual(headers.get("content-disposition"), f'inline; filename="{name}"')
        self.assertRegex(headers.get("last-modified", ""), IMF_FIXDATE)
        self.assertEqual(headers.get("last-modified"), email.utils.formatdate(st.st_mtime, usegmt=True))
        self.assertRegex(headers.get("etag", ""), ETAG)
        self.assertEqual(headers.get("accept-ranges"), "bytes")
        self.assertIn("date", headers)
        self.assertIn("server", headers)

    # --blob ---------------------------------------------------------------------------

    def test_blob_is_served_at_slash_with_its_headers(self):
        size = len(self.blob)
        with self.blob_app() as app:
            status, headers, body = get(app, "/")
            self.assertEqual(status, 200)
            self.assertFileHeaders(headers, self.blob_path, "blob.bin", "application/octet-stream", size)
            self.assertEqual(body, self.blob)
            self.assertEqual(get(app, "/?download=1")[2], self.blob)
            # curl agrees.
            p = subprocess.run(["curl", "-sS", "--max-time", "20", app.url("/")], capture_output=True, timeout=30)
            self.assertEqual(p.stdout, self.blob)
            # Other paths: 404 with a short reason.
            for path in ("/blob.bin", "/x", "/index.html", "/%2e%2e/secret.txt"):
                status, headers, body = get(app, path)
                self.assertEqual(status, 404, path)
                self.assertTrue(headers.get("content-type", "").startswith("text/plain"), path)
                short_reason(self, body)
                self.assertNotIn(self.secret, body)
            # HEAD: the same headers and no body; the connection stays in step.
            s = socket.create_connection((HOST, app.port), timeout=5)
            try:
                s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /x HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
                status, headers, body, rest = read_response(s, head_request=True)
                self.assertEqual(status, 200)
                self.assertFileHeaders(headers, self.blob_path, "blob.bin", "application/octet-stream", size)
                status, headers, body, rest = read_response(s, rest, head_request=True)
                self.assertEqual(status, 404)
                status, headers, body, rest = read_response(s, rest)
                self.assertEqual((status, body), (200, self.blob), "a HEAD answer carried a body")
                self.assertEqual(rest, b"")
            finally:
                s.close()

    def test_missing_blob_is_404_saying_why(self):
        missing = os.path.join(self.base, "no-such-blob")
        with App("blobd", "--blob", missing, quiet=True) as app:
            status, headers, body = get(app, "/")
            self.assertEqual(status, 404)
            self.assertTrue(headers.get("content-type", "").startswith("text/plain"))
            short_reason(self, body, "no such file")
            # Appears, then is removed again while the server runs.
            with open(missing, "wb") as f:
                f.write(b"now here\n")
            try:
                status, _, body = get(app, "/")
                self.assertEqual((status, body), (200, b"now here\n"))
            finally:
                os.unlink(missing)
            status, _, body = get(app, "/")
            self.assertEqual(status, 404)
            short_reason(self, body, "no such file")

    def test_unreadable_file_is_404_saying_why(self):
        # chmod 000 does not stop root: as root, blobd runs without the
        # capabilities that bypass file permissions (still uid 0, so it can
        # reach a build tree in a private directory).
        wrapper = []
        if os.geteuid() == 0:
            if not have("setpriv"):
                self.skipTest("running as root without setpriv: no way to make a file unreadable to blobd")
            caps = "-dac_override,-dac_read_search"
            wrapper = ["setpriv", "--inh-caps", caps, "--bounding-set", caps]
        base = tempfile.mkdtemp(prefix="blobd-locked.")
        path = os.path.join(base, "locked.txt")
        with open(path, "wb") as f:
            f.write(self.secret)
        os.chmod(path, 0)
        if wrapper:
            # Make sure the wrapper really takes the file away (it needs
            # CAP_SETPCAP; a container may not grant it).
            probe = subprocess.run(wrapper + ["cat", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=dict(os.environ, LC_ALL="C"))
            if probe.returncode == 0 or b"Permission denied" not in probe.stderr:
                shutil.rmtree(base, ignore_errors=True)
                self.skipTest(f"running as root and {' '.join(wrapper)} cannot make a file unreadable here: "
                              f"{probe.stderr.decode(errors='replace').strip() or 'cat read it'}")
        try:
            for args, target in ((["--blob", path], "/"), (["--root", base], "/locked.txt")):
                with App("blobd", *args, quiet=True, wrapper=wrapper) as app:
                    status, headers, body = get(app, target)
                    self.assertEqual(status, 404)
                    short_reason(self, body, "permission")
                    self.assertNotIn(self.secret, body)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    # --root -----------------------------------------------------------------------------

    def test_root_serves_files_with_types_guessed_from_the_extension(self):
        types = {
            "index.html": "text/html", "notes.txt": "text/plain", "data.json": "application/json",
            "pic.png": "image/png", "thing.xyz": "application/octet-stream", "noext": "application/octet-stream",
            "sub/deep/file.txt": "text/plain", "sub/page.html": "text/html", "sp ace.txt": "text/plain",
            "empty.txt": "text/plain",
        }
        with self.root_app() as app:
            for rel, ctype in types.items():
                quoted = "/" + rel.replace(" ", "%20")
                status, headers, body = get(app, quoted)
                self.assertEqual(status, 200, rel)
                self.assertEqual(body, self.content[rel], rel)
                self.assertEqual(headers["content-type"].split(";")[0].strip(), ctype, rel)
                self.assertFileHeaders(headers, os.path.join(self.root, rel), rel.rsplit("/", 1)[-1],
                                       headers["content-type"], len(self.content[rel]))
            # Equivalent spellings of the same file.
            for path in ("/sub/./deep/file.txt", "/sub//deep/file.txt", "/%73ub/deep/file.txt",
                         "/sub/deep/file.txt?x=1"):
                self.assertEqual(get(app, path)[:3:2], (200, b"deep inside\n"), path)
            # Directories are not served.
            for path in ("/", "/sub", "/sub/", "/sub/deep", "/dir.html", "/dir_in"):
                status, headers, body = get(app, path)
                self.assertEqual(status, 404, path)
                self.assertTrue(headers.get("content-type", "").startswith("text/plain"), path)
                short_reason(self, body, "directory")
            # Missing files.
            for path in ("/nope.txt", "/sub/nope", "/notes.txt/x", "/nodir/x.txt"):
                status, headers, body = get(app, path)
                self.assertEqual(status, 404, path)
                short_reason(self, body)
            # HEAD of a file.
            status, headers, body = get(app, "/data.json", method="HEAD")
            self.assertEqual((status, body), (200, b""))
            self.assertEqual(headers.get("content-length"), str(len(self.content["data.json"])))

    def test_a_file_path_with_a_trailing_slash_is_not_the_file(self):
        # "/notes.txt/" names a directory that does not exist. Python's http.server
        # (which apps.md says to follow where it is silent) answers 404 "File not found"
        # for a non-directory path ending in "/", as do nginx and Apache.
        with self.root_app() as app:
            for path in ("/notes.txt/", "/sub/deep/file.txt/"):
                status, _, body = get(app, path)
                self.assertEqual(status, 404, f"{path} served the file: {body[:40]!r}")

    def test_symlinks_inside_the_root_work(self):
        with self.root_app() as app:
            for path, want in (("/link_in", self.content["notes.txt"]),
                               ("/chain_in_a", self.content["sub/deep/file.txt"]),
                               ("/sub/link_up", self.content["notes.txt"]),
                               ("/dir_in/deep/file.txt", self.content["sub/deep/file.txt"]),
                               ("/dir_in/page.html", self.content["sub/page.html"])):
                status, headers, body = get(app, path)
                self.assertEqual((status, body), (200, want), path)
            self.assertTrue(get(app, "/dir_in/page.html")[1]["content-type"].startswith("text/html"))

    def test_nothing_outside_the_root_is_ever_served(self):
        secret_abs = self.secret_path
        targets = [
            "/../secret.txt", "/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
            "/.%2e/secret.txt", "/%2e./secret.txt", "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
            "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%2e%2e%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt",
            "/%252e%252e/secret.txt", "/..%5csecret.txt", "/..\\secret.txt", "/sub\\..\\..\\secret.txt",
            "/%00", "/notes.txt%00", "/%00/../secret.txt", "/notes.txt%00.html", "/..%00/secret.txt",
            "//secret.txt", "///../secret.txt", "//..//..//secret.txt", "/./../secret.txt", "/.../secret.txt",
            "/rel_out", "/abs_out", "/chain_a", "/chain_b", "/sub/chain_c", "/sub/link_out",
            "/dir_out/secret.txt", "/dir_out/outside/secret.txt", "/abs_dir_out/secret.txt",
            "/slash" + secret_abs, "/loop_a",
            secret_abs, "/" + secret_abs, "/%2f" + secret_abs.lstrip("/").replace("/", "%2f"),
            "/outside/secret.txt", "/secret.txt",
            "http://127.0.0.1/../secret.txt", "http://127.0.0.1" + secret_abs,
        ]
        seen = []
        with self.root_app() as app:
            for target in targets:
                for method in (b"GET", b"HEAD"):
                    status, headers, body, raw = exchange(app.port, target, method)
                    seen.append(raw)
                    self.assertEqual(status, 404, f"{method.decode()} {target}: {raw[:300]!r}")
                    if method == b"GET":
                        short_reason(self, body)
                    self.assertNotIn(self.secret, raw, f"{method.decode()} {target} leaked the secret")
                # With a Range too (no different path through the code).
                status, _, _, raw = exchange(app.port, target, headers=b"Range: bytes=0-\r\n")
                seen.append(raw)
                self.assertEqual(status, 404, target)
            # Not origin-form at all: refused one way or another, and no secret.
            for target in ("../secret.txt", "secret.txt", "*"):
                status, _, _, raw = exchange(app.port, target)
                seen.append(raw)
                self.assertIn(status, (400, 404), target)
            # curl, told not to normalise the path.
            for target in ("/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt"):
                p = subprocess.run(["curl", "-sS", "-i", "--path-as-is", "--max-time", "10", app.url(target)],
                                   capture_output=True, timeout=20)
                seen.append(p.stdout)
                self.assertRegex(p.stdout, rb"^HTTP/1\.1 404 ", target)
            self.assertIsNone(app.proc.poll())
            # The working files are still served afterwards.
            self.assertEqual(get(app, "/notes.txt")[2], self.content["notes.txt"])
        self.assertFalse(any(self.secret in r for r in seen))

    def test_a_fifo_in_the_root_does_not_hang_the_server(self):
        # open(2) of a FIFO for reading blocks until a writer appears. The file is
        # opened before it is found not to be a regular file, without O_NONBLOCK, so a
        # GET of a FIFO would block the thread that runs every connection.
        fifo = os.path.join(self.root, "pipe")
        os.mkfifo(fifo)
        results = {}
        try:
            with self.root_app() as app:
                def ask(key, path):
                    try:
                        results[key] = get(app, path, timeout=3)[:3:2]
                    except Exception as e:  # noqa: BLE001
                        results[key] = ("error", repr(e))

                t = threading.Thread(target=ask, args=("fifo", "/pipe"), daemon=True)
                t.start()
                time.sleep(0.3)
                ask("other", "/notes.txt")
                t.join(5)
                stuck = "fifo" not in results or results["fifo"][0] == "error"
                if stuck:
                    # Release the blocked open (a writer appears), so the app can stop.
                    try:
                        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                    except OSError:
                        pass
                self.assertEqual(results.get("other"), (200, self.content["notes.txt"]),
                                 "another client was not served while one asked for a FIFO")
                self.assertEqual(results["fifo"][0], 404, results["fifo"])
        finally:
            os.unlink(fifo)

    # Range ------------------------------------------------------------------------------

    def test_ranges(self):
        data, size = self.blob, len(self.blob)
        cases = [  # Range header, expected (status, first, last) or (200,) for the full body
            ("bytes=0-9", (206, 0, 9)),
            ("bytes=10-", (206, 10, size - 1)),
            ("bytes=-5", (206, size - 5, size - 1)),
            ("bytes=0-0", (206, 0, 0)),
            (f"bytes={size - 1}-", (206, size - 1, size - 1)),
            (f"bytes={size - 10}-{size + 1000}", (206, size - 10, size - 1)),  # clamped
            (f"bytes=0-{10 * size}", (206, 0, size - 1)),
            (f"bytes=-{size + 5}", (206, 0, size - 1)),
            ("bytes=500-999", (206, 500, 999)),
            (" bytes=1-2 ", (206, 1, 2)),
            (f"bytes={size}-", (416,)),
            (f"bytes={size + 5}-{size + 10}", (416,)),
            ("bytes=-0", (416,)),
            ("bytes=abc", (200,)), ("bytes=5-2", (200,)), ("items=0-9", (200,)), ("bytes", (200,)),
            ("bytes=--5", (200,)), ("bytes=0-9x", (200,)), ("bytes=x-9", (200,)), ("", (200,)),
            ("bytes=0-1,5-6", (200,)), ("bytes=0-9, 20-29", (200,)),
            # Empty list elements are no second range (RFC 9110 5.6.1.2).
            ("bytes=0-9,", (206, 0, 9)), ("bytes=, 0-9", (206, 0, 9)), ("bytes=,", (200,)),
        ]
        with self.blob_app() as app:
            for rng, want in cases:
                status, headers, body = get(app, "/", headers={"Range": rng})
                self.assertEqual(status, want[0], rng)
                if want[0] == 206:
                    first, last = want[1], want[2]
                    self.assertEqual(headers.get("content-range"), f"bytes {first}-{last}/{size}", rng)
                    self.assertEqual(headers.get("content-length"), str(last - first + 1), rng)
                    self.assertEqual(body, data[first:last + 1], rng)
                    self.assertEqual(headers.get("content-type"), "application/octet-stream")
                    self.assertRegex(headers.get("etag", ""), ETAG)
                elif want[0] == 416:
                    self.assertEqual(headers.get("content-range"), f"bytes */{size}", rng)
                    self.assertNotIn(self.blob[:16], body)
                else:
                    self.assertNotIn("content-range", headers, rng)
                    self.assertEqual(headers.get("content-length"), str(size), rng)
                    self.assertEqual(body, data, rng)
            # The Python slices, spelled as the spec's three forms.
            self.assertEqual(get(app, "/", headers={"Range": "bytes=-5"})[2], data[-5:])
            self.assertEqual(get(app, "/", headers={"Range": "bytes=10-"})[2], data[10:])
            # curl -r; and HEAD with a Range.
            p = subprocess.run(["curl", "-sS", "-r", "100-199", "--max-time", "10", app.url("/")],
                               capture_output=True, timeout=20)
            self.assertEqual(p.stdout, data[100:200])
            status, headers, body = get(app, "/", headers={"Range": "bytes=0-9"}, method="HEAD")
            self.assertEqual((status, body, headers.get("content-range")), (206, b"", f"bytes 0-9/{size}"))
            # Several ranges on one keep-alive connection, raw.
            s = socket.create_connection((HOST, app.port), timeout=5)
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=3-5\r\n\r\n"
                          + f"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes={size}-\r\n\r\n".encode()
                          + b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=-2\r\n\r\n")
                st1, _, b1, rest = read_response(s)
                st2, _, _, rest = read_response(s, rest)
                st3, _, b3, rest = read_response(s, rest)
                self.assertEqual((st1, b1, st2, st3, b3), (206, data[3:6], 416, 206, data[-2:]))
            finally:
                s.close()
        # An empty file: an int-range is unsatisfiable (416). A suffix range is
        # satisfiable by the whole, empty representation (RFC 9110 14.1.1), which
        # no Content-Range can describe: a plain 200, as without a Range.
        with self.root_app() as app:
            self.assertEqual(get(app, "/empty.txt", headers={"Range": "bytes=0-"})[0], 416)
            self.assertEqual(get(app, "/empty.txt", headers={"Range": "bytes=-5"})[:3:2], (200, b""))
            self.assertEqual(get(app, "/empty.txt")[:3:2], (200, b""))
            status, headers, body = get(app, "/notes.txt", headers={"Range": "bytes=0-4"})
            self.assertEqual((status, body), (206, b"plain"))
            self.assertTrue(headers["content-type"].startswith("text/plain"))

    # Conditional requests -------------------------------------------------------------

    def test_conditional_requests(self):
        data = self.blob
        with self.blob_app() as app:
            _, h, _ = get(app, "/")
            etag, lm = h["etag"], h["last-modified"]
            mtime = email.utils.parsedate_to_datetime(lm).timestamp()
            later = email.utils.formatdate(mtime + 3600, usegmt=True)
            earlier = email.utils.formatdate(mtime - 3600, usegmt=True)
            cases = [  # headers, expected status
                ({"If-None-Match": etag}, 304),
                ({"If-None-Match": "*"}, 304),
                ({"If-None-Match": f'"nope", {etag}'}, 304),
                ({"If-None-Match": "W/" + etag}, 304),  # If-None-Match compares weakly
                ({"If-None-Match": '"nope"'}, 200),
                ({"If-Modified-Since": lm}, 304),
                ({"If-Modified-Since": later}, 304),
                ({"If-Modified-Since": earlier}, 200),
                ({"If-Modified-Since": "not a date"}, 200),
                # If-None-Match takes precedence over If-Modified-Since (RFC 9110 13.1.3).
                ({"If-None-Match": '"nope"', "If-Modified-Since": later}, 200),
                ({"If-None-Match": etag, "If-Modified-Since": earlier}, 304),
                # If-Range.
                ({"Range": "bytes=0-9", "If-Range": etag}, 206),
                ({"Range": "bytes=0-9", "If-Range": '"other"'}, 200),
                ({"Range": "bytes=0-9", "If-Range": "W/" + etag}, 200),  # If-Range needs a strong match
                ({"Range": "bytes=0-9", "If-None-Match": etag}, 304),
            ]
            for hdrs, want in cases:
                status, headers, body = get(app, "/", headers=hdrs)
                self.assertEqual(status, want, hdrs)
                if want == 304:
                    self.assertEqual(body, b"", hdrs)
                    self.assertEqual(headers.get("etag"), etag, hdrs)
                elif want == 206:
                    self.assertEqual(body, data[:10], hdrs)
                else:
                    self.assertEqual(body, data, hdrs)
            # A 304 has no body: the next response on the connection is in step.
            s = socket.create_connection((HOST, app.port), timeout=5)
            try:
                s.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode()
                          + b"GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n")
                st1, h1, b1, rest = read_response(s)
                self.assertEqual((st1, b1), (304, b""))
                st2, _, b2, rest = read_response(s, rest)
                self.assertEqual((st2, b2, rest), (206, data[:4], b""))
            finally:
                s.close()
            # HEAD with If-None-Match.
            self.assertEqual(get(app, "/", headers={"If-None-Match": etag}, method="HEAD")[0], 304)

    def test_etag_changes_with_the_file(self):
        path = os.path.join(self.base, "changing.bin")
        with open(path, "wb") as f:
            f.write(b"version one")
        try:
            with App("blobd", "--blob", path, quiet=True) as app:
                _, h1, b1 = get(app, "/")
                with open(path, "wb") as f:
                    f.write(b"version two!")
                os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 2_000_000_000))
                status, h2, b2 = get(app, "/", headers={"If-None-Match": h1["etag"]})
                self.assertEqual((b1, status, b2), (b"version one", 200, b"version two!"))
                self.assertNotEqual(h1["etag"], h2["etag"])
                self.assertEqual(get(app, "/", headers={"If-None-Match": h2["etag"]})[0], 304)
                # A Range with the old ETag in If-Range: the whole new file.
                status, _, body = get(app, "/", headers={"Range": "bytes=0-2", "If-Range": h1["etag"]})
                self.assertEqual((status, body), (200, b"version two!"))
        finally:
            os.unlink(path)

    # Large files and memory ---------------------------------------------------------------

    def test_1_gib_sparse_file_downloads_whole_with_flat_memory(self):
        path = os.path.join(self.base, "sparse.bin")
        markers = {0: os.urandom(4096), 300 * MiB + 123: os.urandom(5000), GiB - 100: os.urandom(100)}
        with open(path, "wb") as f:
            f.truncate(GiB)
            for off, m in markers.items():
                f.seek(off)
                f.write(m)
        try:
            want = hashlib.sha1()
            with open(path, "rb") as f:
                while True:
                    b = f.read(8 * MiB)
                    if not b:
                        break
                    want.update(b)
            with App("blobd", "--blob", path, quiet=True) as app:
                # Warm up with small downloads (a Range of 10 KiB, then a HEAD).
                self.assertEqual(get(app, "/", headers={"Range": "bytes=0-10239"})[0], 206)
                self.assertEqual(get(app, "/", method="HEAD")[0], 200)
                before = settle_rss(app)
                c = http.client.HTTPConnection(HOST, app.port, timeout=60)
                got = hashlib.sha1()
                n = 0
                buf = bytearray(MiB)
                t0 = time.monotonic()
                try:
                    with RssSampler(app) as sampler:
                        c.request("GET", "/")
                        r = c.getresponse()
                        self.assertEqual(r.status, 200)
                        self.assertEqual(r.getheader("Content-Length"), str(GiB))
                        deadline = time.monotonic() + 60
                        while time.monotonic() < deadline:
                            k = r.readinto(buf)
                            if not k:
                                break
                            got.update(memoryview(buf)[:k])
                            n += k
                finally:
                    c.close()
                took = time.monotonic() - t0
                after = settle_rss(app)
                print(f"\nblobd RSS (KiB), 1 GiB download in {took:.2f}s: before {before}, peak {sampler.peak} "
                      f"({len(sampler.samples)} samples), after {after}", flush=True)
                self.assertEqual(n, GiB)
                self.assertEqual(got.hexdigest(), want.hexdigest())
                self.assertGreater(len(sampler.samples), 10)
                self.assertLess(sampler.peak - before, RSS_BUDGET_KIB, "peak RSS while serving 1 GiB")
                self.assertLess(after - before, RSS_BUDGET_KIB, "RSS after serving 1 GiB")
                # A Range deep inside the sparse file lands on the marker.
                off = 300 * MiB + 123
                status, _, body = get(app, "/", headers={"Range": f"bytes={off}-{off + 4999}"})
                self.assertEqual((status, body), (206, markers[off]))
        finally:
            os.unlink(path)

    # Fairness ------------------------------------------------------------------------------

    def _big_file(self, size=200 * MiB):
        path = os.path.join(self.base, "big.bin")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                subprocess.run(["head", "-c", str(size), "/dev/urandom"], stdout=f, check=True, timeout=60)
        return path

    def test_ten_slow_downloads_all_progress_at_once(self):
        path = self._big_file()
        size = os.path.getsize(path)
        want_crc = file_crc(path)
        n, rate = 10, 50 * MiB  # each client reads at most 50 MiB/s: about 4 s for 200 MiB
        with App("blobd", "--blob", path, "--chunk-size", "1048576", quiet=True) as app:
            clients = [Download(app.port, "/", rate=rate, rcvbuf=256 * 1024, timeout=40) for _ in range(n)]
            samples = []  # (time, [bytes per client])
            try:
                for d in clients:
                    d.start()
                t0 = time.monotonic()
                while time.monotonic() - t0 < 45:
                    samples.append((time.monotonic() - t0, [d.got for d in clients]))
                    if not any(d.is_alive() for d in clients):
                        break
                    time.sleep(0.1)
                samples.append((time.monotonic() - t0, [d.got for d in clients]))
            finally:
                for d in clients:
                    d.abort()
                for d in clients:
                    d.join(10)
            for i, d in enumerate(clients):
                self.assertIsNone(d.error, f"client {i}: {d.error!r}")
                self.assertEqual((d.status, d.got, d.length), (200, size, size), f"client {i}")
                self.assertEqual(d.crc, want_crc, f"client {i}: wrong bytes")
            first_done = min(d.done_at for d in clients)
            # Every download had bytes before the first one completed: the last
            # sample taken before that moment shows all ten under way.
            before_first = [s for t, s in samples if t0 + t < first_done]
            self.assertTrue(before_first, "no sample before the first download completed")
            self.assertTrue(all(x > 0 for x in before_first[-1]),
                            f"bytes per client just before the first finished: {before_first[-1]}")
            # And in some sampling interval, all ten moved forward together.
            together = [i for i in range(1, len(samples))
                        if all(b > a for a, b in zip(samples[i - 1][1], samples[i][1]))]
            mib = lambda s: " ".join(f"{x // MiB:4d}" for x in s)  # noqa: E731
            table = "\n".join(f"  {t:5.2f}s  {mib(s)}" for t, s in samples[:: max(1, len(samples) // 8)])
            print(f"\nblobd: 10 downloads of {size // MiB} MiB at <= {rate // MiB} MiB/s each, --chunk-size 1 MiB; "
                  f"all ten advanced together in {len(together)} of {len(samples) - 1} sampling intervals; "
                  f"first done after {first_done - t0:.2f}s, last after {max(d.done_at for d in clients) - t0:.2f}s; "
                  f"MiB per client over time:\n{table}", flush=True)
            self.assertTrue(together, "no sampling interval in which all ten downloads progressed")

    def test_a_slow_download_does_not_hold_up_a_fast_one(self):
        path = self._big_file()
        size = os.path.getsize(path)
        want = hashlib.sha1()
        with open(path, "rb") as f:
            while True:
                b = f.read(8 * MiB)
                if not b:
                    break
                want.update(b)
        small_out = os.path.join(self.base, "slow.out")
        small_path = os.path.join(self.root, "medium.bin")
        small = os.urandom(24 * MiB)
        with open(small_path, "wb") as f:
            f.write(small)
        try:
            with App("blobd", "--root", self.base, "--chunk-size", "1048576", quiet=True) as app:
                def fetch_big():
                    c = http.client.HTTPConnection(HOST, app.port, timeout=30)
                    try:
                        c.request("GET", "/big.bin")
                        r = c.getresponse()
                        h = hashlib.sha1()
                        k = total = 0
                        buf = bytearray(MiB)
                        while total < size:
                            k = r.readinto(buf)
                            if not k:
                                break
                            h.update(memoryview(buf)[:k])
                            total += k
                        return total, h.hexdigest()
                    finally:
                        c.close()

                # The fast client alone first, for comparison.
                t0 = time.monotonic()
                self.assertEqual(fetch_big(), (size, want.hexdigest()))
                solo_took = time.monotonic() - t0
                slow = subprocess.Popen(["curl", "-sS", "--limit-rate", "10M", "--max-time", "30", "-o", small_out,
                                         app.url("/root/medium.bin")], stderr=subprocess.PIPE)
                try:
                    ok = False
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:  # the slow one is under way
                        if os.path.exists(small_out) and os.path.getsize(small_out) > 0:
                            ok = True
                            break
                        time.sleep(0.02)
                    self.assertTrue(ok, "curl --limit-rate did not start receiving")
                    t0 = time.monotonic()
                    n, digest = fetch_big()
                    fast_took = time.monotonic() - t0
                    slow_running = slow.poll() is None
                    slow_had = os.path.getsize(small_out)
                    _, err = slow.communicate(timeout=30)
                    slow_took = time.monotonic() - t0
                finally:
                    if slow.poll() is None:
                        slow.kill()
                        slow.wait()
                print(f"\nblobd: fast client got {size // MiB} MiB in {fast_took:.2f}s (alone: {solo_took:.2f}s) while curl --limit-rate 10M "
                      f"had {slow_had // MiB} of {len(small) // MiB} MiB; curl done {slow_took:.2f}s after the fast "
                      f"one started", flush=True)
                self.assertEqual((n, digest), (size, want.hexdigest()))
                self.assertTrue(slow_running, "the slow download finished before the fast one")
                # "At full speed": not held to the slow client's pace (loose bound, shared CI cores).
                self.assertLess(fast_took, 4 * solo_took + 1.0)
                self.assertEqual(slow.returncode, 0, err)
                with open(small_out, "rb") as f:
                    self.assertEqual(hashlib.sha1(f.read()).digest(), hashlib.sha1(small).digest())
        finally:
            os.unlink(small_path)
            if os.path.exists(small_out):
                os.unlink(small_out)

    # Flags ------------------------------------------------------------------------------

    def test_flags(self):
        exe = app_path("blobd")
        p = subprocess.run([exe, "--help"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        for word in (b"--blob", b"--root", b"--chunk-size", b"--port"):
            self.assertIn(word, p.stdout)
        missing_dir = os.path.join(self.base, "no-such-dir")
        bad = [
            ["--blob", self.blob_path, "--chunk-size", "abc"],
            ["--blob", self.blob_path, "--chunk-size", "10"],
            ["--blob", self.blob_path, "--chunk-size", "-1"],
            ["--blob", self.blob_path, "--root", self.root],
            [],
            ["--root", missing_dir],
            ["--root", self.blob_path],  # a file, not a directory
            ["--blob", self.blob_path, "--bogus"],
            ["--blob"],
            ["--blob", self.blob_path, "--port", "abc"],
        ]
        for args in bad:
            try:
                p = subprocess.run([exe, "--port", "0"] + args, capture_output=True, timeout=10)
            except subprocess.TimeoutExpired:
                self.fail(f"blobd {args} did not exit (it should refuse the flags with exit 2)")
            self.assertEqual(p.returncode, 2, f"{args}: {p.stdout!r} {p.stderr!r}")
            self.assertTrue(p.stderr.strip(), f"{args}: no message on stderr")
            self.assertNotIn(b"listening on", p.stdout, args)
        # The smallest chunk size accepted is still a working server.
        with self.blob_app("--chunk-size", "4096") as app:
            self.assertEqual(get(app, "/")[2], self.blob)
            self.assertTrue(app.listening_line.startswith("listening on http://127.0.0.1:"))


if __name__ == "__main__":
    unittest.main()
