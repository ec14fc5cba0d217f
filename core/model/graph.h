/* Internal to core/model: facts about a model's op list that the passes
 * (model.c) and the memory plan (plan.c) must agree on — who reads an
 * activation, and which ops run fused as one conv-block tail. */
#ifndef IP_MODEL_GRAPH_H
#define IP_MODEL_GRAPH_H

#include "model.h"

/* Number of ops reading activation a (an ADD reading it twice counts twice). */
int ip_graph_readers(const ip_model *m, int a);
/* The op that reads activation a last in forward order (-1 if none): in
 * backward it is the first to touch a's gradient, so it zeroes it (or writes
 * instead of accumulating). */
int ip_graph_last_reader(const ip_model *m, int a);
/* A batch or group norm whose output only its affine reads, and (optionally) a max-pool
 * that is the only reader of that affine's output, run as one kernel
 * (norm_tail_forward/backward). Ops in the fused group starting at op i: 3
 * (norm, affine, pool), 2 (norm, affine) or 0 (not a group's head). */
int ip_graph_tail_len(const ip_model *m, int i);
/* The kernel's shape for the fused group of `len` ops at `head`, on n samples. */
ip_norm_tail_shape ip_graph_tail_shape(const ip_model *m, int head, int len, int n);
/* The head of the fused group whose last op is i, or -1. */
int ip_graph_tail_head(const ip_model *m, int i);
/* The head of the fused group op i belongs to, or i itself: the step of the
 * backward pass in which op i's gradients are computed. */
int ip_graph_step(const ip_model *m, int i);

#endif
