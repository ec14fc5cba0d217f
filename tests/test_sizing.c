/* Sizing a run against a time limit (runner/run/sizing.h): readable
 * durations, the --time-limit parser, the speedup model, an entry's
 * `threads` (spec key, wire, the thread switch around a task), the kinds'
 * step costs, and the warnings, summarised however many tasks they name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/io/data.h"
#include "../core/model/model.h"
#include "../core/passport/passport_keys.h"
#include "../core/util/par.h"
#include "../runner/kinds/cost.h"
#include "../runner/kinds/kinds.h"
#include "../runner/run/sizing.h"
#include "../runner/run/wire.h"
#include "../runner/spec/spec.h"

TestSuite(sizing);

static const char *dur(double s) {
    static char buf[64];
    return rn_format_duration(s, buf, sizeof buf);
}

Test(sizing, durations_read_like_people_write_them) {
    cr_assert_str_eq(dur(0), "0.0s");
    cr_assert_str_eq(dur(1e-6), "<0.1s");
    cr_assert_str_eq(dur(0.44), "0.4s");
    cr_assert_str_eq(dur(9.94), "9.9s");
    cr_assert_str_eq(dur(9.96), "10s");
    cr_assert_str_eq(dur(45), "45s");
    cr_assert_str_eq(dur(59.4), "59s");
    cr_assert_str_eq(dur(59.6), "1m");
    cr_assert_str_eq(dur(60), "1m");
    cr_assert_str_eq(dur(725), "12m 5s");
    cr_assert_str_eq(dur(3599.4), "59m 59s");
    cr_assert_str_eq(dur(3599.6), "1h", "rounded to its last unit first: not 60m 0s");
    cr_assert_str_eq(dur(7200), "2h");
    cr_assert_str_eq(dur(3 * 3600 + 20 * 60), "3h 20m");
    cr_assert_str_eq(dur(3 * 3600 + 20 * 60 + 29), "3h 20m");
    cr_assert_str_eq(dur(86400), "1d");
    cr_assert_str_eq(dur(86400 + 3 * 3600), "1d 3h");
    cr_assert_str_eq(dur(86400 + 5 * 60), "1d 0h 5m");
    cr_assert_str_eq(dur(1635470), "18d 22h 18m");
    cr_assert_str_eq(dur(86400 + 3 * 3600 + 20 * 60), "1d 3h 20m");
    cr_assert_str_eq(dur(-1), "?");
    cr_assert_str_eq(dur(NAN), "?");
    cr_assert_str_eq(dur(INFINITY), "forever");
    cr_assert_str_eq(dur(1e300), "1.16e+295d");
    char small[4];
    rn_format_duration(725, small, sizeof small); /* truncated, never overflowing */
    cr_assert_str_eq(small, "12m");
}

static double limit_of(const char *text) {
    double s = -1;
    char msg[300];
    cr_assert_eq(rn_parse_time_limit(text, &s, msg, sizeof msg), 0, "%s: %s", text, msg);
    return s;
}

static void limit_bad(const char *text, const char *why) {
    double s = -1;
    char msg[300] = "";
    cr_assert_neq(rn_parse_time_limit(text, &s, msg, sizeof msg), 0, "\"%s\" should be refused", text);
    cr_assert(strstr(msg, why), "\"%s\": message \"%s\" lacks \"%s\"", text, msg, why);
    cr_assert(!strchr(msg, '\n'), "one line");
}

Test(sizing, time_limits_in_slurms_formats_and_with_units) {
    /* Slurm: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]] */
    cr_assert_eq(limit_of("90"), 90 * 60);
    cr_assert_eq(limit_of("1:00"), 60);
    cr_assert_eq(limit_of("600:30"), 600 * 60 + 30, "the first field may be large");
    cr_assert_eq(limit_of("1:00:00"), 3600);
    cr_assert_eq(limit_of("100:00:00"), 100 * 3600);
    cr_assert_eq(limit_of("2-00:00:00"), 2 * 86400);
    cr_assert_eq(limit_of("1-12"), 86400 + 12 * 3600);
    cr_assert_eq(limit_of("1-2:30"), 86400 + 2 * 3600 + 30 * 60);
    cr_assert_eq(limit_of("0-0:0:5"), 5);
    /* a number with a unit */
    cr_assert_eq(limit_of("3600s"), 3600);
    cr_assert_eq(limit_of("90m"), 5400);
    cr_assert_eq(limit_of("2h"), 7200);
    cr_assert_eq(limit_of("1d"), 86400);
    cr_assert_eq(limit_of("1.5h"), 5400);
    /* squeue's words for no limit */
    cr_assert_eq(limit_of("UNLIMITED"), 0);
    cr_assert_eq(limit_of("infinite"), 0);
    const char *fmt = "expected Slurm's";
    limit_bad("", "empty");
    limit_bad("abc", fmt);
    limit_bad("1:2:3:4", fmt);
    limit_bad("1-2:3:4:5", fmt);
    limit_bad("-5", fmt);
    limit_bad("1-", fmt);
    limit_bad("1:", fmt);
    limit_bad(":30", fmt);
    limit_bad("1 h", fmt);
    limit_bad("2x", fmt);
    limit_bad("h", fmt);
    limit_bad("1e3s", fmt);
    limit_bad("1..5h", fmt);
    limit_bad("-1h", fmt);
    limit_bad("infh", fmt);
    limit_bad("1234567890", fmt);
    limit_bad("1:60", "below 60");
    limit_bad("1:60:00", "below 60");
    limit_bad("1-24", "below 24");
    limit_bad("1-1:60", "below 60");
    limit_bad("0", "more than 0");
    limit_bad("0:00", "more than 0");
    limit_bad("0h", "more than 0");
}

