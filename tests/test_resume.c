/* Checkpoints inside long tasks (core/io/resume.h, docs/checkpoint.md "Task
 * state files"): a task of every kind that checkpoints (train, finetune,
 * fake2, fake3, erb, distill, extract, advtrain, fingerprint, fake1 and its shards) stopped at any of its
 * resume points and run again ends bit for bit where the uninterrupted task
 * does (metrics, arrays and the output's tensors; timings aside), once or
 * several times in a row; the state file is
 * deleted when the task finishes; a state of other parameters is ignored; a
 * damaged one is refused with a message naming it.
 *
 * A stop is requested at the k-th resume point through the stop flag's poll
 * hook (util/stop.h), as the runner's signal handler or the coordinator's
 * stop message would. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/io/resume.h"
#include "../core/io/state.h"
#include "../core/tasks/tasks.h"
#include "../core/util/stop.h"
#include "../runner/kinds/kinds.h"
#include "testutil.h"

#define SRC "synthetic:256x1x16x16"

static char scratch[128];
static void suite_init(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "resume"), "mkdtemp failed"); }
static void suite_fini(void) {
    ip_stop_set_poll(NULL, NULL, 0);
    ip_stop_clear();
    tu_rmtree(scratch);
}
TestSuite(resume, .init = suite_init, .fini = suite_fini);

/* ---------------- stopping at the k-th point ---------------- */

static long points_left; /* the poll says stop when it reaches 0 */
static int stop_at_poll(void *user) {
    (void)user;
    return --points_left == 0;
}
static void stop_at(long k) {
    ip_stop_clear();
    points_left = k;
    ip_stop_set_poll(k > 0 ? stop_at_poll : NULL, NULL, 0);
}

