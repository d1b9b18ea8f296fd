"""Every supported `set` statement, and the syntax errors (with line numbers) of bad ones."""
from __future__ import annotations

import datetime as dt

import pytest

from inline_ipsec.config import (
    Config,
    ConfigurationErrors,
    DeadPeerDetection,
    Identity,
    StaticRoute,
    TrafficSelector,
    load_config,
)
from inline_ipsec.config.junos import tokenize
from inline_ipsec.errors import ConfigError

# The SRX4700 configuration of docs/junos-formats.md (Junos 25.2R1), verbatim.
SRX4700 = """\
set security ike proposal ike-1 authentication-method pre-shared-keys
set security ike proposal ike-1 dh-group group20
set security ike proposal ike-1 encryption-algorithm aes-256-gcm
set security ike proposal ike-1 lifetime-seconds 28800
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 pre-shared-key ascii-text "<SNIP>"
set security ike gateway 4700 ike-policy ike-1
set security ike gateway 4700 address 192.168.3.2
set security ike gateway 4700 external-interface et-1/1/0.1103
set security ike gateway 4700 version v2-only
set security ike gateway 4700 ppk-profile quantum
set security key-manager profiles quantum static key-id ascii-text "<SNIP>"
set security key-manager profiles quantum static key ascii-text "<SNIP>"
set security ipsec proposal ipsec-1 extended-sequence-number
set security ipsec proposal ipsec-1 encryption-algorithm aes-256-gcm
set security ipsec proposal ipsec-1 lifetime-seconds 3600
set security ipsec policy ipsec-1 perfect-forward-secrecy keys group20
set security ipsec policy ipsec-1 proposals ipsec-1
set security ipsec vpn 4700 bind-interface st0.0
set security ipsec vpn 4700 ike gateway 4700
set security ipsec vpn 4700 ike anti-replay-window-size 4096
set security ipsec vpn 4700 ike ipsec-policy ipsec-1
set security ipsec vpn 4700 establish-tunnels immediately
set interfaces st0 unit 0 family inet
set routing-options static route 10.2.0.0/16 next-hop st0.0
"""


def load(extra: str = "") -> Config:
    return load_config(SRX4700 + extra)


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigurationErrors) as info:
        load_config(text)
    return [str(e) for e in info.value.errors]


# -- the reference configuration ---------------------------------------------------------------

def test_srx4700_sample_loads() -> None:
    c = load()
    p = c.ike_proposals["ike-1"]
    assert (p.authentication_method, p.dh_group, p.encryption_algorithm, p.lifetime_seconds) \
        == ("pre-shared-keys", "group20", "aes-256-gcm", 28800)
    assert p.authentication_algorithm is None
    pol = c.ike_policies["ike-1"]
    assert pol.proposals == ("ike-1",) and pol.pre_shared_key == "<SNIP>"
    gw = c.ike_gateways["4700"]
    assert gw.ike_policy == "ike-1" and gw.address == ("192.168.3.2",)
    assert gw.external_interface == "et-1/1/0.1103"
    assert gw.version == "v2-only" and gw.ike_version == 2 and gw.ppk_profile == "quantum"
    prof = c.key_manager_profiles["quantum"]
    assert prof.key_id == "<SNIP>" and prof.key == "<SNIP>"
    ip = c.ipsec_proposals["ipsec-1"]
    assert ip.extended_sequence_number and ip.encryption_algorithm == "aes-256-gcm"
    assert ip.lifetime_seconds == 3600 and ip.protocol == "esp" and ip.lifetime_kilobytes is None
    ipol = c.ipsec_policies["ipsec-1"]
    assert ipol.pfs_group == "group20" and ipol.proposals == ("ipsec-1",)
    vpn = c.ipsec_vpns["4700"]
    assert vpn.bind_interface == "st0.0"
    assert vpn.ike is not None and vpn.ike.gateway == "4700" and vpn.ike.ipsec_policy == "ipsec-1"
    assert vpn.anti_replay_window == 4096
    assert vpn.establish_tunnels == "immediately"
    assert vpn.df_bit == "clear" and not vpn.copy_outer_dscp
    assert c.st0_units[0].families == frozenset({"inet"})
    assert c.static_routes == (StaticRoute("10.2.0.0/16", "st0.0", "inet.0"),)
    assert c.deployment_of(vpn) == "site-to-site"
    assert not c.hw_offload_disable and c.license is None


