/* The engine under every fingerprint method (private to core/ipguard/):
 * K points optimised in batches by Adam on their inputs, one Adam state per
 * point, a point frozen when its method says it is finished, the batch
 * checkpointed at the start of every iteration (io/resume.h), and the points
 * kept or dropped when their batch ends. A method (fp_method) supplies the
 * seeds, the loss gradient, the projection after a step and the selection:
 * IPGuard's boundary points (fingerprint.c), conferrable adversarial
 * examples (cae.c). Every random choice of a method is keyed by (seed,
 * point index), so the points do not depend on the batch size or on which
 * points are still active, up to the kernels' rounding (docs/fingerprint.md
 * "Compaction"). */
#ifndef IP_FP_ENGINE_H
#define IP_FP_ENGINE_H

#include "fingerprint.h"
#include "../nn/optim.h"

/* One batch of points being optimised: everything an iteration reads, so
 * that a checkpoint can save it between iterations and a resumed batch goes
 * on with the same packed batch. */
typedef struct fp_batch {
    size_t count, d, na;   /* points, floats per point, points still active */
    size_t pad;            /* rows forwarded after the na active ones: 0, or (the uncompacted reference
                            * twin, fp_engine_set_uncompacted) the frozen points, so every forward has count rows */
    int it;                /* the next iteration */
    float *x;              /* (count, d) the points, optimised in place */
    const float *x0;       /* (count, d) their seeds */
    int32_t *src, *tgt;    /* (count) the run's records of the batch's points (fingerprint.h ip_fp_run) */
    int32_t *iters;
    int8_t *conv;
    float *xa, *dx;        /* scratch of an iteration: the active points packed, their input gradients */
    float *dl;             /* scratch: (count, classes) per model of the method */
    int8_t *done;          /* scratch: (count) finished at this iteration */
    size_t *act;           /* (na) the active points, in batch order */
    size_t *idle;          /* scratch: (count) the frozen points, padding of the uncompacted twin */
    ip_optim *opt;         /* (count) Adam on each point */
} fp_batch;

typedef struct fp_method {
    void *ctx;
    ip_model **models;     /* every model the method runs: [0] the owner; planned for the batch by the engine */
    int nmodels;
    int max_iter;          /* Adam steps at most */
    /* The seeds of points first .. first+n-1 (x0: n points) and the run's source/target records. */
    int (*seeds)(void *ctx, size_t first, size_t n, float *x0, int32_t *src, int32_t *tgt, ip_err *e);
    /* The loss gradient of the active points xa (na, packed in b->act order) w.r.t. their inputs, added
     * into dx (zeroed; NULL at the last iteration: no gradient wanted). done[a] = 1 freezes point
     * b->act[a]: it takes no more steps. xa holds na + b->pad rows: forward them all (the twin's
     * uncompacted batch), use only the first na, give the padding rows a zero logit gradient. */
    int (*grad)(void *ctx, fp_batch *b, const float *xa, size_t na, float *dx, int8_t *done, ip_err *e);
    /* Point p's x after its step, back into the feasible set. */
    void (*project)(void *ctx, const fp_batch *b, size_t p, float *x);
    /* After the batch: conv[p] = 1 for the points kept, tgt[p] their label (NULL: as grad left them). */
    int (*select)(void *ctx, fp_batch *b, ip_err *e);
} fp_method;

/* Generates a fingerprint of meth->models[0] (fingerprint.h
 * ip_fingerprint_generate_resumable says what is saved and when): cfg->points
 * seeds in batches of cfg->batch (0 = as many as fit in ~1 GB of planned
 * activations of every model), Adam at cfg->lr. The models are re-planned
 * for the batch, set to their resolved branch, without sign loss, and put
 * back as they were. lo/hi: the valid input range per channel. */
int fp_generate(const fp_method *meth, const float *lo, const float *hi, const ip_fp_cfg *cfg, ip_fingerprint *fp,
                ip_fp_run *run, ip_saver *sv, ip_err *e);

/* One batch of count points x (models planned for >= count) optimised in
 * place without checkpoints or selection (x0 = NULL: the method's projection
 * must not read the seeds): iters and conv as the method's grad leaves them. */
int fp_optimise_batch(const fp_method *meth, float *x, const int32_t *src, const int32_t *tgt, size_t count, float lr,
                      int32_t *iters, int8_t *conv, ip_err *e);

/* Test-only, process-wide (the reference twin of compaction, tests/test_fp_compact.c): on = every
 * forward/backward of a batch carries all its points, frozen ones as padding rows with a zero gradient,
 * as an engine that never compacts would; off (the default) = only the active points. The points
 * differ only by the kernels' dependence on the number of rows (docs/fingerprint.md "Compaction"). */
void fp_engine_set_uncompacted(int on);

/* Shared by the methods */
static inline size_t fp_sample_floats(const ip_model *m) { return (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w; }
void fp_clip_point(float *x, const ip_model *m, const float *lo, const float *hi);
int fp_argmax(const float *z, int n);
/* Training images of points first .. first+count-1 (a permutation of train keyed by seed: point p takes
 * image perm[p mod n]) into x0, and their labels into y (NULL: not wanted). */
int fp_seed_images(const ip_dataset *train, size_t d, uint64_t seed, size_t first, size_t count, float *x0, int32_t *y,
                   ip_err *e);

#endif
