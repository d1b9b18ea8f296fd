"""IPsec SA pairs negotiated by Quick Mode, as the IKEv1 session tracks them (RFC 2409 §5.5:
one KEYMAT per direction, keyed by the SPI the receiving side chose)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ...sa import Lifetime
from ..config import ChildConfig
from ..events import NegotiatedChildSa
from ..payloads import TrafficSelector
from ..states import ChildSaState
from .proposals import Phase2Suite


@dataclass
class ChildSa:
    """One IPsec SA pair: our inbound SA (the SPI we chose) and our outbound one."""

    config: ChildConfig
    spi_in: int
    spi_out: int
    p2: Phase2Suite
    key_in: bytes
    key_out: bytes
    integ_in: bytes
    integ_out: bytes
    #: we initiated the Quick Mode that created it.
    initiator: bool
    local_ts: TrafficSelector
    remote_ts: TrafficSelector
    created: float
    #: negotiated hard lifetime (seconds, kilobytes; None: unlimited).
    hard_seconds: Optional[float]
    hard_kilobytes: Optional[int]
    local_port: int = 4500
    remote_port: int = 4500
    #: INSTALLED, REKEYING (a Quick Mode replacing it is in flight), REKEYED (replaced, its
    #: Delete pending), DELETING. Changed only by `ike.states.transition`.
    state: ChildSaState = ChildSaState.INSTALLED
    rekey_at: Optional[float] = None
    expire_at: Optional[float] = None

    def __post_init__(self) -> None:
        soft = self.soft_seconds
        if soft is not None and self.rekey_at is None:
            # The initiator rekeys at the soft lifetime; the responder only if that did not
            # happen, halfway to the hard lifetime, so both ends rarely rekey at once.
            extra = 0.0 if self.initiator else ((self.hard_seconds or soft) - soft) / 2
            self.rekey_at = self.created + soft + extra
        if self.hard_seconds is not None and self.expire_at is None:
            self.expire_at = self.created + self.hard_seconds

    @property
    def soft_seconds(self) -> Optional[float]:
        """Rekey time: the configured share of the negotiated lifetime (default 90 %)."""
        if self.hard_seconds is None:
            return None
        share = self.config.soft_seconds / self.config.lifetime_seconds \
            if self.config.lifetime_seconds else 0.9
        return self.hard_seconds * min(max(share, 0.1), 0.99)

    @property
    def soft_kilobytes(self) -> Optional[int]:
        return None if self.hard_kilobytes is None else int(self.hard_kilobytes * 0.9)

    def negotiated(self) -> NegotiatedChildSa:
        s = self.p2.suite
        return NegotiatedChildSa(
            name=self.config.name, spi_in=self.spi_in, spi_out=self.spi_out,
            cipher=s.cipher_name, key_in=self.key_in, key_out=self.key_out,
            integrity=s.integrity_name, integrity_key_in=self.integ_in,
            integrity_key_out=self.integ_out, esn=s.esn,
            local_ts=[self.local_ts], remote_ts=[self.remote_ts],
            lifetime=Lifetime(soft_seconds=self.soft_seconds, hard_seconds=self.hard_seconds,
                              soft_kilobytes=self.soft_kilobytes,
                              hard_kilobytes=self.hard_kilobytes),
            udp_encap=self.p2.udp_encap, local_port=self.local_port,
            remote_port=self.remote_port, replay_window=self.config.replay_window,
            mode=self.p2.mode, initiator=self.initiator,
            protocol="ah" if self.p2.protocol == 2 else "esp", ike_version=1)
