"""Helpers of the gateway tests: a small manual-SA configuration and a fixed clock."""
from __future__ import annotations

import datetime as _dt

FIXED = _dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=_dt.timezone.utc)

GCM_KEY = "0x" + "11" * 16 + "01020304"
CBC_KEY = "0x" + "22" * 32
HMAC_KEY = "0x" + "33" * 32


def small_config(side: str, extra: str = "") -> str:
    """Two manual-SA VPNs between 192.0.2.1 (a) and 198.51.100.1 (b): v-pfe (AES-GCM-128,
    offloaded) on st0.0 and v-cpu (AES-CBC-256 + HMAC-SHA-256, CPU) on st0.1."""
    me, peer = ("192.0.2.1", "198.51.100.1") if side == "a" else ("198.51.100.1", "192.0.2.1")
    mine, theirs = ("10.1", "10.2") if side == "a" else ("10.2", "10.1")
    lines = [
        "set system license ipsec-offload permanent",
        f"set interfaces ge-0/0/0 unit 0 family inet address {me}/24",
        "set interfaces st0 unit 0 family inet",
        "set interfaces st0 unit 1 family inet",
        "set security ipsec vpn v-pfe bind-interface st0.0",
        "set security ipsec vpn v-pfe manual spi 1000",
        "set security ipsec vpn v-pfe manual protocol esp",
        "set security ipsec vpn v-pfe manual encryption algorithm aes-128-gcm key "
        f"hexadecimal {GCM_KEY}",
        f"set security ipsec vpn v-pfe manual gateway {peer}",
        "set security ipsec vpn v-pfe manual external-interface ge-0/0/0.0",
        "set security ipsec vpn v-cpu bind-interface st0.1",
        "set security ipsec vpn v-cpu manual spi 2000",
        "set security ipsec vpn v-cpu manual protocol esp",
        "set security ipsec vpn v-cpu manual encryption algorithm aes-256-cbc key "
        f"hexadecimal {CBC_KEY}",
        "set security ipsec vpn v-cpu manual authentication algorithm hmac-sha-256-128 key "
        f"hexadecimal {HMAC_KEY}",
        f"set security ipsec vpn v-cpu manual gateway {peer}",
        "set security ipsec vpn v-cpu manual external-interface ge-0/0/0.0",
        f"set routing-options static route {theirs}.0.0/24 next-hop st0.0",
        f"set routing-options static route {theirs}.1.0/24 next-hop st0.1",
    ]
    return "\n".join(lines) + "\n" + extra
