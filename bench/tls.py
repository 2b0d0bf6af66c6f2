#!/usr/bin/env python3
"""HTTPS: tendril beside nginx with TLS, one server thread / one worker each, the same
ECDSA P-256 certificate, in one run on this machine over loopback (`make bench-tls`):

  plaintext   wrk -t1 -c100 -d10s https://.../plaintext (keep-alive: the records'
              cost), tendril's hello and nginx alternating, twice each, median
  handshakes  wrk -t1 -c50 -d5s with `Connection: close` (a TLS 1.3 handshake per
              request: the handshake's cost)
  download    curl of a 1 GiB file over HTTPS to /dev/null, 3 times each: tendril's
              blobd and nginx (sendfile off under TLS: neither has kTLS here)

Figures per server CPU-second first (the load generator shares the machine), then
req/s and wall time; writes bench/TLS.md and raw outputs under bench/results-tls/.

  python3 bench/tls.py [--build build] [--quick]
"""
import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import multicore as M
import peers as P
from peers import ROOT, Server, fmt, log, md_table, clean, rfmt

sys.path.insert(0, os.path.join(ROOT, "test"))
from tls_certs import Certs  # noqa: E402


def wrk(server, url, seconds, connections, extra=()):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *extra, url]
    c0, t0 = M.tree_cpu(server.pid), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu, wall = M.tree_cpu(server.pid) - c0, time.monotonic() - t0
    r = P.parse_wrk(p.stdout)
    r.update(command=shlex.join(cmd), server_cpu=cpu, wall=wall, raw=p.stdout + p.stderr)
    r["per_cpu_s"] = r["requests"] / cpu if r["requests"] and cpu > 0 else None
    return r


def download(server, url, size):
    cmd = ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
    c0 = M.tree_cpu(server.pid)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cpu = M.tree_cpu(server.pid) - c0
    got, took = p.stdout.split() if p.returncode == 0 else ("0", "0")
    ok = int(got) == size
    return {"command": shlex.join(cmd), "ok": ok, "seconds": float(took), "server_cpu": cpu,
            "mib_per_s": size / 2**20 / float(took) if ok and float(took) > 0 else None,
            "mib_per_cpu_s": size / 2**20 / cpu if ok and cpu > 0 else None, "raw": p.stdout + p.stderr}


