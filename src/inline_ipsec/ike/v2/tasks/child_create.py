"""CREATE_CHILD_SA for a new child SA (RFC 7296 §1.3.1), and the child SA negotiation shared
with IKE_AUTH (§1.2) and the child rekey (§1.3.3): ESP proposals with our SPI (§3.3.1),
traffic selector narrowing (§2.9) and KEYMAT (§2.17).

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {SA, Ni, [KEi], TSi, TSr}  -->
                               <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from ...config import ChildConfig
from ...constants import DhGroup, ExchangeType, NotifyType, ProtocolId, TransformType
from ...errors import LocalIkeError, RemoteIkeError
from ...events import ChildSaUp
from ...keymat import child_keymat
from ...message import Message
from ...payloads import (KePayload, NoncePayload, NotifyPayload, Payload, Proposal,
                         SaPayload, TrafficSelector, TsiPayload, TsrPayload)
from ...protection import KeyExchange, group_supported
from ...proposals import Suite, check_accepted, parse_proposal, select
from ..child import ChildSa
from ..task import Task, TaskResult
from .ike_init import NONCE_LEN, first_error, one

if TYPE_CHECKING:  # pragma: no cover
    from ..session import IkeV2Session


def esp_proposals(cfg: ChildConfig, spi: int, pfs: bool = True) -> list[Proposal]:
    """Our ESP proposals carrying our inbound SPI; `pfs=False` strips DH (IKE_AUTH, §1.2)."""
    out = []
    for i, text in enumerate(cfg.proposals):
        p = parse_proposal(text, child_protocol(cfg), i + 1)
        p.spi = spi.to_bytes(4, "big")
        if not pfs:
            p.transforms = [t for t in p.transforms if t.type != TransformType.DH]
        out.append(p)
    return out


def child_protocol(cfg: ChildConfig) -> int:
    """ESP (RFC 4303) or AH (RFC 4302) for the child SA's proposals (§3.3.1 Protocol ID)."""
    return ProtocolId.AH if cfg.protocol == "ah" else ProtocolId.ESP


def pfs_group(cfg: ChildConfig) -> int:
    for text in cfg.proposals:
        for t in parse_proposal(text, child_protocol(cfg)).of_type(TransformType.DH):
            return t.id
    return DhGroup.NONE


def selectors(nets: Sequence[str]) -> list[TrafficSelector]:
    return [TrafficSelector.from_network(n) for n in nets]


def narrow(offered: Sequence[TrafficSelector], ours: Sequence[TrafficSelector]
           ) -> list[TrafficSelector]:
    """§2.9: the responder answers with the intersection of what was offered and its policy."""
    out: list[TrafficSelector] = []
    for o in offered:
        for m in ours:
            ts = o.intersect(m)
            if ts is not None and ts not in out:
                out.append(ts)
    return out


def _span(cfg: ChildConfig) -> int:
    return sum(int(t.end_addr) - int(t.start_addr)
               for t in selectors(cfg.local_ts) + selectors(cfg.remote_ts))


def _within(got: Sequence[TrafficSelector], offered: Sequence[TrafficSelector]) -> bool:
    return bool(got) and all(any(g.intersect(o) == g for o in offered) for g in got)


def by_fit(configs: Sequence[ChildConfig], tsi: Sequence[TrafficSelector],
           tsr: Sequence[TrafficSelector]) -> list[ChildConfig]:
    """The responder's candidate child configurations for offered TSi/TSr (§2.9): first
    those whose selectors hold all that was offered, then those that would narrow it, each
    most specific first (as strongSwan prefers a policy that matches to one that narrows).
    With several VPNs on one IKE SA this is how the responder picks the VPN."""
    def holds(cfg: ChildConfig) -> bool:
        return _within(tsi, selectors(cfg.remote_ts)) and _within(tsr, selectors(cfg.local_ts))
    return sorted(configs, key=lambda c: (not holds(c), _span(c)))


def _spi_of(p: Proposal) -> int:
    if p.protocol not in (ProtocolId.ESP, ProtocolId.AH) or len(p.spi) != 4:
        raise RemoteIkeError("child SA proposal needs a 4-byte ESP or AH SPI",
                             NotifyType.NO_PROPOSAL_CHOSEN)
    return int.from_bytes(p.spi, "big")


