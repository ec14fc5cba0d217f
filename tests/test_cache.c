/* The worker cache of datasets and checkpoints (core/io/cache.h): what a task
 * gets through it is indistinguishable from a fresh load. Tasks run with and
 * without it give bit-identical metrics; a file rewritten under the same path
 * is read again; copies are independent of the cache and of each other; the
 * budget holds; a remembered accuracy is only given to a model and data of
 * the same contents; the environment switches. The data are IDX files in a
 * scratch directory, so that the files' identities are what the cache checks. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/io/cache.h"
#include "../core/io/ckpt.h"
#include "../core/model/evalrec.h"
#include "../core/model/prune.h"
#include "../core/tasks/tasks.h"
#include "../runner/run/cache_setup.h"
#include "testutil.h"

static char dir[64], src[128];
static char own[160], pass[160], other[160], fp[160];

#define SIDE 16
#define NTRAIN 512
#define NTEST 200
#define LIMIT 160

static void put_be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* An IDX split (raw, not gzip) from a synthetic set; bump shifts every pixel
 * (mod 256) to make a file of the same size and other contents. Written to a
 * temporary name and renamed, as ipsweep writes its files. */
static void write_idx(const char *name_images, const char *name_labels, ip_split split, size_t n, int bump) {
    ip_dataset d;
    ip_err e = {{0}};
    cr_assert_eq(ip_data_synthetic(&d, n, 1, SIDE, SIDE, 10, 1, split, &e), 0, "%s", e.msg);
    char tmp[200], path[200];
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    FILE *f = fopen(tmp, "wb");
    cr_assert_not_null(f);
    put_be32(f, 0x803), put_be32(f, (uint32_t)n), put_be32(f, SIDE), put_be32(f, SIDE);
    for (size_t i = 0; i < n * SIDE * SIDE; i++) fputc(((int)(d.x[i] * 255.f + 0.5f) + bump) & 255, f);
    cr_assert_eq(fclose(f), 0);
    snprintf(path, sizeof path, "%s/%s", dir, name_images);
    cr_assert_eq(rename(tmp, path), 0);
    f = fopen(tmp, "wb");
    cr_assert_not_null(f);
    put_be32(f, 0x801), put_be32(f, (uint32_t)n);
    for (size_t i = 0; i < n; i++) fputc(d.y[i], f);
    cr_assert_eq(fclose(f), 0);
    snprintf(path, sizeof path, "%s/%s", dir, name_labels);
    cr_assert_eq(rename(tmp, path), 0);
    ip_data_free(&d);
}

static void write_test_split(int bump) {
    write_idx("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", IP_SPLIT_TEST, NTEST, bump);
}

static void train(const char *path, ip_scheme scheme, ip_norm_kind norm, uint64_t seed) {
    ip_train_task t = tu_tiny_train(src, scheme, norm, 2, path);
    t.seed = seed;
    t.test_limit = LIMIT;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    ip_metrics_free(&mt);
}

static void setup(void) {
    cr_assert_not_null(tu_mkdtemp(dir, sizeof dir, "cache"));
    snprintf(src, sizeof src, "mnist:%s", dir);
    write_idx("train-images-idx3-ubyte", "train-labels-idx1-ubyte", IP_SPLIT_TRAIN, NTRAIN, 0);
    write_test_split(0);
    ip_cache_configure(0);
    snprintf(own, sizeof own, "%s", tu_path(dir, "own.h5"));
    snprintf(pass, sizeof pass, "%s", tu_path(dir, "pass.h5"));
    snprintf(other, sizeof other, "%s", tu_path(dir, "other.h5"));
    snprintf(fp, sizeof fp, "%s", tu_path(dir, "fp.h5"));
    train(own, IP_SCHEME_BASELINE, IP_NORM_BN, 1);
    train(pass, IP_SCHEME_V2, IP_NORM_BN, 2);
    train(other, IP_SCHEME_BASELINE, IP_NORM_BN, 3);
    ip_fingerprint_task t;
    ip_fingerprint_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", own);
    snprintf(t.data, sizeof t.data, "%s", src);
    snprintf(t.out, sizeof t.out, "%s", fp);
    t.test_limit = LIMIT;
    t.train_limit = 256;
    t.fp.points = 20;
    t.fp.margin = 0.5f;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_fingerprint(&t, &mt, &e), 0, "%s", e.msg);
    ip_metrics_free(&mt);
}

