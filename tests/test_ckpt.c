/* Checkpoints: bit-exact round trips, the documented layout, atomic writes,
 * and clear errors for missing, truncated, corrupt and mismatched files. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/model/model.h"
#include "testutil.h"

/* ------------------------------------------------------------------------- */
/* helpers                                                                   */

static char tdir[64];

static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "ckpt")); }

static void remove_dir(void) { tu_rmtree(tdir); }

TestSuite(ckpt, .init = make_dir, .fini = remove_dir);

static const char *tpath(const char *name) { return tu_path(tdir, name); }

static ip_model_cfg small_cfg(const char *arch, ip_scheme s, ip_norm_kind n, int classes) {
    ip_model_cfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "%s", arch);
    c.in_c = 1, c.in_h = 28, c.in_w = 28;
    c.classes = classes;
    c.scheme = s;
    c.norm = n;
    c.in_mean[0] = 0.2860f;
    c.in_std[0] = 0.3530f;
    return c;
}

/* Builds and initialises a model; running statistics get non-trivial values
 * so that a round trip of the buffers means something. */
static void make_model(ip_model *m, const ip_model_cfg *c, uint64_t seed) {
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, c, &e), 0, "build: %s", e.msg);
    /* "hello" needs 40 channels; narrow passport layers get a shorter text */
    const char *sig = "hello";
    for (int i = 0; i < m->npassports; i++)
        if (m->passports[i].cout < 40) sig = "ipr";
    cr_assert_eq(ip_model_init(m, seed, sig, &e), 0, "init: %s", e.msg);
    for (int i = 0; i < m->ntensors; i++) {
        ip_tensor *t = &m->tensors[i];
        if (t->kind == IP_TENSOR_BUFFER) tu_fill(m->bufs + t->offset, t->numel, 0.5f, 1.5f, seed * 100 + (uint64_t)i);
    }
}

static size_t total_bits(const ip_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->npassports; i++) n += (size_t)m->passports[i].cout;
    return n;
}

/* Bit-exact comparison of everything a checkpoint holds. */
static void assert_same_state(const ip_model *a, const ip_model *b) {
    cr_assert_str_eq(a->cfg.arch, b->cfg.arch);
    cr_assert_eq(a->cfg.scheme, b->cfg.scheme);
    cr_assert_eq(a->cfg.norm, b->cfg.norm);
    cr_assert_eq(a->cfg.classes, b->cfg.classes);
    cr_assert_eq(a->nparams, b->nparams);
    cr_assert_eq(a->nbufs, b->nbufs);
    cr_assert_eq(a->ntensors, b->ntensors);
    cr_assert_eq(memcmp(a->params, b->params, a->nparams * sizeof(float)), 0, "params differ");
    cr_assert_eq(memcmp(a->bufs, b->bufs, a->nbufs * sizeof(float)), 0, "bufs differ");
    cr_assert_eq(a->cfg.in_c, b->cfg.in_c);
    cr_assert_eq(memcmp(a->cfg.in_mean, b->cfg.in_mean, (size_t)a->cfg.in_c * sizeof(float)), 0);
    cr_assert_eq(memcmp(a->cfg.in_std, b->cfg.in_std, (size_t)a->cfg.in_c * sizeof(float)), 0);
    cr_assert_eq(a->npassports, b->npassports);
    for (int i = 0; i < a->npassports; i++) {
        const ip_passport *p = &a->passports[i], *q = &b->passports[i];
        cr_assert_str_eq(p->layer, q->layer);
        cr_assert_eq(memcmp(p->bits, q->bits, (size_t)p->cout), 0, "bits of %s differ", p->layer);
        cr_assert_str_eq(p->signature, q->signature);
        cr_assert_eq(memcmp(p->colmean_gamma, q->colmean_gamma, p->k * sizeof(float)), 0,
                     "colmean of %s not recomputed", p->layer);
        cr_assert_eq(memcmp(p->colmean_beta, q->colmean_beta, p->k * sizeof(float)), 0);
    }
}

/* A copy of a model's state to check that a failed load changed nothing. */
typedef struct snapshot {
    float *params, *bufs;
    int8_t *bits;
    char sig[IP_MAX_PASSPORTS][128];
    ip_model_cfg cfg;
} snapshot;

