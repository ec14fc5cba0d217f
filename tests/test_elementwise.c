/* Affine, add, ReLU, max-pool, global average pool, flatten.
 *
 * Fast vs reference: the same float operations in the same order per element
 * (C11 mode: no FMA contraction), so forward results agree to rounding; the
 * reductions (dgamma, dbeta) are summed in double by both in different orders,
 * then rounded to float: 1e-6 relative covers that.
 *
 * Finite differences: these layers are piecewise linear, so central
 * differences are exact up to float rounding of the loss sum(out * r), which
 * is a sum of <= ~2000 terms of order 1 (rounding ~1e-5 absolute at worst);
 * with eps = 1e-2 that is <= 1e-3 of a gradient of order 1. Tolerance 1e-2
 * with abs_floor 0.1 (gradients here are O(0.1..1)). ReLU kinks and pooling
 * ties are kept at least 0.1 > 2 eps |dinput| away, so a perturbation never
 * crosses them. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/nn/layers.h"
#include "../core/util/par.h"
#include "testutil.h"

#define FD_EPS 1e-2f
#define FD_TOL 1e-2
#define FD_FLOOR 0.1

/* ---------------- affine ---------------- */

typedef struct {
    int c, relu;
    size_t m;
    float *x, *g, *b, *out, *w;
} aff_ctx;

static double aff_loss(void *p) {
    aff_ctx *a = p;
    affine_forward(a->out, a->x, a->g, a->b, a->c, a->m, a->relu);
    return tu_dot(a->out, a->w, (size_t)a->c * a->m);
}

/* gamma of magnitude [0.5, 1.5) with random sign, beta in [-0.5, 0.5), x in [-2, 2),
 * then x moved so that |gamma x + beta| >= 0.15 everywhere: perturbing x, gamma
 * (|x| < 2) or beta by eps = 1e-2 moves the pre-activation by at most 0.03. */
static aff_ctx aff_make(int c, size_t m, int relu, uint64_t stream) {
    aff_ctx a = {c, relu, m, tu_alloc(c * m), tu_alloc(c), tu_alloc(c), tu_alloc(c * m), tu_alloc(c * m)};
    tu_fill(a.x, c * m, -2.f, 2.f, stream);
    tu_fill(a.g, c, 0.5f, 1.5f, stream + 1);
    for (int i = 0; i < c; i++)
        if (i % 2) a.g[i] = -a.g[i];
    tu_fill(a.b, c, -0.5f, 0.5f, stream + 2);
    tu_fill(a.w, c * m, -1.f, 1.f, stream + 3);
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < m; i++) {
            float *xv = &a.x[ch * m + i];
            float pre = a.g[ch] * *xv + a.b[ch];
            if (fabsf(pre) < 0.15f) *xv = (copysignf(0.2f, pre) - a.b[ch]) / a.g[ch];
        }
    return a;
}

static void aff_free(aff_ctx *a) { free(a->x), free(a->g), free(a->b), free(a->out), free(a->w); }

Test(affine, forward_matches_ref_and_in_place) {
    for (int relu = 0; relu < 2; relu++) {
        size_t m = 3 * 35 + 1; /* not a multiple of the block width */
        aff_ctx a = aff_make(7, m, relu, 100 + relu);
        float *ref = tu_alloc(7 * m), *inpl = tu_alloc(7 * m);
        affine_forward(a.out, a.x, a.g, a.b, 7, m, relu);
        affine_forward_ref(ref, a.x, a.g, a.b, 7, m, relu);
        cr_assert(tu_max_rel_diff(a.out, ref, 7 * m) < 1e-6);
        memcpy(inpl, a.x, 7 * m * sizeof(float));
        affine_forward(inpl, inpl, a.g, a.b, 7, m, relu);
        cr_assert(memcmp(inpl, a.out, 7 * m * sizeof(float)) == 0, "out == x must work");
        if (relu)
            for (size_t i = 0; i < 7 * m; i++) cr_assert(a.out[i] >= 0.f);
        free(ref), free(inpl);
        aff_free(&a);
    }
}

