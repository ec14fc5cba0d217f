/* IPGuard's evaluation maths (fingerprint.h, docs/fingerprint.md): robustness
 * and uniqueness over the threshold grid t = i/100, their ARUC, and the
 * threshold that meets a false-positive rate on the negatives. Pure functions. */
#include <math.h>
#include <stddef.h>

#include "fingerprint.h"

/* Grid threshold i: i/100 computed as a quotient, so a matching rate c/n that
 * equals i/100 exactly compares equal (both are the correctly rounded value). */
static double grid_t(int i) { return (double)i / 100.0; }

static double frac_at_least(const double *v, size_t n, double t) {
    if (n == 0) return NAN;
    size_t c = 0;
    for (size_t k = 0; k < n; k++) c += v[k] >= t;
    return (double)c / (double)n;
}

void ip_ipguard_curves(const double *pos, size_t npos, const double *neg, size_t nneg,
                       double robustness[IP_IPGUARD_NT], double uniqueness[IP_IPGUARD_NT]) {
    for (int i = 0; i < IP_IPGUARD_NT; i++) {
        robustness[i] = frac_at_least(pos, npos, grid_t(i));
        uniqueness[i] = nneg ? 1.0 - frac_at_least(neg, nneg, grid_t(i)) : NAN;
    }
}

double ip_ipguard_aruc(const double robustness[IP_IPGUARD_NT], const double uniqueness[IP_IPGUARD_NT]) {
    /* x = uniqueness rises with t, y = robustness falls: the curve runs from
     * the top-left to the bottom-right like a ROC curve read backwards */
    double px = 0, py = 1, area = 0;
    for (int i = 0; i < IP_IPGUARD_NT; i++) {
        double x = uniqueness[i], y = robustness[i];
        area += (x - px) * (y + py) / 2;
        px = x, py = y;
    }
    area += (1 - px) * (0 + py) / 2;
    return area;
}

double ip_ipguard_threshold(const double *neg, size_t nneg, double fpr) {
    if (nneg == 0) return 0;
    for (int i = 0; i < IP_IPGUARD_NT; i++)
        if (frac_at_least(neg, nneg, grid_t(i)) <= fpr) return grid_t(i);
    return 1.01;
}
