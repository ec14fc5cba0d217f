/* Datasets: images as float32 (N, C, H, W) row-major (one sample contiguous,
 * PyTorch's order), labels int32. Loaders read IDX (MNIST, Fashion-MNIST; gzip
 * or raw, zlib reads both), CIFAR-10/100 binary batches, or make a synthetic
 * set for tests. Pixels are scaled to [0,1] on load; normalisation is a
 * separate, explicit step so the valid input range is known (IPGuard clips to it). */
#ifndef IP_DATA_H
#define IP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "../util/err.h"
#include "../util/rng.h"

/* The largest inputs any loader or model accepts (checked when a dataset is
 * read and when a model is built from a checkpoint's stored shape): 1..4
 * channels, sides 1..4096, 2..100000 classes. They keep every per-sample
 * size of every supported architecture inside int (BLAS dimensions), so a
 * crafted file gets an error naming it instead of an overflow. */
#define IP_DATA_MAX_CHANNELS 4
#define IP_DATA_MAX_SIDE 4096
#define IP_DATA_MAX_CLASSES 100000

typedef struct ip_dataset {
    size_t n;
    int c, h, w, classes;
    float *x;          /* n * c * h * w */
    int32_t *y;        /* n */
    float mean[4], std[4];   /* per-channel normalisation applied (0/1 when none) */
    int normalised;
    char name[64];     /* "fashion-mnist", "cifar10", ... */
    char origin[512];  /* the file it was read from (the images file, the first batch), or the source
                        * ("synthetic:100"), for error messages; "" when built in memory */
} ip_dataset;

typedef enum { IP_SPLIT_TRAIN = 0, IP_SPLIT_TEST = 1 } ip_split;

/* Loads a dataset from a "kind:path" source string:
 *   fashion-mnist:DIR, mnist:DIR   DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 *   cifar10:DIR                    DIR holds data_batch_{1..5}.bin / test_batch.bin
 *                                  (also accepts DIR/cifar-10-batches-bin/)
 *   cifar100:DIR                   DIR holds train.bin / test.bin (fine labels; also DIR/cifar-100-binary/)
 *   synthetic:N[xCxHxW][/K]        deterministic, learnable synthetic set (default 1x28x28, 10 classes);
 *                                  train and test splits differ.
 * `limit` > 0 keeps the first `limit` samples. A split is never empty (an
 * error names the file). The samples are a function of the source string
 * alone: synthetic data are drawn from IP_DATA_SYNTHETIC_SEED, never from a
 * task's seed, so every task of a spec (train, eval, prune, attacks, ...)
 * sees the same data. Every failure is a bad input (e->input) except running
 * out of memory. */
int ip_data_load(ip_dataset *d, const char *source, ip_split split, size_t limit, ip_err *e);
/* The files ip_data_load reads for one split of a source (none for a
 * synthetic one, which is made, not read): what a cache of loaded sets
 * (core/io/cache.h) checks for changes. Errors as ip_data_load's. */
typedef struct ip_data_file_list {
    int n;
    char path[5][4400];
} ip_data_file_list;
int ip_data_files(const char *source, ip_split split, ip_data_file_list *out, ip_err *e);
/* Checks a source without loading its pixels, as `validate` and `run` do
 * before anything is written: the files of both splits exist, their headers
 * are valid and within the limits below, each file holds what its header
 * claims (a gzip file is decompressed to check), every label is a class,
 * no split is empty, and both splits have one sample shape. A synthetic
 * source is only parsed. Errors as ip_data_load's. */
int ip_data_probe(const char *source, ip_err *e);

/* What a source's text says about its samples (ip_data_check_source). */
typedef struct ip_data_shape {
    int c, h, w, classes; /* the sample shape and classes: a synthetic source's own, else the kind's
                           * (fashion-mnist, mnist 1x28x28/10; cifar10 3x32x32/10; cifar100 3x32x32/100) */
    int bad_files;        /* after a failure: 1 when the text is well formed but the files are not, 0 when the
                           * text itself is wrong (unknown kind, bad synthetic spec, no directory) */
} ip_data_shape;
/* "Did you mean": the closest of n candidates to a misspelt word, or NULL. A
 * parameter, so that the core words the message while the runner keeps the
 * one matcher (rn_suggest has this type). */
typedef const char *(*ip_suggest_fn)(const char *word, const char *const *cands, int n);
/* Checks a data source "kind:path" without loading it, as the spec loader
 * does: the kind is known (an unknown one gets the closest kind from suggest,
 * which may be NULL), the text is well formed, and, when check_files is set,
 * the directory exists, every file of both splits is there (all missing ones
 * named in one message) and ip_data_probe accepts what they hold. On success
 * fills shape; a failure returns -1 with one message in e (a bad input,
 * unless memory ran out) and sets shape->bad_files when the files are at
 * fault (the shape is then filled as well). A synthetic source has no files. */
int ip_data_check_source(const char *source, int check_files, ip_suggest_fn suggest, ip_data_shape *shape,
                         ip_err *e);
/* The seed of every synthetic source (ip_data_load). */
#define IP_DATA_SYNTHETIC_SEED 1
/* The train and test splits of one source must agree in sample shape and
 * classes; the error names both files and shapes. */
int ip_data_check_splits(const ip_dataset *train, const ip_dataset *test, const char *source, ip_err *e);
/* The individual loaders (paths to the actual files). */
int ip_data_load_idx(ip_dataset *d, const char *images_path, const char *labels_path, size_t limit, ip_err *e);
int ip_data_load_cifar(ip_dataset *d, const char *const *paths, int npaths, int cifar100, size_t limit,
                       ip_err *e);
int ip_data_synthetic(ip_dataset *d, size_t n, int c, int h, int w, int classes, uint64_t seed,
                      ip_split split, ip_err *e);
void ip_data_free(ip_dataset *d);
/* An empty set of n samples (x, y allocated, not initialised; not normalised). */
int ip_data_alloc(ip_dataset *d, size_t n, int c, int h, int w, int classes, ip_err *e);
/* A deep copy of src (dst must not own memory). */
int ip_data_copy(ip_dataset *dst, const ip_dataset *src, ip_err *e);

/* Per-channel mean/std over the whole set (population std). */
void ip_data_channel_stats(const ip_dataset *d, float *mean, float *std);
/* x = (x - mean[c]) / std[c]; records mean/std in d. */
void ip_data_normalise(ip_dataset *d, const float *mean, const float *std);
/* The valid input range after normalisation, per channel: [(0-mean)/std, (1-mean)/std]. */
void ip_data_input_range(const ip_dataset *d, float *lo, float *hi);

/* Keeps samples [start, start+count) (clamped), in place. */
void ip_data_subset(ip_dataset *d, size_t start, size_t count);

/* Deterministic shuffle of indices 0..n-1 for an epoch: keyed by (seed, ip_stream("shuffle", epoch)). */
void ip_data_epoch_order(uint32_t *order, size_t n, uint64_t seed, uint64_t epoch);

/* Gathers a batch of samples (by index) into x (B, C, H, W) and y (B). When
 * augment is set, applies random crop (pad 4 with zeros in normalised space, i.e. value 0)
 * and horizontal flip (p=0.5), drawn from rng. */
void ip_data_gather(const ip_dataset *d, const uint32_t *idx, size_t b, float *x, int32_t *y, int augment,
                    ip_rng *rng);

#endif
