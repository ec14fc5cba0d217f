/* Results do not depend on the thread count (core/gemm.h, core/par.h): the
 * blocked SGEMM on the shapes where OpenBLAS's own threading changed the bits,
 * a training step of small-p and alexnet-p, evaluation, and IPGuard
 * fingerprint generation, each bit for bit under 1, 2 and 3 threads. */
#include <criterion/criterion.h>
#include <string.h>

#include "../core/ipguard/fingerprint.h"
#include "../core/nn/gemm.h"
#include "../core/model/model.h"
#include "../core/util/par.h"
#include "../core/tasks/tasks.h"
#include "../core/model/train.h"
#include "testutil.h"

TestSuite(threads);

/* op(A)(M,K) op(B)(K,N) in double, for the blocked product's correctness. */
static double ref_entry(int ta, int tb, const float *A, int lda, const float *B, int ldb, int i, int j, int K) {
    double s = 0;
    for (int k = 0; k < K; k++) {
        double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        s += a * b;
    }
    return s;
}

typedef struct {
    int M, N, K, ta, tb;
} gemm_case;

/* 64x576x9800 NT is a conv weight gradient over 200 images of 7x7: OpenBLAS
 * 0.3.21 gave different bits in 23,300 of its 36,864 outputs on 1 and 2 threads. */
static const gemm_case cases[] = {
    {64, 576, 9800, 0, 1}, {128, 1152, 9800, 0, 0}, {577, 67, 1000, 1, 0}, {200, 10, 3136, 0, 1},
    {33, 1000, 700, 1, 1},  {3, 5, 7, 0, 0},
};

Test(threads, sgemm_bits_do_not_depend_on_threads_and_are_the_product) {
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const gemm_case g = cases[c];
        const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
        const size_t na = (size_t)g.M * g.K, nb = (size_t)g.K * g.N, nc = (size_t)g.M * g.N;
        float *A = tu_alloc(na), *B = tu_alloc(nb), *C0 = tu_alloc(nc), *C[3];
        tu_fill(A, na, -1, 1, 100 + c);
        tu_fill(B, nb, -1, 1, 200 + c);
        tu_fill(C0, nc, -1, 1, 300 + c);
        for (int t = 0; t < 3; t++) {
            C[t] = tu_alloc(nc);
            memcpy(C[t], C0, nc * sizeof(float));
            ip_par_set_threads(t + 1);
            ip_sgemm(g.ta ? CblasTrans : CblasNoTrans, g.tb ? CblasTrans : CblasNoTrans, g.M, g.N, g.K, 0.5f, A, lda,
                     B, ldb, 2.f, C[t], g.N);
        }
        ip_par_set_threads(1);
        for (int t = 1; t < 3; t++)
            cr_assert(memcmp(C[0], C[t], nc * sizeof(float)) == 0, "%dx%dx%d: %d threads differ from 1", g.M, g.N,
                      g.K, t + 1);
        /* every block is the right slice: a sample of entries against the definition */
        for (size_t s = 0; s < nc; s += nc / 97 + 1) {
            int i = (int)(s / (size_t)g.N), j = (int)(s % (size_t)g.N);
            double want = 0.5 * ref_entry(g.ta, g.tb, A, lda, B, ldb, i, j, g.K) + 2.0 * C0[s];
            cr_assert_float_eq(C[0][s], want, 1e-3 * (1 + fabs(want)), "%dx%dx%d (%d,%d): %g vs %g", g.M, g.N, g.K,
                               i, j, C[0][s], want);
        }
        for (int t = 0; t < 3; t++) free(C[t]);
        free(A), free(B), free(C0);
    }
    cr_assert_eq(ip_sgemm_blocks(64, 576, 9800), 9, "the blocks depend on the shape only");
}

/* Parameters and gradients after two SGD steps (batch 200: every conv and the
 * classifier run on shapes OpenBLAS threaded), then eval-mode logits. */
