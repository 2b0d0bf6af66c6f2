"""comet --redis: several comet processes count and notify their waiters as one,
through a real redis-server started here on a free loopback port; Redis killed and
restarted mid-run; a node killed; bad flags. Every wait is bounded."""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from comet_test import park, read_chunked, wait_for  # noqa: E402
from harness import App, app_path  # noqa: E402
from redis_server import RedisServer, free_port, have_redis  # noqa: E402


def node(redis, name, *extra):
    return App("comet", "--redis", redis.address, "--node", name, *extra)


def count(app):
    """(status, n, headers) of GET /."""
    status, headers, body = app.get("/")
    return status, int(body), headers


def wait_cluster_count(apps, n, timeout=5):
    """Until every node's / reports n (and says nothing of an outage)."""
    def all_there():
        return all(count(a)[1] == n and "X-Comet-Cluster" not in count(a)[2] for a in apps)
    ok, took = wait_for(all_there, timeout, interval=0.02)
    if not ok:
        raise AssertionError(f"counts {[count(a)[:2] for a in apps]} never all reached {n} within {timeout} s")
    return took


def park_many(app, k):
    out = []
    for _ in range(k):
        s, status_line, _, rest = park(app)
        assert status_line.startswith("HTTP/1.1 200"), status_line
        out.append((s, rest))
    return out


def notified(waiters, timeout=5):
    return [int(read_chunked(s, rest, timeout)[0]) for s, rest in waiters]


def still_waiting(waiters, seconds=0.3):
    for s, _ in waiters:
        s.settimeout(seconds)
        try:
            data = s.recv(1)
        except socket.timeout:
            continue
        raise AssertionError(f"a waiter got {data!r} instead of waiting")


def close_all(waiters):
    for s, _ in waiters:
        s.close()


