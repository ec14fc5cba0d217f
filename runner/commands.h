/* The ipsweep subcommands. Each takes the arguments after its name and
 * returns the process exit status (0 ok, 1 task failed, 2 usage error). */
#ifndef IP_COMMANDS_H
#define IP_COMMANDS_H

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

/* Sets the OpenBLAS thread count: `requested` when > 0, otherwise all cores
 * when running alone and 1 per rank under MPI (detected from the launcher's
 * environment). Returns the count used. */
int ip_set_threads(int requested);

#endif
