/* Attacks on passport models and IPGuard's post-processed suspects: see
 * attacks.h for the API and docs/attacks.md for the definitions. */
#include "attacks.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/ckpt.h"
#include "../util/rng.h"
#include "signature.h"
#include "../model/train.h"
#include "trigger.h"


/* ------------------------------------------------------------------------- */
/* Building blocks                                                           */

void ip_attack_passport_to_affine(ip_model *m) {
    if (m->npassports == 0) return;
    ip_model_passport_affine(m);
    for (int i = 0; i < m->npassports; i++) {
        const ip_passport *p = &m->passports[i];
        const ip_op *aff = &m->ops[p->affine_op];
        memcpy(ip_tensor_param(m, aff->weight), p->gamma, (size_t)p->cout * sizeof(float));
        memcpy(ip_tensor_param(m, aff->bias), p->beta, (size_t)p->cout * sizeof(float));
    }
    if (m->cfg.scheme == IP_SCHEME_V1) m->cfg.scheme = IP_SCHEME_V2;
    m->branch = IP_BRANCH_PUBLIC;
}

void ip_colmean_backward(float *dpassport, const float *dcolmean, const ip_conv_shape *s) {
    const int H = s->h, W = s->w;
    const float inv = (float)(1.0 / ((double)s->oh * s->ow));
    size_t k = 0;
    for (int ci = 0; ci < s->cin; ci++) {
        float *p = dpassport + (size_t)ci * H * W;
        for (int kh = 0; kh < s->kh; kh++)
            for (int kw = 0; kw < s->kw; kw++, k++) {
                const float g = dcolmean[k] * inv;
                if (g == 0.f) continue;
                for (int oh = 0; oh < s->oh; oh++) {
                    const int ih = oh * s->stride - s->pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    float *row = p + (size_t)ih * W;
                    for (int ow = 0; ow < s->ow; ow++) {
                        const int iw = ow * s->stride - s->pad + kw;
                        if (iw >= 0 && iw < W) row[iw] += g;
                    }
                }
            }
    }
}

void ip_passport_key_grads(const ip_model *m, int p, float *dkey_gamma, float *dkey_beta, float *scratch) {
    const ip_passport *pp = &m->passports[p];
    const float *w = m->params + m->tensors[m->ops[pp->conv_op].weight].offset;
    ip_conv_shape cs = m->ops[pp->conv_op].conv;
    cs.n = 1;
    const int k = (int)pp->k;
    cblas_sgemv(CblasRowMajor, CblasTrans, pp->cout, k, 1.f, w, k, pp->dgamma, 1, 0.f, scratch, 1);
    ip_colmean_backward(dkey_gamma, scratch, &cs);
    cblas_sgemv(CblasRowMajor, CblasTrans, pp->cout, k, 1.f, w, k, pp->dbeta, 1, 0.f, scratch, 1);
    ip_colmean_backward(dkey_beta, scratch, &cs);
}

int ip_attack_count(double fraction, int c) {
    if (!(fraction > 0) || c <= 0) return 0;
    double v = floor(fraction * (double)c + 1e-9);
    return v >= c ? c : (int)v;
}

int ip_attack_train_data(ip_dataset *d, const char *source, size_t owner_limit, double fraction, int disjoint,
                         ip_err *e) {
    memset(d, 0, sizeof *d);
    if (!(fraction > 0 && fraction <= 1)) return ip_fail(e, "data fraction must be in (0, 1], got %g", fraction);
    if (!disjoint) {
        if (ip_data_load(d, source, IP_SPLIT_TRAIN, owner_limit, e) != 0) return -1;
        double c = nearbyint(fraction * (double)d->n);
        ip_data_subset(d, 0, c < 1 ? 1 : (size_t)c);
        return 0;
    }
    if (owner_limit == 0)
        return ip_fail(e, "disjoint data: the owner trained on the whole training split (data.train_limit = 0), "
                          "so no unseen training samples are left; set data.train_limit below the split size");
    double c = nearbyint(fraction * (double)owner_limit);
    size_t count = c < 1 ? 1 : (size_t)c;
    if (ip_data_load(d, source, IP_SPLIT_TRAIN, owner_limit + count, e) != 0) return -1;
    if (d->n < owner_limit + count) {
        size_t have = d->n;
        ip_data_free(d);
        return ip_fail(e,
                       "disjoint data: needs training samples [%zu, %zu) (fraction %g of the owner's %zu) but the "
                       "training split has only %zu; lower the fraction or data.train_limit",
                       owner_limit, owner_limit + count, fraction, owner_limit, have);
    }
    ip_data_subset(d, owner_limit, count);
    return 0;
}

static const char *const ft_names[] = {"ftll", "ftal", "rtll", "rtal"};

const char *ip_ft_mode_name(ip_ft_mode m) { return (unsigned)m < 4 ? ft_names[m] : "?"; }

int ip_ft_mode_parse(const char *s, ip_ft_mode *out) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, ft_names[i]) == 0) return *out = (ip_ft_mode)i, 0;
    return -1;
}

