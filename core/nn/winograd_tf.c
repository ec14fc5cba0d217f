/* The 1-D transforms of the Winograd algorithms (winograd_tf.h), apart from
 * the convolution that runs them (winograd.c). */
#include "winograd_tf.h"

#include <string.h>

/* ---------------- 1-D transforms on arrays ----------------
 * Each reads NIN source arrays src[r][0..n) and writes the NOUT transformed
 * arrays dst[i * ds + (0..n)]. The loops are written with GCC vector
 * extensions (16 floats with AVX-512, 8 with AVX, else 4) because -O2 of
 * GCC 12 only vectorises loops whose trip count is a multiple of the vector
 * length; the formulas are macros shared by the vector body and the scalar tail. */
#if defined(__AVX512F__)
typedef float wino_vf __attribute__((vector_size(64)));
#define WINO_VL 16
#elif defined(__AVX__)
typedef float wino_vf __attribute__((vector_size(32)));
#define WINO_VL 8
#else /* SSE / NEON width: 32-byte vectors without AVX would change the ABI (-Wpsabi) */
typedef float wino_vf __attribute__((vector_size(16)));
#define WINO_VL 4
#endif

static inline wino_vf vload(const float *p) {
    wino_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, wino_vf v) { memcpy(p, &v, sizeof v); }

/* Defines name(dst, ds, src, n) applying FORMULA(T, x, y): x[NIN] -> y[NOUT], T the
 * value type. The x and y arrays are fully unrolled by the LD / ST lists so that
 * they live in registers. */
#define WINO_LD2(x, t, V) x[0] = V(sp[0] + t), x[1] = V(sp[1] + t)
#define WINO_LD3(x, t, V) WINO_LD2(x, t, V), x[2] = V(sp[2] + t)
#define WINO_LD4(x, t, V) WINO_LD3(x, t, V), x[3] = V(sp[3] + t)
#define WINO_LD5(x, t, V) WINO_LD4(x, t, V), x[4] = V(sp[4] + t)
#define WINO_LD6(x, t, V) WINO_LD5(x, t, V), x[5] = V(sp[5] + t)
#define WINO_LD8(x, t, V) WINO_LD6(x, t, V), x[6] = V(sp[6] + t), x[7] = V(sp[7] + t)
#define WINO_ST2(y, t, S) S(dst + t, y[0]), S(dst + ds + t, y[1])
#define WINO_ST3(y, t, S) WINO_ST2(y, t, S), S(dst + 2 * ds + t, y[2])
#define WINO_ST4(y, t, S) WINO_ST3(y, t, S), S(dst + 3 * ds + t, y[3])
#define WINO_ST5(y, t, S) WINO_ST4(y, t, S), S(dst + 4 * ds + t, y[4])
#define WINO_ST6(y, t, S) WINO_ST5(y, t, S), S(dst + 5 * ds + t, y[5])
#define WINO_ST8(y, t, S) WINO_ST6(y, t, S), S(dst + 6 * ds + t, y[6]), S(dst + 7 * ds + t, y[7])
#define WINO_SLOAD(p) (*(p))
#define WINO_SSTORE(p, v) (*(p) = (v))
#define WINO_TF(name, NIN, NOUT, FORMULA)                                                                \
    static void name(float *dst, size_t ds, const float *const *src, size_t n) {                        \
        const float *sp[NIN]; /* local copy: the stores cannot change it */                            \
        for (int r = 0; r < NIN; r++) sp[r] = src[r];                                                   \
        size_t t = 0;                                                                                   \
        for (; t + WINO_VL <= n; t += WINO_VL) {                                                        \
            wino_vf x[NIN], y[NOUT];                                                                    \
            WINO_LD##NIN(x, t, vload);                                                                  \
            FORMULA(wino_vf, x, y);                                                                     \
            WINO_ST##NOUT(y, t, vstore);                                                                \
        }                                                                                               \
        for (; t < n; t++) {                                                                            \
            float x[NIN], y[NOUT];                                                                      \
            WINO_LD##NIN(x, t, WINO_SLOAD);                                                             \
            FORMULA(float, x, y);                                                                       \
            WINO_ST##NOUT(y, t, WINO_SSTORE);                                                           \
        }                                                                                               \
    }

