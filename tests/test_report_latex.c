/* `ipsweep report --format latex` fits a two-column paper (report_format.c,
 * docs/report.md "LaTeX"): every table of a quick-study-like fixture (every
 * fake1 column, long labels, an ipguard-suspects table of 120 rows) and of a
 * comparison of two runs compiles in \documentclass[twocolumn]{article}
 * without "Overfull \hbox" or "Float too large" in the log. Skipped with a
 * SKIP line when pdflatex is absent, unless IPSWEEP_REQUIRE_PDFLATEX=1.
 * Also: headers in words, integers as integers, long tables split. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "latex")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(report_latex, .init = make_dir, .fini = remove_dir);

/* The quick study's shapes: owners of every scheme, a fine-tuning and a
 * pruning sweep, fake1 with every column and two entries, fake2/fake3, long
 * suspect labels. */
static const fx_task study[] = {
    {"train:base[seed=1]", "train", "base", "done", "", "arch=small-p;norm=bn;scheme=baseline;epochs=2;seed=1",
     "test_acc=0.872", NULL},
    {"train:base[seed=2]", "train", "base", "done", "", "arch=small-p;norm=bn;scheme=baseline;epochs=2;seed=2",
     "test_acc=0.881", NULL},
    {"train:pv1", "train", "pv1", "done", "", "arch=small-p;norm=bn;scheme=v1;signature=ipsweep;epochs=2",
     "test_acc=0.881;detect=1", NULL},
    {"train:pv2", "train", "pv2", "done", "", "arch=small-p;norm=bn;scheme=v2;signature=ipsweep;epochs=2",
     "test_acc=0.858;public_test_acc=0.858;detect=1", NULL},
    {"train:pv3", "train", "pv3", "done", "", "arch=small-p;norm=bn;scheme=v3;signature=ipsweep;epochs=2",
     "test_acc=0.860;public_test_acc=0.871;trigger_acc=0.74;detect=1", NULL},
    {"train:narrow", "train", "narrow", "done", "", "arch=small-p-narrow;norm=bn;scheme=baseline;epochs=2",
     "test_acc=0.865", NULL},
    {"finetune:ft[mode=rtal]<train:pv1>", "finetune", "ft", "done", "2",
     "model=train:pv1;mode=rtal;fraction=0.5;disjoint=true;epochs=1",
     "test_acc=0.86;detect=1;owner_test_acc=0.881;private_acc=0.862", NULL},
    {"finetune:stolen-ft[mode=ftll]<train:base[seed=1]>", "finetune", "stolen-ft", "done", "0",
     "model=train:base[seed=1];mode=ftll;fraction=0.5;disjoint=true;epochs=1", "test_acc=0.892;owner_test_acc=0.872",
     NULL},
    {"prune:pv-pruned[rate=0.3]<train:pv1>", "prune", "pv-pruned", "done", "2", "model=train:pv1;rate=0.3",
     "test_acc=0.877;detect=1", NULL},
    {"fake1:fake1<train:pv1>", "fake1", "fake1", "done", "2",
     "model=train:pv1;key_type=random;mode=full;eval_images=200;passports=10000",
     "real_acc=0.88;fake_mean=0.119;fake_min=0;fake_max=0.865;passports=10000;accepted=3;accept_acc_frac=0.0003;"
     "accept_detect_frac=0.0209;accept_joint_frac=0.0003;p_accept_upper95=0.0003503",
     NULL},
    {"fake1:fake1-ref[key_type=image]<train:pv1><train:base[seed=1]>", "fake1", "fake1-ref", "done", "2,0",
     "model=train:pv1;reference=train:base[seed=1];key_type=image;mode=screen;eval_images=1000;passports=10000",
     "real_acc=0.878;fake_mean=0.26;fake_min=0;fake_max=0.438;passports=20000;accepted=0;accept_acc_frac=0;"
     "accept_detect_frac=0;accept_joint_frac=0;p_accept_upper95=0.0002995",
     NULL},
    {"fake2:f2[target=gamma-beta,fraction=0.1]<train:pv1>", "fake2", "f2", "done", "2",
     "model=train:pv1;target=gamma-beta;fraction=0.1", "train_samples=1200;test_acc=0.85;detect=0.52;owner_test_acc=0.88",
     NULL},
    {"fake3:f3[flip_fraction=0.25]<train:pv1>", "fake3", "f3", "done", "2", "model=train:pv1;flip_fraction=0.25;fraction=0.1",
     "test_acc=0.84;detect=0.75;detect_target=1;cosine=0.93;owner_test_acc=0.88", NULL},
    {"flip:fl[fraction=0.5]<train:pv1>", "flip", "fl", "done", "2", "model=train:pv1;fraction=0.5",
     "test_acc=0.3;detect=0.5", NULL},
};
#define NSTUDY ((int)(sizeof study / sizeof *study))

