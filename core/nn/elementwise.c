/* Per-channel affine (+ReLU), residual add, ReLU, 2x2 max-pool, global average
 * pool and flatten.
 *
 * Loops are fixed-width blocks computed into a local array and then stored:
 * GCC's -O2 "very cheap" vectoriser only vectorises loops whose trip count is
 * a known multiple of the vector width and never versions for aliasing, so
 * this form vectorises at -O2 while staying correct when an output aliases an
 * input (affine and add allow out == x). Reductions keep VW independent
 * double accumulators (no reassociation needed, precise for long rows). */
#include "layers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "../util/par.h"
#include "../util/simd.h"

#define VW 16

/* ---------------- affine ---------------- */

static void affine_row(float *o, const float *x, float g, float b, size_t m, int relu) {
    size_t i = 0;
    if (relu) {
        for (; i + VW <= m; i += VW) {
            float t[VW];
            for (size_t j = 0; j < VW; j++) {
                float v = g * x[i + j] + b;
                t[j] = v < 0.f ? 0.f : v; /* NaN propagates, as in PyTorch */
            }
            for (size_t j = 0; j < VW; j++) o[i + j] = t[j];
        }
        for (; i < m; i++) {
            float v = g * x[i] + b;
            o[i] = v < 0.f ? 0.f : v;
        }
    } else {
        for (; i + VW <= m; i += VW) {
            float t[VW];
            for (size_t j = 0; j < VW; j++) t[j] = g * x[i + j] + b;
            for (size_t j = 0; j < VW; j++) o[i + j] = t[j];
        }
        for (; i < m; i++) o[i] = g * x[i] + b;
    }
}

typedef struct {
    float *out, *dx, *dgamma, *dbeta;
    const float *x, *dout, *aout, *gamma, *beta;
    size_t m;
    int relu;
} affine_job;

static void affine_fwd_range(void *p, size_t c0, size_t c1) {
    const affine_job *j = p;
    for (size_t ch = c0; ch < c1; ch++)
        affine_row(j->out + ch * j->m, j->x + ch * j->m, j->gamma[ch], j->beta[ch], j->m, j->relu);
}

void affine_forward(float *out, const float *x, const float *gamma, const float *beta, int c, size_t m,
                    int relu) {
    if (c <= 0) return;
    affine_job j = {.out = out, .x = x, .gamma = gamma, .beta = beta, .m = m, .relu = relu};
    ip_par_for((size_t)c, (size_t)c * m, affine_fwd_range, &j);
}

/* One channel row in one pass: dz = dout, masked by out > 0 when RELU;
 * when SUMS: *sdz += sum dz, *sdzx += sum dz * x; when DX: dx += dz * g.
 * Always inlined with constant flags, so each variant's block loop is
 * branch-free and keeps its accumulators in registers. */
static inline __attribute__((always_inline)) void affine_bwd_row(float *dx, const float *dout, const float *out,
                                                                 const float *x, float g, size_t m, double *sdz,
                                                                 double *sdzx, const int RELU, const int SUMS,
                                                                 const int DX) {
    double a[VW] = {0}, b[VW] = {0};
    size_t i = 0;
    for (; i + VW <= m; i += VW) {
        float t[VW];
        if (RELU)
            for (size_t j = 0; j < VW; j++) {
                float dv = dout[i + j], ov = out[i + j]; /* unconditional loads: if-convertible */
                t[j] = ov > 0.f ? dv : 0.f;
            }
        else
            for (size_t j = 0; j < VW; j++) t[j] = dout[i + j];
        if (SUMS)
            for (size_t j = 0; j < VW; j++) {
                a[j] += t[j];
                b[j] += (double)t[j] * (double)x[i + j];
            }
        if (DX)
            for (size_t j = 0; j < VW; j++) dx[i + j] += t[j] * g;
    }
    double t1 = 0, t2 = 0;
    for (; i < m; i++) {
        float dz = (!RELU || out[i] > 0.f) ? dout[i] : 0.f;
        if (SUMS) t1 += dz, t2 += (double)dz * (double)x[i];
        if (DX) dx[i] += dz * g;
    }
    if (SUMS) {
        for (size_t j = 0; j < VW; j++) t1 += a[j], t2 += b[j];
        *sdz += t1;
        *sdzx += t2;
    }
}

