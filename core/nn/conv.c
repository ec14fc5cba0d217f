/* conv2d on CNHW activations: im2col + one OpenBLAS SGEMM per chunk of images.
 *
 * col(K, cols) for a chunk of nb images: row k = (ci, kh, kw), column
 * j = b*OH*OW + oh*OW + ow, entry in[ci][n0+b][oh*stride-pad+kh][ow*stride-pad+kw]
 * (0 outside the image). Because CNHW keeps a channel's batch contiguous, the
 * chunk's output columns are the contiguous range [n0*OH*OW, (n0+nb)*OH*OW) of
 * every output row, so the GEMM writes straight into `out` with ldc = N*OH*OW.
 *
 * The workspace is a single col buffer; backward reuses it: im2col -> dW GEMM
 * (reads col) -> dcol GEMM (overwrites it) -> col2im (+= into din). */
#include <cblas.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "layers.h"
#include "../util/par.h"
#include "winograd.h"

/* Upper bound on the im2col buffer, in floats (16 MB), unless one image alone
 * needs more. Overridable at compile time for tuning experiments. */
#ifndef IP_CONV_COL_LIMIT
#define IP_CONV_COL_LIMIT ((size_t)4 << 20)
#endif

int ip_conv_shape_init(ip_conv_shape *s, int n, int cin, int h, int w, int cout, int kh, int kw,
                       int stride, int pad) {
    if (!s) return -1;
    s->n = n, s->cin = cin, s->h = h, s->w = w;
    s->cout = cout, s->kh = kh, s->kw = kw;
    s->stride = stride, s->pad = pad;
    s->oh = s->ow = 0;
    s->algo = IP_CONV_FAST;
    if (n <= 0 || cin <= 0 || h <= 0 || w <= 0 || cout <= 0 || kh <= 0 || kw <= 0 || stride < 1 ||
        pad < 0)
        return -1;
    long long ph = (long long)h + 2LL * pad, pw = (long long)w + 2LL * pad;
    if (ph < kh || pw < kw) return -1; /* empty output */
    long long oh = (ph - kh) / stride + 1, ow = (pw - kw) / stride + 1;
    /* BLAS dimensions and leading dimensions are int. */
    long long k = (long long)cin * kh * kw;
    if (oh > INT_MAX || ow > INT_MAX || k > INT_MAX || (long long)n * oh * ow > INT_MAX ||
        (long long)n * h * w > INT_MAX)
        return -1;
    s->oh = (int)oh, s->ow = (int)ow;
    return 0;
}

static const char *const conv_algo_names[] = {"fast", "precise", "gemm", "reference"};
const char *ip_conv_algo_name(int a) { return (unsigned)a <= IP_CONV_REFERENCE ? conv_algo_names[a] : "?"; }
int ip_conv_algo_parse(const char *s, int *out) {
    for (int i = 0; i <= IP_CONV_REFERENCE; i++)
        if (strcmp(s, conv_algo_names[i]) == 0) return *out = i, 0;
    return -1;
}

size_t ip_conv_k(const ip_conv_shape *s) { return (size_t)s->cin * s->kh * s->kw; }

static int conv_is_pointwise(const ip_conv_shape *s) {
    return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0;
}

/* Images per chunk: as many as fit in IP_CONV_COL_LIMIT floats (at least one),
 * then balanced so the chunks have (nearly) equal sizes. */
static int conv_chunk(const ip_conv_shape *s) {
    size_t per = ip_conv_k(s) * (size_t)s->oh * s->ow;
    size_t n = (size_t)s->n;
    size_t maxc = per ? IP_CONV_COL_LIMIT / per : n;
    if (maxc < 1) maxc = 1;
    if (maxc > n) maxc = n;
    size_t nchunks = (n + maxc - 1) / maxc;
    return (int)((n + nchunks - 1) / nchunks);
}

