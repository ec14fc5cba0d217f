/* Conferrable adversarial examples (cae.h, docs/fingerprint.md "CAE"): the
 * loss of Lukas et al. and its gradients, the conferrability score, and the
 * method the fingerprint engine runs (fp_engine.h: batches, Adam,
 * checkpoints). */
#include "cae.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fp_engine.h"
#include "../util/rng.h"

/* ------------------------------------------------------------------------- */
/* Loss                                                                      */

#define CAE_MAX_CLASSES 1000

static void softmax_d(const float *z, int n, double *p) {
    double mx = z[0], s = 0;
    for (int c = 1; c < n; c++)
        if (z[c] > mx) mx = z[c];
    for (int c = 0; c < n; c++) s += p[c] = exp((double)z[c] - mx);
    for (int c = 0; c < n; c++) p[c] /= s;
}

/* dz = p * (g - <g, p>): the softmax's backward */
static void softmax_back(const double *p, const double *g, int n, float *dz) {
    double dot = 0;
    for (int c = 0; c < n; c++) dot += g[c] * p[c];
    for (int c = 0; c < n; c++) dz[c] = (float)(p[c] * (g[c] - dot));
}

/* A group (surrogates or references): the mean softmax of the members that
 * take part (use NULL: all) into mean (classes), their count returned. */
static int group_mean(const float *const *z, const int8_t *use, int n, int classes, double *mean) {
    double p[CAE_MAX_CLASSES];
    int k = 0;
    memset(mean, 0, sizeof(double) * (size_t)classes);
    for (int i = 0; i < n; i++) {
        if (use && !use[i]) continue;
        softmax_d(z[i], classes, p);
        for (int c = 0; c < classes; c++) mean[c] += p[c];
        k++;
    }
    for (int c = 0; c < classes && k; c++) mean[c] /= k;
    return k;
}

/* The group's logit gradients from g = dL/d(mean) (dz NULL, or a member's NULL: not wanted): each member
 * that takes part gets its share g / k through its softmax, the others a zero row. */
static void group_back(const float *const *z, const int8_t *use, int n, int k, int classes, const double *g,
                       float *const *dz) {
    double p[CAE_MAX_CLASSES], gk[CAE_MAX_CLASSES];
    if (!dz) return;
    for (int c = 0; c < classes; c++) gk[c] = g[c] / k;
    for (int i = 0; i < n; i++) {
        if (!dz[i]) continue;
        if (!use[i]) {
            memset(dz[i], 0, (size_t)classes * sizeof *dz[i]);
            continue;
        }
        softmax_d(z[i], classes, p);
        softmax_back(p, gk, classes, dz[i]);
    }
}

/* log of a probability clipped to [eps, 1 - eps], and whether it was inside (the clip has no gradient) */
static double clipped_log(double p, int *inside) {
    double lo = IP_CAE_PROB_EPS, hi = 1 - IP_CAE_PROB_EPS;
    *inside = p > lo && p < hi;
    return log(p < lo ? lo : p > hi ? hi : p);
}

