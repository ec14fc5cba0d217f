/* Task kinds: the one table that spec validation, expansion, cost
 * estimation and the workers all use. Adding a task kind = one rn_kind
 * entry (keys with types, ranges, defaults and docs, a cost estimate and a
 * run function calling core/tasks.h) in runner/kinds.c. */
#ifndef RN_KINDS_H
#define RN_KINDS_H

#include "../core/err.h"
#include "../core/metrics.h"
#include "task.h"

typedef enum {
    RN_T_INT,      /* integer in [min, max] */
    RN_T_FLOAT,    /* number in [min, max] */
    RN_T_STRING,   /* free text */
    RN_T_BOOL,     /* true/false */
    RN_T_ENUM,     /* one of `choices` ("a|b|c") */
    RN_T_MODEL     /* name of a `models` entry or of a task entry whose kind produces a model */
} rn_type;

typedef struct rn_key {
    const char *name;
    rn_type type;
    const char *def;       /* default as text; NULL = required */
    double min, max;       /* INT / FLOAT range (inclusive) */
    const char *choices;   /* ENUM */
    const char *doc;       /* one line for docs/spec.md and error messages */
} rn_key;

/* What a worker knows besides the task: where checkpoints go, the spec's data section. */
typedef struct rn_ctx {
    const char *data_source;      /* data.source */
    size_t train_limit, test_limit;
    int rank;
    int threads;
} rn_ctx;

typedef struct rn_kind {
    const char *name;             /* "train" (the `models` section), "eval", "prune", ... */
    const char *doc;
    const rn_key *keys;
    int nkeys;
    int produces_model;           /* writes t->checkpoint, which others may use as a `model` */
    /* estimated seconds on one core (used for --dry-run and longest-first scheduling) */
    double (*cost)(const rn_task *t, const rn_ctx *ctx);
    int (*run)(const rn_task *t, const rn_ctx *ctx, ip_metrics *out, ip_err *e);
} rn_kind;

/* NULL-terminated list of every kind. */
extern const rn_kind *const rn_kinds[];
const rn_kind *rn_kind_find(const char *name);
const rn_key *rn_kind_key(const rn_kind *k, const char *name);

/* Reading a task's parameters (text, already validated against the keys by
 * the spec loader): "" / 0 when absent. Shared by every kind's run function. */
const char *rn_param_str(const rn_task *t, const char *name);
double rn_param_f(const rn_task *t, const char *name);
long rn_param_i(const rn_task *t, const char *name);
int rn_param_b(const rn_task *t, const char *name);
/* Copies src into dst[cap] or fails with "<what> is longer than N characters". */
int rn_copy_str(char *dst, size_t cap, const char *src, const char *what, ip_err *e);
#define RN_NKEYS(a) ((int)(sizeof a / sizeof *a))

#endif
