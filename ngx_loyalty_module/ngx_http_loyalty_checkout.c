/*
 * loyalty_checkout: where the coupon is checked and the points are held.
 *
 * In the access phase the body is read, the cart parsed, and the coupon's
 * rules applied in C to the cached definition; then one round trip to
 * Redis reserves a use of the coupon and holds the points, both pipelined
 * on the worker's connection.  The verdict lands in variables that ops
 * pass to the backend; the request goes on to proxy_pass.  A reservation
 * the backend does not accept (no 2xx) is released when the request ends.
 *
 * When Redis cannot answer, the checkout still goes through: the coupon is
 * "unverified" with no discount, and a redemption is refused.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_checkout.h"
#include "ngx_http_loyalty_coupon.h"
#include "ngx_http_loyalty_coupon_batch.h"
#include "ngx_http_loyalty_metrics.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_str.h"


/* a definition that changes between round trips is read this many times */
#define NGX_HTTP_LOYALTY_COUPON_ROUNDS  3


static void ngx_http_loyalty_checkout_body(ngx_http_request_t *r);
static void ngx_http_loyalty_checkout_start(
    ngx_http_loyalty_checkout_t *ctx);
static void ngx_http_loyalty_checkout_coupon(
    ngx_http_loyalty_checkout_t *ctx, ngx_http_loyalty_coupon_entry_t *e);
static void ngx_http_loyalty_checkout_coupon_reply(void *data,
    ngx_uint_t status, ngx_str_t *answer, ngx_str_t *version, ngx_str_t *def);
static void ngx_http_loyalty_checkout_points(
    ngx_http_loyalty_checkout_t *ctx);
static void ngx_http_loyalty_checkout_points_reply(void *data,
    ngx_uint_t status, redisReply *reply);
static ngx_int_t ngx_http_loyalty_checkout_send(
    ngx_http_loyalty_checkout_t *ctx, ngx_http_loyalty_call_t *call,
    loyalty_script_id_t script, ngx_uint_t nkeys, ngx_uint_t nargs,
    ngx_http_loyalty_redis_handler_pt handler);
static void ngx_http_loyalty_checkout_done(ngx_http_loyalty_checkout_t *ctx);
static void ngx_http_loyalty_checkout_refuse(
    ngx_http_loyalty_checkout_t *ctx, ngx_http_loyalty_error_t *err);
static void ngx_http_loyalty_checkout_cleanup(void *data);
static void ngx_http_loyalty_checkout_release(
    ngx_http_loyalty_checkout_t *ctx);
static void ngx_http_loyalty_checkout_log_shadow(
    ngx_http_loyalty_checkout_t *ctx);
static void ngx_http_loyalty_checkout_count(
    ngx_http_loyalty_checkout_t *ctx);


static const char  *ngx_http_loyalty_points_statuses[] = {
    "held", "insufficient", "exceeds_total", "not_allowed", "unverified"
};


