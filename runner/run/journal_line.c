/* The journal's line format (format in docs/results.md; private API in
 * journal_impl.h): records, building and parsing lines, the CRC, the walk
 * over a journal's lines that the reader, the writer, the settings and
 * compaction share.
 *
 * Line format: TAB-separated fields, the last one being the CRC32 (zlib) of
 * everything before that last TAB, as 8 lowercase hex digits, then '\n':
 *   H  ipsweep-journal  <version>  <spec hash, 16 hex>
 *   D  (<setting> <value>)*
 *   S  <key>  <rank>  <attempt>  [shared]
 *   C  <key>  <starts>  <alone>  <last rank>          (version 2: compaction)
 *   I  <key>  <rank>     (its run stopped on request and saved its state:
 *                         the starts before it are not crashes)
 *   F  <key>  <status>  <rank>  <wall>  <attempts>  <error>
 *      <nscalars> (<name> <value>)*  <narrays> (<name> <n> <v v v ...>)*
 * Text fields escape '\\', TAB, LF and CR as \\ \t \n \r; doubles are %.17g
 * (exact round trip; "nan", "-nan", "inf", "-inf" included). */
#include "journal_impl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

/* ------------------------------------------------------------------------- */
/* records                                                                   */

void rn_record_init(rn_record *r) {
    memset(r, 0, sizeof *r); /* includes ip_metrics_init's work: records are big, zero them once */
    r->rank = -1;
    r->wall_seconds = NAN;
}

/* Frees what the record owns (its metrics); the record is dropped or overwritten afterwards. */
void jn_record_release(rn_record *r) { ip_metrics_free(&r->metrics); }

void rn_record_free(rn_record *r) {
    if (!r) return;
    jn_record_release(r);
    rn_record_init(r);
}

int rn_record_copy(rn_record *dst, const rn_record *src, ip_err *e) {
    memcpy(dst, src, offsetof(rn_record, metrics));
    return ip_metrics_copy(&dst->metrics, &src->metrics, e);
}

/* ------------------------------------------------------------------------- */
/* numbers are always written and read in the C locale, whatever LC_NUMERIC  */
/* the process runs with (the journal may be resumed elsewhere)              */

void jn_numloc_enter(numloc *n) {
    static locale_t c; /* created once, kept for the process's lifetime */
    if (!c) c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    n->set = c != (locale_t)0;
    if (n->set) n->old = uselocale(c);
}

void jn_numloc_leave(const numloc *n) {
    if (n->set) uselocale(n->old);
}

/* ------------------------------------------------------------------------- */
/* line building                                                             */




