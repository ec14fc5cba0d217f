/* conv2d: im2col/SGEMM kernels against the definition, finite differences,
 * accumulation semantics, the passport path and shape validation. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/nn/layers.h"
#include "../core/util/par.h"
#include "testutil.h"

typedef struct {
    int n, cin, h, w, cout, kh, kw, stride, pad;
} conv_case;

static ip_conv_shape make_shape(const conv_case *c) {
    ip_conv_shape s;
    int rc = ip_conv_shape_init(&s, c->n, c->cin, c->h, c->w, c->cout, c->kh, c->kw, c->stride, c->pad);
    cr_assert_eq(rc, 0, "shape init failed");
    return s;
}

static size_t in_len(const ip_conv_shape *s) { return (size_t)s->cin * s->n * s->h * s->w; }
static size_t out_len(const ip_conv_shape *s) { return (size_t)s->cout * s->n * s->oh * s->ow; }
static size_t w_len(const ip_conv_shape *s) { return (size_t)s->cout * ip_conv_k(s); }

/* Workspace as the caller would allocate it (NULL when none is needed, to make
 * sure the pointwise path never touches it). */
static float *alloc_work(const ip_conv_shape *s) {
    size_t ws = ip_conv_workspace_floats(s);
    if (!ws) return NULL;
    float *w = malloc(ws * sizeof(float));
    cr_assert_not_null(w);
    for (size_t i = 0; i < ws; i++) w[i] = NAN; /* stale garbage must not leak into results */
    return w;
}

/* Fast vs reference: forward, and backward (din, dweight) starting from
 * non-zero gradient buffers so that accumulation is checked too; also the
 * din == NULL path. */
static void check_vs_ref(const conv_case *c) {
    ip_conv_shape s = make_shape(c);
    size_t ni = in_len(&s), no = out_len(&s), nw = w_len(&s);
    float *in = tu_alloc(ni), *wt = tu_alloc(nw), *dout = tu_alloc(no);
    float *out = tu_alloc(no), *out_ref = tu_alloc(no);
    float *din = tu_alloc(ni), *din_ref = tu_alloc(ni), *dw = tu_alloc(nw), *dw_ref = tu_alloc(nw);
    float *dw2 = tu_alloc(nw);
    float *work = alloc_work(&s);
    tu_fill(in, ni, -1, 1, 1);
    tu_fill(wt, nw, -0.5f, 0.5f, 2);
    tu_fill(dout, no, -1, 1, 3);
    tu_fill(din, ni, -1, 1, 4);
    memcpy(din_ref, din, ni * sizeof(float));
    tu_fill(dw, nw, -1, 1, 5);
    memcpy(dw_ref, dw, nw * sizeof(float));
    memcpy(dw2, dw, nw * sizeof(float));
    for (size_t i = 0; i < no; i++) out[i] = NAN; /* forward must overwrite */

    conv2d_forward(out, in, wt, work, &s);
    conv2d_forward_ref(out_ref, in, wt, &s);
    double e = tu_max_rel_diff(out, out_ref, no);
    cr_expect_lt(e, 1e-4, "forward mismatch %g (n%d c%d %dx%d -> %d k%dx%d s%d p%d)", e, c->n, c->cin, c->h,
                 c->w, c->cout, c->kh, c->kw, c->stride, c->pad);

    conv2d_backward(din, dw, dout, in, wt, work, &s);
    conv2d_backward_ref(din_ref, dw_ref, dout, in, wt, &s);
    e = tu_max_rel_diff(din, din_ref, ni);
    cr_expect_lt(e, 1e-4, "din mismatch %g", e);
    e = tu_max_rel_diff(dw, dw_ref, nw);
    cr_expect_lt(e, 1e-4, "dweight mismatch %g", e);

    conv2d_backward(NULL, dw2, dout, in, wt, work, &s);
    e = tu_max_rel_diff(dw2, dw_ref, nw);
    cr_expect_lt(e, 1e-4, "dweight (din=NULL) mismatch %g", e);

    free(in), free(wt), free(dout), free(out), free(out_ref);
    free(din), free(din_ref), free(dw), free(dw_ref), free(dw2), free(work);
}