static void snap_take(snapshot *s, const ip_model *m) {
    s->params = malloc(m->nparams * sizeof(float));
    s->bufs = malloc((m->nbufs + 1) * sizeof(float));
    s->bits = malloc(total_bits(m) + 1);
    memcpy(s->params, m->params, m->nparams * sizeof(float));
    memcpy(s->bufs, m->bufs, m->nbufs * sizeof(float));
    memcpy(s->bits, m->bits_store, total_bits(m));
    for (int i = 0; i < m->npassports; i++) memcpy(s->sig[i], m->passports[i].signature, 128);
    s->cfg = m->cfg;
}

static void snap_check(snapshot *s, const ip_model *m) {
    cr_assert_eq(memcmp(s->params, m->params, m->nparams * sizeof(float)), 0, "failed load changed params");
    cr_assert_eq(memcmp(s->bufs, m->bufs, m->nbufs * sizeof(float)), 0, "failed load changed bufs");
    cr_assert_eq(memcmp(s->bits, m->bits_store, total_bits(m)), 0, "failed load changed bits");
    for (int i = 0; i < m->npassports; i++) cr_assert_str_eq(s->sig[i], m->passports[i].signature);
    cr_assert_eq(memcmp(&s->cfg, &m->cfg, sizeof s->cfg), 0, "failed load changed cfg");
    free(s->params), free(s->bufs), free(s->bits);
}

static void save_ok(const ip_model *m, const char *path) {
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_save(m, path, &e), 0, "save: %s", e.msg);
}

/* Loads path into m and asserts it fails with a message containing each of
 * the given fragments, leaving m unchanged. */
static void expect_load_error(ip_model *m, const char *path, const char *frag1, const char *frag2) {
    snapshot s;
    snap_take(&s, m);
    ip_err e = {{0}};
    cr_assert_neq(ip_ckpt_load(m, path, &e), 0, "load of %s should fail", path);
    cr_log_info("%s", e.msg); /* shown with --verbose */
    cr_assert(strstr(e.msg, frag1) != NULL, "message \"%s\" lacks \"%s\"", e.msg, frag1);
    if (frag2) cr_assert(strstr(e.msg, frag2) != NULL, "message \"%s\" lacks \"%s\"", e.msg, frag2);
    snap_check(&s, m);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned char *read_all(const char *path, long *n) {
    *n = file_size(path);
    cr_assert_gt(*n, 0);
    unsigned char *buf = malloc((size_t)*n);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fread(buf, 1, (size_t)*n, f), (size_t)*n);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    fclose(f);
}

/* Number of entries in tdir other than . and .. */
static int dir_entries(char names[][256], int cap) {
    DIR *d = opendir(tdir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            if (n < cap) snprintf(names[n], 256, "%s", de->d_name);
            n++;
        }
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------- */
/* round trips                                                               */

static void roundtrip(ip_scheme s, ip_norm_kind n, const char *arch) {
    ip_model a, b;
    ip_model_cfg c = small_cfg(arch, s, n, 10);
    make_model(&a, &c, 7);
    const char *path = tpath("m.h5");
    save_ok(&a, path);

    ip_model_cfg rc;
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_read_cfg(path, &rc, &e), 0, "read_cfg: %s", e.msg);
    cr_assert_str_eq(rc.arch, arch);
    cr_assert_eq(rc.scheme, s);
    cr_assert_eq(rc.norm, n);
    cr_assert_eq(rc.in_c, 1);
    cr_assert_eq(rc.in_h, 28);
    cr_assert_eq(rc.in_w, 28);
    cr_assert_eq(rc.classes, 10);
    cr_assert_eq(rc.in_mean[0], c.in_mean[0]);
    cr_assert_eq(rc.in_std[0], c.in_std[0]);

    cr_assert_eq(ip_model_build(&b, &rc, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&b, 99, "x", &e), 0, "%s", e.msg); /* different state before loading */
    cr_assert_neq(memcmp(a.params, b.params, a.nparams * sizeof(float)), 0);
    cr_assert_eq(ip_ckpt_load(&b, path, &e), 0, "load: %s", e.msg);
    assert_same_state(&a, &b);
    if (s != IP_SCHEME_BASELINE) cr_assert_str_eq(b.passports[0].signature, a.passports[0].signature);
    if (s != IP_SCHEME_BASELINE) cr_assert_gt(strlen(b.passports[0].signature), 0);

    /* saving the loaded model gives the same content again */
    save_ok(&b, tpath("m2.h5"));
    ip_model c2;
    cr_assert_eq(ip_ckpt_open_model(&c2, tpath("m2.h5"), &e), 0, "open_model: %s", e.msg);
    assert_same_state(&a, &c2);
    ip_model_free(&a), ip_model_free(&b), ip_model_free(&c2);
}

