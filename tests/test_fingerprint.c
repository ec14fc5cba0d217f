/* IPGuard fingerprinting (core/ipguard/fingerprint.h): the loss, generated points sit
 * across the i|j boundary by margin k, clipping, batched = one-at-a-time,
 * the owner matches itself, the file round trip, the evaluation maths, the
 * task code and the runner kinds. Owners are small-p-narrow trained on a
 * synthetic 16x16 set (as in test_attacks.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/ipguard/fingerprint.h"
#include "../core/tasks/tasks.h"
#include "../core/model/train.h"
#include "../runner/kinds/kinds.h"
#include "../runner/spec/spec.h"
#include "testutil.h"

#define SRC "synthetic:512x1x16x16"
#define TEST_LIMIT 128

static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "fp"), "mkdtemp failed"); }
static void suite_fini(void) { tu_rmtree(scratch); }
TestSuite(fingerprint, .init = suite_init, .fini = suite_fini);
TestSuite(ipguard);

/* Trains an owner (small-p-narrow, 2 epochs) and saves it to scratch/<tag>.h5.
 * The seed is always 1: it also makes the synthetic data, and every task
 * loads that data with seed 1. Independent models differ in norm or scheme. */
static const char *owner(const char *tag, ip_scheme scheme, ip_norm_kind norm) {
    char name[24]; /* scratch (< 128) + "/" + name fits tu_path's 160 */
    snprintf(name, sizeof name, "%.20s.h5", tag);
    ip_train_task t = tu_tiny_train(SRC, scheme, norm, 2, tu_path(scratch, name));
    t.test_limit = TEST_LIMIT;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_gt(ip_metrics_get(&mt, "test_acc"), 0.5, "owner accuracy %.3f", ip_metrics_get(&mt, "test_acc"));
    ip_metrics_free(&mt);
    return tu_path(scratch, name);
}

/* The owner model and its normalised train/test data and input range. */
typedef struct env {
    ip_model m;
    ip_dataset train, test;
    float lo[4], hi[4];
} env;

