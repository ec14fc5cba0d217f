/* Crafted and damaged files of every kind ipsweep reads (IDX data,
 * checkpoints, fingerprints, metrics files): each gives one error naming the
 * file (and the field), classed as a bad input (exit 2), quickly and without
 * allocating what the file merely claims. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/io/ckpt.h"
#include "../core/io/data.h"
#include "../core/ipguard/fingerprint.h"
#include "../core/io/h5util.h"
#include "../core/util/metrics.h"
#include "../core/model/model.h"
#include "../core/tasks/tasks.h"
#include "testutil.h"

static char tdir[64];

static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "badfiles")); }

static void remove_dir(void) { tu_rmtree(tdir); }

TestSuite(bad_files, .init = make_dir, .fini = remove_dir);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A failure with every fragment in its message, classed as a bad input. */
static void expect_input_error(int rc, const ip_err *e, const char *frag1, const char *frag2) {
    cr_assert_neq(rc, 0, "expected a failure");
    cr_assert(ip_err_is_input(e), "not classed as a bad input: %s", e->msg);
    cr_assert_eq(ip_err_exit_code(e), 2);
    if (frag1) cr_assert_not_null(strstr(e->msg, frag1), "\"%s\" not in: %s", frag1, e->msg);
    if (frag2) cr_assert_not_null(strstr(e->msg, frag2), "\"%s\" not in: %s", frag2, e->msg);
    cr_assert_null(strchr(e->msg, '\n'), "more than one line: %s", e->msg);
}

/* ---------------------------------------------------------------- IDX --- */

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24), b[1] = (unsigned char)(v >> 16), b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Writes an IDX file: magic, ndims dims, then payload bytes of value fill
 * (raw, or gzip when gz). */
