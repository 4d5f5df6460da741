/* Coupons: the JSON form, its round trip, and the rules that price a cart. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_coupon.h"


/* 2026-11-27T00:00:00Z */
#define BLACK_FRIDAY  1795737600
#define DAY           86400


#define UNIT_QUOTED_JSON
#include "unit_helpers.h"


static loyalty_coupon_t          c;
static loyalty_coupon_error_t    err;
static loyalty_cart_t            cart;
static loyalty_coupon_verdict_t  v;


static int
read_coupon(const char *coupon)
{
    return loyalty_coupon_read(json("%s", coupon), arena_alloc, &arena, &c,
                               &err);
}


static void
use_coupon(const char *coupon)
{
    if (read_coupon(coupon) != 0) {
        fail_msg("%s: %s", err.field, err.message);
    }
}


static void
use_cart(const char *lines)
{
    loyalty_cart_spec_t   spec;
    loyalty_cart_error_t  cerr;

    loyalty_cart_spec_init(&spec);
    spec.currency = "EUR";

    if (loyalty_cart_read(json("%s", lines), &spec, arena_alloc, &arena,
                          &cart, &cerr)
        != LOYALTY_CART_OK)
    {
        fail_msg("%s", cerr.message);
    }
}


static void
evaluate(int64_t now, loyalty_round_t round)
{
    v.status = LOYALTY_COUPON_STATUS_N;
    v.eligible = -1;
    v.discount = -1;

    loyalty_coupon_evaluate(&c, &cart, now, round, &v);
}


static void
assert_verdict(loyalty_coupon_status_t status, int64_t eligible,
    int64_t discount)
{
    assert_string_equal(loyalty_coupon_status_name(v.status),
                        loyalty_coupon_status_name(status));
    assert_int_equal(v.eligible, eligible);
    assert_int_equal(v.discount, discount);
}


static void
assert_str(const loyalty_str_t *s, const char *expected)
{
    assert_int_equal(s->len, strlen(expected));
    assert_memory_equal(s->data, expected, s->len);
}


static void
assert_refused(const char *coupon, const char *field, const char *message)
{
    assert_int_equal(read_coupon(coupon), -1);
    assert_string_equal(err.field, field);

    if (field[0]) {
        assert_memory_equal(err.message, field, strlen(field));
        assert_int_equal(err.message[strlen(field)], ' ');
    }

    if (strstr(err.message, message) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", err.message, message);
    }
}


static void
assert_same_set(const loyalty_strset_t *a, const loyalty_strset_t *b)
{
    size_t  i;

    assert_int_equal(a->n, b->n);

    for (i = 0; i < a->n; i++) {
        assert_int_equal(a->items[i].len, b->items[i].len);
        assert_memory_equal(a->items[i].data, b->items[i].data,
                            a->items[i].len);
    }
}


static void
assert_same_coupon(const loyalty_coupon_t *a, const loyalty_coupon_t *b)
{
    int  k;

    assert_string_equal(a->code, b->code);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->value, b->value);
    assert_string_equal(a->currency, b->currency);
    assert_int_equal(a->decimals, b->decimals);
    assert_int_equal(a->starts_at, b->starts_at);
    assert_int_equal(a->ends_at, b->ends_at);
    assert_int_equal(a->min_spend, b->min_spend);
    assert_int_equal(a->max_discount, b->max_discount);
    assert_int_equal(a->max_uses, b->max_uses);
    assert_int_equal(a->per_customer, b->per_customer);
    assert_int_equal(a->release_on_return, b->release_on_return);

    for (k = 0; k < LOYALTY_MATCH_N; k++) {
        assert_same_set(&a->include[k], &b->include[k]);
        assert_same_set(&a->exclude[k], &b->exclude[k]);
    }
}


