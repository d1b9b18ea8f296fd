"""Activeness of one services redundancy group (SRG1 and up), sans-I/O (docs/mnha.md §2).

Each node runs one `SrgMachine` per SRG. It learns the peer's view from heartbeats over the ICL
and decides, with no clock or socket of its own, whether this node is ACTIVE (owns the
floating address and carries the SRG's tunnels), BACKUP (holds their synchronised state, ready
to take over) or INELIGIBLE (a monitored interface is down: it must not be active).

The rules, in the order they apply:
1. A node that is unhealthy is INELIGIBLE, and an INELIGIBLE node never becomes ACTIVE.
2. While the peer is heard: exactly one node is ACTIVE. A node takes over only when the peer
   says it is not ACTIVE (BACKUP, INELIGIBLE, or just yielded); the node that yields waits
   until the peer is ACTIVE before it may be elected again. With both nodes BACKUP, the higher
   activeness priority wins, then the lower node id.
3. Preemption: a BACKUP node with `preemption` and a higher priority than the ACTIVE peer asks
   it to yield; the ACTIVE node yields to such a request.
4. Peer lost (no heartbeat for the liveness timeout): a BACKUP node probes the floating
   address (the activeness probe). If nobody answers for it, the peer is gone and this node
   becomes ACTIVE; if the ACTIVE peer still answers (only the ICL is cut), this node stays
   BACKUP: no split brain. An ACTIVE node that loses the peer stays ACTIVE.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

__all__ = ["SrgState", "PeerView", "SrgMachine", "SrgTransition"]


class SrgState(str, enum.Enum):
    HOLD = "HOLD"                 #: starting: waiting for the peer or the liveness timeout
    ACTIVE = "ACTIVE"
    BACKUP = "BACKUP"
    INELIGIBLE = "INELIGIBLE"


@dataclass(frozen=True)
class PeerView:
    """What the peer's last heartbeat said about this SRG."""

    state: SrgState
    priority: int
    healthy: bool
    wants_preempt: bool = False   #: the peer asks the ACTIVE node to yield (rule 3)
    yielding: bool = False        #: the peer gave the SRG up and must not be re-elected now
    ready: bool = True            #: the peer holds our state (cold sync complete)


@dataclass(frozen=True)
class SrgTransition:
    srg_id: int
    old: SrgState
    new: SrgState
    reason: str


class SrgMachine:
    """The activeness of one SRG on one node."""

    def __init__(self, srg_id: int, node_id: int, priority: int, preemption: bool) -> None:
        self.srg_id = srg_id
        self.node_id = node_id
        self.priority = priority
        self.preemption = preemption
        self.state = SrgState.HOLD
        self.healthy = True
        self.failure_reason = ""
        self.yielding = False
        #: this node holds the ACTIVE peer's state (cold sync complete): needed to preempt
        self.ready = False
        self.peer: Optional[PeerView] = None
        self.peer_id: Optional[int] = None
        self.peer_alive = False
        self.transitions = 0
        self.last_reason = "starting"

    # -- inputs ----------------------------------------------------------------------------

    def set_health(self, healthy: bool, reason: str = "") -> Optional[SrgTransition]:
        self.healthy = healthy
        self.failure_reason = "" if healthy else reason
        return self.evaluate()

    def peer_heard(self, peer_id: int, view: PeerView) -> Optional[SrgTransition]:
        self.peer_id, self.peer, self.peer_alive = peer_id, view, True
        if self.yielding and view.state is SrgState.ACTIVE:
            self.yielding = False        # the handover is complete
        return self.evaluate()

    def peer_lost(self, probe_answered_by_other: bool) -> Optional[SrgTransition]:
        """The liveness timeout passed. `probe_answered_by_other`: the activeness probe found
        another node answering for the floating address (rule 4)."""
        self.peer_alive = False
        self.yielding = False
        if self.state in (SrgState.BACKUP, SrgState.HOLD) and self.healthy:
            if probe_answered_by_other:
                return self._go(SrgState.BACKUP, "peer lost but the activeness probe is "
                                "answered by another node (ICL down, no split brain)")
            return self._go(SrgState.ACTIVE, "peer lost and the activeness probe is "
                            "unanswered: taking over")
        return self.evaluate()

    def request_failover(self) -> Optional[SrgTransition]:
        """`request chassis high-availability failover services-redundancy-group N`: the
        ACTIVE node hands the SRG to its peer."""
        if self.state is not SrgState.ACTIVE:
            return None
        if not self.peer_alive or self.peer is None or not self.peer.healthy:
            raise RuntimeError(f"SRG{self.srg_id}: no healthy peer to fail over to")
        if not self.peer.ready:
            raise RuntimeError(f"SRG{self.srg_id}: the peer's cold sync is not complete: "
                               "a failover now would drop tunnels")
        self.yielding = True
        return self._go(SrgState.BACKUP, "manual failover")

    # -- the decision --------------------------------------------------------------------------

    def _rank(self) -> tuple[int, int]:
        return (self.priority, -self.node_id)

    def evaluate(self) -> Optional[SrgTransition]:
        if not self.healthy:
            return self._go(SrgState.INELIGIBLE, self.failure_reason or "unhealthy")
        if self.state is SrgState.INELIGIBLE:
            # health is back: become a candidate again, without grabbing the SRG
            return self._go(SrgState.BACKUP, "health restored")
        if not self.peer_alive or self.peer is None:
            return None                 # HOLD until heard or lost; ACTIVE stays ACTIVE
        peer = self.peer
        if self.state is SrgState.ACTIVE:
            if peer.state is SrgState.ACTIVE and self._rank() < (peer.priority, -self.peer_id):
                return self._go(SrgState.BACKUP, "both active: the peer ranks higher")
            if peer.wants_preempt and peer.healthy and peer.priority > self.priority:
                self.yielding = True
                return self._go(SrgState.BACKUP, "preempted by a higher-priority peer")
            return None
        # HOLD or BACKUP
        if peer.state is SrgState.ACTIVE:
            return self._go(SrgState.BACKUP, "the peer is active")
        if self.yielding:
            return None                 # wait for the peer to take the SRG
        peer_can = peer.healthy and peer.state is not SrgState.INELIGIBLE and not peer.yielding
        assert self.peer_id is not None
        if not peer_can or self._rank() > (peer.priority, -self.peer_id):
            return self._go(SrgState.ACTIVE, "elected: the peer is not active"
                            + ("" if peer_can else " and cannot be"))
        return self._go(SrgState.BACKUP, "the peer ranks higher")

    @property
    def wants_preempt(self) -> bool:
        """Rule 3: ask the ACTIVE peer to yield."""
        return (self.preemption and self.state is SrgState.BACKUP and self.healthy
                and self.ready and self.peer is not None and self.peer.state is SrgState.ACTIVE
                and self.priority > self.peer.priority)

    def _go(self, new: SrgState, reason: str) -> Optional[SrgTransition]:
        if new is self.state:
            return None
        old, self.state = self.state, new
        self.transitions += 1
        self.last_reason = reason
        return SrgTransition(self.srg_id, old, new, reason)
