/*
 * The admin API: routing, the token, the JSON body, Redis calls and JSON
 * answers, shared by the endpoint files (ngx_http_loyalty_admin_*.c).
 */

#ifndef NGX_HTTP_LOYALTY_ADMIN_H
#define NGX_HTTP_LOYALTY_ADMIN_H

#include <jansson.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_json.h"


#define NGX_HTTP_LOYALTY_ADMIN_BODY_MAX  (1024 * 1024)
#define NGX_HTTP_LOYALTY_ADMIN_PARAMS    2


typedef struct ngx_http_loyalty_admin_s  ngx_http_loyalty_admin_t;

typedef void (*ngx_http_loyalty_admin_handler_pt)(
    ngx_http_loyalty_admin_t *ctx);


/* the pattern "coupons/{*}" matches "coupons/SAVE10": each star is a param */
typedef struct {
    ngx_uint_t                          method;
    const char                         *path;
    ngx_http_loyalty_admin_handler_pt   handler;
} ngx_http_loyalty_admin_route_t;


/* one Redis call of an admin request, with what its argv points to */
typedef struct {
    ngx_http_loyalty_admin_t           *ctx;
    ngx_http_loyalty_redis_cmd_t       *cmd;
    ngx_http_loyalty_redis_handler_pt   handler;
    ngx_uint_t                          index;      /* the caller's */
    int                                 argc;
    const char                        **argv;
    size_t                             *argvlen;
} ngx_http_loyalty_admin_call_t;


struct ngx_http_loyalty_admin_s {
    ngx_http_request_t                 *request;
    ngx_str_t                           params[NGX_HTTP_LOYALTY_ADMIN_PARAMS];
    const loyalty_json_t               *body;       /* NULL: none sent */
    ngx_array_t                         calls;      /* pending ones */
    ngx_uint_t                          pending;
    u_char                             *scratch;    /* for writing JSON */
    size_t                              scratch_size;
    void                               *data;       /* the endpoint's */
};


extern ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_coupon_routes[];
extern ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_customer_routes[];
extern ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_order_routes[];
extern ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_points_routes[];
extern ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_report_routes[];

/*
 * Queues an EVALSHA; keys and args are copied into the request's pool.
 * NGX_ERROR means Redis is down: nothing was queued.
 */
ngx_int_t ngx_http_loyalty_admin_eval(ngx_http_loyalty_admin_t *ctx,
    loyalty_script_id_t script, ngx_str_t *keys, ngx_uint_t nkeys,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_loyalty_redis_handler_pt handler, ngx_uint_t index);

/* The call a reply handler got as its data; it is no longer pending. */
ngx_http_loyalty_admin_call_t *ngx_http_loyalty_admin_done_call(void *data);

/* Answers and ends the request; the JSON value is consumed. */
void ngx_http_loyalty_admin_json(ngx_http_loyalty_admin_t *ctx,
    ngx_uint_t status, json_t *value);
void ngx_http_loyalty_admin_error(ngx_http_loyalty_admin_t *ctx,
    ngx_uint_t status, const char *code, const char *fmt, ...);
void ngx_http_loyalty_admin_unavailable(ngx_http_loyalty_admin_t *ctx);

/* The program's totals (loyalty:{stats}, see stats_add.lua). */
enum {
    NGX_HTTP_LOYALTY_TOTAL_AVAILABLE = 0,
    NGX_HTTP_LOYALTY_TOTAL_PENDING,
    NGX_HTTP_LOYALTY_TOTAL_ISSUED,
    NGX_HTTP_LOYALTY_TOTAL_REDEEMED,
    NGX_HTTP_LOYALTY_TOTAL_EXPIRED,
    NGX_HTTP_LOYALTY_TOTAL_RETURNED,
    NGX_HTTP_LOYALTY_TOTAL_ADJUSTED,
    NGX_HTTP_LOYALTY_TOTAL_MEMBER_ORDERS,
    NGX_HTTP_LOYALTY_TOTAL_MEMBER_VALUE,
    NGX_HTTP_LOYALTY_TOTAL_GUEST_ORDERS,
    NGX_HTTP_LOYALTY_TOTAL_GUEST_VALUE,
    NGX_HTTP_LOYALTY_TOTAL_CUSTOMERS,
    NGX_HTTP_LOYALTY_TOTAL_REPEAT,
    NGX_HTTP_LOYALTY_TOTAL_SINCE,
    NGX_HTTP_LOYALTY_TOTALS
};

extern const char  *ngx_http_loyalty_total_names[];

/*
 * The totals of an HGETALL reply into t[NGX_HTTP_LOYALTY_TOTALS], 0 for
 * those not there: read the same way by the admin API and /metrics.
 */
void ngx_http_loyalty_program_totals(redisReply *hash, int64_t *t);

/* Points at loyalty_point_value, rounded down; NGX_ERROR when none. */
ngx_int_t ngx_http_loyalty_points_value(ngx_http_loyalty_main_conf_t *lmcf,
    int64_t points, int64_t *minor);

/* A reply's element as a string: "" for nil, ints as text. */
ngx_str_t ngx_http_loyalty_admin_reply_str(redisReply *reply, size_t i);

json_t *ngx_http_loyalty_admin_time(int64_t t);

/*
 * A JSON number that is a whole number of points, from -max to max
 * (NGX_HTTP_LOYALTY_POINTS_MAX); 0 for anything else.
 */
int64_t ngx_http_loyalty_admin_int(const loyalty_json_t *v);

/* A number as a Redis argument, in the request's pool; len 0 on failure. */
ngx_str_t ngx_http_loyalty_admin_num(ngx_pool_t *pool, int64_t n);

/*
 * A customer's account keys, in the pool: the hash, its outbox and its
 * ledger, in that order (as the account scripts take them).
 */
ngx_int_t ngx_http_loyalty_admin_account_keys(ngx_pool_t *pool,
    u_char *customer, size_t len, ngx_str_t *keys);

/*
 * A customer id (of the path or of a body) checked, and its account keys
 * as above; NGX_ERROR when the request was answered.
 */
ngx_int_t ngx_http_loyalty_admin_customer(ngx_http_loyalty_admin_t *ctx,
    ngx_str_t *id, ngx_str_t *keys);

#endif /* NGX_HTTP_LOYALTY_ADMIN_H */
