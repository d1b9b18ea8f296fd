"""docs/design.md Table 1, one test per row and column: where the tunnel goes, and why."""
from __future__ import annotations

import datetime as dt

import pytest

from inline_ipsec.config import License, load_config
from inline_ipsec.distribution import TABLE_1, Placement, Settings, Tunnel, place, place_config
from inline_ipsec.distribution.placement import tunnel_from_config

TODAY = dt.date(2026, 3, 1)
LICENSED = Settings(today=TODAY, license=License(expires=dt.date(2026, 12, 31)))


def test_table_1_has_every_row() -> None:
    assert sorted({r.row for r in TABLE_1}) == [0, 1, 2, 3, 4, 5, 6]
    row5 = next(r for r in TABLE_1 if r.row == 5)
    assert row5.pfe == "up to 4000 SAs / 2000 tunnels"


def test_default_tunnel_is_offloaded() -> None:
    p = place(Tunnel(), LICENSED)
    assert p == Placement("pfe", ()) and p.offloaded


# Row 1: ESP tunnel mode | AH tunnel mode (and anything else)

def test_row1_pfe_esp_tunnel_mode() -> None:
    assert place(Tunnel(protocol="esp", mode="tunnel"), LICENSED).engine == "pfe"


def test_row1_cpu_ah() -> None:
    p = place(Tunnel(protocol="ah", cipher="null"), LICENSED)
    assert p == Placement("cpu", ("AH protocol not supported by PFE",))


def test_row1_cpu_transport_mode() -> None:
    p = place(Tunnel(mode="transport"), LICENSED)
    assert p == Placement("cpu", ("transport mode not supported by PFE",))


# Row 2: AES-GCM 128/256 | every other cipher

@pytest.mark.parametrize("cipher", ["aes-gcm-128", "aes-gcm-256", "aes-128-gcm", "aes-256-gcm"])
def test_row2_pfe_gcm_128_256(cipher: str) -> None:
    assert place(Tunnel(cipher=cipher), LICENSED).engine == "pfe"


@pytest.mark.parametrize("cipher", ["aes-gcm-192", "aes-cbc-256", "aes-ctr-128", "3des-cbc",
                                    "chacha20-poly1305", "aes-gmac-128", "null"])
def test_row2_cpu_other_ciphers(cipher: str) -> None:
    p = place(Tunnel(cipher=cipher), LICENSED)
    assert p == Placement(
        "cpu", (f"encryption algorithm {cipher} not supported by PFE (AES-GCM 128/256 only)",))


def test_row2_junos_cipher_names_are_mapped() -> None:
    p = place(Tunnel(cipher="aes-256-cbc"), LICENSED)
    assert p.reasons == (
        "encryption algorithm aes-cbc-256 not supported by PFE (AES-GCM 128/256 only)",)


# Row 3: site-to-site, MNHA ICL | point-to-multipoint, group VPN, ADVPN

@pytest.mark.parametrize("deployment", ["site-to-site", "mnha-icl"])
def test_row3_pfe_deployments(deployment: str) -> None:
    assert place(Tunnel(deployment=deployment), LICENSED).engine == "pfe"


@pytest.mark.parametrize("deployment, reason", [
    ("p2mp", "point-to-multipoint deployment not supported by PFE"),
    ("group-vpn", "group VPN deployment not supported by PFE"),
    ("advpn", "ADVPN deployment not supported by PFE"),
])
def test_row3_cpu_deployments(deployment: str, reason: str) -> None:
    assert place(Tunnel(deployment=deployment), LICENSED) == Placement("cpu", (reason,))


def test_unknown_deployment_rejected() -> None:
    with pytest.raises(ValueError, match="expected one of"):
        Tunnel(deployment="hub-and-spoke")


# Row 4: anti-replay window up to 4096 | above 4096

@pytest.mark.parametrize("window", [0, 64, 1024, 4096])
def test_row4_pfe_window_up_to_4096(window: int) -> None:
    assert place(Tunnel(replay_window=window), LICENSED).engine == "pfe"


@pytest.mark.parametrize("window", [4097, 8192, 65536])
def test_row4_cpu_window_above_4096(window: int) -> None:
    p = place(Tunnel(replay_window=window), LICENSED)
    assert p == Placement("cpu", (f"anti-replay window {window} > 4096",))


# Row 5: up to 4000 SAs / 2000 tunnels | more than 4000 SAs; several child SAs in one tunnel