/* 3 fingerprints (k = 1, 5, 20) x 40 suspects with long labels: 120 rows of ipguard-suspects */
#define NFP 3
#define NSUS 40
static char fpkeys[NFP][96], suskeys[NSUS][160];
static fx_suspect sus[NFP * NSUS];
static fx_summary sum[NFP];

static const char *write_fixture_p(const char *name, const fx_task *t, int n, double shift, int in_progress) {
    const int ks[NFP] = {1, 5, 20};
    const char *kinds[] = {"finetune", "prune", "distill", "extract", "advtrain", "train"};
    for (int i = 0; i < NSUS; i++)
        snprintf(suskeys[i], sizeof suskeys[i], "%s:stolen-%s-copy[temperature=4,epochs=%d]<train:base[seed=1]>",
                 kinds[i % 6], kinds[i % 6], i);
    for (int f = 0; f < NFP; f++) {
        snprintf(fpkeys[f], sizeof fpkeys[f], "fingerprint:fp[k=%d,seed=1]<train:base[seed=1]>", ks[f]);
        sum[f] = (fx_summary){f, fpkeys[f], ks[f], 30, 10, 0.5 + shift, 0.4, 0.05, 0};
        for (int i = 0; i < NSUS; i++)
            sus[f * NSUS + i] = (fx_suspect){f,           fpkeys[f],          100 + f * NSUS + i, suskeys[i],
                                             kinds[i % 6], i % 6 == 5 ? "independent" : "pirated",
                                             0.01 * i + shift, i % 6 == 5 ? "clean" : "pirated"};
    }
    fx_ipguard ig = {sus, NFP * NSUS, sum, NFP};
    const char *p = tu_path(tdir, name);
    cr_assert_eq(fx_write(p, t, n, in_progress, &ig), 0);
    return p;
}

static const char *write_fixture(const char *name, const fx_task *t, int n, double shift) {
    return write_fixture_p(name, t, n, shift, 0);
}

/* Every table of the file(s), as `ipsweep report` prints them (one file: the
 * tables; two: their comparison). */
static char *render(const char *const *paths, int nruns, rp_format fmt) {
    rp_file f[2];
    const rp_file *fp[2];
    const char *labels[2] = {"before", "after"};
    ip_err e = {{0}};
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    for (int i = 0; i < nruns; i++) {
        cr_assert_eq(rp_open(&f[i], paths[i], &e), 0, "%s", e.msg);
        fp[i] = &f[i];
    }
    if (nruns == 1) rp_write_header(m, &f[0], fmt);
    else rp_write_compare_header(m, fp, labels, nruns, fmt);
    for (int i = 0; i < rp_ntable_names; i++) {
        rp_table t[2], both;
        int any = 0;
        for (int r = 0; r < nruns; r++) {
            cr_assert_eq(rp_build_table(&f[r], rp_table_names[i], &t[r], &e), 0, "%s", e.msg);
            any |= t[r].nrows > 0;
        }
        if (any && nruns == 1) rp_write_table(m, &t[0], fmt, 0);
        if (any && nruns > 1) {
            cr_assert_eq(rp_compare(t, nruns, labels, &both, &e), 0, "%s", e.msg);
            rp_write_table(m, &both, fmt, 0);
            rp_table_free(&both);
        }
        for (int r = 0; r < nruns; r++) rp_table_free(&t[r]);
    }
    fclose(m);
    for (int i = 0; i < nruns; i++) rp_close(&f[i]);
    return buf;
}

