#!/usr/bin/env python3
"""Writes the seed corpora in test/fuzz/corpus/<target>/ (run it after editing
the lists below; the files are kept in the tree). Seeds are named by content
hash, so re-running only adds files."""
import hashlib
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# Requests from test/http/request_parser_test.cpp's table and the handler test
# rows (the 64 KiB ones shortened: the fuzz targets use small limits too).
REQUESTS = [
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world",
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    b"GET /3 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /lf HTTP/1.1\nHost: h\n\n",
    b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"GET /\r\n\r\n",
    b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(6)) + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 120 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHo st: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tfolded\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n",
    b"PUT /x HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nabcd",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.9\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Spaces:   \t \r\n\r\n",
]

CHUNKED = [
    b"0\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
    b"3\nabc\n0\n\n",
    b"A\r\n0123456789\r\n0\r\n\r\n",
    b"a\r\n0123456789\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"1\r\nx\r\n1\r\ny\r\n1\r\nz\r\n0\r\n\r\n",
    b"zz\r\n",
    b"5\r\nhello0\r\n\r\n",
    b"ffffffffffffffffff\r\n",
    b"10000000000000000\r\nx\r\n",
    b"4 \r\nabcd\r\n0\r\n\r\n",
    b"4\t;a=b;c=\"d\"\r\nabcd\r\n0\r\n\r\n",
    b"-1\r\nx\r\n0\r\n\r\n",
    b"0\r\nA: b\r\nC: d\r\n\r\n",
    b"0\r\nA b\r\n\r\n",
    b"2\r\nab\r\n",
    b"3\r\nabcd\r\n0\r\n\r\n",
]

RANGES = [
    b"1000\nbytes=0-499", b"1000\nbytes=500-", b"1000\nbytes=-200", b"1000\nbytes=-0", b"0\nbytes=0-",
    b"0\nbytes=-5", b"10\nbytes=9-9", b"10\nbytes=10-", b"10\nbytes=5-2", b"10\nbytes=0-99999999999999999999",
    b"10\nbytes=0-1,3-4", b"10\n bytes = 1 - 2 ", b"10\nitems=0-1", b"10\nBytes=0-1", b"10\nbytes=",
    b"10\nbytes=-", b"10\nbytes=--1", b"18446744073709551615\nbytes=18446744073709551614-",
    b"18446744073709551615\nbytes=-18446744073709551615", b"1\nbytes=0-0", b"5\nbytes=+1-2",
    b"9223372036854775808\nbytes=9223372036854775807-9223372036854775808",
    b"10\nbytes=0-4,", b"10\nbytes=, 0-4", b"10\nbytes=,,0-4 ,\t,", b"10\nbytes=,", b"10\nbytes= 0-4",
    b"10\nbytes=0-4,x", b"10\nb%tes=0-4", b"0\nbytes=-1,",
]

PATHS = [
    b"/", b"/index.html", b"/a/b%20c.txt?x", b"/../etc/passwd", b"/%2e%2e/etc/passwd", b"/%2E%2E%2Fetc",
    b"/a/./b", b"/a/../b", b"/%00", b"/a%2fb", b"/%zz", b"/%4", b"/a?b#c", b"//x//y/", b"/..%2f..%2f",
    b"/.%2e/", b"/%252e%252e/", b"/a/%2e/b", b"relative", b"", b"/...", b"/.. /x", b"/a\\..\\b",
    b"/\xff\xfe", b"/%c0%ae%c0%ae/", b"/a/b/../../..", b"#/../", b"/#", b"/?/../..",
    b"http://example.com/a/b?x", b"http://example.com", b"http://h/..%2f..%2fetc/passwd", b"https://h:8080//x",
]

# For the whole connection: the fuzz handler's routes, pipelining, bodies,
# 100-continue, HEAD, and malformed requests.
CONNECTION = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n" + b"e" * 100,
    b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
    b"POST /read3 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /chunked HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /implicit HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /silent HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /throw HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /teapot?short%20and%0D%0Astout HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /error?%3Cscript%3E&amp; HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /header?a%0D%0ASet-Cookie:%20x HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /reason?Fine%0Athanks HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /value?v HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /long HTTP/1.1\r\nHost: x\r\n\r\nHEAD /long HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /abort HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /late HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /short HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /close HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
    b"GET /value HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"b" * 200,
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 70\r\n\r\n" + b"c" * 70,
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbodyGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /throw HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/2.0\r\nHost: x\r\n\r\n",
    b"GET /",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PROPFIND /dav HTTP/1.1\r\nHost: x\r\n\r\nDELETE /x HTTP/1.1\r\nHost: x\r\n\r\n",
]

# What a Redis server sends: every RESP2 type, nesting, pub/sub messages,
# binary bulk strings, and a few malformed replies.
REDIS_REPLIES = [
    b"+OK\r\n", b"-ERR unknown command 'x'\r\n", b":0\r\n:-42\r\n:9223372036854775807\r\n",
    b"$5\r\nhello\r\n", b"$0\r\n\r\n", b"$-1\r\n", b"*-1\r\n", b"*0\r\n",
    b"$4\r\na\r\nb\r\n", b"$3\r\n\x00\xff\x80\r\n",
    b"*3\r\n$7\r\nmessage\r\n$12\r\ncomet:notify\r\n$7\r\nnode0 5\r\n",
    b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n",
    b"*2\r\n*2\r\n:1\r\n$1\r\na\r\n*1\r\n*0\r\n+PONG\r\n",
    b"?bad\r\n", b"$5\r\nhelloXX", b":12x\r\n", b"$abc\r\n", b"*2\r\n:1\r\n",
]

CORPORA = {
    "fuzz_request_parser": REQUESTS + [b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + c
                                       for c in CHUNKED[:6]],
    "fuzz_chunked": CHUNKED,
    "fuzz_range": RANGES,
    "fuzz_file_path": PATHS,
    "fuzz_connection": CONNECTION,
    "fuzz_redis_reply": REDIS_REPLIES,
}


def main():
    for target, seeds in CORPORA.items():
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for s in seeds:
            name = "seed-" + hashlib.sha1(s).hexdigest()[:16]
            with open(os.path.join(d, name), "wb") as f:
                f.write(s)
        print(f"{target}: {len(seeds)} seeds in {os.path.relpath(d)}")


if __name__ == "__main__":
    main()
