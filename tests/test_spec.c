/* Experiment specs (runner/spec.c): every class of validation error with its
 * location, sweep expansion, references and dependencies, task keys, seeds
 * and checkpoints, overrides, determinism, the top-level protocol. The
 * shipped configs and docs/spec.md's generated part: tests/test_spec_files.c.
 * Fixtures are in tests/specs/. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/util/rng.h"
#include "../runner/kinds/kinds.h"
#include "../runner/spec/spec.h"
#include "spec_testutil.h"

/* ---------------------------------------------------- error classes --- */

Test(spec_errors, yaml_syntax) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "syntax.yaml", &no_data, NULL, 0), -1);
    cr_assert_eq(d.n, 1);
    cr_expect_str_eq(d.v[0].file, FIX "syntax.yaml");
    cr_expect(strstr(d.v[0].msg, "YAML syntax error: did not find expected ',' or ']'") == d.v[0].msg, "%s",
              d.v[0].msg);
    cr_expect(strstr(d.v[0].msg, "while parsing a flow sequence at line 6, column 11"), "%s", d.v[0].msg);
    cr_expect_eq(d.v[0].line, 7);
    cr_expect_eq(d.v[0].column, 9);
    cr_expect_null(s.tasks);
    cr_expect_null(s.text);
    rn_diags_free(&d);
}

Test(spec_errors, yaml_second_document) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d, "data: {source: synthetic:8}\n---\nmodels: []\n"), -1);
    expect_at(&d, "", "a spec is one YAML document", 2, 1);
    rn_diags_free(&d);
}

Test(spec_errors, unknown_keys_with_suggestions) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "unknown_key.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "sede", "unknown key \"sede\" (did you mean \"seed\"?)", 2, 1);
    expect_at(&d, "data.train_limt", "unknown key \"train_limt\" (did you mean \"train_limit\"?)", 5, 3);
    expect_at(&d, "defaults.models.epoch", "unknown key \"epoch\" (did you mean \"epochs\"?)", 7, 12);
    expect_at(&d, "models[0].epoch", "unknown key \"epoch\" (did you mean \"epochs\"?)", 10, 5);
    const rn_diag *g = expect(&d, "models[0].colour", "unknown key \"colour\" (valid keys: name, zip, arch,");
    cr_expect_eq(g->line, 11);
    expect_at(&d, "tasks[0].rat", "unknown key \"rat\" (did you mean \"rate\"?)", 16, 5);
    cr_expect_eq(d.n, 6, "all six errors in one load");
    rn_diags_free(&d);
}

Test(spec_errors, duplicate_keys) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "duplicate_key.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "data.source", "duplicate key \"source\" (first at line 3, column 3)", 4, 3);
    expect_at(&d, "models[0].epochs", "duplicate key \"epochs\" (first at line 7, column 5)", 9, 5);
    cr_expect_eq(d.n, 2);
    rn_diags_free(&d);
}

Test(spec_errors, wrong_types) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "wrong_type.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "data.test_limit", "expected an integer, got \"lots\"", 4, 15);
    expect_at(&d, "models[0].epochs", "expected an integer, got \"two\"", 7, 13);
    expect_at(&d, "models[0].batch", "expected an integer, got 2.5", 8, 12);
    expect_at(&d, "models[0].lr", "expected a number, got the string \"0.1\"", 9, 9);
    expect_at(&d, "models[0].augment", "expected true or false, got \"yes\"", 10, 14);
    expect_at(&d, "models[0].optimizer", "invalid value \"sgdd\" (did you mean \"sgd\"? choices: sgd, adam)", 11, 16);
    expect_at(&d, "models[0].norm", "expected one of bn, gn (or a list of values), got a mapping", 12, 11);
    expect_at(&d, "models[0].seed[1]", "expected an integer in the sweep list, got a list", 13, 15);
    cr_expect_eq(d.n, 8);
    rn_diags_free(&d);
}

Test(spec_errors, out_of_range_and_bad_sweeps) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "out_of_range.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "models[0].epochs", "-1 is out of range [0, 100000]", 6, 13);
    expect_at(&d, "models[0].momentum", "1.5 is out of range [0, 1]", 7, 15);
    expect_at(&d, "models[0].seed", "empty sweep list", 8, 11);
    expect_at(&d, "models[1].lr.range", "range step must not be 0", 10, 17);
    expect_at(&d, "models[1].momentum.range", "empty range: a step of 0.1 never goes from 0.9 to 0.1", 11, 23);
    expect_at(&d, "models[1].zip.batch", "zip lists have different lengths: epochs has 3 values, batch has 2", 14,
              14);
    expect_at(&d, "tasks[0].rate.range", "range value 1.5 is out of range [0, 1]", 19, 19);
    cr_expect_eq(d.n, 7);
    rn_diags_free(&d);
}

Test(spec_errors, missing_required_keys) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "missing_required.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "data", "missing required key \"source\"", 3, 3);
    expect_at(&d, "models[0]", "missing required key \"name\"", 5, 5);
    expect_at(&d, "tasks[0]", "missing required key \"kind\"", 8, 5);
    expect_at(&d, "tasks[1]", "missing required key \"model\"", 10, 5);
    cr_expect_eq(d.n, 4);
    rn_diags_free(&d);

    cr_assert_eq(load_text(&s, &d, "models: [{name: a}]\n"), -1);
    expect(&d, "", "missing required key \"data\"");
    rn_diags_free(&d);
}

