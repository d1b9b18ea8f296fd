"""Cross references and protocol limits of a parsed configuration.

This file owns every rule that needs more than one statement to check: references between
stanzas (vpn -> gateway -> policy -> proposal, bind-interface, ppk-profile, static routes) and
protocol rules (combined-mode ciphers take no integrity algorithm, RFC 4303 §3.2.3; AH needs
integrity and takes no encryption, RFC 4302 §2.6; PPK is IKEv2 only, RFC 8784 §1; manual-SA key
lengths, RFC 4303 §3.2). Every rule appends a `ConfigIssue`; none raises, so one load reports
every problem at once.
"""
from __future__ import annotations

import ipaddress
from typing import Mapping, Optional

from ..sa import CIPHER_KEY_MATERIAL, INTEGRITY_ALGORITHMS
from .algorithms import AEAD_ENCRYPTION, cipher_name, integrity_name
from .errors import ConfigIssue
from .high_availability import problems as _ha_problems
from .model import Config, IkeGateway, IpsecVpn, ManualSa

__all__ = ["validate"]

_CERT_METHODS = ("rsa-signatures", "dsa-signatures", "ecdsa-signatures-256",
                 "ecdsa-signatures-384")


def validate(config: Config) -> list[ConfigIssue]:
    """Return every cross-reference and protocol-limit problem of `config` (empty if none)."""
    issues: list[ConfigIssue] = []
    _ike(config, issues)
    _ipsec_proposals(config, issues)
    _ipsec_policies(config, issues)
    for vpn in config.ipsec_vpns.values():
        _vpn(config, vpn, issues)
    _routes(config, issues)
    issues += [ConfigIssue(line, f"chassis high-availability: {text}")
               for line, text in _ha_problems(config)]
    for profile in config.key_manager_profiles.values():
        for attr, stmt in (("key_id", "key-id"), ("key", "key")):
            if getattr(profile, attr) is None:
                issues.append(ConfigIssue(
                    profile.line, f"key-manager profile {profile.name}: missing "
                    f"'static {stmt} ascii-text'; a PPK needs both key-id and key (RFC 8784 §3)"))
    return issues


def _ike(config: Config, issues: list[ConfigIssue]) -> None:
    for prop in config.ike_proposals.values():
        enc = prop.encryption_algorithm
        if enc is not None and enc.endswith("-gcm") and prop.authentication_algorithm:
            issues.append(ConfigIssue(
                prop.line_of("authentication_algorithm"),
                f"ike proposal {prop.name}: authentication-algorithm "
                f"{prop.authentication_algorithm} must not be set with {enc} (GCM provides "
                "integrity, RFC 5282)", prop.authentication_algorithm))
    for pol in config.ike_policies.values():
        for name in pol.proposals:
            if name not in config.ike_proposals:
                issues.append(ConfigIssue(
                    pol.line_of("proposals"),
                    f"ike policy {pol.name}: proposal '{name}' is not defined; "
                    f"expected one of the 'set security ike proposal' names "
                    f"({_names(config.ike_proposals)})", name))
        methods = {config.ike_proposals[p].authentication_method for p in pol.proposals
                   if p in config.ike_proposals}
        if "pre-shared-keys" in methods and pol.pre_shared_key is None:
            issues.append(ConfigIssue(
                pol.line, f"ike policy {pol.name}: authentication-method pre-shared-keys needs "
                "'pre-shared-key ascii-text <key>'"))
        if methods & set(_CERT_METHODS) and pol.local_certificate is None:
            issues.append(ConfigIssue(
                pol.line, f"ike policy {pol.name}: signature authentication needs "
                "'certificate local-certificate <name>'"))
    for gw in config.ike_gateways.values():
        _gateway(config, gw, issues)


