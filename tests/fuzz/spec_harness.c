/* The body of the spec-loader fuzz target (see spec_harness.h). Besides
 * the sanitizers' checks, it asserts what the rest of ipsweep relies on
 * after a load, so a wrong-but-quiet result is a crash too:
 *   - invalid: at least one diagnostic, each naming the file, saying
 *     something and, when it is about the spec's text, its line; the spec
 *     left empty (callers free nothing);
 *   - valid: tasks numbered by position, dependencies on earlier tasks only
 *     (the scheduler's and --dry-run's critical path assume it), known
 *     kinds, bounded strings, finite costs, unique keys (the journal's and
 *     the results file's identity of a task), no work done twice, required
 *     references resolved to a dependency, an output that names a file,
 *     the spec text kept verbatim. */
#include "spec_harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runner/kinds/kinds.h"
#include "../../runner/spec/spec.h"

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            fprintf(stderr, "fuzz_spec: invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                                                  \
        }                                                                                                             \
    } while (0)

/* Whether a fixed-size char field holds a NUL-terminated string. */
#define TERMINATED(field) (memchr((field), 0, sizeof(field)) != NULL)

/* FUZZ_SPEC_CHECKS=0 leaves only the sanitizers' checks: minimising a
 * sanitizer crash then cannot drift to an input that breaks an invariant.
 * FUZZ_SPEC_SKIP=location,refs,output,repeat turns off the named checks of
 * a bug class that is known and open (tests/fuzz/known-open.txt), so that a
 * fuzz run explores past it instead of finding it again in every job. */
static int checks_on(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("FUZZ_SPEC_CHECKS");
        on = !(e && !strcmp(e, "0"));
    }
    return on;
}

static int check_on(const char *name) {
    const char *skip = getenv("FUZZ_SPEC_SKIP");
    if (!skip) return 1;
    size_t l = strlen(name);
    for (const char *p = skip; (p = strstr(p, name)); p += l)
        if ((p == skip || p[-1] == ',') && (p[l] == '\0' || p[l] == ',')) return 0;
    return 1;
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp((*(const rn_task *const *)a)->key, (*(const rn_task *const *)b)->key);
}

/* A task's parameters, numbers by value ("0.1" = "0.10" = "1e-1"), after
 * its kind and entry name: two tasks of one entry with the same text do the
 * same work twice (a sweep that repeats a value, docs/spec.md). */
static char *work_text(const rn_task *t) {
    size_t cap = strlen(t->kind) + strlen(t->name) + 3;
    const char *pn, *v;
    int sw;
    for (int p = 0; rn_task_param(t, p, &pn, &v, &sw) == 0; p++) cap += strlen(pn) + strlen(v) + 32;
    char *w = malloc(cap);
    if (!w) return NULL;
    size_t n = (size_t)snprintf(w, cap, "%s:%s", t->kind, t->name);
    for (int p = 0; rn_task_param(t, p, &pn, &v, &sw) == 0; p++) {
        char *end;
        double x = strtod(v, &end);
        if (*v && !*end && isfinite(x)) n += (size_t)snprintf(w + n, cap - n, "|%s=%.17g", pn, x);
        else n += (size_t)snprintf(w + n, cap - n, "|%s=%s", pn, v);
    }
    return w;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void check_no_repeated_work(const rn_spec *s) {
    char **w = calloc((size_t)s->ntasks + 1, sizeof *w);
    if (!w) return; /* the check is skipped, not failed, when memory runs out */
    int ok = 1;
    for (int i = 0; i < s->ntasks && ok; i++) ok = (w[i] = work_text(&s->tasks[i])) != NULL;
    if (ok) {
        qsort(w, (size_t)s->ntasks, sizeof *w, cmp_str);
        for (int i = 1; i < s->ntasks; i++) {
            if (strcmp(w[i - 1], w[i]) == 0) fprintf(stderr, "fuzz_spec: two tasks do the same work: %s\n", w[i]);
            CHECK(strcmp(w[i - 1], w[i]) != 0);
        }
    }
    for (int i = 0; i < s->ntasks; i++) free(w[i]);
    free(w);
}

/* A required reference (model:, suspect:, fingerprint:) names a task this
 * one depends on: never empty, never dangling. */
static void check_refs(const rn_spec *s, const rn_task *t) {
    const rn_kind *k = rn_kind_find(t->kind);
    for (int q = 0; q < k->def->nparams; q++) {
        const rn_key *kk = &k->def->params[q];
        if (!IP_P_IS_REF(kk->type) || kk->def) continue;
        const char *v = rn_task_get(t, kk->name);
        if (!v || !*v) fprintf(stderr, "fuzz_spec: %s: empty %s\n", t->key, kk->name);
        CHECK(v && *v);
        int found = 0;
        for (int d = 0; d < t->ndeps && !found; d++) found = !strcmp(s->tasks[t->deps[d]].key, v);
        CHECK(found);
    }
}

/* The output names a file: its last component is not empty, "." or "..". */
static void check_output(const char *out) {
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    if (!*base || !strcmp(base, ".") || !strcmp(base, "..")) fprintf(stderr, "fuzz_spec: output \"%s\"\n", out);
    CHECK(*base && strcmp(base, ".") != 0 && strcmp(base, "..") != 0);
}

static void check_valid(const rn_spec *s, const char *text) {
    CHECK(s->ntasks >= 0);
    CHECK(s->ntasks == 0 || s->tasks != NULL);
    CHECK(s->text && strcmp(s->text, text) == 0);
    CHECK(s->overrides != NULL);
    CHECK(TERMINATED(s->name) && TERMINATED(s->output) && TERMINATED(s->outdir) && TERMINATED(s->data_source));
    if (check_on("output")) check_output(s->output);
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        CHECK(t->id == i);
        CHECK(t->key && t->kind && t->name && t->checkpoint && t->vals);
        CHECK(strlen(t->key) < RN_KEY_LEN && strlen(t->checkpoint) < RN_PATH_LEN);
        CHECK(t->key[0] != '\0');
        CHECK(rn_kind_find(t->kind) == t->k);
        const char *pn, *pv;
        int sw;
        for (int p = 0; rn_task_param(t, p, &pn, &pv, &sw) == 0; p++) CHECK(pn && pv);
        CHECK(t->ndeps >= 0 && t->ndeps <= RN_MAX_DEPS);
        for (int d = 0; d < t->ndeps; d++) CHECK(t->deps[d] >= 0 && t->deps[d] < i);
        CHECK(isfinite(t->cost) && t->cost >= 0);
        if (check_on("refs")) check_refs(s, t);
    }
    if (check_on("repeat")) check_no_repeated_work(s);
    if (s->ntasks > 1) {
        const rn_task **by_key = malloc((size_t)s->ntasks * sizeof *by_key);
        if (!by_key) return; /* the check is skipped, not failed, when memory runs out */
        for (int i = 0; i < s->ntasks; i++) by_key[i] = &s->tasks[i];
        qsort(by_key, (size_t)s->ntasks, sizeof *by_key, cmp_keys);
        for (int i = 1; i < s->ntasks; i++) {
            if (strcmp(by_key[i - 1]->key, by_key[i]->key) == 0)
                fprintf(stderr, "fuzz_spec: two tasks share the key \"%s\"\n", by_key[i]->key);
            CHECK(strcmp(by_key[i - 1]->key, by_key[i]->key) != 0);
        }
        free(by_key);
    }
}

