/* HDF5 helpers shared by core/io/ckpt.c, core/ipguard/fingerprint.c and runner/run/results.c (h5util.h). */
#include "h5util.h"

#include "../util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* H5Pset_file_locking exists in 1.10.7+ and 1.12.1+ */
#if (H5_VERS_MAJOR == 1 && H5_VERS_MINOR == 10 && H5_VERS_RELEASE >= 7) || H5_VERSION_GE(1, 12, 1)
#define IP_H5_HAVE_FILE_LOCKING 1
#endif

/* ------------------------------------------------------------------------- */
/* HDF5 error handling                                                       */

void ip_h5_quiet_on(ip_h5_quiet *q) {
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void ip_h5_quiet_off(const ip_h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

static herr_t detail_cb(unsigned n, const H5E_error2_t *err, void *data) {
    ip_h5_detail_buf *b = data;
    /* upward walk: n == 0 is the innermost (most specific) error */
    if (n == 0 && err && err->desc) snprintf(b->text, sizeof b->text, "%s", err->desc);
    return 0;
}

const char *ip_h5_detail(ip_h5_detail_buf *b) {
    ip_h5_detail_buf inner = {{0}};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_cb, &inner);
    if (inner.text[0]) snprintf(b->text, sizeof b->text, " (hdf5: %.180s)", inner.text);
    else b->text[0] = 0;
    return b->text;
}

void ip_h5_close(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
    }
}

int ip_h5_attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int n, const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    if (sp < 0) return -1;
    hid_t a = H5Acreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, mtype, data) < 0 ? -1 : 0;
    ip_h5_close(a);
    ip_h5_close(sp);
    return rc;
}

int ip_h5_attr_i32(hid_t loc, const char *name, int v) {
    return ip_h5_attr_write(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT, -1, &v);
}

hid_t ip_h5_make_fapl(int for_write) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) goto fail;
    if (for_write && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) goto fail;
#ifdef IP_H5_HAVE_FILE_LOCKING
    if (H5Pset_file_locking(fapl, 1, 1) < 0) goto fail;
#endif
    return fapl;
fail:
    H5Pclose(fapl);
    return -1;
}

/* ------------------------------------------------------------------------- */
/* Attributes and datasets (checkpoints, fingerprints)                       */

/* A single chunk per dataset (needed for the checksum filter) must stay below
 * HDF5's 4 GB chunk limit; larger datasets are stored contiguous, unchecksummed. */
#define IP_H5_MAX_CHUNK_BYTES ((size_t)1 << 31)

/* Variable-length UTF-8 string: h5py reads it as str. */
int ip_h5_attr_str(hid_t loc, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    int rc = -1;
    if (H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0)
        rc = ip_h5_attr_write(loc, name, t, t, -1, &v);
    H5Tclose(t);
    return rc;
}

/* A dataset of ndim dims (0 = scalar), stored as one chunk with a Fletcher-32
 * checksum when it fits. */
int ip_h5_write_dataset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims,
                         const void *data) {
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)dims[i];
    hid_t sp = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = -1;
    int rc = -1;
    if (sp < 0 || dcpl < 0) goto done;
    if (ndim > 0 && numel > 0 && numel * H5Tget_size(ftype) < IP_H5_MAX_CHUNK_BYTES) {
        if (H5Pset_chunk(dcpl, ndim, dims) < 0 || H5Pset_fletcher32(dcpl) < 0) goto done;
    }
    d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) goto done;
    if (numel > 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) goto done;
    rc = 0;
done:
    ip_h5_close(d);
    ip_h5_close(dcpl);
    ip_h5_close(sp);
    return rc;
}

/* Opens path read-only, distinguishing a missing/unreadable file, a file that
 * is not HDF5 at all and an HDF5 file HDF5 refuses to open (truncated). */
hid_t ip_h5_open_ro(const char *path, ip_err *e) {
    ip_h5_detail_buf db;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ip_fail(e, "cannot open the file: %s", strerror(errno));
    struct stat st;
    int ok = fstat(fd, &st) == 0;
    close(fd);
    if (ok && S_ISDIR(st.st_mode)) return ip_fail(e, "cannot open the file: it is a directory");
    if (ok && st.st_size == 0) return ip_fail(e, "not a valid HDF5 file (it is empty)");
    htri_t is = H5Fis_hdf5(path);
    if (is == 0) return ip_fail(e, "not a valid HDF5 file (no HDF5 signature: corrupt, or another kind of file)");
    hid_t fapl = ip_h5_make_fapl(0);
    if (fapl < 0) return ip_fail(e, "cannot set up HDF5 file access%s", ip_h5_detail(&db));
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl); /* also when H5Fis_hdf5 itself failed */
    if (f < 0)
        ip_fail(e, "not a valid HDF5 file (truncated or corrupt)%s", ip_h5_detail(&db));
    H5Pclose(fapl);
    return f < 0 ? -1 : f;
}

