/* Signature encoding, decoding, sign loss and detection rate. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/util/rng.h"
#include "../core/passport/signature.h"
#include "testutil.h"

Test(signature, letter_A_is_msb_first) {
    int8_t bits[16];
    ip_err e = {{0}};
    cr_assert_eq(ip_signature_bits(bits, 16, "A", 1, ip_stream("signature", 0), &e), 0, "%s", e.msg);
    const int8_t want[8] = {-1, +1, -1, -1, -1, -1, -1, +1}; /* 'A' = 0x41 = 01000001 */
    for (int i = 0; i < 8; i++) cr_assert_eq(bits[i], want[i], "bit %d", i);
    for (int i = 8; i < 16; i++) cr_assert(bits[i] == 1 || bits[i] == -1, "bit %d = %d", i, bits[i]);
}

Test(signature, random_tail_is_deterministic_and_mixed) {
    enum { C = 512 };
    int8_t a[C], b[C], c[C], z[C];
    ip_err e = {{0}};
    uint64_t st = ip_stream("signature", 3);
    cr_assert_eq(ip_signature_bits(a, C, "ok", 5, st, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_signature_bits(b, C, "ok", 5, st, &e), 0, "%s", e.msg);
    cr_assert(memcmp(a, b, C) == 0);
    cr_assert_eq(ip_signature_bits(c, C, "ok", 5, ip_stream("signature", 4), &e), 0, "%s", e.msg);
    cr_assert(memcmp(a, c, 16) == 0, "text bits do not depend on the stream");
    cr_assert(memcmp(a + 16, c + 16, C - 16) != 0, "random bits should depend on the stream");
    /* NULL and empty text: all random */
    cr_assert_eq(ip_signature_bits(z, C, NULL, 5, st, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_signature_bits(b, C, "", 5, st, &e), 0, "%s", e.msg);
    cr_assert(memcmp(z, b, C) == 0);
    int pos = 0;
    for (int i = 0; i < C; i++) {
        cr_assert(z[i] == 1 || z[i] == -1);
        pos += z[i] > 0;
    }
    cr_assert(pos > C / 2 - 64 && pos < C / 2 + 64, "%d of %d positive", pos, C);
}

Test(signature, capacity_error) {
    int8_t bits[16];
    ip_err e = {{0}};
    cr_assert_eq(ip_signature_bits(bits, 16, "ab", 1, 0, &e), 0, "two chars fit in 16 channels: %s", e.msg);
    cr_assert_neq(ip_signature_bits(bits, 16, "abc", 1, 0, &e), 0);
    cr_assert(strstr(e.msg, "\"abc\"") != NULL, "message: %s", e.msg);
    cr_assert(strstr(e.msg, "24") != NULL && strstr(e.msg, "16 channels") != NULL, "message: %s", e.msg);
    cr_assert_neq(ip_signature_bits(bits, 7, "a", 1, 0, &e), 0);
}

Test(signature, decode_round_trip) {
    enum { C = 128 };
    const char *text = "IPR-test 2019!";
    int8_t bits[C];
    float gamma[C];
    ip_err e = {{0}};
    cr_assert_eq(ip_signature_bits(bits, C, text, 11, 0, &e), 0, "%s", e.msg);
    ip_rng r;
    ip_rng_init(&r, 2, 0);
    for (int i = 0; i < C; i++) gamma[i] = bits[i] * ip_rng_range(&r, 0.01f, 2.f);
    char out[C / 8 + 1];
    ip_signature_decode(out, gamma, (int)strlen(text));
    cr_assert_str_eq(out, text);
    /* non-printable bytes come back as '?' */
    for (int i = 0; i < 8; i++) gamma[i] = -1.f; /* 0x00 */
    for (int i = 8; i < 16; i++) gamma[i] = 1.f; /* 0xff */
    ip_signature_decode(out, gamma, 3);
    cr_assert_str_eq(out, "??R");
    ip_signature_decode(out, gamma, 0);
    cr_assert_str_eq(out, "");
}

Test(signature, sign_loss_value) {
    const float gamma[4] = {0.5f, -0.05f, 0.02f, -0.3f};
    const int8_t bits[4] = {1, 1, -1, -1};
    /* margins gamma0 - b*g: -0.4, 0.15, 0.12, -0.2 -> hinge 0.27 */
    double want = 0.1 * 0.27 + 1e-5 * (0.25 + 0.0025 + 0.0004 + 0.09);
    double got = ip_sign_loss(NULL, gamma, bits, 4, 0.1f, 0.1f, 1e-5f, 1.f);
    cr_assert(fabs(got - want) < 1e-8, "loss %.12g want %.12g", got, want);
    float dg[4] = {1, 1, 1, 1};
    ip_sign_loss(dg, gamma, bits, 4, 0.1f, 0.1f, 1e-5f, 2.f);
    /* accumulates: 1 + 2 * (hinge grad + 2 * l2 * g) */
    const double hg[4] = {0, -0.1, 0.1, 0};
    for (int i = 0; i < 4; i++) {
        double w = 1.0 + 2.0 * (hg[i] + 2e-5 * gamma[i]);
        cr_assert(fabs(dg[i] - w) < 1e-6, "dgamma[%d] %g want %g", i, dg[i], w);
    }
    /* all satisfied, no l2: zero */
    const float ok[2] = {1.f, -1.f};
    const int8_t okb[2] = {1, -1};
    cr_assert_eq(ip_sign_loss(NULL, ok, okb, 2, 0.1f, 0.1f, 0.f, 1.f), 0.0);
}

struct sl_ctx {
    float *gamma;
    const int8_t *bits;
    int c;
};

static double sl_fn(void *p) {
    struct sl_ctx *s = p;
    return ip_sign_loss(NULL, s->gamma, s->bits, s->c, 0.1f, 0.1f, 0.01f, 1.f);
}

Test(signature, sign_loss_gradient_matches_finite_differences) {
    enum { C = 64 };
    float gamma[C], dg[C];
    int8_t bits[C];
    ip_err e = {{0}};
    cr_assert_eq(ip_signature_bits(bits, C, "hi", 4, 1, &e), 0, "%s", e.msg);
    ip_rng r;
    ip_rng_init(&r, 5, 0);
    for (int i = 0; i < C; i++) {
        /* keep clear of the hinge kink at b*g = gamma0 (eps below is 1e-3) */
        float g;
        do g = ip_rng_range(&r, -0.5f, 0.5f);
        while (fabsf(fabsf(g) - 0.1f) < 0.01f);
        gamma[i] = g;
        dg[i] = 0.f;
    }
    ip_sign_loss(dg, gamma, bits, C, 0.1f, 0.1f, 0.01f, 1.f);
    struct sl_ctx ctx = {gamma, bits, C};
    double err = tu_grad_check(gamma, dg, C, sl_fn, &ctx, 1e-3f, C, 1e-3);
    cr_assert_lt(err, 1e-2, "gradient error %g", err);
}

Test(signature, detection_rate) {
    const float gamma[8] = {1, -1, 0.5f, -0.5f, 0, 2, -2, 0.1f};
    const int8_t bits[8] = {1, -1, 1, -1, 1, 1, 1, -1};
    /* matches: 0,1,2,3,5 ; zero counts as mismatch (4); 6,7 mismatch */
    cr_assert_float_eq(ip_sign_detect(gamma, bits, 8), 5.0 / 8.0, 1e-12);
    cr_assert_float_eq(ip_sign_detect(gamma, bits, 4), 1.0, 1e-12);
    const float zero[2] = {0, 0};
    cr_assert_float_eq(ip_sign_detect(zero, bits, 2), 0.0, 1e-12);
    const float neg[4] = {-1, 1, -1, 1};
    cr_assert_float_eq(ip_sign_detect(neg, bits, 4), 0.0, 1e-12);
}
