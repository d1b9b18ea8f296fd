/* Taking the GIL back after a burst without sleeping on it.
 *
 * Every burst call releases the GIL for its C work and takes it back afterwards. When two
 * threads run bursts, one often finishes its C work while the other holds the GIL for the few
 * hundred nanoseconds of Python between its calls. CPython's take_gil then sleeps on a
 * condition variable, and the wake-up (a futex wake, a context switch, on a VM an
 * inter-processor interrupt) costs tens of microseconds, many bursts' worth: measured here,
 * two threads of 64-byte bursts made about 33,000 such sleeps a second and ran slower than
 * one thread.
 *
 * So a thread that is about to take the GIL back first waits, spinning briefly and without
 * the GIL, while another burst-calling thread is between its calls (in Python, holding or
 * about to take the GIL). Each thread that calls bursts has a slot with the time it left its
 * last burst for Python, or 0 while it is inside a burst. A thread in Python for longer than
 * HANDOFF_RECENT_NS is doing something else, and the wait never exceeds HANDOFF_SPIN_NS, so a
 * thread alone, or beside threads that do other work, loses almost nothing. It is a
 * heuristic: it changes when the GIL is taken, never whether, so correctness does not depend
 * on it. */
#ifndef INLINE_IPSEC_GIL_HANDOFF_H
#define INLINE_IPSEC_GIL_HANDOFF_H

#include <stdint.h>
#include <time.h>
#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HANDOFF_PAUSE() _mm_pause()
#else
#define HANDOFF_PAUSE() ((void)0)
#endif

#define HANDOFF_SLOTS 64            /* threads beyond these take the GIL as CPython does */
#define HANDOFF_RECENT_NS 20000     /* in Python longer than this: not between bursts */
#define HANDOFF_SPIN_NS 4000        /* the longest wait before taking the GIL regardless */

/* One cache line per thread: each thread writes its own twice per burst, and the others'
 * spinning reads must not make those writes bounce a shared line between cores. */
typedef struct {
    int64_t since;                  /* 0: in a burst (or never called); else left at (ns) */
    int in_use;
    uint64_t waits, wait_ns, timeouts;   /* bursts that waited, for how long, cut off */
} __attribute__((aligned(64))) handoff_slot_t;

/* What the waits of all threads (gone ones included) came to. */
static uint64_t handoff_totals[3];

static handoff_slot_t handoff_slots[HANDOFF_SLOTS];
static int handoff_used;            /* slots ever claimed: the scan's bound */
static int handoff_active;          /* slots held now: alone, a burst skips the scan */
static int handoff_enabled = 1;
static __thread int handoff_slot = -1;   /* -1: none yet; -2: none free */
static pthread_key_t handoff_key;
static pthread_once_t handoff_once = PTHREAD_ONCE_INIT;

/* A thread's slot is freed when the thread ends (the key's destructor). */
static void handoff_release(void *p) {
    handoff_slot_t *slot = (handoff_slot_t *)p;
    __atomic_fetch_add(&handoff_totals[0], slot->waits, __ATOMIC_RELAXED);
    __atomic_fetch_add(&handoff_totals[1], slot->wait_ns, __ATOMIC_RELAXED);
    __atomic_fetch_add(&handoff_totals[2], slot->timeouts, __ATOMIC_RELAXED);
    slot->waits = slot->wait_ns = slot->timeouts = 0;
    __atomic_store_n(&slot->since, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->in_use, 0, __ATOMIC_RELEASE);
    __atomic_fetch_sub(&handoff_active, 1, __ATOMIC_RELAXED);
}

static void handoff_init(void) { (void)pthread_key_create(&handoff_key, handoff_release); }

