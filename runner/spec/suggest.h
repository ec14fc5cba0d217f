/* "did you mean": the closest of a few candidate words to a misspelt one.
 * Shared by the command line (cli.c, main.c) and the spec loader (spec.c). */
#ifndef RN_SUGGEST_H
#define RN_SUGGEST_H

/* Levenshtein distance; 99 for words longer than 63 characters. */
int rn_lev(const char *a, const char *b);

/* The closest candidate within distance 2, or NULL (NULL entries skipped). */
const char *rn_suggest(const char *word, const char *const *cands, int n);

#endif
