/* The IPGuard verdicts the results file derives from match tasks
 * (runner/ipguard_summary.c, /ipguard in docs/results.md): relations of
 * suspects to the owner from the task graph, curves, ARUC, threshold and
 * verdicts, and the /ipguard group the writer makes of them. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner/run/ipguard_summary.h"
#include "../runner/run/results.h"
#include "../runner/spec/spec.h"

/* An owner, two post-processed copies of it, an independent model and a copy
 * of that; one fingerprint of the owner (2 margins); every model matched. */
static const char *spec_text = "data: {source: synthetic:64}\n"
                               "models:\n"
                               "  - {name: owner, seed: 1}\n"
                               "  - {name: other, seed: 2}\n"
                               "tasks:\n"
                               "  - {name: ft, kind: finetune, model: owner, mode: ftll}\n"
                               "  - {name: cut, kind: prune, model: [owner, other], rate: 0.5}\n"
                               "  - {name: fp, kind: fingerprint, model: owner, k: [1, 5], fpr: 0.0}\n"
                               "  - {name: m, kind: match, fingerprint: fp, suspect: [owner, ft, cut, other]}\n";

static void load(rn_spec *s) {
    rn_diags d = {0};
    int rc = rn_spec_load_text(s, "ipg.yaml", spec_text, NULL, NULL, 0, &d);
    if (rc) rn_diags_print(&d, stderr);
    cr_assert_eq(rc, 0);
    rn_diags_free(&d);
}

static int find(const rn_spec *s, const char *key) {
    for (int i = 0; i < s->ntasks; i++)
        if (strcmp(s->tasks[i].key, key) == 0) return i;
    cr_assert_fail("no task %s", key);
    return -1;
}

/* Records: every task done; match rates by suspect (pirated high, independent low). */
static rn_record *records(const rn_spec *s, const rn_record **by) {
    rn_record *r = calloc((size_t)s->ntasks, sizeof *r);
    ip_err e = {{0}};
    for (int i = 0; i < s->ntasks; i++) {
        rn_record_init(&r[i]);
        snprintf(r[i].key, sizeof r[i].key, "%s", s->tasks[i].key);
        r[i].status = RN_DONE;
        by[i] = &r[i];
        if (strcmp(s->tasks[i].kind, "match") != 0) continue;
        const char *sus = rn_task_get(&s->tasks[i], "suspect");
        double k = atof(rn_task_get(&s->tasks[find(s, rn_task_get(&s->tasks[i], "fingerprint"))], "k"));
        double rate = strstr(sus, "owner") == NULL ? 0.1 : strcmp(sus, "train:owner") == 0 ? 1.0 : 0.9;
        if (k > 2 && strstr(sus, "other")) rate = 0.95; /* the larger margin: an independent model scores high */
        cr_assert_eq(ip_metrics_set(&r[i].metrics, "match_rate", rate, &e), 0);
    }
    return r;
}

Test(ipguard_summary, relations_curves_and_verdicts) {
    rn_spec s;
    load(&s);
    const rn_record **by = calloc((size_t)s.ntasks, sizeof *by);
    rn_record *r = records(&s, by);
    rn_ipguard g;
    ip_err e = {{0}};
    cr_assert_eq(rn_ipguard_build(&s, by, &g, &e), 0, "%s", e.msg);
    cr_assert_eq(g.nfps, 2);
    cr_assert_eq(g.nmatches, 2 * 5); /* owner, ft, cut x 2, other */
    int owner = find(&s, "train:owner");
    for (int j = 0; j < g.nmatches; j++) {
        const rn_ipg_match *m = &g.matches[j];
        const char *key = s.tasks[m->suspect].key;
        rn_relation want = m->suspect == owner           ? RN_REL_SELF
                           : strstr(key, "train:owner>") ? RN_REL_PIRATED
                                                         : RN_REL_INDEPENDENT;
        cr_expect_eq(m->relation, want, "%s is %s", key, rn_relation_name(m->relation));
    }
    for (int f = 0; f < g.nfps; f++) {
        const rn_ipg_fingerprint *F = &g.fps[f];
        cr_expect_eq(F->owner, owner);
        cr_expect_eq(F->positives, 2);  /* ft, cut of the owner */
        cr_expect_eq(F->negatives, 2);  /* other, cut of other */
        cr_expect_eq(F->fpr_target, 0.0);
        cr_expect_eq(F->calibration, 0);
        if (F->k == 1) {
            /* pirated 0.9 vs independent 0.1: separated; the paper's ARUC is the gap, the ROC AUC 1; the
             * threshold is the smallest observed rate without a false positive */
            cr_expect_float_eq(F->aruc, 0.8, 1e-12);
            cr_expect_eq(F->roc_auc, 1.0);
            cr_expect_eq(F->threshold, 0.9);
            cr_expect_eq(F->fpr, 0.0);
            cr_expect_eq(F->tpr, 1.0);
        } else {
            /* an independent model at 0.95 beats the pirated copies: no threshold with FPR 0 keeps them */
            cr_expect_eq(F->k, 5);
            cr_expect_eq(F->aruc, 0.0);
            cr_expect_eq(F->roc_auc, 0.0);
            cr_expect_eq(F->threshold, 1.0); /* the owner's own rate: the first above 0.95 */
            cr_expect_eq(F->fpr, 0.0);
            cr_expect_eq(F->tpr, 0.0);
        }
        for (int j = 0; j < g.nmatches; j++)
            if (g.matches[j].fingerprint == F->fingerprint)
                cr_expect_eq(g.matches[j].pirated, g.matches[j].rate >= F->threshold);
    }
    rn_ipguard_free(&g);

    /* the results writer turns it into /ipguard */
    char path[] = "/tmp/ipsweep_ipg_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(rn_results_write(path, &s, by, NULL, 0, &e), 0, "%s", e.msg);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t d = H5Dopen2(f, "/ipguard/curves/robustness", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2];
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    cr_expect(dims[0] == 2 && dims[1] == RN_IPG_THRESHOLDS);
    H5Sclose(sp), H5Dclose(d);
    double aruc[2];
    d = H5Dopen2(f, "/ipguard/summary/aruc", H5P_DEFAULT);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, aruc), 0);
    H5Dclose(d);
    cr_expect_float_eq(aruc[0], 0.8, 1e-12);
    cr_expect(H5Lexists(f, "/ipguard/summary/roc_auc", H5P_DEFAULT) > 0);
    cr_expect(H5Lexists(f, "/ipguard/summary/calibration", H5P_DEFAULT) > 0);
    cr_expect(H5Lexists(f, "/ipguard/suspects/relation", H5P_DEFAULT) > 0);
    cr_expect(H5Lexists(f, "/ipguard/suspects/verdict", H5P_DEFAULT) > 0);
    H5Fclose(f);
    /* nothing to summarise: no /ipguard */
    for (int i = 0; i < s.ntasks; i++)
        if (strcmp(s.tasks[i].kind, "match") == 0) by[i] = NULL;
    cr_assert_eq(rn_results_write(path, &s, by, NULL, 1, &e), 0, "%s", e.msg);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_expect(H5Lexists(f, "/ipguard", H5P_DEFAULT) == 0);
    H5Fclose(f);
    unlink(path);
    for (int i = 0; i < s.ntasks; i++) rn_record_free(&r[i]);
    free(r);
    free(by);
    rn_spec_free(&s);
}

