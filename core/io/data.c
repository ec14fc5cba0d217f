/* Dataset loaders (IDX, CIFAR binary, synthetic), normalisation, shuffling
 * and augmentation. See data.h. */
#include "data.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../util/checked.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_CLASSES 10

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (3 * CIFAR_SIDE * CIFAR_SIDE)
#define CIFAR_MAX_FILES 16

#define AUG_PAD 4

static void set_name(ip_dataset *d, const char *name) { snprintf(d->name, sizeof d->name, "%s", name); }

static void reset(ip_dataset *d) {
    memset(d, 0, sizeof *d);
    for (int ch = 0; ch < 4; ch++) d->std[ch] = 1.f;
}

void ip_data_free(ip_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->y);
    reset(d);
}

/* Allocates x and y for n samples of c*h*w; d must be reset. */
static int alloc_set(ip_dataset *d, size_t n, int c, int h, int w, int classes, ip_err *e) {
    size_t sample = (size_t)c * (size_t)h * (size_t)w;
    if (n > 0 && sample > SIZE_MAX / sizeof(float) / n)
        return ip_fail_input(e, "dataset of %zu samples of %dx%dx%d is too large", n, c, h, w);
    d->x = malloc((n ? n * sample : 1) * sizeof *d->x);
    d->y = malloc((n ? n : 1) * sizeof *d->y);
    if (!d->x || !d->y) {
        ip_data_free(d);
        return ip_fail(e, "out of memory for %zu samples of %dx%dx%d", n, c, h, w);
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->classes = classes;
    return 0;
}

int ip_data_alloc(ip_dataset *d, size_t n, int c, int h, int w, int classes, ip_err *e) {
    reset(d);
    return alloc_set(d, n, c, h, w, classes, e);
}

int ip_data_copy(ip_dataset *dst, const ip_dataset *src, ip_err *e) {
    ip_dataset d;
    if (ip_data_alloc(&d, src->n, src->c, src->h, src->w, src->classes, e) != 0) return -1;
    memcpy(d.x, src->x, src->n * (size_t)src->c * src->h * src->w * sizeof *d.x);
    memcpy(d.y, src->y, src->n * sizeof *d.y);
    memcpy(d.mean, src->mean, sizeof d.mean);
    memcpy(d.std, src->std, sizeof d.std);
    d.normalised = src->normalised;
    memcpy(d.name, src->name, sizeof d.name);
    memcpy(d.origin, src->origin, sizeof d.origin);
    *dst = d;
    return 0;
}

/* ---------------------------------------------------------------- IDX --- */

/* Reads exactly len bytes; returns 0, or -1 on a short read / error. */
static int gz_read_all(gzFile f, void *buf, size_t len) {
    unsigned char *p = buf;
    while (len > 0) {
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int got = gzread(f, p, chunk);
        if (got <= 0) return -1;
        p += got;
        len -= (size_t)got;
    }
    return 0;
}

/* Reads up to want bytes into a buffer that grows only as data arrives: the
 * count in a header is a claim, and a gzip file's size says nothing about
 * how much it holds, so memory follows what is actually there, never the
 * claim (a header claiming 4,294,967,295 images costs nothing). *got < want
 * means the file ended early. *out is malloc'ed (free it also on failure). */
static int gz_read_grow(gzFile f, const char *path, size_t want, unsigned char **out, size_t *got, ip_err *e) {
    const size_t first = (size_t)1 << 20;
    size_t cap = want < first ? want : first, n = 0;
    unsigned char *buf = malloc(cap ? cap : 1);
    *out = buf;
    *got = 0;
    if (!buf) return ip_fail(e, "%s: out of memory", path);
    while (n < want) {
        if (n == cap) {
            size_t next = cap > want / 2 ? want : 2 * cap;
            unsigned char *nb = realloc(buf, next);
            if (!nb) return ip_fail(e, "%s: out of memory after reading %zu bytes", path, n);
            *out = buf = nb;
            cap = next;
        }
        size_t room = cap - n;
        unsigned chunk = room > (1u << 30) ? (1u << 30) : (unsigned)room;
        int r = gzread(f, buf + n, chunk);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            return ip_fail_input(e, "%s: corrupt compressed data after %zu bytes (%s)", path, n,
                                 msg && msg[0] ? msg : "zlib error");
        }
        if (r == 0) break; /* end of file */
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static gzFile gz_open_read(const char *path, ip_err *e) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) ip_fail_input(e, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    return f;
}

/* Reads an IDX header: magic and ndims big-endian dimensions. */
static int idx_header(gzFile f, const char *path, uint32_t magic, int ndims, uint32_t *dims, ip_err *e) {
    unsigned char b[16];
    if (gz_read_all(f, b, 4) != 0) return ip_fail_input(e, "%s: truncated IDX header (no magic number)", path);
    uint32_t m = be32(b);
    if (m != magic) return ip_fail_input(e, "%s: bad IDX magic 0x%08x (expected 0x%08x)", path, m, magic);
    if (gz_read_all(f, b, 4 * (size_t)ndims) != 0) return ip_fail_input(e, "%s: truncated IDX header", path);
    for (int i = 0; i < ndims; i++) dims[i] = be32(b + 4 * i);
    return 0;
}

/* Both headers of an IDX split, checked: sizes within the limits, as many
 * labels as images, not empty. */
static int idx_headers(gzFile fi, gzFile fl, const char *images_path, const char *labels_path, uint32_t *di,
                       uint32_t *dl, ip_err *e) {
    if (idx_header(fi, images_path, IDX_MAGIC_IMAGES, 3, di, e) != 0) return -1;
    if (idx_header(fl, labels_path, IDX_MAGIC_LABELS, 1, dl, e) != 0) return -1;
    if (di[1] == 0 || di[2] == 0 || di[1] > IP_DATA_MAX_SIDE || di[2] > IP_DATA_MAX_SIDE)
        return ip_fail_input(e, "%s: bad image size %ux%u in the header (sides must be 1..%d)", images_path, di[1],
                             di[2], IP_DATA_MAX_SIDE);
    if (di[0] != dl[0])
        return ip_fail_input(e, "%s has %u images but %s has %u labels", images_path, di[0], labels_path, dl[0]);
    if (di[0] == 0) return ip_fail_input(e, "%s: the header says 0 images: the split is empty", images_path);
    return 0;
}

/* Reads n labels (growing with the data, gz_read_grow) and checks each is a class. */
static int idx_labels(gzFile fl, const char *labels_path, size_t n, uint32_t claimed, unsigned char **lab, ip_err *e) {
    size_t got;
    if (gz_read_grow(fl, labels_path, n, lab, &got, e) != 0) return -1;
    if (got < n)
        return ip_fail_input(e, "%s: truncated: the header claims %u labels but the file holds %zu", labels_path,
                             claimed, got);
    for (size_t i = 0; i < n; i++)
        if ((*lab)[i] >= IDX_CLASSES)
            return ip_fail_input(e, "%s: label %u of sample %zu is out of range 0..%d", labels_path, (*lab)[i], i,
                                 IDX_CLASSES - 1);
    return 0;
}

int ip_data_load_idx(ip_dataset *d, const char *images_path, const char *labels_path, size_t limit, ip_err *e) {
    reset(d);
    gzFile fi = NULL, fl = NULL;
    unsigned char *pix = NULL, *lab = NULL;
    int rc = -1;
    uint32_t di[3], dl[1];

    if (!(fi = gz_open_read(images_path, e))) goto done;
    if (!(fl = gz_open_read(labels_path, e))) goto done;
    if (idx_headers(fi, fl, images_path, labels_path, di, dl, e) != 0) goto done;
    size_t n = di[0];
    if (limit > 0 && limit < n) n = limit;
    int h = (int)di[1], w = (int)di[2];
    size_t sample = (size_t)h * (size_t)w, bytes;
    if (ip_mul_size(n, sample, &bytes) != 0) {
        ip_fail_input(e, "%s: %zu images of %dx%d do not fit in memory", images_path, n, h, w);
        goto done;
    }
    size_t got;
    if (gz_read_grow(fi, images_path, bytes, &pix, &got, e) != 0) goto done;
    if (got < bytes) {
        ip_fail_input(e, "%s: truncated: the header claims %u images of %dx%d but the file holds %zu", images_path,
                      di[0], h, w, got / sample);
        goto done;
    }
    if (idx_labels(fl, labels_path, n, dl[0], &lab, e) != 0) goto done;
    if (alloc_set(d, n, 1, h, w, IDX_CLASSES, e) != 0) {
        ip_failctx(e, "%s", images_path);
        goto done;
    }
    for (size_t i = 0; i < bytes; i++) d->x[i] = (float)pix[i] * (1.0f / 255.0f);
    for (size_t i = 0; i < n; i++) d->y[i] = lab[i];
    set_name(d, "idx");
    snprintf(d->origin, sizeof d->origin, "%s", images_path);
    rc = 0;
done:
    free(pix);
    free(lab);
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    if (rc != 0) ip_data_free(d);
    return rc;
}

/* -------------------------------------------------------------- CIFAR --- */

/* Counts the records of the files needed for limit (0: all), checking each
 * file's size is a positive multiple of the record. */
static int cifar_count(const char *const *paths, int npaths, int cifar100, size_t limit, size_t *total_out,
                       int *used_out, ip_err *e) {
    const size_t rec = (cifar100 ? 2 : 1) + CIFAR_PIXELS;
    const char *kind = cifar100 ? "cifar100" : "cifar10";
    size_t total = 0;
    int used = 0;
    for (int i = 0; i < npaths && (limit == 0 || total < limit); i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) return ip_fail_input(e, "cannot open %s: %s", paths[i], strerror(errno));
        if (!S_ISREG(st.st_mode)) return ip_fail_input(e, "%s: not a regular file", paths[i]);
        size_t size = (size_t)st.st_size;
        if (size == 0 || size % rec != 0)
            return ip_fail_input(e, "%s: truncated (%zu bytes is not a positive multiple of the %zu-byte %s record)",
                           paths[i], size, rec, kind);
        if (ip_add_size(total, size / rec, &total) != 0) return ip_fail_input(e, "%s: too many records", paths[i]);
        used++;
    }
    *total_out = total;
    *used_out = used;
    return 0;
}

