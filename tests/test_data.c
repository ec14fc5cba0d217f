/* Dataset loaders (IDX raw/gzip, CIFAR-10/100 binary, synthetic), error
 * messages, normalisation, subsets, shuffling and augmentation. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../core/io/data.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers --- */

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ipsweep-test-data-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void) {
    if (tmpdir[0]) nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
}

static const char *path_in(char *buf, size_t cap, const char *dir, const char *name) {
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static void write_file(const char *path, const void *buf, size_t n, int gz) {
    if (gz) {
        gzFile f = gzopen(path, "wb");
        cr_assert_not_null(f, "gzopen %s", path);
        if (n) cr_assert_eq(gzwrite(f, buf, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f, "fopen %s", path);
        if (n) cr_assert_eq(fwrite(buf, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
    }
}

static size_t put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

/* IDX images file with n images of rows x cols, pixel (i, q) = (i*31 + q*7 + salt) & 255,
 * of which only `stored` images are actually written. */
static void write_idx_images(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t stored, uint32_t rows,
                             uint32_t cols, int salt) {
    size_t sz = 16 + (size_t)stored * rows * cols;
    unsigned char *b = malloc(sz);
    size_t o = put_be32(b, magic);
    o += put_be32(b + o, n);
    o += put_be32(b + o, rows);
    o += put_be32(b + o, cols);
    for (size_t i = 0; i < stored; i++)
        for (size_t q = 0; q < (size_t)rows * cols; q++) b[o++] = (unsigned char)((i * 31 + q * 7 + (size_t)salt) & 255);
    write_file(path, b, sz, gz);
    free(b);
}

static unsigned char img_px(size_t i, size_t q, int salt) {
    return (unsigned char)((i * 31 + q * 7 + (size_t)salt) & 255);
}

static void write_idx_labels(const char *path, int gz, uint32_t magic, uint32_t n, const unsigned char *labels) {
    unsigned char *b = malloc(8 + n);
    put_be32(b, magic);
    put_be32(b + 4, n);
    memcpy(b + 8, labels, n);
    write_file(path, b, 8 + n, gz);
    free(b);
}

static const unsigned char LABELS5[5] = {3, 0, 9, 1, 3};
static const unsigned char LABELS5B[5] = {7, 7, 2, 2, 5};

static void check_idx(const ip_dataset *d, size_t n, int rows, int cols, const unsigned char *labels, int salt) {
    cr_assert_eq(d->n, n);
    cr_assert_eq(d->c, 1);
    cr_assert_eq(d->h, rows);
    cr_assert_eq(d->w, cols);
    cr_assert_eq(d->classes, 10);
    cr_assert_eq(d->normalised, 0);
    size_t s = (size_t)rows * cols;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(d->y[i], labels[i], "label %zu", i);
        for (size_t q = 0; q < s; q++)
            cr_assert_float_eq(d->x[i * s + q], img_px(i, q, salt) / 255.0f, 1e-7, "pixel %zu,%zu", i, q);
    }
}

/* ---------------------------------------------------------------- IDX --- */

Test(data, idx_raw_and_gzip, .init = make_tmpdir, .fini = remove_tmpdir) {
    char ip[512], lp[512];
    ip_err e = {{0}};
    ip_dataset d;
    for (int gz = 0; gz < 2; gz++) {
        path_in(ip, sizeof ip, tmpdir, gz ? "img.gz" : "img");
        path_in(lp, sizeof lp, tmpdir, gz ? "lab.gz" : "lab");
        write_idx_images(ip, gz, 0x803, 5, 5, 3, 2, gz);
        write_idx_labels(lp, gz, 0x801, 5, LABELS5);
        cr_assert_eq(ip_data_load_idx(&d, ip, lp, 0, &e), 0, "%s", e.msg);
        check_idx(&d, 5, 3, 2, LABELS5, gz);
        for (int ch = 0; ch < 4; ch++) cr_assert(d.mean[ch] == 0.f && d.std[ch] == 1.f);
        ip_data_free(&d);
        /* limit keeps the first samples; a limit above n keeps all */
        cr_assert_eq(ip_data_load_idx(&d, ip, lp, 2, &e), 0, "%s", e.msg);
        check_idx(&d, 2, 3, 2, LABELS5, gz);
        ip_data_free(&d);
        cr_assert_eq(ip_data_load_idx(&d, ip, lp, 100, &e), 0, "%s", e.msg);
        check_idx(&d, 5, 3, 2, LABELS5, gz);
        ip_data_free(&d);
    }
    ip_data_free(&d); /* freeing twice is harmless */
}

Test(data, idx_source_prefers_gzip_and_selects_split, .init = make_tmpdir, .fini = remove_tmpdir) {
    char p[512], src[600];
    ip_err e = {{0}};
    ip_dataset d;
    /* train: both .gz and raw present, with different content; .gz wins */
    write_idx_images(path_in(p, sizeof p, tmpdir, "train-images-idx3-ubyte.gz"), 1, 0x803, 5, 5, 4, 4, 1);
    write_idx_labels(path_in(p, sizeof p, tmpdir, "train-labels-idx1-ubyte.gz"), 1, 0x801, 5, LABELS5);
    write_idx_images(path_in(p, sizeof p, tmpdir, "train-images-idx3-ubyte"), 0, 0x803, 5, 5, 4, 4, 2);
    write_idx_labels(path_in(p, sizeof p, tmpdir, "train-labels-idx1-ubyte"), 0, 0x801, 5, LABELS5B);
    /* test: raw only */
    write_idx_images(path_in(p, sizeof p, tmpdir, "t10k-images-idx3-ubyte"), 0, 0x803, 5, 5, 4, 4, 3);
    write_idx_labels(path_in(p, sizeof p, tmpdir, "t10k-labels-idx1-ubyte"), 0, 0x801, 5, LABELS5B);

    snprintf(src, sizeof src, "fashion-mnist:%s", tmpdir);
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0, "%s", e.msg);
    check_idx(&d, 5, 4, 4, LABELS5, 1);
    cr_assert_str_eq(d.name, "fashion-mnist");
    ip_data_free(&d);

    snprintf(src, sizeof src, "mnist:%s", tmpdir);
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TEST, 3, &e), 0, "%s", e.msg);
    check_idx(&d, 3, 4, 4, LABELS5B, 3);
    cr_assert_str_eq(d.name, "mnist");
    ip_data_free(&d);

    /* missing files name what was looked for */
    snprintf(src, sizeof src, "mnist:%s/nowhere", tmpdir);
    cr_assert_neq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "train-images-idx3-ubyte") != NULL, "message: %s", e.msg);
    cr_assert(strstr(e.msg, "nowhere") != NULL, "message: %s", e.msg);
    cr_assert_null(d.x);
    remove(path_in(p, sizeof p, tmpdir, "t10k-labels-idx1-ubyte"));
    snprintf(src, sizeof src, "mnist:%s", tmpdir);
    cr_assert_neq(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), 0);
    cr_assert(strstr(e.msg, "t10k-labels-idx1-ubyte") != NULL, "message: %s", e.msg);
    cr_assert_null(d.x);
    cr_assert_null(d.y);
}