/* Every algorithm has five 1-D transforms: B^T (a -> a, input tiles), G (r -> a,
 * kernels), A^T (a -> m, output tiles) and, for the weight gradient, their
 * adjoints A (m -> a, dout tiles) and G^T (a -> r, kernel gradients). B^T
 * depends only on a (the interpolation points), so F(2,5) shares F(4,3)'s.
 * The matrices come from Cook-Toom with the points 0, 1, -1, 2, -2, 1/2, -1/2
 * (as many as a - 1 needs) and infinity. */

/* ---- a = 4 (F(2,3)), points 0, 1, -1, inf ----
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] */
#define BT_A4(T, x, y)                                                                                  \
    do {                                                                                                \
        y[0] = x[0] - x[2];                                                                             \
        y[1] = x[1] + x[2];                                                                             \
        y[2] = x[2] - x[1];                                                                             \
        y[3] = x[1] - x[3];                                                                             \
    } while (0)
/* F(2,3): G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1] */
#define G_23(T, x, y)                                                                                   \
    do {                                                                                                \
        T e_ = 0.5f * (x[0] + x[2]), o_ = 0.5f * x[1];                                                  \
        y[0] = x[0];                                                                                    \
        y[1] = e_ + o_;                                                                                 \
        y[2] = e_ - o_;                                                                                 \
        y[3] = x[2];                                                                                    \
    } while (0)
/* F(2,3): A^T = [1 1 1 0; 0 1 -1 -1] */
#define AT_23(T, x, y)                                                                                  \
    do {                                                                                                \
        y[0] = x[0] + x[1] + x[2];                                                                      \
        y[1] = x[1] - x[2] - x[3];                                                                      \
    } while (0)
/* F(2,3): A = (A^T)^T */
#define A_23(T, x, y)                                                                                   \
    do {                                                                                                \
        y[0] = x[0];                                                                                    \
        y[1] = x[0] + x[1];                                                                             \
        y[2] = x[0] - x[1];                                                                             \
        y[3] = -x[1];                                                                                   \
    } while (0)
/* F(2,3): G^T */
#define GT_23(T, x, y)                                                                                  \
    do {                                                                                                \
        T s_ = 0.5f * (x[1] + x[2]);                                                                    \
        y[0] = x[0] + s_;                                                                               \
        y[1] = 0.5f * (x[1] - x[2]);                                                                    \
        y[2] = s_ + x[3];                                                                               \
    } while (0)

/* ---- a = 6 (F(4,3), F(2,5)), points 0, 1, -1, 2, -2, inf (Lavin & Gray) ----
 * B^T = [4  0 -5  0 1 0;  0 -4 -4  1 1 0;  0  4 -4 -1 1 0;
 *        0 -2 -1  2 1 0;  0  2 -1 -2 1 0;  0  4  0 -5 0 1] */
#define BT_A6(T, x, y)                                                                                  \
    do {                                                                                                \
        T p1_ = x[4] - 4.0f * x[2], q1_ = x[3] - 4.0f * x[1];                                          \
        T p2_ = x[4] - x[2], q2_ = 2.0f * (x[3] - x[1]);                                               \
        y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];                                                        \
        y[1] = p1_ + q1_;                                                                               \
        y[2] = p1_ - q1_;                                                                               \
        y[3] = p2_ + q2_;                                                                               \
        y[4] = p2_ - q2_;                                                                               \
        y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];                                                        \
    } while (0)
/* F(4,3): G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1] */
#define G_43(T, x, y)                                                                                   \
    do {                                                                                                \
        T e1_ = (-1.0f / 6.0f) * (x[0] + x[2]), o1_ = (-1.0f / 6.0f) * x[1];                            \
        T e2_ = (1.0f / 24.0f) * x[0] + (1.0f / 6.0f) * x[2], o2_ = (1.0f / 12.0f) * x[1];              \
        y[0] = 0.25f * x[0];                                                                            \
        y[1] = e1_ + o1_;                                                                               \
        y[2] = e1_ - o1_;                                                                               \
        y[3] = e2_ + o2_;                                                                               \
        y[4] = e2_ - o2_;                                                                               \
        y[5] = x[2];                                                                                    \
    } while (0)
