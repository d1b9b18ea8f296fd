"""The group VPN section of `inline-ipsec demo` (groupvpn/demo.py) over loopback UDP."""
from __future__ import annotations

from inline_ipsec.groupvpn.demo import run_section


def test_demo_section() -> None:
    out: list[str] = []
    run_section(out.append)
    text = "".join(out)
    assert "all registered in" in text
    assert "6/6 packets decrypted, 6/6 with outer src/dst = inner src/dst" in text
    assert "3 pushes accepted, 6/6 packets on the new TEK" in text
    assert "127.0.0.13 cannot decrypt, the others: 2/2 delivered" in text
    assert "Total number of registered members: 2" in text
    assert "Total active tunnels: 1" in text and " No\n" in text
