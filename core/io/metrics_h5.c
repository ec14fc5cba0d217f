/* A task's metrics as a small HDF5 file (core/util/metrics.h: ip_metrics_save,
 * ip_metrics_load). Used where one task's results feed another through the
 * shared filesystem, e.g. the shards of a fake1 task and the task that
 * merges them. Layout (format 1):
 *   /            attribute format_version = 1 (int32)
 *   /scalars     one float64 attribute per scalar metric, in creation order
 *   /arrays/<m>  one 1-D float64 dataset per array metric, in creation order
 * Written atomically (core/h5util.h): a reader sees a whole file or none. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "../util/checked.h"
#include "h5util.h"
#include "../util/metrics.h"

#define METRICS_FORMAT 1

static hid_t ordered_group(hid_t parent, const char *name) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0) return -1;
    hid_t g = -1;
    if (H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0 &&
        H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0)
        g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    ip_h5_close(gcpl);
    return g;
}

static int write_metrics(hid_t f, const void *user, ip_err *e) {
    const ip_metrics *mt = user;
    ip_h5_detail_buf db;
    hid_t gs = -1, ga = -1, sp = -1, d = -1;
    int rc = -1;
    if (ip_h5_attr_i32(f, "format_version", METRICS_FORMAT) != 0) goto fail;
    if ((gs = ordered_group(f, "scalars")) < 0 || (ga = ordered_group(f, "arrays")) < 0) goto fail;
    for (int i = 0; i < mt->nscalars; i++)
        if (ip_h5_attr_write(gs, mt->names[i], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, -1, &mt->values[i]) != 0) goto fail;
    for (int i = 0; i < mt->narrays; i++) {
        hsize_t n = mt->arrays[i].n;
        if ((sp = H5Screate_simple(1, &n, NULL)) < 0) goto fail;
        d = H5Dcreate2(ga, mt->arrays[i].name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || (n && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, mt->arrays[i].v) < 0))
            goto fail;
        ip_h5_close(d), ip_h5_close(sp);
        d = sp = -1;
    }
    rc = 0;
    goto done;
fail:
    ip_fail(e, "writing the metrics%s", ip_h5_detail(&db));
done:
    ip_h5_close(d), ip_h5_close(sp), ip_h5_close(ga), ip_h5_close(gs);
    return rc;
}

int ip_metrics_save(const ip_metrics *mt, const char *path, ip_err *e) {
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = ip_h5_write_atomic(path, H5P_DEFAULT, "saving metrics to", write_metrics, mt, e);
    ip_h5_quiet_off(&q);
    return rc;
}

typedef struct load_ctx {
    ip_metrics *mt;
    ip_err *e;
    int failed;
} load_ctx;

static herr_t load_scalar(hid_t loc, const char *name, const H5A_info_t *info, void *user) {
    (void)info;
    load_ctx *c = user;
    double v;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0;
    ip_h5_close(sp), ip_h5_close(a);
    if (!ok) return c->failed = 1, ip_fail(c->e, "scalar %s is not one number", name), -1;
    if (ip_metrics_set(c->mt, name, v, c->e) != 0) return c->failed = 1, -1;
    return 0;
}

static herr_t load_array(hid_t loc, const char *name, const H5L_info_t *info, void *user) {
    (void)info;
    load_ctx *c = user;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 ? H5Sget_simple_extent_npoints(sp) : -1;
    /* the extent is the file's claim (a chunked dataset can claim 2^60 values in a few bytes) */
    size_t bytes = 0;
    int fits = n >= 0 && ip_mul_size((size_t)(n ? n : 1), sizeof(double), &bytes) == 0;
    if (fits && n > 0 && ip_h5_check_stored(d, name, bytes, c->e) != 0) {
        ip_h5_close(sp), ip_h5_close(d);
        return c->failed = 1, -1;
    }
    double *v = fits ? malloc(bytes) : NULL;
    int ok = v && (n == 0 || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    ip_h5_close(sp), ip_h5_close(d);
    if (!ok) {
        free(v);
        if (n >= 0 && !v)
            return c->failed = 1, ip_fail(c->e, "array %s: %lld values do not fit in memory", name, (long long)n), -1;
        return c->failed = 1, ip_fail(c->e, "array %s is not a readable 1-D dataset", name), -1;
    }
    int rc = ip_metrics_set_array(c->mt, name, v, (size_t)n, c->e);
    free(v);
    return rc != 0 ? (c->failed = 1, -1) : 0;
}

int ip_metrics_load(ip_metrics *mt, const char *path, ip_err *e) {
    ip_metrics_init(mt);
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    ip_h5_detail_buf db;
    load_ctx c = {mt, e, 0};
    int rc = -1, version = 0;
    hid_t fapl = ip_h5_make_fapl(0);
    hid_t f = fapl >= 0 ? H5Fopen(path, H5F_ACC_RDONLY, fapl) : -1;
    hid_t gs = -1, ga = -1, a = -1;
    if (f < 0) {
        ip_fail(e, "%s: cannot open as HDF5%s", path, ip_h5_detail(&db));
        goto done;
    }
    a = H5Aopen(f, "format_version", H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_INT, &version) < 0 || version != METRICS_FORMAT) {
        ip_fail(e, "%s: not a metrics file of format %d", path, METRICS_FORMAT);
        goto done;
    }
    gs = H5Gopen2(f, "scalars", H5P_DEFAULT);
    ga = H5Gopen2(f, "arrays", H5P_DEFAULT);
    if (gs < 0 || ga < 0) {
        ip_fail(e, "%s: no /scalars or /arrays group", path);
        goto done;
    }
    hsize_t idx = 0;
    if (H5Aiterate2(gs, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, load_scalar, &c) < 0 || c.failed) goto bad;
    idx = 0;
    if (H5Literate(ga, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, load_array, &c) < 0 || c.failed) goto bad;
    rc = 0;
    goto done;
bad:
    if (!c.failed) ip_fail(e, "%s: unreadable metrics%s", path, ip_h5_detail(&db));
    else ip_failctx(e, "%s", path);
done:
    ip_h5_close(a), ip_h5_close(ga), ip_h5_close(gs), ip_h5_close(f), ip_h5_close(fapl);
    ip_h5_quiet_off(&q);
    if (rc != 0) {
        ip_metrics_free(mt);
        ip_err_mark_input(e); /* every failure to read the file is the file's */
    }
    return rc;
}