/* The labels of record j of path (r: the record's first bytes). */
static int cifar_check_labels(const unsigned char *r, int cifar100, const char *path, size_t j, ip_err *e) {
    const int classes = cifar100 ? 100 : 10;
    unsigned label = r[cifar100 ? 1 : 0];
    if (label >= (unsigned)classes)
        return ip_fail_input(e, "%s: label %u of record %zu is out of range 0..%d", path, label, j, classes - 1);
    if (cifar100 && r[0] >= 20)
        return ip_fail_input(e, "%s: coarse label %u of record %zu is out of range 0..19", path, r[0], j);
    return 0;
}

int ip_data_load_cifar(ip_dataset *d, const char *const *paths, int npaths, int cifar100, size_t limit,
                       ip_err *e) {
    reset(d);
    const size_t lab = cifar100 ? 2 : 1, rec = lab + CIFAR_PIXELS;
    const int classes = cifar100 ? 100 : 10;
    const char *kind = cifar100 ? "cifar100" : "cifar10";
    if (npaths < 1) return ip_fail_input(e, "%s: no batch files given", kind);

    size_t total = 0;
    int used = 0;
    if (cifar_count(paths, npaths, cifar100, limit, &total, &used, e) != 0) return -1;
    size_t n = (limit > 0 && limit < total) ? limit : total;
    if (alloc_set(d, n, 3, CIFAR_SIDE, CIFAR_SIDE, classes, e) != 0) return ip_failctx(e, "%s", paths[0]);

    unsigned char *r = malloc(rec);
    FILE *f = NULL;
    int rc = -1;
    if (!r) {
        ip_fail(e, "%s: out of memory", kind);
        goto done;
    }
    size_t k = 0;
    for (int i = 0; i < used && k < n; i++) {
        if (!(f = fopen(paths[i], "rb"))) {
            ip_fail_input(e, "cannot open %s: %s", paths[i], strerror(errno));
            goto done;
        }
        for (size_t j = 0; k < n; j++, k++) {
            size_t got = fread(r, 1, rec, f);
            if (got == 0 && feof(f)) break;
            if (got != rec) {
                ip_fail_input(e, "%s: truncated record %zu", paths[i], j);
                goto done;
            }
            if (cifar_check_labels(r, cifar100, paths[i], j, e) != 0) goto done;
            d->y[k] = (int32_t)r[lab - 1];
            float *x = d->x + k * CIFAR_PIXELS;
            const unsigned char *p = r + lab;
            for (size_t q = 0; q < CIFAR_PIXELS; q++) x[q] = (float)p[q] * (1.0f / 255.0f);
        }
        fclose(f);
        f = NULL;
    }
    if (k != n) {
        ip_fail_input(e, "%s: files shrank while reading (%zu of %zu records)", kind, k, n);
        goto done;
    }
    set_name(d, kind);
    if (used > 1) snprintf(d->origin, sizeof d->origin, "%s (+%d more)", paths[0], used - 1);
    else snprintf(d->origin, sizeof d->origin, "%s", paths[0]);
    rc = 0;
done:
    if (f) fclose(f);
    free(r);
    if (rc != 0) ip_data_free(d);
    return rc;
}

