/* ipsweep: the one command-line entry point. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "spec.h"

#ifndef IPSWEEP_VERSION
#define IPSWEEP_VERSION "unknown"
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: ipsweep COMMAND [options]   (ipsweep COMMAND --help for its options)\n\n"
            "Reproducible experiments on the IP protection of neural networks\n"
            "(DeepIPR digital passports, IPGuard fingerprints).\n\n"
            "commands:\n"
            "  run       run an experiment spec (alone or under mpirun/srun)\n"
            "  validate  check an experiment spec and report every error\n"
            "  report    tables (markdown, LaTeX, CSV) and plots of a results file\n"
            "  kinds     list every task kind and its spec keys (markdown)\n"
            "  train     train one model and save its checkpoint\n"
            "  eval      evaluate a checkpoint on a dataset\n"
            "  bench     speed figures: bench train | bench gemm\n"
            "  version   print the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ipsweep %s\n", IPSWEEP_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 2, argv + 2);
    if (strcmp(cmd, "validate") == 0) return cmd_validate(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0) return cmd_report(argc - 2, argv + 2);
    if (strcmp(cmd, "kinds") == 0) {
        if (argc > 2 && strcmp(argv[2], "--help") != 0) {
            fprintf(stderr, "ipsweep kinds: takes no arguments\n");
            return 2;
        }
        if (argc > 2) {
            printf("usage: ipsweep kinds\n\nPrints every task kind with its keys (type, default, range, meaning) as the\n"
                   "markdown tables of docs/spec.md.\n");
            return 0;
        }
        rn_spec_doc_kinds(stdout);
        return 0;
    }
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "ipsweep: unknown command \"%s\" (see ipsweep --help)\n", cmd);
    return 2;
}
