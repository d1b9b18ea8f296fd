"""`inline-ipsec run --tun` against strongSwan 5.9 (charon, kernel-libipsec), through the
command line only: hosts behind each side ping each other and exchange UDP both ways.

    hl 10.1.0.10 -- ga: inline-ipsec run (TUN st0) ==ESP== gb: charon (TUN ipsec0) -- hr 10.2.0.10

charon's userspace ESP (kernel-libipsec) always encapsulates in UDP 4500 (it has no raw ESP
socket), so every scenario here also runs our NAT-T data path; `encap = yes` on charon's side
makes it claim a NAT (RFC 7296 §2.23) for the NAT-T scenario proper. The scenarios: PSK with
AES-GCM-128 (offloaded to our PFE), AES-CBC-256/HMAC-SHA-256 (our CPU engine), ECDSA
certificates, NAT-T, an IPv6 outer link; then a `commit` changing the DF bit of the offloaded
tunnel (pending until the rekey), a rekey charon initiates, and our SIGTERM, whose Delete charon
logs.
"""
from __future__ import annotations

import re
import signal

import pytest
from charon_harness import Charon, available
from helpers import missing
from lab import LEFT, OUTER, RIGHT, DaemonProc, df_bits, junos_psk, settled, wait_for
from udp_probe import udp_both_ways

pytestmark = pytest.mark.interop

PSK = "daemon-test-psk-0123456789"


def _swanctl(lab, *, esp: str, auth: str = "psk", encap: bool = False, inner: int = 4,
             extra_child: str = "") -> str:
    mine = RIGHT[inner][2]
    theirs = LEFT[inner][2]
    local = "auth = pubkey\n            certs = charon.pem\n            id = b.example" \
        if auth == "cert" else "auth = psk\n            id = b.example"
    remote = "auth = pubkey\n            id = a.example" if auth == "cert" else \
        "auth = psk\n            id = a.example"
    return f"""
connections {{
    srx {{
        version = 2
        local_addrs = {lab.b_out}
        remote_addrs = {lab.a_out}
        proposals = aes256-sha256-ecp256
        encap = {"yes" if encap else "no"}
        local {{
            {local}
        }}
        remote {{
            {remote}
        }}
        children {{
            net {{
                local_ts = {mine}
                remote_ts = {theirs}
                esp_proposals = {esp}
                mode = tunnel
                start_action = none
                {extra_child}
            }}
        }}
    }}
}}
secrets {{
    ike-1 {{
        id-1 = a.example
        id-2 = b.example
        secret = "{PSK}"
    }}
}}
"""


@pytest.fixture
def charon(lab, tmp_path, request):
    if not available():
        missing("strongSwan charon is not installed (/usr/lib/ipsec/charon)")
    (tmp_path / "charon").mkdir()
    c = Charon(tmp_path / "charon", "delete_rekeyed_delay = 1",
               netns=lab.ns["gb"], port=500, port_nat_t=4500, install_routes=True)
    request.addfinalizer(c.stop)
    c.start()
    return c


def _up(d: DaemonProc, charon: Charon) -> bool:
    return wait_for(lambda: "INSTALLED" in charon.list_sas() and
                    "<" in d.cli("show sec ipsec sa", check=False), 20) and settled(d)


def _traffic(lab, inner: int = 4) -> None:
    left, right = LEFT[inner][1], RIGHT[inner][1]
    for src, dst in (("hl", right), ("hr", left)):
        r = lab.ping(src, dst, count=3, family=inner)
        assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    udp_both_ways(lab, left, right, count=20)


def _run(lab, tmp_path, charon, junos: str, swan: str, *extra: str):
    d = DaemonProc(lab, "ga", tmp_path, junos, *extra, name="srx")
    charon.load(swan)
    return d


@pytest.mark.parametrize("esp,cipher,integrity,offloaded", [
    ("aes128gcm16", "aes-128-gcm", None, "Yes"),
    ("aes256-sha256", "aes-256-cbc", "hmac-sha-256-128", "No"),
])
def test_psk_ping_and_udp_both_ways(lab, tmp_path, charon, esp, cipher, integrity, offloaded):
    d = _run(lab, tmp_path, charon, junos_psk(4, "a", cipher=cipher, integrity=integrity),
             _swanctl(lab, esp=esp))
    try:
        assert _up(d, charon), charon.list_sas() + d.output()
        detail = d.cli("show security ipsec security-associations detail")
        assert f"Hardware Offloaded: {offloaded}" in detail, detail
        _traffic(lab)
        stats = d.cli("show sec ipsec statistics")
        enc = int(re.search(r"Encrypted packets:\s+(\d+)", stats).group(1))
        dec = int(re.search(r"Decrypted packets:\s+(\d+)", stats).group(1))
        assert enc >= 26 and dec >= 26, stats
        sas = charon.list_sas()
        assert re.search(r"in\s+[0-9a-f]{8}.*?(\d+) packets", sas, re.S), sas
    finally:
        d.stop()


