/*
 * The program's earning rules and the arithmetic of points, exact in
 * integers: what an order earns, from its lines, the base rate, the
 * multipliers and the campaigns.  The customer's tier multiplier is
 * applied by the recording script in Redis, where the tier is current.
 *
 * The program is also published to Redis as JSON (loyalty_program_write)
 * so that the worker follows the rules nginx was configured with.
 */

#ifndef LOYALTY_RULES_H
#define LOYALTY_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "loyalty_cart.h"
#include "loyalty_coupon.h"
#include "loyalty_money.h"
#include "loyalty_str.h"


/* what counts towards points besides the lines, after discounts */
#define LOYALTY_EARN_SHIPPING   0x01
#define LOYALTY_EARN_TAX        0x02
#define LOYALTY_EARN_DISCOUNTS  0x04    /* earn on the price before them */
#define LOYALTY_EARN_REDEEMED   0x08    /* earn on what points paid */

/* factors are in thousandths: 1500 is 1.5 */
#define LOYALTY_FACTOR_ONE      1000

#define LOYALTY_ANY_LINE        -1      /* a campaign without a scope */


typedef struct {
    int                   kind;         /* LOYALTY_MATCH_SKU, ... */
    loyalty_str_t         value;
    int64_t               factor;
} loyalty_multiplier_t;


typedef struct {
    loyalty_str_t         name;
    int64_t               factor;
    int64_t               starts_at;    /* unix time, inclusive */
    int64_t               ends_at;      /* unix time, exclusive */
    int                   kind;         /* LOYALTY_ANY_LINE or a match */
    loyalty_str_t         value;
} loyalty_campaign_t;


typedef struct {
    loyalty_str_t         name;
    int64_t               threshold;    /* spend in the window, minor */
    int64_t               factor;
    loyalty_str_t         perks;        /* "free_shipping,early_access" */
} loyalty_tier_t;


#define LOYALTY_PROGRAM_MAX  64         /* multipliers, campaigns, tiers */


typedef struct {
    char                  currency[4];
    unsigned              decimals;
    int64_t               earn_points;      /* earn_points for every ... */
    int64_t               earn_amount;      /* ... earn_amount minor units */
    loyalty_round_t       earn_round;
    unsigned              include;          /* LOYALTY_EARN_* */

    loyalty_multiplier_t  multipliers[LOYALTY_PROGRAM_MAX];
    size_t                nmultipliers;
    loyalty_campaign_t    campaigns[LOYALTY_PROGRAM_MAX];
    size_t                ncampaigns;
    loyalty_tier_t        tiers[LOYALTY_PROGRAM_MAX];  /* ascending */
    size_t                ntiers;

    int64_t               return_window;    /* seconds */
    int64_t               points_expire;    /* seconds; 0 never */
    int64_t               expire_notice;    /* seconds before expiry */
    int64_t               tier_window;      /* seconds of spend counted */
    int                   tier_downgrade;   /* 1: at most one level a
                                               tier_window; 0: in full */

    int64_t               order_every;      /* every Nth order ... */
    int64_t               order_points;     /* ... earns these points */
    int64_t               referrer_points;
    int64_t               referred_points;
    int64_t               referral_limit;   /* per referrer per period */
    int64_t               referral_period;  /* seconds */
    int64_t               birthday_points;
    loyalty_str_t         timezone;         /* "" for UTC */
} loyalty_program_t;


/* How an order's points were made, for the accrual's record. */
typedef struct {
    int64_t               basis;        /* minor units that earned */
    int64_t               points;       /* before the tier multiplier */
    int64_t               campaign;     /* the highest factor applied */
} loyalty_earning_t;


void loyalty_program_init(loyalty_program_t *p);

/*
 * The points an order earns before the tier multiplier.  discount and
 * redeemed (minor units) are taken off the lines in proportion to them
 * unless the program includes them.  0 when the program earns nothing.
 */
int64_t loyalty_points_earned(const loyalty_program_t *p,
    const loyalty_cart_t *cart, int64_t discount, int64_t redeemed,
    int64_t now, loyalty_earning_t *how);

/* The tier for a spend: the highest whose threshold it reaches. */
const loyalty_tier_t *loyalty_tier_for(const loyalty_program_t *p,
    int64_t spend);

/* Writes the program as JSON; returns its length, or 0 if it does not
 * fit. */
size_t loyalty_program_write(const loyalty_program_t *p, char *buf,
    size_t size);

/* Reads what loyalty_program_write wrote; -1 on error. */
int loyalty_program_read(const loyalty_json_t *root, loyalty_program_t *p);

#endif /* LOYALTY_RULES_H */
