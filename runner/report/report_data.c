/* Reading a results file for `ipsweep report` (report.h, layout in
 * docs/results.md): root attributes, /tasks, /params/<kind>, /metrics/<kind>
 * and /ipguard into memory; metric arrays on demand; seed-free task groups. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "../../core/util/checked.h"
#include "../../core/io/h5util.h"
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
/* checked reading                                                           */

/* What a results file may claim before anything is allocated from it: rows
 * are task ids (int), and no string ipsweep writes (a key, a name) comes near
 * a megabyte. Larger claims are a crafted or corrupt file, not a big study. */
#define RP_MAX_ROWS ((size_t)INT_MAX)
#define RP_MAX_STR_BYTES ((size_t)1 << 20)
/* zlib's largest compression ratio (about 1032:1): a deflated dataset storing
 * fewer than bytes/1032 bytes cannot hold the data its shape claims. */
#define RP_MAX_DEFLATE_RATIO 1032

/* Fails unless dataset d (named `where`) stores enough bytes for the `bytes`
 * its shape claims. The results writer deflates large datasets
 * (runner/run/results.c), so a deflated one is held to zlib's best ratio; a
 * filter ipsweep never writes is refused rather than trusted. */
static int check_stored(hid_t d, const char *where, size_t bytes, ip_err *e) {
    hid_t dcpl = H5Dget_create_plist(d);
    int nf = dcpl < 0 ? -1 : H5Pget_nfilters(dcpl), deflate = 0, other = nf < 0;
    for (int i = 0; i < nf; i++) {
        unsigned flags = 0;
        size_t ncd = 0;
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, NULL, 0, NULL, NULL);
        if (id == H5Z_FILTER_DEFLATE) deflate = 1;
        else if (id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32) other = 1;
    }
    ip_h5_close(dcpl);
    if (other) return ip_fail_input(e, "%s uses an HDF5 filter ipsweep does not write", where);
    if (!deflate) return ip_h5_check_stored(d, where, bytes, e) != 0 ? ip_err_mark_input(e) : 0;
    hsize_t have = H5Dget_storage_size(d);
    if (have >= (hsize_t)(bytes / RP_MAX_DEFLATE_RATIO)) return 0;
    return ip_fail_input(e, "%s stores %llu compressed bytes, too few for the %zu its shape claims: truncated, "
                            "sparse or not written by ipsweep",
                         where, (unsigned long long)have, bytes);
}

/* Opens the numeric dataset `path` (absolute) of exactly ndim (1 or 2) dims,
 * checked before anything is allocated from it: numbers, a shape whose size
 * does not overflow, and stored bytes covering that shape. dims and *numel
 * receive its shape. Returns the dataset or -1 (e filled). */
static hid_t open_numeric(hid_t h, const char *path, int ndim, hsize_t *dims, size_t *numel, ip_err *e) {
    ip_h5_detail_buf db;
    int nd = 0;
    if (ip_h5_dataset_dims(h, path, 2, &nd, dims, e) != 0) return ip_err_mark_input(e);
    if (nd != ndim) return ip_fail_input(e, "%s has %d dimensions, expected %d", path, nd, ndim);
    hid_t d = H5Dopen2(h, path, H5P_DEFAULT), t = d < 0 ? -1 : H5Dget_type(d);
    H5T_class_t cls = t < 0 ? H5T_NO_CLASS : H5Tget_class(t);
    size_t n = 1, bytes = 0;
    int rc = -1;
    if (t < 0) ip_fail_input(e, "cannot open %s%s", path, ip_h5_detail(&db));
    else if (cls != H5T_INTEGER && cls != H5T_FLOAT) ip_fail_input(e, "%s has the wrong type (expected numbers)", path);
    else if ((ndim == 2 && ip_mul_size((size_t)dims[0], (size_t)dims[1], &n) != 0) || (ndim == 1 && (n = (size_t)dims[0], 0)) ||
             ip_mul_size(n, H5Tget_size(t), &bytes) != 0 || ip_mul_size(n, sizeof(double), &(size_t){0}) != 0)
        ip_fail_input(e, "%s: its shape claims more values than fit in memory", path);
    else if (check_stored(d, path, bytes, e) == 0) rc = 0;
    ip_h5_close(t);
    if (rc != 0) {
        ip_h5_close(d);
        return -1;
    }
    *numel = n;
    return d;
}

