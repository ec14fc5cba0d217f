/* The run journal: exact round trips, torn and corrupt lines, start counts
 * and crash-twice detection, spec-hash checks, batches, kill -9. */
#include "journal_fixture.h"

TestSuite(journal, .init = make_dir, .fini = remove_dir);

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
