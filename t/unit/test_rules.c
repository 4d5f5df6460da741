/* The earning rules: points for an order, tiers, the program's JSON form. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_rules.h"


/* 2026-11-27T00:00:00Z */
#define BLACK_FRIDAY  1795737600
#define DAY           86400

/* 9999999999999.99, the largest amount a cart at 10^15 minor units holds */
#define BIG           999999999999999LL


#define UNIT_QUOTED_JSON
#include "unit_helpers.h"


static char                written[1 << 16];
static loyalty_program_t   prog, back;
static loyalty_cart_t      cart;
static loyalty_earning_t   how;


static loyalty_str_t
str(const char *s)
{
    loyalty_str_t  v;

    v.data = s;
    v.len = strlen(s);

    return v;
}


/* an EUR program earning points for every amount (minor units) */

static void
use_program(int64_t points, int64_t amount)
{
    loyalty_program_init(&prog);
    memcpy(prog.currency, "EUR", 4);
    prog.decimals = 2;
    prog.earn_points = points;
    prog.earn_amount = amount;
}


static void
add_multiplier(int kind, const char *value, int64_t factor)
{
    loyalty_multiplier_t  *m;

    m = &prog.multipliers[prog.nmultipliers++];
    m->kind = kind;
    m->value = str(value);
    m->factor = factor;
}


/* kind LOYALTY_ANY_LINE (value NULL) or a match */

static void
add_campaign(const char *name, int64_t factor, int64_t starts_at,
    int64_t ends_at, int kind, const char *value)
{
    loyalty_campaign_t  *c;

    c = &prog.campaigns[prog.ncampaigns++];
    c->name = str(name);
    c->factor = factor;
    c->starts_at = starts_at;
    c->ends_at = ends_at;
    c->kind = kind;
    c->value = value ? str(value) : str("");
}


static void
add_tier(const char *name, int64_t threshold, int64_t factor,
    const char *perks)
{
    loyalty_tier_t  *t;

    t = &prog.tiers[prog.ntiers++];
    t->name = str(name);
    t->threshold = threshold;
    t->factor = factor;
    t->perks = str(perks);
}


static void
read_cart(const char *body, int64_t max_units)
{
    loyalty_cart_spec_t   spec;
    loyalty_cart_error_t  cerr;

    loyalty_cart_spec_init(&spec);
    spec.currency = "EUR";
    spec.max_units = max_units;

    if (loyalty_cart_read(json("%s", body), &spec, arena_alloc, &arena,
                          &cart, &cerr)
        != LOYALTY_CART_OK)
    {
        fail_msg("%s: %s", cerr.field, cerr.message);
    }
}


static void
use_cart(const char *body)
{
    read_cart(body, 1000000);
}


static int64_t
earn(int64_t discount, int64_t redeemed, int64_t now)
{
    /* what the function does not set must show */
    memset(&how, 0x55, sizeof(loyalty_earning_t));

    return loyalty_points_earned(&prog, &cart, discount, redeemed, now,
                                 &how);
}


static void
assert_earned(int64_t points, int64_t basis, int64_t campaign)
{
    assert_int_equal(how.points, points);
    assert_int_equal(how.basis, basis);
    assert_int_equal(how.campaign, campaign);
}


/*
 * The minor units one line earned on, under a rate of 1 point per minor
 * unit and no multipliers: doubling that line alone adds exactly them.
 */

static int64_t
line_basis(const char *sku, int64_t discount, int64_t redeemed)
{
    int64_t  plain, doubled;

    plain = earn(discount, redeemed, BLACK_FRIDAY);
    add_multiplier(LOYALTY_MATCH_SKU, sku, 2000);
    doubled = earn(discount, redeemed, BLACK_FRIDAY);
    prog.nmultipliers--;

    return doubled - plain;
}


static void
assert_str(const loyalty_str_t *s, const char *expected)
{
    assert_int_equal(s->len, strlen(expected));
    assert_memory_equal(s->data, expected, s->len);
}


static void
assert_same_str(const loyalty_str_t *a, const loyalty_str_t *b)
{
    assert_int_equal(a->len, b->len);

    if (a->len) {
        assert_memory_equal(a->data, b->data, a->len);
    }
}


