"""A private strongSwan charon for interop tests.

charon runs in the foreground inside `unshare -m` with a private tmpfs on /run (its pid file
path, /var/run/charon.pid, is compiled in), reads a test-private strongswan.conf through
STRONGSWAN_CONF, listens on loopback on non-default IKE/NAT-T ports, and serves VICI on a
private socket that swanctl is pointed at with --uri. SAs go to kernel-libipsec (userspace
ESP on a TUN device); on loopback the traffic selectors are multicast test prefixes, so no route
is installed and no real traffic is captured. With `netns=` charon runs in that network
namespace (`ip netns exec`) instead, usually on the standard ports and with
`install_routes=True`, so that its TUN route for the peer's TS carries real traffic there
(see traffic_harness.py).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = shutil.which("swanctl") or "/usr/sbin/swanctl"

PLUGINS = ("random nonce openssl pem pkcs1 pkcs8 x509 pubkey revocation constraints kdf "
           "hmac sha1 sha2 aes gcm gmp vici kernel-libipsec kernel-netlink socket-default")

STRONGSWAN_CONF = """\
charon {{
    port = {port}
    port_nat_t = {port_nat_t}
    install_routes = {install_routes}
    install_virtual_ip = no
    retransmit_timeout = 2
    retransmit_tries = 2
    {extra}
    load = {plugins}
    filelog {{
        testlog {{
            path = {log}
            default = 1
            ike = 2
            cfg = 2
            knl = 1
            chd = 4
            enc = 1
            net = 2
            flush_line = yes
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
    plugins {{
        vici {{
            socket = {vici}
        }}
    }}
}}
swanctl {{
    load = pem pkcs1 pkcs8 x509 pubkey revocation constraints openssl random
    socket = {vici}
}}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    return os.path.exists(CHARON) and os.access(CHARON, os.X_OK)


class Charon:
    def __init__(self, workdir: Path, extra: str = "", *, netns: Optional[str] = None,
                 port: Optional[int] = None, port_nat_t: Optional[int] = None,
                 install_routes: bool = False) -> None:
        self.dir = workdir
        #: network namespace charon runs in (`ip netns exec`), None: the test's own.
        self.netns = netns
        self.port = port or free_udp_port()
        self.port_nat_t = port_nat_t or free_udp_port()
        self.vici = f"unix://{workdir}/charon.vici"
        self.log = workdir / "charon.log"
        self.conf = workdir / "strongswan.conf"
        self.proc: Optional[subprocess.Popen] = None
        #: swanctl's credential folders (private/, x509/, x509ca/).
        self.swanctl_dir = workdir / "swanctl"
        for sub in ("private", "x509", "x509ca"):
            (self.swanctl_dir / sub).mkdir(parents=True, exist_ok=True)
        # swanctl looks for credentials next to the file given with --file.
        self.swanctl_conf = self.swanctl_dir / "swanctl.conf"
        self.conf.write_text(STRONGSWAN_CONF.format(
            port=self.port, port_nat_t=self.port_nat_t, plugins=PLUGINS, log=self.log,
            vici=self.vici, extra=extra, install_routes="yes" if install_routes else "no"))

    @property
    def env(self) -> dict:
        return dict(os.environ, STRONGSWAN_CONF=str(self.conf),
                    SWANCTL_DIR=str(self.swanctl_dir))

    def start(self) -> None:
        script = f"mount -t tmpfs tmpfs /run && exec {CHARON}"
        self._stdout = open(self.dir / "charon.stdout", "wb")  # noqa: SIM115 - closed in stop()
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            [*prefix, "unshare", "-m", "--propagation", "private", "sh", "-c", script],
            env=self.env, stdout=self._stdout, stderr=subprocess.STDOUT)
        sock = Path(self.vici[len("unix://"):])
        deadline = time.monotonic() + 15
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("charon did not start:\n" + self.logs())
            time.sleep(0.05)

    def swanctl(self, *args: str, timeout: float = 20) -> str:
        res = subprocess.run([SWANCTL, *args, "--uri", self.vici], env=self.env,
                             capture_output=True, text=True, timeout=timeout, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"swanctl {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
                               f"\n--- charon log ---\n{self.logs()}")
        return res.stdout

    def load(self, swanctl_conf: str) -> None:
        self.swanctl_conf.write_text(swanctl_conf)
        self.swanctl("--load-all", "--noprompt", "--file", str(self.swanctl_conf))

    def initiate(self, child: str, timeout: int = 10) -> subprocess.Popen:
        """Start `swanctl --initiate` in the background (it blocks until done)."""
        return subprocess.Popen([SWANCTL, "--initiate", "--child", child, "--timeout",
                                 str(timeout), "--uri", self.vici], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def list_sas(self) -> str:
        return self.swanctl("--list-sas")

    def logs(self) -> str:
        try:
            return self.log.read_text()[-20000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_stdout", None) is not None:
            self._stdout.close()
            self._stdout = None


def child_keys_from_log(log: str) -> list[dict[str, str]]:
    """Child SA keys charon derived, from its CHD level-4 hex dumps (keymat_v2.c):
    ``encryption initiator key => 20 bytes @ 0x...`` followed by offset/hex lines."""
    found: list[dict[str, str]] = []
    current: Optional[dict[str, str]] = None
    name = None
    for line in log.splitlines():
        m = re.search(r"\[CHD\] (encryption|integrity) (initiator|responder) key => \d+ bytes",
                      line)
        if m:
            name = f"{m.group(1)}_{m.group(2)}"
            if current is None or name in current:
                current = {}
                found.append(current)
            current[name] = ""
            continue
        m = re.search(r"\[CHD\]\s+\d+: ((?:[0-9A-F]{2} ?)+)", line)
        if m and name is not None and current is not None:
            current[name] += m.group(1).replace(" ", "").lower()
            continue
        name = None
        m = re.search(r"\[CHD\]\s+SPI 0x([0-9a-f]{8})", line)
        if m and current is not None:
            current["spis"] = current.get("spis", "") + m.group(1) + " "
    return found
