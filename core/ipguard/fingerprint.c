/* IPGuard fingerprints (fingerprint.h, docs/fingerprint.md): the loss, the
 * seeds, the method the engine runs (fp_engine.c: batches, Adam,
 * checkpoints), and matching a suspect against any fingerprint. */
#include "fp_engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../io/resume.h"
#include "../nn/optim.h"
#include "../util/rng.h"
#include "../model/train.h"
#include "../util/proc.h"

static const char *const init_names[] = {"train", "noise"};
static const char *const target_names[] = {"random", "least-likely"};
static const char *const method_names[] = {"ipguard", "cae"};

const char *ip_fp_method_name(ip_fp_method v) { return (unsigned)v < 2 ? method_names[v] : "?"; }

const char *ip_fp_init_name(ip_fp_init v) { return (unsigned)v < 2 ? init_names[v] : "?"; }
const char *ip_fp_target_name(ip_fp_target v) { return (unsigned)v < 2 ? target_names[v] : "?"; }

int ip_fp_init_parse(const char *s, ip_fp_init *out) {
    for (int i = 0; i < 2; i++)
        if (strcmp(s, init_names[i]) == 0) return *out = (ip_fp_init)i, 0;
    return -1;
}

int ip_fp_target_parse(const char *s, ip_fp_target *out) {
    for (int i = 0; i < 2; i++)
        if (strcmp(s, target_names[i]) == 0) return *out = (ip_fp_target)i, 0;
    return -1;
}

int ip_fp_method_parse(const char *s, ip_fp_method *out) {
    for (int i = 0; i < 2; i++)
        if (strcmp(s, method_names[i]) == 0) return *out = (ip_fp_method)i, 0;
    return -1;
}

const char *ip_fp_branch_name(int branch) {
    return branch == IP_BRANCH_PRIVATE ? "private" : branch == IP_BRANCH_PUBLIC ? "public" : "default";
}

int ip_fp_branch_parse(const char *s, int *out) {
    if (strcmp(s, "default") == 0 || s[0] == 0) return *out = -1, 0;
    if (strcmp(s, "private") == 0) return *out = IP_BRANCH_PRIVATE, 0;
    if (strcmp(s, "public") == 0) return *out = IP_BRANCH_PUBLIC, 0;
    return -1;
}

ip_branch ip_fp_resolve_branch(const ip_model *m, int branch) {
    if (branch >= 0) return (ip_branch)branch;
    return m->cfg.scheme == IP_SCHEME_V2 || m->cfg.scheme == IP_SCHEME_V3 ? IP_BRANCH_PUBLIC : IP_BRANCH_PRIVATE;
}

void ip_fp_defaults(ip_fp_cfg *c) {
    memset(c, 0, sizeof *c);
    c->points = 100;
    c->margin = 1.f;
    c->init = IP_FP_INIT_TRAIN;
    c->target = IP_FP_TARGET_RANDOM;
    c->lr = 0.01f;
    c->max_iter = 1000;
    c->batch = 0;
    c->seed = 1;
    c->branch = -1;
    c->cae = (ip_cae_cfg){.eps = 0.1f, .iterations = 100, .alpha = 1, .beta = 1, .gamma = 1, .dropout = 0.3f,
                          .tau = 0.85f};
}

void ip_fingerprint_free(ip_fingerprint *fp) {
    free(fp->x), free(fp->label), free(fp->source), free(fp->iterations);
    fp->x = NULL, fp->label = fp->source = fp->iterations = NULL;
    fp->n = 0;
}

void ip_fp_run_free(ip_fp_run *r) {
    free(r->iterations), free(r->converged), free(r->source), free(r->target);
    r->iterations = r->source = r->target = NULL;
    r->converged = NULL;
}

/* ------------------------------------------------------------------------- */
/* Loss                                                                      */

float ip_fp_loss(const float *z, int classes, int i, int j, float k, float *dz) {
    if (dz) memset(dz, 0, (size_t)classes * sizeof *dz);
    /* the strongest other label (none with 2 classes) */
    int t = -1;
    for (int c = 0; c < classes; c++)
        if (c != i && c != j && (t < 0 || z[c] > z[t])) t = c;
    float a = z[i] - z[j] + k;
    float b = t >= 0 ? z[t] - z[i] : 0.f;
    float loss = 0.f;
    if (a > 0) {
        loss += a;
        if (dz) dz[i] += 1.f, dz[j] -= 1.f;
    }
    if (b > 0) {
        loss += b;
        if (dz) dz[t] += 1.f, dz[i] -= 1.f;
    }
    return loss;
}

/* ------------------------------------------------------------------------- */
/* Seeds                                                                     */