static void
assert_same_program(const loyalty_program_t *a, const loyalty_program_t *b)
{
    size_t  i;

    assert_string_equal(a->currency, b->currency);
    assert_int_equal(a->decimals, b->decimals);
    assert_int_equal(a->earn_points, b->earn_points);
    assert_int_equal(a->earn_amount, b->earn_amount);
    assert_int_equal(a->earn_round, b->earn_round);
    assert_int_equal(a->include, b->include);

    assert_int_equal(a->nmultipliers, b->nmultipliers);

    for (i = 0; i < a->nmultipliers; i++) {
        assert_int_equal(a->multipliers[i].kind, b->multipliers[i].kind);
        assert_same_str(&a->multipliers[i].value, &b->multipliers[i].value);
        assert_int_equal(a->multipliers[i].factor,
                         b->multipliers[i].factor);
    }

    assert_int_equal(a->ncampaigns, b->ncampaigns);

    for (i = 0; i < a->ncampaigns; i++) {
        assert_same_str(&a->campaigns[i].name, &b->campaigns[i].name);
        assert_int_equal(a->campaigns[i].factor, b->campaigns[i].factor);
        assert_int_equal(a->campaigns[i].starts_at,
                         b->campaigns[i].starts_at);
        assert_int_equal(a->campaigns[i].ends_at, b->campaigns[i].ends_at);
        assert_int_equal(a->campaigns[i].kind, b->campaigns[i].kind);
        assert_same_str(&a->campaigns[i].value, &b->campaigns[i].value);
    }

    assert_int_equal(a->ntiers, b->ntiers);

    for (i = 0; i < a->ntiers; i++) {
        assert_same_str(&a->tiers[i].name, &b->tiers[i].name);
        assert_int_equal(a->tiers[i].threshold, b->tiers[i].threshold);
        assert_int_equal(a->tiers[i].factor, b->tiers[i].factor);
        assert_same_str(&a->tiers[i].perks, &b->tiers[i].perks);
    }

    assert_int_equal(a->return_window, b->return_window);
    assert_int_equal(a->points_expire, b->points_expire);
    assert_int_equal(a->expire_notice, b->expire_notice);
    assert_int_equal(a->tier_window, b->tier_window);
    assert_int_equal(a->tier_downgrade, b->tier_downgrade);
    assert_int_equal(a->order_every, b->order_every);
    assert_int_equal(a->order_points, b->order_points);
    assert_int_equal(a->referrer_points, b->referrer_points);
    assert_int_equal(a->referred_points, b->referred_points);
    assert_int_equal(a->referral_limit, b->referral_limit);
    assert_int_equal(a->referral_period, b->referral_period);
    assert_int_equal(a->birthday_points, b->birthday_points);
    assert_same_str(&a->timezone, &b->timezone);
}


/* writes prog, reads it back into back */

static void
write_and_read(void)
{
    size_t                 len;
    loyalty_json_t        *root;
    loyalty_json_error_t   jerr;

    len = loyalty_program_write(&prog, written, sizeof(written));
    assert_true(len > 0);
    assert_int_equal(len, strlen(written));

    root = loyalty_json_parse(written, len, &limits, &jerr);

    if (root == NULL) {
        fail_msg("%s at %zu in %s", jerr.reason, jerr.offset, written);
    }

    assert_int_equal(loyalty_program_read(root, &back), 0);
}


static void
the_base_rate_earns_points_per_amount_rounded_down(void **state)
{
    (void) state;

    /* 10 points per 1.00: 59.97 is 599.7 points */
    use_program(10, 100);
    use_cart("{'lines':[{'sku':'TEE','price':'19.99','quantity':3}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 599);
    assert_earned(599, 5997, 1000);

    /* 1 point per 10.00: 99.99 is 9.999 points */
    use_program(1, 1000);
    use_cart("{'lines':[{'sku':'A','price':'99.99','quantity':1}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 9);
    assert_earned(9, 9999, 1000);

    use_cart("{'lines':[{'sku':'A','price':'9.99','quantity':1}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 0);
    assert_earned(0, 999, 1000);

    /* rounded once over the order, not line by line */
    use_cart("{'lines':[{'sku':'A','price':'5.00','quantity':1},"
             "{'sku':'B','price':'5.00','quantity':1}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 1);
    assert_earned(1, 1000, 1000);
}


static void
earn_rounding_decides_ties_and_remainders(void **state)
{
    char    body[128];
    size_t  i;
    static const struct {
        const char  *price;
        int64_t      down, up, half_up, half_even;
    } cases[] = {
        { "25.00", 2, 3, 3, 2 },        /* 2.5, a tie */
        { "35.00", 3, 4, 4, 4 },        /* 3.5, a tie */
        { "25.01", 2, 3, 3, 3 },
        { "24.99", 2, 3, 2, 2 },
        { "30.00", 3, 3, 3, 3 },        /* exact */
        { "0.01", 0, 1, 0, 0 },
    };

    (void) state;

    use_program(1, 1000);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{'lines':[{'sku':'A','price':'%s','quantity':1}]}",
                 cases[i].price);
        use_cart(body);

        prog.earn_round = LOYALTY_ROUND_DOWN;
        assert_int_equal(earn(0, 0, BLACK_FRIDAY), cases[i].down);
        prog.earn_round = LOYALTY_ROUND_UP;
        assert_int_equal(earn(0, 0, BLACK_FRIDAY), cases[i].up);
        prog.earn_round = LOYALTY_ROUND_HALF_UP;
        assert_int_equal(earn(0, 0, BLACK_FRIDAY), cases[i].half_up);
        prog.earn_round = LOYALTY_ROUND_HALF_EVEN;
        assert_int_equal(earn(0, 0, BLACK_FRIDAY), cases[i].half_even);
        assert_int_equal(how.points, cases[i].half_even);
    }

    /* a tie made by a factor: 1 per 1.00 on 1.00 at 2.5x */
    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_SKU, "A", 2500);
    use_cart("{'lines':[{'sku':'A','price':'1.00','quantity':1}]}");

    prog.earn_round = LOYALTY_ROUND_HALF_EVEN;
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 2);
    prog.earn_round = LOYALTY_ROUND_HALF_UP;
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 3);
}


static void
a_program_without_a_rate_earns_nothing(void **state)
{
    (void) state;

    use_cart("{'lines':[{'sku':'A','price':'100.00','quantity':1}],"
             "'shipping':'5.00'}");

    use_program(0, 100);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 0);
    assert_earned(0, 0, 0);

    use_program(10, 0);
    prog.include = LOYALTY_EARN_SHIPPING;
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 0);
    assert_earned(0, 0, 0);

    use_program(-10, 100);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 0);
    use_program(10, -100);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 0);

    /* the default program earns nothing either */
    loyalty_program_init(&prog);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 0);
    assert_earned(0, 0, 0);
}


