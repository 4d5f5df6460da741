/* The cart: a shop's JSON mapped, validated and converted to integers. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_cart.h"


#define UNIT_ARENA_SIZE  (1 << 19)
#define UNIT_QUOTED_JSON
#define UNIT_JSON_FRESH_ARENA
#include "unit_helpers.h"


static void *
no_memory(void *ctx, size_t size)
{
    (void) ctx;
    (void) size;

    return NULL;
}


static loyalty_cart_t         cart;
static loyalty_cart_error_t   err;


static loyalty_cart_rc_t
read_cart(const loyalty_json_t *root, const loyalty_cart_spec_t *spec)
{
    return loyalty_cart_read(root, spec, arena_alloc, &arena, &cart, &err);
}


/* one line of one EUR cart */

static loyalty_cart_rc_t
read_line(const char *line)
{
    loyalty_cart_spec_t  spec;

    loyalty_cart_spec_init(&spec);

    return read_cart(json("{'currency':'EUR','lines':[%s]}", line), &spec);
}


static void
assert_str(const loyalty_str_t *s, const char *expected)
{
    assert_int_equal(s->len, strlen(expected));
    assert_memory_equal(s->data, expected, s->len);
}


/* the error names the field, and its message starts with that name */

static void
assert_error(loyalty_cart_rc_t rc, loyalty_cart_rc_t expected,
    const char *field, const char *message)
{
    assert_int_equal(rc, expected);
    assert_string_equal(err.field, field);
    assert_memory_equal(err.message, field, strlen(field));
    assert_int_equal(err.message[strlen(field)], ' ');

    if (strstr(err.message, message) == NULL) {
        fail_msg("\"%s\" does not contain \"%s\"", err.message, message);
    }
}


static void
a_full_cart_in_the_default_schema_is_read(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);

    assert_int_equal(read_cart(json(
        "{'customer':'cust-42','checkout_id':'chk-1','order_id':1001,"
        " 'currency':'EUR',"
        " 'lines':[{'sku':'TSHIRT-M','brand':'acme','category':'apparel',"
        "           'price':'19.99','quantity':3},"
        "          {'sku':4006381333931,'price':5,'quantity':1}],"
        " 'shipping':'4.95','tax':12.5,'coupon':' save10 ','points':250,"
        " 'referral':'friend-7'}"), &spec), LOYALTY_CART_OK);

    assert_str(&cart.customer, "cust-42");
    assert_str(&cart.checkout_id, "chk-1");
    assert_str(&cart.order_id, "1001");
    assert_string_equal(cart.currency, "EUR");
    assert_int_equal(cart.decimals, 2);

    assert_int_equal(cart.nlines, 2);
    assert_str(&cart.lines[0].sku, "TSHIRT-M");
    assert_str(&cart.lines[0].brand, "acme");
    assert_str(&cart.lines[0].category, "apparel");
    assert_int_equal(cart.lines[0].price, 1999);
    assert_int_equal(cart.lines[0].quantity, 3);
    assert_int_equal(cart.lines[0].total, 5997);

    /* a numeric SKU is kept as its text; no brand is an empty one */
    assert_str(&cart.lines[1].sku, "4006381333931");
    assert_int_equal(cart.lines[1].brand.len, 0);
    assert_int_equal(cart.lines[1].category.len, 0);
    assert_int_equal(cart.lines[1].price, 500);
    assert_int_equal(cart.lines[1].total, 500);

    assert_int_equal(cart.subtotal, 6497);
    assert_int_equal(cart.shipping, 495);
    assert_int_equal(cart.tax, 1250);
    assert_str(&cart.coupon, "SAVE10");
    assert_int_equal(cart.points, 250);
    assert_str(&cart.referral, "FRIEND-7");
}


