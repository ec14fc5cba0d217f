/* Training and evaluation loops: the task code `ipsweep train`/`eval` and
 * the runner call. */
#ifndef IP_TRAIN_H
#define IP_TRAIN_H

#include <stdint.h>

#include "../io/data.h"
#include "../io/resume.h"
#include "../util/err.h"
#include "model.h"
#include "../nn/optim.h"

typedef struct ip_train_cfg {
    int epochs;
    int batch;
    ip_optim_cfg opt;
    int augment;          /* random crop (pad 4) + horizontal flip */
    uint64_t seed;        /* shuffling and augmentation streams */
    int verbose;          /* progress lines on stderr */
} ip_train_cfg;

/* The training loop's own configuration for library callers (tests,
 * benchmarks): one epoch, batch 64, SGD. It is not the train task's: a
 * task's epochs, batch, lr, ... have their one home in the train kind's
 * parameter table (core/tasks/models.c), which specs, `ipsweep task train`
 * and `ipsweep train` all use; its defaults start from this one and set
 * every key's. */
void ip_train_defaults(ip_train_cfg *c);

typedef struct ip_epoch_report {
    int epoch;
    double train_loss, train_acc, test_acc, seconds;
    double sign_loss, detect;   /* passport models */
} ip_epoch_report;

/* Called after each epoch (may be NULL); a non-zero return stops training. */
typedef int (*ip_epoch_cb)(const ip_epoch_report *r, void *user);

/* Trains m on train (normalised), evaluating on test (may be NULL) after each
 * epoch. Fails on a non-finite loss. */
int ip_train(ip_model *m, const ip_dataset *train, const ip_dataset *test, const ip_train_cfg *c,
             ip_epoch_cb cb, void *user, ip_err *e);
/* ip_train that checkpoints (io/resume.h): sv (NULL: none) restores a saved
 * run when it loaded one, and saves at the start of steps when due: the
 * weights, the optimiser, the position and `metrics` (the caller's metrics
 * so far, e.g. the per-epoch arrays its callback appends; NULL: none). On a
 * stop it returns -1 with an IP_ERR_INTERRUPTED error. A run resumed from
 * any save ends bit for bit where an uninterrupted one does. */
int ip_train_resumable(ip_model *m, const ip_dataset *train, const ip_dataset *test, const ip_train_cfg *c,
                       ip_epoch_cb cb, void *user, ip_saver *sv, ip_metrics *metrics, ip_err *e);
/* Checks that d's sample shape and class count fit m, then normalises d with
 * the model's input mean/std (unless d is already normalised with them). */
int ip_data_match_model(ip_dataset *d, const ip_model *m, ip_err *e);

/* Eval-mode forward passes of ip_predict and ip_evaluate on a small model
 * (a forward of at most IP_INFER_SMALL_MFLOP per image) take at most
 * IP_INFER_BATCH images, whatever their `batch`: a pass of 64 small images
 * keeps its activations in cache, where one of 256 streams them through
 * memory and the arithmetic is too little to hide it (small-p, 14.9 MFLOP:
 * 5640 -> 7240 img/s at 1 thread, 8720 -> 10810 at 2). A larger model keeps
 * the caller's batch: its GEMMs want the columns (alexnet-p at 2 threads:
 * 880 -> 820 img/s at 64; small-p-wide, 58 MFLOP, -3% to +5%;
 * docs/performance.md "Passes that fit in cache").
 * Eval mode treats every image alone (batch norm uses its running
 * statistics), but BLAS may sum in another order for another number of
 * images: logits agree with one pass of `batch` to float rounding, not to
 * the bit (tests/test_plan_eval.c). The pass size depends on the model's
 * architecture and the batch, and on the plan only when m is planned for
 * fewer images (then it is m->batch; ip_cache_evaluate re-plans to avoid
 * that), so a result is the same on every run and rank. */
#define IP_INFER_BATCH 64
#define IP_INFER_SMALL_MFLOP 30.0
/* The images per eval-mode pass of m for a requested batch (at least 1). */
int ip_infer_batch(const ip_model *m, int batch);

/* Accuracy of m (eval mode, current branch) on d, in passes of ip_infer_batch(m, batch)
 * images (m planned for that many when it is not planned). A repeated
 * evaluation (the same weights, data, pass and branch) is answered from m's
 * evaluation records, and each one computed adds a record (evalrec.h). */
int ip_evaluate(ip_model *m, const ip_dataset *d, int batch, double *acc, ip_err *e);
/* The fraction of d's labels that pred (one per sample) gets right. */
double ip_accuracy(const int32_t *pred, const ip_dataset *d);
/* Predicted labels for every sample of d (passes as ip_evaluate). */
int ip_predict(ip_model *m, const ip_dataset *d, int batch, int32_t *pred, ip_err *e);

#endif