static void expect_idx_error(const char *ip, const char *lp, size_t limit, const char *needle, const char *file) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_neq(ip_data_load_idx(&d, ip, lp, limit, &e), 0, "loading %s should fail", file);
    cr_assert(strstr(e.msg, file) != NULL, "message does not name %s: %s", file, e.msg);
    cr_assert(strstr(e.msg, needle) != NULL, "message lacks \"%s\": %s", needle, e.msg);
    cr_assert_null(d.x);
    cr_assert_null(d.y);
    cr_assert_eq(d.n, 0);
    ip_data_free(&d);
}

Test(data, idx_errors, .init = make_tmpdir, .fini = remove_tmpdir) {
    char ip[512], lp[512], bad[512], p2[512];
    path_in(ip, sizeof ip, tmpdir, "img");
    path_in(lp, sizeof lp, tmpdir, "lab");
    write_idx_images(ip, 0, 0x803, 5, 5, 3, 3, 0);
    write_idx_labels(lp, 0, 0x801, 5, LABELS5);

    /* missing file */
    path_in(bad, sizeof bad, tmpdir, "no-such-images");
    expect_idx_error(bad, lp, 0, "cannot open", bad);
    path_in(bad, sizeof bad, tmpdir, "no-such-labels");
    expect_idx_error(ip, bad, 0, "cannot open", bad);

    /* truncated pixels: header says 5 images, 3 stored; reading the first 3 is fine */
    path_in(bad, sizeof bad, tmpdir, "short-img");
    write_idx_images(bad, 0, 0x803, 5, 3, 3, 3, 0);
    expect_idx_error(bad, lp, 0, "truncated", bad);
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_load_idx(&d, bad, lp, 3, &e), 0, "only the needed samples are read: %s", e.msg);
    check_idx(&d, 3, 3, 3, LABELS5, 0);
    ip_data_free(&d);

    /* truncated gzip stream */
    path_in(bad, sizeof bad, tmpdir, "cut.gz");
    write_idx_images(bad, 1, 0x803, 5, 5, 3, 3, 0);
    struct stat st;
    cr_assert_eq(stat(bad, &st), 0);
    cr_assert_eq(truncate(bad, st.st_size / 2), 0);
    expect_idx_error(bad, lp, 0, "truncated", bad);

    /* truncated header */
    path_in(bad, sizeof bad, tmpdir, "tiny");
    write_file(bad, "\0\0\x08", 3, 0);
    expect_idx_error(bad, lp, 0, "truncated", bad);

    /* truncated labels */
    path_in(bad, sizeof bad, tmpdir, "short-lab");
    {
        unsigned char b[8 + 2];
        put_be32(b, 0x801);
        put_be32(b + 4, 5);
        b[8] = 1;
        b[9] = 2;
        write_file(bad, b, sizeof b, 0);
    }
    expect_idx_error(ip, bad, 0, "truncated", bad);

    /* bad magic, including swapped files */
    path_in(bad, sizeof bad, tmpdir, "magic");
    write_idx_images(bad, 0, 0x804, 5, 5, 3, 3, 0);
    expect_idx_error(bad, lp, 0, "magic", bad);
    expect_idx_error(lp, ip, 0, "magic", lp);

    /* count mismatch names both files */
    path_in(bad, sizeof bad, tmpdir, "four-labels");
    write_idx_labels(bad, 0, 0x801, 4, LABELS5);
    expect_idx_error(ip, bad, 0, "4 labels", bad);
    expect_idx_error(ip, bad, 0, "5 images", ip);

    /* label out of range */
    path_in(bad, sizeof bad, tmpdir, "label-10");
    const unsigned char l10[5] = {1, 2, 10, 3, 4};
    write_idx_labels(bad, 0, 0x801, 5, l10);
    expect_idx_error(ip, bad, 0, "out of range", bad);

    /* zero-sized images */
    path_in(p2, sizeof p2, tmpdir, "zero-cols");
    write_idx_images(p2, 0, 0x803, 5, 5, 3, 0, 0);
    expect_idx_error(p2, lp, 0, "image size", p2);
}

/* -------------------------------------------------------------- CIFAR --- */

