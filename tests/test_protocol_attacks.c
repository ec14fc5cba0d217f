/* `protocol: deepipr-code` on the attack side (docs/attacks.md, docs/passports.md "Protocols", points
 * 4-7): fine-tuning's two detections, the flip across layers, the authors' percentile pruning and
 * fake2's init. `paper` must stay what it was: the other suites (attacks, tasks) hold its numbers;
 * here each test also checks that paper and deepipr-code agree where the authors' code does what
 * the paper says. Owners are small-p-narrow on a synthetic 16x16 set, as in test_attacks.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/model/prune.h"
#include "../core/passport/signature.h"
#include "../core/tasks/tasks.h"
#include "testutil.h"

#define SRC "synthetic:1024x1x16x16"
#define OWNER_LIMIT 512
#define TEST_LIMIT 256

static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "protoatt"), "mkdtemp failed"); }
static void suite_fini(void) { tu_rmtree(scratch); }
TestSuite(protocol_attacks, .init = suite_init, .fini = suite_fini);

static void tmp_path(char *out, size_t cap, const char *tag) { snprintf(out, cap, "%s/%s.h5", scratch, tag); }

/* Trains an owner and returns its signature detection. */
static double owner(const char *path, ip_scheme scheme, ip_norm_kind norm, int epochs) {
    ip_train_task t = tu_tiny_train(SRC, scheme, norm, epochs, path);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    double det = ip_metrics_get(&mt, "detect");
    ip_metrics_free(&mt);
    return det;
}

static void open_model(ip_model *m, const char *path) {
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(m, path, &e), 0, "%s", e.msg);
}

/* ---------------- point 6: the percentile ---------------- */

Test(protocol_attacks, percentile_is_numpys_linear) {
    /* numpy.percentile's documented examples: a = [[10, 7, 4], [3, 2, 1]] -> 50th: 3.5; per column
     * [10, 3], [7, 2], [4, 1] -> 6.5, 4.5, 2.5 */
    const float a[6] = {1, 2, 3, 4, 7, 10};
    cr_assert_eq(ip_percentile_linear(a, 6, 0.5), 3.5);
    const float c0[2] = {3, 10}, c1[2] = {2, 7}, c2[2] = {1, 4};
    cr_assert_eq(ip_percentile_linear(c0, 2, 0.5), 6.5);
    cr_assert_eq(ip_percentile_linear(c1, 2, 0.5), 4.5);
    cr_assert_eq(ip_percentile_linear(c2, 2, 0.5), 2.5);
    /* the ends and whole virtual indices are the values themselves */
    cr_assert_eq(ip_percentile_linear(a, 6, 0), 1.0);
    cr_assert_eq(ip_percentile_linear(a, 6, 1), 10.0);
    cr_assert_eq(ip_percentile_linear(a, 6, 0.4), 3.0); /* (6 - 1) x 0.4 = 2 */
    /* interpolated from the nearer end (numpy >= 1.22 _lerp): 30% of [1, 2, 3, 4] = 2 - 1 x 0.1 */
    const float b[4] = {1, 2, 3, 4};
    cr_assert_float_eq(ip_percentile_linear(b, 4, 0.3), 1.9, 1e-15);
    cr_assert_eq(ip_percentile_linear(b, 4, 0.3), 2.0 - 1.0 * (1 - (3 * 0.3 - floor(3 * 0.3))));
    cr_assert(isnan(ip_percentile_linear(b, 0, 0.5)));
}

/* Zero parameters, and whether a v1 passport layer's unused affine changed. */
static size_t zeros_in(const ip_model *m, int skip_v1_affine) {
    size_t z = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        if (t->kind != IP_TENSOR_PARAM) continue;
        int unused = 0;
        for (int p = 0; p < m->npassports && skip_v1_affine; p++) {
            const ip_op *aff = &m->ops[m->passports[p].affine_op];
            unused |= i == aff->weight || i == aff->bias;
        }
        if (unused) continue;
        for (size_t q = 0; q < t->numel; q++) z += m->params[t->offset + q] == 0.f;
    }
    return z;
}

static size_t authors_numel(const ip_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].kind == IP_TENSOR_PARAM) n += m->tensors[i].numel;
    for (int p = 0; p < m->npassports && m->cfg.scheme == IP_SCHEME_V1; p++) {
        const ip_op *aff = &m->ops[m->passports[p].affine_op];
        n -= m->tensors[aff->weight].numel + m->tensors[aff->bias].numel;
    }
    return n;
}

