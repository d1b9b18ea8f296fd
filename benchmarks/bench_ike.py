"""IKEv2 control-plane benchmarks (pytest-benchmark; figures in `benchmark.extra_info`, never
asserted as times):

- tunnel establishments per second, both ends in one process, PSK, DH group 19 (ECP-256) and
  group 31 (Curve25519): IKE_SA_INIT + IKE_AUTH with the first child SA (RFC 7296 §1.2), in
  memory. Target >= 1000 tunnels/s (group 19) on one core. Two figures: the bare IKE sessions
  (`IkeV2Session` pairs) and the whole gateway path (Junos configuration -> `IkeControl` ->
  `Gateway.handle_ike_event` -> distributor -> PFE), both ends in memory (`IkePump`);
- scale: two gateways over loopback UDP bring up 2000 tunnels (4000 SAs, the PFE full) plus
  one more, which lands on the CPU with the reason shown. Target under 5 s.
- IKEv1 (RFC 2409): Main Mode PSK + Quick Mode establishments per second, both ends in one
  process (`IkeV1Session` pairs), DH group 19 (target >= 300/s) and, for comparison, group 14
  (MODP-2048 by Python's `pow()`, `inline_ipsec.ike.modp`); 2000 IKEv1 tunnels between
  two gateways over loopback UDP (`v1-only` IKE gateways, Main Mode + Quick Mode through
  `IkeControl` to the distributor; target under 15 s), and the same between two bare
  `IkeV1Manager` endpoints (the IKE layer alone).

    python -m pytest benchmarks/bench_ike.py --benchmark-only
"""
from __future__ import annotations

import time

import pytest

from inline_ipsec.gateway import Gateway
from inline_ipsec.gateway.demo_config import scale_config
from inline_ipsec.gateway.ike_link import IkePump, IkeUdpPort, pair_controls, run_udp
from inline_ipsec.ike import ChildConfig, Identity, IkeConfig, IkeV2Session

GROUPS = {19: "ecp256", 31: "x25519"}
BATCH = 100


def _configs(group: int) -> tuple[IkeConfig, IkeConfig]:
    prop = (f"aes128gcm16-prfsha256-{GROUPS[group]}",)
    child = [ChildConfig(proposals=("aes256gcm16",))]
    common = dict(proposals=prop, psk=b"benchmark pre-shared key", children=child)
    return (IkeConfig(local_id=Identity.parse("@i.bench"), remote_id=Identity.parse("@r.bench"),
                      **common),
            IkeConfig(local_id=Identity.parse("@r.bench"), remote_id=Identity.parse("@i.bench"),
                      **common))


