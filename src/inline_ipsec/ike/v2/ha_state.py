"""An established IKEv2 SA as data, and back: what a high-availability peer node needs to
carry the IKE SA on without renegotiating it (docs/mnha.md §3).

`export_session` reads an established, idle `IkeV2Session` into a JSON-able dict: SPIs, the
negotiated suite, the seven SK_* keys (RFC 7296 §2.14), nonces, both message-ID counters
(§2.2), addresses and NAT state, the peer's identity, and every installed child SA (suite,
KEYMAT, traffic selectors, lifetimes). Times are relative ("ages"), so that nodes with
different clocks agree. `restore_session` builds a session in the "established" state from
it: the next request it sends carries the next message ID the peer expects, and it answers
the peer's next request, so that DPD and rekeys continue as if nothing happened.

Not carried: a request in flight or a cached response (the exporting node sends the state
again once the exchange completes, `state_key` changes), old IKE SAs being deleted after a
rekey, fragments being reassembled. Every field is checked on import: a bad state raises
`HaStateError` and no session is made.
"""
from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any, Mapping, Optional

from ..auth import Identity
from ..config import IkeConfig
from ..keymat import ChildKeys, IkeKeys
from ..payloads import TrafficSelector
from ..proposals import Suite
from ..states import ChildSaState, IkeSaState as IkeState, enter, transition
from .child import ChildSa
from .ike_sa import IkeSaKeys
from .session import IkeV2Session

__all__ = ["HaStateError", "export_session", "restore_session", "state_key", "exportable",
           "abandon"]

_IKE_KEYS = tuple(f.name for f in dataclasses.fields(IkeKeys))
_CHILD_KEYS = tuple(f.name for f in dataclasses.fields(ChildKeys))
_SUITE = tuple(f.name for f in dataclasses.fields(Suite))


class HaStateError(ValueError):
    """An exported IKE SA that cannot be restored (malformed, or not for this config)."""


def _rel(value: Optional[float], now: float) -> Optional[float]:
    return None if value is None or value in (float("inf"), float("-inf")) else value - now


def _ts(ts: TrafficSelector) -> list[Any]:
    return [str(ts.start_addr), str(ts.end_addr), ts.ip_proto, ts.start_port, ts.end_port]


def state_key(s: IkeV2Session) -> tuple:
    """Changes whenever the exported state would: send the state again when it does."""
    return (s.ike.spi_i, s.ike.spi_r, s.ike.next_mid, s.ike.peer_mid,
            tuple(sorted((c.spi_in, c.spi_out, c.state) for c in s.children.values())))


def exportable(s: IkeV2Session) -> bool:
    """Established, with no exchange of ours in flight (a pending request's retransmission
    state is not carried)."""
    return s.state == IkeState.ESTABLISHED and s.ike.pending is None and s.ike.keys is not None


