"""The CPU path of inline-ipsec (PowerMode IPsec / QAT style, "Hardware Offloaded: No").

`CpuEngine` implements the same engine protocol as `Pfe` in pure Python on the
`cryptography` package: ESP (RFC 4303) with every cipher of `sa.CIPHER_KEY_MATERIAL`, AH
(RFC 4302), tunnel and transport mode, NAT-T (RFC 3948), anti-replay windows of any size,
ESN, and SA lifetimes with polled events. With PowerMode IPsec (`pmi=True`) it takes bursts
as vectors (pmi.py); a `QatDevice` (qat.py) models a lookaside crypto accelerator with
request/response rings for those vectors.
"""
from __future__ import annotations

from .engine import CpuEngine
from .lifetimes import SaEvent
from .pmi import PmiCounters
from .qat import QatCounters, QatDevice
from .replay import ReplayWindow

__all__ = ["CpuEngine", "PmiCounters", "QatCounters", "QatDevice", "ReplayWindow", "SaEvent"]
