/* Bad journals are bad input (RN_JOURNAL_BAD, exit 2 in `run --resume`):
 * garbage, NUL bytes, a wrong header or version, unknown or malformed
 * records (huge numbers, a huge array count), a damaged line in the middle,
 * a second header, another spec's journal. Each error names the journal and
 * the line, and neither reading nor a refused resume changes the file. The
 * identity of a run covers its effective settings (data.*, seed), and a
 * refused resume names the setting that changed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../runner/run/journal.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "jbad")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(journal_bad, .init = make_dir, .fini = remove_dir);

#define HASH 0x0123456789abcdefULL

/* Appends "<payload>\t<crc>\n" (a line with a valid checksum: only the content is bad). */
static size_t put_line(char *buf, size_t at, const char *payload, size_t n) {
    memcpy(buf + at, payload, n);
    unsigned long c = crc32(0L, (const Bytef *)payload, (uInt)n) & 0xffffffffUL;
    return at + n + (size_t)sprintf(buf + at + n, "\t%08lx\n", c);
}
static size_t put(char *buf, size_t at, const char *payload) { return put_line(buf, at, payload, strlen(payload)); }

static size_t header(char *buf) {
    char h[128];
    snprintf(h, sizeof h, "H\tipsweep-journal\t%d\t%016llx", RN_JOURNAL_VERSION, (unsigned long long)HASH);
    return put(buf, 0, h);
}

static char *slurp_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *b = malloc(1 << 16);
    *len = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

/* Writes the journal of output, expects RN_JOURNAL_BAD from reading and from
 * a resume's open, an error naming the file and `line N`, and no change. */
static void expect_bad(const char *tag, const char *bytes, size_t len, int line) {
    char name[64];
    snprintf(name, sizeof name, "%s.h5", tag);
    char out[200], jp[1100];
    snprintf(out, sizeof out, "%s", tu_path(tdir, name));
    cr_assert_eq(rn_journal_path(jp, sizeof jp, out), 0);
    FILE *f = fopen(jp, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(out, HASH, &st, &e), RN_JOURNAL_BAD, "%s: read gave no bad-input error (%s)", tag,
                 e.msg);
    char want[32];
    snprintf(want, sizeof want, "line %d", line);
    cr_assert(strstr(e.msg, jp) && strstr(e.msg, want), "%s: \"%s\" should name %s and %s", tag, e.msg, jp, want);
    cr_assert(!strchr(e.msg, '\n'), "%s: one line: %s", tag, e.msg);
    rn_journal j;
    ip_err e2 = {{0}};
    int rc = rn_journal_open(&j, out, HASH, 0, &e2);
    rn_journal_close(&j);
    size_t n2;
    char *after = slurp_file(jp, &n2);
    cr_assert(n2 == len && memcmp(after, bytes, len) == 0, "%s: the journal was changed", tag);
    free(after);
    /* open only checks what appending needs (header, starts); where it refuses, it is bad input too */
    if (rc != 0) cr_assert_eq(rc, RN_JOURNAL_BAD, "%s: open: %s", tag, e2.msg);
}

Test(journal_bad, every_bad_journal_is_bad_input_with_file_and_line) {
    static char b[1 << 15];
    size_t n;
    expect_bad("garbage", "hello world\nmore\n", 17, 1);
    expect_bad("nul_header", "H\tipsweep-journal\0\t1\n", 21, 1);
    {
        n = put(b, 0, "H\tipsweep-journal\t9\t0123456789abcdef");
        expect_bad("version", b, n, 1);
        n = put(b, 0, "H\tipsweep-journal\t1\t0123456789abcdeg");
        expect_bad("hash_field", b, n, 1);
        n = put(b, 0, "H\tipsweep-journal\t1\tfedcba9876543210"); /* another spec's journal */
        expect_bad("other_spec", b, n, 1);
    }
    n = header(b);
    n = put(b, n, "X\tnonsense");
    expect_bad("unknown_type", b, n, 2);
    n = header(b);
    n = put(b, n, "S\ttrain:a\t0\t1");
    n = put(b, n, "F\ttrain:a\tdone\t99999999999999999999999\t0.5\t1\t\t0\t0"); /* rank out of range */
    expect_bad("huge_rank", b, n, 3);
    n = header(b);
    n = put(b, n, "F\ttrain:a\tdone\t1\t0.5\t1\t\t0\t1\tacc\t4611686018427387903\t0.5"); /* array count */
    expect_bad("huge_array", b, n, 2);
    n = header(b);
    n = put(b, n, "F\ttrain:a\tdone\t1\t0.5\t1\t\t1000000\t0");
    expect_bad("huge_scalars", b, n, 2);
    n = header(b);
    static const char nul_rec[] = "F\ttrain:a\0done\t1\t0.5\t1\t\t0\t0"; /* a NUL byte inside a record */
    n = put_line(b, n, nul_rec, sizeof nul_rec - 1);
    expect_bad("nul_record", b, n, 2);
    n = header(b);
    n = put(b, n, "S\ttrain:a\t0\t1");
    memcpy(b + n, "S\ttrain:b\t0\t1\tdeadbe\n", 21); /* cut short, then a valid line */
    n += 21;
    n = put(b, n, "S\ttrain:c\t0\t1");
    expect_bad("truncated_middle", b, n, 3);
    n = header(b);
    n = put(b, n, "S\ttrain:a\t0\t1");
    n = header(b + n) + n;
    expect_bad("second_header", b, n, 3);
    n = header(b);
    n = put(b, n, "S\ttrain:a\tzero\t1");
    expect_bad("bad_start", b, n, 2);
    n = header(b);
    n = put(b, n, "D\tseed\t1\tdata.source");
    expect_bad("bad_settings", b, n, 2);
}

