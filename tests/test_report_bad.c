/* `ipsweep report` on crafted results files (runner/report_data.c): every
 * bad file -- not HDF5, empty, a directory, truncated; attributes of the
 * wrong type or size; missing groups, datasets of the wrong type or rank;
 * shapes claiming more than the file stores; row counts that disagree
 * between columns, /tasks, /metrics, /arrays and /ipguard -- gives one line
 * naming the file and the dataset, exit status 2, and writes nothing: the
 * --plots directory is not created. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runner/cli/commands.h"
#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "report-bad")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(report_bad, .init = make_dir, .fini = remove_dir);

/* A valid file with every part the reader checks: /tasks, /params,
 * /metrics, /arrays (fake1's fake_acc) and /ipguard with its curves. */
static fx_task base[] = {
    {"train:p[seed=1]", "train", "p", "done", "", "scheme=v1;arch=small-p;seed=1", "test_acc=0.9;detect=1", NULL},
    {"train:p[seed=2]", "train", "p", "done", "", "scheme=v1;arch=small-p;seed=2", "test_acc=0.8;detect=1", NULL},
    {"fake1:f<train:p[seed=1]>", "fake1", "f", "done", "0",
     "model=train:p[seed=1];key_type=random;passports=2;shard=all;shards=1",
     "real_acc=0.9;fake_mean=0.15;fake_min=0.1;fake_max=0.2;passports=2;accepted=0", "fake_acc=0.1,0.2"},
};
static const fx_suspect sus[] = {{0, "train:p[seed=1]", 1, "train:p[seed=2]", "train", "independent", 0.1, "innocent"}};
static const fx_summary sum[] = {{0, "train:p[seed=1]", 0.5, 1, 1, 0.9, 0.5, 0.05, 0.0}};

static int nfile;

/* A fresh copy of the valid file. */
static const char *good(void) {
    char name[32];
    snprintf(name, sizeof name, "r%d.h5", nfile++);
    const char *p = tu_path(tdir, name);
    fx_ipguard ig = {sus, 1, sum, 1};
    cr_assert_eq(fx_write(p, base, 3, 0, &ig), 0);
    return p;
}

/* ---- mutations of the valid file (HDF5 C API) ---- */

typedef void (*mutate_fn)(hid_t f);

static void del(hid_t f, const char *path) { cr_assert_geq(H5Ldelete(f, path, H5P_DEFAULT), 0, "delete %s", path); }

/* Replaces (or creates) dataset `path`: type t, shape nd x dims, chunked in
 * single elements and never written, so it stores no bytes at all; deflated
 * when asked. The shape claims what the file does not hold. */
