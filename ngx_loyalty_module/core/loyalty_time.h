/*
 * Times: UTC unix seconds inside, RFC 3339 at the edges
 * ("2026-11-27T00:00:00Z", "2026-11-27T01:00:00+01:00").
 */

#ifndef LOYALTY_TIME_H
#define LOYALTY_TIME_H

#include <stddef.h>
#include <stdint.h>


#define LOYALTY_TIME_TEXT_MAX  21      /* "2026-11-27T00:00:00Z" and NUL */


/* 0 on success; fractions of a second are accepted and dropped. */
int loyalty_time_parse(const char *text, size_t len, int64_t *out);

/* Writes "YYYY-MM-DDTHH:MM:SSZ"; returns its length. */
size_t loyalty_time_format(int64_t t, char *buf);

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t loyalty_days_from_civil(int64_t y, unsigned m, unsigned d);
void loyalty_civil_from_days(int64_t days, int64_t *y, unsigned *m,
    unsigned *d);

#endif /* LOYALTY_TIME_H */