Test(spec_errors, unknown_task_kind) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "unknown_kind.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "tasks[0].kind", "unknown task kind \"prun\" (did you mean \"prune\"?)", 8, 11);
    expect_at(&d, "tasks[1].kind", "kind \"train\" entries go in the models section", 11, 11);
    /* the message lists every kind a task entry may use (train excluded) */
    const rn_diag *g = expect(&d, "tasks[2].kind", "unknown task kind \"zzzzzz\" (kinds: eval, prune, ");
    cr_expect_eq(g->line, 13);
    cr_expect_eq(g->column, 11);
    for (int k = 0; rn_kinds[k]; k++)
        if (strcmp(rn_kinds[k]->def->name, "train") != 0)
            cr_expect(strstr(g->msg, rn_kinds[k]->def->name), "%s does not list kind %s", g->msg, rn_kinds[k]->def->name);
    cr_expect_eq(d.n, 3);
    rn_diags_free(&d);
}

Test(spec_errors, duplicate_entry_names) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "duplicate_name.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "models[1].name", "duplicate name \"base\" (first used by models[0], line 5)", 6, 11);
    expect_at(&d, "tasks[0].name", "duplicate name \"base\" (first used by models[0], line 5)", 9, 11);
    cr_expect_eq(d.n, 2);
    rn_diags_free(&d);
}

Test(spec_errors, references) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "references.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "tasks[0].model", "unknown model \"bsae\" (did you mean \"base\"?)", 9, 12);
    expect_at(&d, "tasks[2].model", "\"acc\" is a task of kind eval, which does not produce a model", 15, 12);
    expect_at(&d, "tasks[3].model", "circular reference: self -> self", 18, 12);
    expect_at(&d, "tasks[5].model", "circular reference: ping -> pong -> ping", 24, 12);
    cr_expect_eq(d.n, 4);
    rn_diags_free(&d);
}

Test(spec_errors, missing_data_files) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "missing_data.yaml", NULL, NULL, 0), -1);
    expect_at(&d, "data.source", "data directory \"/nonexistent/ipsweep-test/fashion-mnist\" does not exist", 3, 11);
    rn_diags_free(&d);
    /* run --dry-run: the same spec loads without its data */
    cr_assert_eq(load_file(&s, &d, "missing_data.yaml", &no_data, NULL, 0), 0);
    cr_expect_eq(s.ntasks, 1);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

static char tmpdir[256];
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}
static void touch(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "%s", p);
    fclose(f);
}

Test(spec_errors, missing_data_files_listed) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ipsweep-test-spec-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    touch(tmpdir, "train-images-idx3-ubyte.gz");
    touch(tmpdir, "t10k-labels-idx1-ubyte");
    char text[1024];
    snprintf(text, sizeof text, "data: {source: 'mnist:%s'}\nmodels: [{name: a}]\n", tmpdir);
    rn_spec s;
    rn_diags d = {0};
    int rc = rn_spec_load_text(&s, "m.yaml", text, NULL, NULL, 0, &d);
    char msg[512];
    snprintf(msg, sizeof msg, "missing data files in %s: train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]",
             tmpdir);
    cr_expect_eq(rc, -1);
    if (rc == -1) expect_at(&d, "data.source", msg, 1, 16);
    rn_diags_free(&d);
    /* cifar10 in the standard subdirectory: every batch file is named */
    snprintf(text, sizeof text, "%s/cifar-10-batches-bin", tmpdir);
    mkdir(text, 0700);
    touch(text, "data_batch_1.bin");
    touch(text, "test_batch.bin");
    snprintf(text, sizeof text, "data: {source: 'cifar10:%s'}\nmodels: [{name: a}]\n", tmpdir);
    rc = rn_spec_load_text(&s, "c.yaml", text, NULL, NULL, 0, &d);
    cr_expect_eq(rc, -1);
    if (rc == -1) expect(&d, "data.source", "data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin (");
    rn_diags_free(&d);
    nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

Test(spec_errors, real_fashion_mnist_dir) {
    if (!dir_exists(FM_DIR)) cr_skip_test("%s is absent", FM_DIR);
    rn_spec s;
    rn_diags d = {0};
    int rc = load_file(&s, &d, "fashion_mnist.yaml", NULL, NULL, 0);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_expect_eq(s.train_limit, 1000);
    cr_expect_str_eq(s.data_source, "fashion-mnist:" FM_DIR);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

Test(spec_errors, signature_capacity) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "signature.yaml", &no_data, NULL, 0), -1);
    expect_at(&d, "models[1].signature",
              "signature \"ipsweep-2019\" needs 96 bits (8 per character) but passport layer block1 of small-p has "
              "64 channels (at most 8 characters)",
              10, 16);
    /* per sweep value: "abcd" fits small-p-narrow's 32 channels, "abcde" does not */
    expect_at(&d, "models[2].signature", "signature \"abcde\" needs 40 bits", 14, 16);
    expect_at(&d, "models[3].passport_layers",
              "cannot build small-p (scheme v1): passport layer \"block7\" is not a conv block of small-p", 17, 22);
    cr_expect_eq(d.n, 3, "fits, abcd and the baseline's signature are fine");
    rn_diags_free(&d);
}