def make_child(session: "IkeV2Session", cfg: ChildConfig, suite: Suite, spi_in: int,
               spi_out: int, initiator: bool, nonce_i: bytes, nonce_r: bytes, g_ir: bytes,
               local_ts: list[TrafficSelector], remote_ts: list[TrafficSelector]) -> ChildSa:
    """Derive KEYMAT (§2.17) and record the child SA."""
    ike = session.ike
    assert ike.keys is not None
    keys = child_keymat(ike.prf, ike.keys.sk_d, nonce_i, nonce_r, suite.encr_key_len,
                        suite.integ_key_len, g_ir)
    lport, rport = session.natt_ports()
    child = ChildSa(cfg, spi_in, spi_out, suite, keys, initiator, local_ts, remote_ts,
                    session.now, udp_encap=session.nat_detected, local_port=lport,
                    remote_port=rport, nonces=(nonce_i, nonce_r))
    session.children[spi_in] = child
    return child


class ChildInitiator:
    """Initiator half of a child SA negotiation, used by IKE_AUTH, CREATE_CHILD_SA and the
    child rekey."""

    def __init__(self, session: "IkeV2Session", cfg: ChildConfig, with_pfs: bool,
                 group: Optional[int] = None) -> None:
        self.cfg = cfg
        self.spi_in = session.new_child_spi()
        self.group = (group or pfs_group(cfg)) if with_pfs else DhGroup.NONE
        self.ke = KeyExchange(self.group) if self.group else None
        # Proposals with the KE's group first, so the responder's choice matches it.
        self.proposals = sorted(esp_proposals(cfg, self.spi_in, with_pfs), key=lambda p: all(
            t.id != self.group for t in p.of_type(TransformType.DH)))
        self.nonce = session.random(NONCE_LEN)
        self.tsi = selectors(cfg.local_ts)
        self.tsr = selectors(cfg.remote_ts)

    def sa_payload(self) -> SaPayload:
        return SaPayload(self.proposals)

    def ts_payloads(self) -> list[Payload]:
        return [TsiPayload(self.tsi), TsrPayload(self.tsr)]

    def exchange_payloads(self) -> list[Payload]:
        """SA, Ni, [KEi], TSi, TSr for CREATE_CHILD_SA (§1.3.1)."""
        out: list[Payload] = [self.sa_payload(), NoncePayload(self.nonce)]
        if self.ke is not None:
            out.append(KePayload(self.group, self.ke.public))
        return out + self.ts_payloads()

    def complete(self, session: "IkeV2Session", payloads: list[Payload], nonce_i: bytes,
                 nonce_r: Optional[bytes]) -> ChildSa:
        """Process the responder's SA/[Nr]/[KEr]/TS payloads; nonce_r None = take Nr."""
        err = first_error(payloads)
        if err is not None:
            raise RemoteIkeError(f"child SA refused: {err.name}", err.notify_type)
        sa = one(payloads, SaPayload, "SA")
        chosen = check_accepted(sa.proposals, self.proposals)
        suite = Suite.from_proposal(chosen)
        if nonce_r is None:
            nonce_r = one(payloads, NoncePayload, "Nonce").nonce
        g_ir = b""
        if self.ke is not None:
            ke = one(payloads, KePayload, "KE")
            if ke.group != self.group:
                raise RemoteIkeError("KEr group mismatch", NotifyType.INVALID_KE_PAYLOAD)
            g_ir = self.ke.shared_secret(ke.data)
        tsi = one(payloads, TsiPayload, "TSi").selectors
        tsr = one(payloads, TsrPayload, "TSr").selectors
        if not _within(tsi, self.tsi) or not _within(tsr, self.tsr):
            raise RemoteIkeError("responder widened the traffic selectors",
                                 NotifyType.TS_UNACCEPTABLE)
        return make_child(session, self.cfg, suite, self.spi_in, _spi_of(chosen), True,
                          nonce_i, nonce_r, g_ir, tsi, tsr)


def invalid_ke_group(payloads: list[Payload], offered: list[Proposal], current: int
                     ) -> Optional[int]:
    """The group an INVALID_KE_PAYLOAD answer asks for, if we offered it (§1.3)."""
    for p in payloads:
        if isinstance(p, NotifyPayload) and p.notify_type == NotifyType.INVALID_KE_PAYLOAD \
                and len(p.data) >= 2:
            group = int.from_bytes(p.data[:2], "big")
            if group != current and group_supported(group) and any(
                    t.id == group for o in offered for t in o.of_type(TransformType.DH)):
                return group
    return None