/* A torn LAST line is what kill -9 leaves: not an error (test_results.c has the rest). */
Test(journal_bad, torn_last_line_is_not_bad_input) {
    static char b[4096];
    size_t n = header(b);
    n = put(b, n, "S\ttrain:a\t0\t1");
    memcpy(b + n, "F\ttrain:a\tdo", 12);
    n += 12;
    char out[200], jp[1100];
    snprintf(out, sizeof out, "%s", tu_path(tdir, "torn.h5"));
    cr_assert_eq(rn_journal_path(jp, sizeof jp, out), 0);
    FILE *f = fopen(jp, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    rn_journal_state st;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_read(out, HASH, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.torn, 1);
    rn_journal_state_free(&st);
}

Test(journal_bad, identity_covers_the_effective_settings_and_names_a_change) {
    char text[] = "name: x\n";
    rn_spec s;
    memset(&s, 0, sizeof s);
    s.text = text;
    s.seed = 1;
    snprintf(s.data_source, sizeof s.data_source, "synthetic:64x1x8x8");
    s.train_limit = 2500;
    const uint64_t h0 = rn_journal_spec_hash(&s);
    s.train_limit = 2000; /* --set data.train_limit=2000 */
    cr_assert_neq(rn_journal_spec_hash(&s), h0);
    s.train_limit = 2500;
    s.test_limit = 7;
    cr_assert_neq(rn_journal_spec_hash(&s), h0);
    s.test_limit = 0;
    snprintf(s.data_source, sizeof s.data_source, "synthetic:64x1x8x8/3");
    cr_assert_neq(rn_journal_spec_hash(&s), h0);
    snprintf(s.data_source, sizeof s.data_source, "synthetic:64x1x8x8");
    cr_assert_eq(rn_journal_spec_hash(&s), h0);

    /* a run records its settings; a resume with others is refused by name, the journal untouched */
    snprintf(s.output, sizeof s.output, "%s", tu_path(tdir, "ident.h5"));
    rn_journal j;
    ip_err e = {{0}};
    cr_assert_eq(rn_journal_open(&j, s.output, h0, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_note_settings(&j, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(rn_journal_start(&j, "train:a", 0, &e), 0, "%s", e.msg);
    rn_journal_close(&j);
    char jp[1100];
    cr_assert_eq(rn_journal_path(jp, sizeof jp, s.output), 0);
    size_t n0;
    char *before = slurp_file(jp, &n0);
    char msg[1000];
    cr_assert_eq(rn_journal_explain_change(s.output, &s, msg, sizeof msg), 0, "same settings: %s", msg);
    rn_journal_state st;
    cr_assert_eq(rn_journal_read(s.output, h0, &st, &e), 0, "the D line is read: %s", e.msg);
    rn_journal_state_free(&st);
    s.train_limit = 2000;
    s.test_limit = 100;
    cr_assert_eq(rn_journal_read(s.output, rn_journal_spec_hash(&s), &st, &e), RN_JOURNAL_BAD);
    cr_assert_eq(rn_journal_explain_change(s.output, &s, msg, sizeof msg), 1);
    cr_assert(strstr(msg, "data.train_limit is 2000 but the run was started with 2500") &&
                  strstr(msg, "data.test_limit is 100 but the run was started with 0"),
              "%s", msg);
    size_t n1;
    char *after = slurp_file(jp, &n1);
    cr_assert(n0 == n1 && memcmp(before, after, n0) == 0, "the refused resume changed the journal");
    free(before), free(after);
}
