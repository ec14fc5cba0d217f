/* HDF5 helpers shared by core/ckpt.c and runner/results.c (h5util.h). */
#include "h5util.h"

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
/* Atomic write                                                              */

static int fsync_path(const char *path, int directory) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some filesystems cannot sync directories: not an error */
    if (rc != 0 && directory && (errno == EINVAL || errno == ENOTSUP)) rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

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
    /* the directory to fsync after the rename */
    const char *slash = strrchr(path, '/');
    size_t dlen = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (dlen) memcpy(dir, path, dlen), dir[dlen] = 0;
    else memcpy(dir, ".", 2);

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
    if (fsync_path(tmp, 0) != 0) {
        ip_fail(e, "%s %s: fsync of %s failed: %s", verb, path, tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        ip_fail(e, "%s %s: rename from %s failed: %s", verb, path, tmp, strerror(errno));
        goto done;
    }
    created = 0;
    if (fsync_path(dir, 1) != 0) {
        ip_fail(e, "%s %s: the file is in place but fsync of directory %s failed: %s", verb, path, dir,
                strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (f >= 0) H5Fclose(f);
    if (created) unlink(tmp);
    ip_h5_close(fapl);
    free(tmp);
    free(dir);
    return rc;
}
