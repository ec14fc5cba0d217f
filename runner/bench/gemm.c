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
    int size = 1024, reps = 10, threads = 0, M = 0, N = 0, K = 0;
    cli_opt opts[] = {
        {"size", CLI_INT, &size, 0, "N", "square matrix size (default 1024)"},
        {"m", CLI_INT, &M, 0, "M", "rows of C instead of --size (a layer's GEMM: Cout)"},
        {"n", CLI_INT, &N, 0, "N", "columns of C instead of --size (a layer's GEMM: batch*OH*OW)"},
        {"k", CLI_INT, &K, 0, "K", "inner dimension instead of --size (a layer's GEMM: Cin*KH*KW)"},
        {"reps", CLI_INT, &reps, 0, "N", "timed repetitions (default 10; the median is reported)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default all cores)"},
    };
    cli_cmd c = {"bench gemm", "ipsweep bench gemm [--size N | --m M --n N --k K] [--reps N] [--threads N]",
                 "Measures ip_sgemm (blocked SGEMM on --threads threads) on N x N x N, or M x N x K, and prints\n"
                 "gemm_gflops (median of the repetitions) and best_gflops.", opts,
                 (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    M = M ? M : size, N = N ? N : size, K = K ? K : size;
    if (M < 1 || N < 1 || K < 1 || reps < 1 || reps > 1000)
        return cli_error("bench gemm", "--size, --m, --n, --k and --reps must be positive");
    if ((double)M * K > 1e9 || (double)K * N > 1e9 || (double)M * N > 1e9)
        return cli_error("bench gemm", "a matrix of more than 1e9 floats");
    int nt = ip_set_threads(threads);
    size_t m = (size_t)M, n = (size_t)N, k = (size_t)K;
    float *a = malloc(m * k * 4), *b = malloc(k * n * 4), *cc = malloc(m * n * 4);
    double *times = malloc((size_t)reps * sizeof *times);
    if (!a || !b || !cc || !times) return fprintf(stderr, "ipsweep bench gemm: out of memory\n"), 1;
    ip_rng r;
    ip_rng_init(&r, 1, ip_stream("bench", 0));
    for (size_t i = 0; i < m * k; i++) a[i] = ip_rng_uniform(&r);
    for (size_t i = 0; i < k * n; i++) b[i] = ip_rng_uniform(&r);
    ip_sgemm(CblasNoTrans, CblasNoTrans, M, N, K, 1.f, a, K, b, N, 0.f, cc, N);
    for (int i = 0; i < reps; i++) {
        double t0 = ip_now_s();
        ip_sgemm(CblasNoTrans, CblasNoTrans, M, N, K, 1.f, a, K, b, N, 0.f, cc, N);
        times[i] = ip_now_s() - t0;
    }
    for (int i = 1; i < reps; i++) /* insertion sort for the median */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1], times[j - 1] = t;
        }
    double med = times[reps / 2];
    double flops = 2.0 * (double)m * (double)n * (double)k;
    printf("bench=gemm threads=%d m=%d n=%d k=%d reps=%d gemm_gflops=%.1f best_gflops=%.1f\n", nt, M, N, K, reps,
           flops / med / 1e9, flops / times[0] / 1e9);
    free(a), free(b), free(cc), free(times);
    return 0;
}
