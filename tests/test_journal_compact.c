/* Journal compaction at resume (rn_journal_compact, docs/results.md): what a
 * resume computes from the compacted journal equals what it computes from
 * the original (records, attempts, start counts, crash-twice decisions, the
 * suspects that go out alone, the explanation of a changed setting), with a
 * torn last line, tasks that crashed once and twice, tasks retried many
 * times, and 100,000 tasks (time and sizes printed). A crash during
 * compaction leaves a valid journal. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/util/proc.h"
#include "../runner/run/journal.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "jcompact")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(journal_compact, .init = make_dir, .fini = remove_dir);

static char text[] = "name: compact\n";

/* A spec that only carries the settings the journal records. */
static void settings_spec(rn_spec *s, const char *output) {
    memset(s, 0, sizeof *s);
    s->text = text;
    s->seed = 7;
    snprintf(s->data_source, sizeof s->data_source, "synthetic:64x1x8x8");
    s->train_limit = 2500;
    snprintf(s->output, sizeof s->output, "%s", output);
}

static const char *jp(const char *output) {
    static char b[4][1100];
    static int k;
    k = (k + 1) % 4;
    cr_assert_eq(rn_journal_path(b[k], sizeof b[k], output), 0);
    return b[k];
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *b, size_t n, const char *mode) {
    FILE *f = fopen(path, mode);
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void copy_file(const char *from, const char *to) {
    size_t n;
    char *b = slurp(from, &n);
    spit(to, b, n, "wb");
    free(b);
}

static long count_lines(const char *b, size_t n, const char *prefix) {
    long c = 0;
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < n; i = (size_t)(strchr(b + i, '\n') - b) + 1) {
        if (strncmp(b + i, prefix, pl) == 0) c++;
        if (!strchr(b + i, '\n')) break;
    }
    return c;
}

/* ---- building journals as runs and resumes do */

typedef struct run {
    rn_journal j;
    ip_err e;
} run;

static void run_begin(run *r, const rn_spec *s, int fresh) {
    memset(r, 0, sizeof *r);
    cr_assert_eq(rn_journal_open(&r->j, s->output, rn_journal_spec_hash(s), fresh, &r->e), 0, "%s", r->e.msg);
    rn_journal_set_sync_interval(&r->j, 3600); /* group commit: the test writes many lines */
    if (fresh) cr_assert_eq(rn_journal_note_settings(&r->j, s, &r->e), 0, "%s", r->e.msg);
}

static void start(run *r, const char *key, int rank, int alone) {
    cr_assert_eq(rn_journal_start_shared(&r->j, key, rank, alone, &r->e), 0, "%s", r->e.msg);
}

/* A task stopped on request (a signal): its starts so far are no crashes. */
static void interrupt(run *r, const char *key, int rank) {
    cr_assert_eq(rn_journal_interrupted(&r->j, key, rank, &r->e), 0, "%s", r->e.msg);
}

/* A finish as the coordinator records it: attempts from the journal's count. */
static void finish(run *r, const char *key, rn_status st, int rank, double v, const char *err) {
    rn_record rec;
    rn_record_init(&rec);
    snprintf(rec.key, sizeof rec.key, "%s", key);
    rec.status = st;
    rec.rank = st == RN_SKIPPED ? -1 : rank;
    rec.wall_seconds = st == RN_SKIPPED ? NAN : 0.25 + v;
    rec.attempts = rn_journal_attempts(&r->j, key);
    snprintf(rec.error, sizeof rec.error, "%s", err ? err : "");
    if (st == RN_DONE) {
        cr_assert_eq(ip_metrics_set(&rec.metrics, "test_acc", v, NULL), 0);
        cr_assert_eq(ip_metrics_set(&rec.metrics, "loss", 1 / (1 + v), NULL), 0);
        double curve[3] = {v, v / 3, -v};
        cr_assert_eq(ip_metrics_set_array(&rec.metrics, "curve", curve, 3, NULL), 0);
    }
    cr_assert_eq(rn_journal_finish(&r->j, &rec, &r->e), 0, "%s", r->e.msg);
    rn_record_free(&rec);
}

