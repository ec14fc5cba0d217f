/* Winograd F(m x m, r x r) convolution, m = 2 or 4, r = 3 or 5 (see winograd.h).
 *
 * One generic routine, wino_conv(), computes
 *     y (Co, N, OH, OW)  =/+=  conv(x (Ci, N, IH, IW); kernel, pad)
 * where the kernel of (output o, input i) is either weight[o][i] (forward) or
 * weight[i][o] rotated by 180 degrees (input gradient: Co = Cin, Ci = Cout,
 * x = dout, pad r-1-p, and y is accumulated into). With a = m + r - 1 and
 * xi = i*a + j indexing the a x a transformed tile, per chunk of nb images
 * holding P = nb * TH * TW output tiles:
 *   U[co][xi][ci]  kernel transform G g G^T, indexed by the ORIGINAL weight's
 *                  (co, ci) in both directions (the input gradient reads U[xi]
 *                  transposed in the GEMM); redone at every call;
 *   V[c][xi][p]    input transform B^T d B of the tiles of input channel c;
 *   M[o][xi][p]    a^2 SGEMMs M[xi] (Co x P) = U[xi] (or U[xi]^T) x V[xi] (Ci x P),
 *                  each matrix strided by a^2 P (or a^2 Cin) so that every
 *                  channel's transformed data is one contiguous block;
 *   y tile = A^T M A, cropped at the right/bottom edges.
 * wino_dweight() runs the adjoint of the forward algorithm on the same tile
 * grid and buffers: V as in the forward pass, M[o][xi][p] = A dY A^T of the
 * zero-extended dout tiles, dU[xi] (Cout x Cin) (+)= M[xi] V[xi]^T summed over
 * the chunks in the U buffer, and finally dweight += G^T dU G.
 * Tiles are numbered p = (th * TW + tw) * nb + b (tile row, tile column, image):
 * see "batch transposes" below for why the image is innermost. The transforms
 * are separable (a 1-D transform down the columns, then along the rows) and
 * run over TW * nb contiguous floats at a time. */
#include "winograd.h"

#include <cblas.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <string.h>

#include "gemm.h"
#include "winograd_tf.h"
#include "../util/par.h"

/* Default bound, in floats, on V + M of one chunk (32 MB). */
#define WINO_DEFAULT_CHUNK_LIMIT ((size_t)8 << 20)
/* Input channels per block of the kernel transform. */
#define WINO_WBLOCK 256
/* Largest transformed tile side (F(4x4, 5x5)) and kernel side. */
#define WINO_AMAX 8
#define WINO_RMAX 5

static size_t wino_chunk_limit = WINO_DEFAULT_CHUNK_LIMIT;
static int wino_forced_tile = 0;

void ip_winograd_set_chunk_limit(size_t floats) {
    wino_chunk_limit = floats ? floats : WINO_DEFAULT_CHUNK_LIMIT;
}

void ip_winograd_force_tile(int m) { wino_forced_tile = (m == 2 || m == 4) ? m : 0; }

int ip_winograd_applicable(const ip_conv_shape *s) {
    if (!s || s->kh != s->kw || (s->kh != 3 && s->kh != 5) || s->stride != 1) return 0;
    return s->pad >= 0 && s->pad <= s->kh - 1 && s->oh > 0 && s->ow > 0;
}

/* Multiplies per (Cout, Cin) pair and image of F(m x m, r x r), forward and
 * input gradient: a^2 per m x m tile of the forward output (OH x OW) and of
 * the input gradient (H x W). F(4x4) needs fewer per output (36/16 vs 16/4 for
 * 3x3, 64/16 vs 36/4 for 5x5) but wastes more on partial edge tiles; it only
 * loses on tiny planes (2x2, 3x3 ...). */
static size_t tile_cost(const ip_conv_shape *s, int m) {
    size_t fwd = (size_t)((s->oh + m - 1) / m) * (size_t)((s->ow + m - 1) / m);
    size_t bwd = (size_t)((s->h + m - 1) / m) * (size_t)((s->w + m - 1) / m);
    size_t a = (size_t)(m + s->kh - 1);
    return a * a * (fwd + bwd);
}

int ip_winograd_tile(const ip_conv_shape *s) {
    if (wino_forced_tile) return wino_forced_tile;
    if (s->algo == IP_CONV_PRECISE) return 2;
    return tile_cost(s, 4) <= tile_cost(s, 2) ? 4 : 2;
}

/* The 1-D transforms of each algorithm (wino_alg): winograd_tf.c. */

