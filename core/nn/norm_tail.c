/* The fused conv-block tail: batch or group norm -> affine [-> ReLU] [->
 * max-pool 2x2] in one pass each way (norm_tail_forward / norm_tail_backward,
 * layers.h), and, for batch norm in eval mode, the same arithmetic on runs of
 * values for convs that hold their output in their own layout (the Winograd
 * output transform, the forger). The unfused kernels it matches are norm.c's
 * and elementwise.c's. */
#include "layers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "norm_stats.h"
#include "../util/par.h"
#include "../util/simd.h"

/* ---------------- fused norm -> affine [-> ReLU] [-> max-pool 2x2] ----------------
 *
 * One channel at a time (channels in parallel), plane by plane (a plane: one
 * sample's H x W values of the channel): one pass computing xhat = (x - mean)
 * * rstd and y = act(gamma * xhat + beta) with the same float operations as
 * normalize_seg + affine_row, pooling y while it is in registers. A plane's
 * statistics are its channel's (batch norm) or its (sample, group)'s (group
 * norm, computed in a pass before). Backward recomputes xhat and the ReLU
 * mask from x (bit-identical to the forward's), sums dz and dz*xhat (from the
 * pooled gradient and argmax alone when pooling: dz is zero off the argmax),
 * then writes dx in one pass. Group norm's dx needs its sums over the
 * group's channels, so its backward writes each plane's sums to a workspace
 * first (norm_tail_work_doubles) and its dx in a second pass over the
 * channels. */

/* Eval mode's mean and rstd of channel c: the running statistics, rstd computed in double as for batch
 * statistics. */
static void running_stats(const float *running_mean, const float *running_var, size_t c, float eps, float *mf,
                          float *rf) {
    double mu = running_mean[c], var = running_var[c];
    *mf = (float)mu, *rf = (float)(1.0 / sqrt(var + (double)eps));
}

/* Channel c's mean and rstd (batch or running statistics), running stats updated when training. */
static void bn_channel_stats(const float *row, size_t M, size_t c, int eval, int training, float *running_mean,
                             float *running_var, float momentum, float eps, float *mf, float *rf) {
    if (eval) {
        running_stats(running_mean, running_var, c, eps, mf, rf);
        return;
    }
    double mu, var, k = M ? row[0] : 0, s1 = 0, s2 = 0;
    moments_acc(row, M, k, &s1, &s2);
    finish_moments(k, s1, s2, M, &mu, &var);
    if (training) update_running(running_mean, running_var, c, mu, var, M, momentum);
    *mf = (float)mu, *rf = (float)(1.0 / sqrt(var + (double)eps));
}

static inline float tail_y(float x, float m, float r, float g, float b, int relu) {
    float xh = (x - m) * r;
    float v = g * xh + b;
    return relu && v < 0.f ? 0.f : v;
}

#if defined(__AVX512F__)
static inline __m512 tail_y16(__m512 x, __m512 m, __m512 r, __m512 g, __m512 b, int relu, __m512 *xh) {
    *xh = _mm512_mul_ps(_mm512_sub_ps(x, m), r);
    __m512 v = _mm512_add_ps(_mm512_mul_ps(g, *xh), b);
    /* max(0, v) returns v when v is NaN or -0: the same as (v < 0 ? 0 : v) */
    return relu ? _mm512_max_ps(_mm512_setzero_ps(), v) : v;
}
#elif defined(__AVX2__)
static inline __m256 tail_y8(__m256 x, __m256 m, __m256 r, __m256 g, __m256 b, int relu, __m256 *xh) {
    *xh = _mm256_mul_ps(_mm256_sub_ps(x, m), r);
    __m256 v = _mm256_add_ps(_mm256_mul_ps(g, *xh), b);
    /* max(0, v) returns its second operand when v is NaN, and v when v is -0: (v < 0 ? 0 : v) */
    return relu ? _mm256_max_ps(_mm256_setzero_ps(), v) : v;
}
#endif

/* y over n contiguous values (no pooling). */
static void tail_fwd_dense(float *y, const float *x, size_t n, float m, float r, float g, float b, int relu) {
    size_t i = 0;
#if defined(__AVX512F__)
    __m512 vm = _mm512_set1_ps(m), vr = _mm512_set1_ps(r), vg = _mm512_set1_ps(g), vb = _mm512_set1_ps(b), xh;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, tail_y16(_mm512_loadu_ps(x + i), vm, vr, vg, vb, relu, &xh));
    if (i < n) {
        __mmask16 k = ip_lanes((int)(n - i));
        _mm512_mask_storeu_ps(y + i, k, tail_y16(_mm512_maskz_loadu_ps(k, x + i), vm, vr, vg, vb, relu, &xh));
    }
#elif defined(__AVX2__)
    __m256 vm = _mm256_set1_ps(m), vr = _mm256_set1_ps(r), vg = _mm256_set1_ps(g), vb = _mm256_set1_ps(b), xh;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tail_y8(_mm256_loadu_ps(x + i), vm, vr, vg, vb, relu, &xh));
    if (i < n) ip_store8(y + i, (int)(n - i), tail_y8(ip_load8(x + i, (int)(n - i)), vm, vr, vg, vb, relu, &xh));
#else
    for (; i + VW <= n; i += VW) {
        float t[VW];
        for (size_t j = 0; j < VW; j++) t[j] = tail_y(x[i + j], m, r, g, b, relu);
        for (size_t j = 0; j < VW; j++) y[i + j] = t[j];
    }
    for (; i < n; i++) y[i] = tail_y(x[i], m, r, g, b, relu);
#endif
}

#if !defined(__AVX512F__) && !defined(__AVX2__)
/* Pool rows 2oy, 2oy+1 of one plane into po/pa (pa may be NULL; maxpool2_forward's rule; portable path),
 * y recomputed from x (rows r0, r1) as tail_fwd_dense computes it. */
static void pool_rowpair(float *po, uint32_t *pa, const float *r0, const float *r1, size_t ow, uint32_t base,
                         uint32_t w, float mu, float r, float g, float b0, int relu) {
    for (size_t ox = 0; ox < ow; ox++) {
        const float *a = r0 + 2 * ox, *b = r1 + 2 * ox;
        float v[4] = {tail_y(a[0], mu, r, g, b0, relu), tail_y(a[1], mu, r, g, b0, relu),
                      tail_y(b[0], mu, r, g, b0, relu), tail_y(b[1], mu, r, g, b0, relu)},
              m = v[0];
        uint32_t off[4] = {0, 1, w, w + 1}, k = 0;
        for (int j = 1; j < 4; j++)
            if (v[j] > m || v[j] != v[j]) m = v[j], k = off[j];
        po[ox] = m;
        if (pa) pa[ox] = base + (uint32_t)(2 * ox) + k;
    }
}
#endif

