/* Passport signatures: text -> sign bits, the sign loss and detection rate
 * (REFERENCE.md section 1). */
#ifndef IP_SIGNATURE_H
#define IP_SIGNATURE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"

#define IP_SIGN_GAMMA0 0.1f
#define IP_SIGN_ALPHA 0.1f
#define IP_SIGN_L2 1e-5f

/* Fills bits (C, values +1/-1) from text: 8 bits per character, most
 * significant bit first ('1' -> +1, '0' -> -1) in channels 0..8L-1; the
 * remaining channels get random bits from (seed, stream). Fails when 8*strlen(text) > c. */
int ip_signature_bits(int8_t *bits, int c, const char *text, uint64_t seed, uint64_t stream, ip_err *e);
/* Reads back the first nchars characters from signs of gamma (gamma > 0 -> 1);
 * non-printable bytes are written as '?'. out must hold nchars+1. */
void ip_signature_decode(char *out, const float *gamma, int nchars);
/* L = alpha * sum max(gamma0 - b_i g_i, 0) + l2 * sum g_i^2. dgamma (may be NULL) += dL/dgamma * scale. */
double ip_sign_loss(float *dgamma, const float *gamma, const int8_t *bits, int c, float alpha, float gamma0,
                    float l2, float scale);
/* Fraction of channels with sign(gamma_i) == b_i (gamma_i == 0 counts as a mismatch). */
double ip_sign_detect(const float *gamma, const int8_t *bits, int c);

#endif
