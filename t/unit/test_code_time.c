/* Codes, identifiers, RFC 3339 times, civil dates and exact muldiv. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_code.h"
#include "loyalty_money.h"
#include "loyalty_time.h"


/* 2026-11-27T00:00:00Z */
#define BLACK_FRIDAY  1795737600


static void
assert_code(const char *in, const char *expected)
{
    char    out[LOYALTY_CODE_MAX + 1];
    size_t  len, bad;

    len = 4242;
    assert_int_equal(loyalty_code_normalize(in, strlen(in), out, &len, &bad),
                     LOYALTY_CODE_OK);
    assert_string_equal(out, expected);
    assert_int_equal(len, strlen(expected));
}


static void
assert_code_refused(const char *in, size_t len, loyalty_code_rc_t expected,
    size_t expected_bad)
{
    char    out[LOYALTY_CODE_MAX + 1];
    size_t  out_len, bad;

    bad = 4242;
    assert_int_equal(loyalty_code_normalize(in, len, out, &out_len, &bad),
                     expected);
    assert_int_equal(bad, expected_bad);
}


static void
assert_time(const char *text, int64_t expected)
{
    int64_t  t;

    t = -4242;
    assert_int_equal(loyalty_time_parse(text, strlen(text), &t), 0);
    assert_int_equal(t, expected);
}


static void
assert_time_refused(const char *text)
{
    int64_t  t;

    t = -4242;
    assert_int_equal(loyalty_time_parse(text, strlen(text), &t), -1);
    assert_int_equal(t, -4242);
}


static void
assert_muldiv(int64_t a, int64_t mul, int64_t div, loyalty_round_t round,
    int64_t expected)
{
    int64_t  v;

    v = -4242;
    assert_int_equal(loyalty_muldiv(a, mul, div, round, &v), 0);
    assert_int_equal(v, expected);
}


static void
assert_muldiv_refused(int64_t a, int64_t mul, int64_t div,
    loyalty_round_t round)
{
    int64_t  v;

    v = -4242;
    assert_int_equal(loyalty_muldiv(a, mul, div, round, &v), -1);
    assert_int_equal(v, -4242);
}


static void
codes_are_trimmed_and_upper_cased(void **state)
{
    (void) state;

    assert_code(" save10 ", "SAVE10");
    assert_code("save10", "SAVE10");
    assert_code("\t\n\r\f\vBlack-Friday_2026.v2 \n", "BLACK-FRIDAY_2026.V2");
    assert_code("x", "X");
    assert_code("-_.", "-_.");
    assert_code("0123456789", "0123456789");
}


static void
codes_of_only_white_space_are_empty(void **state)
{
    char    out[LOYALTY_CODE_MAX + 1];
    size_t  len, bad;

    (void) state;

    assert_int_equal(loyalty_code_normalize("", 0, out, &len, &bad),
                     LOYALTY_CODE_EMPTY);
    assert_int_equal(loyalty_code_normalize(" \t\r\n", 4, out, &len, &bad),
                     LOYALTY_CODE_EMPTY);
}


static void
codes_longer_than_64_bytes_after_trimming_are_refused(void **state)
{
    char    in[80], out[LOYALTY_CODE_MAX + 1];
    size_t  len, bad;

    (void) state;

    memset(in, 'a', sizeof(in));

    assert_int_equal(loyalty_code_normalize(in, 64, out, &len, &bad),
                     LOYALTY_CODE_OK);
    assert_int_equal(len, 64);
    assert_int_equal(out[63], 'A');
    assert_int_equal(out[64], '\0');

    assert_int_equal(loyalty_code_normalize(in, 65, out, &len, &bad),
                     LOYALTY_CODE_TOO_LONG);

    /* white space around does not count */
    in[0] = ' ';
    in[1] = '\t';
    in[66] = '\n';
    assert_int_equal(loyalty_code_normalize(in, 67, out, &len, &bad),
                     LOYALTY_CODE_OK);
    assert_int_equal(len, 64);
}


