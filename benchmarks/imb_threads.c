/* What limits two threads of intel-ipsec-mb's AES-GCM API: a C program, no Python.
 *
 * The library's direct GCM calls (IMB_AES256_GCM_DEC and the others) store 0 into a
 * process-wide error word on entry, on every call (intel-ipsec-mb 1.3: `movl $0, imb_errno`
 * before the argument checks). Two cores calling it write the same cache line, which then moves
 * between them on every packet. This program measures what that costs: two threads decrypting
 * 64-byte ESP payloads (AES-GCM-256, the PFE's call, each thread its own manager, key and
 * packets, pinned to CPUs 0 and 1) against one thread, in alternating rounds of
 *
 *   shared   both threads on the one library the program is linked with;
 *   private  the second thread on a second copy of the library, loaded with dlmopen into a
 *            namespace of its own, so that each copy's error word is written by one core only;
 *   aes      a control without the library: AES-NI and PCLMUL work of about one 64-byte GCM
 *            per packet on each thread's own data.
 *
 * Each round times one thread, then two, over the same number of packets; the figure is the
 * two threads' packets per second over the one thread's, median and quartiles over the rounds.
 *
 *   cc -O2 -maes -mpclmul -msse4.1 -o imb_threads benchmarks/imb_threads.c -lIPSec_MB \
 *      -lpthread -ldl && ./imb_threads [rounds] [passes]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <intel-ipsec-mb.h>

#define NPKT 128
#define SLOT 2048
#define PAYLOAD 68            /* a 64-byte inner packet, its trailer padded to 4 bytes */

enum { SHARED, PRIVATE, AES, MODES };
static const char *mode_name[MODES] = {
    "shared: both threads on one copy of the library",
    "private: the second thread on its own copy (dlmopen)",
    "aes: AES-NI + PCLMUL control, no library call",
};

typedef struct {
    IMB_MGR *mgr;
    struct gcm_key_data *key;
    uint8_t *slots, *out;
    uint8_t nonce[NPKT][16], tag[NPKT][16];
} worker_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *must(void *p, const char *what) {
    if (p == NULL) {
        fprintf(stderr, "%s failed\n", what);
        exit(2);
    }
    return p;
}

typedef void (*init_auto_t)(IMB_MGR *, IMB_ARCH *);

/* A manager from the given copy's allocator and initialiser (the widest code the CPU runs, as
 * the PFE picks by default), a key, and NPKT sealed payloads. */
static IMB_ARCH worker_init(worker_t *w, IMB_MGR *(*alloc)(uint64_t), init_auto_t init) {
    static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct gcm_context_data ctx;
    IMB_ARCH arch = IMB_ARCH_NONE;
    w->mgr = must(alloc(0), "alloc_mb_mgr");
    init(w->mgr, &arch);
    if (arch == IMB_ARCH_NONE || arch == IMB_ARCH_NOAESNI)
        must(NULL, "a manager on AES-NI code");
    if (posix_memalign((void **)&w->key, 64, sizeof(*w->key)) != 0
            || posix_memalign((void **)&w->slots, 4096, (size_t)NPKT * SLOT) != 0
            || posix_memalign((void **)&w->out, 4096, 4096) != 0)
        must(NULL, "posix_memalign");
    IMB_AES256_GCM_PRE(w->mgr, key, w->key);
    memset(w->slots, 0x5a, (size_t)NPKT * SLOT);
    for (int i = 0; i < NPKT; i++) {
        uint8_t *p = w->slots + (size_t)i * SLOT + 128;
        memset(w->nonce[i], i, 12);
        IMB_AES256_GCM_ENC(w->mgr, w->key, &ctx, p, p, PAYLOAD, w->nonce[i], p - 8, 8,
                           w->tag[i], 16);
    }
    return arch;
}

/* `passes` passes over the worker's packets; the packets that verified. */
static long work(const worker_t *w, int mode, int passes) {
    struct gcm_context_data ctx;
    uint8_t tag[16];
    long ok = 0;
    for (int r = 0; r < passes; r++)
        for (int i = 0; i < NPKT; i++) {
            const uint8_t *p = w->slots + (size_t)i * SLOT + 128;
            if (mode == AES) {
                const __m128i *rk = (const __m128i *)w->key->expanded_keys;
                __m128i b[5], h = _mm_loadu_si128(rk + 15);
                for (int j = 0; j < 4; j++)
                    b[j] = _mm_loadu_si128((const __m128i *)(p + 16 * j));
                b[4] = _mm_set1_epi32(i);
                for (int q = 0; q < 14; q++)
                    for (int j = 0; j < 5; j++)
                        b[j] = _mm_aesenc_si128(b[j], _mm_loadu_si128(rk + q));
                for (int q = 0; q < 6; q++)
                    b[4] = _mm_xor_si128(_mm_clmulepi64_si128(b[4], h, 0x00),
                                         _mm_clmulepi64_si128(b[4], h, 0x11));
                _mm_storeu_si128((__m128i *)w->out, _mm_xor_si128(b[4], b[0]));
                ok++;
                continue;
            }
            IMB_AES256_GCM_DEC(w->mgr, w->key, &ctx, w->out + 1024, p, PAYLOAD, w->nonce[i],
                               p - 8, 8, tag, 16);
            ok += memcmp(tag, w->tag[i], 16) == 0;
        }
    return ok;
}

