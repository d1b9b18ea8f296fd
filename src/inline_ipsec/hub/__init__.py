"""Hub-and-spoke on the CPU path: NHTB, AutoVPN and ADVPN shortcuts (docs/advpn.md)."""
