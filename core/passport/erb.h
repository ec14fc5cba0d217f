/* The ERB ambiguity attack's building blocks (Chen, Tian, Chen, Zhou, CVPR
 * 2023, arXiv 2303.11595; docs/attacks.md "erb"): the expanded residual
 * blocks that sit in front of a forged scale, and the minimum-norm passport
 * that reproduces a forged scale/bias through a passport layer.
 *
 * A block maps the free scale gamma (C) of one passport layer to the scale
 * the layer uses:
 *   CERB (Sec. 3.2): gamma'' = gamma + W2 lrelu(W1 gamma + b1) + b2,
 *                    W1 (H, C), b1 (H), W2 (C, H), b2 (C), H = max(1, C/8);
 *   IERB (Sec. 3.1): per channel i, gamma''_i = gamma_i + w2_i . lrelu(w1_i gamma_i + b1_i) + b2_i,
 *                    w1_i, b1_i, w2_i (10 each), b2_i (1);
 *   none:            gamma'' = gamma (the plain attack).
 * lrelu is LeakyReLU with PyTorch's default slope 0.01. The block's weights
 * are one flat vector theta in the order above (IERB: channel-major, each
 * channel's w1, b1, w2, b2). */
#ifndef IP_ERB_H
#define IP_ERB_H

#include <stddef.h>
#include <stdint.h>

#include "../model/model.h"
#include "../util/err.h"

typedef enum { IP_ERB_CERB = 0, IP_ERB_IERB = 1, IP_ERB_NONE = 2 } ip_erb_block;

#define IP_ERB_IERB_HIDDEN 10 /* Sec. 3.1: h = 10 */
#define IP_ERB_SLOPE 0.01f    /* LeakyReLU's negative slope (PyTorch's default) */

/* Hidden width H of a block over C channels (CERB C/8, at least 1; IERB 10 per channel; none 0). */
size_t ip_erb_hidden(ip_erb_block b, size_t c);
/* Number of block weights (theta) over C channels. */
size_t ip_erb_nparams(ip_erb_block b, size_t c);
/* Floats the forward saves for the backward (CERB 2H: pre-activations and activations; IERB 10*C; none 0). */
size_t ip_erb_scratch(ip_erb_block b, size_t c);

/* PyTorch's nn.Linear initialisation, U(+-1/sqrt(fan_in)) for weights and
 * biases (fan_in: CERB C then H; IERB 1 then 10), from (seed, stream). */
void ip_erb_init(ip_erb_block b, size_t c, float *theta, uint64_t seed, uint64_t stream);

/* out (C) = block(gamma (C)); pre (ip_erb_scratch floats) receives the
 * hidden pre-activations the backward needs. */
void ip_erb_forward(ip_erb_block b, size_t c, const float *theta, const float *gamma, float *out, float *pre);
/* Given dout (C) = dL/dgamma'', ACCUMULATES dL/dgamma into dgamma (C) and
 * dL/dtheta into dtheta (nparams), from the forward's gamma and pre.
 * hid: ip_erb_hidden floats of scratch. */
void ip_erb_backward(ip_erb_block b, size_t c, const float *theta, const float *gamma, const float *pre,
                     const float *dout, float *dgamma, float *dtheta, float *hid);
/* Naive double-precision twins for the tests: same contract (pre unused by the ref backward, which recomputes). */
void ip_erb_forward_ref(ip_erb_block b, size_t c, const float *theta, const float *gamma, float *out);
void ip_erb_backward_ref(ip_erb_block b, size_t c, const float *theta, const float *gamma, const float *dout,
                         float *dgamma, float *dtheta);

/* The forged passport of passport layer p: key tensors (each the key's
 * numel, (1, Cin, H, W)) whose passport gamma/beta are `gamma`/`beta` (Cout)
 * through the layer's current conv weights. The map key -> gamma is linear,
 * gamma = M key with M = W A (A: the colmean of the key's im2col), so the
 * minimum-norm solution is key = M^T (M M^T + lambda I)^-1 gamma, the ridge
 * lambda = 1e-9 * trace(M M^T) / Cout only making a rank-deficient M
 * (Cout > rank) solvable, in double precision. *residual = max over gamma
 * and beta of |M key - target|_2 / |target|_2 (0 = reproduced exactly). */
int ip_erb_solve_passport(const ip_model *m, int p, const float *gamma, const float *beta, float *key_gamma,
                          float *key_beta, double *residual, ip_err *e);

#endif
