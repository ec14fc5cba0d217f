/* The ERB ambiguity attack (core/passport/erb.h, core/tasks/ambiguity.c):
 * the blocks' forward/backward against finite differences and a naive
 * double twin, the minimum-norm forged passport, and the task on a tiny V1
 * owner (small-p-narrow on a synthetic 16x16 set, as in test_attacks.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/passport/erb.h"
#include "../core/tasks/tasks.h"
#include "../core/util/rng.h"
#include "testutil.h"

#define SRC "synthetic:1024x1x16x16"
#define OWNER_LIMIT 512
#define TEST_LIMIT 256

static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "erb"), "mkdtemp failed"); }
static void suite_fini(void) { tu_rmtree(scratch); }
TestSuite(erb, .init = suite_init, .fini = suite_fini);

static const ip_erb_block blocks[3] = {IP_ERB_CERB, IP_ERB_IERB, IP_ERB_NONE};

/* L = sum_i w_i out_i: its gradient is dout = w */
static double loss_of(ip_erb_block b, size_t c, const float *theta, const float *g, const float *w) {
    float *out = malloc(c * sizeof *out);
    ip_erb_forward_ref(b, c, theta, g, out);
    double l = 0;
    for (size_t i = 0; i < c; i++) l += (double)w[i] * out[i];
    free(out);
    return l;
}

Test(erb, blocks_match_the_naive_twin_and_finite_differences) {
    const size_t cs[2] = {16, 24};
    for (int bi = 0; bi < 3; bi++)
        for (int ci = 0; ci < 2; ci++) {
            const ip_erb_block b = blocks[bi];
            const size_t c = cs[ci], np = ip_erb_nparams(b, c);
            float *theta = malloc((np + 1) * sizeof *theta), *g = malloc(c * sizeof *g), *w = malloc(c * sizeof *w);
            float *out = malloc(c * sizeof *out), *ref = malloc(c * sizeof *ref);
            float *pre = malloc((ip_erb_scratch(b, c) + 1) * sizeof *pre);
            float *hid = malloc((ip_erb_hidden(b, c) + 1) * sizeof *hid);
            float *dg = calloc(c, sizeof *dg), *dt = calloc(np + 1, sizeof *dt);
            float *dg_ref = calloc(c, sizeof *dg_ref), *dt_ref = calloc(np + 1, sizeof *dt_ref);
            ip_erb_init(b, c, theta, 3, ip_stream("test", (uint64_t)bi));
            ip_rng r;
            ip_rng_init(&r, 4, 0);
            for (size_t i = 0; i < c; i++) g[i] = ip_rng_range(&r, -1.5f, 1.5f), w[i] = ip_rng_range(&r, -1, 1);
            ip_erb_forward(b, c, theta, g, out, pre);
            ip_erb_forward_ref(b, c, theta, g, ref);
            for (size_t i = 0; i < c; i++) cr_assert_float_eq(out[i], ref[i], 1e-5, "block %d forward [%zu]", bi, i);
            ip_erb_backward(b, c, theta, g, pre, w, dg, dt, hid);
            ip_erb_backward_ref(b, c, theta, g, w, dg_ref, dt_ref);
            for (size_t i = 0; i < c; i++) cr_assert_float_eq(dg[i], dg_ref[i], 1e-5, "block %d dgamma [%zu]", bi, i);
            for (size_t i = 0; i < np; i++) cr_assert_float_eq(dt[i], dt_ref[i], 1e-5, "block %d dtheta [%zu]", bi, i);
            /* central differences of the double twin (away from LeakyReLU's kink: a pre-activation within
             * h of 0 would make the difference straddle it, so those entries are skipped) */
            const float h = 1e-2f;
            for (size_t i = 0; i < c; i++) {
                float keep = g[i];
                g[i] = keep + h;
                double lp = loss_of(b, c, theta, g, w);
                g[i] = keep - h;
                double lm = loss_of(b, c, theta, g, w);
                g[i] = keep;
                double fd = (lp - lm) / (2 * h);
                if (b == IP_ERB_NONE || fabs(fd - dg[i]) < 2e-3 * (1 + fabs(fd))) continue;
                /* a mismatch must come from a kink crossing: recheck with a smaller step */
                const float h2 = 1e-4f;
                g[i] = keep + h2;
                lp = loss_of(b, c, theta, g, w);
                g[i] = keep - h2;
                lm = loss_of(b, c, theta, g, w);
                g[i] = keep;
                fd = (lp - lm) / (2 * h2);
                cr_assert(fabs(fd - dg[i]) < 1e-2 * (1 + fabs(fd)), "block %d dgamma[%zu] %g vs fd %g", bi, i,
                          dg[i], fd);
            }
            for (size_t i = 0; i < np; i++) {
                float keep = theta[i];
                theta[i] = keep + h;
                double lp = loss_of(b, c, theta, g, w);
                theta[i] = keep - h;
                double lm = loss_of(b, c, theta, g, w);
                theta[i] = keep;
                double fd = (lp - lm) / (2 * h);
                if (fabs(fd - dt[i]) < 2e-3 * (1 + fabs(fd))) continue;
                const float h2 = 1e-4f;
                theta[i] = keep + h2;
                lp = loss_of(b, c, theta, g, w);
                theta[i] = keep - h2;
                lm = loss_of(b, c, theta, g, w);
                theta[i] = keep;
                fd = (lp - lm) / (2 * h2);
                cr_assert(fabs(fd - dt[i]) < 1e-2 * (1 + fabs(fd)), "block %d dtheta[%zu] %g vs fd %g", bi, i,
                          dt[i], fd);
            }
            free(theta), free(g), free(w), free(out), free(ref), free(pre), free(hid);
            free(dg), free(dt), free(dg_ref), free(dt_ref);
        }
}

