/* Checkpoints inside long tasks (docs/checkpoint.md "Task state files").
 *
 * A task that can resume has an ip_resume field (its kind's at_resume): the
 * state file and how often to save. Its loop opens an ip_saver, restores
 * what the saver loaded, and at every point it could resume from calls
 * ip_saver_point: when `every` seconds have passed or a stop was requested
 * (util/stop.h) the saver asks the task for its parts and writes them; on a
 * stop it then returns an IP_ERR_INTERRUPTED error, which the task passes up
 * like any error. Finished, the task calls ip_saver_done, which deletes the
 * state file. Whatever the task saves must be all that its result depends
 * on (weights, optimiser moments, position, RNG states, metrics so far), so
 * that a resumed task ends bit for bit where an uninterrupted one does. */
#ifndef IP_RESUME_H
#define IP_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"
#include "../model/model.h"
#include "../nn/optim.h"
#include "../util/err.h"
#include "../util/metrics.h"

/* Seconds between a long task's saves unless a spec or a command says
 * otherwise (checkpoint_every): at most ten minutes of work lost to a crash,
 * a save cost that is noise beside ten minutes of training. */
#define IP_CHECKPOINT_EVERY_DEFAULT 600
#define IP_CHECKPOINT_STR_(x) #x
#define IP_CHECKPOINT_STR(x) IP_CHECKPOINT_STR_(x)
#define IP_CHECKPOINT_EVERY_TEXT IP_CHECKPOINT_STR(IP_CHECKPOINT_EVERY_DEFAULT) /* "600", for defaults shown as text */
#define IP_CHECKPOINT_EVERY_MAX 604800 /* a week: longer is no checkpoint at all */

typedef struct ip_resume {
    char path[1024];   /* the task's state file; "" = it keeps none (a stop still interrupts it) */
    double every;      /* seconds between saves while it runs; <= 0: only when asked to stop */
} ip_resume;

/* Fills a task's parts at a save: appends with ip_state_add. */
typedef int (*ip_state_fill)(void *user, ip_state_part *parts, int *nparts, ip_err *e);

typedef struct ip_saver {
    ip_resume r;
    uint64_t ident;        /* the task's identity (ip_task_ident): a state of other parameters is not resumed */
    double last;           /* ip_now_s() of the last save, or of the open */
    ip_state loaded;       /* what ip_saver_open read (empty when starting fresh) */
    int resumed;           /* 1 when loaded holds a state */
    int saves;             /* saves so far (tests) */
    unsigned char *blob;   /* scratch for serialised metrics, reused */
    size_t blob_cap;
} ip_saver;

/* Opens the saver of a task: reads its state file when it has one of this
 * ident. Returns 1 (resumed: restore from s->loaded), 0 (fresh) or -1 (a
 * damaged state file: the error says to delete it). r may be NULL (no
 * checkpoints). */
int ip_saver_open(ip_saver *s, const ip_resume *r, uint64_t ident, ip_err *e);
/* A point the task can resume from. Saves when due (fill gives the parts);
 * when a stop was requested returns -1 with an IP_ERR_INTERRUPTED error
 * ("interrupted at <where>; state saved to <path>"); else 0. */
int ip_saver_point(ip_saver *s, ip_state_fill fill, void *user, const char *where, ip_err *e);
/* The task finished: deletes the state file and frees the saver. */
void ip_saver_done(ip_saver *s);
/* Frees the saver, keeping the file (a failure or an interruption). */
void ip_saver_close(ip_saver *s);

/* Appends a part (its name must be a literal or outlive the save). -1 when full. */
int ip_state_add(ip_state_part *parts, int *nparts, const char *name, const void *data, size_t bytes);

/* The parts of a model that training changes: "<prefix>params", "<prefix>bufs"
 * (running statistics, passports), "<prefix>bits" (signatures). */
int ip_state_add_model(ip_state_part *parts, int *nparts, const char *prefix, const ip_model *m);
int ip_state_get_model(const ip_saver *s, const char *prefix, ip_model *m, ip_err *e);
/* An optimiser's moments and step count: "<prefix>moments", "<prefix>steps". */
int ip_state_add_optim(ip_state_part *parts, int *nparts, const char *prefix, const ip_optim *o);
int ip_state_get_optim(const ip_saver *s, const char *prefix, ip_optim *o, ip_err *e);
/* The metrics so far ("metrics"): serialised into the saver's scratch. */
int ip_state_add_metrics(ip_saver *s, ip_state_part *parts, int *nparts, const ip_metrics *mt, ip_err *e);
/* Replaces mt's content with the saved metrics. */
int ip_state_get_metrics(const ip_saver *s, ip_metrics *mt, ip_err *e);

#endif
