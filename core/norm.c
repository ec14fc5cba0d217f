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

#define VW 16 /* block width, floats: one AVX-512 or two AVX2 registers */

size_t ip_norm_stats(const ip_norm_shape *s) {
    if (s->groups > 0) return (size_t)(s->n > 0 ? s->n : 0) * (size_t)s->groups;
    return (size_t)(s->c > 0 ? s->c : 0);
}

/* *s1 += sum (x[i] - k), *s2 += sum (x[i] - k)^2 over n contiguous floats. */
static void moments_acc(const float *x, size_t n, double k, double *s1, double *s2) {
    double a[VW] = {0}, b[VW] = {0};
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        for (size_t j = 0; j < VW; j++) {
            double d = (double)x[i + j] - k;
            a[j] += d;
            b[j] += d * d;
        }
    double t1 = 0, t2 = 0;
    for (; i < n; i++) {
        double d = (double)x[i] - k;
        t1 += d;
        t2 += d * d;
    }
    for (size_t j = 0; j < VW; j++) t1 += a[j], t2 += b[j];
    *s1 += t1;
    *s2 += t2;
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

/* Mean and biased variance from shifted sums over cnt values. */
static void finish_moments(double k, double s1, double s2, size_t cnt, double *mean, double *var) {
    if (cnt == 0) {
        *mean = 0, *var = 0;
        return;
    }
    double m1 = s1 / (double)cnt;
    double v = s2 / (double)cnt - m1 * m1;
    *mean = k + m1;
    *var = v > 0 ? v : 0;
}

/* PyTorch: running = (1 - momentum) running + momentum * stat, unbiased variance. */
static void update_running(float *running_mean, float *running_var, size_t c, double mean, double var,
                           size_t cnt, float momentum) {
    double mom = momentum;
    if (running_mean) running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
    if (running_var) {
        double vu = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * vu);
    }
}

/* Batch norm in eval mode uses the running statistics. When either is
 * missing (no tracked statistics) it falls back to batch statistics. */
static int use_running(const ip_norm_shape *s, int training, const float *rm, const float *rv) {
    return s->groups <= 0 && !training && rm && rv;
}

void norm_forward(float *xhat, float *mean, float *rstd, const float *x, const ip_norm_shape *s,
                  int training, float *running_mean, float *running_var, float momentum, float eps) {
    if (s->c <= 0 || s->n <= 0 || s->hw < 0) return;
    size_t C = (size_t)s->c, N = (size_t)s->n, HW = (size_t)s->hw, M = N * HW;
    if (s->groups <= 0) {
        int eval = use_running(s, training, running_mean, running_var);
        for (size_t c = 0; c < C; c++) {
            const float *row = x + c * M;
            double mu, var;
            if (eval) {
                mu = running_mean[c], var = running_var[c];
            } else {
                double k = M ? row[0] : 0, s1 = 0, s2 = 0;
                moments_acc(row, M, k, &s1, &s2);
                finish_moments(k, s1, s2, M, &mu, &var);
                if (training) update_running(running_mean, running_var, c, mu, var, M, momentum);
            }
            float mf = (float)mu, rf = (float)(1.0 / sqrt(var + (double)eps));
            mean[c] = mf, rstd[c] = rf;
            normalize_seg(xhat + c * M, row, mf, rf, M);
        }
        return;
    }
    size_t G = (size_t)s->groups, cpg = C / G, cnt = cpg * HW;
    for (size_t n = 0; n < N; n++)
        for (size_t g = 0; g < G; g++) {
            size_t c0 = g * cpg;
            double k = cnt ? x[(c0 * N + n) * HW] : 0, s1 = 0, s2 = 0, mu, var;
            for (size_t c = c0; c < c0 + cpg; c++) moments_acc(x + (c * N + n) * HW, HW, k, &s1, &s2);
            finish_moments(k, s1, s2, cnt, &mu, &var);
            float mf = (float)mu, rf = (float)(1.0 / sqrt(var + (double)eps));
            mean[n * G + g] = mf, rstd[n * G + g] = rf;
            for (size_t c = c0; c < c0 + cpg; c++) {
                size_t off = (c * N + n) * HW;
                normalize_seg(xhat + off, x + off, mf, rf, HW);
            }
        }
}

