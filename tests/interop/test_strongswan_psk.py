"""Interop with a real strongSwan 5.9 charon (PSK), both directions.

    us (127.0.0.2)                          charon (127.0.0.1, private ports)
    IKE_SA_INIT / IKE_AUTH (+child)  <-->   swanctl-loaded connection "pyike"

Keys are cross-checked against what charon installed in the kernel (`ip xfrm state`).
"""
import asyncio
import time

import pytest

from charon_harness import child_keys_from_log
from inline_ipsec.ike import ChildConfig, ChildSaUp, Identity, IkeConfig, IkeSaUp
from inline_ipsec.ike.udp import IkeUdpEndpoint

pytestmark = pytest.mark.interop

US = "127.0.0.2"
PSK = "interop-psk-0123456789"
# Charon's side is a multicast range: kernel-libipsec then installs no route for it (it needs a
# local address inside its TS otherwise), so the test never touches the host's routing.
LOCAL_NET, REMOTE_NET = "10.199.1.0/24", "239.199.2.0/24"   # ours, charon's


def swanctl_conf(our_port: int, ike: str, esp: str, extra: str = "",
                 more_children: str = "") -> str:
    return f"""
connections {{
    pyike {{
        version = 2
        local_addrs = 127.0.0.1
        remote_addrs = {US}
        remote_port = {our_port}
        proposals = {ike}
        {extra}
        local {{
            auth = psk
            id = @charon.example
        }}
        remote {{
            auth = psk
            id = @py.example
        }}
        children {{
            net {{
                local_ts = {REMOTE_NET}
                remote_ts = {LOCAL_NET}
                esp_proposals = {esp}
                mode = tunnel
                start_action = none
            }}
            {more_children}
        }}
    }}
}}
secrets {{
    ike-pyike {{
        id-1 = @charon.example
        id-2 = @py.example
        secret = "{PSK}"
    }}
}}
"""


def our_config(charon, ike: str, esp: str, **kw) -> IkeConfig:
    return IkeConfig(proposals=[ike], local_id=Identity.parse("@py.example"),
                     remote_id=Identity.parse("@charon.example"), psk=PSK.encode(),
                     natt_port=charon.port_nat_t,
                     children=[ChildConfig(proposals=[esp], local_ts=[LOCAL_NET],
                                           remote_ts=[REMOTE_NET])], **kw)


async def _collect(endpoint, want=(IkeSaUp, ChildSaUp), timeout=15.0):
    got = {}
    while set(want) - set(got):
        _, event = await endpoint.next_event(timeout)
        got.setdefault(type(event), event)
    return got


def _check_keys(charon, child):
    """Our KEYMAT (RFC 7296 §2.17) must equal what charon derived (its CHD level-4 log)."""
    deadline = time.monotonic() + 5
    while True:   # charon may still be processing the last message
        sets = [s for s in child_keys_from_log(charon.logs())
                if f"{child.spi_in:08x}" in s.get("spis", "")]
        if sets or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sets, "charon logged no keys for this child SA:\n" + charon.logs()
    sets[-1].pop("spis")
    mine = {"encryption_initiator": child.key_out if child.initiator else child.key_in,
            "encryption_responder": child.key_in if child.initiator else child.key_out}
    if child.integrity:
        mine["integrity_initiator"] = child.integrity_key_out if child.initiator \
            else child.integrity_key_in
        mine["integrity_responder"] = child.integrity_key_in if child.initiator \
            else child.integrity_key_out
    assert {k: v.hex() for k, v in mine.items()} == sets[-1], charon.logs()


