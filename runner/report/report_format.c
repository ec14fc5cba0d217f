/* Tables as markdown, LaTeX (booktabs) or CSV (report.h). Numbers are
 * printed with fixed decimals (markdown, LaTeX; scaled, e.g. percentages) or
 * %.10g unscaled (CSV), so the text depends on the values only. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static const rp_cell *cell_at(const rp_table *t, int r, int c) { return &t->cells[(size_t)r * RP_MAX_COLUMNS + c]; }

/* "85.6", "85.6 ± 0.4" (pm: the ± text), "" when there is no value. */
static void fmt_stat(char *out, size_t cap, rp_stat s, const rp_column *c, int with_std, const char *pm) {
    if (!s.n || isnan(s.mean)) {
        out[0] = 0;
        return;
    }
    int n = snprintf(out, cap, "%.*f", c->decimals, s.mean * c->scale);
    if (with_std && s.n > 1 && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "%s%.*f", pm, c->decimals, s.std * c->scale);
}

/* A cell as display text (markdown/LaTeX): `none` for no value. */
void rp_cell_text(char *out, size_t cap, const rp_cell *x, const rp_column *c, const char *pm, const char *none) {
    char a[80], b[80];
    switch (c->kind) {
    case RP_TEXT: snprintf(out, cap, "%s", x->text); break;
    case RP_STAT:
    case RP_NUM:
        fmt_stat(a, sizeof a, x->a, c, c->kind == RP_STAT, pm);
        snprintf(out, cap, "%s", a[0] ? a : none);
        break;
    case RP_PAIR:
        fmt_stat(a, sizeof a, x->a, c, 1, pm);
        fmt_stat(b, sizeof b, x->b, c, 1, pm);
        if (a[0] && b[0]) snprintf(out, cap, "%s (%s)", a, b);
        else snprintf(out, cap, "%s", b[0] ? b : a[0] ? a : none);
        break;
    case RP_COUNT:
        if (!x->b.n) snprintf(out, cap, "%s", none); /* a compared run without this row */
        else if (x->a.n == x->b.n) snprintf(out, cap, "%d", x->a.n);
        else snprintf(out, cap, "%d/%d", x->a.n, x->b.n);
        break;
    }
    size_t l = strlen(out);
    if (x->partial && c->kind != RP_TEXT && l + 1 < cap) out[l] = '*', out[l + 1] = 0;
}

const char *const rp_partial_note =
    "* not every task of this row is done: the run is in progress, or tasks failed or were skipped.";

/* ------------------------------------------------------------------------- */
/* markdown                                                                  */

static void md_text(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", out);
        else if (*s == '*' || *s == '_') fprintf(out, "\\%c", *s);
        else fputc(*s, out);
    }
}

static void write_md(FILE *out, const rp_table *t) {
    fprintf(out, "## %s\n\n", t->title);
    if (t->note[0]) fprintf(out, "%s\n\n", t->note);
    if (!t->nrows) {
        fprintf(out, "(no results yet)\n\n");
        return;
    }
    fputc('|', out);
    for (int c = 0; c < t->ncols; c++) {
        fputc(' ', out), md_text(out, t->cols[c].name);
        if (t->cols[c].group[0]) fputs(" (", out), md_text(out, t->cols[c].group), fputc(')', out);
        fputs(" |", out);
    }
    fputs("\n|", out);
    for (int c = 0; c < t->ncols; c++) fputs(t->cols[c].kind == RP_TEXT ? "---|" : "---:|", out);
    fputc('\n', out);
    char buf[256];
    for (int r = 0; r < t->nrows; r++) {
        fputc('|', out);
        for (int c = 0; c < t->ncols; c++) {
            rp_cell_text(buf, sizeof buf, cell_at(t, r, c), &t->cols[c], " ± ", "-");
            fputc(' ', out);
            if (t->cols[c].kind == RP_TEXT) md_text(out, buf);
            else fputs(buf, out); /* a trailing '*' stays literal: not followed by text */
            fputs(" |", out);
        }
        fputc('\n', out);
    }
    fputc('\n', out);
    if (t->any_partial) fprintf(out, "\\%s\n\n", rp_partial_note);
}

/* ------------------------------------------------------------------------- */
/* LaTeX                                                                     */

