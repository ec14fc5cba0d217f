/* What the journal and results tests share (tests/test_journal.c,
 * tests/test_results.c): a scratch directory per suite and two small kinds
 * of the fixtures' own. */
#ifndef JOURNAL_FIXTURE_H
#define JOURNAL_FIXTURE_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../runner/run/journal.h"
#include "../runner/kinds/kinds.h"
#include "../runner/run/results.h"
#include "testutil.h"

/* Two small kinds of the fixtures' own (the results file takes its columns
 * from whatever kind a task has): "train" with seed and epochs, "eval" with
 * an `attack` name besides. */
typedef struct fake_task {
    int seed, epochs;
    char attack[16];
} fake_task;
static const ip_param fake_train_rows[] = {
    P_INT(fake_task, "seed", IP_F_INT, seed, 1, 0, 1000, "seed"),
    P_INT(fake_task, "epochs", IP_F_INT, epochs, 1, 0, 1000, "epochs"),
};
static const ip_param fake_eval_rows[] = {
    P_INT(fake_task, "seed", IP_F_INT, seed, 1, 0, 1000, "seed"),
    P_INT(fake_task, "epochs", IP_F_INT, epochs, 1, 0, 1000, "epochs"),
    P_STR(fake_task, "attack", attack, "", "attack"),
};
static const ip_task_def fake_train_def = {
    .name = "train",
    .doc = "",
    IP_ROWS(fake_train_rows),
    .size = sizeof(fake_task),
};
static const ip_task_def fake_eval_def = {
    .name = "eval",
    .doc = "",
    IP_ROWS(fake_eval_rows),
    .size = sizeof(fake_task),
};
static const rn_kind fake_train_kind = {&fake_train_def, RN_OUT_MODEL, NULL, NULL, NULL, NULL};
static const rn_kind fake_eval_kind = {&fake_eval_def, RN_OUT_NONE, NULL, NULL, NULL, NULL};

static char tdir[64];

static inline void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "res")); }

static inline void remove_dir(void) { tu_rmtree(tdir); }

static inline const char *tpath(const char *name) { return tu_path(tdir, name); }

static inline const char *jpath(const char *output) {
    static char b[1100];
    cr_assert_eq(rn_journal_path(b, sizeof b, output), 0);
    return b;
}

static inline long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

#endif
