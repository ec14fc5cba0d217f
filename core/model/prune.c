#include "prune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int prunable(const ip_tensor *t) { return t->kind == IP_TENSOR_PARAM && t->ndim >= 2; }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int ip_prune_global(ip_model *m, double rate, size_t *pruned, ip_err *e) {
    if (!(rate >= 0 && rate <= 1)) return ip_fail(e, "pruning rate %g is outside [0, 1]", rate);
    size_t total = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (prunable(&m->tensors[i])) total += m->tensors[i].numel;
    size_t k = (size_t)llround(rate * (double)total);
    if (pruned) *pruned = k;
    if (k == 0) return 0;
    float *mag = malloc(total * sizeof *mag);
    if (!mag) return ip_fail(e, "out of memory for pruning (%zu weights)", total);
    size_t j = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        if (!prunable(t)) continue;
        for (size_t q = 0; q < t->numel; q++) mag[j++] = fabsf(m->params[t->offset + q]);
    }
    qsort(mag, total, sizeof *mag, cmp_float);
    float thr = mag[k - 1];
    /* how many at exactly the threshold still need pruning after those strictly below */
    size_t below = 0;
    while (below < total && mag[below] < thr) below++;
    size_t at_thr = k - below;
    free(mag);
    for (int i = 0; i < m->ntensors; i++) {
        const ip_tensor *t = &m->tensors[i];
        if (!prunable(t)) continue;
        float *w = m->params + t->offset;
        for (size_t q = 0; q < t->numel; q++) {
            float a = fabsf(w[q]);
            if (a < thr) w[q] = 0.f;
            else if (a == thr && at_thr > 0) w[q] = 0.f, at_thr--;
        }
    }
    return 0;
}

/* A parameter of the authors' model: a v1 passport layer's learned affine exists
 * in ipsweep's model (the public branch of a converted network) but not in
 * their PassportBlock, whose scale and bias are None in v1. */
static int authors_param(const ip_model *m, int ti) {
    if (m->tensors[ti].kind != IP_TENSOR_PARAM) return 0;
    if (m->cfg.scheme != IP_SCHEME_V1) return 1;
    for (int p = 0; p < m->npassports; p++) {
        const ip_op *aff = &m->ops[m->passports[p].affine_op];
        if (ti == aff->weight || ti == aff->bias) return 0;
    }
    return 1;
}

double ip_percentile_linear(const float *sorted, size_t n, double q) {
    if (n == 0) return NAN;
    double vi = (double)(n - 1) * q;
    double lo = floor(vi);
    size_t i = lo <= 0 ? 0 : (size_t)lo;
    if (i >= n - 1) return sorted[n - 1];
    double t = vi - lo, a = sorted[i], b = sorted[i + 1];
    /* numpy >= 1.22 _lerp: from the nearer end, so that t = 1 gives b exactly */
    double d = b - a;
    return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

int ip_prune_percentile(ip_model *m, double rate, size_t *pruned, double *threshold, ip_err *e) {
    if (!(rate >= 0 && rate <= 1)) return ip_fail(e, "pruning rate %g is outside [0, 1]", rate);
    if (pruned) *pruned = 0;
    if (threshold) *threshold = 0;
    if (rate == 0) return 0; /* pruning_resnet returns before computing a threshold */
    size_t total = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (authors_param(m, i)) total += m->tensors[i].numel;
    if (total == 0) return 0;
    float *mag = malloc(total * sizeof *mag);
    if (!mag) return ip_fail(e, "out of memory for pruning (%zu parameters)", total);
    size_t j = 0;
    for (int i = 0; i < m->ntensors; i++) {
        if (!authors_param(m, i)) continue;
        const ip_tensor *t = &m->tensors[i];
        for (size_t q = 0; q < t->numel; q++) mag[j++] = fabsf(m->params[t->offset + q]);
    }
    qsort(mag, total, sizeof *mag, cmp_float);
    double thr = ip_percentile_linear(mag, total, rate);
    free(mag);
    const float thr_f = (float)thr;
    size_t zeroed = 0;
    for (int i = 0; i < m->ntensors; i++) {
        if (!authors_param(m, i)) continue;
        const ip_tensor *t = &m->tensors[i];
        float *w = m->params + t->offset;
        for (size_t q = 0; q < t->numel; q++)
            if (!(fabsf(w[q]) > thr_f)) w[q] = 0.f, zeroed++;
    }
    if (pruned) *pruned = zeroed;
    if (threshold) *threshold = thr;
    return 0;
}