int ip_fp_seeds(ip_model *m, const ip_dataset *train, const float *lo, const float *hi, const ip_fp_cfg *cfg,
                size_t first, size_t count, float *x0, int32_t *src, int32_t *tgt, ip_err *e) {
    size_t d = fp_sample_floats(m), hw = (size_t)m->cfg.in_h * m->cfg.in_w;
    int classes = m->cfg.classes;
    if (count > (size_t)m->batch) return ip_fail(e, "fingerprint seeds: %zu points, model planned for %d", count, m->batch);
    if (cfg->init == IP_FP_INIT_TRAIN) {
        if (fp_seed_images(train, d, cfg->seed, first, count, x0, NULL, e) != 0) return -1;
    } else {
        for (size_t p = 0; p < count; p++) {
            ip_rng r;
            ip_rng_init(&r, cfg->seed, ip_stream("fp-noise", first + p));
            for (int c = 0; c < m->cfg.in_c; c++)
                for (size_t q = 0; q < hw; q++) x0[p * d + (size_t)c * hw + q] = ip_rng_range(&r, lo[c], hi[c]);
        }
    }
    /* training images of other statistics could fall outside; the optimisation stays inside anyway */
    for (size_t p = 0; p < count; p++) fp_clip_point(x0 + p * d, m, lo, hi);
    const float *z = ip_model_infer(m, x0, (int)count);
    for (size_t p = 0; p < count; p++) {
        const float *zp = z + p * (size_t)classes;
        int i = fp_argmax(zp, classes), j;
        if (cfg->target == IP_FP_TARGET_RANDOM) {
            ip_rng r;
            ip_rng_init(&r, cfg->seed, ip_stream("fp-target", first + p));
            j = (int)ip_rng_below(&r, (uint32_t)(classes - 1));
            j += j >= i;
        } else {
            j = -1;
            for (int c = 0; c < classes; c++)
                if (c != i && (j < 0 || zp[c] < zp[j])) j = c;
        }
        src[p] = i, tgt[p] = j;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Optimisation: IPGuard as a method of the engine (fp_engine.h)             */

static int check_cfg(const ip_fp_cfg *cfg, int classes, ip_err *e) {
    if (classes < 2) return ip_fail(e, "fingerprinting needs at least 2 classes");
    if (!(cfg->lr > 0) || cfg->max_iter < 0 || !(cfg->margin >= 0) || cfg->batch < 0)
        return ip_fail(e, "fingerprint options: need lr > 0, max_iter >= 0, margin >= 0, batch >= 0");
    return 0;
}

typedef struct ipg_ctx {
    ip_model *m;
    const ip_dataset *train;
    const float *lo, *hi;
    const ip_fp_cfg *cfg;
} ipg_ctx;

static int ipg_seeds(void *ctx, size_t first, size_t n, float *x0, int32_t *src, int32_t *tgt, ip_err *e) {
    ipg_ctx *g = ctx;
    return ip_fp_seeds(g->m, g->train, g->lo, g->hi, g->cfg, first, n, x0, src, tgt, e);
}

/* One forward of the active points; a point whose loss is 0 is finished
 * (converged at this iteration); the backward of the others. */
static int ipg_grad(void *ctx, fp_batch *b, const float *xa, size_t na, float *dx, int8_t *done, ip_err *e) {
    (void)e;
    ipg_ctx *g = ctx;
    ip_model *m = g->m;
    int classes = m->cfg.classes;
    size_t nf = na + b->pad; /* rows forwarded: the padding of the uncompacted twin gets no gradient */
    const float *z = ip_model_forward(m, xa, (int)nf, 0);
    memset(b->dl + na * (size_t)classes, 0, b->pad * (size_t)classes * sizeof *b->dl);
    size_t still = 0;
    for (size_t a = 0; a < na; a++) {
        size_t p = b->act[a];
        float *gl = b->dl + a * (size_t)classes;
        if (ip_fp_loss(z + a * (size_t)classes, classes, b->src[p], b->tgt[p], g->cfg->margin, gl) == 0.f) {
            b->conv[p] = 1, b->iters[p] = b->it, done[a] = 1;
            memset(gl, 0, (size_t)classes * sizeof *gl); /* frozen: its row carries no gradient */
        } else {
            still++;
        }
    }
    if (dx && still) ip_model_backward_input(m, b->dl, dx);
    return 0;
}

static void ipg_project(void *ctx, const fp_batch *b, size_t p, float *x) {
    (void)b, (void)p;
    ipg_ctx *g = ctx;
    fp_clip_point(x, g->m, g->lo, g->hi);
}

static fp_method ipg_method(ipg_ctx *g, ip_model **models) {
    models[0] = g->m;
    return (fp_method){.ctx = g, .models = models, .nmodels = 1, .max_iter = g->cfg->max_iter, .seeds = ipg_seeds,
                       .grad = ipg_grad, .project = ipg_project};
}

int ip_fp_optimise(ip_model *m, float *x, const int32_t *src, const int32_t *tgt, size_t count, const float *lo,
                   const float *hi, const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e) {
    if (check_cfg(cfg, m->cfg.classes, e) != 0) return -1;
    if (count == 0) return 0;
    if (count > (size_t)m->batch) return ip_fail(e, "fingerprint batch of %zu points, model planned for %d", count, m->batch);
    ipg_ctx g = {m, NULL, lo, hi, cfg};
    ip_model *models[1];
    fp_method meth = ipg_method(&g, models);
    return fp_optimise_batch(&meth, x, src, tgt, count, cfg->lr, iters, conv, e);
}

int ip_fp_optimise_ref(ip_model *m, float *x, int32_t src, int32_t tgt, const float *lo, const float *hi,
                       const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e) {
    int classes = m->cfg.classes;
    if (check_cfg(cfg, classes, e) != 0) return -1;
    if (m->batch < 1) return ip_fail(e, "the model is not planned");
    size_t d = fp_sample_floats(m);
    float *dx = malloc(d * sizeof *dx), *dl = malloc((size_t)classes * sizeof *dl);
    ip_optim opt = {0};
    ip_optim_cfg oc;
    ip_optim_defaults(&oc, IP_OPT_ADAM);
    oc.lr = cfg->lr;
    if (!dx || !dl || ip_optim_init(&opt, &oc, d, e) != 0) {
        free(dx), free(dl);
        return dx && dl ? -1 : ip_fail(e, "out of memory");
    }
    *conv = 0, *iters = cfg->max_iter;
    for (int it = 0;; it++) {
        const float *z = ip_model_forward(m, x, 1, 0);
        if (ip_fp_loss(z, classes, src, tgt, cfg->margin, dl) == 0.f) {
            *conv = 1, *iters = it;
            break;
        }
        if (it == cfg->max_iter) break;
        memset(dx, 0, d * sizeof *dx);
        ip_model_backward_input(m, dl, dx);
        ip_optim_step_vec(&opt, x, dx, d, cfg->lr);
        fp_clip_point(x, m, lo, hi);
    }
    ip_optim_free(&opt);
    free(dx), free(dl);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Generation                                                                */

int ip_fingerprint_generate(ip_model *m, const ip_dataset *train, const float *lo, const float *hi,
                            const ip_fp_cfg *cfg, ip_fingerprint *fp, ip_fp_run *run, ip_err *e) {
    return ip_fingerprint_generate_resumable(m, train, lo, hi, cfg, fp, run, NULL, e);
}

int ip_fingerprint_generate_resumable(ip_model *m, const ip_dataset *train, const float *lo, const float *hi,
                                      const ip_fp_cfg *cfg, ip_fingerprint *fp, ip_fp_run *run, ip_saver *sv,
                                      ip_err *e) {
    memset(fp, 0, sizeof *fp);
    if (check_cfg(cfg, m->cfg.classes, e) != 0) return -1;
    ipg_ctx g = {m, train, lo, hi, cfg};
    ip_model *models[1];
    fp_method meth = ipg_method(&g, models);
    return fp_generate(&meth, lo, hi, cfg, fp, run, sv, e);
}

/* ------------------------------------------------------------------------- */
/* Matching                                                                  */

int ip_fingerprint_match(ip_model *m, const ip_fingerprint *fp, int branch, double *rate, ip_err *e) {
    const ip_model_cfg *mc = &m->cfg;
    if (fp->n == 0) return ip_fail(e, "the fingerprint has no points (none converged)");
    if (fp->c != mc->in_c || fp->h != mc->in_h || fp->w != mc->in_w)
        return ip_fail(e, "fingerprint points are %dx%dx%d but the suspect (%s) expects %dx%dx%d", fp->c, fp->h,
                       fp->w, mc->arch, mc->in_c, mc->in_h, mc->in_w);
    if (fp->classes != mc->classes)
        return ip_fail(e, "the fingerprint has %d classes but the suspect has %d", fp->classes, mc->classes);
    size_t d = (size_t)fp->c * fp->h * fp->w, hw = (size_t)fp->h * fp->w;
    int same = 1;
    for (int c = 0; c < fp->c; c++) same &= fp->in_mean[c] == mc->in_mean[c] && fp->in_std[c] == mc->in_std[c];
    float *xs = NULL;
    int32_t *pred = malloc(fp->n * sizeof *pred);
    if (!same) xs = malloc(fp->n * d * sizeof *xs);
    if (!pred || (!same && !xs)) {
        free(pred), free(xs);
        return ip_fail(e, "out of memory");
    }
    if (!same) /* the same images, normalised as the suspect expects */
        for (size_t p = 0; p < fp->n; p++)
            for (int c = 0; c < fp->c; c++) {
                const float *s = fp->x + p * d + (size_t)c * hw;
                float *o = xs + p * d + (size_t)c * hw;
                for (size_t q = 0; q < hw; q++)
                    o[q] = (s[q] * fp->in_std[c] + fp->in_mean[c] - mc->in_mean[c]) / mc->in_std[c];
            }
    ip_dataset view = {.n = fp->n, .c = fp->c, .h = fp->h, .w = fp->w, .classes = fp->classes,
                       .x = same ? fp->x : xs, .normalised = 1};
    ip_branch keep = m->branch;
    m->branch = ip_fp_resolve_branch(m, branch);
    int batch = m->batch > 0 ? m->batch : (int)(fp->n < 1024 ? fp->n : 1024);
    int rc = ip_predict(m, &view, batch, pred, e);
    m->branch = keep;
    if (rc == 0) {
        size_t ok = 0;
        for (size_t p = 0; p < fp->n; p++) ok += pred[p] == fp->label[p];
        *rate = (double)ok / (double)fp->n;
    }
    free(pred), free(xs);
    return rc;
}
