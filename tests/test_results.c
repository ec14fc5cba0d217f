/* The HDF5 results file: the documented layout read back with the HDF5 C
 * API, atomic rewrites, h5dump and h5py, a resumed run's file. */
#include "journal_fixture.h"

TestSuite(results, .init = make_dir, .fini = remove_dir);

/* ------------------------------------------------------------------------- */
/* results: a small fake spec                                                */

/* 6 tasks: train x3 (done, done, failed), eval x3 (skipped, pending, running). */
typedef struct fake {
    rn_spec spec;
    rn_task tasks[6];
    char keys[6][64];
    int deps[6][2];
    rn_record recs[4];
    const rn_record *by[6];
    int running[6];
} fake;

static char spec_text[] = "name: fake\nseed: 42\nmodels:\n  - name: base\n    seed: [1, 2]\n# ünïcode\n";

static void fake_init(fake *fk) {
    memset(fk, 0, sizeof *fk);
    rn_spec *s = &fk->spec;
    s->text = spec_text;
    snprintf(s->name, sizeof s->name, "fake");
    snprintf(s->file, sizeof s->file, "configs/fake.yaml");
    s->seed = 42;
    s->tasks = fk->tasks;
    s->ntasks = 6;
    for (int i = 0; i < 6; i++) {
        rn_task *t = &fk->tasks[i];
        const char *kind = i < 3 ? "train" : "eval", *nm = i < 3 ? "base" : "ev";
        cr_assert_eq(rn_task_init(t, i < 3 ? &fake_train_kind : &fake_eval_kind), 0);
        t->id = i;
        t->seed = 1000u + (uint64_t)i;
        t->name = nm;
        char v[16];
        snprintf(v, sizeof v, "%d", i + 1);
        cr_assert_eq(rn_task_set(t, "seed", v, 1), 0);
        cr_assert_eq(rn_task_set(t, "epochs", "5", 0), 0);
        if (i >= 3) {
            cr_assert_eq(rn_task_set(t, "attack", i == 3 ? "fgsm" : "pgd", 1), 0);
            fk->deps[i][t->ndeps++] = i - 3;
            fk->deps[i][t->ndeps++] = 0;
            t->deps = fk->deps[i];
        }
        snprintf(fk->keys[i], sizeof fk->keys[i], "%s:%s[seed=%d]", kind, nm, i + 1);
        t->key = fk->keys[i];
    }
    fk->tasks[0].checkpoint = "ckpt/base-1.h5";
    /* 0: done, 2 arrays; 1: done, other scalar set; 2: failed; 3: skipped */
    for (int i = 0; i < 4; i++) {
        rn_record *r = &fk->recs[i];
        rn_record_init(r);
        snprintf(r->key, sizeof r->key, "%s", fk->tasks[i].key);
        r->rank = i % 2 + 1;
        r->wall_seconds = 1.5 * (i + 1);
        r->attempts = 1;
        fk->by[i] = r;
    }
    rn_record *r = fk->recs;
    r[0].status = RN_DONE;
    ip_metrics_set(&r[0].metrics, "test_acc", 0.91, NULL);
    ip_metrics_set(&r[0].metrics, "train_loss", 0.25, NULL);
    double ep[3] = {0.5, 0.8, 0.91};
    ip_metrics_set_array(&r[0].metrics, "epoch_test_acc", ep, 3, NULL);
    double fp[4] = {0.1, 0.11, 0.09, 0.12};
    ip_metrics_set_array(&r[0].metrics, "fake_acc", fp, 4, NULL);
    r[1].status = RN_DONE;
    ip_metrics_set(&r[1].metrics, "test_acc", 0.89, NULL);
    ip_metrics_set(&r[1].metrics, "detect_rate", 1.0, NULL); /* train_loss absent -> NaN */
    double ep1[2] = {0.7, 0.89};
    ip_metrics_set_array(&r[1].metrics, "epoch_test_acc", ep1, 2, NULL);
    r[2].status = RN_FAILED;
    r[2].attempts = 2;
    snprintf(r[2].error, sizeof r[2].error, "%s", "loss is NaN at epoch 3");
    ip_metrics_set(&r[2].metrics, "test_acc", 0.1, NULL); /* not in /metrics: failed */
    r[3].status = RN_SKIPPED;
    r[3].rank = -1;
    r[3].wall_seconds = NAN;
    r[3].attempts = 0;
    snprintf(r[3].error, sizeof r[3].error, "dependency %s failed", fk->tasks[0].key);
    fk->running[5] = 1;
}

