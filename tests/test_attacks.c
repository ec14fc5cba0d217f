/* Attacks (core/passport/attacks.h, core/tasks/attacks.c): fine-tuning, sign flip, fake2, fake3, the
 * passport-key gradient, and the runner glue (runner/kinds/attacks.c). Owner
 * models are small-p-narrow trained on a synthetic 16x16 set (as in
 * test_model.c) and saved to a temporary checkpoint. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/passport/attacks.h"
#include "../core/io/ckpt.h"
#include "../core/passport/signature.h"
#include "../core/tasks/tasks.h"
#include "../runner/kinds/kinds.h"
#include "testutil.h"

extern const rn_kind rn_kind_finetune, rn_kind_flip, rn_kind_fake2, rn_kind_fake3;

/* 1024 training samples: the owner trains on the first 512 (train_limit), a
 * disjoint attacker may use the other 512. */
#define SRC "synthetic:1024x1x16x16"
#define OWNER_LIMIT 512
#define TEST_LIMIT 256

/* each test (its own process) gets a scratch directory, removed afterwards even when it fails */
static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "attacks"), "mkdtemp failed"); }
static void suite_fini(void) { tu_rmtree(scratch); }
TestSuite(attacks, .init = suite_init, .fini = suite_fini);

static void tmp_path(char *out, size_t cap, const char *tag) { snprintf(out, cap, "%s/%s.h5", scratch, tag); }

/* The fine-tuning task of the tests: owner checkpoint own -> ft, on the
 * owner's data limits, in the given mode (tests set the rest). */
static ip_finetune_task ft_task(const char *own, const char *ft, ip_ft_mode mode) {
    ip_finetune_task t;
    ip_finetune_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", own);
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.out, sizeof t.out, "%s", ft);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.mode = mode;
    return t;
}

/* Trains an owner model (seed 1, signature "ok") and saves it to path; returns its test accuracy. */
static double owner(const char *path, ip_scheme scheme, ip_norm_kind norm, int epochs) {
    ip_train_task t = tu_tiny_train(SRC, scheme, norm, epochs, path);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&mt, "test_acc");
    if (scheme != IP_SCHEME_BASELINE)
        cr_assert_geq(ip_metrics_get(&mt, "detect"), 0.95, "owner detection %.3f", ip_metrics_get(&mt, "detect"));
    cr_assert_gt(acc, 0.5, "owner accuracy %.3f", acc);
    ip_metrics_free(&mt);
    return acc;
}

static const double *array_of(const ip_metrics *mt, const char *name, size_t *n) {
    for (int i = 0; i < mt->narrays; i++)
        if (strcmp(mt->arrays[i].name, name) == 0) return *n = mt->arrays[i].n, mt->arrays[i].v;
    *n = 0;
    return NULL;
}

static void open_model(ip_model *m, const char *path) {
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(m, path, &e), 0, "%s", e.msg);
}

static const float *tensor(const ip_model *m, const char *name, size_t *numel) {
    int t = ip_model_find_tensor(m, name);
    cr_assert_geq(t, 0, "no tensor %s", name);
    *numel = m->tensors[t].numel;
    return (m->tensors[t].kind == IP_TENSOR_PARAM ? m->params : m->bufs) + m->tensors[t].offset;
}

/* ---------------- fine-tuning ---------------- */