/* The pooled forward of one channel, plane n's statistics at mean[n * ms],
 * rstd[n * ms] (ms = 0: one pair for the channel); keep_idx is a constant at
 * each call, so without it the argmax arithmetic is compiled out (the pooled
 * values are the same operations either way). */
static inline __attribute__((always_inline)) void tail_fwd_pooled(float *y, float *pooled, uint32_t *argmax,
                                                                  const float *x, const float *mean,
                                                                  const float *rstd, size_t ms, float g, float b,
                                                                  const ip_norm_tail_shape *s, const int keep_idx) {
    const size_t N = (size_t)s->n, H = (size_t)s->h, W = (size_t)s->w, HW = H * W;
    const size_t oh = H / 2, ow = W / 2;
    for (size_t n = 0; n < N; n++) {
        const float m = mean[n * ms], r = rstd[n * ms];
        const float *xp = x + n * HW;
        float *yp = y ? y + n * HW : NULL, *po = pooled + n * oh * ow;
        uint32_t *pa = keep_idx ? argmax + n * oh * ow : NULL;
        for (size_t oy = 0; oy < oh; oy++) {
            const float *x0 = xp + 2 * oy * W, *x1 = x0 + W;
            float *y0 = yp ? yp + 2 * oy * W : NULL, *y1 = y0 ? y0 + W : NULL;
#if defined(__AVX512F__)
            __m512 vm = _mm512_set1_ps(m), vr = _mm512_set1_ps(r), vg = _mm512_set1_ps(g), vb = _mm512_set1_ps(b),
                   xh;
            for (size_t cx = 0; cx < W; cx += 32) {
                int cnt = W - cx < 32 ? (int)(W - cx) : 32;
                __mmask16 lo = ip_lanes(cnt), hi = ip_lanes(cnt - 16);
                __m512 a0 = tail_y16(_mm512_maskz_loadu_ps(lo, x0 + cx), vm, vr, vg, vb, s->relu, &xh);
                __m512 a1 = tail_y16(_mm512_maskz_loadu_ps(hi, x0 + cx + 16), vm, vr, vg, vb, s->relu, &xh);
                __m512 b0 = tail_y16(_mm512_maskz_loadu_ps(lo, x1 + cx), vm, vr, vg, vb, s->relu, &xh);
                __m512 b1 = tail_y16(_mm512_maskz_loadu_ps(hi, x1 + cx + 16), vm, vr, vg, vb, s->relu, &xh);
                if (y) {
                    _mm512_mask_storeu_ps(y0 + cx, lo, a0);
                    _mm512_mask_storeu_ps(y0 + cx + 16, hi, a1);
                    _mm512_mask_storeu_ps(y1 + cx, lo, b0);
                    _mm512_mask_storeu_ps(y1 + cx + 16, hi, b1);
                }
                int nout = (int)(ow - cx / 2 < 16 ? ow - cx / 2 : 16);
                if (nout <= 0) continue;
                __m512i k;
                __m512 pm = ip_pool_vec(a0, a1, b0, b1, (uint32_t)(2 * oy * W + cx), (uint32_t)W, &k);
                __mmask16 om = ip_lanes(nout);
                _mm512_mask_storeu_ps(po + oy * ow + cx / 2, om, pm);
                if (keep_idx) _mm512_mask_storeu_epi32(pa + oy * ow + cx / 2, om, k);
            }
#elif defined(__AVX2__)
            __m256 vm = _mm256_set1_ps(m), vr = _mm256_set1_ps(r), vg = _mm256_set1_ps(g), vb = _mm256_set1_ps(b),
                   xh;
            for (size_t cx = 0; cx < W; cx += 16) {
                int cnt = W - cx < 16 ? (int)(W - cx) : 16;
                __m256 a0 = tail_y8(ip_load8(x0 + cx, cnt), vm, vr, vg, vb, s->relu, &xh);
                __m256 a1 = tail_y8(ip_load8(x0 + cx + 8, cnt - 8), vm, vr, vg, vb, s->relu, &xh);
                __m256 b0 = tail_y8(ip_load8(x1 + cx, cnt), vm, vr, vg, vb, s->relu, &xh);
                __m256 b1 = tail_y8(ip_load8(x1 + cx + 8, cnt - 8), vm, vr, vg, vb, s->relu, &xh);
                if (y) {
                    ip_store8(y0 + cx, cnt, a0);
                    ip_store8(y0 + cx + 8, cnt - 8, a1);
                    ip_store8(y1 + cx, cnt, b0);
                    ip_store8(y1 + cx + 8, cnt - 8, b1);
                }
                int nout = (int)(ow - cx / 2 < 8 ? ow - cx / 2 : 8);
                if (nout <= 0) continue;
                __m256i k;
                __m256 pm = ip_pool_vec8(a0, a1, b0, b1, (uint32_t)(2 * oy * W + cx), (uint32_t)W, &k);
                ip_store8(po + oy * ow + cx / 2, nout, pm);
                if (keep_idx) ip_store8i(pa + oy * ow + cx / 2, nout, k);
            }
#else
            if (y) tail_fwd_dense(y0, x0, 2 * W, m, r, g, b, s->relu); /* rows 2oy and 2oy+1 are adjacent */
            (void)y1;
            pool_rowpair(po + oy * ow, keep_idx ? pa + oy * ow : NULL, x0, x1, ow, (uint32_t)(2 * oy * W),
                         (uint32_t)W, m, r, g, b, s->relu);
#endif
        }
        if (H % 2 && y) tail_fwd_dense(yp + (H - 1) * W, xp + (H - 1) * W, W, m, r, g, b, s->relu);
    }
}

/* One channel, plane n's statistics at mean[n * ms], rstd[n * ms]; argmax NULL: an inference pass, no
 * backward reads it. */
