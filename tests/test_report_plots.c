/* `ipsweep report --plots` (runner/report/report_plots*.c) on fixture results
 * files (report_fixture.h): every figure is drawn as PNG, PDF and SVG at a
 * print size with print-size fonts; fake1's full and screened rows are
 * separate figures with the tail on a log axis; the IPGuard per-attack,
 * matching-rate and ambiguity figures carry the numbers of their report tables; with
 * gnuplot installed, the three files exist, the SVG has no external
 * references, the PDF is one or two columns wide and every file is the same
 * bytes on a second run. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "plots")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(report_plots, .init = make_dir, .fini = remove_dir);

/* A passport model, a pruning sweep, a flip, fake1 in full mode and in screen
 * mode, and one each of fake2, fake3 and erb. */
static const fx_task study[] = {
    {"train:pv1[seed=1]", "train", "pv1", "done", "", "arch=small-p;norm=bn;scheme=v1;signature=ipsweep;seed=1",
     "test_acc=0.88;detect=1", NULL},
    {"prune:pruned[rate=0.5]<train:pv1[seed=1]>", "prune", "pruned", "done", "0",
     "model=train:pv1[seed=1];rate=0.5", "rate=0.5;test_acc=0.70;detect=1", NULL},
    {"flip:fl[fraction=0.5]<train:pv1[seed=1]>", "flip", "fl", "done", "0", "model=train:pv1[seed=1];fraction=0.5",
     "test_acc=0.3;detect=0.5", NULL},
    {"fake1:f1<train:pv1[seed=1]>", "fake1", "f1", "done", "0",
     "model=train:pv1[seed=1];key_type=random;passports=4;mode=full",
     "real_acc=0.88;threshold=0.85;detect_threshold=0.9;real_detect=1;accepted=0;accepted_joint=0",
     "fake_acc=0.05,0.1,0.05,0.2;fake_detect=0.5,0.5,0.6,0.4"},
    {"fake1:f1s<train:pv1[seed=1]>", "fake1", "f1s", "done", "0",
     "model=train:pv1[seed=1];key_type=image;passports=2;mode=screen",
     "real_acc=0.88;threshold=0.85;detect_threshold=0.9;real_detect=1;accepted=0;accepted_joint=0",
     "fake_acc=0.03125,0.0625;fake_detect=0.5,0.5"},
    {"fake2:f2[fraction=0.1]<train:pv1[seed=1]>", "fake2", "f2", "done", "0",
     "model=train:pv1[seed=1];target=affine;fraction=0.1", "owner_test_acc=0.88;test_acc=0.5;detect=0.5", NULL},
    {"fake3:f3[flip_fraction=0.5]<train:pv1[seed=1]>", "fake3", "f3", "done", "0",
     "model=train:pv1[seed=1];flip_fraction=0.5;fraction=0.25",
     "owner_test_acc=0.88;test_acc=0.87;detect=1;detect_target=0.5", NULL},
};
#define NSTUDY ((int)(sizeof study / sizeof *study))

static const fx_suspect suspects[] = {
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 10, "finetune:ft[mode=rtal]<train:base[seed=1]>", "finetune",
     "pirated", 0.9, "pirated"},
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 11, "train:other[seed=1]", "train", "independent", 0.2,
     "clean"},
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 12, "train:other[seed=2]", "train", "independent", 0.4,
     "clean"},
};
static const fx_summary summary[] = {
    {0, "fingerprint:fp[k=1,seed=1]<train:base[seed=1]>", 1, 1, 2, 0.6, 0.5, 0.05, 0.0},
};

/* Writes the study (with the IPGuard group) and its plots into tdir/<sub>; PATH decides whether gnuplot runs. */
static const char *plots_in(const char *sub) {
    const char *p = tu_path(tdir, "s.h5");
    fx_ipguard ig = {suspects, 3, summary, 1};
    cr_assert_eq(fx_write(p, study, NSTUDY, 0, &ig), 0);
    static char dirs[2][96];
    char *dir = dirs[strcmp(sub, "plots") != 0];
    snprintf(dir, sizeof dirs[0], "%s/%s", tdir, sub);
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, p, &e), 0, "%s", e.msg);
    FILE *devnull = fopen("/dev/null", "w");
    int have;
    cr_assert_eq(rp_plots(&f, dir, devnull, &have, &e), 0, "%s", e.msg);
    fclose(devnull);
    rp_close(&f);
    return dir;
}
static const char *plots(void) { return plots_in("plots"); }