Test(affine, known_values) {
    float x[4] = {1, -2, 3, 0.5f}, g[2] = {2, -1}, b[2] = {0.5f, 1}, out[4];
    affine_forward(out, x, g, b, 2, 2, 0);
    float want[4] = {2.5f, -3.5f, -2.f, 0.5f};
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], want[i]);
    affine_forward(out, x, g, b, 2, 2, 1);
    float want_r[4] = {2.5f, 0.f, 0.f, 0.5f};
    for (int i = 0; i < 4; i++) cr_assert_eq(out[i], want_r[i]);
}

Test(affine, backward_matches_ref) {
    int c = 5;
    size_t m = 4 * 33 + 3;
    for (int relu = 0; relu < 2; relu++)
        for (int mask = 0; mask < 8; mask++) { /* every combination of NULL dx / dgamma / dbeta */
            aff_ctx a = aff_make(c, m, relu, 110 + relu);
            affine_forward(a.out, a.x, a.g, a.b, c, m, relu);
            float *dx[2] = {tu_alloc(c * m), tu_alloc(c * m)}, *dg[2] = {tu_alloc(c), tu_alloc(c)},
                  *db[2] = {tu_alloc(c), tu_alloc(c)};
            for (int k = 0; k < 2; k++) { /* non-zero start: both must accumulate */
                tu_fill(dx[k], c * m, -1.f, 1.f, 120);
                tu_fill(dg[k], c, -1.f, 1.f, 121);
                tu_fill(db[k], c, -1.f, 1.f, 122);
            }
            affine_backward(mask & 1 ? dx[0] : NULL, mask & 2 ? dg[0] : NULL, mask & 4 ? db[0] : NULL, a.w, a.out,
                            a.x, a.g, c, m, relu);
            affine_backward_ref(mask & 1 ? dx[1] : NULL, mask & 2 ? dg[1] : NULL, mask & 4 ? db[1] : NULL, a.w,
                                a.out, a.x, a.g, c, m, relu);
            cr_assert(tu_max_rel_diff(dx[0], dx[1], c * m) < 1e-6, "dx relu=%d mask=%d", relu, mask);
            cr_assert(tu_max_rel_diff(dg[0], dg[1], c) < 1e-6, "dgamma relu=%d mask=%d", relu, mask);
            cr_assert(tu_max_rel_diff(db[0], db[1], c) < 1e-6, "dbeta relu=%d mask=%d", relu, mask);
            for (int k = 0; k < 2; k++) free(dx[k]), free(dg[k]), free(db[k]);
            aff_free(&a);
        }
}

Test(affine, backward_accumulates) {
    int c = 3;
    size_t m = 50;
    aff_ctx a = aff_make(c, m, 1, 130);
    affine_forward(a.out, a.x, a.g, a.b, c, m, 1);
    float *dx = tu_alloc(c * m), *dg = tu_alloc(c), *db = tu_alloc(c);
    affine_backward(dx, dg, db, a.w, a.out, a.x, a.g, c, m, 1);
    float *dx1 = tu_alloc(c * m), g1[3], b1[3];
    memcpy(dx1, dx, c * m * sizeof(float)), memcpy(g1, dg, sizeof g1), memcpy(b1, db, sizeof b1);
    affine_backward(dx, dg, db, a.w, a.out, a.x, a.g, c, m, 1);
    for (size_t i = 0; i < c * m; i++) cr_assert_float_eq(dx[i], 2 * dx1[i], 1e-6);
    for (int i = 0; i < c; i++) {
        cr_assert_float_eq(dg[i], 2 * g1[i], 1e-5);
        cr_assert_float_eq(db[i], 2 * b1[i], 1e-5);
    }
    free(dx), free(dg), free(db), free(dx1);
    aff_free(&a);
}

Test(affine, gradcheck) {
    int c = 4;
    size_t m = 3 * 7;
    for (int relu = 0; relu < 2; relu++) {
        aff_ctx a = aff_make(c, m, relu, 140 + relu);
        float *dx = tu_alloc(c * m), *dg = tu_alloc(c), *db = tu_alloc(c);
        aff_loss(&a);
        affine_backward(dx, dg, db, a.w, a.out, a.x, a.g, c, m, relu);
        double ex = tu_grad_check(a.x, dx, c * m, aff_loss, &a, FD_EPS, 200, FD_FLOOR);
        double eg = tu_grad_check(a.g, dg, c, aff_loss, &a, FD_EPS, 200, FD_FLOOR);
        double eb = tu_grad_check(a.b, db, c, aff_loss, &a, FD_EPS, 200, FD_FLOOR);
        cr_assert(ex < FD_TOL && eg < FD_TOL && eb < FD_TOL, "relu=%d: dx %g dgamma %g dbeta %g", relu, ex, eg, eb);
        free(dx), free(dg), free(db);
        aff_free(&a);
    }
}

