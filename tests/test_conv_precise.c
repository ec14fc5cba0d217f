/* The `conv: precise` setting (issue 14): on a real small-p training step
 * (Fashion-MNIST images, forward + cross-entropy + backward), the first
 * layer's weight gradient of the fast setting (Winograd F(4x4, 3x3) in
 * block1 and block2) and of the precise one (never Winograd) against the same
 * step with every convolution summed in double (IP_CONV_REFERENCE; norms,
 * pools and the linear layer are the same float code in all three). The
 * first layer sees every error the backward pass accumulates on its way down.
 * Also: the setting survives a checkpoint, and precise results do not depend
 * on the thread count. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/io/ckpt.h"
#include "../core/model/train.h"
#include "../core/nn/layers.h"
#include "../runner/cli/commands.h"
#include "testutil.h"

#define STEP_N 32

/* PyTorch float32's error on this gradient, as measured outside (issue 14:
 * 4e-5 relative), with margin: the bound a float32 training step meets. */
#define FLOAT32_LEVEL 1e-4

static int load_images(ip_dataset *d, size_t n) {
    const char *dir = getenv("IPSWEEP_DATA_DIR");
    char src[512];
    snprintf(src, sizeof src, "fashion-mnist:%s", dir ? dir : "/usr/share/datasets/fashion-mnist");
    ip_err e = {{0}};
    if (ip_data_load(d, src, IP_SPLIT_TRAIN, n, &e) != 0) return -1;
    float mean[4], std[4];
    ip_data_channel_stats(d, mean, std);
    ip_data_normalise(d, mean, std);
    return 0;
}

/* small-p, initialised (seed 7) and, when tr is given, trained one epoch on
 * it with the fast setting: the weights of a network in training. */