def test_row5_pfe_2000th_tunnel() -> None:
    s = Settings(today=TODAY, license=License(), pfe_tunnels_in_use=1999, pfe_sas_in_use=3998)
    assert place(Tunnel(), s) == Placement("pfe")


def test_row5_cpu_2001st_tunnel() -> None:
    s = Settings(today=TODAY, license=License(), pfe_tunnels_in_use=2000, pfe_sas_in_use=4000)
    assert place(Tunnel(), s) == Placement("cpu", (
        "PFE SA capacity exceeded (4002 > 4000)",
        "PFE tunnel capacity exceeded (2001 > 2000)",
    ))


def test_row5_cpu_more_than_4000_sas() -> None:
    s = Settings(today=TODAY, license=License(), pfe_tunnels_in_use=10, pfe_sas_in_use=3999)
    assert place(Tunnel(), s) == Placement("cpu", ("PFE SA capacity exceeded (4001 > 4000)",))


def test_row5_cpu_several_child_sas() -> None:
    p = place(Tunnel(sa_pairs=3), LICENSED)
    assert p == Placement("cpu", ("3 child SA pairs in one tunnel (PFE supports 1)",))
    assert Tunnel(sa_pairs=3).sa_count == 6


# Row 6: NAT-T tunnels | lifetime in kilobytes

def test_row6_pfe_nat_t() -> None:
    assert place(Tunnel(udp_encap=True), LICENSED).engine == "pfe"


def test_row6_cpu_lifesize() -> None:
    p = place(Tunnel(lifetime_kilobytes=64), LICENSED)
    assert p == Placement("cpu", ("lifetime-kilobytes configured",))


# Chassis-wide switches

def test_hw_offload_disable() -> None:
    s = Settings(today=TODAY, license=License(), hw_offload_disable=True)
    assert place(Tunnel(), s) == Placement("cpu", ("hw-offload-disable configured",))


def test_license_none() -> None:
    s = Settings(today=TODAY)
    assert s.license_state == "none"
    assert place(Tunnel(), s) == Placement("cpu", ("no valid IPsec offload license",))


def test_license_expired() -> None:
    s = Settings(today=dt.date(2027, 1, 1), license=License(expires=dt.date(2026, 12, 31)))
    assert s.license_state == "expired"
    assert place(Tunnel(), s) == Placement(
        "cpu", ("no valid IPsec offload license (expired 2026-12-31)",))


def test_license_valid_through_expiry_day_and_permanent() -> None:
    s = Settings(today=dt.date(2026, 12, 31), license=License(expires=dt.date(2026, 12, 31)))
    assert s.license_state == "valid" and place(Tunnel(), s).offloaded
    s = Settings(today=dt.date(2099, 1, 1), license=License())
    assert s.license_state == "valid" and place(Tunnel(), s).offloaded


def test_every_reason_at_once_in_table_order() -> None:
    s = Settings(today=TODAY, hw_offload_disable=True, pfe_tunnels_in_use=2000,
                 pfe_sas_in_use=4000)
    t = Tunnel(protocol="esp", mode="transport", cipher="aes-cbc-128", deployment="advpn",
               replay_window=8192, lifetime_kilobytes=1000, sa_pairs=2, udp_encap=True)
    assert place(t, s).reasons == (
        "hw-offload-disable configured",
        "no valid IPsec offload license",
        "transport mode not supported by PFE",
        "encryption algorithm aes-cbc-128 not supported by PFE (AES-GCM 128/256 only)",
        "ADVPN deployment not supported by PFE",
        "anti-replay window 8192 > 4096",
        "2 child SA pairs in one tunnel (PFE supports 1)",
        "PFE SA capacity exceeded (4004 > 4000)",
        "PFE tunnel capacity exceeded (2001 > 2000)",
        "lifetime-kilobytes configured",
    )


def test_tunnel_from_spec() -> None:
    from inline_ipsec.sa import Lifetime, SaSpec

    spec = SaSpec(spi=0x1001, cipher="aes-gcm-128", key=bytes(20), tunnel_src="2001:db8::1",
                  tunnel_dst="2001:db8::2", udp_encap=True, replay_window=1024)
    t = Tunnel.from_spec(spec, name="v6")
    assert t == Tunnel(cipher="aes-gcm-128", replay_window=1024, udp_encap=True, name="v6")
    assert place(t, LICENSED).offloaded          # IPv6 outer and NAT-T: both offloaded
    kb = SaSpec(spi=0x1002, cipher="aes-gcm-256", key=bytes(36), tunnel_src="192.0.2.1",
                tunnel_dst="192.0.2.2", lifetime=Lifetime(soft_kilobytes=50,
                                                          hard_kilobytes=64))
    assert place(Tunnel.from_spec(kb, deployment="mnha-icl"), LICENSED).reasons == (
        "lifetime-kilobytes configured",)