static void tail_fwd_channel(float *y, float *pooled, uint32_t *argmax, const float *x, const float *mean,
                             const float *rstd, size_t ms, float g, float b, const ip_norm_tail_shape *s) {
    const size_t HW = (size_t)s->h * s->w;
    if (!s->pool && ms == 0) tail_fwd_dense(y, x, (size_t)s->n * HW, mean[0], rstd[0], g, b, s->relu);
    else if (!s->pool)
        for (size_t n = 0; n < (size_t)s->n; n++)
            tail_fwd_dense(y + n * HW, x + n * HW, HW, mean[n * ms], rstd[n * ms], g, b, s->relu);
    else if (argmax) tail_fwd_pooled(y, pooled, argmax, x, mean, rstd, ms, g, b, s, 1);
    else tail_fwd_pooled(y, pooled, NULL, x, mean, rstd, ms, g, b, s, 0);
}

typedef struct {
    float *y, *pooled, *mean, *rstd, *running_mean, *running_var, *dx, *dgamma, *dbeta;
    double *work; /* group norm's backward: per plane sums, then per (sample, group) constants */
    uint32_t *argmax;
    const float *x, *gamma, *beta, *dout, *cmean, *crstd;
    const uint32_t *cargmax;
    const ip_norm_tail_shape *s;
    int training, eval, accumulate;
    float momentum, eps;
} tail_job;

static void tail_fwd_range(void *p, size_t c0, size_t c1) {
    const tail_job *j = p;
    const ip_norm_tail_shape *s = j->s;
    const size_t M = (size_t)s->n * s->h * s->w, per_pool = (size_t)s->n * (s->h / 2) * (s->w / 2);
    const size_t G = s->groups > 0 ? (size_t)s->groups : 0, cpg = G ? (size_t)s->c / G : 1;
    for (size_t c = c0; c < c1; c++) {
        const float *row = j->x + c * M;
        if (!G)
            bn_channel_stats(row, M, c, j->eval, j->training, j->running_mean, j->running_var, j->momentum, j->eps,
                             &j->mean[c], &j->rstd[c]);
        /* batch norm: the channel's pair for every plane; group norm: plane n's is (n, c / cpg)'s */
        size_t first = G ? c / cpg : c;
        tail_fwd_channel(j->y ? j->y + c * M : NULL, s->pool ? j->pooled + c * per_pool : NULL,
                         s->pool && j->argmax ? j->argmax + c * per_pool : NULL, row, j->mean + first,
                         j->rstd + first, G, j->gamma[c], j->beta[c], s);
    }
}

void norm_tail_forward(float *y, float *pooled, uint32_t *argmax, float *mean, float *rstd, const float *x,
                       const float *gamma, const float *beta, const ip_norm_tail_shape *s, int training,
                       float *running_mean, float *running_var, float momentum, float eps) {
    if (s->c <= 0 || s->n <= 0 || s->h <= 0 || s->w <= 0) return;
    if (s->pool && (s->h < 2 || s->w < 2)) return;
    const ip_norm_shape ns = {s->c, s->n, s->h * s->w, s->groups};
    tail_job j = {.y = y, .pooled = pooled, .argmax = argmax, .mean = mean, .rstd = rstd,
                  .running_mean = running_mean, .running_var = running_var, .x = x, .gamma = gamma, .beta = beta,
                  .s = s, .training = training, .eval = use_running(&ns, training, running_mean, running_var),
                  .momentum = momentum, .eps = eps};
    size_t M = (size_t)s->n * s->h * s->w;
    if (s->groups > 0) norm_group_stats(mean, rstd, x, &ns, eps);
    ip_par_for((size_t)s->c, (size_t)s->c * M, tail_fwd_range, &j);
}

/* ---- the eval-mode tail on runs of values, for a conv that holds its output in its own layout ---- */

void bn_tail_eval_stats(float *mean, float *rstd, const float *running_mean, const float *running_var, int c,
                        float eps) {
    for (int k = 0; k < c; k++) running_stats(running_mean, running_var, (size_t)k, eps, &mean[k], &rstd[k]);
}

void bn_tail_apply(float *y, const float *x, size_t n, float mean, float rstd, float gamma, float beta, int relu) {
    tail_fwd_dense(y, x, n, mean, rstd, gamma, beta, relu);
}

/* No restrict: y may be x00 (each vector is loaded whole before its result is stored). */
void bn_tail_pool4(float *y, const float *x00, const float *x01, const float *x10, const float *x11, size_t n,
                   float mean, float rstd, float gamma, float beta, int relu) {
    const float m = mean, r = rstd, g = gamma, b = beta;
    size_t i = 0;
#if defined(__AVX512F__)
    __m512 vm = _mm512_set1_ps(m), vr = _mm512_set1_ps(r), vg = _mm512_set1_ps(g), vb = _mm512_set1_ps(b), xh;
    for (; i < n; i += 16) {
        __mmask16 k = ip_lanes(n - i < 16 ? (int)(n - i) : 16);
        __m512 v0 = tail_y16(_mm512_maskz_loadu_ps(k, x00 + i), vm, vr, vg, vb, relu, &xh);
        __m512 v1 = tail_y16(_mm512_maskz_loadu_ps(k, x01 + i), vm, vr, vg, vb, relu, &xh);
        __m512 v2 = tail_y16(_mm512_maskz_loadu_ps(k, x10 + i), vm, vr, vg, vb, relu, &xh);
        __m512 v3 = tail_y16(_mm512_maskz_loadu_ps(k, x11 + i), vm, vr, vg, vb, relu, &xh);
        __m512 mx = v0; /* ip_pool_vec's rule in its order */
        mx = _mm512_mask_blend_ps(ip_pool_takes(v1, mx), mx, v1);
        mx = _mm512_mask_blend_ps(ip_pool_takes(v2, mx), mx, v2);
        mx = _mm512_mask_blend_ps(ip_pool_takes(v3, mx), mx, v3);
        _mm512_mask_storeu_ps(y + i, k, mx);
    }
#elif defined(__AVX2__)
    __m256 vm = _mm256_set1_ps(m), vr = _mm256_set1_ps(r), vg = _mm256_set1_ps(g), vb = _mm256_set1_ps(b), xh;
    for (; i < n; i += 8) {
        int cnt = n - i < 8 ? (int)(n - i) : 8;
        __m256 v0 = tail_y8(ip_load8(x00 + i, cnt), vm, vr, vg, vb, relu, &xh);
        __m256 v1 = tail_y8(ip_load8(x01 + i, cnt), vm, vr, vg, vb, relu, &xh);
        __m256 v2 = tail_y8(ip_load8(x10 + i, cnt), vm, vr, vg, vb, relu, &xh);
        __m256 v3 = tail_y8(ip_load8(x11 + i, cnt), vm, vr, vg, vb, relu, &xh);
        __m256 mx = v0; /* ip_pool_vec8's rule in its order */
        mx = _mm256_blendv_ps(mx, v1, ip_pool_takes8(v1, mx));
        mx = _mm256_blendv_ps(mx, v2, ip_pool_takes8(v2, mx));
        mx = _mm256_blendv_ps(mx, v3, ip_pool_takes8(v3, mx));
        ip_store8(y + i, cnt, mx);
    }
#else
    for (; i < n; i++) {
        float v[4] = {tail_y(x00[i], m, r, g, b, relu), tail_y(x01[i], m, r, g, b, relu),
                      tail_y(x10[i], m, r, g, b, relu), tail_y(x11[i], m, r, g, b, relu)},
              mx = v[0];
        for (int j = 1; j < 4; j++)
            if (v[j] > mx || v[j] != v[j]) mx = v[j];
        y[i] = mx;
    }
#endif
}