@unittest.skipUnless(have_redis(), "redis-server is not installed (make deps-test installs it)")
class CometClusterTest(unittest.TestCase):
    def setUp(self):
        self.redis = RedisServer().start()

    def tearDown(self):
        self.redis.kill()

    def test_three_nodes_one_notify_every_waiter_gets_the_cluster_n(self):
        with node(self.redis, "a") as a, node(self.redis, "b", "--threads", "2") as b, node(self.redis, "c") as c:
            waiters = {app: park_many(app, k) for app, k in ((a, 5), (b, 7), (c, 3))}
            wait_cluster_count([a, b, c], 15)
            self.assertEqual(set(self.redis.cli("SMEMBERS", "comet:nodes").split()), {"a", "b", "c"})
            self.assertEqual(self.redis.cli("GET", "comet:waiters:b"), "7")
            status, headers, body = b.get("/notify")
            self.assertEqual((status, body), (200, b"15"))
            self.assertNotIn("X-Comet-Cluster", headers)
            for app, ws in waiters.items():
                self.assertEqual(notified(ws), [15] * len(ws), app.args)
                close_all(ws)
            wait_cluster_count([a, b, c], 0)
            # A second round, notified from another node.
            ws = park_many(c, 2) + park_many(a, 1)
            wait_cluster_count([a, b, c], 3)
            self.assertEqual(a.get("/notify")[2], b"3")
            self.assertEqual(notified(ws), [3, 3, 3])
            close_all(ws)
            # A node that stops leaves the cluster at once.
            self.assertEqual(c.stop(), 0)
            self.assertEqual(set(self.redis.cli("SMEMBERS", "comet:nodes").split()), {"a", "b"})
            self.assertEqual(self.redis.cli("EXISTS", "comet:waiters:c"), "0")

    def test_a_dead_nodes_waiters_stop_counting(self):
        with node(self.redis, "a") as a, node(self.redis, "b") as b:
            wa = park_many(a, 2)
            wb = park_many(b, 4)
            wait_cluster_count([a, b], 6)
            b.stop(signal.SIGKILL)  # no goodbye: its count must expire (3 s)
            close_all(wb)
            took = wait_cluster_count([a], 2, timeout=6)
            self.assertEqual(a.get("/notify")[2], b"2")
            self.assertEqual(notified(wa), [2, 2])
            close_all(wa)
            self.assertNotIn("b", self.redis.cli("SMEMBERS", "comet:nodes").split())  # the sum forgot it
            print(f"  a killed node stopped counting after {took:.2f} s", file=sys.stderr)

    def test_redis_killed_and_restarted_mid_run(self):
        with node(self.redis, "a") as a, node(self.redis, "b") as b:
            wa = park_many(a, 3)
            wb = park_many(b, 2)
            wait_cluster_count([a, b], 5)
            self.redis.kill()
            # Waiters keep waiting; the cluster part is reported missing, never faked.
            still_waiting(wa + wb)
            status, headers, body = a.get("/")
            self.assertEqual((status, body), (200, b"3"))
            self.assertEqual(headers.get("X-Comet-Cluster"), "unavailable")
            self.assertIn("redis 127.0.0.1:", headers.get("X-Comet-Cluster-Error", ""))
            status, headers, body = a.get("/notify")
            self.assertEqual((status, body), (503, b"3"))  # a's own waiters are woken, with their number
            self.assertEqual(headers.get("X-Comet-Cluster"), "unavailable")
            self.assertEqual(headers.get("Retry-After"), "1")
            self.assertEqual(notified(wa), [3, 3, 3])
            close_all(wa)
            still_waiting(wb)  # b never heard of it
            self.assertTrue(a.alive() and b.alive())

            self.redis.start()
            wait_cluster_count([a, b], 2, timeout=10)  # both synced again
            # b is subscribed again once its log says so; then a's notify reaches it.
            ok, _ = wait_for(lambda: b.stderr_text().count("subscribed to comet:notify") >= 2, 10, 0.02)
            self.assertTrue(ok, b.stderr_text()[-2000:])
            status, _, body = a.get("/notify")
            self.assertEqual((status, body), (200, b"2"))
            self.assertEqual(notified(wb), [2, 2])
            close_all(wb)
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
            self.assertIn("serving this node's waiters alone, retrying", b.stderr_text())

    def test_redis_down_from_the_start_then_up(self):
        port = free_port()
        self.redis.kill()
        with App("comet", "--redis", f"127.0.0.1:{port}", "--node", "lonely") as a:
            w = park_many(a, 1)
            status, headers, body = a.get("/")
            self.assertEqual((status, body, headers.get("X-Comet-Cluster")), (200, b"1", "unavailable"))
            self.assertIn("Connection refused", headers.get("X-Comet-Cluster-Error", ""))
            self.redis = RedisServer(port).start()
            wait_cluster_count([a], 1, timeout=10)
            self.assertEqual(a.get("/notify")[:3:2], (200, b"1"))
            self.assertEqual(notified(w), [1])
            close_all(w)

    def test_a_malformed_notify_is_logged_and_ignored(self):
        with node(self.redis, "a") as a:
            w = park_many(a, 1)
            wait_cluster_count([a], 1)
            self.assertEqual(self.redis.cli("PUBLISH", "comet:notify", "no-number-here"), "1")
            still_waiting(w)
            self.assertEqual(self.redis.cli("PUBLISH", "comet:notify", "other 41"), "1")
            self.assertEqual(notified(w), [41])
            close_all(w)
            self.assertEqual(a.stop(), 0)
            self.assertIn("ignoring a malformed notify on comet:notify: 'no-number-here'", a.stderr_text())

    def test_bad_flags_exit_2(self):
        for args, says in ((["--redis", "host:notaport"], "--redis: 'host:notaport'"),
                           (["--redis", ""], "--redis: '': empty host"),
                           (["--node", "x"], "--node needs --redis"),
                           (["--redis", "127.0.0.1:1", "--node", "a b"], "--node: a name")):
            p = subprocess.run([app_path("comet"), "--port", "0", *args], capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(says, p.stderr)


if __name__ == "__main__":
    unittest.main()