double ip_cae_loss(const float *zM, const float *p0, const float *const *zS, const int8_t *useS, int nS,
                   const float *const *zR, const int8_t *useR, int nR, int classes, const ip_cae_cfg *cfg, float *dzM,
                   float *const *dzS, float *const *dzR) {
    enum { C = CAE_MAX_CLASSES };
    double pm[C], a[C], b[C], gA[C], gB[C], gM[C];
    if (classes > C) return NAN;
    softmax_d(zM, classes, pm);
    int ks = group_mean(zS, useS, nS, classes, a), kr = group_mean(zR, useR, nR, classes, b);
    if (ks == 0 || kr == 0) return NAN;
    int t = 0;
    for (int c = 1; c < classes; c++)
        if (a[c] * (1 - b[c]) > a[t] * (1 - b[t])) t = c;
    int in;
    /* alpha * H(1, max_t E_t) = -alpha log E_t */
    double et = a[t] * (1 - b[t]);
    double loss = -cfg->alpha * clipped_log(et, &in);
    double gEt = in ? -cfg->alpha / et : 0;
    memset(gA, 0, sizeof(double) * (size_t)classes);
    memset(gB, 0, sizeof(double) * (size_t)classes);
    memset(gM, 0, sizeof(double) * (size_t)classes);
    gA[t] += gEt * (1 - b[t]);
    gB[t] += -gEt * a[t];
    /* log M(x) by log-softmax, unclipped: clipping M at 1e-7 would leave a confident seed's
     * misclassification term without a gradient (docs/fingerprint.md "CAE") */
    double mx = zM[0], lse = 0, s0 = 0;
    for (int c = 1; c < classes; c++)
        if (zM[c] > mx) mx = zM[c];
    for (int c = 0; c < classes; c++) lse += exp((double)zM[c] - mx);
    lse = mx + log(lse);
    for (int c = 0; c < classes; c++) {
        /* - beta * H(M(x0), M(x)) = beta * sum p0 log M(x); its logit gradient beta (p0 - M(x) sum p0) below */
        loss += (double)cfg->beta * p0[c] * ((double)zM[c] - lse);
        s0 += p0[c];
        /* gamma * H(M(x), A) = -gamma * sum M(x) log A */
        double la = clipped_log(a[c], &in);
        loss += -cfg->gamma * pm[c] * la;
        gM[c] += -cfg->gamma * la;
        if (in) gA[c] += -cfg->gamma * pm[c] / a[c];
    }
    if (dzM) {
        softmax_back(pm, gM, classes, dzM);
        for (int c = 0; c < classes; c++) dzM[c] += (float)((double)cfg->beta * (p0[c] - pm[c] * s0));
    }
    group_back(zS, useS, nS, ks, classes, gA, dzS);
    group_back(zR, useR, nR, kr, classes, gB, dzR);
    return loss;
}

void ip_cae_score(const float *const *zS, int nS, const float *const *zR, int nR, int classes, int t, double *soft,
                  double *hard) {
    double a[CAE_MAX_CLASSES], b[CAE_MAX_CLASSES];
    int hs = 0, hr = 0;
    for (int s = 0; s < nS; s++) hs += fp_argmax(zS[s], classes) == t;
    for (int r = 0; r < nR; r++) hr += fp_argmax(zR[r], classes) == t;
    int ks = group_mean(zS, NULL, nS, classes, a), kr = group_mean(zR, NULL, nR, classes, b);
    *soft = ks && kr ? a[t] * (1 - b[t]) : NAN;
    *hard = ks && kr ? (double)hs / nS * (1 - (double)hr / nR) : NAN;
}

/* ------------------------------------------------------------------------- */
/* The method                                                                */

typedef struct cae_ctx {
    ip_model **models;     /* [0] the owner, then nS surrogates, then nR references */
    int nS, nR, classes;
    const ip_dataset *train;
    const float *lo, *hi;
    const ip_fp_cfg *cfg;
    float eps[4];          /* the radius per channel in normalised units */
    size_t first;          /* the current batch's first point */
    float *p0;             /* (B, classes) the owner's softmax at each seed */
    int32_t *y0;           /* (B) the seeds' true labels */
} cae_ctx;

static int cae_seeds(void *ctx, size_t first, size_t n, float *x0, int32_t *src, int32_t *tgt, ip_err *e) {
    cae_ctx *g = ctx;
    ip_model *m = g->models[0];
    size_t d = fp_sample_floats(m);
    g->first = first;
    if (fp_seed_images(g->train, d, g->cfg->seed, first, n, x0, g->y0, e) != 0) return -1;
    for (size_t p = 0; p < n; p++) fp_clip_point(x0 + p * d, m, g->lo, g->hi);
    const float *z = ip_model_infer(m, x0, (int)n);
    double pd[CAE_MAX_CLASSES];
    for (size_t p = 0; p < n; p++) {
        const float *zp = z + p * (size_t)g->classes;
        softmax_d(zp, g->classes, pd);
        for (int c = 0; c < g->classes; c++) g->p0[p * (size_t)g->classes + (size_t)c] = (float)pd[c];
        src[p] = fp_argmax(zp, g->classes);
        tgt[p] = -1; /* the label on the final point (cae_select) */
    }
    return 0;
}

