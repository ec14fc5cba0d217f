/* Direct 2-D convolution for layers with few input taps (Cin*KH*KW <= 32,
 * stride 1), e.g. the first conv of a network on 1- or 3-channel images.
 *
 * There im2col + SGEMM is a poor fit: K = Cin*KH*KW is 9 or 27, so the GEMM
 * streams a K-row col buffer and an output it first zeroes (beta = 0) for a
 * handful of multiply-adds per output. Here, per image row and vector-wide column
 * chunk, the K shifted input vectors are loaded once (zero padding through
 * load masks) and every output channel is K fused multiply-adds away; the
 * output is written once. The weight gradient keeps K accumulators per output
 * channel over all rows of one image, then adds them in double (fixed order).
 *
 * AVX-512 (16-float chunks) or AVX2 with FMA (8-float chunks): the same code
 * on a vector of DV floats (the dv_* wrappers below); conv2d_direct_applicable()
 * is 0 elsewhere. Work is split over images (forward) and output channels
 * (weight gradient): every output value is computed the same way for any
 * thread count. */
#include "layers.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../util/par.h"
#include "../util/simd.h"

#define DIRECT_MAX_K 32
#define DIRECT_WBLOCK 64 /* channels per block of the weight-gradient sums */
#define DIRECT_PAD_MAX (16 * 1024) /* floats: the zero-padded copy of one image (64 KB, L1/L2-resident) */

#if defined(__AVX512F__)
#define DIRECT_SIMD 1
#define DV 16
typedef __m512 dvec;
static inline dvec dv_zero(void) { return _mm512_setzero_ps(); }
static inline dvec dv_set1(float x) { return _mm512_set1_ps(x); }
static inline dvec dv_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline dvec dv_fmadd(dvec a, dvec b, dvec c) { return _mm512_fmadd_ps(a, b, c); }
/* the first n lanes (n >= DV: all) from / to p, 0 elsewhere */
static inline dvec dv_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(ip_lanes(n), p); }
static inline void dv_store_n(float *p, int n, dvec v) { _mm512_mask_storeu_ps(p, ip_lanes(n), v); }
static inline float dv_sum(dvec v) { return _mm512_reduce_add_ps(v); }
#elif defined(__AVX2__) && defined(__FMA__)
#define DIRECT_SIMD 1
#define DV 8
typedef __m256 dvec;
static inline dvec dv_zero(void) { return _mm256_setzero_ps(); }
static inline dvec dv_set1(float x) { return _mm256_set1_ps(x); }
static inline dvec dv_loadu(const float *p) { return _mm256_loadu_ps(p); }
static inline dvec dv_fmadd(dvec a, dvec b, dvec c) { return _mm256_fmadd_ps(a, b, c); }
static inline dvec dv_load_n(const float *p, int n) { return ip_load8(p, n); }
static inline void dv_store_n(float *p, int n, dvec v) { ip_store8(p, n, v); }
/* lanes summed pairwise in a fixed order: (0+4, 1+5, 2+6, 3+7), then (.+2), then (.+1) */
static inline float dv_sum(dvec v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}
#endif

int conv2d_direct_applicable(const ip_conv_shape *s) {
#if defined(DIRECT_SIMD)
    /* the reference setting keeps every conv on the double-sum kernels */
    if (s->algo == IP_CONV_REFERENCE || s->stride != 1 || ip_conv_k(s) > DIRECT_MAX_K) return 0;
    /* the padded copy of one image must fit the stack buffer */
    size_t pw = DV * (size_t)((s->ow + DV - 1) / DV) + (size_t)s->kw - 1;
    return (size_t)s->cin * ((size_t)s->h + 2 * (size_t)s->pad) * pw <= DIRECT_PAD_MAX && s->oh == s->h + 2 * s->pad - s->kh + 1;
#else
    (void)s;
    return 0;
#endif
}

#if defined(DIRECT_SIMD)

typedef struct {
    float *out, *dw;
    const float *in, *w, *dout;
    const ip_conv_shape *s;
} direct_job;

