"""Peer server for tendril's benchmarks: gevent + the standard library's http.server.

After monkey.patch_all(), http.server.ThreadingHTTPServer spawns one greenlet
(not an OS thread) per connection, and every socket operation yields to the
gevent hub: the modern form of a greenlet comet server.

Run: /usr/bin/python3 bench/peers/gevent_server.py --port 0 --host 127.0.0.1
Needs Debian's python3-gevent.
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import http.server  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

import gevent  # noqa: E402
from gevent.event import AsyncResult  # noqa: E402

HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256}
READ_SIZE = 64 * 1024
HELLO = b"Hello, World!"

# Registered long-poll waiters, each an AsyncResult that /notify fills in.
# Greenlets only switch when they block, so no lock is needed.
waiters = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gevent-http.server"
    # http.server sends the headers and the body with two writes; with Nagle's
    # algorithm on, the second waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # quiet: no access log
        pass

    def send_text(self, body, content_type="text/plain"):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # -- GET -----------------------------------------------------------------
    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/plaintext":
            self.send_text(HELLO)
        elif path == "/wait":
            self.wait()
        elif path == "/notify":
            n = len(waiters)
            for result in waiters:
                result.set(n)
            waiters.clear()
            self.send_text(str(n))
        else:
            self.send_text(str(len(waiters)))

    def wait(self):
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:  # HTTP/1.0: the body runs until the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()  # sends the status line and headers now

        result = AsyncResult()
        waiters.add(result)
        # Watch the socket's read side while waiting: an empty peek means the
        # client hung up. (Bytes instead mean a pipelined request: leave them.)
        watcher = gevent.spawn(self.watch_hangup)
        try:
            gevent.wait([result, watcher], count=1)
            if not result.ready() and watcher.value:
                result.wait()  # pipelined data, not a hang-up: just wait
        finally:
            watcher.kill()
            waiters.discard(result)
        if not result.ready():  # hung up
            self.close_connection = True
            return
        body = str(result.get()).encode()
        try:
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            else:
                self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def watch_hangup(self):
        """Returns True if the client sent more bytes, False on hang-up."""
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK))
        except OSError:
            return False

    # -- POST/PUT /hash ------------------------------------------------------
    def do_POST(self):
        parts = urlsplit(self.path)
        if parts.path != "/hash":
            self.send_error(404)
            return
        alg = parse_qs(parts.query).get("alg", ["md5"])[0]
        if alg not in HASHES:
            self.send_error(400, "unknown alg")
            return
        digest = HASHES[alg]()
        # http.server answers Expect: 100-continue itself (protocol_version is
        # HTTP/1.1) but leaves the body to us: stream it, chunked or not.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            for block in self.read_chunked():
                digest.update(block)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                block = self.rfile.read(min(remaining, READ_SIZE))
                if not block:
                    self.close_connection = True
                    return
                digest.update(block)
                remaining -= len(block)
        self.send_text(digest.hexdigest(), "text/plain; charset=utf-8")

    do_PUT = do_POST

    def read_chunked(self):
        rfile = self.rfile
        while True:
            size = int(rfile.readline(65537).split(b";", 1)[0], 16)
            if size == 0:
                break
            while size:
                block = rfile.read(min(size, READ_SIZE))
                if not block:
                    raise ConnectionError("body cut short")
                yield block
                size -= len(block)
            rfile.readline(65537)  # CRLF after the chunk data
        while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
            pass  # trailers


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # socketserver's default backlog of 5 drops SYNs

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request is routine, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    server = Server((args.host, args.port), Handler)
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, gevent.spawn, server.shutdown)
    print(f"listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
