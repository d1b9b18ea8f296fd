"""Typed errors of inline-ipsec.

Data-plane errors (`IpsecError` and its subclasses) are raised only by the single-packet calls;
burst calls never raise per packet, they return a status code per packet (see `Status`).
"""
from __future__ import annotations


class IpsecError(Exception):
    """Base class of every error raised by an engine."""


class ReplayError(IpsecError):
    """The packet's sequence number was already seen or lies below the anti-replay window
    (RFC 4303 §3.4.3)."""


class IntegrityError(IpsecError):
    """The ICV did not verify (RFC 4303 §3.4.4): wrong key, corrupted or forged packet."""


class MalformedPacketError(IpsecError):
    """The packet is truncated, has a bad header, bad padding or next header, or does not fit."""


class UnknownSpiError(IpsecError):
    """No inbound SA has the packet's SPI (RFC 4303 §3.4.2)."""


class UnknownSaError(UnknownSpiError, KeyError):
    """The handle names no installed SA of the direction the call needs: it was never issued,
    it names the other direction, or its SA was removed. Handles are never reused for another
    SA (the PFE packs a generation into them), so a stale handle always lands here."""

    __str__ = Exception.__str__      # not KeyError's, which would quote the message


class CapacityError(IpsecError):
    """The engine's SA table is full (the PFE holds at most 4000 SAs)."""


class SequenceOverflowError(IpsecError):
    """The outbound SA used its last sequence number and must be rekeyed (RFC 4303 §3.3.3)."""


class SaExpiredError(IpsecError):
    """The SA reached its hard lifetime and no longer carries traffic."""


class UnsupportedSaError(IpsecError, ValueError):
    """The engine cannot carry an SA with these parameters (e.g. a replay window above 4096 or a
    cipher other than AES-GCM on the PFE); such an SA belongs on the CPU path."""


class ConfigError(ValueError):
    """A configuration is invalid; the message names the line and token when there is one."""


class NotEspError(MalformedPacketError):
    """A UDP 4500 datagram that is not ESP: an IKE message behind the non-ESP marker or a NAT-T
    keepalive (RFC 3948 §2.2, §2.3). The gateway hands these to IKE or ignores them."""


class BackendUnavailableError(IpsecError, RuntimeError):
    """The requested PFE crypto backend was not built or does not run on this machine."""
