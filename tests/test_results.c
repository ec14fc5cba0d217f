/* The run journal (exact round trips, torn and corrupt lines, start counts
 * and crash-twice detection, spec-hash checks, batches) and the HDF5 results
 * file (documented layout read back with the HDF5 C API, atomic rewrites,
 * h5dump and h5py). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner/run/journal.h"
#include "../runner/kinds/kinds.h"
#include "../runner/run/results.h"
#include "testutil.h"

/* Two small kinds of the fixtures' own (the results file takes its columns
 * from whatever kind a task has): "train" with seed and epochs, "eval" with
 * an `attack` name besides. */
typedef struct fake_task {
    int seed, epochs;
    char attack[16];
} fake_task;
static const ip_param fake_train_rows[] = {
    P_INT(fake_task, "seed", IP_F_INT, seed, 1, 0, 1000, "seed"),
    P_INT(fake_task, "epochs", IP_F_INT, epochs, 1, 0, 1000, "epochs"),
};
static const ip_param fake_eval_rows[] = {
    P_INT(fake_task, "seed", IP_F_INT, seed, 1, 0, 1000, "seed"),
    P_INT(fake_task, "epochs", IP_F_INT, epochs, 1, 0, 1000, "epochs"),
    P_STR(fake_task, "attack", attack, "", "attack"),
};
static const ip_task_def fake_train_def = {
    .name = "train",
    .doc = "",
    IP_ROWS(fake_train_rows),
    .size = sizeof(fake_task),
};
static const ip_task_def fake_eval_def = {
    .name = "eval",
    .doc = "",
    IP_ROWS(fake_eval_rows),
    .size = sizeof(fake_task),
};
static const rn_kind fake_train_kind = {&fake_train_def, RN_OUT_MODEL, NULL, NULL, NULL};
static const rn_kind fake_eval_kind = {&fake_eval_def, RN_OUT_NONE, NULL, NULL, NULL};

/* ------------------------------------------------------------------------- */
/* helpers                                                                   */

static char tdir[64];

static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "res")); }

static void remove_dir(void) { tu_rmtree(tdir); }

TestSuite(journal, .init = make_dir, .fini = remove_dir);
TestSuite(results, .init = make_dir, .fini = remove_dir);

static const char *tpath(const char *name) { return tu_path(tdir, name); }

static const char *jpath(const char *output) {
    static char b[1100];
    cr_assert_eq(rn_journal_path(b, sizeof b, output), 0);
    return b;
}

static int same_double(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) && !!signbit(a) == !!signbit(b);
    return memcmp(&a, &b, sizeof a) == 0;
}

static void check_same_record(const rn_record *a, const rn_record *b) {
    cr_assert_str_eq(a->key, b->key);
    cr_assert_eq(a->status, b->status);
    cr_assert_eq(a->rank, b->rank);
    cr_assert(same_double(a->wall_seconds, b->wall_seconds), "wall %.17g vs %.17g", a->wall_seconds, b->wall_seconds);
    cr_assert_eq(a->attempts, b->attempts);
    cr_assert_str_eq(a->error, b->error);
    cr_assert_eq(a->metrics.nscalars, b->metrics.nscalars);
    for (int i = 0; i < a->metrics.nscalars; i++) {
        cr_assert_str_eq(a->metrics.names[i], b->metrics.names[i]);
        cr_assert(same_double(a->metrics.values[i], b->metrics.values[i]), "scalar %s: %.17g vs %.17g",
                  a->metrics.names[i], a->metrics.values[i], b->metrics.values[i]);
    }
    cr_assert_eq(a->metrics.narrays, b->metrics.narrays);
    for (int i = 0; i < a->metrics.narrays; i++) {
        const ip_metric_array *x = &a->metrics.arrays[i], *y = &b->metrics.arrays[i];
        cr_assert_str_eq(x->name, y->name);
        cr_assert_eq(x->n, y->n);
        for (size_t k = 0; k < x->n; k++)
            cr_assert(same_double(x->v[k], y->v[k]), "%s[%zu]: %.17g vs %.17g", x->name, k, x->v[k], y->v[k]);
    }
}

