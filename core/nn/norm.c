/* Batch norm and group norm without affine, on CNHW activations.
 *
 * Fast path: statistics in one pass per contiguous segment, summing
 * (x - k) and (x - k)^2 in double for a shift k taken from the set itself (so
 * a large common offset does not cancel catastrophically), then one
 * normalising pass. Loops are written as fixed-width blocks over a local
 * array: GCC's -O2 "very cheap" vectoriser only vectorises loops whose trip
 * count is a known multiple of the vector width and never versions for
 * aliasing, so a plain `for (i < n)` loop would stay scalar; the blocked inner
 * loops vectorise at -O2 and stay correct when an output aliases an input.
 *
 * The *_ref functions are the textbook two-pass double loops. */
#include "layers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "norm_stats.h"
#include "../util/par.h"

size_t ip_norm_stats(const ip_norm_shape *s) {
    if (s->groups > 0) return (size_t)(s->n > 0 ? s->n : 0) * (size_t)s->groups;
    return (size_t)(s->c > 0 ? s->c : 0);
}

/* *sg += sum g[i], *sgx += sum g[i] * xh[i]. */
static void dot2_acc(const float *g, const float *xh, size_t n, double *sg, double *sgx) {
    double a[VW] = {0}, b[VW] = {0};
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        for (size_t j = 0; j < VW; j++) {
            double gv = g[i + j];
            a[j] += gv;
            b[j] += gv * (double)xh[i + j];
        }
    double t1 = 0, t2 = 0;
    for (; i < n; i++) {
        double gv = g[i];
        t1 += gv;
        t2 += gv * (double)xh[i];
    }
    for (size_t j = 0; j < VW; j++) t1 += a[j], t2 += b[j];
    *sg += t1;
    *sgx += t2;
}

/* o[i] = (x[i] - m) * r; o may equal x. */
static void normalize_seg(float *o, const float *x, float m, float r, size_t n) {
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        float t[VW];
        for (size_t j = 0; j < VW; j++) t[j] = (x[i + j] - m) * r;
        for (size_t j = 0; j < VW; j++) o[i + j] = t[j];
    }
    for (; i < n; i++) o[i] = (x[i] - m) * r;
}

/* dx[i] += r * (g[i] - a - xh[i] * b). */
static void bwd_train_seg(float *dx, const float *g, const float *xh, float r, float a, float b, size_t n) {
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        float t[VW];
        for (size_t j = 0; j < VW; j++) t[j] = r * (g[i + j] - a - xh[i + j] * b);
        for (size_t j = 0; j < VW; j++) dx[i + j] += t[j];
    }
    for (; i < n; i++) dx[i] += r * (g[i] - a - xh[i] * b);
}

/* dx[i] += g[i] * r. */
static void bwd_scale_seg(float *dx, const float *g, float r, size_t n) {
    size_t i = 0;
    for (; i + VW <= n; i += VW) {
        float t[VW];
        for (size_t j = 0; j < VW; j++) t[j] = g[i + j] * r;
        for (size_t j = 0; j < VW; j++) dx[i + j] += t[j];
    }
    for (; i < n; i++) dx[i] += g[i] * r;
}

/* Group norm: the mean and rstd of sample n's group of cpg channels from c0, x (C, N, HW): the moments
 * of its cpg * HW values shifted by the first of them. */
static void gn_group_stats(const float *x, size_t N, size_t HW, size_t c0, size_t cpg, size_t n, float eps, float *mf,
                           float *rf) {
    const size_t cnt = cpg * HW;
    double k = cnt ? x[(c0 * N + n) * HW] : 0, s1 = 0, s2 = 0, mu, var;
    for (size_t c = c0; c < c0 + cpg; c++) moments_acc(x + (c * N + n) * HW, HW, k, &s1, &s2);
    finish_moments(k, s1, s2, cnt, &mu, &var);
    *mf = (float)mu, *rf = (float)(1.0 / sqrt(var + (double)eps));
}

/* Arguments of one norm pass, shared by the parallel ranges. */
typedef struct {
    float *xhat, *mean, *rstd, *running_mean, *running_var, *dx;
    const float *x, *dxhat, *cxhat, *crstd;
    size_t C, N, HW, G;
    int training, eval;
    float momentum, eps;
} norm_job;

/* Batch norm forward of channels [c0, c1). */
static void bn_fwd_range(void *p, size_t c0, size_t c1) {
    const norm_job *j = p;
    const size_t M = j->N * j->HW;
    for (size_t c = c0; c < c1; c++) {
        const float *row = j->x + c * M;
        double mu, var;
        if (j->eval) {
            mu = j->running_mean[c], var = j->running_var[c];
        } else {
            double k = M ? row[0] : 0, s1 = 0, s2 = 0;
            moments_acc(row, M, k, &s1, &s2);
            finish_moments(k, s1, s2, M, &mu, &var);
            if (j->training) update_running(j->running_mean, j->running_var, c, mu, var, M, j->momentum);
        }
        float mf = (float)mu, rf = (float)(1.0 / sqrt(var + (double)j->eps));
        j->mean[c] = mf, j->rstd[c] = rf;
        normalize_seg(j->xhat + c * M, row, mf, rf, M);
    }
}

