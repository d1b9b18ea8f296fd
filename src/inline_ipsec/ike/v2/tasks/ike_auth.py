"""IKE_AUTH with the first child SA (RFC 7296 §1.2, §2.15), PPK (RFC 8784 §3) and
certificates with RFC 7427 signatures.

    Initiator                         Responder
    -------------------------------------------------------------------
    HDR, SK {IDi, [CERT,] [CERTREQ,] [IDr,] AUTH, [N(PPK_IDENTITY), N(NO_PPK_AUTH)],
             SAi2, TSi, TSr}  -->
                               <--  HDR, SK {IDr, [CERT,] AUTH, [N(PPK_IDENTITY)],
                                             SAr2, TSi, TSr}
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from cryptography.hazmat.primitives import constant_time, serialization

from ... import auth
from ...auth import Identity
from ...constants import AuthMethod, CertEncoding, ExchangeType, NotifyType
from ...errors import LocalIkeError, RemoteIkeError
from ...events import ChildSaUp, IkeSaUp
from ...keymat import IkeKeys, ppk_mix
from ...message import Message
from ...payloads import (CFG_ACK, CFG_REPLY, CFG_REQUEST, CFG_SET, AuthPayload, CertPayload,
                         CertReqPayload, CpPayload, IdiPayload, IdPayload, IdrPayload, Payload,
                         notify)
from ...states import IkeSaState as IkeState, transition
from ..task import Task, TaskResult
from .child_create import ChildInitiator, child_respond
from .ike_init import find_notify, first_error, one

if TYPE_CHECKING:  # pragma: no cover
    from ..session import IkeV2Session

_CHILD_ERRORS = (NotifyType.NO_PROPOSAL_CHOSEN, NotifyType.TS_UNACCEPTABLE,
                 NotifyType.SINGLE_PAIR_REQUIRED, NotifyType.INTERNAL_ADDRESS_FAILURE,
                 NotifyType.FAILED_CP_REQUIRED, NotifyType.INVALID_SELECTORS)


def _auth_payloads(session: "IkeV2Session", octets_msg: bytes, peer_nonce: bytes,
                   sk_p: bytes, identity: Identity) -> tuple[list[Payload], AuthPayload]:
    """Our CERT payloads and AUTH payload over the signed octets (§2.15)."""
    cfg = session.config
    octets = auth.signed_octets(octets_msg, peer_nonce, session.ike.prf, sk_p, identity)
    if cfg.auth == "psk":
        if cfg.psk is None:
            raise LocalIkeError("auth='psk' needs a psk")
        return [], AuthPayload(AuthMethod.PSK, auth.psk_auth(session.ike.prf, cfg.psk, octets))
    if cfg.auth == "pubkey":
        if cfg.private_key is None or not cfg.certificates:
            raise LocalIkeError("auth='pubkey' needs private_key and certificates")
        certs: list[Payload] = [
            CertPayload(CertEncoding.X509_SIGNATURE,
                        c.public_bytes(serialization.Encoding.DER)) for c in cfg.certificates]
        method, data = auth.sign(cfg.private_key, octets)
        return certs, AuthPayload(method, data)
    raise LocalIkeError(f"unknown auth method {cfg.auth!r}")


def _verify_peer(session: "IkeV2Session", payloads: list[Payload], idp: IdPayload,
                 a: AuthPayload, octets_msg: bytes, own_nonce: bytes, sk_p: bytes) -> Identity:
    """Check the peer's identity and AUTH payload; returns its identity (§2.15)."""
    cfg = session.config
    peer = Identity.from_payload(idp)
    if cfg.remote_id is not None and peer != cfg.remote_id:
        raise auth.auth_failed(f"peer identity {peer} is not the configured {cfg.remote_id}")
    octets = auth.signed_octets(octets_msg, own_nonce, session.ike.prf, sk_p, peer)
    if a.method == AuthMethod.PSK:
        if cfg.psk is None:
            raise auth.auth_failed("peer used PSK authentication, we do not allow it")
        expected = auth.psk_auth(session.ike.prf, cfg.psk, octets)
        if not constant_time.bytes_eq(expected, a.data):
            raise auth.auth_failed("PSK AUTH payload mismatch")
        return peer
    if not cfg.ca_certificates:
        raise auth.auth_failed("peer used signature authentication but no CA is configured")
    certs = auth.load_peer_certs([p.data for p in payloads if type(p) is CertPayload
                                  and p.encoding == CertEncoding.X509_SIGNATURE])
    if not certs:
        raise auth.auth_failed("signature authentication without a certificate")
    now = datetime.now(timezone.utc)
    auth.validate_chain(certs[0], certs[1:], cfg.ca_certificates, now)
    if not auth.identity_in_cert(peer, certs[0]):
        raise auth.auth_failed(f"certificate does not contain the identity {peer}")
    auth.verify(certs[0].public_key(), a.method, a.data, octets)
    return peer