ngx_int_t
ngx_http_loyalty_checkout_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_pool_cleanup_t           *cln;
    ngx_http_loyalty_error_t      err;
    ngx_http_loyalty_loc_conf_t  *llcf;
    ngx_http_loyalty_checkout_t  *ctx;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (!llcf->checkout || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    if (ctx != NULL) {
        /* the phases resumed once Redis answered */
        return ctx->done ? ctx->rc : NGX_AGAIN;
    }

    ngx_http_loyalty_strip_headers(r, &llcf->header_prefix);

    if (r->method != NGX_HTTP_POST) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_checkout_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->flow = NGX_HTTP_LOYALTY_FLOW_CHECKOUT;
    ctx->request = r;
    ctx->rc = NGX_DECLINED;
    ctx->coupon_status = NGX_HTTP_LOYALTY_NONE;
    ctx->points_status = NGX_HTTP_LOYALTY_NONE;

    cln->handler = ngx_http_loyalty_checkout_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_loyalty_module);

    ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_CHECKOUTS, 1);

    if (ngx_http_loyalty_check_body(r, llcf->max_body, &err) != NGX_OK) {
        ngx_http_loyalty_checkout_refuse(ctx, &err);
        return NGX_DONE;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_loyalty_checkout_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_loyalty_checkout_body(ngx_http_request_t *r)
{
    ngx_str_t                     body;
    ngx_http_loyalty_error_t      err;
    ngx_http_loyalty_loc_conf_t  *llcf;
    ngx_http_loyalty_checkout_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ngx_http_loyalty_body(r, llcf->max_body, &body, &err) != NGX_OK
        || ngx_http_loyalty_read_cart(r, llcf, &body, &ctx->cart, &err)
           != NGX_OK
        || ngx_http_loyalty_customer(r, llcf, &ctx->customer, &err) != NGX_OK)
    {
        ngx_http_loyalty_checkout_refuse(ctx, &err);
        return;
    }

    if (ctx->cart.customer.len
        && (ctx->cart.customer.len != ctx->customer.len
            || ngx_strncmp(ctx->cart.customer.data, ctx->customer.data,
                           ctx->customer.len) != 0))
    {
        ngx_http_loyalty_error(&err, NGX_HTTP_FORBIDDEN, "customer_mismatch",
                               "the cart names customer \"%*s\", the "
                               "request is from another",
                               ctx->cart.customer.len,
                               ctx->cart.customer.data);
        ngx_http_loyalty_checkout_refuse(ctx, &err);
        return;
    }

    if (ctx->cart.checkout_id.len == 0) {
        ngx_http_loyalty_error(&err, NGX_HTTP_BAD_REQUEST, "missing_field",
                               "%s is required",
                               llcf->cart.pointer[LOYALTY_FIELD_CHECKOUT_ID]);
        ngx_http_loyalty_checkout_refuse(ctx, &err);
        return;
    }

    ctx->checkout_id.data = (u_char *) ctx->cart.checkout_id.data;
    ctx->checkout_id.len = ctx->cart.checkout_id.len;
    ctx->coupon.data = (u_char *) ctx->cart.coupon.data;
    ctx->coupon.len = ctx->cart.coupon.len;
    ctx->shadow = (llcf->mode == NGX_HTTP_LOYALTY_MODE_SHADOW);

    ngx_http_loyalty_checkout_start(ctx);

    if (ctx->pending == 0) {
        ngx_http_loyalty_checkout_done(ctx);
        return;
    }

    /* a client that goes away while Redis answers ends the request */
    r->read_event_handler = ngx_http_test_reading;
}


static void
ngx_http_loyalty_checkout_start(ngx_http_loyalty_checkout_t *ctx)
{
    ngx_http_request_t               *r = ctx->request;
    ngx_http_loyalty_main_conf_t     *lmcf;
    ngx_http_loyalty_coupon_entry_t  *e;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    e = NULL;

    if (ctx->cart.coupon.len) {

        if (ngx_http_loyalty_limit_exceeded(r, &ctx->customer)) {
            /* guessing: nothing is looked up */
            ctx->coupon_status = LOYALTY_COUPON_RATE_LIMITED;

        } else {
            e = ngx_http_loyalty_coupon_cached(&ctx->coupon);
            ngx_http_loyalty_checkout_coupon(ctx, e);
        }
    }

    if (ctx->cart.points == 0) {
        return;
    }

    if (ctx->customer.len == 0 || lmcf->point_value == 0
        || (lmcf->currency.len
            && ngx_strcmp(lmcf->currency.data, ctx->cart.currency) != 0))
    {
        ctx->points_status = NGX_HTTP_LOYALTY_POINTS_NOT_ALLOWED;
        return;
    }

    (void) loyalty_muldiv(ctx->cart.points, lmcf->point_value,
                          lmcf->point_value_per, LOYALTY_ROUND_DOWN,
                          &ctx->redeem_value);

    if (ctx->coupon_status == NGX_HTTP_LOYALTY_NONE && e == NULL
        && ctx->cart.coupon.len)
    {
        /* an uncached coupon: its discount is known after a round trip */
        ctx->points_deferred = 1;
        return;
    }

    ngx_http_loyalty_checkout_points(ctx);
}


/*
 * Queues the checkout for coupon_reserve.lua: with the cached definition
 * evaluated (reserve when the rules pass, else only verify the version),
 * or without one to get it.
 */

