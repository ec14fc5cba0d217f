/* The report's plots (report.h): for each plot, DIR/<plot>.dat (the numbers,
 * gnuplot data blocks separated by two blank lines) and DIR/<plot>.gp (a
 * gnuplot script reading the .dat by its name and writing <plot>.png, run
 * from DIR so the three files can be moved together); then gnuplot on the
 * script when it is installed.
 *
 *   prune.png        accuracy and detection against the pruning rate, per model
 *   flip.png         accuracy and detection against the flipped fraction (flip)
 *   fake1-<m>.png    histogram of the fake passports' accuracies, real one marked
 *   fake1-joint-<m>-<entry>-<key_type>.png  2-D histogram of the fakes' accuracy against their
 *                    signature detection, the real passport and both acceptance thresholds marked
 *   ipguard-ru.png   robustness and uniqueness against the threshold, per fingerprint (k) */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

#define HIST_BINS 100 /* 1-point bins of accuracy */
#define DET_BINS 50   /* 2-point bins of signature detection (small-p: 64..128 bits per layer) */

typedef struct plotctx {
    const rp_file *f;
    const char *dir;
    FILE *log;
    int have_gnuplot, failed_gnuplot;
    ip_err *e;
} plotctx;

static FILE *open_out(plotctx *p, const char *name, const char *ext) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s.%s", p->dir, name, ext);
    FILE *f = fopen(path, "w");
    if (!f) ip_fail(p->e, "cannot write %s: %s", path, strerror(errno));
    return f;
}

static int close_out(plotctx *p, FILE *f, const char *name, const char *ext) {
    if (fclose(f) != 0) return ip_fail(p->e, "error writing %s/%s.%s", p->dir, name, ext);
    return 0;
}

/* Whether an executable `gnuplot` is on PATH. */
static int find_gnuplot(void) {
    const char *path = getenv("PATH");
    char buf[4096];
    for (const char *s = path ? path : "/usr/bin:/bin"; *s;) {
        size_t l = strcspn(s, ":");
        snprintf(buf, sizeof buf, "%.*s/gnuplot", (int)l, l ? s : ".");
        if (access(buf, X_OK) == 0) return 1;
        s += l + (s[l] == ':');
    }
    return 0;
}

/* Runs `gnuplot <name>.gp` in the plot directory. */
static void run_gnuplot(plotctx *p, const char *name) {
    if (!p->have_gnuplot) return;
    fflush(NULL);
    char gp[300];
    snprintf(gp, sizeof gp, "%s.gp", name);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(p->dir) != 0) _exit(126);
        execlp("gnuplot", "gnuplot", gp, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(p->log, "report: gnuplot failed on %s/%s.gp\n", p->dir, name);
        p->failed_gnuplot = 1;
        return;
    }
    fprintf(p->log, "report: wrote %s/%s.png, .pdf and .svg\n", p->dir, name);
}

/* Every figure is drawn three times by one loop of its script: PNG at PNG_DPI,
 * vector PDF and SVG, all the same size in inches so the fonts are FONT_PT at
 * print size. gnuplot's cairo PNG takes font points at 96 dpi, hence the
 * scale; its SVG takes the size in points (1/72 in). */
#define FONT_PT 8
#define PNG_DPI 200
static void gp_header(FILE *g, const char *name, const char *title, const char *xlabel, const char *ylabel) {
    double w = 3.3, h = 2.5;
    fprintf(g,
            "# written by ipsweep report; run `gnuplot %s.gp` in this directory: %s.png, .pdf and .svg\n"
            "do for [fmt in \"png pdf svg\"] {\n"
            "reset\n"
            "if (fmt eq \"png\") {\n"
            "  set terminal pngcairo size %d,%d font \"sans,%d\" fontscale %.4f linewidth %.4f noenhanced\n"
            "  set output '%s.png'\n"
            "}\n"
            "if (fmt eq \"pdf\") {\n"
            "  set terminal pdfcairo size %.2fin,%.2fin font \"sans,%d\" noenhanced\n"
            "  set output '%s.pdf'\n"
            "}\n"
            "if (fmt eq \"svg\") {\n"
            "  set terminal svg size %d,%d font \"sans,%d\" noenhanced\n"
            "  set output '%s.svg'\n"
            "}\n"
            "set title \"%s\"\n"
            "set xlabel \"%s\"\n"
            "set ylabel \"%s\"\n"
            "set grid\n",
            name, name, (int)(w * PNG_DPI + 0.5), (int)(h * PNG_DPI + 0.5), FONT_PT, PNG_DPI / 96.0,
            PNG_DPI / 96.0, name, w, h, FONT_PT, name, (int)(w * 72 + 0.5), (int)(h * 72 + 0.5), FONT_PT, name,
            title, xlabel, ylabel);
}

