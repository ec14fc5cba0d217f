/* Softmax cross-entropy and argmax. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/nn/layers.h"
#include "testutil.h"

/* Textbook double reference: mean over rows of log(sum exp) - logit[label]. */
static double xent_ref(double *grad, const float *logits, const int32_t *labels, int n, int k, double scale) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *row = logits + (size_t)i * k;
        double mx = row[0];
        for (int j = 1; j < k; j++) mx = fmax(mx, row[j]);
        double se = 0;
        for (int j = 0; j < k; j++) se += exp(row[j] - mx);
        total += mx + log(se) - row[labels[i]];
        for (int j = 0; j < k; j++)
            grad[(size_t)i * k + j] = scale * (exp(row[j] - mx) / se - (j == labels[i])) / n;
    }
    return total / n;
}

Test(xent, uniform_logits_give_log_k) {
    int n = 4, k = 10;
    float logits[40], d[40];
    int32_t labels[4] = {0, 3, 9, 3};
    for (int i = 0; i < 40; i++) logits[i] = 2.5f;
    int correct = -1;
    double loss = xent_forward_backward(d, logits, labels, n, k, 1.f, &correct);
    cr_assert(fabs(loss - log(10.0)) < 1e-12, "loss %.15g", loss);
    cr_assert_eq(correct, 1); /* all tie: argmax is 0, only the row labelled 0 counts */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            cr_assert_float_eq(d[i * k + j], (0.1 - (j == labels[i])) / n, 1e-7);
}

Test(xent, matches_reference_and_scale) {
    int n = 9, k = 7;
    float logits[63], d[63];
    double g[63];
    int32_t labels[9];
    tu_fill(logits, 63, -4.f, 4.f, 600);
    for (int i = 0; i < n; i++) labels[i] = (i * 5) % k;
    for (int j = 0; j < k; j++) logits[2 * k + j] += 1000.f; /* huge logits: must stay finite */
    for (int j = 0; j < k; j++) logits[3 * k + j] -= 1000.f;
    for (int t = 0; t < 2; t++) {
        float scale = t ? 0.25f : 1.f;
        for (int i = 0; i < 63; i++) d[i] = 1e30f; /* must be overwritten */
        double loss = xent_forward_backward(d, logits, labels, n, k, scale, NULL);
        double want = xent_ref(g, logits, labels, n, k, scale);
        cr_assert(isfinite(loss) && fabs(loss - want) < 1e-12 * fmax(1, want), "loss %.15g vs %.15g", loss, want);
        for (int i = 0; i < 63; i++) cr_assert(fabs(d[i] - g[i]) < 1e-7, "dlogits[%d] %g vs %g", i, d[i], g[i]);
        for (int i = 0; i < n; i++) { /* each gradient row sums to zero */
            double s = 0;
            for (int j = 0; j < k; j++) s += d[i * k + j];
            cr_assert(fabs(s) < 1e-7);
        }
    }
    /* dlogits and correct are optional */
    double loss = xent_forward_backward(NULL, logits, labels, n, k, 1.f, NULL);
    cr_assert(fabs(loss - xent_ref(g, logits, labels, n, k, 1)) < 1e-12 * fmax(1, loss));
}

Test(xent, extreme_logits_known_values) {
    float logits[6] = {1000.f, 0.f, -1000.f, 1000.f, 0.f, -1000.f};
    int32_t labels[2] = {0, 1};
    float d[6];
    int correct = 0;
    double loss = xent_forward_backward(d, logits, labels, 2, 3, 1.f, &correct);
    cr_assert(fabs(loss - 500.0) < 1e-9, "loss %.15g", loss); /* rows: ~0 and 1000 */
    cr_assert_eq(correct, 1);
    for (int i = 0; i < 6; i++) cr_assert(isfinite(d[i]));
    cr_assert_float_eq(d[4], -0.5f, 1e-7);
    cr_assert_float_eq(d[3], 0.5f, 1e-7);
}

Test(xent, correct_count_first_max) {
    float logits[12] = {1, 3, 3, 0, /* tie: argmax 1 */ 5, 1, 1, 5, /* tie: argmax 0 */ 0, 0, 0, 7};
    int32_t labels[3] = {2, 0, 3}, pred[3];
    int correct = -1;
    xent_forward_backward(NULL, logits, labels, 3, 4, 1.f, &correct);
    cr_assert_eq(correct, 2);
    argmax_rows(pred, logits, 3, 4);
    cr_assert(pred[0] == 1 && pred[1] == 0 && pred[2] == 3, "pred %d %d %d", pred[0], pred[1], pred[2]);
}

typedef struct {
    float *logits;
    int32_t *labels;
    int n, k;
} xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    return xent_forward_backward(NULL, c->logits, c->labels, c->n, c->k, 1.f, NULL);
}

/* The loss is computed in double from float logits, so the numerical
 * derivative's only noise is the float rounding of logit +- eps (~2.4e-7
 * absolute, 1.2e-5 relative to 2 eps = 2e-2). Central-difference truncation
 * is eps^2/6 times a third derivative of the softmax bounded by ~0.1/n: ~1e-6.
 * Gradients are O(1/n) = 0.1, so abs_floor 1e-2 and tolerance 1e-2 (~100x the
 * expected error) with eps = 1e-2. */
Test(xent, gradcheck) {
    int n = 10, k = 6;
    xent_ctx c = {tu_alloc(n * k), malloc(n * sizeof(int32_t)), n, k};
    tu_fill(c.logits, n * k, -3.f, 3.f, 610);
    for (int i = 0; i < n; i++) c.labels[i] = (i * 7 + 1) % k;
    float *d = tu_alloc(n * k);
    xent_forward_backward(d, c.logits, c.labels, n, k, 1.f, NULL);
    double e = tu_grad_check(c.logits, d, n * k, xent_loss, &c, 1e-2f, 100, 1e-2);
    cr_assert(e < 1e-2, "xent grad check %g", e);
    free(c.logits), free(c.labels), free(d);
}

Test(xent, argmax_rows_nan_is_max) {
    float logits[6] = {1, NAN, 3, 2, 2, 1};
    int32_t pred[2];
    argmax_rows(pred, logits, 2, 3);
    cr_assert_eq(pred[0], 1); /* torch.argmax treats NaN as the maximum */
    cr_assert_eq(pred[1], 0);
}