/* Counts the resume points of a run without stopping it. */
static long points_seen;
static int count_poll(void *user) {
    (void)user;
    points_seen++;
    return 0;
}
static void count_points(void) {
    ip_stop_clear();
    points_seen = 0;
    ip_stop_set_poll(count_poll, NULL, 0);
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---------------- comparing results ---------------- */

static int listed(const char *const *names, const char *name) {
    for (; names && *names; names++)
        if (strcmp(*names, name) == 0) return 1;
    return 0;
}

/* Every scalar and array bit for bit, except the timings named in ignore
 * (NULL-terminated, or NULL), which only have to exist in both. */
static void same_metrics(const ip_metrics *a, const ip_metrics *b, const char *const *ignore, const char *what) {
    cr_assert_eq(a->nscalars, b->nscalars, "%s: %d vs %d scalars", what, a->nscalars, b->nscalars);
    for (int i = 0; i < a->nscalars; i++) {
        double v = ip_metrics_get(b, a->names[i]);
        if (listed(ignore, a->names[i])) {
            cr_assert(!isnan(v), "%s: %s missing", what, a->names[i]);
            continue;
        }
        cr_assert(memcmp(&v, &a->values[i], sizeof v) == 0, "%s: %s is %.17g, uninterrupted %.17g", what, a->names[i],
                  v, a->values[i]);
    }
    cr_assert_eq(a->narrays, b->narrays, "%s: %d vs %d arrays", what, a->narrays, b->narrays);
    for (int i = 0; i < a->narrays; i++) {
        const ip_metric_array *x = &a->arrays[i], *y = NULL;
        for (int j = 0; j < b->narrays; j++)
            if (strcmp(b->arrays[j].name, x->name) == 0) y = &b->arrays[j];
        cr_assert_not_null(y, "%s: array %s missing", what, x->name);
        cr_assert_eq(x->n, y->n, "%s: array %s has %zu values, uninterrupted %zu", what, x->name, y->n, x->n);
        cr_assert(memcmp(x->v, y->v, x->n * sizeof *x->v) == 0, "%s: array %s differs", what, x->name);
    }
}

/* The tensors of two model checkpoints, bit for bit. */
static void same_model(const char *a, const char *b, const char *what) {
    ip_model ma = {0}, mb = {0};
    ip_err e = {{0}};
    cr_assert_eq(ip_ckpt_open_model(&ma, a, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_ckpt_open_model(&mb, b, &e), 0, "%s", e.msg);
    cr_assert_eq(ma.nparams, mb.nparams);
    cr_assert(memcmp(ma.params, mb.params, ma.nparams * sizeof(float)) == 0, "%s: weights differ", what);
    cr_assert(memcmp(ma.bufs, mb.bufs, ma.nbufs * sizeof(float)) == 0, "%s: buffers differ", what);
    ip_model_free(&ma);
    ip_model_free(&mb);
}

/* ---------------- the harness ---------------- */

/* One kind under test: its definition, a filled task (copied before each
 * run), where its output goes (NULL: none) and how to compare outputs. */
typedef struct resume_case {
    const ip_task_def *def;
    const void *task;
    size_t out_at;                 /* IP_AT of the output path field, 0 = none */
    void (*same_output)(const char *a, const char *b, const char *what);
    const char *const *timings;    /* metrics that measure time, not compared (NULL-terminated; NULL: none) */
} resume_case;

static void *copy_task(const resume_case *c, const char *out, const char *state, double every) {
    void *t = malloc(c->def->size);
    cr_assert_not_null(t);
    memcpy(t, c->task, c->def->size);
    if (c->out_at) snprintf((char *)t + c->out_at - 1, 1024, "%s", out);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_place_resume(c->def, t, state, every, &e), 0, "%s", e.msg);
    return t;
}

/* Runs the task; interrupted = 1 expects a stop (the state file then exists). */
static void run_once(const resume_case *c, void *t, ip_metrics *mt, int interrupted, const char *state) {
    ip_err e = {{0}};
    ip_metrics_free(mt);
    ip_metrics_init(mt);
    int rc = c->def->run(t, mt, &e);
    if (interrupted) {
        cr_assert_neq(rc, 0, "%s: the task finished before the requested stop", c->def->name);
        cr_assert(ip_err_is_interrupted(&e), "%s: not an interruption: %s", c->def->name, e.msg);
        cr_assert(strstr(e.msg, state) != NULL, "the message names the state file: %s", e.msg);
        cr_assert(file_exists(state), "%s: no state file after the stop", c->def->name);
    } else {
        cr_assert_eq(rc, 0, "%s: %s", c->def->name, e.msg);
        cr_assert(!file_exists(state), "%s: the state file is left after the task finished", c->def->name);
    }
}

/* Reference run, then for each stop schedule: stopped at stops[0] (counted
 * in resume points from the start), resumed and stopped again at stops[1]
 * (counted from the resume), ... then resumed to the end; each ends where
 * the reference does. every: seconds between periodic saves (0: only on a
 * stop; tiny: a save at every point). */
static void check_resume(const resume_case *c, const long *const *schedules, int nsched, double every) {
    char out_ref[256], state[256];
    snprintf(out_ref, sizeof out_ref, "%s/%s-ref.h5", scratch, c->def->name);
    snprintf(state, sizeof state, "%s/%s.state", scratch, c->def->name);
    ip_metrics ref, got;
    ip_metrics_init(&ref);
    ip_metrics_init(&got);
    count_points();
    void *t = copy_task(c, out_ref, "", every);
    run_once(c, t, &ref, 0, state);
    free(t);
    long total = points_seen;
    cr_log_info("%s: %ld resume points uninterrupted", c->def->name, total);
    for (int s = 0; s < nsched; s++) {
        char out[256], what[96];
        snprintf(out, sizeof out, "%s/%s-%d.h5", scratch, c->def->name, s);
        int len = 0;
        long reached = 1; /* a run stopped at its point k did k - 1 points' work; the next starts at that point */
        for (const long *k = schedules[s]; *k; k++) len++, reached += *k - 1;
        cr_assert_leq(reached, total, "%s: schedule %d stops at point %ld of %ld", c->def->name, s, reached, total);
        snprintf(what, sizeof what, "%s, schedule %d (%d stops, first at point %ld)", c->def->name, s, len,
                 schedules[s][0]);
        t = copy_task(c, out, state, every);
        for (const long *k = schedules[s]; *k; k++) {
            stop_at(*k);
            run_once(c, t, &got, 1, state);
        }
        stop_at(0);
        run_once(c, t, &got, 0, state);
        same_metrics(&ref, &got, c->timings, what);
        if (c->same_output) c->same_output(out_ref, out, what);
        free(t);
    }
    ip_metrics_free(&ref);
    ip_metrics_free(&got);
}

/* ---------------- train ---------------- */

static ip_train_task train_case(ip_scheme scheme, int augment, int adam) {
    ip_train_task t = tu_tiny_train(SRC, scheme, IP_NORM_BN, 2, NULL);
    t.train_limit = 160; /* 5 steps of 32 per epoch */
    t.test_limit = 64;
    t.train.augment = augment;
    if (adam) ip_optim_defaults(&t.train.opt, IP_OPT_ADAM);
    return t;
}

static const long once_early[] = {1, 0}, once_mid[] = {4, 0}, epoch_edge[] = {6, 0}, late[] = {10, 0},
                  thrice[] = {2, 3, 4, 0};
static const long *const train_schedules[] = {once_early, once_mid, epoch_edge, late, thrice};

Test(resume, train_baseline_augmented_equals_uninterrupted) {
    ip_train_task t = train_case(IP_SCHEME_BASELINE, 1, 0);
    resume_case c = {&ip_train_def, &t, IP_AT(ip_train_task, out), same_model, NULL};
    check_resume(&c, train_schedules, 5, 0);
}

Test(resume, train_v3_adam_with_periodic_saves_equals_uninterrupted) {
    /* v3: triggers in every batch, two branches, a sign loss; Adam's two moments */
    ip_train_task t = train_case(IP_SCHEME_V3, 0, 1);
    t.triggers = 20;
    resume_case c = {&ip_train_def, &t, IP_AT(ip_train_task, out), same_model, NULL};
    check_resume(&c, train_schedules + 3, 2, 1e-9);
}

/* ---------------- the attacks: finetune, fake2, fake3 ---------------- */

/* A tiny owner (small-p-narrow, 6 epochs on the 256 samples: an attack then
 * moves its metrics, which an attack on a model at chance would not) saved to
 * <scratch>/<tag>.h5. The attacks train on the first 160 samples: 5 steps
 * per epoch at batch 32. */
static const char *owner(const char *tag, ip_scheme scheme, ip_norm_kind norm) {
    static char path[4][256];
    static int k;
    char *p = path[k++ & 3];
    snprintf(p, 256, "%s/%s.h5", scratch, tag);
    ip_train_task t = tu_tiny_train(SRC, scheme, norm, 6, p);
    t.test_limit = 64;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    stop_at(0);
    cr_assert_eq(ip_task_train(&t, &mt, &e), 0, "%s", e.msg);
    ip_metrics_free(&mt);
    return p;
}

static const long at_first[] = {1, 0}, step_two[] = {2, 0}, next_epoch[] = {6, 0}, last_step[] = {10, 0},
                  three_in_a_row[] = {2, 3, 4, 0}, twice_at_once[] = {1, 1, 3, 0};
static const long *const attack_schedules[] = {at_first, step_two, next_epoch, last_step, three_in_a_row,
                                               twice_at_once};
#define NATTACK (int)(sizeof attack_schedules / sizeof *attack_schedules)

Test(resume, finetune_rtal_bn_equals_uninterrupted) {
    /* v1 converted to an ordinary network, the classifier re-initialised, every layer trained in training
     * mode (batch-norm running statistics change), SGD momentum; the fine-tuned checkpoint compared too */
    ip_finetune_task t;
    ip_finetune_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("ft_owner", IP_SCHEME_V1, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.mode = IP_FT_RTAL;
    t.epochs = 2, t.batch = 32, t.seed = 3;
    resume_case c = {&ip_finetune_def, &t, IP_AT(ip_finetune_task, out), same_model, NULL};
    check_resume(&c, attack_schedules, NATTACK, 0);
}

Test(resume, fake2_passport_equals_uninterrupted) {
    /* the learned passport keys (a vector beside the model), random initial keys; saves at every point */
    ip_fake2_task t;
    ip_fake2_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("f2_owner", IP_SCHEME_V2, IP_NORM_GN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.target = IP_FAKE2_PASSPORT;
    t.epochs = 2, t.batch = 32, t.seed = 4;
    resume_case c = {&ip_fake2_def, &t, 0, NULL, NULL};
    check_resume(&c, attack_schedules, NATTACK, 1e-9);
}

Test(resume, fake3_equals_uninterrupted) {
    /* keys near the true ones (noise), the true keys as the push-away reference, a flipped target
     * signature, the sign loss, gradient clipping */
    ip_fake3_task t;
    ip_fake3_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("f3_owner", IP_SCHEME_V1, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.flip_fraction = 0.25;
    t.epochs = 2, t.batch = 32, t.seed = 5;
    resume_case c = {&ip_fake3_def, &t, 0, NULL, NULL};
    check_resume(&c, attack_schedules, NATTACK, 0);
}

Test(resume, erb_cerb_equals_uninterrupted) {
    /* the attack's own vector (scales, biases, CERB weights) beside the model, a v2 owner whose private
     * batch-norm statistics stand in for the public ones, a flipped target with the sign loss, Adam */
    ip_erb_task t;
    ip_erb_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("erb_owner", IP_SCHEME_V2, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.fraction = 1;
    t.block = IP_ERB_CERB;
    t.target = IP_ERB_TARGET_FLIP;
    t.opt.kind = IP_OPT_ADAM;
    t.epochs = 2, t.batch = 32, t.seed = 6;
    resume_case c = {&ip_erb_def, &t, 0, NULL, NULL};
    check_resume(&c, attack_schedules, NATTACK, 0);
}

Test(resume, distill_equals_uninterrupted) {
    /* a fresh student (batch norm in training mode) of another architecture than its teacher, the soft
     * loss mixed with the hard labels, Adam's moments; the student's checkpoint compared too; saves at
     * every point */
    ip_distill_task t;
    ip_distill_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("kd_owner", IP_SCHEME_V2, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.arch, sizeof t.arch, "small-p");
    t.train_limit = 160, t.test_limit = 64;
    t.alpha = 0.3;
    ip_optim_defaults(&t.opt, IP_OPT_ADAM);
    t.epochs = 2, t.batch = 32, t.seed = 6;
    resume_case c = {&ip_distill_def, &t, IP_AT(ip_distill_task, out), same_model, NULL};
    check_resume(&c, attack_schedules, NATTACK, 1e-9);
}

Test(resume, extract_equals_uninterrupted) {
    /* the labelled queries rebuilt on resume (drawn from the pool by the seed, answered by a v1 owner), a
     * fresh student of another architecture, Adam's moments, a last minibatch shorter than the batch; the
     * student's checkpoint compared too; saves at every point */
    ip_extract_task t;
    ip_extract_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("ex_owner", IP_SCHEME_V1, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    snprintf(t.arch, sizeof t.arch, "small-p-narrow");
    t.train_limit = 160, t.test_limit = 64;
    t.queries = 150;
    ip_optim_defaults(&t.opt, IP_OPT_ADAM);
    t.epochs = 2, t.batch = 32, t.seed = 10;
    resume_case c = {&ip_extract_def, &t, IP_AT(ip_extract_task, out), same_model, NULL};
    check_resume(&c, attack_schedules, NATTACK, 1e-9);
}

Test(resume, advtrain_equals_uninterrupted) {
    /* PGD's random starts from the saved stream, a v1 owner converted, every parameter trained in training
     * mode; the fine-tuned checkpoint compared too */
    ip_advtrain_task t;
    ip_advtrain_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("adv_owner", IP_SCHEME_V1, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.eps = 0.1, t.steps = 3, t.adv_eval = 32;
    t.epochs = 2, t.batch = 32, t.seed = 8;
    resume_case c = {&ip_advtrain_def, &t, IP_AT(ip_advtrain_task, out), same_model, NULL};
    check_resume(&c, attack_schedules, NATTACK, 0);
}

/* ---------------- fingerprint ---------------- */

static void same_fingerprint(const char *a, const char *b, const char *what) {
    ip_fingerprint fa, fb;
    ip_err e = {{0}};
    cr_assert_eq(ip_fingerprint_load(&fa, a, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_fingerprint_load(&fb, b, &e), 0, "%s", e.msg);
    cr_assert_eq(fa.n, fb.n, "%s: %zu points, uninterrupted %zu", what, fb.n, fa.n);
    size_t d = (size_t)fa.c * fa.h * fa.w;
    cr_assert(memcmp(fa.x, fb.x, fa.n * d * sizeof *fa.x) == 0, "%s: points differ", what);
    cr_assert(memcmp(fa.label, fb.label, fa.n * sizeof *fa.label) == 0, "%s: labels differ", what);
    cr_assert(memcmp(fa.source, fb.source, fa.n * sizeof *fa.source) == 0, "%s: sources differ", what);
    cr_assert(memcmp(fa.iterations, fb.iterations, fa.n * sizeof *fa.iterations) == 0, "%s: iterations differ", what);
    ip_fingerprint_free(&fa);
    ip_fingerprint_free(&fb);
}

static const char *const fp_timings[] = {"points_per_s", "seconds", NULL};

Test(resume, fingerprint_equals_uninterrupted) {
    /* 12 points in batches of 5, 5, 2: resume points are Adam iterations; the stops fall inside the
     * first batch, at the first iteration of the second, and across batches */
    ip_fingerprint_task t;
    ip_fingerprint_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("fp_owner", IP_SCHEME_BASELINE, IP_NORM_BN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.fp.points = 12, t.fp.batch = 5, t.fp.margin = 0.5f, t.fp.max_iter = 40;
    /* the first point of the second batch: the first batch's iterations (+1: its last forward) */
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    stop_at(0);
    cr_assert_eq(ip_task_fingerprint(&t, &mt, &e), 0, "%s", e.msg);
    long batch1 = 0;
    for (int i = 0; i < mt.narrays; i++)
        if (strcmp(mt.arrays[i].name, "iterations") == 0)
            for (size_t p = 0; p < 5; p++) batch1 = (long)mt.arrays[i].v[p] > batch1 ? (long)mt.arrays[i].v[p] : batch1;
    double kept = ip_metrics_get(&mt, "points");
    ip_metrics_free(&mt);
    cr_assert(kept > 0 && kept < 12, "%g of 12 points converge: the comparison needs both kinds", kept);
    cr_assert_gt(batch1, 2, "the first batch takes %ld iterations: too few to stop inside it", batch1);
    const long second[] = {batch1 + 2, 0}, inside[] = {batch1, 0}, across[] = {2, batch1, 2, 0};
    const long *const schedules[] = {at_first, inside, second, across};
    resume_case c = {&ip_fingerprint_def, &t, IP_AT(ip_fingerprint_task, out), same_fingerprint, fp_timings};
    check_resume(&c, schedules, 4, 0);
}

Test(resume, cae_fingerprint_equals_uninterrupted) {
    /* method cae: 12 points in batches of 5, 5, 2, every one taking all 20 Adam steps through the owner,
     * two surrogates and two references (their dropout draws keyed by point and step) */
    ip_fingerprint_task t;
    ip_fingerprint_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", owner("cae_owner", IP_SCHEME_BASELINE, IP_NORM_BN));
    snprintf(t.surrogates, sizeof t.surrogates, "%s,%s", owner("cae_s1", IP_SCHEME_BASELINE, IP_NORM_GN),
             owner("cae_s2", IP_SCHEME_V1, IP_NORM_BN));
    snprintf(t.references, sizeof t.references, "%s,%s", owner("cae_r1", IP_SCHEME_V2, IP_NORM_BN),
             owner("cae_r2", IP_SCHEME_BASELINE, IP_NORM_GN));
    snprintf(t.data, sizeof t.data, SRC);
    t.train_limit = 160, t.test_limit = 64;
    t.fp.method = IP_FP_METHOD_CAE;
    t.fp.points = 12, t.fp.batch = 5, t.fp.cae.iterations = 20, t.fp.cae.eps = 0.3f, t.fp.cae.tau = 0;
    t.fp.lr = 0.05f;
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    stop_at(0);
    cr_assert_eq(ip_task_fingerprint(&t, &mt, &e), 0, "%s", e.msg);
    double kept = ip_metrics_get(&mt, "points");
    ip_metrics_free(&mt);
    cr_assert(kept > 0, "no point kept: the comparison would be empty");
    const long inside[] = {7, 0}, second[] = {25, 0}, across[] = {2, 20, 2, 0};
    const long *const schedules[] = {at_first, inside, second, across};
    resume_case c = {&ip_fingerprint_def, &t, IP_AT(ip_fingerprint_task, out), same_fingerprint, fp_timings};
    check_resume(&c, schedules, 4, 0);
}

/* ---------------- fake1 ---------------- */

static const char *const fake1_timings[] = {"passports_per_s", "key_seconds", "eval_seconds", NULL};

/* Shard 1 of 2 of 22 passports in GEMM blocks of 4: passports 11..21, blocks starting at 11 (a partial
 * one), 12, 16 and 20: four resume points. */
static ip_fake1_task fake1_case(const char *model, ip_forge_mode mode) {
    ip_fake1_task t;
    ip_fake1_task_defaults(&t);
    snprintf(t.model_path, sizeof t.model_path, "%s", model);
    snprintf(t.data, sizeof t.data, SRC);
    t.test_limit = 64;
    t.passports = 22;
    t.eval_images = 64;
    t.shard = 1, t.shards = 2;
    t.forge.block = 4;
    t.forge.mode = mode;
    t.forge.first_look = 8;
    return t;
}

static const long block_two[] = {2, 0}, block_last[] = {4, 0}, blocks_in_a_row[] = {1, 2, 2, 2, 0};
static const long *const fake1_schedules[] = {at_first, block_two, block_last, blocks_in_a_row};

Test(resume, fake1_shard_full_equals_uninterrupted) {
    ip_fake1_task t = fake1_case(owner("f1_owner", IP_SCHEME_V1, IP_NORM_BN), IP_FORGE_FULL);
    resume_case c = {&ip_fake1_def, &t, 0, NULL, fake1_timings};
    check_resume(&c, fake1_schedules, 4, 0);
}

Test(resume, fake1_shard_screen_equals_uninterrupted) {
    /* screen mode: passports stop early inside a block; "evaluated" differs per passport */
    ip_fake1_task t = fake1_case(owner("f1s_owner", IP_SCHEME_V1, IP_NORM_BN), IP_FORGE_SCREEN);
    resume_case c = {&ip_fake1_def, &t, 0, NULL, fake1_timings};
    check_resume(&c, fake1_schedules, 4, 1e-9);
}

Test(resume, verify_null_distribution_equals_uninterrupted) {
    /* the claim (the owner's own passports) against 22 fakes run by the task, in blocks of 4 */
    ip_verify_task t;
    ip_task_defaults(&ip_verify_def, &t);
    t.null = fake1_case(owner("vf_owner", IP_SCHEME_V1, IP_NORM_BN), IP_FORGE_FULL);
    t.null.shard = 0, t.null.shards = 1;
    resume_case c = {&ip_verify_def, &t, 0, NULL, NULL};
    check_resume(&c, fake1_schedules, 4, 0);
}

/* The runner's path: every shard of a split task gets its own state file (the fill places shard and
 * shards, ip_task_def.at_shard, before it names the file), and a shard stopped and run again through its
 * kind leaves the metrics file an uninterrupted shard leaves. */
Test(resume, fake1_shards_through_the_runner_keep_their_own_state) {
    const char *model = owner("f1r_owner", IP_SCHEME_V1, IP_NORM_BN);
    char state_dir[256];
    snprintf(state_dir, sizeof state_dir, "%s/state", scratch);
    cr_assert_eq(mkdir(state_dir, 0755), 0);
    rn_ctx ctx = {.data_source = SRC, .test_limit = 64, .threads = 1, .state_dir = state_dir, .checkpoint_every = 600};
    rn_task t;
    cr_assert_eq(rn_task_init(&t, rn_kind_find("fake1")), 0);
    rn_task_set(&t, "model_path", model, 0);
    rn_task_set(&t, "passports", "1200", 0);
    rn_task_set(&t, "eval_images", "64", 0);
    rn_task_set(&t, "shards", "2", 0);
    t.shards = 2;
    char paths[2][2][300], states[2][1100];
    ip_metrics ref[2], got[2];
    ip_err e = {{0}};
    for (int s = 0; s < 2; s++) {
        t.shard = s;
        for (int k = 0; k < 2; k++) {
            snprintf(paths[s][k], sizeof paths[s][k], "%s/fake1-%s.shard-%d-of-2.h5", scratch, k ? "got" : "ref", s);
            t.checkpoint = paths[s][k];
            ip_metrics_init(k ? &got[s] : &ref[s]);
            if (k == 0) { /* uninterrupted, without state files */
                rn_ctx plain = ctx;
                plain.state_dir = NULL;
                stop_at(0);
                cr_assert_eq(rn_task_run(&t, &plain, &ref[s], &e), 0, "%s", e.msg);
                continue;
            }
            stop_at(2); /* 600 passports in blocks of 256 (aligned to the task's 1200): 3 resume points */
            cr_assert_neq(rn_task_run(&t, &ctx, &got[s], &e), 0, "shard %d finished before the stop", s);
            cr_assert(ip_err_is_interrupted(&e), "%s", e.msg);
            const char *at = strstr(e.msg, state_dir);
            cr_assert_not_null(at, "the message names the state file: %s", e.msg);
            snprintf(states[s], sizeof states[s], "%.*s", (int)strcspn(at, " ;\n"), at);
            cr_assert(file_exists(states[s]), "no state file %s", states[s]);
        }
    }
    cr_assert_str_neq(states[0], states[1], "the two shards share a state file");
    for (int s = 0; s < 2; s++) {
        t.shard = s;
        t.checkpoint = paths[s][1];
        stop_at(0);
        ip_metrics_free(&got[s]);
        ip_metrics_init(&got[s]);
        cr_assert_eq(rn_task_run(&t, &ctx, &got[s], &e), 0, "%s", e.msg);
        cr_assert(!file_exists(states[s]), "shard %d: its state file is left", s);
        same_metrics(&ref[s], &got[s], fake1_timings, "fake1 shard through the runner");
        ip_metrics a, b;
        cr_assert_eq(ip_metrics_load(&a, paths[s][0], &e), 0, "%s", e.msg);
        cr_assert_eq(ip_metrics_load(&b, paths[s][1], &e), 0, "%s", e.msg);
        same_metrics(&a, &b, fake1_timings, "fake1 shard file through the runner");
        ip_metrics_free(&a), ip_metrics_free(&b);
        ip_metrics_free(&ref[s]), ip_metrics_free(&got[s]);
    }
    rn_task_free(&t);
}

/* ---------------- the state file ---------------- */

Test(resume, state_of_other_parameters_is_ignored) {
    char state[256];
    snprintf(state, sizeof state, "%s/other.state", scratch);
    ip_train_task t = train_case(IP_SCHEME_BASELINE, 0, 0);
    ip_err e = {{0}};
    cr_assert_eq(ip_task_place_resume(&ip_train_def, &t, state, 0, &e), 0);
    ip_metrics mt;
    ip_metrics_init(&mt);
    stop_at(3);
    cr_assert_neq(ip_task_train(&t, &mt, &e), 0);
    cr_assert(ip_err_is_interrupted(&e), "%s", e.msg);
    stop_at(0);
    /* another seed: the state is not this task's, it starts over and finishes */
    t.seed = t.train.seed = 2;
    ip_saver sv;
    cr_assert_eq(ip_saver_open(&sv, &t.resume, ip_task_ident(&ip_train_def, &t), &e), 0, "%s", e.msg);
    ip_saver_close(&sv);
    t.seed = t.train.seed = 1;
    cr_assert_eq(ip_saver_open(&sv, &t.resume, ip_task_ident(&ip_train_def, &t), &e), 1, "%s", e.msg);
    ip_saver_close(&sv);
    /* where and how often it saves is not part of what it computes */
    t.resume.every = 123;
    cr_assert_eq(ip_saver_open(&sv, &t.resume, ip_task_ident(&ip_train_def, &t), &e), 1, "%s", e.msg);
    ip_saver_close(&sv);
    ip_metrics_free(&mt);
}

Test(resume, damaged_state_is_refused_naming_the_file) {
    char state[256];
    snprintf(state, sizeof state, "%s/damaged.state", scratch);
    static const float w[4] = {1, 2, 3, 4};
    ip_state_part p[1];
    int n = 0;
    cr_assert_eq(ip_state_add(p, &n, "w", w, sizeof w), 0);
    ip_err e = {{0}};
    cr_assert_eq(ip_state_save(state, 42, p, n, &e), 0, "%s", e.msg);
    ip_state s;
    cr_assert_eq(ip_state_load(&s, state, 42, &e), 1, "%s", e.msg);
    float back[4];
    cr_assert_eq(ip_state_get(&s, state, "w", back, sizeof back, &e), 0, "%s", e.msg);
    cr_assert(memcmp(back, w, sizeof w) == 0);
    cr_assert_neq(ip_state_get(&s, state, "w", back, 8, &e), 0, "a part of another size is refused");
    ip_state_free(&s);
    /* flip one byte of the data: the checksum catches it */
    FILE *f = fopen(state, "r+b");
    cr_assert_not_null(f);
    fseek(f, -6, SEEK_END);
    int ch = fgetc(f);
    fseek(f, -6, SEEK_END);
    fputc(ch ^ 1, f);
    fclose(f);
    cr_assert_eq(ip_state_load(&s, state, 42, &e), -1);
    cr_assert(ip_err_is_input(&e));
    cr_assert(strstr(e.msg, state) && strstr(e.msg, "checksum") && strstr(e.msg, "delete it"), "%s", e.msg);
    /* truncated */
    cr_assert_eq(truncate(state, 30), 0);
    cr_assert_eq(ip_state_load(&s, state, 42, &e), -1);
    cr_assert(strstr(e.msg, state) != NULL, "%s", e.msg);
    /* none: start fresh */
    unlink(state);
    cr_assert_eq(ip_state_load(&s, state, 42, &e), 0);
}
