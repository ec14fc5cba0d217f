/* YAML text -> yt_doc tree with libyaml's event parser (see yaml_tree.h). */
#include "yaml_tree.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static void set_err(yt_error *err, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int new_node(yt_doc *d, yt_type type, const char *text, size_t len, int origin, int line, int col) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 64;
        yt_node *v = realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        d->v = v;
        d->cap = cap;
    }
    char *t = malloc(len + 1);
    if (!t) return -1;
    if (len) memcpy(t, text, len);
    t[len] = '\0';
    yt_node *nd = &d->v[d->n];
    memset(nd, 0, sizeof *nd);
    nd->type = type;
    nd->text = t;
    nd->len = len;
    nd->origin = origin;
    nd->line = line;
    nd->col = col;
    return d->n++;
}

int yt_new_scalar(yt_doc *d, const char *text, int plain, int origin, int line, int col) {
    int id = new_node(d, YT_SCALAR, text, strlen(text), origin, line, col);
    if (id >= 0) d->v[id].plain = plain;
    return id;
}

int yt_new_map(yt_doc *d, int origin, int line, int col) { return new_node(d, YT_MAP, "", 0, origin, line, col); }

int yt_append(yt_doc *d, int parent, int kid) {
    yt_node *p = &d->v[parent];
    if (p->nkids == p->capkids) {
        int cap = p->capkids ? 2 * p->capkids : 8;
        int *k = realloc(p->kids, (size_t)cap * sizeof *k);
        if (!k) return -1;
        p->kids = k;
        p->capkids = cap;
    }
    p->kids[p->nkids++] = kid;
    return 0;
}

static int key_is(const yt_doc *d, int k, const char *key) {
    return d->v[k].type == YT_SCALAR && strcmp(d->v[k].text, key) == 0;
}

int yt_map_find(const yt_doc *d, int map, const char *key) {
    if (map < 0 || d->v[map].type != YT_MAP) return -1;
    const yt_node *m = &d->v[map];
    for (int i = 0; i + 1 < m->nkids; i += 2)
        if (key_is(d, m->kids[i], key)) return i;
    return -1;
}

int yt_map_get(const yt_doc *d, int map, const char *key) {
    int i = yt_map_find(d, map, key);
    return i < 0 ? -1 : d->v[map].kids[i + 1];
}

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* first[] of a map: one pass with an open-addressing hash of the keys. */
static int build_first(yt_doc *d, int map) {
    yt_node *m = &d->v[map];
    int np = m->nkids / 2;
    size_t cap = 16;
    while (cap < 2 * (size_t)np) cap *= 2;
    int *first = malloc(((size_t)np ? (size_t)np : 1) * sizeof *first);
    int *tab = malloc(cap * sizeof *tab);
    if (!first || !tab) {
        free(first);
        free(tab);
        return -1;
    }
    for (size_t i = 0; i < cap; i++) tab[i] = -1;
    for (int p = 0; p < np; p++) {
        int k = m->kids[2 * p];
        first[p] = p;
        if (d->v[k].type != YT_SCALAR) continue;
        size_t h = str_hash(d->v[k].text) & (cap - 1);
        while (tab[h] >= 0 && strcmp(d->v[m->kids[2 * tab[h]]].text, d->v[k].text) != 0) h = (h + 1) & (cap - 1);
        if (tab[h] >= 0) first[p] = tab[h];
        else tab[h] = p;
    }
    free(tab);
    free(m->first);
    m->first = first;
    m->nfirst = np;
    return 0;
}

int yt_map_first(yt_doc *d, int map, int p) {
    yt_node *m = &d->v[map];
    if (m->nfirst != m->nkids / 2 || !m->first) {
        if (build_first(d, map) != 0) { /* out of memory: the pairwise scan */
            int k = m->kids[2 * p];
            if (d->v[k].type != YT_SCALAR) return p;
            for (int q = 0; q < p; q++)
                if (key_is(d, m->kids[2 * q], d->v[k].text)) return q;
            return p;
        }
        m = &d->v[map];
    }
    return m->first[p];
}

int yt_map_is_dup(yt_doc *d, int map, int p) { return yt_map_first(d, map, p) != p; }

