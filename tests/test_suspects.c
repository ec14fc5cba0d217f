/* The suspect-producing kinds distill, extract and advtrain
 * (core/tasks/suspects.c, docs/attacks.md): the distillation kernel
 * (core/nn/distill.c: reference, finite differences, known values), a
 * student distilled from a small owner on synthetic data, a student
 * extracted from its top-1 answers (training images or noise), an owner
 * fine-tuned on PGD examples, their bad keys, and the task graph's relation
 * of all to the owner: pirated (/ipguard, runner/run/ipguard_summary.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/io/ckpt.h"
#include "../core/nn/layers.h"
#include "../core/tasks/tasks.h"
#include "../runner/kinds/cost.h"
#include "../runner/kinds/kinds.h"
#include "../runner/run/ipguard_summary.h"
#include "../runner/run/results.h"
#include "../runner/spec/spec.h"
#include "testutil.h"

extern const rn_kind rn_kind_distill, rn_kind_extract, rn_kind_advtrain;

/* ---------------- the kernel ---------------- */

Test(distill_kernel, zero_when_student_equals_teacher) {
    int n = 5, k = 10;
    float z[50], d[50];
    tu_fill(z, 50, -5.f, 5.f, 700);
    for (int i = 0; i < 50; i++) d[i] = 1e30f; /* must be overwritten */
    double loss = kd_forward_backward(d, z, z, n, k, 4.f, 1.f);
    cr_assert(fabs(loss) < 1e-12, "loss %.3g", loss);
    for (int i = 0; i < 50; i++) cr_assert(fabs(d[i]) < 1e-7, "d[%d] = %g", i, d[i]);
}

Test(distill_kernel, matches_reference_at_several_temperatures) {
    int n = 9, k = 7;
    float s[63], t[63], d[63], dr[63];
    tu_fill(s, 63, -4.f, 4.f, 701);
    tu_fill(t, 63, -6.f, 6.f, 702);
    for (int j = 0; j < k; j++) s[2 * k + j] += 1000.f, t[3 * k + j] -= 1000.f; /* shifts change nothing */
    const float temps[] = {0.5f, 1.f, 4.f, 20.f};
    for (int q = 0; q < 4; q++) {
        float scale = q == 2 ? 0.25f : 1.f;
        double loss = kd_forward_backward(d, s, t, n, k, temps[q], scale);
        double want = kd_forward_backward_ref(dr, s, t, n, k, temps[q], scale);
        cr_assert(isfinite(loss) && loss >= 0, "T=%g loss %g", temps[q], loss);
        cr_assert(fabs(loss - want) < 1e-9 * fmax(1, want), "T=%g: %.15g vs reference %.15g", temps[q], loss, want);
        for (int i = 0; i < 63; i++)
            cr_assert(fabs(d[i] - dr[i]) < 1e-6 * fmax(1, fabs(dr[i])), "T=%g d[%d] %g vs %g", temps[q], i, d[i],
                      dr[i]);
        for (int i = 0; i < n; i++) { /* each gradient row sums to zero (two distributions' difference) */
            double r = 0;
            for (int j = 0; j < k; j++) r += d[i * k + j];
            cr_assert(fabs(r) < 1e-6);
        }
    }
    /* dstudent is optional */
    cr_assert(fabs(kd_forward_backward(NULL, s, t, n, k, 4.f, 1.f) - kd_forward_backward_ref(NULL, s, t, n, k, 4.f, 1.f)) <
              1e-9);
}