Test(conv, ref_3x3_pad1) { check_vs_ref(&(conv_case){2, 3, 8, 8, 4, 3, 3, 1, 1}); }
Test(conv, ref_5x5_pad2) { check_vs_ref(&(conv_case){2, 3, 9, 9, 5, 5, 5, 1, 2}); }
Test(conv, ref_3x3_stride2_pad1) { check_vs_ref(&(conv_case){2, 4, 9, 8, 6, 3, 3, 2, 1}); }
Test(conv, ref_1x1_stride1) {
    conv_case c = {3, 5, 6, 7, 4, 1, 1, 1, 0};
    ip_conv_shape s = make_shape(&c);
    cr_expect_eq(ip_conv_workspace_floats(&s), 0, "pointwise conv needs no workspace");
    check_vs_ref(&c);
}
Test(conv, ref_1x1_stride2) { check_vs_ref(&(conv_case){2, 4, 7, 7, 6, 1, 1, 2, 0}); }
Test(conv, ref_1x1_pad1) { check_vs_ref(&(conv_case){2, 3, 4, 5, 2, 1, 1, 1, 1}); }
Test(conv, ref_odd_7x5_n3) { check_vs_ref(&(conv_case){3, 3, 7, 5, 4, 3, 3, 1, 1}); }
Test(conv, ref_rect_kernel_stride2) { check_vs_ref(&(conv_case){3, 2, 7, 5, 3, 3, 2, 2, 1}); }
Test(conv, ref_no_pad_stride3) { check_vs_ref(&(conv_case){2, 3, 11, 10, 4, 3, 3, 3, 0}); }
/* Padding wider than half the kernel: whole output rows/columns fall in the padding. */
Test(conv, ref_wide_pad) { check_vs_ref(&(conv_case){2, 2, 4, 4, 3, 3, 3, 1, 2}); }
/* Kernel larger than the input, only reachable through the padding. */
Test(conv, ref_kernel_bigger_than_input) { check_vs_ref(&(conv_case){2, 2, 3, 2, 3, 5, 5, 3, 2}); }

/* Several im2col chunks (the last one shorter): chunk boundaries in forward,
 * dW accumulation across chunks and col2im per chunk. The shapes are the
 * smallest that exceed the 4M-float col limit ~2x, so the reference stays
 * under ~1 s with AddressSanitizer. */
static void check_chunked(const conv_case *c) {
    ip_conv_shape s = make_shape(c);
    size_t per_image = ip_conv_k(&s) * s.oh * s.ow;
    size_t ws = ip_conv_workspace_floats(&s);
    cr_assert_eq(ws % per_image, 0);
    size_t chunk = ws / per_image;
    cr_assert_lt(chunk * 2, (size_t)s.n, "expected at least 3 chunks, got chunk=%zu of n=%d", chunk, s.n);
    cr_assert_neq((size_t)s.n % chunk, 0, "want a shorter last chunk (chunk=%zu)", chunk);
    check_vs_ref(c);
}

Test(conv, ref_chunked_same) { check_chunked(&(conv_case){250, 16, 16, 16, 2, 3, 3, 1, 1}); }
Test(conv, ref_chunked_general) { check_chunked(&(conv_case){203, 16, 19, 19, 2, 3, 3, 1, 0}); }

/* ---------------- finite differences ---------------- */

typedef struct {
    const ip_conv_shape *s;
    const float *in, *wt, *r;
    float *out, *work;
} conv_fd_ctx;

static double conv_loss(void *p) {
    conv_fd_ctx *c = p;
    conv2d_forward(c->out, c->in, c->wt, c->work, c->s);
    return tu_dot(c->out, c->r, out_len(c->s));
}

/* The loss sum(out * r) is linear in each single input or weight entry, so the
 * central difference has no truncation error at any eps; its only error is the
 * float32 rounding of the affected outputs (~1e-7 relative each, at most
 * Cout*KH*KW of them for an input entry, Cout*N*OH*OW for a weight entry)
 * divided by 2*eps. eps = 1e-2 keeps that noise around 1e-5..1e-4 against
 * gradients of order 1-10, well inside the 1e-2 tolerance, while a wrong index
 * or missing term gives O(1) errors. */
