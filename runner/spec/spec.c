/* Experiment specs: YAML -> overrides -> validation (every error collected,
 * with its location) -> expansion into the task list. docs/spec.md is the
 * user's reference; the keys of every task kind come from their tables (core/tasks/, runner/kinds/).
 *
 * Flow of rn_spec_load_text():
 *   1. yt_parse() the text into a tree (runner/yaml_tree.h);
 *   2. apply the --set overrides to the tree;
 *   3. validate: top-level keys, data, defaults, entries (each key's value
 *      becomes a `setting`: its list of normalised value texts), names,
 *      references, cycles, data files;
 *   4. expand every entry (referenced entries first) into tasks: the
 *      cartesian product of its axes (a swept key, a zip group, or a model
 *      reference), last axis fastest;
 *   5. check each passport model's signature against its passport layers.
 * Any error anywhere -> -1 with every diagnostic, nothing allocated. */
#include "spec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../core/util/arena.h"
#include "../../core/model/model.h"
#include "../../core/util/rng.h"
#include "../../core/tasks/tasks.h"
#include "../kinds/kinds.h"
#include "suggest.h"
#include "yaml_tree.h"

#define MAX_TASKS 4000000       /* a spec expanding to more is rejected (~250 bytes a task: ~1 GB) */
#define MAX_VALUE_LEN 1023      /* longest string value */
#define MAX_RANGE MAX_TASKS      /* values of one range */
#define MAX_REF_DEPTH 1000      /* entries in a chain of references */
#define MAX_DIAGS 200           /* diagnostics kept per load (then one "more errors" line) */
#define CKPT_NAME_MAX 160       /* checkpoint file name (without .h5) */
#define KEY_HASH_KEEP (RN_KEY_LEN - 1 - 17) /* chars kept before "~<16 hex>" in a long key */

/* ================================================================ utils === */

static void sfmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *dst, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

/* A growable string. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *t) {
    size_t l = strlen(t);
    if (b->oom) return;
    if (b->n + l + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + l + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, t, l + 1);
    b->n += l;
}

static void did_you_mean(char *out, size_t cap, const char *word, const char *const *cands, int n) {
    const char *s = rn_suggest(word, cands, n);
    if (s) sfmt(out, cap, " (did you mean \"%s\"?)", s);
    else out[0] = '\0';
}

/* ================================================================ diags === */

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

/* ============================================================== context === */

typedef struct setting {
    const rn_key *key;
    int node;               /* the value node (for messages) */
    char path[256];         /* e.g. "models[0].seed", "defaults.models.zip.lr" */
    int group;              /* zip group (> 0): varies together with the group's other settings */
    ip_value *vals;         /* the values, parsed (their text normalised: canonical ints, true/false) */
    int *vnodes;            /* node of each value (a range's values: the range node) */
    int *refs;              /* a reference: entry index of each value (-1 unresolved) */
    int nvals;
    const ip_value *fin;    /* the values as tasks keep them (setting_final), NULL until first expanded */
} setting;

typedef struct setlist {
    setting *v;
    int n, cap;
} setlist;

typedef struct entry {
    const rn_kind *kind;    /* NULL when missing or unknown */
    int section, index;     /* 0 = models, 1 = tasks; index in the section */
    char path[48];          /* "models[2]" */
    const char *name;       /* NULL when missing or invalid */
    int node;
    setlist own, eff;       /* its own settings; with defaults merged */
    int bad;                /* has errors: not expanded */
    int color;              /* cycle search: 0 new, 1 on the stack, 2 done */
    int expanded;
    int counted;
    double count;           /* number of instances (-1: not expandable) */
    int *inst;              /* task ids of its instances */
    int ninst;
} entry;

typedef struct strset {
    char **v;
    size_t cap, n;
} strset;


typedef struct ctx {
    const char *file;
    rn_diags *diags;
    int first_diag;         /* index of the first diag of this load */
    int nerr, dropped;
    int oom;
    const rn_spec_opts *opts;
    const rn_override *ov;
    int nov;

    yt_doc doc;
    int root;

    void **pool;            /* every allocation below, freed at the end */
    int npool, cappool;

    rn_spec *s;
    int nkinds;
    int source_node, output_node;
    int data_ok;            /* data.source parsed: the input shape is known */
    char data_kind[32];
    int in_c, in_h, in_w, classes;

    setlist *defaults;      /* per kind (index in rn_kinds) */
    int *defaults_set;

    entry *ent;
    int nent;

    rn_task *tasks;
    int ntasks, captasks;
    int *task_entry;        /* entry index of each task */
    strset keys, ckpts;
    int *names;             /* hash of entry names -> entry index (-1 empty), names_cap slots */
    size_t names_cap;
    int *defaults_bad;      /* per kind: its defaults have errors (entries of the kind are not expanded) */
    int cur_entry;          /* the entry being expanded (-1: none), for the task-cap message */
    strset interned;        /* value texts in the spec's arena (shared by the tasks) */
    const ip_value *kdef[32]; /* per kind (index in rn_kinds): the default values, made once */
} ctx;