Test(distill_kernel, known_value) {
    /* one row, two classes, T = 1: p = softmax(0, ln 3) = (1/4, 3/4), q = (1/2, 1/2):
     * KL = 1/4 ln(1/2) + 3/4 ln(3/2); gradient q - p = (1/4, -1/4) */
    float t[2] = {0.f, (float)log(3.0)}, s[2] = {2.f, 2.f}, d[2];
    double loss = kd_forward_backward(d, s, t, 1, 2, 1.f, 1.f);
    double want = 0.25 * log(0.5) + 0.75 * log(1.5);
    cr_assert(fabs(loss - want) < 1e-7, "loss %.10g vs %.10g", loss, want);
    cr_assert_float_eq(d[0], 0.25f, 1e-6);
    cr_assert_float_eq(d[1], -0.25f, 1e-6);
    /* T = 2 with doubled logits: the same distributions, so T^2 = 4 times the loss, T = 2 times the gradient */
    float t2[2] = {0.f, 2 * t[1]}, s2[2] = {4.f, 4.f};
    cr_assert(fabs(kd_forward_backward(d, s2, t2, 1, 2, 2.f, 1.f) - 4 * want) < 1e-6);
    cr_assert_float_eq(d[0], 0.5f, 1e-6);
}

typedef struct {
    float *s, *t;
    int n, k;
    float temp;
} kd_ctx;

static double kd_loss(void *p) {
    kd_ctx *c = p;
    return kd_forward_backward(NULL, c->s, c->t, c->n, c->k, c->temp, 1.f);
}

/* The loss is computed in double from float logits: the numerical derivative's
 * noise is the float rounding of s +- eps (~1e-5 relative at eps 1e-2);
 * central-difference truncation ~eps^2/T^2 times the loss's third derivative.
 * Gradients are O(T/n); tolerance 1e-2 relative with a floor of 1e-3. */
Test(distill_kernel, gradcheck) {
    int n = 8, k = 6;
    const float temps[] = {1.f, 4.f};
    for (int q = 0; q < 2; q++) {
        kd_ctx c = {tu_alloc(n * k), tu_alloc(n * k), n, k, temps[q]};
        tu_fill(c.s, n * k, -3.f, 3.f, 710);
        tu_fill(c.t, n * k, -5.f, 5.f, 711);
        float *d = tu_alloc(n * k);
        kd_forward_backward(d, c.s, c.t, n, k, c.temp, 1.f);
        double e = tu_grad_check(c.s, d, n * k, kd_loss, &c, 1e-2f, 100, 1e-3);
        cr_assert(e < 1e-2, "T=%g: grad check %g", c.temp, e);
        free(c.s), free(c.t), free(d);
    }
}

/* ---------------- the task ---------------- */

/* The owner trains on the first 512 of 1024 synthetic samples (as in test_attacks.c). */
#define SRC "synthetic:1024x1x16x16"
#define OWNER_LIMIT 512
#define TEST_LIMIT 256

static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "suspects"), "mkdtemp failed"); }
static void suite_fini(void) { tu_rmtree(scratch); }
TestSuite(distill, .init = suite_init, .fini = suite_fini);

static void owner(const char *path, ip_scheme scheme) {
    ip_train_task t = tu_tiny_train(SRC, scheme, IP_NORM_BN, 6, path);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_gt(ip_metrics_get(&mt, "test_acc"), 0.5, "owner accuracy %.3f", ip_metrics_get(&mt, "test_acc"));
    ip_metrics_free(&mt);
}

static ip_distill_task distill_task(const char *teacher, const char *out) {
    ip_distill_task t;
    ip_distill_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", teacher);
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.out, sizeof t.out, "%s", out);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.batch = 32;
    t.seed = 7;
    return t;
}

static size_t array_len(const ip_metrics *mt, const char *name) {
    for (int i = 0; i < mt->narrays; i++)
        if (strcmp(mt->arrays[i].name, name) == 0) return mt->arrays[i].n;
    return 0;
}