static void claim(hid_t f, const char *path, hid_t t, int nd, const hsize_t *dims, int deflate) {
    if (H5Lexists(f, path, H5P_DEFAULT) > 0) del(f, path);
    hsize_t maxd[2] = {H5S_UNLIMITED, H5S_UNLIMITED}, chunk[2] = {1, 1};
    hid_t sp = H5Screate_simple(nd, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    cr_assert_geq(H5Pset_chunk(dcpl, nd, chunk), 0);
    if (deflate) cr_assert_geq(H5Pset_deflate(dcpl, 6), 0);
    hid_t d = H5Dcreate2(f, path, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(d, 0, "create %s", path);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp);
}

/* Replaces dataset `path` by n written values of type t (memory type mt). */
static void put(hid_t f, const char *path, hid_t t, hid_t mt, int nd, const hsize_t *dims, const void *v) {
    if (H5Lexists(f, path, H5P_DEFAULT) > 0) del(f, path);
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t d = H5Dcreate2(f, path, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(d, 0, "create %s", path);
    cr_assert_geq(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d), H5Sclose(sp);
}
static void put_f64(hid_t f, const char *path, hsize_t n, const double *v) {
    put(f, path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &n, v);
}
static void put_i64(hid_t f, const char *path, hsize_t n, const long long *v) {
    put(f, path, H5T_STD_I64LE, H5T_NATIVE_LLONG, 1, &n, v);
}

/* Replaces root attribute `name` by one of type t, shape n values (0: scalar). */
static void put_attr(hid_t f, const char *name, hid_t t, hid_t mt, hsize_t n, const void *v) {
    if (H5Aexists(f, name) > 0) cr_assert_geq(H5Adelete(f, name), 0);
    hid_t sp = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(a, 0);
    cr_assert_geq(H5Awrite(a, mt, v), 0);
    H5Aclose(a), H5Sclose(sp);
}

static const char *mutated(mutate_fn m) {
    const char *p = good();
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    m(f);
    cr_assert_geq(H5Fclose(f), 0);
    return p;
}

/* ---- the check ---- */

/* `report PATH --plots DIR` fails with one line naming the file and `what`,
 * exit status 2, and neither prints a table nor creates DIR. */
static void expect_bad(const char *path, const char *what) {
    rp_file f;
    ip_err e = {{0}};
    cr_assert_neq(rp_open(&f, path, &e), 0, "%s was accepted (expected an error about %s)", path, what);
    cr_expect(strstr(e.msg, path) != NULL, "the message does not name the file: %s", e.msg);
    cr_expect(strstr(e.msg, what) != NULL, "the message does not name %s: %s", what, e.msg);
    cr_expect(strchr(e.msg, '\n') == NULL, "more than one line: %s", e.msg);
    cr_expect_eq(ip_err_exit_code(&e), 2, "not a bad-input error: %s", e.msg);
    char plots[160], a0[512], a1[] = "--plots";
    snprintf(plots, sizeof plots, "%s", tu_path(tdir, "plots"));
    snprintf(a0, sizeof a0, "%s", path);
    char *argv[] = {a0, a1, plots};
    fflush(stdout);
    cr_expect_eq(cmd_report(3, argv), 2, "%s: exit status", path);
    struct stat st;
    cr_expect_neq(stat(plots, &st), 0, "%s: the plots directory was created", path);
}

static void expect_bad_m(mutate_fn m, const char *what) { expect_bad(mutated(m), what); }

/* ---- the valid file, and a deflated dataset (the results writer deflates
 * large ones), are read ---- */

static void deflate_curve(hid_t f) {
    double v[101];
    hid_t d = H5Dopen2(f, "/ipguard/curves/robustness", H5P_DEFAULT);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d);
    del(f, "/ipguard/curves/robustness");
    hsize_t dims[2] = {1, 101};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, dims), H5Pset_shuffle(dcpl), H5Pset_deflate(dcpl, 9);
    d = H5Dcreate2(f, "/ipguard/curves/robustness", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp);
}

Test(report_bad, valid_files_are_read) {
    const char *files[] = {good(), mutated(deflate_curve)};
    for (int i = 0; i < 2; i++) {
        rp_file f;
        ip_err e = {{0}};
        cr_assert_eq(rp_open(&f, files[i], &e), 0, "%s", e.msg);
        double *v = NULL;
        size_t n = 0;
        cr_assert_eq(rp_array(&f, 2, "fake_acc", &v, &n, &e), 0, "%s", e.msg);
        cr_expect_eq(n, 2);
        cr_expect(v && v[0] == 0.1 && v[1] == 0.2);
        free(v);
        cr_expect_eq(f.ig_ncurves, 1);
        cr_expect_eq(f.ig_npoints, 101);
        rp_close(&f);
    }
}

/* ---- not a results file at all ---- */

Test(report_bad, not_hdf5_empty_directory_truncated) {
    const char *p = tu_path(tdir, "empty.h5");
    FILE *fp = fopen(p, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    expect_bad(p, "empty");
    p = tu_path(tdir, "text.h5");
    fp = fopen(p, "w");
    fputs("format_version: 1\ntasks: []\n", fp);
    fclose(fp);
    expect_bad(p, "not a valid HDF5 file");
    p = tu_path(tdir, "dir.h5");
    cr_assert_eq(mkdir(p, 0777), 0);
    expect_bad(p, "directory");
    expect_bad(tu_path(tdir, "missing.h5"), "No such file");
    /* cut a valid file at several points */
    char g[160]; /* tu_path's buffers are reused */
    snprintf(g, sizeof g, "%s", good());
    struct stat st;
    cr_assert_eq(stat(g, &st), 0);
    for (int k = 1; k <= 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "cut%d.h5", k);
        p = tu_path(tdir, name);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "head -c %lld '%s' > '%s'", (long long)st.st_size * k / 4, g, p);
        cr_assert_eq(system(cmd), 0);
        expect_bad(p, "");
    }
}

