#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ip_metrics_init(ip_metrics *mt) { memset(mt, 0, sizeof *mt); }

void ip_metrics_free(ip_metrics *mt) {
    for (int i = 0; i < mt->narrays; i++) free(mt->arrays[i].v);
    free(mt->values), free(mt->arrays); /* names live in the values' block */
    memset(mt, 0, sizeof *mt);
}

int ip_metrics_copy(ip_metrics *dst, const ip_metrics *src, ip_err *e) {
    ip_metrics_init(dst);
    for (int i = 0; i < src->nscalars; i++)
        if (ip_metrics_set(dst, src->names[i], src->values[i], e) != 0) goto fail;
    for (int i = 0; i < src->narrays; i++)
        if (ip_metrics_set_array(dst, src->arrays[i].name, src->arrays[i].v, src->arrays[i].n, e) != 0) goto fail;
    return 0;
fail:
    ip_metrics_free(dst);
    return -1;
}

/* Room for one more scalar. Values and names share one allocation (values
 * first, for alignment): a task's metrics cost one malloc. */
static int grow_scalars(ip_metrics *mt, ip_err *e) {
    if (mt->nscalars < mt->cap_scalars) return 0;
    int cap = mt->cap_scalars ? 2 * mt->cap_scalars : 4;
    if (cap > IP_METRICS_MAX_SCALARS) cap = IP_METRICS_MAX_SCALARS;
    double *values = malloc((size_t)cap * (sizeof *mt->values + sizeof *mt->names));
    if (!values) return ip_fail(e, "out of memory for metrics");
    char(*names)[IP_METRIC_NAME_LEN] = (void *)(values + cap);
    if (mt->nscalars) {
        memcpy(values, mt->values, (size_t)mt->nscalars * sizeof *values);
        memcpy(names, mt->names, (size_t)mt->nscalars * sizeof *names);
    }
    free(mt->values);
    mt->values = values, mt->names = names;
    mt->cap_scalars = cap;
    return 0;
}

static int check_name(const char *name, ip_err *e) {
    if (strlen(name) >= IP_METRIC_NAME_LEN) return ip_fail(e, "metric name \"%s\" too long", name);
    return 0;
}

int ip_metrics_set(ip_metrics *mt, const char *name, double v, ip_err *e) {
    if (check_name(name, e)) return -1;
    for (int i = 0; i < mt->nscalars; i++)
        if (strcmp(mt->names[i], name) == 0) return mt->values[i] = v, 0;
    if (mt->nscalars >= IP_METRICS_MAX_SCALARS) return ip_fail(e, "too many metrics (max %d)", IP_METRICS_MAX_SCALARS);
    if (grow_scalars(mt, e) != 0) return -1;
    snprintf(mt->names[mt->nscalars], IP_METRIC_NAME_LEN, "%s", name);
    mt->values[mt->nscalars++] = v;
    return 0;
}

static ip_metric_array *find_array(ip_metrics *mt, const char *name, int create, ip_err *e) {
    for (int i = 0; i < mt->narrays; i++)
        if (strcmp(mt->arrays[i].name, name) == 0) return &mt->arrays[i];
    if (!create) return NULL;
    if (check_name(name, e)) return NULL;
    if (mt->narrays >= IP_METRICS_MAX_ARRAYS) {
        ip_fail(e, "too many metric arrays (max %d)", IP_METRICS_MAX_ARRAYS);
        return NULL;
    }
    if (mt->narrays == mt->cap_arrays) {
        int cap = mt->cap_arrays ? 2 * mt->cap_arrays : 2;
        if (cap > IP_METRICS_MAX_ARRAYS) cap = IP_METRICS_MAX_ARRAYS;
        ip_metric_array *arrays = realloc(mt->arrays, (size_t)cap * sizeof *arrays);
        if (!arrays) {
            ip_fail(e, "out of memory for metric arrays");
            return NULL;
        }
        mt->arrays = arrays;
        mt->cap_arrays = cap;
    }
    ip_metric_array *a = &mt->arrays[mt->narrays++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

int ip_metrics_set_array(ip_metrics *mt, const char *name, const double *v, size_t n, ip_err *e) {
    ip_metric_array *a = find_array(mt, name, 1, e);
    if (!a) return -1;
    double *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy) return ip_fail(e, "out of memory for metric array %s", name);
    if (n) memcpy(copy, v, n * sizeof *copy);
    free(a->v);
    a->v = copy;
    a->n = n;
    return 0;
}

int ip_metrics_append(ip_metrics *mt, const char *name, double v, ip_err *e) {
    ip_metric_array *a = find_array(mt, name, 1, e);
    if (!a) return -1;
    double *grown = realloc(a->v, (a->n + 1) * sizeof *grown);
    if (!grown) return ip_fail(e, "out of memory for metric array %s", name);
    a->v = grown;
    a->v[a->n++] = v;
    return 0;
}

double ip_metrics_get(const ip_metrics *mt, const char *name) {
    for (int i = 0; i < mt->nscalars; i++)
        if (strcmp(mt->names[i], name) == 0) return mt->values[i];
    return NAN;
}

void ip_metrics_print(const ip_metrics *mt, FILE *f) {
    for (int i = 0; i < mt->nscalars; i++)
        fprintf(f, "%s%s=%.6g", i ? " " : "", mt->names[i], mt->values[i]);
    fputc('\n', f);
}
