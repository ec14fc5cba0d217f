/* A key's value: a scalar parsed once into a typed value (by the key's row), a sweep list, a
 * {range: ...}, a zip of lists; repeated values. */
#include "spec_impl.h"

int is_int_text(const char *s) {
    if (*s == '+' || *s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* A decimal number: [+-] digits [. digits] [e [+-] digits] (no inf/nan/hex). */
int is_num_text(const char *s, double *v) {
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

const char *type_desc(const rn_key *k, char *buf, size_t cap) {
    switch (k->type) {
    case IP_P_INT: return "an integer";
    case IP_P_FLOAT: return "a number";
    case IP_P_BOOL: return "true or false";
    case IP_P_STRING: return "a string";
    case IP_P_MODEL: return "the name of a model";
    case IP_P_FINGERPRINT: return "the name of a fingerprint entry";
    case IP_P_COPIES:
    case IP_P_OTHERS: return "the name of a model entry, or a list of them";
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

const char *enum_suggest(const char *choices, const char *v, char *out, size_t cap) {
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

void fmt_num(char *out, size_t cap, double v) {
    if (v == 0) v = 0; /* no "-0" */
    sfmt(out, cap, "%.10g", v);
}

/* Checks one scalar against a key's type and range and parses it, once, into
 * *out (ints with canonical text, bools true/false, other numbers with the
 * text as written; an INTLIST's items in the load's pool). */
int typed_scalar(ctx *c, const rn_key *k, int node, const char *path, ip_value *out) {
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
    case IP_P_INT:
    case IP_P_FLOAT:
    case IP_P_BOOL: {
        /* YAML's part: a plain scalar of the type's shape (not "1" quoted, not
         * .inf); the value and its range: the row's own rule (ip_value_parse) */
        double dv;
        int shaped = n->plain && (k->type == IP_P_INT     ? is_int_text(t)
                                  : k->type == IP_P_FLOAT ? is_num_text(t, &dv)
                                                          : 1);
        if (shaped) {
            char msg[300], buf[32];
            if (ip_value_parse(k, t, out, NULL, msg, sizeof msg) != 0) {
                err_at(c, node, path, "%s", msg);
                return -1;
            }
            if (k->type != IP_P_INT) return 0;
            sfmt(buf, sizeof buf, "%lld", (long long)out->u.i); /* the key shows ints canonical: 007 is 7 */
            out->text = pstrdup(c, buf);
            return out->text ? 0 : -1;
        }
        if (k->type == IP_P_BOOL) err_at(c, node, path, "expected true or false, got \"%s\"", t);
        else if (k->type == IP_P_INT && n->plain && is_num_text(t, &dv)) err_at(c, node, path, "expected an integer, got %s", t);
        else if (!n->plain)
            err_at(c, node, path, "expected %s, got the string \"%s\"", k->type == IP_P_INT ? "an integer" : "a number", t);
        else err_at(c, node, path, "expected %s, got \"%s\"", k->type == IP_P_INT ? "an integer" : "a number", t);
        return -1;
    }
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
    case IP_P_COPIES:
    case IP_P_OTHERS:
        if (n->len == 0) { /* "" names nothing: an optional reference is left out, not emptied */
            if (k->def)
                err_at(c, node, path, "empty %s name (leave the key out for none)",
                       k->type == IP_P_FINGERPRINT ? "fingerprint" : "model");
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


int setlist_init(ctx *c, setlist *l, int cap) {
    l->v = palloc(c, (size_t)cap * sizeof *l->v);
    l->n = 0;
    l->cap = l->v ? cap : 0;
    return l->v ? 0 : -1;
}

setting *setlist_find(setlist *l, const rn_key *k) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i].key == k) return &l->v[i];
    return NULL;
}

int setting_alloc(ctx *c, setting *s, int n) {
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
char *canon_value(const rn_key *k, const ip_value *v) {
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

int canon_cmp(const void *a, const void *b) {
    const canon_item *x = a, *y = b;
    int r = strcmp(x->text, y->text);
    return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* A sweep lists each value once (docs/spec.md): the members of one axis (a
 * setting, or the settings of a zip group, all with n values) must not repeat
 * a combination. Sorting, not pairs: a list may hold 100,000 values.
 * Reports each repetition at the repeated value; returns -1 when any. */
int check_repeats(ctx *c, setting *const *m, int nm, const char *zpath, int znode) {
    int n = m[0]->nvals, bad = 0;
    if (n < 2) return 0;
    canon_item *it = calloc((size_t)n, sizeof *it);
    if (!it) return c->oom = 1, -1;
    for (int i = 0; i < n && !c->oom; i++) {
        sbuf b = {0};
        for (int j = 0; j < nm; j++) {
            char *v = canon_value(m[j]->key, &m[j]->vals[i]);
            if (!v) b.oom = 1;
            else ip_strbuf_add(&b, v);
            free(v);
            ip_strbuf_add(&b, "\x1f");
        }
        if (b.oom || !b.p) {
            free(b.p);
            c->oom = 1;
        }
        it[i].text = b.p;
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
int parse_range(ctx *c, const rn_key *k, int node, const char *path, setting *s) {
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
int parse_setting(ctx *c, const rn_key *k, int node, const char *path, int in_zip, setting *s) {
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
/* An entry's or a defaults section's `threads` (key_threads): 0 when absent,
 * -1 when bad (reported). One value: it cannot be swept. */
int parse_threads(ctx *c, int node, const char *path) {
    int vn = yt_map_get(&c->doc, node, "threads");
    if (vn < 0) return 0;
    char kp[300];
    sfmt(kp, sizeof kp, "%s.threads", path);
    if (N(c, vn)->type == YT_SEQ) {
        err_at(c, vn, kp, "threads cannot be swept (it changes no result, only how fast a task runs)");
        return -1;
    }
    ip_value v;
    return typed_scalar(c, &key_threads, vn, kp, &v) == 0 ? (int)v.u.i : -1;
}

int entry_key_names(const rn_kind *k, int with_name, int with_kind, int with_zip, const char **out) {
    int n = 0;
    if (with_name) out[n++] = "name";
    if (with_kind) out[n++] = "kind";
    if (with_zip) out[n++] = "zip";
    for (int i = 0; k && i < k->def->nparams && n < RN_MAX_KEYS + 3; i++) out[n++] = k->def->params[i].name;
    if (with_zip) out[n++] = "threads"; /* beside the kind's keys, where zip may be: not in a zip (never swept) */
    return n;
}

void unknown_key(ctx *c, int keynode, const char *path, const char *const *cands, int n) {
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
int add_setting(ctx *c, setlist *l, const setting *st) {
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
int parse_zip(ctx *c, const rn_kind *k, int node, const char *path, int group, setlist *l) {
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
            if (!strcmp(N(c, kn)->text, "name") || !strcmp(N(c, kn)->text, "kind") || !strcmp(N(c, kn)->text, "zip") ||
                !strcmp(N(c, kn)->text, "threads"))
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
