"""A real redis-server for the tests and benchmarks: on a free loopback port,
no persistence, killed and restarted on the same port at will.

    with RedisServer() as redis:
        redis.cli("PUBLISH", "comet:notify", "x 1")   # redis-cli's output, stripped
        redis.kill(); redis.start()
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def have_redis():
    return shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="tendril-redis-")
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self, timeout=10):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", self.dir, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode} on port {self.port}")
            try:
                if self.cli("PING", timeout=1) == "PONG":
                    return self
            except subprocess.SubprocessError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer PING on port {self.port} within {timeout} s")

    def cli(self, *args, timeout=5):
        out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=timeout, check=True)
        return out.stdout.strip()

    def pid(self):
        return self.proc.pid if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
