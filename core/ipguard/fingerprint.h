/* Fingerprints: IPGuard's (REFERENCE.md section 2, docs/fingerprint.md)
 * here, conferrable adversarial examples in cae.h; both are methods of the
 * engine in fp_engine.h and give the same file, matched the same way.
 *
 * The owner's fingerprint is K points near its classification boundary: from
 * a seed x0 with owner label i and a target j != i, Adam on the input
 * minimises
 *
 *     ReLU(Z_i - Z_j + k) + ReLU(max_{t != i,j} Z_t - Z_i)      (Z = logits)
 *
 * until it is 0 (j wins by margin k, i is the runner-up), clipping x to the
 * valid input range after every step. All points of a batch take one
 * forward/backward per iteration (the model in eval mode: every point is
 * independent of the others); a point that reaches loss 0 is frozen and leaves
 * the batch. A suspect matches the fingerprint on the points where it predicts
 * the owner's label j.
 *
 * Points live in the owner model's normalised input space (what its first
 * layer sees); the owner's input mean/std travel with them, so a suspect
 * trained with other statistics is queried with the same images
 * (pixel = x * std + mean). Every random choice is keyed by (seed, point
 * index): the points do not depend on the batch size. */
#ifndef IP_FINGERPRINT_H
#define IP_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "../io/data.h"
#include "../util/err.h"
#include "../util/metrics.h"
#include "../model/model.h"

#define IP_FP_FORMAT_VERSION 1

typedef enum { IP_FP_INIT_TRAIN = 0, IP_FP_INIT_NOISE = 1 } ip_fp_init;
/* How points are made: IPGuard's boundary points, or conferrable adversarial
 * examples (cae.h). Both give the same file and are matched the same way. */
typedef enum { IP_FP_METHOD_IPGUARD = 0, IP_FP_METHOD_CAE = 1 } ip_fp_method;
const char *ip_fp_method_name(ip_fp_method v);      /* "ipguard" | "cae" */
int ip_fp_method_parse(const char *s, ip_fp_method *out);
/* Most models one generation runs (the owner, the surrogates, the references). */
#define IP_FP_MAX_MODELS 33
typedef enum { IP_FP_TARGET_RANDOM = 0, IP_FP_TARGET_LEAST = 1 } ip_fp_target;

const char *ip_fp_init_name(ip_fp_init v);          /* "train" | "noise" */
int ip_fp_init_parse(const char *s, ip_fp_init *out);
const char *ip_fp_target_name(ip_fp_target v);      /* "random" | "least-likely" */
int ip_fp_target_parse(const char *s, ip_fp_target *out);
/* Branch option: -1 "default", IP_BRANCH_PRIVATE "private", IP_BRANCH_PUBLIC "public". */
const char *ip_fp_branch_name(int branch);
int ip_fp_branch_parse(const char *s, int *out);
/* The branch a model is queried with: `branch` when >= 0, else public for
 * v2/v3 (what a thief deploys), private otherwise (v1 always uses its passport). */
ip_branch ip_fp_resolve_branch(const ip_model *m, int branch);

/* Conferrable adversarial examples (Lukas et al., ICLR 2021; cae.h, docs/fingerprint.md). */
typedef struct ip_cae_cfg {
    float eps;            /* L-inf radius around the seed, pixel units (default 0.1) */
    int iterations;       /* Adam steps, all taken (default 100) */
    float alpha, beta, gamma; /* the loss's weights (default 1, 1, 1) */
    float dropout;        /* probability a surrogate or reference sits out an iteration (default 0.3) */
    float tau;            /* a point is kept when its conferrability score reaches tau (default 0.85) */
} ip_cae_cfg;

