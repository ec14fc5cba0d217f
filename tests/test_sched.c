/* Scheduler (serial path): dependency order, longest-path-first, failures
 * skipping their dependents, resumed statuses respected; and the result
 * wire format the MPI path uses. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/tasks/tasks.h"
#include "../runner/run/sched.h"
#include "../runner/run/wire.h"

/* A hand-built spec of noop tasks: deps given as -1-terminated lists. */
static char task_keys[64][32];
static int task_deps[64][3];

static void make_spec(rn_spec *s, int n, const int deps[][3], const double *cost, const int *fail) {
    memset(s, 0, sizeof *s);
    s->tasks = calloc((size_t)n, sizeof *s->tasks);
    s->ntasks = n;
    for (int i = 0; i < n; i++) {
        rn_task *t = &s->tasks[i];
        cr_assert_eq(rn_task_init(t, rn_kind_find("noop")), 0);
        t->id = i;
        snprintf(task_keys[i], sizeof task_keys[i], "noop:t[i=%d]", i);
        t->key = task_keys[i];
        t->name = "t";
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        rn_task_set(t, "value", v, 1);
        rn_task_set(t, "fail", fail && fail[i] ? "true" : "false", 0);
        t->cost = cost ? cost[i] : 1;
        for (int d = 0; d < 3 && deps[i][d] >= 0; d++) task_deps[i][t->ndeps++] = deps[i][d];
        t->deps = task_deps[i];
    }
}

static void free_spec(rn_spec *s) {
    for (int i = 0; i < s->ntasks; i++) rn_task_free(&s->tasks[i]);
    free(s->tasks);
}

typedef struct trace {
    int order[64], n;
    rn_status st[64];
    char err[64][512];
} trace;

static int on_finished(void *user, const rn_result *const *r, int n, ip_err *e) {
    (void)e;
    trace *t = user;
    for (int i = 0; i < n; i++) {
        t->order[t->n++] = r[i]->task;
        t->st[r[i]->task] = r[i]->status;
        snprintf(t->err[r[i]->task], sizeof t->err[0], "%s", r[i]->error);
        if (r[i]->status == RN_DONE)
            cr_assert_float_eq(ip_metrics_get(&r[i]->metrics, "value"), (double)r[i]->task, 0);
    }
    return 0;
}

static int position(const trace *t, int task) {
    for (int i = 0; i < t->n; i++)
        if (t->order[i] == task) return i;
    return -1;
}

