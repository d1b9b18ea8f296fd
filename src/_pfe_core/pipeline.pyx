# cython: language_level=3
"""`Pipeline`: a gateway's whole forwarding fast path in C, one call per burst, GIL released.

The tables are C data filled from Python by the control plane; the burst calls read them and
never allocate or touch a Python object per packet.

Tables (filled from Python)
  - tunnels, by tunnel id 0..max_tunnels-1: `set_tunnel(tid, engine, cpu, pairs, selectors)`
    with `pairs` = [(outbound SA handle, largest inner packet that fits the tunnel MTU)] and
    `selectors` = [(local nets, remote nets)], a net being (version, prefix length, packed
    address); `set_pending(tid)` for a tunnel routed to but without SAs (on-traffic
    establishment), `clear_tunnel(tid)` when it is gone. DF, DSCP and NAT-T are properties of
    the outbound SA in the PFE table (the ESP kernel applies them);
  - FIB, longest-prefix match per family: `route_set(version, plen, packed, [tid, ...])` (the
    tunnels behind a prefix, tried in order), `route_del`, `route_clear`. Routes to st0 units
    and traffic selectors' remote networks (Junos auto route insertion) both end up here;
  - SPI map: `spi_set(spi, tid, engine, pair, handle)` / `spi_del(spi)`, filled from the SA
    distributor, which alone owns the SPI/SA index. `engine` is a PFE table index or
    `ENGINE_CPU`; `pair` is the child SA pair index, -1 for an SA draining after a rekey.

Outbound, per inner packet: parse the IP header -> LPM on the destination -> the first tunnel
behind the prefix whose child SA pair's selector matches (RFC 4301 §5.1) -> tunnel MTU check
(RFC 4301 §8) -> ESP encapsulation by the PFE kernel (esp_outb) -> counters.

Inbound, per outer packet: outer IPv4/IPv6 header checks -> demux (ESP, UDP-encapsulated ESP,
IKE on UDP 500 or behind the non-ESP marker, NAT-T keepalive; RFC 3948 §2) -> SPI map -> the
PFE kernel (esp_inb: replay check, decrypt, replay update, trailer and inner header checks,
ECN/DSCP decapsulation) -> traffic-selector check of the SA the packet came on (RFC 4301 §5.2
step 4) -> route of the inner packet: delivered, or hairpinned into another tunnel.

Everything else leaves C as a punt (`Verdict.PUNT_*`) and is handled by the gateway in Python:
IKE, outer fragments to reassemble, packets over the tunnel MTU (pre-fragmentation or ICMP),
packets of CPU-path tunnels (handed to the CPU engine in bursts), routes to tunnels without
SAs. A punted packet is counted here only as received; the gateway counts the rest.
"""
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset, memcmp
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from _pfe_core.burst_slots cimport burst_layout_t, burst_layout_view
from cpython.object cimport PyObject
from _pfe_core.status cimport *
from _pfe_core.sa cimport sa_table_t
from _pfe_core.table cimport (
    SaTable, pfe_lock, pfe_unlock, gil_handoff_enter, gil_handoff_leave, burst_keeps_gil,
)
from _pfe_core.counters cimport (
    gateway_counters_t, tunnel_counters_t, gateway_counters_dict, tunnel_counters_dict,
    gateway_counters_layout, tunnel_counters_layout,
)
from _pfe_core.esp_outb cimport esp_encrypt_burst
from _pfe_core.esp_inb cimport esp_decrypt_burst
from _pfe_core.wire cimport load16, load32, store16

cdef enum:
    TUNNEL_FREE = 0
    TUNNEL_PENDING = 1
    TUNNEL_ACTIVE = 2
    ROUTE_NONE = 0
    ROUTE_FOUND = 1
    ROUTE_PENDING = 2
    PROTO_UDP = 17
    PROTO_ESP = 50
    PROTO_AH = 51
    IKE_PORT = 500
    MAX_NETS = 256          # per side of one selector
    TO_KERNEL = 254         # a slot's verdict between the steps of a burst: the kernel's turn
    PL_CHUNK = 64           # inbound slots whose SPI map entries a burst call keeps at once

ENGINE_CPU = PL_ENGINE_CPU
#: The counter structs as compiled, for the catalogue test.
GATEWAY_COUNTER_LAYOUT = gateway_counters_layout()
TUNNEL_COUNTER_LAYOUT = tunnel_counters_layout()


# -- small helpers ---------------------------------------------------------------------------

cdef inline uint64_t mix64(uint64_t h) noexcept nogil:
    # splitmix64 finaliser: spreads sequential addresses and SPIs over the table
    h ^= h >> 30
    h *= <uint64_t>0xbf58476d1ce4e5b9ULL
    h ^= h >> 27
    h *= <uint64_t>0x94d049bb133111ebULL
    h ^= h >> 31
    return h


cdef inline uint64_t now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


cdef inline void count_call(pipeline_t *p, uint64_t t0) noexcept nogil:
    if p.kernel_calls:
        p.pfe.burst_calls += 1
        p.pfe.ns += now_ns() - t0


cdef inline uint64_t load64(const uint8_t *a) noexcept nogil:
    cdef uint64_t v
    memcpy(&v, a, 8)
    return v


cdef inline bint key_eq(const uint8_t *a, const uint8_t *b, uint32_t klen) noexcept nogil:
    """Two address-pair keys (8 bytes: IPv4, 32: IPv6, any multiple of 8) are equal: word
    compares the compiler keeps in registers, where memcmp of a run-time length is a call."""
    cdef uint64_t diff = 0
    cdef uint32_t i = 0
    while i < klen:
        diff |= load64(a + i) ^ load64(b + i)
        i += 8
    return diff == 0


cdef inline uint64_t hash_bytes(const uint8_t *p, uint32_t n, uint64_t seed) noexcept nogil:
    cdef uint64_t h = seed ^ <uint64_t>0xcbf29ce484222325ULL
    cdef uint32_t i
    for i in range(n):
        h = (h ^ p[i]) * <uint64_t>0x100000001b3ULL
    return mix64(h)


cdef inline void mask_addr(uint8_t *out, const uint8_t *a, uint32_t alen,
                           uint32_t plen) noexcept nogil:
    cdef uint32_t full = plen >> 3
    cdef uint32_t rem = plen & 7
    cdef uint32_t i
    for i in range(16):
        out[i] = 0
    if full > alen:
        full = alen
    memcpy(out, a, full)
    if rem and full < alen:
        out[full] = a[full] & <uint8_t>(0xFF << (8 - rem))


cdef inline bint net_has(const pl_net_t *n, uint8_t family, const uint8_t *a) noexcept nogil:
    cdef uint32_t full, rem
    if n.family != family:
        return False
    full = n.plen >> 3
    rem = n.plen & 7
    if full and memcmp(a, n.addr, full) != 0:
        return False
    if rem and ((a[full] ^ n.addr[full]) & <uint8_t>(0xFF << (8 - rem))) != 0:
        return False
    return True


cdef inline bint nets_have(const pl_net_t *nets, uint16_t count, uint8_t family,
                           const uint8_t *a) noexcept nogil:
    """RFC 4301 §4.4.1: an empty list matches any address."""
    cdef uint16_t k
    if count == 0:
        return True
    for k in range(count):
        if net_has(&nets[k], family, a):
            return True
    return False


