/* Bad input to the spec loader (runner/spec.c, runner/yaml_tree.c), one
 * suite per class of issue 10: each must be one error with file and
 * line:column, never a crash, never quadratic time, and `ipsweep run` must
 * exit 2 having written nothing. Several cases per class: a held-out corpus
 * has more of each. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner/spec/spec.h"
#include "testutil.h"

static const rn_spec_opts no_data = {.skip_data_check = 1};

/* Loads text; returns the loader's result. d must be zeroed. */
static int load(rn_spec *s, rn_diags *d, const char *text) {
    return rn_spec_load_text(s, "in.yaml", text, &no_data, NULL, 0, d);
}

/* The diagnostic whose message contains msg and whose path is path (any when
 * NULL), at line:col (not checked when line < 0); fails the test when none. */
static const rn_diag *want(const rn_diags *d, const char *path, const char *msg, int line, int col) {
    for (int i = 0; i < d->n; i++) {
        const rn_diag *g = &d->v[i];
        if (!strstr(g->msg, msg) || (path && strcmp(g->path, path) != 0)) continue;
        if (line >= 0) {
            cr_expect_eq(g->line, line, "%s: line %d, expected %d", g->msg, g->line, line);
            cr_expect_eq(g->column, col, "%s: column %d, expected %d", g->msg, g->column, col);
        }
        return g;
    }
    rn_diags_print(d, stderr);
    cr_assert_fail("no diagnostic %s: ...%s...", path ? path : "*", msg);
    return NULL;
}

/* Loads text that must fail with exactly one error: path, msg at line:col. */
static void one_error(const char *text, const char *path, const char *msg, int line, int col) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load(&s, &d, text), -1, "accepted:\n%s", text);
    want(&d, path, msg, line, col);
    if (d.n != 1) rn_diags_print(&d, stderr);
    cr_expect_eq(d.n, 1, "one error, got %d, for:\n%s", d.n, text);
    rn_diags_free(&d);
}