/* Calibration suspects set the threshold only: the false-positive rate is
 * reported on the other independent models, and the calibration ones are
 * in neither ARUC nor ROC AUC. */
Test(ipguard_summary, calibration_suspects_set_the_threshold_only) {
    static const char *text = "data: {source: synthetic:64}\n"
                              "models:\n"
                              "  - {name: owner, seed: 1}\n"
                              "  - {name: other, seed: 2}\n"
                              "  - {name: third, seed: 3}\n"
                              "tasks:\n"
                              "  - {name: ft, kind: finetune, model: owner, mode: ftll}\n"
                              "  - {name: fp, kind: fingerprint, model: owner, fpr: 0.0}\n"
                              "  - {name: m, kind: match, fingerprint: fp, suspect: [ft, other]}\n"
                              "  - {name: c, kind: match, fingerprint: fp, suspect: third, calibration: true}\n";
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(rn_spec_load_text(&s, "cal.yaml", text, NULL, NULL, 0, &d), 0);
    rn_diags_free(&d);
    const rn_record **by = calloc((size_t)s.ntasks, sizeof *by);
    rn_record *r = calloc((size_t)s.ntasks, sizeof *r);
    ip_err e = {{0}};
    for (double third = 0.2; third < 0.6; third += 0.3) { /* calibrated on a model at 0.2, then at 0.5 */
        for (int i = 0; i < s.ntasks; i++) {
            rn_record_free(&r[i]);
            snprintf(r[i].key, sizeof r[i].key, "%s", s.tasks[i].key);
            r[i].status = RN_DONE;
            by[i] = &r[i];
            if (strcmp(s.tasks[i].kind, "match") != 0) continue;
            const char *sus = rn_task_get(&s.tasks[i], "suspect");
            double rate = strstr(sus, "finetune") ? 0.9 : strstr(sus, "other") ? 0.3 : third;
            cr_assert_eq(ip_metrics_set(&r[i].metrics, "match_rate", rate, &e), 0);
        }
        rn_ipguard g;
        cr_assert_eq(rn_ipguard_build(&s, by, &g, &e), 0, "%s", e.msg);
        cr_assert_eq(g.nfps, 1);
        const rn_ipg_fingerprint *F = &g.fps[0];
        cr_expect_eq(F->calibration, 1);
        cr_expect_eq(F->positives, 1);
        cr_expect_eq(F->negatives, 1);
        cr_expect_float_eq(F->aruc, 0.6, 1e-12); /* 0.3 .. 0.9, the calibration model left out */
        cr_expect_eq(F->roc_auc, 1.0);
        if (third < 0.25) {
            /* the smallest rate above the calibration model: 0.3, which the held-out model reaches */
            cr_expect_eq(F->threshold, 0.3);
            cr_expect_eq(F->fpr, 1.0);
        } else {
            cr_expect_eq(F->threshold, 0.9);
            cr_expect_eq(F->fpr, 0.0);
        }
        cr_expect_eq(F->tpr, 1.0);
        rn_ipguard_free(&g);
    }
    for (int i = 0; i < s.ntasks; i++) rn_record_free(&r[i]);
    free(r);
    free(by);
    rn_spec_free(&s);
}
