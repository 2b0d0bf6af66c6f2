"""Fault injection against the built apps: what a hostile or unlucky world does to a
server, and proof that it shrugs it off (shared/spec/apps.md: "Malformed or hostile
input gets a clear status and the server stays healthy"; "A client that aborts
mid-upload costs the server nothing that stays").

  - descriptor exhaustion (RLIMIT_NOFILE 64) while serving: shed at low CPU, recover;
    and blobd, unable to open an existing file for want of descriptors, must not call
    it missing (a cacheable 404);
  - clients that vanish at every stage (mid-headers, mid-body, mid-response, parked),
    by close and by reset: descriptors and RSS return to their baseline;
  - slow readers and slowloris: everyone else is still served at once;
  - SIGPIPE: a response written into a reset connection must not kill the server;
  - EINTR: 200 SIGQUITs (handled, fiber dump) during uploads and downloads;
  - SIGTERM with 100 parked comet waiters: exit 0, waiters closed, no final chunk;
    SIGTERM with a reader that never reads and a stalled upload: --grace bounds it;
  - a handler that throws in an app (blobd, a blob that shrinks mid-download).

Baselines: descriptors are counted at start (listener, poller, wake-up descriptor,
stdio, the spare kept for EMFILE shedding) and must come back to exactly that once the
clients are gone (the server closes its side asynchronously, so we poll for up to 5 s).
RSS is taken after a warm-up round (allocator arenas, stack pool, buffers reach their
working size there) and may grow by less than 2 MiB over the measured repetitions
(not checked in an ASan build, whose quarantine holds freed memory by design).

Every wait is bounded; every App is stopped by its context manager.
"""
import contextlib
import hashlib
import http.client
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import App, read_head, read_response, read_to_eof, reset_close  # noqa: E402

HOST = "127.0.0.1"
MiB = 1 << 20
RSS_SLACK_KIB = 2048
REPS = 100


# --- helpers -----------------------------------------------------------------------------

class LimitedApp(App):
    """An App started with RLIMIT_NOFILE = nofile (soft and hard)."""

    def __init__(self, name, *args, nofile, **kw):
        def preexec():
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        super().__init__(name, *args, preexec_fn=preexec, **kw)
        self.nofile = nofile


