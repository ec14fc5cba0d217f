/* Provenance: what the numbers of a run depend on besides the spec and the
 * seed. Training is bit-identical across rank and thread counts, but not
 * across CPU types, BLAS kernels (OpenBLAS picks them per CPU: its "core")
 * or compilers and flags: those may change the last bits of a sum and, over
 * thousands of SGD steps, the reported accuracies. Every results file and
 * every checkpoint records them in a /provenance group (docs/results.md,
 * docs/checkpoint.md) so two files can be told apart by their origin.
 *
 * ONE table (ip_provenance_fields) names the attributes: the writer, the
 * report and the tests all iterate it. */
#ifndef IP_PROVENANCE_H
#define IP_PROVENANCE_H

#include <stddef.h>

#include <hdf5.h>

#include "../util/err.h"

typedef struct ip_provenance {
    char software[128];        /* "ipsweep <git describe --always --dirty>" */
    char compiler[128];        /* "gcc 12.2.0" / "clang 16.0.6" */
    char cflags[1024];         /* the flags the build used (Makefile: IPSWEEP_CFLAGS) */
    char cpu_model[256];       /* /proc/cpuinfo "model name" */
    char cpu_flags[256];       /* the vector-unit flags of the CPU that change kernels (avx2, fma, avx512f, ...) */
    char blas[64];             /* "OpenBLAS" */
    char blas_version[64];     /* "0.3.21" */
    char blas_config[256];     /* openblas_get_config(): version, DYNAMIC_ARCH, threading, ... */
    char blas_core[64];        /* openblas_get_corename(): the kernels chosen for this CPU ("Haswell") */
    char blas_coretype_env[64];/* $OPENBLAS_CORETYPE ("" when unset): forces blas_core */
} ip_provenance;

typedef struct ip_provenance_field {
    const char *name;  /* attribute name in /provenance */
    size_t offset;     /* of the char[] in ip_provenance */
    size_t cap;
    const char *doc;   /* one line, for docs and --help */
} ip_provenance_field;

extern const ip_provenance_field ip_provenance_fields[];
extern const int ip_provenance_nfields;

/* The provenance of this process (computed once, then cached; thread-safe
 * after the first call). Never fails: what cannot be found is "unknown". */
const ip_provenance *ip_provenance_get(void);

/* The GNU build ID of the running executable (the linker's hash of its
 * contents, `readelf -n`) copied to out (at most cap bytes); its length, 0
 * when the executable has none. Names the exact binary where the version
 * string does not (two builds of one dirty tree share it). */
size_t ip_build_id(unsigned char *out, size_t cap);

/* The value of field i of p. */
const char *ip_provenance_value(const ip_provenance *p, int i);

/* Writes this process's provenance as string attributes of a new group
 * "provenance" in loc. Returns 0 or -1 (the caller appends ip_h5_detail). */
int ip_provenance_write_h5(hid_t loc);

#endif