static void
a_fixed_coupon_is_read_from_its_json_form(void **state)
{
    (void) state;

    use_coupon("{'code':' save10 ','type':'fixed','value':'10',"
               "'currency':'EUR','starts_at':'2026-11-27T00:00:00Z',"
               "'ends_at':'2026-12-01T00:00:00+01:00','min_spend':50,"
               "'max_discount':null,'max_uses':1000,'per_customer':1}");

    assert_string_equal(c.code, "SAVE10");
    assert_int_equal(c.kind, LOYALTY_COUPON_FIXED);
    assert_int_equal(c.value, 1000);
    assert_string_equal(c.currency, "EUR");
    assert_int_equal(c.decimals, 2);
    assert_int_equal(c.starts_at, BLACK_FRIDAY);
    assert_int_equal(c.ends_at, BLACK_FRIDAY + 4 * DAY - 3600);
    assert_int_equal(c.min_spend, 5000);
    assert_int_equal(c.max_discount, 0);
    assert_int_equal(c.max_uses, 1000);
    assert_int_equal(c.per_customer, 1);
    assert_int_equal(c.include[LOYALTY_MATCH_SKU].n, 0);
    assert_int_equal(c.exclude[LOYALTY_MATCH_BRAND].n, 0);

    use_coupon("{'code':'YEN500','type':'fixed','value':500,"
               "'currency':'JPY','max_uses':999999999}");
    assert_int_equal(c.value, 500);
    assert_int_equal(c.decimals, 0);
    assert_int_equal(c.starts_at, 0);
    assert_int_equal(c.ends_at, 0);
    assert_int_equal(c.max_uses, 999999999);
    assert_int_equal(c.per_customer, 0);
    assert_int_equal(c.release_on_return, 0);

    use_coupon("{'code':'back','type':'percent','value':5,"
               "'release_on_return':true}");
    assert_int_equal(c.release_on_return, 1);
    use_coupon("{'code':'back','type':'percent','value':5,"
               "'release_on_return':false}");
    assert_int_equal(c.release_on_return, 0);
}


static void
a_percent_coupon_is_kept_in_basis_points(void **state)
{
    (void) state;

    use_coupon("{'code':'p15','type':'percent','value':15}");
    assert_int_equal(c.kind, LOYALTY_COUPON_PERCENT);
    assert_int_equal(c.value, 1500);
    assert_string_equal(c.currency, "");
    assert_int_equal(c.decimals, 0);

    use_coupon("{'code':'p','type':'percent','value':'12.5'}");
    assert_int_equal(c.value, 1250);
    use_coupon("{'code':'p','type':'percent','value':0.01}");
    assert_int_equal(c.value, 1);
    use_coupon("{'code':'p','type':'percent','value':'100.00'}");
    assert_int_equal(c.value, 10000);

    /* a currency lets a percentage carry money limits */
    use_coupon("{'code':'p','type':'percent','value':10,'currency':'KWD',"
               "'min_spend':'1.5','max_discount':'0.250'}");
    assert_string_equal(c.currency, "KWD");
    assert_int_equal(c.decimals, 3);
    assert_int_equal(c.min_spend, 1500);
    assert_int_equal(c.max_discount, 250);
}


