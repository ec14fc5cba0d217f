/* V3 trigger set (core/trigger.h) and the v2/v3 private-branch batch-norm
 * statistics (core/model.c): deterministic generation, a tiny v3 model
 * learns its trigger set, checkpoint round trips (and files written before
 * the private statistics existed). Models are small-p-narrow on a synthetic
 * 16x16 set, as in test_attacks.c. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/passport/attacks.h"
#include "../core/io/ckpt.h"
#include "../core/tasks/tasks.h"
#include "../core/passport/trigger.h"
#include "testutil.h"

#define SRC "synthetic:512x1x16x16"

static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "trigger"), "mkdtemp failed"); }
static void suite_fini(void) { tu_rmtree(scratch); }
TestSuite(trigger, .init = suite_init, .fini = suite_fini);

static void build(ip_model *m, ip_scheme scheme, ip_norm_kind norm) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p-narrow");
    cfg.in_c = 1, cfg.in_h = 16, cfg.in_w = 16, cfg.classes = 10;
    cfg.norm = norm;
    cfg.scheme = scheme;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 3, "ok", &e), 0, "%s", e.msg);
}

Test(trigger, deterministic_block_noise) {
    ip_dataset a, b, c, d;
    ip_err e = {{0}};
    cr_assert_eq(ip_trigger_make(&a, 100, 1, 28, 28, 10, 7, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_trigger_make(&b, 100, 1, 28, 28, 10, 7, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_trigger_make(&c, 30, 1, 28, 28, 10, 7, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_trigger_make(&d, 100, 1, 28, 28, 10, 8, &e), 0, "%s", e.msg);
    size_t sample = 28 * 28;
    cr_assert_eq(a.n, 100);
    cr_assert(memcmp(a.x, b.x, a.n * sample * sizeof(float)) == 0, "same seed, other images");
    cr_assert(memcmp(a.y, b.y, a.n * sizeof(int32_t)) == 0, "same seed, other labels");
    /* image k does not depend on the count */
    cr_assert(memcmp(a.x, c.x, c.n * sample * sizeof(float)) == 0);
    cr_assert(memcmp(a.y, c.y, c.n * sizeof(int32_t)) == 0);
    cr_assert(memcmp(a.x, d.x, sample * sizeof(float)) != 0, "another seed gives the same image");
    int counts[10] = {0}, same_label = 0;
    for (size_t k = 0; k < a.n; k++) {
        cr_assert(a.y[k] >= 0 && a.y[k] < 10, "label %d", a.y[k]);
        counts[a.y[k]]++;
        same_label += a.y[k] == d.y[k];
        const float *x = a.x + k * sample;
        for (int i = 0; i < 28; i++)
            for (int j = 0; j < 28; j++) {
                float v = x[i * 28 + j];
                cr_assert(v >= 0.f && v <= 1.f);
                cr_assert_float_eq(v * 255.f, nearbyintf(v * 255.f), 1e-3, "not an 8-bit level");
                /* constant over each IP_TRIGGER_CELL x IP_TRIGGER_CELL cell */
                int i0 = i / IP_TRIGGER_CELL * IP_TRIGGER_CELL, j0 = j / IP_TRIGGER_CELL * IP_TRIGGER_CELL;
                cr_assert_eq(v, x[i0 * 28 + j0]);
            }
    }
    for (int l = 0; l < 10; l++) cr_assert_gt(counts[l], 0, "label %d never drawn in 100", l);
    cr_assert_lt(same_label, 30, "labels of two seeds agree %d times in 100", same_label);
    /* images differ from each other */
    cr_assert(memcmp(a.x, a.x + sample, sample * sizeof(float)) != 0);
    ip_data_free(&a), ip_data_free(&b), ip_data_free(&c), ip_data_free(&d);
    cr_assert_eq(ip_trigger_make(&a, 0, 1, 28, 28, 10, 7, &e), -1);
    cr_assert_eq(ip_trigger_make(&a, 5, 1, 28, 28, 1, 7, &e), -1);
}