void norm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd,
                   const ip_norm_shape *s, int training) {
    if (!dx || s->c <= 0 || s->n <= 0 || s->hw <= 0) return;
    size_t C = (size_t)s->c, N = (size_t)s->n, HW = (size_t)s->hw, M = N * HW;
    if (s->groups <= 0) {
        for (size_t c = 0; c < C; c++) {
            size_t off = c * M;
            if (!training) {
                bwd_scale_seg(dx + off, dxhat + off, rstd[c], M);
                continue;
            }
            double sg = 0, sgx = 0;
            dot2_acc(dxhat + off, xhat + off, M, &sg, &sgx);
            bwd_train_seg(dx + off, dxhat + off, xhat + off, rstd[c], (float)(sg / (double)M),
                          (float)(sgx / (double)M), M);
        }
        return;
    }
    size_t G = (size_t)s->groups, cpg = C / G, cnt = cpg * HW;
    if (cnt == 0) return;
    for (size_t n = 0; n < N; n++)
        for (size_t g = 0; g < G; g++) {
            size_t c0 = g * cpg;
            double sg = 0, sgx = 0;
            for (size_t c = c0; c < c0 + cpg; c++) {
                size_t off = (c * N + n) * HW;
                dot2_acc(dxhat + off, xhat + off, HW, &sg, &sgx);
            }
            float r = rstd[n * G + g], a = (float)(sg / (double)cnt), b = (float)(sgx / (double)cnt);
            for (size_t c = c0; c < c0 + cpg; c++) {
                size_t off = (c * N + n) * HW;
                bwd_train_seg(dx + off, dxhat + off, xhat + off, r, a, b, HW);
            }
        }
}

/* ---------------- references ---------------- */

void norm_forward_ref(float *xhat, float *mean, float *rstd, const float *x, const ip_norm_shape *s,
                      int training, float *running_mean, float *running_var, float momentum, float eps) {
    int C = s->c, N = s->n, HW = s->hw;
    if (C <= 0 || N <= 0 || HW < 0) return;
    if (s->groups <= 0) {
        for (int c = 0; c < C; c++) {
            size_t cnt = (size_t)N * HW;
            double mu = 0, var = 0;
            if (use_running(s, training, running_mean, running_var)) {
                mu = running_mean[c];
                var = running_var[c];
            } else {
                for (int n = 0; n < N; n++)
                    for (int p = 0; p < HW; p++) mu += x[((size_t)c * N + n) * HW + p];
                if (cnt) mu /= (double)cnt;
                for (int n = 0; n < N; n++)
                    for (int p = 0; p < HW; p++) {
                        double d = x[((size_t)c * N + n) * HW + p] - mu;
                        var += d * d;
                    }
                if (cnt) var /= (double)cnt;
                if (training) {
                    double vu = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
                    if (running_mean)
                        running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
                    if (running_var)
                        running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * vu);
                }
            }
            double r = 1.0 / sqrt(var + eps);
            mean[c] = (float)mu;
            rstd[c] = (float)r;
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)c * N + n) * HW + p;
                    xhat[i] = (float)((x[i] - mu) * r);
                }
        }
        return;
    }
    int G = s->groups, cpg = C / G;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            size_t cnt = (size_t)cpg * HW;
            double mu = 0, var = 0;
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
                for (int p = 0; p < HW; p++) mu += x[((size_t)c * N + n) * HW + p];
            if (cnt) mu /= (double)cnt;
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
                for (int p = 0; p < HW; p++) {
                    double d = x[((size_t)c * N + n) * HW + p] - mu;
                    var += d * d;
                }
            if (cnt) var /= (double)cnt;
            double r = 1.0 / sqrt(var + eps);
            mean[n * G + g] = (float)mu;
            rstd[n * G + g] = (float)r;
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)c * N + n) * HW + p;
                    xhat[i] = (float)((x[i] - mu) * r);
                }
        }
}

void norm_backward_ref(float *dx, const float *dxhat, const float *xhat, const float *rstd,
                       const ip_norm_shape *s, int training) {
    int C = s->c, N = s->n, HW = s->hw;
    if (!dx || C <= 0 || N <= 0 || HW <= 0) return;
    if (s->groups <= 0) {
        size_t cnt = (size_t)N * HW;
        for (int c = 0; c < C; c++) {
            double r = rstd[c], mg = 0, mgx = 0;
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)c * N + n) * HW + p;
                    mg += dxhat[i];
                    mgx += (double)dxhat[i] * xhat[i];
                }
            mg /= (double)cnt;
            mgx /= (double)cnt;
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)c * N + n) * HW + p;
                    double d = training ? r * (dxhat[i] - mg - xhat[i] * mgx) : r * dxhat[i];
                    dx[i] = (float)(dx[i] + d);
                }
        }
        return;
    }
    int G = s->groups, cpg = C / G;
    size_t cnt = (size_t)cpg * HW;
    if (cnt == 0) return;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            double r = rstd[n * G + g], mg = 0, mgx = 0;
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)c * N + n) * HW + p;
                    mg += dxhat[i];
                    mgx += (double)dxhat[i] * xhat[i];
                }
            mg /= (double)cnt;
            mgx /= (double)cnt;
            for (int c = g * cpg; c < (g + 1) * cpg; c++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)c * N + n) * HW + p;
                    dx[i] = (float)(dx[i] + r * (dxhat[i] - mg - xhat[i] * mgx));
                }
        }
}