/* ---- root attributes of the wrong type or size (an array attribute once
 * overflowed the reader's one-value buffer) ---- */

static void version_str(hid_t f) {
    del(f, "tasks"); /* not reached: the version is checked first */
    hid_t t = fx_str_type();
    const char *v = "1";
    put_attr(f, "format_version", t, t, 0, &v);
    H5Tclose(t);
}
static void version_array(hid_t f) {
    long long v[64] = {1};
    put_attr(f, "format_version", H5T_STD_I64LE, H5T_NATIVE_LLONG, 64, v);
}
static void version_2(hid_t f) {
    long long v = 2;
    put_attr(f, "format_version", H5T_STD_I64LE, H5T_NATIVE_LLONG, 0, &v);
}
static void total_array(hid_t f) {
    long long v[100] = {0};
    put_attr(f, "tasks_total", H5T_STD_I64LE, H5T_NATIVE_LLONG, 100, v);
}
static void name_fixed_array(hid_t f) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    char v[4][8] = {"a", "b", "c", "d"};
    put_attr(f, "spec_name", t, t, 4, v);
    H5Tclose(t);
}
static void software_int(hid_t f) {
    long long v = 7;
    put_attr(f, "software", H5T_STD_I64LE, H5T_NATIVE_LLONG, 0, &v);
}

Test(report_bad, bad_attributes) {
    expect_bad_m(version_str, "format_version");
    expect_bad_m(version_array, "format_version");
    expect_bad_m(version_2, "format_version");
    expect_bad_m(total_array, "tasks_total");
    expect_bad_m(name_fixed_array, "spec_name");
    expect_bad_m(software_int, "software");
}

/* ---- missing groups, datasets of the wrong type or rank ---- */

