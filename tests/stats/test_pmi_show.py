"""Golden text of `show security flow status` and `show security flow pmi statistics`
(docs/junos-formats.md §4.8, §4.9)."""
from __future__ import annotations

from inline_ipsec.stats.pmi import (
    FlowStatus,
    PmiStatistics,
    render_flow_status,
    render_pmi_statistics,
)

STATUS = """\
  Flow forwarding mode:
    Inet forwarding mode: flow based
    Inet6 forwarding mode: flow based
  Flow trace status
    Flow tracing status: off
  Flow power mode IPsec: Enabled
  Flow power mode IPsec QAT: Disabled
"""

PMI_QAT = """\
PMI statistics:
  PMI: Enabled
  Vectors:                                      1024
  Packets processed in vectors:
    Encrypt:                                   32768
    Decrypt:                                   32768
  Packets processed one by one:
    Encrypt:                                       0
    Decrypt:                                       2
  Anti-replay window updates per run:           1024
  QAT: Enabled, Ring depth: 64, Batch size: 16
    Requests:                                  65536
    Responses:                                 65536
    Doorbells:                                  4096
    Ring full:                                     0
    Polls:                                      2048
    Empty polls:                                2048
    Error responses:                               0
    Maximum in flight:                            32
"""


def test_flow_status() -> None:
    assert render_flow_status(FlowStatus(power_mode_ipsec=True, qat=False)) == STATUS
    off = render_flow_status(FlowStatus(power_mode_ipsec=False, qat=False))
    assert "Flow power mode IPsec: Disabled" in off


def test_pmi_statistics_with_qat() -> None:
    s = PmiStatistics(enabled=True, vectors=1024, vector_encrypt=32768, vector_decrypt=32768,
                      regular_encrypt=0, regular_decrypt=2, replay_runs=1024,
                      qat_ring_depth=64, qat_batch_size=16,
                      qat=dict(requests=65536, responses=65536, doorbells=4096, ring_full=0,
                               polls=2048, empty_polls=2048, errors=0,
                               max_in_flight=32))
    assert render_pmi_statistics(s) == PMI_QAT


def test_pmi_statistics_without_qat() -> None:
    s = PmiStatistics(enabled=False, vectors=0, vector_encrypt=0, vector_decrypt=0,
                      regular_encrypt=5, regular_decrypt=7, replay_runs=0)
    text = render_pmi_statistics(s)
    assert text.splitlines()[1] == "  PMI: Disabled"
    assert text.splitlines()[-1] == "  QAT: Disabled" and "Requests" not in text
