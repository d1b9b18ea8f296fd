"""Capture IKEv1 key-derivation vectors from a real strongSwan charon (not a test module).

    python tests/interop/ikev1_vectors.py tests/data/ikev1/strongswan-kat.json

Each case negotiates Main Mode and one Quick Mode between our IkeV1Session (initiator) and a
charon logging at IKE and CHD level 4 (keymat_v1.c and iv_manager.c dump SKEYID, SKEYID_d/a/e,
the encryption key Ka, the Phase 1 and Quick Mode IVs, the HASH_I/HASH_R inputs and outputs,
the DH secrets and each direction's KEYMAT seed and keys). The JSON keeps, per case, the
inputs as they went over the wire (nonces, cookies, PSK) or as charon printed them (g^xy,
HASH data, SA seeds) and charon's outputs, so `tests/ike/test_ikev1_keymat.py` checks our
pure functions against values strongSwan computed, not against themselves.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent / "src")]

from charon_harness import Charon  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from inline_ipsec.ike import ChildConfig, ChildSaUp, Identity  # noqa: E402
from inline_ipsec.ike.v1 import IkeV1Config, Phase1Proposal  # noqa: E402
from inline_ipsec.ike.v1.udp import create_endpoint  # noqa: E402

PSK = "ikev1-kat-psk-0123456789"
#: name: (IKE proposal, ESP proposal, authentication method)
CASES = {
    # SHA-256 PRF, AES-128: SKEYID_e (32 bytes) truncated to the key
    "psk-aes128-sha256-modp2048-gcm128": ("aes128-sha256-modp2048", "aes128gcm16", "psk"),
    # SHA-1 PRF (20 bytes) with AES-256 and 3DES: SKEYID_e expanded (RFC 2409 Appendix B);
    # PFS in Quick Mode, KEYMAT of 64 bytes (expanded, §5.5)
    "psk-aes256-sha1-ecp256-pfs-cbc256": ("aes256-sha1-ecp256", "aes256-sha256-ecp256", "psk"),
    "psk-3des-sha1-modp1024-3des": ("3des-sha1-modp1024", "3des-sha1", "psk"),
    # signatures: SKEYID = prf(Ni | Nr, g^xy)
    "rsa-aes128-sha256-modp2048-gcm256-pfs": ("aes128-sha256-modp2048",
                                              "aes256gcm16-modp2048", "rsa"),
}


def _dumps(log: str, group: str, name: str) -> list[str]:
    """Every `[GROUP] name => N bytes @ 0x..` hex dump of the log, as hex strings."""
    out: list[str] = []
    lines = log.splitlines()
    pat = re.compile(rf"\[{group}\] {re.escape(name)} => (\d+) bytes")
    for i, line in enumerate(lines):
        m = pat.search(line)
        if not m:
            continue
        size, hexs = int(m.group(1)), ""
        for follow in lines[i + 1:]:
            h = re.search(rf"\[{group}\]\s+\d+: ((?:[0-9A-F]{{2}} ?)+)", follow)
            if not h:
                break
            hexs += h.group(1).replace(" ", "").lower()
        out.append(hexs[:2 * size])
    return out


def _pki(charon: Charon):
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(cn, key, issuer=None, issuer_key=None, ca=False):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name)
             .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                                critical=False)
        return b.sign(issuer_key or key, hashes.SHA256())

    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
    ca = cert("kat CA", keys[0], ca=True)
    ours, theirs = cert("py.example", keys[1], ca, keys[0]), cert("charon.example", keys[2],
                                                                  ca, keys[0])
    pem = serialization.Encoding.PEM
    (charon.swanctl_dir / "x509ca/ca.pem").write_bytes(ca.public_bytes(pem))
    (charon.swanctl_dir / "x509/charon.pem").write_bytes(theirs.public_bytes(pem))
    (charon.swanctl_dir / "private/charon.key").write_bytes(keys[2].private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca, ours, keys[1]


async def _case(name: str) -> dict:
    ike, esp, method = CASES[name]
    tmp = Path(tempfile.mkdtemp())
    charon = Charon(tmp)
    charon.conf.write_text(charon.conf.read_text().replace("ike = 2", "ike = 4"))
    charon.start()
    try:
        ep = await create_endpoint("127.0.0.2", 0, 0)
        auth = "auth = psk" if method == "psk" else "auth = pubkey\n certs = charon.pem"
        rauth = "auth = psk" if method == "psk" else "auth = pubkey\n cacerts = ca.pem"
        kw: dict = {"psk": PSK.encode()}
        if method == "rsa":
            ca, ours, key = _pki(charon)
            kw = {"private_key": key, "certificates": [ours], "ca_certificates": [ca]}
        charon.load(f"""