static void tex_text(FILE *out, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '\\': fputs("\\textbackslash{}", out); break;
        case '~': fputs("\\textasciitilde{}", out); break;
        case '^': fputs("\\textasciicircum{}", out); break;
        case '<': fputs("\\textless{}", out); break;
        case '>': fputs("\\textgreater{}", out); break;
        case '[': fputs("{[}", out); break; /* not an optional argument of a preceding \\ */
        case ']': fputs("{]}", out); break;
        case '&': case '%': case '$': case '#': case '_': case '{': case '}': fprintf(out, "\\%c", *s); break;
        default: fputc(*s, out);
        }
    }
}

/* The width in pt of text set in 10 pt Computer Modern (the default of
 * article and of most two-column classes), from the widths of cmr10's
 * glyphs rounded: only to choose between a column-wide and a page-wide
 * float; whether the table fits is measured by TeX itself (write_latex). */
static double tex_width(const char *s) {
    double w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x80) {
            if ((c & 0xC0) != 0x80) w += 7.8; /* a UTF-8 character: "±" */
        } else if (c >= '0' && c <= '9') w += 5.0;
        else if (strchr("il.,:;'![]|", c)) w += 2.8;
        else if (strchr("mw", c)) w += 8.0;
        else if (c == 'W' || c == 'M' || c == '%') w += 9.2;
        else if (c >= 'A' && c <= 'Z') w += 7.3;
        else if (strchr("<>=+", c)) w += 7.8;
        else if (strchr(" ()-/frtj", c)) w += 3.6;
        else w += 5.0;
    }
    return w;
}

/* Layout of the LaTeX tables: a float of the column's width holds a table
 * whose natural width is at most RP_TEX_COLUMN_PT / RP_TEX_MIN_SCALE (it is
 * shrunk by at most that factor), a wider one takes the page's width
 * (table*). 241 pt: the column of two-column classes (IEEEtran 252, ACM 241,
 * article 229). A float longer than a page is "Float too large" and cannot
 * break (longtable refuses two-column mode): tables of more than
 * RP_TEX_MAX_ROWS rows are split into floats of at most that many, the
 * later ones captioned "(continued)". 34 rows with the rules and a
 * three-line caption fill about 500 pt of the 550-600 pt of a page. */
#define RP_TEX_COLUMN_PT 241.0
#define RP_TEX_MIN_SCALE 0.8
#define RP_TEX_MAX_ROWS 34
#define RP_TEX_COLSEP_PT 12.0 /* 2 \tabcolsep */
#define RP_TEX_PAGE_PT 469.0  /* \textwidth of article, two columns or one */

/* A header wider than every cell of its column breaks at the space nearest its
 * middle: two stacked lines (a nested tabular) instead of a wide column. */
static void tex_header(FILE *out, const char *h, double cells, char align) {
    const char *best = NULL;
    if (tex_width(h) > cells)
        for (const char *p = strchr(h, ' '); p; p = strchr(p + 1, ' '))
            if (!best || labs((long)(p - h) * 2 - (long)strlen(h)) < labs((long)(best - h) * 2 - (long)strlen(h)))
                best = p;
    if (!best) {
        tex_text(out, h);
        return;
    }
    char first[sizeof ((rp_column *)0)->name];
    snprintf(first, sizeof first, "%.*s", (int)(best - h), h);
    fprintf(out, "\\begin{tabular}[b]{@{}%c@{}}", align);
    tex_text(out, first);
    fputs("\\\\", out);
    tex_text(out, best + 1);
    fputs("\\end{tabular}", out);
}

/* A header's width as tex_header sets it. */
static double header_width(const char *h, double cells) {
    double w = tex_width(h);
    if (w <= cells) return w;
    double best = w;
    for (const char *p = strchr(h, ' '); p; p = strchr(p + 1, ' ')) {
        char first[sizeof ((rp_column *)0)->name];
        snprintf(first, sizeof first, "%.*s", (int)(p - h), h);
        double a = tex_width(first), b = tex_width(p + 1), m = a > b ? a : b;
        if (m < best) best = m;
    }
    return best;
}

/* The row of column groups (a comparison's runs) above the headers: each
 * group's label over its columns, ruled below. */
