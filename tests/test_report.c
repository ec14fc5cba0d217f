/* `ipsweep report` (runner/report*.c) on fixture results files
 * (report_fixture.h): seed-free keys, mean ± std over seeds, the passport
 * table's layout, shard filtering, the in-progress marker, markdown / LaTeX /
 * CSV shapes, determinism, IPGuard tables and the plots' data files. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner/cli/commands.h"
#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "report")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(report, .init = make_dir, .fini = remove_dir);

/* A small study: two baselines and two v1 models (seeds 1, 2), pruning and
 * fine-tuning of the v1 models, one fake1 attack split into two shards plus
 * its merge, a flip. */
static fx_task study[] = {
    {"train:base[seed=1]", "train", "base", "done", "", "arch=small-p;norm=bn;scheme=baseline;epochs=2;seed=1",
     "test_acc=0.80", NULL},
    {"train:base[seed=2]", "train", "base", "done", "", "arch=small-p;norm=bn;scheme=baseline;epochs=2;seed=2",
     "test_acc=0.90", NULL},
    {"train:pv1[seed=1]", "train", "pv1", "done", "",
     "arch=small-p;norm=bn;scheme=v1;signature=ipsweep;epochs=2;seed=1", "test_acc=0.88;detect=1", NULL},
    {"train:pv1[seed=2]", "train", "pv1", "done", "",
     "arch=small-p;norm=bn;scheme=v1;signature=ipsweep;epochs=2;seed=2", "test_acc=0.86;detect=0.98", NULL},
    {"prune:pruned[rate=0.5]<train:pv1[seed=1]>", "prune", "pruned", "done", "2",
     "model=train:pv1[seed=1];model_path=a.h5;rate=0.5", "rate=0.5;test_acc=0.70;detect=1", NULL},
    {"prune:pruned[rate=0.5]<train:pv1[seed=2]>", "prune", "pruned", "done", "3",
     "model=train:pv1[seed=2];model_path=b.h5;rate=0.5", "rate=0.5;test_acc=0.60;detect=1", NULL},
    {"finetune:ft[mode=rtal]<train:pv1[seed=1]>", "finetune", "ft", "done", "2",
     "model=train:pv1[seed=1];mode=rtal;fraction=0.5", "test_acc=0.85;detect=1;owner_test_acc=0.88", NULL},
    {"finetune:ft[mode=rtal]<train:pv1[seed=2]>", "finetune", "ft", "done", "3",
     "model=train:pv1[seed=2];mode=rtal;fraction=0.5", "test_acc=0.83;detect=1;owner_test_acc=0.86", NULL},
    /* shard rows hold partial summaries that must not reach the tables */
    {"fake1:f1<train:pv1[seed=1]>#shard=0/2", "fake1", "f1", "done", "2",
     "model=train:pv1[seed=1];key_type=random;passports=4;shard=0;shards=2",
     "real_acc=0.88;fake_mean=0.5;fake_min=0.5;fake_max=0.5;passports=2;accepted=7", NULL},
    {"fake1:f1<train:pv1[seed=1]>#shard=1/2", "fake1", "f1", "done", "2",
     "model=train:pv1[seed=1];key_type=random;passports=4;shard=1;shards=2",
     "real_acc=0.88;fake_mean=0.5;fake_min=0.5;fake_max=0.5;passports=2;accepted=7", NULL},
    {"fake1:f1<train:pv1[seed=1]>", "fake1", "f1", "done", "8,9",
     "model=train:pv1[seed=1];key_type=random;passports=4;shard=all;shards=2",
     "real_acc=0.88;fake_mean=0.1;fake_min=0.05;fake_max=0.2;passports=4;accepted=0",
     "fake_acc=0.05,0.1,0.05,0.2"},
    {"flip:fl[fraction=0.5]<train:pv1[seed=1]>", "flip", "fl", "done", "2",
     "model=train:pv1[seed=1];fraction=0.5", "test_acc=0.3;detect=0.5;flipped=32;channels=64", NULL},
};
#define NSTUDY ((int)(sizeof study / sizeof *study))

