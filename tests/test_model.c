/* Whole-model tests: the composed graph's gradients (parameters, passport
 * path, sign loss, input) against finite differences, determinism, and a
 * learning test on real Fashion-MNIST. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/io/data.h"
#include "../core/model/model.h"
#include "../core/passport/signature.h"
#include "../core/model/train.h"
#include "model_testutil.h"
#include "testutil.h"

/* The loss the gradient checks differentiate: sum(logits * r) (+ sign loss). */
typedef struct fd_ctx {
    ip_model *m;
    const float *x;
    const float *r;
    int n, training, with_sign;
} fd_ctx;

static double fd_loss(void *vctx) {
    fd_ctx *c = vctx;
    /* eval-mode statistics would change running stats; training-mode BN
     * updates them too, but they do not feed back into a training forward. */
    const float *logits = ip_model_forward(c->m, c->x, c->n, c->training);
    double l = tu_dot(logits, c->r, (size_t)c->n * c->m->cfg.classes);
    if (c->with_sign) l += ip_model_sign_loss(c->m);
    return l;
}

/* A hash of every ReLU on/off decision and max-pool argmax of the last
 * forward: the model is linear in each input/parameter direction (up to the
 * smooth normalisation) as long as this pattern does not change. A ReLU
 * before a max-pool is a fused tail's, whose output is not stored (plan.c):
 * there the decision that matters, the maximum's, is the pooled value's sign. */
static uint64_t kink_pattern(const ip_model *m, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < m->nops; i++) {
        const ip_op *op = &m->ops[i];
        size_t len = (size_t)op->c * op->h * op->w * (size_t)n;
        if ((op->kind == IP_OP_AFFINE || op->kind == IP_OP_ADD) && op->relu && m->acts[op->out].stored) {
            const float *o = m->arena + m->acts[op->out].off;
            for (size_t k = 0; k < len; k++) h = (h ^ (uint64_t)(o[k] > 0)) * 1099511628211ull;
        } else if (op->kind == IP_OP_POOL) {
            const uint32_t *a = m->index_arena + op->argmax_off;
            const float *o = m->arena + m->acts[op->out].off;
            for (size_t k = 0; k < len; k++) h = (h ^ a[k] ^ ((uint64_t)(o[k] > 0) << 40)) * 1099511628211ull;
        }
    }
    return h;
}

/* Directional derivative of the loss along a sparse random direction u (+-1
 * on `k` random entries of a tensor, 0 elsewhere), (L(p + eps u) - L(p - eps u))
 * / 2 eps, against g . u. Finite differences of a ReLU/max-pool network are
 * only meaningful inside one linear region: we try eps = 1e-2, 3e-3, 1e-3
 * and take the largest whose two perturbed forwards keep every ReLU decision
 * and pool argmax. Inside the region the central difference is exact up to
 * O(eps^2) (the normalisation) plus float32 round-off, about 1e-6 |L| / eps:
 * measured, at eps 1e-4 that round-off already reaches 1e-2, so smaller eps
 * are not used, and the error is relative to max(|num|, |ana|, 0.05) so that a
 * round-off of 1e-3 (|L| ~ 1 at eps 1e-3) is within the 2% tolerance.
 * A sparse u moves few units, so a kink-free eps often exists. Returns the relative error, or -1 when every
 * eps crossed a kink (not checkable). */
static double directional_err(fd_ctx *c, float *p, const float *g, size_t numel, size_t k, uint64_t stream,
                              uint64_t pattern0) {
    float *u = tu_alloc(numel), *keep = tu_alloc(numel);
    ip_rng rng;
    ip_rng_init(&rng, 99, stream);
    for (size_t j = 0; j < k && j < numel; j++) {
        size_t i = numel <= k ? j : ip_rng_below(&rng, (uint32_t)numel);
        u[i] = ip_rng_uniform(&rng) < 0.5f ? -1.f : 1.f;
    }
    double ana = 0, err = -1;
    for (size_t i = 0; i < numel; i++) ana += (double)g[i] * u[i];
    memcpy(keep, p, numel * sizeof *p);
    for (float eps = 1e-2f; eps > 9e-4f; eps /= 3.1623f) {
        for (size_t i = 0; i < numel; i++) p[i] = keep[i] + eps * u[i];
        double lp = fd_loss(c);
        uint64_t pp = kink_pattern(c->m, c->n);
        for (size_t i = 0; i < numel; i++) p[i] = keep[i] - eps * u[i];
        double lm = fd_loss(c);
        uint64_t pm = kink_pattern(c->m, c->n);
        if (pp == pattern0 && pm == pattern0) {
            double num = (lp - lm) / (2.0 * eps);
            err = fabs(num - ana) / fmax(5e-2, fmax(fabs(num), fabs(ana)));
            if (getenv("IPSWEEP_DEBUG_GRAD")) fprintf(stderr, "  eps %.1e num %.6g ana %.6g\n", eps, num, ana);
            break;
        }
    }
    memcpy(p, keep, numel * sizeof *p);
    free(u), free(keep);
    return err;
}