Test(attacks, finetune_rtal_v1_keeps_detection_and_changes_fc) {
    char own[256], ft[256];
    tmp_path(own, sizeof own, "rtal_owner");
    tmp_path(ft, sizeof ft, "rtal_ft");
    double owner_acc = owner(own, IP_SCHEME_V1, IP_NORM_GN, 6);
    ip_finetune_task t = ft_task(own, ft, IP_FT_RTAL);
    t.disjoint = 1;
    t.epochs = 2;
    t.seed = 5;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_finetune(&t, &mt, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&mt, "test_acc"), det = ip_metrics_get(&mt, "detect");
    double pacc = ip_metrics_get(&mt, "private_acc");
    cr_log_info("rtal on v1: owner %.3f (deployed before %.3f) -> test_acc %.3f detect %.3f private_acc %.3f",
                owner_acc, ip_metrics_get(&mt, "owner_test_acc"), acc, det, pacc);
    /* the conversion to an ordinary network computes what the passport network computed */
    cr_assert_float_eq(ip_metrics_get(&mt, "owner_test_acc"), owner_acc, 1e-12);
    cr_assert_eq(ip_metrics_get(&mt, "train_samples"), 512.0);
    cr_assert_geq(det, 0.9, "signature detection after RTAL %.3f", det);
    cr_assert_gt(acc, 0.5, "fine-tuned accuracy %.3f", acc);
    size_t n;
    cr_assert_not_null(array_of(&mt, "epoch_test_acc", &n));
    cr_assert_eq(n, 2);
    cr_assert_not_null(array_of(&mt, "epoch_detect", &n));
    cr_assert_eq(n, 2);
    cr_assert_not_null(array_of(&mt, "epoch_private_acc", &n));
    cr_assert_eq(n, 2);
    /* fc changed; the checkpoint is the converted network (v2: public = fine-tuned, private = passport) */
    ip_model a, b;
    open_model(&a, own);
    open_model(&b, ft);
    cr_assert_eq(b.cfg.scheme, IP_SCHEME_V2);
    cr_assert_eq(b.npassports, a.npassports);
    size_t na, nb;
    const float *fa = tensor(&a, "fc.weight", &na), *fb = tensor(&b, "fc.weight", &nb);
    cr_assert_eq(na, nb);
    size_t same = 0;
    for (size_t i = 0; i < na; i++) same += fa[i] == fb[i];
    cr_assert_lt(same, na / 100 + 1, "fc.weight barely changed (%zu of %zu equal)", same, na);
    for (int p = 0; p < a.npassports; p++) {
        cr_assert(memcmp(a.passports[p].bits, b.passports[p].bits, (size_t)a.passports[p].cout) == 0);
        cr_assert_str_eq(a.passports[p].signature, b.passports[p].signature);
    }
    cr_assert_float_eq(ip_model_detect(&b, -1), det, 1e-12);
    ip_model_free(&a), ip_model_free(&b);
    ip_metrics_free(&mt);
    unlink(own), unlink(ft);
}

static const float *tensor_values(const ip_model *m, int i) {
    const ip_tensor *t = &m->tensors[i];
    return (t->kind == IP_TENSOR_PARAM ? m->params : m->bufs) + t->offset;
}

/* Every tensor (parameters and buffers) of a except those listed is
 * bit-identical in b. b may have more tensors only when it is a converted v1
 * model loaded as v2: its private-branch batch-norm statistics, which then
 * equal the ones they fall back to (docs/checkpoint.md). */
static void assert_identical_except(const ip_model *a, const ip_model *b, const char *const *except) {
    for (int i = 0; i < a->ntensors; i++) {
        const ip_tensor *ta = &a->tensors[i];
        int j = ip_model_find_tensor(b, ta->name);
        cr_assert_geq(j, 0, "%s missing", ta->name);
        int skip = 0;
        for (int k = 0; except[k]; k++) skip |= strcmp(ta->name, except[k]) == 0;
        if (skip) continue;
        cr_assert(memcmp(tensor_values(a, i), tensor_values(b, j), ta->numel * sizeof(float)) == 0, "%s changed",
                  ta->name);
    }
    for (int j = 0; j < b->ntensors; j++) {
        const ip_tensor *tb = &b->tensors[j];
        if (ip_model_find_tensor(a, tb->name) >= 0) continue;
        cr_assert_geq(tb->fallback, 0, "%s is new", tb->name);
        cr_assert(memcmp(tensor_values(b, j), tensor_values(b, tb->fallback), tb->numel * sizeof(float)) == 0,
                  "%s differs from its fallback", tb->name);
    }
}

