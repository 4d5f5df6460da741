/* Key names: the tag and suffix exact, and never past LOYALTY_KEY_MAX. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_keys.h"


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

    loyalty_key_due(buf, "42", 2, "");
    assert_memory_equal(buf, "loyalty:{due:", 13);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_key_is_prefix_tag_and_suffix),
        cmocka_unit_test(only_len_bytes_of_the_id_are_used),
        cmocka_unit_test(a_key_too_long_is_cut_at_the_buffer),
        cmocka_unit_test(the_shards_and_orders_keep_their_names),
    };

    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