/* Winograd (core/nn/winograd.h) replaces im2col + GEMM for 3x3 and 5x5 stride-1
 * convolutions with enough channels and pixels to amortise its transforms,
 * in all three directions (forward, input gradient, weight gradient: they
 * share one rule). Measured speed-ups (im2col ms / Winograd ms, 2 OpenBLAS
 * threads, medians of 9-31 alternating runs on the shared 2-core machine):
 *   batch 64, AlexNet-p: block1 5x5 64->192 16x16 F(4x4,5x5): fwd 3.5x, din 3.3x, dW 3.4x;
 *     block2 3x3 192->384 8x8 F(4x4,3x3): 3.4x, 3.8x, 2.7x; block3/4 (384->256,
 *     256->256): 2.4-3.0x; block0 5x5 3->64 32x32: 0.4-0.8x (slower);
 *   batch 64, 3x3: 32->32 8x8 2.7-3.1x; 32->64 7x7, 14x14 1.2-1.6x; 64->128 7x7,
 *     14x14 1.4-1.8x; ResNet-18 shapes (64..512 channels, 32x32..4x4) 1.6-2.5x;
 *     16->32 14x14: fwd/din 1.2x, dW 1.0x;
 *   batch 64, 5x5: 16->32 and 32->32 on 8x8/16x16 1.4-3.5x; 8->16 16x16 2.7-3.3x,
 *     but 8->64 32x32 0.8-1.45x and 3->64, 4->64 32x32 0.6-0.96x;
 *   small batches, 3x3 256->256: 128 output pixels per batch (n2 8x8) 0.3-0.8x,
 *     256 (n4 8x8, n16 4x4) 0.5-1.3x, 512 (n8 8x8, n32 4x4) 0.7-2.0x, mostly
 *     faster: the kernel transform and the thin GEMMs (P = tiles) dominate;
 *   small batches, 5x5: 64->192 n1 16x16 (256 pixels) 1.7-3.3x; 64->64 n2 8x8 1.25-1.9x.
 * Hence Winograd when applicable and
 *   3x3: Cin >= 32, Cout >= 32 and N*OH*OW >= 512;
 *   5x5: Cin >= 16, Cout >= 16 and N*OH*OW >= 256.
 * use_winograd_shape() is the shape-only part, for the workspace. */
static int use_winograd_shape(const ip_conv_shape *s) {
    if (!ip_winograd_applicable(s) || s->algo == IP_CONV_GEMM || s->algo == IP_CONV_REFERENCE) return 0;
    /* precise: F(2x2, 3x3) only (ip_winograd_tile), whose transforms are exact */
    if (s->algo == IP_CONV_PRECISE && s->kh != 3) return 0;
    const int min_ch = s->kh == 3 ? 32 : 16;
    return s->cin >= min_ch && s->cout >= min_ch;
}
static int use_winograd(const ip_conv_shape *s) {
    const size_t min_pixels = s->kh == 3 ? 512 : 256;
    return use_winograd_shape(s) && (size_t)s->n * s->oh * s->ow >= min_pixels;
}

/* Sized for the largest chunk any batch of up to s->n images can produce:
 * the balanced chunk of a smaller batch can exceed that of s->n (256 images
 * in 3 chunks of 86, but 200 in 2 chunks of 100), so use the unbalanced
 * maximum, min(n, limit / per-image size). The same holds
 * for ip_winograd_workspace_floats, and a smaller batch may take either path. */
size_t ip_conv_workspace_floats(const ip_conv_shape *s) {
    if (conv_is_pointwise(s) || s->algo == IP_CONV_REFERENCE) return 0;
    /* batches smaller than s->n may or may not take the Winograd path: cover both */
    size_t wino = use_winograd_shape(s) ? ip_winograd_workspace_floats(s) : 0;
    size_t per = ip_conv_k(s) * (size_t)s->oh * s->ow;
    size_t maxc = per ? IP_CONV_COL_LIMIT / per : (size_t)s->n;
    if (maxc < 1) maxc = 1;
    if (maxc > (size_t)s->n) maxc = (size_t)s->n;
    return per * maxc > wino ? per * maxc : wino;
}

const char *ip_conv_path(const ip_conv_shape *s) {
    if (s->algo == IP_CONV_REFERENCE) return "reference";
    if (conv_is_pointwise(s)) return "pointwise-gemm";
    if (use_winograd(s)) return ip_winograd_tile(s) == 4 ? "winograd-f4" : "winograd-f2";
    return "im2col-gemm";
}

