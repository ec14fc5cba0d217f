/* The task code's data rule: a spec's data are the same for every task. A
 * model trained on synthetic data under one task seed, then evaluated and
 * pruned at rate 0 by other tasks (the runner's path: core/tasks/models.c), must
 * show exactly its training accuracy: before, synthetic data were drawn from
 * each task's seed, so eval and prune saw other samples than the training. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tasks/tasks.h"
#include "testutil.h"

static char tdir[64];

static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "tasks")); }

static void remove_dir(void) { tu_rmtree(tdir); }

TestSuite(tasks, .init = make_dir, .fini = remove_dir);

static double metric(const ip_metrics *mt, const char *name) {
    for (int i = 0; i < mt->nscalars; i++)
        if (strcmp(mt->names[i], name) == 0) return mt->values[i];
    cr_assert_fail("no metric %s", name);
    return 0;
}

static void same_data_for_every_task(uint64_t train_seed, ip_scheme scheme) {
    const char *src = "synthetic:300x1x12x12/4";
    const char *ckpt = tu_path(tdir, "owner.h5");
    ip_train_task t = tu_tiny_train(src, scheme, IP_NORM_BN, 1, ckpt);
    t.seed = train_seed; /* not the synthetic data's seed: the data must not follow it */
    t.test_limit = 120;
    ip_metrics tr, ev, pr;
    ip_metrics_init(&tr), ip_metrics_init(&ev), ip_metrics_init(&pr);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &tr, &e), 0, "%s", e.msg);
    double acc = metric(&tr, "test_acc");

    ip_eval_task ev_t;
    ip_eval_task_defaults(&ev_t);
    snprintf(ev_t.model_path, sizeof ev_t.model_path, "%s", ckpt);
    snprintf(ev_t.data, sizeof ev_t.data, "%s", src);
    ev_t.test_limit = 120;
    cr_assert_eq(ip_task_eval(&ev_t, &ev, &e), 0, "%s", e.msg);
    cr_assert_eq(metric(&ev, "test_acc"), acc, "eval %.17g, training %.17g", metric(&ev, "test_acc"), acc);

    ip_prune_task pr_t;
    memset(&pr_t, 0, sizeof pr_t);
    snprintf(pr_t.model_path, sizeof pr_t.model_path, "%s", ckpt);
    snprintf(pr_t.data, sizeof pr_t.data, "%s", src);
    pr_t.test_limit = 120;
    pr_t.rate = 0;
    cr_assert_eq(ip_task_prune(&pr_t, &pr, &e), 0, "%s", e.msg);
    cr_assert_eq(metric(&pr, "test_acc"), acc, "prune rate 0 %.17g, training %.17g", metric(&pr, "test_acc"), acc);
    if (scheme != IP_SCHEME_BASELINE) {
        cr_assert_eq(metric(&ev, "detect"), metric(&tr, "detect"));
        cr_assert_eq(metric(&pr, "detect"), metric(&tr, "detect"));
    }
    ip_metrics_free(&tr), ip_metrics_free(&ev), ip_metrics_free(&pr);
}

Test(tasks, synthetic_eval_and_prune_reproduce_training_seed_7) { same_data_for_every_task(7, IP_SCHEME_BASELINE); }

Test(tasks, synthetic_eval_and_prune_reproduce_training_seed_1_v2) { same_data_for_every_task(1, IP_SCHEME_V2); }