static void no_tasks(hid_t f) { del(f, "/tasks"); }
static void tasks_dataset(hid_t f) {
    del(f, "/tasks");
    double v[3] = {0};
    put_f64(f, "/tasks", 3, v);
}
static void no_key(hid_t f) { del(f, "/tasks/key"); }
static void key_numbers(hid_t f) {
    double v[3] = {0};
    put_f64(f, "/tasks/key", 3, v);
}
static void id_strings(hid_t f) {
    hid_t t = fx_str_type();
    const char *v[3] = {"0", "1", "2"};
    hsize_t n = 3;
    put(f, "/tasks/id", t, t, 1, &n, v);
    H5Tclose(t);
}
static void id_2d(hid_t f) {
    long long v[3][2] = {{0}};
    hsize_t d[2] = {3, 2};
    put(f, "/tasks/id", H5T_STD_I64LE, H5T_NATIVE_LLONG, 2, d, v);
}
static void metric_compound(hid_t f) {
    typedef struct { double a, b; } pair;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(pair));
    H5Tinsert(t, "a", HOFFSET(pair, a), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "b", HOFFSET(pair, b), H5T_NATIVE_DOUBLE);
    pair v[2] = {{0, 0}, {1, 1}};
    hsize_t n = 2;
    put(f, "/metrics/train/test_acc", t, t, 1, &n, v);
    H5Tclose(t);
}
static void params_kind_dataset(hid_t f) {
    del(f, "/params/train");
    double v[2] = {0, 1};
    put_f64(f, "/params/train", 2, v);
}
static void metrics_no_task_id(hid_t f) { del(f, "/metrics/train/task_id"); }
static void no_suspects(hid_t f) { del(f, "/ipguard/suspects"); }
static void summary_k_strings(hid_t f) {
    hid_t t = fx_str_type();
    const char *v[1] = {"0.5"};
    hsize_t n = 1;
    put(f, "/ipguard/summary/k", t, t, 1, &n, v);
    H5Tclose(t);
}
static void thresholds_2d(hid_t f) {
    double v[2][101] = {{0}};
    hsize_t d[2] = {2, 101};
    put(f, "/ipguard/curves/thresholds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d, v);
}
static void values_strings(hid_t f) {
    hid_t t = fx_str_type();
    const char *v[2] = {"0.1", "0.2"};
    hsize_t n = 2;
    put(f, "/arrays/fake1/fake_acc/values", t, t, 1, &n, v);
    H5Tclose(t);
}
static void no_values(hid_t f) { del(f, "/arrays/fake1/fake_acc/values"); }
static void no_offset(hid_t f) { del(f, "/arrays/fake1/fake_acc/offset"); }
static void external_key(hid_t f) {
    /* an external link is not followed: /tasks/key is then missing */
    del(f, "/tasks/key");
    cr_assert_geq(H5Lcreate_external("/etc/other.h5", "/key", f, "/tasks/key", H5P_DEFAULT, H5P_DEFAULT), 0);
}

Test(report_bad, missing_groups_wrong_type_or_rank) {
    expect_bad_m(no_tasks, "/tasks");
    expect_bad_m(tasks_dataset, "/tasks");
    expect_bad_m(no_key, "/tasks/key");
    expect_bad_m(key_numbers, "/tasks/key");
    expect_bad_m(id_strings, "/tasks/id");
    expect_bad_m(id_2d, "/tasks/id");
    expect_bad_m(metric_compound, "/metrics/train/test_acc");
    expect_bad_m(params_kind_dataset, "/params/train");
    expect_bad_m(metrics_no_task_id, "/metrics/train/task_id");
    expect_bad_m(no_suspects, "/ipguard/suspects");
    expect_bad_m(summary_k_strings, "/ipguard/summary/k");
    expect_bad_m(thresholds_2d, "/ipguard/curves/thresholds");
    expect_bad_m(values_strings, "/arrays/fake1/fake_acc/values");
    expect_bad_m(no_values, "/arrays/fake1/fake_acc/values");
    expect_bad_m(no_offset, "/arrays/fake1/fake_acc/offset");
    expect_bad_m(external_key, "/tasks/key");
}

/* ---- shapes claiming more than the file stores: nothing is allocated from
 * them ---- */

static void huge_name(hid_t f) {
    hsize_t n = (hsize_t)1 << 40;
    hid_t t = fx_str_type();
    claim(f, "/tasks/name", t, 1, &n, 0);
    H5Tclose(t);
}
static void huge_id(hid_t f) {
    hsize_t n = (hsize_t)1 << 62;
    claim(f, "/tasks/id", H5T_STD_I64LE, 1, &n, 0);
}
static void all_columns_claim(hid_t f) {
    /* every /tasks column claims 2^30 rows: equal rows, only the stored bytes tell */
    const char *cols[] = {"/tasks/key", "/tasks/kind", "/tasks/name", "/tasks/status", "/tasks/deps"};
    hsize_t n = (hsize_t)1 << 30;
    hid_t t = fx_str_type();
    for (int i = 0; i < 5; i++) claim(f, cols[i], t, 1, &n, 0);
    H5Tclose(t);
    claim(f, "/tasks/id", H5T_STD_I64LE, 1, &n, 0);
}
static void wide_fixed_strings(hid_t f) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, (size_t)1 << 30);
    hsize_t n = 3;
    claim(f, "/tasks/status", t, 1, &n, 0);
    H5Tclose(t);
}
static void huge_metric_deflated(hid_t f) {
    /* within the row bound: only the compressed bytes stored tell */
    hsize_t n = (hsize_t)1 << 30;
    const char *cols[] = {"/metrics/train/task_id", "/metrics/train/key", "/metrics/train/test_acc",
                          "/metrics/train/detect"};
    hid_t t = fx_str_type();
    for (int i = 0; i < 4; i++) claim(f, cols[i], i == 1 ? t : H5T_IEEE_F64LE, 1, &n, 1);
    H5Tclose(t);
}
static void huge_curves(hid_t f) {
    hsize_t d[2] = {1, (hsize_t)1 << 61};
    claim(f, "/ipguard/curves/robustness", H5T_IEEE_F64LE, 2, d, 0);
}
static void huge_thresholds(hid_t f) {
    hsize_t n = (hsize_t)1 << 45;
    claim(f, "/ipguard/curves/thresholds", H5T_IEEE_F64LE, 1, &n, 0);
}
static void huge_values(hid_t f) {
    hsize_t n = (hsize_t)1 << 50;
    claim(f, "/arrays/fake1/fake_acc/values", H5T_IEEE_F64LE, 1, &n, 1);
}
static void huge_suspects(hid_t f) {
    hsize_t n = (hsize_t)1 << 33;
    claim(f, "/ipguard/suspects/match_rate", H5T_IEEE_F64LE, 1, &n, 0);
}

