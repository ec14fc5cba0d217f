/* Compaction of the open journal at resume (journal.h, docs/results.md):
 * the journal of a run resumed many times keeps only what a resume reads.
 *
 * It drops lines, it never edits a kept one: every kept line is copied byte
 * for byte (its CRC still holds) in its original order. Dropped are the F
 * lines that a later F line of the same task overrides (the last one wins),
 * every D line after the first (only the first is read), and a torn tail.
 * The S lines of a task stay as they are while there are at most
 * KEEP_STARTS of them (as many as the crash-twice rule needs to see; tools
 * and tests count them, and a journal without C lines stays readable by
 * older ipsweep binaries); more are folded into one C line at the place of the first, which
 * carries what the reader takes from them: the number of starts, how many
 * went out alone (the crash-twice rule) and the rank of the last. So the
 * compacted journal holds at most a header, a D line and per task
 * max(KEEP_STARTS S lines, 1 C line) + 1 F line: bounded by the task count,
 * whatever the number of resumes.
 *
 * The new journal is written to "<journal>.compact", fsync'ed, renamed over
 * the journal and the directory fsync'ed: a crash leaves the old journal or
 * the new one, both complete (a stale .compact file is overwritten by the
 * next compaction). */
#include "journal_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/util/proc.h"

#define KEEP_STARTS RN_CRASH_LIMIT
#define FLUSH_BYTES (1 << 20)

/* One task key of the journal. */
typedef struct cent {
    uint64_t h;
    size_t key;          /* offset of its NUL-terminated key in the arena */
    int starts, alone, last_rank;
    int folded;          /* its S/C lines become one C line */
    long first_sc;       /* index (in lines) of its first S or C line, -1 */
    long last_sc, last_i; /* index of its last S or C line, of its last I line, -1 */
    long last_f;         /* index of its last F line, -1 */
} cent;

/* One valid line after the header that may be kept. */
typedef struct cline {
    size_t off;          /* in the journal's bytes */
    size_t len;          /* with the CRC and '\n' */
    int ent;             /* its key's entry; -1 for the D line */
} cline;

typedef struct cctx {
    char *buf;
    const char *path;
    cent *ents;
    int nents, capents;
    int *index;          /* open addressing: entry + 1, 0 = empty */
    size_t icap;
    char *keys;
    size_t nkeys, capkeys;
    cline *lines;
    long nlines, caplines;
    long lines_in;       /* valid lines read, the header included */
    int have_d;
    char *scratch;       /* a payload copy to parse (parsing works in place) */
    size_t capscratch;
    rn_record rec;
} cctx;

static int grow(void **p, size_t elem, size_t need, size_t *cap) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, nc * elem);
    if (!np) return -1;
    *p = np;
    *cap = nc;
    return 0;
}

/* The entry of key, created when absent; -1 on OOM. */
static int ent_get(cctx *c, const char *key) {
    uint64_t h = jn_key_hash(key);
    if (c->icap) {
        for (size_t k = (size_t)h & (c->icap - 1); c->index[k]; k = (k + 1) & (c->icap - 1)) {
            const cent *en = &c->ents[c->index[k] - 1];
            if (en->h == h && strcmp(c->keys + en->key, key) == 0) return c->index[k] - 1;
        }
    }
    if (2 * ((size_t)c->nents + 1) > c->icap) { /* rehash at half full */
        size_t nc = c->icap ? 2 * c->icap : 1024;
        int *ni = calloc(nc, sizeof *ni);
        if (!ni) return -1;
        for (int i = 0; i < c->nents; i++) {
            size_t k = (size_t)c->ents[i].h & (nc - 1);
            while (ni[k]) k = (k + 1) & (nc - 1);
            ni[k] = i + 1;
        }
        free(c->index);
        c->index = ni;
        c->icap = nc;
    }
    size_t kl = strlen(key) + 1, capents = (size_t)c->capents;
    if (grow((void **)&c->keys, 1, c->nkeys + kl, &c->capkeys) ||
        grow((void **)&c->ents, sizeof *c->ents, (size_t)c->nents + 1, &capents))
        return -1;
    c->capents = (int)capents;
    memcpy(c->keys + c->nkeys, key, kl);
    c->ents[c->nents] = (cent){.h = h, .key = c->nkeys, .last_rank = -1, .first_sc = -1, .last_sc = -1, .last_i = -1, .last_f = -1};
    c->nkeys += kl;
    size_t k = (size_t)h & (c->icap - 1);
    while (c->index[k]) k = (k + 1) & (c->icap - 1);
    c->index[k] = c->nents + 1;
    return c->nents++;
}

