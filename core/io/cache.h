/* The process's cache of read-only task inputs (docs/performance.md,
 * "Per-task overhead"). A worker runs hundreds of small tasks (match, eval,
 * prune) that open the same checkpoints and load the same test split; the
 * cache keeps one master of each and hands every task its own deep copy, so
 * a task may change what it gets (normalise, prune, fine-tune, re-plan)
 * without touching the master or other tasks: what a task receives is
 * indistinguishable from a fresh load.
 *
 * An entry is valid while every file it was read from has the same
 * (st_dev, st_ino, st_mtime with nanoseconds, st_ctime, st_size) as when it
 * was read; the files are stat'ed again at every lookup, so a file rewritten
 * under the same path (an atomic rename gives a new inode) is read again,
 * never served stale. Only inputs are cached: nothing here writes a file,
 * and a checkpoint a task writes is read again by whoever opens it next.
 *
 * Off by default (a library user or a single `ipsweep task` gets plain
 * loads); the runner turns it on in each worker (runner/run/cache_setup.c:
 * IPSWEEP_NO_CACHE, IPSWEEP_CACHE_MB). Memory is bounded: least recently
 * used entries are dropped to stay within the budget, and an entry larger
 * than the budget is not kept. The functions may be called from several
 * threads (one lock), though the core calls them from the task's thread. */
#ifndef IP_CACHE_H
#define IP_CACHE_H

#include <stddef.h>

#include "../model/model.h"
#include "../util/err.h"
#include "data.h"

/* The budget when IPSWEEP_CACHE_MB is not set: per process (per MPI rank). */
#define IP_CACHE_DEFAULT_MB 2048

/* Turns the cache on with a budget of max_bytes, or off with 0 (the
 * default), dropping what no longer fits (everything when off). */
void ip_cache_configure(size_t max_bytes);
/* The budget in bytes; 0 when off. */
size_t ip_cache_budget(void);
/* Drops every entry (the budget is kept). */
void ip_cache_clear(void);

typedef struct ip_cache_stats {
    size_t hits, misses;  /* lookups of datasets and checkpoints served from memory / read from their files */
    size_t stale;         /* entries dropped because a file changed */
    size_t evictions;     /* entries dropped for the budget */
    size_t memo_hits;     /* evaluations answered by ip_cache_evaluate without a forward pass */
    size_t entries, bytes;
} ip_cache_stats;
void ip_cache_get_stats(ip_cache_stats *s);

/* ip_data_load through the cache: d is a copy the caller owns and frees
 * with ip_data_free. Errors are ip_data_load's own (a failing load is never
 * cached). */
int ip_cache_data_load(ip_dataset *d, const char *source, ip_split split, size_t limit, ip_err *e);
/* ip_data_load + ip_data_match_model(d, m) through the cache: the split
 * normalised as m expects (the normalised copy is kept too, keyed by m's
 * input statistics); m's shape and classes are checked on every call. */
int ip_cache_data_for_model(ip_dataset *d, const char *source, ip_split split, size_t limit, const ip_model *m,
                            ip_err *e);
/* ip_ckpt_open_model through the cache: m (owning no memory) becomes a model
 * of its own, equal to a fresh open of path. */
int ip_cache_open_model(ip_model *m, const char *path, ip_err *e);

/* ip_evaluate (core/model/train.h) in passes of exactly ip_infer_batch(m, batch)
 * images (m is re-planned for them when its plan is smaller, with or without
 * the cache),
 * remembered: when m's configuration, parameters, buffers, signature bits
 * and branch equal a cached checkpoint's and d equals a cached dataset, an
 * accuracy computed before for the same pair, branch and batch is returned
 * without a forward pass; otherwise it is computed and remembered. The
 * comparison is of contents (memcmp), not of names, so a pruned or
 * fine-tuned model never matches the checkpoint it came from. A hit leaves
 * m's activations (and plan) as they were: call it where nothing reads the
 * last forward pass afterwards. */
int ip_cache_evaluate(ip_model *m, const ip_dataset *d, int batch, double *acc, ip_err *e);

#endif
