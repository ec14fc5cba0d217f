/* rn_spec_load*: the order of the steps (the flow in spec_impl.h), the top-level keys and output. */
#include "spec_impl.h"

void default_name(char *out, size_t cap, const char *file) {
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
void check_output(ctx *c) {
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

void do_top(ctx *c) {
    int root = c->root;
    rn_spec *s = c->s;
    int have[NTOP] = {0};
    s->seed = 1;
    s->checkpoint_every = IP_CHECKPOINT_EVERY_DEFAULT;
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
        } else if (!strcmp(kt, "checkpoint_every")) {
            if (typed_scalar(c, &key_checkpoint_every, vn, "checkpoint_every", &tv) == 0) s->checkpoint_every = tv.u.f;
        } else if (!strcmp(kt, "protocol")) {
            if (N(c, vn)->type == YT_SEQ)
                err_at(c, vn, "protocol", "the spec's protocol cannot be swept (sweep an entry's protocol instead)");
            else if (parse_setting(c, &key_protocol, vn, "protocol", 0, &c->protocol) != 0)
                c->protocol.key = NULL;
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
    sfmt(s->state_dir, sizeof s->state_dir, "%s/state", s->outdir);
    check_output(c);
    /* entries */
    int sec_node[2] = {have[TOP_SECTION + SEC_MODELS] - 1, have[TOP_SECTION + SEC_TASKS] - 1};
    int n = 0;
    for (int sec = 0; sec < 2; sec++) {
        int sn = sec_node[sec];
        if (sn < 0 || yt_is_null(&c->doc, sn)) continue;
        if (N(c, sn)->type != YT_SEQ) {
            err_at(c, sn, top_names[TOP_SECTION + sec], "expected a list of entries (- name: ...), got %s",
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
            sfmt(e->path, sizeof e->path, "%s[%d]", top_names[TOP_SECTION + sec], i);
        }
    }
    if (c->nent == 0 && have[3]) err_at(c, root, "", "the spec has no models and no tasks");
}

void load_tree(ctx *c) {
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
void sort_diags(ctx *c) {
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
    ctx->state_dir = s->state_dir;
    ctx->checkpoint_every = s->checkpoint_every;
    ctx->rank = 0;
    ctx->threads = 1;
    ctx->tasks = s->tasks; /* costs follow references to the models' architectures (runner/kinds/cost.h) */
}

void rn_spec_recost(rn_spec *s) {
    rn_ctx c;
    rn_spec_ctx(s, &c); /* a task's producers are among its dependencies: earlier tasks, as in the expansion */
    for (int i = 0; i < s->ntasks; i++) {
        rn_task *t = &s->tasks[i];
        t->cost = t->k->cost ? t->k->cost(t, &c) : 0;
    }
}
