#!/usr/bin/python3
"""Checks that a peer server speaks the benchmark protocol, and measures it.

Usage:
  check_peer.py [--nginx] [--no-upload] [--no-wrk] [--wrk-runs N] [--json OUT] -- COMMAND...

COMMAND must print "listening on http://HOST:PORT" once it accepts
connections, and stop on SIGTERM.  Every load is bounded and goes to the
loopback address the server printed; the server is killed at the end.
With --nginx only /plaintext, /files/ and wrk are checked (run_nginx.sh
serves a scratch directory made here: pass @ROOT@ in COMMAND for it).

Prints one line per check ("ok ..." / "FAIL ...") and the figures, and ends
with "N passed, N failed".
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "test"))
from server_process import ServerProcess, StartError  # noqa: E402

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
passed = failed = 0
figures = {}
notes = []


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL  {what} {detail}", flush=True)
    return ok


def note(ok, what, detail=""):
    """A check that is reported but does not count as a failure."""
    if ok:
        print(f"ok    {what}", flush=True)
    else:
        notes.append(what)
        print(f"NOTE  {what} {detail}", flush=True)


def rss_kib(pid):
    """RSS of pid and its threads, in KiB (from /proc/PID/statm)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(server):
    """The serving process: the child itself (run_nginx.sh execs nginx)."""
    return server.pid


class Peer:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.base = f"http://{host}:{port}"

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def count(self):
        return int(self.get("/")[2])


def start(command):
    """The server, started in its own session, and a Peer at the address it printed."""
    server = ServerProcess(command, stdin=subprocess.DEVNULL, new_session=True, start_timeout=20, settle=0.3,
                           drain=True)  # drain: stdout is read on, so the server never blocks on it
    try:
        server.start()
    except StartError as e:
        sys.exit("server did not announce itself within 20 s" if e.timed_out
                 else f"unexpected first line: {e.line.strip()!r}")
    return server, Peer(server.host, server.port)