/* ---------------- plan: one direction of one shape ---------------- */
typedef struct wino_plan {
    const wino_alg *alg;
    int m, r, a;
    int n;
    int ci, co;       /* channels of x and y */
    int ih, iw;       /* x plane */
    int oh, ow;       /* y plane */
    int pad;
    int th, tw;       /* tile grid of y */
    int cpp;          /* padded x columns per phase (column mod m): TW + (a - 1) / m */
    int hp, wp;       /* padded x plane: hp = m*TH + r - 1 rows, wp = m*cpp columns */
    size_t t;         /* tiles per image */
    int nb;           /* images per chunk */
    int flip;         /* kernel (o, i) = weight[i][o] rotated 180 degrees */
    int wcout, wcin;  /* weight tensor (wcout, wcin, r, r) */
    size_t u_len, v_len, m_len, scratch_len; /* workspace sections, floats */
} wino_plan;

static size_t round16(size_t x) { return (x + 15) & ~(size_t)15; }

/* The index maps live in the float scratch. */
_Static_assert(sizeof(int) == sizeof(float), "int and float must have the same size");

/* The per-channel transforms (input, output, dout) run in parallel over
 * WINO_SLOTS fixed slots of channels, each with its own scratch; a channel's
 * transform is the same arithmetic whichever slot or thread runs it, so the
 * bits do not depend on the thread count. 4 slots keep 2-4 threads busy; the
 * scratch of a slot is small next to V and M (stage 1 of resnet18-p: 0.4 MB). */
#define WINO_SLOTS 4

/* Floats of one slot's scratch: Xt + T (input) or S + Yt (output; the dout
 * transform uses the same two sizes). */
static size_t slot_in(const wino_plan *p, size_t nb) {
    const size_t a = (size_t)p->a, L = (size_t)p->tw * nb;
    return round16((size_t)p->hp * p->wp * nb) + round16(a * a * L);
}
static size_t slot_out(const wino_plan *p, size_t nb) {
    const size_t a = (size_t)p->a, m = (size_t)p->m, L = (size_t)p->tw * nb;
    return round16(m * a * L) + round16(m * p->th * m * L);
}

/* Scratch of the per-channel transforms for a chunk of nb images (floats). */
static size_t plan_scratch(const wino_plan *p, size_t nb) {
    const size_t a = (size_t)p->a, r = (size_t)p->r;
    /* map (ints, shared) + the slots' Xt + T  |  map + the slots' S + Yt  |  kernel blocks */
    size_t sin = round16((size_t)p->ih * p->iw) + WINO_SLOTS * slot_in(p, nb);
    size_t sout = round16((size_t)p->oh * p->ow) + WINO_SLOTS * slot_out(p, nb);
    size_t sw = (r * r + r * a) * WINO_WBLOCK;
    size_t sc = sin > sout ? sin : sout;
    return sc > sw ? sc : sw;
}

/* Channels [c0, c1) of slot k of WINO_SLOTS over c channels. */
static void slot_range(int c, size_t k, int *c0, int *c1) {
    *c0 = (int)((size_t)c * k / WINO_SLOTS), *c1 = (int)((size_t)c * (k + 1) / WINO_SLOTS);
}

/* backward = 0: forward (and weight gradient), 1: input gradient. */
static void plan_init(wino_plan *p, const ip_conv_shape *s, int backward, int for_workspace) {
    const int m = ip_winograd_tile(s), r = s->kh;
    p->alg = r == 5 ? (m == 4 ? &wino_f45 : &wino_f25) : (m == 4 ? &wino_f43 : &wino_f23);
    p->m = p->alg->m, p->r = p->alg->r, p->a = p->alg->a;
    p->n = s->n;
    p->flip = backward;
    p->wcout = s->cout, p->wcin = s->cin;
    if (!backward) {
        p->ci = s->cin, p->co = s->cout;
        p->ih = s->h, p->iw = s->w, p->oh = s->oh, p->ow = s->ow;
        p->pad = s->pad;
    } else {
        p->ci = s->cout, p->co = s->cin;
        p->ih = s->oh, p->iw = s->ow, p->oh = s->h, p->ow = s->w;
        p->pad = r - 1 - s->pad;
    }
    p->th = (p->oh + p->m - 1) / p->m;
    p->tw = (p->ow + p->m - 1) / p->m;
    p->cpp = p->tw + (p->a - 1) / p->m;
    p->hp = p->m * p->th + r - 1;
    p->wp = p->m * p->cpp;
    p->t = (size_t)p->th * p->tw;
    const size_t a2 = (size_t)p->a * p->a;
    size_t per_image = a2 * ((size_t)p->ci + p->co) * p->t;
    size_t maxc = wino_chunk_limit / per_image, n = (size_t)p->n;
    if (maxc < 1) maxc = 1;
    if (maxc > n) maxc = n;
    size_t nchunks = (n + maxc - 1) / maxc;
    /* the workspace is planned once for the largest batch, and a smaller
     * batch's balanced chunk can be larger than the planned batch's (200 in
     * 2 x 100 vs 256 in 3 x 86), so plan the workspace for the unbalanced
     * maximum; running balances the chunks */
    p->nb = (int)(for_workspace ? maxc : (n + nchunks - 1) / nchunks);
    size_t P = (size_t)p->nb * p->t;
    p->u_len = round16(a2 * (size_t)p->wcout * p->wcin);
    p->v_len = round16(a2 * (size_t)p->ci * P);
    p->m_len = round16(a2 * (size_t)p->co * P);
    p->scratch_len = plan_scratch(p, (size_t)p->nb);
}