def test_nat_t_and_sigterm_delete(lab, tmp_path, charon):
    d = _run(lab, tmp_path, charon, junos_psk(4, "a"), _swanctl(lab, esp="aes128gcm16",
                                                                 encap=True))
    try:
        assert _up(d, charon), charon.list_sas() + d.output()
        detail = d.cli("show security ipsec security-associations detail")
        assert "4500" in d.cli("show sec ipsec sa"), detail
        _traffic(lab)
    finally:
        assert d.stop(signal.SIGTERM) == 0
    # the peer saw our Delete: charon logs it and holds no IKE SA any more
    assert wait_for(lambda: "srx" not in charon.list_sas(), 10), charon.list_sas()
    assert re.search(r"received DELETE for IKE_SA", charon.logs()), charon.logs()[-3000:]
    log = d.log.read_text()
    assert "KMD_VPN_UP_ALARM_USER: VPN vpn-1" in log and "KMD_VPN_DOWN_ALARM_USER" in log


@pytest.mark.parametrize("lab", [6], indirect=True)
def test_ipv6_outer(lab, tmp_path, charon):
    d = _run(lab, tmp_path, charon, junos_psk(6, "a"), _swanctl(lab, esp="aes128gcm16"))
    try:
        assert _up(d, charon), charon.list_sas() + d.output()
        assert OUTER[6][1] in d.cli("show sec ike sa")
        _traffic(lab)
    finally:
        d.stop()


def test_ecdsa_certificates(lab, tmp_path, charon):
    from pki import ecdsa_pki
    files = ecdsa_pki(tmp_path, charon)
    junos = junos_psk(4, "a").replace(
        "set security ike proposal p1 authentication-method pre-shared-keys",
        "set security ike proposal p1 authentication-method ecdsa-signatures-256")
    junos = "\n".join(line for line in junos.splitlines()
                      if "pre-shared-key" not in line) + "\n" + files["junos"]
    d = _run(lab, tmp_path, charon, junos, _swanctl(lab, esp="aes128gcm16", auth="cert"),
             *files["args"])
    try:
        assert _up(d, charon), charon.list_sas() + d.output() + charon.logs()[-4000:]
        _traffic(lab)
    finally:
        d.stop()


def test_commit_df_bit_then_peer_rekey(lab, tmp_path, charon):
    d = _run(lab, tmp_path, charon, junos_psk(4, "a"), _swanctl(lab, esp="aes128gcm16"))
    try:
        assert _up(d, charon), charon.list_sas() + d.output()
        detail = d.cli("show security ipsec security-associations detail")
        assert "DF-bit: clear" in detail and "Hardware Offloaded: Yes" in detail, detail
        d.conf.write_text(junos_psk(4, "a", df_bit="set"))
        out = d.cli("commit")
        assert "DF-bit clear -> set, applies at its next rekey (offloaded)" in out, out
        detail = d.cli("show security ipsec security-associations detail")
        assert "DF-bit: clear" in detail, detail        # offloaded: waits for the rekey
        _traffic(lab)
        assert df_bits(d) == {"before": False, "after": False}
        old = re.findall(r"<\d+\s+\S+\s+(0x[0-9a-f]{8})", d.cli("show sec ipsec sa"))
        charon.swanctl("--rekey", "--child", "net")
        assert wait_for(lambda: old and old[0] not in d.cli("show sec ipsec sa") and
                        "<" in d.cli("show sec ipsec sa"), 15), d.output()
        detail = d.cli("show security ipsec security-associations detail")
        assert "DF-bit: set" in detail, detail
        _traffic(lab)
        # the outer packets leave with DF set now: the capture shows it
        assert df_bits(d) == {"before": False, "after": True}
        assert "KMD_PM_SA_REKEYED" in d.log.read_text()
    finally:
        d.stop()
