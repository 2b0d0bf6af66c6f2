#!/usr/bin/env python3
"""tendril side by side with its peers: `make bench-peers` runs this.

One invocation measures, on this machine and over loopback only:

  comet     build/bench/c10k --json for N in 1000, 10000 and the largest N the
            open-files limit allows, against tendril's comet, Go net/http
            (GOMAXPROCS=1), gevent, Tornado and Node.js
  plaintext wrk -t1 -c100 -d10s /plaintext against tendril's hello, nginx (one
            process), Go, Node, gevent and Tornado; tendril and nginx 3 times
            each, alternating, median reported
  upload    1 GiB POSTed (Content-Length, then chunked) to tendril's hashd and
            every peer's /hash?alg=md5; the md5 must be right
  download  a 1 GiB file from tendril's blobd (--blob) and nginx (/files/)

and prints every figure with tendril's ratio to each peer, then writes
bench/RESULTS.md, the raw outputs under bench/results/ and the chart
bench/results/c10k.svg (gnuplot).  Every server it starts is stopped, also on
Ctrl-C, SIGTERM or an error.

  python3 bench/peers.py [--build build] [--only comet,plaintext,upload,download]
                         [--quick] [--out DIR]

--quick (small N, short runs, 64 MiB transfers) and --only are for trying the
script out: they write to a scratch directory unless --out is given, so that
bench/RESULTS.md only ever holds a full run.
"""
import argparse
import ctypes
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test"))
from server_process import ServerProcess, StartError  # noqa: E402
PEERS_DIR = os.path.join(ROOT, "bench", "peers")
PY = "/usr/bin/python3"  # Debian's python, where python3-gevent and python3-tornado live
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20
T0 = time.monotonic()


def log(msg=""):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}" if msg else "", flush=True)


# --- processes -------------------------------------------------------------------------

def proc_cpu(pid):
    """(user, sys) CPU seconds of a process, all its threads, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_total(pid):
    u, s = proc_cpu(pid)
    return u + s


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pid):
    kids, out, todo = children_map(), [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def become_subreaper():
    """Orphans of our children (a server whose c10k died, nginx's helper) become ours."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


LIVE = []  # servers started here and not yet stopped


def reap_orphans():
    """Collect exited processes that were re-parented to us (never a Popen we track)."""
    tracked = {s.proc.pid for s in LIVE if s.proc}
    for pid in children_map().get(os.getpid(), []):
        if pid in tracked:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def kill_descendants():
    """Last resort: everything still running below us gets SIGTERM, then SIGKILL."""
    pids = descendants(os.getpid())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            reap_orphans()
            pids = [p for p in descendants(os.getpid())]
            if not pids:
                return
            time.sleep(0.05)


class Load:
    """What the rest of the machine did meanwhile: CPU seconds of every process that is not
    this script or one of its (reaped) descendants, from /proc/stat and os.times()."""

    @staticmethod
    def snapshot():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
        t = os.times()
        with open("/proc/loadavg") as f:
            la = float(f.read().split()[0])
        return {"busy": (sum(v) - v[3] - v[4] - v[7]) / CLK_TCK, "steal": v[7] / CLK_TCK,
                "ours": t.user + t.system + t.children_user + t.children_system,
                "t": time.monotonic(), "loadavg": la}

    def __init__(self, phase):
        self.phase, self.a = phase, self.snapshot()

    def done(self):
        b = self.snapshot()
        wall = b["t"] - self.a["t"]
        others = max(0.0, (b["busy"] - self.a["busy"]) - (b["ours"] - self.a["ours"]))
        r = {"phase": self.phase, "wall_s": wall, "others_cpu_s": others, "others_cores": others / wall if wall else 0,
             "steal_s": b["steal"] - self.a["steal"], "loadavg_start": self.a["loadavg"], "loadavg_end": b["loadavg"]}
        LOADS.append(r)
        msg = (f"  machine during {self.phase}: other processes used {others:.1f} CPU-s "
               f"({100 * r['others_cores']:.0f}% of a core) in {wall:.0f} s; load average "
               f"{r['loadavg_start']:.2f} -> {r['loadavg_end']:.2f}")
        if r["others_cores"] > BUSY_WARN:
            msg += "  ** WARNING: the machine was busy: figures from this phase are disturbed **"
        log(msg.strip())
        return r


LOADS = []
BUSY_WARN = 0.10  # other processes using more than 10 % of a core


def machine_others(seconds=3.0):
    """Share of a core that other processes use right now."""
    a = Load("idle check")
    time.sleep(seconds)
    b = Load.snapshot()
    return max(0.0, (b["busy"] - a.a["busy"]) - (b["ours"] - a.a["ours"])) / (b["t"] - a.a["t"])


class Server(ServerProcess):
    """A server process that prints `listening on http://HOST:PORT`, in its own session."""

    def __init__(self, name, argv, env=None):
        super().__init__(argv, name=name, env=env or {}, cwd=ROOT, stdin=subprocess.DEVNULL, new_session=True,
                         start_timeout=20, settle=0.3, drain=True)  # settle before anything is measured
        self.exit_status = None

    def start(self):
        LIVE.append(self)  # from the start on: a Ctrl-C while it starts stops it too
        try:
            return super().start()
        except StartError as e:
            raise RuntimeError(f"{self.name}: no `listening on` line within 20 s (got {e.line.strip()!r}); "
                               f"command: {shlex.join(self.argv)}; stderr: {self.stderr_text()[:500]}") from None

    def stop(self):
        if self.proc:
            # The rest of its session (nginx's helper shell cleans up its temp dir) gets a moment.
            status = super().stop(timeout=5, group_grace=3, on_wait=reap_orphans)
            self.exit_status = None if self.killed else status
            reap_orphans()
            self.proc = None
        if self in LIVE:
            LIVE.remove(self)


def stop_everything():
    for s in list(LIVE):
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            print(f"warning: stopping {s.name}: {e}", file=sys.stderr)
    kill_descendants()


# --- what runs where ---------------------------------------------------------------------

class Setup:
    def __init__(self, build):
        self.build = os.path.abspath(os.path.join(ROOT, build))
        self.c10k = os.path.join(self.build, "bench", "c10k")
        self.go = os.path.join(PEERS_DIR, "go", "peer-go")

    def app(self, name, *args):
        return [os.path.join(self.build, "apps", name), "--port", "0", "--host", HOST, "--quiet", *args]

    def peer_argv(self, peer):
        """(argv, env) of a peer speaking the comet protocol + /plaintext + /hash."""
        if peer == "go":
            return [self.go, "--port", "0", "--host", HOST], {"GOMAXPROCS": "1"}
        if peer == "gevent":
            return [PY, os.path.join(PEERS_DIR, "gevent_server.py"), "--port", "0", "--host", HOST], None
        if peer == "tornado":
            return [PY, os.path.join(PEERS_DIR, "tornado_server.py"), "--port", "0", "--host", HOST], None
        if peer == "node":
            return ["node", os.path.join(PEERS_DIR, "node_server.js"), "--port", "0", "--host", HOST], None
        raise ValueError(peer)

    def peer_shell(self, peer):
        argv, env = self.peer_argv(peer)
        if env:
            argv = ["env"] + [f"{k}={v}" for k, v in env.items()] + argv
        return shlex.join(argv)

    def nginx(self, root):
        return [os.path.join(PEERS_DIR, "run_nginx.sh"), "0", root, HOST]


PEERS = ["go", "gevent", "tornado", "node"]


def build_go(setup):
    src = os.path.join(PEERS_DIR, "go", "main.go")
    if os.path.exists(setup.go) and os.path.getmtime(setup.go) >= os.path.getmtime(src):
        return
    log("building the Go peer: GO111MODULE=off go build -o bench/peers/go/peer-go ./bench/peers/go")
    subprocess.run(["go", "build", "-o", setup.go, "./bench/peers/go"], cwd=ROOT, check=True,
                   env=dict(os.environ, GO111MODULE="off"))


# --- printing figures with ratios -----------------------------------------------------------

def fmt(v, digits=2):
    if v is None:
        return "—"
    if isinstance(v, int) or abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def print_with_ratios(what, unit, values, tendril="tendril"):
    """values: {server: number or None}; prints tendril's ratio to every other server."""
    t = values.get(tendril)
    parts = [f"{tendril} {fmt(t)}{unit}"]
    for k, v in values.items():
        if k == tendril:
            continue
        r = ratio(t, v)
        parts.append(f"{k} {fmt(v)}{unit}" + (f" ({tendril}/{k} = {r:.2f})" if r is not None else ""))
    print(f"  {what}: " + "; ".join(parts), flush=True)


# --- comet -----------------------------------------------------------------------------------

def run_comet(setup, ns, timeout, raw):
    results = {}  # (server, n) -> dict
    servers = ["tendril"] + [p for p in PEERS]
    for n in ns:
        log(f"comet N={n}")
        for s in servers:
            cmd = [setup.c10k, "-n", str(n), "--json", "--timeout", str(timeout), "--label", s]
            if s != "tendril":
                cmd += ["--server", setup.peer_shell(s)]
            t0 = time.monotonic()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 60, cwd=ROOT)
                out, err, rc = p.stdout, p.stderr, p.returncode
            except subprocess.TimeoutExpired as e:
                out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                err, rc = f"c10k itself did not finish within {timeout + 60} s", None
            finally:
                kill_orphans_of_c10k()
            wall = time.monotonic() - t0
            try:
                j = json.loads(out)
            except ValueError:
                j = None
            r = {"server": s, "n": n, "command": shlex.join(cmd), "exit": rc, "wall": wall,
                 "json": j, "stderr": err.strip()}
            r["ok"] = bool(j) and j["ok"] == n and j["errors"] == 0
            results[(s, n)] = r
            raw[f"comet_{s}_{n}.json"] = json.dumps(r, indent=1)
            if j:
                log(f"  {s:8} ok {j['ok']}/{n} errors {j['errors']}{' ' + str(j['error_kinds']) if j['errors'] else ''}"
                    f"  total {j['seconds']['total']:.2f} s  server CPU {j['server_cpu']['total']:.2f} s"
                    f"  {j['bytes_per_parked_connection']:.0f} B/conn"
                    f"  RSS {j['server_rss_kib']['idle'] / 1024:.1f} -> {j['server_rss_kib']['parked'] / 1024:.1f} MiB")
            else:
                log(f"  {s:8} FAILED (exit {rc}): {err.strip()[:300]}")
        print_comet_ratios(results, n, servers)
    return results


