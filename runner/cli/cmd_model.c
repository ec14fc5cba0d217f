/* `ipsweep task`, `ipsweep train` and `ipsweep eval`: one task from the
 * command line, through the task code the runner's workers call too. Their
 * options come from the kinds' parameter tables (task_cli.h). */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../core/tasks/tasks.h"
#include "../../core/passport/trigger.h"
#include "cli.h"
#include "commands.h"
#include "../kinds/kinds.h"
#include "../spec/suggest.h"
#include "task_cli.h"

/* Every argument error of `train` is found before the banner and before any
 * training: one line, exit 2. The data is probed with the real loader (one
 * image of each split) and the model is built on its shape, so what counts as
 * a valid source, architecture or signature has one home: the core. */
static int train_precheck(const ip_train_task *t) {
    int known = 0;
    for (int i = 0; ip_arch_names[i] && !known; i++) known = strcmp(ip_arch_names[i], t->model.arch) == 0;
    if (!known) {
        char names[256] = "";
        int n = 0;
        for (size_t len = 0; ip_arch_names[n]; n++)
            if (len < sizeof names)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", n ? ", " : "", ip_arch_names[n]);
        const char *s = rn_suggest(t->model.arch, (const char *const *)ip_arch_names, n);
        if (s) return cli_error("train", "unknown --arch \"%s\" (did you mean %s?)", t->model.arch, s);
        return cli_error("train", "unknown --arch \"%s\" (architectures: %s)", t->model.arch, names);
    }
    if (t->out[0]) { /* the checkpoint's directory must exist: found now, not after training */
        char dir[sizeof t->out];
        snprintf(dir, sizeof dir, "%s", t->out);
        struct stat st;
        const char *d = dirname(dir);
        if (stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
            return cli_error("train", "--out %s: directory %s does not exist", t->out, d);
    }
    ip_dataset train = {0}, test = {0};
    ip_model m = {0};
    ip_err e = {{0}};
    int rc = CLI_OK;
    /* the probe checks both splits' headers, sizes, labels and shapes without
     * reading the pixels; one image of each then gives the model's shape */
    if (ip_data_probe(t->data, &e) != 0 || ip_data_load(&train, t->data, IP_SPLIT_TRAIN, 1, &e) != 0 ||
        ip_data_load(&test, t->data, IP_SPLIT_TEST, 1, &e) != 0) {
        rc = cli_error("train", "--data %s: %s", t->data, e.msg);
        goto done;
    }
    ip_model_cfg cfg = t->model;
    cfg.in_c = train.c, cfg.in_h = train.h, cfg.in_w = train.w, cfg.classes = train.classes;
    for (int c = 0; c < cfg.in_c && c < 4; c++) cfg.in_mean[c] = 0, cfg.in_std[c] = 1;
    if (ip_model_build(&m, &cfg, &e) != 0 || ip_model_init(&m, t->seed, t->signature, &e) != 0)
        rc = cli_error("train", "%s", e.msg);
done:
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}

int cmd_train(int argc, char **argv) {
    static rn_task_cli tc;
    rn_task_cli_init(&tc, &ip_train_def);
    int threads = 0, quiet = 0;
    rn_task_cli_add(&tc, (cli_opt){"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores, 1 per MPI rank)"});
    rn_task_cli_add(&tc, (cli_opt){"quiet", CLI_FLAG, &quiet, 0, NULL, "no per-epoch progress on stderr"});
    cli_cmd c = {"train", "ipsweep train --data KIND:PATH [options]",
                 "Trains one model, prints its metrics as key=value and saves the checkpoint (--out).\n"
                 "The options are the train kind's keys (docs/spec.md), with '-' for '_'.",
                 tc.opts, tc.nopts, 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    ip_train_task t;
    if (rn_task_cli_fill(&tc, "train", &t) != CLI_OK) return 2;
    t.train.verbose = !quiet;
    if (train_precheck(&t) != CLI_OK) return 2;
    int nthreads = ip_set_threads(threads);
    if (!quiet)
        fprintf(stderr, "train: %s %s/%s on %s, %d epochs, batch %d, %d BLAS threads\n", t.model.arch,
                ip_scheme_name(t.model.scheme), ip_norm_name(t.model.norm), t.data, t.train.epochs, t.train.batch,
                nthreads);
    rc = rn_task_cli_run(&ip_train_def, &t, "train");
    if (rc == 0 && t.out[0] && !quiet) fprintf(stderr, "train: checkpoint written to %s\n", t.out);
    return rc;
}

/* Bad input (a missing or unreadable checkpoint or data, or data of the
 * wrong shape) is an argument error: exit 2 before any work. */
static int open_precheck(const char *cmd, const char *model_path, const char *data) {
    ip_model m = {0};
    ip_dataset d = {0};
    ip_err pe = {{0}};
    int bad = ip_task_open(&m, &d, model_path, data, 1, &pe) != 0;
    ip_model_free(&m);
    ip_data_free(&d);
    return bad ? cli_error(cmd, "%s", pe.msg) : CLI_OK;
}

int cmd_eval(int argc, char **argv) {
    static rn_task_cli tc;
    ip_eval_task t;
    rn_task_cli_init(&tc, &ip_eval_def);
    int threads = 0;
    char predictions[sizeof t.predictions] = "";
    rn_task_cli_add(&tc, (cli_opt){"predictions", CLI_STR, predictions, sizeof predictions, "FILE", "write one predicted label per line"});
    rn_task_cli_add(&tc, (cli_opt){"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads"});
    cli_cmd c = {"eval", "ipsweep eval --model FILE.h5 --data KIND:PATH [options]",
                 "Evaluates a checkpoint on a dataset's test split and prints test_acc (and, for passport\n"
                 "models, the signature detection rate) as key=value.",
                 tc.opts, tc.nopts, 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (rn_task_cli_fill(&tc, "eval", &t) != CLI_OK) return 2;
    memcpy(t.predictions, predictions, sizeof t.predictions);
    if (open_precheck("eval", t.model_path, t.data) != CLI_OK) return 2;
    ip_set_threads(threads);
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    if (ip_task_eval(&t, &mt, &e) != 0) {
        fprintf(stderr, "ipsweep eval: %s\n", e.msg);
        ip_metrics_free(&mt);
        return ip_err_exit_code(&e);
    }
    ip_metrics_print(&mt, stdout);
    ip_metrics_free(&mt);
    return 0;
}

/* `ipsweep task KIND --key value ...`: any one task, like a spec's. */
int cmd_task(int argc, char **argv) {
    if (argc < 1 || argv[0][0] == '-') {
        int help = argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"));
        FILE *f = help ? stdout : stderr;
        fprintf(f, "usage: ipsweep task KIND [--key value ...] [--data KIND:PATH] [--out FILE]\n\n"
                   "Runs one task of any kind from the command line (the keys of docs/spec.md, with '-' for '_';\n"
                   "a reference like `model` is a file here) and prints its metrics as key=value.\n"
                   "`ipsweep task KIND --help` lists a kind's options. Kinds:");
        for (int i = 0; ip_task_defs[i]; i++) fprintf(f, " %s", ip_task_defs[i]->name);
        fputc('\n', f);
        return help ? 0 : 2;
    }
    const ip_task_def *d = ip_task_def_find(argv[0]);
    if (!d) {
        const char *names[32];
        int n = 0;
        for (; ip_task_defs[n] && n < 32; n++) names[n] = ip_task_defs[n]->name;
        const char *s = rn_suggest(argv[0], names, n);
        if (s) return cli_error("task", "unknown kind \"%s\" (did you mean %s?)", argv[0], s);
        return cli_error("task", "unknown kind \"%s\" (see ipsweep task --help)", argv[0]);
    }
    static rn_task_cli tc;
    rn_task_cli_init(&tc, d);
    int threads = 0;
    rn_task_cli_add(&tc, (cli_opt){"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores)"});
    char name[64], usage[160];
    snprintf(name, sizeof name, "task %s", d->name);
    snprintf(usage, sizeof usage, "ipsweep task %s [options]", d->name);
    cli_cmd c = {name, usage, d->doc, tc.opts, tc.nopts, 0, {0}, 0};
    int rc = cli_parse(&c, argc - 1, argv + 1);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    void *task = calloc(1, d->size);
    if (!task) return fprintf(stderr, "ipsweep task: out of memory\n"), 1;
    if (rn_task_cli_fill(&tc, name, task) != CLI_OK) {
        free(task);
        return 2;
    }
    ip_set_threads(threads);
    rc = rn_task_cli_run(d, task, name);
    free(task);
    return rc;
}