Test(ckpt, roundtrip_v1_bn) { roundtrip(IP_SCHEME_V1, IP_NORM_BN, "small-p"); }
Test(ckpt, roundtrip_baseline_bn) { roundtrip(IP_SCHEME_BASELINE, IP_NORM_BN, "small-p"); }
Test(ckpt, roundtrip_v2_gn) { roundtrip(IP_SCHEME_V2, IP_NORM_GN, "small-p"); }
Test(ckpt, roundtrip_v3_bn_narrow) { roundtrip(IP_SCHEME_V3, IP_NORM_BN, "small-p-narrow"); }

Test(ckpt, roundtrip_custom_passport_layers) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    snprintf(c.passport_layers, sizeof c.passport_layers, "block0,block2");
    make_model(&a, &c, 3);
    save_ok(&a, tpath("m.h5"));
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(&b, tpath("m.h5"), &e), 0, "%s", e.msg);
    cr_assert_str_eq(b.cfg.passport_layers, "block0,block2");
    assert_same_state(&a, &b);
    ip_model_free(&a), ip_model_free(&b);
}

/* The loaded model computes exactly what the saved one did. */
Test(ckpt, loaded_model_same_logits) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 11);
    save_ok(&a, tpath("m.h5"));
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(&b, tpath("m.h5"), &e), 0, "%s", e.msg);
    const int n = 3;
    float *x = tu_alloc((size_t)n * 28 * 28);
    tu_fill(x, (size_t)n * 28 * 28, -1.f, 1.f, 5);
    cr_assert_eq(ip_model_plan(&a, n, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(&b, n, &e), 0, "%s", e.msg);
    const float *la = ip_model_forward(&a, x, n, 0);
    float ya[30];
    memcpy(ya, la, sizeof ya);
    const float *lb = ip_model_forward(&b, x, n, 0);
    cr_assert_eq(memcmp(ya, lb, sizeof ya), 0, "logits differ after a round trip");
    cr_assert_eq(ip_model_detect(&a, -1), ip_model_detect(&b, -1));
    free(x);
    ip_model_free(&a), ip_model_free(&b);
}

/* ------------------------------------------------------------------------- */
/* layout                                                                    */

static void check_dims(hid_t f, const char *dpath, hid_t want_type, int ndim, const hsize_t *want) {
    hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
    cr_assert_geq(d, 0, "missing %s", dpath);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    cr_assert_gt(H5Tequal(t, want_type), 0, "%s has the wrong type", dpath);
    hsize_t dims[8];
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), ndim, "%s rank", dpath);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int i = 0; i < ndim; i++) cr_assert_eq(dims[i], want[i], "%s dim %d", dpath, i);
    H5Sclose(sp), H5Tclose(t), H5Dclose(d);
}

static void check_str_attr(hid_t loc, const char *name, const char *want) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "missing attribute %s", name);
    hid_t t = H5Aget_type(a);
    cr_assert_eq(H5Tget_class(t), H5T_STRING);
    cr_assert_gt(H5Tis_variable_str(t), 0);
    char *s = NULL;
    cr_assert_geq(H5Aread(a, t, &s), 0);
    cr_assert_str_eq(s, want, "attribute %s", name);
    H5free_memory(s);
    H5Tclose(t), H5Aclose(a);
}