def test_secrets_never_in_repr() -> None:
    c = load()
    assert "<SNIP>" not in repr(c.ike_policies["ike-1"])
    # the PPK_ID is sent in clear (RFC 8784 §3); the PPK itself never shows
    assert repr(c.key_manager_profiles["quantum"]).endswith("key='<SECRET>')")


def test_records_remember_lines() -> None:
    c = load()
    vpn = c.ipsec_vpns["4700"]
    assert vpn.line == 19
    assert vpn.line_of("ike.anti_replay_window_size") == 21
    assert vpn.line_of("establish_tunnels") == 23


# -- set security ike ... ----------------------------------------------------------------------

@pytest.mark.parametrize("stmt, attr, value", [
    ("authentication-method rsa-signatures", "authentication_method", "rsa-signatures"),
    ("authentication-method ecdsa-signatures-384", "authentication_method",
     "ecdsa-signatures-384"),
    ("dh-group group14", "dh_group", "group14"),
    ("dh-group group32", "dh_group", "group32"),
    ("encryption-algorithm aes-128-cbc", "encryption_algorithm", "aes-128-cbc"),
    ("encryption-algorithm 3des-cbc", "encryption_algorithm", "3des-cbc"),
    ("authentication-algorithm sha-256", "authentication_algorithm", "sha-256"),
    ("lifetime-seconds 180", "lifetime_seconds", 180),
    ("lifetime-seconds 86400", "lifetime_seconds", 86400),
])
def test_ike_proposal_statements(stmt: str, attr: str, value: object) -> None:
    c = load_config(f"set security ike proposal p {stmt}\n")
    assert getattr(c.ike_proposals["p"], attr) == value


def test_ike_policy_statements() -> None:
    c = load_config(
        "set security ike proposal a authentication-method rsa-signatures\n"
        "set security ike proposal b authentication-method rsa-signatures\n"
        "set security ike policy pol proposals [ a b ]\n"
        "set security ike policy pol mode aggressive\n"
        "set security ike policy pol certificate local-certificate cert-1\n"
        "set security ike policy hex proposals a\n"
        "set security ike policy hex pre-shared-key hexadecimal 0x41424344\n"
        "set security ike policy hex certificate local-certificate cert-1\n"
    )
    pol = c.ike_policies["pol"]
    assert pol.proposals == ("a", "b")
    assert pol.mode == "aggressive"
    assert pol.local_certificate == "cert-1"
    assert c.ike_policies["hex"].pre_shared_key == "ABCD"


def test_ike_policy_proposals_accumulate() -> None:
    c = load_config(
        "set security ike proposal a dh-group group14\n"
        "set security ike proposal b dh-group group19\n"
        "set security ike policy pol proposals a\n"
        "set security ike policy pol proposals b\n"
        "set security ike policy pol proposals a\n"
        "set security ike policy pol mode main\n")
    assert c.ike_policies["pol"].proposals == ("a", "b")
    assert c.ike_policies["pol"].mode == "main"


GATEWAY_BASE = (
    "set security ike proposal p authentication-method pre-shared-keys\n"
    "set security ike policy pol proposals p\n"
    'set security ike policy pol pre-shared-key ascii-text "s3cret with spaces"\n'
    "set security ike gateway g ike-policy pol\n"
    "set security ike gateway g external-interface ge-0/0/0.0\n"
)


def test_ike_gateway_statements() -> None:
    c = load_config(GATEWAY_BASE + (
        "set security ike gateway g address [ 198.51.100.1 198.51.100.2 ]\n"
        "set security ike gateway g local-address 192.0.2.1\n"
        "set security ike gateway g version v2-only\n"
        "set security ike gateway g nat-keepalive 20\n"
        "set security ike gateway g local-identity inet 192.0.2.1\n"
        "set security ike gateway g remote-identity hostname peer.example.net\n"
        "set security ike gateway g dead-peer-detection probe-idle-tunnel\n"
        "set security ike gateway g dead-peer-detection interval 20\n"
        "set security ike gateway g dead-peer-detection threshold 3\n"
    ))
    gw = c.ike_gateways["g"]
    assert c.ike_policies["pol"].pre_shared_key == "s3cret with spaces"
    assert gw.address == ("198.51.100.1", "198.51.100.2")
    assert gw.local_address == "192.0.2.1"
    assert gw.version == "v2-only"
    assert gw.nat_keepalive == 20
    assert gw.local_identity == Identity("inet", "192.0.2.1")
    assert gw.remote_identity == Identity("hostname", "peer.example.net")
    assert gw.dead_peer_detection == DeadPeerDetection("probe-idle-tunnel", 20, 3)
    assert c.local_address_of(gw) == "192.0.2.1"