Test(distill, student_of_a_v1_owner_agrees_with_it) {
    char own[256], st[256];
    snprintf(own, sizeof own, "%s/owner.h5", scratch);
    snprintf(st, sizeof st, "%s/student.h5", scratch);
    owner(own, IP_SCHEME_V1);
    ip_distill_task t = distill_task(own, st);
    t.epochs = 4;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_distill(&t, &mt, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&mt, "test_acc"), tacc = ip_metrics_get(&mt, "teacher_test_acc"),
           agree = ip_metrics_get(&mt, "agreement");
    cr_log_info("distill (T=4, 4 epochs, 512 samples): teacher %.3f student %.3f agreement %.3f loss %.4f", tacc, acc,
                agree, ip_metrics_get(&mt, "train_loss"));
    cr_assert_eq(ip_metrics_get(&mt, "train_samples"), 512.0);
    cr_assert_gt(tacc, 0.5);
    /* 10 classes: chance agreement is ~0.1 */
    cr_assert_gt(agree, 0.6, "agreement %.3f", agree);
    cr_assert_gt(acc, 0.5, "student accuracy %.3f", acc);
    cr_assert_eq(array_len(&mt, "epoch_test_acc"), 4);
    cr_assert_eq(array_len(&mt, "epoch_train_loss"), 4);
    /* the loss fell */
    const double *loss = NULL;
    for (int i = 0; i < mt.narrays; i++)
        if (strcmp(mt.arrays[i].name, "epoch_train_loss") == 0) loss = mt.arrays[i].v;
    cr_assert_lt(loss[3], loss[0], "epoch losses %g .. %g", loss[0], loss[3]);
    /* the student is a baseline of the teacher's architecture with its normalisation */
    ip_model a = {0}, b = {0};
    cr_assert_eq(ip_ckpt_open_model(&a, own, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_ckpt_open_model(&b, st, &e), 0, "%s", e.msg);
    cr_assert_eq(b.cfg.scheme, IP_SCHEME_BASELINE);
    cr_assert_eq(b.npassports, 0);
    cr_assert_str_eq(b.cfg.arch, a.cfg.arch);
    cr_assert_eq(b.cfg.norm, a.cfg.norm);
    cr_assert(memcmp(a.cfg.in_mean, b.cfg.in_mean, sizeof a.cfg.in_mean) == 0 &&
              memcmp(a.cfg.in_std, b.cfg.in_std, sizeof a.cfg.in_std) == 0);
    ip_model_free(&a), ip_model_free(&b);
    ip_metrics_free(&mt);
    /* the agreement is the distillation's doing: the same student untrained agrees far less */
    t.epochs = 0;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_distill(&t, &mt, &e), 0, "%s", e.msg);
    double agree0 = ip_metrics_get(&mt, "agreement");
    cr_log_info("untrained student: agreement %.3f", agree0);
    cr_assert_lt(agree0, agree - 0.4, "untrained %.3f vs distilled %.3f", agree0, agree);
    cr_assert_eq(array_len(&mt, "epoch_test_acc"), 0);
    ip_metrics_free(&mt);
}

Test(distill, other_arch_hard_labels_and_fraction) {
    char own[256], st[256];
    snprintf(own, sizeof own, "%s/owner.h5", scratch);
    snprintf(st, sizeof st, "%s/student.h5", scratch);
    owner(own, IP_SCHEME_BASELINE);
    ip_distill_task t = distill_task(own, st);
    snprintf(t.arch, sizeof t.arch, "small-p");
    t.alpha = 0.5;
    t.fraction = 0.25;
    t.temperature = 2;
    t.epochs = 1;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_distill(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mt, "train_samples"), 128.0);
    cr_assert(isfinite(ip_metrics_get(&mt, "train_loss")));
    ip_model b = {0};
    cr_assert_eq(ip_ckpt_open_model(&b, st, &e), 0, "%s", e.msg);
    cr_assert_str_eq(b.cfg.arch, "small-p");
    ip_model_free(&b);
    ip_metrics_free(&mt);
    /* the core refuses what the table would: a zero temperature, alpha outside [0, 1] */
    ip_metrics_init(&mt);
    t.temperature = 0;
    cr_assert_neq(ip_task_distill(&t, &mt, &e), 0);
    cr_assert(strstr(e.msg, "temperature") != NULL, "%s", e.msg);
    t.temperature = 4, t.alpha = 1.5;
    cr_assert_neq(ip_task_distill(&t, &mt, &e), 0);
    cr_assert(strstr(e.msg, "alpha") != NULL, "%s", e.msg);
    ip_metrics_free(&mt);
}

