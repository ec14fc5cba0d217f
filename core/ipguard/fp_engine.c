/* The fingerprint engine (fp_engine.h): batches of points under Adam, their
 * checkpoints, and the generation loop every method runs.
 *
 * Eval mode and input gradients: the methods' forwards run with training = 0,
 * so batch norm uses its running statistics and every point's logits depend
 * on that point alone (group norm is per sample anyway). The methods'
 * backward, ip_model_backward_input (the input gradient alone, bit for bit
 * ip_model_backward's), follows the mode of the last forward
 * (m->cur_training): batch norm's backward is then dx = dxhat * rstd with
 * the running rstd, the exact gradient of the eval-mode function, and group
 * norm's backward differentiates through its per-sample statistics as in
 * training. Nothing needs training-mode caches. No weight gradient is computed: the models'
 * parameters and their gradients are left as they were. */
#include "fp_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/resume.h"
#include "../model/train.h"
#include "../util/proc.h"
#include "../util/progress.h"
#include "../util/rng.h"

void fp_clip_point(float *x, const ip_model *m, const float *lo, const float *hi) {
    size_t hw = (size_t)m->cfg.in_h * m->cfg.in_w;
    for (int c = 0; c < m->cfg.in_c; c++) {
        float *p = x + (size_t)c * hw;
        for (size_t q = 0; q < hw; q++) p[q] = p[q] < lo[c] ? lo[c] : p[q] > hi[c] ? hi[c] : p[q];
    }
}

int fp_argmax(const float *z, int n) {
    int b = 0;
    for (int c = 1; c < n; c++)
        if (z[c] > z[b]) b = c;
    return b;
}

int fp_seed_images(const ip_dataset *train, size_t d, uint64_t seed, size_t first, size_t count, float *x0, int32_t *y,
                   ip_err *e) {
    if (!train || train->n == 0) return ip_fail(e, "fingerprint seeds from training images need training images");
    if ((size_t)train->c * train->h * train->w != d) return ip_fail(e, "training images do not fit the model");
    /* without replacement: K <= n seeds are distinct images */
    uint32_t *perm = malloc(train->n * sizeof *perm);
    if (!perm) return ip_fail(e, "out of memory");
    ip_rng r;
    ip_rng_init(&r, seed, ip_stream("fp-seed-order", 0));
    ip_rng_permutation(&r, perm, train->n);
    for (size_t p = 0; p < count; p++) {
        size_t i = perm[(first + p) % train->n];
        memcpy(x0 + p * d, train->x + i * d, d * sizeof *x0);
        if (y) y[p] = train->y[i];
    }
    free(perm);
    return 0;
}

static int uncompacted; /* fp_engine_set_uncompacted: tests only */

void fp_engine_set_uncompacted(int on) { uncompacted = on != 0; }

static int adam_init(ip_optim *o, float lr, size_t d, ip_err *e) {
    ip_optim_cfg oc;
    ip_optim_defaults(&oc, IP_OPT_ADAM);
    oc.lr = lr;
    return ip_optim_init(o, &oc, d, e);
}

static void batch_free(fp_batch *b) {
    if (b->opt)
        for (size_t p = 0; p < b->count; p++) ip_optim_free(&b->opt[p]);
    free(b->opt), free(b->act), free(b->idle), free(b->dl), free(b->dx), free(b->xa), free(b->done);
    b->opt = NULL, b->act = b->idle = NULL, b->dl = b->dx = b->xa = NULL, b->done = NULL;
}

static int batch_init(fp_batch *b, const fp_method *meth, float lr, float *x, const float *x0, int32_t *src,
                      int32_t *tgt, size_t count, int32_t *iters, int8_t *conv, ip_err *e) {
    const ip_model *m = meth->models[0];
    size_t d = fp_sample_floats(m);
    *b = (fp_batch){.count = count, .d = d, .na = count, .x = x, .x0 = x0, .src = src, .tgt = tgt, .iters = iters,
                    .conv = conv};
    b->xa = malloc(count * d * sizeof *b->xa), b->dx = malloc(count * d * sizeof *b->dx);
    b->dl = malloc(count * (size_t)m->cfg.classes * (size_t)meth->nmodels * sizeof *b->dl);
    b->done = malloc(count * sizeof *b->done);
    b->act = malloc(count * sizeof *b->act);
    b->idle = malloc(count * sizeof *b->idle);
    b->opt = calloc(count, sizeof *b->opt);
    if (!b->xa || !b->dx || !b->dl || !b->done || !b->act || !b->idle || !b->opt) {
        batch_free(b);
        return ip_fail(e, "out of memory for %zu fingerprint points", count);
    }
    for (size_t p = 0; p < count; p++)
        if (adam_init(&b->opt[p], lr, d, e) != 0) {
            batch_free(b);
            return -1;
        }
    for (size_t p = 0; p < count; p++) b->act[p] = p, conv[p] = 0, iters[p] = meth->max_iter;
    return 0;
}

