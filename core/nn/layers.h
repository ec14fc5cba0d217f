/* Layer kernels: forward/backward pairs on plain float buffers.
 *
 * Activation layout is channel-major "CNHW": x[c][n][h][w]. A channel's values
 * over the whole batch are contiguous, so a convolution over the batch is one
 * GEMM  out(Cout, N*OH*OW) = W(Cout, Cin*KH*KW) x col(Cin*KH*KW, N*OH*OW)  and
 * batch-norm statistics are row reductions. Weights keep PyTorch's layout
 * (conv [out][in][kh][kw], linear [out][in]) so checkpoints need no transposes.
 * Matrices between the flatten and the classifier are row-major (N, features).
 *
 * Conventions, for every backward function:
 *   - gradients with respect to parameters are ACCUMULATED (+=), the caller zeroes them;
 *   - gradients with respect to inputs are ACCUMULATED (+=) too, so a tensor
 *     read by two layers (residual connections) gets the sum; a NULL input
 *     gradient pointer means "not needed" and skips that work.
 * Every fast kernel has a *_ref twin written as plainly as possible; the tests
 * compare the two and check the fast one against finite differences. */
#ifndef IP_LAYERS_H
#define IP_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ---------------- conv2d (no bias: every conv is followed by a norm) ---------------- */
typedef struct ip_conv_shape {
    int n, cin, h, w;         /* input (Cin, N, H, W) */
    int cout, kh, kw;         /* weight (Cout, Cin, KH, KW) */
    int stride, pad;          /* same for both axes, zero padding */
    int oh, ow;               /* output (Cout, N, OH, OW), set by ip_conv_shape_init */
    int algo;                 /* ip_conv_algo: which kernels may run (IP_CONV_FAST after ip_conv_shape_init) */
} ip_conv_shape;
/* Which algorithms a convolution may use: the speed/accuracy trade of
 * docs/performance.md ("Numerics").
 *   FAST:      Winograd where it is faster (the rule in conv.c) with the tile
 *              size of least work (F(4x4) on most planes), else the direct kernel
 *              or im2col + GEMM;
 *   PRECISE:   Winograd only as F(2x2, 3x3), whose transforms are exact (points
 *              0, +-1), else the direct kernel or im2col + GEMM: float32 errors
 *              at PyTorch's level (F(4x4) loses ~30x per layer, 1e-3 through a
 *              network's backward pass);
 *   GEMM:      never Winograd (tests, benchmarks);
 *   REFERENCE: the *_ref kernels (double sums), for tests only (slow). */
typedef enum { IP_CONV_FAST = 0, IP_CONV_PRECISE = 1, IP_CONV_GEMM = 2, IP_CONV_REFERENCE = 3 } ip_conv_algo;
/* ip_conv_algo <-> "fast" | "precise" | "gemm" | "reference" (the train key and
 * the checkpoint's `conv` attribute name them). Parse: 0, or -1 if unknown. */
const char *ip_conv_algo_name(int a);
int ip_conv_algo_parse(const char *s, int *out);

/* Fills oh/ow; returns -1 when the output would be empty or arguments are invalid. */
int ip_conv_shape_init(ip_conv_shape *s, int n, int cin, int h, int w, int cout, int kh, int kw,
                       int stride, int pad);
/* K = Cin*KH*KW, the GEMM inner dimension. */
size_t ip_conv_k(const ip_conv_shape *s);
/* Floats of workspace conv2d_forward/backward need (im2col buffer for a chunk of
 * images, chosen so it stays a few MB); 0 when no workspace is needed (1x1 stride 1). */
size_t ip_conv_workspace_floats(const ip_conv_shape *s);

/* The kernels conv2d_forward/backward run for shape s (its n included), for
 * benchmarks and profiles: "pointwise-gemm" (1x1 stride 1), "winograd-f2" /
 * "winograd-f4" (F(2x2) / F(4x4)), "im2col-gemm" or "reference". The direct
 * kernel is the caller's choice (conv2d_direct_applicable). */
const char *ip_conv_path(const ip_conv_shape *s);

/* out (Cout,N,OH,OW) = conv(in (Cin,N,H,W); weight (Cout,Cin,KH,KW)). Overwrites out. */
void conv2d_forward(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s);
/* dweight += dL/dW; din += dL/din (either may be NULL: that gradient is skipped). */
void conv2d_backward(float *din, float *dweight, const float *dout, const float *in,
                     const float *weight, float *work, const ip_conv_shape *s);
