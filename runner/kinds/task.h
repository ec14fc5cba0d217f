/* A task: one unit of work of an experiment, as the coordinator, the journal
 * and the results file see it (workers get it packed: runner/task_wire.c).
 *
 * Identity: `key` is a deterministic string built from the task's kind, its
 * spec entry name and every parameter that varies in a sweep, e.g.
 *   "train:base[seed=2]"  or  "prune:pruned[rate=0.3]<train:base[seed=2]>"
 * It never depends on rank or order; the task's RNG seed is derived from
 * (spec seed, key) with ip_stream(), so 1 or 64 ranks compute the same.
 *
 * Parameters are typed (core/tasks/param.h): vals[q] is the value of key q of
 * the kind's table, parsed once when the spec was loaded; its text is only
 * for people (the key, the results' parameter columns). A task is ~100 bytes
 * plus its strings and values, which live in the spec's arena. */
#ifndef RN_TASK_H
#define RN_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/tasks/param.h"

#define RN_KEY_LEN 256           /* longest key (longer ones end in a hash) */
#define RN_NAME_LEN 64           /* longest spec and entry name */
#define RN_PATH_LEN 1024         /* longest output path (the core's path fields are char[1024]) */
#define RN_MAX_KEYS 48           /* most keys of one kind */
#define RN_MAX_DEPS 72           /* RN_MAX_SHARDS shards + the task's own references */
#define RN_MAX_THREADS 256       /* most threads an entry may ask for (`threads`; core/util/par.c runs at most 64) */

/* shard of a task that is not split, and of the merge of a split task's shards */
#define RN_NOT_SPLIT (-1)
#define RN_MERGE (-2)

/* RN_INTERRUPTED: a task that stopped on request (a signal, a time limit)
 * after saving its state; it is not finished (the journal records no finish,
 * the crash-twice rule does not count it) and a resume continues it. */
typedef enum { RN_PENDING = 0, RN_RUNNING, RN_DONE, RN_FAILED, RN_SKIPPED, RN_INTERRUPTED } rn_status;
#define RN_NSTATUS 6
const char *rn_status_name(rn_status s);

struct rn_kind;

typedef struct rn_task {
    int id;                       /* index in the task list (stable for a given spec) */
    const struct rn_kind *k;      /* its kind (runner/kinds/kinds.h) */
    const char *kind;             /* = k->def->name: "train", "eval", "prune", ... */
    const char *name;             /* the spec entry's name */
    const char *key;
    const ip_value *vals;         /* one per key of the kind (k->def->params), in table order */
    uint64_t swept;               /* bit q: key q varies across the expansion of the entry (a /tasks column) */
    int shard, shards;            /* a split task (rn_kind.shards): shard 0..shards-1 or RN_MERGE; else RN_NOT_SPLIT, 0 */
    const int *deps;              /* ids of tasks that must be done first */
    int ndeps;
    uint16_t threads;             /* its entry's `threads` (0: the rank's); in ndeps's padding, so a task does not grow */
    double cost;                  /* estimated seconds on one core (dry-run, scheduling order) */
    uint64_t seed;                /* derived from (spec seed, key) */
    const char *checkpoint;       /* output file path, "" when the task writes none */
    struct rn_task_own *own;      /* a task built by hand: the storage of its values (rn_task_init) */
} rn_task;

/* The parameters as people see them (the results' columns, the journal's
 * identity): every key in table order, a reference followed by "<key>_path"
 * (the file it names), and "shard" ("0".."S-1" or "all") for a split task.
 * Fills name/text/swept of parameter i; 0, or -1 past the last. A
 * "<key>_path" name lives in a buffer the next call reuses: copy it. */
int rn_task_param(const rn_task *t, int i, const char **name, const char **text, int *swept);
/* The text of a parameter by name (as above), or NULL when the task has none. */
const char *rn_task_get(const rn_task *t, const char *name);
/* The typed value of key `name` of the task's kind, or NULL. */
const ip_value *rn_task_val(const rn_task *t, const char *name);

/* Does task `id` derive from task `anc` (is it, or is `anc` among its
 * transitive dependencies)? tasks: the spec's list; seen: ntasks ints of
 * scratch, stamped with `mark` (a fresh mark per question). The one rule of
 * "a copy of" for IPGuard's relations and the model sets (IP_P_COPIES). */
int rn_task_descends(const rn_task *tasks, int id, int anc, int *seen, int mark);

/* Tasks built by hand (tests, tools; a spec's tasks live in its arena):
 * rn_task_init gives every key its default (key, name and checkpoint ""),
 * rn_task_set parses text by the key's row, once (a reference: `name` sets
 * the text shown, "<name>_path" the file it names), rn_task_free frees the
 * values. rn_task_set returns -1 (msg in e) for an unknown key or a bad value. */
int rn_task_init(rn_task *t, const struct rn_kind *k);
int rn_task_set(rn_task *t, const char *name, const char *text, int swept);
void rn_task_free(rn_task *t);

#endif