/* Each image is first copied into a zero-padded buffer: CIN planes of PH rows of PW
 * floats, PH = H + 2 pad, PW = DV * chunks + KW - 1 (every tap load of every column
 * chunk stays inside its row). Taps then are plain unaligned loads at
 * (oh + kh) * PW + ox0 + kw, and lanes past OW read finite zeros. */

static inline int pad_width(const ip_conv_shape *s) { return DV * ((s->ow + DV - 1) / DV) + s->kw - 1; }
static inline size_t pad_floats(const ip_conv_shape *s) {
    return (size_t)s->cin * (s->h + 2 * s->pad) * pad_width(s);
}

static void pad_image(float *restrict buf, const float *restrict in, const ip_conv_shape *s, size_t n) {
    const int H = s->h, W = s->w, P = s->pad, PH = H + 2 * P, PW = pad_width(s);
    const size_t hw = (size_t)H * W, cstride = (size_t)s->n * hw;
    memset(buf, 0, pad_floats(s) * sizeof(float));
    for (int ci = 0; ci < s->cin; ci++)
        for (int y = 0; y < H; y++) {
            int cols = W < PW - P ? W : PW - P; /* columns past the last chunk's reach are never read */
            memcpy(buf + ((size_t)ci * PH + y + P) * PW + P, in + ci * cstride + n * hw + (size_t)y * W,
                   (size_t)cols * sizeof(float));
        }
}

#define LOAD_TAPS(v, buf, oh, ox0, PH, PW, CIN, KH, KW)                                                         \
    do {                                                                                                       \
        _Pragma("GCC unroll 4") for (int ci_ = 0; ci_ < (CIN); ci_++)                                          \
        _Pragma("GCC unroll 8") for (int kh_ = 0; kh_ < (KH); kh_++) {                                         \
            const float *row_ = (buf) + ((size_t)ci_ * (PH) + (oh) + kh_) * (PW) + (ox0);                     \
            _Pragma("GCC unroll 8") for (int kw_ = 0; kw_ < (KW); kw_++)                                       \
                (v)[(ci_ * (KH) + kh_) * (KW) + kw_] = dv_loadu(row_ + kw_);                            \
        }                                                                                                      \
    } while (0)

/* Forward over images [n0, n1); CIN/KH/KW constants when inlined from a specialisation.
 * Per image and block of 8 output channels, the rows and column chunks run innermost,
 * so each channel's output plane is written as one sequential stream (the planes of one
 * image are N*OH*OW floats apart, often a multiple of 4 KB: interleaving stores to all
 * of them at once thrashes the L1 sets). */
static inline __attribute__((always_inline)) void fwd_images_t(const direct_job *j, size_t n0, size_t n1,
                                                                float *buf, const int CIN, const int KH,
                                                                const int KW) {
    const ip_conv_shape *s = j->s;
    const int K = CIN * KH * KW, OH = s->oh, OW = s->ow, CO = s->cout, PH = s->h + 2 * s->pad, PW = pad_width(s);
    const size_t ohow = (size_t)OH * OW, ostride = (size_t)s->n * ohow;
    const int nchunks = (OW + DV - 1) / DV;
    dvec v[DIRECT_MAX_K];
    for (size_t n = n0; n < n1; n++) {
        pad_image(buf, j->in, s, n);
        for (int co = 0; co < CO;) {
            const int cb = CO - co >= 8 ? 8 : CO - co >= 4 ? 4 : 1;
            const float *w0 = j->w + (size_t)co * K;
            float *o0 = j->out + (size_t)co * ostride + n * ohow;
            for (int oh = 0; oh < OH; oh++)
                for (int c = 0; c < nchunks; c++) {
                    const int ox0 = DV * c, on = OW - ox0;
                    LOAD_TAPS(v, buf, oh, ox0, PH, PW, CIN, KH, KW);
                    float *o = o0 + (size_t)oh * OW + ox0;
                    if (cb == 8) {
                        dvec a[8];
                        _Pragma("GCC unroll 8") for (int q = 0; q < 8; q++) a[q] = dv_zero();
                        _Pragma("GCC unroll 32") for (int k = 0; k < K; k++)
                            _Pragma("GCC unroll 8") for (int q = 0; q < 8; q++)
                                a[q] = dv_fmadd(dv_set1(w0[q * K + k]), v[k], a[q]);
                        _Pragma("GCC unroll 8") for (int q = 0; q < 8; q++)
                            dv_store_n(o + (size_t)q * ostride, on, a[q]);
                    } else if (cb == 4) {
                        dvec a[4];
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) a[q] = dv_zero();
                        _Pragma("GCC unroll 32") for (int k = 0; k < K; k++)
                            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                a[q] = dv_fmadd(dv_set1(w0[q * K + k]), v[k], a[q]);
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                            dv_store_n(o + (size_t)q * ostride, on, a[q]);
                    } else {
                        dvec a0 = dv_zero();
                        _Pragma("GCC unroll 32") for (int k = 0; k < K; k++)
                            a0 = dv_fmadd(dv_set1(w0[k]), v[k], a0);
                        dv_store_n(o, on, a0);
                    }
                }
            co += cb;
        }
    }
}