/* ---------------------------------------------------------- synthetic --- */

/* Each class has a smooth prototype per channel: a coarse G x G grid of
 * uniform values, bilinearly upsampled and contrast-stretched. A sample is its
 * class prototype shifted by up to `shift` pixels, plus Gaussian pixel noise and
 * a small brightness jitter, clipped to [0,1]. Prototypes come from (seed,
 * "synthetic-proto"); samples from (seed, "synthetic-train"/"synthetic-test", i). */
#define SYN_GRID 4
#define SYN_NOISE 0.15f
#define SYN_BRIGHT 0.05f

static float proto_at(const float *grid, int h, int w, int i, int j) {
    /* bilinear over a SYN_GRID x SYN_GRID grid spanning the image */
    float gy = h > 1 ? (float)i * (SYN_GRID - 1) / (float)(h - 1) : 0.f;
    float gx = w > 1 ? (float)j * (SYN_GRID - 1) / (float)(w - 1) : 0.f;
    int y0 = (int)gy, x0 = (int)gx;
    if (y0 > SYN_GRID - 2) y0 = SYN_GRID - 2;
    if (x0 > SYN_GRID - 2) x0 = SYN_GRID - 2;
    float fy = gy - (float)y0, fx = gx - (float)x0;
    const float *g = grid;
    float a = g[y0 * SYN_GRID + x0], b = g[y0 * SYN_GRID + x0 + 1];
    float c = g[(y0 + 1) * SYN_GRID + x0], dd = g[(y0 + 1) * SYN_GRID + x0 + 1];
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * dd);
}