Test(report_bad, shapes_claiming_more_than_stored) {
    expect_bad_m(huge_name, "/tasks/name");
    expect_bad_m(huge_id, "/tasks/id");
    expect_bad_m(all_columns_claim, "/tasks/");
    expect_bad_m(wide_fixed_strings, "/tasks/status");
    expect_bad_m(huge_metric_deflated, "/metrics/train/");
    expect_bad_m(huge_curves, "/ipguard/curves/robustness");
    expect_bad_m(huge_thresholds, "/ipguard/curves/thresholds");
    expect_bad_m(huge_values, "/arrays/fake1/fake_acc/values");
    expect_bad_m(huge_suspects, "/ipguard/suspects");
}

/* ---- row counts that disagree ---- */

static void short_metric(hid_t f) {
    double v[1] = {0.5};
    put_f64(f, "/metrics/train/test_acc", 1, v);
}
static void metric_task_out_of_range(hid_t f) {
    long long v[2] = {0, 99};
    put_i64(f, "/metrics/train/task_id", 2, v);
}
static void metric_task_nan(hid_t f) {
    double v[2] = {0, NAN};
    put_f64(f, "/metrics/train/task_id", 2, v);
}
static void params_task_negative(hid_t f) {
    long long v[2] = {-1, 1};
    put_i64(f, "/params/train/task_id", 2, v);
}
static void tasks_short_status(hid_t f) {
    hid_t t = fx_str_type();
    const char *v[2] = {"done", "done"};
    hsize_t n = 2;
    put(f, "/tasks/status", t, t, 1, &n, v);
    H5Tclose(t);
}
static void tasks_id_order(hid_t f) {
    long long v[3] = {0, 2, 1};
    put_i64(f, "/tasks/id", 3, v);
}
static void array_past_values(hid_t f) {
    long long v[1] = {5};
    put_i64(f, "/arrays/fake1/fake_acc/length", 1, v);
}
static void array_offset_huge(hid_t f) {
    double v[1] = {1e300};
    put_f64(f, "/arrays/fake1/fake_acc/offset", 1, v);
}
static void array_task_out_of_range(hid_t f) {
    long long v[1] = {3};
    put_i64(f, "/arrays/fake1/fake_acc/task_id", 1, v);
}
static void array_rows_differ(hid_t f) {
    long long v[2] = {0, 0};
    put_i64(f, "/arrays/fake1/fake_acc/offset", 2, v);
}
static void curves_rows_differ(hid_t f) {
    double v[3][101] = {{0}};
    hsize_t d[2] = {3, 101};
    put(f, "/ipguard/curves/uniqueness", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d, v);
}
static void curves_points_differ(hid_t f) {
    double v[1][7] = {{0}};
    hsize_t d[2] = {1, 7};
    put(f, "/ipguard/curves/robustness", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d, v);
}

Test(report_bad, row_counts_disagree) {
    expect_bad_m(short_metric, "/metrics/train/test_acc");
    expect_bad_m(metric_task_out_of_range, "/metrics/train");
    expect_bad_m(metric_task_nan, "/metrics/train");
    expect_bad_m(params_task_negative, "/params/train");
    expect_bad_m(tasks_short_status, "/tasks/");
    expect_bad_m(tasks_id_order, "/tasks/id");
    expect_bad_m(array_past_values, "/arrays/fake1/fake_acc");
    expect_bad_m(array_offset_huge, "/arrays/fake1/fake_acc");
    expect_bad_m(array_task_out_of_range, "/arrays/fake1/fake_acc/task_id");
    expect_bad_m(array_rows_differ, "/arrays/fake1/fake_acc/");
    expect_bad_m(curves_rows_differ, "/ipguard/curves/uniqueness");
    expect_bad_m(curves_points_differ, "/ipguard/curves/robustness");
}
