/* Conferrable adversarial examples (core/ipguard/cae.c, docs/fingerprint.md
 * "CAE"): the loss against finite differences and against its definition
 * written out naively, the score, and the model sets the fingerprint kind
 * takes (IP_P_COPIES / IP_P_OTHERS, runner/spec/expand.c). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../core/ipguard/cae.h"
#include "../runner/kinds/task.h"
#include "../runner/spec/spec.h"
#include "testutil.h"

#define NS 3
#define NR 2
#define K 6

/* The loss as the paper writes it, naively (no gradients): the twin of ip_cae_loss. */
static double naive_loss(const float *zM, const float *p0, float zS[][K], const int8_t *useS, float zR[][K],
                         const int8_t *useR, const ip_cae_cfg *c) {
    double pm[K], a[K] = {0}, b[K] = {0}, e[K], s;
    int ks = 0, kr = 0;
    s = 0;
    for (int k = 0; k < K; k++) s += exp(zM[k]);
    for (int k = 0; k < K; k++) pm[k] = exp(zM[k]) / s;
    for (int i = 0; i < NS; i++) {
        if (!useS[i]) continue;
        ks++, s = 0;
        for (int k = 0; k < K; k++) s += exp(zS[i][k]);
        for (int k = 0; k < K; k++) a[k] += exp(zS[i][k]) / s;
    }
    for (int i = 0; i < NR; i++) {
        if (!useR[i]) continue;
        kr++, s = 0;
        for (int k = 0; k < K; k++) s += exp(zR[i][k]);
        for (int k = 0; k < K; k++) b[k] += exp(zR[i][k]) / s;
    }
    double emax = 0;
    for (int k = 0; k < K; k++) {
        a[k] /= ks, b[k] /= kr, e[k] = a[k] * (1 - b[k]);
        if (e[k] > emax) emax = e[k];
    }
    double lo = IP_CAE_PROB_EPS, hi = 1 - lo;
#define CL(p) ((p) < lo ? lo : (p) > hi ? hi : (p))
    double h1 = -log(CL(emax)), h2 = 0, h3 = 0;
    for (int k = 0; k < K; k++) h2 += -p0[k] * log(pm[k]), h3 += -pm[k] * log(CL(a[k]));
#undef CL
    return c->alpha * h1 - c->beta * h2 + c->gamma * h3;
}

typedef struct fixture {
    float zM[K], p0[K], zS[NS][K], zR[NR][K];
    int8_t useS[NS], useR[NR];
    ip_cae_cfg c;
} fixture;

static fixture make(unsigned seed) {
    fixture f;
    tu_fill(f.zM, K, -3.f, 3.f, seed);
    tu_fill(&f.zS[0][0], NS * K, -3.f, 3.f, seed + 1);
    tu_fill(&f.zR[0][0], NR * K, -3.f, 3.f, seed + 2);
    float z0[K];
    tu_fill(z0, K, -3.f, 3.f, seed + 3);
    double s = 0;
    for (int k = 0; k < K; k++) s += exp(z0[k]);
    for (int k = 0; k < K; k++) f.p0[k] = (float)(exp(z0[k]) / s);
    for (int i = 0; i < NS; i++) f.useS[i] = i != 1; /* surrogate 1 sits out */
    for (int i = 0; i < NR; i++) f.useR[i] = 1;
    f.c = (ip_cae_cfg){.eps = 0.1f, .iterations = 10, .alpha = 1.f, .beta = 0.7f, .gamma = 1.3f, .dropout = 0.3f,
                       .tau = 0.85f};
    return f;
}

static double loss_of(fixture *f, float *dM, float dS[][K], float dR[][K]) {
    const float *zS[NS], *zR[NR];
    float *pS[NS], *pR[NR];
    for (int i = 0; i < NS; i++) zS[i] = f->zS[i], pS[i] = dS ? dS[i] : NULL;
    for (int i = 0; i < NR; i++) zR[i] = f->zR[i], pR[i] = dR ? dR[i] : NULL;
    return ip_cae_loss(f->zM, f->p0, zS, f->useS, NS, zR, f->useR, NR, K, &f->c, dM, dS ? pS : NULL,
                       dR ? pR : NULL);
}