connections {{
  kat {{
    version = 1
    local_addrs = 127.0.0.1
    remote_addrs = 127.0.0.2
    remote_port = {ep.natt_port}
    proposals = {ike}
    local {{
      id = @charon.example
      {auth}
    }}
    remote {{
      id = @py.example
      {rauth}
    }}
    children {{ net {{
      local_ts = 239.199.2.0/24
      remote_ts = 239.199.1.0/24
      esp_proposals = {esp}
      start_action = none
    }} }}
  }}
}}
secrets {{ ike-1 {{
  id-1 = @charon.example
  id-2 = @py.example
  secret = "{PSK}"
}} }}
""")
        cfg = IkeV1Config(
            proposals=[Phase1Proposal.parse(ike, "pre-shared-keys" if method == "psk"
                                            else "rsa-signatures")],
            local_id=Identity.parse("@py.example"), remote_id=Identity.parse("@charon.example"),
            natt_port=charon.port_nat_t,
            children=[ChildConfig(name="net", proposals=[esp], local_ts=["239.199.1.0/24"],
                                  remote_ts=["239.199.2.0/24"])], **kw)
        session = ep.connect(cfg, ("127.0.0.1", charon.port_nat_t))
        while True:
            _, event = await ep.next_event(15)
            if isinstance(event, ChildSaUp):
                break
        await asyncio.sleep(0.5)
        ep.close()
    finally:
        charon.stop()
    log = charon.logs() if len(charon.logs()) < 20000 else charon.log.read_text()
    sa = session.sa
    child = event.child
    qm = next(iter(session.done.values()))
    d = {k: _dumps(log, "IKE", k) for k in (
        "shared Diffie Hellman secret", "SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e",
        "encryption key Ka", "initial IV", "HASH_I data", "HASH_I", "HASH_R data", "HASH_R")}
    qm_ivs = _dumps(log, "IKE", f"next IV for MID {qm.mid}")
    p1_ivs = _dumps(log, "IKE", "next IV for MID 0")
    c = {k: _dumps(log, "CHD", k) for k in (
        "DH secret", "initiator SA seed", "responder SA seed", "encryption initiator key",
        "encryption responder key", "integrity initiator key", "integrity responder key")}
    return {
        "ike_proposal": ike, "esp_proposal": esp, "auth": method,
        "hash": sa.suite.hash_name, "phase1_cipher": sa.suite.cipher,
        "key_len": sa.suite.key_len, "block": sa.suite.block,
        "psk": PSK.encode().hex() if method == "psk" else None,
        "cky_i": sa.cky_i.hex(), "cky_r": sa.cky_r.hex(),
        "nonce_i": sa.nonce_i.hex(), "nonce_r": sa.nonce_r.hex(),
        "g_xi": sa.g_xi.hex(), "g_xr": sa.g_xr.hex(),
        "g_xy": d["shared Diffie Hellman secret"][0],
        "skeyid": d["SKEYID"][0], "skeyid_d": d["SKEYID_d"][0], "skeyid_a": d["SKEYID_a"][0],
        "skeyid_e": d["SKEYID_e"][0], "enc_key": d["encryption key Ka"][0],
        "phase1_iv": d["initial IV"][0],
        "hash_i_data": d["HASH_I data"][0], "hash_i": d["HASH_I"][0],
        "hash_r_data": d["HASH_R data"][0], "hash_r": d["HASH_R"][0],
        "phase1_last_block": p1_ivs[-1], "qm_mid": qm.mid, "qm_ivs": qm_ivs,
        "qm_nonce_i": qm.nonce_i.hex(), "qm_nonce_r": qm.nonce_r.hex(),
        # we initiated the Quick Mode: our inbound SPI is the initiator's
        "protocol": child.protocol, "spi_i": f"{child.spi_in:08x}",
        "spi_r": f"{child.spi_out:08x}",
        "cipher": child.cipher, "integrity": child.integrity,
        "qm_dh_secret": c["DH secret"][0] if c["DH secret"] else "",
        "seed_i": c["initiator SA seed"][0], "seed_r": c["responder SA seed"][0],
        "encr_i": c["encryption initiator key"][0], "encr_r": c["encryption responder key"][0],
        "integ_i": c["integrity initiator key"][0] if c["integrity initiator key"] else "",
        "integ_r": c["integrity responder key"][0] if c["integrity responder key"] else "",
    }


def main(out: str) -> None:
    cases = {name: asyncio.run(_case(name)) for name in CASES}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({
        "source": "strongSwan 5.9 charon, filelog ike = 4 / chd = 4, against IkeV1Session "
                  "(captured by tests/interop/ikev1_vectors.py)",
        "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