/* Weight gradient of output channels [c0, c1): image by image (n outer, so each
 * padded image is built once), two channels at a time with 2 K accumulators over the
 * image's rows, then added in double to per-channel totals. Per channel the order of
 * every addition is fixed: over images, then rows, then column chunks. */
static inline __attribute__((always_inline)) void bwd_weight_t(const direct_job *j, size_t c0, size_t c1,
                                                                float *buf, double *tot, const int CIN,
                                                                const int KH, const int KW) {
    const ip_conv_shape *s = j->s;
    const int K = CIN * KH * KW, OH = s->oh, OW = s->ow, PH = s->h + 2 * s->pad, PW = pad_width(s);
    const size_t ohow = (size_t)OH * OW, ostride = (size_t)s->n * ohow;
    const int nchunks = (OW + DV - 1) / DV;
    dvec v[DIRECT_MAX_K], a0[DIRECT_MAX_K], a1[DIRECT_MAX_K];
    memset(tot, 0, (c1 - c0) * (size_t)K * sizeof(double));
    for (int n = 0; n < s->n; n++) {
        pad_image(buf, j->in, s, (size_t)n);
        for (size_t co = c0; co < c1; co += 2) {
            const int two = co + 1 < c1;
            const float *d0 = j->dout + co * ostride + (size_t)n * ohow, *d1 = two ? d0 + ostride : d0;
            /* the next pair's gradient planes (short streams the hardware prefetcher is slow to pick up);
             * past the last pair: the first pair of the next image */
            const char *p0 = (const char *)(co + 3 < c1 ? d0 + 2 * ostride : j->dout + c0 * ostride + (size_t)(n + 1) * ohow);
            const char *p1 = p0 + (co + 3 < c1 || c0 + 1 < c1 ? ostride * sizeof(float) : 0);
            const size_t plane_bytes = ohow * sizeof(float);
            const int lines_per_row = (int)((plane_bytes + 64 * (size_t)OH - 1) / (64 * (size_t)OH));
            _Pragma("GCC unroll 32") for (int k = 0; k < K; k++) a0[k] = a1[k] = dv_zero();
            for (int oh = 0; oh < OH; oh++) {
                if (n + 1 < s->n || co + 3 < c1)
                    for (int l = 0; l < lines_per_row; l++) {
                        size_t off = (size_t)(oh * lines_per_row + l) * 64;
                        if (off < plane_bytes) {
                            _mm_prefetch(p0 + off, _MM_HINT_T0);
                            _mm_prefetch(p1 + off, _MM_HINT_T0);
                        }
                    }
                for (int c = 0; c < nchunks; c++) {
                    const int ox0 = DV * c;
                    dvec g0 = dv_load_n(d0 + (size_t)oh * OW + ox0, OW - ox0);
                    dvec g1 = dv_load_n(d1 + (size_t)oh * OW + ox0, OW - ox0);
                    LOAD_TAPS(v, buf, oh, ox0, PH, PW, CIN, KH, KW);
                    _Pragma("GCC unroll 32") for (int k = 0; k < K; k++) {
                        a0[k] = dv_fmadd(g0, v[k], a0[k]);
                        a1[k] = dv_fmadd(g1, v[k], a1[k]);
                    }
                }
            }
            double *t0 = tot + (co - c0) * (size_t)K;
            _Pragma("GCC unroll 32") for (int k = 0; k < K; k++) t0[k] += (double)dv_sum(a0[k]);
            if (two)
                _Pragma("GCC unroll 32") for (int k = 0; k < K; k++) t0[K + k] += (double)dv_sum(a1[k]);
        }
    }
    for (size_t co = c0; co < c1; co++) {
        float *dw = j->dw + co * (size_t)K;
        const double *t0 = tot + (co - c0) * (size_t)K;
        for (int k = 0; k < K; k++) dw[k] = (float)((double)dw[k] + t0[k]);
    }
}

