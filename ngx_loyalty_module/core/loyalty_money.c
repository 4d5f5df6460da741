#include <string.h>

#include "loyalty_money.h"


/* Beyond this many kept digits an amount exceeds LOYALTY_MONEY_LIMIT. */
#define LOYALTY_MONEY_DIGITS_MAX  18

/* Exponents are saturated here: larger ones only matter as "huge". */
#define LOYALTY_MONEY_EXP_MAX  100000


typedef struct {
    const char  *digits;        /* significant digits, '.' may be inside */
    size_t       len;           /* bytes of digits, including any '.' */
    size_t       n;             /* number of significant digits */
    long         dot;           /* index of the '.' in digits, or -1 */
    long         exp10;         /* place value of the last digit: 10^exp10 */
    int          negative;
} loyalty_decimal_t;


static int loyalty_decimal_scan(const char *p, const char *end,
    loyalty_decimal_t *d);
static int loyalty_digit_at(const loyalty_decimal_t *d, long i);


loyalty_money_rc_t
loyalty_money_parse(const char *text, size_t len,
    const loyalty_money_spec_t *spec, int64_t *out)
{
    int                 round_up, odd;
    long                kept, i, shift;
    int64_t             value;
    uint64_t            v;
    loyalty_decimal_t   d;

    if (loyalty_decimal_scan(text, text + len, &d) != 0) {
        return LOYALTY_MONEY_SYNTAX;
    }

    v = 0;

    if (d.n == 0) {
        goto done;
    }

    /* a negative amount where none is allowed, however small */
    if (d.negative && spec->min >= 0) {
        return LOYALTY_MONEY_RANGE;
    }

    /* digits 0..kept-1 are at or above the minor unit, the rest below */
    shift = d.exp10 + (long) spec->decimals;
    kept = (long) d.n + shift;

    if (kept > LOYALTY_MONEY_DIGITS_MAX) {
        return LOYALTY_MONEY_RANGE;
    }

    for (i = 0; i < kept; i++) {
        v = v * 10 + (uint64_t) loyalty_digit_at(&d, i);
    }

    if (shift >= 0) {
        goto done;
    }

    /* rounding looks at the dropped digits: kept .. n-1 */
    round_up = 0;

    switch (spec->round) {

    case LOYALTY_ROUND_DOWN:
        break;

    case LOYALTY_ROUND_UP:
    case LOYALTY_ROUND_EXACT:
        for (i = kept; i < (long) d.n; i++) {
            if (loyalty_digit_at(&d, i) != 0) {
                round_up = 1;
                break;
            }
        }

        if (round_up && spec->round == LOYALTY_ROUND_EXACT) {
            return LOYALTY_MONEY_PRECISION;
        }

        break;

    case LOYALTY_ROUND_HALF_UP:
        round_up = loyalty_digit_at(&d, kept) >= 5;
        break;

    case LOYALTY_ROUND_HALF_EVEN:
        if (loyalty_digit_at(&d, kept) != 5) {
            round_up = loyalty_digit_at(&d, kept) > 5;
            break;
        }

        for (i = kept + 1; i < (long) d.n; i++) {
            if (loyalty_digit_at(&d, i) != 0) {
                round_up = 1;
                break;
            }
        }

        odd = (int) (v & 1);
        round_up = round_up || odd;
        break;
    }

    v += (uint64_t) round_up;

done:

    if (v > (uint64_t) LOYALTY_MONEY_LIMIT) {
        return LOYALTY_MONEY_RANGE;
    }

    value = d.negative ? -(int64_t) v : (int64_t) v;

    if (value < spec->min || value > spec->max) {
        return LOYALTY_MONEY_RANGE;
    }

    *out = value;

    return LOYALTY_MONEY_OK;
}


/*
 * The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Leading zeros of the digit sequence are skipped so that only significant
 * digits are counted; trailing zeros stay (they are exact).
 */