def test_ike_gateway_defaults_and_identities() -> None:
    c = load_config(GATEWAY_BASE + (
        "set security ike gateway g address 2001:db8::1\n"
        "set security ike gateway g local-identity inet6 2001:db8::2\n"
        "set security ike gateway g remote-identity user-at-hostname vpn@example.net\n"
        "set security ike gateway g dead-peer-detection\n"
        "set security ike gateway h ike-policy pol\n"
        "set security ike gateway h external-interface ge-0/0/1.0\n"
        "set security ike gateway h address vpn.example.net\n"
        "set security ike gateway h remote-identity distinguished-name container O=Example\n"
        "set security ike gateway h local-identity distinguished-name\n"
        "set interfaces ge-0/0/1 unit 0 family inet address 203.0.113.5/24\n"
    ))
    g, h = c.ike_gateways["g"], c.ike_gateways["h"]
    assert g.version == "v1-only" and g.ike_version == 1
    assert g.local_identity == Identity("inet6", "2001:db8::2")
    assert g.remote_identity == Identity("user-at-hostname", "vpn@example.net")
    assert g.dead_peer_detection == DeadPeerDetection()
    assert h.address == ("vpn.example.net",)
    assert h.remote_identity == Identity("distinguished-name", "container O=Example")
    assert h.local_identity == Identity("distinguished-name")
    assert c.local_address_of(h) == "203.0.113.5"
    assert c.local_address_of(g) is None


# -- set security ipsec ... --------------------------------------------------------------------

@pytest.mark.parametrize("alg", [
    "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "aes-128-cbc", "aes-192-cbc", "aes-256-cbc",
    "3des-cbc", "aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "chacha20-poly1305",
])
def test_ipsec_proposal_encryption_algorithms(alg: str) -> None:
    c = load_config(f"set security ipsec proposal p encryption-algorithm {alg}\n")
    assert c.ipsec_proposals["p"].encryption_algorithm == alg


@pytest.mark.parametrize("alg", [
    "hmac-sha1-96", "hmac-sha-256-128", "hmac-sha-384", "hmac-sha-512", "hmac-md5-96",
])
def test_ipsec_proposal_authentication_algorithms(alg: str) -> None:
    c = load_config("set security ipsec proposal p encryption-algorithm aes-256-cbc\n"
                    f"set security ipsec proposal p authentication-algorithm {alg}\n"
                    f"set security ipsec proposal n encryption-algorithm null\n"
                    f"set security ipsec proposal n authentication-algorithm {alg}\n")
    assert c.ipsec_proposals["p"].authentication_algorithm == alg
    assert c.ipsec_proposals["n"].encryption_algorithm == "null"


def test_ipsec_proposal_other_statements() -> None:
    c = load_config(
        "set security ipsec proposal ah-1 protocol ah\n"
        "set security ipsec proposal ah-1 authentication-algorithm hmac-sha-256-128\n"
        "set security ipsec proposal ah-1 lifetime-seconds 1800\n"
        "set security ipsec proposal ah-1 lifetime-kilobytes 64\n"
        "set security ipsec proposal big protocol esp\n"
        "set security ipsec proposal big encryption-algorithm aes-128-gcm\n"
        "set security ipsec proposal big lifetime-kilobytes 1048576\n")
    ah = c.ipsec_proposals["ah-1"]
    assert (ah.protocol, ah.lifetime_seconds, ah.lifetime_kilobytes) == ("ah", 1800, 64)
    assert not ah.extended_sequence_number
    assert c.ipsec_proposals["big"].lifetime_kilobytes == 1048576