static void fake_free(fake *fk) {
    for (int i = 0; i < 4; i++) rn_record_free(&fk->recs[i]);
    for (int i = 0; i < 6; i++) rn_task_free(&fk->tasks[i]);
}

/* HDF5 readers for the checks */

static hid_t open_ro(const char *p) {
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "cannot open %s", p);
    return f;
}

static hssize_t ds_len(hid_t f, const char *p) {
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    cr_assert_geq(d, 0, "missing %s", p);
    hid_t sp = H5Dget_space(d);
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), 1, "%s is not 1-D", p);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5Dclose(d);
    return n;
}

static void read_num(hid_t f, const char *p, hid_t mtype, H5T_class_t cls, size_t n, void *out) {
    cr_assert_eq(ds_len(f, p), (hssize_t)n, "%s has the wrong length", p);
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    cr_assert_eq(H5Tget_class(t), cls, "%s has the wrong type class", p);
    H5Tclose(t);
    if (n) cr_assert_geq(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), 0, "reading %s", p);
    H5Dclose(d);
}

static void read_i64(hid_t f, const char *p, size_t n, long long *out) {
    read_num(f, p, H5T_NATIVE_LLONG, H5T_INTEGER, n, out);
}
static void read_i32(hid_t f, const char *p, size_t n, int *out) {
    read_num(f, p, H5T_NATIVE_INT, H5T_INTEGER, n, out);
}
static void read_f64(hid_t f, const char *p, size_t n, double *out) {
    read_num(f, p, H5T_NATIVE_DOUBLE, H5T_FLOAT, n, out);
}

/* Checks that the string column p equals want[0..n). */
static void check_strs(hid_t f, const char *p, size_t n, const char *const *want) {
    cr_assert_eq(ds_len(f, p), (hssize_t)n, "%s has the wrong length", p);
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    cr_assert_eq(H5Tget_class(t), H5T_STRING);
    cr_assert_gt(H5Tis_variable_str(t), 0, "%s: not variable-length", p);
    cr_assert_eq(H5Tget_cset(t), H5T_CSET_UTF8, "%s: not UTF-8", p);
    char **v = calloc(n ? n : 1, sizeof *v);
    if (n) cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    for (size_t i = 0; i < n; i++) cr_assert_str_eq(v[i], want[i], "%s[%zu]", p, i);
    if (n) {
        hid_t sp = H5Dget_space(d);
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
        H5Sclose(sp);
    }
    free(v);
    H5Tclose(t);
    H5Dclose(d);
}

static long long attr_i64(hid_t loc, const char *name) {
    long long v = -99;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "missing attribute %s", name);
    cr_assert_geq(H5Aread(a, H5T_NATIVE_LLONG, &v), 0);
    H5Aclose(a);
    return v;
}

static void attr_str_eq(hid_t loc, const char *name, const char *want) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "missing attribute %s", name);
    hid_t t = H5Aget_type(a);
    char *s = NULL;
    cr_assert_geq(H5Aread(a, t, &s), 0);
    cr_assert_str_eq(s, want, "attribute %s", name);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
}

static int exists(hid_t f, const char *p) { return H5Lexists(f, p, H5P_DEFAULT) > 0; }