/* Which surrogates and references take part in iteration `it` of point p:
 * each sits out with probability dropout, keyed by (seed, point, iteration);
 * when a group would be empty, one member drawn from the same stream stays. */
static void cae_dropout(const cae_ctx *g, size_t p, int it, int8_t *useS, int8_t *useR) {
    ip_rng r;
    uint64_t idx = (uint64_t)p * ((uint64_t)g->cfg->cae.iterations + 1) + (uint64_t)it;
    ip_rng_init(&r, g->cfg->seed, ip_stream("cae-dropout", idx));
    int ks = 0, kr = 0;
    for (int s = 0; s < g->nS; s++) ks += useS[s] = ip_rng_uniform(&r) >= g->cfg->cae.dropout;
    for (int q = 0; q < g->nR; q++) kr += useR[q] = ip_rng_uniform(&r) >= g->cfg->cae.dropout;
    if (!ks) useS[ip_rng_below(&r, (uint32_t)g->nS)] = 1;
    if (!kr) useR[ip_rng_below(&r, (uint32_t)g->nR)] = 1;
}

/* Every model's forward of the active points, the loss's logit gradients per
 * model (b->dl: model-major blocks of (na + pad, classes)), every model's backward
 * into dx. A seed the owner gets wrong is frozen at once: it is never kept. */
static int cae_grad(void *ctx, fp_batch *b, const float *xa, size_t na, float *dx, int8_t *done, ip_err *e) {
    cae_ctx *g = ctx;
    int nm = 1 + g->nS + g->nR, K = g->classes;
    if (!dx) return 0; /* the last iteration: the points are final (cae_select looks at them) */
    const float *z[IP_FP_MAX_MODELS];
    size_t nf = na + b->pad; /* rows forwarded: the padding of the uncompacted twin gets no gradient */
    for (int i = 0; i < nm; i++) z[i] = ip_model_forward(g->models[i], xa, (int)nf, 0);
    size_t blk = nf * (size_t)K;
    for (int i = 0; i < nm; i++)
        memset(b->dl + (size_t)i * blk + na * (size_t)K, 0, b->pad * (size_t)K * sizeof *b->dl);
    int8_t useS[IP_FP_MAX_MODELS], useR[IP_FP_MAX_MODELS];
    const float *zS[IP_FP_MAX_MODELS], *zR[IP_FP_MAX_MODELS];
    float *dS[IP_FP_MAX_MODELS], *dR[IP_FP_MAX_MODELS];
    for (size_t a = 0; a < na; a++) {
        size_t p = b->act[a], o = a * (size_t)K;
        if (b->src[p] != g->y0[p]) {
            done[a] = 1, b->iters[p] = 0;
            for (int i = 0; i < nm; i++) memset(b->dl + (size_t)i * blk + o, 0, (size_t)K * sizeof *b->dl);
            continue;
        }
        cae_dropout(g, g->first + p, b->it, useS, useR);
        for (int s = 0; s < g->nS; s++) zS[s] = z[1 + s] + o, dS[s] = b->dl + (size_t)(1 + s) * blk + o;
        for (int r = 0; r < g->nR; r++)
            zR[r] = z[1 + g->nS + r] + o, dR[r] = b->dl + (size_t)(1 + g->nS + r) * blk + o;
        double loss = ip_cae_loss(z[0] + o, g->p0 + p * (size_t)K, zS, useS, g->nS, zR, useR, g->nR, K, &g->cfg->cae,
                                  b->dl + o, dS, dR);
        if (!isfinite(loss)) return ip_fail(e, "CAE: non-finite loss at point %zu, step %d", g->first + p, b->it);
    }
    for (int i = 0; i < nm; i++) ip_model_backward_input(g->models[i], b->dl + (size_t)i * blk, dx);
    return 0;
}