/* Reads a scalar or 1-D numeric attribute of exactly n values (n == 0: scalar). */
int ip_h5_attr_read_num(hid_t loc, const char *where, const char *name, hid_t mtype, H5T_class_t want, int n,
                         void *out, ip_err *e) {
    ip_h5_detail_buf db;
    htri_t ex = H5Aexists(loc, name);
    if (ex <= 0) return ip_fail(e, "missing attribute %s%s", where, name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    int rc = -1;
    if (a < 0 || t < 0 || sp < 0) {
        ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
        goto done;
    }
    if (H5Tget_class(t) != want) {
        ip_fail(e, "attribute %s%s has the wrong type (expected %s)", where, name,
                want == H5T_INTEGER ? "integer" : "float");
        goto done;
    }
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    if (np != (n == 0 ? 1 : n)) {
        ip_fail(e, "attribute %s%s has %lld values, expected %d", where, name, (long long)np, n == 0 ? 1 : n);
        goto done;
    }
    if (H5Aread(a, mtype, out) < 0) {
        ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
        goto done;
    }
    rc = 0;
done:
    ip_h5_close(sp);
    ip_h5_close(t);
    ip_h5_close(a);
    return rc;
}

/* Reads a scalar string attribute, variable or fixed length, into out (cap bytes). */
int ip_h5_attr_read_str(hid_t loc, const char *where, const char *name, char *out, size_t cap, ip_err *e) {
    ip_h5_detail_buf db;
    htri_t ex = H5Aexists(loc, name);
    if (ex <= 0) return ip_fail(e, "missing attribute %s%s", where, name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hid_t mt = -1;
    char *buf = NULL;
    int rc = -1;
    if (a < 0 || t < 0 || sp < 0) {
        ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
        goto done;
    }
    if (H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        ip_fail(e, "attribute %s%s is not a single string", where, name);
        goto done;
    }
    htri_t vl = H5Tis_variable_str(t);
    if (vl < 0 || (mt = H5Tcopy(t)) < 0) {
        ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
        goto done;
    }
    const char *s;
    if (vl > 0) {
        if (H5Aread(a, mt, &buf) < 0) {
            ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
            goto done;
        }
        s = buf ? buf : "";
    } else {
        size_t sz = H5Tget_size(t);
        buf = calloc(sz + 1, 1);
        if (!buf || H5Aread(a, mt, buf) < 0) {
            free(buf);
            buf = NULL;
            ip_fail(e, "cannot read attribute %s%s%s", where, name, ip_h5_detail(&db));
            goto done;
        }
        s = buf;
    }
    if (strlen(s) >= cap) ip_fail(e, "attribute %s%s is longer than %zu characters", where, name, cap - 1);
    else snprintf(out, cap, "%s", s), rc = 0;
    if (vl > 0) H5free_memory(buf);
    else free(buf);
done:
    ip_h5_close(mt);
    ip_h5_close(sp);
    ip_h5_close(t);
    ip_h5_close(a);
    return rc;
}

static void format_shape(char *out, size_t cap, int ndim, const hsize_t *dims) {
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
    if (n < cap) snprintf(out + n, cap - n, ")");
}

htri_t ip_h5_path_exists(hid_t f, const char *path) {
    /* H5Lexists fails (rather than saying no) when a group on the way is missing: check each level */
    char prefix[512];
    size_t plen = strlen(path);
    if (path[0] != '/' || plen >= sizeof prefix) return -1;
    htri_t ex = 1;
    for (size_t k = 1; k <= plen && ex > 0; k++) {
        if (path[k] != '/' && path[k] != 0) continue;
        memcpy(prefix, path, k);
        prefix[k] = 0;
        ex = H5Lexists(f, prefix, H5P_DEFAULT);
    }
    return ex;
}

/* Opens dataset dpath (absolute), or fails naming it: missing, or unreadable. */
static hid_t open_dataset(hid_t f, const char *dpath, ip_err *e) {
    ip_h5_detail_buf db;
    htri_t ex = ip_h5_path_exists(f, dpath);
    if (ex < 0) return ip_fail(e, "cannot look up %s%s", dpath, ip_h5_detail(&db));
    if (ex == 0) return ip_fail(e, "missing %s", dpath);
    hid_t d = H5Dopen2(f, dpath, H5P_DEFAULT);
    if (d < 0) return ip_fail(e, "cannot open %s%s", dpath, ip_h5_detail(&db));
    return d;
}

int ip_h5_dataset_dims(hid_t f, const char *dpath, int maxdim, int *ndim, hsize_t *dims, ip_err *e) {
    ip_h5_detail_buf db;
    hid_t d = open_dataset(f, dpath, e);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int rc = -1;
    if (nd < 0) ip_fail(e, "cannot read the shape of %s%s", dpath, ip_h5_detail(&db));
    else if (nd > maxdim) ip_fail(e, "%s has %d dimensions, expected at most %d", dpath, nd, maxdim);
    else if (H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        ip_fail(e, "cannot read the shape of %s%s", dpath, ip_h5_detail(&db));
    else *ndim = nd, rc = 0;
    ip_h5_close(sp);
    ip_h5_close(d);
    return rc;
}

int ip_h5_check_stored(hid_t d, const char *dpath, size_t bytes, ip_err *e) {
    hsize_t have = H5Dget_storage_size(d);
    if (have >= (hsize_t)bytes) return 0;
    return ip_fail(e, "%s stores %llu bytes but its shape claims %zu: truncated, sparse or not written by ipsweep",
                   dpath, (unsigned long long)have, bytes);
}

/* Reads dataset dpath (absolute) with exactly the given shape into dst. */
int ip_h5_read_dataset(hid_t f, const char *dpath, int ndim, const int *shape, hid_t mtype, H5T_class_t want,
                       void *dst, ip_err *e) {
    ip_h5_detail_buf db;
    hid_t d = open_dataset(f, dpath, e);
    if (d < 0) return -1;
    hid_t t = H5Dget_type(d);
    hid_t sp = H5Dget_space(d);
    int rc = -1;
    if (t < 0 || sp < 0) {
        ip_fail(e, "cannot open %s%s", dpath, ip_h5_detail(&db));
        goto done;
    }
    if (H5Tget_class(t) != want) {
        ip_fail(e, "%s has the wrong type (expected %s)", dpath, want == H5T_FLOAT ? "float" : "integer");
        goto done;
    }
    int fnd = H5Sget_simple_extent_ndims(sp);
    hsize_t fdims[H5S_MAX_RANK], mdims[4];
    if (fnd < 0 || fnd > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, fdims, NULL) < 0) {
        ip_fail(e, "cannot read the shape of %s%s", dpath, ip_h5_detail(&db));
        goto done;
    }
    int same = fnd == ndim;
    for (int i = 0; i < ndim; i++) {
        mdims[i] = (hsize_t)shape[i];
        if (same && fdims[i] != mdims[i]) same = 0;
    }
    if (!same) {
        char fs[128], ms[128];
        format_shape(fs, sizeof fs, fnd, fdims);
        format_shape(ms, sizeof ms, ndim, mdims);
        ip_fail(e, "%s: shape %s in file, model expects %s", dpath, fs, ms);
        goto done;
    }
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)shape[i];
    if (numel > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        ip_fail(e, "reading %s failed (corrupt file?)%s", dpath, ip_h5_detail(&db));
        goto done;
    }
    rc = 0;
done:
    ip_h5_close(sp);
    ip_h5_close(t);
    ip_h5_close(d);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Atomic write                                                              */

int ip_h5_write_atomic(const char *path, hid_t fcpl, const char *verb, ip_h5_fill fill, const void *user,
                       ip_err *e) {
    ip_h5_detail_buf db;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    char *dir = malloc(plen + 2);
    if (!tmp || !dir) {
        free(tmp), free(dir);
        return ip_fail(e, "%s %s: out of memory", verb, path);
    }
    memcpy(tmp, path, plen);
    snprintf(tmp + plen, 32, ".tmp.%ld", (long)getpid());
    if (ip_dir_of(path, dir, plen + 2) != 0) memcpy(dir, ".", 2); /* cannot happen: dir has room for path */

    int rc = -1, created = 0;
    hid_t fapl = ip_h5_make_fapl(1), f = -1;
    if (fapl < 0 || fcpl < 0) {
        ip_fail(e, "%s %s: cannot set up HDF5 file access%s", verb, path, ip_h5_detail(&db));
        goto done;
    }
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    if (f < 0) {
        int err = errno;
        struct stat st;
        if (stat(dir, &st) != 0) ip_fail(e, "%s %s: directory %s: %s", verb, path, dir, strerror(errno));
        else ip_fail(e, "%s %s: cannot create %s: %s%s", verb, path, tmp, strerror(err), ip_h5_detail(&db));
        goto done;
    }
    created = 1;
    if (fill(f, user, e) != 0) {
        ip_failctx(e, "%s %s", verb, path);
        goto done;
    }
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) {
        ip_fail(e, "%s %s: flushing %s failed%s", verb, path, tmp, ip_h5_detail(&db));
        goto done;
    }
    herr_t cr = H5Fclose(f);
    f = -1;
    if (cr < 0) {
        ip_fail(e, "%s %s: closing %s failed%s", verb, path, tmp, ip_h5_detail(&db));
        goto done;
    }
    created = 0; /* ip_commit_tmp removes it on failure */
    if (ip_commit_tmp(tmp, path, verb, e) != 0) goto done;
    rc = 0;
done:
    if (f >= 0) H5Fclose(f);
    if (created) unlink(tmp);
    ip_h5_close(fapl);
    free(tmp);
    free(dir);
    return rc;
}
