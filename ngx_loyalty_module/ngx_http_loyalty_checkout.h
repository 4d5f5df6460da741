/* The checkout's request context, read by the variables. */

#ifndef NGX_HTTP_LOYALTY_CHECKOUT_H
#define NGX_HTTP_LOYALTY_CHECKOUT_H

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"
#include "ngx_http_loyalty_coupon_batch.h"
#include "loyalty_coupon.h"
#include "loyalty_keys.h"


/* every flow's context starts with its flow, for the shared filters */
#define NGX_HTTP_LOYALTY_FLOW_CHECKOUT  1

/* no coupon given, no redemption asked */
#define NGX_HTTP_LOYALTY_NONE           -1

#define NGX_HTTP_LOYALTY_POINTS_HELD           0
#define NGX_HTTP_LOYALTY_POINTS_INSUFFICIENT   1
#define NGX_HTTP_LOYALTY_POINTS_EXCEEDS_TOTAL  2
#define NGX_HTTP_LOYALTY_POINTS_NOT_ALLOWED    3
#define NGX_HTTP_LOYALTY_POINTS_UNVERIFIED     4
#define NGX_HTTP_LOYALTY_POINTS_STATUS_N       5

/* points_hold.lua: EVALSHA, hash, number of keys, 3 keys, 5 arguments */
#define NGX_HTTP_LOYALTY_CALL_ARGS  11


/* one script call, with everything its argv points to */
typedef struct {
    ngx_http_loyalty_redis_cmd_t  *cmd;
    const char                    *argv[NGX_HTTP_LOYALTY_CALL_ARGS];
    size_t                         argvlen[NGX_HTTP_LOYALTY_CALL_ARGS];
    char                           keys[3][LOYALTY_KEY_MAX];
    size_t                         keylens[3];
    u_char                         nums[4][NGX_INT64_LEN + 1];
} ngx_http_loyalty_call_t;


typedef struct {
    ngx_uint_t                 flow;
    ngx_http_request_t        *request;
    ngx_str_t                  customer;        /* "" for a guest */
    loyalty_cart_t             cart;
    ngx_str_t                  checkout_id;
    ngx_str_t                  coupon;          /* normalised */
    ngx_int_t                  rc;              /* once done */
    ngx_uint_t                 pending;         /* replies awaited */

    ngx_int_t                  coupon_status;
    loyalty_coupon_verdict_t   verdict;
    ngx_str_t                  coupon_version;
    const char                *coupon_mode;
    ngx_uint_t                 coupon_rounds;
    ngx_http_loyalty_reserve_t  *coupon_wait;

    ngx_int_t                  points_status;
    int64_t                    redeem_value;    /* minor units */
    ngx_http_loyalty_call_t    points_call;

    unsigned                   done:1;
    unsigned                   shadow:1;
    unsigned                   conflict:1;
    unsigned                   accepted:1;      /* the backend said 2xx */
    unsigned                   coupon_reserved:1;
    unsigned                   points_held:1;
    unsigned                   points_deferred:1;
} ngx_http_loyalty_checkout_t;


ngx_str_t *ngx_http_loyalty_checkout_shadow_text(
    ngx_http_loyalty_checkout_t *ctx, ngx_pool_t *pool);
const char *ngx_http_loyalty_points_status_name(ngx_int_t status);
void ngx_http_loyalty_points_keys(ngx_str_t *customer,
    char keys[][LOYALTY_KEY_MAX], size_t *lens);
void ngx_http_loyalty_release(ngx_str_t *coupon, ngx_str_t *customer,
    ngx_str_t *checkout);

#endif /* NGX_HTTP_LOYALTY_CHECKOUT_H */
