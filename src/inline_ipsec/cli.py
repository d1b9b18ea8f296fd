"""The `inline-ipsec` command.

  inline-ipsec demo     the main job, no arguments: the PFE carrying tunnels between two
                        modelled gateways, its counters, and a short throughput run
  inline-ipsec bench    PFE throughput against the raw OpenSSL loop and a naive loop
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

from . import __version__
from .benchmark import IMIX, machine, quick_report

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None],
                          Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help_text, configure, run)
        return run
    return register


def _size(text: str) -> int | str:
    if text == IMIX:
        return IMIX
    value = int(text)
    if not 28 <= value <= 1800:
        raise argparse.ArgumentTypeError("packet sizes are 28..1800 bytes, or 'imix'")
    return value


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", type=_size, nargs="+", default=[64, 512, 1400, IMIX],
                   help="inner packet sizes in bytes, or 'imix' (default: 64 512 1400 imix)")
    p.add_argument("--bits", type=int, choices=(128, 256), default=128,
                   help="AES-GCM key size (default 128)")
    p.add_argument("--burst", type=int, default=32, help="packets per burst (default 32)")
    p.add_argument("--rounds", type=int, default=300, help="bursts timed per figure")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


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


@command("bench", "PFE throughput against the raw OpenSSL loop and a naive Python loop",
         _bench_args)
def run_bench(args: argparse.Namespace) -> int:
    m = machine()
    print(f"inline-ipsec {__version__} on {m['cpu']} ({m['cores']} cores), {m['openssl']}")
    print(f"AES-GCM-{args.bits}, bursts of {args.burst}, median of {args.rounds} bursts "
          "per figure; ratios are to references measured in the same run\n")
    rows = quick_report(args.sizes, args.bits, args.burst, args.rounds,
                        progress=lambda s: print(f"  measuring {s} ...", file=sys.stderr))
    print_bench_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "version": __version__, "rows": rows}, f, indent=1)
        print(f"\nwritten to {args.json}")
    return 0


@command("demo", "the main job: tunnels through the modelled PFE, counters, throughput",
         lambda p: None)
def run_demo(args: argparse.Namespace) -> int:
    from .demo import run
    return run()


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
