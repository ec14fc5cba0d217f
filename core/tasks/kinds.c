/* Every task kind of the core (param.h), in the order docs/spec.md lists them. */
#include "param.h"

const ip_task_def *const ip_task_defs[] = {&ip_train_def,    &ip_eval_def,  &ip_prune_def,       &ip_fake1_def,
                                           &ip_verify_def,   &ip_fake2_def, &ip_fake3_def,       &ip_erb_def,         &ip_finetune_def,
                                           &ip_flip_def,     &ip_fingerprint_def, &ip_match_def, &ip_distill_def,
                                           &ip_extract_def,   &ip_advtrain_def, &ip_noop_def, NULL};