def export_session(s: IkeV2Session, now: float) -> dict[str, Any]:
    """The state of an established IKE SA (`exportable`) as a JSON-able dict."""
    if not exportable(s):
        raise HaStateError(f"IKE SA in state {str(s.state)!r} with an exchange in flight: "
                           "only an established, idle IKE SA is exported")
    ike = s.ike
    assert ike.suite is not None and ike.keys is not None
    children = []
    for c in s.children.values():
        if c.state not in (ChildSaState.INSTALLED, ChildSaState.REKEYING) or not c.reported:
            continue
        children.append({
            "config": c.config.name, "spi_in": c.spi_in, "spi_out": c.spi_out,
            "suite": [getattr(c.suite, n) for n in _SUITE],
            "keys": [getattr(c.keys, n).hex() for n in _CHILD_KEYS],
            "initiator": c.initiator,
            "lts": [_ts(t) for t in c.local_ts], "rts": [_ts(t) for t in c.remote_ts],
            "age": now - c.created, "rekey_in": _rel(c.rekey_at, now),
            "expire_in": _rel(c.expire_at, now), "udp_encap": c.udp_encap,
            "ports": [c.local_port, c.remote_port],
            "nonces": [c.nonces[0].hex(), c.nonces[1].hex()],
        })
    peer_id = None if s.peer_id is None else [s.peer_id.id_type, s.peer_id.data.hex()]
    return {
        "config": s.config.name, "initiator": ike.initiator,
        "spi_i": ike.spi_i.hex(), "spi_r": ike.spi_r.hex(),
        "suite": [getattr(ike.suite, n) for n in _SUITE],
        "keys": [getattr(ike.keys, n).hex() for n in _IKE_KEYS],
        "nonces": [ike.nonce_i.hex(), ike.nonce_r.hex()],
        "mids": [ike.next_mid, ike.peer_mid],
        "local": list(s.local_addr), "remote": list(s.remote_addr),
        "natt_port": s.natt_local_port,
        "nat": [s.natt, s.local_nat, s.remote_nat], "frag_ok": s.frag_ok,
        "ppk": s.ppk_used, "peer_id": peer_id, "proposal": s.proposal_text,
        "age": now - s.established_at, "ike_rekey_in": _rel(s.ike_rekey_at, now),
        "children": children,
    }


