/* The run journal (journal.h, format in docs/results.md).
 *
 * Line format: TAB-separated fields, the last one being the CRC32 (zlib) of
 * everything before that last TAB, as 8 lowercase hex digits, then '\n':
 *   H  ipsweep-journal  <version>  <spec hash, 16 hex>
 *   S  <key>  <rank>  <attempt>
 *   F  <key>  <status>  <rank>  <wall>  <attempts>  <error>
 *      <nscalars> (<name> <value>)*  <narrays> (<name> <n> <v v v ...>)*
 * Text fields escape '\\', TAB, LF and CR as \\ \t \n \r; doubles are %.17g
 * (exact round trip; "nan", "-nan", "inf", "-inf" included). */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#define MAGIC "ipsweep-journal"

/* ------------------------------------------------------------------------- */
/* records                                                                   */

void rn_record_init(rn_record *r) {
    memset(r, 0, sizeof *r); /* includes ip_metrics_init's work: records are big, zero them once */
    r->rank = -1;
    r->wall_seconds = NAN;
}

/* Frees the arrays only (the record is dropped afterwards). */
static void record_release(rn_record *r) {
    for (int i = 0; i < r->metrics.narrays && i < IP_METRICS_MAX_ARRAYS; i++) free(r->metrics.arrays[i].v);
}

void rn_record_free(rn_record *r) {
    if (!r) return;
    record_release(r);
    rn_record_init(r);
}

int rn_record_copy(rn_record *dst, const rn_record *src, ip_err *e) {
    memcpy(dst, src, offsetof(rn_record, metrics));
    ip_metrics *m = &dst->metrics;
    ip_metrics_init(m);
    m->nscalars = src->metrics.nscalars;
    memcpy(m->names, src->metrics.names, sizeof m->names);
    memcpy(m->values, src->metrics.values, sizeof m->values);
    for (int i = 0; i < src->metrics.narrays; i++) {
        const ip_metric_array *a = &src->metrics.arrays[i];
        double *v = malloc((a->n ? a->n : 1) * sizeof *v);
        if (!v) {
            ip_metrics_free(m);
            return ip_fail(e, "out of memory copying metric array %s (%zu values)", a->name, a->n);
        }
        if (a->n) memcpy(v, a->v, a->n * sizeof *v);
        memcpy(m->arrays[i].name, a->name, sizeof a->name);
        m->arrays[i].v = v;
        m->arrays[i].n = a->n;
        m->narrays = i + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* hashing, paths                                                            */

uint64_t rn_journal_hash_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s) {
    return rn_journal_hash_bytes(h, s ? s : "", (s ? strlen(s) : 0) + 1); /* with the NUL: unambiguous */
}

static uint64_t hash_int(uint64_t h, long long v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    return rn_journal_hash_bytes(h, b, (size_t)n + 1);
}

/* The settings beyond the task list that every result depends on, as the
 * journal's "D" line records them (one home: the hash, the line and the
 * explanation of a refused resume all use this list). */
#define RN_NSETTINGS 4
static const char *const setting_names[RN_NSETTINGS] = {"seed", "data.source", "data.train_limit", "data.test_limit"};

static void settings_of(const rn_spec *s, char v[RN_NSETTINGS][1100]) {
    snprintf(v[0], sizeof v[0], "%llu", (unsigned long long)s->seed);
    snprintf(v[1], sizeof v[1], "%s", s->data_source);
    snprintf(v[2], sizeof v[2], "%zu", s->train_limit);
    snprintf(v[3], sizeof v[3], "%zu", s->test_limit);
}

uint64_t rn_journal_spec_hash(const rn_spec *s) {
    uint64_t h = RN_HASH_INIT;
    h = hash_str(h, "ipsweep-spec-2");
    h = hash_str(h, s->text);
    h = hash_str(h, s->name);
    h = hash_int(h, (long long)s->seed);
    /* the effective settings (after --set): the spec text alone does not have the overrides */
    char v[RN_NSETTINGS][1100];
    settings_of(s, v);
    for (int i = 0; i < RN_NSETTINGS; i++) h = hash_str(h, v[i]);
    h = hash_int(h, s->ntasks);
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        h = hash_str(h, t->key);
        h = hash_str(h, t->kind);
        h = hash_str(h, t->name);
        h = hash_int(h, t->nparams);
        for (int k = 0; k < t->nparams; k++) {
            h = hash_str(h, t->params[k].name);
            h = hash_str(h, t->params[k].value);
            h = hash_int(h, t->params[k].swept);
        }
        h = hash_int(h, t->ndeps);
        for (int k = 0; k < t->ndeps; k++) h = hash_int(h, t->deps[k]);
    }
    return h;
}