/* Output indices o in [lo, hi) for which i = o*stride - pad + k lies in [0, in_size). */
static void valid_range(int in_size, int out_size, int k, int stride, int pad, int *lo, int *hi) {
    int off = k - pad; /* i = o*stride + off */
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int lim = in_size - 1 - off; /* need o*stride <= lim */
    int h = lim < 0 ? 0 : lim / stride + 1;
    if (h > out_size) h = out_size;
    if (l > h) l = h;
    *lo = l, *hi = h;
}

/* d[i] += s[i]. At -O2 GCC 12 only vectorizes loops whose trip count needs no
 * epilogue, so the contiguous add is written with GCC/Clang vector extensions
 * (lowered to whatever the target has; memcpy = unaligned load/store). */
typedef float ip_vf16 __attribute__((vector_size(64)));
static inline void add_contig(float *restrict d, const float *restrict s, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        ip_vf16 a, b;
        memcpy(&a, d + i, sizeof a);
        memcpy(&b, s + i, sizeof b);
        a += b;
        memcpy(d + i, &a, sizeof a);
    }
    for (; i < n; i++) d[i] += s[i];
}
static inline void copy_strided(float *restrict d, const float *restrict s, size_t n, size_t st) {
    for (size_t i = 0; i < n; i++) d[i] = s[i * st];
}
static inline void add_strided(float *restrict d, const float *restrict s, size_t n, size_t st) {
    for (size_t i = 0; i < n; i++) d[i * st] += s[i];
}

/* Zeroes the padding entries of one col row (nb images of OH x OW). */
static void zero_padding_entries(float *restrict row, const ip_conv_shape *s, int nb, int oh_lo, int oh_hi,
                                 int ow_lo, int ow_hi) {
    const int OH = s->oh, OW = s->ow;
    const size_t ohow = (size_t)OH * OW, nrows = (size_t)nb * OH;
    /* invalid columns, over every row of every image: a strided store per column */
    for (int c = 0; c < ow_lo; c++)
        for (size_t r = 0; r < nrows; r++) row[r * OW + c] = 0.0f;
    for (int c = ow_hi; c < OW; c++)
        for (size_t r = 0; r < nrows; r++) row[r * OW + c] = 0.0f;
    /* invalid rows of each image */
    if (oh_lo == 0 && oh_hi == OH) return;
    for (int b = 0; b < nb; b++) {
        float *blk = row + (size_t)b * ohow;
        memset(blk, 0, sizeof(float) * (size_t)oh_lo * OW);
        memset(blk + (size_t)oh_hi * OW, 0, sizeof(float) * (size_t)(OH - oh_hi) * OW);
    }
}

/* col (K, nb*OH*OW) <- im2col of images [n0, n0+nb): copy the in-image
 * entries row by row, then zero the padding entries. */
static void im2col(float *restrict col, const float *restrict in, const ip_conv_shape *s, int n0, int nb, size_t r0,
                   size_t r1) {
    const int H = s->h, W = s->w, OH = s->oh, OW = s->ow, st = s->stride, pad = s->pad;
    const size_t hw = (size_t)H * W, ohow = (size_t)OH * OW, cols = (size_t)nb * ohow;
    const size_t cstride = (size_t)s->n * hw;
    for (size_t r = r0; r < r1; r++) { /* col row r = (ci, kh, kw) */
        const int ci = (int)(r / ((size_t)s->kh * s->kw)), kh = (int)(r / (size_t)s->kw % (size_t)s->kh),
                  kw = (int)(r % (size_t)s->kw);
        float *restrict row = col + r * cols;
        const float *chan = in + (size_t)ci * cstride + (size_t)n0 * hw;
        int oh_lo, oh_hi, ow_lo, ow_hi;
        valid_range(H, OH, kh, st, pad, &oh_lo, &oh_hi);
        valid_range(W, OW, kw, st, pad, &ow_lo, &ow_hi);
        const size_t nv = (size_t)(ow_hi - ow_lo);
        const int iw0 = ow_lo * st - pad + kw;
        for (int b = 0; b < nb && nv; b++) {
            const float *src = chan + (size_t)b * hw + iw0;
            float *dst = row + (size_t)b * ohow + ow_lo;
            for (int oh = oh_lo; oh < oh_hi; oh++) {
                const float *sr = src + (size_t)(oh * st - pad + kh) * W;
                if (st == 1)
                    memcpy(dst + (size_t)oh * OW, sr, sizeof(float) * nv);
                else
                    copy_strided(dst + (size_t)oh * OW, sr, nv, (size_t)st);
            }
        }
        zero_padding_entries(row, s, nb, oh_lo, oh_hi, ow_lo, ow_hi);
    }
}

