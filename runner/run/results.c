/* The HDF5 results file (results.h, layout in docs/results.md).
 *
 * Everything is rebuilt from the spec and the finished records on every
 * write: the file is a pure function of (spec, records, running flags,
 * in_progress), written to "<path>.tmp.<pid>", flushed, fsync'ed, renamed
 * over <path>, and the directory is fsync'ed (ip_h5_write_atomic, shared with
 * core/io/ckpt.c).
 * HDF5's automatic error printing is off inside rn_results_write; the
 * innermost HDF5 message is appended to ours. */
#include "results.h"

#include "../kinds/kinds.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "../../core/io/h5util.h"
#include "../../core/io/provenance.h"
#include "ipguard_summary.h"


#define RES_COMPRESS_BYTES 65536          /* datasets above this are chunked + deflated */
#define RES_CHUNK_BYTES ((size_t)1 << 20) /* target chunk size */
#define RES_DEFLATE_LEVEL 4

/* ------------------------------------------------------------------------- */
/* writing helpers                                                           */

typedef struct wctx {
    hid_t str;                   /* variable-length UTF-8 string type */
    ip_err *e;
    char where[160];             /* group path, for messages */
} wctx;

static int attr_i64(hid_t loc, const char *name, long long v) {
    return ip_h5_attr_write(loc, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, -1, &v);
}

static int attr_str(const wctx *w, hid_t loc, const char *name, const char *v) {
    const char *s = v ? v : "";
    return ip_h5_attr_write(loc, name, w->str, w->str, -1, &s);
}

/* 1-D dataset of n elements (n may be 0); chunked + shuffle + deflate above
 * RES_COMPRESS_BYTES. */
static int write_col(wctx *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, size_t n, const void *data) {
    ip_h5_detail_buf db;
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    int rc = -1;
    if (sp < 0 || dcpl < 0) goto fail;
    size_t esz = H5Tget_size(ftype);
    if (n * esz > RES_COMPRESS_BYTES) {
        size_t c = RES_CHUNK_BYTES / esz;
        hsize_t chunk[1] = {(hsize_t)(c < n ? c : n)};
        if (H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            H5Pset_deflate(dcpl, RES_DEFLATE_LEVEL) < 0)
            goto fail;
    }
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) goto fail;
    if (n > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) goto fail;
    rc = 0;
    goto done;
fail:
    ip_fail(w->e, "writing dataset %s/%s failed%s", w->where, name, ip_h5_detail(&db));
done:
    ip_h5_close(d);
    ip_h5_close(dcpl);
    ip_h5_close(sp);
    return rc;
}

static int col_str(wctx *w, hid_t loc, const char *name, size_t n, const char *const *v) {
    return write_col(w, loc, name, w->str, w->str, n, v);
}
static int col_i64(wctx *w, hid_t loc, const char *name, size_t n, const long long *v) {
    return write_col(w, loc, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, n, v);
}
static int col_i32(wctx *w, hid_t loc, const char *name, size_t n, const int *v) {
    return write_col(w, loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, n, v);
}
static int col_u64(wctx *w, hid_t loc, const char *name, size_t n, const uint64_t *v) {
    return write_col(w, loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, n, v);
}
static int col_f64(wctx *w, hid_t loc, const char *name, size_t n, const double *v) {
    return write_col(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n, v);
}

/* Groups track link creation order, so h5py (and h5dump/h5ls with their
 * creation-order options) list columns in the documented order (id, key,
 * kind, ... / task_id, key, metrics in order of appearance), not sorted. */
static hid_t order_plist(hid_t cls) {
    hid_t pl = H5Pcreate(cls);
    if (pl < 0) return -1;
    if (H5Pset_link_creation_order(pl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0 ||
        H5Pset_attr_creation_order(pl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) < 0) {
        H5Pclose(pl);
        return -1;
    }
    return pl;
}

static hid_t group_create(wctx *w, hid_t parent, const char *name) {
    ip_h5_detail_buf db;
    hid_t gcpl = order_plist(H5P_GROUP_CREATE);
    hid_t g = gcpl < 0 ? -1 : H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0) ip_fail(w->e, "creating group %s/%s failed%s", w->where, name, ip_h5_detail(&db));
    ip_h5_close(gcpl);
    return g;
}