int rn_journal_path(char *out, size_t cap, const char *output) {
    int n = snprintf(out, cap, "%s.journal", output);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static uint64_t key_hash(const char *key) {
    uint64_t h = rn_journal_hash_bytes(RN_HASH_INIT, key, strlen(key));
    return h ? h : 1;
}

/* ------------------------------------------------------------------------- */
/* numbers are always written and read in the C locale, whatever LC_NUMERIC  */
/* the process runs with (the journal may be resumed elsewhere)              */

typedef struct numloc {
    locale_t old;
    int set;
} numloc;

static void numloc_enter(numloc *n) {
    static locale_t c; /* created once, kept for the process's lifetime */
    if (!c) c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    n->set = c != (locale_t)0;
    if (n->set) n->old = uselocale(c);
}

static void numloc_leave(const numloc *n) {
    if (n->set) uselocale(n->old);
}

/* ------------------------------------------------------------------------- */
/* line building                                                             */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static int sb_reserve(sbuf *b, size_t extra) {
    if (b->oom) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + extra + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) return b->oom = 1, -1;
    b->p = np;
    b->cap = nc;
    return 0;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (sb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void sb_ch(sbuf *b, char c) {
    if (sb_reserve(b, 1)) return;
    b->p[b->len++] = c;
}

static void sb_esc(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (sb_reserve(b, 2 * n)) return;
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\\': *o++ = '\\', *o++ = '\\'; break;
        case '\t': *o++ = '\\', *o++ = 't'; break;
        case '\n': *o++ = '\\', *o++ = 'n'; break;
        case '\r': *o++ = '\\', *o++ = 'r'; break;
        default: *o++ = c;
        }
    }
    b->len = (size_t)(o - b->p);
}

static void sb_int(sbuf *b, long long v) {
    if (sb_reserve(b, 24)) return;
    b->len += (size_t)snprintf(b->p + b->len, 24, "%lld", v);
}

/* %.17g: every finite double round-trips exactly through strtod. */
static void sb_dbl(sbuf *b, double v) {
    if (sb_reserve(b, 32)) return;
    int n;
    if (isnan(v)) n = snprintf(b->p + b->len, 32, "%s", signbit(v) ? "-nan" : "nan");
    else if (isinf(v)) n = snprintf(b->p + b->len, 32, "%s", v < 0 ? "-inf" : "inf");
    else n = snprintf(b->p + b->len, 32, "%.17g", v);
    b->len += (size_t)n;
}

/* Appends "\t<crc>\n" for the payload that starts at `start`. */
static void sb_end_line(sbuf *b, size_t start) {
    if (sb_reserve(b, 10)) return;
    uLong c = crc32(0L, (const Bytef *)(b->p + start), (uInt)(b->len - start));
    b->len += (size_t)snprintf(b->p + b->len, 11, "\t%08lx\n", (unsigned long)(c & 0xffffffffUL));
}

static int valid_status(rn_status s) { return s == RN_DONE || s == RN_FAILED || s == RN_SKIPPED; }

static void put_finish(sbuf *b, const rn_record *r, int attempts) {
    size_t start = b->len;
    sb_put(b, "F\t", 2);
    sb_esc(b, r->key);
    sb_ch(b, '\t');
    sb_esc(b, rn_status_name(r->status));
    sb_ch(b, '\t');
    sb_int(b, r->rank);
    sb_ch(b, '\t');
    sb_dbl(b, r->wall_seconds);
    sb_ch(b, '\t');
    sb_int(b, attempts);
    sb_ch(b, '\t');
    sb_esc(b, r->error);
    const ip_metrics *m = &r->metrics;
    sb_ch(b, '\t');
    sb_int(b, m->nscalars);
    for (int i = 0; i < m->nscalars; i++) {
        sb_ch(b, '\t');
        sb_esc(b, m->names[i]);
        sb_ch(b, '\t');
        sb_dbl(b, m->values[i]);
    }
    sb_ch(b, '\t');
    sb_int(b, m->narrays);
    for (int i = 0; i < m->narrays; i++) {
        const ip_metric_array *a = &m->arrays[i];
        sb_ch(b, '\t');
        sb_esc(b, a->name);
        sb_ch(b, '\t');
        sb_int(b, (long long)a->n);
        sb_ch(b, '\t');
        if (sb_reserve(b, a->n * 26)) return;
        for (size_t k = 0; k < a->n; k++) {
            if (k) b->p[b->len++] = ' ';
            sb_dbl(b, a->v[k]);
        }
    }
    sb_end_line(b, start);
}