static void
ngx_http_loyalty_checkout_coupon(ngx_http_loyalty_checkout_t *ctx,
    ngx_http_loyalty_coupon_entry_t *e)
{
    const char                    *mode;
    ngx_http_request_t            *r = ctx->request;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    ngx_str_null(&ctx->coupon_version);
    mode = ctx->shadow ? "check" : "reserve";

    if (e != NULL) {
        loyalty_coupon_evaluate(&e->coupon, &ctx->cart, ngx_time(),
                                (loyalty_round_t) lmcf->round, &ctx->verdict);

        ctx->coupon_version.data = ngx_pstrdup(r->pool, &e->version);
        if (ctx->coupon_version.data == NULL) {
            ctx->coupon_status = LOYALTY_COUPON_UNVERIFIED;
            return;
        }

        ctx->coupon_version.len = e->version.len;

        if (ctx->verdict.status != LOYALTY_COUPON_VALID) {
            mode = "verify";
        }
    }

    ctx->coupon_mode = mode;

    ctx->coupon_wait = ngx_http_loyalty_coupon_reserve(&ctx->coupon,
                           &ctx->checkout_id, &ctx->customer,
                           &ctx->coupon_version, mode, lmcf->reservation_ttl,
                           ngx_http_loyalty_checkout_coupon_reply, ctx);

    if (ctx->coupon_wait == NULL) {
        ctx->coupon_status = LOYALTY_COUPON_UNVERIFIED;
        return;
    }

    ctx->pending++;
}


static void
ngx_http_loyalty_checkout_coupon_reply(void *data, ngx_uint_t status,
    ngx_str_t *answer, ngx_str_t *version, ngx_str_t *def)
{
    ngx_http_loyalty_checkout_t  *ctx = data;

    ngx_int_t                         s;
    ngx_connection_t                 *c;
    ngx_http_request_t               *r = ctx->request;
    ngx_http_loyalty_coupon_entry_t  *e;

    c = r->connection;
    ctx->coupon_wait = NULL;
    ctx->pending--;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK) {
        ctx->coupon_status = LOYALTY_COUPON_UNVERIFIED;
        goto next;
    }

    if (answer->len == 5 && ngx_strncmp(answer->data, "stale", 5) == 0) {
        e = ngx_http_loyalty_coupon_store(&ctx->coupon, version, def,
                                          r->connection->log);

        if (e == NULL || ++ctx->coupon_rounds >= NGX_HTTP_LOYALTY_COUPON_ROUNDS)
        {
            ctx->coupon_status = LOYALTY_COUPON_UNVERIFIED;
            goto next;
        }

        ngx_http_loyalty_checkout_coupon(ctx, e);
        goto next;
    }

    if (answer->len == 5 && ngx_strncmp(answer->data, "fresh", 5) == 0) {
        /* the rules refused the coupon on a current definition */
        ctx->coupon_status = ctx->verdict.status;
        goto next;
    }

    if (answer->len == 8 && ngx_strncmp(answer->data, "conflict", 8) == 0) {
        ctx->conflict = 1;
        goto next;
    }

    s = loyalty_coupon_status_by_name((char *) answer->data, answer->len);

    if (s < 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "loyalty: coupon_reserve answered \"%V\" for coupon "
                      "\"%V\"", answer, &ctx->coupon);
        ctx->coupon_status = LOYALTY_COUPON_UNVERIFIED;
        goto next;
    }

    ctx->coupon_status = s;

    if (s == LOYALTY_COUPON_VALID) {
        ctx->coupon_reserved = !ctx->shadow;
    }

next:

    if (ctx->coupon_status != NGX_HTTP_LOYALTY_NONE
        && ctx->coupon_status != LOYALTY_COUPON_VALID)
    {
        ctx->verdict.discount = 0;
    }

    if (ctx->points_deferred && ctx->coupon_status != NGX_HTTP_LOYALTY_NONE) {
        ctx->points_deferred = 0;
        ngx_http_loyalty_checkout_points(ctx);
    }

    if (ctx->pending == 0) {
        ngx_http_loyalty_checkout_done(ctx);
        ngx_http_run_posted_requests(c);
    }
}