static void
bad_characters_are_reported_at_their_input_offset(void **state)
{
    (void) state;

    assert_code_refused("  sa ve", 7, LOYALTY_CODE_BAD_CHAR, 4);
    assert_code_refused("a/b", 3, LOYALTY_CODE_BAD_CHAR, 1);
    assert_code_refused("{X}", 3, LOYALTY_CODE_BAD_CHAR, 0);
    assert_code_refused(" caf\xc3\xa9", 6, LOYALTY_CODE_BAD_CHAR, 4);
    assert_code_refused("SAVE10!", 7, LOYALTY_CODE_BAD_CHAR, 6);
    assert_code_refused("AB\0C", 4, LOYALTY_CODE_BAD_CHAR, 2);
    assert_code_refused("A+B", 3, LOYALTY_CODE_BAD_CHAR, 1);
    assert_code_refused("\x7f", 1, LOYALTY_CODE_BAD_CHAR, 0);

    assert_string_equal(loyalty_code_strerror(LOYALTY_CODE_OK), "ok");
    assert_string_equal(loyalty_code_strerror(LOYALTY_CODE_EMPTY),
                        "is empty");
    assert_string_equal(loyalty_code_strerror(LOYALTY_CODE_TOO_LONG),
                        "is too long");
    assert_string_equal(loyalty_code_strerror(LOYALTY_CODE_BAD_CHAR),
                        "has a character that is not allowed");
}


