/* The report's plots, shared by their files (report.h declares rp_plots):
 *
 *   report_plots.c           the figure machinery (outputs, gnuplot, sizes, colours) and
 *                            the curves against a parameter (prune, flip)
 *   report_plots_fake1.c     fake1: the fakes' accuracies (log-y histogram) and the joint
 *                            accuracy/detection histogram
 *   report_plots_ipguard.c   IPGuard: robustness/uniqueness per fingerprint, ARUC per attack family,
 *                            matching rates per suspect
 *   report_plots_ambiguity.c fake2/fake3/erb: accuracy and detection of the forged model
 *
 * Every plot is DIR/<plot>.dat (the numbers) and DIR/<plot>.gp (a gnuplot
 * script run from DIR) that writes DIR/<plot>.png, .pdf and .svg, all the
 * size the figure has in print (fig_size) so its fonts are FIG_FONT_PT there. */
#ifndef RN_REPORT_PLOTS_H
#define RN_REPORT_PLOTS_H

#include <stdio.h>

#include "report.h"

typedef struct plotctx {
    const rp_file *f;
    const char *dir;
    FILE *log;
    int have_gnuplot, failed_gnuplot;
    ip_err *e;
} plotctx;

/* The two print widths a figure is made for (docs/report.md lists which is which). */
#define FIG_SINGLE 3.3 /* inches: one column of a two-column paper */
#define FIG_DOUBLE 7.0 /* inches: the full text width */
#define FIG_FONT_PT 8  /* >= 7 pt at print size */

/* DIR/<name>.<ext> opened for writing (NULL and *e set on failure). */
FILE *plot_open(plotctx *p, const char *name, const char *ext);
/* Closes it; -1 and *e set when the writes failed. */
int plot_close(plotctx *p, FILE *f, const char *name, const char *ext);
/* The start of <name>.gp: the loop over PNG, PDF and SVG at w x h inches, the
 * shared colours and line styles, and the axis labels (NULL: none). The
 * script's body follows; plot_end closes the loop. */
void plot_begin(FILE *g, const char *name, double w, double h, const char *xlabel, const char *ylabel);
void plot_end(FILE *g);
/* Closes <name>.gp and runs gnuplot on it. Returns 0 or -1. */
int plot_finish(plotctx *p, FILE *g, const char *name);

/* gnuplot string literal contents: no quotes or backslashes. */
void plot_safe(char *s);
/* A file name from a label: [A-Za-z0-9._-], others '_'. */
void plot_file_safe(char *s);
/* The mean of a metric over a group's done tasks (NaN: none). */
double plot_group_mean(const rp_file *f, const rp_group *g, const char *metric);
/* A panel's plot area, in inches from the figure's bottom-left corner (of w x h
 * inches): fixed margins line panels up and keep room for their keys. */
void plot_panel(FILE *g, double w, double h, double x0, double x1, double y0, double y1);
/* A report table's cell (the tables' rows are RP_MAX_COLUMNS cells apart). */
const rp_cell *plot_cell(const rp_table *t, int r, int c);
/* " <v>" in the .dat files, " NaN" for NaN (gnuplot's word for a missing value). */
void plot_num(FILE *d, double v);
/* Column `csv` of a report table, or -1. */
int plot_table_col(const rp_table *t, const char *csv);

int plot_fake1(plotctx *p);
int plot_fake1_joint(plotctx *p);
int plot_ipguard_ru(plotctx *p);
int plot_ipguard_attacks(plotctx *p);
int plot_ipguard_rates(plotctx *p);
int plot_ambiguity(plotctx *p);

#endif
