#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_keys.h"
#include "loyalty_str.h"
#include "loyalty_time.h"


/*
 * Copies rather than formats: a checkout names five keys, and snprintf's
 * format parsing was a tenth of the module's instructions per request.
 */

static char *
loyalty_key_cat(char *p, char *end, const char *s, size_t len)
{
    if (len > (size_t) (end - p)) {
        len = end - p;
    }

    memcpy(p, s, len);

    return p + len;
}


size_t
loyalty_key(char *buf, const char *kind, const char *id, size_t len,
    const char *suffix)
{
    char  *p, *end;

    p = buf;
    end = buf + LOYALTY_KEY_MAX - 1;

    p = loyalty_key_cat(p, end, LOYALTY_KEY_PREFIX "{",
                        sizeof(LOYALTY_KEY_PREFIX "{") - 1);
    p = loyalty_key_cat(p, end, kind, strlen(kind));
    p = loyalty_key_cat(p, end, ":", 1);
    p = loyalty_key_cat(p, end, id, len);
    p = loyalty_key_cat(p, end, "}", 1);
    p = loyalty_key_cat(p, end, suffix, strlen(suffix));
    *p = '\0';

    return p - buf;
}


/* FNV-1a: stable across machines and versions, which the shards must be. */

static unsigned
loyalty_shard(const char *s, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) s[i];
        h *= 16777619u;
    }

    return h % LOYALTY_DUE_SHARDS;
}


size_t
loyalty_key_due(char *buf, const char *customer, size_t len,
    const char *suffix)
{
    return loyalty_key_shard(buf, loyalty_shard(customer, len), suffix);
}


size_t
loyalty_key_shard(char *buf, unsigned shard, const char *suffix)
{
    char  n[LOYALTY_INT_TEXT_MAX];

    return loyalty_key(buf, "due", n, loyalty_str_int(n, shard), suffix);
}


/* once per confirmation: copied as loyalty_key copies, not formatted */

size_t
loyalty_key_order(char *buf, const char *order, size_t len)
{
    char  n[LOYALTY_INT_TEXT_MAX];

    return loyalty_key(buf, "orders", n,
                       loyalty_str_int(n, loyalty_shard(order, len)), "");
}


size_t
loyalty_key_board(char *buf, const char *period, size_t len)
{
    int  n;

    n = snprintf(buf, LOYALTY_KEY_MAX, LOYALTY_KEY_PREFIX "{board}:%.*s",
                 (int) (len < 16 ? len : 16), period);

    return n < LOYALTY_KEY_MAX ? (size_t) n : LOYALTY_KEY_MAX - 1;
}


size_t
loyalty_key_board_at(char *buf, int64_t t, int year)
{
    int       n;
    int64_t   y;
    unsigned  m, d;

    loyalty_civil_from_days(t >= 0 ? t / 86400 : (t - 86399) / 86400,
                            &y, &m, &d);

    n = year ? snprintf(buf, LOYALTY_KEY_MAX, LOYALTY_KEY_PREFIX
                        "{board}:%04lld", (long long) y)
             : snprintf(buf, LOYALTY_KEY_MAX, LOYALTY_KEY_PREFIX
                        "{board}:%04lld-%02u", (long long) y, m);

    return n < LOYALTY_KEY_MAX ? (size_t) n : LOYALTY_KEY_MAX - 1;
}


size_t
loyalty_key_stats(char *buf, int which, int64_t t)
{
    int       n;
    int64_t   y;
    unsigned  m, d;

    if (which == LOYALTY_STATS_DAY) {
        loyalty_civil_from_days(t >= 0 ? t / 86400 : (t - 86399) / 86400,
                                &y, &m, &d);
        n = snprintf(buf, LOYALTY_KEY_MAX, LOYALTY_KEY_PREFIX
                     "{stats}:day:%04lld-%02u-%02u", (long long) y, m, d);

    } else {
        n = snprintf(buf, LOYALTY_KEY_MAX, LOYALTY_KEY_PREFIX "{stats}%s",
                     which == LOYALTY_STATS_COUPONS ? ":coupons" : "");
    }

    return n < LOYALTY_KEY_MAX ? (size_t) n : LOYALTY_KEY_MAX - 1;
}