static void run_end(run *r) {
    cr_assert_eq(rn_journal_sync(&r->j, &r->e), 0, "%s", r->e.msg);
    rn_journal_close(&r->j);
}

/* ---- what a resume computes, as text */

static void put_record(FILE *f, const rn_record *r) {
    fprintf(f, " rec %s %d %.17g %d [%s]", rn_status_name(r->status), r->rank, r->wall_seconds, r->attempts, r->error);
    for (int i = 0; i < r->metrics.nscalars; i++) fprintf(f, " %s=%.17g", r->metrics.names[i], r->metrics.values[i]);
    for (int i = 0; i < r->metrics.narrays; i++) {
        fprintf(f, " %s:", r->metrics.arrays[i].name);
        for (size_t k = 0; k < r->metrics.arrays[i].n; k++) fprintf(f, "%.17g,", r->metrics.arrays[i].v[k]);
    }
}

/* What `run --resume` derives from the journal of s->output (load_resume in
 * runner/cmd_run.c): the records and start counts before the crash-twice
 * rule, the unfinished tasks in order, the records after the rule, which
 * tasks are kept or go out alone, the attempt numbering of the next starts,
 * and the refusal message for a changed setting. Changes the journal (the
 * rule appends). */
static char *resume_view(const rn_spec *s, char *const *keys, int nkeys) {
    char *out = NULL;
    size_t outn = 0;
    FILE *f = open_memstream(&out, &outn);
    cr_assert_not_null(f);
    const uint64_t h = rn_journal_spec_hash(s);
    ip_err e = {{0}};
    rn_journal_state st;
    cr_assert_eq(rn_journal_read(s->output, h, &st, &e), 0, "%s", e.msg);
    for (int i = 0; i < st.nunfinished; i++)
        fprintf(f, "unfinished %s starts=%d alone=%d last_rank=%d\n", st.unfinished[i].key, st.unfinished[i].starts,
                st.unfinished[i].alone, st.unfinished[i].last_rank);
    rn_journal j;
    cr_assert_eq(rn_journal_open(&j, s->output, h, 0, &e), 0, "%s", e.msg);
    cr_assert(rn_journal_fail_crashed(&j, &st, &e) >= 0, "%s", e.msg);
    for (int k = 0; k < nkeys; k++) {
        const rn_record *r = rn_journal_state_find(&st, keys[k]);
        int starts = rn_journal_state_starts(&st, keys[k]);
        int kept = r && (r->status == RN_DONE || (r->status == RN_FAILED && strcmp(r->error, RN_CRASH_ERROR) == 0));
        fprintf(f, "%s starts=%d attempts=%d %s%s", keys[k], starts, rn_journal_attempts(&j, keys[k]),
                kept ? "kept" : "rerun", !kept && rn_journal_state_lost(&st, keys[k]) ? " alone" : "");
        if (r) put_record(f, r);
        fputc('\n', f);
    }
    rn_journal_state_free(&st);
    rn_journal_close(&j);
    rn_spec changed = *s;
    changed.train_limit = 2000;
    char msg[1000];
    fprintf(f, "explain %d %s\n", rn_journal_explain_change(s->output, &changed, msg, sizeof msg), msg);
    fclose(f);
    return out;
}

/* Compacts the journal of output as a resume does (open, then compact). */
static int compact(const rn_spec *s, double min_saving, rn_compaction *info) {
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, s->output, rn_journal_spec_hash(s), 0, &e), 0, "%s", e.msg);
    int rc = rn_journal_compact(&j, min_saving, info, &e);
    cr_assert(rc >= 0, "%s", e.msg);
    /* the journal goes on: a start appended after compaction lands in the compacted file */
    rn_journal_close(&j);
    return rc;
}

