#!/usr/bin/env python3
"""Soak: the four apps under mixed, hostile load for a long while (`make soak`).

    python3 test/soak.py --build build --seconds 600

Starts comet, hello, hashd and blobd from the build (--quiet, ephemeral ports) and runs,
all at once until the time is up, each workload in its own process:

  comet    cycles of 500 waiters (HTTP/1.0 and 1.1) -> poll GET / until it says 500 ->
           GET /notify -> every waiter must receive 500; then 20 waiters that hang up
           (close or reset) -> the count must be back to 0 within 2 s
  hello    wrk -t1 -c50 in 3 s bursts with 1-3 s pauses (no socket error and no non-2xx
           allowed); a Python keep-alive loop instead when wrk is not installed
  hashd    2 clients: uploads of 0 B .. 6 MiB, Content-Length and chunked,
           md5/sha1/sha256/sha512 (and xxh64/xxh3/xxh128 when the Python xxhash module
           is there), every digest checked
  blobd    2 clients: whole downloads of an 8 MiB and a 32 MiB random file (sha256
           checked), random single ranges (bytes checked), If-None-Match -> 304
  hostile  clients vanishing mid-headers (hello), mid-body (hashd), mid-response (blobd),
           by close and by reset; garbage requests (must get 400); 20 slowloris
           connections dripping a byte every 200 ms into hello (they must end with the
           408 of the 10 s header timeout; they are then opened again)

Every --interval seconds (5) it records each server's RSS, open descriptors and CPU share
and prints a line. Every --quiet-every seconds (60; at most a quarter of the run) it
takes a quiet point: the load pauses (every workload finishes what it is doing and
closes its connections), the servers get up to 10 s to close their side, and each
server's descriptors and RSS are recorded with no client at all.

It fails (exit 1, saying why) when:
  - any request failed: a wrong status, digest or byte, a dropped or refused connection,
    a wrk socket error or non-2xx answer, a 500-waiter cycle that did not add up, a
    slowloris connection that ended other than by a 408;
  - a server died, or did not exit 0 on SIGTERM at the end;
  - RSS grew without bound: the largest RSS of the last third of the samples is more
    than 20 % above the largest of the first third AND more than 8 MiB above it (the
    absolute floor keeps allocator noise on a 5-10 MiB process from counting);
  - descriptors grew: at a quiet point a server holds more descriptors than it did at
    start (a descriptor open with no client connected is a leak), or the quiet points'
    counts of the last third exceed the first third's by more than 50. (The raw counts
    of the 5 s samples are shown but not judged: they mostly count the clients of the
    moment -- comet's swing by 500 with its cycles, hello's by wrk's 50.)
The series and the summary go to BUILD/soak/report.txt (--report to change).
"""
import argparse
import asyncio
import hashlib
import http.client
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test"))
from server_process import ServerProcess, StartError  # noqa: E402
HOST = "127.0.0.1"
MiB = 1 << 20
RSS_GROWTH_RATIO = 0.20
RSS_GROWTH_FLOOR_KIB = 8 * 1024
FD_GROWTH_MAX = 50
COMET_WAITERS = 500
SLOWLORIS = 20

try:
    import xxhash  # noqa: F401
    HAVE_XXHASH = True
except ImportError:
    HAVE_XXHASH = False


# --- shared bookkeeping ----------------------------------------------------------------------

