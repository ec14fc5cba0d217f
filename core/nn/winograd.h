/* Winograd convolution for 3x3 and 5x5 stride-1 conv2d on CNHW activations.
 *
 * F(m x m, r x r) (Lavin & Gray 2015): every m x m output tile is computed from
 * an a x a input tile, a = m + r - 1, with a^2 multiplies per (Cout, Cin) pair
 * instead of r^2 m^2. Over a chunk of images this is a^2 independent GEMMs
 *   M[xi] (Cout x P) = U[xi] (Cout x Cin) x V[xi] (Cin x P),   P = tiles of the chunk,
 * with U = G g G^T (the transformed kernel), V = B^T d B (transformed input
 * tiles) and the output tile Y = A^T M A. The kernel transform is redone at
 * every call (the weights change every step). The tile size m (2 or 4) is
 * picked per shape by ip_winograd_tile(); all four algorithms
 * F(2x2,3x3), F(4x4,3x3), F(2x2,5x5), F(4x4,5x5) share one implementation.
 *
 * Shapes and layouts are those of core/nn/layers.h: x (C, N, H, W), weights
 * (Cout, Cin, r, r). The input gradient of a stride-1 convolution with pad p
 * is the convolution of dout with the flipped, transposed kernel and pad
 * r-1-p, so winograd_backward_data is the same code with those two switches
 * (plus accumulation into din). The weight gradient is the adjoint of the
 * forward algorithm:
 *   dW[co][ci] = G^T ( sum_p (A dY_p A^T)[co] (.) V_p[ci] ) G,
 * i.e. a^2 GEMMs dU[xi] (Cout x Cin) = M'[xi] (Cout x P) x V[xi]^T (P x Cin)
 * with M' the dout tiles expanded by A (.) A^T and V the forward input
 * transform, then the inverse kernel transform G^T dU G. */
#ifndef IP_WINOGRAD_H
#define IP_WINOGRAD_H

#include <stddef.h>

#include "layers.h"

/* 1 when the Winograd path handles this shape: square 3x3 or 5x5 kernel,
 * stride 1, pad 0..r-1 (so that the input gradient's pad r-1-p is >= 0). */
int ip_winograd_applicable(const ip_conv_shape *s);
/* Floats of workspace winograd_forward / winograd_backward_data /
 * winograd_backward_weight need for shape s (the max of the three). With
 * a = m + r - 1 (m = ip_winograd_tile(s)) it is
 *     a^2 Cout Cin                        transformed kernel (or its gradient)
 *   + a^2 (Cin + Cout) T nb               transformed inputs and GEMM outputs of a chunk
 *   + small per-channel scratch           (~ a^2 T nb / TH + the padded planes of a chunk)
 * where T = tiles per image (ceil(OH/m) ceil(OW/m), or ceil(H/m) ceil(W/m) for
 * the input gradient) and nb = images per chunk, the largest count keeping the
 * middle term <= 8M floats (32 MB) unless one image needs more. It is computed
 * for the unbalanced chunk min(N, limit / per-image size) so that it covers
 * every batch of up to s->n images (running balances the chunks). */
size_t ip_winograd_workspace_floats(const ip_conv_shape *s);
/* out (Cout,N,OH,OW) = conv(in (Cin,N,H,W); weight). Overwrites out. */
void winograd_forward(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s);
/* winograd_forward with an inference pass's batch-norm tail applied to each
 * output channel's tiles before they are written (conv2d_forward_tail, layers.h):
 * out is (Cout,N,OH/2,OW/2) when t->pool, else (Cout,N,OH,OW). The same GEMMs and
 * transforms, so the values of winograd_forward then norm_tail_forward. */
void winograd_forward_tail(float *out, const float *in, const float *weight, float *work, const ip_conv_shape *s,
                           const ip_conv_tail *t);
/* din (Cin,N,H,W) += conv_transpose(dout (Cout,N,OH,OW); weight): the input gradient. */
void winograd_backward_data(float *din, const float *dout, const float *weight, float *work,
                            const ip_conv_shape *s);
/* dweight (Cout,Cin,r,r) += dL/dW given dout (Cout,N,OH,OW) and in (Cin,N,H,W). */
void winograd_backward_weight(float *dweight, const float *dout, const float *in, float *work,
                              const ip_conv_shape *s);

/* Output tile size m of F(m x m, r x r) used for shape s: 2 or 4. */
int ip_winograd_tile(const ip_conv_shape *s);

/* ---- tuning / test hooks (not for production callers) ---- */
/* Limit, in floats, on the per-chunk V + M buffers (a^2 (Cin + Cout) floats per
 * tile); 0 restores the default. Images per chunk = max(1, limit / per-image size),
 * balanced. Lets the tests force several chunks on small shapes. Not thread-safe. */
void ip_winograd_set_chunk_limit(size_t floats);
/* Forces the tile size (2 or 4); 0 restores the automatic choice. Not thread-safe. */
void ip_winograd_force_tile(int m);

#endif