int yt_is_null(const yt_doc *d, int node) {
    const yt_node *n = &d->v[node];
    if (n->type != YT_SCALAR || !n->plain) return 0;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

const char *yt_type_name(const yt_doc *d, int node) {
    switch (d->v[node].type) {
    case YT_SEQ: return "a list";
    case YT_MAP: return "a mapping";
    default: return "a scalar";
    }
}

void yt_free(yt_doc *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->v[i].text);
        free(d->v[i].kids);
        free(d->v[i].first);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* ----------------------------------------------------------- encoding --- */

/* A UTF-8 continuation byte counts in no column: columns are characters, as in libyaml's marks. */
void yt_offset_pos(const char *text, size_t len, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    if (off > len) off = len;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= len || text[i + 1] != '\n'))) {
            if (l < INT32_MAX) l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80 && c < INT32_MAX) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* UTF-16/32 text read as bytes: a BOM, or NULs in every other (or every
 * fourth) byte of the start, as ASCII text encoded that way has. */
static const char *wide_encoding(const unsigned char *t, size_t len) {
    if (len >= 4 && ((t[0] == 0 && t[1] == 0 && t[2] == 0xFE && t[3] == 0xFF) ||
                     (t[0] == 0xFF && t[1] == 0xFE && t[2] == 0 && t[3] == 0)))
        return "UTF-32";
    if (len >= 2 && ((t[0] == 0xFF && t[1] == 0xFE) || (t[0] == 0xFE && t[1] == 0xFF))) return "UTF-16";
    size_t n = len < 64 ? len & ~(size_t)3 : 64, nul[4] = {0, 0, 0, 0};
    if (n < 4) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!t[i]) nul[i & 3]++;
    size_t q = n / 4; /* characters of UTF-32 in the sample */
    /* ASCII as UTF-32: three NULs in every four bytes (LE: bytes 1-3, BE: 0-2) */
    if ((nul[1] == q && nul[2] == q && nul[3] == q) || (nul[0] == q && nul[1] == q && nul[2] == q)) return "UTF-32";
    size_t even = nul[0] + nul[2], odd = nul[1] + nul[3];
    /* as UTF-16: a NUL in one byte of most pairs, never in the other */
    if ((t[0] == 0 || t[1] == 0) && (even == 0 || odd == 0) && 4 * (even + odd) >= n) return "UTF-16";
    return NULL;
}

int yt_check_text(const char *text, size_t len, yt_error *err) {
    const unsigned char *t = (const unsigned char *)text;
    memset(err, 0, sizeof *err);
    const char *wide = wide_encoding(t, len);
    if (wide) {
        set_err(err, 1, 1, "the spec is encoded as %s, which is not supported: save it as UTF-8", wide);
        return -1;
    }
    for (size_t i = 0; i < len;) {
        unsigned char b = t[i];
        if (b < 0x80) {
            if (b == 0) {
                int line, col;
                yt_offset_pos(text, len, i, &line, &col);
                set_err(err, line, col, "the spec contains a NUL byte (is it a text file?)");
                return -1;
            }
            i++;
            continue;
        }
        /* the shortest form only (no overlong encodings), no surrogates, at most U+10FFFF */
        size_t n = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
        if (b == 0xE0) lo = 0xA0;
        else if (b == 0xED) hi = 0x9F;
        else if (b == 0xF0) lo = 0x90;
        else if (b == 0xF4) hi = 0x8F;
        int ok = n > 0 && i + n <= len && t[i + 1] >= lo && t[i + 1] <= hi;
        for (size_t j = 2; ok && j < n; j++) ok = (t[i + j] & 0xC0) == 0x80;
        if (!ok) {
            int line, col;
            yt_offset_pos(text, len, i, &line, &col);
            set_err(err, line, col, "invalid UTF-8 (byte 0x%02X starts no valid character: overlong forms and surrogates are invalid too); the spec must be UTF-8 text", b);
            return -1;
        }
        i += n;
    }
    return 0;
}

/* ------------------------------------------------------------- parser --- */

typedef struct anchor {
    char *name;
    int node;
} anchor;

typedef struct pstate {
    yt_doc *d;
    int origin;
    int stack[YT_MAX_DEPTH];
    char *stack_anchor[YT_MAX_DEPTH];
    int depth;
    anchor *anchors;
    int nanchors, capanchors;
    int root;
} pstate;

static int add_anchor(pstate *p, const char *name, int node) {
    if (!name) return 0;
    if (p->nanchors == p->capanchors) {
        int cap = p->capanchors ? 2 * p->capanchors : 8;
        anchor *a = realloc(p->anchors, (size_t)cap * sizeof *a);
        if (!a) return -1;
        p->anchors = a;
        p->capanchors = cap;
    }
    char *s = strdup(name);
    if (!s) return -1;
    p->anchors[p->nanchors].name = s;
    p->anchors[p->nanchors].node = node;
    p->nanchors++;
    return 0;
}