static int compact_line(void *vctx, char *p, size_t len, long lineno, ip_err *e) {
    cctx *c = vctx;
    c->lines_in++;
    /* parsed on a copy: the bytes in buf are what a kept line is copied from */
    size_t capl = (size_t)c->caplines;
    if (grow((void **)&c->scratch, 1, len + 1, &c->capscratch) ||
        grow((void **)&c->lines, sizeof *c->lines, (size_t)c->nlines + 1, &capl))
        return ip_fail(e, "out of memory compacting %s", c->path);
    c->caplines = (long)capl;
    memcpy(c->scratch, p, len + 1);
    p[len] = '\t'; /* the walk cut the line before its CRC: whole again, to be copied */
    jn_line l;
    int rc = jn_parse_line(c->scratch, &l, &c->rec, c->path, lineno, e);
    if (rc) return rc;
    cline *cl = &c->lines[c->nlines];
    cl->off = (size_t)(p - c->buf);
    cl->len = len + 10; /* "\t<8 hex>\n" */
    cl->ent = -1;
    if (l.type == 'D') {
        if (c->have_d) return 0; /* only the first one is ever read */
        c->have_d = 1;
        c->nlines++;
        return 0;
    }
    int i = ent_get(c, l.type == 'F' ? c->rec.key : l.key);
    if (l.type == 'F') jn_record_release(&c->rec); /* only its key was needed: it was checked */
    if (i < 0) return ip_fail(e, "out of memory compacting %s", c->path);
    cent *en = &c->ents[i];
    cl->ent = i;
    if (l.type == 'F') {
        en->last_f = c->nlines;
    } else if (l.type == 'I') { /* kept in place; folded starts keep only a last one (the C line counts the rest) */
        en->alone = 0;
        en->last_i = c->nlines;
    } else {
        en->last_sc = c->nlines;
        en->starts += l.starts;
        en->alone += l.alone;
        en->last_rank = l.rank;
        en->folded |= l.type == 'C';
        if (en->first_sc < 0) en->first_sc = c->nlines;
    }
    c->nlines++;
    return 0;
}

/* Where the compacted journal goes: counted only (fd < 0) or written in
 * chunks of about FLUSH_BYTES. */
typedef struct out {
    int fd;
    sbuf b;
    long long bytes;
    long lines;
    int err;             /* errno of a failed write */
} out;

static void out_flush(out *o) {
    if (o->fd >= 0 && !o->err && o->b.len && jn_write_all(o->fd, o->b.p, o->b.len) != 0) o->err = errno ? errno : EIO;
    o->b.len = 0;
}

static void out_line(out *o, const char *p, size_t n) {
    o->bytes += (long long)n;
    o->lines++;
    if (o->fd < 0) return;
    ip_strbuf_put(&o->b, p, n);
    if (o->b.len >= FLUSH_BYTES) out_flush(o);
}

/* The compacted journal into o; 1 when it has a C line (version 2). */
static int emit(const cctx *c, uint64_t spec_hash, int version, out *o) {
    sbuf t = {0};
    jn_put_header(&t, version, spec_hash);
    if (!t.oom) out_line(o, t.p, t.len);
    int any_c = 0;
    for (long i = 0; i < c->nlines && !t.oom; i++) {
        const cline *cl = &c->lines[i];
        const cent *en = cl->ent >= 0 ? &c->ents[cl->ent] : NULL;
        const char *raw = c->buf + cl->off;
        if (en && raw[0] == 'F' && en->last_f != i) continue; /* overridden by a later F line */
        if (en && raw[0] == 'I' && en->folded) { /* the C line has its effect, unless it is the last word */
            if (en->last_i == i && en->last_i > en->last_sc) out_line(o, raw, cl->len);
            continue;
        }
        if (en && raw[0] != 'F' && en->folded) {
            if (en->first_sc != i) continue;
            t.len = 0;
            ip_strbuf_put(&t, "C\t", 2);
            jn_sb_esc(&t, c->keys + en->key);
            ip_strbuf_ch(&t, '\t');
            jn_sb_int(&t, en->starts);
            ip_strbuf_ch(&t, '\t');
            jn_sb_int(&t, en->alone);
            ip_strbuf_ch(&t, '\t');
            jn_sb_int(&t, en->last_rank);
            jn_sb_end_line(&t, 0);
            if (!t.oom) out_line(o, t.p, t.len);
            any_c = 1;
            continue;
        }
        out_line(o, raw, cl->len);
    }
    int oom = t.oom || o->b.oom;
    free(t.p);
    if (oom && !o->err) o->err = ENOMEM;
    return any_c;
}

