/* Parallel loops for the non-GEMM passes (see par.h). */
#include "par.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define PAR_MAX_THREADS 64
#define PAR_MIN_FLOATS ((size_t)1 << 15)
/* Busy-wait iterations (a PAUSE each, ~20-60 us in all) before sleeping on a condition variable. */
#define PAR_SPIN 1000

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ---- the thread count ----
 *
 * OpenBLAS runs single-threaded, always: its threaded SGEMM blocks the
 * reduction differently from its single-threaded one, so results would depend
 * on the thread count (gemm.h). The count set by `--threads` (or OpenBLAS's
 * own default: OPENBLAS_NUM_THREADS, else all cores) is ours, taken over from
 * OpenBLAS once, before the first BLAS call: a constructor does it at start-up
 * (OpenBLAS, a shared library, is initialised before us), so even a BLAS call
 * that comes before any pass of ours is single-threaded. */
static atomic_int par_nthreads;
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void take_over_blas_threads(void) {
    int n = openblas_get_num_threads();
    int expected = 0; /* unless ip_par_set_threads came first */
    atomic_compare_exchange_strong(&par_nthreads, &expected, n < 1 ? 1 : n);
    openblas_set_num_threads(1);
}

__attribute__((constructor)) static void blas_single_at_start(void) { ip_par_blas_single(); }

void ip_par_blas_single(void) { pthread_once(&blas_once, take_over_blas_threads); }

void ip_par_set_threads(int n) {
    atomic_store(&par_nthreads, n < 1 ? 1 : n > PAR_MAX_THREADS ? PAR_MAX_THREADS : n);
    ip_par_blas_single();
}

int ip_par_get_threads(void) {
    ip_par_blas_single();
    return atomic_load(&par_nthreads);
}

int ip_par_threads(size_t floats) {
    if (floats < PAR_MIN_FLOATS) return 1;
    int n = ip_par_get_threads();
    return n < 1 ? 1 : n > PAR_MAX_THREADS ? PAR_MAX_THREADS : n;
}

/* ---- the pool: workers 1..nworkers plus the caller ----
 *
 * A loop is cut into chunks of whole items that the participants claim one by
 * one from a shared counter, so a worker that is slow to wake (the machine is
 * shared, and OpenBLAS's own workers spin) never holds the caller up: the
 * caller claims whatever is left and only waits for chunks already running.
 * Every item is computed the same way by whichever thread claims it.
 *
 * The claim counter holds (generation << 32 | next chunk): a worker claims a
 * chunk only with a compare-and-swap on the current generation, so it can
 * never run a chunk of a loop that has already returned. */

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER; /* one loop at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;      /* sleeping / waking */
static pthread_cond_t wake_cv = PTHREAD_COND_INITIALIZER, done_cv = PTHREAD_COND_INITIALIZER;
static int nworkers, sleepers, caller_waiting;
static atomic_uint_least64_t claim; /* generation << 32 | next chunk */
static atomic_uint gen;             /* generation of the posted loop (wakes the workers) */
static atomic_size_t done;          /* chunks finished in the current loop */
static atomic_size_t nchunks_now;   /* job.nchunks, readable by a worker that may be late for its loop */
static struct {
    ip_par_fn fn;
    void *ctx;
    size_t n, nchunks;
} job;
static _Thread_local int in_loop; /* a loop inside a loop body runs serially */
static int atfork_done;