static void check_fd(const conv_case *cc) {
    ip_conv_shape s = make_shape(cc);
    size_t ni = in_len(&s), no = out_len(&s), nw = w_len(&s);
    float *in = tu_alloc(ni), *wt = tu_alloc(nw), *r = tu_alloc(no), *out = tu_alloc(no);
    float *din = tu_alloc(ni), *dw = tu_alloc(nw), *work = alloc_work(&s);
    tu_fill(in, ni, -1, 1, 11);
    tu_fill(wt, nw, -0.5f, 0.5f, 12);
    tu_fill(r, no, -1, 1, 13);
    conv2d_backward(din, dw, r, in, wt, work, &s);
    conv_fd_ctx ctx = {&s, in, wt, r, out, work};
    double e = tu_grad_check(in, din, ni, conv_loss, &ctx, 1e-2f, 200, 1e-2);
    cr_expect_lt(e, 1e-2, "din vs finite differences: %g", e);
    e = tu_grad_check(wt, dw, nw, conv_loss, &ctx, 1e-2f, 200, 1e-2);
    cr_expect_lt(e, 1e-2, "dweight vs finite differences: %g", e);
    free(in), free(wt), free(r), free(out), free(din), free(dw), free(work);
}

Test(conv_fd, pad1_3x3) { check_fd(&(conv_case){2, 3, 6, 6, 4, 3, 3, 1, 1}); }
Test(conv_fd, stride2_odd) { check_fd(&(conv_case){2, 3, 7, 5, 4, 3, 3, 2, 1}); }
Test(conv_fd, k5_pad2) { check_fd(&(conv_case){2, 2, 6, 7, 3, 5, 5, 1, 2}); }
Test(conv_fd, pointwise) { check_fd(&(conv_case){3, 4, 5, 4, 3, 1, 1, 1, 0}); }
Test(conv_fd, pointwise_stride2) { check_fd(&(conv_case){2, 4, 5, 5, 3, 1, 1, 2, 0}); }

/* ---------------- accumulation ---------------- */

static void check_accumulates(const conv_case *cc) {
    ip_conv_shape s = make_shape(cc);
    size_t ni = in_len(&s), no = out_len(&s), nw = w_len(&s);
    float *in = tu_alloc(ni), *wt = tu_alloc(nw), *dout = tu_alloc(no), *work = alloc_work(&s);
    float *din1 = tu_alloc(ni), *dw1 = tu_alloc(nw), *din2 = tu_alloc(ni), *dw2 = tu_alloc(nw);
    tu_fill(in, ni, -1, 1, 21);
    tu_fill(wt, nw, -0.5f, 0.5f, 22);
    tu_fill(dout, no, -1, 1, 23);
    conv2d_backward(din1, dw1, dout, in, wt, work, &s);
    conv2d_backward(din2, dw2, dout, in, wt, work, &s);
    conv2d_backward(din2, dw2, dout, in, wt, work, &s);
    for (size_t i = 0; i < ni; i++) din1[i] *= 2;
    for (size_t i = 0; i < nw; i++) dw1[i] *= 2;
    double e = tu_max_rel_diff(din1, din2, ni);
    cr_expect_lt(e, 1e-5, "din does not accumulate: %g", e);
    e = tu_max_rel_diff(dw1, dw2, nw);
    cr_expect_lt(e, 1e-5, "dweight does not accumulate: %g", e);
    free(in), free(wt), free(dout), free(work), free(din1), free(dw1), free(din2), free(dw2);
}

Test(conv_accum, general) { check_accumulates(&(conv_case){2, 3, 7, 6, 4, 3, 3, 2, 1}); }
Test(conv_accum, pointwise) { check_accumulates(&(conv_case){2, 3, 5, 6, 4, 1, 1, 1, 0}); }

/* ---------------- passport path ---------------- */

static void check_passport(const conv_case *cc) {
    ip_conv_shape s = make_shape(cc);
    size_t K = ip_conv_k(&s), np = (size_t)s.cin * s.h * s.w, nw = w_len(&s);
    float *p = tu_alloc(np), *wt = tu_alloc(nw), *cm = tu_alloc(K), *g = tu_alloc(s.cout),
          *g_ref = tu_alloc(s.cout);
    tu_fill(p, np, -1, 1, 31);
    tu_fill(wt, nw, -0.5f, 0.5f, 32);
    ip_conv_colmean(cm, p, &s);
    ip_conv_passport_ref(g_ref, p, wt, &s);
    for (int c = 0; c < s.cout; c++) {
        double acc = 0;
        for (size_t k = 0; k < K; k++) acc += (double)wt[c * K + k] * cm[k];
        g[c] = (float)acc;
    }
    double e = tu_max_rel_diff(g, g_ref, s.cout);
    cr_expect_lt(e, 1e-5, "W . colmean vs passport_ref: %g", e);
    free(p), free(wt), free(cm), free(g), free(g_ref);
}