/* Specialisations: 1 and 3 input channels with 3x3 kernels (first layers), generic otherwise. */
static void fwd_images(void *p, size_t n0, size_t n1) {
    const direct_job *j = p;
    const ip_conv_shape *s = j->s;
    float buf[DIRECT_PAD_MAX];
    if (s->cin == 1 && s->kh == 3 && s->kw == 3) fwd_images_t(j, n0, n1, buf, 1, 3, 3);
    else if (s->cin == 3 && s->kh == 3 && s->kw == 3) fwd_images_t(j, n0, n1, buf, 3, 3, 3);
    else fwd_images_t(j, n0, n1, buf, s->cin, s->kh, s->kw);
}

static void bwd_weight_channels(void *p, size_t c0, size_t c1) {
    const direct_job *j = p;
    const ip_conv_shape *s = j->s;
    float buf[DIRECT_PAD_MAX];
    /* per-channel sums in double, on the stack (no allocation in a training
     * step), for blocks of DIRECT_WBLOCK channels; each channel's sum runs
     * over the images in the same order whatever the blocking */
    double tot[DIRECT_WBLOCK * DIRECT_MAX_K];
    for (size_t b0 = c0; b0 < c1; b0 += DIRECT_WBLOCK) {
        size_t b1 = b0 + DIRECT_WBLOCK < c1 ? b0 + DIRECT_WBLOCK : c1;
        if (s->cin == 1 && s->kh == 3 && s->kw == 3) bwd_weight_t(j, b0, b1, buf, tot, 1, 3, 3);
        else if (s->cin == 3 && s->kh == 3 && s->kw == 3) bwd_weight_t(j, b0, b1, buf, tot, 3, 3, 3);
        else bwd_weight_t(j, b0, b1, buf, tot, s->cin, s->kh, s->kw);
    }
}

void conv2d_direct_forward(float *out, const float *in, const float *weight, const ip_conv_shape *s) {
    direct_job j = {.out = out, .in = in, .w = weight, .s = s};
    ip_par_for((size_t)s->n, (size_t)s->cout * s->n * s->oh * s->ow, fwd_images, &j);
}

void conv2d_direct_backward_weight(float *dweight, const float *dout, const float *in, const ip_conv_shape *s) {
    direct_job j = {.dw = dweight, .in = in, .dout = dout, .s = s};
    ip_par_for((size_t)s->cout, (size_t)s->cout * s->n * s->oh * s->ow, bwd_weight_channels, &j);
}

#else /* neither AVX-512 nor AVX2+FMA: never applicable; the reference keeps the symbols meaningful */

void conv2d_direct_forward(float *out, const float *in, const float *weight, const ip_conv_shape *s) {
    conv2d_forward_ref(out, in, weight, s);
}

void conv2d_direct_backward_weight(float *dweight, const float *dout, const float *in, const ip_conv_shape *s) {
    conv2d_backward_ref(NULL, dweight, dout, in, NULL, s);
}

#endif
