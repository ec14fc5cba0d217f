/* The sections of a spec: duplicate keys, data (checked by core/io/data.c), defaults, entries,
 * names, references and cycles. */
#include "spec_impl.h"

void dup_walk(ctx *c, int node, const char *path, int depth) {
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


int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

/* The spec's name (a file name): letters, digits, '.', '_', '-', not starting with '.'. */
int valid_spec_name(const char *s) {
    if (!*s || *s == '.') return 0;
    for (; *s; s++)
        if (!(valid_name((char[]){*s, 0}) || *s == '.')) return 0;
    return 1;
}

/* data.source's text (core/io/data.c knows the kinds and their shapes): on
 * success the input shape is known and check_data_files may look at the files. */
void check_source(ctx *c, int node, const char *src) {
    ip_data_shape sh;
    ip_err e = {{0}};
    if (ip_data_check_source(src, 0, rn_suggest, &sh, &e) != 0) {
        err_at(c, node, "data.source", "%s", e.msg);
        return;
    }
    c->in_c = sh.c, c->in_h = sh.h, c->in_w = sh.w, c->classes = sh.classes;
    c->data_ok = 1;
}

/* The files core/io/data.c will open: all there, and holding what they should
 * (ip_data_check_source with its file check; the text passed check_source). */
void check_data_files(ctx *c) {
    ip_data_shape sh;
    ip_err e = {{0}};
    if (ip_data_check_source(c->s->data_source, 1, rn_suggest, &sh, &e) != 0)
        err_at(c, c->source_node, "data.source", "%s", e.msg);
}

void do_data(ctx *c, int node) {
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

int kind_index(const rn_kind *k) {
    for (int i = 0; rn_kinds[i]; i++)
        if (rn_kinds[i] == k) return i;
    return -1;
}

/* The settings of one entry-like mapping (an entry or a defaults section).
 * Returns 0 when every key was valid. */
int parse_keys(ctx *c, const rn_kind *k, int node, const char *path, int is_entry, int section,
                      int zip_group, setlist *out) {
    const char *names[RN_MAX_KEYS + 4];
    int nn = entry_key_names(k, is_entry, is_entry && section == SEC_TASKS, 1, names);
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
        if (is_entry && (!strcmp(kt, "name") || (section == SEC_TASKS && !strcmp(kt, "kind")))) continue;
        if (!strcmp(kt, "zip")) {
            if (parse_zip(c, k, vn, kp, zip_group, out) != 0) bad = 1;
            continue;
        }
        if (!strcmp(kt, "threads")) continue; /* not a task key: parse_threads */
        const rn_key *key = rn_kind_key(k, kt);
        if (!key) {
            if (is_entry && section == SEC_MODELS && !strcmp(kt, "kind"))
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

void do_defaults(ctx *c, int node) {
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
        if (!is_models_kind(rn_kinds[i])) names[nn++] = rn_kinds[i]->def->name;
    for (int p = 0; p < N(c, node)->nkids / 2; p++) {
        if (yt_map_is_dup(&c->doc, node, p)) continue;
        int kn = N(c, node)->kids[2 * p], vn = N(c, node)->kids[2 * p + 1];
        if (N(c, kn)->type != YT_SCALAR) continue;
        const char *kt = N(c, kn)->text;
        char kp[300];
        sfmt(kp, sizeof kp, "defaults.%s", kt);
        const rn_kind *k = !strcmp(kt, "models") ? models_kind() : rn_kind_find(kt);
        if (!k || (is_models_kind(k) && strcmp(kt, "models") != 0)) { /* `train:` instead of `models:` */
            if (k) err_at(c, kn, kp, "unknown key \"%s\" (did you mean \"models\"?)", kt);
            else unknown_key(c, kn, kp, names, nn);
            continue;
        }
        if (yt_is_null(&c->doc, vn)) continue;
        if (N(c, vn)->type != YT_MAP) {
            err_at(c, vn, kp, "expected a mapping of %s keys, got %s", k->def->name, yt_type_name(&c->doc, vn));
            continue;
        }
        int ki = kind_index(k);
        int th = parse_threads(c, vn, kp);
        if (parse_keys(c, k, vn, kp, 0, SEC_MODELS, 1, &c->defaults[ki]) != 0 || th < 0) c->defaults_bad[ki] = 1;
        else c->def_threads[ki] = th;
        c->defaults_set[ki] = 1;
    }
}


void do_entry(ctx *c, entry *e) {
    int node = e->node;
    if (N(c, node)->type != YT_MAP) {
        err_at(c, node, e->path, "expected a mapping (an entry with name: ...), got %s", yt_type_name(&c->doc, node));
        e->bad = 1;
        return;
    }
    if (e->section == SEC_MODELS) {
        e->kind = models_kind();
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
                if (!is_models_kind(rn_kinds[i])) {
                    names[nn++] = rn_kinds[i]->def->name;
                    size_t l = strlen(list);
                    sfmt(list + l, sizeof list - l, "%s%s", nn > 1 ? ", " : "", rn_kinds[i]->def->name);
                }
            if (k && is_models_kind(k)) {
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
    if ((e->threads = parse_threads(c, node, e->path)) < 0) e->bad = 1;
    if (!e->name) e->bad = 1;
}

/* eff = defaults of the kind, then the entry's own settings (replacing a default in place). */
void merge_defaults(ctx *c, entry *e) {
    int ki = kind_index(e->kind);
    const setlist *d = &c->defaults[ki];
    if (c->defaults_bad[ki]) e->bad = 1; /* reported at the defaults; e.g. zip lists of unequal lengths */
    if (!e->threads) e->threads = c->def_threads[ki];
    int most = d->n + e->own.n + 1; /* + the spec's protocol */
    if (setlist_init(c, &e->eff, most < e->kind->def->nparams ? most : e->kind->def->nparams) != 0) return;
    for (int i = 0; i < d->n; i++) e->eff.v[e->eff.n++] = d->v[i];
    for (int i = 0; i < e->own.n; i++) {
        setting *old = setlist_find(&e->eff, e->own.v[i].key);
        if (old) *old = e->own.v[i];
        else if (e->eff.n < e->eff.cap) e->eff.v[e->eff.n++] = e->own.v[i];
    }
    /* the spec's protocol, for a kind that has the key and an entry that leaves it */
    const rn_key *pk = ip_task_param(e->kind->def, "protocol");
    if (c->protocol.key && pk && !setlist_find(&e->eff, pk) && e->eff.n < e->eff.cap) {
        setting st = c->protocol;
        st.key = pk;
        st.fin = NULL;
        e->eff.v[e->eff.n++] = st;
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
size_t name_slot(const ctx *c, const char *name) {
    size_t h = ip_fnv1a(name) & (c->names_cap - 1);
    while (c->names[h] >= 0 && strcmp(c->ent[c->names[h]].name, name) != 0) h = (h + 1) & (c->names_cap - 1);
    return h;
}

/* Builds the names hash; a name used twice is reported at its second use. */
void index_names(ctx *c) {
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

int find_entry(const ctx *c, const char *name) {
    if (!c->names) return -1;
    return c->names[name_slot(c, name)];
}

void resolve_refs(ctx *c, entry *e) {
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
                       is_models_kind(c->ent[r].kind) ? "model" : "task", c->ent[r].kind->def->name, what);
                e->bad = 1;
            } else {
                s->refs[j] = r;
            }
        }
    }
}

/* Depth-first search for reference cycles; every entry on a cycle is marked bad. */
void cycle_dfs(ctx *c, int i, int *stack, int depth) {
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
