/* The V3 trigger set (REFERENCE.md section 1, docs/passports.md "Trigger
 * set"): key images with assigned labels that a v3 model learns alongside
 * its task, so that ownership can be checked black-box through a prediction
 * API. The published set (Adi et al.'s 100 abstract images) is not
 * available; ours is generated deterministically from (seed, count):
 * block-noise images (a random 8-bit level per 4x4-pixel cell), each with a
 * random label. The set is stored in the checkpoint (/trigger), so verifying needs
 * neither the seed nor this generator. */
#ifndef IP_TRIGGER_H
#define IP_TRIGGER_H

#include <stddef.h>
#include <stdint.h>

#include "../io/data.h"
#include "../util/err.h"
#include "../util/metrics.h"
#include "../model/model.h"

/* the trigger set size's default: the train kind's `triggers` row (core/tasks/train.c) */
#define IP_TRIGGER_PER_BATCH 2   /* trigger images mixed into every training minibatch */
#define IP_TRIGGER_MAX_COUNT 100000
#define IP_TRIGGER_CELL 4        /* pixels per side of one noise cell */

/* Makes `count` trigger samples of shape (c, h, w) with labels in [0, classes).
 * Image k: every IP_TRIGGER_CELL x IP_TRIGGER_CELL cell of every channel
 * (cells row-major per channel, channel by channel; partial cells at the
 * right/bottom edge) gets the level ip_rng_below(256) / 255 from
 * (seed, ip_stream("trigger-image", k)); its label is ip_rng_below(classes)
 * from (seed, ip_stream("trigger-label", k)). Pixels are in [0, 1], not
 * normalised. Image k does not depend on count. */
int ip_trigger_make(ip_dataset *t, size_t count, int c, int h, int w, int classes, uint64_t seed, ip_err *e);

/* Gives m (v3) its trigger set: ip_trigger_make with the model's input shape and classes. */
int ip_trigger_attach(ip_model *m, size_t count, uint64_t seed, ip_err *e);

/* A copy of the model's trigger set normalised with the model's input
 * statistics (what training and evaluation feed the network). */
int ip_trigger_normalised(const ip_model *m, ip_dataset *out, ip_err *e);

/* Trigger-set accuracy of m on branch br (eval mode): the fraction of trigger
 * images predicted as their assigned label. */
int ip_trigger_acc(ip_model *m, ip_branch br, int batch, double *acc, ip_err *e);

/* For a model with a trigger set: sets `trigger_acc` (public branch: the
 * deployed network, what a black-box check sees; for a model without a public
 * branch, its only one) and `trigger_acc_private` (the real passport).
 * prefix ("" or "epoch_") names arrays: with "epoch_" both values are
 * appended to epoch_trigger_acc[_private] and the scalars set as well.
 * Nothing for a model without one. */
int ip_trigger_metrics(ip_model *m, int batch, const char *prefix, ip_metrics *out, ip_err *e);

#endif