static void cctx_free(cctx *c) {
    free(c->ents);
    free(c->index);
    free(c->keys);
    free(c->lines);
    free(c->scratch);
    free(c->buf);
}

int rn_journal_compact(rn_journal *j, double min_saving, rn_compaction *info, ip_err *e) {
    rn_compaction dummy;
    if (!info) info = &dummy;
    memset(info, 0, sizeof *info);
    if (j->fd < 0) return ip_fail(e, "journal %s is not open", j->path);
    double t0 = ip_now_s();
    cctx c = {.path = j->path};
    rn_record_init(&c.rec);
    size_t len, valid;
    int torn, version, rc = -1, tfd = -1;
    char tmp[sizeof j->path + 16];
    snprintf(tmp, sizeof tmp, "%s.compact", j->path);
    if (jn_slurp(j->fd, &c.buf, &len) != 0) {
        ip_fail(e, "cannot read journal %s: %s", j->path, strerror(errno));
        goto done;
    }
    c.lines_in = 1; /* the header */
    numloc nl;
    jn_numloc_enter(&nl);
    rc = jn_scan(c.buf, len, j->path, j->spec_hash, compact_line, &c, &valid, &torn, &version, e);
    jn_numloc_leave(&nl);
    if (rc) goto done;
    rc = -1;
    if (valid == 0) { /* nothing but a header to be: rn_journal_open writes one */
        rc = 0;
        goto done;
    }
    for (int i = 0; i < c.nents; i++) c.ents[i].folded |= c.ents[i].starts > KEEP_STARTS;
    /* count first: a journal that would barely shrink is left alone */
    out o = {.fd = -1};
    int any_c = emit(&c, j->spec_hash, RN_JOURNAL_VERSION, &o);
    info->bytes_before = (long long)len;
    info->lines_before = c.lines_in;
    info->bytes_after = o.bytes;
    info->lines_after = o.lines;
    if (o.err) {
        ip_fail(e, "out of memory compacting %s", j->path);
        goto done;
    }
    if (min_saving > 0 && (double)o.bytes > (1 - min_saving) * (double)len) {
        info->bytes_after = info->bytes_before, info->lines_after = info->lines_before;
        rc = 0;
        goto done;
    }
    tfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (tfd < 0) {
        ip_fail(e, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    /* locked before it takes the journal's name: a second ipsweep never finds it unlocked */
    int locked = flock(tfd, LOCK_EX | LOCK_NB) == 0;
    struct stat st;
    if (fstat(j->fd, &st) == 0) (void)fchmod(tfd, st.st_mode & 07777); /* the journal's permissions */
    o = (out){.fd = tfd};
    /* version 1 unless a C line is written: older ipsweep binaries can still resume it */
    emit(&c, j->spec_hash, any_c ? RN_JOURNAL_VERSION : JN_VERSION_PLAIN, &o);
    out_flush(&o);
    free(o.b.p);
    if (o.err || fsync(tfd) != 0) {
        ip_fail(e, "writing %s failed: %s", tmp, strerror(o.err ? o.err : errno));
        goto done;
    }
    if (rename(tmp, j->path) != 0) {
        ip_fail(e, "cannot rename %s to %s: %s", tmp, j->path, strerror(errno));
        goto done;
    }
    /* from here on the compacted file is the journal: append to it, whatever happens next */
    if (j->locked) flock(j->fd, LOCK_UN);
    close(j->fd);
    j->fd = tfd;
    j->locked = locked;
    j->size = o.bytes;
    j->dirty = 0;
    tfd = -1;
    info->rewritten = 1;
    if (jn_fsync_dir_of(j->path) != 0) {
        ip_fail(e, "syncing the directory of %s: %s", j->path, strerror(errno));
        goto done;
    }
    rc = 1;
done:
    if (tfd >= 0) {
        close(tfd);
        unlink(tmp);
    }
    (void)torn;
    cctx_free(&c);
    info->seconds = ip_now_s() - t0;
    return rc;
}
