/* The forgery tail (issue 14 part 4; docs/attacks.md "Forgery tail"): the
 * Clopper-Pearson bound against known values, the generalized Pareto fit
 * recovering the parameters of samples drawn from known GPDs with the
 * project's RNG, the coverage of its profile-likelihood bound, the tail
 * estimate and its fallbacks, the joint criterion in fake1's summary and
 * through the shard merge, and the report's fake1 columns and 2-D histogram. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/passport/forge.h"
#include "../core/tasks/tasks.h"
#include "../core/util/rng.h"
#include "../runner/report/report.h"
#include "report_fixture.h"
#include "testutil.h"

/* A uniform double in (0, 1), from 32 random bits (never 0 or 1). */
static double unif(ip_rng *r) { return ((double)ip_rng_u32(r) + 0.5) / 4294967296.0; }

/* n draws of GPD(xi, sigma) by inversion: y = sigma (U^-xi - 1) / xi. */
static double *gpd_sample(size_t n, double xi, double sigma, uint64_t seed) {
    ip_rng r;
    ip_rng_init(&r, seed, ip_stream("test-gpd", 0));
    double *y = malloc(n * sizeof *y);
    cr_assert_not_null(y);
    for (size_t i = 0; i < n; i++) {
        double u = unif(&r);
        y[i] = fabs(xi) < 1e-12 ? -sigma * log(u) : sigma * (pow(u, -xi) - 1) / xi;
    }
    return y;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* P(X <= k) for X ~ Binomial(n, p), summed term by term (an independent check of the bound). */
static double binom_cdf(unsigned k, unsigned n, double p) {
    double s = 0;
    for (unsigned i = 0; i <= k; i++) s += exp(lgamma(n + 1.0) - lgamma(i + 1.0) - lgamma(n - i + 1.0) + i * log(p) +
                                              (n - i) * log1p(-p));
    return s;
}

Test(forge_tail, clopper_pearson_known_values) {
    /* R: binom.test(k, n, alternative = "less")$conf.int[2] */
    cr_assert_float_eq(ip_forge_cp_upper(1, 10, 0.95), 0.3941633024, 1e-9);
    cr_assert_float_eq(ip_forge_cp_upper(5, 10, 0.95), 0.7775588990, 1e-9);
    cr_assert_float_eq(ip_forge_cp_upper(9, 10, 0.95), 0.9948838031, 1e-9);
    cr_assert_float_eq(ip_forge_cp_upper(3, 10000, 0.95), 7.751813790e-4, 1e-12);
    /* 0 of N: 1 - 0.05^(1/N), about 3/N (the "rule of three") */
    cr_assert_float_eq(ip_forge_cp_upper(0, 10000, 0.95), 2.995283598e-4, 1e-13);
    cr_assert_float_eq(ip_forge_cp_upper(0, 1000000, 0.95), 2.995727e-6, 1e-12);
    cr_assert_eq(ip_forge_cp_upper(10, 10, 0.95), 1);
    cr_assert_eq(ip_forge_cp_upper(0, 0, 0.95), 1);
    /* by definition: P(X <= k | p_upper) = 0.05 */
    unsigned ks[] = {2, 17, 250};
    for (int i = 0; i < 3; i++) {
        double p = ip_forge_cp_upper(ks[i], 5000, 0.95);
        cr_assert_float_eq(binom_cdf(ks[i], 5000, p), 0.05, 1e-9, "k=%u: p=%g", ks[i], p);
    }
}

Test(forge_tail, gpd_fit_recovers_known_parameters) {
    /* standard errors at n = 20000: xi ~ (1 + xi) / sqrt(n) <= 0.009, sigma relative ~ 0.01 */
    const double xis[] = {0.3, 0.0, -0.3, -0.6}, sigmas[] = {1.0, 0.5, 2.0, 0.1};
    for (int c = 0; c < 4; c++) {
        size_t n = 20000;
        double *y = gpd_sample(n, xis[c], sigmas[c], 7 + (uint64_t)c);
        double xi, sigma, ll;
        cr_assert_eq(ip_forge_gpd_fit(y, n, &xi, &sigma, &ll), 0);
        cr_assert(fabs(xi - xis[c]) < 0.04, "xi %g: fitted %g", xis[c], xi);
        cr_assert(fabs(sigma / sigmas[c] - 1) < 0.05, "sigma %g: fitted %g", sigmas[c], sigma);
        /* the maximum: no nearby point is more likely */
        double sf_hat = ip_forge_gpd_sf(sigmas[c], xi, sigma);
        cr_assert(sf_hat > 0 && sf_hat < 1);
        free(y);
    }
    double one[] = {0.5}, zeros[] = {0, 0, 0}, xi, sigma, ll;
    cr_assert_eq(ip_forge_gpd_fit(one, 1, &xi, &sigma, &ll), -1, "one value: nothing to fit");
    cr_assert_eq(ip_forge_gpd_fit(zeros, 3, &xi, &sigma, &ll), -1, "no positive exceedance");
}

Test(forge_tail, gpd_sf_limits) {
    cr_assert_float_eq(ip_forge_gpd_sf(1, 0, 1), exp(-1), 1e-15);
    cr_assert_float_eq(ip_forge_gpd_sf(1, 0.5, 1), pow(1.5, -2), 1e-15);
    cr_assert_eq(ip_forge_gpd_sf(3, -0.5, 1), 0, "beyond the endpoint sigma / -xi = 2");
    cr_assert_eq(ip_forge_gpd_sf(0, 0.2, 1), 1);
}

/* The one-sided 95% profile-likelihood bound covers the true tail
 * probability in about 95% of samples (here 200 samples of 400). */
Test(forge_tail, profile_bound_covers) {
    const double xi0 = -0.15, sigma0 = 1, d = 4; /* q = sf(4) = 0.0447 */
    double q0 = ip_forge_gpd_sf(d, xi0, sigma0);
    int covered = 0, reps = 200;
    for (int r = 0; r < reps; r++) {
        double *y = gpd_sample(400, xi0, sigma0, 1000 + (uint64_t)r);
        double xi, sigma, ll;
        cr_assert_eq(ip_forge_gpd_fit(y, 400, &xi, &sigma, &ll), 0);
        double qu = ip_forge_gpd_sf_upper(y, 400, d, xi, sigma, ll, 0.95);
        cr_assert_geq(qu, ip_forge_gpd_sf(d, xi, sigma) * (1 - 1e-9), "the bound is above the estimate");
        covered += qu >= q0;
        free(y);
    }
    /* binomial(200, 0.95): 0.95 +- 0.015; 0.90 is 3 standard deviations below */
    cr_assert(covered >= 180, "covered %d of %d", covered, reps);
    cr_assert(covered <= 200);
}

/* Accuracies on a grid of step 1/E from a known continuous law: the tail
 * estimate of P(acc >= t) beyond the largest value seen, over 40 samples. */
static double *grid_sample(size_t n, double E, double xi0, double sigma0, uint64_t seed) {
    /* X = 0.1 + GPD(xi0, sigma0), rounded to the grid: acc >= g iff X >= g - 1/(2E) */
    double *x = gpd_sample(n, xi0, sigma0, seed);
    for (size_t i = 0; i < n; i++) x[i] = round((0.1 + x[i]) * E) / E;
    qsort(x, n, sizeof *x, cmp_d);
    return x;
}

static int cmp_ratio(const void *a, const void *b) { return cmp_d(a, b); }

Test(forge_tail, tail_estimate_extrapolates) {
    const size_t n = 100000; /* 1,000 exceedances in the top 1% */
    const double E = 200, xi0 = -0.2, sigma0 = 0.1;
    /* a fixed threshold in the far tail: P = 1.3e-5, 1.3 fakes of 100,000 expected (a threshold placed
     * after looking at the sample, e.g. just above its maximum, would bias the check) */
    double thr = 0.55, truth = ip_forge_gpd_sf(thr - 0.5 / E - 0.1, xi0, sigma0);
    enum { REPS = 40 };
    int covered = 0, fits = 0;
    double ratio[REPS];
    for (int r = 0; r < REPS; r++) {
        double *x = grid_sample(n, E, xi0, sigma0, 99 + (uint64_t)r);
        size_t acc = 0;
        for (size_t i = 0; i < n; i++) acc += x[i] >= thr - 1e-12;
        ip_forge_tail t;
        ip_forge_tail_estimate(x, n, acc, thr, 1 / E, 0, &t);
        fits += t.gpd;
        cr_assert_geq(t.k, (size_t)(IP_TAIL_FRACTION * n));
        cr_assert_geq(t.p_upper, t.p_est);
        cr_assert_float_eq(t.p_cp_upper, ip_forge_cp_upper(acc, n, 0.95), 1e-15);
        covered += t.p_upper >= truth;
        ratio[r] = t.p_est / truth;
        free(x);
    }
    cr_assert_eq(fits, REPS);
    /* the one-sided 95% bound: 38 of 40 expected */
    cr_assert_geq(covered, 34, "covered %d of %d", covered, REPS);
    qsort(ratio, REPS, sizeof *ratio, cmp_ratio);
    double med = 0.5 * (ratio[REPS / 2 - 1] + ratio[REPS / 2]);
    cr_assert(med > 0.5 && med < 2, "median estimate / truth %g", med);
    /* inside the data: close to the observed fraction */
    double *x = grid_sample(n, E, xi0, sigma0, 99);
    double thr2 = x[n - 200];
    size_t acc2 = 0;
    for (size_t i = 0; i < n; i++) acc2 += x[i] >= thr2 - 1e-12;
    ip_forge_tail t;
    ip_forge_tail_estimate(x, n, acc2, thr2, 1 / E, 0, &t);
    cr_assert_eq(t.gpd, 1);
    double obs = (double)acc2 / n;
    cr_assert(t.p_est > obs / 2 && t.p_est < obs * 2, "estimate %g, observed %g", t.p_est, obs);
    free(x);
}

Test(forge_tail, fallbacks_to_clopper_pearson) {
    const size_t n = 10000;
    double *x = gpd_sample(n, -0.2, 0.1, 5);
    qsort(x, n, sizeof *x, cmp_d);
    ip_forge_tail t;
    /* a screened run: the accuracies of stopped fakes are their first images' */
    ip_forge_tail_estimate(x, n, 0, 2, 0, 1, &t);
    cr_assert_eq(t.gpd, 0);
    cr_assert_eq(t.p_est, 0);
    cr_assert_float_eq(t.p_upper, ip_forge_cp_upper(0, n, 0.95), 1e-15);
    cr_assert(isnan(t.xi) && t.k == 0);
    /* too few fakes for IP_TAIL_MIN exceedances */
    ip_forge_tail_estimate(x, (size_t)(IP_TAIL_MIN / IP_TAIL_FRACTION) - 100, 0, 2, 0, 0, &t);
    cr_assert_eq(t.gpd, 0);
    /* the threshold in the body (below the top 1%): the count itself */
    ip_forge_tail_estimate(x, n, n / 2, x[n / 2], 0, 0, &t);
    cr_assert_eq(t.gpd, 0);
    cr_assert_float_eq(t.p_est, 0.5, 1e-12);
    cr_assert_float_eq(t.p_upper, ip_forge_cp_upper(n / 2, n, 0.95), 1e-15);
    /* too few distinct values among the exceedances */
    for (size_t i = 0; i < n; i++) x[i] = i < n - 300 ? 0.1 : 0.5;
    ip_forge_tail_estimate(x, n, 0, 0.9, 0.005, 0, &t);
    cr_assert_eq(t.gpd, 0);
    free(x);
}

/* ------------------------------------------------------------------------- */
/* the joint criterion in fake1's summary, and through the shard merge        */

static const ip_metric_array *arr(const ip_metrics *m, const char *name) {
    for (int i = 0; i < m->narrays; i++)
        if (!strcmp(m->arrays[i].name, name)) return &m->arrays[i];
    return NULL;
}

Test(forge_tail, joint_fractions) {
    /* 8 fakes on E = 100 images; threshold 0.8, detection threshold 0.9 */
    double acc[] = {0.85, 0.8, 0.79, 0.1, 0.9, 0.2, 0.81, 0.05};
    double det[] = {0.95, 0.5, 0.99, 0.9, 0.89, 0.3, 1.0, 0.91};
    double evd[8];
    for (int i = 0; i < 8; i++) evd[i] = 100;
    evd[7] = 16; /* screened out (its accuracy is below anyway) */
    ip_metrics m;
    ip_metrics_init(&m);
    ip_err e = {{0}};
    cr_assert_eq(ip_fake1_summarise(acc, det, evd, 8, 100, 0.83, 1, 0.8, 0.9, 0, &m, &e), 0, "%s", e.msg);
    /* accuracy: 0.85, 0.8, 0.9, 0.81; detection: 0.95, 0.99, 0.9, 1.0, 0.91; both: 0.85 and 0.81 */
    cr_assert_eq(ip_metrics_get(&m, "accepted"), 4);
    cr_assert_eq(ip_metrics_get(&m, "accepted_joint"), 2);
    cr_assert_float_eq(ip_metrics_get(&m, "accept_acc_frac"), 4 / 8.0, 1e-15);
    cr_assert_float_eq(ip_metrics_get(&m, "accept_detect_frac"), 5 / 8.0, 1e-15);
    cr_assert_float_eq(ip_metrics_get(&m, "accept_joint_frac"), 2 / 8.0, 1e-15);
    cr_assert_eq(ip_metrics_get(&m, "detect_threshold"), 0.9);
    /* 8 fakes cannot support a tail fit: the observed fraction and its exact bound */
    cr_assert_eq(ip_metrics_get(&m, "p_accept_gpd"), 0);
    cr_assert_float_eq(ip_metrics_get(&m, "p_accept_est"), 0.5, 1e-15);
    cr_assert_float_eq(ip_metrics_get(&m, "p_accept_upper95"), ip_forge_cp_upper(4, 8, 0.95), 1e-15);
    cr_assert_float_eq(ip_metrics_get(&m, "p_joint_cp95"), ip_forge_cp_upper(2, 8, 0.95), 1e-15);
    double c = ip_metrics_get(&m, "acc_detect_corr");
    cr_assert(c > -1 && c < 1);
    ip_metrics_free(&m);
}

/* A sharded run reports what the unsharded one does, tail fit included. */
Test(forge_tail, merge_equals_unsharded) {
    const size_t n = 12000;
    const double E = 200;
    double *acc = gpd_sample(n, -0.15, 0.08, 3), *det = gpd_sample(n, 0.0, 0.05, 4), *evd = malloc(n * sizeof *evd);
    for (size_t i = 0; i < n; i++) {
        acc[i] = fmin(1, round((0.1 + acc[i]) * E) / E);
        det[i] = fmin(1, round((0.5 + det[i]) * 128) / 128);
        evd[i] = E;
    }
    ip_err e = {{0}};
    ip_metrics whole, part[3], merged;
    ip_metrics_init(&whole);
    cr_assert_eq(ip_fake1_summarise(acc, det, evd, n, (size_t)E, 0.8, 1, 0.5, 0.7, 1, &whole, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_metrics_get(&whole, "p_accept_gpd"), 1, "12000 fakes: a tail fit");
    size_t cut[] = {0, 1000, 7500, n};
    for (int s = 0; s < 3; s++) {
        ip_metrics_init(&part[s]);
        cr_assert_eq(ip_fake1_summarise(acc + cut[s], det + cut[s], evd + cut[s], cut[s + 1] - cut[s], (size_t)E, 0.8,
                                        1, 0.5, 0.7, 1, &part[s], &e),
                     0, "%s", e.msg);
    }
    ip_metrics_init(&merged);
    cr_assert_eq(ip_fake1_merge(part, 3, &merged, &e), 0, "%s", e.msg);
    const char *same[] = {"accepted",         "accepted_joint",  "accept_acc_frac", "accept_detect_frac",
                          "accept_joint_frac", "acc_detect_corr", "p_accept_est",    "p_accept_upper95",
                          "p_accept_gpd",     "p_accept_cp95",   "p_joint_cp95",    "tail_k",
                          "tail_u",           "tail_xi",         "tail_sigma",      "detect_threshold"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        cr_assert_eq(ip_metrics_get(&merged, same[i]), ip_metrics_get(&whole, same[i]), "%s: %g vs %g", same[i],
                     ip_metrics_get(&merged, same[i]), ip_metrics_get(&whole, same[i]));
    cr_assert(arr(&merged, "fake_detect") && arr(&merged, "fake_detect")->n == n);
    /* shards with another detection threshold are not one experiment */
    ip_metrics_set(&part[2], "detect_threshold", 0.8, &e);
    ip_metrics m2;
    ip_metrics_init(&m2);
    cr_assert_neq(ip_fake1_merge(part, 3, &m2, &e), 0);
    cr_assert(strstr(e.msg, "shard 2"), "%s", e.msg);
    ip_metrics_free(&m2);
    for (int s = 0; s < 3; s++) ip_metrics_free(&part[s]);
    ip_metrics_free(&merged), ip_metrics_free(&whole);
    free(acc), free(det), free(evd);
}

/* ------------------------------------------------------------------------- */
/* the report: the fake1 table's new columns, the 2-D histogram               */

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "tail")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(forge_tail_report, .init = make_dir, .fini = remove_dir);

static fx_task tail_study[] = {
    {"train:pv1", "train", "pv1", "done", "", "arch=small-p;norm=bn;scheme=v1;signature=ipsweep;epochs=2",
     "test_acc=0.88;detect=1", NULL},
    {"fake1:f1<train:pv1>", "fake1", "f1", "done", "0", "model=train:pv1;key_type=random;passports=4",
     "real_acc=0.88;real_detect=1;threshold=0.85;detect_threshold=0.9;fake_mean=0.3;fake_min=0.05;fake_max=0.86;"
     "passports=4;accepted=1;accepted_joint=1;accept_acc_frac=0.25;accept_detect_frac=0.5;accept_joint_frac=0.25;"
     "p_accept_upper95=0.000345",
     "fake_acc=0.05,0.1,0.2,0.86;fake_detect=0.5,0.95,0.3,0.92"},
};

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *b = calloc(1, 1 << 20);
    size_t n = fread(b, 1, (1 << 20) - 1, f);
    b[n] = 0;
    fclose(f);
    return b;
}

Test(forge_tail_report, fake1_table_and_joint_histogram) {
    setenv("PATH", "/nonexistent", 1); /* the .dat and .gp only */
    const char *p = tu_path(tdir, "t.h5");
    cr_assert_eq(fx_write(p, tail_study, 2, 0, NULL), 0);
    rp_file f;
    ip_err e = {{0}};
    cr_assert_eq(rp_open(&f, p, &e), 0, "%s", e.msg);
    rp_table t;
    cr_assert_eq(rp_build_table(&f, "fake1", &t, &e), 0, "%s", e.msg);
    char *md = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&md, &len);
    rp_write_table(m, &t, RP_MD, 1);
    fclose(m);
    rp_table_free(&t);
    cr_assert(strstr(md, "| acc. ok % | det. ok % | joint % | p accept. 95% ub (ppm) |"), "%s", md);
    cr_assert(strstr(md, "| 4 | 1 | 25.000 | 50.00 | 25.000 | 345.0 |"), "%s", md);
    free(md);
    char dir[120];
    snprintf(dir, sizeof dir, "%s/plots", tdir);
    int have;
    FILE *devnull = fopen("/dev/null", "w");
    cr_assert_eq(rp_plots(&f, dir, devnull, &have, &e), 0, "%s", e.msg);
    fclose(devnull);
    rp_close(&f);
    char *d = slurp(tu_path(dir, "fake1-joint-pv1-f1-random.dat"));
    /* fakes (0.05, 0.5) (0.1, 0.95) (0.2, 0.3) (0.86, 0.92): 1-point by 2-point cells */
    cr_assert(strstr(d, "\n5.5 51.0 1\n"), "%.300s", d);
    cr_assert(strstr(d, "\n10.5 95.0 1\n"), "%.300s", d);
    cr_assert(strstr(d, "\n20.5 31.0 1\n"), "%.300s", d);
    cr_assert(strstr(d, "\n86.5 93.0 1\n"), "%.300s", d);
    cr_assert(strstr(d, "\n0.5 1.0 NaN\n"), "empty cells are NaN: %.300s", d);
    cr_assert(strstr(d, "# real passport\n88 100\n"), "%s", strstr(d, "# real") ? strstr(d, "# real") : "");
    char *gp = slurp(tu_path(dir, "fake1-joint-pv1-f1-random.gp"));
    cr_assert(strstr(gp, "accuracy threshold 85.0%"), "%s", gp);
    cr_assert(strstr(gp, "detection threshold 90%"), "%s", gp);
    cr_assert(strstr(gp, "4 fakes, 1 accepted by both"), "%s", gp);
    cr_assert(strstr(gp, "real passport (88.0%, 100%)"), "%s", gp);
    free(d), free(gp);
}