/* Closes the loop gp_header opened. */
static void gp_footer(FILE *g) { fprintf(g, "unset output\n}\n"); }

/* gnuplot string literal contents: no quotes or backslashes. */
static void gp_safe(char *s) {
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || *s == '\'') *s = '_';
}

/* A file name from a label: [A-Za-z0-9._-], others '_'. */
static void file_safe(char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '-'))
            *s = '_';
}

/* ------------------------------------------------------------------------- */
/* accuracy and detection against a parameter (prune: rate, flip: fraction)  */

/* x: the metric (when reported, e.g. prune's `rate`), else the parameter. */

static double x_of(const rp_file *f, const rp_group *g, const char *metric, const char *param) {
    double x = g->ndone && metric ? rp_metric(f, g->done[0], metric) : NAN;
    if (isnan(x)) {
        const char *v = rp_param(f, g->tasks[0], param);
        x = v ? atof(v) : NAN;
    }
    return x;
}

/* The series a group belongs to: its model's label, and the spec entry when
 * several entries of the kind are plotted (a sweep and a few suspects on one model). */
static void series_of(const rp_file *f, const rp_group *g, int by_entry, char *out, size_t cap) {
    int ref = rp_ref(f, g->tasks[0], "model");
    if (ref >= 0) rp_label(f, ref, out, cap);
    else snprintf(out, cap, "?");
    if (by_entry) {
        size_t l = strlen(out);
        snprintf(out + l, cap - l, " (%s)", f->name[g->tasks[0]]);
    }
}