/* din[images n0..n0+nb) += col2im(col). Padding entries of col are dropped. */
static void col2im_add(float *restrict din, const float *restrict col, const ip_conv_shape *s, int n0,
                       int nb, int c0, int c1) {
    const int H = s->h, W = s->w, OH = s->oh, OW = s->ow, st = s->stride, pad = s->pad;
    const size_t hw = (size_t)H * W, ohow = (size_t)OH * OW, cols = (size_t)nb * ohow;
    const size_t cstride = (size_t)s->n * hw;
    const float *restrict row = col + (size_t)c0 * s->kh * s->kw * cols;
    for (int ci = c0; ci < c1; ci++) {
        float *chan = din + (size_t)ci * cstride + (size_t)n0 * hw;
        for (int kh = 0; kh < s->kh; kh++) {
            int oh_lo, oh_hi;
            valid_range(H, OH, kh, st, pad, &oh_lo, &oh_hi);
            for (int kw = 0; kw < s->kw; kw++, row += cols) {
                int ow_lo, ow_hi;
                valid_range(W, OW, kw, st, pad, &ow_lo, &ow_hi);
                const int nv = ow_hi - ow_lo;
                const int iw0 = ow_lo * st - pad + kw;
                for (int b = 0; b < nb; b++) {
                    float *dst = chan + (size_t)b * hw;
                    const float *src = row + (size_t)b * ohow + ow_lo;
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        float *restrict d = dst + (size_t)(oh * st - pad + kh) * W + iw0;
                        const float *restrict sr = src + (size_t)oh * OW;
                        if (st == 1)
                            add_contig(d, sr, (size_t)nv);
                        else
                            add_strided(d, sr, (size_t)nv, (size_t)st);
                    }
                }
            }
        }
    }
}

/* "Same" convolutions (stride 1, OH == H, OW == W, i.e. KH = KW = 2*pad + 1):
 * row (ci, kh, kw) of col is the chunk's channel block shifted by the constant
 * (kh-pad)*W + (kw-pad), so it is one contiguous copy over all images of the
 * chunk; the entries that should be padding (they picked up a neighbouring
 * row or image) are then zeroed. col2im zeroes the same entries of the
 * scratch dcol and does one contiguous add. */
static int conv_is_same(const ip_conv_shape *s) { return s->stride == 1 && s->oh == s->h && s->ow == s->w; }

/* Range [j0, j1) of a chunk row whose shifted source index stays inside the chunk. */
static void same_span(ptrdiff_t shift, ptrdiff_t total, ptrdiff_t *j0, ptrdiff_t *j1) {
    ptrdiff_t a = shift < 0 ? -shift : 0, b = shift > 0 ? total - shift : total;
    if (a > total) a = total;
    if (b < a) b = a;
    *j0 = a, *j1 = b;
}