/* A file's first MiB (its length in *len when len is not NULL; binary files hold NULs). */
static char *slurp_n(const char *path, size_t *len) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    if (len) *len = n;
    return b;
}
static char *slurp(const char *path) { return slurp_n(path, NULL); }

static const char *const figures[] = {"prune",      "flip",           "fake1-pv1",     "fake1-screen-pv1",
                                      "ipguard-ru", "ipguard-attacks", "ipguard-rates", "ambiguity"};
#define NFIGURES ((int)(sizeof figures / sizeof *figures))

Test(report_plots, every_figure_png_pdf_svg_at_print_size) {
    setenv("PATH", "/nonexistent", 1); /* the .dat and .gp only */
    const char *dir = plots();
    for (int i = 0; i < NFIGURES; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.gp", figures[i]);
        char *gp = slurp(tu_path(dir, name));
        const char *ext[] = {"png", "pdf", "svg"};
        for (int k = 0; k < 3; k++) {
            char out[120];
            snprintf(out, sizeof out, "set output '%s.%s'", figures[i], ext[k]);
            cr_assert(strstr(gp, out), "%s: no %s in\n%s", figures[i], out, gp);
        }
        /* one column (3.3 in) or the page (7 in) wide, 8 pt fonts at that size */
        cr_assert(strstr(gp, "pdfcairo size 3.30in,") || strstr(gp, "pdfcairo size 7.00in,"), "%s", gp);
        cr_assert(strstr(gp, "font \"sans,8\""), "%s", gp);
        /* an SVG the HTML report can inline: no scripts, no links out */
        cr_assert_null(strstr(gp, "mouse"), "%s", gp);
        cr_assert_null(strstr(gp, "standalone"), "%s", gp);
        cr_assert_null(strstr(gp, "http"), "%s", gp);
        free(gp);
    }
}

Test(report_plots, fake1_full_and_screened_rows_apart_on_a_log_axis) {
    setenv("PATH", "/nonexistent", 1);
    const char *dir = plots();
    char *full = slurp(tu_path(dir, "fake1-pv1.dat")), *screen = slurp(tu_path(dir, "fake1-screen-pv1.dat"));
    /* the full row's 4 fakes: 0.05 twice, 0.1, 0.2 -> bins 5, 10, 20 hold 50%, 25%, 25% */
    cr_assert(strstr(full, "# fake1:f1<train:pv1>\n"), "%s", full);
    cr_assert_null(strstr(full, "f1s"), "a screened row among the full ones:\n%.400s", full);
    cr_assert(strstr(full, "\n5.5 50\n") && strstr(full, "\n10.5 25\n") && strstr(full, "\n20.5 25\n"), "%s", full);
    /* the screened row alone: its accuracies on multiples of 1/32 */
    cr_assert(strstr(screen, "# fake1:f1s<train:pv1>\n"), "%.400s", screen);
    cr_assert_null(strstr(screen, "# fake1:f1<"), "%.400s", screen);
    cr_assert(strstr(screen, "\n3.5 50\n") && strstr(screen, "\n6.5 50\n"), "%s", screen);
    char *gp = slurp(tu_path(dir, "fake1-pv1.gp")), *gs = slurp(tu_path(dir, "fake1-screen-pv1.gp"));
    /* the tail on a log axis starting half a fake below one fake (25% of 4), the real passport, the
     * threshold and the best fake named */
    cr_assert(strstr(gp, "set logscale y\nset yrange [12.5:150]"), "%s", gp);
    cr_assert(strstr(gp, "real passport 88.0%: best fake 68.0 below"), "%s", gp);
    cr_assert(strstr(gp, "acceptance threshold 85.0%"), "%s", gp);
    cr_assert(strstr(gp, "random keys: n=4, best 20.0%"), "%s", gp);
    cr_assert(strstr(gs, "screened rows"), "%s", gs);
    cr_assert(strstr(gs, "image keys: n=2, best 6.2%"), "%s", gs);
    free(full), free(screen), free(gp), free(gs);
}

Test(report_plots, curves_panel_per_quantity) {
    setenv("PATH", "/nonexistent", 1);
    const char *dir = plots();
    char *gp = slurp(tu_path(dir, "prune.gp"));
    /* accuracy above, detection below; the axes padded around 0..100 */
    cr_assert(strstr(gp, "set multiplot\n"), "%s", gp);
    cr_assert(strstr(gp, "set ylabel \"test accuracy (%)\""), "%s", gp);
    cr_assert(strstr(gp, "set ylabel \"signature detection (%)\""), "%s", gp);
    cr_assert(strstr(gp, "set yrange [-4:104]"), "%s", gp);
    free(gp);
    char *d = slurp(tu_path(dir, "prune.dat"));
    cr_assert(strstr(d, "# model pv1\n50 70 0 100 0\n"), "%s", d);
    free(d);
}