def _gateway(config: Config, gw: IkeGateway, issues: list[ConfigIssue]) -> None:
    where = f"ike gateway {gw.name}"
    if gw.ike_policy is None:
        issues.append(ConfigIssue(gw.line, f"{where}: missing 'ike-policy <policy>'"))
    elif gw.ike_policy not in config.ike_policies:
        issues.append(ConfigIssue(
            gw.line_of("ike_policy"),
            f"{where}: ike-policy '{gw.ike_policy}' is not defined; expected one of "
            f"the 'set security ike policy' names ({_names(config.ike_policies)})",
            gw.ike_policy))
    if not gw.address:
        issues.append(ConfigIssue(gw.line, f"{where}: missing 'address <peer address>'"))
    if gw.external_interface is None:
        issues.append(ConfigIssue(gw.line, f"{where}: missing 'external-interface <ifl>'"))
    if gw.ppk_profile is not None:
        if gw.ppk_profile not in config.key_manager_profiles:
            issues.append(ConfigIssue(
                gw.line_of("ppk_profile"),
                f"{where}: ppk-profile '{gw.ppk_profile}' is not defined; expected "
                "one of the 'set security key-manager profiles' names "
                f"({_names(config.key_manager_profiles)})", gw.ppk_profile))
        if gw.version != "v2-only":
            issues.append(ConfigIssue(
                gw.line_of("ppk_profile"),
                f"{where}: ppk-profile needs 'version v2-only' (PPK is defined for "
                "IKEv2 only, RFC 8784)", gw.ppk_profile))
    if gw.local_address is not None:
        local = ipaddress.ip_address(gw.local_address).version
        for addr in gw.address:
            peer = _version(addr)
            if peer is not None and peer != local:
                issues.append(ConfigIssue(
                    gw.line_of("local_address"),
                    f"{where}: local-address {gw.local_address} and address {addr} "
                    "are of different address families", addr))


def _ipsec_proposals(config: Config, issues: list[ConfigIssue]) -> None:
    for prop in config.ipsec_proposals.values():
        where = f"ipsec proposal {prop.name}"
        enc, auth = prop.encryption_algorithm, prop.authentication_algorithm
        if prop.protocol == "ah":
            if enc is not None:
                issues.append(ConfigIssue(
                    prop.line_of("encryption_algorithm"),
                    f"{where}: protocol ah takes no encryption-algorithm (AH only "
                    "authenticates, RFC 4302)", enc))
            if auth is None:
                issues.append(ConfigIssue(
                    prop.line, f"{where}: protocol ah needs an authentication-algorithm "
                    "(RFC 4302 §2.6)"))
            continue
        if enc in AEAD_ENCRYPTION and auth is not None:
            issues.append(ConfigIssue(
                prop.line_of("authentication_algorithm"),
                f"{where}: authentication-algorithm {auth} must not be set with "
                f"{enc}: it is a combined-mode cipher (RFC 4303 §3.2.3)", auth))
        if enc == "null" and auth is None:
            issues.append(ConfigIssue(
                prop.line, f"{where}: encryption-algorithm null needs an "
                "authentication-algorithm (RFC 4303 §3.2)"))
        if enc is None and auth is None:
            issues.append(ConfigIssue(
                prop.line, f"{where}: protocol esp needs an encryption-algorithm"))


def _ipsec_policies(config: Config, issues: list[ConfigIssue]) -> None:
    for pol in config.ipsec_policies.values():
        for name in pol.proposals:
            if name not in config.ipsec_proposals:
                issues.append(ConfigIssue(
                    pol.line_of("proposals"),
                    f"ipsec policy {pol.name}: proposal '{name}' is not defined; "
                    "expected one of the 'set security ipsec proposal' names "
                    f"({_names(config.ipsec_proposals)})", name))


