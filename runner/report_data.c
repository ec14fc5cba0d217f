/* Reading a results file for `ipsweep report` (report.h, layout in
 * docs/results.md): root attributes, /tasks, /params/<kind>, /metrics/<kind>
 * and /ipguard into memory; metric arrays on demand; seed-free task groups. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "../core/h5util.h"
#include "report.h"

const rp_col *rp_tab_col(const rp_tab *t, const char *name) {
    for (int i = 0; t && i < t->ncols; i++)
        if (strcmp(t->cols[i].name, name) == 0) return &t->cols[i];
    return NULL;
}

static void tab_free(rp_tab *t) {
    for (int c = 0; c < t->ncols; c++) {
        rp_col *col = &t->cols[c];
        for (size_t r = 0; col->s && r < t->nrows; r++) free(col->s[r]);
        free(col->s);
        free(col->v);
    }
    free(t->cols);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------- */
/* one group of 1-D datasets -> rp_tab                                       */

typedef struct link_list {
    char (*v)[64];
    int n, cap, oom;
} link_list;

static herr_t collect_link(hid_t g, const char *name, const H5L_info_t *info, void *user) {
    (void)g, (void)info;
    link_list *l = user;
    if (strlen(name) >= sizeof l->v[0]) return 0; /* not one of ours */
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 16;
        void *nv = realloc(l->v, (size_t)nc * sizeof *l->v);
        if (!nv) return l->oom = 1, -1;
        l->v = nv, l->cap = nc;
    }
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", name);
    return 0;
}

/* Names of the links in group `path` of loc, sorted by name. */
static int list_links(hid_t loc, const char *path, link_list *l, ip_err *e) {
    ip_h5_detail_buf db;
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) return ip_fail(e, "cannot open group %s%s", path, ip_h5_detail(&db));
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, l);
    ip_h5_close(g);
    if (rc < 0) return ip_fail(e, l->oom ? "out of memory listing %s" : "cannot list group %s", path);
    return 0;
}

/* Reads 1-D dataset d (n rows) into col, as strings or doubles. */
static int read_col(hid_t d, size_t n, rp_col *col, const char *where, ip_err *e) {
    ip_h5_detail_buf db;
    hid_t ft = H5Dget_type(d), mt = -1;
    int rc = -1;
    if (ft < 0) goto fail;
    if (H5Tget_class(ft) == H5T_STRING) {
        col->is_str = 1;
        col->s = calloc(n ? n : 1, sizeof *col->s);
        if (!col->s) goto oom;
        if (H5Tis_variable_str(ft) > 0) {
            char **raw = calloc(n ? n : 1, sizeof *raw);
            mt = H5Tcopy(H5T_C_S1);
            if (!raw) goto oom;
            if (mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0 ||
                (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0)) {
                free(raw);
                goto fail;
            }
            int bad = 0;
            for (size_t r = 0; r < n; r++) bad |= !(col->s[r] = strdup(raw[r] ? raw[r] : ""));
            hid_t sp = H5Dget_space(d);
            if (n) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
            ip_h5_close(sp);
            free(raw);
            if (bad) goto oom;
        } else {
            size_t w = H5Tget_size(ft);
            char *raw = malloc(n * w + 1);
            mt = H5Tcopy(H5T_C_S1);
            if (!raw) goto oom;
            if (mt < 0 || H5Tset_size(mt, w) < 0 || (n && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0)) {
                free(raw);
                goto fail;
            }
            int bad = 0;
            for (size_t r = 0; r < n; r++) bad |= !(col->s[r] = strndup(raw + r * w, w));
            free(raw);
            if (bad) goto oom;
        }
    } else {
        col->v = malloc((n ? n : 1) * sizeof *col->v);
        if (!col->v) goto oom;
        if (n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col->v) < 0) goto fail;
    }
    rc = 0;
    goto done;
oom:
    ip_fail(e, "out of memory reading %s", where);
    goto done;
