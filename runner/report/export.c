/* `ipsweep export RESULTS.h5 [--format csv|tsv] [--out FILE]`: one row per
 * task, `key, kind, name, status`, every parameter, every scalar metric
 * (export.h; the rules are written once, in docs/results.md "Export"). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/tasks/param.h"
#include "../../core/util/atomic_file.h"
#include "../../core/util/checked.h"
#include "../cli/cli.h"
#include "export.h"

/* The columns every row starts with, from /tasks. */
static const char *const fixed_cols[] = {"key", "kind", "name", "status"};
enum { NFIXED = (int)(sizeof fixed_cols / sizeof *fixed_cols) };

/* A parameter or metric column: `src` is its dataset name in the file,
 * `real` the name the task reported (the writer renames the few that would
 * clash with its own columns, docs/results.md), `header` what we print. */
typedef struct ex_col {
    const char *src, *real;
    char header[96];
} ex_col;

typedef struct ex_cols {
    ex_col *v;
    size_t n, cap;
} ex_cols;

static int cmp_real(const void *a, const void *b) {
    return strcmp(((const ex_col *)a)->real, ((const ex_col *)b)->real);
}

/* The name the task gave a column the results writer had to rename
 * (results.c stores a parameter `task_id` as `param_task_id`, metrics
 * `task_id`/`key` as `metric_task_id`/`metric_key`). */
static const char *real_name(const char *src, int metric) {
    if (!metric) return strcmp(src, "param_task_id") == 0 ? "task_id" : src;
    if (strcmp(src, "metric_task_id") == 0) return "task_id";
    if (strcmp(src, "metric_key") == 0) return "key";
    return src;
}

static int cols_add(ex_cols *c, const char *src, const char *real, ip_err *e) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].src, src) == 0) return 0; /* the same column in another kind */
    if (c->n == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 32;
        void *nv = realloc(c->v, nc * sizeof *c->v); /* nc <= columns in the file: no overflow */
        if (!nv) return ip_fail(e, "out of memory");
        c->v = nv, c->cap = nc;
    }
    c->v[c->n++] = (ex_col){src, real, ""};
    return 0;
}

/* The union of the parameter columns (every kind's /params, or the swept
 * `param_` columns of /tasks in a file written before /params existed). */
static int collect_params(const rp_file *f, ex_cols *c, ip_err *e) {
    if (!f->has_params) {
        for (int j = 0; j < f->tasks.ncols; j++) {
            const rp_col *col = &f->tasks.cols[j];
            if (col->is_str && strncmp(col->name, "param_", 6) == 0 && col->name[6] &&
                cols_add(c, col->name, col->name + 6, e) != 0)
                return -1;
        }
        return 0;
    }
    for (int k = 0; k < f->nparams; k++)
        for (int j = 0; j < f->params[k].ncols; j++) {
            const rp_col *col = &f->params[k].cols[j];
            if (!col->is_str || strcmp(col->name, "task_id") == 0) continue;
            if (cols_add(c, col->name, real_name(col->name, 0), e) != 0) return -1;
        }
    return 0;
}

/* The union of the scalar metric columns of every kind's /metrics. */
static int collect_metrics(const rp_file *f, ex_cols *c, ip_err *e) {
    for (int k = 0; k < f->nmetrics; k++)
        for (int j = 0; j < f->metrics[k].ncols; j++) {
            const rp_col *col = &f->metrics[k].cols[j];
            if (col->is_str || strcmp(col->name, "task_id") == 0) continue; /* `key` is the one string column */
            if (cols_add(c, col->name, real_name(col->name, 1), e) != 0) return -1;
        }
    return 0;
}

static int is_fixed(const char *name) {
    for (int i = 0; i < NFIXED; i++)
        if (strcmp(fixed_cols[i], name) == 0) return 1;
    return 0;
}

static int has_real(const ex_cols *c, const char *name) {
    ex_col k = {NULL, name, ""};
    return c->n && bsearch(&k, c->v, c->n, sizeof *c->v, cmp_real) != NULL;
}

/* Headers: the name itself, or `param.<name>` / `metric.<name>` when it is
 * both a parameter and a metric, or one of the fixed columns. */
