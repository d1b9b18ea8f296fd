"""The daemon's I/O pieces without privileges: batched syscalls on loopback UDP, the command
grammar, the pcap writer (read back by scapy), the esp_sa key table, outer header rebuilding,
NAT-T classification and the event log."""
from __future__ import annotations

import io
import ipaddress
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.io.batch import Batch, available
from inline_ipsec.io.command_socket import CommandError, parse_command
from inline_ipsec.io.eventlog import EventLog, proxy_id
from inline_ipsec.io.keylog import EspKeyLog, uat_line
from inline_ipsec.io.pcap import LINKTYPE_RAW, PcapWriter
from inline_ipsec.io.sockets import classify_natt, udp_packet_for
from inline_ipsec.io.tun import tunnel_routes
from inline_ipsec.sa import SaSpec


# ---------------------------------------------------------------- batch
def _pair(family=socket.AF_INET, host="127.0.0.1"):
    rx = socket.socket(family, socket.SOCK_DGRAM)
    rx.bind((host, 0))
    rx.setblocking(False)
    tx = socket.socket(family, socket.SOCK_DGRAM)
    tx.bind((host, 0))
    tx.setblocking(False)
    return rx, tx


@pytest.mark.parametrize("family,host", [(socket.AF_INET, "127.0.0.1"),
                                         (socket.AF_INET6, "::1")])
def test_batch_sends_and_receives_many_per_call(family, host):
    assert available()
    rx, tx = _pair(family, host)
    try:
        dst = rx.getsockname()[:2]
        payloads = [bytes([i]) * (i + 1) for i in range(100)]
        b = Batch(32, 2048)
        assert b.send(tx, [(p, dst) for p in payloads]) == 100
        assert b.calls == 4                       # 100 datagrams in 4 syscalls of <= 32
        got = []
        r = Batch(32, 2048)
        while len(got) < 100:
            chunk = r.recv(rx)
            assert chunk, "datagrams lost on loopback"
            got += chunk
        assert [g[0] for g in got] == payloads
        assert {g[1] for g in got} == {tx.getsockname()[:2]}
        assert r.calls == 4
        assert r.recv(rx) == []                    # nothing left: no blocking
    finally:
        rx.close()
        tx.close()


def test_batch_skips_oversized_and_refused():
    rx, tx = _pair()
    try:
        b = Batch(4, 64)
        dst = rx.getsockname()
        assert b.send(tx, [(bytes(65), dst), (b"ok", dst)]) == 1
        assert b.errors == 1
        assert Batch(4, 64).recv(rx)[0][0] == b"ok"
        with pytest.raises(ValueError):
            Batch(0)
    finally:
        rx.close()
        tx.close()


# ---------------------------------------------------------------- commands
@pytest.mark.parametrize("text,words", [
    ("show sec ipsec sa", "show security ipsec security-associations"),
    ("sh sec ipsec sa det", "show security ipsec security-associations detail"),
    ("show security ipsec security-associations vpn-name v1",
     "show security ipsec security-associations vpn-name v1"),
    ("show sec ike sa", "show security ike security-associations"),
    ("show sec fl st", "show security flow statistics"),
    ("show sec ipsec inact d", "show security ipsec inactive-tunnels detail"),
    ("clear sec ike sa 192.0.2.2", "clear security ike security-associations 192.0.2.2"),
    ("clear sec ipsec sa vpn v1", "clear security ipsec security-associations vpn-name v1"),
    ("req sec ipsec rek", "request security ipsec rekey"),
    ("req sec ike rek peer 192.0.2.2", "request security ike rekey peer 192.0.2.2"),
    ("com", "commit"),
    ("show security policies from-zone a", "show security policies from-zone a"),
])
def test_abbreviations_expand(text, words):
    assert " ".join(parse_command(text).words) == words


def test_values_are_named():
    cmd = parse_command("clear sec ipsec sa vpn-name vpn-7")
    assert cmd.args == {"vpn-name": "vpn-7"}
    assert parse_command("clear sec ike sa 2001:db8::2").args == {"peer": "2001:db8::2"}


@pytest.mark.parametrize("text,why", [
    ("show sec i sa", "ambiguous"),
    ("clear sec", "incomplete"),
    ("show sec ipsec sa bogus", "expecting one of"),
    ("", "expecting <command>"),
    ("frobnicate", "expecting one of"),
])
def test_bad_commands_are_typed_errors(text, why):
    with pytest.raises(CommandError, match=why):
        parse_command(text)


