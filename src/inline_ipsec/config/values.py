"""Value checkers of the Junos `set` grammar (config/junos.py and the grammars beside it,
group_vpn.py): each takes a token's text and returns the value, or raises ValueError, which
the parser turns into a line-numbered error naming what was expected."""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from typing import Callable

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_NAME_RULE = "1 to 63 of A-Z a-z 0-9 _ . -, not starting with _ . -"
#: Highest logical unit number of an interface (st0.N, ge-0/0/0.N).
MAX_UNIT = 1048574
_IFL = f"an interface name like ge-0/0/0.0 (unit 0..{MAX_UNIT})"
_IFNAME_RE = re.compile(r"^[a-z][a-z0-9\-]*(\d+(/\d+)*)?\.\d+$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
                      r"(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*$")


def _named(what: str) -> str:
    return f"{what} ({_NAME_RULE})"


# -- value checkers (raise ValueError on bad input) --------------------------------------------

def _name(text: str) -> str:
    if not _NAME_RE.match(text):
        raise ValueError
    return text


def _ip(text: str) -> str:
    return str(ipaddress.ip_address(text))


def _ip4(text: str) -> str:
    return str(ipaddress.IPv4Address(text))


def _ip6(text: str) -> str:
    return str(ipaddress.IPv6Address(text))


def _host_or_ip(text: str) -> str:
    try:
        return _ip(text)
    except ValueError:
        if _HOST_RE.match(text) and not text.replace(".", "").isdigit():
            return text
        raise


def _prefix(text: str) -> str:
    if "/" not in text:
        raise ValueError
    return str(ipaddress.ip_network(text, strict=True))


def _if_prefix(text: str) -> str:
    if "/" not in text:
        raise ValueError
    return str(ipaddress.ip_interface(text))


def _ifname(text: str) -> str:
    if not _IFNAME_RE.match(text) or int(text.rsplit(".", 1)[1]) > MAX_UNIT:
        raise ValueError
    return text


def _ifd(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9\-]*(\d+(/\d+)*)?", text):
        raise ValueError
    return text


def _if_prefix_of(version: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        value = _if_prefix(text)
        if ipaddress.ip_interface(value).version != version:
            raise ValueError
        return value
    return check


def _st0(text: str) -> str:
    m = re.fullmatch(r"st0\.(\d+)", text)
    if not m or int(m.group(1)) > MAX_UNIT:
        raise ValueError
    return text


def _next_hop(text: str) -> str:
    try:
        return _ip(text)
    except ValueError:
        return _ifname(text)


def _hex_key(text: str) -> bytes:
    digits = text[2:] if text.lower().startswith("0x") else text
    if not digits or len(digits) % 2:
        raise ValueError
    return bytes.fromhex(digits)


def _date(text: str) -> _dt.date:
    return _dt.date.fromisoformat(text)
