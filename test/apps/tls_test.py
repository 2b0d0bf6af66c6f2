"""HTTPS: the apps with --tls-cert/--tls-key, talked to by curl --cacert, Python's ssl
and openssl s_client; bad handshakes (plaintext to the TLS port, a truncated
ClientHello, garbage, an expired certificate, an unknown CA) each get a clear error
and never stop the server from serving the others. Every wait is bounded."""
import hashlib
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.append(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from harness import App, app_path, have  # noqa: E402
from tls_certs import Certs, have_openssl  # noqa: E402

CERTS = None


def setUpModule():
    global CERTS
    if have_openssl():
        CERTS = Certs()


def tearDownModule():
    if CERTS:
        CERTS.cleanup()


def tls_app(name, *args, cert="localhost"):
    return App(name, "--tls-cert", CERTS.cert(cert), "--tls-key", CERTS.key(cert), *args)


def context(ca="localhost"):
    return ssl.create_default_context(cafile=CERTS.cert(ca))


def https(app, method, path, body=None, headers=None, ca="localhost"):
    c = http.client.HTTPSConnection("127.0.0.1", app.port, timeout=10, context=context(ca))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def hello_works(app):
    status, _, body = https(app, "GET", "/plaintext")
    return status == 200 and body == b"Hello, World!"


@unittest.skipUnless(have_openssl(), "no openssl tool to make certificates")
class HttpsTest(unittest.TestCase):
    def test_curl_and_python_over_https_on_every_app(self):
        with tls_app("hello") as hello:
            self.assertTrue(hello.listening_line.startswith("listening on https://127.0.0.1:"), hello.listening_line)
            if have("curl"):
                out = subprocess.run(["curl", "-sS", "--cacert", CERTS.cert("localhost"),
                                      f"https://localhost:{hello.port}/plaintext"],
                                     capture_output=True, text=True, timeout=10)
                self.assertEqual((out.returncode, out.stdout), (0, "Hello, World!"), out.stderr)
            # Keep-alive: many requests on one TLS connection.
            c = http.client.HTTPSConnection("127.0.0.1", hello.port, timeout=10, context=context())
            for _ in range(50):
                c.request("GET", "/plaintext")
                r = c.getresponse()
                self.assertEqual((r.status, r.read()), (200, b"Hello, World!"))
            c.close()
        with tls_app("hashd") as hashd:
            body = os.urandom(3 * 1024 * 1024 + 5)
            status, _, digest = https(hashd, "POST", "/?alg=sha256", body=body)
            self.assertEqual((status, digest.decode()), (200, hashlib.sha256(body).hexdigest()))
        with tempfile.TemporaryDirectory() as d:
            blob = os.path.join(d, "blob.bin")
            data = os.urandom(5 * 1024 * 1024 + 3)
            with open(blob, "wb") as f:
                f.write(data)
            with tls_app("blobd", "--blob", blob, "--chunk-size", "65536") as blobd:
                status, headers, got = https(blobd, "GET", "/")
                self.assertEqual(status, 200)
                self.assertEqual(got, data)  # through TLS, not sendfile(2): encrypted in user space here
                status, headers, got = https(blobd, "GET", "/", headers={"Range": "bytes=1000-1999"})
                self.assertEqual((status, got), (206, data[1000:2000]))
        with tls_app("comet") as comet:
            raw = context().wrap_socket(socket.create_connection(("127.0.0.1", comet.port), timeout=5),
                                        server_hostname="localhost")
            raw.sendall(b"GET /wait HTTP/1.0\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += raw.recv(4096)
            deadline = time.monotonic() + 5
            while https(comet, "GET", "/")[2] != b"1" and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertEqual(https(comet, "GET", "/notify")[2], b"1")
            rest = head.split(b"\r\n\r\n", 1)[1]
            while True:
                chunk = raw.recv(4096)
                if not chunk:
                    break
                rest += chunk
            self.assertEqual(rest, b"1")
            raw.close()

    def test_threads_and_sni(self):
        with App("hello", "--threads", "2", "--tls-cert", CERTS.cert("localhost"), "--tls-key", CERTS.key("localhost"),
                 "--tls-cert", CERTS.cert("b.test"), "--tls-key", CERTS.key("b.test")) as app:
            for _ in range(20):
                self.assertTrue(hello_works(app))
            # SNI b.test: the b.test certificate (verified against itself as CA, and by name).
            s = context("b.test").wrap_socket(socket.create_connection(("127.0.0.1", app.port), timeout=5),
                                              server_hostname="b.test")
            self.assertEqual(s.getpeercert()["subjectAltName"], (("DNS", "b.test"),))
            s.sendall(b"GET /plaintext HTTP/1.0\r\n\r\n")
            self.assertIn(b"Hello, World!", s.recv(4096) + s.recv(4096))
            s.close()

    def test_bad_handshakes_are_clear_errors_and_the_server_keeps_serving(self):
        with tls_app("hello", "--header-timeout", "0.5") as app:
            # Plaintext HTTP to the TLS port: a plaintext 400 that says so.
            out = app.raw(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(out.startswith(b"HTTP/1.0 400 Bad Request\r\n"), out)
            self.assertIn(b"Client sent an HTTP request to an HTTPS server.", out)
            # A truncated ClientHello (a record header promising 512 bytes, 20 of them, then EOF).
            s = socket.create_connection(("127.0.0.1", app.port), timeout=5)
            s.sendall(b"\x16\x03\x01\x02\x00" + os.urandom(20))
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(100), b"")
            s.close()
            # Garbage that starts like a TLS record: an alert, then the close.
            s = socket.create_connection(("127.0.0.1", app.port), timeout=5)
            s.sendall(b"\x16\x03\x01\x00\x05hello")
            got = s.recv(100)
            self.assertTrue(got == b"" or got[0] == 0x15, got)  # 0x15: a TLS alert record
            s.close()
            # A client that does not trust the certificate.
            with self.assertRaises(ssl.SSLCertVerificationError):
                https(app, "GET", "/plaintext", ca="b.test")
            # openssl s_client offering only TLS 1.1: refused (the server wants 1.2+).
            p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{app.port}", "-tls1_1"],
                               input=b"", capture_output=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            # A client that connects and sends nothing is dropped at the header timeout; the others are served meanwhile.
            idle = socket.create_connection(("127.0.0.1", app.port), timeout=5)
            self.assertTrue(hello_works(app))
            self.assertEqual(idle.recv(1), b"")  # closed after 0.5 s without a ClientHello
            idle.close()
            self.assertTrue(hello_works(app))
            self.assertEqual(app.stop(), 0)
            log = app.stderr_text()
            self.assertIn("TLS handshake error from 127.0.0.1:", log)
            self.assertIn("client sent an HTTP request to an HTTPS server", log)
            self.assertIn("alert unknown ca", log)
            self.assertIn("timeout", log)

    def test_an_expired_certificate_is_refused_by_clients_and_the_server_says_why(self):
        with tls_app("hello", cert="expired") as app:
            with self.assertRaises(ssl.SSLCertVerificationError) as e:
                https(app, "GET", "/plaintext", ca="expired")
            self.assertIn("certificate has expired", str(e.exception))
            if have("curl"):
                out = subprocess.run(["curl", "-sS", "--cacert", CERTS.cert("expired"),
                                      f"https://localhost:{app.port}/plaintext"],
                                     capture_output=True, text=True, timeout=10)
                self.assertNotEqual(out.returncode, 0)
                self.assertIn("expired", out.stderr)
            p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{app.port}", "-CAfile",
                                CERTS.cert("expired"), "-verify_return_error"],
                               input=b"", capture_output=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"certificate has expired", p.stdout + p.stderr)
            self.assertEqual(app.stop(), 0)
            self.assertIn("alert certificate expired", app.stderr_text())

    def test_bad_tls_flags_exit_2(self):
        missing = os.path.join(CERTS.dir, "missing.pem")
        for args, says in (
                (["--tls-cert", missing, "--tls-key", CERTS.key("localhost")], "cannot load the certificate"),
                (["--tls-cert", CERTS.cert("localhost"), "--tls-key", CERTS.key("b.test")], "key values mismatch"),
                (["--tls-cert", CERTS.cert("localhost")], "come in pairs"),
                (["--tls-cert", CERTS.key("localhost"), "--tls-key", CERTS.key("localhost")], "cannot load the certificate")):
            p = subprocess.run([app_path("hello"), "--port", "0", *args], capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(says, p.stderr)


if __name__ == "__main__":
    unittest.main()