/* ---------------- extract ---------------- */

TestSuite(extract, .init = suite_init, .fini = suite_fini);

static ip_extract_task extract_task(const char *owner_path, const char *out) {
    ip_extract_task t;
    ip_extract_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner_path);
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.out, sizeof t.out, "%s", out);
    t.train_limit = OWNER_LIMIT;
    t.test_limit = TEST_LIMIT;
    t.batch = 32;
    t.seed = 9;
    return t;
}

Test(extract, student_of_top1_answers_agrees_with_the_owner) {
    char own[256], st[256];
    snprintf(own, sizeof own, "%s/owner.h5", scratch);
    snprintf(st, sizeof st, "%s/student.h5", scratch);
    owner(own, IP_SCHEME_V2);
    ip_extract_task t = extract_task(own, st);
    cr_assert_eq(t.queries, 5000);
    cr_assert_eq(t.epochs, 10);
    cr_assert_eq(t.query_data, IP_EXTRACT_TRAIN);
    t.queries = 400; /* of the pool of 512 */
    t.epochs = 4;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_extract(&t, &mt, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&mt, "test_acc"), tacc = ip_metrics_get(&mt, "teacher_test_acc"),
           agree = ip_metrics_get(&mt, "agreement"), lacc = ip_metrics_get(&mt, "query_label_acc");
    cr_log_info("extract (400 train queries, 4 epochs): owner %.3f student %.3f agreement %.3f query_label_acc %.3f "
                "loss %.4f",
                tacc, acc, agree, lacc, ip_metrics_get(&mt, "train_loss"));
    cr_assert_eq(ip_metrics_get(&mt, "queries"), 400.0);
    /* the owner's answers on its own training images are mostly right, but they are its answers */
    cr_assert(lacc > 0.5 && lacc <= 1, "query_label_acc %.3f", lacc);
    cr_assert_gt(agree, 0.6, "agreement %.3f", agree);
    cr_assert_gt(acc, 0.5, "student accuracy %.3f", acc);
    cr_assert_eq(array_len(&mt, "epoch_test_acc"), 4);
    cr_assert_eq(array_len(&mt, "epoch_train_loss"), 4);
    ip_metrics_free(&mt);
    ip_model b = {0};
    cr_assert_eq(ip_ckpt_open_model(&b, st, &e), 0, "%s", e.msg);
    cr_assert_eq(b.cfg.scheme, IP_SCHEME_BASELINE);
    cr_assert_eq(b.npassports, 0);
    ip_model_free(&b);
    /* the agreement is the extraction's doing: the same student untrained agrees far less */
    t.epochs = 0;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_extract(&t, &mt, &e), 0, "%s", e.msg);
    double agree0 = ip_metrics_get(&mt, "agreement");
    cr_log_info("untrained student: agreement %.3f", agree0);
    cr_assert_lt(agree0, agree - 0.4, "untrained %.3f vs extracted %.3f", agree0, agree);
    /* the queries and their answers do not depend on the epochs */
    cr_assert_eq(ip_metrics_get(&mt, "query_label_acc"), lacc);
    ip_metrics_free(&mt);
}