def test_ipsec_policy_statements() -> None:
    c = load_config(
        "set security ipsec proposal a encryption-algorithm aes-128-gcm\n"
        "set security ipsec proposal b encryption-algorithm aes-256-gcm\n"
        "set security ipsec policy pol proposals [ a b ]\n"
        "set security ipsec policy pol perfect-forward-secrecy keys group14\n")
    assert c.ipsec_policies["pol"].proposals == ("a", "b")
    assert c.ipsec_policies["pol"].pfs_group == "group14"


def test_ipsec_vpn_options() -> None:
    c = load(
        "set security ipsec vpn 4700 df-bit copy\n"
        "set security ipsec vpn 4700 copy-outer-dscp\n"
        "set security ipsec vpn 4700 traffic-selector ts1 local-ip 50.1.0.0/16 "
        "remote-ip 60.1.0.0/16\n"
        "set security ipsec vpn 4700 traffic-selector ts2 local-ip 50.2.0.0/16\n"
        "set security ipsec vpn 4700 traffic-selector ts2 remote-ip 60.2.0.0/16\n"
        "set security ipsec vpn v2 bind-interface st0.1\n"
        "set security ipsec vpn v2 ike gateway 4700\n"
        "set security ipsec vpn v2 ike ipsec-policy ipsec-1\n"
        "set security ipsec vpn v2 ike no-anti-replay\n"
        "set security ipsec vpn v2 df-bit set\n"
        "set security ipsec vpn v2 establish-tunnels on-traffic\n"
        "set interfaces st0 unit 1 family inet6\n")
    v = c.ipsec_vpns["4700"]
    assert v.df_bit == "copy" and v.copy_outer_dscp
    assert v.traffic_selectors == (TrafficSelector("ts1", "50.1.0.0/16", "60.1.0.0/16"),
                                   TrafficSelector("ts2", "50.2.0.0/16", "60.2.0.0/16"))
    v2 = c.ipsec_vpns["v2"]
    assert v2.anti_replay_window == 0 and v2.df_bit == "set"
    assert v2.establish_tunnels == "on-traffic"
    assert c.st0_units[1].families == frozenset({"inet6"})


MANUAL = (
    "set interfaces st0 unit 2 family inet\n"
    "set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24\n"
    "set security ipsec vpn man bind-interface st0.2\n"
    "set security ipsec vpn man manual gateway 198.51.100.7\n"
    "set security ipsec vpn man manual external-interface ge-0/0/0.0\n"
    "set security ipsec vpn man manual protocol esp\n"
    "set security ipsec vpn man manual spi 16639\n"
    "set security ipsec vpn man manual encryption algorithm aes-128-cbc\n"
    'set security ipsec vpn man manual encryption key ascii-text "0123456789abcdef"\n'
    "set security ipsec vpn man manual authentication algorithm hmac-sha1-96 "
    "key hexadecimal 0x000102030405060708090a0b0c0d0e0f10111213\n"
)


def test_ipsec_vpn_manual_sa() -> None:
    c = load_config(MANUAL)
    m = c.ipsec_vpns["man"].manual
    assert m is not None
    assert (m.spi, m.protocol, m.gateway, m.external_interface) == \
        (16639, "esp", "198.51.100.7", "ge-0/0/0.0")
    assert m.encryption_algorithm == "aes-128-cbc" and m.encryption_key == b"0123456789abcdef"
    assert m.authentication_algorithm == "hmac-sha1-96"
    assert m.authentication_key == bytes(range(20))
    assert "0123456789abcdef" not in repr(m)
    assert c.ipsec_vpns["man"].anti_replay_window == 0


@pytest.mark.parametrize("deployment", ["site-to-site", "mnha-icl", "p2mp", "group-vpn", "advpn"])
def test_deployment_type(deployment: str) -> None:
    c = load(f"set security ipsec vpn 4700 deployment-type {deployment}\n")
    assert c.deployment_of(c.ipsec_vpns["4700"]) == deployment


def test_deployment_markers() -> None:
    c = load("set interfaces st0 unit 0 multipoint\n")
    assert c.st0_units[0].multipoint
    assert c.deployment_of(c.ipsec_vpns["4700"]) == "p2mp"
    c = load("set security ike gateway 4700 advpn partner\n")
    assert c.ike_gateways["4700"].advpn == "partner"
    assert c.deployment_of(c.ipsec_vpns["4700"]) == "advpn"
    c = load("set security ike gateway 4700 advpn suggester disable\n")
    assert c.ike_gateways["4700"].advpn == "suggester disable"
    assert c.deployment_of(c.ipsec_vpns["4700"]) == "advpn"
    c = load("set security ipsec vpn 4700 ha-link-encryption\n")
    assert c.ipsec_vpns["4700"].ha_link_encryption
    assert c.deployment_of(c.ipsec_vpns["4700"]) == "mnha-icl"