/* ------------------------------------------------------------------------- */
/* one group of 1-D datasets -> rp_tab                                       */

typedef struct link_list {
    char (*v)[64];
    int n, cap, oom;
} link_list;

static herr_t collect_link(hid_t g, const char *name, const H5L_info_t *info, void *user) {
    (void)g;
    link_list *l = user;
    /* soft and external links are not written by ipsweep: an external one
     * would make the report read another file */
    if (info->type != H5L_TYPE_HARD || strlen(name) >= sizeof l->v[0]) return 0; /* not one of ours */
    if (l->n == l->cap) {
        if (l->cap > INT_MAX / 4) return l->oom = 1, -1;
        int nc = l->cap ? 2 * l->cap : 16;
        void *nv = realloc(l->v, (size_t)nc * sizeof *l->v);
        if (!nv) return l->oom = 1, -1;
        l->v = nv, l->cap = nc;
    }
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", name);
    return 0;
}

/* Names of the links in group `path` (absolute) of loc, sorted by name. */
static int list_links(hid_t loc, const char *path, link_list *l, ip_err *e) {
    ip_h5_detail_buf db;
    htri_t ex = ip_h5_path_exists(loc, path);
    if (ex <= 0) return ex == 0 ? ip_fail_input(e, "missing group %s", path)
                                : ip_fail_input(e, "cannot look up %s%s", path, ip_h5_detail(&db));
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) return ip_fail_input(e, "%s is not a group%s", path, ip_h5_detail(&db));
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, l);
    ip_h5_close(g);
    if (rc < 0)
        return l->oom ? ip_fail(e, "out of memory listing %s", path)
                      : ip_fail_input(e, "cannot list group %s%s", path, ip_h5_detail(&db));
    return 0;
}

/* Reads 1-D dataset d (n rows, checked against the stored bytes first) into
 * col, as strings or doubles. */
static int read_col(hid_t d, size_t n, rp_col *col, const char *where, ip_err *e) {
    ip_h5_detail_buf db;
    hid_t ft = H5Dget_type(d), mt = -1;
    int rc = -1;
    if (ft < 0) goto fail;
    H5T_class_t cls = H5Tget_class(ft);
    size_t w = H5Tget_size(ft), bytes = 0;
    if (cls != H5T_STRING && cls != H5T_INTEGER && cls != H5T_FLOAT) {
        ip_fail_input(e, "%s has the wrong type (expected numbers or strings)", where);
        goto done;
    }
    if (w == 0) goto fail;
    if (cls == H5T_STRING && H5Tis_variable_str(ft) <= 0 && w > RP_MAX_STR_BYTES) {
        ip_fail_input(e, "%s holds strings of %zu bytes, more than ipsweep writes", where, w);
        goto done;
    }
    if (ip_mul_size(n, w, &bytes) != 0 || ip_add_size(bytes, 1, &(size_t){0}) != 0) {
        ip_fail_input(e, "%s: its shape claims more bytes than fit in memory", where);
        goto done;
    }
    if (check_stored(d, where, bytes, e) != 0) goto done;
    if (cls == H5T_STRING) {
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
            char *raw = malloc(bytes + 1);
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
        col->v = malloc((n ? n : 1) * sizeof *col->v); /* n <= RP_MAX_ROWS: no overflow */
        if (!col->v) goto oom;
        if (n && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col->v) < 0) goto fail;
    }
    rc = 0;
    goto done;
oom:
    ip_fail(e, "out of memory reading %s", where);
    goto done;
fail:
    ip_fail_input(e, "cannot read %s%s", where, ip_h5_detail(&db));
done:
    ip_h5_close(mt);
    ip_h5_close(ft);
    return rc;
}

/* Every dataset of group `path` (absolute) but `skip` into t: 1-D columns of
 * equal length (subgroups are skipped). */
