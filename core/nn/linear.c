/* Fully connected layer on row-major (N, features) matrices, W (out, in) as in PyTorch.
 *   forward:  y (N, out) = x (N, in) W^T + b
 *   backward: dx += dy W,  dW += dy^T x,  db += column sums of dy (all accumulate).
 * bias / dbias / dx / dweight may be NULL (no bias, gradient not needed). */
#include <cblas.h>
#include <string.h>

#include "gemm.h"
#include "layers.h"

void linear_forward(float *y, const float *x, const float *weight, const float *bias, int n, int in, int out) {
    if (n <= 0 || out <= 0) return;
    if (bias) {
        for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, bias, sizeof(float) * (size_t)out);
    } else {
        memset(y, 0, sizeof(float) * (size_t)n * out);
    }
    if (in <= 0) return;
    ip_sgemm(CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, weight, in, 1.0f, y, out);
}

void linear_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                     const float *weight, int n, int in, int out) {
    if (n <= 0 || out <= 0) return;
    if (dbias) {
        for (int i = 0; i < n; i++) {
            const float *r = dy + (size_t)i * out;
            for (int j = 0; j < out; j++) dbias[j] += r[j];
        }
    }
    if (in <= 0) return;
    if (dweight)
        ip_sgemm(CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dweight, in);
    if (dx)
        ip_sgemm(CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, weight, in, 1.0f, dx, in);
}

void linear_forward_ref(float *y, const float *x, const float *weight, const float *bias, int n, int in,
                        int out) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            double acc = bias ? bias[j] : 0.0;
            for (int k = 0; k < in; k++) acc += (double)x[(size_t)i * in + k] * weight[(size_t)j * in + k];
            y[(size_t)i * out + j] = (float)acc;
        }
}

void linear_backward_ref(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                         const float *weight, int n, int in, int out) {
    if (dbias)
        for (int j = 0; j < out; j++) {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + j];
            dbias[j] += (float)acc;
        }
    if (dweight)
        for (int j = 0; j < out; j++)
            for (int k = 0; k < in; k++) {
                double acc = 0;
                for (int i = 0; i < n; i++) acc += (double)dy[(size_t)i * out + j] * x[(size_t)i * in + k];
                dweight[(size_t)j * in + k] += (float)acc;
            }
    if (dx)
        for (int i = 0; i < n; i++)
            for (int k = 0; k < in; k++) {
                double acc = 0;
                for (int j = 0; j < out; j++) acc += (double)dy[(size_t)i * out + j] * weight[(size_t)j * in + k];
                dx[(size_t)i * in + k] += (float)acc;
            }
}
