"""A UDP stream from a host namespace to another and back, counted at each receiver."""
from __future__ import annotations

import sys

from lab import Lab

RECEIVER = r"""
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[3]))
n = 0
print("ready", flush=True)
try:
    while True:
        data, addr = s.recvfrom(65535)
        if data.startswith(b"probe-"):
            n += 1
except socket.timeout:
    pass
print(n, flush=True)
"""

SENDER = r"""
import socket, sys, time
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"probe-%d-" % i + bytes(int(sys.argv[4])), (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.005)
"""


def udp_stream(lab: Lab, src_ns: str, dst_ns: str, dst: str, count: int = 20,
               size: int = 200, port: int = 40001) -> int:
    """Send `count` datagrams from `src_ns` to `dst` in `dst_ns`; how many arrived."""
    import subprocess
    rx = lab.popen(dst_ns, [sys.executable, "-c", RECEIVER, dst, str(port), "1.5"],
                   stdout=subprocess.PIPE, text=True)
    assert rx.stdout.readline().strip() == "ready"
    lab.run(src_ns, sys.executable, "-c", SENDER, dst, str(port), str(count), str(size))
    out, _ = rx.communicate(timeout=30)
    return int(out.strip().splitlines()[-1])


def udp_both_ways(lab: Lab, left: str, right: str, count: int = 20) -> None:
    got = udp_stream(lab, "hl", "hr", right, count)
    assert got == count, f"hl -> hr: {got} of {count} UDP datagrams arrived"
    got = udp_stream(lab, "hr", "hl", left, count)
    assert got == count, f"hr -> hl: {got} of {count} UDP datagrams arrived"
