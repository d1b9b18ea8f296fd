"""IKE_SA_INIT (RFC 7296 §1.2): SA, KE, Nonce, NAT detection (§2.23), cookies (§2.6),
INVALID_KE_PAYLOAD retry (§1.2), USE_PPK (RFC 8784 §3), SIGNATURE_HASH_ALGORITHMS (RFC 7427).

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SAi1, KEi, Ni, N(NAT_*), [N(USE_PPK)]  -->
                               <--  HDR, SAr1, KEr, Nr, N(NAT_*), [CERTREQ], [N(USE_PPK)]
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...constants import (DhGroup, ExchangeType, NotifyType, ProtocolId, TransformType,
                          is_error_notify)
from ...errors import LocalIkeError, RemoteIkeError, syntax_error
from ...message import Message
from ...payloads import (CertReqPayload, KePayload, NoncePayload, NotifyPayload, Payload,
                         Proposal, SaPayload, notify)
from ...protection import KeyExchange, group_supported
from ...proposals import Suite, check_accepted, parse_proposal, select
from ...states import IkeSaState as IkeState, transition
from ...auth import ca_keyid, sig_hash_notify_data
from ..natt import check_nat, nat_notifies, new_ike_spi
from ..task import StatelessReply, Task, TaskResult

if TYPE_CHECKING:  # pragma: no cover
    from ..session import IkeV2Session

NONCE_LEN = 32


def ike_proposals(session: "IkeV2Session") -> list[Proposal]:
    return [parse_proposal(text, ProtocolId.IKE, i + 1)
            for i, text in enumerate(session.config.proposals)]


def find_notify(payloads: list[Payload], ntype: int) -> Optional[NotifyPayload]:
    for p in payloads:
        if isinstance(p, NotifyPayload) and p.notify_type == ntype:
            return p
    return None


def first_error(payloads: list[Payload]) -> Optional[NotifyPayload]:
    for p in payloads:
        if isinstance(p, NotifyPayload) and is_error_notify(p.notify_type):
            return p
    return None


def one(payloads: list[Payload], cls: type, what: str):
    for p in payloads:
        if isinstance(p, cls):
            return p
    raise syntax_error(f"{what} payload missing")


def proposal_name(suite: Suite) -> str:
    """strongSwan-style name of a negotiated IKE proposal, for logs and events."""
    return suite.name


def _extras(session: "IkeV2Session", peer: Optional[list[Payload]]) -> list[Payload]:
    cfg = session.config
    out: list[Payload] = []
    if cfg.auth == "pubkey" or cfg.ca_certificates:
        if peer is None or find_notify(peer, NotifyType.SIGNATURE_HASH_ALGORITHMS):
            out.append(notify(NotifyType.SIGNATURE_HASH_ALGORITHMS, sig_hash_notify_data()))
    if cfg.ppk is not None and (peer is None or find_notify(peer, NotifyType.USE_PPK)):
        out.append(notify(NotifyType.USE_PPK))
    if cfg.fragmentation and (peer is None or find_notify(
            peer, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)):
        out.append(notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))  # RFC 7383 §2.3
    return out


class IkeInitTask(Task):
    exchange = ExchangeType.IKE_SA_INIT

    def __init__(self, session: "IkeV2Session") -> None:
        super().__init__()
        self.proposals = ike_proposals(session)
        groups = [t.id for p in self.proposals for t in p.of_type(TransformType.DH)]
        if not groups or not all(group_supported(g) for g in groups):
            raise LocalIkeError(f"IKE proposals need supported DH groups, got {groups}")
        self.group: int = groups[0]
        self.cookie: Optional[bytes] = None
        self.ke: Optional[KeyExchange] = None
        self.nonce = session.random(NONCE_LEN)
        self.retries = 0

    def build_i(self, session: "IkeV2Session") -> list[Payload]:
        if self.ke is None or self.ke.group != self.group:
            self.ke = KeyExchange(self.group)
        session.ike.nonce_i = self.nonce
        payloads: list[Payload] = []
        if self.cookie is not None:
            payloads.append(notify(NotifyType.COOKIE, self.cookie))  # must be first, §2.6
        payloads += [SaPayload(self.proposals), KePayload(self.group, self.ke.public),
                     NoncePayload(self.nonce)]
        payloads += nat_notifies(session, session.ike.spi_i, bytes(8))
        payloads += _extras(session, None)
        return payloads

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        cookie = find_notify(payloads, NotifyType.COOKIE)
        if cookie is not None and not any(isinstance(p, SaPayload) for p in payloads):
            self.retries += 1
            if self.retries > 3:
                raise RemoteIkeError("responder keeps asking for cookies")
            self.cookie = cookie.data
            return TaskResult.RETRY
        invalid_ke = find_notify(payloads, NotifyType.INVALID_KE_PAYLOAD)
        if invalid_ke is not None:
            group = int.from_bytes(invalid_ke.data[:2], "big")
            offered = {t.id for p in self.proposals for t in p.of_type(TransformType.DH)}
            self.retries += 1
            if group not in offered or group == self.group or self.retries > 3:
                raise RemoteIkeError(f"INVALID_KE_PAYLOAD asks for group {group}",
                                     NotifyType.INVALID_KE_PAYLOAD)
            self.group = group  # §1.2: retry with the group the responder wants
            return TaskResult.RETRY
        err = first_error(payloads)
        if err is not None:
            raise RemoteIkeError(f"responder refused IKE_SA_INIT: {err.name}", err.notify_type)
        sa = one(payloads, SaPayload, "SA")
        chosen = check_accepted(sa.proposals, self.proposals)
        suite = Suite.from_proposal(chosen)
        ke = one(payloads, KePayload, "KE")
        if suite.dh != self.group or ke.group != self.group:
            raise RemoteIkeError("responder's KE does not match its chosen group",
                                 NotifyType.INVALID_KE_PAYLOAD)
        assert self.ke is not None
        g_ir = self.ke.shared_secret(ke.data)
        ike = session.ike
        ike.spi_r = msg.header.spi_r
        if ike.spi_r == bytes(8):
            raise syntax_error("responder SPI is zero")
        ike.nonce_r = one(payloads, NoncePayload, "Nonce").nonce
        check_nat(session, payloads, ike.spi_i, ike.spi_r)
        session.peer_use_ppk = find_notify(payloads, NotifyType.USE_PPK) is not None
        session.frag_ok = session.config.fragmentation and find_notify(
            payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
        session.init_response = msg.raw
        session.proposal_text = proposal_name(suite)
        session.install_ike_keys(suite, g_ir)
        transition(session, IkeState.AUTH)
        if session.nat_detected and not session.natt:
            # §2.23: float to port 4500 for IKE_AUTH and everything after it.
            session.natt = True
            session.remote_addr = (session.remote_addr[0], session.config.natt_port)
        return TaskResult.DONE


def cookie_for(session: "IkeV2Session", nonce_i: bytes, spi_i: bytes) -> bytes:
    """The cookie of this peer (§2.6) under the configuration's current secret; the secrets
    are per configuration so that any responder session, and the manager, can check it
    without state (`ike.cookies`)."""
    return session.config.cookie_secrets.make(session.remote_addr[0], nonce_i, spi_i,
                                              session.now)


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    """Responder side of IKE_SA_INIT."""
    ike = session.ike
    nonce_i = one(payloads, NoncePayload, "Nonce").nonce
    if session.config.require_cookie:
        got = find_notify(payloads, NotifyType.COOKIE)
        if got is None or not session.config.cookie_secrets.check(
                got.data, session.remote_addr[0], nonce_i, msg.header.spi_i, session.now):
            raise StatelessReply([notify(NotifyType.COOKIE,
                                         cookie_for(session, nonce_i, msg.header.spi_i))])
    sa = one(payloads, SaPayload, "SA")
    ke = one(payloads, KePayload, "KE")
    ike.spi_i = msg.header.spi_i
    chosen = select(sa.proposals, ike_proposals(session))
    suite = Suite.from_proposal(chosen)
    if suite.dh == DhGroup.NONE or not group_supported(suite.dh):
        raise RemoteIkeError("no supported DH group", NotifyType.NO_PROPOSAL_CHOSEN)
    if ke.group != suite.dh:
        raise StatelessReply([notify(NotifyType.INVALID_KE_PAYLOAD,
                                     int(suite.dh).to_bytes(2, "big"))])
    kex = KeyExchange(suite.dh)
    g_ir = kex.shared_secret(ke.data)
    ike.nonce_i = nonce_i
    ike.nonce_r = session.random(NONCE_LEN)
    ike.spi_r = new_ike_spi(session.random)
    check_nat(session, payloads, ike.spi_i, bytes(8))
    session.peer_use_ppk = find_notify(payloads, NotifyType.USE_PPK) is not None
    session.frag_ok = session.config.fragmentation and find_notify(
        payloads, NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
    session.init_request = msg.raw
    session.proposal_text = proposal_name(suite)
    session.install_ike_keys(suite, g_ir)
    transition(session, IkeState.INIT)
    chosen.spi = b""
    response: list[Payload] = [SaPayload([chosen]), KePayload(suite.dh, kex.public),
                               NoncePayload(ike.nonce_r)]
    response += nat_notifies(session, ike.spi_i, ike.spi_r)
    if session.config.ca_certificates:
        response.append(CertReqPayload(4, b"".join(ca_keyid(c) for c in
                                                   session.config.ca_certificates)))
    response += _extras(session, payloads)
    return response