static void teardown(void) {
    ip_cache_configure(0);
    tu_rmtree(dir);
}

TestSuite(cache, .init = setup, .fini = teardown);

/* ---------------- the same metrics with and without the cache ---------------- */

#define NTASKS 14

static void eval_task(ip_metrics *out, const char *model, int branch) {
    ip_eval_task t;
    ip_eval_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", model);
    snprintf(t.data, sizeof t.data, "%s", src);
    t.test_limit = LIMIT;
    t.branch = branch;
    ip_err e = {{0}};
    cr_assert_eq(ip_task_eval(&t, out, &e), 0, "%s", e.msg);
}

static void prune_task(ip_metrics *out, const char *model, double rate, int protocol, const char *save) {
    ip_prune_task t;
    ip_task_defaults(&ip_prune_def, &t);
    snprintf(t.model_path, sizeof t.model_path, "%s", model);
    snprintf(t.data, sizeof t.data, "%s", src);
    snprintf(t.out, sizeof t.out, "%s", save ? save : "");
    t.test_limit = LIMIT;
    t.rate = rate;
    t.protocol = protocol;
    ip_err e = {{0}};
    cr_assert_eq(ip_task_prune(&t, out, &e), 0, "%s", e.msg);
}

static void match_task(ip_metrics *out, const char *suspect, int branch) {
    ip_match_task t = {.test_limit = LIMIT, .branch = branch};
    snprintf(t.fingerprint_path, sizeof t.fingerprint_path, "%s", fp);
    snprintf(t.suspect_path, sizeof t.suspect_path, "%s", suspect);
    snprintf(t.data, sizeof t.data, "%s", src);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_match(&t, out, &e), 0, "%s", e.msg);
}

/* A worker's sequence: the same models again and again, a pruned checkpoint
 * written, read, then rewritten under the same path by another prune and read
 * again. */
static void run_tasks(ip_metrics *m) {
    const char *pruned = tu_path(dir, "pruned.h5");
    for (int i = 0; i < NTASKS; i++) ip_metrics_init(&m[i]);
    eval_task(&m[0], own, -1);
    eval_task(&m[1], pass, IP_BRANCH_PUBLIC);
    match_task(&m[2], own, -1);
    match_task(&m[3], other, -1);
    prune_task(&m[4], own, 0.5, IP_PROTOCOL_PAPER, pruned);
    match_task(&m[5], pruned, -1);
    prune_task(&m[6], pass, 0.3, IP_PROTOCOL_DEEPIPR_CODE, NULL);
    match_task(&m[7], own, -1);
    match_task(&m[8], pass, IP_BRANCH_PRIVATE);
    match_task(&m[9], pass, IP_BRANCH_PRIVATE);
    prune_task(&m[10], own, 0.9, IP_PROTOCOL_PAPER, pruned); /* same path, other weights */
    match_task(&m[11], pruned, -1);
    eval_task(&m[12], pruned, -1);
    eval_task(&m[13], own, -1);
}

static void assert_same(const ip_metrics *a, const ip_metrics *b, int task) {
    cr_assert_eq(a->nscalars, b->nscalars, "task %d", task);
    for (int i = 0; i < a->nscalars; i++) {
        cr_assert_str_eq(a->names[i], b->names[i], "task %d", task);
        cr_assert(memcmp(&a->values[i], &b->values[i], sizeof(double)) == 0, "task %d %s: %.17g vs %.17g", task,
                  a->names[i], a->values[i], b->values[i]);
    }
    cr_assert_eq(a->narrays, b->narrays, "task %d", task);
    for (int i = 0; i < a->narrays; i++) {
        cr_assert_eq(a->arrays[i].n, b->arrays[i].n);
        cr_assert(memcmp(a->arrays[i].v, b->arrays[i].v, a->arrays[i].n * sizeof(double)) == 0, "task %d %s", task,
                  a->arrays[i].name);
    }
}

/* plain: nothing reused, neither the cache nor the evaluation records
 * (core/model/evalrec.h) that the checkpoints carry; cold and warm use both. */