static void env_open(env *v, const char *path) {
    memset(v, 0, sizeof *v);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_open(&v->m, &v->test, path, SRC, TEST_LIMIT, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_load(&v->train, SRC, IP_SPLIT_TRAIN, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(&v->train, &v->m, &e), 0, "%s", e.msg);
    ip_data_input_range(&v->test, v->lo, v->hi);
}

static void env_close(env *v) {
    ip_model_free(&v->m);
    ip_data_free(&v->train);
    ip_data_free(&v->test);
}

/* Every kept point is classified j with i the runner-up and z_j - z_i >= k
 * (tol: float noise of a forward in another batch composition), and the
 * run's per-point report agrees with the fingerprint. */
static void assert_points_valid(ip_model *m, const ip_fingerprint *fp, const ip_fp_run *run, float k) {
    ip_err e = {{0}};
    size_t d = (size_t)fp->c * fp->h * fp->w;
    int C = fp->classes;
    cr_assert_eq(ip_model_plan(m, 1, &e), 0, "%s", e.msg);
    ip_branch keep = m->branch;
    m->branch = (ip_branch)fp->cfg.branch;
    size_t kept = 0;
    for (size_t p = 0; p < run->requested; p++) {
        cr_assert_neq(run->source[p], run->target[p], "point %zu: target equals the source label", p);
        if (!run->converged[p]) {
            cr_assert_eq(run->iterations[p], fp->cfg.max_iter);
            continue;
        }
        cr_assert_lt(kept, fp->n);
        cr_assert_eq(fp->label[kept], run->target[p]);
        cr_assert_eq(fp->source[kept], run->source[p]);
        cr_assert_eq(fp->iterations[kept], run->iterations[p]);
        const float *z = ip_model_forward(m, fp->x + kept * d, 1, 0);
        int i = fp->source[kept], j = fp->label[kept];
        float other = -INFINITY;
        for (int c = 0; c < C; c++)
            if (c != i && c != j && z[c] > other) other = z[c];
        cr_assert_geq(z[j] - z[i], k - 1e-4f, "point %zu: z_j - z_i = %g < k = %g", p, z[j] - z[i], k);
        cr_assert_geq(z[i] - other, -1e-4f, "point %zu: i=%d is not the runner-up (%g)", p, i, z[i] - other);
        kept++;
    }
    cr_assert_eq(kept, fp->n);
    cr_assert_eq(fp->n + fp->unconverged, fp->requested);
    m->branch = keep;
}

/* ---------------- the loss ---------------- */

Test(ipguard, loss_zero_exactly_across_the_boundary_and_gradient) {
    float dz[4];
    /* j=1 wins by 2 >= k=1, i=0 runner-up */
    float z1[4] = {1.f, 3.f, 0.5f, -1.f};
    cr_assert_eq(ip_fp_loss(z1, 4, 0, 1, 1.f, dz), 0.f);
    for (int c = 0; c < 4; c++) cr_assert_eq(dz[c], 0.f);
    /* margin not met: term 1 only */
    cr_assert_float_eq(ip_fp_loss(z1, 4, 0, 1, 2.5f, dz), 0.5f, 1e-6);
    cr_assert(dz[0] == 1.f && dz[1] == -1.f && dz[2] == 0.f && dz[3] == 0.f);
    /* i not the runner-up: label 2 beats it */
    float z2[4] = {1.f, 3.f, 2.f, -1.f};
    cr_assert_float_eq(ip_fp_loss(z2, 4, 0, 1, 1.f, dz), 1.f, 1e-6);
    cr_assert(dz[0] == -1.f && dz[1] == 0.f && dz[2] == 1.f && dz[3] == 0.f);
    /* two classes: no third term */
    float z3[2] = {0.f, 0.5f};
    cr_assert_float_eq(ip_fp_loss(z3, 2, 0, 1, 1.f, NULL), 0.5f, 1e-6);
}

Test(ipguard, enums_parse_and_name) {
    ip_fp_init in;
    ip_fp_target tg;
    int b;
    cr_assert_eq(ip_fp_init_parse("noise", &in), 0);
    cr_assert_str_eq(ip_fp_init_name(in), "noise");
    cr_assert_eq(ip_fp_target_parse("least-likely", &tg), 0);
    cr_assert_str_eq(ip_fp_target_name(tg), "least-likely");
    cr_assert_eq(ip_fp_branch_parse("public", &b), 0);
    cr_assert_eq(b, IP_BRANCH_PUBLIC);
    cr_assert_str_eq(ip_fp_branch_name(-1), "default");
    cr_assert_neq(ip_fp_init_parse("bogus", &in), 0);
    cr_assert_neq(ip_fp_target_parse("least", &tg), 0);
}

/* ---------------- evaluation maths ---------------- */

/* The paper's ARUC: the area under min(robustness(t), uniqueness(t)), worked
 * by hand over the intervals between the observed rates. */
Test(ipguard, aruc_is_the_area_under_the_smaller_curve) {
    double pos[5] = {1, 1, 0.98, 0.95, 0.9}, neg[4] = {0, 0.1, 0.2, 0.3};
    /* (0,.1) min(1,1/4), (.1,.2) 2/4, (.2,.3) 3/4, (.3,.9) 1, (.9,.95) 4/5, (.95,.98) 3/5, (.98,1) 2/5 */
    double want = 0.1 * 0.25 + 0.1 * 0.5 + 0.1 * 0.75 + 0.6 + 0.05 * 0.8 + 0.03 * 0.6 + 0.02 * 0.4;
    cr_assert_float_eq(ip_ipguard_aruc(pos, 5, neg, 4), want, 1e-12);
    cr_assert_float_eq(want, 0.816, 1e-12);
    cr_assert_eq(ip_ipguard_roc_auc(pos, 5, neg, 4), 1.0, "separated: ROC AUC 1");
    /* the most extreme case: pos all 1, neg all 0 */
    double p1[1] = {1}, n0[1] = {0};
    cr_assert_float_eq(ip_ipguard_aruc(p1, 1, n0, 1), 1.0, 1e-15);
    /* separated by a small gap: ARUC is about the gap, ROC AUC still 1 (the example) */
    double close_pos[2] = {0.995, 0.993}, close_neg[1] = {0.991};
    cr_assert_float_eq(ip_ipguard_aruc(close_pos, 2, close_neg, 1), (0.993 - 0.991) + 0.5 * (0.995 - 0.993), 1e-12);
    cr_assert_eq(ip_ipguard_roc_auc(close_pos, 2, close_neg, 1), 1.0);
    /* empty sides */
    cr_assert(isnan(ip_ipguard_aruc(pos, 5, NULL, 0)));
    cr_assert(isnan(ip_ipguard_roc_auc(NULL, 0, neg, 4)));
}

Test(ipguard, roc_auc_counts_pairs_and_half_ties) {
    /* the same values on both sides: exactly one half */
    double v[6] = {0.1, 0.35, 0.5, 0.5, 0.72, 1.0};
    cr_assert_eq(ip_ipguard_roc_auc(v, 6, v, 6), 0.5);
    /* by pairs: pos 0.5 beats 0.2, ties 0.5; pos 0.9 beats both: (1 + 0.5 + 2) / 4 */
    double p[2] = {0.5, 0.9}, n[2] = {0.2, 0.5};
    cr_assert_eq(ip_ipguard_roc_auc(p, 2, n, 2), 3.5 / 4);
    /* independent draws from one distribution */
    double a[400], b[400];
    ip_rng g;
    ip_rng_init(&g, 3, ip_stream("aruc-test", 0));
    for (int i = 0; i < 400; i++) a[i] = ip_rng_uniform(&g), b[i] = ip_rng_uniform(&g);
    double auc = ip_ipguard_roc_auc(a, 400, b, 400);
    cr_assert(fabs(auc - 0.5) < 0.06, "ROC AUC of identical distributions %.3f", auc);
    /* reversed (pirated copies match less than independent models): 0, and no area where both curves are high */
    double lo[3] = {0.1, 0.2, 0.3}, hi[3] = {0.7, 0.8, 0.9};
    cr_assert_eq(ip_ipguard_roc_auc(lo, 3, hi, 3), 0.0);
    cr_assert_eq(ip_ipguard_aruc(lo, 3, hi, 3), 0.0);
}

Test(ipguard, plot_curves_sample_the_step_functions) {
    double pos[5] = {1, 1, 0.98, 0.95, 0.9}, neg[4] = {0, 0.1, 0.2, 0.3};
    double r[IP_IPGUARD_NT], u[IP_IPGUARD_NT];
    ip_ipguard_curves(pos, 5, neg, 4, r, u);
    cr_assert_eq(r[0], 1.0);
    cr_assert_eq(u[0], 0.0);
    cr_assert_eq(r[100], 0.4); /* 2 of 5 at exactly 1.0 */
    cr_assert_eq(u[100], 1.0);
    cr_assert_float_eq(r[90], 1.0, 1e-15);  /* 0.9 >= 0.90 */
    cr_assert_float_eq(u[30], 0.75, 1e-15); /* 0.3 < 0.30 is false */
}

Test(ipguard, threshold_is_the_smallest_observed_rate_meeting_the_false_positive_rate) {
    double neg[10] = {0.05, 0.1, 0.1, 0.2, 0.25, 0.3, 0.3, 0.4, 0.5, 0.62};
    double all[12] = {0.05, 0.1, 0.1, 0.2, 0.25, 0.3, 0.3, 0.4, 0.5, 0.62, 0.7, 0.9}; /* + two positives */
    /* fpr 0: the first rate above the largest negative */
    cr_assert_eq(ip_ipguard_threshold(neg, 10, all, 12, 0.0), 0.7);
    /* fpr 0.1: one negative of ten may match */
    cr_assert_eq(ip_ipguard_threshold(neg, 10, all, 12, 0.1), 0.62);
    cr_assert_eq(ip_ipguard_threshold(neg, 10, all, 12, 0.2), 0.5);
    cr_assert_eq(ip_ipguard_threshold(neg, 10, all, 12, 1.0), 0.0);
    /* the example: rates closer than 0.01 are not tied (a 0.01 grid gave 1.00: both copies clean) */
    double close_neg[1] = {0.991}, close_all[3] = {0.995, 0.993, 0.991};
    cr_assert_eq(ip_ipguard_threshold(close_neg, 1, close_all, 3, 0.0), 0.993);
    /* a negative that matches perfectly: no observed rate has fpr 0 */
    double one[2] = {0.2, 1.0};
    cr_assert_eq(ip_ipguard_threshold(one, 2, one, 2, 0.0), IP_IPGUARD_NEVER);
    cr_assert_eq(ip_ipguard_threshold(one, 2, one, 2, 0.5), 1.0);
    cr_assert_eq(ip_ipguard_threshold(NULL, 0, one, 2, 0.0), 0.0);
}

/* ---------------- generation ---------------- */

Test(fingerprint, points_cross_the_boundary_by_margin_k) {
    env v;
    env_open(&v, owner("own_bn", IP_SCHEME_BASELINE, IP_NORM_BN));
    ip_fp_cfg c;
    ip_fp_defaults(&c);
    c.points = 40;
    c.margin = 0.5f;
    c.max_iter = 300;
    c.lr = 0.02f;
    ip_fingerprint fp;
    ip_fp_run run;
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_generate(&v.m, &v.train, v.lo, v.hi, &c, &fp, &run, &e), 0, "%s", e.msg);
    cr_log_info("train/random: %zu of %zu converged", fp.n, fp.requested);
    cr_assert_geq(fp.n, 30, "only %zu of 40 points converged", fp.n);
    assert_points_valid(&v.m, &fp, &run, c.margin);
    ip_fingerprint_free(&fp);
    ip_fp_run_free(&run);
    /* noise seeds, least-likely targets, a larger margin */
    c.init = IP_FP_INIT_NOISE;
    c.target = IP_FP_TARGET_LEAST;
    c.margin = 2.f;
    cr_assert_eq(ip_fingerprint_generate(&v.m, NULL, v.lo, v.hi, &c, &fp, &run, &e), 0, "%s", e.msg);
    cr_log_info("noise/least-likely: %zu of %zu converged", fp.n, fp.requested);
    cr_assert_geq(fp.n, 1);
    assert_points_valid(&v.m, &fp, &run, c.margin);
    ip_fingerprint_free(&fp);
    ip_fp_run_free(&run);
    env_close(&v);
}

