/* Knowledge-distillation loss on row-major logits (N, K) (Hinton et al.
 * 2015): T^2 * KL(softmax(teacher/T) || softmax(student/T)), mean over rows,
 * and its gradient with respect to the student's logits. */
#include "layers.h"

#include <math.h>
#include <stddef.h>

double kd_forward_backward(float *dstudent, const float *student, const float *teacher, int n, int k, float t,
                           float scale) {
    if (n <= 0 || k <= 0) return 0.0;
    if (!(t > 0)) return NAN;
    double inv_t = 1.0 / (double)t, tt = (double)t * t, total = 0;
    /* d(T^2 KL)/dz_j = T^2 * (q_j - p_j) / T = T (q_j - p_j), averaged over rows */
    double coef = (double)scale * (double)t / (double)n;
    for (int i = 0; i < n; i++) {
        const float *zs = student + (size_t)i * k, *zt = teacher + (size_t)i * k;
        /* log-softmax in the log domain, shifted by the row maxima: finite for any logits */
        double mt = -INFINITY, ms = -INFINITY, st = 0, ss = 0;
        for (int j = 0; j < k; j++) mt = fmax(mt, (double)zt[j] * inv_t), ms = fmax(ms, (double)zs[j] * inv_t);
        for (int j = 0; j < k; j++) st += exp((double)zt[j] * inv_t - mt), ss += exp((double)zs[j] * inv_t - ms);
        double lt = mt + log(st), ls = ms + log(ss), kl = 0;
        for (int j = 0; j < k; j++) {
            double lp = (double)zt[j] * inv_t - lt, lq = (double)zs[j] * inv_t - ls, p = exp(lp);
            kl += p * (lp - lq);
            if (dstudent) dstudent[(size_t)i * k + j] = (float)(coef * (exp(lq) - p));
        }
        total += kl;
    }
    return tt * total / (double)n;
}

/* The definition, written out: probabilities, then sum p log(p / q). */
double kd_forward_backward_ref(float *dstudent, const float *student, const float *teacher, int n, int k, float t,
                               float scale) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double zp = 0, zq = 0, mp = -INFINITY, mq = -INFINITY;
        for (int j = 0; j < k; j++) {
            mp = fmax(mp, teacher[(size_t)i * k + j] / (double)t);
            mq = fmax(mq, student[(size_t)i * k + j] / (double)t);
        }
        for (int j = 0; j < k; j++) {
            zp += exp(teacher[(size_t)i * k + j] / (double)t - mp);
            zq += exp(student[(size_t)i * k + j] / (double)t - mq);
        }
        for (int j = 0; j < k; j++) {
            double p = exp(teacher[(size_t)i * k + j] / (double)t - mp) / zp;
            double q = exp(student[(size_t)i * k + j] / (double)t - mq) / zq;
            if (p > 0) total += (double)t * t * p * log(p / q) / n;
            if (dstudent) dstudent[(size_t)i * k + j] = (float)(scale * (double)t * (q - p) / n);
        }
    }
    return total;
}
