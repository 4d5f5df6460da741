/*
 * Coupons: the definition, its one JSON form (what the admin API takes and
 * shows, and what Redis stores), and the rules that decide whether a cart
 * gets a discount and how much.  Usage limits are counted in Redis, by the
 * script that reserves a use; everything else is decided here.
 */

#ifndef LOYALTY_COUPON_H
#define LOYALTY_COUPON_H

#include <stddef.h>
#include <stdint.h>

#include "loyalty_cart.h"
#include "loyalty_json.h"
#include "loyalty_money.h"
#include "loyalty_str.h"


#define LOYALTY_COUPON_LIST_MAX   1000    /* entries of one include list */
#define LOYALTY_COUPON_ITEM_MAX   128     /* bytes of one entry */

/* room for the largest definition: six full lists of the longest entries */
#define LOYALTY_COUPON_JSON_MAX   (6 * LOYALTY_COUPON_LIST_MAX             \
                                   * (2 * LOYALTY_COUPON_ITEM_MAX + 3)     \
                                   + 4096)


typedef enum {
    LOYALTY_COUPON_FIXED = 0,
    LOYALTY_COUPON_PERCENT
} loyalty_coupon_kind_t;


/* The stable statuses of $loyalty_coupon_status, in documented order. */
typedef enum {
    LOYALTY_COUPON_VALID = 0,
    LOYALTY_COUPON_NOT_FOUND,
    LOYALTY_COUPON_NOT_STARTED,
    LOYALTY_COUPON_EXPIRED,
    LOYALTY_COUPON_DISABLED,
    LOYALTY_COUPON_EXHAUSTED,
    LOYALTY_COUPON_CUSTOMER_LIMIT,
    LOYALTY_COUPON_MIN_SPEND,
    LOYALTY_COUPON_NOT_APPLICABLE,
    LOYALTY_COUPON_RATE_LIMITED,
    LOYALTY_COUPON_UNVERIFIED,
    LOYALTY_COUPON_STATUS_N
} loyalty_coupon_status_t;


/* which lines a coupon applies to, by SKU, brand or category */
enum {
    LOYALTY_MATCH_SKU = 0,
    LOYALTY_MATCH_BRAND,
    LOYALTY_MATCH_CATEGORY,
    LOYALTY_MATCH_N
};


typedef struct {
    loyalty_str_t      *items;          /* sorted, without duplicates */
    size_t              n;
} loyalty_strset_t;


typedef struct {
    char                    code[LOYALTY_CODE_MAX + 1];
    loyalty_coupon_kind_t   kind;
    int64_t                 value;      /* minor units, or basis points
                                           (1000 = 10%) for percent */
    char                    currency[4];    /* "" when none applies */
    unsigned                decimals;
    int64_t                 starts_at;  /* unix time; 0 when open */
    int64_t                 ends_at;    /* first second it is expired */
    int64_t                 min_spend;  /* eligible lines, minor units */
    int64_t                 max_discount;   /* 0 when uncapped */
    int64_t                 max_uses;   /* 0 when unlimited */
    int64_t                 per_customer;
    int                     release_on_return;  /* a whole return gives
                                                   the use back */
    loyalty_strset_t        include[LOYALTY_MATCH_N];
    loyalty_strset_t        exclude[LOYALTY_MATCH_N];
} loyalty_coupon_t;


typedef struct {
    loyalty_coupon_status_t status;
    int64_t                 eligible;   /* subtotal of the eligible lines */
    int64_t                 discount;   /* minor units, <= eligible */
} loyalty_coupon_verdict_t;


typedef struct {
    char                    field[32];
    char                    message[160];
} loyalty_coupon_error_t;


/*
 * Reads a definition from its JSON form; money and times in the text
 * form ("5.00", "2026-11-27T00:00:00Z").  -1 with err filled in when a
 * field is missing or invalid; the strings point into the JSON tree.
 */
int loyalty_coupon_read(const loyalty_json_t *root, loyalty_alloc_pt alloc,
    void *ctx, loyalty_coupon_t *c, loyalty_coupon_error_t *err);

/*
 * Writes the canonical JSON form into buf; returns its length, or 0 when
 * it does not fit.
 */
size_t loyalty_coupon_write(const loyalty_coupon_t *c, char *buf,
    size_t size);

/* Applies every rule but the usage limits, which Redis counts. */
void loyalty_coupon_evaluate(const loyalty_coupon_t *c,
    const loyalty_cart_t *cart, int64_t now, loyalty_round_t round,
    loyalty_coupon_verdict_t *v);

const char *loyalty_coupon_status_name(loyalty_coupon_status_t status);

/* -1 for a name that is not a status */
int loyalty_coupon_status_by_name(const char *name, size_t len);

#endif /* LOYALTY_COUPON_H */