Test(extract, noise_queries_run_and_are_deterministic) {
    char own[256];
    snprintf(own, sizeof own, "%s/owner.h5", scratch);
    owner(own, IP_SCHEME_BASELINE);
    ip_extract_task t = extract_task(own, "");
    t.query_data = IP_EXTRACT_NOISE;
    t.queries = 1000; /* noise has no pool: more than the 512 training images */
    snprintf(t.arch, sizeof t.arch, "small-p-narrow");
    t.epochs = 1;
    double run[2];
    for (int i = 0; i < 2; i++) {
        ip_metrics mt;
        ip_metrics_init(&mt);
        ip_err e = {{0}};
        cr_assert_eq(ip_task_extract(&t, &mt, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_metrics_get(&mt, "queries"), 1000.0);
        cr_assert(isnan(ip_metrics_get(&mt, "query_label_acc")), "noise has no true labels");
        cr_assert(isfinite(ip_metrics_get(&mt, "train_loss")));
        double agree = ip_metrics_get(&mt, "agreement");
        cr_assert(agree >= 0 && agree <= 1);
        run[i] = ip_metrics_get(&mt, "test_acc");
        if (i == 0)
            cr_log_info("extract (1000 noise queries, 1 epoch): student %.3f agreement %.3f", run[i], agree);
        ip_metrics_free(&mt);
    }
    cr_assert_eq(run[0], run[1], "%.17g vs %.17g", run[0], run[1]);
}

Test(extract, bad_budgets_rejected) {
    char own[256];
    snprintf(own, sizeof own, "%s/owner.h5", scratch);
    owner(own, IP_SCHEME_BASELINE);
    ip_extract_task t = extract_task(own, "");
    t.epochs = 0;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    /* the pool is the owner's 512 training images: all of them is fine, one more is an input error naming the key */
    t.queries = OWNER_LIMIT;
    cr_assert_eq(ip_task_extract(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mt, "queries"), (double)OWNER_LIMIT);
    ip_metrics_free(&mt);
    ip_metrics_init(&mt);
    t.queries = OWNER_LIMIT + 1;
    cr_assert_neq(ip_task_extract(&t, &mt, &e), 0);
    cr_log_info("%s", e.msg);
    cr_assert(strncmp(e.msg, "queries", 7) == 0 && strstr(e.msg, "513") && strstr(e.msg, "512"), "%s", e.msg);
    cr_assert(ip_err_is_input(&e));
    t.queries = 0;
    cr_assert_neq(ip_task_extract(&t, &mt, &e), 0);
    cr_assert(strstr(e.msg, "queries") != NULL, "%s", e.msg);
    cr_assert(ip_err_is_input(&e));
    ip_metrics_free(&mt);
}

/* ---------------- advtrain ---------------- */

Test(distill, advtrain_makes_the_owner_robust_and_keeps_it_accurate) {
    char own[256], adv[256];
    snprintf(own, sizeof own, "%s/owner.h5", scratch);
    snprintf(adv, sizeof adv, "%s/adv.h5", scratch);
    owner(own, IP_SCHEME_V2);
    ip_advtrain_task t;
    ip_advtrain_task_defaults(&t);
    cr_assert_float_eq(t.eps, 8.0 / 255, 1e-12);
    cr_assert_eq(t.steps, 7);
    snprintf(t.model_path, sizeof t.model_path, "%s", own);
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.out, sizeof t.out, "%s", adv);
    t.train_limit = OWNER_LIMIT, t.test_limit = TEST_LIMIT;
    t.eps = 0.1; /* the synthetic classes are far apart: 8/255 barely moves the owner */
    t.adv_eval = TEST_LIMIT;
    t.epochs = 2, t.batch = 32, t.seed = 3;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_advtrain(&t, &mt, &e), 0, "%s", e.msg);
    double acc = ip_metrics_get(&mt, "test_acc"), adv0 = ip_metrics_get(&mt, "owner_adv_test_acc"),
           adv1 = ip_metrics_get(&mt, "adv_test_acc");
    cr_log_info("advtrain (eps 0.1, 7 steps, 2 epochs): owner %.3f (PGD %.3f) -> %.3f (PGD %.3f)",
                ip_metrics_get(&mt, "owner_test_acc"), adv0, acc, adv1);
    cr_assert_eq(ip_metrics_get(&mt, "adv_eval"), (double)TEST_LIMIT);
    /* PGD hurts the owner; the fine-tuned copy resists it and stays accurate */
    cr_assert_lt(adv0, ip_metrics_get(&mt, "owner_test_acc") - 0.1, "PGD barely hurts the owner: %.3f", adv0);
    cr_assert_gt(adv1, adv0 + 0.1, "robust accuracy %.3f -> %.3f", adv0, adv1);
    cr_assert_gt(acc, 0.5);
    cr_assert_eq(array_len(&mt, "epoch_test_acc"), 2);
    ip_metrics_free(&mt);
    /* the checkpoint is the owner's network (v2: the public branch fine-tuned) */
    ip_model b = {0};
    cr_assert_eq(ip_ckpt_open_model(&b, adv, &e), 0, "%s", e.msg);
    cr_assert_eq(b.cfg.scheme, IP_SCHEME_V2);
    ip_model_free(&b);
    /* eps 0: PGD is the identity, so the adversarial accuracy is the clean one */
    t.eps = 0, t.epochs = 0;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_advtrain(&t, &mt, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&mt, "adv_test_acc"), ip_metrics_get(&mt, "test_acc"));
    ip_metrics_free(&mt);
}