static size_t plan_work(const wino_plan *p) { return p->u_len + p->v_len + p->m_len + p->scratch_len; }

/* The weight gradient runs on the forward plan (same tile grid, U, V, M and
 * scratch sizes), so the max of the two directions covers all three. */
size_t ip_winograd_workspace_floats(const ip_conv_shape *s) {
    wino_plan f, b;
    plan_init(&f, s, 0, 1);
    plan_init(&b, s, 1, 1);
    size_t wf = plan_work(&f), wb = plan_work(&b);
    return wf > wb ? wf : wb;
}

/* 8x8 transpose of r[0..7] in place. */
#if defined(__AVX__)
static inline void transpose8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

/* g[k][q] = w[q][k] (flip: w[q][rr - 1 - k]) for q < nq, k < rr = r*r: a block of
 * r x r kernels transposed to one row per kernel entry (row stride WINO_WBLOCK). */
static void gather_kernel(float *restrict g, const float *restrict w, size_t nq, int rr, int flip) {
    size_t q = 0;
#if defined(__AVX__)
    for (; q + 8 <= nq; q += 8) {
        int k0 = 0;
        for (; k0 + 8 <= rr; k0 += 8) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(w + (q + i) * rr + k0);
            transpose8(r);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                _mm256_storeu_ps(g + (size_t)(flip ? rr - 1 - (k0 + k) : k0 + k) * WINO_WBLOCK + q, r[k]);
        }
        for (; k0 < rr; k0++) {
            float *gk = g + (size_t)(flip ? rr - 1 - k0 : k0) * WINO_WBLOCK + q;
            for (int i = 0; i < 8; i++) gk[i] = w[(q + i) * rr + k0];
        }
    }
#endif
    for (; q < nq; q++)
        for (int k = 0; k < rr; k++) g[(size_t)(flip ? rr - 1 - k : k) * WINO_WBLOCK + q] = w[q * rr + k];
}

/* ---------------- kernel transform ----------------
 * U[co][xi][ci] = (G g G^T)[xi] for the kernel g of weight pair (co, ci), xi = i * a + j:
 * U[xi] is the (Cout x Cin) matrix at U + xi * Cin with leading dimension a^2 * Cin.
 * Processed in blocks of up to WINO_WBLOCK input channels of one output channel. */
static void transform_kernel(float *restrict u, const float *restrict weight, float *restrict scratch,
                             const wino_plan *p) {
    const int a = p->a, r = p->r, rr = r * r, cin = p->wcin;
    const size_t a2 = (size_t)a * a;
    float *g = scratch, *gt = scratch + (size_t)rr * WINO_WBLOCK;
    for (int co = 0; co < p->wcout; co++)
        for (int c0 = 0; c0 < cin; c0 += WINO_WBLOCK) {
            const size_t nq = (size_t)(cin - c0 < WINO_WBLOCK ? cin - c0 : WINO_WBLOCK);
            gather_kernel(g, weight + ((size_t)co * cin + c0) * rr, nq, rr, p->flip);
            /* down the kernel columns: gt[i][kw][q] = sum_kh G[i][kh] g[kh][kw][q] */
            for (int kw = 0; kw < r; kw++) {
                const float *src[WINO_RMAX];
                for (int kh = 0; kh < r; kh++) src[kh] = g + (size_t)(kh * r + kw) * WINO_WBLOCK;
                p->alg->g(gt + (size_t)kw * WINO_WBLOCK, (size_t)r * WINO_WBLOCK, src, nq);
            }
            /* along the rows: U[co][i*a + j][ci] = sum_kw G[j][kw] gt[i][kw][q] */
            float *uc = u + (size_t)co * a2 * cin + c0;
            for (int i = 0; i < a; i++) {
                const float *src[WINO_RMAX];
                for (int kw = 0; kw < r; kw++) src[kw] = gt + (size_t)(i * r + kw) * WINO_WBLOCK;
                p->alg->g(uc + (size_t)i * a * cin, (size_t)cin, src, nq);
            }
        }
}

/* ---------------- inverse kernel transform (weight gradient) ----------------
 * dweight[co][ci] += G^T dU[co][.][ci] G, dU laid out like U. */
