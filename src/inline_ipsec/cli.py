"""The `inline-ipsec` command.

  inline-ipsec demo     the main job, no arguments: two gateways on a built-in Junos
                        configuration, offloaded and CPU tunnels, the show commands, and a
                        short throughput run
  inline-ipsec bench    throughput tables, JSON, plot and the regression gate
  inline-ipsec check FILE    per VPN: Hardware Offloaded: Yes/No with every reason
  inline-ipsec run CONFIG    a gateway with a control socket; inline-ipsec show ... queries it
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from . import __version__

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help_text, configure, run)
        return run
    return register


def print_bench_table(rows: list[dict], out=sys.stdout) -> None:
    out.write(f"{'size':>6} {'PFE enc pps':>13} {'Gbit/s':>7} {'raw enc pps':>13} "
              f"{'enc/raw':>8} {'PFE dec pps':>13} {'dec/raw':>8} {'naive pps':>11} "
              f"{'PFE/naive':>9}\n")
    for r in rows:
        out.write(f"{str(r['size']):>6} {r['pfe_encrypt_pps']:>13,.0f} "
                  f"{r['pfe_encrypt_gbps']:>7.2f} {r['raw_encrypt_pps']:>13,.0f} "
                  f"{r['encrypt_vs_raw']:>8.2f} {r['pfe_decrypt_pps']:>13,.0f} "
                  f"{r['decrypt_vs_raw']:>8.2f} {r['naive_encrypt_pps']:>11,.0f} "
                  f"{r['encrypt_vs_naive']:>8.1f}x\n")


def _bench_args(p: argparse.ArgumentParser) -> None:
    from .perf.cli import configure
    configure(p)


@command("bench", "throughput of the PFE (per crypto backend) and the CPU engine against the "
         "raw-crypto limit; JSON, plot, and the regression gate", _bench_args)
def run_bench(args: argparse.Namespace) -> int:
    from .perf.cli import run
    return run(args)


@command("demo", "the main job: two gateways, offloaded and CPU tunnels, show output, "
         "throughput", lambda p: None)
def run_demo(args: argparse.Namespace) -> int:
    from .demo import run
    return run()


# check, run and show live with the gateway (inline_ipsec/io/commands.py)
from .io.commands import register as _register_gateway_commands  # noqa: E402

_register_gateway_commands(command)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inline-ipsec",
        description="A working software model of Juniper SRX inline IPsec.")
    parser.add_argument("--version", action="version", version=f"inline-ipsec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return COMMANDS[args.command][2](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
