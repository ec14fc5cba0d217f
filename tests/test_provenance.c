/* Provenance (core/provenance.h): every results file and every checkpoint
 * carries /provenance with every attribute of the one field table, the
 * values of this process, and `report` shows them. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/io/ckpt.h"
#include "../core/model/model.h"
#include "../core/io/provenance.h"
#include "../runner/report/report.h"
#include "../runner/run/results.h"
#include "testutil.h"

static char tdir[64];
static void make_dir(void) { cr_assert_not_null(tu_mkdtemp(tdir, sizeof tdir, "prov")); }
static void remove_dir(void) { tu_rmtree(tdir); }
TestSuite(provenance, .init = make_dir, .fini = remove_dir);

static void read_str_attr(hid_t loc, const char *name, char *out, size_t cap) {
    cr_assert_gt(H5Aexists(loc, name), 0, "attribute %s is missing", name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a);
    cr_assert_eq(H5Tget_class(t), H5T_STRING, "%s is not a string", name);
    cr_assert_gt(H5Tis_variable_str(t), 0, "%s is not a variable-length string", name);
    cr_assert_eq(H5Tget_cset(t), H5T_CSET_UTF8, "%s is not UTF-8", name);
    char *s = NULL;
    cr_assert_geq(H5Aread(a, t, &s), 0);
    snprintf(out, cap, "%s", s ? s : "");
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
}

static herr_t count_attr(hid_t loc, const char *name, const H5A_info_t *info, void *user) {
    (void)loc, (void)name, (void)info;
    ++*(int *)user;
    return 0;
}

/* Every field of the table is in <path>:/provenance, equal to this process's. */
static void check_file(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    cr_assert_geq(f, 0, "cannot open %s", path);
    hid_t g = H5Gopen2(f, "provenance", H5P_DEFAULT);
    cr_assert_geq(g, 0, "%s has no /provenance", path);
    const ip_provenance *p = ip_provenance_get();
    int nattrs = 0;
    hsize_t idx = 0;
    cr_assert_geq(H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, count_attr, &nattrs), 0);
    cr_assert_eq(nattrs, ip_provenance_nfields, "%s: /provenance has %d attributes, not %d", path, nattrs,
                 ip_provenance_nfields);
    for (int i = 0; i < ip_provenance_nfields; i++) {
        char v[1100];
        read_str_attr(g, ip_provenance_fields[i].name, v, sizeof v);
        cr_assert_str_eq(v, ip_provenance_value(p, i), "%s: /provenance/%s", path, ip_provenance_fields[i].name);
    }
    /* the root's `software` has one home: the provenance's */
    char sw[256];
    read_str_attr(f, "software", sw, sizeof sw);
    cr_assert_str_eq(sw, p->software);
    H5Gclose(g);
    H5Fclose(f);
}

Test(provenance, values_are_filled) {
    const ip_provenance *p = ip_provenance_get();
    cr_assert(strncmp(p->software, "ipsweep ", 8) == 0, "software = %s", p->software);
    cr_assert_str_eq(p->blas, "OpenBLAS");
    cr_assert(p->blas_version[0] && strcmp(p->blas_version, "unknown") != 0, "blas_version = %s", p->blas_version);
    cr_assert(p->blas_core[0] && strcmp(p->blas_core, "unknown") != 0);
    cr_assert(strstr(p->blas_config, p->blas_version) != NULL);
    cr_assert(p->compiler[0] && strcmp(p->compiler, "unknown") != 0);
    /* built by the Makefile: the flags it compiled with, -O included */
    cr_assert(strstr(p->cflags, "-O") != NULL, "cflags = %s", p->cflags);
    cr_assert(p->cpu_model[0]);
    const char *env = getenv("OPENBLAS_CORETYPE");
    cr_assert_str_eq(p->blas_coretype_env, env ? env : "");
    /* one table: names are unique and every value fits its field */
    for (int i = 0; i < ip_provenance_nfields; i++) {
        cr_assert_lt(strlen(ip_provenance_value(p, i)), ip_provenance_fields[i].cap);
        for (int j = 0; j < i; j++) cr_assert_str_neq(ip_provenance_fields[i].name, ip_provenance_fields[j].name);
    }
}

Test(provenance, results_file_carries_it) {
    rn_spec s;
    memset(&s, 0, sizeof s);
    s.text = "name: p\n";
    snprintf(s.name, sizeof s.name, "p");
    snprintf(s.file, sizeof s.file, "p.yaml");
    const char *path = tu_path(tdir, "r.h5");
    ip_err e = {{0}};
    cr_assert_eq(rn_results_write(path, &s, NULL, NULL, 0, &e), 0, "%s", e.msg);
    check_file(path);
    /* and report shows every non-empty value */
    rp_file rf;
    cr_assert_eq(rp_open(&rf, path, &e), 0, "%s", e.msg);
    cr_assert(rf.has_provenance);
    char *buf = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&buf, &n);
    rp_write_header(out, &rf, RP_MD);
    fclose(out);
    cr_assert(strstr(buf, "Provenance") != NULL, "%s", buf);
    cr_assert(strstr(buf, "`blas_core`: ") != NULL, "%s", buf);
    cr_assert(strstr(buf, ip_provenance_get()->blas_version) != NULL, "%s", buf);
    free(buf);
    rp_close(&rf);
}

Test(provenance, checkpoint_carries_it) {
    ip_model_cfg c;
    memset(&c, 0, sizeof c);
    snprintf(c.arch, sizeof c.arch, "small-p-narrow");
    c.in_c = 1, c.in_h = 28, c.in_w = 28, c.classes = 10;
    c.in_mean[0] = 0.5f, c.in_std[0] = 0.25f;
    ip_model m;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(&m, &c, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&m, 1, NULL, &e), 0, "%s", e.msg);
    const char *path = tu_path(tdir, "m.h5");
    cr_assert_eq(ip_ckpt_save(&m, path, &e), 0, "%s", e.msg);
    check_file(path);
    /* a checkpoint with /provenance still loads */
    ip_model m2;
    cr_assert_eq(ip_ckpt_open_model(&m2, path, &e), 0, "%s", e.msg);
    ip_model_free(&m2);
    ip_model_free(&m);
}

/* The docs list every attribute of the one table (docs/results.md documents
 * them, docs/checkpoint.md names them). */
Test(provenance, documented) {
    const char *docs[] = {"docs/results.md", "docs/checkpoint.md"};
    for (int d = 0; d < 2; d++) {
        FILE *f = fopen(docs[d], "rb");
        cr_assert_not_null(f, "%s", docs[d]);
        static char text[1 << 17];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        for (int i = 0; i < ip_provenance_nfields; i++) {
            char quoted[80];
            snprintf(quoted, sizeof quoted, "`%s`", ip_provenance_fields[i].name);
            cr_expect(strstr(text, quoted) != NULL, "%s does not document %s", docs[d], quoted);
        }
    }
}
