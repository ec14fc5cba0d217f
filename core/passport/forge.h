/* Fake-passport evaluation ("fake1", REFERENCE.md section 1; docs/passports.md):
 * the accuracy and signature detection rate of many forged passports on a
 * fixed set of E evaluation images, fast.
 *
 * How (docs/passports.md has the details):
 *   - ops whose output does not depend on the passport ("shared": everything
 *     before the first passport layer's affine, and any later op fed only by
 *     such ops) run once per chunk of images, and when the memory bound allows
 *     their outputs that later ops read are cached for all E images at once;
 *   - a block of up to `block` passports gets its gamma/beta from one GEMM per
 *     layer, W (Cout x K) x [colmean(P_gamma) colmean(P_beta) ...] (K x 2B);
 *   - G passports at a time run the remaining ops on G*chunk "virtual samples"
 *     (passport g applies its gamma/beta to its copy of the chunk), so every
 *     later conv is one big GEMM / Winograd call; every buffer is planned once
 *     in ip_forge_create;
 *   - screen mode (sequential test): images are taken in a random order, and at
 *     n = first_look * 2^k images a passport whose accuracy is below the
 *     acceptance threshold with confidence (Chernoff-Hoeffding bound for
 *     sampling without replacement, total error delta per passport) stops.
 *     Passports that are not stopped, in particular every accepted one, are
 *     evaluated on all E images. A passport that screen mode rejects would be
 *     rejected by full mode with probability >= 1 - delta.
 *
 * Results are a pure function of (model, images, key generator, index): a
 * shard [first, first+count) of N passports gives exactly the values the
 * unsharded run gives for those passports. */
#ifndef IP_FORGE_H
#define IP_FORGE_H

/* Passports per GEMM block unless set: also a fake1 task's resume unit (core/tasks/forge.c). */
#define IP_FORGE_BLOCK_DEFAULT 256
/* Virtual samples per pass the automatic group aims at unless set: 128, because a
 * pass whose activations stay in cache beats a larger GEMM (measured at 1
 * thread, 200 images per passport: small-p 109 -> 135 passports/s from 512,
 * alexnet-p 6.5 -> 7.7; docs/performance.md "Passes that fit in cache"). */
#define IP_FORGE_VIRTUAL_BATCH_DEFAULT 128

#include <stddef.h>
#include <stdint.h>

#include "../io/data.h"
#include "../util/err.h"
#include "../util/metrics.h"
#include "../model/model.h"
#include "passport_keys.h"

typedef enum { IP_FORGE_FULL = 0, IP_FORGE_SCREEN = 1 } ip_forge_mode;

const char *ip_forge_mode_name(ip_forge_mode m);
int ip_forge_mode_parse(const char *s, ip_forge_mode *out);

typedef struct ip_forge_cfg {
    ip_forge_mode mode;
    int group;            /* passports per group (0 = auto: virtual_batch / chunk) */
    int virtual_batch;    /* auto group: target virtual samples per pass (0 = IP_FORGE_VIRTUAL_BATCH_DEFAULT) */
    int chunk;            /* images per chunk (0 = auto, <= 64) */
    int block;            /* passports per gamma/beta GEMM block (0 = IP_FORGE_BLOCK_DEFAULT) */
    double memory_mb;     /* bound on the planned buffers (0 = 1024 MB) */
    double delta;         /* screen: error probability per passport (0 = 1e-6) */
    double margin;        /* a passport is accepted when acc >= real_acc - margin (default 0.03) */
    double detect_threshold; /* joint criterion: ... and its signature detection >= this (default: fake1's row) */
    int first_look;       /* screen: images at the first test; tests at first_look * 2^k < E (0 = 16) */
    uint64_t order_seed;  /* screen: the order of the E images, from (order_seed, ip_stream("forge-order", 0)) */
    int no_cache;         /* 1: recompute the shared activations per block even when caching them fits */
    int unfused;          /* 1: a Winograd conv and its tail as two kernels (the reference twin of their fusion) */
} ip_forge_cfg;

void ip_forge_defaults(ip_forge_cfg *c);

typedef struct ip_forge ip_forge;

/* Plans fake-passport evaluation of model m (v1, or v2/v3: the private branch)
 * on the first n images of d (normalised for m, see ip_data_match_model). m
 * and d must outlive the plan and stay unchanged; m's activations, branch and
 * passports are not touched (except the passport gamma/beta scratch that
 * ip_forge_real recomputes). */
