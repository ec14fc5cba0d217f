/* The loader's plumbing: diagnostics with their locations, the per-load pool, string sets. */
#include "spec_impl.h"

void sfmt(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}



void did_you_mean(char *out, size_t cap, const char *word, const char *const *cands, int n) {
    const char *s = rn_suggest(word, cands, n);
    if (s) sfmt(out, cap, " (did you mean \"%s\"?)", s);
    else out[0] = '\0';
}


void rn_diags_free(rn_diags *d) {
    free(d->v);
    memset(d, 0, sizeof *d);
}

void rn_diags_print(const rn_diags *d, FILE *f) {
    for (int i = 0; i < d->n; i++) {
        const rn_diag *g = &d->v[i];
        if (g->line > 0) fprintf(f, "%s:%d:%d: ", g->file, g->line, g->column);
        else fprintf(f, "%s: ", g->file);
        if (g->origin[0]) fprintf(f, "%s: ", g->origin);
        if (g->path[0] && !(g->origin[0] && !strcmp(g->path, "--set"))) fprintf(f, "%s: ", g->path);
        fprintf(f, "%s\n", g->msg);
    }
}

int rn_override_parse(rn_override *o, const char *arg) {
    memset(o, 0, sizeof *o);
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return -1;
    size_t pl = (size_t)(eq - arg), vl = strlen(eq + 1);
    if (pl >= sizeof o->path || vl >= sizeof o->value) return -1;
    memcpy(o->path, arg, pl);
    memcpy(o->value, eq + 1, vl + 1);
    return 0;
}


void *palloc(ctx *c, size_t n) {
    if (c->oom) return NULL;
    if (c->npool == c->cappool) {
        int cap = c->cappool ? 2 * c->cappool : 256;
        void **v = realloc(c->pool, (size_t)cap * sizeof *v);
        if (!v) {
            c->oom = 1;
            return NULL;
        }
        c->pool = v;
        c->cappool = cap;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        c->oom = 1;
        return NULL;
    }
    c->pool[c->npool++] = p;
    return p;
}

char *pstrdup(ctx *c, const char *s) {
    size_t l = strlen(s);
    char *p = palloc(c, l + 1);
    if (p) memcpy(p, s, l + 1);
    return p;
}


void push_diag(rn_diags *d, const char *file, int line, int col, const char *origin, const char *path,
                      const char *msg) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        rn_diag *v = realloc(d->v, (size_t)cap * sizeof *v);
        if (!v) return;
        d->v = v;
        d->cap = cap;
    }
    rn_diag *g = &d->v[d->n++];
    memset(g, 0, sizeof *g);
    sfmt(g->file, sizeof g->file, "%s", file);
    g->line = line;
    g->column = col;
    sfmt(g->path, sizeof g->path, "%s", path);
    sfmt(g->msg, sizeof g->msg, "%s", msg);
    sfmt(g->origin, sizeof g->origin, "%s", origin);
}

/* Whether another diagnostic would be dropped: callers skip costly
 * suggestions then (150,000 bad references must not each be compared with
 * every name). */
int diags_full(const ctx *c) { return c->diags->n - c->first_diag >= MAX_DIAGS; }

void diag_ov(ctx *c, const char *file, int line, int col, const char *origin, const char *path,
                    const char *msg) {
    rn_diags *d = c->diags;
    c->nerr++;
    for (int i = c->first_diag; i < d->n; i++) /* one report per place and message */
        if (d->v[i].line == line && d->v[i].column == col && strcmp(d->v[i].path, path) == 0 &&
            strcmp(d->v[i].msg, msg) == 0 && strcmp(d->v[i].origin, origin) == 0)
            return;
    if (diags_full(c)) {
        c->dropped++;
        return;
    }
    push_diag(d, file, line, col, origin, path, msg);
}

void diag_raw(ctx *c, const char *file, int line, int col, const char *path, const char *msg) {
    diag_ov(c, file, line, col, "", path, msg);
}

/* "--set PATH=VALUE" of override oi (0-based), for messages. */
void ov_origin(const ctx *c, int oi, char *out, size_t cap) {
    if (oi < 0 || oi >= c->nov) out[0] = 0;
    else sfmt(out, cap, "--set %s=%s", c->ov[oi].path, c->ov[oi].value);
}

/* An error at a node (-1: no location). Nodes that came from --set have no line. */
void err_at(ctx *c, int node, const char *path, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    char origin[320] = "";
    if (node >= 0 && N(c, node)->origin == 0) {
        line = N(c, node)->line;
        col = N(c, node)->col;
    } else if (node >= 0) {
        size_t l = strlen(msg);
        sfmt(msg + l, sizeof msg - l, " (from --set)");
        ov_origin(c, N(c, node)->origin - 1, origin, sizeof origin);
    }
    diag_ov(c, c->file, line, col, origin, path, msg);
}

void oom_check(ctx *c) {
    if (c->oom == 1) {
        diag_raw(c, c->file, 0, 0, "", "out of memory");
        c->oom = 2;
    }
}


/* Adds str; 1 = added, 0 = already there, -1 = out of memory. keep: 0 =
 * str itself (it lives as long as the spec), 1 = a copy in the spec's arena,
 * 2 = a copy for this load only. */

int strset_add(ctx *c, strset *s, const char *str, int keep) {
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        char **v = calloc(cap, sizeof *v);
        if (!v) return c->oom = 1, -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i]) {
                size_t h = ip_fnv1a(s->v[i]) & (cap - 1);
                while (v[h]) h = (h + 1) & (cap - 1);
                v[h] = s->v[i];
            }
        free(s->v);
        s->v = v;
        s->cap = cap;
    }
    size_t h = ip_fnv1a(str) & (s->cap - 1);
    while (s->v[h]) {
        if (strcmp(s->v[h], str) == 0) return 0;
        h = (h + 1) & (s->cap - 1);
    }
    char *p = keep == 0 ? (char *)str : keep == 1 ? (char *)sstrdup(c, str) : pstrdup(c, str);
    if (!p) return -1;
    s->v[h] = p;
    s->n++;
    return 1;
}

/* The spec-lifetime copy of text, one per distinct text. */
const char *intern(ctx *c, const char *text) {
    if (strset_add(c, &c->interned, text, 1) < 0) return NULL;
    size_t h = ip_fnv1a(text) & (c->interned.cap - 1);
    while (strcmp(c->interned.v[h], text) != 0) h = (h + 1) & (c->interned.cap - 1);
    return c->interned.v[h];
}