/* Whether a diagnostic must say where: every error about the spec's text
 * does (file:line:col, docs/spec.md); an error about a --set argument, an
 * empty spec, running out of memory and the "N more errors" line cannot.
 * A message cut at the size of rn_diag.msg may have lost its "(from --set)". */
static int needs_location(const rn_diag *g) {
    if (strlen(g->msg) + 1 >= sizeof g->msg) return 0;
    return strcmp(g->path, "--set") != 0 && !strstr(g->msg, "(from --set)") && !strstr(g->msg, "out of memory") &&
           strcmp(g->msg, "the spec is empty") != 0 && !strstr(g->msg, "more errors");
}

static void check_invalid(const rn_spec *s, const rn_diags *d) {
    CHECK(d->n > 0);
    CHECK(s->tasks == NULL && s->ntasks == 0 && s->text == NULL && s->overrides == NULL);
    for (int i = 0; i < d->n; i++) {
        const rn_diag *g = &d->v[i];
        CHECK(TERMINATED(g->file) && TERMINATED(g->path) && TERMINATED(g->msg));
        CHECK(g->file[0] != '\0' && g->msg[0] != '\0');
        CHECK(g->line >= 0 && g->column >= 0);
        if (!check_on("location")) continue;
        if (g->line == 0 && needs_location(g)) fprintf(stderr, "fuzz_spec: no location: %s: %s\n", g->path, g->msg);
        CHECK(g->line > 0 || !needs_location(g));
    }
}

/* The diagnostics are printed as the CLI would, to a sink (not a file). */
static FILE *sink(void) {
    static FILE *f;
    if (!f) f = fopen("/dev/null", "w");
    return f;
}

int fuzz_spec_one(const uint8_t *data, size_t size) {
    /* the spec is the text up to the first NUL; copied to get its terminator */
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(tlen + 1);
    if (!text) return FUZZ_SPEC_REJECTED_ARGS;
    if (tlen) memcpy(text, data, tlen);
    text[tlen] = '\0';

    /* every NUL-terminated piece after it is one --set argument */
    int nargs = 0;
    for (size_t i = tlen; i < size; i++) nargs += data[i] == 0;
    rn_override *ov = calloc((size_t)nargs + 1, sizeof *ov);
    char *arg = malloc(size - tlen + 1);
    int nov = 0, rc = FUZZ_SPEC_REJECTED_ARGS;
    if (!ov || !arg) goto done;
    for (size_t i = tlen + 1; i <= size && nul;) {
        const uint8_t *end = memchr(data + i, 0, size - i);
        size_t l = end ? (size_t)(end - (data + i)) : size - i;
        memcpy(arg, data + i, l);
        arg[l] = '\0';
        if (rn_override_parse(&ov[nov], arg) != 0) goto done; /* the CLI exits 2 before loading */
        nov++;
        i += l + 1;
    }

    rn_spec s;
    rn_diags d = {0};
    if (rn_spec_load_text(&s, "fuzz.yaml", text, NULL, ov, nov, &d) == 0) {
        if (checks_on()) check_valid(&s, text);
        rc = FUZZ_SPEC_VALID;
    } else {
        if (checks_on()) check_invalid(&s, &d);
        if (sink()) rn_diags_print(&d, sink());
        rc = FUZZ_SPEC_INVALID;
    }
    rn_spec_free(&s);
    rn_diags_free(&d);
done:
    free(arg);
    free(ov);
    free(text);
    return rc;
}
