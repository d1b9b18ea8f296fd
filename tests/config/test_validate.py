"""Cross references and protocol limits: one test per rule of validate.py."""
from __future__ import annotations

import pytest

from inline_ipsec.config import ConfigurationErrors, load_config

BASE = """\
set security ike proposal ike-1 authentication-method pre-shared-keys
set security ike proposal ike-1 dh-group group20
set security ike proposal ike-1 encryption-algorithm aes-256-gcm
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 pre-shared-key ascii-text "secret"
set security ike gateway gw ike-policy ike-1
set security ike gateway gw address 192.168.3.2
set security ike gateway gw external-interface et-1/1/0.1103
set security ike gateway gw version v2-only
set security ipsec proposal ipsec-1 encryption-algorithm aes-256-gcm
set security ipsec policy ipsec-1 proposals ipsec-1
set security ipsec vpn vpn-1 bind-interface st0.0
set security ipsec vpn vpn-1 ike gateway gw
set security ipsec vpn vpn-1 ike ipsec-policy ipsec-1
set interfaces st0 unit 0 family inet
set routing-options static route 10.2.0.0/16 next-hop st0.0
"""
BASE_LINES = BASE.count("\n")


def issues(extra: str, base: str = BASE) -> list[tuple[int, str]]:
    with pytest.raises(ConfigurationErrors) as info:
        load_config(base + extra)
    return [(e.line, e.message) for e in info.value.errors]


def only_issue(extra: str, base: str = BASE) -> tuple[int, str]:
    found = issues(extra, base)
    assert len(found) == 1, found
    return found[0]


def test_base_is_valid() -> None:
    """BASE passes every rule: it loads whole, and each cross reference resolves."""
    from inline_ipsec.config.junos import parse
    from inline_ipsec.config.validate import validate
    config, syntax = parse(BASE)
    assert syntax == [] and validate(config) == []
    loaded = load_config(BASE)
    vpn = loaded.ipsec_vpns["vpn-1"]
    gateway = loaded.ike_gateways[vpn.ike.gateway]
    assert loaded.ike_policies[gateway.ike_policy].proposals == ("ike-1",)
    assert [p.name for p in loaded.ipsec_proposals_of(vpn)] == ["ipsec-1"]
    assert vpn.bind_interface == "st0.0" and 0 in loaded.st0_units


def test_vpn_gateway_must_exist() -> None:
    line, msg = only_issue("set security ipsec vpn vpn-1 ike gateway nope\n")
    assert line == BASE_LINES + 1
    assert "ike gateway 'nope' is not defined" in msg and "(gw)" in msg


def test_vpn_ipsec_policy_must_exist() -> None:
    line, msg = only_issue("set security ipsec vpn vpn-1 ike ipsec-policy nope\n")
    assert line == BASE_LINES + 1 and "ike ipsec-policy 'nope' is not defined" in msg


def test_vpn_needs_gateway_and_policy() -> None:
    found = issues("set security ipsec vpn v2 ike anti-replay-window-size 128\n")
    msgs = [m for _, m in found]
    assert any("ipsec vpn v2: missing 'ike gateway <gateway>'" in m for m in msgs)
    assert any("ipsec vpn v2: missing 'ike ipsec-policy <policy>'" in m for m in msgs)


def test_vpn_needs_ike_or_manual() -> None:
    line, msg = only_issue("set security ipsec vpn v3 df-bit set\n")
    assert line == BASE_LINES + 1 and "expected either 'ike gateway <g>'" in msg


def test_ike_and_manual_exclusive() -> None:
    found = issues("set security ipsec vpn vpn-1 manual spi 300\n")
    assert any("mutually exclusive" in m for _, m in found)


def test_gateway_policy_must_exist() -> None:
    line, msg = only_issue("set security ike gateway gw ike-policy nope\n")
    assert line == BASE_LINES + 1 and "ike-policy 'nope' is not defined" in msg


def test_gateway_needs_policy_address_interface() -> None:
    found = issues("set security ike gateway g2 version v2-only\n")
    msgs = " | ".join(m for _, m in found)
    assert "ike gateway g2: missing 'ike-policy <policy>'" in msgs
    assert "ike gateway g2: missing 'address <peer address>'" in msgs
    assert "ike gateway g2: missing 'external-interface <ifl>'" in msgs


def test_policy_proposal_must_exist() -> None:
    line, msg = only_issue("set security ike policy ike-1 proposals nope\n")
    assert line == BASE_LINES + 1 and "ike policy ike-1: proposal 'nope' is not defined" in msg


def test_ipsec_policy_proposal_must_exist() -> None:
    line, msg = only_issue("set security ipsec policy ipsec-1 proposals nope\n")
    assert "ipsec policy ipsec-1: proposal 'nope' is not defined" in msg


