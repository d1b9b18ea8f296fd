"""Forwarding stage: the gateway fast path (`Gateway`), routing, outer demux, tunnel MTU and
the gateway's counters (docs/design.md §1)."""
