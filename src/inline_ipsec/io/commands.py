"""The gateway's sub-commands of `inline-ipsec`: `check`, `run` and `show`.

`inline_ipsec.cli` owns the command registry and calls `register(command)`; the commands live
here so the gateway's CLI surface sits next to the gateway.

Exit codes: 0 success; 1 a bad configuration (line-numbered errors on stderr), a gateway that
cannot start, or a show command that failed; 2 usage errors and missing files.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable

__all__ = ["register"]

Command = Callable[[str, str, Callable[[argparse.ArgumentParser], None]],
                   Callable[[Callable[[argparse.Namespace], int]], object]]


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="Junos set-statement configuration")
    p.add_argument("--today", metavar="YYYY-MM-DD", type=_date,
                   help="the date the offload license is checked against (default: today)")


def _date(text: str):
    import datetime
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def run_check(args: argparse.Namespace) -> int:
    import datetime

    from ..config import ConfigurationErrors, load_config_file
    try:
        config = load_config_file(args.file)
    except OSError as exc:
        print(f"inline-ipsec check: cannot read {args.file}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    except ConfigurationErrors as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    today = args.today or datetime.date.today()
    sys.stdout.write(check_report(config, today))
    return 0


def check_report(config, today) -> str:
    """What `inline-ipsec check` prints: per VPN its offload verdict (docs/design.md Table 1)
    and whether it can come up at all (`vpn_verdict`, every reason), then a summary. A VPN
    that cannot come up takes no PFE capacity from the others."""
    import dataclasses

    from ..control.distribution import place_config
    from ..stats import render_offload_check
    from ..control.vpn_verdict import render_verdict, vpn_verdicts
    verdicts = vpn_verdicts(config)
    can = {n: v for n, v in config.ipsec_vpns.items() if verdicts[n].can_come_up}
    placements = place_config(dataclasses.replace(config, ipsec_vpns=can), today)
    lines: list[str] = []
    for name in config.ipsec_vpns:
        if name in placements:
            lines += render_offload_check({name: placements[name]}).splitlines()
        else:
            lines += [f"VPN Name: {name}", "  Hardware Offloaded: - (it cannot come up)"]
        lines += render_verdict(verdicts[name])
        lines += _mnha_lines(config, name)
    offloaded = sum(1 for p in placements.values() if p.offloaded)
    down = len(config.ipsec_vpns) - len(placements)
    lines += ["", f"{len(config.ipsec_vpns)} VPNs: {offloaded} offloaded to the PFE, "
              f"{len(placements) - offloaded} on the CPU"
              + (f", {down} cannot come up" if down else "")
              + f" (license: {config.license_state(today)})"]
    return "\n".join(lines) + "\n"


def _mnha_lines(config, vpn: str) -> list[str]:
    """Where a VPN runs in a Multinode HA pair (docs/mnha.md): the ICL, an SRG's active node
    (its local address is the SRG's virtual IP), or both nodes independently (SRG0)."""
    ha = config.high_availability
    if ha is None:
        return []
    v = config.ipsec_vpns[vpn]
    peer = ha.peer
    if peer is not None and peer.vpn_profile == vpn:
        return ["  MNHA: interchassis link (carries heartbeats and state synchronisation)"]
    gw = config.gateway_of(v)
    local = config.local_address_of(gw) if gw is not None else (
        config.interface_address(v.manual.external_interface, v.manual.gateway)
        if v.manual is not None else None)
    srg = ha.srg_of_address(local)
    if srg is None:
        return ["  MNHA: services-redundancy-group 0 (on both nodes, not synchronised: its "
                "local address is no SRG's virtual IP)"]
    return [f"  MNHA: services-redundancy-group {srg} (on the SRG's active node; SAs, "
            "sequence numbers and IKE SA synchronised to the backup)"]


def _control_arg(p: argparse.ArgumentParser) -> None:
    from .control_socket import default_control_path
    p.add_argument("--control", metavar="PATH", default=None,
                   help=f"control socket (default {default_control_path()})")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG", help="Junos set-statement configuration")
    _control_arg(p)
    p.add_argument("--duration", type=_positive, metavar="SECONDS",
                   help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
    p.add_argument("--peer", metavar="CONFIG",
                   help="also run the peer gateway from this configuration in-process, on an "
                        "in-memory wire, with test traffic through every tunnel")
    p.add_argument("--ike", default="127.0.0.1:0", metavar="HOST:PORT[:NATT]",
                   help="loopback address and UDP port IKEv2 listens on (NAT-T on PORT+1; "
                        "default 127.0.0.1 with free ports)")
    p.add_argument("--ike-peer", metavar="HOST:PORT[:NATT]",
                   help="where the peer gateway's IKE listens (another inline-ipsec run); "
                        "every configured peer address is mapped to it")
    p.add_argument("--prekeyed", action="store_true",
                   help="instead of IKE, bring IKE VPNs up with pre-keyed SAs derived from the "
                        "pre-shared key (a stand-in; manual SAs are always installed)")
    p.add_argument("--nat-t", nargs="+", default=[], metavar="VPN",
                   help="VPNs to run over NAT-T (UDP 4500): this side claims a NAT "
                        "(RFC 7296 §2.23), or with --prekeyed, encapsulated as such")
    p.add_argument("--mtu", type=int, default=1500, help="tunnel MTU of the outer packets")
    p.add_argument("--backend", choices=("openssl", "ipsec-mb", "auto"), default=None,
                   help="the PFEs' crypto backend (default openssl; auto: the fastest built)")


def run_run(args: argparse.Namespace) -> int:
    from ..config import ConfigurationErrors
    from .control_socket import ControlError, default_control_path
    from .runner import run_gateway
    for path in (args.config, args.peer):
        if path is not None and not os.path.isfile(path):
            print(f"inline-ipsec run: no such file: {path}", file=sys.stderr)
            return 2
    try:
        return run_gateway(args.config, control_path=args.control or default_control_path(),
                           duration=args.duration, peer=args.peer, prekeyed=args.prekeyed,
                           nat_t=args.nat_t, mtu=args.mtu, pfe_backend=args.backend,
                           ike_listen=args.ike, ike_peer=args.ike_peer)
    except ConfigurationErrors as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    except (ControlError, ValueError, OSError) as exc:
        print(f"inline-ipsec run: {exc}", file=sys.stderr)
        return 1


def _show_args(p: argparse.ArgumentParser) -> None:
    from .show import SHOW_COMMANDS
    p.add_argument("words", nargs="+", metavar="WORD",
                   help="the show command, e.g. security ipsec security-associations detail; "
                        "one of: " + "; ".join(SHOW_COMMANDS))
    _control_arg(p)


def run_show(args: argparse.Namespace) -> int:
    from .control_socket import ControlError, default_control_path, query
    try:
        sys.stdout.write(query(args.control or default_control_path(), " ".join(args.words)))
    except ControlError as exc:
        print(f"inline-ipsec show: {exc}", file=sys.stderr)
        return 1
    return 0


def register(command: Command) -> None:
    """Register `check`, `run` and `show` with the CLI's `command` decorator."""
    command("check", "parse a configuration; per VPN, Hardware Offloaded: Yes/No with every "
            "reason", _check_args)(run_check)
    command("run", "run a gateway from a configuration, with a control socket for show "
            "commands", _run_args)(run_run)
    command("show", "show commands against a running gateway (inline-ipsec run)",
            _show_args)(run_show)
