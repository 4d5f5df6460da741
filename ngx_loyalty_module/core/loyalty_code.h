/*
 * Normal forms, decided once and used for checking and for recording:
 * coupon and referral codes, and the identifiers that name customers,
 * checkouts and orders in Redis keys.
 */

#ifndef LOYALTY_CODE_H
#define LOYALTY_CODE_H

#include <stddef.h>


#define LOYALTY_CODE_MAX  64        /* bytes of a normalised code */
#define LOYALTY_ID_MAX    128       /* bytes of an identifier */


typedef enum {
    LOYALTY_CODE_OK = 0,
    LOYALTY_CODE_EMPTY,
    LOYALTY_CODE_TOO_LONG,
    LOYALTY_CODE_BAD_CHAR
} loyalty_code_rc_t;


/*
 * Trims ASCII white space and upper-cases: " save10 " -> "SAVE10".  What
 * remains may hold only A-Z, 0-9, '-', '_' and '.'.  out has room for
 * LOYALTY_CODE_MAX + 1 bytes and is NUL-terminated; on LOYALTY_CODE_BAD_CHAR
 * *bad is the offset of the offending byte in the input.
 */
loyalty_code_rc_t loyalty_code_normalize(const char *in, size_t len,
    char *out, size_t *out_len, size_t *bad);

/*
 * An identifier is 1 to max bytes of printable ASCII other than '{' and '}'
 * (which would break a Redis hash tag); nothing is changed in it.
 */
loyalty_code_rc_t loyalty_id_check(const char *id, size_t len, size_t max,
    size_t *bad);

const char *loyalty_code_strerror(loyalty_code_rc_t rc);

#endif /* LOYALTY_CODE_H */
