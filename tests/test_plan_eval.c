/* Forward-only plans (core/model/plan.c): ip_model_plan allocates no
 * activation gradients (a forward never does either), the first backward or
 * ip_model_plan_backward does; and neither arena is zeroed, which is right
 * only if every value is written before it is read. That is checked the
 * blunt way: arenas filled with garbage (NaN, then a huge finite value, so
 * neither a comparison nor a max can hide it) give, bit for bit, the logits,
 * parameter gradients and input gradients of zeroed arenas, over training
 * steps, an eval forward with its input-only backward, and a smaller batch. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../core/model/graph.h"
#include "../core/model/model.h"
#include "../core/model/train.h"
#include "../core/nn/layers.h"
#include "model_testutil.h"
#include "testutil.h"

Test(plan_eval, gradients_allocated_at_the_first_backward) {
    ip_model m;
    tu_build_model(&m, "small-p", IP_NORM_BN, IP_SCHEME_V2, 1, 28, 8);
    cr_assert_null(m.darena, "a plan allocated activation gradients");
    cr_assert_gt(m.darena_floats, 0, "the gradients' layout is part of the plan");
    float x[8 * 784], r[8 * 10], dx[8 * 784] = {0};
    tu_fill(x, 8 * 784, -1, 1, 51);
    tu_fill(r, 8 * 10, -1, 1, 52);
    ip_model_forward(&m, x, 8, 0);
    ip_model_forward(&m, x, 8, 1);
    cr_assert_null(m.darena, "a forward allocated activation gradients");
    ip_model_backward_input(&m, r, dx);
    cr_assert_not_null(m.darena, "the backward did not allocate its gradients");
    float *d = m.darena;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_plan_backward(&m, &e), 0, "%s", e.msg);
    cr_assert_eq(m.darena, d, "a second ip_model_plan_backward reallocated");
    cr_assert_eq(ip_model_plan(&m, 4, &e), 0, "%s", e.msg);
    cr_assert_null(m.darena, "a new plan kept the old plan's gradients");
    cr_assert_eq(ip_model_plan_backward(&m, &e), 0, "%s", e.msg);
    cr_assert_not_null(m.darena);
    ip_model_free(&m);
    ip_model unplanned;
    tu_build_model(&unplanned, "small-p", IP_NORM_BN, IP_SCHEME_BASELINE, 1, 28, 1);
    ip_model_free(&unplanned); /* free drops the plan: batch 0 */
    cr_assert_neq(ip_model_plan_backward(&unplanned, &e), 0, "gradients for a model without a plan");
}

/* Every activation but the logits has a reader, so every gradient is zeroed
 * or written by the backward before it is read: the whole of darena may hold
 * garbage (plan.c zeroes the others, should an architecture have any). */
static void fill(float *a, size_t n, float v) {
    for (size_t i = 0; i < n; i++) a[i] = v;
}

/* Training steps on both branches with dx, the eval forward and input-only
 * backward the attacks on inputs use, then a batch smaller than the plan's;
 * every logit, parameter gradient and input gradient goes to out. */
static size_t run(ip_model *m, float *out) {
    int B = m->batch, classes = m->cfg.classes;
    size_t sample = (size_t)m->cfg.in_c * m->cfg.in_h * m->cfg.in_w, o = 0;
    float *x = tu_alloc(B * sample), *r = tu_alloc((size_t)B * classes), *dx = tu_alloc(B * sample);
    tu_fill(x, B * sample, -1, 1, 53);
    tu_fill(r, (size_t)B * classes, -1, 1, 54);
    m->sign_loss_scale = 1.f;
    for (int s = 0; s < 4; s++) {
        int n = s == 3 ? B - 1 : B, training = s < 2;
        m->branch = s == 1 ? IP_BRANCH_PUBLIC : IP_BRANCH_PRIVATE;
        ip_model_zero_grad(m);
        memset(dx, 0, B * sample * sizeof(float));
        const float *lg = ip_model_forward(m, x, n, training);
        memcpy(out + o, lg, (size_t)n * classes * sizeof(float)), o += (size_t)n * classes;
        if (training) {
            ip_model_backward(m, r, dx);
            memcpy(out + o, m->grads, m->nparams * sizeof(float)), o += m->nparams;
            for (size_t i = 0; i < m->nparams; i++) m->params[i] -= 0.01f * m->grads[i];
        } else {
            ip_model_backward_input(m, r, dx);
        }
        memcpy(out + o, dx, (size_t)n * sample * sizeof(float)), o += (size_t)n * sample;
    }
    free(x), free(r), free(dx);
    return o;
}

