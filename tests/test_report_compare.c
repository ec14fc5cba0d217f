/* `ipsweep report A.h5 B.h5` (runner/report/report_compare.c, docs/report.md
 * "Comparing runs"): two fixture files of one study with different metric
 * values; rows matched by their text columns whatever their task ids, a
 * column group per run, rows of one run only empty in the other, labels,
 * CSV names, the command's argument checks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "../runner/cli/commands.h"
#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "compare")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(report_compare, .init = make_dir, .fini = remove_dir);

/* run A: pruning at 0.3 and 0.5 */
static const fx_task run_a[] = {
    {"train:pv1[seed=1]", "train", "pv1", "done", "", "arch=small-p;norm=bn;scheme=v1;seed=1", "test_acc=0.88;detect=1",
     NULL},
    {"train:pv1[seed=2]", "train", "pv1", "done", "", "arch=small-p;norm=bn;scheme=v1;seed=2", "test_acc=0.86;detect=1",
     NULL},
    {"prune:p[rate=0.3]<train:pv1[seed=1]>", "prune", "p", "done", "0", "model=train:pv1[seed=1];rate=0.3",
     "test_acc=0.80;detect=1", NULL},
    {"prune:p[rate=0.5]<train:pv1[seed=1]>", "prune", "p", "done", "0", "model=train:pv1[seed=1];rate=0.5",
     "test_acc=0.70;detect=0.9", NULL},
};
/* run B: the same study after a change, tasks in another order, rate 0.9 instead of 0.3, one seed only */
static const fx_task run_b[] = {
    {"train:pv1[seed=1]", "train", "pv1", "done", "", "arch=small-p;norm=bn;scheme=v1;seed=1", "test_acc=0.90;detect=1",
     NULL},
    {"prune:p[rate=0.9]<train:pv1[seed=1]>", "prune", "p", "done", "0", "model=train:pv1[seed=1];rate=0.9",
     "test_acc=0.20;detect=0.5", NULL},
    {"prune:p[rate=0.5]<train:pv1[seed=1]>", "prune", "p", "done", "0", "model=train:pv1[seed=1];rate=0.5",
     "test_acc=0.75;detect=0.95", NULL},
};

static const char *write_run(const char *name, const fx_task *t, int n) {
    const char *p = tu_path(tdir, name);
    cr_assert_eq(fx_write(p, t, n, 0, NULL), 0);
    return p;
}

/* Table `name` of the runs compared, rendered in fmt. */
static char *compare(const char *a, const char *b, const char *name, rp_format fmt) {
    rp_file f[2];
    rp_table t[2], both;
    const char *labels[2] = {"A", "B"}, *paths[2] = {a, b};
    ip_err e = {{0}};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(rp_open(&f[i], paths[i], &e), 0, "%s", e.msg);
        cr_assert_eq(rp_build_table(&f[i], name, &t[i], &e), 0, "%s", e.msg);
    }
    cr_assert_eq(rp_compare(t, 2, labels, &both, &e), 0, "%s", e.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    rp_write_table(m, &both, fmt, 1);
    fclose(m);
    rp_table_free(&both);
    for (int i = 0; i < 2; i++) rp_table_free(&t[i]), rp_close(&f[i]);
    return buf;
}

Test(report_compare, rows_matched_by_setting_one_column_group_per_run) {
    const char *a = write_run("a.h5", run_a, 4), *b = write_run("b.h5", run_b, 3);
    char *md = compare(a, b, "prune", RP_MD);
    cr_assert(strstr(md, "| model | rate | n (A) | accuracy (A) | detection (A) | n (B) | accuracy (B) | detection (B) |\n"
                         "|---|---|---:|---:|---:|---:|---:|---:|\n"),
              "%s", md);
    /* rows in A's order, then B's new ones; a row one run lacks is empty there */
    cr_assert(strstr(md, "| pv1 | 0.3 | 1 | 80.0 | 100.0 | - | - | - |\n"
                         "| pv1 | 0.5 | 1 | 70.0 | 90.0 | 1 | 75.0 | 95.0 |\n"
                         "| pv1 | 0.9 | - | - | - | 1 | 20.0 | 50.0 |\n"),
              "%s", md);
    free(md);
    md = compare(a, b, "models", RP_MD);
    /* mean ± std over A's two seeds against B's one */
    cr_assert(strstr(md, "| pv1 | v1 | small-p | bn | 2 | 87.0 ± 1.4 | 100.0 ± 0.0 | 1 | 90.0 | 100.0 |\n"), "%s", md);
    free(md);
}

Test(report_compare, csv_names_carry_the_run) {
    const char *a = write_run("a.h5", run_a, 4), *b = write_run("b.h5", run_b, 3);
    char *csv = compare(a, b, "prune", RP_CSV);
    cr_assert(!strncmp(csv,
                       "model,rate,A.n,A.n_planned,A.test_acc,A.test_acc_std,A.detect,A.detect_std,"
                       "B.n,B.n_planned,B.test_acc,B.test_acc_std,B.detect,B.detect_std,partial\n"
                       "pv1,0.3,1,1,0.8,,1,,0,0,,,,,0\n",
                       strlen("model,rate,A.n,A.n_planned,A.test_acc,A.test_acc_std,A.detect,A.detect_std,"
                              "B.n,B.n_planned,B.test_acc,B.test_acc_std,B.detect,B.detect_std,partial\n"
                              "pv1,0.3,1,1,0.8,,1,,0,0,,,,,0\n")),
              "%s", csv);
    free(csv);
}