/* Renders the header and every table with rows (or only `only`) of a file. */
static char *render(const char *path, rp_format fmt, const char *only) {
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, path, &e), 0, "%s", e.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cr_assert_not_null(m);
    if (!only) rp_write_header(m, &f, fmt);
    for (int i = 0; i < rp_ntable_names; i++) {
        if (only && strcmp(only, rp_table_names[i])) continue;
        rp_table t;
        cr_assert_eq(rp_build_table(&f, rp_table_names[i], &t, &e), 0, "%s: %s", rp_table_names[i], e.msg);
        if (t.nrows || t.waiting || only) rp_write_table(m, &t, fmt, only != NULL);
        rp_table_free(&t);
    }
    fclose(m);
    rp_close(&f);
    return buf;
}

static const char *write_study(const char *name, int in_progress) {
    const char *p = tu_path(tdir, name);
    cr_assert_eq(fx_write(p, study, NSTUDY, in_progress, NULL), 0);
    return p;
}

/* The line of `text` that contains `needle` (static buffer), or "". */
static const char *line_with(const char *text, const char *needle) {
    static char line[1024];
    const char *p = strstr(text, needle);
    line[0] = 0;
    if (!p) return line;
    while (p > text && p[-1] != '\n') p--;
    size_t l = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int)(l < sizeof line ? l : sizeof line - 1), p);
    return line;
}

Test(report, strip_key_removes_seeds_and_shards) {
    const char *in[] = {"train:base[seed=2]", "prune:pruned[rate=0.3]<train:base[seed=2]>",
                        "train:p[scheme=v1,seed=3,norm=gn]", "fake1:f[key_type=image,shard=3]<train:a[seed=1]><train:b>",
                        "eval:acc"};
    const char *out[] = {"train:base", "prune:pruned[rate=0.3]<train:base>", "train:p[scheme=v1,norm=gn]",
                         "fake1:f[key_type=image]<train:a><train:b>", "eval:acc"};
    for (int i = 0; i < 5; i++) {
        char *s = rp_strip_key(in[i]);
        cr_assert_str_eq(s, out[i]);
        free(s);
    }
}

Test(report, mean_and_sample_std_over_seeds) {
    double v[] = {0.8, 0.9, NAN};
    rp_stat s = rp_stat_of(v, 3);
    cr_assert_eq(s.n, 2);
    cr_assert_float_eq(s.mean, 0.85, 1e-12);
    cr_assert_float_eq(s.std, sqrt(0.005), 1e-12); /* sample std: sum of squares / (n - 1) */
    char *md = render(write_study("s.h5", 0), RP_MD, "models");
    cr_assert_str_eq(line_with(md, "| base"), "| base | baseline | small-p | bn |  | 2 | 85.0 ± 7.1 | - |", "%s", md);
    cr_assert_str_eq(line_with(md, "| pv1"), "| pv1 | v1 | small-p | bn | ipsweep | 2 | 87.0 ± 1.4 | 99.0 ± 1.4 |", "%s", md);
    free(md);
}

Test(report, passport_table_detection_accuracy_layout) {
    char *md = render(write_study("s.h5", 0), RP_MD, "passport");
    cr_assert(strstr(md, "| arch | norm | models | stage | baseline | v1 |\n"), "%s", md);
    cr_assert_str_eq(line_with(md, "| trained"), "| small-p | bn | base, pv1 | trained | 85.0 ± 7.1 | 99.0 ± 1.4 (87.0 ± 1.4) |",
                     "%s", md);
    /* fine-tuned rows: the deployed network's accuracy, the owner's signature still detected */
    cr_assert_str_eq(line_with(md, "rtal"), "| small-p | bn | pv1 | ft[mode=rtal] | - | 100.0 ± 0.0 (84.0 ± 1.4) |",
                     "%s", md);
    free(md);
}

