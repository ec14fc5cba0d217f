/* HDF5 helpers shared by the checkpoints (core/io/ckpt.c) and the runner's
 * results file (runner/run/results.c): silencing HDF5's automatic error printing,
 * the innermost HDF5 error message for appending to our own messages, closing
 * any HDF5 id, the file access properties, and the atomic write of a whole
 * file ("<path>.tmp.<pid>", flushed, fsync'ed, renamed over <path>, directory
 * fsync'ed: a reader sees the old file or the complete new one, never a
 * partial one). */
#ifndef IP_H5UTIL_H
#define IP_H5UTIL_H

#include <stddef.h>

#include <hdf5.h>

#include "../util/err.h"

/* The automatic error printing saved by ip_h5_quiet_on. */
typedef struct ip_h5_quiet {
    H5E_auto2_t func;
    void *data;
} ip_h5_quiet;

/* Switches HDF5's automatic error printing off (saving the current handler
 * in q); ip_h5_quiet_off restores it. */
void ip_h5_quiet_on(ip_h5_quiet *q);
void ip_h5_quiet_off(const ip_h5_quiet *q);

typedef struct ip_h5_detail_buf {
    char text[200];
} ip_h5_detail_buf;

/* The innermost message on HDF5's error stack ("" when empty), formatted as
 * " (hdf5: ...)" for appending. Must be called right after the failing call. */
const char *ip_h5_detail(ip_h5_detail_buf *b);

/* Closes any HDF5 id (file, group, dataset, attribute, dataspace, datatype,
 * property list); ignores negative ids. */
void ip_h5_close(hid_t id);

/* Writes attribute name on loc: a scalar when n < 0, else 1-D of n values;
 * ftype is the type in the file, mtype the one of data. Returns 0 or -1 (the
 * caller reports, with ip_h5_detail). */
int ip_h5_attr_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int n, const void *data);
/* A scalar 32-bit little-endian integer attribute. */
int ip_h5_attr_i32(hid_t loc, const char *name, int v);

/* A scalar variable-length UTF-8 string attribute (h5py reads it as str). */
int ip_h5_attr_str(hid_t loc, const char *name, const char *v);

/* Dataset name in loc of ndim dims (0 = scalar), stored as one chunk with a
 * Fletcher-32 checksum when it fits in one chunk. Returns 0 or -1. */
int ip_h5_write_dataset(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int ndim, const hsize_t *dims,
                        const void *data);

/* Opens path read-only (ip_h5_make_fapl(0)), telling a missing/unreadable
 * file, a file that is not HDF5 and one HDF5 refuses (truncated) apart.
 * Returns the file id or -1 (e filled). */
hid_t ip_h5_open_ro(const char *path, ip_err *e);

/* Reads a scalar (n == 0) or 1-D numeric attribute of exactly n values of
 * class want into out (memory type mtype); `where` prefixes messages ("/"). */
int ip_h5_attr_read_num(hid_t loc, const char *where, const char *name, hid_t mtype, H5T_class_t want, int n,
                        void *out, ip_err *e);
/* Reads a scalar string attribute (variable or fixed length) into out[cap]. */
int ip_h5_attr_read_str(hid_t loc, const char *where, const char *name, char *out, size_t cap, ip_err *e);

/* Reads the dataset at absolute path dpath, which must have exactly ndim dims
 * equal to shape and type class want, into dst (memory type mtype). Reports
 * the first missing level ("missing /a/b"), a wrong type or shape. */
/* 1 when the absolute path (every level of it) exists in f, 0 when some
 * level does not, -1 on an HDF5 error or a bad path. */
htri_t ip_h5_path_exists(hid_t f, const char *path);
int ip_h5_read_dataset(hid_t f, const char *dpath, int ndim, const int *shape, hid_t mtype, H5T_class_t want,
                       void *dst, ip_err *e);

/* The shape of the dataset at absolute path dpath: *ndim (at most maxdim)
 * and dims. For checking a file's claims (attributes) against what it holds
 * before anything is allocated from them. Returns 0 or -1 (e filled). */
int ip_h5_dataset_dims(hid_t f, const char *dpath, int maxdim, int *ndim, hsize_t *dims, ip_err *e);
/* Fails unless the dataset (an open id; its name in messages) stores at least
 * `bytes` bytes: ipsweep writes its datasets uncompressed, so fewer means a
 * dataset whose extent claims data that is not there (a chunked dataset can
 * claim 2^60 values in a few bytes of file), which must not size an
 * allocation. */
int ip_h5_check_stored(hid_t d, const char *dpath, size_t bytes, ip_err *e);

/* File access properties shared by reading and writing: closing the file
 * closes every object still open in it (error paths), and file locking is
 * used where the filesystem supports it but not required (Lustre, NFS).
 * for_write also pins the HDF5 1.8 file format (checksummed metadata).
 * Returns -1 on failure. */
hid_t ip_h5_make_fapl(int for_write);

/* Writes the whole contents of a freshly created, empty file. Returns 0 or
 * fails through e (the caller adds "<verb> <path>: " in front). */
typedef int (*ip_h5_fill)(hid_t file, const void *user, ip_err *e);

/* Creates "<path>.tmp.<pid>" with the file creation properties fcpl
 * (H5P_DEFAULT, or a list of the caller's; a negative fcpl, i.e. a failed
 * H5Pcreate, is reported as a set-up failure) and ip_h5_make_fapl(1), calls
 * fill, flushes, closes, fsyncs, renames over path and fsyncs the directory;
 * removes the temp file on any error before the rename. `verb` ("saving",
 * "writing") starts every message: "<verb> <path>: ...". fcpl stays the
 * caller's to close. Call with the automatic error printing off
 * (ip_h5_quiet_on). */
int ip_h5_write_atomic(const char *path, hid_t fcpl, const char *verb, ip_h5_fill fill, const void *user,
                       ip_err *e);

#endif
