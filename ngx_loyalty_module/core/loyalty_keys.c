#include <stdio.h>

#include "loyalty_keys.h"


size_t
loyalty_key(char *buf, const char *kind, const char *id, size_t len,
    const char *suffix)
{
    int  n;

    n = snprintf(buf, LOYALTY_KEY_MAX, LOYALTY_KEY_PREFIX "{%s:%.*s}%s", kind,
                 (int) len, id, suffix);

    return n < LOYALTY_KEY_MAX ? (size_t) n : LOYALTY_KEY_MAX - 1;
}