def _bytes(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise HaStateError(f"{what}: expected hex text")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise HaStateError(f"{what}: not hex") from None


def _int(value: Any, what: str, lo: int = 0, hi: int = (1 << 64) - 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise HaStateError(f"{what}: expected an integer in {lo}..{hi}")
    return value


def _num(value: Any, what: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise HaStateError(f"{what}: expected a number")
    return float(value)


def _opt(value: Any, what: str, now: float) -> Optional[float]:
    return None if value is None else now + _num(value, what)


def _selector(item: Any) -> TrafficSelector:
    if not (isinstance(item, list) and len(item) == 5):
        raise HaStateError(f"traffic selector {item!r}")
    try:
        start, end = ipaddress.ip_address(item[0]), ipaddress.ip_address(item[1])
    except ValueError:
        raise HaStateError(f"traffic selector {item!r}: bad address") from None
    if start.version != end.version:
        raise HaStateError(f"traffic selector {item!r}: mixed families")
    return TrafficSelector(start, end, _int(item[2], "ip protocol", 0, 255),
                           _int(item[3], "port", 0, 65535), _int(item[4], "port", 0, 65535))


def _suite(items: Any) -> Suite:
    if not (isinstance(items, list) and len(items) == len(_SUITE)):
        raise HaStateError("suite: wrong shape")
    kw = dict(zip(_SUITE, items))
    kw["esn"] = bool(kw["esn"])
    for name in _SUITE:
        if name != "esn":
            kw[name] = _int(kw[name], f"suite {name}", 0, 65535)
    return Suite(**kw)


def _addr(value: Any, what: str) -> tuple[str, int]:
    if not (isinstance(value, list) and len(value) >= 2 and isinstance(value[0], str)):
        raise HaStateError(f"{what}: expected [host, port]")
    try:
        ipaddress.ip_address(value[0])
    except ValueError:
        raise HaStateError(f"{what}: bad address") from None
    return (value[0], _int(value[1], f"{what} port", 0, 65535))


def restore_session(config: IkeConfig, state: Mapping[str, Any], now: float) -> IkeV2Session:
    """An established `IkeV2Session` from `export_session`'s dict, with `config` (the same
    Junos `ike gateway`'s configuration on this node)."""
    if not isinstance(state, Mapping):
        raise HaStateError("IKE SA state is not an object")
    try:
        if state["config"] != config.name:
            raise HaStateError(f"IKE SA of gateway {state['config']!r}, not {config.name!r}")
        initiator = bool(state["initiator"])
        s = IkeV2Session(config, initiator=initiator,
                         local_addr=_addr(state["local"], "local address"),
                         remote_addr=_addr(state["remote"], "remote address"), now=now,
                         natt_local_port=_int(state["natt_port"], "NAT-T port", 1, 65535))
        ike = IkeSaKeys(_bytes(state["spi_i"], "SPIi"), _bytes(state["spi_r"], "SPIr"),
                         initiator)
        if len(ike.spi_i) != 8 or len(ike.spi_r) != 8:
            raise HaStateError("IKE SPIs are 8 bytes (RFC 7296 §3.1)")
        keys = state["keys"]
        if not (isinstance(keys, list) and len(keys) == len(_IKE_KEYS)):
            raise HaStateError("IKE keys: wrong shape")
        ike.install(_suite(state["suite"]),
                    IkeKeys(*[_bytes(k, f"IKE key {n}") for k, n in zip(keys, _IKE_KEYS)]),
                    config.random)
        nonces = state["nonces"]
        ike.nonce_i, ike.nonce_r = _bytes(nonces[0], "Ni"), _bytes(nonces[1], "Nr")
        ike.next_mid = _int(state["mids"][0], "next message ID", 0, 0xFFFFFFFF)
        ike.peer_mid = _int(state["mids"][1], "peer message ID", 0, 0xFFFFFFFF)
        s.ike = ike
        s.natt, s.local_nat, s.remote_nat = (bool(v) for v in state["nat"])
        s.frag_ok = bool(state["frag_ok"])
        s.ppk_used = bool(state["ppk"])
        pid = state["peer_id"]
        if pid is not None:
            s.peer_id = Identity(_int(pid[0], "ID type", 0, 255), _bytes(pid[1], "ID data"))
        s.proposal_text = str(state["proposal"])
        s.established_at = now - _num(state["age"], "age")
        s.ike_rekey_at = _opt(state["ike_rekey_in"], "IKE rekey", now)
        s.last_rx = now
        by_name = {c.name: c for c in config.children}
        for c in state["children"]:
            cfg = by_name.get(c["config"])
            if cfg is None:
                raise HaStateError(f"child SA {c['config']!r} is not configured here")
            ck = c["keys"]
            if not (isinstance(ck, list) and len(ck) == len(_CHILD_KEYS)):
                raise HaStateError("child keys: wrong shape")
            child = ChildSa(
                config=cfg, spi_in=_int(c["spi_in"], "SPI", 1, 0xFFFFFFFF),
                spi_out=_int(c["spi_out"], "SPI", 1, 0xFFFFFFFF), suite=_suite(c["suite"]),
                keys=ChildKeys(*[_bytes(k, f"child key {n}") for k, n in zip(ck, _CHILD_KEYS)]),
                initiator=bool(c["initiator"]),
                local_ts=[_selector(t) for t in c["lts"]],
                remote_ts=[_selector(t) for t in c["rts"]],
                created=now - _num(c["age"], "child age"),
                rekey_at=_opt(c["rekey_in"], "child rekey", now),
                expire_at=_opt(c["expire_in"], "child expiry", now),
                udp_encap=bool(c["udp_encap"]),
                local_port=_int(c["ports"][0], "port", 0, 65535),
                remote_port=_int(c["ports"][1], "port", 0, 65535),
                nonces=(_bytes(c["nonces"][0], "Ni"), _bytes(c["nonces"][1], "Nr")))
            if c["rekey_in"] is None:
                child.rekey_at = None
            if c["expire_in"] is None:
                child.expire_at = None
            s.children[child.spi_in] = child
    except (KeyError, IndexError, TypeError) as exc:
        raise HaStateError(f"IKE SA state is incomplete: {exc!r}") from None
    transition(s, IkeState.ESTABLISHED)
    return s


def abandon(s: IkeV2Session) -> None:
    """Stop carrying an IKE SA without a word to the peer: another node carries it on (a
    high-availability handover). No Delete is sent and no event is reported."""
    enter(s, IkeState.CLOSED)
    s.ike.pending = None
    s._queue.clear()
    s._out.clear()
    s._events.clear()