static void *palloc(ctx *c, size_t n) {
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

static char *pstrdup(ctx *c, const char *s) {
    size_t l = strlen(s);
    char *p = palloc(c, l + 1);
    if (p) memcpy(p, s, l + 1);
    return p;
}

static yt_node *N(const ctx *c, int i) { return &c->doc.v[i]; }

static void push_diag(rn_diags *d, const char *file, int line, int col, const char *origin, const char *path,
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
static int diags_full(const ctx *c) { return c->diags->n - c->first_diag >= MAX_DIAGS; }

static void diag_ov(ctx *c, const char *file, int line, int col, const char *origin, const char *path,
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

static void diag_raw(ctx *c, const char *file, int line, int col, const char *path, const char *msg) {
    diag_ov(c, file, line, col, "", path, msg);
}

/* "--set PATH=VALUE" of override oi (0-based), for messages. */
static void ov_origin(const ctx *c, int oi, char *out, size_t cap) {
    if (oi < 0 || oi >= c->nov) out[0] = 0;
    else sfmt(out, cap, "--set %s=%s", c->ov[oi].path, c->ov[oi].value);
}

/* An error at a node (-1: no location). Nodes that came from --set have no line. */
static void err_at(ctx *c, int node, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void err_at(ctx *c, int node, const char *path, const char *fmt, ...) {
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

static void oom_check(ctx *c) {
    if (c->oom == 1) {
        diag_raw(c, c->file, 0, 0, "", "out of memory");
        c->oom = 2;
    }
}

/* =========================================================== string set === */

/* Adds str; 1 = added, 0 = already there, -1 = out of memory. keep: 0 =
 * str itself (it lives as long as the spec), 1 = a copy in the spec's arena,
 * 2 = a copy for this load only. */
static const char *sstrdup(ctx *c, const char *s);

static int strset_add(ctx *c, strset *s, const char *str, int keep) {
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
static const char *intern(ctx *c, const char *text) {
    if (strset_add(c, &c->interned, text, 1) < 0) return NULL;
    size_t h = ip_fnv1a(text) & (c->interned.cap - 1);
    while (strcmp(c->interned.v[h], text) != 0) h = (h + 1) & (c->interned.cap - 1);
    return c->interned.v[h];
}

/* ====================================================== scalar checking === */

static const char *const top_names[] = {"name", "seed", "output", "data", "defaults", "models", "tasks"};
#define NTOP ((int)(sizeof top_names / sizeof *top_names))

/* The spec's own keys (rows like the kinds', with fields of rn_spec). */
static const rn_key data_keys[] = {
    {"source", IP_P_STRING, IP_F_STR, offsetof(rn_spec, data_source), sizeof((rn_spec *)0)->data_source, NULL, 0, 0,
     0, NULL, NULL, "kind:path, kind = fashion-mnist, mnist, cifar10, cifar100 or synthetic (core/data.h)"},
    {"train_limit", IP_P_INT, IP_F_SIZE, offsetof(rn_spec, train_limit), sizeof(size_t), "0", 0, 0, 1e12, NULL, NULL,
     "use the first N training samples (0 = all)"},
    {"test_limit", IP_P_INT, IP_F_SIZE, offsetof(rn_spec, test_limit), sizeof(size_t), "0", 0, 0, 1e12, NULL, NULL,
     "use the first N test samples (0 = all)"},
};
#define NDATA ((int)(sizeof data_keys / sizeof *data_keys))
static const rn_key key_seed = {"seed", IP_P_INT, IP_F_NONE, 0, 0, "1", 1, 0, 9223372036854775807.0, NULL, NULL,
                                "spec seed"};
static const rn_key key_str = {"", IP_P_STRING, IP_F_NONE, 0, 0, "", 0, 0, 0, NULL, NULL, ""};

static int is_int_text(const char *s) {
    if (*s == '+' || *s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* A decimal number: [+-] digits [. digits] [e [+-] digits] (no inf/nan/hex). */
static int is_num_text(const char *s, double *v) {
    const char *p = s;
    int digits = 0;
    if (*p == '+' || *p == '-') p++;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p) return 0;
    errno = 0;
    double x = strtod(s, NULL);
    if (!isfinite(x)) return 0;
    if (v) *v = x;
    return 1;
}

static const char *type_desc(const rn_key *k, char *buf, size_t cap) {
    switch (k->type) {
    case IP_P_INT: return "an integer";
    case IP_P_FLOAT: return "a number";
    case IP_P_BOOL: return "true or false";
    case IP_P_STRING: return "a string";
    case IP_P_MODEL: return "the name of a model";
    case IP_P_FINGERPRINT: return "the name of a fingerprint entry";
    case IP_P_INTLIST: return "increasing integers separated by commas";
    case IP_P_ENUM: {
        sfmt(buf, cap, "one of ");
        size_t l = strlen(buf);
        for (const char *p = k->choices; *p && l + 3 < cap; p++) {
            if (*p == '|') buf[l++] = ',', buf[l++] = ' ';
            else buf[l++] = *p;
        }
        buf[l] = '\0';
        return buf;
    }
    }
    return "a value";
}

static const char *enum_suggest(const char *choices, const char *v, char *out, size_t cap) {
    const char *cands[32];
    char buf[512];
    int n = 0;
    sfmt(buf, sizeof buf, "%s", choices);
    char *save = NULL;
    for (char *p = strtok_r(buf, "|", &save); p && n < 32; p = strtok_r(NULL, "|", &save)) cands[n++] = p;
    const char *s = rn_suggest(v, cands, n);
    if (!s) return NULL;
    sfmt(out, cap, "%s", s);
    return out;
}

static void fmt_num(char *out, size_t cap, double v) {
    if (v == 0) v = 0; /* no "-0" */
    sfmt(out, cap, "%.10g", v);
}

/* Checks one scalar against a key's type and range and parses it, once, into
 * *out (ints with canonical text, bools true/false, other numbers with the
 * text as written; an INTLIST's items in the load's pool). */
static int typed_scalar(ctx *c, const rn_key *k, int node, const char *path, ip_value *out) {
    yt_node *n = N(c, node);
    char tb[300];
    memset(out, 0, sizeof *out);
    if (n->type != YT_SCALAR) {
        err_at(c, node, path, "expected %s, got %s", type_desc(k, tb, sizeof tb), yt_type_name(&c->doc, node));
        return -1;
    }
    const char *t = n->text;
    if (yt_is_null(&c->doc, node)) {
        if (k->type == IP_P_STRING || k->type == IP_P_INTLIST) {
            int32_t *list = k->type == IP_P_INTLIST ? palloc(c, sizeof(int32_t)) : NULL;
            out->text = "";
            if (list) out->u.list = list; /* list[0] = 0 items */
            else out->u.s = "";
            return k->type == IP_P_INTLIST && !list ? -1 : 0;
        }
        err_at(c, node, path, "missing value (expected %s)", type_desc(k, tb, sizeof tb));
        return -1;
    }
    switch (k->type) {
    case IP_P_INT: {
        double dv;
        if (n->plain && is_int_text(t)) {
            errno = 0;
            long long v = strtoll(t, NULL, 10);
            if (errno == ERANGE || (double)v < k->min || (double)v > k->max) {
                char a[40], b[40];
                fmt_num(a, sizeof a, k->min);
                fmt_num(b, sizeof b, k->max);
                err_at(c, node, path, "%s is out of range [%s, %s]", t, a, b);
                return -1;
            }
            char buf[32];
            sfmt(buf, sizeof buf, "%lld", v);
            out->text = pstrdup(c, buf);
            out->u.i = v;
            return out->text ? 0 : -1;
        }
        if (n->plain && is_num_text(t, &dv)) err_at(c, node, path, "expected an integer, got %s", t);
        else if (!n->plain) err_at(c, node, path, "expected an integer, got the string \"%s\"", t);
        else err_at(c, node, path, "expected an integer, got \"%s\"", t);
        return -1;
    }
    case IP_P_FLOAT: {
        double v;
        if (n->plain && is_num_text(t, &v)) {
            if (v < k->min || v > k->max) {
                char a[40], b[40];
                fmt_num(a, sizeof a, k->min);
                fmt_num(b, sizeof b, k->max);
                err_at(c, node, path, "%s is out of range [%s, %s]", t, a, b);
                return -1;
            }
            out->text = t;
            out->u.f = v;
            return 0;
        }
        if (!n->plain) err_at(c, node, path, "expected a number, got the string \"%s\"", t);
        else err_at(c, node, path, "expected a number, got \"%s\"", t);
        return -1;
    }
    case IP_P_BOOL:
        if (n->plain && (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE"))) {
            out->text = "true", out->u.i = 1;
            return 0;
        }
        if (n->plain && (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE"))) {
            out->text = "false", out->u.i = 0;
            return 0;
        }
        err_at(c, node, path, "expected true or false, got \"%s\"", t);
        return -1;
    case IP_P_ENUM: {
        int idx = ip_param_choice(k, t);
        if (idx >= 0) {
            out->text = t, out->u.i = idx;
            return 0;
        }
        char sug[64];
        if (enum_suggest(k->choices, t, sug, sizeof sug))
            err_at(c, node, path, "invalid value \"%s\" (did you mean \"%s\"? choices: %s)", t, sug,
                   type_desc(k, tb, sizeof tb) + 7);
        else err_at(c, node, path, "invalid value \"%s\" (choices: %s)", t, type_desc(k, tb, sizeof tb) + 7);
        return -1;
    }
    case IP_P_INTLIST: {
        int32_t *list = palloc(c, (1 + IP_MAX_INT_LIST) * sizeof *list);
        char msg[300];
        if (!list) return -1;
        if (ip_value_parse(k, t, out, list, msg, sizeof msg) != 0) {
            err_at(c, node, path, "%s", msg);
            return -1;
        }
        return 0;
    }
    case IP_P_MODEL:
    case IP_P_FINGERPRINT:
        if (n->len == 0) { /* "" names nothing: an optional reference is left out, not emptied */
            if (k->def)
                err_at(c, node, path, "empty %s name (leave the key out for none)",
                       k->type == IP_P_MODEL ? "model" : "fingerprint");
            else err_at(c, node, path, "expected %s, got an empty string", type_desc(k, tb, sizeof tb));
            return -1;
        }
        /* fall through */
    case IP_P_STRING: {
        size_t cap = MAX_VALUE_LEN + 1; /* a field's own limit: checked when the task is filled */
        if (n->len >= cap) {
            err_at(c, node, path, "value is longer than %zu characters", cap - 1);
            return -1;
        }
        out->text = t, out->u.s = t;
        return 0;
    }
    }
    return -1;
}

/* ============================================================= settings === */

static int setlist_init(ctx *c, setlist *l, int cap) {
    l->v = palloc(c, (size_t)cap * sizeof *l->v);
    l->n = 0;
    l->cap = l->v ? cap : 0;
    return l->v ? 0 : -1;
}

static setting *setlist_find(setlist *l, const rn_key *k) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i].key == k) return &l->v[i];
    return NULL;
}

static int setting_alloc(ctx *c, setting *s, int n) {
    s->vals = palloc(c, (size_t)n * sizeof *s->vals);
    s->vnodes = palloc(c, (size_t)n * sizeof *s->vnodes);
    s->refs = palloc(c, (size_t)n * sizeof *s->refs);
    if (!s->vals || !s->vnodes || !s->refs) return -1;
    for (int i = 0; i < n; i++) s->refs[i] = -1;
    s->nvals = 0;
    return 0;
}

/* A value's identity in a sweep: numbers by value (0.1, 0.10 and 1e-1 are
 * one value), everything else by its normalised text. */
static char *canon_value(const rn_key *k, const ip_value *v) {
    char buf[40];
    const char *t = v->text;
    if (k->type == IP_P_INT || k->type == IP_P_FLOAT) {
        double x = k->type == IP_P_INT ? (double)v->u.i : v->u.f;
        if (x == 0) x = 0; /* -0 is 0 */
        sfmt(buf, sizeof buf, "%.17g", x);
        t = buf;
    }
    return strdup(t);
}

typedef struct canon_item {
    char *text;
    int idx;
} canon_item;

static int canon_cmp(const void *a, const void *b) {
    const canon_item *x = a, *y = b;
    int r = strcmp(x->text, y->text);
    return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* A sweep lists each value once (docs/spec.md): the members of one axis (a
 * setting, or the settings of a zip group, all with n values) must not repeat
 * a combination. Sorting, not pairs: a list may hold 100,000 values.
 * Reports each repetition at the repeated value; returns -1 when any. */
static int check_repeats(ctx *c, setting *const *m, int nm, const char *zpath, int znode) {
    int n = m[0]->nvals, bad = 0;
    if (n < 2) return 0;
    canon_item *it = calloc((size_t)n, sizeof *it);
    if (!it) return c->oom = 1, -1;
    for (int i = 0; i < n && !c->oom; i++) {
        sbuf b = {0};
        for (int j = 0; j < nm; j++) {
            char *v = canon_value(m[j]->key, &m[j]->vals[i]);
            if (!v) b.oom = 1;
            else sb_add(&b, v);
            free(v);
            sb_add(&b, "\x1f");
        }
        if (b.oom || !b.s) {
            free(b.s);
            c->oom = 1;
        }
        it[i].text = b.s;
        it[i].idx = i;
    }
    if (!c->oom) {
        qsort(it, (size_t)n, sizeof *it, canon_cmp);
        for (int i = 1; i < n; i++) {
            if (strcmp(it[i].text, it[i - 1].text) != 0) continue;
            int first = it[i - 1].idx, rep = it[i].idx;
            while (i < n - 1 && !strcmp(it[i + 1].text, it[i].text)) i++; /* one report per repeated value */
            bad = 1;
            const setting *s0 = m[0];
            char vp[300];
            if (nm > 1) {
                err_at(c, znode, zpath, "values %d and %d of the zip lists are the same combination (a sweep lists "
                                        "each value once)", first, rep);
            } else if (N(c, s0->node)->type == YT_SEQ) {
                sfmt(vp, sizeof vp, "%s[%d]", s0->path, rep);
                err_at(c, s0->vnodes[rep], vp, "%s repeats the value of %s[%d] (%s): a sweep lists each value once",
                       s0->vals[rep].text, s0->path, first, s0->vals[first].text);
            } else {
                sfmt(vp, sizeof vp, "%s.range", s0->path);
                err_at(c, s0->vnodes[rep], vp, "the range gives the value %s twice (printed with 10 significant "
                                               "digits): use a larger step", s0->vals[rep].text);
            }
            if (diags_full(c)) break;
        }
    }
    for (int i = 0; i < n; i++) free(it[i].text);
    free(it);
    return bad ? -1 : 0;
}

/* {range: [start, stop, step]} */
static int parse_range(ctx *c, const rn_key *k, int node, const char *path, setting *s) {
    char rpath[300], tb[300];
    sfmt(rpath, sizeof rpath, "%s.range", path);
    int rv = yt_map_get(&c->doc, node, "range");
    if (k->type != IP_P_INT && k->type != IP_P_FLOAT) {
        err_at(c, node, path, "a range needs a numeric key (expected %s)", type_desc(k, tb, sizeof tb));
        return -1;
    }
    if (N(c, rv)->type != YT_SEQ || N(c, rv)->nkids != 3) {
        err_at(c, rv, rpath, "expected [start, stop, step], got %s",
               N(c, rv)->type == YT_SEQ ? "a list of another length" : yt_type_name(&c->doc, rv));
        return -1;
    }
    double v[3];
    long long iv[3];
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        int it = N(c, rv)->kids[i];
        char ipath[320];
        sfmt(ipath, sizeof ipath, "%s[%d]", rpath, i);
        yt_node *n = N(c, it);
        if (k->type == IP_P_INT && n->type == YT_SCALAR && n->plain && is_int_text(n->text)) {
            errno = 0;
            iv[i] = strtoll(n->text, NULL, 10);
            if (errno == ERANGE || llabs(iv[i]) > (1ll << 53)) {
                err_at(c, it, ipath, "%s is out of range", n->text);
                bad = 1;
            }
            v[i] = (double)iv[i];
        } else if (k->type == IP_P_FLOAT && n->type == YT_SCALAR && n->plain && is_num_text(n->text, &v[i])) {
        } else {
            ip_value dummy;
            rn_key kk = *k;
            kk.min = -INFINITY, kk.max = INFINITY;
            if (typed_scalar(c, &kk, it, ipath, &dummy) == 0) /* normally reports the type error */
                err_at(c, it, ipath, "expected %s", type_desc(k, tb, sizeof tb));
            bad = 1;
        }
    }
    if (bad) return -1;
    if (v[2] == 0) {
        err_at(c, rv, rpath, "range step must not be 0");
        return -1;
    }
    double q = floor((v[1] - v[0]) / v[2] + 1e-9);
    if (!(q >= 0)) {
        err_at(c, rv, rpath, "empty range: a step of %s never goes from %s to %s", N(c, N(c, rv)->kids[2])->text,
               N(c, N(c, rv)->kids[0])->text, N(c, N(c, rv)->kids[1])->text);
        return -1;
    }
    if (q + 1 > MAX_RANGE) {
        err_at(c, rv, rpath, "range has %.0f values (at most %d)", q + 1, MAX_RANGE);
        return -1;
    }
    int n = (int)q + 1;
    if (setting_alloc(c, s, n) != 0) return -1;
    for (int i = 0; i < n; i++) {
        char buf[48];
        double x;
        long long xi = 0;
        if (k->type == IP_P_INT) {
            xi = iv[0] + (long long)i * iv[2];
            sfmt(buf, sizeof buf, "%lld", xi);
            x = (double)xi;
        } else {
            x = v[0] + (double)i * v[2];
            fmt_num(buf, sizeof buf, x); /* integral starts and steps print as integers */
        }
        if (x < k->min || x > k->max) {
            char a[40], b[40];
            fmt_num(a, sizeof a, k->min);
            fmt_num(b, sizeof b, k->max);
            err_at(c, rv, rpath, "range value %s is out of range [%s, %s]", buf, a, b);
            return -1;
        }
        /* a float range's values are the numbers as printed (10 significant
         * digits): 0.1 + 2 * 0.1 is 0.3, as its key says */
        s->vals[i].text = pstrdup(c, buf);
        if (k->type == IP_P_INT) s->vals[i].u.i = xi;
        else s->vals[i].u.f = strtod(buf, NULL);
        s->vnodes[i] = node;
        if (!s->vals[i].text) return -1;
    }
    s->nvals = n;
    return 0;
}

/* A key's value: scalar, list (sweep), or {range: [...]}; in_zip: only sweeps.
 * 0, -1 on errors, or 1 when s is complete but a sweep repeats a value
 * (reported; s can still be checked against the entry's other keys). */
static int parse_setting(ctx *c, const rn_key *k, int node, const char *path, int in_zip, setting *s) {
    char tb[300];
    memset(s, 0, sizeof *s);
    s->key = k;
    s->node = node;
    sfmt(s->path, sizeof s->path, "%s", path);
    yt_node *n = N(c, node);
    if (n->type == YT_SCALAR) {
        if (in_zip) {
            err_at(c, node, path, "a zip member needs a list of values (or a range), got a scalar");
            return -1;
        }
        ip_value v;
        if (typed_scalar(c, k, node, path, &v) != 0 || setting_alloc(c, s, 1) != 0) return -1;
        s->vals[0] = v;
        s->vnodes[0] = node;
        s->nvals = 1;
        return 0;
    }
    if (n->type == YT_SEQ) {
        if (n->nkids == 0) {
            err_at(c, node, path, "empty sweep list");
            return -1;
        }
        if (setting_alloc(c, s, n->nkids) != 0) return -1;
        int bad = 0;
        for (int i = 0; i < n->nkids; i++) {
            int it = N(c, node)->kids[i];
            char ipath[300];
            sfmt(ipath, sizeof ipath, "%s[%d]", path, i);
            if (N(c, it)->type != YT_SCALAR) {
                err_at(c, it, ipath, "expected %s in the sweep list, got %s", type_desc(k, tb, sizeof tb),
                       yt_type_name(&c->doc, it));
                bad = 1;
                continue;
            }
            ip_value v;
            if (typed_scalar(c, k, it, ipath, &v) != 0) {
                bad = 1;
                continue;
            }
            s->vals[s->nvals] = v;
            s->vnodes[s->nvals++] = it;
        }
        if (bad) return -1;
        setting *self = s;
        return in_zip ? 0 : -check_repeats(c, &self, 1, path, node); /* a zip checks its combinations */
    }
    /* a mapping: {range: [start, stop, step]} */
    if (yt_map_get(&c->doc, node, "range") >= 0 && n->nkids == 2) {
        if (parse_range(c, k, node, path, s) != 0) return -1;
        setting *self = s;
        return in_zip ? 0 : -check_repeats(c, &self, 1, path, node);
    }
    for (int p = 0; p < n->nkids / 2; p++) {
        int kn = n->kids[2 * p];
        if (N(c, kn)->type == YT_SCALAR && strcmp(N(c, kn)->text, "range") != 0 && rn_lev(N(c, kn)->text, "range") <= 2) {
            char kp[320];
            sfmt(kp, sizeof kp, "%s.%s", path, N(c, kn)->text);
            err_at(c, kn, kp, "unknown key \"%s\" (did you mean \"range\"?)", N(c, kn)->text);
            return -1;
        }
    }
    if (yt_map_get(&c->doc, node, "range") >= 0)
        err_at(c, node, path, "a range is a mapping with the single key \"range\": {range: [start, stop, step]}");
    else if (k->type == IP_P_INT || k->type == IP_P_FLOAT)
        err_at(c, node, path, "expected %s, a list or {range: [start, stop, step]}, got a mapping",
               type_desc(k, tb, sizeof tb));
    else err_at(c, node, path, "expected %s (or a list of values), got a mapping", type_desc(k, tb, sizeof tb));
    return -1;
}

/* Valid key names of an entry or a defaults section, for suggestions. */
static int entry_key_names(const rn_kind *k, int with_name, int with_kind, int with_zip, const char **out) {
    int n = 0;
    if (with_name) out[n++] = "name";
    if (with_kind) out[n++] = "kind";
    if (with_zip) out[n++] = "zip";
    for (int i = 0; k && i < k->def->nparams && n < RN_MAX_KEYS + 3; i++) out[n++] = k->def->params[i].name;
    return n;
}

static void unknown_key(ctx *c, int keynode, const char *path, const char *const *cands, int n) {
    char dym[120];
    did_you_mean(dym, sizeof dym, N(c, keynode)->text, cands, n);
    if (dym[0]) {
        err_at(c, keynode, path, "unknown key \"%s\"%s", N(c, keynode)->text, dym);
    } else {
        char list[400] = "";
        size_t l = 0;
        for (int i = 0; i < n && l + 4 < sizeof list; i++) {
            sfmt(list + l, sizeof list - l, "%s%s", i ? ", " : "", cands[i]);
            l = strlen(list);
        }
        err_at(c, keynode, path, "unknown key \"%s\" (valid keys: %s)", N(c, keynode)->text, list);
    }
}

/* Adds setting st to l, unless its key is already there (zip + direct). */
static int add_setting(ctx *c, setlist *l, const setting *st) {
    setting *old = setlist_find(l, st->key);
    if (old) {
        err_at(c, st->node, st->path, "\"%s\" is set twice (directly and in zip)", st->key->name);
        return -1;
    }
    if (l->n >= l->cap) return -1;
    l->v[l->n++] = *st;
    return 0;
}

/* zip: {key: [values], key: [values]}: the lists vary together. */
static int parse_zip(ctx *c, const rn_kind *k, int node, const char *path, int group, setlist *l) {
    yt_node *z = N(c, node);
    if (z->type != YT_MAP || z->nkids == 0) {
        err_at(c, node, path, "zip needs a mapping of key: [values], got %s",
               z->type == YT_MAP ? "an empty mapping" : yt_type_name(&c->doc, node));
        return -1;
    }
    const char *names[RN_MAX_KEYS + 4];
    int nn = entry_key_names(k, 0, 0, 0, names);
    int bad = 0, first = -1, len = -1, start = l->n;
    for (int p = 0; p < z->nkids / 2; p++) {
        if (yt_map_is_dup(&c->doc, node, p)) continue;
        int kn = N(c, node)->kids[2 * p], vn = N(c, node)->kids[2 * p + 1];
        char kp[300];
        if (N(c, kn)->type != YT_SCALAR) continue; /* reported by the duplicate-key walk */
        sfmt(kp, sizeof kp, "%s.%s", path, N(c, kn)->text);
        const rn_key *key = rn_kind_key(k, N(c, kn)->text);
        if (!key) {
            if (!strcmp(N(c, kn)->text, "name") || !strcmp(N(c, kn)->text, "kind") || !strcmp(N(c, kn)->text, "zip"))
                err_at(c, kn, kp, "\"%s\" cannot be swept", N(c, kn)->text);
            else unknown_key(c, kn, kp, names, nn);
            bad = 1;
            continue;
        }
        if (IP_P_IS_REF(key->type)) {
            err_at(c, kn, kp, "model references cannot be zipped (list them directly: %s: [a, b])", key->name);
            bad = 1;
            continue;
        }
        setting st;
        if (parse_setting(c, key, vn, kp, 1, &st) != 0) {
            bad = 1;
            continue;
        }
        st.group = group;
        if (len < 0) {
            len = st.nvals;
            first = p;
        } else if (st.nvals != len) {
            err_at(c, vn, kp, "zip lists have different lengths: %s has %d values, %s has %d",
                   N(c, N(c, node)->kids[2 * first])->text, len, key->name, st.nvals);
            bad = 1;
        }
        if (add_setting(c, l, &st) != 0) bad = 1;
    }
    if (bad) return -1;
    setting *m[RN_MAX_KEYS];
    int nm = 0;
    for (int i = start; i < l->n && nm < RN_MAX_KEYS; i++) m[nm++] = &l->v[i];
    return nm ? check_repeats(c, m, nm, path, node) : 0;
}

/* ============================================================ overrides === */

typedef struct ovstep {
    char name[128];
    int index;              /* >= 0: a list index */
} ovstep;

static int parse_ov_path(const char *path, ovstep *st, int max) {
    int n = 0;
    const char *p = path;
    if (!*p) return -1;
    while (*p) {
        size_t l = strcspn(p, ".[]");
        if (l > 0) {
            if (n >= max || l >= sizeof st[n].name) return -1;
            memcpy(st[n].name, p, l);
            st[n].name[l] = '\0';
            st[n].index = is_int_text(st[n].name) && st[n].name[0] != '-' && st[n].name[0] != '+'
                              ? atoi(st[n].name) : -1;
            n++;
            p += l;
        } else if (*p != '[') {
            return -1; /* ".." or a leading "." or "]" */
        }
        while (*p == '[') {
            char *end;
            if (p[1] < '0' || p[1] > '9') return -1;
            long v = strtol(p + 1, &end, 10);
            if (*end != ']' || v > 1000000 || n >= max) return -1;
            st[n].name[0] = '\0';
            st[n].index = (int)v;
            n++;
            p = end + 1;
        }
        if (*p == '.') {
            p++;
            if (!*p) return -1;
        } else if (*p) {
            return -1;
        }
    }
    return n;
}

static void ov_fail(ctx *c, const rn_override *o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void ov_fail(ctx *c, const rn_override *o, const char *fmt, ...) {
    char msg[500], full[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sfmt(full, sizeof full, "unknown path \"%s\": %s", o->path, msg);
    char origin[320];
    ov_origin(c, (int)(o - c->ov), origin, sizeof origin);
    diag_ov(c, c->file, 0, 0, origin, "--set", full);
}

/* Sets map[key] = v (replacing the first pair with that key, or appending). */
static int map_set(ctx *c, int map, const char *key, int v, int origin) {
    int i = yt_map_find(&c->doc, map, key);
    if (i >= 0) {
        N(c, map)->kids[i + 1] = v;
        return 0;
    }
    int k = yt_new_scalar(&c->doc, key, 1, origin, 0, 0);
    if (k < 0 || yt_append(&c->doc, map, k) != 0 || yt_append(&c->doc, map, v) != 0) return c->oom = 1, -1;
    return 0;
}

/* The mapping at map[key], created when missing or null; -1 if it is something else. */
static int map_child_map(ctx *c, int map, const char *key, int origin) {
    int v = yt_map_get(&c->doc, map, key);
    if (v >= 0 && N(c, v)->type == YT_MAP) return v;
    if (v >= 0 && !yt_is_null(&c->doc, v)) return -1;
    int m = yt_new_map(&c->doc, origin, 0, 0);
    if (m < 0) return c->oom = 1, -1;
    return map_set(c, map, key, m, origin) == 0 ? m : -1;
}

/* The override's value as a node: a flow list/mapping or quoted scalar is
 * parsed as YAML, anything else is one plain scalar (so "a: b" stays text). */
static int ov_value(ctx *c, const rn_override *o, int origin) {
    const char *v = o->value;
    if (v[0] == '[' || v[0] == '{' || v[0] == '"' || v[0] == '\'') {
        yt_error e;
        int root;
        if (yt_parse(&c->doc, v, strlen(v), origin, &root, &e) != 0) {
            char msg[600];
            char orig[320];
            sfmt(msg, sizeof msg, "bad value \"%s\" for %s: %s", v, o->path, e.msg);
            ov_origin(c, origin - 1, orig, sizeof orig);
            diag_ov(c, c->file, 0, 0, orig, "--set", msg);
            return -1;
        }
        if (root >= 0) return root;
        v = "";
    }
    int n = yt_new_scalar(&c->doc, v, 1, origin, 0, 0);
    if (n < 0) c->oom = 1;
    return n;
}

enum { S_TOP, S_DATA, S_DEFAULTS, S_DEFSEC, S_SEQ, S_ENTRY, S_ZIP, S_END };

static void apply_override(ctx *c, int oi) {
    const rn_override *o = &c->ov[oi];
    ovstep st[16];
    yt_error ye;
    if (yt_check_text(o->path, strlen(o->path), &ye) != 0 || yt_check_text(o->value, strlen(o->value), &ye) != 0) {
        char orig[320];
        ov_origin(c, oi, orig, sizeof orig);
        diag_ov(c, c->file, 0, 0, orig, "--set", "the override is not UTF-8 text");
        return;
    }
    int ns = parse_ov_path(o->path, st, 16);
    if (ns <= 0) {
        ov_fail(c, o, "expected a path like seed, data.source, models[0].epochs, models.NAME.epochs or "
                      "defaults.models.epochs");
        return;
    }
    if (c->root < 0 || N(c, c->root)->type != YT_MAP) return; /* reported by the validation */
    int origin = oi + 1;
    int cur = c->root, state = S_TOP, section = 0;
    const rn_kind *kind = NULL;
    const char *names[RN_MAX_KEYS + 16];
    for (int j = 0; j < ns; j++) {
        const ovstep *p = &st[j];
        int last = j == ns - 1;
        if (state == S_SEQ) {
            yt_node *seq = N(c, cur);
            int item = -1, pos = -1;
            const char *sec = section ? "tasks" : "models";
            if (p->index >= 0) {
                if (p->index >= seq->nkids) {
                    ov_fail(c, o, "no %s entry %d (there are %d)", sec, p->index, seq->nkids);
                    return;
                }
                pos = p->index;
            } else {
                int nn = 0;
                for (int i = 0; i < seq->nkids; i++) {
                    int nm = yt_map_get(&c->doc, seq->kids[i], "name");
                    if (nm < 0 || N(c, nm)->type != YT_SCALAR) continue;
                    if (pos < 0 && strcmp(N(c, nm)->text, p->name) == 0) pos = i;
                    if (nn < RN_MAX_KEYS + 16) names[nn++] = N(c, nm)->text;
                }
                if (pos < 0) {
                    char dym[120];
                    did_you_mean(dym, sizeof dym, p->name, names, nn);
                    ov_fail(c, o, "no %s entry named \"%s\"%s", sec, p->name, dym);
                    return;
                }
            }
            if (last) {
                int v = ov_value(c, o, origin);
                if (v >= 0) N(c, cur)->kids[pos] = v;
                return;
            }
            item = N(c, cur)->kids[pos];
            if (N(c, item)->type != YT_MAP) {
                ov_fail(c, o, "%s entry %d is not a mapping", sec, pos);
                return;
            }
            kind = rn_kind_find("train");
            if (section) {
                int kn = yt_map_get(&c->doc, item, "kind");
                kind = kn >= 0 && N(c, kn)->type == YT_SCALAR ? rn_kind_find(N(c, kn)->text) : NULL;
            }
            cur = item;
            state = S_ENTRY;
            continue;
        }
        if (p->index >= 0 && p->name[0] == '\0') {
            ov_fail(c, o, "[%d] follows something that is not a list", p->index);
            return;
        }
        int nn = 0, any = 0;
        switch (state) {
        case S_TOP:
            for (int i = 0; i < NTOP; i++) names[nn++] = top_names[i];
            break;
        case S_DATA:
            for (int i = 0; i < NDATA; i++) names[nn++] = data_keys[i].name;
            break;
        case S_DEFAULTS:
            names[nn++] = "models";
            for (int i = 0; rn_kinds[i]; i++)
                if (strcmp(rn_kinds[i]->def->name, "train") != 0) names[nn++] = rn_kinds[i]->def->name;
            break;
        case S_DEFSEC: nn = entry_key_names(kind, 0, 0, 1, names); break;
        case S_ENTRY:
            nn = entry_key_names(kind, 1, section, 1, names);
            any = section && !kind; /* an entry of unknown kind: its keys are checked later */
            break;
        case S_ZIP: nn = entry_key_names(kind, 0, 0, 0, names); break;
        default:
            ov_fail(c, o, "\"%s\" goes deeper than a key", p->name);
            return;
        }
        int found = any;
        for (int i = 0; i < nn && !found; i++) found = strcmp(names[i], p->name) == 0;
        if (!found) {
            char dym[400];
            did_you_mean(dym, sizeof dym, p->name, names, nn);
            if (!dym[0]) {
                size_t l = 0;
                for (int i = 0; i < nn && l + 4 < sizeof dym; i++) {
                    sfmt(dym + l, sizeof dym - l, "%s%s", i ? ", " : " (valid keys: ", names[i]);
                    l = strlen(dym);
                }
                if (l + 2 < sizeof dym) sfmt(dym + l, sizeof dym - l, ")");
            }
            ov_fail(c, o, "unknown key \"%s\"%s", p->name, dym);
            return;
        }
        if (last) {
            int v = ov_value(c, o, origin);
            if (v >= 0) map_set(c, cur, p->name, v, origin);
            return;
        }
        int next = -1;
        if (state == S_TOP && (!strcmp(p->name, "models") || !strcmp(p->name, "tasks"))) {
            next = yt_map_get(&c->doc, cur, p->name);
            if (next < 0 || N(c, next)->type != YT_SEQ) {
                ov_fail(c, o, "the spec has no %s list", p->name);
                return;
            }
            section = !strcmp(p->name, "tasks");
            cur = next;
            state = S_SEQ;
            continue;
        }
        if ((state == S_TOP && (!strcmp(p->name, "data") || !strcmp(p->name, "defaults"))) || state == S_DEFAULTS ||
            (state == S_ENTRY && !strcmp(p->name, "zip"))) {
            next = map_child_map(c, cur, p->name, origin);
            if (next < 0) {
                ov_fail(c, o, "\"%s\" is not a mapping", p->name);
                return;
            }
            if (state == S_DEFAULTS) kind = rn_kind_find(strcmp(p->name, "models") ? p->name : "train");
            state = state == S_TOP ? (!strcmp(p->name, "data") ? S_DATA : S_DEFAULTS)
                    : state == S_DEFAULTS ? S_DEFSEC
                                          : S_ZIP;
            cur = next;
            continue;
        }
        ov_fail(c, o, "\"%s\" is a value, not a section", p->name);
        return;
    }
}

/* ===================================================== duplicate keys === */

static void dup_walk(ctx *c, int node, const char *path, int depth) {
    yt_node *n = N(c, node);
    if (n->mark || depth > YT_MAX_DEPTH + 2) return;
    n->mark = 1;
    char cp[300];
    if (n->type == YT_MAP) {
        for (int p = 0; p < n->nkids / 2; p++) {
            int k = N(c, node)->kids[2 * p], v = N(c, node)->kids[2 * p + 1];
            if (N(c, k)->type != YT_SCALAR) {
                err_at(c, k, path, "a mapping key must be a scalar, got %s", yt_type_name(&c->doc, k));
                continue;
            }
            if (path[0]) sfmt(cp, sizeof cp, "%s.%s", path, N(c, k)->text);
            else sfmt(cp, sizeof cp, "%s", N(c, k)->text);
            int q = yt_map_first(&c->doc, node, p), dup = q != p;
            if (dup) {
                int k0 = N(c, node)->kids[2 * q];
                if (N(c, k0)->origin == 0)
                    err_at(c, k, cp, "duplicate key \"%s\" (first at line %d, column %d)", N(c, k)->text,
                           N(c, k0)->line, N(c, k0)->col);
                else err_at(c, k, cp, "duplicate key \"%s\"", N(c, k)->text);
            }
            if (!dup) dup_walk(c, v, cp, depth + 1);
        }
    } else if (n->type == YT_SEQ) {
        for (int i = 0; i < n->nkids; i++) {
            sfmt(cp, sizeof cp, "%s[%d]", path, i);
            dup_walk(c, N(c, node)->kids[i], cp, depth + 1);
        }
    }
}

/* ============================================================== top level === */

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

/* The spec's name (a file name): letters, digits, '.', '_', '-', not starting with '.'. */
static int valid_spec_name(const char *s) {
    if (!*s || *s == '.') return 0;
    for (; *s; s++)
        if (!(valid_name((char[]){*s, 0}) || *s == '.')) return 0;
    return 1;
}

/* data.source's text (core/data.c knows the kinds and their shapes): on
 * success the input shape is known and check_data_files may look at the files. */
static void check_source(ctx *c, int node, const char *src) {
    ip_data_shape sh;
    ip_err e = {{0}};
    if (ip_data_check_source(src, 0, rn_suggest, &sh, &e) != 0) {
        err_at(c, node, "data.source", "%s", e.msg);
        return;
    }
    c->in_c = sh.c, c->in_h = sh.h, c->in_w = sh.w, c->classes = sh.classes;
    c->data_ok = 1;
}

/* The files core/data.c will open: all there, and holding what they should
 * (ip_data_check_source with its file check; the text passed check_source). */
static void check_data_files(ctx *c) {
    ip_data_shape sh;
    ip_err e = {{0}};
    if (ip_data_check_source(c->s->data_source, 1, rn_suggest, &sh, &e) != 0)
        err_at(c, c->source_node, "data.source", "%s", e.msg);
}

static void do_data(ctx *c, int node) {
    if (N(c, node)->type != YT_MAP) {
        err_at(c, node, "data", "expected a mapping with source: kind:path, got %s", yt_type_name(&c->doc, node));
        return;
    }
    const char *names[NDATA];
    for (int i = 0; i < NDATA; i++) names[i] = data_keys[i].name;
    for (int p = 0; p < N(c, node)->nkids / 2; p++) {
        if (yt_map_is_dup(&c->doc, node, p)) continue;
        int kn = N(c, node)->kids[2 * p], vn = N(c, node)->kids[2 * p + 1];
        if (N(c, kn)->type != YT_SCALAR) continue;
        char path[300];
        sfmt(path, sizeof path, "data.%s", N(c, kn)->text);
        const rn_key *k = NULL;
        for (int i = 0; i < NDATA; i++)
            if (!strcmp(data_keys[i].name, N(c, kn)->text)) k = &data_keys[i];
        if (!k) {
            unknown_key(c, kn, path, names, NDATA);
            continue;
        }
        ip_value v;
        if (N(c, vn)->type == YT_SEQ || (N(c, vn)->type == YT_MAP && yt_map_get(&c->doc, vn, "range") >= 0)) {
            err_at(c, vn, path, "data keys cannot be swept (sweeps go in models and tasks entries)");
            continue;
        }
        if (typed_scalar(c, k, vn, path, &v) != 0) continue;
        if (!strcmp(k->name, "source")) {
            c->source_node = vn;
            if (strlen(v.text) >= sizeof c->s->data_source) err_at(c, vn, path, "data source is too long");
            else ip_param_store(k, &v, c->s, NULL), check_source(c, vn, v.text);
        } else {
            ip_param_store(k, &v, c->s, NULL);
        }
    }
    if (yt_map_get(&c->doc, node, "source") < 0) err_at(c, node, "data", "missing required key \"source\"");
}

static int kind_index(const rn_kind *k) {
    for (int i = 0; rn_kinds[i]; i++)
        if (rn_kinds[i] == k) return i;
    return -1;
}

/* The settings of one entry-like mapping (an entry or a defaults section).
 * Returns 0 when every key was valid. */
static int parse_keys(ctx *c, const rn_kind *k, int node, const char *path, int is_entry, int section,
                      int zip_group, setlist *out) {
    const char *names[RN_MAX_KEYS + 4];
    int nn = entry_key_names(k, is_entry, is_entry && section == 1, 1, names);
    int bad = 0, most = 0;
    /* room for the keys present, not for every key of the kind: a spec may
     * have 150,000 entries, and a setting is ~300 bytes */
    for (int p = 0; p < N(c, node)->nkids / 2; p++) {
        int vn = N(c, node)->kids[2 * p + 1], kn = N(c, node)->kids[2 * p];
        most += N(c, kn)->type == YT_SCALAR && !strcmp(N(c, kn)->text, "zip") && N(c, vn)->type == YT_MAP
                    ? N(c, vn)->nkids / 2 : 1;
        if (most >= k->def->nparams) break;
    }
    if (setlist_init(c, out, most < k->def->nparams ? most : k->def->nparams) != 0) return -1;
    for (int p = 0; p < N(c, node)->nkids / 2; p++) {
        if (yt_map_is_dup(&c->doc, node, p)) continue;
        int kn = N(c, node)->kids[2 * p], vn = N(c, node)->kids[2 * p + 1];
        if (N(c, kn)->type != YT_SCALAR) continue;
        const char *kt = N(c, kn)->text;
        char kp[300];
        sfmt(kp, sizeof kp, "%s.%s", path, kt);
        if (is_entry && (!strcmp(kt, "name") || (section == 1 && !strcmp(kt, "kind")))) continue;
        if (!strcmp(kt, "zip")) {
            if (parse_zip(c, k, vn, kp, zip_group, out) != 0) bad = 1;
            continue;
        }
        const rn_key *key = rn_kind_key(k, kt);
        if (!key) {
            if (is_entry && section == 0 && !strcmp(kt, "kind"))
                err_at(c, kn, kp, "unknown key \"kind\" (entries of models are always of kind train; other kinds "
                                  "go in tasks)");
            else if (!is_entry && (!strcmp(kt, "name") || !strcmp(kt, "kind")))
                err_at(c, kn, kp, "\"%s\" cannot have a default", kt);
            else unknown_key(c, kn, kp, names, nn);
            bad = 1;
            continue;
        }
        setting st;
        int r = parse_setting(c, key, vn, kp, 0, &st);
        if (r < 0) bad = 1;
        else if ((r | add_setting(c, out, &st)) != 0) bad = 1; /* r = 1: complete, but repeats a value */
    }
    return bad ? -1 : 0;
}

static void do_defaults(ctx *c, int node) {
    if (yt_is_null(&c->doc, node)) return;
    if (N(c, node)->type != YT_MAP) {
        err_at(c, node, "defaults", "expected a mapping (models: {...}, <kind>: {...}), got %s",
               yt_type_name(&c->doc, node));
        return;
    }
    const char *names[32];
    int nn = 0;
    names[nn++] = "models";
    for (int i = 0; rn_kinds[i] && nn < 32; i++)
        if (strcmp(rn_kinds[i]->def->name, "train") != 0) names[nn++] = rn_kinds[i]->def->name;
    for (int p = 0; p < N(c, node)->nkids / 2; p++) {
        if (yt_map_is_dup(&c->doc, node, p)) continue;
        int kn = N(c, node)->kids[2 * p], vn = N(c, node)->kids[2 * p + 1];
        if (N(c, kn)->type != YT_SCALAR) continue;
        const char *kt = N(c, kn)->text;
        char kp[300];
        sfmt(kp, sizeof kp, "defaults.%s", kt);
        const rn_kind *k = !strcmp(kt, "models") ? rn_kind_find("train") : rn_kind_find(kt);
        if (!k || !strcmp(kt, "train")) {
            if (!strcmp(kt, "train")) err_at(c, kn, kp, "unknown key \"train\" (did you mean \"models\"?)");
            else unknown_key(c, kn, kp, names, nn);
            continue;
        }
        if (yt_is_null(&c->doc, vn)) continue;
        if (N(c, vn)->type != YT_MAP) {
            err_at(c, vn, kp, "expected a mapping of %s keys, got %s", k->def->name, yt_type_name(&c->doc, vn));
            continue;
        }
        int ki = kind_index(k);
        if (parse_keys(c, k, vn, kp, 0, 0, 1, &c->defaults[ki]) != 0) c->defaults_bad[ki] = 1;
        c->defaults_set[ki] = 1;
    }
}

/* ============================================================== entries === */

static void do_entry(ctx *c, entry *e) {
    int node = e->node;
    if (N(c, node)->type != YT_MAP) {
        err_at(c, node, e->path, "expected a mapping (an entry with name: ...), got %s", yt_type_name(&c->doc, node));
        e->bad = 1;
        return;
    }
    if (e->section == 0) {
        e->kind = rn_kind_find("train");
    } else {
        int kn = yt_map_get(&c->doc, node, "kind");
        char kp[80];
        sfmt(kp, sizeof kp, "%s.kind", e->path);
        if (kn < 0) {
            err_at(c, node, e->path, "missing required key \"kind\"");
        } else if (N(c, kn)->type != YT_SCALAR || yt_is_null(&c->doc, kn)) {
            err_at(c, kn, kp, "expected a task kind, got %s",
                   N(c, kn)->type == YT_SCALAR ? "nothing" : yt_type_name(&c->doc, kn));
        } else {
            const char *kt = N(c, kn)->text;
            const rn_kind *k = rn_kind_find(kt);
            const char *names[32];
            int nn = 0;
            char list[300] = "";
            for (int i = 0; rn_kinds[i] && nn < 32; i++)
                if (strcmp(rn_kinds[i]->def->name, "train") != 0) {
                    names[nn++] = rn_kinds[i]->def->name;
                    size_t l = strlen(list);
                    sfmt(list + l, sizeof list - l, "%s%s", nn > 1 ? ", " : "", rn_kinds[i]->def->name);
                }
            if (k && !strcmp(kt, "train")) {
                err_at(c, kn, kp, "kind \"train\" entries go in the models section");
            } else if (!k) {
                char dym[120];
                did_you_mean(dym, sizeof dym, kt, names, nn);
                if (dym[0]) err_at(c, kn, kp, "unknown task kind \"%s\"%s", kt, dym);
                else err_at(c, kn, kp, "unknown task kind \"%s\" (kinds: %s)", kt, list);
            } else {
                e->kind = k;
            }
        }
    }
    int nm = yt_map_get(&c->doc, node, "name");
    char np[80];
    sfmt(np, sizeof np, "%s.name", e->path);
    if (nm < 0) {
        err_at(c, node, e->path, "missing required key \"name\"");
    } else if (N(c, nm)->type != YT_SCALAR || yt_is_null(&c->doc, nm)) {
        err_at(c, nm, np, "expected a name, got %s",
               N(c, nm)->type == YT_SCALAR ? "nothing" : yt_type_name(&c->doc, nm));
    } else if (!valid_name(N(c, nm)->text)) {
        err_at(c, nm, np, "invalid name \"%s\" (use letters, digits, '_' and '-')", N(c, nm)->text);
    } else if (N(c, nm)->len >= RN_NAME_LEN) {
        err_at(c, nm, np, "name is longer than %d characters", RN_NAME_LEN - 1);
    } else {
        e->name = N(c, nm)->text;
    }
    if (!e->kind) {
        e->bad = 1;
        return;
    }
    if (parse_keys(c, e->kind, node, e->path, 1, e->section, 2, &e->own) != 0) e->bad = 1;
    if (!e->name) e->bad = 1;
}

/* eff = defaults of the kind, then the entry's own settings (replacing a default in place). */
static void merge_defaults(ctx *c, entry *e) {
    int ki = kind_index(e->kind);
    const setlist *d = &c->defaults[ki];
    if (c->defaults_bad[ki]) e->bad = 1; /* reported at the defaults; e.g. zip lists of unequal lengths */
    int most = d->n + e->own.n;
    if (setlist_init(c, &e->eff, most < e->kind->def->nparams ? most : e->kind->def->nparams) != 0) return;
    for (int i = 0; i < d->n; i++) e->eff.v[e->eff.n++] = d->v[i];
    for (int i = 0; i < e->own.n; i++) {
        setting *old = setlist_find(&e->eff, e->own.v[i].key);
        if (old) *old = e->own.v[i];
        else if (e->eff.n < e->eff.cap) e->eff.v[e->eff.n++] = e->own.v[i];
    }
    for (int i = 0; i < e->kind->def->nparams; i++) {
        const rn_key *k = &e->kind->def->params[i];
        /* present but invalid: its own error is reported */
        if (!k->def && !setlist_find(&e->eff, k) && yt_map_get(&c->doc, e->node, k->name) < 0) {
            err_at(c, e->node, e->path, "missing required key \"%s\"", k->name);
            e->bad = 1;
        }
    }
}

/* The slot of name in the names hash: its entry, or the empty slot where it goes. */
static size_t name_slot(const ctx *c, const char *name) {
    size_t h = ip_fnv1a(name) & (c->names_cap - 1);
    while (c->names[h] >= 0 && strcmp(c->ent[c->names[h]].name, name) != 0) h = (h + 1) & (c->names_cap - 1);
    return h;
}

/* Builds the names hash; a name used twice is reported at its second use. */
static void index_names(ctx *c) {
    size_t cap = 64;
    while (cap < 2 * (size_t)c->nent) cap *= 2;
    c->names = palloc(c, cap * sizeof *c->names);
    if (!c->names) return;
    c->names_cap = cap;
    for (size_t i = 0; i < cap; i++) c->names[i] = -1;
    for (int i = 0; i < c->nent; i++) {
        entry *e = &c->ent[i];
        if (!e->name) continue;
        size_t h = name_slot(c, e->name);
        if (c->names[h] < 0) {
            c->names[h] = i;
            continue;
        }
        int j = c->names[h];
        int nm = yt_map_get(&c->doc, e->node, "name");
        char np[80];
        sfmt(np, sizeof np, "%s.name", e->path);
        err_at(c, nm, np, "duplicate name \"%s\" (first used by %s, line %d)", e->name, c->ent[j].path,
               N(c, c->ent[j].node)->line);
        e->bad = 1;
    }
}

static int find_entry(const ctx *c, const char *name) {
    if (!c->names) return -1;
    return c->names[name_slot(c, name)];
}

static void resolve_refs(ctx *c, entry *e) {
    for (int i = 0; i < e->eff.n; i++) {
        setting *s = &e->eff.v[i];
        if (!IP_P_IS_REF(s->key->type)) continue;
        rn_output want = s->key->type == IP_P_FINGERPRINT ? RN_OUT_FINGERPRINT : RN_OUT_MODEL;
        const char *what = want == RN_OUT_FINGERPRINT ? "fingerprint" : "model";
        for (int j = 0; j < s->nvals; j++) {
            const char *name = s->vals[j].text;
            if (!name[0]) continue; /* an optional reference left empty */
            char vp[300];
            if (s->nvals > 1 || N(c, s->node)->type == YT_SEQ) sfmt(vp, sizeof vp, "%s[%d]", s->path, j);
            else sfmt(vp, sizeof vp, "%s", s->path);
            int r = find_entry(c, name);
            if (r < 0) {
                const char *names[256];
                int nn = 0;
                for (int q = 0; q < c->nent && nn < 256 && !diags_full(c); q++)
                    if (c->ent[q].name && c->ent[q].kind && c->ent[q].kind->produces == want)
                        names[nn++] = c->ent[q].name;
                char dym[120];
                did_you_mean(dym, sizeof dym, name, names, nn);
                err_at(c, s->vnodes[j], vp, "unknown %s \"%s\"%s", what, name, dym);
                e->bad = 1;
            } else if (c->ent[r].kind && c->ent[r].kind->produces != want) {
                err_at(c, s->vnodes[j], vp, "\"%s\" is a %s of kind %s, which does not produce a %s", name,
                       strcmp(c->ent[r].kind->def->name, "train") ? "task" : "model", c->ent[r].kind->def->name, what);
                e->bad = 1;
            } else {
                s->refs[j] = r;
            }
        }
    }
}

/* Depth-first search for reference cycles; every entry on a cycle is marked bad. */
static void cycle_dfs(ctx *c, int i, int *stack, int depth) {
    entry *e = &c->ent[i];
    if (depth >= MAX_REF_DEPTH) { /* the expansion recurses along references: keep the stack small */
        err_at(c, e->node, e->path, "references nest more than %d deep (a chain of entries each naming the next)",
               MAX_REF_DEPTH);
        e->bad = 1;
        return;
    }
    e->color = 1;
    stack[depth] = i;
    for (int a = 0; a < e->eff.n; a++) {
        setting *s = &e->eff.v[a];
        if (!IP_P_IS_REF(s->key->type)) continue;
        for (int j = 0; j < s->nvals; j++) {
            int r = s->refs[j];
            if (r < 0) continue;
            if (c->ent[r].color == 1) {
                char msg[500] = "";
                int from = depth;
                while (from > 0 && stack[from] != r) from--;
                for (int q = from; q <= depth; q++) {
                    size_t l = strlen(msg);
                    sfmt(msg + l, sizeof msg - l, "%s -> ", c->ent[stack[q]].name);
                    c->ent[stack[q]].bad = 1;
                }
                size_t l = strlen(msg);
                sfmt(msg + l, sizeof msg - l, "%s", c->ent[r].name);
                char vp[300];
                if (N(c, s->node)->type == YT_SEQ) sfmt(vp, sizeof vp, "%s[%d]", s->path, j);
                else sfmt(vp, sizeof vp, "%s", s->path);
                err_at(c, s->vnodes[j], vp, "circular reference: %s", msg);
            } else if (c->ent[r].color == 0) {
                cycle_dfs(c, r, stack, depth + 1);
            }
        }
    }
    e->color = 2;
}

/* ============================================================ expansion === */

typedef struct axis {
    int set[RN_MAX_KEYS];   /* indices into eff */
    int nset;
    int n;
    int *ids;               /* a model axis: the referenced task of each value */
} axis;

/* A new task at the end of the list (zeroed). The list starts at the size
 * count_entry() predicts, so a pointer into it is only valid until the next
 * new_task(). */
static rn_task *new_task(ctx *c) {
    if (c->ntasks >= c->captasks) {
        if (c->ntasks >= MAX_TASKS) {
            /* count_entry() counts shards, so this is a safety net */
            const entry *e = c->cur_entry >= 0 ? &c->ent[c->cur_entry] : NULL;
            err_at(c, e ? e->node : -1, e ? e->path : "", "the spec expands to more than %d tasks (counting shards)",
                   MAX_TASKS);
            return NULL;
        }
        int cap = c->captasks ? 2 * c->captasks : 16;
        if (cap > MAX_TASKS) cap = MAX_TASKS;
        rn_task *tv = realloc(c->tasks, (size_t)cap * sizeof *tv);
        int *te = tv ? realloc(c->task_entry, (size_t)cap * sizeof *te) : NULL;
        if (tv) c->tasks = tv;
        if (!tv || !te) {
            c->oom = 1;
            return NULL;
        }
        c->task_entry = te;
        c->captasks = cap;
    }
    rn_task *t = &c->tasks[c->ntasks];
    memset(t, 0, sizeof *t);
    t->shard = RN_NOT_SPLIT;
    t->checkpoint = "";
    t->id = c->ntasks++;
    return t;
}

/* Allocations that live as long as the spec (tasks' keys, values, paths). */
static void *salloc(ctx *c, size_t n) {
    void *p = c->oom ? NULL : ip_arena_alloc(&c->s->arena, n);
    if (!p) c->oom = 1;
    return p;
}

static const char *sstrdup(ctx *c, const char *s) {
    char *p = salloc(c, strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

/* The values of setting s as tasks keep them: their texts (and lists) copied
 * once into the spec's arena, shared by every task that uses them. */
static const ip_value *setting_final(ctx *c, setting *s) {
    if (s->fin) return s->fin;
    ip_value *v = salloc(c, (size_t)s->nvals * sizeof *v);
    if (!v) return NULL;
    for (int j = 0; j < s->nvals; j++) {
        v[j] = s->vals[j];
        v[j].text = intern(c, s->vals[j].text);
        if (!v[j].text) return NULL;
        if (s->key->type == IP_P_STRING) v[j].u.s = v[j].text;
        if (s->key->type == IP_P_INTLIST) {
            int32_t *l = salloc(c, (1 + IP_MAX_INT_LIST) * sizeof *l);
            if (!l) return NULL;
            memcpy(l, s->vals[j].u.list, (size_t)(1 + s->vals[j].u.list[0]) * sizeof *l);
            v[j].u.list = l;
        }
    }
    s->fin = v;
    return v;
}

/* The default value of every key of kind ki (made once per load). */
static const ip_value *kind_defaults(ctx *c, const rn_kind *k) {
    int ki = rn_kind_index(k);
    if (c->kdef[ki]) return c->kdef[ki];
    ip_value *v = salloc(c, (size_t)k->def->nparams * sizeof *v);
    if (!v) return NULL;
    for (int q = 0; q < k->def->nparams; q++) {
        int32_t *l = salloc(c, (1 + IP_MAX_INT_LIST) * sizeof *l);
        if (!l) return NULL;
        ip_param_default(&k->def->params[q], &v[q], l);
        if (IP_P_IS_REF(k->def->params[q].type)) v[q].u.s = "";
    }
    c->kdef[ki] = v;
    return v;
}

/* Tasks per instance of an entry whose kind splits tasks into shards (the
 * mean of S + 1, or 1 when not split, over the combinations of its own
 * values; references do not change how a task splits), so that the cap is
 * checked before anything is expanded. instances bounds the combinations:
 * beyond MAX_TASKS the entry is over the cap whatever the factor. */
static double shard_factor(ctx *c, entry *e, double instances) {
    const rn_kind *k = e->kind;
    int nax = 0, axn[RN_MAX_KEYS], axis_of[RN_MAX_KEYS], done[RN_MAX_KEYS] = {0};
    double combos = 1;
    for (int i = 0; i < e->eff.n && i < RN_MAX_KEYS; i++) {
        setting *s = &e->eff.v[i];
        if (IP_P_IS_REF(s->key->type) || done[i]) continue;
        for (int j = i; j < e->eff.n && j < RN_MAX_KEYS; j++)
            if (j == i || (s->group > 0 && e->eff.v[j].group == s->group)) done[j] = 1, axis_of[j] = nax;
        axn[nax++] = s->nvals;
        combos *= s->nvals;
    }
    if (combos > MAX_TASKS || instances > MAX_TASKS) return 1;
    const ip_value *defs = kind_defaults(c, k);
    if (!defs) return -1;
    ip_value vals[RN_MAX_KEYS];
    rn_task t = {.k = k, .kind = k->def->name, .vals = vals, .shard = RN_NOT_SPLIT};
    int idx[RN_MAX_KEYS] = {0};
    double sum = 0;
    for (int it = 0; it < (int)combos; it++) {
        for (int q = 0; q < k->def->nparams; q++) {
            const rn_key *kk = &k->def->params[q];
            vals[q] = defs[q];
            for (int j = 0; j < e->eff.n && j < RN_MAX_KEYS; j++)
                if (e->eff.v[j].key == kk && !IP_P_IS_REF(kk->type)) vals[q] = e->eff.v[j].vals[idx[axis_of[j]]];
        }
        int S = k->shards(&t);
        sum += S > 1 ? S + 1 : 1;
        for (int a = nax - 1; a >= 0; a--) {
            if (++idx[a] < axn[a]) break;
            idx[a] = 0;
        }
    }
    return combos > 0 ? sum / combos : 1;
}

/* Instances of an entry (the product of its axes), or -1 when it cannot be
 * expanded (it, or something it refers to, has errors). */
static double count_entry(ctx *c, int ei) {
    entry *e = &c->ent[ei];
    if (e->counted) return e->count;
    e->counted = 1;
    e->count = -1;
    if (e->bad || !e->eff.v) return -1;
    double total = 1;
    int seen_group[RN_MAX_KEYS + 1] = {0};
    for (int i = 0; i < e->eff.n; i++) {
        setting *s = &e->eff.v[i];
        if (IP_P_IS_REF(s->key->type)) {
            double n = 0;
            for (int j = 0; j < s->nvals; j++) {
                if (s->refs[j] < 0) {
                    n += 1;
                    continue;
                }
                double r = count_entry(c, s->refs[j]);
                if (r < 0) {
                    e->bad = 1;
                    return -1;
                }
                n += r;
            }
            total *= n;
        } else if (s->group > 0) {
            int g = s->group <= RN_MAX_KEYS ? s->group : RN_MAX_KEYS;
            if (!seen_group[g]) total *= s->nvals;
            seen_group[g] = 1;
        } else {
            total *= s->nvals;
        }
    }
    if (e->kind->shards) {
        double f = shard_factor(c, e, total);
        if (f < 0) return -1;
        total *= f;
    }
    e->count = total;
    return total;
}

/* The task key: at most RN_KEY_LEN-1 characters, the tail hashed when longer. */
static int set_key(ctx *c, rn_task *t, const char *full) {
    size_t l = strlen(full);
    if (l < RN_KEY_LEN) return (t->key = sstrdup(c, full)) ? 0 : -1;
    char key[RN_KEY_LEN];
    size_t keep = KEY_HASH_KEEP;
    while (keep > 0 && ((unsigned char)full[keep] & 0xC0) == 0x80) keep--; /* not inside a UTF-8 character */
    memcpy(key, full, keep);
    sfmt(key + keep, RN_KEY_LEN - keep, "~%016llx", (unsigned long long)ip_fnv1a(full));
    return (t->key = sstrdup(c, key)) ? 0 : -1;
}

/* t->checkpoint = <outdir>/<subdir>/<the key, sanitised>.h5 (unique). */
static void set_checkpoint(ctx *c, rn_task *t, int ei, const char *subdir) {
    char name[CKPT_NAME_MAX + 40];
    size_t l = 0;
    for (const char *p = t->key; *p && l < CKPT_NAME_MAX; p++, l++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '=' || ch == '-';
        name[l] = ok ? ch : '_';
    }
    name[l] = '\0';
    uint64_t h = ip_fnv1a(t->key);
    if (strlen(t->key) > CKPT_NAME_MAX) sfmt(name + CKPT_NAME_MAX - 17, 18, "-%016llx", (unsigned long long)h);
    size_t base = strlen(name);
    for (int salt = 0;; salt++) {
        int r = strset_add(c, &c->ckpts, name, 1);
        if (r < 0) return;
        if (r == 1) break;
        /* the sanitised name is taken: append a short hash of the key */
        uint64_t hs = h + (uint64_t)salt * 0x9e3779b97f4a7c15ull;
        sfmt(name + base, sizeof name - base, "-%08llx", (unsigned long long)(hs >> 32));
    }
    char path[2048];
    sfmt(path, sizeof path, "%s/%s/%s.h5", c->s->outdir, subdir, name);
    if (strlen(path) >= RN_PATH_LEN) {
        err_at(c, c->output_node, "output", "checkpoint paths under \"%s\" are too long", c->s->outdir);
        c->ent[ei].bad = 1;
        return;
    }
    t->checkpoint = sstrdup(c, path);
}

static void expand(ctx *c, int ei);

/* Splits task `id` (complete but for its output and cost) into S shards
 * followed by the merge (see rn_kind.shards): the shards take ids id ..
 * id+S-1, the merge (same key as the unsplit task) id+S. Returns the merge's
 * id, or -1 (reported). */
static int emit_shards(ctx *c, int ei, int id, int S, const rn_ctx *rc) {
    const rn_kind *k = c->ent[ei].kind;
    rn_task whole = c->tasks[id];
    set_checkpoint(c, &whole, ei, "shards");
    /* the shards and the merge share one copy of the values, with shards = S */
    int nk = k->def->nparams;
    ip_value *vals = salloc(c, (size_t)nk * sizeof *vals);
    int *deps = salloc(c, (size_t)(whole.ndeps + S) * sizeof *deps);
    char nv[16];
    sfmt(nv, sizeof nv, "%d", S);
    const char *stext = sstrdup(c, nv);
    if (!vals || !deps || !stext || !whole.checkpoint) return -1;
    memcpy(vals, whole.vals, (size_t)nk * sizeof *vals);
    for (int q = 0; q < nk; q++)
        if (!strcmp(k->def->params[q].name, "shards")) vals[q].text = stext, vals[q].u.i = S;
    whole.vals = vals;
    int bad = whole.ndeps + S > RN_MAX_DEPS;
    for (int i = 0; i <= S && !bad; i++) {
        rn_task *t = i == 0 ? &c->tasks[id] : new_task(c);
        if (!t) return -1; /* reported */
        int tid = t->id;
        *t = whole;
        t->id = tid;
        t->shards = S;
        c->task_entry[tid] = ei;
        if (i < S) {
            char key[RN_KEY_LEN + 32], path[RN_PATH_LEN + 64];
            sfmt(key, sizeof key, "%s#shard=%d/%d", whole.key, i, S);
            t->shard = i;
            if (set_key(c, t, key) != 0) return -1;
            bad |= rn_shard_path(path, RN_PATH_LEN, whole.checkpoint, i, S) != 0;
            if (!bad && !(t->checkpoint = sstrdup(c, path))) return -1;
            if (strset_add(c, &c->keys, t->key, 0) == 0) bad = 1;
            t->seed = ip_stream(t->key, c->s->seed);
        } else {
            t->shard = RN_MERGE;
            memcpy(deps, whole.deps, (size_t)whole.ndeps * sizeof *deps);
            for (int d = 0; d < S; d++) deps[whole.ndeps + d] = id + d;
            t->deps = deps;
            t->ndeps = whole.ndeps + S;
        }
        t->cost = k->cost ? k->cost(t, rc) : 0;
    }
    if (c->oom) return -1;
    if (bad) {
        err_at(c, c->ent[ei].node, c->ent[ei].path, "task %s cannot be split into %d shards (key or path too long?)",
               c->tasks[id].key, S);
        c->ent[ei].bad = 1;
        return -1;
    }
    return id + S;
}

static void expand_entry(ctx *c, int ei) {
    entry *e = &c->ent[ei];
    const rn_kind *k = e->kind;
    const int nk = k->def->nparams;
    axis ax[RN_MAX_KEYS];
    int nax = 0;
    int done[RN_MAX_KEYS] = {0};
    int setaxis[RN_MAX_KEYS]; /* axis of each eff setting */
    int key_set[RN_MAX_KEYS]; /* eff setting of each key, -1 = the default */
    const ip_value *fin[RN_MAX_KEYS] = {0};
    double total = 1;
    if (nk > RN_MAX_KEYS || nk > 64) {
        err_at(c, e->node, e->path, "kind %s has too many keys", k->def->name);
        e->bad = 1;
        return;
    }
    const ip_value *defs = kind_defaults(c, k);
    if (!defs) return;
    for (int q = 0; q < nk; q++) key_set[q] = -1;
    for (int i = 0; i < e->eff.n; i++) {
        for (int q = 0; q < nk; q++)
            if (e->eff.v[i].key == &k->def->params[q]) key_set[q] = i;
        if (!IP_P_IS_REF(e->eff.v[i].key->type) && !(fin[i] = setting_final(c, &e->eff.v[i]))) return;
        if (done[i]) continue;
        axis *a = &ax[nax];
        memset(a, 0, sizeof *a);
        setting *s = &e->eff.v[i];
        if (IP_P_IS_REF(s->key->type)) {
            int n = 0;
            for (int j = 0; j < s->nvals; j++) n += s->refs[j] >= 0 ? c->ent[s->refs[j]].ninst : 1;
            a->ids = palloc(c, (size_t)(n ? n : 1) * sizeof *a->ids);
            if (!a->ids) return;
            for (int j = 0; j < s->nvals; j++) {
                if (s->refs[j] < 0) a->ids[a->n++] = -1; /* an empty optional reference */
                else
                    for (int q = 0; q < c->ent[s->refs[j]].ninst; q++) a->ids[a->n++] = c->ent[s->refs[j]].inst[q];
            }
            a->set[a->nset++] = i;
            done[i] = 1;
        } else {
            a->n = s->nvals;
            for (int j = i; j < e->eff.n; j++)
                if (j == i || (s->group > 0 && e->eff.v[j].group == s->group)) {
                    a->set[a->nset++] = j;
                    done[j] = 1;
                }
        }
        for (int q = 0; q < a->nset; q++) setaxis[a->set[q]] = nax;
        total *= a->n;
        nax++;
    }
    if (total < 1) { /* a model reference to an entry without instances */
        e->bad = 1;
        return;
    }
    int n = (int)total;
    e->inst = palloc(c, (size_t)n * sizeof *e->inst);
    if (!e->inst) return;
    const char *ename = sstrdup(c, e->name);
    if (!ename) return;
    /* which keys are swept (the same for every instance) and whether any is a reference */
    uint64_t swept = 0;
    int nrefs = 0;
    for (int q = 0; q < nk; q++) {
        if (key_set[q] >= 0 && ax[setaxis[key_set[q]]].n > 1) swept |= 1ull << q;
        nrefs += IP_P_IS_REF(k->def->params[q].type) && key_set[q] >= 0;
    }
    int idx[RN_MAX_KEYS] = {0};
    rn_ctx rc = {c->s->data_source, c->s->train_limit, c->s->test_limit, 0, 1};
    sbuf key = {0};
    for (int it = 0; it < n; it++) {
        rn_task *t = new_task(c);
        ip_value *vals = salloc(c, (size_t)nk * sizeof *vals);
        int *deps = nrefs ? salloc(c, (size_t)nrefs * sizeof *deps) : NULL;
        if (!t || !vals || (nrefs && !deps)) break;
        c->task_entry[t->id] = ei;
        t->k = k;
        t->kind = k->def->name;
        t->name = ename;
        t->vals = vals;
        t->deps = deps;
        t->swept = swept;
        key.n = 0;
        sb_add(&key, k->def->name);
        sb_add(&key, ":");
        sb_add(&key, e->name);
        int nsw = 0;
        size_t refs_at = 0;
        char *refs = NULL;
        for (int q = 0; q < nk; q++) {
            const rn_key *kk = &k->def->params[q];
            int si = key_set[q];
            vals[q] = defs[q];
            if (si < 0) continue;
            int at = idx[setaxis[si]];
            if (IP_P_IS_REF(kk->type)) {
                int id = ax[setaxis[si]].ids[at];
                if (id < 0) continue; /* an empty optional reference */
                const rn_task *ref = &c->tasks[id];
                vals[q].text = ref->key;
                vals[q].u.s = ref->checkpoint;
                deps[t->ndeps++] = ref->id;
                size_t rl = strlen(ref->key);
                char *nr = realloc(refs, refs_at + rl + 3);
                if (!nr) {
                    c->oom = 1;
                    break;
                }
                refs = nr;
                refs[refs_at++] = '<';
                memcpy(refs + refs_at, ref->key, rl);
                refs_at += rl;
                refs[refs_at++] = '>';
                refs[refs_at] = 0;
            } else {
                vals[q] = fin[si][at];
                if ((swept >> q) & 1) {
                    sb_add(&key, nsw++ ? "," : "[");
                    sb_add(&key, kk->name);
                    sb_add(&key, "=");
                    sb_add(&key, vals[q].text);
                }
            }
        }
        if (nsw) sb_add(&key, "]");
        if (refs) sb_add(&key, refs);
        free(refs);
        if (key.oom || c->oom || set_key(c, t, key.s) != 0) {
            c->oom = 1;
            break;
        }
        int r = strset_add(c, &c->keys, t->key, 0);
        if (r < 0) break;
        if (r == 0) {
            err_at(c, e->node, e->path, "the task %s appears twice (a sweep lists the same value twice?)", t->key);
            e->bad = 1;
        }
        t->seed = ip_stream(t->key, c->s->seed);
        int shards = k->shards ? k->shards(t) : 1;
        if (shards > 1) {
            int merged = emit_shards(c, ei, t->id, shards, &rc);
            if (merged < 0) break;
            e->inst[e->ninst++] = merged;
        } else {
            if (k->produces) set_checkpoint(c, t, ei, k->produces == RN_OUT_FINGERPRINT ? "fingerprints" : "ckpt");
            t->cost = k->cost ? k->cost(t, &rc) : 0;
            e->inst[e->ninst++] = t->id;
        }
        /* next combination: last axis fastest */
        for (int a = nax - 1; a >= 0; a--) {
            if (++idx[a] < ax[a].n) break;
            idx[a] = 0;
        }
    }
    free(key.s);
}

static void expand(ctx *c, int ei) {
    entry *e = &c->ent[ei];
    if (e->expanded) return;
    c->cur_entry = ei;
    e->expanded = 1;
    if (e->bad) return;
    for (int i = 0; i < e->eff.n; i++) {
        setting *s = &e->eff.v[i];
        if (!IP_P_IS_REF(s->key->type)) continue;
        for (int j = 0; j < s->nvals; j++) {
            if (s->refs[j] < 0) continue;
            expand(c, s->refs[j]);
            c->cur_entry = ei;
            if (c->ent[s->refs[j]].bad) {
                e->bad = 1; /* its error is already reported */
                return;
            }
        }
    }
    expand_entry(c, ei);
}

/* ============================================================== checks === */

static const setting *eff_find(const entry *e, const char *key) {
    for (int i = 0; i < e->eff.n; i++)
        if (!strcmp(e->eff.v[i].key->name, key)) return &e->eff.v[i];
    return NULL;
}

/* Each task as its core struct, filled like a worker fills it: a value too
 * long for its field, and the kind's rule across keys (ip_task_def.check:
 * a signature's capacity, fake1's reference), reported at the key blamed
 * (keys "a|b": the first one the entry sets). A check reads only the stored
 * fields, so tasks whose stored values are the same (a sweep of a repetition
 * seed) are checked once. */
static void check_tasks(ctx *c) {
    void *buf = NULL;
    size_t bufcap = 0;
    sbuf memo = {0};
    strset seen = {0};
    rn_ctx rc = {"", 0, 0, 0, 1};
    for (int i = 0; i < c->ntasks && !diags_full(c) && !c->oom; i++) {
        const rn_task *t = &c->tasks[i];
        const ip_task_def *d = t->k->def;
        if (t->shard >= 0) continue; /* a shard's values are its merge's */
        /* the memo key: the entry and every stored value's text */
        memo.n = 0;
        char en[16];
        sfmt(en, sizeof en, "%d\x1f", c->task_entry[i]);
        sb_add(&memo, en);
        for (int q = 0; q < d->nparams; q++)
            if (d->params[q].field != IP_F_NONE) {
                sb_add(&memo, t->vals[q].text);
                sb_add(&memo, "\x1f");
            }
        if (memo.oom) {
            c->oom = 1;
            break;
        }
        if (strset_add(c, &seen, memo.s, 2) == 0) continue;
        if (d->size > bufcap) {
            free(buf);
            bufcap = d->size;
            if (!(buf = malloc(bufcap))) {
                c->oom = 1;
                break;
            }
        }
        ip_task_defaults(d, buf);
        entry *e = &c->ent[c->task_entry[i]];
        ip_err err = {{0}};
        int q = 0;
        for (; q < d->nparams; q++)
            if (ip_param_store(&d->params[q], &t->vals[q], buf, &err) != 0) break;
        const char *key = NULL;
        char msg[400];
        if (q < d->nparams) {
            key = d->params[q].name;
            sfmt(msg, sizeof msg, "%s", err.msg);
        } else {
            if (d == &ip_train_def && c->data_ok) { /* the input shape a model is built on */
                ip_train_task *tt = buf;
                tt->model.in_c = c->in_c, tt->model.in_h = c->in_h, tt->model.in_w = c->in_w;
                tt->model.classes = c->classes;
            }
            (void)rc;
            if (!d->check || d->check(buf, &key, msg, sizeof msg) == 0) continue;
        }
        const setting *ks = NULL;
        for (const char *k = key; k && *k && !ks;) { /* "passport_layers|arch": the first one set */
            char one[64];
            size_t l = strcspn(k, "|");
            sfmt(one, sizeof one, "%.*s", (int)l, k);
            ks = eff_find(e, one);
            k += l + (k[l] == '|');
        }
        err_at(c, ks ? ks->node : e->node, ks ? ks->path : e->path, "%s", msg);
    }
    free(buf);
    free(memo.s);
    free(seen.v);
}

/* ================================================================= load === */

static void default_name(char *out, size_t cap, const char *file) {
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    size_t l = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b) l = (size_t)(dot - b);
    if (l >= cap) l = cap - 1;
    for (size_t i = 0; i < l; i++) {
        char ch = b[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                 ch == '_' || ch == '-';
        out[i] = ok ? ch : '_';
    }
    out[l] = '\0';
    if (!l) sfmt(out, cap, "spec");
}

/* The output must name a file whose directories can be made: checked here,
 * so that `run` writes nothing (no journal, no directory) for a bad one. */
static void check_output(ctx *c) {
    const char *out = c->s->output;
    int node = c->output_node;
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    struct stat st;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) {
        err_at(c, node, "output", "output \"%s\" names a directory, not the results file (e.g. %s%s%s.h5)", out, out,
               *base ? "/" : "", c->s->name);
        return;
    }
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode)) {
        err_at(c, node, "output", "output \"%s\" is an existing directory, not the results file (e.g. %s/%s.h5)", out,
               out, c->s->name);
        return;
    }
    /* every existing directory part must be a directory (mkdir -p would fail) */
    char part[1024];
    for (const char *p = strchr(out + 1, '/'); p; p = strchr(p + 1, '/')) {
        size_t l = (size_t)(p - out);
        if (l >= sizeof part) break;
        memcpy(part, out, l);
        part[l] = 0;
        if (stat(part, &st) == 0 && !S_ISDIR(st.st_mode)) {
            err_at(c, node, "output", "cannot put the results in \"%s\": \"%s\" is not a directory", out, part);
            return;
        }
    }
    if (stat(c->s->outdir, &st) == 0 && !S_ISDIR(st.st_mode))
        err_at(c, node, "output", "\"%s\" (where checkpoints go) exists and is not a directory", c->s->outdir);
}

static void do_top(ctx *c) {
    int root = c->root;
    rn_spec *s = c->s;
    int have[NTOP] = {0};
    s->seed = 1;
    for (int p = 0; p < N(c, root)->nkids / 2; p++) {
        if (yt_map_is_dup(&c->doc, root, p)) continue;
        int kn = N(c, root)->kids[2 * p], vn = N(c, root)->kids[2 * p + 1];
        if (N(c, kn)->type != YT_SCALAR) continue;
        const char *kt = N(c, kn)->text;
        int ti = -1;
        for (int i = 0; i < NTOP; i++)
            if (!strcmp(kt, top_names[i])) ti = i;
        if (ti < 0) {
            unknown_key(c, kn, kt, top_names, NTOP);
            continue;
        }
        have[ti] = vn + 1;
        ip_value tv;
        const char *v;
        if (!strcmp(kt, "name")) {
            if (typed_scalar(c, &key_str, vn, "name", &tv) != 0) continue;
            v = tv.text;
            if (!valid_spec_name(v))
                err_at(c, vn, "name", "invalid name \"%s\" (use letters, digits, '.', '_' and '-')", v);
            else if (strlen(v) >= sizeof s->name)
                err_at(c, vn, "name", "name is longer than %d characters", RN_NAME_LEN - 1);
            else sfmt(s->name, sizeof s->name, "%s", v);
        } else if (!strcmp(kt, "seed")) {
            if (N(c, vn)->type == YT_SEQ) {
                err_at(c, vn, "seed", "the spec seed cannot be swept (sweep a models entry's seed instead)");
                continue;
            }
            if (typed_scalar(c, &key_seed, vn, "seed", &tv) == 0) s->seed = (unsigned long long)tv.u.i;
        } else if (!strcmp(kt, "output")) {
            c->output_node = vn;
            if (typed_scalar(c, &key_str, vn, "output", &tv) != 0) continue;
            v = tv.text;
            if (!v[0]) err_at(c, vn, "output", "output must not be empty");
            else if (strlen(v) > 900) err_at(c, vn, "output", "output path is too long");
            else sfmt(s->output, sizeof s->output, "%s", v);
        } else if (!strcmp(kt, "data")) {
            do_data(c, vn);
        } else if (!strcmp(kt, "defaults")) {
            do_defaults(c, vn);
        }
    }
    if (!have[3]) err_at(c, root, "", "missing required key \"data\"");
    /* names, output */
    if (!s->name[0]) default_name(s->name, sizeof s->name, c->file);
    if (!s->output[0]) sfmt(s->output, sizeof s->output, "results/%s.h5", s->name);
    size_t ol = strlen(s->output);
    if (ol > 3 && !strcmp(s->output + ol - 3, ".h5"))
        sfmt(s->outdir, sizeof s->outdir, "%.*s.d", (int)(ol - 3), s->output);
    else sfmt(s->outdir, sizeof s->outdir, "%s.d", s->output);
    check_output(c);
    /* entries */
    int sec_node[2] = {have[5] - 1, have[6] - 1};
    int n = 0;
    for (int sec = 0; sec < 2; sec++) {
        int sn = sec_node[sec];
        if (sn < 0 || yt_is_null(&c->doc, sn)) continue;
        if (N(c, sn)->type != YT_SEQ) {
            err_at(c, sn, top_names[5 + sec], "expected a list of entries (- name: ...), got %s",
                   yt_type_name(&c->doc, sn));
            continue;
        }
        n += N(c, sn)->nkids;
    }
    c->ent = palloc(c, (size_t)(n ? n : 1) * sizeof *c->ent);
    if (!c->ent) return;
    for (int sec = 0; sec < 2; sec++) {
        int sn = sec_node[sec];
        if (sn < 0 || N(c, sn)->type != YT_SEQ) continue;
        for (int i = 0; i < N(c, sn)->nkids; i++) {
            entry *e = &c->ent[c->nent++];
            e->section = sec;
            e->index = i;
            e->node = N(c, sn)->kids[i];
            sfmt(e->path, sizeof e->path, "%s[%d]", top_names[5 + sec], i);
        }
    }
    if (c->nent == 0 && have[3]) err_at(c, root, "", "the spec has no models and no tasks");
}

static void load_tree(ctx *c) {
    c->nkinds = 0;
    while (rn_kinds[c->nkinds]) c->nkinds++;
    c->defaults = palloc(c, (size_t)c->nkinds * sizeof *c->defaults);
    c->defaults_set = palloc(c, (size_t)c->nkinds * sizeof *c->defaults_set);
    c->defaults_bad = palloc(c, (size_t)c->nkinds * sizeof *c->defaults_bad);
    if (!c->defaults || !c->defaults_set || !c->defaults_bad) return;
    c->output_node = c->source_node = -1;
    if (c->root < 0 || yt_is_null(&c->doc, c->root)) {
        err_at(c, -1, "", "the spec is empty");
        return;
    }
    if (N(c, c->root)->type != YT_MAP) {
        err_at(c, c->root, "", "expected a mapping of keys (name, seed, output, data, defaults, models, tasks), got %s",
               yt_type_name(&c->doc, c->root));
        return;
    }
    for (int i = 0; i < c->nov; i++) apply_override(c, i);
    if (c->oom) return;
    dup_walk(c, c->root, "", 0);
    do_top(c);
    if (c->oom) return;
    for (int i = 0; i < c->nent; i++) do_entry(c, &c->ent[i]);
    index_names(c); /* names: unique across models and tasks */
    if (c->oom) return;
    for (int i = 0; i < c->nent; i++)
        if (c->ent[i].kind && c->ent[i].own.v) merge_defaults(c, &c->ent[i]);
    for (int i = 0; i < c->nent; i++)
        if (c->ent[i].kind && c->ent[i].eff.v) resolve_refs(c, &c->ent[i]);
    int *stack = palloc(c, (size_t)(c->nent + 1) * sizeof *stack);
    if (!stack) return;
    for (int i = 0; i < c->nent; i++)
        if (c->ent[i].color == 0 && c->ent[i].eff.v) cycle_dfs(c, i, stack, 0);
    if (c->data_ok && !(c->opts && c->opts->skip_data_check)) check_data_files(c);
    /* Counting and expansion trust the settings of the entries they expand:
     * an entry with any error (its own, its kind's defaults', or that of an
     * entry it names) is marked bad and never expanded, so the other errors
     * found by expansion (signatures, ...) are still reported. */
    /* expansion: models, then tasks in file order, each after what it refers to */
    double total = 0;
    for (int i = 0; i < c->nent; i++) {
        double n = count_entry(c, i);
        if (n < 0) continue;
        if (total + n > MAX_TASKS) {
            err_at(c, c->ent[i].node, c->ent[i].path,
                   "expands to %.0f tasks (counting shards), which makes more than %d in the spec", n, MAX_TASKS);
            c->ent[i].bad = 1;
            return; /* nothing is expanded: no tasks are made beyond the cap */
        }
        total += n;
    }
    if (total > 0) {
        c->tasks = calloc((size_t)total, sizeof *c->tasks);
        c->task_entry = calloc((size_t)total, sizeof *c->task_entry);
        if (!c->tasks || !c->task_entry) {
            c->oom = 1;
            return;
        }
        c->captasks = (int)total;
    }
    for (int i = 0; i < c->nent && !c->oom; i++) expand(c, i);
    c->cur_entry = -1;
    if (!c->oom) check_tasks(c);
}

/* Sorts this load's diagnostics by place (stable): --set problems first. */
static void sort_diags(ctx *c) {
    rn_diag *v = c->diags->v + c->first_diag;
    int n = c->diags->n - c->first_diag;
    for (int i = 1; i < n; i++) {
        rn_diag t = v[i];
        int j = i - 1;
        while (j >= 0 && (v[j].line > t.line || (v[j].line == t.line && v[j].column > t.column))) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = t;
    }
}

int rn_spec_load_text(rn_spec *s, const char *file, const char *text, const rn_spec_opts *opts,
                      const rn_override *ov, int nov, rn_diags *diags) {
    ctx cc, *c = &cc;
    memset(s, 0, sizeof *s);
    memset(c, 0, sizeof *c);
    c->file = file;
    c->diags = diags;
    c->first_diag = diags->n;
    c->opts = opts;
    c->ov = ov;
    c->nov = nov > 0 && ov ? nov : 0;
    c->s = s;
    c->root = -1;
    c->cur_entry = -1;
    sfmt(s->file, sizeof s->file, "%s", file);
    yt_error ye;
    if (yt_check_text(text, strlen(text), &ye) != 0 || yt_parse(&c->doc, text, strlen(text), 0, &c->root, &ye) != 0) {
        diag_raw(c, file, ye.line, ye.col, "", ye.msg);
    } else {
        load_tree(c);
        oom_check(c);
    }
    int ok = c->nerr == 0;
    if (c->nerr) sort_diags(c);
    if (c->dropped) {
        char msg[80];
        sfmt(msg, sizeof msg, "... and %d more errors", c->dropped);
        push_diag(diags, file, 0, 0, "", "", msg);
    }
    if (ok) {
        s->text = strdup(text);
        size_t ol = 1;
        for (int i = 0; i < c->nov; i++) ol += strlen(ov[i].path) + strlen(ov[i].value) + 2;
        s->overrides = malloc(ol);
        if (s->overrides) {
            s->overrides[0] = 0;
            for (int i = 0, o = 0; i < c->nov; i++)
                o += sprintf(s->overrides + o, "%s=%s\n", ov[i].path, ov[i].value);
        }
        if (!s->text || !s->overrides) {
            diag_raw(c, file, 0, 0, "", "out of memory");
            ok = 0;
        }
    }
    if (ok) {
        s->tasks = c->tasks;
        s->ntasks = c->ntasks;
        c->tasks = NULL;
    }
    free(c->tasks);
    free(c->task_entry);
    free(c->keys.v);
    free(c->ckpts.v);
    free(c->interned.v);
    for (int i = 0; i < c->npool; i++) free(c->pool[i]);
    free(c->pool);
    yt_free(&c->doc);
    if (!ok) {
        rn_spec_free(s);
        return -1;
    }
    return 0;
}

int rn_spec_load_opts(rn_spec *s, const char *path, const rn_spec_opts *opts, const rn_override *ov, int nov,
                      rn_diags *diags) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n = 0, cap = 0;
    if (!f) {
        ctx c = {.file = path, .diags = diags, .first_diag = diags->n};
        char msg[300];
        sfmt(msg, sizeof msg, "cannot open the spec: %s", strerror(errno));
        diag_raw(&c, path, 0, 0, "", msg);
        return -1;
    }
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                ctx c = {.file = path, .diags = diags, .first_diag = diags->n};
                diag_raw(&c, path, 0, 0, "", "out of memory reading the spec");
                return -1;
            }
            text = t;
        }
        size_t got = fread(text + n, 1, 4096, f);
        n += got;
        if (got < 4096) break;
    }
    int rerr = ferror(f);
    fclose(f);
    text[n] = '\0';
    yt_error ye = {{0}, 0, 0};
    if (rerr || yt_check_text(text, n, &ye) != 0) { /* a NUL byte would cut the text short: checked here */
        free(text);
        ctx c = {.file = path, .diags = diags, .first_diag = diags->n};
        diag_raw(&c, path, ye.line, ye.col, "", rerr ? "cannot read the spec" : ye.msg);
        return -1;
    }
    int rc = rn_spec_load_text(s, path, text, opts, ov, nov, diags);
    free(text);
    return rc;
}

int rn_spec_load(rn_spec *s, const char *path, const rn_override *ov, int nov, rn_diags *diags) {
    return rn_spec_load_opts(s, path, NULL, ov, nov, diags);
}

void rn_spec_free(rn_spec *s) {
    free(s->text);
    free(s->overrides);
    free(s->tasks);
    ip_arena_free(&s->arena);
    memset(s, 0, sizeof *s);
}

void rn_spec_ctx(const rn_spec *s, struct rn_ctx *ctx) {
    memset(ctx, 0, sizeof *ctx);
    ctx->data_source = s->data_source;
    ctx->train_limit = s->train_limit;
    ctx->test_limit = s->test_limit;
    ctx->rank = 0;
    ctx->threads = 1;
}

/* ================================================================= docs === */

static void doc_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else fputc(*s, f);
    }
}

void rn_spec_doc_kinds(FILE *f) {
    static const char *const tnames[] = {"int", "float", "string", "bool", "enum", "model", "fingerprint", "int list"};
    for (int i = 0; rn_kinds[i]; i++) {
        const rn_kind *k = rn_kinds[i];
        int train = !strcmp(k->def->name, "train");
        fprintf(f, "### `%s`%s\n\n", k->def->name, train ? " (entries of `models`)" : "");
        if (k->def->doc[0] >= 'a' && k->def->doc[0] <= 'z') fputc(k->def->doc[0] - 'a' + 'A', f);
        else if (k->def->doc[0]) fputc(k->def->doc[0], f);
        if (k->def->doc[0]) doc_cell(f, k->def->doc + 1);
        fprintf(f, ".%s\n\n",
                k->produces == RN_OUT_MODEL         ? " Produces a model: other tasks can name it in `model:`."
                : k->produces == RN_OUT_FINGERPRINT ? " Produces a fingerprint: `match` tasks name it in `fingerprint:`."
                                                    : "");
        fprintf(f, "| key | type | default | range / choices | description |\n");
        fprintf(f, "|---|---|---|---|---|\n");
        for (int j = 0; j < k->def->nparams; j++) {
            const rn_key *kk = &k->def->params[j];
            fprintf(f, "| `%s` | %s | ", kk->name, tnames[kk->type]);
            if (!kk->def) fputs("*required*", f);
            else if (!kk->def[0]) fputs("\"\"", f);
            else fprintf(f, "`%s`", kk->def);
            fputs(" | ", f);
            if (kk->type == IP_P_INTLIST) {
                fprintf(f, "increasing, each %.10g .. %.10g, at most %d", kk->min, kk->max, IP_MAX_INT_LIST);
            } else if (kk->type == IP_P_INT || kk->type == IP_P_FLOAT) {
                if (kk->min <= -1e300 && kk->max >= 1e300) fputs("any", f);
                else fprintf(f, "%.10g .. %.10g", kk->min, kk->max);
            } else if (kk->type == IP_P_ENUM) {
                const char *p = kk->choices;
                int first = 1;
                while (*p) {
                    size_t n = strcspn(p, "|");
                    fprintf(f, "%s`%.*s`", first ? "" : ", ", (int)n, p);
                    first = 0;
                    p += n;
                    if (*p) p++;
                }
            } else if (kk->type == IP_P_MODEL) {
                fputs("a model's name", f);
            } else if (kk->type == IP_P_FINGERPRINT) {
                fputs("a fingerprint entry's name", f);
            }
            fputs(" | ", f);
            doc_cell(f, kk->doc);
            fputs(" |\n", f);
        }
        fputs("\n", f);
    }
}