void bn_tail_of_pool4(float *y, const float *x00, const float *x01, const float *x10, const float *x11, size_t n,
                      float mean, float rstd, float gamma, float beta, int relu) {
    const float m = mean, r = rstd, g = gamma, b = beta;
    const int up = !(g < 0);
    size_t i = 0;
#if defined(__AVX512F__)
    __m512 vm = _mm512_set1_ps(m), vr = _mm512_set1_ps(r), vg = _mm512_set1_ps(g), vb = _mm512_set1_ps(b), xh;
    for (; i < n; i += 16) {
        __mmask16 k = ip_lanes(n - i < 16 ? (int)(n - i) : 16);
        __m512 a0 = _mm512_maskz_loadu_ps(k, x00 + i), a1 = _mm512_maskz_loadu_ps(k, x01 + i);
        __m512 c0 = _mm512_maskz_loadu_ps(k, x10 + i), c1 = _mm512_maskz_loadu_ps(k, x11 + i);
        /* max_ps(a, b) / min_ps(a, b) are a > b ? a : b / a < b ? a : b, NaN and zeros included */
        __m512 e = up ? _mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(c0, c1))
                      : _mm512_min_ps(_mm512_min_ps(a0, a1), _mm512_min_ps(c0, c1));
        _mm512_mask_storeu_ps(y + i, k, tail_y16(e, vm, vr, vg, vb, relu, &xh));
    }
#elif defined(__AVX2__)
    __m256 vm = _mm256_set1_ps(m), vr = _mm256_set1_ps(r), vg = _mm256_set1_ps(g), vb = _mm256_set1_ps(b), xh;
    for (; i < n; i += 8) {
        int cnt = n - i < 8 ? (int)(n - i) : 8;
        __m256 a0 = ip_load8(x00 + i, cnt), a1 = ip_load8(x01 + i, cnt);
        __m256 c0 = ip_load8(x10 + i, cnt), c1 = ip_load8(x11 + i, cnt);
        __m256 e = up ? _mm256_max_ps(_mm256_max_ps(a0, a1), _mm256_max_ps(c0, c1))
                      : _mm256_min_ps(_mm256_min_ps(a0, a1), _mm256_min_ps(c0, c1));
        ip_store8(y + i, cnt, tail_y8(e, vm, vr, vg, vb, relu, &xh));
    }
#else
    for (; i < n; i++) {
        float e;
        if (up) {
            float a = x00[i] > x01[i] ? x00[i] : x01[i], c = x10[i] > x11[i] ? x10[i] : x11[i];
            e = a > c ? a : c;
        } else {
            float a = x00[i] < x01[i] ? x00[i] : x01[i], c = x10[i] < x11[i] ? x10[i] : x11[i];
            e = a < c ? a : c;
        }
        y[i] = tail_y(e, m, r, g, b, relu);
    }
#endif
}

void bn_tail_of_pool2x2(float *restrict o, const float *restrict x, size_t planes, int h, int w, float mean,
                        float rstd, float gamma, float beta, int relu) {
    const int oh = h / 2, ow = w / 2, up = !(gamma < 0);
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * (size_t)h * w;
        float *op = o + p * (size_t)oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = xp + (size_t)2 * oy * w, *r1 = r0 + w;
            float *orow = op + (size_t)oy * ow;
            if (up)
                for (int ox = 0; ox < ow; ox++) {
                    float a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
                    float c = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
                    orow[ox] = tail_y(a > c ? a : c, mean, rstd, gamma, beta, relu);
                }
            else
                for (int ox = 0; ox < ow; ox++) {
                    float a = r0[2 * ox] < r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
                    float c = r1[2 * ox] < r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
                    orow[ox] = tail_y(a < c ? a : c, mean, rstd, gamma, beta, relu);
                }
        }
    }
}

/* A plane's backward constants (the same for a channel's planes in batch norm). */
typedef struct tail_k {
    float m, r, g, b;  /* forward mean, rstd, gamma, beta */
    float a, bb;       /* training: mean(dxhat), mean(dxhat * xhat) over the channel (batch norm) or the
                        * (sample, group) (group norm); 0 in eval mode */
    int relu, training;
} tail_k;

/* dx for one value given its dz: r * (dxhat - a - xhat * bb) (training) or dxhat * r (eval), dxhat = dz * g:
 * the formulas of norm_backward. */
static inline float tail_dx(float dz, float xh, const tail_k *k) {
    float dxh = dz * k->g;
    return k->training ? k->r * (dxh - k->a - xh * k->bb) : dxh * k->r;
}