Test(spec_errors, all_errors_in_one_load) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "many_errors.yaml", NULL, NULL, 0), -1);
    expect_at(&d, "sede", "unknown key \"sede\"", 2, 1);
    expect_at(&d, "data.source", "does not exist", 4, 11);
    expect_at(&d, "models[0].epoch", "did you mean \"epochs\"", 7, 5);
    expect_at(&d, "models[0].lr", "expected a number, got \"fast\"", 8, 9);
    expect_at(&d, "models[0].lr", "duplicate key \"lr\"", 9, 5);
    expect_at(&d, "models[1].name", "duplicate name \"base\"", 10, 11);
    expect_at(&d, "models[1].momentum", "2 is out of range [0, 1]", 11, 15);
    expect_at(&d, "models[2].signature", "needs 104 bits", 14, 16);
    expect_at(&d, "tasks[0].kind", "unknown task kind \"prun\"", 17, 11);
    expect_at(&d, "tasks[1].model", "unknown model \"nosuch\"", 21, 12);
    expect_at(&d, "tasks[2]", "missing required key \"model\"", 22, 5);
    cr_expect_eq(d.n, 11);
    /* sorted by place */
    for (int i = 1; i < d.n; i++) cr_expect_geq(d.v[i].line, d.v[i - 1].line);
    rn_diags_free(&d);
}

Test(spec_errors, diags_print_format) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d, "data: {source: synthetic:8}\nmodels:\n  - name: a\n    epoch: 1\n"), -1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rn_diags_print(&d, f);
    fclose(f);
    cr_expect_str_eq(buf, "inline.yaml:4:5: models[0].epoch: unknown key \"epoch\" (did you mean \"epochs\"?)\n");
    free(buf);
    rn_diags_free(&d);
}

Test(spec_errors, more_type_checks) {
    rn_spec s;
    rn_diags d = {0};
    const char *text = "name: a/b\n"
                       "seed: -1\n"
                       "output: ''\n"
                       "data: {source: fashion-mnis:/x}\n"
                       "models:\n"
                       "  - name: 'a b'\n"
                       "  - name: c\n"
                       "    lr: {rnage: [1, 2, 1]}\n"
                       "    epochs: {range: [1.5, 3, 1]}\n"
                       "    seed: [1, 1]\n"
                       "    milestones: {range: [1, 2, 1]}\n"
                       "    zip: {seed: [1, 2], model: [a, b]}\n"
                       "tasks: {name: x}\n";
    cr_assert_eq(load_text(&s, &d, text), -1);
    expect_at(&d, "name", "invalid name \"a/b\"", 1, 7);
    expect_at(&d, "seed", "-1 is out of range [0, ", 2, 7);
    expect_at(&d, "output", "output must not be empty", 3, 9);
    expect_at(&d, "data.source", "unknown data kind \"fashion-mnis\" (did you mean \"fashion-mnist\"?)", 4, 16);
    expect_at(&d, "models[0].name", "invalid name \"a b\"", 6, 11);
    expect_at(&d, "models[1].lr.rnage", "unknown key \"rnage\" (did you mean \"range\"?)", 8, 10);
    expect_at(&d, "models[1].epochs.range[0]", "expected an integer, got 1.5", 9, 22);
    expect(&d, "models[1].milestones", "a range needs a numeric key");
    expect(&d, "models[1].zip.seed", "\"seed\" is set twice (directly and in zip)");
    expect(&d, "models[1].zip.model", "unknown key \"model\"");
    expect(&d, "tasks", "expected a list of entries");
    rn_diags_free(&d);

    /* a repeated sweep value: reported at the value itself (it was "the task train:a[seed=1] appears twice"
     * at the entry, before the loader checked sweeps for repeats) */
    cr_assert_eq(load_text(&s, &d, "data: {source: synthetic:8}\nmodels: [{name: a, seed: [1, 1]}]\n"), -1);
    expect_at(&d, "models[0].seed[1]", "1 repeats the value of models[0].seed[0] (1)", 2, 30);
    rn_diags_free(&d);

    cr_assert_eq(load_text(&s, &d, "data: {source: 'synthetic:8x'}\nmodels: [{name: a}]\n"), -1);
    expect(&d, "data.source", "bad synthetic source \"synthetic:8x\"");
    rn_diags_free(&d);

    cr_assert_eq(load_text(&s, &d, "data: {source: synthetic:8}\nmodels: [{name: a}]\ntasks:\n"
                                   "  - {name: z, kind: prune, model: a, zip: {model: [a]}}\n"),
                 -1);
    expect(&d, "tasks[0].zip.model", "model references cannot be zipped");
    rn_diags_free(&d);

    cr_assert_eq(load_text(&s, &d, ""), -1);
    expect(&d, "", "the spec is empty");
    rn_diags_free(&d);
    cr_assert_eq(load_text(&s, &d, "data: {source: synthetic:8}\n"), -1);
    expect(&d, "", "the spec has no models and no tasks");
    rn_diags_free(&d);
}

Test(spec_errors, cannot_open) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(rn_spec_load(&s, FIX "no-such-file.yaml", NULL, 0, &d), -1);
    expect(&d, "", "cannot open the spec");
    rn_diags_free(&d);
}

/* ----------------------------------------------------------- sweeps --- */

