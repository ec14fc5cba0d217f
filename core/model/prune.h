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

#endif
