"""A hypothesis state machine over one key server and three members: registrations, rekeys,
evictions, readmissions, lost pushes and the passing of time in any order. After every step:
the group never holds more than `member-threshold` members; two members that are registered
and have every push the key server sent them can exchange traffic (outer == inner); an
evicted member decrypts nothing a current member sends; within one registration a member's
accepted SEQ never goes down; the key server's state stays bounded."""
from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gdoi_helpers import MEMBERS, Net, ipv4_udp

HOSTS = st.sampled_from(MEMBERS)


class GroupVpn(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.net = Net(member_threshold=2, activation_time_delay=2)
        self.evicted: set[str] = set()
        self.seqs: dict[str, tuple] = {h: (None, 0) for h in MEMBERS}

    @property
    def group(self):
        return self.net.ks.groups[1]

    @rule(host=HOSTS)
    def register(self, host: str) -> None:
        self.net.members[host].start(self.net.now)
        self.net.pump()

    @rule()
    def rekey(self) -> None:
        self.net.ks.rekey(1, self.net.now)
        self.net.pump()

    @precondition(lambda self: bool(self.group.members))
    @rule(data=st.data())
    def evict(self, data) -> None:
        host = data.draw(st.sampled_from(sorted(self.group.members)))
        assert self.net.ks.evict(1, host, self.net.now)
        self.evicted.add(host)
        self.net.pump()

    @rule(host=HOSTS)
    def readmit(self, host: str) -> None:
        self.net.ks.readmit(1, host)
        self.evicted.discard(host)

    @rule(host=HOSTS)
    def lose_pushes(self, host: str) -> None:
        self.net.blocked.symmetric_difference_update({host})

    @rule(seconds=st.integers(1, 400))
    def wait(self, seconds: int) -> None:
        self.net.advance(seconds, step=max(1, seconds // 8))

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def threshold(self) -> None:
        assert len(self.group.members) <= 2

    @invariant()
    def sequence_numbers_only_grow(self) -> None:
        # each registration has its own push sequence: within one, SEQ never goes down
        for h, m in self.net.members.items():
            when, seq = self.seqs[h]
            if m.registrations == when:
                assert m.last_seq >= seq
            self.seqs[h] = (m.registrations, m.last_seq)

    def _in_sync(self) -> list[str]:
        out = []
        for h, reg in self.group.members.items():
            m = self.net.members[h]
            if m.state == "registered" and h not in self.net.blocked and \
                    m.kek is not None and m.kek.spi == reg.kek.spi and \
                    m.last_seq == reg.last_seq:
                out.append(h)
        return out

    @invariant()
    def members_in_sync_talk(self) -> None:
        now = self.net.now
        live = self._in_sync()
        for a in live:
            for b in live:
                if a == b:
                    continue
                inner = ipv4_udp(f"10.0.0.{MEMBERS.index(a) + 1}",
                                 f"10.0.0.{MEMBERS.index(b) + 1}", b"x")
                kind, esp = self.net.members[a].engine.protect(inner, now)
                assert kind == "esp"
                assert esp[12:20] == inner[12:20]
                assert self.net.members[b].engine.unprotect(esp, now) == inner

    @invariant()
    def evicted_members_read_nothing(self) -> None:
        now = self.net.now
        for a in self._in_sync():
            for e in self.evicted:
                if e in self.group.members:
                    continue
                inner = ipv4_udp("10.0.0.1", "10.0.0.2", b"secret")
                kind, esp = self.net.members[a].engine.protect(inner, now)
                if kind == "esp":
                    assert self.net.members[e].engine.unprotect(esp, now) is None

    @invariant()
    def bounded(self) -> None:
        assert len(self.net.ks.sessions) <= 3 * 4
        assert len(self.group.teks) <= 2 * len(self.group.config.ipsec_sas)
        for m in self.net.members.values():
            assert len(m.engine.sas) <= 32 and len(m.events) <= 64


GroupVpn.TestCase.settings = settings(max_examples=100, stateful_step_count=25,
                                      deadline=None)
TestGroupVpn = GroupVpn.TestCase