def test_hw_offload_disable_and_power_mode() -> None:
    c = load("set security ipsec hw-offload-disable\nset security flow power-mode-ipsec\n")
    assert c.hw_offload_disable and c.power_mode_ipsec


# -- interfaces, routing, license --------------------------------------------------------------

def test_interfaces_and_routes() -> None:
    c = load(
        "set interfaces st0 unit 0 family inet6\n"
        "set routing-options rib inet6.0 static route 2001:db8:2::/48 next-hop st0.0\n"
        "set routing-options static route 0.0.0.0/0 next-hop 192.0.2.254\n"
        "set interfaces ge-0/0/0 unit 0 family inet6 address 2001:db8::1/64\n"
        "set interfaces ge-0/0/0 unit 0 family inet\n"
        "set interfaces st0 unit 0 family inet address 169.254.0.1/30\n")
    assert c.st0_units[0].families == frozenset({"inet", "inet6"})
    assert c.interface_addresses["st0.0"] == ("169.254.0.1/30",)
    assert c.static_routes[1:] == (StaticRoute("2001:db8:2::/48", "st0.0", "inet6.0"),
                                   StaticRoute("0.0.0.0/0", "192.0.2.254", "inet.0"))
    assert [r.prefix for r in c.routes_via("st0.0")] == ["10.2.0.0/16", "2001:db8:2::/48"]
    assert c.interface_addresses["ge-0/0/0.0"] == ("2001:db8::1/64",)


def test_license_statement() -> None:
    c = load("set system license ipsec-offload expires 2026-06-30\n")
    assert c.license is not None and c.license.expires == dt.date(2026, 6, 30)
    assert c.license_state(dt.date(2026, 6, 30)) == "valid"
    assert c.license_state(dt.date(2026, 7, 1)) == "expired"
    c = load("set system license ipsec-offload permanent\n")
    assert c.license_state(dt.date(2099, 1, 1)) == "valid"
    assert load().license_state(dt.date(2026, 1, 1)) == "none"


# -- lexical rules -----------------------------------------------------------------------------

def test_comments_blank_lines_and_quotes() -> None:
    c = load_config(
        "# a comment line\n"
        "\n"
        "   \n"
        "set security ike proposal p dh-group group14   # trailing comment\n"
        'set security ike policy pol pre-shared-key ascii-text "has # and \\" inside"\n'
        "set security ike policy pol proposals p\n")
    assert c.ike_proposals["p"].dh_group == "group14"
    assert c.ike_policies["pol"].pre_shared_key == 'has # and " inside'


def test_tokenize_brackets_and_quotes() -> None:
    toks = tokenize('set a [b "c d"] # e')
    assert [t.text for t in toks] == ["set", "a", "[", "b", "c d", "]"]
    assert [t.quoted for t in toks] == [False, False, False, False, True, False]


def test_empty_text_is_an_empty_config() -> None:
    assert load_config("") == Config()


# -- syntax errors -----------------------------------------------------------------------------

def test_error_names_line_token_and_expectation() -> None:
    text = ("set security ike proposal p dh-group group14\n"
            "set security ike proposal p dh-group group99\n")
    with pytest.raises(ConfigError) as info:
        load_config(text)
    err = info.value
    assert isinstance(err, ConfigurationErrors)
    assert len(err.errors) == 1
    issue = err.errors[0]
    assert issue.line == 2 and issue.token == "group99"
    assert "line 2" in str(err)
    assert "unexpected 'group99' after 'set security ike proposal p dh-group'" in str(issue)
    assert "expected one of: group1, group2" in str(issue)