static int int_attr(hid_t loc, const char *name) {
    int v = -12345;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "missing attribute %s", name);
    cr_assert_geq(H5Aread(a, H5T_NATIVE_INT, &v), 0);
    H5Aclose(a);
    return v;
}

Test(ckpt, layout_matches_docs) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    save_ok(&a, tpath("m.h5"));
    hid_t f = H5Fopen(tpath("m.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_eq(int_attr(f, "format_version"), IP_CKPT_FORMAT_VERSION);
    cr_assert_eq(int_attr(f, "classes"), 10);
    check_str_attr(f, "arch", "small-p");
    check_str_attr(f, "scheme", "v1");
    check_str_attr(f, "norm", "bn");
    check_str_attr(f, "passport_layers", "block1,block2");
    int shape[3];
    hid_t at = H5Aopen(f, "input_shape", H5P_DEFAULT);
    H5Aread(at, H5T_NATIVE_INT, shape);
    H5Aclose(at);
    cr_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    float mean = 0, sd = 0;
    at = H5Aopen(f, "input_mean", H5P_DEFAULT);
    H5Aread(at, H5T_NATIVE_FLOAT, &mean);
    H5Aclose(at);
    at = H5Aopen(f, "input_std", H5P_DEFAULT);
    H5Aread(at, H5T_NATIVE_FLOAT, &sd);
    H5Aclose(at);
    cr_assert(mean == c.in_mean[0] && sd == c.in_std[0]);
    cr_assert_gt(H5Aexists(f, "software"), 0);

    check_dims(f, "/params/block0.conv/weight", H5T_IEEE_F32LE, 4, (hsize_t[]){32, 1, 3, 3});
    check_dims(f, "/params/block1.conv/weight", H5T_IEEE_F32LE, 4, (hsize_t[]){64, 32, 3, 3});
    check_dims(f, "/params/block1.norm/weight", H5T_IEEE_F32LE, 1, (hsize_t[]){64});
    check_dims(f, "/params/fc/weight", H5T_IEEE_F32LE, 2, (hsize_t[]){10, 128 * 3 * 3});
    check_dims(f, "/params/fc/bias", H5T_IEEE_F32LE, 1, (hsize_t[]){10});
    check_dims(f, "/buffers/block2.norm/running_var", H5T_IEEE_F32LE, 1, (hsize_t[]){128});
    check_dims(f, "/passport/block1/gamma_key", H5T_IEEE_F32LE, 4, (hsize_t[]){1, 32, 14, 14});
    check_dims(f, "/passport/block2/beta_key", H5T_IEEE_F32LE, 4, (hsize_t[]){1, 64, 7, 7});
    check_dims(f, "/passport/block1/sig_bits", H5T_STD_I8LE, 1, (hsize_t[]){64});
    hid_t g = H5Gopen2(f, "/passport/block2", H5P_DEFAULT);
    check_str_attr(g, "signature", "hello");
    H5Gclose(g);

    /* the values are the model's */
    int ti = ip_model_find_tensor(&a, "block1.conv.weight");
    cr_assert_geq(ti, 0);
    float *w = malloc(a.tensors[ti].numel * sizeof(float));
    hid_t d = H5Dopen2(f, "/params/block1.conv/weight", H5P_DEFAULT);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w), 0);
    cr_assert_eq(memcmp(w, a.params + a.tensors[ti].offset, a.tensors[ti].numel * sizeof(float)), 0);
    H5Dclose(d);
    free(w);
    int8_t bits[64];
    d = H5Dopen2(f, "/passport/block1/sig_bits", H5P_DEFAULT);
    cr_assert_geq(H5Dread(d, H5T_NATIVE_SCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits), 0);
    cr_assert_eq(memcmp(bits, a.passports[0].bits, 64), 0);
    H5Dclose(d);
    H5Fclose(f);
    ip_model_free(&a);
}