static void affine_bwd_range(void *p, size_t c0, size_t c1) {
    const affine_job *j = p;
    float *dx = j->dx, *dgamma = j->dgamma, *dbeta = j->dbeta;
    const size_t m = j->m;
    const int sums = dgamma || dbeta, relu = j->relu;
    for (size_t ch = c0; ch < c1; ch++) {
        size_t off = ch * m;
        double sdz = 0, sdzx = 0;
        float *d = dx ? dx + off : NULL, g = j->gamma[ch];
        const float *dz = j->dout + off, *o = relu ? j->aout + off : NULL;
        const float *xr = dgamma ? j->x + off : dz; /* x is only read for dgamma */
        if (relu) {
            if (sums && dx) affine_bwd_row(d, dz, o, xr, g, m, &sdz, &sdzx, 1, 1, 1);
            else if (sums) affine_bwd_row(d, dz, o, xr, g, m, &sdz, &sdzx, 1, 1, 0);
            else affine_bwd_row(d, dz, o, xr, g, m, &sdz, &sdzx, 1, 0, 1);
        } else {
            if (sums && dx) affine_bwd_row(d, dz, o, xr, g, m, &sdz, &sdzx, 0, 1, 1);
            else if (sums) affine_bwd_row(d, dz, o, xr, g, m, &sdz, &sdzx, 0, 1, 0);
            else affine_bwd_row(d, dz, o, xr, g, m, &sdz, &sdzx, 0, 0, 1);
        }
        if (dgamma) dgamma[ch] = (float)((double)dgamma[ch] + sdzx);
        if (dbeta) dbeta[ch] = (float)((double)dbeta[ch] + sdz);
    }
}

void affine_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *out,
                     const float *x, const float *gamma, int c, size_t m, int relu) {
    if ((!dgamma && !dbeta && !dx) || c <= 0) return;
    affine_job j = {.dx = dx, .dgamma = dgamma, .dbeta = dbeta, .x = x, .dout = dout, .aout = out, .gamma = gamma,
                    .m = m, .relu = relu};
    ip_par_for((size_t)c, (size_t)c * m, affine_bwd_range, &j);
}

void affine_forward_ref(float *out, const float *x, const float *gamma, const float *beta, int c,
                        size_t m, int relu) {
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < m; i++) {
            size_t k = (size_t)ch * m + i;
            float v = gamma[ch] * x[k] + beta[ch];
            if (relu && v < 0.f) v = 0.f;
            out[k] = v;
        }
}

void affine_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dout, const float *out,
                         const float *x, const float *gamma, int c, size_t m, int relu) {
    for (int ch = 0; ch < c; ch++) {
        double sg = 0, sb = 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = (size_t)ch * m + i;
            float dz = dout[k];
            if (relu && !(out[k] > 0.f)) dz = 0.f;
            if (dgamma) sg += (double)dz * x[k];
            sb += dz;
            if (dx) dx[k] += dz * gamma[ch];
        }
        if (dgamma) dgamma[ch] = (float)(dgamma[ch] + sg);
        if (dbeta) dbeta[ch] = (float)(dbeta[ch] + sb);
    }
}

/* ---------------- elementwise ---------------- */

static void add_forward_seg(float *out, const float *a, const float *b, size_t len, int relu) {
    size_t i = 0;
    if (relu) {
        for (; i + VW <= len; i += VW) {
            float t[VW];
            for (size_t j = 0; j < VW; j++) {
                float v = a[i + j] + b[i + j];
                t[j] = v < 0.f ? 0.f : v;
            }
            for (size_t j = 0; j < VW; j++) out[i + j] = t[j];
        }
        for (; i < len; i++) {
            float v = a[i] + b[i];
            out[i] = v < 0.f ? 0.f : v;
        }
    } else {
        for (; i + VW <= len; i += VW) {
            float t[VW];
            for (size_t j = 0; j < VW; j++) t[j] = a[i + j] + b[i + j];
            for (size_t j = 0; j < VW; j++) out[i + j] = t[j];
        }
        for (; i < len; i++) out[i] = a[i] + b[i];
    }
}

