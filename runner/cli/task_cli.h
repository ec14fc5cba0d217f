/* Command-line options of a task kind, generated from its parameter table
 * (core/tasks/param.h): one `--key value` per row (underscores become
 * dashes; a bool is a flag), its help from the row's doc and default, and
 * the task's surroundings (--data, --out, --train-limit, --test-limit) where
 * the kind's struct has them, and for a kind that checkpoints --state and
 * --checkpoint-every (core/io/resume.h). `ipsweep task`, `train` and `eval` use it, so a
 * key added to a table is an option of all three at once. */
#ifndef RN_TASK_CLI_H
#define RN_TASK_CLI_H

#include <stddef.h>

#include "cli.h"
#include "../kinds/task.h"

#define RN_CLI_EXTRA 10 /* options a command adds (threads, quiet, ...) */

typedef struct rn_task_cli {
    const ip_task_def *d;
    /* each key's argument as given (unset: empty and given[q] = 0); room for a model set's paths */
    char text[RN_MAX_KEYS][IP_MAX_MODEL_SET * RN_PATH_LEN];
    int flag[RN_MAX_KEYS];                  /* bool keys */
    char optname[RN_MAX_KEYS][64];
    char help[RN_MAX_KEYS][512];
    char data[RN_PATH_LEN], out[RN_PATH_LEN];
    size_t train_limit, test_limit;
    char state[RN_PATH_LEN];                /* a kind that checkpoints: --state (default <out>.state) */
    float checkpoint_every;                 /* --checkpoint-every */
    cli_opt opts[RN_MAX_KEYS + 4 + RN_CLI_EXTRA];
    int nopts;
} rn_task_cli;

/* The options of kind d (tc is large: allocate it, e.g. static or malloc). */
void rn_task_cli_init(rn_task_cli *tc, const ip_task_def *d);
/* Adds a command's own option after the kind's. */
void rn_task_cli_add(rn_task_cli *tc, cli_opt o);
/* After cli_parse(): the struct's defaults, each given value parsed by its
 * row's rule and stored, then the surroundings; a task's RNG seed is its
 * `seed` key when the key only names the task. Returns CLI_OK, or CLI_ERROR
 * after printing one line (a bad or missing value). */
int rn_task_cli_fill(const rn_task_cli *tc, const char *cmd, void *task);
/* Runs a filled task with SIGTERM/SIGUSR1/Ctrl-C stopping it (a kind that
 * checkpoints saves its state): prints the metrics, or one error line; on a
 * stop says how to continue. Returns the exit status (0, 1, 2 or 75). */
int rn_task_cli_run(const ip_task_def *d, const void *task, const char *cmd);

#endif