class Control:
    """What the workloads share with the parent: stop, and pause for quiet points."""

    def __init__(self, workers):
        self.stop = mp.Event()
        self.pause = mp.Event()
        self.paused = mp.Value("i", 0, lock=True)
        self.workers = workers

    def checkpoint(self, before_pause=None, after_pause=None):
        """Between two operations: if a quiet point is asked for, close up and wait."""
        if not self.pause.is_set() or self.stop.is_set():
            return
        if before_pause:
            before_pause()
        with self.paused.get_lock():
            self.paused.value += 1
        while self.pause.is_set() and not self.stop.is_set():
            time.sleep(0.05)
        with self.paused.get_lock():
            self.paused.value -= 1
        if after_pause and not self.stop.is_set():
            after_pause()

    def wait(self, seconds):
        """Sleep, but wake for stop or pause."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop.is_set() and not self.pause.is_set():
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


class Stats:
    """Counters shared with the workload processes, ok and failed per kind, plus the
    first few error messages of each kind (a queue)."""

    KINDS = ["comet_cycles", "comet_vanish", "wrk_bursts", "wrk_requests", "uploads", "upload_bytes",
             "downloads", "download_bytes", "ranges", "not_modified", "hostile", "garbage_400",
             "slowloris_408"]
    COUNTS_ONLY = {"wrk_requests", "upload_bytes", "download_bytes"}

    def __init__(self):
        self.ok = {k: mp.Value("q", 0, lock=True) for k in self.KINDS}
        self.failed = {k: mp.Value("q", 0, lock=True) for k in self.KINDS}
        self.errors = mp.Queue()

    def add(self, kind, n=1):
        with self.ok[kind].get_lock():
            self.ok[kind].value += n

    def fail(self, kind, message):
        with self.failed[kind].get_lock():
            self.failed[kind].value += 1
            first = self.failed[kind].value <= 5
        if first:
            self.errors.put(f"{time.strftime('%H:%M:%S')} {kind}: {message}")

    def snapshot(self):
        return ({k: v.value for k, v in self.ok.items()}, {k: v.value for k, v in self.failed.items()})


KIND_OF = {"comet_load": "comet_cycles", "hello_load": "wrk_bursts", "hashd_load": "uploads",
           "blobd_load": "downloads", "hostile": "hostile"}


def worker_main(fn, ctl, stats, *args):
    """Run a workload until stop; an exception escaping it is a failure, and the workload
    starts over (a broken client must not end the soak early)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    random.seed(os.getpid() ^ int(time.time()))
    while not ctl.stop.is_set():
        try:
            fn(ctl, stats, *args)
        except Exception as e:  # noqa: BLE001
            stats.fail(KIND_OF[fn.__name__], f"{e!r}\n{traceback.format_exc(limit=3)}")
            ctl.checkpoint()
            ctl.wait(0.5)


# --- servers ------------------------------------------------------------------------------------

