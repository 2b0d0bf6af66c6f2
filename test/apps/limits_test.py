"""What a server owes a machine under load, on the wire (README, "Limits and
backpressure"):

- `--max-connections N`: at N open connections the app stops accepting; the
  next client's connect succeeds (the kernel's listen backlog holds it) but it
  is not served until a connection closes, then it is, at once. One log line
  when accepting pauses, one when it resumes. The limit is the process's, shared
  by the servers of --threads.
- Backpressure: a client that stops reading parks the writer that serves it,
  and costs the server no buffered body: 1,000 of them leave blobd's memory
  flat.

Every wait is bounded; the 1,000-client test takes a few seconds and about
150 MB of kernel socket memory (each client advertises a small window and a
536-byte MSS, which keeps the server's send buffers small).
"""
import fcntl
import os
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
from harness import App, app_path, assert_no_data, read_response, reset_close  # noqa: E402

HOST = "127.0.0.1"
MiB = 1 << 20
PAUSED = "not accepting until one closes"
RESUMED = "accepting connections again"


def connect(port, timeout=5):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def get_plaintext(sock):
    """One keep-alive request on sock; (status line, body)."""
    sock.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
    status_line, _, body, rest = read_response(sock)
    assert rest == b"", rest
    return status_line, body


def log_lines(app, text):
    return [line for line in app.stderr_text().splitlines() if text in line]


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def queued(sock):
    """Bytes waiting in sock's receive queue, unread."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


class MaxConnectionsTest(unittest.TestCase):
    def test_hello_at_5_connections_the_6th_waits_in_the_backlog_until_one_closes(self):
        with App("hello", "--max-connections", "5") as app:
            held = [connect(app.port) for _ in range(5)]
            try:
                for s in held:
                    self.assertEqual(get_plaintext(s), ("HTTP/1.1 200 OK", b"Hello, World!"))
                # The 6th: connected (the backlog), its request sent, and nothing comes back.
                sixth = connect(app.port)
                sixth.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                assert_no_data(sixth, 0.5)
                # Meanwhile the server is healthy: the 5 held connections are served.
                for s in held:
                    self.assertEqual(get_plaintext(s), ("HTTP/1.1 200 OK", b"Hello, World!"))
                assert_no_data(sixth, 0.1)
                # One closes: the 6th is answered, and its connection lives on.
                held.pop(2).close()
                status_line, _, body, _ = read_response(sixth, timeout=5)
                self.assertEqual((status_line, body), ("HTTP/1.1 200 OK", b"Hello, World!"))
                self.assertEqual(get_plaintext(sixth), ("HTTP/1.1 200 OK", b"Hello, World!"))
                held.append(sixth)
                for s in held:
                    self.assertEqual(get_plaintext(s), ("HTTP/1.1 200 OK", b"Hello, World!"))
            finally:
                for s in held:
                    s.close()
            self.assertEqual(app.stop(), 0)
        paused, resumed = log_lines(app, PAUSED), log_lines(app, RESUMED)
        self.assertEqual(len(paused), 1, app.stderr_text()[-3000:])
        self.assertTrue(paused[0].endswith("hello: 5 connections open (--max-connections 5): " + PAUSED), paused[0])
        self.assertEqual(len(resumed), 1, app.stderr_text()[-3000:])
        self.assertIn("hello: accepting connections again after ", resumed[0])
        # Every request was served, and once: 5 + 5 + 2 + 5.
        self.assertEqual(sum(1 for line in app.stderr_text().splitlines()
                             if '"GET /plaintext HTTP/1.1" 200' in line), 17)

    def test_the_limit_is_the_process_s_with_threads(self):
        # Two threads, one SO_REUSEPORT socket each: the kernel spreads the
        # clients, and the limit counts them all, wherever they landed.
        with App("hello", "--threads", "2", "--max-connections", "4", quiet=True) as app:
            held = [connect(app.port) for _ in range(4)]
            try:
                for s in held:
                    self.assertEqual(get_plaintext(s)[0], "HTTP/1.1 200 OK")
                waiting = [connect(app.port) for _ in range(2)]
                for s in waiting:
                    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                for s in waiting:
                    assert_no_data(s, 0.3)
                # Each close lets exactly one more in, whichever thread it was on.
                held.pop(0).close()
                held.pop(0).close()
                for s in waiting:
                    status_line, _, body, _ = read_response(s, timeout=5)
                    self.assertEqual((status_line, body), ("HTTP/1.1 200 OK", b"Hello, World!"))
                held += waiting
                late = connect(app.port)
                held.append(late)
                late.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
                assert_no_data(late, 0.3)
            finally:
                for s in held:
                    s.close()
            self.assertEqual(app.stop(), 0)
        self.assertGreaterEqual(len(log_lines(app, PAUSED)), 1, app.stderr_text()[-3000:])

    def test_flag_values(self):
        for bad in ("-1", "abc", "1.5"):
            r = subprocess.run([app_path("hello"), "--port", "0", "--max-connections", bad],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            self.assertEqual(r.returncode, 2, (bad, r.stderr))
            self.assertIn(b"--max-connections", r.stderr)
        for name in ("hello", "comet", "hashd", "blobd"):
            r = subprocess.run([app_path(name), "--help"], stdout=subprocess.PIPE, timeout=10)
            self.assertIn(b"--max-connections", r.stdout, name)


class BackpressureTest(unittest.TestCase):
    N = 1000

    def test_blobd_1000_clients_that_never_read_cost_no_body_buffering(self):
        tmp = tempfile.mkdtemp(prefix="limits_test.")
        path = os.path.join(tmp, "blob.bin")
        with open(path, "wb") as f:  # 64 MiB, sparse but for a head of random bytes
            f.write(os.urandom(MiB))
            f.truncate(64 * MiB)
        clients = []
        try:
            with App("blobd", "--blob", path, quiet=True) as app:
                # Warm up (a Range, a HEAD), then the idle figure.
                status, _, body = app.get("/", headers={"Range": "bytes=0-9"})
                self.assertEqual(status, 206)
                self.assertEqual(app.request("HEAD", "/")[0], 200)
                time.sleep(0.3)
                idle_kib = app.rss_kib()
                idle_fds = app.open_fds()
                t0 = time.monotonic()
                for _ in range(self.N):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    # Before the connect, so that the handshake carries them: a 4 KiB
                    # window and a 536-byte MSS keep the kernel's buffers for this
                    # connection at ~150 KiB (with loopback's 64 KiB MSS the server's
                    # send buffer grows to 4 MiB: 4 GB for 1,000 clients).
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
                    s.settimeout(5)
                    clients.append(s)
                    s.connect((HOST, app.port))
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                # Started: every client has the head of a 200 waiting unread.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not all(queued(s) > 0 for s in clients):
                    time.sleep(0.05)
                started = time.monotonic() - t0
                heads = [s.recv(13, socket.MSG_PEEK) for s in clients]
                self.assertEqual(heads.count(b"HTTP/1.1 200 "), self.N, "some client has no response started")
                # Parked fibers get their stacks compacted after 20 ms; then measure.
                time.sleep(0.3)
                rss_kib = app.rss_kib()
                hwm_kib = status_field(app.proc.pid, "VmHWM")
                fds = app.open_fds()
                kernel = sum(queued(s) for s in clients)
                print(f"\nblobd, {self.N} clients that never read a 64 MiB blob (all started in {started:.2f} s): "
                      f"RSS idle {idle_kib} KiB, with them {rss_kib} KiB "
                      f"({(rss_kib - idle_kib) * 1024 / self.N:.0f} bytes per client), peak (VmHWM) {hwm_kib} KiB; "
                      f"{kernel // self.N} bytes per client delivered unread", flush=True)
                # Every one of them is parked mid-body, its file still open: not
                # finished, not dropped.
                self.assertGreaterEqual(fds, idle_fds + 2 * self.N)
                # The bound. What a parked download costs tendril: the connection's
                # fiber, whose stack is compacted to its 1-2 KiB of live bytes once
                # it has waited 20 ms (before that, the ~12 KiB it touched), the
                # handler object with the request's strings and headers (~1-2 KiB),
                # the poller's descriptor record; its read and write buffers are
                # given back while it waits, and the body goes file -> socket by
                # sendfile(2). So 16 KiB a client is generous for that (the kernel's
                # socket buffers are not in RSS), and far below anything that
                # buffers body bytes per client: one --chunk-size (1 MiB) each would
                # be 1 GiB, one 64 KiB copy buffer each 64 MiB, and even a full
                # output buffer (output_buffer_limit, 16 KiB) each would pass it.
                if not app.sanitized():
                    bound = idle_kib + self.N * 16
                    self.assertLess(rss_kib, bound, "RSS with 1,000 non-reading clients")
                    self.assertLess(hwm_kib, bound, "peak RSS while 1,000 non-reading clients started")
                # And the server is healthy: a client that reads is served in full.
                status, _, body = app.get("/", headers={"Range": "bytes=0-1048575"})
                self.assertEqual((status, len(body)), (206, MiB))
                with open(path, "rb") as f:
                    self.assertEqual(body, f.read(MiB))
                for s in clients:
                    reset_close(s)
                clients = []
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and app.open_fds() > idle_fds:
                    time.sleep(0.05)
                self.assertEqual(app.open_fds(), idle_fds, "descriptors after the clients left")
                self.assertEqual(app.stop(), 0)
        finally:
            for s in clients:
                s.close()
            os.unlink(path)
            os.rmdir(tmp)


if __name__ == "__main__":
    unittest.main()
