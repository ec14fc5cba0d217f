/* ip_model_infer (core/model/model.c): the eval-mode forward no backward
 * follows. It keeps no pool argmax and runs each Winograd conv with the batch-
 * norm tail that alone reads its output (conv2d_forward_tail: the tail applied
 * to the output tiles in cache). Its logits must be ip_model_forward(.., 0)'s
 * to the bit: evaluations, matches and their records do not move. Checked on
 * every architecture with random running statistics and affine parameters
 * (negative gammas turn the pooled max into a min), baseline and v2 on both
 * branches, F(4x4) and F(2x2) tiles, one Winograd chunk and several. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/model/model.h"
#include "../core/nn/winograd.h"
#include "testutil.h"

static void build(ip_model *m, const char *arch, int c, int hw, ip_scheme scheme, int algo, int batch) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.in_c = c, cfg.in_h = cfg.in_w = hw, cfg.classes = 10;
    cfg.norm = IP_NORM_BN, cfg.scheme = scheme, cfg.conv = algo;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 5, "infer", &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(m, batch, &e), 0, "%s", e.msg);
    /* statistics and affines a trained model could have: not the initial 0 / 1 */
    uint64_t stream = 100;
    for (int i = 0; i < m->nops; i++) {
        const ip_op *op = &m->ops[i];
        if (op->kind == IP_OP_NORM)
            for (int br = IP_BRANCH_PRIVATE; br <= IP_BRANCH_PUBLIC; br++) {
                float *rm, *rv;
                ip_model_norm_running(m, op, (ip_branch)br, &rm, &rv);
                if (!rm) continue;
                tu_fill(rm, (size_t)op->c, -0.5f, 0.5f, stream++);
                tu_fill(rv, (size_t)op->c, 0.3f, 2.f, stream++);
            }
        if (op->kind == IP_OP_AFFINE && op->weight >= 0) {
            tu_fill(m->params + m->tensors[op->weight].offset, (size_t)op->c, -1.5f, 1.5f, stream++);
            tu_fill(m->params + m->tensors[op->bias].offset, (size_t)op->c, -0.5f, 0.5f, stream++);
        }
    }
    ip_model_passports_changed(m);
}

/* Logits of both passes on the same n images; returns how many convs ran
 * with their tails (their output activation left as poisoned before the pass). */
static int check_one(ip_model *m, int n, ip_branch br, const char *what) {
    size_t sample = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w, k = (size_t)n * m->cfg.classes;
    float *x = tu_alloc((size_t)n * sample), *ref = tu_alloc(k);
    tu_fill(x, (size_t)n * sample, -1.f, 1.f, 31);
    m->branch = br;
    memcpy(ref, ip_model_forward(m, x, n, 0), k * sizeof *ref);
    memset(m->arena, 0xff, m->arena_floats * sizeof *m->arena); /* NaN everywhere */
    const float *got = ip_model_infer(m, x, n);
    for (size_t i = 0; i < k; i++)
        cr_assert(isfinite(ref[i]), "%s branch %d: logit %zu of the eval forward is %g", what, (int)br, i, ref[i]);
    cr_assert_eq(memcmp(ref, got, k * sizeof *ref), 0, "%s branch %d: ip_model_infer's logits differ", what, (int)br);
    int fused = 0;
    for (int i = 0; i < m->nops; i++) {
        const ip_op *op = &m->ops[i];
        const ip_act *a = &m->acts[op->out];
        if (op->kind != IP_OP_CONV || !a->stored) continue;
        size_t len = (size_t)a->c * a->h * a->w * (size_t)n, j = 0;
        const uint32_t *bits = (const uint32_t *)(m->arena + a->off);
        while (j < len && bits[j] == 0xffffffffu) j++;
        fused += j == len;
    }
    free(x), free(ref);
    return fused;
}

static int check(const char *arch, int c, int hw, ip_scheme scheme, int algo, int n) {
    ip_model m;
    build(&m, arch, c, hw, scheme, algo, n);
    char what[96];
    snprintf(what, sizeof what, "%s %s conv %s", arch, ip_scheme_name(scheme), ip_conv_algo_name(algo));
    int fused = check_one(&m, n, IP_BRANCH_PRIVATE, what);
    if (scheme != IP_SCHEME_BASELINE) cr_assert_eq(check_one(&m, n, IP_BRANCH_PUBLIC, what), fused);
    ip_model_free(&m);
    return fused;
}