Test(ckpt, baseline_has_empty_passport_group) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_BASELINE, IP_NORM_GN, 10);
    make_model(&a, &c, 5);
    save_ok(&a, tpath("m.h5"));
    hid_t f = H5Fopen(tpath("m.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    check_str_attr(f, "passport_layers", "none");
    check_str_attr(f, "norm", "gn");
    H5G_info_t info;
    cr_assert_geq(H5Gget_info_by_name(f, "/passport", &info, H5P_DEFAULT), 0);
    cr_assert_eq(info.nlinks, 0);
    cr_assert_geq(H5Gget_info_by_name(f, "/buffers", &info, H5P_DEFAULT), 0);
    cr_assert_eq(info.nlinks, 0, "group norm has no running statistics");
    H5Fclose(f);
    ip_model_free(&a);
}

Test(ckpt, h5dump_reads_it) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    save_ok(&a, tpath("m.h5"));
    if (system("command -v h5dump >/dev/null 2>&1") != 0) cr_skip_test("h5dump not installed");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s' 2>&1", tpath("m.h5"));
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[512];
    int saw_version = 0, saw_conv = 0, saw_sig = 0;
    while (fgets(line, sizeof line, p)) {
        if (strstr(line, "ATTRIBUTE \"format_version\"")) saw_version = 1;
        if (strstr(line, "GROUP \"block1.conv\"")) saw_conv = 1;
        if (strstr(line, "DATASET \"sig_bits\"")) saw_sig = 1;
    }
    cr_assert_eq(pclose(p), 0, "h5dump failed");
    cr_assert(saw_version && saw_conv && saw_sig, "h5dump output incomplete");
    /* and the data itself (checksummed chunks) */
    snprintf(cmd, sizeof cmd, "h5dump -d /params/fc/bias '%s' >/dev/null 2>&1", tpath("m.h5"));
    cr_assert_eq(system(cmd), 0);
    ip_model_free(&a);
}

Test(ckpt, h5py_reads_strings_as_str) {
    if (system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) cr_skip_test("python3-h5py not installed");
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    save_ok(&a, tpath("m.h5"));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1],'r'); a=f.attrs; "
             "assert isinstance(a['arch'],str) and a['arch']=='small-p'; "
             "assert a['scheme']=='v1' and a['norm']=='bn' and int(a['format_version'])==1; "
             "assert list(a['input_shape'])==[1,28,28] and int(a['classes'])==10; "
             "assert f['passport/block1'].attrs['signature']=='hello'; "
             "assert f['params/block1.conv/weight'].shape==(64,32,3,3); "
             "assert f['passport/block1/sig_bits'].dtype=='int8'\" '%s'",
             tpath("m.h5"));
    cr_assert_eq(system(cmd), 0, "h5py check failed");
    ip_model_free(&a);
}

/* ------------------------------------------------------------------------- */
/* atomic write                                                              */

Test(ckpt, no_temp_file_left) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    save_ok(&a, tpath("m.h5"));
    save_ok(&a, tpath("m.h5")); /* overwrite */
    char names[8][256];
    cr_assert_eq(dir_entries(names, 8), 1);
    cr_assert_str_eq(names[0], "m.h5");
    ip_model_free(&a);
}

Test(ckpt, failed_save_cleans_up_and_keeps_old_file) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    ip_err e = {{0}};
    /* the target is a directory: the rename fails after the temp file was written */
    cr_assert_eq(mkdir(tpath("sub"), 0755), 0);
    cr_assert_neq(ip_ckpt_save(&a, tpath("sub"), &e), 0);
    cr_log_info("%s", e.msg);
    cr_assert(strstr(e.msg, "sub") != NULL, "%s", e.msg);
    char names[8][256];
    cr_assert_eq(dir_entries(names, 8), 1, "temp file left behind");
    /* a missing directory */
    cr_assert_neq(ip_ckpt_save(&a, tpath("nodir/m.h5"), &e), 0);
    cr_log_info("%s", e.msg);
    cr_assert(strstr(e.msg, "nodir") != NULL, "%s", e.msg);
    cr_assert_eq(dir_entries(names, 8), 1);
    ip_model_free(&a);
}

