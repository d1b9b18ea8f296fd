"""IKE SA, child SA, Quick Mode, GROUPKEY-PULL and group member states (ike/states.py): one
transition table per enum, every change through `transition`, and the words the states print
as unchanged (RFC 7296 §1.3, §1.4, §2.8; RFC 2409 §5, §5.5; RFC 6407 §3)."""
from __future__ import annotations

import json
import pathlib
import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import inline_ipsec
from inline_ipsec.ike import IkeError, LocalIkeError
from inline_ipsec.ike.states import (TRANSITIONS, ChildSaState, GdoiPullState,
                                     GroupMemberState, IkeSaState, IkeStateError,
                                     IkeV1SaState, QuickModeState, allowed, transition)

from ike_helpers import configs, established

ENUMS = [IkeSaState, ChildSaState, IkeV1SaState, QuickModeState, GdoiPullState,
         GroupMemberState]
INITIAL = {IkeSaState: IkeSaState.CREATED, ChildSaState: ChildSaState.INSTALLED,
           IkeV1SaState: IkeV1SaState.CREATED, QuickModeState: QuickModeState.NEW,
           GdoiPullState: GdoiPullState.NEW, GroupMemberState: GroupMemberState.IDLE}
#: the words the sessions used before the enums: show output and exported state keep them
WORDS = {
    IkeSaState: {"created", "init", "auth", "established", "deleting", "closed"},
    ChildSaState: {"installed", "rekeying", "rekeyed", "deleting", "pending", "redundant"},
    IkeV1SaState: {"created", "phase1", "established", "closed"},
    QuickModeState: {"new", "sent1", "sent2", "done", "failed"},
    GdoiPullState: {"new", "sent1", "sent2", "sent3", "done", "failed"},
    GroupMemberState: {"idle", "registering", "registered", "failed"},
}


@pytest.mark.parametrize("kind", ENUMS, ids=lambda k: k.__name__)
def test_table_has_an_entry_for_every_member_and_stays_inside_its_enum(kind) -> None:
    table = TRANSITIONS[kind]
    assert set(table) == set(kind)
    for old, targets in table.items():
        assert all(type(t) is kind for t in targets), old
        assert old not in targets, f"{old} -> {old} is not a transition"


@pytest.mark.parametrize("kind", ENUMS, ids=lambda k: k.__name__)
def test_every_state_is_reachable_from_the_initial_one(kind) -> None:
    seen, todo = {INITIAL[kind]}, [INITIAL[kind]]
    while todo:
        for nxt in TRANSITIONS[kind][todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(kind)


@pytest.mark.parametrize("kind", ENUMS, ids=lambda k: k.__name__)
def test_values_are_the_old_words_and_print_as_them(kind) -> None:
    assert {m.value for m in kind} == WORDS[kind]
    for m in kind:
        assert m == m.value and str(m) == m.value and f"{m}" == m.value and f"{m:>12}" == \
            f"{m.value:>12}" and "%s" % m == m.value
        assert json.dumps({"state": m}) == json.dumps({"state": m.value})
        assert hash(m) == hash(m.value) and {m.value: 1}[m] == 1
        assert kind(m.value) is m


def test_the_terminal_states() -> None:
    assert not TRANSITIONS[IkeSaState][IkeSaState.CLOSED]
    assert not TRANSITIONS[IkeV1SaState][IkeV1SaState.CLOSED]
    assert not TRANSITIONS[ChildSaState][ChildSaState.DELETING]
    assert not TRANSITIONS[QuickModeState][QuickModeState.DONE]
    assert not TRANSITIONS[QuickModeState][QuickModeState.FAILED]
    assert not TRANSITIONS[GdoiPullState][GdoiPullState.DONE]
    assert not TRANSITIONS[GdoiPullState][GdoiPullState.FAILED]
    assert all(TRANSITIONS[GroupMemberState].values())   # a member can always retry


@pytest.mark.parametrize("old,new", [
    (IkeSaState.CLOSED, IkeSaState.ESTABLISHED),      # no resurrection
    (IkeSaState.ESTABLISHED, IkeSaState.INIT),
    (IkeSaState.DELETING, IkeSaState.ESTABLISHED),
    (IkeSaState.CREATED, IkeSaState.AUTH),            # IKE_AUTH needs IKE_SA_INIT first (§1.2)
    (IkeSaState.ESTABLISHED, IkeSaState.ESTABLISHED),
    (ChildSaState.DELETING, ChildSaState.INSTALLED),
    (ChildSaState.REKEYED, ChildSaState.INSTALLED),   # replaced stays replaced (§2.8)
    (ChildSaState.REDUNDANT, ChildSaState.INSTALLED),  # §2.8.1: the loser is only deleted
    (ChildSaState.PENDING, ChildSaState.REKEYING),
    (IkeV1SaState.ESTABLISHED, IkeV1SaState.PHASE1),
    (IkeV1SaState.CREATED, IkeV1SaState.ESTABLISHED),  # phase 1 runs first (RFC 2409 §5)
    (IkeV1SaState.CLOSED, IkeV1SaState.CREATED),
    (QuickModeState.SENT1, QuickModeState.SENT2),
    (QuickModeState.DONE, QuickModeState.FAILED),
    (QuickModeState.NEW, QuickModeState.DONE),
    (GdoiPullState.SENT1, GdoiPullState.DONE),         # the member's HASH(3) comes first
    (GdoiPullState.SENT2, GdoiPullState.SENT3),        # the roles do not mix
    (GdoiPullState.DONE, GdoiPullState.FAILED),
    (GroupMemberState.IDLE, GroupMemberState.REGISTERED),   # keys only from a pull
    (GroupMemberState.FAILED, GroupMemberState.REGISTERED),
])
def test_illegal_transitions_raise_a_typed_error_and_keep_the_state(old, new) -> None:
    holder = SimpleNamespace(state=old)
    assert not allowed(old, new)
    with pytest.raises(IkeStateError) as info:
        transition(holder, new)
    assert isinstance(info.value, LocalIkeError) and isinstance(info.value, IkeError)
    assert holder.state is old
    assert info.value.old is old and info.value.new is new
    assert repr(old.value) in str(info.value) and repr(new.value) in str(info.value)


def test_legal_transition_moves_the_state_and_returns_the_old_one() -> None:
    holder = SimpleNamespace(state=ChildSaState.INSTALLED)
    assert transition(holder, ChildSaState.REKEYING) is ChildSaState.INSTALLED
    assert holder.state is ChildSaState.REKEYING


def test_a_word_or_another_machines_state_is_refused() -> None:
    for old in ("created", IkeV1SaState.CREATED, QuickModeState.NEW):
        holder = SimpleNamespace(state=old)
        with pytest.raises(IkeStateError):
            transition(holder, IkeSaState.INIT)
        assert holder.state is old
        assert not allowed(old, IkeSaState.INIT)
    with pytest.raises(TypeError):
        transition(SimpleNamespace(state="created"), "init")   # type: ignore[type-var]


_MEMBERS = [m for kind in ENUMS for m in kind]


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(ENUMS), steps=st.lists(st.sampled_from(_MEMBERS), max_size=40))
def test_random_sequences_only_move_along_the_table(kind, steps) -> None:
    holder = SimpleNamespace(state=INITIAL[kind])
    path = [holder.state]
    for new in steps:
        before = holder.state
        legal = type(new) is kind and new in TRANSITIONS[kind][before]
        assert allowed(before, new) == legal
        if legal:
            assert transition(holder, new) is before
            assert holder.state is new
            path.append(new)
        else:
            with pytest.raises(IkeStateError):
                transition(holder, new)
            assert holder.state is before
    for a, b in zip(path, path[1:]):
        assert b in TRANSITIONS[kind][a]
    assert type(holder.state) is kind