/* small-p's block0 runs the direct kernel; blocks 1 and 2 (14x14 and 7x7, pooled) run fused */
Test(infer, small_p) {
    for (int scheme = IP_SCHEME_BASELINE; scheme <= IP_SCHEME_V2; scheme++) {
        cr_assert_eq(check("small-p", 1, 28, (ip_scheme)scheme, IP_CONV_FAST, 16), 2);
        cr_assert_eq(check("small-p", 1, 28, (ip_scheme)scheme, IP_CONV_PRECISE, 16), 2); /* F(2x2) */
    }
    cr_assert_eq(check("small-p", 1, 28, IP_SCHEME_V1, IP_CONV_GEMM, 16), 0);
    cr_assert_eq(check("small-p", 3, 32, IP_SCHEME_V2, IP_CONV_FAST, 13), 2); /* odd batch, 16x16 and 8x8 */
    ip_winograd_set_chunk_limit(20000); /* several chunks of a few images */
    cr_assert_eq(check("small-p", 1, 28, IP_SCHEME_V1, IP_CONV_FAST, 16), 2);
    ip_winograd_set_chunk_limit(0);
}

Test(infer, alexnet_p) {
    cr_assert_geq(check("alexnet-p", 3, 32, IP_SCHEME_V2, IP_CONV_FAST, 8), 3);
    cr_assert_geq(check("alexnet-p", 3, 32, IP_SCHEME_BASELINE, IP_CONV_FAST, 8), 3);
}

/* 32 images: the 4x4 stage reaches the Winograd path's 512 pixels */
Test(infer, resnet18_p) {
    cr_assert_geq(check("resnet18-p", 3, 32, IP_SCHEME_V2, IP_CONV_FAST, 32), 10);
    ip_winograd_force_tile(2);
    cr_assert_geq(check("resnet18-p", 3, 32, IP_SCHEME_BASELINE, IP_CONV_FAST, 32), 10);
    ip_winograd_force_tile(0);
}

/* No backward may follow: one that does gives NaN, not stale gradients. */
Test(infer, backward_after_it_is_nan) {
    ip_model m;
    build(&m, "small-p", 1, 28, IP_SCHEME_V1, IP_CONV_FAST, 4);
    float x[4 * 784], r[4 * 10], dx[4 * 784] = {0};
    tu_fill(x, 4 * 784, -1, 1, 32);
    tu_fill(r, 4 * 10, -1, 1, 33);
    ip_model_zero_grad(&m);
    ip_model_infer(&m, x, 4);
    ip_model_backward(&m, r, dx);
    cr_assert(isnan(dx[0]) && isnan(m.grads[0]));
    ip_model_forward(&m, x, 4, 0); /* an ordinary forward clears the mark */
    ip_model_zero_grad(&m);
    ip_model_backward(&m, r, dx);
    cr_assert(!isnan(m.grads[0]));
    ip_model_free(&m);
}

/* conv2d_forward_tail with sets (the forger's per-passport gamma/beta) and
 * either pooled rule, against conv2d_forward followed by the tail written out
 * here, value by value, bit for bit: 14x14 and 7x7 planes (an odd edge), sets
 * that do not divide the batch and, with small chunks, straddle them, F(4x4)
 * and F(2x2), negative gammas (the forger's rule pools the min there). */
static float tail_ref(float x, float mu, float r, float g, float b, int relu) {
    float v = g * ((x - mu) * r) + b;
    return relu && v < 0.f ? 0.f : v;
}