static void
multipliers_match_by_sku_brand_or_category(void **state)
{
    (void) state;

    /* 1 point per 1.00 */
    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_SKU, "S1", 1500);
    add_multiplier(LOYALTY_MATCH_BRAND, "B2", 2000);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "C3", 2500);
    add_multiplier(LOYALTY_MATCH_SKU, "S5", 1250);

    use_cart("{'lines':["
             "{'sku':'S1','price':'10.00','quantity':1},"
             "{'sku':'S2','brand':'B2','price':'10.00','quantity':1},"
             "{'sku':'S3','category':'C3','price':'10.00','quantity':1},"
             "{'sku':'S4','brand':'S1','category':'B2','price':'10.00',"
             "'quantity':1},"
             "{'sku':'S5','price':'2.00','quantity':2}]}");

    /* 15 + 20 + 25 + 10 (a brand named like a sku is not that sku) + 5 */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 75);
    assert_earned(75, 4400, 1000);

    /* matching is exact: no case folding, no prefixes */
    use_cart("{'lines':[{'sku':'s1','brand':'B','category':'C33',"
             "'price':'10.00','quantity':1}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 10);
}


static void
a_factor_below_1_lowers_the_lines_it_names(void **state)
{
    (void) state;

    /* 1 point per 1.00; gift cards earn nothing, sale items half */
    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "gift-cards", 0);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "sale", 500);

    use_cart("{'lines':["
             "{'sku':'G1','category':'gift-cards','price':'50.00',"
             "'quantity':1},"
             "{'sku':'S1','category':'sale','price':'20.00','quantity':1},"
             "{'sku':'P1','price':'10.00','quantity':1}]}");

    /* 0 + 10 + 10 */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 20);

    /* a half-points campaign on sale lines, a live one */
    prog.nmultipliers = 0;
    add_campaign("slow-week", 500, BLACK_FRIDAY, BLACK_FRIDAY + DAY,
                 LOYALTY_MATCH_CATEGORY, "sale");

    /* 50 + 10 + 10 */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 70);

    /* when several name a line the highest still applies */
    add_multiplier(LOYALTY_MATCH_SKU, "G1", 0);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "gift-cards", 2000);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 120);
}


static void
the_highest_multiplier_applies_not_their_product(void **state)
{
    (void) state;

    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_SKU, "TEE", 1500);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "apparel", 3000);
    add_multiplier(LOYALTY_MATCH_BRAND, "acme", 2000);

    use_cart("{'lines':[{'sku':'TEE','brand':'acme','category':'apparel',"
             "'price':'10.00','quantity':1}]}");

    /* 3x, not 1.5 x 3 x 2 = 9x */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 30);

    /* wherever the highest stands in the list */
    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "apparel", 3000);
    add_multiplier(LOYALTY_MATCH_SKU, "TEE", 1500);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 30);

    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_BRAND, "acme", 2000);
    add_multiplier(LOYALTY_MATCH_SKU, "TEE", 1500);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 20);
    assert_earned(20, 1000, 1000);
}


static void
campaigns_apply_from_starts_at_until_before_ends_at(void **state)
{
    (void) state;

    use_program(1, 100);
    add_campaign("black-friday", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 3 * DAY,
                 LOYALTY_ANY_LINE, NULL);
    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1}]}");

    assert_int_equal(earn(0, 0, BLACK_FRIDAY - 1), 10);
    assert_earned(10, 1000, 1000);

    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 20);
    assert_earned(20, 1000, 2000);

    assert_int_equal(earn(0, 0, BLACK_FRIDAY + 3 * DAY - 1), 20);
    assert_earned(20, 1000, 2000);

    /* ends_at is the first second it no longer applies */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY + 3 * DAY), 10);
    assert_earned(10, 1000, 1000);
}


static void
a_scoped_campaign_applies_to_its_lines_only(void **state)
{
    (void) state;

    use_program(1, 100);
    add_campaign("shoe-week", 3000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_CATEGORY, "shoes");
    add_campaign("acme-days", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_BRAND, "acme");
    add_campaign("tee-hour", 1500, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_SKU, "TEE");

    use_cart("{'lines':["
             "{'sku':'BOOT','category':'shoes','price':'10.00',"
             "'quantity':1},"
             "{'sku':'MUG','brand':'acme','price':'10.00','quantity':1},"
             "{'sku':'TEE','price':'10.00','quantity':1},"
             "{'sku':'HAT','brand':'shoes','category':'acme',"
             "'price':'10.00','quantity':1}]}");

    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 30 + 20 + 15 + 10);
    assert_earned(75, 4000, 3000);

    assert_int_equal(earn(0, 0, BLACK_FRIDAY + 7 * DAY), 40);
    assert_earned(40, 4000, 1000);

    /* a line without a brand is in no brand's campaign */
    use_cart("{'lines':[{'sku':'MUG','price':'10.00','quantity':1}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 10);
    assert_earned(10, 1000, 1000);
}