@pytest.mark.parametrize("ike, esp", [
    ("aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
    ("aes256gcm16-prfsha384-x25519", "aes256gcm16"),
    ("aes256-sha256-modp2048", "aes128-sha256"),
    ("aes128-sha384-ecp521", "aes256-sha512"),
    # (no ESN case: charon's kernel-libipsec refuses ESN, "IPsec SA: ESN not supported")
])
def test_we_initiate_to_strongswan(charon, ike, esp):
    async def main():
        ep = await IkeUdpEndpoint.create(US, 0, 0)
        try:
            charon.load(swanctl_conf(ep.natt_port, ike, esp))
            # charon listens on non-500 ports, so both sides use the NAT-T socket and the
            # non-ESP marker from the first message (RFC 7296 §2.23), as strongSwan does.
            ep.connect(our_config(charon, ike, esp), ("127.0.0.1", charon.port_nat_t))
            return await _collect(ep)
        finally:
            ep.close()
    try:
        got = asyncio.run(main())
    except asyncio.TimeoutError:
        pytest.fail("no IKE SA with charon:\n" + charon.logs())
    child = got[ChildSaUp].child
    assert (child.cipher, child.integrity, child.esn) == {
        "aes128gcm16": ("aes-gcm-128", None, False),
        "aes256gcm16": ("aes-gcm-256", None, False),
        "aes128-sha256": ("aes-cbc-128", "hmac-sha256-128", False),
        "aes256-sha512": ("aes-cbc-256", "hmac-sha512-256", False)}[esp]
    sas = charon.list_sas()
    assert "ESTABLISHED" in sas and "INSTALLED" in sas
    assert f"{child.spi_in:08x}" in sas and f"{child.spi_out:08x}" in sas
    _check_keys(charon, child)


@pytest.mark.parametrize("ike, esp", [
    ("aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
    ("aes128gcm16-prfsha256-x25519", "aes256gcm16"),
])
def test_strongswan_initiates_to_us(charon, ike, esp):
    async def main():
        cfg = our_config(charon, ike, esp)

        ep = await IkeUdpEndpoint.create(US, 0, 0, lookup=lambda addr: cfg)
        try:
            charon.load(swanctl_conf(ep.natt_port, ike, esp))
            proc = charon.initiate("net")
            got = await _collect(ep)
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15)
            return got, proc.stdout.read()
        finally:
            ep.close()
    try:
        got, out = asyncio.run(main())
    except asyncio.TimeoutError:
        pytest.fail("charon did not reach us:\n" + charon.logs())
    assert "initiate completed successfully" in out, out
    assert got[IkeSaUp].remote_id == "charon.example" and not got[IkeSaUp].initiator
    _check_keys(charon, got[ChildSaUp].child)


def test_invalid_ke_retry_both_directions(charon):
    """We offer ecp256 first (KE ecp256), charon only takes x25519: INVALID_KE_PAYLOAD, retry
    (RFC 7296 §1.2). Then charon offers ecp256 first to us, who only take x25519."""
    ours = "aes128gcm16-prfsha256-ecp256"
    both = "aes128gcm16-prfsha256-ecp256,aes128gcm16-prfsha256-x25519"

    async def main(we_initiate):
        cfg = our_config(charon, ours, "aes128gcm16")
        cfg.proposals = (["aes128gcm16-prfsha256-ecp256", "aes128gcm16-prfsha256-x25519"]
                         if we_initiate else ["aes128gcm16-prfsha256-x25519"])

        ep = await IkeUdpEndpoint.create(US, 0, 0, lookup=lambda addr: cfg)
        try:
            charon.load(swanctl_conf(ep.natt_port, "aes128gcm16-prfsha256-x25519"
                                     if we_initiate else both, "aes128gcm16"))
            if we_initiate:
                ep.connect(cfg, ("127.0.0.1", charon.port_nat_t))
            else:
                charon.initiate("net")
            return await _collect(ep)
        finally:
            ep.close()
    for we_initiate in (True, False):
        try:
            got = asyncio.run(main(we_initiate))
        except asyncio.TimeoutError:
            pytest.fail("no IKE SA:\n" + charon.logs())
        assert got[IkeSaUp].proposal == "aes128gcm16-prfsha256-x25519"
        _check_keys(charon, got[ChildSaUp].child)
    assert charon.logs().count("INVALID_KE_PAYLOAD") >= 2 or \
        charon.logs().count("INVAL_KE") >= 2


def test_charon_answers_our_cookie_request(charon):
    """We demand a COOKIE (RFC 7296 §2.6); charon repeats IKE_SA_INIT with it."""
    async def main():
        cfg = our_config(charon, "aes128gcm16-prfsha256-ecp256", "aes128gcm16",
                         require_cookie=True)

        ep = await IkeUdpEndpoint.create(US, 0, 0, lookup=lambda addr: cfg)
        try:
            charon.load(swanctl_conf(ep.natt_port, "aes128gcm16-prfsha256-ecp256",
                                     "aes128gcm16"))
            charon.initiate("net")
            return await _collect(ep)
        finally:
            ep.close()
    try:
        got = asyncio.run(main())
    except asyncio.TimeoutError:
        pytest.fail("no IKE SA:\n" + charon.logs())
    assert got[ChildSaUp].child.udp_encap   # charon + libipsec always encapsulate
    assert "COOKIE" in charon.logs()
    _check_keys(charon, got[ChildSaUp].child)


def _esp_gcm(spec, seq: int, inner: bytes) -> bytes:
    """RFC 4303 + RFC 4106 ESP packet built here with `cryptography` only (independent of the
    project's engines): SPI | seq | IV | AES-GCM(payload | pad | pad len | next header)."""
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    key, salt = spec.key[:-4], spec.key[-4:]
    pad = (-(len(inner) + 2)) % 4
    plain = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
    head = struct.pack("!II", spec.spi, seq)
    iv = seq.to_bytes(8, "big")
    return head + iv + AESGCM(key).encrypt(salt + iv, plain, head)


def _ipv4_udp(src: str, dst: str, payload: bytes) -> bytes:
    import ipaddress
    import struct
    udp = struct.pack("!HHHH", 5000, 5001, 8 + len(payload), 0) + payload
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                      ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed)
    csum = sum(struct.unpack("!10H", hdr))
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + udp