/* Checks every trainable parameter tensor's gradient and the input gradient
 * of the composed model (all layers, passport path, sign loss) to 2%. The
 * layer tests check each kernel entry by entry; this checks the wiring. */
static void check_model_grads(ip_model *m, int training, int with_sign) {
    int n = 2, classes = m->cfg.classes;
    size_t sample = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w;
    float *x = tu_alloc(n * sample), *r = tu_alloc((size_t)n * classes), *dx = tu_alloc(n * sample);
    tu_fill(x, n * sample, -1, 1, 11);
    tu_fill(r, (size_t)n * classes, -1, 1, 12);
    fd_ctx c = {m, x, r, n, training, with_sign};
    m->sign_loss_scale = with_sign ? 1.f : 0.f;
    ip_model_zero_grad(m);
    ip_model_forward(m, x, n, training);
    uint64_t pattern0 = kink_pattern(m, n);
    ip_model_backward(m, r, dx);
    float *g = malloc(m->nparams * sizeof *g);
    memcpy(g, m->grads, m->nparams * sizeof *g);
    int total = 0, checked = 0;
    for (int t = 0; t <= m->ntensors; t++)
        for (int trial = 0; trial < 4; trial++) {
        double err;
        const char *name;
        uint64_t stream = 1000 * (uint64_t)t + (uint64_t)trial;
        if (t < m->ntensors) {
            ip_tensor *tt = &m->tensors[t];
            if (tt->kind != IP_TENSOR_PARAM || !tt->trainable) continue;
            name = tt->name;
            err = directional_err(&c, m->params + tt->offset, g + tt->offset, tt->numel, 1, stream, pattern0);
        } else { /* the input gradient */
            name = "input";
            err = directional_err(&c, x, dx, n * sample, 1, stream, pattern0);
        }
        total++;
        if (getenv("IPSWEEP_DEBUG_GRAD")) fprintf(stderr, "%s: directional error %.3g\n", name, err);
        if (err < 0) continue;
        checked++;
        cr_assert_lt(err, 0.02, "%s (%s/%s): directional derivative off by %.3g", name, m->cfg.arch,
                     ip_scheme_name(m->cfg.scheme), err);
    }
    cr_log_info("%s/%s: %d of %d directions checkable", m->cfg.arch, ip_scheme_name(m->cfg.scheme), checked, total);
    cr_assert_geq(checked, total / 2, "only %d of %d directions could be checked without crossing a kink",
                  checked, total);
    m->sign_loss_scale = 0;
    free(x), free(r), free(dx), free(g);
}

Test(model, grad_baseline_bn) {
    ip_model m;
    tu_build_model(&m, "small-p", IP_NORM_BN, IP_SCHEME_BASELINE, 1, 8, 4);
    check_model_grads(&m, 1, 0);
    ip_model_free(&m);
}

Test(model, grad_v1_gn_with_sign_loss) {
    ip_model m;
    tu_build_model(&m, "small-p", IP_NORM_GN, IP_SCHEME_V1, 1, 8, 4);
    cr_assert_eq(m.npassports, 2);
    check_model_grads(&m, 1, 1);
    ip_model_free(&m);
}

Test(model, grad_v2_both_branches) {
    ip_model m;
    tu_build_model(&m, "small-p-narrow", IP_NORM_BN, IP_SCHEME_V2, 1, 8, 4);
    m.branch = IP_BRANCH_PUBLIC;
    check_model_grads(&m, 1, 0);
    m.branch = IP_BRANCH_PRIVATE;
    check_model_grads(&m, 1, 1);
    ip_model_free(&m);
}

Test(model, grad_eval_mode_input_gradient) {
    /* IPGuard differentiates an eval-mode model with respect to its input */
    ip_model m;
    tu_build_model(&m, "small-p", IP_NORM_BN, IP_SCHEME_BASELINE, 1, 8, 4);
    check_model_grads(&m, 0, 0);
    ip_model_free(&m);
}

Test(model, grad_resnet_residuals) {
    ip_model m;
    tu_build_model(&m, "resnet18-p", IP_NORM_GN, IP_SCHEME_V1, 3, 8, 3);
    cr_assert_eq(m.npassports, 5);
    check_model_grads(&m, 1, 1);
    ip_model_free(&m);
}