static void
the_best_live_campaign_applies(void **state)
{
    (void) state;

    use_program(1, 100);
    add_campaign("small", 1500, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_ANY_LINE, NULL);
    add_campaign("double", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_ANY_LINE, NULL);
    add_campaign("over", 5000, BLACK_FRIDAY - 7 * DAY, BLACK_FRIDAY,
                 LOYALTY_ANY_LINE, NULL);
    add_campaign("later", 4000, BLACK_FRIDAY + DAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_ANY_LINE, NULL);
    add_campaign("a-only", 3000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_SKU, "A");

    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1},"
             "{'sku':'B','price':'10.00','quantity':1}]}");

    /* A at 3x, B at 2x; campaigns do not multiply with each other */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 30 + 20);
    assert_earned(50, 2000, 3000);

    /* a day later "later" is live and beats them all */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY + DAY), 40 + 40);
    assert_earned(80, 2000, 4000);

    assert_int_equal(earn(0, 0, BLACK_FRIDAY - 1), 50 + 50);
    assert_earned(100, 2000, 5000);
}


static void
a_multiplier_and_a_campaign_multiply(void **state)
{
    (void) state;

    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_BRAND, "acme", 2000);
    add_campaign("weekend", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 2 * DAY,
                 LOYALTY_ANY_LINE, NULL);

    use_cart("{'lines':[{'sku':'A','brand':'acme','price':'10.00',"
             "'quantity':1},"
             "{'sku':'B','price':'10.00','quantity':1}]}");

    /* a 2x product in a 2x weekend is 4x; the record names the campaign */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 40 + 20);
    assert_earned(60, 2000, 2000);

    assert_int_equal(earn(0, 0, BLACK_FRIDAY + 2 * DAY), 20 + 10);
    assert_earned(30, 2000, 1000);

    /* 1.5 x 1.5 is 2.25 exactly, rounded once */
    use_program(1, 100);
    add_multiplier(LOYALTY_MATCH_SKU, "A", 1500);
    add_campaign("a-week", 1500, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_SKU, "A");

    use_cart("{'lines':[{'sku':'A','price':'1.00','quantity':1}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 2);
    assert_earned(2, 100, 1500);

    use_cart("{'lines':[{'sku':'A','price':'1.00','quantity':4}]}");
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 9);
    assert_earned(9, 400, 1500);
}


static void
discount_and_redeemed_are_spread_over_the_lines_exactly(void **state)
{
    (void) state;

    /* 1 point per minor unit, so that points are the basis */
    use_program(1, 1);

    use_cart("{'lines':[{'sku':'A','price':'3.33','quantity':1},"
             "{'sku':'B','price':'3.33','quantity':1},"
             "{'sku':'C','price':'3.34','quantity':1}]}");

    assert_int_equal(earn(100, 0, BLACK_FRIDAY), 900);
    assert_earned(900, 900, 1000);
    assert_int_equal(line_basis("A", 100, 0), 300);
    assert_int_equal(line_basis("B", 100, 0), 300);
    assert_int_equal(line_basis("C", 100, 0), 300);

    /* discount and redeemed together: 1.50 off as 0.49, 0.50, 0.51 */
    assert_int_equal(earn(100, 50, BLACK_FRIDAY), 850);
    assert_earned(850, 850, 1000);
    assert_int_equal(line_basis("A", 100, 50), 284);
    assert_int_equal(line_basis("B", 100, 50), 283);
    assert_int_equal(line_basis("C", 100, 50), 283);

    /* a cent that does not divide falls on the last line it reaches */
    use_cart("{'lines':[{'sku':'A','price':'1.00','quantity':1},"
             "{'sku':'B','price':'1.00','quantity':1},"
             "{'sku':'C','price':'1.00','quantity':1}]}");

    assert_int_equal(earn(0, 1, BLACK_FRIDAY), 299);
    assert_int_equal(line_basis("A", 0, 1), 100);
    assert_int_equal(line_basis("B", 0, 1), 100);
    assert_int_equal(line_basis("C", 0, 1), 99);

    assert_int_equal(earn(2, 0, BLACK_FRIDAY), 298);
    assert_int_equal(line_basis("A", 2, 0), 100);
    assert_int_equal(line_basis("B", 2, 0), 99);
    assert_int_equal(line_basis("C", 2, 0), 99);

    /* in proportion to the lines: 4.00 off 10.00 and 30.00 (x2) */
    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1},"
             "{'sku':'B','price':'15.00','quantity':2}]}");

    assert_int_equal(earn(400, 0, BLACK_FRIDAY), 3600);
    assert_int_equal(line_basis("A", 400, 0), 900);
    assert_int_equal(line_basis("B", 400, 0), 2700);

    /* and a multiplied line earns on its share only: 900 + 2 x 2700 */
    add_multiplier(LOYALTY_MATCH_SKU, "B", 2000);
    assert_int_equal(earn(400, 0, BLACK_FRIDAY), 6300);
    assert_earned(6300, 3600, 1000);
}