/* d[i] += dz[i], dz = dout masked by out > 0 when out is not NULL. */
static void acc_masked(float *d, const float *dout, const float *out, size_t len) {
    size_t i = 0;
    if (out) {
        for (; i + VW <= len; i += VW) {
            float t[VW];
            for (size_t j = 0; j < VW; j++) {
                float dv = dout[i + j], ov = out[i + j];
                t[j] = ov > 0.f ? dv : 0.f;
            }
            for (size_t j = 0; j < VW; j++) d[i + j] += t[j];
        }
        for (; i < len; i++) d[i] += out[i] > 0.f ? dout[i] : 0.f;
    } else {
        for (; i + VW <= len; i += VW) {
            float t[VW];
            for (size_t j = 0; j < VW; j++) t[j] = dout[i + j];
            for (size_t j = 0; j < VW; j++) d[i + j] += t[j];
        }
        for (; i < len; i++) d[i] += dout[i];
    }
}

/* da[i] += dz[i], db[i] += dz[i] in one pass. */
static void acc_masked2(float *da, float *db, const float *dout, const float *out, size_t len) {
    size_t i = 0;
    for (; i + VW <= len; i += VW) {
        float t[VW];
        if (out)
            for (size_t j = 0; j < VW; j++) {
                float dv = dout[i + j], ov = out[i + j];
                t[j] = ov > 0.f ? dv : 0.f;
            }
        else
            for (size_t j = 0; j < VW; j++) t[j] = dout[i + j];
        for (size_t j = 0; j < VW; j++) da[i + j] += t[j];
        for (size_t j = 0; j < VW; j++) db[i + j] += t[j];
    }
    for (; i < len; i++) {
        float dz = (!out || out[i] > 0.f) ? dout[i] : 0.f;
        da[i] += dz;
        db[i] += dz;
    }
}

static void add_backward_seg(float *da, float *db, const float *dout, const float *out, size_t len, int relu) {
    const float *mask = relu ? out : NULL;
    if (da && db && da != db) acc_masked2(da, db, dout, mask, len);
    else {
        if (da) acc_masked(da, dout, mask, len);
        if (db) acc_masked(db, dout, mask, len);
    }
}

/* The residual add runs in parallel over blocks of ADD_BLOCK floats (elementwise: any split gives the same bits). */
#define ADD_BLOCK 4096
typedef struct {
    float *out, *da, *db;
    const float *a, *b, *dout, *aout;
    size_t len;
    int relu;
} add_job;

static void add_fwd_range(void *p, size_t k0, size_t k1) {
    const add_job *j = p;
    size_t i0 = k0 * ADD_BLOCK, i1 = k1 * ADD_BLOCK < j->len ? k1 * ADD_BLOCK : j->len;
    add_forward_seg(j->out + i0, j->a + i0, j->b + i0, i1 - i0, j->relu);
}

static void add_bwd_range(void *p, size_t k0, size_t k1) {
    const add_job *j = p;
    size_t i0 = k0 * ADD_BLOCK, i1 = k1 * ADD_BLOCK < j->len ? k1 * ADD_BLOCK : j->len;
    add_backward_seg(j->da ? j->da + i0 : NULL, j->db ? j->db + i0 : NULL, j->dout + i0, j->aout ? j->aout + i0 : NULL,
                     i1 - i0, j->relu);
}

void add_forward(float *out, const float *a, const float *b, size_t len, int relu) {
    add_job j = {.out = out, .a = a, .b = b, .len = len, .relu = relu};
    ip_par_for((len + ADD_BLOCK - 1) / ADD_BLOCK, len, add_fwd_range, &j);
}

void add_backward(float *da, float *db, const float *dout, const float *out, size_t len, int relu) {
    if (!da && !db) return;
    add_job j = {.da = da, .db = db, .dout = dout, .aout = relu ? out : NULL, .len = len, .relu = relu};
    ip_par_for((len + ADD_BLOCK - 1) / ADD_BLOCK, len, add_bwd_range, &j);
}

void relu_forward(float *out, const float *x, size_t len) {
    size_t i = 0;
    for (; i + VW <= len; i += VW) {
        float t[VW];
        for (size_t j = 0; j < VW; j++) t[j] = x[i + j] < 0.f ? 0.f : x[i + j];
        for (size_t j = 0; j < VW; j++) out[i + j] = t[j];
    }
    for (; i < len; i++) out[i] = x[i] < 0.f ? 0.f : x[i];
}

void relu_backward(float *dx, const float *dout, const float *out, size_t len) {
    if (dx) acc_masked(dx, dout, out, len);
}