def _vpn(config: Config, vpn: IpsecVpn, issues: list[ConfigIssue]) -> None:
    where = f"ipsec vpn {vpn.name}"
    if vpn.ike is None and vpn.manual is None:
        issues.append(ConfigIssue(
            vpn.line, f"{where}: expected either 'ike gateway <g>' with 'ike ipsec-policy <p>' "
            "or a 'manual' SA"))
    if vpn.ike is not None and vpn.manual is not None:
        issues.append(ConfigIssue(
            vpn.line, f"{where}: 'ike' and 'manual' are mutually exclusive"))
    if vpn.ike is not None:
        ike = vpn.ike
        if ike.gateway is None:
            issues.append(ConfigIssue(vpn.line, f"{where}: missing 'ike gateway <gateway>'"))
        elif ike.gateway not in config.ike_gateways:
            issues.append(ConfigIssue(
                vpn.line_of("ike.gateway"),
                f"{where}: ike gateway '{ike.gateway}' is not defined; expected one "
                f"of the 'set security ike gateway' names ({_names(config.ike_gateways)})",
                ike.gateway))
        if ike.ipsec_policy is None:
            issues.append(ConfigIssue(vpn.line,
                                      f"{where}: missing 'ike ipsec-policy <policy>'"))
        elif ike.ipsec_policy not in config.ipsec_policies:
            issues.append(ConfigIssue(
                vpn.line_of("ike.ipsec_policy"),
                f"{where}: ike ipsec-policy '{ike.ipsec_policy}' is not defined; "
                "expected one of the 'set security ipsec policy' names "
                f"({_names(config.ipsec_policies)})", ike.ipsec_policy))
        elif not config.ipsec_policies[ike.ipsec_policy].proposals:
            issues.append(ConfigIssue(
                vpn.line_of("ike.ipsec_policy"),
                f"{where}: ipsec-policy '{ike.ipsec_policy}' has no proposals",
                ike.ipsec_policy))
    if vpn.manual is not None:
        _manual(vpn, vpn.manual, issues)
    if vpn.bind_interface is not None:
        unit = int(vpn.bind_interface.split(".", 1)[1])
        if unit not in config.st0_units:
            issues.append(ConfigIssue(
                vpn.line_of("bind_interface"),
                f"{where}: bind-interface {vpn.bind_interface} does not exist; "
                f"expected 'set interfaces st0 unit {unit} family inet' (or inet6)",
                vpn.bind_interface))
        elif not config.st0_units[unit].families:
            issues.append(ConfigIssue(
                config.st0_units[unit].line, f"interface {vpn.bind_interface}: no family; "
                f"expected 'set interfaces st0 unit {unit} family inet' (or inet6)",
                vpn.bind_interface))
    for ts in vpn.traffic_selectors:
        for side, value in (("local-ip", ts.local_ip), ("remote-ip", ts.remote_ip)):
            if value is None:
                issues.append(ConfigIssue(
                    vpn.line_of(f"traffic_selectors.{ts.name}"),
                    f"{where}: traffic-selector {ts.name} is missing '{side}'"))
        if ts.local_ip and ts.remote_ip and _version(ts.local_ip) != _version(ts.remote_ip):
            issues.append(ConfigIssue(
                vpn.line_of(f"traffic_selectors.{ts.name}"),
                f"{where}: traffic-selector {ts.name}: local-ip and remote-ip are of "
                "different address families", ts.name))
    if vpn.traffic_selectors and vpn.bind_interface is None:
        issues.append(ConfigIssue(
            vpn.line, f"{where}: traffic-selector needs 'bind-interface st0.<unit>'"))
    implied = config.implied_deployment(vpn)
    if vpn.deployment_type is not None and implied is not None \
            and implied != vpn.deployment_type:
        issues.append(ConfigIssue(
            vpn.line_of("deployment_type"),
            f"{where}: deployment-type {vpn.deployment_type} contradicts the "
            f"configuration, which implies {implied}", vpn.deployment_type))