/* The uncompacted twin's padding: the frozen points' rows after the na active ones in xa (in batch
 * order); their count returned. */
static size_t pad_rows(fp_batch *b) {
    size_t d = b->d, n = 0;
    memset(b->idle, 0, b->count * sizeof *b->idle);
    for (size_t a = 0; a < b->na; a++) b->idle[b->act[a]] = 1; /* a mark: active */
    for (size_t p = 0; p < b->count; p++)
        if (!b->idle[p]) b->idle[n++] = p;                  /* overwrites only marks already read */
    for (size_t r = 0; r < n; r++) memcpy(b->xa + (b->na + r) * d, b->x + b->idle[r] * d, d * sizeof *b->xa);
    return n;
}

/* Called at the start of every iteration (a point a checkpoint can resume from). */
typedef int (*fp_point_fn)(void *ctx, const fp_batch *b, ip_err *e);

static int batch_run(const fp_method *meth, fp_batch *b, float lr, fp_point_fn point, void *ctx, ip_err *e) {
    size_t d = b->d;
    for (; b->na > 0; b->it++) {
        if (point && point(ctx, b, e) != 0) return -1;
        size_t na = b->na;
        int last = b->it == meth->max_iter;
        /* the active points, packed: frozen ones cost nothing */
        for (size_t a = 0; a < na; a++) memcpy(b->xa + a * d, b->x + b->act[a] * d, d * sizeof *b->xa);
        b->pad = uncompacted ? pad_rows(b) : 0;
        memset(b->done, 0, na * sizeof *b->done);
        if (!last) memset(b->dx, 0, (na + b->pad) * d * sizeof *b->dx);
        if (meth->grad(meth->ctx, b, b->xa, na, last ? NULL : b->dx, b->done, e) != 0) return -1;
        size_t still = 0;
        for (size_t a = 0; a < na; a++) still += !b->done[a];
        if (still == 0 || last) break;
        size_t keep = 0;
        for (size_t a = 0; a < na; a++) {
            if (b->done[a]) continue;
            size_t p = b->act[a];
            ip_optim_step_vec(&b->opt[p], b->x + p * d, b->dx + a * d, d, lr);
            meth->project(meth->ctx, b, p, b->x + p * d);
            b->act[keep++] = p;
        }
        b->na = keep;
    }
    return 0;
}

