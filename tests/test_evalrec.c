/* Evaluation records (core/model/evalrec.h): ip_evaluate answers from a
 * record only for the same weights, data, pass and branch; checkpoints carry
 * the records of the weights they hold, for the build that wrote them. The
 * task-level check, every metric the same with records and without, is in
 * test_cache.c (tasks_give_the_same_metrics_with_and_without_it). */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <string.h>

#include "../core/io/ckpt.h"
#include "../core/model/evalrec.h"
#include "../core/model/train.h"
#include "../core/util/digest.h"
#include "model_testutil.h"
#include "testutil.h"

/* The published XXH64 test values (seed 0), so that a record's digests can be
 * recomputed outside ipsweep (python-xxhash): the short path, and stripes
 * with a tail of every size. */
Test(evalrec, xxh64_matches_the_published_values) {
    cr_expect_eq(ip_xxh64("", 0, 0), 0xEF46DB3751D8E999ULL);
    cr_expect_eq(ip_xxh64("a", 1, 0), 0xD24EC4F1A98C6E5BULL);
    cr_expect_eq(ip_xxh64("abc", 3, 0), 0x44BC2CF5AD770999ULL);
    const char *s = "Nobody inspects the spammish repetition";
    cr_expect_eq(ip_xxh64(s, strlen(s), 0), 0xFBCEA83C8A378BF1ULL);
}

static char dir[64];
static void setup(void) {
    cr_assert_not_null(tu_mkdtemp(dir, sizeof dir, "evalrec"));
    ip_eval_records_use(1);
}
static void teardown(void) {
    ip_eval_records_use(1);
    tu_rmtree(dir);
}
TestSuite(evalrec, .init = setup, .fini = teardown);

static void load_data(ip_dataset *d, const ip_model *m) {
    ip_err e = {{0}};
    cr_assert_eq(ip_data_load(d, "synthetic:150", IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_match_model(d, m, &e), 0, "%s", e.msg);
}

static double evaluate(ip_model *m, const ip_dataset *d, int batch) {
    double acc = -1;
    ip_err e = {{0}};
    cr_assert_eq(ip_evaluate(m, d, batch, &acc, &e), 0, "%s", e.msg);
    return acc;
}

/* A baseline small-p and its data, evaluated once (one record). */
static void evaluated_baseline(ip_model *m, ip_dataset *d) {
    tu_build_model(m, "small-p", IP_NORM_BN, IP_SCHEME_BASELINE, 1, 28, 64);
    load_data(d, m);
    evaluate(m, d, 64);
}

/* A record is found only under its whole key: the recorded value is made
 * impossible (2.0) so that an answer from it shows. */
Test(evalrec, a_record_answers_only_the_same_evaluation) {
    ip_model m = {0};
    tu_build_model(&m, "small-p", IP_NORM_BN, IP_SCHEME_V2, 1, 28, 64);
    ip_dataset d = {0};
    load_data(&d, &m);
    const double acc = evaluate(&m, &d, 64);
    cr_assert_eq(m.nevals, 1);
    m.evals[0].acc = 2.0;
    uint64_t h0 = ip_eval_record_hits();
    cr_expect_eq(evaluate(&m, &d, 64), 2.0, "the same evaluation is answered by the record");
    cr_expect_eq(evaluate(&m, &d, 256), 2.0, "small-p runs passes of 64 for any batch: the same evaluation");
    cr_expect_eq(ip_eval_record_hits(), h0 + 2);

    cr_expect_eq(evaluate(&m, &d, 32), acc, "another pass size is evaluated");
    m.branch = IP_BRANCH_PUBLIC;
    cr_expect_neq(evaluate(&m, &d, 64), 2.0, "another branch is evaluated");
    m.branch = IP_BRANCH_PRIVATE;
    cr_expect_eq(evaluate(&m, &d, 64), 2.0);

    float keep = m.params[m.nparams / 2];
    m.params[m.nparams / 2] = nextafterf(keep, 1e30f);
    cr_expect_neq(evaluate(&m, &d, 64), 2.0, "one weight one ulp away is evaluated");
    m.params[m.nparams / 2] = keep;
    m.bufs[0] += 1.f; /* a running statistic or a passport key */
    cr_expect_neq(evaluate(&m, &d, 64), 2.0, "another buffer is evaluated");
    m.bufs[0] -= 1.f;
    m.passports[0].bits[0] = (int8_t)-m.passports[0].bits[0];
    cr_expect_neq(evaluate(&m, &d, 64), 2.0, "other signature bits are evaluated");
    m.passports[0].bits[0] = (int8_t)-m.passports[0].bits[0];

    float px = d.x[5];
    d.x[5] = nextafterf(px, 1e30f);
    cr_expect_neq(evaluate(&m, &d, 64), 2.0, "one pixel one ulp away is evaluated");
    d.x[5] = px;
    d.y[7] = (d.y[7] + 1) % 10;
    cr_expect_neq(evaluate(&m, &d, 64), 2.0, "another label is evaluated");
    d.y[7] = (d.y[7] + 9) % 10;

    cr_expect_eq(evaluate(&m, &d, 64), 2.0, "the original is still answered");
    ip_eval_records_use(0);
    cr_expect_eq(evaluate(&m, &d, 64), acc, "records off: evaluated");
    ip_eval_records_use(1);
    cr_expect_leq(m.nevals, IP_EVAL_RECORDS);
    ip_data_free(&d);
    ip_model_free(&m);
}

Test(evalrec, the_oldest_record_goes_first) {
    ip_model m = {0};
    for (int i = 0; i < IP_EVAL_RECORDS + 3; i++) {
        ip_eval_record k = {.model = 1, .data = (uint64_t)i, .pass = 64};
        ip_eval_record_add(&m, &k, i);
    }
    cr_assert_eq(m.nevals, IP_EVAL_RECORDS);
    double acc;
    ip_eval_record k = {.model = 1, .data = 2, .pass = 64};
    cr_expect_eq(ip_eval_record_find(&m, &k, &acc), 0, "dropped");
    k.data = IP_EVAL_RECORDS + 2;
    cr_expect_eq(ip_eval_record_find(&m, &k, &acc), 1);
    cr_expect_eq(acc, IP_EVAL_RECORDS + 2);
}

static void save(const ip_model *m, const char *path) {
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_save(m, path, &e), 0, "%s", e.msg);
}
static void open_model(ip_model *m, const char *path) {
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(m, path, &e), 0, "%s", e.msg);
}