Test(report_compare, latex_heads_each_group_with_its_run) {
    const char *a = write_run("a.h5", run_a, 4), *b = write_run("b.h5", run_b, 3);
    char *tex = compare(a, b, "prune", RP_LATEX);
    cr_assert(strstr(tex, "\\toprule\n &  & \\multicolumn{3}{c}{A} & \\multicolumn{3}{c}{B} \\\\\n"
                          "\\cmidrule(lr){3-5}\\cmidrule(lr){6-8}\nmodel & rate & n & accuracy & detection & n & "
                          "accuracy & detection \\\\\n"),
              "%s", tex);
    cr_assert(strstr(tex, "pv1 & 0.9 & -- & -- & -- & 1 & 20.0 & 50.0 \\\\\n"), "%s", tex);
    free(tex);
}

/* The k-th row of an identity in one run meets the k-th of the other. */
Test(report_compare, a_table_against_itself_is_every_row_twice) {
    const char *a = write_run("a.h5", run_a, 4);
    char *md = compare(a, a, "prune", RP_MD);
    cr_assert(strstr(md, "| pv1 | 0.3 | 1 | 80.0 | 100.0 | 1 | 80.0 | 100.0 |\n"
                         "| pv1 | 0.5 | 1 | 70.0 | 90.0 | 1 | 70.0 | 90.0 |\n\n"),
              "%s", md);
    free(md);
}

/* cmd_report with its stdout in file `out`. */
static int run_cmd(char **argv, int argc, const char *out) {
    fflush(stdout);
    int saved = dup(1), fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = cmd_report(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

Test(report_compare, command_labels_and_argument_checks) {
    char a[128], b[128], out[128];
    snprintf(a, sizeof a, "%s", write_run("before.h5", run_a, 4));
    snprintf(b, sizeof b, "%s", write_run("after.h5", run_b, 3));
    snprintf(out, sizeof out, "%s", tu_path(tdir, "out.md"));
    char t0[] = "--table", t1[] = "prune", l0[] = "--label", l1[] = "old,new", l2[] = "one", pl[] = "--plots", d[] = "x";
    /* equal spec names: the file names label the runs */
    char *args[] = {a, b, t0, t1};
    cr_assert_eq(run_cmd(args, 4, out), 0);
    FILE *f = fopen(out, "r");
    char text[8192] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert(strstr(text, "| n (before) | accuracy (before) |") && strstr(text, "| n (after) |"), "%s", text);
    cr_assert(strstr(text, "Provenance") == NULL || strstr(text, "the same as before"), "%s", text);
    char *labelled[] = {a, b, t0, t1, l0, l1};
    cr_assert_eq(run_cmd(labelled, 6, out), 0);
    f = fopen(out, "r");
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    cr_assert(strstr(text, "| n (old) |") && strstr(text, "| n (new) |"), "%s", text);
    char *wrong_count[] = {a, b, l0, l2};
    cr_assert_eq(cmd_report(4, wrong_count), 2);
    char *plots[] = {a, b, pl, d};
    cr_assert_eq(cmd_report(4, plots), 2);
    char *label_alone[] = {a, l0, l2};
    cr_assert_eq(cmd_report(3, label_alone), 2);
    char missing[] = "/nonexistent/x.h5";
    char *bad[] = {a, missing};
    cr_assert_eq(cmd_report(2, bad), 2);
}

/* fake1's 11 number columns and 6 identity columns: 3 runs fit in RP_MAX_COLUMNS, 4 do not (one clear
 * error, nothing built) */
Test(report_compare, too_many_columns_is_an_error) {
    const fx_task t[] = {
        run_a[0],
        {"fake1:f<train:pv1[seed=1]>", "fake1", "f", "done", "0",
         "model=train:pv1[seed=1];key_type=random;mode=full;reference=;eval_images=32",
         "real_acc=0.88;fake_mean=0.1;fake_min=0;fake_max=0.5;passports=100;accepted=1;accept_acc_frac=0.01;"
         "accept_detect_frac=0.02;accept_joint_frac=0.01;p_accept_upper95=0.03",
         NULL},
        /* a second entry with a reference and other eval_images: 6 identity columns, as in the quick study */
        {"fake1:g<train:pv1[seed=1]><train:pv1[seed=2]>", "fake1", "g", "done", "0",
         "model=train:pv1[seed=1];key_type=image;mode=screen;reference=train:pv1[seed=2];eval_images=64",
         "real_acc=0.88;fake_mean=0.1;fake_min=0;fake_max=0.5;passports=100;accepted=1;accept_acc_frac=0.01;"
         "accept_detect_frac=0.02;accept_joint_frac=0.01;p_accept_upper95=0.03",
         NULL},
    };
    const char *p = write_run("f.h5", t, 3);
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, p, &e), 0, "%s", e.msg);
    rp_table one, runs[4], both;
    cr_assert_eq(rp_build_table(&f, "fake1", &one, &e), 0, "%s", e.msg);
    for (int i = 0; i < 4; i++) runs[i] = one;
    const char *labels[4] = {"A", "B", "C", "D"};
    cr_assert_eq(rp_compare(runs, 3, labels, &both, &e), 0, "%s", e.msg);
    cr_assert_eq(both.ncols, 6 + 11 * 3, "%d", both.ncols); /* model, task, key type, reference, mode, eval images */
    rp_table_free(&both);
    cr_assert_eq(rp_compare(runs, 4, labels, &both, &e), -1);
    cr_assert_str_eq(e.msg, "comparing 4 runs needs 50 columns, more than 48: compare fewer runs");
    rp_table_free(&one);
    rp_close(&f);
}