/* ---------------- specs ---------------- */

static int load_fails_with(const char *text, const char *want) {
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "distill.yaml", text, NULL, NULL, 0, &d);
    int found = 0;
    for (int i = 0; i < d.n; i++) found |= strstr(d.v[i].msg, want) != NULL || strstr(d.v[i].path, want) != NULL;
    if (rc == 0) rn_spec_free(&s);
    else if (!found) rn_diags_print(&d, stderr);
    rn_diags_free(&d);
    return rc != 0 && found;
}

#define SPEC_HEAD "data: {source: synthetic:64}\nmodels:\n  - {name: owner, seed: 1}\ntasks:\n"

Test(distill_spec, bad_keys_rejected) {
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, model: owner, temperature: 0}\n", "temperature"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, model: owner, alpha: 1.5}\n", "alpha"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, model: owner, fraction: 0}\n", "fraction"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, model: owner, arch: small-q}\n", "small-q"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, model: owner, optimizer: rmsprop}\n", "optimizer"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, temperature: 2}\n", "model"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: d, kind: distill, model: owner, temprature: 2}\n", "temprature"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: a, kind: advtrain, model: owner, eps: 2}\n", "eps"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: a, kind: advtrain, model: owner, steps: 0}\n", "steps"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: a, kind: advtrain, model: owner, alpha: -1}\n", "alpha"));
}

Test(extract_spec, bad_keys_rejected) {
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, model: owner, queries: 0}\n", "queries"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, model: owner, queries: -5}\n", "queries"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, model: owner, query_data: test}\n", "query_data"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, model: owner, arch: small-q}\n", "small-q"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, model: owner, epochs: -1}\n", "epochs"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, queries: 10}\n", "model"));
    cr_assert(load_fails_with(SPEC_HEAD "  - {name: x, kind: extract, model: owner, temperature: 2}\n", "temperature"));
}

static int find(const rn_spec *s, const char *key) {
    for (int i = 0; i < s->ntasks; i++)
        if (strcmp(s->tasks[i].key, key) == 0) return i;
    cr_assert_fail("no task %s", key);
    return -1;
}

/* A student distilled from the owner and the owner fine-tuned on PGD examples
 * depend on the owner's train task: their matches count as pirated; a student
 * of another model is independent. */