static void
included_discounts_and_redeemed_value_earn(void **state)
{
    (void) state;

    use_program(1, 1);
    use_cart("{'lines':[{'sku':'A','price':'4.00','quantity':1},"
             "{'sku':'B','price':'6.00','quantity':1}]}");

    assert_int_equal(earn(100, 50, BLACK_FRIDAY), 850);
    assert_earned(850, 850, 1000);

    prog.include = LOYALTY_EARN_DISCOUNTS;
    assert_int_equal(earn(100, 50, BLACK_FRIDAY), 950);
    assert_earned(950, 950, 1000);

    prog.include = LOYALTY_EARN_REDEEMED;
    assert_int_equal(earn(100, 50, BLACK_FRIDAY), 900);
    assert_earned(900, 900, 1000);

    prog.include = LOYALTY_EARN_DISCOUNTS | LOYALTY_EARN_REDEEMED;
    assert_int_equal(earn(100, 50, BLACK_FRIDAY), 1000);
    assert_earned(1000, 1000, 1000);

    /* an included discount is not capped by the lines either */
    prog.include = LOYALTY_EARN_DISCOUNTS;
    assert_int_equal(earn(5000, 0, BLACK_FRIDAY), 1000);
}


static void
a_discount_beyond_the_subtotal_leaves_nothing_to_earn(void **state)
{
    (void) state;

    use_program(10, 100);
    use_cart("{'lines':[{'sku':'A','price':'4.00','quantity':1},"
             "{'sku':'B','price':'6.00','quantity':1}],"
             "'shipping':'4.95'}");

    assert_int_equal(earn(2000, 0, BLACK_FRIDAY), 0);
    assert_earned(0, 0, 1000);

    assert_int_equal(earn(1000, 0, BLACK_FRIDAY), 0);
    assert_int_equal(earn(600, 600, BLACK_FRIDAY), 0);
    assert_earned(0, 0, 1000);

    assert_int_equal(earn(999, 0, BLACK_FRIDAY), 0);
    assert_earned(0, 1, 1000);

    /* what exceeds the lines does not come off the shipping */
    prog.include = LOYALTY_EARN_SHIPPING;
    assert_int_equal(earn(2000, 0, BLACK_FRIDAY), 49);
    assert_earned(49, 495, 1000);
}


static void
shipping_and_tax_earn_only_when_included(void **state)
{
    (void) state;

    /* 10 points per 1.00 */
    use_program(10, 100);
    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1}],"
             "'shipping':'4.95','tax':'2.00'}");

    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 100);
    assert_earned(100, 1000, 1000);

    prog.include = LOYALTY_EARN_SHIPPING;
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 149);
    assert_earned(149, 1495, 1000);

    prog.include = LOYALTY_EARN_TAX;
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 120);
    assert_earned(120, 1200, 1000);

    prog.include = LOYALTY_EARN_SHIPPING | LOYALTY_EARN_TAX;
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 169);
    assert_earned(169, 1695, 1000);

    /* the discount comes off the lines only */
    assert_int_equal(earn(500, 0, BLACK_FRIDAY), 119);
    assert_earned(119, 1195, 1000);
}


static void
shipping_and_tax_earn_with_unscoped_campaigns_only(void **state)
{
    (void) state;

    use_program(1, 1);
    prog.include = LOYALTY_EARN_SHIPPING | LOYALTY_EARN_TAX;
    add_multiplier(LOYALTY_MATCH_SKU, "A", 3000);
    add_campaign("a-week", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_SKU, "A");
    add_campaign("launch-day", 1500, BLACK_FRIDAY, BLACK_FRIDAY + DAY,
                 LOYALTY_ANY_LINE, NULL);

    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1}],"
             "'shipping':'4.95','tax':'2.00'}");

    /* A at 3 x 2; shipping and tax at 1.5 only: 6000 + 1042.5 */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), 7042);
    assert_earned(7042, 1695, 2000);

    /* the scoped campaign alone leaves them at the base rate */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY + 2 * DAY), 6000 + 695);
    assert_earned(6695, 1695, 2000);

    /* no campaign: the multiplier still never reaches them */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY - 1), 3000 + 695);
    assert_earned(3695, 1695, 1000);
}


static void
a_cart_at_the_limits_does_not_overflow(void **state)
{
    (void) state;

    read_cart("{'lines':[{'sku':'A','price':'9999999999999.99',"
              "'quantity':1}],"
              "'shipping':'9999999999999.99','tax':'9999999999999.99'}",
              10000000000000LL);
    assert_int_equal(cart.subtotal, BIG);

    /* 1000 points per 100.00 at 100 x 100, shipping and tax at 100 */
    use_program(1000, 10000);
    prog.include = LOYALTY_EARN_SHIPPING | LOYALTY_EARN_TAX;
    add_multiplier(LOYALTY_MATCH_SKU, "A", 100000);
    add_campaign("all", 100000, BLACK_FRIDAY, BLACK_FRIDAY + DAY,
                 LOYALTY_ANY_LINE, NULL);

    /* (BIG x 10000 + 2 x BIG x 100) / 10 */
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), BIG * 1020);
    assert_earned(BIG * 1020, 3 * BIG, 100000);

    /* a discount of the whole lines at that scale */
    assert_int_equal(earn(BIG, 0, BLACK_FRIDAY), BIG * 20);
    assert_earned(BIG * 20, 2 * BIG, 100000);

    /* 1000 points per 1.00 at 100 x 100 is more than 64 bits hold */
    use_program(1000, 100);
    add_multiplier(LOYALTY_MATCH_SKU, "A", 100000);
    add_campaign("all", 100000, BLACK_FRIDAY, BLACK_FRIDAY + DAY,
                 LOYALTY_ANY_LINE, NULL);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), INT64_MAX);
    assert_earned(INT64_MAX, BIG, 100000);

    /* and just within them, exactly: BIG x 10 points at 1x */
    use_program(1000, 100);
    assert_int_equal(earn(0, 0, BLACK_FRIDAY), BIG * 10);
}