/* ------------------------------------------------------------------------- */
/* start counts of an open journal                                           */

static int starts_add(rn_journal *j, uint64_t h, int *count) {
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
    *count = ++j->starts[k].starts;
    return 0;
}

int rn_journal_attempts(const rn_journal *j, const char *key) {
    if (!j->capstarts) return 0;
    uint64_t h = key_hash(key);
    size_t k = (size_t)h & (j->capstarts - 1);
    while (j->starts[k].h) {
        if (j->starts[k].h == h) return j->starts[k].starts;
        k = (k + 1) & (j->capstarts - 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* low-level I/O                                                             */

static int write_all(int fd, const char *p, size_t n) {
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

static int fsync_dir_of(const char *path) {
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

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Appends the buffer's n bytes as complete lines; sync=1: fdatasync'ed
 * (subject to the group-commit interval). On failure the file is cut back
 * to its previous length. */
static int append_lines(rn_journal *j, const char *p, size_t n, int sync, ip_err *e) {
    if (j->fd < 0) return ip_fail(e, "journal %s is not open", j->path);
    int err = 0;
    const char *what = "writing";
    if (write_all(j->fd, p, n) != 0) err = errno;
    else {
        j->dirty = 1;
        double now = sync ? mono_s() : 0;
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

/* Reads a whole file into a NUL-terminated buffer. */
static int slurp(int fd, char **out, size_t *len) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = malloc(cap);
    if (!b) return errno = ENOMEM, -1;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) return free(b), errno = ENOMEM, -1;
            b = nb, cap *= 2;
        }
        ssize_t r = pread(fd, b + n, cap - 1 - n, (off_t)n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int sv = errno;
            free(b);
            errno = sv;
            return -1;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* parsing                                                                   */

/* Checks "<payload>\t<8 hex>" (no '\n'); returns the payload length or -1. */
static long line_payload(const char *s, size_t n) {
    if (n < 10 || s[n - 9] != '\t') return -1;
    uLong want = 0;
    for (size_t i = n - 8; i < n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0) return -1;
        want = want * 16 + (uLong)v;
    }
    uLong got = crc32(0L, (const Bytef *)s, (uInt)(n - 9)) & 0xffffffffUL;
    return got == want ? (long)(n - 9) : -1;
}

/* Splits a NUL-terminated payload at TABs in place. */
typedef struct fields {
    char *cur;
    int ok;
} fields;

static char *next_field(fields *f) {
    if (!f->cur) return f->ok = 0, NULL;
    char *s = f->cur;
    char *t = strchr(s, '\t');
    if (t) *t = 0, f->cur = t + 1;
    else f->cur = NULL;
    return s;
}

/* In-place unescape; -1 on a bad escape. */
static int unescape(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        p++;
        switch (*p) {
        case '\\': *o++ = '\\'; break;
        case 't': *o++ = '\t'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        default: return -1;
        }
    }
    *o = 0;
    return 0;
}

static int text_field(fields *f, char *out, size_t cap) {
    char *s = next_field(f);
    if (!s || unescape(s) != 0 || strlen(s) >= cap) return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int int_field(fields *f, long long lo, long long hi, long long *out) {
    char *s = next_field(f), *end;
    if (!s || !*s) return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_dbl(const char *s, char **end, double *out) {
    if (!*s || *s == ' ') return -1;
    *out = strtod(s, end);
    return *end == s ? -1 : 0;
}

static int dbl_field(fields *f, double *out) {
    char *s = next_field(f), *end;
    if (!s || parse_dbl(s, &end, out) != 0 || *end) return -1;
    return 0;
}

static int status_parse(const char *s, rn_status *st) {
    for (int k = RN_DONE; k <= RN_SKIPPED; k++)
        if (strcmp(s, rn_status_name((rn_status)k)) == 0) return *st = (rn_status)k, 0;
    return -1;
}

/* Parses the fields after "F" into r (initialised here; freed on failure). */
static int parse_finish(fields *f, rn_record *r) {
    rn_record_init(r);
    char st[16];
    long long v;
    if (text_field(f, r->key, sizeof r->key) || text_field(f, st, sizeof st) || status_parse(st, &r->status))
        goto bad;
    if (int_field(f, -1, INT_MAX, &v)) goto bad;
    r->rank = (int)v;
    if (dbl_field(f, &r->wall_seconds) || int_field(f, 0, INT_MAX, &v)) goto bad;
    r->attempts = (int)v;
    if (text_field(f, r->error, sizeof r->error)) goto bad;
    ip_metrics *m = &r->metrics;
    if (int_field(f, 0, IP_METRICS_MAX_SCALARS, &v)) goto bad;
    m->nscalars = (int)v;
    for (int i = 0; i < m->nscalars; i++)
        if (text_field(f, m->names[i], IP_METRIC_NAME_LEN) || dbl_field(f, &m->values[i])) goto bad;
    long long na;
    if (int_field(f, 0, IP_METRICS_MAX_ARRAYS, &na)) goto bad;
    for (int i = 0; i < (int)na; i++) {
        ip_metric_array *a = &m->arrays[i];
        long long n;
        if (text_field(f, a->name, sizeof a->name) || int_field(f, 0, LLONG_MAX / 16, &n)) goto bad;
        char *s = next_field(f);
        if (!s) goto bad;
        /* n values take at least 2n-1 characters: a crafted count never allocates more than the line holds */
        if ((unsigned long long)n > (strlen(s) + 1) / 2) goto bad;
        a->v = malloc((n ? (size_t)n : 1) * sizeof *a->v);
        if (!a->v) goto bad;
        a->n = (size_t)n;
        m->narrays = i + 1;
        for (long long k = 0; k < n; k++) {
            char *end;
            if (k && *s++ != ' ') goto bad;
            if (parse_dbl(s, &end, &a->v[k])) goto bad;
            s = end;
        }
        if (*s) goto bad;
    }
    if (f->cur) goto bad; /* trailing fields */
    return 0;
bad:
    rn_record_free(r);
    return -1;
}

/* Per valid line after the header: payload (NUL-terminated, modifiable). */
typedef int (*line_fn)(void *ctx, char *payload, long lineno, ip_err *e);

static int header_prefix_ok(const char *s, size_t n) {
    static const char hdr[] = "H\t" MAGIC "\t";
    size_t k = n < sizeof hdr - 1 ? n : sizeof hdr - 1;
    return memcmp(s, hdr, k) == 0;
}

/* Walks the lines of buf: the header must match spec_hash; fn gets every
 * other valid line. A bad line followed only by bad/torn bytes is a torn
 * tail (*valid_end stops before it, *torn = 1); followed by a valid line it
 * is an error. */
static int scan(char *buf, size_t len, const char *path, uint64_t spec_hash, line_fn fn, void *ctx,
                size_t *valid_end, int *torn, ip_err *e) {
    size_t pos = 0;
    long lineno = 0;
    *valid_end = 0;
    *torn = 0;
    while (pos < len) {
        lineno++;
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        long pl = nl ? line_payload(buf + pos, n) : -1;
        if (pl < 0) {
            if (lineno == 1 && !header_prefix_ok(buf, n))
                return ip_fail(e, "%s: line 1: not an ipsweep journal (bad first line)", path), RN_JOURNAL_BAD;
            /* torn tail, unless a valid line follows */
            size_t q = nl ? (size_t)(nl - buf) + 1 : len;
            while (q < len) {
                char *nl2 = memchr(buf + q, '\n', len - q);
                if (!nl2) break;
                if (line_payload(buf + q, (size_t)(nl2 - (buf + q))) >= 0)
                    return ip_fail(e, "%s: line %ld is corrupt (bad checksum or cut short) and is followed by valid "
                                   "lines: the journal is damaged",
                                   path, lineno), RN_JOURNAL_BAD;
                q = (size_t)(nl2 - buf) + 1;
            }
            *torn = 1;
            return 0;
        }
        char *p = buf + pos;
        p[pl] = 0;
        if (lineno == 1) {
            fields f = {p, 1};
            char *t = next_field(&f), *magic = next_field(&f), *ver = next_field(&f), *hh = next_field(&f);
            if (!t || strcmp(t, "H") || !magic || strcmp(magic, MAGIC) || !ver || !hh || f.cur)
                return ip_fail(e, "%s: line 1: not an ipsweep journal (bad header)", path), RN_JOURNAL_BAD;
            if (atoi(ver) != RN_JOURNAL_VERSION)
                return ip_fail(e, "%s: line 1: journal version %.20s; this ipsweep reads version %d", path, ver,
                               RN_JOURNAL_VERSION), RN_JOURNAL_BAD;
            char *end;
            errno = 0;
            unsigned long long h = strtoull(hh, &end, 16);
            if (errno || *end || strlen(hh) != 16) return ip_fail(e, "%s: line 1: bad spec hash in the header", path), RN_JOURNAL_BAD;
            if (h != spec_hash)
                return ip_fail(e,
                               "%s: line 1: written for a different spec or other settings (hash %016llx, this spec has %016llx): "
                               "refusing to resume; rerun with --force to start over",
                               path, h, (unsigned long long)spec_hash), RN_JOURNAL_BAD;
        } else {
            if (p[0] == 'H') return ip_fail(e, "%s: line %ld: unexpected second header", path, lineno), RN_JOURNAL_BAD;
            int rc = fn ? fn(ctx, p, lineno, e) : 0;
            if (rc != 0) return rc;
        }
        pos += n + 1;
        *valid_end = pos;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* open / write / close                                                      */

static int count_start(void *ctx, char *p, long lineno, ip_err *e) {
    rn_journal *j = ctx;
    if (p[0] != 'S') return 0;
    fields f = {p, 1};
    char key[RN_KEY_LEN];
    next_field(&f);
    if (text_field(&f, key, sizeof key))
        return ip_fail(e, "%s: line %ld: bad start record", j->path, lineno), RN_JOURNAL_BAD;
    int c;
    if (starts_add(j, key_hash(key), &c)) return ip_fail(e, "out of memory reading %s", j->path);
    return 0;
}

static int write_header(rn_journal *j, ip_err *e) {
    sbuf b = {j->buf, 0, j->cap, 0};
    sb_put(&b, "H\t" MAGIC "\t", sizeof MAGIC + 2);
    sb_int(&b, RN_JOURNAL_VERSION);
    char h[24];
    snprintf(h, sizeof h, "\t%016llx", (unsigned long long)j->spec_hash);
    sb_put(&b, h, strlen(h));
    sb_end_line(&b, 0);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    if (append_lines(j, b.p, b.len, 1, e)) return -1;
    if (fsync_dir_of(j->path) != 0) return ip_fail(e, "syncing the directory of %s: %s", j->path, strerror(errno));
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
    if (slurp(j->fd, &buf, &len) != 0) {
        ip_fail(e, "cannot read journal %s: %s", j->path, strerror(errno));
        goto fail;
    }
    int rc = scan(buf, len, j->path, spec_hash, count_start, j, &valid, &torn, e);
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
    if (starts_add(j, key_hash(key), &attempt)) return ip_fail(e, "out of memory");
    sbuf b = {j->buf, 0, j->cap, 0};
    sb_put(&b, "S\t", 2);
    sb_esc(&b, key);
    sb_ch(&b, '\t');
    sb_int(&b, rank);
    sb_ch(&b, '\t');
    sb_int(&b, attempt);
    if (!alone) sb_put(&b, "\tshared", 7);
    sb_end_line(&b, 0);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    return append_lines(j, b.p, b.len, 0, e);
}

int rn_journal_finish_many(rn_journal *j, const rn_record *const *recs, int n, ip_err *e) {
    if (n <= 0) return 0;
    sbuf b = {j->buf, 0, j->cap, 0};
    numloc nl;
    numloc_enter(&nl);
    for (int i = 0; i < n; i++) {
        const rn_record *r = recs[i];
        int bad = 0;
        if (!valid_status(r->status))
            bad = ip_fail(e, "journal: task %.200s has status %s, not a finished one", r->key,
                          rn_status_name(r->status));
        else if (strnlen(r->key, RN_KEY_LEN) >= RN_KEY_LEN || strnlen(r->error, sizeof r->error) >= sizeof r->error ||
                 r->metrics.nscalars < 0 || r->metrics.nscalars > IP_METRICS_MAX_SCALARS || r->metrics.narrays < 0 ||
                 r->metrics.narrays > IP_METRICS_MAX_ARRAYS)
            bad = ip_fail(e, "journal: malformed record for task %.64s", r->key);
        if (bad) {
            numloc_leave(&nl);
            j->buf = b.p, j->cap = b.cap;
            return -1;
        }
        put_finish(&b, r, r->attempts > 0 ? r->attempts : rn_journal_attempts(j, r->key));
    }
    numloc_leave(&nl);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory formatting %d journal records", n);
    return append_lines(j, b.p, b.len, 1, e);
}

int rn_journal_finish(rn_journal *j, const rn_record *r, ip_err *e) { return rn_journal_finish_many(j, &r, 1, e); }

void rn_journal_set_sync_interval(rn_journal *j, double seconds) { j->sync_interval = seconds > 0 ? seconds : 0; }

int rn_journal_sync(rn_journal *j, ip_err *e) {
    if (j->fd < 0) return ip_fail(e, "journal %s is not open", j->path);
    if (!j->dirty) return 0;
    if (fdatasync(j->fd) != 0) return ip_fail(e, "syncing journal %s failed: %s", j->path, strerror(errno));
    j->dirty = 0;
    j->last_sync = mono_s();
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

/* ------------------------------------------------------------------------- */
/* reading                                                                   */

typedef struct entry {
    char key[RN_KEY_LEN];
    int starts, alone, last_rank;
    int rec;                     /* index in recs, -1 */
} entry;

static entry *entries(const rn_journal_state *st) { return st->entries; }

static int index_find(const rn_journal_state *st, const char *key) {
    if (!st->index_cap) return -1;
    size_t k = (size_t)key_hash(key) & (st->index_cap - 1);
    while (st->index[k]) {
        int i = st->index[k] - 1;
        if (strcmp(entries(st)[i].key, key) == 0) return i;
        k = (k + 1) & (st->index_cap - 1);
    }
    return -1;
}

static int index_put(rn_journal_state *st, const char *key, int i) {
    if (2 * ((size_t)st->nentries + 1) > st->index_cap) {
        size_t nc = st->index_cap ? 2 * st->index_cap : 1024;
        int *ni = calloc(nc, sizeof *ni);
        if (!ni) return -1;
        for (int k = 0; k < st->nentries; k++) {
            size_t s = (size_t)key_hash(entries(st)[k].key) & (nc - 1);
            while (ni[s]) s = (s + 1) & (nc - 1);
            ni[s] = k + 1;
        }
        free(st->index);
        st->index = ni;
        st->index_cap = nc;
    }
    size_t s = (size_t)key_hash(key) & (st->index_cap - 1);
    while (st->index[s]) s = (s + 1) & (st->index_cap - 1);
    st->index[s] = i + 1;
    return 0;
}

/* The entry of key, created when absent; -1 on OOM. */
static int entry_get(rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    if (i >= 0) return i;
    if (st->nentries == st->capentries) {
        int nc = st->capentries ? 2 * st->capentries : 256;
        entry *ne = realloc(st->entries, (size_t)nc * sizeof *ne);
        if (!ne) return -1;
        st->entries = ne;
        st->capentries = nc;
    }
    i = st->nentries;
    entry *en = &entries(st)[i];
    snprintf(en->key, sizeof en->key, "%s", key);
    en->starts = 0, en->alone = 0, en->last_rank = -1, en->rec = -1;
    /* the index is sized for nentries + 1 before the entry is counted */
    if (index_put(st, key, i)) return -1;
    st->nentries++;
    return i;
}

/* Room for one more record at st->recs[st->nrecs]. */
static int recs_reserve(rn_journal_state *st, int *cap) {
    if (st->nrecs < *cap) return 0;
    int nc = *cap ? 2 * *cap : 64;
    rn_record *nr = realloc(st->recs, (size_t)nc * sizeof *nr);
    if (!nr) return -1;
    st->recs = nr;
    *cap = nc;
    return 0;
}

typedef struct read_ctx {
    rn_journal_state *st;
    const char *path;
    int reccap;
} read_ctx;

static int read_line(void *vctx, char *p, long lineno, ip_err *e) {
    read_ctx *c = vctx;
    rn_journal_state *st = c->st;
    fields f = {p, 1};
    char *type = next_field(&f);
    if (strcmp(type, "S") == 0) {
        char key[RN_KEY_LEN];
        long long rank, attempt;
        if (text_field(&f, key, sizeof key) || int_field(&f, -1, INT_MAX, &rank) ||
            int_field(&f, 0, INT_MAX, &attempt))
            return ip_fail(e, "%s: line %ld: malformed start record", c->path, lineno), RN_JOURNAL_BAD;
        /* optional last field "shared" (older journals: every start counts as alone) */
        int shared = f.cur != NULL;
        if (shared && (strcmp(next_field(&f), "shared") != 0 || f.cur))
            return ip_fail(e, "%s: line %ld: malformed start record", c->path, lineno), RN_JOURNAL_BAD;
        int i = entry_get(st, key);
        if (i < 0) return ip_fail(e, "out of memory reading %s", c->path);
        entries(st)[i].starts++;
        entries(st)[i].alone += !shared;
        entries(st)[i].last_rank = (int)rank;
        return 0;
    }
    if (strcmp(type, "F") == 0) {
        /* parsed in place at the end of recs (records are big: no copies) */
        if (recs_reserve(st, &c->reccap)) return ip_fail(e, "out of memory reading %s", c->path);
        rn_record *r = &st->recs[st->nrecs];
        if (parse_finish(&f, r))
            return ip_fail(e, "%s: line %ld: malformed finish record", c->path, lineno), RN_JOURNAL_BAD;
        int i = entry_get(st, r->key);
        if (i < 0) {
            rn_record_free(r);
            return ip_fail(e, "out of memory reading %s", c->path);
        }
        entry *en = &entries(st)[i];
        if (en->rec >= 0) { /* the last record wins */
            record_release(&st->recs[en->rec]);
            memcpy(&st->recs[en->rec], r, sizeof *r);
            return 0;
        }
        en->rec = st->nrecs++;
        return 0;
    }
    if (strcmp(type, "D") == 0) { /* the settings: checked through the hash, read by rn_journal_explain_change */
        while (f.cur) {
            char name[64], value[1100];
            if (text_field(&f, name, sizeof name) || text_field(&f, value, sizeof value))
                return ip_fail(e, "%s: line %ld: malformed settings record", c->path, lineno), RN_JOURNAL_BAD;
        }
        return 0;
    }
    return ip_fail(e, "%s: line %ld: unknown record type \"%.8s\"", c->path, lineno, type), RN_JOURNAL_BAD;
}

static int build_unfinished(rn_journal_state *st) {
    free(st->unfinished);
    st->unfinished = NULL;
    st->nunfinished = 0;
    int n = 0;
    for (int i = 0; i < st->nentries; i++) n += entries(st)[i].rec < 0 && entries(st)[i].starts > 0;
    if (!n) return 0;
    st->unfinished = malloc((size_t)n * sizeof *st->unfinished);
    if (!st->unfinished) return -1;
    for (int i = 0; i < st->nentries; i++) {
        const entry *en = &entries(st)[i];
        if (en->rec >= 0 || en->starts <= 0) continue;
        rn_unfinished *u = &st->unfinished[st->nunfinished++];
        memcpy(u->key, en->key, sizeof u->key);
        u->starts = en->starts;
        u->alone = en->alone;
        u->last_rank = en->last_rank;
    }
    return 0;
}

void rn_journal_state_free(rn_journal_state *st) {
    if (!st) return;
    for (int i = 0; i < st->nrecs; i++) record_release(&st->recs[i]);
    free(st->recs);
    free(st->unfinished);
    free(st->index);
    free(st->entries);
    memset(st, 0, sizeof *st);
}

int rn_journal_read(const char *output, uint64_t spec_hash, rn_journal_state *st, ip_err *e) {
    memset(st, 0, sizeof *st);
    char path[1100];
    if (!output || rn_journal_path(path, sizeof path, output)) return ip_fail(e, "results path too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ip_fail(e, "cannot open journal %s: %s", path, strerror(errno));
    char *buf;
    size_t len, valid;
    int rc = slurp(fd, &buf, &len);
    int sv = errno;
    close(fd);
    if (rc) return ip_fail(e, "cannot read journal %s: %s", path, strerror(sv));
    read_ctx c = {st, path, 0};
    int torn;
    numloc nl;
    numloc_enter(&nl);
    rc = scan(buf, len, path, spec_hash, read_line, &c, &valid, &torn, e);
    numloc_leave(&nl);
    free(buf);
    if (rc == 0 && build_unfinished(st)) rc = ip_fail(e, "out of memory reading %s", path);
    if (rc) {
        rn_journal_state_free(st);
        return rc < 0 ? rc : -1;
    }
    st->torn = torn;
    st->valid_bytes = (long long)valid;
    return 0;
}

const rn_record *rn_journal_state_find(const rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    return i >= 0 && entries(st)[i].rec >= 0 ? &st->recs[entries(st)[i].rec] : NULL;
}

int rn_journal_state_starts(const rn_journal_state *st, const char *key) {
    int i = index_find(st, key);
    return i >= 0 ? entries(st)[i].starts : 0;
}

int rn_journal_fail_crashed(rn_journal *j, rn_journal_state *st, ip_err *e) {
    int n = 0;
    for (int i = 0; i < st->nunfinished; i++) n += st->unfinished[i].alone >= RN_CRASH_LIMIT;
    if (!n) return 0;
    rn_record *tmp = calloc((size_t)n, sizeof *tmp);
    const rn_record **ptr = calloc((size_t)n, sizeof *ptr);
    int rc = -1;
    if (!tmp || !ptr) {
        ip_fail(e, "out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < st->nunfinished; i++) {
        const rn_unfinished *u = &st->unfinished[i];
        if (u->alone < RN_CRASH_LIMIT) continue;
        rn_record_init(&tmp[k]);
        memcpy(tmp[k].key, u->key, sizeof u->key);
        tmp[k].status = RN_FAILED;
        tmp[k].rank = u->last_rank;
        tmp[k].attempts = u->starts;
        snprintf(tmp[k].error, sizeof tmp[k].error, "%s", RN_CRASH_ERROR);
        ptr[k] = &tmp[k];
        k++;
    }
    if (rn_journal_finish_many(j, ptr, n, e)) goto done;
    /* grow recs to hold them, then move them in */
    rn_record *nr = realloc(st->recs, (size_t)(st->nrecs + n) * sizeof *nr);
    if (!nr) {
        ip_fail(e, "out of memory");
        goto done;
    }
    st->recs = nr;
    for (k = 0; k < n; k++) {
        int i = index_find(st, tmp[k].key);
        if (i < 0) continue; /* cannot happen: unfinished keys have entries */
        st->recs[st->nrecs] = tmp[k];
        entries(st)[i].rec = st->nrecs++;
    }
    if (build_unfinished(st)) {
        ip_fail(e, "out of memory");
        goto done;
    }
    rc = n;
done:
    free(tmp); /* no arrays in these records */
    free(ptr);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* settings                                                                  */

int rn_journal_note_settings(rn_journal *j, const rn_spec *spec, ip_err *e) {
    char v[RN_NSETTINGS][1100];
    settings_of(spec, v);
    sbuf b = {j->buf, 0, j->cap, 0};
    sb_put(&b, "D", 1);
    for (int i = 0; i < RN_NSETTINGS; i++) {
        sb_ch(&b, '\t');
        sb_esc(&b, setting_names[i]);
        sb_ch(&b, '\t');
        sb_esc(&b, v[i]);
    }
    sb_end_line(&b, 0);
    j->buf = b.p, j->cap = b.cap;
    if (b.oom) return ip_fail(e, "out of memory");
    return append_lines(j, b.p, b.len, 1, e);
}

int rn_journal_explain_change(const char *output, const rn_spec *spec, char *msg, size_t cap) {
    char path[1100];
    if (!output || rn_journal_path(path, sizeof path, output)) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char *buf;
    size_t len;
    int rc = slurp(fd, &buf, &len);
    close(fd);
    if (rc) return 0;
    char v[RN_NSETTINGS][1100];
    settings_of(spec, v);
    int found = 0;
    size_t used = 0;
    if (cap) msg[0] = 0;
    for (size_t pos = 0; pos < len;) { /* the first valid "D" line */
        char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) break;
        size_t n = (size_t)(nl - (buf + pos));
        long pl = line_payload(buf + pos, n);
        char *p = buf + pos;
        pos += n + 1;
        if (pl < 2 || p[0] != 'D' || p[1] != '\t') continue;
        p[pl] = 0;
        fields f = {p + 2, 1};
        while (f.cur) { /* every setting that changed, "; "-separated */
            char name[64], was[1100];
            if (text_field(&f, name, sizeof name) || text_field(&f, was, sizeof was)) break;
            for (int i = 0; i < RN_NSETTINGS; i++)
                if (strcmp(name, setting_names[i]) == 0 && strcmp(was, v[i]) != 0 && used < cap) {
                    int n = snprintf(msg + used, cap - used, "%s%s is %.300s but the run was started with %.300s",
                                     found ? "; " : "", name, v[i], was);
                    used = n < 0 ? cap : used + (size_t)n;
                    found = 1;
                }
        }
        break;
    }
    free(buf);
    return found;
}