Test(sizing, speedup_is_amdahls_and_stops_at_the_cores) {
    double p = RN_PARALLEL_FRACTION;
    cr_assert_eq(rn_wall_seconds(100, 1, 8), 100);
    cr_assert_float_eq(rn_wall_seconds(100, 2, 8), 100 * ((1 - p) + p / 2), 1e-9);
    cr_assert_float_eq(rn_wall_seconds(100, 8, 2), rn_wall_seconds(100, 2, 2), 1e-9, "no gain past the cores");
    cr_assert_eq(rn_wall_seconds(100, 0, 0), 100, "0 threads: one");
    cr_assert(rn_wall_seconds(100, 64, 64) > 100 * (1 - p), "never below the serial part");
}

/* ---------------- an entry's threads ---------------- */

static const rn_spec_opts no_data = {.skip_data_check = 1};

static const char *const threads_spec = "name: thr\n"
                                        "data: {source: \"synthetic:64\"}\n"
                                        "defaults:\n"
                                        "  models: {threads: 3}\n"
                                        "models:\n"
                                        "  - {name: a, seed: [1, 2]}\n"
                                        "  - {name: b, threads: 2}\n"
                                        "tasks:\n"
                                        "  - {name: e, kind: eval, model: a}\n"
                                        "  - {name: f, kind: fake1, model: b, passports: 100, shards: 2, threads: 4}\n";

static int load(rn_spec *s, rn_diags *d, const char *text, const rn_override *ov, int nov) {
    memset(d, 0, sizeof *d);
    return rn_spec_load_text(s, "inline.yaml", text, &no_data, ov, nov, d);
}

