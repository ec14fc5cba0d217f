/* ipsweep: the one command-line entry point. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "report/export.h"
#include "spec/spec.h"
#include "spec/suggest.h"

#ifndef IPSWEEP_VERSION
#define IPSWEEP_VERSION "unknown"
#endif

static int cmd_kinds(int argc, char **argv) {
    if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        printf("usage: ipsweep kinds\n\nPrints every task kind with its keys (type, default, range, meaning) as the\n"
               "markdown tables of docs/spec.md.\n");
        return 0;
    }
    if (argc > 0) return cli_error("kinds", "takes no arguments, got \"%s\"", argv[0]);
    rn_spec_doc_kinds(stdout);
    return 0;
}

static int cmd_version(int argc, char **argv) {
    if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
        printf("usage: ipsweep version\n\nPrints the version (git describe of the build).\n");
        return 0;
    }
    if (argc > 0) return cli_error("version", "takes no arguments, got \"%s\"", argv[0]);
    printf("ipsweep %s\n", IPSWEEP_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

/* THE table of commands: dispatch, `help COMMAND` and the usage come from it. */
static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "run an experiment spec (alone or under mpirun/srun)"},
    {"validate", cmd_validate, "check an experiment spec and report every error"},
    {"report", cmd_report, "tables (markdown, LaTeX, CSV) and plots of a results file"},
    {"export", cmd_export, "every task of a results file as one CSV/TSV table (pandas.read_csv)"},
    {"kinds", cmd_kinds, "list every task kind and its spec keys (markdown)"},
    {"train", cmd_train, "train one model and save its checkpoint"},
    {"eval", cmd_eval, "evaluate a checkpoint on a dataset"},
    {"task", cmd_task, "run one task of any kind from the command line (task KIND --key value ...)"},
    {"bench", cmd_bench, NULL /* the benchmark list, from its table */},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "help COMMAND: the options of a command"},
};
enum { NCOMMANDS = (int)(sizeof commands / sizeof *commands) };

static void usage(FILE *f) {
    fprintf(f, "usage: ipsweep COMMAND [options]   (ipsweep COMMAND --help for its options)\n\n"
               "Reproducible experiments on the IP protection of neural networks\n"
               "(DeepIPR digital passports, IPGuard fingerprints).\n\n"
               "commands:\n");
    for (int i = 0; i < NCOMMANDS; i++) {
        if (commands[i].summary) {
            fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
            continue;
        }
        char names[128];
        rn_bench_names(names, sizeof names, " | ");
        fprintf(f, "  %-9s speed figures: bench %s\n", commands[i].name, names);
    }
}

static int find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return i;
    return -1;
}

static int unknown_command(const char *name) {
    const char *cands[NCOMMANDS];
    for (int i = 0; i < NCOMMANDS; i++) cands[i] = commands[i].name;
    const char *s = rn_suggest(name, cands, NCOMMANDS);
    if (s) fprintf(stderr, "ipsweep: unknown command \"%s\" (did you mean %s?)\n", name, s);
    else fprintf(stderr, "ipsweep: unknown command \"%s\" (see ipsweep --help)\n", name);
    return 2;
}

/* `help` alone: the usage; `help CMD [SUB]`: what `CMD [SUB] --help` prints. */
static int cmd_help(int argc, char **argv) {
    if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    int i = find_command(argv[0]);
    if (i < 0) return unknown_command(argv[0]);
    if (commands[i].run == cmd_help) return cmd_help(0, NULL);
    if (argc > 2) return cli_error("help", "expects a command (and a benchmark for bench), got %d words", argc);
    char help[] = "--help";
    char *args[2] = {help, NULL};
    if (argc == 2) args[0] = argv[1], args[1] = help; /* help bench train */
    return commands[i].run(argc, args);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) return cmd_version(0, NULL);
    int i = find_command(cmd);
    if (i < 0) return unknown_command(cmd);
    return commands[i].run(argc - 2, argv + 2);
}
