/* What a task reports: named scalars and named arrays (e.g. per-epoch test
 * accuracy, the accuracy of every fake passport). The runner turns them into
 * rows of the results file; the CLI prints them as key=value. */
#ifndef IP_METRICS_H
#define IP_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

#define IP_METRICS_MAX_SCALARS 64
#define IP_METRICS_MAX_ARRAYS 16
#define IP_METRIC_NAME_LEN 48

typedef struct ip_metric_array {
    char name[IP_METRIC_NAME_LEN];
    double *v;
    size_t n;
} ip_metric_array;

/* Sized to what a task reports (a coordinator holds one per finished task of
 * a million-task run): the tables grow on demand up to the MAX bounds. A
 * struct copy shares the tables: copy with ip_metrics_copy. */
typedef struct ip_metrics {
    int nscalars, narrays;
    int cap_scalars, cap_arrays;
    char (*names)[IP_METRIC_NAME_LEN];
    double *values;
    ip_metric_array *arrays;
} ip_metrics;

void ip_metrics_init(ip_metrics *mt);
void ip_metrics_free(ip_metrics *mt);
/* A deep copy into dst (dst holds nothing: it is overwritten). */
int ip_metrics_copy(ip_metrics *dst, const ip_metrics *src, ip_err *e);
/* Sets (or overwrites) a scalar; fails when the table is full. */
int ip_metrics_set(ip_metrics *mt, const char *name, double v, ip_err *e);
/* Copies n values into a named array (replacing one of the same name). */
int ip_metrics_set_array(ip_metrics *mt, const char *name, const double *v, size_t n, ip_err *e);
/* Appends one value to a named array (created on first use). */
int ip_metrics_append(ip_metrics *mt, const char *name, double v, ip_err *e);
/* Scalar by name, or NAN when absent. */
double ip_metrics_get(const ip_metrics *mt, const char *name);
/* The metrics as a small HDF5 file (core/metrics_h5.c; atomic write), and
 * back: how one task hands its metrics to another through the filesystem
 * (fake1 shards -> their merge). ip_metrics_load initialises mt; on failure
 * mt is empty. */
int ip_metrics_save(const ip_metrics *mt, const char *path, ip_err *e);
int ip_metrics_load(ip_metrics *mt, const char *path, ip_err *e);
/* "name=value" for every scalar, space separated, one line. */
void ip_metrics_print(const ip_metrics *mt, FILE *f);

#endif
