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
