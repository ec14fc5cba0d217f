/* What a result depends on besides its spec (provenance.h). */
#include "provenance.h"

#include <cblas.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"

#ifndef IPSWEEP_VERSION
#define IPSWEEP_VERSION "unknown"
#endif
/* The Makefile passes the flags it compiles with; a build without it says so. */
#ifndef IPSWEEP_CFLAGS
#define IPSWEEP_CFLAGS "unknown (not built by the Makefile)"
#endif

#define FIELD(n, doc) {#n, offsetof(ip_provenance, n), sizeof(((ip_provenance *)0)->n), doc}
const ip_provenance_field ip_provenance_fields[] = {
    FIELD(software, "ipsweep and its commit (git describe --always --dirty; -dirty: uncommitted changes)"),
    FIELD(compiler, "compiler and version"),
    FIELD(cflags, "compiler flags of the build (-O, -march, sanitizers, ...)"),
    FIELD(cpu_model, "CPU model (/proc/cpuinfo model name)"),
    FIELD(cpu_flags, "the CPU's vector-unit flags that select kernels (sse4_2, avx, avx2, fma, avx512*)"),
    FIELD(blas, "BLAS library"),
    FIELD(blas_version, "BLAS version"),
    FIELD(blas_config, "BLAS build configuration (openblas_get_config)"),
    FIELD(blas_core, "BLAS kernels chosen for this CPU (openblas_get_corename)"),
    FIELD(blas_coretype_env, "OPENBLAS_CORETYPE from the environment, \"\" when unset (it overrides blas_core)"),
};
#undef FIELD
const int ip_provenance_nfields = (int)(sizeof ip_provenance_fields / sizeof *ip_provenance_fields);

const char *ip_provenance_value(const ip_provenance *p, int i) {
    return (const char *)p + ip_provenance_fields[i].offset;
}

/* Flags that change which kernels OpenBLAS or the compiler's vector code
 * use, in this order; the rest of /proc/cpuinfo's long list does not. */
static const char *const cpu_flag_names[] = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq",
                                             "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile"};

static int has_word(const char *list, const char *w) {
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ' || p[-1] == '\t') && (p[n] == ' ' || p[n] == '\n' || p[n] == 0)) return 1;
    return 0;
}

/* "key\t: value\n" -> value without the newline; "" when line is another key. */
static int cpuinfo_value(const char *line, const char *key, char *out, size_t cap) {
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t' && line[n] != ':')) return 0;
    const char *v = strchr(line, ':');
    if (!v) return 0;
    v++;
    while (*v == ' ') v++;
    snprintf(out, cap, "%.*s", (int)strcspn(v, "\n"), v);
    return 1;
}

static void read_cpu(ip_provenance *p) {
    snprintf(p->cpu_model, sizeof p->cpu_model, "unknown");
    snprintf(p->cpu_flags, sizeof p->cpu_flags, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    /* flags lines are long (~1.5 KB); the first processor's are enough */
    char line[8192];
    char flags[8192] = "";
    int have_model = 0, have_flags = 0;
    while ((!have_model || !have_flags) && fgets(line, sizeof line, f)) {
        if (!have_model) have_model = cpuinfo_value(line, "model name", p->cpu_model, sizeof p->cpu_model);
        if (!have_flags) have_flags = cpuinfo_value(line, "flags", flags, sizeof flags);
    }
    fclose(f);
    if (!have_flags) return;
    size_t n = 0;
    p->cpu_flags[0] = 0;
    for (size_t i = 0; i < sizeof cpu_flag_names / sizeof *cpu_flag_names; i++)
        if (has_word(flags, cpu_flag_names[i]) && n < sizeof p->cpu_flags) {
            int w = snprintf(p->cpu_flags + n, sizeof p->cpu_flags - n, "%s%s", n ? " " : "", cpu_flag_names[i]);
            if (w > 0) n += (size_t)w;
        }
}

static void read_blas(ip_provenance *p) {
    const char *cfg = openblas_get_config(), *core = openblas_get_corename();
    snprintf(p->blas_config, sizeof p->blas_config, "%s", cfg ? cfg : "unknown");
    snprintf(p->blas_core, sizeof p->blas_core, "%s", core ? core : "unknown");
    /* the configuration starts with "OpenBLAS 0.3.21 ..." */
    char name[64] = "", ver[64] = "";
    if (cfg && sscanf(cfg, "%63s %63s", name, ver) == 2 && strcmp(name, "OpenBLAS") == 0) {
        snprintf(p->blas, sizeof p->blas, "%s", name);
        snprintf(p->blas_version, sizeof p->blas_version, "%s", ver);
    } else {
        snprintf(p->blas, sizeof p->blas, "OpenBLAS");
        snprintf(p->blas_version, sizeof p->blas_version, "unknown");
    }
    const char *env = getenv("OPENBLAS_CORETYPE");
    snprintf(p->blas_coretype_env, sizeof p->blas_coretype_env, "%s", env ? env : "");
}

static ip_provenance cached;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void collect(void) {
    ip_provenance *p = &cached;
    snprintf(p->software, sizeof p->software, "ipsweep %s", IPSWEEP_VERSION);
#if defined(__clang__)
    snprintf(p->compiler, sizeof p->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(p->compiler, sizeof p->compiler, "gcc %s", __VERSION__);
#else
    snprintf(p->compiler, sizeof p->compiler, "unknown");
#endif
    snprintf(p->cflags, sizeof p->cflags, "%s", IPSWEEP_CFLAGS);
    read_cpu(p);
    read_blas(p);
}

const ip_provenance *ip_provenance_get(void) {
    pthread_once(&once, collect);
    return &cached;
}

int ip_provenance_write_h5(hid_t loc) {
    const ip_provenance *p = ip_provenance_get();
    hid_t g = H5Gcreate2(loc, "provenance", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return -1;
    int rc = 0;
    for (int i = 0; i < ip_provenance_nfields && rc == 0; i++)
        rc = ip_h5_attr_str(g, ip_provenance_fields[i].name, ip_provenance_value(p, i));
    H5Gclose(g);
    return rc;
}

/* dl_iterate_phdr visits the executable first (an empty name): its PT_NOTE
 * segments hold the NT_GNU_BUILD_ID note. */
typedef struct build_id_buf {
    unsigned char *out;
    size_t cap, len;
} build_id_buf;

static int find_build_id(struct dl_phdr_info *info, size_t size, void *user) {
    (void)size;
    build_id_buf *b = user;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const unsigned char *p = (const unsigned char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (end - p >= (ptrdiff_t)sizeof(ElfW(Nhdr))) {
            ElfW(Nhdr) nh;
            memcpy(&nh, p, sizeof nh);
            size_t name = (nh.n_namesz + 3) & ~(size_t)3, desc = (nh.n_descsz + 3) & ~(size_t)3;
            const unsigned char *d = p + sizeof nh + name;
            if (name > (size_t)(end - p) || desc > (size_t)(end - d)) break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(p + sizeof nh, "GNU", 4) == 0) {
                b->len = nh.n_descsz < b->cap ? nh.n_descsz : b->cap;
                memcpy(b->out, d, b->len);
                return 1;
            }
            p = d + desc;
        }
    }
    return 1; /* only the executable */
}

size_t ip_build_id(unsigned char *out, size_t cap) {
    build_id_buf b = {out, cap, 0};
    dl_iterate_phdr(find_build_id, &b);
    return b.len;
}