def test_esp_packet_with_our_outbound_sa_is_accepted_by_charon(charon):
    """End to end: the outbound SaSpec from ChildSaUp.to_sa_specs() protects a packet that
    charon's ESP (kernel-libipsec) decrypts and counts on its inbound SA."""
    async def main():
        ep = await IkeUdpEndpoint.create(US, 0, 0)
        try:
            charon.load(swanctl_conf(ep.natt_port, "aes128gcm16-prfsha256-ecp256",
                                     "aes128gcm16"))
            ep.connect(our_config(charon, "aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
                       ("127.0.0.1", charon.port_nat_t))
            got = await _collect(ep)
            out, _ = got[ChildSaUp].to_sa_specs(US, "127.0.0.1")
            assert out.udp_encap and out.udp_dport == charon.port_nat_t
            inner = _ipv4_udp("10.199.1.7", "239.199.2.9", b"hello strongSwan" * 4)
            for seq in (1, 2, 3):
                # ESP in UDP (RFC 3948) from our NAT-T port: no marker, SPI first.
                ep.natt_transport.sendto(_esp_gcm(out, seq, inner),
                                         ("127.0.0.1", out.udp_dport))
            await asyncio.sleep(0.5)
            return out
        finally:
            ep.close()
    out = asyncio.run(main())
    sas = charon.list_sas()
    line = next(x for x in sas.splitlines() if f"in  {out.spi:08x}" in x)
    assert "3 packets" in line, sas


def test_ipv6_outer_and_inner_with_strongswan(charon):
    """IKE over ::1 with IPv6 traffic selectors (charon's side is multicast, see above)."""
    conf = swanctl_conf(0, "aes128gcm16-prfsha256-x25519", "aes128gcm16")

    async def main():
        ep = await IkeUdpEndpoint.create("::1", 0, 0)
        try:
            text = conf.replace("remote_port = 0", f"remote_port = {ep.natt_port}")
            text = text.replace("local_addrs = 127.0.0.1", "local_addrs = ::1")
            text = text.replace(f"remote_addrs = {US}", "remote_addrs = ::1")
            text = text.replace(f"local_ts = {REMOTE_NET}", "local_ts = ff0e::1990:0/112")
            text = text.replace(f"remote_ts = {LOCAL_NET}", "remote_ts = 2001:db8:199::/48")
            charon.load(text)
            cfg = our_config(charon, "aes128gcm16-prfsha256-x25519", "aes128gcm16")
            cfg.children[0].local_ts = ["2001:db8:199::/48"]
            cfg.children[0].remote_ts = ["ff0e::1990:0/112"]
            ep.connect(cfg, ("::1", charon.port_nat_t))
            return await _collect(ep)
        finally:
            ep.close()
    try:
        got = asyncio.run(main())
    except asyncio.TimeoutError:
        pytest.fail("no IKE SA over IPv6:\n" + charon.logs())
    child = got[ChildSaUp].child
    assert [str(t) for t in child.local_ts] == ["2001:db8:199::/48"]
    out, _ = got[ChildSaUp].to_sa_specs("::1", "::1")
    assert out.outer_ipv6
    _check_keys(charon, child)