void jn_sb_esc(sbuf *b, const char *s) {
    size_t n = strlen(s);
    if (ip_strbuf_reserve(b, 2 * n)) return;
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

void jn_sb_int(sbuf *b, long long v) {
    if (ip_strbuf_reserve(b, 24)) return;
    b->len += (size_t)snprintf(b->p + b->len, 24, "%lld", v);
}

/* %.17g: every finite double round-trips exactly through strtod. */
static void sb_dbl(sbuf *b, double v) {
    if (ip_strbuf_reserve(b, 32)) return;
    int n;
    if (isnan(v)) n = snprintf(b->p + b->len, 32, "%s", signbit(v) ? "-nan" : "nan");
    else if (isinf(v)) n = snprintf(b->p + b->len, 32, "%s", v < 0 ? "-inf" : "inf");
    else n = snprintf(b->p + b->len, 32, "%.17g", v);
    b->len += (size_t)n;
}

/* Appends "\t<crc>\n" for the payload that starts at `start`. */
void jn_sb_end_line(sbuf *b, size_t start) {
    if (ip_strbuf_reserve(b, 10)) return;
    uLong c = crc32(0L, (const Bytef *)(b->p + start), (uInt)(b->len - start));
    b->len += (size_t)snprintf(b->p + b->len, 11, "\t%08lx\n", (unsigned long)(c & 0xffffffffUL));
}

int jn_valid_status(rn_status s) { return s == RN_DONE || s == RN_FAILED || s == RN_SKIPPED; }

void jn_put_finish(sbuf *b, const rn_record *r, int attempts) {
    size_t start = b->len;
    ip_strbuf_put(b, "F\t", 2);
    jn_sb_esc(b, r->key);
    ip_strbuf_ch(b, '\t');
    jn_sb_esc(b, rn_status_name(r->status));
    ip_strbuf_ch(b, '\t');
    jn_sb_int(b, r->rank);
    ip_strbuf_ch(b, '\t');
    sb_dbl(b, r->wall_seconds);
    ip_strbuf_ch(b, '\t');
    jn_sb_int(b, attempts);
    ip_strbuf_ch(b, '\t');
    jn_sb_esc(b, r->error);
    const ip_metrics *m = &r->metrics;
    ip_strbuf_ch(b, '\t');
    jn_sb_int(b, m->nscalars);
    for (int i = 0; i < m->nscalars; i++) {
        ip_strbuf_ch(b, '\t');
        jn_sb_esc(b, m->names[i]);
        ip_strbuf_ch(b, '\t');
        sb_dbl(b, m->values[i]);
    }
    ip_strbuf_ch(b, '\t');
    jn_sb_int(b, m->narrays);
    for (int i = 0; i < m->narrays; i++) {
        const ip_metric_array *a = &m->arrays[i];
        ip_strbuf_ch(b, '\t');
        jn_sb_esc(b, a->name);
        ip_strbuf_ch(b, '\t');
        jn_sb_int(b, (long long)a->n);
        ip_strbuf_ch(b, '\t');
        if (ip_strbuf_reserve(b, a->n * 26)) return;
        for (size_t k = 0; k < a->n; k++) {
            if (k) b->p[b->len++] = ' ';
            sb_dbl(b, a->v[k]);
        }
    }
    jn_sb_end_line(b, start);
}

/* Reads a whole file into a NUL-terminated buffer. */
int jn_slurp(int fd, char **out, size_t *len) {
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

void jn_put_header(sbuf *b, int version, uint64_t spec_hash) {
    size_t start = b->len;
    ip_strbuf_put(b, "H\t" JN_MAGIC "\t", sizeof JN_MAGIC + 2); /* sizeof counts the NUL */
    jn_sb_int(b, version);
    char h[24];
    snprintf(h, sizeof h, "\t%016llx", (unsigned long long)spec_hash);
    ip_strbuf_put(b, h, strlen(h));
    jn_sb_end_line(b, start);
}

/* ------------------------------------------------------------------------- */
/* parsing                                                                   */

/* Checks "<payload>\t<8 hex>" (no '\n'); returns the payload length or -1. */
long jn_line_payload(const char *s, size_t n) {
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

char *jn_next_field(fields *f) {
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

int jn_text_field(fields *f, char *out, size_t cap) {
    char *s = jn_next_field(f);
    if (!s || unescape(s) != 0 || strlen(s) >= cap) return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

int jn_int_field(fields *f, long long lo, long long hi, long long *out) {
    char *s = jn_next_field(f), *end;
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
    char *s = jn_next_field(f), *end;
    if (!s || parse_dbl(s, &end, out) != 0 || *end) return -1;
    return 0;
}

static int status_parse(const char *s, rn_status *st) {
    for (int k = RN_DONE; k <= RN_SKIPPED; k++)
        if (strcmp(s, rn_status_name((rn_status)k)) == 0) return *st = (rn_status)k, 0;
    return -1;
}

/* Parses the fields after "F" into r (initialised here; freed on failure). */
int jn_parse_finish(fields *f, rn_record *r) {
    rn_record_init(r);
    char st[16];
    long long v;
    if (jn_text_field(f, r->key, sizeof r->key) || jn_text_field(f, st, sizeof st) || status_parse(st, &r->status))
        goto bad;
    if (jn_int_field(f, -1, INT_MAX, &v)) goto bad;
    r->rank = (int)v;
    if (dbl_field(f, &r->wall_seconds) || jn_int_field(f, 0, INT_MAX, &v)) goto bad;
    r->attempts = (int)v;
    if (jn_text_field(f, r->error, sizeof r->error)) goto bad;
    ip_metrics *m = &r->metrics;
    long long ns;
    if (jn_int_field(f, 0, IP_METRICS_MAX_SCALARS, &ns)) goto bad;
    for (int i = 0; i < (int)ns; i++) {
        char name[IP_METRIC_NAME_LEN];
        double x;
        if (jn_text_field(f, name, sizeof name) || dbl_field(f, &x) || ip_metrics_set(m, name, x, NULL)) goto bad;
    }
    if (m->nscalars != (int)ns) goto bad; /* a name twice */
    long long na;
    if (jn_int_field(f, 0, IP_METRICS_MAX_ARRAYS, &na)) goto bad;
    for (int i = 0; i < (int)na; i++) {
        char name[IP_METRIC_NAME_LEN];
        long long n;
        if (jn_text_field(f, name, sizeof name) || jn_int_field(f, 0, LLONG_MAX / 16, &n)) goto bad;
        char *s = jn_next_field(f);
        if (!s) goto bad;
        /* n values take at least 2n-1 characters: a crafted count never allocates more than the line holds */
        if ((unsigned long long)n > (strlen(s) + 1) / 2) goto bad;
        double *vals = malloc((n ? (size_t)n : 1) * sizeof *vals);
        if (!vals) goto bad;
        int bad = 0;
        for (long long k = 0; k < n && !bad; k++) {
            char *end;
            if ((k && *s++ != ' ') || parse_dbl(s, &end, &vals[k])) bad = 1;
            else s = end;
        }
        bad = bad || *s || ip_metrics_set_array(m, name, vals, (size_t)n, NULL) != 0;
        free(vals);
        if (bad || m->narrays != i + 1) goto bad;
    }
    if (f->cur) goto bad; /* trailing fields */
    return 0;
bad:
    rn_record_free(r);
    return -1;
}

static int header_prefix_ok(const char *s, size_t n) {
    static const char hdr[] = "H\t" JN_MAGIC "\t";
    size_t k = n < sizeof hdr - 1 ? n : sizeof hdr - 1;
    return memcmp(s, hdr, k) == 0;
}

int jn_scan(char *buf, size_t len, const char *path, uint64_t spec_hash, line_fn fn, void *ctx, size_t *valid_end,
            int *torn, int *version, ip_err *e) {
    size_t pos = 0;
    long lineno = 0;
    *valid_end = 0;
    *torn = 0;
    while (pos < len) {
        lineno++;
        char *nl = memchr(buf + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        long pl = nl ? jn_line_payload(buf + pos, n) : -1;
        if (pl < 0) {
            if (lineno == 1 && !header_prefix_ok(buf, n))
                return ip_fail(e, "%s: line 1: not an ipsweep journal (bad first line)", path), RN_JOURNAL_BAD;
            /* torn tail, unless a valid line follows */
            size_t q = nl ? (size_t)(nl - buf) + 1 : len;
            while (q < len) {
                char *nl2 = memchr(buf + q, '\n', len - q);
                if (!nl2) break;
                if (jn_line_payload(buf + q, (size_t)(nl2 - (buf + q))) >= 0)
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
            char *t = jn_next_field(&f), *magic = jn_next_field(&f), *ver = jn_next_field(&f), *hh = jn_next_field(&f);
            if (!t || strcmp(t, "H") || !magic || strcmp(magic, JN_MAGIC) || !ver || !hh || f.cur)
                return ip_fail(e, "%s: line 1: not an ipsweep journal (bad header)", path), RN_JOURNAL_BAD;
            int v = atoi(ver);
            if (v < JN_VERSION_PLAIN || v > RN_JOURNAL_VERSION)
                return ip_fail(e, "%s: line 1: journal version %.20s; this ipsweep reads versions %d to %d", path,
                               ver, JN_VERSION_PLAIN, RN_JOURNAL_VERSION), RN_JOURNAL_BAD;
            if (version) *version = v;
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
            int rc = fn ? fn(ctx, p, (size_t)pl, lineno, e) : 0;
            if (rc != 0) return rc;
        }
        pos += n + 1;
        *valid_end = pos;
    }
    return 0;
}


int jn_parse_line(char *p, jn_line *l, rn_record *rec, const char *path, long lineno, ip_err *e) {
    fields f = {p, 1};
    char *type = jn_next_field(&f);
    long long a, b, c;
    l->type = type[0] && !type[1] ? type[0] : 0;
    switch (l->type) {
    case 'S':
        if (jn_text_field(&f, l->key, sizeof l->key) || jn_int_field(&f, -1, INT_MAX, &a) ||
            jn_int_field(&f, 0, INT_MAX, &b))
            break;
        /* optional last field "shared" (older journals: every start counts as alone) */
        int shared = f.cur != NULL;
        if (shared && (strcmp(jn_next_field(&f), "shared") != 0 || f.cur)) break;
        l->rank = (int)a, l->starts = 1, l->alone = !shared;
        return 0;
    case 'I': /* an interruption: resets the key's crash count */
        if (jn_text_field(&f, l->key, sizeof l->key) || jn_int_field(&f, -1, INT_MAX, &a) || f.cur) break;
        l->rank = (int)a, l->starts = 0, l->alone = 0;
        return 0;
    case 'C': /* what compaction folds many starts of one key into */
        if (jn_text_field(&f, l->key, sizeof l->key) || jn_int_field(&f, 1, INT_MAX, &a) ||
            jn_int_field(&f, 0, a, &b) || jn_int_field(&f, -1, INT_MAX, &c) || f.cur)
            break;
        l->starts = (int)a, l->alone = (int)b, l->rank = (int)c;
        return 0;
    case 'F':
        if (jn_parse_finish(&f, rec))
            return ip_fail(e, "%s: line %ld: malformed finish record", path, lineno), RN_JOURNAL_BAD;
        return 0;
    case 'D': /* the settings: checked through the hash, read by rn_journal_explain_change */
        while (f.cur) {
            char name[64], value[1100];
            if (jn_text_field(&f, name, sizeof name) || jn_text_field(&f, value, sizeof value))
                return ip_fail(e, "%s: line %ld: malformed settings record", path, lineno), RN_JOURNAL_BAD;
        }
        return 0;
    default:
        return ip_fail(e, "%s: line %ld: unknown record type \"%.8s\"", path, lineno, type), RN_JOURNAL_BAD;
    }
    return ip_fail(e, "%s: line %ld: malformed %s record", path, lineno,
                   l->type == 'S' ? "start" : l->type == 'I' ? "interruption" : "start-count"),
           RN_JOURNAL_BAD;
}
