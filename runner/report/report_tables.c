/* The report's tables (report.h): each is built from seed-free task groups
 * (rp_groups), one row per group (or, for the passport table, one cell per
 * group), values aggregated over the group's done tasks. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "../../core/ipguard/fingerprint.h"

const char *const rp_table_names[] = {"passport", "models",  "finetune",         "fake1",          "fake2", "fake3",
                                      "prune",    "flip",    "ipguard",          "ipguard-suspects", "ipguard-attacks",
                                      "ambiguity"};
const int rp_ntable_names = (int)(sizeof rp_table_names / sizeof *rp_table_names);

rp_stat rp_stat_of(const double *v, int n) {
    rp_stat s = {NAN, NAN, 0};
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) sum += v[i], s.n++;
    if (!s.n) return s;
    s.mean = sum / s.n;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i])) ss += (v[i] - s.mean) * (v[i] - s.mean);
    s.std = s.n > 1 ? sqrt(ss / (s.n - 1)) : 0;
    return s;
}

void rp_table_free(rp_table *t) {
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ------------------------------------------------------------------------- */
/* building helpers                                                          */

static void col_add(rp_table *t, const char *name, const char *csv, rp_kind kind, double scale, int decimals) {
    if (t->ncols >= RP_MAX_COLUMNS) return;
    rp_column *c = &t->cols[t->ncols++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->csv, sizeof c->csv, "%s", csv);
    c->kind = kind, c->scale = scale, c->decimals = decimals;
}

static rp_cell *cell(rp_table *t, int r, int c) { return &t->cells[(size_t)r * RP_MAX_COLUMNS + c]; }

/* A parameter's column header: the key in words ("key_type" -> "key type");
 * its CSV name stays the key. */
static void col_add_param(rp_table *t, const char *key) {
    char h[sizeof t->cols[0].name];
    snprintf(h, sizeof h, "%s", key);
    for (char *p = h; *p; p++)
        if (*p == '_') *p = ' ';
    col_add(t, h, key, RP_TEXT, 1, 0);
}

/* A number column whose values are all whole (a margin k of 1, 5, 20) shows
 * them as integers: "20", not "20.000". */
static void whole_as_integers(rp_table *t, int c) {
    for (int r = 0; r < t->nrows; r++) {
        rp_stat s = cell(t, r, c)->a;
        if (s.n && (isnan(s.mean) || s.mean * t->cols[c].scale != floor(s.mean * t->cols[c].scale))) return;
    }
    t->cols[c].decimals = 0;
}

static int rows_alloc(rp_table *t, int nrows, ip_err *e) {
    t->cells = calloc((size_t)(nrows ? nrows : 1) * RP_MAX_COLUMNS, sizeof *t->cells);
    if (!t->cells) return ip_fail(e, "out of memory for table %s", t->name);
    for (int i = 0; i < (nrows ? nrows : 1) * RP_MAX_COLUMNS; i++) {
        t->cells[i].a = (rp_stat){NAN, NAN, 0};
        t->cells[i].b = (rp_stat){NAN, NAN, 0};
    }
    t->nrows = nrows;
    return 0;
}

static void cell_text(rp_table *t, int r, int c, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void cell_text(rp_table *t, int r, int c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cell(t, r, c)->text, sizeof cell(t, r, c)->text, fmt, ap);
    va_end(ap);
}

/* Removes columns from `first` on whose cells are all empty (no text, no value). */
static void drop_empty_columns(rp_table *t, int first) {
    for (int c = t->ncols - 1; c >= first; c--) {
        int any = 0;
        for (int r = 0; r < t->nrows && !any; r++) {
            const rp_cell *x = cell(t, r, c);
            any = x->text[0] || x->a.n || x->b.n;
        }
        if (any) continue;
        for (int r = 0; r < t->nrows; r++)
            memmove(cell(t, r, c), cell(t, r, c + 1), (size_t)(t->ncols - c - 1) * sizeof(rp_cell));
        memmove(&t->cols[c], &t->cols[c + 1], (size_t)(t->ncols - c - 1) * sizeof *t->cols);
        t->ncols--;
    }
}

static void finish(rp_table *t) {
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) t->any_partial |= cell(t, r, c)->partial;
}

typedef enum { AGG_MEAN, AGG_MIN, AGG_MAX, AGG_SUM } agg;

/* A metric over a group's done tasks. */
static rp_stat group_stat(const rp_file *f, const rp_group *g, const char *metric, agg a) {
    double *v = malloc((size_t)(g->ndone ? g->ndone : 1) * sizeof *v);
    rp_stat s = {NAN, NAN, 0};
    if (!v) return s;
    for (int i = 0; i < g->ndone; i++) v[i] = rp_metric(f, g->done[i], metric);
    s = rp_stat_of(v, g->ndone);
    if (s.n && a != AGG_MEAN) {
        double r = a == AGG_SUM ? 0 : NAN;
        for (int i = 0; i < g->ndone; i++) {
            if (isnan(v[i])) continue;
            if (a == AGG_SUM) r += v[i];
            else if (isnan(r) || (a == AGG_MIN ? v[i] < r : v[i] > r)) r = v[i];
        }
        s.mean = r, s.std = 0;
    }
    free(v);
    return s;
}

/* The text shown for parameter `name` of task t: a referenced task's label,
 * else the value ("" when absent). */
