/* Batch norm / group norm: fast kernels against the references, running
 * statistics, finite-difference gradients, accumulation and known values.
 *
 * Tolerances. Fast and reference compute the statistics in double by different
 * summation orders, then both round mean/rstd to float; the fast kernel
 * normalises in float with the float mean/rstd, the reference in double. The
 * differences are a few float ulps of values of order 1, so 1e-5 (relative to
 * max(1,|v|)) is ~100 ulps of slack while still catching any indexing or
 * formula error, which shows up at the 1e-2..1 level. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/nn/layers.h"
#include "../core/util/par.h"
#include "testutil.h"

#define BN_EPS 1e-5f
#define BN_MOM 0.1f
#define TOL_REF 1e-5

/* x with a per-channel offset and spread so every channel has different statistics. */
static float *make_input(const ip_norm_shape *s, uint64_t stream, float offset) {
    size_t m = (size_t)s->n * s->hw, len = (size_t)s->c * m;
    float *x = tu_alloc(len);
    tu_fill(x, len, -1.f, 1.f, stream);
    for (int c = 0; c < s->c; c++)
        for (size_t i = 0; i < m; i++) x[c * m + i] = x[c * m + i] * (0.5f + 0.1f * (c % 7)) + offset + 0.3f * (c % 5);
    return x;
}

static size_t tensor_len(const ip_norm_shape *s) { return (size_t)s->c * s->n * s->hw; }

/* Runs fast and reference forward from identical state and compares everything. */
static void check_forward(ip_norm_shape s, int training, float offset, double tol, uint64_t stream) {
    size_t len = tensor_len(&s), ns = ip_norm_stats(&s);
    float *x = make_input(&s, stream, offset);
    float *y1 = tu_alloc(len), *y2 = tu_alloc(len);
    float *m1 = tu_alloc(ns), *r1 = tu_alloc(ns), *m2 = tu_alloc(ns), *r2 = tu_alloc(ns);
    float *rm1 = tu_alloc(s.c), *rv1 = tu_alloc(s.c), *rm2 = tu_alloc(s.c), *rv2 = tu_alloc(s.c);
    float *rm0 = tu_alloc(s.c), *rv0 = tu_alloc(s.c);
    tu_fill(rm0, s.c, -1.f, 1.f, stream + 1);
    tu_fill(rv0, s.c, 0.5f, 2.f, stream + 2);
    memcpy(rm1, rm0, s.c * sizeof(float)), memcpy(rm2, rm0, s.c * sizeof(float));
    memcpy(rv1, rv0, s.c * sizeof(float)), memcpy(rv2, rv0, s.c * sizeof(float));

    norm_forward(y1, m1, r1, x, &s, training, rm1, rv1, BN_MOM, BN_EPS);
    norm_forward_ref(y2, m2, r2, x, &s, training, rm2, rv2, BN_MOM, BN_EPS);

    double dy = tu_max_rel_diff(y1, y2, len);
    double dm = tu_max_rel_diff(m1, m2, ns), dr = tu_max_rel_diff(r1, r2, ns);
    cr_assert(dy < tol, "xhat differs: %g (C=%d N=%d HW=%d G=%d train=%d)", dy, s.c, s.n, s.hw, s.groups, training);
    cr_assert(dm < TOL_REF, "mean differs: %g", dm);
    cr_assert(dr < TOL_REF, "rstd differs: %g", dr);
    cr_assert(tu_max_rel_diff(rm1, rm2, s.c) < TOL_REF, "running_mean differs");
    cr_assert(tu_max_rel_diff(rv1, rv2, s.c) < TOL_REF, "running_var differs");
    if (s.groups > 0 || !training) {
        /* group norm and eval batch norm must leave the running statistics alone */
        cr_assert(memcmp(rm1, rm0, s.c * sizeof(float)) == 0, "running_mean modified");
        cr_assert(memcmp(rv1, rv0, s.c * sizeof(float)) == 0, "running_var modified");
    } else {
        cr_assert(tu_max_rel_diff(rm1, rm0, s.c) > 1e-4, "running_mean not updated");
    }
    if (s.groups == 0 && !training)
        for (int c = 0; c < s.c; c++) {
            cr_assert(m1[c] == rm0[c], "eval mean must be running_mean");
            cr_assert(fabs(r1[c] - 1.0 / sqrt((double)rv0[c] + BN_EPS)) < 1e-6 * r1[c], "eval rstd");
        }
    free(x), free(y1), free(y2), free(m1), free(r1), free(m2), free(r2);
    free(rm0), free(rv0), free(rm1), free(rv1), free(rm2), free(rv2);
}