static void tex_groups(FILE *out, const rp_table *t) {
    int any = 0;
    for (int c = 0; c < t->ncols; c++) any |= t->cols[c].group[0] != 0;
    if (!any) return;
    for (int c = 0, n; c < t->ncols; c += n) {
        for (n = 1; c + n < t->ncols && !strcmp(t->cols[c + n].group, t->cols[c].group); n++) {
        }
        fputs(c ? " & " : "", out);
        if (!t->cols[c].group[0]) {
            for (int k = 1; k < n; k++) fputs(" & ", out);
            continue;
        }
        fprintf(out, "\\multicolumn{%d}{c}{", n);
        tex_text(out, t->cols[c].group);
        fputc('}', out);
    }
    fputs(" \\\\\n", out);
    for (int c = 0, n; c < t->ncols; c += n) {
        for (n = 1; c + n < t->ncols && !strcmp(t->cols[c + n].group, t->cols[c].group); n++) {
        }
        if (t->cols[c].group[0]) fprintf(out, "\\cmidrule(lr){%d-%d}", c + 1, c + n);
    }
    fputc('\n', out);
}

static void write_latex_part(FILE *out, const rp_table *t, int r0, int r1, int part, int nparts) {
    /* the estimated natural width chooses the float; the width TeX measures decides any shrinking */
    double cells[RP_MAX_COLUMNS] = {0}, width = 0;
    char buf[256];
    for (int r = r0; r < r1; r++)
        for (int c = 0; c < t->ncols; c++) {
            rp_cell_text(buf, sizeof buf, cell_at(t, r, c), &t->cols[c], " ± ", "--");
            double w = tex_width(buf);
            if (w > cells[c]) cells[c] = w;
        }
    for (int c = 0; c < t->ncols; c++) {
        double h = header_width(t->cols[c].name, cells[c]);
        width += (h > cells[c] ? h : cells[c]) + RP_TEX_COLSEP_PT;
    }
    const char *env = width <= RP_TEX_COLUMN_PT / RP_TEX_MIN_SCALE ? "table" : "table*";
    /* wider than a page: half the space between columns before shrinking the type */
    int tight = width > RP_TEX_PAGE_PT;
    fprintf(out, "\\begin{%s}[tbp]\n\\centering\n%s\\caption{", env, tight ? "\\setlength{\\tabcolsep}{3pt}\n" : "");
    tex_text(out, t->title);
    if (part > 1) fprintf(out, " (continued, part %d of %d)}\n\\label{tab:%s:%d}\n", part, nparts, t->name, part);
    else {
        if (nparts > 1) fprintf(out, " (part 1 of %d)", nparts);
        if (t->note[0]) fputs(". ", out), tex_text(out, t->note);
        fprintf(out, "}\n\\label{tab:%s}\n", t->name);
    }
    /* box 0 holds the table: shrunk to the float's width when wider, as TeX measures it */
    fputs("\\sbox0{\\begin{tabular}{", out);
    for (int c = 0; c < t->ncols; c++) fputc(t->cols[c].kind == RP_TEXT ? 'l' : 'r', out);
    fputs("}\n\\toprule\n", out);
    tex_groups(out, t);
    for (int c = 0; c < t->ncols; c++)
        fputs(c ? " & " : "", out), tex_header(out, t->cols[c].name, cells[c], t->cols[c].kind == RP_TEXT ? 'l' : 'r');
    fputs(" \\\\\n\\midrule\n", out);
    for (int r = r0; r < r1; r++) {
        for (int c = 0; c < t->ncols; c++) {
            rp_cell_text(buf, sizeof buf, cell_at(t, r, c), &t->cols[c], " $\\pm$ ", "--");
            fputs(c ? " & " : "", out);
            if (t->cols[c].kind == RP_TEXT) tex_text(out, buf);
            else fputs(buf, out); /* digits, ".", "(", ")", "/", "*", "--" and $\pm$ only */
        }
        fputs(" \\\\\n", out);
    }
    fputs("\\bottomrule\n\\end{tabular}}%\n", out);
    fputs("\\ifdim\\wd0>\\linewidth\\resizebox{\\linewidth}{!}{\\usebox0}\\else\\usebox0\\fi\n", out);
    if (t->any_partial && part == nparts) fprintf(out, "\\par\\smallskip\\footnotesize %s\n", rp_partial_note);
    fprintf(out, "\\end{%s}\n\n", env);
}