/* The data of a source do not depend on who loads them or in which order. */
Test(tasks, synthetic_source_is_its_own_data) {
    ip_dataset a, b;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_load(&a, "synthetic:40x1x8x8/3", IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_synthetic(&b, 40, 1, 8, 8, 3, IP_DATA_SYNTHETIC_SEED, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    cr_assert(memcmp(a.x, b.x, 40 * 64 * sizeof(float)) == 0);
    cr_assert(memcmp(a.y, b.y, 40 * sizeof(int32_t)) == 0);
    cr_assert_str_eq(a.origin, "synthetic:40x1x8x8/3");
    ip_data_free(&a);
    ip_data_free(&b);
}

/* ---------------- the parameter tables (core/tasks/param.h) ---------------- */

/* Every row is sane: its field inside the struct, no key twice, and its
 * default's text parses (by the row's own rule) to the value the literal
 * gave: one literal, one default. */
Test(tasks, parameter_rows_are_consistent) {
    for (int k = 0; ip_task_defs[k]; k++) {
        const ip_task_def *d = ip_task_defs[k];
        unsigned char *a = malloc(d->size), *b = malloc(d->size);
        cr_assert(a && b);
        /* the surrounding fields it has lie inside the struct (IP_AT: offset + 1) */
        cr_expect(!d->at_data || d->at_data - 1 + 1024 <= d->size, "%s: data", d->name);
        cr_expect(!d->at_out || d->at_out - 1 + 1024 <= d->size, "%s: out", d->name);
        cr_expect(!d->at_test_limit || d->at_test_limit - 1 + sizeof(size_t) <= d->size, "%s: test_limit", d->name);
        for (int i = 0; i < 2; i++)
            cr_expect(!d->at_seed[i] || d->at_seed[i] - 1 + sizeof(uint64_t) <= d->size, "%s: seed", d->name);
        ip_task_defaults(d, a);
        for (int q = 0; q < d->nparams; q++) {
            const ip_param *p = &d->params[q];
            if (p->field != IP_F_NONE) cr_expect_leq(p->offset + p->size, d->size, "%s.%s", d->name, p->name);
            for (int r = 0; r < q; r++) cr_expect_str_neq(p->name, d->params[r].name, "%s: a key twice", d->name);
            if (!p->def) continue;
            ip_value v;
            int32_t list[1 + IP_MAX_INT_LIST];
            char msg[200];
            cr_assert_eq(ip_value_parse(p, p->def, &v, list, msg, sizeof msg), 0, "%s.%s: default %s: %s", d->name,
                         p->name, p->def, msg);
            memcpy(b, a, d->size);
            ip_err e = {{0}};
            cr_assert_eq(ip_param_store(p, &v, b, &e), 0, "%s", e.msg);
            cr_expect_eq(memcmp(a, b, d->size), 0, "%s.%s: the default's text and value disagree", d->name, p->name);
        }
        free(a), free(b);
    }
}

/* The train kind's `arch` choices are the core's architectures. */
Test(tasks, arch_choices_are_the_architectures) {
    const ip_param *p = ip_task_param(&ip_train_def, "arch");
    cr_assert_not_null(p);
    int n = 0;
    for (; ip_arch_names[n]; n++) cr_expect_eq(ip_param_choice(p, ip_arch_names[n]), n, "%s", ip_arch_names[n]);
    int choices = 1;
    for (const char *c = p->choices; *c; c++) choices += *c == '|';
    cr_expect_eq(choices, n);
}

/* One home for a default: the spec, `ipsweep task` and the core agree. */
Test(tasks, one_default_per_parameter) {
    ip_train_task t;
    ip_train_task_defaults(&t);
    cr_expect_eq(t.train.epochs, 2);
    cr_expect_float_eq(t.train.opt.lr, 0.01f, 0);
    cr_expect_float_eq(ip_train_task_weight_decay(&t), 5e-4f, 0); /* "auto" (-1) under paper (test_protocol_train.c) */
    cr_expect_eq(t.triggers, 100);
    cr_expect_str_eq(t.model.arch, "small-p");
    ip_eval_task ev;
    ip_eval_task_defaults(&ev);
    cr_expect_eq(ev.batch, 256);
    ip_fake1_task f;
    ip_fake1_task_defaults(&f);
    cr_expect_eq(f.passports, 1000);
    cr_expect_eq(f.shards, 1);
    cr_expect_eq(f.keep_arrays, 1);
    cr_expect_float_eq(f.forge.margin, 0.03, 0);
}