Test(fingerprint, unconverged_points_are_reported_not_kept) {
    env v;
    env_open(&v, owner("own_unc", IP_SCHEME_BASELINE, IP_NORM_BN));
    ip_fp_cfg c;
    ip_fp_defaults(&c);
    c.points = 12;
    c.max_iter = 2; /* too few steps for most points */
    c.margin = 3.f;
    ip_fingerprint fp;
    ip_fp_run run;
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_generate(&v.m, &v.train, v.lo, v.hi, &c, &fp, &run, &e), 0, "%s", e.msg);
    cr_assert_gt(fp.unconverged, 0);
    assert_points_valid(&v.m, &fp, &run, c.margin);
    ip_fingerprint_free(&fp);
    ip_fp_run_free(&run);
    env_close(&v);
}

Test(fingerprint, clipping_keeps_points_in_range) {
    env v;
    env_open(&v, owner("own_clip", IP_SCHEME_BASELINE, IP_NORM_BN));
    ip_fp_cfg c;
    ip_fp_defaults(&c);
    c.points = 16;
    c.init = IP_FP_INIT_NOISE;
    c.lr = 1.f; /* steps far larger than the range: only the clip keeps points inside */
    c.max_iter = 50;
    ip_err e = {{0}};
    size_t d = (size_t)v.m.cfg.in_c * v.m.cfg.in_h * v.m.cfg.in_w, hw = (size_t)v.m.cfg.in_h * v.m.cfg.in_w;
    float *x = malloc(c.points * d * sizeof *x);
    int32_t src[16], tgt[16], it[16];
    int8_t conv[16];
    cr_assert_eq(ip_model_plan(&v.m, 16, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_fp_seeds(&v.m, NULL, v.lo, v.hi, &c, 0, 16, x, src, tgt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_fp_optimise(&v.m, x, src, tgt, 16, v.lo, v.hi, &c, it, conv, &e), 0, "%s", e.msg);
    size_t at_bound = 0;
    for (size_t p = 0; p < 16; p++)
        for (int ch = 0; ch < v.m.cfg.in_c; ch++)
            for (size_t q = 0; q < hw; q++) {
                float val = x[p * d + (size_t)ch * hw + q];
                cr_assert(val >= v.lo[ch] && val <= v.hi[ch], "x = %g outside [%g, %g]", val, v.lo[ch], v.hi[ch]);
                at_bound += val == v.lo[ch] || val == v.hi[ch];
            }
    cr_assert_gt(at_bound, 0, "no value reached the bounds: the test does not exercise clipping");
    /* the range is the image of pixels [0, 1] under the model's normalisation */
    cr_assert_float_eq(v.lo[0], -v.m.cfg.in_mean[0] / v.m.cfg.in_std[0], 1e-6);
    cr_assert_float_eq(v.hi[0], (1 - v.m.cfg.in_mean[0]) / v.m.cfg.in_std[0], 1e-6);
    free(x);
    env_close(&v);
}

/* Batched (all points in one forward/backward) against the naive one-point
 * loop (ip_fp_optimise_ref), in two horizons:
 * - a few steps (SHORT_ITER): the same convergence, the same iteration counts
 *   and the same points up to float noise (a batch GEMM may round a column
 *   differently from a one-column GEMM): each point's gradient is its own;
 * - the whole optimisation (200 steps): the same seeds, labels and targets,
 *   most points converged, and every point either run calls converged is a
 *   boundary point (loss 0 when run alone through the model).
 * Iteration counts and points after 200 steps are not compared: Adam's
 * normalised steps amplify an ulp of difference, and how far depends on the
 * machine's kernels. Measured on AVX2 (Zen 3, OpenBLAS Haswell kernels):
 * 169 steps batched against 162 alone for one point, another point 5e-3
 * apart after equal counts; on AVX-512 they had agreed within 1e-4. */
#define SHORT_ITER 6

/* Loss of point xp alone through the model: 0 at a fingerprint point past the margin. */
static float loss_alone(ip_model *m, const float *xp, int32_t src, int32_t tgt, float margin) {
    const float *z = ip_model_forward(m, xp, 1, 0);
    return ip_fp_loss(z, m->cfg.classes, src, tgt, margin, NULL);
}

static void batched_equals_ref(ip_norm_kind norm, ip_scheme scheme, const char *tag) {
    env v;
    env_open(&v, owner(tag, scheme, norm));
    v.m.branch = ip_fp_resolve_branch(&v.m, -1);
    enum { K = 10 };
    ip_fp_cfg c;
    ip_fp_defaults(&c);
    c.points = K;
    c.margin = 0.5f;
    ip_err e = {{0}};
    size_t d = (size_t)v.m.cfg.in_c * v.m.cfg.in_h * v.m.cfg.in_w;
    float *x0 = malloc(K * d * sizeof *x0), *xb = malloc(K * d * sizeof *xb), *xr = malloc(K * d * sizeof *xr);
    cr_assert(x0 && xb && xr);
    int32_t src[K], tgt[K], itb[K], itr[K];
    int8_t cb[K], cref[K];
    cr_assert_eq(ip_model_plan(&v.m, K, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_fp_seeds(&v.m, &v.train, v.lo, v.hi, &c, 0, K, x0, src, tgt, &e), 0, "%s", e.msg);

    /* a few steps: the same trajectories */
    c.max_iter = SHORT_ITER;
    memcpy(xb, x0, K * d * sizeof *xb), memcpy(xr, x0, K * d * sizeof *xr);
    cr_assert_eq(ip_fp_optimise(&v.m, xb, src, tgt, K, v.lo, v.hi, &c, itb, cb, &e), 0, "%s", e.msg);
    for (int p = 0; p < K; p++)
        cr_assert_eq(ip_fp_optimise_ref(&v.m, xr + p * d, src[p], tgt[p], v.lo, v.hi, &c, &itr[p], &cref[p], &e), 0,
                     "%s", e.msg);
    double worst = 0;
    for (int p = 0; p < K; p++) {
        cr_assert_eq(cb[p], cref[p], "point %d: converged %d batched, %d alone in %d steps", p, cb[p], cref[p],
                     SHORT_ITER);
        cr_assert_eq(itb[p], itr[p], "point %d: %d iterations batched, %d alone", p, itb[p], itr[p]);
        double diff = tu_max_rel_diff(xb + p * d, xr + p * d, d);
        cr_assert_lt(diff, 1e-4, "point %d differs by %g after %d steps", p, diff, SHORT_ITER);
        worst = diff > worst ? diff : worst;
        /* the steps moved the point: the comparison is not of two untouched seeds */
        cr_assert(memcmp(xb + p * d, x0 + p * d, d * sizeof *xb) != 0, "point %d did not move", p);
    }

    /* the whole optimisation: the same boundary property on both sides */
    c.max_iter = 200;
    memcpy(xb, x0, K * d * sizeof *xb), memcpy(xr, x0, K * d * sizeof *xr);
    cr_assert_eq(ip_fp_optimise(&v.m, xb, src, tgt, K, v.lo, v.hi, &c, itb, cb, &e), 0, "%s", e.msg);
    for (int p = 0; p < K; p++)
        cr_assert_eq(ip_fp_optimise_ref(&v.m, xr + p * d, src[p], tgt[p], v.lo, v.hi, &c, &itr[p], &cref[p], &e), 0,
                     "%s", e.msg);
    cr_assert_eq(ip_model_plan(&v.m, 1, &e), 0, "%s", e.msg);
    int nb = 0, nr = 0;
    for (int p = 0; p < K; p++) {
        const float *xs[2] = {xb + p * d, xr + p * d};
        const int8_t conv[2] = {cb[p], cref[p]};
        for (int w = 0; w < 2; w++)
            if (conv[w]) {
                float l = loss_alone(&v.m, xs[w], src[p], tgt[p], c.margin);
                cr_assert_eq(l, 0.f, "point %d (%s) converged with loss %g", p, w ? "alone" : "batched", l);
            }
        nb += cb[p], nr += cref[p];
    }
    cr_log_info("%s: after %d steps batched vs alone differ by %g at most; after 200, %d (batched) and %d (alone) of %d "
                "converged",
                tag, SHORT_ITER, worst, nb, nr, K);
    cr_assert_gt(nb, K / 2);
    cr_assert_gt(nr, K / 2);
    /* the seeds do not depend on the batch: point 3 seeded alone is the same */
    float *x3 = malloc(d * sizeof *x3);
    int32_t s3, t3;
    cr_assert_eq(ip_fp_seeds(&v.m, &v.train, v.lo, v.hi, &c, 3, 1, x3, &s3, &t3, &e), 0, "%s", e.msg);
    cr_assert(memcmp(x3, x0 + 3 * d, d * sizeof *x3) == 0);
    cr_assert_eq(s3, src[3]);
    cr_assert_eq(t3, tgt[3]);
    free(x3), free(x0), free(xb), free(xr);
    env_close(&v);
}

Test(fingerprint, batched_equals_one_at_a_time_bn) {
    batched_equals_ref(IP_NORM_BN, IP_SCHEME_BASELINE, "own_ref_bn");
}

Test(fingerprint, batched_equals_one_at_a_time_gn_v2_public) {
    batched_equals_ref(IP_NORM_GN, IP_SCHEME_V2, "own_ref_gn");
}

/* ---------------- matching, the file, the tasks ---------------- */

Test(fingerprint, owner_matches_itself_and_file_round_trip) {
    const char *own = owner("own_match", IP_SCHEME_BASELINE, IP_NORM_BN);
    const char *other = owner("own_other", IP_SCHEME_BASELINE, IP_NORM_GN);
    env v;
    env_open(&v, own);
    ip_fp_cfg c;
    ip_fp_defaults(&c);
    c.points = 24;
    c.batch = 7; /* several batches, the last one short */
    c.margin = 0.5f;
    ip_fingerprint fp, back;
    ip_fp_run run;
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_generate(&v.m, &v.train, v.lo, v.hi, &c, &fp, &run, &e), 0, "%s", e.msg);
    assert_points_valid(&v.m, &fp, &run, c.margin);
    cr_assert_gt(fp.n, 0);
    double rate = -1;
    cr_assert_eq(ip_fingerprint_match(&v.m, &fp, -1, &rate, &e), 0, "%s", e.msg);
    cr_assert_eq(rate, 1.0, "the owner matches its own fingerprint at %.3f", rate);
    const char *path = tu_path(scratch, "fp.h5");
    cr_assert_eq(ip_fingerprint_save(&fp, path, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_fingerprint_load(&back, path, &e), 0, "%s", e.msg);
    size_t d = (size_t)fp.c * fp.h * fp.w;
    cr_assert_eq(back.n, fp.n);
    cr_assert_eq(back.requested, 24);
    cr_assert_eq(back.unconverged, fp.unconverged);
    cr_assert(memcmp(back.x, fp.x, fp.n * d * sizeof(float)) == 0);
    cr_assert(memcmp(back.label, fp.label, fp.n * sizeof(int32_t)) == 0);
    cr_assert(memcmp(back.source, fp.source, fp.n * sizeof(int32_t)) == 0);
    cr_assert(memcmp(back.iterations, fp.iterations, fp.n * sizeof(int32_t)) == 0);
    cr_assert_eq(back.cfg.batch, 7);
    cr_assert_float_eq(back.cfg.margin, 0.5f, 0);
    cr_assert_eq(back.cfg.branch, IP_BRANCH_PRIVATE);
    cr_assert_str_eq(back.owner_arch, "small-p-narrow");
    cr_assert_eq(back.in_std[0], v.m.cfg.in_std[0]);
    /* the match task on the files: the owner at 1, an independent model lower */
    ip_match_task mt = {.test_limit = TEST_LIMIT, .branch = -1};
    snprintf(mt.fingerprint_path, sizeof mt.fingerprint_path, "%s", path);
    snprintf(mt.suspect_path, sizeof mt.suspect_path, "%s", own);
    snprintf(mt.data, sizeof mt.data, SRC);
    ip_metrics m1, m2;
    ip_metrics_init(&m1), ip_metrics_init(&m2);
    cr_assert_eq(ip_task_match(&mt, &m1, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&m1, "match_rate"), 1.0);
    cr_assert_eq(ip_metrics_get(&m1, "points"), (double)fp.n);
    cr_assert_gt(ip_metrics_get(&m1, "suspect_acc"), 0.5);
    snprintf(mt.suspect_path, sizeof mt.suspect_path, "%s", other);
    cr_assert_eq(ip_task_match(&mt, &m2, &e), 0, "%s", e.msg);
    cr_log_info("independent model: match_rate %.3f", ip_metrics_get(&m2, "match_rate"));
    cr_assert_lt(ip_metrics_get(&m2, "match_rate"), 1.0);
    /* a checkpoint is not a fingerprint */
    ip_fingerprint bad;
    cr_assert_neq(ip_fingerprint_load(&bad, own, &e), 0);
    cr_assert(strstr(e.msg, "missing attribute /format") != NULL, "%s", e.msg);
    ip_metrics_free(&m1), ip_metrics_free(&m2);
    ip_fingerprint_free(&fp), ip_fingerprint_free(&back);
    ip_fp_run_free(&run);
    env_close(&v);
}

Test(fingerprint, match_maps_points_to_the_suspects_normalisation) {
    env v;
    env_open(&v, owner("own_norm", IP_SCHEME_BASELINE, IP_NORM_BN));
    ip_fp_cfg c;
    ip_fp_defaults(&c);
    c.points = 10;
    c.margin = 0.5f;
    ip_fingerprint fp;
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_generate(&v.m, &v.train, v.lo, v.hi, &c, &fp, NULL, &e), 0, "%s", e.msg);
    cr_assert_gt(fp.n, 0);
    /* the points moved to pixel space, as if the owner had used no
     * normalisation (mean 0, std 1): matching must map them back to what
     * this model expects (margin 0.5 >> the rounding of the round trip) */
    size_t d = (size_t)fp.c * fp.h * fp.w;
    for (size_t i = 0; i < fp.n * d; i++) fp.x[i] = fp.x[i] * fp.in_std[0] + fp.in_mean[0];
    fp.in_mean[0] = 0, fp.in_std[0] = 1;
    double rate;
    cr_assert_eq(ip_fingerprint_match(&v.m, &fp, -1, &rate, &e), 0, "%s", e.msg);
    cr_assert_eq(rate, 1.0, "match after the normalisation round trip %.3f", rate);
    ip_fingerprint_free(&fp);
    env_close(&v);
}

static const double *array_of(const ip_metrics *mt, const char *name, size_t *n) {
    for (int i = 0; i < mt->narrays; i++)
        if (strcmp(mt->arrays[i].name, name) == 0) return *n = mt->arrays[i].n, mt->arrays[i].v;
    *n = 0;
    return NULL;
}

Test(fingerprint, task_fingerprint_v2_public_branch) {
    const char *own = owner("own_v2", IP_SCHEME_V2, IP_NORM_GN);
    ip_fingerprint_task t;
    ip_fingerprint_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", own);
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.out, sizeof t.out, "%s", tu_path(scratch, "v2fp.h5"));
    t.test_limit = TEST_LIMIT;
    t.train_limit = 256;
    t.fp.points = 20;
    t.fp.margin = 0.5f;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fingerprint(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mt, "points_requested"), 20.0);
    double pts = ip_metrics_get(&mt, "points"), unc = ip_metrics_get(&mt, "unconverged");
    cr_assert_eq(pts + unc, 20.0);
    cr_assert_gt(pts, 0);
    cr_assert_gt(ip_metrics_get(&mt, "points_per_s"), 0);
    cr_assert_gt(ip_metrics_get(&mt, "owner_acc"), 0.5);
    cr_assert_leq(ip_metrics_get(&mt, "iters_mean"), ip_metrics_get(&mt, "iters_max"));
    size_t n;
    cr_assert_not_null(array_of(&mt, "iterations", &n));
    cr_assert_eq(n, 20);
    ip_fingerprint fp;
    cr_assert_eq(ip_fingerprint_load(&fp, t.out, &e), 0, "%s", e.msg);
    cr_assert_eq(fp.cfg.branch, IP_BRANCH_PUBLIC, "v2 defaults to the public branch");
    cr_assert_str_eq(fp.owner_scheme, "v2");
    /* the owner matches itself on the public branch */
    ip_match_task m = {.test_limit = TEST_LIMIT, .branch = -1};
    snprintf(m.fingerprint_path, sizeof m.fingerprint_path, "%s", t.out);
    snprintf(m.suspect_path, sizeof m.suspect_path, "%s", own);
    snprintf(m.data, sizeof m.data, SRC);
    ip_metrics mm;
    ip_metrics_init(&mm);
    cr_assert_eq(ip_task_match(&m, &mm, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mm, "match_rate"), 1.0);
    ip_metrics_free(&mm), ip_metrics_free(&mt);
    ip_fingerprint_free(&fp);
}

