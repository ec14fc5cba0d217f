/* The ERB attack's blocks and the forged passport's solve: see erb.h. */
#include "erb.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/rng.h"
#include "attacks.h"

size_t ip_erb_hidden(ip_erb_block b, size_t c) {
    if (b == IP_ERB_CERB) return c / 8 > 0 ? c / 8 : 1;
    return b == IP_ERB_IERB ? IP_ERB_IERB_HIDDEN : 0;
}

size_t ip_erb_nparams(ip_erb_block b, size_t c) {
    size_t h = ip_erb_hidden(b, c);
    if (b == IP_ERB_CERB) return h * c + h + c * h + c;
    return b == IP_ERB_IERB ? c * (3 * h + 1) : 0;
}

size_t ip_erb_scratch(ip_erb_block b, size_t c) {
    return b == IP_ERB_IERB ? c * IP_ERB_IERB_HIDDEN : 2 * ip_erb_hidden(b, c);
}

static inline float lrelu(float x) { return x > 0 ? x : IP_ERB_SLOPE * x; }
static inline float lrelu_d(float x) { return x > 0 ? 1.f : IP_ERB_SLOPE; }

void ip_erb_init(ip_erb_block b, size_t c, float *theta, uint64_t seed, uint64_t stream) {
    ip_rng r;
    ip_rng_init(&r, seed, stream);
    const size_t h = ip_erb_hidden(b, c);
    if (b == IP_ERB_CERB) {
        const float b1 = 1.f / sqrtf((float)c), b2 = 1.f / sqrtf((float)h);
        for (size_t i = 0; i < h * c + h; i++) theta[i] = ip_rng_range(&r, -b1, b1);        /* W1, b1 */
        for (size_t i = h * c + h; i < 2 * h * c + h + c; i++) theta[i] = ip_rng_range(&r, -b2, b2); /* W2, b2 */
    } else if (b == IP_ERB_IERB) {
        const float b2 = 1.f / sqrtf((float)h);
        for (size_t ch = 0; ch < c; ch++) {
            float *t = theta + ch * (3 * h + 1);
            for (size_t i = 0; i < 2 * h; i++) t[i] = ip_rng_range(&r, -1.f, 1.f); /* fan_in 1 */
            for (size_t i = 2 * h; i < 3 * h + 1; i++) t[i] = ip_rng_range(&r, -b2, b2);
        }
    }
}

void ip_erb_forward(ip_erb_block b, size_t c, const float *theta, const float *gamma, float *out, float *pre) {
    const size_t h = ip_erb_hidden(b, c);
    if (b == IP_ERB_CERB) {
        const float *W1 = theta, *b1 = W1 + h * c, *W2 = b1 + h, *b2 = W2 + c * h;
        /* pre (H) = W1 (H, C) gamma + b1 */
        memcpy(pre, b1, h * sizeof *pre);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)h, (int)c, 1.f, W1, (int)c, gamma, 1, 1.f, pre, 1);
        /* out (C) = gamma + b2 + W2 (C, H) a, a = lrelu(pre) kept after pre (H more floats) */
        float *a = pre + h;
        for (size_t j = 0; j < h; j++) a[j] = lrelu(pre[j]);
        for (size_t i = 0; i < c; i++) out[i] = gamma[i] + b2[i];
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)c, (int)h, 1.f, W2, (int)h, a, 1, 1.f, out, 1);
    } else if (b == IP_ERB_IERB) {
        for (size_t ch = 0; ch < c; ch++) {
            const float *t = theta + ch * (3 * h + 1), *w1 = t, *b1 = t + h, *w2 = t + 2 * h, b2 = t[3 * h];
            float *p = pre + ch * h, s = gamma[ch] + b2;
            for (size_t j = 0; j < h; j++) {
                p[j] = w1[j] * gamma[ch] + b1[j];
                s += w2[j] * lrelu(p[j]);
            }
            out[ch] = s;
        }
    } else {
        memcpy(out, gamma, c * sizeof *out);
    }
}