Test(passport, colmean_matches_ref) {
    check_passport(&(conv_case){1, 3, 8, 8, 5, 3, 3, 1, 1});
    check_passport(&(conv_case){4, 3, 7, 5, 6, 3, 3, 2, 1}); /* n ignored */
    check_passport(&(conv_case){1, 2, 9, 9, 4, 5, 5, 1, 2});
    check_passport(&(conv_case){1, 4, 6, 7, 3, 1, 1, 1, 0});
    check_passport(&(conv_case){1, 4, 7, 7, 3, 1, 1, 2, 0});
    check_passport(&(conv_case){1, 2, 3, 2, 3, 5, 5, 3, 2});
    check_passport(&(conv_case){1, 2, 4, 4, 3, 3, 3, 1, 2});
}

/* The vectorised colmean (8 channels per vector) against its channel-by-channel
 * reference, bit for bit: channel counts below, at and past a vector, strides,
 * paddings, 1x1 to 5x5, values spread over ~40 binary orders of magnitude.
 * (The order of the double sums is the reference's by construction; a float
 * mean would rarely show another order, so this checks windows and lanes.) */
Test(passport, colmean_vector_is_the_reference_bit_for_bit) {
    const conv_case cases[] = {
        {1, 1, 8, 8, 1, 3, 3, 1, 1},   {1, 7, 9, 5, 1, 3, 3, 1, 1},   {1, 8, 14, 14, 1, 3, 3, 1, 1},
        {1, 9, 7, 7, 1, 3, 3, 1, 1},   {1, 32, 14, 14, 1, 3, 3, 1, 1}, {1, 17, 11, 13, 1, 3, 3, 2, 1},
        {1, 12, 9, 9, 1, 5, 5, 1, 2},  {1, 5, 6, 7, 1, 1, 1, 1, 0},    {1, 10, 7, 7, 1, 1, 1, 2, 0},
        {1, 3, 3, 2, 1, 5, 5, 3, 2},   {1, 64, 8, 8, 1, 3, 3, 2, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ip_conv_shape s = make_shape(&cases[c]);
        size_t K = ip_conv_k(&s), np = (size_t)s.cin * s.h * s.w;
        float *p = tu_alloc(np), *fast = tu_alloc(K), *ref = tu_alloc(K);
        tu_fill(p, np, -1, 1, 41 + (unsigned)c);
        for (size_t i = 0; i < np; i++) p[i] = ldexpf(p[i], (int)(i * 7919 % 41) - 20);
        ip_conv_colmean(fast, p, &s);
        ip_conv_colmean_ref(ref, p, &s);
        cr_assert_eq(memcmp(fast, ref, K * sizeof(float)), 0, "case %zu: colmean differs from its reference", c);
        free(p), free(fast), free(ref);
    }
}

/* Pointwise, stride 1: colmean is the per-channel mean of the passport. */
Test(passport, colmean_pointwise_is_channel_mean) {
    ip_conv_shape s = make_shape(&(conv_case){1, 3, 4, 5, 2, 1, 1, 1, 0});
    float p[60], cm[3];
    tu_fill(p, 60, -1, 1, 33);
    ip_conv_colmean(cm, p, &s);
    for (int c = 0; c < 3; c++) {
        double m = 0;
        for (int i = 0; i < 20; i++) m += p[c * 20 + i];
        cr_expect_float_eq(cm[c], (float)(m / 20), 1e-6);
    }
}

/* ---------------- shapes ---------------- */

Test(conv_shape, output_sizes) {
    ip_conv_shape s;
    cr_assert_eq(ip_conv_shape_init(&s, 64, 3, 32, 32, 64, 5, 5, 1, 2), 0);
    cr_expect(s.oh == 32 && s.ow == 32);
    cr_expect_eq(ip_conv_k(&s), 75);
    cr_assert_eq(ip_conv_shape_init(&s, 2, 4, 7, 5, 8, 3, 3, 2, 1), 0);
    cr_expect(s.oh == 4 && s.ow == 3, "got %dx%d", s.oh, s.ow);
    cr_assert_eq(ip_conv_shape_init(&s, 2, 4, 8, 8, 8, 1, 1, 2, 0), 0);
    cr_expect(s.oh == 4 && s.ow == 4);
    cr_assert_eq(ip_conv_shape_init(&s, 1, 1, 3, 3, 1, 3, 3, 1, 0), 0);
    cr_expect(s.oh == 1 && s.ow == 1);
    cr_assert_eq(ip_conv_shape_init(&s, 1, 1, 2, 2, 1, 4, 4, 1, 1), 0); /* only via padding */
    cr_expect(s.oh == 1 && s.ow == 1);
}

Test(conv_shape, rejects_bad_args) {
    ip_conv_shape s;
    cr_expect_eq(ip_conv_shape_init(NULL, 1, 1, 4, 4, 1, 3, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 0, 1, 4, 4, 1, 3, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 0, 4, 4, 1, 3, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 0, 4, 1, 3, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, -2, 1, 3, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 0, 3, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 1, 0, 3, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 1, 3, -1, 1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 1, 3, 3, 0, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 1, 3, 3, -1, 1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 1, 3, 3, 1, -1), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 2, 2, 1, 5, 5, 1, 1), -1); /* empty output */
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 2, 1, 3, 3, 1, 0), -1); /* empty along w */
    /* sizes past what the int BLAS interface can index */
    cr_expect_eq(ip_conv_shape_init(&s, 65536, 1, 256, 256, 1, 1, 1, 1, 0), -1);
    cr_expect_eq(ip_conv_shape_init(&s, 1, 1, 4, 4, 1, 3, 3, 1, 0x40000000), -1);
}

