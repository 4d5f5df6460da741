/*
 * The cart: a shop's JSON body mapped, validated and converted to integers
 * once.  Where each field lives is configurable (loyalty_field NAME
 * /json/pointer); everything read is bounded and checked, and an error
 * names the field at fault.
 */

#ifndef LOYALTY_CART_H
#define LOYALTY_CART_H

#include <stddef.h>
#include <stdint.h>

#include "loyalty_code.h"
#include "loyalty_json.h"
#include "loyalty_money.h"
#include "loyalty_str.h"


/* The fields ops can map; the line fields are pointers inside one line. */
typedef enum {
    LOYALTY_FIELD_CUSTOMER = 0,
    LOYALTY_FIELD_CHECKOUT_ID,
    LOYALTY_FIELD_ORDER_ID,
    LOYALTY_FIELD_CURRENCY,
    LOYALTY_FIELD_LINES,
    LOYALTY_FIELD_SHIPPING,
    LOYALTY_FIELD_TAX,
    LOYALTY_FIELD_COUPON,
    LOYALTY_FIELD_POINTS,
    LOYALTY_FIELD_REFERRAL,
    LOYALTY_FIELD_DISCOUNT,
    LOYALTY_FIELD_LINE_SKU,
    LOYALTY_FIELD_LINE_BRAND,
    LOYALTY_FIELD_LINE_CATEGORY,
    LOYALTY_FIELD_LINE_PRICE,
    LOYALTY_FIELD_LINE_QUANTITY,
    LOYALTY_FIELD_N
} loyalty_field_t;

#define LOYALTY_FIELD_BIT(f)  (1u << (f))


typedef struct {
    const char         *pointer[LOYALTY_FIELD_N];   /* JSON pointers */
    unsigned            required;       /* LOYALTY_FIELD_BIT()s */
    const char         *currency;       /* when the cart names none */
    int                 amounts_minor;  /* amounts are integers in minor
                                           units rather than decimals */
    loyalty_round_t     round;          /* for extra decimals */
    size_t              max_lines;
    int64_t             max_units;      /* whole currency units, any amount */
    int64_t             max_quantity;
    int64_t             max_points;
} loyalty_cart_spec_t;


typedef struct {
    loyalty_str_t       sku;
    loyalty_str_t       brand;          /* empty when not given */
    loyalty_str_t       category;
    int64_t             price;          /* minor units, per unit */
    int64_t             quantity;
    int64_t             total;          /* price * quantity */
} loyalty_line_t;


typedef struct {
    loyalty_str_t       customer;       /* as the body states it, if it does */
    loyalty_str_t       checkout_id;
    loyalty_str_t       order_id;
    char                currency[4];
    unsigned            decimals;
    loyalty_line_t     *lines;
    size_t              nlines;
    int64_t             subtotal;       /* the lines, nothing else */
    int64_t             shipping;
    int64_t             tax;
    int64_t             points;         /* to redeem; 0 when none */
    int64_t             discount;       /* the shop applied, minor units */
    loyalty_str_t       coupon;         /* normalised; empty when none */
    loyalty_str_t       referral;       /* normalised; empty when none */
} loyalty_cart_t;


typedef enum {
    LOYALTY_CART_OK = 0,
    LOYALTY_CART_MISSING,               /* missing_field */
    LOYALTY_CART_INVALID,               /* invalid_field */
    LOYALTY_CART_TOO_MANY_LINES,        /* too_many_lines */
    LOYALTY_CART_NO_MEMORY
} loyalty_cart_rc_t;


typedef struct {
    char                field[320];     /* the pointer: "/lines/3/price" */
    char                message[480];   /* a sentence for the JSON error */
} loyalty_cart_error_t;


void loyalty_cart_spec_init(loyalty_cart_spec_t *spec);

/* The name ops write in loyalty_field ("coupon", "line.price"), or -1. */
int loyalty_field_by_name(const char *name, size_t len);
const char *loyalty_field_name(loyalty_field_t field);

loyalty_cart_rc_t loyalty_cart_read(const loyalty_json_t *root,
    const loyalty_cart_spec_t *spec, loyalty_alloc_pt alloc, void *ctx,
    loyalty_cart_t *cart, loyalty_cart_error_t *err);

/* The stable error code of a result: "missing_field", "invalid_field"... */
const char *loyalty_cart_code(loyalty_cart_rc_t rc);

#endif /* LOYALTY_CART_H */