static void
the_tier_is_the_highest_threshold_reached(void **state)
{
    (void) state;

    use_program(10, 100);
    assert_null(loyalty_tier_for(&prog, 0));

    add_tier("member", 0, 1000, "");
    add_tier("silver", 20000, 1250, "free_shipping");
    add_tier("gold", 50000, 1500, "free_shipping,early_access");

    assert_null(loyalty_tier_for(&prog, -1));
    assert_ptr_equal(loyalty_tier_for(&prog, 0), &prog.tiers[0]);
    assert_ptr_equal(loyalty_tier_for(&prog, 19999), &prog.tiers[0]);
    assert_ptr_equal(loyalty_tier_for(&prog, 20000), &prog.tiers[1]);
    assert_ptr_equal(loyalty_tier_for(&prog, 35000), &prog.tiers[1]);
    assert_ptr_equal(loyalty_tier_for(&prog, 49999), &prog.tiers[1]);
    assert_ptr_equal(loyalty_tier_for(&prog, 50000), &prog.tiers[2]);
    assert_ptr_equal(loyalty_tier_for(&prog, LOYALTY_MONEY_LIMIT),
                     &prog.tiers[2]);
    assert_str(&loyalty_tier_for(&prog, 50001)->name, "gold");

    /* below a first threshold above 0 there is no tier */
    use_program(10, 100);
    add_tier("bronze", 10000, 1100, "");
    add_tier("silver", 20000, 1250, "");

    assert_null(loyalty_tier_for(&prog, 0));
    assert_null(loyalty_tier_for(&prog, 9999));
    assert_ptr_equal(loyalty_tier_for(&prog, 10000), &prog.tiers[0]);
    assert_ptr_equal(loyalty_tier_for(&prog, 20000), &prog.tiers[1]);
}


static void
the_written_program_is_the_json_the_worker_reads(void **state)
{
    size_t  len;

    (void) state;

    use_program(10, 100);
    len = loyalty_program_write(&prog, written, sizeof(written));
    assert_string_equal(written,
        "{\"currency\":\"EUR\",\"decimals\":2,\"earn_points\":10,"
        "\"earn_amount\":100,\"earn_rounding\":\"down\","
        "\"earn_include\":0,\"multipliers\":[],\"campaigns\":[],"
        "\"tiers\":[],\"return_window\":2592000,\"points_expire\":0,"
        "\"expire_notice\":0,\"tier_window\":31536000,"
        "\"tier_downgrade\":0,\"order_every\":0,\"order_points\":0,"
        "\"referrer_points\":0,\"referred_points\":0,"
        "\"referral_limit\":0,\"referral_period\":31536000,"
        "\"birthday_points\":0,\"timezone\":\"\"}");
    assert_int_equal(len, strlen(written));

    prog.earn_round = LOYALTY_ROUND_HALF_EVEN;
    prog.include = LOYALTY_EARN_SHIPPING | LOYALTY_EARN_REDEEMED;
    add_multiplier(LOYALTY_MATCH_BRAND, "acme", 2000);
    add_campaign("bf", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 3 * DAY,
                 LOYALTY_ANY_LINE, NULL);
    add_campaign("shoe-week", 3000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_CATEGORY, "shoes");
    add_tier("gold", 50000, 1500, "early_access");

    len = loyalty_program_write(&prog, written, sizeof(written));
    assert_int_equal(len, strlen(written));
    assert_non_null(strstr(written,
        "\"earn_rounding\":\"half_even\",\"earn_include\":9,"
        "\"multipliers\":[{\"brand\":\"acme\",\"factor\":2000}],"
        "\"campaigns\":[{\"name\":\"bf\",\"factor\":2000,"
        "\"starts_at\":1795737600,\"ends_at\":1795996800},"
        "{\"name\":\"shoe-week\",\"factor\":3000,"
        "\"starts_at\":1795737600,\"ends_at\":1796342400,"
        "\"category\":\"shoes\"}],"
        "\"tiers\":[{\"name\":\"gold\",\"threshold\":50000,"
        "\"factor\":1500,\"perks\":\"early_access\"}],"));
}