static void
every_invalid_field_is_named(void **state)
{
    size_t  i;
    char    list[12000], doc[12100], *p;

    (void) state;

    assert_refused("[]", "", "a coupon is a JSON object");
    assert_refused("'SAVE10'", "", "a coupon is a JSON object");

    assert_refused("{'type':'percent','value':10}", "code",
                   "code is required, as a string");
    assert_refused("{'code':10,'type':'percent','value':10}", "code",
                   "is required, as a string");
    assert_refused("{'code':'','type':'percent','value':10}", "code",
                   "must be 1 to 64 letters, digits, '-', '_' or '.'");
    assert_refused("{'code':'save 10','type':'percent','value':10}", "code",
                   "must be 1 to 64 letters");
    assert_refused("{'code':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                   "AAAAAAAAAAAAAAA','type':'percent','value':10}", "code",
                   "must be 1 to 64 letters");

    assert_refused("{'code':'A','value':10}", "type",
                   "type must be \"fixed\" or \"percent\"");
    assert_refused("{'code':'A','type':'FIXED','value':10,"
                   "'currency':'EUR'}", "type", "\"fixed\" or \"percent\"");
    assert_refused("{'code':'A','type':'amount','value':10}", "type",
                   "\"fixed\" or \"percent\"");
    assert_refused("{'code':'A','type':1,'value':10}", "type",
                   "\"fixed\" or \"percent\"");

    assert_refused("{'code':'A','type':'fixed','value':10}", "currency",
                   "currency is required for a fixed amount");
    assert_refused("{'code':'A','type':'fixed','value':10,"
                   "'currency':'eur'}", "currency",
                   "must be an ISO 4217 code such as \"EUR\"");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'currency':null}", "currency", "ISO 4217");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'currency':978}", "currency", "ISO 4217");

    assert_refused("{'code':'A','type':'fixed','currency':'EUR'}", "value",
                   "value is required");
    assert_refused("{'code':'A','type':'fixed','currency':'EUR',"
                   "'value':null}", "value", "is required");
    assert_refused("{'code':'A','type':'fixed','currency':'EUR','value':0}",
                   "value", "must be an amount in EUR with at most 2 "
                   "decimals");
    assert_refused("{'code':'A','type':'fixed','currency':'EUR',"
                   "'value':'1.005'}", "value", "in EUR");
    assert_refused("{'code':'A','type':'fixed','currency':'EUR',"
                   "'value':-1}", "value", "in EUR");
    assert_refused("{'code':'A','type':'fixed','currency':'EUR',"
                   "'value':true}", "value", "in EUR");
    assert_refused("{'code':'A','type':'fixed','currency':'JPY',"
                   "'value':1.5}", "value",
                   "must be an amount in JPY with at most 0 decimals");

    assert_refused("{'code':'A','type':'percent','value':0}", "value",
                   "value must be a percentage from 0.01 to 100 with at "
                   "most two decimals");
    assert_refused("{'code':'A','type':'percent','value':100.01}", "value",
                   "a percentage");
    assert_refused("{'code':'A','type':'percent','value':'12.345'}",
                   "value", "a percentage");
    assert_refused("{'code':'A','type':'percent','value':-5}", "value",
                   "a percentage");
    assert_refused("{'code':'A','type':'percent'}", "value",
                   "a percentage");
    assert_refused("{'code':'A','type':'percent','value':[10]}", "value",
                   "a percentage");

    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'min_spend':50}", "min_spend",
                   "min_spend needs the coupon's currency");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_discount':'5'}", "max_discount",
                   "needs the coupon's currency");
    assert_refused("{'code':'A','type':'fixed','value':1,'currency':'EUR',"
                   "'min_spend':-1}", "min_spend", "in EUR");
    assert_refused("{'code':'A','type':'fixed','value':1,'currency':'EUR',"
                   "'max_discount':'5.001'}", "max_discount",
                   "with at most 2 decimals");

    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'starts_at':'tomorrow'}", "starts_at",
                   "starts_at must be an RFC 3339 time such as "
                   "\"2026-11-27T00:00:00Z\"");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'starts_at':1795737600}", "starts_at", "RFC 3339");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'ends_at':'2026-11-31T00:00:00Z'}", "ends_at",
                   "RFC 3339");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'starts_at':'1970-01-01T00:00:00Z'}", "starts_at",
                   "RFC 3339");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'starts_at':'2026-11-27T00:00:00Z',"
                   "'ends_at':'2026-11-26T00:00:00Z'}", "ends_at",
                   "ends_at must be after starts_at");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'starts_at':'2026-11-27T00:00:00Z',"
                   "'ends_at':'2026-11-27T01:00:00+01:00'}", "ends_at",
                   "must be after starts_at");

    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_uses':-1}", "max_uses",
                   "max_uses must be a whole number from 0 (unlimited) to "
                   "999999999");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_uses':1.5}", "max_uses", "whole number");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_uses':'10'}", "max_uses", "whole number");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_uses':1000000000}", "max_uses", "whole number");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'per_customer':1e1}", "per_customer", "whole number");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'release_on_return':'yes'}", "release_on_return",
                   "must be true or false");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'release_on_return':1}", "release_on_return",
                   "must be true or false");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_uses':3,'per_customer':4}", "per_customer",
                   "per_customer must not exceed max_uses");

    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'include':[]}", "include",
                   "include must be an object with skus, brands and/or "
                   "categories");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'include':{'colours':['red']}}", "include.colours",
                   "include.colours is not skus, brands or categories");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'include':{'skus':'A'}}", "include.skus",
                   "must be an array of at most 1000 strings");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'include':{'skus':['A',1]}}", "include.skus",
                   "include.skus must hold non-empty strings");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'exclude':{'brands':['']}}", "exclude.brands",
                   "must hold non-empty strings");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'exclude':{'categories':'shoes'}}", "exclude.categories",
                   "must be an array");

    /* a null list, like any null field, is no list */
    assert_int_equal(read_coupon("{'code':'A','type':'percent','value':10,"
                                 "'exclude':{'categories':null}}"), 0);

    /* unknown fields are refused, not ignored: a typo loses a rule */
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'max_use':1}", "max_use",
                   "max_use is not a coupon field");
    assert_refused("{'code':'A','type':'percent','value':10,"
                   "'disabled':true}", "disabled",
                   "is not a coupon field");

    /* at most 1000 entries in a list */
    for (p = list, i = 0; i < 1000; i++) {
        p += sprintf(p, "%s'S%zu'", i ? "," : "", i);
    }

    snprintf(doc, sizeof(doc), "{'code':'A','type':'percent','value':10,"
             "'include':{'skus':[%s]}}", list);
    use_coupon(doc);
    assert_int_equal(c.include[LOYALTY_MATCH_SKU].n, 1000);

    sprintf(p, ",'S1000'");
    arena.used = 0;
    snprintf(doc, sizeof(doc), "{'code':'A','type':'percent','value':10,"
             "'include':{'skus':[%s]}}", list);
    assert_refused(doc, "include.skus",
                   "must be an array of at most 1000 strings");
}