Test(model, passport_gamma_matches_reference) {
    ip_model m;
    tu_build_model(&m, "small-p", IP_NORM_BN, IP_SCHEME_V1, 1, 28, 2);
    ip_model_passport_affine(&m);
    for (int p = 0; p < m.npassports; p++) {
        ip_passport *pp = &m.passports[p];
        ip_conv_shape cs = m.ops[pp->conv_op].conv;
        cs.n = 1;
        float *ref = tu_alloc(pp->cout);
        const float *w = m.params + m.tensors[m.ops[pp->conv_op].weight].offset;
        ip_conv_passport_ref(ref, m.bufs + m.tensors[pp->key_gamma].offset, w, &cs);
        cr_assert_lt(tu_max_rel_diff(ref, pp->gamma, pp->cout), 1e-4);
        free(ref);
    }
    ip_model_free(&m);
}

Test(model, architectures_and_shapes) {
    const struct { const char *arch; int c, hw, passports; } cases[] = {
        {"small-p", 1, 28, 2}, {"small-p-narrow", 1, 28, 2}, {"small-p-wide", 1, 28, 2},
        {"alexnet-p", 3, 32, 3}, {"alexnet-p", 1, 28, 3}, {"resnet18-p", 3, 32, 5}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ip_model_cfg cfg = {0};
        snprintf(cfg.arch, sizeof cfg.arch, "%s", cases[i].arch);
        cfg.in_c = cases[i].c, cfg.in_h = cfg.in_w = cases[i].hw, cfg.classes = 10;
        cfg.scheme = IP_SCHEME_V1;
        ip_model m;
        ip_err e = {{0}};
        cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s: %s", cases[i].arch, e.msg);
        cr_assert_eq(m.npassports, cases[i].passports, "%s", cases[i].arch);
        ip_model_free(&m);
    }
}

Test(model, alexnet_default_passport_bits) {
    ip_model_cfg cfg = {.in_c = 3, .in_h = 32, .in_w = 32, .classes = 10, .scheme = IP_SCHEME_V2};
    snprintf(cfg.arch, sizeof cfg.arch, "alexnet-p");
    ip_model m;
    ip_err e;
    cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(m.passports[0].cout, 384);
    cr_assert_eq(m.passports[1].cout, 256);
    cr_assert_eq(m.passports[2].cout, 256);
    ip_model_free(&m);
}

Test(model, bad_configs_fail_cleanly) {
    ip_model m;
    ip_err e = {{0}};
    ip_model_cfg cfg = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10, .scheme = IP_SCHEME_V1};
    snprintf(cfg.arch, sizeof cfg.arch, "vgg");
    cr_assert_neq(ip_model_build(&m, &cfg, &e), 0);
    cr_assert(strstr(e.msg, "unknown architecture"), "%s", e.msg);
    snprintf(cfg.arch, sizeof cfg.arch, "small-p");
    snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "block1,block9");
    cr_assert_neq(ip_model_build(&m, &cfg, &e), 0);
    cr_assert(strstr(e.msg, "block9"), "%s", e.msg);
    snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "none");
    cr_assert_neq(ip_model_build(&m, &cfg, &e), 0, "v1 without passport layers must fail");
    cfg.passport_layers[0] = 0;
    cfg.in_h = cfg.in_w = 4;
    cr_assert_neq(ip_model_build(&m, &cfg, &e), 0, "4x4 input is too small for three pools");
    /* signature longer than the 64-channel layer's capacity (8 chars) */
    cfg.in_h = cfg.in_w = 28;
    cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_neq(ip_model_init(&m, 1, "much too long", &e), 0);
    ip_model_free(&m);
}

Test(model, deterministic_init_and_training) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, 128, 1, 28, 28, 10, 3, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    float *first = NULL;
    for (int run = 0; run < 2; run++) {
        ip_model m;
        tu_build_model(&m, "small-p-narrow", IP_NORM_BN, IP_SCHEME_V1, 1, 28, 32);
        ip_train_cfg tc;
        ip_train_defaults(&tc);
        tc.batch = 32;
        tc.augment = 1;
        cr_assert_eq(ip_train(&m, &d, NULL, &tc, NULL, NULL, &e), 0, "%s", e.msg);
        if (!first) {
            first = malloc(m.nparams * sizeof *first);
            memcpy(first, m.params, m.nparams * sizeof *first);
        } else {
            cr_assert(memcmp(first, m.params, m.nparams * sizeof *first) == 0, "training is not bit-reproducible");
        }
        ip_model_free(&m);
    }
    free(first);
    ip_data_free(&d);
}