static ip_train_task tiny_task(ip_scheme scheme, ip_norm_kind norm, int epochs, const char *out) {
    ip_train_task t = tu_tiny_train(SRC, scheme, norm, epochs, out);
    t.test_limit = 256;
    t.train.opt.lr = 0.05f;
    t.triggers = 16;
    return t;
}

/* 512 samples / batch 32 = 16 steps per epoch, 2 triggers each: every one of
 * the 16 triggers is seen twice per epoch (in both branches). */
Test(trigger, v3_learns_its_trigger_set) {
    ip_err e = {{0}};
    for (int n = 0; n < 2; n++) {
        ip_norm_kind norm = n ? IP_NORM_GN : IP_NORM_BN;
        const char *path = tu_path(scratch, n ? "v3gn.h5" : "v3bn.h5");
        ip_train_task t = tiny_task(IP_SCHEME_V3, norm, 12, path);
        ip_metrics mt;
        ip_metrics_init(&mt);
        cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
        double tp = ip_metrics_get(&mt, "trigger_acc"), tq = ip_metrics_get(&mt, "trigger_acc_private");
        cr_assert_geq(tp, 0.9, "%s: public trigger accuracy %.3f", ip_norm_name(norm), tp);
        cr_assert_geq(tq, 0.9, "%s: private trigger accuracy %.3f", ip_norm_name(norm), tq);
        cr_assert_gt(ip_metrics_get(&mt, "test_acc"), 0.8);
        cr_assert_gt(ip_metrics_get(&mt, "public_test_acc"), 0.8);
        cr_assert_eq(ip_metrics_get(&mt, "detect"), 1.0);
        cr_assert_eq(ip_metrics_get(&mt, "detect_block1"), 1.0);
        cr_assert_eq(ip_metrics_get(&mt, "detect_block2"), 1.0);
        ip_metrics_free(&mt);

        ip_model m = {0};
        cr_assert_eq(ip_ckpt_open_model(&m, path, &e), 0, "%s", e.msg);
        ip_dataset trig;
        cr_assert_eq(ip_data_copy(&trig, &m.trigger, &e), 0, "%s", e.msg);
        ip_model_free(&m);
        /* the same trigger set on a v2 model that never saw it: near chance */
        ip_train_task t3 = tiny_task(IP_SCHEME_V2, norm, 12, tu_path(scratch, "v2.h5"));
        ip_metrics_init(&mt);
        cr_assert_eq(ip_task_train(&t3, &mt, &e), 0, "%s", e.msg);
        cr_assert(isnan(ip_metrics_get(&mt, "trigger_acc")), "v2 reports a trigger accuracy");
        ip_metrics_free(&mt);
        cr_assert_eq(ip_ckpt_open_model(&m, tu_path(scratch, "v2.h5"), &e), 0, "%s", e.msg);
        m.trigger = trig;
        double acc;
        cr_assert_eq(ip_trigger_acc(&m, IP_BRANCH_PUBLIC, 64, &acc, &e), 0, "%s", e.msg);
        cr_assert_lt(acc, 0.5, "a model that never saw the trigger set scores %.3f", acc);
        ip_model_free(&m);
    }
}

/* The trigger samples are not counted in the epoch's training accuracy, and
 * v3 without a trigger set trains exactly like v2. */