/* Claims and runs chunks of generation g until none is left; returns how many it ran. */
static size_t run_chunks(unsigned g) {
    size_t ran = 0;
    for (;;) {
        uint_least64_t v = atomic_load_explicit(&claim, memory_order_acquire);
        if ((unsigned)(v >> 32) != g || (v & 0xffffffffu) >= atomic_load_explicit(&nchunks_now, memory_order_relaxed))
            break; /* (a stale count from the next loop only ends this one early: the CAS below would fail) */
        if (!atomic_compare_exchange_weak_explicit(&claim, &v, v + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        /* the loop cannot return (nor the next one be posted) before this chunk is done: job is stable
         * until the increment of `done` below, and not to be read after it */
        const size_t c = (size_t)(v & 0xffffffffu), n = job.n, nch = job.nchunks;
        const size_t i0 = n * c / nch, i1 = n * (c + 1) / nch;
        if (i0 < i1) job.fn(job.ctx, i0, i1);
        ran++;
        if (atomic_fetch_add_explicit(&done, 1, memory_order_acq_rel) + 1 == nch) {
            pthread_mutex_lock(&mu);
            if (caller_waiting) pthread_cond_signal(&done_cv);
            pthread_mutex_unlock(&mu);
        }
    }
    return ran;
}

static void *worker_main(void *arg) {
    unsigned seen = (unsigned)(uintptr_t)arg; /* the generation current when this worker was created */
    in_loop = 1;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&gen, memory_order_acquire)) == seen) {
            if (spins++ < PAR_SPIN) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&mu);
            sleepers++;
            while ((g = atomic_load_explicit(&gen, memory_order_acquire)) == seen) pthread_cond_wait(&wake_cv, &mu);
            sleepers--;
            pthread_mutex_unlock(&mu);
            break;
        }
        seen = g;
        run_chunks(g);
    }
    return NULL;
}

/* A forked child has none of the parent's workers. */
static void after_fork_child(void) {
    nworkers = sleepers = caller_waiting = 0;
    pthread_mutex_init(&call_mu, NULL);
    pthread_mutex_init(&mu, NULL);
    pthread_cond_init(&wake_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
}

/* Workers for nt threads in all; returns how many threads the pool can run (>= 1). */
static int ensure_workers(int nt) {
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_child);
        atfork_done = 1;
    }
    unsigned g = atomic_load_explicit(&gen, memory_order_acquire);
    while (nworkers < nt - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker_main, (void *)(uintptr_t)g);
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        nworkers++;
    }
    return nworkers + 1 < nt ? nworkers + 1 : nt;
}

void ip_par_for(size_t n, size_t floats, ip_par_fn fn, void *ctx) {
    if (n == 0) return;
    int nt = ip_par_threads(floats);
    if ((size_t)nt > n) nt = (int)n;
    if (nt <= 1 || in_loop) {
        fn(ctx, 0, n);
        return;
    }
#ifdef _OPENMP
    if (openblas_get_parallel() == 2) { /* OpenBLAS runs on libgomp: share its team */
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nt; t++) {
            size_t i0 = n * (size_t)t / (size_t)nt, i1 = n * (size_t)(t + 1) / (size_t)nt;
            if (i0 < i1) fn(ctx, i0, i1);
        }
        return;
    }
#endif
    pthread_mutex_lock(&call_mu);
    nt = ensure_workers(nt);
    if (nt <= 1) {
        pthread_mutex_unlock(&call_mu);
        fn(ctx, 0, n);
        return;
    }
    /* chunks: about 8 per thread (items are whole channels or planes), at most one item each */
    size_t nchunks = (size_t)nt * 8;
    if (nchunks > n) nchunks = n;
    if (nchunks > 0xffffffffu) nchunks = 0xffffffffu;
    job.fn = fn, job.ctx = ctx, job.n = n, job.nchunks = nchunks;
    atomic_store_explicit(&nchunks_now, nchunks, memory_order_relaxed);
    atomic_store_explicit(&done, 0, memory_order_relaxed);
    unsigned g = atomic_load_explicit(&gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&claim, (uint_least64_t)g << 32, memory_order_release);
    atomic_store_explicit(&gen, g, memory_order_release);
    pthread_mutex_lock(&mu);
    if (sleepers) pthread_cond_broadcast(&wake_cv);
    pthread_mutex_unlock(&mu);
    in_loop = 1;
    run_chunks(g);
    in_loop = 0;
    int spins = 0;
    while (atomic_load_explicit(&done, memory_order_acquire) < nchunks) {
        if (spins++ < PAR_SPIN) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&mu);
        caller_waiting = 1;
        while (atomic_load_explicit(&done, memory_order_acquire) < nchunks) pthread_cond_wait(&done_cv, &mu);
        caller_waiting = 0;
        pthread_mutex_unlock(&mu);
        break;
    }
    pthread_mutex_unlock(&call_mu);
}
