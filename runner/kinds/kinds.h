/* Task kinds as the runner sees them: a core task definition (its parameter
 * table, defaults, check and run: core/tasks/param.h) plus what scheduling a
 * spec needs: what the task leaves for others, a cost estimate, and how a
 * task splits into shards. The kinds' files: runner/kinds/. */
#ifndef RN_KINDS_H
#define RN_KINDS_H

#include "../../core/util/err.h"
#include "../../core/util/metrics.h"
#include "../../core/tasks/param.h"
#include "task.h"

/* A key's row: the core's (one home per parameter). */
typedef ip_param rn_key;

/* What a task leaves on the shared filesystem for others to use (its path is
 * rn_task.checkpoint): nothing, a model checkpoint, or a fingerprint file. */
typedef enum { RN_OUT_NONE = 0, RN_OUT_MODEL, RN_OUT_FINGERPRINT } rn_output;

/* What a worker knows besides the task: the spec's data section, its rank and threads. */
typedef struct rn_ctx {
    const char *data_source;      /* data.source */
    size_t train_limit, test_limit;
    const char *state_dir;        /* where long tasks keep their state files (<outdir>/state); NULL/"" = none */
    double checkpoint_every;      /* seconds between a long task's saves (checkpoint_every) */
    int rank;
    int threads;
    const struct rn_task *tasks;  /* the spec's tasks so far (a task's dependencies come first): costs follow
                                   * references to the models' architectures (cost.h); NULL outside a spec */
} rn_ctx;

typedef struct rn_kind {
    const ip_task_def *def;       /* name, doc, keys, defaults, check, run */
    rn_output produces;           /* writes t->checkpoint, which others may name (IP_P_MODEL / IP_P_FINGERPRINT keys) */
    /* estimated seconds on one core (used for --dry-run and longest-first scheduling) */
    double (*cost)(const rn_task *t, const rn_ctx *ctx);
    /* Optional: into how many shards a task is split (1 = not split). The
     * spec loader then emits the shards (shard = 0..S-1, shards = S, keys
     * "<key>#shard=i/S", output files rn_shard_path(merged output, i, S)),
     * followed by the task itself with shard = RN_MERGE, depending on every
     * shard, whose run merges them. */
    int (*shards)(const rn_task *t);
    /* Optional: runs the filled core struct instead of def->run (a shard, a merge). */
    int (*run)(const rn_task *t, void *task, ip_metrics *out, ip_err *e);
    /* Optional: estimated seconds on one core of the task's longest step: the
     * longest stretch between two points it can checkpoint at (a kind with
     * def->at_resume). NULL: the whole task is one step. For the time-limit
     * warnings (runner/run/sizing.h): a step longer than a job never ends. */
    double (*step_cost)(const rn_task *t, const rn_ctx *ctx);
} rn_kind;

/* Most shards a task may be split into. */
#define RN_MAX_SHARDS 64

/* The output file of shard i of S of a task whose merged output is
 * merged_path: "<merged_path without .h5>.shard-i-of-S.h5". -1 if too long. */
int rn_shard_path(char *out, size_t cap, const char *merged_path, int shard, int shards);

/* The kind of a spec's `models` entries. */
extern const rn_kind rn_kind_train;
/* NULL-terminated list of every kind (runner/kinds/kinds.c). */
extern const rn_kind *const rn_kinds[];
const rn_kind *rn_kind_find(const char *name);
const rn_key *rn_kind_key(const rn_kind *k, const char *name);
/* Index of k in rn_kinds (on the wire), or -1. */
int rn_kind_index(const rn_kind *k);

/* The core task struct of t (k->def->size bytes at `task`): the kind's
 * defaults, then every typed value stored in its field, the data section, the
 * output path and the task's seed; for a kind that checkpoints, its state
 * file rn_state_path and ctx->checkpoint_every. One generic fill for every kind. */
int rn_task_fill(const rn_task *t, const rn_ctx *ctx, void *task, ip_err *e);
/* The state file of a filled task of kind d: "<state_dir>/<kind>-<ident as
 * 16 hex digits>.state" (ip_task_ident: the same task of the same spec gets
 * the same file on any rank and after any resume). -1 when too long. */
int rn_state_path(char *out, size_t cap, const char *state_dir, const ip_task_def *d, const void *task);
/* Fills and runs t (k->run or k->def->run). */
int rn_task_run(const rn_task *t, const rn_ctx *ctx, ip_metrics *out, ip_err *e);

#endif
