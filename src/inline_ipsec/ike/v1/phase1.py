"""What Main Mode and Aggressive Mode share (RFC 2409 §5): the SA payload and its choice, the
Diffie-Hellman exchange, SKEYID and the keys, the Phase 1 IV, HASH_I/HASH_R or the signatures
with certificates, and the end of Phase 1.

The two modes (`main_mode.py`, `aggressive_mode.py`) only order these steps into messages.
"""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Optional, Sequence

from ..auth import Identity
from ..errors import LocalIkeError, RemoteIkeError
from ..events import IkeSaUp
from ..modp import GROUPS as MODP_GROUPS, ModpKeyExchange
from ..protection import KeyExchange
from .auth import (auth_failed, auth_hash_name, cert_payloads, certreq_payloads, id_payload,
                   peer_public_key, sign, verify)
from .constants import NotifyType, notify_name
from .exchange import Exchange
from .isakmp import (CertPayload, CertReqPayload, HashPayload, IdPayload,
                     NoncePayload, NotifyPayload, Payload, SaPayload, SigPayload)
from .keymat import (derive_phase1, hash_i, hash_r, phase1_iv, skeyid_psk, skeyid_signature)
from .natt import check_natd, peer_extensions
from .proposals import Phase1Suite, check_phase1_answer, phase1_proposal, select_phase1
from .protection import MessageCipher

if TYPE_CHECKING:  # pragma: no cover
    from .session import IkeV1Session

NONCE_LEN = 32


class _V1KeyExchange:
    """A DH key pair of a Phase 1 or PFS group; a bad peer value is INVALID-KEY-INFORMATION
    (RFC 2408 §3.14.1), whichever module does the arithmetic."""

    def __init__(self, group: int, random) -> None:
        self.group = group
        self._kex = ModpKeyExchange(group, random, NotifyType.INVALID_KEY_INFORMATION) \
            if group in MODP_GROUPS else KeyExchange(group)
        self.public: bytes = self._kex.public

    def shared_secret(self, peer: bytes) -> bytes:
        try:
            return self._kex.shared_secret(peer)
        except RemoteIkeError as exc:
            raise RemoteIkeError(str(exc), NotifyType.INVALID_KEY_INFORMATION) from None


def key_exchange(group: int, random) -> _V1KeyExchange:
    """A fresh DH key pair of an IKEv1 group (2, 5, 14, 15, 16, 24 by `modp`, 19-21 by
    `protection.KeyExchange`)."""
    return _V1KeyExchange(group, random)


def one(payloads: Sequence[Payload], cls: type, what: str) -> Payload:
    """The payload of type `cls` the message must carry (INVALID-PAYLOAD-TYPE otherwise)."""
    for p in payloads:
        if type(p) is cls:
            return p
    raise RemoteIkeError(f"{what} payload missing", NotifyType.INVALID_PAYLOAD_TYPE)


def first_error(payloads: Sequence[Payload]) -> Optional[NotifyPayload]:
    for p in payloads:
        if isinstance(p, NotifyPayload) and p.notify_type < 16384:
            return p
    return None