/* An HDF5 link name from free text: '/' becomes '_', "" and "." become "_". */
static void link_name(char *out, size_t cap, const char *prefix, const char *name) {
    snprintf(out, cap, "%s%s", prefix, name);
    for (char *p = out; *p; p++)
        if (*p == '/') *p = '_';
    if (!out[0] || strcmp(out, ".") == 0) snprintf(out, cap, "_");
}

#define PARAM_NAME_LEN 64 /* a key, "<reference>_path" or "shard" */
#define KIND_LEN 32

/* A task's parameter `name` as a number, typed by its kind's table: 1 (an
 * INT or FLOAT key: *out = its value), 0 (the task has it, not a number),
 * -1 (the task has no such parameter). */
static int param_number(const rn_task *t, const char *name, double *out) {
    const rn_key *k = rn_kind_key(t->k, name);
    if (k) {
        const ip_value *v = rn_task_val(t, name);
        if (k->type == IP_P_INT) return *out = (double)v->u.i, 1;
        if (k->type == IP_P_FLOAT) return *out = v->u.f, 1;
        return 0;
    }
    return rn_task_get(t, name) ? 0 : -1;
}

/* A list of distinct names (metric names, parameter names, kinds). */
typedef struct names {
    char (*v)[IP_METRIC_NAME_LEN > PARAM_NAME_LEN ? IP_METRIC_NAME_LEN : PARAM_NAME_LEN];
    int n, cap;
} names;

static int names_find(const names *l, const char *s, int hint) {
    if (hint >= 0 && hint < l->n && strcmp(l->v[hint], s) == 0) return hint;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return i;
    return -1;
}

/* Index of s, added when absent; -1 on OOM. */
static int names_add(names *l, const char *s, int hint) {
    int i = names_find(l, s, hint);
    if (i >= 0) return i;
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 16;
        void *nv = realloc(l->v, (size_t)nc * sizeof *l->v);
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    snprintf(l->v[l->n], sizeof l->v[0], "%s", s);
    return l->n++;
}