/* Record r of a file with `salt`: label(s) then 3072 bytes, byte q = (r*13 + q + salt) & 255. */
static unsigned char cifar_px(size_t r, size_t q, int salt) { return (unsigned char)((r * 13 + q + (size_t)salt) & 255); }

static void write_cifar(const char *path, int c100, size_t nrec, int salt, const unsigned char *fine, size_t extra) {
    size_t lab = c100 ? 2 : 1, rec = lab + 3072;
    unsigned char *b = calloc(nrec * rec + extra, 1);
    for (size_t r = 0; r < nrec; r++) {
        unsigned char *p = b + r * rec;
        if (c100) p[0] = (unsigned char)(fine[r] / 5); /* coarse label */
        p[lab - 1] = fine[r];
        for (size_t q = 0; q < 3072; q++) p[lab + q] = cifar_px(r, q, salt);
    }
    write_file(path, b, nrec * rec + extra, 0);
    free(b);
}

static void check_cifar_sample(const ip_dataset *d, size_t k, size_t r, int salt, int label) {
    cr_assert_eq(d->y[k], label, "label of sample %zu", k);
    const float *x = d->x + k * 3072;
    /* the record's bytes are already planar R, G, B (row-major 32x32 each) */
    for (size_t q = 0; q < 3072; q++)
        cr_assert_float_eq(x[q], cifar_px(r, q, salt) / 255.0f, 1e-7, "sample %zu pixel %zu", k, q);
}

static const unsigned char L10[2] = {4, 9};
static const unsigned char L100[3] = {99, 0, 57};

static void write_cifar10_set(const char *dir) {
    char p[512], name[64];
    for (int b = 1; b <= 5; b++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        write_cifar(path_in(p, sizeof p, dir, name), 0, 2, b, L10, 0);
    }
    write_cifar(path_in(p, sizeof p, dir, "test_batch.bin"), 0, 2, 100, L10, 0);
}

Test(data, cifar10_both_splits, .init = make_tmpdir, .fini = remove_tmpdir) {
    char src[600];
    ip_err e = {{0}};
    ip_dataset d;
    write_cifar10_set(tmpdir);
    snprintf(src, sizeof src, "cifar10:%s", tmpdir);
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 10);
    cr_assert(d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 10);
    cr_assert_str_eq(d.name, "cifar10");
    for (size_t k = 0; k < 10; k++) check_cifar_sample(&d, k, k % 2, (int)(k / 2) + 1, L10[k % 2]);
    ip_data_free(&d);

    /* limit across a file boundary */
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 3, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 3);
    check_cifar_sample(&d, 2, 0, 2, L10[0]);
    ip_data_free(&d);

    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 2);
    for (size_t k = 0; k < 2; k++) check_cifar_sample(&d, k, k, 100, L10[k]);
    ip_data_free(&d);
}

Test(data, cifar10_subdirectory_and_errors, .init = make_tmpdir, .fini = remove_tmpdir) {
    char src[600], sub[512], p[600];
    ip_err e = {{0}};
    ip_dataset d;
    path_in(sub, sizeof sub, tmpdir, "cifar-10-batches-bin");
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_cifar10_set(sub);
    snprintf(src, sizeof src, "cifar10:%s", tmpdir);
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 2);
    check_cifar_sample(&d, 1, 1, 100, L10[1]);
    ip_data_free(&d);

    /* a truncated batch (not a multiple of the 3073-byte record) */
    path_in(p, sizeof p, sub, "data_batch_3.bin");
    write_cifar(p, 0, 2, 3, L10, 100);
    cr_assert_neq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "data_batch_3.bin") && strstr(e.msg, "truncated"), "message: %s", e.msg);
    cr_assert_null(d.x);
    /* ... which a small limit never reaches */
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 4, &e), 0, "%s", e.msg);
    ip_data_free(&d);

    /* a missing batch */
    remove(p);
    cr_assert_neq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "data_batch_3.bin"), "message: %s", e.msg);

    /* label out of range */
    const unsigned char bad[2] = {1, 10};
    write_cifar(p, 0, 2, 3, bad, 0);
    cr_assert_neq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "data_batch_3.bin") && strstr(e.msg, "out of range"), "message: %s", e.msg);

    /* nothing at all */
    snprintf(src, sizeof src, "cifar100:%s", tmpdir);
    cr_assert_neq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "train.bin") && strstr(e.msg, "cifar-100-binary"), "message: %s", e.msg);
    cr_assert_null(d.x);
}

Test(data, cifar100_fine_labels_and_subdirectory, .init = make_tmpdir, .fini = remove_tmpdir) {
    char src[600], sub[512], p[600];
    ip_err e = {{0}};
    ip_dataset d;
    write_cifar(path_in(p, sizeof p, tmpdir, "train.bin"), 1, 3, 5, L100, 0);
    path_in(sub, sizeof sub, tmpdir, "cifar-100-binary");
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_cifar(path_in(p, sizeof p, sub, "test.bin"), 1, 2, 6, L100 + 1, 0);
    snprintf(src, sizeof src, "cifar100:%s", tmpdir);

    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 3);
    cr_assert(d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 100);
    cr_assert_str_eq(d.name, "cifar100");
    for (size_t k = 0; k < 3; k++) check_cifar_sample(&d, k, k, 5, L100[k]);
    ip_data_free(&d);

    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 2);
    for (size_t k = 0; k < 2; k++) check_cifar_sample(&d, k, k, 6, L100[k + 1]);
    ip_data_free(&d);

    /* direct loader; truncated cifar100 file (a cifar10-sized record) */
    const char *paths[1] = {p};
    path_in(p, sizeof p, tmpdir, "c10-record.bin");
    write_cifar(p, 0, 2, 0, L10, 0);
    cr_assert_neq(ip_data_load_cifar(&d, paths, 1, 1, 0, &e), 0);
    cr_assert(strstr(e.msg, "c10-record.bin") && strstr(e.msg, "truncated"), "message: %s", e.msg);
    cr_assert_null(d.x);
    cr_assert_eq(ip_data_load_cifar(&d, paths, 1, 0, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 2);
    ip_data_free(&d);
    /* empty file */
    write_file(p, "", 0, 0);
    cr_assert_neq(ip_data_load_cifar(&d, paths, 1, 0, 0, &e), 0);
    cr_assert(strstr(e.msg, "c10-record.bin"), "message: %s", e.msg);
}

