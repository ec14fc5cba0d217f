/* Progress: the ETA's arithmetic (cost model, measured speed, workers, the
 * longest running task), h:mm:ss, the resume command, the status line as
 * notes and results arrive, the notes' wire format and the core's hook. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/util/progress.h"
#include "../runner/run/progress.h"
#include "../runner/run/wire.h"

Test(progress, eta_from_the_cost_model_shared_by_the_workers) {
    /* nothing measured yet: the cost model as it is */
    rn_eta_in in = {.left = 100, .longest = 10, .workers = 2, .tasks_left = 3};
    cr_assert_float_eq(rn_eta_seconds(&in), 50, 1e-9);
    /* measured at half the estimates: half the time */
    in.measured = 30, in.estimated = 60;
    cr_assert_float_eq(rn_eta_seconds(&in), 25, 1e-9);
    /* never less than the longest running task's rest: it runs on one rank */
    in = (rn_eta_in){.left = 100, .longest = 40, .workers = 4, .tasks_left = 2, .measured = 20, .estimated = 10};
    cr_assert_float_eq(rn_eta_seconds(&in), 80, 1e-9);
    /* never less than the tasks left at the best rate tasks ever finished (tiny tasks) */
    in = (rn_eta_in){.left = 1, .workers = 2, .tasks_left = 1000, .peak_rate = 50};
    cr_assert_float_eq(rn_eta_seconds(&in), 20, 1e-9);
    in.left = 100;
    cr_assert_float_eq(rn_eta_seconds(&in), 50, 1e-9);
    /* no worker count: one */
    in = (rn_eta_in){.left = 100, .workers = 0, .tasks_left = 1};
    cr_assert_float_eq(rn_eta_seconds(&in), 100, 1e-9);
}

Test(progress, eta_when_nothing_is_left_or_nothing_is_known) {
    rn_eta_in in = {.left = 5, .workers = 1, .tasks_left = 0};
    cr_assert_float_eq(rn_eta_seconds(&in), 0, 0);
    /* estimates all 0 (noop tasks): the rate so far, 5 tasks in 2 s, 10 left */
    in = (rn_eta_in){.left = 0, .workers = 2, .tasks_left = 10, .tasks_done = 5, .elapsed = 2};
    cr_assert_float_eq(rn_eta_seconds(&in), 4, 1e-9);
    /* neither estimates nor a rate */
    in = (rn_eta_in){.left = 0, .workers = 2, .tasks_left = 10};
    cr_assert_lt(rn_eta_seconds(&in), 0);
}

Test(progress, hms) {
    char b[32];
    cr_assert_str_eq(rn_format_hms(0, b, sizeof b), "0:00:00");
    cr_assert_str_eq(rn_format_hms(59.6, b, sizeof b), "0:01:00");
    cr_assert_str_eq(rn_format_hms(3725, b, sizeof b), "1:02:05");
    cr_assert_str_eq(rn_format_hms(97380, b, sizeof b), "27:03:00");
    cr_assert_str_eq(rn_format_hms(-1, b, sizeof b), "?");
    cr_assert_str_eq(rn_format_hms(NAN, b, sizeof b), "?");
    cr_assert_str_eq(rn_format_hms(1e30, b, sizeof b), ">1e9 h");
}

Test(progress, resume_command_repeats_the_run_arguments) {
    char b[256];
    char *args[] = {"configs/quick.yaml", "--force", "--set", "output=a b.h5", "--threads", "2", "--set", "name=it's"};
    cr_assert_str_eq(rn_resume_command(b, sizeof b, 8, args),
                     "ipsweep run configs/quick.yaml --set 'output=a b.h5' --threads 2 --set 'name=it'\\''s' --resume");
    char *again[] = {"s.yaml", "--resume", "--set", "data.train_limit=2000"};
    cr_assert_str_eq(rn_resume_command(b, sizeof b, 4, again),
                     "ipsweep run s.yaml --set data.train_limit=2000 --resume");
    char small[16]; /* truncated, never overrun */
    rn_resume_command(small, sizeof small, 4, again);
    cr_assert_eq(strlen(small), sizeof small - 1);
}