Test(sizing, entry_threads_reach_its_tasks_and_shards_not_their_keys) {
    rn_spec s;
    rn_diags d;
    cr_assert_eq(load(&s, &d, threads_spec, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    int seen = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        cr_assert(!strstr(t->key, "threads"), "%s: threads is not part of a key", t->key);
        int want = !strcmp(t->name, "a") ? 3 : !strcmp(t->name, "b") ? 2 : !strcmp(t->name, "e") ? 0 : 4;
        cr_assert_eq(t->threads, want, "%s: %d threads, want %d", t->key, t->threads, want);
        seen += !strcmp(t->name, "f");
    }
    cr_assert_eq(seen, 3, "two shards and the merge carry the entry's threads");
    /* the keys are those of the same spec without threads */
    rn_spec plain;
    rn_diags d2;
    const char *text = "name: thr\ndata: {source: \"synthetic:64\"}\nmodels:\n  - {name: a, seed: [1, 2]}\n"
                       "  - {name: b}\ntasks:\n  - {name: e, kind: eval, model: a}\n"
                       "  - {name: f, kind: fake1, model: b, passports: 100, shards: 2}\n";
    cr_assert_eq(load(&plain, &d2, text, NULL, 0), 0);
    cr_assert_eq(plain.ntasks, s.ntasks);
    for (int i = 0; i < s.ntasks; i++) {
        cr_assert_str_eq(plain.tasks[i].key, s.tasks[i].key);
        cr_assert_eq(plain.tasks[i].seed, s.tasks[i].seed);
        cr_assert_eq(plain.tasks[i].threads, 0);
    }
    rn_spec_free(&plain);
    rn_spec_free(&s);
    rn_diags_free(&d);
    rn_diags_free(&d2);
}

Test(sizing, entry_threads_by_override) {
    rn_spec s;
    rn_diags d;
    rn_override ov[2];
    cr_assert_eq(rn_override_parse(&ov[0], "models.b.threads=5"), 0);
    cr_assert_eq(rn_override_parse(&ov[1], "tasks.e.threads=1"), 0);
    cr_assert_eq(load(&s, &d, threads_spec, ov, 2), 0, "%s", d.n ? d.v[0].msg : "");
    for (int i = 0; i < s.ntasks; i++) {
        if (!strcmp(s.tasks[i].name, "b")) cr_assert_eq(s.tasks[i].threads, 5);
        if (!strcmp(s.tasks[i].name, "e")) cr_assert_eq(s.tasks[i].threads, 1);
    }
    rn_spec_free(&s);
    rn_diags_free(&d);
}

static void threads_error(const char *entry_line, const char *path, const char *msg) {
    char text[600];
    snprintf(text, sizeof text, "name: thr\ndata: {source: \"synthetic:64\"}\nmodels:\n%s\n", entry_line);
    rn_spec s;
    rn_diags d;
    cr_assert_neq(load(&s, &d, text, NULL, 0), 0, "%s should be refused", entry_line);
    int found = 0;
    for (int i = 0; i < d.n; i++) found |= !strcmp(d.v[i].path, path) && strstr(d.v[i].msg, msg) != NULL;
    if (!found) rn_diags_print(&d, stderr);
    cr_assert(found, "%s: no \"%s\" at %s", entry_line, msg, path);
    rn_diags_free(&d);
}

Test(sizing, bad_entry_threads_are_reported_at_the_key) {
    threads_error("  - {name: a, threads: 0}", "models[0].threads", "");
    threads_error("  - {name: a, threads: 100000}", "models[0].threads", "");
    threads_error("  - {name: a, threads: two}", "models[0].threads", "");
    threads_error("  - {name: a, threads: [1, 2]}", "models[0].threads", "cannot be swept");
    threads_error("  - {name: a, zip: {threads: [1, 2], seed: [1, 2]}}", "models[0].zip.threads", "cannot be swept");
    threads_error("  - {name: a, thread: 2}", "models[0].thread", "did you mean \"threads\"");
}

/* A million-task spec does not grow: threads lives in the padding after ndeps. */
Test(sizing, a_task_is_no_bigger_for_its_threads) {
    if (sizeof(void *) == 8) cr_assert_eq(sizeof(rn_task), 112, "rn_task is %zu bytes", sizeof(rn_task));
}

Test(sizing, threads_travel_and_are_set_around_the_task_alone) {
    rn_task t;
    cr_assert_eq(rn_task_init(&t, rn_kind_find("noop")), 0);
    t.threads = 3;
    rn_buf b = {0};
    cr_assert_eq(rn_pack_task(&b, &t), 0);
    ip_arena a = {0};
    rn_task u;
    cr_assert_eq(rn_unpack_task(&b, &u, &a), 0);
    cr_assert_eq(u.threads, 3);
    /* a bad count on the wire is refused */
    int32_t bad = RN_MAX_THREADS + 1;
    memcpy(b.p + 4 * sizeof(int32_t), &bad, sizeof bad);
    b.pos = 0;
    ip_arena a2 = {0};
    cr_assert_neq(rn_unpack_task(&b, &u, &a2), 0);
    ip_arena_free(&a2);
    /* the worker runs it with 3 threads, then has its own again */
    ip_par_set_threads(1);
    rn_ctx ctx = {.data_source = "synthetic:8", .threads = 1};
    ip_metrics m;
    ip_metrics_init(&m);
    ip_err e = {{0}};
    cr_assert_eq(rn_task_run(&t, &ctx, &m, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_par_get_threads(), 1, "the rank's threads after the task");
    ip_metrics_free(&m);
    ip_arena_free(&a);
    rn_buf_free(&b);
    rn_task_free(&t);
}

/* ---------------- step costs and warnings ---------------- */

Test(sizing, a_training_step_is_a_minibatch_and_an_evaluation) {
    rn_task t;
    cr_assert_eq(rn_task_init(&t, &rn_kind_train), 0);
    cr_assert_eq(rn_task_set(&t, "epochs", "10", 0), 0);
    rn_ctx c = {.train_limit = 50000, .test_limit = 10000, .threads = 1};
    t.cost = rn_kind_train.cost(&t, &c);
    double step = rn_kind_train.step_cost(&t, &c);
    double eval = rn_infer_seconds("small-p", 10000), batch = rn_train_seconds("small-p", 64, 1);
    cr_assert_float_eq(step, eval + batch, 1e-9);
    cr_assert(step < t.cost / 10, "a step is a small part of 10 epochs");
    /* a bigger batch is a longer step */
    cr_assert_eq(rn_task_set(&t, "batch", "1024", 0), 0);
    cr_assert(rn_kind_train.step_cost(&t, &c) > step);
    rn_task_free(&t);
}

/* The sizing's context (rn_sizing_init) has the spec's tasks, so a step of
 * a task that names a model (a fine-tune of a resnet18-p) is costed at that
 * model's architecture when a time limit is checked, as its whole cost is:
 * it once counted as small-p there. */
Test(sizing, steps_are_costed_at_the_models_architecture) {
    rn_spec s;
    rn_diags d;
    const char *text = "name: steps\ndata: {source: \"synthetic:64\", train_limit: 50000, test_limit: 10000}\n"
                       "models:\n  - {name: r, arch: resnet18-p, epochs: 1}\n  - {name: p, epochs: 1}\ntasks:\n"
                       "  - {name: ft, kind: finetune, model: [r, p], epochs: 2}\n";
    cr_assert_eq(load(&s, &d, text, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    rn_sizing z;
    rn_sizing_init(&z, &s, 1, 2, 3600);
    cr_assert_eq(z.ctx.tasks, s.tasks);
    int seen = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (strcmp(t->kind, "finetune") != 0) continue;
        const char *arch = strstr(t->key, "train:r") ? "resnet18-p" : "small-p";
        /* its longest stretch: a minibatch and the epoch's two evaluations, at the model's speed */
        double want = rn_train_seconds(arch, 64, 1) + rn_infer_seconds(arch, 10000 * 2);
        cr_expect_float_eq(t->k->step_cost(t, &z.ctx), want, 1e-9 * want, "%s", t->key);
        cr_expect_float_eq(rn_task_step_wall(t, &z), rn_wall_seconds(want, 1, z.cores), 1e-9 * want, "%s", t->key);
        seen++;
    }
    cr_assert_eq(seen, 2);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* `run --calibrate`'s factors: an architecture's measured training speed
 * scales its row's training, its evaluation speed its row's evaluation and
 * its forger speed its row's forger (fake1's passport-images), each on its
 * own, and no other row; a speed <= 0 puts its factor back to 1. */
Test(sizing, calibration_scales_each_row_speed_apart) {
    const char *arch[] = {"small-p", "alexnet-p", "resnet18-p"};
    double tr[3], ev[3], fg[3], f[RN_SPEEDS] = {0};
    for (int a = 0; a < 3; a++)
        tr[a] = rn_train_seconds(arch[a], 1000, 2), ev[a] = rn_infer_seconds(arch[a], 1000),
        fg[a] = rn_forge_seconds(arch[a], 1000);
    const rn_arch_speed *row = rn_arch("alexnet-p");
    cr_assert_str_eq(rn_arch_row(rn_arch_index("alexnet-p"))->arch, "alexnet-p");
    /* the row's forger: RN_FORGE_IMAGE_COST evaluation images a passport-image */
    cr_assert_float_eq(fg[1], RN_FORGE_IMAGE_COST * ev[1], 1e-9 * ev[1]);
    double speed[RN_SPEEDS] = {row->train_per_s / 2, row->infer_per_s / 4,
                               rn_row_speed(row, RN_SPEED_FORGE) / 8};
    rn_cost_set_measured_speed("alexnet-p", speed, f);
    cr_assert_float_eq(f[RN_SPEED_TRAIN], 0.5, 1e-12);
    cr_assert_float_eq(f[RN_SPEED_INFER], 0.25, 1e-12);
    cr_assert_float_eq(f[RN_SPEED_FORGE], 0.125, 1e-12);
    cr_assert_float_eq(rn_train_seconds("alexnet-p", 1000, 2), 2 * tr[1], 1e-9 * tr[1]);
    cr_assert_float_eq(rn_infer_seconds("alexnet-p", 1000), 4 * ev[1], 1e-9 * ev[1]);
    cr_assert_float_eq(rn_forge_seconds("alexnet-p", 1000), 8 * fg[1], 1e-9 * fg[1]);
    for (int a = 0; a < 3; a += 2) /* the other rows are as they were */
        cr_assert(rn_train_seconds(arch[a], 1000, 2) == tr[a] && rn_infer_seconds(arch[a], 1000) == ev[a] &&
                      rn_forge_seconds(arch[a], 1000) == fg[a],
                  "%s", arch[a]);
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){0, -1, 0}, f);
    cr_assert(f[RN_SPEED_TRAIN] == 1 && f[RN_SPEED_INFER] == 1 && f[RN_SPEED_FORGE] == 1);
    for (int a = 0; a < 3; a++)
        cr_assert(rn_train_seconds(arch[a], 1000, 2) == tr[a] && rn_infer_seconds(arch[a], 1000) == ev[a] &&
                  rn_forge_seconds(arch[a], 1000) == fg[a]);
}

/* The report of a spec with checkpointing trains, a fake1 too long for the
 * limit, and one train whose single step exceeds it. */
static char *report(const char *text, int threads, double limit, int *warnings) {
    rn_spec s;
    rn_diags d;
    cr_assert_eq(load(&s, &d, text, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    rn_sizing z;
    rn_sizing_init(&z, &s, threads, 2, limit);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *warnings = rn_sizing_report(&s, &z, NULL, f);
    fclose(f);
    rn_spec_free(&s);
    rn_diags_free(&d);
    return buf;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

static const char *const long_spec =
    "name: big\n"
    "data: {source: \"cifar10:/nonexistent\", train_limit: 0, test_limit: 0}\n"
    "models:\n"
    "  - {name: a, arch: alexnet-p, epochs: 50, seed: {range: [1, 14, 1]}}\n"
    "  - {name: huge, arch: resnet18-p, epochs: 3, batch: 65536, threads: 64}\n"
    "tasks:\n"
    "  - {name: f, kind: verify, model: a, passports: 1000000, eval_images: 1000}\n"
    "  - {name: ev, kind: eval, model: huge}\n";

/* After a calibration the spec's tasks are costed again (rn_spec_recost):
 * at unchanged speeds the expansion's costs, bit for bit; with a row
 * calibrated, the tasks of that architecture change and the others do not. */
Test(sizing, recosting_a_spec_is_its_expansion_at_the_new_speeds) {
    rn_spec s;
    rn_diags d;
    cr_assert_eq(load(&s, &d, long_spec, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    double *before = malloc((size_t)s.ntasks * sizeof *before);
    cr_assert(before);
    for (int i = 0; i < s.ntasks; i++) before[i] = s.tasks[i].cost;
    rn_spec_recost(&s);
    for (int i = 0; i < s.ntasks; i++) cr_assert(s.tasks[i].cost == before[i], "%s", s.tasks[i].key);
    const rn_arch_speed *row = rn_arch("resnet18-p");
    rn_cost_set_measured_speed("resnet18-p",
                               (double[RN_SPEEDS]){row->train_per_s / 2, row->infer_per_s / 2,
                                                   rn_row_speed(row, RN_SPEED_FORGE) / 2},
                               NULL);
    rn_spec_recost(&s);
    int changed = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        int huge = strstr(t->key, "huge") != NULL; /* train:huge and the eval of it */
        if (huge) {
            cr_assert(t->cost > 1.9 * before[i], "%s: %g -> %g", t->key, before[i], t->cost);
            changed++;
        } else {
            cr_assert(t->cost == before[i], "%s", t->key);
        }
    }
    cr_assert_eq(changed, 2);
    rn_cost_set_measured_speed("resnet18-p", (double[RN_SPEEDS]){0}, NULL);
    rn_spec_recost(&s);
    /* alexnet-p's forger alone at half its row's speed: the verify of its
     * passports (forger-bound) takes twice as long, its trainings do not move */
    for (int i = 0; i < s.ntasks; i++) before[i] = s.tasks[i].cost;
    const rn_arch_speed *alex = rn_arch("alexnet-p");
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){0, 0, rn_row_speed(alex, RN_SPEED_FORGE) / 2}, NULL);
    rn_spec_recost(&s);
    changed = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (strcmp(t->kind, "verify") == 0) {
            cr_assert(t->cost > 1.9 * before[i] && t->cost <= 2 * before[i], "%s: %g -> %g", t->key, before[i],
                      t->cost);
            changed++;
        } else {
            cr_assert(t->cost == before[i], "%s", t->key);
        }
    }
    cr_assert_eq(changed, 14); /* one verify per model of a's 14 seeds */
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){0}, NULL);
    free(before);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

Test(sizing, warnings_name_ten_tasks_at_most_and_count_the_rest) {
    setenv("SLURM_CPUS_PER_TASK", "2", 1); /* a rank's cores, whatever this machine has */
    int w = 0;
    char *out = report(long_spec, 1, 900, &w);
    /* 14 trains of a and the 14 verify tasks of their models (their null distributions) checkpoint and fit
     * their steps in 15 minutes: named 10, "and 18 more" */
    cr_assert(strstr(out, "note: 28 tasks take longer than the time limit (15m) but checkpoint themselves"), "%s", out);
    cr_assert(strstr(out, "  ... and 18 more\n"), "%s", out);
    /* huge's step (65536 images of resnet18-p + its evaluation) alone is more than 15 minutes, on 2 cores (~16 at the measured speed) */
    cr_assert(strstr(out, "warning: 1 task has a single step longer than the time limit (15m)"), "%s", out);
    cr_assert(strstr(out, "  train:huge: one step ~"), "%s", out);
    /* every long kind checkpoints: only an evaluation does not, and it fits in 20 minutes */
    cr_assert(!strstr(out, "cannot checkpoint"), "%s", out);
    cr_assert(strstr(out, "sizing: ~"), "%s", out);
    cr_assert(strstr(out, "job lengths of 15m"), "%s", out);
    /* huge asks for 64 threads */
    cr_assert(strstr(out, "1 task asks for up to 64 threads but a rank has 2 cores"), "%s", out);
    cr_assert(strstr(out, "entries: huge (64)"), "%s", out);
    cr_assert_eq(w, 2, "threads, step: two warnings (notes do not count)\n%s", out);
    cr_assert(count(out, "\n  ") <= 3 * (RN_SIZING_LIST + 1), "summarised:\n%s", out);
    free(out);
    /* a limit shorter than the evaluation, which cannot checkpoint: it will never finish */
    out = report(long_spec, 1, 1, &w);
    cr_assert(strstr(out, "warning: 1 task cannot checkpoint and takes longer than the time limit (1.0s): it will never "
                          "finish"), "%s", out);
    cr_assert(strstr(out, "  eval:ev<train:huge>: ~"), "%s", out);
    free(out);
    /* without a limit: only the threads */
    out = report(long_spec, 1, 0, &w);
    cr_assert_eq(w, 1, "%s", out);
    cr_assert(!strstr(out, "time limit"), "%s", out);
    free(out);
    /* a limit that everything fits */
    out = report("name: s\ndata: {source: \"synthetic:64\"}\nmodels:\n  - {name: a}\n", 1, 86400, &w);
    cr_assert_eq(w, 0, "%s", out);
    cr_assert(strstr(out, "fits in one job length of 1d"), "%s", out);
    free(out);
}

/* The cost model's rows are the model's own counts (their home), on the
 * input the published configs use: 1x28x28 for the small-p family, 3x32x32
 * for alexnet-p and resnet18-p. mflop is the whole forward; key_mflop the
 * part a passport key's reference forward runs (image and shuffle keys: as
 * far as the last input of v1's passport layers, the activation key
 * generation stops at, ref_last); key_floats an image's record in the
 * shuffle keys' feature cache. */
Test(sizing, arch_rows_are_the_models_counts) {
    for (int i = 0; ip_arch_names[i]; i++) {
        const char *a = ip_arch_names[i];
        int small = strncmp(a, "small-p", 7) == 0;
        ip_model_cfg cfg = {.in_c = small ? 1 : 3, .in_h = small ? 28 : 32, .in_w = small ? 28 : 32, .classes = 10};
        snprintf(cfg.arch, sizeof cfg.arch, "%s", a);
        ip_model ref, target;
        ip_dataset images = {0};
        ip_keygen g = {0};
        ip_err e = {{0}};
        cfg.scheme = IP_SCHEME_BASELINE;
        cr_assert_eq(ip_model_build(&ref, &cfg, &e), 0, "%s: %s", a, e.msg);
        double model = ip_model_flops_per_sample(&ref) / 1e6, cost = rn_arch_mflop(a);
        cr_expect(fabs(cost - model) <= 0.02 * model, "%s: cost model %.1f MFLOP, the model counts %.1f", a, cost, model);

        cfg.scheme = IP_SCHEME_V1;
        cr_assert_eq(ip_model_build(&target, &cfg, &e), 0, "%s: %s", a, e.msg);
        cr_assert_eq(ip_data_synthetic(&images, IP_SHUFFLE_IMAGES, cfg.in_c, cfg.in_h, cfg.in_w, 10, 1, IP_SPLIT_TRAIN, &e),
                     0, "%s", e.msg);
        cr_assert_eq(ip_keygen_init(&g, IP_KEY_SHUFFLE, &target, &ref, &images, 1, &e), 0, "%s: %s", a, e.msg);
        double key = g.ref_last < 0 ? 0 : ip_model_flops_to(&ref, g.ref_last) / 1e6;
        cost = rn_arch(a)->key_mflop;
        cr_expect(fabs(cost - key) <= 0.02 * key + 0.05, "%s: cost model %.1f key MFLOP, the model counts %.1f", a, cost,
                  key);
        cr_expect(key < model, "%s: the key forward stops before the logits", a);
        cr_expect_eq(rn_arch(a)->key_floats, (double)g.cache_floats, "%s: cost model %.0f key floats per image, the "
                     "key generator caches %zu", a, rn_arch(a)->key_floats, g.cache_floats);
        ip_keygen_free(&g);
        ip_data_free(&images);
        ip_model_free(&target);
        ip_model_free(&ref);
    }
}

/* A task that names a model is costed at that model's architecture, found
 * through the chain of tasks that derived it (a prune of a fine-tune of a
 * trained resnet18-p is a resnet18-p), not at small-p's. */
Test(sizing, costs_follow_references_to_the_models_architecture) {
    rn_spec s;
    rn_diags d;
    const char *text = "name: arch\ndata: {source: \"synthetic:64\"}\nmodels:\n  - {name: a}\n"
                       "  - {name: r, arch: resnet18-p}\ntasks:\n  - {name: ev, kind: eval, model: [a, r]}\n"
                       "  - {name: ft, kind: finetune, model: r, epochs: 1}\n"
                       "  - {name: pr, kind: prune, model: ft, rate: 0.5}\n"
                       "  - {name: ev2, kind: eval, model: pr}\n";
    cr_assert_eq(load(&s, &d, text, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    const rn_task *ev_a = NULL, *ev_r = NULL, *ev_pr = NULL;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (!strcmp(t->name, "ev")) *(strstr(t->key, "train:r") ? &ev_r : &ev_a) = t;
        if (!strcmp(t->name, "ev2")) ev_pr = t;
    }
    cr_assert(ev_a && ev_r && ev_pr);
    rn_ctx c = {.tasks = s.tasks};
    cr_assert_str_eq(rn_model_arch(ev_a, &c, "model"), "small-p");
    cr_assert_str_eq(rn_model_arch(ev_r, &c, "model"), "resnet18-p");
    cr_assert_str_eq(rn_model_arch(ev_pr, &c, "model"), "resnet18-p");
    /* resnet18-p evaluates in the caller's batch: its eval runs, at resnet18-p's speed; small-p's
     * checkpoint carries its accuracy from training (core/model/evalrec.h): the eval only opens it */
    double fixed = RN_TASK_FIXED_SECONDS;
    cr_expect(!rn_accuracy_recorded(ev_r, &c, "model"));
    cr_expect(rn_accuracy_recorded(ev_a, &c, "model"));
    cr_expect_float_eq(ev_r->cost, rn_infer_seconds("resnet18-p", rn_data_images(&c, 0)) + fixed, 1e-9);
    cr_expect_float_eq(ev_a->cost, fixed, 1e-12);
    cr_expect_float_eq(ev_pr->cost, ev_r->cost, 1e-9);
    /* without the task list (a task built by hand) the architecture cannot be known, nor a record */
    rn_ctx none = {0};
    cr_assert_str_eq(rn_model_arch(ev_r, &none, "model"), "small-p");
    cr_expect(!rn_accuracy_recorded(ev_a, &none, "model"));
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* A prune of a v2 or v3 model evaluates both branches (core/tasks/models.c
 * passport_metrics: the private accuracy and public_test_acc), so it costs two
 * evaluations; a v1 or baseline model, one. The scheme is found through the
 * chain of derived models: a fine-tune of a v2 model is a v2 model, a student
 * distilled from it a baseline. */
Test(sizing, prunes_of_two_branch_models_cost_two_evaluations) {
    rn_spec s;
    rn_diags d;
    const char *text = "name: branches\ndata: {source: \"synthetic:64\", test_limit: 2000}\nmodels:\n"
                       "  - {name: b}\n  - {name: p1, scheme: v1}\n  - {name: p2, scheme: v2}\n"
                       "  - {name: p3, scheme: v3, triggers: 20}\ntasks:\n"
                       "  - {name: ft, kind: finetune, model: p2, epochs: 1}\n"
                       "  - {name: st, kind: distill, model: p2, epochs: 1}\n"
                       "  - {name: pr, kind: prune, model: [b, p1, p2, p3, ft, st], rate: 0.5}\n";
    cr_assert_eq(load(&s, &d, text, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    rn_ctx c = {.tasks = s.tasks, .test_limit = 2000};
    const double one = rn_infer_seconds("small-p", 2000), fixed = 2 * RN_TASK_FIXED_SECONDS;
    const struct {
        const char *model, *scheme;
        double evaluations;
    } want[] = {{"<train:b>", "baseline", 1}, {"<train:p1>", "v1", 1}, {"<train:p2>", "v2", 2},
                {"<train:p3>", "v3", 2}, {"<finetune:ft<train:p2>>", "v2", 2}, {"<distill:st<train:p2>>", "baseline", 1}};
    int seen = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        if (strcmp(t->kind, "prune") != 0) continue;
        for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
            const char *at = strstr(t->key, want[k].model);
            if (!at || strcmp(at, want[k].model) != 0) continue;
            cr_expect_str_eq(rn_model_scheme(t, &c, "model"), want[k].scheme, "%s", t->key);
            cr_expect_float_eq(t->cost, want[k].evaluations * one + fixed, 1e-9, "%s: %g", t->key, t->cost);
            seen++;
        }
    }
    cr_assert_eq(seen, 6);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* The owner's accuracy that an attack or a distillation takes first is of
 * the checkpoint as loaded: a small model's checkpoint from a task of the
 * spec carries it (core/model/evalrec.h), so it costs nothing; resnet18-p
 * evaluates in the caller's batch, so its record may not fit. finetune and
 * advtrain take it of the deployed network, for which a v1 model's passports
 * become an ordinary affine: other weights, no record. Without the task list
 * nothing is known to be recorded: each kind then costs exactly one
 * evaluation more, except those of the deployed v1. */
Test(sizing, owner_accuracies_a_record_answers_cost_nothing) {
    rn_spec s;
    rn_diags d;
    const char *text = "name: owners\ndata: {source: \"synthetic:64\", train_limit: 4000, test_limit: 2000}\n"
                       "models:\n  - {name: b}\n  - {name: p1, scheme: v1}\n  - {name: p2, scheme: v2}\n"
                       "  - {name: r, arch: resnet18-p, scheme: v1}\ntasks:\n"
                       "  - {name: erb, kind: erb, model: [p1, p2, r], epochs: 1, batch: 16}\n"
                       "  - {name: ft, kind: finetune, model: [b, p1, p2], epochs: 1}\n"
                       "  - {name: f2, kind: fake2, model: p1, epochs: 1}\n"
                       "  - {name: f3, kind: fake3, model: p2, epochs: 1}\n"
                       "  - {name: adv, kind: advtrain, model: [b, p1], epochs: 1, steps: 2, adv_eval: 100}\n"
                       "  - {name: st, kind: distill, model: b, epochs: 1}\n"
                       "  - {name: ex, kind: extract, model: p1, epochs: 1, queries: 500}\n";
    cr_assert_eq(load(&s, &d, text, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
    rn_ctx c = {.tasks = s.tasks, .train_limit = 4000, .test_limit = 2000}, none = c;
    none.tasks = NULL;
    const double small = rn_infer_seconds("small-p", 2000), big = rn_infer_seconds("resnet18-p", 2000);
    const struct {
        const char *name, *model;
        double owner; /* what the owner's accuracy costs */
        double extra; /* what it costs more when nothing is known to be recorded */
    } want[] = {{"erb", "<train:p1>", 0, small},   {"erb", "<train:p2>", 0, small},  {"erb", "<train:r>", big, 0},
                {"ft", "<train:b>", 0, small},     {"ft", "<train:p1>", small, 0},   {"ft", "<train:p2>", 0, small},
                {"f2", "<train:p1>", 0, small},    {"f3", "<train:p2>", 0, small},   {"adv", "<train:b>", 0, small},
                {"adv", "<train:p1>", small, 0},   {"st", "<train:b>", 0, small},    {"ex", "<train:p1>", 0, small}};
    int seen = 0;
    for (int i = 0; i < s.ntasks; i++) {
        const rn_task *t = &s.tasks[i];
        for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
            const char *at = strstr(t->key, want[k].model);
            if (strcmp(t->name, want[k].name) != 0 || !at || strcmp(at, want[k].model) != 0) continue;
            const int deployed = !strcmp(t->kind, "finetune") || !strcmp(t->kind, "advtrain");
            cr_expect_float_eq(rn_owner_eval_seconds(t, &c, "model", deployed), want[k].owner, 1e-12, "%s", t->key);
            if (!strcmp(want[k].model, "<train:r>")) continue; /* without the list, r would be costed as small-p */
            cr_expect_float_eq(t->k->cost(t, &none) - t->cost, want[k].extra, 1e-9, "%s", t->key);
            seen++;
        }
    }
    cr_assert_eq(seen, 11);
    rn_spec_free(&s);
    rn_diags_free(&d);
}

/* A training step's fixed part (rn_batch_factor): nothing at the rows'
 * minibatch, RN_STEP_IMAGES images' worth on the rows' machine, and what an
 * architecture's two calibrated training speeds give once they are measured,
 * for that architecture alone; never a negative part, never an infinite one. */
Test(sizing, small_minibatches_cost_the_calibrated_fixed_part_of_a_step) {
    const double k0 = RN_STEP_IMAGES, B = RN_ROW_BATCH;
    const double r16 = (16 + k0) / 16 / ((B + k0) / B);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", RN_ROW_BATCH), 1, 1e-12);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", 16), r16, 1e-12);
    cr_assert(rn_batch_factor("alexnet-p", 1) > rn_batch_factor("alexnet-p", 16));
    const rn_arch_speed *row = rn_arch("alexnet-p");
    const double small = rn_row_speed(row, RN_SPEED_TRAIN_SMALL);
    cr_assert_float_eq(small, row->train_per_s / r16, 1e-9);
    double f[RN_SPEEDS];
    /* both speeds at half the rows': the same fixed part */
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){row->train_per_s / 2, 0, 0, small / 2}, f);
    cr_assert_float_eq(f[RN_SPEED_TRAIN_SMALL], 0.5, 1e-12);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", 16), r16, 1e-9);
    /* minibatches of 16 as fast per image as of 64: no fixed part, at any batch */
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){row->train_per_s, 0, 0, row->train_per_s}, NULL);
    for (int b = 1; b <= 256; b *= 4) cr_assert_float_eq(rn_batch_factor("alexnet-p", b), 1, 1e-9, "batch %d", b);
    /* faster per image in small minibatches: no negative part */
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){row->train_per_s, 0, 0, 2 * row->train_per_s}, NULL);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", 16), 1, 1e-12);
    /* a fixed part of 22 images: 16 images take 38/16 over 86/64 the time per image, 4 take 26/4 over 86/64 */
    const double r22 = (16 + 22.0) / 16 / ((B + 22) / B);
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){row->train_per_s, 0, 0, row->train_per_s / r22},
                               NULL);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", 16), r22, 1e-9);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", 4), (4 + 22.0) / 4 / ((B + 22) / B), 1e-9);
    cr_assert_float_eq(rn_batch_factor("small-p", 16), r16, 1e-12, "the other rows keep theirs");
    /* 16 images as slow as 64: all fixed part, capped */
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){row->train_per_s, 0, 0, row->train_per_s / 4}, NULL);
    cr_assert(isfinite(rn_batch_factor("alexnet-p", 16)) && rn_batch_factor("alexnet-p", 16) > 3.5);
    rn_cost_set_measured_speed("alexnet-p", (double[RN_SPEEDS]){0}, NULL);
    cr_assert_float_eq(rn_batch_factor("alexnet-p", 16), r16, 1e-12);
}