cdef inline bint sel_out(const pl_sel_t *s, uint8_t fam, const uint8_t *src,
                         const uint8_t *dst) noexcept nogil:
    """An outbound packet fits: source in the local networks, destination in the remote."""
    return nets_have(s.nets, s.nlocal, fam, src) \
        and nets_have(s.nets + s.nlocal, s.nremote, fam, dst)


cdef inline bint sel_in(const pl_sel_t *s, uint8_t fam, const uint8_t *src,
                        const uint8_t *dst) noexcept nogil:
    """A decrypted packet fits: source in the remote networks, destination in the local."""
    return nets_have(s.nets + s.nlocal, s.nremote, fam, src) \
        and nets_have(s.nets, s.nlocal, fam, dst)


# -- FIB ---------------------------------------------------------------------------------------

cdef inline uint64_t fib_hash(const uint8_t *addr, uint8_t plen) noexcept nogil:
    # two word loads and two mixes: the addresses are masked and zero-padded to 16 bytes
    return mix64(load64(addr) ^ mix64(load64(addr + 8) ^ plen))


cdef fib_entry_t *fib_find(const fib_t *f, const uint8_t *masked, uint8_t plen) noexcept nogil:
    cdef uint32_t i
    cdef fib_entry_t *e
    if f.cap == 0:
        return NULL
    i = <uint32_t>fib_hash(masked, plen) & (f.cap - 1)
    while True:
        e = &f.slots[i]
        if not e.used:
            return NULL
        if e.plen == plen and memcmp(e.addr, masked, 16) == 0:
            return e
        i = (i + 1) & (f.cap - 1)


cdef const fib_entry_t *fib_lookup(const fib_t *f, const uint8_t *dst,
                                   uint32_t alen) noexcept nogil:
    """Longest-prefix match: probe the prefix lengths present, longest first."""
    cdef uint8_t masked[16]
    cdef uint32_t k
    cdef fib_entry_t *e
    for k in range(f.nlens):
        mask_addr(masked, dst, alen, f.lens[k])
        e = fib_find(f, masked, f.lens[k])
        if e != NULL:
            return e
    return NULL


cdef void fib_relens(fib_t *f) noexcept nogil:
    cdef int plen
    f.nlens = 0
    for plen in range(128, -1, -1):
        if f.per_len[plen]:
            f.lens[f.nlens] = <uint8_t>plen
            f.nlens += 1


cdef void fib_free_slots(fib_entry_t *slots, uint32_t cap) noexcept nogil:
    cdef uint32_t i
    if slots == NULL:
        return
    for i in range(cap):
        if slots[i].used:
            free(slots[i].tids)
    free(slots)


cdef int fib_grow(fib_t *f) except -1:
    cdef uint32_t cap = f.cap * 2 if f.cap else 16
    cdef fib_entry_t *slots = <fib_entry_t *>calloc(cap, sizeof(fib_entry_t))
    cdef uint32_t i, j
    if slots == NULL:
        raise MemoryError()
    for i in range(f.cap):
        if f.slots[i].used:
            j = <uint32_t>fib_hash(f.slots[i].addr, f.slots[i].plen) & (cap - 1)
            while slots[j].used:
                j = (j + 1) & (cap - 1)
            slots[j] = f.slots[i]
    free(f.slots)
    f.slots = slots
    f.cap = cap
    return 0


cdef void fib_delete_at(fib_t *f, uint32_t i) noexcept nogil:
    """Remove slot i, shifting later members of its probe run back (no tombstones)."""
    cdef uint32_t j, k
    free(f.slots[i].tids)
    f.slots[i].used = 0
    j = i
    while True:
        j = (j + 1) & (f.cap - 1)
        if not f.slots[j].used:
            break
        k = <uint32_t>fib_hash(f.slots[j].addr, f.slots[j].plen) & (f.cap - 1)
        # move j back to i when its home k is not cyclically within (i, j]
        if (j > i and (k <= i or k > j)) or (j < i and (k <= i and k > j)):
            f.slots[i] = f.slots[j]
            f.slots[j].used = 0
            f.slots[j].tids = NULL
            i = j


# -- SPI map -----------------------------------------------------------------------------------

cdef inline uint32_t spi_home(uint32_t spi, uint32_t cap) noexcept nogil:
    return <uint32_t>mix64(spi) & (cap - 1)


cdef inline const spi_entry_t *spi_find(const spi_map_t *m, uint32_t spi) noexcept nogil:
    cdef uint32_t i
    if m.cap == 0:
        return NULL
    i = spi_home(spi, m.cap)
    while m.slots[i].used:
        if m.slots[i].spi == spi:
            return &m.slots[i]
        i = (i + 1) & (m.cap - 1)
    return NULL


cdef int spi_grow(spi_map_t *m) except -1:
    cdef uint32_t cap = m.cap * 2 if m.cap else 64
    cdef spi_entry_t *slots = <spi_entry_t *>calloc(cap, sizeof(spi_entry_t))
    cdef uint32_t i, j
    if slots == NULL:
        raise MemoryError()
    for i in range(m.cap):
        if m.slots[i].used:
            j = spi_home(m.slots[i].spi, cap)
            while slots[j].used:
                j = (j + 1) & (cap - 1)
            slots[j] = m.slots[i]
    free(m.slots)
    m.slots = slots
    m.cap = cap
    return 0


# -- sessions ----------------------------------------------------------------------------------

cdef inline void session_add(pipeline_t *p, const uint8_t *key, uint32_t klen,
                             uint8_t proto) noexcept nogil:
    """Count a distinct (source, destination, protocol): a set of 64-bit hashes, bounded."""
    cdef uint64_t h
    cdef uint32_t i
    if klen == p.last_session_klen and p.last_session[klen] == proto \
            and key_eq(p.last_session, key, klen):
        return                  # the same flow as the packet before: counted already
    if p.sessions == NULL or p.nsessions >= PL_SESSION_MAX:
        return
    memcpy(p.last_session, key, klen)
    p.last_session[klen] = proto
    p.last_session_klen = klen
    h = hash_bytes(key, klen, <uint64_t>proto << 8 | klen)
    if h == 0:
        h = 1
    i = <uint32_t>h & (PL_SESSION_SLOTS - 1)
    while p.sessions[i]:
        if p.sessions[i] == h:
            return
        i = (i + 1) & (PL_SESSION_SLOTS - 1)
    p.sessions[i] = h
    p.nsessions += 1


# -- the per-packet steps ----------------------------------------------------------------------

cdef inline bint decrement_ttl(uint8_t *pkt, uint8_t fam) noexcept nogil:
    """A router's hop (RFC 1812 §5.3.1, RFC 8200 §3): IPv4 TTL one less with the header
    checksum updated incrementally (RFC 1624 §3, as Linux's ip_decrease_ttl), or IPv6 hop
    limit one less. False, packet untouched, when it would reach zero. The header was
    checked by ip_addrs."""
    cdef uint32_t check
    if fam == 4:
        if pkt[8] <= 1:
            return False
        pkt[8] -= 1
        check = <uint32_t>load16(pkt + 10) + 0x0100
        store16(pkt + 10, <uint16_t>((check + (check >= 0xFFFF)) & 0xFFFF))
        return True
    if pkt[7] <= 1:
        return False
    pkt[7] -= 1
    return True