static int read_tab(hid_t loc, const char *path, const char *name, const char *skip, rp_tab *t, ip_err *e) {
    ip_h5_detail_buf db;
    link_list l = {0};
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    int rc = list_links(loc, path, &l, e);
    if (rc == 0 && !(t->cols = calloc((size_t)(l.n ? l.n : 1), sizeof *t->cols))) rc = ip_fail(e, "out of memory");
    for (int i = 0; i < l.n && rc == 0; i++) {
        char where[256];
        snprintf(where, sizeof where, "%s/%s", path, l.v[i]);
        H5O_info_t oi;
        if (skip && !strcmp(l.v[i], skip)) continue;
        if (H5Oget_info_by_name(loc, where, &oi, H5P_DEFAULT) < 0) {
            rc = ip_fail_input(e, "cannot open %s%s", where, ip_h5_detail(&db));
            break;
        }
        if (oi.type != H5O_TYPE_DATASET) continue;
        hid_t d = H5Dopen2(loc, where, H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
        hsize_t dims[1] = {0};
        int ndim = sp < 0 ? -1 : H5Sget_simple_extent_ndims(sp);
        if (ndim == 1 && H5Sget_simple_extent_dims(sp, dims, NULL) < 0) ndim = -1;
        ip_h5_close(sp);
        if (ndim < 0) rc = ip_fail_input(e, "cannot open %s%s", where, ip_h5_detail(&db));
        else if (ndim != 1) rc = ip_fail_input(e, "%s has %d dimensions, expected 1 (a column)", where, ndim);
        else if ((size_t)dims[0] > RP_MAX_ROWS)
            rc = ip_fail_input(e, "%s claims %llu rows, more than ipsweep writes", where, (unsigned long long)dims[0]);
        else if (t->ncols > 0 && (size_t)dims[0] != t->nrows)
            rc = ip_fail_input(e, "%s has %zu rows, the other columns of %s have %zu", where, (size_t)dims[0], path,
                               t->nrows);
        else {
            t->nrows = (size_t)dims[0];
            rp_col *c = &t->cols[t->ncols++];
            snprintf(c->name, sizeof c->name, "%s", l.v[i]);
            rc = read_col(d, t->nrows, c, where, e);
        }
        ip_h5_close(d);
    }
    free(l.v);
    return rc;
}

/* Fails unless t has a column `name` of strings (is_str) or numbers. */
static int need_col(const rp_tab *t, const char *path, const char *name, int is_str, ip_err *e) {
    const rp_col *c = rp_tab_col(t, name);
    if (c && c->is_str == is_str) return 0;
    return ip_fail_input(e, "%s/%s: %s", path, name,
                         !c ? "missing column" : is_str ? "expected strings, found numbers" : "expected numbers, found strings");
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
        if (rc == 0) rc = need_col(t, where, "task_id", 0, e);
    }
    free(l.v);
    return rc;
}

/* Reads the numeric dataset `path` of nd dims (1: one row of cols values;
 * 2: rows x cols) into *out. */