/* Into the eps ball around the seed, then into the valid range. */
static void cae_project(void *ctx, const fp_batch *b, size_t p, float *x) {
    cae_ctx *g = ctx;
    const ip_model *m = g->models[0];
    size_t hw = (size_t)m->cfg.in_h * m->cfg.in_w;
    const float *x0 = b->x0 + p * b->d;
    for (int c = 0; c < m->cfg.in_c; c++)
        for (size_t q = (size_t)c * hw; q < (size_t)(c + 1) * hw; q++) {
            float lo = x0[q] - g->eps[c], hi = x0[q] + g->eps[c];
            x[q] = x[q] < lo ? lo : x[q] > hi ? hi : x[q];
        }
    fp_clip_point(x, m, g->lo, g->hi);
}

/* Every model on the final points: the owner's label t, kept when t is not
 * the seed's true label and t's conferrability (the paper's Eq. 2: the
 * fractions of surrogates and references that predict t) reaches tau. */
static int cae_select(void *ctx, fp_batch *b, ip_err *e) {
    (void)e;
    cae_ctx *g = ctx;
    int nm = 1 + g->nS + g->nR, K = g->classes;
    const float *z[IP_FP_MAX_MODELS], *zS[IP_FP_MAX_MODELS], *zR[IP_FP_MAX_MODELS];
    for (int i = 0; i < nm; i++) z[i] = ip_model_infer(g->models[i], b->x, (int)b->count);
    for (size_t p = 0; p < b->count; p++) {
        size_t o = p * (size_t)K;
        int t = fp_argmax(z[0] + o, K);
        b->tgt[p] = t;
        if (b->src[p] != g->y0[p]) {
            b->conv[p] = IP_CAE_SEED_WRONG;
            continue;
        }
        if (t == g->y0[p]) {
            b->conv[p] = IP_CAE_NOT_ADVERSARIAL;
            continue;
        }
        for (int s = 0; s < g->nS; s++) zS[s] = z[1 + s] + o;
        for (int r = 0; r < g->nR; r++) zR[r] = z[1 + g->nS + r] + o;
        double soft, hard;
        ip_cae_score(zS, g->nS, zR, g->nR, K, t, &soft, &hard);
        b->conv[p] = hard >= g->cfg->cae.tau ? 1 : IP_CAE_LOW_SCORE;
    }
    return 0;
}

static int same_inputs(const ip_model *a, const ip_model *b, ip_err *e) {
    if (a->cfg.in_c != b->cfg.in_c || a->cfg.in_h != b->cfg.in_h || a->cfg.in_w != b->cfg.in_w ||
        a->cfg.classes != b->cfg.classes)
        return ip_fail(e, "CAE: a surrogate or reference (%s) does not take the owner's inputs or classes",
                       b->cfg.arch);
    for (int c = 0; c < a->cfg.in_c; c++)
        if (a->cfg.in_mean[c] != b->cfg.in_mean[c] || a->cfg.in_std[c] != b->cfg.in_std[c])
            return ip_fail(e, "CAE: a surrogate or reference (%s) normalises its inputs unlike the owner", b->cfg.arch);
    return 0;
}

