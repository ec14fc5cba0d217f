/* Passport signatures: text <-> sign bits, sign loss, detection rate
 * (REFERENCE.md section 1). */
#include "signature.h"

#include <string.h>

#include "../util/rng.h"

int ip_signature_bits(int8_t *bits, int c, const char *text, uint64_t seed, uint64_t stream, ip_err *e) {
    if (c < 1) return ip_fail(e, "signature: the layer has %d channels", c);
    size_t len = text ? strlen(text) : 0;
    if (len > (size_t)c / 8)
        return ip_fail(e, "signature \"%.64s%s\" needs 8*%zu = %zu bits but the layer has %d channels", text,
                       len > 64 ? "..." : "", len, 8 * len, c);
    /* Random bits for every channel first, so channel i's random bit does not
     * depend on the text length; the text then overwrites channels 0..8L-1. */
    ip_rng r;
    ip_rng_init(&r, seed, stream);
    for (int i = 0; i < c; i++) bits[i] = (ip_rng_u32(&r) >> 31) ? 1 : -1;
    for (size_t k = 0; k < len; k++) {
        unsigned char ch = (unsigned char)text[k];
        for (int b = 0; b < 8; b++) bits[8 * k + (size_t)b] = ((ch >> (7 - b)) & 1) ? 1 : -1;
    }
    return 0;
}

void ip_signature_decode(char *out, const float *gamma, int nchars) {
    int k = 0;
    for (; k < nchars; k++) {
        unsigned v = 0;
        for (int b = 0; b < 8; b++) v = (v << 1) | (gamma[8 * k + b] > 0.f ? 1u : 0u);
        out[k] = (v >= 0x20 && v <= 0x7e) ? (char)v : '?';
    }
    out[k < 0 ? 0 : k] = '\0';
}

double ip_sign_loss(float *dgamma, const float *gamma, const int8_t *bits, int c, float alpha, float gamma0,
                    float l2, float scale) {
    double hinge = 0, sq = 0;
    for (int i = 0; i < c; i++) {
        double g = gamma[i], b = bits[i];
        double m = (double)gamma0 - b * g;
        double dg = 2.0 * (double)l2 * g;
        if (m > 0) {
            hinge += m;
            dg -= (double)alpha * b;
        }
        sq += g * g;
        if (dgamma) dgamma[i] += (float)(dg * (double)scale);
    }
    return (double)alpha * hinge + (double)l2 * sq;
}

double ip_sign_detect(const float *gamma, const int8_t *bits, int c) {
    if (c <= 0) return 0.0;
    int match = 0;
    for (int i = 0; i < c; i++) match += (gamma[i] > 0.f && bits[i] > 0) || (gamma[i] < 0.f && bits[i] < 0);
    return (double)match / (double)c;
}