class Server(ServerProcess):
    """build/apps/NAME --port 0 --quiet, started at once. No thread drains its stdout (the
    workloads are processes forked later: no thread may be running then); --quiet apps
    print nothing after the listening line."""

    def __init__(self, build, name, *args):
        super().__init__([os.path.join(build, "apps", name), "--port", "0", "--quiet", *args], name=name)
        try:
            self.start()
        except StartError as e:
            raise RuntimeError(f"{name} did not start: {e.line.strip()!r}: {self.stderr()[-2000:]}") from None
        self.start_fds = self.fds()
        self.cpu0 = (self.cpu(), time.monotonic())

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return -1

    def rss_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def cpu(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                s = f.read()
        except OSError:
            return 0.0
        fields = s[s.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_share(self):
        """CPU seconds per wall second since the last call."""
        c, t = self.cpu(), time.monotonic()
        c0, t0 = self.cpu0
        self.cpu0 = (c, t)
        return (c - c0) / (t - t0) if t > t0 else 0.0

    def stop(self, timeout=15):
        """None if it exited 0 on SIGTERM, else what went wrong."""
        rc = super().stop(timeout=timeout)
        if self.killed:
            return "did not exit within 15 s of SIGTERM (killed)"
        if rc != 0:
            return f"exit {rc}" + (f" ({signal.Signals(-rc).name})" if rc < 0 else "")
        return None

    def stderr(self):
        return self.stderr_text()


# --- small clients --------------------------------------------------------------------------------

def connect(port, timeout=10, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((HOST, port))
    return s


def vanish(s, rst):
    if rst:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    s.close()


# --- comet ----------------------------------------------------------------------------------------

async def _aget(port, path):
    r, w = await asyncio.open_connection(HOST, port)
    try:
        w.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        await w.drain()
        data = await r.read()
    finally:
        w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def _open_waiter(port, version):
    r, w = await asyncio.open_connection(HOST, port)
    w.write(f"GET /wait {version}\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise AssertionError(f"waiter got {head[:80]!r}")
    return r, w, version


async def _waiter_body(r, version):
    if version == "HTTP/1.0":
        return await r.read()
    body = b""
    while True:
        size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await r.readuntil(b"\r\n")
            return body
        body += (await r.readexactly(size + 2))[:-2]


async def _wait_count(port, n, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        status, body = await _aget(port, "/")
        last = body
        if status == 200 and body == str(n).encode():
            return True, last
        await asyncio.sleep(0.02)
    return False, last


async def _comet_cycle(port, stats):
    waiters = []
    try:
        for start in range(0, COMET_WAITERS, 100):
            batch = [_open_waiter(port, "HTTP/1.0" if i % 2 else "HTTP/1.1")
                     for i in range(start, min(COMET_WAITERS, start + 100))]
            waiters += await asyncio.gather(*batch)
        ok, last = await _wait_count(port, COMET_WAITERS, 20)
        if not ok:
            raise AssertionError(f"GET / said {last!r} with {COMET_WAITERS} waiters parked")
        status, body = await _aget(port, "/notify")
        if (status, body) != (200, str(COMET_WAITERS).encode()):
            raise AssertionError(f"/notify answered {status} {body!r}")
        bodies = await asyncio.wait_for(asyncio.gather(*[_waiter_body(r, v) for r, _, v in waiters]), 30)
        wrong = [b for b in bodies if b != str(COMET_WAITERS).encode()]
        if wrong:
            raise AssertionError(f"{len(wrong)} waiters got {wrong[:3]!r}")
    finally:
        for _, w, _ in waiters:
            w.close()
    stats.add("comet_cycles")
    # Waiters that hang up: no longer counted, promptly.
    gone = await asyncio.gather(*[_open_waiter(port, "HTTP/1.1") for _ in range(20)])
    for i, (_, w, _) in enumerate(gone):
        if i % 2:
            w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.close()
    ok, last = await _wait_count(port, 0, 2)
    if ok:
        stats.add("comet_vanish")
    else:
        stats.fail("comet_vanish", f"20 waiters hung up, GET / still says {last!r} after 2 s")


def comet_load(ctl, stats, port):
    async def main():
        while not ctl.stop.is_set():
            ctl.checkpoint()  # between cycles: no connection of ours is open
            try:
                await asyncio.wait_for(_comet_cycle(port, stats), 60)
            except (AssertionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                stats.fail("comet_cycles", repr(e))
                await asyncio.sleep(1)
            await asyncio.sleep(0.2)

    asyncio.run(main())


# --- hello --------------------------------------------------------------------------------------

WRK_REQUESTS = re.compile(r"(\d+) requests in")
WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def hello_load(ctl, stats, port):
    wrk = shutil.which("wrk")
    while not ctl.stop.is_set():
        ctl.checkpoint()
        if wrk:
            p = subprocess.run([wrk, "-t1", "-c50", "-d3s", "--timeout", "10s", f"http://{HOST}:{port}/plaintext"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
            out = p.stdout
            m = WRK_REQUESTS.search(out)
            errs = WRK_ERRORS.search(out)
            non2xx = WRK_NON2XX.search(out)
            if p.returncode != 0 or not m:
                stats.fail("wrk_bursts", f"wrk exit {p.returncode}: {out[-500:]!r}")
            elif (errs and any(int(x) for x in errs.groups())) or (non2xx and int(non2xx.group(1))):
                stats.fail("wrk_bursts", f"{errs.group(0) if errs else ''} {non2xx.group(0) if non2xx else ''}")
            else:
                stats.add("wrk_bursts")
                stats.add("wrk_requests", int(m.group(1)))
        else:  # a keep-alive loop instead
            c = http.client.HTTPConnection(HOST, port, timeout=10)
            n, t0 = 0, time.monotonic()
            try:
                while time.monotonic() - t0 < 3:
                    c.request("GET", "/plaintext")
                    r = c.getresponse()
                    if (r.status, r.read()) != (200, b"Hello, World!"):
                        raise AssertionError(f"/plaintext answered {r.status}")
                    n += 1
                stats.add("wrk_bursts")
                stats.add("wrk_requests", n)
            except (OSError, http.client.HTTPException, AssertionError) as e:
                stats.fail("wrk_bursts", repr(e))
            finally:
                c.close()
        ctl.wait(random.uniform(1, 3))  # not in step with the sampling


# --- hashd --------------------------------------------------------------------------------------

def _digest(alg, data):
    if alg.startswith("xxh"):
        import xxhash
        f = {"xxh64": xxhash.xxh64, "xxh3": xxhash.xxh3_64, "xxh128": xxhash.xxh3_128}[alg]
        return f(data).hexdigest()
    return hashlib.new(alg, data).hexdigest()


def hashd_load(ctl, stats, port):
    pool = os.urandom(8 * MiB)
    algs = ["md5", "sha1", "sha256", "sha512"] + (["xxh64", "xxh3", "xxh128"] if HAVE_XXHASH else [])
    sizes = [0, 1, 1000, 65536, 65537, MiB - 1, MiB + 13, 3 * MiB, 6 * MiB + 7]
    c = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        while not ctl.stop.is_set():
            ctl.checkpoint(before_pause=c.close)  # reconnects by itself afterwards
            n = random.choice(sizes)
            at = random.randrange(0, len(pool) - n + 1)
            data = pool[at:at + n]
            alg = random.choice(algs)
            chunked = random.random() < 0.4
            try:
                if chunked:
                    pieces = [data[i:i + 300000] for i in range(0, len(data), 300000)] or [b""]
                    c.request("PUT", f"/?alg={alg}", body=iter(pieces), headers={"Transfer-Encoding": "chunked"},
                              encode_chunked=True)
                else:
                    c.request("POST", f"/?alg={alg}", body=data)
                r = c.getresponse()
                got = r.read().decode()
                want = _digest(alg, data)
                if r.status != 200 or got != want:
                    stats.fail("uploads", f"{alg} of {n} B ({'chunked' if chunked else 'length'}): {r.status} {got!r}")
                else:
                    stats.add("uploads")
                    stats.add("upload_bytes", n)
            except (OSError, http.client.HTTPException) as e:
                stats.fail("uploads", f"{alg} of {n} B: {e!r}")
                c.close()
                ctl.wait(0.2)
    finally:
        c.close()


# --- blobd --------------------------------------------------------------------------------------

def blobd_load(ctl, stats, port, files):
    """files: {name: (size, sha256 hex, path)}"""
    c = http.client.HTTPConnection(HOST, port, timeout=30)
    etags = {}
    try:
        while not ctl.stop.is_set():
            ctl.checkpoint(before_pause=c.close)
            name = random.choice(list(files))
            size, want, path = files[name]
            roll = random.random()
            try:
                if roll < 0.5:
                    c.request("GET", f"/{name}")
                    r = c.getresponse()
                    h, n = hashlib.sha256(), 0
                    while True:
                        b = r.read(MiB)
                        if not b:
                            break
                        h.update(b)
                        n += len(b)
                    etags[name] = r.getheader("ETag")
                    if r.status != 200 or n != size or h.hexdigest() != want:
                        stats.fail("downloads", f"/{name}: {r.status}, {n} of {size} bytes, sha256 ok: "
                                                f"{h.hexdigest() == want}")
                    else:
                        stats.add("downloads")
                        stats.add("download_bytes", n)
                elif roll < 0.9 or name not in etags:
                    a = random.randrange(0, size)
                    b = min(size - 1, a + random.randrange(0, 2 * MiB))
                    c.request("GET", f"/{name}", headers={"Range": f"bytes={a}-{b}"})
                    r = c.getresponse()
                    body = r.read()
                    with open(path, "rb") as f:
                        f.seek(a)
                        expect = f.read(b - a + 1)
                    if r.status != 206 or body != expect:
                        stats.fail("ranges", f"/{name} bytes={a}-{b}: {r.status}, {len(body)} bytes")
                    else:
                        stats.add("ranges")
                else:
                    c.request("GET", f"/{name}", headers={"If-None-Match": etags[name]})
                    r = c.getresponse()
                    r.read()
                    if r.status != 304:
                        stats.fail("not_modified", f"/{name} If-None-Match {etags[name]}: {r.status}")
                    else:
                        stats.add("not_modified")
            except (OSError, http.client.HTTPException) as e:
                stats.fail("downloads", f"/{name}: {e!r}")
                c.close()
                ctl.wait(0.2)
    finally:
        c.close()


# --- hostile clients ---------------------------------------------------------------------------------

SLOW_REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: " + b"p" * 4000


def hostile(ctl, stats, ports):
    slow = {}  # socket -> bytes sent

    def open_slow():
        s = connect(ports["hello"], timeout=10)
        s.setblocking(False)
        slow[s] = 0

    def close_slow():
        for s in slow:
            s.close()
        slow.clear()

    def reopen_slow():
        for _ in range(SLOWLORIS):
            open_slow()

    reopen_slow()
    next_drip = time.monotonic()
    try:
        while not ctl.stop.is_set():
            ctl.checkpoint(before_pause=close_slow, after_pause=reopen_slow)
            # One hostile exchange.
            what = random.randrange(4)
            rst = random.random() < 0.5
            try:
                if what == 0:  # hello, gone mid-headers
                    s = connect(ports["hello"])
                    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Cut: " + b"c" * random.randrange(0, 300))
                    vanish(s, rst)
                elif what == 1:  # hashd, gone mid-body
                    s = connect(ports["hashd"])
                    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n")
                    s.sendall(os.urandom(random.randrange(0, 512 * 1024)))
                    vanish(s, rst)
                elif what == 2:  # blobd, gone mid-response
                    s = connect(ports["blobd"], rcvbuf=32 * 1024)
                    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    if random.random() < 0.7:
                        s.recv(random.randrange(1, 65536))
                    vanish(s, rst)
                else:  # garbage must get its 400
                    s = connect(ports["hello"])
                    s.sendall(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    s.close()
                    if not data.startswith(b"HTTP/1.1 400 "):
                        stats.fail("garbage_400", f"garbage answered {data[:60]!r}")
                    else:
                        stats.add("garbage_400")
                stats.add("hostile")
            except OSError as e:
                stats.fail("hostile", f"scenario {what}: {e!r}")
                ctl.wait(0.2)
            # Slowloris: a byte every 200 ms on each; the server's 408 (header timeout) is
            # the expected end, after which the connection is opened again.
            if time.monotonic() >= next_drip:
                next_drip = max(next_drip + 0.2, time.monotonic() - 1)
                for s in list(slow):
                    try:
                        data = s.recv(4096)
                    except BlockingIOError:
                        data = None
                    except OSError as e:
                        data = repr(e).encode()
                    if data is not None:
                        if data.startswith(b"HTTP/1.1 408 "):
                            stats.add("slowloris_408")
                        else:
                            stats.fail("slowloris_408", f"after {slow[s]} bytes: {data[:60]!r}")
                        s.close()
                        del slow[s]
                        open_slow()
                        continue
                    if slow[s] < len(SLOW_REQUEST):
                        try:
                            s.send(SLOW_REQUEST[slow[s]:slow[s] + 1])
                            slow[s] += 1
                        except BlockingIOError:
                            pass
            ctl.wait(0.02)
    finally:
        close_slow()


# --- the run ------------------------------------------------------------------------------------------

def make_files(base):
    root = os.path.join(base, "root")
    os.mkdir(root)
    files = {}
    for name, size in (("rand.bin", 8 * MiB), ("big.bin", 32 * MiB + 4097)):
        path = os.path.join(root, name)
        h = hashlib.sha256()
        with open(path, "wb") as f:
            left = size
            while left:
                b = os.urandom(min(left, 4 * MiB))
                h.update(b)
                f.write(b)
                left -= len(b)
        files[name] = (size, h.hexdigest(), path)
    return root, files


def thirds(values):
    k = len(values) // 3
    return (max(values[:k]), max(values[-k:])) if k >= 1 else (None, None)


def rss_verdict(name, series):
    first, last = thirds([s["rss"] for s in series if s["rss"] >= 0])
    if first is None:
        return f"{name} RSS: too few samples to compare thirds", False
    limit = max(first * (1 + RSS_GROWTH_RATIO), first + RSS_GROWTH_FLOOR_KIB)
    bad = last > limit
    return (f"{name} RSS: first third max {first / 1024:.1f} MiB, last third max {last / 1024:.1f} MiB "
            f"({(last - first) / max(first, 1) * 100:+.1f} %; fail above {limit / 1024:.1f} MiB)"
            + (" -- GREW WITHOUT BOUND" if bad else " -- ok")), bad


def quiet_point(ctl, servers, say, t0):
    """Pause the load, let the servers settle, record descriptors and RSS with no client."""
    ctl.pause.set()
    deadline = time.monotonic() + 90  # a comet cycle in progress may take a while
    while ctl.paused.value < ctl.workers and time.monotonic() < deadline:
        time.sleep(0.05)
    all_paused = ctl.paused.value >= ctl.workers
    settle = time.monotonic() + 10
    out = {}
    for n, s in servers.items():
        while s.alive() and s.fds() > s.start_fds and time.monotonic() < settle:
            time.sleep(0.05)
        out[n] = {"t": time.monotonic() - t0, "fds": s.fds(), "rss": s.rss_kib()}
    ctl.pause.clear()
    say(f"{out['comet']['t']:4.0f}s quiet point{'' if all_paused else ' (NOT every workload paused)'}: "
        + " | ".join(f"{n} {q['fds']} fds (start {servers[n].start_fds}), {q['rss'] / 1024:.1f} MiB"
                     for n, q in out.items()))
    return out, all_paused


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=5, help="seconds between samples")
    ap.add_argument("--quiet-every", type=float, default=60, help="seconds between quiet points")
    ap.add_argument("--report", help="default: BUILD/soak/report.txt")
    args = ap.parse_args()
    build = os.path.abspath(os.path.join(ROOT, args.build))
    report_path = args.report or os.path.join(build, "soak", "report.txt")
    os.makedirs(os.path.dirname(report_path), exist_ok=True)
    for app in ("comet", "hello", "hashd", "blobd"):
        if not os.access(os.path.join(build, "apps", app), os.X_OK):
            sys.exit(f"soak: {build}/apps/{app} is missing: build the apps first (make apps)")
    quiet_every = min(args.quiet_every, max(args.seconds / 4, args.interval))

    base = tempfile.mkdtemp(prefix="tendril-soak-")
    servers, workers = {}, []
    stats = Stats()
    lines = []

    def say(line):
        print(line, flush=True)
        lines.append(line)

    try:
        root, files = make_files(base)
        servers["comet"] = Server(build, "comet")
        servers["hello"] = Server(build, "hello")
        servers["hashd"] = Server(build, "hashd")
        servers["blobd"] = Server(build, "blobd", "--root", root)
        ports = {n: s.port for n, s in servers.items()}
        plan = [(comet_load, ports["comet"]), (hello_load, ports["hello"]), (hashd_load, ports["hashd"]),
                (hashd_load, ports["hashd"]), (blobd_load, ports["blobd"], files),
                (blobd_load, ports["blobd"], files), (hostile, ports)]
        ctl = Control(len(plan))
        say(f"soak: {args.seconds:.0f} s against {build}; ports {ports}; samples every {args.interval:g} s, "
            f"quiet points every {quiet_every:g} s; wrk: {'yes' if shutil.which('wrk') else 'no (Python loop)'}; "
            f"xxhash digests checked: {'yes' if HAVE_XXHASH else 'no (no Python xxhash module)'}")
        for fn, *rest in plan:
            p = mp.Process(target=worker_main, args=(fn, ctl, stats, *rest), name=fn.__name__, daemon=True)
            p.start()
            workers.append(p)

        series = {n: [] for n in servers}
        quiet = {n: [] for n in servers}
        quiet_problems = []
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        next_sample = t0 + args.interval
        next_quiet = t0 + quiet_every
        say("   t  " + " | ".join(f"{n:>5} RSS MiB  fds  cpu%" for n in servers) + " | failures")
        died = {}
        while time.monotonic() < deadline and not died:
            time.sleep(max(0.0, min(next_sample, next_quiet, deadline) - time.monotonic()))
            now = time.monotonic()
            if now >= next_quiet and now < deadline - 1:
                next_quiet += quiet_every
                points, all_paused = quiet_point(ctl, servers, say, t0)
                if not all_paused:
                    quiet_problems.append(f"quiet point at {now - t0:.0f}s: not every workload paused within 90 s")
                for n, q in points.items():
                    quiet[n].append(q)
                next_sample = max(next_sample, time.monotonic() + 0.5)
                continue
            if now < next_sample:
                continue
            next_sample += args.interval
            t = now - t0
            cols = []
            for n, s in servers.items():
                if not s.alive() and n not in died:
                    died[n] = f"died at t={t:.0f}s: {s.stop()}; stderr: {s.stderr()[-800:]!r}"
                sample = {"t": t, "rss": s.rss_kib(), "fds": s.fds(), "cpu": s.cpu_share() * 100}
                series[n].append(sample)
                cols.append(f"{n:>5} {sample['rss'] / 1024:7.1f} {sample['fds']:4d} {sample['cpu']:5.1f}")
            _, failed = stats.snapshot()
            say(f"{t:4.0f}s " + " | ".join(cols) + f" | {sum(failed.values())}")

        # Stop the load; a last quiet point with every client gone; stop the servers.
        ctl.stop.set()
        for p in workers:
            p.join(60)
            if p.is_alive():
                p.terminate()
                p.join(5)
        elapsed = time.monotonic() - t0
        ok, failed = stats.snapshot()
        errors = []
        while True:
            try:
                errors.append(stats.errors.get(timeout=0.2))
            except Exception:  # noqa: BLE001 (queue.Empty)
                break
        if not died:
            ctl.workers = 0
            points, _ = quiet_point(ctl, servers, say, t0)
            for n, q in points.items():
                quiet[n].append(q)
        stops = {n: s.stop() for n, s in servers.items()}

        # Verdicts.
        problems = list(quiet_problems)
        say("")
        say(f"load over {elapsed:.0f} s:")
        say(f"  comet: {ok['comet_cycles']} cycles of {COMET_WAITERS} waiters all notified; "
            f"{ok['comet_vanish']} rounds of 20 hung-up waiters uncounted within 2 s")
        say(f"  hello: {ok['wrk_bursts']} wrk bursts (-t1 -c50, 3 s), {ok['wrk_requests']} requests")
        say(f"  hashd: {ok['uploads']} uploads verified, {ok['upload_bytes'] / MiB:.0f} MiB")
        say(f"  blobd: {ok['downloads']} whole downloads verified ({ok['download_bytes'] / MiB:.0f} MiB), "
            f"{ok['ranges']} ranges, {ok['not_modified']} 304s")
        say(f"  hostile: {ok['hostile']} exchanges (vanishing clients; garbage -> {ok['garbage_400']} x 400); "
            f"{ok['slowloris_408']} slowloris connections ended by 408")
        for k, v in failed.items():
            if v:
                problems.append(f"{v} failed: {k}")
        for n, why in died.items():
            problems.append(f"{n} {why}")
        for n, why in stops.items():
            if why and n not in died:
                problems.append(f"{n} at the final SIGTERM: {why}")
        say("")
        say("RSS (largest of the first third of the samples vs the last third):")
        for n in servers:
            text, bad = rss_verdict(n, series[n])
            say("  " + text)
            if bad:
                problems.append(text)
        say("")
        say("descriptors at the quiet points (no client connected), and at start:")
        for n, s in servers.items():
            counts = [q["fds"] for q in quiet[n]]
            say(f"  {n}: start {s.start_fds}; quiet points {counts}")
            over = [(round(q["t"]), q["fds"]) for q in quiet[n] if q["fds"] > s.start_fds]
            if over:
                problems.append(f"{n} held more descriptors than at start ({s.start_fds}) with no client "
                                f"connected: (t, count) {over}")
            first, last = thirds(counts)
            if first is not None and last - first > FD_GROWTH_MAX:
                problems.append(f"{n} descriptors at quiet points grew by {last - first} (first third max {first}, "
                                f"last third max {last})")
        if errors:
            say("")
            say("first errors:")
            for e in errors[:30]:
                say("  " + e.replace("\n", "\n    "))
        say("")
        if problems:
            say("SOAK FAILED:")
            for p in problems:
                say("  - " + p)
        else:
            say("SOAK PASSED: no request failed, no server died, nothing grew, nothing leaked")

        with open(report_path, "w") as f:
            f.write(lines[0] + "\n\nsamples (t in s, RSS in KiB, cpu in % of one core):\n")
            f.write("t," + ",".join(f"{n}_rss_kib,{n}_fds,{n}_cpu" for n in servers) + "\n")
            for i in range(min(len(v) for v in series.values())):
                row = [f"{series['comet'][i]['t']:.1f}"]
                for n in servers:
                    s = series[n][i]
                    row += [str(s["rss"]), str(s["fds"]), f"{s['cpu']:.1f}"]
                f.write(",".join(row) + "\n")
            f.write("\nquiet points (no client connected):\n")
            f.write("t," + ",".join(f"{n}_rss_kib,{n}_fds" for n in servers) + "\n")
            for i in range(min(len(v) for v in quiet.values())):
                row = [f"{quiet['comet'][i]['t']:.1f}"]
                for n in servers:
                    row += [str(quiet[n][i]["rss"]), str(quiet[n][i]["fds"])]
                f.write(",".join(row) + "\n")
            f.write("\nsummary:\n" + "\n".join(lines[lines.index("") + 1:]) + "\n")
        print(f"report: {report_path}")
        sys.exit(1 if problems else 0)
    finally:
        if workers:
            ctl.stop.set()
        for p in workers:
            if p.is_alive():
                p.terminate()
        for s in servers.values():
            if s.alive():
                s.proc.kill()
                s.proc.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