int ip_cae_generate_resumable(ip_model *m, ip_model *const *sur, int nsur, ip_model *const *ref, int nref,
                              const ip_dataset *train, const float *lo, const float *hi, const ip_fp_cfg *cfg,
                              ip_fingerprint *fp, ip_fp_run *run, ip_saver *sv, ip_err *e) {
    memset(fp, 0, sizeof *fp);
    const ip_cae_cfg *c = &cfg->cae;
    if (nsur < 1 || nref < 1) return ip_fail(e, "CAE needs at least one surrogate and one reference model");
    if (1 + nsur + nref > IP_FP_MAX_MODELS) return ip_fail(e, "CAE: at most %d models", IP_FP_MAX_MODELS - 1);
    if (m->cfg.classes < 2 || m->cfg.classes > CAE_MAX_CLASSES)
        return ip_fail(e, "CAE needs 2 to %d classes", CAE_MAX_CLASSES);
    if (!(c->eps >= 0 && c->eps <= 1) || c->iterations < 0 || !(c->dropout >= 0 && c->dropout < 1) ||
        !(c->tau >= 0 && c->tau <= 1) || !(c->alpha >= 0) || !(c->beta >= 0) || !(c->gamma >= 0))
        return ip_fail(e, "CAE options: need eps in [0, 1], iterations >= 0, dropout in [0, 1), tau in [0, 1], "
                          "alpha, beta, gamma >= 0");
    ip_model *models[IP_FP_MAX_MODELS];
    models[0] = m;
    for (int i = 0; i < nsur; i++) models[1 + i] = sur[i];
    for (int i = 0; i < nref; i++) models[1 + nsur + i] = ref[i];
    for (int i = 1; i < 1 + nsur + nref; i++)
        if (same_inputs(m, models[i], e) != 0) return -1;
    cae_ctx g = {models, nsur, nref, m->cfg.classes, train, lo, hi, cfg, {0}, 0, NULL, NULL};
    for (int ch = 0; ch < m->cfg.in_c; ch++) g.eps[ch] = c->eps / m->cfg.in_std[ch];
    /* the batch is at most all points: per-batch buffers sized for K (small: a label and a softmax a point) */
    size_t K = cfg->points;
    g.p0 = malloc((K ? K : 1) * (size_t)g.classes * sizeof *g.p0);
    g.y0 = malloc((K ? K : 1) * sizeof *g.y0);
    int rc = -1;
    if (!g.p0 || !g.y0) ip_fail(e, "out of memory");
    else {
        fp_method meth = {.ctx = &g, .models = models, .nmodels = 1 + nsur + nref, .max_iter = c->iterations,
                          .seeds = cae_seeds, .grad = cae_grad, .project = cae_project, .select = cae_select};
        rc = fp_generate(&meth, lo, hi, cfg, fp, run, sv, e);
    }
    free(g.p0), free(g.y0);
    return rc;
}

int ip_cae_fingerprint_scores(ip_model *const *sur, int nsur, ip_model *const *ref, int nref, const ip_fingerprint *fp,
                              double *soft, double *hard, ip_err *e) {
    *soft = *hard = NAN;
    if (fp->n == 0) return 0;
    int nm = nsur + nref, K = fp->classes;
    if (nm > IP_FP_MAX_MODELS || nsur < 1 || nref < 1 || K > CAE_MAX_CLASSES)
        return ip_fail(e, "CAE scores: bad model counts or classes");
    ip_model *ms[IP_FP_MAX_MODELS] = {0};
    ip_branch keep[IP_FP_MAX_MODELS];
    for (int i = 0; i < nm; i++) {
        ms[i] = i < nsur ? sur[i] : ref[i - nsur];
        if (ms[i]->batch < 1 && ip_model_plan(ms[i], fp->n < 256 ? (int)fp->n : 256, e) != 0) return -1;
        keep[i] = ms[i]->branch;
        ms[i]->branch = ip_fp_resolve_branch(ms[i], -1);
    }
    int B = ms[0]->batch;
    for (int i = 1; i < nm; i++) B = ms[i]->batch < B ? ms[i]->batch : B;
    size_t d = (size_t)fp->c * fp->h * fp->w;
    double ssum = 0, hsum = 0;
    const float *z[IP_FP_MAX_MODELS], *zS[IP_FP_MAX_MODELS], *zR[IP_FP_MAX_MODELS];
    for (size_t first = 0; first < fp->n; first += (size_t)B) {
        int n = (int)(fp->n - first < (size_t)B ? fp->n - first : (size_t)B);
        /* each model's logits live in its own buffers until its next forward */
        for (int i = 0; i < nm; i++) z[i] = ip_model_infer(ms[i], fp->x + first * d, n);
        for (int p = 0; p < n; p++) {
            size_t o = (size_t)p * (size_t)K;
            for (int s = 0; s < nsur; s++) zS[s] = z[s] + o;
            for (int r = 0; r < nref; r++) zR[r] = z[nsur + r] + o;
            double so, ha;
            ip_cae_score(zS, nsur, zR, nref, K, fp->label[first + (size_t)p], &so, &ha);
            ssum += so, hsum += ha;
        }
    }
    for (int i = 0; i < nm; i++) ms[i]->branch = keep[i];
    *soft = ssum / (double)fp->n, *hard = hsum / (double)fp->n;
    return 0;
}
