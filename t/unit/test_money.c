/* Money parsing and formatting: exact decimal arithmetic on the text. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_money.h"


static const loyalty_money_spec_t  eur = {
    2, LOYALTY_ROUND_HALF_UP, -LOYALTY_MONEY_LIMIT, LOYALTY_MONEY_LIMIT
};


static loyalty_money_rc_t
parse(const char *text, const loyalty_money_spec_t *spec, int64_t *out)
{
    *out = -424242;
    return loyalty_money_parse(text, strlen(text), spec, out);
}


static void
assert_minor(const char *text, const loyalty_money_spec_t *spec,
    int64_t expected)
{
    int64_t  v;

    assert_int_equal(parse(text, spec, &v), LOYALTY_MONEY_OK);
    assert_int_equal(v, expected);
}


static void
assert_refused(const char *text, const loyalty_money_spec_t *spec,
    loyalty_money_rc_t expected)
{
    int64_t  v;

    assert_int_equal(parse(text, spec, &v), expected);
    assert_int_equal(v, -424242);
}


static void
integers_and_decimals_become_minor_units(void **state)
{
    (void) state;

    assert_minor("0", &eur, 0);
    assert_minor("19.99", &eur, 1999);
    assert_minor("19.9", &eur, 1990);
    assert_minor("19", &eur, 1900);
    assert_minor("0.01", &eur, 1);
    assert_minor("0.10", &eur, 10);
    assert_minor("100.00", &eur, 10000);
    assert_minor("-0", &eur, 0);
    assert_minor("-0.50", &eur, -50);
    assert_minor("1000000.5", &eur, 100000050);
}


static void
float_artifacts_round_to_the_intended_cent(void **state)
{
    (void) state;

    /* what 0.1 + 0.2 and 19.99 * 3 print as in JavaScript */
    assert_minor("0.30000000000000004", &eur, 30);
    assert_minor("59.970000000000006", &eur, 5997);
    assert_minor("19.989999999999998", &eur, 1999);
    assert_minor("4.35", &eur, 435);
    assert_minor("1.005", &eur, 101);
}


static void
exponent_forms_are_exact(void **state)
{
    (void) state;

    assert_minor("1e2", &eur, 10000);
    assert_minor("1E2", &eur, 10000);
    assert_minor("1.999e1", &eur, 1999);
    assert_minor("1999e-2", &eur, 1999);
    assert_minor("5e-3", &eur, 1);
    assert_minor("4e-3", &eur, 0);
    assert_minor("0e999999999", &eur, 0);
    assert_minor("1e-999999999", &eur, 0);
    assert_minor("1e+1", &eur, 1000);
}


static void
extra_decimals_follow_the_rounding_mode(void **state)
{
    loyalty_money_spec_t  s = eur;

    (void) state;

    s.round = LOYALTY_ROUND_HALF_UP;
    assert_minor("0.125", &s, 13);
    assert_minor("-0.125", &s, -13);
    assert_minor("0.1249", &s, 12);

    s.round = LOYALTY_ROUND_HALF_EVEN;
    assert_minor("0.125", &s, 12);
    assert_minor("0.135", &s, 14);
    assert_minor("0.1251", &s, 13);
    assert_minor("0.005", &s, 0);
    assert_minor("0.015", &s, 2);

    s.round = LOYALTY_ROUND_DOWN;
    assert_minor("0.129", &s, 12);
    assert_minor("-0.129", &s, -12);

    s.round = LOYALTY_ROUND_UP;
    assert_minor("0.121", &s, 13);
    assert_minor("0.1200000", &s, 12);
    assert_minor("-0.121", &s, -13);

    s.round = LOYALTY_ROUND_EXACT;
    assert_minor("0.120", &s, 12);
    assert_minor("12e-2", &s, 12);
    assert_refused("0.121", &s, LOYALTY_MONEY_PRECISION);
    assert_refused("1e-9", &s, LOYALTY_MONEY_PRECISION);
}


