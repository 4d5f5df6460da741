/*
 * The visit of one account (worker_account.c): what loyalty-worker
 * decides when the schedule says a customer is due.  Each test gives an
 * account as HGETALL returns it and checks every write, ledger entry and
 * event the visit makes, to the byte: account_apply.lua writes them as
 * they are.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "worker_account.h"

#include "unit_helpers.h"


#define NOW        1800000000LL         /* 2027-01-15 08:00 UTC */
#define YEAR_S     31536000LL
#define NOTICE     1209600LL            /* 14 days */

static loyalty_tier_t           tiers[2];
static worker_account_conf_t    conf;
static worker_account_visit_t   v;
static loyalty_str_t            fields[64];
static loyalty_str_t            head;
static const char              *why;


static int
setup(void **state)
{
    (void) reset_arena(state);

    tiers[0].name.data = "member";
    tiers[0].name.len = 6;
    tiers[0].threshold = 0;
    tiers[1].name.data = "gold";
    tiers[1].name.len = 4;
    tiers[1].threshold = 50000;

    memset(&conf, 0, sizeof(conf));
    conf.now = NOW;
    conf.customer.data = "c1";
    conf.customer.len = 2;
    conf.expire = YEAR_S;
    conf.notice = NOTICE;
    conf.tiers = tiers;
    conf.ntiers = 2;
    conf.window = YEAR_S;
    conf.month = "2027-01";
    conf.today = "01-15";
    conf.year = "2027";
    conf.birthday_points = 0;
    conf.alloc = arena_alloc;
    conf.ctx = &arena;

    head.data = "";
    head.len = 0;

    return 0;
}


/* The account "field", "value", ... NULL; returns what the visit did. */

static int
visit(const char *first, ...)
{
    size_t       n;
    va_list      args;
    const char  *s;

    va_start(args, first);

    for (n = 0, s = first; s != NULL; s = va_arg(args, const char *)) {
        fields[n].data = s;
        fields[n].len = strlen(s);
        n++;
    }

    va_end(args);

    return worker_account_visit(&conf, fields, n, &head, &v, &why);
}


/* the value the visit sets for a field, or NULL */

static const char *
set(const char *field)
{
    size_t       i;
    static char  buf[4][1024];
    static int   next;
    char        *p;

    for (i = 0; i < v.nset; i++) {
        if (v.set[2 * i].len == strlen(field)
            && memcmp(v.set[2 * i].data, field, v.set[2 * i].len) == 0)
        {
            p = buf[next++ % 4];
            snprintf(p, sizeof(buf[0]), "%.*s", (int) v.set[2 * i + 1].len,
                     v.set[2 * i + 1].data);
            return p;
        }
    }

    return NULL;
}