/* ---------------- add / relu ---------------- */

typedef struct {
    size_t n;
    int relu;
    float *a, *b, *out, *w;
} add_ctx;

static double add_loss(void *p) {
    add_ctx *c = p;
    add_forward(c->out, c->a, c->b, c->n, c->relu);
    return tu_dot(c->out, c->w, c->n);
}

Test(add, forward_values_and_alias) {
    size_t n = 37;
    float *a = tu_alloc(n), *b = tu_alloc(n), *o = tu_alloc(n), *o2 = tu_alloc(n);
    tu_fill(a, n, -1.f, 1.f, 200);
    tu_fill(b, n, -1.f, 1.f, 201);
    for (int relu = 0; relu < 2; relu++) {
        add_forward(o, a, b, n, relu);
        for (size_t i = 0; i < n; i++) {
            float v = a[i] + b[i];
            cr_assert_eq(o[i], relu && v < 0 ? 0.f : v);
        }
        memcpy(o2, a, n * sizeof(float));
        add_forward(o2, o2, b, n, relu); /* out == a */
        cr_assert(memcmp(o2, o, n * sizeof(float)) == 0);
        memcpy(o2, b, n * sizeof(float));
        add_forward(o2, a, o2, n, relu); /* out == b */
        cr_assert(memcmp(o2, o, n * sizeof(float)) == 0);
    }
    free(a), free(b), free(o), free(o2);
}

Test(add, backward_accumulates_and_null) {
    size_t n = 41;
    float *dout = tu_alloc(n), *out = tu_alloc(n), *da = tu_alloc(n), *db = tu_alloc(n);
    tu_fill(dout, n, -1.f, 1.f, 210);
    tu_fill(out, n, -1.f, 1.f, 211);
    for (int relu = 0; relu < 2; relu++) {
        memset(da, 0, n * sizeof(float)), memset(db, 0, n * sizeof(float));
        add_backward(da, db, dout, out, n, relu);
        add_backward(da, NULL, dout, out, n, relu);
        add_backward(NULL, NULL, dout, out, n, relu);
        for (size_t i = 0; i < n; i++) {
            float dz = relu && !(out[i] > 0) ? 0.f : dout[i];
            cr_assert_eq(da[i], dz + dz);
            cr_assert_eq(db[i], dz);
        }
    }
    free(dout), free(out), free(da), free(db);
}

Test(add, gradcheck) {
    size_t n = 60;
    for (int relu = 0; relu < 2; relu++) {
        add_ctx c = {n, relu, tu_alloc(n), tu_alloc(n), tu_alloc(n), tu_alloc(n)};
        tu_fill(c.a, n, -1.f, 1.f, 220);
        tu_fill(c.b, n, -1.f, 1.f, 221);
        tu_fill(c.w, n, -1.f, 1.f, 222);
        for (size_t i = 0; i < n; i++) /* keep |a + b| >= 0.1, away from the kink */
            if (fabsf(c.a[i] + c.b[i]) < 0.1f) c.a[i] = copysignf(0.2f, c.a[i] + c.b[i]) - c.b[i];
        float *da = tu_alloc(n), *db = tu_alloc(n);
        add_loss(&c);
        add_backward(da, db, c.w, c.out, n, relu);
        double ea = tu_grad_check(c.a, da, n, add_loss, &c, FD_EPS, 200, FD_FLOOR);
        double eb = tu_grad_check(c.b, db, n, add_loss, &c, FD_EPS, 200, FD_FLOOR);
        cr_assert(ea < FD_TOL && eb < FD_TOL, "relu=%d: da %g db %g", relu, ea, eb);
        free(c.a), free(c.b), free(c.out), free(c.w), free(da), free(db);
    }
}