def child_respond(session: "IkeV2Session", payloads: list[Payload], nonce_i: bytes,
                  nonce_r: bytes, in_auth: bool,
                  cfg_hint: Optional[ChildConfig] = None) -> tuple[ChildSa, list[Payload]]:
    """Responder half: select a proposal, narrow the selectors, derive keys.

    Returns the child and the SA/[KEr]/TSi/TSr payloads (the caller adds Nr)."""
    sa = one(payloads, SaPayload, "SA")
    tsi = one(payloads, TsiPayload, "TSi").selectors
    tsr = one(payloads, TsrPayload, "TSr").selectors
    configs = [cfg_hint] if cfg_hint is not None else by_fit(session.config.children, tsi, tsr)
    last_error: RemoteIkeError = RemoteIkeError("no child SA configuration matches the "
                                                "traffic selectors", NotifyType.TS_UNACCEPTABLE)
    for cfg in configs:
        n_tsi = narrow(tsi, selectors(cfg.remote_ts))
        n_tsr = narrow(tsr, selectors(cfg.local_ts))
        if not n_tsi or not n_tsr:
            continue
        spi_in = session.new_child_spi()
        try:
            chosen = select(sa.proposals, esp_proposals(cfg, spi_in, pfs=not in_auth))
        except RemoteIkeError as exc:
            last_error = exc
            continue
        suite = Suite.from_proposal(chosen)
        spi_out = _spi_of(chosen)
        g_ir = b""
        out: list[Payload] = []
        chosen.spi = spi_in.to_bytes(4, "big")
        out.append(SaPayload([chosen]))
        if suite.dh:
            ke = one(payloads, KePayload, "KE")
            if ke.group != suite.dh or not group_supported(suite.dh):
                raise RemoteIkeError("KEi does not match the chosen PFS group",
                                     NotifyType.INVALID_KE_PAYLOAD,
                                     int(suite.dh).to_bytes(2, "big"))
            kex = KeyExchange(suite.dh)
            g_ir = kex.shared_secret(ke.data)
            out.append(KePayload(suite.dh, kex.public))
        child = make_child(session, cfg, suite, spi_in, spi_out, False, nonce_i, nonce_r,
                           g_ir, n_tsr, n_tsi)
        return child, out + [TsiPayload(n_tsi), TsrPayload(n_tsr)]
    raise last_error


class ChildCreateTask(Task):
    """Initiate CREATE_CHILD_SA for an additional child SA (§1.3.1)."""

    exchange = ExchangeType.CREATE_CHILD_SA

    def __init__(self, session: "IkeV2Session", cfg: ChildConfig,
                 group: Optional[int] = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.group = group
        self.neg: Optional[ChildInitiator] = None

    def build_i(self, session: "IkeV2Session") -> list[Payload]:
        if len(session.children) >= session.config.max_child_sas:
            raise LocalIkeError(f"more than {session.config.max_child_sas} child SAs")
        self.neg = ChildInitiator(session, self.cfg, with_pfs=True, group=self.group)
        return self.neg.exchange_payloads()

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        assert self.neg is not None
        group = invalid_ke_group(payloads, self.neg.proposals, self.neg.group)
        if group is not None:   # retry with the PFS group the responder wants
            session._queue.appendleft(ChildCreateTask(session, self.cfg, group))
            return TaskResult.DONE
        child = self.neg.complete(session, payloads, self.neg.nonce, None)
        session.emit(ChildSaUp(child.negotiated()))
        return TaskResult.DONE


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    """Responder side of CREATE_CHILD_SA for a new child SA (NO_ADDITIONAL_SAS past
    `IkeConfig.max_child_sas`, §1.3)."""
    if len(session.children) >= session.config.max_child_sas:
        raise RemoteIkeError(f"more than {session.config.max_child_sas} child SAs",
                             NotifyType.NO_ADDITIONAL_SAS)
    nonce_i = one(payloads, NoncePayload, "Nonce").nonce
    nonce_r = session.random(NONCE_LEN)
    child, out = child_respond(session, payloads, nonce_i, nonce_r, in_auth=False)
    session.emit(ChildSaUp(child.negotiated()))
    return [out[0], NoncePayload(nonce_r)] + out[1:]