Test(protocol_attacks, percentile_pruning_takes_every_parameter_of_the_authors_model) {
    char own[256];
    tmp_path(own, sizeof own, "prune_owner");
    owner(own, IP_SCHEME_V1, IP_NORM_BN, 1);
    ip_model m, ref;
    open_model(&m, own);
    open_model(&ref, own);
    ip_err e = {{0}};
    size_t pruned = 7;
    double thr = -1;
    /* rate 0: nothing, as pruning_resnet's early return (a threshold at the minimum would prune it) */
    cr_assert_eq(ip_prune_percentile(&m, 0, &pruned, &thr, &e), 0, "%s", e.msg);
    cr_assert_eq(pruned, 0);
    cr_assert_eq(memcmp(m.params, ref.params, m.nparams * sizeof(float)), 0);
    const size_t n = authors_numel(&m);
    cr_assert_eq(ip_prune_percentile(&m, 0.5, &pruned, &thr, &e), 0, "%s", e.msg);
    cr_assert_eq(pruned, zeros_in(&m, 1), "pruned counts the parameters the mask zeroes");
    cr_log_info("percentile 50%%: threshold %.6g, %zu of %zu parameters zero", thr, pruned, n);
    /* linear interpolation between two of n magnitudes: exactly half survive unless values tie */
    cr_assert_geq(pruned, n / 2);
    cr_assert_leq(pruned, n / 2 + 1);
    /* 1-D parameters take part: fc.bias and the learned affine of a non-passport block */
    int one_d_changed = 0;
    for (int i = 0; i < m.ntensors; i++) {
        const ip_tensor *t = &m.tensors[i];
        if (t->kind != IP_TENSOR_PARAM || t->ndim != 1) continue;
        for (size_t q = 0; q < t->numel; q++) {
            float before = ref.params[t->offset + q], after = m.params[t->offset + q];
            cr_assert(after == before || (after == 0.f && fabsf(before) <= (float)thr));
            one_d_changed |= after != before;
        }
    }
    cr_assert(one_d_changed, "no 1-D parameter was pruned");
    /* v1's passport layers have no learned affine in the authors' model: untouched even at rate 1 */
    cr_assert_eq(ip_prune_percentile(&m, 1, &pruned, &thr, &e), 0, "%s", e.msg);
    cr_assert_eq(pruned, n);
    for (int p = 0; p < m.npassports; p++) {
        const ip_op *aff = &m.ops[m.passports[p].affine_op];
        const int ids[2] = {aff->weight, aff->bias};
        for (int j = 0; j < 2; j++) {
            const ip_tensor *t = &m.tensors[ids[j]];
            cr_assert_eq(memcmp(m.params + t->offset, ref.params + t->offset, t->numel * sizeof(float)), 0);
        }
    }
    cr_assert_eq(ip_prune_percentile(&m, 1.5, NULL, NULL, &e), -1);
    ip_model_free(&m), ip_model_free(&ref);
}

