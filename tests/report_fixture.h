/* A results-file fixture generator for the report tests (HDF5 C API): the
 * layout of docs/results.md (root attributes, /tasks, /params/<kind>,
 * /metrics/<kind>, /arrays/<kind>/<metric>) plus the /ipguard group written
 * by the results writer for IPGuard runs, from a compact description:
 *
 *   fx_task t[] = {{"train:p[seed=1]", "train", "p", "done", "", "scheme=v1;arch=small-p;seed=1",
 *                   "test_acc=0.9;detect=1", NULL}, ...};
 *
 * params and metrics are "name=value;..." lists; arrays "name=v1,v2,...;...". */
#ifndef IP_REPORT_FIXTURE_H
#define IP_REPORT_FIXTURE_H

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_task {
    const char *key, *kind, *name, *status, *deps;
    const char *params, *metrics, *arrays;
} fx_task;

typedef struct fx_suspect {
    int fingerprint_id;
    const char *fingerprint_key;
    int match_id;
    const char *suspect_key, *suspect_kind, *relation;
    double match_rate;
    const char *verdict;
} fx_suspect;

typedef struct fx_summary {
    int fingerprint_id;
    const char *fingerprint_key;
    double k;
    long long positives, negatives;
    double aruc, threshold, fpr_target, fpr;
} fx_summary;

typedef struct fx_ipguard {
    const fx_suspect *suspects;
    int nsuspects;
    const fx_summary *summary; /* curves: robustness(t) = 1 - t^2, uniqueness(t) = t^(1+row) */
    int nsummary;
} fx_ipguard;

#define FX_MAXNAMES 32

/* The value of `name` in "a=1;b=2" into out ("" and 0 when absent). */
static inline int fx_get(const char *list, const char *name, char *out, size_t cap) {
    size_t n = strlen(name);
    out[0] = 0;
    for (const char *p = list; p && *p;) {
        size_t l = strcspn(p, ";");
        if (l > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            snprintf(out, cap, "%.*s", (int)(l - n - 1), p + n + 1);
            return 1;
        }
        p += l + (p[l] == ';');
    }
    return 0;
}

/* The names of "a=1;b=2" added to names[] (distinct). */
static inline void fx_names(const char *list, char names[][48], int *n) {
    for (const char *p = list; p && *p;) {
        size_t l = strcspn(p, ";"), e = strcspn(p, "=");
        if (e < l) {
            char nm[48];
            snprintf(nm, sizeof nm, "%.*s", (int)e, p);
            int k = 0;
            while (k < *n && strcmp(names[k], nm)) k++;
            if (k == *n && *n < FX_MAXNAMES) snprintf(names[(*n)++], 48, "%s", nm);
        }
        p += l + (p[l] == ';');
    }
}

static inline hid_t fx_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static inline int fx_col(hid_t g, const char *name, hid_t ftype, hid_t mtype, size_t n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || (n && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) ? -1 : 0;
    H5Dclose(d);
    H5Sclose(sp);
    return rc;
}
static inline int fx_col_str(hid_t g, const char *name, size_t n, const char **v) {
    hid_t t = fx_str_type();
    int rc = fx_col(g, name, t, t, n, v);
    H5Tclose(t);
    return rc;
}
static inline int fx_col_i64(hid_t g, const char *name, size_t n, const long long *v) {
    return fx_col(g, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, n, v);
}
static inline int fx_col_f64(hid_t g, const char *name, size_t n, const double *v) {
    return fx_col(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, v);
}

static inline void fx_attr_ll(hid_t f, const char *name, long long v) {
    hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}