static void
writing_then_reading_gives_the_same_program(void **state)
{
    size_t  len;
    char    again[sizeof(written)];

    (void) state;

    loyalty_program_init(&prog);
    memcpy(prog.currency, "KWD", 4);
    prog.decimals = 3;
    prog.earn_points = 7;
    prog.earn_amount = 250;
    prog.earn_round = LOYALTY_ROUND_HALF_EVEN;
    prog.include = LOYALTY_EARN_SHIPPING | LOYALTY_EARN_TAX
                   | LOYALTY_EARN_REDEEMED;

    add_multiplier(LOYALTY_MATCH_SKU, "SHOE-41", 1500);
    add_multiplier(LOYALTY_MATCH_BRAND, "a\"b\\c", 2000);
    add_multiplier(LOYALTY_MATCH_CATEGORY, "caf\xc3\xa9/\xe2\x82\xac",
                   100000);
    add_multiplier(LOYALTY_MATCH_SKU, "tab\there\001", 1);

    add_campaign("black-friday", 2000, BLACK_FRIDAY, BLACK_FRIDAY + 3 * DAY,
                 LOYALTY_ANY_LINE, NULL);
    add_campaign("shoe-week", 3000, BLACK_FRIDAY, BLACK_FRIDAY + 7 * DAY,
                 LOYALTY_MATCH_CATEGORY, "shoes");
    add_campaign("acme \"days\"", 1250, -DAY, 0, LOYALTY_MATCH_BRAND,
                 "acme");
    add_campaign("one-sku", 100000, 0, INT64_MAX, LOYALTY_MATCH_SKU,
                 "4006381333931");

    add_tier("member", 0, 1000, "");
    add_tier("silver", 20000, 1250, "free_shipping");
    add_tier("gold", 50000, 1500, "free_shipping,early_access");

    prog.return_window = 14 * DAY;
    prog.points_expire = 365 * DAY;
    prog.expire_notice = 30 * DAY;
    prog.tier_window = 180 * DAY;
    prog.tier_downgrade = 1;
    prog.order_every = 10;
    prog.order_points = 500;
    prog.referrer_points = 1000;
    prog.referred_points = 250;
    prog.referral_limit = 5;
    prog.referral_period = 90 * DAY;
    prog.birthday_points = INT64_MAX;
    prog.timezone = str("America/Argentina/Buenos_Aires");

    write_and_read();
    assert_same_program(&prog, &back);

    /* what needed escaping survived, kinds and scopes too */
    assert_str(&back.multipliers[1].value, "a\"b\\c");
    assert_str(&back.multipliers[3].value, "tab\there\001");
    assert_int_equal(back.multipliers[2].kind, LOYALTY_MATCH_CATEGORY);
    assert_int_equal(back.campaigns[0].kind, LOYALTY_ANY_LINE);
    assert_int_equal(back.campaigns[3].kind, LOYALTY_MATCH_SKU);

    /* and writing it again changes nothing */
    len = strlen(written);
    assert_int_equal(loyalty_program_write(&back, again, sizeof(again)),
                     len);
    assert_string_equal(again, written);

    /* every rounding name reads back as itself */
    for (prog.earn_round = LOYALTY_ROUND_HALF_UP;
         prog.earn_round <= LOYALTY_ROUND_EXACT;
         prog.earn_round++)
    {
        write_and_read();
        assert_int_equal(back.earn_round, prog.earn_round);
    }
}


static void
a_full_program_survives_the_round_trip(void **state)
{
    size_t  i;
    char    names[3][LOYALTY_PROGRAM_MAX][16];

    (void) state;

    use_program(1, 1);

    for (i = 0; i < LOYALTY_PROGRAM_MAX; i++) {
        snprintf(names[0][i], sizeof(names[0][i]), "m%zu", i);
        snprintf(names[1][i], sizeof(names[1][i]), "c%zu", i);
        snprintf(names[2][i], sizeof(names[2][i]), "t%zu", i);

        add_multiplier((int) (i % LOYALTY_MATCH_N), names[0][i],
                       1000 + (int64_t) i);
        add_campaign(names[1][i], 2000 + (int64_t) i, (int64_t) i * DAY,
                     (int64_t) (i + 1) * DAY,
                     i % 4 == 3 ? LOYALTY_ANY_LINE : (int) (i % 4),
                     names[0][i]);
        add_tier(names[2][i], (int64_t) i * 10000, 1000 + (int64_t) i,
                 names[1][i]);
    }

    write_and_read();
    assert_int_equal(back.nmultipliers, LOYALTY_PROGRAM_MAX);
    assert_int_equal(back.ncampaigns, LOYALTY_PROGRAM_MAX);
    assert_int_equal(back.ntiers, LOYALTY_PROGRAM_MAX);

    /* an unscoped campaign reads back without a value */
    for (i = 3; i < LOYALTY_PROGRAM_MAX; i += 4) {
        prog.campaigns[i].value = str("");
    }

    assert_same_program(&prog, &back);
}


static void
writing_into_a_small_buffer_returns_0(void **state)
{
    char    *buf;
    size_t   len, size;

    (void) state;

    use_program(10, 100);
    add_multiplier(LOYALTY_MATCH_SKU, "A\"B", 1500);
    add_campaign("bf", 2000, BLACK_FRIDAY, BLACK_FRIDAY + DAY,
                 LOYALTY_MATCH_BRAND, "x\001");
    add_tier("gold", 50000, 1500, "early_access");

    len = loyalty_program_write(&prog, written, sizeof(written));
    assert_int_equal(len, strlen(written));

    /* a buffer of each size, exactly, so that ASan sees any overrun */
    for (size = 1; size <= len; size++) {
        buf = malloc(size);
        assert_non_null(buf);
        assert_int_equal(loyalty_program_write(&prog, buf, size), 0);
        free(buf);
    }

    buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(loyalty_program_write(&prog, buf, len + 1), len);
    assert_string_equal(buf, written);
    free(buf);

    assert_int_equal(loyalty_program_write(&prog, written, 0), 0);
}