static void
identifiers_are_printable_ascii_without_spaces_or_braces(void **state)
{
    char    id[LOYALTY_ID_MAX + 1];
    size_t  bad;

    (void) state;

    assert_int_equal(loyalty_id_check("cust-42", 7, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_OK);
    assert_int_equal(loyalty_id_check("!~a:b@c.d/e", 11, LOYALTY_ID_MAX,
                                      &bad),
                     LOYALTY_CODE_OK);
    assert_int_equal(loyalty_id_check("", 0, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_EMPTY);

    bad = 4242;
    assert_int_equal(loyalty_id_check("a b", 3, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 1);
    assert_int_equal(loyalty_id_check("{42", 3, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 0);
    assert_int_equal(loyalty_id_check("42}", 3, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 2);
    assert_int_equal(loyalty_id_check("a\tb", 3, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 1);
    assert_int_equal(loyalty_id_check("ab\x7f", 3, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 2);
    assert_int_equal(loyalty_id_check("\xc3\xa9", 2, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 0);
    assert_int_equal(loyalty_id_check("a\0b", 3, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 1);

    /* identifiers are kept as sent: no case folding, no trimming */
    assert_int_equal(loyalty_id_check(" a", 2, LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_BAD_CHAR);
    assert_int_equal(bad, 0);

    memset(id, 'x', sizeof(id));
    assert_int_equal(loyalty_id_check(id, LOYALTY_ID_MAX, LOYALTY_ID_MAX,
                                      &bad),
                     LOYALTY_CODE_OK);
    assert_int_equal(loyalty_id_check(id, LOYALTY_ID_MAX + 1,
                                      LOYALTY_ID_MAX, &bad),
                     LOYALTY_CODE_TOO_LONG);
    assert_int_equal(loyalty_id_check(id, 5, 4, &bad),
                     LOYALTY_CODE_TOO_LONG);
}


static void
utc_times_parse_to_unix_seconds(void **state)
{
    (void) state;

    assert_time("1970-01-01T00:00:00Z", 0);
    assert_time("2026-11-27T00:00:00Z", BLACK_FRIDAY);
    assert_time("2026-11-27T00:00:01Z", BLACK_FRIDAY + 1);
    assert_time("2026-11-26T23:59:59Z", BLACK_FRIDAY - 1);
    assert_time("2000-03-01T00:00:00Z", 951868800);
    assert_time("1969-12-31T23:59:59Z", -1);
    assert_time("1900-01-01T00:00:00Z", -2208988800LL);
    assert_time("0000-01-01T00:00:00Z", -62167219200LL);
    assert_time("9999-12-31T23:59:59Z", 253402300799LL);
}


static void
offsets_are_subtracted_to_reach_utc(void **state)
{
    (void) state;

    assert_time("2026-11-27T01:00:00+01:00", BLACK_FRIDAY);
    assert_time("2026-11-26T18:30:00-05:30", BLACK_FRIDAY);
    assert_time("2026-11-27T05:45:00+05:45", BLACK_FRIDAY);
    assert_time("2026-11-27T00:00:00+00:00", BLACK_FRIDAY);
    assert_time("2026-11-27T00:00:00-00:00", BLACK_FRIDAY);
    assert_time("2026-11-27T23:59:00+23:59", BLACK_FRIDAY);
    assert_time("2026-11-26T00:01:00-23:59", BLACK_FRIDAY);

    /* an offset can move the date across a year */
    assert_time("2026-12-31T23:00:00-01:00", 1798761600);
    assert_time("2027-01-01T00:30:00+01:00", 1798759800);
}


static void
fractions_of_a_second_are_dropped(void **state)
{
    (void) state;

    assert_time("2026-11-27T00:00:00.999999999Z", BLACK_FRIDAY);
    assert_time("2026-11-27T00:00:00.5+01:00", BLACK_FRIDAY - 3600);
    assert_time("2026-11-27T00:00:59.0Z", BLACK_FRIDAY + 59);

    assert_time_refused("2026-11-27T00:00:00.Z");
    assert_time_refused("2026-11-27T00:00:00.+01:00");
    assert_time_refused("2026-11-27T00:00:00,5Z");
    assert_time_refused("2026-11-27T00:00:00.5");
    assert_time_refused("2026-11-27T00:00:00.5.5Z");
}


static void
lower_case_separators_are_accepted(void **state)
{
    (void) state;

    assert_time("2026-11-27t00:00:00z", BLACK_FRIDAY);
    assert_time("2026-11-27t01:00:00+01:00", BLACK_FRIDAY);
}


static void
leap_days_exist_only_in_leap_years(void **state)
{
    (void) state;

    assert_time("2024-02-29T12:34:56Z", 1709210096);
    assert_time("2000-02-29T00:00:00Z", 951782400);
    assert_time("2023-02-28T00:00:00Z", 1677542400);

    assert_time_refused("2023-02-29T00:00:00Z");
    assert_time_refused("1900-02-29T00:00:00Z");
    assert_time_refused("2100-02-29T00:00:00Z");
    assert_time_refused("2024-02-30T00:00:00Z");
}


static void
dates_and_times_out_of_range_are_refused(void **state)
{
    (void) state;

    assert_time("2026-01-31T00:00:00Z", 1769817600);
    assert_time("2026-12-31T23:59:59Z", 1798761599);

    assert_time_refused("2026-00-10T00:00:00Z");
    assert_time_refused("2026-13-01T00:00:00Z");
    assert_time_refused("2026-01-00T00:00:00Z");
    assert_time_refused("2026-01-32T00:00:00Z");
    assert_time_refused("2026-04-31T00:00:00Z");
    assert_time_refused("2026-06-31T00:00:00Z");
    assert_time_refused("2026-09-31T00:00:00Z");
    assert_time_refused("2026-11-31T00:00:00Z");
    assert_time_refused("2026-11-27T24:00:00Z");
    assert_time_refused("2026-11-27T00:60:00Z");
    assert_time_refused("2026-11-27T00:00:61Z");
    assert_time_refused("2026-11-27T00:00:00+24:00");
    assert_time_refused("2026-11-27T00:00:00+01:60");
}


static void
a_leap_second_counts_as_the_last_second_of_its_minute(void **state)
{
    (void) state;

    assert_time("2016-12-31T23:59:60Z", 1483228799);
    assert_time("2016-12-31T23:59:59Z", 1483228799);
}


static void
times_beyond_four_digit_years_are_refused(void **state)
{
    (void) state;

    /* an offset must not carry a time out of what the format can write */
    assert_time_refused("9999-12-31T23:00:00-05:00");
    assert_time_refused("0000-01-01T00:00:00+00:01");
    assert_time("9999-12-31T23:59:59+00:00", 253402300799LL);
    assert_time("9999-12-31T23:59:59.999Z", 253402300799LL);
}


static void
anything_but_rfc_3339_is_refused(void **state)
{
    size_t  i;
    int64_t t;
    static const char  *bad[] = {
        "", "tomorrow", "1795737600", "2026-11-27", "2026-11-27T00:00:00",
        "2026-11-27 00:00:00Z", "2026-11-27_00:00:00Z",
        "2026/11/27T00:00:00Z", "2026-11-27T00.00.00Z", "26-11-27T00:00:00Z",
        "2026-1-27T00:00:00Z", "2026-11-27T0:00:00Z", "2026-11-27T00:00Z",
        " 2026-11-27T00:00:00Z", "2026-11-27T00:00:00Z ",
        "2026-11-27T00:00:00ZZ", "2026-11-27T00:00:00Zjunk",
        "2026-11-27T00:00:00+0100", "2026-11-27T00:00:00+01",
        "2026-11-27T00:00:00+1:00", "2026-11-27T00:00:00+01:00:00",
        "2026-11-27T00:00:00+01:00Z", "2026-11-27T00:00:00 +01:00",
        "2026-11-27T00:00:00UTC", "2026-11-27T00:00:00GMT",
        "+2026-11-27T00:00:00Z", "-026-11-27T00:00:00Z",
        "2026-11-27T00:00:0aZ", "2026-1a-27T00:00:00Z",
        "\xef\xbc\x92" "026-11-27T00:00:00Z"
    };

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_time_refused(bad[i]);
    }

    /* the length decides, not a NUL */
    t = -4242;
    assert_int_equal(loyalty_time_parse("2026-11-27T00:00:00Zjunk", 20, &t),
                     0);
    assert_int_equal(t, BLACK_FRIDAY);
    assert_int_equal(loyalty_time_parse("2026-11-27T00:00:00Z\0", 21, &t),
                     -1);
    assert_int_equal(loyalty_time_parse("2026-11-27T00:00:00Z", 19, &t),
                     -1);
}


static void
formatting_writes_utc_and_round_trips(void **state)
{
    char        buf[LOYALTY_TIME_TEXT_MAX];
    size_t      i;
    int64_t     t, back;
    static const char  *texts[] = {
        "1970-01-01T00:00:00Z", "2026-11-27T00:00:00Z",
        "2024-02-29T12:34:56Z", "1969-12-31T23:59:59Z",
        "1900-03-01T00:00:00Z", "0000-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z", "2000-02-29T23:59:59Z"
    };

    (void) state;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_int_equal(loyalty_time_parse(texts[i], strlen(texts[i]), &t),
                         0);
        assert_int_equal(loyalty_time_format(t, buf), 20);
        assert_string_equal(buf, texts[i]);
    }

    assert_int_equal(loyalty_time_format(BLACK_FRIDAY + 3723, buf), 20);
    assert_string_equal(buf, "2026-11-27T01:02:03Z");

    loyalty_time_format(-86400, buf);
    assert_string_equal(buf, "1969-12-31T00:00:00Z");
    loyalty_time_format(-86401, buf);
    assert_string_equal(buf, "1969-12-30T23:59:59Z");

    /* an offset is written back as UTC */
    assert_time("2026-11-27T01:00:00+01:00", BLACK_FRIDAY);
    loyalty_time_format(BLACK_FRIDAY, buf);
    assert_string_equal(buf, "2026-11-27T00:00:00Z");

    /* from 1900 to 2200, a few times a day, at odd seconds */
    for (t = -2208988800LL; t < 7289654400LL; t += 86400 / 3 + 7) {
        assert_int_equal(loyalty_time_format(t, buf), 20);
        assert_int_equal(loyalty_time_parse(buf, 20, &back), 0);
        assert_int_equal(back, t);
    }
}


static void
civil_dates_count_days_from_1970(void **state)
{
    int64_t   y;
    unsigned  m, d;

    (void) state;

    assert_int_equal(loyalty_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(loyalty_days_from_civil(1970, 1, 2), 1);
    assert_int_equal(loyalty_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(loyalty_days_from_civil(2000, 1, 1), 10957);
    assert_int_equal(loyalty_days_from_civil(2000, 2, 29), 11016);
    assert_int_equal(loyalty_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(loyalty_days_from_civil(1900, 1, 1), -25567);
    assert_int_equal(loyalty_days_from_civil(2026, 11, 27),
                     BLACK_FRIDAY / 86400);
    assert_int_equal(loyalty_days_from_civil(0, 1, 1), -719528);
    assert_int_equal(loyalty_days_from_civil(-1, 12, 31), -719529);

    loyalty_civil_from_days(0, &y, &m, &d);
    assert_int_equal(y, 1970);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);

    loyalty_civil_from_days(11017, &y, &m, &d);
    assert_int_equal(y, 2000);
    assert_int_equal(m, 3);
    assert_int_equal(d, 1);

    loyalty_civil_from_days(-719529, &y, &m, &d);
    assert_int_equal(y, -1);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);
}


static void
every_day_from_1900_to_2200_round_trips(void **state)
{
    int64_t   days, y, cy;
    unsigned  m, d, cm, cd, mlen;
    static const unsigned  mdays[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    (void) state;

    /* walk the calendar by hand and compare, day after day */
    days = loyalty_days_from_civil(1900, 1, 1);
    y = 1900;
    m = 1;
    d = 1;

    while (y <= 2200) {
        assert_int_equal(loyalty_days_from_civil(y, m, d), days);

        loyalty_civil_from_days(days, &cy, &cm, &cd);
        assert_int_equal(cy, y);
        assert_int_equal(cm, m);
        assert_int_equal(cd, d);

        mlen = mdays[m - 1];

        if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
            mlen = 29;
        }

        days++;

        if (++d > mlen) {
            d = 1;

            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }

    assert_int_equal(days, loyalty_days_from_civil(2201, 1, 1));
    assert_int_equal(days - loyalty_days_from_civil(1900, 1, 1),
                     301 * 365 + 73);
}


static void
far_away_days_round_trip(void **state)
{
    int64_t   days, y;
    unsigned  m, d;

    (void) state;

    /* 400 years are exactly 146097 days, in either direction */
    assert_int_equal(loyalty_days_from_civil(2370, 3, 1)
                     - loyalty_days_from_civil(1970, 3, 1), 146097);
    assert_int_equal(loyalty_days_from_civil(-430, 3, 1)
                     - loyalty_days_from_civil(-830, 3, 1), 146097);

    for (days = -100000000; days <= 100000000; days += 9973) {
        loyalty_civil_from_days(days, &y, &m, &d);
        assert_true(m >= 1 && m <= 12);
        assert_true(d >= 1 && d <= 31);
        assert_int_equal(loyalty_days_from_civil(y, m, d), days);
    }
}


static void
muldiv_rounds_half_up_away_from_zero(void **state)
{
    (void) state;

    assert_muldiv(5, 1, 2, LOYALTY_ROUND_HALF_UP, 3);
    assert_muldiv(-5, 1, 2, LOYALTY_ROUND_HALF_UP, -3);
    assert_muldiv(5, -1, 2, LOYALTY_ROUND_HALF_UP, -3);
    assert_muldiv(7, 1, 3, LOYALTY_ROUND_HALF_UP, 2);
    assert_muldiv(8, 1, 3, LOYALTY_ROUND_HALF_UP, 3);
    assert_muldiv(-8, 1, 3, LOYALTY_ROUND_HALF_UP, -3);

    /* 15% of 3.33 is 0.4995 */
    assert_muldiv(333, 1500, 10000, LOYALTY_ROUND_HALF_UP, 50);
    /* 10% of 0.05 is exactly half a cent */
    assert_muldiv(5, 1000, 10000, LOYALTY_ROUND_HALF_UP, 1);
    assert_muldiv(4, 1000, 10000, LOYALTY_ROUND_HALF_UP, 0);
}


static void
muldiv_rounds_half_even_on_exact_ties_only(void **state)
{
    (void) state;

    assert_muldiv(5, 1, 2, LOYALTY_ROUND_HALF_EVEN, 2);
    assert_muldiv(7, 1, 2, LOYALTY_ROUND_HALF_EVEN, 4);
    assert_muldiv(1, 1, 2, LOYALTY_ROUND_HALF_EVEN, 0);
    assert_muldiv(3, 1, 2, LOYALTY_ROUND_HALF_EVEN, 2);
    assert_muldiv(-5, 1, 2, LOYALTY_ROUND_HALF_EVEN, -2);
    assert_muldiv(-7, 1, 2, LOYALTY_ROUND_HALF_EVEN, -4);
    assert_muldiv(25001, 1, 10000, LOYALTY_ROUND_HALF_EVEN, 3);
    assert_muldiv(24999, 1, 10000, LOYALTY_ROUND_HALF_EVEN, 2);
    assert_muldiv(333, 1500, 10000, LOYALTY_ROUND_HALF_EVEN, 50);
    assert_muldiv(5, 1000, 10000, LOYALTY_ROUND_HALF_EVEN, 0);
    assert_muldiv(15, 1000, 10000, LOYALTY_ROUND_HALF_EVEN, 2);
}


static void
muldiv_rounds_down_and_up_by_magnitude(void **state)
{
    (void) state;

    assert_muldiv(8, 1, 3, LOYALTY_ROUND_DOWN, 2);
    assert_muldiv(-8, 1, 3, LOYALTY_ROUND_DOWN, -2);
    assert_muldiv(333, 1500, 10000, LOYALTY_ROUND_DOWN, 49);
    assert_muldiv(7, 1, 3, LOYALTY_ROUND_UP, 3);
    assert_muldiv(-7, 1, 3, LOYALTY_ROUND_UP, -3);
    assert_muldiv(6, 1, 3, LOYALTY_ROUND_UP, 2);
    assert_muldiv(1, 1, 10000, LOYALTY_ROUND_UP, 1);
}


static void
muldiv_signs_follow_the_operands(void **state)
{
    (void) state;

    assert_muldiv(-6, -4, 3, LOYALTY_ROUND_EXACT, 8);
    assert_muldiv(6, -4, 3, LOYALTY_ROUND_EXACT, -8);
    assert_muldiv(-6, 4, 3, LOYALTY_ROUND_EXACT, -8);
    assert_muldiv(0, -4, 3, LOYALTY_ROUND_EXACT, 0);
    assert_muldiv(-6, 0, 3, LOYALTY_ROUND_EXACT, 0);
    assert_muldiv(-1, 1, 3, LOYALTY_ROUND_DOWN, 0);
}


static void
muldiv_exact_refuses_a_remainder(void **state)
{
    (void) state;

    assert_muldiv(6, 1, 3, LOYALTY_ROUND_EXACT, 2);
    assert_muldiv(1999, 3, 1, LOYALTY_ROUND_EXACT, 5997);
    assert_muldiv_refused(7, 1, 3, LOYALTY_ROUND_EXACT);
    assert_muldiv_refused(-7, 1, 3, LOYALTY_ROUND_EXACT);
    assert_muldiv_refused(333, 1500, 10000, LOYALTY_ROUND_EXACT);
}


static void
muldiv_uses_a_wide_intermediate_and_refuses_overflow(void **state)
{
    (void) state;

    /* the product overflows 64 bits; the quotient does not */
    assert_muldiv(INT64_MAX, INT64_MAX, INT64_MAX, LOYALTY_ROUND_EXACT,
                  INT64_MAX);
    assert_muldiv(INT64_MAX, 2, 2, LOYALTY_ROUND_EXACT, INT64_MAX);
    assert_muldiv(INT64_MIN, 3, 3, LOYALTY_ROUND_EXACT, INT64_MIN);
    assert_muldiv(INT64_MIN, 1, 1, LOYALTY_ROUND_EXACT, INT64_MIN);
    assert_muldiv(INT64_MIN, -1, 2, LOYALTY_ROUND_EXACT,
                  (int64_t) 1 << 62);

    assert_muldiv_refused(INT64_MAX, 2, 1, LOYALTY_ROUND_DOWN);
    assert_muldiv_refused(INT64_MIN, -1, 1, LOYALTY_ROUND_DOWN);
    assert_muldiv_refused(INT64_MIN, 2, 1, LOYALTY_ROUND_DOWN);
    assert_muldiv_refused(INT64_MAX, INT64_MAX, 1, LOYALTY_ROUND_DOWN);

    /* (2^64 - 1) / 2 is INT64_MAX and a half, odd: rounding up overflows */
    assert_muldiv(6148914691236517205LL, 3, 2, LOYALTY_ROUND_DOWN,
                  INT64_MAX);
    assert_muldiv_refused(6148914691236517205LL, 3, 2,
                          LOYALTY_ROUND_HALF_EVEN);
    assert_muldiv_refused(6148914691236517205LL, 3, 2,
                          LOYALTY_ROUND_HALF_UP);
    assert_muldiv_refused(6148914691236517205LL, 3, 2, LOYALTY_ROUND_UP);
    assert_muldiv(-6148914691236517205LL, 3, 2, LOYALTY_ROUND_HALF_UP,
                  INT64_MIN);
    assert_muldiv_refused(6148914691236517205LL, 3, 2,
                          LOYALTY_ROUND_EXACT);
}


static void
muldiv_refuses_a_divisor_that_is_not_positive(void **state)
{
    (void) state;

    assert_muldiv_refused(10, 1, 0, LOYALTY_ROUND_DOWN);
    assert_muldiv_refused(10, 1, -2, LOYALTY_ROUND_DOWN);
    assert_muldiv_refused(0, 0, 0, LOYALTY_ROUND_HALF_UP);
    assert_muldiv_refused(10, 1, INT64_MIN, LOYALTY_ROUND_EXACT);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(codes_are_trimmed_and_upper_cased),
        cmocka_unit_test(codes_of_only_white_space_are_empty),
        cmocka_unit_test(
            codes_longer_than_64_bytes_after_trimming_are_refused),
        cmocka_unit_test(bad_characters_are_reported_at_their_input_offset),
        cmocka_unit_test(
            identifiers_are_printable_ascii_without_spaces_or_braces),
        cmocka_unit_test(utc_times_parse_to_unix_seconds),
        cmocka_unit_test(offsets_are_subtracted_to_reach_utc),
        cmocka_unit_test(fractions_of_a_second_are_dropped),
        cmocka_unit_test(lower_case_separators_are_accepted),
        cmocka_unit_test(leap_days_exist_only_in_leap_years),
        cmocka_unit_test(dates_and_times_out_of_range_are_refused),
        cmocka_unit_test(
            a_leap_second_counts_as_the_last_second_of_its_minute),
        cmocka_unit_test(times_beyond_four_digit_years_are_refused),
        cmocka_unit_test(anything_but_rfc_3339_is_refused),
        cmocka_unit_test(formatting_writes_utc_and_round_trips),
        cmocka_unit_test(civil_dates_count_days_from_1970),
        cmocka_unit_test(every_day_from_1900_to_2200_round_trips),
        cmocka_unit_test(far_away_days_round_trip),
        cmocka_unit_test(muldiv_rounds_half_up_away_from_zero),
        cmocka_unit_test(muldiv_rounds_half_even_on_exact_ties_only),
        cmocka_unit_test(muldiv_rounds_down_and_up_by_magnitude),
        cmocka_unit_test(muldiv_signs_follow_the_operands),
        cmocka_unit_test(muldiv_exact_refuses_a_remainder),
        cmocka_unit_test(
            muldiv_uses_a_wide_intermediate_and_refuses_overflow),
        cmocka_unit_test(muldiv_refuses_a_divisor_that_is_not_positive),
    };

    return cmocka_run_group_tests_name("code_time", tests, NULL, NULL);
}
