/* `ipsweep report A.h5 B.h5 ...`: one table of several runs (report.h,
 * docs/report.md "Comparing runs"). A row is identified by its text columns
 * (the group key: model, key type, rate, ...), so the same setting in two runs
 * lands on one row whatever their task ids; the numbers of each run form a
 * column group headed by the run's label. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static const rp_cell *cell_of(const rp_table *t, int r, int c) { return &t->cells[(size_t)r * RP_MAX_COLUMNS + c]; }

/* Index of the column with CSV name `csv` among cols[0..n) of the given
 * textness, or -1. The CSV name, not the header: it is the stable one. */
static int find_col(const rp_column *cols, int n, const char *csv, int text) {
    for (int i = 0; i < n; i++)
        if ((cols[i].kind == RP_TEXT) == text && !strcmp(cols[i].csv, csv)) return i;
    return -1;
}

/* The identity of row r of t over the merged identity columns: their texts
 * joined by \x1f ("" for a column t does not have). malloc'ed or NULL. */
static char *identity(const rp_table *t, int r, const rp_column *ids, int nids) {
    size_t cap = 1;
    for (int i = 0; i < nids; i++) cap += sizeof t->cells[0].text + 1;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < nids; i++) {
        int c = find_col(t->cols, t->ncols, ids[i].csv, 1);
        const char *v = c >= 0 ? cell_of(t, r, c)->text : "";
        size_t l = strlen(v);
        memcpy(p, v, l);
        p += l;
        *p++ = '\x1f';
    }
    *p = 0;
    return s;
}

int rp_compare(const rp_table *runs, int nruns, const char *const *labels, rp_table *out, ip_err *e) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", runs[0].name);
    /* title and note: the first run that has the table's text (an empty table has none) */
    for (int i = 0; i < nruns && !out->title[0]; i++) snprintf(out->title, sizeof out->title, "%s", runs[i].title);
    for (int i = 0; i < nruns && !out->note[0]; i++)
        if (runs[i].nrows) snprintf(out->note, sizeof out->note, "%s", runs[i].note);
    /* the union of the columns, by CSV name, in order of appearance */
    rp_column ids[RP_MAX_COLUMNS], nums[RP_MAX_COLUMNS];
    int nids = 0, nnums = 0, nrows = 0;
    for (int i = 0; i < nruns; i++) {
        for (int c = 0; c < runs[i].ncols; c++) {
            const rp_column *k = &runs[i].cols[c];
            int text = k->kind == RP_TEXT;
            if (find_col(text ? ids : nums, text ? nids : nnums, k->csv, text) >= 0) continue;
            if (nids + nnums == RP_MAX_COLUMNS)
                return ip_fail_input(e, "the runs have more than %d different columns", RP_MAX_COLUMNS);
            if (text) ids[nids++] = *k;
            else nums[nnums++] = *k;
        }
        nrows += runs[i].nrows;
        out->waiting += runs[i].waiting;
    }
    if ((size_t)nids + (size_t)nnums * (size_t)nruns > RP_MAX_COLUMNS)
        return ip_fail_input(e, "comparing %d runs needs %d columns, more than %d: compare fewer runs", nruns,
                             nids + nnums * nruns, RP_MAX_COLUMNS);
    for (int c = 0; c < nids; c++) out->cols[out->ncols++] = ids[c];
    for (int i = 0; i < nruns; i++)
        for (int c = 0; c < nnums; c++) {
            rp_column *k = &out->cols[out->ncols++];
            *k = nums[c];
            snprintf(k->group, sizeof k->group, "%s", labels[i]);
        }
    /* at most every row of every run; the rows array is trimmed by nrows */
    out->cells = calloc((size_t)(nrows ? nrows : 1) * RP_MAX_COLUMNS, sizeof *out->cells);
    char **keys = calloc((size_t)(nrows ? nrows : 1), sizeof *keys);
    unsigned char *filled = calloc((size_t)(nrows ? nrows : 1) * (size_t)nruns, 1); /* [row][run] */
    int rc = -1;
    if (!out->cells || !keys || !filled) {
        ip_fail(e, "out of memory comparing table %s", out->name);
        goto done;
    }
    for (int i = 0; i < nrows * RP_MAX_COLUMNS; i++) {
        out->cells[i].a = (rp_stat){NAN, NAN, 0};
        out->cells[i].b = (rp_stat){NAN, NAN, 0};
    }
    int n = 0;
    for (int i = 0; i < nruns; i++) {
        const rp_table *t = &runs[i];
        for (int r = 0; r < t->nrows; r++) {
            char *key = identity(t, r, ids, nids);
            if (!key) {
                ip_fail(e, "out of memory comparing table %s", out->name);
                goto done;
            }
            /* the first row of this identity that run i has not filled yet */
            int m = 0;
            while (m < n && (filled[(size_t)m * nruns + i] || strcmp(keys[m], key))) m++;
            if (m == n) {
                keys[n++] = key;
                for (int c = 0; c < nids; c++) {
                    int src = find_col(t->cols, t->ncols, ids[c].csv, 1);
                    if (src >= 0) snprintf(out->cells[(size_t)m * RP_MAX_COLUMNS + c].text, sizeof out->cells[0].text,
                                           "%s", cell_of(t, r, src)->text);
                }
            } else {
                free(key);
            }
            filled[(size_t)m * nruns + i] = 1;
            for (int c = 0; c < nnums; c++) {
                int src = find_col(t->cols, t->ncols, nums[c].csv, 0);
                if (src < 0) continue;
                rp_cell *x = &out->cells[(size_t)m * RP_MAX_COLUMNS + nids + i * nnums + c];
                *x = *cell_of(t, r, src);
                out->any_partial |= x->partial;
            }
        }
    }
    out->nrows = n;
    rc = 0;
done:
    for (int i = 0; keys && i < nrows; i++) free(keys[i]);
    free(keys), free(filled);
    if (rc != 0) rp_table_free(out);
    return rc;
}
