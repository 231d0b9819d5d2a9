"""A small local certificate authority for TLS between postmon's hosts.

Built on the ``cryptography`` package rather than the ``openssl`` command:
it is already installed (bumble depends on it), it is a typed Python API
(no argv quoting, no version-dependent flags such as ``-addext`` or config
files for subjectAltName), and private keys are written owner-only and
atomically by the same code path as every other secret.

The CA signs server certificates for the broker and InfluxDB hosts; clients
trust only this CA (``[mqtt] tls_ca_file``), so a certificate from any other
issuer, or for another host name, fails verification. Keys are ECDSA P-256:
short, fast handshakes, supported by Mosquitto/OpenSSL and Python's ssl.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from postmon.security.secrets import write_secret_file

CA_VALID_DAYS = 3650  # the CA outlives many server certificates; rotate servers, not the CA
SERVER_VALID_DAYS = 825  # the longest validity current TLS clients accept for a server cert
DEFAULT_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertPaths:
    """Where one run of ``make_ca_and_server`` wrote its files."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "postmon"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # servers start unattended; the file mode protects it
    ).decode()
    write_secret_file(path, pem.strip(), multiline=True)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o644)  # certificates are public


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_ca(
    common_name: str = "postmon local CA", *, now: dt.datetime | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA that may sign server certificates only (pathlen 0)."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_server_cert(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    *,
    now: dt.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for ``hosts`` (IP addresses and DNS names) signed by the CA."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or IP address")
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def load_ca(out: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The CA previously written to ``out``, or None if there is none."""
    cert_p, key_p = out / "ca.crt", out / "ca.key"
    if not (cert_p.exists() and key_p.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_p.read_bytes())
    key = serialization.load_pem_private_key(key_p.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_p} is not an EC private key written by postmon")
    return cert, key


def make_ca_and_server(out: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> CertPaths:
    """Write ``ca.crt``/``ca.key`` (reused if present) and a fresh
    ``server.crt``/``server.key`` for ``hosts`` into ``out``.

    Reusing the CA means re-running with new hosts does not invalidate the
    CA file already distributed to clients.
    """
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_ca(out)
    if loaded is None:
        ca_cert, ca_key = make_ca()
        _write_key(out / "ca.key", ca_key)
        _write_cert(out / "ca.crt", ca_cert)
    else:
        ca_cert, ca_key = loaded
    cert, key = make_server_cert(ca_cert, ca_key, hosts)
    _write_key(out / "server.key", key)
    _write_cert(out / "server.crt", cert)
    return CertPaths(out / "ca.crt", out / "ca.key", out / "server.crt", out / "server.key")