Test(attacks, ftll_changes_only_fc) {
    static const char *const fc[] = {"fc.weight", "fc.bias", NULL};
    const ip_scheme schemes[2] = {IP_SCHEME_BASELINE, IP_SCHEME_V1};
    for (int s = 0; s < 2; s++) {
        char own[256], ft[256];
        tmp_path(own, sizeof own, "ftll_owner");
        tmp_path(ft, sizeof ft, "ftll_ft");
        owner(own, schemes[s], IP_NORM_BN, s == 0 ? 1 : 6);
        ip_finetune_task t = ft_task(own, ft, IP_FT_FTLL);
        t.fraction = 0.5;
        t.epochs = 1;
        t.opt.lr = 0.05f;
        ip_metrics mt;
        ip_metrics_init(&mt);
        ip_err e = {{0}};
        cr_assert_eq(ip_task_finetune(&t, &mt, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_metrics_get(&mt, "train_samples"), 256.0);
        ip_model a, b;
        open_model(&a, own);
        open_model(&b, ft);
        if (s == 0) {
            assert_identical_except(&a, &b, fc);
        } else {
            /* v1: the passport layers' learned affine now holds the passport gamma/beta (the conversion) */
            static const char *const conv[] = {"fc.weight", "fc.bias", "block1.norm.weight", "block1.norm.bias",
                                               "block2.norm.weight", "block2.norm.bias", NULL};
            assert_identical_except(&a, &b, conv);
            ip_model_passport_affine(&a);
            for (int p = 0; p < a.npassports; p++) {
                const float *g = b.params + b.tensors[b.ops[b.passports[p].affine_op].weight].offset;
                cr_assert(memcmp(g, a.passports[p].gamma, (size_t)a.passports[p].cout * sizeof(float)) == 0);
            }
            cr_assert_eq(ip_metrics_get(&mt, "detect"), 1.0, "FTLL cannot touch the signature");
        }
        size_t n;
        const float *fa = tensor(&a, "fc.weight", &n), *fb = tensor(&b, "fc.weight", &n);
        cr_assert(memcmp(fa, fb, n * sizeof(float)) != 0, "fc did not change");
        cr_log_info("ftll on %s: owner %.3f -> %.3f", ip_scheme_name(schemes[s]),
                    ip_metrics_get(&mt, "owner_test_acc"), ip_metrics_get(&mt, "test_acc"));
        ip_model_free(&a), ip_model_free(&b);
        ip_metrics_free(&mt);
        unlink(own), unlink(ft);
    }
}

Test(attacks, attacker_data_splits) {
    ip_dataset d, full;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_load(&full, SRC, IP_SPLIT_TRAIN, 0, &e), 0, "%s", e.msg);
    size_t sample = (size_t)full.c * full.h * full.w;
    /* part of the owner's data */
    cr_assert_eq(ip_attack_train_data(&d, SRC, 512, 0.25, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 128);
    cr_assert(memcmp(d.x, full.x, 128 * sample * sizeof(float)) == 0);
    ip_data_free(&d);
    /* disjoint: the samples right after the owner's */
    cr_assert_eq(ip_attack_train_data(&d, SRC, 512, 0.5, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 256);
    cr_assert(memcmp(d.x, full.x + 512 * sample, 256 * sample * sizeof(float)) == 0);
    cr_assert(memcmp(d.y, full.y + 512, 256 * sizeof(int32_t)) == 0);
    ip_data_free(&d);
    /* not enough data, whole split used by the owner, bad fraction */
    cr_assert_neq(ip_attack_train_data(&d, SRC, 800, 0.5, 1, &e), 0);
    cr_assert(strstr(e.msg, "[800, 1200)") && strstr(e.msg, "only 1024"), "%s", e.msg);
    cr_assert_neq(ip_attack_train_data(&d, SRC, 0, 0.5, 1, &e), 0);
    cr_assert(strstr(e.msg, "train_limit"), "%s", e.msg);
    cr_assert_neq(ip_attack_train_data(&d, SRC, 512, 0, 0, &e), 0);
    cr_assert_neq(ip_attack_train_data(&d, SRC, 512, 1.5, 0, &e), 0);
    /* at least one sample */
    cr_assert_eq(ip_attack_train_data(&d, SRC, 512, 1e-6, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 1);
    ip_data_free(&d);
    ip_data_free(&full);
}

/* ---------------- sign flip ---------------- */

static ip_metrics run_flip(const char *path, double fraction) {
    ip_flip_task t;
    ip_flip_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", path);
    snprintf(t.data, sizeof t.data, SRC);
    t.test_limit = TEST_LIMIT;
    t.fraction = fraction;
    t.seed = 3;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_flip(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(attacks, flip_fraction_zero_changes_nothing_and_one_erases_signature) {
    char own[256];
    tmp_path(own, sizeof own, "flip_owner");
    double owner_acc = owner(own, IP_SCHEME_V1, IP_NORM_BN, 6);
    ip_metrics m0 = run_flip(own, 0), mh = run_flip(own, 0.5), m1 = run_flip(own, 1);
    cr_assert_float_eq(ip_metrics_get(&m0, "test_acc"), owner_acc, 1e-12);
    cr_assert_eq(ip_metrics_get(&m0, "detect"), 1.0);
    cr_assert_eq(ip_metrics_get(&m0, "flipped"), 0.0);
    cr_assert_eq(ip_metrics_get(&m0, "channels"), 96.0); /* block1 32 + block2 64 */
    cr_assert_eq(ip_metrics_get(&mh, "flipped"), 48.0);
    cr_assert_float_eq(ip_metrics_get(&mh, "detect"), 0.5, 1e-12);
    cr_assert_eq(ip_metrics_get(&m1, "flipped"), 96.0);
    cr_assert_eq(ip_metrics_get(&m1, "detect"), 0.0);
    cr_log_info("flip on v1: acc %.3f (0) %.3f (0.5) %.3f (1)", ip_metrics_get(&m0, "test_acc"),
                ip_metrics_get(&mh, "test_acc"), ip_metrics_get(&m1, "test_acc"));
    cr_assert_lt(ip_metrics_get(&m1, "test_acc"), owner_acc);
    ip_metrics_free(&m0), ip_metrics_free(&mh), ip_metrics_free(&m1);
    unlink(own);

    /* baseline: the same blocks' learned gammas, accuracy only */
    owner(own, IP_SCHEME_BASELINE, IP_NORM_BN, 1);
    ip_eval_task ev;
    ip_eval_task_defaults(&ev);
    snprintf(ev.model_path, sizeof ev.model_path, "%s", own);
    snprintf(ev.data, sizeof ev.data, SRC);
    ev.test_limit = TEST_LIMIT;
    ip_metrics me;
    ip_metrics_init(&me);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_eval(&ev, &me, &e), 0, "%s", e.msg);
    ip_metrics b0 = run_flip(own, 0), b1 = run_flip(own, 1);
    cr_assert_float_eq(ip_metrics_get(&b0, "test_acc"), ip_metrics_get(&me, "test_acc"), 1e-12);
    cr_assert(isnan(ip_metrics_get(&b0, "detect")));
    cr_assert_eq(ip_metrics_get(&b1, "flipped"), 96.0);
    ip_metrics_free(&b0), ip_metrics_free(&b1), ip_metrics_free(&me);
    unlink(own);
}

/* ---------------- fake2 ---------------- */

static ip_metrics run_fake2(const char *path, ip_fake2_target target, double fraction, int epochs, float lr) {
    ip_fake2_task t;
    ip_fake2_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", path);
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.target = target;
    t.fraction = fraction;
    t.epochs = epochs;
    t.batch = 32;
    t.opt.lr = lr;
    t.seed = 9;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fake2(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(attacks, fake2_affine_recovers_accuracy_but_not_the_signature) {
    char own[256];
    tmp_path(own, sizeof own, "fake2a_owner");
    owner(own, IP_SCHEME_V1, IP_NORM_GN, 6);
    const double fractions[3] = {0.01, 0.1, 1.0};
    for (int i = 0; i < 3; i++) {
        ip_metrics mt = run_fake2(own, IP_FAKE2_AFFINE, fractions[i], 3, 0.01f);
        cr_log_info("fake2 affine, fraction %.2f (%g samples): owner %.3f, init %.3f/%.3f -> acc %.3f detect %.3f",
                    fractions[i], ip_metrics_get(&mt, "train_samples"), ip_metrics_get(&mt, "owner_test_acc"),
                    ip_metrics_get(&mt, "init_test_acc"), ip_metrics_get(&mt, "init_detect"),
                    ip_metrics_get(&mt, "test_acc"), ip_metrics_get(&mt, "detect"));
        cr_assert_float_eq(ip_metrics_get(&mt, "init_detect"), 0.5, 1e-12, "half of the true signs are flipped");
        if (fractions[i] == 0.1) { /* deterministic from the seed */
            ip_metrics again = run_fake2(own, IP_FAKE2_AFFINE, fractions[i], 3, 0.01f);
            cr_assert_eq(ip_metrics_get(&again, "test_acc"), ip_metrics_get(&mt, "test_acc"));
            cr_assert_eq(ip_metrics_get(&again, "detect"), ip_metrics_get(&mt, "detect"));
            ip_metrics_free(&again);
        }
        if (fractions[i] == 1.0) {
            cr_assert_gt(ip_metrics_get(&mt, "test_acc"), 0.5, "fake2 with all data: accuracy %.3f",
                         ip_metrics_get(&mt, "test_acc"));
            cr_assert_lt(ip_metrics_get(&mt, "detect"), 0.8, "forged gammas match the owner's signature (%.3f)",
                         ip_metrics_get(&mt, "detect"));
            size_t n;
            cr_assert_not_null(array_of(&mt, "epoch_detect", &n));
            cr_assert_eq(n, 3);
        }
        ip_metrics_free(&mt);
    }
    unlink(own);
}

Test(attacks, fake2_passport_recovers_accuracy_but_not_the_signature) {
    char own[256];
    tmp_path(own, sizeof own, "fake2p_owner");
    owner(own, IP_SCHEME_V1, IP_NORM_GN, 6);
    /* a passport entry reaches gamma through a mean over OH*OW positions: at lr 0.01 the
     * passport learns slowly (about 7 epochs to 0.6 here), so this check uses lr 0.1 */
    ip_metrics mp = run_fake2(own, IP_FAKE2_PASSPORT, 1.0, 3, 0.1f);
    cr_log_info("fake2 passport, fraction 1: init %.3f/%.3f -> acc %.3f detect %.3f",
                ip_metrics_get(&mp, "init_test_acc"), ip_metrics_get(&mp, "init_detect"),
                ip_metrics_get(&mp, "test_acc"), ip_metrics_get(&mp, "detect"));
    cr_assert_gt(ip_metrics_get(&mp, "test_acc"), 0.5, "forging a passport: accuracy %.3f",
                 ip_metrics_get(&mp, "test_acc"));
    cr_assert_lt(ip_metrics_get(&mp, "detect"), 0.8);
    ip_metrics_free(&mp);
    unlink(own);
}

/* ---------------- passport-key gradient ---------------- */

Test(attacks, colmean_backward_is_the_adjoint_of_colmean) {
    const struct { int cin, h, w, k, stride, pad; } cases[] = {
        {3, 8, 8, 3, 1, 1}, {2, 7, 9, 5, 1, 2}, {4, 8, 8, 3, 2, 1}, {3, 6, 6, 1, 2, 0}, {2, 5, 5, 3, 1, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ip_conv_shape s;
        cr_assert_eq(ip_conv_shape_init(&s, 1, cases[c].cin, cases[c].h, cases[c].w, 4, cases[c].k, cases[c].k,
                                        cases[c].stride, cases[c].pad),
                     0);
        size_t np = (size_t)s.cin * s.h * s.w, nk = ip_conv_k(&s);
        float *p = tu_alloc(np), *r = tu_alloc(nk), *col = tu_alloc(nk), *dp = tu_alloc(np);
        tu_fill(p, np, -1, 1, 100 + c);
        tu_fill(r, nk, -1, 1, 200 + c);
        ip_conv_colmean(col, p, &s);
        ip_colmean_backward(dp, r, &s);
        double lhs = tu_dot(col, r, nk), rhs = tu_dot(p, dp, np);
        cr_assert_lt(fabs(lhs - rhs), 1e-5 * fmax(1, fabs(lhs)), "case %zu: <colmean(P), r> %.9g != <P, adj(r)> %.9g",
                     c, lhs, rhs);
        free(p), free(r), free(col), free(dp);
    }
}

typedef struct key_fd {
    ip_model *m;
    const float *x, *r;
    int n;
} key_fd;

static double key_loss(key_fd *c) {
    ip_model_passports_changed(c->m);
    const float *logits = ip_model_forward(c->m, c->x, c->n, 1);
    return tu_dot(logits, c->r, (size_t)c->n * c->m->cfg.classes) + ip_model_sign_loss(c->m);
}

Test(attacks, passport_key_gradient_matches_finite_differences) {
    const ip_norm_kind norms[2] = {IP_NORM_GN, IP_NORM_BN};
    for (int ni = 0; ni < 2; ni++) {
        ip_model_cfg cfg = {.in_c = 1, .in_h = 8, .in_w = 8, .classes = 10, .norm = norms[ni],
                            .scheme = IP_SCHEME_V1};
        snprintf(cfg.arch, sizeof cfg.arch, "small-p-narrow");
        ip_model m;
        ip_err e = {{0}};
        cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_model_init(&m, 3, "ok", &e), 0, "%s", e.msg);
        cr_assert_eq(ip_model_plan(&m, 4, &e), 0, "%s", e.msg);
        int n = 4;
        size_t sample = 64;
        float *x = tu_alloc(n * sample), *r = tu_alloc((size_t)n * 10);
        tu_fill(x, n * sample, -1, 1, 1);
        tu_fill(r, (size_t)n * 10, -1, 1, 2);
        key_fd c = {&m, x, r, n};
        m.sign_loss_scale = 1.f;
        ip_model_zero_grad(&m);
        key_loss(&c);
        ip_model_backward(&m, r, NULL);
        for (int p = 0; p < m.npassports; p++) {
            ip_passport *pp = &m.passports[p];
            const int ids[2] = {pp->key_gamma, pp->key_beta};
            size_t ng = m.tensors[ids[0]].numel, nb = m.tensors[ids[1]].numel;
            float *g = tu_alloc(ng + nb), *scratch = tu_alloc(pp->k);
            ip_passport_key_grads(&m, p, g, g + ng, scratch);
            for (int j = 0; j < 2; j++) {
                float *key = m.bufs + m.tensors[ids[j]].offset;
                const float *gj = g + (j ? ng : 0);
                size_t nn = j ? nb : ng;
                /* directional derivative along a dense random direction, several eps: the
                 * network is piecewise smooth (ReLU, max-pool), take the best agreement */
                float *u = tu_alloc(nn), *keep = tu_alloc(nn);
                tu_fill(u, nn, -1, 1, 300 + 10 * p + j);
                memcpy(keep, key, nn * sizeof *key);
                double ana = tu_dot(gj, u, nn), best = INFINITY;
                for (float eps = 1e-2f; eps > 2e-4f; eps /= 3.f) {
                    for (size_t i = 0; i < nn; i++) key[i] = keep[i] + eps * u[i];
                    double lp = key_loss(&c);
                    for (size_t i = 0; i < nn; i++) key[i] = keep[i] - eps * u[i];
                    double lm = key_loss(&c);
                    double num = (lp - lm) / (2.0 * eps);
                    double err = fabs(num - ana) / fmax(5e-2, fmax(fabs(num), fabs(ana)));
                    if (err < best) best = err;
                }
                memcpy(key, keep, nn * sizeof *key);
                key_loss(&c);
                cr_log_info("%s %s %s: analytic %.6g, best relative error %.2g", ip_norm_name(norms[ni]),
                            pp->layer, j ? "beta_key" : "gamma_key", ana, best);
                cr_assert_lt(best, 0.02, "%s %s key gradient off by %.3g (analytic %.6g)", pp->layer,
                             j ? "beta" : "gamma", best, ana);
                cr_assert_gt(fabs(ana), 1e-4, "degenerate check: zero gradient");
                free(u), free(keep);
            }
            free(g), free(scratch);
        }
        free(x), free(r);
        ip_model_free(&m);
    }
}

/* ---------------- fake3 ---------------- */

static ip_metrics run_fake3(const char *path, double flip, int epochs) {
    ip_fake3_task t;
    ip_fake3_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", path);
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.flip_fraction = flip;
    t.epochs = epochs;
    t.batch = 32;
    t.seed = 4;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fake3(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(attacks, fake3_correct_signature_keeps_accuracy) {
    char own[256];
    tmp_path(own, sizeof own, "fake3_owner");
    owner(own, IP_SCHEME_V1, IP_NORM_GN, 6);
    const double flips[2] = {0, 1};
    for (int i = 0; i < 2; i++) {
        ip_metrics mt = run_fake3(own, flips[i], 2 - i);
        double acc = ip_metrics_get(&mt, "test_acc"), own_acc = ip_metrics_get(&mt, "owner_test_acc");
        cr_log_info("fake3 flip %.1f: owner %.3f -> acc %.3f detect_target %.3f detect_owner %.3f cosine %.4f",
                    flips[i], own_acc, acc, ip_metrics_get(&mt, "detect_target"), ip_metrics_get(&mt, "detect"),
                    ip_metrics_get(&mt, "cosine"));
        if (flips[i] == 0) {
            cr_assert_eq(ip_metrics_get(&mt, "target_flipped"), 0.0);
            cr_assert_geq(acc, own_acc - 0.05, "accuracy fell from %.3f to %.3f", own_acc, acc);
            cr_assert_eq(ip_metrics_get(&mt, "detect_target"), 1.0);
            cr_assert_eq(ip_metrics_get(&mt, "detect"), 1.0);
            double cs = ip_metrics_get(&mt, "cosine");
            cr_assert(cs < 1.0 && cs > 0.0, "cosine %.6f", cs);
            size_t n;
            cr_assert_not_null(array_of(&mt, "epoch_cosine", &n));
            cr_assert_eq(n, 2);
        }
        if (flips[i] == 1) cr_assert_eq(ip_metrics_get(&mt, "target_flipped"), 96.0);
        ip_metrics_free(&mt);
    }
    unlink(own);
}

/* ---------------- v2: the deployed network is the public branch ---------------- */

static double eval_acc(const char *path, int branch) {
    ip_eval_task ev;
    ip_eval_task_defaults(&ev);
    snprintf(ev.model_path, sizeof ev.model_path, "%s", path);
    snprintf(ev.data, sizeof ev.data, SRC);
    ev.test_limit = TEST_LIMIT;
    ev.branch = branch;
    ip_metrics me;
    ip_metrics_init(&me);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_eval(&ev, &me, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&me, "test_acc");
    ip_metrics_free(&me);
    return acc;
}

Test(attacks, v2_attacks_use_the_right_branch) {
    char own[256], ft[256];
    tmp_path(own, sizeof own, "v2_owner");
    tmp_path(ft, sizeof ft, "v2_ft");
    owner(own, IP_SCHEME_V2, IP_NORM_GN, 4);
    double pub = eval_acc(own, IP_BRANCH_PUBLIC), priv = eval_acc(own, IP_BRANCH_PRIVATE);
    /* fine-tuning attacks the public branch; the passports stay */
    ip_finetune_task t = ft_task(own, ft, IP_FT_FTAL);
    t.fraction = 0.25;
    t.disjoint = 1;
    t.epochs = 1;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_finetune(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_float_eq(ip_metrics_get(&mt, "owner_test_acc"), pub, 1e-12);
    cr_log_info("v2 ftal: public %.3f private %.3f -> test_acc %.3f private_acc %.3f detect %.3f", pub, priv,
                ip_metrics_get(&mt, "test_acc"), ip_metrics_get(&mt, "private_acc"), ip_metrics_get(&mt, "detect"));
    cr_assert_float_eq(eval_acc(ft, IP_BRANCH_PUBLIC), ip_metrics_get(&mt, "test_acc"), 1e-12);
    ip_model a, b;
    open_model(&a, own);
    open_model(&b, ft);
    cr_assert_eq(b.cfg.scheme, IP_SCHEME_V2);
    for (int p = 0; p < a.npassports; p++) {
        size_t n = a.tensors[a.passports[p].key_gamma].numel;
        cr_assert(memcmp(a.bufs + a.tensors[a.passports[p].key_gamma].offset,
                         b.bufs + b.tensors[b.passports[p].key_gamma].offset, n * sizeof(float)) == 0);
    }
    ip_model_free(&a), ip_model_free(&b);
    ip_metrics_free(&mt);
    /* flip converts the private (passport) branch; fake2 starts from the private branch too */
    ip_metrics f0 = run_flip(own, 0);
    cr_assert_float_eq(ip_metrics_get(&f0, "test_acc"), priv, 1e-12);
    ip_metrics_free(&f0);
    ip_metrics f2 = run_fake2(own, IP_FAKE2_AFFINE, 0.1, 1, 0.01f);
    cr_assert_float_eq(ip_metrics_get(&f2, "owner_test_acc"), priv, 1e-12);
    ip_metrics_free(&f2);
    unlink(own), unlink(ft);
}

/* ---------------- errors and the runner glue ---------------- */

Test(attacks, clear_errors) {
    char own[256];
    tmp_path(own, sizeof own, "err_owner");
    owner(own, IP_SCHEME_BASELINE, IP_NORM_BN, 1);
    ip_err e = {{0}};
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_fake2_task f2;
    ip_fake2_task_defaults(&f2);
    snprintf(f2.model_path, sizeof f2.model_path, "%s", own);
    snprintf(f2.data, sizeof f2.data, SRC);
    cr_assert_neq(ip_task_fake2(&f2, &mt, &e), 0);
    cr_assert(strstr(e.msg, "passport model") && strstr(e.msg, "baseline"), "%s", e.msg);
    ip_fake3_task f3;
    ip_fake3_task_defaults(&f3);
    snprintf(f3.model_path, sizeof f3.model_path, "%s", own);
    snprintf(f3.data, sizeof f3.data, SRC);
    cr_assert_neq(ip_task_fake3(&f3, &mt, &e), 0);
    cr_assert(strstr(e.msg, "passport model"), "%s", e.msg);
    ip_finetune_task ft;
    ip_finetune_task_defaults(&ft);
    snprintf(ft.model_path, sizeof ft.model_path, "%s", own);
    snprintf(ft.data, sizeof ft.data, SRC);
    ft.disjoint = 1; /* train_limit 0: the owner used everything */
    cr_assert_neq(ip_task_finetune(&ft, &mt, &e), 0);
    cr_assert(strstr(e.msg, "disjoint"), "%s", e.msg);
    snprintf(ft.model_path, sizeof ft.model_path, "/nonexistent/m.h5");
    cr_assert_neq(ip_task_finetune(&ft, &mt, &e), 0);
    cr_assert(strstr(e.msg, "/nonexistent/m.h5"), "%s", e.msg);
    ip_metrics_free(&mt);
    unlink(own);
}

Test(attacks, kinds_run_from_text_parameters) {
    char own[256], ft[256];
    tmp_path(own, sizeof own, "kind_owner");
    tmp_path(ft, sizeof ft, "kind_ft");
    owner(own, IP_SCHEME_V1, IP_NORM_GN, 6);
    rn_ctx ctx = {.data_source = SRC, .train_limit = OWNER_LIMIT, .test_limit = TEST_LIMIT};
    const char *names[4] = {"finetune", "flip", "fake2", "fake3"};
    for (int k = 0; k < 4; k++) {
        const rn_kind *kind = rn_kind_find(names[k]);
        cr_assert_not_null(kind);
        cr_assert_str_eq(kind->def->name, names[k]);
        rn_task t;
        /* every key at its default, as spec expansion does */
        cr_assert_eq(rn_task_init(&t, kind), 0);
        t.seed = 11;
        rn_task_set(&t, "model", "train:owner", 0);
        rn_task_set(&t, "model_path", own, 0);
        if (rn_task_get(&t, "epochs")) { /* a quick attack: 1 epoch on a quarter of the data */
            rn_task_set(&t, "epochs", "1", 0);
            rn_task_set(&t, "fraction", "0.25", 0);
        }
        if (kind->produces) t.checkpoint = ft;
        cr_assert_gt(kind->cost(&t, &ctx), 0);
        ip_metrics mt;
        ip_metrics_init(&mt);
        ip_err e = {{0}};
        cr_assert_eq(rn_task_run(&t, &ctx, &mt, &e), 0, "%s: %s", names[k], e.msg);
        cr_assert(!isnan(ip_metrics_get(&mt, "test_acc")), "%s reports no test_acc", names[k]);
        ip_metrics_free(&mt);
        rn_task_free(&t);
    }
    cr_assert_eq(access(ft, R_OK), 0, "finetune wrote no checkpoint");
    unlink(own), unlink(ft);
}
