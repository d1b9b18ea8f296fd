"""`set security flow power-mode-ipsec` and `power-mode-ipsec-qat [ring-depth|batch-size]`."""
from __future__ import annotations

import pytest

from inline_ipsec.config import ConfigurationErrors, QatSettings, load_config


def test_absent_by_default() -> None:
    c = load_config("")
    assert not c.power_mode_ipsec and c.power_mode_ipsec_qat is None


def test_power_mode_ipsec() -> None:
    assert load_config("set security flow power-mode-ipsec\n").power_mode_ipsec


def test_qat_defaults_and_settings() -> None:
    c = load_config("set security flow power-mode-ipsec-qat\n")
    assert c.power_mode_ipsec_qat == QatSettings(ring_depth=64, batch_size=16)
    c = load_config("set security flow power-mode-ipsec-qat ring-depth 1\n"
                    "set security flow power-mode-ipsec-qat batch-size 256\n")
    assert c.power_mode_ipsec_qat == QatSettings(ring_depth=1, batch_size=256)


@pytest.mark.parametrize("line,expected", [
    ("set security flow power-mode-ipsec-qat ring-depth 0", "requests (1..4096)"),
    ("set security flow power-mode-ipsec-qat ring-depth 4097", "requests (1..4096)"),
    ("set security flow power-mode-ipsec-qat batch-size 257", "requests (1..256)"),
    ("set security flow power-mode-ipsec-qat depth 8", "ring-depth"),
    ("set security flow power-mode-ipsec-qat ring-depth", "requests (1..4096)"),
    ("set security flow power-mode-ipsec extra", "end of statement"),
])
def test_rejected_with_the_line(line: str, expected: str) -> None:
    with pytest.raises(ConfigurationErrors) as info:
        load_config("set security flow power-mode-ipsec\n" + line + "\n")
    errors = [str(e) for e in info.value.errors]
    assert len(errors) == 1 and expected in errors[0] and "line 2" in errors[0]


def test_check_names_the_cpu_path_mode(tmp_path) -> None:
    import contextlib
    import io

    from inline_ipsec.cli import main
    cases = {"": "CPU path: packet by packet (no power-mode-ipsec)",
             "set security flow power-mode-ipsec\n": "CPU path: PowerMode IPsec (vectors)",
             "set security flow power-mode-ipsec-qat ring-depth 8\n":
                 "CPU path: PowerMode IPsec (vectors), QAT device model with ring depth 8, "
                 "batch size 16"}
    for k, (text, line) in enumerate(cases.items()):
        path = tmp_path / f"c{k}.conf"
        path.write_text(text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["check", str(path)])
        assert out.getvalue().splitlines()[-1] == line
