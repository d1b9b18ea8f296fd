"""`inline-ipsec run` for a configuration of `security group-vpn` statements: the key server
and/or the group members on UDP (GDOI, port 848 unless `--ike` says otherwise), with the
control socket for `inline-ipsec show security group-vpn ...`.

    inline-ipsec run ks.conf --ike 127.0.0.1:8480
    inline-ipsec run gm.conf --ike 127.0.0.2:8480 --ike-peer 127.0.0.1:8480

`--ike HOST:PORT` is where this node listens (default 127.0.0.1 with a free port), and for a
member `--ike-peer HOST:PORT` is where the key server listens (it replaces the configured
`server-address`, as the gateway's run maps peer addresses).
"""
from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Optional, TextIO

from ..config import load_config_file
from ..io.control_socket import ControlServer
from .check import check_lines
from ..ike.states import GroupMemberState
from .member import GroupMember
from .server import KeyServer
from .show import show
from .udp import GdoiUdpEndpoint


def group_vpn_mode(path: str) -> Optional[str]:
    """"only": group VPN statements and no `security ipsec vpn` (this runner runs it);
    "mixed": both (the gateway runs the IPsec VPNs and says the group VPN is not run);
    None: no group VPN."""
    config = load_config_file(path)
    if config.group_vpn is None:
        return None
    return "mixed" if config.ipsec_vpns else "only"


MIXED_NOTE = ("not carried out: security group-vpn (with security ipsec vpn statements in "
              "the same configuration; run the group VPN from a configuration of its own)\n")


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def run_group_vpn(path: str, *, control_path: str, duration: Optional[float] = None,
                  listen: str = "127.0.0.1:0", server: Optional[str] = None,
                  out: TextIO = sys.stdout, install_signals: bool = True) -> int:
    gv = load_config_file(path).group_vpn
    return asyncio.run(_run(gv, control_path, duration, _hostport(listen),
                            _hostport(server) if server else None, out, install_signals))


async def _run(gv, control_path: str, duration: Optional[float], listen: tuple[str, int],
               server_addr: Optional[tuple[str, int]], out: TextIO,
               install_signals: bool) -> int:
    endpoints: list[GdoiUdpEndpoint] = []
    ks: Optional[KeyServer] = None
    members: list[GroupMember] = []
    host, port = listen
    if gv.is_server:
        groups, ike = gv.server_groups(), gv.server_ike()
        ep = await GdoiUdpEndpoint.create(
            lambda addr: KeyServer(groups, ike, addr, now=time.time()), host, port)
        endpoints.append(ep)
        ks = ep.node
        port = 0          # co-located members take free ports
    for vpn in (gv.member_vpns() if gv.is_member else []):
        if server_addr is not None:
            vpn.server = server_addr
        ep = await GdoiUdpEndpoint.create(lambda addr, v=vpn: GroupMember(v, addr), host, port)
        endpoints.append(ep)
        members.append(ep.node)

    def handler(command: str) -> str:
        return show(command, server=ks, members=members, now=time.time())

    control = ControlServer(control_path, handler)
    if install_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: control.stop())
    out.write("inline-ipsec group VPN running: "
              + (f"key server on udp {endpoints[0].address[0]}:{endpoints[0].address[1]}, "
                 f"{len(ks.groups)} groups" if ks is not None else "")
              + (", " if ks is not None and members else "")
              + (f"{len(members)} member VPNs" if members else "") + "\n"
              f"control socket: {control_path}\n")
    for line in check_lines(gv):
        if "not carried out" in line:
            out.write(line.strip() + "\n")
    for m in members:
        m.start(time.time())
    for ep in endpoints:
        ep.flush()
    out.flush()
    start = time.monotonic()
    reported: set[str] = set()
    try:
        while not control.stopped:
            if duration is not None and time.monotonic() - start >= duration:
                break
            control.poll(0.002)
            for m in members:
                if m.state == GroupMemberState.REGISTERED and m.vpn.name not in reported:
                    reported.add(m.vpn.name)
                    out.write(f"member {m.vpn.name}: registered with group {m.group_id} "
                              f"after {time.monotonic() - start:.2f} s, "
                              f"{len(m.group_sas())} group SAs\n")
                    out.flush()
            await asyncio.sleep(0.03)
    finally:
        control.close()
        for ep in endpoints:
            ep.close()
    return 0