/* ---------------- the runner kinds ---------------- */

/* A task of kind k with every key at its default, as spec expansion does. */
static void task_defaults(rn_task *t, const rn_kind *k) {
    cr_assert_eq(rn_task_init(t, k), 0);
    t->seed = 11;
}

Test(fingerprint, kinds_run_from_text_parameters) {
    const char *own = owner("kind_owner", IP_SCHEME_BASELINE, IP_NORM_BN);
    const rn_kind *fk = rn_kind_find("fingerprint"), *mk = rn_kind_find("match");
    cr_assert_not_null(fk);
    cr_assert_not_null(mk);
    cr_assert_eq(fk->produces, RN_OUT_FINGERPRINT);
    cr_assert_eq(rn_kind_key(mk, "fingerprint")->type, IP_P_FINGERPRINT);
    cr_assert_eq(rn_kind_key(mk, "suspect")->type, IP_P_MODEL);
    rn_ctx ctx = {.data_source = SRC, .train_limit = 256, .test_limit = TEST_LIMIT};
    rn_task t;
    task_defaults(&t, fk);
    rn_task_set(&t, "model", "train:owner", 0);
    rn_task_set(&t, "model_path", own, 0);
    rn_task_set(&t, "points", "16", 0);
    rn_task_set(&t, "k", "0.5", 0);
    rn_task_set(&t, "target", "least-likely", 0);
    char fp_path[512];
    snprintf(fp_path, sizeof fp_path, "%s", tu_path(scratch, "kind_fp.h5"));
    t.checkpoint = fp_path;
    cr_assert_gt(fk->cost(&t, &ctx), 0);
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(rn_task_run(&t, &ctx, &mt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mt, "points_requested"), 16.0);
    cr_assert_gt(ip_metrics_get(&mt, "points"), 0);
    ip_metrics_free(&mt);
    ip_fingerprint fp;
    cr_assert_eq(ip_fingerprint_load(&fp, t.checkpoint, &e), 0, "%s", e.msg);
    cr_assert_eq(fp.cfg.target, IP_FP_TARGET_LEAST);
    cr_assert_float_eq(fp.cfg.margin, 0.5f, 0);
    cr_assert_eq(fp.cfg.max_iter, 1000);
    ip_fingerprint_free(&fp);
    rn_task mtask;
    task_defaults(&mtask, mk);
    rn_task_set(&mtask, "fingerprint", "fingerprint:fp<train:owner>", 0);
    rn_task_set(&mtask, "fingerprint_path", t.checkpoint, 0);
    rn_task_set(&mtask, "suspect", "train:owner", 0);
    rn_task_set(&mtask, "suspect_path", own, 0);
    cr_assert_gt(mk->cost(&mtask, &ctx), 0);
    ip_metrics_init(&mt);
    cr_assert_eq(rn_task_run(&mtask, &ctx, &mt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mt, "match_rate"), 1.0);
    ip_metrics_free(&mt);
    /* a bad path names the file */
    rn_task_set(&mtask, "fingerprint_path", "/nonexistent/fp.h5", 0);
    ip_metrics_init(&mt);
    cr_assert_neq(rn_task_run(&mtask, &ctx, &mt, &e), 0);
    cr_assert(strstr(e.msg, "/nonexistent/fp.h5"), "%s", e.msg);
    ip_metrics_free(&mt);
    rn_task_free(&t);
    rn_task_free(&mtask);
}