Test(spec_sweeps, float_range_prints_short) {
    rn_spec s;
    load_ok(&s, "sweeps.yaml");
    static const char *const want[] = {"0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"};
    cr_assert_eq(count_kind(&s, "noop", "rates"), 10);
    int k = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (strcmp(t->name, "rates") != 0) continue;
        const tparam *p = param(t, "value");
        cr_assert_not_null(p);
        cr_expect_str_eq(p->value, want[k]);
        cr_expect_eq(p->swept, 1);
        char key[64];
        snprintf(key, sizeof key, "noop:rates[value=%s]", want[k]);
        cr_expect_str_eq(t->key, key);
        k++;
    }
    /* an integer range counting down, including its stop */
    cr_expect_not_null(find_task(&s, "noop:ints[value=10]"));
    cr_expect_not_null(find_task(&s, "noop:ints[value=6]"));
    cr_expect_not_null(find_task(&s, "noop:ints[value=2]"));
    cr_expect_eq(count_kind(&s, "noop", "ints"), 3);
    rn_spec_free(&s);
}

Test(spec_sweeps, cartesian_order_last_axis_fastest) {
    rn_spec s;
    load_ok(&s, "sweeps.yaml");
    /* grid: defaults {epochs, seed: [1,2]} then own {lr: [..], seed: [1,2,3]}:
     * seed replaces the default in place, so the axes are seed, lr */
    const char *want[] = {"train:grid[lr=0.1,seed=1]", "train:grid[lr=0.01,seed=1]", "train:grid[lr=0.1,seed=2]",
                          "train:grid[lr=0.01,seed=2]", "train:grid[lr=0.1,seed=3]", "train:grid[lr=0.01,seed=3]"};
    for (int i = 0; i < 6; i++) {
        cr_expect_str_eq(s.tasks[i].key, want[i]);
        cr_expect_eq(s.tasks[i].id, i);
        cr_expect_str_eq(rn_task_get(&s.tasks[i], "epochs"), "1", "the default applies");
    }
    rn_spec_free(&s);
}

Test(spec_sweeps, zip_and_defaults_sweep) {
    rn_spec s;
    load_ok(&s, "sweeps.yaml");
    cr_assert_eq(count_kind(&s, "train", "zipped"), 6, "3 zipped values x 2 default seeds");
    const rn_task *t = find_task(&s, "train:zipped[epochs=2,batch=32,seed=2]");
    cr_assert_not_null(t);
    cr_expect_str_eq(rn_task_get(t, "epochs"), "2");
    cr_expect_str_eq(rn_task_get(t, "batch"), "32");
    cr_expect(param(t, "epochs")->swept && param(t, "batch")->swept && param(t, "seed")->swept);
    cr_expect(!param(t, "lr")->swept);
    /* zipped values never mix */
    cr_expect_null(find_task(&s, "train:zipped[epochs=1,batch=32,seed=1]"));
    /* dflt only has the default sweep */
    cr_expect_eq(count_kind(&s, "train", "dflt"), 2);
    cr_expect_not_null(find_task(&s, "train:dflt[seed=2]"));
    rn_spec_free(&s);
}

Test(spec_sweeps, every_param_with_defaults) {
    rn_spec s;
    load_ok(&s, "sweeps.yaml");
    const rn_kind *k = rn_kind_find("train");
    const rn_task *t = find_task(&s, "train:dflt[seed=1]");
    cr_assert_not_null(t);
    int np = 0;
    const char *pn, *pv;
    int sw;
    while (rn_task_param(t, np, &pn, &pv, &sw) == 0) np++;
    cr_expect_eq(np, k->def->nparams);
    for (int i = 0; i < k->def->nparams; i++) {
        cr_assert_eq(rn_task_param(t, i, &pn, &pv, &sw), 0);
        cr_expect_str_eq(pn, k->def->params[i].name, "params in kind-table order");
        const char *want = k->def->params[i].def;
        if (!strcmp(k->def->params[i].name, "epochs")) want = "1";
        if (!strcmp(k->def->params[i].name, "seed")) want = "1";
        cr_expect_str_eq(pv, want, "%s", k->def->params[i].name);
    }
    cr_expect_str_eq(t->kind, "train");
    cr_expect_str_eq(t->name, "dflt");
    cr_expect_str_eq(t->checkpoint, "results/sweeps.d/ckpt/train_dflt_seed=1_.h5");
    cr_expect_gt(t->cost, 0);
    rn_spec_free(&s);
}

