/* A length-delimited string of the core; the bytes belong to someone else. */

#ifndef LOYALTY_STR_H
#define LOYALTY_STR_H

#include <stddef.h>
#include <string.h>


typedef struct {
    const char  *data;
    size_t       len;
} loyalty_str_t;


#define loyalty_str_eq(a, b)                                                 \
    ((a)->len == (b)->len && memcmp((a)->data, (b)->data, (a)->len) == 0)

int loyalty_str_cmp(const loyalty_str_t *a, const loyalty_str_t *b);

/* Room for any int64_t in decimal, its sign included. */
#define LOYALTY_INT_TEXT_MAX  20

/*
 * Writes n in decimal (no NUL) and returns the length: what "%lld" would
 * write, without a printf, for the numbers a request sends to Redis.
 */
size_t loyalty_str_int(char *buf, long long n);

#endif /* LOYALTY_STR_H */
