/* `ipsweep report --format html`: one self-contained page (report.h,
 * docs/report.md "HTML"): the run's status and its failures, every table,
 * every figure inline as SVG, and the provenance with the spec's text. It is
 * meant to be read where compute nodes have no internet and to be passed
 * around as one file, so it loads nothing: no scripts, no fonts, no images by
 * URL, and a Content-Security-Policy that forbids the browser from fetching
 * anything even if some text slipped through.
 *
 * Like the other formats the page is a pure function of the file: the
 * figures are drawn into a private temporary directory whose name never
 * reaches the page. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "../../core/io/h5util.h"
#include "report.h"

/* The largest spec text or overrides attribute shown; a file claiming more
 * is not one ipsweep wrote (specs are a few KB). */
#define HTML_MAX_TEXT ((size_t)16 << 20)
/* The largest SVG inlined: gnuplot's are tens to hundreds of KB. */
#define HTML_MAX_SVG ((size_t)64 << 20)

/* Text as HTML character data or a quoted attribute value. */
static void esc(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* An id/fragment from a name: letters, digits and '-' ("fake1-pv1"). */
static void id_text(FILE *out, const char *s) {
    for (; *s; s++) fputc((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ? *s : '-', out);
}

/* Small and printable: system fonts only (no web fonts), readable in print. */
static const char *style =
    "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#1b1f24;"
    "margin:0 auto;max-width:1200px;padding:0 24px 48px}\n"
    "h1{font-size:26px;margin:24px 0 4px}h2{font-size:21px;margin:32px 0 8px;border-bottom:2px solid #d0d7de;"
    "padding-bottom:4px}h3{font-size:17px;margin:22px 0 6px}\n"
    "nav a{margin-right:14px}a{color:#0550ae}\n"
    "table{border-collapse:collapse;margin:6px 0 4px;font-variant-numeric:tabular-nums}\n"
    "th,td{border:1px solid #d0d7de;padding:3px 9px;vertical-align:top}th{background:#f3f5f7;text-align:left}\n"
    "td.n,th.n{text-align:right;white-space:nowrap}tbody tr:nth-child(even){background:#fafbfc}\n"
    ".note{color:#57606a;margin:2px 0 6px}.partial{color:#57606a;font-size:13px}\n"
    ".badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}\n"
    ".s-done{background:#1a7f37}.s-failed{background:#cf222e}.s-running{background:#bf8700}"
    ".s-stopped{background:#6e7781}\n"
    ".notice{border-left:4px solid #bf8700;background:#fff8c5;padding:6px 12px;margin:10px 0}\n"
    "pre{background:#f6f8fa;border:1px solid #d0d7de;padding:10px;overflow:auto;font-size:13px}\n"
    "td.err{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px;white-space:pre-wrap}\n"
    "figure{margin:12px 0 28px}figure svg{width:100%;max-width:640px;height:auto;display:block}\n"
    ".wide{overflow-x:auto}\n"
    "figcaption{font-weight:600;margin-bottom:4px}\n"
    "dl.prov{display:grid;grid-template-columns:max-content auto;gap:2px 16px}dl.prov dt{font-weight:600}"
    "dl.prov dd{margin:0;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px;word-break:break-all}\n";

/* ------------------------------------------------------------------------- */
/* status and failures                                                       */

/* The statuses in the order they are shown, with the bar's colours. */
static const struct {
    const char *name;
    const char *colour;
} statuses[] = {{"done", "#1a7f37"},    {"failed", "#cf222e"},  {"skipped", "#8c959f"},
                {"running", "#bf8700"}, {"pending", "#d0d7de"}, {"interrupted", "#8250df"}};

static long long status_count(const rp_file *f, int i) {
    const long long v[] = {f->ndone, f->nfailed, f->nskipped, f->nrunning, f->npending, f->ninterrupted};
    return v[i];
}

/* One stacked bar of the task counts (inline SVG: no image to load). */
static void status_bar(FILE *out, const rp_file *f) {
    if (f->total <= 0) return;
    const double w = 600;
    fprintf(out, "<svg class=\"bar\" width=\"%.0f\" height=\"18\" viewBox=\"0 0 %.0f 18\" role=\"img\" "
                 "aria-label=\"tasks by status\">",
            w, w);
    double x = 0;
    for (int i = 0; i < (int)(sizeof statuses / sizeof *statuses); i++) {
        long long n = status_count(f, i);
        if (n <= 0) continue;
        double dx = w * (double)n / (double)f->total;
        fprintf(out, "<rect x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"18\" fill=\"%s\"><title>%lld %s</title></rect>",
                x, dx, statuses[i].colour, n, statuses[i].name);
        x += dx;
    }
    fputs("</svg>\n", out);
}

/* The run's state in one word, from the root attributes (docs/results.md). */
static void run_state(const rp_file *f, const char **word, const char **cls) {
    if (f->in_progress) *word = "running", *cls = "s-running";
    else if (f->nfailed > 0) *word = "failed", *cls = "s-failed";
    else if (f->ndone == f->total) *word = "done", *cls = "s-done";
    else *word = "stopped", *cls = "s-stopped"; /* interrupted, or skipped/pending left */
}

static void write_status(FILE *out, const rp_file *f) {
    const char *word, *cls;
    run_state(f, &word, &cls);
    fprintf(out, "<section id=\"status\">\n<h2>Status</h2>\n<p><span class=\"badge %s\">%s</span> %lld tasks</p>\n",
            cls, word, f->total);
    if (f->in_progress)
        fputs("<p class=\"notice\"><b>In progress</b>: the run has not finished (or was stopped before it could say "
              "so); the tables show the tasks done so far, * marks rows still waiting for tasks.</p>\n",
              out);
    if (f->ninterrupted > 0)
        fputs("<p class=\"notice\">Some tasks were interrupted with their state saved: <code>ipsweep run "
              "--resume</code> continues them.</p>\n",
              out);
    status_bar(out, f);
    fputs("<table class=\"counts\"><thead><tr>", out);
    for (int i = 0; i < (int)(sizeof statuses / sizeof *statuses); i++) fprintf(out, "<th class=\"n\">%s</th>", statuses[i].name);
    fputs("<th class=\"n\">total</th></tr></thead><tbody><tr>", out);
    for (int i = 0; i < (int)(sizeof statuses / sizeof *statuses); i++)
        fprintf(out, "<td class=\"n\">%lld</td>", status_count(f, i));
    fprintf(out, "<td class=\"n\">%lld</td></tr></tbody></table>\n</section>\n", f->total);
}

/* The tasks of one status with their error messages (the `error` column of
 * /tasks: why a task failed or was skipped). */
static int task_list(FILE *out, const rp_file *f, const char *status) {
    const rp_col *err = rp_tab_col(&f->tasks, "error");
    if (err && !err->is_str) err = NULL;
    int n = 0;
    for (int i = 0; i < f->ntasks; i++) {
        if (strcmp(f->status[i], status)) continue;
        if (!n++) fputs("<div class=\"wide\"><table class=\"tasks\"><thead><tr><th class=\"n\">id</th><th>key</th><th>error</th></tr>"
                        "</thead><tbody>\n",
                        out);
        fprintf(out, "<tr><td class=\"n\">%d</td><td><code>", i);
        esc(out, f->key[i]);
        fputs("</code></td><td class=\"err\">", out);
        esc(out, err ? err->s[i] : "");
        fputs("</td></tr>\n", out);
    }
    if (n) fputs("</tbody></table></div>\n", out);
    return n;
}

static void write_failures(FILE *out, const rp_file *f) {
    fputs("<section id=\"failures\">\n<h2>Failures</h2>\n", out);
    if (!task_list(out, f, "failed")) fputs("<p>No task failed.</p>\n", out);
    if (f->nskipped > 0) {
        /* skipped tasks follow from failures (their dependencies): folded, not hidden */
        fprintf(out, "<details><summary>%lld skipped tasks</summary>\n", f->nskipped);
        task_list(out, f, "skipped");
        fputs("</details>\n", out);
    }
    fputs("</section>\n", out);
}

/* ------------------------------------------------------------------------- */

void rp_html_begin(FILE *out, const rp_file *f) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n", out);
    /* the browser itself refuses any fetch: the page must work offline */
    fputs("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>ipsweep "
          "report: ",
          out);
    esc(out, f->spec_name);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>ipsweep report: ", style);
    esc(out, f->spec_name);
    fputs("</h1>\n<p>Spec <code>", out);
    esc(out, f->spec_name);
    fputs("</code>, written by ", out);
    esc(out, f->software);
    fputs(".</p>\n<nav><a href=\"#status\">Status</a><a href=\"#failures\">Failures</a><a href=\"#tables\">Tables</a>"
          "<a href=\"#figures\">Figures</a><a href=\"#provenance\">Provenance</a></nav>\n</header>\n",
          out);
    write_status(out, f);
    write_failures(out, f);
    fputs("<section id=\"tables\">\n<h2>Tables</h2>\n", out);
}

void rp_html_table(FILE *out, const rp_table *t) {
    fputs("<section class=\"table\" id=\"table-", out);
    id_text(out, t->name);
    fputs("\">\n<h3>", out);
    esc(out, t->title);
    fputs("</h3>\n", out);
    if (t->note[0]) fputs("<p class=\"note\">", out), esc(out, t->note), fputs("</p>\n", out);
    if (!t->nrows) {
        fputs("<p>(no results yet)</p>\n</section>\n", out);
        return;
    }
    fputs("<div class=\"wide\"><table><thead><tr>", out);
    for (int c = 0; c < t->ncols; c++) {
        fputs(t->cols[c].kind == RP_TEXT ? "<th>" : "<th class=\"n\">", out);
        esc(out, t->cols[c].name);
        fputs("</th>", out);
    }
    fputs("</tr></thead>\n<tbody>\n", out);
    char buf[256];
    for (int r = 0; r < t->nrows; r++) {
        fputs("<tr>", out);
        for (int c = 0; c < t->ncols; c++) {
            /* the cells' layout: rows of RP_MAX_COLUMNS (report_tables.c) */
            rp_cell_text(buf, sizeof buf, &t->cells[(size_t)r * RP_MAX_COLUMNS + c], &t->cols[c], " ± ", "–");
            fputs(t->cols[c].kind == RP_TEXT ? "<td>" : "<td class=\"n\">", out);
            esc(out, buf);
            fputs("</td>", out);
        }
        fputs("</tr>\n", out);
    }
    fputs("</tbody></table></div>\n", out);
    if (t->any_partial) fputs("<p class=\"partial\">", out), esc(out, rp_partial_note), fputs("</p>\n", out);
    fputs("</section>\n", out);
}

/* ------------------------------------------------------------------------- */
/* figures                                                                   */

/* The whole of a file (at most HTML_MAX_SVG bytes), NUL-terminated. */
static char *slurp(const char *path, size_t *len) {
    FILE *in = fopen(path, "rb");
    if (!in) return NULL;
    char *s = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            if (cap >= HTML_MAX_SVG) break;
            size_t nc = cap ? cap * 2 : 65536 * 2;
            char *p = realloc(s, nc);
            if (!p) break;
            s = p, cap = nc;
        }
        size_t r = fread(s + n, 1, cap - n - 1, in);
        n += r;
        if (r == 0) {
            if (ferror(in)) break;
            fclose(in);
            s[n] = 0;
            *len = n;
            return s;
        }
    }
    fclose(in);
    free(s);
    return NULL;
}