Test(cache, tasks_give_the_same_metrics_with_and_without_it) {
    ip_metrics plain[NTASKS], cold[NTASKS], warm[NTASKS];
    ip_cache_configure(0);
    ip_eval_records_use(0);
    run_tasks(plain);
    ip_eval_records_use(1);
    ip_cache_configure((size_t)256 << 20);
    ip_cache_clear();
    ip_cache_stats s0, s1, s2;
    ip_cache_get_stats(&s0);
    const uint64_t r0 = ip_eval_record_hits();
    run_tasks(cold);
    cr_expect_gt(ip_eval_record_hits(), r0, "evaluations were answered by the checkpoints' records");
    ip_cache_get_stats(&s1);
    run_tasks(warm); /* everything in memory from the start */
    ip_cache_get_stats(&s2);
    ip_cache_configure(0);
    for (int i = 0; i < NTASKS; i++) assert_same(&plain[i], &cold[i], i), assert_same(&plain[i], &warm[i], i);
    /* the rewritten pruned checkpoint was read again: its two matches differ */
    cr_assert_neq(ip_metrics_get(&plain[5], "suspect_acc"), ip_metrics_get(&plain[11], "suspect_acc"));
    cr_assert_gt(s1.hits, s0.hits, "the cold run reused its inputs");
    cr_assert_gt(s1.memo_hits, s0.memo_hits, "a suspect's accuracy was remembered");
    cr_assert_gt(s1.stale, s0.stale, "the rewritten checkpoint was dropped");
    cr_assert_gt(s2.hits - s1.hits, s1.hits - s0.hits, "the warm run read less");
    for (int i = 0; i < NTASKS; i++) ip_metrics_free(&plain[i]), ip_metrics_free(&cold[i]), ip_metrics_free(&warm[i]);
}

/* ---------------- files rewritten under the same path ---------------- */

static void assert_models_equal(const ip_model *a, const ip_model *b) {
    cr_assert_eq(a->nparams, b->nparams);
    cr_assert_eq(a->nbufs, b->nbufs);
    cr_assert(memcmp(a->params, b->params, a->nparams * sizeof(float)) == 0);
    cr_assert(memcmp(a->bufs, b->bufs, a->nbufs * sizeof(float)) == 0);
    cr_assert(memcmp(&a->cfg, &b->cfg, sizeof a->cfg) == 0);
    cr_assert_eq(a->npassports, b->npassports);
    for (int i = 0; i < a->npassports; i++) {
        cr_assert(memcmp(a->passports[i].bits, b->passports[i].bits, (size_t)a->passports[i].cout) == 0);
        cr_assert_str_eq(a->passports[i].signature, b->passports[i].signature);
    }
    cr_assert_eq(a->trigger.n, b->trigger.n);
}

/* Opens path through the cache and directly, and checks they agree. */
static void open_both_and_compare(const char *path) {
    ip_model c = {0}, f = {0};
    ip_err e = {{0}};
    cr_assert_eq(ip_cache_open_model(&c, path, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_ckpt_open_model(&f, path, &e), 0, "%s", e.msg);
    assert_models_equal(&c, &f);
    ip_model_free(&c), ip_model_free(&f);
}

static void copy_file(const char *from, const char *to, int in_place) {
    FILE *in = fopen(from, "rb");
    cr_assert_not_null(in);
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *out = fopen(in_place ? to : tmp, in_place ? "r+b" : "wb"); /* r+b: the same inode */
    cr_assert_not_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) cr_assert_eq(fwrite(buf, 1, n, out), n);
    if (in_place) cr_assert_eq(ftruncate(fileno(out), ftell(out)), 0);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    if (!in_place) cr_assert_eq(rename(tmp, to), 0);
}

Test(cache, a_rewritten_checkpoint_is_read_again) {
    ip_cache_configure((size_t)64 << 20);
    const char *x = tu_path(dir, "x.h5");
    copy_file(own, x, 0);
    open_both_and_compare(x);
    open_both_and_compare(x); /* from memory */
    copy_file(other, x, 0);   /* replaced by rename: another inode */
    open_both_and_compare(x);
    /* rewritten in place (the same inode), after the file system's timestamp granularity */
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    copy_file(pass, x, 1);
    open_both_and_compare(x);
    ip_cache_stats s;
    ip_cache_get_stats(&s);
    cr_assert_geq(s.stale, 2);
    ip_cache_configure(0);
}

