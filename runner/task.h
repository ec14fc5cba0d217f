/* A task: one unit of work of an experiment, as the coordinator, the workers,
 * the journal and the results file all see it.
 *
 * Identity: `key` is a deterministic string built from the task's kind, its
 * spec entry name and every parameter that varies in a sweep, e.g.
 *   "train:base[seed=2]"  or  "prune:pruned[rate=0.3]<train:base[seed=2]>"
 * It never depends on rank or order; the task's RNG seed is derived from
 * (spec seed, key) with ip_stream(), so 1 or 64 ranks compute the same. */
#ifndef RN_TASK_H
#define RN_TASK_H

#include <stddef.h>
#include <stdint.h>

#define RN_KEY_LEN 256
#define RN_KIND_LEN 24
#define RN_NAME_LEN 64
#define RN_MAX_PARAMS 48
#define RN_PARAM_NAME_LEN 48
#define RN_PARAM_VALUE_LEN 1024
#define RN_MAX_DEPS 72           /* RN_MAX_SHARDS shards + the task's own references */

/* A task parameter: name and its value as text (numbers printed with %.17g
 * or as written in the spec). `swept` marks the parameters that vary across
 * the expansion of one spec entry: they become columns of the tasks table. */
typedef struct rn_param {
    char name[RN_PARAM_NAME_LEN];
    char value[RN_PARAM_VALUE_LEN];
    int swept;
} rn_param;

typedef enum { RN_PENDING = 0, RN_RUNNING, RN_DONE, RN_FAILED, RN_SKIPPED } rn_status;
const char *rn_status_name(rn_status s);

typedef struct rn_task {
    int id;                       /* index in the task list (stable for a given spec) */
    char key[RN_KEY_LEN];
    char kind[RN_KIND_LEN];       /* "train", "eval", "prune", ... */
    char name[RN_NAME_LEN];       /* the spec entry's name */
    rn_param params[RN_MAX_PARAMS];
    int nparams;
    int deps[RN_MAX_DEPS];        /* ids of tasks that must be done first */
    int ndeps;
    double cost;                  /* estimated seconds on one core (dry-run, scheduling order) */
    uint64_t seed;                /* derived from (spec seed, key) */
    char checkpoint[1024];        /* output checkpoint path, "" when the task writes none */
} rn_task;

/* Parameter lookup: the value text, or NULL when absent. */
const char *rn_task_get(const rn_task *t, const char *name);
/* Appends/overwrites a parameter; -1 when the table is full or a string is too long. */
int rn_task_set(rn_task *t, const char *name, const char *value, int swept);

#endif