/* HDF5's automatic error printing is off inside the functions and restored after. */
Test(ckpt, hdf5_error_handler_restored) {
    H5E_auto2_t f0;
    void *d0;
    H5Eget_auto2(H5E_DEFAULT, &f0, &d0);
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    write_all(tpath("junk.h5"), "\x89HDF\r\n\x1a\n garbage garbage", 24);
    ip_err e = {{0}};
    cr_assert_neq(ip_ckpt_load(&a, tpath("junk.h5"), &e), 0);
    H5E_auto2_t f1;
    void *d1;
    H5Eget_auto2(H5E_DEFAULT, &f1, &d1);
    cr_assert(f0 == f1 && d0 == d1);
    ip_model_free(&a);
}

/* ------------------------------------------------------------------------- */
/* bad files                                                                 */

Test(ckpt, missing_file) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    expect_load_error(&a, tpath("nope.h5"), "cannot open", "No such file");
    ip_model_cfg rc;
    ip_err e = {{0}};
    cr_assert_neq(ip_ckpt_read_cfg(tpath("nope.h5"), &rc, &e), 0);
    cr_assert(strstr(e.msg, "cannot open") && strstr(e.msg, "nope.h5"), "%s", e.msg);
    ip_model b;
    cr_assert_neq(ip_ckpt_open_model(&b, tpath("nope.h5"), &e), 0);
    ip_model_free(&a);
}

Test(ckpt, truncated_file) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    save_ok(&a, tpath("m.h5"));
    long n;
    unsigned char *buf = read_all(tpath("m.h5"), &n);
    write_all(tpath("half.h5"), buf, (size_t)n / 2);
    write_all(tpath("tail.h5"), buf, (size_t)n - 1);
    write_all(tpath("empty.h5"), buf, 0);
    free(buf);
    ip_model b;
    c.scheme = IP_SCHEME_V1;
    make_model(&b, &c, 6);
    expect_load_error(&b, tpath("half.h5"), "not a valid HDF5 file", "half.h5");
    expect_load_error(&b, tpath("tail.h5"), "not a valid HDF5 file", NULL);
    expect_load_error(&b, tpath("empty.h5"), "not a valid HDF5 file", NULL);
    ip_model_cfg rc;
    ip_err e = {{0}};
    cr_assert_neq(ip_ckpt_read_cfg(tpath("half.h5"), &rc, &e), 0);
    cr_assert(strstr(e.msg, "not a valid HDF5 file"), "%s", e.msg);
    ip_model d;
    cr_assert_neq(ip_ckpt_open_model(&d, tpath("half.h5"), &e), 0);
    ip_model_free(&a), ip_model_free(&b);
}

Test(ckpt, garbage_file) {
    ip_model a;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)(i * 2654435761u >> 13);
    write_all(tpath("junk.h5"), junk, sizeof junk);
    expect_load_error(&a, tpath("junk.h5"), "not a valid HDF5 file", NULL);
    ip_model_free(&a);
}

/* Flipping bytes inside a tensor's stored data is caught by the checksum. */
Test(ckpt, corrupt_data_detected) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    make_model(&b, &c, 6);
    save_ok(&a, tpath("m.h5"));
    long n;
    unsigned char *buf = read_all(tpath("m.h5"), &n);
    int ti = ip_model_find_tensor(&a, "block1.conv.weight");
    const unsigned char *needle = (const unsigned char *)(a.params + a.tensors[ti].offset + 100);
    unsigned char *hit = memmem(buf, (size_t)n, needle, 64);
    cr_assert_not_null(hit, "tensor data not found in the file");
    hit[10] ^= 0x5a;
    write_all(tpath("bad.h5"), buf, (size_t)n);
    free(buf);
    expect_load_error(&b, tpath("bad.h5"), "/params/block1.conv/weight", "corrupt");
    ip_model_free(&a), ip_model_free(&b);
}

/* ------------------------------------------------------------------------- */
/* mismatches                                                                */

static void mismatch_case(ip_model_cfg saved, ip_model_cfg target, const char *frag1, const char *frag2) {
    ip_model a, b;
    make_model(&a, &saved, 5);
    make_model(&b, &target, 6);
    save_ok(&a, tpath("m.h5"));
    expect_load_error(&b, tpath("m.h5"), frag1, frag2);
    ip_model_free(&a), ip_model_free(&b);
}