static int curve_plot(plotctx *p, const char *kind, const char *name, const char *metric, const char *param,
                      const char *title, const char *xlabel) {
    rp_group *g = NULL;
    int ng = 0, rc = -1;
    if (rp_groups(p->f, kind, &g, &ng, p->e) != 0) return -1;
    int by_entry = rp_names_vary(p->f, g, ng);
    /* series in order of first appearance */
    char(*models)[160] = calloc((size_t)(ng ? ng : 1), sizeof *models);
    int nm = 0, *has_det = calloc((size_t)(ng ? ng : 1), sizeof *has_det);
    FILE *d = NULL, *gp = NULL;
    if (!models || !has_det) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    for (int i = 0; i < ng; i++) {
        if (!g[i].ndone) continue;
        char m[160];
        series_of(p->f, &g[i], by_entry, m, sizeof m);
        int k = 0;
        while (k < nm && strcmp(models[k], m)) k++;
        if (k == nm) snprintf(models[nm++], sizeof models[0], "%s", m);
    }
    if (!nm) {
        rc = 0;
        goto done;
    }
    if (!(d = open_out(p, name, "dat"))) goto done;
    fprintf(d, "# %s: one block per model; columns: %s (%%), accuracy (%%), its std, detection (%%), its std "
               "(NaN: none); mean and sample std over seeds\n", name, param);
    for (int k = 0; k < nm; k++) {
        fprintf(d, "%s# model %s\n", k ? "\n\n" : "", models[k]);
        for (int i = 0; i < ng; i++) {
            char m[160];
            series_of(p->f, &g[i], by_entry, m, sizeof m);
            if (!g[i].ndone || strcmp(m, models[k])) continue;
            double *v = malloc((size_t)g[i].ndone * 2 * sizeof *v);
            if (!v) {
                ip_fail(p->e, "out of memory");
                goto done;
            }
            for (int j = 0; j < g[i].ndone; j++) {
                v[j] = rp_metric(p->f, g[i].done[j], "test_acc");
                v[g[i].ndone + j] = rp_metric(p->f, g[i].done[j], "detect");
            }
            rp_stat a = rp_stat_of(v, g[i].ndone), dt = rp_stat_of(v + g[i].ndone, g[i].ndone);
            free(v);
            has_det[k] |= dt.n > 0;
            fprintf(d, "%.6g %.6g %.6g %.6g %.6g\n", 100 * x_of(p->f, &g[i], metric, param), 100 * a.mean,
                    100 * a.std, dt.n ? 100 * dt.mean : NAN, dt.n ? 100 * dt.std : NAN);
        }
    }
    if (close_out(p, d, name, "dat")) {
        d = NULL;
        goto done;
    }
    d = NULL;
    if (!(gp = open_out(p, name, "gp"))) goto done;
    gp_header(gp, name, title, xlabel, "%");
    fprintf(gp, "set yrange [0:105]\nset xrange [-2:102]\nset key outside right top\n"
                "set style data yerrorlines\nset pointsize 0.8\nplot \\\n");
    for (int k = 0; k < nm; k++) {
        gp_safe(models[k]);
        fprintf(gp, "  '%s.dat' index %d using 1:2:3 lw 2 lc %d pt 7 title \"%s accuracy\"", name, k, k + 1,
                models[k]);
        if (has_det[k])
            fprintf(gp, ", \\\n  '%s.dat' index %d using 1:4:5 lw 2 dt 2 lc %d pt 6 title \"%s detection\"", name, k,
                    k + 1, models[k]);
        fprintf(gp, "%s\n", k + 1 < nm ? ", \\" : "");
    }
    gp_footer(gp);
    if (close_out(p, gp, name, "gp")) {
        gp = NULL;
        goto done;
    }
    gp = NULL;
    run_gnuplot(p, name);
    rc = 0;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    free(models), free(has_det);
    rp_groups_free(g, ng);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* fake1: histogram of fake-passport accuracies per attacked model           */

static int fake1_plots(plotctx *p) {
    rp_group *g = NULL;
    int ng = 0, rc = -1;
    if (rp_groups(p->f, "fake1", &g, &ng, p->e) != 0) return -1;
    char *done_model = calloc((size_t)(ng ? ng : 1), 1);
    double *hist = malloc((size_t)(ng ? ng : 1) * HIST_BINS * sizeof *hist);
    int *members = malloc((size_t)(ng ? ng : 1) * sizeof *members);
    if (!done_model || !hist || !members) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    for (int i = 0; i < ng; i++) {
        if (done_model[i] || !g[i].ndone) continue;
        char model[160], m2[160];
        rp_key_label(p->f, rp_param(p->f, g[i].tasks[0], "model") ? rp_param(p->f, g[i].tasks[0], "model") : "?",
                     model, sizeof model);
        /* every fake1 row attacking this model: one series each */
        int nmem = 0;
        double real_sum = 0;
        int real_n = 0;
        for (int j = i; j < ng; j++) {
            if (!g[j].ndone) continue;
            const char *mk = rp_param(p->f, g[j].tasks[0], "model");
            rp_key_label(p->f, mk ? mk : "?", m2, sizeof m2);
            if (strcmp(model, m2)) continue;
            done_model[j] = 1;
            double *h = hist + (size_t)nmem * HIST_BINS;
            memset(h, 0, HIST_BINS * sizeof *h);
            size_t total = 0;
            for (int t = 0; t < g[j].ndone; t++) {
                double *v, r = rp_metric(p->f, g[j].done[t], "real_acc");
                size_t n;
                if (rp_array(p->f, g[j].done[t], "fake_acc", &v, &n, p->e) != 0) goto done;
                for (size_t k = 0; k < n; k++) {
                    int b = (int)floor(v[k] * HIST_BINS);
                    h[b < 0 ? 0 : b >= HIST_BINS ? HIST_BINS - 1 : b] += 1;
                }
                total += n;
                free(v);
                if (!isnan(r)) real_sum += r, real_n++;
            }
            if (!total) continue;
            for (int b = 0; b < HIST_BINS; b++) h[b] *= 100.0 / (double)total;
            members[nmem++] = j;
        }
        if (!nmem) continue;
        char name[200];
        snprintf(name, sizeof name, "fake1-%s", model);
        file_safe(name + 6);
        FILE *d = open_out(p, name, "dat");
        if (!d) goto done;
        fprintf(d, "# %s: one block per fake1 row; columns: accuracy bin centre (%%), passports in the bin (%% of "
                   "the row's passports), over every seed of the row\n", name);
        for (int s = 0; s < nmem; s++) {
            fprintf(d, "%s# %s\n", s ? "\n\n" : "", g[members[s]].key);
            for (int b = 0; b < HIST_BINS; b++)
                fprintf(d, "%.1f %.6g\n", (b + 0.5) * 100.0 / HIST_BINS, hist[(size_t)s * HIST_BINS + b]);
        }
        if (close_out(p, d, name, "dat")) goto done;
        FILE *gp = open_out(p, name, "gp");
        if (!gp) goto done;
        char title[300];
        snprintf(title, sizeof title, "Fake passports against the real one: model %s", model);
        gp_safe(title);
        gp_header(gp, name, title, "test accuracy (%)", "passports (%)");
        double real = real_n ? 100 * real_sum / real_n : NAN;
        fprintf(gp, "set xrange [0:100]\nset yrange [0:*]\nset key outside below horizontal\nset boxwidth %g\n"
                    "set style fill transparent solid 0.45 noborder\n", 100.0 / HIST_BINS);
        if (!isnan(real))
            fprintf(gp, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lw 2 dt 2 lc rgb \"black\"\n"
                        "set label \"real passport %.1f%%\" at %.3f, graph 0.95 right offset -0.8,0\n",
                    real, real, real, real);
        fprintf(gp, "plot \\\n");
        for (int s = 0; s < nmem; s++) {
            int t0 = g[members[s]].tasks[0];
            const char *kt = rp_param(p->f, t0, "key_type");
            char ref[160] = "", series[240];
            const char *rk = rp_param(p->f, t0, "reference");
            if (rk && rk[0]) rp_key_label(p->f, rk, ref, sizeof ref);
            /* screen mode stops a rejected fake after a few dozen images: its accuracy is that sample's */
            const char *mode = rp_param(p->f, t0, "mode");
            int screen = mode && !strcmp(mode, "screen");
            snprintf(series, sizeof series, "%s keys%s%s%s%s", kt ? kt : "fake", ref[0] ? " (reference " : "", ref,
                     ref[0] ? ")" : "", screen ? ", screened: rejected fakes on their first images only" : "");
            if (!kt) rp_label(p->f, t0, series, sizeof series);
            gp_safe(series);
            fprintf(gp, "  '%s.dat' index %d using 1:2 with boxes lc %d title \"%s\"%s\n", name, s, s + 1, series,
                    s + 1 < nmem ? ", \\" : "");
        }
        gp_footer(gp);
        if (close_out(p, gp, name, "gp")) goto done;
        run_gnuplot(p, name);
    }
    rc = 0;
done:
    free(done_model), free(hist), free(members);
    rp_groups_free(g, ng);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* fake1: accuracy against signature detection, one 2-D histogram per row    */

/* The mean of a metric over a group's done tasks (NaN: none). */
static double group_mean(const rp_file *f, const rp_group *g, const char *metric) {
    double s = 0;
    int n = 0;
    for (int t = 0; t < g->ndone; t++) {
        double v = rp_metric(f, g->done[t], metric);
        if (!isnan(v)) s += v, n++;
    }
    return n ? s / n : NAN;
}

static int bin_of(double v, int bins) {
    int b = (int)floor(v * bins);
    return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

/* Writes fake1-joint-<name>.dat/.gp for group g: fakes per (accuracy, detection) cell over its seeds. */
static int joint_plot(plotctx *p, const rp_group *g, const char *name, double *cells) {
    const rp_file *f = p->f;
    memset(cells, 0, (size_t)HIST_BINS * DET_BINS * sizeof *cells);
    size_t total = 0;
    double joint = 0; /* the task's own count (the acceptance rule has one home: core/tasks/forge.c) */
    int has_joint = 0; /* files written before the joint criterion have none */
    double thr = group_mean(f, g, "threshold"), dthr = group_mean(f, g, "detect_threshold");
    for (int t = 0; t < g->ndone; t++) {
        double *a = NULL, *d = NULL;
        size_t na = 0, nd = 0;
        if (rp_array(f, g->done[t], "fake_acc", &a, &na, p->e) != 0) return -1;
        if (rp_array(f, g->done[t], "fake_detect", &d, &nd, p->e) != 0) {
            free(a);
            return -1;
        }
        /* screen mode: a stopped fake's accuracy is its first images' (docs/passports.md); still shown */
        for (size_t k = 0; k < na && k < nd; k++) {
            cells[(size_t)bin_of(a[k], HIST_BINS) * DET_BINS + (size_t)bin_of(d[k], DET_BINS)] += 1;
        }
        double j = rp_metric(f, g->done[t], "accepted_joint");
        if (!isnan(j)) joint += j, has_joint = 1;
        total += na < nd ? na : nd;
        free(a), free(d);
    }
    if (!total) return 0;
    FILE *dat = open_out(p, name, "dat");
    if (!dat) return -1;
    fprintf(dat, "# %s: %s; block 0: accuracy bin centre (%%), detection bin centre (%%), fakes in the cell (NaN: "
                 "none), over every seed of the row; block 1: the real passport (accuracy %%, detection %%)\n",
            name, g->key);
    for (int i = 0; i < HIST_BINS; i++) {
        for (int j = 0; j < DET_BINS; j++) {
            double c = cells[(size_t)i * DET_BINS + j];
            fprintf(dat, "%.1f %.1f ", (i + 0.5) * 100.0 / HIST_BINS, (j + 0.5) * 100.0 / DET_BINS);
            if (c > 0) fprintf(dat, "%.0f\n", c);
            else fprintf(dat, "NaN\n");
        }
        fprintf(dat, "\n");
    }
    double ra = group_mean(f, g, "real_acc"), rd = group_mean(f, g, "real_detect");
    fprintf(dat, "\n\n# real passport\n%.6g %.6g\n", 100 * ra, 100 * rd);
    if (close_out(p, dat, name, "dat")) return -1;
    FILE *gp = open_out(p, name, "gp");
    if (!gp) return -1;
    char title[400], label[200];
    rp_key_label(f, g->key, label, sizeof label);
    int at = snprintf(title, sizeof title, "Fake passports %s: accuracy against signature detection (%zu fakes",
                      label, total);
    if (has_joint) snprintf(title + at, sizeof title - (size_t)at, ", %.0f accepted by both)", joint);
    else snprintf(title + at, sizeof title - (size_t)at, ")");
    gp_safe(title);
    gp_header(gp, name, title, "test accuracy (%)", "signature detection (%)");
    fprintf(gp, "set xrange [0:100]\nset yrange [0:100]\nset key outside below horizontal\nunset grid\n"
                "set logscale cb\nset cbrange [1:*]\nset cblabel \"fakes in the cell\"\n"
                /* a single fake (the tail) must stand out from the white background: it gets the lightest colour */
                "set palette defined (0 \"#f0c000\", 0.35 \"#e0502a\", 0.7 \"#8a1a8a\", 1 \"#1a1040\")\n");
    if (!isnan(thr))
        fprintf(gp, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lw 1.5 dt 2 lc rgb \"red\"\n"
                    "set label \"accuracy threshold %.1f%%\" at %.3f, graph 0.04 right offset -0.5,0 front tc rgb \"red\"\n",
                100 * thr, 100 * thr, 100 * thr, 100 * thr);
    if (!isnan(dthr))
        fprintf(gp, "set arrow from graph 0, first %.3f to graph 1, first %.3f nohead lw 1.5 dt 2 lc rgb \"blue\"\n"
                    "set label \"detection threshold %.0f%%\" at graph 0.02, first %.3f offset 0,0.7 front tc rgb \"blue\"\n",
                100 * dthr, 100 * dthr, 100 * dthr, 100 * dthr);
    fprintf(gp, "plot '%s.dat' index 0 using 1:2:3 with image pixels notitle, \\\n"
                "  '%s.dat' index 1 using 1:2 with points pt 7 ps 2 lc rgb \"black\" title \"real passport "
                "(%.1f%%, %.0f%%)\"\n",
            name, name, 100 * ra, 100 * rd);
    gp_footer(gp);
    if (close_out(p, gp, name, "gp")) return -1;
    run_gnuplot(p, name);
    return 0;
}

static int fake1_joint_plots(plotctx *p) {
    rp_group *g = NULL;
    int ng = 0, rc = -1;
    if (rp_groups(p->f, "fake1", &g, &ng, p->e) != 0) return -1;
    double *cells = malloc((size_t)HIST_BINS * DET_BINS * sizeof *cells);
    char(*used)[240] = calloc((size_t)(ng ? ng : 1), sizeof *used);
    if (!cells || !used) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    for (int i = 0; i < ng; i++) {
        if (!g[i].ndone) continue;
        int t0 = g[i].tasks[0];
        char model[160] = "?";
        const char *mk = rp_param(p->f, t0, "model"), *kt = rp_param(p->f, t0, "key_type");
        if (mk) rp_key_label(p->f, mk, model, sizeof model);
        char name[240];
        snprintf(name, sizeof name, "fake1-joint-%s-%s-%s", model, p->f->name[t0], kt ? kt : "keys");
        file_safe(name);
        /* rows that differ in another parameter (eval_images, a reference): numbered after the first */
        int dup = 0;
        for (int j = 0; j < i; j++) dup += !strncmp(used[j], name, strlen(name)) && used[j][0];
        if (dup) snprintf(name + strlen(name), sizeof name - strlen(name), "-%d", dup + 1);
        snprintf(used[i], sizeof used[i], "%s", name);
        if (joint_plot(p, &g[i], name, cells) != 0) goto done;
    }
    rc = 0;
done:
    free(cells), free(used);
    rp_groups_free(g, ng);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* IPGuard: robustness and uniqueness against the threshold, one pair per fingerprint group */

static int ipguard_plot(plotctx *p) {
    const rp_file *f = p->f;
    if (!f->has_ipguard || !f->ig_ncurves || !f->ig_npoints) return 0;
    const rp_col *key = rp_tab_col(&f->ig_summary, "fingerprint_key"), *kc = rp_tab_col(&f->ig_summary, "k");
    size_t n = f->ig_ncurves, np = f->ig_npoints;
    char(*labels)[160] = calloc(n, sizeof *labels);
    int *grp = calloc(n, sizeof *grp), ng = 0, rc = -1;
    FILE *d = NULL, *gp = NULL;
    const char *name = "ipguard-ru";
    if (!labels || !grp) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    for (size_t r = 0; r < n; r++) {
        char l[160];
        rp_key_label(f, key->s[r], l, sizeof l);
        int k = 0;
        while (k < ng && strcmp(labels[k], l)) k++;
        if (k == ng) snprintf(labels[ng++], sizeof labels[0], "%s", l);
        grp[r] = k;
    }
    if (!(d = open_out(p, name, "dat"))) goto done;
    fprintf(d, "# %s: one block per fingerprint (mean over its seeds); columns: threshold, robustness, "
               "uniqueness\n", name);
    for (int k = 0; k < ng; k++) {
        fprintf(d, "%s# %s\n", k ? "\n\n" : "", labels[k]);
        for (size_t i = 0; i < np; i++) {
            double rs = 0, us = 0;
            int c = 0;
            for (size_t r = 0; r < n; r++)
                if (grp[r] == k) rs += f->ig_robustness[r * np + i], us += f->ig_uniqueness[r * np + i], c++;
            fprintf(d, "%.6g %.6g %.6g\n", f->ig_thresholds[i], rs / c, us / c);
        }
    }
    if (close_out(p, d, name, "dat")) {
        d = NULL;
        goto done;
    }
    d = NULL;
    if (!(gp = open_out(p, name, "gp"))) goto done;
    gp_header(gp, name,
              "IPGuard: robustness (solid) and uniqueness (dashed) against the threshold; ARUC (the paper's) = the "
              "area under the lower of the two",
              "matching-rate threshold", "fraction of suspects");
    fprintf(gp, "set xrange [0:1]\nset yrange [0:1.05]\nset key outside below maxrows 4\nplot \\\n");
    for (int k = 0; k < ng; k++) {
        char title[220];
        size_t r0 = 0;
        while (grp[r0] != k) r0++;
        /* the label names k when it is swept; otherwise say it (a CAE fingerprint has none: NaN) */
        if (kc && !kc->is_str && !strstr(labels[k], "k=") && !isnan(kc->v[r0]))
            snprintf(title, sizeof title, "%s, k=%g", labels[k], kc->v[r0]);
        else snprintf(title, sizeof title, "%s", labels[k]);
        gp_safe(title);
        /* the two areas of the group (mean over its seeds), exact from the summary, beside the sampled curves */
        const rp_col *ac = rp_tab_col(&f->ig_summary, "aruc"), *rc_ = rp_tab_col(&f->ig_summary, "roc_auc");
        double as = 0, rs = 0;
        int na = 0, nr = 0;
        for (size_t r = 0; r < n; r++) {
            if (grp[r] != k) continue;
            if (ac && !ac->is_str && !isnan(ac->v[r])) as += ac->v[r], na++;
            if (rc_ && !rc_->is_str && !isnan(rc_->v[r])) rs += rc_->v[r], nr++;
        }
        char areas[96] = "";
        if (na && nr) snprintf(areas, sizeof areas, " (ARUC %.3f, ROC AUC %.3f)", as / na, rs / nr);
        else if (na) snprintf(areas, sizeof areas, " (ARUC %.3f)", as / na);
        fprintf(gp,
                "  '%s.dat' index %d using 1:2 with lines lw 2 lc %d title \"robustness, %s\", \\\n"
                "  '%s.dat' index %d using 1:3 with lines lw 2 dt 2 lc %d title \"uniqueness, %s%s\"%s\n",
                name, k, k + 1, title, name, k, k + 1, title, areas, k + 1 < ng ? ", \\" : "");
    }
    gp_footer(gp);
    if (close_out(p, gp, name, "gp")) {
        gp = NULL;
        goto done;
    }
    gp = NULL;
    run_gnuplot(p, name);
    rc = 0;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    free(labels), free(grp);
    return rc;
}

/* ------------------------------------------------------------------------- */

int rp_plots(const rp_file *f, const char *dir, FILE *log, int *have_gnuplot, ip_err *e) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return ip_fail(e, "cannot create %s: %s", dir, strerror(errno));
    plotctx p = {f, dir, log, find_gnuplot(), 0, e};
    *have_gnuplot = p.have_gnuplot;
    if (!p.have_gnuplot)
        fprintf(log, "report: gnuplot is not installed (make deps installs it): writing the .dat and .gp files "
                     "only; `gnuplot NAME.gp` in %s makes the PNGs\n", dir);
    if (curve_plot(&p, "prune", "prune", "rate", "rate", "Pruning: accuracy (solid) and signature detection (dashed)",
                   "pruned weights (%)") ||
        curve_plot(&p, "flip", "flip", NULL, "fraction",
                   "Sign flipping: accuracy (solid) and signature detection (dashed)",
                   "passport gammas with flipped sign (%)") ||
        fake1_plots(&p) || fake1_joint_plots(&p) || ipguard_plot(&p))
        return -1;
    if (p.failed_gnuplot) return ip_fail(e, "gnuplot failed on some plots (see above)");
    return 0;
}