/* The diff-friendly first difference of two views. */
static void expect_same_view(const char *a, const char *b, const char *what) {
    if (strcmp(a, b) == 0) return;
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    size_t s = i > 200 ? i - 200 : 0;
    cr_assert_fail("%s: the resume differs at byte %zu:\n  original:  ...%.300s\n  compacted: ...%.300s", what, i, a + s,
                   b + s);
}

static int nkeys_small;
static char *keys_small[16];

/* Every kind of history a task can have over four runs; the last run was
 * killed mid-write (a torn last line). */
static void small_history(const rn_spec *s) {
    static const char *names[] = {"t:done", "t:retry", "t:failtwice", "t:crash1", "t:crash2", "t:shared3", "t:skip",
                                  "t:many", "t:manyunf", "t:manycrash", "t:esc \\ x", "t:never", "t:stopped",
                                  "t:stopmany", "t:stopcrash"};
    nkeys_small = (int)(sizeof names / sizeof *names);
    for (int i = 0; i < nkeys_small; i++) keys_small[i] = (char *)names[i];
    run r;
    for (int round = 0; round < 6; round++) {
        run_begin(&r, s, round == 0);
        if (round == 0) {
            start(&r, "t:done", 1, 1), finish(&r, "t:done", RN_DONE, 1, 0.5, NULL);
            start(&r, "t:esc \\ x", 2, 1), finish(&r, "t:esc \\ x", RN_DONE, 2, 0.125, NULL);
            start(&r, "t:retry", 2, 1), finish(&r, "t:retry", RN_FAILED, 2, 0, "nan loss");
            start(&r, "t:crash1", 1, 1);
        }
        if (round < 2) {
            start(&r, "t:failtwice", 1, 1), finish(&r, "t:failtwice", RN_FAILED, 1, 0, "diverged");
            start(&r, "t:crash2", 2, 1);
            finish(&r, "t:skip", RN_SKIPPED, -1, 0, "a dependency failed");
        }
        if (round == 1) start(&r, "t:retry", 1, 1), finish(&r, "t:retry", RN_DONE, 1, 0.75, NULL);
        if (round < 3) start(&r, "t:shared3", 1, 0);
        /* a task that fails on every resume: its starts are folded into one C line */
        start(&r, "t:many", 1 + round % 2, 1), finish(&r, "t:many", RN_FAILED, 1 + round % 2, 0, "out of range");
        if (round < 5) start(&r, "t:manyunf", 2, round == 4); /* 4 shared, 1 alone: unfinished */
        if (round < 6) start(&r, "t:manycrash", 1, round >= 4); /* 4 shared, then 2 alone: crashed twice */
        /* a long task stopped by a signal in rounds 0-1, then lost in a crash once: retried, not failed */
        if (round < 3) start(&r, "t:stopped", 2, 1);
        if (round < 2) interrupt(&r, "t:stopped", 2);
        /* stopped at every time limit (its starts are folded): still running, never a crash */
        start(&r, "t:stopmany", 1, 1), interrupt(&r, "t:stopmany", 1);
        /* stopped once, then crashed twice in a row: the rule fails it */
        if (round < 3) start(&r, "t:stopcrash", 1, 1);
        if (round == 0) interrupt(&r, "t:stopcrash", 1);
        run_end(&r);
    }
    /* the last run was killed while writing a finish line */
    static const char torn[] = "F\tt:crash1\tdo";
    spit(jp(s->output), torn, sizeof torn - 1, "ab");
}