static void check_sets(int hw, int pool, int pool_first, int relu) {
    const int n = 12, cin = 32, cout = 32, per = 5;
    ip_conv_shape s;
    cr_assert_eq(ip_conv_shape_init(&s, n, cin, hw, hw, cout, 3, 3, 1, 1), 0);
    const int sets = (n + per - 1) / per, oh = pool ? hw / 2 : hw;
    size_t in_len = (size_t)cin * n * hw * hw, full_len = (size_t)cout * n * hw * hw;
    size_t out_len = (size_t)cout * n * oh * oh, w_len = (size_t)cout * cin * 9;
    float *x = tu_alloc(in_len), *w = tu_alloc(w_len), *full = tu_alloc(full_len), *got = tu_alloc(out_len);
    float *want = tu_alloc(out_len), *mean = tu_alloc(cout), *rstd = tu_alloc(cout);
    float *gamma = tu_alloc((size_t)sets * cout), *beta = tu_alloc((size_t)sets * cout);
    float *work = tu_alloc(ip_conv_workspace_floats(&s));
    tu_fill(x, in_len, -1, 1, 61), tu_fill(w, w_len, -0.2f, 0.2f, 62);
    tu_fill(mean, cout, -0.3f, 0.3f, 63), tu_fill(rstd, cout, 0.5f, 2.f, 64);
    tu_fill(gamma, (size_t)sets * cout, -1.5f, 1.5f, 65), tu_fill(beta, (size_t)sets * cout, -0.5f, 0.5f, 66);
    conv2d_forward(full, x, w, work, &s);
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < n; i++) {
            const float *p = full + ((size_t)o * n + i) * hw * hw;
            float mu = mean[o], r = rstd[o], g = gamma[(i / per) * cout + o], b = beta[(i / per) * cout + o];
            float *q = want + ((size_t)o * n + i) * oh * oh;
            for (int y = 0; y < oh; y++)
                for (int z = 0; z < oh; z++) {
                    if (!pool) {
                        q[y * oh + z] = tail_ref(p[y * hw + z], mu, r, g, b, relu);
                        continue;
                    }
                    const float *r0 = p + 2 * y * hw + 2 * z, *r1 = r0 + hw;
                    float e;
                    if (pool_first) {
                        float u = g < 0 ? (r0[0] < r0[1] ? r0[0] : r0[1]) : (r0[0] > r0[1] ? r0[0] : r0[1]);
                        float v = g < 0 ? (r1[0] < r1[1] ? r1[0] : r1[1]) : (r1[0] > r1[1] ? r1[0] : r1[1]);
                        e = tail_ref(g < 0 ? (u < v ? u : v) : (u > v ? u : v), mu, r, g, b, relu);
                    } else {
                        float c[4] = {tail_ref(r0[0], mu, r, g, b, relu), tail_ref(r0[1], mu, r, g, b, relu),
                                      tail_ref(r1[0], mu, r, g, b, relu), tail_ref(r1[1], mu, r, g, b, relu)};
                        e = c[0];
                        for (int k = 1; k < 4; k++)
                            if (c[k] > e || c[k] != c[k]) e = c[k];
                    }
                    q[y * oh + z] = e;
                }
        }
    ip_conv_tail t = {.mean = mean, .rstd = rstd, .gamma = gamma, .beta = beta, .relu = relu, .pool = pool,
                      .set_images = per, .set_stride = (size_t)cout, .pool_first = pool_first};
    cr_assert_eq(conv2d_forward_tail(got, x, w, work, &s, &t), 1, "the shape takes the Winograd path");
    cr_assert_eq(memcmp(got, want, out_len * sizeof *got), 0, "hw %d pool %d pool_first %d relu %d", hw, pool,
                 pool_first, relu);
    free(x), free(w), free(full), free(got), free(want), free(mean), free(rstd), free(gamma), free(beta), free(work);
}

Test(infer, conv_tail_sets_match_the_two_kernels) {
    for (int tile = 0; tile <= 2; tile += 2)
        for (size_t limit = 0; limit <= 40000; limit += 40000) {
            ip_winograd_force_tile(tile);
            ip_winograd_set_chunk_limit(limit); /* 0: one chunk; 40000 floats: chunks of a few images */
            for (int hw = 7; hw <= 14; hw += 7) {
                check_sets(hw, 0, 0, 1);
                check_sets(hw, 0, 0, 0);
                check_sets(hw, 1, 0, 1);
                check_sets(hw, 1, 1, 1);
                check_sets(hw, 1, 1, 0);
            }
        }
    ip_winograd_force_tile(0);
    ip_winograd_set_chunk_limit(0);
}