/* F(4,3): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1] */
#define AT_43(T, x, y)                                                                                  \
    do {                                                                                                \
        T e1_ = x[1] + x[2], o1_ = x[1] - x[2], e2_ = x[3] + x[4], o2_ = x[3] - x[4];                   \
        y[0] = x[0] + e1_ + e2_;                                                                        \
        y[1] = o1_ + 2.0f * o2_;                                                                        \
        y[2] = e1_ + 4.0f * e2_;                                                                        \
        y[3] = o1_ + 8.0f * o2_ + x[5];                                                                 \
    } while (0)
/* F(4,3): A = (A^T)^T */
#define A_43(T, x, y)                                                                                   \
    do {                                                                                                \
        T e1_ = x[0] + x[2], o1_ = x[1] + x[3];                                                         \
        T e2_ = x[0] + 4.0f * x[2], o2_ = 2.0f * x[1] + 8.0f * x[3];                                    \
        y[0] = x[0];                                                                                    \
        y[1] = e1_ + o1_;                                                                               \
        y[2] = e1_ - o1_;                                                                               \
        y[3] = e2_ + o2_;                                                                               \
        y[4] = e2_ - o2_;                                                                               \
        y[5] = x[3];                                                                                    \
    } while (0)
/* F(4,3): G^T */
#define GT_43(T, x, y)                                                                                  \
    do {                                                                                                \
        T s1_ = x[1] + x[2], d1_ = x[1] - x[2], s2_ = x[3] + x[4], d2_ = x[3] - x[4];                   \
        y[0] = 0.25f * x[0] - (1.0f / 6.0f) * s1_ + (1.0f / 24.0f) * s2_;                               \
        y[1] = (-1.0f / 6.0f) * d1_ + (1.0f / 12.0f) * d2_;                                             \
        y[2] = (-1.0f / 6.0f) * s1_ + (1.0f / 6.0f) * s2_ + x[5];                                       \
    } while (0)
/* F(2,5): G = [1/4 0 0 0 0; -1/6 (1 1 1 1 1); -1/6 (1 -1 1 -1 1);
 *              1/24 1/12 1/6 1/3 2/3; 1/24 -1/12 1/6 -1/3 2/3; 0 0 0 0 1] */
#define G_25(T, x, y)                                                                                   \
    do {                                                                                                \
        T e1_ = (-1.0f / 6.0f) * (x[0] + x[2] + x[4]), o1_ = (-1.0f / 6.0f) * (x[1] + x[3]);            \
        T e2_ = (1.0f / 24.0f) * x[0] + (1.0f / 6.0f) * x[2] + (2.0f / 3.0f) * x[4];                    \
        T o2_ = (1.0f / 12.0f) * x[1] + (1.0f / 3.0f) * x[3];                                           \
        y[0] = 0.25f * x[0];                                                                            \
        y[1] = e1_ + o1_;                                                                               \
        y[2] = e1_ - o1_;                                                                               \
        y[3] = e2_ + o2_;                                                                               \
        y[4] = e2_ - o2_;                                                                               \
        y[5] = x[4];                                                                                    \
    } while (0)
/* F(2,5): A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1] */
#define AT_25(T, x, y)                                                                                  \
    do {                                                                                                \
        y[0] = x[0] + (x[1] + x[2]) + (x[3] + x[4]);                                                    \
        y[1] = (x[1] - x[2]) + 2.0f * (x[3] - x[4]) + x[5];                                             \
    } while (0)
/* F(2,5): A = (A^T)^T */
#define A_25(T, x, y)                                                                                   \
    do {                                                                                                \
        T t_ = 2.0f * x[1];                                                                             \
        y[0] = x[0];                                                                                    \
        y[1] = x[0] + x[1];                                                                             \
        y[2] = x[0] - x[1];                                                                             \
        y[3] = x[0] + t_;                                                                               \
        y[4] = x[0] - t_;                                                                               \
        y[5] = x[1];                                                                                    \
    } while (0)