/* load_resume's first step: the crash-twice rule appends its finish lines. */
static void apply_rule(const rn_spec *s, int want) {
    ip_err e = {{0}};
    rn_journal j;
    rn_journal_state st;
    cr_assert_eq(rn_journal_open(&j, s->output, rn_journal_spec_hash(s), 0, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_read(s->output, rn_journal_spec_hash(s), &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.torn, 0, "open cut the torn line");
    cr_assert_eq(rn_journal_fail_crashed(&j, &st, &e), want, "%s", e.msg);
    rn_journal_state_free(&st);
    rn_journal_close(&j);
}

Test(journal_compact, resume_computes_the_same_from_the_compacted_journal) {
    rn_spec a, a2, b, c;
    settings_spec(&a, tu_path(tdir, "a.h5"));
    settings_spec(&a2, tu_path(tdir, "a2.h5"));
    settings_spec(&b, tu_path(tdir, "b.h5"));
    settings_spec(&c, tu_path(tdir, "c.h5"));
    small_history(&a);
    copy_file(jp(a.output), jp(a2.output));
    copy_file(jp(a.output), jp(b.output));
    copy_file(jp(a.output), jp(c.output));
    size_t n0;
    char *orig = slurp(jp(a.output), &n0);

    /* b: compacted before the crash-twice rule ran; c: after it, as cmd_run
     * does (compared with a2, the original after the rule) */
    rn_compaction ib, ic;
    cr_assert_eq(compact(&b, 0, &ib), 1);
    apply_rule(&a2, 3); /* t:crash2, t:manycrash and t:stopcrash crashed twice */
    apply_rule(&c, 3);
    cr_assert_eq(compact(&c, 0, &ic), 1);
    size_t nb, nc;
    char *cb = slurp(jp(b.output), &nb), *cc = slurp(jp(c.output), &nc);
    char *va = resume_view(&a, keys_small, nkeys_small);
    char *vb = resume_view(&b, keys_small, nkeys_small);
    char *va2 = resume_view(&a2, keys_small, nkeys_small);
    char *vc = resume_view(&c, keys_small, nkeys_small);
    expect_same_view(va, vb, "compacted before the crash-twice rule");
    expect_same_view(va2, vc, "compacted after the crash-twice rule");

    /* the decisions themselves (not only their equality) */
    cr_assert(strstr(va, "t:crash1 starts=1 attempts=1 rerun alone\n"), "%s", va);
    cr_assert(strstr(va, "t:crash2 starts=2 attempts=2 kept rec failed 2 nan 2 [" RN_CRASH_ERROR "]"), "%s", va);
    cr_assert(strstr(va, "t:manycrash starts=6 attempts=6 kept rec failed 1 nan 6 [" RN_CRASH_ERROR "]"), "%s", va);
    cr_assert(strstr(va, "t:manyunf starts=5 attempts=5 rerun alone\n"), "%s", va);
    cr_assert(strstr(va, "t:shared3 starts=3 attempts=3 rerun alone\n"), "%s", va);
    cr_assert(strstr(va, "t:many starts=6 attempts=6 rerun alone rec failed 2 0.25 6 [out of range]"), "%s", va);
    cr_assert(strstr(va, "t:skip starts=0 attempts=0 rerun rec skipped -1 nan 0"), "%s", va);
    cr_assert(strstr(va, "t:retry starts=2 attempts=2 kept rec done 1 1 2"), "%s", va);
    cr_assert(strstr(va, "t:stopped starts=3 attempts=3 rerun alone\n"), "%s", va);
    cr_assert(strstr(va, "t:stopmany starts=6 attempts=6 rerun\n"), "%s", va);
    cr_assert(strstr(va, "t:stopcrash starts=3 attempts=3 kept rec failed 1 nan 3 [" RN_CRASH_ERROR "]"), "%s", va);
    cr_assert(strstr(va, "unfinished t:stopmany starts=6 alone=0"), "%s", va);
    cr_assert(strstr(va, "explain 1 data.train_limit is 2000 but the run was started with 2500\n"), "%s", va);

    /* what went: overridden finish lines, the folded starts, the torn tail */
    cr_assert_eq((long long)n0 - (long long)strlen("F\tt:crash1\tdo"), ib.bytes_before, "open cut the torn tail");
    cr_assert_eq((long long)nb, ib.bytes_after);
    cr_assert_lt(nb, n0);
    cr_assert_eq(count_lines(cb, nb, "F\tt:many\t"), 1);
    cr_assert_eq(count_lines(cb, nb, "F\tt:retry\t"), 1);
    cr_assert_eq(count_lines(cb, nb, "F\tt:skip\t"), 1);
    cr_assert_eq(count_lines(cb, nb, "S\tt:many\t"), 0);
    cr_assert_eq(count_lines(cb, nb, "C\tt:many\t6\t6\t2\t"), 1);
    cr_assert_eq(count_lines(cb, nb, "C\tt:manyunf\t5\t1\t2\t"), 1);
    cr_assert_eq(count_lines(cb, nb, "S\tt:crash2\t"), 2, "few starts stay S lines");
    cr_assert_eq(count_lines(cb, nb, "D\t"), 1);
    cr_assert(strncmp(cb, "H\tipsweep-journal\t2\t", 20) == 0, "C lines make it version 2: %.40s", cb);
    cr_assert_eq(count_lines(cc, nc, "F\tt:crash2\t"), 1);
    printf("journal_compact: small history: %zu -> %zu bytes, %ld -> %ld lines\n", n0, nb, ib.lines_before,
           ib.lines_after);

    /* compacting a compacted journal changes nothing (the view's crash-twice
     * rule appended two finish lines to b since: compare with c, which had them) */
    rn_compaction again;
    cr_assert_eq(compact(&b, 0, &again), 1);
    size_t nb2;
    char *cb2 = slurp(jp(b.output), &nb2);
    cr_assert(nb2 == nc && memcmp(cc, cb2, nc) == 0, "a second compaction changed the journal");
    /* and below min_saving it is left alone */
    cr_assert_eq(compact(&b, RN_COMPACT_MIN_SAVING, &again), 0);
    cr_assert_eq(again.rewritten, 0);
    free(orig), free(cb), free(cc), free(cb2), free(va), free(va2), free(vb), free(vc);
}

Test(journal_compact, without_c_lines_it_stays_version_1_and_small_journals_are_left_alone) {
    rn_spec s;
    settings_spec(&s, tu_path(tdir, "v1.h5"));
    run r;
    run_begin(&r, &s, 1);
    for (int i = 0; i < 20; i++) {
        char k[32];
        snprintf(k, sizeof k, "t:%d", i);
        start(&r, k, 1, 1), finish(&r, k, RN_DONE, 1, i, NULL);
    }
    run_end(&r);
    size_t n0, n1;
    char *before = slurp(jp(s.output), &n0);
    rn_compaction info;
    cr_assert_eq(compact(&s, RN_COMPACT_MIN_SAVING, &info), 0, "one run: nothing to drop");
    char *after = slurp(jp(s.output), &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    /* a resume that reran every task: half of the lines go */
    run_begin(&r, &s, 0);
    for (int i = 0; i < 20; i++) {
        char k[32];
        snprintf(k, sizeof k, "t:%d", i);
        start(&r, k, 2, 1), finish(&r, k, RN_DONE, 2, i, NULL);
    }
    run_end(&r);
    cr_assert_eq(compact(&s, RN_COMPACT_MIN_SAVING, &info), 1);
    after = slurp(jp(s.output), &n1);
    cr_assert(strncmp(after, "H\tipsweep-journal\t1\t", 20) == 0, "no C line: version 1 (%.30s)", after);
    cr_assert_eq(count_lines(after, n1, "S\t"), 40);
    cr_assert_eq(count_lines(after, n1, "F\t"), 20);
    free(before), free(after);
}

/* A crash during compaction leaves the old journal (before the rename) or
 * the new one (after it): a stale "<journal>.compact" from a crash is
 * ignored by readers and overwritten by the next compaction. */
Test(journal_compact, a_crash_during_compaction_leaves_a_valid_journal) {
    rn_spec s;
    settings_spec(&s, tu_path(tdir, "crash.h5"));
    small_history(&s);
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.compact", jp(s.output));
    size_t n0;
    char *orig = slurp(jp(s.output), &n0);
    spit(tmp, orig, n0 / 2, "wb"); /* killed while writing the new journal */
    char *v0 = NULL;
    {
        rn_spec cp;
        settings_spec(&cp, tu_path(tdir, "crash-copy.h5"));
        copy_file(jp(s.output), jp(cp.output));
        v0 = resume_view(&cp, keys_small, nkeys_small);
    }
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(s.output, rn_journal_spec_hash(&s), &st, &e), 0, "%s", e.msg);
    rn_journal_state_free(&st);
    rn_compaction info;
    cr_assert_eq(compact(&s, 0, &info), 1);
    struct stat sb;
    cr_assert_neq(stat(tmp, &sb), 0, "the temporary file was renamed away");
    char *v1 = resume_view(&s, keys_small, nkeys_small);
    expect_same_view(v0, v1, "after a stale temporary file");
    free(orig), free(v0), free(v1);
}

/* 100,000 tasks over four runs (the first killed with 20% in flight, then
 * resumes that rerun what failed or never finished, 1% failing every time),
 * a torn last line. */
Test(journal_compact, hundred_thousand_tasks) {
    enum { N = 100000 };
    rn_spec a, b;
    settings_spec(&a, tu_path(tdir, "big-a.h5"));
    settings_spec(&b, tu_path(tdir, "big-b.h5"));
    char **keys = malloc(N * sizeof *keys);
    unsigned char *done = calloc(N, 1);
    for (int i = 0; i < N; i++) {
        keys[i] = malloc(48);
        snprintf(keys[i], 48, "train:mlp[seed=%d,lr=0.%d]", i % 97, i);
    }
    double t0 = ip_now_s();
    run r;
    for (int round = 0; round < 6; round++) {
        run_begin(&r, &a, round == 0);
        for (int i = 0; i < N; i++) {
            if (done[i]) continue;
            int rank = 1 + i % 7, shared = round == 0 && i % 3 == 0;
            start(&r, keys[i], rank, !shared);
            unsigned u = (unsigned)(i * 2654435761u + (unsigned)round * 40503u) % 100;
            if (i % 100 == 0) finish(&r, keys[i], RN_FAILED, rank, 0, "diverged"); /* every time */
            else if (u < 20 && round < 5) continue; /* in flight when the run died */
            else if (u < 30 && round < 5) finish(&r, keys[i], RN_FAILED, rank, 0, "out of memory");
            else finish(&r, keys[i], RN_DONE, rank, (double)i / N, NULL), done[i] = 1;
        }
        run_end(&r);
    }
    static const char torn[] = "S\ttrain:mlp[see";
    spit(jp(a.output), torn, sizeof torn - 1, "ab");
    double t_build = ip_now_s() - t0;
    copy_file(jp(a.output), jp(b.output));
    rn_compaction info;
    cr_assert_eq(compact(&b, RN_COMPACT_MIN_SAVING, &info), 1);
    printf("journal_compact: %d tasks, 6 runs (journal written in %.2f s): %lld -> %lld bytes (%.1f%%), "
           "%ld -> %ld lines, compaction %.3f s\n",
           N, t_build, info.bytes_before, info.bytes_after, 100.0 * (double)info.bytes_after / (double)info.bytes_before,
           info.lines_before, info.lines_after, info.seconds);
    cr_assert_lt(info.bytes_after, info.bytes_before);
    cr_assert_leq(info.lines_after, 2 + 3 * (long)N, "at most a D line, two start lines and a finish line per task");
    double t1 = ip_now_s();
    char *va = resume_view(&a, keys, N);
    double t_view = ip_now_s() - t1;
    char *vb = resume_view(&b, keys, N);
    expect_same_view(va, vb, "100,000 tasks");
    printf("journal_compact: resume view of %d tasks: %.2f s (original journal)\n", N, t_view);
    free(va), free(vb);
    for (int i = 0; i < N; i++) free(keys[i]);
    free(keys), free(done);
}
