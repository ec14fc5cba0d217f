/* Evaluation records: an accuracy remembered with digests of everything it
 * was computed from, so that the same evaluation is not run twice.
 *
 * A study evaluates the same weights on the same test split again and again:
 * a prune task evaluates the pruned model it saves, then an eval task and
 * every match that takes it as a suspect evaluate that checkpoint once more;
 * a train task's last epoch and its test_acc are one evaluation twice. Each
 * ip_evaluate computes the key below; when the model holds a record with
 * that key it returns the recorded accuracy, else it evaluates and adds one.
 * Checkpoints keep the records of the weights they hold (docs/checkpoint.md
 * "/evaluations"), so the answer travels to other ranks and runs.
 *
 * The key is what the accuracy is a function of: the model's digest (its
 * configuration, weights, buffers and signature bits: ip_model_digest), the
 * data's (images, labels, normalisation: ip_data_digest), the images per
 * forward pass (BLAS may sum in another order for another pass) and the
 * branch. A different build or machine could round differently, so a
 * checkpoint's records are used only by the build that wrote them (ckpt.c
 * compares a digest of the provenance). Switched off with the worker cache
 * (IPSWEEP_NO_CACHE=1): every evaluation then runs. The process-wide test
 * knobs of winograd.h (forced tile, chunk limit) are not in the key: a test
 * that changes them and evaluates one model again turns records off. */
#ifndef IP_EVALREC_H
#define IP_EVALREC_H

#include <stdint.h>

#include "model.h"

/* On (the default) or off, for the whole process (set before any task runs). */
void ip_eval_records_use(int on);
int ip_eval_records_used(void);
/* Evaluations answered from a record since the process started. */
uint64_t ip_eval_record_hits(void);

/* XXH64 chains over the eval-relevant content of m / d (core/util/digest.h). */
uint64_t ip_model_digest(const ip_model *m);
uint64_t ip_data_digest(const ip_dataset *d);

/* The key of evaluating m (its current branch) on d in passes of `pass` images. */
void ip_eval_record_key(ip_eval_record *k, const ip_model *m, const ip_dataset *d, int pass);
/* 1 and *acc when m holds a record of key k, else 0. */
int ip_eval_record_find(const ip_model *m, const ip_eval_record *k, double *acc);
/* Adds k with acc to m's records (the oldest goes when they are full). */
void ip_eval_record_add(ip_model *m, const ip_eval_record *k, double acc);

#endif
