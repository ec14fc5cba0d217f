/* linear: SGEMM kernels against the definition, finite differences, accumulation. */
#include <criterion/criterion.h>
#include <string.h>

#include "../core/nn/layers.h"
#include "testutil.h"

typedef struct {
    int n, in, out;
    float *x, *w, *b, *y, *y_ref, *dy;
} lin;

static void lin_setup(lin *l, int n, int in, int out) {
    l->n = n, l->in = in, l->out = out;
    l->x = tu_alloc((size_t)n * in);
    l->w = tu_alloc((size_t)out * in);
    l->b = tu_alloc(out);
    l->y = tu_alloc((size_t)n * out);
    l->y_ref = tu_alloc((size_t)n * out);
    l->dy = tu_alloc((size_t)n * out);
    tu_fill(l->x, (size_t)n * in, -1, 1, 101);
    tu_fill(l->w, (size_t)out * in, -0.5f, 0.5f, 102);
    tu_fill(l->b, out, -1, 1, 103);
    tu_fill(l->dy, (size_t)n * out, -1, 1, 104);
}

static void lin_free(lin *l) { free(l->x), free(l->w), free(l->b), free(l->y), free(l->y_ref), free(l->dy); }

static void check_linear_vs_ref(int n, int in, int out) {
    lin l;
    lin_setup(&l, n, in, out);
    size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
    for (size_t i = 0; i < ny; i++) l.y[i] = NAN;
    linear_forward(l.y, l.x, l.w, l.b, n, in, out);
    linear_forward_ref(l.y_ref, l.x, l.w, l.b, n, in, out);
    double e = tu_max_rel_diff(l.y, l.y_ref, ny);
    cr_expect_lt(e, 1e-4, "forward %dx%d->%d: %g", n, in, out, e);

    linear_forward(l.y, l.x, l.w, NULL, n, in, out);
    linear_forward_ref(l.y_ref, l.x, l.w, NULL, n, in, out);
    e = tu_max_rel_diff(l.y, l.y_ref, ny);
    cr_expect_lt(e, 1e-4, "forward without bias: %g", e);

    /* Gradients start non-zero: backward must accumulate. */
    float *dx = tu_alloc(nx), *dx_ref = tu_alloc(nx), *dw = tu_alloc(nw), *dw_ref = tu_alloc(nw);
    float *db = tu_alloc(out), *db_ref = tu_alloc(out);
    tu_fill(dx, nx, -1, 1, 105);
    tu_fill(dw, nw, -1, 1, 106);
    tu_fill(db, out, -1, 1, 107);
    memcpy(dx_ref, dx, nx * sizeof(float));
    memcpy(dw_ref, dw, nw * sizeof(float));
    memcpy(db_ref, db, out * sizeof(float));
    linear_backward(dx, dw, db, l.dy, l.x, l.w, n, in, out);
    linear_backward_ref(dx_ref, dw_ref, db_ref, l.dy, l.x, l.w, n, in, out);
    e = tu_max_rel_diff(dx, dx_ref, nx);
    cr_expect_lt(e, 1e-4, "dx: %g", e);
    e = tu_max_rel_diff(dw, dw_ref, nw);
    cr_expect_lt(e, 1e-4, "dweight: %g", e);
    e = tu_max_rel_diff(db, db_ref, out);
    cr_expect_lt(e, 1e-4, "dbias: %g", e);

    /* dx == NULL skips the input gradient and leaves the others unchanged. */
    memcpy(dw_ref, dw, nw * sizeof(float));
    linear_backward(NULL, dw, NULL, l.dy, l.x, l.w, n, in, out);
    linear_backward_ref(NULL, dw_ref, NULL, l.dy, l.x, l.w, n, in, out);
    e = tu_max_rel_diff(dw, dw_ref, nw);
    cr_expect_lt(e, 1e-4, "dweight (dx=NULL): %g", e);

    free(dx), free(dx_ref), free(dw), free(dw_ref), free(db), free(db_ref);
    lin_free(&l);
}

Test(linear, vs_ref_small) { check_linear_vs_ref(3, 5, 4); }
Test(linear, vs_ref_classifier) { check_linear_vs_ref(64, 4096, 10); }
Test(linear, vs_ref_wide) { check_linear_vs_ref(17, 33, 129); }
Test(linear, vs_ref_single_row) { check_linear_vs_ref(1, 7, 3); }

static double lin_loss(void *p) {
    lin *l = p;
    linear_forward(l->y, l->x, l->w, l->b, l->n, l->in, l->out);
    return tu_dot(l->y, l->dy, (size_t)l->n * l->out);
}

/* loss = sum(y * r) is linear in every single x, W or b entry, so central
 * differences are exact up to float32 rounding of the affected outputs divided
 * by 2*eps (~1e-5 with eps = 1e-2); the 1e-2 tolerance only has to catch
 * indexing/transpose mistakes, which give O(1) errors. */
Test(linear_fd, dx_dw_db) {
    lin l;
    lin_setup(&l, 5, 12, 7);
    size_t nx = (size_t)l.n * l.in, nw = (size_t)l.out * l.in;
    float *dx = tu_alloc(nx), *dw = tu_alloc(nw), *db = tu_alloc(l.out);
    linear_backward(dx, dw, db, l.dy, l.x, l.w, l.n, l.in, l.out);
    double e = tu_grad_check(l.x, dx, nx, lin_loss, &l, 1e-2f, 200, 1e-2);
    cr_expect_lt(e, 1e-2, "dx vs FD: %g", e);
    e = tu_grad_check(l.w, dw, nw, lin_loss, &l, 1e-2f, 200, 1e-2);
    cr_expect_lt(e, 1e-2, "dweight vs FD: %g", e);
    e = tu_grad_check(l.b, db, l.out, lin_loss, &l, 1e-2f, 200, 1e-2);
    cr_expect_lt(e, 1e-2, "dbias vs FD: %g", e);
    free(dx), free(dw), free(db);
    lin_free(&l);
}

Test(linear, backward_twice_doubles) {
    lin l;
    lin_setup(&l, 6, 9, 4);
    size_t nx = (size_t)l.n * l.in, nw = (size_t)l.out * l.in;
    float *dx1 = tu_alloc(nx), *dw1 = tu_alloc(nw), *db1 = tu_alloc(l.out);
    float *dx2 = tu_alloc(nx), *dw2 = tu_alloc(nw), *db2 = tu_alloc(l.out);
    linear_backward(dx1, dw1, db1, l.dy, l.x, l.w, l.n, l.in, l.out);
    for (int k = 0; k < 2; k++) linear_backward(dx2, dw2, db2, l.dy, l.x, l.w, l.n, l.in, l.out);
    for (size_t i = 0; i < nx; i++) dx1[i] *= 2;
    for (size_t i = 0; i < nw; i++) dw1[i] *= 2;
    for (int i = 0; i < l.out; i++) db1[i] *= 2;
    cr_expect_lt(tu_max_rel_diff(dx1, dx2, nx), 1e-6);
    cr_expect_lt(tu_max_rel_diff(dw1, dw2, nw), 1e-6);
    cr_expect_lt(tu_max_rel_diff(db1, db2, l.out), 1e-6);
    free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
    lin_free(&l);
}
