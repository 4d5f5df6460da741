/*
 * Coupon reservations, batched: the checkouts of one coupon that reach a
 * worker in the same turn of its event loop share one call of
 * coupon_reserve.lua, which takes them in order, each as if alone.
 */

#ifndef NGX_HTTP_LOYALTY_COUPON_BATCH_H
#define NGX_HTTP_LOYALTY_COUPON_BATCH_H

#include <ngx_config.h>
#include <ngx_core.h>


/* checkouts in one call; more in a turn make more calls */
#define NGX_HTTP_LOYALTY_BATCH_MAX      32

/*
 * Batches in the making or waiting for Redis, per worker, about 14 kB
 * each.  With codes unique to each shopper every checkout is a batch of
 * its own: this many waiting means Redis is far behind (4096 checkouts
 * in a 100 ms deadline is 40,000 a second), and a checkout beyond it is
 * unverified, as one beyond the connection's queue is.
 */
#define NGX_HTTP_LOYALTY_BATCHES_MAX    4096


typedef struct ngx_http_loyalty_reserve_s  ngx_http_loyalty_reserve_t;

/*
 * One checkout's answer.  With status NGX_HTTP_LOYALTY_REDIS_OK, answer is
 * one of coupon_reserve.lua's ("not_found", "stale", "valid", ...), and
 * version and def are the coupon's (def only with "stale"); otherwise the
 * three are empty.  Never called from inside the queueing call.
 */
typedef void (*ngx_http_loyalty_reserve_handler_pt)(void *data,
    ngx_uint_t status, ngx_str_t *answer, ngx_str_t *version, ngx_str_t *def);


/*
 * Queues a checkout of a coupon (mode "reserve", "check" or "verify", see
 * coupon_reserve.lua) for the end of this turn; the strings are copied.
 * Returns NULL when nothing was queued (Redis is down, the worker is
 * overloaded): the handler is then never called.
 */
ngx_http_loyalty_reserve_t *ngx_http_loyalty_coupon_reserve(ngx_str_t *code,
    ngx_str_t *checkout, ngx_str_t *customer, ngx_str_t *version,
    const char *mode, time_t ttl, ngx_http_loyalty_reserve_handler_pt handler,
    void *data);

/*
 * Detaches the caller: its handler will not be called.  A use reserved for
 * it meanwhile is released when the answer comes.
 */
void ngx_http_loyalty_coupon_reserve_cancel(ngx_http_loyalty_reserve_t *res);

void ngx_http_loyalty_coupon_batch_free(void);

#endif /* NGX_HTTP_LOYALTY_COUPON_BATCH_H */