def connect(app, timeout=5, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: fixes the window
    s.settimeout(timeout)
    s.connect((HOST, app.port))
    return s


def vanish(sock, how):
    if how == "rst":
        reset_close(sock)
    else:
        sock.close()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_list(app):
    out = []
    d = f"/proc/{app.proc.pid}/fd"
    for name in os.listdir(d):
        try:
            out.append(f"{name}->{os.readlink(os.path.join(d, name))}")
        except OSError:
            pass
    return sorted(out)


def wait_fds(app, target, timeout=5.0):
    """Poll the app's open descriptors until they are <= target; return the last count."""
    deadline = time.monotonic() + timeout
    while True:
        n = app.open_fds()
        if n <= target or time.monotonic() >= deadline:
            return n
        time.sleep(0.01)


def settled_fds(app, timeout=5.0):
    """The app's open descriptors once two readings 20 ms apart agree."""
    deadline = time.monotonic() + timeout
    last = app.open_fds()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        n = app.open_fds()
        if n == last:
            return n
        last = n
    return last


class FaultCase(unittest.TestCase):
    def assertAlive(self, app, what=""):
        rc = app.proc.poll()
        if rc is not None:
            how = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
            self.fail(f"{app.name} died ({how}) {what}; stderr tail: {app.stderr_text()[-1500:]!r}")

    @contextlib.contextmanager
    def talking_to(self, app, what=""):
        """A client's OSError is the server's death when it died: say so."""
        try:
            yield
        except OSError:
            try:
                app.proc.wait(0.5)  # a server being killed resets its connections first
            except subprocess.TimeoutExpired:
                pass
            self.assertAlive(app, what)
            raise

    def assertServes(self, app, path, body=None, what=""):
        self.assertAlive(app, what)
        try:
            status, _, got = app.get(path, timeout=5)
        except (OSError, http.client.HTTPException) as e:
            self.assertAlive(app, what)
            self.fail(f"{app.name} did not answer GET {path} {what}: {e!r}")
        self.assertEqual(status, 200, f"GET {path} {what}")
        if body is not None:
            self.assertEqual(got, body, f"GET {path} {what}")

    def assertBackToBaseline(self, app, base_fds, base_rss=None, what=""):
        self.assertAlive(app, what)
        n = wait_fds(app, base_fds)
        self.assertEqual(n, base_fds, f"{app.name}: {n} open descriptors, baseline {base_fds} {what}: "
                                      f"{fd_list(app)}")
        if base_rss is not None and not app.sanitized():
            grew = app.rss_kib() - base_rss
            self.assertLess(grew, RSS_SLACK_KIB, f"{app.name}: RSS grew by {grew} KiB {what}")

    def churn(self, app, once, normal, reps=REPS, warmup=10, what=""):
        """warmup + reps rounds of once(i) then normal(); descriptors and RSS must come back."""
        base_fds = app.open_fds()
        for i in range(warmup):
            with self.talking_to(app, f"during the warm-up of {what}"):
                once(i)
            normal()
        self.assertBackToBaseline(app, base_fds, what=f"after the warm-up of {what}")
        base_rss = app.rss_kib()
        for i in range(reps):
            with self.talking_to(app, f"after {i} x {what}"):
                once(i)
            normal()
        self.assertBackToBaseline(app, base_fds, base_rss, what=f"after {reps} x {what}")
        return base_fds, base_rss, app.rss_kib()


def make_tree(base):
    """A --root for blobd: big.bin (32 MiB sparse), rand.bin (8 MiB random), small.txt."""
    root = os.path.join(base, "root")
    os.mkdir(root)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.truncate(32 * MiB)
    rand = os.urandom(8 * MiB)
    with open(os.path.join(root, "rand.bin"), "wb") as f:
        f.write(rand)
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(b"small and quick\n")
    return root, rand


class TreeCase(FaultCase):
    """A FaultCase with a blobd root (make_tree) shared by its tests."""

    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="faults-")
        cls.root, cls.rand = make_tree(cls.base)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.base, ignore_errors=True)


# --- descriptor exhaustion -------------------------------------------------------------