cdef inline int ip_addrs(const uint8_t *pkt, uint32_t ln, uint8_t *fam, const uint8_t **src,
                         const uint8_t **dst, uint32_t *alen, uint8_t *proto) noexcept nogil:
    """The addresses of an IPv4 (>= 20 bytes) or IPv6 (>= 40 bytes) packet; -1 otherwise."""
    if ln >= 20 and (pkt[0] >> 4) == 4:
        fam[0] = 4
        src[0] = pkt + 12
        dst[0] = pkt + 16
        alen[0] = 4
        proto[0] = pkt[9]
        return 0
    if ln >= 40 and (pkt[0] >> 4) == 6:
        fam[0] = 6
        src[0] = pkt + 8
        dst[0] = pkt + 24
        alen[0] = 16
        proto[0] = pkt[6]
        return 0
    return -1


cdef int route_out(pipeline_t *p, uint8_t fam, const uint8_t *src, const uint8_t *dst,
                   uint32_t alen, int32_t *tid_out, int32_t *pair_out) noexcept nogil:
    """`route_lookup`, remembering the last decision until the tables change."""
    cdef last_route_t *last = &p.last_route
    # src and dst are adjacent in both IPv4 and IPv6 headers: one key of 2 * alen bytes
    if last.gen == p.gen and last.klen == 2 * alen and key_eq(last.key, src, 2 * alen):
        tid_out[0] = last.tid
        pair_out[0] = last.pair
        return last.result
    last.result = route_lookup(p, fam, src, dst, alen, &last.tid, &last.pair)
    last.gen = p.gen
    last.klen = 2 * alen
    memcpy(last.key, src, 2 * alen)
    tid_out[0] = last.tid
    pair_out[0] = last.pair
    return last.result


cdef int route_lookup(const pipeline_t *p, uint8_t fam, const uint8_t *src, const uint8_t *dst,
                      uint32_t alen, int32_t *tid_out, int32_t *pair_out) noexcept nogil:
    """RFC 4301 §5.1: the tunnels behind the longest matching prefix, in order, and in each
    the first child SA pair whose selector matches. ROUTE_PENDING when a tunnel without SAs
    comes before any match (the control plane may bring it up on traffic)."""
    cdef const fib_entry_t *e = fib_lookup(&p.fib4 if fam == 4 else &p.fib6, dst, alen)
    cdef const pl_tunnel_t *t
    cdef uint16_t k, j
    cdef int32_t tid
    tid_out[0] = -1
    pair_out[0] = -1
    if e == NULL:
        return ROUTE_NONE
    for k in range(e.ntids):
        tid = e.tids[k]
        if tid < 0 or <uint32_t>tid >= p.max_tunnels:
            continue
        t = &p.tunnels[tid]
        if t.state != TUNNEL_ACTIVE:
            return ROUTE_PENDING
        for j in range(t.npairs):
            if j >= t.nsel or sel_out(&t.sels[j], fam, src, dst):
                tid_out[0] = tid
                pair_out[0] = j
                return ROUTE_FOUND
    return ROUTE_NONE


cdef inline sa_table_t *table_held(pipeline_t *p, uint32_t engine) noexcept nogil:
    """PFE table `engine`, its lock held, as the table's own burst calls hold it: an install
    or removal in another thread waits for the burst. The lock stays held over the packets
    that follow on the same table (one lock per burst call in the common case) and is
    released before another table's is taken, so a burst call never waits holding a lock."""
    cdef int *lk = p.locks[engine]
    if p.held != lk:
        if p.held != NULL:
            pfe_unlock(p.held)
        pfe_lock(lk)
        p.held = lk
    return p.tables[engine]


cdef inline void tables_release(pipeline_t *p) noexcept nogil:
    if p.held != NULL:
        pfe_unlock(p.held)
        p.held = NULL


cdef inline uint8_t encrypt_done(pipeline_t *p, pl_tunnel_t *t, uint8_t st) noexcept nogil:
    """Count what the ESP kernel did with a packet of tunnel `t`; its verdict."""
    if st == OK:
        t.c.out_encrypted += 1
        p.pfe.encrypted += 1
        p.c.transmitted_outer += 1
        return WIRE
    t.c.out_engine_drops += 1
    p.pfe.encrypt_drops += 1
    return DROP_ENGINE


cdef inline uint8_t encrypt_into(pipeline_t *p, pl_tunnel_t *t, const pl_pair_t *pair,
                                 uint8_t *slot, Py_ssize_t slot_size, uint32_t *offset,
                                 uint32_t *length, int32_t *sa, uint8_t *status) noexcept nogil:
    """ESP-encapsulate one packet already routed to `t`/`pair` (MTU checked), alone: a
    decrypted packet hairpinned into another tunnel."""
    sa[0] = pair.out_handle
    p.kernel_calls += 1
    esp_encrypt_burst(table_held(p, t.engine), slot, slot_size, offset, length, sa, status, 1)
    return encrypt_done(p, t, status[0])


cdef uint8_t outbound_one(pipeline_t *p, uint8_t *slot, Py_ssize_t slot_size, uint32_t *offset,
                          uint32_t *length, int32_t *sa, uint8_t *status,
                          int32_t *tunnel) noexcept nogil:
    cdef uint32_t off = offset[0]
    cdef uint32_t ln = length[0]
    cdef const uint8_t *pkt
    cdef const uint8_t *src
    cdef const uint8_t *dst
    cdef uint32_t alen
    cdef uint8_t fam, proto
    cdef int32_t tid = -1, pair = -1
    cdef int r
    cdef pl_tunnel_t *t
    tunnel[0] = -1
    status[0] = OK
    p.c.inner_received += 1
    if off > slot_size or ln > slot_size - off:
        p.c.malformed_inner += 1
        status[0] = MALFORMED
        return DROP_MALFORMED
    pkt = slot + off
    if ip_addrs(pkt, ln, &fam, &src, &dst, &alen, &proto) < 0:
        p.c.malformed_inner += 1
        status[0] = MALFORMED
        return DROP_MALFORMED
    r = route_out(p, fam, src, dst, alen, &tid, &pair)
    if r == ROUTE_PENDING:
        return PUNT_ROUTE
    if r == ROUTE_NONE:
        p.c.no_route += 1
        return DROP_NO_ROUTE
    tunnel[0] = tid
    t = &p.tunnels[tid]
    if t.cpu:
        return PUNT_CPU
    if ln > t.pairs[pair].mtu_limit:
        sa[0] = t.pairs[pair].out_handle
        return PUNT_TOO_BIG
    t.c.out_packets += 1
    session_add(p, src, 2 * alen, proto)
    sa[0] = t.pairs[pair].out_handle
    return TO_KERNEL                  # encrypted with the burst's other packets (pl_outbound)