static int
loyalty_decimal_scan(const char *p, const char *end, loyalty_decimal_t *d)
{
    int          exp_negative;
    long         exp, frac;
    const char  *int_start, *sig, *dot;

    memset(d, 0, sizeof(*d));

    if (p < end && *p == '-') {
        d->negative = 1;
        p++;
    }

    int_start = p;

    if (p < end && *p == '0') {
        p++;

    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == int_start) {
        return -1;
    }

    frac = 0;

    if (p < end && *p == '.') {
        p++;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            frac++;
        }

        if (frac == 0) {
            return -1;
        }
    }

    d->len = (size_t) (p - int_start);

    exp = 0;

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        exp_negative = 0;

        if (p < end && (*p == '+' || *p == '-')) {
            exp_negative = (*p == '-');
            p++;
        }

        if (p == end) {
            return -1;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            if (exp < LOYALTY_MONEY_EXP_MAX) {
                exp = exp * 10 + (*p - '0');
            }
            p++;
        }

        if (p < end) {
            return -1;
        }

        if (exp_negative) {
            exp = -exp;
        }
    }

    if (p != end) {
        return -1;
    }

    /* skip leading zeros (and the point, if the integer part is 0) */
    sig = int_start;

    while (sig < int_start + d->len && (*sig == '0' || *sig == '.')) {
        sig++;
    }

    d->digits = sig;
    d->len -= (size_t) (sig - int_start);
    d->n = d->len;
    d->dot = -1;

    dot = memchr(sig, '.', d->len);

    if (dot != NULL) {
        d->dot = dot - sig;
        d->n--;
    }

    d->exp10 = exp - frac;

    return 0;
}


/* The i-th significant digit (0 past the end, as when i is negative). */

static int
loyalty_digit_at(const loyalty_decimal_t *d, long i)
{
    if (i < 0 || i >= (long) d->n) {
        return 0;
    }

    if (d->dot >= 0 && i >= d->dot) {
        i++;
    }

    return d->digits[i] - '0';
}


int
loyalty_muldiv(int64_t a, int64_t mul, int64_t div, loyalty_round_t round,
    int64_t *out)
{
    int                negative;
    unsigned __int128  n, q, r;

    if (div <= 0) {
        return -1;
    }

    negative = (a < 0) != (mul < 0) && a != 0 && mul != 0;

    n = (unsigned __int128) (a < 0 ? -(__int128) a : a)
        * (unsigned __int128) (mul < 0 ? -(__int128) mul : mul);
    q = n / (unsigned __int128) div;
    r = n % (unsigned __int128) div;

    switch (round) {

    case LOYALTY_ROUND_DOWN:
        break;

    case LOYALTY_ROUND_UP:
        q += (r != 0);
        break;

    case LOYALTY_ROUND_EXACT:
        if (r != 0) {
            return -1;
        }
        break;

    case LOYALTY_ROUND_HALF_UP:
        q += (2 * r >= (unsigned __int128) div);
        break;

    case LOYALTY_ROUND_HALF_EVEN:
        q += (2 * r > (unsigned __int128) div
              || (2 * r == (unsigned __int128) div && (q & 1)));
        break;
    }

    /* INT64_MIN has no positive counterpart */
    if (q > (unsigned __int128) INT64_MAX + negative) {
        return -1;
    }

    *out = negative ? (int64_t) -(__int128) q : (int64_t) q;

    return 0;
}


size_t
loyalty_money_format(int64_t minor, unsigned decimals, char *buf)
{
    char      tmp[LOYALTY_MONEY_TEXT_MAX];
    size_t    n, len;
    uint64_t  v;

    v = minor < 0 ? (uint64_t) 0 - (uint64_t) minor : (uint64_t) minor;

    /* digits in reverse, at least decimals + 1 of them */
    n = 0;

    do {
        tmp[n++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0 || n < (size_t) decimals + 1);

    len = 0;

    if (minor < 0) {
        buf[len++] = '-';
    }

    while (n > 0) {
        if (n == decimals && decimals > 0) {
            buf[len++] = '.';
        }

        buf[len++] = tmp[--n];
    }

    buf[len] = '\0';

    return len;
}


int
loyalty_currency_decimals(const char *code, size_t len)
{
    size_t              i;
    static const char   other[][4] = {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
        "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"
    };
    static const size_t zero = 17;   /* the first 17 have no minor unit */

    if (len != 3) {
        return -1;
    }

    for (i = 0; i < 3; i++) {
        if (code[i] < 'A' || code[i] > 'Z') {
            return -1;
        }
    }

    for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        if (memcmp(other[i], code, 3) == 0) {
            return i < zero ? 0 : 3;
        }
    }

    return 2;
}


const char *
loyalty_money_strerror(loyalty_money_rc_t rc)
{
    switch (rc) {
    case LOYALTY_MONEY_OK:
        return "ok";
    case LOYALTY_MONEY_SYNTAX:
        return "is not a decimal number";
    case LOYALTY_MONEY_RANGE:
        return "is out of range";
    case LOYALTY_MONEY_PRECISION:
        return "has more decimals than the currency";
    }

    return "is invalid";
}
