/* Experiment specs: YAML -> validated spec -> expanded task list.
 * docs/spec.md documents every key. */
#ifndef RN_SPEC_H
#define RN_SPEC_H

#include <stddef.h>
#include <stdio.h>

#include "../../core/util/arena.h"
#include "../kinds/task.h"

/* One validation error with its location. */
typedef struct rn_diag {
    char file[256];
    int line, column;            /* 1-based; 0 when unknown */
    char path[256];              /* key path, e.g. "models[1].epochs" */
    char msg[512];
    char origin[320];            /* "--set PATH=VALUE" when an override caused it, else "" */
} rn_diag;

typedef struct rn_diags {
    rn_diag *v;
    int n, cap;
} rn_diags;

void rn_diags_free(rn_diags *d);
/* Prints "file:line:col: path: message" per error to f ("file: --set
 * PATH=VALUE: path: message" for an error an override caused). */
void rn_diags_print(const rn_diags *d, FILE *f);

typedef struct rn_spec {
    char file[256];
    char *text;                  /* the spec file's text (stored in the results) */
    char *overrides;             /* the --set overrides applied, "path=value" lines ("" = none; in the results) */
    char name[RN_NAME_LEN];
    unsigned long long seed;
    char output[1024];           /* results file path */
    rn_task *tasks;
    int ntasks;
    ip_arena arena;              /* the tasks' keys, values, paths and dependencies */
    /* added with the loader (docs/spec.md) */
    char outdir[1024];           /* <output without .h5>.d: checkpoints go to <outdir>/ckpt/ */
    char data_source[1024];      /* data.source, "kind:path" (core/io/data.h) */
    size_t train_limit, test_limit; /* data.train_limit / data.test_limit (0 = all) */
    double checkpoint_every;     /* seconds between a long task's saves (IP_CHECKPOINT_EVERY_DEFAULT) */
    char state_dir[1100];        /* <outdir>/state: the long tasks' state files (docs/checkpoint.md) */
} rn_spec;

/* Loader options (NULL = all defaults). */
typedef struct rn_spec_opts {
    int skip_data_check;         /* 1: do not check that data.source's files exist (run --dry-run) */
} rn_spec_opts;

/* Command-line overrides `--set key.path=value` (applied before validation). */
typedef struct rn_override {
    char path[256];
    char value[1024];
} rn_override;

/* Splits "path=value" (the argument of --set) into o; -1 without '=' or when too long. */
int rn_override_parse(rn_override *o, const char *arg);

/* Reads, validates and expands a spec. Returns 0 on success; on failure
 * returns -1 with every problem found in diags (all errors at once) and s
 * left empty. diags must be zeroed (or hold earlier diagnostics: new ones are
 * appended). Checks the data files; see rn_spec_load_opts. */
int rn_spec_load(rn_spec *s, const char *path, const rn_override *ov, int nov, rn_diags *diags);
/* The same with options (opts may be NULL). */
int rn_spec_load_opts(rn_spec *s, const char *path, const rn_spec_opts *opts, const rn_override *ov, int nov,
                      rn_diags *diags);
/* The same from text in memory; `file` names it in messages and gives the default name. */
int rn_spec_load_text(rn_spec *s, const char *file, const char *text, const rn_spec_opts *opts,
                      const rn_override *ov, int nov, rn_diags *diags);
void rn_spec_free(rn_spec *s);

/* The context of a loaded spec: data source and limits, and its tasks, which
 * the kinds' costs follow to the models' architectures (rank 0, 1 thread). */
struct rn_ctx;
void rn_spec_ctx(const rn_spec *s, struct rn_ctx *ctx);
/* Every task's cost again (rn_task.cost, the kind's cost function), after the
 * cost model's speeds changed (`run --calibrate`, runner/kinds/cost.h): at
 * unchanged speeds, the costs the expansion gave. */
void rn_spec_recost(rn_spec *s);

/* Prints the markdown reference of every task kind's keys (generated from
 * the kinds' tables, core/tasks/; docs/spec.md holds its output between the kinds markers). */
void rn_spec_doc_kinds(FILE *f);

#endif
