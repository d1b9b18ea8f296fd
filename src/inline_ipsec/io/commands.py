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
    if config.warning():
        print(f"{args.file}: warning: {config.warning()}", file=sys.stderr)
    sys.stdout.write(check_report(config, today))
    return 0


def check_report(config, today) -> str:
    """What `inline-ipsec check` prints: per VPN its offload verdict (docs/design.md Table 1)
    and whether it can come up at all (`vpn_verdict`, every reason), then a summary. A VPN
    that cannot come up takes no PFE capacity from the others."""
    import dataclasses

    from ..control.distribution import place_config
    from ..policy.check import policy_notes
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
        lines += policy_notes(config, config.ipsec_vpns[name])
        lines += _mnha_lines(config, name)
    if config.group_vpn is not None:
        from ..groupvpn.check import check_lines
        lines += check_lines(config.group_vpn)
    offloaded = sum(1 for p in placements.values() if p.offloaded)
    down = len(config.ipsec_vpns) - len(placements)
    lines += ["", f"{len(config.ipsec_vpns)} VPNs: {offloaded} offloaded to the PFE, "
              f"{len(placements) - offloaded} on the CPU"
              + (f", {down} cannot come up" if down else "")
              + f" (license: {config.license_state(today)})"]
    lines.append(_cpu_path_line(config))
    return "\n".join(lines) + "\n"


def _cpu_path_line(config) -> str:
    """How the CPU path processes packets (`set security flow power-mode-ipsec[-qat]`)."""
    qat = config.power_mode_ipsec_qat
    if qat is not None:
        return (f"CPU path: PowerMode IPsec (vectors), QAT device model with ring depth "
                f"{qat.ring_depth}, batch size {qat.batch_size}")
    if config.power_mode_ipsec:
        return "CPU path: PowerMode IPsec (vectors)"
    return "CPU path: packet by packet (no power-mode-ipsec)"


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
    if gw is not None and gw.ike_version == 1:
        return [f"  MNHA: services-redundancy-group {srg} (on the SRG's active node; SAs and "
                "sequence numbers synchronised to the backup; not carried out: the IKEv1 SA is "
                "not synchronised, so this VPN renegotiates after a failover)"]
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
                   help="address and UDP port IKEv2 listens on (NAT-T on PORT+1; "
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
    p.add_argument("--pki-dir", metavar="DIR", default=None,
                   help="PKI directory of `inline-ipsec request security pki ... load`: local "
                        "certificates for IKE `certificate local-certificate ID`, CA "
                        "certificates to validate peers")
    p.add_argument("--backend", choices=("openssl", "ipsec-mb", "auto"), default=None,
                   help="the PFEs' crypto backend (default openssl; auto: the fastest built)")
    d = p.add_argument_group(
        "real tunnels (root or CAP_NET_ADMIN + CAP_NET_RAW)",
        "with --tun the gateway terminates tunnels with real peers: inner traffic through a "
        "TUN device routed by the configuration, IKE and ESP on the external interfaces' "
        "addresses (UDP 500/4500, raw ESP)")
    d.add_argument("--tun", metavar="NAME",
                   help="create TUN device NAME for the inner traffic and run as a daemon")
    d.add_argument("--ike-port", type=int, default=500, metavar="PORT",
                   help="local IKE port (default 500)")
    d.add_argument("--natt-port", type=int, default=4500, metavar="PORT",
                   help="local NAT-T port (default 4500)")
    d.add_argument("--no-raw-esp", action="store_true",
                   help="do not open raw ESP sockets (peers must use NAT-T)")
    d.add_argument("--pcap", metavar="FILE",
                   help="capture what crosses the outer sockets and the TUN (pcap)")
    d.add_argument("--pcap-limit", type=int, metavar="MB",
                   help="stop capturing (and count what is not written) past MB megabytes")
    d.add_argument("--esp-keys", metavar="FILE",
                   help="keep a Wireshark esp_sa table of every SA's keys in FILE")
    d.add_argument("--log", metavar="FILE",
                   help="tunnel event log (one Junos-like line per event; default stderr)")
    d.add_argument("--local-certificate", nargs=3, action="append", default=[],
                   metavar=("ID", "CERT", "KEY"),
                   help="load a local certificate (PEM, leaf first, then its chain) and its "
                        "private key (PEM) as certificate-id ID, the name `ike policy ... "
                        "certificate local-certificate ID` uses (as Junos' request security "
                        "pki local-certificate load filename CERT key KEY certificate-id ID)")
    d.add_argument("--ca-certificate", action="append", default=[], metavar="PEM",
                   help="a CA certificate the peers' certificates are checked against (as a "
                        "Junos ca-profile's CA certificate); repeatable")
    d.add_argument("--no-io-threads", action="store_true",
                   help="write to the TUN and the outer sockets from the main thread (by "
                        "default one writer thread each, so the kernel's forwarding work in "
                        "those syscalls overlaps the gateway's)")
    d.add_argument("--list-io", action="store_true",
                   help="move packets between the TUN, the sockets and the gateway as Python "
                        "bytes (by default the TUN and raw ESP sockets are read into and "
                        "written from the bursts' slots in C; a capture always uses bytes)")
    d.add_argument("--no-tun-gso", action="store_true",
                   help="write decrypted packets into the TUN one per write(2) (by default the "
                        "burst path writes a run of one UDP flow's datagrams as one UDP "
                        "segmentation-offload write, which the kernel cuts back into the same "
                        "datagrams; needs Linux 6.2 or later, older kernels fall back by "
                        "themselves)")
    d.add_argument("--burst", type=int, default=64, metavar="N",
                   help="packets per syscall batch and per gateway call (default 64)")