static void param_text(const rp_file *f, int t, const char *name, char *out, size_t cap) {
    const char *v = rp_param(f, t, name);
    int ref = v && v[0] ? rp_find_key(f, v) : -1;
    if (ref >= 0) rp_label(f, ref, out, cap);
    else snprintf(out, cap, "%s", v ? v : "");
}

/* Parameters never shown as columns: repetition, sharding, file paths. */
static int hidden_param(const char *name) {
    size_t n = strlen(name);
    return !strcmp(name, "seed") || !strcmp(name, "shard") || !strcmp(name, "shards") || !strcmp(name, "task_id") ||
           (n > 5 && !strcmp(name + n - 5, "_path"));
}

/* The parameter names of kind's table in /params (or, for an older file,
 * the swept ones of /tasks), in file order. */
static int param_names(const rp_file *f, const char *kind, const char **names, int cap) {
    int n = 0;
    if (f->has_params) {
        for (int k = 0; k < f->nparams; k++)
            if (!strcmp(f->params[k].name, kind))
                for (int c = 0; c < f->params[k].ncols && n < cap; c++) names[n++] = f->params[k].cols[c].name;
    } else {
        for (int c = 0; c < f->tasks.ncols && n < cap; c++)
            if (!strncmp(f->tasks.cols[c].name, "param_", 6)) names[n++] = f->tasks.cols[c].name + 6;
    }
    return n;
}

/* Whether parameter `name` takes more than one value over the groups' first tasks. */
static int varies(const rp_file *f, const rp_group *g, int ng, const char *name) {
    char a[160], b[160];
    for (int i = 0; i < ng; i++)
        if (g[i].ndone) {
            param_text(f, g[i].tasks[0], name, a, sizeof a);
            for (int j = i + 1; j < ng; j++)
                if (g[j].ndone) {
                    param_text(f, g[j].tasks[0], name, b, sizeof b);
                    if (strcmp(a, b)) return 1;
                }
            return 0;
        }
    return 0;
}

static void pending_note(rp_table *t, const rp_group *g, int ng) {
    int waiting = 0;
    for (int i = 0; i < ng; i++) waiting += g[i].ndone == 0;
    t->waiting = waiting;
    if (waiting)
        snprintf(t->note + strlen(t->note), sizeof t->note - strlen(t->note), "%s%d more row%s without a finished task yet.",
                 t->note[0] ? " " : "", waiting, waiting == 1 ? "" : "s");
}

/* ------------------------------------------------------------------------- */
/* flat tables: one row per group of one kind                                */

typedef struct mdef {
    const char *metric, *header;
    agg a;
    double scale;
    int decimals;
} mdef;

typedef struct flat_def {
    const char *name, *kind, *title, *note;
    int self_label;       /* first column: the task's own label (train) instead of its model's */
    const char *axes[6];  /* parameters always shown, in this order */
    mdef m[10];
} flat_def;

#define PCT(metric, header) {metric, header, AGG_MEAN, 100, 1}

static const flat_def flat_defs[] = {
    {"models", "train", "Trained models", "Accuracy and signature detection in %", 1,
     {"scheme", "arch", "norm"},
     {PCT("test_acc", "accuracy"), PCT("public_test_acc", "public acc."), PCT("trigger_acc", "trigger acc."),
      PCT("detect", "detection")}},
    {"finetune", "finetune", "Fine-tuning (removal attack)",
     "Accuracy of the deployed network before and after fine-tuning, owner's signature detection, in %", 0,
     {"mode", "fraction", "disjoint", "epochs"},
     {PCT("owner_test_acc", "acc. before"), PCT("test_acc", "acc. after"), PCT("detect", "detection"),
      PCT("private_acc", "private acc.")}},
    {"fake1", "fake1", "Fake passports (fake1)",
     "Accuracy in %: the real passport, the fakes' mean, min and max; fakes tried and accepted (within the margin); "
     "% of fakes within the margin, with signature detection >= detect_threshold, with both (the joint criterion); "
     "a 95% upper bound on P(a fake is accepted), per million fakes (a GPD tail fit or Clopper-Pearson: "
     "docs/attacks.md)",
     0,
     {"key_type", "reference", "mode"},
     {PCT("real_acc", "real acc."),
      PCT("fake_mean", "fake mean"),
      {"fake_min", "fake min", AGG_MIN, 100, 1},
      {"fake_max", "fake max", AGG_MAX, 100, 1},
      {"passports", "tried", AGG_SUM, 1, 0},
      {"accepted", "accepted", AGG_SUM, 1, 0},
      {"accept_acc_frac", "acc. ok %", AGG_MEAN, 100, 3},
      {"accept_detect_frac", "det. ok %", AGG_MEAN, 100, 2},
      {"accept_joint_frac", "joint %", AGG_MEAN, 100, 3},
      {"p_accept_upper95", "p accept. 95% ub (ppm)", AGG_MAX, 1e6, 1}}},
    {"fake2", "fake2", "Forged gamma/beta or passports with the attacker's data (fake2)",
     "Accuracy and owner's signature detection in %", 0,
     {"target", "fraction"},
     {{"train_samples", "samples", AGG_MAX, 1, 0}, PCT("test_acc", "accuracy"), PCT("detect", "detection"),
      PCT("owner_test_acc", "owner acc.")}},
    {"fake3", "fake3", "Insider attack towards a flipped signature (fake3)",
     "Accuracy, detection of the owner's and of the target signature in %, passport cosine", 0,
     {"flip_fraction", "fraction"},
     {PCT("test_acc", "accuracy"), PCT("detect", "detection"), PCT("detect_target", "target det."),
      {"cosine", "cosine", AGG_MEAN, 1, 3}}},
    {"prune", "prune", "Global magnitude pruning", "Accuracy and signature detection in %", 0,
     {"rate"},
     {PCT("test_acc", "accuracy"), PCT("detect", "detection")}},
    {"flip", "flip", "Sign flipping of the passport gammas", "Accuracy and signature detection in %", 0,
     {"fraction"},
     {PCT("test_acc", "accuracy"), PCT("detect", "detection")}},
};

