"""Packaging metadata that users and their tools read: the licence and the dependency range,
and the test suite's rule that a warning from our own code is an error."""
from __future__ import annotations

import warnings
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_license_file_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_installed_metadata_says_apache_2_and_ships_the_file() -> None:
    meta = metadata.metadata("inline-ipsec")
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in meta.get_all("Classifier") or [])


def test_cryptography_is_within_the_tested_range() -> None:
    from packaging.requirements import Requirement
    [req] = [Requirement(r) for r in metadata.requires("inline-ipsec") or []
             if r.startswith("cryptography")]
    assert set(str(req.specifier).split(",")) == {">=43", "<51"}
    assert metadata.version("cryptography") in req.specifier


def test_a_warning_from_our_code_fails_the_test() -> None:
    """pyproject's filterwarnings turns warnings attributed to our modules into errors."""
    for module in ("inline_ipsec.ike.protection", "_pfe_core.table"):
        with pytest.raises(DeprecationWarning):
            warnings.warn_explicit("deprecated", DeprecationWarning, "x.py", 1, module=module)
    # ... and only ours: a third-party warning is reported, not raised
    with pytest.warns(UserWarning):
        warnings.warn_explicit("theirs", UserWarning, "y.py", 1, module="somelib.mod")