static void im2col_same(float *restrict col, const float *restrict in, const ip_conv_shape *s, int n0, int nb,
                        size_t r0, size_t r1) {
    const int H = s->h, W = s->w, pad = s->pad;
    const size_t hw = (size_t)H * W;
    const ptrdiff_t total = (ptrdiff_t)(nb * hw);
    for (size_t r = r0; r < r1; r++) { /* col row r = (ci, kh, kw) */
        const int ci = (int)(r / ((size_t)s->kh * s->kw)), kh = (int)(r / (size_t)s->kw % (size_t)s->kh),
                  kw = (int)(r % (size_t)s->kw);
        float *restrict row = col + r * (size_t)total;
        const float *chan = in + (size_t)ci * s->n * hw + (size_t)n0 * hw;
        int oh_lo, oh_hi, ow_lo, ow_hi;
        valid_range(H, s->oh, kh, 1, pad, &oh_lo, &oh_hi);
        valid_range(W, s->ow, kw, 1, pad, &ow_lo, &ow_hi);
        ptrdiff_t shift = (ptrdiff_t)(kh - pad) * W + (kw - pad), j0, j1;
        same_span(shift, total, &j0, &j1);
        memset(row, 0, sizeof(float) * (size_t)j0);
        if (j1 > j0) memcpy(row + j0, chan + j0 + shift, sizeof(float) * (size_t)(j1 - j0));
        memset(row + j1, 0, sizeof(float) * (size_t)(total - j1));
        zero_padding_entries(row, s, nb, oh_lo, oh_hi, ow_lo, ow_hi);
    }
}

/* din += col2im(col); col is scratch and gets its padding entries zeroed. */
static void col2im_same_add(float *restrict din, float *restrict col, const ip_conv_shape *s, int n0, int nb,
                            int c0, int c1) {
    const int H = s->h, W = s->w, pad = s->pad;
    const size_t hw = (size_t)H * W;
    const ptrdiff_t total = (ptrdiff_t)(nb * hw);
    float *restrict row = col + (size_t)c0 * s->kh * s->kw * (size_t)total;
    for (int ci = c0; ci < c1; ci++) {
        float *restrict chan = din + (size_t)ci * s->n * hw + (size_t)n0 * hw;
        for (int kh = 0; kh < s->kh; kh++) {
            int oh_lo, oh_hi;
            valid_range(H, s->oh, kh, 1, pad, &oh_lo, &oh_hi);
            for (int kw = 0; kw < s->kw; kw++, row += total) {
                int ow_lo, ow_hi;
                valid_range(W, s->ow, kw, 1, pad, &ow_lo, &ow_hi);
                ptrdiff_t shift = (ptrdiff_t)(kh - pad) * W + (kw - pad), j0, j1;
                same_span(shift, total, &j0, &j1);
                zero_padding_entries(row, s, nb, oh_lo, oh_hi, ow_lo, ow_hi);
                if (j1 <= j0) continue;
                add_contig(chan + j0 + shift, row + j0, (size_t)(j1 - j0));
            }
        }
    }
}

/* im2col and col2im run in parallel (core/util/par.h): im2col over col rows (each writes
 * its own row), col2im over input channels (the rows of one channel add into the
 * same din plane, in a fixed order). */
typedef struct {
    float *col, *din;
    const float *in;
    const ip_conv_shape *s;
    int n0, nb;
} col_job;

static void im2col_rows(void *p, size_t r0, size_t r1) {
    const col_job *j = p;
    if (conv_is_same(j->s))
        im2col_same(j->col, j->in, j->s, j->n0, j->nb, r0, r1);
    else
        im2col(j->col, j->in, j->s, j->n0, j->nb, r0, r1);
}

static void col2im_channels(void *p, size_t c0, size_t c1) {
    const col_job *j = p;
    if (conv_is_same(j->s))
        col2im_same_add(j->din, j->col, j->s, j->n0, j->nb, (int)c0, (int)c1);
    else
        col2im_add(j->din, j->col, j->s, j->n0, j->nb, (int)c0, (int)c1);
}

static void im2col_chunk(float *col, const float *in, const ip_conv_shape *s, int n0, int nb) {
    col_job j = {.col = col, .in = in, .s = s, .n0 = n0, .nb = nb};
    size_t k = ip_conv_k(s);
    ip_par_for(k, k * (size_t)nb * s->oh * s->ow, im2col_rows, &j);
}

static void col2im_chunk_add(float *din, float *col, const ip_conv_shape *s, int n0, int nb) {
    col_job j = {.col = col, .din = din, .s = s, .n0 = n0, .nb = nb};
    ip_par_for((size_t)s->cin, ip_conv_k(s) * (size_t)nb * s->oh * s->ow, col2im_channels, &j);
}