def kill_orphans_of_c10k():
    """c10k stops its server itself; if c10k died, the server is ours now (subreaper)."""
    reap_orphans()
    left = descendants(os.getpid())
    if left:
        print(f"  (stopping {len(left)} process(es) c10k left behind)", flush=True)
        kill_descendants()


def comet_figures(r):
    j = r["json"]
    if not j:
        return {}
    c = j["server_cpu"]
    return {
        "ok": j["ok"], "errors": j["errors"],
        "total": j["seconds"]["total"], "to_all_waiting": j["seconds"]["to_all_waiting"],
        "notify_to_done": j["seconds"]["notify_to_done"],
        "cpu": c["total"], "user": c["user"], "sys": c["sys"],
        "user_share": c["user"] / c["total"] if c["total"] else None,
        "rss_idle": j["server_rss_kib"]["idle"] / 1024, "rss_parked": j["server_rss_kib"]["parked"] / 1024,
        "bytes_per_conn": j["bytes_per_parked_connection"],
    }


def print_comet_ratios(results, n, servers):
    print(f"\n  comet N={n}, tendril's ratio to each peer:")
    figs = {s: comet_figures(results[(s, n)]) for s in servers if (s, n) in results}
    for key, what, unit in [("total", "total time", " s"), ("cpu", "server CPU", " s"), ("user", "server CPU user", " s"),
                            ("sys", "server CPU sys", " s"), ("bytes_per_conn", "bytes per parked connection", " B"),
                            ("rss_idle", "server RSS idle", " MiB"), ("rss_parked", "server RSS parked", " MiB")]:
        print_with_ratios(what, unit, {s: f.get(key) for s, f in figs.items()})
    shares = "; ".join(f"{s} {100 * f['user_share']:.0f}%" for s, f in figs.items() if f.get("user_share") is not None)
    print(f"  server CPU user share: {shares}")
    bad = [f"{s} ({f.get('errors', 'no result')} errors)" for s, f in figs.items()
           if not results[(s, n)]["ok"]]
    if bad:
        print(f"  FAILED or incomplete: {', '.join(bad)}")
    print(flush=True)


# --- plaintext ----------------------------------------------------------------------------------

LAT_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_latency(s):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", s)
    return float(m.group(1)) * LAT_UNITS[m.group(2)] if m else None


def parse_wrk(out):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    if m:
        r["lat_avg_ms"], r["lat_stdev_ms"], r["lat_max_ms"] = (parse_latency(x) for x in m.groups())
    for pct in ("50", "90", "99"):
        m = re.search(rf"\s{pct}%\s+(\S+)", out)
        r[f"lat_p{pct}_ms"] = parse_latency(m.group(1)) if m else None
    m = re.search(r"Socket errors: (.*)", out)
    r["socket_errors"] = m.group(1).strip() if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    return r


