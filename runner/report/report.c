/* `ipsweep report RESULTS.h5`: the tables of a results file on stdout or
 * --out FILE (markdown, LaTeX, CSV, or one HTML page with the figures) and,
 * with --plots DIR, the plots (report.h, docs/report.md). */
#include <stdio.h>
#include <string.h>
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

/* The runs' column-group labels: --label's list, else the spec names when
 * they differ, else the files' base names (without .h5) when they differ,
 * else A, B, C, D. Returns 0 or a usage error (exit 2). */
static int run_labels(const char *given, const rp_file *f, const char *const *paths, int n, char (*out)[48]) {
    if (given[0]) {
        int k = 0;
        for (const char *p = given; *p && k <= n; k++) {
            size_t l = strcspn(p, ",");
            if (k < n) snprintf(out[k], sizeof out[k], "%.*s", (int)l, p);
            p += l + (p[l] == ',');
        }
        if (k != n) return cli_error("report", "--label names %d run%s, but %d results files are given", k, k == 1 ? "" : "s", n);
    } else {
        for (int pass = 0; pass < 3; pass++) {
            for (int i = 0; i < n; i++) {
                const char *b = strrchr(paths[i], '/');
                b = b ? b + 1 : paths[i];
                size_t l = strlen(b);
                if (l > 3 && !strcmp(b + l - 3, ".h5")) l -= 3;
                if (pass == 0) snprintf(out[i], sizeof out[i], "%.*s", (int)sizeof out[i] - 1, f[i].spec_name);
                else if (pass == 1) snprintf(out[i], sizeof out[i], "%.*s", (int)l, b);
                else snprintf(out[i], sizeof out[i], "%c", 'A' + i);
            }
            int same = 0;
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++) same |= !strcmp(out[i], out[j]) || !out[i][0];
            if (!same) break;
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (!strcmp(out[i], out[j])) return cli_error("report", "--label: \"%s\" names two runs", out[i]);
    /* a label heads CSV columns ("A.test_acc"): no separators in it */
    for (int i = 0; i < n; i++)
        for (char *p = out[i]; *p; p++)
            if (*p == ',' || *p == '"' || *p == '\n' || *p == '\r') *p = '_';
    return 0;
}

/* Whether a and b name the same existing file (an --out that would replace
 * a results file it reads). */
int cmd_report(int argc, char **argv) {
    char format[16] = "md", tables[512] = "", plots[1024] = "", label[256] = "", outpath[1024] = "";
    cli_opt opts[] = {
        {"format", CLI_STR, format, sizeof format, "md|latex|csv|html",
         "output format (default md); html: one self-contained page with the status, failures, tables, figures "
         "(inline SVG) and provenance"},
        {"table", CLI_LIST, tables, sizeof tables, "NAME",
         "only this table (repeatable, or a comma list): passport, models, finetune, fake1, fake2, fake3, prune, "
         "flip, ipguard, ipguard-suspects, ipguard-attacks"},
        {"plots", CLI_STR, plots, sizeof plots, "DIR",
         "also write the figures: DIR/<plot>.pdf, .svg and .png (gnuplot), with their .dat and .gp"},
        {"label", CLI_STR, label, sizeof label, "A,B",
         "with several results files: the runs' column-group labels (default the spec names, else the file names)"},
        {"out", CLI_STR, outpath, sizeof outpath, "FILE",
         "write to FILE (replaced atomically: a reader sees the old or the whole new file) instead of stdout"},
    };
    cli_cmd c = {"report",
                 "ipsweep report RESULTS.h5 [--format md|latex|csv|html] [--table NAME ...] [--plots DIR] [--out FILE]\n"
                 "       ipsweep report A.h5 B.h5 [C.h5 D.h5] [--format md|latex|csv] [--table NAME ...] [--label A,B] "
                 "[--out FILE]",
                 "Prints paper-style tables of a results file (docs/report.md): passport models as\n"
                 "detection% (accuracy%), fake passports, fake2/fake3, pruning, sign flipping, fine-tuning,\n"
                 "IPGuard; values averaged over seeds (mean ± sample std). Works on a run still in\n"
                 "progress: what is there so far, marked. The output is a pure function of the file.\n"
                 "With several files, compares the runs: the same tables, rows matched by their settings,\n"
                 "one column group of numbers per run.",
                 opts, (int)(sizeof opts / sizeof *opts), 4, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    int nruns = c.npositional;
    if (nruns < 1) return cli_error("report", "expects one results file, or up to 4 to compare (see --help)");
    if (nruns > 1 && plots[0]) return cli_error("report", "--plots takes one results file, not %d", nruns);
    if (nruns == 1 && label[0]) return cli_error("report", "--label names the runs of a comparison: give several results files");
    rp_format fmt = RP_MD;
    int html = !strcmp(format, "html"); /* not an rp_format: report_html.c writes it */
    if (html && nruns > 1) return cli_error("report", "--format html takes one results file, not %d", nruns);
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
        if (!ip_parent_dir_exists(outpath))
            return cli_error("report", "--out %s: its directory does not exist", outpath);
        for (int i = 0; i < nruns; i++)
            if (ip_same_file(outpath, c.positional[i]))
                return cli_error("report", "--out %s is a results file it reads", outpath);
    }
    rp_file f[4];
    int nopen = 0;
    ip_err e = {{0}};
    /* every check of every file is in rp_open, before anything is printed or
     * --plots DIR is created: a bad file writes nothing */
    for (; nopen < nruns; nopen++)
        if (rp_open(&f[nopen], c.positional[nopen], &e) != 0) {
            fprintf(stderr, "ipsweep report: %s\n", e.msg);
            for (int i = 0; i < nopen; i++) rp_close(&f[i]);
            return ip_err_exit_code(&e); /* 2: missing or bad file; 1: out of memory */
        }
    char labels[4][48];
    const char *lp[4];
    if (nruns > 1 && run_labels(label, f, c.positional, nruns, labels) != 0) {
        for (int i = 0; i < nruns; i++) rp_close(&f[i]);
        return 2;
    }
    const rp_file *fp[4];
    for (int i = 0; i < nruns; i++) lp[i] = labels[i], fp[i] = &f[i];
    /* --out FILE: written to FILE.tmp.<pid>, renamed over FILE when complete */
    char tmp[1100] = "";
    FILE *out = stdout;
    if (outpath[0] && (ip_tmp_path(outpath, tmp, sizeof tmp) != 0 || !(out = fopen(tmp, "w")))) {
        fprintf(stderr, "ipsweep report: cannot write %s\n", outpath);
        for (int i = 0; i < nruns; i++) rp_close(&f[i]);
        return 1;
    }
    /* a single CSV table is plain CSV: no header line, no "# name" line */
    int alone = fmt == RP_CSV && nselected == 1;
    if (html) rp_html_begin(out, &f[0]);
    else if (!alone) {
        if (nruns == 1) rp_write_header(out, &f[0], fmt);
        else rp_write_compare_header(out, fp, lp, nruns, fmt);
    }
    int status = 0, printed = 0;
    for (int i = 0; i < rp_ntable_names && status == 0; i++) {
        const char *name = rp_table_names[i];
        if (tables[0] && !listed(tables, name)) continue;
        rp_table t[4], both;
        int built = 0, any = 0;
        for (; built < nruns; built++) {
            if (rp_build_table(&f[built], name, &t[built], &e) != 0) {
                fprintf(stderr, "ipsweep report: table %s: %s\n", name, e.msg);
                status = 1;
                break;
            }
            any |= t[built].nrows || t[built].waiting;
        }
        /* without --table, tables of kinds the spec does not have are left out */
        if (status == 0 && nruns == 1 && (any || tables[0])) {
            if (html) rp_html_table(out, &t[0]);
            else rp_write_table(out, &t[0], fmt, alone);
            printed++;
        }
        else if (status == 0 && (any || tables[0])) {
            if (rp_compare(t, nruns, lp, &both, &e) != 0) {
                fprintf(stderr, "ipsweep report: table %s: %s\n", name, e.msg);
                status = ip_err_exit_code(&e);
            } else {
                rp_write_table(out, &both, fmt, alone), printed++;
                rp_table_free(&both);
            }
        }
        for (int k = 0; k < built; k++) rp_table_free(&t[k]);
    }
    int complete = status == 0; /* the output is whole: --out FILE is replaced */
    if (html && status == 0 && rp_html_end(out, &f[0], printed, stderr, &e) != 0) {
        fprintf(stderr, "ipsweep report: %s\n", e.msg); /* the page is complete, without those figures */
        status = 1;
    } else if (!html && status == 0 && !printed && fmt != RP_CSV)
        fprintf(out, fmt == RP_LATEX ? "%% no finished tasks with tables yet\n" : "No finished tasks with tables yet.\n");
    if (status == 0 && plots[0]) {
        int have = 0;
        if (rp_plots(&f[0], plots, stderr, &have, &e) != 0) {
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
    for (int i = 0; i < nruns; i++) rp_close(&f[i]);
    return status;
}