Test(erb, sizes_follow_the_paper) {
    cr_assert_eq(ip_erb_hidden(IP_ERB_CERB, 64), 8);
    cr_assert_eq(ip_erb_hidden(IP_ERB_CERB, 4), 1);
    cr_assert_eq(ip_erb_nparams(IP_ERB_CERB, 64), 64 * 8 * 2 + 8 + 64);
    cr_assert_eq(ip_erb_nparams(IP_ERB_IERB, 64), 64 * 31);
    cr_assert_eq(ip_erb_nparams(IP_ERB_NONE, 64), 0);
}

/* Trains a tiny owner and saves it; returns its test accuracy. */
static double owner(const char *path, ip_scheme scheme, int epochs) {
    ip_train_task t = tu_tiny_train(SRC, scheme, IP_NORM_BN, epochs, path);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&mt, "test_acc");
    ip_metrics_free(&mt);
    return acc;
}

Test(erb, forged_passport_reproduces_a_scale_with_minimum_norm) {
    char own[256];
    snprintf(own, sizeof own, "%s/own.h5", scratch);
    owner(own, IP_SCHEME_V1, 1);
    ip_model m = {0};
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(&m, own, &e), 0, "%s", e.msg);
    for (int p = 0; p < m.npassports; p++) {
        const ip_passport *pp = &m.passports[p];
        size_t nk = m.tensors[pp->key_gamma].numel, c = (size_t)pp->cout;
        float *g = malloc(c * sizeof *g), *b = malloc(c * sizeof *b);
        ip_rng r;
        ip_rng_init(&r, 5, (uint64_t)p);
        for (size_t i = 0; i < c; i++) g[i] = ip_rng_range(&r, -1, 1), b[i] = ip_rng_range(&r, -1, 1);
        double res;
        cr_assert_eq(ip_erb_solve_passport(&m, p, g, b, ip_tensor_buf(&m, pp->key_gamma),
                                           ip_tensor_buf(&m, pp->key_beta), &res, &e), 0, "%s", e.msg);
        ip_model_passports_changed(&m);
        ip_model_passport_affine(&m);
        double err = 0;
        for (size_t i = 0; i < c; i++) {
            err = fmax(err, fabs(pp->gamma[i] - g[i]));
            err = fmax(err, fabs(pp->beta[i] - b[i]));
        }
        cr_log_info("layer %s: Cout %zu, key %zu values: residual %.2e, max error %.2e", pp->layer, c, nk, res, err);
        if (nk >= c) { /* the map has full row rank in practice: reproduced */
            cr_assert_lt(res, 1e-3, "layer %s residual %g", pp->layer, res);
            cr_assert_lt(err, 1e-3, "layer %s max error %g", pp->layer, err);
        }
        free(g), free(b);
    }
    ip_model_free(&m);
}