@given(st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789.", min_size=1,
                        max_size=12), max_size=8))
@settings(max_examples=300, deadline=None)
def test_any_words_parse_or_raise_command_error(words):
    try:
        cmd = parse_command(" ".join(words))
    except CommandError:
        return
    assert cmd.words and cmd.words[0] in ("show", "clear", "request", "commit")


# ---------------------------------------------------------------- pcap and keys
def _spec(**kw):
    base = dict(spi=0x1234abcd, cipher="aes-gcm-128", key=bytes(range(20)),
                tunnel_src="192.0.2.1", tunnel_dst="192.0.2.2")
    base.update(kw)
    return SaSpec(**base)


def test_pcap_records_read_back_by_scapy(tmp_path):
    from scapy.utils import rdpcap
    from inline_ipsec.gateway.traffic import udp_packet
    pkts = [udp_packet("10.1.0.1", "10.2.0.1", b"x" * n) for n in (1, 100, 1000)]
    pkts.append(udp_packet("2001:db8::1", "2001:db8::2", b"six"))
    w = PcapWriter(str(tmp_path / "c.pcap"))
    w.write(pkts, when=1_700_000_000.25)
    w.close()
    raw = (tmp_path / "c.pcap").read_bytes()
    assert struct.unpack_from("<IHHiIII", raw)[6] == LINKTYPE_RAW
    back = rdpcap(str(tmp_path / "c.pcap"))
    assert [bytes(p) for p in back] == pkts
    assert float(back[0].time) == pytest.approx(1_700_000_000.25)


def test_pcap_limit_never_writes_half_a_record(tmp_path):
    w = PcapWriter(str(tmp_path / "c.pcap"), limit=24 + 16 + 100)
    w.write([bytes(100), bytes(100)])
    w.close()
    assert w.packets == 1 and w.dropped == 1
    assert os.path.getsize(tmp_path / "c.pcap") == 24 + 16 + 100


def test_esp_sa_lines():
    line = uat_line(_spec())
    assert line == ('"IPv4","192.0.2.1","192.0.2.2","0x1234abcd",'
                    '"AES-GCM with 16 octet ICV [RFC4106]","0x' + bytes(range(20)).hex() +
                    '","NULL","0x"')
    cbc = uat_line(_spec(cipher="aes-cbc-256", key=bytes(32), integrity="hmac-sha256-128",
                         integrity_key=b"\x01" * 32, tunnel_src="2001:db8::1",
                         tunnel_dst="2001:db8::2"))
    assert cbc.startswith('"IPv6","2001:db8::1","2001:db8::2"')
    assert '"AES-CBC [RFC3602]"' in cbc and '"HMAC-SHA-256-128 [RFC4868]","0x' + "01" * 32 in cbc
    assert uat_line(_spec(protocol="ah", cipher="null", key=b"", integrity="hmac-sha256-128",
                          integrity_key=bytes(32))) is None


