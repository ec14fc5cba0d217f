/* IPGuard verdicts from a run's match tasks (docs/fingerprint.md): for every
 * fingerprint, its matches grouped by the suspect's relation to the owner,
 * robustness/uniqueness curves, ARUC, the threshold for the chosen
 * false-positive rate and a verdict per suspect. Derived by the coordinator
 * from the finished records whenever it writes the results file (group
 * /ipguard, docs/results.md), so a partial run shows what is known so far. */
#ifndef RN_IPGUARD_SUMMARY_H
#define RN_IPGUARD_SUMMARY_H

#include "../../core/util/err.h"
#include "../../core/ipguard/fingerprint.h"
#include "journal.h"
#include "../spec/spec.h"

#define RN_IPG_THRESHOLDS IP_IPGUARD_NT /* t = 0, 0.01, ..., 1 */

/* RN_REL_MAKER: a model the fingerprint was made with (a CAE surrogate or
 * reference: a dependency of the fingerprint task other than its owner). Like
 * the owner itself it is shown but left out of every figure of merit: its
 * matching rate says nothing about unseen copies or independent models. */
typedef enum { RN_REL_SELF = 0, RN_REL_PIRATED, RN_REL_INDEPENDENT, RN_REL_MAKER } rn_relation;
const char *rn_relation_name(rn_relation r);

/* One done match task. */
typedef struct rn_ipg_match {
    int fingerprint, match, suspect; /* task ids */
    rn_relation relation;            /* of the suspect to the fingerprint's owner */
    double rate;                     /* match_rate */
    int pirated;                     /* verdict: rate >= the fingerprint's threshold */
    int calibration;                 /* the match's `calibration` key: sets the threshold only */
} rn_ipg_match;

/* One fingerprint task with at least one done match. */
typedef struct rn_ipg_fingerprint {
    int fingerprint, owner;          /* task ids */
    double k;                        /* the fingerprint's margin */
    int positives, negatives;        /* pirated / independent matches (self and calibration excluded) */
    int calibration;                 /* independent matches marked calibration (0: the negatives calibrate) */
    double robustness[RN_IPG_THRESHOLDS], uniqueness[RN_IPG_THRESHOLDS]; /* sampled for plots */
    double aruc;                     /* the paper's: area under min(robustness, uniqueness); NaN when pos or neg is empty */
    double roc_auc;                  /* area under (uniqueness, robustness); NaN likewise */
    /* threshold: the smallest observed rate whose FPR on the calibration models (the negatives when none are
     * marked) is <= fpr_target; fpr, tpr: on the negatives and positives */
    double fpr_target, threshold, fpr, tpr;
} rn_ipg_fingerprint;

typedef struct rn_ipguard {
    rn_ipg_match *matches;
    int nmatches;
    rn_ipg_fingerprint *fps;
    int nfps;
} rn_ipguard;

/* rec: spec->ntasks records or NULLs (as rn_results_write). Only tasks of
 * kind "match" (parameters fingerprint, suspect; metric match_rate) count. */
int rn_ipguard_build(const rn_spec *spec, const rn_record *const *rec, rn_ipguard *out, ip_err *e);
void rn_ipguard_free(rn_ipguard *g);

#endif