typedef struct {
    const worker_t *w;
    int cpu, mode, passes;
    pthread_barrier_t *start;
    double seconds;
    long ok;
} job_t;

static void *run_job(void *arg) {
    job_t *j = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(j->cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    pthread_barrier_wait(j->start);
    double t0 = now();
    j->ok = work(j->w, j->mode, j->passes);
    j->seconds = now() - t0;
    return NULL;
}

/* Packets per second of `n` threads running workers[0..n-1] at once. */
static double rate(const worker_t *const *workers, int n, int mode, int passes) {
    pthread_t tid[2];
    job_t jobs[2];
    pthread_barrier_t start;
    double total = 0;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int k = 0; k < n; k++) {
        jobs[k] = (job_t){workers[k], k, mode, passes, &start, 0, 0};
        if (pthread_create(&tid[k], NULL, run_job, &jobs[k]) != 0)
            must(NULL, "pthread_create");
    }
    for (int k = 0; k < n; k++) {
        pthread_join(tid[k], NULL);
        if (jobs[k].ok != (long)passes * NPKT) {
            fprintf(stderr, "packets failed to verify\n");
            exit(1);
        }
        total += (double)passes * NPKT / jobs[k].seconds;
    }
    pthread_barrier_destroy(&start);
    return total;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 40;
    int passes = argc > 2 ? atoi(argv[2]) : 15000;
    if (rounds < 1 || rounds > 1000 || passes < 1) {
        fprintf(stderr, "usage: %s [rounds 1..1000] [passes]\n", argv[0]);
        return 2;
    }
    Dl_info where;
    if (dladdr((void *)alloc_mb_mgr, &where) == 0 || where.dli_fname == NULL)
        must(NULL, "dladdr");
    void *copy = must(dlmopen(LM_ID_NEWLM, where.dli_fname, RTLD_NOW | RTLD_LOCAL), "dlmopen");
    IMB_MGR *(*copy_alloc)(uint64_t) = (IMB_MGR * (*)(uint64_t)) must(dlsym(copy, "alloc_mb_mgr"),
                                                                      "dlsym");
    init_auto_t copy_init = (init_auto_t)must(dlsym(copy, "init_mb_mgr_auto"), "dlsym");

    static worker_t first, second_shared, second_private;
    static const char *arch_name[] = {"none", "no-aesni", "sse", "avx", "avx2", "avx512"};
    IMB_ARCH arch = worker_init(&first, alloc_mb_mgr, init_mb_mgr_auto);
    worker_init(&second_shared, alloc_mb_mgr, init_mb_mgr_auto);
    worker_init(&second_private, copy_alloc, copy_init);
    const worker_t *pairs[MODES][2] = {
        {&first, &second_shared}, {&first, &second_private}, {&first, &second_shared}};

    double *ratio[MODES];
    for (int m = 0; m < MODES; m++)
        ratio[m] = must(calloc((size_t)rounds, sizeof(double)), "calloc");
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < MODES; k++) {
            int m = (k + r) % MODES;          /* rotating order: no mode always goes first */
            double one = rate(pairs[m], 1, m, passes);
            ratio[m][r] = rate(pairs[m], 2, m, passes) / one;
        }
    printf("intel-ipsec-mb %s (%s), AES-GCM-256 decrypt of %d-byte payloads, %d rounds\n",
           imb_get_version_str(), (unsigned)arch < 6 ? arch_name[arch] : "?", PAYLOAD, rounds);
    for (int m = 0; m < MODES; m++) {
        qsort(ratio[m], (size_t)rounds, sizeof(double), by_value);
        printf("2 threads / 1: median %.2fx (quartiles %.2f-%.2f)  %s\n", ratio[m][rounds / 2],
               ratio[m][rounds / 4], ratio[m][(3 * rounds) / 4], mode_name[m]);
    }
    return 0;
}
