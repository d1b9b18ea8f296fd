"""Whole SRX configurations (`show configuration | display set`) load: what the model does
not carry out is listed in one warning, deactivated statements are inactive, `check` still
gives every VPN's verdict."""
from __future__ import annotations

from pathlib import Path

import pytest

from inline_ipsec.cli import main
from inline_ipsec.config import ConfigurationErrors, load_config, load_config_file

CONFIGS = Path(__file__).parent.parent / "data" / "configs"
ALL = sorted(CONFIGS.glob("*.conf"))


def test_there_are_full_configurations() -> None:
    assert len(ALL) >= 4


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_full_configuration_loads_with_one_warning(path: Path) -> None:
    config = load_config_file(path)
    warning = config.warning()
    assert warning is not None and "outside the model" in warning
    assert "\n" not in warning
    assert config.firewall.zones and config.firewall.policies


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_check_gives_every_vpn_verdict(path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "--today", "2026-03-01", str(path)]) == 0
    out, err = capsys.readouterr()
    config = load_config_file(path)
    for name in config.ipsec_vpns:
        assert f"VPN Name: {name}\n" in out
    assert err.count("warning:") == 1 and err.startswith(f"{path}: warning: ")


def test_branch_warning_lists_the_hierarchies() -> None:
    w = load_config_file(CONFIGS / "branch-route-based.conf").warning()
    assert w is not None
    for h in ("system host-name", "snmp", "security screen", "security nat", "protocols",
              "class-of-service", "interfaces * unit * family ethernet-switching",
              "security policies ... then log", "vlans"):
        assert f"{h} (line" in w, h
    assert "inactive: security ipsec vpn vpn-dr (lines 46-48)" in w


def test_deactivated_vpn_is_not_in_the_model() -> None:
    c = load_config_file(CONFIGS / "branch-route-based.conf")
    assert set(c.ipsec_vpns) == {"vpn-hq"}


def test_deactivate_before_set_and_of_a_leaf() -> None:
    c = load_config("deactivate interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24\n"
                    "set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24\n"
                    "set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.2/24\n")
    assert c.interface_addresses == {"ge-0/0/0.0": ("192.0.2.2/24",)}
    assert c.ignored[0].kind == "inactive" and c.ignored[0].lines == (2,)


def test_unknown_top_level_word_is_still_an_error() -> None:
    with pytest.raises(ConfigurationErrors) as info:
        load_config("set securty ike proposal p dh-group group14\n")
    assert "unexpected 'securty'" in info.value.errors[0].message


def test_modelled_statement_errors_stay_errors() -> None:
    with pytest.raises(ConfigurationErrors) as info:
        load_config("set system host-name x\nset security ike proposal p dh-group group99\n")
    assert [e.line for e in info.value.errors] == [2]


def test_policy_based_vpn_proxy_ids_from_its_policy() -> None:
    c = load_config_file(CONFIGS / "hq-policy-based.conf")
    vpn = c.ipsec_vpns["vpn-branch"]
    assert vpn.policy_based and vpn.tunnel_policy == "vpn-out"
    assert [(t.local_ip, t.remote_ip) for t in vpn.traffic_selectors] == \
        [("10.20.1.0/24", "10.10.0.0/16")]


def test_policy_with_unsupported_match_is_inactive_and_reported() -> None:
    c = load_config_file(CONFIGS / "hq-policy-based.conf")
    p = next(p for p in c.firewall.policies if p.name == "guest-wifi")
    assert not p.active and p.unsupported == ("match source-identity",)
    assert "match source-identity (the policy is inactive)" in (c.warning() or "")


def test_host_inbound_except_and_interface_override() -> None:
    c = load_config_file(CONFIGS / "hq-policy-based.conf")
    untrust = c.firewall.zones["untrust"]
    hi = untrust.host_inbound_of("ge-0/0/0.0")
    assert hi.allows("ike") and not hi.allows("ssh")
    b = load_config_file(CONFIGS / "branch-route-based.conf").firewall.zones["untrust"]
    assert b.host_inbound_of("ge-0/0/0.0").allows("ike")
    assert not b.host_inbound_of("ge-0/0/0.0").allows("ssh")


ZONES = """set security zones security-zone trust interfaces ge-0/0/1.0
set security zones security-zone untrust interfaces ge-0/0/0.0
"""
POLICY = "set security policies from-zone trust to-zone untrust policy p "