/* ---------------- max-pool 2x2 stride 2 ---------------- */

/* PyTorch's CPU rule, scanning the window in row-major order:
 * take v when v > max or v is NaN (so ties keep the first max, NaN propagates). */
#define POOL_TAKE(v, m) ((v) > (m) || (v) != (v))

/* One 2x2 window at column q of rows r0/r1, branch-free (random data would
 * mispredict every comparison) and if-convertible, so the block loop vectorises.
 * *k receives the offset of the max within the plane relative to r0[q]. */
static inline float pool4(const float *r0, const float *r1, size_t q, uint32_t w, uint32_t *k) {
    float v0 = r0[q], v1 = r0[q + 1], v2 = r1[q], v3 = r1[q + 1];
    float m = v0;
    uint32_t kk = 0;
    int c1 = (v1 > m) | (v1 != v1);
    m = c1 ? v1 : m, kk = c1 ? 1u : kk;
    int c2 = (v2 > m) | (v2 != v2);
    m = c2 ? v2 : m, kk = c2 ? w : kk;
    int c3 = (v3 > m) | (v3 != v3);
    m = c3 ? v3 : m, kk = c3 ? w + 1u : kk;
    *k = kk;
    return m;
}

#define PW 8 /* output block: pooled rows are often narrow (14, 7) */

/* Portable path: rows oy of planes [p0, p1). */
static void maxpool2_planes(float *out, uint32_t *argmax, const float *x, size_t p0, size_t p1, int h, int w) {
    size_t oh = (size_t)h / 2, ow = (size_t)w / 2, W = (size_t)w, plane_in = (size_t)h * W;
    for (size_t p = p0; p < p1; p++) {
        const float *xp = x + p * plane_in;
        for (size_t oy = 0; oy < oh; oy++) {
            const float *r0 = xp + 2 * oy * W, *r1 = r0 + W;
            float *o = out + (p * oh + oy) * ow;
            uint32_t base = (uint32_t)(2 * oy * W);
            uint32_t *am = argmax ? argmax + (p * oh + oy) * ow : NULL;
            size_t ox = 0;
#if defined(__AVX512F__)
            for (; ox < ow; ox += 16) {
                int nout = ow - ox < 16 ? (int)(ow - ox) : 16;
                __m512i k;
                __m512 m = ip_pool_chunk16(r0 + 2 * ox, r1 + 2 * ox, nout, base + (uint32_t)(2 * ox), (uint32_t)W, &k);
                __mmask16 om = (__mmask16)((1u << nout) - 1);
                _mm512_mask_storeu_ps(o + ox, om, m);
                if (am) _mm512_mask_storeu_epi32(am + ox, om, k);
            }
#elif defined(__AVX2__)
            for (; ox < ow; ox += 8) {
                int nout = ow - ox < 8 ? (int)(ow - ox) : 8;
                __m256i k;
                __m256 m = ip_pool_chunk8(r0 + 2 * ox, r1 + 2 * ox, nout, base + (uint32_t)(2 * ox), (uint32_t)W, &k);
                ip_store8(o + ox, nout, m);
                if (am) ip_store8i(am + ox, nout, k);
            }
#endif
            for (; ox + PW <= ow; ox += PW) {
                float m[PW];
                uint32_t k[PW];
                for (size_t j = 0; j < PW; j++) {
                    m[j] = pool4(r0, r1, 2 * (ox + j), (uint32_t)W, &k[j]);
                    k[j] += base + (uint32_t)(2 * (ox + j));
                }
                for (size_t j = 0; j < PW; j++) o[ox + j] = m[j];
                if (am)
                    for (size_t j = 0; j < PW; j++) am[ox + j] = k[j];
            }
            for (; ox < ow; ox++) {
                uint32_t k;
                o[ox] = pool4(r0, r1, 2 * ox, (uint32_t)W, &k);
                if (am) am[ox] = base + (uint32_t)(2 * ox) + k;
            }
        }
    }
}

typedef struct {
    float *out;
    uint32_t *argmax;
    const float *x;
    const uint32_t *cargmax;
    int h, w;
} pool_job;

static void pool_fwd_range(void *p, size_t p0, size_t p1) {
    const pool_job *j = p;
    maxpool2_planes(j->out, j->argmax, j->x, p0, p1, j->h, j->w);
}