cdef inline int outer_spi(pipeline_t *p, const uint8_t *pkt, uint32_t ln, uint32_t *spi,
                          uint8_t *verdict) noexcept nogil:
    """Outer header checks and NAT-T demux, as `dataplane.demux.classify_outer`: 0 with the
    SPI of an ESP/AH packet, or -1 with the verdict."""
    cdef uint32_t ihl, total, l4, end, ulen, plen
    cdef uint8_t proto
    cdef const uint8_t *pay
    if ln < 1:
        p.c.malformed_outer += 1
        verdict[0] = DROP_MALFORMED
        return -1
    if (pkt[0] >> 4) == 4:
        if ln < 20:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        ihl = (pkt[0] & 0x0F) * 4
        total = load16(pkt + 2)
        if ihl < 20 or total < ihl or total > ln:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        if load16(pkt + 6) & 0x3FFF:     # reassembled (and counted) on the Python path
            verdict[0] = PUNT_FRAGMENT
            return -1
        proto = pkt[9]
        l4 = ihl
        end = total
    elif (pkt[0] >> 4) == 6:
        if ln < 40:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        end = 40 + <uint32_t>load16(pkt + 4)
        if end > ln:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        proto = pkt[6]
        l4 = 40
    else:
        p.c.malformed_outer += 1
        verdict[0] = DROP_MALFORMED
        return -1
    if proto == PROTO_UDP:
        if end - l4 < 8:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        ulen = load16(pkt + l4 + 4)
        if ulen < 8 or l4 + ulen > end:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        if load16(pkt + l4) == IKE_PORT or load16(pkt + l4 + 2) == IKE_PORT:
            verdict[0] = PUNT_IKE
            return -1
        pay = pkt + l4 + 8
        plen = ulen - 8
        if plen == 1 and pay[0] == 0xFF:
            p.c.nat_keepalives += 1
            verdict[0] = DROP_KEEPALIVE
            return -1
        if plen >= 4 and load32(pay) == 0:
            verdict[0] = PUNT_IKE
            return -1
        if plen < 8:
            p.c.malformed_outer += 1
            verdict[0] = DROP_MALFORMED
            return -1
        spi[0] = load32(pay)
        return 0
    if proto == PROTO_ESP and end - l4 >= 8:
        spi[0] = load32(pkt + l4)
        return 0
    if proto == PROTO_AH and end - l4 >= 12:
        spi[0] = load32(pkt + l4 + 4)
        return 0
    p.c.malformed_outer += 1
    verdict[0] = DROP_MALFORMED
    return -1


cdef inline bint ts_ok(const pl_tunnel_t *t, int32_t pair, uint8_t fam, const uint8_t *src,
                       const uint8_t *dst) noexcept nogil:
    """RFC 4301 §5.2 step 4: the selector of the SA the packet came on; an SA draining after
    a rekey accepts what any of the tunnel's selectors does."""
    cdef uint16_t j
    if pair >= 0:
        if pair < t.nsel:
            return sel_in(&t.sels[pair], fam, src, dst)
        return True
    if t.nsel == 0:
        return True
    for j in range(t.nsel):
        if sel_in(&t.sels[j], fam, src, dst):
            return True
    return False


cdef inline bint ts_ok_cached(pipeline_t *p, const pl_tunnel_t *t, int32_t tid, int32_t pair,
                              uint8_t fam, const uint8_t *src, const uint8_t *dst,
                              uint32_t alen) noexcept nogil:
    """`ts_ok`, remembering the last verdict until the tunnels change: the packets of a burst
    mostly share one flow, and a selector list is walked prefix by prefix."""
    cdef last_ts_t *last = &p.last_ts
    # src and dst are adjacent in both IPv4 and IPv6 headers: one key of 2 * alen bytes
    if last.gen == p.gen and last.tid == tid and last.pair == pair \
            and last.klen == 2 * alen and key_eq(last.key, src, 2 * alen):
        return last.ok
    last.ok = ts_ok(t, pair, fam, src, dst)
    last.gen = p.gen
    last.tid = tid
    last.pair = pair
    last.klen = 2 * alen
    memcpy(last.key, src, 2 * alen)
    return last.ok


cdef uint8_t inbound_one(pipeline_t *p, uint8_t *slot, Py_ssize_t slot_size, uint32_t *offset,
                         uint32_t *length, int32_t *sa, uint8_t *status, int32_t *tunnel,
                         bint count_received, const spi_entry_t **entry) noexcept nogil:
    """Everything before the ESP kernel: TO_KERNEL with the packet's SPI map entry, or the
    verdict."""
    cdef uint32_t off = offset[0]
    cdef uint32_t ln = length[0]
    cdef uint32_t spi = 0
    cdef uint8_t verdict = DROP_MALFORMED
    cdef const spi_entry_t *e
    cdef pl_tunnel_t *t
    cdef const uint8_t *pkt
    tunnel[0] = -1
    sa[0] = -1
    status[0] = OK
    if count_received:
        p.c.outer_received += 1
    if off > slot_size or ln > slot_size - off:
        p.c.malformed_outer += 1
        status[0] = MALFORMED
        return DROP_MALFORMED
    pkt = slot + off
    if outer_spi(p, pkt, ln, &spi, &verdict) < 0:
        if verdict == DROP_MALFORMED:
            status[0] = MALFORMED
        elif verdict == DROP_KEEPALIVE:
            status[0] = KEEPALIVE
        return verdict
    if p.last_spi.gen == p.gen and p.last_spi.spi == spi:
        e = p.last_spi.entry
    else:
        e = spi_find(&p.spis, spi)
        if e != NULL:
            p.last_spi.gen = p.gen
            p.last_spi.spi = spi
            p.last_spi.entry = e
    if e == NULL:
        p.c.invalid_spi += 1
        status[0] = UNKNOWN_SPI
        return DROP_UNKNOWN_SPI
    tunnel[0] = e.tid
    t = &p.tunnels[e.tid]
    if e.engine == PL_ENGINE_CPU or e.engine >= p.ntables:
        return PUNT_CPU
    t.c.in_packets += 1
    entry[0] = e
    return TO_KERNEL                  # decrypted with the burst's other packets (pl_inbound)


cdef uint8_t inbound_done(pipeline_t *p, uint8_t *slot, Py_ssize_t slot_size, uint32_t *offset,
                          uint32_t *length, int32_t *sa, uint8_t *status, int32_t *tunnel,
                          const spi_entry_t *e) noexcept nogil:
    """Everything after the ESP kernel: selector check, delivery or hairpin; the verdict."""
    cdef pl_tunnel_t *t = &p.tunnels[e.tid]
    cdef pl_tunnel_t *t2
    cdef const uint8_t *pkt
    cdef const uint8_t *src
    cdef const uint8_t *dst
    cdef uint32_t alen, ln
    cdef uint8_t fam, proto
    cdef uint8_t st = status[0]
    cdef int32_t tid2 = -1, pair2 = -1
    if st != OK:
        t.c.in_engine_drops += 1
        t.in_drop[st & (PL_STATUS_CODES - 1)] += 1
        p.pfe.decrypt_drops += 1
        return DROP_ENGINE
    p.pfe.decrypted += 1
    pkt = slot + offset[0]
    ln = length[0]
    if ip_addrs(pkt, ln, &fam, &src, &dst, &alen, &proto) < 0 \
            or not ts_ok_cached(p, t, e.tid, e.pair, fam, src, dst, alen):
        t.c.in_ts_fail += 1
        p.c.ts_check_fail += 1
        return DROP_TS
    t.c.in_delivered += 1
    session_add(p, src, 2 * alen, proto)
    if fam == 4 and (load16(pkt + 6) & 0x3FFF):
        p.c.fragments_received += 1
    if p.hairpin and route_out(p, fam, src, dst, alen, &tid2, &pair2) == ROUTE_FOUND \
            and tid2 != e.tid:
        tunnel[0] = tid2
        t2 = &p.tunnels[tid2]
        if t2.cpu or ln > t2.pairs[pair2].mtu_limit or not decrement_ttl(pkt, fam):
            return PUNT_HAIRPIN         # the Python path (which drops a TTL ending here)
        t2.c.out_packets += 1
        return encrypt_into(p, t2, &t2.pairs[pair2], slot, slot_size, offset, length, sa,
                            status)
    p.c.delivered_inner += 1
    return DELIVER


