/* `ipsweep report --format html` (runner/report/report_html.c) on fixture
 * results files (report_fixture.h): everything from the file is escaped (task
 * errors, the spec's text, table titles and cells), the run's state and its
 * failures are shown, and without gnuplot the page says the figures were not
 * drawn and leaves no temporary directory. The rendering in a real browser
 * is tests/cli/test_html.sh. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "report-html")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(report_html, .init = make_dir, .fini = remove_dir);

static fx_task tasks[] = {
    {"train:base[seed=1]", "train", "base", "done", "", "arch=small-p;norm=bn;scheme=baseline;seed=1", "test_acc=0.80",
     NULL},
    {"train:base[seed=2]", "train", "base", "running", "", "arch=small-p;norm=bn;scheme=baseline;seed=2", "", NULL},
    {"prune:pruned[rate=0.5]<train:base[seed=1]>", "prune", "pruned", "failed", "0",
     "model=train:base[seed=1];rate=0.5", "", NULL},
    {"prune:pruned[rate=0.5]<train:base[seed=2]>", "prune", "pruned", "skipped", "1",
     "model=train:base[seed=2];rate=0.5", "", NULL},
};
#define NTASKS ((int)(sizeof tasks / sizeof *tasks))

static const char *spec_text = "name: fixture\n# </pre><script>alert('x')</script> & \"q\"\n";

/* The fixture plus what the results writer adds and the fixture lacks: the
 * `error` column of /tasks and the /spec text. */
static const char *write_file(void) {
    const char *p = tu_path(tdir, "r.h5");
    cr_assert_eq(fx_write(p, tasks, NTASKS, 1, NULL), 0);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "tasks", H5P_DEFAULT);
    const char *err[NTASKS] = {"", "", "cannot open <model> & \"weights\"", "a dependency failed"};
    cr_assert_eq(fx_col_str(g, "error", NTASKS, err), 0);
    hid_t t = fx_str_type(), sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, "spec", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert_geq(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &spec_text), 0);
    H5Dclose(d), H5Sclose(sp), H5Tclose(t), H5Gclose(g), H5Fclose(f);
    return p;
}

/* The whole page of a file, as report.c writes it (every table with rows). */
static char *page(const char *path, int *end_rc) {
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, path, &e), 0, "%s", e.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    cr_assert_not_null(m);
    rp_html_begin(m, &f);
    int n = 0;
    for (int i = 0; i < rp_ntable_names; i++) {
        rp_table t;
        cr_assert_eq(rp_build_table(&f, rp_table_names[i], &t, &e), 0, "%s", e.msg);
        if (t.nrows || t.waiting) rp_html_table(m, &t), n++;
        rp_table_free(&t);
    }
    *end_rc = rp_html_end(m, &f, n, stderr, &e);
    fclose(m);
    rp_close(&f);
    return buf;
}

Test(report_html, state_failures_and_spec_escaped_without_gnuplot) {
    const char *p = write_file();
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/tmp", tdir);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    setenv("TMPDIR", tmp, 1);
    setenv("PATH", "/nonexistent", 1); /* no gnuplot */
    int rc;
    char *h = page(p, &rc);
    cr_assert_eq(rc, 0);
    cr_assert(!strncmp(h, "<!DOCTYPE html>", 15));
    cr_assert(strstr(h, "<span class=\"badge s-running\">running</span>"), "%s", h);
    cr_assert(strstr(h, "<b>In progress</b>"));
    cr_assert(strstr(h, "<td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">1</td><td class=\"n\">1</td>"
                        "<td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">4</td>"),
              "%s", h);
    cr_assert(strstr(h, "<tr><td class=\"n\">2</td><td><code>prune:pruned[rate=0.5]&lt;train:base[seed=1]&gt;</code>"
                        "</td><td class=\"err\">cannot open &lt;model&gt; &amp; &quot;weights&quot;</td></tr>"),
              "%s", h);
    cr_assert(strstr(h, "<details><summary>1 skipped tasks</summary>"));
    cr_assert(strstr(h, "a dependency failed"));
    cr_assert(strstr(h, "# &lt;/pre&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\n</pre>"),
              "%s", h);
    cr_assert_null(strstr(h, "<script"));
    cr_assert(strstr(h, "<h3>Trained models</h3>"));
    cr_assert(strstr(h, "The figures were not drawn: gnuplot is not installed"));
    cr_assert(strstr(h, "<dt>spec_file</dt><dd>fixture.yaml</dd>"));
    cr_assert(strstr(h, "</html>\n"));
    /* the private figure directory is gone */
    DIR *d = opendir(tmp);
    cr_assert_not_null(d);
    struct dirent *de;
    int left = 0;
    while ((de = readdir(d))) left += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    cr_assert_eq(left, 0, "the figure directory was left in %s", tmp);
    free(h);
}

Test(report_html, table_cells_are_escaped_and_numbers_right_aligned) {
    rp_table t = {.name = "x", .title = "a<b & \"c\"", .note = "n > 1", .ncols = 2, .nrows = 1, .any_partial = 1};
    snprintf(t.cols[0].name, sizeof t.cols[0].name, "model");
    t.cols[0].kind = RP_TEXT;
    snprintf(t.cols[1].name, sizeof t.cols[1].name, "acc.");
    t.cols[1].kind = RP_STAT, t.cols[1].scale = 100, t.cols[1].decimals = 1;
    rp_cell cells[RP_MAX_COLUMNS] = {{.text = "ft<pv1> & 'x'"}, {.a = {0.5, 0.01, 2}, .partial = 1}};
    t.cells = cells;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    rp_html_table(m, &t);
    fclose(m);
    cr_assert(strstr(buf, "<h3>a&lt;b &amp; &quot;c&quot;</h3>\n<p class=\"note\">n &gt; 1</p>"), "%s", buf);
    cr_assert(strstr(buf, "<tr><th>model</th><th class=\"n\">acc.</th></tr>"), "%s", buf);
    cr_assert(strstr(buf, "<tr><td>ft&lt;pv1&gt; &amp; &#39;x&#39;</td><td class=\"n\">50.0 ± 1.0*</td></tr>"), "%s", buf);
    cr_assert(strstr(buf, "<p class=\"partial\">* not every task"), "%s", buf);
    free(buf);
}