/* ------------------------------------------------------ source errors --- */

Test(data, bad_sources) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_neq(ip_data_load(&d, "imagenet:/data", IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "unknown") && strstr(e.msg, "imagenet"), "message: %s", e.msg);
    cr_assert_neq(ip_data_load(&d, "no-colon", IP_SPLIT_TRAIN, 0, &e), 0);
    cr_assert(strstr(e.msg, "no-colon"), "message: %s", e.msg);
    cr_assert_neq(ip_data_load(&d, "mnist:", IP_SPLIT_TRAIN, 0, &e), 0);
    const char *bad[] = {"synthetic:",          "synthetic:0",        "synthetic:abc",    "synthetic:10x1x8",
                         "synthetic:10x5x8x8",  "synthetic:10x1x0x8", "synthetic:10/0",   "synthetic:10junk",
                         "synthetic:10x1x8x8/", "synthetic:-5",       "synthetic:10x1x8x8x2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = '\0';
        cr_assert_neq(ip_data_load(&d, bad[i], IP_SPLIT_TRAIN, 0, &e), 0, "%s should fail", bad[i]);
        cr_assert(strstr(e.msg, "synthetic"), "message for %s: %s", bad[i], e.msg);
        cr_assert_null(d.x);
    }
    cr_assert_neq(ip_data_synthetic(&d, 10, 0, 8, 8, 10, 1, IP_SPLIT_TRAIN, &e), 0);
    cr_assert_neq(ip_data_synthetic(&d, 0, 1, 8, 8, 10, 1, IP_SPLIT_TRAIN, &e), 0);
}

/* ---------------------------------------------------------- synthetic --- */

