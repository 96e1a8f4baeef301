"""Certificates for the lab, made with the `openssl` command line at run time.

- the mesh root CA (what istiod's `istio-ca-root-cert` would be), trusted by every sidecar;
- one workload certificate per proxy with the SPIFFE URI SAN
  `spiffe://cluster.local/ns/<ns>/sa/<sa>`, signed by the mesh root (as istiod signs them);
- the ingress gateway's server certificate for the external host (Gateway `credentialName`),
  signed by a separate "router" CA the external client trusts;
- a second, untrusted CA and a workload certificate signed by it (bad-cert scenario).
"""

import base64
import json
import os
import subprocess

TRUST_DOMAIN = "cluster.local"
# The key id of the identity provider's signing key (RequestAuthentication scenarios).
JWT_KID = "lab-signing-2024"


def spiffe(ns, sa):
    return f"spiffe://{TRUST_DOMAIN}/ns/{ns}/sa/{sa}"


def _openssl(args, cwd):
    r = subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=30,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")


class Pem:
    def __init__(self, cert, key, chain=None):
        self.cert_path = cert
        self.key_path = key
        self.chain_path = chain or cert

    @property
    def cert(self):
        with open(self.cert_path, encoding="ascii") as f:
            return f.read()

    @property
    def key(self):
        with open(self.key_path, encoding="ascii") as f:
            return f.read()


class CertFactory:
    """Makes CAs and leaf certificates in `workdir` (a temporary directory)."""

    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self._n = 0

    def _name(self, stem):
        self._n += 1
        return os.path.join(self.dir, f"{self._n:02d}-{stem}")

    def ca(self, stem, org):
        base = self._name(stem)
        ext = base + ".ext"
        with open(ext, "w", encoding="ascii") as f:
            f.write(
                "[req]\ndistinguished_name=dn\n[dn]\n"
                "[v3]\n"
                "basicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature\n"
                "subjectKeyIdentifier=hash\n"
            )
        _openssl(
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", base + ".key", "-out", base + ".crt", "-days", "3650",
                "-subj", f"/O={org}", "-config", ext, "-extensions", "v3",
            ],
            self.dir,
        )
        return Pem(base + ".crt", base + ".key")

    def leaf(self, stem, ca, uri_sans=(), dns_sans=(), subject="/O=cluster.local"):
        base = self._name(stem)
        ext = base + ".ext"
        sans = [f"URI:{u}" for u in uri_sans] + [f"DNS:{d}" for d in dns_sans]
        with open(base + ".req", "w", encoding="ascii") as f:
            f.write("[req]\ndistinguished_name=dn\n[dn]\n")
        with open(ext, "w", encoding="ascii") as f:
            f.write(
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                f"subjectAltName=critical,{','.join(sans)}\n"
                "authorityKeyIdentifier=keyid\n"
            )
        _openssl(
            [
                "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", base + ".key", "-out", base + ".csr", "-subj", subject,
                "-config", base + ".req",
            ],
            self.dir,
        )
        _openssl(
            [
                "x509", "-req", "-in", base + ".csr", "-CA", ca.cert_path, "-CAkey",
                ca.key_path, "-CAcreateserial", "-days", "1", "-out", base + ".crt",
                "-extfile", ext,
            ],
            self.dir,
        )
        # Istio's SDS "default" secret carries the leaf followed by the chain up to the root.
        with open(base + ".crt", encoding="ascii") as f:
            leaf = f.read()
        with open(base + "-chain.crt", "w", encoding="ascii") as f:
            f.write(leaf + ca.cert)
        return Pem(base + "-chain.crt", base + ".key", base + "-chain.crt")


class LabPki:
    """All the certificates one lab run needs."""

    def __init__(self, workdir, external_host, identities):
        f = CertFactory(workdir)
        self.root = f.ca("mesh-root", "cluster.local")
        self.router_ca = f.ca("router-ca", "lab.example.com ingress")
        self.untrusted = f.ca("untrusted-root", "untrusted.example")
        self.gateway_server = f.leaf(
            "ingress-certs-lab",
            self.router_ca,
            dns_sans=[external_host, "*." + external_host.split(".", 1)[1]],
            subject=f"/CN={external_host}",
        )
        self.workload = {}
        for key, (ns, sa) in identities.items():
            self.workload[key] = f.leaf(key, self.root, uri_sans=[spiffe(ns, sa)])
        ns, sa = identities["predictor"]
        self.predictor_untrusted = f.leaf("predictor-untrusted", self.untrusted, uri_sans=[spiffe(ns, sa)])
        self.jwks = jwks(workdir, JWT_KID)


def jwks(workdir, kid):
    """A JWKS with one RSA public key (`kid`), as an identity provider publishes it: the keys a
    RequestAuthentication's issuer signs tokens with. The private key is not kept: the lab's
    token is signed by nobody, so its signature never verifies."""
    key = os.path.join(workdir, "jwks-signer.key")
    _openssl(["genrsa", "-out", key, "2048"], workdir)
    r = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], capture_output=True, timeout=30, check=True)
    modulus = bytes.fromhex(r.stdout.decode().strip().split("=", 1)[1])
    n = base64.urlsafe_b64encode(modulus).rstrip(b"=").decode()
    return json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": n, "e": "AQAB"}]})


def unsigned_jwt(kid, claims):
    """A JWT in the right shape (header, claims, a 256-byte signature) whose signature no key
    made: what a token signed by another issuer's key, or tampered with, looks like."""

    def part(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    header = json.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}, separators=(",", ":")).encode()
    body = json.dumps(claims, separators=(",", ":")).encode()
    signature = bytes((i * 151 + 7) % 256 for i in range(256))
    return f"{part(header)}.{part(body)}.{part(signature)}"