def wrk_once(server, path, seconds, connections):
    url = f"http://{server.host}:{server.port}{path}"
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    c0, t0 = cpu_total(server.pid), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu, wall = cpu_total(server.pid) - c0, time.monotonic() - t0
    r = parse_wrk(p.stdout)
    r.update(command=shlex.join(cmd), server_cpu=cpu, wall=wall, cpu_share=cpu / wall,
             threads=threads(server.pid), rss_mib=rss_kib(server.pid) / 1024, raw=p.stdout + p.stderr)
    r["req_per_cpu_s"] = r["requests"] / cpu if r["requests"] and cpu > 0 else None
    return r


def run_plaintext(setup, seconds, repeats, raw, scratch):
    www = os.path.join(scratch, "www")
    os.makedirs(www, exist_ok=True)
    plan = []
    for i in range(repeats):
        plan += [("tendril", i), ("nginx", i)]
    plan += [(p, 0) for p in ["go", "node", "gevent", "tornado"]]
    runs = {}
    log(f"plaintext: wrk -t1 -c100 -d{seconds}s --latency /plaintext; tendril and nginx {repeats}x alternating")
    for name, i in plan:
        if name == "tendril":
            argv, env = setup.app("hello"), None
        elif name == "nginx":
            argv, env = setup.nginx(www), None
        else:
            argv, env = setup.peer_argv(name)
        with Server(name, argv, env) as srv:
            r = wrk_once(srv, "/plaintext", seconds, 100)
        r["server_command"] = shlex.join(argv)
        if env:
            r["server_command"] = " ".join(f"{k}={v}" for k, v in env.items()) + " " + r["server_command"]
        runs.setdefault(name, []).append(r)
        raw[f"wrk_{name}_{i + 1}.txt"] = f"$ {r['server_command']}\n$ {r['command']}\n{r['raw']}"
        log(f"  {name:8} run {i + 1}: {fmt(r['rps'])} req/s, latency avg {fmt(r.get('lat_avg_ms'))} ms, "
            f"server CPU {r['server_cpu']:.2f} s ({100 * r['cpu_share']:.0f}% of a core), "
            f"{fmt(r['req_per_cpu_s'])} req per CPU-s"
            + (f", socket errors: {r['socket_errors']}" if r["socket_errors"] else "")
            + (f", non-2xx: {r['non2xx']}" if r["non2xx"] else ""))
    summary = {}
    for name, rs in runs.items():
        med = lambda k: statistics.median([x[k] for x in rs if x.get(k) is not None]) if any(
            x.get(k) is not None for x in rs) else None
        summary[name] = {k: med(k) for k in ("rps", "lat_avg_ms", "lat_p50_ms", "lat_p99_ms", "server_cpu",
                                              "cpu_share", "req_per_cpu_s", "requests", "rss_mib")}
        summary[name]["runs"] = len(rs)
        summary[name]["rps_runs"] = [x["rps"] for x in rs]
        summary[name]["req_per_cpu_s_runs"] = [x["req_per_cpu_s"] for x in rs]
        summary[name]["threads"] = max(x["threads"] for x in rs)
        summary[name]["errors"] = [x["socket_errors"] for x in rs if x["socket_errors"]] + \
                                  [f"{x['non2xx']} non-2xx" for x in rs if x["non2xx"]]
    print("\n  plaintext, tendril's ratio to each peer (median where run more than once):")
    for key, what, unit in [("rps", "req/s", ""), ("req_per_cpu_s", "requests per server CPU-second", ""),
                            ("lat_avg_ms", "latency avg", " ms"), ("lat_p99_ms", "latency p99", " ms"),
                            ("server_cpu", "server CPU over the run", " s"), ("rss_mib", "server RSS after", " MiB")]:
        print_with_ratios(what, unit, {s: f[key] for s, f in summary.items()})
    print(flush=True)
    return {"runs": {k: [{kk: vv for kk, vv in x.items() if kk != "raw"} for x in v] for k, v in runs.items()},
            "summary": summary}


# --- upload ------------------------------------------------------------------------------------

class PeakRss:
    def __init__(self, pid, every=0.01):
        self.pid, self.every, self.stop = pid, every, threading.Event()

    def __enter__(self):
        self.before = self.peak = rss_kib(self.pid)
        self.samples = 1
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        return self

    def run(self):
        while not self.stop.wait(self.every):
            try:
                self.peak = max(self.peak, rss_kib(self.pid))
                self.samples += 1
            except OSError:
                return

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()
        try:
            self.peak = max(self.peak, rss_kib(self.pid))
        except OSError:
            pass


def read_response(sock):
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, resp.read()