class DescriptorExhaustion(FaultCase):
    def test_hello_with_64_descriptors_sheds_at_low_cpu_then_serves_again(self):
        with LimitedApp("hello", nofile=64, quiet=True) as app:
            base_fds = app.open_fds()
            held, served = [], 0
            try:
                # More idle keep-alive connections than the server has descriptors.
                for _ in range(100):
                    try:
                        s = connect(app, timeout=2)
                    except OSError:
                        continue
                    held.append(s)
                    try:
                        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                        if s.recv(4096).startswith(b"HTTP/1.1 200 "):
                            served += 1
                    except OSError:
                        pass  # shed: accepted and closed at once
                self.assertAlive(app, "while its descriptors ran out")
                self.assertGreater(served, 40)
                self.assertLess(served, 64)
                self.assertGreaterEqual(app.open_fds(), 60)  # exhausted (the rest is the spare's slot)
                # Exhausted: connections keep coming for a second; the accept loop must not spin.
                cpu0, t0, attempts = cpu_seconds(app.proc.pid), time.monotonic(), 0
                while time.monotonic() - t0 < 1.0:
                    try:
                        c = connect(app, timeout=1)
                        c.close()
                        attempts += 1
                    except OSError:
                        pass
                    time.sleep(0.002)
                wall = time.monotonic() - t0
                cpu = cpu_seconds(app.proc.pid) - cpu0
                print(f"\nhello, RLIMIT_NOFILE 64: served {served} of 100 held connections; "
                      f"{attempts} more attempts in {wall:.2f}s while exhausted cost {cpu:.2f}s CPU", flush=True)
                self.assertLess(cpu, 0.3 * wall, "the server spins while descriptors are exhausted")
                self.assertAlive(app, "while exhausted")
            finally:
                for s in held:
                    s.close()
            # Descriptors free again: it serves as before, and holds nothing of the episode.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    if app.get("/plaintext", timeout=2)[0] == 200:
                        break
                except (OSError, http.client.HTTPException):
                    time.sleep(0.05)
            self.assertServes(app, "/plaintext", b"Hello, World!", "after descriptors were freed")
            for _ in range(50):
                self.assertServes(app, "/json")
            self.assertBackToBaseline(app, base_fds, what="after the exhaustion")
            self.assertIn("shedding new connections", app.stderr_text())

    def test_blobd_out_of_descriptors_does_not_call_an_existing_file_missing(self):
        # With one descriptor left, a connection is accepted but the file cannot be opened
        # (EMFILE). That is the server's trouble, and passing: a 5xx (503 + Retry-After is
        # the natural answer). A 404 "Too many open files" tells clients and caches (404 is
        # cacheable by default, RFC 9110 15.1) that an existing file does not exist.
        base = tempfile.mkdtemp(prefix="faults-")
        try:
            root, _ = make_tree(base)
            with LimitedApp("blobd", "--root", root, nofile=64, quiet=True) as app:
                held = []
                try:
                    # Each held connection's response is read whole and the count left to
                    # settle: the file of a response still being sent holds a descriptor
                    # for a moment, and counting it would leave one free.
                    while settled_fds(app) < 63 and len(held) < 80:
                        s = connect(app)
                        s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                        status, headers, body, _ = read_response(s)
                        self.assertTrue(status.startswith("HTTP/1.1 200"), status)
                        held.append(s)
                    self.assertEqual(settled_fds(app), 63)
                    s = connect(app)
                    s.sendall(b"GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                    try:
                        status, headers, rest = read_head(s)
                    finally:
                        s.close()
                    code = int(status.split()[1])
                    print(f"\nblobd with one descriptor left: GET /small.txt -> {status!r}, {rest[:60]!r}", flush=True)
                    self.assertNotEqual(code, 404, f"an existing file was answered {status!r}: {rest!r}")
                    self.assertGreaterEqual(code, 500)
                finally:
                    for s in held:
                        s.close()
                self.assertServes(app, "/small.txt", b"small and quick\n", "after descriptors were freed")
        finally:
            shutil.rmtree(base, ignore_errors=True)


# --- clients that vanish ----------------------------------------------------------------

class VanishingClients(TreeCase):
    def test_hello_mid_headers(self):
        heads = [b"G", b"GET /plaintext HTTP/1.1\r\n", b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Half: abc",
                 b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r"]
        with App("hello", quiet=True) as app:
            def once(i):
                s = connect(app)
                s.sendall(heads[i % len(heads)])
                vanish(s, "rst" if i % 2 else "close")

            self.churn(app, once, lambda: self.assertServes(app, "/plaintext", b"Hello, World!"),
                       reps=2 * REPS, what="clients gone mid-headers")

    def test_hashd_mid_body(self):
        half = os.urandom(512 * 1024)
        with App("hashd", quiet=True) as app:
            def once(i):
                s = connect(app)
                if i % 4 < 2:
                    s.sendall(b"POST /?alg=sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 * len(half)))
                    s.sendall(half)
                else:  # chunked, gone inside a chunk
                    s.sendall(b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                    s.sendall(b"%x\r\n" % (2 * len(half)) + half)
                vanish(s, "rst" if i % 2 else "close")

            def normal():
                status, _, body = app.request("POST", "/?alg=md5", body=b"abc")
                self.assertEqual((status, body), (200, b"900150983cd24fb0d6963f7d28e17f72"))

            _, rss0, rss1 = self.churn(app, once, normal, what="uploads abandoned halfway")
            print(f"\nhashd: {REPS} uploads abandoned at 512 KiB: RSS {rss0} -> {rss1} KiB", flush=True)

    def test_blobd_mid_response(self):
        with App("blobd", "--root", self.root, quiet=True) as app:
            def once(i):
                s = connect(app, rcvbuf=64 * 1024)
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                if i % 3 != 2:
                    _, headers, rest = read_head(s)
                    assert headers["content-length"] == str(32 * MiB)
                    got = len(rest)
                    while got < 64 * 1024:
                        got += len(s.recv(65536))
                vanish(s, "rst" if i % 2 else "close")  # a close with unread data is a reset too

            self.churn(app, once, lambda: self.assertServes(app, "/small.txt", b"small and quick\n"),
                       what="downloads abandoned after 64 KiB")

    def test_comet_parked_waiter_gone(self):
        with App("comet", quiet=True) as app:
            def once(i):
                s = connect(app)
                s.sendall(b"GET /wait HTTP/1.%d\r\nHost: x\r\n\r\n" % (i % 2))
                status, _, _ = read_head(s)
                assert status.startswith("HTTP/1.1 200"), status
                vanish(s, "rst" if i % 4 < 2 else "close")

            self.churn(app, once, lambda: self.assertServes(app, "/"), what="parked waiters gone")
            deadline = time.monotonic() + 2
            while app.get("/")[2] != b"0" and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(app.get("/")[2], b"0", "vanished waiters are still counted")
            self.assertEqual(app.get("/notify")[2], b"0")


# --- slow readers and slowloris ------------------------------------------------------------

class SlowClients(TreeCase):
    def test_blobd_reader_that_never_reads_holds_up_nobody(self):
        want = hashlib.sha256(self.rand).hexdigest()
        with App("blobd", "--root", self.root, quiet=True) as app:
            base_fds = app.open_fds()
            slow = [connect(app, rcvbuf=4096) for _ in range(3)]
            try:
                for s in slow:
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.2)  # their responses have filled every buffer on the way
                # Everyone else: small files, and whole large downloads, at once.
                t0 = time.monotonic()
                for _ in range(20):
                    self.assertServes(app, "/small.txt", b"small and quick\n", "while slow readers are stuck")
                status, _, body = app.get("/rand.bin", timeout=10)
                took = time.monotonic() - t0
                self.assertEqual((status, hashlib.sha256(body).hexdigest()), (200, want))
                self.assertLess(took, 5.0)
                # Ordering: all that happened while the slow readers still hold their connections
                # (and their files open) and have been sent only a sliver of their 32 MiB.
                self.assertEqual(wait_fds(app, base_fds + 2 * len(slow)), base_fds + 2 * len(slow))
                for s in slow:
                    s.setblocking(False)
                    try:
                        s.recv(1, socket.MSG_PEEK)
                    except BlockingIOError:
                        self.fail("a slow reader's connection has nothing waiting for it")
                    s.setblocking(True)
                self.assertAlive(app)
            finally:
                for i, s in enumerate(slow):
                    vanish(s, "rst" if i % 2 else "close")
            self.assertBackToBaseline(app, base_fds, what="after the slow readers left")
            self.assertServes(app, "/small.txt")

    def test_comet_pipeliner_that_never_reads_holds_up_nobody(self):
        with App("comet", quiet=True) as app:
            base_fds = app.open_fds()
            s = connect(app)
            try:
                # Pipeline requests for / without ever reading the answers, until the server
                # has stopped reading them too (every buffer both ways is full).
                s.setblocking(False)
                req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 256
                sent, idle_since = 0, None
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        sent += s.send(req)
                        idle_since = None
                    except BlockingIOError:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since > 0.3:
                            break
                        time.sleep(0.01)
                self.assertIsNotNone(idle_since, "the server kept reading forever")
                # Meanwhile, everyone else.
                waiter = connect(app)
                waiter.sendall(b"GET /wait HTTP/1.0\r\n\r\n")
                read_head(waiter)
                for _ in range(20):
                    self.assertServes(app, "/", what=f"while a pipeliner ignores {sent // 1024} KiB of answers")
                status, _, body = app.get("/notify")
                self.assertEqual((status, body), (200, b"1"))
                self.assertEqual(read_to_eof(waiter, timeout=5, reset_is_close=True), b"1")
                waiter.close()
                self.assertEqual(wait_fds(app, base_fds + 1), base_fds + 1)  # the pipeliner is still there
            finally:
                reset_close(s)
            self.assertBackToBaseline(app, base_fds, what="after the pipeliner left")

    def test_hello_slowloris_50_connections_one_byte_every_200ms(self):
        request = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-A: " + b"a" * 200
        with App("hello", quiet=True) as app:
            base_fds = app.open_fds()
            slow = [connect(app) for _ in range(50)]
            stop = threading.Event()
            sent = [0]
            errors = []

            def drip():
                try:
                    while not stop.is_set() and sent[0] < len(request):
                        for s in slow:
                            s.sendall(request[sent[0]:sent[0] + 1])
                        sent[0] += 1
                        stop.wait(0.2)
                except OSError as e:
                    errors.append(e)

            t = threading.Thread(target=drip, daemon=True)
            t.start()
            latencies = []
            cpu0, t0 = cpu_seconds(app.proc.pid), time.monotonic()
            try:
                while time.monotonic() - t0 < 3.0:
                    a = time.monotonic()
                    self.assertServes(app, "/plaintext", b"Hello, World!", "during slowloris")
                    latencies.append(time.monotonic() - a)
                    time.sleep(0.02)
            finally:
                stop.set()
                t.join(5)
            cpu = cpu_seconds(app.proc.pid) - cpu0
            try:
                latencies.sort()
                print(f"\nhello under slowloris (50 x 1 byte / 200 ms, {sent[0]} bytes each): "
                      f"{len(latencies)} normal requests, median {latencies[len(latencies) // 2] * 1000:.1f} ms, "
                      f"max {latencies[-1] * 1000:.1f} ms; server CPU {cpu:.2f}s in {time.monotonic() - t0:.1f}s",
                      flush=True)
                self.assertEqual(errors, [], "a slowloris connection was cut within its header timeout")
                self.assertLess(latencies[-1], 2.0)
                # Harmless, but still open (408 only after the 10 s header timeout).
                self.assertEqual(wait_fds(app, base_fds + 50), base_fds + 50)
                for s in slow:
                    s.setblocking(False)
                    with self.assertRaises(BlockingIOError, msg="a slow connection was answered or closed"):
                        s.recv(1)
            finally:
                for i, s in enumerate(slow):
                    vanish(s, "rst" if i % 2 else "close")
            self.assertBackToBaseline(app, base_fds, what="after slowloris")


# --- signals ------------------------------------------------------------------------------

class StuckStderr(FaultCase):
    def test_hello_keeps_serving_while_nobody_reads_its_access_log(self):
        # stderr is a pipe we do not read: it fills after ~64 KiB of access
        # log. A blocking write(2) there would stop the whole server.
        n = 6000  # about 400 KiB of log lines
        with App("hello", stderr=subprocess.PIPE) as app:
            c = app.connection(timeout=5)
            t0 = time.monotonic()
            for i in range(n):
                with self.talking_to(app, f"request {i} with stderr unread"):
                    c.request("GET", "/plaintext")
                    r = c.getresponse()
                    self.assertEqual(r.read(), b"Hello, World!")
            elapsed = time.monotonic() - t0
            c.close()
            # Now read stderr: whole lines, then the note on what was dropped.
            app.send_signal(signal.SIGTERM)
            err = app.proc.stderr.read().decode()
            self.assertEqual(app.wait(10), 0)
        lines = err.splitlines()
        served = [l for l in lines if '"GET /plaintext HTTP/1.1" 200 -' in l]
        notes = [l for l in lines if "log line(s) dropped: stderr did not keep up" in l]
        dropped = sum(int(l.split("tendril: ")[1].split()[0]) for l in notes)
        self.assertTrue(notes, f"no note on dropped lines; {len(served)} lines kept")
        self.assertEqual(len(served) + dropped, n)
        for l in lines:
            self.assertTrue(l in served or l in notes or "tendril" in l, f"a broken line: {l!r}")
        print(f"\n  {n} requests in {elapsed:.1f}s with stderr unread: {len(served)} log lines kept, "
              f"{dropped} dropped and reported", file=sys.stderr)


class Signals(TreeCase):
    def test_sigpipe_big_response_into_a_reset_connection(self):
        with App("blobd", "--root", self.root, quiet=True) as app:
            base_fds = app.open_fds()
            for i in range(40):
                with self.talking_to(app, f"after {i} downloads reset at once"):
                    s = connect(app, rcvbuf=16 * 1024)
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    if i % 2:
                        s.recv(1)  # the response is under way
                    reset_close(s)
                self.assertAlive(app, f"after {i + 1} downloads reset at once")
            self.assertServes(app, "/small.txt")
            self.assertBackToBaseline(app, base_fds)

    def test_sigpipe_big_response_to_a_client_that_closed(self):
        # The usual ways a client gives up on a download: close() right after asking (a FIN;
        # the server's first bytes then draw a reset, in CLOSE_WAIT: EPIPE), or after the
        # head with data unread (a reset mid-transfer).
        with App("blobd", "--root", self.root, quiet=True) as app:
            base_fds = app.open_fds()
            for i in range(40):
                with self.talking_to(app, f"after {i} downloads closed early"):
                    s = connect(app, rcvbuf=16 * 1024)
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    if i % 2:
                        read_head(s)
                    s.close()
                time.sleep(0.01)
                self.assertAlive(app, f"after {i + 1} downloads closed " + ("after the head" if i % 2 else "at once"))
            self.assertServes(app, "/small.txt")
            self.assertBackToBaseline(app, base_fds)

    def test_200_sigquits_during_uploads_and_downloads(self):
        want_rand = hashlib.sha256(self.rand).hexdigest()
        uploads = [os.urandom(3 * MiB + i * 4099) for i in range(3)]
        with App("hashd", quiet=True) as hashd, App("blobd", "--root", self.root, quiet=True) as blobd:
            stop = threading.Event()
            results = {"up": 0, "down": 0}
            failures = []
            lock = threading.Lock()

            def uploader(k):
                data = uploads[k]
                want = hashlib.sha256(data).hexdigest()
                c = hashd.connection(timeout=20)
                try:
                    while not stop.is_set():
                        if k % 2:
                            c.request("PUT", "/?alg=sha256", body=iter([data[:MiB], data[MiB:]]),
                                      headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
                        else:
                            c.request("POST", "/?alg=sha256", body=data)
                        r = c.getresponse()
                        got = r.read().decode()
                        if r.status != 200 or got != want:
                            raise AssertionError(f"upload {k}: {r.status} {got} != {want}")
                        with lock:
                            results["up"] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append(f"uploader {k}: {e!r}")
                finally:
                    c.close()

            def downloader(k):
                c = blobd.connection(timeout=20)
                try:
                    while not stop.is_set():
                        c.request("GET", "/rand.bin")
                        r = c.getresponse()
                        h, n = hashlib.sha256(), 0
                        while True:
                            b = r.read(256 * 1024)
                            if not b:
                                break
                            h.update(b)
                            n += len(b)
                        if r.status != 200 or n != len(self.rand) or h.hexdigest() != want_rand:
                            raise AssertionError(f"download {k}: {r.status}, {n} bytes")
                        with lock:
                            results["down"] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append(f"downloader {k}: {e!r}")
                finally:
                    c.close()

            threads = [threading.Thread(target=uploader, args=(k,)) for k in range(3)]
            threads += [threading.Thread(target=downloader, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            try:
                time.sleep(0.1)
                for i in range(200):
                    hashd.send_signal(signal.SIGQUIT)
                    blobd.send_signal(signal.SIGQUIT)
                    time.sleep(0.008)
                # At least one more transfer each after the last signal.
                before = dict(results)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and not failures and (
                        results["up"] < before["up"] + 3 or results["down"] < before["down"] + 3):
                    time.sleep(0.02)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            print(f"\n200 SIGQUITs to hashd and blobd each: {results['up']} uploads and "
                  f"{results['down']} downloads, all verified", flush=True)
            self.assertEqual(failures, [])
            self.assertGreaterEqual(results["up"], 6)
            self.assertGreaterEqual(results["down"], 6)
            for app in (hashd, blobd):
                self.assertServes(app, "/small.txt" if app is blobd else "/")
                self.assertIn("live fibers", app.stderr_text(), "SIGQUIT printed no fiber dump")

    def test_sigterm_with_stuck_clients_ends_within_the_grace_period(self):
        # A reader that never reads (blobd parked in a write) and an upload that stopped
        # halfway (hashd parked in a read): neither finishes, so --grace bounds the stop.
        with App("blobd", "--root", self.root, "--grace", "1", quiet=True) as blobd, \
                App("hashd", "--grace", "1", quiet=True) as hashd:
            reader = connect(blobd, rcvbuf=4096)
            upload = connect(hashd)
            try:
                reader.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                upload.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"u" * 5000)
                time.sleep(0.3)
                t0 = time.monotonic()
                blobd.send_signal(signal.SIGTERM)
                hashd.send_signal(signal.SIGTERM)
                rcs = (blobd.wait(timeout=10), hashd.wait(timeout=10))
                took = time.monotonic() - t0
            finally:
                reader.close()
                upload.close()
            self.assertEqual(rcs, (0, 0))
            self.assertLess(took, 3.0, "--grace 1 did not bound the stop")

    def test_sigterm_with_100_parked_waiters(self):
        with App("comet", quiet=True) as app:
            waiters = []
            try:
                for i in range(100):
                    s = connect(app)
                    s.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
                    status, headers, rest = read_head(s)
                    self.assertTrue(status.startswith("HTTP/1.1 200"), status)
                    self.assertEqual(headers.get("transfer-encoding"), "chunked")
                    waiters.append((s, rest))
                deadline = time.monotonic() + 3
                while app.get("/")[2] != b"100" and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.assertEqual(app.get("/")[2], b"100")
                t0 = time.monotonic()
                app.send_signal(signal.SIGTERM)
                tails = [rest + read_to_eof(s, timeout=5, reset_is_close=True) for s, rest in waiters]
                rc = app.wait(timeout=10)
                took = time.monotonic() - t0
            finally:
                for s, _ in waiters:
                    s.close()
            print(f"\ncomet: SIGTERM with 100 parked HTTP/1.1 waiters: exit {rc} after {took * 1000:.0f} ms",
                  flush=True)
            self.assertEqual(rc, 0)
            self.assertLess(took, 5.0, "not within the grace period")
            complete = [t for t in tails if t.endswith(b"0\r\n\r\n")]
            self.assertEqual(complete, [], "a released waiter saw a complete chunked body")
            self.assertEqual({t for t in tails}, {b""}, "a released waiter got body bytes")


# --- a handler that throws --------------------------------------------------------------------

class ThrowingHandler(FaultCase):
    def test_blob_that_shrinks_mid_download_ends_that_response_only(self):
        # blobd's send_file throws when the file comes up short: the connection is closed
        # short of its Content-Length (the only honest end once the head is out), the
        # error is logged, and the server carries on.
        base = tempfile.mkdtemp(prefix="faults-")
        try:
            root, _ = make_tree(base)
            path = os.path.join(root, "big.bin")
            with App("blobd", "--root", root) as app:
                base_fds = app.open_fds()
                s = connect(app, rcvbuf=16 * 1024)
                try:
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    status, headers, rest = read_head(s)
                    self.assertTrue(status.startswith("HTTP/1.1 200"), status)
                    time.sleep(0.2)
                    os.truncate(path, MiB)
                    body = rest + read_to_eof(s, timeout=10, reset_is_close=True)
                finally:
                    s.close()
                self.assertLess(len(body), 32 * MiB)
                self.assertBackToBaseline(app, base_fds)
                self.assertServes(app, "/small.txt", b"small and quick\n", "after a file shrank")
                self.assertEqual(len(app.get("/big.bin")[2]), MiB)
                self.assertIn("the file shrank", app.stderr_text())
        finally:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