Test(data, synthetic_spec_and_determinism) {
    ip_dataset a, b, c, t;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_load(&a, "synthetic:50x3x8x6/4", IP_SPLIT_TRAIN, 0, &e), 0, "%s", e.msg);
    cr_assert(a.n == 50 && a.c == 3 && a.h == 8 && a.w == 6 && a.classes == 4);
    cr_assert_str_eq(a.name, "synthetic");
    cr_assert_eq(ip_data_synthetic(&b, 50, 3, 8, 6, 4, IP_DATA_SYNTHETIC_SEED, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    size_t sz = 50 * 3 * 8 * 6;
    cr_assert(memcmp(a.x, b.x, sz * sizeof(float)) == 0, "same seed, different pixels");
    cr_assert(memcmp(a.y, b.y, 50 * sizeof(int32_t)) == 0);
    int seen[4] = {0};
    for (size_t i = 0; i < sz; i++) cr_assert(a.x[i] >= 0.f && a.x[i] <= 1.f);
    for (size_t i = 0; i < 50; i++) {
        cr_assert(a.y[i] >= 0 && a.y[i] < 4);
        seen[a.y[i]]++;
    }
    for (int k = 0; k < 4; k++) cr_assert_gt(seen[k], 0, "class %d never drawn", k);

    cr_assert_eq(ip_data_synthetic(&t, 50, 3, 8, 6, 4, IP_DATA_SYNTHETIC_SEED, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    cr_assert(memcmp(a.x, t.x, sz * sizeof(float)) != 0, "train and test splits should differ");
    cr_assert_eq(ip_data_synthetic(&c, 50, 3, 8, 6, 4, IP_DATA_SYNTHETIC_SEED + 1, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    cr_assert(memcmp(a.x, c.x, sz * sizeof(float)) != 0, "different seeds should differ");
    ip_data_free(&c);

    /* a limit gives a prefix of the same samples */
    cr_assert_eq(ip_data_load(&c, "synthetic:50x3x8x6/4", IP_SPLIT_TRAIN, 20, &e), 0, "%s", e.msg);
    cr_assert_eq(c.n, 20);
    cr_assert(memcmp(a.x, c.x, 20 * 3 * 8 * 6 * sizeof(float)) == 0);
    ip_data_free(&c);

    /* defaults */
    cr_assert_eq(ip_data_load(&c, "synthetic:12", IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert(c.n == 12 && c.c == 1 && c.h == 28 && c.w == 28 && c.classes == 10);
    ip_data_free(&c);
    cr_assert_eq(ip_data_load(&c, "synthetic:12/3", IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert(c.n == 12 && c.c == 1 && c.h == 28 && c.classes == 3);
    ip_data_free(&c);

    ip_data_free(&a);
    ip_data_free(&b);
    ip_data_free(&t);
}

/* Nearest class mean (fitted on train) classifies test well: the splits share
 * prototypes and the classes are separable. */
Test(data, synthetic_is_learnable) {
    ip_dataset tr, te;
    ip_err e = {{0}};
    const int K = 10, H = 16;
    cr_assert_eq(ip_data_synthetic(&tr, 512, 1, H, H, K, 5, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_synthetic(&te, 256, 1, H, H, K, 5, IP_SPLIT_TEST, &e), 0, "%s", e.msg);
    size_t s = (size_t)H * H;
    double *mean = calloc((size_t)K * s, sizeof *mean);
    int cnt[10] = {0};
    for (size_t i = 0; i < tr.n; i++) {
        cnt[tr.y[i]]++;
        for (size_t q = 0; q < s; q++) mean[tr.y[i] * s + q] += tr.x[i * s + q];
    }
    for (int k = 0; k < K; k++)
        for (size_t q = 0; q < s; q++) mean[k * s + q] /= cnt[k] ? cnt[k] : 1;
    int correct = 0;
    for (size_t i = 0; i < te.n; i++) {
        int best = -1;
        double bd = 0;
        for (int k = 0; k < K; k++) {
            double dist = 0;
            for (size_t q = 0; q < s; q++) {
                double t = te.x[i * s + q] - mean[k * s + q];
                dist += t * t;
            }
            if (best < 0 || dist < bd) best = k, bd = dist;
        }
        correct += best == te.y[i];
    }
    double acc = (double)correct / (double)te.n;
    cr_assert_gt(acc, 0.9, "nearest-class-mean accuracy %.3f", acc);
    free(mean);
    ip_data_free(&tr);
    ip_data_free(&te);
}

/* ------------------------------------------------------- normalisation --- */

Test(data, normalise_stats_and_input_range) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, 64, 3, 8, 8, 5, 2, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    float lo[4], hi[4], mean[4], std[4], m2[4], s2[4];
    ip_data_input_range(&d, lo, hi);
    for (int ch = 0; ch < 3; ch++) cr_assert(lo[ch] == 0.f && hi[ch] == 1.f);

    /* reference stats in double, two-pass */
    size_t plane = 64, sample = 3 * plane;
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, ss = 0, n = 64.0 * plane;
        for (size_t i = 0; i < 64; i++)
            for (size_t q = 0; q < plane; q++) s += d.x[i * sample + ch * plane + q];
        double m = s / n;
        for (size_t i = 0; i < 64; i++)
            for (size_t q = 0; q < plane; q++) {
                double t = d.x[i * sample + ch * plane + q] - m;
                ss += t * t;
            }
        m2[ch] = (float)m;
        s2[ch] = (float)sqrt(ss / n);
    }
    ip_data_channel_stats(&d, mean, std);
    for (int ch = 0; ch < 3; ch++) {
        cr_assert_float_eq(mean[ch], m2[ch], 1e-6);
        cr_assert_float_eq(std[ch], s2[ch], 1e-6);
        cr_assert_gt(std[ch], 0.05f);
    }
    float keep0 = d.x[0];
    ip_data_normalise(&d, mean, std);
    cr_assert_eq(d.normalised, 1);
    cr_assert_float_eq(d.x[0], (keep0 - mean[0]) / std[0], 1e-5);
    for (int ch = 0; ch < 3; ch++) cr_assert(d.mean[ch] == mean[ch] && d.std[ch] == std[ch]);
    ip_data_channel_stats(&d, m2, s2);
    for (int ch = 0; ch < 3; ch++) {
        cr_assert(fabsf(m2[ch]) < 1e-4f, "mean %g", m2[ch]);
        cr_assert(fabsf(s2[ch] - 1.f) < 1e-4f, "std %g", s2[ch]);
    }
    ip_data_input_range(&d, lo, hi);
    for (int ch = 0; ch < 3; ch++) {
        cr_assert_float_eq(lo[ch], -mean[ch] / std[ch], 1e-6);
        cr_assert_float_eq(hi[ch], (1.f - mean[ch]) / std[ch], 1e-6);
    }
    /* normalising again refers to the raw [0,1] pixels, not the already normalised ones */
    const float m3[3] = {0.5f, 0.5f, 0.5f}, s3[3] = {0.25f, 0.25f, 0.25f};
    ip_data_normalise(&d, m3, s3);
    cr_assert_float_eq(d.x[0], (keep0 - 0.5f) / 0.25f, 1e-5);
    ip_data_input_range(&d, lo, hi);
    cr_assert_float_eq(lo[1], -2.f, 1e-6);
    cr_assert_float_eq(hi[1], 2.f, 1e-6);
    ip_data_free(&d);
}

Test(data, channel_stats_of_constant_channel) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, 4, 1, 4, 4, 2, 2, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    for (size_t i = 0; i < 64; i++) d.x[i] = 0.25f;
    float m, s;
    ip_data_channel_stats(&d, &m, &s);
    cr_assert_float_eq(m, 0.25f, 1e-7);
    cr_assert(s == 1.f, "constant channel: std %g should fall back to 1", s);
    ip_data_free(&d);
}

/* ---------------------------------------------------- subset & shuffle --- */

Test(data, subset_in_place_and_clamped) {
    ip_dataset d, ref;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, 10, 2, 3, 3, 4, 9, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_synthetic(&ref, 10, 2, 3, 3, 4, 9, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    size_t s = 18;
    ip_data_subset(&d, 3, 4);
    cr_assert_eq(d.n, 4);
    cr_assert(memcmp(d.x, ref.x + 3 * s, 4 * s * sizeof(float)) == 0);
    cr_assert(memcmp(d.y, ref.y + 3, 4 * sizeof(int32_t)) == 0);
    ip_data_subset(&d, 1, 100); /* clamps to the 3 left */
    cr_assert_eq(d.n, 3);
    cr_assert(memcmp(d.x, ref.x + 4 * s, 3 * s * sizeof(float)) == 0);
    cr_assert_eq(d.y[2], ref.y[6]);
    ip_data_subset(&d, 0, 3);
    cr_assert_eq(d.n, 3);
    ip_data_subset(&d, 50, 5);
    cr_assert_eq(d.n, 0);
    ip_data_free(&d);
    ip_data_free(&ref);
}

Test(data, epoch_order_is_a_deterministic_permutation) {
    const size_t n = 500;
    uint32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    char *seen = calloc(n, 1);
    ip_data_epoch_order(a, n, 3, 2);
    ip_data_epoch_order(b, n, 3, 2);
    cr_assert(memcmp(a, b, n * sizeof *a) == 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(a[i], n);
        cr_assert_eq(seen[a[i]], 0, "duplicate %u", a[i]);
        seen[a[i]] = 1;
    }
    ip_data_epoch_order(c, n, 3, 3);
    cr_assert(memcmp(a, c, n * sizeof *a) != 0, "epochs should differ");
    ip_data_epoch_order(c, n, 4, 2);
    cr_assert(memcmp(a, c, n * sizeof *a) != 0, "seeds should differ");
    /* documented keying */
    ip_rng r;
    ip_rng_init(&r, 3, ip_stream("shuffle", 2));
    ip_rng_permutation(&r, c, n);
    cr_assert(memcmp(a, c, n * sizeof *a) == 0);
    free(a);
    free(b);
    free(c);
    free(seen);
}

/* ------------------------------------------------------------- gather --- */

/* Reference augmentation via an explicitly zero-padded image. */
static void ref_augment(const float *src, float *dst, int c, int h, int w, int dy, int dx, int flip) {
    int ph = h + 8, pw = w + 8;
    float *pad = calloc((size_t)ph * pw, sizeof *pad);
    for (int ch = 0; ch < c; ch++) {
        memset(pad, 0, (size_t)ph * pw * sizeof *pad);
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) pad[(i + 4) * pw + j + 4] = src[(ch * h + i) * w + j];
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                float v = pad[(i + 4 + dy) * pw + (j + 4 + dx)]; /* crop at offset (4+dy, 4+dx) */
                dst[(ch * h + i) * w + (flip ? w - 1 - j : j)] = v;
            }
    }
    free(pad);
}

Test(data, gather_plain_copy) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, 20, 2, 5, 4, 3, 1, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    const uint32_t idx[4] = {7, 0, 19, 7};
    size_t s = 40;
    float x[160];
    int32_t y[4];
    ip_data_gather(&d, idx, 4, x, y, 0, NULL);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(y[k], d.y[idx[k]]);
        cr_assert(memcmp(x + k * s, d.x + idx[k] * s, s * sizeof(float)) == 0);
    }
    ip_data_free(&d);
}

Test(data, gather_augment_crop_and_flip) {
    enum { C = 2, H = 6, W = 5, S = C * H * W, B = 300 };
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, 3, C, H, W, 3, 1, IP_SPLIT_TRAIN, &e), 0, "%s", e.msg);
    /* a known, asymmetric image: value = 1 + index */
    for (int q = 0; q < S; q++) d.x[S + q] = 1.f + (float)q;
    uint32_t idx[B];
    for (int k = 0; k < B; k++) idx[k] = 1;
    float *x = malloc(B * S * sizeof *x), *x2 = malloc(B * S * sizeof *x2), ref[S];
    int32_t y[B], y2[B];
    ip_rng r, r2, replay;
    ip_rng_init(&r, 5, ip_stream("augment", 0));
    ip_rng_init(&r2, 5, ip_stream("augment", 0));
    ip_rng_init(&replay, 5, ip_stream("augment", 0));
    ip_data_gather(&d, idx, B, x, y, 1, &r);
    ip_data_gather(&d, idx, B, x2, y2, 1, &r2);
    cr_assert(memcmp(x, x2, B * S * sizeof *x) == 0, "augmentation is not deterministic given the rng");
    int flips = 0, pure_flip = 0, shifts = 0, seen_dx[9] = {0};
    for (int k = 0; k < B; k++) {
        cr_assert_eq(y[k], d.y[1]);
        int dy = (int)ip_rng_below(&replay, 9) - 4;
        int dx = (int)ip_rng_below(&replay, 9) - 4;
        int flip = ip_rng_uniform(&replay) < 0.5f;
        flips += flip;
        seen_dx[dx + 4]++;
        ref_augment(d.x + S, ref, C, H, W, dy, dx, flip);
        for (int q = 0; q < S; q++)
            cr_assert(x[k * S + q] == ref[q], "sample %d (dy %d dx %d flip %d) element %d: %g vs %g", k, dy, dx, flip,
                      q, x[k * S + q], ref[q]);
        if (dy == 0 && dx == 0 && flip) {
            /* exact mirror */
            pure_flip++;
            for (int ch = 0; ch < C; ch++)
                for (int i = 0; i < H; i++)
                    for (int j = 0; j < W; j++)
                        cr_assert_eq(x[k * S + (ch * H + i) * W + j], 1.f + (float)((ch * H + i) * W + (W - 1 - j)));
        }
        if (dy == 1 && dx == 0 && !flip) {
            /* rows move up by one; the last row is padding */
            shifts++;
            for (int ch = 0; ch < C; ch++)
                for (int j = 0; j < W; j++) {
                    cr_assert_eq(x[k * S + (ch * H + 0) * W + j], 1.f + (float)((ch * H + 1) * W + j));
                    cr_assert_eq(x[k * S + (ch * H + H - 1) * W + j], 0.f);
                }
        }
    }
    cr_assert(flips > B / 2 - 50 && flips < B / 2 + 50, "%d flips of %d", flips, B);
    for (int t = 0; t < 9; t++) cr_assert_gt(seen_dx[t], 0, "offset %d never drawn", t - 4);
    cr_assert_gt(pure_flip + shifts, 0, "no pure flip or pure shift drawn: test seed is unlucky");
    free(x);
    free(x2);
    ip_data_free(&d);
}

/* --------------------------------------------------------- real data --- */

Test(data, real_fashion_mnist) {
    const char *dir = getenv("IPSWEEP_DATA_DIR");
    if (!dir) dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) cr_skip_test("no Fashion-MNIST directory %s", dir);
    char src[600];
    snprintf(src, sizeof src, "fashion-mnist:%s", dir);
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_load(&d, src, IP_SPLIT_TRAIN, 100, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, 100);
    cr_assert(d.c == 1 && d.h == 28 && d.w == 28 && d.classes == 10, "%dx%dx%d, %d classes", d.c, d.h, d.w,
              d.classes);
    cr_assert_str_eq(d.name, "fashion-mnist");
    int seen[10] = {0};
    for (size_t i = 0; i < d.n; i++) {
        cr_assert(d.y[i] >= 0 && d.y[i] < 10);
        seen[d.y[i]] = 1;
    }
    int distinct = 0;
    for (int k = 0; k < 10; k++) distinct += seen[k];
    cr_assert_gt(distinct, 5);
    float mn = 1, mx = 0;
    for (size_t i = 0; i < d.n * 784; i++) {
        mn = fminf(mn, d.x[i]);
        mx = fmaxf(mx, d.x[i]);
    }
    cr_assert(mn == 0.f && mx == 1.f, "pixel range [%g, %g]", mn, mx);
    /* Fashion-MNIST's first training label is 9 (ankle boot) */
    cr_assert_eq(d.y[0], 9);
    ip_data_free(&d);
}

/* --------------------------------------------------- source checking --- */

/* A stand-in for rn_suggest: the candidate the word is a prefix of, after
 * checking it was offered every kind. */
static const char *prefix_suggest(const char *word, const char *const *cands, int n) {
    cr_assert_eq(n, 5);
    const char *hit = NULL;
    for (int i = 0; i < n; i++)
        if (*word && strncmp(cands[i], word, strlen(word)) == 0) hit = cands[i];
    return hit;
}

/* Fails with exactly msg, as a bad input, blaming the text or the files. */
static void expect_check_error(const char *src, int check_files, const char *msg, int bad_files) {
    ip_data_shape sh;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_check_source(src, check_files, prefix_suggest, &sh, &e), -1, "%s should fail", src);
    cr_expect_str_eq(e.msg, msg, "source %s", src);
    cr_expect(ip_err_is_input(&e), "%s: not a bad input", src);
    cr_expect_eq(sh.bad_files, bad_files, "%s: bad_files", src);
}