Test(relu, forward_backward) {
    float x[20], out[20], dout[20], dx[20];
    for (int i = 0; i < 20; i++) x[i] = (float)(i - 10) * 0.5f, dout[i] = (float)(i + 1), dx[i] = 1.f;
    x[3] = NAN;
    relu_forward(out, x, 20);
    for (int i = 0; i < 20; i++)
        if (i == 3)
            cr_assert(isnan(out[i]), "NaN must propagate as in PyTorch");
        else
            cr_assert_eq(out[i], x[i] > 0 ? x[i] : 0.f);
    relu_backward(dx, dout, out, 20);
    relu_backward(dx, dout, out, 20);
    for (int i = 0; i < 20; i++) cr_assert_eq(dx[i], 1.f + (out[i] > 0 ? 2.f * dout[i] : 0.f));
    relu_forward(x, x, 20); /* in place */
    cr_assert(memcmp(x, out, sizeof x) == 0);
}

/* ---------------- max-pool ---------------- */

/* Distinct values, spaced >= 0.1 apart: a random permutation of 0.1 * k. */
static void fill_distinct(float *x, size_t n, uint64_t stream) {
    uint32_t *perm = malloc(n * sizeof *perm);
    ip_rng r;
    ip_rng_init(&r, 99, stream);
    ip_rng_permutation(&r, perm, n);
    for (size_t i = 0; i < n; i++) x[i] = 0.1f * (float)perm[i] - 0.05f * (float)n;
    free(perm);
}

/* The argmax of one window by PyTorch's CPU rule: scan it in row-major order,
 * take v when v > max or v is NaN (the first of equal maxima wins). */
static uint32_t naive_argmax(const float *plane, int w, int oy, int ox) {
    uint32_t off[4] = {0, 1, (uint32_t)w, (uint32_t)w + 1}, base = (uint32_t)(2 * oy * w + 2 * ox), k = base;
    float m = plane[base];
    for (int j = 1; j < 4; j++) {
        float v = plane[base + off[j]];
        if (v > m || v != v) m = v, k = base + off[j];
    }
    return k;
}

Test(maxpool, matches_ref_and_argmax) {
    /* odd: trailing row/column dropped; 28 and 34 columns: rows wider than one vector of
     * pooled outputs (8 with AVX2, 16 with AVX-512), ending in a partial one */
    int sizes[5][2] = {{8, 8}, {5, 7}, {3, 2}, {6, 28}, {4, 34}};
    for (int t = 0; t < 10; t++) {
        int h = sizes[t % 5][0], w = sizes[t % 5][1], oh = h / 2, ow = w / 2;
        size_t planes = 6, per = (size_t)oh * ow;
        float *x = tu_alloc(planes * h * w), *o = tu_alloc(planes * per), *o2 = tu_alloc(planes * per);
        uint32_t *am = calloc(planes * per, sizeof *am);
        tu_fill(x, planes * h * w, -1.f, 1.f, 300 + t);
        if (t >= 5) /* second round: three levels, so most windows hold ties */
            for (size_t i = 0; i < planes * h * w; i++) x[i] = roundf(x[i]);
        maxpool2_forward(o, am, x, planes, h, w);
        maxpool2_forward_ref(o2, x, planes, h, w);
        cr_assert(memcmp(o, o2, planes * per * sizeof(float)) == 0);
        for (size_t p = 0; p < planes; p++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    size_t k = p * per + (size_t)oy * ow + ox;
                    cr_assert_eq(am[k], naive_argmax(x + p * h * w, w, oy, ox), "%dx%d: argmax of window (%d, %d)",
                                 h, w, oy, ox);
                    cr_assert_eq(x[p * h * w + am[k]], o[k]);
                }
        free(x), free(o), free(o2), free(am);
    }
}

Test(maxpool, known_values_and_ties) {
    /* one 4x4 plane: windows with a unique max, a 4-way tie, a tie of the two
     * bottom entries, and -inf everywhere */
    float x[16] = {1, 9, 2, 2, 3, 4, 2, 2, 0, 0, -INFINITY, -INFINITY, 5, 5, -INFINITY, -INFINITY};
    float o[4];
    uint32_t am[4];
    maxpool2_forward(o, am, x, 1, 4, 4);
    cr_assert_eq(o[0], 9.f);
    cr_assert_eq(am[0], 1u);
    cr_assert_eq(o[1], 2.f);
    cr_assert_eq(am[1], 2u); /* first in row-major window order */
    cr_assert_eq(o[2], 5.f);
    cr_assert_eq(am[2], 12u);
    cr_assert(isinf(o[3]) && o[3] < 0);
    cr_assert_eq(am[3], 10u);
    x[5] = NAN; /* NaN propagates, as in PyTorch */
    maxpool2_forward(o, am, x, 1, 4, 4);
    cr_assert(isnan(o[0]));
    cr_assert_eq(am[0], 5u);
}

