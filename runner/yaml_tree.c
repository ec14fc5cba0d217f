/* YAML text -> yt_doc tree with libyaml's event parser (see yaml_tree.h). */
#include "yaml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

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

int yt_map_is_dup(const yt_doc *d, int map, int p) {
    const yt_node *m = &d->v[map];
    int k = m->kids[2 * p];
    if (d->v[k].type != YT_SCALAR) return 0;
    for (int q = 0; q < p; q++)
        if (key_is(d, m->kids[2 * q], d->v[k].text)) return 1;
    return 0;
}

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
    }
    free(d->v);
    memset(d, 0, sizeof *d);
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
            if (parser.error == YAML_READER_ERROR) { /* no mark: the reader reports a byte offset */
                line = 0;
                col = 0;
            }
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
