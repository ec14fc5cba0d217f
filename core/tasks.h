/* Task code: what one unit of work does, independent of who schedules it.
 * `ipsweep train`/`eval` call these directly; the runner's workers call the
 * same functions for the spec's tasks. Each fills an ip_metrics. */
#ifndef IP_TASKS_H
#define IP_TASKS_H

#include <stdint.h>

#include "err.h"
#include "metrics.h"
#include "model.h"
#include "train.h"

typedef struct ip_train_task {
    ip_model_cfg model;      /* arch, norm, scheme, passport_layers; input shape/classes come from the data */
    char data[1024];         /* data source, "kind:path" (data.h) */
    size_t train_limit, test_limit; /* 0 = all */
    ip_train_cfg train;
    uint64_t seed;           /* model init, shuffling, augmentation; never the data (data.h: a
                              * spec's data are the same for every task) */
    char signature[1024];    /* text embedded in every passport layer ("" = random bits; its capacity: core/tasks/train.c) */
    size_t triggers;         /* v3: trigger set size (core/trigger.h), generated from seed */
    char out[1024];          /* checkpoint path ("" = do not save) */
} ip_train_task;

void ip_train_task_defaults(ip_train_task *t);
/* Loads the data, builds and initialises the model, trains, evaluates, saves
 * the checkpoint atomically. Metrics (deterministic: wall time is the
 * runner's business): test_acc, train_loss, params, and for passport models detect, detect_<layer> per
 * passport layer (+ public_test_acc for v2/v3, trigger_acc and trigger_acc_private for v3); arrays
 * epoch_test_acc, epoch_train_loss. */
int ip_task_train(const ip_train_task *t, ip_metrics *out, ip_err *e);

/* Opens a checkpoint and loads the test split of `data` normalised as the
 * model expects. The task codes' common first step; on failure the caller
 * frees m and test as usual. */
int ip_task_open(ip_model *m, ip_dataset *test, const char *model_path, const char *data, size_t test_limit,
                 ip_err *e);

typedef struct ip_eval_task {
    char model_path[1024];
    char data[1024];
    size_t test_limit;
    int batch;
    int branch;              /* -1 = default (private for passport models) */
    char predictions[1024];  /* "" or a file to write one predicted label per line */
} ip_eval_task;

void ip_eval_task_defaults(ip_eval_task *t);
/* Metrics: test_acc, n, and for passport models detect, detect_<layer>, public_test_acc (v2/v3),
 * trigger_acc, trigger_acc_private (v3). */
int ip_task_eval(const ip_eval_task *t, ip_metrics *out, ip_err *e);

typedef struct ip_prune_task {
    char model_path[1024];
    char data[1024];
    size_t test_limit;
    double rate;
    char out[1024];          /* pruned checkpoint ("" = do not save) */
} ip_prune_task;

/* Loads the model, prunes (core/prune.h), evaluates. Metrics: rate, pruned,
 * test_acc, and for passport models detect, detect_<layer> (+ public_test_acc for v2/v3, trigger_acc and
 * trigger_acc_private for v3). */
int ip_task_prune(const ip_prune_task *t, ip_metrics *out, ip_err *e);

#endif
