"""Run-time object (RTO) messages between MNHA nodes over the encrypted ICL (docs/mnha.md §3).

Each message is one UDP datagram to `RTO_PORT` inside the ICL's IPsec tunnel, so the ICL's
ESP (AES-GCM, on the PFE) authenticates and encrypts it; this codec only frames it:

    0      4        5        6          7          8               12              16
    +------+--------+--------+----------+----------+---------------+---------------+----
    | MNHA | ver=1  | type   | sender   | reserved | message number| body length   | body
    +------+--------+--------+----------+----------+---------------+---------------+----

The body is UTF-8 JSON whose schema depends on the type (checked on decode). A message is at
most `MAX_MESSAGE` bytes so that it fits one packet on the ICL's tunnel MTU: the sender splits
state into several messages rather than relying on fragmentation.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import struct
from dataclasses import dataclass
from typing import Any, Mapping

from ..sa import Lifetime, SaSpec

__all__ = ["RtoType", "RtoMessage", "RtoError", "encode", "decode", "spec_to_json",
           "spec_from_json", "RTO_PORT", "MAX_MESSAGE"]

MAGIC = b"MNHA"
VERSION = 1
#: The UDP port of RTO messages inside the ICL tunnel (the model's choice; docs/mnha.md §3).
RTO_PORT = 7002
#: Largest encoded message: one 1500-byte ICL packet minus outer IPv4+ESP+GCM (56), inner
#: IPv4+UDP (28) and slack for IPv6 (40).
MAX_MESSAGE = 1300
_HEADER = struct.Struct("!4sBBBBII")


class RtoError(ValueError):
    """A message that is not a well-formed RTO message (counted and dropped by the node)."""


class RtoType(enum.IntEnum):
    HEARTBEAT = 1     #: {"srgs": [[id, state, priority, healthy, wants_preempt, yielding]]}
    SA_ADD = 2        #: {"vpn", "srg", "index", "sa_type", "out", "in", "lts", "rts", "seq"}
    SA_DELETE = 3     #: {"vpn"}
    SEQ_RESERVE = 4   #: {"spis": [[outbound spi, reserved up to]]}
    SEQ_ACK = 5       #: the same, echoed once recorded
    REPLAY = 6        #: {"spis": [[inbound spi, highest sequence number accepted]]}
    IKE_SA = 7        #: {"id": SPIi, "part", "parts", "data"}: an exported IKE SA, in parts
    IKE_DELETE = 8    #: {"id": SPIi}
    SYNC_DONE = 9     #: {} : cold sync complete (the backup is ready for failover)


#: The body keys each type must carry, and their JSON types.
_SCHEMA: dict[RtoType, dict[str, type | tuple[type, ...]]] = {
    RtoType.HEARTBEAT: {"srgs": list},
    RtoType.SA_ADD: {"vpn": str, "srg": int, "index": int, "sa_type": str, "out": dict,
                     "in": dict, "lts": list, "rts": list, "seq": int},
    RtoType.SA_DELETE: {"vpn": str},
    RtoType.SEQ_RESERVE: {"spis": list},
    RtoType.SEQ_ACK: {"spis": list},
    RtoType.REPLAY: {"spis": list},
    RtoType.IKE_SA: {"id": str, "part": int, "parts": int, "data": str},
    RtoType.IKE_DELETE: {"id": str},
    RtoType.SYNC_DONE: {},
}


@dataclass(frozen=True)
class RtoMessage:
    type: RtoType
    sender: int
    number: int
    body: Mapping[str, Any]


def encode(msg: RtoMessage) -> bytes:
    body = json.dumps(msg.body, separators=(",", ":"), sort_keys=True).encode()
    data = _HEADER.pack(MAGIC, VERSION, int(msg.type), msg.sender, 0, msg.number & 0xFFFFFFFF,
                        len(body)) + body
    if len(data) > MAX_MESSAGE:
        raise RtoError(f"RTO message of {len(data)} bytes exceeds {MAX_MESSAGE}: split it")
    return data


def decode(data: bytes) -> RtoMessage:
    """Parse one RTO message; raises `RtoError` for anything malformed."""
    if len(data) < _HEADER.size:
        raise RtoError(f"truncated RTO header: {len(data)} bytes")
    magic, version, mtype, sender, _, number, length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise RtoError("not an RTO message (bad magic)")
    if version != VERSION:
        raise RtoError(f"RTO version {version} is not supported")
    if length != len(data) - _HEADER.size:
        raise RtoError(f"RTO body length {length} does not match the {len(data) - 16} "
                       "bytes received")
    try:
        kind = RtoType(mtype)
    except ValueError:
        raise RtoError(f"unknown RTO type {mtype}") from None
    try:
        body = json.loads(data[_HEADER.size:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RtoError(f"RTO body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RtoError("RTO body is not an object")
    for key, want in _SCHEMA[kind].items():
        if not isinstance(body.get(key), want) or isinstance(body.get(key), bool) and \
                want is int:
            raise RtoError(f"RTO {kind.name}: field {key!r} missing or not {want}")
    if kind in (RtoType.SEQ_RESERVE, RtoType.SEQ_ACK, RtoType.REPLAY):
        for item in body["spis"]:
            if not (isinstance(item, list) and len(item) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                            for v in item)):
                raise RtoError(f"RTO {kind.name}: bad entry {item!r}")
    return RtoMessage(kind, sender, number, body)


# -- SA specs as JSON ------------------------------------------------------------------------

def spec_to_json(spec: SaSpec) -> dict[str, Any]:
    """The fields of `spec` that differ from their defaults (the rest is implied)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, Lifetime):
            value = dataclasses.asdict(value)
        out[f.name] = value
    return out


_BYTES = {f.name for f in dataclasses.fields(SaSpec) if f.type in ("bytes", bytes)}


def spec_from_json(data: Mapping[str, Any]) -> SaSpec:
    """The `SaSpec` of `spec_to_json`; raises `RtoError` if it does not make a valid SA."""
    known = {f.name for f in dataclasses.fields(SaSpec)}
    try:
        kw = {k: v for k, v in data.items() if k in known}
        for name in _BYTES & kw.keys():
            kw[name] = bytes.fromhex(kw[name])
        if "lifetime" in kw:
            kw["lifetime"] = Lifetime(**kw["lifetime"])
        return SaSpec(**kw)
    except Exception as exc:   # ConfigError, TypeError, ValueError: all mean a bad message
        raise RtoError(f"RTO SA spec is not valid: {exc}") from None
