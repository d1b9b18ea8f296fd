"""What a configuration file may contain at the byte level: where lines end, text that is not
UTF-8, and what error messages may quote of it (control characters escaped, long tokens cut)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inline_ipsec.cli import main
from inline_ipsec.config import ConfigurationErrors, load_config, load_config_file
from inline_ipsec.config.errors import MESSAGE_LIMIT, ConfigIssue, shown

GOOD = "set security ike proposal p dh-group group14"
BAD = "set security ike proposal p dh-group group99"

# Every character str.splitlines() ends a line at, besides \n and \r.
SPLITLINES_ONLY = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigurationErrors) as info:
        load_config(text)
    return info.value.errors


@pytest.mark.parametrize("sep", SPLITLINES_ONLY, ids=[f"U+{ord(c):04X}" for c in SPLITLINES_ONLY])
def test_a_line_separator_inside_a_comment_stays_in_the_comment(sep: str) -> None:
    # Were the comment's tail a line of its own, "set bogus" would be an error of line 2 and
    # the bad statement below would be reported on line 3.
    text = f"{GOOD} # old value{sep}set bogus\n{BAD}\n"
    [issue] = issues_of(text)
    assert issue.line == 2 and issue.token == "group99"


@pytest.mark.parametrize("sep", SPLITLINES_ONLY, ids=[f"U+{ord(c):04X}" for c in SPLITLINES_ONLY])
def test_a_line_separator_inside_a_quoted_key_is_part_of_the_key(sep: str) -> None:
    config = load_config(f'set security ike policy p pre-shared-key ascii-text "a{sep}b"\n'
                         "set security ike policy p proposals x\n"
                         "set security ike proposal x dh-group group14\n")
    assert config.ike_policies["p"].pre_shared_key == f"a{sep}b"
    assert config.ike_policies["p"].proposals == ("x",)


def test_crlf_line_ends_and_numbers() -> None:
    [issue] = issues_of(f"{GOOD}\r\n\r\n{BAD}\r\n")
    assert issue.line == 3 and issue.token == "group99"
    assert load_config(f"{GOOD}\r\n").ike_proposals["p"].dh_group == "group14"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(),
                          st.text(alphabet=st.sampled_from(
                              SPLITLINES_ONLY + ["\r", "\t", " ", "#", "x", "\x00", "\x1b"]),
                              max_size=6)),
                min_size=1, max_size=12),
       st.sampled_from(["\n", "\r\n"]))
def test_errors_are_on_the_lines_that_have_them(lines, newline) -> None:
    """Statements with a comment of arbitrary characters: exactly the bad ones are reported,
    each with its line number in the file (1 + the number of newlines before it)."""
    text = newline.join(f"{BAD if bad else GOOD} #{comment}" for bad, comment in lines)
    expected = [n for n, (bad, _) in enumerate(lines, start=1) if bad]
    if not expected:
        assert load_config(text).ike_proposals["p"].dh_group == "group14"
        return
    assert [i.line for i in issues_of(text)] == expected


# -- files that are not UTF-8 ------------------------------------------------------------------

def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    before = 'set security ike policy p pre-shared-key ascii-text "gr'
    path.write_bytes(f"{GOOD}\n".encode() + f'{before}\u00fcn"\n'.encode("latin-1") +
                     f"{BAD}\n".encode())
    with pytest.raises(ConfigurationErrors) as info:
        load_config_file(path)
    err = info.value
    assert [(e.line, e.token) for e in err.errors] == [(2, None), (3, "group99")]
    assert f"not UTF-8: byte 0xfc at column {len(before) + 1}" in err.errors[0].message
    assert err.source == str(path)
    assert err.report().splitlines()[0].startswith(f"{path}:2: error: not UTF-8")
    assert str(err).startswith(f"{path}: configuration has 2 errors")


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.conf"
    path.write_bytes(b"\xef\xbb\xbf" + f"{GOOD}\n".encode())
    assert load_config_file(path).ike_proposals["p"].dh_group == "group14"


# -- what messages may quote -------------------------------------------------------------------

@pytest.mark.parametrize("raw, escaped", [
    ("\x00", "\\x00"), ("\x1b[31m", "\\x1b"), ("a\u2028b", "a\\u2028b"), ("\x7f", "\\x7f"),
    ("\u202e", "\\u202e"), ("gr\u00fcn", "gr\u00fcn"),
])
def test_shown_escapes_what_does_not_print(raw: str, escaped: str) -> None:
    assert escaped in shown(raw)
    assert shown(raw).isprintable()


def test_control_characters_never_reach_a_message() -> None:
    text = ("set security ike proposal p dh-group x\x00y\n"
            "set security ike proposal \x1bPowned\x07 dh-group group14\n"
            'set security ike policy p pre-shared-key ascii-text "\x1b[2J\n')
    errors = issues_of(text)
    assert [e.line for e in errors] == [1, 2, 3]
    for e in errors:
        assert e.message.isprintable(), e.message
    assert "x\\x00y" in errors[0].message
    assert "\\x1bPowned\\x07" in errors[1].message
    assert errors[0].token == "x\x00y"       # the token itself is kept as the file has it


def test_a_huge_token_is_shortened_in_the_message() -> None:
    token = "A" * 2_000_000
    [issue] = issues_of(f"set security ike proposal p dh-group {token}\n")
    assert len(issue.message) <= MESSAGE_LIMIT
    assert "(2000000 characters)" in issue.message
    assert issue.token == token
    [issue] = issues_of(f'set security ike proposal p "{token}" dh-group group14 x\n')
    assert len(issue.message) <= MESSAGE_LIMIT and "(2000000 characters)" in issue.message


def test_a_statement_of_many_tokens_is_shortened_in_the_message() -> None:
    words = " ".join(f"w{i}" for i in range(100_000))
    [issue] = issues_of(f"set security ike proposal p lifetime-seconds 3600 {words}\n")
    assert len(issue.message) <= MESSAGE_LIMIT and "'w0'" in issue.message


def test_every_message_is_bounded_and_printable() -> None:
    issue = ConfigIssue(1, "x\x1b" * 10_000)
    assert len(issue.message) <= MESSAGE_LIMIT and issue.message.isprintable()
    assert "(20000 characters)" in issue.message


# -- the command line: exit 1 and FILE:LINE for check and run ---------------------------------

@pytest.fixture
def non_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "bad.conf"
    path.write_bytes(f"{GOOD}\n# caf\xe9\n".encode("latin-1") + b"set \x1b[31mred\x00\n")
    return path


def _check_report(err: str, path: Path) -> None:
    lines = err.splitlines()
    assert lines[0] == (f"{path}:2: error: not UTF-8: byte 0xe9 at column 6 (configuration "
                        "files are UTF-8 text)")
    assert lines[1].startswith(f"{path}:3: error: unexpected '\\x1b' after 'set'")
    assert lines[2] == f"{path}: 2 errors, configuration not valid"
    assert all(line.isprintable() for line in lines)


def test_check_a_file_that_is_not_utf8(non_utf8: Path, capsys) -> None:
    assert main(["check", str(non_utf8)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    _check_report(captured.err, non_utf8)


def test_run_a_file_that_is_not_utf8(non_utf8: Path, tmp_path: Path, capsys) -> None:
    assert main(["run", str(non_utf8), "--control", str(tmp_path / "ctl"),
                 "--duration", "0.1"]) == 1
    _check_report(capsys.readouterr().err, non_utf8)


def test_run_names_the_peer_file_in_its_errors(tmp_path: Path, capsys) -> None:
    from inline_ipsec.gateway.demo_config import demo_config
    good, peer = tmp_path / "a.conf", tmp_path / "b.conf"
    good.write_text(demo_config("a"))
    peer.write_text(f"{GOOD}\n{BAD}\n")
    assert main(["run", str(good), "--peer", str(peer), "--control", str(tmp_path / "ctl"),
                 "--duration", "0.1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{peer}:2: error: unexpected 'group99'")


def test_check_a_missing_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "none.conf")]) == 2
    assert "cannot read" in capsys.readouterr().err