int ip_data_synthetic(ip_dataset *d, size_t n, int c, int h, int w, int classes, uint64_t seed, ip_split split,
                      ip_err *e) {
    reset(d);
    if (n == 0 || c < 1 || c > IP_DATA_MAX_CHANNELS || h < 1 || w < 1 || h > IP_DATA_MAX_SIDE ||
        w > IP_DATA_MAX_SIDE || classes < 1 || classes > IP_DATA_MAX_CLASSES)
        return ip_fail_input(e, "bad synthetic spec: %zu samples of %dx%dx%d, %d classes (need n>0, 1<=C<=%d, H,W in "
                          "1..%d, K 1..%d)",
                       n, c, h, w, classes, IP_DATA_MAX_CHANNELS, IP_DATA_MAX_SIDE, IP_DATA_MAX_CLASSES);
    if (split != IP_SPLIT_TRAIN && split != IP_SPLIT_TEST) return ip_fail_input(e, "synthetic: bad split %d", (int)split);
    if (alloc_set(d, n, c, h, w, classes, e) != 0) return -1;

    size_t plane = (size_t)h * (size_t)w, sample = (size_t)c * plane;
    float *proto = malloc((size_t)classes * sample * sizeof *proto);
    if (!proto) {
        ip_data_free(d);
        return ip_fail(e, "synthetic: out of memory for %d prototypes", classes);
    }
    ip_rng r;
    ip_rng_init(&r, seed, ip_stream("synthetic-proto", 0));
    for (int k = 0; k < classes; k++) {
        for (int ch = 0; ch < c; ch++) {
            float grid[SYN_GRID * SYN_GRID];
            for (int q = 0; q < SYN_GRID * SYN_GRID; q++) grid[q] = ip_rng_uniform(&r);
            float *p = proto + ((size_t)k * c + ch) * plane;
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) {
                    /* stretch contrast around 0.5 so classes are well separated */
                    float v = 0.5f + 1.6f * (proto_at(grid, h, w, i, j) - 0.5f);
                    p[(size_t)i * w + j] = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
                }
        }
    }

    int shift = (h < w ? h : w) >= 20 ? 2 : 1;
    if ((h < w ? h : w) < 4) shift = 0;
    const char *stream = split == IP_SPLIT_TRAIN ? "synthetic-train" : "synthetic-test";
    for (size_t s = 0; s < n; s++) {
        ip_rng_init(&r, seed, ip_stream(stream, s));
        int k = (int)ip_rng_below(&r, (uint32_t)classes);
        int dy = shift ? (int)ip_rng_below(&r, 2 * shift + 1) - shift : 0;
        int dx = shift ? (int)ip_rng_below(&r, 2 * shift + 1) - shift : 0;
        float bright = ip_rng_range(&r, -SYN_BRIGHT, SYN_BRIGHT);
        d->y[s] = k;
        float *x = d->x + s * sample;
        for (int ch = 0; ch < c; ch++) {
            const float *p = proto + ((size_t)k * c + ch) * plane;
            for (int i = 0; i < h; i++) {
                int si = i - dy;
                si = si < 0 ? 0 : (si >= h ? h - 1 : si); /* edge-replicate the shift */
                for (int j = 0; j < w; j++) {
                    int sj = j - dx;
                    sj = sj < 0 ? 0 : (sj >= w ? w - 1 : sj);
                    float v = p[(size_t)si * w + sj] + bright + SYN_NOISE * ip_rng_normal(&r);
                    x[(size_t)ch * plane + (size_t)i * w + j] = v < 0.f ? 0.f : (v > 1.f ? 1.f : v);
                }
            }
        }
    }
    free(proto);
    set_name(d, "synthetic");
    return 0;
}

/* ------------------------------------------------------ source parsing --- */

typedef enum { SRC_SYNTHETIC, SRC_IDX, SRC_CIFAR10, SRC_CIFAR100 } src_kind;

/* The kinds of source: the one list (loading, ip_data_probe and ip_data_check_source
 * all look a kind up here; KINDS_TEXT is the list as messages print it). */