/* A record with `ns` scalars named m0..; status done. */
static void make_rec(rn_record *r, const char *key, int ns, double base) {
    rn_record_init(r);
    snprintf(r->key, sizeof r->key, "%s", key);
    r->status = RN_DONE;
    r->rank = 1;
    r->wall_seconds = 0.5 + base;
    r->attempts = 1;
    for (int i = 0; i < ns; i++) {
        char n[16];
        snprintf(n, sizeof n, "m%d", i);
        cr_assert_eq(ip_metrics_set(&r->metrics, n, base + i / 7.0, NULL), 0);
    }
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* ------------------------------------------------------------------------- */
/* journal                                                                   */

Test(journal, round_trip_exact) {
    const char *out = tpath("r.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 0x1234abcdULL, 1, &e), 0, "%s", e.msg);
    rn_record r[3];
    make_rec(&r[0], "train:base[seed=1]", 4, 0.1);
    ip_metrics_set(&r[0].metrics, "nan", NAN, NULL);
    ip_metrics_set(&r[0].metrics, "negnan", -NAN, NULL);
    ip_metrics_set(&r[0].metrics, "inf", INFINITY, NULL);
    ip_metrics_set(&r[0].metrics, "ninf", -INFINITY, NULL);
    ip_metrics_set(&r[0].metrics, "negzero", -0.0, NULL);
    ip_metrics_set(&r[0].metrics, "tiny", 4.9406564584124654e-324, NULL);
    ip_metrics_set(&r[0].metrics, "big", 1.7976931348623157e308, NULL);
    ip_metrics_set(&r[0].metrics, "third", 1.0 / 3.0, NULL);
    double ep[5] = {0.1, 0.25, NAN, INFINITY, -1e-300};
    cr_assert_eq(ip_metrics_set_array(&r[0].metrics, "epoch_test_acc", ep, 5, NULL), 0);
    cr_assert_eq(ip_metrics_set_array(&r[0].metrics, "empty", NULL, 0, NULL), 0);
    /* 100,000 values */
    size_t nbig = 100000;
    double *big = malloc(nbig * sizeof *big);
    uint64_t s = 88172645463325252ULL;
    for (size_t i = 0; i < nbig; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        big[i] = (double)(s >> 11) * 0x1.0p-53 * (i % 3 ? 1 : -1e5);
    }
    cr_assert_eq(ip_metrics_set_array(&r[0].metrics, "fake_passport_acc", big, nbig, NULL), 0);
    free(big);
    /* strings with tabs, newlines, CR and backslashes everywhere */
    make_rec(&r[1], "eval:odd\tkey\nwith\\escapes\r[x=\\t]", 1, 2);
    r[1].status = RN_FAILED;
    r[1].rank = 7;
    r[1].attempts = 2;
    snprintf(r[1].error, sizeof r[1].error, "line one\nline\ttwo \\n not a newline\\");
    ip_metrics_set(&r[1].metrics, "we\tird\nname\\", 42, NULL);
    make_rec(&r[2], "prune:p[rate=0.3]<base>", 0, 3);
    r[2].status = RN_SKIPPED;
    r[2].rank = -1;
    r[2].wall_seconds = NAN;
    r[2].attempts = 0;
    snprintf(r[2].error, sizeof r[2].error, "dependency train:base failed");
    cr_assert_eq(rn_journal_finish(&j, &r[0], &e), 0, "%s", e.msg);
    const rn_record *two[2] = {&r[1], &r[2]};
    cr_assert_eq(rn_journal_finish_many(&j, two, 2, &e), 0, "%s", e.msg);
    rn_journal_close(&j);

    rn_journal_state st;
    cr_assert_eq(rn_journal_read(out, 0x1234abcdULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 3);
    cr_assert_eq(st.torn, 0);
    cr_assert_eq(st.nunfinished, 0);
    for (int i = 0; i < 3; i++) check_same_record(&st.recs[i], &r[i]);
    const rn_record *f = rn_journal_state_find(&st, r[1].key);
    cr_assert_not_null(f);
    cr_assert_str_eq(f->error, r[1].error);
    cr_assert_null(rn_journal_state_find(&st, "nope"));
    /* a deep copy is equal too */
    rn_record cp;
    cr_assert_eq(rn_record_copy(&cp, &st.recs[0], &e), 0);
    check_same_record(&cp, &r[0]);
    rn_record_free(&cp);
    rn_journal_state_free(&st);
    for (int i = 0; i < 3; i++) rn_record_free(&r[i]);
}

Test(journal, torn_last_line_ignored_then_cut_on_resume) {
    const char *out = tpath("t.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 7, 1, &e), 0, "%s", e.msg);
    rn_record r[3];
    for (int i = 0; i < 3; i++) {
        char k[32];
        snprintf(k, sizeof k, "train:t[i=%d]", i);
        make_rec(&r[i], k, 3, i);
        cr_assert_eq(rn_journal_start(&j, k, 1, &e), 0);
        cr_assert_eq(rn_journal_finish(&j, &r[i], &e), 0, "%s", e.msg);
    }
    rn_journal_close(&j);
    const char *jp = jpath(out);
    long sz = file_size(jp);
    cr_assert_eq(truncate(jp, sz - 5), 0); /* kill -9 in the middle of the last write */
    rn_journal_state st;
    cr_assert_eq(rn_journal_read(out, 7, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 2);
    cr_assert_eq(st.torn, 1);
    /* the third task was started but its finish is lost */
    cr_assert_eq(st.nunfinished, 1);
    cr_assert_str_eq(st.unfinished[0].key, "train:t[i=2]");
    cr_assert_eq(st.unfinished[0].starts, 1);
    rn_journal_state_free(&st);

    /* a cut right after the CRC but before '\n' is torn too */
    /* resume: the torn tail is cut, new lines are not glued to it */
    cr_assert_eq(rn_journal_open(&j, out, 7, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_attempts(&j, "train:t[i=2]"), 1);
    cr_assert_eq(rn_journal_start(&j, r[2].key, 3, &e), 0);
    cr_assert_eq(rn_journal_attempts(&j, "train:t[i=2]"), 2);
    r[2].attempts = 0; /* let the journal fill in its count */
    cr_assert_eq(rn_journal_finish(&j, &r[2], &e), 0, "%s", e.msg);
    rn_journal_close(&j);
    cr_assert_eq(rn_journal_read(out, 7, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 3);
    cr_assert_eq(st.torn, 0);
    cr_assert_eq(st.nunfinished, 0);
    cr_assert_eq(st.recs[2].attempts, 2);
    cr_assert_eq(rn_journal_state_starts(&st, "train:t[i=2]"), 2);
    rn_journal_state_free(&st);

    /* only the newline missing: still torn (ignored), complete lines kept */
    sz = file_size(jp);
    cr_assert_eq(truncate(jp, sz - 1), 0);
    cr_assert_eq(rn_journal_read(out, 7, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 2);
    cr_assert_eq(st.torn, 1);
    rn_journal_state_free(&st);
    for (int i = 0; i < 3; i++) rn_record_free(&r[i]);
}

Test(journal, corrupt_middle_line_is_an_error) {
    const char *out = tpath("c.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 9, 1, &e), 0, "%s", e.msg);
    for (int i = 0; i < 4; i++) {
        rn_record r;
        char k[32];
        snprintf(k, sizeof k, "eval:e[i=%d]", i);
        make_rec(&r, k, 2, i);
        cr_assert_eq(rn_journal_finish(&j, &r, &e), 0, "%s", e.msg);
        rn_record_free(&r);
    }
    rn_journal_close(&j);
    /* flip one character inside line 3 (the second record) */
    FILE *f = fopen(jpath(out), "r+");
    cr_assert_not_null(f);
    char line[4096];
    long off = 0;
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(fgets(line, sizeof line, f));
        off += (long)strlen(line);
    }
    cr_assert_eq(fseek(f, off + 4, SEEK_SET), 0);
    int c = fgetc(f);
    cr_assert_eq(fseek(f, off + 4, SEEK_SET), 0);
    fputc(c == 'x' ? 'y' : 'x', f);
    fclose(f);
    rn_journal_state st;
    cr_assert_neq(rn_journal_read(out, 9, &st, &e), 0);
    cr_assert(strstr(e.msg, "line 3") && strstr(e.msg, "corrupt"), "%s", e.msg);
    cr_assert_eq(st.nrecs, 0);
    /* resuming on it is refused too (never silently cut valid lines) */
    cr_assert_neq(rn_journal_open(&j, out, 9, 0, &e), 0);
    cr_assert(strstr(e.msg, "line 3"), "%s", e.msg);
    rn_journal_close(&j);
}

/* Starts in a batch with other tasks ("shared") do not count toward the
 * crash-twice rule: any task of the batch may have killed the worker. */
Test(journal, shared_starts_do_not_blame) {
    const char *out = tpath("sh.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 5, 1, &e), 0, "%s", e.msg);
    for (int run = 0; run < 3; run++) cr_assert_eq(rn_journal_start_shared(&j, "A", 1, 0, &e), 0); /* in batches */
    cr_assert_eq(rn_journal_start_shared(&j, "B", 1, 0, &e), 0);
    cr_assert_eq(rn_journal_start_shared(&j, "B", 2, 1, &e), 0); /* then alone, twice */
    cr_assert_eq(rn_journal_start(&j, "B", 2, &e), 0);
    rn_journal_close(&j);
    rn_journal_state st;
    cr_assert_eq(rn_journal_read(out, 5, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nunfinished, 2);
    cr_assert_str_eq(st.unfinished[0].key, "A");
    cr_assert_eq(st.unfinished[0].starts, 3);
    cr_assert_eq(st.unfinished[0].alone, 0);
    cr_assert_eq(st.unfinished[1].alone, 2);
    cr_assert_eq(rn_journal_open(&j, out, 5, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_fail_crashed(&j, &st, &e), 1, "%s", e.msg); /* B only */
    cr_assert_null(rn_journal_state_find(&st, "A"));
    cr_assert_not_null(rn_journal_state_find(&st, "B"));
    cr_assert_eq(rn_journal_state_find(&st, "B")->attempts, 3);
    rn_journal_close(&j);
    rn_journal_state_free(&st);
}

Test(journal, starts_and_crash_twice) {
    const char *out = tpath("s.h5");
    rn_journal j;
    ip_err e = {{0}};
    /* run 1: A and B handed out, B finishes, the process dies */
    cr_assert_eq(rn_journal_open(&j, out, 5, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_start(&j, "A", 1, &e), 0);
    cr_assert_eq(rn_journal_start(&j, "B", 2, &e), 0);
    cr_assert_eq(rn_journal_start(&j, "C", 3, &e), 0);
    rn_record b;
    make_rec(&b, "B", 1, 0);
    b.attempts = 0;
    cr_assert_eq(rn_journal_finish(&j, &b, &e), 0);
    rn_record_free(&b);
    rn_journal_close(&j); /* (a crash leaves the same file: starts are written at once) */
    /* run 2: A crashes again; C is not restarted yet */
    cr_assert_eq(rn_journal_open(&j, out, 5, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_start(&j, "A", 4, &e), 0);
    rn_journal_close(&j);

    rn_journal_state st;
    cr_assert_eq(rn_journal_read(out, 5, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 1);
    cr_assert_eq(st.recs[0].attempts, 1);
    cr_assert_eq(st.nunfinished, 2);
    cr_assert_str_eq(st.unfinished[0].key, "A");
    cr_assert_eq(st.unfinished[0].starts, 2);
    cr_assert_eq(st.unfinished[0].last_rank, 4);
    cr_assert_str_eq(st.unfinished[1].key, "C");
    cr_assert_eq(st.unfinished[1].starts, 1);
    cr_assert_eq(rn_journal_state_starts(&st, "A"), 2);
    cr_assert_eq(rn_journal_state_starts(&st, "B"), 1);
    cr_assert_eq(rn_journal_state_starts(&st, "Z"), 0);

    /* run 3 (resume): A is failed, not retried; C is retried */
    cr_assert_eq(rn_journal_open(&j, out, 5, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_fail_crashed(&j, &st, &e), 1, "%s", e.msg);
    cr_assert_eq(st.nunfinished, 1);
    cr_assert_str_eq(st.unfinished[0].key, "C");
    const rn_record *a = rn_journal_state_find(&st, "A");
    cr_assert_not_null(a);
    cr_assert_eq(a->status, RN_FAILED);
    cr_assert_str_eq(a->error, RN_CRASH_ERROR);
    cr_assert_str_eq(a->error, "crashed its worker twice");
    cr_assert_eq(a->attempts, 2);
    cr_assert_eq(rn_journal_fail_crashed(&j, &st, &e), 0); /* idempotent */
    rn_journal_close(&j);
    rn_journal_state_free(&st);
    /* and it is durable */
    cr_assert_eq(rn_journal_read(out, 5, &st, &e), 0, "%s", e.msg);
    a = rn_journal_state_find(&st, "A");
    cr_assert_not_null(a);
    cr_assert_eq(a->status, RN_FAILED);
    cr_assert_str_eq(a->error, RN_CRASH_ERROR);
    cr_assert_eq(st.nunfinished, 1);
    rn_journal_state_free(&st);
}

Test(journal, spec_hash_mismatch_refused) {
    const char *out = tpath("h.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 0x1111, 1, &e), 0, "%s", e.msg);
    rn_journal_close(&j);
    rn_journal_state st;
    cr_assert_neq(rn_journal_read(out, 0x2222, &st, &e), 0);
    cr_assert(strstr(e.msg, "different spec") && strstr(e.msg, "--force"), "%s", e.msg);
    cr_assert_neq(rn_journal_open(&j, out, 0x2222, 0, &e), 0);
    cr_assert(strstr(e.msg, "different spec"), "%s", e.msg);
    rn_journal_close(&j);
    /* the refused resume left the journal alone */
    cr_assert_eq(rn_journal_read(out, 0x1111, &st, &e), 0, "%s", e.msg);
    rn_journal_state_free(&st);
    /* fresh (after --force) starts over with the new hash */
    cr_assert_eq(rn_journal_open(&j, out, 0x2222, 1, &e), 0, "%s", e.msg);
    rn_journal_close(&j);
    cr_assert_eq(rn_journal_read(out, 0x2222, &st, &e), 0, "%s", e.msg);
    rn_journal_state_free(&st);
}

Test(journal, spec_hash_covers_tasks) {
    rn_task t[2];
    static const char *const keys[2] = {"train:m[seed=0]", "train:m[seed=1]"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(rn_task_init(&t[i], &fake_train_kind), 0);
        t[i].id = i;
        t[i].key = keys[i];
        t[i].name = "m";
        rn_task_set(&t[i], "epochs", "5", 0);
    }
    char text[] = "name: x\n";
    rn_spec s = {.text = text, .seed = 1, .tasks = t, .ntasks = 2};
    uint64_t h0 = rn_journal_spec_hash(&s);
    cr_assert_eq(rn_journal_spec_hash(&s), h0);
    rn_task_set(&t[1], "epochs", "6", 0); /* e.g. --set models[0].epochs=6 */
    cr_assert_neq(rn_journal_spec_hash(&s), h0);
    rn_task_set(&t[1], "epochs", "5", 0);
    cr_assert_eq(rn_journal_spec_hash(&s), h0);
    s.seed = 2;
    cr_assert_neq(rn_journal_spec_hash(&s), h0);
    rn_task_free(&t[0]), rn_task_free(&t[1]);
}

Test(journal, finish_many_and_last_wins) {
    const char *out = tpath("m.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 3, 1, &e), 0, "%s", e.msg);
    enum { N = 1000, B = 64 };
    rn_record *r = calloc(N, sizeof *r);
    const rn_record *p[B];
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof k, "eval:e[i=%d]", i);
        make_rec(&r[i], k, 10, i);
    }
    for (int i = 0; i < N; i += B) {
        int n = N - i < B ? N - i : B;
        for (int k = 0; k < n; k++) p[k] = &r[i + k];
        cr_assert_eq(rn_journal_finish_many(&j, p, n, &e), 0, "%s", e.msg);
    }
    /* a later record for the same key replaces the earlier one */
    r[10].status = RN_FAILED;
    snprintf(r[10].error, sizeof r[10].error, "second try failed");
    cr_assert_eq(rn_journal_finish(&j, &r[10], &e), 0);
    /* not a finished status: refused, nothing written */
    rn_record bad;
    make_rec(&bad, "x", 0, 0);
    bad.status = RN_RUNNING;
    long before = file_size(jpath(out));
    const rn_record *bp[2] = {&r[0], &bad};
    cr_assert_neq(rn_journal_finish_many(&j, bp, 2, &e), 0);
    cr_assert_eq(file_size(jpath(out)), before);
    rn_journal_close(&j);

    rn_journal_state st;
    cr_assert_eq(rn_journal_read(out, 3, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, N);
    for (int i = 0; i < N; i++) check_same_record(&st.recs[i], &r[i]);
    cr_assert_eq(rn_journal_state_find(&st, "eval:e[i=10]")->status, RN_FAILED);
    rn_journal_state_free(&st);
    for (int i = 0; i < N; i++) rn_record_free(&r[i]);
    free(r);
}

Test(journal, group_commit_writes_at_once) {
    const char *out = tpath("g.h5");
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, 4, 1, &e), 0, "%s", e.msg);
    rn_journal_set_sync_interval(&j, 3600);
    cr_assert_eq(j.dirty, 0); /* the header is synced */
    cr_assert_eq(rn_journal_finish(&j, &(rn_record){.key = "first", .status = RN_DONE}, &e), 0);
    for (int i = 0; i < 50; i++) {
        rn_record r;
        char k[32];
        snprintf(k, sizeof k, "k%d", i);
        make_rec(&r, k, 2, i);
        cr_assert_eq(rn_journal_finish(&j, &r, &e), 0, "%s", e.msg);
        rn_record_free(&r);
    }
    cr_assert_eq(j.dirty, 1); /* written, not yet fdatasync'ed */
    rn_journal_state st; /* ... but already in the file: a process crash loses nothing */
    cr_assert_eq(rn_journal_read(out, 4, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 51);
    rn_journal_state_free(&st);
    cr_assert_eq(rn_journal_sync(&j, &e), 0);
    cr_assert_eq(j.dirty, 0);
    rn_journal_close(&j);
}

Test(journal, locked_missing_and_foreign_files) {
    const char *out = tpath("l.h5");
    rn_journal j, j2;
    ip_err e = {{0}};
    rn_journal_state st;
    cr_assert_neq(rn_journal_read(out, 1, &st, &e), 0); /* no journal yet */
    cr_assert(strstr(e.msg, "No such file"), "%s", e.msg);
    cr_assert_eq(rn_journal_open(&j, out, 1, 0, &e), 0, "%s", e.msg); /* resume without a journal: created */
    cr_assert_neq(rn_journal_open(&j2, out, 1, 0, &e), 0);
    cr_assert(strstr(e.msg, "locked"), "%s", e.msg);
    rn_journal_close(&j2);
    rn_journal_close(&j);
    rn_journal_close(&j); /* twice is harmless */
    cr_assert_eq(rn_journal_read(out, 1, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 0);
    rn_journal_state_free(&st);
    /* something else under the journal's name is not truncated */
    const char *other = tpath("o.h5");
    FILE *f = fopen(jpath(other), "w");
    fputs("precious data\nmore\n", f);
    fclose(f);
    cr_assert_neq(rn_journal_open(&j, other, 1, 0, &e), 0);
    cr_assert(strstr(e.msg, "not an ipsweep journal"), "%s", e.msg);
    cr_assert_eq(file_size(jpath(other)), 19);
    /* an empty journal (killed before the header was written) resumes */
    const char *emp = tpath("empty.h5");
    f = fopen(jpath(emp), "w");
    fclose(f);
    cr_assert_eq(rn_journal_open(&j, emp, 1, 0, &e), 0, "%s", e.msg);
    rn_journal_close(&j);
    cr_assert_eq(rn_journal_read(emp, 1, &st, &e), 0, "%s", e.msg);
    rn_journal_state_free(&st);
}

/* A writer killed with SIGKILL at arbitrary moments (while formatting,
 * writing ~1.3 MB lines, or in fdatasync; a kill inside write(2) itself is
 * rare here, the truncation tests cover torn lines deterministically): the
 * journal always reads back, every record in it is intact, at most the task
 * in flight is lost, and resuming appends cleanly after what the kill left. */
static void big_rec(rn_record *r, int i, size_t n, double *buf) {
    char k[32];
    snprintf(k, sizeof k, "attack:a[i=%d]", i);
    make_rec(r, k, 3, i);
    for (size_t q = 0; q < n; q++) buf[q] = i + (double)q / (double)n;
    cr_assert_eq(ip_metrics_set_array(&r->metrics, "acc", buf, n, NULL), 0);
}

static void check_big_rec(const rn_record *r, size_t n) {
    int i;
    cr_assert_eq(sscanf(r->key, "attack:a[i=%d]", &i), 1, "%s", r->key);
    cr_assert_eq(r->metrics.narrays, 1);
    cr_assert_eq(r->metrics.arrays[0].n, n);
    for (size_t q = 0; q < n; q++) cr_assert_eq(r->metrics.arrays[0].v[q], i + (double)q / (double)n);
    cr_assert_eq(r->metrics.values[2], i + 2 / 7.0);
}

Test(journal, survives_kill_9_at_any_moment) {
    const size_t n = 60000;
    double *buf = malloc(n * sizeof *buf);
    int total_torn = 0;
    for (int round = 0; round < 6; round++) {
        char name[32];
        snprintf(name, sizeof name, "k%d.h5", round);
        const char *out = tpath(name);
        ip_err e = {{0}};
        rn_journal j;
        cr_assert_eq(rn_journal_open(&j, out, 77, 1, &e), 0, "%s", e.msg);
        rn_journal_close(&j);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            if (rn_journal_open(&j, out, 77, 0, &e)) _exit(3);
            for (int i = 0;; i++) {
                rn_record r;
                big_rec(&r, i, n, buf);
                rn_journal_start(&j, r.key, 1, &e);
                if (rn_journal_finish(&j, &r, &e)) _exit(4);
                rn_record_free(&r);
            }
        }
        struct timespec ts = {0, 30000000L + 23000000L * round};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status), "writer exited early with %d", WEXITSTATUS(status));
        rn_journal_state st;
        cr_assert_eq(rn_journal_read(out, 77, &st, &e), 0, "round %d: %s", round, e.msg);
        for (int i = 0; i < st.nrecs; i++) check_big_rec(&st.recs[i], n);
        int before = st.nrecs;
        total_torn += st.torn;
        cr_assert_leq(st.nunfinished, 1); /* at most the task in flight */
        rn_journal_state_free(&st);
        /* resume: cut, append, read again */
        cr_assert_eq(rn_journal_open(&j, out, 77, 0, &e), 0, "%s", e.msg);
        rn_record r;
        big_rec(&r, 100000 + round, n, buf);
        cr_assert_eq(rn_journal_finish(&j, &r, &e), 0, "%s", e.msg);
        rn_record_free(&r);
        rn_journal_close(&j);
        cr_assert_eq(rn_journal_read(out, 77, &st, &e), 0, "%s", e.msg);
        cr_assert_eq(st.nrecs, before + 1);
        cr_assert_eq(st.torn, 0);
        rn_journal_state_free(&st);
    }
    cr_log_info("kill -9 rounds with a torn last line: %d of 6", total_torn);
    free(buf);
}

/* ------------------------------------------------------------------------- */
/* results: a small fake spec                                                */

/* 6 tasks: train x3 (done, done, failed), eval x3 (skipped, pending, running). */
typedef struct fake {
    rn_spec spec;
    rn_task tasks[6];
    char keys[6][64];
    int deps[6][2];
    rn_record recs[4];
    const rn_record *by[6];
    int running[6];
} fake;

static char spec_text[] = "name: fake\nseed: 42\nmodels:\n  - name: base\n    seed: [1, 2]\n# ünïcode\n";

static void fake_init(fake *fk) {
    memset(fk, 0, sizeof *fk);
    rn_spec *s = &fk->spec;
    s->text = spec_text;
    snprintf(s->name, sizeof s->name, "fake");
    snprintf(s->file, sizeof s->file, "configs/fake.yaml");
    s->seed = 42;
    s->tasks = fk->tasks;
    s->ntasks = 6;
    for (int i = 0; i < 6; i++) {
        rn_task *t = &fk->tasks[i];
        const char *kind = i < 3 ? "train" : "eval", *nm = i < 3 ? "base" : "ev";
        cr_assert_eq(rn_task_init(t, i < 3 ? &fake_train_kind : &fake_eval_kind), 0);
        t->id = i;
        t->seed = 1000u + (uint64_t)i;
        t->name = nm;
        char v[16];
        snprintf(v, sizeof v, "%d", i + 1);
        cr_assert_eq(rn_task_set(t, "seed", v, 1), 0);
        cr_assert_eq(rn_task_set(t, "epochs", "5", 0), 0);
        if (i >= 3) {
            cr_assert_eq(rn_task_set(t, "attack", i == 3 ? "fgsm" : "pgd", 1), 0);
            fk->deps[i][t->ndeps++] = i - 3;
            fk->deps[i][t->ndeps++] = 0;
            t->deps = fk->deps[i];
        }
        snprintf(fk->keys[i], sizeof fk->keys[i], "%s:%s[seed=%d]", kind, nm, i + 1);
        t->key = fk->keys[i];
    }
    fk->tasks[0].checkpoint = "ckpt/base-1.h5";
    /* 0: done, 2 arrays; 1: done, other scalar set; 2: failed; 3: skipped */
    for (int i = 0; i < 4; i++) {
        rn_record *r = &fk->recs[i];
        rn_record_init(r);
        snprintf(r->key, sizeof r->key, "%s", fk->tasks[i].key);
        r->rank = i % 2 + 1;
        r->wall_seconds = 1.5 * (i + 1);
        r->attempts = 1;
        fk->by[i] = r;
    }
    rn_record *r = fk->recs;
    r[0].status = RN_DONE;
    ip_metrics_set(&r[0].metrics, "test_acc", 0.91, NULL);
    ip_metrics_set(&r[0].metrics, "train_loss", 0.25, NULL);
    double ep[3] = {0.5, 0.8, 0.91};
    ip_metrics_set_array(&r[0].metrics, "epoch_test_acc", ep, 3, NULL);
    double fp[4] = {0.1, 0.11, 0.09, 0.12};
    ip_metrics_set_array(&r[0].metrics, "fake_acc", fp, 4, NULL);
    r[1].status = RN_DONE;
    ip_metrics_set(&r[1].metrics, "test_acc", 0.89, NULL);
    ip_metrics_set(&r[1].metrics, "detect_rate", 1.0, NULL); /* train_loss absent -> NaN */
    double ep1[2] = {0.7, 0.89};
    ip_metrics_set_array(&r[1].metrics, "epoch_test_acc", ep1, 2, NULL);
    r[2].status = RN_FAILED;
    r[2].attempts = 2;
    snprintf(r[2].error, sizeof r[2].error, "%s", "loss is NaN at epoch 3");
    ip_metrics_set(&r[2].metrics, "test_acc", 0.1, NULL); /* not in /metrics: failed */
    r[3].status = RN_SKIPPED;
    r[3].rank = -1;
    r[3].wall_seconds = NAN;
    r[3].attempts = 0;
    snprintf(r[3].error, sizeof r[3].error, "dependency %s failed", fk->tasks[0].key);
    fk->running[5] = 1;
}

static void fake_free(fake *fk) {
    for (int i = 0; i < 4; i++) rn_record_free(&fk->recs[i]);
    for (int i = 0; i < 6; i++) rn_task_free(&fk->tasks[i]);
}

/* HDF5 readers for the checks */

static hid_t open_ro(const char *p) {
    hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "cannot open %s", p);
    return f;
}

static hssize_t ds_len(hid_t f, const char *p) {
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    cr_assert_geq(d, 0, "missing %s", p);
    hid_t sp = H5Dget_space(d);
    cr_assert_eq(H5Sget_simple_extent_ndims(sp), 1, "%s is not 1-D", p);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5Dclose(d);
    return n;
}

static void read_num(hid_t f, const char *p, hid_t mtype, H5T_class_t cls, size_t n, void *out) {
    cr_assert_eq(ds_len(f, p), (hssize_t)n, "%s has the wrong length", p);
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    cr_assert_eq(H5Tget_class(t), cls, "%s has the wrong type class", p);
    H5Tclose(t);
    if (n) cr_assert_geq(H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), 0, "reading %s", p);
    H5Dclose(d);
}

static void read_i64(hid_t f, const char *p, size_t n, long long *out) {
    read_num(f, p, H5T_NATIVE_LLONG, H5T_INTEGER, n, out);
}
static void read_i32(hid_t f, const char *p, size_t n, int *out) {
    read_num(f, p, H5T_NATIVE_INT, H5T_INTEGER, n, out);
}
static void read_f64(hid_t f, const char *p, size_t n, double *out) {
    read_num(f, p, H5T_NATIVE_DOUBLE, H5T_FLOAT, n, out);
}

/* Checks that the string column p equals want[0..n). */
static void check_strs(hid_t f, const char *p, size_t n, const char *const *want) {
    cr_assert_eq(ds_len(f, p), (hssize_t)n, "%s has the wrong length", p);
    hid_t d = H5Dopen2(f, p, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    cr_assert_eq(H5Tget_class(t), H5T_STRING);
    cr_assert_gt(H5Tis_variable_str(t), 0, "%s: not variable-length", p);
    cr_assert_eq(H5Tget_cset(t), H5T_CSET_UTF8, "%s: not UTF-8", p);
    char **v = calloc(n ? n : 1, sizeof *v);
    if (n) cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    for (size_t i = 0; i < n; i++) cr_assert_str_eq(v[i], want[i], "%s[%zu]", p, i);
    if (n) {
        hid_t sp = H5Dget_space(d);
        H5Dvlen_reclaim(t, sp, H5P_DEFAULT, v);
        H5Sclose(sp);
    }
    free(v);
    H5Tclose(t);
    H5Dclose(d);
}

static long long attr_i64(hid_t loc, const char *name) {
    long long v = -99;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "missing attribute %s", name);
    cr_assert_geq(H5Aread(a, H5T_NATIVE_LLONG, &v), 0);
    H5Aclose(a);
    return v;
}

static void attr_str_eq(hid_t loc, const char *name, const char *want) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    cr_assert_geq(a, 0, "missing attribute %s", name);
    hid_t t = H5Aget_type(a);
    char *s = NULL;
    cr_assert_geq(H5Aread(a, t, &s), 0);
    cr_assert_str_eq(s, want, "attribute %s", name);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
}

static int exists(hid_t f, const char *p) { return H5Lexists(f, p, H5P_DEFAULT) > 0; }

static int count_tmp_files(void) {
    DIR *d = opendir(tdir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

Test(results, layout_read_back_with_the_c_api) {
    fake fk;
    fake_init(&fk);
    const char *p = tpath("res.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 1, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p);
    /* root attributes */
    cr_assert_eq(attr_i64(f, "format_version"), 1);
    cr_assert_eq(attr_i64(f, "in_progress"), 1);
    cr_assert_eq(attr_i64(f, "seed"), 42);
    cr_assert_eq(attr_i64(f, "tasks_total"), 6);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    cr_assert_eq(attr_i64(f, "tasks_failed"), 1);
    cr_assert_eq(attr_i64(f, "tasks_skipped"), 1);
    cr_assert_eq(attr_i64(f, "tasks_running"), 1);
    cr_assert_eq(attr_i64(f, "tasks_pending"), 1);
    attr_str_eq(f, "spec_name", "fake");
    hid_t a = H5Aopen(f, "software", H5P_DEFAULT);
    hid_t at = H5Aget_type(a);
    char *sw = NULL;
    H5Aread(a, at, &sw);
    cr_assert(strncmp(sw, "ipsweep", 7) == 0, "software = %s", sw);
    H5free_memory(sw);
    H5Tclose(at);
    H5Aclose(a);
    /* /spec */
    {
        hid_t d = H5Dopen2(f, "spec", H5P_DEFAULT);
        hid_t t = H5Dget_type(d);
        char *s = NULL;
        cr_assert_geq(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s), 0);
        cr_assert_str_eq(s, spec_text);
        H5free_memory(s);
        H5Tclose(t);
        H5Dclose(d);
    }
    /* /tasks */
    long long id[6];
    read_i64(f, "tasks/id", 6, id);
    for (int i = 0; i < 6; i++) cr_assert_eq(id[i], i);
    const char *keys[6], *kinds[6], *names[6];
    for (int i = 0; i < 6; i++) keys[i] = fk.tasks[i].key, kinds[i] = fk.tasks[i].kind, names[i] = fk.tasks[i].name;
    check_strs(f, "tasks/key", 6, keys);
    check_strs(f, "tasks/kind", 6, kinds);
    check_strs(f, "tasks/name", 6, names);
    const char *status[6] = {"done", "done", "failed", "skipped", "pending", "running"};
    check_strs(f, "tasks/status", 6, status);
    int rank[6], att[6];
    read_i32(f, "tasks/rank", 6, rank);
    read_i32(f, "tasks/attempts", 6, att);
    int wr[6] = {1, 2, 1, -1, -1, -1}, wa[6] = {1, 1, 2, 0, 0, 0};
    for (int i = 0; i < 6; i++) cr_assert(rank[i] == wr[i] && att[i] == wa[i], "row %d: rank %d attempts %d", i,
                                          rank[i], att[i]);
    double wall[6];
    read_f64(f, "tasks/wall_seconds", 6, wall);
    cr_assert_float_eq(wall[0], 1.5, 1e-15);
    cr_assert_float_eq(wall[2], 4.5, 1e-15);
    cr_assert(isnan(wall[3]) && isnan(wall[4]) && isnan(wall[5]));
    char skip_err[300];
    snprintf(skip_err, sizeof skip_err, "dependency %s failed", fk.tasks[0].key);
    const char *errs[6] = {"", "", "loss is NaN at epoch 3", skip_err, "", ""};
    check_strs(f, "tasks/error", 6, errs);
    const char *deps[6] = {"", "", "", "0,0", "1,0", "2,0"};
    check_strs(f, "tasks/deps", 6, deps);
    const char *ck[6] = {"ckpt/base-1.h5", "", "", "", "", ""};
    check_strs(f, "tasks/checkpoint", 6, ck);
    /* swept parameters: seed (numeric) and attack (text); epochs is never swept */
    const char *ps[6] = {"1", "2", "3", "4", "5", "6"};
    check_strs(f, "tasks/param_seed", 6, ps);
    double pn[6];
    read_f64(f, "tasks/paramnum_seed", 6, pn);
    for (int i = 0; i < 6; i++) cr_assert_eq(pn[i], i + 1.0);
    const char *pa[6] = {"", "", "", "fgsm", "pgd", "pgd"};
    check_strs(f, "tasks/param_attack", 6, pa);
    cr_assert(!exists(f, "tasks/paramnum_attack"));
    cr_assert(!exists(f, "tasks/param_epochs"));
    /* /params/<kind>: every parameter of every task of the kind, swept or not, any status */
    read_i64(f, "params/train/task_id", 3, id);
    cr_assert(id[0] == 0 && id[1] == 1 && id[2] == 2);
    const char *pe[3] = {"5", "5", "5"}, *pse[3] = {"4", "5", "6"}, *pat[3] = {"fgsm", "pgd", "pgd"};
    check_strs(f, "params/train/epochs", 3, pe);
    check_strs(f, "params/eval/seed", 3, pse);
    check_strs(f, "params/eval/attack", 3, pat);
    cr_assert(!exists(f, "params/train/attack"));
    attr_str_eq(f, "overrides", "");
    /* every /tasks column has 6 rows */
    {
        hid_t g = H5Gopen2(f, "tasks", H5P_DEFAULT);
        H5G_info_t gi;
        H5Gget_info(g, &gi);
        cr_assert_geq(gi.nlinks, 15);
        for (hsize_t i = 0; i < gi.nlinks; i++) {
            char nm[128], full[160];
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
            snprintf(full, sizeof full, "tasks/%s", nm);
            cr_assert_eq(ds_len(f, full), 6, "%s", full);
        }
        H5Gclose(g);
    }
    /* /metrics/train: the two done tasks; union of scalar names, NaN where absent */
    long long tid[2];
    read_i64(f, "metrics/train/task_id", 2, tid);
    cr_assert(tid[0] == 0 && tid[1] == 1);
    const char *mk[2] = {fk.tasks[0].key, fk.tasks[1].key};
    check_strs(f, "metrics/train/key", 2, mk);
    double m[2];
    read_f64(f, "metrics/train/test_acc", 2, m);
    cr_assert(m[0] == 0.91 && m[1] == 0.89);
    read_f64(f, "metrics/train/train_loss", 2, m);
    cr_assert(m[0] == 0.25 && isnan(m[1]));
    read_f64(f, "metrics/train/detect_rate", 2, m);
    cr_assert(isnan(m[0]) && m[1] == 1.0);
    cr_assert(!exists(f, "metrics/eval")); /* no eval task is done */
    /* /arrays/train/epoch_test_acc: ragged */
    read_i64(f, "arrays/train/epoch_test_acc/task_id", 2, tid);
    cr_assert(tid[0] == 0 && tid[1] == 1);
    check_strs(f, "arrays/train/epoch_test_acc/key", 2, mk);
    long long off[2], len[2];
    read_i64(f, "arrays/train/epoch_test_acc/offset", 2, off);
    read_i64(f, "arrays/train/epoch_test_acc/length", 2, len);
    cr_assert(off[0] == 0 && len[0] == 3 && off[1] == 3 && len[1] == 2);
    double v[5];
    read_f64(f, "arrays/train/epoch_test_acc/values", 5, v);
    double wv[5] = {0.5, 0.8, 0.91, 0.7, 0.89};
    for (int i = 0; i < 5; i++) cr_assert_eq(v[i], wv[i]);
    read_i64(f, "arrays/train/fake_acc/task_id", 1, tid);
    cr_assert_eq(tid[0], 0);
    read_f64(f, "arrays/train/fake_acc/values", 4, v);
    cr_assert_eq(v[3], 0.12);
    H5Fclose(f);
    cr_assert_eq(count_tmp_files(), 0);
    fake_free(&fk);
}

Test(results, big_arrays_compressed_and_exact) {
    fake fk;
    fake_init(&fk);
    size_t n = 100000;
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 0.1 + (double)(i % 1000) / 1000.0;
    ip_metrics_set_array(&fk.recs[1].metrics, "fake_acc", x, n, NULL);
    const char *p = tpath("big.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, NULL, 0, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p);
    cr_assert_eq(attr_i64(f, "in_progress"), 0);
    cr_assert_eq(attr_i64(f, "tasks_pending"), 2); /* running == NULL */
    double *y = malloc((n + 4) * sizeof *y);
    read_f64(f, "arrays/train/fake_acc/values", n + 4, y);
    cr_assert_eq(memcmp(y + 4, x, n * sizeof *x), 0);
    hid_t d = H5Dopen2(f, "arrays/train/fake_acc/values", H5P_DEFAULT);
    hid_t pl = H5Dget_create_plist(d);
    cr_assert_eq(H5Pget_layout(pl), H5D_CHUNKED);
    cr_assert_geq(H5Pget_nfilters(pl), 2); /* shuffle + deflate */
    cr_assert_lt(H5Dget_storage_size(d), n * sizeof(double) / 4);
    H5Pclose(pl);
    H5Dclose(d);
    /* small ones stay contiguous */
    d = H5Dopen2(f, "tasks/id", H5P_DEFAULT);
    pl = H5Dget_create_plist(d);
    cr_assert_eq(H5Pget_layout(pl), H5D_CONTIGUOUS);
    H5Pclose(pl);
    H5Dclose(d);
    H5Fclose(f);
    free(x);
    free(y);
    fake_free(&fk);
}

Test(results, rewrite_is_atomic_and_leaves_no_temp_files) {
    fake fk;
    fake_init(&fk);
    const char *p = tpath("atomic.h5");
    ip_err e = {{0}};
    const rn_record *none[6] = {0};
    cr_assert_eq(rn_results_write(p, &fk.spec, none, NULL, 1, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p); /* a reader holding the old file open */
    cr_assert_eq(attr_i64(f, "tasks_done"), 0);
    cr_assert(!exists(f, "metrics/train"));
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 0, &e), 0, "%s", e.msg);
    cr_assert_eq(attr_i64(f, "tasks_done"), 0); /* still sees the old, complete file */
    H5Fclose(f);
    f = open_ro(p);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    cr_assert_eq(attr_i64(f, "in_progress"), 0);
    H5Fclose(f);
    cr_assert_eq(count_tmp_files(), 0);

    /* a failed write leaves the previous file and no temporary file */
    rn_record wrong;
    rn_record_init(&wrong);
    snprintf(wrong.key, sizeof wrong.key, "not-the-key");
    wrong.status = RN_DONE;
    const rn_record *bad[6] = {&wrong};
    cr_assert_neq(rn_results_write(p, &fk.spec, bad, NULL, 0, &e), 0);
    cr_assert(strstr(e.msg, "not-the-key"), "%s", e.msg);
    f = open_ro(p);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    H5Fclose(f);
    cr_assert_eq(count_tmp_files(), 0);
    /* a missing directory is a clear error */
    cr_assert_neq(rn_results_write(tpath("no/such/dir/x.h5"), &fk.spec, fk.by, NULL, 0, &e), 0);
    cr_assert(strstr(e.msg, "no/such/dir"), "%s", e.msg);
    fake_free(&fk);
}

Test(results, empty_spec) {
    rn_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "empty");
    const char *p = tpath("empty.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &s, NULL, NULL, 0, &e), 0, "%s", e.msg);
    hid_t f = open_ro(p);
    cr_assert_eq(attr_i64(f, "tasks_total"), 0);
    cr_assert_eq(ds_len(f, "tasks/key"), 0);
    H5Fclose(f);
}

static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

Test(results, h5dump_reads_it) {
    if (access("/usr/bin/h5dump", X_OK) != 0 && run_cmd("command -v h5dump >/dev/null 2>&1") != 0)
        cr_skip_test("h5dump not installed");
    fake fk;
    fake_init(&fk);
    const char *p = tpath("dump.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 1, &e), 0, "%s", e.msg);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s' >/dev/null 2>&1", p);
    cr_assert_eq(run_cmd(cmd), 0);
    snprintf(cmd, sizeof cmd, "h5dump -d /metrics/train/test_acc '%s' 2>/dev/null | grep -q '0.91'", p);
    cr_assert_eq(run_cmd(cmd), 0);
    fake_free(&fk);
}

Test(results, h5py_reads_tasks_and_metrics) {
    if (run_cmd("/usr/bin/python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) cr_skip_test("h5py not installed");
    fake fk;
    fake_init(&fk);
    const char *p = tpath("py.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(p, &fk.spec, fk.by, fk.running, 1, &e), 0, "%s", e.msg);
    const char *py =
        "import sys, math, h5py, numpy as np\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "t = f['tasks']\n"
        "cols = {k: (t[k].asstr()[:] if t[k].dtype.kind == 'O' else t[k][:]) for k in t}\n"
        "assert len({len(v) for v in cols.values()}) == 1, 'ragged table'\n"
        "assert list(t)[:5] == ['id', 'key', 'kind', 'name', 'status'], list(t)\n"
        "assert list(f['metrics/train']) == ['task_id', 'key', 'test_acc', 'train_loss', 'detect_rate']\n"
        "assert list(cols['status']) == ['done','done','failed','skipped','pending','running'], cols['status']\n"
        "assert list(cols['param_attack']) == ['','','','fgsm','pgd','pgd']\n"
        "assert cols['paramnum_seed'].dtype == np.float64 and list(cols['paramnum_seed']) == [1,2,3,4,5,6]\n"
        "assert cols['id'].dtype == np.int64 and cols['rank'].dtype == np.int32\n"
        "assert math.isnan(cols['wall_seconds'][4])\n"
        "m = f['metrics/train']\n"
        "assert list(m['test_acc'][:]) == [0.91, 0.89]\n"
        "assert list(m['key'].asstr()[:]) == [s.decode() for s in t['key'][:2]]\n"
        "a = f['arrays/train/epoch_test_acc']\n"
        "i = list(a['task_id'][:]).index(1)\n"
        "o, n = a['offset'][i], a['length'][i]\n"
        "assert list(a['values'][o:o+n]) == [0.7, 0.89]\n"
        "assert f['spec'].asstr()[()].startswith('name: fake')\n"
        "assert f.attrs['in_progress'] == 1 and f.attrs['tasks_done'] == 2\n"
        "assert f.attrs['software'].startswith('ipsweep')\n"
        "try:\n"
        "    import pandas as pd\n"
        "    df = pd.DataFrame(cols)\n"
        "    assert df.shape[0] == 6\n"
        "except ImportError:\n"
        "    pass\n"
        "print('ok')\n";
    char script[200];
    snprintf(script, sizeof script, "%s/check.py", tdir);
    FILE *sf = fopen(script, "w");
    cr_assert_not_null(sf);
    fputs(py, sf);
    fclose(sf);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' > '%s/py.out' 2>&1", script, p, tdir);
    int rc = run_cmd(cmd);
    if (rc != 0) {
        char outp[200], buf[2000] = {0};
        snprintf(outp, sizeof outp, "%s/py.out", tdir);
        FILE *o = fopen(outp, "r");
        if (o) {
            size_t got = fread(buf, 1, sizeof buf - 1, o);
            buf[got] = 0;
            fclose(o);
        }
        cr_assert_fail("h5py check failed (%d):\n%s", rc, buf);
    }
    fake_free(&fk);
}

/* The guarantee at the level of journal + results: a run killed
 * halfway (torn last line, one task in flight) and resumed produces the same
 * results file as an uninterrupted run. */
static void run_tasks(fake *fk, const char *out, int from, int to, int fresh) {
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, out, rn_journal_spec_hash(&fk->spec), fresh, &e), 0, "%s", e.msg);
    for (int i = from; i < to && i < 4; i++) {
        cr_assert_eq(rn_journal_start(&j, fk->tasks[i].key, 1, &e), 0);
        rn_record r = fk->recs[i]; /* shallow: the journal only reads it */
        r.attempts = 0;            /* the journal counts the starts */
        cr_assert_eq(rn_journal_finish(&j, &r, &e), 0);
    }
    rn_journal_close(&j);
}

static void results_from_journal(fake *fk, const char *out) {
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(out, rn_journal_spec_hash(&fk->spec), &st, &e), 0, "%s", e.msg);
    const rn_record *by[6];
    for (int i = 0; i < 6; i++) by[i] = rn_journal_state_find(&st, fk->tasks[i].key);
    cr_assert_eq(rn_results_write(out, &fk->spec, by, NULL, 0, &e), 0, "%s", e.msg);
    rn_journal_state_free(&st);
}

Test(results, resumed_run_gives_the_same_file) {
    fake fk;
    fake_init(&fk);
    const char *a = tpath("a.h5"), *b = tpath("b.h5");
    run_tasks(&fk, a, 0, 4, 1);
    results_from_journal(&fk, a);
    /* interrupted: tasks 0-1 done, task 2 in flight when killed mid-write */
    run_tasks(&fk, b, 0, 3, 1);
    const char *jp = jpath(b);
    cr_assert_eq(truncate(jp, file_size(jp) - 7), 0);
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(b, rn_journal_spec_hash(&fk.spec), &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.nrecs, 2);
    cr_assert_eq(st.nunfinished, 1);
    rn_journal_state_free(&st);
    run_tasks(&fk, b, 2, 4, 0); /* --resume: only what is missing */
    results_from_journal(&fk, b);
    hid_t f = open_ro(b);
    cr_assert_eq(attr_i64(f, "tasks_done"), 2);
    cr_assert_eq(attr_i64(f, "tasks_failed"), 1);
    H5Fclose(f);
    if (run_cmd("command -v h5diff >/dev/null 2>&1") != 0) cr_skip_test("h5diff not installed");
    char cmd[512];
    /* attempts differ (task 2 was started twice): compare everything else */
    snprintf(cmd, sizeof cmd, "h5diff --exclude-path /tasks/attempts '%s' '%s' >/dev/null 2>&1", a, b);
    cr_assert_eq(run_cmd(cmd), 0, "resumed results differ from the uninterrupted ones");
    fake_free(&fk);
}