static void
lists_are_sorted_and_without_duplicates(void **state)
{
    const loyalty_strset_t  *s;

    (void) state;

    use_coupon("{'code':'A','type':'percent','value':10,"
               "'include':{'skus':['B','A','B','C','A'],'brands':['acme'],"
               "'categories':[]},"
               "'exclude':{'categories':['z','y','z'],"
               "'skus':['b','B','a','ab','a']}}");

    s = &c.include[LOYALTY_MATCH_SKU];
    assert_int_equal(s->n, 3);
    assert_str(&s->items[0], "A");
    assert_str(&s->items[1], "B");
    assert_str(&s->items[2], "C");

    assert_int_equal(c.include[LOYALTY_MATCH_BRAND].n, 1);
    assert_str(&c.include[LOYALTY_MATCH_BRAND].items[0], "acme");
    assert_int_equal(c.include[LOYALTY_MATCH_CATEGORY].n, 0);

    s = &c.exclude[LOYALTY_MATCH_CATEGORY];
    assert_int_equal(s->n, 2);
    assert_str(&s->items[0], "y");
    assert_str(&s->items[1], "z");

    /* bytes, not letters: upper case sorts first, a prefix before */
    s = &c.exclude[LOYALTY_MATCH_SKU];
    assert_int_equal(s->n, 4);
    assert_str(&s->items[0], "B");
    assert_str(&s->items[1], "a");
    assert_str(&s->items[2], "ab");
    assert_str(&s->items[3], "b");

    assert_int_equal(c.exclude[LOYALTY_MATCH_BRAND].n, 0);
}


static void
the_written_form_is_canonical(void **state)
{
    char    buf[1024];
    size_t  len;

    (void) state;

    use_coupon("{'code':' save10 ','type':'fixed','value':'10',"
               "'currency':'EUR','starts_at':'2026-11-27T01:00:00+01:00',"
               "'ends_at':'2026-11-30T23:00:00Z','min_spend':50,"
               "'max_uses':1000,'per_customer':1,"
               "'include':{'skus':['B','A','B']},"
               "'exclude':{'categories':['gift-cards']}}");

    len = loyalty_coupon_write(&c, buf, sizeof(buf));
    assert_string_equal(buf,
        "{\"code\":\"SAVE10\",\"type\":\"fixed\",\"value\":\"10.00\","
        "\"currency\":\"EUR\",\"starts_at\":\"2026-11-27T00:00:00Z\","
        "\"ends_at\":\"2026-11-30T23:00:00Z\",\"min_spend\":\"50.00\","
        "\"max_uses\":1000,\"per_customer\":1,"
        "\"include\":{\"skus\":[\"A\",\"B\"],\"brands\":[],"
        "\"categories\":[]},"
        "\"exclude\":{\"skus\":[],\"brands\":[],"
        "\"categories\":[\"gift-cards\"]}}");
    assert_int_equal(len, strlen(buf));

    use_coupon("{'code':'p','type':'percent','value':'12.5'}");
    len = loyalty_coupon_write(&c, buf, sizeof(buf));
    assert_string_equal(buf,
        "{\"code\":\"P\",\"type\":\"percent\",\"value\":\"12.50\","
        "\"max_uses\":0,\"per_customer\":0}");
    assert_int_equal(len, strlen(buf));

    use_coupon("{'release_on_return':true,'code':'r','type':'percent',"
               "'value':5}");
    len = loyalty_coupon_write(&c, buf, sizeof(buf));
    assert_string_equal(buf,
        "{\"code\":\"R\",\"type\":\"percent\",\"value\":\"5.00\","
        "\"max_uses\":0,\"per_customer\":0,\"release_on_return\":true}");
}


