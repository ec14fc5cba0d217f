/* The fake-passport statistics and the shard arithmetic of forge.h: pure
 * functions of numbers (the null distribution's quantiles and p-value, a
 * shard's passport range, the Clopper-Pearson bound, the generalized Pareto
 * fit of the forgery tail), apart from the engine in forge.c. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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

/* ------------------------------------------------------------------------- */
/* Clopper-Pearson                                                           */

/* Continued fraction of the regularized incomplete beta function (modified
 * Lentz; converges fast for x < (a + 1) / (a + b + 2)). */
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        double m2 = 2.0 * m, aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-15) break;
    }
    return h;
}

/* I_x(a, b), the regularized incomplete beta function. */
static double ibeta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(lbt) * betacf(a, b, x) / a;
    return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

double ip_forge_cp_upper(uint64_t k, uint64_t n, double conf) {
    if (n == 0 || k >= n) return 1;
    double alpha = 1 - conf;
    if (k == 0) return -expm1(log(alpha) / (double)n);
    /* P(X <= k | p) = I_{1-p}(n - k, k + 1) falls from 1 to 0 as p goes from 0 to 1 */
    double lo = (double)k / (double)n, hi = 1;
    for (int it = 0; it < 200 && hi - lo > 1e-15 * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (ibeta((double)(n - k), (double)k + 1, 1 - mid) > alpha) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* ------------------------------------------------------------------------- */
/* generalized Pareto: maximum likelihood, profile likelihood                */

/* Below this |xi| the GPD is computed as its limit, the exponential. */
#define XI_EXP 1e-9

double ip_forge_gpd_sf(double y, double xi, double sigma) {
    if (y <= 0) return 1;
    if (fabs(xi) < XI_EXP) return exp(-y / sigma);
    double z = 1 + xi * y / sigma;
    if (z <= 0) return 0; /* beyond the endpoint of a xi < 0 tail */
    return exp(-log(z) / xi);
}

/* Log-likelihood of (xi, sigma); -inf outside the support. */
static double gpd_loglik(const double *y, size_t k, double xi, double sigma) {
    if (!(sigma > 0) || xi < -1 - 1e-12) return -INFINITY;
    double s = 0;
    if (fabs(xi) < XI_EXP) {
        for (size_t i = 0; i < k; i++) s += y[i];
        return -(double)k * log(sigma) - s / sigma;
    }
    for (size_t i = 0; i < k; i++) {
        double z = xi * y[i] / sigma;
        if (z <= -1) {
            /* xi = -1 exactly: the uniform density 1/sigma on [0, sigma], its endpoint included */
            if (xi <= -1 + 1e-12 && z > -1 - 1e-12) continue;
            return -INFINITY;
        }
        s += log1p(z);
    }
    return -(double)k * log(sigma) - (1 + 1 / xi) * s;
}

/* The likelihood profiled over sigma at theta = xi / sigma (Grimshaw 1993):
 * the best xi is the mean of log(1 + theta y), and the log-likelihood
 * -k (log(xi / theta) + 1 + xi). tau = theta * ymax in (-1, inf). */
static double theta_profile(const double *y, size_t k, double ymax, double ymean, double tau, double *xi,
                            double *sigma) {
    double theta = tau / ymax;
    if (fabs(tau) < 1e-12) {
        *xi = 0, *sigma = ymean;
        return -(double)k * (log(ymean) + 1);
    }
    double s = 0;
    for (size_t i = 0; i < k; i++) s += log1p(theta * y[i]);
    double x = s / (double)k;
    if (x < -1) return -INFINITY; /* the likelihood is unbounded there: xi >= -1 only */
    if (x > IP_GPD_XI_MAX) return -INFINITY;
    *xi = x, *sigma = x / theta;
    if (!(*sigma > 0)) return -INFINITY;
    return -(double)k * (log(*sigma) + 1 + x);
}

int ip_forge_gpd_fit(const double *y, size_t k, double *xi, double *sigma, double *loglik) {
    double ymax = 0, ymean = 0;
    for (size_t i = 0; i < k; i++) {
        if (!(y[i] >= 0) || !isfinite(y[i])) return -1;
        if (y[i] > ymax) ymax = y[i];
        ymean += y[i];
    }
    if (k < 2 || !(ymax > 0)) return -1;
    ymean /= (double)k;
    /* a grid over tau = theta * ymax, dense near -1 (short tails) and log-spaced above 0 (long ones) */
    double best = -INFINITY, bt = 0, bx = 0, bs = ymean;
    enum { NNEG = 240, NPOS = 240 };
    double taus[NNEG + NPOS + 1];
    int nt = 0;
    for (int j = NNEG; j >= 1; j--) taus[nt++] = -(1 - pow(10, -12.0 * j / NNEG)); /* -(1 - 1e-12) .. -0.11 */
    taus[nt++] = 0;
    for (int j = 0; j < NPOS; j++) taus[nt++] = pow(10, -6 + 12.0 * j / (NPOS - 1)); /* 1e-6 .. 1e6 */
    int bi = -1;
    for (int i = 0; i < nt; i++) {
        double x, s, l = theta_profile(y, k, ymax, ymean, taus[i], &x, &s);
        if (l > best) best = l, bt = taus[i], bx = x, bs = s, bi = i;
    }
    if (bi < 0 || !isfinite(best)) return -1;
    /* golden-section refinement between the grid neighbours of the best point */
    double a = bi > 0 ? taus[bi - 1] : bt, b = bi + 1 < nt ? taus[bi + 1] : bt;
    const double gr = 0.6180339887498949;
    double c = b - gr * (b - a), d = a + gr * (b - a), xc, sc, xd, sd;
    double fc = theta_profile(y, k, ymax, ymean, c, &xc, &sc), fd = theta_profile(y, k, ymax, ymean, d, &xd, &sd);
    for (int it = 0; it < 100 && fabs(b - a) > 1e-14 * (1 + fabs(a)); it++) {
        if (fc > fd) {
            b = d, d = c, fd = fc, xd = xc, sd = sc;
            c = b - gr * (b - a);
            fc = theta_profile(y, k, ymax, ymean, c, &xc, &sc);
        } else {
            a = c, c = d, fc = fd, xc = xd, sc = sd;
            d = a + gr * (b - a);
            fd = theta_profile(y, k, ymax, ymean, d, &xd, &sd);
        }
    }
    if (fc > best) best = fc, bx = xc, bs = sc;
    if (fd > best) best = fd, bx = xd, bs = sd;
    *xi = bx, *sigma = bs, *loglik = best;
    return 0;
}

/* The log-likelihood profiled over xi at a fixed survival q = sf(d): sigma
 * follows from (q, xi), sigma = xi d / (q^-xi - 1) (d / -log q at xi = 0). */
static double q_loglik(const double *y, size_t k, double d, double logq, double xi) {
    double sigma = fabs(xi) < XI_EXP ? d / -logq : xi * d / expm1(-xi * logq);
    return gpd_loglik(y, k, xi, sigma);
}

static double q_profile(const double *y, size_t k, double d, double logq) {
    enum { NXI = 160 };
    double best = -INFINITY, bxi = 0;
    int bi = -1;
    for (int i = 0; i <= NXI; i++) {
        double xi = -1 + (IP_GPD_XI_MAX + 1) * i / NXI, l = q_loglik(y, k, d, logq, xi);
        if (l > best) best = l, bxi = xi, bi = i;
    }
    if (bi < 0) return -INFINITY;
    double step = (IP_GPD_XI_MAX + 1) / NXI, a = bxi - step, b = bxi + step;
    if (a < -1) a = -1;
    const double gr = 0.6180339887498949;
    double c = b - gr * (b - a), e = a + gr * (b - a);
    double fc = q_loglik(y, k, d, logq, c), fe = q_loglik(y, k, d, logq, e);
    for (int it = 0; it < 80 && b - a > 1e-10; it++) {
        if (fc > fe) b = e, e = c, fe = fc, c = b - gr * (b - a), fc = q_loglik(y, k, d, logq, c);
        else a = c, c = e, fc = fe, e = a + gr * (b - a), fe = q_loglik(y, k, d, logq, e);
    }
    if (fc > best) best = fc;
    if (fe > best) best = fe;
    return best;
}

/* The chi-square(1) quantile of probability P: the square of the normal one. */
static double chi2_1(double P) {
    /* normal quantile of (1 + P) / 2 by bisection on erfc */
    double lo = 0, hi = 40, target = 1 - P;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (erfc(mid / sqrt(2.0)) > target) lo = mid;
        else hi = mid;
    }
    double z = 0.5 * (lo + hi);
    return z * z;
}

double ip_forge_gpd_sf_upper(const double *y, size_t k, double d, double xi_hat, double sigma_hat, double loglik_hat,
                             double conf) {
    double crit = chi2_1(2 * conf - 1), q_hat = ip_forge_gpd_sf(d, xi_hat, sigma_hat);
    if (d <= 0) return 1;
    /* deviance 2 (loglik_hat - profile(q)) grows from 0 at q_hat as q rises: bisect log q where it reaches crit */
    double lo = q_hat > 1e-300 ? log(q_hat) : log(1e-300), hi = 0;
    double dev_hi = 2 * (loglik_hat - q_profile(y, k, d, log1p(-1e-12)));
    if (dev_hi <= crit) return 1;
    /* every q > 0 rejected: the data put the tail's endpoint (xi < 0) below d at this level */
    if (2 * (loglik_hat - q_profile(y, k, d, lo)) > crit) return 0;
    for (int it = 0; it < 100 && hi - lo > 1e-9; it++) {
        double mid = 0.5 * (lo + hi);
        if (2 * (loglik_hat - q_profile(y, k, d, mid)) <= crit) lo = mid;
        else hi = mid;
    }
    return exp(lo);
}

/* ------------------------------------------------------------------------- */
/* the forgery tail                                                          */

void ip_forge_tail_estimate(const double *sorted, size_t n, size_t accepted, double thr, double resolution,
                            int screened, ip_forge_tail *out) {
    ip_forge_tail t = {0, 0, NAN, NAN, NAN, n ? (double)accepted / (double)n : NAN, 1, 1};
    t.p_cp_upper = t.p_upper = ip_forge_cp_upper(accepted, n, IP_TAIL_CONF);
    *out = t;
    size_t k = (size_t)ceil(IP_TAIL_FRACTION * (double)n);
    if (screened || n == 0 || k < IP_TAIL_MIN || k >= n) return;
    /* the smallest exceedance and every value tied with it */
    size_t i0 = n - k;
    double x0 = sorted[i0];
    while (i0 > 0 && sorted[i0 - 1] == x0) i0--;
    k = n - i0;
    double h = resolution > 0 ? resolution : 0;
    /* on a grid of step h a value x stands for [x - h/2, x + h/2): u and the threshold at half steps */
    double u = h > 0 ? x0 - h / 2 : (i0 > 0 ? sorted[i0 - 1] : x0);
    double t_acc = thr;
    if (h > 0) t_acc = ceil((thr - 1e-12) / h - 1e-9) * h - h / 2;
    double d = t_acc - u;
    if (!(d > 0)) return; /* the threshold is in the body: the count itself is the evidence */
    double *y = malloc(k * sizeof *y);
    if (!y) return;
    size_t distinct = 0;
    for (size_t i = 0; i < k; i++) {
        y[i] = sorted[i0 + i] - u;
        distinct += i == 0 || sorted[i0 + i] != sorted[i0 + i - 1];
    }
    double xi, sigma, ll;
    if (distinct >= 5 && ip_forge_gpd_fit(y, k, &xi, &sigma, &ll) == 0) {
        double zeta = (double)k / (double)n;
        double q = ip_forge_gpd_sf(d, xi, sigma), qu = ip_forge_gpd_sf_upper(y, k, d, xi, sigma, ll, IP_TAIL_CONF);
        if (isfinite(q) && isfinite(qu)) {
            out->gpd = 1, out->k = k, out->u = u, out->xi = xi, out->sigma = sigma;
            out->p_est = zeta * q, out->p_upper = zeta * (qu > q ? qu : q);
        }
    }
    free(y);
}