static void check_garbage(const char *arch, ip_norm_kind norm, int c, int hw, int batch) {
    ip_model ref;
    tu_build_model(&ref, arch, norm, IP_SCHEME_V2, c, hw, batch);
    for (int a = 0; a < ref.nacts; a++)
        if (a != ref.ops[ref.nops - 1].out)
            cr_assert_geq(ip_graph_last_reader(&ref, a), 0, "%s: act %d has no reader", arch, a);
    ip_err e = {{0}};
    cr_assert_eq(ip_model_plan_backward(&ref, &e), 0, "%s", e.msg);
    memset(ref.arena, 0, ref.arena_floats * sizeof(float)); /* the plan before: zeroed arenas */
    memset(ref.darena, 0, ref.darena_floats * sizeof(float));
    size_t sample = (size_t)c * hw * hw;
    size_t per = 4 * ((size_t)batch * 10 + ref.nparams + (size_t)batch * sample);
    float *want = malloc(per * sizeof(float)), *got = malloc(per * sizeof(float));
    cr_assert(want && got);
    size_t nw = run(&ref, want);
    ip_model_free(&ref);
    const float garbage[2] = {NAN, 3e38f};
    for (int g = 0; g < 2; g++) {
        ip_model m;
        tu_build_model(&m, arch, norm, IP_SCHEME_V2, c, hw, batch);
        cr_assert_eq(ip_model_plan_backward(&m, &e), 0, "%s", e.msg);
        fill(m.arena, m.arena_floats, garbage[g]);
        fill(m.darena, m.darena_floats, garbage[g]);
        size_t ng = run(&m, got);
        cr_assert_eq(ng, nw);
        cr_assert_eq(memcmp(want, got, nw * sizeof(float)), 0, "%s %s: arenas holding %g changed a result", arch,
                     ip_norm_name(norm), garbage[g]);
        ip_model_free(&m);
    }
    free(want), free(got);
}

Test(plan_eval, unzeroed_arenas_small_p) {
    check_garbage("small-p", IP_NORM_BN, 1, 28, 5);
    check_garbage("small-p", IP_NORM_GN, 1, 28, 5);
}

Test(plan_eval, unzeroed_arenas_alexnet_p) { check_garbage("alexnet-p", IP_NORM_BN, 3, 32, 3); }

Test(plan_eval, unzeroed_arenas_resnet18_p) {
    check_garbage("resnet18-p", IP_NORM_BN, 3, 32, 3);
    check_garbage("resnet18-p", IP_NORM_GN, 3, 32, 3);
}

/* ip_predict and ip_evaluate run eval-mode passes of at most IP_INFER_BATCH
 * images on a small model whatever their batch (core/model/train.h). An eval-mode pass treats
 * every image alone, but BLAS may sum in another order for another number of
 * images, so the logits of 150 images in one pass and in passes of 64, 64
 * and 22 agree to float rounding (measured: 1.5e-8), not to the bit; and
 * ip_predict's labels for a batch of 256 are those of passes of 64, to the
 * bit, whatever the model was planned for. Batch and group norm, and a v2
 * model's public branch. */
static void check_eval_passes(ip_norm_kind norm, ip_scheme scheme, ip_branch branch) {
    enum { N = 150, D = 784, K = 10 };
    ip_model m;
    tu_build_model(&m, "small-p", norm, scheme, 1, 28, N);
    cr_assert_eq(ip_infer_batch(&m, 256), IP_INFER_BATCH, "small-p is a small model");
    m.branch = branch;
    float *x = malloc(sizeof(float) * N * D), *whole = malloc(sizeof(float) * N * K);
    tu_fill(x, N * D, -1, 1, 61);
    memcpy(whole, ip_model_forward(&m, x, N, 0), sizeof(float) * N * K);
    ip_dataset d = {.n = N, .c = 1, .h = 28, .w = 28, .classes = K, .x = x, .normalised = 1};
    int32_t planned_whole[N], planned_chunk[N], ref[N];
    ip_err e = {{0}};
    cr_assert_eq(ip_predict(&m, &d, 256, planned_whole, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(&m, IP_INFER_BATCH, &e), 0, "%s", e.msg);
    float *chunked = malloc(sizeof(float) * N * K);
    for (int s = 0; s < N; s += IP_INFER_BATCH) {
        int n = N - s < IP_INFER_BATCH ? N - s : IP_INFER_BATCH;
        memcpy(chunked + (size_t)s * K, ip_model_forward(&m, x + (size_t)s * D, n, 0), sizeof(float) * n * K);
    }
    double diff = tu_max_rel_diff(chunked, whole, N * K);
    cr_assert(diff < 1e-5, "logits in passes of %d differ from one pass by %g", IP_INFER_BATCH, diff);
    cr_assert_eq(ip_predict(&m, &d, 256, planned_chunk, &e), 0, "%s", e.msg);
    argmax_rows(ref, chunked, N, K);
    cr_assert(memcmp(planned_whole, ref, sizeof ref) == 0 && memcmp(planned_chunk, ref, sizeof ref) == 0,
              "ip_predict is not passes of %d", IP_INFER_BATCH);
    free(x), free(whole), free(chunked);
    ip_model_free(&m);
}

Test(plan_eval, eval_in_passes_of_infer_batch) {
    ip_model big;
    tu_build_model(&big, "alexnet-p", IP_NORM_BN, IP_SCHEME_V1, 3, 32, 1);
    cr_assert_eq(ip_infer_batch(&big, 256), 256, "a large model keeps the caller's batch");
    ip_model_free(&big);
    check_eval_passes(IP_NORM_BN, IP_SCHEME_V1, IP_BRANCH_PRIVATE);
    check_eval_passes(IP_NORM_GN, IP_SCHEME_BASELINE, IP_BRANCH_PRIVATE);
    check_eval_passes(IP_NORM_BN, IP_SCHEME_V2, IP_BRANCH_PUBLIC);
}