class CredentialError(ValueError):
    """A certificate or key file that cannot be read or does not parse."""


def load_credentials(entries) -> dict:
    """[(ID, CERT, KEY)] -> {ID: (private key, [certificates])} for `IkeControl`."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    out = {}
    for cid, cert, key in entries:
        try:
            with open(cert, "rb") as f:
                certs = x509.load_pem_x509_certificates(f.read())
            with open(key, "rb") as f:
                private = load_pem_private_key(f.read(), password=None)
        except (OSError, ValueError) as exc:
            raise CredentialError(f"local certificate {cid}: {exc}") from None
        if certs[0].public_key().public_numbers() != private.public_key().public_numbers():
            raise CredentialError(f"local certificate {cid}: the key does not belong to "
                                  f"the certificate {certs[0].subject.rfc4514_string()}")
        out[cid] = (private, certs)
    return out


def load_cas(paths) -> list:
    from cryptography import x509
    out = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                out += x509.load_pem_x509_certificates(f.read())
        except (OSError, ValueError) as exc:
            raise CredentialError(f"CA certificate {path}: {exc}") from None
    return out


def _run_daemon(args: argparse.Namespace) -> int:
    from .command_socket import CommandError
    from .daemon import Daemon
    from .tun import TunError
    from ..pki import PkiError
    from .control_socket import ControlError, default_control_path
    log = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115
    try:
        credentials = load_credentials(args.local_certificate)
        cas = load_cas(args.ca_certificate)
        if args.pki_dir is not None:    # `request security pki ... load` state, then the flags
            from ..pki import PkiStore
            store = PkiStore(args.pki_dir)
            credentials = {**store.credentials(), **credentials}
            cas = store.ca_certificates() + cas
        daemon = Daemon(args.config, tun=args.tun,
                        control_path=args.control or default_control_path(),
                        ike_port=args.ike_port, natt_port=args.natt_port,
                        raw_esp=not args.no_raw_esp, pcap=args.pcap, esp_keys=args.esp_keys,
                        pcap_limit=args.pcap_limit << 20 if args.pcap_limit else None,
                        io_threads=not args.no_io_threads, burst_io=not args.list_io,
                        tun_gso=not args.no_tun_gso,
                        log=log, burst=args.burst, mtu=args.mtu, pfe_backend=args.backend,
                        nat_t=args.nat_t, duration=args.duration,
                        credentials=credentials, ca_certificates=cas)
        return daemon.run()
    except (TunError, ControlError, CommandError, CredentialError, PkiError) as exc:
        print(f"inline-ipsec run: {exc}", file=sys.stderr)
        return 1
    finally:
        if log is not None:
            log.close()


def run_run(args: argparse.Namespace) -> int:
    from ..config import ConfigurationErrors
    from .control_socket import ControlError, default_control_path
    from .runner import run_gateway
    for path in (args.config, args.peer):
        if path is not None and not os.path.isfile(path):
            print(f"inline-ipsec run: no such file: {path}", file=sys.stderr)
            return 2
    try:
        from ..groupvpn.runner import MIXED_NOTE, group_vpn_mode, run_group_vpn
        mode = group_vpn_mode(args.config)
        if mode == "only":
            return run_group_vpn(args.config,
                                 control_path=args.control or default_control_path(),
                                 duration=args.duration, listen=args.ike, server=args.ike_peer)
        if mode == "mixed":
            sys.stdout.write(MIXED_NOTE)
        if args.tun is not None:
            if args.peer or args.prekeyed or args.ike_peer:
                print("inline-ipsec run: --tun runs against real peers; it does not combine "
                      "with --peer, --prekeyed or --ike-peer", file=sys.stderr)
                return 2
            return _run_daemon(args)
        return run_gateway(args.config, control_path=args.control or default_control_path(),
                           duration=args.duration, peer=args.peer, prekeyed=args.prekeyed,
                           nat_t=args.nat_t, mtu=args.mtu, pfe_backend=args.backend,
                           ike_listen=args.ike, ike_peer=args.ike_peer,
                           pki_dir=args.pki_dir)
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


def _cli_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("socket", metavar="SOCKET", help="the control socket of `inline-ipsec run`")
    p.add_argument("words", nargs="*", metavar="WORD",
                   help="an operational command, abbreviations accepted: 'show sec ipsec sa', "
                        "'clear security ike security-associations [PEER]', 'clear security "
                        "ipsec security-associations [vpn-name NAME]', 'request security ike "
                        "rekey', 'request security ipsec rekey [vpn-name NAME]', 'commit'; "
                        "none: read commands from standard input, one per line")


def run_cli(args: argparse.Namespace) -> int:
    from .command_socket import query_command
    from .control_socket import ControlError
    lines = [" ".join(args.words)] if args.words else None
    status = 0
    if lines is None:
        lines = (line.strip() for line in sys.stdin)
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line in ("quit", "exit"):
            break
        try:
            sys.stdout.write(query_command(args.socket, line))
            sys.stdout.flush()
        except ControlError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


def register(command: Command) -> None:
    """Register `check`, `run` and `show` with the CLI's `command` decorator."""
    command("check", "parse a configuration; per VPN, Hardware Offloaded: Yes/No with every "
            "reason", _check_args)(run_check)
    command("run", "run a gateway from a configuration, with a control socket for show "
            "commands", _run_args)(run_run)
    command("show", "show commands against a running gateway (inline-ipsec run)",
            _show_args)(run_show)
    command("cli", "operational commands (show, clear, request, commit) on a running "
            "gateway's control socket", _cli_args)(run_cli)