static void write_latex(FILE *out, const rp_table *t) {
    if (!t->nrows) {
        fprintf(out, "\\begin{table}[tbp]\n\\centering\n\\caption{");
        tex_text(out, t->title);
        if (t->note[0]) fputs(". ", out), tex_text(out, t->note);
        fprintf(out, "}\n\\label{tab:%s}\n(no results yet)\n\\end{table}\n\n", t->name);
        return;
    }
    /* parts of equal size, each within a page */
    int nparts = (t->nrows + RP_TEX_MAX_ROWS - 1) / RP_TEX_MAX_ROWS;
    for (int p = 0; p < nparts; p++)
        write_latex_part(out, t, (int)((long)t->nrows * p / nparts), (int)((long)t->nrows * (p + 1) / nparts), p + 1,
                         nparts);
}

/* ------------------------------------------------------------------------- */
/* CSV                                                                       */

static void csv_text(FILE *out, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_num(FILE *out, double v, int ok) {
    if (ok && !isnan(v)) fprintf(out, "%.10g", v);
}

static void csv_stat(FILE *out, rp_stat s, int with_std) {
    csv_num(out, s.mean, s.n > 0);
    if (with_std) fputc(',', out), csv_num(out, s.std, s.n > 1);
}

static void write_csv(FILE *out, const rp_table *t, int alone) {
    if (!alone) fprintf(out, "# %s\n", t->name);
    for (int c = 0; c < t->ncols; c++) {
        const rp_column *k = &t->cols[c];
        fputs(c ? "," : "", out);
        char g[sizeof k->group + 1] = ""; /* a compared run's columns: "A.test_acc" */
        if (k->group[0]) snprintf(g, sizeof g, "%s.", k->group);
        switch (k->kind) {
        case RP_TEXT: csv_text(out, k->csv); break;
        case RP_NUM: fprintf(out, "%s%s", g, k->csv); break;
        case RP_STAT: fprintf(out, "%s%s,%s%s_std", g, k->csv, g, k->csv); break;
        case RP_PAIR:
            fprintf(out, "%s%s_detect,%s%s_detect_std,%s%s_acc,%s%s_acc_std", g, k->csv, g, k->csv, g, k->csv, g, k->csv);
            break;
        case RP_COUNT: fprintf(out, "%s%s,%s%s_planned", g, k->csv, g, k->csv); break;
        }
    }
    fputs(",partial\n", out);
    for (int r = 0; r < t->nrows; r++) {
        int partial = 0;
        for (int c = 0; c < t->ncols; c++) {
            const rp_cell *x = cell_at(t, r, c);
            partial |= x->partial;
            fputs(c ? "," : "", out);
            switch (t->cols[c].kind) {
            case RP_TEXT: csv_text(out, x->text); break;
            case RP_NUM: csv_stat(out, x->a, 0); break;
            case RP_STAT: csv_stat(out, x->a, 1); break;
            case RP_PAIR: csv_stat(out, x->a, 1), fputc(',', out), csv_stat(out, x->b, 1); break;
            case RP_COUNT: fprintf(out, "%d,%d", x->a.n, x->b.n); break;
            }
        }
        fprintf(out, ",%d\n", partial);
    }
    if (!alone) fputc('\n', out);
}

/* ------------------------------------------------------------------------- */

/* The provenance of the run's numbers (core/io/provenance.h): printed so that two
 * reports that disagree can be traced to different builds or machines. */
static void write_provenance(FILE *out, const rp_file *f, rp_format fmt, const char *label) {
    if (!f->has_provenance) return;
    if (fmt == RP_MD) {
        fputs("Provenance", out);
        if (label) fputs(" of ", out), md_text(out, label);
        fprintf(out, " (the coordinator's build and machine; numbers are bit-identical only "
                     "for the same build on the same machine type, docs/results.md):\n\n");
    } else {
        fprintf(out, "%s provenance%s%s (numbers are bit-identical only for the same build on the same machine type):\n",
                fmt == RP_LATEX ? "%" : "#", label ? " of " : "", label ? label : "");
    }
    for (int i = 0; i < ip_provenance_nfields; i++) {
        const char *v = ip_provenance_value(&f->provenance, i);
        if (!v[0]) continue;
        if (fmt == RP_MD) {
            fprintf(out, "- `%s`: ", ip_provenance_fields[i].name);
            md_text(out, v);
            fputc('\n', out);
        } else {
            fprintf(out, "%s   %s: %s\n", fmt == RP_LATEX ? "%" : "#", ip_provenance_fields[i].name, v);
        }
    }
    fputc('\n', out);
}

/* "387 tasks: 380 done, 7 failed" */
static void status_text(const rp_file *f, char *status, size_t cap) {
    int n = snprintf(status, cap, "%lld tasks: %lld done", f->total, f->ndone);
#define PART(v, what)                                                                                                  \
    if ((v) > 0 && n > 0 && (size_t)n < cap) n += snprintf(status + n, cap - (size_t)n, ", %lld " what, (long long)(v))
    PART(f->nfailed, "failed");
    PART(f->nskipped, "skipped");
    PART(f->nrunning, "running");
    PART(f->npending, "pending");
    PART(f->ninterrupted, "interrupted (state saved: run --resume continues them)");
#undef PART
}

void rp_write_header(FILE *out, const rp_file *f, rp_format fmt) {
    char status[400];
    status_text(f, status, sizeof status);
    switch (fmt) {
    case RP_MD:
        fprintf(out, "# ipsweep report: ");
        md_text(out, f->spec_name);
        fprintf(out, "\n\nSpec `%s`, written by %s; %s.\n\n", f->spec_name, f->software, status);
        write_provenance(out, f, fmt, NULL);
        if (f->in_progress)
            fprintf(out, "> **In progress**: the run has not finished; the tables show the tasks done so far "
                         "(* marks rows that are still waiting for tasks).\n\n");
        break;
    case RP_LATEX:
        fprintf(out, "%% ipsweep report: spec %s, written by %s; %s.\n", f->spec_name, f->software, status);
        fprintf(out, "%% needs \\usepackage{booktabs,graphicx}\n\n");
        write_provenance(out, f, fmt, NULL);
        if (f->in_progress)
            fprintf(out, "\\noindent\\textbf{In progress:} the run has not finished; the tables show the tasks "
                         "done so far (* marks rows that are still waiting for tasks).\n\n");
        break;
    case RP_CSV:
        fprintf(out, "# ipsweep report: spec %s, %s%s\n\n", f->spec_name, status, f->in_progress ? " (in progress)" : "");
        write_provenance(out, f, fmt, NULL);
        break;
    }
}

void rp_write_compare_header(FILE *out, const rp_file *const *f, const char *const *labels, int n, rp_format fmt) {
    char status[400];
    const char *c = fmt == RP_LATEX ? "%" : "#";
    if (fmt == RP_MD) fputs("# ipsweep report: comparing runs\n\n", out);
    else fprintf(out, "%s ipsweep report: comparing runs\n", c);
    for (int i = 0; i < n; i++) {
        status_text(f[i], status, sizeof status);
        if (fmt == RP_MD) {
            fputs("- **", out), md_text(out, labels[i]), fputs("**: spec `", out);
            fprintf(out, "%s`, written by %s; %s%s.\n", f[i]->spec_name, f[i]->software, status,
                    f[i]->in_progress ? " (**in progress**: * marks rows still waiting for tasks)" : "");
        } else {
            fprintf(out, "%s   %s: spec %s, written by %s; %s%s.\n", c, labels[i], f[i]->spec_name, f[i]->software, status,
                    f[i]->in_progress ? " (in progress)" : "");
        }
    }
    if (fmt == RP_LATEX) fprintf(out, "%% needs \\usepackage{booktabs,graphicx}\n");
    fputc('\n', out);
    for (int i = 0; i < n; i++) {
        /* two runs of one build on one machine type: said once */
        int same = -1;
        for (int j = 0; j < i && same < 0; j++) {
            int eq = f[i]->has_provenance && f[j]->has_provenance;
            for (int k = 0; k < ip_provenance_nfields && eq; k++)
                eq = !strcmp(ip_provenance_value(&f[i]->provenance, k), ip_provenance_value(&f[j]->provenance, k));
            if (eq) same = j;
        }
        if (same < 0) write_provenance(out, f[i], fmt, labels[i]);
        else if (fmt == RP_MD) fputs("Provenance of ", out), md_text(out, labels[i]), fputs(": the same as ", out),
            md_text(out, labels[same]), fputs(".\n\n", out);
        else fprintf(out, "%s provenance of %s: the same as %s\n\n", fmt == RP_LATEX ? "%" : "#", labels[i], labels[same]);
    }
}

void rp_write_table(FILE *out, const rp_table *t, rp_format fmt, int alone) {
    switch (fmt) {
    case RP_MD: write_md(out, t); break;
    case RP_LATEX: write_latex(out, t); break;
    case RP_CSV: write_csv(out, t, alone); break;
    }
}