static int find_anchor(const pstate *p, const char *name) {
    for (int i = p->nanchors - 1; i >= 0; i--) /* a redefined anchor: the latest wins */
        if (strcmp(p->anchors[i].name, name) == 0) return p->anchors[i].node;
    return -1;
}

/* Attaches a finished (or opened) node to the open collection, or makes it the root. */
static int attach(pstate *p, int node) {
    if (p->depth == 0) {
        p->root = node;
        return 0;
    }
    return yt_append(p->d, p->stack[p->depth - 1], node);
}

static void set_err(yt_error *err, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set_err(yt_error *err, int line, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->line = line;
    err->col = col;
}

int yt_parse(yt_doc *d, const char *text, size_t len, int origin, int *root, yt_error *err) {
    yaml_parser_t parser;
    yaml_event_t ev;
    pstate p = {.d = d, .origin = origin, .root = -1};
    int rc = -1, ndocs = 0, done = 0;
    memset(err, 0, sizeof *err);
    *root = -1;
    if (!yaml_parser_initialize(&parser)) {
        set_err(err, 0, 0, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            const char *problem = parser.problem ? parser.problem : "unknown problem";
            int line = (int)parser.problem_mark.line + 1, col = (int)parser.problem_mark.column + 1;
            if (parser.error == YAML_READER_ERROR) /* no mark: the reader reports a byte offset */
                yt_offset_pos(text, len, parser.problem_offset, &line, &col);
            if (parser.context) {
                char ctx[200];
                snprintf(ctx, sizeof ctx, "%s at line %d, column %d", parser.context,
                         (int)parser.context_mark.line + 1, (int)parser.context_mark.column + 1);
                set_err(err, line, col, "YAML syntax error: %s (%s)", problem, ctx);
            } else {
                set_err(err, line, col, "YAML syntax error: %s", problem);
            }
            goto out;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        int fail = 0;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                set_err(err, line, col, "a spec is one YAML document, found a second one (\"---\")");
                fail = 1;
            }
            break;
        case YAML_SCALAR_EVENT: {
            int id = new_node(d, YT_SCALAR, (const char *)ev.data.scalar.value, ev.data.scalar.length, origin, line,
                              col);
            if (id < 0 || attach(&p, id) != 0 || add_anchor(&p, (const char *)ev.data.scalar.anchor, id) != 0) {
                set_err(err, line, col, "out of memory");
                fail = 1;
                break;
            }
            d->v[id].plain = ev.data.scalar.plain_implicit && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            if (p.depth >= YT_MAX_DEPTH) {
                set_err(err, line, col, "YAML nested more than 64 levels deep");
                fail = 1;
                break;
            }
            int seq = ev.type == YAML_SEQUENCE_START_EVENT;
            const char *an =
                (const char *)(seq ? ev.data.sequence_start.anchor : ev.data.mapping_start.anchor);
            int id = new_node(d, seq ? YT_SEQ : YT_MAP, "", 0, origin, line, col);
            char *a = an ? strdup(an) : NULL;
            if (id < 0 || attach(&p, id) != 0 || (an && !a)) {
                free(a);
                set_err(err, line, col, "out of memory");
                fail = 1;
                break;
            }
            /* the anchor becomes usable when the collection ends: no self-referencing trees */
            p.stack_anchor[p.depth] = a;
            p.stack[p.depth++] = id;
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            p.depth--;
            char *a = p.stack_anchor[p.depth];
            p.stack_anchor[p.depth] = NULL;
            int r = add_anchor(&p, a, p.stack[p.depth]);
            free(a);
            if (r != 0) {
                set_err(err, line, col, "out of memory");
                fail = 1;
            }
            break;
        }
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            int id = find_anchor(&p, name);
            if (id < 0) {
                set_err(err, line, col, "unknown or unfinished anchor \"*%s\"", name);
                fail = 1;
            } else if (attach(&p, id) != 0) {
                set_err(err, line, col, "out of memory");
                fail = 1;
            }
            break;
        }
        default: break;
        }
        yaml_event_delete(&ev);
        if (fail) goto out;
    }
    *root = p.root;
    rc = 0;
out:
    for (int i = 0; i < p.depth; i++) free(p.stack_anchor[i]);
    for (int i = 0; i < p.nanchors; i++) free(p.anchors[i].name);
    free(p.anchors);
    yaml_parser_delete(&parser);
    return rc;
}