Test(norm, stats_count) {
    ip_norm_shape bn = {32, 3, 35, 0}, gn = {32, 3, 35, 4};
    cr_assert_eq(ip_norm_stats(&bn), 32);
    cr_assert_eq(ip_norm_stats(&gn), 12);
}

Test(norm, bn_train_matches_ref) {
    check_forward((ip_norm_shape){32, 3, 5 * 7, 0}, 1, 0.f, TOL_REF, 10);
    check_forward((ip_norm_shape){8, 16, 31 * 31, 0}, 1, 0.f, TOL_REF, 11);
    check_forward((ip_norm_shape){5, 1, 1, 0}, 1, 0.f, TOL_REF, 12); /* M == 1: zero variance */
}

Test(norm, bn_eval_matches_ref) {
    check_forward((ip_norm_shape){32, 3, 5 * 7, 0}, 0, 0.f, TOL_REF, 20);
    check_forward((ip_norm_shape){8, 16, 31 * 31, 0}, 0, 0.f, TOL_REF, 21);
}

Test(norm, gn_matches_ref) {
    for (int training = 0; training < 2; training++) {
        check_forward((ip_norm_shape){32, 3, 5 * 7, 2}, training, 0.f, TOL_REF, 30); /* G = C/16 */
        check_forward((ip_norm_shape){32, 3, 5 * 7, 8}, training, 0.f, TOL_REF, 31);
        check_forward((ip_norm_shape){32, 3, 5 * 7, 32}, training, 0.f, TOL_REF, 32); /* instance norm */
        check_forward((ip_norm_shape){64, 8, 17 * 17, 4}, training, 0.f, TOL_REF, 33);
        check_forward((ip_norm_shape){16, 4, 1, 1}, training, 0.f, TOL_REF, 34); /* layer norm over 1x1 */
    }
}

/* With an offset of 1000 and spread ~1, sum-of-squares in float would lose all
 * digits of the variance. rstd must still agree to 1e-5; xhat only to 1e-3,
 * because both sides round the mean (~1000) to float, an absolute error of up to
 * 3e-5 that rstd (~3) amplifies: the same rounding PyTorch's float mean has. */
Test(norm, large_offset_is_stable) {
    check_forward((ip_norm_shape){8, 16, 31 * 31, 0}, 1, 1000.f, 1e-3, 40);
    check_forward((ip_norm_shape){32, 4, 8 * 8, 2}, 1, 1000.f, 1e-3, 41);
}