static ip_metrics run_prune(const char *path, double rate, int protocol) {
    ip_prune_task t;
    ip_task_defaults(&ip_prune_def, &t);
    snprintf(t.model_path, sizeof t.model_path, "%s", path);
    snprintf(t.data, sizeof t.data, SRC);
    t.test_limit = TEST_LIMIT;
    t.rate = rate;
    t.protocol = protocol;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_prune(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(protocol_attacks, prune_task_deepipr_code_reports_the_public_branch_of_v2) {
    char own[256];
    tmp_path(own, sizeof own, "prune_v2");
    owner(own, IP_SCHEME_V2, IP_NORM_GN, 2);
    ip_metrics p0 = run_prune(own, 0, IP_PROTOCOL_PAPER), d0 = run_prune(own, 0, IP_PROTOCOL_DEEPIPR_CODE);
    /* rate 0 prunes nothing in both: deepipr-code's test_acc is paper's public_test_acc */
    cr_assert_eq(ip_metrics_get(&d0, "test_acc"), ip_metrics_get(&p0, "public_test_acc"));
    cr_assert_eq(ip_metrics_get(&d0, "private_test_acc"), ip_metrics_get(&p0, "test_acc"));
    cr_assert_eq(ip_metrics_get(&d0, "detect"), ip_metrics_get(&p0, "detect"));
    cr_assert(isnan(ip_metrics_get(&p0, "private_test_acc")), "paper reports what it reported");
    ip_metrics p5 = run_prune(own, 0.5, IP_PROTOCOL_PAPER), d5 = run_prune(own, 0.5, IP_PROTOCOL_DEEPIPR_CODE);
    cr_log_info("prune 0.5 on v2: paper acc %.3f detect %.3f pruned %g; deepipr-code public acc %.3f private "
                "%.3f detect %.3f pruned %g threshold %.4g",
                ip_metrics_get(&p5, "test_acc"), ip_metrics_get(&p5, "detect"), ip_metrics_get(&p5, "pruned"),
                ip_metrics_get(&d5, "test_acc"), ip_metrics_get(&d5, "private_test_acc"),
                ip_metrics_get(&d5, "detect"), ip_metrics_get(&d5, "pruned"), ip_metrics_get(&d5, "threshold"));
    /* more parameters take part (1-D ones, the public affine), so more are zeroed */
    cr_assert_gt(ip_metrics_get(&d5, "pruned"), ip_metrics_get(&p5, "pruned"));
    cr_assert_gt(ip_metrics_get(&d5, "threshold"), 0.0);
    ip_metrics_free(&p0), ip_metrics_free(&d0), ip_metrics_free(&p5), ip_metrics_free(&d5);
}

/* ---------------- point 5: the sign flip ---------------- */

static ip_metrics run_flip(const char *path, double fraction, int protocol) {
    ip_flip_task t;
    ip_flip_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", path);
    snprintf(t.data, sizeof t.data, SRC);
    t.test_limit = TEST_LIMIT;
    t.fraction = fraction;
    t.seed = 3;
    t.protocol = protocol;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_flip(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(protocol_attacks, flip_deepipr_code_flips_across_layers_and_detects_from_the_passport) {
    char own[256];
    tmp_path(own, sizeof own, "flip_owner");
    cr_assert_eq(owner(own, IP_SCHEME_V1, IP_NORM_BN, 6), 1.0, "a fully detected owner");
    ip_metrics p0 = run_flip(own, 0, IP_PROTOCOL_PAPER), d0 = run_flip(own, 0, IP_PROTOCOL_DEEPIPR_CODE);
    cr_assert_eq(ip_metrics_get(&d0, "test_acc"), ip_metrics_get(&p0, "test_acc"));
    cr_assert_eq(ip_metrics_get(&d0, "flipped"), 0.0);
    const double fr[3] = {0.3, 0.5, 1.0};
    for (int i = 0; i < 3; i++) {
        ip_metrics p = run_flip(own, fr[i], IP_PROTOCOL_PAPER), d = run_flip(own, fr[i], IP_PROTOCOL_DEEPIPR_CODE);
        double ds = ip_metrics_get(&d, "detect_scale");
        cr_log_info("flip %.1f: paper acc %.3f detect %.3f; deepipr-code acc %.3f detect %.3f detect_scale %.4f",
                    fr[i], ip_metrics_get(&p, "test_acc"), ip_metrics_get(&p, "detect"),
                    ip_metrics_get(&d, "test_acc"), ip_metrics_get(&d, "detect"), ds);
        /* int(fraction x 96) channels of block1 (32) and block2 (64) together: 28, 48, 96 */
        cr_assert_eq(ip_metrics_get(&d, "flipped"), floor(fr[i] * 96.0));
        cr_assert_eq(ip_metrics_get(&d, "channels"), 96.0);
        /* the authors' detection reads the passport gamma, which no flip touches */
        cr_assert_eq(ip_metrics_get(&d, "detect"), 1.0);
        cr_assert_eq(ip_metrics_get(&d, "detect_passport"), 1.0);
        cr_assert_eq(ip_metrics_get(&p, "detect_passport"), 1.0);
        cr_assert_eq(ip_metrics_get(&p, "detect"), ip_metrics_get(&p, "detect_scale"));
        /* detect_scale = mean over the 2 layers of 1 - k_l / C_l with k1 + k2 = flipped, k1 <= 32 */
        int found = 0;
        for (int k1 = 0; k1 <= 32; k1++) {
            int k2 = (int)floor(fr[i] * 96.0) - k1;
            if (k2 < 0 || k2 > 64) continue;
            found |= fabs(ds - 0.5 * ((1 - k1 / 32.0) + (1 - k2 / 64.0))) < 1e-12;
        }
        cr_assert(found, "detect_scale %.6f is not a split of the flipped channels", ds);
        if (fr[i] == 1.0) cr_assert_eq(ds, 0.0);
        ip_metrics_free(&p), ip_metrics_free(&d);
    }
    ip_metrics_free(&p0), ip_metrics_free(&d0);
}

/* ---------------- point 4: detection after fine-tuning ---------------- */

static ip_metrics run_finetune(const char *own, int protocol) {
    ip_finetune_task t;
    ip_finetune_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", own);
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.mode = IP_FT_RTAL;
    t.fraction = 0.25;
    t.epochs = 1;
    t.batch = 32;
    t.seed = 5;
    t.protocol = protocol;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_finetune(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

Test(protocol_attacks, finetune_reports_both_detections_and_the_protocol_picks_detect) {
    char own[256];
    const ip_scheme schemes[2] = {IP_SCHEME_V1, IP_SCHEME_V2};
    for (int s = 0; s < 2; s++) {
        tmp_path(own, sizeof own, s ? "ft_v2" : "ft_v1");
        owner(own, schemes[s], IP_NORM_GN, 3);
        ip_metrics p = run_finetune(own, IP_PROTOCOL_PAPER), d = run_finetune(own, IP_PROTOCOL_DEEPIPR_CODE);
        cr_log_info("rtal on %s: detect_passport %.3f detect_scale %.3f; paper detect %.3f, deepipr-code %.3f",
                    s ? "v2" : "v1", ip_metrics_get(&p, "detect_passport"), ip_metrics_get(&p, "detect_scale"),
                    ip_metrics_get(&p, "detect"), ip_metrics_get(&d, "detect"));
        /* the same training: only which reading is `detect` differs */
        cr_assert_eq(ip_metrics_get(&d, "test_acc"), ip_metrics_get(&p, "test_acc"));
        cr_assert_eq(ip_metrics_get(&d, "detect_passport"), ip_metrics_get(&p, "detect_passport"));
        cr_assert_eq(ip_metrics_get(&d, "detect_scale"), ip_metrics_get(&p, "detect_scale"));
        cr_assert_eq(ip_metrics_get(&p, "detect"), ip_metrics_get(&p, "detect_passport"));
        /* v1: the authors' copy-back makes the fine-tuned norm weight a free scale and reads its signs;
         * v2: their private detection recomputes the passport gamma */
        cr_assert_eq(ip_metrics_get(&d, "detect"), ip_metrics_get(&d, s ? "detect_passport" : "detect_scale"));
        ip_metrics_free(&p), ip_metrics_free(&d);
    }
}

/* ---------------- point 7: fake2's init ---------------- */

static ip_metrics run_fake2(const char *path, double init_flip, int protocol) {
    ip_fake2_task t;
    ip_fake2_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", path);
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.fraction = 0.1;
    t.init_flip = init_flip;
    t.epochs = 0;
    t.batch = 32;
    t.seed = 9;
    t.protocol = protocol;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fake2(&t, &mt, &e), 0, "%s", e.msg);
    return mt;
}

/* Detection of the public gammas of a v2 checkpoint against its signature. */
static double public_detect(const char *path) {
    ip_model m;
    open_model(&m, path);
    double s = 0;
    for (int p = 0; p < m.npassports; p++) {
        const ip_passport *pp = &m.passports[p];
        s += ip_sign_detect(ip_tensor_param(&m, m.ops[pp->affine_op].weight), pp->bits, pp->cout);
    }
    s /= m.npassports;
    ip_model_free(&m);
    return s;
}

Test(protocol_attacks, fake2_deepipr_code_starts_from_the_deployed_gammas_signs) {
    char own[256];
    tmp_path(own, sizeof own, "fake2_v1");
    cr_assert_eq(owner(own, IP_SCHEME_V1, IP_NORM_GN, 6), 1.0, "a fully detected owner");
    /* v1: the passport gamma's signs, all of them kept at init_flip 0 */
    ip_metrics d = run_fake2(own, 0, IP_PROTOCOL_DEEPIPR_CODE);
    cr_assert_eq(ip_metrics_get(&d, "init_detect"), 1.0);
    ip_metrics_free(&d);
    /* flips across layers: int(0.5 x 96) = 48 of them, split between the layers by the draw */
    d = run_fake2(own, 0.5, IP_PROTOCOL_DEEPIPR_CODE);
    double id = ip_metrics_get(&d, "init_detect");
    int found = 0;
    for (int k1 = 0; k1 <= 32; k1++)
        found |= 48 - k1 <= 64 && fabs(id - 0.5 * ((1 - k1 / 32.0) + (1 - (48 - k1) / 64.0))) < 1e-12;
    cr_assert(found, "init_detect %.6f is not a split of 48 flips", id);
    ip_metrics p = run_fake2(own, 0.5, IP_PROTOCOL_PAPER);
    cr_assert_eq(ip_metrics_get(&p, "init_detect"), 0.5, "paper: per layer, as before");
    cr_log_info("fake2 init on v1: paper init acc %.3f detect %.3f; deepipr-code init acc %.3f detect %.4f",
                ip_metrics_get(&p, "init_test_acc"), ip_metrics_get(&p, "init_detect"),
                ip_metrics_get(&d, "init_test_acc"), id);
    ip_metrics_free(&d), ip_metrics_free(&p);

    /* v2: the public gamma's signs, not the passport's */
    tmp_path(own, sizeof own, "fake2_v2");
    owner(own, IP_SCHEME_V2, IP_NORM_GN, 2);
    d = run_fake2(own, 0, IP_PROTOCOL_DEEPIPR_CODE);
    double pub = public_detect(own);
    cr_log_info("fake2 init on v2: public gamma detection %.4f, deepipr-code init_detect %.4f", pub,
                ip_metrics_get(&d, "init_detect"));
    cr_assert_eq(ip_metrics_get(&d, "init_detect"), pub);
    ip_metrics_free(&d);
}

/* ---------------- point 3: fake1's image/shuffle keys ---------------- */

static void fake1_run(ip_fake1_task *t, ip_metrics *mt) {
    ip_metrics_init(mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fake1(t, mt, &e), 0, "%s", e.msg);
}

static int same_array(const ip_metrics *a, const ip_metrics *b, const char *name) {
    const ip_metric_array *x = NULL, *y = NULL;
    for (int i = 0; i < a->narrays; i++)
        if (!strcmp(a->arrays[i].name, name)) x = &a->arrays[i];
    for (int i = 0; i < b->narrays; i++)
        if (!strcmp(b->arrays[i].name, name)) y = &b->arrays[i];
    cr_assert(x && y && x->n == y->n, "%s", name);
    return memcmp(x->v, y->v, x->n * sizeof *x->v) == 0;
}

/* Under deepipr-code image and shuffle fakes need no reference checkpoint (the task builds the authors'
 * randomly initialised one), come from test images through it in train mode, are reproducible, and are
 * not the paper's keys; naming a reference is refused. */
Test(protocol_attacks, fake1_deepipr_code_keys_from_a_random_reference) {
    char own[256], base[256];
    tmp_path(own, sizeof own, "f1_owner");
    tmp_path(base, sizeof base, "f1_base");
    owner(own, IP_SCHEME_V1, IP_NORM_BN, 2);
    owner(base, IP_SCHEME_BASELINE, IP_NORM_BN, 2);
    for (int kt = IP_KEY_IMAGE; kt <= IP_KEY_SHUFFLE; kt++) {
        ip_fake1_task t;
        ip_fake1_task_defaults(&t);
        snprintf(t.model_path, sizeof t.model_path, "%s", own);
        snprintf(t.data, sizeof t.data, SRC);
        t.train_limit = OWNER_LIMIT, t.test_limit = TEST_LIMIT;
        t.key_type = (ip_key_type)kt;
        t.passports = 24, t.eval_images = 64;
        t.protocol = IP_PROTOCOL_DEEPIPR_CODE;
        const char *key = NULL;
        char msg[300];
        cr_assert_eq(ip_fake1_def.check(&t, NULL, &key, msg, sizeof msg), 0, "%s", msg);
        ip_metrics a, b, p;
        fake1_run(&t, &a);
        fake1_run(&t, &b);
        cr_assert(same_array(&a, &b, "fake_acc") && same_array(&a, &b, "fake_detect"), "reproducible");
        ip_fake1_task q = t;
        q.protocol = IP_PROTOCOL_PAPER;
        snprintf(q.reference_path, sizeof q.reference_path, "%s", base);
        fake1_run(&q, &p);
        cr_assert(!same_array(&a, &p, "fake_detect") || !same_array(&a, &p, "fake_acc"),
                  "the authors' keys are not the paper's");
        cr_log_info("fake1 %s: deepipr-code mean acc %.3f, paper %.3f", kt == IP_KEY_IMAGE ? "image" : "shuffle",
                    ip_metrics_get(&a, "fake_mean"), ip_metrics_get(&p, "fake_mean"));
        ip_metrics_free(&a), ip_metrics_free(&b), ip_metrics_free(&p);
        snprintf(t.reference_path, sizeof t.reference_path, "%s", base);
        cr_assert_neq(ip_fake1_def.check(&t, NULL, &key, msg, sizeof msg), 0);
        cr_assert_str_eq(key, "reference");
    }
}