Test(distill_spec, distilled_and_advtrained_are_pirated_in_ipguard) {
    const char *text = "data: {source: synthetic:64}\n"
                       "models:\n"
                       "  - {name: owner, seed: 1}\n"
                       "  - {name: other, seed: 2}\n"
                       "tasks:\n"
                       "  - {name: st, kind: distill, model: [owner, other], arch: small-p-narrow}\n"
                       "  - {name: adv, kind: advtrain, model: owner}\n"
                       "  - {name: ex, kind: extract, model: owner, query_data: noise}\n"
                       "  - {name: fp, kind: fingerprint, model: owner, k: 1}\n"
                       "  - {name: m, kind: match, fingerprint: fp, suspect: [owner, st, adv, ex, other]}\n";
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "distill.yaml", text, NULL, NULL, 0, &d);
    if (rc) rn_diags_print(&d, stderr);
    rn_diags_free(&d);
    cr_assert_eq(rc, 0);
    int st_owner = -1, st_other = -1, nst = 0, adv = -1, ex = -1;
    for (int i = 0; i < s.ntasks; i++) {
        if (strcmp(s.tasks[i].kind, "advtrain") == 0) {
            adv = i;
            cr_assert_eq(s.tasks[i].k->produces, RN_OUT_MODEL);
        }
        if (strcmp(s.tasks[i].kind, "extract") == 0) {
            ex = i;
            cr_assert_eq(s.tasks[i].k->produces, RN_OUT_MODEL);
        }
        if (strcmp(s.tasks[i].kind, "distill") != 0) continue;
        nst++;
        cr_assert_eq(s.tasks[i].k->produces, RN_OUT_MODEL);
        if (strstr(s.tasks[i].key, "<train:owner")) st_owner = i;
        if (strstr(s.tasks[i].key, "<train:other")) st_other = i;
    }
    cr_assert_eq(nst, 2);
    cr_assert(st_owner >= 0 && st_other >= 0 && adv >= 0 && ex >= 0);
    const rn_record **by = calloc((size_t)s.ntasks, sizeof *by);
    rn_record *r = calloc((size_t)s.ntasks, sizeof *r);
    ip_err e = {{0}};
    for (int i = 0; i < s.ntasks; i++) {
        rn_record_init(&r[i]);
        snprintf(r[i].key, sizeof r[i].key, "%s", s.tasks[i].key);
        r[i].status = RN_DONE;
        by[i] = &r[i];
        if (strcmp(s.tasks[i].kind, "match") != 0) continue;
        const char *sus = rn_task_get(&s.tasks[i], "suspect");
        double rate = strstr(sus, "owner") ? 0.9 : 0.1;
        cr_assert_eq(ip_metrics_set(&r[i].metrics, "match_rate", rate, &e), 0);
    }
    rn_ipguard g;
    cr_assert_eq(rn_ipguard_build(&s, by, &g, &e), 0, "%s", e.msg);
    int seen = 0;
    for (int j = 0; j < g.nmatches; j++) {
        const rn_ipg_match *m = &g.matches[j];
        if (m->suspect == st_owner) {
            seen++;
            cr_expect_eq(m->relation, RN_REL_PIRATED, "%s", rn_relation_name(m->relation));
        }
        if (m->suspect == st_other) {
            seen++;
            cr_expect_eq(m->relation, RN_REL_INDEPENDENT, "%s", rn_relation_name(m->relation));
        }
        if (m->suspect == adv || m->suspect == ex) {
            seen++;
            cr_expect_eq(m->relation, RN_REL_PIRATED, "%s", rn_relation_name(m->relation));
        }
        if (m->suspect == find(&s, "train:owner")) cr_expect_eq(m->relation, RN_REL_SELF);
    }
    cr_assert_eq(seen, 4);
    rn_ipguard_free(&g);
    for (int i = 0; i < s.ntasks; i++) rn_record_free(&r[i]);
    free(r), free(by);
    rn_spec_free(&s);
}

/* ---------------- the runner's kind ---------------- */