/* The owner's own passport is one exact solution for its gamma/beta: the minimum-norm one is no longer. */
Test(erb, forged_passport_is_no_longer_than_the_real_one) {
    char own[256];
    snprintf(own, sizeof own, "%s/own.h5", scratch);
    owner(own, IP_SCHEME_V1, 1);
    ip_model m = {0};
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(&m, own, &e), 0, "%s", e.msg);
    ip_model_passport_affine(&m);
    for (int p = 0; p < m.npassports; p++) {
        const ip_passport *pp = &m.passports[p];
        size_t nk = m.tensors[pp->key_gamma].numel, c = (size_t)pp->cout;
        float *g = malloc(c * sizeof *g), *b = malloc(c * sizeof *b), *kg = malloc(nk * sizeof *kg),
              *kb = malloc(nk * sizeof *kb);
        memcpy(g, pp->gamma, c * sizeof *g), memcpy(b, pp->beta, c * sizeof *b);
        double res;
        cr_assert_eq(ip_erb_solve_passport(&m, p, g, b, kg, kb, &res, &e), 0, "%s", e.msg);
        double n_real = 0, n_min = 0;
        const float *real = ip_tensor_buf(&m, pp->key_gamma);
        for (size_t i = 0; i < nk; i++) n_real += (double)real[i] * real[i], n_min += (double)kg[i] * kg[i];
        cr_log_info("layer %s: |real key| %.3f, |min-norm key| %.3f, residual %.1e", pp->layer, sqrt(n_real),
                    sqrt(n_min), res);
        cr_assert_lt(res, 1e-3);
        cr_assert_leq(n_min, n_real * (1 + 1e-4));
        free(g), free(b), free(kg), free(kb);
    }
    ip_model_free(&m);
}

static ip_erb_task erb_task(const char *own, ip_erb_block b, double fraction, int epochs) {
    ip_erb_task t;
    ip_erb_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", own);
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.block = b;
    t.fraction = fraction;
    t.epochs = epochs;
    t.batch = 32;
    t.seed = 7;
    return t;
}