/* Regression: the workspace is planned once for the largest batch, but a
 * smaller batch may split into larger balanced chunks (256 images -> 3 x 86,
 * 200 -> 2 x 100 for this shape). The planned workspace must cover every
 * batch up to the planned one; the sanitizer build catches any overflow. */
Test(conv, workspace_covers_smaller_batches) {
    ip_conv_shape planned, s;
    cr_assert_eq(ip_conv_shape_init(&planned, 256, 64, 8, 9, 8, 3, 3, 1, 1), 0);
    size_t ws = ip_conv_workspace_floats(&planned);
    float *work = tu_alloc(ws);
    for (int n = 150; n <= 256; n += 50) {
        cr_assert_eq(ip_conv_shape_init(&s, n, 64, 8, 9, 8, 3, 3, 1, 1), 0);
        cr_assert_leq(ip_conv_workspace_floats(&s), ws, "batch %d needs more workspace than batch 256", n);
        size_t in_len = (size_t)64 * n * 72, out_len = (size_t)8 * n * 72;
        float *in = tu_alloc(in_len), *din = tu_alloc(in_len), *out = tu_alloc(out_len);
        float *w = tu_alloc(8 * 64 * 9), *dw = tu_alloc(8 * 64 * 9);
        tu_fill(in, in_len, -1, 1, 1);
        tu_fill(w, 8 * 64 * 9, -1, 1, 2);
        conv2d_forward(out, in, w, work, &s);
        conv2d_backward(din, dw, out, in, w, work, &s);
        free(in), free(din), free(out), free(w), free(dw);
    }
    free(work);
}

/* ---------------- direct convolution (few input taps) ---------------- */

/* Direct kernels against the definition: forward overwrites, the weight gradient accumulates. */
static void check_direct(const conv_case *c) {
    ip_conv_shape s = make_shape(c);
    if (!conv2d_direct_applicable(&s)) {
        cr_log_info("direct conv not available for this shape/target: skipped");
        return;
    }
    size_t ni = in_len(&s), no = out_len(&s), nw = w_len(&s);
    float *in = tu_alloc(ni), *wt = tu_alloc(nw), *dout = tu_alloc(no);
    float *out = tu_alloc(no), *out_ref = tu_alloc(no), *dw = tu_alloc(nw), *dw_ref = tu_alloc(nw);
    tu_fill(in, ni, -1, 1, 21);
    tu_fill(wt, nw, -0.5f, 0.5f, 22);
    tu_fill(dout, no, -1, 1, 23);
    tu_fill(dw, nw, -1, 1, 24);
    memcpy(dw_ref, dw, nw * sizeof(float));
    for (size_t i = 0; i < no; i++) out[i] = NAN;
    conv2d_direct_forward(out, in, wt, &s);
    conv2d_forward_ref(out_ref, in, wt, &s);
    double e = tu_max_rel_diff(out, out_ref, no);
    cr_expect_lt(e, 1e-5, "direct forward mismatch %g (n%d c%d %dx%d -> %d k%dx%d p%d)", e, c->n, c->cin, c->h,
                 c->w, c->cout, c->kh, c->kw, c->pad);
    conv2d_direct_backward_weight(dw, dout, in, &s);
    conv2d_backward_ref(NULL, dw_ref, dout, in, wt, &s);
    e = tu_max_rel_diff(dw, dw_ref, nw);
    cr_expect_lt(e, 1e-5, "direct dweight mismatch %g", e);
    free(in), free(wt), free(dout), free(out), free(out_ref), free(dw), free(dw_ref);
}

