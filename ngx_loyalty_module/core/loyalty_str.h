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

#endif /* LOYALTY_STR_H */
