"""TLS with Confluent's own client: a CA made here (with `cryptography`) signs the server's
certificate, `clickstream up` serves every listener over HTTPS with it, and
`SchemaRegistryClient` with `ssl.ca.location` and `basic.auth.user.info` registers a schema,
as it would against a Confluent Schema Registry behind TLS and HTTP Basic authentication.

Run: CLICKSTREAM_BIN=/path/to/clickstream python -m pytest tests/python/test_tls.py
"""

import datetime
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conftest import post_json

TOKEN = "python-tls-admin-token-0123456789"
SUBJECT = "acme.clickstream.tls-check-value"
SCHEMA = json.dumps({"type": "record", "name": "TlsCheck", "fields": [{"name": "n", "type": "long"}]})


@dataclass
class Pki:
    """A test CA's certificate, and a server certificate it signed with its key (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def _key_usage(**granted) -> x509.KeyUsage:
    usages = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    usages.update(granted)
    return x509.KeyUsage(**usages)


def make_pki(directory: Path) -> Pki:
    """A CA and a certificate for 127.0.0.1 and localhost, valid for a day."""
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clickstream pytest CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=directory / "ca.pem", cert=directory / "cert.pem", key=directory / "key.pem")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


def test_confluent_client_registers_a_schema_over_https_with_the_admin_token(start_up, tmp_path):
    pki = make_pki(tmp_path)
    up = start_up(
        {
            "CLICKSTREAM_ADMIN_TOKEN": TOKEN,
            "CLICKSTREAM_TLS_CERT": str(pki.cert),
            "CLICKSTREAM_TLS_KEY": str(pki.key),
        },
        ca_file=pki.ca,
    )
    log = re.sub(r"\x1b\[[0-9;]*m", "", up.log_path.read_text())
    assert "ingest=https://127.0.0.1:" in log, "the start-up line says https"

    admin = SchemaRegistryClient(
        {
            "url": up.registry_url,
            "ssl.ca.location": str(pki.ca),
            "basic.auth.user.info": f"admin:{TOKEN}",
        }
    )
    schema_id = admin.register_schema(SUBJECT, Schema(SCHEMA, "AVRO"))
    latest = admin.get_latest_version(SUBJECT)
    assert latest.schema_id == schema_id
    assert json.loads(latest.schema.schema_str)["name"] == "TlsCheck"
    # The pipeline registered the raw schema through its own registry over HTTPS.
    assert "acme.clickstream.raw.events-value" in admin.get_subjects()

    # A client that does not trust the CA is refused by its own TLS checks.
    untrusting = SchemaRegistryClient({"url": up.registry_url})
    with pytest.raises(Exception) as refused:
        untrusting.get_subjects()
    assert "certificate" in str(refused.value).lower(), refused.value

    # Plain HTTP on the TLS port: a 400 that says to use https.
    plain = post_json(up.base.replace("https://", "http://") + "/collect", [])
    assert plain.status == 400
    assert "https://" in plain.body["message"]

    # Events still travel over HTTPS.
    counts = up.collect(
        [{"id": 1, "type": "page_view", "event": {
            "user_agent": "pytest", "ip": "10.0.0.1", "timestamp": "2024-05-01T12:00:00Z"}}]
    )
    assert counts["valid_count"] == 1