def _manual(vpn: IpsecVpn, m: ManualSa, issues: list[ConfigIssue]) -> None:
    where = f"ipsec vpn {vpn.name} manual"
    line = vpn.line_of("manual")
    for attr, stmt in (("spi", "spi <256..16639>"), ("protocol", "protocol esp|ah"),
                       ("gateway", "gateway <address>"),
                       ("external_interface", "external-interface <ifl>")):
        if getattr(m, attr) is None:
            issues.append(ConfigIssue(line, f"{where}: missing '{stmt}'"))
    if m.protocol == "ah" and m.encryption_algorithm is not None:
        issues.append(ConfigIssue(line, f"{where}: protocol ah takes no encryption",
                                  m.encryption_algorithm))
    if m.protocol == "esp" and m.encryption_algorithm is None:
        issues.append(ConfigIssue(line, f"{where}: missing 'encryption algorithm <alg>'"))
    if m.protocol == "ah" and m.authentication_algorithm is None:
        issues.append(ConfigIssue(
            line, f"{where}: protocol ah needs 'authentication algorithm <alg>'"))
    if m.encryption_algorithm is not None and m.protocol != "ah":
        enc = m.encryption_algorithm
        if enc in AEAD_ENCRYPTION and m.authentication_algorithm is not None:
            issues.append(ConfigIssue(
                line, f"{where}: authentication must not be set with {enc} "
                "(combined-mode cipher, RFC 4303 §3.2.3)", m.authentication_algorithm))
        want = CIPHER_KEY_MATERIAL[cipher_name(enc)]
        key = m.encryption_key
        if key is None and want:
            issues.append(ConfigIssue(
                line, f"{where}: missing 'encryption key ascii-text|hexadecimal <key>'"))
        elif key is not None and len(key) != want:
            issues.append(ConfigIssue(
                vpn.line_of("manual.encryption_key"),
                f"{where}: encryption key for {enc} must be {want} bytes, got "
                f"{len(key)}"))
    if m.authentication_algorithm is not None:
        want = INTEGRITY_ALGORITHMS[integrity_name(m.authentication_algorithm)][0]
        key = m.authentication_key
        if key is None:
            issues.append(ConfigIssue(
                line, f"{where}: missing 'authentication key ascii-text|hexadecimal <key>'"))
        elif len(key) != want:
            issues.append(ConfigIssue(
                vpn.line_of("manual.authentication_key"),
                f"{where}: authentication key for {m.authentication_algorithm} must "
                f"be {want} bytes, got {len(key)}"))


def _routes(config: Config, issues: list[ConfigIssue]) -> None:
    for route in config.static_routes:
        version = ipaddress.ip_network(route.prefix).version
        if route.rib == "inet6.0" and version != 6:
            issues.append(ConfigIssue(
                route.line, f"route {route.prefix}: rib inet6.0 takes IPv6 prefixes only",
                route.prefix))
        if route.rib == "inet.0" and version != 4:
            issues.append(ConfigIssue(
                route.line, f"route {route.prefix}: IPv6 routes belong in "
                "'routing-options rib inet6.0 static route ...'", route.prefix))
        if route.next_hop.startswith("st0."):
            unit = int(route.next_hop.split(".", 1)[1])
            family = "inet" if version == 4 else "inet6"
            if unit not in config.st0_units:
                issues.append(ConfigIssue(
                    route.line, f"route {route.prefix}: next-hop {route.next_hop} does not "
                    f"exist; expected 'set interfaces st0 unit {unit} family {family}'",
                    route.next_hop))
            elif family not in config.st0_units[unit].families:
                issues.append(ConfigIssue(
                    route.line, f"route {route.prefix}: next-hop {route.next_hop} has no "
                    f"family {family}", route.next_hop))
        elif _version(route.next_hop) not in (None, version):
            issues.append(ConfigIssue(
                route.line, f"route {route.prefix}: next-hop {route.next_hop} is of another "
                "address family", route.next_hop))


def _version(text: str) -> Optional[int]:
    try:
        if "/" in text:
            return ipaddress.ip_network(text).version
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def _names(table: Mapping[str, object]) -> str:
    return ", ".join(sorted(table)) if table else "none defined"
