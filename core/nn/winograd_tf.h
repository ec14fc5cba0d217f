/* Internal to core/nn/winograd.c: the Winograd algorithms F(m x m, r x r)
 * as five 1-D transforms each (winograd_tf.c), which the convolution runs
 * down the columns and along the rows of its tiles. */
#ifndef IP_WINOGRAD_TF_H
#define IP_WINOGRAD_TF_H

#include <stddef.h>

/* dst[i * ds + (0..n)] for i < NOUT from the NIN arrays src[r][0..n). */
typedef void (*wino_tf)(float *dst, size_t ds, const float *const *src, size_t n);

typedef struct wino_alg {
    int m, r, a;
    wino_tf bt, g, at;
    wino_tf ad, gt; /* A (m -> a) and G^T (a -> r), for the weight gradient */
} wino_alg;

/* F(2x2, 3x3), F(4x4, 3x3), F(2x2, 5x5), F(4x4, 5x5) */
extern const wino_alg wino_f23, wino_f43, wino_f25, wino_f45;

#endif
