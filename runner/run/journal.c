/* The open run journal (journal.h, format in docs/results.md): create or
 * reopen it, append start and finish lines, sync, close. Reading is in
 * journal_read.c, the line format in journal_line.c. */
#include "journal_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../../core/util/proc.h"

/* ------------------------------------------------------------------------- */
/* start counts of an open journal                                           */

/* Counts n more starts of the key whose hash is h; *count gets its total. */
static int starts_add(rn_journal *j, uint64_t h, int n, int *count) {
    if (2 * (j->nstarts + 1) > j->capstarts) {
        size_t nc = j->capstarts ? 2 * j->capstarts : 1024;
        rn_start_count *nt = calloc(nc, sizeof *nt);
        if (!nt) return -1;
        for (size_t i = 0; i < j->capstarts; i++) {
            if (!j->starts[i].h) continue;
            size_t k = (size_t)j->starts[i].h & (nc - 1);
            while (nt[k].h) k = (k + 1) & (nc - 1);
            nt[k] = j->starts[i];
        }
        free(j->starts);
        j->starts = nt;
        j->capstarts = nc;
    }
    size_t k = (size_t)h & (j->capstarts - 1);
    while (j->starts[k].h && j->starts[k].h != h) k = (k + 1) & (j->capstarts - 1);
    if (!j->starts[k].h) {
        j->starts[k].h = h;
        j->nstarts++;
    }
    *count = j->starts[k].starts += n;
    return 0;
}

