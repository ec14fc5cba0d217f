/* The figure machinery of the report's plots (report_plots.h) and the
 * curves against a parameter:
 *
 *   prune.*   accuracy (top panel) and signature detection (bottom panel)
 *             against the pruning rate, one series per model
 *   flip.*    the same against the fraction of passport gammas flipped
 *
 * The other plots are in report_plots_*.c; docs/report.md lists them all
 * with their print sizes. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report_plots.h"

/* PNG resolution: a figure's PNG is its print size at this many dots per inch. */
#define PNG_DPI 200

FILE *plot_open(plotctx *p, const char *name, const char *ext) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s.%s", p->dir, name, ext);
    FILE *f = fopen(path, "w");
    if (!f) ip_fail(p->e, "cannot write %s: %s", path, strerror(errno));
    return f;
}

int plot_close(plotctx *p, FILE *f, const char *name, const char *ext) {
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

/* cairo (1.16) stamps each PDF with the time it was written, which would make
 * the figures depend on the clock (report.h: everything printed is a pure
 * function of the file): the stamp's 14 digits become 1970-01-01 00:00:00 in
 * place, same length, so the PDF's byte offsets stay right. */
static void pdf_fixed_date(plotctx *p, const char *name) {
    static const char tag[] = "/CreationDate (D:";
    char path[2048];
    snprintf(path, sizeof path, "%s/%s.pdf", p->dir, name);
    FILE *f = fopen(path, "r+b");
    char buf[1 << 16];
    if (!f) return; /* no PDF: gnuplot failed, said above */
    /* the Info dictionary, where cairo writes the stamp, is near the end of the file */
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = size > (long)sizeof buf ? size - (long)sizeof buf : 0;
    size_t n = size >= 0 && fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf, f) : 0;
    const char *at = memmem(buf, n, tag, sizeof tag - 1);
    size_t off = at ? (size_t)(at - buf) + sizeof tag - 1 : 0;
    if (at && off + 14 <= n && strspn(buf + off, "0123456789") >= 14) {
        if (fseek(f, from + (long)off, SEEK_SET) != 0 || fwrite("19700101000000", 1, 14, f) != 14) {
            fprintf(p->log, "report: cannot rewrite the date of %s\n", path);
            p->failed_gnuplot = 1;
        }
    }
    if (fclose(f) != 0) p->failed_gnuplot = 1;
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
    pdf_fixed_date(p, name);
    fprintf(p->log, "report: wrote %s/%s.png, .pdf and .svg\n", p->dir, name);
}

/* One loop draws the figure three times at the same size in inches, so the
 * fonts are FIG_FONT_PT in print in each: gnuplot's cairo PNG counts font
 * points and line widths at 96 dpi (hence the scale to PNG_DPI), its SVG
 * counts the size in points (1/72 in). The colours are Okabe and Ito's
 * (told apart with colour blindness and in grey); the point types go with
 * them, so a series keeps its colour and marker in every panel. */
void plot_begin(FILE *g, const char *name, double w, double h, const char *xlabel, const char *ylabel) {
    double s = PNG_DPI / 96.0;
    fprintf(g,
            "# written by ipsweep report; run `gnuplot %s.gp` in this directory.\n"
            "# Draws %s.png (%d dpi), %s.pdf and %s.svg at %.2f x %.2f in, fonts %d pt.\n"
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
            "set linetype 1 lc rgb \"#0072B2\" lw 1.5 pt 4 ps 1.1\n"
            "set linetype 2 lc rgb \"#D55E00\" lw 1.5 pt 6 ps 0.9\n"
            "set linetype 3 lc rgb \"#009E73\" lw 1.5 pt 8 ps 0.75\n"
            "set linetype 4 lc rgb \"#CC79A7\" lw 1.5 pt 12 ps 0.6\n"
            "set linetype 5 lc rgb \"#E69F00\" lw 1.5 pt 2 ps 0.6\n"
            "set linetype 6 lc rgb \"#56B4E9\" lw 1.5 pt 10 ps 0.6\n"
            "set linetype 7 lc rgb \"#000000\" lw 1.5 pt 1 ps 0.6\n"
            "set linetype 8 lc rgb \"#999999\" lw 1.5 pt 3 ps 0.6\n"
            "set linetype cycle 8\n"
            "set style line 100 lc rgb \"#dddddd\" lw 0.5\n"
            "set grid ls 100\n"
            "set border 3 lw 0.8\n"
            "set tics nomirror out scale 0.5\n"
            "set key samplen 3 spacing 1 noautotitle\n",
            name, name, PNG_DPI, name, name, w, h, FIG_FONT_PT, (int)(w * PNG_DPI + 0.5), (int)(h * PNG_DPI + 0.5),
            FIG_FONT_PT, s, s, name, w, h, FIG_FONT_PT, name, (int)(w * 72 + 0.5), (int)(h * 72 + 0.5),
            FIG_FONT_PT, name);
    if (xlabel) fprintf(g, "set xlabel \"%s\"\n", xlabel);
    if (ylabel) fprintf(g, "set ylabel \"%s\"\n", ylabel);
}

