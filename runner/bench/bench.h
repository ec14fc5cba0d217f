/* The room of `ipsweep bench`: one file per benchmark (gemm.c, train.c,
 * dispatch.c, forge.c, fingerprint.c) and the dispatcher with THE table of
 * benchmarks (bench.c). Each benchmark takes the arguments after its name,
 * prints one line of key=value on stdout (docs/performance.md) and returns the
 * exit status (0 ok, 1 failed, 2 usage error). Adding one: a file here and a
 * row in rn_benches[]. */
#ifndef RN_BENCH_H
#define RN_BENCH_H

int rn_bench_gemm(int argc, char **argv);
int rn_bench_train(int argc, char **argv);
int rn_bench_dispatch(int argc, char **argv);
int rn_bench_forge(int argc, char **argv);
int rn_bench_fingerprint(int argc, char **argv);

/* A row of the table: `bench` dispatch, its usage and the top-level help
 * (main.c, through rn_bench_names in commands.h) all come from it. */
typedef struct rn_bench {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} rn_bench;
extern const rn_bench rn_benches[];
extern const int rn_nbenches;

#endif