Test(sched, dependencies_run_first_and_longest_path_first) {
    /* 0 -> 1 -> 2 (a long chain), 3 alone (cheap), 4 depends on 0 and 3 */
    const int deps[5][3] = {{-1}, {0, -1}, {1, -1}, {-1}, {0, 3, -1}};
    const double cost[5] = {1, 5, 5, 1, 1};
    rn_spec s;
    make_spec(&s, 5, deps, cost, NULL);
    rn_status st[5] = {0};
    trace t = {0};
    rn_sched_hooks h = {.user = &t, .finished = on_finished};
    rn_ctx ctx = {0};
    ip_err e;
    cr_assert_eq(rn_sched_run(&s, &ctx, st, &h, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(t.n, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(st[i], RN_DONE);
        for (int d = 0; d < s.tasks[i].ndeps; d++)
            cr_assert_lt(position(&t, s.tasks[i].deps[d]), position(&t, i), "task %d ran before its dependency", i);
    }
    cr_assert_eq(t.order[0], 0, "the head of the longest chain must start first");
    free_spec(&s);
}

Test(sched, failure_skips_dependents_and_the_rest_goes_on) {
    const int deps[5][3] = {{-1}, {0, -1}, {1, -1}, {-1}, {3, -1}};
    const int fail[5] = {0, 1, 0, 0, 0};
    rn_spec s;
    make_spec(&s, 5, deps, NULL, fail);
    rn_status st[5] = {0};
    trace t = {0};
    rn_sched_hooks h = {.user = &t, .finished = on_finished};
    rn_ctx ctx = {0};
    ip_err e;
    cr_assert_eq(rn_sched_run(&s, &ctx, st, &h, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(st[0], RN_DONE);
    cr_assert_eq(st[1], RN_FAILED);
    cr_assert(strstr(t.err[1], "on purpose"), "%s", t.err[1]);
    cr_assert_eq(st[2], RN_SKIPPED);
    cr_assert(strstr(t.err[2], "noop:t[i=1]"), "skip message must name the failed dependency: %s", t.err[2]);
    cr_assert_eq(st[3], RN_DONE);
    cr_assert_eq(st[4], RN_DONE);
    cr_assert_eq(t.n, 5, "every task reported once");
    free_spec(&s);
}

Test(sched, resumed_statuses_are_respected) {
    const int deps[3][3] = {{-1}, {0, -1}, {-1}};
    rn_spec s;
    make_spec(&s, 3, deps, NULL, NULL);
    rn_status st[3] = {RN_DONE, RN_PENDING, RN_FAILED};
    trace t = {0};
    rn_sched_hooks h = {.user = &t, .finished = on_finished};
    rn_ctx ctx = {0};
    ip_err e;
    cr_assert_eq(rn_sched_run(&s, &ctx, st, &h, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(t.n, 1, "only the pending task runs");
    cr_assert_eq(t.order[0], 1);
    cr_assert_eq(st[1], RN_DONE);
    free_spec(&s);
}

Test(sched, result_wire_round_trip) {
    rn_result r = {.task = 42, .status = RN_FAILED, .rank = 3, .wall_seconds = 1.25};
    snprintf(r.error, sizeof r.error, "tab\there");
    ip_metrics_init(&r.metrics);
    ip_metrics_set(&r.metrics, "test_acc", 0.875, NULL);
    ip_metrics_set(&r.metrics, "nan", NAN, NULL);
    double arr[1000];
    for (int i = 0; i < 1000; i++) arr[i] = i * 0.5;
    ip_metrics_set_array(&r.metrics, "fake_acc", arr, 1000, NULL);
    rn_buf b = {0};
    cr_assert_eq(rn_pack_result(&b, &r), 0);
    cr_assert_eq(rn_pack_result(&b, &r), 0);
    for (int k = 0; k < 2; k++) {
        rn_result q;
        cr_assert_eq(rn_unpack_result(&b, &q), 0);
        cr_assert_eq(q.task, 42);
        cr_assert_eq(q.status, RN_FAILED);
        cr_assert_eq(q.rank, 3);
        cr_assert_eq(q.wall_seconds, 1.25);
        cr_assert_str_eq(q.error, "tab\there");
        cr_assert_eq(ip_metrics_get(&q.metrics, "test_acc"), 0.875);
        cr_assert(isnan(ip_metrics_get(&q.metrics, "nan")));
        cr_assert_eq(q.metrics.narrays, 1);
        cr_assert_eq(q.metrics.arrays[0].n, 1000);
        cr_assert_eq(memcmp(q.metrics.arrays[0].v, arr, sizeof arr), 0);
        ip_metrics_free(&q.metrics);
    }
    rn_result q;
    cr_assert_neq(rn_unpack_result(&b, &q), 0, "reading past the end must fail");
    b.len -= 3; /* a truncated message */
    b.pos = 0;
    rn_result q2;
    cr_assert_eq(rn_unpack_result(&b, &q2), 0);
    ip_metrics_free(&q2.metrics);
    cr_assert_neq(rn_unpack_result(&b, &q2), 0, "a truncated result must fail cleanly");
    rn_buf_free(&b);
    ip_metrics_free(&r.metrics);
}

/* A task travels to a worker packed with its typed values (wire.h). */
Test(wire, task_round_trip) {
    rn_task t;
    cr_assert_eq(rn_task_init(&t, rn_kind_find("train")), 0);
    t.id = 7, t.seed = 99, t.checkpoint = "out/m.h5";
    cr_assert_eq(rn_task_set(&t, "lr", "1e-2", 1), 0);
    cr_assert_eq(rn_task_set(&t, "milestones", "3,5", 0), 0);
    cr_assert_eq(rn_task_set(&t, "signature", "owner", 0), 0);
    cr_assert_eq(rn_task_set(&t, "scheme", "v2", 0), 0);
    rn_buf b = {0};
    cr_assert_eq(rn_pack_task(&b, &t), 0);
    ip_arena a = {0};
    rn_task u;
    cr_assert_eq(rn_unpack_task(&b, &u, &a), 0);
    cr_assert_eq(u.id, 7);
    cr_assert_eq(u.seed, 99);
    cr_assert_eq(u.k, t.k);
    cr_assert_str_eq(u.checkpoint, "out/m.h5");
    cr_assert_eq(rn_task_val(&u, "lr")->u.f, 0.01);
    cr_assert_str_eq(rn_task_val(&u, "lr")->text, "", "texts are for people: they do not travel");
    cr_assert_eq(rn_task_val(&u, "milestones")->u.list[0], 2);
    cr_assert_eq(rn_task_val(&u, "milestones")->u.list[2], 5);
    cr_assert_str_eq(rn_task_val(&u, "signature")->u.s, "owner");
    cr_assert_eq(rn_task_val(&u, "scheme")->u.i, 2);
    /* the filled core structs are the same */
    rn_ctx ctx = {.data_source = "synthetic:8", .threads = 1};
    ip_train_task x, y;
    ip_err e = {{0}};
    cr_assert_eq(rn_task_fill(&t, &ctx, &x, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_task_fill(&u, &ctx, &y, &e), 0, "%s", e.msg);
    cr_assert_eq(memcmp(&x, &y, sizeof x), 0);
    cr_assert_eq(x.train.opt.nmilestones, 2);
    cr_assert_eq(x.model.scheme, IP_SCHEME_V2);
    cr_assert_eq(x.seed, 99);
    cr_assert_eq(x.train.seed, 99);
    /* a truncated buffer fails cleanly */
    b.pos = 0;
    b.len -= 3;
    ip_arena a2 = {0};
    cr_assert_neq(rn_unpack_task(&b, &u, &a2), 0);
    ip_arena_free(&a2);
    ip_arena_free(&a);
    rn_buf_free(&b);
    rn_task_free(&t);
}
