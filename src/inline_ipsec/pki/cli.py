"""`inline-ipsec request security pki ...`: the Junos operational commands that load
certificates, on a PKI directory (`inline_ipsec.pki`); and `show security pki ...` offline.

    inline-ipsec request security pki local-certificate load filename F key K certificate-id ID \\
        --pki-dir DIR
    inline-ipsec request security pki ca-certificate load ca-profile P filename F --pki-dir DIR
    inline-ipsec request security pki local-certificate verify certificate-id ID --pki-dir DIR
    inline-ipsec request show security pki local-certificate|ca-certificate [detail] --pki-dir DIR

Exit codes: 0 loaded, 1 a file that cannot be loaded (the reason on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional

__all__ = ["register"]

_USAGE = ("security pki local-certificate load filename F key K certificate-id ID | "
          "security pki ca-certificate load ca-profile P filename F | "
          "security pki local-certificate verify certificate-id ID")


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="+", metavar="WORD", help=_USAGE)
    p.add_argument("--pki-dir", metavar="DIR", required=True,
                   help="the PKI directory (created if missing)")


def _options(words: list[str], names: tuple[str, ...]) -> Optional[dict[str, str]]:
    """`name value` pairs in any order, each of `names` exactly once."""
    if len(words) != 2 * len(names):
        return None
    out = dict(zip(words[0::2], words[1::2]))
    return out if set(out) == set(names) else None


def run_request(args: argparse.Namespace) -> int:
    from . import PkiError, PkiStore, show_pki
    w = list(args.words)
    store = PkiStore(args.pki_dir)
    try:
        if w[:3] == ["show", "security", "pki"]:
            sys.stdout.write(show_pki(store, w[3:]))
            return 0
        if w[:4] == ["security", "pki", "local-certificate", "verify"]:
            o = _options(w[4:], ("certificate-id",))
            if o is None:
                print("inline-ipsec request: expected verify certificate-id ID", file=sys.stderr)
                return 2
            print(store.verify_local(o["certificate-id"]))
            return 0
        if w[:2] != ["security", "pki"] or len(w) < 4 or w[3] != "load":
            print(f"inline-ipsec request: expected {_USAGE}", file=sys.stderr)
            return 2
        if w[2] == "local-certificate":
            o = _options(w[4:], ("filename", "key", "certificate-id"))
            if o is None:
                print("inline-ipsec request: expected load filename F key K certificate-id ID",
                      file=sys.stderr)
                return 2
            done = store.load_local(o["filename"], o["key"], o["certificate-id"])
            print(f"Local certificate {done.identifier} loaded successfully ({done.subject})")
            return 0
        if w[2] == "ca-certificate":
            o = _options(w[4:], ("ca-profile", "filename"))
            if o is None:
                print("inline-ipsec request: expected load ca-profile P filename F",
                      file=sys.stderr)
                return 2
            done = store.load_ca(o["ca-profile"], o["filename"])
            print(f"CA certificate for profile {done.identifier} loaded successfully "
                  f"({done.subject})")
            return 0
    except PkiError as exc:
        print(f"inline-ipsec request: {exc}", file=sys.stderr)
        return 1
    print(f"inline-ipsec request: expected {_USAGE}", file=sys.stderr)
    return 2


def register(command: Callable) -> None:
    command("request", "Junos request commands: load local and CA certificates into a PKI "
            "directory (request security pki ... load)", _args)(run_request)
