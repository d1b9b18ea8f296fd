"""The built-in configuration of `inline-ipsec demo`: two SRX gateways, mirror images.

Every VPN exists on both sides under the same name. Gateway "a" protects 10.1.N.0/24 and
2001:db8:a:N::/64, gateway "b" 10.2.N.0/24 and 2001:db8:b:N::/64, where N is the VPN's st0
unit. Four VPNs are offloaded to the PFE (IPv4, IPv6, NAT-T, a manual SA); seven stay on the
CPU, one for each reason of docs/design.md Table 1. `demo_config("a")` returns the Junos text.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DemoVpn", "DEMO_VPNS", "OUTER", "demo_config", "lan", "NAT_T_VPNS",
           "scale_config"]

#: (IPv4, IPv6) outer addresses of each side.
OUTER = {"a": ("192.0.2.1", "2001:db8::1"), "b": ("198.51.100.1", "2001:db8:ffff::1")}


@dataclass(frozen=True)
class DemoVpn:
    name: str
    unit: int
    policy: str = ""              # ipsec policy (empty for the manual SA)
    window: int = 0               # anti-replay-window-size (0: the default, 64)
    outer6: bool = False
    inet6: bool = False           # st0 unit also carries IPv6 inner traffic
    inet4: bool = True
    multipoint: bool = False
    selectors: int = 0            # traffic selectors (child SAs)
    manual: bool = False
    expect: str = "Yes"           # the offload verdict the demo expects
    why: str = ""


DEMO_VPNS = (
    DemoVpn("vpn-gcm256", 0, "pol-gcm256", window=4096, why="AES-GCM-256, ESN, window 4096"),
    DemoVpn("vpn-gcm128-v6", 1, "pol-gcm128", outer6=True, inet6=True, inet4=False,
            why="AES-GCM-128, IPv6 in IPv6"),
    DemoVpn("vpn-natt", 2, "pol-gcm256", why="AES-GCM-256 over NAT-T (UDP 4500)"),
    DemoVpn("vpn-manual", 3, manual=True, why="manual SA, AES-GCM-128"),
    DemoVpn("vpn-ah", 4, "pol-ah", expect="No", why="AH"),
    DemoVpn("vpn-cbc", 5, "pol-cbc", inet6=True, expect="No", why="AES-CBC + HMAC-SHA-256"),
    DemoVpn("vpn-chacha", 6, "pol-chacha", expect="No", why="ChaCha20-Poly1305"),
    DemoVpn("vpn-window", 7, "pol-gcm256", window=8192, expect="No",
            why="anti-replay window 8192"),
    DemoVpn("vpn-lifesize", 8, "pol-lifesize", expect="No", why="lifetime-kilobytes"),
    DemoVpn("vpn-p2mp", 9, "pol-gcm256", multipoint=True, expect="No",
            why="point-to-multipoint"),
    DemoVpn("vpn-multi", 10, "pol-gcm256", selectors=2, expect="No", why="2 child SAs"),
)

NAT_T_VPNS = ("vpn-natt",)

_MANUAL_KEY = "0x" + "5c" * 16 + "a1b2c3d4"     # AES-128 key + 4-byte salt (RFC 4106 §8.1)


def lan(side: str, unit: int, v6: bool = False, selector: int = 0) -> str:
    """The protected network of `side` behind st0.`unit` (selector N uses the next ones)."""
    n = 10 if side == "a" else 20
    third = unit + 100 * selector
    if v6:
        return f"2001:db8:{'a' if side == 'a' else 'b'}:{third:x}::/64"
    return f"10.{n // 10}.{third}.0/24"


def demo_config(side: str, hw_offload_disable: bool = False) -> str:
    """The Junos `set` configuration of gateway `side` ("a" or "b")."""
    if side not in ("a", "b"):
        raise ValueError("side is 'a' or 'b'")
    peer = "b" if side == "a" else "a"
    me4, me6 = OUTER[side]
    peer4, peer6 = OUTER[peer]
    lines = [
        f"# inline-ipsec demo: gateway {side} (the peer is the mirror image)",
        "set system license ipsec-offload permanent",
        f"set interfaces ge-0/0/0 unit 0 family inet address {me4}/24",
        f"set interfaces ge-0/0/0 unit 0 family inet6 address {me6}/64",
        "set security ike proposal ike-1 authentication-method pre-shared-keys",
        "set security ike proposal ike-1 dh-group group20",
        "set security ike proposal ike-1 encryption-algorithm aes-256-gcm",
        "set security ike policy ike-1 proposals ike-1",
        'set security ike policy ike-1 pre-shared-key ascii-text "inline-ipsec-demo"',
    ]
    for gw, addr in (("peer-v4", peer4), ("peer-v6", peer6)):
        lines += [
            f"set security ike gateway {gw} ike-policy ike-1",
            f"set security ike gateway {gw} address {addr}",
            f"set security ike gateway {gw} external-interface ge-0/0/0.0",
            f"set security ike gateway {gw} version v2-only",
        ]
    lines.append("set security ike gateway peer-v4 nat-keepalive 10")
    # RFC 8784 PPK on vpn-gcm256's gateway: "Quantum Secured: Yes"
    lines += ["set security ike gateway peer-v4 ppk-profile quantum",
              'set security key-manager profiles quantum static key-id ascii-text '
              '"inline-ipsec-demo-ppk"',
              'set security key-manager profiles quantum static key ascii-text '
              '"demo post-quantum preshared key, 32+ bytes of entropy"']
    # One IKE gateway per further VPN: the same peer address, told apart by identities
    # (RFC 7296 §2.15: the responder picks its policy by IDi/IDr).
    for v in DEMO_VPNS:
        if v.manual or v.unit < 2:
            continue
        g = f"set security ike gateway gw-{v.name}"
        lines += [f"{g} ike-policy ike-1",
                  f"{g} address {peer6 if v.outer6 else peer4}",
                  f"{g} external-interface ge-0/0/0.0",
                  f"{g} version v2-only",
                  f"{g} local-identity hostname {v.name}.{side}.demo",
                  f"{g} remote-identity hostname {v.name}.{peer}.demo"]
    proposals = {
        "gcm256": ["encryption-algorithm aes-256-gcm", "extended-sequence-number"],
        "gcm128": ["encryption-algorithm aes-128-gcm"],
        "ah": ["protocol ah", "authentication-algorithm hmac-sha-256-128"],
        "cbc": ["encryption-algorithm aes-256-cbc", "authentication-algorithm hmac-sha-256-128"],
        "chacha": ["encryption-algorithm chacha20-poly1305"],
        "lifesize": ["encryption-algorithm aes-256-gcm", "lifetime-kilobytes 500000"],
    }
    for name, stmts in proposals.items():
        lines += [f"set security ipsec proposal p-{name} {s}" for s in stmts]
        lines.append(f"set security ipsec proposal p-{name} lifetime-seconds 3600")
        lines.append(f"set security ipsec policy pol-{name} proposals p-{name}")
    lines.append("set security ipsec policy pol-gcm256 perfect-forward-secrecy keys group20")
    for v in DEMO_VPNS:
        st0 = f"st0.{v.unit}"
        pre = f"set security ipsec vpn {v.name}"
        if v.inet4:
            lines.append(f"set interfaces st0 unit {v.unit} family inet")
        if v.inet6:
            lines.append(f"set interfaces st0 unit {v.unit} family inet6")
        if v.multipoint:
            lines.append(f"set interfaces st0 unit {v.unit} multipoint")
        lines.append(f"{pre} bind-interface {st0}")
        if v.manual:
            lines += [
                f"{pre} manual spi 1000",
                f"{pre} manual protocol esp",
                f"{pre} manual encryption algorithm aes-128-gcm key hexadecimal {_MANUAL_KEY}",
                f"{pre} manual gateway {peer4}",
                f"{pre} manual external-interface ge-0/0/0.0",
            ]
        else:
            ike_gw = {0: "peer-v4", 1: "peer-v6"}.get(v.unit, f"gw-{v.name}")
            lines += [f"{pre} ike gateway {ike_gw}",
                      f"{pre} ike ipsec-policy {v.policy}",
                      f"{pre} establish-tunnels immediately"]
            if v.window:
                lines.append(f"{pre} ike anti-replay-window-size {v.window}")
        for i in range(v.selectors):
            lines.append(f"{pre} traffic-selector ts{i} local-ip {lan(side, v.unit, False, i)}"
                         f" remote-ip {lan(peer, v.unit, False, i)}")
        if not v.selectors:
            if v.inet4:
                lines.append(f"set routing-options static route {lan(peer, v.unit)} "
                             f"next-hop {st0}")
            if v.inet6:
                lines.append(f"set routing-options rib inet6.0 static route "
                             f"{lan(peer, v.unit, True)} next-hop {st0}")
    lines.append("set security ipsec vpn vpn-gcm256 df-bit copy")
    if hw_offload_disable:
        lines.append("set security ipsec hw-offload-disable")
    return "\n".join(lines) + "\n"


def scale_config(side: str, tunnels: int, dh_group: int = 19) -> str:
    """`tunnels` IKEv2 PSK VPNs between the two demo gateways (the scale benchmark): VPN
    `t<i>` protects 10.<1|2>.<i / 256>.<i % 256>/32 with AES-GCM-256 (PFE-eligible), one IKE
    gateway each, told apart by identities (RFC 7296 §2.15)."""
    if side not in ("a", "b"):
        raise ValueError("side is 'a' or 'b'")
    peer = "b" if side == "a" else "a"
    me4, peer4 = OUTER[side][0], OUTER[peer][0]
    mine, theirs = ("1", "2") if side == "a" else ("2", "1")
    lines = [
        "set system license ipsec-offload permanent",
        f"set interfaces ge-0/0/0 unit 0 family inet address {me4}/24",
        "set security ike proposal ike-s authentication-method pre-shared-keys",
        f"set security ike proposal ike-s dh-group group{dh_group}",
        "set security ike proposal ike-s encryption-algorithm aes-128-gcm",
        "set security ike policy ike-s proposals ike-s",
        'set security ike policy ike-s pre-shared-key ascii-text "inline-ipsec-scale"',
        "set security ipsec proposal p-s encryption-algorithm aes-256-gcm",
        "set security ipsec policy pol-s proposals p-s",
    ]
    for i in range(tunnels):
        g, v = f"set security ike gateway g{i}", f"set security ipsec vpn t{i}"
        host = f"{i // 256}.{i % 256}"
        lines += [f"{g} ike-policy ike-s", f"{g} address {peer4}",
                  f"{g} external-interface ge-0/0/0.0", f"{g} version v2-only",
                  f"{g} local-identity hostname t{i}.{side}.scale",
                  f"{g} remote-identity hostname t{i}.{peer}.scale",
                  f"set interfaces st0 unit {i} family inet",
                  f"{v} bind-interface st0.{i}",
                  f"{v} ike gateway g{i}", f"{v} ike ipsec-policy pol-s",
                  f"{v} establish-tunnels immediately",
                  f"{v} traffic-selector ts local-ip 10.{mine}.{host}/32 "
                  f"remote-ip 10.{theirs}.{host}/32"]
    return "\n".join(lines) + "\n"