void plot_end(FILE *g) { fprintf(g, "unset output\n}\n"); }

int plot_finish(plotctx *p, FILE *g, const char *name) {
    plot_end(g);
    if (plot_close(p, g, name, "gp")) return -1;
    run_gnuplot(p, name);
    return 0;
}

void plot_safe(char *s) {
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || *s == '\'') *s = '_';
}

void plot_file_safe(char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
              *s == '-'))
            *s = '_';
}

double plot_group_mean(const rp_file *f, const rp_group *g, const char *metric) {
    double s = 0;
    int n = 0;
    for (int t = 0; t < g->ndone; t++) {
        double v = rp_metric(f, g->done[t], metric);
        if (!isnan(v)) s += v, n++;
    }
    return n ? s / n : NAN;
}

void plot_panel(FILE *g, double w, double h, double x0, double x1, double y0, double y1) {
    fprintf(g, "set lmargin at screen %.4f\nset rmargin at screen %.4f\nset bmargin at screen %.4f\n"
               "set tmargin at screen %.4f\n", x0 / w, x1 / w, y0 / h, y1 / h);
}

const rp_cell *plot_cell(const rp_table *t, int r, int c) { return &t->cells[(size_t)r * RP_MAX_COLUMNS + c]; }

void plot_num(FILE *d, double v) {
    if (isnan(v)) fprintf(d, " NaN");
    else fprintf(d, " %.6g", v);
}