static void
optional_fields_absent_or_null_are_empty(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);

    assert_int_equal(read_cart(json(
        "{'customer':null,'currency':'EUR','shipping':null,'tax':null,"
        " 'points':null,'coupon':null,'referral':null,"
        " 'lines':[{'sku':'A','brand':null,'price':'1','quantity':1}]}"),
        &spec), LOYALTY_CART_OK);

    assert_int_equal(cart.customer.len, 0);
    assert_int_equal(cart.checkout_id.len, 0);
    assert_int_equal(cart.order_id.len, 0);
    assert_int_equal(cart.lines[0].brand.len, 0);
    assert_int_equal(cart.shipping, 0);
    assert_int_equal(cart.tax, 0);
    assert_int_equal(cart.points, 0);
    assert_int_equal(cart.coupon.len, 0);
    assert_int_equal(cart.referral.len, 0);
    assert_int_equal(cart.subtotal, 100);
}


static void
the_subtotal_is_the_exact_sum_of_price_times_quantity(void **state)
{
    (void) state;

    assert_int_equal(read_line("{'sku':'A','price':19.99,'quantity':3}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.subtotal, 5997);

    /* 0.1 * 3 + 0.2 is 0.5, not 0.5000000000000001 */
    assert_int_equal(read_line("{'sku':'A','price':0.1,'quantity':3},"
                               "{'sku':'B','price':0.2,'quantity':1}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.lines[0].total, 30);
    assert_int_equal(cart.lines[1].total, 20);
    assert_int_equal(cart.subtotal, 50);

    /* a float artifact from the shop is the cent it meant */
    assert_int_equal(read_line("{'sku':'A','price':59.970000000000006,"
                               "'quantity':2}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.lines[0].price, 5997);
    assert_int_equal(cart.subtotal, 11994);

    assert_int_equal(read_line("{'sku':'A','price':'0','quantity':7}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.subtotal, 0);
}


static void
the_currency_sets_the_minor_unit(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);

    assert_int_equal(read_cart(json(
        "{'currency':'JPY','shipping':500,"
        " 'lines':[{'sku':'A','price':'1500','quantity':2}]}"), &spec),
        LOYALTY_CART_OK);
    assert_string_equal(cart.currency, "JPY");
    assert_int_equal(cart.decimals, 0);
    assert_int_equal(cart.subtotal, 3000);
    assert_int_equal(cart.shipping, 500);

    /* extra decimals follow the spec's rounding, half up by default */
    assert_int_equal(read_cart(json(
        "{'currency':'JPY','lines':[{'sku':'A','price':1500.5,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.subtotal, 1501);

    assert_int_equal(read_cart(json(
        "{'currency':'KWD','lines':[{'sku':'A','price':'1.234',"
        "'quantity':2}]}"), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.decimals, 3);
    assert_int_equal(cart.subtotal, 2468);

    spec.round = LOYALTY_ROUND_DOWN;
    assert_int_equal(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':'19.999',"
        "'quantity':1}]}"), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.subtotal, 1999);

    spec.round = LOYALTY_ROUND_EXACT;
    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':'19.999',"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be a whole number of minor units");
}


static void
the_default_currency_comes_from_the_spec(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.currency = "USD";

    assert_int_equal(read_cart(json(
        "{'lines':[{'sku':'A','price':'2.50','quantity':2}]}"), &spec),
        LOYALTY_CART_OK);
    assert_string_equal(cart.currency, "USD");
    assert_int_equal(cart.decimals, 2);
    assert_int_equal(cart.subtotal, 500);

    /* the cart's own currency wins */
    assert_int_equal(read_cart(json(
        "{'currency':'JPY','lines':[{'sku':'A','price':'250',"
        "'quantity':2}]}"), &spec), LOYALTY_CART_OK);
    assert_string_equal(cart.currency, "JPY");
    assert_int_equal(cart.subtotal, 500);

    spec.currency = "usd";
    assert_error(read_cart(json(
        "{'lines':[{'sku':'A','price':'2.50','quantity':2}]}"), &spec),
        LOYALTY_CART_INVALID, "/currency", "must be an ISO 4217 code");
}


static void
a_missing_currency_without_a_default_is_a_missing_field(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);

    assert_error(read_cart(json(
        "{'lines':[{'sku':'A','price':'2.50','quantity':2}]}"), &spec),
        LOYALTY_CART_MISSING, "/currency",
        "is required (or set loyalty_currency)");
    assert_string_equal(loyalty_cart_code(LOYALTY_CART_MISSING),
                        "missing_field");

    assert_error(read_cart(json(
        "{'currency':'eur','lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/currency",
        "must be an ISO 4217 code such as \"EUR\"");
    assert_error(read_cart(json(
        "{'currency':'EURO','lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/currency", "ISO 4217");
    assert_error(read_cart(json(
        "{'currency':978,'lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/currency",
        "must be a string, not a number");
}


static void
custom_pointers_map_a_shop_schema(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.pointer[LOYALTY_FIELD_CUSTOMER] = "/user/id";
    spec.pointer[LOYALTY_FIELD_CURRENCY] = "/cart/currency";
    spec.pointer[LOYALTY_FIELD_LINES] = "/cart/items";
    spec.pointer[LOYALTY_FIELD_COUPON] = "/discount/code";
    spec.pointer[LOYALTY_FIELD_DISCOUNT] = "/discount/amount";
    spec.pointer[LOYALTY_FIELD_LINE_SKU] = "/product/sku";
    spec.pointer[LOYALTY_FIELD_LINE_PRICE] = "/unit_price";
    spec.pointer[LOYALTY_FIELD_LINE_QUANTITY] = "/qty";

    assert_int_equal(read_cart(json(
        "{'user':{'id':77},'discount':{'code':'welcome'},"
        " 'cart':{'currency':'GBP','items':["
        "   {'product':{'sku':'MUG'},'unit_price':'8.50','qty':2},"
        "   {'product':{'sku':'CAP'},'unit_price':12,'qty':1}]},"
        " 'lines':'ignored','coupon':'IGNORED'}"), &spec), LOYALTY_CART_OK);

    assert_str(&cart.customer, "77");
    assert_string_equal(cart.currency, "GBP");
    assert_int_equal(cart.nlines, 2);
    assert_str(&cart.lines[0].sku, "MUG");
    assert_int_equal(cart.lines[0].price, 850);
    assert_int_equal(cart.lines[1].quantity, 1);
    assert_int_equal(cart.subtotal, 2900);
    assert_str(&cart.coupon, "WELCOME");

    /* errors name the pointer the shop configured */
    assert_error(read_cart(json(
        "{'cart':{'currency':'GBP','items':["
        "   {'product':{'sku':'MUG'},'unit_price':'8.50','qty':2},"
        "   {'product':{'sku':'CAP'},'unit_price':'x','qty':1}]}}"), &spec),
        LOYALTY_CART_INVALID, "/cart/items/1/unit_price",
        "is not a decimal number");
    assert_error(read_cart(json(
        "{'cart':{'currency':'GBP','items':["
        "   {'sku':'MUG','unit_price':'8.50','qty':2}]}}"), &spec),
        LOYALTY_CART_MISSING, "/cart/items/0/product/sku", "is required");
    assert_error(read_cart(json(
        "{'cart':{'currency':'GBP'},'lines':[]}"), &spec),
        LOYALTY_CART_MISSING, "/cart/items", "is required");
}


static void
amounts_in_minor_units_must_be_whole_numbers(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.amounts_minor = 1;

    assert_int_equal(read_cart(json(
        "{'currency':'EUR','shipping':495,'tax':'120',"
        " 'lines':[{'sku':'A','price':1999,'quantity':3},"
        "          {'sku':'B','price':'1','quantity':1}]}"), &spec),
        LOYALTY_CART_OK);
    assert_int_equal(cart.lines[0].price, 1999);
    assert_int_equal(cart.lines[1].price, 1);
    assert_int_equal(cart.subtotal, 5998);
    assert_int_equal(cart.shipping, 495);
    assert_int_equal(cart.tax, 120);

    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':'19.99',"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be a whole number of minor units");
    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':19.99,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be a whole number of minor units");
    assert_error(read_cart(json(
        "{'currency':'EUR','shipping':4.95,'lines':[{'sku':'A',"
        "'price':1,'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/shipping", "must be a whole number of minor units");

    /* the bound is max_units in minor units, written as minor units */
    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':100000001,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be from 0 to 100000000");
}


static void
missing_required_fields_are_named(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    assert_error(read_line("{'price':'1','quantity':1}"),
                 LOYALTY_CART_MISSING, "/lines/0/sku", "is required");
    assert_error(read_line("{'sku':'A','price':'1','quantity':1},"
                           "{'sku':'B','quantity':1}"),
                 LOYALTY_CART_MISSING, "/lines/1/price", "is required");
    assert_error(read_line("{'sku':'A','price':null,'quantity':1}"),
                 LOYALTY_CART_MISSING, "/lines/0/price", "is required");
    assert_error(read_line("{'sku':'A','price':'1'}"),
                 LOYALTY_CART_MISSING, "/lines/0/quantity", "is required");
    assert_error(read_line("{'sku':null,'price':'1','quantity':1}"),
                 LOYALTY_CART_MISSING, "/lines/0/sku", "is required");

    loyalty_cart_spec_init(&spec);

    assert_error(read_cart(json("{'currency':'EUR'}"), &spec),
                 LOYALTY_CART_MISSING, "/lines", "is required");

    spec.required |= LOYALTY_FIELD_BIT(LOYALTY_FIELD_CUSTOMER)
                     | LOYALTY_FIELD_BIT(LOYALTY_FIELD_SHIPPING)
                     | LOYALTY_FIELD_BIT(LOYALTY_FIELD_LINE_BRAND)
                     | LOYALTY_FIELD_BIT(LOYALTY_FIELD_POINTS);

    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','brand':'b','price':1,"
        "'quantity':1}],'shipping':0,'points':0}"), &spec),
        LOYALTY_CART_MISSING, "/customer", "/customer is required");
    assert_error(read_cart(json(
        "{'customer':null,'currency':'EUR','lines':[{'sku':'A',"
        "'brand':'b','price':1,'quantity':1}],'shipping':0,'points':0}"),
        &spec), LOYALTY_CART_MISSING, "/customer", "is required");
    assert_error(read_cart(json(
        "{'customer':'c','currency':'EUR','lines':[{'sku':'A',"
        "'price':1,'quantity':1}],'shipping':0,'points':0}"), &spec),
        LOYALTY_CART_MISSING, "/lines/0/brand", "is required");
    assert_error(read_cart(json(
        "{'customer':'c','currency':'EUR','lines':[{'sku':'A',"
        "'brand':'b','price':1,'quantity':1}],'points':0}"), &spec),
        LOYALTY_CART_MISSING, "/shipping", "is required");
    assert_error(read_cart(json(
        "{'customer':'c','currency':'EUR','lines':[{'sku':'A',"
        "'brand':'b','price':1,'quantity':1}],'shipping':0}"), &spec),
        LOYALTY_CART_MISSING, "/points", "is required");
    assert_int_equal(read_cart(json(
        "{'customer':'c','currency':'EUR','lines':[{'sku':'A',"
        "'brand':'b','price':1,'quantity':1}],'shipping':0,'points':0}"),
        &spec), LOYALTY_CART_OK);
}


static void
values_of_the_wrong_type_are_invalid_fields(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.currency = "EUR";

    assert_error(read_cart(json("{'lines':{'sku':'A'}}"), &spec),
                 LOYALTY_CART_INVALID, "/lines", "must be a non-empty array");
    assert_error(read_cart(json("{'lines':'A'}"), &spec),
                 LOYALTY_CART_INVALID, "/lines", "must be a non-empty array");
    assert_error(read_cart(json("{'customer':{},'lines':[]}"), &spec),
                 LOYALTY_CART_INVALID, "/customer",
                 "must be a string or a whole number");
    assert_error(read_cart(json("{'customer':-5,'lines':[]}"), &spec),
                 LOYALTY_CART_INVALID, "/customer",
                 "must be a string or a whole number");
    assert_error(read_cart(json("{'order_id':1.5,'lines':[]}"), &spec),
                 LOYALTY_CART_INVALID, "/order_id",
                 "must be a string or a whole number");
    assert_error(read_cart(json("{'checkout_id':true,'lines':[]}"), &spec),
                 LOYALTY_CART_INVALID, "/checkout_id",
                 "must be a string or a whole number");

    assert_error(read_line("{'sku':true,'price':1,'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/sku",
                 "must be a non-empty string");
    assert_error(read_line("{'sku':'','price':1,'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/sku",
                 "must be a non-empty string");
    assert_error(read_line("{'sku':-5,'price':1,'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/sku",
                 "must be a non-empty string");
    assert_error(read_line("{'sku':'A','brand':['x'],'price':1,"
                           "'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/brand",
                 "must be a non-empty string");
    assert_error(read_line("{'sku':'A','category':1.5,'price':1,"
                           "'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/category",
                 "must be a non-empty string");
    assert_error(read_line("{'sku':'A','price':true,'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/price",
                 "must be a number or a decimal string, not true");
    assert_error(read_line("{'sku':'A','price':'1,50','quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/price",
                 "is not a decimal number");
    assert_error(read_line("{'sku':'A','price':' 1.50','quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/price",
                 "is not a decimal number");
    assert_error(read_line("{'sku':'A','price':1,'quantity':'3'}"),
                 LOYALTY_CART_INVALID, "/lines/0/quantity",
                 "must be a whole number from 1 to 10000");

    assert_error(read_line("{'sku':'A','price':1,'quantity':1},'A'"),
                 LOYALTY_CART_INVALID, "/lines/1",
                 "must be an object, not a string");
    assert_error(read_line("{'sku':'A','price':1,'quantity':1},"
                           "{'sku':'B','price':1,'quantity':1},[]"),
                 LOYALTY_CART_INVALID, "/lines/2",
                 "/lines/2 must be an object, not an array");
    assert_error(read_line("null"), LOYALTY_CART_INVALID, "/lines/0",
                 "must be an object, not null");

    assert_error(read_cart(json(
        "{'shipping':[],'lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/shipping",
        "must be a number or a decimal string, not an array");
    assert_error(read_cart(json(
        "{'tax':false,'lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/tax",
        "must be a number or a decimal string, not false");
    assert_error(read_cart(json(
        "{'points':'250','lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/points",
        "must be a whole number from 0 to 1000000000");
    assert_error(read_cart(json(
        "{'points':-1,'lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/points", "from 0 to 1000000000");
    assert_error(read_cart(json(
        "{'points':1000000001,'lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID, "/points",
        "from 0 to 1000000000");
    assert_error(read_cart(json(
        "{'coupon':10,'lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/coupon",
        "must be a string, not a number");
    assert_error(read_cart(json(
        "{'referral':{},'lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/referral",
        "must be a string, not an object");

    assert_string_equal(loyalty_cart_code(LOYALTY_CART_INVALID),
                        "invalid_field");
}


static void
an_empty_lines_array_is_refused(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);

    assert_error(read_cart(json("{'currency':'EUR','lines':[]}"), &spec),
                 LOYALTY_CART_INVALID, "/lines",
                 "/lines must be a non-empty array");

    /* like every other field, null lines are absent lines */
    assert_error(read_cart(json("{'currency':'EUR','lines':null}"), &spec),
                 LOYALTY_CART_MISSING, "/lines", "/lines is required");
}


static void
quantities_are_whole_numbers_within_the_limit(void **state)
{
    char                 line[80];
    size_t               i;
    loyalty_cart_spec_t  spec;
    static const char   *bad[] = {
        "0", "-1", "1.5", "1.0", "1e2", "10001", "99999999999999999999",
        "'1'", "true", "[]"
    };

    (void) state;

    assert_int_equal(read_line("{'sku':'A','price':1,'quantity':10000}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.lines[0].quantity, 10000);
    assert_int_equal(cart.subtotal, 1000000);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "{'sku':'A','price':1,'quantity':%s}",
                 bad[i]);
        assert_error(read_line(line), LOYALTY_CART_INVALID,
                     "/lines/0/quantity",
                     "must be a whole number from 1 to 10000");
    }

    loyalty_cart_spec_init(&spec);
    spec.max_quantity = 5;

    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':1,'quantity':6}]}"),
        &spec), LOYALTY_CART_INVALID, "/lines/0/quantity",
        "must be a whole number from 1 to 5");
}


static void
too_many_lines_are_refused(void **state)
{
    size_t               i;
    char                *p;
    loyalty_cart_spec_t  spec;
    static char          lines[1 << 15];

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.max_lines = 3;

    assert_int_equal(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':1,'quantity':1},"
        "{'sku':'B','price':1,'quantity':1},"
        "{'sku':'C','price':1,'quantity':1}]}"), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.nlines, 3);

    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':1,'quantity':1},"
        "{'sku':'B','price':1,'quantity':1},"
        "{'sku':'C','price':1,'quantity':1},1]}"), &spec),
        LOYALTY_CART_TOO_MANY_LINES, "/lines",
        "/lines has 4 lines; at most 3 are accepted");
    assert_string_equal(loyalty_cart_code(LOYALTY_CART_TOO_MANY_LINES),
                        "too_many_lines");

    /* the default: 200 lines */
    loyalty_cart_spec_init(&spec);

    for (p = lines, i = 0; i < 200; i++) {
        p += sprintf(p, "%s{'sku':'S%zu','price':1,'quantity':1}",
                     i ? "," : "", i);
    }

    assert_int_equal(read_cart(json("{'currency':'EUR','lines':[%s]}",
                                    lines), &spec),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.nlines, 200);
    assert_str(&cart.lines[199].sku, "S199");
    assert_int_equal(cart.subtotal, 20000);

    sprintf(p, ",{'sku':'S200','price':1,'quantity':1}");

    assert_error(read_cart(json("{'currency':'EUR','lines':[%s]}", lines),
                           &spec),
                 LOYALTY_CART_TOO_MANY_LINES, "/lines",
                 "has 201 lines; at most 200 are accepted");
}


static void
prices_out_of_range_are_refused(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    assert_int_equal(read_line("{'sku':'A','price':'1000000.00',"
                               "'quantity':1}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.subtotal, 100000000);

    assert_error(read_line("{'sku':'A','price':'-0.01','quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/price",
                 "must be from 0 to 1000000.00");
    assert_error(read_line("{'sku':'A','price':'1000000.01','quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/price",
                 "must be from 0 to 1000000.00");
    assert_error(read_line("{'sku':'A','price':1e400,'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/0/price",
                 "must be from 0 to 1000000.00");
    assert_error(read_line("{'sku':'A','price':1,'quantity':1},"
                           "{'sku':'B','price':1,'quantity':1},"
                           "{'sku':'C','price':-5,'quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/2/price",
                 "/lines/2/price must be from 0 to 1000000.00");

    loyalty_cart_spec_init(&spec);
    spec.max_units = 100;

    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':'100.01',"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be from 0 to 100.00");
    assert_error(read_cart(json(
        "{'currency':'JPY','lines':[{'sku':'A','price':101,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be from 0 to 100");
    assert_error(read_cart(json(
        "{'currency':'KWD','lines':[{'sku':'A','price':'100.001',"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/price", "must be from 0 to 100.000");
    assert_error(read_cart(json(
        "{'currency':'EUR','shipping':'100.01','lines':[{'sku':'A',"
        "'price':1,'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/shipping", "must be from 0 to 100.00");
    assert_error(read_cart(json(
        "{'currency':'EUR','tax':'-1','lines':[{'sku':'A',"
        "'price':1,'quantity':1}]}"), &spec), LOYALTY_CART_INVALID,
        "/tax", "must be from 0 to 100.00");
}


static void
a_subtotal_beyond_max_units_is_refused(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    /* exactly the limit is fine */
    assert_int_equal(read_line("{'sku':'A','price':'250000.00',"
                               "'quantity':4}"),
                     LOYALTY_CART_OK);
    assert_int_equal(cart.subtotal, 100000000);

    assert_error(read_line("{'sku':'A','price':'1000.00','quantity':1001}"),
                 LOYALTY_CART_INVALID, "/lines/0/quantity",
                 "makes the cart total exceed 1000000");
    assert_error(read_line("{'sku':'A','price':'600000.00','quantity':1},"
                           "{'sku':'B','price':'400000.01','quantity':1}"),
                 LOYALTY_CART_INVALID, "/lines/1/quantity",
                 "/lines/1/quantity makes the cart total exceed 1000000");

    /* price * quantity beyond 64 bits is refused, not wrapped */
    loyalty_cart_spec_init(&spec);
    spec.max_units = 10000000000000LL;
    spec.max_quantity = 1000000000000LL;

    assert_error(read_cart(json(
        "{'currency':'EUR','lines':[{'sku':'A','price':'10000000000000',"
        "'quantity':999999999999}]}"), &spec), LOYALTY_CART_INVALID,
        "/lines/0/quantity", "makes the cart total exceed 10000000000000");
}


static void
coupon_codes_are_normalised_or_refused(void **state)
{
    char                 code[80];
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.currency = "EUR";

    assert_int_equal(read_cart(json(
        "{'coupon':'\\tblack-friday_26.x\\n','lines':[{'sku':'A',"
        "'price':1,'quantity':1}]}"), &spec), LOYALTY_CART_OK);
    assert_str(&cart.coupon, "BLACK-FRIDAY_26.X");

    /* an empty coupon box is no coupon */
    assert_int_equal(read_cart(json(
        "{'coupon':'','referral':'  ','lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.coupon.len, 0);
    assert_int_equal(cart.referral.len, 0);

    assert_error(read_cart(json(
        "{'coupon':'save 10','lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID, "/coupon",
        "may hold only letters, digits, '-', '_' and '.' (byte 4 is not "
        "one)");
    assert_error(read_cart(json(
        "{'coupon':' caf\xc3\xa9','lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID, "/coupon",
        "(byte 4 is not one)");
    assert_error(read_cart(json(
        "{'referral':'a!b','lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID, "/referral",
        "(byte 1 is not one)");

    memset(code, 'a', 64);
    code[64] = '\0';
    assert_int_equal(read_cart(json(
        "{'coupon':'%s','lines':[{'sku':'A','price':1,'quantity':1}]}",
        code), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.coupon.len, 64);

    code[64] = 'a';
    code[65] = '\0';
    assert_error(read_cart(json(
        "{'coupon':'%s','lines':[{'sku':'A','price':1,'quantity':1}]}",
        code), &spec), LOYALTY_CART_INVALID, "/coupon",
        "/coupon is longer than 64 characters");
}


static void
identifiers_refuse_braces_spaces_and_excess_length(void **state)
{
    char                 id[LOYALTY_ID_MAX + 2];
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.currency = "EUR";

    assert_error(read_cart(json(
        "{'customer':'a{b','lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/customer",
        "has a character that is not allowed at byte 1");
    assert_error(read_cart(json(
        "{'customer':'ab}','lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/customer", "at byte 2");
    assert_error(read_cart(json(
        "{'checkout_id':'chk 1','lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID, "/checkout_id",
        "at byte 3: printable ASCII without spaces, '{' or '}'");
    assert_error(read_cart(json(
        "{'order_id':'caf\xc3\xa9','lines':[{'sku':'A','price':1,"
        "'quantity':1}]}"), &spec), LOYALTY_CART_INVALID, "/order_id",
        "at byte 3");
    assert_error(read_cart(json(
        "{'order_id':'','lines':[{'sku':'A','price':1,'quantity':1}]}"),
        &spec), LOYALTY_CART_INVALID, "/order_id", "must be 1 to 128 bytes");

    memset(id, 'x', LOYALTY_ID_MAX);
    id[LOYALTY_ID_MAX] = '\0';
    assert_int_equal(read_cart(json(
        "{'customer':'%s','lines':[{'sku':'A','price':1,'quantity':1}]}",
        id), &spec), LOYALTY_CART_OK);
    assert_int_equal(cart.customer.len, LOYALTY_ID_MAX);

    id[LOYALTY_ID_MAX] = 'x';
    id[LOYALTY_ID_MAX + 1] = '\0';
    assert_error(read_cart(json(
        "{'customer':'%s','lines':[{'sku':'A','price':1,'quantity':1}]}",
        id), &spec), LOYALTY_CART_INVALID, "/customer",
        "/customer must be 1 to 128 bytes");
}


static void
a_cart_that_is_not_an_object_is_refused(void **state)
{
    loyalty_cart_spec_t  spec;

    (void) state;

    loyalty_cart_spec_init(&spec);
    spec.currency = "EUR";

    assert_int_equal(read_cart(json("[{'sku':'A','price':1,'quantity':1}]"),
                               &spec),
                     LOYALTY_CART_INVALID);
    assert_string_equal(err.message,
                        "the cart must be a JSON object, not an array");

    assert_int_equal(read_cart(json("null"), &spec), LOYALTY_CART_INVALID);
    assert_string_equal(err.message,
                        "the cart must be a JSON object, not null");
}


static void
running_out_of_memory_is_not_an_invalid_field(void **state)
{
    const loyalty_json_t  *root;
    loyalty_cart_spec_t    spec;

    (void) state;

    loyalty_cart_spec_init(&spec);

    root = json("{'currency':'EUR','lines':[{'sku':'A','price':1,"
                "'quantity':1}]}");

    assert_int_equal(loyalty_cart_read(root, &spec, no_memory, NULL, &cart,
                                       &err),
                     LOYALTY_CART_NO_MEMORY);
    assert_string_equal(loyalty_cart_code(LOYALTY_CART_NO_MEMORY),
                        "internal_error");
    assert_string_equal(loyalty_cart_code(LOYALTY_CART_OK), "ok");
}


static void
field_names_are_what_ops_write_in_loyalty_field(void **state)
{
    int          f;
    const char  *name;

    (void) state;

    assert_int_equal(loyalty_field_by_name("coupon", 6),
                     LOYALTY_FIELD_COUPON);
    assert_int_equal(loyalty_field_by_name("line.price", 10),
                     LOYALTY_FIELD_LINE_PRICE);
    assert_int_equal(loyalty_field_by_name("customer", 8),
                     LOYALTY_FIELD_CUSTOMER);
    assert_int_equal(loyalty_field_by_name("price", 5), -1);
    assert_int_equal(loyalty_field_by_name("coupons", 7), -1);
    assert_int_equal(loyalty_field_by_name("coupon", 5), -1);
    assert_int_equal(loyalty_field_by_name("", 0), -1);

    for (f = 0; f < LOYALTY_FIELD_N; f++) {
        name = loyalty_field_name((loyalty_field_t) f);
        assert_int_equal(loyalty_field_by_name(name, strlen(name)), f);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_full_cart_in_the_default_schema_is_read),
        cmocka_unit_test(optional_fields_absent_or_null_are_empty),
        cmocka_unit_test(
            the_subtotal_is_the_exact_sum_of_price_times_quantity),
        cmocka_unit_test(the_currency_sets_the_minor_unit),
        cmocka_unit_test(the_default_currency_comes_from_the_spec),
        cmocka_unit_test(
            a_missing_currency_without_a_default_is_a_missing_field),
        cmocka_unit_test(custom_pointers_map_a_shop_schema),
        cmocka_unit_test(amounts_in_minor_units_must_be_whole_numbers),
        cmocka_unit_test(missing_required_fields_are_named),
        cmocka_unit_test(values_of_the_wrong_type_are_invalid_fields),
        cmocka_unit_test(an_empty_lines_array_is_refused),
        cmocka_unit_test(quantities_are_whole_numbers_within_the_limit),
        cmocka_unit_test(too_many_lines_are_refused),
        cmocka_unit_test(prices_out_of_range_are_refused),
        cmocka_unit_test(a_subtotal_beyond_max_units_is_refused),
        cmocka_unit_test(coupon_codes_are_normalised_or_refused),
        cmocka_unit_test(identifiers_refuse_braces_spaces_and_excess_length),
        cmocka_unit_test(a_cart_that_is_not_an_object_is_refused),
        cmocka_unit_test(running_out_of_memory_is_not_an_invalid_field),
        cmocka_unit_test(field_names_are_what_ops_write_in_loyalty_field),
    };

    return cmocka_run_group_tests_name("cart", tests, NULL, NULL);
}