static inline int handoff_claim(void) {
    pthread_once(&handoff_once, handoff_init);
    for (int j = 0; j < HANDOFF_SLOTS; j++) {
        int free_ = 0;
        if (__atomic_compare_exchange_n(&handoff_slots[j].in_use, &free_, 1, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
            int used = __atomic_load_n(&handoff_used, __ATOMIC_RELAXED);
            while (used < j + 1 && !__atomic_compare_exchange_n(&handoff_used, &used, j + 1, 1,
                                                                __ATOMIC_RELAXED,
                                                                __ATOMIC_RELAXED))
                ;
            __atomic_fetch_add(&handoff_active, 1, __ATOMIC_RELAXED);
            (void)pthread_setspecific(handoff_key, &handoff_slots[j]);
            return j;
        }
    }
    return -2;
}

static inline int64_t handoff_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Threads holding a slot now (for tests and diagnostics). */
static inline int handoff_threads(void) {
    int n = 0;
    for (int j = 0; j < HANDOFF_SLOTS; j++)
        n += __atomic_load_n(&handoff_slots[j].in_use, __ATOMIC_ACQUIRE);
    return n;
}

/* out[0..2]: waits, nanoseconds waited, waits cut off at HANDOFF_SPIN_NS, all threads. */
static inline void handoff_stats(uint64_t *out) {
    for (int k = 0; k < 3; k++)
        out[k] = __atomic_load_n(&handoff_totals[k], __ATOMIC_RELAXED);
    for (int j = 0; j < HANDOFF_SLOTS; j++) {
        out[0] += __atomic_load_n(&handoff_slots[j].waits, __ATOMIC_RELAXED);
        out[1] += __atomic_load_n(&handoff_slots[j].wait_ns, __ATOMIC_RELAXED);
        out[2] += __atomic_load_n(&handoff_slots[j].timeouts, __ATOMIC_RELAXED);
    }
}

/* After releasing the GIL, at the start of a burst's C work. */
static inline void handoff_enter(void) {
    int s = handoff_slot;
    if (s == -1)
        handoff_slot = s = handoff_claim();
    if (s >= 0)
        __atomic_store_n(&handoff_slots[s].since, 0, __ATOMIC_RELEASE);
}

/* At the end of a burst's C work, before taking the GIL back: wait (bounded) while another
 * burst-calling thread is between its bursts, then mark this one as leaving for Python. */
static inline void handoff_leave(void) {
    int s = handoff_slot;
    if (s < 0)
        return;
    if (__atomic_load_n(&handoff_active, __ATOMIC_RELAXED) <= 1
            || !__atomic_load_n(&handoff_enabled, __ATOMIC_RELAXED)) {
        /* alone (or off): no clock read; 1 reads as "in Python for ages" to a newcomer */
        __atomic_store_n(&handoff_slots[s].since, 1, __ATOMIC_RELEASE);
        return;
    }
    handoff_slot_t *me = &handoff_slots[s];
    int used = __atomic_load_n(&handoff_used, __ATOMIC_RELAXED);
    int64_t start = handoff_now(), now = start;
    for (;;) {
        int busy = 0;
        for (int j = 0; j < used && !busy; j++) {
            int64_t t = __atomic_load_n(&handoff_slots[j].since, __ATOMIC_ACQUIRE);
            busy = j != s && t != 0 && now - t < HANDOFF_RECENT_NS;
        }
        if (!busy)
            break;
        if (now - start >= HANDOFF_SPIN_NS) {
            __atomic_store_n(&me->timeouts, me->timeouts + 1, __ATOMIC_RELAXED);
            break;
        }
        for (int k = 0; k < 16; k++)
            HANDOFF_PAUSE();
        now = handoff_now();
    }
    if (now != start) {
        __atomic_store_n(&me->waits, me->waits + 1, __ATOMIC_RELAXED);
        __atomic_store_n(&me->wait_ns, me->wait_ns + (uint64_t)(now - start), __ATOMIC_RELAXED);
    }
    __atomic_store_n(&handoff_slots[s].since, now, __ATOMIC_RELEASE);
}

#endif