static void loads(const char *text) {
    rn_spec s;
    rn_diags d = {0};
    int rc = load(&s, &d, text);
    if (rc) rn_diags_print(&d, stderr);
    cr_assert_eq(rc, 0, "rejected:\n%s", text);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* Seconds a scale test may take: the release build takes ~1 s; ASan and
 * UBSan (make test-san) are ~10 times slower. */
static double time_limit(void) { return getenv("IPSWEEP_SANITIZED") ? 100.0 : 10.0; }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define HEAD "data: {source: 'synthetic:64'}\n"

/* ------------------------------------------- crash: zip of unequal lists --- */

Test(spec_input_zip, unequal_lists_stop_expansion) {
    /* defaults: the crash of issue 10 (heap overflow in expand_entry) */
    one_error(HEAD "defaults:\n  models:\n    zip:\n      epochs: [1, 2, 3]\n      lr: [0.1, 0.2]\nmodels:\n  - name: a\n",
              "defaults.models.zip.lr", "zip lists have different lengths: epochs has 3 values, lr has 2", 6, 11);
    /* the longer list second */
    one_error(HEAD "defaults:\n  models:\n    zip: {lr: [0.1], epochs: [1, 2, 3]}\nmodels:\n  - name: a\n  - name: b\n",
              "defaults.models.zip.epochs", "zip lists have different lengths", 4, 30);
    /* a task kind's defaults, with entries that refer to a model */
    one_error(HEAD "defaults:\n  prune:\n    zip: {rate: {range: [0, 0.5, 0.1]}}\n    rate: 0.5\nmodels: [{name: a}]\n"
                   "tasks:\n  - {name: p, kind: prune, model: a}\n  - {name: q, kind: eval, model: p}\n",
              NULL, "\"rate\" is set twice", -1, 0);
    one_error(HEAD "defaults:\n  prune:\n    zip: {rate: [0.1, 0.2, 0.3]}\n"
                   "models: [{name: a}]\ntasks:\n  - {name: p, kind: prune, model: a}\n"
                   "  - {name: q, kind: eval, model: p, zip: {batch: [1, 2], branch: [public]}}\n",
              NULL, "zip lists have different lengths: batch has 2 values, branch has 1", -1, 0);
    /* an entry's own zip, and its dependants */
    one_error(HEAD "models:\n  - name: a\n    zip: {seed: [1, 2], lr: [0.1, 0.2, 0.3], epochs: [1, 2]}\n"
                   "tasks:\n  - {name: p, kind: prune, model: a}\n",
              "models[0].zip.lr", "zip lists have different lengths: seed has 2 values, lr has 3", 4, 29);
}

/* --------------------------------------------- quadratic time, deep chains --- */

static char *big_spec(int n, const char *fmt_entry, const char *head) {
    size_t cap = strlen(head) + (size_t)n * 80 + 64, l = 0;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    l += (size_t)snprintf(t + l, cap - l, "%s", head);
    for (int i = 0; i < n; i++) l += (size_t)snprintf(t + l, cap - l, fmt_entry, i, i > 0 ? i - 1 : 0);
    return t;
}

Test(spec_input_scale, many_entries_validate_fast) {
    /* 150,000 models (150,000 tasks, under the cap of 4,000,000) */
    char *t = big_spec(150000, "  - name: m%d\n", HEAD "models:\n");
    double t0 = now();
    loads(t);
    double dt = now() - t0;
    cr_expect_lt(dt, time_limit(), "150,000 entries took %.1f s", dt);
    free(t);
    /* more than the task cap, reported at the entry that crosses it, before anything is expanded */
    t0 = now();
    one_error(HEAD "models:\n  - {name: a, seed: [1, 2]}\n  - {name: b, seed: {range: [1, 2000, 1]}, epochs: {range: [1, 2001, 1]}}\n",
              "models[1]", "expands to 4002000 tasks (counting shards), which makes more than 4000000 in the spec", 4, 5);
    cr_expect_lt(now() - t0, time_limit() / 5, "the cap is checked before anything is expanded");
    /* 150,000 tasks naming one model (reference lookups), and a duplicate name at the end */
    t = big_spec(150000, "  - {name: t%d, kind: eval, model: a}\n", HEAD "models:\n  - name: a\ntasks:\n");
    size_t l = strlen(t);
    char *t2 = realloc(t, l + 64);
    cr_assert_not_null(t2);
    strcat(t2, "  - {name: t7, kind: eval, model: a}\n");
    t0 = now();
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load(&s, &d, t2), -1);
    want(&d, "tasks[150000].name", "duplicate name \"t7\" (first used by tasks[7], line 12)", 150005, 12);
    dt = now() - t0;
    cr_expect_lt(dt, time_limit(), "150,000 tasks took %.1f s", dt);
    rn_diags_free(&d);
    free(t2);
    /* 100,000 unknown references: only the reported ones get a suggestion */
    t = big_spec(100000, "  - {name: t%d, kind: eval, model: nosuch%d}\n", HEAD "models:\n  - name: a\ntasks:\n");
    t0 = now();
    cr_assert_eq(load(&s, &d, t), -1);
    want(&d, "tasks[0].model", "unknown model \"nosuch0\"", 5, 35);
    want(&d, "", "more errors", 0, 0);
    dt = now() - t0;
    cr_expect_lt(dt, time_limit(), "100,000 bad references took %.1f s", dt);
    rn_diags_free(&d);
    free(t);
}

Test(spec_input_scale, many_keys_in_one_mapping) {
    /* 100,000 keys in one mapping: duplicate keys by hash, not pairwise */
    size_t cap = 100000 * 24 + 256, l = 0;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    l += (size_t)snprintf(t + l, cap - l, HEAD "models:\n  - name: a\n    extra:\n");
    for (int i = 0; i < 100000; i++) l += (size_t)snprintf(t + l, cap - l, "      k%d: 1\n", i % 99999);
    double t0 = now();
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load(&s, &d, t), -1);
    want(&d, "models[0].extra.k0", "duplicate key \"k0\" (first at line 5, column 7)", 100004, 7);
    want(&d, "models[0].extra", "unknown key \"extra\"", 4, 5);
    cr_expect_lt(now() - t0, time_limit());
    rn_diags_free(&d);
    free(t);
}

