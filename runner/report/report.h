/* `ipsweep report`: paper-style tables and gnuplot plots from a results file
 * (docs/report.md). Four pieces, one job each:
 *
 *   report_data.c     the results file -> memory (rp_file): tasks, parameters,
 *                     scalar metrics, metric arrays, the IPGuard group; seed-free
 *                     task groups (rp_groups)
 *   report_tables.c   rp_file -> tables (rp_table): cells with mean/std/n
 *   report_format.c   rp_table -> markdown, LaTeX or CSV text
 *   report_plots*.c   rp_file -> DIR/<plot>.dat + .gp, and .pdf/.svg/.png figures
 *                     through gnuplot (report_plots.h)
 *   report_html.c     rp_file + tables + plots -> one self-contained HTML page
 *   report_compare.c  the tables of several files -> one table, rows matched,
 *                     a column group per run (`report A.h5 B.h5`)
 *   report.c          the command (options, --help, exit codes)
 *
 * Everything printed is a pure function of the file: no paths, times or
 * host names, and every ordering is task-id order. */
#ifndef RN_REPORT_H
#define RN_REPORT_H

#include <stddef.h>
#include <stdio.h>

#include "../../core/util/err.h"
#include "../../core/io/provenance.h"

/* ------------------------------------------------------------------------- */
/* reading (report_data.c)                                                   */

/* One HDF5 group of equal-length 1-D datasets, every column as text or as
 * double (integers are converted; exact up to 2^53). */
typedef struct rp_col {
    char name[64];
    int is_str;
    char **s;   /* is_str: nrows strings */
    double *v;  /* otherwise: nrows values */
} rp_col;

typedef struct rp_tab {
    char name[64];   /* the kind for /params/<kind> and /metrics/<kind> */
    size_t nrows;
    int ncols;
    rp_col *cols;
} rp_tab;

const rp_col *rp_tab_col(const rp_tab *t, const char *name);

/* A group of tasks that differ only in seeds: the same kind and task key once
 * every `seed=` and `shard=` entry is removed from it and from the keys of the
 * models it references (rp_strip_key). Sharded fake1 tasks are left out: only
 * their merge task (shard "all") or unsharded tasks count. */
typedef struct rp_group {
    char *key;         /* the stripped key, "prune:pruned[rate=0.3]<train:base>" */
    int *tasks;        /* task ids, ascending */
    int ntasks, ndone; /* ndone: tasks with status done (their ids first in done[]) */
    int *done;
} rp_group;

typedef struct rp_file {
    char spec_name[256], software[256];
    int in_progress;
    int has_provenance;              /* the file has /provenance (older files do not) */
    ip_provenance provenance;        /* its attributes ("" where missing) */
    long long total, ndone, nfailed, nskipped, nrunning, npending;
    long long ninterrupted;   /* absent (0) in files written before tasks could be interrupted */
    int ntasks;
    char **key, **kind, **name, **status, **deps; /* per task id */
    int has_params;                  /* 0: an older file, parameters from /tasks param_* (swept ones only) */
    rp_tab tasks;
    rp_tab *params, *metrics;        /* one per kind */
    int nparams, nmetrics;
    int *prow, *mrow;                /* per task: row in its kind's params / metrics table, -1 if none */
    int *ptab, *mtab;                /* per task: index into params[] / metrics[], -1 if none */
    int *by_key;                     /* task ids sorted by key (rp_find_key) */
    long long hid;                   /* the open HDF5 file (hid_t), for arrays */
    int has_ipguard;
    rp_tab ig_suspects, ig_summary;
    size_t ig_npoints, ig_ncurves;   /* thresholds, rows of robustness/uniqueness */
    double *ig_thresholds, *ig_robustness, *ig_uniqueness;
} rp_file;

/* Opens and reads the results file (root attributes, /tasks, /params,
 * /metrics, /ipguard); arrays are read on demand. Returns 0 or -1. */
int rp_open(rp_file *f, const char *path, ip_err *e);
void rp_close(rp_file *f);

/* A task's parameter as text; NULL when the task has no such parameter (or
 * the file does not record it; "" in the file counts as absent). "model"/"reference" are task keys. */
const char *rp_param(const rp_file *f, int task, const char *name);
/* A done task's scalar metric; NaN when absent. */
double rp_metric(const rp_file *f, int task, const char *name);
/* A done task's metric array (malloc'ed into *v, *n values; *v = NULL, *n = 0
 * when it has none). */
int rp_array(const rp_file *f, int task, const char *metric, double **v, size_t *n, ip_err *e);
/* 1 when the done groups come from more than one spec entry (task name):
 * then a table or plot of them must say which entry a row is from. */
int rp_names_vary(const rp_file *f, const rp_group *g, int ng);
/* The id of the task with this key, or -1. */
int rp_find_key(const rp_file *f, const char *key);
/* The task a model-valued parameter ("model", "reference") refers to, or -1. */
int rp_ref(const rp_file *f, int task, const char *param);

/* The key without `seed=`/`shard=` entries (here and in referenced keys);
 * brackets left empty disappear. Returns a malloc'ed string or NULL (OOM). */
char *rp_strip_key(const char *key);
/* A short label for a task: its stripped key without the "kind:" prefix,
 * e.g. "pv1" or "pruned[rate=0.3]<base>" (references stripped of kinds too). */
void rp_label(const rp_file *f, int task, char *out, size_t cap);
/* The same label from a key (of a task in the file or not). */
void rp_key_label(const rp_file *f, const char *key, char *out, size_t cap);