Test(cache, a_rewritten_data_file_is_read_again) {
    ip_cache_configure((size_t)64 << 20);
    ip_dataset a = {0}, b = {0}, c = {0};
    ip_err e = {{0}};
    cr_assert_eq(ip_cache_data_load(&a, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    write_test_split(7); /* the same size, other pixels */
    cr_assert_eq(ip_cache_data_load(&b, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_data_load(&c, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    size_t bytes = c.n * SIDE * SIDE * sizeof(float);
    cr_assert_eq(b.n, c.n);
    cr_assert(memcmp(b.x, c.x, bytes) == 0, "the new file's pixels");
    cr_assert(memcmp(a.x, b.x, bytes) != 0);
    ip_data_free(&a), ip_data_free(&b), ip_data_free(&c);
    write_test_split(0);
    ip_cache_configure(0);
}

/* ---------------- copies ---------------- */

Test(cache, what_a_task_changes_stays_in_its_copy) {
    ip_cache_configure((size_t)64 << 20);
    ip_err e = {{0}};
    ip_model m = {0};
    ip_dataset d = {0};
    cr_assert_eq(ip_task_open(&m, &d, pass, src, LIMIT, &e), 0, "%s", e.msg);
    size_t pruned;
    cr_assert_eq(ip_prune_global(&m, 0.8, &pruned, &e), 0, "%s", e.msg);
    for (size_t i = 0; i < m.nbufs; i++) m.bufs[i] += 1.f;
    m.passports[0].bits[0] = (int8_t)-m.passports[0].bits[0];
    for (size_t i = 0; i < d.n * SIDE * SIDE; i++) d.x[i] = 0.f;
    ip_data_normalise(&d, (const float[]){0.5f, 0, 0, 0}, (const float[]){2.f, 1, 1, 1});
    ip_model_free(&m), ip_data_free(&d);
    /* the next task gets what the files hold */
    ip_model m2 = {0}, f = {0};
    ip_dataset d2 = {0}, g = {0};
    cr_assert_eq(ip_task_open(&m2, &d2, pass, src, LIMIT, &e), 0, "%s", e.msg);
    ip_cache_configure(0);
    cr_assert_eq(ip_task_open(&f, &g, pass, src, LIMIT, &e), 0, "%s", e.msg);
    assert_models_equal(&m2, &f);
    cr_assert_eq(d2.n, g.n);
    cr_assert(memcmp(d2.x, g.x, g.n * SIDE * SIDE * sizeof(float)) == 0);
    cr_assert(memcmp(d2.y, g.y, g.n * sizeof(int32_t)) == 0);
    cr_assert(memcmp(d2.mean, g.mean, sizeof g.mean) == 0 && memcmp(d2.std, g.std, sizeof g.std) == 0);
    ip_model_free(&m2), ip_model_free(&f), ip_data_free(&d2), ip_data_free(&g);
}

Test(cache, a_remembered_accuracy_needs_the_same_contents) {
    ip_cache_configure((size_t)64 << 20);
    ip_cache_clear();
    ip_err e = {{0}};
    ip_model m = {0};
    ip_dataset d = {0};
    cr_assert_eq(ip_task_open(&m, &d, own, src, LIMIT, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(&m, 64, &e), 0, "%s", e.msg);
    double a1, a2, p1, p2;
    ip_cache_stats s0, s1;
    cr_assert_eq(ip_cache_evaluate(&m, &d, 64, &a1, &e), 0, "%s", e.msg);
    ip_cache_get_stats(&s0);
    cr_assert_eq(ip_cache_evaluate(&m, &d, 64, &a2, &e), 0, "%s", e.msg);
    ip_cache_get_stats(&s1);
    cr_assert_eq(s1.memo_hits, s0.memo_hits + 1);
    cr_assert(memcmp(&a1, &a2, sizeof a1) == 0);
    /* another batch is another computation */
    cr_assert_eq(ip_cache_evaluate(&m, &d, 32, &a2, &e), 0, "%s", e.msg);
    ip_cache_get_stats(&s0);
    cr_assert_eq(s0.memo_hits, s1.memo_hits);
    /* a small model's batch of 256 runs passes of IP_INFER_BATCH = 64 (core/model/train.h): the same computation */
    cr_assert_eq(ip_cache_evaluate(&m, &d, 256, &a2, &e), 0, "%s", e.msg);
    ip_cache_get_stats(&s1);
    cr_assert_eq(s1.memo_hits, s0.memo_hits + 1);
    cr_assert(memcmp(&a1, &a2, sizeof a1) == 0);
    s0 = s1;
    /* the model changed: computed again, equal to a plain evaluation */
    size_t pruned;
    cr_assert_eq(ip_prune_global(&m, 0.9, &pruned, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_cache_evaluate(&m, &d, 64, &p1, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_evaluate(&m, &d, 64, &p2, &e), 0, "%s", e.msg);
    ip_cache_get_stats(&s1);
    cr_assert_eq(s1.memo_hits, s0.memo_hits);
    cr_assert(memcmp(&p1, &p2, sizeof p1) == 0);
    cr_assert_neq(p1, a1);
    /* the data changed: computed again */
    d.y[0] = (d.y[0] + 1) % 10;
    ip_model_free(&m);
    cr_assert_eq(ip_cache_open_model(&m, own, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(&m, 64, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_cache_evaluate(&m, &d, 64, &p1, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_evaluate(&m, &d, 64, &p2, &e), 0, "%s", e.msg);
    ip_cache_get_stats(&s0);
    cr_assert_eq(s0.memo_hits, s1.memo_hits);
    cr_assert(memcmp(&p1, &p2, sizeof p1) == 0);
    ip_model_free(&m), ip_data_free(&d);
    ip_cache_configure(0);
}

/* ---------------- budget, switches ---------------- */

Test(cache, the_budget_holds) {
    const size_t one = (size_t)100 * (SIDE * SIDE * sizeof(float) + sizeof(int32_t)); /* 100 samples */
    ip_cache_configure(one + one / 2);
    ip_cache_clear();
    ip_err e = {{0}};
    ip_dataset d = {0};
    ip_cache_stats s;
    cr_assert_eq(ip_cache_data_load(&d, src, IP_SPLIT_TEST, 100, &e), 0, "%s", e.msg);
    ip_data_free(&d);
    cr_assert_eq(ip_cache_data_load(&d, src, IP_SPLIT_TEST, 90, &e), 0, "%s", e.msg);
    ip_data_free(&d);
    ip_cache_get_stats(&s);
    cr_assert_eq(s.entries, 1, "the least recently used set made room");
    cr_assert_geq(s.evictions, 1);
    cr_assert_leq(s.bytes, one + one / 2);
    /* larger than the budget: loaded, not kept */
    cr_assert_eq(ip_cache_data_load(&d, src, IP_SPLIT_TEST, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(d.n, NTEST);
    ip_data_free(&d);
    ip_cache_get_stats(&s);
    cr_assert_leq(s.bytes, one + one / 2);
    /* off: nothing kept */
    ip_cache_configure(0);
    ip_cache_get_stats(&s);
    cr_assert_eq(s.entries, 0);
    cr_assert_eq(s.bytes, 0);
}

Test(cache, the_environment_switches_it) {
    size_t b;
    ip_err e = {{0}};
    unsetenv("IPSWEEP_NO_CACHE"), unsetenv("IPSWEEP_CACHE_MB");
    cr_assert_eq(rn_cache_budget_from_env(&b, &e), 0);
    cr_assert_eq(b, (size_t)IP_CACHE_DEFAULT_MB << 20);
    setenv("IPSWEEP_CACHE_MB", "64", 1);
    cr_assert_eq(rn_cache_budget_from_env(&b, &e), 0);
    cr_assert_eq(b, (size_t)64 << 20);
    setenv("IPSWEEP_NO_CACHE", "1", 1);
    cr_assert_eq(rn_cache_budget_from_env(&b, &e), 0);
    cr_assert_eq(b, 0);
    unsetenv("IPSWEEP_NO_CACHE");
    setenv("IPSWEEP_CACHE_MB", "lots", 1);
    cr_assert_neq(rn_cache_budget_from_env(&b, &e), 0);
    cr_assert(strstr(e.msg, "IPSWEEP_CACHE_MB") != NULL, "%s", e.msg);
    unsetenv("IPSWEEP_CACHE_MB");
    /* the one switch turns the evaluation records off with the cache */
    setenv("IPSWEEP_NO_CACHE", "1", 1);
    cr_assert_eq(rn_cache_setup(&e), 0, "%s", e.msg);
    cr_expect_eq(ip_eval_records_used(), 0);
    rn_cache_teardown();
    cr_expect_eq(ip_eval_records_used(), 1);
    unsetenv("IPSWEEP_NO_CACHE");
}
