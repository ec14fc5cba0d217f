/* The fingerprint file (docs/fingerprint.md): root attributes for the
 * options and the owner, datasets /x, /label, /source, /iterations. Written
 * atomically like a checkpoint (ip_h5_write_atomic); read fully validated
 * into scratch before the caller's struct is filled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "../util/checked.h"
#include "fingerprint.h"
#include "../io/h5util.h"

#define FP_FORMAT "ipsweep-fingerprint"

static int write_attrs(hid_t f, const ip_fingerprint *fp) {
    const ip_fp_cfg *c = &fp->cfg;
    int shape[3] = {fp->c, fp->h, fp->w};
    long long counts[3] = {(long long)fp->n, (long long)fp->requested, (long long)fp->unconverged};
    float opts[2] = {c->margin, c->lr};
    int iopts[2] = {c->max_iter, c->batch};
    unsigned long long seed = (unsigned long long)c->seed;
    if (ip_h5_attr_str(f, "format", FP_FORMAT) < 0 || ip_h5_attr_i32(f, "format_version", IP_FP_FORMAT_VERSION) < 0 ||
        ip_h5_attr_str(f, "owner_arch", fp->owner_arch) < 0 || ip_h5_attr_str(f, "owner_scheme", fp->owner_scheme) < 0 ||
        ip_h5_attr_write(f, "input_shape", H5T_STD_I32LE, H5T_NATIVE_INT, 3, shape) < 0 ||
        ip_h5_attr_i32(f, "classes", fp->classes) < 0 ||
        ip_h5_attr_write(f, "input_mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fp->c, fp->in_mean) < 0 ||
        ip_h5_attr_write(f, "input_std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fp->c, fp->in_std) < 0 ||
        ip_h5_attr_write(f, "clip_lo", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fp->c, fp->lo) < 0 ||
        ip_h5_attr_write(f, "clip_hi", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, fp->c, fp->hi) < 0 ||
        ip_h5_attr_write(f, "points", H5T_STD_I64LE, H5T_NATIVE_LLONG, -1, &counts[0]) < 0 ||
        ip_h5_attr_write(f, "points_requested", H5T_STD_I64LE, H5T_NATIVE_LLONG, -1, &counts[1]) < 0 ||
        ip_h5_attr_write(f, "unconverged", H5T_STD_I64LE, H5T_NATIVE_LLONG, -1, &counts[2]) < 0 ||
        ip_h5_attr_write(f, "margin", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, -1, &opts[0]) < 0 ||
        ip_h5_attr_write(f, "lr", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, -1, &opts[1]) < 0 ||
        ip_h5_attr_i32(f, "max_iter", iopts[0]) < 0 || ip_h5_attr_i32(f, "batch", iopts[1]) < 0 ||
        ip_h5_attr_write(f, "seed", H5T_STD_U64LE, H5T_NATIVE_ULLONG, -1, &seed) < 0 ||
        ip_h5_attr_str(f, "init", ip_fp_init_name(c->init)) < 0 ||
        ip_h5_attr_str(f, "target", ip_fp_target_name(c->target)) < 0 ||
        ip_h5_attr_str(f, "branch", ip_fp_branch_name(c->branch)) < 0 ||
        ip_h5_attr_str(f, "method", ip_fp_method_name(c->method)) < 0)
        return -1;
    if (c->method == IP_FP_METHOD_CAE) {
        const ip_cae_cfg *k = &c->cae;
        float v[6] = {k->eps, k->alpha, k->beta, k->gamma, k->dropout, k->tau};
        const char *n[6] = {"cae_eps", "cae_alpha", "cae_beta", "cae_gamma", "cae_dropout", "cae_tau"};
        for (int i = 0; i < 6; i++)
            if (ip_h5_attr_write(f, n[i], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, -1, &v[i]) < 0) return -1;
        if (ip_h5_attr_i32(f, "cae_iterations", k->iterations) < 0) return -1;
    }
#ifdef IPSWEEP_VERSION
    return ip_h5_attr_str(f, "software", "ipsweep " IPSWEEP_VERSION);
#else
    return ip_h5_attr_str(f, "software", "ipsweep");
#endif
}

static int write_contents(hid_t f, const void *user, ip_err *e) {
    const ip_fingerprint *fp = user;
    ip_h5_detail_buf db;
    if (write_attrs(f, fp) < 0) return ip_fail(e, "writing root attributes failed%s", ip_h5_detail(&db));
    hsize_t xd[4] = {(hsize_t)fp->n, (hsize_t)fp->c, (hsize_t)fp->h, (hsize_t)fp->w}, nd[1] = {(hsize_t)fp->n};
    if (ip_h5_write_dataset(f, "x", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, xd, fp->x) < 0)
        return ip_fail(e, "writing /x failed%s", ip_h5_detail(&db));
    const char *names[3] = {"label", "source", "iterations"};
    const int32_t *cols[3] = {fp->label, fp->source, fp->iterations};
    for (int i = 0; i < 3; i++)
        if (ip_h5_write_dataset(f, names[i], H5T_STD_I32LE, H5T_NATIVE_INT32, 1, nd, cols[i]) < 0)
            return ip_fail(e, "writing /%s failed%s", names[i], ip_h5_detail(&db));
    return 0;
}

int ip_fingerprint_save(const ip_fingerprint *fp, const char *path, ip_err *e) {
    if (!path || !path[0]) return ip_fail(e, "saving a fingerprint: no file name given");
    if (fp->c < 1 || fp->c > 4) return ip_fail(e, "saving %s: the fingerprint has no input shape", path);
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = ip_h5_write_atomic(path, H5P_DEFAULT, "saving", write_contents, fp, e);
    ip_h5_quiet_off(&q);
    return rc;
}

static int read_i64(hid_t f, const char *name, size_t *out, ip_err *e) {
    long long v;
    if (ip_h5_attr_read_num(f, "/", name, H5T_NATIVE_LLONG, H5T_INTEGER, 0, &v, e) < 0) return -1;
    if (v < 0) return ip_fail(e, "attribute /%s is negative", name);
    *out = (size_t)v;
    return 0;
}

static int read_contents(hid_t f, ip_fingerprint *fp, ip_err *e) {
    char s[64];
    int version, shape[3];
    unsigned long long seed;
    ip_fp_cfg *c = &fp->cfg;
    if (ip_h5_attr_read_str(f, "/", "format", s, sizeof s, e) < 0) return -1;
    if (strcmp(s, FP_FORMAT) != 0) return ip_fail(e, "not a fingerprint file (format \"%s\")", s);
    if (ip_h5_attr_read_num(f, "/", "format_version", H5T_NATIVE_INT, H5T_INTEGER, 0, &version, e) < 0) return -1;
    if (version != IP_FP_FORMAT_VERSION)
        return ip_fail(e, "fingerprint format_version %d is not supported (this ipsweep reads %d)", version,
                       IP_FP_FORMAT_VERSION);
    if (ip_h5_attr_read_str(f, "/", "owner_arch", fp->owner_arch, sizeof fp->owner_arch, e) < 0 ||
        ip_h5_attr_read_str(f, "/", "owner_scheme", fp->owner_scheme, sizeof fp->owner_scheme, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "input_shape", H5T_NATIVE_INT, H5T_INTEGER, 3, shape, e) < 0)
        return -1;
    fp->c = shape[0], fp->h = shape[1], fp->w = shape[2];
    /* the limits every model input obeys (data.h): c*h*w then fits in int */
    if (fp->c < 1 || fp->c > IP_DATA_MAX_CHANNELS || fp->h < 1 || fp->w < 1 || fp->h > IP_DATA_MAX_SIDE ||
        fp->w > IP_DATA_MAX_SIDE)
        return ip_fail(e, "bad attribute /input_shape (%d,%d,%d): channels must be 1..%d, height and width 1..%d",
                       shape[0], shape[1], shape[2], IP_DATA_MAX_CHANNELS, IP_DATA_MAX_SIDE);
    for (int ch = 0; ch < 4; ch++) fp->in_mean[ch] = 0, fp->in_std[ch] = 1, fp->lo[ch] = fp->hi[ch] = 0;
    if (ip_h5_attr_read_num(f, "/", "classes", H5T_NATIVE_INT, H5T_INTEGER, 0, &fp->classes, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "input_mean", H5T_NATIVE_FLOAT, H5T_FLOAT, fp->c, fp->in_mean, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "input_std", H5T_NATIVE_FLOAT, H5T_FLOAT, fp->c, fp->in_std, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "clip_lo", H5T_NATIVE_FLOAT, H5T_FLOAT, fp->c, fp->lo, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "clip_hi", H5T_NATIVE_FLOAT, H5T_FLOAT, fp->c, fp->hi, e) < 0 ||
        read_i64(f, "points", &fp->n, e) < 0 || read_i64(f, "points_requested", &fp->requested, e) < 0 ||
        read_i64(f, "unconverged", &fp->unconverged, e) < 0 || read_i64(f, "points_requested", &c->points, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "margin", H5T_NATIVE_FLOAT, H5T_FLOAT, 0, &c->margin, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "lr", H5T_NATIVE_FLOAT, H5T_FLOAT, 0, &c->lr, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "max_iter", H5T_NATIVE_INT, H5T_INTEGER, 0, &c->max_iter, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "batch", H5T_NATIVE_INT, H5T_INTEGER, 0, &c->batch, e) < 0 ||
        ip_h5_attr_read_num(f, "/", "seed", H5T_NATIVE_ULLONG, H5T_INTEGER, 0, &seed, e) < 0)
        return -1;
    c->seed = seed;
    if (fp->classes < 2 || fp->classes > IP_DATA_MAX_CLASSES)
        return ip_fail(e, "bad attribute /classes %d (2..%d)", fp->classes, IP_DATA_MAX_CLASSES);
    if (fp->n > fp->requested || fp->n + fp->unconverged != fp->requested)
        return ip_fail(e, "inconsistent counts: points %zu + unconverged %zu != points_requested %zu", fp->n,
                       fp->unconverged, fp->requested);
    if (ip_h5_attr_read_str(f, "/", "init", s, sizeof s, e) < 0) return -1;
    if (ip_fp_init_parse(s, &c->init) != 0) return ip_fail(e, "unknown init \"%s\"", s);
    if (ip_h5_attr_read_str(f, "/", "target", s, sizeof s, e) < 0) return -1;
    if (ip_fp_target_parse(s, &c->target) != 0) return ip_fail(e, "unknown target \"%s\"", s);
    if (ip_h5_attr_read_str(f, "/", "branch", s, sizeof s, e) < 0) return -1;
    if (ip_fp_branch_parse(s, &c->branch) != 0) return ip_fail(e, "unknown branch \"%s\"", s);
    /* files before methods are IPGuard's; a CAE file's options are read back for people, not used */
    c->method = IP_FP_METHOD_IPGUARD;
    if (H5Aexists(f, "method") > 0) {
        if (ip_h5_attr_read_str(f, "/", "method", s, sizeof s, e) < 0) return -1;
        if (ip_fp_method_parse(s, &c->method) != 0) return ip_fail(e, "unknown method \"%s\"", s);
    }
    if (c->method == IP_FP_METHOD_CAE &&
        (ip_h5_attr_read_num(f, "/", "cae_eps", H5T_NATIVE_FLOAT, H5T_FLOAT, 0, &c->cae.eps, e) < 0 ||
         ip_h5_attr_read_num(f, "/", "cae_tau", H5T_NATIVE_FLOAT, H5T_FLOAT, 0, &c->cae.tau, e) < 0 ||
         ip_h5_attr_read_num(f, "/", "cae_iterations", H5T_NATIVE_INT, H5T_INTEGER, 0, &c->cae.iterations, e) < 0))
        return -1;
    if (fp->n > (size_t)INT32_MAX) return ip_fail(e, "too many points (%zu)", fp->n);
    /* the attributes are claims: /x must hold exactly that many points before
     * anything is allocated from them */
    hsize_t xd[H5S_MAX_RANK];
    int xnd = 0;
    if (ip_h5_dataset_dims(f, "/x", H5S_MAX_RANK, &xnd, xd, e) < 0) return -1;
    if (xnd != 4 || xd[0] != (hsize_t)fp->n || xd[1] != (hsize_t)fp->c || xd[2] != (hsize_t)fp->h ||
        xd[3] != (hsize_t)fp->w)
        return ip_fail(e, "/x does not hold the %zu points of %dx%dx%d the attributes /points and /input_shape "
                          "claim",
                       fp->n, fp->c, fp->h, fp->w);
    size_t n = fp->n ? fp->n : 1, d = (size_t)fp->c * fp->h * fp->w, xbytes;
    if (ip_mul3_size(n, d, sizeof *fp->x, &xbytes) != 0)
        return ip_fail(e, "%zu points of %dx%dx%d do not fit in memory", fp->n, fp->c, fp->h, fp->w);
    hid_t xid = H5Dopen2(f, "/x", H5P_DEFAULT);
    int stored = xid >= 0 ? ip_h5_check_stored(xid, "/x", fp->n ? xbytes : 0, e) : ip_fail(e, "cannot open /x");
    ip_h5_close(xid);
    if (stored != 0) return -1;
    fp->x = malloc(xbytes);
    fp->label = malloc(n * sizeof *fp->label);
    fp->source = malloc(n * sizeof *fp->source);
    fp->iterations = malloc(n * sizeof *fp->iterations);
    if (!fp->x || !fp->label || !fp->source || !fp->iterations)
        return ip_fail(e, "out of memory for %zu points of %dx%dx%d", fp->n, fp->c, fp->h, fp->w);
    int xs[4] = {(int)fp->n, fp->c, fp->h, fp->w}, ns[1] = {(int)fp->n};
    if (ip_h5_read_dataset(f, "/x", 4, xs, H5T_NATIVE_FLOAT, H5T_FLOAT, fp->x, e) < 0 ||
        ip_h5_read_dataset(f, "/label", 1, ns, H5T_NATIVE_INT32, H5T_INTEGER, fp->label, e) < 0 ||
        ip_h5_read_dataset(f, "/source", 1, ns, H5T_NATIVE_INT32, H5T_INTEGER, fp->source, e) < 0 ||
        ip_h5_read_dataset(f, "/iterations", 1, ns, H5T_NATIVE_INT32, H5T_INTEGER, fp->iterations, e) < 0)
        return -1;
    for (size_t p = 0; p < fp->n; p++)
        if (fp->label[p] < 0 || fp->label[p] >= fp->classes)
            return ip_fail(e, "/label[%zu] = %d is not a class of %d", p, fp->label[p], fp->classes);
    return 0;
}

int ip_fingerprint_load(ip_fingerprint *fp, const char *path, ip_err *e) {
    memset(fp, 0, sizeof *fp);
    if (!path || !path[0]) return ip_fail(e, "loading a fingerprint: no file name given");
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = -1;
    hid_t f = ip_h5_open_ro(path, e);
    if (f >= 0) {
        rc = read_contents(f, fp, e);
        H5Fclose(f);
    }
    if (rc != 0) {
        ip_fingerprint_free(fp);
        ip_failctx(e, "loading %s", path);
        ip_err_mark_input(e); /* every failure to read the file is the file's */
    }
    ip_h5_quiet_off(&q);
    return rc;
}