def test_ipsec_policy_without_proposals() -> None:
    line, msg = only_issue(
        "set security ipsec policy empty perfect-forward-secrecy keys group20\n"
        "set security ipsec vpn vpn-1 ike ipsec-policy empty\n")
    assert line == BASE_LINES + 2 and "has no proposals" in msg


def test_psk_method_needs_key() -> None:
    base = BASE.replace('set security ike policy ike-1 pre-shared-key ascii-text "secret"\n', "")
    line, msg = only_issue("", base)
    assert "pre-shared-keys needs 'pre-shared-key ascii-text <key>'" in msg


def test_signature_method_needs_certificate() -> None:
    line, msg = only_issue(
        "set security ike proposal ike-1 authentication-method ecdsa-signatures-256\n")
    assert "needs 'certificate local-certificate <name>'" in msg


def test_bind_interface_must_exist() -> None:
    line, msg = only_issue("set security ipsec vpn vpn-1 bind-interface st0.7\n")
    assert line == BASE_LINES + 1
    assert "bind-interface st0.7 does not exist" in msg
    assert "set interfaces st0 unit 7 family inet" in msg


def test_st0_without_family() -> None:
    line, msg = only_issue("set interfaces st0 unit 9 multipoint\n"
                           "set security ipsec vpn vpn-1 bind-interface st0.9\n")
    assert "no family" in msg


def test_ppk_profile_must_exist() -> None:
    line, msg = only_issue("set security ike gateway gw ppk-profile quantum\n")
    assert line == BASE_LINES + 1 and "ppk-profile 'quantum' is not defined" in msg


def test_ppk_needs_ikev2() -> None:
    line, msg = only_issue(
        "set security key-manager profiles quantum static key-id ascii-text \"id\"\n"
        "set security key-manager profiles quantum static key ascii-text \"k\"\n"
        "set security ike gateway gw ppk-profile quantum\n"
        "set security ike gateway gw version v1-only\n")
    assert "ppk-profile needs 'version v2-only'" in msg and "RFC 8784" in msg


def test_ppk_profile_needs_key_and_id() -> None:
    line, msg = only_issue(
        "set security key-manager profiles quantum static key-id ascii-text \"id\"\n"
        "set security ike gateway gw ppk-profile quantum\n")
    assert line == BASE_LINES + 1 and "missing 'static key ascii-text'" in msg


def test_gcm_with_authentication_algorithm_ipsec() -> None:
    line, msg = only_issue(
        "set security ipsec proposal ipsec-1 authentication-algorithm hmac-sha-256-128\n")
    assert line == BASE_LINES + 1
    assert "must not be set with aes-256-gcm" in msg and "RFC 4303 §3.2.3" in msg


def test_chacha_with_authentication_algorithm() -> None:
    line, msg = only_issue(
        "set security ipsec proposal ipsec-1 encryption-algorithm chacha20-poly1305\n"
        "set security ipsec proposal ipsec-1 authentication-algorithm hmac-sha1-96\n")
    assert "combined-mode cipher" in msg


def test_gcm_with_authentication_algorithm_ike() -> None:
    line, msg = only_issue("set security ike proposal ike-1 authentication-algorithm sha-256\n")
    assert "must not be set with aes-256-gcm" in msg


def test_ah_rules() -> None:
    found = issues("set security ipsec proposal ah-1 protocol ah\n"
                   "set security ipsec proposal ah-1 encryption-algorithm aes-128-cbc\n")
    msgs = [m for _, m in found]
    assert any("protocol ah takes no encryption-algorithm" in m for m in msgs)
    assert any("protocol ah needs an authentication-algorithm" in m for m in msgs)


def test_null_needs_authentication() -> None:
    line, msg = only_issue("set security ipsec proposal n encryption-algorithm null\n")
    assert "null needs an authentication-algorithm" in msg


def test_esp_needs_some_transform() -> None:
    line, msg = only_issue("set security ipsec proposal e lifetime-seconds 600\n")
    assert "protocol esp needs an encryption-algorithm" in msg


def test_local_address_family() -> None:
    line, msg = only_issue("set security ike gateway gw local-address 2001:db8::1\n")
    assert "different address families" in msg


def test_traffic_selector_rules() -> None:
    found = issues(
        "set security ipsec vpn vpn-1 traffic-selector a local-ip 10.0.0.0/8\n"
        "set security ipsec vpn vpn-1 traffic-selector b local-ip 10.0.0.0/8 "
        "remote-ip 2001:db8::/32\n")
    msgs = [m for _, m in found]
    assert [line for line, _ in found] == [BASE_LINES + 1, BASE_LINES + 2]
    assert "traffic-selector a is missing 'remote-ip'" in msgs[0]
    assert "different address families" in msgs[1]


