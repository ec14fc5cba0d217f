/* HDF5 checkpoints (format described in docs/checkpoint.md).
 *
 * Writing: every tensor of the registry goes to /params, /buffers or
 * /passport as a float32 little-endian dataset, one chunk per dataset with a
 * Fletcher-32 checksum, in the HDF5 1.8 file format (checksummed metadata).
 * The file is written to "<path>.tmp.<pid>", flushed, fsync'ed and renamed
 * over <path>, then the directory is fsync'ed (ip_h5_write_atomic): a reader
 * sees the old file or the complete new one, never a partial one.
 *
 * Reading: everything is validated and read into scratch copies first; the
 * model is only modified once the whole file has been read successfully.
 *
 * HDF5's automatic error printing is switched off inside these functions; the
 * innermost message of HDF5's error stack is appended to our own messages. */
#include "ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "h5util.h"
#include "provenance.h"
#include "../model/evalrec.h"
#include "../passport/trigger.h"
#include "../util/digest.h"


/* ------------------------------------------------------------------------- */
/* Small helpers                                                             */

static float *tensor_ptr(const ip_tensor *t, float *params, float *bufs) {
    return (t->kind == IP_TENSOR_PARAM ? params : bufs) + t->offset;
}

static const char *kind_group(ip_tensor_kind k) {
    return k == IP_TENSOR_PARAM ? "params" : k == IP_TENSOR_BUFFER ? "buffers" : "passport";
}

/* Splits "<layer>.<field>" at the last dot. Fails when there is no dot, a part
 * is empty, or a part contains '/' (HDF5's path separator). */
static int split_name(const char *name, char *layer, size_t lcap, const char **field) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || dot[1] == 0 || strchr(name, '/')) return -1;
    size_t len = (size_t)(dot - name);
    if (len >= lcap) return -1;
    memcpy(layer, name, len);
    layer[len] = 0;
    *field = dot + 1;
    return 0;
}

