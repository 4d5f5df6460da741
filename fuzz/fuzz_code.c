/*
 * Code normalisation and identifier checks, on any bytes: a normalised
 * code is within bounds, holds only the allowed characters, and
 * normalising it again changes nothing; an error's offset is inside the
 * input.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_alloc.h"
#include "loyalty_code.h"


static int
fuzz_code_allowed(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
           || c == '_' || c == '.';
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               out[LOYALTY_CODE_MAX + 1], again[LOYALTY_CODE_MAX + 1];
    size_t             i, len, len2, bad;
    const char        *in;
    loyalty_code_rc_t  rc;

    in = (const char *) data;
    len = 0;
    bad = (size_t) -1;

    rc = loyalty_code_normalize(in, size, out, &len, &bad);

    if (rc == LOYALTY_CODE_OK) {
        FUZZ_CHECK(len >= 1 && len <= LOYALTY_CODE_MAX);
        FUZZ_CHECK(out[len] == '\0');

        for (i = 0; i < len; i++) {
            FUZZ_CHECK(fuzz_code_allowed(out[i]));
        }

        FUZZ_CHECK(loyalty_code_normalize(out, len, again, &len2, &bad)
                   == LOYALTY_CODE_OK);
        FUZZ_CHECK(len2 == len && memcmp(out, again, len) == 0);

        /* a normal code is also a valid identifier */
        FUZZ_CHECK(loyalty_id_check(out, len, LOYALTY_ID_MAX, &bad)
                   == LOYALTY_CODE_OK);

    } else if (rc == LOYALTY_CODE_BAD_CHAR) {
        FUZZ_CHECK(bad < size);
        FUZZ_CHECK(!fuzz_code_allowed(in[bad]));

    } else {
        FUZZ_CHECK(rc == LOYALTY_CODE_EMPTY || rc == LOYALTY_CODE_TOO_LONG);
    }

    FUZZ_CHECK(loyalty_code_strerror(rc) != NULL);

    bad = (size_t) -1;
    rc = loyalty_id_check(in, size, LOYALTY_ID_MAX, &bad);

    if (rc == LOYALTY_CODE_OK) {
        FUZZ_CHECK(size >= 1 && size <= LOYALTY_ID_MAX);

        for (i = 0; i < size; i++) {
            FUZZ_CHECK(in[i] > 0x20 && in[i] < 0x7f && in[i] != '{'
                       && in[i] != '}');
        }

    } else if (rc == LOYALTY_CODE_BAD_CHAR) {
        FUZZ_CHECK(bad < size);
    }

    return 0;
}