Test(conv_direct, first_layer_shapes) {
    check_direct(&(conv_case){3, 1, 28, 28, 6, 3, 3, 1, 1});  /* small-p block0: two column chunks */
    check_direct(&(conv_case){2, 3, 9, 35, 5, 3, 3, 1, 1});   /* K = 27, three chunks, odd width */
    check_direct(&(conv_case){2, 1, 12, 12, 4, 5, 5, 1, 2});  /* 5x5 pad 2 */
    check_direct(&(conv_case){2, 2, 7, 6, 3, 3, 3, 1, 0});    /* no padding: 5x4 output */
    check_direct(&(conv_case){1, 1, 3, 3, 2, 3, 3, 1, 1});    /* output narrower than a vector */
    check_direct(&(conv_case){2, 3, 5, 17, 7, 1, 1, 1, 0});   /* pointwise, 7 channels (4 + 3) */
}

Test(conv_direct, applicability) {
    ip_conv_shape s;
    ip_conv_shape_init(&s, 2, 32, 8, 8, 16, 3, 3, 1, 1);
    cr_assert(!conv2d_direct_applicable(&s), "K = 288 is GEMM territory");
    ip_conv_shape_init(&s, 2, 1, 8, 8, 16, 3, 3, 2, 1);
    cr_assert(!conv2d_direct_applicable(&s), "stride 2 is not handled");
}

/* The direct kernels split images (forward) and output channels (weight gradient)
 * over threads: the bits must not depend on the thread count. */

Test(conv_direct, bits_do_not_depend_on_threads) {
    ip_conv_shape s = make_shape(&(conv_case){13, 1, 28, 28, 11, 3, 3, 1, 1});
    if (!conv2d_direct_applicable(&s)) return;
    size_t ni = in_len(&s), no = out_len(&s), nw = w_len(&s);
    float *in = tu_alloc(ni), *wt = tu_alloc(nw), *o[3], *dw[3];
    tu_fill(in, ni, -1, 1, 31);
    tu_fill(wt, nw, -1, 1, 32);
    for (int t = 0; t < 3; t++) {
        o[t] = tu_alloc(no), dw[t] = tu_alloc(nw);
        ip_par_set_threads(t + 1);
        conv2d_direct_forward(o[t], in, wt, &s);
        conv2d_direct_backward_weight(dw[t], o[t], in, &s);
    }
    ip_par_set_threads(1);
    for (int t = 1; t < 3; t++) {
        cr_assert(memcmp(o[0], o[t], no * sizeof(float)) == 0, "forward differs with %d threads", t + 1);
        cr_assert(memcmp(dw[0], dw[t], nw * sizeof(float)) == 0, "dweight differs with %d threads", t + 1);
    }
    for (int t = 0; t < 3; t++) free(o[t]), free(dw[t]);
    free(in), free(wt);
}

/* im2col / col2im split their rows / channels over threads: still the definition. */
Test(conv, ref_two_threads) {
    ip_par_set_threads(2);
    check_vs_ref(&(conv_case){4, 6, 17, 15, 5, 3, 3, 1, 1});  /* "same" path */
    check_vs_ref(&(conv_case){4, 6, 17, 15, 5, 3, 3, 2, 1});  /* general path, stride 2 */
    check_vs_ref(&(conv_case){3, 3, 32, 32, 8, 5, 5, 1, 2});  /* alexnet block0-like */
    check_chunked(&(conv_case){203, 16, 19, 19, 2, 3, 3, 1, 0});
    ip_par_set_threads(1);
}
