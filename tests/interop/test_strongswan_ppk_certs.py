"""Interop with strongSwan: RFC 8784 PPK and X.509 certificates with RFC 7427 signatures."""
import asyncio
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from inline_ipsec.ike import ChildSaUp, IkeSaDown, IkeSaUp
from inline_ipsec.ike.udp import IkeUdpEndpoint
from test_strongswan_psk import LOCAL_NET, PSK, REMOTE_NET, US, _check_keys, our_config

pytestmark = pytest.mark.interop
IKE, ESP = "aes256gcm16-prfsha384-ecp384", "aes256gcm16"
PPK = bytes(range(32, 96))


def _conf(our_port, local_auth, remote_auth, extra="", secrets=""):
    return f"""
connections {{
    pyike {{
        version = 2
        local_addrs = 127.0.0.1
        remote_addrs = {US}
        remote_port = {our_port}
        proposals = {IKE}
        {extra}
        local {{
            id = @charon.example
            {local_auth}
        }}
        remote {{
            id = @py.example
            {remote_auth}
        }}
        children {{
            net {{
                local_ts = {REMOTE_NET}
                remote_ts = {LOCAL_NET}
                esp_proposals = {ESP}
                start_action = none
            }}
        }}
    }}
}}
secrets {{
    {secrets}
}}
"""


async def _handshake(charon, cfg, swanctl, we_initiate=True):
    ep = await IkeUdpEndpoint.create(US, 0, 0, lookup=lambda addr: cfg)
    try:
        charon.load(swanctl(ep.natt_port))
        if we_initiate:
            ep.connect(cfg, ("127.0.0.1", charon.port_nat_t))
        else:
            proc = charon.initiate("net")
        got = {}
        while not ({IkeSaUp, ChildSaUp} <= set(got) or IkeSaDown in got):
            _, ev = await ep.next_event(15)
            got.setdefault(type(ev), ev)
        if not we_initiate:
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
        return got
    finally:
        ep.close()


def _run(charon, coro):
    try:
        return asyncio.run(coro)
    except asyncio.TimeoutError:
        pytest.fail("timed out:\n" + charon.logs())


PSK_AUTH = "auth = psk"
PSK_SECRET = f'ike-1 {{\n id-1 = @charon.example\n id-2 = @py.example\n secret = "{PSK}"\n }}'
PPK_SECRET = f"ppk-1 {{\n id = ppk-1\n secret = 0x{PPK.hex()}\n }}"


@pytest.mark.parametrize("we_initiate", [True, False])
@pytest.mark.parametrize("required", [True, False])
def test_ppk_with_strongswan(charon, we_initiate, required):
    cfg = our_config(charon, IKE, ESP, ppk_id=b"ppk-1", ppk=PPK, ppk_required=required)
    req = "yes" if required else "no"
    got = _run(charon, _handshake(
        charon, cfg, lambda port: _conf(port, PSK_AUTH, PSK_AUTH,
                                        f"ppk_id = ppk-1\n ppk_required = {req}",
                                        PSK_SECRET + "\n" + PPK_SECRET), we_initiate))
    assert IkeSaDown not in got, charon.logs()
    assert got[IkeSaUp].ppk_used
    assert "PPK" in charon.logs() and "using PPK" in charon.logs()
    _check_keys(charon, got[ChildSaUp].child)   # KEYMAT from SK_d' matches charon's


def test_ppk_optional_falls_back_when_charon_has_no_ppk(charon):
    cfg = our_config(charon, IKE, ESP, ppk_id=b"ppk-1", ppk=PPK, ppk_required=False)
    got = _run(charon, _handshake(
        charon, cfg, lambda port: _conf(port, PSK_AUTH, PSK_AUTH, "", PSK_SECRET)))
    assert IkeSaDown not in got and not got[IkeSaUp].ppk_used
    _check_keys(charon, got[ChildSaUp].child)


# ---- certificates --------------------------------------------------------------------

