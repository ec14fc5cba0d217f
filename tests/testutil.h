/* Helpers shared by the Criterion tests: random fills, finite-difference
 * gradient checks, and scratch directories for the tests that write files. */
#ifndef IP_TESTUTIL_H
#define IP_TESTUTIL_H

#include <ftw.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../core/util/rng.h"
#include "../core/tasks/tasks.h"

/* Fills a with uniform values in [lo, hi) from (seed, stream). */
static inline void tu_fill(float *a, size_t n, float lo, float hi, uint64_t stream) {
    ip_rng r;
    ip_rng_init(&r, 1234, stream);
    for (size_t i = 0; i < n; i++) a[i] = ip_rng_range(&r, lo, hi);
}

static inline float *tu_alloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    return p;
}

/* Max |a-b| / max(1, |a|, |b|) over n elements. */
static inline double tu_max_rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double s = fmax(1.0, fmax(fabs((double)a[i]), fabs((double)b[i])));
        if (d / s > worst) worst = d / s;
    }
    return worst;
}

/* A scalar loss of the current state (typically sum(output * r) for a fixed random r,
 * so that dL/doutput = r). Computed in float by the layer, accumulated in double. */
typedef double (*tu_loss_fn)(void *ctx);

/* Central differences on up to max_checks entries of x (spread evenly),
 * compared with the analytic gradient g. Returns the worst error
 * |num - ana| / max(abs_floor, |num|, |ana|). */
static inline double tu_grad_check(float *x, const float *g, size_t n, tu_loss_fn f, void *ctx, float eps,
                                   size_t max_checks, double abs_floor) {
    double worst = 0;
    size_t step = n > max_checks ? n / max_checks : 1;
    for (size_t i = 0; i < n; i += step) {
        float keep = x[i];
        x[i] = keep + eps;
        double lp = f(ctx);
        x[i] = keep - eps;
        double lm = f(ctx);
        x[i] = keep;
        double num = (lp - lm) / (2.0 * eps);
        double ana = g[i];
        double s = fmax(abs_floor, fmax(fabs(num), fabs(ana)));
        double err = fabs(num - ana) / s;
        if (err > worst) worst = err;
    }
    return worst;
}

/* sum_i a[i] * r[i] in double. */
static inline double tu_dot(const float *a, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)r[i];
    return s;
}

/* Scratch directories: tu_mkdtemp makes a fresh "/tmp/ipsweep-<tag>-XXXXXX"
 * in dir (a suite's .init; NULL on failure), tu_rmtree removes it with
 * everything in it (the suite's .fini), tu_path names a file in it (four
 * rotating buffers, so up to four paths can be alive at once). */
static inline char *tu_mkdtemp(char *dir, size_t cap, const char *tag) {
    snprintf(dir, cap, "/tmp/ipsweep-%s-XXXXXX", tag);
    return mkdtemp(dir);
}

static inline int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static inline void tu_rmtree(const char *dir) {
    if (dir[0]) nftw(dir, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline const char *tu_path(const char *dir, const char *name) {
    static char buf[4][160];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 160, "%s/%s", dir, name);
    return b;
}

/* The training task of the tests' tiny owner models: small-p-narrow on the
 * data source src, seed 1 (the synthetic data is made with seed 1 too),
 * batch 32, signature "ok", saved to out (NULL: not saved). Tests adjust
 * what they need (limits, lr, triggers, ...). */
static inline ip_train_task tu_tiny_train(const char *src, ip_scheme scheme, ip_norm_kind norm, int epochs,
                                          const char *out) {
    ip_train_task t;
    ip_train_task_defaults(&t);
    snprintf(t.model.arch, sizeof t.model.arch, "small-p-narrow");
    t.model.scheme = scheme;
    t.model.norm = norm;
    snprintf(t.data, sizeof t.data, "%s", src);
    t.train.epochs = epochs;
    t.train.batch = 32;
    t.seed = 1;
    snprintf(t.signature, sizeof t.signature, "ok");
    if (out) snprintf(t.out, sizeof t.out, "%s", out);
    return t;
}

#endif
