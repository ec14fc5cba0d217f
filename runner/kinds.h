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
    RN_T_MODEL,    /* name of a `models` entry or of a task entry whose kind produces a model */
    RN_T_FINGERPRINT, /* name of a task entry whose kind produces a fingerprint */
    RN_T_INTLIST   /* "a,b,c": strictly increasing integers in [min, max], at most RN_MAX_INT_LIST (may be empty) */
} rn_type;

/* Most items of an RN_T_INTLIST value (the train kind's milestones: core/optim.h IP_MAX_MILESTONES). */
#define RN_MAX_INT_LIST 8


/* A reference to another entry (its instances become dependencies). */
#define RN_IS_REF(type) ((type) == RN_T_MODEL || (type) == RN_T_FINGERPRINT)

/* What a task leaves on the shared filesystem for others to use (its path is
 * rn_task.checkpoint): nothing, a model checkpoint, or a fingerprint file. */
typedef enum { RN_OUT_NONE = 0, RN_OUT_MODEL, RN_OUT_FINGERPRINT } rn_output;

typedef struct rn_key {
    const char *name;
    rn_type type;
    const char *def;       /* default as text; NULL = required */
    double min, max;       /* INT / FLOAT range (inclusive) */
    const char *choices;   /* ENUM */
    const char *doc;       /* one line for docs/spec.md and error messages */
} rn_key;

/* Parses an RN_T_INTLIST value s of key k into out[RN_MAX_INT_LIST]: the
 * number of items, or -1 with msg saying what is wrong. The one rule for
 * both the spec loader and the kinds' run functions. */
int rn_int_list_parse(const rn_key *k, const char *s, long *out, char *msg, size_t cap);

/* The train kind's milestones ("100,150") into o, by that rule and the key's
 * bounds: the one parser for specs and `ipsweep train --milestones`. */
struct ip_optim_cfg;
int rn_milestones_parse(const char *s, struct ip_optim_cfg *o, ip_err *e);

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
    rn_output produces;           /* writes t->checkpoint, which others may name (RN_T_MODEL / RN_T_FINGERPRINT keys) */
    /* estimated seconds on one core (used for --dry-run and longest-first scheduling) */
    double (*cost)(const rn_task *t, const rn_ctx *ctx);
    int (*run)(const rn_task *t, const rn_ctx *ctx, ip_metrics *out, ip_err *e);
    /* Optional: into how many shards a task is split (1 = not split). The
     * spec loader then emits the shards, with parameters shard = 0..S-1 and
     * shards = S, keys "<key>#shard=i/S" and output files
     * rn_shard_path(merged output, i, S), followed by the task itself with
     * shard = "all", depending on every shard, whose run merges them. */
    int (*shards)(const rn_task *t);
    /* Optional: a rule across keys (e.g. fake1's key_type image needs a
     * reference). Returns 0, or -1 with msg and *key = the key to blame; the
     * loader reports it at that key, the run function refuses the task. */
    int (*check)(const rn_task *t, const char **key, char *msg, size_t cap);
} rn_kind;

/* Most shards a task may be split into. */
#define RN_MAX_SHARDS 64

/* The output file of shard i of S of a task whose merged output is
 * merged_path: "<merged_path without .h5>.shard-i-of-S.h5". -1 if too long. */
int rn_shard_path(char *out, size_t cap, const char *merged_path, int shard, int shards);

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
