/*
 * Money at the edge: decimal text (a JSON number or the contents of a JSON
 * string) to integer minor units, exactly, without floating point; and back
 * to text for headers and JSON.
 */

#ifndef LOYALTY_MONEY_H
#define LOYALTY_MONEY_H

#include <stddef.h>
#include <stdint.h>


/* The largest amount the core accepts anywhere: 10^15 minor units. */
#define LOYALTY_MONEY_LIMIT  1000000000000000LL

/* Long enough for any int64 with a sign and a decimal point. */
#define LOYALTY_MONEY_TEXT_MAX  24


typedef enum {
    LOYALTY_ROUND_HALF_UP = 0,      /* ties away from zero: 0.005 -> 0.01 */
    LOYALTY_ROUND_HALF_EVEN,        /* ties to the even neighbour */
    LOYALTY_ROUND_DOWN,             /* toward zero */
    LOYALTY_ROUND_UP,               /* away from zero */
    LOYALTY_ROUND_EXACT             /* refuse digits the currency lacks */
} loyalty_round_t;


typedef enum {
    LOYALTY_MONEY_OK = 0,
    LOYALTY_MONEY_SYNTAX,           /* not a decimal number */
    LOYALTY_MONEY_RANGE,            /* outside [min, max] */
    LOYALTY_MONEY_PRECISION         /* inexact under LOYALTY_ROUND_EXACT */
} loyalty_money_rc_t;


typedef struct {
    unsigned          decimals;     /* minor digits: 2 for EUR, 0 for JPY */
    loyalty_round_t   round;
    int64_t           min;          /* inclusive bounds, in minor units */
    int64_t           max;
} loyalty_money_spec_t;


/*
 * Parses "19.99", "-0.5", "1e3", "0.30000000000000004": the JSON number
 * grammar, nothing else (no "+", no leading zeros, no spaces, no comma).
 */
loyalty_money_rc_t loyalty_money_parse(const char *text, size_t len,
    const loyalty_money_spec_t *spec, int64_t *out);

/*
 * a * mul / div, exact, rounded as asked; -1 when the result does not fit
 * in 64 bits, when div is not positive, or when it is inexact under
 * LOYALTY_ROUND_EXACT.
 */
int loyalty_muldiv(int64_t a, int64_t mul, int64_t div,
    loyalty_round_t round, int64_t *out);

/* Writes "19.99", "-0.50" or "100" (decimals 0); returns the length. */
size_t loyalty_money_format(int64_t minor, unsigned decimals, char *buf);

/*
 * The minor digits of an ISO 4217 code ("JPY" -> 0, "KWD" -> 3, other
 * well-formed codes -> 2), or -1 when the code is not three capitals.
 */
int loyalty_currency_decimals(const char *code, size_t len);

const char *loyalty_money_strerror(loyalty_money_rc_t rc);

#endif /* LOYALTY_MONEY_H */