typedef struct {
    size_t planes;
    int h, w;
    float *x, *out, *r;
    uint32_t *am;
} pool_ctx;

static double pool_loss(void *p) {
    pool_ctx *c = p;
    maxpool2_forward(c->out, c->am, c->x, c->planes, c->h, c->w);
    return tu_dot(c->out, c->r, c->planes * (size_t)(c->h / 2) * (c->w / 2));
}

Test(maxpool, gradcheck_and_accumulate) {
    pool_ctx c = {3, 6, 5, NULL, NULL, NULL, NULL};
    size_t in = c.planes * c.h * c.w, outn = c.planes * (c.h / 2) * (c.w / 2);
    c.x = tu_alloc(in), c.out = tu_alloc(outn), c.r = tu_alloc(outn);
    c.am = calloc(outn, sizeof *c.am);
    fill_distinct(c.x, in, 310); /* spacing 0.1 > 2 eps: the argmax never changes */
    tu_fill(c.r, outn, -1.f, 1.f, 311);
    float *dx = tu_alloc(in);
    pool_loss(&c);
    maxpool2_backward(dx, c.r, c.am, c.planes, c.h, c.w);
    double e = tu_grad_check(c.x, dx, in, pool_loss, &c, FD_EPS, 200, FD_FLOOR);
    cr_assert(e < FD_TOL, "maxpool grad check %g", e);
    float *dx2 = tu_alloc(in);
    memcpy(dx2, dx, in * sizeof(float));
    maxpool2_backward(dx, c.r, c.am, c.planes, c.h, c.w);
    for (size_t i = 0; i < in; i++) cr_assert_eq(dx[i], 2.f * dx2[i]);
    free(c.x), free(c.out), free(c.r), free(c.am), free(dx), free(dx2);
}

/* ---------------- global average pool ---------------- */

typedef struct {
    int c, n, hw;
    float *x, *out, *r;
} shape_ctx;

static double gap_loss(void *p) {
    shape_ctx *s = p;
    gap_forward(s->out, s->x, s->c, s->n, s->hw);
    return tu_dot(s->out, s->r, (size_t)s->n * s->c);
}

Test(gap, known_values) {
    /* C=2, N=2, HW=3: channel-major rows [c][n][p] */
    float x[12] = {1, 2, 3, 4, 5, 6, 10, 20, 30, -1, -2, -3}, out[4];
    gap_forward(out, x, 2, 2, 3);
    float want[4] = {2, 20, 5, -2}; /* out[n][c] */
    for (int i = 0; i < 4; i++) cr_assert_float_eq(out[i], want[i], 1e-6);
    float dout[4] = {3, 6, 9, 12}, dx[12] = {0};
    gap_backward(dx, dout, 2, 2, 3);
    gap_backward(dx, dout, 2, 2, 3); /* accumulates */
    float wdx[12] = {2, 2, 2, 6, 6, 6, 4, 4, 4, 8, 8, 8};
    for (int i = 0; i < 12; i++) cr_assert_float_eq(dx[i], wdx[i], 1e-6);
}

Test(gap, gradcheck) {
    shape_ctx s = {5, 3, 19, NULL, NULL, NULL};
    size_t in = (size_t)s.c * s.n * s.hw, outn = (size_t)s.n * s.c;
    s.x = tu_alloc(in), s.out = tu_alloc(outn), s.r = tu_alloc(outn);
    tu_fill(s.x, in, -1.f, 1.f, 400);
    tu_fill(s.r, outn, -1.f, 1.f, 401);
    float *dx = tu_alloc(in);
    gap_backward(dx, s.r, s.c, s.n, s.hw);
    /* gradients are r/HW ~ 0.05: a smaller floor keeps the check relative */
    double e = tu_grad_check(s.x, dx, in, gap_loss, &s, FD_EPS, 200, 1e-2);
    cr_assert(e < FD_TOL, "gap grad check %g", e);
    float *dx1 = tu_alloc(in);
    memcpy(dx1, dx, in * sizeof(float));
    gap_backward(dx, s.r, s.c, s.n, s.hw);
    for (size_t i = 0; i < in; i++) cr_assert_eq(dx[i], 2.f * dx1[i], "gap backward must accumulate");
    free(dx1);
    free(s.x), free(s.out), free(s.r), free(dx);
}