static void small_p(ip_model *m, ip_dataset *tr, ip_dataset *te) {
    ip_model_cfg cfg = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p");
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 7, NULL, &e), 0, "%s", e.msg);
    if (tr) {
        ip_train_cfg tc;
        ip_train_defaults(&tc);
        cr_assert_eq(ip_train(m, tr, te, &tc, NULL, NULL, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(ip_model_plan(m, STEP_N, &e), 0, "%s", e.msg);
}

/* The gradient of tensor `name` of one training step on d's first n images
 * with m's weights and conv algorithm `algo`, into g. */
static size_t step_grad_n(ip_model *m, const ip_dataset *d, int n, int algo, float *g, const char *name) {
    ip_err e = {{0}};
    cr_assert_eq(ip_model_set_conv(m, algo, &e), 0, "%s", e.msg);
    const float *logits = ip_model_forward(m, d->x, n, 1);
    float *dl = malloc(sizeof(float) * (size_t)n * 10);
    cr_assert(dl);
    xent_forward_backward(dl, logits, d->y, n, 10, 1.0f, NULL);
    ip_model_zero_grad(m);
    ip_model_backward(m, dl, NULL);
    free(dl);
    int t = ip_model_find_tensor(m, name);
    cr_assert_geq(t, 0);
    size_t k = m->tensors[t].numel;
    memcpy(g, m->grads + m->tensors[t].offset, k * sizeof(float));
    return k;
}

static size_t step_grad(ip_model *m, const ip_dataset *d, int algo, float *g) {
    return step_grad_n(m, d, STEP_N, algo, g, "block0.conv.weight");
}

static double max_rel(const float *a, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num = fmax(num, fabs((double)a[i] - ref[i])), den = fmax(den, fabs((double)ref[i]));
    return num / (den > 0 ? den : 1);
}

static void compare(const char *what, ip_model *m, const ip_dataset *d, double *ef, double *ep) {
    float ref[32 * 9], fast[32 * 9], precise[32 * 9];
    size_t n = step_grad(m, d, IP_CONV_REFERENCE, ref);
    cr_assert_eq(n, sizeof ref / sizeof *ref);
    step_grad(m, d, IP_CONV_FAST, fast);
    step_grad(m, d, IP_CONV_PRECISE, precise);
    *ef = max_rel(fast, ref, n), *ep = max_rel(precise, ref, n);
    cr_log_info("%s, block0.conv.weight gradient vs double convolutions: fast %.2e, precise %.2e", what,
                *ef, *ep);
    cr_expect_lt(*ep, FLOAT32_LEVEL, "%s: precise: relative error %.3g above the float32 level %.3g", what, *ep,
                 FLOAT32_LEVEL);
}

/* small-p, initialised and trained one epoch: fast loses against precise,
 * both far within the float32 level: small-p's first-layer gradient crosses
 * only two Winograd layers (block1, block2) and few near-ties. By how much
 * depends on the machine's kernels (fast vs precise, initialised / trained):
 * AVX-512, OpenBLAS SkylakeX: 1.5e-6 vs 3.8e-7 / 1.4e-6 vs 4.4e-7; AVX2 (Zen
 * 3), OpenBLAS Haswell, first layer on im2col: 3.6e-6 vs 1.0e-6 / 2.1e-6 vs
 * 1.3e-6; the same with the direct first layer: 1.2e-6 vs 6.9e-7 / 2.0e-6
 * vs 3.5e-7. The ratio runs from 1.5x to 5.6x, so what is asserted is its
 * direction at both points, not a margin. */
Test(model_conv, precise_first_layer_gradient) {
    ip_dataset d, te;
    if (load_images(&d, 2000) != 0) cr_skip_test("no Fashion-MNIST");
    cr_assert_eq(load_images(&te, 100), 0);
    ip_model m;
    double ef0, ep0, ef, ep;
    small_p(&m, NULL, NULL);
    compare("small-p initialised", &m, &d, &ef0, &ep0);
    ip_model_free(&m);
    cr_expect_gt(ef0, ep0, "initialised: fast (%.3g) is not less accurate than precise (%.3g)", ef0, ep0);
    if (!getenv("IPSWEEP_SANITIZED")) { /* an epoch and two double steps: minutes under sanitizers */
        small_p(&m, &d, &te);
        compare("small-p after 1 epoch on 2000 images", &m, &d, &ef, &ep);
        ip_model_free(&m);
        cr_expect_gt(ef, ep, "trained: fast (%.3g) is not less accurate than precise (%.3g)", ef, ep);
    }
    ip_data_free(&d);
    ip_data_free(&te);
}

/* alexnet-p, a training step of 4 N(0,1) images at initialisation: here the
 * fast setting's error (F(4x4, 5x5) in block1, F(4x4, 3x3) in blocks 2-4)
 * reaches the first layer as 1.5e-2 (measured; 1.2e-3 with 8 images): the
 * forward errors flip near-ties of max-pool and ReLU, which routes gradient
 * elsewhere. Precise measured 9e-7. The 1e-3 is this case. The
 * double reference costs ~10 s here (minutes under sanitizers: skipped). */
Test(model_conv, alexnet_fast_vs_precise) {
    if (getenv("IPSWEEP_SANITIZED")) cr_skip_test("the double reference is too slow under sanitizers");
    enum { N = 4 };
    ip_model_cfg cfg = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10};
    snprintf(cfg.arch, sizeof cfg.arch, "alexnet-p");
    ip_model m;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m, 7, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(&m, N, &e), 0, "%s", e.msg);
    ip_dataset d = {.n = N, .c = 3, .h = 32, .w = 32, .classes = 10};
    d.x = malloc(sizeof(float) * N * 3 * 32 * 32);
    d.y = malloc(sizeof(int32_t) * N);
    cr_assert(d.x && d.y);
    ip_rng r;
    ip_rng_init(&r, 3, 1);
    for (size_t i = 0; i < (size_t)N * 3 * 32 * 32; i++) d.x[i] = ip_rng_normal(&r);
    for (int i = 0; i < N; i++) d.y[i] = i % 10;
    const int t = ip_model_find_tensor(&m, "block0.conv.weight");
    cr_assert_geq(t, 0);
    const size_t n = m.tensors[t].numel;
    float *ref = malloc(n * sizeof(float)), *fast = malloc(n * sizeof(float)), *precise = malloc(n * sizeof(float));
    cr_assert(ref && fast && precise);
    step_grad_n(&m, &d, N, IP_CONV_REFERENCE, ref, "block0.conv.weight");
    step_grad_n(&m, &d, N, IP_CONV_FAST, fast, "block0.conv.weight");
    step_grad_n(&m, &d, N, IP_CONV_PRECISE, precise, "block0.conv.weight");
    double ef = max_rel(fast, ref, n), ep = max_rel(precise, ref, n);
    cr_log_info("alexnet-p, 4 images, block0.conv.weight gradient vs double convolutions: fast %.2e, precise %.2e",
                ef, ep);
    cr_expect_lt(ep, FLOAT32_LEVEL, "precise: relative error %.3g above the float32 level %.3g", ep, FLOAT32_LEVEL);
    /* fast's error is logged, not asserted: it is erratic in the batch (5e-6 at 2 images, 1.5e-2 at 4,
     * 1.2e-3 at 8: near-ties in max-pool and ReLU flipped), so a bound either way would test luck */
    free(ref), free(fast), free(precise), free(d.x), free(d.y);
    ip_model_free(&m);
}