fail:
    ip_fail(e, "cannot read %s%s", where, ip_h5_detail(&db));
done:
    ip_h5_close(mt);
    ip_h5_close(ft);
    return rc;
}

/* Every 1-D dataset of group `path` but `skip` (columns of equal length;
 * other links are skipped) into t. */
static int read_tab(hid_t loc, const char *path, const char *name, const char *skip, rp_tab *t, ip_err *e) {
    link_list l = {0};
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    int rc = list_links(loc, path, &l, e);
    if (rc == 0 && !(t->cols = calloc((size_t)(l.n ? l.n : 1), sizeof *t->cols))) rc = ip_fail(e, "out of memory");
    for (int i = 0; i < l.n && rc == 0; i++) {
        char where[256];
        snprintf(where, sizeof where, "%s/%s", path, l.v[i]);
        H5O_info_t oi;
        if ((skip && !strcmp(l.v[i], skip)) || H5Oget_info_by_name(loc, where, &oi, H5P_DEFAULT) < 0 ||
            oi.type != H5O_TYPE_DATASET)
            continue;
        hid_t d = H5Dopen2(loc, where, H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
        hsize_t dims[2] = {0, 0};
        int ndim = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
        if (ndim == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
        ip_h5_close(sp);
        if (ndim != 1) {
            ip_h5_close(d);
            if (ndim < 0) rc = ip_fail(e, "cannot open %s", where);
            continue;
        }
        if (t->ncols == 0) t->nrows = (size_t)dims[0];
        if ((size_t)dims[0] != t->nrows) {
            rc = ip_fail(e, "%s has %zu rows, the other columns of %s have %zu", where, (size_t)dims[0], path,
                         t->nrows);
        } else {
            rp_col *c = &t->cols[t->ncols++];
            snprintf(c->name, sizeof c->name, "%s", l.v[i]);
            rc = read_col(d, t->nrows, c, where, e);
        }
        ip_h5_close(d);
    }
    free(l.v);
    return rc;
}

/* Reads every subgroup of `path` (/params, /metrics) as a table with a
 * task_id column. */
static int read_kind_tabs(hid_t f, const char *path, rp_tab **out, int *n, ip_err *e) {
    link_list l = {0};
    *out = NULL, *n = 0;
    if (H5Lexists(f, path, H5P_DEFAULT) <= 0) return 0;
    int rc = list_links(f, path, &l, e);
    if (rc == 0 && !(*out = calloc((size_t)(l.n ? l.n : 1), sizeof **out))) rc = ip_fail(e, "out of memory");
    for (int i = 0; i < l.n && rc == 0; i++) {
        char where[256];
        snprintf(where, sizeof where, "%s/%s", path, l.v[i]);
        rp_tab *t = &(*out)[(*n)++];
        rc = read_tab(f, where, l.v[i], NULL, t, e);
        const rp_col *id = rp_tab_col(t, "task_id");
        if (rc == 0 && (!id || id->is_str)) rc = ip_fail(e, "%s has no numeric task_id column", where);
    }
    free(l.v);
    return rc;
}

static int read_curve(hid_t f, const char *path, size_t rows, size_t cols, double **out, ip_err *e) {
    ip_h5_detail_buf db;
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int ndim = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
    if (ndim > 0 && ndim <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t r = ndim == 2 ? (size_t)dims[0] : 1, c = ndim == 2 ? (size_t)dims[1] : (size_t)dims[0];
    int rc = 0;
    if (ndim < 1 || ndim > 2 || r != rows || c != cols) {
        rc = ip_fail(e, "%s: expected %zu x %zu values%s", path, rows, cols, ndim < 0 ? ip_h5_detail(&db) : "");
    } else if (!(*out = malloc((rows * cols > 0 ? rows * cols : 1) * sizeof **out))) {
        rc = ip_fail(e, "out of memory reading %s", path);
    } else if (rows * cols > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
        rc = ip_fail(e, "cannot read %s%s", path, ip_h5_detail(&db));
    }
    ip_h5_close(sp);
    ip_h5_close(d);
    return rc;
}

/* /ipguard (optional): suspects, summary, curves. */
static int read_ipguard(hid_t f, rp_file *rf, ip_err *e) {
    if (H5Lexists(f, "ipguard", H5P_DEFAULT) <= 0) return 0;
    rf->has_ipguard = 1;
    if (read_tab(f, "/ipguard/suspects", "suspects", NULL, &rf->ig_suspects, e) ||
        read_tab(f, "/ipguard/summary", "summary", NULL, &rf->ig_summary, e))
        return -1;
    const char *need_s[] = {"fingerprint_id", "fingerprint_key", "suspect_key", "suspect_kind", "relation",
                            "match_rate", "verdict"};
    const char *need_m[] = {"fingerprint_id", "fingerprint_key", "k", "positives", "negatives", "aruc", "threshold"};
    for (size_t i = 0; i < sizeof need_s / sizeof *need_s; i++)
        if (rf->ig_suspects.nrows && !rp_tab_col(&rf->ig_suspects, need_s[i]))
            return ip_fail(e, "/ipguard/suspects has no column %s", need_s[i]);
    for (size_t i = 0; i < sizeof need_m / sizeof *need_m; i++)
        if (rf->ig_summary.nrows && !rp_tab_col(&rf->ig_summary, need_m[i]))
            return ip_fail(e, "/ipguard/summary has no column %s", need_m[i]);
    if (H5Lexists(f, "/ipguard/curves", H5P_DEFAULT) <= 0 || !rf->ig_summary.nrows) return 0;
    hid_t d = H5Dopen2(f, "/ipguard/curves/thresholds", H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
    hsize_t n = 0;
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 && H5Sget_simple_extent_dims(sp, &n, NULL) == 1;
    ip_h5_close(sp);
    ip_h5_close(d);
    if (!ok) return ip_fail(e, "/ipguard/curves/thresholds is not a 1-D dataset");
    rf->ig_npoints = (size_t)n;
    rf->ig_ncurves = rf->ig_summary.nrows;
    return read_curve(f, "/ipguard/curves/thresholds", 1, rf->ig_npoints, &rf->ig_thresholds, e) ||
                   read_curve(f, "/ipguard/curves/robustness", rf->ig_ncurves, rf->ig_npoints, &rf->ig_robustness,
                              e) ||
                   read_curve(f, "/ipguard/curves/uniqueness", rf->ig_ncurves, rf->ig_npoints, &rf->ig_uniqueness, e)
               ? -1
               : 0;
}

static int attr_str(hid_t f, const char *name, char *out, size_t cap) {
    out[0] = 0;
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), ft = a < 0 ? -1 : H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    int rc = -1;
    if (ft >= 0 && mt >= 0 && H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            char *s = NULL;
            if (H5Tset_size(mt, H5T_VARIABLE) >= 0 && H5Tset_cset(mt, H5Tget_cset(ft)) >= 0 && H5Aread(a, mt, &s) >= 0) {
                snprintf(out, cap, "%s", s ? s : "");
                H5free_memory(s);
                rc = 0;
            }
        } else {
            size_t w = H5Tget_size(ft);
            char *s = calloc(1, w + 1);
            if (s && H5Tset_size(mt, w) >= 0 && H5Aread(a, mt, s) >= 0) snprintf(out, cap, "%s", s), rc = 0;
            free(s);
        }
    }
    ip_h5_close(mt);
    ip_h5_close(ft);
    ip_h5_close(a);
    return rc;
}

static long long attr_ll(hid_t f, const char *name, long long dflt) {
    long long v = dflt;
    if (H5Aexists(f, name) <= 0) return dflt;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = dflt;
    ip_h5_close(a);
    return v;
}

static const rp_file *sort_file; /* qsort has no user pointer */
static int cmp_by_key(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int c = strcmp(sort_file->key[x], sort_file->key[y]);
    return c ? c : (x > y) - (x < y);
}

/* prow/mrow: row of each task in its kind's params / metrics table. */
static int index_tabs(rp_file *f, const rp_tab *tabs, int ntabs, int *tab, int *row, const char *what, ip_err *e) {
    for (int i = 0; i < f->ntasks; i++) tab[i] = row[i] = -1;
    for (int k = 0; k < ntabs; k++) {
        const rp_col *id = rp_tab_col(&tabs[k], "task_id");
        for (size_t r = 0; r < tabs[k].nrows; r++) {
            double v = id->v[r];
            if (!(v >= 0 && v < f->ntasks) || v != floor(v))
                return ip_fail(e, "/%s/%s: task_id %g is not a task", what, tabs[k].name, v);
            tab[(int)v] = k, row[(int)v] = (int)r;
        }
    }
    return 0;
}

int rp_open(rp_file *f, const char *path, ip_err *e) {
    ip_h5_quiet q;
    ip_h5_detail_buf db;
    memset(f, 0, sizeof *f);
    f->hid = -1;
    ip_h5_quiet_on(&q);
    hid_t fapl = ip_h5_make_fapl(0);
    hid_t h = fapl < 0 ? -1 : H5Fopen(path, H5F_ACC_RDONLY, fapl);
    ip_h5_close(fapl);
    int rc = -1;
    if (h < 0) {
        ip_fail(e, "cannot open %s as an HDF5 file%s", path, ip_h5_detail(&db));
        goto done;
    }
    f->hid = h;
    long long version = attr_ll(h, "format_version", -1);
    if (version != 1) {
        ip_fail(e, "%s is not an ipsweep results file of format_version 1 (found %lld)", path, version);
        goto done;
    }
    attr_str(h, "spec_name", f->spec_name, sizeof f->spec_name);
    attr_str(h, "software", f->software, sizeof f->software);
    f->in_progress = (int)attr_ll(h, "in_progress", 0);
    f->total = attr_ll(h, "tasks_total", 0);
    f->ndone = attr_ll(h, "tasks_done", 0);
    f->nfailed = attr_ll(h, "tasks_failed", 0);
    f->nskipped = attr_ll(h, "tasks_skipped", 0);
    f->nrunning = attr_ll(h, "tasks_running", 0);
    f->npending = attr_ll(h, "tasks_pending", 0);
    /* files written before provenance was recorded have no group: not an error */
    if (H5Lexists(h, "provenance", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(h, "provenance", H5P_DEFAULT);
        f->has_provenance = g >= 0;
        for (int i = 0; g >= 0 && i < ip_provenance_nfields; i++)
            attr_str(g, ip_provenance_fields[i].name, (char *)&f->provenance + ip_provenance_fields[i].offset,
                     ip_provenance_fields[i].cap);
        ip_h5_close(g);
    }
    if (read_tab(h, "/tasks", "tasks", NULL, &f->tasks, e)) goto ctx;
    const char *need[] = {"id", "key", "kind", "name", "status"};
    for (int i = 0; i < 5; i++) {
        const rp_col *c = rp_tab_col(&f->tasks, need[i]);
        if (!c || c->is_str != (i > 0)) {
            ip_fail(e, "/tasks has no %s column %s", i ? "string" : "numeric", need[i]);
            goto ctx;
        }
    }
    f->ntasks = (int)f->tasks.nrows;
    const rp_col *id = rp_tab_col(&f->tasks, "id"), *dc = rp_tab_col(&f->tasks, "deps");
    for (int i = 0; i < f->ntasks; i++)
        if (id->v[i] != i) {
            ip_fail(e, "/tasks/id[%d] is %g: rows must be in task-id order", i, id->v[i]);
            goto ctx;
        }
    f->key = rp_tab_col(&f->tasks, "key")->s;
    f->kind = rp_tab_col(&f->tasks, "kind")->s;
    f->name = rp_tab_col(&f->tasks, "name")->s;
    f->status = rp_tab_col(&f->tasks, "status")->s;
    f->deps = dc && dc->is_str ? dc->s : NULL;
    f->has_params = H5Lexists(h, "params", H5P_DEFAULT) > 0;
    if (read_kind_tabs(h, "params", &f->params, &f->nparams, e) ||
        read_kind_tabs(h, "metrics", &f->metrics, &f->nmetrics, e) || read_ipguard(h, f, e))
        goto ctx;
    size_t n = (size_t)(f->ntasks ? f->ntasks : 1);
    f->prow = malloc(n * sizeof *f->prow), f->mrow = malloc(n * sizeof *f->mrow);
    f->ptab = malloc(n * sizeof *f->ptab), f->mtab = malloc(n * sizeof *f->mtab);
    f->by_key = malloc(n * sizeof *f->by_key);
    if (!f->prow || !f->mrow || !f->ptab || !f->mtab || !f->by_key) {
        ip_fail(e, "out of memory");
        goto ctx;
    }
    if (index_tabs(f, f->params, f->nparams, f->ptab, f->prow, "params", e) ||
        index_tabs(f, f->metrics, f->nmetrics, f->mtab, f->mrow, "metrics", e))
        goto ctx;
    for (int i = 0; i < f->ntasks; i++) f->by_key[i] = i;
    sort_file = f;
    qsort(f->by_key, (size_t)f->ntasks, sizeof *f->by_key, cmp_by_key);
    rc = 0;
    goto done;
ctx:
    ip_failctx(e, "reading %s", path);
done:
    ip_h5_quiet_off(&q);
    if (rc != 0) rp_close(f);
    return rc;
}

void rp_close(rp_file *f) {
    if (f->hid >= 0) H5Fclose((hid_t)f->hid);
    tab_free(&f->tasks);
    for (int i = 0; i < f->nparams; i++) tab_free(&f->params[i]);
    for (int i = 0; i < f->nmetrics; i++) tab_free(&f->metrics[i]);
    free(f->params), free(f->metrics);
    tab_free(&f->ig_suspects);
    tab_free(&f->ig_summary);
    free(f->ig_thresholds), free(f->ig_robustness), free(f->ig_uniqueness);
    free(f->prow), free(f->mrow), free(f->ptab), free(f->mtab), free(f->by_key);
    memset(f, 0, sizeof *f);
    f->hid = -1;
}

/* ------------------------------------------------------------------------- */
/* lookups                                                                   */

int rp_find_key(const rp_file *f, const char *key) {
    int lo = 0, hi = f->ntasks - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(f->key[f->by_key[mid]], key);
        if (c == 0) return f->by_key[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* The n-th (0-based) id of a deps string "3,7", or -1. */
static int nth_dep(const char *deps, int n) {
    const char *p = deps;
    for (int i = 0; p && *p; i++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) return -1;
        if (i == n) return (int)v;
        p = *end == ',' ? end + 1 : NULL;
    }
    return -1;
}

const char *rp_param(const rp_file *f, int task, const char *name) {
    if (task < 0 || task >= f->ntasks) return NULL;
    if (f->has_params) {
        if (f->ptab[task] < 0) return NULL;
        const rp_col *c = rp_tab_col(&f->params[f->ptab[task]], name);
        return c && c->is_str && c->s[f->prow[task]][0] ? c->s[f->prow[task]] : NULL; /* "": not a parameter of this task */
    }
    /* an older file: references from the dependency list (the kinds list
     * `model` before `reference`), the rest from the swept-parameter columns */
    if (strcmp(name, "model") == 0 || strcmp(name, "reference") == 0) {
        int d = f->deps ? nth_dep(f->deps[task], strcmp(name, "model") == 0 ? 0 : 1) : -1;
        return d >= 0 && d < f->ntasks ? f->key[d] : NULL;
    }
    char cn[80];
    snprintf(cn, sizeof cn, "param_%s", name);
    const rp_col *c = rp_tab_col(&f->tasks, cn);
    return c && c->is_str && c->s[task][0] ? c->s[task] : NULL;
}

int rp_names_vary(const rp_file *f, const rp_group *g, int ng) {
    const char *first = NULL;
    for (int i = 0; i < ng; i++) {
        if (!g[i].ndone) continue;
        const char *n = f->name[g[i].tasks[0]];
        if (!first) first = n;
        else if (strcmp(first, n) != 0) return 1;
    }
    return 0;
}

int rp_ref(const rp_file *f, int task, const char *param) {
    const char *k = rp_param(f, task, param);
    return k && k[0] ? rp_find_key(f, k) : -1;
}

double rp_metric(const rp_file *f, int task, const char *name) {
    if (task < 0 || task >= f->ntasks || f->mtab[task] < 0) return NAN;
    const rp_col *c = rp_tab_col(&f->metrics[f->mtab[task]], name);
    return c && !c->is_str ? c->v[f->mrow[task]] : NAN;
}

int rp_array(const rp_file *f, int task, const char *metric, double **v, size_t *n, ip_err *e) {
    *v = NULL, *n = 0;
    char path[256];
    snprintf(path, sizeof path, "/arrays/%s/%s", f->kind[task], metric);
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    hid_t h = (hid_t)f->hid;
    int rc = 0;
    if (H5Lexists(h, "arrays", H5P_DEFAULT) <= 0 || H5Lexists(h, path, H5P_DEFAULT) <= 0) goto done;
    rp_tab idx;
    if (read_tab(h, path, metric, "values", &idx, e) != 0) {
        rc = -1;
        goto done;
    }
    const rp_col *id = rp_tab_col(&idx, "task_id"), *off = rp_tab_col(&idx, "offset"),
                 *len = rp_tab_col(&idx, "length");
    long long o = -1, l = 0;
    for (size_t r = 0; id && off && len && !id->is_str && r < idx.nrows; r++)
        if (id->v[r] == task) o = (long long)off->v[r], l = (long long)len->v[r];
    tab_free(&idx);
    if (o < 0 || l <= 0) goto done;
    char vp[300];
    snprintf(vp, sizeof vp, "%s/values", path);
    hid_t d = H5Dopen2(h, vp, H5P_DEFAULT), fs = d < 0 ? -1 : H5Dget_space(d);
    hsize_t start[1] = {(hsize_t)o}, count[1] = {(hsize_t)l};
    hid_t ms = H5Screate_simple(1, count, NULL);
    *v = malloc((size_t)l * sizeof **v);
    if (!*v || fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, *v) < 0) {
        free(*v);
        *v = NULL;
        rc = ip_fail(e, "cannot read %s[%lld:%lld]", vp, o, o + l);
    } else {
        *n = (size_t)l;
    }
    ip_h5_close(ms);
    ip_h5_close(fs);
    ip_h5_close(d);
done:
    ip_h5_quiet_off(&q);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* keys and groups                                                           */

static int drop_entry(const char *s, size_t len) {
    return (len >= 5 && strncmp(s, "seed=", 5) == 0) || (len >= 6 && strncmp(s, "shard=", 6) == 0);
}

char *rp_strip_key(const char *key) {
    size_t n = strlen(key);
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = key; *p;) {
        const char *close = *p == '[' ? strchr(p, ']') : NULL;
        if (!close) {
            *o++ = *p++;
            continue;
        }
        /* [a=1,seed=2,b=3] -> [a=1,b=3]; [seed=2] -> nothing */
        int kept = 0;
        for (const char *s = p + 1; s < close;) {
            const char *c = memchr(s, ',', (size_t)(close - s));
            const char *end = c ? c : close;
            if (!drop_entry(s, (size_t)(end - s))) {
                *o++ = kept++ ? ',' : '[';
                memcpy(o, s, (size_t)(end - s));
                o += end - s;
            }
            s = end + 1;
        }
        if (kept) *o++ = ']';
        p = close + 1;
    }
    *o = 0;
    return out;
}

/* A stripped key without "kind:" at its start and after every '<'. */
static void drop_kinds(const char *s, char *out, size_t cap) {
    size_t o = 0;
    if (!cap) return;
    for (const char *p = s; *p && o + 1 < cap;) {
        if (p == s || p[-1] == '<') {
            const char *c = p + strcspn(p, ":[<>");
            if (*c == ':') p = c + 1;
        }
        if (*p) out[o++] = *p++;
    }
    out[o] = 0;
}

void rp_label(const rp_file *f, int task, char *out, size_t cap) {
    rp_key_label(f, f->key[task], out, cap);
}

void rp_key_label(const rp_file *f, const char *key, char *out, size_t cap) {
    (void)f;
    char *s = rp_strip_key(key);
    if (cap) out[0] = 0;
    if (s) drop_kinds(s, out, cap);
    free(s);
}

/* Sharded fake1 tasks count through their merge task only. */
static int counts(const rp_file *f, int task) {
    const char *shard = rp_param(f, task, "shard"), *shards = rp_param(f, task, "shards");
    if (!shard || strcmp(shard, "all") == 0) return 1;
    return shards && strcmp(shards, "1") == 0;
}

typedef struct keyed {
    char *key;
    int id;
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}
static int cmp_group_first(const void *a, const void *b) {
    const rp_group *x = a, *y = b;
    return (x->tasks[0] > y->tasks[0]) - (x->tasks[0] < y->tasks[0]);
}

void rp_groups_free(rp_group *g, int n) {
    for (int i = 0; g && i < n; i++) free(g[i].key), free(g[i].tasks), free(g[i].done);
    free(g);
}

int rp_groups(const rp_file *f, const char *kind, rp_group **out, int *n, ip_err *e) {
    *out = NULL, *n = 0;
    keyed *k = malloc((size_t)(f->ntasks ? f->ntasks : 1) * sizeof *k);
    int m = 0, ng = 0, rc = -1;
    rp_group *g = NULL;
    if (!k) goto oom;
    for (int i = 0; i < f->ntasks; i++)
        if (strcmp(f->kind[i], kind) == 0 && counts(f, i)) {
            if (!(k[m].key = rp_strip_key(f->key[i]))) goto oom;
            k[m++].id = i;
        }
    qsort(k, (size_t)m, sizeof *k, cmp_keyed);
    g = calloc((size_t)(m ? m : 1), sizeof *g);
    if (!g) goto oom;
    for (int a = 0; a < m;) {
        int b = a;
        while (b < m && strcmp(k[b].key, k[a].key) == 0) b++;
        rp_group *G = &g[ng++];
        G->tasks = malloc((size_t)(b - a) * sizeof *G->tasks);
        G->done = malloc((size_t)(b - a) * sizeof *G->done);
        if (!G->tasks || !G->done || !(G->key = strdup(k[a].key))) goto oom;
        for (int i = a; i < b; i++) {
            G->tasks[G->ntasks++] = k[i].id;
            if (strcmp(f->status[k[i].id], "done") == 0) G->done[G->ndone++] = k[i].id;
        }
        a = b;
    }
    qsort(g, (size_t)ng, sizeof *g, cmp_group_first);
    *out = g, *n = ng, g = NULL;
    rc = 0;
    goto done;
oom:
    ip_fail(e, "out of memory grouping the %s tasks", kind);
done:
    for (int i = 0; k && i < m; i++) free(k[i].key);
    free(k);
    rp_groups_free(g, ng);
    return rc;
}