/* Copies an SVG file's <svg> element into the page. The XML declaration is
 * dropped (not allowed inside HTML), and every id and every reference to one
 * (`id='gpPt3'`, `href='#gpPt3'`, `url(#gpclip1)`) gets the prefix `f<fig>-`:
 * gnuplot uses the same ids in every file, and in one document a reference
 * finds the first element with its id, so the second plot would clip to the
 * first plot's area. */
static int inline_svg(FILE *out, const char *path, int fig) {
    size_t len = 0;
    char *s = slurp(path, &len);
    if (!s) return -1;
    const char *p = strstr(s, "<svg");
    if (!p) {
        free(s);
        return -1;
    }
    while (*p) {
        const char *q = NULL;
        if ((p[0] == ' ' || p[0] == '\t' || p[0] == '\n') && !strncmp(p + 1, "id=", 3) && (p[4] == '"' || p[4] == '\''))
            q = p + 5; /* after the quote */
        else if (!strncmp(p, "href=", 5) && (p[5] == '"' || p[5] == '\'') && p[6] == '#') q = p + 7;
        else if (!strncmp(p, "url(#", 5)) q = p + 5;
        if (q) {
            fwrite(p, 1, (size_t)(q - p), out);
            fprintf(out, "f%d-", fig);
            p = q;
        } else {
            fputc(*p++, out);
        }
    }
    fputc('\n', out);
    free(s);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Removes the private figure directory and everything rp_plots put in it
 * (files only). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char path[4200];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                (size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < sizeof path)
                unlink(path);
        closedir(d);
    }
    rmdir(dir);
}