static int
deleted(const char *field)
{
    size_t  i;

    for (i = 0; i < v.ndel; i++) {
        if (v.del[i].len == strlen(field)
            && memcmp(v.del[i].data, field, v.del[i].len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
assert_str(loyalty_str_t s, const char *expected)
{
    char  buf[2048];

    snprintf(buf, sizeof(buf), "%.*s", (int) s.len, s.data);
    assert_string_equal(buf, expected);
}


#define PENDING(due)  "P|3550|" due "|35500|1|0123abcd|0|0|||0"


static void
a_due_order_is_credited_as_one_lot_with_its_ledger_entry_and_event(
    void **state)
{
    (void) state;

    head.data = "5\n1799000000\norder\n0\n3550\no-1";
    head.len = strlen(head.data);

    assert_int_equal(visit("a", "0", "p", "3550", "n", "1",
                           "e", "1796544000",
                           "o:o-1", PENDING("1799999990"), NULL), 0);

    assert_string_equal(set("o:o-1"), "C|3550|1799999990|35500|1|0123abcd|"
                                      "0|0|||0");
    assert_string_equal(set("a"), "3550");
    assert_string_equal(set("p"), "0");
    assert_string_equal(set("lt"), "3550");
    assert_string_equal(set("L"), "1831536000:3550");
    assert_string_equal(set("S"), "1800000000:35500:o-1");
    assert_null(set("t"));

    /* the first visit starts the statements: none this month */
    assert_string_equal(set("sm"), "2027-01");

    assert_int_equal(v.nentries, 1);
    assert_str(v.entries[0], "6\n1800000000\ncredit\n3550\n-3550\no-1");

    assert_int_equal(v.nevents, 1);
    assert_str(v.events[0], "type\npoints_credited\nid\npoints_credited:o-1\n"
                            "customer\nc1\nat\n1800000000\norders\no-1\n"
                            "points\n3550\navailable\n3550");

    assert_int_equal(v.issued, 3550);
    assert_int_equal(v.credited, 3550);
    assert_int_equal(v.expired, 0);

    /* next: the reminder before the lot expires */
    assert_int_equal(v.next, 1831536000LL - NOTICE);
}


static void
orders_credited_together_share_one_lot_and_one_event(void **state)
{
    (void) state;

    conf.ntiers = 0;

    assert_int_equal(visit("a", "100", "p", "7100",
                           "L", "1831536000:100",
                           "o:o-1", PENDING("1799999990"),
                           "o:o-2", PENDING("1799999999"), NULL), 0);

    assert_string_equal(set("L"), "1831536000:7200");
    assert_string_equal(set("a"), "7200");
    assert_int_equal(v.nentries, 2);
    assert_str(v.entries[0], "1\n1800000000\ncredit\n3550\n-3550\no-1");
    assert_str(v.entries[1], "2\n1800000000\ncredit\n3550\n-3550\no-2");
    assert_int_equal(v.nevents, 1);
    assert_str(v.events[0], "type\npoints_credited\nid\npoints_credited:o-1\n"
                            "customer\nc1\nat\n1800000000\norders\no-1,o-2\n"
                            "points\n7100\navailable\n7200");
}


static void
an_order_not_due_yet_changes_nothing_and_sets_the_next_visit(void **state)
{
    (void) state;

    assert_int_equal(visit("a", "0", "p", "3550",
                           "o:o-1", PENDING("1800000100"), NULL), 0);

    assert_int_equal(v.nset, 0);
    assert_int_equal(v.ndel, 0);
    assert_int_equal(v.nentries, 0);
    assert_int_equal(v.nevents, 0);
    assert_int_equal(v.next, 1800000100LL);
}


static void
a_shortfall_left_by_a_return_is_paid_first(void **state)
{
    (void) state;

    conf.ntiers = 0;

    assert_int_equal(visit("a", "0", "p", "3550", "sf", "1000",
                           "o:o-1", PENDING("1799999990"), NULL), 0);

    assert_string_equal(set("a"), "2550");
    assert_string_equal(set("L"), "1831536000:2550");
    assert_true(deleted("sf"));
    assert_null(set("S"));
    assert_str(v.entries[0], "1\n1800000000\ncredit\n2550\n-3550\no-1");
    assert_int_equal(v.issued, 2550);
    assert_int_equal(v.credited, 3550);
}


static void
a_return_before_credit_lowers_the_tier_spend(void **state)
{
    (void) state;

    assert_int_equal(visit("o:o-1", "P|3550|1799999990|35500|1|0123abcd|0|0"
                                    "|||5500", NULL), 0);

    assert_string_equal(set("S"), "1800000000:30000:o-1");
}


static void
expired_lots_leave_and_lots_soon_to_expire_are_reminded_once(void **state)
{
    (void) state;

    assert_int_equal(visit("a", "500", "L", "1799999000:200,1800500000:300",
                           NULL), 0);

    assert_string_equal(set("a"), "300");
    assert_string_equal(set("L"), "1800500000:300");
    assert_string_equal(set("xr"), "1800500000");
    assert_int_equal(v.expired, 200);

    assert_int_equal(v.nentries, 1);
    assert_str(v.entries[0], "1\n1800000000\nexpiry\n-200\n0");

    assert_int_equal(v.nevents, 2);
    assert_str(v.events[0], "type\npoints_expired\nid\npoints_expired:c1:"
                            "1800000000\ncustomer\nc1\nat\n1800000000\n"
                            "points\n200\navailable\n300");
    assert_str(v.events[1], "type\npoints_expiring\nid\npoints_expiring:c1:"
                            "1800500000\ncustomer\nc1\nat\n1800000000\n"
                            "points\n300\nexpires_at\n1800500000\n"
                            "available\n300");
    assert_int_equal(v.next, 1800500000LL);

    /* reminded already: nothing more */
    setup(state);
    assert_int_equal(visit("a", "300", "L", "1800500000:300",
                           "xr", "1800500000", NULL), 0);
    assert_int_equal(v.nset, 0);
    assert_int_equal(v.nevents, 0);
}


static void
a_customer_who_opted_out_gets_no_reminder(void **state)
{
    (void) state;

    assert_int_equal(visit("a", "300", "L", "1800500000:300", "mo", "1",
                           NULL), 0);

    assert_string_equal(set("xr"), "1800500000");
    assert_int_equal(v.nevents, 0);
}


static void
the_tier_goes_up_at_once_and_down_one_level_per_window(void **state)
{
    (void) state;

    assert_int_equal(visit("S", "1799000000:60000:o-0", NULL), 0);

    assert_string_equal(set("t"), "gold");
    assert_string_equal(set("tc"), "1800000000");
    assert_int_equal(v.nevents, 1);
    assert_str(v.events[0], "type\ntier_changed\nid\ntier_changed:c1:"
                            "1800000000\ncustomer\nc1\nat\n1800000000\n"
                            "from\nmember\nto\ngold\ndirection\nup");

    /* the spend left the window: 'one' keeps the tier a window long */
    setup(state);
    conf.downgrade_one = 1;
    assert_int_equal(visit("t", "gold", "tc", "1799999000",
                           "S", "1700000000:60000:o-0", NULL), 0);
    assert_null(set("t"));
    assert_false(deleted("t"));
    assert_true(deleted("S"));
    assert_int_equal(v.next, 1799999000LL + YEAR_S);

    /* 'full' drops it at once */
    setup(state);
    assert_int_equal(visit("t", "gold", "tc", "1799999000",
                           "S", "1700000000:60000:o-0", NULL), 0);
    assert_true(deleted("t"));
    assert_str(v.events[0], "type\ntier_changed\nid\ntier_changed:c1:"
                            "1800000000\ncustomer\nc1\nat\n1800000000\n"
                            "from\ngold\nto\nmember\ndirection\ndown");
}


static void
the_monthly_statement_goes_once_a_month(void **state)
{
    (void) state;

    assert_int_equal(visit("a", "300", "p", "50", "e", "1796544000",
                           "sm", "2026-12", "L", "1800500000:300",
                           "xr", "1800500000", NULL), 0);

    assert_string_equal(set("sm"), "2027-01");
    assert_int_equal(v.nevents, 1);
    assert_str(v.events[0], "type\nmonthly_statement\nid\nmonthly_statement:"
                            "c1:2027-01\ncustomer\nc1\nat\n1800000000\n"
                            "month\n2027-01\navailable\n300\npending\n50\n"
                            "expiring_soon\n300\nexpiring_at\n1800500000\n"
                            "tier\nmember\nnext_tier\ngold\n"
                            "to_next_tier\n50000");

    setup(state);
    assert_int_equal(visit("e", "1796544000", "sm", "2027-01", NULL), 0);
    assert_int_equal(v.nset, 0);
    assert_int_equal(v.nevents, 0);
}


static void
birthday_points_come_on_the_day_once_a_year(void **state)
{
    (void) state;

    conf.birthday_points = 100;

    assert_int_equal(visit("a", "0", "bd", "01-15", NULL), 0);

    assert_string_equal(set("by"), "2027");
    assert_string_equal(set("a"), "100");
    assert_string_equal(set("lt"), "100");
    assert_string_equal(set("L"), "1831536000:100");
    assert_str(v.entries[0], "1\n1800000000\nbonus\n100\n0\nbirthday:2027\n"
                             "birthday");
    assert_str(v.events[0], "type\nbirthday_bonus\nid\nbirthday_bonus:c1:2027"
                            "\ncustomer\nc1\nat\n1800000000\npoints\n100\n"
                            "available\n100");
    assert_str(v.birthday, "01-15");

    setup(state);
    conf.birthday_points = 100;
    assert_int_equal(visit("a", "100", "bd", "01-15", "by", "2027", NULL), 0);
    assert_int_equal(v.nentries, 0);

    /* the 29th of February on the 28th of a year without one */
    setup(state);
    conf.birthday_points = 100;
    conf.today = "02-28,02-29";
    assert_int_equal(visit("bd", "02-29", NULL), 0);
    assert_string_equal(set("by"), "2027");
}


static void
the_referral_of_a_credited_order_is_settled_until_it_is(void **state)
{
    (void) state;

    assert_int_equal(visit("o:o-1", "P|3550|1799999990|35500|1|0123abcd|0|0"
                                    "|REF1||0", NULL), 0);
    assert_str(v.referral, "REF1");
    assert_str(v.referral_order, "o-1");

    /* credited before, its referral not settled: settled now */
    setup(state);
    assert_int_equal(visit("o:o-1", "C|3550|1799999990|35500|1|0123abcd|0|0"
                                    "|REF1||0", NULL), 0);
    assert_str(v.referral, "REF1");

    setup(state);
    assert_int_equal(visit("rr", "rewarded",
                           "o:o-1", "C|3550|1799999990|35500|1|0123abcd|0|0"
                                    "|REF1||0", NULL), 0);
    assert_int_equal(v.referral.len, 0);
}


static void
records_of_older_versions_are_credited(void **state)
{
    (void) state;

    /* before coupons and returns: nine fields */
    assert_int_equal(visit("o:o-1", "P|3550|1799999990|35500|1|0123abcd|0|0|",
                           NULL), 0);
    assert_string_equal(set("o:o-1"), "C|3550|1799999990|35500|1|0123abcd|0|0|");
    assert_string_equal(set("S"), "1800000000:35500:o-1");
}


static void
an_account_that_is_not_what_the_module_writes_is_refused(void **state)
{
    (void) state;

    assert_int_equal(visit("a", "lots", NULL), -1);
    assert_non_null(why);

    assert_int_equal(visit("o:o-1", "P|3550||35500", NULL), -1);
    assert_int_equal(visit("L", "1800500000-300", NULL), -1);
    assert_int_equal(visit("S", "1800000000:30000", NULL), -1);

    /* a number past what any sum of them can hold */
    assert_int_equal(visit("a", "90000000000000000000", NULL), -1);
    assert_int_equal(visit("o:o-1", "P|1|1|1|v|f|0|0|||9066333333333333333",
                           NULL), -1);
}


static void
out_of_memory_is_reported(void **state)
{
    (void) state;

    arena.used = sizeof(arena.buf) - 64;

    assert_int_equal(visit("a", "0", "p", "3550",
                           "o:o-1", PENDING("1799999990"), NULL), -2);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(
            a_due_order_is_credited_as_one_lot_with_its_ledger_entry_and_event,
            setup),
        cmocka_unit_test_setup(
            orders_credited_together_share_one_lot_and_one_event, setup),
        cmocka_unit_test_setup(
            an_order_not_due_yet_changes_nothing_and_sets_the_next_visit,
            setup),
        cmocka_unit_test_setup(a_shortfall_left_by_a_return_is_paid_first,
                               setup),
        cmocka_unit_test_setup(a_return_before_credit_lowers_the_tier_spend,
                               setup),
        cmocka_unit_test_setup(
            expired_lots_leave_and_lots_soon_to_expire_are_reminded_once,
            setup),
        cmocka_unit_test_setup(a_customer_who_opted_out_gets_no_reminder,
                               setup),
        cmocka_unit_test_setup(
            the_tier_goes_up_at_once_and_down_one_level_per_window, setup),
        cmocka_unit_test_setup(the_monthly_statement_goes_once_a_month,
                               setup),
        cmocka_unit_test_setup(birthday_points_come_on_the_day_once_a_year,
                               setup),
        cmocka_unit_test_setup(
            the_referral_of_a_credited_order_is_settled_until_it_is, setup),
        cmocka_unit_test_setup(records_of_older_versions_are_credited,
                               setup),
        cmocka_unit_test_setup(
            an_account_that_is_not_what_the_module_writes_is_refused, setup),
        cmocka_unit_test_setup(out_of_memory_is_reported, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