/* Group norm forward of (sample, group) pairs [i0, i1), i = n * G + g. */
static void gn_fwd_range(void *p, size_t i0, size_t i1) {
    const norm_job *j = p;
    const size_t N = j->N, HW = j->HW, G = j->G, cpg = j->C / G;
    for (size_t ng = i0; ng < i1; ng++) {
        size_t n = ng / G, g = ng % G, c0 = g * cpg;
        gn_group_stats(j->x, N, HW, c0, cpg, n, j->eps, &j->mean[ng], &j->rstd[ng]);
        float mf = j->mean[ng], rf = j->rstd[ng];
        for (size_t c = c0; c < c0 + cpg; c++) {
            size_t off = (c * N + n) * HW;
            normalize_seg(j->xhat + off, j->x + off, mf, rf, HW);
        }
    }
}

static void gn_stats_range(void *p, size_t i0, size_t i1) {
    const norm_job *j = p;
    const size_t cpg = j->C / j->G;
    for (size_t ng = i0; ng < i1; ng++)
        gn_group_stats(j->x, j->N, j->HW, ng % j->G * cpg, cpg, ng / j->G, j->eps, &j->mean[ng], &j->rstd[ng]);
}

void norm_group_stats(float *mean, float *rstd, const float *x, const ip_norm_shape *s, float eps) {
    if (s->c <= 0 || s->n <= 0 || s->hw < 0 || s->groups <= 0) return;
    size_t C = (size_t)s->c, N = (size_t)s->n, HW = (size_t)s->hw, G = (size_t)s->groups;
    norm_job j = {.mean = mean, .rstd = rstd, .x = x, .C = C, .N = N, .HW = HW, .G = G, .eps = eps};
    ip_par_for(N * G, C * N * HW, gn_stats_range, &j);
}

void norm_forward(float *xhat, float *mean, float *rstd, const float *x, const ip_norm_shape *s,
                  int training, float *running_mean, float *running_var, float momentum, float eps) {
    if (s->c <= 0 || s->n <= 0 || s->hw < 0) return;
    size_t C = (size_t)s->c, N = (size_t)s->n, HW = (size_t)s->hw;
    norm_job j = {.xhat = xhat, .mean = mean, .rstd = rstd, .running_mean = running_mean,
                  .running_var = running_var, .x = x, .C = C, .N = N, .HW = HW, .G = (size_t)s->groups,
                  .training = training, .eval = use_running(s, training, running_mean, running_var),
                  .momentum = momentum, .eps = eps};
    if (s->groups <= 0) ip_par_for(C, C * N * HW, bn_fwd_range, &j);
    else ip_par_for(N * (size_t)s->groups, C * N * HW, gn_fwd_range, &j);
}

static void bn_bwd_range(void *p, size_t c0, size_t c1) {
    const norm_job *j = p;
    const size_t M = j->N * j->HW;
    for (size_t c = c0; c < c1; c++) {
        size_t off = c * M;
        if (!j->training) {
            bwd_scale_seg(j->dx + off, j->dxhat + off, j->crstd[c], M);
            continue;
        }
        double sg = 0, sgx = 0;
        dot2_acc(j->dxhat + off, j->cxhat + off, M, &sg, &sgx);
        bwd_train_seg(j->dx + off, j->dxhat + off, j->cxhat + off, j->crstd[c], (float)(sg / (double)M),
                      (float)(sgx / (double)M), M);
    }
}

static void gn_bwd_range(void *p, size_t i0, size_t i1) {
    const norm_job *j = p;
    const size_t N = j->N, HW = j->HW, G = j->G, cpg = j->C / G, cnt = cpg * HW;
    for (size_t ng = i0; ng < i1; ng++) {
        size_t n = ng / G, g = ng % G, c0 = g * cpg;
        double sg = 0, sgx = 0;
        for (size_t c = c0; c < c0 + cpg; c++) {
            size_t off = (c * N + n) * HW;
            dot2_acc(j->dxhat + off, j->cxhat + off, HW, &sg, &sgx);
        }
        float r = j->crstd[ng], a = (float)(sg / (double)cnt), b = (float)(sgx / (double)cnt);
        for (size_t c = c0; c < c0 + cpg; c++) {
            size_t off = (c * N + n) * HW;
            bwd_train_seg(j->dx + off, j->dxhat + off, j->cxhat + off, r, a, b, HW);
        }
    }
}

void norm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd,
                   const ip_norm_shape *s, int training) {
    if (!dx || s->c <= 0 || s->n <= 0 || s->hw <= 0) return;
    size_t C = (size_t)s->c, N = (size_t)s->n, HW = (size_t)s->hw;
    norm_job j = {.dx = dx, .dxhat = dxhat, .cxhat = xhat, .crstd = rstd, .C = C, .N = N, .HW = HW,
                  .G = (size_t)s->groups, .training = training};
    if (s->groups <= 0) ip_par_for(C, C * N * HW, bn_bwd_range, &j);
    else if (C / (size_t)s->groups > 0) ip_par_for(N * (size_t)s->groups, C * N * HW, gn_bwd_range, &j);
}