@pytest.mark.parametrize("lines, message", [
    ([POLICY + "match source-address nowhere", POLICY + "match destination-address any",
      POLICY + "match application any", POLICY + "then permit"], "source-address 'nowhere'"),
    ([POLICY + "match source-address any", POLICY + "match destination-address any",
      POLICY + "match application junos-quake", POLICY + "then permit"],
     "application 'junos-quake' is not defined"),
    ([POLICY + "match source-address any", POLICY + "match destination-address any",
      POLICY + "match application any"], "missing 'then permit|deny|reject'"),
    ([POLICY + "match source-address any", POLICY + "match destination-address any",
      POLICY + "match application any", POLICY + "then permit tunnel ipsec-vpn ghost"],
     "tunnel ipsec-vpn 'ghost' is not defined"),
    (["set security policies from-zone trust to-zone dmz policy q match source-address any"],
     "security zone 'dmz' is not defined"),
    (["set security zones security-zone dmz interfaces ge-0/0/1.0"],
     "interface ge-0/0/1.0 is already in zone trust"),
    ([POLICY + "match source-address any", POLICY + "match destination-address any",
      POLICY + "match application any", POLICY + "then permit tunnel ipsec-vpn v",
      POLICY + "then permit tunnel pair-policy back"], "pair-policy 'back'"),
])
def test_policy_commit_checks(lines: list[str], message: str) -> None:
    text = ZONES + "\n".join(lines) + "\n"
    text += ("set interfaces st0 unit 0 family inet\n"
             "set security ipsec vpn v bind-interface st0.0\n"
             "set security ipsec vpn v manual spi 300\n"
             "set security ipsec vpn v manual protocol esp\n"
             "set security ipsec vpn v manual encryption algorithm aes-128-gcm key "
             "hexadecimal 0x" + "11" * 20 + "\n"
             "set security ipsec vpn v manual gateway 192.0.2.9\n"
             "set security ipsec vpn v manual external-interface ge-0/0/0.0\n")
    with pytest.raises(ConfigurationErrors) as info:
        load_config(text)
    assert any(message in e.message for e in info.value.errors), info.value.errors


def test_route_based_vpn_in_a_tunnel_policy_is_refused() -> None:
    lines = [POLICY + "match source-address any", POLICY + "match destination-address any",
             POLICY + "match application any", POLICY + "then permit tunnel ipsec-vpn v"]
    text = ZONES + "\n".join(lines) + "\n" + (
        "set interfaces st0 unit 0 family inet\n"
        "set security ipsec vpn v bind-interface st0.0\n")
    with pytest.raises(ConfigurationErrors) as info:
        load_config(text)
    assert any("is route-based" in e.message for e in info.value.errors)


def test_check_names_zone_and_host_inbound_problems(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    text = (CONFIGS / "branch-route-based.conf").read_text()
    text = text.replace("set security zones security-zone untrust interfaces ge-0/0/0.0 "
                        "host-inbound-traffic system-services ike\n", "")
    text = text.replace("security-zone vpn interfaces st0.0\n", "security-zone vpn interfaces "
                        "st0.1\n")
    path = tmp_path / "broken.conf"
    path.write_text(text)
    assert main(["check", "--today", "2026-03-01", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  Security zone: st0.0 is in no security zone: its traffic is dropped\n" in out
    assert ("  Host-inbound: security-zone untrust interface ge-0/0/0.0: host-inbound-traffic "
            "does not allow system-services ike: the peer's IKE is dropped") in out
    good = main(["check", "--today", "2026-03-01", str(CONFIGS / "hq-policy-based.conf")])
    assert good == 0
    assert "  Policy-based: proxy IDs from policy vpn-out:\n    10.20.1.0/24 <-> 10.10.0.0/16\n" \
        in capsys.readouterr().out


def test_show_configuration_ignored() -> None:
    from inline_ipsec.gateway import Gateway
    gw = Gateway.from_file(str(CONFIGS / "branch-route-based.conf"), name="gw")
    text = gw.show("configuration ignored")
    assert text.startswith("Outside the model:\n  version: line 2\n")
    assert "  security nat: lines 51, 52, 53, 54\n" in text
    assert text.endswith("Inactive:\n  security ipsec vpn vpn-dr: lines 46, 47, 48\n")
    many = Gateway.from_text("".join(f"set snmp community c{i}\n" for i in range(50)))
    assert many.show("configuration ignored").rstrip().endswith("... (30 more)")


def test_global_policy_covers_every_zone_pair() -> None:
    import ipaddress

    from inline_ipsec.policy import FiveTuple, PolicyTable, ZoneMap
    c = load_config_file(CONFIGS / "dc-inline-offload.conf")
    table, zones = PolicyTable(c.firewall), ZoneMap(c)
    src, dst = ipaddress.ip_address("10.1.0.1"), ipaddress.ip_address("10.2.0.1")
    assert (zones.zone_towards(src), zones.zone_towards(dst)) == ("left", "vpn")
    d = table.match("left", "vpn", FiveTuple(src, dst, 17, 1024, 1024))
    assert d.permitted and d.policy == "permit"
    assert len(table) == len(c.firewall.zones) ** 2      # expanded into each pair
    assert zones.host_inbound_allows("192.168.3.1", "ike")
    assert not zones.host_inbound_allows("192.168.1.1", "ike")
    assert not zones.host_inbound_allows("10.255.0.21", "ike")     # fxp0: in no zone


def test_chassis_statements_other_than_high_availability_are_outside_the_model() -> None:
    c = load_config("set chassis cluster reth-count 2\n"
                    "set chassis fpc 1 pic 0 port-profile B-1X400G-2X100G-2X50G\n")
    assert c.high_availability is None
    assert c.warning() == ("2 statements ignored, outside the model: chassis cluster (line 1); "
                           "chassis fpc (line 2)")
