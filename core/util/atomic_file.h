/* Files replaced whole: written to "<path>.tmp.<pid>", fsync'ed, renamed over
 * path, the directory fsync'ed. A reader (or a resume after kill -9 or power
 * loss) sees the old file or the complete new one, never a part. The HDF5
 * writer (io/h5util.h) and the task state files (io/state.h) use it. */
#ifndef IP_ATOMIC_FILE_H
#define IP_ATOMIC_FILE_H

#include <stddef.h>

#include "err.h"

/* fsync of a file, or of a directory (directory = 1; a filesystem that
 * cannot sync directories is not an error). 0, or -1 with errno. */
int ip_fsync_path(const char *path, int directory);
/* The directory of path ("." when it has none) into out; -1 when too long. */
int ip_dir_of(const char *path, char *out, size_t cap);
/* 1 when the directory that would hold path exists (an output's check before
 * anything is computed), 0 when it does not or path is too long. */
int ip_parent_dir_exists(const char *path);
/* "<path>.tmp.<pid>" into out; -1 when too long. */
int ip_tmp_path(const char *path, char *out, size_t cap);
/* Commits a complete temporary file: fsync tmp, rename over path, fsync the
 * directory. On failure before the rename tmp is removed. Messages start
 * with "<verb> <path>: ". */
int ip_commit_tmp(const char *tmp, const char *path, const char *verb, ip_err *e);
/* Writes n buffers (parts[i], sizes[i]) as the whole new content of path,
 * atomically as above. */
int ip_write_atomic(const char *path, const char *verb, const void *const *parts, const size_t *sizes, int n,
                    ip_err *e);

/* 1 when both paths exist and name the same file (device and inode): an
 * output that would replace one of its own inputs is refused before. */
int ip_same_file(const char *a, const char *b);

#endif