static const char *const kind_names[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"};
static const src_kind kind_of[] = {SRC_IDX, SRC_IDX, SRC_CIFAR10, SRC_CIFAR100, SRC_SYNTHETIC};
#define NKINDS ((int)(sizeof kind_names / sizeof *kind_names))
#define KINDS_TEXT "fashion-mnist, mnist, cifar10, cifar100, synthetic"

/* 0 and *k when name is a kind, else -1. */
static int lookup_kind(const char *name, src_kind *k) {
    for (int i = 0; i < NKINDS; i++)
        if (strcmp(name, kind_names[i]) == 0) return *k = kind_of[i], 0;
    return -1;
}

/* The directory layouts: the one home of the file names (resolve lists one
 * split's files to open, check_files all files to report the missing ones).
 * IDX: [split][images, labels], each as name.gz or name. */
static const char *const idx_files[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                            {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};

/* CIFAR: the batch files of a split (their count is returned) and the
 * subdirectory of DIR they may be in (the archives unpack into it). */
static int cifar_files(int c100, ip_split split, const char *const **names, const char **sub) {
    static const char *const train10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test10[] = {"test_batch.bin"}, *const train100[] = {"train.bin"},
                             *const test100[] = {"test.bin"};
    const int train = split == IP_SPLIT_TRAIN;
    *sub = c100 ? "cifar-100-binary" : "cifar-10-batches-bin";
    *names = c100 ? (train ? train100 : test100) : (train ? train10 : test10);
    return (!c100 && train) ? 5 : 1;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory of a CIFAR split: DIR when it holds the split's first file,
 * else DIR/sub (whether that holds it is the caller's check). -1 when the
 * name does not fit base. */
static int cifar_base(char *base, size_t cap, const char *dir, const char *first, const char *sub) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, first);
    int m = file_exists(p) ? snprintf(base, cap, "%s", dir) : snprintf(base, cap, "%s/%s", dir, sub);
    return m < 0 || (size_t)m >= cap ? -1 : 0;
}

/* Picks DIR/base.gz if it exists, else DIR/base; fails naming both when neither does. */
static int idx_path(char *out, size_t cap, const char *kind, const char *dir, const char *base, ip_err *e) {
    int m = snprintf(out, cap, "%s/%s.gz", dir, base);
    if (m < 0 || (size_t)m >= cap) return ip_fail_input(e, "%s: directory name too long: %s", kind, dir);
    if (file_exists(out)) return 0;
    snprintf(out, cap, "%s/%s", dir, base);
    if (file_exists(out)) return 0;
    return ip_fail_input(e, "%s: missing file: neither %s/%s.gz nor %s/%s exists", kind, dir, base, dir, base);
}

static int parse_size(const char **s, unsigned long long *v) {
    char *end;
    if (**s < '0' || **s > '9') return -1;
    errno = 0;
    *v = strtoull(*s, &end, 10);
    if (errno || end == *s) return -1;
    *s = end;
    return 0;
}

/* "N[xCxHxW][/K]" (the part after "synthetic:") -> N and dims {C, H, W, K};
 * -1 when malformed or out of the limits (the callers word the message). */
static int synthetic_dims(const char *spec, size_t *n_out, int *dims) {
    unsigned long long n, c = 1, h = 28, w = 28, k = 10;
    const char *s = spec;
    int ok = parse_size(&s, &n) == 0;
    if (ok && *s == 'x') {
        s++;
        ok = parse_size(&s, &c) == 0 && *s++ == 'x' && parse_size(&s, &h) == 0 && *s++ == 'x' &&
             parse_size(&s, &w) == 0;
    }
    if (ok && *s == '/') {
        s++;
        ok = parse_size(&s, &k) == 0;
    }
    if (!ok || *s != '\0' || n == 0 || c < 1 || c > IP_DATA_MAX_CHANNELS || h < 1 || h > IP_DATA_MAX_SIDE || w < 1 ||
        w > IP_DATA_MAX_SIDE || k < 1 || k > IP_DATA_MAX_CLASSES || n > (unsigned long long)SIZE_MAX)
        return -1;
    *n_out = (size_t)n;
    dims[0] = (int)c, dims[1] = (int)h, dims[2] = (int)w, dims[3] = (int)k;
    return 0;
}

static int parse_synthetic(const char *spec, size_t *n_out, int *dims, ip_err *e) {
    if (synthetic_dims(spec, n_out, dims) == 0) return 0;
    return ip_fail_input(e, "bad synthetic spec \"synthetic:%s\" (expected synthetic:N[xCxHxW][/K], N>0, C 1..%d, "
                            "H,W 1..%d, K 1..%d)",
                         spec, IP_DATA_MAX_CHANNELS, IP_DATA_MAX_SIDE, IP_DATA_MAX_CLASSES);
}

static int load_synthetic_spec(ip_dataset *d, const char *spec, ip_split split, size_t limit, ip_err *e) {
    size_t nn = 0;
    int dm[4] = {0};
    if (parse_synthetic(spec, &nn, dm, e) != 0) return -1;
    if (limit > 0 && limit < nn) nn = limit;
    if (ip_data_synthetic(d, nn, dm[0], dm[1], dm[2], dm[3], IP_DATA_SYNTHETIC_SEED, split, e) != 0) return -1;
    snprintf(d->origin, sizeof d->origin, "synthetic:%s", spec);
    return 0;
}

/* The files of one split of a source (loading and ip_data_probe both go
 * through resolve to find them). */
typedef struct split_files {
    src_kind kind;
    char name[32];            /* "fashion-mnist", ... */
    const char *arg;          /* what follows "kind:" */
    int npaths;               /* IDX: images, labels; CIFAR: the batch files */
    char paths[5][4400];
} split_files;

static int resolve(const char *source, ip_split split, split_files *sf, ip_err *e) {
    if (!source) return ip_fail_input(e, "no data source given");
    const char *colon = strchr(source, ':');
    if (!colon)
        return ip_fail_input(e, "data source \"%s\" is not of the form kind:path (kinds: " KINDS_TEXT ")", source);
    size_t klen = (size_t)(colon - source);
    const char *arg = colon + 1;
    char *kind = sf->name;
    if (klen >= sizeof sf->name) klen = sizeof sf->name - 1;
    memcpy(kind, source, klen);
    kind[klen] = '\0';
    sf->arg = arg;
    sf->npaths = 0;
    if (split != IP_SPLIT_TRAIN && split != IP_SPLIT_TEST) return ip_fail_input(e, "%s: bad split %d", kind, (int)split);

    if (lookup_kind(kind, &sf->kind) != 0)
        return ip_fail_input(e, "unknown data source kind \"%s\" in \"%s\" (kinds: " KINDS_TEXT ")", kind, source);
    if (sf->kind == SRC_SYNTHETIC) return 0;
    if (*arg == '\0') return ip_fail_input(e, "data source \"%s\" has an empty directory", source);

    if (sf->kind == SRC_IDX) {
        for (int i = 0; i < 2; i++)
            if (idx_path(sf->paths[i], sizeof sf->paths[i], kind, arg, idx_files[split][i], e) != 0) return -1;
        sf->npaths = 2;
        return 0;
    }

    const char *const *names, *sub;
    int nn = cifar_files(sf->kind == SRC_CIFAR100, split, &names, &sub);
    char base[4096], first[4400];
    if (cifar_base(base, sizeof base, arg, names[0], sub) != 0)
        return ip_fail_input(e, "%s: directory name too long: %s", kind, arg);
    snprintf(first, sizeof first, "%s/%s", base, names[0]);
    if (!file_exists(first))
        return ip_fail_input(e, "%s: missing file: %s found neither in %s nor in %s/%s", kind, names[0], arg, arg,
                             sub);
    for (int i = 0; i < nn; i++) snprintf(sf->paths[i], sizeof sf->paths[i], "%s/%s", base, names[i]);
    sf->npaths = nn;
    return 0;
}

static int load_source(ip_dataset *d, const char *source, ip_split split, size_t limit, ip_err *e) {
    split_files *sf = malloc(sizeof *sf);
    if (!sf) return ip_fail(e, "out of memory");
    int rc = resolve(source, split, sf, e);
    if (rc == 0) {
        if (sf->kind == SRC_SYNTHETIC) rc = load_synthetic_spec(d, sf->arg, split, limit, e);
        else if (sf->kind == SRC_IDX) {
            rc = ip_data_load_idx(d, sf->paths[0], sf->paths[1], limit, e);
            if (rc == 0) set_name(d, sf->name);
        } else {
            const char *paths[5];
            for (int i = 0; i < sf->npaths; i++) paths[i] = sf->paths[i];
            rc = ip_data_load_cifar(d, paths, sf->npaths, sf->kind == SRC_CIFAR100, limit, e);
        }
    }
    free(sf);
    return rc;
}

int ip_data_files(const char *source, ip_split split, ip_data_file_list *out, ip_err *e) {
    split_files *sf = malloc(sizeof *sf);
    if (!sf) return ip_fail(e, "out of memory");
    int rc = resolve(source, split, sf, e);
    out->n = 0;
    if (rc == 0)
        for (int i = 0; i < sf->npaths; i++) memcpy(out->path[out->n++], sf->paths[i], sizeof out->path[0]);
    free(sf);
    return rc;
}

int ip_data_load(ip_dataset *d, const char *source, ip_split split, size_t limit, ip_err *e) {
    reset(d);
    if (load_source(d, source, split, limit, e) != 0) return -1;
    if (d->n == 0) { /* every loader refuses an empty file already: this guards the rule itself */
        ip_fail_input(e, "the %s split of %s is empty (%s)", split == IP_SPLIT_TRAIN ? "train" : "test", source,
                      d->origin);
        ip_data_free(d);
        return -1;
    }
    return 0;
}

/* 1 when path is a gzip file whose trailer (ISIZE: the uncompressed size
 * mod 2^32) says it holds exactly `size` bytes: a whole file of the claimed
 * size then needs no decompression to check it (a truncated or corrupt one
 * ends in other bytes, and a crafted trailer is still caught when loading). */
static int gzip_trailer_says(const char *path, size_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char m[2] = {0}, t[4] = {0};
    int ok = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b && fseek(f, -4, SEEK_END) == 0 &&
             fread(t, 1, 4, f) == 4;
    fclose(f);
    uint32_t isize = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    return ok && isize == (uint32_t)size;
}

/* Everything of an IDX split but its pixels: headers, the claimed size
 * against what the file holds (a seek to the claimed last byte: lseek for a
 * raw file, decompression for gzip unless its trailer agrees), every label. */
static int idx_probe(const char *images_path, const char *labels_path, int *dims, ip_err *e) {
    gzFile fi = NULL, fl = NULL;
    unsigned char *lab = NULL;
    uint32_t di[3], dl[1];
    int rc = -1;
    if (!(fi = gz_open_read(images_path, e)) || !(fl = gz_open_read(labels_path, e))) goto done;
    if (idx_headers(fi, fl, images_path, labels_path, di, dl, e) != 0) goto done;
    size_t bytes;
    if (ip_mul3_size(di[0], di[1], di[2], &bytes) != 0 || bytes > (size_t)INT64_MAX - 16 ||
        (!gzip_trailer_says(images_path, 16 + bytes) &&
         (gzseek(fi, (z_off_t)(16 + bytes - 1), SEEK_SET) < 0 || gzgetc(fi) < 0))) {
        int zerr = 0;
        gzerror(fi, &zerr);
        if (zerr != Z_OK && zerr != Z_BUF_ERROR)
            ip_fail_input(e, "%s: corrupt compressed data", images_path);
        else
            ip_fail_input(e, "%s: truncated: the header claims %u images of %ux%u but the file is shorter",
                          images_path, di[0], di[1], di[2]);
        goto done;
    }
    if (idx_labels(fl, labels_path, di[0], dl[0], &lab, e) != 0) goto done;
    dims[0] = 1, dims[1] = (int)di[1], dims[2] = (int)di[2], dims[3] = IDX_CLASSES;
    rc = 0;
done:
    free(lab);
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    return rc;
}

/* Every file's size and every record's labels (read in large blocks). */
static int cifar_probe(const char *const *paths, int npaths, int cifar100, int *dims, ip_err *e) {
    size_t total;
    int used;
    if (cifar_count(paths, npaths, cifar100, 0, &total, &used, e) != 0) return -1;
    const size_t rec = (cifar100 ? 2 : 1) + CIFAR_PIXELS, per = 256;
    unsigned char *buf = malloc(rec * per);
    if (!buf) return ip_fail(e, "out of memory");
    int rc = 0;
    for (int i = 0; i < used && rc == 0; i++) {
        FILE *f = fopen(paths[i], "rb");
        if (!f) {
            rc = ip_fail_input(e, "cannot open %s: %s", paths[i], strerror(errno));
            break;
        }
        size_t j = 0, got;
        while (rc == 0 && (got = fread(buf, rec, per, f)) > 0)
            for (size_t q = 0; q < got && rc == 0; q++, j++) rc = cifar_check_labels(buf + q * rec, cifar100, paths[i], j, e);
        fclose(f);
    }
    free(buf);
    dims[0] = 3, dims[1] = dims[2] = CIFAR_SIDE, dims[3] = cifar100 ? 100 : 10;
    return rc;
}

int ip_data_probe(const char *source, ip_err *e) {
    split_files *sf = malloc(sizeof *sf);
    if (!sf) return ip_fail(e, "out of memory");
    int dims[2][4] = {{0}}, rc = 0;
    char origin[2][4400] = {"", ""};
    for (int split = 0; split < 2 && rc == 0; split++) {
        rc = resolve(source, (ip_split)split, sf, e);
        if (rc != 0) break;
        if (sf->kind == SRC_SYNTHETIC) {
            size_t n;
            rc = parse_synthetic(sf->arg, &n, dims[0], e);
            free(sf);
            return rc; /* both splits of one shape */
        }
        snprintf(origin[split], sizeof origin[split], "%s", sf->paths[0]);
        if (sf->kind == SRC_IDX) rc = idx_probe(sf->paths[0], sf->paths[1], dims[split], e);
        else {
            const char *paths[5];
            for (int i = 0; i < sf->npaths; i++) paths[i] = sf->paths[i];
            rc = cifar_probe(paths, sf->npaths, sf->kind == SRC_CIFAR100, dims[split], e);
        }
    }
    free(sf);
    if (rc != 0) return -1;
    if (memcmp(dims[0], dims[1], sizeof dims[0]) != 0)
        return ip_fail_input(e,
                             "data %s: the train split (%s: %dx%dx%d, %d classes) and the test split (%s: %dx%dx%d, "
                             "%d classes) differ",
                             source, origin[0], dims[0][0], dims[0][1], dims[0][2], dims[0][3], origin[1],
                             dims[1][0], dims[1][1], dims[1][2], dims[1][3]);
    return 0;
}

/* Appends name to a ", "-separated list of missing files. */
static void add_missing(char *list, size_t cap, int *n, const char *name) {
    size_t l = strlen(list);
    snprintf(list + l, cap - l, "%s%s", (*n)++ ? ", " : "", name);
}

/* The files of a directory source exist (every one missing is named, which
 * resolve's first failure would not), then ip_data_probe checks what they hold. */
static int check_files(const char *source, src_kind kind, const char *dir, ip_err *e) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ip_fail_input(e, "data directory \"%s\" does not exist", dir);
    char missing[600] = "", p[4400];
    int nmiss = 0;
    for (int split = 0; split < 2; split++) {
        if (kind == SRC_IDX) {
            for (int i = 0; i < 2; i++)
                if (idx_path(p, sizeof p, "", dir, idx_files[split][i], NULL) != 0) {
                    char nm[80];
                    snprintf(nm, sizeof nm, "%s[.gz]", idx_files[split][i]);
                    add_missing(missing, sizeof missing, &nmiss, nm);
                }
            continue;
        }
        const char *const *names, *sub;
        int nn = cifar_files(kind == SRC_CIFAR100, (ip_split)split, &names, &sub);
        char base[4096];
        int fits = cifar_base(base, sizeof base, dir, names[0], sub) == 0;
        for (int i = 0; i < nn; i++) {
            snprintf(p, sizeof p, "%s/%s", base, names[i]);
            if (!fits || !file_exists(p)) add_missing(missing, sizeof missing, &nmiss, names[i]);
        }
        if (split == 1 && nmiss) {
            size_t l = strlen(missing);
            snprintf(missing + l, sizeof missing - l, " (looked in %s and %s/%s)", dir, dir, sub);
        }
    }
    if (nmiss) return ip_fail_input(e, "missing data files in %s: %s", dir, missing);
    return ip_data_probe(source, e);
}

int ip_data_check_source(const char *source, int check_files_too, ip_suggest_fn suggest, ip_data_shape *shape,
                         ip_err *e) {
    memset(shape, 0, sizeof *shape);
    const char *colon = strchr(source, ':');
    if (!colon) return ip_fail_input(e, "expected kind:path (kinds: " KINDS_TEXT "), got \"%s\"", source);
    char kind[32];
    size_t kl = (size_t)(colon - source);
    if (kl >= sizeof kind) kl = sizeof kind - 1;
    memcpy(kind, source, kl);
    kind[kl] = '\0';
    const char *arg = colon + 1;
    src_kind k;
    if (lookup_kind(kind, &k) != 0) {
        const char *near = suggest ? suggest(kind, kind_names, NKINDS) : NULL;
        char hint[80] = "";
        if (near) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", near);
        return ip_fail_input(e, "unknown data kind \"%s\"%s (kinds: " KINDS_TEXT ")", kind, hint);
    }
    if (k == SRC_SYNTHETIC) {
        size_t n;
        int dims[4];
        if (synthetic_dims(arg, &n, dims) != 0)
            return ip_fail_input(e,
                                 "bad synthetic source \"%s\" (expected synthetic:N[xCxHxW][/K], N > 0, C 1..%d, H "
                                 "and W 1..%d)",
                                 source, IP_DATA_MAX_CHANNELS, IP_DATA_MAX_SIDE);
        shape->c = dims[0], shape->h = dims[1], shape->w = dims[2], shape->classes = dims[3];
        return 0; /* no files: a synthetic set is made, not read */
    }
    if (!*arg) return ip_fail_input(e, "\"%s\" has an empty directory", source);
    /* the shape the kind's files have (the IDX loader takes any side a header gives: 28 is the MNIST one) */
    int cifar = k != SRC_IDX;
    shape->c = cifar ? 3 : 1;
    shape->h = shape->w = cifar ? CIFAR_SIDE : 28;
    shape->classes = k == SRC_CIFAR100 ? 100 : cifar ? 10 : IDX_CLASSES;
    if (check_files_too && check_files(source, k, arg, e) != 0) {
        shape->bad_files = 1;
        return -1;
    }
    return 0;
}

int ip_data_check_splits(const ip_dataset *train, const ip_dataset *test, const char *source, ip_err *e) {
    if (train->c == test->c && train->h == test->h && train->w == test->w && train->classes == test->classes)
        return 0;
    return ip_fail_input(e,
                         "data %s: the train split (%s: %dx%dx%d, %d classes) and the test split (%s: %dx%dx%d, "
                         "%d classes) differ",
                         source, train->origin, train->c, train->h, train->w, train->classes, test->origin, test->c,
                         test->h, test->w, test->classes);
}

/* ------------------------------------------------------- normalisation --- */

void ip_data_channel_stats(const ip_dataset *d, float *mean, float *std) {
    size_t plane = (size_t)d->h * (size_t)d->w, sample = (size_t)d->c * plane;
    for (int ch = 0; ch < d->c; ch++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < d->n; i++) {
            const float *p = d->x + i * sample + (size_t)ch * plane;
            for (size_t q = 0; q < plane; q++) s += p[q];
        }
        double cnt = (double)d->n * (double)plane;
        double m = cnt > 0 ? s / cnt : 0.0;
        /* second pass around the mean: no cancellation */
        for (size_t i = 0; i < d->n; i++) {
            const float *p = d->x + i * sample + (size_t)ch * plane;
            for (size_t q = 0; q < plane; q++) {
                double t = p[q] - m;
                ss += t * t;
            }
        }
        double sd = cnt > 0 ? sqrt(ss / cnt) : 1.0;
        mean[ch] = (float)m;
        std[ch] = sd > 0 ? (float)sd : 1.f; /* a constant channel is left unscaled */
    }
}

