"""The renderers against show output captured on real devices (tests/data/junos/, sources in
its README): the same state rendered by the model gives the same lines, field for field
(whitespace inside a line may differ only where the capture has trailing blanks)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from inline_ipsec.pki import render_certificate
from inline_ipsec.stats import (FlowStatistics, IkeSaRecord, IpsecStatistics, SaSnapshot,
                                TunnelSnapshot, proxy_identity, render_flow_statistics,
                                render_ike_sa_summary, render_ipsec_sa_detail,
                                render_ipsec_sa_summary, render_ipsec_statistics)

CAPTURES = Path(__file__).parent.parent / "data" / "junos"


def capture(name: str) -> list[str]:
    return (CAPTURES / name).read_text().splitlines()


def same_fields(ours: str, theirs: list[str]) -> None:
    mine = ours.splitlines()
    assert [line.split() for line in mine] == [line.split() for line in theirs]
    # and the same text, but for blanks the capture has at the end of a line
    assert [line.rstrip() for line in mine] == [line.rstrip() for line in theirs]


def pair(tunnel_id: int, spi_in: int, spi_out: int, gateway: str, life: int,
         cipher: str = "aes-gcm-256", **kw) -> TunnelSnapshot:
    sa = SaSnapshot(direction="inbound", spi=spi_in, cipher=cipher,
                    hard_lifetime_remaining=life)
    return TunnelSnapshot(tunnel_id=tunnel_id, vpn_name="v", local_gateway="192.0.2.1",
                          remote_gateway=gateway,
                          sas=(sa, dataclasses.replace(sa, direction="outbound", spi=spi_out)),
                          **kw)


def test_iked_summary_vsrx() -> None:
    text = render_ipsec_sa_summary([
        pair(17277221, 0xB438B7DC, 0xC1ADA161, "100.64.50.21", 3213),
        pair(17277220, 0x72D36134, 0xC2CEF86C, "100.64.50.22", 2381)])
    same_fields(text, capture("vsrx-iked-ipsec-sa.txt"))


def test_iked_summary_mx() -> None:
    text = render_ipsec_sa_summary([pair(500011, 0x6D0C6331, 0xE1ED7345, "13.10.2.2", 1222)])
    same_fields(text, capture("mx-ipsec-sa.txt"))


def test_kmd_summary_vsrx() -> None:
    text = render_ipsec_sa_summary(
        [pair(131073, 0xEC78F80E, 0xC674A8AC, "128.168.104.229", 2528, "aes-gcm-128")],
        style="kmd")
    same_fields(text, capture("vsrx-kmd-ipsec-sa.txt"))


def test_life_field_is_eleven_characters() -> None:
    """`5044/ unlim` but `21727/unlim`: the seconds and kilobytes share one field."""
    text = render_ipsec_sa_summary([pair(131075, 1, 2, "192.0.2.9", 22833, "aes-cbc-256",
                                         )], style="kmd")
    assert " 22833/unlim " in text
    assert " 999/  unlim " in render_ipsec_sa_summary([pair(1, 1, 2, "192.0.2.9", 999)])


def test_ike_summary_kmd_up_and_down() -> None:
    lines = capture("vsrx-kmd-ike-sa.txt")
    up = render_ike_sa_summary([IkeSaRecord(2859401, "UP", 0xF514114A799925FE,
                                            0xF8DE58A2690993D7, "IKEv2", "128.168.104.229")])
    down = render_ike_sa_summary([IkeSaRecord(2859309, "DOWN", 0xE7753A11FF890094, 0,
                                              "IKEv2", "128.168.104.229")])
    same_fields(up + down, lines)


def test_ike_summary_mx() -> None:
    text = render_ike_sa_summary([IkeSaRecord(75, "UP", 0xE0B71D9E1C29C324,
                                              0x1ACE68C4DCFA427B, "IKEv2", "13.10.2.2")])
    same_fields(text, capture("mx-ike-sa.txt"))


def test_ipsec_sa_detail_srx4700() -> None:
    sa = SaSnapshot(direction="inbound", spi=0x6304B842, cipher="aes-gcm-256",
                    hard_lifetime_remaining=3179, soft_lifetime_remaining=2559,
                    replay_window=4096, esn=True)
    t = TunnelSnapshot(
        tunnel_id=500002, vpn_name="4700", local_gateway="192.168.3.1",
        remote_gateway="192.168.3.2", local_identity=proxy_identity("0.0.0.0/0"),
        remote_identity=proxy_identity("0.0.0.0/0"), quantum_secured=True,
        hardware_offloaded=True, pfs_group=20, bind_interface="st0.0", policy_name="ipsec-1",
        events=("Sun Sep 14 2025 09:34:29: IPsec SA negotiation succeeds (1 times)",),
        location="FPC 0, PIC 0", anchorship="Thread 4", ike_sa_index=5,
        sas=(sa, dataclasses.replace(sa, direction="outbound", spi=0xA6FFA623)))
    same_fields(render_ipsec_sa_detail([t]), capture("srx4700-ipsec-sa-detail.txt"))


def test_ipsec_statistics_srx4700() -> None:
    stats = IpsecStatistics(esp_encrypted_bytes=564503159752,
                            esp_encrypted_packets=10080413567)
    same_fields(render_ipsec_statistics(stats), capture("srx4700-ipsec-statistics.txt"))


def test_flow_statistics_srx4700() -> None:
    stats = FlowStatistics(current_sessions=3, packets_received=6143, packets_transmitted=6148,
                           services_offload_packets=9794771735)
    same_fields(render_flow_statistics(stats), capture("srx4700-flow-statistics.txt"))


def test_pki_local_certificate_detail_vsrx() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    t0 = dt.datetime(2024, 5, 26, 23, 22, 50, tzinfo=dt.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gw-01")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA01")]))
            .public_key(key.public_key()).serial_number(3)
            .not_valid_before(t0).not_valid_after(t0 + dt.timedelta(days=720))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("gw-01.autovpn-01.domain")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ours = render_certificate(cert, "gw-01", detail=True)
    theirs = [line for line in capture("vsrx-pki-local-certificate-detail.txt")
              if line != "<SNIP>"]
    start = ours.index(theirs[0])
    assert [line.rstrip() for line in ours[start:start + len(theirs)]] == \
        [line.rstrip() for line in theirs]


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.txt")))
def test_every_capture_has_a_source(name: str) -> None:
    readme = (CAPTURES / "README.md").read_text()
    assert f"`{name}`" in readme


def test_inactive_tunnels_kmd() -> None:
    from inline_ipsec.gateway.inactive import InactiveTunnel, render_inactive_tunnels
    down = InactiveTunnel(
        vpn="IPSEC-VPN", tunnel_id=131073, local_gateway="192.0.2.1",
        remote_gateway="128.168.104.229", version="IKEv2", df_bit="clear",
        bind_interface="st0.1", port=500, negotiations=130, failures=130, immediately=True,
        events=(), down_reason="No response from peer. Negotiation failed (130 times)",
        can_come_up=True)
    text = render_inactive_tunnels([], style="kmd") + render_inactive_tunnels([down],
                                                                              style="kmd")
    same_fields(text, capture("vsrx-kmd-inactive-tunnels.txt"))
