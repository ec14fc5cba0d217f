/* `ipsweep report RESULTS.h5`: the tables of a results file on stdout or
 * --out FILE (markdown, LaTeX, CSV, or one HTML page with the figures) and,
 * with --plots DIR, the plots (report.h, docs/report.md). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../core/util/atomic_file.h"
#include "../cli/cli.h"
#include "../cli/commands.h"
#include "report.h"

/* Whether `name` is listed in the comma list `list`. */
static int listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && strncmp(p, name, n) == 0) return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

/* Whether a and b name the same existing file (an --out that would replace
 * the results file it reads). */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_report(int argc, char **argv) {
    char format[16] = "md", tables[512] = "", plots[1024] = "", outpath[1024] = "";
    cli_opt opts[] = {
        {"format", CLI_STR, format, sizeof format, "md|latex|csv|html",
         "output format (default md); html: one self-contained page with the status, failures, tables, figures "
         "(inline SVG) and provenance"},
        {"table", CLI_LIST, tables, sizeof tables, "NAME",
         "only this table (repeatable, or a comma list): passport, models, finetune, fake1, fake2, fake3, prune, "
         "flip, ipguard, ipguard-suspects, ipguard-attacks"},
        {"plots", CLI_STR, plots, sizeof plots, "DIR", "also write the plots: DIR/<plot>.png, .dat and .gp (gnuplot)"},
        {"out", CLI_STR, outpath, sizeof outpath, "FILE",
         "write to FILE (replaced atomically: a reader sees the old or the whole new file) instead of stdout"},
    };
    cli_cmd c = {"report",
                 "ipsweep report RESULTS.h5 [--format md|latex|csv|html] [--table NAME ...] [--plots DIR] [--out FILE]",
                 "Prints paper-style tables of a results file (docs/report.md): passport models as\n"
                 "detection% (accuracy%), fake passports, fake2/fake3, pruning, sign flipping, fine-tuning,\n"
                 "IPGuard; values averaged over seeds (mean ± sample std). Works on a run still in\n"
                 "progress: what is there so far, marked. The output is a pure function of the file.",
                 opts, (int)(sizeof opts / sizeof *opts), 1, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (c.npositional != 1) return cli_error("report", "expects one results file (see --help)");
    rp_format fmt = RP_MD;
    int html = !strcmp(format, "html"); /* not an rp_format: report_html.c writes it */
    if (html || !strcmp(format, "md")) fmt = RP_MD;
    else if (!strcmp(format, "latex")) fmt = RP_LATEX;
    else if (!strcmp(format, "csv")) fmt = RP_CSV;
    else return cli_error("report", "--format must be md, latex, csv or html, got \"%s\"", format);
    int nselected = 0;
    for (const char *p = tables; *p;) {
        size_t l = strcspn(p, ",");
        int known = 0;
        for (int i = 0; i < rp_ntable_names && !known; i++)
            known = strlen(rp_table_names[i]) == l && !strncmp(p, rp_table_names[i], l);
        if (!known) {
            char list[400] = "";
            for (int i = 0; i < rp_ntable_names; i++) {
                size_t n = strlen(list);
                snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", rp_table_names[i]);
            }
            return cli_error("report", "unknown table \"%.*s\" (tables: %s)", (int)l, p, list);
        }
        nselected++;
        p += l + (p[l] == ',');
    }
    if (outpath[0]) {
        char dir[1024];
        struct stat st;
        if (ip_dir_of(outpath, dir, sizeof dir) != 0 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return cli_error("report", "--out %s: its directory does not exist", outpath);
        if (same_file(outpath, c.positional[0]))
            return cli_error("report", "--out %s is the results file itself", outpath);
    }
    rp_file f;
    ip_err e = {{0}};
    /* every check of the file is in rp_open, before anything is printed or
     * --plots DIR is created: a bad file writes nothing */
    if (rp_open(&f, c.positional[0], &e) != 0) {
        fprintf(stderr, "ipsweep report: %s\n", e.msg);
        return ip_err_exit_code(&e); /* 2: missing or bad file; 1: out of memory */
    }
    /* --out FILE: written to FILE.tmp.<pid>, renamed over FILE when complete */
    char tmp[1100] = "";
    FILE *out = stdout;
    if (outpath[0] && (ip_tmp_path(outpath, tmp, sizeof tmp) != 0 || !(out = fopen(tmp, "w")))) {
        fprintf(stderr, "ipsweep report: cannot write %s\n", outpath);
        rp_close(&f);
        return 1;
    }
    /* a single CSV table is plain CSV: no header line, no "# name" line */
    int alone = fmt == RP_CSV && nselected == 1;
    if (html) rp_html_begin(out, &f);
    else if (!alone) rp_write_header(out, &f, fmt);
    int status = 0, printed = 0;
    for (int i = 0; i < rp_ntable_names && status == 0; i++) {
        const char *name = rp_table_names[i];
        if (tables[0] && !listed(tables, name)) continue;
        rp_table t;
        if (rp_build_table(&f, name, &t, &e) != 0) {
            fprintf(stderr, "ipsweep report: table %s: %s\n", name, e.msg);
            status = 1;
            break;
        }
        /* without --table, tables of kinds the spec does not have are left out */
        if (t.nrows || t.waiting || tables[0]) {
            if (html) rp_html_table(out, &t);
            else rp_write_table(out, &t, fmt, alone);
            printed++;
        }
        rp_table_free(&t);
    }
    int complete = status == 0; /* the output is whole: --out FILE is replaced */
    if (html && status == 0 && rp_html_end(out, &f, printed, stderr, &e) != 0) {
        fprintf(stderr, "ipsweep report: %s\n", e.msg); /* the page is complete, without those figures */
        status = 1;
    } else if (!html && status == 0 && !printed && fmt != RP_CSV)
        fprintf(out, fmt == RP_LATEX ? "%% no finished tasks with tables yet\n" : "No finished tasks with tables yet.\n");
    if (status == 0 && plots[0]) {
        int have = 0;
        if (rp_plots(&f, plots, stderr, &have, &e) != 0) {
            fprintf(stderr, "ipsweep report: plots: %s\n", e.msg);
            status = 1;
        }
    }
    if (out != stdout) {
        if (fclose(out) != 0) {
            fprintf(stderr, "ipsweep report: error writing %s\n", tmp);
            status = 1, complete = 0;
        }
        if (!complete) unlink(tmp);
        else if (ip_commit_tmp(tmp, outpath, "writing", &e) != 0) { /* removes tmp on failure */
            fprintf(stderr, "ipsweep report: %s\n", e.msg);
            status = 1;
        }
    } else if (fflush(stdout) != 0 && status == 0) {
        fprintf(stderr, "ipsweep report: error writing the output\n");
        status = 1;
    }
    rp_close(&f);
    return status;
}
