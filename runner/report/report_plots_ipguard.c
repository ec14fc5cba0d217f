/* IPGuard plots (report_plots.h):
 *
 *   ipguard-ru.*       robustness and uniqueness against the matching-rate
 *                      threshold, one panel per fingerprint (mean over its seeds),
 *                      the ARUC area (under the lower of the two) shaded and its
 *                      value (exact, from the summary) in the panel's legend
 *   ipguard-attacks.*  ARUC and ROC AUC per attack family of the pirated copies,
 *                      one bar per fingerprint (IPGuard k=..., CAE): the report
 *                      table ipguard-attacks drawn
 *   ipguard-rates.*    the matching rate of every suspect row (ipguard-suspects),
 *                      one panel per fingerprint, by attack family, against the
 *                      independent models and the chosen threshold */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_plots.h"

#define RU_COLS 4 /* panels per row at double-column width */

int plot_ipguard_ru(plotctx *p) {
    const rp_file *f = p->f;
    if (!f->has_ipguard || !f->ig_ncurves || !f->ig_npoints) return 0;
    const rp_col *key = rp_tab_col(&f->ig_summary, "fingerprint_key"), *kc = rp_tab_col(&f->ig_summary, "k");
    const rp_col *ac = rp_tab_col(&f->ig_summary, "aruc");
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
    if (!(d = plot_open(p, name, "dat"))) goto done;
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
    int rcd = plot_close(p, d, name, "dat");
    d = NULL;
    if (rcd) goto done;
    if (!(gp = plot_open(p, name, "gp"))) goto done;
    /* one panel: a column wide; more: rows of RU_COLS panels across the page */
    int cols = ng < RU_COLS ? ng : RU_COLS, rows = (ng + cols - 1) / cols;
    /* the legend strip: one line across the page; a column wide, one entry a line */
    double w = ng == 1 ? FIG_SINGLE : FIG_DOUBLE, left = 0.5, right = 0.1, gap = 0.18, legend = ng == 1 ? 0.5 : 0.22;
    double top = 0.4, plot_h = 1.35, bottom = 0.5, row_h = top + plot_h + bottom, h = legend + rows * row_h;
    double pw = (w - left - right - (cols - 1) * gap) / cols;
    plot_begin(gp, name, w, h, "matching-rate threshold", NULL);
    fprintf(gp, "# axes padded so that curves at 0 and 1 stay off the frame\n"
                "set xrange [-0.03:1.03]\nset yrange [-0.04:1.04]\nset xtics 0,0.5,1\nset ytics 0,0.5,1\n"
                "set multiplot\n");
    for (int k = 0; k < ng; k++) {
        int row = k / cols, col = k % cols;
        double x0 = left + col * (pw + gap), y1 = h - legend - row * row_h - top;
        plot_panel(gp, w, h, x0, x0 + pw, y1 - plot_h, y1);
        char title[220];
        size_t r0 = 0;
        while (grp[r0] != k) r0++;
        /* the label names k when it is swept; otherwise say it (a CAE fingerprint has none: NaN) */
        if (kc && !kc->is_str && !strstr(labels[k], "k=") && !isnan(kc->v[r0]))
            snprintf(title, sizeof title, "%s, k=%g", labels[k], kc->v[r0]);
        else snprintf(title, sizeof title, "%s", labels[k]);
        plot_safe(title);
        /* the area of the group (mean over its seeds), exact from the summary, beside the sampled curves */
        double as = 0;
        int na = 0;
        for (size_t r = 0; r < n; r++)
            if (grp[r] == k && ac && !ac->is_str && !isnan(ac->v[r])) as += ac->v[r], na++;
        char area[64] = "ARUC";
        if (na) snprintf(area, sizeof area, "ARUC %.3f", as / na);
        /* the panel's key (above it, under its title) names its area; the curves' styles are in the top strip */
        fprintf(gp, "set title \"%s\" offset 0,0.9\nset key at graph 0.5, graph 1.01 center bottom horizontal\n",
                title);
        if (col) fprintf(gp, "unset ylabel\nset format y \"\"\n");
        else fprintf(gp, "set ylabel \"fraction of suspects\"\nset format y \"%%g\"\n");
        fprintf(gp,
                "plot '%s.dat' index %d using 1:($2 < $3 ? $2 : $3) with filledcurves y1=0 "
                "fs transparent solid 0.3 noborder lc rgb \"#0072B2\" title \"%s\", \\\n"
                "  '%s.dat' index %d using 1:2 with lines lt 1 notitle, \\\n"
                "  '%s.dat' index %d using 1:3 with lines lt 2 dt 2 notitle\n",
                name, k, area, name, k, name, k);
    }
    /* the legend strip: an empty plot whose key is the figure's top line */
    plot_panel(gp, w, h, left, w - right, h - legend + 0.01, h - 0.01);
    fprintf(gp, "unset title\nunset xlabel\nunset ylabel\nunset tics\nunset border\nunset grid\n"
                "set key at screen 0.5, screen 1 center top %s\n"
                "plot NaN with lines lt 1 title \"robustness\", NaN with lines lt 2 dt 2 title \"uniqueness\", "
                "NaN with boxes fs transparent solid 0.3 noborder lc rgb \"#0072B2\" "
                "title \"ARUC: area under both\"\n",
            ng == 1 ? "vertical maxcols 1" : "horizontal maxrows 1");
    fprintf(gp, "unset multiplot\n");
    rc = plot_finish(p, gp, name);
    gp = NULL;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    free(labels), free(grp);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* ARUC and ROC AUC per attack family (the ipguard-attacks table)            */

int plot_ipguard_attacks(plotctx *p) {
    rp_table t;
    if (rp_build_table(p->f, "ipguard-attacks", &t, p->e) != 0) return -1;
    int cfp = plot_table_col(&t, "fingerprint"), cat = plot_table_col(&t, "attack"), car = plot_table_col(&t, "aruc"),
        cro = plot_table_col(&t, "roc_auc"), rc = -1;
    char(*fps)[160] = calloc((size_t)(t.nrows ? t.nrows : 1), sizeof *fps);
    char(*fams)[160] = calloc((size_t)(t.nrows ? t.nrows : 1), sizeof *fams);
    FILE *d = NULL, *gp = NULL;
    const char *name = "ipguard-attacks";
    if (!fps || !fams) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    if (!t.nrows || cfp < 0 || cat < 0 || car < 0) {
        rc = 0;
        goto done;
    }
    int nfp = 0, nfam = 0;
    for (int r = 0; r < t.nrows; r++) {
        const char *fp = plot_cell(&t, r, cfp)->text, *fam = plot_cell(&t, r, cat)->text;
        int k = 0;
        while (k < nfp && strcmp(fps[k], fp)) k++;
        if (k == nfp) snprintf(fps[nfp++], sizeof fps[0], "%s", fp);
        k = 0;
        while (k < nfam && strcmp(fams[k], fam)) k++;
        if (k == nfam) snprintf(fams[nfam++], sizeof fams[0], "%s", fam);
    }
    if (!(d = plot_open(p, name, "dat"))) goto done;
    fprintf(d, "# %s: one block per fingerprint; columns: attack family (index), ARUC, its std, ROC AUC, its std "
               "(NaN: none); mean and std over the fingerprints of a row (the ipguard-attacks table); families:",
            name);
    for (int k = 0; k < nfam; k++) fprintf(d, " %d=%s", k, fams[k]);
    fprintf(d, "\n");
    for (int k = 0; k < nfp; k++) {
        fprintf(d, "%s# %s\n", k ? "\n\n" : "", fps[k]);
        for (int r = 0; r < t.nrows; r++) {
            if (strcmp(plot_cell(&t, r, cfp)->text, fps[k])) continue;
            int fam = 0;
            while (strcmp(fams[fam], plot_cell(&t, r, cat)->text)) fam++;
            rp_stat a = plot_cell(&t, r, car)->a, o = cro >= 0 ? plot_cell(&t, r, cro)->a : (rp_stat){NAN, NAN, 0};
            fprintf(d, "%d", fam);
            plot_num(d, a.n ? a.mean : NAN), plot_num(d, a.n ? a.std : NAN);
            plot_num(d, o.n ? o.mean : NAN), plot_num(d, o.n ? o.std : NAN);
            fprintf(d, "\n");
        }
    }
    int rcd = plot_close(p, d, name, "dat");
    d = NULL;
    if (rcd) goto done;
    if (!(gp = plot_open(p, name, "gp"))) goto done;
    /* the families along x, a bar per fingerprint; ARUC above, ROC AUC below; the legend on top */
    int npanel = cro >= 0 ? 2 : 1;
    double w = FIG_DOUBLE, left = 0.6, right = 0.1, legend = 0.08 + 0.17 * ((nfp + 3) / 4);
    double ph = 1.3, gap = 0.32, bottom = 0.45, h = legend + 0.08 + npanel * ph + (npanel - 1) * gap + bottom;
    double bw = 0.8 / nfp;
    plot_begin(gp, name, w, h, NULL, NULL);
    fprintf(gp, "set xrange [-0.5:%d.5]\nset yrange [0:1.08]\nset ytics 0,0.5,1\nset mytics 2\n"
                "set grid noxtics ytics mytics\n"
                "set style fill solid 0.85 border lc rgb \"#333333\"\nset errorbars lc rgb \"#333333\" lw 0.8\n"
                "set boxwidth %.4f absolute\nset xtics (",
            nfam - 1, bw);
    for (int k = 0; k < nfam; k++) {
        plot_safe(fams[k]);
        fprintf(gp, "%s\"%s\" %d", k ? ", " : "", fams[k], k);
    }
    fprintf(gp, ") scale 0\nset multiplot\n");
    const char *what[2][2] = {{"ARUC (paper)", "2:3"}, {"ROC AUC", "4:5"}};
    for (int pn = 0; pn < npanel; pn++) {
        double y1 = h - legend - 0.08 - pn * (ph + gap);
        plot_panel(gp, w, h, left, w - right, y1 - ph, y1);
        fprintf(gp, "set ylabel \"%s\"\n", what[pn][0]);
        if (pn + 1 < npanel) fprintf(gp, "set format x \"\"\n");
        else fprintf(gp, "set format x \"%%g\"\nset xlabel \"attack family of the pirated copies\"\n");
        if (pn == 0) fprintf(gp, "set key at screen 0.5, screen 1 center top horizontal maxcols 4\n");
        else fprintf(gp, "unset key\n");
        fprintf(gp, "plot \\\n");
        for (int k = 0; k < nfp; k++) {
            char title[160];
            snprintf(title, sizeof title, "%s", fps[k]);
            plot_safe(title);
            fprintf(gp, "  '%s.dat' index %d using ($1 + %.4f):%s with boxerrorbars lt %d fc lt %d title \"%s\"%s\n",
                    name, k, (k - (nfp - 1) / 2.0) * bw, what[pn][1], k + 1, k + 1, title,
                    k + 1 < nfp ? ", \\" : "");
        }
    }
    fprintf(gp, "unset multiplot\n");
    rc = plot_finish(p, gp, name);
    gp = NULL;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    free(fps), free(fams);
    rp_table_free(&t);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* matching rates per suspect, by attack family (the ipguard-suspects table)  */

#define RATE_CATS 32 /* attack families shown; more are pooled into the last */

/* One panel per fingerprint (as ipguard-ru): a row per attack family of the
 * pirated copies and one for the independent models, each suspect row of the
 * table a dot (mean over seeds, std as error bar; dots of one row of the
 * figure spread vertically so equal rates stay apart), the fingerprint's
 * chosen threshold dashed. Where a family's copies fall against the
 * independent models is what the ARUC of ipguard-attacks sums up. */
int plot_ipguard_rates(plotctx *p) {
    rp_table t, s;
    if (rp_build_table(p->f, "ipguard-suspects", &t, p->e) != 0) return -1;
    if (rp_build_table(p->f, "ipguard", &s, p->e) != 0) {
        rp_table_free(&t);
        return -1;
    }
    int cfp = plot_table_col(&t, "fingerprint"), ckind = plot_table_col(&t, "suspect_kind"),
        crel = plot_table_col(&t, "relation"), crate = plot_table_col(&t, "match_rate"),
        sfp = plot_table_col(&s, "fingerprint"), sthr = plot_table_col(&s, "threshold"), rc = -1;
    char(*fps)[160] = calloc((size_t)(t.nrows ? t.nrows : 1), sizeof *fps);
    char cats[RATE_CATS][160];
    int *seen = calloc((size_t)RATE_CATS * (size_t)(t.nrows ? t.nrows : 1), sizeof *seen);
    FILE *d = NULL, *gp = NULL;
    const char *name = "ipguard-rates";
    if (!fps || !seen) {
        ip_fail(p->e, "out of memory");
        goto done;
    }
    if (!t.nrows || cfp < 0 || ckind < 0 || crel < 0 || crate < 0) {
        rc = 0;
        goto done;
    }
    /* the categories: the pirated copies' families in table order, then the independent models */
    int nfp = 0, ncat = 0;
    for (int r = 0; r < t.nrows; r++) {
        const char *fp = plot_cell(&t, r, cfp)->text;
        int k = 0;
        while (k < nfp && strcmp(fps[k], fp)) k++;
        if (k == nfp) snprintf(fps[nfp++], sizeof fps[0], "%s", fp);
        if (strcmp(plot_cell(&t, r, crel)->text, "pirated")) continue;
        const char *kind = plot_cell(&t, r, ckind)->text;
        k = 0;
        while (k < ncat && strcmp(cats[k], kind)) k++;
        if (k == ncat && ncat < RATE_CATS - 1) snprintf(cats[ncat++], sizeof cats[0], "%s", kind);
    }
    snprintf(cats[ncat++], sizeof cats[0], "independent");
    if (!(d = plot_open(p, name, "dat"))) goto done;
    fprintf(d, "# %s: one block per fingerprint; columns: row of the figure (category + spread), matching rate "
               "(%%, mean over seeds), its std, relation (1 pirated, 2 independent); categories:", name);
    for (int c = 0; c < ncat; c++) fprintf(d, " %d=%s", c, cats[c]);
    fprintf(d, "\n");
    for (int k = 0; k < nfp; k++) {
        fprintf(d, "%s# %s\n", k ? "\n\n" : "", fps[k]);
        int *count = seen + (size_t)k * RATE_CATS, total[RATE_CATS] = {0};
        /* first pass: the dots per category, so they can be spread evenly */
        for (int pass = 0; pass < 2; pass++)
            for (int r = 0; r < t.nrows; r++) {
                if (strcmp(plot_cell(&t, r, cfp)->text, fps[k])) continue;
                const char *rel = plot_cell(&t, r, crel)->text;
                int indep = !strcmp(rel, "independent"), c = ncat - 1;
                if (!indep && strcmp(rel, "pirated")) continue; /* self: 100% by construction */
                if (!indep) {
                    c = 0;
                    while (c < ncat - 2 && strcmp(cats[c], plot_cell(&t, r, ckind)->text)) c++;
                }
                if (!pass) {
                    total[c]++;
                    continue;
                }
                rp_stat m = plot_cell(&t, r, crate)->a;
                double spread = total[c] > 1 ? 0.64 / (total[c] - 1) : 0;
                fprintf(d, "%.4f", c - 0.32 * (total[c] > 1) + spread * count[c]++);
                plot_num(d, m.n ? 100 * m.mean : NAN), plot_num(d, m.n ? 100 * m.std : NAN);
                fprintf(d, " %d\n", indep ? 2 : 1);
            }
    }
    int rcd = plot_close(p, d, name, "dat");
    d = NULL;
    if (rcd) goto done;
    if (!(gp = plot_open(p, name, "gp"))) goto done;
    for (int c = 0; c < ncat; c++) plot_safe(cats[c]); /* gnuplot strings from here on */
    int cols = nfp < RU_COLS ? nfp : RU_COLS, rows = (nfp + cols - 1) / cols;
    double w = nfp == 1 ? FIG_SINGLE : FIG_DOUBLE, left = 0.85, right = 0.1, gap = 0.15;
    double legend = nfp == 1 ? 0.5 : 0.22; /* as in ipguard-ru */
    double top = 0.25, plot_h = 0.22 * ncat + 0.2, bottom = 0.45, row_h = top + plot_h + bottom;
    double h = legend + rows * row_h, pw = (w - left - right - (cols - 1) * gap) / cols;
    plot_begin(gp, name, w, h, "matching rate (%)", NULL);
    fprintf(gp, "set xrange [-4:104]\nset xtics 0,50,100\nset yrange [%d.5:-0.5]\nset grid xtics noytics\n"
                "set multiplot\n", ncat - 1);
    for (int k = 0; k < nfp; k++) {
        int row = k / cols, col = k % cols;
        double x0 = left + col * (pw + gap), y1 = h - legend - row * row_h - top;
        plot_panel(gp, w, h, x0, x0 + pw, y1 - plot_h, y1);
        char title[160];
        snprintf(title, sizeof title, "%s", fps[k]);
        plot_safe(title);
        fprintf(gp, "set title \"%s\"\nunset key\nunset arrow\n", title);
        /* the categories name the rows of the first panel of a row of panels */
        if (col) fprintf(gp, "unset ytics\n");
        else {
            fprintf(gp, "set ytics scale 0 (");
            for (int c = 0; c < ncat; c++) fprintf(gp, "%s\"%s\" %d", c ? ", " : "", cats[c], c);
            fprintf(gp, ")\n");
        }
        /* the fingerprint's chosen threshold (mean over its seeds), from the ipguard table */
        for (int r = 0; sfp >= 0 && sthr >= 0 && r < s.nrows; r++) {
            rp_stat th = plot_cell(&s, r, sthr)->a;
            if (!strcmp(plot_cell(&s, r, sfp)->text, fps[k]) && th.n)
                fprintf(gp, "set arrow from %.4g, graph 0 to %.4g, graph 1 nohead dt 2 lw 1 lc rgb \"black\"\n",
                        100 * th.mean, 100 * th.mean);
        }
        fprintf(gp, "plot '%s.dat' index %d using ($4 == 2 ? $2 : NaN):1:3 with xerrorbars pt 6 ps 0.7 "
                    "lc rgb \"#999999\", \\\n"
                    "  '%s.dat' index %d using ($4 == 1 ? $2 : NaN):1:3 with xerrorbars lt 2 pt 7 ps 0.7\n",
                name, k, name, k);
    }
    /* the legend strip, as in ipguard-ru */
    plot_panel(gp, w, h, left, w - right, h - legend + 0.01, h - 0.01);
    fprintf(gp, "unset title\nunset xlabel\nunset ylabel\nunset tics\nunset border\nunset grid\nunset arrow\n"
                "set key at screen 0.5, screen 1 center top %s\n"
                "plot NaN with points lt 2 pt 7 ps 0.7 title \"pirated copy\", "
                "NaN with points pt 6 ps 0.7 lc rgb \"#999999\" title \"independent model\", "
                "NaN with lines dt 2 lw 1 lc rgb \"black\" title \"chosen threshold\"\n"
                "unset multiplot\n",
            nfp == 1 ? "vertical maxcols 1" : "horizontal maxrows 1");
    rc = plot_finish(p, gp, name);
    gp = NULL;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    free(fps), free(seen);
    rp_table_free(&t), rp_table_free(&s);
    return rc;
}