static void write_idx(const char *path, uint32_t magic, int ndims, const uint32_t *dims, size_t payload,
                      unsigned char fill, int gz) {
    size_t hdr = 4 + 4 * (size_t)ndims, n = hdr + payload;
    unsigned char *b = malloc(n ? n : 1);
    cr_assert_not_null(b);
    put_be32(b, magic);
    for (int i = 0; i < ndims; i++) put_be32(b + 4 + 4 * i, dims[i]);
    memset(b + hdr, fill, payload);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(gzwrite(f, b, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(b, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
    }
    free(b);
}

/* A directory <name> holding an IDX split pre ("train"/"t10k"): images
 * claiming nimg images of h x w with img_bytes bytes of pixels, labels
 * claiming nlab with lab_bytes bytes of value label. */
static const char *idx_split(const char *name, const char *pre, int gz, uint32_t nimg, uint32_t h, uint32_t w,
                             size_t img_bytes, uint32_t nlab, size_t lab_bytes, unsigned char label) {
    static char dir[160];
    snprintf(dir, sizeof dir, "%s/%s", tdir, name);
    mkdir(dir, 0755);
    char p[256];
    uint32_t di[3] = {nimg, h, w}, dl[1] = {nlab};
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte%s", dir, pre, gz ? ".gz" : "");
    write_idx(p, 0x803, 3, di, img_bytes, 7, gz);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte%s", dir, pre, gz ? ".gz" : "");
    write_idx(p, 0x801, 1, dl, lab_bytes, label, gz);
    return dir;
}

static int load(const char *dir, ip_split split, size_t limit, ip_dataset *d, ip_err *e) {
    char src[512];
    snprintf(src, sizeof src, "fashion-mnist:%s", dir);
    return ip_data_load(d, src, split, limit, e);
}

Test(bad_files, idx_header_claims_4294967295_images) {
    for (int gz = 0; gz < 2; gz++) {
        char name[32];
        snprintf(name, sizeof name, "huge%d", gz);
        const char *dir = idx_split(name, "train", gz, 4294967295u, 28, 28, 10 * 784, 4294967295u, 10, 1);
        ip_dataset d;
        ip_err e = {{0}};
        double t0 = now();
        int rc = load(dir, IP_SPLIT_TRAIN, 0, &d, &e);
        expect_input_error(rc, &e, "train-images-idx3-ubyte", "truncated");
        cr_assert_not_null(strstr(e.msg, "4294967295"), "%s", e.msg);
        cr_assert_null(strstr(e.msg, "out of memory"), "%s", e.msg);
        cr_assert_lt(now() - t0, 5.0, "took %.1f s", now() - t0);
    }
}

Test(bad_files, idx_truncated_images_and_labels) {
    for (int gz = 0; gz < 2; gz++) {
        ip_dataset d;
        ip_err e = {{0}};
        /* half an image missing */
        const char *dir = idx_split(gz ? "trunc_img_gz" : "trunc_img", "train", gz, 5, 28, 28, 4 * 784 + 300, 5, 5, 1);
        expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-images-idx3-ubyte", "truncated");
        cr_assert_not_null(strstr(e.msg, "holds 4"), "%s", e.msg);
        /* labels short */
        dir = idx_split(gz ? "trunc_lab_gz" : "trunc_lab", "train", gz, 5, 28, 28, 5 * 784, 5, 3, 1);
        expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-labels-idx1-ubyte", "truncated");
        /* a limit within what is there still loads */
        cr_assert_eq(load(dir, IP_SPLIT_TRAIN, 3, &d, &e), 0, "%s", e.msg);
        cr_assert_eq(d.n, 3);
        ip_data_free(&d);
    }
}

Test(bad_files, idx_empty_split_is_an_error) {
    ip_dataset d;
    ip_err e = {{0}};
    const char *dir = idx_split("empty", "t10k", 0, 0, 28, 28, 0, 0, 0, 0);
    expect_input_error(load(dir, IP_SPLIT_TEST, 0, &d, &e), &e, "t10k-images-idx3-ubyte", "empty");
    expect_input_error(load(dir, IP_SPLIT_TEST, 10, &d, &e), &e, "t10k-images-idx3-ubyte", "empty");
}

Test(bad_files, idx_counts_magic_labels_sizes) {
    ip_dataset d;
    ip_err e = {{0}};
    /* image/label count mismatch */
    const char *dir = idx_split("count", "train", 0, 5, 28, 28, 5 * 784, 6, 6, 1);
    expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "5 images", "6 labels");
    /* label out of range */
    dir = idx_split("label", "train", 1, 5, 28, 28, 5 * 784, 5, 5, 10);
    expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-labels-idx1-ubyte.gz", "out of range");
    /* zero and oversized sides */
    dir = idx_split("side0", "train", 0, 5, 0, 28, 0, 5, 5, 1);
    expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-images-idx3-ubyte", "image size 0x28");
    dir = idx_split("side_big", "train", 0, 1, 65535, 65535, 100, 1, 1, 1);
    expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-images-idx3-ubyte", "65535x65535");
    /* wrong magic (labels where images belong) */
    char p[96];
    snprintf(p, sizeof p, "%s/magic", tdir);
    mkdir(p, 0755);
    uint32_t dims[3] = {1, 28, 28};
    write_idx(tu_path(p, "train-images-idx3-ubyte"), 0x801, 3, dims, 784, 0, 0);
    write_idx(tu_path(p, "train-labels-idx1-ubyte"), 0x801, 1, dims, 1, 0, 0);
    expect_input_error(load(p, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-images-idx3-ubyte", "magic");
    /* a header cut short */
    FILE *f = fopen(tu_path(p, "train-images-idx3-ubyte"), "wb");
    cr_assert_not_null(f);
    fwrite("\0\0\x08\x03\0\0", 1, 6, f);
    fclose(f);
    expect_input_error(load(p, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-images-idx3-ubyte", "header");
}

Test(bad_files, idx_corrupt_gzip_stream) {
    const char *dir = idx_split("corrupt_gz", "train", 1, 50, 28, 28, 50 * 784, 50, 50, 1);
    /* keep the gzip header and the start of the deflate stream, garble the rest */
    char p[256];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(p, "r+b");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    cr_assert_gt(size, 40);
    fseek(f, 30, SEEK_SET);
    for (long i = 30; i < size - 8; i++) fputc((int)((i * 131) & 0xff), f);
    fclose(f);
    ip_dataset d;
    ip_err e = {{0}};
    expect_input_error(load(dir, IP_SPLIT_TRAIN, 0, &d, &e), &e, "train-images-idx3-ubyte.gz", NULL);
}

/* Train and test splits of different shapes: the train task names both files and shapes. */
Test(bad_files, idx_train_test_shapes_differ) {
    idx_split("shapes", "train", 0, 20, 28, 28, 20 * 784, 20, 20, 1);
    const char *dir = idx_split("shapes", "t10k", 0, 20, 32, 32, 20 * 1024, 20, 20, 1);
    char src[256];
    snprintf(src, sizeof src, "fashion-mnist:%s", dir);
    ip_train_task t = tu_tiny_train(src, IP_SCHEME_BASELINE, IP_NORM_BN, 1, NULL);
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    int rc = ip_task_train(&t, &mt, &e);
    ip_metrics_free(&mt);
    expect_input_error(rc, &e, "train-images-idx3-ubyte: 1x28x28", "t10k-images-idx3-ubyte: 1x32x32");

    /* classes differ (synthetic train/test of one source never do: built directly) */
    ip_dataset a, b;
    cr_assert_eq(ip_data_synthetic(&a, 4, 1, 8, 8, 10, 1, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_synthetic(&b, 4, 1, 8, 8, 5, 1, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    snprintf(a.origin, sizeof a.origin, "A.bin");
    snprintf(b.origin, sizeof b.origin, "B.bin");
    expect_input_error(ip_data_check_splits(&a, &b, "x:y", &e), &e, "A.bin: 1x8x8, 10 classes", "B.bin: 1x8x8, 5 classes");
    cr_assert_eq(ip_data_check_splits(&a, &a, "x:y", &e), 0);
    ip_data_free(&a);
    ip_data_free(&b);
}

/* --------------------------------------------------------- checkpoints --- */

static ip_model_cfg tiny_cfg(void) {
    ip_model_cfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "small-p-narrow");
    c.in_c = 1, c.in_h = 28, c.in_w = 28;
    c.classes = 10;
    c.in_std[0] = 1;
    return c;
}

static void save_tiny(const char *path) {
    ip_model m;
    ip_model_cfg c = tiny_cfg();
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(&m, &c, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m, 1, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_ckpt_save(&m, path, &e), 0, "%s", e.msg);
    ip_model_free(&m);
}

/* Replaces the root attribute name of an HDF5 file by n int32 values (a scalar when n < 0). */
static void set_int_attr(const char *path, const char *name, int n, const int *v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_geq(H5Adelete(f, name), 0);
    cr_assert_eq(ip_h5_attr_write(f, name, H5T_STD_I32LE, H5T_NATIVE_INT, n, v), 0);
    H5Fclose(f);
}

static void expect_open_error(const char *path, const char *frag1, const char *frag2) {
    ip_model m;
    ip_err e = {{0}};
    memset(&m, 0, sizeof m);
    expect_input_error(ip_ckpt_open_model(&m, path, &e), &e, frag1, frag2);
    cr_assert_not_null(strstr(e.msg, path), "the file is not named: %s", e.msg);
}

Test(bad_files, ckpt_crafted_input_shape) {
    static const int shapes[][3] = {{1, 40000, 40000}, {1, 2147483647, 2147483647}, {4, 4097, 1},
                                    {5, 28, 28},       {1, -1, 28},                 {0, 28, 28}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        char name[32];
        snprintf(name, sizeof name, "shape%zu.h5", i);
        const char *path = tu_path(tdir, name);
        save_tiny(path);
        set_int_attr(path, "input_shape", 3, shapes[i]);
        expect_open_error(path, "input_shape", "bad input shape");
        ip_model_cfg cfg;
        ip_err e = {{0}};
        expect_input_error(ip_ckpt_read_cfg(path, &cfg, &e), &e, path, "input_shape");
    }
}

Test(bad_files, ckpt_crafted_classes) {
    static const int classes[] = {0, 1, -5, 100001, 2147483647};
    for (size_t i = 0; i < sizeof classes / sizeof *classes; i++) {
        char name[32];
        snprintf(name, sizeof name, "classes%zu.h5", i);
        const char *path = tu_path(tdir, name);
        save_tiny(path);
        set_int_attr(path, "classes", -1, &classes[i]);
        expect_open_error(path, "classes", "2..100000");
    }
}

Test(bad_files, ckpt_oversized_trigger_set) {
    const char *path = tu_path(tdir, "trigger.h5");
    save_tiny(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t g = H5Gcreate2(f, "trigger", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    /* a chunked dataset claiming 2^40 labels in a few bytes of file */
    hsize_t dims[1] = {(hsize_t)1 << 40}, chunk[1] = {1024};
    hid_t sp = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    hid_t d = H5Dcreate2(g, "labels", H5T_STD_I32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Gclose(g), H5Fclose(f);
    expect_open_error(path, "/trigger/labels", NULL);
}

/* -------------------------------------------------------- fingerprints --- */

static void save_fp(const char *path, size_t n) {
    ip_fingerprint fp;
    memset(&fp, 0, sizeof fp);
    ip_fp_defaults(&fp.cfg);
    fp.n = fp.requested = fp.cfg.points = n;
    fp.c = 1, fp.h = 8, fp.w = 8, fp.classes = 10;
    for (int ch = 0; ch < 4; ch++) fp.in_std[ch] = 1, fp.hi[ch] = 1;
    snprintf(fp.owner_arch, sizeof fp.owner_arch, "small-p");
    snprintf(fp.owner_scheme, sizeof fp.owner_scheme, "baseline");
    fp.x = calloc(n * 64, sizeof *fp.x);
    fp.label = calloc(n, sizeof *fp.label);
    fp.source = calloc(n, sizeof *fp.source);
    fp.iterations = calloc(n, sizeof *fp.iterations);
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_save(&fp, path, &e), 0, "%s", e.msg);
    ip_fingerprint_free(&fp);
}

static void set_i64_attr(const char *path, const char *name, long long v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_geq(H5Adelete(f, name), 0);
    cr_assert_eq(ip_h5_attr_write(f, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, -1, &v), 0);
    H5Fclose(f);
}

static void expect_fp_error(const char *path, const char *frag1, const char *frag2) {
    ip_fingerprint fp;
    ip_err e = {{0}};
    expect_input_error(ip_fingerprint_load(&fp, path, &e), &e, path, frag1);
    if (frag2) cr_assert_not_null(strstr(e.msg, frag2), "\"%s\" not in: %s", frag2, e.msg);
}

Test(bad_files, fingerprint_crafted) {
    const char *ok = tu_path(tdir, "fp_ok.h5");
    save_fp(ok, 3);
    ip_fingerprint fp;
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_load(&fp, ok, &e), 0, "%s", e.msg);
    ip_fingerprint_free(&fp);

    const char *p = tu_path(tdir, "fp_shape.h5");
    save_fp(p, 3);
    set_int_attr(p, "input_shape", 3, (const int[]){1, 40000, 40000});
    expect_fp_error(p, "input_shape", NULL);

    p = tu_path(tdir, "fp_classes.h5");
    save_fp(p, 3);
    set_int_attr(p, "classes", -1, (const int[]){2147483647});
    expect_fp_error(p, "classes", NULL);

    /* the attributes claim more points than /x holds: refused before allocating them */
    p = tu_path(tdir, "fp_points.h5");
    save_fp(p, 3);
    set_i64_attr(p, "points", 2000000000);
    set_i64_attr(p, "points_requested", 2000000000);
    expect_fp_error(p, "/x", "2000000000");

    /* /x itself claims 2e9 points in a few bytes (chunked, never written) */
    p = tu_path(tdir, "fp_sparse.h5");
    save_fp(p, 3);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_geq(H5Ldelete(f, "x", H5P_DEFAULT), 0);
    hsize_t dims[4] = {2000000000, 1, 8, 8}, chunk[4] = {16, 1, 8, 8};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    hid_t d = H5Dcreate2(f, "x", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
    set_i64_attr(p, "points", 2000000000);
    set_i64_attr(p, "points_requested", 2000000000);
    expect_fp_error(p, "/x", "stores");
}

/* ------------------------------------------------------------ metrics --- */

Test(bad_files, metrics_array_claiming_huge_extent) {
    static const hsize_t claims[] = {(hsize_t)1 << 61, (hsize_t)1 << 40, 1000};
    for (size_t i = 0; i < sizeof claims / sizeof *claims; i++) {
        char name[32];
        snprintf(name, sizeof name, "metrics%zu.h5", i);
        const char *path = tu_path(tdir, name);
        ip_metrics mt;
        ip_metrics_init(&mt);
        ip_err e = {{0}};
        cr_assert_eq(ip_metrics_set(&mt, "acc", 0.5, &e), 0, "%s", e.msg);
        cr_assert_eq(ip_metrics_save(&mt, path, &e), 0, "%s", e.msg);
        ip_metrics_free(&mt);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        cr_assert_geq(f, 0);
        hid_t g = H5Gopen2(f, "arrays", H5P_DEFAULT);
        hsize_t dims[1] = {claims[i]}, chunk[1] = {256};
        hid_t sp = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, chunk);
        hid_t d = H5Dcreate2(g, "big", H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        cr_assert_geq(d, 0);
        H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Gclose(g), H5Fclose(f);
        expect_input_error(ip_metrics_load(&mt, path, &e), &e, path, "big");
    }
}

/* The trigger set's seed attribute is documentation: a malformed one (1000
 * values where one belongs) reads as 0 and writes nothing past the seed. */
Test(bad_files, ckpt_trigger_seed_attribute_of_1000_values) {
    const char *path = tu_path(tdir, "trigger_seed.h5");
    save_tiny(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    hid_t g = H5Gcreate2(f, "trigger", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(g, 0);
    static float images[2 * 28 * 28];
    static const int32_t labels[2] = {0, 1};
    static uint64_t seeds[1000];
    hsize_t di[4] = {2, 1, 28, 28}, dl[1] = {2};
    cr_assert_eq(ip_h5_write_dataset(g, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, di, images), 0);
    cr_assert_eq(ip_h5_write_dataset(g, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dl, labels), 0);
    cr_assert_eq(ip_h5_attr_write(g, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1000, seeds), 0);
    H5Gclose(g), H5Fclose(f);
    ip_model m;
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(&m, path, &e), 0, "%s", e.msg);
    cr_assert_eq(m.trigger.n, 2);
    cr_assert_eq(m.trigger_seed, 0);
    ip_model_free(&m);
}

/* -------------------------------------------------------------- CIFAR --- */

static void write_bytes(const char *path, size_t n, unsigned char fill) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++) fputc(fill, f);
    cr_assert_eq(fclose(f), 0);
}

Test(bad_files, cifar_files_and_sources) {
    char dir[96], src[160];
    snprintf(dir, sizeof dir, "%s/cifar", tdir);
    mkdir(dir, 0755);
    snprintf(src, sizeof src, "cifar10:%s", dir);
    const char *test = tu_path(dir, "test_batch.bin");
    ip_dataset d;
    ip_err e = {{0}};
    write_bytes(test, 0, 0); /* empty */
    expect_input_error(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), &e, "test_batch.bin", "truncated");
    write_bytes(test, 3073 * 2 + 100, 1); /* not whole records */
    expect_input_error(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), &e, "test_batch.bin", "record");
    write_bytes(test, 3073 * 2, 10); /* label 10 of 10 classes */
    expect_input_error(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), &e, "test_batch.bin", "out of range");
    write_bytes(test, 3073 * 2, 9);
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_str_eq(d.origin, test);
    ip_data_free(&d);
    /* the train split is missing */
    expect_input_error(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), &e, "data_batch_1.bin", "missing");
}

Test(bad_files, bad_source_strings_are_bad_input) {
    static const char *bad[] = {"imagenet:/x", "nocolon", "mnist:", "synthetic:0", "synthetic:10x5x8x8",
                                "synthetic:10x1x4097x8", "synthetic:10/100001", "synthetic:abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ip_dataset d;
        ip_err e = {{0}};
        expect_input_error(ip_data_load(&d, bad[i], IP_SPLIT_TRAIN, 0, &e), &e, NULL, NULL);
    }
}

/* ------------------------------------------------------------- probing --- */

/* ip_data_probe (what `validate` runs on data.source) sees every class of
 * bad data file the loader sees, without loading the pixels. */
Test(bad_files, probe_catches_bad_files_before_any_task) {
    ip_err e = {{0}};
    char src[512];
#define PROBE(dir) (snprintf(src, sizeof src, "fashion-mnist:%s", dir), ip_data_probe(src, &e))
    /* a good split pair passes, raw and gzip */
    for (int gz = 0; gz < 2; gz++) {
        const char *name = gz ? "probe_ok_gz" : "probe_ok";
        idx_split(name, "train", gz, 30, 28, 28, 30 * 784, 30, 30, 3);
        const char *dir = idx_split(name, "t10k", gz, 10, 28, 28, 10 * 784, 10, 10, 9);
        cr_assert_eq(PROBE(dir), 0, "%s", e.msg);
    }
    for (int gz = 0; gz < 2; gz++) {
        char name[32];
        /* 4,294,967,295 images claimed */
        snprintf(name, sizeof name, "probe_huge%d", gz);
        idx_split(name, "train", gz, 4294967295u, 28, 28, 10 * 784, 4294967295u, 10, 1);
        const char *dir = idx_split(name, "t10k", gz, 10, 28, 28, 10 * 784, 10, 10, 1);
        expect_input_error(PROBE(dir), &e, "train-images-idx3-ubyte", "truncated");
        /* a label out of range in the test split */
        snprintf(name, sizeof name, "probe_label%d", gz);
        idx_split(name, "train", gz, 10, 28, 28, 10 * 784, 10, 10, 1);
        dir = idx_split(name, "t10k", gz, 10, 28, 28, 10 * 784, 10, 10, 200);
        expect_input_error(PROBE(dir), &e, "t10k-labels-idx1-ubyte", "out of range");
        /* an empty test split */
        snprintf(name, sizeof name, "probe_empty%d", gz);
        idx_split(name, "train", gz, 10, 28, 28, 10 * 784, 10, 10, 1);
        dir = idx_split(name, "t10k", gz, 0, 28, 28, 0, 0, 0, 1);
        expect_input_error(PROBE(dir), &e, "t10k-images-idx3-ubyte", "empty");
        /* splits of different shapes */
        snprintf(name, sizeof name, "probe_shape%d", gz);
        idx_split(name, "train", gz, 10, 28, 28, 10 * 784, 10, 10, 1);
        dir = idx_split(name, "t10k", gz, 10, 32, 32, 10 * 1024, 10, 10, 1);
        expect_input_error(PROBE(dir), &e, "1x28x28", gz ? "t10k-images-idx3-ubyte.gz: 1x32x32" : "t10k-images-idx3-ubyte: 1x32x32");
    }
    /* a real gzip file cut short */
    const char *dir = idx_split("probe_cut", "train", 1, 400, 28, 28, 400 * 784, 400, 400, 1);
    idx_split("probe_cut", "t10k", 1, 10, 28, 28, 10 * 784, 10, 10, 1);
    char p[256];
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", dir);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(truncate(p, st.st_size / 2), 0);
    expect_input_error(PROBE(dir), &e, "train-images-idx3-ubyte.gz", NULL);
#undef PROBE
    /* synthetic sources are parsed only */
    cr_assert_eq(ip_data_probe("synthetic:100x3x32x32/10", &e), 0, "%s", e.msg);
    expect_input_error(ip_data_probe("synthetic:100x3x32x32/0", &e), &e, "synthetic", NULL);
}

/* A stored config within the limits can still imply terabytes of weights
 * (4x4096x4096 inputs, 100000 classes): nothing is allocated before the file
 * is seen to hold every tensor of that size. */
Test(bad_files, ckpt_config_implying_terabytes) {
    const char *path = tu_path(tdir, "terabytes.h5");
    save_tiny(path);
    set_int_attr(path, "input_shape", 3, (const int[]){1, 4096, 4096});
    set_int_attr(path, "classes", -1, (const int[]){100000});
    expect_open_error(path, "fc", "shape");

    /* the right shapes, but a tensor that claims its values without storing them */
    path = tu_path(tdir, "sparse_tensor.h5");
    save_tiny(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_geq(H5Ldelete(f, "/params/fc/weight", H5P_DEFAULT), 0);
    hsize_t dims[2] = {10, 64 * 3 * 3}, chunk[2] = {1, 64};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    hid_t d = H5Dcreate2(f, "/params/fc/weight", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    cr_assert_geq(d, 0);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp), H5Fclose(f);
    expect_open_error(path, "/params/fc/weight", "stores");

    /* a missing tensor */
    path = tu_path(tdir, "missing_tensor.h5");
    save_tiny(path);
    f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "/params/fc/weight", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_open_error(path, "missing /params/fc/weight", NULL);
}