/* Sums over n contiguous values (no pool): *s1 += sum dz, *s2 += sum dz * xhat. */
static void tail_sums_dense(const float *dout, const float *x, size_t n, const tail_k *k, double *s1, double *s2) {
    double a[VW] = {0}, b[VW] = {0};
    size_t i = 0;
#if defined(__AVX512F__)
    /* The loop below, lane for lane (the same 16 double accumulators, the
     * same order, hence the same bits): GCC -O2 leaves it scalar, and with a
     * ReLU its data-dependent select mispredicts (measured 3x slower than
     * without a ReLU on resnet18-p's 64x32x32 layers). */
    {
        __m512 vm = _mm512_set1_ps(k->m), vr = _mm512_set1_ps(k->r), vg = _mm512_set1_ps(k->g),
               vb = _mm512_set1_ps(k->b), xh;
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
        for (; i + VW <= n; i += VW) {
            __m512 v = tail_y16(_mm512_loadu_ps(x + i), vm, vr, vg, vb, 0, &xh);
            __mmask16 on = k->relu ? _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ) : (__mmask16)0xFFFF;
            __m512 dz = _mm512_maskz_loadu_ps(on, dout + i);
            __m512d dlo = _mm512_cvtps_pd(_mm512_castps512_ps256(dz));
            __m512d dhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dz), 1)));
            __m512d xlo = _mm512_cvtps_pd(_mm512_castps512_ps256(xh));
            __m512d xhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xh), 1)));
            a0 = _mm512_add_pd(a0, dlo), a1 = _mm512_add_pd(a1, dhi);
            b0 = _mm512_add_pd(b0, _mm512_mul_pd(dlo, xlo)), b1 = _mm512_add_pd(b1, _mm512_mul_pd(dhi, xhi));
        }
        _mm512_storeu_pd(a, a0), _mm512_storeu_pd(a + 8, a1);
        _mm512_storeu_pd(b, b0), _mm512_storeu_pd(b + 8, b1);
    }
#elif defined(__AVX2__)
    /* the same, 8 lanes at a time: acc_a[q] holds a[4q .. 4q+3], acc_b[q] b[4q .. 4q+3] */
    {
        __m256 vm = _mm256_set1_ps(k->m), vr = _mm256_set1_ps(k->r), vg = _mm256_set1_ps(k->g),
               vb = _mm256_set1_ps(k->b);
        __m256d acc_a[4], acc_b[4];
        for (int q = 0; q < 4; q++) acc_a[q] = acc_b[q] = _mm256_setzero_pd();
        for (; i + VW <= n; i += VW)
            for (int h = 0; h < 2; h++) {
                __m256 xh, v = tail_y8(_mm256_loadu_ps(x + i + 8 * h), vm, vr, vg, vb, 0, &xh);
                __m256 dz = _mm256_loadu_ps(dout + i + 8 * h);
                if (k->relu) dz = _mm256_and_ps(dz, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
                __m256d dlo = _mm256_cvtps_pd(_mm256_castps256_ps128(dz));
                __m256d dhi = _mm256_cvtps_pd(_mm256_extractf128_ps(dz, 1));
                __m256d xlo = _mm256_cvtps_pd(_mm256_castps256_ps128(xh));
                __m256d xhi = _mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1));
                acc_a[2 * h] = _mm256_add_pd(acc_a[2 * h], dlo);
                acc_a[2 * h + 1] = _mm256_add_pd(acc_a[2 * h + 1], dhi);
                acc_b[2 * h] = _mm256_add_pd(acc_b[2 * h], _mm256_mul_pd(dlo, xlo));
                acc_b[2 * h + 1] = _mm256_add_pd(acc_b[2 * h + 1], _mm256_mul_pd(dhi, xhi));
            }
        for (int q = 0; q < 4; q++) _mm256_storeu_pd(a + 4 * q, acc_a[q]), _mm256_storeu_pd(b + 4 * q, acc_b[q]);
    }
#endif
    for (; i + VW <= n; i += VW) {
        float dz[VW], xh[VW];
        for (size_t j = 0; j < VW; j++) {
            xh[j] = (x[i + j] - k->m) * k->r;
            float v = k->g * xh[j] + k->b;
            dz[j] = (!k->relu || v > 0.f) ? dout[i + j] : 0.f;
        }
        for (size_t j = 0; j < VW; j++) {
            a[j] += dz[j];
            b[j] += (double)dz[j] * (double)xh[j];
        }
    }
    double t1 = 0, t2 = 0;
    for (; i < n; i++) {
        float xh = (x[i] - k->m) * k->r, v = k->g * xh + k->b;
        float dz = (!k->relu || v > 0.f) ? dout[i] : 0.f;
        t1 += dz, t2 += (double)dz * (double)xh;
    }
    for (size_t j = 0; j < VW; j++) t1 += a[j], t2 += b[j];
    *s1 += t1, *s2 += t2;
}

/* Sums from the pooled gradient: dz is dout[q] at x[argmax[q]] (0 elsewhere), masked by the ReLU there. */
static void tail_sums_pool(const float *dout, const uint32_t *am, const float *xp, size_t nq, const tail_k *k,
                           double *s1, double *s2) {
    double t1 = 0, t2 = 0;
    size_t q = 0;
#if defined(__AVX512F__)
    __m512 vm = _mm512_set1_ps(k->m), vr = _mm512_set1_ps(k->r), vg = _mm512_set1_ps(k->g),
           vb = _mm512_set1_ps(k->b), xh;
    __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    for (; q < nq; q += 16) {
        __mmask16 l = ip_lanes((int)(nq - q));
        __m512i idx = _mm512_maskz_loadu_epi32(l, am + q);
        __m512 xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), l, idx, xp, 4);
        __m512 v = tail_y16(xv, vm, vr, vg, vb, 0, &xh);
        __mmask16 on = k->relu ? _mm512_mask_cmp_ps_mask(l, v, _mm512_setzero_ps(), _CMP_GT_OQ) : l;
        __m512 dz = _mm512_maskz_loadu_ps(on, dout + q);
        __m512d dlo = _mm512_cvtps_pd(_mm512_castps512_ps256(dz));
        __m512d dhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dz), 1)));
        __m512d xlo = _mm512_cvtps_pd(_mm512_castps512_ps256(xh));
        __m512d xhi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(xh), 1)));
        a0 = _mm512_add_pd(a0, dlo), a1 = _mm512_add_pd(a1, dhi);
        b0 = _mm512_add_pd(b0, _mm512_mul_pd(dlo, xlo)), b1 = _mm512_add_pd(b1, _mm512_mul_pd(dhi, xhi));
    }
    t1 = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    t2 = _mm512_reduce_add_pd(_mm512_add_pd(b0, b1));