static void
currency_decimals_set_the_minor_unit(void **state)
{
    loyalty_money_spec_t  yen = eur, dinar = eur;

    (void) state;

    yen.decimals = 0;
    dinar.decimals = 3;

    assert_minor("1500", &yen, 1500);
    assert_minor("1500.5", &yen, 1501);
    assert_minor("1.234", &dinar, 1234);
    assert_minor("1.2345", &dinar, 1235);

    assert_int_equal(loyalty_currency_decimals("EUR", 3), 2);
    assert_int_equal(loyalty_currency_decimals("JPY", 3), 0);
    assert_int_equal(loyalty_currency_decimals("KWD", 3), 3);
    assert_int_equal(loyalty_currency_decimals("XPF", 3), 0);
    assert_int_equal(loyalty_currency_decimals("eur", 3), -1);
    assert_int_equal(loyalty_currency_decimals("EURO", 4), -1);
    assert_int_equal(loyalty_currency_decimals("E1R", 3), -1);
}


static void
range_is_enforced(void **state)
{
    loyalty_money_spec_t  s = eur;

    (void) state;

    assert_minor("10000000000000", &eur, LOYALTY_MONEY_LIMIT);
    assert_refused("10000000000000.01", &eur, LOYALTY_MONEY_RANGE);
    assert_refused("99999999999999999999999", &eur, LOYALTY_MONEY_RANGE);
    assert_refused("1e400", &eur, LOYALTY_MONEY_RANGE);
    assert_refused("1e99999999999999999999", &eur, LOYALTY_MONEY_RANGE);
    assert_refused("-1e400", &eur, LOYALTY_MONEY_RANGE);

    /* the limit holds whatever the bounds: rounding up past it is refused */
    s.max = LOYALTY_MONEY_LIMIT + 1;
    s.round = LOYALTY_ROUND_UP;
    assert_refused("10000000000000.0000001", &s, LOYALTY_MONEY_RANGE);
    s.round = LOYALTY_ROUND_DOWN;
    assert_minor("10000000000000.0000001", &s, LOYALTY_MONEY_LIMIT);

    s.min = 0;
    s.max = 100000;
    assert_minor("1000", &s, 100000);
    assert_refused("1000.01", &s, LOYALTY_MONEY_RANGE);
    assert_refused("-0.01", &s, LOYALTY_MONEY_RANGE);
    assert_refused("-0.001", &s, LOYALTY_MONEY_RANGE);
    assert_refused("-1e-400", &s, LOYALTY_MONEY_RANGE);
    assert_minor("-0", &s, 0);
}


static void
anything_but_a_json_number_is_a_syntax_error(void **state)
{
    static const char  *bad[] = {
        "", "-", "+1", "01", "00.5", ".5", "5.", "1.2.3", "1e", "1e+",
        "1e-", "e5", " 1", "1 ", "1,50", "0x10", "NaN", "Infinity",
        "--1", "1-", "１", "1.5e2.5", "12abc", "1_000", "\t1"
    };
    size_t  i;
    int64_t v;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &eur, &v), LOYALTY_MONEY_SYNTAX);
    }

    /* an embedded NUL ends nothing: the length decides */
    assert_int_equal(loyalty_money_parse("1\0" "2", 3, &eur, &v),
                     LOYALTY_MONEY_SYNTAX);
}


static void
formatting_round_trips(void **state)
{
    char        buf[LOYALTY_MONEY_TEXT_MAX];
    int64_t     v;
    size_t      i, len;
    static const char  *texts[] = {
        "0.00", "0.01", "0.10", "19.99", "-0.50", "-19.99", "100.00",
        "10000000000000.00"
    };

    (void) state;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_int_equal(parse(texts[i], &eur, &v), LOYALTY_MONEY_OK);
        len = loyalty_money_format(v, 2, buf);
        assert_string_equal(buf, texts[i]);
        assert_int_equal(len, strlen(texts[i]));
    }

    loyalty_money_format(1500, 0, buf);
    assert_string_equal(buf, "1500");
    loyalty_money_format(-5, 3, buf);
    assert_string_equal(buf, "-0.005");
    loyalty_money_format(INT64_MIN, 2, buf);
    assert_string_equal(buf, "-92233720368547758.08");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(integers_and_decimals_become_minor_units),
        cmocka_unit_test(float_artifacts_round_to_the_intended_cent),
        cmocka_unit_test(exponent_forms_are_exact),
        cmocka_unit_test(extra_decimals_follow_the_rounding_mode),
        cmocka_unit_test(currency_decimals_set_the_minor_unit),
        cmocka_unit_test(range_is_enforced),
        cmocka_unit_test(anything_but_a_json_number_is_a_syntax_error),
        cmocka_unit_test(formatting_round_trips),
    };

    return cmocka_run_group_tests_name("money", tests, NULL, NULL);
}