/* Four tasks of 100 estimated seconds each (1 thread on 1 core: the wall is the cost), 2 workers. */
typedef struct fixture {
    rn_spec spec;
    rn_task tasks[4];
    char keys[4][24];
    rn_progress p;
    FILE *f;
} fixture;

static void fixture_init(fixture *x) {
    memset(x, 0, sizeof *x);
    for (int i = 0; i < 4; i++) {
        snprintf(x->keys[i], sizeof x->keys[i], "noop:t[i=%d]", i);
        x->tasks[i].id = i, x->tasks[i].key = x->keys[i], x->tasks[i].cost = 100;
    }
    x->spec.tasks = x->tasks, x->spec.ntasks = 4;
    rn_sizing z = {.threads = 1, .cores = 1, .workers = 2};
    x->f = tmpfile();
    cr_assert_not_null(x->f);
    ip_err e = {{0}};
    cr_assert_eq(rn_progress_init(&x->p, x->f, &x->spec, NULL, &z, &e), 0, "%s", e.msg);
    cr_assert_eq(x->p.tty, 0);
}

static void fixture_free(fixture *x) {
    rn_progress_free(&x->p);
    fclose(x->f);
}

static rn_task_progress note(int task, double fraction, double seconds) {
    return (rn_task_progress){task, fraction, seconds};
}

Test(progress, status_line_as_notes_and_results_arrive) {
    fixture x;
    fixture_init(&x);
    char line[512];
    double t0 = x.p.t0;
    rn_progress_started(&x.p, &x.tasks[0]);
    rn_progress_started(&x.p, &x.tasks[1]);
    /* no note yet: the cost model's 400 s on 2 workers, said to be unmeasured */
    cr_assert_str_eq(rn_progress_line(&x.p, t0 + 1, 0, line, sizeof line),
                     "0/4 done, 0 failed, 0 skipped, 2 running | 0% of the work | ETA 0:03:20 (cost model) | "
                     "elapsed 0:00:01 | 0 tasks/s");
    /* task 0 went from 10% at 5 s to 60% at 25 s: 20 s for 50 estimated, speed 0.4;
     * left 400 - 60 = 340, on 2 workers 170 (more than task 1's 100): ETA 68 s */
    rn_task_progress n1 = note(0, 0.1, 5), n2 = note(0, 0.6, 25);
    rn_progress_note(&x.p, &n1);
    rn_progress_note(&x.p, &n2);
    cr_assert_str_eq(rn_progress_line(&x.p, t0 + 30, 0, line, sizeof line),
                     "0/4 done, 0 failed, 0 skipped, 2 running (60%) | 15% of the work | ETA 0:01:08 | "
                     "elapsed 0:00:30 | 0 tasks/s");
    /* on a terminal the percentage and the ETA come first */
    cr_assert_str_eq(rn_progress_line(&x.p, t0 + 30, 1, line, sizeof line),
                     "15% ETA 0:01:08 | 0/4 done, 0 failed, 0 skipped, 2 running (60%) | elapsed 0:00:30 | 0 tasks/s");
    /* task 0 ends after 40 s: measured from its first note, 35 s for 90 estimated; left 300 on 2
     * workers: 150 * 35 / 90 = 58.3 s */
    rn_result r = {.task = 0, .status = RN_DONE, .rank = 1, .wall_seconds = 40};
    ip_metrics_init(&r.metrics);
    cr_assert_eq(ip_metrics_set(&r.metrics, "value", 0, NULL), 0);
    rn_progress_finished(&x.p, &x.tasks[0], &r);
    ip_metrics_free(&r.metrics);
    cr_assert_str_eq(rn_progress_line(&x.p, t0 + 40, 0, line, sizeof line),
                     "1/4 done, 0 failed, 0 skipped, 1 running | 25% of the work | ETA 0:00:58 | "
                     "elapsed 0:00:40 | 0.025 tasks/s");
    /* a note that arrives after its task's result changes nothing */
    rn_task_progress late = note(0, 0.9, 39);
    rn_progress_note(&x.p, &late);
    cr_assert_eq(x.p.nrun, 1);
    cr_assert_str_eq(rn_progress_line(&x.p, t0 + 40, 0, line, sizeof line),
                     "1/4 done, 0 failed, 0 skipped, 1 running | 25% of the work | ETA 0:00:58 | "
                     "elapsed 0:00:40 | 0.025 tasks/s");
    /* the task's own line */
    rewind(x.f);
    char got[256] = "";
    cr_assert_not_null(fgets(got, sizeof got, x.f));
    cr_assert_str_eq(got, "[1/4] done    noop:t[i=0] (40s, rank 1) value=0\n");
    fixture_free(&x);
}