/* Compiles body in a two-column article; returns the log (malloc'ed), or
 * NULL when pdflatex is not installed (the test is then skipped). */
static char *compile(const char *body) {
    if (system("command -v pdflatex >/dev/null 2>&1") != 0) {
        const char *req = getenv("IPSWEEP_REQUIRE_PDFLATEX");
        cr_assert(!(req && !strcmp(req, "1")), "IPSWEEP_REQUIRE_PDFLATEX=1 but pdflatex is not installed");
        fprintf(stderr, "SKIP: report_latex: pdflatex is not installed (texlive-latex-base)\n");
        return NULL;
    }
    FILE *f = fopen(tu_path(tdir, "tables.tex"), "w");
    cr_assert_not_null(f);
    fputs(body, f);
    fclose(f);
    f = fopen(tu_path(tdir, "paper.tex"), "w");
    cr_assert_not_null(f);
    /* booktabs when installed (texlive-latex-recommended); else the same rules from plain \hline, same widths */
    fputs("\\documentclass[twocolumn]{article}\n\\usepackage{graphicx}\n"
          "\\IfFileExists{booktabs.sty}{\\usepackage{booktabs}}{\\newcommand{\\toprule}{\\hline}"
          "\\newcommand{\\midrule}{\\hline}\\newcommand{\\bottomrule}{\\hline}\\def\\cmidrule(##1)##2{\\cline{##2}}}\n"
          "\\begin{document}\nSome text of the paper.\n\\input{tables}\n\\end{document}\n",
          f);
    fclose(f);
    char cmd[400];
    snprintf(cmd, sizeof cmd,
             "cd %s && openout_any=p pdflatex -no-shell-escape -interaction=nonstopmode -halt-on-error paper.tex "
             ">/dev/null 2>&1",
             tdir);
    int rc = system(cmd);
    FILE *l = fopen(tu_path(tdir, "paper.log"), "r");
    cr_assert_not_null(l, "pdflatex wrote no log");
    char *log = calloc(1, 1 << 20);
    size_t n = fread(log, 1, (1 << 20) - 1, l);
    log[n] = 0;
    fclose(l);
    cr_assert_eq(rc, 0, "pdflatex failed:\n%s", strstr(log, "\n!") ? strstr(log, "\n!") : log);
    return log;
}

static void assert_fits(const char *log) {
    const char *o = strstr(log, "Overfull \\hbox"), *t = strstr(log, "Float too large");
    cr_assert_null(o, "%.300s", o);
    cr_assert_null(t, "%.300s", t);
}

Test(report_latex, every_table_compiles_in_two_columns_without_overfull_boxes) {
    const char *p = write_fixture("quick.h5", study, NSTUDY, 0);
    char *tex = render(&p, 1, RP_LATEX);
    /* the tables this test is about are there */
    cr_assert(strstr(tex, "\\label{tab:fake1}") && strstr(tex, "\\label{tab:ipguard-suspects}") &&
              strstr(tex, "\\label{tab:passport}") && strstr(tex, "\\label{tab:ambiguity}"), "%s", tex);
    char *log = compile(tex);
    if (!log) {
        free(tex);
        cr_skip_test("pdflatex is not installed");
    }
    assert_fits(log);
    free(log), free(tex);
}

Test(report_latex, a_comparison_compiles_too) {
    const char *a = write_fixture("a.h5", study, NSTUDY, 0);
    const char *paths[2] = {a, write_fixture("b.h5", study, NSTUDY - 3, 0.05)};
    char *tex = render(paths, 2, RP_LATEX);
    cr_assert(strstr(tex, "\\multicolumn{3}{c}{before} & \\multicolumn{3}{c}{after}"), "%s", tex);
    char *log = compile(tex);
    if (!log) {
        free(tex);
        cr_skip_test("pdflatex is not installed");
    }
    assert_fits(log);
    free(log), free(tex);
}

