"""A burst call reads a `Burst`'s `count` and cached view from their slots, under the guard of
the type and its version tag (_pfe_core/burst_slots.h): whatever the class or the object,
the call honours `count` exactly as Python's attribute lookup would give it."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from _pfe_core import Status
from helpers import inner_packet, spec
from inline_ipsec import Burst, Pfe
from inline_ipsec.dataplane.bench import GatewayPairWorkload
from inline_ipsec.pfe import Verdict


@pytest.fixture
def engine():
    pfe = Pfe()
    s = spec(spi=0x2201, bits=256)
    return pfe, pfe.add_outbound(s)


def _burst(out: int, n: int = 4) -> tuple[Burst, list[bytes]]:
    inner = [inner_packet(size=60 + i) for i in range(n)]
    return Burst.from_packets(inner, out), inner


def test_count_is_read_again_on_every_call(engine) -> None:
    pfe, out = engine
    burst, inner = _burst(out)
    assert pfe.encrypt_burst(burst) == 4              # the first call learns the layout
    burst.load(inner, out)
    burst.count = 2
    assert pfe.encrypt_burst(burst) == 2
    assert burst.packets()[2:] == []
    assert burst.length[2] == len(inner[2])           # slots past `count` left alone
    burst.count = 0
    assert pfe.encrypt_burst(burst) == 0


@pytest.mark.parametrize("count, error", [(-1, ValueError), (5, ValueError),
                                          ("4", TypeError), (2 ** 70, OverflowError),
                                          (None, TypeError)])
def test_a_bad_count_is_a_clear_error_on_the_slot_path(engine, count, error) -> None:
    pfe, out = engine
    burst, inner = _burst(out)
    pfe.encrypt_burst(burst)
    burst.load(inner, out)
    burst.count = count
    with pytest.raises(error):
        pfe.encrypt_burst(burst)
    assert [int(s) for s in burst.length[:4]] == [len(p) for p in inner]   # nothing touched


def test_a_class_attribute_changed_after_learning_is_honoured(engine) -> None:
    pfe, out = engine
    burst, inner = _burst(out)
    pfe.encrypt_burst(burst)
    burst.load(inner, out)
    slot = Burst.__dict__["count"]
    try:
        # the slot still holds 4; Python's lookup now gives 1, and so must the call
        Burst.count = property(lambda self: 1)  # type: ignore[assignment]
        assert pfe.encrypt_burst(burst) == 1
    finally:
        Burst.count = slot  # type: ignore[misc]
    assert burst.count == 4
    assert list(burst.status[:2]) == [Status.OK, Status.OK]


def test_a_subclass_and_a_look_alike_take_the_attribute_path(engine) -> None:
    pfe, out = engine

    class Partial(Burst):
        @property                                          # type: ignore[override]
        def count(self) -> int:
            return 3

        @count.setter
        def count(self, value: int) -> None:
            pass

    inner = [inner_packet(size=70 + i) for i in range(4)]
    sub = Partial(4)
    sub.load(inner, out)
    assert pfe.encrypt_burst(sub) == 3
    plain, _ = _burst(out)
    assert pfe.encrypt_burst(plain) == 4                   # Burst's own layout still works
    assert pfe.encrypt_burst(sub) == 3

    real, _ = _burst(out, 2)
    alike = SimpleNamespace(data=real.data, offset=real.offset, length=real.length,
                            sa=real.sa, status=real.status, count=2, kernel_view=None)
    assert pfe.encrypt_burst(alike) == 2


def test_an_unset_view_slot_is_an_attribute_error(engine) -> None:
    pfe, out = engine
    burst, _ = _burst(out)
    pfe.encrypt_burst(burst)
    del burst.kernel_view
    with pytest.raises(AttributeError):
        pfe.encrypt_burst(burst)


def test_the_pipeline_honours_count_on_the_slot_path() -> None:
    w = GatewayPairWorkload(burst=8, bursts=1)
    burst = w.bursts[0]
    assert w.a.outbound_burst(burst) is not None         # learns the layout
    w.restore()
    burst.count = 3
    w.a.outbound_burst(burst)
    clean = w.pristine[0]
    assert (burst.verdict[:3] == Verdict.WIRE).all()
    assert (burst.length[:3] > clean.length[:3]).all()        # encrypted
    assert (burst.length[3:8] == clean.length[3:8]).all()     # left as they came
    assert (burst.data[3:8] == clean.data[3:8]).all()
    burst.count = -1
    with pytest.raises(ValueError):
        w.a.outbound_burst(burst)
