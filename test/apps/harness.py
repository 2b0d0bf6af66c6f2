"""Start a built app as a real process on an ephemeral port, for the
integration tests (test/apps/*_test.py), and talk to it with real clients.

    with App("comet") as app:
        status, headers, body = app.get("/")
        app.url("/wait")          # http://127.0.0.1:PORT/wait

The app's stderr (the access log) is collected in app.stderr_text() after stop().
TENDRIL_BUILD names the build directory (test/run.py sets it).
"""
import http.client
import os
import shutil
import signal
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # test/
from server_process import ServerProcess, StartError  # noqa: E402

ROOT = os.environ.get("TENDRIL_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TENDRIL_BUILD") or os.path.join(ROOT, "build")


def app_path(name):
    return os.path.join(BUILD, "apps", name)


def have(tool):
    return shutil.which(tool) is not None


class App(ServerProcess):
    """build/apps/NAME on an ephemeral port; all of its stdout (app.out) and
    stderr (app.stderr_text()) kept."""

    def __init__(self, name, *args, env=None, quiet=False, port="0", start_timeout=10, wrapper=(),
                 preexec_fn=None, stderr=None):
        # wrapper: a command that execs the app, e.g. setpriv; preexec_fn runs in the child
        # before exec (e.g. setrlimit); stderr: collected unless the test wants it
        # (subprocess.PIPE: the test reads app.proc.stderr, or does not).
        self.args = list(args) + (["--quiet"] if quiet else [])
        cmd = list(wrapper) + [app_path(name), "--port", port] + self.args
        super().__init__(cmd, name=name, env=env or {}, stderr=stderr, preexec_fn=preexec_fn,
                         start_timeout=start_timeout)

    def start(self):
        try:
            return super().start()
        except StartError as e:
            raise AssertionError(f"{self.name} did not start: stdout {e.out!r}, "
                                 f"stderr {self.stderr_text()[-2000:]!r}") from None

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def sanitized(self):
        """True for an ASan build: its quarantine keeps freed memory resident and
        its shadow memory adds to every allocation, so RSS figures say nothing
        about what the server holds."""
        try:
            with open(f"/proc/{self.proc.pid}/maps") as f:
                return "libasan" in f.read()
        except OSError:
            return False

    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw(self, data, timeout=5, read_until_close=True):
        """Send bytes as they are; return everything the server sends until it closes."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                out += chunk
                if not read_until_close:
                    break
            return out
        finally:
            s.close()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self, sig=None, timeout=10):
        """Signal (SIGTERM by default), wait (kill after timeout); returns the exit status."""
        return super().stop(signal.SIGTERM if sig is None else sig, timeout)


# --- raw HTTP over sockets, for tests that need to see the bytes -------------

def parse_head(head):
    """(status line, headers with lower-case names) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def read_head(sock, buf=b"", timeout=5.0):
    """Read one response head (buf: bytes already read); return
    (status line, headers, the bytes after the head)."""
    sock.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before the end of a response head: {buf!r}")
        buf += chunk
        if len(buf) > 65536:
            raise AssertionError("response head too large")
    head, rest = buf.split(b"\r\n\r\n", 1)
    status_line, headers = parse_head(head)
    return status_line, headers, rest


def read_response(sock, buf=b"", head_request=False, timeout=5.0):
    """One response framed by Content-Length (or without a body: HEAD, 304):
    (status line, headers, body, bytes after it)."""
    status_line, headers, rest = read_head(sock, buf, timeout)
    no_body = head_request or status_line.split(" ", 2)[1:2] == ["304"]
    n = 0 if no_body else int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed inside a body ({len(rest)} of {n})")
        rest += chunk
    return status_line, headers, rest[:n], rest[n:]


def assert_no_data(sock, seconds=0.3):
    """Nothing more arrives (and the connection stays open) for a while."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return
    raise AssertionError(f"expected nothing yet, got {data!r}")


def read_to_eof(sock, buf=b"", timeout=3.0, reset_is_close=False):
    """buf + everything until the server closes. A reset raises, unless
    reset_is_close (for servers that close with unread input, which resets)."""
    sock.settimeout(timeout)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            if reset_is_close:
                return buf
            raise
        if not chunk:
            return buf
        buf += chunk


def reset_close(sock):
    """Close with an RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass  # already reset by the peer: closing is all that is left
    sock.close()


class RssSampler:
    """Samples an app's VmRSS every `interval` seconds in a thread."""

    def __init__(self, app, interval=0.005):
        self.app, self.interval = app, interval
        self.samples = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self.app.rss_kib())
            except (OSError, ValueError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)

    @property
    def peak(self):
        return max(self.samples) if self.samples else 0
