/*
 * Helpers shared by the libFuzzer targets: an assertion that stays on
 * in every build and exact-size copies, so that AddressSanitizer sees
 * any read past the bytes a parser was given.
 */

#ifndef GOIM_FUZZ_H
#define GOIM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define fuzz_assert(cond)                                                    \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* n bytes of p in a buffer of exactly n bytes (a valid pointer for 0) */
static inline uint8_t *
fuzz_dup(const uint8_t *p, size_t n)
{
    uint8_t  *copy;

    copy = malloc(n);

    if (copy == NULL && n > 0) {
        abort();
    }

    if (n) {
        memcpy(copy, p, n);
    }

    return copy;
}


#endif /* GOIM_FUZZ_H */
