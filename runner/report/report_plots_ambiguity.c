/* ambiguity.* (report_plots.h): the ambiguity attacks (fake2, fake3, erb), one
 * row per attack setting as in the report table `ambiguity`: accuracy with the
 * real passport and with the forgery (left panel), detection of the owner's
 * signature in the forged model and of the attacker's target (right panel),
 * chance (50%) marked. Horizontal bars: the settings are read as text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_plots.h"

int plot_ambiguity(plotctx *p) {
    rp_table t;
    if (rp_build_table(p->f, "ambiguity", &t, p->e) != 0) return -1;
    int cm = plot_table_col(&t, "model"), ca = plot_table_col(&t, "attack"), cs = plot_table_col(&t, "setting"),
        cols[4] = {plot_table_col(&t, "real_acc"), plot_table_col(&t, "forged_acc"),
                   plot_table_col(&t, "owner_detect"), plot_table_col(&t, "target_detect")},
        rc = -1;
    FILE *d = NULL, *gp = NULL;
    const char *name = "ambiguity";
    if (!t.nrows || cm < 0 || ca < 0) {
        rc = 0;
        goto done;
    }
    if (!(d = plot_open(p, name, "dat"))) goto done;
    fprintf(d, "# %s: one line per row of the ambiguity table; columns: row, real acc. (%%), its std, forged acc., "
               "its std, owner det., its std, target det., its std (NaN: none), then the row's label\n", name);
    size_t longest = 0;
    for (int r = 0; r < t.nrows; r++) {
        fprintf(d, "%d", r);
        for (int c = 0; c < 4; c++) {
            rp_stat s = cols[c] >= 0 ? plot_cell(&t, r, cols[c])->a : (rp_stat){NAN, NAN, 0};
            plot_num(d, s.n ? 100 * s.mean : NAN), plot_num(d, s.n ? 100 * s.std : NAN);
        }
        const char *set = cs >= 0 ? plot_cell(&t, r, cs)->text : "";
        char label[520];
        snprintf(label, sizeof label, "%s %s%s%s", plot_cell(&t, r, cm)->text, plot_cell(&t, r, ca)->text,
                 set[0] ? " " : "", set);
        plot_safe(label);
        if (strlen(label) > longest) longest = strlen(label);
        fprintf(d, " \"%s\"\n", label);
    }
    int rcd = plot_close(p, d, name, "dat");
    d = NULL;
    if (rcd) goto done;
    if (!(gp = plot_open(p, name, "gp"))) goto done;
    /* the labels take the left margin (about 0.062 in a character at FIG_FONT_PT); each row 0.16 in; each
     * panel's legend above it (up to three lines) */
    double w = FIG_DOUBLE, left = 0.2 + 0.062 * (double)longest, right = 0.1, gap = 0.2, legend = 0.53, bottom = 0.42;
    if (left > 3.2) left = 3.2;
    double ph = 0.16 * t.nrows + 0.1, h = legend + ph + bottom, pw = (w - left - right - gap) / 2;
    plot_begin(gp, name, w, h, NULL, NULL);
    fprintf(gp,
            "# the first row on top\nset yrange [%d.6:-0.6]\nset xrange [-2:102]\nset xtics 0,20,100\n"
            "set grid xtics noytics\nset ytics scale 0\nset style fill solid 0.85 noborder\n"
            "set multiplot\n",
            t.nrows - 1);
    /* two bars a row: the first in the upper half, the second in the lower; their std as error bars; the value
     * as the nominal x, so a missing one (NaN) draws no bar */
    const char *bars = "'%s.dat' using %d:1:(0):%d:($1 - 0.42):($1 - 0.02)%s with boxxyerror lt %d title \"%s\", \\\n"
                       "  '%s.dat' using %d:1:(0):%d:($1 + 0.02):($1 + 0.42) with boxxyerror lt %d title \"%s\", \\\n"
                       "  '%s.dat' using %d:($1 - 0.22):%d with xerrorbars pt -1 lc rgb \"#333333\" lw 0.8 "
                       "notitle, \\\n"
                       "  '%s.dat' using %d:($1 + 0.22):%d with xerrorbars pt -1 lc rgb \"#333333\" lw 0.8 notitle";
    plot_panel(gp, w, h, left, left + pw, bottom, bottom + ph);
    fprintf(gp, "set xlabel \"test accuracy (%%)\"\nset key at screen %.4f, screen 1 center top horizontal\nplot ",
            (left + pw / 2) / w);
    fprintf(gp, bars, name, 2, 2, ":ytic(10)", 8, "real passport", name, 4, 4, 2, "forged", name, 2, 3, name, 4, 5);
    fprintf(gp, "\n");
    double x0 = left + pw + gap;
    plot_panel(gp, w, h, x0, x0 + pw, bottom, bottom + ph);
    fprintf(gp, "set xlabel \"signature detection (%%)\"\nset format y \"\"\n"
                "set key at screen %.4f, screen 1 center top horizontal maxcols 2\n"
                "set arrow from 50, graph 0 to 50, graph 1 nohead dt 2 lw 1 lc rgb \"black\"\nplot ",
            (x0 + pw / 2) / w);
    fprintf(gp, bars, name, 6, 6, "", 1, "owner's signature", name, 8, 8, 3, "attacker's target", name, 6, 7, name, 8,
            9);
    fprintf(gp, ", \\\n  NaN with lines dt 2 lw 1 lc rgb \"black\" title \"chance (50%%)\"\nunset multiplot\n");
    rc = plot_finish(p, gp, name);
    gp = NULL;
done:
    if (d) fclose(d);
    if (gp) fclose(gp);
    rp_table_free(&t);
    return rc;
}