Test(report_plots, ipguard_attacks_and_ambiguity_carry_their_tables) {
    setenv("PATH", "/nonexistent", 1);
    const char *dir = plots();
    /* the fine-tuned copy at 0.9 against independent models at 0.2 and 0.4: ARUC 0.6, ROC AUC 1 (the
     * ipguard-attacks table); families finetune (0) and all (1) */
    char *a = slurp(tu_path(dir, "ipguard-attacks.dat"));
    cr_assert(strstr(a, "families: 0=finetune 1=all\n# fp[k=1]<base>\n0 0.6 0 1 0\n1 0.6 0 1 0\n"), "%s", a);
    free(a);
    /* every suspect row a dot by family: the copy at 90%, the two independent seeds' mean 30 +- 14.1; the
     * chosen threshold (0.5) dashed */
    char *r = slurp(tu_path(dir, "ipguard-rates.dat"));
    cr_assert(strstr(r, "categories: 0=finetune 1=independent\n# fp[k=1]<base>\n0.0000 90 0 1\n1.0000 30 14.1421 2\n"),
              "%s", r);
    free(r);
    r = slurp(tu_path(dir, "ipguard-rates.gp"));
    cr_assert(strstr(r, "set arrow from 50, graph 0 to 50, graph 1 nohead dt 2"), "%s", r);
    free(r);
    char *ru = slurp(tu_path(dir, "ipguard-ru.gp"));
    /* the ARUC area shaded, its value (from the summary) in the panel's legend */
    cr_assert(strstr(ru, "with filledcurves y1=0"), "%s", ru);
    cr_assert(strstr(ru, "title \"ARUC 0.600\""), "%s", ru);
    free(ru);
    /* one row per attack setting: real and forged accuracy, owner and target detection (NaN: none) */
    char *m = slurp(tu_path(dir, "ambiguity.dat"));
    cr_assert(strstr(m, "\n0 88 0 50 0 50 0 NaN NaN \"pv1 fake2\"\n"), "%s", m);
    cr_assert(strstr(m, "\n1 88 0 87 0 100 0 50 0 \"pv1 fake3\"\n"), "%s", m);
    free(m);
}

/* Whether an executable gnuplot is on PATH. */
static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

Test(report_plots, gnuplot_draws_png_pdf_svg) {
    if (!have_gnuplot()) cr_skip_test("gnuplot is not installed");
    const char *dir = plots();
    for (int i = 0; i < NFIGURES; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.png", figures[i]);
        cr_assert_eq(access(tu_path(dir, name), R_OK), 0, "%s", name);
        snprintf(name, sizeof name, "%s.pdf", figures[i]);
        size_t len;
        char *pdf = slurp_n(tu_path(dir, name), &len);
        /* 3.3 in = 237.6 pt, 7 in = 504 pt (cairo writes whole points) */
        cr_assert(memmem(pdf, len, "MediaBox [ 0 0 237 ", 19) || memmem(pdf, len, "MediaBox [ 0 0 504 ", 19), "%s",
                  name);
        free(pdf);
        snprintf(name, sizeof name, "%s.svg", figures[i]);
        char *svg = slurp(tu_path(dir, name));
        /* only the two namespace names: no external images, fonts or scripts */
        int n = 0;
        for (const char *s = strstr(svg, "http"); s; s = strstr(s + 1, "http")) {
            n++;
            cr_assert(!strncmp(s, "http://www.w3.org/2000/svg", 26) || !strncmp(s, "http://www.w3.org/1999/xlink", 28),
                      "%s: %.80s", name, s);
        }
        cr_assert_eq(n, 2, "%s", name);
        cr_assert_null(strstr(svg, "<image"), "%s", name);
        cr_assert_null(strstr(svg, "<script"), "%s", name);
        free(svg);
    }
    /* the same bytes again a second later: nothing from the clock (cairo's PDF date is fixed) */
    sleep(1);
    const char *again = plots_in("again");
    for (int i = 0; i < NFIGURES; i++) {
        const char *ext[] = {"png", "pdf", "svg"};
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s.%s", figures[i], ext[k]);
            size_t la, lb;
            char *a = slurp_n(tu_path(dir, name), &la), *b = slurp_n(tu_path(again, name), &lb);
            cr_assert(la == lb && !memcmp(a, b, la), "%s differs between two runs", name);
            free(a), free(b);
        }
    }
}
