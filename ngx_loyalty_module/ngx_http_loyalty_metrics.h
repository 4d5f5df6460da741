/*
 * The counters behind /metrics, kept in a shared memory zone so that all
 * worker processes count together (ngx_http_loyalty_metrics.c).  Each is
 * moved where the module decides the outcome it counts.
 */

#ifndef NGX_HTTP_LOYALTY_METRICS_H
#define NGX_HTTP_LOYALTY_METRICS_H

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_checkout.h"
#include "ngx_http_loyalty_confirm.h"


/* kinds of Redis failure, as labelled */
enum {
    NGX_HTTP_LOYALTY_REDIS_ERR_CONNECT = 0,
    NGX_HTTP_LOYALTY_REDIS_ERR_TIMEOUT,
    NGX_HTTP_LOYALTY_REDIS_ERR_REPLY,
    NGX_HTTP_LOYALTY_REDIS_ERR_PROTOCOL,
    NGX_HTTP_LOYALTY_REDIS_ERR_DISCONNECT,
    NGX_HTTP_LOYALTY_REDIS_ERR_N
};


/* the round-trip histogram: 11 bounds from 0.5 ms to 1 s, then +Inf */
#define NGX_HTTP_LOYALTY_RTT_BUCKETS  12


/* one counter each, or one per label value from the first of a family */
enum {
    NGX_HTTP_LOYALTY_M_CHECKOUTS = 0,
    NGX_HTTP_LOYALTY_M_CHECKOUTS_REFUSED,
    NGX_HTTP_LOYALTY_M_COUPONS,
    NGX_HTTP_LOYALTY_M_REDEMPTIONS = NGX_HTTP_LOYALTY_M_COUPONS
                                     + LOYALTY_COUPON_STATUS_N,
    NGX_HTTP_LOYALTY_M_CONFIRMATIONS = NGX_HTTP_LOYALTY_M_REDEMPTIONS
                                       + NGX_HTTP_LOYALTY_POINTS_STATUS_N,
    NGX_HTTP_LOYALTY_M_ACCRUALS = NGX_HTTP_LOYALTY_M_CONFIRMATIONS
                                  + NGX_HTTP_LOYALTY_ORDER_STATUS_N,
    NGX_HTTP_LOYALTY_M_ACCRUED_POINTS,
    NGX_HTTP_LOYALTY_M_SPOOL_WRITES,
    NGX_HTTP_LOYALTY_M_SPOOL_FAILED,
    NGX_HTTP_LOYALTY_M_SPOOL_BYTES,
    NGX_HTTP_LOYALTY_M_COUPON_CALLS,
    NGX_HTTP_LOYALTY_M_REDIS_ERRORS,
    NGX_HTTP_LOYALTY_M_RTT_SUM = NGX_HTTP_LOYALTY_M_REDIS_ERRORS
                                 + NGX_HTTP_LOYALTY_REDIS_ERR_N,
    NGX_HTTP_LOYALTY_M_RTT,
    NGX_HTTP_LOYALTY_M_N = NGX_HTTP_LOYALTY_M_RTT
                           + NGX_HTTP_LOYALTY_RTT_BUCKETS
};


/* Adds n to a counter; nothing when no location says loyalty_metrics. */
void ngx_http_loyalty_metrics_add(ngx_uint_t counter, ngx_atomic_int_t n);

/* A Redis reply that came back after this many microseconds. */
void ngx_http_loyalty_metrics_round_trip(uint64_t usec);

ngx_int_t ngx_http_loyalty_metrics_add_zone(ngx_conf_t *cf);
ngx_int_t ngx_http_loyalty_metrics_handler(ngx_http_request_t *r);

#endif /* NGX_HTTP_LOYALTY_METRICS_H */