/* The names of dir's *.svg files, sorted by strcmp (not the locale). */
static int list_svgs(const char *dir, char ***names, int *n, ip_err *e) {
    *names = NULL, *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ip_fail(e, "cannot read the figure directory: %s", strerror(errno));
    int cap = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l <= 4 || strcmp(de->d_name + l - 4, ".svg")) continue;
        if (*n == cap) {
            int nc = cap ? cap * 2 : 16;
            char **p = realloc(*names, (size_t)nc * sizeof *p);
            if (!p) {
                rc = ip_fail(e, "out of memory");
                break;
            }
            *names = p, cap = nc;
        }
        if (!((*names)[*n] = strdup(de->d_name))) {
            rc = ip_fail(e, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, by_name);
    return rc;
}

/* The figures section. Returns -1 (e filled; the page says what is missing)
 * when the figures could not all be drawn or inlined. */
static int write_figures(FILE *out, const rp_file *f, FILE *log, ip_err *e) {
    fputs("<section id=\"figures\">\n<h2>Figures</h2>\n", out);
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    if (!tmp || !tmp[0] || (size_t)snprintf(dir, sizeof dir, "%s/ipsweep-html-XXXXXX", tmp) >= sizeof dir)
        snprintf(dir, sizeof dir, "/tmp/ipsweep-html-XXXXXX");
    if (!mkdtemp(dir)) {
        ip_fail(e, "figures: cannot create a temporary directory %s: %s", dir, strerror(errno));
        fputs("<p>The figures were not drawn: no temporary directory for them.</p>\n</section>\n", out);
        return -1;
    }
    /* rp_plots' messages name the temporary files: kept from the user unless
     * something went wrong */
    FILE *plog = tmpfile();
    int have = 0, rc = rp_plots(f, dir, plog ? plog : log, &have, e);
    if (rc != 0 && plog) {
        char buf[4096];
        size_t r;
        rewind(plog);
        while ((r = fread(buf, 1, sizeof buf, plog)) > 0) fwrite(buf, 1, r, log);
    }
    if (plog) fclose(plog);
    /* the figures that were drawn are shown even when others were not */
    char **names = NULL;
    int n = 0;
    ip_err later = {{0}};
    if (list_svgs(dir, &names, &n, rc ? &later : e) != 0 && rc == 0) rc = -1;
    if (!have)
        fputs("<p>The figures were not drawn: gnuplot is not installed (<code>make deps</code> installs it; "
              "<code>ipsweep report --plots DIR</code> writes their data and scripts).</p>\n",
              out);
    else if (rc != 0) {
        fputs("<p>Some figures could not be drawn: ", out);
        esc(out, e->msg);
        fputs("</p>\n", out);
    } else if (!n) fputs("<p>No figures: the file has no data that is plotted.</p>\n", out);
    for (int i = 0; i < n; i++) {
        char path[8192];
        size_t l = strlen(names[i]) - 4; /* without ".svg" */
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        names[i][l] = 0;
        fputs("<figure id=\"fig-", out);
        id_text(out, names[i]);
        fputs("\"><figcaption>", out);
        esc(out, names[i]);
        fputs("</figcaption>\n", out);
        if (inline_svg(out, path, i) != 0) {
            fputs("<p>(could not be read)</p>\n", out);
            if (rc == 0) rc = ip_fail(e, "figures: cannot read %s.svg", names[i]);
        }
        fputs("</figure>\n", out);
        free(names[i]);
    }
    free(names);
    remove_dir(dir);
    fputs("</section>\n", out);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* provenance                                                                */

/* A scalar string dataset (attr = 0) or attribute (attr = 1) `name` of loc
 * as a malloc'ed string; *s = NULL when absent or unreadable (`why` says
 * which). Here rather than in report_data.c because only the page shows
 * these texts, and a file whose spec text cannot be read still has tables. */
static char *read_text(hid_t loc, const char *name, int attr, const char **why) {
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    char *out = NULL;
    *why = "absent";
    htri_t ex = attr ? H5Aexists(loc, name) : H5Lexists(loc, name, H5P_DEFAULT);
    hid_t o = ex <= 0 ? -1 : attr ? H5Aopen(loc, name, H5P_DEFAULT) : H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t ft = o < 0 ? -1 : attr ? H5Aget_type(o) : H5Dget_type(o);
    hid_t sp = o < 0 ? -1 : attr ? H5Aget_space(o) : H5Dget_space(o);
    hid_t mt = -1;
    if (ex > 0) *why = "unreadable";
    if (ft >= 0 && sp >= 0 && H5Tget_class(ft) == H5T_STRING && H5Sget_simple_extent_npoints(sp) == 1 &&
        (mt = H5Tcopy(ft)) >= 0) {
        htri_t vl = H5Tis_variable_str(ft);
        size_t w = H5Tget_size(ft);
        if (vl > 0) {
            char *s = NULL;
            herr_t r = attr ? H5Aread(o, mt, &s) : H5Dread(o, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s);
            if (r >= 0 && s && strlen(s) <= HTML_MAX_TEXT) out = strdup(s);
            else if (r >= 0 && !s) out = strdup("");
            H5free_memory(s);
        } else if (vl == 0 && w <= HTML_MAX_TEXT && (out = calloc(1, w + 1))) {
            herr_t r = attr ? H5Aread(o, mt, out) : H5Dread(o, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
            if (r < 0) free(out), out = NULL;
        }
    }
    ip_h5_close(mt);
    ip_h5_close(sp);
    ip_h5_close(ft);
    ip_h5_close(o);
    H5Eclear2(H5E_DEFAULT);
    ip_h5_quiet_off(&q);
    return out;
}

static void write_provenance(FILE *out, const rp_file *f) {
    hid_t h = (hid_t)f->hid;
    fputs("<section id=\"provenance\">\n<h2>Provenance</h2>\n", out);
    fputs("<p class=\"note\">The coordinator's build and machine: numbers are bit-identical only for the same build "
          "on the same machine type (docs/results.md).</p>\n<dl class=\"prov\">\n",
          out);
    if (!f->has_provenance) fputs("<dt>provenance</dt><dd>not recorded (a file older than it)</dd>\n", out);
    for (int i = 0; f->has_provenance && i < ip_provenance_nfields; i++) {
        const char *v = ip_provenance_value(&f->provenance, i);
        fputs("<dt title=\"", out);
        esc(out, ip_provenance_fields[i].doc);
        fputs("\">", out);
        esc(out, ip_provenance_fields[i].name);
        fputs("</dt><dd>", out);
        esc(out, v[0] ? v : "(unset)");
        fputs("</dd>\n", out);
    }
    const char *why;
    char *spec_file = read_text(h, "spec_file", 1, &why);
    if (spec_file) fputs("<dt>spec_file</dt><dd>", out), esc(out, spec_file), fputs("</dd>\n", out);
    unsigned long long seed = 0;
    ip_err ignored = {{0}};
    ip_h5_quiet q;
    ip_h5_quiet_on(&q);
    if (H5Aexists(h, "seed") > 0 &&
        ip_h5_attr_read_num(h, "/", "seed", H5T_NATIVE_ULLONG, H5T_INTEGER, 0, &seed, &ignored) == 0)
        fprintf(out, "<dt>seed</dt><dd>%llu</dd>\n", seed);
    ip_h5_quiet_off(&q);
    fputs("</dl>\n<h3>Overrides (<code>--set</code>)</h3>\n", out);
    char *ov = read_text(h, "overrides", 1, &why);
    if (ov && ov[0]) fputs("<pre>", out), esc(out, ov), fputs("</pre>\n", out);
    else fprintf(out, "<p>%s</p>\n", ov ? "None." : "Not recorded.");
    fputs("<h3>Spec</h3>\n", out);
    char *spec = read_text(h, "spec", 0, &why);
    if (spec) fputs("<pre class=\"spec\">", out), esc(out, spec), fputs("</pre>\n", out);
    else fprintf(out, "<p>The spec text is %s in this file.</p>\n", why);
    free(spec_file), free(ov), free(spec);
    fputs("</section>\n", out);
}

int rp_html_end(FILE *out, const rp_file *f, int ntables, FILE *log, ip_err *e) {
    if (!ntables) fputs("<p>No finished tasks with tables yet.</p>\n", out);
    fputs("</section>\n", out);
    int rc = write_figures(out, f, log, e);
    write_provenance(out, f);
    fputs("<footer><p class=\"note\">Made by <code>ipsweep report --format html</code>; self-contained: no scripts, "
          "nothing loaded.</p></footer>\n</body>\n</html>\n",
          out);
    return rc;
}