/* A run in progress: the notice, rows marked "*" and the footnote under their tables */
Test(report_latex, a_run_in_progress_compiles_too) {
    fx_task t[NSTUDY];
    memcpy(t, study, sizeof t);
    t[1].status = "pending"; /* base seed 2 */
    t[7].status = "running"; /* the stolen fine-tuned copy */
    const char *p = write_fixture_p("partial.h5", t, NSTUDY, 0, 1);
    char *tex = render(&p, 1, RP_LATEX);
    cr_assert(strstr(tex, "\\textbf{In progress:}") && strstr(tex, "1/2*"), "%s", tex);
    char *log = compile(tex);
    if (!log) {
        free(tex);
        cr_skip_test("pdflatex is not installed");
    }
    assert_fits(log);
    free(log), free(tex);
}

Test(report_latex, long_tables_are_split_into_page_sized_floats) {
    const char *p = write_fixture("quick.h5", study, NSTUDY, 0);
    char *tex = render(&p, 1, RP_LATEX);
    /* 120 rows: 4 floats of 30 rows */
    cr_assert(strstr(tex, "IPGuard: matching rate per suspect (part 1 of 4). Matching rate"), "%s", tex);
    cr_assert(strstr(tex, "IPGuard: matching rate per suspect (continued, part 4 of 4)}\n\\label{tab:ipguard-suspects:4}"),
              "%s", tex);
    const char *s = strstr(tex, "\\label{tab:ipguard-suspects:2}");
    cr_assert_not_null(s);
    int rows = 0;
    for (const char *q = strstr(s, "\\midrule"); q && q < strstr(s, "\\bottomrule"); q = strstr(q + 1, "\\\\\n")) rows++;
    cr_assert_eq(rows - 1, 30, "%d rows in part 2", rows - 1); /* the \midrule line counts once */
    free(tex);
}

Test(report_latex, headers_in_words_csv_names_unchanged_integers_as_integers) {
    const char *p = write_fixture("quick.h5", study, NSTUDY, 0);
    char *md = render(&p, 1, RP_MD);
    cr_assert(strstr(md, "| model | task | key type | reference | mode | eval images | n |"), "%s", md);
    cr_assert(strstr(md, "| model | flip fraction | fraction | n |"), "%s", md);
    cr_assert_null(strstr(md, "key\\_type"), "%s", md);
    /* the margin k is an integer: "20", not "20.000" */
    cr_assert(strstr(md, "| fp[k=20]<base> | 20 | 1 | 30 | 10 |"), "%s", md);
    free(md);
    char *csv = render(&p, 1, RP_CSV);
    cr_assert(strstr(csv, "\nmodel,task,key_type,reference,mode,eval_images,n,n_planned,real_acc,"), "%s", csv);
    free(csv);
    char *tex = render(&p, 1, RP_LATEX);
    /* a header wider than its cells stacks on two lines */
    cr_assert(strstr(tex, "\\begin{tabular}[b]{@{}l@{}}key\\\\type\\end{tabular}"), "%s", tex);
    /* the table is boxed and shrunk only when TeX measures it wider than its float */
    cr_assert(strstr(tex, "\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox0}\\else\\usebox0\\fi\n"), "%s",
              tex);
    /* narrow tables take a column, wide ones the page */
    const char *flip = strstr(tex, "\\label{tab:flip}"), *fake1 = strstr(tex, "\\label{tab:fake1}");
    cr_assert(flip && fake1);
    cr_assert(!strncmp(strstr(tex, "Sign flipping") - strlen("\\begin{table}[tbp]\n\\centering\n\\caption{"),
                       "\\begin{table}[tbp]", 18),
              "%s", tex);
    cr_assert(strstr(tex, "\\begin{table*}[tbp]\n\\centering\n\\setlength{\\tabcolsep}{3pt}\n\\caption{Fake passports"),
              "%s", tex);
    free(tex);
}
