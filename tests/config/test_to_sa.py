"""Configured VPN -> SaSpec arguments (Junos algorithm names mapped to SaSpec names)."""
from __future__ import annotations

import pytest

from inline_ipsec.config import (
    cipher_name,
    integrity_name,
    lifetime_of,
    load_config,
    manual_sa_args,
    negotiated_sa_args,
)
from inline_ipsec.errors import ConfigError
from inline_ipsec.sa import Lifetime, SaSpec

NEGOTIATED = """\
set security ike proposal ike-1 authentication-method pre-shared-keys
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 pre-shared-key ascii-text "secret"
set security ike gateway gw ike-policy ike-1
set security ike gateway gw address 198.51.100.1
set security ike gateway gw external-interface ge-0/0/0.0
set security ipsec proposal gcm encryption-algorithm aes-128-gcm
set security ipsec proposal gcm extended-sequence-number
set security ipsec proposal cbc encryption-algorithm aes-256-cbc
set security ipsec proposal cbc authentication-algorithm hmac-sha-256-128
set security ipsec proposal cbc lifetime-seconds 1200
set security ipsec proposal cbc lifetime-kilobytes 6000
set security ipsec policy pol proposals [ gcm cbc ]
set security ipsec vpn v bind-interface st0.0
set security ipsec vpn v ike gateway gw
set security ipsec vpn v ike ipsec-policy pol
set security ipsec vpn v ike anti-replay-window-size 1024
set security ipsec vpn v df-bit set
set security ipsec vpn v copy-outer-dscp
set interfaces st0 unit 0 family inet
"""


@pytest.mark.parametrize("junos, spec", [
    ("aes-128-gcm", "aes-gcm-128"), ("aes-192-gcm", "aes-gcm-192"),
    ("aes-256-gcm", "aes-gcm-256"), ("aes-128-cbc", "aes-cbc-128"),
    ("aes-256-cbc", "aes-cbc-256"), ("3des-cbc", "3des-cbc"), ("aes-256-ctr", "aes-ctr-256"),
    ("chacha20-poly1305", "chacha20-poly1305"), ("null", "null"),
])
def test_cipher_names(junos: str, spec: str) -> None:
    assert cipher_name(junos) == spec


@pytest.mark.parametrize("junos, spec", [
    ("hmac-sha1-96", "hmac-sha1-96"), ("hmac-sha-256-128", "hmac-sha256-128"),
    ("hmac-sha-384", "hmac-sha384-192"), ("hmac-sha-512", "hmac-sha512-256"),
    ("hmac-md5-96", "hmac-md5-96"),
])
def test_integrity_names(junos: str, spec: str) -> None:
    assert integrity_name(junos) == spec


def test_negotiated_gcm_args_build_a_spec() -> None:
    c = load_config(NEGOTIATED)
    args = negotiated_sa_args(c, "v", spi=0x1001, key=bytes(20), tunnel_src="192.0.2.1",
                              tunnel_dst="198.51.100.1", udp_encap=True)
    spec = SaSpec(**args)
    assert spec.cipher == "aes-gcm-128" and spec.integrity is None
    assert spec.esn and spec.replay_window == 1024 and spec.udp_encap
    assert spec.df_bit == "set" and spec.copy_outer_dscp
    assert spec.lifetime == Lifetime(soft_seconds=3000, hard_seconds=3600)


def test_negotiated_cbc_proposal_by_name() -> None:
    c = load_config(NEGOTIATED)
    args = negotiated_sa_args(c, "v", spi=0x2002, key=bytes(32), integrity_key=bytes(32),
                              tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1",
                              proposal="cbc")
    spec = SaSpec(**args)
    assert (spec.cipher, spec.integrity, spec.esn) == ("aes-cbc-256", "hmac-sha256-128", False)
    assert spec.lifetime.hard_seconds == 1200 and spec.lifetime.soft_seconds == 1000
    assert spec.lifetime.hard_kilobytes == 6000 and spec.lifetime.has_kilobytes
    with pytest.raises(ConfigError):
        negotiated_sa_args(c, "v", spi=0x2002, key=b"", tunnel_src="192.0.2.1",
                           tunnel_dst="198.51.100.1", proposal="nope")


def test_lifetime_of_without_kilobytes() -> None:
    c = load_config(NEGOTIATED)
    assert lifetime_of(c.ipsec_proposals["gcm"]).hard_kilobytes is None


MANUAL_KEYS = (
    'set security ipsec vpn man manual encryption algorithm aes-128-cbc key ascii-text '
    '"0123456789abcdef"\n'
    'set security ipsec vpn man manual authentication algorithm hmac-sha1-96 key ascii-text '
    '"01234567890123456789"\n'
)
MANUAL = MANUAL_KEYS + """\
set interfaces st0 unit 2 family inet
set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24
set security ipsec vpn man bind-interface st0.2
set security ipsec vpn man manual gateway 198.51.100.7
set security ipsec vpn man manual external-interface ge-0/0/0.0
set security ipsec vpn man manual protocol esp
set security ipsec vpn man manual spi 16639
set security ipsec vpn man df-bit copy
"""


def test_manual_sa_both_directions() -> None:
    c = load_config(MANUAL)
    out = SaSpec(**manual_sa_args(c, "man"))
    inb = SaSpec(**manual_sa_args(c, "man", direction="inbound"))
    assert (out.tunnel_src, out.tunnel_dst) == ("192.0.2.1", "198.51.100.7")
    assert (inb.tunnel_src, inb.tunnel_dst) == ("198.51.100.7", "192.0.2.1")
    for spec in (out, inb):
        assert spec.spi == 16639 and spec.cipher == "aes-cbc-128"
        assert spec.key == b"0123456789abcdef" and spec.integrity == "hmac-sha1-96"
        assert spec.replay_window == 0 and spec.df_bit == "copy"


def test_manual_sa_needs_local_address() -> None:
    c = load_config(MANUAL.replace(
        "set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24\n", ""))
    with pytest.raises(ConfigError, match="no local address"):
        manual_sa_args(c, "man")
    assert manual_sa_args(c, "man", local_address="192.0.2.9")["tunnel_src"] == "192.0.2.9"


def test_manual_sa_of_ike_vpn_is_an_error() -> None:
    c = load_config(NEGOTIATED)
    with pytest.raises(ConfigError, match="no manual SA"):
        manual_sa_args(c, "v")
    with pytest.raises(ConfigError, match="not defined"):
        manual_sa_args(c, "nope")