/* ---------------- flatten ---------------- */

static double flat_loss(void *p) {
    shape_ctx *s = p;
    flatten_forward(s->out, s->x, s->c, s->n, s->hw);
    return tu_dot(s->out, s->r, (size_t)s->n * s->c * s->hw);
}

Test(flatten, layout_matches_nchw) {
    int c = 3, n = 4, hw = 21; /* a block of 16 and a tail */
    size_t len = (size_t)c * n * hw;
    float *x = tu_alloc(len), *out = tu_alloc(len), *dx = tu_alloc(len);
    for (size_t i = 0; i < len; i++) x[i] = (float)i;
    flatten_forward(out, x, c, n, hw);
    for (int s = 0; s < n; s++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++) cr_assert_eq(out[(size_t)s * c * hw + ch * hw + p], x[((size_t)ch * n + s) * hw + p]);
    flatten_backward(dx, out, c, n, hw);
    flatten_backward(dx, out, c, n, hw);
    for (size_t i = 0; i < len; i++) cr_assert_eq(dx[i], 2.f * x[i], "flatten backward must invert and accumulate");
    free(x), free(out), free(dx);
}

Test(flatten, gradcheck) {
    shape_ctx s = {4, 3, 20, NULL, NULL, NULL};
    size_t len = (size_t)s.c * s.n * s.hw;
    s.x = tu_alloc(len), s.out = tu_alloc(len), s.r = tu_alloc(len);
    tu_fill(s.x, len, -1.f, 1.f, 500);
    tu_fill(s.r, len, -1.f, 1.f, 501);
    float *dx = tu_alloc(len);
    flatten_backward(dx, s.r, s.c, s.n, s.hw);
    double e = tu_grad_check(s.x, dx, len, flat_loss, &s, FD_EPS, 240, FD_FLOOR);
    cr_assert(e < FD_TOL, "flatten grad check %g", e);
    free(s.x), free(s.out), free(s.r), free(dx);
}

/* Parallel passes: bit-identical results for 1, 2 and 3 threads. */

static void run_ew_ops(int threads, const float *x, const float *g, float *o, int c, size_t m, int h, int w) {
    ip_par_set_threads(threads);
    size_t len = (size_t)c * m, planes = len / ((size_t)h * w);
    float *y = o, *dx = o + len, *dg = dx + len, *db = dg + c, *p = db + c, *dpx = p + len / 4, *add = dpx + len;
    float *da = add + len, *dbb = da + len;
    uint32_t *am = (uint32_t *)(dbb + len);
    affine_forward(y, x, g, g, c, m, 1);
    affine_backward(dx, dg, db, x, y, x, g, c, m, 1);
    maxpool2_forward(p, am, x, planes, h, w);
    maxpool2_backward(dpx, p, am, planes, h, w);
    add_forward(add, x, y, len, 1);
    add_backward(da, dbb, x, add, len, 1);
    ip_par_set_threads(1);
}

Test(parallel, elementwise_bits_do_not_depend_on_threads) {
    int c = 20, h = 14, w = 18;
    size_t m = (size_t)33 * h * w, len = (size_t)c * m, total = 8 * len + 4 * (size_t)c;
    float *x = tu_alloc(len), *g = tu_alloc(c), *r1 = tu_alloc(total), *r2 = tu_alloc(total), *r3 = tu_alloc(total);
    tu_fill(x, len, -1, 1, 300);
    tu_fill(g, c, -1, 1, 301);
    run_ew_ops(1, x, g, r1, c, m, h, w);
    run_ew_ops(2, x, g, r2, c, m, h, w);
    run_ew_ops(3, x, g, r3, c, m, h, w);
    cr_assert(memcmp(r1, r2, total * sizeof(float)) == 0, "2 threads differ");
    cr_assert(memcmp(r1, r3, total * sizeof(float)) == 0, "3 threads differ");
    free(x), free(g), free(r1), free(r2), free(r3);
}
