"""Stateless COOKIEs with a rotating secret (RFC 7296 §2.6).

    Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)

A responder under attack answers IKE_SA_INIT with a cookie it can recompute without state.
§2.6: "the responder should change the value of <secret> frequently"; it keeps the current
secret and the previous one, each named by a 32-bit version ID carried in the cookie, so a
cookie handed out just before a rotation is still accepted once. A cookie of any older secret
(or of an unknown version) is refused and answered with a fresh one.

Rotation is driven by the caller's clock: every use passes `now`, and a secret older than
`period` seconds is replaced then (after two periods without use, the previous one is dropped
as well), so no timer is needed and a quiet responder keeps no stale secret alive.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from typing import Callable, Optional

__all__ = ["CookieSecrets", "make_cookie", "ROTATION_PERIOD"]

#: seconds between secret rotations (strongSwan rotates after 10000 cookies or on restart;
#: a time-based schedule bounds how long a captured cookie stays valid: two periods at most)
ROTATION_PERIOD = 300.0


def make_cookie(secret: bytes, initiator_ip: str, nonce_i: bytes, spi_i: bytes,
                version: int = 1) -> bytes:
    """<VersionIDofSecret> | SHA-256(Ni | IPi | SPIi | <secret>) (§2.6)."""
    ip = ipaddress.ip_address(initiator_ip).packed
    return version.to_bytes(4, "big") + hashlib.sha256(nonce_i + ip + spi_i + secret).digest()


class CookieSecrets:
    """The current and the previous cookie secret of a responder (module docstring)."""

    def __init__(self, period: float = ROTATION_PERIOD,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        if period <= 0:
            raise ValueError("the cookie secret's rotation period must be positive")
        self.period = period
        self.random = random
        self.version = 1
        self.secret = random(32)
        self.previous: Optional[tuple[int, bytes]] = None
        #: when the current secret is replaced (set at first use)
        self.rotate_at: Optional[float] = None
        #: rotations so far
        self.rotations = 0

    def tick(self, now: float) -> None:
        """Rotate if the current secret's period is over (twice or more: forget both)."""
        if self.rotate_at is None:
            self.rotate_at = now + self.period
            return
        if now < self.rotate_at:
            return
        missed = int((now - self.rotate_at) // self.period)
        self.rotate()
        if missed >= 1:
            self.previous = None          # two periods without use: nothing to keep
        self.rotate_at = now + self.period

    def rotate(self) -> None:
        """A new current secret; the current one becomes the previous one."""
        self.previous = (self.version, self.secret)
        self.version = (self.version % 0xFFFFFFFF) + 1
        self.secret = self.random(32)
        self.rotations += 1

    def make(self, initiator_ip: str, nonce_i: bytes, spi_i: bytes, now: float) -> bytes:
        """The cookie for this initiator under the current secret."""
        self.tick(now)
        return make_cookie(self.secret, initiator_ip, nonce_i, spi_i, self.version)

    def check(self, cookie: bytes, initiator_ip: str, nonce_i: bytes, spi_i: bytes,
              now: float) -> bool:
        """Whether `cookie` was made for this initiator under the current or the previous
        secret."""
        self.tick(now)
        if len(cookie) != 36:
            return False
        version = int.from_bytes(cookie[:4], "big")
        if version == self.version:
            secret = self.secret
        elif self.previous is not None and version == self.previous[0]:
            secret = self.previous[1]
        else:
            return False
        return hmac.compare_digest(
            cookie, make_cookie(secret, initiator_ip, nonce_i, spi_i, version))