static void expect_shape(const char *src, int check_files, int c, int h, int w, int classes) {
    ip_data_shape sh;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_check_source(src, check_files, NULL, &sh, &e), 0, "%s: %s", src, e.msg);
    cr_expect(sh.c == c && sh.h == h && sh.w == w && sh.classes == classes && sh.bad_files == 0,
              "%s: %dx%dx%d, %d classes", src, sh.c, sh.h, sh.w, sh.classes);
}

Test(data, check_source_text) {
    /* without the file check no file is looked at: a directory kind gets its shape from the kind alone */
    expect_shape("fashion-mnist:/nonexistent", 0, 1, 28, 28, 10);
    expect_shape("mnist:/nonexistent", 0, 1, 28, 28, 10);
    expect_shape("cifar10:/nonexistent", 0, 3, 32, 32, 10);
    expect_shape("cifar100:/nonexistent", 0, 3, 32, 32, 100);
    expect_shape("synthetic:100", 0, 1, 28, 28, 10);
    expect_shape("synthetic:100x3x16x12/7", 1, 3, 16, 12, 7); /* a synthetic set has no files to check */
    expect_shape("synthetic:1x4x4096x1/100000", 0, 4, 4096, 1, 100000);

    expect_check_error("no-colon", 0,
                       "expected kind:path (kinds: fashion-mnist, mnist, cifar10, cifar100, synthetic), got "
                       "\"no-colon\"",
                       0);
    expect_check_error("fashion-mnis:/d", 1,
                       "unknown data kind \"fashion-mnis\" (did you mean \"fashion-mnist\"?) (kinds: fashion-mnist, "
                       "mnist, cifar10, cifar100, synthetic)",
                       0);
    expect_check_error("imagenet:/d", 0,
                       "unknown data kind \"imagenet\" (kinds: fashion-mnist, mnist, cifar10, cifar100, synthetic)", 0);
    /* the kind is quoted up to 31 characters */
    expect_check_error("abcdefghijklmnopqrstuvwxyz0123456789:/d", 0,
                       "unknown data kind \"abcdefghijklmnopqrstuvwxyz01234\" (kinds: fashion-mnist, mnist, cifar10, "
                       "cifar100, synthetic)",
                       0);
    expect_check_error("mnist:", 1, "\"mnist:\" has an empty directory", 0);
    expect_check_error("cifar100:", 0, "\"cifar100:\" has an empty directory", 0);
    /* no suggester: no hint */
    ip_data_shape sh;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_check_source("mnst:/d", 0, NULL, &sh, &e), -1);
    cr_expect(strstr(e.msg, "unknown data kind \"mnst\" (kinds:"), "message: %s", e.msg);

    /* every synthetic text loading refuses is refused here too, N beyond 64 bits included */
    const char *bad[] = {"synthetic:",          "synthetic:0",        "synthetic:abc",    "synthetic:10x1x8",
                         "synthetic:10x5x8x8",  "synthetic:10x1x0x8", "synthetic:10/0",   "synthetic:10junk",
                         "synthetic:10x1x8x8/", "synthetic:-5",       "synthetic:10x1x8x8x2",
                         "synthetic:10x1x4097x8", "synthetic:10/100001", "synthetic:99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char msg[300];
        snprintf(msg, sizeof msg,
                 "bad synthetic source \"%s\" (expected synthetic:N[xCxHxW][/K], N > 0, C 1..4, H and W 1..4096)",
                 bad[i]);
        expect_check_error(bad[i], 0, msg, 0);
        ip_dataset d;
        cr_expect_neq(ip_data_load(&d, bad[i], IP_SPLIT_TEST, 1, &e), 0, "%s loads", bad[i]);
    }
}