def test_sessions_and_children_hold_enum_members() -> None:
    p = established(*configs())
    for s in (p.i, p.r):
        assert s.state is IkeSaState.ESTABLISHED
        assert s.children and all(c.state is ChildSaState.INSTALLED
                                   for c in s.children.values())
    p.i.close(p.now)
    assert p.i.state is IkeSaState.DELETING
    p.run()
    assert p.i.state is IkeSaState.CLOSED and p.r.state is IkeSaState.CLOSED


# ---- the rule: states change only through `transition` ------------------------------------

SRC = pathlib.Path(inline_ipsec.__file__).parent
#: the modules that handle IKE or child SA states (other state machines live elsewhere)
STATE_FILES = sorted({*SRC.joinpath("ike").rglob("*.py"), SRC / "control" / "ike_control.py",
                      SRC / "hub" / "control.py", *SRC.joinpath("io").rglob("*.py"),
                      *SRC.joinpath("groupvpn").rglob("*.py")})
#: the modules that own a machine and so may call `transition`: IKE in ike/, GDOI's
#: GROUPKEY-PULL and member registration in groupvpn/
OWNERS = (SRC / "ike", SRC / "groupvpn")
_ASSIGN = re.compile(r"\.state\s*=(?!=)\s*(.*)")
_WORD_COMPARE = re.compile(r"\bstate\s*(?:==|!=|\bin\b|\bnot in\b)\s*\(?\s*[\"']")
#: a fresh object's first state, set in its constructor
_INITIAL = {"IkeState.CREATED", "IkeV1SaState.CREATED", "QuickModeState.NEW",
            "GdoiPullState.NEW", "GroupMemberState.IDLE"}


def test_the_state_modules_exist() -> None:
    assert SRC / "ike" / "states.py" in STATE_FILES
    assert SRC / "ike" / "v2" / "session.py" in STATE_FILES


@pytest.mark.parametrize("path", STATE_FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_state_assigned_or_compared_as_a_string(path: pathlib.Path) -> None:
    if path.name == "states.py" and path.parent.name == "ike":
        return
    text = path.read_text()
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("#")[0]
        m = _ASSIGN.search(code)
        if m and "self.state" in code:
            assert m.group(1).strip() in _INITIAL, f"{path.name}:{n}: {line.strip()}"
        elif m:
            pytest.fail(f"{path.name}:{n}: state assigned outside `transition`: {line.strip()}")
        assert not _WORD_COMPARE.search(code), f"{path.name}:{n}: compares a word: {line}"
        if not any(owner in path.parents for owner in OWNERS):
            assert "transition(" not in code, f"{path.name}:{n}: only ike/ changes states"


def test_enter_stays_or_moves_and_refuses_what_transition_refuses() -> None:
    from inline_ipsec.ike.states import enter
    holder = SimpleNamespace(state=GroupMemberState.FAILED)
    assert enter(holder, GroupMemberState.FAILED) is False         # staying is no transition
    assert holder.state is GroupMemberState.FAILED
    assert enter(holder, GroupMemberState.REGISTERING) is True
    assert holder.state is GroupMemberState.REGISTERING
    with pytest.raises(IkeStateError):
        enter(SimpleNamespace(state=GroupMemberState.IDLE), GroupMemberState.REGISTERED)