void conv2d_forward(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s) {
    const int K = (int)ip_conv_k(s);
    const int ohow = s->oh * s->ow;
    const int ldo = s->n * ohow;
    if (s->algo == IP_CONV_REFERENCE) {
        conv2d_forward_ref(out, in, weight, s);
        return;
    }
    if (conv_is_pointwise(s)) {
        ip_sgemm(CblasNoTrans, CblasNoTrans, s->cout, ldo, K, 1.0f, weight, K, in, ldo,
                    0.0f, out, ldo);
        return;
    }
    if (use_winograd(s)) {
        winograd_forward(out, in, weight, work, s);
        return;
    }
    const int chunk = conv_chunk(s);
    for (int n0 = 0; n0 < s->n; n0 += chunk) {
        const int nb = s->n - n0 < chunk ? s->n - n0 : chunk;
        const int cols = nb * ohow;
        im2col_chunk(work, in, s, n0, nb);
        ip_sgemm(CblasNoTrans, CblasNoTrans, s->cout, cols, K, 1.0f, weight, K, work, cols,
                    0.0f, out + (size_t)n0 * ohow, ldo);
    }
}

int conv2d_forward_tail(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s,
                        const ip_conv_tail *t) {
    if (s->algo == IP_CONV_REFERENCE || conv_is_pointwise(s) || !use_winograd(s)) return 0;
    if (t->pool && (s->oh < 2 || s->ow < 2)) return 0;
    winograd_forward_tail(out, in, weight, work, s, t);
    return 1;
}

void conv2d_backward(float *din, float *dweight, const float *dout, const float *in, const float *weight,
                     float *work, const ip_conv_shape *s) {
    const int K = (int)ip_conv_k(s);
    const int ohow = s->oh * s->ow;
    const int ldo = s->n * ohow;
    if (s->algo == IP_CONV_REFERENCE) {
        conv2d_backward_ref(din, dweight, dout, in, weight, s);
        return;
    }
    if (conv_is_pointwise(s)) {
        /* dW (Cout, Cin) += dout (Cout, NHW) x in^T;  din (Cin, NHW) += W^T x dout */
        if (dweight)
            ip_sgemm(CblasNoTrans, CblasTrans, s->cout, K, ldo, 1.0f, dout, ldo, in, ldo, 1.0f,
                        dweight, K);
        if (din)
            ip_sgemm(CblasTrans, CblasNoTrans, K, ldo, s->cout, 1.0f, weight, K, dout, ldo,
                        1.0f, din, ldo);
        return;
    }
    if (use_winograd(s)) { /* both gradients; they share the workspace one after the other */
        if (dweight) winograd_backward_weight(dweight, dout, in, work, s);
        if (din) winograd_backward_data(din, dout, weight, work, s);
        return;
    }
    const int chunk = conv_chunk(s);
    for (int n0 = 0; n0 < s->n; n0 += chunk) {
        const int nb = s->n - n0 < chunk ? s->n - n0 : chunk;
        const int cols = nb * ohow;
        const float *dchunk = dout + (size_t)n0 * ohow;
        if (dweight) { /* the weight gradient alone reads im2col(in) */
            im2col_chunk(work, in, s, n0, nb);
            ip_sgemm(CblasNoTrans, CblasTrans, s->cout, K, cols, 1.0f, dchunk, ldo, work, cols,
                        1.0f, dweight, K);
        }
        if (din) {
            ip_sgemm(CblasTrans, CblasNoTrans, K, cols, s->cout, 1.0f, weight, K, dchunk, ldo,
                        0.0f, work, cols);
            col2im_chunk_add(din, work, s, n0, nb);
        }
    }
}

/* ---------------- references: straight from the definition ---------------- */

void conv2d_forward_ref(float *out, const float *in, const float *weight, const ip_conv_shape *s) {
    const int N = s->n, C = s->cin, H = s->h, W = s->w, KH = s->kh, KW = s->kw, OH = s->oh, OW = s->ow;
    for (int co = 0; co < s->cout; co++)
        for (int n = 0; n < N; n++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = 0;
                    for (int ci = 0; ci < C; ci++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int ih = oh * s->stride - s->pad + kh, iw = ow * s->stride - s->pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)weight[(((size_t)co * C + ci) * KH + kh) * KW + kw] *
                                       in[(((size_t)ci * N + n) * H + ih) * W + iw];
                            }
                    out[(((size_t)co * N + n) * OH + oh) * OW + ow] = (float)acc;
                }
}