cdef Py_ssize_t pl_outbound(pipeline_t *p, uint8_t *data, Py_ssize_t slot_size, uint32_t *offset,
                            uint32_t *length, int32_t *sa, uint8_t *status, uint8_t *verdict,
                            int32_t *tunnel, Py_ssize_t n, int select) noexcept nogil:
    """Route and encrypt slots 0..n-1 (only those whose verdict is `select`, if >= 0);
    returns the number of punts. Every packet is routed first; then each run of consecutive
    packets for one PFE goes through the ESP kernel in one call (its passes over a burst),
    in slot order, so sequence numbers follow the slots as one packet at a time would."""
    cdef Py_ssize_t i, j, punts = 0
    cdef uint8_t v, eng
    cdef uint64_t t0 = now_ns()
    p.kernel_calls = 0
    for i in range(n):
        if select >= 0 and verdict[i] != select:
            verdict[i] = SKIPPED
            continue
        v = outbound_one(p, data + i * slot_size, slot_size, &offset[i], &length[i], &sa[i],
                         &status[i], &tunnel[i])
        verdict[i] = v
        if v >= PUNT_IKE and v != TO_KERNEL:
            punts += 1
    i = 0
    while i < n:
        if verdict[i] != TO_KERNEL:
            i += 1
            continue
        eng = p.tunnels[tunnel[i]].engine
        j = i + 1
        while j < n and verdict[j] == TO_KERNEL and p.tunnels[tunnel[j]].engine == eng:
            j += 1
        p.kernel_calls += 1
        esp_encrypt_burst(table_held(p, eng), data + i * slot_size, slot_size, &offset[i],
                          &length[i], &sa[i], &status[i], j - i)
        while i < j:
            verdict[i] = encrypt_done(p, &p.tunnels[tunnel[i]], status[i])
            i += 1
    tables_release(p)
    count_call(p, t0)
    return punts


cdef Py_ssize_t pl_inbound(pipeline_t *p, uint8_t *data, Py_ssize_t slot_size, uint32_t *offset,
                           uint32_t *length, int32_t *sa, uint8_t *status, uint8_t *verdict,
                           int32_t *tunnel, Py_ssize_t n, int select,
                           bint count_received) noexcept nogil:
    """Demux, decrypt, check and route slots 0..n-1; returns the number of punts. In chunks
    of PL_CHUNK slots: every packet's demux and SPI lookup, then each run of consecutive
    packets for one PFE through the ESP kernel in one call, then every decrypted packet's
    selector check and route, in slot order. A burst decides as its packets one at a time
    would (the kernel's anti-replay decisions are the same either way)."""
    cdef Py_ssize_t base, m, i, j, punts = 0
    cdef uint8_t v, eng
    cdef const spi_entry_t *ents[PL_CHUNK]
    cdef uint64_t t0 = now_ns()
    p.kernel_calls = 0
    base = 0
    while base < n:
        m = n - base if n - base < PL_CHUNK else PL_CHUNK
        for i in range(base, base + m):
            if select >= 0 and verdict[i] != select:
                verdict[i] = SKIPPED
                continue
            verdict[i] = inbound_one(p, data + i * slot_size, slot_size, &offset[i], &length[i],
                                     &sa[i], &status[i], &tunnel[i], count_received,
                                     &ents[i - base])
        i = base
        while i < base + m:
            if verdict[i] != TO_KERNEL:
                i += 1
                continue
            eng = ents[i - base].engine
            j = i + 1
            while j < base + m and verdict[j] == TO_KERNEL and ents[j - base].engine == eng:
                j += 1
            p.kernel_calls += 1
            esp_decrypt_burst(table_held(p, eng), data + i * slot_size, slot_size, &offset[i],
                              &length[i], &sa[i], &status[i], j - i)
            i = j
        for i in range(base, base + m):
            v = verdict[i]
            if v == TO_KERNEL:
                v = inbound_done(p, data + i * slot_size, slot_size, &offset[i], &length[i],
                                 &sa[i], &status[i], &tunnel[i], ents[i - base])
                verdict[i] = v
            if v >= PUNT_IKE and v != SKIPPED:
                punts += 1
        base += m
    tables_release(p)
    count_call(p, t0)
    return punts


# -- Python side -------------------------------------------------------------------------------

cdef class PipelineArrays:
    """The seven arrays of a burst the pipeline reads and writes, viewed once (a typed
    memoryview costs about a microsecond to acquire; a burst keeps one of these). Its fields
    are declared in pipeline.pxd."""

    def __init__(self, uint8_t[:, ::1] data, uint32_t[::1] offset, uint32_t[::1] length,
                 int32_t[::1] sa, uint8_t[::1] status, uint8_t[::1] verdict,
                 int32_t[::1] tunnel, source=None):
        self.data, self.offset, self.length = data, offset, length
        self.sa, self.status, self.verdict, self.tunnel = sa, status, verdict, tunnel
        self.source = source

    cdef int check(self, Py_ssize_t n) except -1:
        if n < 0 or n > self.data.shape[0] or n > self.offset.shape[0] \
                or n > self.length.shape[0] or n > self.sa.shape[0] \
                or n > self.status.shape[0] or n > self.verdict.shape[0] \
                or n > self.tunnel.shape[0]:
            raise ValueError(f"burst of {n} packets does not fit the given arrays")
        return 0

    def load(self, list packets, uint32_t headroom, int32_t sa=-1) -> int:
        """Copy `packets` into slots 0..n-1 at `headroom` (offset, length, SA handle, status
        set): the list-of-bytes APIs' way into a burst, one call instead of a Python copy
        per packet. A packet must leave 64 bytes of tailroom in its slot. Returns n."""
        cdef Py_ssize_t n = len(packets), i, size
        cdef Py_ssize_t slot = self.data.shape[1]
        cdef object p
        self.check(n)
        for i in range(n):
            p = packets[i]
            if type(p) is not bytes:
                p = bytes(p)
            size = PyBytes_GET_SIZE(p)
            if <Py_ssize_t>headroom + size + 64 > slot:
                raise ValueError(f"a {size}-byte packet does not fit a {slot}-byte slot with "
                                 f"{headroom} bytes of headroom")
            memcpy(&self.data[i, headroom], PyBytes_AS_STRING(p), size)
            self.offset[i] = headroom
            self.length[i] = <uint32_t>size
            self.sa[i] = sa
            self.status[i] = 0
        return n

    def collect(self, Py_ssize_t n, list wire, list delivered, Py_ssize_t first=0) -> int:
        """Append the packets of slots `first`..`n`-1 whose verdict is WIRE to `wire` and
        DELIVER to `delivered` (bytes, in slot order); returns how many of those slots hold a
        drop verdict. The caller handles punted slots itself (this skips them)."""
        cdef Py_ssize_t i, start, size, dropped = 0
        cdef Py_ssize_t slot = self.data.shape[1]
        cdef uint8_t v
        self.check(n)
        if first < 0 or first > n:
            raise ValueError(f"first slot {first} outside 0..{n}")
        for i in range(first, n):
            v = self.verdict[i]
            if v == WIRE or v == DELIVER:
                start = self.offset[i]
                size = self.length[i]
                if start + size > slot:
                    raise ValueError(f"slot {i}: offset {start} + length {size} outside "
                                     f"its {slot}-byte slot")
                (wire if v == WIRE else delivered).append(
                    PyBytes_FromStringAndSize(<char *>&self.data[i, start], size))
            elif DROP_MALFORMED <= v <= DROP_TS:
                dropped += 1
        return dropped


