"""VPNs that cannot come up are reported, never silently left down: `inline-ipsec check`
prints a verdict per VPN with every reason, `inline-ipsec run` prints them at start-up and
counts them as down, `show security ipsec inactive-tunnels` gives the reason."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from inline_ipsec.cli import main
from inline_ipsec.config import load_config
from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.demo_config import demo_config
from inline_ipsec.gateway.ike_config import NOT_NEGOTIATED
from inline_ipsec.gateway.ike_link import IkePump, pair_controls
from inline_ipsec.gateway.inactive import NO_IKE_REASON
from inline_ipsec.gateway.runner import run_gateway
from inline_ipsec.gateway.vpn_verdict import vpn_verdicts

V1 = "set security ike gateway gw-vpn-cbc version v2-only\n"   # removed: Junos default v1


def _v1(side: str) -> str:
    text = demo_config(side)
    assert V1 in text
    return text.replace(V1, "")


def _blocks(out: str) -> dict[str, str]:
    return {b.split("\n")[0]: b for b in out.split("VPN Name: ")[1:]}


#: the reason vpn-cbc cannot come up on its IKEv1 gateway: the demo's Phase 1 is AES-GCM
V1_GCM = ("ike gateway gw-vpn-cbc is IKEv1 ('version v1-only', the Junos default when "
          "'version' is absent) and ike proposal ike-1 has encryption-algorithm aes-256-gcm")


def test_check_reports_a_vpn_on_an_ikev1_gateway(tmp_path: Path, capsys) -> None:
    p = tmp_path / "v1.conf"
    p.write_text(_v1("a"))
    assert main(["check", str(p)]) == 0
    out = capsys.readouterr().out
    blocks = _blocks(out)
    cbc = blocks["vpn-cbc"]
    assert "  Hardware Offloaded: - (it cannot come up)\n  Can come up: No\n" in cbc
    assert f"    Reason: {V1_GCM}: IKEv1 Phase 1 has CBC ciphers only" in cbc
    assert "Hardware Offloaded: Yes" not in cbc
    for name, block in blocks.items():
        if name != "vpn-cbc":
            assert "  Can come up: Yes\n" in block, name
    assert "11 VPNs: 4 offloaded to the PFE, 6 on the CPU, 1 cannot come up " \
           "(license: valid)" in out


def test_both_ike_versions_are_negotiated() -> None:
    assert NOT_NEGOTIATED == {}
    cfg = load_config(_v1("a"))
    assert not vpn_verdicts(cfg)["vpn-cbc"].can_come_up
    # with a CBC Phase 1 the IKEv1 gateway can come up
    cbc = _v1("a") + "set security ike proposal v1 encryption-algorithm aes-256-cbc\n" \
        "set security ike policy v1 proposals v1\n" \
        'set security ike policy v1 pre-shared-key ascii-text "v1"\n' \
        "set security ike gateway gw-vpn-cbc ike-policy v1\n"
    assert vpn_verdicts(load_config(cbc))["vpn-cbc"].can_come_up


@pytest.mark.parametrize("edit, vpn, reason", [
    (lambda t: t.replace("gw-vpn-chacha address 198.51.100.1",
                         "gw-vpn-chacha address peer.example.net"),
     "vpn-chacha", "address peer.example.net is a host name"),
    (lambda t: t.replace("dh-group group20", "dh-group group2"),
     "vpn-gcm256", "DH group 2 is not supported"),
    (lambda t: t.replace("set interfaces ge-0/0/0 unit 0 family inet address 192.0.2.1/24\n",
                         ""),
     "vpn-cbc", "no local address"),
    (lambda t: t.replace('set security ike policy ike-1 pre-shared-key ascii-text '
                         '"inline-ipsec-demo"',
                         "set security ike policy ike-1 certificate local-certificate gw-cert")
     .replace("authentication-method pre-shared-keys",
              "authentication-method ecdsa-signatures-256"),
     "vpn-cbc", "no key and certificate loaded for local-certificate gw-cert (the command "
                "line loads none"),
    (lambda t: t + "set security ipsec vpn vpn-twin bind-interface st0.6\n"
                   "set security ipsec vpn vpn-twin ike gateway gw-vpn-chacha\n"
                   "set security ipsec vpn vpn-twin ike ipsec-policy pol-chacha\n",
     "vpn-twin", "ipsec vpn vpn-chacha on the same ike gateway gw-vpn-chacha proposes the "
                 "same traffic selectors"),
    (lambda t: t + "set security ike gateway twin ike-policy ike-1\n"
                   "set security ike gateway twin address 198.51.100.1\n"
                   "set security ike gateway twin external-interface ge-0/0/0.0\n"
                   "set security ike gateway twin version v2-only\n"
                   "set interfaces st0 unit 60 family inet\n"
                   "set security ipsec vpn vpn-twin bind-interface st0.60\n"
                   "set security ipsec vpn vpn-twin ike gateway twin\n"
                   "set security ipsec vpn vpn-twin ike ipsec-policy pol-chacha\n",
     "vpn-twin", "ike gateways peer-v4 and twin have the same peer address 198.51.100.1"),
])
def test_check_reports_every_reason_a_vpn_cannot_come_up(tmp_path: Path, capsys, edit, vpn,
                                                         reason) -> None:
    p = tmp_path / "x.conf"
    p.write_text(edit(demo_config("a")))
    assert main(["check", str(p)]) == 0
    block = _blocks(capsys.readouterr().out)[vpn]
    assert "Can come up: No" in block and reason in block, block


def test_run_prints_and_counts_the_vpns_that_cannot_come_up(tmp_path: Path) -> None:
    conf_a, conf_b = tmp_path / "a.conf", tmp_path / "b.conf"
    conf_a.write_text(_v1("a"))
    conf_b.write_text(_v1("b"))
    out = io.StringIO()
    assert run_gateway(str(conf_a), control_path=str(tmp_path / "gw.sock"), duration=3.0,
                       peer=str(conf_b), out=out, install_signals=False) == 0
    text = out.getvalue()
    assert f"1 of 11 VPNs cannot come up (counted as down):\n  vpn-cbc: {V1_GCM}" in text
    assert "IKE: all 9 IKE VPNs up after" in text and "(1 VPNs cannot come up)" in text
    assert "; 1 of 11 VPNs down (1 cannot come up)" in text


def test_inactive_tunnels_show_why() -> None:
    a_text, b_text = _v1("a"), _v1("b")
    alone = Gateway.from_text(a_text, name="alone")
    shown = alone.show("security ipsec inactive-tunnels")
    assert "Total inactive tunnels: 10" in shown         # every IKE VPN; the manual SA is up
    rows = shown.splitlines()[3:]
    assert len(rows) == 10 and all(r.split()[0] == "-" for r in rows)   # never up: ID "-"
    assert NO_IKE_REASON in shown and "ike gateway gw-vpn-cbc is IKEv1" in shown
    a = Gateway.from_text(a_text, name="gw-a")
    b = Gateway.from_text(b_text, name="gw-b")
    ia, ib = pair_controls(a, b, ("192.0.2.1", 500, 4500), ("198.51.100.1", 500, 4500))
    pump = IkePump(ia, ib)
    ia.start(0.0)
    ib.start(0.0)
    pump.run(0.0)
    pump.advance(2.0)
    assert ia.up()
    shown = a.show("security ipsec inactive-tunnels")
    assert "Total inactive tunnels: 1\n  Total inactive tunnels with establish immediately: 1" \
        in shown
    (row,) = shown.splitlines()[3:]
    assert row.split()[:5] == ["-", "500", "0", "0", "198.51.100.1"]
    assert "ike gateway gw-vpn-cbc is IKEv1" in row
    detail = a.show("security ipsec inactive-tunnels detail")
    assert "VPN Name: vpn-cbc" in detail and "  Version: IKEv1" in detail
    assert f"Tunnel Down Reason: {V1_GCM}" in detail
    assert "Total active tunnels: 10" in a.show("security ipsec security-associations")


def test_distinguished_name_identities(tmp_path: Path, capsys) -> None:
    """`remote-identity distinguished-name container|wildcard ...` needs DN matching, which
    is not implemented: reported, not a crash; `local-identity distinguished-name` is the
    local certificate's subject, so with a pre-shared key it cannot work either."""
    text = demo_config("a") + (
        'set security ike gateway gw-vpn-cbc remote-identity distinguished-name container '
        '"O=Example"\n'
        "set security ike gateway gw-vpn-chacha local-identity distinguished-name\n")
    p = tmp_path / "dn.conf"
    p.write_text(text)
    assert main(["check", str(p)]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert "matching a peer's DN by container or wildcard is not implemented" in \
        blocks["vpn-cbc"]
    assert "local-identity distinguished-name is a certificate's subject" in \
        blocks["vpn-chacha"]
    gw = Gateway.from_text(text, name="dn")
    from inline_ipsec.gateway.ike_control import IkeControl
    ctl = IkeControl(gw)
    assert {"vpn-cbc", "vpn-chacha"} <= set(ctl.unsupported) and "vpn-cbc" not in ctl.vpns


def test_statements_not_carried_out_are_noted(tmp_path: Path, capsys) -> None:
    text = demo_config("a").replace(
        "set security ipsec vpn vpn-chacha establish-tunnels immediately\n", "").replace(
        "set routing-options static route 10.2.6.0/24 next-hop st0.6\n", "") + (
        "set security ike gateway gw-vpn-cbc address 198.51.100.9\n"
        "set security ike gateway gw-vpn-ah advpn partner\n")
    p = tmp_path / "notes.conf"
    p.write_text(text)
    assert main(["check", str(p)]) == 0
    blocks = _blocks(capsys.readouterr().out)
    assert "  Can come up: Yes\n  Not carried out: ike gateway gw-vpn-cbc: backup peer " \
           "addresses 198.51.100.9 are not used; only 198.51.100.1 is negotiated" \
           in blocks["vpn-cbc"]
    assert "ADVPN shortcut tunnels are negotiated by inline_ipsec.hub.HubControl" in \
        blocks["vpn-ah"]
    assert "no route leads into st0.6: traffic cannot trigger it" in blocks["vpn-chacha"]
    assert "Not carried out" not in blocks["vpn-gcm256"]
