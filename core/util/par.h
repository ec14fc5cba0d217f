/* Internal: parallel loops over independent work items (channels, planes,
 * images) for the core's non-GEMM passes.
 *
 * ip_par_for(n, floats, fn, ctx) cuts [0, n) into contiguous ranges (about 8
 * per thread) and calls fn(ctx, i0, i1) on each; the calling thread and the
 * workers claim ranges until none is left, so a worker the scheduler is slow
 * to run never holds the loop up. The thread count is ip_par_set_threads's
 * (`--threads`; until set, OpenBLAS's default), 1 when the pass touches
 * fewer than ~32K floats (the hand-off costs a few microseconds). OpenBLAS
 * itself always runs single-threaded (see gemm.h): never call
 * openblas_set_num_threads, call ip_par_set_threads.
 *
 * Threads. With the pthread build of OpenBLAS (the default), the loops run on
 * a small pool of our own whose idle workers sleep (after a very short spin)
 * instead of spinning: OpenBLAS's own workers busy-wait between GEMMs, and a
 * second set of spinning threads (OpenMP's default policy) would steal their
 * cores. When the core is compiled with -fopenmp and OpenBLAS is its OpenMP
 * build (openblas_get_parallel() == 2), the loops are OpenMP loops instead, so
 * GEMMs and loops share libgomp's one team.
 *
 * Determinism: fn must compute every item the same way whatever range it
 * comes in (one channel, one plane...), so results are bit-identical for any
 * thread count. Never split one reduction across items. */
#ifndef IP_PAR_H
#define IP_PAR_H

#include <stddef.h>

typedef void (*ip_par_fn)(void *ctx, size_t i0, size_t i1);

/* Threads for every parallel pass and GEMM (n < 1: 1); keeps OpenBLAS single-threaded. */
void ip_par_set_threads(int n);
int ip_par_get_threads(void);
/* Makes OpenBLAS single-threaded (once; done at start-up anyway): every BLAS caller may rely on it. */
void ip_par_blas_single(void);

/* Threads ip_par_for would use for a pass touching `floats` floats. */
int ip_par_threads(size_t floats);
/* Runs fn over [0, n) on up to ip_par_threads(floats) threads; returns when every item is done.
 * A call from inside a loop body runs serially. */
void ip_par_for(size_t n, size_t floats, ip_par_fn fn, void *ctx);

#endif
