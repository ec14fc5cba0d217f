/* IPGuard verdicts from the finished match tasks (ipguard_summary.h). */
#include "ipguard_summary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/ipguard/fingerprint.h"

const char *rn_relation_name(rn_relation r) {
    return r == RN_REL_SELF ? "self" : r == RN_REL_PIRATED ? "pirated" : r == RN_REL_MAKER ? "maker" : "independent";
}

static const rn_record *done(const rn_record *const *rec, int i) {
    return rec && rec[i] && rec[i]->status == RN_DONE ? rec[i] : NULL;
}

/* The dependency of t whose key is t's parameter `param` (a reference), or -1. */
static int ref_id(const rn_spec *s, const rn_task *t, const char *param) {
    const char *key = rn_task_get(t, param);
    if (!key) return -1;
    for (int d = 0; d < t->ndeps; d++)
        if (strcmp(s->tasks[t->deps[d]].key, key) == 0) return t->deps[d];
    return -1;
}

static int find_fp(const rn_ipguard *g, int fp) {
    for (int i = 0; i < g->nfps; i++)
        if (g->fps[i].fingerprint == fp) return i;
    return -1;
}

int rn_ipguard_build(const rn_spec *s, const rn_record *const *rec, rn_ipguard *g, ip_err *e) {
    memset(g, 0, sizeof *g);
    int n = s->ntasks;
    int *seen = calloc((size_t)(n ? n : 1), sizeof *seen);
    g->matches = malloc((size_t)(n ? n : 1) * sizeof *g->matches);
    g->fps = malloc((size_t)(n ? n : 1) * sizeof *g->fps);
    double *pos = malloc((size_t)(n ? n : 1) * sizeof *pos), *neg = malloc((size_t)(n ? n : 1) * sizeof *neg);
    double *cal = malloc((size_t)(n ? n : 1) * sizeof *cal), *all = malloc((size_t)(n ? n : 1) * sizeof *all);
    int rc = -1, mark = 0;
    if (!seen || !g->matches || !g->fps || !pos || !neg || !cal || !all) {
        ip_fail(e, "out of memory for the IPGuard summary");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const rn_task *t = &s->tasks[i];
        const rn_record *r = done(rec, i);
        if (!r || strcmp(t->kind, "match") != 0) continue;
        int fp = ref_id(s, t, "fingerprint"), sus = ref_id(s, t, "suspect");
        double rate = ip_metrics_get(&r->metrics, "match_rate");
        if (fp < 0 || sus < 0 || isnan(rate)) continue; /* not a match this summary understands */
        int owner = ref_id(s, &s->tasks[fp], "model");
        if (owner < 0) continue;
        int f = find_fp(g, fp);
        if (f < 0) {
            f = g->nfps++;
            rn_ipg_fingerprint *F = &g->fps[f];
            memset(F, 0, sizeof *F);
            F->fingerprint = fp;
            F->owner = owner;
            /* the typed values, not their texts parsed again */
            const ip_value *k = rn_task_val(&s->tasks[fp], "k"), *fpr = rn_task_val(&s->tasks[fp], "fpr"),
                           *method = rn_task_val(&s->tasks[fp], "method");
            F->k = k && !(method && method->u.i == IP_FP_METHOD_CAE) ? k->u.f : NAN; /* a CAE has no margin */
            F->fpr_target = fpr ? fpr->u.f : 0.05;
        }
        rn_ipg_match *m = &g->matches[g->nmatches++];
        m->fingerprint = fp;
        m->match = i;
        m->suspect = sus;
        m->rate = rate;
        const ip_value *cv = rn_task_val(t, "calibration");
        m->calibration = cv && cv->u.i;
        int maker = 0;
        for (int d = 0; d < s->tasks[fp].ndeps; d++) maker |= s->tasks[fp].deps[d] == sus && sus != owner;
        m->relation = sus == owner                                           ? RN_REL_SELF
                      : maker                                                ? RN_REL_MAKER
                      : rn_task_descends(s->tasks, sus, owner, seen, ++mark) ? RN_REL_PIRATED
                                                                             : RN_REL_INDEPENDENT;
    }
    for (int f = 0; f < g->nfps; f++) {
        rn_ipg_fingerprint *F = &g->fps[f];
        size_t np = 0, nn = 0, nc = 0, na = 0;
        for (int j = 0; j < g->nmatches; j++) {
            const rn_ipg_match *m = &g->matches[j];
            if (m->fingerprint != F->fingerprint) continue;
            all[na++] = m->rate;
            if (m->calibration && m->relation == RN_REL_INDEPENDENT) cal[nc++] = m->rate;
            else if (m->relation == RN_REL_PIRATED) pos[np++] = m->rate;
            else if (m->relation == RN_REL_INDEPENDENT) neg[nn++] = m->rate;
        }
        F->positives = (int)np;
        F->negatives = (int)nn;
        F->calibration = (int)nc;
        ip_ipguard_curves(pos, np, neg, nn, F->robustness, F->uniqueness);
        F->aruc = ip_ipguard_aruc(pos, np, neg, nn);
        F->roc_auc = ip_ipguard_roc_auc(pos, np, neg, nn);
        /* calibrated on the marked models when there are, else (as the paper) on the negatives themselves */
        F->threshold = nc ? ip_ipguard_threshold(cal, nc, all, na, F->fpr_target)
                          : ip_ipguard_threshold(neg, nn, all, na, F->fpr_target);
        size_t fp_hits = 0, tp_hits = 0;
        for (size_t j = 0; j < nn; j++) fp_hits += neg[j] >= F->threshold;
        for (size_t j = 0; j < np; j++) tp_hits += pos[j] >= F->threshold;
        F->fpr = nn ? (double)fp_hits / (double)nn : NAN;
        F->tpr = np ? (double)tp_hits / (double)np : NAN;
        for (int j = 0; j < g->nmatches; j++)
            if (g->matches[j].fingerprint == F->fingerprint) g->matches[j].pirated = g->matches[j].rate >= F->threshold;
    }
    rc = 0;
done:
    free(seen), free(pos), free(neg), free(cal), free(all);
    if (rc) rn_ipguard_free(g);
    return rc;
}

void rn_ipguard_free(rn_ipguard *g) {
    free(g->matches);
    free(g->fps);
    memset(g, 0, sizeof *g);
}
