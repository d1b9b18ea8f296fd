"""Child SA bookkeeping inside an IKE session (RFC 7296 §2.17 keys, §2.8 lifetimes)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...sa import Lifetime
from ..config import ChildConfig
from ..events import NegotiatedChildSa
from ..keymat import ChildKeys
from ..payloads import TrafficSelector
from ..proposals import Suite
from ..states import ChildSaState


@dataclass
class ChildSa:
    """One negotiated child SA pair, as the session tracks it."""

    config: ChildConfig
    spi_in: int
    spi_out: int
    suite: Suite
    keys: ChildKeys
    #: True when we initiated the exchange that created it (decides the KEYMAT split).
    initiator: bool
    local_ts: list[TrafficSelector]
    remote_ts: list[TrafficSelector]
    created: float
    #: INSTALLED, REKEYING (a rekey is in flight), REKEYED (replaced, delete pending),
    #: DELETING; after a rekey collision (RFC 7296 §2.8.1): PENDING (the peer's new SA,
    #: created while our own rekey of the same SA is in flight, not reported yet) and
    #: REDUNDANT (the new SA the collision made superfluous, never reported, being deleted).
    #: Changed only by `ike.states.transition`.
    state: ChildSaState = ChildSaState.INSTALLED
    rekey_at: Optional[float] = None
    expire_at: Optional[float] = None
    udp_encap: bool = False
    local_port: int = 4500
    remote_port: int = 4500
    #: (Ni, Nr) of the exchange that created the SA (§2.8.1 compares them on a collision).
    nonces: tuple[bytes, bytes] = (b"", b"")
    #: the user was told about the SA (ChildSaUp / ChildSaRekeyed); False for a collision's
    #: SA until it is chosen, and for the redundant one forever: no ChildSaDown for those.
    reported: bool = True
    #: inbound SPI of the peer's replacement of this SA, created by a colliding rekey while
    #: our own rekey of it was in flight (§2.8.1).
    collision: Optional[int] = None

    def __post_init__(self) -> None:
        if self.rekey_at is None:
            self.rekey_at = self.created + self.config.soft_seconds
        if self.expire_at is None:
            self.expire_at = self.created + self.config.lifetime_seconds

    @property
    def key_out(self) -> bytes:
        return self.keys.encr_i if self.initiator else self.keys.encr_r

    @property
    def key_in(self) -> bytes:
        return self.keys.encr_r if self.initiator else self.keys.encr_i

    @property
    def integ_out(self) -> bytes:
        return self.keys.integ_i if self.initiator else self.keys.integ_r

    @property
    def integ_in(self) -> bytes:
        return self.keys.integ_r if self.initiator else self.keys.integ_i

    def negotiated(self) -> NegotiatedChildSa:
        return NegotiatedChildSa(
            name=self.config.name, spi_in=self.spi_in, spi_out=self.spi_out,
            cipher=self.suite.cipher_name, key_in=self.key_in, key_out=self.key_out,
            integrity=self.suite.integrity_name, integrity_key_in=self.integ_in,
            integrity_key_out=self.integ_out, esn=self.suite.esn,
            local_ts=list(self.local_ts), remote_ts=list(self.remote_ts),
            lifetime=Lifetime(soft_seconds=self.config.soft_seconds,
                              hard_seconds=self.config.lifetime_seconds),
            udp_encap=self.udp_encap, local_port=self.local_port, remote_port=self.remote_port,
            replay_window=self.config.replay_window, initiator=self.initiator,
            protocol=self.config.protocol)
