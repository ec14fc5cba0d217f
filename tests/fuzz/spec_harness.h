/* The spec-loader fuzz harness, shared by the libFuzzer target
 * (tests/fuzz/fuzz_spec.c, `make fuzz`) and the Criterion test that replays
 * every saved crasher (tests/test_fuzz_regress.c, `make test` / `make test-san`),
 * so a crasher replays through exactly the code that found it.
 *
 * Input: the spec text, then each `--set` argument, separated by NUL bytes,
 * as the command line would hand them over:
 *     <spec text> \0 <path=value> \0 <path=value> ...
 * NUL is the separator because neither a spec (the file reader rejects it)
 * nor an argv string can hold one; a `--set` value can hold newlines. */
#ifndef IP_FUZZ_SPEC_HARNESS_H
#define IP_FUZZ_SPEC_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Limits of one input: more time or memory is a bug like a crash. `make
 * fuzz` passes them to libFuzzer (-timeout, -rss_limit_mb); the regression
 * test holds every saved input to the time limit. */
#define FUZZ_SPEC_TIMEOUT_S 10
#define FUZZ_SPEC_RSS_MB 2048

/* What happened to one input. */
enum {
    FUZZ_SPEC_REJECTED_ARGS = -1, /* a --set argument the CLI itself refuses (no '=', too long) */
    FUZZ_SPEC_INVALID = 0,        /* the loader reported errors */
    FUZZ_SPEC_VALID = 1           /* the loader accepted it */
};

/* Loads data as `ipsweep validate` would (validation, expansion, and stat()
 * of the data files: the loader writes no file and never exits), then checks
 * the result's invariants and abort()s when one is broken. Environment:
 * FUZZ_SPEC_CHECKS=0 (sanitizers only), FUZZ_SPEC_SKIP=name,... (spec_harness.c). */
int fuzz_spec_one(const uint8_t *data, size_t size);

#endif