Test(trigger, training_batches) {
    ip_err e = {{0}};
    ip_dataset train;
    cr_assert_eq(ip_data_load(&train, SRC, IP_SPLIT_TRAIN, 96, &e), 0, "%s", e.msg);
    ip_model a, b;
    build(&a, IP_SCHEME_V2, IP_NORM_BN);
    build(&b, IP_SCHEME_V3, IP_NORM_BN);
    cr_assert_eq(ip_data_match_model(&train, &a, &e), 0, "%s", e.msg);
    ip_train_cfg c;
    ip_train_defaults(&c);
    c.batch = 32;
    cr_assert_eq(ip_train(&a, &train, NULL, &c, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_train(&b, &train, NULL, &c, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert(memcmp(a.params, b.params, a.nparams * sizeof(float)) == 0, "v3 without triggers differs from v2");
    /* with a trigger set the parameters move differently; the planned batch holds the triggers */
    ip_model_free(&b);
    build(&b, IP_SCHEME_V3, IP_NORM_BN);
    cr_assert_eq(ip_trigger_attach(&b, 10, 5, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_train(&b, &train, NULL, &c, NULL, NULL, &e), 0, "%s", e.msg);
    cr_assert_geq(b.batch, 32 + IP_TRIGGER_PER_BATCH);
    cr_assert(memcmp(a.params, b.params, a.nparams * sizeof(float)) != 0, "the triggers changed nothing");
    ip_model_free(&a), ip_model_free(&b);
    ip_data_free(&train);
}

static const float *buf_of(const ip_model *m, const char *name) {
    int i = ip_model_find_tensor(m, name);
    cr_assert_geq(i, 0, "no tensor %s", name);
    return m->bufs + m->tensors[i].offset;
}

/* v2/v3 batch norm: only norms fed by a passport layer get private statistics;
 * a training forward updates the statistics of the branch that ran. */
Test(trigger, private_bn_statistics) {
    const ip_scheme schemes[4] = {IP_SCHEME_BASELINE, IP_SCHEME_V1, IP_SCHEME_V2, IP_SCHEME_V3};
    for (int s = 0; s < 4; s++)
        for (int n = 0; n < 2; n++) {
            ip_model m;
            build(&m, schemes[s], n ? IP_NORM_GN : IP_NORM_BN);
            int want = !n && s >= 2;
            /* small-p: block1's input is the same in both branches, block2's is not */
            cr_assert_eq(ip_model_find_tensor(&m, "block2.norm.private_running_mean") >= 0, want);
            cr_assert_eq(ip_model_find_tensor(&m, "block2.norm.private_running_var") >= 0, want);
            cr_assert_lt(ip_model_find_tensor(&m, "block1.norm.private_running_mean"), 0);
            cr_assert_lt(ip_model_find_tensor(&m, "block0.norm.private_running_mean"), 0);
            ip_model_free(&m);
        }
    /* the larger architectures (docs/passports.md lists these) */
    static const char *const archs[2] = {"alexnet-p", "resnet18-p"};
    static const char *const priv[2][4] = {{"block3", "block4", NULL}, {"s4.b0.c2", "s4.b1.c1", "s4.b1.c2", NULL}};
    ip_err e = {{0}};
    for (int a = 0; a < 2; a++) {
        ip_model_cfg cfg = {0};
        snprintf(cfg.arch, sizeof cfg.arch, "%s", archs[a]);
        cfg.in_c = 3, cfg.in_h = 32, cfg.in_w = 32, cfg.classes = 10;
        cfg.scheme = IP_SCHEME_V3;
        ip_model m;
        cr_assert_eq(ip_model_build(&m, &cfg, &e), 0, "%s", e.msg);
        int nwant = 0, nhave = 0;
        for (int k = 0; priv[a][k]; k++, nwant++) {
            char name[64];
            snprintf(name, sizeof name, "%s.norm.private_running_var", priv[a][k]);
            cr_assert_geq(ip_model_find_tensor(&m, name), 0, "%s: no %s", archs[a], name);
        }
        for (int i = 0; i < m.ntensors; i++) nhave += strstr(m.tensors[i].name, "private_running_var") != NULL;
        cr_assert_eq(nhave, nwant, "%s: %d private statistics", archs[a], nhave);
        ip_model_free(&m);
    }
    ip_model m;
    build(&m, IP_SCHEME_V2, IP_NORM_BN);
    cr_assert_eq(buf_of(&m, "block2.norm.private_running_var")[0], 1.f, "init: var 1");
    cr_assert_eq(ip_model_plan(&m, 8, &e), 0, "%s", e.msg);
    float x[8 * 256];
    tu_fill(x, 8 * 256, -1, 1, 9);
    float pub_m[64], prv_m[64], prv_v[64]; /* block2: 4 x 16 channels */
    memcpy(pub_m, buf_of(&m, "block2.norm.running_mean"), sizeof pub_m);
    memcpy(prv_m, buf_of(&m, "block2.norm.private_running_mean"), sizeof prv_m);
    m.branch = IP_BRANCH_PRIVATE;
    ip_model_forward(&m, x, 8, 1);
    cr_assert(memcmp(pub_m, buf_of(&m, "block2.norm.running_mean"), sizeof pub_m) == 0, "public stats moved");
    cr_assert(memcmp(prv_m, buf_of(&m, "block2.norm.private_running_mean"), sizeof prv_m) != 0);
    memcpy(prv_m, buf_of(&m, "block2.norm.private_running_mean"), sizeof prv_m);
    memcpy(prv_v, buf_of(&m, "block2.norm.private_running_var"), sizeof prv_v);
    m.branch = IP_BRANCH_PUBLIC;
    ip_model_forward(&m, x, 8, 1);
    cr_assert(memcmp(pub_m, buf_of(&m, "block2.norm.running_mean"), sizeof pub_m) != 0);
    cr_assert(memcmp(prv_m, buf_of(&m, "block2.norm.private_running_mean"), sizeof prv_m) == 0);
    cr_assert(memcmp(prv_v, buf_of(&m, "block2.norm.private_running_var"), sizeof prv_v) == 0);
    /* eval: each branch normalises with its own statistics */
    float *rm, *rv;
    const ip_op *norm2 = NULL;
    for (int i = 0; i < m.nops; i++)
        if (strcmp(m.ops[i].name, "block2.norm") == 0 && m.ops[i].kind == IP_OP_NORM) norm2 = &m.ops[i];
    cr_assert_not_null(norm2);
    ip_model_norm_running(&m, norm2, IP_BRANCH_PRIVATE, &rm, &rv);
    cr_assert_eq(rm, buf_of(&m, "block2.norm.private_running_mean"));
    ip_model_norm_running(&m, norm2, IP_BRANCH_PUBLIC, &rm, &rv);
    cr_assert_eq(rv, buf_of(&m, "block2.norm.running_var"));
    ip_model_free(&m);
}

Test(trigger, checkpoint_round_trip) {
    ip_err e = {{0}};
    const char *path = tu_path(scratch, "rt.h5");
    ip_train_task t = tiny_task(IP_SCHEME_V3, IP_NORM_BN, 1, path);
    t.triggers = 23; /* seed 1: eval loads the synthetic test split with seed 1 too */
    ip_metrics mt;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    ip_model m = {0};
    cr_assert_eq(ip_ckpt_open_model(&m, path, &e), 0, "%s", e.msg);
    ip_dataset want;
    cr_assert_eq(ip_trigger_make(&want, 23, 1, 16, 16, 10, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(m.trigger.n, 23);
    cr_assert_eq(m.trigger_seed, 1);
    cr_assert_eq(m.trigger.normalised, 0, "stored in pixel space");
    cr_assert(memcmp(m.trigger.x, want.x, 23 * 256 * sizeof(float)) == 0);
    cr_assert(memcmp(m.trigger.y, want.y, 23 * sizeof(int32_t)) == 0);
    /* the loaded model reports what the trained one did */
    ip_eval_task et;
    ip_eval_task_defaults(&et);
    snprintf(et.model_path, sizeof et.model_path, "%s", path);
    snprintf(et.data, sizeof et.data, SRC);
    et.test_limit = 256;
    ip_metrics ev;
    ip_metrics_init(&ev);
    cr_assert_eq(ip_task_eval(&et, &ev, &e), 0, "%s", e.msg);
    const char *same[] = {"test_acc", "public_test_acc", "trigger_acc", "trigger_acc_private", "detect"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(ip_metrics_get(&ev, same[i]), ip_metrics_get(&mt, same[i]), "%s", same[i]);
    /* save again: identical trigger and private statistics */
    const char *path2 = tu_path(scratch, "rt2.h5");
    cr_assert_eq(ip_ckpt_save(&m, path2, &e), 0, "%s", e.msg);
    ip_model m2 = {0};
    cr_assert_eq(ip_ckpt_open_model(&m2, path2, &e), 0, "%s", e.msg);
    cr_assert_eq(m2.trigger.n, 23);
    cr_assert(memcmp(m2.trigger.x, want.x, 23 * 256 * sizeof(float)) == 0);
    cr_assert(memcmp(m.bufs, m2.bufs, m.nbufs * sizeof(float)) == 0);
    ip_model_free(&m2);

    /* a file written before the private statistics existed: they fall back to the shared ones */
    hid_t f = H5Fopen(path2, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_geq(H5Ldelete(f, "/buffers/block2.norm/private_running_mean", H5P_DEFAULT), 0);
    cr_assert_geq(H5Ldelete(f, "/buffers/block2.norm/private_running_var", H5P_DEFAULT), 0);
    H5Fclose(f);
    cr_assert_eq(ip_ckpt_open_model(&m2, path2, &e), 0, "%s", e.msg);
    cr_assert(memcmp(buf_of(&m2, "block2.norm.private_running_var"), buf_of(&m, "block2.norm.running_var"),
                     64 * sizeof(float)) == 0);
    cr_assert(memcmp(buf_of(&m2, "block2.norm.private_running_mean"), buf_of(&m, "block2.norm.running_mean"),
                     64 * sizeof(float)) == 0);
    ip_model_free(&m2);

    /* a bad label is refused */
    f = H5Fopen(path2, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/trigger/labels", H5P_DEFAULT);
    int32_t bad[23];
    memcpy(bad, want.y, sizeof bad);
    bad[5] = 10;
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad), 0);
    H5Dclose(d);
    H5Fclose(f);
    cr_assert_eq(ip_ckpt_open_model(&m2, path2, &e), -1);
    cr_assert(strstr(e.msg, "/trigger/labels[5] = 10"), "%s", e.msg);
    ip_model_free(&m);
    ip_data_free(&want);
    ip_metrics_free(&mt);
    ip_metrics_free(&ev);
}

/* Removal attacks on a v3 model report the trigger accuracy: pruning (scalars)
 * and fine-tuning (per epoch and final). */
Test(trigger, attacks_report_trigger_acc) {
    ip_err e = {{0}};
    const char *path = tu_path(scratch, "att.h5");
    ip_train_task t = tiny_task(IP_SCHEME_V3, IP_NORM_BN, 2, path);
    t.train_limit = 256;
    ip_metrics mt;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    ip_metrics_free(&mt);

    ip_prune_task pt = {0};
    snprintf(pt.model_path, sizeof pt.model_path, "%s", path);
    snprintf(pt.data, sizeof pt.data, SRC);
    pt.test_limit = 128;
    pt.rate = 0.3;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_prune(&pt, &mt, &e), 0, "%s", e.msg);
    double a = ip_metrics_get(&mt, "trigger_acc"), b = ip_metrics_get(&mt, "trigger_acc_private");
    cr_assert(a >= 0 && a <= 1 && b >= 0 && b <= 1, "prune: trigger_acc %g, private %g", a, b);
    ip_metrics_free(&mt);

    ip_finetune_task ft;
    ip_finetune_task_defaults(&ft);
    snprintf(ft.model_path, sizeof ft.model_path, "%s", path);
    snprintf(ft.data, sizeof ft.data, SRC);
    ft.train_limit = 256;
    ft.test_limit = 128;
    ft.mode = IP_FT_FTAL;
    ft.fraction = 0.5;
    ft.disjoint = 1;
    ft.epochs = 2;
    ip_metrics_init(&mt);
    cr_assert_eq(ip_task_finetune(&ft, &mt, &e), 0, "%s", e.msg);
    int found = 0;
    for (int i = 0; i < mt.narrays; i++)
        if (strcmp(mt.arrays[i].name, "epoch_trigger_acc") == 0 ||
            strcmp(mt.arrays[i].name, "epoch_trigger_acc_private") == 0) {
            cr_assert_eq(mt.arrays[i].n, 2, "%s has %zu values", mt.arrays[i].name, mt.arrays[i].n);
            found++;
        }
    cr_assert_eq(found, 2);
    cr_assert(!isnan(ip_metrics_get(&mt, "trigger_acc")) && !isnan(ip_metrics_get(&mt, "trigger_acc_private")));
    ip_metrics_free(&mt);
}
