/* `ipsweep export RESULTS.h5`: every task of a results file as one flat
 * table (CSV or TSV) that pandas.read_csv, R's read.csv or a spreadsheet load
 * as it is (docs/results.md "Export"). It reads the file with rp_open
 * (report_data.c), like `report`. */
#ifndef RN_EXPORT_H
#define RN_EXPORT_H

#include "../../core/util/err.h"
#include "../../core/util/strbuf.h"
#include "report.h"

typedef enum { RP_EXPORT_CSV, RP_EXPORT_TSV } rp_export_format;

/* Appends the whole table of f (header line, then one line per task in
 * task-id order) to out. The columns, their order, the collision rule and
 * how each type is written are described in docs/results.md "Export".
 * Returns 0 or -1 (out of memory; a column name clash the rule cannot
 * resolve). */
int rp_export(const rp_file *f, rp_export_format fmt, ip_strbuf *out, ip_err *e);

/* The command (options, --help, exit codes). */
int cmd_export(int argc, char **argv);

#endif
