/* The ipsweep subcommands. Each takes the arguments after its name and
 * returns the process exit status (0 ok, 1 task failed, 2 usage error). */
#ifndef IP_COMMANDS_H
#define IP_COMMANDS_H

#include <stddef.h>

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
/* `report` (runner/report.c) */
int cmd_report(int argc, char **argv);
int cmd_bench_dispatch(int argc, char **argv);
/* `bench forge` (runner/kind_forge.c) */
int rn_bench_forge(int argc, char **argv);
/* `bench fingerprint` (runner/kind_ipguard.c) */
int rn_bench_fingerprint(int argc, char **argv);

/* The benchmarks of `ipsweep bench` (runner/cmd_bench.c): the one list that
 * its dispatch, its usage and the top-level help use. */
typedef struct rn_bench {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} rn_bench;
extern const rn_bench rn_benches[];
extern const int rn_nbenches;
/* The benchmark names joined with sep, into out[cap]. */
void rn_bench_names(char *out, size_t cap, const char *sep);

/* Sets the OpenBLAS thread count: `requested` when > 0, otherwise all cores
 * when running alone and 1 per rank under MPI (detected from the launcher's
 * environment). Returns the count used. */
int ip_set_threads(int requested);

#endif