void conv2d_backward_ref(float *din, float *dweight, const float *dout, const float *in, const float *weight,
                         const ip_conv_shape *s) {
    const int N = s->n, C = s->cin, H = s->h, W = s->w, KH = s->kh, KW = s->kw, OH = s->oh, OW = s->ow;
    /* dW[co][ci][kh][kw] = sum_{n,oh,ow} dout[co][n][oh][ow] * in[ci][n][ih][iw] */
    for (int co = 0; dweight && co < s->cout; co++)
        for (int ci = 0; ci < C; ci++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    double acc = 0;
                    for (int n = 0; n < N; n++)
                        for (int oh = 0; oh < OH; oh++)
                            for (int ow = 0; ow < OW; ow++) {
                                int ih = oh * s->stride - s->pad + kh, iw = ow * s->stride - s->pad + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)dout[(((size_t)co * N + n) * OH + oh) * OW + ow] *
                                       in[(((size_t)ci * N + n) * H + ih) * W + iw];
                            }
                    dweight[(((size_t)co * C + ci) * KH + kh) * KW + kw] += (float)acc;
                }
    if (!din) return;
    /* din[ci][n][ih][iw] = sum over (co, kh, kw) and the (oh, ow) that read it of dout * W */
    for (int ci = 0; ci < C; ci++)
        for (int n = 0; n < N; n++)
            for (int ih = 0; ih < H; ih++)
                for (int iw = 0; iw < W; iw++) {
                    double acc = 0;
                    for (int co = 0; co < s->cout; co++)
                        for (int kh = 0; kh < KH; kh++)
                            for (int kw = 0; kw < KW; kw++) {
                                int th = ih + s->pad - kh, tw = iw + s->pad - kw; /* = oh*stride, ow*stride */
                                if (th < 0 || tw < 0 || th % s->stride || tw % s->stride) continue;
                                int oh = th / s->stride, ow = tw / s->stride;
                                if (oh >= OH || ow >= OW) continue;
                                acc += (double)dout[(((size_t)co * N + n) * OH + oh) * OW + ow] *
                                       weight[(((size_t)co * C + ci) * KH + kh) * KW + kw];
                            }
                    din[(((size_t)ci * N + n) * H + ih) * W + iw] += (float)acc;
                }
}

/* ---------------- passport path ---------------- */

/* Window (kh, kw) of a colmean: the output rows [oh_lo, oh_hi) and columns
 * [ow_lo, ow_hi) whose tap falls inside the input; returns the input column
 * of the first of them (valid_range's bounds, one home for both colmeans). */
static int colmean_window(const ip_conv_shape *s, int kh, int kw, int *oh_lo, int *oh_hi, int *ow_lo, int *ow_hi) {
    valid_range(s->h, s->oh, kh, s->stride, s->pad, oh_lo, oh_hi);
    valid_range(s->w, s->ow, kw, s->stride, s->pad, ow_lo, ow_hi);
    return *ow_lo * s->stride - s->pad + kw;
}

/* The column means channel by channel: each window summed row by row, left
 * to right, in double (the reference of ip_conv_colmean). */
void ip_conv_colmean_ref(float *colmean, const float *passport, const ip_conv_shape *s) {
    const int H = s->h, W = s->w;
    const double inv = 1.0 / ((double)s->oh * s->ow);
    size_t k = 0;
    for (int ci = 0; ci < s->cin; ci++) {
        const float *p = passport + (size_t)ci * H * W;
        for (int kh = 0; kh < s->kh; kh++)
            for (int kw = 0; kw < s->kw; kw++, k++) {
                int oh_lo, oh_hi, ow_lo, ow_hi;
                const int iw0 = colmean_window(s, kh, kw, &oh_lo, &oh_hi, &ow_lo, &ow_hi);
                double acc = 0;
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    const float *r = p + (size_t)(oh * s->stride - s->pad + kh) * W + iw0;
                    for (int j = 0; j < ow_hi - ow_lo; j++) acc += r[(size_t)j * s->stride];
                }
                colmean[k] = (float)(acc * inv);
            }
    }
}

