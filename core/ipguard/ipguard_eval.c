/* IPGuard's evaluation maths (fingerprint.h, docs/fingerprint.md): the
 * paper's ARUC, the ROC AUC and the threshold for a false-positive rate,
 * exact over the observed matching rates; the curves sampled for plots.
 * Pure functions. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* v sorted into a new array (NULL on failure or n = 0). */
static double *sorted(const double *v, size_t n) {
    double *s = n ? malloc(n * sizeof *s) : NULL;
    if (!s) return NULL;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    return s;
}

/* #{v >= t} and #{v < t} over a sorted v, by binary search. */
static size_t count_below(const double *s, size_t n, double t) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

double ip_ipguard_aruc(const double *pos, size_t npos, const double *neg, size_t nneg) {
    if (npos == 0 || nneg == 0) return NAN;
    double *p = sorted(pos, npos), *q = sorted(neg, nneg), *b = malloc((npos + nneg + 2) * sizeof *b);
    double area = NAN;
    if (!p || !q || !b) goto done;
    /* the breakpoints in [0, 1]: between two consecutive ones both step
     * functions are constant, their value is the one at the midpoint */
    size_t nb = 0;
    b[nb++] = 0, b[nb++] = 1;
    for (size_t i = 0; i < npos; i++)
        if (p[i] > 0 && p[i] < 1) b[nb++] = p[i];
    for (size_t i = 0; i < nneg; i++)
        if (q[i] > 0 && q[i] < 1) b[nb++] = q[i];
    qsort(b, nb, sizeof *b, cmp_double);
    area = 0;
    for (size_t i = 0; i + 1 < nb; i++) {
        double lo = b[i], hi = b[i + 1];
        if (!(hi > lo)) continue;
        double t = lo + (hi - lo) / 2;
        double r = (double)(npos - count_below(p, npos, t)) / (double)npos;
        double u = (double)count_below(q, nneg, t) / (double)nneg;
        area += (hi - lo) * (r < u ? r : u);
    }
done:
    free(p), free(q), free(b);
    return area;
}

double ip_ipguard_roc_auc(const double *pos, size_t npos, const double *neg, size_t nneg) {
    if (npos == 0 || nneg == 0) return NAN;
    double *q = sorted(neg, nneg);
    if (!q) return NAN;
    /* per positive: negatives strictly below count 1, equal ones 1/2 */
    double wins = 0;
    for (size_t i = 0; i < npos; i++) {
        size_t below = count_below(q, nneg, pos[i]);
        size_t upto = below;
        while (upto < nneg && q[upto] == pos[i]) upto++;
        wins += (double)below + 0.5 * (double)(upto - below);
    }
    free(q);
    return wins / ((double)npos * (double)nneg);
}

double ip_ipguard_threshold(const double *cal, size_t ncal, const double *cands, size_t ncands, double fpr) {
    if (ncal == 0) return 0;
    double *q = sorted(cal, ncal);
    if (!q) return NAN;
    /* FPR(t) = #{cal >= t} / ncal falls as t rises: the smallest qualifying candidate, 0 included */
    double best = IP_IPGUARD_NEVER;
    if ((double)(ncal - count_below(q, ncal, 0)) / (double)ncal <= fpr) best = 0;
    for (size_t i = 0; i < ncands && best > 0; i++) {
        double t = cands[i];
        if (t < best && t >= 0 && (double)(ncal - count_below(q, ncal, t)) / (double)ncal <= fpr) best = t;
    }
    free(q);
    return best;
}