static void inverse_kernel(float *restrict dw, const float *restrict du, float *restrict scratch,
                           const wino_plan *p) {
    const int a = p->a, r = p->r, rr = r * r, cin = p->wcin;
    const size_t a2 = (size_t)a * a;
    float *t = scratch, *g = scratch + (size_t)r * a * WINO_WBLOCK;
    for (int co = 0; co < p->wcout; co++)
        for (int c0 = 0; c0 < cin; c0 += WINO_WBLOCK) {
            const size_t nq = (size_t)(cin - c0 < WINO_WBLOCK ? cin - c0 : WINO_WBLOCK);
            const float *uc = du + (size_t)co * a2 * cin + c0;
            /* down the columns: t[k][j] = sum_i G[i][k] dU[i][j] */
            for (int j = 0; j < a; j++) {
                const float *src[WINO_AMAX];
                for (int i = 0; i < a; i++) src[i] = uc + (size_t)(i * a + j) * cin;
                p->alg->gt(t + (size_t)j * WINO_WBLOCK, (size_t)a * WINO_WBLOCK, src, nq);
            }
            /* along the rows: g[k][l] = sum_j G[j][l] t[k][j] */
            for (int k = 0; k < r; k++) {
                const float *src[WINO_AMAX];
                for (int j = 0; j < a; j++) src[j] = t + (size_t)(k * a + j) * WINO_WBLOCK;
                p->alg->gt(g + (size_t)k * r * WINO_WBLOCK, WINO_WBLOCK, src, nq);
            }
            float *dwc = dw + ((size_t)co * cin + c0) * rr;
            for (size_t q = 0; q < nq; q++)
                for (int e = 0; e < rr; e++) dwc[q * rr + e] += g[(size_t)e * WINO_WBLOCK + q];
        }
}

/* ---------------- batch transposes ----------------
 * The transforms work on tiles numbered p = (th * TW + tw) * nb + b inside a
 * chunk of nb images: the image index is innermost, so every transform loop
 * runs over TW * nb contiguous values whatever the plane size (8x8 planes
 * have only 4 tiles per row). Planes enter and leave that layout through
 * (pixels x images) transposes, 8x8 blocks at a time when AVX is available. */

/* xt[map[k] + b] = x[b * plane + k] for pixels k < npix and images b < nb. */
static void transpose_in(float *restrict xt, const float *restrict x, size_t plane, int npix, int nb,
                         const int *restrict map) {
    int b0 = 0;
#if defined(__AVX__)
    for (; b0 + 8 <= nb; b0 += 8) {
        const float *src = x + (size_t)b0 * plane;
        int k0 = 0;
        for (; k0 + 8 <= npix; k0 += 8) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + (size_t)i * plane + k0);
            transpose8(r);
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(xt + map[k0 + k] + b0, r[k]);
        }
        for (; k0 < npix; k0++)
            for (int i = 0; i < 8; i++) xt[map[k0] + b0 + i] = src[(size_t)i * plane + k0];
    }
#endif
    for (; b0 < nb; b0++)
        for (int k = 0; k < npix; k++) xt[map[k] + b0] = x[(size_t)b0 * plane + k];
}

/* y[b * plane + k] (+)= yt[map[k] + b] for pixels k < npix and images b < nb. */
static void transpose_out(float *restrict y, const float *restrict yt, size_t plane, int npix, int nb,
                          const int *restrict map, int acc) {
    int b0 = 0;
#if defined(__AVX__)
    for (; b0 + 8 <= nb; b0 += 8) {
        float *dst = y + (size_t)b0 * plane;
        int k0 = 0;
        for (; k0 + 8 <= npix; k0 += 8) {
            __m256 r[8];
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) r[k] = _mm256_loadu_ps(yt + map[k0 + k] + b0);
            transpose8(r);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                float *d = dst + (size_t)i * plane + k0;
                _mm256_storeu_ps(d, acc ? _mm256_add_ps(_mm256_loadu_ps(d), r[i]) : r[i]);
            }
        }
        for (; k0 < npix; k0++)
            for (int i = 0; i < 8; i++) {
                float v = yt[map[k0] + b0 + i];
                dst[(size_t)i * plane + k0] = acc ? dst[(size_t)i * plane + k0] + v : v;
            }
    }
#endif
    for (; b0 < nb; b0++)
        for (int k = 0; k < npix; k++) {
            float v = yt[map[k] + b0];
            y[(size_t)b0 * plane + k] = acc ? y[(size_t)b0 * plane + k] + v : v;
        }
}

/* ---------------- input transform ----------------
 * Per channel, the chunk's zero-padded planes are transposed into
 *     Xt[hp][phi * cpp + k][b] = padded x[b][hp][m * k + phi]
 * (columns split by phase phi = column mod m), so that input tile element
 * (r, c) of tile row th, for all (tw, b), is the contiguous run of TW * nb
 * values at Xt[m * th + r][(c % m) * cpp + c / m][0]. */