static void
ngx_http_loyalty_checkout_points(ngx_http_loyalty_checkout_t *ctx)
{
    int64_t                        remaining;
    ngx_uint_t                     i;
    ngx_http_request_t            *r = ctx->request;
    ngx_http_loyalty_call_t       *call = &ctx->points_call;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    /* points pay for what the coupon left, never more */
    remaining = ctx->cart.subtotal;

    if (ctx->coupon_status == LOYALTY_COUPON_VALID
        || (ctx->coupon_status == NGX_HTTP_LOYALTY_NONE
            && ctx->verdict.status == LOYALTY_COUPON_VALID))
    {
        remaining -= ctx->verdict.discount;
    }

    if (ctx->redeem_value > remaining) {
        ctx->points_status = NGX_HTTP_LOYALTY_POINTS_EXCEEDS_TOTAL;
        return;
    }

    ngx_http_loyalty_points_keys(&ctx->customer, call->keys, call->keylens);

    for (i = 0; i < 3; i++) {
        call->argv[3 + i] = call->keys[i];
        call->argvlen[3 + i] = call->keylens[i];
    }

    call->argv[6] = (char *) ctx->cart.checkout_id.data;
    call->argvlen[6] = ctx->cart.checkout_id.len;
    call->argv[7] = (char *) call->nums[0];
    call->argvlen[7] = loyalty_str_int((char *) call->nums[0],
                                       ctx->cart.points);
    call->argv[8] = (char *) call->nums[1];
    call->argvlen[8] = loyalty_str_int((char *) call->nums[1],
                                       ngx_time());
    call->argv[9] = (char *) call->nums[2];
    call->argvlen[9] = loyalty_str_int((char *) call->nums[2],
                                       ngx_time() + lmcf->reservation_ttl);
    call->argv[10] = ctx->shadow ? "check" : "hold";
    call->argvlen[10] = ngx_strlen(call->argv[10]);

    if (ngx_http_loyalty_checkout_send(ctx, call, LOYALTY_SCRIPT_points_hold,
                                       3, 5,
                                       ngx_http_loyalty_checkout_points_reply)
        != NGX_OK)
    {
        /* a redemption that cannot be verified is refused */
        ctx->points_status = NGX_HTTP_LOYALTY_POINTS_UNVERIFIED;
    }
}


static void
ngx_http_loyalty_checkout_points_reply(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_checkout_t  *ctx = data;

    redisReply        *head;
    ngx_connection_t  *c;

    c = ctx->request->connection;
    ctx->points_call.cmd = NULL;
    ctx->pending--;

    ctx->points_status = NGX_HTTP_LOYALTY_POINTS_UNVERIFIED;

    if (status == NGX_HTTP_LOYALTY_REDIS_OK
        && reply->type == REDIS_REPLY_ARRAY
        && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        head = reply->element[0];

        if (head->len == 4 && ngx_strncmp(head->str, "held", 4) == 0) {
            ctx->points_status = NGX_HTTP_LOYALTY_POINTS_HELD;
            ctx->points_held = !ctx->shadow;

        } else if (head->len == 12
                   && ngx_strncmp(head->str, "insufficient", 12) == 0)
        {
            ctx->points_status = NGX_HTTP_LOYALTY_POINTS_INSUFFICIENT;
        }
    }

    if (ctx->pending == 0) {
        ngx_http_loyalty_checkout_done(ctx);
        ngx_http_run_posted_requests(c);
    }
}


/* Fills the argv slots after EVALSHA and its hash, and sends. */

static ngx_int_t
ngx_http_loyalty_checkout_send(ngx_http_loyalty_checkout_t *ctx,
    ngx_http_loyalty_call_t *call, loyalty_script_id_t script,
    ngx_uint_t nkeys, ngx_uint_t nargs,
    ngx_http_loyalty_redis_handler_pt handler)
{
    call->argv[2] = (char *) call->nums[3];
    call->argvlen[2] = loyalty_str_int((char *) call->nums[3],
                                       nkeys);

    call->cmd = ngx_http_loyalty_redis_eval(script, 3 + nkeys + nargs,
                                            call->argv, call->argvlen,
                                            handler, ctx);
    if (call->cmd == NULL) {
        return NGX_ERROR;
    }

    ctx->pending++;

    return NGX_OK;
}


/* Every answer is in: refuse, or let the request go on to the backend. */