/* A shard of shuffle fakes pays the key pool once when its activations fit
 * the feature cache (core/passport/passport_keys.h, ip_keygen_caches), else
 * 40 images per fake, as image keys pay 2: the cost model asks the key
 * generator's own rule, at the architecture's key_floats per image. */
Test(sizing, shuffle_keys_cost_the_pool_once_when_it_is_cached) {
    const double share = rn_arch("small-p")->key_mflop / rn_arch("small-p")->mflop;
    const long pools[] = {12000, 60000}; /* small-p: 451 MB, cached; 2.3 GB, not */
    for (int i = 0; i < 2; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "name: keys\ndata: {source: \"synthetic:64\", train_limit: %ld}\nmodels:\n  - {name: base}\n"
                 "  - {name: pv, scheme: v1}\ntasks:\n  - {name: f, kind: fake1, model: pv, reference: base, "
                 "key_type: [image, shuffle], passports: 2500, eval_images: 1000, mode: screen}\n",
                 pools[i]);
        rn_spec s;
        rn_diags d;
        cr_assert_eq(load(&s, &d, text, NULL, 0), 0, "%s", d.n ? d.v[0].msg : "");
        const rn_task *image = NULL, *shuffle = NULL;
        for (int k = 0; k < s.ntasks; k++) {
            if (s.tasks[k].shard == RN_MERGE) continue;
            if (strstr(s.tasks[k].key, "key_type=image")) image = &s.tasks[k];
            if (strstr(s.tasks[k].key, "key_type=shuffle")) shuffle = &s.tasks[k];
        }
        cr_assert(image && shuffle, "pool %ld: the two fake1 tasks", pools[i]);
        int cached = ip_keygen_caches(IP_KEY_SHUFFLE, 0, (size_t)rn_arch("small-p")->key_floats, (size_t)pools[i]);
        cr_assert_eq(cached, i == 0, "pool %ld", pools[i]);
        double shuffle_images = cached ? (double)pools[i] : 2500.0 * 2 * IP_SHUFFLE_IMAGES;
        double want = rn_infer_seconds("small-p", (shuffle_images - 2500.0 * 2) * share);
        cr_expect_float_eq(shuffle->cost - image->cost, want, 1e-9, "pool %ld: %g - %g", pools[i], shuffle->cost,
                           image->cost);
        rn_spec_free(&s);
        rn_diags_free(&d);
    }
}