Test(spec_sweeps, range_edges) {
    rn_spec s;
    rn_diags d = {0};
    /* stop not on the grid: not included; ints stay ints on a float key; stop reached within 1e-9 */
    cr_assert_eq(load_text(&s, &d,
                           "data: {source: synthetic:8}\n"
                           "tasks:\n"
                           "  - {name: a, kind: noop, value: {range: [0, 1, 0.3]}}\n"
                           "  - {name: b, kind: noop, value: {range: [1, 3, 1]}}\n"
                           "  - {name: c, kind: noop, value: {range: [0.1, 0.7, 0.2]}}\n"
                           "  - {name: d, kind: noop, value: {range: [5, 5, 1]}}\n"),
                 0);
    cr_expect_eq(count_kind(&s, "noop", "a"), 4);
    cr_expect_not_null(find_task(&s, "noop:a[value=0.9]"));
    cr_expect_not_null(find_task(&s, "noop:b[value=1]"));
    cr_expect_not_null(find_task(&s, "noop:b[value=3]"));
    cr_expect_eq(count_kind(&s, "noop", "c"), 4);
    cr_expect_not_null(find_task(&s, "noop:c[value=0.7]"));
    /* a single value is not swept */
    const rn_task *t = find_task(&s, "noop:d");
    cr_assert_not_null(t);
    cr_expect_str_eq(rn_task_get(t, "value"), "5");
    cr_expect_eq(param(t, "value")->swept, 0);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

Test(spec_sweeps, values_as_written_and_normalised) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d,
                           "data: {source: synthetic:8}\n"
                           "models:\n"
                           "  - {name: a, weight_decay: 1e-4, epochs: +3, augment: True, signature: 42}\n"),
                 0);
    const rn_task *t = &s.tasks[0];
    cr_expect_str_eq(rn_task_get(t, "weight_decay"), "1e-4");
    cr_expect_str_eq(rn_task_get(t, "epochs"), "3");
    cr_expect_str_eq(rn_task_get(t, "augment"), "true");
    cr_expect_str_eq(rn_task_get(t, "signature"), "42");
    cr_expect_str_eq(t->key, "train:a");
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* ------------------------------------------------------- references --- */

Test(spec_refs, prune_over_seeds_and_eval_chain) {
    rn_spec s;
    load_ok(&s, "chain.yaml");
    cr_assert_eq(s.ntasks, 3 + 6 + 6 + 9);
    /* the trained models first */
    for (int i = 0; i < 3; i++) {
        char key[64];
        snprintf(key, sizeof key, "train:base[seed=%d]", i + 1);
        cr_expect_str_eq(s.tasks[i].key, key);
        cr_expect_eq(s.tasks[i].ndeps, 0);
    }
    /* 3 models x 2 rates, each depending on its own model's training */
    cr_expect_eq(count_kind(&s, "prune", "pruned"), 6);
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (strcmp(t->kind, "prune") != 0) continue;
        cr_assert_eq(t->ndeps, 1);
        const rn_task *m = &s.tasks[t->deps[0]];
        cr_expect_str_eq(m->kind, "train");
        cr_expect_str_eq(rn_task_get(t, "model"), m->key);
        cr_expect_str_eq(rn_task_get(t, "model_path"), m->checkpoint);
        cr_expect_eq(param(t, "model")->swept, 1);
        cr_expect_eq(param(t, "model_path")->swept, 0);
        char key[2 * RN_KEY_LEN];
        snprintf(key, sizeof key, "prune:pruned[rate=%s]<%s>", rn_task_get(t, "rate"), m->key);
        cr_expect_str_eq(t->key, key);
        cr_expect_neq(t->checkpoint[0], 0);
    }
    const rn_task *p = find_task(&s, "prune:pruned[rate=0.5]<train:base[seed=2]>");
    cr_assert_not_null(p);
    cr_expect_str_eq(s.tasks[p->deps[0]].key, "train:base[seed=2]");
    /* eval of a pruned model: chains, and comes after the prune although it is first in the file */
    const rn_task *e = find_task(&s, "eval:pruned-acc<prune:pruned[rate=0.5]<train:base[seed=2]>>");
    cr_assert_not_null(e);
    cr_expect_eq(e->ndeps, 1);
    cr_expect_eq(e->deps[0], p->id);
    cr_expect_str_eq(rn_task_get(e, "model_path"), p->checkpoint);
    cr_expect_str_eq(e->checkpoint, "");
    /* a list of references: every instance of each */
    cr_expect_eq(count_kind(&s, "eval", "acc"), 9);
    cr_expect_not_null(find_task(&s, "eval:acc<train:base[seed=3]>"));
    cr_expect_not_null(find_task(&s, "eval:acc<prune:pruned[rate=0.25]<train:base[seed=1]>>"));
    /* topological ids */
    for (int i = 0; i < s.ntasks; i++) {
        cr_expect_eq(s.tasks[i].id, i);
        for (int j = 0; j < s.tasks[i].ndeps; j++) cr_expect_lt(s.tasks[i].deps[j], i);
    }
    rn_spec_free(&s);
}

Test(spec_refs, single_instance_reference_not_swept) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d,
                           "data: {source: synthetic:8}\n"
                           "models: [{name: m}]\n"
                           "tasks: [{name: e, kind: eval, model: m}]\n"),
                 0);
    cr_assert_eq(s.ntasks, 2);
    cr_expect_str_eq(s.tasks[1].key, "eval:e<train:m>");
    cr_expect_eq(param(&s.tasks[1], "model")->swept, 0);
    cr_expect_str_eq(rn_task_get(&s.tasks[1], "model_path"), "results/inline.d/ckpt/train_m.h5");
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* ------------------------------------------------ keys, seeds, files --- */

