"""Peer server for tendril's benchmarks: Tornado, one process, async handlers.

Run: /usr/bin/python3 bench/peers/tornado_server.py --port 0 --host 127.0.0.1
Needs Debian's python3-tornado (6.2 on bookworm).
"""
import argparse
import asyncio
import hashlib
import signal

import tornado.httpserver
import tornado.netutil
import tornado.web

HASHES = {"md5": hashlib.md5, "sha256": hashlib.sha256}

# Registered long-poll waiters: futures that /notify resolves.
waiters = set()


class PlaintextHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(b"Hello, World!")


class WaitHandler(tornado.web.RequestHandler):
    future = None

    async def get(self):
        self.set_header("Content-Type", "text/plain")
        self.future = asyncio.get_running_loop().create_future()
        waiters.add(self.future)
        # Status line and headers go out now: chunked for HTTP/1.1,
        # close-delimited for HTTP/1.0.
        await self.flush()
        try:
            n = await self.future
        except asyncio.CancelledError:  # the client hung up
            return
        self.write(str(n))

    def on_connection_close(self):
        if self.future is not None:
            waiters.discard(self.future)
            self.future.cancel()


class NotifyHandler(tornado.web.RequestHandler):
    def get(self):
        n = len(waiters)
        for future in waiters:
            if not future.done():
                future.set_result(n)
        waiters.clear()
        self.set_header("Content-Type", "text/plain")
        self.write(str(n))


class CountHandler(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.write(str(len(waiters)))


@tornado.web.stream_request_body
class HashHandler(tornado.web.RequestHandler):
    def prepare(self):
        alg = self.get_query_argument("alg", "") or "md5"
        if alg not in HASHES:
            raise tornado.web.HTTPError(400, reason="unknown alg")
        # Tornado caps bodies at 100 MB by default; a streamed one may be any size.
        self.request.connection.set_max_body_size(1 << 62)
        self.digest = HASHES[alg]()

    def data_received(self, chunk):
        self.digest.update(chunk)

    def put(self):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write(self.digest.hexdigest())

    post = put


def make_app():
    return tornado.web.Application(
        [
            (r"/plaintext", PlaintextHandler),
            (r"/wait", WaitHandler),
            (r"/notify", NotifyHandler),
            (r"/hash", HashHandler),
            (r"/.*", CountHandler),
        ],
        log_function=lambda handler: None,  # quiet: no access log
    )


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    sockets = tornado.netutil.bind_sockets(args.port, args.host)
    server = tornado.httpserver.HTTPServer(make_app())
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"listening on http://{args.host}:{port}", flush=True)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main())