/* A checkpoint keeps the records of the weights it holds, not those of
 * earlier weights; a copy of a loaded model keeps them too. */
Test(evalrec, checkpoints_keep_the_records_of_their_weights) {
    ip_model m = {0};
    tu_build_model(&m, "small-p", IP_NORM_BN, IP_SCHEME_BASELINE, 1, 28, 64);
    ip_dataset d = {0};
    load_data(&d, &m);
    evaluate(&m, &d, 64);           /* of weights about to change */
    m.params[0] += 0.5f;
    const double acc = evaluate(&m, &d, 64);
    evaluate(&m, &d, 32);
    cr_assert_eq(m.nevals, 3);
    const char *path = tu_path(dir, "m.h5");
    save(&m, path);

    ip_model l = {0};
    open_model(&l, path);
    cr_assert_eq(l.nevals, 2, "only the saved weights' records");
    ip_eval_record k;
    ip_eval_record_key(&k, &l, &d, 64);
    double got;
    cr_assert_eq(ip_eval_record_find(&l, &k, &got), 1);
    cr_expect_eq(got, acc);
    ip_model c = {0};
    ip_err e = {{0}};
    ip_model_cfg cfg;
    cr_assert_eq(ip_ckpt_read_cfg(path, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_ckpt_copy_loaded(&c, &l, &cfg, &e), 0, "%s", e.msg);
    cr_expect_eq(c.nevals, 2);
    cr_expect_eq(ip_model_digest(&c), ip_model_digest(&l));

    /* records off: none written, none read */
    ip_eval_records_use(0);
    ip_model n = {0};
    open_model(&n, path);
    cr_expect_eq(n.nevals, 0);
    const char *path2 = tu_path(dir, "off.h5");
    save(&l, path2);
    ip_eval_records_use(1);
    ip_model o = {0};
    open_model(&o, path2);
    cr_expect_eq(o.nevals, 0);
    ip_model_free(&o), ip_model_free(&n), ip_model_free(&c), ip_model_free(&l), ip_model_free(&m);
    ip_data_free(&d);
}

/* Records from another build (its digest in /evaluations differs) are not
 * read: it may round differently. */
Test(evalrec, records_of_another_build_are_not_used) {
    ip_model m = {0};
    ip_dataset d = {0};
    evaluated_baseline(&m, &d);
    const char *path = tu_path(dir, "other-build.h5");
    save(&m, path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t g = H5Gopen2(f, "/evaluations", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "build_digest", H5P_DEFAULT);
    uint64_t build;
    cr_assert_geq(H5Aread(a, H5T_NATIVE_UINT64, &build), 0);
    build ^= 1;
    cr_assert_geq(H5Awrite(a, H5T_NATIVE_UINT64, &build), 0);
    H5Aclose(a), H5Gclose(g), H5Fclose(f);
    ip_model l = {0};
    open_model(&l, path);
    cr_expect_eq(l.nevals, 0);
    ip_model_free(&l), ip_model_free(&m);
    ip_data_free(&d);
}

/* A damaged /evaluations (a column of the wrong length, a missing one)
 * costs the records, not the model: it loads, with none. */
Test(evalrec, a_damaged_evaluations_group_is_ignored) {
    ip_model m = {0};
    ip_dataset d = {0};
    evaluated_baseline(&m, &d);
    evaluate(&m, &d, 32);
    const char *paths[2] = {tu_path(dir, "short.h5"), tu_path(dir, "missing.h5")};
    for (int k = 0; k < 2; k++) {
        save(&m, paths[k]);
        hid_t f = H5Fopen(paths[k], H5F_ACC_RDWR, H5P_DEFAULT);
        cr_assert_geq(f, 0);
        cr_assert_geq(H5Ldelete(f, "/evaluations/pass", H5P_DEFAULT), 0);
        if (k == 0) { /* one row where the others have two */
            hsize_t one = 1;
            int32_t v = 64;
            hid_t sp = H5Screate_simple(1, &one, NULL);
            hid_t ds = H5Dcreate2(f, "/evaluations/pass", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            cr_assert_geq(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v), 0);
            H5Dclose(ds), H5Sclose(sp);
        }
        H5Fclose(f);
        ip_model l = {0};
        open_model(&l, paths[k]);
        cr_expect_eq(l.nevals, 0, "%s", paths[k]);
        cr_expect_eq(ip_model_digest(&l), ip_model_digest(&m), "the model itself loads whole");
        ip_model_free(&l);
    }
    ip_model_free(&m);
    ip_data_free(&d);
}