Test(spec_keys, deterministic) {
    rn_spec a, b;
    load_ok(&a, "chain.yaml");
    load_ok(&b, "chain.yaml");
    cr_assert_eq(a.ntasks, b.ntasks);
    for (int i = 0; i < a.ntasks; i++) { /* every field, by value */
        const rn_task *x = &a.tasks[i], *y = &b.tasks[i];
        cr_expect(x->id == y->id && x->k == y->k && x->seed == y->seed && x->cost == y->cost && x->swept == y->swept &&
                  x->shard == y->shard && x->shards == y->shards && x->ndeps == y->ndeps);
        cr_expect_str_eq(x->key, y->key);
        cr_expect_str_eq(x->name, y->name);
        cr_expect_str_eq(x->checkpoint, y->checkpoint);
        for (int d = 0; d < x->ndeps; d++) cr_expect_eq(x->deps[d], y->deps[d]);
        for (int q = 0; q < x->k->def->nparams; q++) {
            cr_expect_str_eq(x->vals[q].text, y->vals[q].text);
            cr_expect_eq(memcmp(&x->vals[q].u, &y->vals[q].u, sizeof x->vals[q].u) == 0 ||
                             x->k->def->params[q].type == IP_P_STRING || IP_P_IS_REF(x->k->def->params[q].type) ||
                             x->k->def->params[q].type == IP_P_INTLIST,
                         1);
        }
    }
    cr_expect_str_eq(a.text, b.text);
    rn_spec_free(&a);
    rn_spec_free(&b);
}

Test(spec_keys, seeds_from_keys) {
    rn_spec s;
    load_ok(&s, "sweeps.yaml");
    cr_expect_eq(s.seed, 5);
    for (int i = 0; i < s.ntasks; i++) {
        cr_expect_eq(s.tasks[i].seed, ip_stream(s.tasks[i].key, 5));
        for (int j = 0; j < i; j++) cr_expect_neq(s.tasks[i].seed, s.tasks[j].seed);
    }
    /* another spec seed: other task seeds, same keys */
    rn_override ov;
    cr_assert_eq(rn_override_parse(&ov, "seed=6"), 0);
    rn_spec t;
    rn_diags d = {0};
    cr_assert_eq(load_file(&t, &d, "sweeps.yaml", &no_data, &ov, 1), 0);
    cr_assert_eq(t.ntasks, s.ntasks);
    for (int i = 0; i < s.ntasks; i++) {
        cr_expect_str_eq(t.tasks[i].key, s.tasks[i].key);
        cr_expect_neq(t.tasks[i].seed, s.tasks[i].seed);
    }
    rn_spec_free(&t);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

Test(spec_keys, long_keys_hashed_and_checkpoints_unique) {
    char text[4096];
    char big[301];
    memset(big, 'x', 300);
    big[300] = 0;
    snprintf(text, sizeof text,
             "data: {source: synthetic:8}\n"
             "output: out/long.h5\n"
             "models:\n"
             "  - name: a\n"
             "    signature: ['%s1', '%s2', '1 2', '1_2']\n",
             big, big);
    rn_spec s, s2;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d, text), 0);
    cr_assert_eq(s.ntasks, 4);
    cr_expect_str_eq(s.outdir, "out/long.d");
    for (int i = 0; i < 2; i++) {
        const char *k = s.tasks[i].key;
        cr_expect_eq(strlen(k), RN_KEY_LEN - 1);
        cr_expect_eq(strncmp(k, "train:a[signature=xxx", 21), 0);
        cr_expect_eq(k[RN_KEY_LEN - 18], '~');
        cr_expect_eq(strspn(k + RN_KEY_LEN - 17, "0123456789abcdef"), 16);
    }
    cr_expect_str_neq(s.tasks[0].key, s.tasks[1].key);
    cr_expect_str_eq(s.tasks[2].key, "train:a[signature=1 2]");
    cr_expect_str_eq(s.tasks[3].key, "train:a[signature=1_2]");
    /* both sanitise to train_a_signature=1_2_: the second gets a hash */
    cr_expect_str_eq(s.tasks[2].checkpoint, "out/long.d/ckpt/train_a_signature=1_2_.h5");
    cr_expect_str_neq(s.tasks[3].checkpoint, s.tasks[2].checkpoint);
    cr_expect_eq(strncmp(s.tasks[3].checkpoint, "out/long.d/ckpt/train_a_signature=1_2_-", 39), 0);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++) cr_expect_str_neq(s.tasks[i].checkpoint, s.tasks[j].checkpoint);
    cr_assert_eq(load_text(&s2, &d, text), 0);
    for (int i = 0; i < 4; i++) {
        cr_expect_str_eq(s.tasks[i].key, s2.tasks[i].key);
        cr_expect_str_eq(s.tasks[i].checkpoint, s2.tasks[i].checkpoint);
    }
    rn_spec_free(&s);
    rn_spec_free(&s2);
    rn_diags_free(&d);
}

Test(spec_keys, name_output_defaults) {
    rn_spec s;
    load_ok(&s, "chain.yaml");
    cr_expect_str_eq(s.name, "chain");
    cr_expect_str_eq(s.output, "results/chain.h5");
    cr_expect_str_eq(s.outdir, "results/chain.d");
    cr_expect_str_eq(s.file, FIX "chain.yaml");
    cr_assert_not_null(s.text);
    cr_expect(strstr(s.text, "name: pruned-acc") != NULL);
    cr_expect_str_eq(s.tasks[0].checkpoint, "results/chain.d/ckpt/train_base_seed=1_.h5");
    rn_spec_free(&s);
}

/* -------------------------------------------------------- overrides --- */

