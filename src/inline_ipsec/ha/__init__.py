"""Multinode High Availability (MNHA): two SRX nodes that protect each other's IPsec tunnels
over an encrypted interchassis link (docs/mnha.md).

- `config.high_availability`: the `set chassis high-availability ...` statements;
- `srg`: the activeness of each services redundancy group (sans-I/O state machine);
- `rto`: run-time object messages on the ICL (SAs, sequence reservations, replay tops);
- `node`: `MnhaNode`, a gateway plus its SRGs and state synchronisation;
- `network`: who answers for a floating address (the model's routing stand-in);
- `show`: `show chassis high-availability ...`.
"""
from __future__ import annotations

from .network import FloatingAddresses
from .node import DEFAULT_BLOCK, HaCounters, MnhaNode, ha_problems, srg_vpns
from .srg import PeerView, SrgMachine, SrgState

__all__ = ["FloatingAddresses", "MnhaNode", "HaCounters", "DEFAULT_BLOCK", "ha_problems",
           "srg_vpns", "PeerView", "SrgMachine", "SrgState"]