Test(data, check_source_idx_files, .init = make_tmpdir, .fini = remove_tmpdir) {
    char src[600], msg[1200], p[512], missing[600];
    snprintf(src, sizeof src, "mnist:%s/nope", tmpdir);
    snprintf(msg, sizeof msg, "data directory \"%s/nope\" does not exist", tmpdir);
    expect_check_error(src, 1, msg, 1);
    expect_shape(src, 0, 1, 28, 28, 10);
    snprintf(src, sizeof src, "mnist:%s/x", path_in(p, sizeof p, tmpdir, "a-file"));
    write_file(p, "", 0, 0);
    snprintf(msg, sizeof msg, "data directory \"%s/x\" does not exist", p);
    expect_check_error(src, 1, msg, 1);

    /* every missing file named, in order, either form (.gz or raw) counting as present */
    snprintf(src, sizeof src, "fashion-mnist:%s", tmpdir);
    snprintf(msg, sizeof msg,
             "missing data files in %s: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
             "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]",
             tmpdir);
    expect_check_error(src, 1, msg, 1);
    write_idx_images(path_in(p, sizeof p, tmpdir, "train-images-idx3-ubyte.gz"), 1, 0x803, 5, 5, 28,
                     28, 0);
    write_idx_labels(path_in(p, sizeof p, tmpdir, "t10k-labels-idx1-ubyte"), 0, 0x801, 5, LABELS5B);
    snprintf(missing, sizeof missing, "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]");
    snprintf(msg, sizeof msg, "missing data files in %s: %s", tmpdir, missing);
    expect_check_error(src, 1, msg, 1);

    /* all there: the probe passes, the shape is the kind's */
    write_idx_labels(path_in(p, sizeof p, tmpdir, "train-labels-idx1-ubyte"), 0, 0x801, 5, LABELS5);
    write_idx_images(path_in(p, sizeof p, tmpdir, "t10k-images-idx3-ubyte.gz"), 1, 0x803, 5, 5, 28, 28,
                     1);
    expect_shape(src, 1, 1, 28, 28, 10);

    /* what the files hold is ip_data_probe's to judge, and its message is the one given */
    unsigned char badlab[5] = {1, 2, 10, 3, 4};
    write_idx_labels(path_in(p, sizeof p, tmpdir, "train-labels-idx1-ubyte"), 0, 0x801, 5, badlab);
    ip_data_shape sh;
    ip_err e = {{0}}, pe = {{0}};
    cr_assert_eq(ip_data_check_source(src, 1, NULL, &sh, &e), -1);
    cr_assert_neq(ip_data_probe(src, &pe), 0);
    cr_expect_str_eq(e.msg, pe.msg);
    cr_expect(strstr(e.msg, "label 10 of sample 2"), "message: %s", e.msg);
    cr_expect(sh.bad_files == 1 && sh.c == 1 && sh.classes == 10);
    expect_shape(src, 0, 1, 28, 28, 10); /* the text alone is fine */
}

