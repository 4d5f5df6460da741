/* The order confirmation's request context and its recording job. */

#ifndef NGX_HTTP_LOYALTY_CONFIRM_H
#define NGX_HTTP_LOYALTY_CONFIRM_H

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"


#define NGX_HTTP_LOYALTY_FLOW_CONFIRM  2

/* loyalty_order_source */
#define NGX_HTTP_LOYALTY_SOURCE_REQUEST   0
#define NGX_HTTP_LOYALTY_SOURCE_RESPONSE  1

/* the backend's JSON answer is read (the order id, or the order): bounded */
#define NGX_HTTP_LOYALTY_ANSWER_MAX  (64 * 1024)

/* r->buffered: the answer waits for the order to be recorded (0x08 is
 * free in stock nginx; only the image filter uses it too) */
#define NGX_HTTP_LOYALTY_BUFFERED      0x08

/* $loyalty_order_status */
enum {
    NGX_HTTP_LOYALTY_ORDER_NONE = 0,
    NGX_HTTP_LOYALTY_ORDER_RECORDED,    /* recorded now */
    NGX_HTTP_LOYALTY_ORDER_REPLAYED,    /* recorded by an earlier request */
    NGX_HTTP_LOYALTY_ORDER_SPOOLED,     /* Redis failed: in the spool */
    NGX_HTTP_LOYALTY_ORDER_CONFLICT,    /* the id was used for another order */
    NGX_HTTP_LOYALTY_ORDER_GUEST,       /* no account: only the coupon use */
    NGX_HTTP_LOYALTY_ORDER_REFUSED,     /* the backend did not confirm */
    NGX_HTTP_LOYALTY_ORDER_INVALID,     /* the order could not be read */
    NGX_HTTP_LOYALTY_ORDER_STATUS_N
};


typedef struct ngx_http_loyalty_job_s  ngx_http_loyalty_job_t;


/*
 * A job records an order in phases, each one round trip: the order id is
 * claimed, then the accrual (its due-index entry first), then what must
 * wait for the accrual (the coupon's use, the event).  The answer is
 * released as soon as the accrual is known.
 */
enum {
    NGX_HTTP_LOYALTY_PHASE_CLAIM = 0,
    NGX_HTTP_LOYALTY_PHASE_RECORD,
    NGX_HTTP_LOYALTY_PHASE_AFTER,
    NGX_HTTP_LOYALTY_PHASES
};


/* one Redis call of a recording job: a script, or a plain command */
typedef struct {
    ngx_http_loyalty_job_t        *job;
    ngx_http_loyalty_redis_cmd_t  *cmd;
    ngx_int_t                      script;      /* -1 for a command */
    ngx_uint_t                     phase;
    int                            argc;
    const char                   **argv;
    size_t                        *argvlen;
    unsigned                       done:1;      /* Redis took it */
    unsigned                       failed:1;    /* to the spool */
} ngx_http_loyalty_job_call_t;


#define NGX_HTTP_LOYALTY_JOB_CALLS  5

typedef struct ngx_http_loyalty_confirm_s  ngx_http_loyalty_confirm_t;


/*
 * Recording an order outlives its request: a client that goes away after
 * the shop confirmed does not lose the order's points.  Everything the
 * job needs is in its own pool.
 */
struct ngx_http_loyalty_job_s {
    ngx_pool_t                    *pool;
    ngx_http_loyalty_confirm_t    *ctx;         /* NULL once it is gone */
    ngx_str_t                      order;
    ngx_str_t                      customer;
    ngx_http_loyalty_job_call_t    calls[NGX_HTTP_LOYALTY_JOB_CALLS];
    ngx_uint_t                     ncalls;
    ngx_uint_t                     pending;
    ngx_uint_t                     phase;
    ngx_uint_t                     status;
    int64_t                        points;      /* earned */
    int64_t                        total;       /* pending, -1 unknown */
    int64_t                        basis;       /* the order's value */
    ngx_str_t                      coupon;
    unsigned                       async:1;     /* past its first send */
    unsigned                       counted:1;   /* its outcome, for /metrics */
};


struct ngx_http_loyalty_confirm_s {
    ngx_uint_t                     flow;
    ngx_http_request_t            *request;
    ngx_str_t                      customer;
    loyalty_cart_t                 cart;
    ngx_str_t                      order;
    ngx_str_t                      checkout;
    ngx_str_t                      coupon;
    ngx_uint_t                     status;
    int64_t                        points;
    int64_t                        total;
    ngx_chain_t                   *held;        /* the held answer */
    ngx_buf_t                     *answer;      /* a copy, to read from */
    ngx_chain_t                   *rest;        /* beyond the copy */
    ngx_http_loyalty_job_t        *job;

    unsigned                       readable:1;  /* the cart is valid */
    unsigned                       from_answer:1;   /* read the answer */
    unsigned                       holding:1;   /* the answer waits */
    unsigned                       last:1;      /* all of it is held */
    unsigned                       done:1;      /* phases may go on */
};


ngx_int_t ngx_http_loyalty_confirm_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_confirm_header_filter(ngx_http_request_t *r,
    ngx_http_output_header_filter_pt next);
ngx_int_t ngx_http_loyalty_confirm_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in, ngx_http_output_body_filter_pt next);
const char *ngx_http_loyalty_order_status_name(ngx_uint_t status);

/* ngx_http_loyalty_spool.c */
void ngx_http_loyalty_spool_write(ngx_http_loyalty_job_t *job,
    ngx_log_t *log);

#endif /* NGX_HTTP_LOYALTY_CONFIRM_H */
