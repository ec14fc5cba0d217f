/* IPGuard fingerprint generation and matching (fingerprint.h, docs/fingerprint.md).
 *
 * Eval mode and input gradients: the forward runs with training = 0, so batch
 * norm uses its running statistics and every point's logits depend on that
 * point alone (group norm is per sample anyway). ip_model_backward follows the
 * mode of the last forward (m->cur_training): batch norm's backward is then
 * dx = dxhat * rstd with the running rstd, the exact gradient of the eval-mode
 * function, and group norm's backward differentiates through its per-sample
 * statistics as in training. Nothing needs training-mode caches. The backward
 * also accumulates weight gradients we do not need; they are zeroed each step
 * so they never grow. */
#include "fingerprint.h"

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

static size_t sample_floats(const ip_model *m) { return (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w; }

static void clip_point(float *x, const ip_model *m, const float *lo, const float *hi) {
    size_t hw = (size_t)m->cfg.in_h * m->cfg.in_w;
    for (int c = 0; c < m->cfg.in_c; c++) {
        float *p = x + (size_t)c * hw;
        for (size_t q = 0; q < hw; q++) p[q] = p[q] < lo[c] ? lo[c] : p[q] > hi[c] ? hi[c] : p[q];
    }
}

static int argmax(const float *z, int n) {
    int b = 0;
    for (int c = 1; c < n; c++)
        if (z[c] > z[b]) b = c;
    return b;
}

int ip_fp_seeds(ip_model *m, const ip_dataset *train, const float *lo, const float *hi, const ip_fp_cfg *cfg,
                size_t first, size_t count, float *x0, int32_t *src, int32_t *tgt, ip_err *e) {
    size_t d = sample_floats(m), hw = (size_t)m->cfg.in_h * m->cfg.in_w;
    int classes = m->cfg.classes;
    if (count > (size_t)m->batch) return ip_fail(e, "fingerprint seeds: %zu points, model planned for %d", count, m->batch);
    if (cfg->init == IP_FP_INIT_TRAIN) {
        if (!train || train->n == 0) return ip_fail(e, "fingerprint init `train` needs training images");
        if ((size_t)train->c * train->h * train->w != d) return ip_fail(e, "training images do not fit the model");
        /* without replacement: K <= n seeds are distinct images */
        uint32_t *perm = malloc(train->n * sizeof *perm);
        if (!perm) return ip_fail(e, "out of memory");
        ip_rng r;
        ip_rng_init(&r, cfg->seed, ip_stream("fp-seed-order", 0));
        ip_rng_permutation(&r, perm, train->n);
        for (size_t p = 0; p < count; p++)
            memcpy(x0 + p * d, train->x + (size_t)perm[(first + p) % train->n] * d, d * sizeof *x0);
        free(perm);
    } else {
        for (size_t p = 0; p < count; p++) {
            ip_rng r;
            ip_rng_init(&r, cfg->seed, ip_stream("fp-noise", first + p));
            for (int c = 0; c < m->cfg.in_c; c++)
                for (size_t q = 0; q < hw; q++) x0[p * d + (size_t)c * hw + q] = ip_rng_range(&r, lo[c], hi[c]);
        }
    }
    /* training images of other statistics could fall outside; the optimisation stays inside anyway */
    for (size_t p = 0; p < count; p++) clip_point(x0 + p * d, m, lo, hi);
    const float *z = ip_model_forward(m, x0, (int)count, 0);
    for (size_t p = 0; p < count; p++) {
        const float *zp = z + p * (size_t)classes;
        int i = argmax(zp, classes), j;
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
/* Optimisation                                                              */

static int adam_init(ip_optim *o, const ip_fp_cfg *cfg, size_t d, ip_err *e) {
    ip_optim_cfg oc;
    ip_optim_defaults(&oc, IP_OPT_ADAM);
    oc.lr = cfg->lr;
    return ip_optim_init(o, &oc, d, e);
}

static int check_cfg(const ip_fp_cfg *cfg, int classes, ip_err *e) {
    if (classes < 2) return ip_fail(e, "fingerprinting needs at least 2 classes");
    if (!(cfg->lr > 0) || cfg->max_iter < 0 || !(cfg->margin >= 0) || cfg->batch < 0)
        return ip_fail(e, "fingerprint options: need lr > 0, max_iter >= 0, margin >= 0, batch >= 0");
    return 0;
}

/* One batch of points being optimised: everything an iteration reads, so
 * that a checkpoint (fingerprint generation, below) can save it between
 * iterations and a resumed batch goes on with the same packed batch. */
typedef struct fp_batch {
    size_t count, d, na;   /* points, floats per point, points still active */
    int it;                /* the next iteration */
    float *x;              /* (count, d) the points, optimised in place */
    const int32_t *src, *tgt;
    int32_t *iters;
    int8_t *conv;
    float *xa, *dx, *dl;   /* scratch of an iteration */
    size_t *act;           /* (na) the active points, in batch order */
    ip_optim *opt;         /* (count) Adam on each point */
} fp_batch;

static void batch_free(fp_batch *b) {
    if (b->opt)
        for (size_t p = 0; p < b->count; p++) ip_optim_free(&b->opt[p]);
    free(b->opt), free(b->act), free(b->dl), free(b->dx), free(b->xa);
    b->opt = NULL, b->act = NULL, b->dl = b->dx = b->xa = NULL;
}

static int batch_init(fp_batch *b, const ip_model *m, float *x, const int32_t *src, const int32_t *tgt, size_t count,
                      const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e) {
    size_t d = sample_floats(m);
    *b = (fp_batch){.count = count, .d = d, .na = count, .x = x, .src = src, .tgt = tgt, .iters = iters, .conv = conv};
    b->xa = malloc(count * d * sizeof *b->xa), b->dx = malloc(count * d * sizeof *b->dx);
    b->dl = malloc(count * (size_t)m->cfg.classes * sizeof *b->dl);
    b->act = malloc(count * sizeof *b->act);
    b->opt = calloc(count, sizeof *b->opt);
    if (!b->xa || !b->dx || !b->dl || !b->act || !b->opt) {
        batch_free(b);
        return ip_fail(e, "out of memory for %zu fingerprint points", count);
    }
    for (size_t p = 0; p < count; p++)
        if (adam_init(&b->opt[p], cfg, d, e) != 0) {
            batch_free(b);
            return -1;
        }
    for (size_t p = 0; p < count; p++) b->act[p] = p, conv[p] = 0, iters[p] = cfg->max_iter;
    return 0;
}

/* Called at the start of every iteration (a point a checkpoint can resume from). */
typedef int (*fp_point_fn)(void *ctx, const fp_batch *b, ip_err *e);

static int batch_run(ip_model *m, fp_batch *b, const float *lo, const float *hi, const ip_fp_cfg *cfg,
                     fp_point_fn point, void *ctx, ip_err *e) {
    int classes = m->cfg.classes;
    size_t d = b->d;
    for (; b->na > 0; b->it++) {
        if (point && point(ctx, b, e) != 0) return -1;
        int it = b->it;
        size_t na = b->na;
        /* the active points, packed: frozen ones cost nothing */
        for (size_t a = 0; a < na; a++) memcpy(b->xa + a * d, b->x + b->act[a] * d, d * sizeof *b->xa);
        const float *z = ip_model_forward(m, b->xa, (int)na, 0);
        size_t still = 0;
        for (size_t a = 0; a < na; a++) {
            size_t p = b->act[a];
            float *g = b->dl + a * (size_t)classes;
            if (ip_fp_loss(z + a * (size_t)classes, classes, b->src[p], b->tgt[p], cfg->margin, g) == 0.f) {
                b->conv[p] = 1, b->iters[p] = it;
                memset(g, 0, (size_t)classes * sizeof *g); /* frozen: its row carries no gradient */
            } else {
                still++;
            }
        }
        if (still == 0 || it == cfg->max_iter) break;
        memset(b->dx, 0, na * d * sizeof *b->dx);
        ip_model_zero_grad(m);
        ip_model_backward(m, b->dl, b->dx);
        size_t keep = 0;
        for (size_t a = 0; a < na; a++) {
            size_t p = b->act[a];
            if (b->conv[p]) continue;
            ip_optim_step_vec(&b->opt[p], b->x + p * d, b->dx + a * d, d, cfg->lr);
            clip_point(b->x + p * d, m, lo, hi);
            b->act[keep++] = p;
        }
        b->na = keep;
    }
    return 0;
}

int ip_fp_optimise(ip_model *m, float *x, const int32_t *src, const int32_t *tgt, size_t count, const float *lo,
                   const float *hi, const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e) {
    if (check_cfg(cfg, m->cfg.classes, e) != 0) return -1;
    if (count == 0) return 0;
    if (count > (size_t)m->batch) return ip_fail(e, "fingerprint batch of %zu points, model planned for %d", count, m->batch);
    fp_batch b;
    if (batch_init(&b, m, x, src, tgt, count, cfg, iters, conv, e) != 0) return -1;
    int rc = batch_run(m, &b, lo, hi, cfg, NULL, NULL, e);
    batch_free(&b);
    return rc;
}

int ip_fp_optimise_ref(ip_model *m, float *x, int32_t src, int32_t tgt, const float *lo, const float *hi,
                       const ip_fp_cfg *cfg, int32_t *iters, int8_t *conv, ip_err *e) {
    int classes = m->cfg.classes;
    if (check_cfg(cfg, classes, e) != 0) return -1;
    if (m->batch < 1) return ip_fail(e, "the model is not planned");
    size_t d = sample_floats(m);
    float *dx = malloc(d * sizeof *dx), *dl = malloc((size_t)classes * sizeof *dl);
    ip_optim opt = {0};
    if (!dx || !dl || adam_init(&opt, cfg, d, e) != 0) {
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
        ip_model_zero_grad(m);
        ip_model_backward(m, dl, dx);
        ip_optim_step_vec(&opt, x, dx, d, cfg->lr);
        clip_point(x, m, lo, hi);
    }
    ip_optim_free(&opt);
    free(dx), free(dl);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Generation                                                                */

static int run_alloc(ip_fp_run *r, size_t k, ip_err *e) {
    memset(r, 0, sizeof *r);
    r->requested = k;
    size_t n = k ? k : 1;
    r->iterations = malloc(n * sizeof *r->iterations);
    r->converged = malloc(n * sizeof *r->converged);
    r->source = malloc(n * sizeof *r->source);
    r->target = malloc(n * sizeof *r->target);
    if (!r->iterations || !r->converged || !r->source || !r->target) {
        ip_fp_run_free(r);
        return ip_fail(e, "out of memory for %zu fingerprint points", k);
    }
    return 0;
}

/* batch 0: all K points, but no more than keep the planned activations, their
 * gradients and the conv workspace under IP_FP_AUTO_BATCH_BYTES (the points
 * do not depend on the batch, so the cap only bounds memory). */
#define IP_FP_AUTO_BATCH_BYTES 1e9

static int batch_for(ip_model *m, const ip_fp_cfg *cfg, size_t K, size_t *B, ip_err *e) {
    if (cfg->batch > 0) {
        *B = (size_t)cfg->batch < K ? (size_t)cfg->batch : K;
        return 0;
    }
    int keep = m->batch;
    if (ip_model_plan(m, 1, e) != 0) return -1;
    double per = (2.0 * (double)m->arena_floats + (double)m->work_floats) * sizeof(float);
    size_t cap = (size_t)(IP_FP_AUTO_BATCH_BYTES / per);
    *B = cap < 1 ? 1 : cap < K ? cap : K;
    return keep > 0 ? ip_model_plan(m, keep, e) : 0;
}

/* Where a generation is: part "fp.pos" of the task state (io/resume.h),
 * saved at the start of an Adam iteration of a batch, with the points kept
 * so far ("fp.x", "fp.label", "fp.source", "fp.iterations": the kept
 * entries), the per-point records up to the batch's end ("run.*"), and the
 * batch itself: its points ("batch.x"), the active ones in their packed
 * order ("batch.act") and each point's Adam moments and step count
 * ("batch.moments", "batch.steps"). A resumed batch is the same packed
 * batch, so its arithmetic (and every point) is what it is uninterrupted. */
typedef struct fp_pos {
    uint64_t K, B, d;      /* the run that wrote it: must be this one */
    uint64_t first;        /* the batch's first point */
    uint64_t kept;         /* points in the fingerprint so far */
    uint64_t na;           /* active points of the batch */
    int32_t it, pad;       /* the batch's next iteration */
    double seconds;        /* so far, over every run of the task */
} fp_pos;

typedef struct fp_gen {
    ip_saver *sv;
    fp_pos pos;
    double before, t0;     /* seconds of earlier runs; this run's start */
    const ip_fingerprint *fp;
    const ip_fp_run *r;
    size_t n;              /* points of the current batch */
    float *moments;        /* scratch: the batch's Adam moments, packed at a save */
    int64_t *steps;
} fp_gen;

static int gen_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    fp_gen *g = user;
    const ip_fp_run *r = g->r;
    const ip_fingerprint *fp = g->fp;
    size_t d = (size_t)g->pos.d, kept = (size_t)g->pos.kept, end = (size_t)g->pos.first + g->n;
    if (ip_state_add(parts, n, "fp.pos", &g->pos, sizeof g->pos) != 0 ||
        ip_state_add(parts, n, "fp.x", fp->x, kept * d * sizeof *fp->x) != 0 ||
        ip_state_add(parts, n, "fp.label", fp->label, kept * sizeof *fp->label) != 0 ||
        ip_state_add(parts, n, "fp.source", fp->source, kept * sizeof *fp->source) != 0 ||
        ip_state_add(parts, n, "fp.iterations", fp->iterations, kept * sizeof *fp->iterations) != 0 ||
        ip_state_add(parts, n, "run.iterations", r->iterations, end * sizeof *r->iterations) != 0 ||
        ip_state_add(parts, n, "run.converged", r->converged, end * sizeof *r->converged) != 0 ||
        ip_state_add(parts, n, "run.source", r->source, end * sizeof *r->source) != 0 ||
        ip_state_add(parts, n, "run.target", r->target, end * sizeof *r->target) != 0)
        return ip_fail(e, "too many state parts");
    return 0;
}

/* The batch's parts, added by gen_point after gen_fill's. */
typedef struct fp_save {
    fp_gen *g;
    const fp_batch *b;
} fp_save;

static int save_fill(void *user, ip_state_part *parts, int *n, ip_err *e) {
    fp_save *s = user;
    fp_gen *g = s->g;
    const fp_batch *b = s->b;
    if (gen_fill(g, parts, n, e) != 0) return -1;
    for (size_t p = 0; p < b->count; p++) {
        memcpy(g->moments + p * 2 * b->d, b->opt[p].state, 2 * b->d * sizeof *g->moments);
        g->steps[p] = b->opt[p].t;
    }
    if (ip_state_add(parts, n, "batch.x", b->x, b->count * b->d * sizeof *b->x) != 0 ||
        ip_state_add(parts, n, "batch.act", b->act, b->na * sizeof *b->act) != 0 ||
        ip_state_add(parts, n, "batch.moments", g->moments, b->count * 2 * b->d * sizeof *g->moments) != 0 ||
        ip_state_add(parts, n, "batch.steps", g->steps, b->count * sizeof *g->steps) != 0)
        return ip_fail(e, "too many state parts");
    return 0;
}

static int gen_point(void *ctx, const fp_batch *b, ip_err *e) {
    fp_gen *g = ctx;
    g->pos.na = b->na, g->pos.it = b->it;
    g->pos.seconds = g->before + (ip_now_s() - g->t0);
    fp_save s = {g, b};
    char where[96];
    snprintf(where, sizeof where, "points %llu..%llu, Adam step %d", (unsigned long long)g->pos.first + 1,
             (unsigned long long)(g->pos.first + b->count), b->it);
    return ip_saver_point(g->sv, save_fill, &s, where, e);
}

static int bad_state(const ip_saver *sv, const char *what, ip_err *e) {
    return ip_fail_input(e, "task state %s: %s: delete it to start the task over", sv->r.path, what);
}

/* Reads the saved position (before the batch it names is set up). */
static int gen_restore_pos(fp_gen *g, const ip_fp_cfg *cfg, ip_err *e) {
    ip_saver *sv = g->sv;
    fp_pos p;
    if (ip_state_get(&sv->loaded, sv->r.path, "fp.pos", &p, sizeof p, e) != 0) return -1;
    if (p.K != g->pos.K || p.B != g->pos.B || p.d != g->pos.d)
        return bad_state(sv, "it was written for other points, batches or inputs", e);
    if (p.first >= p.K || p.first % p.B != 0 || p.kept > p.first || p.na > p.B || p.it < 0 || p.it > cfg->max_iter)
        return bad_state(sv, "its position is outside the task", e);
    g->pos = p;
    g->before = p.seconds;
    return 0;
}

/* Restores the points so far and the batch b (set up by batch_init for the saved batch). */
static int gen_restore(fp_gen *g, ip_fingerprint *fp, ip_fp_run *r, fp_batch *b, ip_err *e) {
    ip_saver *sv = g->sv;
    const ip_state *st = &sv->loaded;
    const char *path = sv->r.path;
    size_t d = b->d, kept = (size_t)g->pos.kept, end = (size_t)g->pos.first + b->count, na = (size_t)g->pos.na;
    if (ip_state_get(st, path, "fp.x", fp->x, kept * d * sizeof *fp->x, e) != 0 ||
        ip_state_get(st, path, "fp.label", fp->label, kept * sizeof *fp->label, e) != 0 ||
        ip_state_get(st, path, "fp.source", fp->source, kept * sizeof *fp->source, e) != 0 ||
        ip_state_get(st, path, "fp.iterations", fp->iterations, kept * sizeof *fp->iterations, e) != 0 ||
        ip_state_get(st, path, "run.iterations", r->iterations, end * sizeof *r->iterations, e) != 0 ||
        ip_state_get(st, path, "run.converged", r->converged, end * sizeof *r->converged, e) != 0 ||
        ip_state_get(st, path, "run.source", r->source, end * sizeof *r->source, e) != 0 ||
        ip_state_get(st, path, "run.target", r->target, end * sizeof *r->target, e) != 0 ||
        ip_state_get(st, path, "batch.x", b->x, b->count * d * sizeof *b->x, e) != 0 ||
        ip_state_get(st, path, "batch.act", b->act, na * sizeof *b->act, e) != 0 ||
        ip_state_get(st, path, "batch.moments", g->moments, b->count * 2 * d * sizeof *g->moments, e) != 0 ||
        ip_state_get(st, path, "batch.steps", g->steps, b->count * sizeof *g->steps, e) != 0)
        return -1;
    if (na > b->count) return bad_state(sv, "more active points than its batch has", e);
    for (size_t a = 0; a < na; a++)
        if (b->act[a] >= b->count) return bad_state(sv, "an active point is outside its batch", e);
    for (size_t p = 0; p < b->count; p++) {
        memcpy(b->opt[p].state, g->moments + p * 2 * d, 2 * d * sizeof *g->moments);
        b->opt[p].t = (long)g->steps[p];
    }
    fp->n = kept;
    b->na = na, b->it = g->pos.it;
    return 0;
}

int ip_fingerprint_generate(ip_model *m, const ip_dataset *train, const float *lo, const float *hi,
                            const ip_fp_cfg *cfg, ip_fingerprint *fp, ip_fp_run *run, ip_err *e) {
    return ip_fingerprint_generate_resumable(m, train, lo, hi, cfg, fp, run, NULL, e);
}

int ip_fingerprint_generate_resumable(ip_model *m, const ip_dataset *train, const float *lo, const float *hi,
                                      const ip_fp_cfg *cfg, ip_fingerprint *fp, ip_fp_run *run, ip_saver *sv,
                                      ip_err *e) {
    memset(fp, 0, sizeof *fp);
    if (check_cfg(cfg, m->cfg.classes, e) != 0) return -1;
    if (cfg->points < 1) return ip_fail(e, "fingerprint: points must be positive");
    size_t K = cfg->points, d = sample_floats(m), B;
    if (batch_for(m, cfg, K, &B, e) != 0) return -1;
    if (B > (size_t)INT32_MAX) return ip_fail(e, "fingerprint batch too large");
    ip_fp_run r = {0};
    fp_batch b = {0};
    fp_gen g = {.sv = sv, .pos = {.K = K, .B = B, .d = d}, .fp = fp, .r = &r};
    int rc = -1;
    ip_branch keep_branch = m->branch;
    float keep_sign = m->sign_loss_scale;
    fp->x = malloc(K * d * sizeof *fp->x);
    fp->label = malloc(K * sizeof *fp->label);
    fp->source = malloc(K * sizeof *fp->source);
    fp->iterations = malloc(K * sizeof *fp->iterations);
    float *xb = malloc(B * d * sizeof *xb);
    if (sv) {
        g.moments = malloc(B * 2 * d * sizeof *g.moments);
        g.steps = malloc(B * sizeof *g.steps);
    }
    if (!fp->x || !fp->label || !fp->source || !fp->iterations || !xb || (sv && (!g.moments || !g.steps))) {
        ip_fail(e, "out of memory for %zu fingerprint points", K);
        goto done;
    }
    if (run_alloc(&r, K, e) != 0) goto done;
    if (m->batch < (int)B && ip_model_plan(m, (int)B, e) != 0) goto done;
    m->branch = ip_fp_resolve_branch(m, cfg->branch);
    m->sign_loss_scale = 0; /* only the input gradient matters */
    int resumed = sv && sv->resumed;
    if (resumed && gen_restore_pos(&g, cfg, e) != 0) goto done;
    g.t0 = ip_now_s();
    for (size_t first = (size_t)g.pos.first; first < K; first += B) {
        size_t n = K - first < B ? K - first : B;
        g.pos.first = first, g.n = n;
        if (!resumed && ip_fp_seeds(m, train, lo, hi, cfg, first, n, xb, r.source + first, r.target + first, e) != 0)
            goto done;
        if (batch_init(&b, m, xb, r.source + first, r.target + first, n, cfg, r.iterations + first,
                       r.converged + first, e) != 0)
            goto done;
        if (resumed && gen_restore(&g, fp, &r, &b, e) != 0) goto done;
        resumed = 0;
        if (batch_run(m, &b, lo, hi, cfg, sv ? gen_point : NULL, &g, e) != 0) goto done;
        batch_free(&b);
        for (size_t p = 0; p < n; p++) {
            if (!r.converged[first + p]) continue;
            memcpy(fp->x + fp->n * d, xb + p * d, d * sizeof *xb);
            fp->label[fp->n] = r.target[first + p];
            fp->source[fp->n] = r.source[first + p];
            fp->iterations[fp->n] = r.iterations[first + p];
            fp->n++;
        }
        g.pos.kept = fp->n;
    }
    r.seconds = g.before + (ip_now_s() - g.t0);
    fp->c = m->cfg.in_c, fp->h = m->cfg.in_h, fp->w = m->cfg.in_w, fp->classes = m->cfg.classes;
    fp->requested = K;
    fp->unconverged = K - fp->n;
    fp->cfg = *cfg;
    fp->cfg.branch = (int)m->branch;
    for (int c = 0; c < 4; c++) {
        fp->in_mean[c] = c < fp->c ? m->cfg.in_mean[c] : 0.f;
        fp->in_std[c] = c < fp->c ? m->cfg.in_std[c] : 1.f;
        fp->lo[c] = c < fp->c ? lo[c] : 0.f;
        fp->hi[c] = c < fp->c ? hi[c] : 0.f;
    }
    snprintf(fp->owner_arch, sizeof fp->owner_arch, "%s", m->cfg.arch);
    snprintf(fp->owner_scheme, sizeof fp->owner_scheme, "%s", ip_scheme_name(m->cfg.scheme));
    rc = 0;
done:
    batch_free(&b);
    m->branch = keep_branch;
    m->sign_loss_scale = keep_sign;
    free(xb), free(g.moments), free(g.steps);
    if (rc != 0) ip_fingerprint_free(fp);
    if (rc == 0 && run) *run = r;
    else ip_fp_run_free(&r);
    return rc;
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