static ip_metrics run(const ip_erb_task *t) {
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_erb(t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(erb, attack_on_a_v1_owner_beats_a_random_passport) {
    char own[256];
    snprintf(own, sizeof own, "%s/own.h5", scratch);
    owner(own, IP_SCHEME_V1, 6);
    /* a random passport: the fake2 passport forgery before any training */
    ip_fake2_task f;
    ip_fake2_task_defaults(&f);
    snprintf(f.model_path, sizeof f.model_path, "%s", own);
    snprintf(f.data, sizeof f.data, SRC);
    f.train_limit = OWNER_LIMIT, f.test_limit = TEST_LIMIT, f.target = IP_FAKE2_PASSPORT, f.epochs = 0, f.seed = 3;
    ip_metrics fm;
    ip_metrics_init(&fm);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fake2(&f, &fm, &e), 0, "%s", e.msg);
    const double random_acc = ip_metrics_get(&fm, "init_test_acc");
    ip_metrics_free(&fm);
    for (int bi = 0; bi < 3; bi++) {
        ip_erb_task t = erb_task(own, blocks[bi], 0.25, 4);
        t.opt.kind = IP_OPT_ADAM;
        t.opt.lr = 0.01f;
        ip_metrics mt = run(&t);
        cr_log_info("erb block %d: real %.3f, init %.3f, random passport %.3f -> forged %.3f (owner detect %.3f), "
                    "passport %.3f (residual %.1e)",
                    bi, ip_metrics_get(&mt, "real_acc"), ip_metrics_get(&mt, "init_acc"), random_acc,
                    ip_metrics_get(&mt, "forged_acc"), ip_metrics_get(&mt, "owner_detect"),
                    ip_metrics_get(&mt, "passport_acc"), ip_metrics_get(&mt, "passport_residual"));
        cr_assert_gt(ip_metrics_get(&mt, "forged_acc"), random_acc + 0.2, "forged %.3f vs random passport %.3f",
                     ip_metrics_get(&mt, "forged_acc"), random_acc);
        /* the forged passport reproduces the forged scale/bias: the same network */
        cr_assert_lt(ip_metrics_get(&mt, "passport_residual"), 1e-3);
        cr_assert_float_eq(ip_metrics_get(&mt, "passport_acc"), ip_metrics_get(&mt, "forged_acc"), 0.02);
        ip_metrics_free(&mt);
    }
}

Test(erb, target_signature_is_reached_and_runs_are_deterministic) {
    char own[256];
    snprintf(own, sizeof own, "%s/own.h5", scratch);
    owner(own, IP_SCHEME_V2, 3);
    ip_erb_task t = erb_task(own, IP_ERB_CERB, 0.5, 4);
    t.target = IP_ERB_TARGET_FLIP;
    t.flip_fraction = 1;
    t.opt.kind = IP_OPT_ADAM;
    ip_metrics a = run(&t), b = run(&t);
    cr_log_info("v2 cerb, target all flipped: forged %.3f, forged detect %.3f, owner detect %.3f",
                ip_metrics_get(&a, "forged_acc"), ip_metrics_get(&a, "forged_detect"),
                ip_metrics_get(&a, "owner_detect"));
    cr_assert_eq(ip_metrics_get(&a, "forged_acc"), ip_metrics_get(&b, "forged_acc"));
    cr_assert_eq(ip_metrics_get(&a, "forged_detect"), ip_metrics_get(&b, "forged_detect"));
    /* the sign loss pulls most channels across zero (the owner trained with the same loss towards its own) */
    cr_assert_gt(ip_metrics_get(&a, "forged_detect"), 0.7);
    cr_assert_gt(ip_metrics_get(&a, "forged_acc"), 0.9);
    cr_assert_float_eq(ip_metrics_get(&a, "forged_detect") + ip_metrics_get(&a, "owner_detect"), 1.0, 1e-9);
    ip_metrics_free(&a), ip_metrics_free(&b);
}

Test(erb, bad_keys_are_rejected) {
    const ip_task_def *d = ip_task_def_find("erb");
    cr_assert_not_null(d);
    ip_erb_task t = erb_task("/nonexistent.h5", IP_ERB_CERB, 0.1, 1);
    const char *key = NULL;
    char msg[256];
    t.target = IP_ERB_TARGET_SIGNATURE;
    cr_assert_neq(d->check(&t, NULL, &key, msg, sizeof msg), 0);
    cr_assert_str_eq(key, "target");
    t.target = IP_ERB_TARGET_NONE;
    snprintf(t.signature, sizeof t.signature, "me");
    cr_assert_neq(d->check(&t, NULL, &key, msg, sizeof msg), 0);
    cr_assert_str_eq(key, "signature");
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_neq(ip_task_erb(&t, &mt, &e), 0);
    t.signature[0] = 0;
    t.flip_fraction = 2;
    cr_assert_neq(ip_task_erb(&t, &mt, &e), 0);
    cr_assert(strstr(e.msg, "flip_fraction"), "%s", e.msg);
    /* a baseline model has no passport to forge */
    char base[256];
    snprintf(base, sizeof base, "%s/base.h5", scratch);
    owner(base, IP_SCHEME_BASELINE, 1);
    t = erb_task(base, IP_ERB_CERB, 0.1, 1);
    cr_assert_neq(ip_task_erb(&t, &mt, &e), 0);
    cr_assert(strstr(e.msg, "passport model"), "%s", e.msg);
    /* the parser rejects a bad block and a fraction above 1 */
    ip_value v;
    int32_t lb[1 + IP_MAX_INT_LIST];
    cr_assert_neq(ip_value_parse(ip_task_param(d, "block"), "xerb", &v, lb, msg, sizeof msg), 0);
    cr_assert_neq(ip_value_parse(ip_task_param(d, "fraction"), "1.5", &v, lb, msg, sizeof msg), 0);
    ip_metrics_free(&mt);
}