static void
ngx_http_loyalty_checkout_done(ngx_http_loyalty_checkout_t *ctx)
{
    ngx_http_request_t            *r = ctx->request;
    ngx_http_loyalty_error_t       err;
    ngx_http_loyalty_loc_conf_t   *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ctx->points_deferred) {
        /* the coupon never got an answer: nothing to size the points by */
        ctx->points_deferred = 0;
        ctx->points_status = NGX_HTTP_LOYALTY_POINTS_UNVERIFIED;
    }

    ngx_http_loyalty_checkout_count(ctx);

    if (ctx->shadow) {
        ngx_http_loyalty_checkout_log_shadow(ctx);
    }

    if (ctx->conflict) {
        ngx_http_loyalty_error(&err, NGX_HTTP_CONFLICT, "checkout_conflict",
                               "checkout \"%V\" belongs to another customer",
                               &ctx->checkout_id);
        ngx_http_loyalty_checkout_refuse(ctx, &err);
        return;
    }

    if (llcf->coupon_reject && !ctx->shadow
        && ctx->coupon_status != NGX_HTTP_LOYALTY_NONE
        && ctx->coupon_status != LOYALTY_COUPON_VALID
        && ctx->coupon_status != LOYALTY_COUPON_UNVERIFIED)
    {
        ngx_http_loyalty_error(&err, NGX_HTTP_LOYALTY_UNPROCESSABLE,
                               "coupon_refused", "coupon \"%V\" is %s",
                               &ctx->coupon,
                               loyalty_coupon_status_name(ctx->coupon_status));
        ngx_http_loyalty_checkout_refuse(ctx, &err);
        return;
    }

    ctx->done = 1;
    ctx->rc = NGX_DECLINED;

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


static void
ngx_http_loyalty_checkout_refuse(ngx_http_loyalty_checkout_t *ctx,
    ngx_http_loyalty_error_t *err)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: checkout refused with %s: %*s", err->code,
                  err->len, err->message);

    ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_CHECKOUTS_REFUSED, 1);

    ctx->done = 1;
    ctx->rc = NGX_DONE;

    /* an unread body must not be taken for the next request */
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    ngx_http_finalize_request(r, ngx_http_loyalty_send_err(r, err));
}


/*
 * The verdicts, for /metrics; and coupon guesses: a code that itself is
 * wrong counts as a failed attempt.
 */

static void
ngx_http_loyalty_checkout_count(ngx_http_loyalty_checkout_t *ctx)
{
    if (ctx->coupon_status != NGX_HTTP_LOYALTY_NONE) {
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_COUPONS
                                     + ctx->coupon_status, 1);
    }

    if (ctx->points_status != NGX_HTTP_LOYALTY_NONE) {
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_REDEMPTIONS
                                     + ctx->points_status, 1);
    }

    switch (ctx->coupon_status) {

    case LOYALTY_COUPON_NOT_FOUND:
    case LOYALTY_COUPON_NOT_STARTED:
    case LOYALTY_COUPON_EXPIRED:
    case LOYALTY_COUPON_DISABLED:
        ngx_http_loyalty_limit_count(ctx->request, &ctx->customer);
        break;

    default:
        break;
    }
}


static void
ngx_http_loyalty_checkout_log_shadow(ngx_http_loyalty_checkout_t *ctx)
{
    ngx_http_request_t  *r = ctx->request;

    ngx_str_t  *v;

    v = ngx_http_loyalty_checkout_shadow_text(ctx, r->pool);
    if (v == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "loyalty: shadow checkout \"%V\" customer \"%V\": %V",
                  &ctx->checkout_id, &ctx->customer, v);
}


ngx_str_t *
ngx_http_loyalty_checkout_shadow_text(ngx_http_loyalty_checkout_t *ctx,
    ngx_pool_t *pool)
{
    u_char     *p;
    ngx_str_t  *s;
    char        money[LOYALTY_MONEY_TEXT_MAX];

    s = ngx_palloc(pool, sizeof(ngx_str_t) + 256 + LOYALTY_CODE_MAX);
    if (s == NULL) {
        return NULL;
    }

    s->data = (u_char *) (s + 1);
    p = s->data;

    if (ctx->coupon_status != NGX_HTTP_LOYALTY_NONE) {
        loyalty_money_format(ctx->verdict.discount, ctx->cart.decimals,
                             money);
        p = ngx_sprintf(p, "coupon=%V status=%s discount=%s ",
                        &ctx->coupon,
                        loyalty_coupon_status_name(ctx->coupon_status),
                        money);
    }

    if (ctx->points_status != NGX_HTTP_LOYALTY_NONE) {
        loyalty_money_format(ctx->redeem_value, ctx->cart.decimals, money);
        p = ngx_sprintf(p, "points=%L points_status=%s redeem_value=%s ",
                        ctx->cart.points,
                        ngx_http_loyalty_points_status_name(
                            ctx->points_status),
                        money);
    }

    s->len = p - s->data;

    if (s->len) {
        s->len--;
    }

    return s;
}


