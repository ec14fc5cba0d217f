/* Every input that ever crashed the spec-loader fuzz target (tests/fuzz/,
 * `make fuzz`), replayed through the same harness function, fuzz_spec_one():
 * without clang here, under ASan+UBSan in `make test-san`. An input listed
 * in tests/fuzz/known-open.txt is skipped: its bug is diagnosed there and
 * fixed on another branch; the lead empties the list when merging the fix. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz/spec_harness.h"

#define CRASH_DIR "tests/fuzz/crashes"
#define SEED_DIR "tests/fuzz/seeds"
#define KNOWN_OPEN "tests/fuzz/known-open.txt"

/* realloc that gives up on running out of memory (the helpers also run in
 * the parameter generator, where Criterion's assertions cannot). */
static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n);
    if (!q) abort();
    return q;
}

/* The whole file; *n its size (it may hold NUL bytes). NULL when unreadable. */
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0;
    *n = 0;
    for (;;) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 4096;
            buf = xrealloc(buf, cap);
        }
        size_t got = fread(buf + *n, 1, cap - *n, f);
        if (got == 0) break;
        *n += got;
    }
    fclose(f);
    return buf;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names of the regular files of dir (not hidden), sorted (NULL-terminated); none when it does not exist. */
static char **list_dir(const char *dir) {
    char **names = xrealloc(NULL, sizeof *names);
    names[0] = NULL;
    DIR *d = opendir(dir);
    if (!d) return names;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] == '.' || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        names = xrealloc(names, (size_t)(n + 2) * sizeof *names);
        names[n++] = strdup(e->d_name);
        names[n] = NULL;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    return names;
}

static void free_list(char **names) {
    for (int i = 0; names[i]; i++) free(names[i]);
    free(names);
}

/* The file names listed in known-open.txt: the first word of each line;
 * blank lines and everything after '#' (the diagnosis) are ignored. */
static char **known_open(void) {
    char **names = xrealloc(NULL, sizeof *names);
    names[0] = NULL;
    FILE *f = fopen(KNOWN_OPEN, "r");
    if (!f) return names;
    int n = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char word[256];
        if (sscanf(line, "%255s", word) != 1) continue;
        names = xrealloc(names, (size_t)(n + 2) * sizeof *names);
        names[n++] = strdup(word);
        names[n] = NULL;
    }
    fclose(f);
    return names;
}

static int listed(char **names, const char *name) {
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs one file through the harness (a crash or a broken invariant aborts
 * the test, after the file's name is printed); returns the harness's verdict. */
static int replay(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = 0;
    uint8_t *data = slurp(path, &n);
    cr_assert_not_null(data, "cannot read %s", path);
    fprintf(stderr, "replaying %s\n", path);
    double t0 = now();
    int rc = fuzz_spec_one(data, n);
    double dt = now() - t0;
    free(data);
    cr_expect_lt(dt, FUZZ_SPEC_TIMEOUT_S, "%s took %.1f s (limit %d s)", path, dt, FUZZ_SPEC_TIMEOUT_S);
    return rc;
}

/* One test per crasher, so each one reports (and is skipped) by itself. */
typedef struct crasher {
    char name[256];
    int known_open;
} crasher;

static void free_crashers(struct criterion_test_params *p) { cr_free(p->params); }

ParameterizedTestParameters(fuzz_regress, crasher) {
    char **names = list_dir(CRASH_DIR), **open = known_open();
    size_t n = 0;
    while (names[n]) n++;
    crasher *v = cr_malloc((n ? n : 1) * sizeof *v);
    if (!v) abort();
    for (size_t i = 0; i < n; i++) {
        snprintf(v[i].name, sizeof v[i].name, "%s", names[i]);
        v[i].known_open = listed(open, names[i]);
    }
    free_list(names);
    free_list(open);
    return cr_make_param_array(crasher, v, n, free_crashers);
}

ParameterizedTest(crasher *c, fuzz_regress, crasher) {
    if (c->known_open) cr_skip_test("%s: known open (%s)", c->name, KNOWN_OPEN);
    replay(CRASH_DIR, c->name);
}

/* A stale entry would silently skip nothing, or hide a renamed crasher. */
Test(fuzz_regress, known_open_names_existing_crashers) {
    char **names = list_dir(CRASH_DIR), **open = known_open();
    for (int i = 0; open[i]; i++) cr_expect(listed(names, open[i]), "%s lists %s, not in %s", KNOWN_OPEN, open[i], CRASH_DIR);
    free_list(names);
    free_list(open);
}

/* The hand-written seeds (spec + --set arguments) are valid: the input
 * format works, and the harness's invariants hold on real expansions. */
Test(fuzz_regress, seeds_are_valid) {
    char **names = list_dir(SEED_DIR);
    cr_assert_not_null(names[0], "no seeds in %s", SEED_DIR);
    for (int i = 0; names[i]; i++) cr_expect_eq(replay(SEED_DIR, names[i]), FUZZ_SPEC_VALID, "%s is not valid", names[i]);
    free_list(names);
}

Test(fuzz_regress, input_format) {
    static const char spec[] = "name: f\noutput: results/f.h5\ndata: {source: \"synthetic:64x1x8x8/4\"}\n"
                               "models:\n  - name: m\n";
    cr_expect_eq(fuzz_spec_one((const uint8_t *)spec, sizeof spec - 1), FUZZ_SPEC_VALID);
    /* the override reaches the loader: seed must be an integer */
    static const char bad_set[] = "name: f\noutput: results/f.h5\ndata: {source: \"synthetic:64x1x8x8/4\"}\n"
                                  "models:\n  - name: m\n\0models[0].seed=abc";
    cr_expect_eq(fuzz_spec_one((const uint8_t *)bad_set, sizeof bad_set - 1), FUZZ_SPEC_INVALID);
    /* an argument without '=' never gets to the loader (the CLI refuses it) */
    static const char no_eq[] = "name: f\n\0seed";
    cr_expect_eq(fuzz_spec_one((const uint8_t *)no_eq, sizeof no_eq - 1), FUZZ_SPEC_REJECTED_ARGS);
    cr_expect_eq(fuzz_spec_one((const uint8_t *)"", 0), FUZZ_SPEC_INVALID);
}