/* Offset in Xt of padded column c. */
static inline size_t xt_col(const wino_plan *p, int c, int nb) {
    return ((size_t)(c % p->m) * p->cpp + (size_t)(c / p->m)) * nb;
}

static void input_map(int *restrict map, const wino_plan *p, int nb) {
    const size_t rowlen = (size_t)p->wp * nb;
    for (int h = 0; h < p->ih; h++)
        for (int w = 0; w < p->iw; w++)
            map[h * p->iw + w] = (int)((size_t)(h + p->pad) * rowlen + xt_col(p, w + p->pad, nb));
}

/* V[xi][(0..P)] at v (xi stride vs) for one channel of nb images at x. */
static void transform_input_channel(float *restrict v, size_t vs, const float *restrict x, int nb,
                                    float *restrict xt, float *restrict tt, const int *restrict map,
                                    const wino_plan *p) {
    const int m = p->m, a = p->a, TH = p->th, IH = p->ih, IW = p->iw, pad = p->pad, hp = p->hp, wp = p->wp;
    const size_t L = (size_t)p->tw * nb, rowlen = (size_t)wp * nb;

    /* zero padding rows and columns, then the transpose */
    memset(xt, 0, sizeof(float) * (size_t)pad * rowlen);
    memset(xt + (size_t)(pad + IH) * rowlen, 0, sizeof(float) * (size_t)(hp - pad - IH) * rowlen);
    for (int h = 0; h < IH; h++) {
        float *row = xt + (size_t)(h + pad) * rowlen;
        for (int c = 0; c < pad; c++) memset(row + xt_col(p, c, nb), 0, sizeof(float) * (size_t)nb);
        for (int c = pad + IW; c < wp; c++) memset(row + xt_col(p, c, nb), 0, sizeof(float) * (size_t)nb);
    }
    transpose_in(xt, x, (size_t)IH * IW, IH * IW, nb, map);

    for (int th = 0; th < TH; th++) {
        /* down the columns: T[i][c][(tw, b)] = sum_r B^T[i][r] d[r][c] */
        for (int c = 0; c < a; c++) {
            const float *src[WINO_AMAX];
            for (int r = 0; r < a; r++) src[r] = xt + (size_t)(m * th + r) * rowlen + xt_col(p, c, nb);
            p->alg->bt(tt + (size_t)c * L, (size_t)a * L, src, L);
        }
        /* along the rows: V[i*a + j][(th, tw, b)] = sum_c B^T[j][c] T[i][c] */
        for (int i = 0; i < a; i++) {
            const float *src[WINO_AMAX];
            for (int c = 0; c < a; c++) src[c] = tt + ((size_t)i * a + c) * L;
            p->alg->bt(v + (size_t)i * a * vs + (size_t)th * L, vs, src, L);
        }
    }
}

/* V[c][xi][p] for the ci channels of images [n0, n0 + nb) of x: channel c's
 * a^2 x P block is contiguous at v + c * a^2 P; V[xi] = (Ci x P), leading dim a^2 P. */
typedef struct {
    const wino_plan *p;
    float *v, *mm, *y, *scratch;
    const float *x, *dy;
    int n0, nb, acc;
    const ip_conv_tail *tail; /* forward only: the tail applied to each output channel, or NULL */
} chan_job;

static void input_slots(void *c, size_t k0, size_t k1) {
    const chan_job *j = c;
    const wino_plan *p = j->p;
    const size_t xplane = (size_t)p->ih * p->iw, P = (size_t)j->nb * p->t, ld = (size_t)p->a * p->a * P;
    const int *map = (const int *)j->scratch;
    for (size_t k = k0; k < k1; k++) {
        float *xt = j->scratch + round16(xplane) + k * slot_in(p, (size_t)j->nb);
        float *tt = xt + round16((size_t)p->hp * p->wp * j->nb);
        int c0, c1;
        slot_range(p->ci, k, &c0, &c1);
        for (int c = c0; c < c1; c++)
            transform_input_channel(j->v + (size_t)c * ld, P, j->x + ((size_t)c * p->n + j->n0) * xplane, j->nb, xt,
                                    tt, map, p);
    }
}

static void transform_input_chunk(float *v, const float *x, int n0, int nb, float *scratch, const wino_plan *p) {
    input_map((int *)scratch, p, nb);
    chan_job j = {.p = p, .v = v, .x = x, .scratch = scratch, .n0 = n0, .nb = nb};
    ip_par_for(WINO_SLOTS, (size_t)p->ci * p->n * p->ih * p->iw, input_slots, &j);
}

/* ---------------- output transform ----------------
 * Yt[oh][s][tw][b] = output (oh, m * tw + s) of image b, over the whole tile
 * grid (m*TH rows), then transposed into y with the edge tiles cropped. */
