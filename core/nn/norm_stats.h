/* Internal to core/nn: what the norms (norm.c) and the fused conv-block tail
 * (norm_tail.c) share: the statistics of a set of values and the running
 * statistics' rules, written once. */
#ifndef IP_NORM_STATS_H
#define IP_NORM_STATS_H

#include <stddef.h>

#include "layers.h"

#define VW 16 /* block width, floats: one AVX-512 or two AVX2 registers */

/* *s1 += sum (x[i] - k), *s2 += sum (x[i] - k)^2 over n contiguous floats. */
static inline void moments_acc(const float *x, size_t n, double k, double *s1, double *s2) {
    double a[VW] = {0}, b[VW] = {0};
    size_t i = 0;
    for (; i + VW <= n; i += VW)
        for (size_t j = 0; j < VW; j++) {
            double d = (double)x[i + j] - k;
            a[j] += d;
            b[j] += d * d;
        }
    double t1 = 0, t2 = 0;
    for (; i < n; i++) {
        double d = (double)x[i] - k;
        t1 += d;
        t2 += d * d;
    }
    for (size_t j = 0; j < VW; j++) t1 += a[j], t2 += b[j];
    *s1 += t1;
    *s2 += t2;
}

/* Mean and biased variance from shifted sums over cnt values. */
static inline void finish_moments(double k, double s1, double s2, size_t cnt, double *mean, double *var) {
    if (cnt == 0) {
        *mean = 0, *var = 0;
        return;
    }
    double m1 = s1 / (double)cnt;
    double v = s2 / (double)cnt - m1 * m1;
    *mean = k + m1;
    *var = v > 0 ? v : 0;
}

/* PyTorch: running = (1 - momentum) running + momentum * stat, unbiased variance. */
static inline void update_running(float *running_mean, float *running_var, size_t c, double mean, double var,
                           size_t cnt, float momentum) {
    double mom = momentum;
    if (running_mean) running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
    if (running_var) {
        double vu = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * vu);
    }
}

/* Batch norm in eval mode uses the running statistics. When either is
 * missing (no tracked statistics) it falls back to batch statistics. */
static inline int use_running(const ip_norm_shape *s, int training, const float *rm, const float *rv) {
    return s->groups <= 0 && !training && rm && rv;
}

#endif