static hid_t group_open_or_create(hid_t parent, const char *name) {
    htri_t ex = H5Lexists(parent, name, H5P_DEFAULT);
    if (ex < 0) return -1;
    if (ex > 0) return H5Gopen2(parent, name, H5P_DEFAULT);
    return H5Gcreate2(parent, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
}

/* ------------------------------------------------------------------------- */
/* Writing                                                                   */



/* The comma list of passport layers the model actually has ("none" without
 * any), so that the checkpoint rebuilds the same set whatever the arch's
 * default is. Falls back to the configured string when the list is too long. */
static void passport_list(const ip_model *m, char *out, size_t cap) {
    if (m->npassports == 0) {
        snprintf(out, cap, "none");
        return;
    }
    size_t n = 0;
    out[0] = 0;
    for (int i = 0; i < m->npassports; i++) {
        size_t l = strlen(m->passports[i].layer);
        if (n + l + 2 > cap) {
            snprintf(out, cap, "%s", m->cfg.passport_layers);
            return;
        }
        if (i) out[n++] = ',';
        memcpy(out + n, m->passports[i].layer, l + 1);
        n += l;
    }
}

static int write_root_attrs(hid_t f, const ip_model *m) {
    const ip_model_cfg *c = &m->cfg;
    char plist[sizeof c->passport_layers];
    passport_list(m, plist, sizeof plist);
    int shape[3] = {c->in_c, c->in_h, c->in_w};
    if (ip_h5_attr_i32(f, "format_version", IP_CKPT_FORMAT_VERSION) < 0) return -1;
    if (ip_h5_attr_str(f, "arch", c->arch) < 0) return -1;
    if (ip_h5_attr_str(f, "scheme", ip_scheme_name(c->scheme)) < 0) return -1;
    if (ip_h5_attr_str(f, "norm", ip_norm_name(c->norm)) < 0) return -1;
    if (ip_h5_attr_str(f, "passport_layers", plist) < 0) return -1;
    if (ip_h5_attr_str(f, "protocol", ip_protocol_name(c->protocol)) < 0) return -1;
    if (ip_h5_attr_str(f, "conv", ip_conv_algo_name(c->conv)) < 0) return -1;
    if (ip_h5_attr_write(f, "input_shape", H5T_STD_I32LE, H5T_NATIVE_INT, 3, shape) < 0) return -1;
    if (ip_h5_attr_i32(f, "classes", c->classes) < 0) return -1;
    if (ip_h5_attr_write(f, "input_mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, c->in_c, c->in_mean) < 0) return -1;
    if (ip_h5_attr_write(f, "input_std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, c->in_c, c->in_std) < 0) return -1;
    if (ip_h5_attr_str(f, "software", ip_provenance_get()->software) < 0) return -1;
    /* the build and machine that trained these weights (provenance.h) */
    if (ip_provenance_write_h5(f) < 0) return -1;
    return 0;
}

/* Writes the whole model (user) into an open, empty file: the ip_h5_fill of
 * save_impl. */
static int write_contents(hid_t f, const void *user, ip_err *e) {
    const ip_model *m = user;
    ip_h5_detail_buf db;
    hid_t top[3] = {-1, -1, -1};
    hid_t g = -1;
    int rc = -1;
    if (write_root_attrs(f, m) < 0) {
        ip_fail(e, "writing root attributes failed%s", ip_h5_detail(&db));
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        top[k] = H5Gcreate2(f, kind_group((ip_tensor_kind)k), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (top[k] < 0) {
            ip_fail(e, "creating group /%s failed%s", kind_group((ip_tensor_kind)k), ip_h5_detail(&db));
            goto done;
        }
    }
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        char layer[IP_NAME_LEN];
        const char *field;
        if ((unsigned)t->kind > IP_TENSOR_PASSPORT || t->ndim < 0 || t->ndim > 4) {
            ip_fail(e, "tensor %s has an invalid kind or rank", t->name);
            goto done;
        }
        if (split_name(t->name, layer, sizeof layer, &field) != 0) {
            ip_fail(e, "tensor name \"%s\" is not of the form <layer>.<field>", t->name);
            goto done;
        }
        hsize_t dims[4];
        for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
        g = group_open_or_create(top[t->kind], layer);
        if (g < 0 || ip_h5_write_dataset(g, field, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims,
                                   tensor_ptr(t, m->params, m->bufs)) < 0) {
            ip_fail(e, "writing /%s/%s/%s failed%s", kind_group(t->kind), layer, field, ip_h5_detail(&db));
            goto done;
        }
        ip_h5_close(g);
        g = -1;
    }
    for (int i = 0; i < m->npassports; i++) {
        const ip_passport *p = &m->passports[i];
        if (strchr(p->layer, '/') || !p->layer[0]) {
            ip_fail(e, "passport layer name \"%s\" cannot be a group name", p->layer);
            goto done;
        }
        hsize_t dims[1] = {(hsize_t)p->cout};
        g = group_open_or_create(top[IP_TENSOR_PASSPORT], p->layer);
        if (g < 0 || ip_h5_write_dataset(g, "sig_bits", H5T_STD_I8LE, H5T_NATIVE_SCHAR, 1, dims, p->bits) < 0 ||
            ip_h5_attr_str(g, "signature", p->signature) < 0) {
            ip_fail(e, "writing /passport/%s failed%s", p->layer, ip_h5_detail(&db));
            goto done;
        }
        ip_h5_close(g);
        g = -1;
    }
    rc = 0;
done:
    ip_h5_close(g);
    for (int k = 0; k < 3; k++) ip_h5_close(top[k]);
    return rc;
}

/* v3: /trigger/images (K, C, H, W) float32 pixels in [0, 1] and
 * /trigger/labels (K) int32, attributes seed and construction. */
static int write_trigger(hid_t f, const ip_model *m, ip_err *e) {
    const ip_dataset *t = &m->trigger;
    if (t->n == 0) return 0;
    ip_h5_detail_buf db;
    hid_t g = H5Gcreate2(f, "trigger", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {(hsize_t)t->n, (hsize_t)t->c, (hsize_t)t->h, (hsize_t)t->w};
    uint64_t seed = m->trigger_seed;
    int rc = 0;
    if (g < 0 || ip_h5_write_dataset(g, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, dims, t->x) < 0 ||
        ip_h5_write_dataset(g, "labels", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, t->y) < 0 ||
        ip_h5_attr_write(g, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &seed) < 0 ||
        ip_h5_attr_str(g, "construction", IP_CKPT_TRIGGER_CONSTRUCTION) < 0)
        rc = ip_fail(e, "writing /trigger failed%s", ip_h5_detail(&db));
    ip_h5_close(g);
    return rc;
}

/* Which build computed a record: a different build or machine may round
 * differently, so records are read back only by the binary that wrote them
 * on the same kind of CPU and BLAS: the digest of the provenance fields that
 * change the arithmetic and of the executable's build ID. */
static uint64_t build_digest(void) {
    const ip_provenance *p = ip_provenance_get();
    const char *parts[] = {p->software, p->cflags, p->cpu_flags, p->blas_config, p->blas_core};
    uint64_t h = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) h = ip_xxh64(parts[i], strlen(parts[i]) + 1, h);
    unsigned char id[64];
    return ip_xxh64(id, ip_build_id(id, sizeof id), h);
}

/* /evaluations: the model's evaluation records of the weights being saved
 * (evalrec.h), one row per record in five 1-D datasets, and the build's
 * digest. Nothing when there is none or records are off. */
static int write_evaluations(hid_t f, const ip_model *m, ip_err *e) {
    if (!ip_eval_records_used() || m->nevals == 0) return 0;
    const uint64_t digest = ip_model_digest(m);
    uint64_t md[IP_EVAL_RECORDS], dd[IP_EVAL_RECORDS];
    int32_t pass[IP_EVAL_RECORDS], branch[IP_EVAL_RECORDS];
    double acc[IP_EVAL_RECORDS];
    int n = 0;
    for (int i = 0; i < m->nevals; i++) {
        const ip_eval_record *r = &m->evals[i];
        if (r->model != digest) continue; /* of earlier weights */
        md[n] = r->model, dd[n] = r->data, pass[n] = r->pass, branch[n] = r->branch, acc[n] = r->acc;
        n++;
    }
    if (n == 0) return 0;
    ip_h5_detail_buf db;
    hsize_t dims[1] = {(hsize_t)n};
    uint64_t build = build_digest();
    hid_t g = H5Gcreate2(f, "evaluations", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (g < 0 || ip_h5_write_dataset(g, "model_digest", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dims, md) < 0 ||
        ip_h5_write_dataset(g, "data_digest", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dims, dd) < 0 ||
        ip_h5_write_dataset(g, "pass", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, pass) < 0 ||
        ip_h5_write_dataset(g, "branch", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, branch) < 0 ||
        ip_h5_write_dataset(g, "accuracy", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, dims, acc) < 0 ||
        ip_h5_attr_write(g, "build_digest", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &build) < 0)
        rc = ip_fail(e, "writing /evaluations failed%s", ip_h5_detail(&db));
    ip_h5_close(g);
    return rc;
}

static int write_all(hid_t f, const void *user, ip_err *e) {
    if (write_contents(f, user, e) != 0) return -1;
    if (write_evaluations(f, user, e) != 0) return -1;
    return write_trigger(f, user, e);
}

static int save_impl(const ip_model *m, const char *path, ip_err *e) {
    if (!path || !path[0]) return ip_fail(e, "saving a checkpoint: no file name given");
    if (!m || !m->params || !m->bufs) return ip_fail(e, "saving %s: the model is not built", path);
    return ip_h5_write_atomic(path, H5P_DEFAULT, "saving", write_all, m, e);
}

int ip_ckpt_save(const ip_model *m, const char *path, ip_err *e) {
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = save_impl(m, path, e);
    ip_h5_quiet_off(&q);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Reading                                                                   */




typedef struct ckpt_meta {
    int format_version;
    ip_model_cfg cfg;
} ckpt_meta;

static int read_meta(hid_t f, ckpt_meta *meta, ip_err *e) {
    memset(meta, 0, sizeof *meta);
    ip_model_cfg *c = &meta->cfg;
    char s[64];
    if (ip_h5_attr_read_num(f, "/", "format_version", H5T_NATIVE_INT, H5T_INTEGER, 0, &meta->format_version, e) < 0)
        return -1;
    if (meta->format_version != IP_CKPT_FORMAT_VERSION)
        return ip_fail(e, "format_version %d is not supported (this ipsweep reads version %d)%s",
                       meta->format_version, IP_CKPT_FORMAT_VERSION,
                       meta->format_version > IP_CKPT_FORMAT_VERSION ? ": written by a newer ipsweep" : "");
    if (ip_h5_attr_read_str(f, "/", "arch", c->arch, sizeof c->arch, e) < 0) return -1;
    if (ip_h5_attr_read_str(f, "/", "scheme", s, sizeof s, e) < 0) return -1;
    if (ip_scheme_parse(s, &c->scheme) != 0) return ip_fail(e, "unknown scheme \"%s\"", s);
    if (ip_h5_attr_read_str(f, "/", "norm", s, sizeof s, e) < 0) return -1;
    if (ip_norm_parse(s, &c->norm) != 0) return ip_fail(e, "unknown norm \"%s\"", s);
    if (ip_h5_attr_read_str(f, "/", "passport_layers", c->passport_layers, sizeof c->passport_layers, e) < 0) return -1;
    /* written since the protocol existed: a file without it holds the paper's network */
    htri_t has_protocol = H5Aexists(f, "protocol");
    if (has_protocol < 0) return ip_fail(e, "cannot look up attribute /protocol");
    if (has_protocol > 0) {
        if (ip_h5_attr_read_str(f, "/", "protocol", s, sizeof s, e) < 0) return -1;
        if (ip_protocol_parse(s, &c->protocol) != 0) return ip_fail(e, "unknown protocol \"%s\"", s);
    }
    /* checkpoints written before the setting existed trained with the fast convolutions */
    c->conv = IP_CONV_FAST;
    if (H5Aexists(f, "conv") > 0) {
        if (ip_h5_attr_read_str(f, "/", "conv", s, sizeof s, e) < 0) return -1;
        if (ip_conv_algo_parse(s, &c->conv) != 0) return ip_fail(e, "unknown conv \"%s\"", s);
    }
    int shape[3];
    if (ip_h5_attr_read_num(f, "/", "input_shape", H5T_NATIVE_INT, H5T_INTEGER, 3, shape, e) < 0) return -1;
    c->in_c = shape[0], c->in_h = shape[1], c->in_w = shape[2];
    if (ip_h5_attr_read_num(f, "/", "classes", H5T_NATIVE_INT, H5T_INTEGER, 0, &c->classes, e) < 0) return -1;
    /* before anything is sized from them (a crafted (1,40000,40000) must not reach c*h*w) */
    if (ip_model_cfg_check_shape(c, e) != 0) return ip_failctx(e, "attributes /input_shape, /classes");
    if (ip_h5_attr_read_num(f, "/", "input_mean", H5T_NATIVE_FLOAT, H5T_FLOAT, c->in_c, c->in_mean, e) < 0) return -1;
    if (ip_h5_attr_read_num(f, "/", "input_std", H5T_NATIVE_FLOAT, H5T_FLOAT, c->in_c, c->in_std, e) < 0) return -1;
    for (int i = c->in_c; i < 4; i++) c->in_mean[i] = 0, c->in_std[i] = 1;
    return 0;
}

int ip_ckpt_read_cfg(const char *path, ip_model_cfg *cfg, ip_err *e) {
    if (!path || !path[0]) return ip_fail(e, "reading a checkpoint: no file name given");
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = -1;
    hid_t f = ip_h5_open_ro(path, e);
    if (f >= 0) {
        ckpt_meta meta;
        if (read_meta(f, &meta, e) == 0) {
            *cfg = meta.cfg;
            rc = 0;
        }
        H5Fclose(f);
    }
    if (rc != 0) {
        ip_failctx(e, "reading %s", path);
        ip_err_mark_input(e); /* every failure to read the file is the file's */
    }
    ip_h5_quiet_off(&q);
    return rc;
}


/* Reads /<group>/<layer>/<field> with exactly the given shape (ip_h5_read_dataset). */
static int read_dataset(hid_t f, const char *group, const char *layer, const char *field, int ndim,
                        const int *shape, hid_t mtype, H5T_class_t want, void *dst, ip_err *e) {
    char dpath[3 * IP_NAME_LEN + 16];
    if (layer) snprintf(dpath, sizeof dpath, "/%s/%s/%s", group, layer, field);
    else snprintf(dpath, sizeof dpath, "/%s/%s", group, field); /* no layer level (/trigger) */
    return ip_h5_read_dataset(f, dpath, ndim, shape, mtype, want, dst, e);
}

/* 1 when /<group>/<layer>/<field> exists, 0 when not, -1 on an HDF5 error. */
static htri_t dataset_exists(hid_t f, const char *group, const char *layer, const char *field) {
    char path[3 * IP_NAME_LEN + 16];
    snprintf(path, sizeof path, "/%s/%s/%s", group, layer, field);
    return ip_h5_path_exists(f, path);
}

/* Reads /trigger (when present) into t, checking it against the model's
 * input shape and classes; t->n = 0 when the file has none. */
static int read_trigger(hid_t f, const ip_model *m, ip_dataset *t, uint64_t *seed, ip_err *e) {
    ip_h5_detail_buf db;
    memset(t, 0, sizeof *t);
    *seed = 0;
    htri_t ex = H5Lexists(f, "/trigger", H5P_DEFAULT);
    if (ex < 0) return ip_fail(e, "cannot look up /trigger%s", ip_h5_detail(&db));
    if (ex == 0) return 0;
    ex = H5Lexists(f, "/trigger/labels", H5P_DEFAULT);
    if (ex <= 0) return ip_fail(e, "missing /trigger/labels");
    hid_t d = H5Dopen2(f, "/trigger/labels", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t k = 0;
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (nd == 1) H5Sget_simple_extent_dims(sp, &k, NULL);
    ip_h5_close(sp);
    ip_h5_close(d);
    if (nd != 1 || k < 1 || k > IP_TRIGGER_MAX_COUNT)
        return ip_fail(e, "/trigger/labels must be a 1-D dataset of 1..%d labels%s", IP_TRIGGER_MAX_COUNT,
                       ip_h5_detail(&db));
    const ip_model_cfg *c = &m->cfg;
    /* /trigger/images must hold all k images before k sizes an allocation */
    hsize_t idims[H5S_MAX_RANK];
    int ind = 0;
    if (ip_h5_dataset_dims(f, "/trigger/images", H5S_MAX_RANK, &ind, idims, e) != 0) return -1;
    if (ind != 4 || idims[0] != k || idims[1] != (hsize_t)c->in_c || idims[2] != (hsize_t)c->in_h ||
        idims[3] != (hsize_t)c->in_w)
        return ip_fail(e, "/trigger/images is not %llu images of the model's input shape (%d,%d,%d)",
                       (unsigned long long)k, c->in_c, c->in_h, c->in_w);
    hid_t di = H5Dopen2(f, "/trigger/images", H5P_DEFAULT);
    int stored = di >= 0 ? ip_h5_check_stored(di, "/trigger/images",
                                              (size_t)k * (size_t)c->in_c * (size_t)c->in_h * (size_t)c->in_w *
                                                  sizeof(float),
                                              e)
                         : ip_fail(e, "cannot open /trigger/images");
    ip_h5_close(di);
    if (stored != 0) return -1;
    if (ip_data_alloc(t, (size_t)k, c->in_c, c->in_h, c->in_w, c->classes, e) != 0) return -1;
    int ishape[4] = {(int)k, c->in_c, c->in_h, c->in_w};
    if (read_dataset(f, "trigger", NULL, "images", 4, ishape, H5T_NATIVE_FLOAT, H5T_FLOAT, t->x, e) < 0 ||
        read_dataset(f, "trigger", NULL, "labels", 1, ishape, H5T_NATIVE_INT32, H5T_INTEGER, t->y, e) < 0)
        goto fail;
    for (size_t i = 0; i < t->n; i++)
        if (t->y[i] < 0 || t->y[i] >= c->classes) {
            ip_fail(e, "/trigger/labels[%zu] = %d, expected 0..%d", i, t->y[i], c->classes - 1);
            goto fail;
        }
    hid_t g = H5Gopen2(f, "/trigger", H5P_DEFAULT);
    /* documentation only: a missing or malformed seed reads as 0; read through
     * the checked reader, as an attribute of 1000 values must not be read
     * into one uint64 */
    if (g >= 0 && H5Aexists(g, "seed") > 0 &&
        ip_h5_attr_read_num(g, "/trigger/", "seed", H5T_NATIVE_UINT64, H5T_INTEGER, 0, seed, NULL) != 0)
        *seed = 0;
    ip_h5_close(g);
    snprintf(t->name, sizeof t->name, "trigger");
    return 0;
fail:
    ip_data_free(t);
    return -1;
}

/* The model and the file must have the same passport layers. */
static int check_passport_set(hid_t f, const ip_model *m, const char *file_list, ip_err *e) {
    ip_h5_detail_buf db;
    char model_list[sizeof m->cfg.passport_layers];
    passport_list(m, model_list, sizeof model_list);
    htri_t ex = H5Lexists(f, "/passport", H5P_DEFAULT);
    if (ex < 0) return ip_fail(e, "cannot look up /passport%s", ip_h5_detail(&db));
    hsize_t nfile = 0;
    if (ex > 0) {
        H5G_info_t info;
        if (H5Gget_info_by_name(f, "/passport", &info, H5P_DEFAULT) < 0)
            return ip_fail(e, "cannot read /passport%s", ip_h5_detail(&db));
        nfile = info.nlinks;
    }
    for (int i = 0; i < m->npassports; i++) {
        char gpath[IP_NAME_LEN + 16];
        snprintf(gpath, sizeof gpath, "/passport/%s", m->passports[i].layer);
        htri_t g = ex > 0 ? H5Lexists(f, gpath, H5P_DEFAULT) : 0;
        if (g < 0) return ip_fail(e, "cannot look up %s%s", gpath, ip_h5_detail(&db));
        if (g == 0)
            return ip_fail(e, "missing %s: passport layers are \"%s\" in file, model has \"%s\"", gpath, file_list,
                           model_list);
    }
    if (nfile != (hsize_t)m->npassports)
        return ip_fail(e, "passport layers differ: \"%s\" (%llu) in file, model has \"%s\" (%d)", file_list,
                       (unsigned long long)nfile, model_list, m->npassports);
    return 0;
}

static int check_meta(const ckpt_meta *meta, const ip_model *m, ip_err *e) {
    const ip_model_cfg *fc = &meta->cfg, *mc = &m->cfg;
    if (strcmp(fc->arch, mc->arch) != 0)
        return ip_fail(e, "arch mismatch: checkpoint is %s, model is %s", fc->arch, mc->arch);
    if (fc->scheme != mc->scheme)
        return ip_fail(e, "scheme mismatch: checkpoint is %s, model is %s", ip_scheme_name(fc->scheme),
                       ip_scheme_name(mc->scheme));
    if (fc->norm != mc->norm)
        return ip_fail(e, "norm mismatch: checkpoint is %s, model is %s", ip_norm_name(fc->norm),
                       ip_norm_name(mc->norm));
    if (fc->protocol != mc->protocol)
        return ip_fail(e, "protocol mismatch: checkpoint is %s, model is %s", ip_protocol_name(fc->protocol),
                       ip_protocol_name(mc->protocol));
    if (fc->in_c != mc->in_c || fc->in_h != mc->in_h || fc->in_w != mc->in_w)
        return ip_fail(e, "input shape mismatch: checkpoint is (%d,%d,%d), model is (%d,%d,%d)", fc->in_c, fc->in_h,
                       fc->in_w, mc->in_c, mc->in_h, mc->in_w);
    if (fc->classes != mc->classes)
        return ip_fail(e, "classes mismatch: checkpoint has %d, model has %d", fc->classes, mc->classes);
    return 0;
}

/* What loading changes in a built model, in one place: the file's (or a
 * cached copy's, ip_ckpt_copy_loaded) tensors, signature bits and texts,
 * trigger set (moved: *trig is left empty), input normalisation and
 * evaluation records; then the derived passport state. Nothing else of a
 * freshly built model differs from a loaded one. */
static void commit(ip_model *m, const float *params, const float *bufs, const int8_t *bits,
                   char (*sigs)[sizeof m->passports[0].signature], ip_dataset *trig, uint64_t trig_seed,
                   const ip_model_cfg *file_cfg, const ip_eval_record *evals, int nevals) {
    memcpy(m->evals, evals, (size_t)nevals * sizeof *evals);
    m->nevals = nevals;
    ip_data_free(&m->trigger);
    m->trigger = *trig;
    m->trigger_seed = trig_seed;
    memset(trig, 0, sizeof *trig);
    memcpy(m->params, params, m->nparams * sizeof(float));
    memcpy(m->bufs, bufs, m->nbufs * sizeof(float));
    const int8_t *b = bits;
    for (int i = 0; i < m->npassports; i++) {
        ip_passport *p = &m->passports[i];
        memcpy(p->bits, b, (size_t)p->cout);
        b += p->cout;
        memcpy(p->signature, sigs[i], sizeof p->signature);
    }
    /* the input normalisation the weights were trained with */
    for (int c = 0; c < m->cfg.in_c; c++) {
        m->cfg.in_mean[c] = file_cfg->in_mean[c];
        m->cfg.in_std[c] = file_cfg->in_std[c];
    }
    ip_model_passports_changed(m);
}

/* The file's /evaluations into recs (at most IP_EVAL_RECORDS), when this
 * build wrote them and records are on; returns how many. Records only save
 * time, so a file without them, from another build, or whose /evaluations
 * cannot be read has none (each record is checked against the weights when
 * it is used: evalrec.h). */
static int read_evaluations(hid_t f, ip_eval_record *recs) {
    if (!ip_eval_records_used() || ip_h5_path_exists(f, "/evaluations/accuracy") <= 0) return 0;
    ip_err ignored = {{0}};
    hid_t g = H5Gopen2(f, "/evaluations", H5P_DEFAULT);
    uint64_t build = 0;
    int ok = g >= 0 &&
             ip_h5_attr_read_num(g, "/evaluations:", "build_digest", H5T_NATIVE_UINT64, H5T_INTEGER, 0, &build,
                                 &ignored) == 0 &&
             build == build_digest();
    ip_h5_close(g);
    int nd = 0;
    hsize_t dims[1] = {0};
    if (!ok || ip_h5_dataset_dims(f, "/evaluations/accuracy", 1, &nd, dims, &ignored) != 0 || nd != 1 || dims[0] < 1 ||
        dims[0] > IP_EVAL_RECORDS)
        return 0;
    const int n = (int)dims[0];
    uint64_t md[IP_EVAL_RECORDS], dd[IP_EVAL_RECORDS];
    int32_t pass[IP_EVAL_RECORDS], branch[IP_EVAL_RECORDS];
    double acc[IP_EVAL_RECORDS];
    if (ip_h5_read_dataset(f, "/evaluations/model_digest", 1, &n, H5T_NATIVE_UINT64, H5T_INTEGER, md, &ignored) ||
        ip_h5_read_dataset(f, "/evaluations/data_digest", 1, &n, H5T_NATIVE_UINT64, H5T_INTEGER, dd, &ignored) ||
        ip_h5_read_dataset(f, "/evaluations/pass", 1, &n, H5T_NATIVE_INT32, H5T_INTEGER, pass, &ignored) ||
        ip_h5_read_dataset(f, "/evaluations/branch", 1, &n, H5T_NATIVE_INT32, H5T_INTEGER, branch, &ignored) ||
        ip_h5_read_dataset(f, "/evaluations/accuracy", 1, &n, H5T_NATIVE_DOUBLE, H5T_FLOAT, acc, &ignored))
        return 0;
    for (int i = 0; i < n; i++)
        recs[i] = (ip_eval_record){.model = md[i], .data = dd[i], .pass = pass[i], .branch = branch[i], .acc = acc[i]};
    return n;
}

static int load_impl(ip_model *m, const char *path, ip_err *e) {
    if (!path || !path[0]) return ip_fail(e, "loading a checkpoint: no file name given");
    if (!m || !m->params || !m->bufs) return ip_fail(e, "loading %s: the model is not built", path);
    hid_t f = ip_h5_open_ro(path, e);
    if (f < 0) {
        ip_failctx(e, "loading %s", path);
        return ip_err_mark_input(e);
    }
    int rc = -1;
    size_t nbits = 0;
    for (int i = 0; i < m->npassports; i++) nbits += (size_t)m->passports[i].cout;
    float *params = malloc((m->nparams ? m->nparams : 1) * sizeof(float));
    float *bufs = malloc((m->nbufs ? m->nbufs : 1) * sizeof(float));
    int8_t *bits = malloc(nbits ? nbits : 1);
    char(*sigs)[sizeof m->passports[0].signature] = calloc(m->npassports ? (size_t)m->npassports : 1, sizeof *sigs);
    ckpt_meta meta;
    ip_dataset trig = {0};
    uint64_t trig_seed = 0;
    int oom = !params || !bufs || !bits || !sigs;
    if (oom) {
        ip_fail(e, "out of memory");
        goto done;
    }
    memcpy(params, m->params, m->nparams * sizeof(float));
    memcpy(bufs, m->bufs, m->nbufs * sizeof(float));
    if (read_meta(f, &meta, e) < 0 || check_meta(&meta, m, e) < 0 ||
        check_passport_set(f, m, meta.cfg.passport_layers, e) < 0)
        goto done;
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        char layer[IP_NAME_LEN];
        const char *field;
        if ((unsigned)t->kind > IP_TENSOR_PASSPORT || t->ndim < 0 || t->ndim > 4 ||
            split_name(t->name, layer, sizeof layer, &field) != 0) {
            ip_fail(e, "model tensor \"%s\" has no checkpoint location", t->name);
            goto done;
        }
        if (t->fallback >= 0) {
            htri_t ex = dataset_exists(f, kind_group(t->kind), layer, field);
            if (ex < 0) {
                ip_h5_detail_buf db;
                ip_fail(e, "cannot look up /%s/%s/%s%s", kind_group(t->kind), layer, field, ip_h5_detail(&db));
                goto done;
            }
            if (ex == 0) continue; /* an older file: filled from the fallback below */
        }
        if (read_dataset(f, kind_group(t->kind), layer, field, t->ndim, t->shape, H5T_NATIVE_FLOAT, H5T_FLOAT,
                         tensor_ptr(t, params, bufs), e) < 0)
            goto done;
    }
    /* tensors a file written before they existed lacks take their fallback's values */
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        char layer[IP_NAME_LEN];
        const char *field;
        if (t->fallback < 0 || split_name(t->name, layer, sizeof layer, &field) != 0) continue;
        if (dataset_exists(f, kind_group(t->kind), layer, field) > 0) continue;
        const ip_tensor *src = &m->tensors[t->fallback];
        memcpy(tensor_ptr(t, params, bufs), tensor_ptr(src, params, bufs), t->numel * sizeof(float));
    }
    int8_t *b = bits;
    for (int i = 0; i < m->npassports; i++) {
        const ip_passport *p = &m->passports[i];
        if (read_dataset(f, "passport", p->layer, "sig_bits", 1, &p->cout, H5T_NATIVE_SCHAR, H5T_INTEGER, b, e) < 0)
            goto done;
        for (int c = 0; c < p->cout; c++)
            if (b[c] != 1 && b[c] != -1) {
                ip_fail(e, "/passport/%s/sig_bits[%d] = %d, expected +1 or -1", p->layer, c, b[c]);
                goto done;
            }
        b += p->cout;
        char gpath[IP_NAME_LEN + 16], where[IP_NAME_LEN + 24];
        snprintf(gpath, sizeof gpath, "/passport/%s", p->layer);
        hid_t g = H5Gopen2(f, gpath, H5P_DEFAULT);
        if (g < 0) {
            ip_h5_detail_buf db;
            ip_fail(e, "cannot open %s%s", gpath, ip_h5_detail(&db));
            goto done;
        }
        snprintf(where, sizeof where, "%s:", gpath);
        int r = ip_h5_attr_read_str(g, where, "signature", sigs[i], sizeof sigs[i], e);
        H5Gclose(g);
        if (r < 0) goto done;
    }
    if (read_trigger(f, m, &trig, &trig_seed, e) < 0) goto done;
    ip_eval_record recs[IP_EVAL_RECORDS];
    const int nrecs = read_evaluations(f, recs);
    /* everything read: commit */
    commit(m, params, bufs, bits, sigs, &trig, trig_seed, &meta.cfg, recs, nrecs);
    rc = 0;
done:
    if (rc != 0) {
        ip_failctx(e, "loading %s", path);
        if (!oom) ip_err_mark_input(e);
    }
    H5Fclose(f);
    free(params);
    free(bufs);
    free(bits);
    free(sigs);
    ip_data_free(&trig);
    return rc;
}

int ip_ckpt_load(ip_model *m, const char *path, ip_err *e) {
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    int rc = load_impl(m, path, e);
    ip_h5_quiet_off(&q);
    return rc;
}

/* Every tensor the stored config implies is in the file with its shape and
 * all of its data (ipsweep's datasets are uncompressed): then building the
 * model allocates no more than the file holds. A crafted config (a 4096x4096
 * input, 100000 classes) would otherwise ask for terabytes before the first
 * tensor is read. */
static int check_sizes(const char *path, const ip_model_cfg *cfg, ip_err *e) {
    ip_model *lay = malloc(sizeof *lay);
    if (!lay) return ip_fail(e, "out of memory");
    int rc = ip_model_layout(lay, cfg, e);
    if (rc != 0) {
        free(lay);
        return ip_failctx(e, "building the model of %s", path);
    }
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    hid_t f = ip_h5_open_ro(path, e);
    rc = f < 0 ? -1 : 0;
    for (int i = 0; rc == 0 && i < lay->ntensors; i++) {
        const ip_tensor *t = &lay->tensors[i];
        char layer[IP_NAME_LEN], dpath[3 * IP_NAME_LEN + 16];
        const char *field;
        if (split_name(t->name, layer, sizeof layer, &field) != 0) continue; /* reported by the load */
        snprintf(dpath, sizeof dpath, "/%s/%s/%s", kind_group(t->kind), layer, field);
        if (t->fallback >= 0 && ip_h5_path_exists(f, dpath) == 0) continue; /* an older file */
        hsize_t dims[H5S_MAX_RANK];
        int nd = 0;
        rc = ip_h5_dataset_dims(f, dpath, H5S_MAX_RANK, &nd, dims, e);
        if (rc != 0) break;
        int same = nd == t->ndim;
        for (int k = 0; same && k < nd; k++) same = dims[k] == (hsize_t)t->shape[k];
        if (!same) {
            rc = ip_fail(e, "%s: its shape in the file is not the one the attributes arch, input_shape and classes "
                            "imply",
                         dpath);
            break;
        }
        hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
        if (d < 0) rc = ip_fail(e, "cannot open %s", dpath);
        else rc = ip_h5_check_stored(d, dpath, t->numel * sizeof(float), e);
        ip_h5_close(d);
    }
    if (f >= 0) H5Fclose(f);
    ip_h5_quiet_off(&q);
    free(lay);
    if (rc != 0) {
        ip_failctx(e, "loading %s", path);
        ip_err_mark_input(e);
    }
    return rc;
}

int ip_ckpt_open_model(ip_model *m, const char *path, ip_err *e) {
    ip_model_cfg cfg;
    if (ip_ckpt_read_cfg(path, &cfg, e) != 0) return -1;
    if (check_sizes(path, &cfg, e) != 0) return -1;
    if (ip_model_build(m, &cfg, e) != 0) {
        ip_model_free(m);
        return ip_failctx(e, "building the model of %s", path); /* the class (input: the stored config) is kept */
    }
    if (ip_ckpt_load(m, path, e) != 0) {
        ip_model_free(m);
        return -1;
    }
    return 0;
}

int ip_ckpt_copy_loaded(ip_model *m, const ip_model *src, const ip_model_cfg *file_cfg, ip_err *e) {
    if (ip_model_build(m, file_cfg, e) != 0) {
        ip_model_free(m);
        return ip_failctx(e, "building a copy of a %s model", file_cfg->arch);
    }
    size_t nbits = 0;
    for (int i = 0; i < src->npassports; i++) nbits += (size_t)src->passports[i].cout;
    int8_t *bits = malloc(nbits ? nbits : 1);
    char(*sigs)[sizeof src->passports[0].signature] = calloc(src->npassports ? (size_t)src->npassports : 1, sizeof *sigs);
    ip_dataset trig = {0};
    int rc = -1;
    if (!bits || !sigs) {
        ip_fail(e, "out of memory");
        goto done;
    }
    if (m->nparams != src->nparams || m->nbufs != src->nbufs || m->npassports != src->npassports) {
        ip_fail(e, "a copy of a %s model is not built like the model it copies", file_cfg->arch);
        goto done;
    }
    int8_t *b = bits;
    for (int i = 0; i < src->npassports; i++) {
        memcpy(b, src->passports[i].bits, (size_t)src->passports[i].cout);
        b += src->passports[i].cout;
        memcpy(sigs[i], src->passports[i].signature, sizeof sigs[i]);
    }
    if (src->trigger.n && ip_data_copy(&trig, &src->trigger, e) != 0) goto done;
    commit(m, src->params, src->bufs, bits, sigs, &trig, src->trigger_seed, &src->cfg, src->evals, src->nevals);
    rc = 0;
done:
    free(bits);
    free(sigs);
    ip_data_free(&trig);
    if (rc != 0) ip_model_free(m);
    return rc;
}
