/* `ipsweep bench gemm`: GFLOP/s of ip_sgemm on N x N x N, to be compared with
 * ../shared/bench/torch_anchor.py (docs/performance.md, scripts/bench.sh). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../core/nn/gemm.h"
#include "../../core/util/proc.h"
#include "../../core/util/rng.h"
#include "../cli/cli.h"
#include "../cli/commands.h"
#include "bench.h"

int rn_bench_gemm(int argc, char **argv) {
    int size = 1024, reps = 10, threads = 0;
    cli_opt opts[] = {
        {"size", CLI_INT, &size, 0, "N", "square matrix size (default 1024)"},
        {"reps", CLI_INT, &reps, 0, "N", "timed repetitions (default 10; the median is reported)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default all cores)"},
    };
    cli_cmd c = {"bench gemm", "ipsweep bench gemm [--size N] [--reps N] [--threads N]",
                 "Measures ip_sgemm (blocked SGEMM on --threads threads) on N x N x N and prints gemm_gflops (median of the repetitions).", opts,
                 3, 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (size < 1 || reps < 1 || reps > 1000) return cli_error("bench gemm", "--size and --reps must be positive");
    int nt = ip_set_threads(threads);
    size_t n = (size_t)size;
    float *a = malloc(n * n * 4), *b = malloc(n * n * 4), *cc = malloc(n * n * 4);
    double *times = malloc((size_t)reps * sizeof *times);
    if (!a || !b || !cc || !times) return fprintf(stderr, "ipsweep bench gemm: out of memory\n"), 1;
    ip_rng r;
    ip_rng_init(&r, 1, ip_stream("bench", 0));
    for (size_t i = 0; i < n * n; i++) a[i] = ip_rng_uniform(&r), b[i] = ip_rng_uniform(&r);
    ip_sgemm(CblasNoTrans, CblasNoTrans, size, size, size, 1.f, a, size, b, size, 0.f, cc, size);
    for (int i = 0; i < reps; i++) {
        double t0 = ip_now_s();
        ip_sgemm(CblasNoTrans, CblasNoTrans, size, size, size, 1.f, a, size, b, size, 0.f, cc,
                    size);
        times[i] = ip_now_s() - t0;
    }
    for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1], times[j - 1] = t;
        }
    double med = times[reps / 2];
    printf("bench=gemm threads=%d size=%d reps=%d gemm_gflops=%.1f best_gflops=%.1f\n", nt, size, reps,
           2.0 * n * n * n / med / 1e9, 2.0 * n * n * n / times[0] / 1e9);
    free(a), free(b), free(cc), free(times);
    return 0;
}