Test(spec_overrides, applied_before_validation) {
    const char *args[] = {"seed=9",
                          "data.train_limit=100",
                          "models.base.seed=[4, 5]",
                          "tasks[1].rate={range: [0.1, 0.3, 0.1]}",
                          "defaults.models.epochs=7",
                          "models[0].lr=0.5",
                          "name=renamed",
                          "output=elsewhere/x.h5"};
    int n = (int)(sizeof args / sizeof *args);
    rn_override ov[8];
    for (int i = 0; i < n; i++) cr_assert_eq(rn_override_parse(&ov[i], args[i]), 0);
    rn_spec s;
    rn_diags d = {0};
    int rc = load_file(&s, &d, "chain.yaml", &no_data, ov, n);
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_expect_eq(s.seed, 9);
    cr_expect_eq(s.train_limit, 100);
    cr_expect_str_eq(s.name, "renamed");
    cr_expect_str_eq(s.outdir, "elsewhere/x.d");
    cr_expect_eq(count_kind(&s, "train", "base"), 2);
    const rn_task *t = find_task(&s, "train:base[seed=5]");
    cr_assert_not_null(t);
    cr_expect_str_eq(rn_task_get(t, "epochs"), "7");
    cr_expect_str_eq(rn_task_get(t, "lr"), "0.5");
    cr_expect_eq(count_kind(&s, "prune", "pruned"), 6);
    cr_expect_not_null(find_task(&s, "prune:pruned[rate=0.3]<train:base[seed=4]>"));
    /* recorded for the results file, in order */
    cr_expect_str_eq(s.overrides, "seed=9\ndata.train_limit=100\nmodels.base.seed=[4, 5]\n"
                                  "tasks[1].rate={range: [0.1, 0.3, 0.1]}\ndefaults.models.epochs=7\n"
                                  "models[0].lr=0.5\nname=renamed\noutput=elsewhere/x.h5\n");
    rn_spec_free(&s);
    rn_diags_free(&d);
}

Test(spec_overrides, errors) {
    const char *args[] = {"models.nosuch.epochs=3", "models[5].epochs=1", "models[0].epoch=1", "colour=red",
                          "seed.x=1",               "models..a=1",       "models[0].epochs=many"};
    int n = (int)(sizeof args / sizeof *args);
    rn_override ov[8];
    for (int i = 0; i < n; i++) cr_assert_eq(rn_override_parse(&ov[i], args[i]), 0);
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "chain.yaml", &no_data, ov, n), -1);
    expect_at(&d, "--set", "unknown path \"models.nosuch.epochs\": no models entry named \"nosuch\"", 0, 0);
    expect(&d, "--set", "unknown path \"models[5].epochs\": no models entry 5 (there are 1)");
    expect(&d, "--set", "unknown path \"models[0].epoch\": unknown key \"epoch\" (did you mean \"epochs\"?)");
    expect(&d, "--set", "unknown path \"colour\": unknown key \"colour\" (valid keys: name, seed,");
    expect(&d, "--set", "unknown path \"seed.x\": \"seed\" is a value, not a section");
    expect(&d, "--set", "unknown path \"models..a\": expected a path like");
    expect_at(&d, "models[0].epochs", "expected an integer, got \"many\" (from --set)", 0, 0);
    cr_expect_eq(d.n, 7);
    rn_diags_free(&d);

    cr_expect_eq(rn_override_parse(&ov[0], "no-equals-sign"), -1);
    cr_expect_eq(rn_override_parse(&ov[0], "=value"), -1);
}

Test(spec_overrides, fix_a_broken_spec) {
    /* a value set on the command line replaces the file's (wrong) one */
    rn_override ov;
    cr_assert_eq(rn_override_parse(&ov, "data.source=synthetic:64"), 0);
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_file(&s, &d, "missing_data.yaml", NULL, &ov, 1), 0);
    cr_expect_str_eq(s.data_source, "synthetic:64");
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* The spec's protocol reaches every entry whose kind has the key and leaves it (docs/passports.md "Protocols");
 * an entry's own value wins; it cannot be swept at the top; a bad name is an error at the key. */
Test(spec, top_level_protocol_reaches_entries_that_leave_it) {
    rn_spec s;
    rn_diags d = {0};
    int rc = load_text(&s, &d,
                       "protocol: deepipr-code\ndata: {source: synthetic:64}\nmodels:\n  - {name: a}\n"
                       "  - {name: b, protocol: paper}\ntasks:\n  - {name: p, kind: prune, model: a}\n"
                       "  - {name: e, kind: eval, model: a}\n");
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_expect_str_eq(rn_task_get(find_task(&s, "train:a"), "protocol"), "deepipr-code");
    cr_expect_str_eq(rn_task_get(find_task(&s, "train:b"), "protocol"), "paper");
    cr_expect_str_eq(rn_task_get(find_task(&s, "prune:p<train:a>"), "protocol"), "deepipr-code");
    cr_expect_null(rn_task_get(find_task(&s, "eval:e<train:a>"), "protocol"), "eval has no protocol key");
    rn_spec_free(&s);
    rn_diags_free(&d);
    cr_assert_neq(load_text(&s, &d, "protocol: [paper, deepipr-code]\ndata: {source: synthetic:64}\nmodels:\n"
                                    "  - {name: a}\n"), 0);
    expect(&d, "protocol", "cannot be swept");
    rn_diags_free(&d);
    d = (rn_diags){0};
    cr_assert_neq(load_text(&s, &d, "protocol: code\ndata: {source: synthetic:64}\nmodels:\n  - {name: a}\n"), 0);
    expect(&d, "protocol", "deepipr-code");
    rn_diags_free(&d);
}