Test(report, fake1_uses_only_merged_shards) {
    char *md = render(write_study("s.h5", 0), RP_MD, "fake1");
    cr_assert_str_eq(line_with(md, "| pv1"), "| pv1 | random | 1 | 88.0 | 10.0 | 5.0 | 20.0 | 4 | 0 |", "%s", md);
    cr_assert_null(strstr(md, "50.0"), "a shard row leaked: %s", md);
    free(md);
}

Test(report, in_progress_rows_are_marked) {
    fx_task t[NSTUDY];
    memcpy(t, study, sizeof t);
    t[1].status = "pending"; /* base seed 2 */
    t[11].status = "running";
    const char *p = tu_path(tdir, "partial.h5");
    cr_assert_eq(fx_write(p, t, NSTUDY, 1, NULL), 0);
    char *md = render(p, RP_MD, NULL);
    cr_assert(strstr(md, "**In progress**"), "%s", md);
    cr_assert(strstr(md, "10 done, 1 running, 1 pending"), "%s", md);
    cr_assert_str_eq(line_with(md, "| base | baseline"), "| base | baseline | small-p | bn |  | 1/2* | 80.0 | - |", "%s", md);
    cr_assert(strstr(md, "* not every task of this row is done"), "%s", md);
    /* the flip row has no finished task yet: counted, not shown */
    cr_assert(strstr(md, "1 more row without a finished task yet."), "%s", md);
    free(md);
    char *csv = render(p, RP_CSV, "models");
    cr_assert(strstr(csv, "base,baseline,small-p,bn,,1,2,0.8,,,,1\n"), "%s", csv);
    free(csv);
}

Test(report, formats_have_their_shapes) {
    const char *p = write_study("s.h5", 0);
    char *tex = render(p, RP_LATEX, "prune");
    cr_assert(strstr(tex, "\\begin{tabular}{llrrr}\n\\toprule\nmodel & rate & n & accuracy & detection \\\\\n\\midrule\n"),
              "%s", tex);
    cr_assert(strstr(tex, "pv1 & 0.5 & 2 & 65.0 $\\pm$ 7.1 & 100.0 $\\pm$ 0.0 \\\\\n\\bottomrule\n"), "%s", tex);
    cr_assert(strstr(tex, "\\label{tab:prune}"), "%s", tex);
    free(tex);
    char *csv = render(p, RP_CSV, "prune");
    cr_assert_str_eq(csv, "model,rate,n,n_planned,test_acc,test_acc_std,detect,detect_std,partial\n"
                          "pv1,0.5,2,2,0.65,0.07071067812,1,0,0\n");
    free(csv);
    char *md = render(p, RP_MD, "flip");
    cr_assert(strstr(md, "| model | fraction | n | accuracy | detection |\n|---|---|---:|---:|---:|\n"
                         "| pv1 | 0.5 | 1 | 30.0 | 50.0 |\n"),
              "%s", md);
    free(md);
}

Test(report, same_file_same_bytes) {
    const char *a = write_study("a.h5", 0), *b = write_study("b.h5", 0);
    rp_format fmts[] = {RP_MD, RP_LATEX, RP_CSV};
    for (int i = 0; i < 3; i++) {
        char *x = render(a, fmts[i], NULL), *y = render(a, fmts[i], NULL), *z = render(b, fmts[i], NULL);
        cr_assert_str_eq(x, y);
        cr_assert_str_eq(x, z); /* nothing from the file's name or time */
        free(x), free(y), free(z);
    }
}

static const fx_suspect suspects[] = {
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 10, "train:base[seed=1]", "train", "self", 1.0, "pirated"},
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 11, "finetune:ft[mode=rtal]<train:base[seed=1]>", "finetune",
     "pirated", 0.9, "pirated"},
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 12, "train:other[seed=1]", "train", "independent", 0.2,
     "clean"},
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 13, "train:other[seed=2]", "train", "independent", 0.4,
     "clean"},
    {1, "fingerprint:fp[k=10,seed=1]<train:base[seed=1]>", 14, "finetune:ft[mode=rtal]<train:base[seed=1]>",
     "finetune", "pirated", 0.5, "clean"},
};
static const fx_summary summary[] = {
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 1, 1, 2, 0.9, 0.5, 0.05, 0.0},
    {1, "fingerprint:fp[k=10,seed=1]<train:base[seed=1]>", 10, 1, 2, 0.75, 0.45, 0.05, 0.5},
};