/* The seed-free groups of one kind, in order of their first task. Returns 0
 * or -1; *out is NULL when there are none. */
int rp_groups(const rp_file *f, const char *kind, rp_group **out, int *n, ip_err *e);
void rp_groups_free(rp_group *g, int n);

/* ------------------------------------------------------------------------- */
/* tables (report_tables.c)                                                  */

typedef enum {
    RP_TEXT,  /* text */
    RP_STAT,  /* mean ± std over n values */
    RP_PAIR,  /* "a (b)": detection (accuracy); just "b" when a has no values */
    RP_NUM,   /* one number (a sum, a min, ...), no std */
    RP_COUNT, /* done tasks of planned: "2" or "1/2" */
} rp_kind;

typedef struct rp_stat {
    double mean, std; /* std: sample standard deviation (n - 1), 0 when n == 1 */
    int n;            /* 0: no value */
} rp_stat;

typedef struct rp_cell {
    char text[160];
    rp_stat a, b;     /* RP_STAT/RP_NUM: a; RP_PAIR: a (b); RP_COUNT: a.n done of b.n */
    int partial;      /* some tasks of this cell are not done: marked "*" */
} rp_cell;

typedef struct rp_column {
    char name[48];    /* header */
    char csv[48];     /* CSV column name (mean; "<csv>_std" follows for stats) */
    rp_kind kind;
    double scale;     /* shown value = value x scale (100 for percentages) */
    int decimals;
    char group[48];   /* the column group ("" for none): a run's label in a comparison (report_compare.c) */
} rp_column;

/* 48: the identity columns plus fake1's 11 number columns for 3 runs compared */
#define RP_MAX_COLUMNS 48

typedef struct rp_table {
    char name[32];    /* --table name */
    char title[160];
    char note[512];   /* one line under the title, "" for none */
    int ncols, nrows;
    rp_column cols[RP_MAX_COLUMNS];
    rp_cell *cells;   /* nrows x ncols */
    int any_partial;
    int waiting;      /* rows (groups) without a done task yet: not shown, counted in the note */
} rp_table;

/* The table names, in report order. */
extern const char *const rp_table_names[];
extern const int rp_ntable_names;

/* Builds table `name` (a name of rp_table_names) from f. A table without
 * data has nrows = 0 (and waiting > 0 when its tasks are still to come).
 * Returns 0 or -1. */
int rp_build_table(const rp_file *f, const char *name, rp_table *t, ip_err *e);
void rp_table_free(rp_table *t);

/* Aggregates values (NaN skipped) to mean and sample std. */
rp_stat rp_stat_of(const double *v, int n);

/* One table of several runs (report_compare.c): runs[i] is table `name` of run
 * i (labels[i]). Rows are matched by their text columns (the row's identity;
 * the k-th row of an identity with the k-th), in the order of the first run
 * that has them; the number columns (every run's union, by CSV name) are
 * repeated per run, grouped by run (rp_column.group = its label), empty where
 * a run has no such row or column. Returns 0 or -1 (too many columns). */
int rp_compare(const rp_table *runs, int nruns, const char *const *labels, rp_table *out, ip_err *e);

/* ------------------------------------------------------------------------- */
/* output (report_format.c, report_plots.c)                                  */

typedef enum { RP_MD, RP_LATEX, RP_CSV } rp_format;

/* The header (spec name, software, task counts; in-progress notice). CSV prints nothing. */
void rp_write_header(FILE *out, const rp_file *f, rp_format fmt);
/* The header of a comparison: each run's label, spec, task counts and provenance. */
void rp_write_compare_header(FILE *out, const rp_file *const *f, const char *const *labels, int n, rp_format fmt);
/* One table. `alone`: the only table of the output (CSV then has no "# name" line). */
void rp_write_table(FILE *out, const rp_table *t, rp_format fmt, int alone);

/* A cell as display text (report_format.c), `pm` the ± text, `none` for no value. */
void rp_cell_text(char *out, size_t cap, const rp_cell *x, const rp_column *c, const char *pm, const char *none);
/* The note under a table with rows marked "*" (report_format.c). */
extern const char *const rp_partial_note;

/* Writes DIR/<plot>.dat and .gp for every plot the file has data for and runs
 * gnuplot on each .gp when it is installed, which draws DIR/<plot>.pdf, .svg
 * and .png at the figure's print size (docs/report.md, "Plots";
 * *have_gnuplot says whether it was; messages about the plots go to `log`).
 * Returns 0 or -1. */
int rp_plots(const rp_file *f, const char *dir, FILE *log, int *have_gnuplot, ip_err *e);

/* ------------------------------------------------------------------------- */
/* HTML (report_html.c)                                                      */

/* One self-contained page (docs/report.md "HTML"), written in three steps so
 * the table loop of report.c serves it as it serves the other formats:
 * rp_html_begin: head, status and failures; rp_html_table: one table;
 * rp_html_end: the figures (rp_plots into a private temporary directory,
 * every *.svg inlined; `log` gets rp_plots' messages when drawing fails),
 * the provenance with the spec's text, the end of the page. `ntables`: the
 * tables written (0: the page says there are none yet). rp_html_end always
 * completes the page; -1 (e filled) when figures are missing from it. */
void rp_html_begin(FILE *out, const rp_file *f);
void rp_html_table(FILE *out, const rp_table *t);
int rp_html_end(FILE *out, const rp_file *f, int ntables, FILE *log, ip_err *e);

#endif
