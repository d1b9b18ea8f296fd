"""Every bounded value of the grammar at both ends of its range, and the defaults a
configuration gets when a statement is absent (followed through to the SA and show output)."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from inline_ipsec import SaSpec
from inline_ipsec.config import Config, load_config, negotiated_sa_args
from inline_ipsec.config.junos import parse

Get = Callable[[Config], Any]

# (statement with {v}, lowest, highest, how to read the value back, the range as the message
# names it)
BOUNDS: list[tuple[str, int, int, Get, str]] = [
    ("set security ike proposal p lifetime-seconds {v}", 180, 86400,
     lambda c: c.ike_proposals["p"].lifetime_seconds, "(180..86400)"),
    ("set security ipsec proposal p lifetime-seconds {v}", 180, 86400,
     lambda c: c.ipsec_proposals["p"].lifetime_seconds, "(180..86400)"),
    ("set security ipsec proposal p lifetime-kilobytes {v}", 64, 1048576,
     lambda c: c.ipsec_proposals["p"].lifetime_kilobytes, "(64..1048576)"),
    ("set security ike gateway g nat-keepalive {v}", 1, 300,
     lambda c: c.ike_gateways["g"].nat_keepalive, "(1..300)"),
    ("set security ike gateway g dead-peer-detection interval {v}", 2, 60,
     lambda c: c.ike_gateways["g"].dead_peer_detection.interval, "(2..60)"),
    ("set security ike gateway g dead-peer-detection threshold {v}", 1, 5,
     lambda c: c.ike_gateways["g"].dead_peer_detection.threshold, "(1..5)"),
    ("set security ipsec vpn v ike anti-replay-window-size {v}", 64, 65536,
     lambda c: c.ipsec_vpns["v"].ike.anti_replay_window_size, "(64..65536)"),
    ("set security ipsec vpn v manual spi {v}", 256, 16639,
     lambda c: c.ipsec_vpns["v"].manual.spi, "(256..16639)"),
    ("set interfaces st0 unit {v} family inet", 0, 1048574,
     lambda c: sorted(c.st0_units), "(0..1048574)"),
    ("set interfaces ge-0/0/0 unit {v} family inet address 192.0.2.1/24", 0, 1048574,
     lambda c: sorted(c.interface_addresses), "(0..1048574)"),
    ("set security ipsec vpn v bind-interface st0.{v}", 0, 1048574,
     lambda c: c.ipsec_vpns["v"].bind_interface, "(unit 0..1048574)"),
    ("set security ike gateway g external-interface ge-0/0/0.{v}", 0, 1048574,
     lambda c: c.ike_gateways["g"].external_interface, "(unit 0..1048574)"),
]
IDS = [b[0].split(" {v}")[0].replace("set ", "").replace(" ", "-")[:60] for b in BOUNDS]


def _expected(get: Get, value: int, stmt: str) -> Any:
    """What `get` reads back when the statement set `value`."""
    if "st0 unit" in stmt:
        return [value]
    if "ge-0/0/0 unit" in stmt:
        return [f"ge-0/0/0.{value}"]
    if "st0." in stmt:
        return f"st0.{value}"
    if "ge-0/0/0." in stmt:
        return f"ge-0/0/0.{value}"
    return value


@pytest.mark.parametrize("stmt, lo, hi, get, named", BOUNDS, ids=IDS)
@pytest.mark.parametrize("end", ["lowest", "highest"])
def test_each_end_of_a_range_is_accepted(stmt: str, lo: int, hi: int, get: Get, named: str,
                                         end: str) -> None:
    value = lo if end == "lowest" else hi
    config, issues = parse(stmt.format(v=value) + "\n")
    assert issues == []
    assert get(config) == _expected(get, value, stmt)


@pytest.mark.parametrize("stmt, lo, hi, get, named", BOUNDS, ids=IDS)
@pytest.mark.parametrize("end", ["below", "above"])
def test_one_past_each_end_is_rejected_naming_the_range(stmt: str, lo: int, hi: int, get: Get,
                                                        named: str, end: str) -> None:
    value = lo - 1 if end == "below" else hi + 1
    line = stmt.format(v=value)
    _, issues = parse("# header\n" + line + "\n")
    assert len(issues) == 1, issues
    issue = issues[0]
    assert issue.line == 2
    token = next(word for word in line.split() if str(value) in word)
    assert issue.token == token
    assert issue.message.startswith(f"unexpected '{issue.token}' after ")
    assert named in issue.message


def test_anti_replay_window_65537_is_rejected() -> None:
    _, issues = parse("set security ipsec vpn v ike anti-replay-window-size 65537\n")
    [issue] = issues
    assert issue.token == "65537"
    assert issue.message == ("unexpected '65537' after 'set security ipsec vpn v ike "
                             "anti-replay-window-size': expected packets (64..65536)")


@pytest.mark.parametrize("length, ok", [(63, True), (64, False)])
def test_names_are_at_most_63_characters(length: int, ok: bool) -> None:
    name = "p" * length
    config, issues = parse(f"set security ike proposal {name} dh-group group14\n")
    if ok:
        assert issues == [] and list(config.ike_proposals) == [name]
    else:
        [issue] = issues
        assert issue.token == name and "1 to 63 of A-Z a-z 0-9" in issue.message


# -- defaults, end to end ----------------------------------------------------------------------

VPN = """\
set security ike proposal ike-1 authentication-method pre-shared-keys
set security ike proposal ike-1 dh-group group20
set security ike proposal ike-1 encryption-algorithm aes-256-gcm
set security ike policy ike-1 proposals ike-1
set security ike policy ike-1 pre-shared-key ascii-text "secret"
set security ike gateway gw ike-policy ike-1
set security ike gateway gw address 198.51.100.1
set security ike gateway gw external-interface ge-0/0/0.0
set security ike gateway gw version v2-only
set security ipsec proposal ipsec-1 encryption-algorithm aes-256-gcm
set security ipsec policy ipsec-1 proposals ipsec-1
set security ipsec vpn vpn-1 bind-interface st0.0
set security ipsec vpn vpn-1 ike gateway gw
set security ipsec vpn vpn-1 ike ipsec-policy ipsec-1
set interfaces st0 unit 0 family inet
set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24
set routing-options static route 10.2.0.0/16 next-hop st0.0
"""


def _spec(config: Config) -> SaSpec:
    return SaSpec(**negotiated_sa_args(config, "vpn-1", spi=0x1234, key=bytes(36),
                                       tunnel_src="192.0.2.1", tunnel_dst="198.51.100.1"))


def test_default_anti_replay_window_is_64_from_config_to_sa() -> None:
    """Junos' default anti-replay-window-size is 64 packets."""
    config = load_config(VPN)
    vpn = config.ipsec_vpns["vpn-1"]
    assert vpn.ike.anti_replay_window_size == 64 and vpn.anti_replay_window == 64
    assert _spec(config).replay_window == 64
    assert _spec(load_config(VPN + "set security ipsec vpn vpn-1 ike "
                                   "anti-replay-window-size 1024\n")).replay_window == 1024
    assert _spec(load_config(VPN + "set security ipsec vpn vpn-1 ike no-anti-replay\n")
                 ).replay_window == 0


def test_default_anti_replay_window_is_64_in_show_output() -> None:
    from inline_ipsec.gateway import Gateway
    gw = Gateway(load_config(VPN), name="gw-a")
    assert gw.establish_prekeyed() == ["vpn-1"]
    detail = gw.show("security ipsec security-associations detail")
    assert "VPN Name: vpn-1" in detail
    assert detail.count("Anti-replay service: counter-based enabled, Replay window size: 64\n") \
        == 2  # inbound and outbound
    assert "Replay window size: 128" not in detail


def test_other_vpn_defaults() -> None:
    vpn = load_config(VPN).ipsec_vpns["vpn-1"]
    spec = _spec(load_config(VPN))
    assert (vpn.df_bit, vpn.copy_outer_dscp, vpn.establish_tunnels) == \
        ("clear", False, "on-traffic")
    assert (spec.df_bit, spec.copy_outer_dscp, spec.esn, spec.protocol) == \
        ("clear", False, False, "esp")
    assert (spec.lifetime.hard_seconds, spec.lifetime.hard_kilobytes) == (3600, None)