cdef inline PipelineArrays _pipeline_view(burst):
    """The burst's arrays as the pipeline takes them, viewed once and kept on the burst (as
    `pfe.pipeline_arrays` does)."""
    cdef PipelineArrays b = burst.pipeline_view
    if b is None:
        b = PipelineArrays(burst.data, burst.offset, burst.length, burst.sa, burst.status,
                           burst.verdict, burst.tunnel)
        burst.pipeline_view = b
    return b


# Where a `Burst`'s `count` and `pipeline_view` slots sit, learnt on the first call.
cdef burst_layout_t _pipeline_layout


cdef inline PipelineArrays _pipeline_view_and_count(burst, Py_ssize_t *n):
    """The burst's pipeline view and its `count`, read from their slots (burst_slots.h)."""
    cdef PyObject *view = burst_layout_view(&_pipeline_layout, burst, PipelineArrays, "pipeline_view", n)
    if view != NULL:
        return <PipelineArrays>view
    n[0] = burst.count
    return _pipeline_view(burst)


def pipeline_view(burst) -> PipelineArrays:
    """The burst's arrays as the pipeline takes them, viewed once and kept on the burst."""
    return _pipeline_view(burst)


cdef int _net(pl_net_t *out, object net) except -1:
    """(version, prefix length, packed address) -> pl_net_t, masked."""
    cdef int version = net[0]
    cdef int plen = net[1]
    cdef bytes packed = bytes(net[2])
    cdef uint32_t alen = 4 if version == 4 else 16
    if version not in (4, 6) or len(packed) != alen or not 0 <= plen <= 8 * <int>alen:
        raise ValueError(f"bad network {net!r}: expected (4|6, prefix length, packed address)")
    out.family = version
    out.plen = plen
    mask_addr(out.addr, <const uint8_t *><const char *>packed, alen, plen)
    return 0


cdef void _free_tunnel(pl_tunnel_t *t) noexcept nogil:
    cdef uint16_t j
    if t.sels != NULL:
        for j in range(t.nsel):
            free(t.sels[j].nets)
    free(t.sels)
    free(t.pairs)
    t.sels = NULL
    t.pairs = NULL
    t.nsel = 0
    t.npairs = 0