class Phase1Exchange(Exchange):
    """Shared state and steps of Main Mode and Aggressive Mode (message ID 0)."""

    mode_name = "Main"

    def __init__(self, session: "IkeV1Session", initiator: bool) -> None:
        super().__init__(session, 0, initiator)
        self.chain = session.sa.chain      # Phase 1 messages share the ISAKMP SA's IV chain
        self.step = 0
        self.suites: list[Phase1Suite] = list(session.config.suites)
        self.kex: Optional[_V1KeyExchange] = None
        self.peer_ke = b""
        self.my_id: Identity = session.config.local_id
        #: the peer sent CERTREQ: it wants our certificate.
        self.cert_requested = False

    # -- SA -------------------------------------------------------------------------------
    def sa_payload(self) -> SaPayload:
        return SaPayload([phase1_proposal(self.suites)])

    def choose(self, sa: SaPayload) -> SaPayload:
        """Responder: pick a transform (RFC 2409 §5) and remember SAi_b."""
        chosen, suite = select_phase1(sa.proposals, self.suites)
        self.session.sa.suite = suite
        self.session.sa.sai_b = sa.body
        return SaPayload([chosen])

    def accept(self, sa: SaPayload) -> None:
        """Initiator: the responder's choice must be one of our transforms."""
        self.session.sa.suite = check_phase1_answer(sa.proposals, self.suites)

    def note_vendor_ids(self, payloads: Sequence[Payload]) -> None:
        s = self.session
        s.peer_natt, s.peer_dpd, s.peer_frag = peer_extensions(payloads)

    # -- DH and keys -------------------------------------------------------------------------
    def new_ke(self) -> bytes:
        suite = self.session.sa.suite
        assert suite is not None
        self.kex = key_exchange(suite.group, self.session.random)
        return self.kex.public

    def derive(self) -> None:
        """SKEYID (by the authentication method), SKEYID_d/a/e, the encryption key and the
        Phase 1 IV (RFC 2409 §5, Appendix B)."""
        s, sa = self.session, self.session.sa
        suite = sa.suite
        assert suite is not None and self.kex is not None
        g_xy = self.kex.shared_secret(self.peer_ke)
        h = suite.hash_name
        if suite.uses_signatures:
            skeyid = skeyid_signature(h, sa.nonce_i, sa.nonce_r, g_xy)
        else:
            if not s.config.psk:
                raise LocalIkeError("no pre-shared key configured")
            skeyid = skeyid_psk(h, s.config.psk, sa.nonce_i, sa.nonce_r)
        sa.keys = derive_phase1(h, skeyid, g_xy, sa.cky_i, sa.cky_r, suite.key_len)
        if self.initiator:
            sa.g_xi, sa.g_xr = self.kex.public, self.peer_ke
        else:
            sa.g_xi, sa.g_xr = self.peer_ke, self.kex.public
        sa.cipher = MessageCipher(suite, sa.keys.enc_key)
        sa.chain.iv = phase1_iv(h, sa.g_xi, sa.g_xr, suite.block)
        sa.g_xy = g_xy

    def nat_detection(self, payloads: Sequence[Payload], src) -> None:
        check_natd(self.session, payloads, src)

    # -- authentication ------------------------------------------------------------------
    def _hash(self, of_initiator: bool, id_body: bytes) -> bytes:
        sa = self.session.sa
        assert sa.suite is not None and sa.keys is not None
        h = auth_hash_name(sa.suite.auth_method, sa.suite.hash_name)
        fn = hash_i if of_initiator else hash_r
        return fn(h, sa.keys.skeyid, sa.g_xi, sa.g_xr, sa.cky_i, sa.cky_r, sa.sai_b, id_body)

    def my_auth(self) -> list[Payload]:
        """ID, [CERT...], HASH or SIG of our side (RFC 2409 §5.1, §5.4)."""
        s, sa = self.session, self.session.sa
        assert sa.suite is not None
        idp = id_payload(self.my_id)
        digest_ = self._hash(self.initiator, idp.encode_body())
        out: list[Payload] = [idp]
        if sa.suite.uses_signatures:
            out += cert_payloads(s.config.certificates)
            out.append(SigPayload(sign(sa.suite.auth_method, s.config.private_key, digest_)))
        else:
            out.append(HashPayload(digest_))
        return out

    def verify_peer(self, payloads: Sequence[Payload]) -> None:
        """Check the peer's ID against the configuration and its HASH or signature."""
        s, sa = self.session, self.session.sa
        assert sa.suite is not None
        idp = one(payloads, IdPayload, "ID")
        assert isinstance(idp, IdPayload)
        peer = Identity(idp.id_type, idp.data)
        self.select_config(peer)
        if s.config.remote_id is not None and peer != s.config.remote_id:
            raise RemoteIkeError(f"peer identity {peer} is not the configured "
                                 f"{s.config.remote_id}", NotifyType.INVALID_ID_INFORMATION)
        digest_ = self._hash(not self.initiator, idp.body)
        if sa.suite.uses_signatures:
            sig = one(payloads, SigPayload, "SIG")
            key = peer_public_key([p for p in payloads if type(p) is CertPayload], peer,
                                  s.config.ca_certificates)
            verify(sa.suite.auth_method, key, digest_, sig.data)  # type: ignore[attr-defined]
        else:
            got = one(payloads, HashPayload, "HASH")
            if not _equal(got.data, digest_):  # type: ignore[attr-defined]
                raise auth_failed("HASH of the peer does not match (wrong pre-shared key?)")
        s.peer_id = peer

    def select_config(self, peer: Identity) -> None:
        """Responder: the configuration for the peer's identity (`IkeV1Config.select_peer`,
        as IKEv2's RFC 7296 §2.15 policy lookup). The transform (and in Main Mode the key,
        RFC 2409 §5.4) were agreed under the configuration picked by address, so the new one
        must share them; Aggressive Mode names the peer before any key is used."""
        s = self.session
        pick = s.config.select_peer
        if self.initiator or pick is None:
            return
        cfg = pick(peer, None)
        if cfg is None or cfg is s.config:
            return
        suite = s.sa.suite
        if suite is not None:
            if not suite.uses_signatures and s.sa.keys is not None and \
                    cfg.psk != s.config.psk:
                raise auth_failed(f"the configuration for {peer} has another pre-shared key "
                                  "than the one chosen by address")
            if not any(_same_algorithms(suite, x) for x in cfg.suites):
                raise RemoteIkeError(f"the configuration for {peer} does not allow "
                                     f"{suite.name}", NotifyType.NO_PROPOSAL_CHOSEN)
        s.config = cfg
        self.my_id = cfg.local_id

    def certreqs(self) -> list[Payload]:
        """CERTREQ for our CAs when signatures are used (strongSwan sends its certificate
        only when asked)."""
        suite = self.session.sa.suite
        if suite is not None and not suite.uses_signatures:
            return []
        if suite is None and not any(x.uses_signatures for x in self.suites):
            return []
        return list(certreq_payloads(self.session.config.ca_certificates))

    def note_certreq(self, payloads: Sequence[Payload]) -> None:
        self.cert_requested |= any(type(p) is CertReqPayload for p in payloads)

    def nonce(self) -> NoncePayload:
        return NoncePayload(self.session.random(NONCE_LEN))

    # -- end of Phase 1 ------------------------------------------------------------------
    def established(self) -> None:
        """Phase 1 is complete: the ISAKMP SA is up (IkeSaUp), Quick Modes may start."""
        s, sa = self.session, self.session.sa
        assert sa.suite is not None
        self.finish()
        s.on_phase1_done(IkeSaUp(
            spi_i=sa.cky_i, spi_r=sa.cky_r, initiator=sa.initiator,
            local_id=str(self.my_id), remote_id=str(s.peer_id), proposal=sa.suite.name,
            local_nat=s.local_nat, remote_nat=s.remote_nat, version=1,
            exchange_mode=self.mode_name))

    def fail(self, error: Exception) -> None:
        """A fatal Phase 1 error: tell the peer if we can, end the session."""
        self.session.phase1_failed(error)

    def on_timeout(self) -> None:
        self.session.shutdown("retransmit timeout",
                              RemoteIkeError(f"no answer in {self.mode_name} Mode step "
                                             f"{self.step}"))

    def check_notify(self, payloads: Sequence[Payload]) -> None:
        err = first_error(payloads)
        if err is not None:
            raise RemoteIkeError(f"peer refused Phase 1: {notify_name(err.notify_type)}")


def _same_algorithms(a: Phase1Suite, b: Phase1Suite) -> bool:
    return (a.encryption, a.key_bits, a.hash_id, a.auth_method, a.group) == \
        (b.encryption, b.key_bits, b.hash_id, b.auth_method, b.group)


def _equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
