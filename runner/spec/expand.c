/* Expansion of every entry into tasks (the cartesian product of its axes, shards), their keys,
 * seeds and output paths, and the checks on the filled tasks (ip_task_def.check). */
#include "spec_impl.h"

typedef struct axis {
    int set[RN_MAX_KEYS];   /* indices into eff */
    int nset;
    int n;
    int *ids;               /* a model axis: the referenced task of each value */
} axis;

/* A new task at the end of the list (zeroed). The list starts at the size
 * count_entry() predicts, so a pointer into it is only valid until the next
 * new_task(). */
rn_task *new_task(ctx *c) {
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
void *salloc(ctx *c, size_t n) {
    void *p = c->oom ? NULL : ip_arena_alloc(&c->s->arena, n);
    if (!p) c->oom = 1;
    return p;
}

const char *sstrdup(ctx *c, const char *s) {
    char *p = salloc(c, strlen(s) + 1);
    if (p) strcpy(p, s);
    return p;
}

/* The values of setting s as tasks keep them: their texts (and lists) copied
 * once into the spec's arena, shared by every task that uses them. */
const ip_value *setting_final(ctx *c, setting *s) {
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
const ip_value *kind_defaults(ctx *c, const rn_kind *k) {
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
double shard_factor(ctx *c, entry *e, double instances) {
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
double count_entry(ctx *c, int ei) {
    entry *e = &c->ent[ei];
    if (e->counted) return e->count;
    e->counted = 1;
    e->count = -1;
    if (e->bad || !e->eff.v) return -1;
    double total = 1;
    int seen_group[RN_MAX_KEYS + 1] = {0};
    for (int i = 0; i < e->eff.n; i++) {
        setting *s = &e->eff.v[i];
        if (IP_P_IS_SET(s->key->type)) continue; /* a set does not sweep: each task takes its members at once */
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
int set_key(ctx *c, rn_task *t, const char *full) {
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
void set_checkpoint(ctx *c, rn_task *t, int ei, const char *subdir) {
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


/* Splits task `id` (complete but for its output and cost) into S shards
 * followed by the merge (see rn_kind.shards): the shards take ids id ..
 * id+S-1, the merge (same key as the unsplit task) id+S. Returns the merge's
 * id, or -1 (reported). */
int emit_shards(ctx *c, int ei, int id, int S, const rn_ctx *rc) {
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
        rn_ctx now = *rc;
        now.tasks = c->tasks; /* moves as the list grows */
        t->cost = k->cost ? k->cost(t, &now) : 0;
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

/* The model sets of task t (IP_P_COPIES / IP_P_OTHERS): every instance of
 * the entries a set names that stands in its relation to the task's `model`
 * (rn_task_descends), in the order the entries list them. Each becomes a
 * dependency; the value's text is the entry names as written, its path the
 * members' checkpoints joined by IP_PATH_SET_SEP. An empty set, or one past
 * IP_MAX_MODEL_SET, is an error at the key. seen: the entry's scratch for
 * rn_task_descends (a task id per slot; *mark: its last stamp), allocated
 * once per entry: the members are tasks of other entries, expanded before. */
static int fill_sets(ctx *c, int ei, rn_task *t, ip_value *vals, int *deps, const int *key_set, int *seen,
                     int *mark) {
    entry *e = &c->ent[ei];
    const ip_task_def *d = t->k->def;
    const ip_param *mp = ip_task_param(d, "model");
    int owner = -1;
    if (mp && mp->type == IP_P_MODEL)
        for (int q = 0; q < t->ndeps && owner < 0; q++)
            if (t->vals[mp - d->params].u.s == c->tasks[t->deps[q]].checkpoint) owner = t->deps[q];
    int rc = 0;
    sbuf names = {0}, paths = {0};
    for (int q = 0; q < d->nparams && rc == 0; q++) {
        const ip_param *p = &d->params[q];
        if (!IP_P_IS_SET(p->type) || key_set[q] < 0) continue;
        const setting *s = &e->eff.v[key_set[q]];
        if (owner < 0) {
            err_at(c, s->node, s->path, "%s needs the task's model (its `model` key) to choose its members", p->name);
            e->bad = 1;
            break;
        }
        names.len = paths.len = 0;
        int count = 0;
        for (int j = 0; j < s->nvals; j++) {
            if (s->refs[j] < 0) continue;
            if (names.len) ip_strbuf_add(&names, ",");
            ip_strbuf_add(&names, s->vals[j].text);
            const entry *r = &c->ent[s->refs[j]];
            for (int i = 0; i < r->ninst; i++) {
                int id = r->inst[i];
                int copy = id != owner && rn_task_descends(c->tasks, id, owner, seen, ++*mark);
                int other = id != owner && !copy;
                if (!(p->type == IP_P_COPIES ? copy : other)) continue;
                const char *path = c->tasks[id].checkpoint;
                if (strchr(path, IP_PATH_SET_SEP)) {
                    err_at(c, c->output_node, "output", "the output directory \"%s\" contains '%c', which separates "
                           "the paths of a model set (%s): choose another", c->s->outdir, IP_PATH_SET_SEP, p->name);
                    e->bad = 1;
                    rc = -1;
                    break;
                }
                if (++count > IP_MAX_MODEL_SET) break;
                if (paths.len) ip_strbuf_add(&paths, (char[]){IP_PATH_SET_SEP, 0});
                ip_strbuf_add(&paths, path);
                deps[t->ndeps++] = id;
            }
        }
        if (rc != 0) break;
        if (count == 0 || count > IP_MAX_MODEL_SET) {
            if (count == 0)
                err_at(c, s->node, s->path, "no instance of %s is %s %s", names.p ? names.p : "",
                       p->type == IP_P_COPIES ? "derived from" : "independent of", c->tasks[owner].key);
            else err_at(c, s->node, s->path, "%s has more than %d members for %s", p->name, IP_MAX_MODEL_SET,
                        c->tasks[owner].key);
            e->bad = 1;
            rc = -1;
            break;
        }
        if (names.oom || paths.oom || !(vals[q].text = sstrdup(c, names.p)) ||
            !(vals[q].u.s = sstrdup(c, paths.p))) {
            c->oom = 1;
            rc = -1;
        }
    }
    ip_strbuf_free(&names);
    ip_strbuf_free(&paths);
    return rc;
}

void expand_entry(ctx *c, int ei) {
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
        if (IP_P_IS_SET(e->eff.v[i].key->type)) { /* no axis: filled per task (fill_sets) */
            done[i] = 1;
            setaxis[i] = -1;
            continue;
        }
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
    int nrefs = 0, has_sets = 0;
    for (int q = 0; q < nk; q++) {
        if (key_set[q] >= 0 && setaxis[key_set[q]] >= 0 && ax[setaxis[key_set[q]]].n > 1) swept |= 1ull << q;
        if (key_set[q] >= 0 && IP_P_IS_SET(k->def->params[q].type)) {
            const setting *st = &e->eff.v[key_set[q]];
            for (int j = 0; j < st->nvals; j++) nrefs += st->refs[j] >= 0 ? c->ent[st->refs[j]].ninst : 0;
            has_sets = 1;
        } else {
            nrefs += IP_P_IS_REF(k->def->params[q].type) && key_set[q] >= 0;
        }
    }
    int *seen = has_sets ? calloc((size_t)c->ntasks, sizeof *seen) : NULL, mark = 0;
    if (has_sets && !seen) {
        c->oom = 1;
        return;
    }
    int idx[RN_MAX_KEYS] = {0};
    rn_ctx rc = {.data_source = c->s->data_source, .train_limit = c->s->train_limit, .test_limit = c->s->test_limit, .threads = 1};
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
        t->threads = (uint16_t)(e->threads > 0 ? e->threads : 0);
        key.len = 0;
        ip_strbuf_add(&key, k->def->name);
        ip_strbuf_add(&key, ":");
        ip_strbuf_add(&key, e->name);
        int nsw = 0;
        size_t refs_at = 0;
        char *refs = NULL;
        for (int q = 0; q < nk; q++) {
            const rn_key *kk = &k->def->params[q];
            int si = key_set[q];
            vals[q] = defs[q];
            if (si < 0 || IP_P_IS_SET(kk->type)) continue; /* a set: fill_sets, once the model is known */
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
                    ip_strbuf_add(&key, nsw++ ? "," : "[");
                    ip_strbuf_add(&key, kk->name);
                    ip_strbuf_add(&key, "=");
                    ip_strbuf_add(&key, vals[q].text);
                }
            }
        }
        if (nsw) ip_strbuf_add(&key, "]");
        if (refs) ip_strbuf_add(&key, refs);
        free(refs);
        if (has_sets && fill_sets(c, ei, t, vals, deps, key_set, seen, &mark) != 0) break;
        if (key.oom || c->oom || set_key(c, t, key.p) != 0) {
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
            rc.tasks = c->tasks; /* moves as the list grows */
            t->cost = k->cost ? k->cost(t, &rc) : 0;
            e->inst[e->ninst++] = t->id;
        }
        /* next combination: last axis fastest */
        for (int a = nax - 1; a >= 0; a--) {
            if (++idx[a] < ax[a].n) break;
            idx[a] = 0;
        }
    }
    ip_strbuf_free(&key);
    free(seen);
}

void expand(ctx *c, int ei) {
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


const setting *eff_find(const entry *e, const char *key) {
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
void check_tasks(ctx *c) {
    void *buf = NULL;
    size_t bufcap = 0;
    sbuf memo = {0};
    strset seen = {0};
    for (int i = 0; i < c->ntasks && !diags_full(c) && !c->oom; i++) {
        const rn_task *t = &c->tasks[i];
        const ip_task_def *d = t->k->def;
        if (t->shard >= 0) continue; /* a shard's values are its merge's */
        int has_str = 0;
        for (int q = 0; q < d->nparams && !has_str; q++) has_str = d->params[q].field == IP_F_STR;
        if (!d->check && !has_str) continue; /* nothing can fail (numbers were checked when parsed) */
        /* the memo key: the entry and every stored value's text */
        memo.len = 0;
        char en[16];
        sfmt(en, sizeof en, "%d\x1f", c->task_entry[i]);
        ip_strbuf_add(&memo, en);
        for (int q = 0; q < d->nparams; q++)
            if (d->params[q].field != IP_F_NONE) {
                ip_strbuf_add(&memo, t->vals[q].text);
                ip_strbuf_add(&memo, "\x1f");
            }
        if (memo.oom) {
            c->oom = 1;
            break;
        }
        if (strset_add(c, &seen, memo.p, 2) == 0) continue;
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
            ip_input_shape shape = {c->in_c, c->in_h, c->in_w, c->classes};
            if (!d->check || d->check(buf, c->data_ok ? &shape : NULL, &key, msg, sizeof msg) == 0) continue;
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
    ip_strbuf_free(&memo);
    free(seen.v);
}