def upload(server, path, block, blocks, chunked, timeout=300):
    """POSTs block*blocks; returns (status, body, seconds)."""
    total = len(block) * blocks
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
        head = (f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                f"Content-Type: application/octet-stream\r\n{framing}\r\nConnection: close\r\n\r\n").encode()
        t0 = time.monotonic()
        sock.sendall(head)
        size_line = f"{len(block):x}\r\n".encode()
        for _ in range(blocks):
            if chunked:
                parts = [size_line, block, b"\r\n"]
                while parts:  # sendmsg may send part of it
                    n = sock.sendmsg(parts)
                    while parts and n >= len(parts[0]):
                        n -= len(parts[0])
                        parts.pop(0)
                    if parts and n:
                        parts[0] = memoryview(parts[0])[n:]
            else:
                sock.sendall(block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        status, body = read_response(sock)
        return status, body.decode(errors="replace").strip(), time.monotonic() - t0
    finally:
        sock.close()


def run_upload(setup, size_mib, raw):
    block = random.Random(20240601).randbytes(MIB)
    want = hashlib.md5()
    for _ in range(size_mib):
        want.update(block)
    want = want.hexdigest()
    log(f"upload: {size_mib} MiB (a random 1 MiB block repeated) POSTed to /hash?alg=md5; expected md5 {want}")
    results = {}
    for name in ["tendril"] + PEERS:
        argv, env = (setup.app("hashd"), None) if name == "tendril" else setup.peer_argv(name)
        with Server(name, argv, env) as srv:
            for mode in ("content-length", "chunked"):
                c0 = proc_cpu(srv.pid)
                err = None
                try:
                    with PeakRss(srv.pid) as rss:
                        status, body, secs = upload(srv, "/hash?alg=md5", block, size_mib, mode == "chunked")
                except (OSError, http.client.HTTPException) as e:
                    status, body, secs, err = None, "", None, f"{type(e).__name__}: {e}"
                c1 = proc_cpu(srv.pid)
                r = {"server": name, "mode": mode, "status": status, "digest": body, "expected": want,
                     "correct": status == 200 and body == want, "seconds": secs,
                     "mib_per_s": size_mib / secs if secs else None,
                     "cpu": (c1[0] - c0[0]) + (c1[1] - c0[1]), "cpu_user": c1[0] - c0[0], "cpu_sys": c1[1] - c0[1],
                     "rss_before_mib": rss.before / 1024, "rss_peak_mib": rss.peak / 1024, "rss_samples": rss.samples,
                     "error": err, "server_command": shlex.join(argv)}
                results[(name, mode)] = r
                log(f"  {name:8} {mode:14} {'md5 ok' if r['correct'] else 'WRONG: ' + repr((status, body[:80], err))}"
                    f"  {fmt(secs)} s  {fmt(r['mib_per_s'])} MiB/s  server CPU {r['cpu']:.2f} s"
                    f"  RSS {r['rss_before_mib']:.1f} -> peak {r['rss_peak_mib']:.1f} MiB")
    raw["upload.json"] = json.dumps([v for v in results.values()], indent=1)
    for mode in ("content-length", "chunked"):
        print(f"\n  upload ({mode}), tendril's ratio to each peer:")
        figs = {n: results[(n, mode)] for n in ["tendril"] + PEERS}
        for key, what, unit in [("seconds", "time", " s"), ("mib_per_s", "throughput", " MiB/s"),
                                ("cpu", "server CPU", " s"), ("rss_peak_mib", "server peak RSS", " MiB")]:
            print_with_ratios(what, unit, {n: f[key] for n, f in figs.items()})
    print(flush=True)
    return {"expected_md5": want, "size_mib": size_mib, "runs": list(results.values())}


# --- download ----------------------------------------------------------------------------------

def download(server, path, want_size, digest=None, bufsize=4 * MIB, timeout=300):
    """GETs path; returns (status, bytes received, seconds, hexdigest or None)."""
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        t0 = time.monotonic()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(65536)
            if not chunk:
                raise OSError("connection closed before the response head")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        length = int(m.group(1)) if m else None
        got = len(rest)
        h = hashlib.md5() if digest else None
        if h:
            h.update(rest)
        buf = bytearray(bufsize)
        view = memoryview(buf)
        while length is None or got < length:
            n = sock.recv_into(buf)
            if n == 0:
                break
            got += n
            if h:
                h.update(view[:n])
        return status, got, time.monotonic() - t0, h.hexdigest() if h else None, length
    finally:
        sock.close()


def make_blob(path, size_mib):
    block = bytearray(random.Random(20240602).randbytes(MIB))
    h = hashlib.md5()
    with open(path, "wb") as f:
        for i in range(size_mib):
            block[:8] = i.to_bytes(8, "little")  # every MiB differs
            f.write(block)
            h.update(block)
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def run_download(setup, size_mib, repeats, raw, scratch):
    files = os.path.join(scratch, "files")
    os.makedirs(files, exist_ok=True)
    blob = os.path.join(files, "blob.bin")
    log(f"download: writing a {size_mib} MiB file ({blob}) ...")
    want = make_blob(blob, size_mib)
    size = size_mib * MIB
    log(f"  md5 {want}; servers: tendril blobd --blob FILE (GET /), nginx (GET /files/blob.bin)")
    results = {"expected_md5": want, "size_mib": size_mib, "verify": {}, "runs": {}}
    specs = {"tendril": (setup.app("blobd", "--blob", blob), "/"), "nginx": (setup.nginx(files), "/files/blob.bin")}
    srvs = {}
    try:
        for name, (argv, _) in specs.items():
            srvs[name] = Server(name, argv).start()
        for name, srv in srvs.items():  # one untimed download with the md5 checked, which also warms up
            path = specs[name][1]
            status, got, secs, digest, length = download(srv, path, size, digest=True)
            ok = status == 200 and got == size and length == size and digest == want
            results["verify"][name] = {"status": status, "bytes": got, "content_length": length, "md5": digest,
                                       "correct": ok, "seconds_with_client_md5": secs}
            log(f"  {name:8} verify: status {status}, {got} bytes, md5 {'ok' if ok else 'WRONG ' + str(digest)}"
                f" ({secs:.2f} s with the client hashing)")
        for i in range(repeats):
            for name, srv in srvs.items():
                path = specs[name][1]
                c0 = proc_cpu(srv.pid)
                with PeakRss(srv.pid, every=0.005) as rss:
                    status, got, secs, _, length = download(srv, path, size)
                c1 = proc_cpu(srv.pid)
                r = {"status": status, "bytes": got, "size_ok": status == 200 and got == size, "seconds": secs,
                     "mib_per_s": size_mib / secs, "cpu": (c1[0] - c0[0]) + (c1[1] - c0[1]),
                     "cpu_user": c1[0] - c0[0], "cpu_sys": c1[1] - c0[1],
                     "rss_before_mib": rss.before / 1024, "rss_peak_mib": rss.peak / 1024,
                     "rss_samples": rss.samples}
                results["runs"].setdefault(name, []).append(r)
                log(f"  {name:8} run {i + 1}: {'size ok' if r['size_ok'] else 'WRONG SIZE ' + str(got)}"
                    f"  {secs:.3f} s  {r['mib_per_s']:.0f} MiB/s  server CPU {r['cpu']:.2f} s"
                    f"  RSS {r['rss_before_mib']:.1f} -> peak {r['rss_peak_mib']:.1f} MiB")
    finally:
        for s in srvs.values():
            s.stop()
        os.unlink(blob)
    results["commands"] = {n: shlex.join(a) for n, (a, _) in specs.items()}
    summary = {}
    for name, rs in results["runs"].items():
        summary[name] = {k: statistics.median(x[k] for x in rs)
                         for k in ("seconds", "mib_per_s", "cpu", "rss_peak_mib", "rss_before_mib")}
        summary[name]["all_ok"] = all(x["size_ok"] for x in rs) and results["verify"][name]["correct"]
    results["summary"] = summary
    raw["download.json"] = json.dumps(results, indent=1)
    print(f"\n  download (median of {repeats}), tendril's ratio to nginx:")
    for key, what, unit in [("seconds", "time", " s"), ("mib_per_s", "throughput", " MiB/s"),
                            ("cpu", "server CPU", " s"), ("rss_peak_mib", "server peak RSS", " MiB")]:
        print_with_ratios(what, unit, {n: f[key] for n, f in summary.items()})
    print(flush=True)
    return results


# --- machine -----------------------------------------------------------------------------------

def sh(cmd):
    try:
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20, cwd=ROOT)
        return (p.stdout + p.stderr).strip()
    except subprocess.SubprocessError as e:
        return f"({e})"