typedef struct ip_fp_cfg {
    ip_fp_method method;  /* default IPGuard */
    size_t points;        /* K: seeds optimised (default 100) */
    float margin;         /* k, in logits (default 1) */
    ip_fp_init init;      /* seeds: training images (default) or uniform noise in the valid range */
    ip_fp_target target;  /* j: random != i (default) or the least likely label at x0 */
    float lr;             /* Adam learning rate (default 0.01) */
    int max_iter;         /* Adam steps at most (default 1000) */
    int batch;            /* points optimised together (0 = all K, capped at ~1 GB of activations) */
    uint64_t seed;        /* seed images / noise / targets (default 1) */
    int branch;           /* -1 = ip_fp_resolve_branch's default */
    ip_cae_cfg cae;       /* method cae */
} ip_fp_cfg;

void ip_fp_defaults(ip_fp_cfg *c);

typedef struct ip_fingerprint {
    size_t n;             /* points kept (the converged ones) */
    int c, h, w, classes;
    float *x;             /* (n, c, h, w) in the owner's normalised input space */
    int32_t *label;       /* (n) the owner's label j on each point */
    int32_t *source;      /* (n) i: the seed's owner label, runner-up on the point */
    int32_t *iterations;  /* (n) Adam steps the point took */
    size_t requested;     /* K */
    size_t unconverged;   /* seeds dropped because the loss was not 0 after max_iter steps */
    ip_fp_cfg cfg;        /* the options used (branch resolved) */
    float in_mean[4], in_std[4]; /* the owner's input normalisation */
    float lo[4], hi[4];   /* the clip range per channel (normalised [0, 1] pixels) */
    char owner_arch[32];
    char owner_scheme[16];
} ip_fingerprint;

void ip_fingerprint_free(ip_fingerprint *fp);

/* Per requested point (all K, converged or not) of one generation. */
typedef struct ip_fp_run {
    size_t requested;
    int32_t *iterations;  /* Adam steps taken (max_iter when it did not converge) */
    int8_t *converged;    /* 1: the point is in the fingerprint; 0: IPGuard's loss never reached 0; < 0: cae.h's reasons */
    int32_t *source, *target; /* i and j */
    double seconds;       /* wall time of seeding + optimisation */
} ip_fp_run;

void ip_fp_run_free(ip_fp_run *r);

/* The loss above for one point's logits z (classes values) and, when dz is
 * not NULL, its (sub)gradient dL/dz written into dz. 0 exactly when
 * z[j] - z[i] >= k and z[i] >= z[t] for every t != i, j. */
float ip_fp_loss(const float *z, int classes, int i, int j, float k, float *dz);

/* Seeds of points first .. first+count-1: x0 (count, c, h, w) from the
 * training images (a permutation of `train` keyed by the seed; point p takes
 * image perm[p mod n]) or uniform noise in [lo, hi] per channel; i = m's
 * prediction at x0; j from the target rule (never i). m must be planned for
 * count samples and set to the branch wanted. train may be NULL for noise. */
int ip_fp_seeds(ip_model *m, const ip_dataset *train, const float *lo, const float *hi, const ip_fp_cfg *cfg,
                size_t first, size_t count, float *x0, int32_t *src, int32_t *tgt, ip_err *e);

/* Optimises count points x (count, c, h, w) in place as one batch (m planned
 * for >= count, its branch set): each iteration is one forward (eval mode) of
 * the points still active and one backward to their inputs, then one Adam
 * step (state per point) and clipping to [lo, hi]. A point whose loss is 0 is
 * frozen: iters = steps taken, conv = 1; after max_iter steps the rest get
 * iters = max_iter, conv = 0. Changes m's gradients. */
int ip_fp_optimise(ip_model *m, float *x, const int32_t *src, const int32_t *tgt, size_t count, const float *lo,
                   const float *hi, const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e);
/* The naive twin of ip_fp_optimise: one point, one sample per forward. */
int ip_fp_optimise_ref(ip_model *m, float *x, int32_t src, int32_t tgt, const float *lo, const float *hi,
                       const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e);

/* Generates a fingerprint of the owner m: cfg->points seeds in batches of
 * cfg->batch (0 = all K, or as many as fit in ~1 GB of planned activations
 * and their gradients), kept when converged. m is re-planned for the batch
 * and its branch set to the resolved branch. lo/hi: the valid input range per
 * channel (ip_data_input_range of data normalised for m). run (optional)
 * gets the per-point details. */