Test(spec_input_scale, deep_reference_chain) {
    /* each prune names the one before: no recursion as deep as the chain */
    int n = 60000;
    size_t cap = (size_t)n * 64 + 128, l = 0;
    char *t = malloc(cap);
    cr_assert_not_null(t);
    /* in file order every reference is to an entry already visited: name the next one instead */
    l += (size_t)snprintf(t + l, cap - l, HEAD "models: [{name: p}]\ntasks:\n");
    for (int i = 0; i < n; i++)
        l += (size_t)snprintf(t + l, cap - l, "  - {name: p%d, kind: prune, model: p%d}\n", i, i + 1);
    l += (size_t)snprintf(t + l, cap - l, "  - {name: p%d, kind: prune, model: p}\n", n);
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load(&s, &d, t), -1);
    want(&d, NULL, "references nest more than 1000 deep", -1, 0);
    rn_diags_free(&d);
    free(t);
    /* 900 deep is fine */
    t = malloc(cap);
    cr_assert_not_null(t);
    l = (size_t)snprintf(t, cap, HEAD "models: [{name: p}]\ntasks:\n");
    for (int i = 0; i < 900; i++)
        l += (size_t)snprintf(t + l, cap - l, "  - {name: p%d, kind: prune, model: p%d}\n", i, i + 1);
    l += (size_t)snprintf(t + l, cap - l, "  - {name: p900, kind: prune, model: p}\n");
    loads(t);
    free(t);
}

Test(spec_input_scale, task_cap_counts_shards_first) {
    /* 7,000 models x 10 fake1 seeds x (64 shards + the merge) = 4,550,000 tasks */
    const char *t = HEAD "models:\n  - name: a\n    seed: {range: [1, 7000, 1]}\ntasks:\n"
                         "  - name: f\n    kind: fake1\n    model: a\n    passports: 100000\n    shards: 64\n"
                         "    seed: {range: [1, 10, 1]}\n";
    double t0 = now();
    one_error(t, "tasks[0]", "expands to 4550000 tasks (counting shards), which makes more than 4000000", 6, 5);
    cr_expect_lt(now() - t0, time_limit() / 5, "the cap is checked before anything is expanded");
    /* automatic sharding (shard_size), a second fake1 entry crossing the cap */
    t = HEAD "models:\n  - name: a\n    seed: {range: [1, 30000, 1]}\ntasks:\n"
             "  - {name: f, kind: fake1, model: a, passports: 10000, shard_size: 1000, seed: [1, 2, 3, 4, 5]}\n"
             "  - {name: g, kind: fake1, model: a, passports: 64000, shard_size: 1000, seed: [1, 2]}\n";
    one_error(t, "tasks[1]", "expands to 3900000 tasks (counting shards)", 7, 5);
    /* many shards load: 1 model x 769 seeds x (64 + 1) = 49,985, + the model */
    loads(HEAD "models: [{name: a}]\ntasks:\n  - {name: f, kind: fake1, model: a, passports: 64, shards: 64, "
               "seed: {range: [1, 769, 1]}}\n");
}

/* --------------------------------------------------------- milestones --- */

static void bad_milestones(const char *value, const char *msg) {
    char t[512];
    snprintf(t, sizeof t, HEAD "models:\n  - name: a\n    milestones: %s\n", value);
    one_error(t, "models[0].milestones", msg, 4, 17);
}

Test(spec_input_values, milestones) {
    bad_milestones("abc", "\"abc\" is not a positive integer");
    bad_milestones("\"10,5\"", "5 does not come after 10");
    bad_milestones("10,10", "10 does not come after 10");
    bad_milestones("\"-3\"", "\"-3\" is not a positive integer");
    bad_milestones("-3", "\"-3\" is not a positive integer");
    bad_milestones("0", "0 is out of range [1, 100000]");
    bad_milestones("'1,,2'", "empty item in \"1,,2\"");
    bad_milestones("'1,2,'", "\"1,2,\" ends with a comma");
    bad_milestones("',1'", "empty item in \",1\"");
    bad_milestones("1.5", "\"1.5\" is not a positive integer");
    bad_milestones("'1;2'", "\"1;2\" is not a positive integer");
    bad_milestones("99999999999999999999", "99999999999999999999 is out of range");
    bad_milestones("'1,2,3,4,5,6,7,8,9'", "more than 8 items");
    bad_milestones("'10 20'", "\"10 20\" is not a positive integer");
    /* in a sweep: the bad value is located */
    one_error(HEAD "models:\n  - name: a\n    milestones: ['10,20', '20,10']\n", "models[0].milestones[1]",
              "10 does not come after 20", 4, 27);
    loads(HEAD "models:\n  - name: a\n    milestones: '100,150'\n");
    loads(HEAD "models:\n  - name: a\n    milestones: '100, 150'\n");
    loads(HEAD "models:\n  - name: a\n    milestones: 30\n");
    loads(HEAD "models:\n  - name: a\n    milestones: ''\n");
    loads(HEAD "models:\n  - name: a\n    milestones: ['1,2,3,4,5,6,7,8', '50,75']\n");
}