/* COLMEAN_LANES channels at once. The reference's sums are serial chains of
 * double adds, latency-bound (a fake1 shard of image keys spent 7% of its time
 * there, two colmeans per passport and layer); here lane i of two 4-double
 * sums is channel c0 + i, added in the reference's order, so every mean has
 * the reference's bits. The group's planes are first interleaved
 * (t[pos][lane]), so a window's row is one contiguous run of lanes. (Two
 * 4-lane vectors rather than one of 8: without AVX-512, GCC lowers an 8-double
 * vector through the stack.) */
#define COLMEAN_LANES 8
typedef double colmean_vd __attribute__((vector_size(4 * sizeof(double))));
typedef float colmean_vf __attribute__((vector_size(4 * sizeof(float))));

static void colmean_lanes(float *colmean, const float *passport, const ip_conv_shape *s, int c0, float *t) {
    const int H = s->h, W = s->w, L = COLMEAN_LANES;
    const size_t HW = (size_t)H * W, K = (size_t)s->kh * s->kw;
    const int nc = s->cin - c0 < L ? s->cin - c0 : L;
    for (int i = 0; i < L; i++) {
        const float *p = passport + (size_t)(c0 + i) * HW;
        for (size_t q = 0; q < HW; q++) t[q * L + (size_t)i] = i < nc ? p[q] : 0.0f;
    }
    const double inv = 1.0 / ((double)s->oh * s->ow);
    size_t k = 0;
    for (int kh = 0; kh < s->kh; kh++)
        for (int kw = 0; kw < s->kw; kw++, k++) {
            int oh_lo, oh_hi, ow_lo, ow_hi;
            const int iw0 = colmean_window(s, kh, kw, &oh_lo, &oh_hi, &ow_lo, &ow_hi);
            colmean_vd lo = {0}, hi = {0};
            for (int oh = oh_lo; oh < oh_hi; oh++) {
                const float *r = t + ((size_t)(oh * s->stride - s->pad + kh) * W + (size_t)iw0) * L;
                for (int j = 0; j < ow_hi - ow_lo; j++) {
                    colmean_vf a, b;
                    memcpy(&a, r + (size_t)j * s->stride * L, sizeof a);
                    memcpy(&b, r + (size_t)j * s->stride * L + 4, sizeof b);
                    lo += __builtin_convertvector(a, colmean_vd);
                    hi += __builtin_convertvector(b, colmean_vd);
                }
            }
            for (int i = 0; i < nc; i++) colmean[(size_t)(c0 + i) * K + k] = (float)((i < 4 ? lo[i] : hi[i - 4]) * inv);
        }
}

void ip_conv_colmean(float *colmean, const float *passport, const ip_conv_shape *s) {
    const size_t HW = (size_t)s->h * s->w;
    float *t = HW ? malloc(HW * COLMEAN_LANES * sizeof *t) : NULL;
    if (!t) { /* no room to interleave (or nothing to): the same values, slower */
        ip_conv_colmean_ref(colmean, passport, s);
        return;
    }
    for (int c0 = 0; c0 < s->cin; c0 += COLMEAN_LANES) colmean_lanes(colmean, passport, s, c0, t);
    free(t);
}

void ip_conv_passport_ref(float *gamma, const float *passport, const float *weight, const ip_conv_shape *s) {
    const int C = s->cin, H = s->h, W = s->w, KH = s->kh, KW = s->kw;
    for (int co = 0; co < s->cout; co++) {
        double acc = 0;
        for (int oh = 0; oh < s->oh; oh++)
            for (int ow = 0; ow < s->ow; ow++)
                for (int ci = 0; ci < C; ci++)
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++) {
                            int ih = oh * s->stride - s->pad + kh, iw = ow * s->stride - s->pad + kw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            acc += (double)weight[(((size_t)co * C + ci) * KH + kh) * KW + kw] *
                                   passport[((size_t)ci * H + ih) * W + iw];
                        }
        gamma[co] = (float)(acc / ((double)s->oh * s->ow));
    }
}