static const char *write_ipguard(const char *name) {
    const char *p = tu_path(tdir, name);
    fx_ipguard ig = {suspects, 5, summary, 2};
    cr_assert_eq(fx_write(p, study, 4, 0, &ig), 0);
    return p;
}

Test(report, ipguard_tables_from_fixture) {
    const char *p = write_ipguard("ig.h5");
    char *md = render(p, RP_MD, "ipguard");
    /* a file written before roc_auc and calibration existed: those columns are left out */
    cr_assert(strstr(md, "| fingerprint | k | n | positives | negatives | ARUC (paper) | threshold | fpr target | fpr |\n"),
              "%s", md);
    cr_assert_str_eq(line_with(md, "k=1]"), "| fp[k=1]<base> | 1 | 1 | 1 | 2 | 0.900 | 0.500 | 0.050 | 0.000 |",
                     "%s", md);
    free(md);
    md = render(p, RP_MD, "ipguard-suspects");
    /* two independent models (seeds of "other") form one row: mean ± std */
    cr_assert_str_eq(line_with(md, "independent"),
                     "| fp[k=1]<base> | 1 | other | train | independent | 2 | 30.0 ± 14.1 | 0 |", "%s", md);
    cr_assert_str_eq(line_with(md, "k=10]"),
                     "| fp[k=10]<base> | 10 | ft[mode=rtal] | finetune | pirated | 1 | 50.0 | 0 |", "%s", md);
    cr_assert(strstr(md, "| self | 1 | 100.0 | 1 |"), "%s", md);
    free(md);
    /* per attack: the fine-tuned copy at 0.9 against independent models at 0.2 and 0.4: the paper's ARUC
     * (0.2..0.4) 1/2 + (0.4..0.9) 1 = 0.6, ROC AUC 1; the k=10 fingerprint has no independent match */
    md = render(p, RP_MD, "ipguard-attacks");
    cr_assert(strstr(md, "| fingerprint | k | attack | n | copies | independent | ARUC (paper) | ROC AUC |\n"), "%s", md);
    cr_assert(strstr(md, "| fp[k=1]<base> | 1 | finetune | 1 | 1 | 2 | 0.600 | 1.000 |\n"), "%s", md);
    cr_assert(strstr(md, "| fp[k=1]<base> | 1 | all | 1 | 1 | 2 | 0.600 | 1.000 |\n"), "%s", md);
    cr_assert(strstr(md, "| fp[k=10]<base> | 10 | finetune | 1 | 1 | 0 | - | - |\n"), "%s", md);
    free(md);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *b = calloc(1, 1 << 16);
    size_t n = fread(b, 1, (1 << 16) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

Test(report, plots_write_data_and_scripts_without_gnuplot) {
    setenv("PATH", "/nonexistent", 1); /* no gnuplot: .dat and .gp only */
    const char *p = write_ipguard("ig.h5");
    char dir[120];
    snprintf(dir, sizeof dir, "%s/plots", tdir);
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, p, &e), 0, "%s", e.msg);
    char *log = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&log, &len);
    int have = 1;
    cr_assert_eq(rp_plots(&f, dir, m, &have, &e), 0, "%s", e.msg);
    fclose(m);
    rp_close(&f);
    cr_assert_eq(have, 0);
    cr_assert(strstr(log, "gnuplot is not installed"), "%s", log);
    char *ru = slurp(tu_path(dir, "ipguard-ru.dat"));
    /* one block per fingerprint: thresholds 0..1, robustness 1 - t^2, uniqueness t^(1+row) */
    cr_assert(strstr(ru, "# fp[k=1]<base>\n0 1 0\n0.01 0.9999 0.01\n"), "%s", ru);
    cr_assert(strstr(ru, "\n\n\n# fp[k=10]<base>\n0 1 0\n0.01 0.9999 0.0001\n"), "%s", ru);
    char *gp = slurp(tu_path(dir, "ipguard-ru.gp"));
    cr_assert(strstr(gp, "set output 'ipguard-ru.png'"), "%s", gp);
    /* one panel per fingerprint, titled by it */
    cr_assert(strstr(gp, "set title \"fp[k=10]<base>\""), "%s", gp);
    free(ru), free(gp), free(log);
    cr_assert_eq(access(tu_path(dir, "ipguard-ru.png"), F_OK), -1);
}

