"""Certificates for the HTTPS tests and benchmarks, made by the openssl tool in
a temporary directory: self-signed ECDSA P-256 (each its own CA), for localhost
and 127.0.0.1, for another name (SNI), and one that expired in 2020.

    certs = Certs()            # certs.cert("localhost"), certs.key("localhost"), certs.dir
    certs.cleanup()
"""
import os
import shutil
import subprocess
import tempfile

CA_CONFIG = """[ca]
default_ca = d
[d]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
"""


def have_openssl():
    return shutil.which("openssl") is not None


class Certs:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tendril-certs-")
        self.make("localhost", "DNS:localhost,IP:127.0.0.1")
        self.make("b.test", "DNS:b.test")
        self.make_expired("expired", "DNS:localhost,IP:127.0.0.1")

    def cert(self, name):
        return os.path.join(self.dir, name + ".crt")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def _run(self, *args):
        subprocess.run(["openssl", *args], cwd=self.dir, check=True, capture_output=True, timeout=30)

    def make(self, name, san, days=2):
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-days", str(days), "-subj", f"/CN={name}", "-addext", f"subjectAltName={san}",
                  "-keyout", self.key(name), "-out", self.cert(name))

    def make_expired(self, name, san):
        # `openssl req -x509` cannot date a certificate in the past; `openssl ca` can.
        ca = os.path.join(self.dir, "ca-" + name)
        os.mkdir(ca)
        open(os.path.join(ca, "index.txt"), "w").close()
        with open(os.path.join(ca, "serial"), "w") as f:
            f.write("01\n")
        with open(os.path.join(ca, "ca.cnf"), "w") as f:
            f.write(CA_CONFIG)
        csr = os.path.join(ca, "req.csr")
        self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-subj", "/CN=localhost", "-addext", f"subjectAltName={san}", "-keyout", self.key(name), "-out", csr)
        subprocess.run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", self.key(name),
                        "-in", csr, "-out", self.cert(name), "-startdate", "20200101000000Z",
                        "-enddate", "20200102000000Z"], cwd=ca, check=True, capture_output=True, timeout=30)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)
