"""IKEv1 against a real strongSwan 5.9 charon (`version = 1`), both directions, on loopback.

    us (127.0.0.2, IkeV1Manager)                 charon (127.0.0.1, private ports)
    Main / Aggressive Mode + Quick Mode  <---->  swanctl connection "v1"

Covered: Main Mode with pre-shared keys over AES-CBC and 3DES, SHA1/SHA2, MODP and ECP groups,
ESP with AES-GCM, AES-CBC/HMAC and 3DES/HMAC, with and without PFS; Aggressive Mode (charon
needs `i_dont_care_about_security_and_use_aggressive_mode_psk`); RSA and ECDSA (P-256, P-384,
RFC 4754) certificates; Quick Mode rekey, Delete and ISAKMP SA deletion from each side; DPD
both ways and a dead charon; IKE fragmentation both ways. Child keys are compared byte for
byte with those charon logs at CHD level 4 (keymat_v1.c).
"""
from __future__ import annotations

import asyncio
import datetime
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from charon_harness import Charon, available, child_keys_from_log
from helpers import missing
from inline_ipsec.ike import (ChildConfig, ChildSaDown, ChildSaRekeyed, ChildSaUp, Identity,
                              IkeSaDown, IkeSaUp)
from inline_ipsec.ike.v1 import IkeV1Config, Phase1Proposal
from inline_ipsec.ike.v1.udp import create_endpoint
from test_strongswan_rekey import child_states

pytestmark = pytest.mark.interop

US = "127.0.0.2"
PSK = "ikev1-interop-psk-0123456789"
OUR_NET, THEIR_NET = "239.199.1.0/24", "239.199.2.0/24"
AGGRESSIVE_PSK = "i_dont_care_about_security_and_use_aggressive_mode_psk = yes"


def _start(tmp_path, extra: str = "") -> Charon:
    if not available():
        missing("strongSwan charon is not installed (/usr/lib/ipsec/charon)")
    c = Charon(tmp_path, extra)
    c.start()
    return c


@pytest.fixture
def charon(tmp_path):
    c = _start(tmp_path, f"{AGGRESSIVE_PSK}\n    delete_rekeyed_delay = 1")
    try:
        yield c
    finally:
        c.stop()


# ---- configuration ------------------------------------------------------------------------

def _pki(charon: Charon, kind: str):
    """A CA and certificates for py.example (ours) and charon.example, of `kind`."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        if kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1() if kind == "ecdsa256" else ec.SECP384R1())

    def cert(cn, k, issuer=None, issuer_key=None, ca=False):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name)
             .issuer_name(issuer.subject if issuer else name).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                                critical=False)
        return b.sign(issuer_key or k, hashes.SHA256())
    ca_key, ours_key, theirs_key = key(), key(), key()
    ca = cert("ikev1 interop CA", ca_key, ca=True)
    ours, theirs = cert("py.example", ours_key, ca, ca_key), cert("charon.example",
                                                                  theirs_key, ca, ca_key)
    pem = serialization.Encoding.PEM
    (charon.swanctl_dir / "x509ca/ca.pem").write_bytes(ca.public_bytes(pem))
    (charon.swanctl_dir / "x509/charon.pem").write_bytes(theirs.public_bytes(pem))
    (charon.swanctl_dir / "private/charon.key").write_bytes(theirs_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return {"private_key": ours_key, "certificates": [ours], "ca_certificates": [ca]}


def swanctl_conf(our_port: int, ike: str, esp: str, *, aggressive: bool = False,
                 auth: str = "psk", extra: str = "") -> str:
    local = remote = "auth = psk"
    if auth != "psk":
        local, remote = "auth = pubkey\n      certs = charon.pem", \
            "auth = pubkey\n      cacerts = ca.pem"
    return f"""
