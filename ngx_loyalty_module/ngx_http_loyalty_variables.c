/*
 * The verdict, as variables for proxy_set_header, add_header and logs.
 * A variable is empty (and proxy_set_header sends no header) when the
 * request did not produce it, and in shadow mode, where nothing but
 * $loyalty_shadow is set.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_checkout.h"
#include "ngx_http_loyalty_confirm.h"
#include "loyalty_str.h"


enum {
    NGX_HTTP_LOYALTY_VAR_CUSTOMER = 0,
    NGX_HTTP_LOYALTY_VAR_CHECKOUT_ID,
    NGX_HTTP_LOYALTY_VAR_COUPON,
    NGX_HTTP_LOYALTY_VAR_COUPON_STATUS,
    NGX_HTTP_LOYALTY_VAR_DISCOUNT,
    NGX_HTTP_LOYALTY_VAR_POINTS_STATUS,
    NGX_HTTP_LOYALTY_VAR_POINTS_REDEEMED,
    NGX_HTTP_LOYALTY_VAR_REDEEM_VALUE,
    NGX_HTTP_LOYALTY_VAR_POINTS_ESTIMATE,
    NGX_HTTP_LOYALTY_VAR_SHADOW,
    NGX_HTTP_LOYALTY_VAR_ORDER_ID,
    NGX_HTTP_LOYALTY_VAR_ORDER_STATUS,
    NGX_HTTP_LOYALTY_VAR_POINTS_EARNED,
    NGX_HTTP_LOYALTY_VAR_POINTS_PENDING
};


static ngx_int_t ngx_http_loyalty_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_str_t *ngx_http_loyalty_variable_value(ngx_http_request_t *r,
    ngx_http_loyalty_checkout_t *ctx, uintptr_t which);
static ngx_str_t *ngx_http_loyalty_order_value(ngx_http_request_t *r,
    ngx_http_loyalty_confirm_t *ctx, uintptr_t which);
static ngx_str_t *ngx_http_loyalty_number(ngx_pool_t *pool, int64_t n);


static ngx_http_variable_t  ngx_http_loyalty_vars[] = {

    { ngx_string("loyalty_customer"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_CUSTOMER, 0, 0 },

    { ngx_string("loyalty_checkout_id"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_CHECKOUT_ID, 0, 0 },

    { ngx_string("loyalty_coupon"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_COUPON, 0, 0 },

    { ngx_string("loyalty_coupon_status"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_COUPON_STATUS, 0, 0 },

    { ngx_string("loyalty_discount"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_DISCOUNT, 0, 0 },

    { ngx_string("loyalty_points_status"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_POINTS_STATUS, 0, 0 },

    { ngx_string("loyalty_points_redeemed"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_POINTS_REDEEMED, 0, 0 },

    { ngx_string("loyalty_redeem_value"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_REDEEM_VALUE, 0, 0 },

    { ngx_string("loyalty_points_estimate"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_POINTS_ESTIMATE, 0, 0 },

    { ngx_string("loyalty_shadow"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_SHADOW, 0, 0 },

    { ngx_string("loyalty_order_id"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_ORDER_ID, 0, 0 },

    { ngx_string("loyalty_order_status"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_ORDER_STATUS, 0, 0 },

    { ngx_string("loyalty_points_earned"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_POINTS_EARNED, 0, 0 },

    { ngx_string("loyalty_points_pending"), NULL, ngx_http_loyalty_variable,
      NGX_HTTP_LOYALTY_VAR_POINTS_PENDING, 0, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_loyalty_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_loyalty_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                    *s;
    ngx_http_loyalty_checkout_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_loyalty_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* every flow's context starts with its flow */
    if (ctx->flow == NGX_HTTP_LOYALTY_FLOW_CONFIRM) {
        s = ngx_http_loyalty_order_value(r, (ngx_http_loyalty_confirm_t *)
                                               ctx, data);

    } else if (ctx->done) {
        s = ngx_http_loyalty_variable_value(r, ctx, data);

    } else {
        s = NULL;
    }

    if (s == NULL || s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_str_t *
ngx_http_loyalty_variable_value(ngx_http_request_t *r,
    ngx_http_loyalty_checkout_t *ctx, uintptr_t which)
{
    ngx_str_t                     *s;
    const char                    *name;
    loyalty_earning_t              how;
    ngx_http_loyalty_main_conf_t  *lmcf;

    if (which == NGX_HTTP_LOYALTY_VAR_SHADOW) {
        return ctx->shadow ? ngx_http_loyalty_checkout_shadow_text(ctx,
                                                                   r->pool)
                           : NULL;
    }

    if (ctx->shadow) {
        return NULL;
    }

    switch (which) {

    case NGX_HTTP_LOYALTY_VAR_CUSTOMER:
        return &ctx->customer;

    case NGX_HTTP_LOYALTY_VAR_CHECKOUT_ID:
        return &ctx->checkout_id;

    case NGX_HTTP_LOYALTY_VAR_COUPON:
        return &ctx->coupon;

    case NGX_HTTP_LOYALTY_VAR_DISCOUNT:
        return ngx_http_loyalty_money(r->pool,
                                      ctx->coupon_status
                                      == LOYALTY_COUPON_VALID
                                      ? ctx->verdict.discount : 0,
                                      ctx->cart.decimals);

    case NGX_HTTP_LOYALTY_VAR_REDEEM_VALUE:
        return ngx_http_loyalty_money(r->pool,
                                      ctx->points_status
                                      == NGX_HTTP_LOYALTY_POINTS_HELD
                                      ? ctx->redeem_value : 0,
                                      ctx->cart.decimals);

    case NGX_HTTP_LOYALTY_VAR_POINTS_REDEEMED:
        return ngx_http_loyalty_number(r->pool,
                                       ctx->points_status
                                       == NGX_HTTP_LOYALTY_POINTS_HELD
                                       ? ctx->cart.points : 0);

    case NGX_HTTP_LOYALTY_VAR_POINTS_ESTIMATE:
        lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

        return ngx_http_loyalty_number(r->pool,
            loyalty_points_earned(&lmcf->program, &ctx->cart,
                                  ctx->coupon_status == LOYALTY_COUPON_VALID
                                  ? ctx->verdict.discount : 0,
                                  ctx->points_status
                                  == NGX_HTTP_LOYALTY_POINTS_HELD
                                  ? ctx->redeem_value : 0,
                                  ngx_time(), &how));

    case NGX_HTTP_LOYALTY_VAR_ORDER_ID:
    case NGX_HTTP_LOYALTY_VAR_ORDER_STATUS:
    case NGX_HTTP_LOYALTY_VAR_POINTS_EARNED:
    case NGX_HTTP_LOYALTY_VAR_POINTS_PENDING:
        return NULL;

    case NGX_HTTP_LOYALTY_VAR_COUPON_STATUS:
        if (ctx->coupon_status == NGX_HTTP_LOYALTY_NONE) {
            return NULL;
        }

        name = loyalty_coupon_status_name(ctx->coupon_status);
        break;

    default: /* NGX_HTTP_LOYALTY_VAR_POINTS_STATUS */
        if (ctx->points_status == NGX_HTTP_LOYALTY_NONE) {
            return NULL;
        }

        name = ngx_http_loyalty_points_status_name(ctx->points_status);
        break;
    }

    s = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (s == NULL) {
        return NULL;
    }

    s->data = (u_char *) name;
    s->len = ngx_strlen(name);

    return s;
}


/* The order confirmation's variables; the checkout's are not set there. */

static ngx_str_t *
ngx_http_loyalty_order_value(ngx_http_request_t *r,
    ngx_http_loyalty_confirm_t *ctx, uintptr_t which)
{
    ngx_str_t  *s;

    switch (which) {

    case NGX_HTTP_LOYALTY_VAR_CUSTOMER:
        return &ctx->customer;

    case NGX_HTTP_LOYALTY_VAR_ORDER_ID:
        return &ctx->order;

    case NGX_HTTP_LOYALTY_VAR_ORDER_STATUS:
        s = ngx_palloc(r->pool, sizeof(ngx_str_t));
        if (s == NULL) {
            return NULL;
        }

        s->data = (u_char *) ngx_http_loyalty_order_status_name(ctx->status);
        s->len = ngx_strlen(s->data);
        return s;

    case NGX_HTTP_LOYALTY_VAR_POINTS_EARNED:
        switch (ctx->status) {
        case NGX_HTTP_LOYALTY_ORDER_RECORDED:
        case NGX_HTTP_LOYALTY_ORDER_REPLAYED:
        case NGX_HTTP_LOYALTY_ORDER_SPOOLED:
            return ngx_http_loyalty_number(r->pool, ctx->points);
        default:
            return NULL;
        }

    case NGX_HTTP_LOYALTY_VAR_POINTS_PENDING:
        return ctx->total >= 0 ? ngx_http_loyalty_number(r->pool, ctx->total)
                               : NULL;

    default:
        return NULL;
    }
}


static ngx_str_t *
ngx_http_loyalty_number(ngx_pool_t *pool, int64_t n)
{
    ngx_str_t  *s;

    s = ngx_palloc(pool, sizeof(ngx_str_t) + NGX_INT64_LEN);
    if (s == NULL) {
        return NULL;
    }

    s->data = (u_char *) (s + 1);
    s->len = loyalty_str_int((char *) s->data, n);

    return s;
}