@pytest.mark.parametrize("line, token, expected", [
    ("set security ike proposal p lifetime-seconds 90", "90", "seconds (180..86400)"),
    ("set security ipsec proposal p lifetime-kilobytes 63", "63", "kilobytes (64..1048576)"),
    ("set security ipsec proposal p lifetime-kilobytes 1048577", "1048577", "(64..1048576)"),
    ("set security ipsec proposal p encryption-algorithm aes-512-gcm", "aes-512-gcm",
     "aes-128-gcm"),
    ("set security ipsec proposal p authentication-algorithm hmac-sha-256", "hmac-sha-256",
     "hmac-sha-256-128"),
    ("set security ipsec proposal p protocol gre", "gre", "esp, ah"),
    ("set security ipsec vpn v bind-interface ge-0/0/0.0", "ge-0/0/0.0", "st0.<unit>"),
    ("set security ipsec vpn v df-bit maybe", "maybe", "clear, set, copy"),
    ("set security ipsec vpn v ike anti-replay-window-size 32", "32", "(64..65536)"),
    ("set security ipsec vpn v traffic-selector t local-ip 10.0.0.1", "10.0.0.1", "IP prefix"),
    ("set security ipsec vpn v manual spi 255", "255", "(256..16639)"),
    ("set security ipsec vpn v deployment-type hub", "hub", "site-to-site"),
    ("set security ike gateway g address 300.1.1.1", "300.1.1.1", "IP address or host name"),
    ("set security ike gateway g version v3-only", "v3-only", "v1-only, v2-only"),
    ("set security ike gateway g nat-keepalive 0", "0", "(1..300)"),
    ("set security ike policy p mode quick", "quick", "main, aggressive"),
    ("set security ipsec policy p perfect-forward-secrecy keys group3", "group3", "group14"),
    ("set routing-options static route 10.0.0.1/8 next-hop st0.0", "10.0.0.1/8", "prefix"),
    ("set system license ipsec-offload expires 2026-13-01", "2026-13-01", "YYYY-MM-DD"),
    ("set interfaces st0 unit 0 family inet address 2001:db8::1/64", "2001:db8::1/64",
     "IPv4 address/prefix-length"),
    ("set interfaces ge-0/0/0 unit 0 family inet6 address 10.0.0.1", "10.0.0.1",
     "IPv6 address/prefix-length"),
    ("set interfaces st0 unit 0 family mpls", "mpls", "inet, inet6"),
    ("set security ike proposal p colour blue", "colour", "authentication-method"),
    ("set security ipsec vpn v copy-outer-dscp extra", "extra", "end of statement"),
    ("set chassis cluster", "cluster", "high-availability"),
    ("set snmp community x", "snmp", "security, interfaces"),
    ("show security ike", "show", "'set'"),
])
def test_syntax_errors(line: str, token: str, expected: str) -> None:
    with pytest.raises(ConfigurationErrors) as info:
        load_config("# header\n" + line + "\n")
    issue = info.value.errors[0]
    assert issue.line == 2
    assert issue.token == token
    assert expected in issue.message


def test_incomplete_statement() -> None:
    [msg] = errors_of("set security ike proposal p dh-group\n")
    assert msg.startswith("line 1: incomplete statement 'set security ike proposal p dh-group'")
    assert "expected one of: group1" in msg


def test_deactivate_is_rejected_clearly() -> None:
    [msg] = errors_of("set security ike proposal p dh-group group14\n"
                      "deactivate security ike proposal p\n")
    assert msg.startswith("line 2: 'deactivate' statements are not supported")
    assert "expected 'set'" in msg


def test_unterminated_quote() -> None:
    with pytest.raises(ConfigurationErrors) as info:
        load_config('set security ike policy p pre-shared-key ascii-text "oops\n')
    issue = info.value.errors[0]
    assert issue.line == 1 and issue.token == '"oops'
    assert "unterminated quoted string" in issue.message


def test_all_errors_collected_in_line_order() -> None:
    text = ("set security ike proposal p dh-group group99\n"
            "set security ipsec vpn v bind-interface st0.x\n"
            "set bogus\n"
            "set security ipsec proposal q lifetime-seconds 1\n")
    with pytest.raises(ConfigurationErrors) as info:
        load_config(text)
    assert [e.line for e in info.value.errors][:4] == [1, 2, 3, 4]
    assert "configuration has" in str(info.value)


def test_nothing_half_applies() -> None:
    # A good configuration plus one bad line: no Config comes back at all.
    with pytest.raises(ConfigurationErrors):
        load(SRX4700.replace("group20\n", "group2O\n", 1))