void ip_erb_backward(ip_erb_block b, size_t c, const float *theta, const float *gamma, const float *pre,
                     const float *dout, float *dgamma, float *dtheta, float *hid) {
    const size_t h = ip_erb_hidden(b, c);
    for (size_t i = 0; i < c; i++) dgamma[i] += dout[i]; /* the shortcut */
    if (b == IP_ERB_CERB) {
        const float *W1 = theta, *W2 = W1 + h * c + h;
        float *dW1 = dtheta, *db1 = dW1 + h * c, *dW2 = db1 + h, *db2 = dW2 + c * h;
        /* dW2 (C, H) += dout a^T (a = lrelu(pre), saved after pre); db2 += dout */
        cblas_sger(CblasRowMajor, (int)c, (int)h, 1.f, dout, 1, pre + h, 1, dW2, (int)h);
        for (size_t i = 0; i < c; i++) db2[i] += dout[i];
        /* dpre (H) = (W2^T dout) * lrelu'(pre) */
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)c, (int)h, 1.f, W2, (int)h, dout, 1, 0.f, hid, 1);
        for (size_t j = 0; j < h; j++) hid[j] *= lrelu_d(pre[j]);
        /* dW1 (H, C) += dpre gamma^T; db1 += dpre; dgamma += W1^T dpre */
        cblas_sger(CblasRowMajor, (int)h, (int)c, 1.f, hid, 1, gamma, 1, dW1, (int)c);
        for (size_t j = 0; j < h; j++) db1[j] += hid[j];
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)h, (int)c, 1.f, W1, (int)c, hid, 1, 1.f, dgamma, 1);
    } else if (b == IP_ERB_IERB) {
        for (size_t ch = 0; ch < c; ch++) {
            const float *t = theta + ch * (3 * h + 1), *w1 = t, *w2 = t + 2 * h;
            float *dt = dtheta + ch * (3 * h + 1), *dw1 = dt, *db1 = dt + h, *dw2 = dt + 2 * h;
            const float *p = pre + ch * h, g = dout[ch];
            float dg = 0;
            for (size_t j = 0; j < h; j++) {
                dw2[j] += g * lrelu(p[j]);
                float dp = g * w2[j] * lrelu_d(p[j]);
                dw1[j] += dp * gamma[ch];
                db1[j] += dp;
                dg += dp * w1[j];
            }
            dt[3 * h] += g;
            dgamma[ch] += dg;
        }
    }
}

/* ---------------- naive twins (double) ---------------- */

static double lrelu_dd(double x) { return x > 0 ? x : (double)IP_ERB_SLOPE * x; }
static double lrelu_ddd(double x) { return x > 0 ? 1.0 : (double)IP_ERB_SLOPE; }

void ip_erb_forward_ref(ip_erb_block b, size_t c, const float *theta, const float *gamma, float *out) {
    const size_t h = ip_erb_hidden(b, c);
    if (b == IP_ERB_CERB) {
        const float *W1 = theta, *b1 = W1 + h * c, *W2 = b1 + h, *b2 = W2 + c * h;
        for (size_t i = 0; i < c; i++) {
            double s = (double)gamma[i] + b2[i];
            for (size_t j = 0; j < h; j++) {
                double p = b1[j];
                for (size_t k = 0; k < c; k++) p += (double)W1[j * c + k] * gamma[k];
                s += (double)W2[i * h + j] * lrelu_dd(p);
            }
            out[i] = (float)s;
        }
    } else if (b == IP_ERB_IERB) {
        for (size_t i = 0; i < c; i++) {
            const float *t = theta + i * (3 * h + 1);
            double s = (double)gamma[i] + t[3 * h];
            for (size_t j = 0; j < h; j++) s += (double)t[2 * h + j] * lrelu_dd((double)t[j] * gamma[i] + t[h + j]);
            out[i] = (float)s;
        }
    } else {
        for (size_t i = 0; i < c; i++) out[i] = gamma[i];
    }
}

void ip_erb_backward_ref(ip_erb_block b, size_t c, const float *theta, const float *gamma, const float *dout,
                         float *dgamma, float *dtheta) {
    const size_t h = ip_erb_hidden(b, c);
    for (size_t i = 0; i < c; i++) dgamma[i] += dout[i];
    if (b == IP_ERB_CERB) {
        const float *W1 = theta, *b1 = W1 + h * c, *W2 = b1 + h;
        float *dW1 = dtheta, *db1 = dW1 + h * c, *dW2 = db1 + h, *db2 = dW2 + c * h;
        for (size_t j = 0; j < h; j++) {
            double p = b1[j];
            for (size_t k = 0; k < c; k++) p += (double)W1[j * c + k] * gamma[k];
            double dp = 0;
            for (size_t i = 0; i < c; i++) {
                dW2[i * h + j] += (float)((double)dout[i] * lrelu_dd(p));
                dp += (double)dout[i] * W2[i * h + j];
            }
            dp *= lrelu_ddd(p);
            db1[j] += (float)dp;
            for (size_t k = 0; k < c; k++) {
                dW1[j * c + k] += (float)(dp * gamma[k]);
                dgamma[k] += (float)(dp * W1[j * c + k]);
            }
        }
        for (size_t i = 0; i < c; i++) db2[i] += dout[i];
    } else if (b == IP_ERB_IERB) {
        for (size_t i = 0; i < c; i++) {
            const float *t = theta + i * (3 * h + 1);
            float *dt = dtheta + i * (3 * h + 1);
            for (size_t j = 0; j < h; j++) {
                double p = (double)t[j] * gamma[i] + t[h + j];
                dt[2 * h + j] += (float)((double)dout[i] * lrelu_dd(p));
                double dp = (double)dout[i] * t[2 * h + j] * lrelu_ddd(p);
                dt[j] += (float)(dp * gamma[i]);
                dt[h + j] += (float)dp;
                dgamma[i] += (float)(dp * t[j]);
            }
            dt[3 * h] += dout[i];
        }
    }
}