void ip_data_normalise(ip_dataset *d, const float *mean, const float *std) {
    size_t plane = (size_t)d->h * (size_t)d->w, sample = (size_t)d->c * plane;
    for (int ch = 0; ch < d->c && ch < 4; ch++) {
        /* undo an earlier normalisation so the recorded stats always refer to [0,1] pixels */
        float m0 = d->normalised ? d->mean[ch] : 0.f, s0 = d->normalised ? d->std[ch] : 1.f;
        float m = mean[ch], s = std[ch];
        for (size_t i = 0; i < d->n; i++) {
            float *p = d->x + i * sample + (size_t)ch * plane;
            for (size_t q = 0; q < plane; q++) p[q] = ((p[q] * s0 + m0) - m) / s;
        }
        d->mean[ch] = m;
        d->std[ch] = s;
    }
    d->normalised = 1;
}

void ip_data_input_range(const ip_dataset *d, float *lo, float *hi) {
    for (int ch = 0; ch < d->c && ch < 4; ch++) {
        float m = d->normalised ? d->mean[ch] : 0.f, s = d->normalised ? d->std[ch] : 1.f;
        lo[ch] = (0.f - m) / s;
        hi[ch] = (1.f - m) / s;
    }
}

/* -------------------------------------------------- subsets & batches --- */