def median(rs, key):
    v = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(v) if v else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true", help="2 s wrk runs, a 64 MiB file, once each (a smoke run)")
    ap.add_argument("--out", help="directory for TLS.md and results-tls/ (default bench/ for a full run)")
    args = ap.parse_args()
    out = args.out or (os.path.join(ROOT, "bench") if not args.quick else tempfile.mkdtemp(prefix="tls-trial."))
    setup = P.Setup(args.build)
    for tool in ("wrk", "nginx", "curl", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"tls.py: `{tool}` is not installed: run `make deps-bench` first")

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_term)
    P.become_subreaper()
    scratch = tempfile.mkdtemp(prefix="tendril-peers.")
    certs = Certs()
    cert, key = certs.cert("localhost"), certs.key("localhost")
    size = (64 if args.quick else 1024) * 2**20
    blob = os.path.join(scratch, "www", "blob.bin")
    os.makedirs(os.path.dirname(blob))
    with open(blob, "wb") as f:  # real bytes, not a sparse file: both servers read the same page cache
        chunk = os.urandom(2**20)
        for _ in range(size // 2**20):
            f.write(chunk)
    tls_args = ["--tls-cert", cert, "--tls-key", key]
    nginx_env = {"NGINX_WORKERS": "1", "NGINX_TLS_CERT": cert, "NGINX_TLS_KEY": key}
    servers = {
        "tendril": (setup.app("hello", *tls_args), None, "/plaintext"),
        "nginx": (setup.nginx(os.path.dirname(blob)), nginx_env, "/plaintext"),
    }
    downloads = {
        "tendril": (setup.app("blobd", "--blob", blob, *tls_args), None, "/"),
        "nginx": (setup.nginx(os.path.dirname(blob)), nginx_env, "/files/blob.bin"),
    }
    seconds = 2 if args.quick else 10
    repeats = 1 if args.quick else 2
    raw, runs = {}, {}
    try:
        info = P.machine_info(setup)
        log(f"HTTPS: tendril vs nginx, one thread/worker each, {info['nproc']} cores; certificate ECDSA P-256")
        for phase, extra, conns, secs in (("plaintext", (), 100, seconds),
                                          ("handshakes", ("-H", "Connection: close"), 50, max(2, seconds // 2))):
            for i in range(repeats):
                for name, (argv, env, path) in servers.items():
                    with Server(name, argv, env) as srv:
                        r = wrk(srv, f"https://{srv.host}:{srv.port}{path}", secs, conns, extra)
                    r["server_command"] = (" ".join(f"{k}={v}" for k, v in (env or {}).items()) + " " if env else "") + shlex.join(argv)
                    runs.setdefault((phase, name), []).append(r)
                    raw[f"{phase}_{name}_{i + 1}.txt"] = f"$ {r['server_command']}\n$ {r['command']}\n{r['raw']}"
                    log(f"  {phase:10} {name:8} run {i + 1}: {fmt(r['rps'])} req/s, server CPU {r['server_cpu']:.2f} s, "
                        f"{fmt(r['per_cpu_s'])} req per server CPU-s")
        for name, (argv, env, path) in downloads.items():
            with Server(name, argv, env) as srv:
                for i in range(1 if args.quick else 3):
                    r = download(srv, f"https://{srv.host}:{srv.port}{path}", size)
                    r["server_command"] = shlex.join(argv)
                    runs.setdefault(("download", name), []).append(r)
                    raw[f"download_{name}_{i + 1}.txt"] = f"$ {r['server_command']}\n$ {r['command']}\n{r['raw']}"
                    log(f"  download   {name:8} run {i + 1}: {'ok' if r['ok'] else 'FAILED'}, {r['seconds']:.2f} s, "
                        f"server CPU {r['server_cpu']:.2f} s, {fmt(r['mib_per_cpu_s'])} MiB per server CPU-s")
        rows, lines = [], []
        for phase, key, unit in (("plaintext", "per_cpu_s", "req per server CPU-s"),
                                 ("handshakes", "per_cpu_s", "handshakes+requests per server CPU-s"),
                                 ("download", "mib_per_cpu_s", "MiB per server CPU-s")):
            t = median(runs.get((phase, "tendril"), []), key)
            n = median(runs.get((phase, "nginx"), []), key)
            speed_key = "rps" if phase != "download" else "mib_per_s"
            ts = median(runs.get((phase, "tendril"), []), speed_key)
            ns = median(runs.get((phase, "nginx"), []), speed_key)
            rows.append([phase, unit, f"**{fmt(t)}**", fmt(n), f"**{rfmt(t, n)}**", fmt(ts), fmt(ns), rfmt(ts, ns)])
            lines.append(f"{phase}: {unit} tendril {fmt(t)}, nginx {fmt(n)}, ratio {rfmt(t, n)}; "
                         f"{'req/s' if phase != 'download' else 'MiB/s'} tendril {fmt(ts)}, nginx {fmt(ns)}")
        for line in lines:
            print("  " + line)
        results = os.path.join(out, "results-tls")
        shutil.rmtree(results, ignore_errors=True)
        os.makedirs(results)
        for name, body in raw.items():
            with open(os.path.join(results, name), "w") as f:
                f.write(clean(body).replace(certs.dir, "$CERTS").replace(scratch, "$SCRATCH") + "\n")
        md = ["# HTTPS: tendril beside nginx\n",
              f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `python3 bench/tls.py` (`make bench-tls`) on "
              f"{info['nproc']} cores ({info['cpu']}), one server thread / one nginx worker, the same ECDSA P-256 "
              f"certificate, TLS 1.3 (both pick TLS_AES_256_GCM_SHA384). No kTLS on this kernel (no `tls` module), "
              f"so both encrypt the download in user space. Raw outputs: [results-tls/](results-tls/).\n",
              md_table(["phase", "unit", "tendril", "nginx", "tendril/nginx", "tendril speed", "nginx speed",
                        "speed ratio"], rows), "",
              "- plaintext: `wrk -t1 -c100 -d10s https://127.0.0.1:PORT/plaintext`, 2 runs each alternating, median",
              "- handshakes: the same with `-c50 -d5s -H 'Connection: close'`: one full handshake per request",
              f"- download: `curl -k -o /dev/null` of a {size // 2**20} MiB file, 3 times each (tendril: blobd "
              "--blob; nginx: a static file), speed in MiB/s", ""]
        with open(os.path.join(out, "TLS.md"), "w") as f:
            f.write("\n".join(md))
        log(f"wrote {os.path.join(out, 'TLS.md')}")
        return 0
    except KeyboardInterrupt as e:
        print(f"\ntls.py: interrupted ({str(e) or 'Ctrl-C'}); stopping every server", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        P.stop_everything()
        shutil.rmtree(scratch, ignore_errors=True)
        certs.cleanup()


if __name__ == "__main__":
    sys.exit(main())