def _pem(obj):
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _make_pki(charon, our_kind):
    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(cn, key, issuer=None, issuer_key=None, ca=False, san=None):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name)
             .issuer_name(issuer.subject if issuer else name).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]),
                                critical=False)
        return b.sign(issuer_key or key, hashes.SHA256())

    def key(kind):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048) \
            if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    ca_key = key("ecdsa")
    ca = cert("interop CA", ca_key, ca=True)
    ours_key = key(our_kind)
    ours = cert("py.example", ours_key, ca, ca_key, san="py.example")
    theirs_key = key("ecdsa" if our_kind == "rsa" else "rsa")
    theirs = cert("charon.example", theirs_key, ca, ca_key, san="charon.example")
    files = {}
    for name, obj in (("x509ca/ca.pem", ca), ("x509/charon.pem", theirs),
                      ("private/charon.key", theirs_key)):
        path = charon.swanctl_dir / name
        path.write_bytes(_pem(obj))
        files[name.split("/")[1]] = path
    return ca, ours, ours_key, files


@pytest.mark.parametrize("we_initiate", [True, False])
@pytest.mark.parametrize("our_kind", ["ecdsa", "rsa"])
def test_certificates_with_strongswan(charon, our_kind, we_initiate):
    ca, ours, ours_key, f = _make_pki(charon, our_kind)
    cfg = our_config(charon, IKE, ESP, auth="pubkey", private_key=ours_key,
                     certificates=[ours], ca_certificates=[ca])
    cfg.psk = None
    local = f"auth = pubkey\n certs = {f['charon.pem']}"
    remote = f"auth = pubkey\n cacerts = {f['ca.pem']}"
    secrets = ""   # charon's key is loaded from $SWANCTL_DIR/private
    got = _run(charon, _handshake(charon, cfg, lambda port: _conf(port, local, remote, "",
                                                                   secrets), we_initiate))
    assert IkeSaDown not in got, charon.logs()
    assert got[IkeSaUp].remote_id == "charon.example"
    log = charon.logs()
    assert "authentication of 'py.example' with" in log and "successful" in log
    assert "RFC 7427" in log or "signature" in log.lower()
    _check_keys(charon, got[ChildSaUp].child)


@pytest.mark.parametrize("we_initiate", [True, False])
def test_rfc7383_fragmentation_with_strongswan(charon_small_fragments, we_initiate):
    """Certificates make IKE_AUTH large: both sides send it as SKF fragments."""
    charon = charon_small_fragments
    ca, ours, ours_key, f = _make_pki(charon, "rsa")
    cfg = our_config(charon, IKE, ESP, auth="pubkey", private_key=ours_key,
                     certificates=[ours], ca_certificates=[ca], fragment_size=400)
    cfg.psk = None
    local = f"auth = pubkey\n certs = {f['charon.pem']}"
    remote = f"auth = pubkey\n cacerts = {f['ca.pem']}"
    got = _run(charon, _handshake(charon, cfg, lambda port: _conf(
        port, local, remote, "fragmentation = yes", ""), we_initiate))
    assert IkeSaDown not in got, charon.logs()
    log = charon.logs()
    assert "reassembled fragmented IKE message" in log   # charon put our SKFs together
    assert "splitting IKE message" in log                # and fragmented its own for us
    _check_keys(charon, got[ChildSaUp].child)


def test_we_accept_charons_no_ppk_auth_for_a_ppk_we_lack(charon):
    """charon initiates with an optional PPK (ppk-1) we do not hold (we only know ppk-9):
    we verify its NO_PPK_AUTH notify (RFC 8784 §3) and both go on without a PPK."""
    cfg = our_config(charon, IKE, ESP, ppk_id=b"ppk-9", ppk=PPK, ppk_required=False)
    got = _run(charon, _handshake(
        charon, cfg, lambda port: _conf(port, PSK_AUTH, PSK_AUTH,
                                        "ppk_id = ppk-1\n ppk_required = no",
                                        PSK_SECRET + "\n" + PPK_SECRET), we_initiate=False))
    assert IkeSaDown not in got, charon.logs()
    assert not got[IkeSaUp].ppk_used
    log = charon.logs()
    assert "N(NO_PPK)" in log and "N(PPK_ID)" in log   # charon sent both notifies
    assert "peer didn't use PPK" in log                 # and saw we did not
    _check_keys(charon, got[ChildSaUp].child)