#elif defined(__AVX2__)
    __m256 vm = _mm256_set1_ps(k->m), vr = _mm256_set1_ps(k->r), vg = _mm256_set1_ps(k->g),
           vb = _mm256_set1_ps(k->b), xh;
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    for (; q < nq; q += 8) {
        const int nl = nq - q < 8 ? (int)(nq - q) : 8;
        __m256i l = ip_lanes8(nl);
        __m256i idx = ip_load8i(am + q, nl);
        __m256 xv = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xp, idx, _mm256_castsi256_ps(l), 4);
        __m256 v = tail_y8(xv, vm, vr, vg, vb, 0, &xh);
        __m256 dz = ip_load8(dout + q, nl); /* 0 in the lanes past nq */
        if (k->relu) dz = _mm256_and_ps(dz, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
        __m256d dlo = _mm256_cvtps_pd(_mm256_castps256_ps128(dz)), dhi = _mm256_cvtps_pd(_mm256_extractf128_ps(dz, 1));
        /* lanes past nq: xh = (0 - m) * r, finite, times a zero dz */
        __m256d xlo = _mm256_cvtps_pd(_mm256_castps256_ps128(xh)), xhi = _mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1));
        a0 = _mm256_add_pd(a0, dlo), a1 = _mm256_add_pd(a1, dhi);
        b0 = _mm256_add_pd(b0, _mm256_mul_pd(dlo, xlo)), b1 = _mm256_add_pd(b1, _mm256_mul_pd(dhi, xhi));
    }
    double ta[4], tb[4];
    _mm256_storeu_pd(ta, _mm256_add_pd(a0, a1)), _mm256_storeu_pd(tb, _mm256_add_pd(b0, b1));
    t1 = (ta[0] + ta[1]) + (ta[2] + ta[3]);
    t2 = (tb[0] + tb[1]) + (tb[2] + tb[3]);
#endif
    for (; q < nq; q++) {
        float xh = (xp[am[q]] - k->m) * k->r, v = k->g * xh + k->b;
        float dz = (!k->relu || v > 0.f) ? dout[q] : 0.f;
        t1 += dz, t2 += (double)dz * (double)xh;
    }
    *s1 += t1, *s2 += t2;
}

/* dx over n contiguous values from a dense dout (dout NULL: dz = 0 everywhere). */
static void tail_dx_dense(float *dx, int acc, const float *dout, const float *x, size_t n, const tail_k *k) {
    for (size_t i = 0; i < n; i++) {
        float xh = (x[i] - k->m) * k->r, v = k->g * xh + k->b;
        float dz = dout && (!k->relu || v > 0.f) ? dout[i] : 0.f;
        float d = tail_dx(dz, xh, k);
        dx[i] = acc ? dx[i] + d : d;
    }
}

#if defined(__AVX512F__)
static inline void tail_dx16(float *dx, __mmask16 l, int acc, __m512 dz, __m512 xv, const tail_k *k) {
    __m512 xh = _mm512_mul_ps(_mm512_sub_ps(xv, _mm512_set1_ps(k->m)), _mm512_set1_ps(k->r));
    if (k->relu) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(k->g), xh), _mm512_set1_ps(k->b));
        dz = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), dz);
    }
    __m512 dxh = _mm512_mul_ps(dz, _mm512_set1_ps(k->g)), d;
    if (k->training)
        d = _mm512_mul_ps(_mm512_set1_ps(k->r), _mm512_sub_ps(_mm512_sub_ps(dxh, _mm512_set1_ps(k->a)),
                                                              _mm512_mul_ps(xh, _mm512_set1_ps(k->bb))));
    else
        d = _mm512_mul_ps(dxh, _mm512_set1_ps(k->r));
    if (acc) d = _mm512_add_ps(_mm512_maskz_loadu_ps(l, dx), d);
    _mm512_mask_storeu_ps(dx, l, d);
}
#elif defined(__AVX2__)
/* dx over the first nl (1..8) lanes; tail_dx16's arithmetic. */
static inline void tail_dx8(float *dx, int nl, int acc, __m256 dz, __m256 xv, const tail_k *k) {
    __m256 xh = _mm256_mul_ps(_mm256_sub_ps(xv, _mm256_set1_ps(k->m)), _mm256_set1_ps(k->r));
    if (k->relu) {
        __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(k->g), xh), _mm256_set1_ps(k->b));
        dz = _mm256_and_ps(dz, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
    }
    __m256 dxh = _mm256_mul_ps(dz, _mm256_set1_ps(k->g)), d;
    if (k->training)
        d = _mm256_mul_ps(_mm256_set1_ps(k->r), _mm256_sub_ps(_mm256_sub_ps(dxh, _mm256_set1_ps(k->a)),
                                                              _mm256_mul_ps(xh, _mm256_set1_ps(k->bb))));
    else
        d = _mm256_mul_ps(dxh, _mm256_set1_ps(k->r));
    if (acc) d = _mm256_add_ps(ip_load8(dx, nl), d);
    ip_store8(dx, nl, d);
}
#endif

/* dx over n contiguous values from a dense dout. */
static void tail_bwd_dense(float *dx, int acc, const float *dout, const float *x, size_t n, const tail_k *k) {
    size_t i = 0;
#if defined(__AVX512F__)
    for (; i < n; i += 16) {
        __mmask16 l = ip_lanes((int)(n - i));
        tail_dx16(dx + i, l, acc, _mm512_maskz_loadu_ps(l, dout + i), _mm512_maskz_loadu_ps(l, x + i), k);
    }
#elif defined(__AVX2__)
    for (; i < n; i += 8) {
        const int nl = n - i < 8 ? (int)(n - i) : 8;
        tail_dx8(dx + i, nl, acc, ip_load8(dout + i, nl), ip_load8(x + i, nl), k);
    }
#endif
    if (i < n) tail_dx_dense(dx + i, acc, dout + i, x + i, n - i, k);
}

