"""Who answers for a floating address: the model's stand-in for the routes an MNHA node
advertises (routing mode) or the gratuitous ARP it sends (switching mode).

The active node of an SRG claims the SRG's virtual IPs; a node that yields releases them. The
network delivers packets for a floating address to its owner, and the activeness probe of a
backup node (docs/mnha.md §2, split-brain prevention) is answered by whichever other node owns
the address. One `FloatingAddresses` object stands for the network both nodes sit on.
"""
from __future__ import annotations

from typing import Iterable, Optional

__all__ = ["FloatingAddresses"]


class FloatingAddresses:
    def __init__(self) -> None:
        self._owner: dict[str, int] = {}
        #: (address, node id or None) in the order ownership changed
        self.history: list[tuple[str, Optional[int]]] = []

    def claim(self, node_id: int, addresses: Iterable[str]) -> None:
        for addr in addresses:
            if self._owner.get(addr) != node_id:
                self._owner[addr] = node_id
                self.history.append((addr, node_id))

    def release(self, node_id: int, addresses: Iterable[str]) -> None:
        for addr in addresses:
            if self._owner.get(addr) == node_id:
                del self._owner[addr]
                self.history.append((addr, None))

    def owner(self, address: str) -> Optional[int]:
        return self._owner.get(address)

    def answered_by_other(self, node_id: int, addresses: Iterable[str]) -> bool:
        """The activeness probe: does a node other than `node_id` answer for any address?"""
        return any(self._owner.get(a) not in (None, node_id) for a in addresses)

    def fail(self, node_id: int) -> None:
        """A node died: its routes are withdrawn, it answers for nothing."""
        for addr, owner in list(self._owner.items()):
            if owner == node_id:
                del self._owner[addr]
                self.history.append((addr, None))