void maxpool2_forward(float *out, uint32_t *argmax, const float *x, size_t planes, int h, int w) {
    if (h < 2 || w < 2) return;
    pool_job j = {.out = out, .argmax = argmax, .x = x, .h = h, .w = w};
    ip_par_for(planes, planes * (size_t)h * (size_t)w, pool_fwd_range, &j);
}

/* dx += scatter(dout) per plane; j->out is dx, j->x is dout */
static void pool_bwd_range(void *p, size_t p0, size_t p1) {
    const pool_job *j = p;
    size_t per = (size_t)(j->h / 2) * (size_t)(j->w / 2), plane_in = (size_t)j->h * (size_t)j->w;
    for (size_t q = p0; q < p1; q++) {
        float *dxp = j->out + q * plane_in;
        const float *d = j->x + q * per;
        const uint32_t *am = j->cargmax + q * per;
        for (size_t i = 0; i < per; i++) dxp[am[i]] += d[i];
    }
}

void maxpool2_backward(float *dx, const float *dout, const uint32_t *argmax, size_t planes, int h, int w) {
    if (!dx || h < 2 || w < 2) return;
    pool_job j = {.out = dx, .x = dout, .cargmax = argmax, .h = h, .w = w};
    ip_par_for(planes, planes * (size_t)(h / 2) * (size_t)(w / 2), pool_bwd_range, &j);
}

void maxpool2_forward_ref(float *out, const float *x, size_t planes, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (size_t p = 0; p < planes; p++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                float m = -INFINITY;
                int first = 1;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        float v = x[p * (size_t)h * w + (size_t)(2 * oy + dy) * w + (2 * ox + dx)];
                        if (first || POOL_TAKE(v, m)) m = v;
                        first = 0;
                    }
                out[(p * oh + oy) * ow + ox] = m;
            }
}

/* ---------------- global average pool ---------------- */

static double row_sum(const float *x, size_t n) {
    double a[VW] = {0};
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        for (size_t j = 0; j < VW; j++) a[j] += (double)x[i + j];
    double t = 0;
    for (; i < n; i++) t += (double)x[i];
    for (size_t j = 0; j < VW; j++) t += a[j];
    return t;
}

void gap_forward(float *out, const float *x, int c, int n, int hw) {
    if (c <= 0 || n <= 0 || hw <= 0) return;
    size_t C = (size_t)c, N = (size_t)n, HW = (size_t)hw;
    for (size_t ch = 0; ch < C; ch++)
        for (size_t s = 0; s < N; s++) out[s * C + ch] = (float)(row_sum(x + (ch * N + s) * HW, HW) / (double)HW);
}

/* d[i] += v. */
static void add_scalar(float *d, float v, size_t n) {
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        for (size_t j = 0; j < VW; j++) d[i + j] += v;
    for (; i < n; i++) d[i] += v;
}

void gap_backward(float *dx, const float *dout, int c, int n, int hw) {
    if (!dx || c <= 0 || n <= 0 || hw <= 0) return;
    size_t C = (size_t)c, N = (size_t)n, HW = (size_t)hw;
    for (size_t ch = 0; ch < C; ch++)
        for (size_t s = 0; s < N; s++) add_scalar(dx + (ch * N + s) * HW, dout[s * C + ch] / (float)hw, HW);
}

/* ---------------- flatten (C, N, HW) -> (N, C*HW) ---------------- */

void flatten_forward(float *out, const float *x, int c, int n, int hw) {
    if (c <= 0 || n <= 0 || hw <= 0) return;
    size_t C = (size_t)c, N = (size_t)n, HW = (size_t)hw;
    for (size_t ch = 0; ch < C; ch++)
        for (size_t s = 0; s < N; s++) memcpy(out + s * C * HW + ch * HW, x + (ch * N + s) * HW, HW * sizeof(float));
}

void flatten_backward(float *dx, const float *dout, int c, int n, int hw) {
    if (!dx || c <= 0 || n <= 0 || hw <= 0) return;
    size_t C = (size_t)c, N = (size_t)n, HW = (size_t)hw;
    for (size_t ch = 0; ch < C; ch++)
        for (size_t s = 0; s < N; s++) acc_masked(dx + (ch * N + s) * HW, dout + s * C * HW + ch * HW, NULL, HW);
}