int fp_optimise_batch(const fp_method *meth, float *x, const int32_t *src, const int32_t *tgt, size_t count, float lr,
                      int32_t *iters, int8_t *conv, ip_err *e) {
    fp_batch b;
    /* src/tgt are only read: nothing selects after a lone batch */
    if (batch_init(&b, meth, lr, x, NULL, (int32_t *)src, (int32_t *)tgt, count, iters, conv, e) != 0) return -1;
    int rc = batch_run(meth, &b, lr, NULL, NULL, e);
    batch_free(&b);
    return rc;
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
 * gradients and the conv workspace of every model under IP_FP_AUTO_BATCH_BYTES.
 * The points depend on the batch only in their last bits (the linear layer's
 * GEMM rounds by row count: tests/test_fp_compact.c), but they do, and the
 * cap follows the memory plan: a spec that must give the same points across
 * versions sets `batch`. */
#define IP_FP_AUTO_BATCH_BYTES 1e9

static int batch_for(const fp_method *meth, const ip_fp_cfg *cfg, size_t K, size_t *B, ip_err *e) {
    if (cfg->batch > 0) {
        *B = (size_t)cfg->batch < K ? (size_t)cfg->batch : K;
        return 0;
    }
    double per = 0;
    for (int i = 0; i < meth->nmodels; i++) {
        ip_model *m = meth->models[i];
        int keep = m->batch;
        if (ip_model_plan(m, 1, e) != 0) return -1;
        per += (2.0 * (double)m->arena_floats + (double)m->work_floats) * sizeof(float);
        if (keep > 0 && ip_model_plan(m, keep, e) != 0) return -1;
    }
    size_t cap = (size_t)(IP_FP_AUTO_BATCH_BYTES / per);
    *B = cap < 1 ? 1 : cap < K ? cap : K;
    return 0;
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
    int max_iter;
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
    ip_progress_note(g->pos.first + (double)b->count * b->it / (g->max_iter > 0 ? g->max_iter : 1), (double)g->pos.K);
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
static int gen_restore_pos(fp_gen *g, ip_err *e) {
    ip_saver *sv = g->sv;
    fp_pos p;
    if (ip_state_get(&sv->loaded, sv->r.path, "fp.pos", &p, sizeof p, e) != 0) return -1;
    if (p.K != g->pos.K || p.B != g->pos.B || p.d != g->pos.d)
        return bad_state(sv, "it was written for other points, batches or inputs", e);
    if (p.first >= p.K || p.first % p.B != 0 || p.kept > p.first || p.na > p.B || p.it < 0 || p.it > g->max_iter)
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

int fp_generate(const fp_method *meth, const float *lo, const float *hi, const ip_fp_cfg *cfg, ip_fingerprint *fp,
                ip_fp_run *run, ip_saver *sv, ip_err *e) {
    memset(fp, 0, sizeof *fp);
    ip_model *m = meth->models[0];
    if (cfg->points < 1) return ip_fail(e, "fingerprint: points must be positive");
    if (!(cfg->lr > 0) || meth->max_iter < 0 || cfg->batch < 0)
        return ip_fail(e, "fingerprint options: need lr > 0, iterations >= 0, batch >= 0");
    if (meth->nmodels > IP_FP_MAX_MODELS) return ip_fail(e, "fingerprint: more than %d models", IP_FP_MAX_MODELS);
    size_t K = cfg->points, d = fp_sample_floats(m), B;
    if (batch_for(meth, cfg, K, &B, e) != 0) return -1;
    if (B > (size_t)INT32_MAX) return ip_fail(e, "fingerprint batch too large");
    ip_fp_run r = {0};
    fp_batch b = {0};
    fp_gen g = {.sv = sv, .max_iter = meth->max_iter, .pos = {.K = K, .B = B, .d = d}, .fp = fp, .r = &r};
    int rc = -1;
    ip_branch keep_branch[IP_FP_MAX_MODELS];
    float keep_sign[IP_FP_MAX_MODELS];
    for (int i = 0; i < meth->nmodels; i++)
        keep_branch[i] = meth->models[i]->branch, keep_sign[i] = meth->models[i]->sign_loss_scale;
    fp->x = malloc(K * d * sizeof *fp->x);
    fp->label = malloc(K * sizeof *fp->label);
    fp->source = malloc(K * sizeof *fp->source);
    fp->iterations = malloc(K * sizeof *fp->iterations);
    float *xb = malloc(B * d * sizeof *xb), *x0 = malloc(B * d * sizeof *x0);
    if (sv) {
        g.moments = malloc(B * 2 * d * sizeof *g.moments);
        g.steps = malloc(B * sizeof *g.steps);
    }
    if (!fp->x || !fp->label || !fp->source || !fp->iterations || !xb || !x0 || (sv && (!g.moments || !g.steps))) {
        ip_fail(e, "out of memory for %zu fingerprint points", K);
        goto done;
    }
    if (run_alloc(&r, K, e) != 0) goto done;
    for (int i = 0; i < meth->nmodels; i++) {
        ip_model *mi = meth->models[i];
        if ((mi->batch < (int)B && ip_model_plan(mi, (int)B, e) != 0) || ip_model_plan_backward(mi, e) != 0)
            goto done;
        mi->branch = ip_fp_resolve_branch(mi, i == 0 ? cfg->branch : -1);
        mi->sign_loss_scale = 0; /* only the input gradient matters */
    }
    int resumed = sv && sv->resumed;
    if (resumed && gen_restore_pos(&g, e) != 0) goto done;
    g.t0 = ip_now_s();
    for (size_t first = (size_t)g.pos.first; first < K; first += B) {
        size_t n = K - first < B ? K - first : B;
        g.pos.first = first, g.n = n;
        /* the seeds every time (a resumed batch's projection reads them); a resumed batch's points are saved */
        if (meth->seeds(meth->ctx, first, n, x0, r.source + first, r.target + first, e) != 0) goto done;
        if (!resumed) memcpy(xb, x0, n * d * sizeof *xb);
        if (batch_init(&b, meth, cfg->lr, xb, x0, r.source + first, r.target + first, n, r.iterations + first,
                       r.converged + first, e) != 0)
            goto done;
        if (resumed && gen_restore(&g, fp, &r, &b, e) != 0) goto done;
        resumed = 0;
        if (batch_run(meth, &b, cfg->lr, sv ? gen_point : NULL, &g, e) != 0) goto done;
        if (meth->select && meth->select(meth->ctx, &b, e) != 0) goto done;
        batch_free(&b);
        for (size_t p = 0; p < n; p++) {
            if (r.converged[first + p] != 1) continue; /* 0, or a method's reason (cae.h) */
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
    for (int i = 0; i < meth->nmodels; i++)
        meth->models[i]->branch = keep_branch[i], meth->models[i]->sign_loss_scale = keep_sign[i];
    free(xb), free(x0), free(g.moments), free(g.steps);
    if (rc != 0) ip_fingerprint_free(fp);
    if (rc == 0 && run) *run = r;
    else ip_fp_run_free(&r);
    return rc;
}