static inline void fx_attr_str(hid_t f, const char *name, const char *v) {
    hid_t t = fx_str_type(), sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

/* Writes the fixture; returns 0 or -1. */
static inline int fx_write(const char *path, const fx_task *t, int n, int in_progress, const fx_ipguard *ig) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    int rc = 0;
    long long cnt[5] = {0}; /* done failed skipped running pending */
    const char *st[5] = {"done", "failed", "skipped", "running", "pending"};
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 5; s++) cnt[s] += !strcmp(t[i].status, st[s]);
    {
        hid_t sp = H5Screate(H5S_SCALAR), a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        int one = 1;
        H5Awrite(a, H5T_NATIVE_INT, &one);
        H5Aclose(a);
        H5Sclose(sp);
    }
    fx_attr_str(f, "software", "ipsweep test");
    fx_attr_str(f, "spec_name", "fixture");
    fx_attr_str(f, "spec_file", "fixture.yaml");
    fx_attr_ll(f, "in_progress", in_progress);
    fx_attr_ll(f, "tasks_total", n);
    const char *cn[5] = {"tasks_done", "tasks_failed", "tasks_skipped", "tasks_running", "tasks_pending"};
    for (int s = 0; s < 5; s++) fx_attr_ll(f, cn[s], cnt[s]);
    long long *ids = calloc((size_t)n + 1, sizeof *ids);
    const char **s = calloc((size_t)n + 1, sizeof *s);
    double *v = calloc((size_t)n + 1, sizeof *v);
    char(*buf)[128] = calloc((size_t)n + 1, sizeof *buf);
    hid_t g = H5Gcreate2(f, "tasks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int i = 0; i < n; i++) ids[i] = i;
    rc |= fx_col_i64(g, "id", (size_t)n, ids);
#define FX_STR(NAME, FIELD)                                                                                            \
    for (int i = 0; i < n; i++) s[i] = t[i].FIELD ? t[i].FIELD : "";                                                   \
    rc |= fx_col_str(g, NAME, (size_t)n, s);
    FX_STR("key", key)
    FX_STR("kind", kind)
    FX_STR("name", name)
    FX_STR("status", status)
    FX_STR("deps", deps)
#undef FX_STR
    H5Gclose(g);
    /* kinds in order of appearance */
    const char *kinds[16];
    int nk = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        while (k < nk && strcmp(kinds[k], t[i].kind)) k++;
        if (k == nk && nk < 16) kinds[nk++] = t[i].kind;
    }
    hid_t gp = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t gm = H5Gcreate2(f, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ga = H5Gcreate2(f, "arrays", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int k = 0; k < nk; k++) {
        char names[FX_MAXNAMES][48];
        int nn = 0, m = 0;
        /* /params/<kind>: every task of the kind */
        for (int i = 0; i < n; i++)
            if (!strcmp(t[i].kind, kinds[k])) fx_names(t[i].params, names, &nn), ids[m++] = i;
        g = H5Gcreate2(gp, kinds[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc |= fx_col_i64(g, "task_id", (size_t)m, ids);
        for (int c = 0; c < nn; c++) {
            for (int j = 0; j < m; j++) {
                fx_get(t[ids[j]].params, names[c], buf[j], sizeof buf[j]);
                s[j] = buf[j];
            }
            rc |= fx_col_str(g, names[c], (size_t)m, s);
        }
        H5Gclose(g);
        /* /metrics/<kind>: done tasks */
        nn = m = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(t[i].kind, kinds[k]) && !strcmp(t[i].status, "done"))
                fx_names(t[i].metrics, names, &nn), ids[m++] = i;
        if (!m) continue;
        g = H5Gcreate2(gm, kinds[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        rc |= fx_col_i64(g, "task_id", (size_t)m, ids);
        for (int j = 0; j < m; j++) s[j] = t[ids[j]].key;
        rc |= fx_col_str(g, "key", (size_t)m, s);
        for (int c = 0; c < nn; c++) {
            for (int j = 0; j < m; j++) {
                char b[64];
                v[j] = fx_get(t[ids[j]].metrics, names[c], b, sizeof b) ? atof(b) : NAN;
            }
            rc |= fx_col_f64(g, names[c], (size_t)m, v);
        }
        H5Gclose(g);
        /* /arrays/<kind>/<metric> */
        char an[FX_MAXNAMES][48];
        int na = 0;
        for (int j = 0; j < m; j++) fx_names(t[ids[j]].arrays, an, &na);
        if (!na) continue;
        hid_t gak = H5Gcreate2(ga, kinds[k], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        for (int a = 0; a < na; a++) {
            long long aid[64], off[64], len[64], total = 0;
            const char *akey[64];
            double vals[4096];
            int r = 0;
            for (int j = 0; j < m && r < 64; j++) {
                char b[8192];
                if (!fx_get(t[ids[j]].arrays, an[a], b, sizeof b)) continue;
                aid[r] = ids[j], akey[r] = t[ids[j]].key, off[r] = total, len[r] = 0;
                for (char *p = b; *p && total < 4096;) {
                    char *end;
                    vals[total++] = strtod(p, &end);
                    len[r]++;
                    p = *end == ',' ? end + 1 : end + strlen(end);
                }
                r++;
            }
            hid_t gam = H5Gcreate2(gak, an[a], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            rc |= fx_col_i64(gam, "task_id", (size_t)r, aid) | fx_col_str(gam, "key", (size_t)r, akey) |
                  fx_col_i64(gam, "offset", (size_t)r, off) | fx_col_i64(gam, "length", (size_t)r, len) |
                  fx_col_f64(gam, "values", (size_t)total, vals);
            H5Gclose(gam);
        }
        H5Gclose(gak);
    }
    H5Gclose(gp), H5Gclose(gm), H5Gclose(ga);
    if (ig) {
        hid_t gi = H5Gcreate2(f, "ipguard", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t gs = H5Gcreate2(gi, "suspects", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        size_t ns = (size_t)ig->nsuspects, nm = (size_t)ig->nsummary;
        long long *li = calloc(ns + nm + 1, sizeof *li);
        const char **ls = calloc(ns + nm + 1, sizeof *ls);
        double *ld = calloc(ns + nm + 1, sizeof *ld);
#define FX_SCOL(G, N, ARR, FIELD, KIND)                                                                                 \
    for (size_t i = 0; i < N; i++) KIND##_buf[i] = ARR[i].FIELD;                                                       \
    rc |= fx_col_##KIND(G, #FIELD, N, KIND##_buf);
        long long *i64_buf = li;
        const char **str_buf = ls;
        double *f64_buf = ld;
        FX_SCOL(gs, ns, ig->suspects, fingerprint_id, i64)
        FX_SCOL(gs, ns, ig->suspects, fingerprint_key, str)
        FX_SCOL(gs, ns, ig->suspects, match_id, i64)
        FX_SCOL(gs, ns, ig->suspects, suspect_key, str)
        FX_SCOL(gs, ns, ig->suspects, suspect_kind, str)
        FX_SCOL(gs, ns, ig->suspects, relation, str)
        FX_SCOL(gs, ns, ig->suspects, match_rate, f64)
        FX_SCOL(gs, ns, ig->suspects, verdict, str)
        H5Gclose(gs);
        hid_t gm2 = H5Gcreate2(gi, "summary", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        FX_SCOL(gm2, nm, ig->summary, fingerprint_id, i64)
        FX_SCOL(gm2, nm, ig->summary, fingerprint_key, str)
        FX_SCOL(gm2, nm, ig->summary, k, f64)
        FX_SCOL(gm2, nm, ig->summary, positives, i64)
        FX_SCOL(gm2, nm, ig->summary, negatives, i64)
        FX_SCOL(gm2, nm, ig->summary, aruc, f64)
        FX_SCOL(gm2, nm, ig->summary, threshold, f64)
        FX_SCOL(gm2, nm, ig->summary, fpr_target, f64)
        FX_SCOL(gm2, nm, ig->summary, fpr, f64)
#undef FX_SCOL
        H5Gclose(gm2);
        hid_t gc = H5Gcreate2(gi, "curves", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        double th[101], *rob = calloc(nm * 101 + 1, sizeof *rob), *uni = calloc(nm * 101 + 1, sizeof *uni);
        for (int i = 0; i <= 100; i++) th[i] = i / 100.0;
        for (size_t r = 0; r < nm; r++)
            for (int i = 0; i <= 100; i++) rob[r * 101 + i] = 1 - th[i] * th[i], uni[r * 101 + i] = pow(th[i], 1.0 + (double)r);
        rc |= fx_col_f64(gc, "thresholds", 101, th);
        hsize_t dims[2] = {(hsize_t)nm, 101};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        const char *cnm[2] = {"robustness", "uniqueness"};
        double *cv[2] = {rob, uni};
        for (int c = 0; c < 2; c++) {
            hid_t d = H5Dcreate2(gc, cnm[c], H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            rc |= d < 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, cv[c]) < 0;
            H5Dclose(d);
        }
        H5Sclose(sp);
        free(rob), free(uni), free(li), free(ls), free(ld);
        H5Gclose(gc);
        H5Gclose(gi);
    }
    free(ids), free(s), free(v), free(buf);
    if (H5Fclose(f) < 0) rc = -1;
    return rc ? -1 : 0;
}

#endif
