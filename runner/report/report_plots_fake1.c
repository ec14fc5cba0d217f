/* fake1 plots (report_plots.h):
 *
 *   fake1-<model>.*         the fakes' accuracies, one series per full-mode row
 *                           attacking the model: log-y histogram, so the few best
 *                           fakes (the tail) show beside the real passport and the
 *                           acceptance threshold
 *   fake1-screen-<model>.*  the same for the screened rows, apart: a screened row's
 *                           rejected fake is measured on its first images only
 *                           (docs/passports.md), so its accuracies sit on multiples
 *                           of 1/images and do not compare with a full row's
 *   fake1-joint-<model>-<entry>-<key_type>.*  a row's fakes as a 2-D histogram of
 *                           accuracy against signature detection, the real passport
 *                           and both acceptance thresholds marked */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_plots.h"

#define HIST_BINS 100 /* 1-point bins of accuracy */
#define DET_BINS 50   /* 2-point bins of signature detection (small-p: 64..128 bits per layer) */

static int bin_of(double v, int bins) {
    int b = (int)floor(v * bins);
    return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

/* A screened row: mode=screen (rows without a mode are full). */
static int screened(const rp_file *f, const rp_group *g) {
    const char *mode = rp_param(f, g->tasks[0], "mode");
    return mode && !strcmp(mode, "screen");
}

static void model_of(const rp_file *f, const rp_group *g, char *out, size_t cap) {
    const char *mk = rp_param(f, g->tasks[0], "model");
    rp_key_label(f, mk ? mk : "?", out, cap);
}

/* One series of the histogram: a fake1 row over its seeds. */
typedef struct hist_row {
    int group;
    size_t total;
    double best, thr; /* the best fake's accuracy; the row's acceptance threshold (NaN: none) */
} hist_row;

/* The histogram of group g into h (% of its fakes per bin). Returns -1 on error. */
static int row_hist(plotctx *p, const rp_group *g, double *h, hist_row *r, double *real_sum, int *real_n) {
    memset(h, 0, HIST_BINS * sizeof *h);
    r->total = 0, r->best = -INFINITY;
    for (int t = 0; t < g->ndone; t++) {
        double *v, real = rp_metric(p->f, g->done[t], "real_acc");
        size_t n;
        if (rp_array(p->f, g->done[t], "fake_acc", &v, &n, p->e) != 0) return -1;
        for (size_t k = 0; k < n; k++) {
            h[bin_of(v[k], HIST_BINS)] += 1;
            if (v[k] > r->best) r->best = v[k];
        }
        r->total += n;
        free(v);
        if (!isnan(real)) *real_sum += real, (*real_n)++;
    }
    for (int b = 0; r->total && b < HIST_BINS; b++) h[b] *= 100.0 / (double)r->total;
    r->thr = plot_group_mean(p->f, g, "threshold");
    return 0;
}

/* Writes one histogram figure of the rows `rows` (groups of one model, all screened or all not). */
static int hist_figure(plotctx *p, const rp_group *g, const char *name, const char *model, int screen,
                       hist_row *rows, int nrows, const double *hist, double real) {
    FILE *d = plot_open(p, name, "dat");
    if (!d) return -1;
    fprintf(d, "# %s: one block per fake1 row; columns: accuracy bin centre (%%), passports in the bin (%% of "
               "the row's passports), over every seed of the row\n", name);
    double ymin = 100;
    for (int s = 0; s < nrows; s++) {
        fprintf(d, "%s# %s\n", s ? "\n\n" : "", g[rows[s].group].key);
        for (int b = 0; b < HIST_BINS; b++)
            fprintf(d, "%.1f %.6g\n", (b + 0.5) * 100.0 / HIST_BINS, hist[(size_t)s * HIST_BINS + b]);
        if (rows[s].total && 100.0 / (double)rows[s].total < ymin) ymin = 100.0 / (double)rows[s].total;
    }
    if (plot_close(p, d, name, "dat")) return -1;
    FILE *gp = plot_open(p, name, "gp");
    if (!gp) return -1;
    /* the plot area 1.8 in high; under it the x axis and the legend (one line per row, the real passport
     * and each threshold), which starts at the figure's left edge to have the whole width */
    int nkey = nrows + !isnan(real);
    for (int s = 0; s < nrows; s++) nkey += !isnan(rows[s].thr) && (s == 0 || rows[s].thr != rows[0].thr);
    double w = FIG_SINGLE, top = screen ? 0.42 : 0.28, ph = 1.8, axis = 0.45, line = 0.15;
    double h = top + ph + axis + line * nkey + 0.05;
    plot_begin(gp, name, w, h, "test accuracy (%)", "fakes (% of the row's, log)");
    plot_panel(gp, w, h, 0.6, w - 0.12, h - top - ph, h - top);
    char m[160], title[300];
    snprintf(m, sizeof m, "%s", model);
    plot_safe(m);
    /* "\\n": gnuplot's line break in the title */
    snprintf(title, sizeof title, "%s%s", m,
             screen ? ", screened rows\\n(a rejected fake: its first images only)"
                    : ", full mode (every fake on all eval_images)");
    /* log y: a single fake among thousands is a bar as visible as the bulk; the
     * axis starts half a fake below the smallest row's one fake */
    fprintf(gp,
            "set title \"%s\"\nset logscale y\nset yrange [%.6g:150]\nset format y \"%%g\"\n"
            "set xrange [-1:101]\nset xtics 0,20,100\nset boxwidth %g\n"
            "set style fill transparent solid 0.45 border\n"
            "set key at screen 0.02, screen %.4f left top Left reverse maxcols 1\n",
            title, ymin / 2, 100.0 / HIST_BINS, (h - top - ph - axis) / h);
    /* the real passport and the threshold(s) as vertical lines named in the legend (labels would collide:
     * they are a few points apart) */
    if (!isnan(real))
        fprintf(gp, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lw 1.5 dt 1 lc rgb \"black\" front\n",
                100 * real, 100 * real);
    double thr_done[16];
    int nthr = 0;
    for (int s = 0; s < nrows && nthr < 16; s++) {
        int seen = isnan(rows[s].thr);
        for (int k = 0; k < nthr && !seen; k++) seen = fabs(thr_done[k] - rows[s].thr) < 1e-9;
        if (seen) continue;
        thr_done[nthr++] = rows[s].thr;
        fprintf(gp, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lw 1.5 dt 2 lc rgb \"#D55E00\" front\n",
                100 * rows[s].thr, 100 * rows[s].thr);
    }
    fprintf(gp, "plot \\\n");
    for (int s = 0; s < nrows; s++) {
        int t0 = g[rows[s].group].tasks[0];
        const char *kt = rp_param(p->f, t0, "key_type");
        char ref[160] = "", series[320];
        const char *rk = rp_param(p->f, t0, "reference");
        if (rk && rk[0]) rp_key_label(p->f, rk, ref, sizeof ref);
        /* "<key type> keys[, ref. <model>]: n=<fakes>, best <accuracy>": one line of the column's width */
        char head[200], tail[80];
        if (kt) snprintf(head, sizeof head, "%s keys%s%s", kt, ref[0] ? ", ref. " : "", ref);
        else rp_label(p->f, t0, head, sizeof head);
        plot_safe(head);
        snprintf(tail, sizeof tail, "n=%zu, best %.1f%%", rows[s].total, 100 * rows[s].best);
        snprintf(series, sizeof series, "%s: %s", head, tail);
        fprintf(gp, "  '%s.dat' index %d using 1:($2 > 0 ? $2 : NaN) with boxes lt %d title \"%s\", \\\n", name, s,
                s + 1, series);
    }
    /* the fact the figure is for: how far the best fake is from the real passport, in accuracy points */
    double best = -INFINITY;
    for (int s = 0; s < nrows; s++)
        if (rows[s].best > best) best = rows[s].best;
    if (!isnan(real))
        fprintf(gp, "  NaN with lines lw 1.5 lc rgb \"black\" title \"real passport %.1f%%: best fake %.1f below"
                    "\"%s\n",
                100 * real, 100 * real - 100 * best, nthr ? ", \\" : "");
    for (int k = 0; k < nthr; k++)
        fprintf(gp, "  NaN with lines lw 1.5 dt 2 lc rgb \"#D55E00\" title \"acceptance threshold %.1f%%\"%s\n",
                100 * thr_done[k], k + 1 < nthr ? ", \\" : "");
    if (isnan(real) && !nthr) fprintf(gp, "  NaN notitle\n");
    return plot_finish(p, gp, name);
}

int plot_fake1(plotctx *p) {
    rp_group *g = NULL;
    int ng = 0, rc = -1;
    if (rp_groups(p->f, "fake1", &g, &ng, p->e) != 0) return -1;
    char *used = calloc((size_t)(ng ? ng : 1), 1);
    double *hist = malloc((size_t)(ng ? ng : 1) * HIST_BINS * sizeof *hist);
    hist_row *rows = malloc((size_t)(ng ? ng : 1) * sizeof *rows);
    if (!used || !hist || !rows) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    for (int i = 0; i < ng; i++) {
        if (used[i] || !g[i].ndone) continue;
        char model[160], m2[160];
        model_of(p->f, &g[i], model, sizeof model);
        int screen = screened(p->f, &g[i]);
        /* every row of this model and mode: one series each */
        int nrows = 0, real_n = 0;
        double real_sum = 0;
        for (int j = i; j < ng; j++) {
            if (used[j] || !g[j].ndone || screened(p->f, &g[j]) != screen) continue;
            model_of(p->f, &g[j], m2, sizeof m2);
            if (strcmp(model, m2)) continue;
            used[j] = 1;
            rows[nrows].group = j;
            if (row_hist(p, &g[j], hist + (size_t)nrows * HIST_BINS, &rows[nrows], &real_sum, &real_n) != 0)
                goto done;
            if (rows[nrows].total) nrows++;
        }
        if (!nrows) continue;
        char name[200];
        /* fake1-screen-<model> sorts after fake1-<model> (the HTML report shows figures in name order) */
        int at = snprintf(name, sizeof name, "fake1-%s", screen ? "screen-" : "");
        snprintf(name + at, sizeof name - (size_t)at, "%s", model);
        plot_file_safe(name + at);
        if (hist_figure(p, g, name, model, screen, rows, nrows, hist, real_n ? real_sum / real_n : NAN) != 0)
            goto done;
    }
    rc = 0;
done:
    free(used), free(hist), free(rows);
    rp_groups_free(g, ng);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* fake1: accuracy against signature detection, one 2-D histogram per row    */

/* Writes fake1-joint-<name>.dat/.gp for group g: fakes per (accuracy, detection) cell over its seeds. */
static int joint_plot(plotctx *p, const rp_group *g, const char *name, double *cells) {
    const rp_file *f = p->f;
    memset(cells, 0, (size_t)HIST_BINS * DET_BINS * sizeof *cells);
    size_t total = 0;
    double joint = 0;  /* the task's own count (the acceptance rule has one home: core/tasks/forge.c) */
    int has_joint = 0; /* files written before the joint criterion have none */
    double thr = plot_group_mean(f, g, "threshold"), dthr = plot_group_mean(f, g, "detect_threshold");
    for (int t = 0; t < g->ndone; t++) {
        double *a = NULL, *d = NULL;
        size_t na = 0, nd = 0;
        if (rp_array(f, g->done[t], "fake_acc", &a, &na, p->e) != 0) return -1;
        if (rp_array(f, g->done[t], "fake_detect", &d, &nd, p->e) != 0) {
            free(a);
            return -1;
        }
        /* screen mode: a stopped fake's accuracy is its first images' (docs/passports.md); said in the title */
        for (size_t k = 0; k < na && k < nd; k++)
            cells[(size_t)bin_of(a[k], HIST_BINS) * DET_BINS + (size_t)bin_of(d[k], DET_BINS)] += 1;
        double j = rp_metric(f, g->done[t], "accepted_joint");
        if (!isnan(j)) joint += j, has_joint = 1;
        total += na < nd ? na : nd;
        free(a), free(d);
    }
    if (!total) return 0;
    FILE *dat = plot_open(p, name, "dat");
    if (!dat) return -1;
    double most = 1;
    for (size_t c = 0; c < (size_t)HIST_BINS * DET_BINS; c++)
        if (cells[c] > most) most = cells[c];
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
    double ra = plot_group_mean(f, g, "real_acc"), rd = plot_group_mean(f, g, "real_detect");
    fprintf(dat, "\n\n# real passport\n%.6g %.6g\n", 100 * ra, 100 * rd);
    if (plot_close(p, dat, name, "dat")) return -1;
    FILE *gp = plot_open(p, name, "gp");
    if (!gp) return -1;
    char title[400], label[200];
    rp_key_label(f, g->key, label, sizeof label);
    int at = snprintf(title, sizeof title, "%s\\n%s%zu fakes", label, screened(f, g) ? "screened, " : "", total);
    if (has_joint && at > 0 && (size_t)at < sizeof title)
        snprintf(title + at, sizeof title - (size_t)at, ", %.0f accepted by both", joint);
    /* the title's line break is gnuplot's "\n": keep it through plot_safe */
    for (char *s = title; *s; s++)
        if (*s == '"' || *s == '\'') *s = '_';
    /* a square-ish plot area; the colour box and its labels to its right; the legend (the real passport,
     * the thresholds: 3 lines) under the x axis from the figure's left edge */
    double w = FIG_SINGLE, top = 0.42, ph = 2.0, axis = 0.45, h = top + ph + axis + 3 * 0.15 + 0.05;
    plot_begin(gp, name, w, h, "test accuracy (%)", "signature detection (%)");
    plot_panel(gp, w, h, 0.6, w - 0.85, h - top - ph, h - top);
    fprintf(gp, "set title \"%s\"\n"
                "set xrange [-1:101]\nset yrange [-2:102]\nset xtics 0,20,100\nset ytics 0,20,100\nunset grid\n"
                "set key at screen 0.02, screen %.4f left top Left reverse maxcols 1\n"
                "set logscale cb\nset cbrange [1:%.0f]\nset cblabel \"fakes in the cell\"\n"
                /* a single fake (the tail) must stand out from the white background: it gets the lightest colour */
                "set palette defined (0 \"#f0c000\", 0.35 \"#e0502a\", 0.7 \"#8a1a8a\", 1 \"#1a1040\")\n",
            title, (h - top - ph - axis) / h, most > 1 ? most : 2); /* a range even when every cell holds one */
    if (!isnan(thr))
        fprintf(gp, "set arrow from %.3f, graph 0 to %.3f, graph 1 nohead lw 1.5 dt 2 lc rgb \"#D55E00\" front\n",
                100 * thr, 100 * thr);
    if (!isnan(dthr))
        fprintf(gp, "set arrow from graph 0, first %.3f to graph 1, first %.3f nohead lw 1.5 dt 2 "
                    "lc rgb \"#0072B2\" front\n",
                100 * dthr, 100 * dthr);
    fprintf(gp, "plot '%s.dat' index 0 using 1:2:3 with image pixels notitle, \\\n"
                "  '%s.dat' index 1 using 1:2 with points pt 7 ps 1.2 lc rgb \"black\" title \"real passport "
                "(%.1f%%, %.0f%%)\"",
            name, name, 100 * ra, 100 * rd);
    if (!isnan(thr))
        fprintf(gp, ", \\\n  NaN with lines lw 1.5 dt 2 lc rgb \"#D55E00\" title \"accuracy threshold %.1f%%\"",
                100 * thr);
    if (!isnan(dthr))
        fprintf(gp, ", \\\n  NaN with lines lw 1.5 dt 2 lc rgb \"#0072B2\" title \"detection threshold %.0f%%\"",
                100 * dthr);
    fprintf(gp, "\n");
    return plot_finish(p, gp, name);
}

int plot_fake1_joint(plotctx *p) {
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
        plot_file_safe(name);
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