int ip_fingerprint_generate(ip_model *m, const ip_dataset *train, const float *lo, const float *hi,
                            const ip_fp_cfg *cfg, ip_fingerprint *fp, ip_fp_run *run, ip_err *e);
/* ip_fingerprint_generate that checkpoints (io/resume.h): sv (NULL: none)
 * restores a saved generation when it loaded one, and saves at the start of
 * every Adam iteration of a batch when due: the points kept so far, the
 * per-point records, and the batch (its points, active set, Adam states). On
 * a stop it returns -1 with an IP_ERR_INTERRUPTED error. Resumed from any
 * save it gives bit for bit what an uninterrupted run gives; run->seconds
 * adds up every run's. */
typedef struct ip_saver ip_saver;
int ip_fingerprint_generate_resumable(ip_model *m, const ip_dataset *train, const float *lo, const float *hi,
                                      const ip_fp_cfg *cfg, ip_fingerprint *fp, ip_fp_run *run, ip_saver *sv,
                                      ip_err *e);

/* Fraction of fp's points on which suspect m (branch: -1 = default) predicts
 * fp->label; points are mapped to m's input normalisation when it differs
 * from the owner's. Forward passes of up to m's planned batch (planned for
 * min(n, 1024) when m is not planned). m's branch is restored. */
int ip_fingerprint_match(ip_model *m, const ip_fingerprint *fp, int branch, double *rate, ip_err *e);

/* The fingerprint file (docs/fingerprint.md), written atomically. */
int ip_fingerprint_save(const ip_fingerprint *fp, const char *path, ip_err *e);
int ip_fingerprint_load(ip_fingerprint *fp, const char *path, ip_err *e);

/* ---------------- evaluation (docs/fingerprint.md) ----------------
 * pos: matching rates of pirated suspects, neg: of independent ones.
 * robustness(t) = #{pos >= t} / npos, uniqueness(t) = #{neg < t} / nneg: step
 * functions of the threshold t whose steps are at the observed rates, so the
 * areas and the threshold below are exact (no grid). */

/* The IPGuard paper's ARUC, as the public re-implementations compute it: the
 * area under min(robustness(t), uniqueness(t)) over t in [0, 1], integrated
 * exactly between consecutive observed rates. Separated positives and
 * negatives give the width of the gap between them (not 1): the margin k
 * trade-off shows. NaN when pos or neg is empty. */
double ip_ipguard_aruc(const double *pos, size_t npos, const double *neg, size_t nneg);
/* The ROC AUC: the area under (uniqueness(t), robustness(t)) through every
 * observed threshold = P(pos > neg) + P(pos = neg) / 2 (Mann-Whitney). 1 for
 * any separation, 0.5 for the same distribution. NaN when either is empty. */
double ip_ipguard_roc_auc(const double *pos, size_t npos, const double *neg, size_t nneg);
/* The threshold for a false-positive rate: the smallest t among the observed
 * rates (cands: every matching rate of the fingerprint; 0 too) with
 * #{cal >= t} / ncal <= fpr, where cal are the independent models it is
 * calibrated on; IP_IPGUARD_NEVER (above every rate: nothing is pirated)
 * when no candidate qualifies; 0 when ncal = 0; NaN when out of memory.
 * O((ncal + ncands) log ncal). A suspect is pirated iff its matching rate
 * >= the threshold. */
#define IP_IPGUARD_NEVER 1.01
double ip_ipguard_threshold(const double *cal, size_t ncal, const double *cands, size_t ncands, double fpr);

/* Curves sampled for plots at t = i/100, i = 0..100 (the numbers above are
 * exact; these only draw them). */
#define IP_IPGUARD_NT 101
void ip_ipguard_curves(const double *pos, size_t npos, const double *neg, size_t nneg,
                       double robustness[IP_IPGUARD_NT], double uniqueness[IP_IPGUARD_NT]);

#endif