static void output_map(int *restrict map, const wino_plan *p, int nb) {
    const int m = p->m, TW = p->tw;
    for (int oh = 0; oh < p->oh; oh++)
        for (int ow = 0; ow < p->ow; ow++)
            map[oh * p->ow + ow] = (int)((((size_t)oh * m + ow % m) * TW + ow / m) * nb);
}

/* With a 2x2 pool: the map of pooled output (oy, ox) into Yt after tail_tiles
 * pooled it in place (pooled row oy in Yt row oy, its column ox = (m/2) tw + s2
 * in phase s2 < m/2 of tile column tw). */
static void pooled_map(int *restrict map, const wino_plan *p, int nb) {
    const int half = p->m / 2, TW = p->tw, ow = p->ow / 2;
    for (int oy = 0; oy < p->oh / 2; oy++)
        for (int ox = 0; ox < ow; ox++)
            map[oy * ow + ox] = (int)((((size_t)oy * p->m + ox % half) * TW + ox / half) * nb);
}

/* An inference pass's tail (conv2d_forward_tail) on output channel o's tiles Yt,
 * in place: bn_tail_apply on the rows inside the plane or, with a pool,
 * bn_tail_pool4 (bn_tail_of_pool4) of rows 2oy, 2oy+1 and phases 2 s2, 2 s2 + 1
 * into row oy, phase s2. Rows and phases ascend, so every value is read before
 * one is written over it: the run at row oy, phase s2 is read by pooled (oy/2,
 * s2/2), which comes no later than pooled (oy, s2), the one written over it.
 * A row's TW x nb values (images innermost) go in runs of one set: the whole
 * row without sets, else per tile column the images of each set. */
static void tail_tiles(float *yt, const wino_plan *p, int n0, int nb, const ip_conv_tail *t, int o) {
    const int m = p->m;
    const size_t L = (size_t)p->tw * nb;
    const float mu = t->mean ? t->mean[o] : 0.f, r = t->rstd ? t->rstd[o] : 1.f;
    const int sets = t->set_images > 0;
    for (int tw = 0; tw < (sets ? p->tw : 1); tw++)
        for (int b0 = 0; b0 < nb;) {
            const int set = sets ? (n0 + b0) / t->set_images : 0;
            const int b1 = sets && (set + 1) * t->set_images - n0 < nb ? (set + 1) * t->set_images - n0 : nb;
            const size_t off = sets ? (size_t)tw * nb + (size_t)b0 : 0, len = sets ? (size_t)(b1 - b0) : L;
            const float g = t->gamma[(size_t)set * t->set_stride + o], b = t->beta[(size_t)set * t->set_stride + o];
            b0 = b1;
            if (!t->pool) {
                for (size_t row = 0; row < (size_t)p->oh * m; row++)
                    bn_tail_apply(yt + row * L + off, yt + row * L + off, len, mu, r, g, b, t->relu);
                continue;
            }
            for (int oy = 0; oy < p->oh / 2; oy++)
                for (int s2 = 0; s2 < m / 2; s2++) {
                    float *d = yt + ((size_t)oy * m + s2) * L + off;
                    const float *r0 = yt + ((size_t)2 * oy * m + 2 * s2) * L + off, *r1 = r0 + (size_t)m * L;
                    if (t->pool_first) bn_tail_of_pool4(d, r0, r0 + L, r1, r1 + L, len, mu, r, g, b, t->relu);
                    else bn_tail_pool4(d, r0, r0 + L, r1, r1 + L, len, mu, r, g, b, t->relu);
                }
        }
}

/* y (channel o, nb images, planes of yplane) (+)= A^T M A for M[xi][(th, tw, b)] at mm
 * (xi stride ms), through the tail t (NULL: none; yplane is the pooled plane with a pool). */
static void transform_output_channel(float *restrict y, const float *restrict mm, size_t ms, int nb,
                                     float *restrict sm, float *restrict yt, const int *restrict map,
                                     size_t yplane, const wino_plan *p, int acc, const ip_conv_tail *t, int o,
                                     int n0) {
    const int m = p->m, a = p->a, TH = p->th;
    const size_t L = (size_t)p->tw * nb;
    for (int th = 0; th < TH; th++) {
        /* down the columns: S[r][j] = sum_i A^T[r][i] M[i*a + j] */
        for (int j = 0; j < a; j++) {
            const float *src[WINO_AMAX];
            for (int i = 0; i < a; i++) src[i] = mm + ((size_t)i * a + j) * ms + (size_t)th * L;
            p->alg->at(sm + (size_t)j * L, (size_t)a * L, src, L);
        }
        /* along the rows: Yt[m*th + r][s] = sum_j A^T[s][j] S[r][j] */
        for (int r = 0; r < m; r++) {
            const float *src[WINO_AMAX];
            for (int j = 0; j < a; j++) src[j] = sm + ((size_t)r * a + j) * L;
            p->alg->at(yt + (size_t)(m * th + r) * m * L, L, src, L);
        }
    }
    if (t) tail_tiles(yt, p, n0, nb, t, o);
    transpose_out(y, yt, yplane, (int)yplane, nb, map, acc);
}

