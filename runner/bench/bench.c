/* `ipsweep bench BENCHMARK`: the dispatcher and THE table of benchmarks. Each
 * benchmark is a file of this folder (bench.h) and prints its speed figures as
 * one line of key=value (docs/performance.md). */
#include <stdio.h>
#include <string.h>

#include "../cli/cli.h"
#include "../cli/commands.h"
#include "../spec/suggest.h"
#include "bench.h"

/* THE table of benchmarks: `bench` dispatch, its usage and the top-level help
 * (main.c) all come from it. */
const rn_bench rn_benches[] = {
    {"train", rn_bench_train, "training and inference speed of one architecture"},
    {"gemm", rn_bench_gemm, "cblas_sgemm GFLOP/s"},
    {"dispatch", rn_bench_dispatch, "scheduler throughput: no-op tasks through MPI and the journal"},
    {"forge", rn_bench_forge, "fake-passport evaluations per second"},
    {"fingerprint", rn_bench_fingerprint, "IPGuard fingerprint points per second"},
};
const int rn_nbenches = (int)(sizeof rn_benches / sizeof *rn_benches);

void rn_bench_names(char *out, size_t cap, const char *sep) {
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < rn_nbenches && n < cap; i++) {
        int w = snprintf(out + n, cap - n, "%s%s", i ? sep : "", rn_benches[i].name);
        if (w < 0) break;
        n += (size_t)w;
    }
}

static void bench_usage(FILE *f) {
    fprintf(f, "usage: ipsweep bench BENCHMARK [options]   (ipsweep bench BENCHMARK --help for its options)\n\n"
               "Speed figures, printed as one line of key=value (docs/performance.md).\n\nbenchmarks:\n");
    for (int i = 0; i < rn_nbenches; i++) fprintf(f, "  %-12s %s\n", rn_benches[i].name, rn_benches[i].summary);
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        bench_usage(stdout);
        return 0;
    }
    char names[128];
    rn_bench_names(names, sizeof names, ", ");
    if (argc < 1) return cli_error("bench", "expects a benchmark: %s (see ipsweep bench --help)", names);
    const char *cands[16];
    for (int i = 0; i < rn_nbenches; i++) {
        if (strcmp(argv[0], rn_benches[i].name) == 0) return rn_benches[i].run(argc - 1, argv + 1);
        cands[i] = rn_benches[i].name;
    }
    const char *s = rn_suggest(argv[0], cands, rn_nbenches);
    if (s) return cli_error("bench", "unknown benchmark \"%s\" (did you mean %s?)", argv[0], s);
    return cli_error("bench", "unknown benchmark \"%s\" (benchmarks: %s)", argv[0], names);
}