def machine_info(setup):
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
    mem = sh("grep MemTotal /proc/meminfo | awk '{printf \"%.1f GiB\", $2/1048576}'")
    # This script's own outputs don't count: they change with every run.
    dirty = sh("git status --porcelain --untracked-files=no -- . ':!bench/RESULTS.md' ':!bench/results' | wc -l")
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "uname": sh("uname -a"), "kernel": sh("uname -r"), "nproc": sh("nproc"), "cpu": cpu, "memory": mem,
        "open_files_limit": sh("ulimit -n; ulimit -Hn").replace("\n", " soft, ") + " hard",
        "os": sh(". /etc/os-release && echo $PRETTY_NAME"),
        "tendril": sh("git rev-parse --short HEAD") + (f" + {dirty} modified tracked file(s) in the work tree"
                                                      if dirty not in ("", "0") else ""),
        "versions": {
            "g++": sh("g++ --version | head -1"),
            "go": sh("go version"),
            "node": sh("node --version"),
            "python3 (peers)": sh(f"{PY} --version"),
            "gevent": sh(f"{PY} -c 'import gevent; print(gevent.__version__)'"),
            "greenlet": sh(f"{PY} -c 'import greenlet; print(greenlet.__version__)'"),
            "tornado": sh(f"{PY} -c 'import tornado; print(tornado.version)'"),
            "nginx": sh("nginx -v").replace("nginx version: ", ""),
            "wrk": sh("wrk -v | head -1").split(" Copyright")[0],
            "gnuplot": sh("gnuplot --version"),
            "python3 (this script)": sys.version.split()[0],
        },
        "build": setup.build,
    }


# --- chart ---------------------------------------------------------------------------------------

def write_chart(comet, ns, outdir):
    servers = ["tendril"] + PEERS
    dat = []
    for s in servers:
        dat.append(f"# {s}: N server_cpu_s bytes_per_parked_connection")
        for n in ns:
            r = comet.get((s, n))
            if r and r["ok"]:
                f = comet_figures(r)
                dat.append(f"{n} {f['cpu']:.3f} {f['bytes_per_conn']:.0f}")
        dat.append("\n")
    with open(os.path.join(outdir, "c10k.dat"), "w") as f:
        f.write("\n".join(dat))
    xtics = ", ".join(f'"{n:,}" {n}' for n in ns)
    titles = " ".join(servers)
    gp = f"""# Generated by bench/peers.py (make bench-peers): do not edit.
set terminal svg size 1100,460 dynamic font 'Helvetica,12' background rgb 'white'
set output 'c10k.svg'
set datafile commentschars '#'
titles = "{titles}"
set multiplot layout 1,2 title "c10k comet benchmark: N HTTP/1.0 long-poll clients, one notify (server in its own process; loopback)"
set logscale xy
set xrange [{ns[0] * 0.7}:{ns[-1] * 1.4}]
set xtics ({xtics})
set linetype 1 lc rgb '#c0392b' lw 3 pt 7
set linetype 2 lc rgb '#16a085' lw 2 pt 5
set linetype 3 lc rgb '#2c6fbb' lw 2 pt 9
set linetype 4 lc rgb '#e67e22' lw 2 pt 11
set linetype 5 lc rgb '#7d3c98' lw 2 pt 13
set grid
set key top left
set xlabel 'N (parked clients)'
set ylabel 'server CPU seconds (user + sys, whole run)'
set title 'Server CPU for the whole run'
plot for [i=0:{len(servers) - 1}] 'c10k.dat' index i using 1:2 with linespoints lt i+1 title word(titles, i+1)
set yrange [1000:400000]
set ylabel 'bytes of server RSS per parked connection'
set title 'Memory per parked connection ((RSS parked - RSS idle) / N)'
plot for [i=0:{len(servers) - 1}] 'c10k.dat' index i using 1:3 with linespoints lt i+1 title word(titles, i+1)
unset multiplot
"""
    with open(os.path.join(outdir, "c10k.gp"), "w") as f:
        f.write(gp)
    p = subprocess.run(["gnuplot", "c10k.gp"], cwd=outdir, capture_output=True, text=True)
    if p.returncode != 0:
        log(f"gnuplot failed: {p.stderr.strip()[:500]}")
        return False
    return True


# --- RESULTS.md ------------------------------------------------------------------------------------

def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def clean(cmd):
    """A command as the reader would type it: repo-relative, no ephemeral port or scratch path."""
    cmd = cmd.replace(ROOT + "/", "")
    cmd = re.sub(r"/tmp/tendril-peers\.[^/ ]+", "$SCRATCH", cmd)
    return re.sub(r"(http://127\.0\.0\.1):\d+", r"\1:PORT", cmd)


def rfmt(t, v):
    r = ratio(t, v)
    return f"{r:.2f}" if r is not None else "—"


def busy_warning(busy):
    bad = [r for r in LOADS if r["others_cores"] > BUSY_WARN]
    if busy > BUSY_WARN:
        bad.insert(0, {"phase": "the start", "others_cores": busy})
    if not bad:
        return []
    where = ", ".join(f"{r['phase']} ({100 * r['others_cores']:.0f}%)" for r in bad)
    return [f"> **Warning: the machine was not quiet.** Other processes took CPU during: {where} (share of one "
            "core; see [Machine load](#machine-load-during-the-run)). On 2 cores that slows the server or the "
            "client, so times, req/s and MiB/s from those phases are low and noisy; CPU seconds per unit of work "
            "(server CPU, requests per CPU-second) are affected less. Run `make bench-peers` again on a quiet "
            "machine for clean figures.\n"]