class IkeAuthTask(Task):
    exchange = ExchangeType.IKE_AUTH

    def __init__(self, session: "IkeV2Session") -> None:
        super().__init__()
        self.child: Optional[ChildInitiator] = None
        self.plain_keys: Optional[IkeKeys] = None
        self.ppk_keys: Optional[IkeKeys] = None

    def build_i(self, session: "IkeV2Session") -> list[Payload]:
        cfg, ike = session.config, session.ike
        assert ike.keys is not None
        self.plain_keys = ike.keys
        use_ppk = cfg.ppk is not None and session.peer_use_ppk
        if cfg.ppk_required and not use_ppk:
            raise LocalIkeError("PPK is mandatory but the responder did not offer USE_PPK")
        sk_pi = ike.keys.sk_pi
        if use_ppk:
            assert cfg.ppk is not None
            self.ppk_keys = ppk_mix(ike.prf, cfg.ppk, ike.keys)  # RFC 8784 §3
            sk_pi = self.ppk_keys.sk_pi
        certs, a = _auth_payloads(session, session.init_request, ike.nonce_r, sk_pi,
                                  cfg.local_id)
        out: list[Payload] = [IdiPayload(cfg.local_id.id_type, cfg.local_id.data), *certs]
        if cfg.ca_certificates:
            out.append(CertReqPayload(CertEncoding.X509_SIGNATURE, b"".join(
                auth.ca_keyid(c) for c in cfg.ca_certificates)))
        if cfg.remote_id is not None:
            out.append(IdrPayload(cfg.remote_id.id_type, cfg.remote_id.data))
        out.append(a)
        if session.send_initial_contact:
            out.append(notify(NotifyType.INITIAL_CONTACT))
        if use_ppk:
            out.append(notify(NotifyType.PPK_IDENTITY, b"\x02" + (cfg.ppk_id or b"")))
            if not cfg.ppk_required:
                _, plain = _auth_payloads(session, session.init_request, ike.nonce_r,
                                          self.plain_keys.sk_pi, cfg.local_id)
                # RFC 8784 §3: the AUTH data as computed without the PPK (same method).
                out.append(notify(NotifyType.NO_PPK_AUTH, plain.data))
        if cfg.cp_request:
            out.append(CpPayload(cfg.cp_type, list(cfg.cp_request)))    # §3.15
        self.child = ChildInitiator(session, cfg.children[0], with_pfs=False)
        out.append(self.child.sa_payload())
        out += self.child.ts_payloads()
        return out

    def process_i(self, session: "IkeV2Session", msg: Message,
                  payloads: list[Payload]) -> TaskResult:
        cfg, ike = session.config, session.ike
        a = next((p for p in payloads if isinstance(p, AuthPayload)), None)
        if a is None:
            err = first_error(payloads)
            raise RemoteIkeError(f"IKE_AUTH refused: {err.name if err else 'no AUTH'}",
                                 err.notify_type if err else NotifyType.AUTHENTICATION_FAILED)
        idr = one(payloads, IdrPayload, "IDr")
        keys = self.plain_keys
        if self.ppk_keys is not None:
            if find_notify(payloads, NotifyType.PPK_IDENTITY) is not None:
                keys = self.ppk_keys
                session.ppk_used = True
            elif cfg.ppk_required:
                raise auth.auth_failed("responder did not use the mandatory PPK")
        assert keys is not None
        ike.keys = keys
        session.peer_id = _verify_peer(session, payloads, idr, a, session.init_response,
                                       ike.nonce_i, keys.sk_pr)
        session.peer_cp = next((p for p in payloads if isinstance(p, CpPayload)
                                and p.cfg_type in (CFG_REPLY, CFG_ACK)), None)
        transition(session, IkeState.ESTABLISHED)
        _schedule(session)
        session.emit(_ike_up(session))
        assert self.child is not None
        try:
            child = self.child.complete(session, payloads, ike.nonce_i, ike.nonce_r)
        except RemoteIkeError as exc:  # the IKE SA stays up (§1.2 last paragraphs)
            session.errors.add("child SA refused", exc, session.now)
            return TaskResult.DONE
        session.emit(ChildSaUp(child.negotiated()))
        return TaskResult.DONE