/* ---------------- the forged passport ---------------- */

/* Cholesky factor of the SPD n x n G in place (L in the lower triangle); -1 when not positive definite. */
static int cholesky(double *G, size_t n) {
    for (size_t j = 0; j < n; j++) {
        double d = G[j * n + j];
        for (size_t k = 0; k < j; k++) d -= G[j * n + k] * G[j * n + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        G[j * n + j] = d;
        for (size_t i = j + 1; i < n; i++) {
            double s = G[i * n + j];
            for (size_t k = 0; k < j; k++) s -= G[i * n + k] * G[j * n + k];
            G[i * n + j] = s / d;
        }
    }
    return 0;
}

/* y <- (L L^T)^-1 y with L from cholesky(). */
static void cholesky_solve(const double *L, size_t n, double *y) {
    for (size_t i = 0; i < n; i++) {
        double s = y[i];
        for (size_t k = 0; k < i; k++) s -= L[i * n + k] * y[k];
        y[i] = s / L[i * n + i];
    }
    for (size_t i = n; i-- > 0;) {
        double s = y[i];
        for (size_t k = i + 1; k < n; k++) s -= L[k * n + i] * y[k];
        y[i] = s / L[i * n + i];
    }
}

int ip_erb_solve_passport(const ip_model *m, int p, const float *gamma, const float *beta, float *key_gamma,
                          float *key_beta, double *residual, ip_err *e) {
    const ip_passport *pp = &m->passports[p];
    const size_t cout = (size_t)pp->cout, k = pp->k, nkey = m->tensors[pp->key_gamma].numel;
    const float *w = m->params + m->tensors[m->ops[pp->conv_op].weight].offset;
    ip_conv_shape cs = m->ops[pp->conv_op].conv;
    cs.n = 1;
    /* Mt (Cout, nkey): row c = A^T W_c, the key's gradient of gamma_c (ip_colmean_backward is A^T) */
    float *row = calloc(nkey, sizeof *row);
    double *Mt = calloc(cout * nkey, sizeof *Mt), *G = calloc(cout * cout, sizeof *G),
           *y = malloc(2 * cout * sizeof *y);
    int rc = -1;
    if (!row || !Mt || !G || !y) {
        ip_fail(e, "out of memory solving the forged passport of layer %s (%zu x %zu)", pp->layer, cout, nkey);
        goto done;
    }
    for (size_t c = 0; c < cout; c++) {
        memset(row, 0, nkey * sizeof *row);
        ip_colmean_backward(row, w + c * k, &cs);
        for (size_t i = 0; i < nkey; i++) Mt[c * nkey + i] = row[i];
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cout, (int)cout, (int)nkey, 1.0, Mt, (int)nkey, Mt,
                (int)nkey, 0.0, G, (int)cout);
    double tr = 0;
    for (size_t c = 0; c < cout; c++) tr += G[c * cout + c];
    const double lambda = 1e-9 * (tr > 0 ? tr : 1) / (double)cout;
    for (size_t c = 0; c < cout; c++) G[c * cout + c] += lambda;
    if (cholesky(G, cout) != 0) {
        ip_fail(e, "layer %s: the passport map's Gram matrix is not positive definite (conv weights all zero?)",
                pp->layer);
        goto done;
    }
    for (size_t c = 0; c < cout; c++) y[c] = gamma[c], y[cout + c] = beta[c];
    cholesky_solve(G, cout, y);
    cholesky_solve(G, cout, y + cout);
    *residual = 0;
    for (int j = 0; j < 2; j++) {
        float *key = j ? key_beta : key_gamma;
        const float *target = j ? beta : gamma;
        const double *yy = y + (size_t)j * cout;
        for (size_t i = 0; i < nkey; i++) {
            double s = 0;
            for (size_t c = 0; c < cout; c++) s += Mt[c * nkey + i] * yy[c];
            key[i] = (float)s;
        }
        double num = 0, den = 0;
        for (size_t c = 0; c < cout; c++) {
            double s = 0;
            for (size_t i = 0; i < nkey; i++) s += Mt[c * nkey + i] * key[i];
            num += (s - target[c]) * (s - target[c]);
            den += (double)target[c] * target[c];
        }
        double r = den > 0 ? sqrt(num / den) : sqrt(num);
        if (r > *residual) *residual = r;
    }
    rc = 0;
done:
    free(row), free(Mt), free(G), free(y);
    return rc;
}