def glance(comet, ns, plaintext, up, down):
    """One table of tendril/peer ratios, the figures that matter most."""
    cols, cells = [], {}
    names = ["nginx"] + PEERS

    def put(col, peer, text):
        if col not in cols:
            cols.append(col)
        cells[(col, peer)] = text

    if comet:
        for n in ns[1:]:
            t = comet_figures(comet[("tendril", n)])
            for p in PEERS:
                r = comet[(p, n)]
                f = comet_figures(r)
                if not r["ok"]:
                    put(f"comet N={n:,}: server CPU", p, "peer failed")
                    put(f"comet N={n:,}: bytes per parked conn", p, "peer failed")
                    continue
                put(f"comet N={n:,}: server CPU", p, rfmt(t.get("cpu"), f["cpu"]))
                put(f"comet N={n:,}: bytes per parked conn", p, rfmt(t.get("bytes_per_conn"), f["bytes_per_conn"]))
    if plaintext:
        S = plaintext["summary"]
        for p in names:
            if p in S:
                put("plaintext req/s", p, rfmt(S["tendril"]["rps"], S[p]["rps"]))
                put("plaintext requests per server CPU-s", p,
                    rfmt(S["tendril"]["req_per_cpu_s"], S[p]["req_per_cpu_s"]))
    size = lambda mib: f"{mib // 1024} GiB" if mib >= 1024 else f"{mib} MiB"
    if up:
        runs = {(r["server"], r["mode"]): r for r in up["runs"]}
        for p in PEERS:
            t, r = runs[("tendril", "content-length")], runs[(p, "content-length")]
            put(f"{size(up['size_mib'])} upload: server CPU", p, rfmt(t["cpu"], r["cpu"]) if r["correct"] else "wrong md5")
            put(f"{size(up['size_mib'])} upload: peak RSS", p, rfmt(t["rss_peak_mib"], r["rss_peak_mib"]) if r["correct"] else "—")
    if down:
        S = down["summary"]
        put(f"{size(down['size_mib'])} download: MiB/s", "nginx", rfmt(S["tendril"]["mib_per_s"], S["nginx"]["mib_per_s"]))
        put(f"{size(down['size_mib'])} download: server CPU", "nginx", rfmt(S["tendril"]["cpu"], S["nginx"]["cpu"]))
    if not cols:
        return []
    rows = [[c] + [cells.get((c, p), "") for p in names] for c in cols]
    return ["## At a glance: tendril / peer\n",
            "Below 1 is better for CPU and memory (tendril used that fraction of what the peer used); above 1 "
            "is better for req/s, MiB/s and requests per CPU-second. Details and absolute figures below.\n",
            md_table(["figure"] + names, rows), ""]