static int read_curve(hid_t f, const char *path, int nd, size_t rows, size_t cols, double **out, ip_err *e) {
    ip_h5_detail_buf db;
    hsize_t dims[2] = {0, 0};
    size_t n = 0;
    hid_t d = open_numeric(f, path, nd, dims, &n, e);
    if (d < 0) return -1;
    int rc = 0;
    size_t r = nd == 2 ? (size_t)dims[0] : 1, c = nd == 2 ? (size_t)dims[1] : (size_t)dims[0];
    if (r != rows || c != cols)
        rc = ip_fail_input(e, "%s: expected %zu x %zu values, found %zu x %zu", path, rows, cols, r, c);
    else if (!(*out = malloc((n ? n : 1) * sizeof **out))) /* open_numeric checked n * sizeof(double) */
        rc = ip_fail(e, "out of memory reading %s", path);
    else if (n > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
        rc = ip_fail_input(e, "cannot read %s%s", path, ip_h5_detail(&db));
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
    /* the columns the tables and plots use, with their types (1: strings) */
    static const struct { const char *name; int is_str; } need_s[] = {
        {"fingerprint_id", 0}, {"fingerprint_key", 1}, {"suspect_key", 1}, {"suspect_kind", 1},
        {"relation", 1},       {"match_rate", 0},      {"verdict", 1}},
                                                      need_m[] = {
        {"fingerprint_id", 0}, {"fingerprint_key", 1}, {"k", 0}, {"positives", 0},
        {"negatives", 0},      {"aruc", 0},            {"threshold", 0}};
    for (size_t i = 0; i < sizeof need_s / sizeof *need_s; i++)
        if (rf->ig_suspects.nrows &&
            need_col(&rf->ig_suspects, "/ipguard/suspects", need_s[i].name, need_s[i].is_str, e) != 0)
            return -1;
    for (size_t i = 0; i < sizeof need_m / sizeof *need_m; i++)
        if (rf->ig_summary.nrows &&
            need_col(&rf->ig_summary, "/ipguard/summary", need_m[i].name, need_m[i].is_str, e) != 0)
            return -1;
    if (H5Lexists(f, "/ipguard/curves", H5P_DEFAULT) <= 0 || !rf->ig_summary.nrows) return 0;
    hsize_t dims[2] = {0, 0};
    size_t n = 0;
    hid_t d = open_numeric(f, "/ipguard/curves/thresholds", 1, dims, &n, e);
    if (d < 0) return -1;
    ip_h5_close(d);
    rf->ig_npoints = n;
    rf->ig_ncurves = rf->ig_summary.nrows;
    return read_curve(f, "/ipguard/curves/thresholds", 1, 1, rf->ig_npoints, &rf->ig_thresholds, e) ||
                   read_curve(f, "/ipguard/curves/robustness", 2, rf->ig_ncurves, rf->ig_npoints, &rf->ig_robustness,
                              e) ||
                   read_curve(f, "/ipguard/curves/uniqueness", 2, rf->ig_ncurves, rf->ig_npoints, &rf->ig_uniqueness, e)
               ? -1
               : 0;
}

/* A scalar string attribute of loc ("" when absent), cut to cap - 1 bytes for
 * display; a non-string, an array or an oversized fixed-length string fails. */
static int attr_text(hid_t loc, const char *where, const char *name, char *out, size_t cap, ip_err *e) {
    ip_h5_detail_buf db;
    out[0] = 0;
    htri_t ex = H5Aexists(loc, name);
    if (ex == 0) return 0;
    hid_t a = ex < 0 ? -1 : H5Aopen(loc, name, H5P_DEFAULT), ft = a < 0 ? -1 : H5Aget_type(a),
          sp = a < 0 ? -1 : H5Aget_space(a), mt = -1;
    int rc = -1;
    htri_t vl = ft < 0 ? -1 : H5Tis_variable_str(ft);
    size_t w = ft < 0 ? 0 : H5Tget_size(ft);
    if (ft < 0 || sp < 0 || vl < 0) ip_fail_input(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
    else if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1)
        ip_fail_input(e, "attribute %s%s is not a single string", where, name);
    else if (!vl && w > RP_MAX_STR_BYTES)
        ip_fail_input(e, "attribute %s%s is a string of %zu bytes, more than ipsweep writes", where, name, w);
    else if ((mt = H5Tcopy(ft)) < 0) ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
    else if (vl) {
        char *s = NULL;
        if (H5Aread(a, mt, &s) < 0)
            ip_fail_input(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
        else snprintf(out, cap, "%s", s ? s : ""), rc = 0;
        H5free_memory(s);
    } else {
        char *s = calloc(1, w + 1); /* w <= RP_MAX_STR_BYTES */
        if (!s) ip_fail(e, "out of memory reading attribute %s%s", where, name);
        else if (H5Aread(a, mt, s) < 0)
            ip_fail_input(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
        else snprintf(out, cap, "%s", s), rc = 0;
        free(s);
    }
    ip_h5_close(mt);
    ip_h5_close(sp);
    ip_h5_close(ft);
    ip_h5_close(a);
    return rc;
}

/* A scalar integer attribute of the root into *v (left as it is when absent). */
static int attr_int(hid_t h, const char *name, long long *v, ip_err *e) {
    ip_h5_detail_buf db;
    htri_t ex = H5Aexists(h, name);
    if (ex < 0) return ip_fail_input(e, "cannot read attribute /%s%s", name, ip_h5_detail(&db));
    if (ex == 0) return 0;
    return ip_h5_attr_read_num(h, "/", name, H5T_NATIVE_LLONG, H5T_INTEGER, 0, v, e) != 0 ? ip_err_mark_input(e)
                                                                                        : 0;
}

/* 1 when x is a whole number in [0, max]. */
static int whole_in(double x, double max) { return x >= 0 && x <= max && x == floor(x); }

/* The index of the metric array group `path` (/arrays/<kind>/<metric>: the
 * columns task_id, offset and length, and a 1-D `values`), checked: every
 * row names a task of the file and a slice inside values. off and len receive
 * the slice of `task` (*len 0: none). With task < 0 only checks, and reads
 * all of values once, so that a corrupt file fails here (rp_open) rather than
 * after `--plots DIR` has started writing. */
static int array_slice(hid_t h, const char *path, int ntasks, int task, size_t *off, size_t *len, ip_err *e) {
    ip_h5_detail_buf db;
    rp_tab idx;
    char vp[320];
    hsize_t dims[2] = {0, 0};
    size_t nv = 0;
    hid_t d = -1;
    *off = *len = 0;
    snprintf(vp, sizeof vp, "%s/values", path);
    int rc = read_tab(h, path, "", "values", &idx, e);
    if (rc == 0 && idx.nrows)
        rc = need_col(&idx, path, "task_id", 0, e) || need_col(&idx, path, "offset", 0, e) ||
                     need_col(&idx, path, "length", 0, e)
                 ? -1
                 : 0;
    if (rc == 0 && (d = open_numeric(h, vp, 1, dims, &nv, e)) < 0) rc = -1;
    const rp_col *id = rp_tab_col(&idx, "task_id"), *oc = rp_tab_col(&idx, "offset"), *lc = rp_tab_col(&idx, "length");
    for (size_t r = 0; rc == 0 && r < idx.nrows; r++) {
        double o = oc->v[r], l = lc->v[r];
        if (!whole_in(id->v[r], ntasks - 1.0))
            rc = ip_fail_input(e, "%s/task_id[%zu] is %g: not a task", path, r, id->v[r]);
        else if (!whole_in(o, (double)nv) || !whole_in(l, (double)nv - o))
            rc = ip_fail_input(e, "%s row %zu: offset %g, length %g outside the %zu values", path, r, o, l, nv);
        else if (id->v[r] == task)
            *off = (size_t)o, *len = (size_t)l;
    }
    if (rc == 0 && task < 0 && nv > 0) {
        double *all = malloc(nv * sizeof *all); /* open_numeric checked nv * sizeof(double) */
        if (!all) rc = ip_fail(e, "out of memory reading %s", vp);
        else if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) < 0)
            rc = ip_fail_input(e, "cannot read %s%s", vp, ip_h5_detail(&db));
        free(all);
    }
    ip_h5_close(d);
    tab_free(&idx);
    return rc;
}

/* Checks every /arrays/<kind>/<metric> group (array_slice) before anything
 * is written from the file. */
static int check_arrays(hid_t h, int ntasks, ip_err *e) {
    if (H5Lexists(h, "arrays", H5P_DEFAULT) <= 0) return 0;
    link_list kinds = {0};
    int rc = list_links(h, "/arrays", &kinds, e);
    for (int k = 0; rc == 0 && k < kinds.n; k++) {
        char kp[128];
        snprintf(kp, sizeof kp, "/arrays/%s", kinds.v[k]);
        link_list m = {0};
        rc = list_links(h, kp, &m, e);
        for (int i = 0; rc == 0 && i < m.n; i++) {
            char mp[256];
            size_t off, len;
            snprintf(mp, sizeof mp, "%s/%s", kp, m.v[i]);
            rc = array_slice(h, mp, ntasks, -1, &off, &len, e);
        }
        free(m.v);
    }
    free(kinds.v);
    return rc;
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
                return ip_fail_input(e, "/%s/%s: task_id %g is not a task", what, tabs[k].name, v);
            tab[(int)v] = k, row[(int)v] = (int)r;
        }
    }
    return 0;
}