# From a configuration (what `inline-ipsec check FILE` uses)

CONFIG = """\
set security ike proposal ike-1 authentication-method pre-shared-keys
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 pre-shared-key ascii-text "secret"
set security ike gateway gw ike-policy ike-1
set security ike gateway gw address 198.51.100.1
set security ike gateway gw external-interface ge-0/0/0.0
set security ike gateway gw version v2-only
set security ipsec proposal gcm encryption-algorithm aes-256-gcm
set security ipsec proposal cbc encryption-algorithm aes-256-cbc
set security ipsec proposal cbc authentication-algorithm hmac-sha-256-128
set security ipsec proposal cbc lifetime-kilobytes 10000
set security ipsec policy fast proposals gcm
set security ipsec policy slow proposals cbc
set security ipsec vpn a bind-interface st0.0
set security ipsec vpn a ike gateway gw
set security ipsec vpn a ike ipsec-policy fast
set security ipsec vpn a ike anti-replay-window-size 4096
set security ipsec vpn b bind-interface st0.1
set security ipsec vpn b ike gateway gw
set security ipsec vpn b ike ipsec-policy slow
set security ipsec vpn c bind-interface st0.2
set security ipsec vpn c ike gateway gw
set security ipsec vpn c ike ipsec-policy fast
set security ipsec vpn c traffic-selector t1 local-ip 10.1.0.0/16 remote-ip 10.2.0.0/16
set security ipsec vpn c traffic-selector t2 local-ip 10.3.0.0/16 remote-ip 10.4.0.0/16
set interfaces st0 unit 0 family inet
set interfaces st0 unit 1 family inet
set interfaces st0 unit 2 family inet
set interfaces st0 unit 2 multipoint
set system license ipsec-offload expires 2026-12-31
"""


def test_tunnel_from_config() -> None:
    c = load_config(CONFIG)
    assert tunnel_from_config(c, "a") == Tunnel(name="a", cipher="aes-gcm-256",
                                                replay_window=4096)
    b = tunnel_from_config(c, "b")
    assert (b.cipher, b.lifetime_kilobytes) == ("aes-cbc-256", 10000)
    cc = tunnel_from_config(c, "c")
    assert (cc.deployment, cc.sa_pairs) == ("p2mp", 2)


def test_place_config() -> None:
    c = load_config(CONFIG)
    result = place_config(c, TODAY)
    assert result["a"] == Placement("pfe")
    assert result["b"] == Placement("cpu", (
        "encryption algorithm aes-cbc-256 not supported by PFE (AES-GCM 128/256 only)",
        "lifetime-kilobytes configured"))
    assert result["c"] == Placement("cpu", (
        "point-to-multipoint deployment not supported by PFE",
        "2 child SA pairs in one tunnel (PFE supports 1)"))
    expired = place_config(c, dt.date(2027, 1, 1))
    assert expired["a"].reasons == ("no valid IPsec offload license (expired 2026-12-31)",)


def test_place_config_hw_offload_disable() -> None:
    c = load_config(CONFIG + "set security ipsec hw-offload-disable\n")
    assert place_config(c, TODAY)["a"] == Placement("cpu", ("hw-offload-disable configured",))


def test_place_config_counts_capacity() -> None:
    lines = [CONFIG.split("set security ipsec vpn a")[0]]
    for i in range(2001):
        lines.append(f"set security ipsec vpn t{i} bind-interface st0.0\n"
                     f"set security ipsec vpn t{i} ike gateway gw\n"
                     f"set security ipsec vpn t{i} ike ipsec-policy fast\n")
    lines.append("set interfaces st0 unit 0 family inet\n"
                 "set system license ipsec-offload permanent\n")
    result = place_config(load_config("".join(lines)), TODAY)
    assert result["t1999"].offloaded
    assert result["t2000"] == Placement("cpu", ("PFE SA capacity exceeded (4002 > 4000)",
                                                "PFE tunnel capacity exceeded (2001 > 2000)"))
