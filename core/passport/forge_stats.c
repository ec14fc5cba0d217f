/* The fake-passport statistics and the shard arithmetic of forge.h: pure
 * functions of numbers (the null distribution's quantiles and p-value, a
 * shard's passport range), apart from the engine in forge.c. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "forge.h"

double ip_forge_quantile(const double *sorted, size_t n, double q) {
    if (n == 0) return NAN;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return sorted[n - 1];
    double fr = pos - (double)i;
    return sorted[i] + fr * (sorted[i + 1] - sorted[i]);
}

double ip_forge_p_value(double claim_acc, double claim_detect, const double *acc, const double *detect, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += acc[i] >= claim_acc && detect[i] >= claim_detect;
    return (1.0 + (double)k) / (1.0 + (double)n);
}

void ip_forge_shard_range(uint64_t n, int shard, int shards, uint64_t *first, uint64_t *count) {
    if (shards < 1) shards = 1;
    if (shard < 0) shard = 0;
    if (shard >= shards) {
        *first = n, *count = 0;
        return;
    }
    /* n * s / S without overflow for n < 2^53 */
    uint64_t a = (uint64_t)((long double)n * shard / shards), b = (uint64_t)((long double)n * (shard + 1) / shards);
    *first = a, *count = b - a;
}
