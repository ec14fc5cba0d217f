/* The shipped specs and docs (tests/test_spec.c tests the loader itself):
 * configs/quick.yaml, the fingerprint study, the published studies'
 * configs (dry run without their data) and the generated kinds section of
 * docs/spec.md. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/kinds/kinds.h"
#include "../runner/spec/spec.h"
#include "spec_testutil.h"

/* --------------------------------------------------- shipped files --- */

Test(spec_files, quick_config_validates) {
    rn_spec s;
    rn_diags d = {0};
    const rn_spec_opts *o = dir_exists(FM_DIR) ? NULL : &no_data;
    int rc = rn_spec_load_opts(&s, "configs/quick.yaml", o, NULL, 0, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(s.name, "quick");
    cr_expect_eq(count_kind(&s, "train", NULL), 12); /* base x 2, pv1, pv2, pv3, indep x 3, narrow, wide, cae-ref x 2 */
    /* base x 2 seeds x 10 rates + {pv1, pv2, pv3} x 10 rates + base x 2 seeds x 2 rates (IPGuard) */
    cr_expect_eq(count_kind(&s, "prune", NULL), 20 + 30 + 4);
    cr_expect_eq(count_kind(&s, "finetune", NULL), 3 * 4 + 2 * 4);
    cr_expect_eq(count_kind(&s, "fingerprint", NULL), 2 * 3 + 2); /* 2 owners x (3 margins + cae) */
    /* every fingerprint x (2 base + 8 fine-tuned + 4 pruned + 2 distilled + 2 adversarially trained + 2 extracted
     * + 3 indep + narrow + wide) */
    cr_expect_eq(count_kind(&s, "match", NULL), 8 * 25);
    cr_expect_eq(count_kind(&s, "distill", NULL), 2 + 4); /* stolen + the defender's surrogates */
    cr_expect_eq(count_kind(&s, "extract", NULL), 2);
    cr_expect_eq(count_kind(&s, "advtrain", NULL), 2);
    cr_expect_eq(count_kind(&s, "flip", NULL), 5);
    cr_expect_eq(count_kind(&s, "fake2", NULL), 3);
    cr_expect_eq(count_kind(&s, "fake3", NULL), 4);
    cr_expect_eq(count_kind(&s, "erb", NULL), 3 * 2 * 3); /* {pv1, pv2, pv3} x {cerb, none} x 3 fractions */
    /* random + {image, shuffle} x 2 base seeds, each of 10,000 passports in 4 shards + the merge */
    cr_expect_eq(count_kind(&s, "fake1", NULL), 5 * (4 + 1));
    cr_expect_not_null(find_task(&s, "train:pv1"));
    cr_expect_str_eq(rn_task_get(find_task(&s, "train:pv1"), "signature"), "ipsweep");
    cr_expect_not_null(find_task(&s, "prune:pruned[rate=0.9]<train:base[seed=2]>"));
    rn_ctx ctx;
    rn_spec_ctx(&s, &ctx);
    cr_expect_str_eq(ctx.data_source, s.data_source);
    cr_expect_eq(ctx.train_limit, 12000);
    cr_expect_eq(ctx.test_limit, 2000);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* The fingerprint study: every attack family against IPGuard at three margins and CAE. */
Test(spec_files, fingerprints_config_validates) {
    rn_spec s;
    rn_diags d = {0};
    const rn_spec_opts *o = dir_exists(FM_DIR) ? NULL : &no_data;
    int rc = rn_spec_load_opts(&s, "configs/fingerprints-fashion-mnist.yaml", o, NULL, 0, &d);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_expect_eq(count_kind(&s, "fingerprint", NULL), 3 * (3 + 1)); /* 3 owners x (3 margins + cae) */
    /* every fingerprint x (3 owners + 3 x (4 ft + 4 pruned + 4 distilled + 2 adv + 3 extracted) + 10 independent,
     * the copies of the other owners independent too; + 4 calibration) */
    cr_expect_eq(count_kind(&s, "match", NULL), 12 * (3 + 3 * 17 + 10 + 4));
    cr_expect_eq(count_kind(&s, "distill", NULL), 3 * (4 + 4)); /* stolen students + the defender's surrogates */
    const rn_task *cae = find_task(&s, "fingerprint:fp-cae<train:owner[seed=2]>");
    cr_assert_not_null(cae);
    cr_expect_eq(cae->ndeps, 1 + 4 + 4, "the owner, its 4 surrogates, the 4 references");
    for (int t = 0; t < s.ntasks; t++) cr_expect_gt(s.tasks[t].cost, 0, "%s", s.tasks[t].key);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* The published studies' configs expand (task counts and costs) without their data. */
Test(spec_files, paper_configs_dry_run_without_data) {
    const char *files[] = {"configs/deepipr-alexnet-cifar10.yaml", "configs/deepipr-resnet18-cifar10.yaml",
                           "configs/ipguard-cifar10.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        rn_spec s;
        rn_diags d = {0};
        int rc = rn_spec_load_opts(&s, files[i], &no_data, NULL, 0, &d);
        if (rc) dump(&d);
        cr_assert_eq(rc, 0, "%s", files[i]);
        cr_expect_gt(s.ntasks, 50, "%s", files[i]);
        for (int t = 0; t < s.ntasks; t++) cr_expect_gt(s.tasks[t].cost, 0, "%s", s.tasks[t].key);
        if (i < 2) {
            cr_expect_eq(count_kind(&s, "train", NULL), 4); /* baseline, v1, v2, v3 */
            /* the published studies follow the authors' code (top-level protocol reaches every kind with the key) */
            for (int t = 0; t < s.ntasks; t++) {
                const char *p = rn_task_get(&s.tasks[t], "protocol");
                if (p) cr_expect_str_eq(p, "deepipr-code", "%s", s.tasks[t].key);
            }
            cr_expect_str_eq(rn_task_get(find_task(&s, "train:v1"), "key_type"), "shuffle");
            cr_expect_eq(count_kind(&s, "fake1", NULL), 9 * 5); /* 3 models x 3 key types, 4 shards + merge each */
        } else {
            cr_expect_eq(count_kind(&s, "fingerprint", NULL), 4);
            cr_expect_eq(count_kind(&s, "match", NULL), 4 * 16);
        }
        rn_spec_free(&s);
        rn_diags_free(&d);
    }
}

Test(spec_files, docs_kinds_current) {
    FILE *f = fopen("docs/spec.md", "rb");
    cr_assert_not_null(f, "docs/spec.md");
    char *doc = NULL;
    size_t cap = 0;
    ssize_t got = getdelim(&doc, &cap, '\0', f);
    fclose(f);
    cr_assert_gt(got, 0);
    const char *b = strstr(doc, "<!-- kinds:begin -->\n"), *e = strstr(doc, "<!-- kinds:end -->");
    cr_assert(b && e && e > b, "markers");
    b += strlen("<!-- kinds:begin -->\n");
    char *gen = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&gen, &len);
    rn_spec_doc_kinds(m);
    fclose(m);
    cr_expect_eq((size_t)(e - b), len, "regenerate docs/spec.md's kinds section with rn_spec_doc_kinds()");
    cr_expect_eq(strncmp(b, gen, len), 0, "regenerate docs/spec.md's kinds section with rn_spec_doc_kinds()");
    free(gen);
    free(doc);
}