void conv2d_forward_ref(float *out, const float *in, const float *weight, const ip_conv_shape *s);
void conv2d_backward_ref(float *din, float *dweight, const float *dout, const float *in,
                         const float *weight, const ip_conv_shape *s);

/* An inference pass's conv with the batch-norm tail that alone reads its output
 * (eval mode, running statistics): per output channel o, y = act(gamma[o] * (x - mean[o])
 * * rstd[o] + beta[o]) [-> 2x2 max-pool], norm_tail_forward's values to the bit, applied
 * while the conv's output tiles are in cache, so the conv's output is never written.
 * Returns 1 with out written, (Cout,N,OH/2,OW/2) when pool else (Cout,N,OH,OW), when
 * conv2d_forward would run shape s as Winograd; else 0 and nothing is written (the
 * caller runs the two kernels). */
typedef struct ip_conv_tail {
    const float *mean, *rstd; /* per output channel (bn_tail_eval_stats); NULL: 0 and 1 (an affine alone) */
    const float *gamma, *beta; /* per output channel; with sets, set k's at [k * set_stride + o] */
    int relu, pool;
    /* Sets (the forger's groups of fake passports): images [k * set_images, (k + 1) * set_images)
     * take set k's gamma/beta; 0: one set. pool_first: the forger's pooled rule (bn_tail_of_pool4)
     * instead of bn_tail_pool4's. */
    int set_images;
    size_t set_stride;
    int pool_first;
} ip_conv_tail;
int conv2d_forward_tail(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s,
                        const ip_conv_tail *t);

/* Direct convolution for few input taps (stride 1, Cin*KH*KW <= 32, e.g. a first layer on 1..3
 * channels): no im2col, vectorised over output columns, images / output channels in parallel.
 * conv2d_direct_applicable() says whether these handle shape s (never without AVX-512).
 * forward overwrites out like conv2d_forward; backward_weight does dweight += dL/dW only. */
int conv2d_direct_applicable(const ip_conv_shape *s);
void conv2d_direct_forward(float *out, const float *in, const float *weight, const ip_conv_shape *s);
void conv2d_direct_backward_weight(float *dweight, const float *dout, const float *in, const ip_conv_shape *s);

/* The passport path. For a passport P of one input sample (Cin, H, W), the
 * spatial mean of conv(P; W) is W(Cout, K) . colmean(K), where colmean is the
 * mean over output positions of im2col(P). So gamma = W . s with s computed once
 * per passport: the passport path costs a GEMV, and dW += dgamma (x) s.
 * colmean (K) = mean over the OH*OW columns of im2col(P), P laid out (Cin,H,W). */
void ip_conv_colmean(float *colmean, const float *passport, const ip_conv_shape *s);
/* Its reference, channel by channel: the same sums in the same order, so the same bits. */
void ip_conv_colmean_ref(float *colmean, const float *passport, const ip_conv_shape *s);
/* Reference: gamma[c] = mean_{oh,ow} conv(P; W)[c] computed the long way. */
void ip_conv_passport_ref(float *gamma, const float *passport, const float *weight, const ip_conv_shape *s);

/* ---------------- normalisation without affine ---------------- */
typedef struct ip_norm_shape {
    int c, n, hw;     /* x is (C, N, HW) */
    int groups;       /* 0 = batch norm (stats per channel over N*HW);
                         G > 0 = group norm (stats per (sample, group) over C/G channels * HW) */
} ip_norm_shape;

/* Number of (mean, rstd) pairs: C for batch norm, N*G for group norm. */
size_t ip_norm_stats(const ip_norm_shape *s);

/* xhat = (x - mean) * rstd.
 * Batch norm, training: batch statistics (biased variance), stored in mean/rstd,
 *   and running_mean/var updated: r = (1-momentum) r + momentum * stat, with the
 *   UNBIASED variance for running_var (PyTorch semantics). running_* may be NULL.
 * Batch norm, eval: mean = running_mean, rstd = 1/sqrt(running_var + eps), written to mean/rstd.
 * Group norm: always per-sample statistics; running_* ignored. */
void norm_forward(float *xhat, float *mean, float *rstd, const float *x, const ip_norm_shape *s,
                  int training, float *running_mean, float *running_var, float momentum, float eps);
/* Group norm's statistics alone (s->groups > 0): the N * G (mean, rstd) pairs norm_forward
 * computes, the same bits, xhat not written. */
void norm_group_stats(float *mean, float *rstd, const float *x, const ip_norm_shape *s, float eps);
/* dx += dL/dx given dxhat. In batch-norm eval mode the statistics are constants:
 * dx += dxhat * rstd. */