def establish(icfg: IkeConfig, rcfg: IkeConfig) -> int:
    """One IKE SA with its first child SA, both ends in memory; returns datagrams moved."""
    i = IkeV2Session(icfg, initiator=True, local_addr=("192.0.2.1", 500),
                     remote_addr=("198.51.100.1", 500))
    r = IkeV2Session(rcfg, initiator=False, local_addr=("198.51.100.1", 500),
                     remote_addr=("192.0.2.1", 500))
    i.connect(0.0)
    moved = 0
    while True:
        out = i.datagrams_to_send(0.0)
        for d, _ in out:
            r.receive_datagram(d, ("192.0.2.1", 500), 0.0)
        back = r.datagrams_to_send(0.0)
        for d, _ in back:
            i.receive_datagram(d, ("198.51.100.1", 500), 0.0)
        moved += len(out) + len(back)
        if not out and not back:
            break
    assert i.state == r.state == "established" and i.children and r.children
    return moved


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_ike_establishments_per_second(benchmark, group: int) -> None:
    icfg, rcfg = _configs(group)

    def batch() -> None:
        for _ in range(BATCH):
            establish(icfg, rcfg)

    benchmark.pedantic(batch, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: a smoke run
        return
    rate = BATCH / benchmark.stats.stats.median
    target = 1000 if group == 19 else None
    benchmark.extra_info.update(group=group, tunnels_per_second=round(rate, 1), target=target,
                                meets_target=rate >= target if target else None)
    print(f"\nIKEv2 PSK, DH group {group}: {rate:,.0f} tunnels/s (both ends, one core)")


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_gateway_ike_establishments_per_second(benchmark, group: int) -> None:
    """The whole path: configuration -> IKE -> distributor -> PFE, both gateways in memory."""
    n = 200
    texts = scale_config("a", n, group), scale_config("b", n, group)
    from inline_ipsec.config import load_config
    configs = [load_config(t) for t in texts]
    elapsed = []

    def once() -> None:
        a, b = Gateway(configs[0], name="a"), Gateway(configs[1], name="b")
        ia, ib = pair_controls(a, b, ("192.0.2.1", 500, 4500), ("198.51.100.1", 500, 4500))
        pump = IkePump(ia, ib)
        t0 = time.perf_counter()
        ia.start(0.0)
        ib.start(0.0)
        pump.run(0.0, max_steps=1000)
        pump.advance(5.0)
        elapsed.append(time.perf_counter() - t0)
        assert ia.up() and ib.up() and len(a.tunnel_names()) == n

    benchmark.pedantic(once, rounds=3, iterations=1)
    rate = n / min(elapsed)
    benchmark.extra_info.update(group=group, tunnels=n, tunnels_per_second=round(rate, 1))
    print(f"\ngateways in memory, DH group {group}: {rate:,.0f} tunnels/s "
          f"(configuration to PFE, both ends)")


def scale_up(tunnels: int = 2001, timeout: float = 60.0, version: str = "v2-only") -> dict:
    """Two gateways over loopback UDP bring up `tunnels` IKEv2 (or, `version="v1-only"`,
    IKEv1 Main Mode + Quick Mode) tunnels; returns facts and timings (configuration parsing
    is not part of `seconds`)."""
    a = Gateway.from_text(scale_config("a", tunnels, version=version), name="a")
    b = Gateway.from_text(scale_config("b", tunnels, version=version), name="b")
    with IkeUdpPort("127.0.0.1") as pa, IkeUdpPort("127.0.0.1") as pb:
        ia, ib = pair_controls(a, b, pa.transport, pb.transport)
        pa.attach(ia)
        pb.attach(ib)
        t0 = time.perf_counter()
        ia.start(time.monotonic())
        ib.start(time.monotonic())
        ok = run_udp([pa, pb], lambda: ia.up() and ib.up(), timeout)
        seconds = time.perf_counter() - t0
        datagrams = pa.sent + pb.sent
    return dict(ok=ok, seconds=seconds, a=a, b=b, datagrams=datagrams)


def test_scale_2000_tunnels_over_udp(benchmark) -> None:
    result = {}

    def once() -> None:
        result.update(scale_up())

    benchmark.pedantic(once, rounds=1, iterations=1)
    a = result["a"]
    cpu = [r for r in a.distributor.tunnels() if not r.offloaded]
    benchmark.extra_info.update(
        tunnels=len(a.tunnel_names()), seconds=round(result["seconds"], 2), target_seconds=5,
        pfe_tunnels=a.distributor.pfe_tunnels_in_use, pfe_sas=a.distributor.pfe_sas_in_use,
        cpu_tunnel=cpu[0].name if cpu else None,
        cpu_reasons=list(cpu[0].placement.reasons) if cpu else [],
        datagrams=result["datagrams"])
    print(f"\n2001 tunnels over loopback UDP in {result['seconds']:.1f} s; PFE "
          f"{a.distributor.pfe_tunnels_in_use} tunnels / {a.distributor.pfe_sas_in_use} SAs; "
          f"{cpu[0].name if cpu else '-'} on the CPU: "
          f"{'; '.join(cpu[0].placement.reasons) if cpu else '-'}")


# ---- IKEv1 ------------------------------------------------------------------------------------

def test_ikev1_scale_2000_tunnels_between_gateways(benchmark) -> None:
    result: dict = {}

    def once() -> None:
        result.update(scale_up(2000, version="v1-only"))

    benchmark.pedantic(once, rounds=1, iterations=1)
    a = result["a"]
    assert result["ok"] and len(a.tunnel_names()) == 2000
    benchmark.extra_info.update(tunnels=2000, seconds=round(result["seconds"], 2),
                                target_seconds=15, datagrams=result["datagrams"],
                                pfe_tunnels=a.distributor.pfe_tunnels_in_use)
    print(f"\n2000 IKEv1 tunnels between two gateways over loopback UDP in "
          f"{result['seconds']:.1f} s ({result['datagrams']} datagrams)")


def _v1_configs(group: int):
    from inline_ipsec.ike.v1 import IkeV1Config, Phase1Proposal
    prop = [Phase1Proposal("pre-shared-keys", "aes-128-cbc", "sha-256", group)]
    common = dict(proposals=prop, psk=b"benchmark pre-shared key",
                  children=[ChildConfig(proposals=("aes256gcm16",))])
    return (IkeV1Config(local_id=Identity.parse("@i.bench"),
                        remote_id=Identity.parse("@r.bench"), **common),
            IkeV1Config(local_id=Identity.parse("@r.bench"),
                        remote_id=Identity.parse("@i.bench"), **common))


def establish_v1(icfg, rcfg) -> int:
    """Main Mode (6 messages) and one Quick Mode (3), both ends in memory; returns datagrams
    moved."""
    from inline_ipsec.ike.v1 import IkeV1Session
    i = IkeV1Session(icfg, initiator=True, local_addr=("192.0.2.1", 500),
                     remote_addr=("198.51.100.1", 500))
    r = IkeV1Session(rcfg, initiator=False, local_addr=("198.51.100.1", 500),
                     remote_addr=("192.0.2.1", 500))
    i.connect(0.0)
    moved = 0
    while True:
        out = i.datagrams_to_send(0.0)
        for d, _ in out:
            r.receive_datagram(d, ("192.0.2.1", 500), 0.0)
        back = r.datagrams_to_send(0.0)
        for d, _ in back:
            i.receive_datagram(d, ("198.51.100.1", 500), 0.0)
        moved += len(out) + len(back)
        if not out and not back:
            break
    assert i.state == r.state == "established" and i.children and r.children
    return moved


@pytest.mark.parametrize("group", [19, 14])
def test_ikev1_establishments_per_second(benchmark, group: int) -> None:
    icfg, rcfg = _v1_configs(group)
    n = BATCH if group == 19 else 20
    assert establish_v1(icfg, rcfg) == 9

    def batch() -> None:
        for _ in range(n):
            establish_v1(icfg, rcfg)

    benchmark.pedantic(batch, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: a smoke run
        return
    rate = n / benchmark.stats.stats.median
    benchmark.extra_info.update(group=group, tunnels_per_second=round(rate, 1),
                                target=300 if group == 19 else None,
                                meets_target=rate >= 300 if group == 19 else None)
    print(f"\nIKEv1 Main Mode PSK + Quick Mode, DH group {group}: {rate:,.0f} tunnels/s "
          "(both ends, one core)")


def scale_up_v1(tunnels: int = 2000, timeout: float = 60.0) -> dict:
    """`tunnels` IKEv1 tunnels (Main Mode + Quick Mode) between two endpoints on loopback UDP,
    connected in waves of 100 so the sockets' buffers are not overrun."""
    import asyncio

    from inline_ipsec.ike import ChildSaUp
    from inline_ipsec.ike.v1.udp import create_endpoint

    from dataclasses import replace

    async def main() -> dict:
        icfg, rcfg = _v1_configs(19)
        rcfg.remote_id = None           # tunnels told apart by their identities
        configs = [replace(icfg, local_id=Identity.parse(f"@t{n}.i.bench"))
                   for n in range(tunnels)]
        resp = await create_endpoint("127.0.0.1", 0, 0, lookup=lambda addr: rcfg)
        init = await create_endpoint("127.0.0.1", 0, 0)
        resp.manager.max_half_open = 2 * tunnels
        up = 0
        t0 = time.perf_counter()
        try:
            async def until(count: int) -> None:
                nonlocal up
                while up < count:
                    _, event = await init.next_event(timeout)
                    up += isinstance(event, ChildSaUp)
            for k in range(tunnels):
                init.connect(configs[k], ("127.0.0.1", resp.ike_port))
                if k % 100 == 99:
                    await until(k + 1 - 100)
            await until(tunnels)
            seconds = time.perf_counter() - t0
            return dict(ok=True, seconds=seconds,
                        established=sum(s.state == "established" for s in resp.sessions),
                        sessions=len(init.sessions))
        finally:
            init.close()
            resp.close()
    return asyncio.run(main())


def test_ikev1_scale_2000_tunnels_over_udp(benchmark) -> None:
    result: dict = {}

    def once() -> None:
        result.update(scale_up_v1())

    benchmark.pedantic(once, rounds=1, iterations=1)
    assert result["established"] == result["sessions"] == 2000
    benchmark.extra_info.update(tunnels=2000, seconds=round(result["seconds"], 2),
                                target_seconds=15)
    print(f"\n2000 IKEv1 tunnels (IkeV1Manager endpoints) over loopback UDP in "
          f"{result['seconds']:.1f} s")