int ip_forge_create(ip_forge **out, ip_model *m, const ip_dataset *d, size_t n, const ip_forge_cfg *cfg,
                    ip_err *e);
void ip_forge_free(ip_forge *f);

/* What the plan chose (for reports and tests). */
typedef struct ip_forge_info {
    size_t images;         /* E */
    int chunk, group, block, virtual_batch;
    int cached;            /* shared activations cached for all E images */
    int looks;             /* screen: number of tests before E */
    double planned_mb;
} ip_forge_info;
void ip_forge_get_info(const ip_forge *f, ip_forge_info *info);
/* Sets how later runs evaluate (a claim is always evaluated in full); returns the mode before. */
ip_forge_mode ip_forge_set_mode(ip_forge *f, ip_forge_mode mode);

/* Per-passport results of ip_forge_run / ip_forge_real. */
typedef struct ip_forge_result {
    size_t count;
    int32_t *correct;     /* correctly classified images */
    int32_t *evaluated;   /* images evaluated (E unless screened out) */
    double *detect;       /* signature detection rate vs the model's bits, mean over layers */
    /* optional, allocated by the caller: (count x E) predicted labels in the
     * image order of the dataset, -1 for images a screened passport skipped */
    int32_t *pred;
    double seconds;       /* wall time of the run (key generation included) */
    double key_seconds;   /* of which key generation + gamma/beta */
    double samples;       /* virtual samples evaluated (passport x image) */
} ip_forge_result;

int ip_forge_result_alloc(ip_forge_result *r, size_t count, ip_err *e);
void ip_forge_result_free(ip_forge_result *r);

/* Writes the key vector (ip_keys_floats(model) floats) of passport `index`. */
typedef int (*ip_forge_keys_fn)(void *ctx, uint64_t index, float *keys, ip_err *e);
/* Adapter for ip_keygen (ctx = ip_keygen *). */
int ip_forge_keygen_fn(void *ctx, uint64_t index, float *keys, ip_err *e);

/* The model's own passport (its stored keys) on the E images: accuracy,
 * detection; r (count 1, optional) gets the details. Gamma/beta come from the
 * model's own GEMV, so predictions match ip_predict on the private branch. */
int ip_forge_real(ip_forge *f, double *acc, double *detect, ip_forge_result *r, ip_err *e);

/* Evaluates passports first .. first+count-1 (keys from keys_fn) and fills r
 * (ip_forge_result_alloc'd for count). threshold: the acceptance threshold
 * (real accuracy - margin); only screen mode uses it.
 * total: the N that [first, first+count) is a shard of (0 = none). With it,
 * GEMM blocks and passport groups are aligned to global indices (padded at the
 * range's ends), so every passport is computed in the same batch slot whatever
 * the sharding: full-mode results are bit-identical across shardings of N.
 * (OpenBLAS rounds a column differently depending on its position and the
 * matrix width, so a packed grouping would differ in the last bits.) */
int ip_forge_run(ip_forge *f, ip_forge_keys_fn keys_fn, void *ctx, uint64_t first, size_t count, uint64_t total,
                 double threshold, ip_forge_result *r, ip_err *e);

/* Called at the start of every GEMM block of a run with `next`, the first
 * passport of the block: r holds the results of passports first .. next-1
 * (a checkpoint saves them; io/resume.h). Non-zero stops the run with that
 * error (e.g. an interruption). */
typedef int (*ip_forge_point_fn)(void *ctx, uint64_t next, const ip_forge_result *r, ip_err *e);
/* ip_forge_run resumed at passport `start` (first <= start <= first+count, a
 * `next` that point reported for the same first, count, total and plan): r
 * must hold the results of first .. start-1 and its `samples` so far; the
 * passports from start on are computed in the same blocks and groups as an
 * uninterrupted run computes them, so the results are bit-identical. seconds
 * and key_seconds are of this call only (at a point: so far). point may be
 * NULL. */
int ip_forge_run_from(ip_forge *f, ip_forge_keys_fn keys_fn, void *ctx, uint64_t first, size_t count,
                      uint64_t total, double threshold, ip_forge_result *r, uint64_t start, ip_forge_point_fn point,
                      void *point_ctx, ip_err *e);

/* Screen mode's stopping rule: with c correct out of n (a uniformly random
 * sample without replacement), is the full-set accuracy below t with error at
 * most delta_look?  True when c/n < t and n * KL(c/n || t) >= ln(1/delta_look). */
