/* Files replaced whole (atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ip_fsync_path(const char *path, int directory) {
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

int ip_dir_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t dlen = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (dlen == 0) return snprintf(out, cap, ".") >= (int)cap ? -1 : 0;
    if (dlen >= cap) return -1;
    memcpy(out, path, dlen);
    out[dlen] = 0;
    return 0;
}

int ip_parent_dir_exists(const char *path) {
    char dir[4096];
    struct stat st;
    return ip_dir_of(path, dir, sizeof dir) == 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int ip_tmp_path(const char *path, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s.tmp.%ld", path, (long)getpid());
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int ip_commit_tmp(const char *tmp, const char *path, const char *verb, ip_err *e) {
    char dir[4096];
    if (ip_dir_of(path, dir, sizeof dir) != 0) {
        unlink(tmp);
        return ip_fail(e, "%s %s: the path is too long", verb, path);
    }
    if (ip_fsync_path(tmp, 0) != 0) {
        ip_fail(e, "%s %s: fsync of %s failed: %s", verb, path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        ip_fail(e, "%s %s: rename from %s failed: %s", verb, path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (ip_fsync_path(dir, 1) != 0)
        return ip_fail(e, "%s %s: the file is in place but fsync of directory %s failed: %s", verb, path, dir,
                       strerror(errno));
    return 0;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w, n -= (size_t)w;
    }
    return 0;
}

int ip_write_atomic(const char *path, const char *verb, const void *const *parts, const size_t *sizes, int n,
                    ip_err *e) {
    char tmp[4200];
    if (ip_tmp_path(path, tmp, sizeof tmp) != 0) return ip_fail(e, "%s %s: the path is too long", verb, path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ip_fail(e, "%s %s: cannot create %s: %s", verb, path, tmp, strerror(errno));
    for (int i = 0; i < n; i++)
        if (sizes[i] && write_all(fd, parts[i], sizes[i]) != 0) {
            ip_fail(e, "%s %s: writing %s failed: %s", verb, path, tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
    if (close(fd) != 0) {
        ip_fail(e, "%s %s: closing %s failed: %s", verb, path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return ip_commit_tmp(tmp, path, verb, e);
}

int ip_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