static void name_cols(ex_cols *mine, const ex_cols *other, const char *prefix) {
    for (size_t i = 0; i < mine->n; i++) {
        const char *r = mine->v[i].real;
        int clash = is_fixed(r) || has_real(other, r);
        snprintf(mine->v[i].header, sizeof mine->v[i].header, "%s%s", clash ? prefix : "", r);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Every header must be unique: a name longer than the header field or a
 * reported name that already has a prefix could still clash; refuse rather
 * than merge two columns. */
static int check_unique(const ex_cols *p, const ex_cols *m, ip_err *e) {
    size_t n = NFIXED + p->n + m->n, k = 0;
    const char **all = malloc(n * sizeof *all); /* n <= columns in the file + 4: no overflow */
    if (!all) return ip_fail(e, "out of memory");
    for (int i = 0; i < NFIXED; i++) all[k++] = fixed_cols[i];
    for (size_t i = 0; i < p->n; i++) all[k++] = p->v[i].header;
    for (size_t i = 0; i < m->n; i++) all[k++] = m->v[i].header;
    qsort(all, n, sizeof *all, cmp_str);
    int rc = 0;
    for (size_t i = 1; i < n && rc == 0; i++)
        if (strcmp(all[i - 1], all[i]) == 0) rc = ip_fail_input(e, "two columns would both be named \"%s\"", all[i]);
    free(all);
    return rc;
}

/* A text cell, quoted as RFC 4180 says when it holds the separator, a quote
 * or a line break (a quote inside is doubled); pandas reads TSV the same way. */
static void put_text(ip_strbuf *b, const char *s, char sep) {
    char special[] = {sep, '"', '\r', '\n', 0};
    if (!strpbrk(s, special)) {
        ip_strbuf_add(b, s);
        return;
    }
    ip_strbuf_ch(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"') ip_strbuf_ch(b, '"');
        ip_strbuf_ch(b, *p);
    }
    ip_strbuf_ch(b, '"');
}

/* A number as the shortest text that reads back as the same double;
 * integers without a decimal point; NaN (absent) as an empty cell. */
static void put_num(ip_strbuf *b, double v) {
    char s[40];
    if (isnan(v)) return;
    if (isinf(v)) snprintf(s, sizeof s, "%s", v > 0 ? "inf" : "-inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0 /* 2^53 */) snprintf(s, sizeof s, "%.0f", v);
    else
        for (int p = 15; p <= 17; p++) {
            snprintf(s, sizeof s, "%.*g", p, v);
            if (strtod(s, NULL) == v) break;
        }
    ip_strbuf_add(b, s);
}

/* A parameter cell: by its row in the kind's table (the spec type), numbers
 * as numbers and booleans as true/false; everything else, and a text that
 * does not parse by this build's row (a file of another version), as text. */
static void put_param(ip_strbuf *b, const ip_param *row, const char *text, char sep) {
    if (!text || !text[0]) return; /* "" in /params: the task has no such parameter */
    if (row && (row->type == IP_P_INT || row->type == IP_P_FLOAT || row->type == IP_P_BOOL)) {
        ip_value v;
        int32_t list[1 + IP_MAX_INT_LIST];
        char msg[160], s[32];
        if (ip_value_parse(row, text, &v, list, msg, sizeof msg) == 0) {
            if (row->type == IP_P_FLOAT) put_num(b, v.u.f);
            else if (row->type == IP_P_BOOL) ip_strbuf_add(b, v.u.i ? "true" : "false");
            else snprintf(s, sizeof s, "%" PRId64, v.u.i), ip_strbuf_add(b, s);
            return;
        }
    }
    put_text(b, text, sep);
}

/* Per kind table k and export column i: the file's column (or NULL) and,
 * for parameters, the kind's row for it (or NULL). */
typedef struct ex_map {
    const rp_col **col;
    const ip_param **row;
} ex_map;

static int map_cols(const rp_tab *tabs, int ntabs, const ex_cols *c, int params, ex_map *m, ip_err *e) {
    size_t n = 0;
    m->col = NULL, m->row = NULL;
    if (ip_mul_size((size_t)ntabs, c->n, &n) != 0) return ip_fail(e, "out of memory");
    m->col = calloc(n ? n : 1, sizeof *m->col);
    m->row = calloc(n ? n : 1, sizeof *m->row);
    if (!m->col || !m->row) return ip_fail(e, "out of memory");
    for (int k = 0; k < ntabs; k++) {
        const ip_task_def *d = params ? ip_task_def_find(tabs[k].name) : NULL;
        for (size_t i = 0; i < c->n; i++) {
            const rp_col *col = rp_tab_col(&tabs[k], c->v[i].src);
            m->col[(size_t)k * c->n + i] = col && col->is_str == params ? col : NULL;
            m->row[(size_t)k * c->n + i] = d ? ip_task_param(d, c->v[i].real) : NULL;
        }
    }
    return 0;
}

int rp_export(const rp_file *f, rp_export_format fmt, ip_strbuf *out, ip_err *e) {
    char sep = fmt == RP_EXPORT_TSV ? '\t' : ',';
    ex_cols p = {0}, m = {0};
    ex_map pm = {0}, mm = {0};
    int rc = -1;
    if (collect_params(f, &p, e) != 0 || collect_metrics(f, &m, e) != 0) goto done;
    if (p.n) qsort(p.v, p.n, sizeof *p.v, cmp_real);
    if (m.n) qsort(m.v, m.n, sizeof *m.v, cmp_real);
    name_cols(&p, &m, "param.");
    name_cols(&m, &p, "metric.");
    if (check_unique(&p, &m, e) != 0) goto done;
    if ((f->has_params && map_cols(f->params, f->nparams, &p, 1, &pm, e) != 0) ||
        map_cols(f->metrics, f->nmetrics, &m, 0, &mm, e) != 0)
        goto done;

    for (int i = 0; i < NFIXED; i++) {
        if (i) ip_strbuf_ch(out, sep);
        put_text(out, fixed_cols[i], sep);
    }
    for (size_t i = 0; i < p.n; i++) ip_strbuf_ch(out, sep), put_text(out, p.v[i].header, sep);
    for (size_t i = 0; i < m.n; i++) ip_strbuf_ch(out, sep), put_text(out, m.v[i].header, sep);
    ip_strbuf_ch(out, '\n');
    for (int t = 0; t < f->ntasks && !out->oom; t++) {
        const char *fixed[NFIXED] = {f->key[t], f->kind[t], f->name[t], f->status[t]};
        for (int i = 0; i < NFIXED; i++) {
            if (i) ip_strbuf_ch(out, sep);
            put_text(out, fixed[i], sep);
        }
        const ip_task_def *d = f->has_params ? NULL : ip_task_def_find(f->kind[t]);
        for (size_t i = 0; i < p.n; i++) {
            ip_strbuf_ch(out, sep);
            if (!f->has_params) {
                const rp_col *col = rp_tab_col(&f->tasks, p.v[i].src);
                put_param(out, d ? ip_task_param(d, p.v[i].real) : NULL, col->s[t], sep);
            } else if (f->ptab[t] >= 0) {
                size_t at = (size_t)f->ptab[t] * p.n + i;
                if (pm.col[at]) put_param(out, pm.row[at], pm.col[at]->s[f->prow[t]], sep);
            }
        }
        for (size_t i = 0; i < m.n; i++) {
            ip_strbuf_ch(out, sep);
            if (f->mtab[t] < 0) continue; /* not done: no metrics */
            const rp_col *col = mm.col[(size_t)f->mtab[t] * m.n + i];
            if (col) put_num(out, col->v[f->mrow[t]]);
        }
        ip_strbuf_ch(out, '\n');
    }
    rc = out->oom ? ip_fail(e, "out of memory") : 0;
done:
    free(p.v), free(m.v);
    free(pm.col), free(pm.row), free(mm.col), free(mm.row);
    return rc;
}

/* Whether a and b name the same existing file (an --out that would replace
 * the results file it reads). */
int cmd_export(int argc, char **argv) {
    char format[16] = "csv", outpath[1024] = "";
    cli_opt opts[] = {
        {"format", CLI_STR, format, sizeof format, "csv|tsv", "output format (default csv)"},
        {"out", CLI_STR, outpath, sizeof outpath, "FILE",
         "write to FILE (replaced atomically: a reader sees the old or the whole new file) instead of stdout"},
    };
    cli_cmd c = {"export", "ipsweep export RESULTS.h5 [--format csv|tsv] [--out FILE]",
                 "Writes every task of a results file as one flat table: key, kind, name, status, then\n"
                 "every parameter (numbers as numbers, booleans as true/false), then every scalar metric;\n"
                 "a name that is both a parameter and a metric becomes param.NAME and metric.NAME.\n"
                 "pandas.read_csv(FILE) loads the CSV with no options (docs/results.md \"Export\").",
                 opts, (int)(sizeof opts / sizeof *opts), 1, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (c.npositional != 1) return cli_error("export", "expects one results file (see --help)");
    rp_export_format fmt;
    if (!strcmp(format, "csv")) fmt = RP_EXPORT_CSV;
    else if (!strcmp(format, "tsv")) fmt = RP_EXPORT_TSV;
    else return cli_error("export", "--format must be csv or tsv, got \"%s\"", format);
    if (outpath[0]) {
        if (!ip_parent_dir_exists(outpath))
            return cli_error("export", "--out %s: its directory does not exist", outpath);
        if (ip_same_file(outpath, c.positional[0]))
            return cli_error("export", "--out %s is the results file itself", outpath);
    }
    rp_file f;
    ip_err e = {{0}};
    if (rp_open(&f, c.positional[0], &e) != 0) {
        fprintf(stderr, "ipsweep export: %s\n", e.msg);
        return ip_err_exit_code(&e); /* 2: missing or bad file; 1: out of memory */
    }
    ip_strbuf b = {0};
    int status = 0;
    if (rp_export(&f, fmt, &b, &e) != 0) {
        fprintf(stderr, "ipsweep export: %s\n", e.msg);
        status = ip_err_exit_code(&e);
    } else if (outpath[0]) {
        const void *parts[1] = {b.p ? b.p : ""};
        size_t sizes[1] = {b.len};
        if (ip_write_atomic(outpath, "writing", parts, sizes, 1, &e) != 0) {
            fprintf(stderr, "ipsweep export: %s\n", e.msg);
            status = ip_err_exit_code(&e);
        }
    } else if (fwrite(b.p ? b.p : "", 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "ipsweep export: error writing the output\n");
        status = 1;
    }
    ip_strbuf_free(&b);
    rp_close(&f);
    return status;
}