/* F(2,5): G^T */
#define GT_25(T, x, y)                                                                                  \
    do {                                                                                                \
        T s1_ = x[1] + x[2], d1_ = x[1] - x[2], s2_ = x[3] + x[4], d2_ = x[3] - x[4];                   \
        T ms1_ = (-1.0f / 6.0f) * s1_, md1_ = (-1.0f / 6.0f) * d1_;                                     \
        y[0] = 0.25f * x[0] + ms1_ + (1.0f / 24.0f) * s2_;                                              \
        y[1] = md1_ + (1.0f / 12.0f) * d2_;                                                             \
        y[2] = ms1_ + (1.0f / 6.0f) * s2_;                                                              \
        y[3] = md1_ + (1.0f / 3.0f) * d2_;                                                              \
        y[4] = ms1_ + (2.0f / 3.0f) * s2_ + x[5];                                                       \
    } while (0)

/* ---- a = 8 (F(4,5)), points 0, 1, -1, 2, -2, 1/2, -1/2, inf ----
 * B^T = [1  0   -21/4  0     21/4  0     -1 0;
 *        0  1    1    -17/4 -17/4  1      1 0;
 *        0 -1    1     17/4 -17/4 -1      1 0;
 *        0  1/2  1/4  -5/2  -5/4   2      1 0;
 *        0 -1/2  1/4   5/2  -5/4  -2      1 0;
 *        0  2    4    -5/2  -5     1/2    1 0;
 *        0 -2    4     5/2  -5    -1/2    1 0;
 *        0 -1    0     21/4  0    -21/4   0 1] */
#define BT_A8(T, x, y)                                                                                  \
    do {                                                                                                \
        T e1_ = x[2] + x[6] - 4.25f * x[4], o1_ = x[1] + x[5] - 4.25f * x[3];                           \
        T e2_ = 0.25f * x[2] - 1.25f * x[4] + x[6], o2_ = 0.5f * x[1] - 2.5f * x[3] + 2.0f * x[5];      \
        T e3_ = 4.0f * x[2] - 5.0f * x[4] + x[6], o3_ = 2.0f * x[1] - 2.5f * x[3] + 0.5f * x[5];        \
        y[0] = x[0] - x[6] + 5.25f * (x[4] - x[2]);                                                     \
        y[1] = e1_ + o1_;                                                                               \
        y[2] = e1_ - o1_;                                                                               \
        y[3] = e2_ + o2_;                                                                               \
        y[4] = e2_ - o2_;                                                                               \
        y[5] = e3_ + o3_;                                                                               \
        y[6] = e3_ - o3_;                                                                               \
        y[7] = x[7] - x[1] + 5.25f * (x[3] - x[5]);                                                     \
    } while (0)
/* F(4,5): G = [1 0 0 0 0; -2/9 (1 1 1 1 1); -2/9 (1 -1 1 -1 1);
 *              1/90 1/45 2/45 4/45 8/45; 1/90 -1/45 2/45 -4/45 8/45;
 *              32/45 16/45 8/45 4/45 2/45; 32/45 -16/45 8/45 -4/45 2/45; 0 0 0 0 1] */
#define G_45(T, x, y)                                                                                   \
    do {                                                                                                \
        T e1_ = (-2.0f / 9.0f) * (x[0] + x[2] + x[4]), o1_ = (-2.0f / 9.0f) * (x[1] + x[3]);            \
        T e2_ = (1.0f / 90.0f) * x[0] + (2.0f / 45.0f) * x[2] + (8.0f / 45.0f) * x[4];                  \
        T o2_ = (1.0f / 45.0f) * x[1] + (4.0f / 45.0f) * x[3];                                          \
        T e3_ = (32.0f / 45.0f) * x[0] + (8.0f / 45.0f) * x[2] + (2.0f / 45.0f) * x[4];                 \
        T o3_ = (16.0f / 45.0f) * x[1] + (4.0f / 45.0f) * x[3];                                         \
        y[0] = x[0];                                                                                    \
        y[1] = e1_ + o1_;                                                                               \
        y[2] = e1_ - o1_;                                                                               \
        y[3] = e2_ + o2_;                                                                               \
        y[4] = e2_ - o2_;                                                                               \
        y[5] = e3_ + o3_;                                                                               \
        y[6] = e3_ - o3_;                                                                               \
        y[7] = x[4];                                                                                    \
    } while (0)
/* F(4,5): A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 0;
 *                0 1 1 4 4 1/4 1/4 0; 0 1 -1 8 -8 1/8 -1/8 1] */