cdef class Pipeline:
    """One gateway's forwarding tables and its burst calls (module docstring).

    `tables` are the gateway's PFE SA tables, in the order the SPI map and tunnels name them
    (engine index). The pipeline is not shared between threads; its burst calls hold each
    PFE table's lock around the kernel calls on it, as the table's own burst calls do."""

    cdef pipeline_t p
    cdef readonly list tables
    cdef readonly uint32_t max_routes
    cdef readonly uint32_t max_spis
    # What the burst-object entry points return and call (`bind_punts`).
    cdef object no_punts
    cdef object outbound_punts
    cdef object inbound_punts

    def __cinit__(self, tables, uint32_t max_tunnels=16384, uint32_t max_routes=65536,
                  uint32_t max_spis=65536, bint hairpin=True):
        cdef SaTable table
        cdef uint32_t i
        self.tables = list(tables)
        if len(self.tables) > PL_MAX_PFES:
            raise ValueError(f"at most {PL_MAX_PFES} PFE tables per pipeline")
        for i, table in enumerate(self.tables):
            self.p.tables[i] = &table.t
            self.p.locks[i] = table._lk
        self.p.ntables = len(self.tables)
        if max_tunnels == 0:
            raise ValueError("max_tunnels must be positive")
        self.p.tunnels = <pl_tunnel_t *>calloc(max_tunnels, sizeof(pl_tunnel_t))
        self.p.sessions = <uint64_t *>calloc(PL_SESSION_SLOTS, sizeof(uint64_t))
        if self.p.tunnels == NULL or self.p.sessions == NULL:
            raise MemoryError()
        self.p.max_tunnels = max_tunnels
        self.p.hairpin = hairpin
        self.p.gen = 1              # a zeroed last_route (gen 0) is never taken for valid
        self.max_routes = max_routes
        self.max_spis = max_spis

    def __dealloc__(self):
        cdef uint32_t i
        if self.p.tunnels != NULL:
            for i in range(self.p.max_tunnels):
                _free_tunnel(&self.p.tunnels[i])
            free(self.p.tunnels)
        fib_free_slots(self.p.fib4.slots, self.p.fib4.cap)
        fib_free_slots(self.p.fib6.slots, self.p.fib6.cap)
        free(self.p.spis.slots)
        free(self.p.sessions)

    @property
    def max_tunnels(self) -> int:
        return self.p.max_tunnels

    @property
    def kernel_calls(self) -> int:
        """PFE kernel calls made by the last burst call (0: no packet reached a PFE)."""
        return self.p.kernel_calls

    @property
    def hairpin(self) -> bool:
        return bool(self.p.hairpin)

    @hairpin.setter
    def hairpin(self, bint value):
        self.p.hairpin = value

    # -- tunnels ---------------------------------------------------------------------------

    cdef pl_tunnel_t *_tunnel(self, long tid) except NULL:
        if not 0 <= tid < self.p.max_tunnels:
            raise IndexError(f"tunnel id {tid} outside 0..{self.p.max_tunnels - 1}")
        return &self.p.tunnels[tid]

    def set_tunnel(self, long tid, int engine, bint cpu, pairs, selectors) -> None:
        """Make tunnel `tid` active with its child SA pairs [(outbound handle, MTU limit)]
        and selectors [(local nets, remote nets)] (module docstring). Its counters stay."""
        cdef pl_tunnel_t *t = self._tunnel(tid)
        cdef pl_pair_t *new_pairs = NULL
        cdef pl_sel_t *new_sels = NULL
        cdef Py_ssize_t j, k, npairs = len(pairs), nsel = len(selectors)
        cdef pl_sel_t *s
        if not cpu and not 0 <= engine < <int>self.p.ntables:
            raise ValueError(f"engine {engine} names no PFE table")
        if npairs == 0 or npairs > 0xFFFF or nsel > 0xFFFF:
            raise ValueError("a tunnel has 1..65535 child SA pairs")
        try:
            new_pairs = <pl_pair_t *>calloc(npairs, sizeof(pl_pair_t))
            new_sels = <pl_sel_t *>calloc(nsel if nsel else 1, sizeof(pl_sel_t))
            if new_pairs == NULL or new_sels == NULL:
                raise MemoryError()
            for j in range(npairs):
                handle, limit = pairs[j]
                new_pairs[j].out_handle = handle
                new_pairs[j].mtu_limit = max(0, limit)
            for j in range(nsel):
                local, remote = selectors[j]
                if len(local) > MAX_NETS or len(remote) > MAX_NETS:
                    raise ValueError(f"at most {MAX_NETS} networks per selector side")
                s = &new_sels[j]
                s.nets = <pl_net_t *>calloc(len(local) + len(remote) + 1, sizeof(pl_net_t))
                if s.nets == NULL:
                    raise MemoryError()
                for k in range(len(local)):
                    _net(&s.nets[k], local[k])
                for k in range(len(remote)):
                    _net(&s.nets[len(local) + k], remote[k])
                s.nlocal = len(local)
                s.nremote = len(remote)
        except BaseException:
            if new_sels != NULL:
                for j in range(nsel):
                    free(new_sels[j].nets)
            free(new_sels)
            free(new_pairs)
            raise
        _free_tunnel(t)
        t.pairs = new_pairs
        t.sels = new_sels
        t.npairs = <uint16_t>npairs
        t.nsel = <uint16_t>nsel
        t.cpu = cpu
        t.engine = 0 if cpu else engine
        t.state = TUNNEL_ACTIVE
        self.p.gen += 1

    def set_pending(self, long tid) -> None:
        """Tunnel `tid` is routed to but has no SAs: its packets are punted (PUNT_ROUTE)."""
        cdef pl_tunnel_t *t = self._tunnel(tid)
        _free_tunnel(t)
        t.state = TUNNEL_PENDING
        self.p.gen += 1

    def clear_tunnel(self, long tid) -> None:
        """Forget tunnel `tid` and zero its counters (the id may be reused)."""
        cdef pl_tunnel_t *t = self._tunnel(tid)
        _free_tunnel(t)
        memset(t, 0, sizeof(pl_tunnel_t))
        self.p.gen += 1

    def tunnel_state(self, long tid) -> int:
        return self._tunnel(tid).state

    def tunnel_counters(self, long tid) -> dict:
        return tunnel_counters_dict(&self._tunnel(tid).c)

    def tunnel_drops(self, long tid) -> dict:
        """Inbound engine drops of tunnel `tid` by Status code (non-zero ones)."""
        cdef pl_tunnel_t *t = self._tunnel(tid)
        return {k: t.in_drop[k] for k in range(PL_STATUS_CODES) if t.in_drop[k]}

    # -- FIB -------------------------------------------------------------------------------

    cdef fib_t *_fib(self, int version) except NULL:
        if version == 4:
            return &self.p.fib4
        if version == 6:
            return &self.p.fib6
        raise ValueError("version must be 4 or 6")

    def route_set(self, int version, int plen, bytes packed, tids) -> None:
        """Route `packed`/`plen` to the tunnel ids `tids` (tried in order); replaces them."""
        cdef fib_t *f = self._fib(version)
        cdef pl_net_t net
        cdef fib_entry_t *e
        cdef int32_t *arr
        cdef Py_ssize_t k, n = len(tids)
        cdef uint32_t i
        _net(&net, (version, plen, packed))
        if n == 0:
            self.route_del(version, plen, packed)
            return
        if n > 0xFFFF:
            raise ValueError("at most 65535 tunnels behind one prefix")
        arr = <int32_t *>calloc(n, sizeof(int32_t))
        if arr == NULL:
            raise MemoryError()
        for k in range(n):
            arr[k] = tids[k]
        e = fib_find(f, net.addr, net.plen)
        if e != NULL:
            free(e.tids)
            e.tids = arr
            e.ntids = <uint16_t>n
            self.p.gen += 1
            return
        if self.p.fib4.count + self.p.fib6.count >= self.max_routes:
            free(arr)
            raise OverflowError(f"the FIB is full ({self.max_routes} routes)")
        if (f.count + 1) * 2 > f.cap:
            try:
                fib_grow(f)
            except BaseException:
                free(arr)
                raise
        i = <uint32_t>fib_hash(net.addr, net.plen) & (f.cap - 1)
        while f.slots[i].used:
            i = (i + 1) & (f.cap - 1)
        e = &f.slots[i]
        e.used = 1
        e.plen = net.plen
        memcpy(e.addr, net.addr, 16)
        e.tids = arr
        e.ntids = <uint16_t>n
        f.count += 1
        f.per_len[net.plen] += 1
        fib_relens(f)
        self.p.gen += 1

    def route_del(self, int version, int plen, bytes packed) -> bool:
        cdef fib_t *f = self._fib(version)
        cdef pl_net_t net
        cdef fib_entry_t *e
        _net(&net, (version, plen, packed))
        e = fib_find(f, net.addr, net.plen)
        if e == NULL:
            return False
        fib_delete_at(f, <uint32_t>(e - f.slots))
        f.count -= 1
        f.per_len[net.plen] -= 1
        fib_relens(f)
        self.p.gen += 1
        return True

    def route_clear(self) -> None:
        for f in (4, 6):
            self._route_clear(f)

    cdef void _route_clear(self, int version):
        cdef fib_t *f = &self.p.fib4 if version == 4 else &self.p.fib6
        fib_free_slots(f.slots, f.cap)
        memset(f, 0, sizeof(fib_t))
        self.p.gen += 1

    def route_count(self) -> int:
        return self.p.fib4.count + self.p.fib6.count

    def lookup(self, int version, bytes dst) -> list:
        """The tunnel ids behind the longest prefix matching `dst` ([] if none)."""
        cdef const fib_entry_t *e
        cdef uint32_t alen = 4 if version == 4 else 16
        if version not in (4, 6) or len(dst) != alen:
            raise ValueError("a packed IPv4 or IPv6 address")
        e = fib_lookup(&self.p.fib4 if version == 4 else &self.p.fib6,
                       <const uint8_t *><const char *>dst, alen)
        if e == NULL:
            return []
        return [e.tids[k] for k in range(e.ntids)]

    # -- SPI map -----------------------------------------------------------------------------

    def spi_set(self, uint32_t spi, long tid, int engine, int pair, int32_t handle) -> None:
        """Inbound SA `spi` belongs to tunnel `tid`, on PFE table `engine` (or ENGINE_CPU),
        child SA pair `pair` (-1: draining after a rekey)."""
        cdef spi_map_t *m = &self.p.spis
        cdef uint32_t i
        self._tunnel(tid)
        if engine != PL_ENGINE_CPU and not 0 <= engine < <int>self.p.ntables:
            raise ValueError(f"engine {engine} names no PFE table")
        if spi_find(m, spi) == NULL:
            if m.count >= self.max_spis:
                raise OverflowError(f"the SPI map is full ({self.max_spis} SAs)")
            if (m.count + 1) * 2 > m.cap:
                spi_grow(m)
        i = spi_home(spi, m.cap)
        while m.slots[i].used and m.slots[i].spi != spi:
            i = (i + 1) & (m.cap - 1)
        if not m.slots[i].used:
            m.count += 1
        m.slots[i].used = 1
        m.slots[i].spi = spi
        m.slots[i].tid = tid
        m.slots[i].engine = engine
        m.slots[i].pair = pair
        m.slots[i].handle = handle
        self.p.gen += 1             # entries may have moved (grow) or changed: no cached SPI

    def spi_del(self, uint32_t spi) -> bool:
        cdef spi_map_t *m = &self.p.spis
        cdef const spi_entry_t *e = spi_find(m, spi)
        cdef uint32_t i, j, k
        if e == NULL:
            return False
        i = <uint32_t>(e - m.slots)
        m.slots[i].used = 0
        j = i
        while True:
            j = (j + 1) & (m.cap - 1)
            if not m.slots[j].used:
                break
            k = spi_home(m.slots[j].spi, m.cap)
            if (j > i and (k <= i or k > j)) or (j < i and (k <= i and k > j)):
                m.slots[i] = m.slots[j]
                m.slots[j].used = 0
                i = j
        m.count -= 1
        self.p.gen += 1
        return True

    def spi_clear(self) -> None:
        free(self.p.spis.slots)
        memset(&self.p.spis, 0, sizeof(spi_map_t))
        self.p.gen += 1

    def spi_get(self, uint32_t spi):
        """(tid, engine, pair, handle) of an inbound SPI, or None."""
        cdef const spi_entry_t *e = spi_find(&self.p.spis, spi)
        if e == NULL:
            return None
        return (e.tid, e.engine, e.pair, e.handle)

    def spi_count(self) -> int:
        return self.p.spis.count

    # -- sessions and counters ---------------------------------------------------------------

    def session_add(self, bytes key, int proto) -> None:
        """Count a session seen by the Python path (key: source ‖ destination)."""
        session_add(&self.p, <const uint8_t *><const char *>key, len(key), <uint8_t>proto)

    def sessions(self) -> int:
        return self.p.nsessions

    def gateway_counters(self) -> dict:
        return gateway_counters_dict(&self.p.c)

    def path_counters(self) -> dict:
        return {"encrypted": self.p.pfe.encrypted, "decrypted": self.p.pfe.decrypted,
                "encrypt_drops": self.p.pfe.encrypt_drops,
                "decrypt_drops": self.p.pfe.decrypt_drops,
                "burst_calls": self.p.pfe.burst_calls, "seconds": self.p.pfe.ns / 1e9}

    # -- bursts ------------------------------------------------------------------------------

    @cython.binding(False)
    def outbound(self, PipelineArrays b not None, Py_ssize_t n, int select=-1) -> int:
        """Route and encrypt slots 0..n-1 in place; `verdict`, `status`, `sa` and `tunnel`
        are set per slot. Returns the number of punts."""
        return self._outbound(b, n, select)

    @cython.binding(False)
    def inbound(self, PipelineArrays b not None, Py_ssize_t n, int select=-1,
                bint count_received=True) -> int:
        """Demux, decrypt, check and route slots 0..n-1 in place. Returns the punts."""
        return self._inbound(b, n, select, count_received)

    cdef Py_ssize_t _outbound(self, PipelineArrays b, Py_ssize_t n, int select) except -1:
        cdef Py_ssize_t punts
        b.check(n)
        if n == 0:
            return 0
        if burst_keeps_gil():
            return pl_outbound(&self.p, &b.data[0, 0], b.data.shape[1], &b.offset[0],
                               &b.length[0], &b.sa[0], &b.status[0], &b.verdict[0],
                               &b.tunnel[0], n, select)
        with nogil:
            gil_handoff_enter()
            punts = pl_outbound(&self.p, &b.data[0, 0], b.data.shape[1], &b.offset[0],
                                &b.length[0], &b.sa[0], &b.status[0], &b.verdict[0],
                                &b.tunnel[0], n, select)
            gil_handoff_leave()
        return punts

    cdef Py_ssize_t _inbound(self, PipelineArrays b, Py_ssize_t n, int select,
                             bint count_received) except -1:
        cdef Py_ssize_t punts
        b.check(n)
        if n == 0:
            return 0
        if burst_keeps_gil():
            return pl_inbound(&self.p, &b.data[0, 0], b.data.shape[1], &b.offset[0],
                              &b.length[0], &b.sa[0], &b.status[0], &b.verdict[0],
                              &b.tunnel[0], n, select, count_received)
        with nogil:
            gil_handoff_enter()
            punts = pl_inbound(&self.p, &b.data[0, 0], b.data.shape[1], &b.offset[0],
                               &b.length[0], &b.sa[0], &b.status[0], &b.verdict[0],
                               &b.tunnel[0], n, select, count_received)
            gil_handoff_leave()
        return punts

    # The burst-object entry points: a gateway binds these as its own `outbound_burst` and
    # `inbound_burst`, so that a burst without punts costs one C call and no Python frame;
    # only a burst with punts calls back into Python.
    def bind_punts(self, no_punts, outbound_punts, inbound_punts) -> None:
        """`no_punts` is returned for a burst without punts; `outbound_punts(burst, ingress)`
        and `inbound_punts(burst)` handle one with punts and return what they produced."""
        if not callable(outbound_punts) or not callable(inbound_punts):
            raise TypeError("the punt handlers must be callable")
        self.no_punts = no_punts
        self.outbound_punts = outbound_punts
        self.inbound_punts = inbound_punts

    @cython.binding(False)
    def outbound_burst(self, burst, int select=-1, ingress=None):
        """Route and encrypt `burst.count` packets of a `Burst` in place (`outbound`);
        returns `no_punts`, or what `outbound_punts` made of the punted packets."""
        if self.outbound_punts is None:
            raise RuntimeError("bind_punts was not called")
        cdef Py_ssize_t n
        cdef PipelineArrays arrays = _pipeline_view_and_count(burst, &n)
        if self._outbound(arrays, n, select) == 0:
            return self.no_punts
        return self.outbound_punts(burst, ingress)

    @cython.binding(False)
    def inbound_burst(self, burst, int select=-1):
        """Demux, decrypt, check and route `burst.count` packets of a `Burst` in place
        (`inbound`); returns `no_punts`, or what `inbound_punts` made of the punts."""
        if self.inbound_punts is None:
            raise RuntimeError("bind_punts was not called")
        cdef Py_ssize_t n
        cdef PipelineArrays arrays = _pipeline_view_and_count(burst, &n)
        if self._inbound(arrays, n, select, True) == 0:
            return self.no_punts
        return self.inbound_punts(burst)