Test(report, fake1_histogram_and_prune_data) {
    setenv("PATH", "/nonexistent", 1);
    const char *p = write_study("s.h5", 0);
    char dir[120];
    snprintf(dir, sizeof dir, "%s/plots", tdir);
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, p, &e), 0, "%s", e.msg);
    int have;
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_eq(rp_plots(&f, dir, devnull, &have, &e), 0, "%s", e.msg);
    fclose(devnull);
    rp_close(&f);
    char *h = slurp(tu_path(dir, "fake1-pv1.dat"));
    /* 4 fakes: 0.05 twice, 0.1, 0.2 -> bins 5, 10, 20 hold 50%, 25%, 25% */
    cr_assert(strstr(h, "\n5.5 50\n"), "%s", h);
    cr_assert(strstr(h, "\n10.5 25\n"), "%s", h);
    cr_assert(strstr(h, "\n20.5 25\n"), "%s", h);
    char *gp = slurp(tu_path(dir, "fake1-pv1.gp"));
    cr_assert(strstr(gp, "real passport 88.0%"), "%s", gp);
    char *pr = slurp(tu_path(dir, "prune.dat"));
    cr_assert(strstr(pr, "# model pv1\n50 65 7.07107 100 0\n"), "%s", pr);
    free(h), free(gp), free(pr);
}

Test(report, usage_errors_exit_2) {
    char a0[] = "--format", a1[] = "html", a2[] = "x.h5";
    char *bad_format[] = {a0, a1, a2};
    cr_assert_eq(cmd_report(3, bad_format), 2);
    char b0[] = "--table", b1[] = "nope", b2[] = "x.h5";
    char *bad_table[] = {b0, b1, b2};
    cr_assert_eq(cmd_report(3, bad_table), 2);
    cr_assert_eq(cmd_report(0, NULL), 2);
    char c0[] = "/nonexistent/x.h5";
    char *missing[] = {c0};
    /* a results file that cannot be read is bad input, like a bad option: exit 2 */
    cr_assert_eq(cmd_report(1, missing), 2);
}

/* Two entries of one kind on the same model (a pruning sweep and pruned
 * suspects): rows say which entry they come from. */
Test(report, rows_name_their_entry_when_entries_share_a_model) {
    fx_task t[] = {
        study[2],
        {"prune:sweep[rate=0.5]<train:pv1[seed=1]>", "prune", "sweep", "done", "0",
         "model=train:pv1[seed=1];rate=0.5", "rate=0.5;test_acc=0.70;detect=1", NULL},
        {"prune:stolen[rate=0.5]<train:pv1[seed=1]>", "prune", "stolen", "done", "0",
         "model=train:pv1[seed=1];rate=0.5", "rate=0.5;test_acc=0.70;detect=1", NULL},
    };
    const char *p = tu_path(tdir, "two.h5");
    cr_assert_eq(fx_write(p, t, 3, 0, NULL), 0);
    char *md = render(p, RP_MD, "prune");
    cr_assert(strstr(md, "| model | task | rate |"), "%s", md);
    cr_assert(strstr(md, "| pv1 | sweep | 0.5 |") && strstr(md, "| pv1 | stolen | 0.5 |"), "%s", md);
    free(md);
    /* one entry: no task column */
    md = render(write_study("s.h5", 0), RP_MD, "prune");
    cr_assert_null(strstr(md, "| task |"), "%s", md);
    free(md);
}
