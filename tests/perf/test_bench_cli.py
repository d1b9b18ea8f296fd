"""`inline-ipsec bench`: the JSON schema, the table, the plot and the gate from the CLI."""
from __future__ import annotations

import json
import statistics

import pytest

from inline_ipsec.cli import main
from helpers import missing
from inline_ipsec.perf import cli as cli_module
from inline_ipsec.pfe import IPSEC_MB_ARCH_ENV, PFE_BACKENDS, ipsec_mb_status

TINY = ["bench", "--sizes", "64", "imix", "--ciphers", "aes-gcm-128", "--duration", "0.02",
        "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "result.json"
    assert main(TINY + ["--json", str(path)]) == 0
    return path


def test_json_schema(tiny_result):
    data = json.loads(tiny_result.read_text())
    assert data["schema"] == "inline-ipsec-bench/2" and data["confidence"] == 0.99
    for key in ("cpu", "cores", "python", "openssl", "backends", "numpy", "cryptography"):
        assert key in data["machine"]
    assert data["config"]["sizes"] == [64, "imix"] and data["config"]["burst"] == 32
    assert data["config"]["tunnels"] == 1 and all(f["tunnels"] == 1 for f in data["figures"])
    figures = data["figures"]
    fields = {"path", "backend", "cipher", "direction", "size", "burst", "pps", "gbps",
              "rounds", "ratio", "threads", "efficiency", "per_thread", "key", "ratio_low",
              "ratio_high", "samples", "gil_held", "gil_bound", "core_rtt_ns",
              "floor_ratio", "floor_samples", "floor_call_ns", "raw_threads_ratio",
              "raw_threads_samples", "tunnels"}
    assert all(set(f) == fields for f in figures)
    # every PFE backend and the CPU engine, encrypt and decrypt, each with a raw reference
    for backend in PFE_BACKENDS:
        for direction in ("encrypt", "decrypt"):
            for size in (64, "imix"):
                pfe = [f for f in figures if f["key"] ==
                       f"pfe/{backend}/aes-gcm-128/{direction}/{size}"]
                raw = [f for f in figures if f["key"] ==
                       f"raw/{backend}/aes-gcm-128/{direction}/{size}"]
                assert len(pfe) == len(raw) == 1
                f = pfe[0]
                # the ratio is the median of the per-pair ratios, inside its interval
                assert len(f["samples"]) == f["rounds"] >= 15
                assert f["ratio"] == pytest.approx(statistics.median(f["samples"]), abs=1e-5)
                assert f["ratio_low"] <= f["ratio"] <= f["ratio_high"]
                assert 0 < f["ratio"] < 2 and f["gbps"] > 0
                assert raw[0]["ratio"] is None and raw[0]["pps"] > 0
    cpu = [f for f in figures if f["path"] == "cpu"]
    assert cpu and all(f["backend"] == "cryptography" and
                       f["key"].startswith("cpu/cryptography/") for f in cpu)


def test_table_printed(capsys, tiny_result):
    assert main(TINY + ["--paths", "pfe", "--backends", "openssl", "--directions",
                        "encrypt"]) == 0
    out = capsys.readouterr().out
    assert "vs raw" in out and "\npfe " in out and "openssl" in out and "\ncpu " not in out


def test_gate_from_the_cli(tmp_path, tiny_result, capsys):
    assert main(["bench", "--compare", str(tiny_result), "--baseline", str(tiny_result)]) == 0
    slower = json.loads(tiny_result.read_text())
    for f in slower["figures"]:
        if f["ratio"] is not None:  # a synthetic 2x slowdown of every engine
            for name in ("ratio", "ratio_low", "ratio_high"):
                f[name] /= 2
            f["samples"] = [r / 2 for r in f["samples"]]
    path = tmp_path / "slower.json"
    path.write_text(json.dumps(slower))
    assert main(["bench", "--compare", str(path), "--baseline", str(tiny_result),
                 "--max-regression", "35"]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_gate_errors_are_clear(tmp_path, capsys):
    assert main(["bench", "--compare", str(tmp_path / "nope.json"), "--baseline",
                 str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["bench", "--compare", str(tmp_path / "x.json")]) == 2


def test_plot(tmp_path, tiny_result):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        from helpers import missing
        missing("matplotlib is not installed (pip install '.[test]')")
    from inline_ipsec.perf import report
    from inline_ipsec.perf.suite import BenchResult, Figure
    data = json.loads(tiny_result.read_text())
    result = BenchResult(data["config"], data["machine"], data["version"], data["started"],
                         data["seconds"],
                         [Figure(**{k: v for k, v in f.items() if k != "key"})
                          for f in data["figures"]])
    png = tmp_path / "plot.png"
    assert report.plot(result, str(png)) is None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| pfe | openssl |" in report.markdown(result)


@pytest.mark.parametrize("args", [["--sizes", "12"], ["--ciphers", "aes-cbc-128"],
                                  ["--max-regression", "200"], ["--ipsec-mb-arch", "avx3"]])
def test_bad_options_exit_2(args):
    with pytest.raises(SystemExit) as exc:
        main(["bench"] + args)
    assert exc.value.code == 2


@pytest.mark.parametrize("tunnels", ["0", "1025"])
def test_tunnels_out_of_range_exit_2(tunnels, capsys):
    assert main(["bench", "--tunnels", tunnels, "--quick"]) == 2
    assert "tunnels must be 1..1024" in capsys.readouterr().err


def test_interleaved_tunnels_are_their_own_figures(tmp_path, capsys):
    """--tunnels 3: each burst's packets belong to three SA pairs in turn; the figures say so
    in their key (for the gate) and in the table's header."""
    path = tmp_path / "t3.json"
    assert main(["bench", "--sizes", "64", "--ciphers", "aes-gcm-128", "--backends", "openssl",
                 "--duration", "0.02", "--threads", "1", "--tunnels", "3", "--json",
                 str(path)]) == 0
    out = capsys.readouterr().out
    assert "the packets of 3 tunnels interleaved in each" in out
    data = json.loads(path.read_text())
    assert data["config"]["tunnels"] == 3
    keys = {f["key"]: f for f in data["figures"]}
    for direction in ("encrypt", "decrypt"):
        assert keys[f"pfe/openssl/aes-gcm-128/{direction}/64/n3"]["tunnels"] == 3
        assert keys[f"cpu/cryptography/aes-gcm-128/{direction}/64/n3"]["ratio"] > 0
        assert keys[f"raw/openssl/aes-gcm-128/{direction}/64"]["tunnels"] == 1


def test_a_left_out_cpu_engine_is_reported(capsys):
    """The CPU engine's reference is the OpenSSL loop: without it, the run says why the CPU
    engine has no figure instead of leaving it out silently."""
    if "ipsec-mb" not in PFE_BACKENDS:
        missing(f"the ipsec-mb backend is not built: {ipsec_mb_status()[1]}")
    assert main(["bench", "--sizes", "64", "--ciphers", "aes-gcm-128", "--directions",
                 "encrypt", "--backends", "ipsec-mb", "--duration", "0.02", "--threads",
                 "1"]) == 0
    out = capsys.readouterr().out
    assert "\ncpu " not in out
    assert ("cpu: not measured: the CPU engine's figures are measured against the openssl raw "
            "loop, which --backends left out") in out


def test_end_to_end_through_gateways(tmp_path):
    path = tmp_path / "e2e.json"
    assert main(["bench", "--sizes", "64", "--ciphers", "aes-gcm-256", "--directions",
                 "encrypt", "--backends", "openssl", "--duration", "0.02", "--threads", "1",
                 "--e2e", "--json", str(path)]) == 0
    figures = {f["key"]: f for f in json.loads(path.read_text())["figures"]}
    pfe = figures["gateway-pfe/openssl/aes-gcm-256/both/64"]
    cpu = figures["gateway-cpu/cryptography/aes-cbc-256/both/64"]
    assert pfe["pps"] > 0 and cpu["pps"] > 0 and 0 < pfe["ratio"] < 1


def test_thread_figure_lists_each_anchored_thread(capsys):
    assert main(["bench", "--sizes", "64", "--ciphers", "aes-gcm-128", "--directions",
                 "encrypt", "--backends", "openssl", "--paths", "pfe", "--duration", "0.02",
                 "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 PFEs in 2 threads" in out
    assert "Anchorship: Thread 0" in out and "Anchorship: Thread 1" in out


def test_a_pinned_ipsec_mb_instruction_set_is_measured_on_both_sides_and_named(monkeypatch,
                                                                              capsys):
    """--ipsec-mb-arch pins the PFE's and the raw loop's code path alike, and the table's header
    names it; a set this CPU cannot run is an error before anything is measured."""
    if "ipsec-mb" not in PFE_BACKENDS:
        missing("built without intel-ipsec-mb (libipsec-mb-dev)")
    monkeypatch.setenv(IPSEC_MB_ARCH_ENV, "auto")       # restored after the test
    usable, why = ipsec_mb_status()
    assert usable and "pinned" not in why
    monkeypatch.setattr(cli_module, "ipsec_mb_status", lambda: (False, "no such CPU"))
    with pytest.raises(ValueError, match="--ipsec-mb-arch avx2: .*no such CPU"):
        cli_module.pin_ipsec_mb_arch("avx2", ("ipsec-mb",))
    with pytest.raises(ValueError, match="--ipsec-mb-arch avx2: .*no such CPU"):
        cli_module.pin_ipsec_mb_arch("avx2", None)           # every backend built here
    with pytest.raises(ValueError, match="which --backends leaves out"):
        cli_module.pin_ipsec_mb_arch("avx2", ("openssl",))  # a pin with nothing to pin
    monkeypatch.undo()
    monkeypatch.setenv(IPSEC_MB_ARCH_ENV, "auto")
    assert main(["bench", "--ipsec-mb-arch", "sse", "--sizes", "64", "--ciphers", "aes-gcm-128",
                 "--directions", "encrypt", "--backends", "ipsec-mb", "--paths", "pfe",
                 "--duration", "0.02", "--threads", "1"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert f"(sse, pinned by {IPSEC_MB_ARCH_ENV})" in header
