/* Fake-passport evaluation (core/passport/forge.h) and passport keys
 * (core/passport_keys.h): the forged path against the straightforward one
 * (keys set into the model, ip_predict), sharding, screen mode, key types,
 * and the fake1 / verify task code and kinds. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/io/data.h"
#include "../core/passport/forge.h"
#include "../core/model/model.h"
#include "../core/passport/passport_keys.h"
#include "../core/tasks/tasks.h"
#include "../core/model/train.h"
#include "../core/nn/winograd.h"
#include "../runner/kinds/kinds.h"
#include "testutil.h"

extern const rn_kind rn_kind_fake1, rn_kind_verify;

/* A small model trained briefly on synthetic data (train_n images of 1xHWxHW), and its test split. */
static void tiny_model(ip_model *m, ip_dataset *te, const char *arch, ip_norm_kind norm, ip_scheme scheme, int hw,
                       int epochs, size_t train_n, size_t test_n) {
    ip_dataset tr;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&tr, train_n, 1, hw, hw, 10, 5, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_synthetic(te, test_n, 1, hw, hw, 10, 5, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.in_c = 1, cfg.in_h = cfg.in_w = hw, cfg.classes = 10;
    cfg.norm = norm, cfg.scheme = scheme;
    ip_data_channel_stats(&tr, cfg.in_mean, cfg.in_std);
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 3, "ok", &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(&tr, m, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(te, m, &e), 0, "%s", e.msg);
    if (epochs > 0) {
        ip_train_cfg tc;
        ip_train_defaults(&tc);
        tc.batch = 32;
        tc.epochs = epochs;
        cr_assert_eq(ip_train(m, &tr, NULL, &tc, NULL, NULL, &e), 0, "%s", e.msg);
    }
    m->branch = IP_BRANCH_PRIVATE;
    ip_data_free(&tr);
}

/* Key callback over an explicit list of key vectors. */
typedef struct keylist {
    const float *keys;
    size_t floats;
} keylist;

static int list_keys(void *ctx, uint64_t index, float *keys, ip_err *e) {
    (void)e;
    const keylist *k = ctx;
    memcpy(keys, k->keys + index * k->floats, k->floats * sizeof *keys);
    return 0;
}

/* n key vectors: 0 = the model's own, 1 = the model's + small noise, the rest random. */
static float *make_keys(const ip_model *m, int n, float noise) {
    size_t kf = ip_keys_floats(m);
    float *k = tu_alloc(kf * (size_t)n);
    ip_keys_from_model(m, k);
    ip_rng r;
    ip_rng_init(&r, 77, ip_stream("test-keys", 0));
    if (n > 1)
        for (size_t i = 0; i < kf; i++) k[kf + i] = k[i] + noise * ip_rng_range(&r, -1.f, 1.f);
    for (size_t i = 2 * kf; i < kf * (size_t)n; i++) k[i] = ip_rng_range(&r, -1.f, 1.f);
    return k;
}

/* The forged predictions of n passports on E images equal ip_predict with the keys set into the model. */
static void check_matches_model(ip_model *m, const ip_dataset *te, size_t E, const ip_forge_cfg *cfg, int n) {
    ip_err e = {{0}};
    size_t kf = ip_keys_floats(m);
    float *own = tu_alloc(kf);
    ip_keys_from_model(m, own);
    float *keys = make_keys(m, n, 0.05f);
    ip_forge *f;
    cr_assert_eq(ip_forge_create(&f, m, te, E, cfg, &e), 0, "%s", e.msg);
    ip_forge_result r;
    cr_assert_eq(ip_forge_result_alloc(&r, (size_t)n, &e), 0);
    r.pred = malloc((size_t)n * E * sizeof *r.pred);
    keylist kl = {keys, kf};
    cr_assert_eq(ip_forge_run(f, list_keys, &kl, 0, (size_t)n, 0, 0.0, &r, &e), 0, "%s", e.msg);
    ip_dataset sub = *te;
    sub.n = E;
    int32_t *ref = malloc(E * sizeof *ref);
    for (int p = 0; p < n; p++) {
        ip_keys_to_model(m, keys + (size_t)p * kf);
        cr_assert_eq(ip_model_plan(m, 32, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_predict(m, &sub, 32, ref, &e), 0, "%s", e.msg);
        int ok = 0;
        for (size_t i = 0; i < E; i++) {
            cr_assert_eq(r.pred[(size_t)p * E + i], ref[i], "%s/%s passport %d image %zu: forged %d, model %d",
                         m->cfg.arch, ip_norm_name(m->cfg.norm), p, i, r.pred[(size_t)p * E + i], ref[i]);
            ok += ref[i] == te->y[i];
        }
        cr_assert_eq(r.correct[p], ok);
        cr_assert_eq(r.evaluated[p], (int32_t)E);
        cr_assert_float_eq(r.detect[p], ip_model_detect(m, -1), 1e-12, "passport %d detection", p);
    }
    ip_keys_to_model(m, own);
    free(ref), free(r.pred), free(keys), free(own);
    ip_forge_result_free(&r);
    ip_forge_free(f);
}

Test(forge, matches_model_path_small_bn) {
    ip_model m;
    ip_dataset te;
    tiny_model(&m, &te, "small-p-narrow", IP_NORM_BN, IP_SCHEME_V1, 16, 1, 256, 100);
    ip_forge_cfg cfg;
    ip_forge_defaults(&cfg);
    check_matches_model(&m, &te, 100, &cfg, 7);
    /* several groups per chunk, a partial last group, blocks of 3, odd chunks, no cache */
    cfg.group = 2, cfg.chunk = 24, cfg.block = 3;
    check_matches_model(&m, &te, 77, &cfg, 7);
    cfg.no_cache = 1; /* the shared activations recomputed for every block */
    check_matches_model(&m, &te, 77, &cfg, 5);
    ip_model_free(&m);
    ip_data_free(&te);
}

Test(forge, matches_model_path_gn_v2_private) {
    ip_model m;
    ip_dataset te;
    tiny_model(&m, &te, "small-p-narrow", IP_NORM_GN, IP_SCHEME_V2, 16, 1, 256, 64);
    ip_forge_cfg cfg;
    ip_forge_defaults(&cfg);
    cfg.group = 3;
    check_matches_model(&m, &te, 64, &cfg, 5);
    ip_model_free(&m);
    ip_data_free(&te);
}

Test(forge, matches_model_path_resnet_shared_shortcut) {
    /* the passport layers of resnet18-p are the last stage, whose shortcut conv
     * reads a passport-independent activation: shared operands broadcast into ADD */
    ip_model m;
    ip_dataset te;
    tiny_model(&m, &te, "resnet18-p", IP_NORM_BN, IP_SCHEME_V1, 8, 0, 32, 20);
    ip_forge_cfg cfg;
    ip_forge_defaults(&cfg);
    cfg.group = 2;
    check_matches_model(&m, &te, 20, &cfg, 3);
    ip_model_free(&m);
    ip_data_free(&te);
}

/* small-p's blocks 1 and 2 (32 -> 64 at 14x14, 64 -> 128 at 7x7, pooled) run as
 * Winograd with their passport tails fused into the output transform
 * (run_conv_tail): a different gamma/beta per group member, images of one
 * member split across Winograd chunks. Predictions and counts equal the
 * unfused kernels' and the model's. */
Test(forge, matches_model_path_fused_winograd_tails) {
    ip_model m;
    ip_dataset te;
    tiny_model(&m, &te, "small-p", IP_NORM_BN, IP_SCHEME_V1, 28, 2, 256, 60);
    ip_forge_cfg cfg;
    ip_forge_defaults(&cfg);
    cfg.group = 3, cfg.chunk = 20;
    check_matches_model(&m, &te, 60, &cfg, 7);
    ip_winograd_set_chunk_limit(150000); /* chunks of a few images: members cut across them */
    check_matches_model(&m, &te, 60, &cfg, 7);
    ip_winograd_set_chunk_limit(0);
    /* the same counts as the two kernels run apart */
    size_t kf = ip_keys_floats(&m);
    float *keys = make_keys(&m, 7, 0.05f);
    keylist kl = {keys, kf};
    int32_t counts[2][7];
    ip_err e = {{0}};
    for (int unfused = 0; unfused < 2; unfused++) {
        cfg.unfused = unfused;
        ip_forge *f;
        ip_forge_result r;
        cr_assert_eq(ip_forge_create(&f, &m, &te, 60, &cfg, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_forge_result_alloc(&r, 7, &e), 0);
        cr_assert_eq(ip_forge_run(f, list_keys, &kl, 0, 7, 0, 0.0, &r, &e), 0, "%s", e.msg);
        memcpy(counts[unfused], r.correct, sizeof counts[unfused]);
        ip_forge_result_free(&r);
        ip_forge_free(f);
    }
    cr_assert_eq(memcmp(counts[0], counts[1], sizeof counts[0]), 0);
    free(keys);
    ip_model_free(&m);
    ip_data_free(&te);
}

Test(forge, matches_model_path_first_layer_passport) {
    /* a passport on the conv that reads the network input */
    ip_dataset tr, te;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&te, 40, 3, 16, 16, 10, 5, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    ip_model_cfg cfg = {.in_c = 3, .in_h = 16, .in_w = 16, .classes = 10, .scheme = IP_SCHEME_V1};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p-narrow");
    snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "block0,block2");
    ip_model m;
    cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m, 9, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(&te, &m, &e), 0, "%s", e.msg);
    ip_forge_cfg fc;
    ip_forge_defaults(&fc);
    check_matches_model(&m, &te, 40, &fc, 4);
    ip_model_free(&m);
    ip_data_free(&te);
    (void)tr;
}

Test(forge, real_passport_gives_real_acc) {
    ip_scheme schemes[2] = {IP_SCHEME_V1, IP_SCHEME_V2};
    for (int s = 0; s < 2; s++) {
        ip_model m;
        ip_dataset te;
        ip_err e = {{0}};
        tiny_model(&m, &te, "small-p-narrow", IP_NORM_BN, schemes[s], 16, 1, 256, 90);
        ip_forge *f;
        ip_forge_cfg cfg;
        ip_forge_defaults(&cfg);
        cr_assert_eq(ip_forge_create(&f, &m, &te, 90, &cfg, &e), 0, "%s", e.msg);
        double acc, det, ref;
        cr_assert_eq(ip_forge_real(f, &acc, &det, NULL, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_model_plan(&m, 64, &e), 0);
        cr_assert_eq(ip_evaluate(&m, &te, 64, &ref, &e), 0, "%s", e.msg);
        cr_assert_eq(acc, ref, "%s: forge real_acc %.4f, ip_evaluate %.4f", ip_scheme_name(schemes[s]), acc, ref);
        cr_assert_eq(det, ip_model_detect(&m, -1));
        ip_forge_free(f);
        ip_model_free(&m);
        ip_data_free(&te);
    }
}

/* Runs passports [first, first+count) of a keygen into r. */
static void run_range(ip_forge *f, ip_keygen *kg, uint64_t first, size_t count, uint64_t total, double thr,
                      ip_forge_result *r) {
    ip_err e = {{0}};
    cr_assert_eq(ip_forge_result_alloc(r, count, &e), 0);
    cr_assert_eq(ip_forge_run(f, ip_forge_keygen_fn, kg, first, count, total, thr, r, &e), 0, "%s", e.msg);
}

Test(forge, shards_reproduce_unsharded) {
    ip_model m;
    ip_dataset te;
    ip_err e = {{0}};
    tiny_model(&m, &te, "small-p-narrow", IP_NORM_BN, IP_SCHEME_V1, 16, 1, 256, 80);
    ip_keygen kg;
    cr_assert_eq(ip_keygen_init(&kg, IP_KEY_RANDOM, &m, NULL, NULL, 11, &e), 0, "%s", e.msg);
    for (int mode = 0; mode < 2; mode++) {
        ip_forge_cfg c1, c2;
        ip_forge_defaults(&c1);
        c1.mode = (ip_forge_mode)mode;
        c1.block = 4; /* several GEMM blocks, split differently by the shards */
        c2 = c1;
        c2.no_cache = 1; /* the shards recompute the shared activations */
        ip_forge *f1, *f2;
        cr_assert_eq(ip_forge_create(&f1, &m, &te, 80, &c1, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_forge_create(&f2, &m, &te, 80, &c2, &e), 0, "%s", e.msg);
        double real;
        cr_assert_eq(ip_forge_real(f1, &real, NULL, NULL, &e), 0);
        ip_forge_result all;
        run_range(f1, &kg, 0, 10, 10, real - 0.03, &all);
        int shards = 3;
        for (int s = 0; s < shards; s++) {
            uint64_t first, count;
            ip_forge_shard_range(10, s, shards, &first, &count);
            ip_forge_result part;
            run_range(f2, &kg, first, (size_t)count, 10, real - 0.03, &part);
            for (size_t i = 0; i < count; i++) {
                cr_assert_eq(part.correct[i], all.correct[first + i], "mode %d passport %zu", mode, first + i);
                cr_assert_eq(part.evaluated[i], all.evaluated[first + i]);
                cr_assert_eq(part.detect[i], all.detect[first + i]);
            }
            ip_forge_result_free(&part);
        }
        ip_forge_result_free(&all);
        ip_forge_free(f1);
        ip_forge_free(f2);
    }
    uint64_t tot = 0, prev_end = 0;
    for (int s = 0; s < 7; s++) {
        uint64_t first, count;
        ip_forge_shard_range(1000003, s, 7, &first, &count);
        cr_assert_eq(first, prev_end);
        prev_end = first + count;
        tot += count;
    }
    cr_assert_eq(tot, 1000003);
    ip_keygen_free(&kg);
    ip_model_free(&m);
    ip_data_free(&te);
}

Test(forge, screen_accepts_what_full_accepts) {
    ip_model m;
    ip_dataset te;
    ip_err e = {{0}};
    tiny_model(&m, &te, "small-p-narrow", IP_NORM_BN, IP_SCHEME_V1, 16, 3, 512, 400);
    int n = 16;
    size_t kf = ip_keys_floats(&m);
    float *keys = make_keys(&m, n, 0.02f);
    /* 2..9: the real keys with more and more noise (accuracies from the real one's down to chance),
     * 10: the real keys scaled (gamma and beta scale with them), 11..15 random */
    static const float noise[8] = {0.3f, 1.f, 2.f, 2.5f, 2.7f, 2.85f, 3.f, 3.5f};
    ip_rng r;
    ip_rng_init(&r, 5, ip_stream("test-noise", 0));
    for (int j = 0; j < 8; j++)
        for (size_t i = 0; i < kf; i++) keys[(size_t)(2 + j) * kf + i] = keys[i] + noise[j] * ip_rng_range(&r, -1.f, 1.f);
    for (size_t i = 0; i < kf; i++) keys[10 * kf + i] = 0.7f * keys[i];
    keylist kl = {keys, kf};
    ip_forge_result res[2];
    double real = 0;
    for (int mode = 0; mode < 2; mode++) {
        ip_forge_cfg cfg;
        ip_forge_defaults(&cfg);
        cfg.mode = (ip_forge_mode)mode;
        ip_forge *f;
        cr_assert_eq(ip_forge_create(&f, &m, &te, 400, &cfg, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_forge_real(f, &real, NULL, NULL, &e), 0);
        cr_assert_eq(ip_forge_result_alloc(&res[mode], (size_t)n, &e), 0);
        cr_assert_eq(ip_forge_run(f, list_keys, &kl, 0, (size_t)n, (uint64_t)n, real - 0.03, &res[mode], &e), 0, "%s", e.msg);
        ip_forge_info info;
        ip_forge_get_info(f, &info);
        if (mode == 1) cr_assert_geq(info.looks, 4, "looks at 16, 32, 64, 128, 256 images");
        ip_forge_free(f);
    }
    cr_assert_gt(real, 0.5, "the real passport should work (%.3f)", real);
    int acc_full = 0, rejected_early = 0, near = 0;
    for (int p = 0; p < n; p++) {
        double af = (double)res[0].correct[p] / 400;
        int accepted_full = af >= real - 0.03 - 1e-12;
        int accepted_screen = res[1].evaluated[p] == 400 && (double)res[1].correct[p] / 400 >= real - 0.03 - 1e-12;
        cr_log_info("passport %d: full %.3f, screen %d/%d images", p, af, res[1].correct[p], res[1].evaluated[p]);
        cr_assert_eq(accepted_full, accepted_screen, "passport %d: full %d, screen %d", p, accepted_full,
                     accepted_screen);
        if (accepted_full) {
            cr_assert_eq(res[1].evaluated[p], 400, "an accepted passport is always evaluated in full");
            cr_assert_eq(res[1].correct[p], res[0].correct[p]);
        }
        if (res[1].evaluated[p] < 400) rejected_early++;
        if (!accepted_full && res[1].evaluated[p] > 64) near++;
        acc_full += accepted_full;
    }
    cr_assert_geq(acc_full, 2, "the real keys and the real keys + small noise are accepted");
    cr_assert_lt(acc_full, n, "random keys are not accepted");
    cr_assert_geq(rejected_early, 5, "random passports stop early (%d did)", rejected_early);
    cr_assert_geq(near, 1, "the case should include a rejected passport close to the threshold");
    for (int p = 11; p < n; p++) cr_assert_leq(res[1].evaluated[p], 32, "random passport %d used %d images", p,
                                              res[1].evaluated[p]);
    free(keys);
    ip_forge_result_free(&res[0]);
    ip_forge_result_free(&res[1]);
    ip_model_free(&m);
    ip_data_free(&te);
}

Test(forge, reject_rule_is_sound) {
    /* never rejects at or above the threshold; rejects far below */
    cr_assert_not(ip_forge_reject(88, 100, 0.88, 1e-7));
    cr_assert_not(ip_forge_reject(90, 100, 0.88, 1e-7));
    cr_assert(ip_forge_reject(2, 16, 0.88, 1e-6 / 5));
    cr_assert_not(ip_forge_reject(12, 16, 0.88, 1e-6 / 5));
    cr_assert_not(ip_forge_reject(0, 16, 0.0, 1e-6));
    /* the bound: P(reject | accuracy exactly t) <= delta, by exact binomial sums (sampling with replacement
     * is the worse case for the Chernoff bound) */
    double t = 0.6, dl = 1e-3;
    for (int n = 16; n <= 256; n *= 2) {
        double p_rej = 0;
        for (int c = 0; c <= n; c++)
            if (ip_forge_reject(c, n, t, dl))
                p_rej += exp(lgamma(n + 1.0) - lgamma(c + 1.0) - lgamma(n - c + 1.0) + c * log(t) + (n - c) * log1p(-t));
        cr_assert_leq(p_rej, dl, "n=%d: P(reject) = %.3g > %.3g", n, p_rej, dl);
    }
}

Test(forge, statistics_helpers) {
    double v[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    cr_assert_float_eq(ip_forge_quantile(v, 5, 0.5), 0.3, 1e-12);
    cr_assert_float_eq(ip_forge_quantile(v, 5, 0.25), 0.2, 1e-12);
    cr_assert_float_eq(ip_forge_quantile(v, 5, 0.05), 0.12, 1e-12);
    cr_assert_float_eq(ip_forge_quantile(v, 5, 1.0), 0.5, 1e-12);
    double acc[4] = {0.1, 0.9, 0.95, 0.2}, det[4] = {0.5, 0.5, 1.0, 1.0};
    cr_assert_float_eq(ip_forge_p_value(0.9, 0.9, acc, det, 4), 2.0 / 5, 1e-12);
    cr_assert_float_eq(ip_forge_p_value(0.99, 1.0, acc, det, 4), 1.0 / 5, 1e-12);
    cr_assert_float_eq(ip_forge_p_value(0.0, 0.0, acc, det, 4), 1.0, 1e-12);
}

/* ---------------- key types ---------------- */

/* Activations feeding each passport layer's conv for every image of d (ref forward, eval). */
static float *all_acts(ip_model *ref, const ip_dataset *d, int act) {
    ip_err e = {{0}};
    cr_assert_eq(ip_model_plan(ref, (int)d->n, &e), 0);
    ip_model_forward(ref, d->x, (int)d->n, 0);
    size_t len = (size_t)ref->acts[act].c * ref->acts[act].h * ref->acts[act].w * d->n;
    float *a = tu_alloc(len);
    memcpy(a, ref->arena + ref->acts[act].off, len * sizeof *a);
    return a;
}

/* Index ch * n + i of the (image i, channel ch) plane of acts (C, N, HW) equal to plane up to float
 * round-off (the reference ran on another batch size), -1 when none is, -2 when several are (e.g. dead
 * channels: all zero). */
static long find_plane(const float *acts, int c, int n, size_t hw, const float *plane) {
    long found = -1;
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < n; i++) {
            const float *q = acts + ((size_t)ch * n + i) * hw;
            int same = 1;
            for (size_t k = 0; k < hw && same; k++) same = fabsf(q[k] - plane[k]) <= 1e-5f * (1 + fabsf(plane[k]));
            if (same) found = found == -1 ? (long)ch * n + i : -2;
        }
    return found;
}

/* The attacked v1 model m (test split te), a baseline reference of the same
 * architecture, and n key images normalised for the reference. */
static void key_setup(ip_model *m, ip_dataset *te, ip_model *ref, ip_dataset *imgs, size_t n) {
    ip_err e = {{0}};
    tiny_model(m, te, "small-p-narrow", IP_NORM_BN, IP_SCHEME_V1, 16, 0, 32, 8);
    ip_dataset te2;
    tiny_model(ref, &te2, "small-p-narrow", IP_NORM_BN, IP_SCHEME_BASELINE, 16, 0, 32, 8);
    ip_data_free(&te2);
    cr_assert_eq(ip_data_synthetic(imgs, n, 1, 16, 16, 10, 5, IP_SPLIT_TRAIN, &e), 0);
    cr_assert_eq(ip_data_match_model(imgs, ref, &e), 0);
}

Test(forge, key_types_shapes_and_determinism) {
    ip_model m, ref;
    ip_dataset te, imgs;
    ip_err e = {{0}};
    key_setup(&m, &te, &ref, &imgs, 24);
    size_t kf = ip_keys_floats(&m);
    cr_assert_eq(kf, 2 * (16 * 8 * 8 + 32 * 4 * 4), "block1 input 16x8x8, block2 input 32x4x4");
    float *a = tu_alloc(kf), *b = tu_alloc(kf), *c = tu_alloc(kf);
    for (int t = 0; t < 3; t++) {
        ip_keygen kg;
        cr_assert_eq(ip_keygen_init(&kg, (ip_key_type)t, &m, &ref, &imgs, 5, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_keygen_generate(&kg, 42, a, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_keygen_generate(&kg, 7, c, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_keygen_generate(&kg, 42, b, &e), 0, "%s", e.msg);
        cr_assert(memcmp(a, b, kf * sizeof *a) == 0, "%s keys are not deterministic", ip_key_type_name(t));
        cr_assert(memcmp(a, c, kf * sizeof *a) != 0, "%s keys do not depend on the index", ip_key_type_name(t));
        for (size_t i = 0; i < kf; i++) cr_assert(isfinite(a[i]));
        if (t == IP_KEY_RANDOM)
            for (size_t i = 0; i < kf; i++) cr_assert(a[i] >= -1.f && a[i] < 1.f);
        ip_keygen_free(&kg);
        if (t == IP_KEY_RANDOM) continue;
        /* every plane of every key is a channel of some image's activation at that layer's input */
        for (int l = 0; l < m.npassports; l++) {
            int act = ref.ops[m.passports[l].conv_op].in;
            const ip_act *ra = &ref.acts[act];
            size_t hw = (size_t)ra->h * ra->w;
            float *acts = all_acts(&ref, &imgs, act);
            for (int which = 0; which < 2; which++) {
                const float *key = a + ip_keys_offset(&m, l) + (size_t)which * ip_keys_layer_floats(&m, l);
                long first_img = -1;
                for (int ch = 0; ch < ra->c; ch++) {
                    long at = find_plane(acts, ra->c, (int)imgs.n, hw, key + (size_t)ch * hw);
                    cr_assert_neq(at, -1, "%s key layer %d channel %d is no activation plane", ip_key_type_name(t), l, ch);
                    if (at >= 0 && t == IP_KEY_IMAGE) { /* one image, channels in order */
                        cr_assert_eq(at / (long)imgs.n, ch);
                        if (first_img < 0) first_img = at % (long)imgs.n;
                        cr_assert_eq(at % (long)imgs.n, first_img);
                    }
                }
            }
            free(acts);
        }
        /* keys work in the model */
        ip_keys_to_model(&m, a);
        cr_assert_eq(ip_model_plan(&m, 8, &e), 0);
        ip_model_forward(&m, te.x, 8, 0);
    }
    /* a whole image for a passport on the input conv */
    ip_model_cfg cfg = m.cfg;
    snprintf(cfg.passport_layers, sizeof cfg.passport_layers, "block0");
    ip_model m0;
    cr_assert_eq(ip_model_build(&m0, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m0, 1, NULL, &e), 0);
    for (int t = 1; t < 3; t++) {
        ip_keygen kg;
        cr_assert_eq(ip_keygen_init(&kg, (ip_key_type)t, &m0, &ref, &imgs, 5, &e), 0, "%s", e.msg);
        float *k0 = tu_alloc(ip_keys_floats(&m0));
        cr_assert_eq(ip_keygen_generate(&kg, 3, k0, &e), 0);
        int found = 0;
        for (size_t i = 0; i < imgs.n; i++) found |= memcmp(k0, imgs.x + i * 256, 256 * sizeof *k0) == 0;
        cr_assert(found, "%s key of the input layer is not an image", ip_key_type_name(t));
        free(k0);
        ip_keygen_free(&kg);
    }
    ip_model_free(&m0);
    /* errors: no reference, too few images for shuffle, a reference of another architecture */
    ip_keygen kg;
    cr_assert_neq(ip_keygen_init(&kg, IP_KEY_IMAGE, &m, NULL, &imgs, 5, &e), 0);
    ip_dataset few = imgs;
    few.n = 10;
    cr_assert_neq(ip_keygen_init(&kg, IP_KEY_SHUFFLE, &m, &ref, &few, 5, &e), 0);
    cr_assert(strstr(e.msg, "20"), "%s", e.msg);
    ip_model other;
    ip_model_cfg oc = ref.cfg;
    snprintf(oc.arch, sizeof oc.arch, "small-p");
    cr_assert_eq(ip_model_build(&other, &oc, &e), 0);
    cr_assert_neq(ip_keygen_init(&kg, IP_KEY_IMAGE, &m, &other, &imgs, 5, &e), 0);
    cr_assert(strstr(e.msg, "block1.conv"), "%s", e.msg);
    ip_model_free(&other);
    free(a), free(b), free(c);
    ip_model_free(&m);
    ip_model_free(&ref);
    ip_data_free(&te);
    ip_data_free(&imgs);
}

Test(forge, shuffle_takes_distinct_channels) {
    ip_model m, ref;
    ip_dataset te, imgs;
    ip_err e = {{0}};
    key_setup(&m, &te, &ref, &imgs, 30);
    ip_keygen kg;
    cr_assert_eq(ip_keygen_init(&kg, IP_KEY_SHUFFLE, &m, &ref, &imgs, 8, &e), 0, "%s", e.msg);
    float *k = tu_alloc(ip_keys_floats(&m));
    cr_assert_eq(ip_keygen_generate(&kg, 1, k, &e), 0);
    /* layer block2 has 32 input channels: images k mod 20 -> images 0..11 get two channels each */
    int l = 1, act = ref.ops[m.passports[l].conv_op].in;
    const ip_act *ra = &ref.acts[act];
    size_t hw = (size_t)ra->h * ra->w;
    float *acts = all_acts(&ref, &imgs, act);
    const float *key = k + ip_keys_offset(&m, l);
    int checked = 0;
    for (int c1 = 0; c1 < ra->c; c1++) {
        long p1 = find_plane(acts, ra->c, (int)imgs.n, hw, key + (size_t)c1 * hw);
        cr_assert_neq(p1, -1, "channel %d is no activation plane", c1);
        if (p1 < 0 || c1 + IP_SHUFFLE_IMAGES >= ra->c) continue;
        /* channels k and k+20 come from the same image, and not from the same channel of it */
        long p2 = find_plane(acts, ra->c, (int)imgs.n, hw, key + (size_t)(c1 + IP_SHUFFLE_IMAGES) * hw);
        if (p2 < 0) continue; /* ambiguous plane (e.g. a dead channel) */
        cr_assert_eq(p1 % (long)imgs.n, p2 % (long)imgs.n, "channels %d and %d: different images", c1,
                     c1 + IP_SHUFFLE_IMAGES);
        cr_assert_neq(p1 / (long)imgs.n, p2 / (long)imgs.n, "channels %d and %d: the same channel twice", c1,
                      c1 + IP_SHUFFLE_IMAGES);
        checked++;
    }
    cr_assert_geq(checked, 4, "only %d channel pairs were unambiguous", checked);
    free(acts), free(k);
    ip_keygen_free(&kg);
    ip_model_free(&m);
    ip_model_free(&ref);
    ip_data_free(&te);
    ip_data_free(&imgs);
}

/* The feature cache of shuffle keys (passport_keys.h): it holds, bit for bit,
 * the activations of each image's canonical pass (image j in pass j / 64, the
 * last pass short), every plane of a cached key is one of them, and the keys
 * equal those made without the cache up to the rounding of another batch
 * size. Image keys, train-mode references and pools past the bound get no
 * cache. */
Test(forge, shuffle_key_cache) {
    ip_model m, ref;
    ip_dataset te, imgs;
    ip_err e = {{0}};
    key_setup(&m, &te, &ref, &imgs, IP_KEYGEN_PASS + 6); /* two passes, the second of 6 */
    ip_keygen plain, cached;
    cr_assert_eq(ip_keygen_init(&plain, IP_KEY_SHUFFLE, &m, &ref, &imgs, 9, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_keygen_init(&cached, IP_KEY_SHUFFLE, &m, &ref, &imgs, 9, &e), 0, "%s", e.msg);
    cr_assert_eq(cached.cache_floats, 16 * 8 * 8 + 32 * 4 * 4, "block1 input 16x8x8, block2 input 32x4x4");
    cr_assert_eq(ip_keygen_cache_features(&cached, &e), 0, "%s", e.msg);
    cr_assert_not_null(cached.cache);
    /* the cache: each pass's activations, as its own forward computes them */
    const size_t sample = 16 * 16;
    for (size_t j0 = 0; j0 < imgs.n; j0 += IP_KEYGEN_PASS) {
        int n = imgs.n - j0 < IP_KEYGEN_PASS ? (int)(imgs.n - j0) : IP_KEYGEN_PASS;
        ip_model_forward_to(&ref, imgs.x + j0 * sample, n, 0, cached.ref_last);
        for (int l = 0; l < m.npassports; l++) {
            const ip_act *a = &ref.acts[cached.ref_act[l]];
            size_t hw = (size_t)a->h * a->w;
            for (int i = 0; i < n; i++)
                for (int c = 0; c < a->c; c++)
                    cr_assert_eq(memcmp(cached.cache + (j0 + (size_t)i) * cached.cache_floats + cached.cache_off[l] +
                                            (size_t)c * hw,
                                        ref.arena + a->off + ((size_t)c * n + (size_t)i) * hw, hw * sizeof(float)),
                                 0, "cache: image %zu, layer %d, channel %d", j0 + (size_t)i, l, c);
        }
    }
    size_t kf = ip_keys_floats(&m);
    float *a = tu_alloc(kf), *b = tu_alloc(kf);
    const uint64_t which[] = {0, 1, 5, 42, 1000};
    for (size_t w = 0; w < sizeof which / sizeof *which; w++) {
        cr_assert_eq(ip_keygen_generate(&plain, which[w], a, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_keygen_generate(&cached, which[w], b, &e), 0, "%s", e.msg);
        for (size_t i = 0; i < kf; i++)
            cr_assert(fabsf(a[i] - b[i]) <= 1e-5f * (1 + fabsf(a[i])), "passport %llu, value %zu: %g vs %g",
                      (unsigned long long)which[w], i, a[i], b[i]);
        for (int l = 0; l < m.npassports; l++) { /* every plane is a cached plane, exactly */
            const ip_act *ra = &ref.acts[cached.ref_act[l]];
            size_t hw = (size_t)ra->h * ra->w;
            for (size_t q = 0; q < 2 * (size_t)ra->c; q++) {
                const float *plane = b + ip_keys_offset(&m, l) + q * hw;
                int found = 0;
                for (size_t j = 0; j < imgs.n && !found; j++)
                    for (int c = 0; c < ra->c && !found; c++)
                        found = memcmp(plane,
                                       cached.cache + j * cached.cache_floats + cached.cache_off[l] + (size_t)c * hw,
                                       hw * sizeof(float)) == 0;
                cr_assert(found, "passport %llu, layer %d, key plane %zu is no cached plane",
                          (unsigned long long)which[w], l, q);
            }
        }
    }
    free(a), free(b);
    ip_keygen_free(&plain);
    ip_keygen_free(&cached);
    /* who gets a cache */
    ip_keygen kg;
    cr_assert_eq(ip_keygen_init(&kg, IP_KEY_IMAGE, &m, &ref, &imgs, 9, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_keygen_cache_features(&kg, &e), 0);
    cr_assert_null(kg.cache, "image keys read 2 images each: no cache");
    ip_keygen_free(&kg);
    cr_assert_eq(ip_keygen_init(&kg, IP_KEY_SHUFFLE, &m, &ref, &imgs, 9, &e), 0, "%s", e.msg);
    kg.ref_training = 1;
    cr_assert_eq(ip_keygen_cache_features(&kg, &e), 0);
    cr_assert_null(kg.cache, "a train-mode reference: an image's activations depend on its batch");
    ip_keygen_free(&kg);
    const size_t cap = IP_KEYGEN_CACHE_MAX_BYTES / sizeof(float);
    cr_assert(ip_keygen_caches(IP_KEY_SHUFFLE, 0, 9408, 12000), "the quick study's pool: 451 MB");
    cr_assert(ip_keygen_caches(IP_KEY_SHUFFLE, 0, cap / 64, 64), "exactly the bound");
    cr_assert_not(ip_keygen_caches(IP_KEY_SHUFFLE, 0, cap / 64 + 1, 64), "past the bound");
    cr_assert_not(ip_keygen_caches(IP_KEY_SHUFFLE, 0, 9408, 60000), "Fashion-MNIST's 60,000: 2.3 GB");
    cr_assert_not(ip_keygen_caches(IP_KEY_RANDOM, 0, 9408, 100), "random keys read no image");
    ip_model_free(&m);
    ip_model_free(&ref);
    ip_data_free(&te);
    ip_data_free(&imgs);
}

Test(forge, trained_v1_fakes_near_chance) {
    ip_model m;
    ip_dataset te;
    ip_err e = {{0}};
    tiny_model(&m, &te, "small-p-narrow", IP_NORM_GN, IP_SCHEME_V1, 16, 4, 1024, 300);
    ip_forge *f;
    ip_forge_cfg cfg;
    ip_forge_defaults(&cfg);
    cr_assert_eq(ip_forge_create(&f, &m, &te, 300, &cfg, &e), 0, "%s", e.msg);
    double real, det;
    cr_assert_eq(ip_forge_real(f, &real, &det, NULL, &e), 0);
    ip_keygen kg;
    cr_assert_eq(ip_keygen_init(&kg, IP_KEY_RANDOM, &m, NULL, NULL, 1, &e), 0);
    ip_forge_result r;
    run_range(f, &kg, 0, 30, 30, real - 0.03, &r);
    double mean = 0, mx = 0, dmean = 0;
    for (int i = 0; i < 30; i++) {
        double a = (double)r.correct[i] / r.evaluated[i];
        mean += a / 30, dmean += r.detect[i] / 30;
        if (a > mx) mx = a;
    }
    cr_log_info("real %.3f (detect %.3f), fakes mean %.3f max %.3f, detect mean %.3f", real, det, mean, mx, dmean);
    cr_assert_gt(real, 0.7, "real passport accuracy %.3f", real);
    cr_assert_eq(det, 1.0);
    cr_assert_lt(mean, 0.3, "fake passports average %.3f (chance 0.1)", mean);
    cr_assert_lt(mx, real - 0.03, "the best fake %.3f is accepted (real %.3f)", mx, real);
    cr_assert_lt(dmean, 0.75, "fakes should not carry the signature (%.3f)", dmean);
    ip_forge_result_free(&r);
    ip_keygen_free(&kg);
    ip_forge_free(f);
    ip_model_free(&m);
    ip_data_free(&te);
}

/* ---------------- task code and kinds ---------------- */

static void set_defaults(rn_task *t, const rn_kind *k) { cr_assert_eq(rn_task_init(t, k), 0); }

static const ip_metric_array *array_of(const ip_metrics *mt, const char *name) {
    for (int i = 0; i < mt->narrays; i++)
        if (strcmp(mt->arrays[i].name, name) == 0) return &mt->arrays[i];
    return NULL;
}

Test(forge, fake1_and_verify_tasks) {
    char dir[] = "/tmp/ipsweep_forge_XXXXXX";
    cr_assert(mkdtemp(dir));
    char ck[256], base[256];
    snprintf(ck, sizeof ck, "%s/v1.h5", dir);
    snprintf(base, sizeof base, "%s/base.h5", dir);
    ip_err e = {{0}};
    ip_metrics mt;
    ip_train_task tt;
    const char *src = "synthetic:600x1x16x16/10";
    for (int b = 0; b < 2; b++) {
        ip_train_task_defaults(&tt);
        snprintf(tt.model.arch, sizeof tt.model.arch, "small-p-narrow");
        tt.model.scheme = b ? IP_SCHEME_BASELINE : IP_SCHEME_V1;
        snprintf(tt.data, sizeof tt.data, "%s", src);
        tt.train.epochs = 2;
        tt.train.batch = 32;
        tt.test_limit = 200;
        snprintf(tt.out, sizeof tt.out, "%s", b ? base : ck);
        ip_metrics_init(&mt);
        cr_assert_eq(ip_task_train(&tt, &mt, &e), 0, "%s", e.msg);
        ip_metrics_free(&mt);
    }
    rn_ctx ctx = {.data_source = src, .test_limit = 200, .threads = 1};
    /* unsharded vs 2 shards through the kind */
    rn_task t;
    ip_metrics whole, part[2];
    set_defaults(&t, rn_kind_find("fake1"));
    rn_task_set(&t, "model_path", ck, 0);
    rn_task_set(&t, "passports", "9", 0);
    rn_task_set(&t, "eval_images", "150", 0);
    rn_task_set(&t, "key_type", "shuffle", 0);
    ip_metrics_init(&whole);
    cr_assert_neq(rn_task_run(&t, &ctx, &whole, &e), 0, "shuffle without a reference must fail");
    rn_task_set(&t, "reference_path", base, 0);
    cr_assert_eq(rn_task_run(&t, &ctx, &whole, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&whole, "passports"), 9);
    cr_assert_eq(ip_metrics_get(&whole, "eval_images"), 150);
    cr_assert_gt(ip_metrics_get(&whole, "passports_per_s"), 0);
    const ip_metric_array *wa = array_of(&whole, "fake_acc"), *hist = array_of(&whole, "hist_counts");
    cr_assert(wa && wa->n == 9 && hist && hist->n == 20);
    double hsum = 0;
    for (int i = 0; i < 20; i++) hsum += hist->v[i];
    cr_assert_eq(hsum, 9);
    cr_assert_leq(ip_metrics_get(&whole, "fake_min"), ip_metrics_get(&whole, "fake_q50"));
    cr_assert_leq(ip_metrics_get(&whole, "fake_q50"), ip_metrics_get(&whole, "fake_max"));
    /* the same task split into 2 shards (as the spec loader emits them) and merged */
    char merged_path[300];
    snprintf(merged_path, sizeof merged_path, "%s/fake1.h5", dir);
    rn_task_set(&t, "shards", "2", 0);
    char shard_path[1100];
    t.shards = 2;
    for (int s = 0; s < 2; s++) {
        t.shard = s;
        cr_assert_eq(rn_shard_path(shard_path, sizeof shard_path, merged_path, s, 2), 0);
        t.checkpoint = shard_path;
        ip_metrics_init(&part[s]);
        cr_assert_eq(rn_task_run(&t, &ctx, &part[s], &e), 0, "%s", e.msg);
        cr_assert_eq(part[s].narrays, 0, "a shard reports its arrays through its file only");
    }
    cr_assert_eq(ip_metrics_get(&part[1], "first"), ip_metrics_get(&part[0], "passports"));
    cr_assert_eq(ip_metrics_get(&part[0], "passports") + ip_metrics_get(&part[1], "passports"), 9);
    cr_assert_eq(ip_metrics_get(&part[0], "real_acc"), ip_metrics_get(&whole, "real_acc"));
    ip_metrics merged;
    ip_metrics_init(&merged);
    t.shard = RN_MERGE;
    t.checkpoint = merged_path;
    cr_assert_eq(rn_task_run(&t, &ctx, &merged, &e), 0, "%s", e.msg);
    /* full mode: bit-identical to the unsharded run */
    const char *same[] = {"real_acc", "real_detect", "threshold", "fake_mean", "fake_std", "fake_min", "fake_max",
                          "fake_q05", "fake_q50", "fake_q95", "accepted", "passports", "detect_mean", "detect_max",
                          "detect_threshold", "accepted_joint", "accept_acc_frac", "accept_detect_frac",
                          "accept_joint_frac", "p_accept_est", "p_accept_upper95", "p_accept_gpd", "p_accept_cp95",
                          "p_joint_cp95"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        cr_assert_eq(ip_metrics_get(&merged, same[i]), ip_metrics_get(&whole, same[i]), "%s", same[i]);
    cr_assert_eq(ip_metrics_get(&merged, "shards"), 2);
    const ip_metric_array *ma = array_of(&merged, "fake_acc"), *mh = array_of(&merged, "hist_counts");
    cr_assert(ma && ma->n == 9 && mh && mh->n == 20);
    for (size_t i = 0; i < 9; i++) cr_assert_eq(ma->v[i], wa->v[i], "passport %zu", i);
    for (size_t i = 0; i < 20; i++) cr_assert_eq(mh->v[i], hist->v[i], "bin %zu", i);
    /* the merged file holds the same, for export */
    ip_metrics back;
    cr_assert_eq(ip_metrics_load(&back, merged_path, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&back, "fake_mean"), ip_metrics_get(&whole, "fake_mean"));
    cr_assert(array_of(&back, "fake_acc") && array_of(&back, "fake_acc")->n == 9);
    ip_metrics_free(&back);
    /* a missing shard file is a clear error */
    char gone[1100];
    cr_assert_eq(rn_shard_path(gone, sizeof gone, merged_path, 1, 2), 0);
    cr_assert_eq(unlink(gone), 0);
    ip_metrics_free(&merged);
    ip_metrics_init(&merged);
    cr_assert_neq(rn_task_run(&t, &ctx, &merged, &e), 0);
    cr_assert(strstr(e.msg, "shard-1-of-2"), "%s", e.msg);
    ip_metrics_free(&merged);
    rn_task_free(&t);
    /* verify: the true claim against the fakes */
    set_defaults(&t, rn_kind_find("verify"));
    rn_task_set(&t, "model_path", ck, 0);
    rn_task_set(&t, "passports", "9", 0);
    rn_task_set(&t, "eval_images", "150", 0);
    ip_metrics vm;
    ip_metrics_init(&vm);
    cr_assert_eq(rn_task_run(&t, &ctx, &vm, &e), 0, "%s", e.msg);
    rn_task_free(&t);
    cr_assert_eq(ip_metrics_get(&vm, "claim_acc"), ip_metrics_get(&whole, "real_acc"));
    cr_assert_eq(ip_metrics_get(&vm, "claim_detect"), ip_metrics_get(&whole, "real_detect"));
    cr_assert_float_eq(ip_metrics_get(&vm, "p_value"), 1.0 / 10, 1e-12);
    cr_assert_eq(ip_metrics_get(&vm, "claim_accepted"), 1);
    /* a false claim: the baseline-shaped keys of another v1 model */
    char other[256];
    snprintf(other, sizeof other, "%s/other.h5", dir);
    ip_train_task_defaults(&tt);
    snprintf(tt.model.arch, sizeof tt.model.arch, "small-p-narrow");
    tt.model.scheme = IP_SCHEME_V1;
    snprintf(tt.data, sizeof tt.data, "%s", src);
    tt.train.epochs = 0;
    tt.seed = 99;
    tt.test_limit = 10;
    snprintf(tt.out, sizeof tt.out, "%s", other);
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_train(&tt, &mt, &e), 0, "%s", e.msg);
    ip_metrics_free(&mt);
    ip_verify_task vt;
    memset(&vt, 0, sizeof vt);
    ip_fake1_task_defaults(&vt.null);
    snprintf(vt.null.model_path, sizeof vt.null.model_path, "%s", ck);
    snprintf(vt.null.data, sizeof vt.null.data, "%s", src);
    vt.null.test_limit = 200;
    vt.null.eval_images = 150;
    snprintf(vt.claim_path, sizeof vt.claim_path, "%s", other);
    vt.null.passports = 40; /* the task builds its own null: 40 random fakes */
    ip_metrics fm;
    ip_metrics_init(&fm);
    cr_assert_eq(ip_task_verify(&vt, &fm, &e), 0, "%s", e.msg);
    cr_assert_lt(ip_metrics_get(&fm, "claim_acc"), ip_metrics_get(&vm, "claim_acc") - 0.1);
    cr_assert_eq(ip_metrics_get(&fm, "null_passports"), 40);
    cr_assert_gt(ip_metrics_get(&fm, "p_value"), 0.05, "a false claim (acc %.3f, detect %.3f) is not significant",
                 ip_metrics_get(&fm, "claim_acc"), ip_metrics_get(&fm, "claim_detect"));
    cr_assert_eq(ip_metrics_get(&fm, "claim_accepted"), 0);
    ip_metrics_free(&fm);
    /* the true claim against the arrays of the earlier fake1 task */
    vt.claim_path[0] = 0;
    vt.null_acc = wa->v;
    vt.null_detect = array_of(&whole, "fake_detect")->v;
    vt.null_n = wa->n;
    ip_metrics_init(&fm);
    cr_assert_eq(ip_task_verify(&vt, &fm, &e), 0, "%s", e.msg);
    cr_assert_float_eq(ip_metrics_get(&fm, "p_value"), 1.0 / 10, 1e-12);
    cr_assert_eq(ip_metrics_get(&fm, "null_passports"), 9);
    ip_metrics_free(&fm);
    ip_metrics_free(&vm);
    ip_metrics_free(&whole);
    ip_metrics_free(&part[0]);
    ip_metrics_free(&part[1]);
    unlink(ck), unlink(base), unlink(other);
    rmdir(dir);
}
