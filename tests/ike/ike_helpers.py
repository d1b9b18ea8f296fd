"""In-memory initiator/responder pairs (aioquic `client_and_server()`, h11 `ConnectionPair`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from inline_ipsec.ike import ChildConfig, Identity, IkeConfig, IkeV2Session

I_ADDR = ("192.0.2.1", 500)
R_ADDR = ("198.51.100.1", 500)


def configs(**kw) -> tuple[IkeConfig, IkeConfig]:
    """Matching initiator and responder configs; keyword arguments apply to both, keys
    prefixed i_ / r_ to one side only."""
    common = dict(psk=b"correct horse battery staple")
    ikw = dict(common, local_id=Identity.parse("@i.example"),
               remote_id=Identity.parse("@r.example"))
    rkw = dict(common, local_id=Identity.parse("@r.example"),
               remote_id=Identity.parse("@i.example"))
    for k, v in kw.items():
        if k.startswith("i_"):
            ikw[k[2:]] = v
        elif k.startswith("r_"):
            rkw[k[2:]] = v
        else:
            ikw[k] = rkw[k] = v
    return IkeConfig(**ikw), IkeConfig(**rkw)


@dataclass
class Pair:
    i: IkeV2Session
    r: IkeV2Session
    #: as seen by the responder (a NAT may rewrite the initiator's address).
    i_seen: tuple = I_ADDR
    #: the initiator's NAT-T socket as seen by the responder.
    i_seen_natt: tuple = (I_ADDR[0], 4500)
    now: float = 0.0
    log: list = field(default_factory=list)
    i_events: list = field(default_factory=list)
    r_events: list = field(default_factory=list)

    def drain_events(self) -> None:
        for s, out in ((self.i, self.i_events), (self.r, self.r_events)):
            while (e := s.next_event()) is not None:
                out.append(e)

    def deliver(self, frm: str) -> int:
        """Deliver only the datagrams queued by one side ("i" or "r")."""
        moved = 0
        if frm == "i":
            for d, addr in self.i.datagrams_to_send(self.now):
                self.log.append(("i->r", d, addr))
                src = self.i_seen_natt if d.startswith(b"\0\0\0\0") else self.i_seen
                self.r.receive_datagram(d, src, self.now)
                moved += 1
        else:
            for d, addr in self.r.datagrams_to_send(self.now):
                self.log.append(("r->i", d, addr))
                self.i.receive_datagram(d, (R_ADDR[0], addr_port(d)), self.now)
                moved += 1
        self.drain_events()
        return moved

    def step(self, drop: Optional[Callable[[str, bytes], bool]] = None) -> int:
        """Deliver all queued datagrams once in each direction; returns how many moved."""
        moved = 0
        for d, addr in self.i.datagrams_to_send(self.now):
            self.log.append(("i->r", d, addr))
            if drop is None or not drop("i->r", d):
                src = self.i_seen_natt if d.startswith(b"\0\0\0\0") else self.i_seen
                self.r.receive_datagram(d, src, self.now)
            moved += 1
        for d, addr in self.r.datagrams_to_send(self.now):
            self.log.append(("r->i", d, addr))
            if drop is None or not drop("r->i", d):
                self.i.receive_datagram(d, (R_ADDR[0], addr_port(d)), self.now)
            moved += 1
        self.drain_events()
        return moved

    def run(self, drop=None, max_steps: int = 20) -> None:
        for _ in range(max_steps):
            if not self.step(drop):
                return

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for s in (self.i, self.r):
            t = s.get_timer()
            if t is not None and t <= self.now:
                s.handle_timer(self.now)
        self.run()


def addr_port(d: bytes) -> int:
    return 4500 if d.startswith(b"\0\0\0\0") else 500


def make_pair(icfg: IkeConfig, rcfg: IkeConfig, i_seen=I_ADDR, connect: bool = True) -> Pair:
    i = IkeV2Session(icfg, initiator=True, local_addr=I_ADDR, remote_addr=R_ADDR)
    r = IkeV2Session(rcfg, initiator=False, local_addr=R_ADDR, remote_addr=i_seen)
    natt = (I_ADDR[0], 4500) if i_seen == I_ADDR else (i_seen[0], i_seen[1] + 1)
    pair = Pair(i, r, i_seen, natt)
    if connect:
        i.connect(0.0)
    return pair


def established(icfg: IkeConfig, rcfg: IkeConfig) -> Pair:
    p = make_pair(icfg, rcfg)
    p.run()
    assert p.i.state == "established" and p.r.state == "established", (p.i.errors, p.r.errors)
    return p


# ---- certificates ------------------------------------------------------------------------

NOW = datetime.datetime.now(datetime.timezone.utc)


def _cert(subject_cn, key, issuer_cert=None, issuer_key=None, ca=False, san=None,
          days=30, start=None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    start = start or NOW - datetime.timedelta(days=1)
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256())


def make_pki() -> dict:
    """A test PKI: CA -> intermediate -> r.example (ECDSA), CA -> i.example (RSA), plus a
    rogue and an expired certificate for r.example."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Test CA", ca_key, ca=True)
    inter_key = ec.generate_private_key(ec.SECP384R1())
    inter = _cert("Intermediate", inter_key, ca, ca_key, ca=True)
    i_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    i_cert = _cert("i.example", i_key, ca, ca_key, san="i.example")
    r_key = ec.generate_private_key(ec.SECP256R1())
    r_cert = _cert("r.example", r_key, inter, inter_key, san="r.example")
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_ca = _cert("Other CA", other_ca_key, ca=True)
    rogue = _cert("r.example", r_key, other_ca, other_ca_key, san="r.example")
    expired = _cert("r.example", r_key, inter, inter_key, san="r.example",
                    start=NOW - datetime.timedelta(days=60), days=10)
    return dict(ca=ca, inter=inter, i_key=i_key, i_cert=i_cert, r_key=r_key, r_cert=r_cert,
                rogue=rogue, expired=expired)


def cert_configs(pki, r_chain=None):
    return configs(auth="pubkey", psk=None, ca_certificates=[pki["ca"]],
                   i_private_key=pki["i_key"], i_certificates=[pki["i_cert"]],
                   r_private_key=pki["r_key"],
                   r_certificates=r_chain or [pki["r_cert"], pki["inter"]])



__all__ = ["ChildConfig", "configs", "make_pair", "established", "Pair", "I_ADDR", "R_ADDR",
           "make_pki", "cert_configs"]