static void
writing_then_reading_gives_the_same_coupon(void **state)
{
    char              buf[4096], again[4096];
    size_t            i, len;
    loyalty_coupon_t  first;
    static const char  *coupons[] = {
        "{'code':' save10 ','type':'fixed','value':'10','currency':'EUR',"
        "'starts_at':'2026-11-27T01:00:00+01:00',"
        "'ends_at':'2026-11-30T23:00:00Z','min_spend':50,"
        "'max_discount':'7.5','max_uses':1000,'per_customer':1,"
        "'include':{'skus':['B','A','B'],'brands':['acme','zeta'],"
        "'categories':['shoes']},"
        "'exclude':{'categories':['gift-cards'],'skus':['A-GIFT']}}",

        "{'code':'p','type':'percent','value':'12.5'}",

        "{'code':'r','type':'percent','value':'5','release_on_return':true}",

        "{'code':'kwd','type':'percent','value':0.01,'currency':'KWD',"
        "'min_spend':'1.234','max_discount':'0.5',"
        "'ends_at':'9999-12-31T23:59:59Z'}",

        "{'code':'yen','type':'fixed','value':500,'currency':'JPY',"
        "'starts_at':'2026-11-27T00:00:00.75-05:30'}",

        "{'code':'odd','type':'percent','value':100,"
        "'include':{'skus':['a\\\"b','c\\\\d','e\\u0001f','caf\xc3\xa9',"
        "'\\u20ac','tab\\there','x/y','\x7f']}}",
    };

    (void) state;

    for (i = 0; i < sizeof(coupons) / sizeof(coupons[0]); i++) {
        use_coupon(coupons[i]);
        first = c;

        len = loyalty_coupon_write(&first, buf, sizeof(buf));
        assert_true(len > 0);
        assert_int_equal(len, strlen(buf));

        /* the written form is strict JSON that reads back the same */
        if (loyalty_coupon_read(json("%s", buf), arena_alloc, &arena, &c,
                                &err)
            != 0)
        {
            fail_msg("%s: %s in %s", err.field, err.message, buf);
        }

        assert_same_coupon(&first, &c);

        /* and writing it again changes nothing */
        assert_int_equal(loyalty_coupon_write(&c, again, sizeof(again)),
                         len);
        assert_string_equal(again, buf);
    }

    /* sorted by bytes; what needed escaping survived the trip */
    assert_int_equal(first.include[LOYALTY_MATCH_SKU].n, 8);
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[0], "a\"b");
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[1], "c\\d");
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[2], "caf\xc3\xa9");
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[3], "e\001f");
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[4], "tab\there");
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[6], "\x7f");
    assert_str(&first.include[LOYALTY_MATCH_SKU].items[7], "\xe2\x82\xac");
}


static void
writing_into_a_small_buffer_returns_0(void **state)
{
    char    full[2048], *buf;
    size_t  len, size;

    (void) state;

    use_coupon("{'code':'SAVE10','type':'fixed','value':'10',"
               "'currency':'EUR','starts_at':'2026-11-27T00:00:00Z',"
               "'ends_at':'2026-12-01T00:00:00Z','min_spend':50,"
               "'max_discount':'7.5','max_uses':1000,'per_customer':1,"
               "'include':{'skus':['A\\\"B','C']},"
               "'exclude':{'brands':['x\\u0001']}}");

    len = loyalty_coupon_write(&c, full, sizeof(full));
    assert_int_equal(len, strlen(full));

    /* a buffer of each size, exactly, so that ASan sees any overrun */
    for (size = 1; size <= len; size++) {
        buf = malloc(size);
        assert_non_null(buf);
        assert_int_equal(loyalty_coupon_write(&c, buf, size), 0);
        free(buf);
    }

    buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(loyalty_coupon_write(&c, buf, len + 1), len);
    assert_string_equal(buf, full);
    free(buf);

    assert_int_equal(loyalty_coupon_write(&c, full, 0), 0);
}


static void
a_coupon_before_its_start_is_not_started(void **state)
{
    (void) state;

    use_coupon("{'code':'BF','type':'percent','value':10,"
               "'starts_at':'2026-11-27T00:00:00Z'}");
    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1}]}");

    evaluate(BLACK_FRIDAY - 1, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_STARTED, 0, 0);

    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1000, 100);
}


static void
expired_coupon_is_refused_from_its_ends_at_second(void **state)
{
    (void) state;

    use_coupon("{'code':'BF','type':'percent','value':10,"
               "'starts_at':'2026-11-27T00:00:00Z',"
               "'ends_at':'2026-11-28T00:00:00Z'}");
    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1}]}");

    evaluate(BLACK_FRIDAY + DAY - 1, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1000, 100);

    evaluate(BLACK_FRIDAY + DAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_EXPIRED, 0, 0);

    evaluate(BLACK_FRIDAY + 400 * DAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_EXPIRED, 0, 0);

    /* an open-ended coupon never expires */
    use_coupon("{'code':'ALWAYS','type':'percent','value':10}");
    evaluate(INT64_MAX, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1000, 100);
    evaluate(0, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1000, 100);
}