/* Running statistics by hand: row [1,2,3,4]: mean 2.5, biased var 1.25, unbiased 5/3. */
Test(norm, running_stats_known_values) {
    ip_norm_shape s = {2, 2, 2, 0};
    float x[8] = {1, 2, 3, 4, 5, 5, 5, 5}, y[8], mean[2], rstd[2];
    float rm[2] = {0, 1}, rv[2] = {1, 2};
    norm_forward(y, mean, rstd, x, &s, 1, rm, rv, 0.1f, 1e-5f);
    cr_assert_float_eq(mean[0], 2.5f, 1e-6);
    cr_assert_float_eq(rstd[0], 1.0 / sqrt(1.25 + 1e-5), 1e-6);
    cr_assert_float_eq(rm[0], 0.25f, 1e-6);
    cr_assert_float_eq(rv[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6);
    cr_assert_float_eq(rm[1], 0.9 + 0.5, 1e-6);
    cr_assert_float_eq(rv[1], 1.8f, 1e-6); /* constant row: variance 0 */
    cr_assert_float_eq(y[0], -1.5 / sqrt(1.25 + 1e-5), 1e-6);

    /* M == 1: the unbiased variance is undefined, the biased one (0) is used */
    ip_norm_shape one = {1, 1, 1, 0};
    float x1 = 3.f, y1, m1, r1, rm1 = 0.f, rv1 = 1.f;
    norm_forward(&y1, &m1, &r1, &x1, &one, 1, &rm1, &rv1, 0.1f, 1e-5f);
    cr_assert_float_eq(rv1, 0.9f, 1e-7);
    cr_assert_float_eq(rm1, 0.3f, 1e-7);
    cr_assert_eq(y1, 0.f);
}

Test(norm, constant_gives_zero) {
    ip_norm_shape shapes[2] = {{6, 3, 10, 0}, {6, 3, 10, 3}};
    for (int k = 0; k < 2; k++) {
        ip_norm_shape s = shapes[k];
        size_t len = tensor_len(&s), ns = ip_norm_stats(&s);
        float *x = tu_alloc(len), *y = tu_alloc(len), *m = tu_alloc(ns), *r = tu_alloc(ns);
        for (size_t i = 0; i < len; i++) x[i] = 7.25f;
        norm_forward(y, m, r, x, &s, 1, NULL, NULL, BN_MOM, BN_EPS);
        for (size_t i = 0; i < len; i++) cr_assert_eq(y[i], 0.f, "xhat[%zu] = %g", i, y[i]);
        for (size_t i = 0; i < ns; i++) {
            cr_assert_eq(m[i], 7.25f);
            cr_assert_float_eq(r[i], 1.0 / sqrt(BN_EPS), 1e-2); /* 316.2 */
        }
        free(x), free(y), free(m), free(r);
    }
}

/* Without running statistics eval batch norm falls back to batch statistics. */
Test(norm, eval_without_running_uses_batch) {
    ip_norm_shape s = {4, 3, 9, 0};
    size_t len = tensor_len(&s);
    float *x = make_input(&s, 45, 0.f), *y1 = tu_alloc(len), *y2 = tu_alloc(len);
    float m1[4], r1[4], m2[4], r2[4];
    norm_forward(y1, m1, r1, x, &s, 0, NULL, NULL, BN_MOM, BN_EPS);
    norm_forward(y2, m2, r2, x, &s, 1, NULL, NULL, BN_MOM, BN_EPS);
    cr_assert(memcmp(y1, y2, len * sizeof(float)) == 0);
    free(x), free(y1), free(y2);
}

/* ---------------- backward ---------------- */

static void check_backward(ip_norm_shape s, int training, uint64_t stream) {
    size_t len = tensor_len(&s), ns = ip_norm_stats(&s);
    float *x = make_input(&s, stream, 0.f), *y = tu_alloc(len), *m = tu_alloc(ns), *r = tu_alloc(ns);
    float *rm = tu_alloc(s.c), *rv = tu_alloc(s.c), *g = tu_alloc(len);
    float *dx1 = tu_alloc(len), *dx2 = tu_alloc(len);
    tu_fill(rm, s.c, -0.5f, 0.5f, stream + 1);
    tu_fill(rv, s.c, 0.5f, 2.f, stream + 2);
    norm_forward(y, m, r, x, &s, training, rm, rv, BN_MOM, BN_EPS);
    tu_fill(g, len, -1.f, 1.f, stream + 3);
    tu_fill(dx1, len, -1.f, 1.f, stream + 4); /* accumulation target: must be added to, not overwritten */
    memcpy(dx2, dx1, len * sizeof(float));
    norm_backward(dx1, g, y, r, &s, training);
    norm_backward_ref(dx2, g, y, r, &s, training);
    double d = tu_max_rel_diff(dx1, dx2, len);
    cr_assert(d < TOL_REF, "dx differs: %g (C=%d N=%d HW=%d G=%d train=%d)", d, s.c, s.n, s.hw, s.groups, training);

    /* accumulation: twice from zero = 2 x once */
    memset(dx1, 0, len * sizeof(float));
    norm_backward(dx1, g, y, r, &s, training);
    memcpy(dx2, dx1, len * sizeof(float));
    norm_backward(dx1, g, y, r, &s, training);
    for (size_t i = 0; i < len; i++)
        cr_assert(fabsf(dx1[i] - 2.f * dx2[i]) <= 1e-6f * fmaxf(1.f, fabsf(dx1[i])), "not accumulated at %zu", i);
    norm_backward(NULL, g, y, r, &s, training); /* NULL dx: nothing to do, must not crash */
    free(x), free(y), free(m), free(r), free(rm), free(rv), free(g), free(dx1), free(dx2);
}

Test(norm, backward_matches_ref) {
    check_backward((ip_norm_shape){32, 3, 5 * 7, 0}, 1, 50);
    check_backward((ip_norm_shape){32, 3, 5 * 7, 0}, 0, 51);
    check_backward((ip_norm_shape){32, 3, 5 * 7, 2}, 1, 52);
    check_backward((ip_norm_shape){32, 3, 5 * 7, 8}, 0, 53); /* GN ignores training */
    check_backward((ip_norm_shape){8, 16, 31 * 31, 0}, 1, 54);
    check_backward((ip_norm_shape){8, 16, 31 * 31, 0}, 0, 55);
    check_backward((ip_norm_shape){64, 8, 17 * 17, 4}, 1, 56);
}

/* GN backward does not depend on the training flag. */
Test(norm, gn_backward_ignores_training) {
    ip_norm_shape s = {16, 3, 12, 4};
    size_t len = tensor_len(&s), ns = ip_norm_stats(&s);
    float *x = make_input(&s, 60, 0.f), *y = tu_alloc(len), *m = tu_alloc(ns), *r = tu_alloc(ns);
    float *g = tu_alloc(len), *d0 = tu_alloc(len), *d1 = tu_alloc(len);
    norm_forward(y, m, r, x, &s, 1, NULL, NULL, BN_MOM, BN_EPS);
    tu_fill(g, len, -1.f, 1.f, 61);
    norm_backward(d0, g, y, r, &s, 0);
    norm_backward(d1, g, y, r, &s, 1);
    cr_assert(memcmp(d0, d1, len * sizeof(float)) == 0);
    free(x), free(y), free(m), free(r), free(g), free(d0), free(d1);
}

/* ---------------- finite differences ----------------
 * loss = sum(xhat * r) for fixed random r, so dL/dxhat = r.
 * eps = 1e-2 on inputs of spread ~0.6: the float rounding of the loss (a sum of
 * <= 320 terms of order 1, ~1e-6 absolute) divided by 2 eps gives <= 1e-4
 * error in the numerical derivative, and the truncation error of central
 * differences (eps^2 times a third derivative of order 1/(M sigma^3)) is below
 * that. Gradients are of order rstd ~ 1.5, so abs_floor 0.1 guards only the
 * near-zero entries, and tolerance 1e-2 is a 100x margin that still fails on
 * any missing term of the backward formula (those are O(1/M) ~ 5e-2 or more). */
typedef struct {
    ip_norm_shape s;
    int training;
    float *x, *y, *m, *r, *rm, *rv, *w;
} norm_ctx;

static double norm_loss(void *p) {
    norm_ctx *c = p;
    /* running stats passed only in eval mode (read-only there), so the loss has no side effects */
    norm_forward(c->y, c->m, c->r, c->x, &c->s, c->training, c->training ? NULL : c->rm,
                 c->training ? NULL : c->rv, BN_MOM, BN_EPS);
    return tu_dot(c->y, c->w, tensor_len(&c->s));
}

static void gradcheck_norm(ip_norm_shape s, int training, uint64_t stream) {
    size_t len = tensor_len(&s), ns = ip_norm_stats(&s);
    norm_ctx c = {s, training, make_input(&s, stream, 0.f), tu_alloc(len), tu_alloc(ns), tu_alloc(ns),
                  tu_alloc(s.c), tu_alloc(s.c), tu_alloc(len)};
    tu_fill(c.rm, s.c, -0.5f, 0.5f, stream + 1);
    tu_fill(c.rv, s.c, 0.3f, 1.f, stream + 2);
    tu_fill(c.w, len, -1.f, 1.f, stream + 3);
    float *dx = tu_alloc(len);
    norm_loss(&c);
    norm_backward(dx, c.w, c.y, c.r, &s, training);
    double err = tu_grad_check(c.x, dx, len, norm_loss, &c, 1e-2f, 200, 0.1);
    cr_assert(err < 1e-2, "grad check: %g (C=%d N=%d HW=%d G=%d train=%d)", err, s.c, s.n, s.hw, s.groups,
              training);
    free(c.x), free(c.y), free(c.m), free(c.r), free(c.rm), free(c.rv), free(c.w), free(dx);
}

Test(norm, gradcheck_bn_train) { gradcheck_norm((ip_norm_shape){3, 3, 7, 0}, 1, 70); /* M = 21: block + tail */ }
Test(norm, gradcheck_bn_eval) { gradcheck_norm((ip_norm_shape){3, 3, 7, 0}, 0, 71); }
Test(norm, gradcheck_gn) {
    gradcheck_norm((ip_norm_shape){8, 2, 20, 2}, 1, 72);
    gradcheck_norm((ip_norm_shape){8, 2, 6, 4}, 0, 73);
}

/* ---------------- fused batch or group norm -> affine [-> ReLU] [-> max-pool] ----------------
 * Forward against the unfused fast kernels (same float operations: equal up to
 * an ulp, the same pool argmax) and the references; backward against the
 * references composed (maxpool2_backward -> affine_backward_ref ->
 * norm_backward_ref), in write and accumulate mode. Shapes cover even and odd
 * H/W, rows wider than one 32-column chunk, narrow rows (7 -> 3), and group
 * norm with one, several and one-channel groups. */
typedef struct {
    int c, n, h, w, relu, pool, groups;
} tail_case;

static void check_tail(tail_case tc, int training, uint64_t stream) {
    ip_norm_tail_shape ts = {tc.c, tc.n, tc.h, tc.w, tc.relu, tc.pool, tc.groups};
    ip_norm_shape ns = {tc.c, tc.n, tc.h * tc.w, tc.groups};
    size_t len = tensor_len(&ns), m = (size_t)tc.n * tc.h * tc.w, st = ip_norm_stats(&ns);
    double *work = calloc(norm_tail_work_doubles(&ts) + 1, sizeof(double));
    size_t oh = (size_t)tc.h / 2, ow = (size_t)tc.w / 2, plen = (size_t)tc.c * tc.n * oh * ow;
    float *x = make_input(&ns, stream, 0.3f), *gam = tu_alloc(tc.c), *bet = tu_alloc(tc.c);
    tu_fill(gam, tc.c, -1.5f, 1.5f, stream + 1);
    tu_fill(bet, tc.c, -0.5f, 0.5f, stream + 2);
    float *rm0 = tu_alloc(tc.c), *rv0 = tu_alloc(tc.c), *rm1 = tu_alloc(tc.c), *rv1 = tu_alloc(tc.c);
    float *rm2 = tu_alloc(tc.c), *rv2 = tu_alloc(tc.c);
    tu_fill(rm0, tc.c, -0.5f, 0.5f, stream + 3);
    tu_fill(rv0, tc.c, 0.5f, 2.f, stream + 4);
    memcpy(rm1, rm0, tc.c * 4), memcpy(rv1, rv0, tc.c * 4), memcpy(rm2, rm0, tc.c * 4), memcpy(rv2, rv0, tc.c * 4);
    float *y1 = tu_alloc(len), *p1 = tu_alloc(plen), *m1 = tu_alloc(st), *r1 = tu_alloc(st);
    uint32_t *a1 = calloc(plen + 1, 4), *a2 = calloc(plen + 1, 4);
    norm_tail_forward(y1, p1, a1, m1, r1, x, gam, bet, &ts, training, rm1, rv1, BN_MOM, BN_EPS);

    /* unfused fast path */
    float *xh = tu_alloc(len), *y2 = tu_alloc(len), *p2 = tu_alloc(plen), *m2 = tu_alloc(st), *r2 = tu_alloc(st);
    norm_forward(xh, m2, r2, x, &ns, training, rm2, rv2, BN_MOM, BN_EPS);
    affine_forward(y2, xh, gam, bet, tc.c, m, tc.relu);
    cr_assert(tu_max_rel_diff(y1, y2, len) < 1e-6, "y differs from the unfused kernels");
    cr_assert(memcmp(m1, m2, st * 4) == 0 && memcmp(r1, r2, st * 4) == 0, "statistics differ");
    cr_assert(memcmp(rm1, rm2, tc.c * 4) == 0 && memcmp(rv1, rv2, tc.c * 4) == 0, "running statistics differ");
    if (tc.pool) {
        maxpool2_forward(p2, a2, y1, (size_t)tc.c * tc.n, tc.h, tc.w);
        cr_assert(memcmp(p1, p2, plen * 4) == 0, "pooled values differ");
        cr_assert(memcmp(a1, a2, plen * 4) == 0, "argmax differs");
        /* without y (the model's case: nothing reads it), the same bits; running stats from rm0 again */
        float *p3 = tu_alloc(plen), *m3 = tu_alloc(st), *r3 = tu_alloc(st), *rm3 = tu_alloc(tc.c),
              *rv3 = tu_alloc(tc.c);
        uint32_t *a3 = calloc(plen + 1, 4);
        memcpy(rm3, rm0, tc.c * 4), memcpy(rv3, rv0, tc.c * 4);
        norm_tail_forward(NULL, p3, a3, m3, r3, x, gam, bet, &ts, training, rm3, rv3, BN_MOM, BN_EPS);
        cr_assert(memcmp(p1, p3, plen * 4) == 0 && memcmp(a1, a3, plen * 4) == 0, "pooling without y differs");
        cr_assert(memcmp(m1, m3, st * 4) == 0 && memcmp(rm1, rm3, tc.c * 4) == 0, "statistics without y differ");
        free(p3), free(m3), free(r3), free(rm3), free(rv3), free(a3);
    }
    /* references */
    float *xr = tu_alloc(len), *yr = tu_alloc(len), *pr = tu_alloc(plen), *mr = tu_alloc(st), *rr = tu_alloc(st);
    memcpy(rm2, rm0, tc.c * 4), memcpy(rv2, rv0, tc.c * 4);
    norm_forward_ref(xr, mr, rr, x, &ns, training, rm2, rv2, BN_MOM, BN_EPS);
    affine_forward_ref(yr, xr, gam, bet, tc.c, m, tc.relu);
    cr_assert(tu_max_rel_diff(y1, yr, len) < 1e-5, "y differs from the reference");
    if (tc.pool) {
        maxpool2_forward_ref(pr, yr, (size_t)tc.c * tc.n, tc.h, tc.w);
        cr_assert(tu_max_rel_diff(p1, pr, plen) < 1e-5, "pooled differs from the reference");
    }

    /* backward */
    size_t dlen = tc.pool ? plen : len;
    float *dout = tu_alloc(dlen), *dy = tu_alloc(len), *dxh = tu_alloc(len);
    tu_fill(dout, dlen, -1.f, 1.f, stream + 5);
    if (tc.pool) maxpool2_backward(dy, dout, a1, (size_t)tc.c * tc.n, tc.h, tc.w);
    else memcpy(dy, dout, len * 4);
    float *dg1 = tu_alloc(tc.c), *db1 = tu_alloc(tc.c), *dg2 = tu_alloc(tc.c), *db2 = tu_alloc(tc.c);
    tu_fill(dg1, tc.c, -1.f, 1.f, stream + 6), tu_fill(db1, tc.c, -1.f, 1.f, stream + 7);
    memcpy(dg2, dg1, tc.c * 4), memcpy(db2, db1, tc.c * 4);
    float *dx1 = tu_alloc(len), *dx2 = tu_alloc(len), *dx3 = tu_alloc(len);
    tu_fill(dx1, len, -1.f, 1.f, stream + 8);
    memcpy(dx2, dx1, len * 4);
    affine_backward_ref(dxh, dg2, db2, dy, y1, xh, gam, tc.c, m, tc.relu);
    norm_backward_ref(dx2, dxh, xh, r1, &ns, training);
    norm_tail_backward(dx1, 1, dg1, db1, dout, tc.pool ? a1 : NULL, x, m1, r1, gam, bet, &ts, training, work);
    cr_assert(tu_max_rel_diff(dx1, dx2, len) < 1e-5, "dx (accumulated) differs: %g", tu_max_rel_diff(dx1, dx2, len));
    cr_assert(tu_max_rel_diff(dg1, dg2, tc.c) < 1e-5, "dgamma differs");
    cr_assert(tu_max_rel_diff(db1, db2, tc.c) < 1e-5, "dbeta differs");
    /* write mode = accumulate onto zeros; NULL parameter gradients */
    memset(dx2, 0, len * 4);
    for (size_t i = 0; i < len; i++) dx3[i] = NAN;
    norm_tail_backward(dx3, 0, NULL, NULL, dout, tc.pool ? a1 : NULL, x, m1, r1, gam, bet, &ts, training, work);
    norm_tail_backward(dx2, 1, NULL, NULL, dout, tc.pool ? a1 : NULL, x, m1, r1, gam, bet, &ts, training, work);
    for (size_t i = 0; i < len; i++) /* == : 0 + -0 is +0 */
        cr_assert(dx2[i] == dx3[i], "write mode differs from accumulating onto zeros at %zu", i);
    norm_tail_backward(NULL, 0, dg1, NULL, dout, tc.pool ? a1 : NULL, x, m1, r1, gam, bet, &ts, training, work);

    free(x), free(gam), free(bet), free(rm0), free(rv0), free(rm1), free(rv1), free(rm2), free(rv2);
    free(y1), free(p1), free(m1), free(r1), free(a1), free(a2), free(xh), free(y2), free(p2), free(m2), free(r2);
    free(xr), free(yr), free(pr), free(mr), free(rr), free(dout), free(dy), free(dxh);
    free(dg1), free(db1), free(dg2), free(db2), free(dx1), free(dx2), free(dx3), free(work);
}

Test(bn_tail, pooled_matches_unfused_and_ref) {
    check_tail((tail_case){5, 3, 28, 28, 1, 1, 0}, 1, 80);
    check_tail((tail_case){5, 3, 28, 28, 1, 1, 0}, 0, 81);
    check_tail((tail_case){4, 2, 7, 7, 1, 1, 0}, 1, 82);   /* odd: last row and column dropped by the pool */
    check_tail((tail_case){3, 2, 9, 35, 1, 1, 0}, 1, 83);  /* two column chunks, odd width */
    check_tail((tail_case){3, 2, 6, 66, 0, 1, 0}, 1, 84);  /* no ReLU, three chunks */
    check_tail((tail_case){3, 3, 2, 2, 1, 1, 0}, 1, 85);
}

Test(bn_tail, dense_matches_unfused_and_ref) {
    check_tail((tail_case){6, 3, 5, 7, 1, 0, 0}, 1, 90);
    check_tail((tail_case){6, 3, 5, 7, 0, 0, 0}, 1, 91);
    check_tail((tail_case){6, 3, 5, 7, 1, 0, 0}, 0, 92);
    check_tail((tail_case){2, 4, 16, 16, 1, 0, 0}, 1, 93);
}

/* Group norm: statistics per (sample, group), gradients through the group's channels; running
 * statistics never read nor written, the same in eval mode. */
Test(gn_tail, pooled_matches_unfused_and_ref) {
    check_tail((tail_case){8, 3, 28, 28, 1, 1, 2}, 1, 100);
    check_tail((tail_case){8, 3, 28, 28, 1, 1, 2}, 0, 101);
    check_tail((tail_case){6, 2, 7, 7, 1, 1, 3}, 1, 102);   /* odd: last row and column dropped by the pool */
    check_tail((tail_case){4, 2, 9, 35, 1, 1, 1}, 1, 103);  /* one group, two column chunks */
    check_tail((tail_case){3, 2, 6, 66, 0, 1, 3}, 1, 104);  /* one channel per group, no ReLU */
}

Test(gn_tail, dense_matches_unfused_and_ref) {
    check_tail((tail_case){6, 3, 5, 7, 1, 0, 2}, 1, 110);
    check_tail((tail_case){6, 3, 5, 7, 0, 0, 3}, 0, 111);
    check_tail((tail_case){32, 4, 4, 4, 1, 0, 2}, 1, 112); /* resnet18-p's last stage: 16 values a plane */
}

/* NaN propagates through ReLU and pool as in the unfused kernels. */
Test(bn_tail, nan_and_ties) {
    ip_norm_tail_shape ts = {1, 1, 2, 4, 1, 1, 0};
    float x[8] = {1, 1, 1, 1, -5, -5, -5, -5}, g = -1.f, b = 0.f, y[8], p[2], mean, rstd;
    uint32_t am[2];
    /* gamma < 0 makes the large values negative: ReLU zeroes them, window 0 is all zero... */
    norm_tail_forward(y, p, am, &mean, &rstd, x, &g, &b, &ts, 1, NULL, NULL, BN_MOM, BN_EPS);
    cr_assert(am[0] == 4 && am[1] == 6, "argmax %u %u", am[0], am[1]); /* lower row wins, first max of ties */
    cr_assert(p[0] > 0 && p[0] == p[1]);
    x[1] = NAN;
    norm_tail_forward(y, p, am, &mean, &rstd, x, &g, &b, &ts, 1, NULL, NULL, BN_MOM, BN_EPS);
    cr_assert(isnan(p[0]) && isnan(p[1]), "NaN statistics propagate");
}

/* The parallel passes give the same bits for any thread count (one channel or
 * (sample, group) per work item): 1 vs 2 vs 3 threads, bit for bit. */

static void run_norm_ops(int threads, ip_norm_shape ns, int relu, int pool, const float *x, float *out, size_t per) {
    ip_par_set_threads(threads);
    size_t len = tensor_len(&ns), st = ip_norm_stats(&ns);
    float *o = out;
    float *rm = o, *rv = o + ns.c, *mean = o + 2 * ns.c, *rstd = mean + st;
    o = rstd + st;
    for (int c = 0; c < ns.c; c++) rm[c] = 0.1f * c, rv[c] = 1.f + 0.1f * c;
    float *xh = o, *dx = o + len;
    o += 2 * len;
    norm_forward(xh, mean, rstd, x, &ns, 1, rm, rv, BN_MOM, BN_EPS);
    norm_backward(dx, x, xh, rstd, &ns, 1); /* x stands in for a gradient */
    ip_norm_tail_shape ts = {ns.c, ns.n, 12, ns.hw / 12, relu, pool, ns.groups};
    float *g = o, *b = o + ns.c, *y = o + 2 * ns.c, *p = y + len, *dg = p + per, *db = dg + ns.c, *dx2 = db + ns.c;
    uint32_t *am = (uint32_t *)(dx2 + len);
    double *work = calloc(norm_tail_work_doubles(&ts) + 1, sizeof(double));
    for (int c = 0; c < ns.c; c++) g[c] = 0.5f - 0.1f * c, b[c] = 0.05f * c;
    norm_tail_forward(y, p, am, mean, rstd, x, g, b, &ts, 1, rm, rv, BN_MOM, BN_EPS);
    norm_tail_backward(dx2, 0, dg, db, pool ? p : y, pool ? am : NULL, x, mean, rstd, g, b, &ts, 1, work);
    free(work);
    ip_par_set_threads(1);
}

Test(parallel, norm_and_tail_bits_do_not_depend_on_threads) {
    const ip_norm_shape shapes[] = {{24, 16, 12 * 20, 0}, {32, 8, 12 * 14, 4}};
    for (int k = 0; k < 2; k++)
        for (int pool = 0; pool < 2; pool++) {
            ip_norm_shape ns = shapes[k];
            size_t len = tensor_len(&ns), per = len / 4, total = 10 * len + 64 * (size_t)ns.c + 4096;
            float *x = make_input(&ns, 200 + k, 0.f), *r1 = tu_alloc(total), *r2 = tu_alloc(total), *r3 = tu_alloc(total);
            run_norm_ops(1, ns, 1, pool, x, r1, per);
            run_norm_ops(2, ns, 1, pool, x, r2, per);
            run_norm_ops(3, ns, 1, pool, x, r3, per);
            cr_assert(memcmp(r1, r2, total * sizeof(float)) == 0, "2 threads differ (shape %d pool %d)", k, pool);
            cr_assert(memcmp(r1, r3, total * sizeof(float)) == 0, "3 threads differ (shape %d pool %d)", k, pool);
            free(x), free(r1), free(r2), free(r3);
        }
}
