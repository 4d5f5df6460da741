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


size_t
loyalty_str_int(char *buf, long long n)
{
    char                 digits[LOYALTY_INT_TEXT_MAX], *d;
    size_t               len;
    unsigned long long   u;

    /* the magnitude as unsigned: -LLONG_MIN does not fit a long long */
    u = n < 0 ? 0ULL - (unsigned long long) n : (unsigned long long) n;
    d = digits + sizeof(digits);

    do {
        *--d = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    len = 0;

    if (n < 0) {
        buf[len++] = '-';
    }

    memcpy(buf + len, d, (size_t) (digits + sizeof(digits) - d));

    return len + (size_t) (digits + sizeof(digits) - d);
}