/* ------------------------------------------------------ YAML details --- */

Test(spec_yaml, anchors_and_aliases) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d,
                           "data: {source: synthetic:8}\n"
                           "models:\n"
                           "  - name: a\n"
                           "    seed: &seeds [1, 2]\n"
                           "  - name: b\n"
                           "    seed: *seeds\n"),
                 0);
    cr_expect_eq(s.ntasks, 4);
    cr_expect_not_null(find_task(&s, "train:b[seed=2]"));
    rn_spec_free(&s);
    cr_assert_eq(load_text(&s, &d, "data: {source: synthetic:8}\nmodels: [{name: a, seed: *nope}]\n"), -1);
    expect_at(&d, "", "unknown or unfinished anchor \"*nope\"", 2, 26);
    rn_diags_free(&d);
}

Test(spec_yaml, defaults_with_zip_and_reference) {
    rn_spec s;
    rn_diags d = {0};
    int rc = load_text(&s, &d,
                       "data: {source: synthetic:8}\n"
                       "defaults:\n"
                       "  models:\n"
                       "    zip: {epochs: [1, 2], batch: [8, 16]}\n"
                       "  eval: {model: m, batch: [32, 64]}\n"
                       "models:\n"
                       "  - name: m\n"
                       "  - name: n\n"
                       "    batch: 4\n"
                       "tasks:\n"
                       "  - {name: e, kind: eval}\n");
    if (rc) dump(&d);
    cr_assert_eq(rc, 0);
    cr_expect_eq(count_kind(&s, "train", "m"), 2);
    cr_expect_not_null(find_task(&s, "train:m[epochs=2,batch=16]"));
    /* n sets batch: the default zip keeps only epochs */
    cr_expect_eq(count_kind(&s, "train", "n"), 2);
    cr_expect_not_null(find_task(&s, "train:n[epochs=2]"));
    cr_expect_str_eq(rn_task_get(find_task(&s, "train:n[epochs=2]"), "batch"), "4");
    /* e: the default model (2 instances) x the default batch sweep */
    cr_expect_eq(count_kind(&s, "eval", "e"), 4);
    cr_expect_not_null(find_task(&s, "eval:e[batch=64]<train:m[epochs=1,batch=8]>"));
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* ------------------------------------------------------------ shards --- */

Test(spec_shards, big_fake1_is_split_and_merged) {
    rn_spec s;
    rn_diags d = {0};
    cr_assert_eq(load_text(&s, &d,
                           "data: {source: synthetic:8}\n"
                           "models: [{name: m, scheme: v1}]\n"
                           "tasks:\n"
                           "  - {name: f, kind: fake1, model: m, passports: 10, shard_size: 4}\n"
                           "  - {name: g, kind: fake1, model: m, passports: 10, shards: 1}\n"
                           "  - {name: h, kind: fake1, model: m, passports: 3, shards: 8}\n"),
                 0);
    /* m; f: 3 shards + merge; g: whole; h: 3 shards (not more than passports) + merge */
    cr_assert_eq(s.ntasks, 1 + 4 + 1 + 4);
    const rn_task *merge = find_task(&s, "fake1:f<train:m>");
    cr_assert_not_null(merge);
    cr_expect_eq(merge->id, 4);
    cr_expect_str_eq(rn_task_get(merge, "shard"), "all");
    cr_expect_str_eq(rn_task_get(merge, "shards"), "3");
    cr_expect_str_eq(merge->checkpoint, "results/inline.d/shards/fake1_f_train_m_.h5");
    cr_assert_eq(merge->ndeps, 4);
    cr_expect_eq(merge->deps[0], 0);
    for (int i = 0; i < 3; i++) {
        const rn_task *t = &s.tasks[1 + i];
        char key[64], sv[16], path[1100];
        snprintf(key, sizeof key, "fake1:f<train:m>#shard=%d/3", i);
        snprintf(sv, sizeof sv, "%d", i);
        cr_expect_str_eq(t->key, key);
        cr_expect_str_eq(rn_task_get(t, "shard"), sv);
        cr_expect_eq(param(t, "shard")->swept, 1);
        cr_expect_str_eq(rn_task_get(t, "shards"), "3");
        cr_expect_eq(t->ndeps, 1);
        cr_expect_eq(merge->deps[1 + i], t->id);
        cr_assert_eq(rn_shard_path(path, sizeof path, merge->checkpoint, i, 3), 0);
        cr_expect_str_eq(t->checkpoint, path);
        cr_expect_neq(t->seed, merge->seed);
        cr_expect_gt(t->cost, merge->cost);
    }
    const rn_task *g = find_task(&s, "fake1:g<train:m>");
    cr_assert_not_null(g);
    cr_expect_null(rn_task_get(g, "shard"));
    cr_expect_str_eq(g->checkpoint, "");
    const rn_task *h = find_task(&s, "fake1:h<train:m>");
    cr_assert_not_null(h);
    cr_expect_str_eq(rn_task_get(h, "shards"), "3");
    for (int i = 0; i < s.ntasks; i++)
        for (int j = 0; j < s.tasks[i].ndeps; j++) cr_expect_lt(s.tasks[i].deps[j], i);
    rn_spec_free(&s);
    rn_diags_free(&d);
}