Test(data, check_source_cifar_files, .init = make_tmpdir, .fini = remove_tmpdir) {
    char src[600], msg[1600], sub[512], p[600];
    snprintf(src, sizeof src, "cifar10:%s", tmpdir);
    snprintf(msg, sizeof msg,
             "missing data files in %s: data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, "
             "data_batch_5.bin, test_batch.bin (looked in %s and %s/cifar-10-batches-bin)",
             tmpdir, tmpdir, tmpdir);
    expect_check_error(src, 1, msg, 1);
    /* a split's first file decides its directory: batch 1 in the subdirectory, the rest looked for there */
    path_in(sub, sizeof sub, tmpdir, "cifar-10-batches-bin");
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_cifar(path_in(p, sizeof p, sub, "data_batch_1.bin"), 0, 2, 1, L10, 0);
    write_cifar(path_in(p, sizeof p, sub, "test_batch.bin"), 0, 2, 1, L10, 0);
    snprintf(msg, sizeof msg,
             "missing data files in %s: data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin "
             "(looked in %s and %s/cifar-10-batches-bin)",
             tmpdir, tmpdir, tmpdir);
    expect_check_error(src, 1, msg, 1);
    write_cifar10_set(sub);
    expect_shape(src, 1, 3, 32, 32, 10);
    /* a truncated batch: the probe's message */
    write_cifar(path_in(p, sizeof p, sub, "data_batch_4.bin"), 0, 2, 1, L10, 7);
    ip_data_shape sh;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_check_source(src, 1, NULL, &sh, &e), -1);
    cr_expect(strstr(e.msg, "data_batch_4.bin") && strstr(e.msg, "truncated"), "message: %s", e.msg);
    cr_expect_eq(sh.bad_files, 1);

    /* cifar100: train.bin at the top, test.bin in cifar-100-binary/ */
    snprintf(src, sizeof src, "cifar100:%s", tmpdir);
    write_cifar(path_in(p, sizeof p, tmpdir, "train.bin"), 1, 3, 5, L100, 0);
    snprintf(msg, sizeof msg, "missing data files in %s: test.bin (looked in %s and %s/cifar-100-binary)", tmpdir,
             tmpdir, tmpdir);
    expect_check_error(src, 1, msg, 1);
    path_in(sub, sizeof sub, tmpdir, "cifar-100-binary");
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_cifar(path_in(p, sizeof p, sub, "test.bin"), 1, 2, 6, L100 + 1, 0);
    expect_shape(src, 1, 3, 32, 32, 100);
}