Test(distill_spec, cost_grows_with_epochs_and_student_size) {
    const char *text = SPEC_HEAD "  - {name: d, kind: distill, model: owner, epochs: [1, 4], arch: [small-p-narrow, small-p]}\n";
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "distill.yaml", text, NULL, NULL, 0, &d);
    if (rc) rn_diags_print(&d, stderr);
    rn_diags_free(&d);
    cr_assert_eq(rc, 0);
    rn_ctx c = {0};
    c.train_limit = 1000, c.test_limit = 100;
    double cost[2][2] = {{0}};
    for (int i = 0; i < s.ntasks; i++) {
        if (strcmp(s.tasks[i].kind, "distill") != 0) continue;
        int ep = rn_val_i(&s.tasks[i], "epochs") == 4, big = strcmp(rn_val_text(&s.tasks[i], "arch"), "small-p") == 0;
        cost[ep][big] = rn_kind_distill.cost(&s.tasks[i], &c);
        cr_assert_gt(rn_kind_distill.step_cost(&s.tasks[i], &c), 0);
        cr_assert_lt(rn_kind_distill.step_cost(&s.tasks[i], &c), cost[ep][big]);
    }
    cr_assert(cost[0][0] > 0 && cost[1][0] > cost[0][0] && cost[0][1] > cost[0][0], "%g %g %g", cost[0][0], cost[1][0],
              cost[0][1]);
    rn_spec_free(&s);
}

Test(distill_spec, advtrain_cost_grows_with_steps) {
    const char *text = SPEC_HEAD "  - {name: a, kind: advtrain, model: owner, steps: [1, 10]}\n";
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "adv.yaml", text, NULL, NULL, 0, &d);
    if (rc) rn_diags_print(&d, stderr);
    rn_diags_free(&d);
    cr_assert_eq(rc, 0);
    rn_ctx c = {0};
    c.train_limit = 1000, c.test_limit = 100;
    double cost[2] = {0};
    for (int i = 0; i < s.ntasks; i++) {
        if (strcmp(s.tasks[i].kind, "advtrain") != 0) continue;
        int many = rn_val_i(&s.tasks[i], "steps") == 10;
        cost[many] = rn_kind_advtrain.cost(&s.tasks[i], &c);
        cr_assert_gt(rn_kind_advtrain.step_cost(&s.tasks[i], &c), 0);
        cr_assert_lt(rn_kind_advtrain.step_cost(&s.tasks[i], &c), cost[many]);
    }
    cr_assert(cost[0] > 0 && cost[1] > 3 * cost[0], "%g %g", cost[0], cost[1]);
    rn_spec_free(&s);
}

Test(extract_spec, cost_grows_with_queries_and_train_queries_stop_at_the_pool) {
    const char *text =
        SPEC_HEAD "  - {name: x, kind: extract, model: owner, queries: [100, 1000, 100000], query_data: [train, noise]}\n";
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "extract.yaml", text, NULL, NULL, 0, &d);
    if (rc) rn_diags_print(&d, stderr);
    rn_diags_free(&d);
    cr_assert_eq(rc, 0);
    rn_ctx c = {0};
    c.train_limit = 1000, c.test_limit = 100;
    double cost[2][3] = {{0}};
    for (int i = 0; i < s.ntasks; i++) {
        if (strcmp(s.tasks[i].kind, "extract") != 0) continue;
        long n = rn_val_i(&s.tasks[i], "queries");
        int noise = strcmp(rn_val_text(&s.tasks[i], "query_data"), "noise") == 0, q = n == 100 ? 0 : n == 1000 ? 1 : 2;
        cost[noise][q] = rn_kind_extract.cost(&s.tasks[i], &c);
        cr_assert_gt(rn_kind_extract.step_cost(&s.tasks[i], &c), 0);
        cr_assert_lt(rn_kind_extract.step_cost(&s.tasks[i], &c), cost[noise][q]);
    }
    cr_assert(cost[0][0] > 0 && cost[0][1] > 5 * cost[0][0], "%g %g", cost[0][0], cost[0][1]);
    /* a train budget beyond the pool of 1000 costs the pool (the task fails at once); noise has no pool */
    cr_assert_eq(cost[0][2], cost[0][1]);
    cr_assert_gt(cost[1][2], 50 * cost[1][1]);
    cr_assert_eq(cost[1][1], cost[0][1]);
    rn_spec_free(&s);
}
