/* Checkpoints inside long tasks (core/io/resume.h, docs/checkpoint.md "Task
 * state files"): a task stopped at any of its resume points and run again
 * ends bit for bit where the uninterrupted task does (metrics, arrays and the
 * output's tensors), once or several times in a row; the state file is
 * deleted when the task finishes; a state of other parameters is ignored; a
 * damaged one is refused with a message naming it.
 *
 * A stop is requested at the k-th resume point through the stop flag's poll
 * hook (util/stop.h), as the runner's signal handler or the coordinator's
 * stop message would. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/io/ckpt.h"
#include "../core/io/resume.h"
#include "../core/io/state.h"
#include "../core/tasks/tasks.h"
#include "../core/util/stop.h"
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

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---------------- comparing results ---------------- */

static void same_metrics(const ip_metrics *a, const ip_metrics *b, const char *what) {
    cr_assert_eq(a->nscalars, b->nscalars, "%s: %d vs %d scalars", what, a->nscalars, b->nscalars);
    for (int i = 0; i < a->nscalars; i++) {
        double v = ip_metrics_get(b, a->names[i]);
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
    stop_at(0);
    void *t = copy_task(c, out_ref, "", every);
    run_once(c, t, &ref, 0, state);
    free(t);
    for (int s = 0; s < nsched; s++) {
        char out[256], what[96];
        snprintf(out, sizeof out, "%s/%s-%d.h5", scratch, c->def->name, s);
        int len = 0;
        for (const long *k = schedules[s]; *k; k++) len++;
        snprintf(what, sizeof what, "%s, schedule %d (%d stops, first at point %ld)", c->def->name, s, len,
                 schedules[s][0]);
        t = copy_task(c, out, state, every);
        for (const long *k = schedules[s]; *k; k++) {
            stop_at(*k);
            run_once(c, t, &got, 1, state);
        }
        stop_at(0);
        run_once(c, t, &got, 0, state);
        same_metrics(&ref, &got, what);
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
    resume_case c = {&ip_train_def, &t, IP_AT(ip_train_task, out), same_model};
    check_resume(&c, train_schedules, 5, 0);
}

Test(resume, train_v3_adam_with_periodic_saves_equals_uninterrupted) {
    /* v3: triggers in every batch, two branches, a sign loss; Adam's two moments */
    ip_train_task t = train_case(IP_SCHEME_V3, 0, 1);
    t.triggers = 20;
    resume_case c = {&ip_train_def, &t, IP_AT(ip_train_task, out), same_model};
    check_resume(&c, train_schedules + 3, 2, 1e-9);
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
