"""Two gateways on the demo configuration (`inline_ipsec.gateway.demo_config`)."""
from __future__ import annotations

from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.demo_config import NAT_T_VPNS, demo_config


def make_pair(hw_offload_disable: bool = False, **kw) -> tuple[Gateway, Gateway]:
    a = Gateway.from_text(demo_config("a", hw_offload_disable), name="gw-a", **kw)
    b = Gateway.from_text(demo_config("b", hw_offload_disable), name="gw-b", **kw)
    a.establish_prekeyed(udp_encap=NAT_T_VPNS)
    b.establish_prekeyed(udp_encap=NAT_T_VPNS)
    return a, b