/* ---------------- dout transform (weight gradient) ----------------
 * M[xi][(th, tw, b)] at mm (xi stride ms) = A dY A^T for the m x m tiles of
 * one channel of dout (nb images), zero beyond the plane: the adjoint of the
 * output transform. Same Yt layout as transform_output_channel. */
static void transform_dout_channel(float *restrict mm, size_t ms, const float *restrict dy, int nb,
                                   float *restrict tt, float *restrict yt, const int *restrict map,
                                   const wino_plan *p) {
    const int m = p->m, a = p->a, TH = p->th;
    const size_t L = (size_t)p->tw * nb;
    if (p->oh < m * TH || p->ow < m * p->tw) memset(yt, 0, sizeof(float) * (size_t)m * TH * m * L);
    transpose_in(yt, dy, (size_t)p->oh * p->ow, p->oh * p->ow, nb, map);
    for (int th = 0; th < TH; th++) {
        /* down the columns: T[i][s] = sum_r A[i][r] dY[m*th + r][s] */
        for (int s = 0; s < m; s++) {
            const float *src[WINO_AMAX];
            for (int r = 0; r < m; r++) src[r] = yt + ((size_t)(m * th + r) * m + s) * L;
            p->alg->ad(tt + (size_t)s * L, (size_t)m * L, src, L);
        }
        /* along the rows: M[i*a + j] = sum_s A[j][s] T[i][s] */
        for (int i = 0; i < a; i++) {
            const float *src[WINO_AMAX];
            for (int s = 0; s < m; s++) src[s] = tt + ((size_t)i * m + s) * L;
            p->alg->ad(mm + (size_t)i * a * ms + (size_t)th * L, ms, src, L);
        }
    }
}

/* The a^2 independent products of one chunk, one item per xi (each a whole
 * ip_sgemm, serial inside a loop body: the same blocks for any thread count). */
typedef struct {
    const wino_plan *p;
    float *u;
    const float *v;
    float *mm;
    size_t P, ld;
    float beta;
} xi_job;

static void xi_products(void *c, size_t x0, size_t x1) {
    const xi_job *j = c;
    const wino_plan *p = j->p;
    const int ci = p->ci, co = p->co;
    const size_t a2 = (size_t)p->a * p->a, P = j->P, ld = j->ld;
    for (size_t xi = x0; xi < x1; xi++) {
        if (!p->flip)
            ip_sgemm(CblasNoTrans, CblasNoTrans, co, (int)P, ci, 1.0f, j->u + xi * ci, (int)(a2 * ci), j->v + xi * P,
                     (int)ld, 0.0f, j->mm + xi * P, (int)ld);
        else /* U[xi] is stored (Ci x Co) here: the original (Cout x Cin) */
            ip_sgemm(CblasTrans, CblasNoTrans, co, (int)P, ci, 1.0f, j->u + xi * co, (int)(a2 * co), j->v + xi * P,
                     (int)ld, 0.0f, j->mm + xi * P, (int)ld);
    }
}

static void xi_weight_products(void *c, size_t x0, size_t x1) {
    const xi_job *j = c;
    const wino_plan *p = j->p;
    const int ci = p->ci, co = p->co;
    const size_t a2 = (size_t)p->a * p->a, P = j->P, ld = j->ld;
    for (size_t xi = x0; xi < x1; xi++)
        ip_sgemm(CblasNoTrans, CblasTrans, co, ci, (int)P, 1.0f, j->mm + xi * P, (int)ld, j->v + xi * P, (int)ld,
                 j->beta, j->u + xi * ci, (int)(a2 * ci));
}

