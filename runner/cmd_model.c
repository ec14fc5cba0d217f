/* `ipsweep train` and `ipsweep eval`: thin wrappers over the task code
 * (core/tasks.h) that the runner's workers call too. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/tasks.h"
#include "../core/trigger.h"
#include "cli.h"
#include "commands.h"
#include "kinds.h"
#include "suggest.h"

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
    ip_train_task t;
    ip_train_task_defaults(&t);
    char norm[8] = "bn", scheme[16] = "baseline", optimizer[8] = "sgd", milestones[64] = "";
    int threads = 0, quiet = 0;
    float lr = -1, momentum = 0.9f, wd = 5e-4f;
    t.train.epochs = 2;
    cli_opt opts[] = {
        {"arch", CLI_STR, t.model.arch, sizeof t.model.arch, "NAME", "small-p | small-p-narrow | small-p-wide | alexnet-p | resnet18-p"},
        {"norm", CLI_STR, norm, sizeof norm, "bn|gn", "normalisation (default bn)"},
        {"scheme", CLI_STR, scheme, sizeof scheme, "S", "baseline | v1 | v2 | v3 (default baseline)"},
        {"passport-layers", CLI_STR, t.model.passport_layers, sizeof t.model.passport_layers, "LIST",
         "default | none | comma list of blocks, e.g. block1,block2"},
        {"signature", CLI_STR, t.signature, sizeof t.signature, "TEXT", "text embedded in each passport layer"},
        {"triggers", CLI_SIZE, &t.triggers, 0, "N", "v3: trigger set size (default 100, docs/passports.md)"},
        {"data", CLI_STR, t.data, sizeof t.data, "KIND:PATH", "fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR, synthetic:N"},
        {"train-limit", CLI_SIZE, &t.train_limit, 0, "N", "use the first N training images (default all)"},
        {"test-limit", CLI_SIZE, &t.test_limit, 0, "N", "use the first N test images (default all)"},
        {"epochs", CLI_INT, &t.train.epochs, 0, "N", "epochs (default 2)"},
        {"batch", CLI_INT, &t.train.batch, 0, "N", "minibatch size (default 64)"},
        {"optimizer", CLI_STR, optimizer, sizeof optimizer, "sgd|adam", "optimiser (default sgd)"},
        {"lr", CLI_FLOAT, &lr, 0, "X", "learning rate (default 0.01 sgd, 0.001 adam)"},
        {"momentum", CLI_FLOAT, &momentum, 0, "X", "SGD momentum (default 0.9)"},
        {"wd", CLI_FLOAT, &wd, 0, "X", "weight decay (default 5e-4)"},
        {"milestones", CLI_STR, milestones, sizeof milestones, "E1,E2", "epochs where lr is multiplied by 0.1"},
        {"augment", CLI_FLAG, &t.train.augment, 0, NULL, "random crop (pad 4) + horizontal flip"},
        {"seed", CLI_U64, &t.seed, 0, "N", "seed for init, shuffling, augmentation (default 1)"},
        {"out", CLI_STR, t.out, sizeof t.out, "FILE.h5", "checkpoint to write (atomically)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores, 1 per MPI rank)"},
        {"quiet", CLI_FLAG, &quiet, 0, NULL, "no per-epoch progress on stderr"},
    };
    cli_cmd c = {"train", "ipsweep train --data KIND:PATH [options]",
                 "Trains one model, prints its metrics as key=value and saves the checkpoint.", opts,
                 (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (!t.data[0]) return cli_error("train", "--data is required (e.g. fashion-mnist:/usr/share/datasets/fashion-mnist)");
    if (ip_norm_parse(norm, &t.model.norm) != 0) return cli_error("train", "--norm must be bn or gn, got \"%s\"", norm);
    if (ip_scheme_parse(scheme, &t.model.scheme) != 0)
        return cli_error("train", "--scheme must be baseline, v1, v2 or v3, got \"%s\"", scheme);
    ip_opt_kind ok;
    if (strcmp(optimizer, "sgd") == 0) ok = IP_OPT_SGD;
    else if (strcmp(optimizer, "adam") == 0) ok = IP_OPT_ADAM;
    else return cli_error("train", "--optimizer must be sgd or adam, got \"%s\"", optimizer);
    ip_optim_defaults(&t.train.opt, ok);
    if (lr > 0) t.train.opt.lr = lr;
    else if (lr != -1) return cli_error("train", "--lr must be positive");
    t.train.opt.momentum = momentum;
    t.train.opt.weight_decay = wd;
    ip_err me = {{0}};
    if (rn_milestones_parse(milestones, &t.train.opt, &me) != 0)
        return cli_error("train", "--%s", me.msg);
    if (t.train.epochs < 0 || t.train.batch < 1) return cli_error("train", "--epochs must be >= 0 and --batch >= 1");
    if (t.triggers < 1 || t.triggers > IP_TRIGGER_MAX_COUNT)
        return cli_error("train", "--triggers must be 1..%d", IP_TRIGGER_MAX_COUNT);
    t.train.verbose = !quiet;
    t.train.seed = t.seed;
    if (train_precheck(&t) != CLI_OK) return 2;
    int nthreads = ip_set_threads(threads);
    if (!quiet)
        fprintf(stderr, "train: %s %s/%s on %s, %d epochs, batch %d, %d BLAS threads\n", t.model.arch,
                ip_scheme_name(t.model.scheme), ip_norm_name(t.model.norm), t.data, t.train.epochs, t.train.batch,
                nthreads);
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    rc = ip_task_train(&t, &mt, &e);
    if (rc != 0) {
        fprintf(stderr, "ipsweep train: %s\n", e.msg);
        ip_metrics_free(&mt);
        return ip_err_exit_code(&e);
    }
    ip_metrics_print(&mt, stdout);
    if (t.out[0] && !quiet) fprintf(stderr, "train: checkpoint written to %s\n", t.out);
    ip_metrics_free(&mt);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    ip_eval_task t;
    ip_eval_task_defaults(&t);
    char branch[16] = "";
    int threads = 0;
    cli_opt opts[] = {
        {"model", CLI_STR, t.model_path, sizeof t.model_path, "FILE.h5", "checkpoint to evaluate"},
        {"data", CLI_STR, t.data, sizeof t.data, "KIND:PATH", "dataset source (its test split is used)"},
        {"test-limit", CLI_SIZE, &t.test_limit, 0, "N", "use the first N test images (default all)"},
        {"batch", CLI_INT, &t.batch, 0, "N", "evaluation batch (default 256)"},
        {"branch", CLI_STR, branch, sizeof branch, "private|public", "passport branch for v2/v3 models (default private)"},
        {"predictions", CLI_STR, t.predictions, sizeof t.predictions, "FILE", "write one predicted label per line"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads"},
    };
    cli_cmd c = {"eval", "ipsweep eval --model FILE.h5 --data KIND:PATH [options]",
                 "Evaluates a checkpoint on a dataset's test split and prints test_acc (and, for passport\n"
                 "models, the signature detection rate) as key=value.",
                 opts, (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (!t.model_path[0] || !t.data[0]) return cli_error("eval", "--model and --data are required");
    if (t.batch < 1) return cli_error("eval", "--batch must be >= 1");
    if (branch[0]) {
        if (strcmp(branch, "private") == 0) t.branch = IP_BRANCH_PRIVATE;
        else if (strcmp(branch, "public") == 0) t.branch = IP_BRANCH_PUBLIC;
        else return cli_error("eval", "--branch must be private or public, got \"%s\"", branch);
    }
    {
        /* bad input (a missing or unreadable checkpoint or data, or data of the
         * wrong shape) is an argument error: exit 2 before any work */
        ip_model m = {0};
        ip_dataset d = {0};
        ip_err pe = {{0}};
        int bad = ip_task_open(&m, &d, t.model_path, t.data, 1, &pe) != 0;
        ip_model_free(&m);
        ip_data_free(&d);
        if (bad) return cli_error("eval", "%s", pe.msg);
    }
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