Test(cae_loss, equals_the_naive_definition) {
    for (unsigned seed = 1; seed < 40; seed += 3) {
        fixture f = make(seed);
        double fast = loss_of(&f, NULL, NULL, NULL);
        double slow = naive_loss(f.zM, f.p0, f.zS, f.useS, f.zR, f.useR, &f.c);
        cr_assert(fabs(fast - slow) <= 1e-9 * (1 + fabs(slow)), "seed %u: %.12g vs %.12g", seed, fast, slow);
    }
}

/* Every logit of every model against central differences of the loss (double inside, float logits). */
Test(cae_loss, gradients_match_finite_differences) {
    for (unsigned seed = 2; seed < 30; seed += 7) {
        fixture f = make(seed);
        float dM[K], dS[NS][K], dR[NR][K];
        loss_of(&f, dM, dS, dR);
        float *zs[1 + NS + NR], *ds[1 + NS + NR];
        zs[0] = f.zM, ds[0] = dM;
        for (int i = 0; i < NS; i++) zs[1 + i] = f.zS[i], ds[1 + i] = dS[i];
        for (int i = 0; i < NR; i++) zs[1 + NS + i] = f.zR[i], ds[1 + NS + i] = dR[i];
        for (int m = 0; m < 1 + NS + NR; m++)
            for (int k = 0; k < K; k++) {
                float keep = zs[m][k], h = 1e-2f;
                zs[m][k] = keep + h;
                double up = loss_of(&f, NULL, NULL, NULL);
                zs[m][k] = keep - h;
                double dn = loss_of(&f, NULL, NULL, NULL);
                zs[m][k] = keep;
                double fd = (up - dn) / (2.0 * h);
                cr_assert(fabs(fd - ds[m][k]) <= 2e-3 + 2e-3 * fabs(fd), "seed %u model %d logit %d: fd %.6g vs %.6g",
                          seed, m, k, fd, ds[m][k]);
            }
        for (int k = 0; k < K; k++) cr_assert_eq(dS[1][k], 0.f, "a surrogate that sits out gets no gradient");
    }
}

Test(cae_loss, score_counts_agreement) {
    /* two surrogates predicting class 2 confidently, two references predicting class 0 */
    float s0[K] = {0, 0, 9, 0, 0, 0}, s1[K] = {0, 0, 8, 0, 0, 0}, r0[K] = {9, 0, 0, 0, 0, 0}, r1[K] = {0, 0, 9, 0, 0, 0};
    const float *zS[2] = {s0, s1}, *zR[2] = {r0, r1};
    double soft, hard;
    ip_cae_score(zS, 2, zR, 2, K, 2, &soft, &hard);
    cr_assert_float_eq(hard, 1.0 * (1 - 0.5), 1e-12); /* all surrogates, half the references say 2 */
    cr_assert(soft > 0.45 && soft < 0.5, "soft %g", soft);
    ip_cae_score(zS, 2, zR, 1, K, 2, &soft, &hard);
    cr_assert_float_eq(hard, 1.0, 1e-12);
    cr_assert(soft > 0.99, "soft %g", soft);
}

/* ---------------- model sets in a spec (IP_P_COPIES / IP_P_OTHERS) ---------------- */

#define CAE_SPEC                                                                                                   \
    "data: {source: synthetic:64}\nmodels:\n  - {name: base, seed: [1, 2]}\n  - {name: ref, seed: [11, 12, 13]}\n"   \
    "tasks:\n  - {name: sur, kind: distill, model: base, seed: [1, 2]}\n"