static void
a_program_without_currency_or_tier_name_is_refused(void **state)
{
    (void) state;

    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'tiers':[{'name':'member','perks':''}],'timezone':''}"),
        &back), 0);
    assert_string_equal(back.currency, "EUR");
    assert_int_equal(back.ntiers, 1);

    assert_int_equal(loyalty_program_read(
        json("{'earn_rounding':'down',"
             "'tiers':[{'name':'member','perks':''}]}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':978,'earn_rounding':'down'}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EURO','earn_rounding':'down'}"), &back), -1);

    /* no loyalty_currency: a program that earns nothing, still read */
    assert_int_equal(loyalty_program_read(
        json("{'currency':'','earn_rounding':'down','timezone':''}"), &back),
        0);
    assert_string_equal(back.currency, "");

    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'tiers':[{'name':'member','perks':''},"
             "{'threshold':20000,'factor':1250,'perks':''}]}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'tiers':[{'name':null,'perks':''}]}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'tiers':[{'name':'member'}]}"), &back), -1);

    /* the rest of what the writer always writes */
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR'}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down'}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'multipliers':[{'colour':'red','factor':2000}]}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'campaigns':[{'factor':2000}]}"), &back), -1);

    assert_int_equal(loyalty_program_read(json("[]"), &back), -1);
    assert_int_equal(loyalty_program_read(NULL, &back), -1);
}


static void
a_program_that_would_read_as_something_else_is_refused(void **state)
{
    char    *p;
    size_t   i;

    (void) state;

    /* a rounding not known would silently round down */
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'sideways'}"), &back), -1);

    /* a currency of other than three letters */
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EU','earn_rounding':'down'}"), &back), -1);
    assert_int_equal(loyalty_program_read(
        json("{'currency':'','earn_rounding':'down'}"), &back), -1);

    /* a campaign scope that is not a string would apply to every line */
    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'campaigns':[{'name':'x','sku':123,'factor':2000}]}"), &back),
        -1);

    /* more multipliers than a program holds would be cut */
    p = written;
    p += sprintf(p, "{'currency':'EUR','earn_rounding':'down',"
                    "'multipliers':[");

    for (i = 0; i <= LOYALTY_PROGRAM_MAX; i++) {
        p += sprintf(p, "%s{'sku':'S%zu','factor':2000}", i ? "," : "", i);
    }

    sprintf(p, "]}");
    assert_int_equal(loyalty_program_read(json("%s", written), &back), -1);
}


static void
numbers_that_are_not_64_bit_integers_read_as_0(void **state)
{
    (void) state;

    assert_int_equal(loyalty_program_read(
        json("{'currency':'EUR','earn_rounding':'down',"
             "'earn_points':9999999999999999999,"
             "'earn_amount':9223372036854775808,"
             "'order_points':9223372036854775807,"
             "'referrer_points':-999999999999999999,"
             "'referred_points':1.5,'referral_limit':1e3,"
             "'birthday_points':'100','timezone':''}"), &back), 0);

    assert_int_equal(back.earn_points, 0);
    assert_int_equal(back.earn_amount, 0);
    assert_int_equal(back.order_points, INT64_MAX);
    assert_int_equal(back.referrer_points, -999999999999999999LL);
    assert_int_equal(back.referred_points, 0);
    assert_int_equal(back.referral_limit, 0);
    assert_int_equal(back.birthday_points, 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(
            the_base_rate_earns_points_per_amount_rounded_down,
            reset_arena),
        cmocka_unit_test_setup(earn_rounding_decides_ties_and_remainders,
                               reset_arena),
        cmocka_unit_test_setup(a_program_without_a_rate_earns_nothing,
                               reset_arena),
        cmocka_unit_test_setup(multipliers_match_by_sku_brand_or_category,
                               reset_arena),
        cmocka_unit_test_setup(a_factor_below_1_lowers_the_lines_it_names,
                               reset_arena),
        cmocka_unit_test_setup(
            the_highest_multiplier_applies_not_their_product, reset_arena),
        cmocka_unit_test_setup(
            campaigns_apply_from_starts_at_until_before_ends_at,
            reset_arena),
        cmocka_unit_test_setup(a_scoped_campaign_applies_to_its_lines_only,
                               reset_arena),
        cmocka_unit_test_setup(the_best_live_campaign_applies, reset_arena),
        cmocka_unit_test_setup(a_multiplier_and_a_campaign_multiply,
                               reset_arena),
        cmocka_unit_test_setup(
            discount_and_redeemed_are_spread_over_the_lines_exactly,
            reset_arena),
        cmocka_unit_test_setup(included_discounts_and_redeemed_value_earn,
                               reset_arena),
        cmocka_unit_test_setup(
            a_discount_beyond_the_subtotal_leaves_nothing_to_earn,
            reset_arena),
        cmocka_unit_test_setup(shipping_and_tax_earn_only_when_included,
                               reset_arena),
        cmocka_unit_test_setup(
            shipping_and_tax_earn_with_unscoped_campaigns_only, reset_arena),
        cmocka_unit_test_setup(a_cart_at_the_limits_does_not_overflow,
                               reset_arena),
        cmocka_unit_test(the_tier_is_the_highest_threshold_reached),
        cmocka_unit_test(the_written_program_is_the_json_the_worker_reads),
        cmocka_unit_test_setup(writing_then_reading_gives_the_same_program,
                               reset_arena),
        cmocka_unit_test_setup(a_full_program_survives_the_round_trip,
                               reset_arena),
        cmocka_unit_test(writing_into_a_small_buffer_returns_0),
        cmocka_unit_test_setup(
            a_program_without_currency_or_tier_name_is_refused, reset_arena),
        cmocka_unit_test_setup(
            a_program_that_would_read_as_something_else_is_refused,
            reset_arena),
        cmocka_unit_test_setup(
            numbers_that_are_not_64_bit_integers_read_as_0, reset_arena),
    };

    return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
