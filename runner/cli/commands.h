/* The ipsweep subcommands. Each takes the arguments after its name and
 * returns the process exit status (0 ok, 1 task failed, 2 usage error). */
#ifndef IP_COMMANDS_H
#define IP_COMMANDS_H

#include <stddef.h>

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* `task KIND --key value ...`: one task of any kind (runner/cli/cmd_model.c) */
int cmd_task(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_validate(int argc, char **argv);
/* `report` (runner/report/report.c) */
int cmd_report(int argc, char **argv);

/* The names of the benchmarks of `ipsweep bench` (runner/bench/: one file per
 * benchmark, the table in bench.c) joined with sep, into out[cap]: the
 * top-level help lists them. */
void rn_bench_names(char *out, size_t cap, const char *sep);

/* Sets the OpenBLAS thread count: `requested` when > 0, otherwise all cores
 * when running alone and 1 per rank under MPI (detected from the launcher's
 * environment). Returns the count used. */
int ip_set_threads(int requested);

#endif