/* dx of one plane xp (H x W) from its pooled gradient dp and argmax ap (H/2 x W/2). */
static void tail_bwd_plane_pooled(float *dxp, int acc, const float *dp, const uint32_t *ap, const float *xp,
                                  const tail_k *k, const ip_norm_tail_shape *s) {
    const size_t H = (size_t)s->h, W = (size_t)s->w, oh = H / 2, ow = W / 2;
    for (size_t oy = 0; oy < oh; oy++) {
        const float *x0 = xp + 2 * oy * W, *x1 = x0 + W;
        float *d0 = dxp + 2 * oy * W, *d1 = d0 + W;
#if defined(__AVX512F__)
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        for (size_t cx = 0; cx < W; cx += 32) {
            int cnt = W - cx < 32 ? (int)(W - cx) : 32;
            __mmask16 lo = ip_lanes(cnt), hi = ip_lanes(cnt - 16);
            int nout = (int)(ow - cx / 2 < 16 ? ow - cx / 2 : 16);
            __m512 g0lo = _mm512_setzero_ps(), g0hi = g0lo, g1lo = g0lo, g1hi = g0lo;
            if (nout > 0) {
                __mmask16 om = ip_lanes(nout);
                __m512 dq = _mm512_maskz_loadu_ps(om, dp + oy * ow + cx / 2);
                __m512i rel = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(om, ap + oy * ow + cx / 2),
                                               _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oy * W + cx)), even));
                __m512 e0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_setzero_si512()), dq);
                __m512 o0 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32(1)), dq);
                __m512 e1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32((int)W)), dq);
                __m512 o1 = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(rel, _mm512_set1_epi32((int)W + 1)), dq);
                ip_interleave(e0, o0, &g0lo, &g0hi);
                ip_interleave(e1, o1, &g1lo, &g1hi);
            }
            tail_dx16(d0 + cx, lo, acc, g0lo, _mm512_maskz_loadu_ps(lo, x0 + cx), k);
            tail_dx16(d0 + cx + 16, hi, acc, g0hi, _mm512_maskz_loadu_ps(hi, x0 + cx + 16), k);
            tail_dx16(d1 + cx, lo, acc, g1lo, _mm512_maskz_loadu_ps(lo, x1 + cx), k);
            tail_dx16(d1 + cx + 16, hi, acc, g1hi, _mm512_maskz_loadu_ps(hi, x1 + cx + 16), k);
        }
#elif defined(__AVX2__)
        const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
        for (size_t cx = 0; cx < W; cx += 16) {
            int cnt = W - cx < 16 ? (int)(W - cx) : 16;
            int nout = (int)(ow - cx / 2 < 8 ? ow - cx / 2 : 8);
            __m256 g0lo = _mm256_setzero_ps(), g0hi = g0lo, g1lo = g0lo, g1hi = g0lo;
            if (nout > 0) {
                __m256 dq = ip_load8(dp + oy * ow + cx / 2, nout);
                __m256i rel = _mm256_sub_epi32(ip_load8i(ap + oy * ow + cx / 2, nout),
                                               _mm256_add_epi32(_mm256_set1_epi32((int)(2 * oy * W + cx)), even));
                /* masked-off lanes: dq is 0 whatever rel says */
#define IP_AT(off) _mm256_and_ps(dq, _mm256_castsi256_ps(_mm256_cmpeq_epi32(rel, _mm256_set1_epi32(off))))
                __m256 e0 = IP_AT(0), o0 = IP_AT(1), e1 = IP_AT((int)W), o1 = IP_AT((int)W + 1);
#undef IP_AT
                ip_interleave8(e0, o0, &g0lo, &g0hi);
                ip_interleave8(e1, o1, &g1lo, &g1hi);
            }
            tail_dx8(d0 + cx, cnt, acc, g0lo, ip_load8(x0 + cx, cnt), k);
            if (cnt > 8) tail_dx8(d0 + cx + 8, cnt - 8, acc, g0hi, ip_load8(x0 + cx + 8, cnt - 8), k);
            tail_dx8(d1 + cx, cnt, acc, g1lo, ip_load8(x1 + cx, cnt), k);
            if (cnt > 8) tail_dx8(d1 + cx + 8, cnt - 8, acc, g1hi, ip_load8(x1 + cx + 8, cnt - 8), k);
        }
#else
        for (size_t cx = 0; cx < W; cx += 32) {
            size_t cnt = W - cx < 32 ? W - cx : 32, nout = ow > cx / 2 ? ow - cx / 2 : 0;
            float g0[32] = {0}, g1[32] = {0};
            if (nout > 16) nout = 16;
            for (size_t j = 0; j < nout; j++) {
                size_t q = oy * ow + cx / 2 + j, rel = ap[q] - (2 * oy * W + cx + 2 * j);
                if (rel < 2) g0[2 * j + rel] = dp[q];
                else g1[2 * j + rel - W] = dp[q];
            }
            tail_dx_dense(d0 + cx, acc, g0, x0 + cx, cnt, k);
            tail_dx_dense(d1 + cx, acc, g1, x1 + cx, cnt, k);
        }
#endif
    }
    if (H % 2) tail_dx_dense(dxp + (H - 1) * W, acc, NULL, xp + (H - 1) * W, W, k);
}

/* The gathers of tail_sums_pool are latency-bound on a cold plane: the next plane is prefetched. */
static void prefetch_plane(const float *x, size_t hw) {
#if defined(__AVX512F__) || defined(__AVX2__)
    for (size_t off = 0; off < hw; off += 16) _mm_prefetch((const char *)(x + off), _MM_HINT_T0);
#else
    (void)x, (void)hw;
#endif
}

/* Plane n of channel c's sums: *s1 += sum dz, *s2 += sum dz * xhat. */
static void plane_sums(const tail_job *j, size_t c, size_t n, const tail_k *k, double *s1, double *s2) {
    const ip_norm_tail_shape *s = j->s;
    const size_t HW = (size_t)s->h * s->w, M = (size_t)s->n * HW, ohw = (size_t)(s->h / 2) * (s->w / 2);
    const float *xp = j->x + c * M + n * HW;
    if (!s->pool) {
        tail_sums_dense(j->dout + c * M + n * HW, xp, HW, k, s1, s2);
        return;
    }
    if (n + 1 < (size_t)s->n) prefetch_plane(xp + HW, HW);
    size_t q = (c * (size_t)s->n + n) * ohw;
    tail_sums_pool(j->dout + q, j->cargmax + q, xp, ohw, k, s1, s2);
}

/* Plane n of channel c's dx. */
static void plane_dx(const tail_job *j, size_t c, size_t n, const tail_k *k) {
    const ip_norm_tail_shape *s = j->s;
    const size_t HW = (size_t)s->h * s->w, off = (c * (size_t)s->n + n) * HW;
    const size_t q = (c * (size_t)s->n + n) * (size_t)(s->h / 2) * (s->w / 2);
    if (s->pool) tail_bwd_plane_pooled(j->dx + off, j->accumulate, j->dout + q, j->cargmax + q, j->x + off, k, s);
    else tail_bwd_dense(j->dx + off, j->accumulate, j->dout + off, j->x + off, HW, k);
}