def write_results(path, results_dir, info, args, setup, comet, ns, plaintext, up, down, raw, chart_ok, busy):
    rel_results = os.path.relpath(results_dir, os.path.dirname(path))
    L = []
    L.append("# tendril vs. its peers: comet (c10k), /plaintext, upload, download\n")
    L.append("> Generated by `make bench-peers` (`python3 bench/peers.py --build BUILD`) — do not edit by hand; "
             "run it again instead. Raw outputs are under "
             f"[`{rel_results}/`]({rel_results}/).\n")
    L.append(f"Run on {info['date']}, tendril {info['tendril']}, build `{os.path.relpath(setup.build, ROOT)}/`. "
             f"The whole run took {(time.monotonic() - T0) / 60:.1f} minutes.\n")
    warn_at = len(L)
    L.extend(glance(comet, ns, plaintext, up, down))
    L.append("## Machine\n")
    L.append(md_table(["", ""], [
        ["uname -a", f"`{info['uname']}`"], ["OS", info["os"]], ["CPU", f"{info['cpu']} — nproc {info['nproc']}"],
        ["memory", info["memory"]], ["kernel", info["kernel"]], ["open files (ulimit -n)", info["open_files_limit"]],
    ] + [[k, f"`{v}`"] for k, v in info["versions"].items()]))
    L.append("")
    L.append(f"Everything runs on this one machine over loopback (127.0.0.1). With {info['nproc']} cores, the load "
             "generator (c10k's clients, wrk, the upload/download client) takes one core and the server the other, "
             "so req/s is bounded by whichever side saturates first; **server CPU seconds** (utime + stime of the "
             "server process, all its threads, from `/proc/PID/stat`) and **requests per server CPU-second** are "
             "the fairer figures. Every server runs one thread of its own code (Go: `GOMAXPROCS=1`; nginx: one "
             "process, `master_process off`), though Go and Node keep helper threads. Ratios are "
             "**tendril / peer**: below 1 means tendril used less (time, CPU, memory); above 1 means tendril did "
             "more (req/s, MiB/s, requests per CPU-second).\n")
    L.append("The peers and how they are written: [bench/peers/README.md](peers/README.md).\n")
    L.append("### Machine load during the run\n")
    L.append("CPU used by processes other than this benchmark (from `/proc/stat` minus this script and its "
             "descendants). On 2 cores, anything much above 0 % takes CPU from the server or the client and "
             "disturbs times, req/s and MiB/s; CPU seconds per unit of work suffer less.\n")
    rows = [["before starting (3 s sample)", "—", f"{100 * busy:.0f}%", "—", "—"]]
    for r in LOADS:
        rows.append([r["phase"], f"{r['wall_s']:.0f}", f"{100 * r['others_cores']:.0f}%",
                     f"{r['loadavg_start']:.2f} → {r['loadavg_end']:.2f}", f"{r['steal_s']:.1f}"])
    L.append(md_table(["phase", "wall s", "other processes (share of a core)", "load average", "steal s"], rows))
    L.append("")
    L[warn_at:warn_at] = busy_warning(busy)

    # comet
    servers = ["tendril"] + PEERS
    if comet:
        L.append("## Comet: the c10k benchmark\n")
        L.append("N clients send `GET /wait HTTP/1.0` and park; once the server counts N waiters, one `GET /notify` "
                 "wakes them all and each must receive n = N; then the count must drop to 0. The server runs in its "
                 "own process; c10k samples its CPU and RSS from `/proc`. Bytes per parked connection = "
                 "(RSS with N parked − RSS idle) / N.\n")
        L.append("```sh")
        for n in ns:
            L.append(comet[("tendril", n)]["command"].replace(ROOT + "/", ""))
        for s in PEERS:
            L.append(comet[(s, ns[-1])]["command"].replace(ROOT + "/", ""))
        L.append("```\n")
        if chart_ok:
            L.append(f"![server CPU seconds and bytes per parked connection vs N]({rel_results}/c10k.svg)\n")
            L.append(f"Chart: [`{rel_results}/c10k.svg`]({rel_results}/c10k.svg) (data `c10k.dat`, script `c10k.gp`; "
                     "runs with errors are left out of it).\n")
        for n in ns:
            L.append(f"### N = {n:,}\n")
            t = comet_figures(comet[("tendril", n)])
            rows = []
            for s in servers:
                r = comet[(s, n)]
                f = comet_figures(r)
                if not f:
                    rows.append([s, f"**FAILED** (exit {r['exit']}): {r['stderr'][:200]}"] + ["—"] * 9)
                    continue
                res = f"{f['ok']:,} ok" + ("" if r["ok"] else f", **{f['errors']:,} errors**: " + ", ".join(
                    f"{v}× {k}" for k, v in r["json"]["error_kinds"].items()))
                rows.append([
                    s, res, f"{f['total']:.2f}", f"{f['to_all_waiting']:.2f}",
                    f"{f['cpu']:.2f} ({f['user']:.2f} + {f['sys']:.2f})",
                    f"{100 * f['user_share']:.0f}%" if f["user_share"] is not None else "—",
                    f"{f['rss_idle']:.1f} → {f['rss_parked']:.1f}", f"{f['bytes_per_conn']:,.0f}",
                    "—" if s == "tendril" else rfmt(t.get("total"), f["total"]),
                    "—" if s == "tendril" else rfmt(t.get("cpu"), f["cpu"]),
                    "—" if s == "tendril" else rfmt(t.get("bytes_per_conn"), f["bytes_per_conn"]),
                ])
            L.append(md_table(["server", "result", "total s", "until all waiting s", "server CPU s (user + sys)",
                               "user share", "server RSS MiB idle → parked", "bytes / parked conn",
                               "total time tendril/peer", "CPU tendril/peer", "bytes/conn tendril/peer"], rows))
            L.append("")

    # plaintext
    if plaintext:
        S = plaintext["summary"]
        t = S.get("tendril", {})
        L.append("## /plaintext: `wrk -t1 -c100 -d10s`\n")
        L.append("`Hello, World!` (Content-Length 13, keep-alive) to 100 connections from one wrk thread, 10 s. "
                 "Each run starts a fresh server. tendril (`build/apps/hello --quiet`) and nginx ran "
                 f"{S.get('tendril', {}).get('runs', '?')} times each, alternating, and the table gives the median "
                 "(each column's own median); the other peers ran once. Server CPU is taken over the wrk run. "
                 "A server below ~90 % of a core was not the bottleneck: wrk (on the other core) was, and then "
                 "req/s says more about wrk than about the server, while requests per server CPU-second still "
                 "compares the servers. `$SCRATCH` is a temporary directory (nginx needs a root).\n")
        L.append("```sh")
        for name in S:
            r = plaintext["runs"][name][0]
            L.append(f"{clean(r['server_command'])}   # then: {clean(r['command'])}")
        L.append("```\n")
        rows = []
        for name, f in S.items():
            rows.append([
                name, f"**{fmt(f['rps'])}**" + (f" ({' / '.join(fmt(x) for x in f['rps_runs'])})" if f["runs"] > 1 else ""),
                fmt(f["lat_avg_ms"]), fmt(f["lat_p99_ms"]), f"{f['server_cpu']:.2f} ({100 * f['cpu_share']:.0f}%)",
                f"**{fmt(f['req_per_cpu_s'])}**", str(f["threads"]), fmt(f["rss_mib"], 1),
                "—" if name == "tendril" else rfmt(t.get("rps"), f["rps"]),
                "—" if name == "tendril" else rfmt(t.get("req_per_cpu_s"), f["req_per_cpu_s"]),
                "; ".join(f["errors"]) or "none",
            ])
        L.append(md_table(["server", "req/s (runs)", "latency avg ms", "latency p99 ms",
                           "server CPU s (share of a core)", "requests per server CPU-s", "threads", "RSS MiB",
                           "req/s tendril/peer", "req per CPU-s tendril/peer", "wrk errors"], rows))
        L.append("")

    # upload
    if up:
        L.append(f"## Upload: {up['size_mib'] // 1024 if up['size_mib'] >= 1024 else up['size_mib']}"
                 f" {'GiB' if up['size_mib'] >= 1024 else 'MiB'} to `POST /hash?alg=md5`\n")
        L.append(f"A Python client on a raw socket sends a random 1 MiB block {up['size_mib']} times, first with "
                 "`Content-Length`, then chunked (1 MiB chunks), to a fresh server (tendril: "
                 "`build/apps/hashd --quiet`, which hashes whatever path is POSTed; the peers' `/hash`). The answer "
                 f"must be the md5 of the whole body, `{up['expected_md5']}` (computed once beforehand). Time runs "
                 "from the first byte sent to the answer; server RSS is sampled from `/proc` every 10 ms. "
                 "The md5 itself costs about 1.5–2 s of CPU per GiB, so what differs is the rest.\n")
        runs = {(r["server"], r["mode"]): r for r in up["runs"]}
        for mode in ("content-length", "chunked"):
            t = runs.get(("tendril", mode), {})
            rows = []
            for name in ["tendril"] + PEERS:
                r = runs[(name, mode)]
                rows.append([name, "ok" if r["correct"] else f"**WRONG** ({r['status']}, {r['digest'][:40]!r}, {r['error']})",
                             fmt(r["seconds"]), fmt(r["mib_per_s"]),
                             f"{r['cpu']:.2f} ({r['cpu_user']:.2f} + {r['cpu_sys']:.2f})",
                             f"{r['rss_before_mib']:.1f} → {r['rss_peak_mib']:.1f}",
                             "—" if name == "tendril" else rfmt(t.get("seconds"), r["seconds"]),
                             "—" if name == "tendril" else rfmt(t.get("cpu"), r["cpu"]),
                             "—" if name == "tendril" else rfmt(t.get("rss_peak_mib"), r["rss_peak_mib"])])
            L.append(f"**{mode}**\n")
            L.append(md_table(["server", "md5", "time s", "MiB/s", "server CPU s (user + sys)",
                               "server RSS MiB before → peak", "time tendril/peer", "CPU tendril/peer",
                               "peak RSS tendril/peer"], rows))
            L.append("")

    # download
    if down:
        S = down["summary"]
        t = S.get("tendril", {})
        n = len(next(iter(down["runs"].values())))
        L.append(f"## Download: a {down['size_mib'] // 1024 if down['size_mib'] >= 1024 else down['size_mib']}"
                 f" {'GiB' if down['size_mib'] >= 1024 else 'MiB'} file\n")
        L.append("One file of pseudo-random bytes, in the page cache, served by tendril's blobd (`--blob FILE`, "
                 "GET /) and nginx (`/files/blob.bin`, sendfile on). Both servers run side by side; each first "
                 "serves one untimed download whose md5 the client checks (streamed), then "
                 f"{n} timed downloads each, alternating (median reported), whose size is checked. The client "
                 "reads into a 4 MiB buffer on a raw socket and does nothing else with the bytes.\n")
        L.append("```sh")
        for name, c in down["commands"].items():
            L.append(clean(c))
        L.append("```\n")
        rows = []
        for name, f in S.items():
            v = down["verify"][name]
            rows.append([name, "ok" if f["all_ok"] else f"**WRONG** ({v})", f"{f['seconds']:.3f}",
                         f"{f['mib_per_s']:,.0f}", f"{f['cpu']:.3f}",
                         f"{f['rss_before_mib']:.1f} → {f['rss_peak_mib']:.1f}",
                         " / ".join(f"{x['seconds']:.3f}" for x in down["runs"][name]),
                         "—" if name == "tendril" else rfmt(t.get("seconds"), f["seconds"]),
                         "—" if name == "tendril" else rfmt(t.get("cpu"), f["cpu"]),
                         "—" if name == "tendril" else rfmt(t.get("rss_peak_mib"), f["rss_peak_mib"])])
        L.append(md_table(["server", "size + md5", "time s", "MiB/s", "server CPU s", "server RSS MiB before → peak",
                           "runs (s)", "time tendril/peer", "CPU tendril/peer", "peak RSS tendril/peer"], rows))
        L.append("")

    L.append("## Raw outputs\n")
    L.append(f"Every file below is also under [`{rel_results}/`]({rel_results}/).\n")
    for name in sorted(raw):
        body = raw[name]
        if name.endswith(".json"):
            try:
                body = json.dumps(json.loads(body), indent=1)
            except ValueError:
                pass
        L.append(f"<details><summary><code>{name}</code></summary>\n")
        L.append("```")
        L.append(clean(body.rstrip()))
        L.append("```\n</details>\n")
    with open(path, "w") as f:
        f.write("\n".join(L))


