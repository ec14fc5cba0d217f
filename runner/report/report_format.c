/* Tables as markdown, LaTeX (booktabs) or CSV (report.h). Numbers are
 * printed with fixed decimals (markdown, LaTeX; scaled, e.g. percentages) or
 * %.10g unscaled (CSV), so the text depends on the values only. */
#include <math.h>
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
void fmt_cell(char *out, size_t cap, const rp_cell *x, const rp_column *c, const char *pm, const char *none) {
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
        if (x->a.n == x->b.n) snprintf(out, cap, "%d", x->a.n);
        else snprintf(out, cap, "%d/%d", x->a.n, x->b.n);
        break;
    }
    size_t l = strlen(out);
    if (x->partial && c->kind != RP_TEXT && l + 1 < cap) out[l] = '*', out[l + 1] = 0;
}

const char *const partial_note =
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
    for (int c = 0; c < t->ncols; c++) fputc(' ', out), md_text(out, t->cols[c].name), fputs(" |", out);
    fputs("\n|", out);
    for (int c = 0; c < t->ncols; c++) fputs(t->cols[c].kind == RP_TEXT ? "---|" : "---:|", out);
    fputc('\n', out);
    char buf[256];
    for (int r = 0; r < t->nrows; r++) {
        fputc('|', out);
        for (int c = 0; c < t->ncols; c++) {
            fmt_cell(buf, sizeof buf, cell_at(t, r, c), &t->cols[c], " ± ", "-");
            fputc(' ', out);
            if (t->cols[c].kind == RP_TEXT) md_text(out, buf);
            else fputs(buf, out); /* a trailing '*' stays literal: not followed by text */
            fputs(" |", out);
        }
        fputc('\n', out);
    }
    fputc('\n', out);
    if (t->any_partial) fprintf(out, "\\%s\n\n", partial_note);
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

static void write_latex(FILE *out, const rp_table *t) {
    fprintf(out, "\\begin{table}[ht]\n\\centering\n\\caption{");
    tex_text(out, t->title);
    if (t->note[0]) fputs(". ", out), tex_text(out, t->note);
    fprintf(out, "}\n\\label{tab:%s}\n", t->name);
    if (!t->nrows) {
        fprintf(out, "(no results yet)\n\\end{table}\n\n");
        return;
    }
    fputs("\\begin{tabular}{", out);
    for (int c = 0; c < t->ncols; c++) fputc(t->cols[c].kind == RP_TEXT ? 'l' : 'r', out);
    fputs("}\n\\toprule\n", out);
    for (int c = 0; c < t->ncols; c++) fputs(c ? " & " : "", out), tex_text(out, t->cols[c].name);
    fputs(" \\\\\n\\midrule\n", out);
    char buf[256];
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            fmt_cell(buf, sizeof buf, cell_at(t, r, c), &t->cols[c], " $\\pm$ ", "--");
            fputs(c ? " & " : "", out);
            if (t->cols[c].kind == RP_TEXT) tex_text(out, buf);
            else fputs(buf, out); /* digits, ".", "(", ")", "/", "*", "--" and $\pm$ only */
        }
        fputs(" \\\\\n", out);
    }
    fputs("\\bottomrule\n\\end{tabular}\n", out);
    if (t->any_partial) fprintf(out, "\\par\\smallskip\\footnotesize %s\n", partial_note);
    fputs("\\end{table}\n\n", out);
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
        switch (k->kind) {
        case RP_TEXT: csv_text(out, k->csv); break;
        case RP_NUM: fprintf(out, "%s", k->csv); break;
        case RP_STAT: fprintf(out, "%s,%s_std", k->csv, k->csv); break;
        case RP_PAIR: fprintf(out, "%s_detect,%s_detect_std,%s_acc,%s_acc_std", k->csv, k->csv, k->csv, k->csv); break;
        case RP_COUNT: fprintf(out, "%s,%s_planned", k->csv, k->csv); break;
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
static void write_provenance(FILE *out, const rp_file *f, rp_format fmt) {
    if (!f->has_provenance) return;
    if (fmt == RP_MD) fprintf(out, "Provenance (the coordinator's build and machine; numbers are bit-identical only "
                                   "for the same build on the same machine type, docs/results.md):\n\n");
    else fprintf(out, "%s provenance (numbers are bit-identical only for the same build on the same machine type):\n",
                 fmt == RP_LATEX ? "%" : "#");
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

void rp_write_header(FILE *out, const rp_file *f, rp_format fmt) {
    char status[400];
    int n = snprintf(status, sizeof status, "%lld tasks: %lld done", f->total, f->ndone);
#define PART(v, what)                                                                                                  \
    if ((v) > 0 && n > 0 && (size_t)n < sizeof status) n += snprintf(status + n, sizeof status - (size_t)n, ", %lld " what, (long long)(v))
    PART(f->nfailed, "failed");
    PART(f->nskipped, "skipped");
    PART(f->nrunning, "running");
    PART(f->npending, "pending");
    PART(f->ninterrupted, "interrupted (state saved: run --resume continues them)");
#undef PART
    switch (fmt) {
    case RP_MD:
        fprintf(out, "# ipsweep report: ");
        md_text(out, f->spec_name);
        fprintf(out, "\n\nSpec `%s`, written by %s; %s.\n\n", f->spec_name, f->software, status);
        write_provenance(out, f, fmt);
        if (f->in_progress)
            fprintf(out, "> **In progress**: the run has not finished; the tables show the tasks done so far "
                         "(* marks rows that are still waiting for tasks).\n\n");
        break;
    case RP_LATEX:
        fprintf(out, "%% ipsweep report: spec %s, written by %s; %s.\n", f->spec_name, f->software, status);
        fprintf(out, "%% needs \\usepackage{booktabs}\n\n");
        write_provenance(out, f, fmt);
        if (f->in_progress)
            fprintf(out, "\\noindent\\textbf{In progress:} the run has not finished; the tables show the tasks "
                         "done so far (* marks rows that are still waiting for tasks).\n\n");
        break;
    case RP_CSV:
        fprintf(out, "# ipsweep report: spec %s, %s%s\n\n", f->spec_name, status, f->in_progress ? " (in progress)" : "");
        write_provenance(out, f, fmt);
        break;
    }
}

void rp_write_table(FILE *out, const rp_table *t, rp_format fmt, int alone) {
    switch (fmt) {
    case RP_MD: write_md(out, t); break;
    case RP_LATEX: write_latex(out, t); break;
    case RP_CSV: write_csv(out, t, alone); break;
    }
}
