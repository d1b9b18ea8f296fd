"""Two IKEv1 sessions in memory (aioquic `client_and_server()` style), with optional loss,
a NAT between them, and a clock."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from inline_ipsec.ike import ChildConfig, Identity
from inline_ipsec.ike.v1 import IkeV1Config, IkeV1Session, Phase1Proposal

I_ADDR = ("192.0.2.1", 500)
R_ADDR = ("198.51.100.1", 500)
#: the initiator as a NAT in front of it shows it to the responder
NAT_ADDR = ("203.0.113.9", 40000)
NAT_ADDR_NATT = ("203.0.113.9", 40001)
PSK = b"ikev1 in-memory pre-shared key"
I_NET, R_NET = "10.1.0.0/24", "10.2.0.0/24"


@lru_cache(maxsize=None)
def pki(kind: str) -> tuple:
    """(CA cert, initiator key, initiator cert, responder key, responder cert) for "rsa",
    "ecdsa256" or "ecdsa384"; certificates name i.example / r.example in subjectAltName."""
    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        if kind == "rsa":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1() if kind == "ecdsa256" else ec.SECP384R1())

    def cert(cn, k, issuer=None, issuer_key=None, ca=False):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name)
             .issuer_name(issuer.subject if issuer else name).public_key(k.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                                critical=False)
        return b.sign(issuer_key or k, hashes.SHA256())
    ca_key = key()
    ca = cert(f"{kind} test CA", ca_key, ca=True)
    ik, rk = key(), key()
    return ca, ik, cert("i.example", ik, ca, ca_key), rk, cert("r.example", rk, ca, ca_key)


METHODS = {"psk": "pre-shared-keys", "rsa": "rsa-signatures",
           "ecdsa256": "ecdsa-signatures-256", "ecdsa384": "ecdsa-signatures-384"}


def configs(auth: str = "psk", ike: str = "aes128-sha256-modp2048",
            esp: tuple = ("aes128gcm16",), **kw) -> tuple[IkeV1Config, IkeV1Config]:
    """Matching initiator and responder configurations; keyword arguments apply to both,
    prefixed i_ / r_ to one side (i_children, r_proposals, ...)."""
    common: dict = {"proposals": [Phase1Proposal.parse(ike, METHODS[auth])]}
    ikw = dict(common, local_id=Identity.parse("@i.example"),
               remote_id=Identity.parse("@r.example"),
               children=[ChildConfig(name="c", proposals=list(esp), local_ts=[I_NET],
                                     remote_ts=[R_NET])])
    rkw = dict(common, local_id=Identity.parse("@r.example"),
               remote_id=Identity.parse("@i.example"),
               children=[ChildConfig(name="c", proposals=list(esp), local_ts=[R_NET],
                                     remote_ts=[I_NET])])
    if auth == "psk":
        ikw["psk"] = rkw["psk"] = PSK
    else:
        ca, ik, ic, rk, rc = pki(auth)
        ikw.update(private_key=ik, certificates=[ic], ca_certificates=[ca])
        rkw.update(private_key=rk, certificates=[rc], ca_certificates=[ca])
    for k, v in kw.items():
        if k.startswith("i_"):
            ikw[k[2:]] = v
        elif k.startswith("r_"):
            rkw[k[2:]] = v
        else:
            ikw[k] = rkw[k] = v
    return IkeV1Config(**ikw), IkeV1Config(**rkw)


def port_of(d: bytes) -> int:
    return 4500 if d.startswith(b"\0\0\0\0") else 500


@dataclass
class Pair:
    """An initiator and a responder session joined by an in-memory wire."""

    i: IkeV1Session
    r: IkeV1Session
    now: float = 0.0
    #: put a NAT in front of the initiator (rewrites its address and ports)
    nat: bool = False
    log: list = field(default_factory=list)
    #: (direction, time) of every datagram in `log`
    times: list = field(default_factory=list)
    i_events: list = field(default_factory=list)
    r_events: list = field(default_factory=list)

    @classmethod
    def make(cls, i_cfg: IkeV1Config, r_cfg: IkeV1Config, nat: bool = False) -> "Pair":
        i = IkeV1Session(i_cfg, initiator=True, local_addr=I_ADDR, remote_addr=R_ADDR)
        seen = NAT_ADDR if nat else I_ADDR
        r = IkeV1Session(r_cfg, initiator=False, local_addr=R_ADDR, remote_addr=seen)
        return cls(i, r, nat=nat)

    def _src_i(self, d: bytes) -> tuple:
        if self.nat:
            return NAT_ADDR_NATT if port_of(d) == 4500 else NAT_ADDR
        return (I_ADDR[0], port_of(d))

    def drain_events(self) -> None:
        for s, out in ((self.i, self.i_events), (self.r, self.r_events)):
            while (e := s.next_event()) is not None:
                out.append(e)

    def step(self, drop: Optional[Callable[[str, bytes], bool]] = None) -> int:
        """Deliver all queued datagrams once in each direction; returns how many moved."""
        moved = 0
        for d, addr in self.i.datagrams_to_send(self.now):
            self.log.append(("i->r", d, addr))
            self.times.append(("i->r", self.now))
            moved += 1
            if drop is None or not drop("i->r", d):
                self.r.receive_datagram(d, self._src_i(d), self.now)
        for d, addr in self.r.datagrams_to_send(self.now):
            self.log.append(("r->i", d, addr))
            self.times.append(("r->i", self.now))
            moved += 1
            if drop is None or not drop("r->i", d):
                self.i.receive_datagram(d, (R_ADDR[0], port_of(d)), self.now)
        self.drain_events()
        return moved

    def run(self, drop: Optional[Callable[[str, bytes], bool]] = None, limit: int = 50) -> None:
        """Exchange datagrams until both sides are quiet."""
        for _ in range(limit):
            if not self.step(drop):
                return
        raise AssertionError("sessions did not settle")

    def advance(self, seconds: float, drop=None, tick: float = 0.5) -> None:
        """Let time pass, firing timers and delivering what they send."""
        end = self.now + seconds
        while self.now < end:
            timers = [t for t in (self.i.get_timer(), self.r.get_timer()) if t is not None]
            nxt = min([end] + [t for t in timers if t > self.now] + [self.now + tick])
            self.now = max(self.now, nxt)
            for s in (self.i, self.r):
                t = s.get_timer()
                if t is not None and t <= self.now:
                    s.handle_timer(self.now)
            self.run(drop)

    def connect(self, drop=None) -> "Pair":
        self.i.connect(self.now)
        self.run(drop)
        return self

    def of(self, side: str, cls) -> list:
        return [e for e in (self.i_events if side == "i" else self.r_events)
                if isinstance(e, cls)]


def pair(auth: str = "psk", nat: bool = False, **kw) -> Pair:
    return Pair.make(*configs(auth, **kw), nat=nat)
