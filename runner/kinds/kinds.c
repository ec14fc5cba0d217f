/* The runner's kinds (kinds.h): the list, and the one generic fill of a core
 * task struct from a task's typed values. */
#include "kinds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../core/io/resume.h"

#include "../../core/util/par.h"
#include "../cli/commands.h"

extern const rn_kind rn_kind_train, rn_kind_eval, rn_kind_prune, rn_kind_fake1, rn_kind_verify, rn_kind_fake2,
    rn_kind_fake3, rn_kind_erb, rn_kind_finetune, rn_kind_flip, rn_kind_fingerprint, rn_kind_match, rn_kind_distill, rn_kind_extract, rn_kind_advtrain, rn_kind_noop;

const rn_kind *const rn_kinds[] = {&rn_kind_train,  &rn_kind_eval,     &rn_kind_prune,       &rn_kind_fake1,
                                   &rn_kind_verify, &rn_kind_fake2,    &rn_kind_fake3,       &rn_kind_erb,         &rn_kind_finetune,
                                   &rn_kind_flip,   &rn_kind_fingerprint, &rn_kind_match,    &rn_kind_distill, &rn_kind_extract, &rn_kind_advtrain, &rn_kind_noop, NULL};

const rn_kind *rn_kind_find(const char *name) {
    for (int i = 0; rn_kinds[i]; i++)
        if (strcmp(rn_kinds[i]->def->name, name) == 0) return rn_kinds[i];
    return NULL;
}

int rn_kind_index(const rn_kind *k) {
    for (int i = 0; rn_kinds[i]; i++)
        if (rn_kinds[i] == k) return i;
    return -1;
}

const rn_key *rn_kind_key(const rn_kind *k, const char *name) { return ip_task_param(k->def, name); }

int rn_shard_path(char *out, size_t cap, const char *merged_path, int shard, int shards) {
    size_t l = strlen(merged_path);
    if (l >= 3 && strcmp(merged_path + l - 3, ".h5") == 0) l -= 3;
    int n = snprintf(out, cap, "%.*s.shard-%d-of-%d.h5", (int)l, merged_path, shard, shards);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int rn_task_fill(const rn_task *t, const rn_ctx *c, void *task, ip_err *e) {
    const ip_task_def *d = t->k->def;
    ip_task_defaults(d, task);
    for (int q = 0; q < d->nparams; q++)
        if (ip_param_store(&d->params[q], &t->vals[q], task, e) != 0) return -1;
    if (ip_task_place(d, task, c->data_source, c->train_limit, c->test_limit, t->checkpoint, t->seed, e) != 0)
        return -1;
    if (t->shard >= 0 && d->at_shard[0] && d->at_shard[1]) { /* before the check and the state file's name */
        memcpy((char *)task + d->at_shard[0] - 1, &t->shard, sizeof t->shard);
        memcpy((char *)task + d->at_shard[1] - 1, &t->shards, sizeof t->shards);
    }
    const char *key = NULL;
    char msg[400];
    if (d->check && d->check(task, NULL, &key, msg, sizeof msg) != 0) return ip_fail_input(e, "%s", msg);
    if (d->at_resume && c->state_dir && c->state_dir[0]) {
        char path[1100];
        if (rn_state_path(path, sizeof path, c->state_dir, d, task) != 0)
            return ip_fail_input(e, "state paths under %s are too long", c->state_dir);
        if (ip_task_place_resume(d, task, path, c->checkpoint_every, e) != 0) return -1;
    }
    return 0;
}

int rn_state_path(char *out, size_t cap, const char *state_dir, const ip_task_def *d, const void *task) {
    int n = snprintf(out, cap, "%s/%s-%016llx.state", state_dir, d->name,
                     (unsigned long long)ip_task_ident(d, task));
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}


int rn_task_run(const rn_task *t, const rn_ctx *c, ip_metrics *out, ip_err *e) {
    void *task = calloc(1, t->k->def->size);
    if (!task) return ip_fail(e, "out of memory");
    int rc = rn_task_fill(t, c, task, e);
    const ip_resume *r = rc == 0 ? ip_task_resume(t->k->def, task) : NULL;
    if (r && r->path[0] && access(r->path, F_OK) == 0) /* the log says what continues, not only what stopped */
        fprintf(stderr, "resuming a %s task (rank %d) from %s\n", t->kind, c->rank, r->path);
    /* an entry's `threads` for its task alone; the rank's again after it */
    int before = t->threads ? ip_par_get_threads() : 0;
    if (t->threads) ip_set_threads(t->threads);
    if (rc == 0) rc = t->k->run ? t->k->run(t, task, out, e) : t->k->def->run(task, out, e);
    if (t->threads) ip_set_threads(before);
    free(task);
    return rc;
}