static void train_steps(const char *arch, int threads, float **params, float **grads, float **logits, size_t *np,
                        size_t *nl) {
    ip_par_set_threads(threads);
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.scheme = IP_SCHEME_V1;
    cfg.norm = IP_NORM_BN;
    int small = strncmp(arch, "small-p", 7) == 0;
    cfg.in_c = small ? 1 : 3;
    cfg.in_h = cfg.in_w = small ? 28 : 32;
    cfg.classes = 10;
    const int batch = small ? 200 : 24;
    ip_model m;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(&m, &cfg, &e) || ip_model_init(&m, 1, NULL, &e) || ip_model_plan(&m, batch, &e), 0,
                 "%s", e.msg);
    size_t sample = (size_t)cfg.in_c * cfg.in_h * cfg.in_w;
    float *x = tu_alloc((size_t)batch * sample);
    int32_t y[200];
    tu_fill(x, (size_t)batch * sample, -1, 1, 7);
    for (int i = 0; i < batch; i++) y[i] = i % 10;
    m.sign_loss_scale = 1.f;
    for (int s = 0; s < 2; s++) {
        ip_model_zero_grad(&m);
        const float *z = ip_model_forward(&m, x, batch, 1);
        xent_forward_backward(m.dlogits, z, y, batch, 10, 1.f, NULL);
        ip_model_backward(&m, m.dlogits, NULL);
        for (size_t i = 0; i < m.nparams; i++) m.params[i] -= 0.01f * m.grads[i];
        ip_model_passports_changed(&m);
    }
    const float *z = ip_model_forward(&m, x, batch, 0);
    *np = m.nparams, *nl = (size_t)batch * 10;
    *params = tu_alloc(*np), *grads = tu_alloc(*np), *logits = tu_alloc(*nl);
    memcpy(*params, m.params, *np * sizeof(float));
    memcpy(*grads, m.grads, *np * sizeof(float));
    memcpy(*logits, z, *nl * sizeof(float));
    ip_model_free(&m);
    free(x);
    ip_par_set_threads(1);
}

static void check_training(const char *arch) {
    float *p[3], *g[3], *l[3];
    size_t np = 0, nl = 0;
    for (int t = 0; t < 3; t++) train_steps(arch, t + 1, &p[t], &g[t], &l[t], &np, &nl);
    for (int t = 1; t < 3; t++) {
        cr_assert(memcmp(g[0], g[t], np * sizeof(float)) == 0, "%s: gradients differ with %d threads", arch, t + 1);
        cr_assert(memcmp(p[0], p[t], np * sizeof(float)) == 0, "%s: parameters differ with %d threads", arch, t + 1);
        cr_assert(memcmp(l[0], l[t], nl * sizeof(float)) == 0, "%s: eval logits differ with %d threads", arch, t + 1);
    }
    for (int t = 0; t < 3; t++) free(p[t]), free(g[t]), free(l[t]);
}

Test(threads, small_p_training_and_eval_bits_do_not_depend_on_threads) { check_training("small-p"); }
Test(threads, alexnet_p_training_and_eval_bits_do_not_depend_on_threads) { check_training("alexnet-p"); }

/* Fingerprint points (batched Adam on 100 inputs of 28x28) and their count. */
Test(threads, fingerprint_bits_do_not_depend_on_threads) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "small-p");
    cfg.scheme = IP_SCHEME_BASELINE;
    cfg.norm = IP_NORM_BN;
    cfg.in_c = 1, cfg.in_h = cfg.in_w = 28, cfg.classes = 10;
    ip_fingerprint fp[2];
    for (int t = 0; t < 2; t++) {
        ip_par_set_threads(t + 1);
        ip_model m;
        ip_err e = {{0}};
        cr_assert_eq(ip_model_build(&m, &cfg, &e) || ip_model_init(&m, 3, NULL, &e), 0, "%s", e.msg);
        float lo[1] = {-2.f}, hi[1] = {2.f};
        ip_fp_cfg c;
        ip_fp_defaults(&c);
        c.init = IP_FP_INIT_NOISE;
        c.points = 100;
        c.max_iter = 60;
        c.margin = 0.2f;
        ip_fp_run run;
        cr_assert_eq(ip_fingerprint_generate(&m, NULL, lo, hi, &c, &fp[t], &run, &e), 0, "%s", e.msg);
        ip_fp_run_free(&run);
        ip_model_free(&m);
    }
    ip_par_set_threads(1);
    cr_assert_eq(fp[0].n, fp[1].n, "converged points: %zu on 1 thread, %zu on 2", fp[0].n, fp[1].n);
    cr_assert_gt(fp[0].n, 0, "no point converged: the comparison would be empty");
    cr_assert(memcmp(fp[0].x, fp[1].x, fp[0].n * 784 * sizeof(float)) == 0, "fingerprint points differ");
    ip_fingerprint_free(&fp[0]);
    ip_fingerprint_free(&fp[1]);
}
