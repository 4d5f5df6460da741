#include <stdio.h>

#include "loyalty_time.h"


/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: four-digit years */
#define LOYALTY_TIME_MIN  (-62167219200LL)
#define LOYALTY_TIME_MAX  253402300799LL


static int loyalty_time_digits(const char *p, int n, int *out);


int
loyalty_time_parse(const char *text, size_t len, int64_t *out)
{
    int          y, mo, d, h, mi, s, oh, om, sign;
    int64_t      t;
    const char  *p, *end;
    static const unsigned char  mdays[] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    p = text;
    end = text + len;

    if (len < 20
        || loyalty_time_digits(p, 4, &y) || p[4] != '-'
        || loyalty_time_digits(p + 5, 2, &mo) || p[7] != '-'
        || loyalty_time_digits(p + 8, 2, &d)
        || (p[10] != 'T' && p[10] != 't')
        || loyalty_time_digits(p + 11, 2, &h) || p[13] != ':'
        || loyalty_time_digits(p + 14, 2, &mi) || p[16] != ':'
        || loyalty_time_digits(p + 17, 2, &s))
    {
        return -1;
    }

    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1]
        || (mo == 2 && d == 29
            && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        || h > 23 || mi > 59 || s > 60)
    {
        return -1;
    }

    p += 19;

    if (p < end && *p == '.') {
        p++;

        if (p == end || *p < '0' || *p > '9') {
            return -1;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
        oh = 0;
        om = 0;
        sign = 1;

    } else if (end - p == 6 && (*p == '+' || *p == '-') && p[3] == ':'
               && loyalty_time_digits(p + 1, 2, &oh) == 0
               && loyalty_time_digits(p + 4, 2, &om) == 0
               && oh <= 23 && om <= 59)
    {
        sign = (*p == '-') ? -1 : 1;
        p += 6;

    } else {
        return -1;
    }

    if (p != end) {
        return -1;
    }

    /* a leap second is the last second of its minute, here */
    if (s == 60) {
        s = 59;
    }

    t = loyalty_days_from_civil(y, (unsigned) mo, (unsigned) d) * 86400
        + h * 3600 + mi * 60 + s
        - sign * (oh * 3600 + om * 60);

    /* an offset must not carry the time beyond what formatting can write */
    if (t < LOYALTY_TIME_MIN || t > LOYALTY_TIME_MAX) {
        return -1;
    }

    *out = t;

    return 0;
}


size_t
loyalty_time_format(int64_t t, char *buf)
{
    int64_t   days, secs, y;
    unsigned  m, d;

    days = t / 86400;
    secs = t % 86400;

    if (secs < 0) {
        secs += 86400;
        days--;
    }

    loyalty_civil_from_days(days, &y, &m, &d);

    return (size_t) snprintf(buf, LOYALTY_TIME_TEXT_MAX,
                             "%04d-%02u-%02uT%02d:%02d:%02dZ",
                             (int) y, m, d, (int) (secs / 3600),
                             (int) (secs / 60 % 60), (int) (secs % 60));
}


/* Howard Hinnant's algorithms, exact for every proleptic Gregorian date. */

int64_t
loyalty_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (int64_t) doe - 719468;
}


void
loyalty_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t   era;
    unsigned  doe, yoe, doy, mp;

    days += 719468;
    era = (days >= 0 ? days : days - 146096) / 146097;
    doe = (unsigned) (days - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t) yoe + era * 400 + (*m <= 2);
}


static int
loyalty_time_digits(const char *p, int n, int *out)
{
    int  i, v;

    v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        v = v * 10 + (p[i] - '0');
    }

    *out = v;

    return 0;
}