def test_esp_key_file_is_private_and_keeps_removed_sas(tmp_path):
    path = tmp_path / "esp_sa"
    log = EspKeyLog(str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert log.add([_spec(), _spec()]) == 1
    assert log.add([_spec(spi=0x1000)]) == 1
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#") and len(lines) == 3
    small = EspKeyLog(str(tmp_path / "small"), limit=2)
    small.add([_spec(spi=0x1000 + i) for i in range(5)])
    assert len(small) == 2 and "0x00001004" in (tmp_path / "small").read_text()


# ---------------------------------------------------------------- outer headers
def test_natt_classification():
    assert classify_natt(b"\x00\x00\x00\x00" + bytes(28)) == "ike"
    assert classify_natt(b"\xff") == "keepalive"
    assert classify_natt(b"\x12\x34\x56\x78" + bytes(20)) == "esp"


@pytest.mark.parametrize("src,dst", [("192.0.2.2", "192.0.2.1"), ("2001:db8::2", "2001:db8::1")])
def test_rebuilt_udp_packets_are_valid(src, dst):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    payload = b"\x01\x02\x03\x04" + bytes(40)
    pkt = udp_packet_for((src, 4500), (dst, 4500), payload)
    cls = IP if ":" not in src else IPv6
    parsed = cls(pkt)
    assert parsed[UDP].sport == 4500 and bytes(parsed[UDP].payload) == payload
    again = cls(bytes(cls(pkt)))           # scapy recomputes the checksums: unchanged
    if cls is IP:
        del again.chksum
    else:
        del again[UDP].chksum
    assert bytes(cls(bytes(again))) == pkt


# ---------------------------------------------------------------- event log and routes
def test_event_log_line_shape():
    import datetime
    out = io.StringIO()
    log = EventLog(out, host="gw-a",
                   clock=lambda: datetime.datetime(2026, 12, 5, 5, 4, 3))
    line = log.emit("KMD_VPN_UP_ALARM_USER", "VPN vpn-1 from 192.0.2.2 is up.")
    assert line == (f"Dec  5 05:04:03 gw-a kmd[{os.getpid()}]: KMD_VPN_UP_ALARM_USER: VPN "
                    "vpn-1 from 192.0.2.2 is up.")
    assert out.getvalue() == line + "\n"
    assert proxy_id(["10.1.0.0/24"]) == "ipv4_subnet(any:0,[0..7]=10.1.0.0/24)"
    assert proxy_id([]) == "ipv4_subnet(any:0,[0..7]=0.0.0.0/0)"


def test_tunnel_routes_from_the_configuration():
    from inline_ipsec.config import load_config
    from lab import junos_psk
    cfg = load_config(junos_psk(4, "a"))
    addrs, routes = tunnel_routes(cfg)
    assert "10.2.0.0/24" in routes
    cfg6 = load_config(junos_psk(6, "a", inner=6))
    assert [ipaddress.ip_network(r).version for r in tunnel_routes(cfg6)[1]] == [6, 6]


def test_commit_keeps_only_untouched_ike_gateways():
    from inline_ipsec.config import load_config
    from inline_ipsec.io.daemon import _same_ike_gateway
    from lab import junos_psk
    base = load_config(junos_psk(4, "a"))
    assert _same_ike_gateway(base, load_config(junos_psk(4, "a")), "peer")
    # DF bit and DSCP copy are applied to live SAs: the IKE gateway stays
    assert _same_ike_gateway(base, load_config(junos_psk(4, "a", df_bit="set")), "peer")
    # anything its IKE or child SAs depend on: negotiated afresh
    for changed in (junos_psk(4, "a", cipher="aes-256-gcm"),
                    junos_psk(4, "a", psk="another-psk-0123456789"),
                    junos_psk(4, "a", lifetime=1200),
                    junos_psk(4, "a").replace("hostname a.example", "hostname z.example"),
                    junos_psk(4, "a").replace("remote-ip 10.2.0.0/24", "remote-ip 10.3.0.0/24")):
        assert not _same_ike_gateway(base, load_config(changed), "peer")
    gone = load_config(junos_psk(4, "a").replace("gateway peer", "gateway other"))
    assert not _same_ike_gateway(base, gone, "peer")


def test_ike_events_are_logged_by_their_class_with_the_ike_version() -> None:
    # The daemon's event log reads each IKE event's own fields: the version of an IKEv1
    # ISAKMP SA is logged as 1, a responder as such, a deleted child SA with its SPI.
    from inline_ipsec.config import License
    from inline_ipsec.dataplane.gateway import Gateway
    from inline_ipsec.ike.events import ChildSaDown, IkeSaUp
    from inline_ipsec.io.daemon import Daemon

    out = io.StringIO()
    d = Daemon.__new__(Daemon)          # no sockets or TUN: only the event-to-log mapping
    d.log, d.ike, d.ike_port = EventLog(out, host="gw-a"), None, 500
    d.gw, d._up, d._tunnel_ids = Gateway(name="gw-a", license=License()), {"vpn-1"}, {}
    d._on_ike_event("vpn-1", IkeSaUp(b"i" * 8, b"r" * 8, False, "a.example", "b.example",
                                     "aes128-sha256-modp2048", version=1,
                                     exchange_mode="Main"))
    d._on_ike_event("vpn-1", ChildSaDown(0x1234, 0x5678, reason="expired"))
    log = out.getvalue()
    assert "IKE_NEGOTIATION_SUCCESSFUL: IKE negotiation successfully completed. IKE Version: 1," \
        in log
    assert "Local IKE-ID: a.example, Remote IKE-ID: b.example, VR-ID: 0, Role: Responder" in log
    assert "IPsec SA deleted (expired), SPI 0x00001234" in log