void norm_backward(float *dx, const float *dxhat, const float *xhat, const float *rstd,
                   const ip_norm_shape *s, int training);
void norm_forward_ref(float *xhat, float *mean, float *rstd, const float *x, const ip_norm_shape *s,
                      int training, float *running_mean, float *running_var, float momentum, float eps);
void norm_backward_ref(float *dx, const float *dxhat, const float *xhat, const float *rstd,
                       const ip_norm_shape *s, int training);

/* ---------------- fused conv-block tail: batch or group norm -> affine [-> ReLU] [-> max-pool 2x2] ----------------
 * x (C, N, H, W). The arithmetic of norm_forward -> affine_forward [-> maxpool2_forward] in
 * one pass per channel: y = act(gamma * xhat + beta) with xhat = (x - mean) * rstd (same
 * statistics, running-statistics update and eval rule as norm_forward; groups as
 * ip_norm_shape's, dividing C: mean and rstd hold ip_norm_stats pairs), and when pool,
 * pooled (C, N, H/2, W/2) and argmax as maxpool2_forward.
 * xhat is not stored: the backward recomputes it from x, mean and rstd. y may be NULL when
 * pool (nothing reads it: the backward needs only x, argmax and the statistics), else it is
 * written. argmax may be NULL when no backward follows (an inference pass): the same pooled
 * values, without the indices. */
typedef struct ip_norm_tail_shape {
    int c, n, h, w;
    int relu, pool;
    int groups; /* 0 = batch norm, G > 0 = group norm */
} ip_norm_tail_shape;
void norm_tail_forward(float *y, float *pooled, uint32_t *argmax, float *mean, float *rstd, const float *x,
                       const float *gamma, const float *beta, const ip_norm_tail_shape *s, int training,
                       float *running_mean, float *running_var, float momentum, float eps);
/* The eval-mode tail for a conv that holds its output in its own layout (the
 * Winograd output transform, conv2d_forward_tail), with norm_tail_forward's arithmetic:
 * bn_tail_eval_stats: the mean and rstd it uses for c channels' running statistics;
 * bn_tail_apply: y[i] = act(gamma * xhat + beta) for n values (y may be x);
 * bn_tail_pool4: y[i] = the 2x2 max-pool of the four window values x00[i] (top left),
 * x01[i], x10[i], x11[i] after the tail, maxpool2_forward's rule in its order (y may be x00). */
void bn_tail_eval_stats(float *mean, float *rstd, const float *running_mean, const float *running_var, int c,
                        float eps);
void bn_tail_apply(float *y, const float *x, size_t n, float mean, float rstd, float gamma, float beta, int relu);
void bn_tail_pool4(float *y, const float *x00, const float *x01, const float *x10, const float *x11, size_t n,
                   float mean, float rstd, float gamma, float beta, int relu);
/* The forger's order (core/passport/forge.c, docs/passports.md "Fused tails"): the tail of the
 * 2x2 max of x when gamma >= 0, of the min when gamma < 0 (max(max(x00, x01), max(x10, x11))
 * with `a > b ? a : b`): the same values as bn_tail_pool4's, the tail being monotonic in x.
 * bn_tail_of_pool4 on four runs of window values (y may be x00); bn_tail_of_pool2x2 on
 * `planes` planes of h x w into planes of h/2 x w/2. */
void bn_tail_of_pool4(float *y, const float *x00, const float *x01, const float *x10, const float *x11, size_t n,
                      float mean, float rstd, float gamma, float beta, int relu);
void bn_tail_of_pool2x2(float *restrict o, const float *restrict x, size_t planes, int h, int w, float mean,
                        float rstd, float gamma, float beta, int relu);
/* Backward of norm_tail_forward, given dout = dL/dpooled (pool; argmax of that forward) or
 * dL/dy (no pool): dgamma[c] += sum dz*xhat, dbeta[c] += sum dz (either may be NULL), and
 * dL/dx written into dx (accumulate = 0) or added to it (accumulate = 1); dx may be NULL.
 * The formulas of maxpool2_backward -> affine_backward -> norm_backward (whose group norm
 * takes its batch statistics' gradient whatever `training` says). Group norm's dx needs
 * sums over each group's channels, kept in work (norm_tail_work_doubles(s) doubles; NULL
 * for batch norm). */
void norm_tail_backward(float *dx, int accumulate, float *dgamma, float *dbeta, const float *dout,
                        const uint32_t *argmax, const float *x, const float *mean, const float *rstd,
                        const float *gamma, const float *beta, const ip_norm_tail_shape *s, int training,
                        double *work);
