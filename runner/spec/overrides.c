/* `--set key.path=value`: applied to the YAML tree before validation, each error naming the override. */
#include "spec_impl.h"

int parse_ov_path(const char *path, ovstep *st, int max) {
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

void ov_fail(ctx *c, const rn_override *o, const char *fmt, ...) {
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
int map_set(ctx *c, int map, const char *key, int v, int origin) {
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
int map_child_map(ctx *c, int map, const char *key, int origin) {
    int v = yt_map_get(&c->doc, map, key);
    if (v >= 0 && N(c, v)->type == YT_MAP) return v;
    if (v >= 0 && !yt_is_null(&c->doc, v)) return -1;
    int m = yt_new_map(&c->doc, origin, 0, 0);
    if (m < 0) return c->oom = 1, -1;
    return map_set(c, map, key, m, origin) == 0 ? m : -1;
}

/* The override's value as a node: a flow list/mapping or quoted scalar is
 * parsed as YAML, anything else is one plain scalar (so "a: b" stays text). */
int ov_value(ctx *c, const rn_override *o, int origin) {
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

void apply_override(ctx *c, int oi) {
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
            kind = models_kind();
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
                if (!is_models_kind(rn_kinds[i])) names[nn++] = rn_kinds[i]->def->name;
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
            if (state == S_DEFAULTS) kind = rn_kind_find(strcmp(p->name, "models") ? p->name : models_kind()->def->name);
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