Test(model, v1_learns_signature_on_synthetic) {
    ip_dataset tr, te;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&tr, 512, 1, 16, 16, 10, 5, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_synthetic(&te, 256, 1, 16, 16, 10, 5, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    ip_model m;
    tu_build_model(&m, "small-p-narrow", IP_NORM_GN, IP_SCHEME_V1, 1, 16, 32);
    ip_train_cfg tc;
    ip_train_defaults(&tc);
    tc.batch = 32;
    tc.epochs = 3;
    cr_assert_eq(ip_train(&m, &tr, &te, &tc, NULL, NULL, &e), 0, "%s", e.msg);
    double acc;
    cr_assert_eq(ip_evaluate(&m, &te, 64, &acc, &e), 0, "%s", e.msg);
    cr_assert_gt(acc, 0.5, "synthetic accuracy %.3f", acc);
    cr_assert_eq(ip_model_detect(&m, -1), 1.0, "signature detection %.3f", ip_model_detect(&m, -1));
    char text[3];
    ip_signature_decode(text, m.passports[0].gamma, 2);
    cr_assert_str_eq(text, "ok");
    ip_model_free(&m);
    ip_data_free(&tr);
    ip_data_free(&te);
}

Test(model, learns_fashion_mnist_in_one_epoch) {
    const char *dir = getenv("IPSWEEP_DATA_DIR");
    char src[512];
    snprintf(src, sizeof src, "fashion-mnist:%s", dir ? dir : "/usr/share/datasets/fashion-mnist");
    ip_dataset tr, te;
    ip_err e = {{0}};
    if (ip_data_load(&tr, src, IP_SPLIT_TRAIN, 2000, &e) != 0) cr_skip_test("no Fashion-MNIST: %s", e.msg);
    cr_assert_eq(ip_data_load(&te, src, IP_SPLIT_TEST, 1000, &e), 0, "%s", e.msg);
    ip_model_cfg cfg = {.in_c = 1, .in_h = 28, .in_w = 28, .classes = 10};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p");
    ip_data_channel_stats(&tr, cfg.in_mean, cfg.in_std);
    ip_model m;
    cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m, 1, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(&tr, &m, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(&te, &m, &e), 0, "%s", e.msg);
    ip_train_cfg tc;
    ip_train_defaults(&tc);
    cr_assert_eq(ip_train(&m, &tr, &te, &tc, NULL, NULL, &e), 0, "%s", e.msg);
    double acc;
    cr_assert_eq(ip_evaluate(&m, &te, 128, &acc, &e), 0, "%s", e.msg);
    cr_log_info("small-p, 2000 Fashion-MNIST images, 1 epoch: test accuracy %.3f", acc);
    cr_assert_gt(acc, 0.5, "accuracy %.3f is not clearly above chance (0.1)", acc);
    ip_model_free(&m);
    ip_data_free(&tr);
    ip_data_free(&te);
}

/* ip_model_forward_to(a) computes activation a as the whole forward does, bit
 * for bit, and nothing needs the ops after its producer: every stored
 * activation is checked with the arena poisoned before the partial pass. */
Test(model, forward_to_matches_the_whole_forward) {
    const struct { const char *arch; int c, hw, n, stride; } cases[] = {
        {"small-p", 1, 28, 3, 1}, {"alexnet-p", 3, 32, 2, 1}, {"resnet18-p", 3, 32, 2, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (int training = 0; training < 2; training++) {
            ip_model m;
            tu_build_model(&m, cases[k].arch, IP_NORM_BN, IP_SCHEME_BASELINE, cases[k].c, cases[k].hw, cases[k].n);
            size_t in = (size_t)cases[k].n * cases[k].c * cases[k].hw * cases[k].hw;
            float *x = tu_alloc(in), *whole = tu_alloc(m.arena_floats);
            tu_fill(x, in, -1.f, 1.f, 11);
            ip_model_forward(&m, x, cases[k].n, training);
            memcpy(whole, m.arena, m.arena_floats * sizeof *whole);
            int checked = 0;
            for (int a = 0; a < m.nacts; a += cases[k].stride) {
                const ip_act *act = &m.acts[a];
                if (!act->stored) continue;
                size_t len = (size_t)act->c * act->h * act->w * (size_t)cases[k].n;
                memset(m.arena, 0xff, m.arena_floats * sizeof *m.arena); /* NaN everywhere */
                ip_model_forward_to(&m, x, cases[k].n, training, a);
                cr_assert_eq(memcmp(m.arena + act->off, whole + act->off, len * sizeof(float)), 0,
                             "%s training=%d: activation %d differs", cases[k].arch, training, a);
                checked++;
            }
            cr_assert_gt(checked, 3, "%s: %d activations checked", cases[k].arch, checked);
            free(x);
            free(whole);
            ip_model_free(&m);
        }
}