# --- main ------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build", help="the build directory (default build)")
    ap.add_argument("--only", default="comet,plaintext,upload,download",
                    help="comma-separated subset of comet,plaintext,upload,download")
    ap.add_argument("--quick", action="store_true", help="small N, short runs, 64 MiB transfers (a smoke run)")
    ap.add_argument("--out", help="directory for RESULTS.md and results/ (default bench/ for a full run, "
                                  "a scratch directory otherwise)")
    ap.add_argument("--wait-quiet", type=float, default=60,
                    help="seconds to wait for other processes to go below 10%% of a core before starting "
                         "(default 60; the run goes ahead anyway, and the load is recorded)")
    ap.add_argument("--comet-timeout", type=float, default=300, help="c10k --timeout, seconds (default 300)")
    args = ap.parse_args()
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    for p in phases:
        if p not in ("comet", "plaintext", "upload", "download"):
            ap.error(f"unknown phase {p!r}")
    full = not args.quick and len(phases) == 4
    out = args.out or (os.path.join(ROOT, "bench") if full else tempfile.mkdtemp(prefix="peers-trial."))
    os.makedirs(out, exist_ok=True)
    setup = Setup(args.build)
    for exe in (setup.c10k, os.path.join(setup.build, "apps", "hello")):
        if not os.access(exe, os.X_OK):
            sys.exit(f"peers.py: {exe} is missing: run `make apps bench` first")
    for tool in ("wrk", "go", "node", "nginx", "gnuplot"):
        if not shutil.which(tool):
            sys.exit(f"peers.py: `{tool}` is not installed: run `make deps-bench` first")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    become_subreaper()

    scratch = tempfile.mkdtemp(prefix="tendril-peers.")
    staging = tempfile.mkdtemp(prefix="results.", dir=out)
    raw = {}
    comet = plaintext = up = down = None
    ns = []
    try:
        info = machine_info(setup)
        log(f"tendril vs peers on {info['nproc']} cores ({info['cpu']}); build {setup.build}; output {out}")
        build_go(setup)
        busy = machine_others()
        deadline = time.monotonic() + args.wait_quiet
        while busy > BUSY_WARN and time.monotonic() < deadline:
            log(f"other processes use {100 * busy:.0f}% of a core; waiting up to "
                f"{deadline - time.monotonic():.0f} s more for a quieter machine (--wait-quiet)")
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            busy = machine_others()
        if busy > BUSY_WARN:
            log(f"WARNING: other processes use {100 * busy:.0f}% of a core right now; on a {info['nproc']}-core "
                "machine that disturbs every figure below (it is recorded in RESULTS.md)")
        if "comet" in phases:
            ld = Load("comet")
            max_n = int(subprocess.run([setup.c10k, "--print-max-n"], capture_output=True, text=True,
                                       check=True).stdout.strip())
            ns = [200, 1000] if args.quick else sorted({1000, 10000, max_n})
            ns = [n for n in ns if n <= max_n]
            comet = run_comet(setup, ns, args.comet_timeout, raw)
            ld.done()
            if write_chart(comet, ns, staging):
                log("chart: results/c10k.svg")
        if "plaintext" in phases:
            ld = Load("plaintext")
            plaintext = run_plaintext(setup, 2 if args.quick else 10, 3, raw, scratch)
            ld.done()
        if "upload" in phases:
            ld = Load("upload")
            up = run_upload(setup, 64 if args.quick else 1024, raw)
            ld.done()
        if "download" in phases:
            ld = Load("download")
            down = run_download(setup, 64 if args.quick else 1024, 5, raw, scratch)
            ld.done()

        for name, body in raw.items():
            with open(os.path.join(staging, name), "w") as f:
                f.write(clean(body) + "\n")
        summary = {"machine": info, "load_at_start": busy, "load": LOADS,
                   "comet": [comet_figures(r) | {"server": s, "n": n, "ok_run": r["ok"]} for (s, n), r in comet.items()]
                   if comet else None,
                   "plaintext": plaintext["summary"] if plaintext else None,
                   "upload": up, "download": down["summary"] if down else None}
        with open(os.path.join(staging, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        results_dir = os.path.join(out, "results")
        shutil.rmtree(results_dir, ignore_errors=True)
        os.rename(staging, results_dir)
        md = os.path.join(out, "RESULTS.md")
        write_results(md, results_dir, info, args, setup, comet or {}, ns, plaintext, up, down, raw,
                      comet is not None and os.path.exists(os.path.join(results_dir, "c10k.svg")), busy)
        log(f"wrote {os.path.relpath(md, ROOT) if md.startswith(ROOT) else md} and "
            f"{os.path.relpath(results_dir, ROOT) if results_dir.startswith(ROOT) else results_dir}/")
        return 0
    except KeyboardInterrupt as e:
        print(f"\npeers.py: interrupted ({str(e) or 'Ctrl-C'}); stopping every server", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stop_everything()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