Test(spec_input_values, repeated_sweep_values) {
    one_error(HEAD "models:\n  - name: a\n    lr: [0.1, 0.10, 1e-1]\n", "models[0].lr[1]",
              "0.10 repeats the value of models[0].lr[0] (0.1)", 4, 15);
    one_error(HEAD "models:\n  - name: a\n    seed: [1, 2, +2]\n", "models[0].seed[2]",
              "2 repeats the value of models[0].seed[1]", 4, 18);
    one_error(HEAD "models:\n  - name: a\n    arch: [small-p, small-p-narrow, small-p]\n", "models[0].arch[2]",
              "small-p repeats the value", 4, 37);
    one_error(HEAD "models:\n  - name: a\n    augment: [true, True]\n", "models[0].augment[1]", "repeats", 4, 21);
    one_error(HEAD "models:\n  - name: a\n    signature: [ab, 'ab']\n", "models[0].signature[1]", "repeats", 4, 21);
    one_error(HEAD "models:\n  - name: a\n    milestones: ['5,10', '5,10']\n", "models[0].milestones[1]", "repeats",
              4, 26);
    one_error(HEAD "models: [{name: a}]\ntasks:\n  - {name: p, kind: prune, model: [a, a]}\n", "tasks[0].model[1]",
              "a repeats the value", 4, 39);
    /* defaults are sweeps too */
    one_error(HEAD "defaults:\n  models:\n    epochs: [1, 2, 1]\nmodels: [{name: a}]\n", "defaults.models.epochs[2]",
              "repeats", 4, 20);
    /* a range whose values print the same (10 significant digits) */
    one_error(HEAD "tasks:\n  - {name: n, kind: noop, value: {range: [1e15, 1.000000000001e15, 100]}}\n",
              "tasks[0].value.range", "the range gives the value 1e+15 twice", 3, 34);
    /* zip: a repeated combination is an error, a repeated value in one member is not */
    one_error(HEAD "models:\n  - name: a\n    zip: {epochs: [1, 1, 2], lr: [0.1, 0.10, 0.1]}\n", "models[0].zip",
              "values 0 and 1 of the zip lists are the same combination", 4, 10);
    one_error(HEAD "models:\n  - name: a\n    zip: {seed: [3, 3]}\n", "models[0].zip.seed[1]", "repeats", 4, 21);
    loads(HEAD "models:\n  - name: a\n    zip: {epochs: [1, 1, 2], lr: [0.1, 0.2, 0.1]}\n");
    loads(HEAD "models:\n  - name: a\n    lr: [0.1, 0.01, 1e-3]\n    seed: {range: [1, 5, 1]}\n");
}

Test(spec_input_values, empty_references) {
    const char *base = HEAD "models: [{name: a}, {name: b, scheme: v1}]\n";
    char t[1024];
    struct {
        const char *task, *path, *msg;
        int col;
    } cases[] = {
        {"{name: e, kind: eval, model: ''}", "tasks[0].model", "expected the name of a model, got an empty string", 34},
        {"{name: e, kind: eval, model: \"\"}", "tasks[0].model", "got an empty string", 34},
        {"{name: e, kind: eval, model: [a, '']}", "tasks[0].model[1]", "got an empty string", 38},
        {"{name: e, kind: eval, model: ~}", "tasks[0].model", "missing value (expected the name of a model)", 34},
        {"{name: f, kind: fingerprint, model: ''}", "tasks[0].model", "got an empty string", 41},
        {"{name: m, kind: match, fingerprint: '', suspect: a}", "tasks[0].fingerprint",
         "expected the name of a fingerprint entry, got an empty string", 41},
        {"{name: f, kind: fake1, model: b, reference: ''}", "tasks[0].reference",
         "empty model name (leave the key out for none)", 49},
        {"{name: v, kind: verify, model: b, claim: ''}", "tasks[0].claim", "empty model name", 46},
        {"{name: '', kind: eval, model: a}", "tasks[0].name", "invalid name \"\"", 12},
        {"{name: e, kind: '', model: a}", "tasks[0].kind", "unknown task kind \"\"", 21},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(t, sizeof t, "%stasks:\n  - %s\n", base, cases[i].task);
        one_error(t, cases[i].path, cases[i].msg, 4, cases[i].col);
    }
    /* match's suspect: the fingerprint entry exists, the suspect is empty */
    one_error(HEAD "models: [{name: a}]\ntasks:\n  - {name: f, kind: fingerprint, model: a}\n"
                   "  - {name: m, kind: match, fingerprint: f, suspect: ''}\n",
              "tasks[1].suspect", "got an empty string", 5, 53);
}