/* Output channels of the slots [k0, k1): y (+)= A^T M A, or M' = A dY A^T (dout). */
static void out_slots(const chan_job *j, size_t k0, size_t k1, int dout) {
    const wino_plan *p = j->p;
    const size_t yplane = (size_t)p->oh * p->ow, P = (size_t)j->nb * p->t, ld = (size_t)p->a * p->a * P;
    const size_t oplane = j->tail && j->tail->pool ? (size_t)(p->oh / 2) * (p->ow / 2) : yplane; /* of y */
    const int *map = (const int *)j->scratch;
    for (size_t k = k0; k < k1; k++) {
        float *sm = j->scratch + round16(yplane) + k * slot_out(p, (size_t)j->nb);
        float *yt = sm + round16((size_t)p->m * p->a * p->tw * j->nb);
        int c0, c1;
        slot_range(p->co, k, &c0, &c1);
        for (int o = c0; o < c1; o++) {
            if (dout)
                transform_dout_channel(j->mm + (size_t)o * ld, P, j->dy + ((size_t)o * p->n + j->n0) * yplane, j->nb,
                                       sm, yt, map, p);
            else
                transform_output_channel(j->y + ((size_t)o * p->n + j->n0) * oplane, j->mm + (size_t)o * ld, P, j->nb,
                                         sm, yt, map, oplane, p, j->acc, j->tail, o, j->n0);
        }
    }
}
static void output_slots(void *c, size_t k0, size_t k1) { out_slots(c, k0, k1, 0); }
static void dout_slots(void *c, size_t k0, size_t k1) { out_slots(c, k0, k1, 1); }

/* ---------------- the generic convolution ----------------
 * tail: the forward's inference tail (conv2d_forward_tail), or NULL. */
static void wino_conv(float *y, const float *x, const float *weight, float *work, const wino_plan *p, int acc,
                      const ip_conv_tail *tail) {
    const int a = p->a, ci = p->ci, co = p->co;
    const size_t a2 = (size_t)a * a, t = p->t;
    const size_t yplane = (size_t)p->oh * p->ow;
    float *u = work, *v = u + p->u_len, *mm = v + p->v_len, *scratch = mm + p->m_len;

    transform_kernel(u, weight, scratch, p);
    for (int n0 = 0; n0 < p->n; n0 += p->nb) {
        const int nb = p->n - n0 < p->nb ? p->n - n0 : p->nb;
        const size_t P = (size_t)nb * t, ld = a2 * P;
        transform_input_chunk(v, x, n0, nb, scratch, p);
        /* M[o][xi][p] = sum_c U[xi](o, c) V[c][xi][p] */
        xi_job j = {p, u, v, mm, P, ld, 0.0f};
        ip_par_for(a2, (size_t)co * ci * P, xi_products, &j);
        if (tail && tail->pool) pooled_map((int *)scratch, p, nb);
        else output_map((int *)scratch, p, nb);
        chan_job oj = {.p = p, .mm = mm, .y = y, .scratch = scratch, .n0 = n0, .nb = nb, .acc = acc, .tail = tail};
        ip_par_for(WINO_SLOTS, (size_t)co * nb * yplane, output_slots, &oj);
    }
}

/* dweight += G^T (sum over chunks of M'[xi] V[xi]^T) G on the forward plan p. */
static void wino_dweight(float *dw, const float *dy, const float *x, float *work, const wino_plan *p) {
    const int a = p->a, ci = p->ci, co = p->co;
    const size_t a2 = (size_t)a * a, t = p->t;
    const size_t yplane = (size_t)p->oh * p->ow;
    float *du = work, *v = du + p->u_len, *mm = v + p->v_len, *scratch = mm + p->m_len;

    for (int n0 = 0; n0 < p->n; n0 += p->nb) {
        const int nb = p->n - n0 < p->nb ? p->n - n0 : p->nb;
        const size_t P = (size_t)nb * t, ld = a2 * P;
        transform_input_chunk(v, x, n0, nb, scratch, p);
        output_map((int *)scratch, p, nb);
        chan_job dj = {.p = p, .mm = mm, .dy = dy, .scratch = scratch, .n0 = n0, .nb = nb};
        ip_par_for(WINO_SLOTS, (size_t)co * nb * yplane, dout_slots, &dj);
        /* dU[xi](o, c) (+)= sum_p M'[o][xi][p] V[c][xi][p] */
        xi_job j = {p, du, v, mm, P, ld, n0 ? 1.0f : 0.0f};
        ip_par_for(a2, (size_t)co * ci * P, xi_weight_products, &j);
    }
    inverse_kernel(dw, du, scratch, p);
}

void winograd_forward(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s) {
    wino_plan p;
    plan_init(&p, s, 0, 0);
    wino_conv(out, in, weight, work, &p, 0, NULL);
}

void winograd_forward_tail(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s,
                           const ip_conv_tail *t) {
    wino_plan p;
    plan_init(&p, s, 0, 0);
    wino_conv(out, in, weight, work, &p, 0, t);
}

void winograd_backward_data(float *din, const float *dout, const float *weight, float *work,
                            const ip_conv_shape *s) {
    wino_plan p;
    plan_init(&p, s, 1, 0);
    wino_conv(din, dout, weight, work, &p, 1, NULL);
}

void winograd_backward_weight(float *dweight, const float *dout, const float *in, float *work,
                              const ip_conv_shape *s) {
    wino_plan p;
    plan_init(&p, s, 0, 0);
    wino_dweight(dweight, dout, in, work, &p);
}
