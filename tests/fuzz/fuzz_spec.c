/* libFuzzer entry point for the spec loader (`make fuzz`); the body is
 * fuzz_spec_one() in spec_harness.c, which the regression test also runs. */
#include "spec_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_spec_one(data, size);
    return 0;
}