#define AT_45(T, x, y)                                                                                  \
    do {                                                                                                \
        T e1_ = x[1] + x[2], o1_ = x[1] - x[2], e2_ = x[3] + x[4], o2_ = x[3] - x[4];                   \
        T e3_ = x[5] + x[6], o3_ = x[5] - x[6];                                                         \
        y[0] = x[0] + e1_ + e2_ + e3_;                                                                  \
        y[1] = o1_ + 2.0f * o2_ + 0.5f * o3_;                                                           \
        y[2] = e1_ + 4.0f * e2_ + 0.25f * e3_;                                                          \
        y[3] = o1_ + 8.0f * o2_ + 0.125f * o3_ + x[7];                                                  \
    } while (0)
/* F(4,5): A = (A^T)^T */
#define A_45(T, x, y)                                                                                   \
    do {                                                                                                \
        T e1_ = x[0] + x[2], o1_ = x[1] + x[3];                                                         \
        T e2_ = x[0] + 4.0f * x[2], o2_ = 2.0f * x[1] + 8.0f * x[3];                                    \
        T e3_ = x[0] + 0.25f * x[2], o3_ = 0.5f * x[1] + 0.125f * x[3];                                 \
        y[0] = x[0];                                                                                    \
        y[1] = e1_ + o1_;                                                                               \
        y[2] = e1_ - o1_;                                                                               \
        y[3] = e2_ + o2_;                                                                               \
        y[4] = e2_ - o2_;                                                                               \
        y[5] = e3_ + o3_;                                                                               \
        y[6] = e3_ - o3_;                                                                               \
        y[7] = x[3];                                                                                    \
    } while (0)
/* F(4,5): G^T */
#define GT_45(T, x, y)                                                                                  \
    do {                                                                                                \
        T s1_ = x[1] + x[2], d1_ = x[1] - x[2], s2_ = x[3] + x[4], d2_ = x[3] - x[4];                   \
        T s3_ = x[5] + x[6], d3_ = x[5] - x[6];                                                         \
        T ms1_ = (-2.0f / 9.0f) * s1_, md1_ = (-2.0f / 9.0f) * d1_;                                     \
        y[0] = x[0] + ms1_ + (1.0f / 90.0f) * s2_ + (32.0f / 45.0f) * s3_;                              \
        y[1] = md1_ + (1.0f / 45.0f) * d2_ + (16.0f / 45.0f) * d3_;                                     \
        y[2] = ms1_ + (2.0f / 45.0f) * s2_ + (8.0f / 45.0f) * s3_;                                      \
        y[3] = md1_ + (4.0f / 45.0f) * d2_ + (4.0f / 45.0f) * d3_;                                      \
        y[4] = ms1_ + (8.0f / 45.0f) * s2_ + (2.0f / 45.0f) * s3_ + x[7];                               \
    } while (0)

WINO_TF(bt_a4, 4, 4, BT_A4)
WINO_TF(bt_a6, 6, 6, BT_A6)
WINO_TF(bt_a8, 8, 8, BT_A8)
WINO_TF(g_23, 3, 4, G_23)
WINO_TF(at_23, 4, 2, AT_23)
WINO_TF(ad_23, 2, 4, A_23)
WINO_TF(gt_23, 4, 3, GT_23)
WINO_TF(g_43, 3, 6, G_43)
WINO_TF(at_43, 6, 4, AT_43)
WINO_TF(ad_43, 4, 6, A_43)
WINO_TF(gt_43, 6, 3, GT_43)
WINO_TF(g_25, 5, 6, G_25)
WINO_TF(at_25, 6, 2, AT_25)
WINO_TF(ad_25, 2, 6, A_25)
WINO_TF(gt_25, 6, 5, GT_25)
WINO_TF(g_45, 5, 8, G_45)
WINO_TF(at_45, 8, 4, AT_45)
WINO_TF(ad_45, 4, 8, A_45)
WINO_TF(gt_45, 8, 5, GT_45)


const wino_alg wino_f23 = {2, 3, 4, bt_a4, g_23, at_23, ad_23, gt_23};
const wino_alg wino_f43 = {4, 3, 6, bt_a6, g_43, at_43, ad_43, gt_43};
const wino_alg wino_f25 = {2, 5, 6, bt_a6, g_25, at_25, ad_25, gt_25};
const wino_alg wino_f45 = {4, 5, 8, bt_a8, g_45, at_45, ad_45, gt_45};