Test(spec_input_values, key_type_needs_reference) {
    const char *base = HEAD "models: [{name: a}, {name: b, scheme: v1}]\ntasks:\n";
    char t[1024];
    snprintf(t, sizeof t, "%s  - {name: f, kind: fake1, model: b, key_type: image}\n", base);
    one_error(t, "tasks[0].key_type", "key_type image needs `reference`", 4, 48);
    snprintf(t, sizeof t, "%s  - name: v\n    kind: verify\n    model: b\n    key_type: shuffle\n", base);
    one_error(t, "tasks[0].key_type", "key_type shuffle needs `reference`", 7, 15);
    snprintf(t, sizeof t, "%s  - {name: f, kind: fake1, model: b, key_type: [random, image]}\n", base);
    one_error(t, "tasks[0].key_type", "key_type image needs `reference`", 4, 48);
    /* from defaults */
    snprintf(t, sizeof t, HEAD "defaults:\n  fake1: {key_type: shuffle}\nmodels: [{name: b, scheme: v1}]\ntasks:\n"
                               "  - {name: f, kind: fake1, model: b}\n");
    one_error(t, "defaults.fake1.key_type", "key_type shuffle needs `reference`", 3, 21);
    snprintf(t, sizeof t, "%s  - {name: f, kind: fake1, model: b, key_type: image, reference: a}\n", base);
    loads(t);
    snprintf(t, sizeof t, "%s  - {name: f, kind: fake1, model: b}\n", base);
    loads(t);
}

/* ------------------------------------------------------------- output --- */

Test(spec_input_values, output_names_a_file) {
    char t[1024];
    const char *dirs[] = {"results/", ".", "..", "./", "/tmp", "/tmp/", "newdir/sub/", "a/.", "a/.."};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(t, sizeof t, HEAD "output: '%s'\nmodels: [{name: a}]\n", dirs[i]);
        rn_spec s;
        rn_diags d = {0};
        cr_assert_eq(load(&s, &d, t), -1, "output %s accepted", dirs[i]);
        const rn_diag *g = want(&d, "output", "output", 2, 9);
        cr_expect(strstr(g->msg, "directory") != NULL, "%s", g->msg);
        cr_expect_eq(d.n, 1);
        rn_diags_free(&d);
    }
    /* a part of the path that is a file */
    one_error(HEAD "output: /etc/passwd/x.h5\nmodels: [{name: a}]\n", "output", "\"/etc/passwd\" is not a directory", 2,
              9);
    loads(HEAD "output: /tmp/ipsweep-not-there/sub/x.h5\nmodels: [{name: a}]\n");
}

/* ----------------------------------------------------------- encoding --- */

static char dir[64];
static void enc_init(void) { cr_assert_not_null(tu_mkdtemp(dir, sizeof dir, "specin")); }
static void enc_fini(void) { tu_rmtree(dir); }

/* Writes bytes to a file and loads it: one error at line:col with msg. */
static void bad_file(const char *bytes, size_t n, const char *msg, int line, int col) {
    const char *p = tu_path(dir, "bad.yaml");
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, n, f), n);
    fclose(f);
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(rn_spec_load_opts(&s, p, &no_data, NULL, 0, &d), -1);
    cr_assert_eq(d.n, 1);
    cr_expect(strstr(d.v[0].msg, msg) != NULL, "%s", d.v[0].msg);
    cr_expect_str_eq(d.v[0].file, p);
    cr_expect_eq(d.v[0].line, line, "%s: line %d", d.v[0].msg, d.v[0].line);
    cr_expect_eq(d.v[0].column, col, "%s: column %d", d.v[0].msg, d.v[0].column);
    rn_diags_free(&d);
}

#define L7 HEAD "models:\n  - name: a\n\n\n\n\n"
#define BAD(lit, msg, col) bad_file(L7 lit, sizeof(L7 lit) - 1, msg, 8, col)

