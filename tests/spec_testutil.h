/* Helpers of the spec tests (tests/test_spec.c, tests/test_spec_files.c):
 * loading fixtures and inline specs, expecting diagnostics, finding tasks. */
#ifndef TEST_SPEC_UTIL_H
#define TEST_SPEC_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../runner/kinds/task.h"
#include "../runner/spec/spec.h"

#define FIX "tests/specs/"
#define FM_DIR "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------ helpers --- */

static const rn_spec_opts no_data = {.skip_data_check = 1};

static inline int load_file(rn_spec *s, rn_diags *d, const char *name, const rn_spec_opts *o, const rn_override *ov,
                     int nov) {
    char path[256];
    snprintf(path, sizeof path, FIX "%s", name);
    return rn_spec_load_opts(s, path, o, ov, nov, d);
}

static inline int load_text(rn_spec *s, rn_diags *d, const char *text) {
    return rn_spec_load_text(s, "inline.yaml", text, &no_data, NULL, 0, d);
}

static inline void dump(const rn_diags *d) { rn_diags_print(d, stderr); }

/* The diagnostic whose message contains `msg` (and path equals `path` when
 * not NULL); fails the test when none does. */
static inline const rn_diag *expect(const rn_diags *d, const char *path, const char *msg) {
    for (int i = 0; i < d->n; i++)
        if (strstr(d->v[i].msg, msg) && (!path || strcmp(d->v[i].path, path) == 0)) return &d->v[i];
    dump(d);
    cr_assert_fail("no diagnostic %s: ...%s...", path ? path : "", msg);
    return NULL;
}

static inline void expect_at(const rn_diags *d, const char *path, const char *msg, int line, int col) {
    const rn_diag *g = expect(d, path, msg);
    cr_expect_eq(g->line, line, "%s: line %d, expected %d", g->msg, g->line, line);
    cr_expect_eq(g->column, col, "%s: column %d, expected %d", g->msg, g->column, col);
}

static inline const rn_task *find_task(const rn_spec *s, const char *key) {
    for (int i = 0; i < s->ntasks; i++)
        if (strcmp(s->tasks[i].key, key) == 0) return &s->tasks[i];
    return NULL;
}

/* A task's parameter as people see it (task.h: rn_task_param). */
typedef struct tparam {
    const char *name, *value;
    int swept;
} tparam;

static inline const tparam *param(const rn_task *t, const char *name) {
    static tparam slots[8];
    static int next;
    tparam *p = &slots[next++ % 8];
    for (int i = 0; rn_task_param(t, i, &p->name, &p->value, &p->swept) == 0; i++)
        if (strcmp(p->name, name) == 0) return p;
    return NULL;
}

static inline int count_kind(const rn_spec *s, const char *kind, const char *name) {
    int n = 0;
    for (int i = 0; i < s->ntasks; i++)
        n += strcmp(s->tasks[i].kind, kind) == 0 && (!name || strcmp(s->tasks[i].name, name) == 0);
    return n;
}

static inline void load_ok(rn_spec *s, const char *name) {
    rn_diags d = {0};
    int rc = load_file(s, &d, name, &no_data, NULL, 0);
    if (rc != 0) dump(&d);
    cr_assert_eq(rc, 0, "%s does not load", name);
    cr_assert_eq(d.n, 0);
    rn_diags_free(&d);
}

static inline int dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

#endif
