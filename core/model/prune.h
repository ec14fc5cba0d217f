/* Global magnitude pruning (REFERENCE.md: removal attacks; IPGuard suspects). */
#ifndef IP_PRUNE_H
#define IP_PRUNE_H

#include <stddef.h>

#include "../util/err.h"
#include "model.h"

/* Zeroes the fraction `rate` (0..1) of conv and linear weights with the
 * smallest magnitude, ranked over all of them together (one global
 * threshold; ties at the threshold broken by position so exactly
 * round(rate * total) weights are zeroed). Norm affine parameters, biases,
 * buffers and passports are untouched. Returns the number of zeroed weights
 * in *pruned (may be NULL). */
int ip_prune_global(ip_model *m, double rate, size_t *pruned, ip_err *e);

/* The DeepIPR authors' pruning (pruning_attack.py, pruning_resnet; docs/attacks.md "prune"):
 * every parameter the authors' model has, 1-D ones included (conv and linear weights,
 * linear biases, the learned norm affines; not the unused affine of a v1 passport layer,
 * which their v1 layer does not have), ranked together by magnitude; the threshold is
 * numpy.percentile(|w|, 100 rate) (linear interpolation, in double) and a weight survives
 * iff |w| > threshold rounded to float (torch compares a float tensor with a Python float
 * in float). rate 0 prunes nothing (their early return). Returns in *pruned the number of
 * weights now zero by the mask (may be NULL), in *threshold the threshold (may be NULL). */
int ip_prune_percentile(ip_model *m, double rate, size_t *pruned, double *threshold, ip_err *e);

/* numpy.percentile's default ("linear") on n sorted values at quantile q in [0, 1]:
 * virtual index (n - 1) q, then numpy's _lerp (exact at both ends). */
double ip_percentile_linear(const float *sorted, size_t n, double q);

#endif