/* The thread pool splits GEMMs by shape only (gemm.c), so a precise step is
 * bit-identical on 1 and 2 threads, as a fast one is: the same result on 1 or
 * N ranks whatever their threads. */
Test(model_conv, precise_same_bits_any_threads) {
    ip_dataset d;
    if (load_images(&d, STEP_N) != 0) cr_skip_test("no Fashion-MNIST");
    float g1[32 * 9], g2[32 * 9];
    ip_model m;
    small_p(&m, NULL, NULL);
    ip_set_threads(1);
    size_t n = step_grad(&m, &d, IP_CONV_PRECISE, g1);
    ip_set_threads(2);
    step_grad(&m, &d, IP_CONV_PRECISE, g2);
    cr_expect(memcmp(g1, g2, n * sizeof(float)) == 0, "precise gradients differ between 1 and 2 threads");
    ip_model_free(&m);
    ip_data_free(&d);
}

/* The checkpoint keeps the setting (attribute `conv`), so a task on a
 * precise model computes precisely; ip_model_set_conv switches a built model. */
Test(model_conv, setting_in_checkpoint) {
    char dir[128];
    tu_mkdtemp(dir, sizeof dir, "convck");
    ip_model_cfg cfg = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .conv = IP_CONV_PRECISE};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p");
    ip_model m;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m, 1, NULL, &e), 0, "%s", e.msg);
    for (int i = 0; i < m.nops; i++)
        if (m.ops[i].kind == IP_OP_CONV) cr_expect_eq(m.ops[i].conv.algo, IP_CONV_PRECISE, "%s", m.ops[i].name);
    const char *path = tu_path(dir, "p.h5");
    cr_assert_eq(ip_ckpt_save(&m, path, &e), 0, "%s", e.msg);
    ip_model_free(&m);
    ip_model_cfg back;
    cr_assert_eq(ip_ckpt_read_cfg(path, &back, &e), 0, "%s", e.msg);
    cr_expect_eq(back.conv, IP_CONV_PRECISE);
    cr_assert_eq(ip_model_build(&m, &back, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(&m, 8, &e), 0, "%s", e.msg);
    size_t w_precise = m.work_floats;
    cr_assert_eq(ip_model_set_conv(&m, IP_CONV_FAST, &e), 0, "%s", e.msg);
    cr_expect_geq(m.work_floats, w_precise, "the fast setting's workspace covers Winograd");
    for (int i = 0; i < m.nops; i++)
        if (m.ops[i].kind == IP_OP_CONV) cr_expect_eq(m.ops[i].conv.algo, IP_CONV_FAST, "%s", m.ops[i].name);
    ip_model_free(&m);
    tu_rmtree(dir);
}
