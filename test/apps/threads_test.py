"""Every app on --threads 2 (and --threads 0, --shared-listener): the wire
contract of shared/spec/apps.md holds whichever thread a connection lands on.
comet keeps the seed's contract across threads: / counts the waiters of every
thread, /notify wakes all of them with the global n.

Bounded everywhere: socket timeouts, thread joins with timeouts, Apps stopped
by their context managers.
"""
import concurrent.futures
import hashlib
import os
import signal
import socket
import sys
import tempfile
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import App, read_head, read_response  # noqa: E402

HOST = "127.0.0.1"


def code(status_line):
    return int(status_line.split()[1])


def os_threads(app):
    return len(os.listdir(f"/proc/{app.proc.pid}/task"))


def open_waiter(port):
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
    status_line, headers, rest = read_head(s)
    assert code(status_line) == 200, status_line
    return s, rest


def read_chunked_body(sock, buf, timeout=10.0):
    """The body of a chunked response whose head was read already."""
    sock.settimeout(timeout)
    body = b""
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed inside a chunked body: {body!r} {buf!r}")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        while len(buf) < size + 2:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("closed inside a chunk")
            buf += chunk
        if size == 0:
            return body
        body, buf = body + buf[:size], buf[size + 2:]


class CometThreads(unittest.TestCase):
    N = 200

    def run_round(self, *args):
        with App("comet", "--threads", "2", *args, quiet=True) as app:
            self.assertGreaterEqual(os_threads(app), 2)
            waiters = [open_waiter(app.port) for _ in range(self.N)]
            try:
                # The count is global: one connection asks, whichever thread it lands on.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if app.get("/")[2] == str(self.N).encode():
                        break
                    time.sleep(0.02)
                for _ in range(4):  # four fresh connections: likely both threads
                    self.assertEqual(app.get("/")[2], str(self.N).encode())
                status, _, body = app.get("/notify")
                self.assertEqual((status, body), (200, str(self.N).encode()))
                got = [read_chunked_body(s, rest) for s, rest in waiters]
                self.assertEqual(got, [str(self.N).encode()] * self.N)
                self.assertEqual(app.get("/")[2], b"0")
            finally:
                for s, _ in waiters:
                    s.close()
            self.assertEqual(app.stop(), 0, app.stderr_text()[-2000:])

    def test_notify_reaches_every_waiter_on_every_thread(self):
        self.run_round()

    def test_shared_listener_fallback(self):
        self.run_round("--shared-listener")

    def test_sigterm_releases_waiters_on_both_threads_and_exits_0(self):
        # A long grace: a waiter the stop did not release (one whose headers
        # went out just before the signal, say) would hold the exit up for all
        # of it, far beyond the generous bound below (not a speed test).
        with App("comet", "--threads", "2", "--grace", "60", quiet=True) as app:
            waiters = [open_waiter(app.port) for _ in range(40)]
            t0 = time.monotonic()
            app.send_signal(signal.SIGTERM)
            self.assertEqual(app.wait(timeout=70), 0, app.stderr_text()[-2000:])
            self.assertLess(time.monotonic() - t0, 30.0, "a parked waiter held the stop up until the grace ended")
            for s, _ in waiters:
                s.close()


class HelloThreads(unittest.TestCase):
    def test_keep_alive_requests_on_two_threads(self):
        with App("hello", "--threads", "2", quiet=True) as app:
            def client(_):
                s = socket.create_connection((HOST, app.port), timeout=10)
                buf, bodies = b"", []
                try:
                    for _ in range(100):
                        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                        status, headers, body, buf = read_response(s, buf)
                        bodies.append((code(status), body))
                finally:
                    s.close()
                return bodies
            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                results = list(pool.map(client, range(40), timeout=60))
            flat = [r for rs in results for r in rs]
            self.assertEqual(len(flat), 4000)
            self.assertTrue(all(r == (200, b"Hello, World!") for r in flat))
            self.assertEqual(app.stop(), 0)

    def test_threads_0_means_one_per_cpu(self):
        with App("hello", "--threads", "0", quiet=True) as app:
            self.assertGreaterEqual(os_threads(app), len(os.sched_getaffinity(0)))
            self.assertEqual(app.get("/json")[0], 200)

    def test_bad_threads_value_exits_2(self):
        import subprocess
        from harness import app_path
        p = subprocess.run([app_path("hello"), "--threads", "-1"], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"threads", p.stderr)


class HashdThreads(unittest.TestCase):
    def test_parallel_uploads_and_a_graceful_stop_with_uploads_in_flight(self):
        bodies = [os.urandom(1 << 20) * (i + 1) for i in range(6)]
        with App("hashd", "--threads", "2", quiet=True) as app:
            def upload(body):
                return app.request("POST", "/?alg=sha256", body=body, timeout=30)
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                results = list(pool.map(upload, bodies, timeout=60))
            for (status, _, digest), body in zip(results, bodies):
                self.assertEqual(status, 200)
                self.assertEqual(digest.decode(), hashlib.sha256(body).hexdigest())

            # Four slow uploads (likely on both threads), then SIGTERM: each
            # is answered, then the process exits 0.
            socks = []
            for _ in range(4):
                s = socket.create_connection((HOST, app.port), timeout=10)
                s.sendall(b"POST /?alg=md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
                socks.append(s)
            time.sleep(0.2)
            app.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            for s in socks:
                s.sendall(b"world")
                status, headers, body, _ = read_response(s)
                self.assertEqual((code(status), body.decode()), (200, hashlib.md5(b"helloworld").hexdigest()))
                s.close()
            self.assertEqual(app.wait(timeout=10), 0, app.stderr_text()[-2000:])


class BlobdThreads(unittest.TestCase):
    def test_parallel_downloads_and_ranges(self):
        with tempfile.TemporaryDirectory() as root:
            data = os.urandom(3 << 20)
            with open(os.path.join(root, "big.bin"), "wb") as f:
                f.write(data)
            with App("blobd", "--threads", "2", "--root", root, quiet=True) as app:
                def fetch(i):
                    if i % 2:
                        lo = i * 1000
                        return app.request("GET", "/big.bin", headers={"Range": f"bytes={lo}-{lo + 9999}"}), lo
                    return app.get("/big.bin", timeout=30), None
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    results = list(pool.map(fetch, range(16), timeout=60))
                for (status, headers, body), lo in results:
                    if lo is None:
                        self.assertEqual(status, 200)
                        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(data).digest())
                    else:
                        self.assertEqual(status, 206)
                        self.assertEqual(body, data[lo:lo + 10000])
                self.assertEqual(app.stop(), 0)


if __name__ == "__main__":
    unittest.main()