def wait_for(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def curl_waiters(peer, n, http10):
    flag = "--http1.0" if http10 else "--http1.1"
    return [subprocess.Popen(["curl", "-s", "--max-time", "60", flag, peer.base + "/wait"],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
            for _ in range(n)]


def check_plaintext(peer):
    conn = http.client.HTTPConnection(peer.host, peer.port, timeout=10)
    try:
        bodies = []
        for _ in range(3):  # same connection: keep-alive
            conn.request("GET", "/plaintext")
            resp = conn.getresponse()
            bodies.append((resp.status, resp.getheader("Content-Type"),
                           resp.getheader("Content-Length"), resp.read()))
        check(all(b == (200, "text/plain", "13", b"Hello, World!") for b in bodies),
              "/plaintext x3 on one keep-alive connection", bodies)
    finally:
        conn.close()


def raw_wait_headers(peer, version):
    """Sends GET /wait raw; returns (socket, header bytes seen before any notify)."""
    s = socket.create_connection((peer.host, peer.port), timeout=5)
    s.sendall(f"GET /wait {version}\r\nHost: x\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return s, data


def read_all(s):
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def check_comet(peer, pid):
    check(peer.get("/notify")[2] == b"0", "/notify with no waiters returns 0")

    # Headers must arrive before the notify; framing per HTTP version.
    s10, h10 = raw_wait_headers(peer, "HTTP/1.0")
    s11, h11 = raw_wait_headers(peer, "HTTP/1.1")
    lower10, lower11 = h10.lower(), h11.lower()
    check(h10.startswith(b"HTTP/1.") and b" 200 " in h10.split(b"\r\n")[0]
          and b"content-type: text/plain" in lower10 and b"content-length" not in lower10
          and b"transfer-encoding" not in lower10,
          "/wait HTTP/1.0: 200 text/plain headers before notify, no length", h10)
    check(b" 200 " in h11.split(b"\r\n")[0] and b"transfer-encoding: chunked" in lower11
          and b"content-type: text/plain" in lower11,
          "/wait HTTP/1.1: 200 chunked headers before notify", h11)
    check(wait_for(lambda: peer.count() == 2, 2), "raw waiters counted")
    check(peer.get("/notify")[2] == b"2", "/notify returns 2")
    s10.settimeout(5)
    body10 = h10.split(b"\r\n\r\n", 1)[1] + read_all(s10)  # must end with close
    check(body10 == b"2", "HTTP/1.0 body is '2', close-delimited", body10)
    s11.settimeout(5)
    rest = h11.split(b"\r\n\r\n", 1)[1]
    while not rest.endswith(b"0\r\n\r\n"):
        chunk = s11.recv(4096)
        if not chunk:
            break
        rest += chunk
    check(re.fullmatch(rb"1\r\n2\r\n0\r\n\r\n", rest) is not None,
          "HTTP/1.1 chunked body is '2'", rest)
    s11.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")  # still keep-alive?
    again = read_until_body(s11)
    check(again.startswith(b"HTTP/1.1 200") and b"Hello, World!" in again,
          "HTTP/1.1 waiter connection stays usable after the notify", again[:80])
    s10.close()
    s11.close()

    # 50 HTTP/1.0 + 50 HTTP/1.1 curl waiters.
    curls = curl_waiters(peer, 50, True) + curl_waiters(peer, 50, False)
    t0 = time.monotonic()
    got = wait_for(lambda: peer.count() == 100, 20, 0.05)
    check(got, "100 curl waiters counted", f"count={peer.count()}")
    figures["waiters_ready_s"] = round(time.monotonic() - t0, 3)
    time.sleep(0.3)
    figures["rss_100_waiters_kib"] = rss_kib(pid)
    n = peer.get("/notify")[2]
    check(n == b"100", "/notify with 100 waiters returns 100", n)
    outs = [c.communicate(timeout=10)[0] for c in curls]
    check(all(o == b"100" for o in outs), "every curl waiter printed 100",
          sorted(set(outs))[:3])
    check(all(c.returncode == 0 for c in curls), "every curl exited 0",
          sorted({c.returncode for c in curls}))
    check(peer.count() == 0, "/ returns 0 after the notify")

    # Hang-ups: 20 waiters (10 of each kind), kill 10 (5 of each).
    curls = curl_waiters(peer, 10, True) + curl_waiters(peer, 10, False)
    check(wait_for(lambda: peer.count() == 20, 10), "20 new waiters counted")
    victims = curls[:5] + curls[10:15]
    survivors = curls[5:10] + curls[15:]
    t0 = time.monotonic()
    for c in victims:
        c.kill()
    dropped = wait_for(lambda: peer.count() == 10, 1.0, 0.005)
    figures["hangup_detect_ms"] = round((time.monotonic() - t0) * 1000, 1)
    check(dropped, "count drops to 10 within 1 s of killing 10 curls",
          f"count={peer.count()}")
    for c in victims:
        c.wait()
    n = peer.get("/notify")[2]
    check(n == b"10", "/notify after hang-ups returns 10", n)
    outs = [c.communicate(timeout=10)[0] for c in survivors]
    check(all(o == b"10" for o in outs), "surviving waiters printed 10", outs[:3])


def curl_hash(peer, args, alg):
    out = subprocess.run(["curl", "-sS", "--max-time", "120", *args,
                          f"{peer.base}/hash?alg={alg}"],
                         capture_output=True, stdin=subprocess.DEVNULL, timeout=130)
    return out.stdout.decode().strip()


class PeakRss:
    """Samples a process's RSS every 20 ms while in a with-block."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def __enter__(self):
        self.before = self.peak = rss_kib(self.pid)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))


ZERO_1G_MD5 = "cd573cfaace07e7949bc0c46028904ff"


def check_big_uploads(peer, pid):
    """1 GiB uploads, done first so that nothing else has grown the heap yet."""
    # Chunked, from a pipe.
    with PeakRss(pid) as rss:
        t0 = time.monotonic()
        out = subprocess.run("head -c 1G /dev/zero | curl -sS --max-time 300 -T - "
                             f"'{peer.base}/hash?alg=md5'", shell=True,
                             capture_output=True, timeout=310).stdout.decode().strip()
        elapsed = time.monotonic() - t0
    check(out == ZERO_1G_MD5, "md5 of 1 GiB of zeros, chunked (curl -T - from a pipe)", out)
    figures["upload_1g_rss_before_kib"] = rss.before
    figures["upload_1g_rss_peak_kib"] = rss.peak
    figures["upload_1g_s"] = round(elapsed, 2)
    check(rss.peak - rss.before < 64 * 1024, "RSS grows < 64 MiB during the chunked 1 GiB upload",
          f"{rss.before} -> {rss.peak} KiB")

    # Content-Length, streamed by http.client from a generator.
    block = bytes(1 << 20)
    with PeakRss(pid) as rss:
        status, _, body = peer.request("POST", "/hash?alg=md5", body=(block for _ in range(1024)),
                                       headers={"Content-Length": str(1 << 30)}, timeout=300)
    check(status == 200 and body.decode() == ZERO_1G_MD5,
          "md5 of 1 GiB of zeros, Content-Length (http.client)", (status, body))
    figures["upload_1g_cl_rss_peak_kib"] = rss.peak
    check(rss.peak - rss.before < 64 * 1024,
          "RSS grows < 64 MiB during the Content-Length 1 GiB upload",
          f"{rss.before} -> {rss.peak} KiB")


def check_hash(peer, pid, workdir):
    check_big_uploads(peer, pid)
    path = os.path.join(workdir, "100m.bin")
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    with open(path, "rb") as f:
        data = f.read()
    want = {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    del data
    rss = PeakRss(pid).__enter__()
    for alg in ("md5", "sha256"):
        with open(path, "rb") as f:  # chunked PUT from stdin
            out = subprocess.run(["curl", "-sS", "--max-time", "120", "-T", "-",
                                  f"{peer.base}/hash?alg={alg}"], stdin=f,
                                 capture_output=True, timeout=130).stdout.decode().strip()
        check(out == want[alg], f"{alg} of 100 MiB, chunked PUT (curl -T -)", out)
        out = curl_hash(peer, ["-T", path], alg)
        check(out == want[alg], f"{alg} of 100 MiB, PUT with Content-Length (curl -T file)", out)
        out = curl_hash(peer, ["--data-binary", "@" + path], alg)
        check(out == want[alg], f"{alg} of 100 MiB, POST --data-binary", out)
    rss.__exit__()
    figures["upload_100m_x6_rss_peak_kib"] = rss.peak
    out = curl_hash(peer, ["--data-binary", "@" + path], "")
    check(out == want["md5"], "alg= empty means md5", out)
    status, headers, body = peer.request("POST", "/hash", body=b"abc")
    check(status == 200 and body == hashlib.md5(b"abc").hexdigest().encode()
          and headers.get("Content-Type", headers.get("content-type", "")).lower()
          .replace(" ", "") == "text/plain;charset=utf-8",
          "POST /hash without alg: md5, text/plain; charset=utf-8", (status, body, headers))

    # Expect: 100-continue by hand: the server must say 100 before we send.
    s = socket.create_connection((peer.host, peer.port), timeout=5)
    s.sendall(b"POST /hash?alg=sha256 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
              b"Expect: 100-continue\r\n\r\n")
    interim = s.recv(4096)
    check(re.match(rb"HTTP/1\.1 100", interim) is not None, "Expect: 100-continue answered",
          interim)
    s.sendall(b"abc")
    resp = read_until_body(s)
    check(hashlib.sha256(b"abc").hexdigest().encode() in resp, "body hashed after 100-continue",
          resp)
    s.close()

    # Chunked by hand: plain, with a trailer, with a chunk extension.
    s = socket.create_connection((peer.host, peer.port), timeout=5)
    s.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    resp = read_until_body(s)
    check(hashlib.md5(b"abcde").hexdigest().encode() in resp,
          "chunked body in two chunks, by hand", resp)
    s.close()
    s = socket.create_connection((peer.host, peer.port), timeout=5)
    s.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n")
    resp = read_until_body(s)
    note(hashlib.md5(b"abcde").hexdigest().encode() in resp,
         "chunked body with a trailer (X-Trailer: 1)", resp)
    s.close()
    s = socket.create_connection((peer.host, peer.port), timeout=5)
    s.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"3;ext=1\r\nabc\r\n0\r\n\r\n")
    resp = read_until_body(s)
    note(hashlib.md5(b"abc").hexdigest().encode() in resp,
         "chunked body with a chunk extension (3;ext=1)", resp)
    s.close()
    status, _, body = peer.request("POST", "/hash?alg=crc", body=b"abc")
    check(status == 400, "unknown alg answers 400", (status, body))


def read_until_body(s):
    s.settimeout(5)
    data = b""
    while True:
        m = re.search(rb"content-length: *(\d+)\r\n", data, re.I)
        if m and b"\r\n\r\n" in data:
            head, body = data.split(b"\r\n\r\n", 1)
            if len(body) >= int(m.group(1)):
                return data
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk


def check_nginx_files(peer, root):
    status, headers, body = peer.get("/files/hello.txt")
    check(status == 200 and body == b"static hello\n", "/files/hello.txt served",
          (status, body))


def run_wrk(peer, pid, runs):
    rates, cpu_shares, latencies = [], [], []
    for _ in range(runs):
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        out = subprocess.run(["wrk", "-t1", "-c100", "-d5s", peer.base + "/plaintext"],
                             capture_output=True, text=True, timeout=30).stdout
        cpu = cpu_seconds(pid) - cpu0
        wall = time.monotonic() - t0
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        check(m is not None and errors is None, "wrk -t1 -c100 -d5s /plaintext", out)
        if m:
            rates.append(round(float(m.group(1))))
            cpu_shares.append(round(cpu / wall, 2))
            lat = re.search(r"Latency\s+(\S+)", out)
            latencies.append(lat.group(1) if lat else None)
    if rates:
        figures["wrk_plaintext_rps_runs"] = rates
        figures["wrk_plaintext_rps"] = sorted(rates)[len(rates) // 2]
        figures["wrk_server_cpu_share"] = cpu_shares
        figures["wrk_latency_avg"] = latencies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nginx", action="store_true")
    ap.add_argument("--no-upload", action="store_true")
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--wrk-runs", type=int, default=1, help="median of N wrk runs")
    ap.add_argument("--json")
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="peer-check.")
    root = os.path.join(workdir, "www")
    os.mkdir(root)
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("static hello\n")
    command = [a.replace("@ROOT@", root) for a in args.command]
    server, peer = start(command)
    pid = server_pid(server)
    try:
        figures["rss_idle_kib"] = rss_kib(pid)
        check_plaintext(peer)
        if args.nginx:
            check_nginx_files(peer, root)
        else:
            check_comet(peer, pid)
            if not args.no_upload:
                check_hash(peer, pid, workdir)
        if not args.no_wrk:
            run_wrk(peer, pid, args.wrk_runs)
        figures["rss_end_kib"] = rss_kib(pid)
        figures["threads"] = len(os.listdir(f"/proc/{pid}/task"))
    finally:
        t0 = time.monotonic()
        rc = server.stop(timeout=5)  # then SIGKILL to its whole process group
        exit_ms = round((time.monotonic() - t0) * 1000)
        if server.killed:
            check(False, "exits within 5 s of SIGTERM")
        else:
            check(rc == 0, "exits with status 0 on SIGTERM", rc)
            figures["sigterm_exit_ms"] = exit_ms
        lines = server.stderr_text().splitlines()
        figures["stderr_lines"] = len(lines)
        if lines:
            print(f"server stderr ({len(lines)} lines), first ones:", *lines[:8], sep="\n  ")
        shutil.rmtree(workdir, ignore_errors=True)
    figures["notes"] = notes
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