const char *
ngx_http_loyalty_points_status_name(ngx_int_t status)
{
    return ngx_http_loyalty_points_statuses[status];
}


/* The response header decides: only a 2xx keeps the reservations. */

ngx_int_t
ngx_http_loyalty_checkout_header_filter(ngx_http_request_t *r)
{
    ngx_http_loyalty_checkout_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    if (ctx != NULL && ctx->flow == NGX_HTTP_LOYALTY_FLOW_CHECKOUT
        && r == r->main)
    {
        ctx->accepted = (r->headers_out.status >= 200
                         && r->headers_out.status < 300);
    }

    return NGX_OK;
}


static void
ngx_http_loyalty_checkout_cleanup(void *data)
{
    ngx_http_loyalty_checkout_t  *ctx = data;

    if (ctx->coupon_wait != NULL) {
        ngx_http_loyalty_coupon_reserve_cancel(ctx->coupon_wait);
        ctx->coupon_wait = NULL;
    }

    if (ctx->points_call.cmd != NULL) {
        ngx_http_loyalty_redis_cancel(ctx->points_call.cmd);
        ctx->points_call.cmd = NULL;
    }

    if (!ctx->accepted) {
        ngx_http_loyalty_checkout_release(ctx);
    }
}


/*
 * The backend did not take the checkout, or the request ended before it
 * answered: the use and the points go back now rather than at expiry.
 */

static void
ngx_http_loyalty_checkout_release(ngx_http_loyalty_checkout_t *ctx)
{
    ngx_http_loyalty_release(ctx->coupon_reserved ? &ctx->coupon : NULL,
                             ctx->points_held ? &ctx->customer : NULL,
                             &ctx->checkout_id);

    ctx->coupon_reserved = 0;
    ctx->points_held = 0;
}


/*
 * Gives back a checkout's reservation of a coupon and its hold of a
 * customer's points (either may be NULL).  Nobody waits for the answers:
 * what fails here expires by itself.
 */

void
ngx_http_loyalty_release(ngx_str_t *coupon, ngx_str_t *customer,
    ngx_str_t *checkout)
{
    ngx_uint_t  i;
    ngx_str_t   keys[NGX_HTTP_LOYALTY_COUPON_KEYS];
    char        k[NGX_HTTP_LOYALTY_COUPON_KEYS][LOYALTY_KEY_MAX];
    size_t      lens[NGX_HTTP_LOYALTY_COUPON_KEYS];

    if (coupon != NULL) {
        ngx_http_loyalty_coupon_keys(coupon, k, lens);

        for (i = 0; i < NGX_HTTP_LOYALTY_COUPON_KEYS; i++) {
            keys[i].data = (u_char *) k[i];
            keys[i].len = lens[i];
        }

        /* coupon_release.lua takes :res, :resc and :resn */
        ngx_http_loyalty_redis_fire(LOYALTY_SCRIPT_coupon_release, &keys[1],
                                    3, checkout, 1);
    }

    if (customer != NULL) {
        ngx_http_loyalty_points_keys(customer, k, lens);

        for (i = 0; i < 3; i++) {
            keys[i].data = (u_char *) k[i];
            keys[i].len = lens[i];
        }

        ngx_http_loyalty_redis_fire(LOYALTY_SCRIPT_points_release, keys, 3,
                                    checkout, 1);
    }
}


void
ngx_http_loyalty_points_keys(ngx_str_t *customer,
    char keys[][LOYALTY_KEY_MAX], size_t *lens)
{
    lens[0] = loyalty_key(keys[0], "customer", (char *) customer->data,
                          customer->len, "");
    lens[1] = loyalty_key(keys[1], "customer", (char *) customer->data,
                          customer->len, ":holds");
    lens[2] = loyalty_key(keys[2], "customer", (char *) customer->data,
                          customer->len, ":holdv");
}