connections {{
  v1 {{
    version = 1
    aggressive = {"yes" if aggressive else "no"}
    local_addrs = 127.0.0.1
    remote_addrs = {US}
    remote_port = {our_port}
    proposals = {ike}
    {extra}
    local {{
      id = @charon.example
      {local}
    }}
    remote {{
      id = @py.example
      {remote}
    }}
    children {{
      net {{
        local_ts = {THEIR_NET}
        remote_ts = {OUR_NET}
        esp_proposals = {esp}
        mode = tunnel
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-v1 {{
    id-1 = @charon.example
    id-2 = @py.example
    secret = "{PSK}"
  }}
}}
"""


METHOD = {"psk": "pre-shared-keys", "rsa": "rsa-signatures",
          "ecdsa256": "ecdsa-signatures-256", "ecdsa384": "ecdsa-signatures-384"}


def our_config(charon: Charon, ike: str, esp: str, auth: str = "psk", creds=None,
               **kw) -> IkeV1Config:
    creds = creds or {"psk": PSK.encode()}
    return IkeV1Config(proposals=[Phase1Proposal.parse(ike, METHOD[auth])],
                       local_id=Identity.parse("@py.example"),
                       remote_id=Identity.parse("@charon.example"),
                       natt_port=charon.port_nat_t,
                       children=[ChildConfig(name="net", proposals=[esp], local_ts=[OUR_NET],
                                             remote_ts=[THEIR_NET])], **creds, **kw)


# ---- helpers --------------------------------------------------------------------------------

async def _until(ep, cls, timeout: float = 15.0):
    while True:
        _, event = await ep.next_event(timeout)
        if isinstance(event, cls):
            return event
        if isinstance(event, IkeSaDown) and cls is not IkeSaDown:
            raise AssertionError(f"ISAKMP SA went down: {event}")


async def _swanctl(charon: Charon, *args: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: charon.swanctl(*args))


async def _list_sas_until(charon: Charon, done, timeout: float = 5.0) -> str:
    """`swanctl --list-sas` once `done(output)` holds (charon may still be processing our
    last message), or the last output after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        sas = await _swanctl(charon, "--list-sas")
        if done(sas) or time.monotonic() > deadline:
            return sas
        await asyncio.sleep(0.1)


def check_keys(charon: Charon, child) -> None:
    """Our KEYMAT (RFC 2409 §5.5) equals what charon derived (CHD level-4 log)."""
    deadline = time.monotonic() + 5
    while True:
        sets = [s for s in child_keys_from_log(charon.logs())
                if f"{child.spi_in:08x}" in s.get("spis", "")]
        if sets or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sets, "charon logged no keys for this child SA:\n" + charon.logs()
    got = dict(sets[-1])
    got.pop("spis")
    mine = {"encryption_initiator": child.key_out if child.initiator else child.key_in,
            "encryption_responder": child.key_in if child.initiator else child.key_out}
    if child.integrity:
        mine["integrity_initiator"] = child.integrity_key_out if child.initiator \
            else child.integrity_key_in
        mine["integrity_responder"] = child.integrity_key_in if child.initiator \
            else child.integrity_key_out
    assert {k: v.hex() for k, v in mine.items()} == got, charon.logs()


async def establish(charon: Charon, cfg: IkeV1Config, conf, we_initiate: bool):
    """Bring up an ISAKMP SA and its IPsec SA pair; returns (endpoint, session, IkeSaUp,
    ChildSaUp). The caller closes the endpoint."""
    ep = await create_endpoint(US, 0, 0, lookup=lambda addr: cfg)
    charon.load(conf(ep.natt_port))
    proc = None
    if we_initiate:
        # charon listens on non-500 ports: the NAT-T port and the non-ESP marker from the
        # first message (RFC 3947 §4 allows it), as strongSwan does itself
        ep.connect(cfg, ("127.0.0.1", charon.port_nat_t))
    else:
        proc = charon.initiate("net")
    up = await _until(ep, IkeSaUp)
    child = await _until(ep, ChildSaUp)
    if proc is not None:
        out = await asyncio.get_running_loop().run_in_executor(
            None, lambda: proc.communicate(timeout=15)[0])
        assert "initiate completed successfully" in out, out
    session = next(s for s in ep.sessions if s.state == "established")
    # charon works on messages in parallel threads: wait until it installed the pair our
    # Quick Mode message 3 completed, before anything (a Delete) can overtake that message
    spi = f"{child.child.spi_in:08x}"
    await _list_sas_until(charon, lambda sas: child_states(sas).get(spi) == "INSTALLED")
    return ep, session, up, child


def _run(charon: Charon, coro):
    try:
        return asyncio.run(asyncio.wait_for(coro, 60))
    except (asyncio.TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc!r}\n--- charon log ---\n{charon.logs()}") from exc


# ---- Main and Aggressive Mode with pre-shared keys ------------------------------------------

CASES = [
    ("aes128-sha256-modp2048", "aes128gcm16", ("aes-gcm-128", None)),
    ("aes256-sha1-ecp256", "aes256-sha256-modp2048", ("aes-cbc-256", "hmac-sha256-128")),
    ("3des-sha1-modp1024", "3des-sha1", ("3des-cbc", "hmac-sha1-96")),
    ("aes192-sha384-ecp384", "aes256gcm16-ecp384", ("aes-gcm-256", None)),
    ("aes128-sha256-modp1536", "aes128-sha1", ("aes-cbc-128", "hmac-sha1-96")),
]


@pytest.mark.parametrize("mode", ["main", "aggressive"])
@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
@pytest.mark.parametrize("ike, esp, want", CASES, ids=[c[0] + "/" + c[1] for c in CASES])
def test_psk(charon, mode, we_initiate, ike, esp, want):
    async def main():
        cfg = our_config(charon, ike, esp, mode=mode)
        ep, session, up, child = await establish(
            charon, cfg, lambda port: swanctl_conf(port, ike, esp,
                                                   aggressive=mode == "aggressive"),
            we_initiate)
        ep.close()
        return session, up, child.child, await _swanctl(charon, "--list-sas")
    session, up, child, sas = _run(charon, main())
    assert up.version == 1 and up.exchange_mode == mode.capitalize()
    assert up.initiator == we_initiate and up.remote_id == "charon.example"
    assert up.proposal == ike
    assert (child.cipher, child.integrity) == want and child.ike_version == 1
    assert f"{child.spi_in:08x}" in sas and f"{child.spi_out:08x}" in sas
    assert "ESTABLISHED, IKEv1" in sas and "INSTALLED" in sas
    # charon's kernel-libipsec wants UDP encapsulation, so it fakes a NAT (RFC 3947 §3.2)
    assert up.remote_nat and child.udp_encap and session.natt
    check_keys(charon, child)
    log = charon.logs()
    assert ("Aggressive Mode" if mode == "aggressive" else "Main Mode") in log


# ---- certificates ---------------------------------------------------------------------------

@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
@pytest.mark.parametrize("kind", ["rsa", "ecdsa256", "ecdsa384"])
def test_certificates(charon, kind, we_initiate):
    ike = "aes256-sha384-ecp384" if kind == "ecdsa384" else "aes128-sha256-modp2048"

    async def main():
        cfg = our_config(charon, ike, "aes128gcm16", kind, _pki(charon, kind))
        ep, session, up, child = await establish(
            charon, cfg, lambda port: swanctl_conf(port, ike, "aes128gcm16", auth=kind),
            we_initiate)
        ep.close()
        return session, up, child.child
    session, up, child = _run(charon, main())
    assert session.sa.suite.auth_name == METHOD[kind]
    assert up.remote_id == "charon.example"
    log = charon.logs()
    scheme = "RSA_EMSA_PKCS1_NULL" if kind == "rsa" else "ECDSA_WITH_NULL"
    assert f"authentication of 'py.example' with {scheme} successful" in log, log
    check_keys(charon, child)


# ---- Quick Mode rekey, Delete, ISAKMP SA deletion -------------------------------------------

@pytest.mark.parametrize("who", ["we", "charon"])
def test_quick_mode_rekey(charon, who):
    """A new Quick Mode with the same identities replaces the pair (PFS each time)."""
    esp = "aes128gcm16-modp2048"

    async def main():
        cfg = our_config(charon, "aes128-sha256-ecp256", esp)
        ep, session, up, first = await establish(
            charon, cfg, lambda port: swanctl_conf(port, "aes128-sha256-ecp256", esp), True)
        old = first.child
        if who == "we":
            session.rekey_child(old.spi_in, ep.now())
            ep.flush()
        else:
            await _swanctl(charon, "--rekey", "--child", "net")
        rekeyed = await _until(ep, ChildSaRekeyed)
        down = await _until(ep, ChildSaDown) if who == "we" else None
        sas = await _list_sas_until(     # charon's delete_rekeyed_delay is 1 s
            charon, lambda sas: who == "charon" or f"{old.spi_in:08x}" not in sas)
        ep.close()
        return old, rekeyed, down, sas
    old, rekeyed, down, sas = _run(charon, main())
    new = rekeyed.new
    assert rekeyed.old_spi_in == old.spi_in and new.spi_in != old.spi_in
    assert new.key_in != old.key_in and new.initiator == (who == "we")
    states = child_states(sas)
    assert states[f"{new.spi_in:08x}"] == "INSTALLED"
    if who == "we":       # our Delete of the old pair removed it on charon's side too
        assert (down.spi_in, down.reason) == (old.spi_in, "rekeyed")
        assert f"{old.spi_in:08x}" not in states
    check_keys(charon, new)


@pytest.mark.parametrize("who", ["we", "charon"])
def test_delete_child_and_isakmp_sa(charon, who):
    async def main():
        cfg = our_config(charon, "aes128-sha256-ecp256", "aes128gcm16")
        ep, session, up, child = await establish(
            charon, cfg, lambda port: swanctl_conf(port, "aes128-sha256-ecp256",
                                                   "aes128gcm16"), True)
        c = child.child
        if who == "we":
            session.delete_child(c.spi_in, ep.now())
            ep.flush()
        else:
            await _swanctl(charon, "--terminate", "--child", "net")
        gone = await _until(ep, ChildSaDown)
        after_child = await _list_sas_until(charon, lambda sas: not child_states(sas))
        if who == "we":
            session.close(ep.now())
            ep.flush()
        else:
            await _swanctl(charon, "--terminate", "--ike", "v1")
        down = await _until(ep, IkeSaDown)
        after_ike = await _list_sas_until(charon, lambda sas: "v1:" not in sas)
        ep.close()
        return c, gone, after_child, down, after_ike
    c, gone, after_child, down, after_ike = _run(charon, main())
    assert (gone.spi_in, gone.spi_out) == (c.spi_in, c.spi_out)
    assert gone.reason == ("deleted" if who == "we" else "deleted by peer")
    assert "ESTABLISHED" in after_child and not child_states(after_child)
    assert down.reason == ("closed locally" if who == "we" else "deleted by peer")
    assert "v1:" not in after_ike
    if who == "we":
        assert "received DELETE for ESP CHILD_SA with SPI" in charon.logs()
        assert "received DELETE for IKE_SA" in charon.logs()


@pytest.mark.parametrize("who", ["we", "charon"])
def test_phase1_reauthentication_keeps_the_child(charon, who):
    """A new Phase 1 replaces the ISAKMP SA (IKEv1 has no Phase 1 rekey): the IPsec SA pair
    moves to it on both ends and stays up, and its next rekey runs on the new ISAKMP SA.
    We delete our old ISAKMP SA `reauth_delete_delay` seconds later (charon moves the pair
    in a job of its own after its last Main Mode message; a Delete sent at once could take
    the pair down with the old SA); charon keeps its old one (REKEYING) until it expires."""
    from inline_ipsec.ike import IkeSaRekeyed

    async def main():
        cfg = our_config(charon, "aes128-sha256-ecp256", "aes128gcm16",
                         reauth_delete_delay=2.0)
        ep, session, up, child = await establish(
            charon, cfg, lambda port: swanctl_conf(port, "aes128-sha256-ecp256",
                                                   "aes128gcm16"), True)
        if who == "we":
            ep.manager.reauthenticate(session, ep.now())
            ep.flush()
        else:
            await _swanctl(charon, "--rekey", "--ike", "v1", "--reauth")
        moved = await _until(ep, IkeSaRekeyed)
        down = await _until(ep, IkeSaDown) if who == "we" else None
        await asyncio.sleep(0.5)
        sas = await _swanctl(charon, "--list-sas")
        new = next(s for s in ep.sessions if s.state == "established" and s is not session)
        await _swanctl(charon, "--rekey", "--child", "net")     # on charon's new ISAKMP SA
        rekeyed = await _until(ep, ChildSaRekeyed)
        ep.close()
        return session, new, child.child, moved, down, sas, rekeyed
    old, new, child, moved, down, sas, rekeyed = _run(charon, main())
    assert (moved.old_spi_i, moved.old_spi_r) == (old.sa.cky_i, old.sa.cky_r)
    assert (new.sa.cky_i, new.sa.cky_r) == (moved.spi_i, moved.spi_r)
    assert not old.children and rekeyed.old_spi_in == child.spi_in
    assert rekeyed.new.spi_in in new.children
    assert child_states(sas)[f"{child.spi_in:08x}"] == "INSTALLED"
    assert f"{new.sa.cky_i.hex()}_i" in sas
    if who == "we":
        assert down.reason == "re-authenticated" and down.children == [] and \
            old.state == "closed"
        assert "received DELETE for IKE_SA" in charon.log.read_text()
        assert sas.count("ESTABLISHED, IKEv1") == 1
    else:
        assert "REKEYING, IKEv1" in sas and old.state == "established"


# ---- DPD ------------------------------------------------------------------------------------

def test_dpd_both_ways_and_a_dead_charon(charon):
    """charon probes us (dpd_delay) and we ACK; we probe charon (dpd_interval) and it ACKs;
    then charon dies and we clear the SA after `threshold` unanswered probes (RFC 3706)."""
    async def main():
        cfg = our_config(charon, "aes128-sha256-ecp256", "aes128gcm16", dpd_interval=1.0,
                         dpd_threshold=2, dpd_always_send=True)
        ep, session, up, child = await establish(
            charon, cfg, lambda port: swanctl_conf(port, "aes128-sha256-ecp256",
                                                   "aes128gcm16", extra="dpd_delay = 1s"),
            True)
        seq0 = session.dpd_seq
        await asyncio.sleep(3.5)
        probes = (session.dpd_seq - seq0) % 2 ** 32
        alive = session.state
        outstanding = session.dpd_outstanding
        charon.proc.kill()             # SIGKILL: no Delete, charon is simply gone
        charon.proc.wait()
        t0 = time.monotonic()
        down = await _until(ep, IkeSaDown, timeout=10)
        ep.close()
        return probes, alive, outstanding, down, time.monotonic() - t0
    probes, alive, outstanding, down, took = _run(charon, main())
    assert probes >= 3 and alive == "established" and outstanding <= 1
    log = charon.log.read_text()
    assert "sending DPD request" in log            # charon's R-U-THERE, we ACKed:
    assert "parsed INFORMATIONAL_V1 request" in log and "[ HASH N(DPD_ACK) ]" in log
    assert "[ HASH N(DPD) ]" in log                # ours, charon ACKed
    assert down.reason == "dead peer" and took <= 1.0 * (2 + 1) + 1.5


# ---- IKE fragmentation -----------------------------------------------------------------------

@pytest.fixture
def charon_small_fragments(tmp_path):
    c = _start(tmp_path, "fragment_size = 500")
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("we_initiate", [True, False], ids=["we-initiate", "charon-initiates"])
def test_fragmented_certificate_messages(charon_small_fragments, we_initiate):
    charon = charon_small_fragments

    async def main():
        cfg = our_config(charon, "aes128-sha256-modp2048", "aes128gcm16", "rsa",
                         _pki(charon, "rsa"), fragment_size=400)
        ep, session, up, child = await establish(
            charon, cfg, lambda port: swanctl_conf(port, "aes128-sha256-modp2048",
                                                   "aes128gcm16", auth="rsa"), we_initiate)
        ep.close()
        return session, child.child
    session, child = _run(charon, main())
    log = charon.logs()
    assert session.frag_ok and "received FRAGMENTATION vendor ID" in log
    assert "reassembled fragmented IKE message" in log        # ours, reassembled by charon
    assert "splitting IKE message" in log                     # charon's, reassembled by us
    check_keys(charon, child)