int rn_journal_attempts(const rn_journal *j, const char *key) {
    if (!j->capstarts) return 0;
    uint64_t h = jn_key_hash(key);
    size_t k = (size_t)h & (j->capstarts - 1);
    while (j->starts[k].h) {
        if (j->starts[k].h == h) return j->starts[k].starts;
        k = (k + 1) & (j->capstarts - 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* low-level I/O                                                             */

int jn_write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int jn_fsync_dir_of(const char *path) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some filesystems refuse fsync on directories: not an error for us */
    if (rc != 0 && (errno == EINVAL || errno == EROFS || errno == ENOTSUP)) rc = 0;
    close(fd);
    return rc;
}

/* Appends the buffer's n bytes as complete lines; sync=1: fdatasync'ed
 * (subject to the group-commit interval). On failure the file is cut back
 * to its previous length. */
int jn_append_lines(rn_journal *j, const char *p, size_t n, int sync, ip_err *e) {
    if (j->fd < 0) return ip_fail(e, "journal %s is not open", j->path);
    int err = 0;
    const char *what = "writing";
    if (jn_write_all(j->fd, p, n) != 0) err = errno;
    else {
        j->dirty = 1;
        double now = sync ? ip_now_s() : 0;
        if (sync && (j->sync_interval <= 0 || now - j->last_sync >= j->sync_interval)) {
            if (fdatasync(j->fd) != 0) err = errno, what = "syncing";
            else j->dirty = 0, j->last_sync = now;
        }
    }
    if (err) {
        if (ftruncate(j->fd, (off_t)j->size) != 0) { /* best effort; the reader also drops a torn tail */
        }
        return ip_fail(e, "%s journal %s failed: %s", what, j->path, strerror(err));
    }
    j->size += (long long)n;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* open / write / close                                                      */

static int count_start(void *ctx, char *p, size_t len, long lineno, ip_err *e) {
    (void)len;
    rn_journal *j = ctx;
    int c, n = 1;
    char key[RN_KEY_LEN];
    if (p[0] == 'C') { /* many starts of one key, folded by compaction */
        jn_line l;
        int rc = jn_parse_line(p, &l, NULL, j->path, lineno, e);
        if (rc) return rc;
        memcpy(key, l.key, sizeof key);
        n = l.starts;
    } else if (p[0] == 'S') {
        fields f = {p, 1};
        jn_next_field(&f);
        if (jn_text_field(&f, key, sizeof key))
            return ip_fail(e, "%s: line %ld: bad start record", j->path, lineno), RN_JOURNAL_BAD;
    } else {
        return 0;
    }
    if (starts_add(j, jn_key_hash(key), n, &c)) return ip_fail(e, "out of memory reading %s", j->path);
    return 0;
}

static int write_header(rn_journal *j, ip_err *e) {
    sbuf b = {j->buf, 0, j->cap, 0};
    jn_put_header(&b, JN_VERSION_PLAIN, j->spec_hash);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    if (jn_append_lines(j, b.p, b.len, 1, e)) return -1;
    if (jn_fsync_dir_of(j->path) != 0) return ip_fail(e, "syncing the directory of %s: %s", j->path, strerror(errno));
    return 0;
}

int rn_journal_open(rn_journal *j, const char *output, uint64_t spec_hash, int fresh, ip_err *e) {
    memset(j, 0, sizeof *j);
    j->fd = -1;
    j->spec_hash = spec_hash;
    if (!output || !output[0]) return ip_fail(e, "opening the journal: no results path given");
    if (rn_journal_path(j->path, sizeof j->path, output)) return ip_fail(e, "results path too long: %s", output);
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (j->fd < 0) return ip_fail(e, "cannot open journal %s: %s", j->path, strerror(errno));
    if (flock(j->fd, LOCK_EX | LOCK_NB) == 0) j->locked = 1;
    else if (errno == EWOULDBLOCK) {
        ip_fail(e, "journal %s is locked: another ipsweep is writing to %s", j->path, output);
        goto fail;
    } /* else: no flock on this filesystem (some NFS/Lustre setups): go on unlocked */
    if (fresh) {
        if (ftruncate(j->fd, 0) != 0) {
            ip_fail(e, "cannot truncate journal %s: %s", j->path, strerror(errno));
            goto fail;
        }
        if (write_header(j, e)) goto fail;
        return 0;
    }
    char *buf;
    size_t len, valid;
    int torn;
    if (jn_slurp(j->fd, &buf, &len) != 0) {
        ip_fail(e, "cannot read journal %s: %s", j->path, strerror(errno));
        goto fail;
    }
    int rc = jn_scan(buf, len, j->path, spec_hash, count_start, j, &valid, &torn, NULL, e);
    free(buf);
    if (rc) {
        rn_journal_close(j);
        return rc;
    }
    if (valid < len) { /* cut a torn tail so that new lines do not extend it */
        if (ftruncate(j->fd, (off_t)valid) != 0 || fdatasync(j->fd) != 0) {
            ip_fail(e, "cannot cut the torn end of journal %s: %s", j->path, strerror(errno));
            goto fail;
        }
    }
    j->size = (long long)valid;
    if (valid == 0 && write_header(j, e)) goto fail;
    return 0;
fail:
    rn_journal_close(j);
    return -1;
}

int rn_journal_start(rn_journal *j, const char *key, int rank, ip_err *e) {
    return rn_journal_start_shared(j, key, rank, 1, e);
}

int rn_journal_start_shared(rn_journal *j, const char *key, int rank, int alone, ip_err *e) {
    if (strlen(key) >= RN_KEY_LEN) return ip_fail(e, "task key too long: %.64s...", key);
    int attempt;
    if (starts_add(j, jn_key_hash(key), 1, &attempt)) return ip_fail(e, "out of memory");
    sbuf b = {j->buf, 0, j->cap, 0};
    ip_strbuf_put(&b, "S\t", 2);
    jn_sb_esc(&b, key);
    ip_strbuf_ch(&b, '\t');
    jn_sb_int(&b, rank);
    ip_strbuf_ch(&b, '\t');
    jn_sb_int(&b, attempt);
    if (!alone) ip_strbuf_put(&b, "\tshared", 7);
    jn_sb_end_line(&b, 0);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    return jn_append_lines(j, b.p, b.len, 0, e);
}

int rn_journal_interrupted(rn_journal *j, const char *key, int rank, ip_err *e) {
    if (strlen(key) >= RN_KEY_LEN) return ip_fail(e, "task key too long: %.64s...", key);
    sbuf b = {j->buf, 0, j->cap, 0};
    ip_strbuf_put(&b, "I\t", 2);
    jn_sb_esc(&b, key);
    ip_strbuf_ch(&b, '\t');
    jn_sb_int(&b, rank);
    jn_sb_end_line(&b, 0);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    return jn_append_lines(j, b.p, b.len, 1, e);
}

int rn_journal_finish_many(rn_journal *j, const rn_record *const *recs, int n, ip_err *e) {
    if (n <= 0) return 0;
    sbuf b = {j->buf, 0, j->cap, 0};
    numloc nl;
    jn_numloc_enter(&nl);
    for (int i = 0; i < n; i++) {
        const rn_record *r = recs[i];
        int bad = 0;
        if (!jn_valid_status(r->status))
            bad = ip_fail(e, "journal: task %.200s has status %s, not a finished one", r->key,
                          rn_status_name(r->status));
        else if (strnlen(r->key, RN_KEY_LEN) >= RN_KEY_LEN || strnlen(r->error, sizeof r->error) >= sizeof r->error ||
                 r->metrics.nscalars < 0 || r->metrics.nscalars > IP_METRICS_MAX_SCALARS || r->metrics.narrays < 0 ||
                 r->metrics.narrays > IP_METRICS_MAX_ARRAYS)
            bad = ip_fail(e, "journal: malformed record for task %.64s", r->key);
        if (bad) {
            jn_numloc_leave(&nl);
            j->buf = b.p, j->cap = b.cap;
            return -1;
        }
        jn_put_finish(&b, r, r->attempts > 0 ? r->attempts : rn_journal_attempts(j, r->key));
    }
    jn_numloc_leave(&nl);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory formatting %d journal records", n);
    return jn_append_lines(j, b.p, b.len, 1, e);
}

int rn_journal_finish(rn_journal *j, const rn_record *r, ip_err *e) { return rn_journal_finish_many(j, &r, 1, e); }

void rn_journal_set_sync_interval(rn_journal *j, double seconds) { j->sync_interval = seconds > 0 ? seconds : 0; }

int rn_journal_sync(rn_journal *j, ip_err *e) {
    if (j->fd < 0) return ip_fail(e, "journal %s is not open", j->path);
    if (!j->dirty) return 0;
    if (fdatasync(j->fd) != 0) return ip_fail(e, "syncing journal %s failed: %s", j->path, strerror(errno));
    j->dirty = 0;
    j->last_sync = ip_now_s();
    return 0;
}

void rn_journal_close(rn_journal *j) {
    if (!j) return;
    if (j->fd >= 0) {
        if (j->dirty) fdatasync(j->fd);
        if (j->locked) flock(j->fd, LOCK_UN);
        close(j->fd);
    }
    free(j->buf);
    free(j->starts);
    char path[sizeof j->path];
    memcpy(path, j->path, sizeof path);
    memset(j, 0, sizeof *j);
    memcpy(j->path, path, sizeof path);
    j->fd = -1;
}