Test(ckpt, mismatch_norm) {
    mismatch_case(small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10),
                  small_cfg("small-p", IP_SCHEME_V1, IP_NORM_GN, 10), "norm mismatch", "checkpoint is bn, model is gn");
}

Test(ckpt, mismatch_arch) {
    mismatch_case(small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10),
                  small_cfg("small-p-narrow", IP_SCHEME_V1, IP_NORM_BN, 10), "arch mismatch", "small-p-narrow");
}

Test(ckpt, mismatch_classes) {
    mismatch_case(small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10),
                  small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 5), "classes mismatch",
                  "checkpoint has 10, model has 5");
}

Test(ckpt, mismatch_scheme) {
    mismatch_case(small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10),
                  small_cfg("small-p", IP_SCHEME_BASELINE, IP_NORM_BN, 10), "scheme mismatch", "v1");
}

Test(ckpt, mismatch_passport_layers) {
    ip_model_cfg s = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    ip_model_cfg t = s;
    snprintf(s.passport_layers, sizeof s.passport_layers, "block1");
    mismatch_case(s, t, "passport layers", "block1,block2");
    mismatch_case(t, s, "passport layers", "block1");
}

/* Rewrites a root attribute of an existing file (to fake other writers). */
static void set_root_attr_str(const char *path, const char *name, const char *v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    H5Adelete(f, name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1); /* fixed length this time: must be accepted too */
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Awrite(a, t, v), 0);
    H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Fclose(f);
}

Test(ckpt, shape_mismatch_message) {
    ip_model a, b;
    ip_model_cfg cn = small_cfg("small-p-narrow", IP_SCHEME_V1, IP_NORM_BN, 10);
    ip_model_cfg cw = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &cn, 5);
    make_model(&b, &cw, 6);
    save_ok(&a, tpath("m.h5"));
    set_root_attr_str(tpath("m.h5"), "arch", "small-p");
    ip_model_cfg rc;
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_read_cfg(tpath("m.h5"), &rc, &e), 0, "%s", e.msg);
    cr_assert_str_eq(rc.arch, "small-p");
    expect_load_error(&b, tpath("m.h5"), "/params/block0.conv/weight",
                      "shape (16,1,3,3) in file, model expects (32,1,3,3)");
    ip_model_free(&a), ip_model_free(&b);
}

