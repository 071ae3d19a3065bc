"""A throw-away PKI for the TLS tests, made once per test session with the
openssl command line: a root CA, an intermediate, and leaf certificates
(name.pem with the chain, name.key)."""

import shutil
import subprocess

import pytest

OPENSSL = shutil.which("openssl")


class Pki:
    """Files of the test CA: root, an intermediate, and leaf certificates
    (name.pem with the chain, name.key)."""

    def __init__(self, root):
        self.root = root

    def path(self, name):
        return str(self.root / name)

    @property
    def ca(self):
        return self.path("ca.pem")


def _openssl(args, cwd):
    p = subprocess.run([OPENSSL] + args, cwd=str(cwd), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, "openssl %s failed:\n%s" % (
        " ".join(args), p.stderr.decode(errors="replace"))


def _key(name, cwd, rsa=False):
    if rsa:
        _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt",
                  "rsa_keygen_bits:2048", "-out", name + ".key"], cwd)
    else:
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-out", name + ".key"], cwd)


def _sign(name, cn, issuer, cwd, ca=False, san=None):
    ext = cwd / (name + ".ext")
    if ca:
        ext.write_text("basicConstraints=critical,CA:TRUE\n"
                       "keyUsage=critical,keyCertSign,cRLSign\n")
    else:
        ext.write_text("basicConstraints=CA:FALSE\n"
                       "subjectAltName=%s\n"
                       % ",".join(n if n.startswith("IP:") else "DNS:" + n
                                  for n in (san or [cn])))
    _openssl(["req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn,
              "-out", name + ".csr"], cwd)
    _openssl(["x509", "-req", "-in", name + ".csr", "-CA", issuer + ".pem",
              "-CAkey", issuer + ".key", "-set_serial",
              str(abs(hash(name)) % 10**9 + 1), "-days", "3",
              "-extfile", ext.name, "-out", name + ".crt"], cwd)


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    _key("ca", root)
    _openssl(["req", "-x509", "-new", "-key", "ca.key", "-subj",
              "/CN=eddy test root", "-days", "3", "-addext",
              "basicConstraints=critical,CA:TRUE", "-addext",
              "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem"],
             root)
    _key("inter", root)
    _sign("inter", "eddy test intermediate", "ca", root, ca=True)
    (root / "inter.pem").write_bytes((root / "inter.crt").read_bytes())
    leaves = [
        ("default", "default.test", "ca", False, None),
        ("a", "a.test", "ca", False, None),
        # Signed by the intermediate: the file holds leaf + intermediate,
        # and clients trusting only the root must still verify it.
        ("b", "b.test", "inter", True, ["b.test", "*.b.test"]),
        ("c", "c.test", "ca", False, None),
        ("a2", "a2.test", "ca", False, ["a2.test", "a.test"]),
        # For https upstreams on loopback.
        ("localhost", "localhost", "inter", False,
         ["localhost", "IP:127.0.0.1"]),
    ]
    for name, cn, issuer, rsa, san in leaves:
        _key(name, root, rsa=rsa)
        _sign(name, cn, issuer, root, san=san)
        chain = (root / (name + ".crt")).read_bytes()
        if issuer == "inter":
            chain += (root / "inter.crt").read_bytes()
        (root / (name + ".pem")).write_bytes(chain)
    return Pki(root)
