/* docs/spec.md's reference of every kind's keys, generated from the tables. */
#include "spec_impl.h"

void doc_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else fputc(*s, f);
    }
}

void rn_spec_doc_kinds(FILE *f) {
    static const char *const tnames[] = {"int",         "float",    "string",     "bool",      "enum",
                                         "model",       "fingerprint", "int list", "model set", "model set"};
    _Static_assert(IP_P_OTHERS == 9, "a name for every parameter type");
    for (int i = 0; rn_kinds[i]; i++) {
        const rn_kind *k = rn_kinds[i];
        int train = is_models_kind(k);
        fprintf(f, "### `%s`%s\n\n", k->def->name, train ? " (entries of `models`)" : "");
        if (k->def->doc[0] >= 'a' && k->def->doc[0] <= 'z') fputc(k->def->doc[0] - 'a' + 'A', f);
        else if (k->def->doc[0]) fputc(k->def->doc[0], f);
        if (k->def->doc[0]) doc_cell(f, k->def->doc + 1);
        fprintf(f, ".%s\n\n",
                k->produces == RN_OUT_MODEL         ? " Produces a model: other tasks can name it in `model:`."
                : k->produces == RN_OUT_FINGERPRINT ? " Produces a fingerprint: `match` tasks name it in `fingerprint:`."
                                                    : "");
        fprintf(f, "| key | type | default | range / choices | description |\n");
        fprintf(f, "|---|---|---|---|---|\n");
        for (int j = 0; j < k->def->nparams; j++) {
            const rn_key *kk = &k->def->params[j];
            fprintf(f, "| `%s` | %s | ", kk->name, tnames[kk->type]);
            if (!kk->def) fputs("*required*", f);
            else if (!kk->def[0]) fputs("\"\"", f);
            else fprintf(f, "`%s`", kk->def);
            fputs(" | ", f);
            if (kk->type == IP_P_INTLIST) {
                fprintf(f, "increasing, each %.10g .. %.10g, at most %d", kk->min, kk->max, IP_MAX_INT_LIST);
            } else if (kk->type == IP_P_INT || kk->type == IP_P_FLOAT) {
                if (kk->min <= -1e300 && kk->max >= 1e300) fputs("any", f);
                else fprintf(f, "%.10g .. %.10g", kk->min, kk->max);
            } else if (kk->type == IP_P_ENUM) {
                const char *p = kk->choices;
                int first = 1;
                while (*p) {
                    size_t n = strcspn(p, "|");
                    fprintf(f, "%s`%.*s`", first ? "" : ", ", (int)n, p);
                    first = 0;
                    p += n;
                    if (*p) p++;
                }
            } else if (kk->type == IP_P_MODEL) {
                fputs("a model's name", f);
            } else if (kk->type == IP_P_FINGERPRINT) {
                fputs("a fingerprint entry's name", f);
            } else if (kk->type == IP_P_COPIES) {
                fputs("model entries: their instances derived from `model`", f);
            } else if (kk->type == IP_P_OTHERS) {
                fputs("model entries: their instances independent of `model`", f);
            }
            fputs(" | ", f);
            doc_cell(f, kk->doc);
            fputs(" |\n", f);
        }
        fputs("\n", f);
    }
}