static int count_tmp_files(void) {
    DIR *d = opendir(tdir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

Test(results, layout_read_back_with_the_c_api) {
    fake fk;
    fake_init(&fk);
    const char *p = tpath("res.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 1, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p);
    /* root attributes */
    cr_assert_eq(attr_i64(f, "format_version"), 1);
    cr_assert_eq(attr_i64(f, "in_progress"), 1);
    cr_assert_eq(attr_i64(f, "seed"), 42);
    cr_assert_eq(attr_i64(f, "tasks_total"), 6);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    cr_assert_eq(attr_i64(f, "tasks_failed"), 1);
    cr_assert_eq(attr_i64(f, "tasks_skipped"), 1);
    cr_assert_eq(attr_i64(f, "tasks_running"), 1);
    cr_assert_eq(attr_i64(f, "tasks_pending"), 1);
    attr_str_eq(f, "spec_name", "fake");
    hid_t a = H5Aopen(f, "software", H5P_DEFAULT);
    hid_t at = H5Aget_type(a);
    char *sw = NULL;
    H5Aread(a, at, &sw);
    cr_assert(strncmp(sw, "ipsweep", 7) == 0, "software = %s", sw);
    H5free_memory(sw);
    H5Tclose(at);
    H5Aclose(a);
    /* /spec */
    {
        hid_t d = H5Dopen2(f, "spec", H5P_DEFAULT);
        hid_t t = H5Dget_type(d);
        char *s = NULL;
        cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s), 0);
        cr_assert_str_eq(s, spec_text);
        H5free_memory(s);
        H5Tclose(t);
        H5Dclose(d);
    }
    /* /tasks */
    long long id[6];
    read_i64(f, "tasks/id", 6, id);
    for (int i = 0; i < 6; i++) cr_assert_eq(id[i], i);
    const char *keys[6], *kinds[6], *names[6];
    for (int i = 0; i < 6; i++) keys[i] = fk.tasks[i].key, kinds[i] = fk.tasks[i].kind, names[i] = fk.tasks[i].name;
    check_strs(f, "tasks/key", 6, keys);
    check_strs(f, "tasks/kind", 6, kinds);
    check_strs(f, "tasks/name", 6, names);
    const char *status[6] = {"done", "done", "failed", "skipped", "pending", "running"};
    check_strs(f, "tasks/status", 6, status);
    int rank[6], att[6];
    read_i32(f, "tasks/rank", 6, rank);
    read_i32(f, "tasks/attempts", 6, att);
    int wr[6] = {1, 2, 1, -1, -1, -1}, wa[6] = {1, 1, 2, 0, 0, 0};
    for (int i = 0; i < 6; i++) cr_assert(rank[i] == wr[i] && att[i] == wa[i], "row %d: rank %d attempts %d", i,
                                          rank[i], att[i]);
    double wall[6];
    read_f64(f, "tasks/wall_seconds", 6, wall);
    cr_assert_float_eq(wall[0], 1.5, 1e-15);
    cr_assert_float_eq(wall[2], 4.5, 1e-15);
    cr_assert(isnan(wall[3]) && isnan(wall[4]) && isnan(wall[5]));
    char skip_err[300];
    snprintf(skip_err, sizeof skip_err, "dependency %s failed", fk.tasks[0].key);
    const char *errs[6] = {"", "", "loss is NaN at epoch 3", skip_err, "", ""};
    check_strs(f, "tasks/error", 6, errs);
    const char *deps[6] = {"", "", "", "0,0", "1,0", "2,0"};
    check_strs(f, "tasks/deps", 6, deps);
    const char *ck[6] = {"ckpt/base-1.h5", "", "", "", "", ""};
    check_strs(f, "tasks/checkpoint", 6, ck);
    /* swept parameters: seed (numeric) and attack (text); epochs is never swept */
    const char *ps[6] = {"1", "2", "3", "4", "5", "6"};
    check_strs(f, "tasks/param_seed", 6, ps);
    double pn[6];
    read_f64(f, "tasks/paramnum_seed", 6, pn);
    for (int i = 0; i < 6; i++) cr_assert_eq(pn[i], i + 1.0);
    const char *pa[6] = {"", "", "", "fgsm", "pgd", "pgd"};
    check_strs(f, "tasks/param_attack", 6, pa);
    cr_assert(!exists(f, "tasks/paramnum_attack"));
    cr_assert(!exists(f, "tasks/param_epochs"));
    /* /params/<kind>: every parameter of every task of the kind, swept or not, any status */
    read_i64(f, "params/train/task_id", 3, id);
    cr_assert(id[0] == 0 && id[1] == 1 && id[2] == 2);
    const char *pe[3] = {"5", "5", "5"}, *pse[3] = {"4", "5", "6"}, *pat[3] = {"fgsm", "pgd", "pgd"};
    check_strs(f, "params/train/epochs", 3, pe);
    check_strs(f, "params/eval/seed", 3, pse);
    check_strs(f, "params/eval/attack", 3, pat);
    cr_assert(!exists(f, "params/train/attack"));
    attr_str_eq(f, "overrides", "");
    /* every /tasks column has 6 rows */
    {
        hid_t g = H5Gopen2(f, "tasks", H5P_DEFAULT);
        H5G_info_t gi;
        H5Gget_info(g, &gi);
        cr_assert_geq(gi.nlinks, 15);
        for (hsize_t i = 0; i < gi.nlinks; i++) {
            char nm[128], full[160];
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
            snprintf(full, sizeof full, "tasks/%s", nm);
            cr_assert_eq(ds_len(f, full), 6, "%s", full);
        }
        H5Gclose(g);
    }
    /* /metrics/train: the two done tasks; union of scalar names, NaN where absent */
    long long tid[2];
    read_i64(f, "metrics/train/task_id", 2, tid);
    cr_assert(tid[0] == 0 && tid[1] == 1);
    const char *mk[2] = {fk.tasks[0].key, fk.tasks[1].key};
    check_strs(f, "metrics/train/key", 2, mk);
    double m[2];
    read_f64(f, "metrics/train/test_acc", 2, m);
    cr_assert(m[0] == 0.91 && m[1] == 0.89);
    read_f64(f, "metrics/train/train_loss", 2, m);
    cr_assert(m[0] == 0.25 && isnan(m[1]));
    read_f64(f, "metrics/train/detect_rate", 2, m);
    cr_assert(isnan(m[0]) && m[1] == 1.0);
    cr_assert(!exists(f, "metrics/eval")); /* no eval task is done */
    /* /arrays/train/epoch_test_acc: ragged */
    read_i64(f, "arrays/train/epoch_test_acc/task_id", 2, tid);
    cr_assert(tid[0] == 0 && tid[1] == 1);
    check_strs(f, "arrays/train/epoch_test_acc/key", 2, mk);
    long long off[2], len[2];
    read_i64(f, "arrays/train/epoch_test_acc/offset", 2, off);
    read_i64(f, "arrays/train/epoch_test_acc/length", 2, len);
    cr_assert(off[0] == 0 && len[0] == 3 && off[1] == 3 && len[1] == 2);
    double v[5];
    read_f64(f, "arrays/train/epoch_test_acc/values", 5, v);
    double wv[5] = {0.5, 0.8, 0.91, 0.7, 0.89};
    for (int i = 0; i < 5; i++) cr_assert_eq(v[i], wv[i]);
    read_i64(f, "arrays/train/fake_acc/task_id", 1, tid);
    cr_assert_eq(tid[0], 0);
    read_f64(f, "arrays/train/fake_acc/values", 4, v);
    cr_assert_eq(v[3], 0.12);
    H5Fclose(f);
    cr_assert_eq(count_tmp_files(), 0);
    fake_free(&fk);
}

Test(results, big_arrays_compressed_and_exact) {
    fake fk;
    fake_init(&fk);
    size_t n = 100000;
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 0.1 + (double)(i % 1000) / 1000.0;
    ip_metrics_set_array(&fk.recs[1].metrics, "fake_acc", x, n, NULL);
    const char *p = tpath("big.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, NULL, 0, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p);
    cr_assert_eq(attr_i64(f, "in_progress"), 0);
    cr_assert_eq(attr_i64(f, "tasks_pending"), 2); /* running == NULL */
    double *y = malloc((n + 4) * sizeof *y);
    read_f64(f, "arrays/train/fake_acc/values", n + 4, y);
    cr_assert_eq(memcmp(y + 4, x, n * sizeof *x), 0);
    hid_t d = H5Dopen2(f, "arrays/train/fake_acc/values", H5P_DEFAULT);
    hid_t pl = H5Dget_create_plist(d);
    cr_assert_eq(H5Pget_layout(pl), H5D_CHUNKED);
    cr_assert_geq(H5Pget_nfilters(pl), 2); /* shuffle + deflate */
    cr_assert_lt(H5Dget_storage_size(d), n * sizeof(double) / 4);
    H5Pclose(pl);
    H5Dclose(d);
    /* small ones stay contiguous */
    d = H5Dopen2(f, "tasks/id", H5P_DEFAULT);
    pl = H5Dget_create_plist(d);
    cr_assert_eq(H5Pget_layout(pl), H5D_CONTIGUOUS);
    H5Pclose(pl);
    H5Dclose(d);
    H5Fclose(f);
    free(x);
    free(y);
    fake_free(&fk);
}

Test(results, rewrite_is_atomic_and_leaves_no_temp_files) {
    fake fk;
    fake_init(&fk);
    const char *p = tpath("atomic.h5");
    ip_err e = {{0}};
    const rn_record *none[6] = {0};
    cr_assert_eq(rn_results_write(p, &fk.spec, none, NULL, 1, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p); /* a reader holding the old file open */
    cr_assert_eq(attr_i64(f, "tasks_done"), 0);
    cr_assert(!exists(f, "metrics/train"));
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(attr_i64(f, "tasks_done"), 0); /* still sees the old, complete file */
    H5Fclose(f);
    f = open_ro(p);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    cr_assert_eq(attr_i64(f, "in_progress"), 0);
    H5Fclose(f);
    cr_assert_eq(count_tmp_files(), 0);

    /* a failed write leaves the previous file and no temporary file */
    rn_record wrong;
    rn_record_init(&wrong);
    snprintf(wrong.key, sizeof wrong.key, "not-the-key");
    wrong.status = RN_DONE;
    const rn_record *bad[6] = {&wrong};
    cr_assert_neq(rn_results_write(p, &fk.spec, bad, NULL, 0, &e), 0);
    cr_assert(strstr(e.msg, "not-the-key"), "%s", e.msg);
    f = open_ro(p);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    H5Fclose(f);
    cr_assert_eq(count_tmp_files(), 0);
    /* a missing directory is a clear error */
    cr_assert_neq(rn_results_write(tpath("no/such/dir/x.h5"), &fk.spec, fk.by, NULL, 0, &e), 0);
    cr_assert(strstr(e.msg, "no/such/dir"), "%s", e.msg);
    fake_free(&fk);
}

Test(results, empty_spec) {
    rn_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "empty");
    const char *p = tpath("empty.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &s, NULL, NULL, 0, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p);
    cr_assert_eq(attr_i64(f, "tasks_total"), 0);
    cr_assert_eq(ds_len(f, "tasks/key"), 0);
    H5Fclose(f);
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

Test(results, h5dump_reads_it) {
    if (access("/usr/bin/h5dump", X_OK) != 0 && run_cmd("command -v h5dump >/dev/null 2>&1") != 0)
        cr_skip_test("h5dump not installed");
    fake fk;
    fake_init(&fk);
    const char *p = tpath("dump.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 1, &e), 0, "%s", e.msg);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s' >/dev/null 2>&1", p);
    cr_assert_eq(run_cmd(cmd), 0);
    snprintf(cmd, sizeof cmd, "h5dump -d /metrics/train/test_acc '%s' 2>/dev/null | grep -q '0.91'", p);
    cr_assert_eq(run_cmd(cmd), 0);
    fake_free(&fk);
}

Test(results, h5py_reads_tasks_and_metrics) {
    if (run_cmd("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) cr_skip_test("h5py not installed");
    fake fk;
    fake_init(&fk);
    const char *p = tpath("py.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 1, &e), 0, "%s", e.msg);
    const char *py =
        "import sys, math, h5py, numpy as np\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "t = f['tasks']\n"
        "cols = {k: (t[k].asstr()[:] if t[k].dtype.kind == 'O' else t[k][:]) for k in t}\n"
        "assert len({len(v) for v in cols.values()}) == 1, 'ragged table'\n"
        "assert list(t)[:5] == ['id', 'key', 'kind', 'name', 'status'], list(t)\n"
        "assert list(f['metrics/train']) == ['task_id', 'key', 'test_acc', 'train_loss', 'detect_rate']\n"
        "assert list(cols['status']) == ['done','done','failed','skipped','pending','running'], cols['status']\n"
        "assert list(cols['param_attack']) == ['','','','fgsm','pgd','pgd']\n"
        "assert cols['paramnum_seed'].dtype == np.float64 and list(cols['paramnum_seed']) == [1,2,3,4,5,6]\n"
        "assert cols['id'].dtype == np.int64 and cols['rank'].dtype == np.int32\n"
        "assert math.isnan(cols['wall_seconds'][4])\n"
        "m = f['metrics/train']\n"
        "assert list(m['test_acc'][:]) == [0.91, 0.89]\n"
        "assert list(m['key'].asstr()[:]) == [s.decode() for s in t['key'][:2]]\n"
        "a = f['arrays/train/epoch_test_acc']\n"
        "i = list(a['task_id'][:]).index(1)\n"
        "o, n = a['offset'][i], a['length'][i]\n"
        "assert list(a['values'][o:o+n]) == [0.7, 0.89]\n"
        "assert f['spec'].asstr()[()].startswith('name: fake')\n"
        "assert f.attrs['in_progress'] == 1 and f.attrs['tasks_done'] == 2\n"
        "assert f.attrs['software'].startswith('ipsweep')\n"
        "try:\n"
        "    import pandas as pd\n"
        "    df = pd.DataFrame(cols)\n"
        "    assert df.shape[0] == 6\n"
        "except ImportError:\n"
        "    pass\n"
        "print('ok')\n";
    char script[200];
    snprintf(script, sizeof script, "%s/check.py", tdir);
    FILE *sf = fopen(script, "w");
    cr_assert_not_null(sf);
    fputs(py, sf);
    fclose(sf);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' > '%s/py.out' 2>&1", script, p, tdir);
    int rc = run_cmd(cmd);
    if (rc != 0) {
        char outp[200], buf[2000] = {0};
        snprintf(outp, sizeof outp, "%s/py.out", tdir);
        FILE *o = fopen(outp, "r");
        if (o) {
            size_t got = fread(buf, 1, sizeof buf - 1, o);
            buf[got] = 0;
            fclose(o);
        }
        cr_assert_fail("h5py check failed (%d):\n%s", rc, buf);
    }
    fake_free(&fk);
}

/* The guarantee at the level of journal + results: a run killed
 * halfway (torn last line, one task in flight) and resumed produces the same
 * results file as an uninterrupted run. */
static void run_tasks(fake *fk, const char *out, int from, int to, int fresh) {
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, rn_journal_spec_hash(&fk->spec), fresh, &e), 0, "%s", e.msg);
    for (int i = from; i < to && i < 4; i++) {
        cr_assert_eq(rn_journal_start(&j, fk->tasks[i].key, 1, &e), 0);
        rn_record r = fk->recs[i]; /* shallow: the journal only reads it */
        r.attempts = 0;            /* the journal counts the starts */
        cr_assert_eq(rn_journal_finish(&j, &r, &e), 0);
    }
    rn_journal_close(&j);
}

static void results_from_journal(fake *fk, const char *out) {
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(out, rn_journal_spec_hash(&fk->spec), &st, &e), 0, "%s", e.msg);
    const rn_record *by[6];
    for (int i = 0; i < 6; i++) by[i] = rn_journal_state_find(&st, fk->tasks[i].key);
    cr_assert_eq(rn_results_write(out, &fk->spec, by, NULL, 0, &e), 0, "%s", e.msg);
    rn_journal_state_free(&st);
}

Test(results, resumed_run_gives_the_same_file) {
    fake fk;
    fake_init(&fk);
    const char *a = tpath("a.h5"), *b = tpath("b.h5");
    run_tasks(&fk, a, 0, 4, 1);
    results_from_journal(&fk, a);
    /* interrupted: tasks 0-1 done, task 2 in flight when killed mid-write */
    run_tasks(&fk, b, 0, 3, 1);
    const char *jp = jpath(b);
    cr_assert_eq(truncate(jp, file_size(jp) - 7), 0);
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(b, rn_journal_spec_hash(&fk.spec), &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 2);
    cr_assert_eq(st.nunfinished, 1);
    rn_journal_state_free(&st);
    run_tasks(&fk, b, 2, 4, 0); /* --resume: only what is missing */
    results_from_journal(&fk, b);
    hid_t f = open_ro(b);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    cr_assert_eq(attr_i64(f, "tasks_failed"), 1);
    H5Fclose(f);
    if (run_cmd("command -v h5diff >/dev/null 2>&1") != 0) cr_skip_test("h5diff not installed");
    char cmd[512];
    /* attempts differ (task 2 was started twice): compare everything else */
    snprintf(cmd, sizeof cmd, "h5diff --exclude-path /tasks/attempts '%s' '%s' >/dev/null 2>&1", a, b);
    cr_assert_eq(run_cmd(cmd), 0, "resumed results differ from the uninterrupted ones");
    fake_free(&fk);
}