Test(fingerprint, spec_references_a_fingerprint) {
    static const rn_spec_opts no_data = {.skip_data_check = 1};
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "fp.yaml",
                               "data: {source: synthetic:8}\n"
                               "models: [{name: owner}, {name: indep, norm: gn}]\n"
                               "tasks:\n"
                               "  - {name: fp, kind: fingerprint, model: owner, points: 50, k: [0.5, 2]}\n"
                               "  - {name: mr, kind: match, fingerprint: fp, suspect: indep}\n",
                               &no_data, NULL, 0, &d);
    if (rc != 0) rn_diags_print(&d, stderr);
    cr_assert_eq(rc, 0);
    int nfp = 0, nmatch = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (strcmp(t->kind, "fingerprint") == 0) {
            nfp++;
            cr_expect(strstr(t->checkpoint, "fingerprints/") != NULL, "%s", t->checkpoint);
        } else if (strcmp(t->kind, "match") == 0) {
            nmatch++;
            cr_expect_eq(t->ndeps, 2);
            cr_expect(strstr(rn_task_get(t, "fingerprint_path"), "fingerprints/") != NULL);
            cr_expect_str_eq(rn_task_get(t, "branch"), "default");
        }
    }
    cr_expect_eq(nfp, 2);
    cr_expect_eq(nmatch, 2);
    rn_spec_free(&s);
    rn_diags_free(&d);
    /* a model is not a fingerprint */
    rn_diags d2 = {0};
    cr_assert_neq(rn_spec_load_text(&s, "bad.yaml",
                                    "data: {source: synthetic:8}\n"
                                    "models: [{name: owner}]\n"
                                    "tasks:\n"
                                    "  - {name: mr, kind: match, fingerprint: owner, suspect: owner}\n",
                                    &no_data, NULL, 0, &d2),
                  0);
    cr_assert_gt(d2.n, 0);
    rn_diags_free(&d2);
}