@cython.binding(False)
def run_pair(Pipeline a not None, Pipeline b not None, PipelineArrays arrays not None,
             Py_ssize_t n):
    """`a` encrypts slots 0..n-1 and `b` takes what `a` sent, in one call with the GIL
    released: two gateways back to back, as a benchmark's inner loop (no Python between
    them). Returns (punts at a, punts at b)."""
    cdef Py_ssize_t pa, pb
    arrays.check(n)
    if n == 0:
        return (0, 0)
    if burst_keeps_gil():
        _pair(&a.p, &b.p, arrays, n, &pa, &pb)
        return (pa, pb)
    with nogil:
        gil_handoff_enter()
        _pair(&a.p, &b.p, arrays, n, &pa, &pb)
        gil_handoff_leave()
    return (pa, pb)


cdef inline void _pair(pipeline_t *a, pipeline_t *b, PipelineArrays arrays, Py_ssize_t n,
                       Py_ssize_t *pa, Py_ssize_t *pb) noexcept nogil:
    pa[0] = pl_outbound(a, &arrays.data[0, 0], arrays.data.shape[1], &arrays.offset[0],
                        &arrays.length[0], &arrays.sa[0], &arrays.status[0],
                        &arrays.verdict[0], &arrays.tunnel[0], n, -1)
    pb[0] = pl_inbound(b, &arrays.data[0, 0], arrays.data.shape[1], &arrays.offset[0],
                       &arrays.length[0], &arrays.sa[0], &arrays.status[0],
                       &arrays.verdict[0], &arrays.tunnel[0], n, WIRE, True)
