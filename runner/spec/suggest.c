#include "suggest.h"

#include <string.h>

int rn_lev(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    /* one row of the DP table on the stack: options, keys and commands are short */
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int prev = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int cur = row[j];
            int best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[lb];
}

/* Distance 2 at most: further away, a suggestion is more often wrong than helpful. */
const char *rn_suggest(const char *word, const char *const *cands, int n) {
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; i < n; i++) {
        if (!cands[i]) continue;
        int d = rn_lev(word, cands[i]);
        if (d < bd) bd = d, best = cands[i];
    }
    return best;
}