size_t norm_tail_work_doubles(const ip_norm_tail_shape *s);

/* ---------------- per-channel affine, optional ReLU ----------------
 * out[c][m] = act(gamma[c] * x[c][m] + beta[c]), x and out (C, M), M = N*HW.
 * out may alias x. */
void affine_forward(float *out, const float *x, const float *gamma, const float *beta, int c, size_t m,
                    int relu);
/* Given out (post-activation, for the ReLU mask) and x (pre-affine input):
 * dgamma[c] += sum dz*x, dbeta[c] += sum dz, dx += dz*gamma, where dz = dout * (relu ? out>0 : 1).
 * dgamma/dbeta/dx may each be NULL. x must not alias out when dgamma is wanted. */
void affine_backward(float *dx, float *dgamma, float *dbeta, const float *dout, const float *out,
                     const float *x, const float *gamma, int c, size_t m, int relu);
void affine_forward_ref(float *out, const float *x, const float *gamma, const float *beta, int c,
                        size_t m, int relu);
void affine_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dout, const float *out,
                         const float *x, const float *gamma, int c, size_t m, int relu);

/* ---------------- elementwise ---------------- */
/* out = a + b, optional ReLU; out may alias a or b. */
void add_forward(float *out, const float *a, const float *b, size_t len, int relu);
/* da += dz, db += dz with dz = dout * (relu ? out>0 : 1). */
void add_backward(float *da, float *db, const float *dout, const float *out, size_t len, int relu);
void relu_forward(float *out, const float *x, size_t len);
void relu_backward(float *dx, const float *dout, const float *out, size_t len);

/* ---------------- max-pool 2x2 stride 2 (floor) ----------------
 * On `planes` independent (H, W) planes (C*N of them in CNHW), output (H/2, W/2).
 * argmax stores, per output, the flat index within its input plane. */
void maxpool2_forward(float *out, uint32_t *argmax, const float *x, size_t planes, int h, int w);
void maxpool2_backward(float *dx, const float *dout, const uint32_t *argmax, size_t planes, int h, int w);
void maxpool2_forward_ref(float *out, const float *x, size_t planes, int h, int w);

/* ---------------- global average pool: (C, N, HW) -> (N, C) row-major ---------------- */
void gap_forward(float *out, const float *x, int c, int n, int hw);
void gap_backward(float *dx, const float *dout, int c, int n, int hw);

/* ---------------- flatten: (C, N, H*W) -> (N, C*H*W) in PyTorch's NCHW order ---------------- */
void flatten_forward(float *out, const float *x, int c, int n, int hw);
void flatten_backward(float *dx, const float *dout, int c, int n, int hw);

/* ---------------- linear: y (N, out) = x (N, in) W^T + b, W (out, in) ---------------- */
void linear_forward(float *y, const float *x, const float *weight, const float *bias, int n, int in, int out);
void linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                     const float *weight, int n, int in, int out);
void linear_forward_ref(float *y, const float *x, const float *weight, const float *bias, int n, int in,
                        int out);
void linear_backward_ref(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                         const float *weight, int n, int in, int out);

/* ---------------- softmax cross-entropy ----------------
 * logits (N, K) row-major, labels in [0, K). Returns the mean loss over the N
 * rows; when dlogits is not NULL writes (overwrites) d(mean loss)/dlogits, scaled by `scale`
 * (use 1.0; a trainer mixing several losses passes their weight). correct (may be NULL)
 * receives the number of rows whose argmax equals the label (first max wins). */
double xent_forward_backward(float *dlogits, const float *logits, const int32_t *labels, int n, int k,
                             float scale, int *correct);
/* argmax of each row (first max wins). */
void argmax_rows(int32_t *pred, const float *logits, int n, int k);

/* ---------------- knowledge distillation (Hinton et al. 2015) ----------------
 * student, teacher: logits (N, K) row-major; t > 0 the temperature. Returns
 * T^2 * mean over rows of KL(softmax(teacher/T) || softmax(student/T)) (the
 * T^2 keeps the gradient's scale independent of T); when dstudent is not
 * NULL writes (overwrites) d(loss)/dstudent = T (q - p) / N, times `scale`
 * (a trainer mixing losses passes the weight). The teacher gets no gradient. */
double kd_forward_backward(float *dstudent, const float *student, const float *teacher, int n, int k, float t,
                           float scale);
double kd_forward_backward_ref(float *dstudent, const float *student, const float *teacher, int n, int k, float t,
                               float scale);

#endif