static int build_flat(const rp_file *f, const flat_def *d, rp_table *t, ip_err *e) {
    rp_group *g = NULL;
    int ng = 0;
    if (rp_groups(f, d->kind, &g, &ng, e) != 0) return -1;
    snprintf(t->title, sizeof t->title, "%s", d->title);
    snprintf(t->note, sizeof t->note, "%s.", d->note);
    /* label columns: model, the axes, then other parameters that vary */
    const char *shown[RP_MAX_COLUMNS];
    int nshown = 0;
    col_add(t, "model", "model", RP_TEXT, 1, 0);
    /* two entries of the kind on one model (e.g. a pruning sweep and the pruned suspects) */
    int by_entry = !d->self_label && rp_names_vary(f, g, ng), off = 1 + by_entry;
    if (by_entry) col_add(t, "task", "task", RP_TEXT, 1, 0);
    for (int i = 0; i < 6 && d->axes[i]; i++) shown[nshown++] = d->axes[i];
    const char *pn[64];
    int npn = param_names(f, d->kind, pn, 64);
    for (int i = 0; i < npn && nshown < 8; i++) {
        int dup = hidden_param(pn[i]) || !strcmp(pn[i], "model") || (d->self_label && !strcmp(pn[i], "name"));
        for (int k = 0; k < nshown && !dup; k++) dup = !strcmp(shown[k], pn[i]);
        if (!dup && varies(f, g, ng, pn[i])) shown[nshown++] = pn[i];
    }
    for (int i = 0; i < nshown; i++) col_add_param(t, shown[i]);
    int first_metric = t->ncols + 1;
    col_add(t, "n", "n", RP_COUNT, 1, 0);
    for (int i = 0; i < 10 && d->m[i].metric; i++)
        col_add(t, d->m[i].header, d->m[i].metric, d->m[i].a == AGG_MEAN ? RP_STAT : RP_NUM, d->m[i].scale,
                d->m[i].decimals);
    int nrows = 0;
    for (int i = 0; i < ng; i++) nrows += g[i].ndone > 0;
    int rc = rows_alloc(t, nrows, e);
    for (int i = 0, r = 0; i < ng && rc == 0; i++) {
        if (!g[i].ndone) continue;
        int t0 = g[i].tasks[0];
        if (d->self_label) rp_label(f, t0, cell(t, r, 0)->text, sizeof cell(t, r, 0)->text);
        else param_text(f, t0, "model", cell(t, r, 0)->text, sizeof cell(t, r, 0)->text);
        if (by_entry) snprintf(cell(t, r, 1)->text, sizeof cell(t, r, 1)->text, "%s", f->name[t0]);
        for (int k = 0; k < nshown; k++)
            param_text(f, t0, shown[k], cell(t, r, off + k)->text, sizeof cell(t, r, off + k)->text);
        rp_cell *n = cell(t, r, first_metric - 1);
        n->a.n = g[i].ndone, n->b.n = g[i].ntasks, n->partial = g[i].ndone < g[i].ntasks;
        for (int m = 0; m < 10 && d->m[m].metric; m++)
            cell(t, r, first_metric + m)->a = group_stat(f, &g[i], d->m[m].metric, d->m[m].a);
        r++;
    }
    if (rc == 0) {
        drop_empty_columns(t, 1);
        pending_note(t, g, ng);
        finish(t);
    }
    rp_groups_free(g, ng);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* the passport table: detection% (accuracy%) per scheme, trained and fine-tuned */

static const char *const schemes[] = {"baseline", "v1", "v2", "v3"};
#define NSCHEMES 4
/* training settings that make two models comparable across schemes */
static const char *const ident_params[] = {"arch",         "norm",       "epochs",  "batch", "optimizer", "lr",
                                           "momentum",     "weight_decay", "milestones", "augment"};
#define NIDENT ((int)(sizeof ident_params / sizeof *ident_params))

typedef struct prow {
    char ident[600], stage[160], models[160];
    int train;          /* a train task of the row (for its identity columns) */
    int order, sorder;  /* identity order, stage order (0 = trained) */
    const rp_group *cell[NSCHEMES];
} prow;

static int cmp_prow(const void *a, const void *b) {
    const prow *x = a, *y = b;
    if (x->order != y->order) return (x->order > y->order) - (x->order < y->order);
    return (x->sorder > y->sorder) - (x->sorder < y->sorder);
}

static void ident_of(const rp_file *f, int train, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < NIDENT && o < cap; i++) {
        const char *v = rp_param(f, train, ident_params[i]);
        o += (size_t)snprintf(out + o, cap - o, "%s\x1f", v ? v : "");
    }
}