Test(progress, a_resumed_task_is_measured_from_its_first_note) {
    fixture x;
    fixture_init(&x);
    char line[512];
    double t0 = x.p.t0;
    rn_progress_started(&x.p, &x.tasks[0]);
    /* resumed from its state at 50%: its first note says 50% after 1 s, then 75% at 11 s (10 s for 25) */
    rn_task_progress n1 = note(0, 0.5, 1), n2 = note(0, 0.75, 11);
    rn_progress_note(&x.p, &n1);
    rn_progress_note(&x.p, &n2);
    /* left 400 - 75 = 325 on 2 workers at speed 0.4: 65 s */
    cr_assert_str_eq(rn_progress_line(&x.p, t0 + 12, 0, line, sizeof line),
                     "0/4 done, 0 failed, 0 skipped, 1 running (75%) | 19% of the work | ETA 0:01:05 | "
                     "elapsed 0:00:12 | 0 tasks/s");
    fixture_free(&x);
}

Test(progress, notes_on_the_wire) {
    unsigned char m[RN_PROGRESS_MSG_BYTES];
    rn_task_progress in = {12345, 0.25, 3.5}, out;
    rn_pack_progress(m, &in);
    cr_assert_eq(rn_unpack_progress(m, sizeof m, &out), 0);
    cr_assert_eq(out.task, 12345);
    cr_assert_float_eq(out.fraction, 0.25, 0);
    cr_assert_float_eq(out.seconds, 3.5, 0);
    cr_assert_eq(rn_unpack_progress(m, sizeof m - 1, &out), -1);
    rn_task_progress bad[] = {{-1, 0.5, 1}, {1, 1.5, 1}, {1, NAN, 1}, {1, 0.5, -1}, {1, 0.5, INFINITY}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rn_pack_progress(m, &bad[i]);
        cr_assert_eq(rn_unpack_progress(m, sizeof m, &out), -1, "case %zu", i);
    }
}

static double seen[8];
static int nseen;
static void count_note(void *user, double fraction) {
    (void)user;
    if (nseen < 8) seen[nseen] = fraction;
    nseen++;
}

Test(progress, core_hook_rate_limits_and_clamps) {
    nseen = 0;
    ip_progress_note(1, 2); /* no hook: nothing */
    ip_progress_set_hook(count_note, NULL, 0);
    ip_progress_note(5, 10);
    ip_progress_note(1, 0);  /* no total: ignored */
    ip_progress_note(12, 10); /* clamped */
    cr_assert_eq(nseen, 2);
    cr_assert_float_eq(seen[0], 0.5, 0);
    cr_assert_float_eq(seen[1], 1, 0);
    ip_progress_set_hook(count_note, NULL, 1000);
    ip_progress_note(1, 10); /* the first after setting: at once */
    ip_progress_note(2, 10); /* within the interval: dropped */
    ip_progress_reset();     /* a new task: at once again */
    ip_progress_note(3, 10);
    ip_progress_set_hook(NULL, NULL, 0);
    ip_progress_note(4, 10);
    cr_assert_eq(nseen, 4);
    cr_assert_float_eq(seen[2], 0.1, 1e-12);
    cr_assert_float_eq(seen[3], 0.3, 1e-12);
}