Test(spec_input_encoding, bad_bytes_have_a_line, .init = enc_init, .fini = enc_fini) {
    BAD("    signature: \"ab\0c\"\n", "NUL byte", 19);
    BAD("    signature: \"ab\xc3\x28\"\n", "invalid UTF-8 (byte 0xC3", 19);      /* a lead byte without its tail */
    BAD("    signature: \"ab\xc0\xaf\"\n", "invalid UTF-8 (byte 0xC0", 19);      /* overlong '/' */
    BAD("    signature: \"ab\xe0\x80\xaf\"\n", "invalid UTF-8 (byte 0xE0", 19);  /* overlong, 3 bytes */
    BAD("    signature: \"ab\xf0\x80\x80\xaf\"\n", "invalid UTF-8 (byte 0xF0", 19); /* overlong, 4 bytes */
    BAD("    signature: \"ab\xed\xa0\x80\"\n", "invalid UTF-8 (byte 0xED", 19);  /* a surrogate */
    BAD("    signature: \"ab\xf4\x90\x80\x80\"\n", "invalid UTF-8 (byte 0xF4", 19); /* above U+10FFFF */
    BAD("    signature: \"ab\x80\"\n", "invalid UTF-8 (byte 0x80", 19);          /* a stray continuation */
    BAD("    signature: \"\xc3\xa9\xff\"\n", "invalid UTF-8 (byte 0xFF", 18);    /* after a 2-byte character */
    BAD("    signature: \"ab\xe2\x82\"", "invalid UTF-8 (byte 0xE2", 19);        /* cut at the end */
    BAD("    signature: \"ab\x7f\"\n", "control characters are not allowed", 19); /* libyaml's reader */
    BAD("    signature: \"ab\x1b\"\n", "control characters are not allowed", 19);
    /* valid UTF-8 and a BOM load */
    const char ok[] = "\xef\xbb\xbf" HEAD "models:\n  - name: a\n    signature: \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"\n";
    const char *p = tu_path(dir, "ok.yaml");
    FILE *f = fopen(p, "wb");
    fwrite(ok, 1, sizeof ok - 1, f);
    fclose(f);
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(rn_spec_load_opts(&s, p, &no_data, NULL, 0, &d), 0);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* text as UTF-16/32 (LE or BE, with or without a BOM) */
static void wide(const char *text, int unit, int be, int bom) {
    char buf[1024];
    size_t n = 0;
    if (bom) {
        unsigned cp = 0xFEFF;
        for (int b = 0; b < unit; b++) buf[n++] = (char)(be ? (cp >> (8 * (unit - 1 - b))) : (cp >> (8 * b)));
    }
    for (const char *p = text; *p; p++)
        for (int b = 0; b < unit; b++) {
            unsigned cp = (unsigned char)*p;
            buf[n++] = (char)(be ? (cp >> (8 * (unit - 1 - b))) : (cp >> (8 * b)));
        }
    bad_file(buf, n, unit == 2 ? "encoded as UTF-16, which is not supported: save it as UTF-8"
                               : "encoded as UTF-32, which is not supported", 1, 1);
}

Test(spec_input_encoding, utf16_is_named, .init = enc_init, .fini = enc_fini) {
    const char *t = HEAD "models:\n  - name: a\n";
    for (int be = 0; be < 2; be++)
        for (int bom = 0; bom < 2; bom++) {
            wide(t, 2, be, bom);
            wide(t, 4, be, bom);
        }
}

/* ------------------------------------------------------------ --set --- */

Test(spec_input_overrides, errors_name_the_override) {
    const char *text = HEAD "output: /tmp/ipsweep-never/x.h5\nmodels:\n  - name: a\n";
    const char *args[] = {"models[0].lr=abc", "models.a.lrr=0.1", "models[0].lr=[0.1, 0.10]", "output=/tmp",
                          "models[0].milestones=10,5", "models[0].seed=[1,", "tasks.x.rate=1",
                          "models[0].signature=\xc0\xaf"};
    const char *msgs[] = {"expected a number, got \"abc\" (from --set)",
                          "unknown path \"models.a.lrr\": unknown key \"lrr\" (did you mean \"lr\"?)",
                          "0.10 repeats the value",
                          "is an existing directory",
                          "5 does not come after 10",
                          "bad value \"[1,\" for models[0].seed",
                          "the spec has no tasks list",
                          "not UTF-8"};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++) {
        rn_override ov;
        cr_assert_eq(rn_override_parse(&ov, args[i]), 0);
        rn_spec s;
        rn_diags d = {0};
        cr_assert_eq(rn_spec_load_text(&s, "in.yaml", text, &no_data, &ov, 1, &d), -1, "%s", args[i]);
        const rn_diag *g = want(&d, NULL, msgs[i], 0, 0);
        char origin[400];
        snprintf(origin, sizeof origin, "--set %s", args[i]);
        cr_expect_str_eq(g->origin, origin);
        /* printed: "in.yaml: --set PATH=VALUE: ..." */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        rn_diags_print(&d, f);
        fclose(f);
        char head[420];
        snprintf(head, sizeof head, "in.yaml: --set %s: ", args[i]);
        cr_expect_eq(strncmp(buf, head, strlen(head)), 0, "%s", buf);
        cr_expect_eq(d.n, 1);
        free(buf);
        rn_diags_free(&d);
    }
}