static int scheme_index(const rp_file *f, int train) {
    const char *s = rp_param(f, train, "scheme");
    for (int i = 0; s && i < NSCHEMES; i++)
        if (!strcmp(s, schemes[i])) return i;
    return -1;
}

/* Places group g (scheme s, training identity of task `train`) in the row
 * (ident, stage), or a new one when that cell is taken. */
static void place(prow *rows, int *nrows, char (*idents)[600], int *nidents, char (*stages)[160], int *nstages,
                  const rp_file *f, int train, int s, const char *stage, const rp_group *g, const char *label) {
    char id[600];
    ident_of(f, train, id, sizeof id);
    int order = -1, sorder = -1;
    for (int i = 0; i < *nidents; i++)
        if (!strcmp(idents[i], id)) order = i;
    if (order < 0) snprintf(idents[order = (*nidents)++], 600, "%s", id);
    for (int i = 0; i < *nstages; i++)
        if (!strcmp(stages[i], stage)) sorder = i;
    if (sorder < 0) snprintf(stages[sorder = (*nstages)++], 160, "%s", stage);
    prow *r = NULL;
    for (int i = 0; i < *nrows && !r; i++)
        if (rows[i].order == order && rows[i].sorder == sorder && !rows[i].cell[s]) r = &rows[i];
    if (!r) {
        r = &rows[(*nrows)++];
        memset(r, 0, sizeof *r);
        r->order = order, r->sorder = sorder, r->train = train;
        snprintf(r->stage, sizeof r->stage, "%s", stage);
    }
    r->cell[s] = g;
    size_t l = strlen(r->models);
    snprintf(r->models + l, sizeof r->models - l, "%s%s", l ? ", " : "", label);
}