Test(ckpt, missing_dataset) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    make_model(&b, &c, 6);
    save_ok(&a, tpath("m.h5"));
    hid_t f = H5Fopen(tpath("m.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "/params/fc/weight", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_load_error(&b, tpath("m.h5"), "missing /params/fc/weight", NULL);
    ip_model_free(&a), ip_model_free(&b);
}

Test(ckpt, missing_buffer_group) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    make_model(&b, &c, 6);
    save_ok(&a, tpath("m.h5"));
    hid_t f = H5Fopen(tpath("m.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(H5Ldelete(f, "/buffers/block2.norm", H5P_DEFAULT), 0);
    H5Fclose(f);
    expect_load_error(&b, tpath("m.h5"), "missing /buffers/block2.norm/running_mean", NULL);
    ip_model_free(&a), ip_model_free(&b);
}

Test(ckpt, wrong_format_version) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    make_model(&b, &c, 6);
    save_ok(&a, tpath("m.h5"));
    hid_t f = H5Fopen(tpath("m.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t at = H5Aopen(f, "format_version", H5P_DEFAULT);
    int v = IP_CKPT_FORMAT_VERSION + 1;
    cr_assert_geq(H5Awrite(at, H5T_NATIVE_INT, &v), 0);
    H5Aclose(at), H5Fclose(f);
    expect_load_error(&b, tpath("m.h5"), "format_version 2 is not supported", NULL);
    ip_model_cfg rc;
    ip_err e = {{0}};
    cr_assert_neq(ip_ckpt_read_cfg(tpath("m.h5"), &rc, &e), 0);
    cr_assert(strstr(e.msg, "format_version"), "%s", e.msg);
    ip_model_free(&a), ip_model_free(&b);
}

Test(ckpt, bad_sig_bits) {
    ip_model a, b;
    ip_model_cfg c = small_cfg("small-p", IP_SCHEME_V1, IP_NORM_BN, 10);
    make_model(&a, &c, 5);
    make_model(&b, &c, 6);
    save_ok(&a, tpath("m.h5"));
    hid_t f = H5Fopen(tpath("m.h5"), H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/passport/block2/sig_bits", H5P_DEFAULT);
    int8_t bits[128];
    memset(bits, 0, sizeof bits);
    cr_assert_geq(H5Dwrite(d, H5T_NATIVE_SCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, bits), 0);
    H5Dclose(d), H5Fclose(f);
    expect_load_error(&b, tpath("m.h5"), "/passport/block2/sig_bits[0] = 0", NULL);
    ip_model_free(&a), ip_model_free(&b);
}

/* ------------------------------------------------------------------------- */
/* independent PyTorch implementation (tests/torch_crosscheck.py)            */

/* Saves a model, writes its logits on random inputs and lets the PyTorch
 * re-implementation compare them; skipped without python3-torch/h5py. */
static void torch_logits_case(const char *arch, ip_scheme s, ip_norm_kind nk, int in_c, int hw, ip_branch br) {
    char script[256];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (size_t)(slash ? slash + 1 - script : 0),
             "torch_crosscheck.py");
    if (access(script, R_OK) != 0) cr_skip_test("%s not found (run from the source root)", script);
    if (system("/usr/bin/python3 -c 'import torch, h5py' >/dev/null 2>&1") != 0)
        cr_skip_test("python3-torch / python3-h5py not installed");
    ip_model m;
    ip_model_cfg c = small_cfg(arch, s, nk, 10);
    c.in_c = in_c, c.in_h = c.in_w = hw;
    for (int i = 0; i < in_c; i++) c.in_mean[i] = 0.5f, c.in_std[i] = 0.25f;
    make_model(&m, &c, 21);
    /* non-trivial learned affine, so the public branch differs from defaults */
    for (int i = 0; i < m.ntensors; i++) {
        ip_tensor *t = &m.tensors[i];
        if (t->kind == IP_TENSOR_PARAM && t->ndim == 1 && strstr(t->name, ".norm."))
            tu_fill(m.params + t->offset, t->numel, -1.f, 1.f, 500 + (uint64_t)i);
    }
    m.branch = br;
    save_ok(&m, tpath("m.h5"));
    const int n = 4;
    size_t sz = (size_t)n * in_c * hw * hw;
    float *x = tu_alloc(sz);
    tu_fill(x, sz, -2.f, 2.f, 9);
    ip_err e = {{0}};
    cr_assert_eq(ip_model_plan(&m, n, &e), 0, "%s", e.msg);
    const float *y = ip_model_forward(&m, x, n, 0);
    write_all(tpath("x.f32"), x, sz * sizeof(float));
    write_all(tpath("y.f32"), y, (size_t)n * 10 * sizeof(float));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 '%s' --threads 1 --ckpt '%s' --inputs '%s' --logits '%s' --branch %s --tol 1e-4 "
             ">'%s' 2>&1",
             script, tpath("m.h5"), tpath("x.f32"), tpath("y.f32"), br == IP_BRANCH_PUBLIC ? "public" : "private",
             tpath("out.txt"));
    int rc = system(cmd);
    long len;
    unsigned char *out = read_all(tpath("out.txt"), &len);
    cr_log_info("%.*s", (int)len, (const char *)out);
    cr_assert_eq(rc, 0, "torch_crosscheck.py disagrees:\n%.*s", (int)len, (const char *)out);
    free(out);
    free(x);
    ip_model_free(&m);
}

Test(ckpt, torch_small_v1_bn) {
    torch_logits_case("small-p", IP_SCHEME_V1, IP_NORM_BN, 1, 28, IP_BRANCH_PRIVATE);
}
Test(ckpt, torch_small_v2_gn_public) {
    torch_logits_case("small-p", IP_SCHEME_V2, IP_NORM_GN, 1, 28, IP_BRANCH_PUBLIC);
}
Test(ckpt, torch_resnet18_v1_bn) {
    torch_logits_case("resnet18-p", IP_SCHEME_V1, IP_NORM_BN, 3, 32, IP_BRANCH_PRIVATE);
}