def test_traffic_selector_needs_bind_interface() -> None:
    base = BASE.replace("set security ipsec vpn vpn-1 bind-interface st0.0\n", "")
    found = issues("set security ipsec vpn vpn-1 traffic-selector a local-ip 10.0.0.0/8 "
                   "remote-ip 10.1.0.0/16\n", base)
    assert any("traffic-selector needs 'bind-interface" in m for _, m in found)


def test_deployment_contradiction() -> None:
    line, msg = only_issue("set interfaces st0 unit 0 multipoint\n"
                           "set security ipsec vpn vpn-1 deployment-type site-to-site\n")
    assert line == BASE_LINES + 2 and "implies p2mp" in msg


def test_deployment_contradiction_ha_link() -> None:
    line, msg = only_issue("set security ipsec vpn vpn-1 ha-link-encryption\n"
                           "set security ipsec vpn vpn-1 deployment-type p2mp\n")
    assert line == BASE_LINES + 2
    assert "deployment-type p2mp contradicts the configuration, which implies mnha-icl" in msg


def test_route_next_hop_must_exist() -> None:
    line, msg = only_issue("set routing-options static route 10.3.0.0/16 next-hop st0.5\n")
    assert line == BASE_LINES + 1 and "next-hop st0.5 does not exist" in msg


def test_route_family_needs_st0_family() -> None:
    line, msg = only_issue(
        "set routing-options rib inet6.0 static route 2001:db8::/32 next-hop st0.0\n")
    assert "has no family inet6" in msg


def test_ipv6_route_in_inet0() -> None:
    found = issues("set interfaces st0 unit 0 family inet6\n"
                   "set routing-options static route 2001:db8::/32 next-hop st0.0\n")
    assert any("belong in 'routing-options rib inet6.0" in m for _, m in found)


def test_ipv4_route_in_inet6() -> None:
    found = issues("set routing-options rib inet6.0 static route 10.9.0.0/16 next-hop st0.0\n")
    assert any("rib inet6.0 takes IPv6 prefixes only" in m for _, m in found)


MANUAL_BASE = (
    "set interfaces st0 unit 2 family inet\n"
    "set security ipsec vpn man bind-interface st0.2\n"
    "set security ipsec vpn man manual gateway 198.51.100.7\n"
    "set security ipsec vpn man manual external-interface ge-0/0/0.0\n"
    "set security ipsec vpn man manual protocol esp\n"
    "set security ipsec vpn man manual spi 4096\n"
)


def test_manual_sa_incomplete() -> None:
    found = issues("set interfaces st0 unit 2 family inet\n"
                   "set security ipsec vpn man manual spi 300\n")
    msgs = " | ".join(m for _, m in found)
    for stmt in ("protocol esp|ah", "gateway <address>", "external-interface <ifl>"):
        assert f"missing '{stmt}'" in msgs


def test_manual_sa_key_lengths() -> None:
    found = issues(MANUAL_BASE + (
        "set security ipsec vpn man manual encryption algorithm aes-256-cbc "
        'key ascii-text "short"\n'
        "set security ipsec vpn man manual authentication algorithm hmac-sha-256-128 "
        "key hexadecimal 00112233\n"))
    assert [m for _, m in found] == [
        "ipsec vpn man manual: encryption key for aes-256-cbc must be 32 bytes, got 5",
        "ipsec vpn man manual: authentication key for hmac-sha-256-128 must be 32 bytes, got 4",
    ]
    assert [line for line, _ in found] == [BASE_LINES + 7, BASE_LINES + 8]


def test_manual_sa_esp_needs_encryption_and_key() -> None:
    found = issues(MANUAL_BASE + "set security ipsec vpn man manual encryption algorithm "
                   "3des-cbc\n")
    assert [m for _, m in found] == [
        "ipsec vpn man manual: missing 'encryption key ascii-text|hexadecimal <key>'"]
    found = issues(MANUAL_BASE)
    assert "missing 'encryption algorithm <alg>'" in found[0][1]


def test_manual_ah_needs_authentication() -> None:
    found = issues(MANUAL_BASE.replace("protocol esp", "protocol ah"))
    assert "protocol ah needs 'authentication algorithm <alg>'" in found[0][1]


def test_every_error_reported_together() -> None:
    found = issues("set security ipsec vpn vpn-1 ike gateway nope\n"
                   "set security ipsec vpn vpn-1 bind-interface st0.4\n"
                   "set security ike gateway gw ppk-profile none-such\n"
                   "set security ipsec proposal ipsec-1 lifetime-kilobytes 12\n")
    lines = [line for line, _ in found]
    assert lines == sorted(lines)
    assert set(lines) == {BASE_LINES + 1, BASE_LINES + 2, BASE_LINES + 3, BASE_LINES + 4}