static int build_passport(const rp_file *f, rp_table *t, ip_err *e) {
    rp_group *tg = NULL, *fg = NULL;
    int ntg = 0, nfg = 0, rc = -1;
    prow *rows = NULL;
    char(*idents)[600] = NULL, (*stages)[160] = NULL;
    if (rp_groups(f, "train", &tg, &ntg, e) || rp_groups(f, "finetune", &fg, &nfg, e)) goto done;
    int cap = ntg + nfg + 1, nrows = 0, nidents = 0, nstages = 1;
    rows = calloc((size_t)cap, sizeof *rows);
    idents = calloc((size_t)cap, sizeof *idents);
    stages = calloc((size_t)cap + 1, sizeof *stages);
    if (!rows || !idents || !stages) {
        ip_fail(e, "out of memory for the passport table");
        goto done;
    }
    snprintf(stages[0], 160, "trained");
    char label[160];
    for (int i = 0; i < ntg; i++) {
        int s = scheme_index(f, tg[i].tasks[0]);
        if (!tg[i].ndone || s < 0) continue;
        rp_label(f, tg[i].tasks[0], label, sizeof label);
        place(rows, &nrows, idents, &nidents, stages, &nstages, f, tg[i].tasks[0], s, "trained", &tg[i], label);
    }
    for (int i = 0; i < nfg; i++) {
        int m = rp_ref(f, fg[i].tasks[0], "model");
        int s = m >= 0 && !strcmp(f->kind[m], "train") ? scheme_index(f, m) : -1;
        if (!fg[i].ndone || s < 0) continue;
        char stage[160];
        rp_label(f, fg[i].tasks[0], stage, sizeof stage);
        stage[strcspn(stage, "<")] = 0; /* "ft[mode=rtal]<pv1>" -> "ft[mode=rtal]" */
        rp_label(f, m, label, sizeof label);
        place(rows, &nrows, idents, &nidents, stages, &nstages, f, m, s, stage, &fg[i], label);
    }
    qsort(rows, (size_t)nrows, sizeof *rows, cmp_prow);
    snprintf(t->title, sizeof t->title, "Passport models: detection%% (accuracy%%)");
    snprintf(t->note, sizeof t->note,
             "Test accuracy (private branch for v2/v3; the deployed network after fine-tuning) and, in front, "
             "the owner's signature detection, in %%.");
    /* identity columns: arch and norm always, the other settings when they vary */
    int shown[NIDENT], nshown = 0;
    for (int i = 0; i < NIDENT; i++) {
        int vary = i < 2;
        for (int r = 1; r < nrows && !vary; r++) {
            const char *a = rp_param(f, rows[0].train, ident_params[i]), *b = rp_param(f, rows[r].train, ident_params[i]);
            vary = strcmp(a ? a : "", b ? b : "") != 0;
        }
        if (vary) {
            shown[nshown++] = i;
            col_add_param(t, ident_params[i]);
        }
    }
    col_add(t, "models", "models", RP_TEXT, 1, 0);
    col_add(t, "stage", "stage", RP_TEXT, 1, 0);
    int first = t->ncols;
    for (int s = 0; s < NSCHEMES; s++) col_add(t, schemes[s], schemes[s], RP_PAIR, 100, 1);
    if (rows_alloc(t, nrows, e)) goto done;
    for (int r = 0; r < nrows; r++) {
        for (int i = 0; i < nshown; i++) {
            const char *v = rp_param(f, rows[r].train, ident_params[shown[i]]);
            cell_text(t, r, i, "%s", v ? v : "");
        }
        cell_text(t, r, nshown, "%s", rows[r].models);
        cell_text(t, r, nshown + 1, "%s", rows[r].stage);
        for (int s = 0; s < NSCHEMES; s++) {
            const rp_group *g = rows[r].cell[s];
            if (!g) continue;
            rp_cell *c = cell(t, r, first + s);
            if (s > 0) c->a = group_stat(f, g, "detect", AGG_MEAN);
            c->b = group_stat(f, g, "test_acc", AGG_MEAN);
            c->partial = g->ndone < g->ntasks;
        }
    }
    drop_empty_columns(t, first);
    pending_note(t, tg, ntg);
    finish(t);
    rc = 0;
done:
    free(rows), free(idents), free(stages);
    rp_groups_free(tg, ntg);
    rp_groups_free(fg, nfg);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* IPGuard (the results writer's /ipguard group)                             */

/* Whether fingerprint task `fp` or a task depending on it is not done yet. */
static int fp_partial(const rp_file *f, const char *key) {
    int fp = rp_find_key(f, key);
    if (fp < 0) return 0;
    if (strcmp(f->status[fp], "done")) return 1;
    for (int i = 0; f->deps && i < f->ntasks; i++) {
        if (!strcmp(f->status[i], "done")) continue;
        for (const char *p = f->deps[i]; *p;) {
            char *end;
            long d = strtol(p, &end, 10);
            if (end == p) break;
            if (d == fp) return 1;
            p = *end == ',' ? end + 1 : end;
        }
    }
    return 0;
}

static double k_of(const rp_file *f, const char *fpkey) {
    const rp_col *key = rp_tab_col(&f->ig_summary, "fingerprint_key"), *k = rp_tab_col(&f->ig_summary, "k");
    for (size_t r = 0; key && k && r < f->ig_summary.nrows; r++)
        if (key->is_str && !k->is_str && !strcmp(key->s[r], fpkey)) return k->v[r];
    const char *p = rp_param(f, rp_find_key(f, fpkey), "k");
    return p ? atof(p) : NAN;
}

typedef struct igrow {
    char label[160], suspect[160], kind[32], relation[32];
    size_t *rows;
    int n, partial;
} igrow;

static int build_ipguard(const rp_file *f, int suspects, rp_table *t, ip_err *e) {
    const rp_tab *src = suspects ? &f->ig_suspects : &f->ig_summary;
    if (!f->has_ipguard || !src->nrows) return 0;
    const rp_col *fk = rp_tab_col(src, "fingerprint_key");
    size_t n = src->nrows;
    igrow *g = calloc(n, sizeof *g);
    int ng = 0, rc = -1;
    if (!g) return ip_fail(e, "out of memory for the IPGuard table");
    const rp_col *sk = rp_tab_col(src, "suspect_key"), *sknd = rp_tab_col(src, "suspect_kind"),
                 *rel = rp_tab_col(src, "relation");
    for (size_t r = 0; r < n; r++) {
        igrow x;
        memset(&x, 0, sizeof x);
        rp_key_label(f, fk->s[r], x.label, sizeof x.label);
        if (suspects) {
            rp_key_label(f, sk->s[r], x.suspect, sizeof x.suspect);
            x.suspect[strcspn(x.suspect, "<")] = 0; /* "pruned[rate=0.3]<base>" -> "pruned[rate=0.3]" */
            snprintf(x.kind, sizeof x.kind, "%s", sknd->s[r]);
            snprintf(x.relation, sizeof x.relation, "%s", rel->s[r]);
        }
        int found = -1;
        for (int i = 0; i < ng && found < 0; i++)
            if (!strcmp(g[i].label, x.label) && !strcmp(g[i].suspect, x.suspect) && !strcmp(g[i].kind, x.kind) &&
                !strcmp(g[i].relation, x.relation))
                found = i;
        if (found < 0) {
            g[found = ng++] = x;
            if (!(g[found].rows = malloc(n * sizeof *g[found].rows))) goto oom;
        }
        g[found].rows[g[found].n++] = r;
        g[found].partial |= f->in_progress && fp_partial(f, fk->s[r]);
    }
    if (suspects) {
        snprintf(t->title, sizeof t->title, "IPGuard: matching rate per suspect");
        snprintf(t->note, sizeof t->note,
                 "Matching rate in %%; pirated: suspects with that verdict at the fingerprint's chosen threshold.");
    } else {
        snprintf(t->title, sizeof t->title, "IPGuard: ARUC, ROC AUC and threshold per fingerprint");
        snprintf(t->note, sizeof t->note,
                 "ARUC: the IPGuard paper's, the area under min(robustness, uniqueness) over thresholds 0..1 "
                 "(separated copies score the width of the gap); ROC AUC: the area under robustness against "
                 "uniqueness (1 for any separation); both exact over the observed matching rates. The threshold "
                 "is the smallest observed rate meeting the target false-positive rate (fpr target) on the "
                 "calibration models (cal; the negatives when there are none); fpr is the rate it gives on the "
                 "negatives.");
    }
    col_add(t, "fingerprint", "fingerprint", RP_TEXT, 1, 0);
    col_add(t, "k", "k", RP_NUM, 1, 3);
    if (suspects) {
        col_add(t, "suspect", "suspect", RP_TEXT, 1, 0);
        col_add(t, "kind", "suspect_kind", RP_TEXT, 1, 0);
        col_add(t, "relation", "relation", RP_TEXT, 1, 0);
        col_add(t, "n", "n", RP_COUNT, 1, 0);
        col_add(t, "matching rate", "match_rate", RP_STAT, 100, 1);
        col_add(t, "pirated", "pirated", RP_NUM, 1, 0);
    } else {
        col_add(t, "n", "n", RP_COUNT, 1, 0);
        col_add(t, "positives", "positives", RP_NUM, 1, 0);
        col_add(t, "negatives", "negatives", RP_NUM, 1, 0);
        col_add(t, "cal", "calibration", RP_NUM, 1, 0);
        col_add(t, "ARUC (paper)", "aruc", RP_STAT, 1, 3);
        col_add(t, "ROC AUC", "roc_auc", RP_STAT, 1, 3);
        col_add(t, "threshold", "threshold", RP_STAT, 1, 3);
        col_add(t, "fpr target", "fpr_target", RP_NUM, 1, 3);
        col_add(t, "fpr", "fpr", RP_STAT, 1, 3);
    }
    if (rows_alloc(t, ng, e)) goto done;
    double *v = malloc(n * sizeof *v);
    if (!v) goto oom;
    for (int i = 0; i < ng; i++) {
        cell_text(t, i, 0, "%s", g[i].label);
        cell(t, i, 1)->a = (rp_stat){k_of(f, fk->s[g[i].rows[0]]), 0, 1};
        if (isnan(cell(t, i, 1)->a.mean)) cell(t, i, 1)->a.n = 0;
        int c = 2;
        if (suspects) {
            cell_text(t, i, c++, "%s", g[i].suspect);
            cell_text(t, i, c++, "%s", g[i].kind);
            cell_text(t, i, c++, "%s", g[i].relation);
        }
        rp_cell *cn = cell(t, i, c++);
        cn->a.n = cn->b.n = g[i].n;
        cn->partial = g[i].partial;
        const char *stats[] = {"match_rate", "pirated"};
        const char *sstats[] = {"positives", "negatives", "calibration", "aruc", "roc_auc", "threshold", "fpr_target",
                                "fpr"};
        const char *const *names = suspects ? stats : sstats;
        int nnames = suspects ? (int)(sizeof stats / sizeof *stats) : (int)(sizeof sstats / sizeof *sstats);
        for (int m = 0; m < nnames; m++, c++) {
            const rp_col *col = rp_tab_col(src, suspects && m == 1 ? "verdict" : names[m]);
            if (!col) continue;
            for (int j = 0; j < g[i].n; j++) {
                size_t r = g[i].rows[j];
                v[j] = col->is_str ? !strcmp(col->s[r], "pirated") : col->v[r];
            }
            rp_stat s = rp_stat_of(v, g[i].n);
            if (t->cols[c].kind == RP_NUM && s.n) {
                if (col->is_str) s.mean *= s.n; /* a count */
                s.std = 0;
            }
            cell(t, i, c)->a = s;
        }
    }
    free(v);
    whole_as_integers(t, 1);
    drop_empty_columns(t, 1);
    finish(t);
    rc = 0;
    goto done;
oom:
    ip_fail(e, "out of memory for the IPGuard table");
done:
    for (int i = 0; i < ng; i++) free(g[i].rows);
    free(g);
    return rc;
}

/* Per attack family (the kind of the pirated copies: finetune, prune,
 * distill, ...): each fingerprint's ARUC and ROC AUC with only that family's
 * copies as positives against all its independent models (calibration ones
 * left out), then mean +- std over the fingerprints of one label (owners),
 * laid out like IrisFP's per-attack table; "all" pools every family. */
typedef struct attack_row {
    char label[160], family[32];
    double k;                 /* the margin of the row's fingerprints */
    double *aruc, *roc;
    int n, pos, neg, partial;
} attack_row;

static int attack_add(attack_row *rows, int *nrows, int cap, const char *label, const char *family, double k,
                      double aruc, double roc, int pos, int neg, int partial) {
    int i = 0;
    while (i < *nrows && (strcmp(rows[i].label, label) || strcmp(rows[i].family, family))) i++;
    if (i == *nrows) {
        if (i >= cap) return -1;
        attack_row *r = &rows[(*nrows)++];
        memset(r, 0, sizeof *r);
        snprintf(r->label, sizeof r->label, "%s", label);
        snprintf(r->family, sizeof r->family, "%s", family);
        r->k = k;
        r->aruc = malloc((size_t)cap * sizeof *r->aruc);
        r->roc = malloc((size_t)cap * sizeof *r->roc);
        if (!r->aruc || !r->roc) return -1;
    }
    attack_row *r = &rows[i];
    r->aruc[r->n] = aruc, r->roc[r->n] = roc, r->n++;
    r->pos += pos, r->neg += neg, r->partial |= partial;
    return 0;
}

/* A suspects row by its fingerprint: runs of one fingerprint's rows, in file order within it. */
typedef struct fp_row {
    double id;
    size_t row;
} fp_row;

static int fp_row_cmp(const void *a, const void *b) {
    const fp_row *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

static int build_ipguard_attacks(const rp_file *f, rp_table *t, ip_err *e) {
    const rp_tab *src = &f->ig_suspects;
    if (!f->has_ipguard || !src->nrows) return 0;
    const rp_col *fid = rp_tab_col(src, "fingerprint_id"), *fk = rp_tab_col(src, "fingerprint_key"),
                 *kind = rp_tab_col(src, "suspect_kind"), *rel = rp_tab_col(src, "relation"),
                 *rate = rp_tab_col(src, "match_rate"), *cal = rp_tab_col(src, "calibration");
    size_t n = src->nrows;
    int cap = (int)n + 1, nrows = 0, rc = -1;
    attack_row *rows = calloc((size_t)cap, sizeof *rows);
    double *pos = malloc(n * sizeof *pos), *neg = malloc(n * sizeof *neg);
    char (*fams)[32] = calloc(n + 1, sizeof *fams);
    fp_row *order = malloc(n * sizeof *order);
    if (!rows || !pos || !neg || !fams || !order) goto oom;
    for (size_t r = 0; r < n; r++) order[r] = (fp_row){fid->v[r], r};
    qsort(order, n, sizeof *order, fp_row_cmp);
    for (size_t a = 0, b; a < n; a = b) { /* order[a..b): one fingerprint's rows */
        for (b = a; b < n && order[b].id == order[a].id; b++) {
        }
        size_t nn = 0, r0 = order[a].row;
        int nf = 0;
        for (size_t i = a; i < b; i++) {
            size_t q = order[i].row;
            if (cal && !cal->is_str && cal->v[q] != 0) continue;
            if (!strcmp(rel->s[q], "independent")) neg[nn++] = rate->v[q];
            if (strcmp(rel->s[q], "pirated")) continue;
            int k = 0;
            while (k < nf && strcmp(fams[k], kind->s[q])) k++;
            if (k == nf) snprintf(fams[nf++], sizeof fams[0], "%s", kind->s[q]);
        }
        char label[160];
        rp_key_label(f, fk->s[r0], label, sizeof label);
        int partial = f->in_progress && fp_partial(f, fk->s[r0]);
        double margin = k_of(f, fk->s[r0]);
        for (int k = 0; k <= nf; k++) { /* k == nf: every family */
            size_t np = 0;
            for (size_t i = a; i < b; i++) {
                size_t q = order[i].row;
                if (!strcmp(rel->s[q], "pirated") && !(cal && !cal->is_str && cal->v[q] != 0) &&
                    (k == nf || !strcmp(kind->s[q], fams[k])))
                    pos[np++] = rate->v[q];
            }
            if (attack_add(rows, &nrows, cap, label, k == nf ? "all" : fams[k], margin, ip_ipguard_aruc(pos, np, neg, nn),
                           ip_ipguard_roc_auc(pos, np, neg, nn), (int)np, (int)nn, partial) != 0)
                goto oom;
        }
    }
    snprintf(t->title, sizeof t->title, "IPGuard per attack: ARUC and ROC AUC by the family of the pirated copies");
    snprintf(t->note, sizeof t->note,
             "Each fingerprint against all its independent models, with only one attack family's copies as "
             "positives (all: every family); ARUC is the IPGuard paper's, ROC AUC the area under robustness "
             "against uniqueness (docs/fingerprint.md); mean +- std over the fingerprints of a row (owners); "
             "copies, independent: summed over them.");
    col_add(t, "fingerprint", "fingerprint", RP_TEXT, 1, 0);
    col_add(t, "k", "k", RP_NUM, 1, 3);
    col_add(t, "attack", "attack", RP_TEXT, 1, 0);
    col_add(t, "n", "n", RP_COUNT, 1, 0);
    col_add(t, "copies", "copies", RP_NUM, 1, 0);
    col_add(t, "independent", "independent", RP_NUM, 1, 0);
    col_add(t, "ARUC (paper)", "aruc", RP_STAT, 1, 3);
    col_add(t, "ROC AUC", "roc_auc", RP_STAT, 1, 3);
    if (rows_alloc(t, nrows, e)) goto done;
    for (int i = 0; i < nrows; i++) {
        attack_row *r = &rows[i];
        cell_text(t, i, 0, "%s", r->label);
        cell(t, i, 1)->a = (rp_stat){r->k, 0, isnan(r->k) ? 0 : 1};
        cell_text(t, i, 2, "%s", r->family);
        rp_cell *cn = cell(t, i, 3);
        cn->a.n = cn->b.n = r->n;
        cn->partial = r->partial;
        cell(t, i, 4)->a = (rp_stat){r->pos, 0, 1};
        cell(t, i, 5)->a = (rp_stat){r->neg, 0, 1};
        cell(t, i, 6)->a = rp_stat_of(r->aruc, r->n);
        cell(t, i, 7)->a = rp_stat_of(r->roc, r->n);
    }
    whole_as_integers(t, 1);
    finish(t);
    rc = 0;
    goto done;
oom:
    ip_fail(e, "out of memory for the IPGuard attack table");
done:
    for (int i = 0; rows && i < nrows; i++) free(rows[i].aruc), free(rows[i].roc);
    free(rows), free(pos), free(neg), free(fams), free(order);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* the ambiguity attacks side by side: fake2, fake3, erb (their metrics under one set of headers) */

typedef struct amb_def {
    const char *kind, *real, *forged, *owner_det, *target_det; /* target_det NULL: the kind has no target */
} amb_def;

static const amb_def amb_defs[] = {
    {"fake2", "owner_test_acc", "test_acc", "detect", NULL},
    {"fake3", "owner_test_acc", "test_acc", "detect", "detect_target"},
    {"erb", "real_acc", "forged_acc", "owner_detect", "forged_detect"},
};
#define AMB_KINDS (sizeof amb_defs / sizeof *amb_defs)

/* The group's setting: "k=v" of the kind's shown parameters that vary over its groups. */
static void amb_setting(const rp_file *f, const char *kind, const rp_group *g, int ng, int t0, char *out, size_t cap) {
    const char *pn[64];
    int npn = param_names(f, kind, pn, 64);
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < npn && len + 1 < cap; i++) {
        if (hidden_param(pn[i]) || !strcmp(pn[i], "model") || !varies(f, g, ng, pn[i])) continue;
        char v[160];
        param_text(f, t0, pn[i], v, sizeof v);
        if (!v[0]) continue; /* a key this group leaves unset (erb's signature without a text target) */
        int w = snprintf(out + len, cap - len, "%s%s=%s", len ? " " : "", pn[i], v);
        if (w < 0) break;
        len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
    }
}

static int build_ambiguity(const rp_file *f, rp_table *t, ip_err *e) {
    snprintf(t->title, sizeof t->title, "Ambiguity attacks: fake2, fake3 and erb side by side");
    snprintf(t->note, sizeof t->note,
             "Accuracy with the real passport and with the forgery, detection of the owner's signature in the "
             "forged scales and of the attacker's target (fake3, erb with a target), in %%.");
    rp_group *g[AMB_KINDS] = {NULL};
    int ng[AMB_KINDS] = {0}, nrows = 0, rc = -1;
    for (size_t k = 0; k < AMB_KINDS; k++) {
        if (rp_groups(f, amb_defs[k].kind, &g[k], &ng[k], e) != 0) goto done;
        for (int i = 0; i < ng[k]; i++) nrows += g[k][i].ndone > 0;
    }
    col_add(t, "model", "model", RP_TEXT, 1, 0);
    col_add(t, "attack", "attack", RP_TEXT, 1, 0);
    col_add(t, "setting", "setting", RP_TEXT, 1, 0);
    col_add(t, "n", "n", RP_COUNT, 1, 0);
    col_add(t, "real acc.", "real_acc", RP_STAT, 100, 1);
    col_add(t, "forged acc.", "forged_acc", RP_STAT, 100, 1);
    col_add(t, "owner det.", "owner_detect", RP_STAT, 100, 1);
    col_add(t, "target det.", "target_detect", RP_STAT, 100, 1);
    if (rows_alloc(t, nrows, e) != 0) goto done;
    int r = 0;
    for (size_t k = 0; k < AMB_KINDS; k++) {
        const amb_def *d = &amb_defs[k];
        for (int i = 0; i < ng[k]; i++) {
            const rp_group *gi = &g[k][i];
            if (!gi->ndone) continue;
            int t0 = gi->tasks[0];
            param_text(f, t0, "model", cell(t, r, 0)->text, sizeof cell(t, r, 0)->text);
            cell_text(t, r, 1, "%s", d->kind);
            amb_setting(f, d->kind, g[k], ng[k], t0, cell(t, r, 2)->text, sizeof cell(t, r, 2)->text);
            rp_cell *n = cell(t, r, 3);
            n->a.n = gi->ndone, n->b.n = gi->ntasks, n->partial = gi->ndone < gi->ntasks;
            cell(t, r, 4)->a = group_stat(f, gi, d->real, AGG_MEAN);
            cell(t, r, 5)->a = group_stat(f, gi, d->forged, AGG_MEAN);
            cell(t, r, 6)->a = group_stat(f, gi, d->owner_det, AGG_MEAN);
            if (d->target_det) cell(t, r, 7)->a = group_stat(f, gi, d->target_det, AGG_MEAN);
            else cell(t, r, 7)->a = (rp_stat){NAN, NAN, 0};
            r++;
        }
    }
    drop_empty_columns(t, 1);
    int waiting = 0;
    for (size_t k = 0; k < AMB_KINDS; k++) pending_note(t, g[k], ng[k]), waiting += t->waiting;
    t->waiting = waiting;
    finish(t);
    rc = 0;
done:
    for (size_t k = 0; k < AMB_KINDS; k++) rp_groups_free(g[k], ng[k]);
    return rc;
}

/* ------------------------------------------------------------------------- */

int rp_build_table(const rp_file *f, const char *name, rp_table *t, ip_err *e) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    if (!strcmp(name, "passport")) return build_passport(f, t, e);
    if (!strcmp(name, "ipguard")) return build_ipguard(f, 0, t, e);
    if (!strcmp(name, "ipguard-suspects")) return build_ipguard(f, 1, t, e);
    if (!strcmp(name, "ipguard-attacks")) return build_ipguard_attacks(f, t, e);
    if (!strcmp(name, "ambiguity")) return build_ambiguity(f, t, e);
    for (size_t i = 0; i < sizeof flat_defs / sizeof *flat_defs; i++)
        if (!strcmp(flat_defs[i].name, name)) return build_flat(f, &flat_defs[i], t, e);
    return ip_fail(e, "unknown table \"%s\"", name);
}