static void names_free(names *l) {
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------------------- */
/* the file                                                                  */

typedef struct input {
    const rn_spec *spec;
    const rn_record *const *rec;
    const int *running;
    int in_progress;
    int n;
} input;

static rn_status task_status(const input *in, int i) {
    if (in->rec && in->rec[i]) return in->rec[i]->status;
    if (!in->running || !in->running[i]) return RN_PENDING;
    return in->running[i] == RN_RUNNING_INTERRUPTED ? RN_INTERRUPTED : RN_RUNNING;
}

static const rn_record *done_rec(const input *in, int i) {
    return in->rec && in->rec[i] && in->rec[i]->status == RN_DONE ? in->rec[i] : NULL;
}

static int write_root(wctx *w, hid_t f, const input *in) {
    ip_h5_detail_buf db;
    long long cnt[RN_NSTATUS] = {0};
    for (int i = 0; i < in->n; i++) cnt[task_status(in, i)]++;
    const rn_spec *s = in->spec;
    hid_t u64 = H5T_STD_U64LE;
    unsigned long long seed = s->seed;
    if (ip_h5_attr_i32(f, "format_version", RN_RESULTS_FORMAT_VERSION) < 0 ||
        attr_str(w, f, "software", ip_provenance_get()->software) < 0 || attr_str(w, f, "spec_name", s->name) < 0 ||
        attr_str(w, f, "spec_file", s->file) < 0 || attr_str(w, f, "overrides", s->overrides) < 0 ||
        ip_h5_attr_write(f, "seed", u64, H5T_NATIVE_ULLONG, -1, &seed) < 0 ||
        ip_h5_attr_i32(f, "in_progress", !!in->in_progress) < 0 ||
        attr_i64(f, "tasks_total", in->n) < 0 || attr_i64(f, "tasks_done", cnt[RN_DONE]) < 0 ||
        attr_i64(f, "tasks_failed", cnt[RN_FAILED]) < 0 || attr_i64(f, "tasks_skipped", cnt[RN_SKIPPED]) < 0 ||
        attr_i64(f, "tasks_running", cnt[RN_RUNNING]) < 0 || attr_i64(f, "tasks_pending", cnt[RN_PENDING]) < 0 ||
        attr_i64(f, "tasks_interrupted", cnt[RN_INTERRUPTED]) < 0)
        return ip_fail(w->e, "writing the root attributes failed%s", ip_h5_detail(&db));
    /* the coordinator's build and machine; each checkpoint records its worker's */
    if (ip_provenance_write_h5(f) < 0) return ip_fail(w->e, "writing /provenance failed%s", ip_h5_detail(&db));
    /* /spec: the spec text, scalar string */
    const char *text = s->text ? s->text : "";
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = sp >= 0 ? H5Dcreate2(f, "spec", w->str, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = d < 0 || H5Dwrite(d, w->str, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text) < 0 ? -1 : 0;
    if (rc) ip_fail(w->e, "writing /spec failed%s", ip_h5_detail(&db));
    ip_h5_close(d);
    ip_h5_close(sp);
    return rc;
}

static int write_tasks(wctx *w, hid_t f, const input *in) {
    const rn_task *T = in->spec->tasks;
    size_t n = (size_t)in->n, m = n ? n : 1;
    int rc = -1;
    hid_t g = -1;
    names pn = {0};
    long long *id = malloc(m * sizeof *id);
    int *rank = malloc(m * sizeof *rank), *att = malloc(m * sizeof *att);
    double *wall = malloc(m * sizeof *wall), *num = malloc(m * sizeof *num);
    uint64_t *seed = malloc(m * sizeof *seed);
    const char **s = malloc(m * sizeof *s);
    char *depbuf = NULL;
    if (!id || !rank || !att || !wall || !num || !seed || !s) {
        ip_fail(w->e, "out of memory for the tasks table (%zu rows)", n);
        goto done;
    }
    snprintf(w->where, sizeof w->where, "/tasks");
    if ((g = group_create(w, f, "tasks")) < 0) goto done;
    for (size_t i = 0; i < n; i++) {
        const rn_record *r = in->rec ? in->rec[i] : NULL;
        id[i] = T[i].id;
        rank[i] = r ? r->rank : -1;
        att[i] = r ? r->attempts : 0;
        wall[i] = r ? r->wall_seconds : NAN;
        seed[i] = T[i].seed;
    }
    if (col_i64(w, g, "id", n, id)) goto done;
#define STRCOL(NAME, EXPR)                                                                                             \
    do {                                                                                                               \
        for (size_t i = 0; i < n; i++) s[i] = (EXPR);                                                                  \
        if (col_str(w, g, NAME, n, s)) goto done;                                                                      \
    } while (0)
    STRCOL("key", T[i].key);
    STRCOL("kind", T[i].kind);
    STRCOL("name", T[i].name);
    STRCOL("status", rn_status_name(task_status(in, (int)i)));
    if (col_i32(w, g, "rank", n, rank) || col_f64(w, g, "wall_seconds", n, wall) ||
        col_i32(w, g, "attempts", n, att))
        goto done;
    STRCOL("error", in->rec && in->rec[i] ? in->rec[i]->error : "");
    if (col_u64(w, g, "seed", n, seed)) goto done;
    STRCOL("checkpoint", T[i].checkpoint);
    /* deps: "3,7" */
    size_t dl = 0;
    for (size_t i = 0; i < n; i++) dl += (size_t)(T[i].ndeps > 0 ? T[i].ndeps : 0) * 12 + 1;
    depbuf = malloc(dl ? dl : 1);
    if (!depbuf) {
        ip_fail(w->e, "out of memory for the deps column");
        goto done;
    }
    for (size_t i = 0, o = 0; i < n; i++) {
        s[i] = depbuf + o;
        depbuf[o] = 0;
        for (int k = 0; k < T[i].ndeps && k < RN_MAX_DEPS; k++)
            o += (size_t)snprintf(depbuf + o, 13, k ? ",%d" : "%d", T[i].deps[k]);
        o++;
    }
    if (col_str(w, g, "deps", n, s)) goto done;
    /* one column per parameter swept in any task */
    for (size_t i = 0; i < n; i++) {
        const char *pname, *ptext;
        int sw;
        for (int k = 0; rn_task_param(&T[i], k, &pname, &ptext, &sw) == 0; k++)
            if (sw && names_add(&pn, pname, -1) < 0) {
                ip_fail(w->e, "out of memory");
                goto done;
            }
    }
    for (int p = 0; p < pn.n; p++) {
        char ln[PARAM_NAME_LEN + 16];
        /* paramnum_: when every task having the parameter has it as a number key */
        int numeric = 1, any = 0;
        for (size_t i = 0; i < n; i++) {
            const char *v = rn_task_get(&T[i], pn.v[p]);
            s[i] = v ? v : "";
            num[i] = NAN;
            int r = v ? param_number(&T[i], pn.v[p], &num[i]) : -1;
            if (r == 0) numeric = 0;
            if (r == 1) any = 1;
        }
        link_name(ln, sizeof ln, "param_", pn.v[p]);
        if (col_str(w, g, ln, n, s)) goto done;
        if (numeric && any) {
            link_name(ln, sizeof ln, "paramnum_", pn.v[p]);
            if (col_f64(w, g, ln, n, num)) goto done;
        }
    }
#undef STRCOL
    rc = 0;
done:
    ip_h5_close(g);
    names_free(&pn);
    free(id), free(rank), free(att), free(wall), free(num), free(seed), free(s), free(depbuf);
    return rc;
}

/* /metrics/<kind> and /arrays/<kind>/<metric> for one kind. */
static int write_kind(wctx *w, hid_t gm, hid_t ga, const input *in, const char *kind) {
    const rn_task *T = in->spec->tasks;
    int rc = -1;
    hid_t gk = -1, gak = -1, gam = -1;
    names mn = {0}, an = {0};
    int nrows = 0;
    int *rows = malloc((size_t)(in->n ? in->n : 1) * sizeof *rows);
    double *cols = NULL, *vals = NULL;
    long long *ids = NULL, *off = NULL, *len = NULL;
    const char **keys = NULL;
    char kn[KIND_LEN + 8], ln[IP_METRIC_NAME_LEN + 16];
    if (!rows) goto oom;
    for (int i = 0; i < in->n; i++)
        if (done_rec(in, i) && strcmp(T[i].kind, kind) == 0) rows[nrows++] = i;
    if (!nrows) {
        free(rows);
        return 0;
    }
    /* scalar columns: every name seen in this kind, in order of appearance */
    for (int r = 0; r < nrows; r++) {
        const ip_metrics *m = &in->rec[rows[r]]->metrics;
        for (int k = 0; k < m->nscalars; k++)
            if (names_add(&mn, m->names[k], k) < 0) goto oom;
        for (int k = 0; k < m->narrays; k++)
            if (names_add(&an, m->arrays[k].name, k) < 0) goto oom;
    }
    size_t nr = (size_t)nrows;
    ids = malloc(nr * sizeof *ids);
    keys = malloc(nr * sizeof *keys);
    cols = malloc((size_t)(mn.n ? mn.n : 1) * nr * sizeof *cols);
    if (!ids || !keys || !cols) goto oom;
    for (size_t i = 0; i < (size_t)mn.n * nr; i++) cols[i] = NAN;
    for (size_t r = 0; r < nr; r++) {
        const rn_record *rec = in->rec[rows[r]];
        ids[r] = T[rows[r]].id;
        keys[r] = T[rows[r]].key;
        for (int k = 0, c = -1; k < rec->metrics.nscalars; k++) {
            c = names_find(&mn, rec->metrics.names[k], c + 1);
            cols[(size_t)c * nr + r] = rec->metrics.values[k];
        }
    }
    link_name(kn, sizeof kn, "", kind);
    snprintf(w->where, sizeof w->where, "/metrics");
    if ((gk = group_create(w, gm, kn)) < 0) goto done;
    snprintf(w->where, sizeof w->where, "/metrics/%s", kn);
    if (col_i64(w, gk, "task_id", nr, ids) || col_str(w, gk, "key", nr, keys)) goto done;
    for (int c = 0; c < mn.n; c++) {
        int clash = strcmp(mn.v[c], "task_id") == 0 || strcmp(mn.v[c], "key") == 0;
        link_name(ln, sizeof ln, clash ? "metric_" : "", mn.v[c]);
        if (col_f64(w, gk, ln, nr, cols + (size_t)c * nr)) goto done;
    }
    if (!an.n) {
        rc = 0;
        goto done;
    }
    /* arrays: ragged, per metric name: one row per task that has it */
    snprintf(w->where, sizeof w->where, "/arrays");
    if ((gak = group_create(w, ga, kn)) < 0) goto done;
    off = malloc(nr * sizeof *off);
    len = malloc(nr * sizeof *len);
    if (!off || !len) goto oom;
    for (int a = 0; a < an.n; a++) {
        size_t m = 0, total = 0;
        for (size_t r = 0; r < nr; r++) {
            const ip_metrics *mt = &in->rec[rows[r]]->metrics;
            for (int k = 0; k < mt->narrays; k++)
                if (strcmp(mt->arrays[k].name, an.v[a]) == 0) {
                    ids[m] = T[rows[r]].id;
                    keys[m] = T[rows[r]].key;
                    off[m] = (long long)total;
                    len[m] = (long long)mt->arrays[k].n;
                    total += mt->arrays[k].n;
                    m++;
                    break;
                }
        }
        free(vals);
        vals = malloc((total ? total : 1) * sizeof *vals);
        if (!vals) goto oom;
        for (size_t r = 0, o = 0; r < nr; r++) {
            const ip_metrics *mt = &in->rec[rows[r]]->metrics;
            for (int k = 0; k < mt->narrays; k++)
                if (strcmp(mt->arrays[k].name, an.v[a]) == 0) {
                    if (mt->arrays[k].n) memcpy(vals + o, mt->arrays[k].v, mt->arrays[k].n * sizeof *vals);
                    o += mt->arrays[k].n;
                    break;
                }
        }
        link_name(ln, sizeof ln, "", an.v[a]);
        snprintf(w->where, sizeof w->where, "/arrays/%s", kn);
        if ((gam = group_create(w, gak, ln)) < 0) goto done;
        snprintf(w->where, sizeof w->where, "/arrays/%s/%s", kn, ln);
        if (col_i64(w, gam, "task_id", m, ids) || col_str(w, gam, "key", m, keys) ||
            col_i64(w, gam, "offset", m, off) || col_i64(w, gam, "length", m, len) ||
            col_f64(w, gam, "values", total, vals))
            goto done;
        ip_h5_close(gam);
        gam = -1;
    }
    rc = 0;
    goto done;
oom:
    ip_fail(w->e, "out of memory writing the metrics of kind %s", kind);
done:
    ip_h5_close(gam);
    ip_h5_close(gak);
    ip_h5_close(gk);
    names_free(&mn);
    names_free(&an);
    free(rows), free(cols), free(vals), free(ids), free(off), free(len), free(keys);
    return rc;
}

/* /params/<kind>: one row per task of the kind (any status), one string
 * column per parameter any of them has (every parameter, not only swept
 * ones: a report groups by scheme, rate, ... without re-reading the spec). */
static int write_params_kind(wctx *w, hid_t gp, const input *in, const char *kind) {
    const rn_task *T = in->spec->tasks;
    int rc = -1, nrows = 0;
    hid_t g = -1;
    names pn = {0};
    int *rows = malloc((size_t)(in->n ? in->n : 1) * sizeof *rows);
    long long *ids = malloc((size_t)(in->n ? in->n : 1) * sizeof *ids);
    const char **s = malloc((size_t)(in->n ? in->n : 1) * sizeof *s);
    char kn[KIND_LEN + 8], ln[PARAM_NAME_LEN + 8];
    if (!rows || !ids || !s) goto oom;
    for (int i = 0; i < in->n; i++)
        if (strcmp(T[i].kind, kind) == 0) {
            ids[nrows] = T[i].id;
            rows[nrows++] = i;
            const char *pname, *ptext;
            int sw;
            for (int k = 0; rn_task_param(&T[i], k, &pname, &ptext, &sw) == 0; k++)
                if (names_add(&pn, pname, k) < 0) goto oom;
        }
    link_name(kn, sizeof kn, "", kind);
    snprintf(w->where, sizeof w->where, "/params");
    if ((g = group_create(w, gp, kn)) < 0) goto done;
    snprintf(w->where, sizeof w->where, "/params/%s", kn);
    if (col_i64(w, g, "task_id", (size_t)nrows, ids)) goto done;
    for (int p = 0; p < pn.n; p++) {
        for (int r = 0; r < nrows; r++) {
            const char *v = rn_task_get(&T[rows[r]], pn.v[p]);
            s[r] = v ? v : "";
        }
        link_name(ln, sizeof ln, strcmp(pn.v[p], "task_id") ? "" : "param_", pn.v[p]);
        if (col_str(w, g, ln, (size_t)nrows, s)) goto done;
    }
    rc = 0;
    goto done;
oom:
    ip_fail(w->e, "out of memory writing the parameters of kind %s", kind);
done:
    ip_h5_close(g);
    names_free(&pn);
    free(rows), free(ids), free(s);
    return rc;
}

static int write_metrics(wctx *w, hid_t f, const input *in) {
    int rc = -1;
    names kinds = {0};
    w->where[0] = 0;
    hid_t gp = -1;
    hid_t gm = group_create(w, f, "metrics");
    hid_t ga = gm >= 0 ? group_create(w, f, "arrays") : -1;
    if (ga < 0) goto done;
    for (int i = 0; i < in->n; i++)
        if (names_add(&kinds, in->spec->tasks[i].kind, kinds.n - 1) < 0) {
            ip_fail(w->e, "out of memory");
            goto done;
        }
    for (int k = 0; k < kinds.n; k++)
        if (write_kind(w, gm, ga, in, kinds.v[k])) goto done;
    w->where[0] = 0;
    if ((gp = group_create(w, f, "params")) < 0) goto done;
    for (int k = 0; k < kinds.n; k++)
        if (write_params_kind(w, gp, in, kinds.v[k])) goto done;
    rc = 0;
done:
    ip_h5_close(gp);
    ip_h5_close(ga);
    ip_h5_close(gm);
    names_free(&kinds);
    return rc;
}

/* A 2-D float64 dataset rows x cols (the IPGuard curves). */
static int write_matrix(wctx *w, hid_t loc, const char *name, size_t rows, size_t cols, const double *v) {
    ip_h5_detail_buf db;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = d < 0 || (rows && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) ? -1 : 0;
    if (rc) ip_fail(w->e, "writing dataset %s/%s failed%s", w->where, name, ip_h5_detail(&db));
    ip_h5_close(d);
    ip_h5_close(sp);
    return rc;
}

/* /ipguard: verdicts derived from the done match tasks (runner/run/ipguard_summary.h);
 * absent when there is none. */
static int write_ipguard(wctx *w, hid_t f, const input *in) {
    rn_ipguard g;
    if (rn_ipguard_build(in->spec, in->rec, &g, w->e) != 0) return -1;
    if (g.nmatches == 0) return rn_ipguard_free(&g), 0;
    const rn_task *T = in->spec->tasks;
    size_t nm = (size_t)g.nmatches, nf = (size_t)g.nfps, n = nm > nf ? nm : nf, nt = RN_IPG_THRESHOLDS;
    long long *li = malloc(n * sizeof *li);
    double *ld = malloc(n * sizeof *ld), *curve = malloc((nf * nt + nt) * sizeof *curve);
    const char **ls = malloc(n * sizeof *ls);
    hid_t gi = -1, gs = -1, gm = -1, gc = -1;
    int rc = -1;
    if (!li || !ld || !ls || !curve) {
        ip_fail(w->e, "out of memory for /ipguard");
        goto done;
    }
#define I64COL(G, N, NAME, EXPR)                                                                                       \
    do {                                                                                                               \
        for (size_t i = 0; i < (N); i++) li[i] = (EXPR);                                                               \
        if (col_i64(w, G, NAME, N, li)) goto done;                                                                     \
    } while (0)
#define F64COL(G, N, NAME, EXPR)                                                                                       \
    do {                                                                                                               \
        for (size_t i = 0; i < (N); i++) ld[i] = (EXPR);                                                               \
        if (col_f64(w, G, NAME, N, ld)) goto done;                                                                     \
    } while (0)
#define STRCOL(G, N, NAME, EXPR)                                                                                       \
    do {                                                                                                               \
        for (size_t i = 0; i < (N); i++) ls[i] = (EXPR);                                                               \
        if (col_str(w, G, NAME, N, ls)) goto done;                                                                     \
    } while (0)
    w->where[0] = 0;
    if ((gi = group_create(w, f, "ipguard")) < 0) goto done;
    snprintf(w->where, sizeof w->where, "/ipguard");
    if ((gs = group_create(w, gi, "suspects")) < 0) goto done;
    snprintf(w->where, sizeof w->where, "/ipguard/suspects");
    const rn_ipg_match *M = g.matches;
    I64COL(gs, nm, "fingerprint_id", M[i].fingerprint);
    STRCOL(gs, nm, "fingerprint_key", T[M[i].fingerprint].key);
    I64COL(gs, nm, "match_id", M[i].match);
    I64COL(gs, nm, "suspect_id", M[i].suspect);
    STRCOL(gs, nm, "suspect_key", T[M[i].suspect].key);
    STRCOL(gs, nm, "suspect_kind", T[M[i].suspect].kind);
    STRCOL(gs, nm, "relation", rn_relation_name(M[i].relation));
    F64COL(gs, nm, "match_rate", M[i].rate);
    STRCOL(gs, nm, "verdict", M[i].pirated ? "pirated" : "clean");
    I64COL(gs, nm, "calibration", M[i].calibration);
    snprintf(w->where, sizeof w->where, "/ipguard");
    if ((gm = group_create(w, gi, "summary")) < 0) goto done;
    snprintf(w->where, sizeof w->where, "/ipguard/summary");
    const rn_ipg_fingerprint *F = g.fps;
    I64COL(gm, nf, "fingerprint_id", F[i].fingerprint);
    STRCOL(gm, nf, "fingerprint_key", T[F[i].fingerprint].key);
    I64COL(gm, nf, "owner_id", F[i].owner);
    STRCOL(gm, nf, "owner_key", T[F[i].owner].key);
    F64COL(gm, nf, "k", F[i].k);
    I64COL(gm, nf, "positives", F[i].positives);
    I64COL(gm, nf, "negatives", F[i].negatives);
    I64COL(gm, nf, "calibration", F[i].calibration);
    F64COL(gm, nf, "aruc", F[i].aruc);
    F64COL(gm, nf, "roc_auc", F[i].roc_auc);
    F64COL(gm, nf, "threshold", F[i].threshold);
    F64COL(gm, nf, "fpr_target", F[i].fpr_target);
    F64COL(gm, nf, "fpr", F[i].fpr);
    F64COL(gm, nf, "tpr", F[i].tpr);
#undef I64COL
#undef F64COL
#undef STRCOL
    snprintf(w->where, sizeof w->where, "/ipguard");
    if ((gc = group_create(w, gi, "curves")) < 0) goto done;
    snprintf(w->where, sizeof w->where, "/ipguard/curves");
    for (size_t t = 0; t < nt; t++) curve[t] = (double)t / (double)(nt - 1);
    if (col_f64(w, gc, "thresholds", nt, curve)) goto done;
    for (size_t r = 0; r < nf; r++) memcpy(curve + r * nt, F[r].robustness, nt * sizeof *curve);
    if (write_matrix(w, gc, "robustness", nf, nt, curve)) goto done;
    for (size_t r = 0; r < nf; r++) memcpy(curve + r * nt, F[r].uniqueness, nt * sizeof *curve);
    if (write_matrix(w, gc, "uniqueness", nf, nt, curve)) goto done;
    rc = 0;
done:
    ip_h5_close(gc), ip_h5_close(gm), ip_h5_close(gs), ip_h5_close(gi);
    free(li), free(ld), free(ls), free(curve);
    rn_ipguard_free(&g);
    return rc;
}

/* The whole file (user: the input) into an open, empty file: the ip_h5_fill
 * of write_impl. */
static int write_contents(hid_t f, const void *user, ip_err *e) {
    const input *in = user;
    ip_h5_detail_buf db;
    wctx w = {.str = H5Tcopy(H5T_C_S1), .e = e};
    int rc = -1;
    if (w.str < 0 || H5Tset_size(w.str, H5T_VARIABLE) < 0 || H5Tset_cset(w.str, H5T_CSET_UTF8) < 0) {
        ip_fail(e, "cannot make the string type%s", ip_h5_detail(&db));
        goto done;
    }
    if (write_root(&w, f, in) || write_tasks(&w, f, in) || write_metrics(&w, f, in) || write_ipguard(&w, f, in))
        goto done;
    rc = 0;
done:
    ip_h5_close(w.str);
    return rc;
}

static int check_input(const input *in, ip_err *e) {
    const rn_spec *s = in->spec;
    if (s->ntasks < 0 || (s->ntasks > 0 && !s->tasks)) return ip_fail(e, "the spec has no task list");
    for (int i = 0; i < in->n; i++) {
        const rn_record *r = in->rec ? in->rec[i] : NULL;
        if (!r) continue;
        if (strcmp(r->key, s->tasks[i].key) != 0)
            return ip_fail(e, "the record for task %d has key \"%.100s\", the task's key is \"%.100s\"", i, r->key,
                           s->tasks[i].key);
        if (r->status != RN_DONE && r->status != RN_FAILED && r->status != RN_SKIPPED)
            return ip_fail(e, "the record for task %d (%.100s) has status %s, not a finished one", i, r->key,
                           rn_status_name(r->status));
        if (r->metrics.nscalars < 0 || r->metrics.nscalars > IP_METRICS_MAX_SCALARS || r->metrics.narrays < 0 ||
            r->metrics.narrays > IP_METRICS_MAX_ARRAYS)
            return ip_fail(e, "the record for task %d (%.100s) has malformed metrics", i, r->key);
    }
    return 0;
}

static int write_impl(const char *path, const input *in, ip_err *e) {
    if (!path || !path[0]) return ip_fail(e, "writing the results: no file name given");
    if (!in->spec) return ip_fail(e, "writing %s: no spec", path);
    if (check_input(in, e)) return ip_failctx(e, "writing %s", path);
    hid_t fcpl = order_plist(H5P_FILE_CREATE);
    int rc = ip_h5_write_atomic(path, fcpl, "writing", write_contents, in, e);
    ip_h5_close(fcpl);
    return rc;
}

int rn_results_write(const char *path, const rn_spec *spec, const rn_record *const *by_task, const int *running,
                     int in_progress, ip_err *e) {
    input in = {spec, by_task, running, in_progress, spec ? spec->ntasks : 0};
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = write_impl(path, &in, e);
    ip_h5_quiet_off(&q);
    return rc;
}