/* Batch norm: channels [c0, c1) whole, their sums then their dx. */
static void bn_bwd_range(void *p, size_t c0, size_t c1) {
    const tail_job *j = p;
    const ip_norm_tail_shape *s = j->s;
    const size_t N = (size_t)s->n, M = N * s->h * s->w;
    for (size_t c = c0; c < c1; c++) {
        tail_k k = {j->cmean[c], j->crstd[c], j->gamma[c], j->beta[c], 0.f, 0.f, s->relu, j->training};
        double s1 = 0, s2 = 0;
        /* the sums feed dgamma, dbeta and training's dx; an input gradient in eval mode needs none */
        if (j->dgamma || j->dbeta || j->training) {
            if (s->pool)
                for (size_t n = 0; n < N; n++) plane_sums(j, c, n, &k, &s1, &s2);
            else
                tail_sums_dense(j->dout + c * M, j->x + c * M, M, &k, &s1, &s2);
        }
        if (j->dgamma) j->dgamma[c] = (float)((double)j->dgamma[c] + s2);
        if (j->dbeta) j->dbeta[c] = (float)((double)j->dbeta[c] + s1);
        if (!j->dx) continue;
        if (j->training) { /* sum dxhat = g sum dz, sum dxhat * xhat = g sum dz * xhat */
            k.a = (float)((double)k.g * s1 / (double)M);
            k.bb = (float)((double)k.g * s2 / (double)M);
        }
        if (s->pool)
            for (size_t n = 0; n < N; n++) plane_dx(j, c, n, &k);
        else
            tail_bwd_dense(j->dx + c * M, j->accumulate, j->dout + c * M, j->x + c * M, M, &k);
    }
}

/* Group norm's constants of plane n of channel c: its (n, group)'s statistics, training's formula always
 * (group norm has no running statistics), a and bb from the workspace when dx is being written. */
static tail_k gn_plane_k(const tail_job *j, size_t c, size_t n, int with_dx) {
    const ip_norm_tail_shape *s = j->s;
    const size_t G = (size_t)s->groups, ng = n * G + c / ((size_t)s->c / G);
    tail_k k = {j->cmean[ng], j->crstd[ng], j->gamma[c], j->beta[c], 0.f, 0.f, s->relu, 1};
    if (with_dx) {
        const double *ab = j->work + 2 * (size_t)s->c * s->n + 2 * ng;
        k.a = (float)ab[0], k.bb = (float)ab[1];
    }
    return k;
}

/* Group norm, first pass: each plane's sums (work[2 (c N + n)] and the next: sum dz, sum dz * xhat), and
 * dgamma, dbeta. */
static void gn_sums_range(void *p, size_t c0, size_t c1) {
    const tail_job *j = p;
    const size_t N = (size_t)j->s->n;
    for (size_t c = c0; c < c1; c++) {
        double t1 = 0, t2 = 0;
        for (size_t n = 0; n < N; n++) {
            tail_k k = gn_plane_k(j, c, n, 0);
            double s1 = 0, s2 = 0;
            plane_sums(j, c, n, &k, &s1, &s2);
            j->work[2 * (c * N + n)] = s1, j->work[2 * (c * N + n) + 1] = s2;
            t1 += s1, t2 += s2;
        }
        if (j->dgamma) j->dgamma[c] = (float)((double)j->dgamma[c] + t2);
        if (j->dbeta) j->dbeta[c] = (float)((double)j->dbeta[c] + t1);
    }
}

/* Group norm, between the passes: per (sample n, group g) pairs [i0, i1), i = n G + g, the mean of dxhat
 * = gamma dz and of dxhat * xhat over the group's planes of sample n (norm_backward's a and b). */
static void gn_group_means(const tail_job *j) {
    const ip_norm_tail_shape *s = j->s;
    const size_t C = (size_t)s->c, N = (size_t)s->n, G = (size_t)s->groups, cpg = C / G;
    const double cnt = (double)(cpg * s->h * s->w);
    double *ab = j->work + 2 * C * N;
    for (size_t n = 0; n < N; n++)
        for (size_t g = 0; g < G; g++) {
            double sg = 0, sgx = 0;
            for (size_t c = g * cpg; c < (g + 1) * cpg; c++) {
                const double *pc = j->work + 2 * (c * N + n);
                sg += (double)j->gamma[c] * pc[0], sgx += (double)j->gamma[c] * pc[1];
            }
            ab[2 * (n * G + g)] = sg / cnt, ab[2 * (n * G + g) + 1] = sgx / cnt;
        }
}

/* Group norm, second pass: the dx of channels [c0, c1). */
static void gn_dx_range(void *p, size_t c0, size_t c1) {
    const tail_job *j = p;
    for (size_t c = c0; c < c1; c++)
        for (size_t n = 0; n < (size_t)j->s->n; n++) {
            tail_k k = gn_plane_k(j, c, n, 1);
            plane_dx(j, c, n, &k);
        }
}

size_t norm_tail_work_doubles(const ip_norm_tail_shape *s) {
    if (s->groups <= 0 || s->c <= 0 || s->n <= 0) return 0;
    return 2 * (size_t)s->c * (size_t)s->n + 2 * (size_t)s->n * (size_t)s->groups;
}

void norm_tail_backward(float *dx, int accumulate, float *dgamma, float *dbeta, const float *dout,
                        const uint32_t *argmax, const float *x, const float *mean, const float *rstd,
                        const float *gamma, const float *beta, const ip_norm_tail_shape *s, int training,
                        double *work) {
    if (s->c <= 0 || s->n <= 0 || s->h <= 0 || s->w <= 0) return;
    if (s->pool && (s->h < 2 || s->w < 2)) return;
    tail_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .work = work, .x = x, .gamma = gamma, .beta = beta,
                  .dout = dout, .cmean = mean, .crstd = rstd, .cargmax = argmax, .s = s, .training = training,
                  .accumulate = accumulate};
    size_t C = (size_t)s->c, M = (size_t)s->n * s->h * s->w;
    if (s->groups <= 0) {
        ip_par_for(C, C * M, bn_bwd_range, &j);
        return;
    }
    if (!dx && !dgamma && !dbeta) return;
    ip_par_for(C, C * M, gn_sums_range, &j);
    if (!dx) return;
    gn_group_means(&j);
    ip_par_for(C, C * M, gn_dx_range, &j);
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