/* ------------------------------------------- `ipsweep run`: nothing written --- */

/* build/ipsweep next to this test binary (build-san/ has none: skipped there). */
static int ipsweep_path(char *out, size_t cap) {
    char self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (!slash) return -1;
    *slash = 0;
    snprintf(out, cap, "%s/ipsweep", self);
    return access(out, X_OK) == 0 ? 0 : -1;
}

static int nfiles(const char *path) {
    int n = 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s' -mindepth 1 | wc -l", path);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

/* Runs `ipsweep run spec.yaml ARGS` in dir with spec text; the exit status. */
static int run_in(const char *bin, const char *text, const char *args) {
    FILE *f = fopen(tu_path(dir, "spec.yaml"), "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' run spec.yaml %s >/dev/null 2>'%s/err.txt'", dir, bin, args, dir);
    int rc = system(cmd);
    char buf[600] = "";
    f = fopen(tu_path(dir, "err.txt"), "r");
    if (f) {
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        buf[got] = 0;
        fclose(f);
    }
    remove(tu_path(dir, "err.txt"));
    int st = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (st != 2) fprintf(stderr, "run %s: %s", args, buf);
    cr_expect(strstr(buf, "spec.yaml") == buf, "the error names the file: %s", buf);
    return st;
}

Test(spec_input_cli, run_writes_nothing_on_bad_input, .init = enc_init, .fini = enc_fini) {
    char bin[1100];
    if (ipsweep_path(bin, sizeof bin) != 0) cr_skip_test("no ipsweep binary next to the tests");
    char sub[200];
    snprintf(sub, sizeof sub, "%s/existing", dir);
    cr_assert_eq(mkdir(sub, 0777), 0);
    const char *body = "models:\n  - name: a\n    epochs: 0\n";
    char t[512];
    const char *outputs[] = {"existing", "existing/", "newdir/sub/", ".", "results/"};
    for (size_t i = 0; i < sizeof outputs / sizeof *outputs; i++) {
        snprintf(t, sizeof t, HEAD "output: '%s'\n%s", outputs[i], body);
        cr_expect_eq(run_in(bin, t, "--force"), 2, "output %s", outputs[i]);
        cr_expect_eq(nfiles(dir), 2, "output %s: only spec.yaml and existing/ (%d files)", outputs[i], nfiles(dir));
    }
    snprintf(t, sizeof t, HEAD "output: out/x.h5\n%s", body);
    const char *sets[] = {"--set models[0].lr=abc", "--set models.a.lrr=1", "--set nosuch=1",
                          "--set 'models[0].milestones=10,5'", "--set output=existing", "--set 'models[0].seed=[1, 01]'",
                          "--set models[0].epochs=-1"};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        cr_expect_eq(run_in(bin, t, sets[i]), 2, "%s", sets[i]);
        cr_expect_eq(nfiles(dir), 2, "%s: nothing written", sets[i]);
    }
    /* a bad spec (the zip crash, a UTF-16 file) */
    cr_expect_eq(run_in(bin, HEAD "defaults: {models: {zip: {epochs: [1, 2, 3], lr: [0.1, 0.2]}}}\nmodels: [{name: a}]\n",
                        ""),
                 2);
    cr_expect_eq(nfiles(dir), 2);
}
