/*
 * Key names: the tag and suffix exact, and never past LOYALTY_KEY_MAX;
 * and the numbers sent with them, written without a printf.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_keys.h"
#include "loyalty_str.h"


static void
a_key_is_prefix_tag_and_suffix(void **state)
{
    char    buf[LOYALTY_KEY_MAX];
    size_t  n;

    (void) state;

    n = loyalty_key(buf, "coupon", "SAVE10", 6, ":res");
    assert_string_equal(buf, "loyalty:{coupon:SAVE10}:res");
    assert_int_equal(n, strlen(buf));

    n = loyalty_key(buf, "customer", "42", 2, "");
    assert_string_equal(buf, "loyalty:{customer:42}");
    assert_int_equal(n, strlen(buf));
}


static void
only_len_bytes_of_the_id_are_used(void **state)
{
    char  buf[LOYALTY_KEY_MAX];

    (void) state;

    loyalty_key(buf, "customer", "42 and more", 2, ":holds");
    assert_string_equal(buf, "loyalty:{customer:42}:holds");
}


static void
a_key_too_long_is_cut_at_the_buffer(void **state)
{
    char    buf[LOYALTY_KEY_MAX + 8], id[300];
    size_t  n;

    (void) state;

    memset(id, 'x', sizeof(id));
    memset(buf, '#', sizeof(buf));

    n = loyalty_key(buf, "customer", id, sizeof(id), ":holdv");

    assert_int_equal(n, LOYALTY_KEY_MAX - 1);
    assert_int_equal(strlen(buf), LOYALTY_KEY_MAX - 1);
    assert_memory_equal(buf, "loyalty:{customer:xxx", 21);
    assert_int_equal(buf[LOYALTY_KEY_MAX], '#');
}


static void
the_shards_and_orders_keep_their_names(void **state)
{
    char  buf[LOYALTY_KEY_MAX];

    (void) state;

    loyalty_key_shard(buf, 7, ":lease");
    assert_string_equal(buf, "loyalty:{due:7}:lease");

    loyalty_key_shard(buf, 15, "");
    assert_string_equal(buf, "loyalty:{due:15}");

    loyalty_key_due(buf, "42", 2, "");
    assert_memory_equal(buf, "loyalty:{due:", 13);

    /* FNV-1a of the order id, modulo 16: stable across versions */
    assert_int_equal(loyalty_key_order(buf, "o-9", 3), 18);
    assert_string_equal(buf, "loyalty:{orders:0}");
    assert_int_equal(loyalty_key_order(buf, "o-3", 3), 19);
    assert_string_equal(buf, "loyalty:{orders:14}");
    loyalty_key_order(buf, "o-2x", 3);
    assert_string_equal(buf, "loyalty:{orders:1}");
}


static void
integers_are_written_as_printf_writes_them(void **state)
{
    char       got[LOYALTY_INT_TEXT_MAX + 1], want[32];
    size_t     i, n;
    long long  v;

    static const long long  edges[] = {
        0, 1, -1, 9, 10, -10, 99, 100, 599, -599, 1799913600,
        999999999999999999LL, LLONG_MAX, LLONG_MIN, LLONG_MIN + 1
    };

    (void) state;

    for (i = 0; i < sizeof(edges) / sizeof(edges[0]) + 1000; i++) {
        v = i < sizeof(edges) / sizeof(edges[0])
            ? edges[i]
            : (long long) (i * 2654435761ULL * 40503ULL) >> (i % 60);

        n = loyalty_str_int(got, v);
        got[n] = '\0';
        snprintf(want, sizeof(want), "%lld", v);

        assert_string_equal(got, want);
        assert_true(n <= LOYALTY_INT_TEXT_MAX);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_key_is_prefix_tag_and_suffix),
        cmocka_unit_test(only_len_bytes_of_the_id_are_used),
        cmocka_unit_test(a_key_too_long_is_cut_at_the_buffer),
        cmocka_unit_test(the_shards_and_orders_keep_their_names),
        cmocka_unit_test(integers_are_written_as_printf_writes_them),
    };

    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