int ip_forge_reject(int32_t c, int32_t n, double t, double delta_look);

/* Detection rate of sign(W . colmean(keys)) of every passport layer of m
 * against bits (per layer, m->passports[l].cout values each; NULL = m's own bits). */
double ip_forge_detect_keys(ip_model *m, const float *keys, const int8_t *const *bits);

/* Summary statistics of the metrics: linear-interpolation quantile (numpy's
 * default) of sorted values; p-value of a claim against a null distribution. */
double ip_forge_quantile(const double *sorted, size_t n, double q);
/* (1 + #{i: acc[i] >= claim_acc and detect[i] >= claim_detect}) / (1 + n). */
double ip_forge_p_value(double claim_acc, double claim_detect, const double *acc, const double *detect, size_t n);
/* One-sided Clopper-Pearson upper confidence bound at level conf (e.g.
 * 0.95) on a binomial proportion with k successes of n: the p at which
 * P(X <= k) = 1 - conf; 1 - (1 - conf)^(1/n) for k = 0, 1 for k = n. */
double ip_forge_cp_upper(uint64_t k, uint64_t n, double conf);

/* Generalized Pareto distribution (GPD) of exceedances y >= 0: survival
 * (1 + xi y / sigma)^(-1/xi) (exp(-y / sigma) for xi = 0). */
double ip_forge_gpd_sf(double y, double xi, double sigma);
/* Maximum-likelihood fit of a GPD to y[0..k-1] (>= 0, some positive), with
 * xi restricted to [-1, IP_GPD_XI_MAX] (below -1 the likelihood is unbounded).
 * Returns 0, or -1 when there is nothing to fit. *loglik: the maximum. */
#define IP_GPD_XI_MAX 3.0
int ip_forge_gpd_fit(const double *y, size_t k, double *xi, double *sigma, double *loglik);
/* Profile-likelihood upper bound on q = sf(d) of the GPD fitted to y[0..k-1]
 * (xi_hat, sigma_hat, loglik_hat from ip_forge_gpd_fit): the largest q whose
 * profile deviance is <= the chi-square(1) quantile of level 2 conf - 1 (a
 * one-sided bound at level conf). */
double ip_forge_gpd_sf_upper(const double *y, size_t k, double d, double xi_hat, double sigma_hat, double loglik_hat,
                             double conf);

/* The forgery tail (docs/attacks.md, "Forgery tail"): the probability that a
 * fake passport's accuracy reaches the acceptance threshold, from n
 * accuracies sorted ascending, `accepted` of them accepted (at or above thr). Peaks over threshold: the top
 * IP_TAIL_FRACTION of the fakes (ties with the smallest one included) above
 * u get a GPD (ip_forge_gpd_fit), p = (k/n) sf(t - u), and the 95% upper
 * bound is (k/n) times ip_forge_gpd_sf_upper (k/n taken as known). When the
 * data cannot support a fit (fewer than IP_TAIL_MIN exceedances, fewer than
 * 5 distinct values among them, a screened run: screened = 1, the threshold
 * at or below u, a failed fit), p is the observed fraction accepted and the
 * bound the Clopper-Pearson one, and gpd = 0.
 * resolution: the step of the accuracies (1/E: a correct count over E
 * images), 0 for continuous values: exceedances and the threshold are then
 * taken at the middle of their steps (a continuity correction). */
#define IP_TAIL_FRACTION 0.01
#define IP_TAIL_MIN 50
#define IP_TAIL_CONF 0.95
typedef struct ip_forge_tail {
    int gpd;              /* 1: the GPD tail fit; 0: the exact binomial (Clopper-Pearson) bound */
    size_t k;             /* exceedances fitted (0 without a fit) */
    double u;             /* the tail threshold (NaN without a fit) */
    double xi, sigma;     /* the fit (NaN without one) */
    double p_est, p_upper; /* P(a fake is accepted): estimate, one-sided IP_TAIL_CONF upper bound */
    double p_cp_upper;    /* Clopper-Pearson upper bound on the observed count, always */
} ip_forge_tail;
void ip_forge_tail_estimate(const double *sorted, size_t n, size_t accepted, double thr, double resolution,
                            int screened, ip_forge_tail *out);

/* Passports [*first, *first + *count) of shard `shard` of `shards` over n: floor(n*s/S) .. floor(n*(s+1)/S). */
void ip_forge_shard_range(uint64_t n, int shard, int shards, uint64_t *first, uint64_t *count);

#endif
