/* Softmax cross-entropy on row-major logits (N, K), and row argmax. */
#include "layers.h"

#include <math.h>
#include <stddef.h>

/* First maximum of a row; a NaN counts as the maximum (torch.argmax). */
static int row_argmax(const float *row, int k) {
    int best = 0;
    float bv = row[0];
    if (bv != bv) return 0;
    for (int j = 1; j < k; j++) {
        float v = row[j];
        if (v != v) return j;
        if (v > bv) bv = v, best = j;
    }
    return best;
}

double xent_forward_backward(float *dlogits, const float *logits, const int32_t *labels, int n, int k,
                             float scale, int *correct) {
    if (correct) *correct = 0;
    if (n <= 0 || k <= 0) return 0.0;
    double total = 0, coef = (double)scale / (double)n;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * k;
        float *d = dlogits ? dlogits + (size_t)i * k : NULL;
        int am = row_argmax(row, k);
        double mx = row[am]; /* stable log-sum-exp: shift by the row maximum */
        double se = 0;
        for (int j = 0; j < k; j++) {
            double e = exp((double)row[j] - mx);
            se += e;
            if (d) d[j] = (float)e;
        }
        int32_t y = labels[i];
        int valid = y >= 0 && y < k;
        /* an out-of-range label poisons the loss instead of reading out of bounds */
        total += valid ? mx + log(se) - (double)row[y] : NAN;
        if (valid && am == y) hits++;
        if (d) {
            double inv = 1.0 / se;
            for (int j = 0; j < k; j++) d[j] = (float)(coef * ((double)d[j] * inv - (j == y ? 1.0 : 0.0)));
        }
    }
    if (correct) *correct = hits;
    return total / (double)n;
}

void argmax_rows(int32_t *pred, const float *logits, int n, int k) {
    if (k <= 0) return;
    for (int i = 0; i < n; i++) pred[i] = row_argmax(logits + (size_t)i * k, k);
}