def _schedule(session: "IkeV2Session") -> None:
    session.established_at = session.now      # dead peer detection counts from here
    if session.config.ike_rekey_seconds is not None:
        session.ike_rekey_at = session.now + session.config.ike_rekey_seconds


def _ike_up(session: "IkeV2Session") -> IkeSaUp:
    ike = session.ike
    return IkeSaUp(ike.spi_i, ike.spi_r, ike.initiator, str(session.config.local_id),
                   str(session.peer_id), session.proposal_text, session.ppk_used,
                   session.local_nat, session.remote_nat)


def respond(session: "IkeV2Session", msg: Message, payloads: list[Payload]) -> list[Payload]:
    """Responder side of IKE_AUTH: authenticate the initiator, then the first child SA.
    With `IkeConfig.select_peer` the peer configuration is chosen by IDi/IDr first (§2.15)."""
    ike = session.ike
    assert ike.keys is not None
    idi = one(payloads, IdiPayload, "IDi")
    if session.config.select_peer is not None:
        wanted = next((Identity.from_payload(p) for p in payloads if isinstance(p, IdrPayload)),
                      None)
        chosen = session.config.select_peer(Identity.from_payload(idi), wanted)
        if chosen is not None:
            session.config = chosen
    cfg = session.config
    a = one(payloads, AuthPayload, "AUTH")
    keys = ike.keys
    ppk_id = find_notify(payloads, NotifyType.PPK_IDENTITY)
    no_ppk = find_notify(payloads, NotifyType.NO_PPK_AUTH)
    use_ppk = False
    if ppk_id is not None and cfg.ppk is not None and session.peer_use_ppk:
        # RFC 8784 §3: PPK_IDENTITY data is a 1-byte type (PPK_ID_FIXED = 2) and the id.
        if ppk_id.data[1:] == (cfg.ppk_id or b""):
            keys, use_ppk = ppk_mix(ike.prf, cfg.ppk, ike.keys), True
    if not use_ppk:
        if cfg.ppk_required:
            raise auth.auth_failed("PPK is mandatory and the initiator did not use ours")
        if ppk_id is not None:
            if no_ppk is None:
                raise auth.auth_failed("unknown PPK and no NO_PPK_AUTH to fall back to")
            a = AuthPayload(a.method, no_ppk.data)  # RFC 8784 §3
    peer = _verify_peer(session, payloads, idi, a, session.init_request, ike.nonce_r,
                        keys.sk_pi)
    own_idr = one(payloads, IdrPayload, "IDr") if any(
        isinstance(p, IdrPayload) for p in payloads) else None
    if own_idr is not None and Identity.from_payload(own_idr) != cfg.local_id:
        raise auth.auth_failed(f"initiator wants to talk to {Identity.from_payload(own_idr)}")
    ike.keys = keys
    session.ppk_used = use_ppk
    session.peer_id = peer
    session.peer_initial_contact = find_notify(payloads, NotifyType.INITIAL_CONTACT) is not None
    certs, mine = _auth_payloads(session, session.init_response, ike.nonce_i, keys.sk_pr,
                                 cfg.local_id)
    out: list[Payload] = [IdrPayload(cfg.local_id.id_type, cfg.local_id.data), *certs, mine]
    if use_ppk:
        out.append(notify(NotifyType.PPK_IDENTITY, ppk_id.data if ppk_id else b""))
    session.peer_cp = next((p for p in payloads if isinstance(p, CpPayload)
                            and p.cfg_type in (CFG_REQUEST, CFG_SET)), None)
    if session.peer_cp is not None and cfg.cp_responder is not None:
        reply = cfg.cp_responder(session, session.peer_cp)
        if reply is not None:
            out.append(reply)
    transition(session, IkeState.ESTABLISHED)
    _schedule(session)
    session.emit(_ike_up(session))
    try:
        child, child_payloads = child_respond(session, payloads, ike.nonce_i, ike.nonce_r,
                                              in_auth=True)
    except RemoteIkeError as exc:
        session.errors.add("child SA refused", exc, session.now)
        hint = exc.notify_hint if exc.notify_hint in _CHILD_ERRORS else \
            NotifyType.NO_PROPOSAL_CHOSEN
        return out + [notify(hint)]
    session.emit(ChildSaUp(child.negotiated()))
    return out + child_payloads

