#include "loyalty_str.h"


int
loyalty_str_cmp(const loyalty_str_t *a, const loyalty_str_t *b)
{
    int  rc;

    rc = memcmp(a->data, b->data, a->len < b->len ? a->len : b->len);

    if (rc != 0) {
        return rc;
    }

    return (a->len > b->len) - (a->len < b->len);
}
