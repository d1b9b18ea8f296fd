"""`inline-ipsec run` on whole SRX configurations (zones, a policy-based and a route-based VPN):
the load warning at start-up, the policy stage moving with the run's test traffic, and the
policy, zone and PKI show commands over the control socket."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inline_ipsec.cli import main
from inline_ipsec.gateway.control import query

CONFIGS = Path(__file__).parent.parent / "data" / "configs"


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "srx-a.example.net")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    crt, kf = tmp_path / "a.crt", tmp_path / "a.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kf.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return crt, kf


def test_run_whole_configurations_with_policies(tmp_path: Path) -> None:
    crt, kf = _self_signed(tmp_path)
    pki = tmp_path / "pki"
    assert main(["request", "security", "pki", "local-certificate", "load", "filename",
                 str(crt), "key", str(kf), "certificate-id", "srx-a", "--pki-dir",
                 str(pki)]) == 0
    sock = tmp_path / "gw.sock"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inline_ipsec", "run", str(CONFIGS / "pair-a.conf"), "--peer",
         str(CONFIGS / "pair-b.conf"), "--duration", "4", "--control", str(sock),
         "--pki-dir", str(pki)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)                        # the run's test traffic crosses both VPNs
        hits = query(str(sock), "security policies hit-count")
        rows = {ln.split()[3]: int(ln.split()[4]) for ln in hits.splitlines()[2:]
                if ln.strip() and ln.split()[0].isdigit()}
        assert rows["to-b"] > 0                  # pb: permitted, one count per session
        # rb's test flow is UDP; web-out permits HTTP and ping only: the default policy
        default = int(hits.rsplit("count: ", 1)[1])
        assert default > 0
        flow = query(str(sock), "security flow statistics")
        assert int(flow.split("Packets dropped: ")[1].split()[0]) >= default
        pol = query(str(sock), "security policies")
        assert "  Policy: to-b, State: enabled, Index: 4" in pol
        assert "Security zone: untrust" in query(str(sock), "security zones")
        assert "Certificate identifier: srx-a" in query(str(sock),
                                                         "security pki local-certificate")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.count("warning:") == 1
    assert f"{CONFIGS / 'pair-a.conf'}: warning: 7 statements ignored, outside the model: " \
        "version (line 1); system host-name (line 2)" in out