int rp_open(rp_file *f, const char *path, ip_err *e) {
    ip_h5_quiet q;
    memset(f, 0, sizeof *f);
    f->hid = -1;
    ip_h5_quiet_on(&q);
    int rc = -1;
    /* a missing file, a directory, an empty or non-HDF5 file told apart */
    hid_t h = ip_h5_open_ro(path, e);
    if (h < 0) {
        ip_err_mark_input(e);
        goto ctx;
    }
    f->hid = h;
    long long version = -1, in_progress = 0;
    if (attr_int(h, "format_version", &version, e) != 0) goto ctx;
    if (version != 1) {
        ip_fail_input(e, "%s is not an ipsweep results file of format_version 1 (found %lld)", path, version);
        goto done;
    }
    if (attr_text(h, "/", "spec_name", f->spec_name, sizeof f->spec_name, e) ||
        attr_text(h, "/", "software", f->software, sizeof f->software, e) ||
        attr_int(h, "in_progress", &in_progress, e) || attr_int(h, "tasks_total", &f->total, e) ||
        attr_int(h, "tasks_done", &f->ndone, e) || attr_int(h, "tasks_failed", &f->nfailed, e) ||
        attr_int(h, "tasks_skipped", &f->nskipped, e) || attr_int(h, "tasks_running", &f->nrunning, e) ||
        attr_int(h, "tasks_pending", &f->npending, e) || attr_int(h, "tasks_interrupted", &f->ninterrupted, e))
        goto ctx;
    f->in_progress = in_progress != 0;
    /* files written before provenance was recorded have no group: not an error */
    if (H5Lexists(h, "provenance", H5P_DEFAULT) > 0) {
        ip_h5_detail_buf db;
        hid_t g = H5Gopen2(h, "provenance", H5P_DEFAULT);
        if (g < 0) {
            ip_fail_input(e, "/provenance is not a group%s", ip_h5_detail(&db));
            goto ctx;
        }
        f->has_provenance = 1;
        int bad = 0;
        for (int i = 0; !bad && i < ip_provenance_nfields; i++)
            bad = attr_text(g, "/provenance/", ip_provenance_fields[i].name,
                            (char *)&f->provenance + ip_provenance_fields[i].offset, ip_provenance_fields[i].cap, e);
        ip_h5_close(g);
        if (bad) goto ctx;
    }
    if (read_tab(h, "/tasks", "tasks", NULL, &f->tasks, e)) goto ctx;
    const char *need[] = {"id", "key", "kind", "name", "status"};
    for (int i = 0; i < 5; i++)
        if (need_col(&f->tasks, "/tasks", need[i], i > 0, e) != 0) goto ctx;
    f->ntasks = (int)f->tasks.nrows;
    const rp_col *id = rp_tab_col(&f->tasks, "id"), *dc = rp_tab_col(&f->tasks, "deps");
    for (int i = 0; i < f->ntasks; i++)
        if (id->v[i] != i) {
            ip_fail_input(e, "/tasks/id[%d] is %g: rows must be in task-id order", i, id->v[i]);
            goto ctx;
        }
    f->key = rp_tab_col(&f->tasks, "key")->s;
    f->kind = rp_tab_col(&f->tasks, "kind")->s;
    f->name = rp_tab_col(&f->tasks, "name")->s;
    f->status = rp_tab_col(&f->tasks, "status")->s;
    f->deps = dc && dc->is_str ? dc->s : NULL;
    f->has_params = H5Lexists(h, "params", H5P_DEFAULT) > 0;
    if (read_kind_tabs(h, "/params", &f->params, &f->nparams, e) ||
        read_kind_tabs(h, "/metrics", &f->metrics, &f->nmetrics, e) || read_ipguard(h, f, e) ||
        check_arrays(h, f->ntasks, e))
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
    if (H5Lexists(h, "arrays", H5P_DEFAULT) <= 0 || ip_h5_path_exists(h, path) <= 0) goto done;
    size_t o = 0, l = 0, bytes = 0;
    /* checked again (rp_open checked every group): the path is built from
     * the task's kind, which need not be one of the groups checked */
    if (array_slice(h, path, f->ntasks, task, &o, &l, e) != 0) {
        rc = -1;
        goto done;
    }
    if (l == 0) goto done;
    if (ip_mul_size(l, sizeof **v, &bytes) != 0) {
        rc = ip_fail_input(e, "%s: length %zu is too large", path, l);
        goto done;
    }
    char vp[320];
    snprintf(vp, sizeof vp, "%s/values", path);
    hid_t d = H5Dopen2(h, vp, H5P_DEFAULT), fs = d < 0 ? -1 : H5Dget_space(d);
    hsize_t start[1] = {(hsize_t)o}, count[1] = {(hsize_t)l};
    hid_t ms = H5Screate_simple(1, count, NULL);
    *v = malloc(bytes);
    if (!*v || fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, *v) < 0) {
        rc = *v ? ip_fail_input(e, "cannot read %s[%zu:%zu]", vp, o, o + l) : ip_fail(e, "out of memory reading %s", vp);
        free(*v);
        *v = NULL;
    } else {
        *n = l;
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