static int load(rn_spec *s, const char *text, const char *want_error) {
    rn_diags d = {0};
    int rc = rn_spec_load_text(s, "cae.yaml", text, NULL, NULL, 0, &d);
    int found = !want_error;
    for (int i = 0; i < d.n && want_error; i++)
        found |= strstr(d.v[i].msg, want_error) != NULL || strstr(d.v[i].path, want_error) != NULL;
    if (!found || (rc != 0) != (want_error != NULL)) rn_diags_print(&d, stderr);
    rn_diags_free(&d);
    return want_error ? rc != 0 && found : rc == 0;
}

static int task_id(const rn_spec *s, const char *key) {
    for (int i = 0; i < s->ntasks; i++)
        if (!strcmp(s->tasks[i].key, key)) return i;
    cr_assert_fail("no task %s", key);
    return -1;
}

static int has_dep(const rn_task *t, int id) {
    for (int d = 0; d < t->ndeps; d++)
        if (t->deps[d] == id) return 1;
    return 0;
}

/* Each owner's fingerprint takes its own students as surrogates and every model independent of it as a
 * reference (the other owner too, never itself): all of them dependencies, their checkpoints joined. */
Test(cae_spec, sets_follow_the_task_graph) {
    rn_spec s;
    cr_assert(load(&s, CAE_SPEC "  - {name: fp, kind: fingerprint, model: base, method: cae, surrogates: sur, "
                             "references: [ref, base]}\n", NULL));
    int fp1 = task_id(&s, "fingerprint:fp<train:base[seed=1]>");
    int own1 = task_id(&s, "train:base[seed=1]"), own2 = task_id(&s, "train:base[seed=2]");
    int s11 = task_id(&s, "distill:sur[seed=1]<train:base[seed=1]>"),
        s21 = task_id(&s, "distill:sur[seed=2]<train:base[seed=1]>"),
        s12 = task_id(&s, "distill:sur[seed=1]<train:base[seed=2]>");
    const rn_task *t = &s.tasks[fp1];
    cr_assert(has_dep(t, own1) && has_dep(t, s11) && has_dep(t, s21) && has_dep(t, own2));
    cr_assert(!has_dep(t, s12), "another owner's student is not a surrogate");
    cr_assert_eq(t->ndeps, 1 + 2 + 3 + 1, "owner, 2 surrogates, 3 references and the other owner");
    char want[2048];
    snprintf(want, sizeof want, "%s,%s", s.tasks[s11].checkpoint, s.tasks[s21].checkpoint);
    cr_assert_str_eq(rn_task_val(t, "surrogates")->u.s, want);
    cr_assert_str_eq(rn_task_val(t, "surrogates")->text, "sur");
    const char *refs = rn_task_val(t, "references")->u.s;
    cr_assert(strstr(refs, s.tasks[own2].checkpoint) && !strstr(refs, s.tasks[own1].checkpoint), "%s", refs);
    cr_assert_str_eq(rn_task_get(t, "references"), "ref,base");
    rn_spec_free(&s);
}

Test(cae_spec, bad_sets_rejected) {
    rn_spec s;
    /* no copy of the owner among the surrogates */
    cr_assert(load(&s, CAE_SPEC "  - {name: fp, kind: fingerprint, model: base, method: cae, surrogates: ref, "
                             "references: ref}\n", "no instance of ref is derived from"));
    cr_assert(load(&s, CAE_SPEC "  - {name: fp, kind: fingerprint, model: base, method: cae, surrogates: sur}\n",
                   "method cae needs surrogates and references"));
    cr_assert(load(&s, CAE_SPEC "  - {name: fp, kind: fingerprint, model: base, references: ref}\n",
                   "surrogates and references are for method cae"));
    cr_assert(load(&s, CAE_SPEC "  - {name: fp, kind: fingerprint, model: base, method: cae, surrogates: sur, "
                             "references: reff}\n", "unknown model \"reff\""));
    cr_assert(load(&s, CAE_SPEC "  - {name: fp, kind: fingerprint, model: base, method: cae, surrogates: sur, "
                             "references: ref, init: noise}\n", "init"));
}
