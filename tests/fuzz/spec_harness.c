/* The body of the spec-loader fuzz target (see spec_harness.h). Besides
 * the sanitizers' checks, it asserts what the rest of ipsweep relies on
 * after a load, so a wrong-but-quiet result is a crash too:
 *   - invalid: at least one diagnostic, each naming the file and saying
 *     something, and the spec left empty (callers free nothing);
 *   - valid: tasks numbered by position, dependencies on earlier tasks only
 *     (the scheduler's and --dry-run's critical path assume it), known
 *     kinds, bounded strings, finite costs, unique keys (the journal's and
 *     the results file's identity of a task), the spec text kept verbatim. */
#include "spec_harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runner/kinds.h"
#include "../../runner/spec.h"

#define CHECK(cond)                                                                                                   \
    do {                                                                                                              \
        if (!(cond)) {                                                                                                \
            fprintf(stderr, "fuzz_spec: invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                                                  \
        }                                                                                                             \
    } while (0)

/* Whether a fixed-size char field holds a NUL-terminated string. */
#define TERMINATED(field) (memchr((field), 0, sizeof(field)) != NULL)

static int cmp_keys(const void *a, const void *b) {
    return strcmp((*(const rn_task *const *)a)->key, (*(const rn_task *const *)b)->key);
}

static void check_valid(const rn_spec *s, const char *text) {
    CHECK(s->ntasks >= 0);
    CHECK(s->ntasks == 0 || s->tasks != NULL);
    CHECK(s->text && strcmp(s->text, text) == 0);
    CHECK(s->overrides != NULL);
    CHECK(TERMINATED(s->name) && TERMINATED(s->output) && TERMINATED(s->outdir) && TERMINATED(s->data_source));
    CHECK(s->output[0] != '\0');
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        CHECK(t->id == i);
        CHECK(TERMINATED(t->key) && TERMINATED(t->kind) && TERMINATED(t->name) && TERMINATED(t->checkpoint));
        CHECK(t->key[0] != '\0');
        CHECK(rn_kind_find(t->kind) != NULL);
        CHECK(t->nparams >= 0 && t->nparams <= RN_MAX_PARAMS);
        for (int p = 0; p < t->nparams; p++)
            CHECK(TERMINATED(t->params[p].name) && TERMINATED(t->params[p].value));
        CHECK(t->ndeps >= 0 && t->ndeps <= RN_MAX_DEPS);
        for (int d = 0; d < t->ndeps; d++) CHECK(t->deps[d] >= 0 && t->deps[d] < i);
        CHECK(isfinite(t->cost) && t->cost >= 0);
    }
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

static void check_invalid(const rn_spec *s, const rn_diags *d) {
    CHECK(d->n > 0);
    CHECK(s->tasks == NULL && s->ntasks == 0 && s->text == NULL && s->overrides == NULL);
    for (int i = 0; i < d->n; i++) {
        const rn_diag *g = &d->v[i];
        CHECK(TERMINATED(g->file) && TERMINATED(g->path) && TERMINATED(g->msg));
        CHECK(g->file[0] != '\0' && g->msg[0] != '\0');
        CHECK(g->line >= 0 && g->column >= 0);
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
        check_valid(&s, text);
        rc = FUZZ_SPEC_VALID;
    } else {
        check_invalid(&s, &d);
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