void ip_data_subset(ip_dataset *d, size_t start, size_t count) {
    if (start > d->n) start = d->n;
    if (count > d->n - start) count = d->n - start;
    size_t sample = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    if (start > 0 && count > 0) {
        memmove(d->x, d->x + start * sample, count * sample * sizeof *d->x);
        memmove(d->y, d->y + start, count * sizeof *d->y);
    }
    d->n = count;
}

void ip_data_epoch_order(uint32_t *order, size_t n, uint64_t seed, uint64_t epoch) {
    ip_rng r;
    ip_rng_init(&r, seed, ip_stream("shuffle", epoch));
    ip_rng_permutation(&r, order, n);
}

void ip_data_gather(const ip_dataset *d, const uint32_t *idx, size_t b, float *x, int32_t *y, int augment,
                    ip_rng *rng) {
    const int c = d->c, h = d->h, w = d->w;
    size_t plane = (size_t)h * (size_t)w, sample = (size_t)c * plane;
    for (size_t k = 0; k < b; k++) {
        const float *src = d->x + (size_t)idx[k] * sample;
        float *dst = x + k * sample;
        y[k] = d->y[idx[k]];
        if (!augment) {
            memcpy(dst, src, sample * sizeof *dst);
            continue;
        }
        /* fixed draw order per sample: dy, dx, flip */
        int dy = (int)ip_rng_below(rng, 2 * AUG_PAD + 1) - AUG_PAD;
        int dx = (int)ip_rng_below(rng, 2 * AUG_PAD + 1) - AUG_PAD;
        int flip = ip_rng_uniform(rng) < 0.5f;
        /* out(i, j) = crop(i, flip ? w-1-j : j), crop(i, j) = src(i+dy, j+dx) or 0 outside */
        for (int ch = 0; ch < c; ch++) {
            const float *sp = src + (size_t)ch * plane;
            float *dp = dst + (size_t)ch * plane;
            for (int i = 0; i < h; i++) {
                int si = i + dy;
                float *row = dp + (size_t)i * w;
                if (si < 0 || si >= h) {
                    for (int j = 0; j < w; j++) row[j] = 0.f;
                    continue;
                }
                const float *srow = sp + (size_t)si * w;
                for (int j = 0; j < w; j++) {
                    int sj = (flip ? w - 1 - j : j) + dx;
                    row[j] = (sj >= 0 && sj < w) ? srow[sj] : 0.f;
                }
            }
        }
    }
}