static void
a_coupon_in_another_currency_is_not_applicable(void **state)
{
    loyalty_cart_spec_t   spec;
    loyalty_cart_error_t  cerr;

    (void) state;

    loyalty_cart_spec_init(&spec);
    assert_int_equal(loyalty_cart_read(json(
        "{'currency':'JPY','lines':[{'sku':'A','price':1000,"
        "'quantity':1}]}"), &spec, arena_alloc, &arena, &cart, &cerr),
        LOYALTY_CART_OK);

    use_coupon("{'code':'TENEUR','type':'fixed','value':10,"
               "'currency':'EUR'}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);

    use_coupon("{'code':'P','type':'percent','value':10,'currency':'EUR'}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);

    /* a percentage without money in it applies in any currency */
    use_coupon("{'code':'P','type':'percent','value':10}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1000, 100);

    use_coupon("{'code':'TENYEN','type':'fixed','value':10,"
               "'currency':'JPY'}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1000, 10);
}


static void
a_cart_without_eligible_lines_is_not_applicable(void **state)
{
    (void) state;

    use_coupon("{'code':'X','type':'percent','value':10,"
               "'include':{'skus':['X']}}");
    use_cart("{'lines':[{'sku':'A','price':'10.00','quantity':1},"
             "{'sku':'B','brand':'X','category':'X','price':'5.00',"
             "'quantity':2}]}");

    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);

    /* everything excluded is nothing eligible */
    use_coupon("{'code':'X','type':'fixed','value':1,'currency':'EUR',"
               "'exclude':{'skus':['A','B']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);
}


static void
min_spend_is_measured_on_eligible_lines_only(void **state)
{
    (void) state;

    use_coupon("{'code':'ACME5','type':'fixed','value':5,'currency':'EUR',"
               "'min_spend':'50.00','include':{'brands':['acme']}}");

    use_cart("{'lines':[{'sku':'A','brand':'acme','price':'30.00',"
             "'quantity':1},"
             "{'sku':'B','brand':'other','price':'100.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_MIN_SPEND, 3000, 0);

    use_cart("{'lines':[{'sku':'A','brand':'acme','price':'24.99',"
             "'quantity':2},"
             "{'sku':'B','brand':'other','price':'100.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_MIN_SPEND, 4998, 0);

    /* reaching it exactly is enough */
    use_cart("{'lines':[{'sku':'A','brand':'acme','price':'25.00',"
             "'quantity':2}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 5000, 500);
}


static void
a_fixed_discount_never_exceeds_the_eligible_subtotal(void **state)
{
    (void) state;

    use_coupon("{'code':'TEN','type':'fixed','value':'10.00',"
               "'currency':'EUR','include':{'categories':['books']}}");

    use_cart("{'lines':[{'sku':'A','category':'books','price':'2.50',"
             "'quantity':3},"
             "{'sku':'B','category':'toys','price':'50.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 750, 750);

    use_cart("{'lines':[{'sku':'A','category':'books','price':'20.00',"
             "'quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 2000, 1000);

    /* max_discount caps a fixed amount too */
    use_coupon("{'code':'TEN','type':'fixed','value':'10.00',"
               "'currency':'EUR','max_discount':'4.00'}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 2000, 400);
}


static void
percent_discounts_round_as_asked(void **state)
{
    (void) state;

    /* 15% of 3.33 is 0.4995 */
    use_coupon("{'code':'P15','type':'percent','value':15}");
    use_cart("{'lines':[{'sku':'A','price':'3.33','quantity':1}]}");

    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 333, 50);
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_EVEN);
    assert_verdict(LOYALTY_COUPON_VALID, 333, 50);
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_DOWN);
    assert_verdict(LOYALTY_COUPON_VALID, 333, 49);
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 333, 50);

    /* 10% of 0.05 is exactly half a cent */
    use_coupon("{'code':'P10','type':'percent','value':10}");
    use_cart("{'lines':[{'sku':'A','price':'0.05','quantity':1}]}");

    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 5, 1);
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_EVEN);
    assert_verdict(LOYALTY_COUPON_VALID, 5, 0);

    use_cart("{'lines':[{'sku':'A','price':'0.15','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_EVEN);
    assert_verdict(LOYALTY_COUPON_VALID, 15, 2);

    /* 12.5% of 19.99 is 2.49875; 100% is everything */
    use_coupon("{'code':'P','type':'percent','value':'12.5'}");
    use_cart("{'lines':[{'sku':'A','price':'19.99','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1999, 250);

    use_coupon("{'code':'ALL','type':'percent','value':100}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1999, 1999);

    use_coupon("{'code':'TINY','type':'percent','value':0.01}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 1999, 1);
}


static void
max_discount_caps_a_percentage(void **state)
{
    (void) state;

    use_coupon("{'code':'HALF','type':'percent','value':50,"
               "'currency':'EUR','max_discount':'25.00'}");

    use_cart("{'lines':[{'sku':'A','price':'200.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 20000, 2500);

    use_cart("{'lines':[{'sku':'A','price':'40.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 4000, 2000);

    use_cart("{'lines':[{'sku':'A','price':'50.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 5000, 2500);
}


static void
include_matches_by_sku_or_brand_or_category(void **state)
{
    (void) state;

    use_coupon("{'code':'MIX','type':'percent','value':100,"
               "'include':{'skus':['A'],'brands':['acme'],"
               "'categories':['shoes']}}");
    use_cart("{'lines':["
             "{'sku':'A','brand':'other','category':'hats','price':'1.00',"
             "'quantity':1},"
             "{'sku':'B','brand':'acme','category':'hats','price':'2.00',"
             "'quantity':1},"
             "{'sku':'C','brand':'other','category':'shoes','price':'4.00',"
             "'quantity':1},"
             "{'sku':'D','brand':'other','category':'hats','price':'8.00',"
             "'quantity':1},"
             "{'sku':'E','price':'16.00','quantity':1}]}");

    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 700, 700);

    /* matching is exact: no case folding, no prefixes */
    use_coupon("{'code':'MIX','type':'percent','value':100,"
               "'include':{'skus':['a','AB','D '],'brands':['ACME'],"
               "'categories':['shoe']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);

    /* numeric SKUs compare as their text */
    use_coupon("{'code':'EAN','type':'percent','value':100,"
               "'include':{'skus':['4006381333931']}}");
    use_cart("{'lines':[{'sku':4006381333931,'price':'3.00',"
             "'quantity':2},{'sku':'X','price':'1.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 600, 600);
}


static void
exclude_wins_over_include(void **state)
{
    (void) state;

    use_coupon("{'code':'ACME','type':'percent','value':100,"
               "'include':{'brands':['acme']},"
               "'exclude':{'skus':['A-GIFT']}}");
    use_cart("{'lines':["
             "{'sku':'A-GIFT','brand':'acme','price':'50.00','quantity':1},"
             "{'sku':'A-MUG','brand':'acme','price':'8.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 800, 800);

    /* an exclude list alone: everything but what it names */
    use_coupon("{'code':'NOGIFT','type':'percent','value':100,"
               "'exclude':{'categories':['gift-cards']}}");
    use_cart("{'lines':["
             "{'sku':'G','category':'gift-cards','price':'50.00',"
             "'quantity':1},"
             "{'sku':'M','category':'mugs','price':'8.00','quantity':1},"
             "{'sku':'N','price':'1.00','quantity':1}]}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 900, 900);

    /* the same value in both lists excludes */
    use_coupon("{'code':'BOTH','type':'percent','value':100,"
               "'include':{'categories':['mugs']},"
               "'exclude':{'categories':['mugs']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);
}


static void
lines_without_a_brand_never_match_a_brand_list(void **state)
{
    (void) state;

    use_cart("{'lines':["
             "{'sku':'A','price':'1.00','quantity':1},"
             "{'sku':'B','brand':'acme','price':'2.00','quantity':1}]}");

    use_coupon("{'code':'ACME','type':'percent','value':100,"
               "'include':{'brands':['acme']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 200, 200);

    /* nor is a line without a brand excluded by one */
    use_coupon("{'code':'NOACME','type':'percent','value':100,"
               "'exclude':{'brands':['acme']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 100, 100);

    use_coupon("{'code':'CAT','type':'percent','value':100,"
               "'include':{'categories':['x']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_NOT_APPLICABLE, 0, 0);
}


static void
a_mixed_cart_is_priced_in_exact_integers(void **state)
{
    (void) state;

    use_cart("{'lines':["
             "{'sku':'TEE','brand':'acme','category':'apparel',"
             "'price':'19.99','quantity':3},"
             "{'sku':'TEA','brand':'leaf','category':'food',"
             "'price':4.35,'quantity':7},"
             "{'sku':'CARD','category':'gift-cards','price':'0.01',"
             "'quantity':1},"
             "{'sku':'TV','brand':'acme','category':'electronics',"
             "'price':'1000.00','quantity':1}],"
             "'shipping':'4.95'}");
    assert_int_equal(cart.subtotal, 5997 + 3045 + 1 + 100000);

    /* 12.5% of 90.42 is 11.3025 */
    use_coupon("{'code':'MIX','type':'percent','value':'12.5',"
               "'currency':'EUR','min_spend':'90.42',"
               "'exclude':{'categories':['gift-cards','electronics']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 9042, 1130);

    /* 33.33% of 90.42 is 30.136986 */
    use_coupon("{'code':'THIRD','type':'percent','value':'33.33',"
               "'exclude':{'categories':['gift-cards','electronics']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 9042, 3014);
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_DOWN);
    assert_verdict(LOYALTY_COUPON_VALID, 9042, 3013);

    use_coupon("{'code':'MIN','type':'percent','value':'12.5',"
               "'currency':'EUR','min_spend':'90.43',"
               "'exclude':{'categories':['gift-cards','electronics']}}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_MIN_SPEND, 9042, 0);

    /* the largest cart and the largest percentage do not overflow */
    use_cart("{'lines':[{'sku':'A','price':'1000000.00','quantity':1}]}");
    use_coupon("{'code':'ALL','type':'percent','value':100}");
    evaluate(BLACK_FRIDAY, LOYALTY_ROUND_HALF_UP);
    assert_verdict(LOYALTY_COUPON_VALID, 100000000, 100000000);
}


static void
statuses_have_stable_names(void **state)
{
    int          i;
    const char  *name;
    static const char  *names[] = {
        "valid", "not_found", "not_started", "expired", "disabled",
        "exhausted", "customer_limit", "min_spend", "not_applicable",
        "rate_limited", "unverified"
    };

    (void) state;

    assert_int_equal(sizeof(names) / sizeof(names[0]),
                     LOYALTY_COUPON_STATUS_N);

    for (i = 0; i < LOYALTY_COUPON_STATUS_N; i++) {
        name = loyalty_coupon_status_name((loyalty_coupon_status_t) i);
        assert_string_equal(name, names[i]);
        assert_int_equal(loyalty_coupon_status_by_name(name, strlen(name)),
                         i);
    }

    assert_int_equal(loyalty_coupon_status_by_name("expired", 7),
                     LOYALTY_COUPON_EXPIRED);
    assert_int_equal(loyalty_coupon_status_by_name("valid", 4), -1);
    assert_int_equal(loyalty_coupon_status_by_name("VALID", 5), -1);
    assert_int_equal(loyalty_coupon_status_by_name("validx", 6), -1);
    assert_int_equal(loyalty_coupon_status_by_name("", 0), -1);
}


static void
strings_compare_by_bytes_then_by_length(void **state)
{
    loyalty_str_t  a = { "ab", 2 }, b = { "abc", 3 }, c2 = { "b", 1 },
                   d = { "ab\0", 2 }, e = { "\xc3", 1 };

    (void) state;

    assert_true(loyalty_str_cmp(&a, &b) < 0);
    assert_true(loyalty_str_cmp(&b, &a) > 0);
    assert_true(loyalty_str_cmp(&b, &c2) < 0);
    assert_int_equal(loyalty_str_cmp(&a, &d), 0);
    assert_true(loyalty_str_eq(&a, &d));
    assert_false(loyalty_str_eq(&a, &b));

    /* bytes above 0x7f sort after ASCII */
    assert_true(loyalty_str_cmp(&c2, &e) < 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup(a_fixed_coupon_is_read_from_its_json_form,
                               reset_arena),
        cmocka_unit_test_setup(a_percent_coupon_is_kept_in_basis_points,
                               reset_arena),
        cmocka_unit_test_setup(every_invalid_field_is_named, reset_arena),
        cmocka_unit_test_setup(lists_are_sorted_and_without_duplicates,
                               reset_arena),
        cmocka_unit_test_setup(the_written_form_is_canonical, reset_arena),
        cmocka_unit_test_setup(writing_then_reading_gives_the_same_coupon,
                               reset_arena),
        cmocka_unit_test_setup(writing_into_a_small_buffer_returns_0,
                               reset_arena),
        cmocka_unit_test_setup(a_coupon_before_its_start_is_not_started,
                               reset_arena),
        cmocka_unit_test_setup(
            expired_coupon_is_refused_from_its_ends_at_second, reset_arena),
        cmocka_unit_test_setup(
            a_coupon_in_another_currency_is_not_applicable, reset_arena),
        cmocka_unit_test_setup(
            a_cart_without_eligible_lines_is_not_applicable, reset_arena),
        cmocka_unit_test_setup(
            min_spend_is_measured_on_eligible_lines_only, reset_arena),
        cmocka_unit_test_setup(
            a_fixed_discount_never_exceeds_the_eligible_subtotal,
            reset_arena),
        cmocka_unit_test_setup(percent_discounts_round_as_asked,
                               reset_arena),
        cmocka_unit_test_setup(max_discount_caps_a_percentage, reset_arena),
        cmocka_unit_test_setup(
            include_matches_by_sku_or_brand_or_category, reset_arena),
        cmocka_unit_test_setup(exclude_wins_over_include, reset_arena),
        cmocka_unit_test_setup(
            lines_without_a_brand_never_match_a_brand_list, reset_arena),
        cmocka_unit_test_setup(a_mixed_cart_is_priced_in_exact_integers,
                               reset_arena),
        cmocka_unit_test(statuses_have_stable_names),
        cmocka_unit_test(strings_compare_by_bytes_then_by_length),
    };

    return cmocka_run_group_tests_name("coupon", tests, NULL, NULL);
}
