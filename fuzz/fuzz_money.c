/*
 * Money: decimal text to minor units and back.  The first byte chooses
 * the currency's decimals, the rounding, and whether amounts may be
 * negative (the cart's may not); the rest is the text.
 *
 *   - a parsed amount is within the bounds asked for: never negative,
 *     however small, where the bounds say so;
 *   - formatting it and parsing that back exactly gives the same amount;
 *   - the five roundings agree where the text is exact, and otherwise
 *     DOWN and UP are neighbours with the HALF ones between them;
 *   - loyalty_muldiv's remainder is smaller than the divisor, on the
 *     side its rounding says (the first 24 bytes as three integers).
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_alloc.h"
#include "loyalty_money.h"


static void
fuzz_money_parse(const char *text, size_t len, unsigned decimals,
    loyalty_round_t round, int64_t min)
{
    char                  buf[LOYALTY_MONEY_TEXT_MAX];
    size_t                n;
    int64_t               v, back, r[5];
    loyalty_money_rc_t    rc, rcs[5];
    loyalty_money_spec_t  spec;
    int                   i;

    spec.decimals = decimals;
    spec.round = round;
    spec.min = min;
    spec.max = LOYALTY_MONEY_LIMIT;

    rc = loyalty_money_parse(text, len, &spec, &v);
    FUZZ_CHECK(loyalty_money_strerror(rc) != NULL);

    if (rc != LOYALTY_MONEY_OK) {
        return;
    }

    FUZZ_CHECK(v >= spec.min && v <= spec.max);

    /* "-0.001" is refused where amounts may not be negative */
    FUZZ_CHECK(min < 0 || len == 0 || text[0] != '-' || v == 0);

    n = loyalty_money_format(v, decimals, buf);
    FUZZ_CHECK(n > 0 && n < sizeof(buf) && buf[n] == '\0');

    spec.round = LOYALTY_ROUND_EXACT;
    FUZZ_CHECK(loyalty_money_parse(buf, n, &spec, &back) == LOYALTY_MONEY_OK);
    FUZZ_CHECK(back == v);

    /*
     * The same text under every rounding, within the core's limit.  At
     * the limit itself, rounding away from zero goes past it: a range
     * error whatever the bounds, and no comparison to make.
     */
    spec.min = -LOYALTY_MONEY_LIMIT;
    spec.max = LOYALTY_MONEY_LIMIT;

    for (i = 0; i < 5; i++) {
        spec.round = (loyalty_round_t) i;
        rcs[i] = loyalty_money_parse(text, len, &spec, &r[i]);
    }

    FUZZ_CHECK(rcs[LOYALTY_ROUND_DOWN] == LOYALTY_MONEY_OK);

    if (r[LOYALTY_ROUND_DOWN] == LOYALTY_MONEY_LIMIT
        || r[LOYALTY_ROUND_DOWN] == -LOYALTY_MONEY_LIMIT)
    {
        FUZZ_CHECK(rcs[LOYALTY_ROUND_UP] == LOYALTY_MONEY_OK
                   || rcs[LOYALTY_ROUND_UP] == LOYALTY_MONEY_RANGE);
        return;
    }

    if (rcs[LOYALTY_ROUND_EXACT] == LOYALTY_MONEY_OK) {
        for (i = 0; i < 5; i++) {
            FUZZ_CHECK(rcs[i] == LOYALTY_MONEY_OK && r[i] == v);
        }

        return;
    }

    FUZZ_CHECK(rcs[LOYALTY_ROUND_EXACT] == LOYALTY_MONEY_PRECISION);

    for (i = 0; i < 4; i++) {
        FUZZ_CHECK(rcs[i] == LOYALTY_MONEY_OK);
    }

    /* inexact: UP is one away from DOWN, away from zero */
    if (r[LOYALTY_ROUND_DOWN] > 0 || (r[LOYALTY_ROUND_DOWN] == 0
                                      && r[LOYALTY_ROUND_UP] > 0))
    {
        FUZZ_CHECK(r[LOYALTY_ROUND_UP] == r[LOYALTY_ROUND_DOWN] + 1);

    } else {
        FUZZ_CHECK(r[LOYALTY_ROUND_UP] == r[LOYALTY_ROUND_DOWN] - 1);
    }

    for (i = LOYALTY_ROUND_HALF_UP; i <= LOYALTY_ROUND_HALF_EVEN; i++) {
        FUZZ_CHECK(r[i] == r[LOYALTY_ROUND_DOWN]
                   || r[i] == r[LOYALTY_ROUND_UP]);
    }
}


static void
fuzz_money_muldiv(const uint8_t *data, loyalty_round_t round)
{
    int64_t   a, mul, div, q;
    __int128  p, e, ae;

    memcpy(&a, data, 8);
    memcpy(&mul, data + 8, 8);
    memcpy(&div, data + 16, 8);

    if (loyalty_muldiv(a, mul, div, round, &q) != 0) {
        FUZZ_CHECK(div <= 0 || round == LOYALTY_ROUND_EXACT
                   || (__int128) a * mul / div > INT64_MAX - 1
                   || (__int128) a * mul / div < INT64_MIN + 1);
        return;
    }

    FUZZ_CHECK(div > 0);

    p = (__int128) a * mul;
    e = p - (__int128) q * div;         /* what rounding left over */
    ae = e < 0 ? -e : e;

    switch (round) {

    case LOYALTY_ROUND_DOWN:
        FUZZ_CHECK(ae < div && (e == 0 || (e > 0) == (p > 0)));
        break;

    case LOYALTY_ROUND_UP:
        FUZZ_CHECK(ae < div && (e == 0 || (e > 0) != (p > 0)));
        break;

    case LOYALTY_ROUND_EXACT:
        FUZZ_CHECK(e == 0);
        break;

    default:
        FUZZ_CHECK(2 * ae <= div);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char             buf[LOYALTY_MONEY_TEXT_MAX];
    size_t           n;
    int64_t          v;
    unsigned         decimals;
    loyalty_round_t  round;

    if (size < 1) {
        return 0;
    }

    decimals = data[0] & 3;
    round = (loyalty_round_t) (((data[0] >> 2) & 7) % 5);

    fuzz_money_parse((const char *) data + 1, size - 1, decimals, round,
                     (data[0] & 0x80) ? 0 : -LOYALTY_MONEY_LIMIT);

    /* a currency code: three capitals or nothing */
    n = (size_t) loyalty_currency_decimals((const char *) data + 1, size - 1);

    if (n != (size_t) -1) {
        FUZZ_CHECK(size - 1 == 3 && (n == 0 || n == 2 || n == 3));
    }

    if (size >= 25) {
        fuzz_money_muldiv(data + 1, round);
    }

    /* any int64 formats within the buffer */
    if (size >= 9) {
        memcpy(&v, data + 1, 8);
        n = loyalty_money_format(v, decimals, buf);
        FUZZ_CHECK(n < sizeof(buf) && strlen(buf) == n);
    }

    return 0;
}