int plot_table_col(const rp_table *t, const char *csv) {
    for (int c = 0; c < t->ncols; c++)
        if (!strcmp(t->cols[c].csv, csv)) return c;
    return -1;
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

/* Two panels sharing the x axis: accuracy above, detection below (only the
 * series that have one; passport-free models have none). Equal detections
 * (every passport model at 100%) would hide each other: see the markers below. */
static int curve_plot(plotctx *p, const char *kind, const char *name, const char *metric, const char *param,
                      const char *xlabel) {
    rp_group *g = NULL;
    int ng = 0, rc = -1;
    if (rp_groups(p->f, kind, &g, &ng, p->e) != 0) return -1;
    int by_entry = rp_names_vary(p->f, g, ng);
    /* series in order of first appearance */
    char(*models)[160] = calloc((size_t)(ng ? ng : 1), sizeof *models);
    int nm = 0, *has_det = calloc((size_t)(ng ? ng : 1), sizeof *has_det), any_det = 0;
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
    if (!(d = plot_open(p, name, "dat"))) goto done;
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
        any_det |= has_det[k];
    }
    int rcd = plot_close(p, d, name, "dat");
    d = NULL;
    if (rcd) goto done;
    if (!(gp = plot_open(p, name, "gp"))) goto done;
    /* one column wide; the detection panel adds 1.5 in */
    /* the legend above the panels (two entries a line), so it never covers a curve; then the accuracy
     * panel and, when there is one, the detection panel, each 1.45 in high, sharing the x axis */
    double w = FIG_SINGLE, legend = 0.08 + 0.15 * ((nm + 1) / 2), ph = 1.45, gap = 0.12, bottom = 0.45;
    double h = legend + ph + (any_det ? gap + ph : 0) + bottom, y1 = h - legend;
    plot_begin(gp, name, w, h, NULL, NULL);
    fprintf(gp,
            "# both panels 0..100 with room around it, so values at 0 and 100 stay off the frame\n"
            "set xrange [-3:103]\nset yrange [-4:104]\nset ytics 0,20,100\nset xtics 0,20,100\n"
            "set style data yerrorlines\nset multiplot\n");
    plot_panel(gp, w, h, 0.55, w - 0.1, y1 - ph, y1);
    if (any_det) fprintf(gp, "set format x \"\"\n");
    else fprintf(gp, "set xlabel \"%s\"\n", xlabel);
    fprintf(gp, "set ylabel \"test accuracy (%%)\"\nunset key\nplot \\\n");
    for (int k = 0; k < nm; k++)
        fprintf(gp, "  '%s.dat' index %d using 1:2:3 lt %d%s\n", name, k, k + 1, k + 1 < nm ? ", \\" : "");
    if (any_det) {
        plot_panel(gp, w, h, 0.55, w - 0.1, y1 - 2 * ph - gap, y1 - ph - gap);
        fprintf(gp, "set format x \"%%g\"\nset xlabel \"%s\"\nset ylabel \"signature detection (%%)\"\n"
                    "unset key\nplot \\\n", xlabel);
        /* the j-th of ndet series marks every ndet-th point from its j-th: where lines coincide, the
         * markers take turns along them, so each series shows */
        int j = 0, ndet = 0;
        for (int k = 0; k < nm; k++) ndet += has_det[k];
        for (int k = 0; k < nm; k++) {
            if (!has_det[k]) continue;
            fprintf(gp, "%s  '%s.dat' index %d using 1:4 with lines lt %d, \\\n"
                        "  '%s.dat' index %d using 1:4:5 every %d::%d with yerrorbars lt %d ps 1.1",
                    j ? ", \\\n" : "", name, k, k + 1, name, k, ndet, j, k + 1);
            j++;
        }
        fprintf(gp, "\n");
    }
    /* the legend: an empty plot across the figure's top, wide enough for two entries a line */
    plot_panel(gp, w, h, 0.05, w - 0.05, h - legend + 0.01, h - 0.01);
    /* gnuplot sizes a key column as if every character were about 1.5 times its mean width: take off
     * the surplus (a third of the longest title), or two titles of 20 characters would not share a line */
    size_t longest = 0;
    for (int k = 0; k < nm; k++) {
        plot_safe(models[k]);
        if (strlen(models[k]) > longest) longest = strlen(models[k]);
    }
    fprintf(gp, "unset xlabel\nunset ylabel\nunset tics\nunset border\nunset grid\n"
                "set key at screen 0.5, screen 1 center top horizontal maxcols 2 Left reverse width %d\nplot \\\n",
            -(int)(longest / 3));
    for (int k = 0; k < nm; k++) {
        fprintf(gp, "  NaN with linespoints lt %d title \"%s\"%s\n", k + 1, models[k], k + 1 < nm ? ", \\" : "");
    }
    fprintf(gp, "unset multiplot\n");
    rc = plot_finish(p, gp, name);
    gp = NULL;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    free(models), free(has_det);
    rp_groups_free(g, ng);
    return rc;
}

/* ------------------------------------------------------------------------- */

int rp_plots(const rp_file *f, const char *dir, FILE *log, int *have_gnuplot, ip_err *e) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return ip_fail(e, "cannot create %s: %s", dir, strerror(errno));
    plotctx p = {f, dir, log, find_gnuplot(), 0, e};
    *have_gnuplot = p.have_gnuplot;
    if (!p.have_gnuplot)
        fprintf(log, "report: gnuplot is not installed (make deps installs it): writing the .dat and .gp files "
                     "only; `gnuplot NAME.gp` in %s makes the PNG, PDF and SVG figures\n", dir);
    if (curve_plot(&p, "prune", "prune", "rate", "rate", "pruned weights (%)") ||
        curve_plot(&p, "flip", "flip", NULL, "fraction", "passport gammas with flipped sign (%)") ||
        plot_fake1(&p) || plot_fake1_joint(&p) || plot_ipguard_ru(&p) || plot_ipguard_attacks(&p) ||
        plot_ipguard_rates(&p) ||
        plot_ambiguity(&p))
        return -1;
    if (p.failed_gnuplot) return ip_fail(e, "gnuplot failed on some plots (see above)");
    return 0;
}
