/*
 * loyalty_order_confirm: where an order earns its points.
 *
 * The request goes to the backend first; the body is read on the way (the
 * same cart as at checkout, with its order id).  Only when the backend's
 * answer is 2xx is the order recorded: the answer is held (its header and
 * body, in the filters) while one round trip records the pending points,
 * the due-index entry and the coupon use, so that $loyalty_points_earned
 * can be sent with add_header.  When Redis fails the writes go to the
 * spool and the answer is released at once: the order never waits beyond
 * loyalty_redis_timeout and never fails because of loyalty.
 *
 * The recording is a job with a pool of its own: a client that goes away
 * after the shop confirmed does not lose the points.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_checkout.h"
#include "ngx_http_loyalty_confirm.h"
#include "ngx_http_loyalty_coupon.h"
#include "ngx_http_loyalty_metrics.h"
#include "loyalty_keys.h"
#include "loyalty_str.h"


static void ngx_http_loyalty_confirm_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_confirm_read(ngx_http_request_t *r,
    ngx_http_loyalty_confirm_t *ctx, ngx_str_t *json);
static ngx_int_t ngx_http_loyalty_confirm_copy(ngx_http_loyalty_confirm_t *ctx,
    ngx_chain_t *in);
static void ngx_http_loyalty_confirm_answer(ngx_http_loyalty_confirm_t *ctx);
static void ngx_http_loyalty_confirm_record(ngx_http_loyalty_confirm_t *ctx);
static ngx_int_t ngx_http_loyalty_confirm_release(
    ngx_http_loyalty_confirm_t *ctx);
static void ngx_http_loyalty_confirm_cleanup(void *data);
static void ngx_http_loyalty_confirm_skip(ngx_http_loyalty_confirm_t *ctx,
    const char *fmt, ...);
static uint64_t ngx_http_loyalty_confirm_fingerprint(
    ngx_http_loyalty_confirm_t *ctx);

static ngx_int_t ngx_http_loyalty_job_add(ngx_http_loyalty_job_t *job,
    ngx_uint_t phase, ngx_int_t script, int argc, const char **argv,
    size_t *argvlen);
static void ngx_http_loyalty_job_run(ngx_http_loyalty_job_t *job);
static void ngx_http_loyalty_job_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_job_step(ngx_http_loyalty_job_t *job);
static void ngx_http_loyalty_job_count(ngx_http_loyalty_job_t *job,
    ngx_http_loyalty_job_call_t *call, redisReply *reply);
static void ngx_http_loyalty_job_tell(ngx_http_loyalty_job_t *job);
static void ngx_http_loyalty_job_event(ngx_http_loyalty_job_t *job);
static void ngx_http_loyalty_job_free(ngx_http_loyalty_job_t *job);
static ngx_str_t ngx_http_loyalty_job_str(ngx_pool_t *pool, const char *fmt,
    ...);
static ngx_str_t ngx_http_loyalty_job_copy(ngx_pool_t *pool,
    const char *prefix, ngx_str_t *str);
static ngx_str_t ngx_http_loyalty_job_int(ngx_pool_t *pool, int64_t n);


static const char  *ngx_http_loyalty_order_statuses[] = {
    "", "recorded", "replayed", "spooled", "conflict", "guest", "refused",
    "invalid"
};


const char *
ngx_http_loyalty_order_status_name(ngx_uint_t status)
{
    return ngx_http_loyalty_order_statuses[status];
}


ngx_int_t
ngx_http_loyalty_confirm_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_pool_cleanup_t           *cln;
    ngx_http_loyalty_confirm_t   *ctx;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (!llcf->confirm || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    if (ctx != NULL) {
        return ctx->done ? NGX_DECLINED : NGX_AGAIN;
    }

    ngx_http_loyalty_strip_headers(r, &llcf->header_prefix);

    if (r->method != NGX_HTTP_POST) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_confirm_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->flow = NGX_HTTP_LOYALTY_FLOW_CONFIRM;
    ctx->request = r;
    ctx->total = -1;

    cln->handler = ngx_http_loyalty_confirm_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_loyalty_module);

    /* the body goes to the backend whatever loyalty thinks of it */
    rc = ngx_http_read_client_request_body(r, ngx_http_loyalty_confirm_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static void
ngx_http_loyalty_confirm_body(ngx_http_request_t *r)
{
    ngx_str_t                     body;
    ngx_http_loyalty_error_t      err;
    ngx_http_loyalty_confirm_t   *ctx;
    ngx_http_loyalty_loc_conf_t  *llcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ngx_http_loyalty_customer(r, llcf, &ctx->customer, &err) != NGX_OK) {
        ngx_http_loyalty_confirm_skip(ctx, "%s: %*s", err.code, err.len,
                                      err.message);

    } else if (llcf->order_source == NGX_HTTP_LOYALTY_SOURCE_RESPONSE) {
        /* the order is read from the shop's answer, once it is in */
        ctx->from_answer = 1;
        ctx->readable = 1;

    } else if (ngx_http_loyalty_check_body(r, llcf->max_body, &err)
               != NGX_OK
               || ngx_http_loyalty_body(r, llcf->max_body, &body, &err)
                  != NGX_OK)
    {
        ngx_http_loyalty_confirm_skip(ctx, "%s: %*s", err.code, err.len,
                                      err.message);

    } else {
        ctx->readable = (ngx_http_loyalty_confirm_read(r, ctx, &body)
                         == NGX_OK);
        ctx->from_answer = (llcf->response_order_id.len != 0);
    }

    ctx->done = 1;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The order in a JSON document: the confirmation's body, or the shop's
 * answer.  What loyalty cannot read is still the shop's order: it goes
 * on, unrecorded, with a warning.
 */

static ngx_int_t
ngx_http_loyalty_confirm_read(ngx_http_request_t *r,
    ngx_http_loyalty_confirm_t *ctx, ngx_str_t *json)
{
    ngx_http_loyalty_error_t      err;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ngx_http_loyalty_read_cart(r, llcf, json, &ctx->cart, &err)
        != NGX_OK)
    {
        ngx_http_loyalty_confirm_skip(ctx, "%s: %*s", err.code, err.len,
                                      err.message);
        return NGX_ERROR;
    }

    if (ctx->cart.customer.len
        && (ctx->cart.customer.len != ctx->customer.len
            || ngx_strncmp(ctx->cart.customer.data, ctx->customer.data,
                           ctx->customer.len) != 0))
    {
        ngx_http_loyalty_confirm_skip(ctx, "customer_mismatch: the order "
                                      "names customer \"%*s\", the request "
                                      "is from another",
                                      ctx->cart.customer.len,
                                      ctx->cart.customer.data);
        return NGX_ERROR;
    }

    ctx->order.data = (u_char *) ctx->cart.order_id.data;
    ctx->order.len = ctx->cart.order_id.len;
    ctx->checkout.data = (u_char *) ctx->cart.checkout_id.data;
    ctx->checkout.len = ctx->cart.checkout_id.len;
    ctx->coupon.data = (u_char *) ctx->cart.coupon.data;
    ctx->coupon.len = ctx->cart.coupon.len;

    if (ctx->order.len == 0 && llcf->response_order_id.len == 0) {
        ngx_http_loyalty_confirm_skip(ctx, "missing_field: %s is required",
                                      llcf->cart.pointer
                                          [LOYALTY_FIELD_ORDER_ID]);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_loyalty_confirm_skip(ngx_http_loyalty_confirm_t *ctx,
    const char *fmt, ...)
{
    u_char    *p, msg[NGX_MAX_ERROR_STR];
    va_list    args;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    if (ctx->status != NGX_HTTP_LOYALTY_ORDER_INVALID) {
        ctx->status = NGX_HTTP_LOYALTY_ORDER_INVALID;
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_CONFIRMATIONS
                                     + NGX_HTTP_LOYALTY_ORDER_INVALID, 1);
    }

    ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                  "loyalty: order confirmation not recorded, %*s",
                  p - msg, msg);
}


/*
 * The backend's answer: a 2xx is held until the order is recorded; any
 * other answer gives back what the checkout reserved.
 */

ngx_int_t
ngx_http_loyalty_confirm_header_filter(ngx_http_request_t *r,
    ngx_http_output_header_filter_pt next)
{
    ngx_http_loyalty_confirm_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    if (ctx == NULL || ctx->flow != NGX_HTTP_LOYALTY_FLOW_CONFIRM
        || r != r->main || !ctx->readable || ctx->job || ctx->status)
    {
        return next(r);
    }

    if (r->headers_out.status < 200 || r->headers_out.status >= 300) {
        ctx->status = NGX_HTTP_LOYALTY_ORDER_REFUSED;
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_CONFIRMATIONS
                                     + NGX_HTTP_LOYALTY_ORDER_REFUSED, 1);

        if (ctx->checkout.len) {
            ngx_http_loyalty_release(ctx->coupon.len ? &ctx->coupon : NULL,
                                     ctx->customer.len ? &ctx->customer
                                                       : NULL,
                                     &ctx->checkout);
        }

        return next(r);
    }

    ctx->holding = 1;
    r->buffered |= NGX_HTTP_LOYALTY_BUFFERED;

    if (!ctx->from_answer) {
        ngx_http_loyalty_confirm_record(ctx);

    } else if (r->header_only) {
        ngx_http_loyalty_confirm_skip(ctx, "the shop's answer has no body "
                                      "to read the order from");
    }

    /* let go at once (Redis down, nothing to read): send it now */
    if (!ctx->holding || ctx->status == NGX_HTTP_LOYALTY_ORDER_INVALID) {
        return ngx_http_loyalty_confirm_release(ctx);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_loyalty_confirm_body_filter(ngx_http_request_t *r, ngx_chain_t *in,
    ngx_http_output_body_filter_pt next)
{
    ngx_chain_t                 *cl;
    ngx_http_loyalty_confirm_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    if (ctx == NULL || ctx->flow != NGX_HTTP_LOYALTY_FLOW_CONFIRM
        || r != r->main || !ctx->holding)
    {
        return next(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            ctx->last = 1;
        }
    }

    if (ctx->from_answer && ctx->job == NULL && ctx->status == 0) {
        /*
         * The answer is read: copied, and the shop's buffers given back
         * at once, so that nginx goes on reading the rest of it.
         */
        if (ngx_http_loyalty_confirm_copy(ctx, in) != NGX_OK) {
            ngx_http_loyalty_confirm_skip(ctx, "the shop's answer is larger "
                                          "than %d bytes",
                                          NGX_HTTP_LOYALTY_ANSWER_MAX);

        } else if (ctx->last) {
            ngx_http_loyalty_confirm_answer(ctx);
        }

    } else if (in != NULL
               && ngx_chain_add_copy(r->pool, &ctx->held, in) != NGX_OK)
    {
        /* held: the buffers stay unconsumed, so nginx keeps them */
        return NGX_ERROR;
    }

    if (!ctx->holding || ctx->status == NGX_HTTP_LOYALTY_ORDER_INVALID) {
        return ngx_http_loyalty_confirm_release(ctx);
    }

    return NGX_OK;
}


/*
 * Copies the answer into a buffer of its own and marks the shop's buffers
 * consumed.  Beyond the bound the copy stops: what is left of the chain
 * is kept, unconsumed, to pass on after the copy.
 */

static ngx_int_t
ngx_http_loyalty_confirm_copy(ngx_http_loyalty_confirm_t *ctx,
    ngx_chain_t *in)
{
    off_t         size;
    ssize_t       n;
    ngx_buf_t    *b, *a;
    ngx_chain_t  *cl;

    if (ctx->answer == NULL) {
        ctx->answer = ngx_create_temp_buf(ctx->request->pool,
                                          NGX_HTTP_LOYALTY_ANSWER_MAX);
        if (ctx->answer == NULL) {
            return NGX_ERROR;
        }
    }

    a = ctx->answer;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if (size > a->end - a->last) {
            ctx->rest = cl;
            return NGX_ERROR;
        }

        if (b->in_file) {
            n = ngx_read_file(b->file, a->last, (size_t) size, b->file_pos);

            if (n != size) {
                ctx->rest = cl;
                return NGX_ERROR;
            }

            a->last += n;
            b->file_pos = b->file_last;

            if (ngx_buf_in_memory(b)) {
                b->pos = b->last;
            }

            continue;
        }

        if (size) {
            a->last = ngx_cpymem(a->last, b->pos, (size_t) size);
            b->pos = b->last;
        }
    }

    return NGX_OK;
}


static void
ngx_http_loyalty_confirm_answer(ngx_http_loyalty_confirm_t *ctx)
{
    size_t                        bad;
    ngx_str_t                     json;
    ngx_http_request_t           *r = ctx->request;
    loyalty_json_error_t          jerr;
    loyalty_json_limits_t         limits;
    const loyalty_json_t         *root, *v;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    json.data = ctx->answer->pos;
    json.len = ctx->answer->last - ctx->answer->pos;

    if (llcf->order_source == NGX_HTTP_LOYALTY_SOURCE_RESPONSE) {
        if (ngx_http_loyalty_confirm_read(r, ctx, &json) != NGX_OK) {
            return;
        }

        /* the answer is the order: its id is in it, not elsewhere */
        if (ctx->order.len == 0) {
            ngx_http_loyalty_confirm_skip(ctx, "%s is required in the "
                                          "shop's answer",
                                          llcf->cart.pointer
                                              [LOYALTY_FIELD_ORDER_ID]);
            return;
        }

        ngx_http_loyalty_confirm_record(ctx);
        return;
    }

    limits.alloc = ngx_http_loyalty_palloc;
    limits.ctx = r->pool;
    limits.max_depth = 32;
    limits.max_values = 100000;
    limits.max_members = 1024;
    limits.max_string = NGX_HTTP_LOYALTY_ANSWER_MAX;

    root = loyalty_json_parse((char *) json.data, json.len, &limits, &jerr);
    v = root ? loyalty_json_pointer(root,
                                    (char *) llcf->response_order_id.data,
                                    llcf->response_order_id.len)
             : NULL;

    if (v == NULL
        || (v->type != LOYALTY_JSON_STRING && v->type != LOYALTY_JSON_NUMBER)
        || loyalty_id_check(v->text, v->len, LOYALTY_ID_MAX, &bad)
           != LOYALTY_CODE_OK)
    {
        ngx_http_loyalty_confirm_skip(ctx, "no valid order id at \"%V\" in "
                                      "the backend's answer",
                                      &llcf->response_order_id);
        return;
    }

    ctx->order.data = (u_char *) v->text;
    ctx->order.len = v->len;

    ngx_http_loyalty_confirm_record(ctx);
}


/*
 * The job, in phases (see ngx_http_loyalty_confirm.h): the order id
 * claimed; the accrual, then the customer's entry in the worker's schedule
 * (an order recorded while the worker visits the customer must touch the
 * entry after it is in the account); the coupon's use and the event, which
 * only a recorded order may have.
 */

static void
ngx_http_loyalty_confirm_record(ngx_http_loyalty_confirm_t *ctx)
{
    int64_t                        now, base, redeemed, due;
    ngx_str_t                      s;
    ngx_uint_t                     i;
    ngx_pool_t                    *pool;
    loyalty_earning_t              how;
    ngx_http_request_t            *r = ctx->request;
    ngx_http_loyalty_job_t        *job;
    ngx_http_loyalty_main_conf_t  *lmcf;
    const char                    *argv[21];
    size_t                         argvlen[21];
    char                           keys[NGX_HTTP_LOYALTY_COUPON_KEYS + 1]
                                       [LOYALTY_KEY_MAX];
    size_t                         lens[NGX_HTTP_LOYALTY_COUPON_KEYS + 1];

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        ngx_http_loyalty_confirm_skip(ctx, "out of memory");
        return;
    }

    job = ngx_pcalloc(pool, sizeof(ngx_http_loyalty_job_t));
    if (job == NULL) {
        ngx_destroy_pool(pool);
        ngx_http_loyalty_confirm_skip(ctx, "out of memory");
        return;
    }

    job->pool = pool;
    job->ctx = ctx;
    job->total = -1;
    ctx->job = job;

    job->order = ngx_http_loyalty_job_copy(pool, "", &ctx->order);
    job->customer = ngx_http_loyalty_job_copy(pool, "", &ctx->customer);
    job->coupon = ngx_http_loyalty_job_copy(pool, "coupon:", &ctx->coupon);
    job->status = ctx->customer.len ? NGX_HTTP_LOYALTY_ORDER_RECORDED
                                    : NGX_HTTP_LOYALTY_ORDER_GUEST;

    now = ngx_time();
    redeemed = 0;

    if (lmcf->point_value_per) {
        (void) loyalty_muldiv(ctx->cart.points, lmcf->point_value,
                              lmcf->point_value_per, LOYALTY_ROUND_DOWN,
                              &redeemed);
    }

    base = loyalty_points_earned(&lmcf->program, &ctx->cart,
                                 ctx->cart.discount, redeemed, now, &how);
    job->basis = how.basis;

    /* shown until Redis applies the tier, and if Redis cannot */
    job->points = base;
    ctx->points = base;

    /* the order id is one customer's */
    lens[0] = loyalty_key_order(keys[0], (char *) ctx->order.data,
                                ctx->order.len);

    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = keys[0];
    argvlen[3] = lens[0];
    argv[4] = (char *) ctx->order.data;
    argvlen[4] = ctx->order.len;
    argv[5] = (char *) ctx->customer.data;
    argvlen[5] = ctx->customer.len;

    (void) ngx_http_loyalty_job_add(job, NGX_HTTP_LOYALTY_PHASE_CLAIM,
                                    LOYALTY_SCRIPT_order_claim, 6, argv,
                                    argvlen);

    if (ctx->customer.len) {
        due = now + lmcf->program.return_window;

        ngx_http_loyalty_points_keys(&ctx->customer, keys, lens);
        lens[3] = loyalty_key(keys[3], "customer", (char *) ctx->customer.data,
                              ctx->customer.len, ":log");

        argv[2] = "4";
        argvlen[2] = 1;

        for (i = 0; i < 4; i++) {
            argv[3 + i] = keys[i];
            argvlen[3 + i] = lens[i];
        }

        argv[7] = (char *) ctx->order.data;
        argvlen[7] = ctx->order.len;

        s = ngx_http_loyalty_job_str(pool, "%016xL",
                                     ngx_http_loyalty_confirm_fingerprint(ctx));
        argv[8] = (char *) s.data;
        argvlen[8] = s.len;

        s = ngx_http_loyalty_job_int(pool, base);
        argv[9] = (char *) s.data;
        argvlen[9] = s.len;

        argv[10] = (char *) lmcf->tiers_arg.data;
        argvlen[10] = lmcf->tiers_arg.len;

        s = ngx_http_loyalty_job_int(pool, how.basis);
        argv[11] = (char *) s.data;
        argvlen[11] = s.len;

        s = ngx_http_loyalty_job_int(pool, due);
        argv[12] = (char *) s.data;
        argvlen[12] = s.len;

        s = ngx_http_loyalty_job_int(pool, now);
        argv[13] = (char *) s.data;
        argvlen[13] = s.len;

        argv[14] = (char *) lmcf->program_version.data;
        argvlen[14] = lmcf->program_version.len;
        argv[15] = (char *) ctx->checkout.data;
        argvlen[15] = ctx->checkout.len;

        s = ngx_http_loyalty_job_int(pool, lmcf->program.order_every);
        argv[16] = (char *) s.data;
        argvlen[16] = s.len;

        s = ngx_http_loyalty_job_int(pool, lmcf->program.order_points);
        argv[17] = (char *) s.data;
        argvlen[17] = s.len;

        argv[18] = (char *) ctx->cart.referral.data;
        argvlen[18] = ctx->cart.referral.len;

        s = ngx_http_loyalty_job_int(pool, ctx->cart.points);
        argv[19] = (char *) s.data;
        argvlen[19] = s.len;
        argv[20] = (char *) ctx->coupon.data;
        argvlen[20] = ctx->coupon.len;

        (void) ngx_http_loyalty_job_add(job, NGX_HTTP_LOYALTY_PHASE_RECORD,
                                        LOYALTY_SCRIPT_order_record, 21, argv,
                                        argvlen);

        /* after the accrual, in the same pipeline: see due_add.lua */
        lens[0] = loyalty_key_due(keys[0], (char *) ctx->customer.data,
                                  ctx->customer.len, "");

        argv[2] = "1";
        argvlen[2] = 1;
        argv[3] = keys[0];
        argvlen[3] = lens[0];
        argv[4] = (char *) ctx->customer.data;
        argvlen[4] = ctx->customer.len;

        s = ngx_http_loyalty_job_int(pool, due);
        argv[5] = (char *) s.data;
        argvlen[5] = s.len;

        (void) ngx_http_loyalty_job_add(job, NGX_HTTP_LOYALTY_PHASE_RECORD,
                                        LOYALTY_SCRIPT_due_add, 6, argv,
                                        argvlen);
    }

    if (ctx->coupon.len) {
        ngx_http_loyalty_coupon_keys(&ctx->coupon, keys, lens);
        lens[5] = loyalty_key(keys[5], "coupon", (char *) ctx->coupon.data,
                              ctx->coupon.len, ":orders");

        argv[2] = "6";
        argvlen[2] = 1;

        for (i = 0; i < 6; i++) {
            argv[3 + i] = keys[i];
            argvlen[3 + i] = lens[i];
        }

        argv[9] = (char *) ctx->checkout.data;
        argvlen[9] = ctx->checkout.len;
        argv[10] = (char *) ctx->order.data;
        argvlen[10] = ctx->order.len;
        argv[11] = (char *) ctx->customer.data;
        argvlen[11] = ctx->customer.len;

        (void) ngx_http_loyalty_job_add(job, NGX_HTTP_LOYALTY_PHASE_AFTER,
                                        LOYALTY_SCRIPT_coupon_commit, 12,
                                        argv, argvlen);
    }

    ngx_http_loyalty_job_run(job);

    /* from now on replies come from Redis, outside the request's filters */
    if (ctx->job == job) {
        job->async = 1;
    }
}


/*
 * What makes two confirmations of one order the same: its content, never
 * what the program computed of it (a campaign that ended must not turn a
 * retry into a conflict).
 */

static uint64_t
ngx_http_loyalty_confirm_fingerprint(ngx_http_loyalty_confirm_t *ctx)
{
    u_char          *p;
    size_t           i, n;
    uint64_t         h;
    loyalty_line_t  *l;
    u_char           buf[LOYALTY_INT_TEXT_MAX * 4 + 8];

#define ngx_http_loyalty_fnv(data, len)                                      \
    for (p = (u_char *) (data); p < (u_char *) (data) + (len); p++) {       \
        h = (h ^ *p) * 0x100000001b3ULL;                                     \
    }                                                                        \
    h = (h ^ '|') * 0x100000001b3ULL

    h = 0xcbf29ce484222325ULL;

    ngx_http_loyalty_fnv(ctx->customer.data, ctx->customer.len);
    ngx_http_loyalty_fnv(ctx->order.data, ctx->order.len);
    ngx_http_loyalty_fnv(ctx->checkout.data, ctx->checkout.len);
    ngx_http_loyalty_fnv(ctx->coupon.data, ctx->coupon.len);
    ngx_http_loyalty_fnv(ctx->cart.referral.data, ctx->cart.referral.len);
    ngx_http_loyalty_fnv(ctx->cart.currency, 3);

    for (i = 0; i < ctx->cart.nlines; i++) {
        l = &ctx->cart.lines[i];
        ngx_http_loyalty_fnv(l->sku.data, l->sku.len);
        ngx_http_loyalty_fnv(l->brand.data, l->brand.len);
        ngx_http_loyalty_fnv(l->category.data, l->category.len);
        n = loyalty_str_int((char *) buf, l->price);
        buf[n++] = ' ';
        n += loyalty_str_int((char *) buf + n, l->quantity);
        ngx_http_loyalty_fnv(buf, n);
    }

    n = loyalty_str_int((char *) buf, ctx->cart.shipping);
    buf[n++] = ' ';
    n += loyalty_str_int((char *) buf + n, ctx->cart.tax);
    buf[n++] = ' ';
    n += loyalty_str_int((char *) buf + n, ctx->cart.discount);
    buf[n++] = ' ';
    n += loyalty_str_int((char *) buf + n, ctx->cart.points);
    ngx_http_loyalty_fnv(buf, n);

#undef ngx_http_loyalty_fnv

    return h;
}


/* Prepares a call with a copy of its argv in the job's pool. */

static ngx_int_t
ngx_http_loyalty_job_add(ngx_http_loyalty_job_t *job, ngx_uint_t phase,
    ngx_int_t script, int argc, const char **argv, size_t *argvlen)
{
    int                           i;
    u_char                       *p;
    ngx_http_loyalty_job_call_t  *call;

    call = &job->calls[job->ncalls++];
    call->job = job;
    call->phase = phase;
    call->script = script;
    call->argc = argc;
    call->argv = ngx_palloc(job->pool, argc * sizeof(char *));
    call->argvlen = ngx_palloc(job->pool, argc * sizeof(size_t));

    if (call->argv == NULL || call->argvlen == NULL) {
        call->argc = 0;
        return NGX_ERROR;
    }

    /* a script's first two are EVALSHA and its hash, set when it is sent */
    call->argv[0] = NULL;
    call->argvlen[0] = 0;
    call->argv[1] = NULL;
    call->argvlen[1] = 0;

    for (i = (script >= 0) ? 2 : 0; i < argc; i++) {
        p = ngx_pnalloc(job->pool, argvlen[i] + 1);
        if (p == NULL) {
            call->argc = 0;
            return NGX_ERROR;
        }

        if (argvlen[i]) {
            ngx_memcpy(p, argv[i], argvlen[i]);
        }

        call->argv[i] = (char *) p;
        call->argvlen[i] = argvlen[i];
    }

    return NGX_OK;
}


/* Sends the calls of the current phase; a call not sent is a failure. */

static void
ngx_http_loyalty_job_run(ngx_http_loyalty_job_t *job)
{
    ngx_uint_t                    i;
    ngx_http_loyalty_job_call_t  *call;

    for (i = 0; i < job->ncalls; i++) {
        call = &job->calls[i];

        if (call->phase != job->phase) {
            continue;
        }

        if (call->argc == 0) {
            call->failed = 1;
            continue;
        }

        if (call->script >= 0) {
            call->cmd = ngx_http_loyalty_redis_eval(call->script, call->argc,
                                                    call->argv,
                                                    call->argvlen,
                                                    ngx_http_loyalty_job_reply,
                                                    call);
        } else {
            call->cmd = ngx_http_loyalty_redis_command(call->argc, call->argv,
                                                       call->argvlen,
                                                       ngx_http_loyalty_job_reply,
                                                       call);
        }

        if (call->cmd == NULL) {
            call->failed = 1;
            continue;
        }

        job->pending++;
    }

    if (job->pending == 0) {
        ngx_http_loyalty_job_step(job);
    }
}


static void
ngx_http_loyalty_job_reply(void *data, ngx_uint_t status, redisReply *reply)
{
    ngx_http_loyalty_job_call_t  *call = data;

    ngx_str_t                head;
    ngx_http_loyalty_job_t  *job;

    job = call->job;
    call->cmd = NULL;
    job->pending--;

    head.len = 0;

    if (status == NGX_HTTP_LOYALTY_REDIS_OK
        && reply->type == REDIS_REPLY_ARRAY && reply->elements
        && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        head.data = (u_char *) reply->element[0]->str;
        head.len = reply->element[0]->len;
    }

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type == REDIS_REPLY_ERROR)
    {
        call->failed = 1;

    } else if (head.len == 8 && ngx_strncmp(head.data, "conflict", 8) == 0) {
        job->status = NGX_HTTP_LOYALTY_ORDER_CONFLICT;
        call->done = 1;

        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "loyalty: order \"%V\" of customer \"%V\" was "
                      "confirmed before %s; not recorded again",
                      &job->order, &job->customer,
                      call->script == LOYALTY_SCRIPT_order_claim
                      ? "for another customer" : "with other content");

    } else if (call->script == LOYALTY_SCRIPT_order_record) {
        if (head.len == 8 && reply->elements >= 5) {
            job->status = ngx_strncmp(head.data, "recorded", 8) == 0
                          ? NGX_HTTP_LOYALTY_ORDER_RECORDED
                          : NGX_HTTP_LOYALTY_ORDER_REPLAYED;
            job->points = reply->element[1]->integer;
            job->total = reply->element[2]->integer;
            call->done = 1;

            if (job->status == NGX_HTTP_LOYALTY_ORDER_RECORDED) {
                ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_ACCRUALS, 1);
                ngx_http_loyalty_metrics_add(
                    NGX_HTTP_LOYALTY_M_ACCRUED_POINTS,
                    (ngx_atomic_int_t) job->points);
            }

            ngx_http_loyalty_job_count(job, call, reply);

        } else {
            call->failed = 1;
        }

    } else {
        call->done = 1;
        ngx_http_loyalty_job_count(job, call, reply);
    }

    if (job->pending == 0) {
        ngx_http_loyalty_job_step(job);
    }
}


/*
 * The program's totals and the leaderboard move with what this order did
 * the first time: its points pending, the points it redeemed, its value
 * as a member's or a guest's order, a first or second order of the
 * customer, a coupon's use.
 */

static void
ngx_http_loyalty_job_count(ngx_http_loyalty_job_t *job,
    ngx_http_loyalty_job_call_t *call, redisReply *reply)
{
    int64_t                  n;
    ngx_http_loyalty_stat_t  st[6];

    if (call->script == LOYALTY_SCRIPT_order_record
        && job->status == NGX_HTTP_LOYALTY_ORDER_RECORDED
        && reply->elements == 6)
    {
        n = reply->element[5]->integer;

        ngx_str_set(&st[0].field, "pending");
        st[0].change = reply->element[1]->integer;
        ngx_str_set(&st[1].field, "available");
        st[1].change = -reply->element[3]->integer;
        ngx_str_set(&st[2].field, "redeemed");
        st[2].change = reply->element[3]->integer;
        ngx_str_set(&st[3].field, "member_orders");
        st[3].change = 1;
        ngx_str_set(&st[4].field, "member_value");
        st[4].change = job->basis;
        ngx_str_set(&st[5].field, "customers");
        st[5].change = (n == 1);

        if (n == 2) {
            ngx_str_set(&st[5].field, "repeat_customers");
            st[5].change = 1;
        }

        ngx_http_loyalty_stats_add(st, 6);
        ngx_http_loyalty_board_add(&job->customer, job->points);

    } else if (call->script == LOYALTY_SCRIPT_order_claim
               && job->customer.len == 0 && reply->elements == 2
               && reply->element[1]->integer == 1)
    {
        ngx_str_set(&st[0].field, "guest_orders");
        st[0].change = 1;
        ngx_str_set(&st[1].field, "guest_value");
        st[1].change = job->basis;

        ngx_http_loyalty_stats_add(st, 2);

    } else if (call->script == LOYALTY_SCRIPT_coupon_commit
               && reply->elements == 2)
    {
        st[0].field = job->coupon;
        st[0].change = 1;

        ngx_http_loyalty_stats_add(st, 1);
    }
}


/*
 * A phase is over: a conflict stops the job; a failure sends everything
 * not yet done to the spool (in order: the replay stops where a conflict
 * shows); otherwise the next phase.  The request hears the outcome as
 * soon as the accrual is known.
 */

static void
ngx_http_loyalty_job_step(ngx_http_loyalty_job_t *job)
{
    ngx_uint_t  i, failed;

    failed = 0;

    for (i = 0; i < job->ncalls; i++) {
        if (job->calls[i].phase == job->phase && job->calls[i].failed) {
            failed = 1;
        }
    }

    if (job->status == NGX_HTTP_LOYALTY_ORDER_CONFLICT) {
        ngx_http_loyalty_job_tell(job);
        ngx_http_loyalty_job_free(job);
        return;
    }

    if (failed) {
        for (i = 0; i < job->ncalls; i++) {
            job->calls[i].failed = !job->calls[i].done;
        }

        ngx_http_loyalty_spool_write(job, ngx_cycle->log);

        if (job->phase < NGX_HTTP_LOYALTY_PHASE_AFTER
            && job->status != NGX_HTTP_LOYALTY_ORDER_GUEST)
        {
            job->status = NGX_HTTP_LOYALTY_ORDER_SPOOLED;
        }

        ngx_http_loyalty_job_tell(job);
        ngx_http_loyalty_job_free(job);
        return;
    }

    if (job->phase == NGX_HTTP_LOYALTY_PHASE_RECORD
        || (job->phase == NGX_HTTP_LOYALTY_PHASE_CLAIM
            && job->status == NGX_HTTP_LOYALTY_ORDER_GUEST))
    {
        ngx_http_loyalty_job_tell(job);
    }

    if (job->phase == NGX_HTTP_LOYALTY_PHASE_RECORD
        && job->status == NGX_HTTP_LOYALTY_ORDER_REPLAYED)
    {
        /* the first request did what follows */
        ngx_http_loyalty_job_free(job);
        return;
    }

    if (++job->phase == NGX_HTTP_LOYALTY_PHASES) {
        ngx_http_loyalty_job_free(job);
        return;
    }

    if (job->phase == NGX_HTTP_LOYALTY_PHASE_AFTER
        && job->status == NGX_HTTP_LOYALTY_ORDER_RECORDED)
    {
        ngx_http_loyalty_job_event(job);
    }

    ngx_http_loyalty_job_run(job);
}


/* The request, if it still waits, learns the outcome and is let go. */

static void
ngx_http_loyalty_job_tell(ngx_http_loyalty_job_t *job)
{
    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_loyalty_confirm_t  *ctx;

    /* the outcome is counted once, waited for or not */
    if (!job->counted) {
        job->counted = 1;
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_CONFIRMATIONS
                                     + job->status, 1);
    }

    ctx = job->ctx;

    if (ctx == NULL || !ctx->holding) {
        return;
    }

    ctx->status = job->status;
    ctx->points = job->points;
    ctx->total = job->total;

    r = ctx->request;
    c = r->connection;

    /* called inside the filters when Redis was down: they release */
    if (!job->async) {
        ctx->holding = 0;
        return;
    }

    rc = ngx_http_loyalty_confirm_release(ctx);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);

    } else {
        /* wake whoever waits on the answer: the upstream or the writer */
        ngx_post_event(c->write, &ngx_posted_events);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * points_earned, for the shop's mailer, after the accrual and only by the
 * request that recorded it.  Consumers dedupe by its id.
 */

static void
ngx_http_loyalty_job_event(ngx_http_loyalty_job_t *job)
{
    ngx_uint_t                     i;
    ngx_str_t                      v[20];
    const char                    *argv[21];
    size_t                         argvlen[21];
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_loyalty_module);

    ngx_str_set(&v[0], "XADD");
    ngx_str_set(&v[1], LOYALTY_KEY_EVENTS);
    ngx_str_set(&v[2], "MAXLEN");
    ngx_str_set(&v[3], "~");
    v[4] = ngx_http_loyalty_job_int(job->pool, (int64_t) lmcf->events_max);
    ngx_str_set(&v[5], "*");
    ngx_str_set(&v[6], "type");
    ngx_str_set(&v[7], "points_earned");
    ngx_str_set(&v[8], "id");
    v[9] = ngx_http_loyalty_job_copy(job->pool, "points_earned:",
                                     &job->order);
    ngx_str_set(&v[10], "customer");
    v[11] = job->customer;
    ngx_str_set(&v[12], "order");
    v[13] = job->order;
    ngx_str_set(&v[14], "points");
    v[15] = ngx_http_loyalty_job_int(job->pool, job->points);
    ngx_str_set(&v[16], "pending");
    v[17] = ngx_http_loyalty_job_int(job->pool, job->total);
    ngx_str_set(&v[18], "at");
    v[19] = ngx_http_loyalty_job_int(job->pool, (int64_t) ngx_time());

    for (i = 0; i < 20; i++) {
        argv[i] = (char *) v[i].data;
        argvlen[i] = v[i].len;
    }

    (void) ngx_http_loyalty_job_add(job, NGX_HTTP_LOYALTY_PHASE_AFTER, -1, 20,
                                    argv, argvlen);
}


static void
ngx_http_loyalty_job_free(ngx_http_loyalty_job_t *job)
{
    if (job->ctx != NULL) {
        job->ctx->job = NULL;
    }

    ngx_destroy_pool(job->pool);
}


/* Lets the held answer go: its header, then what of its body arrived. */

static ngx_int_t
ngx_http_loyalty_confirm_release(ngx_http_loyalty_confirm_t *ctx)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t         *held, *cl, **ll;
    ngx_http_request_t  *r = ctx->request;

    ctx->holding = 0;
    r->buffered &= ~NGX_HTTP_LOYALTY_BUFFERED;

    rc = ngx_http_loyalty_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ctx->held = NULL;
        return rc;
    }

    held = ctx->held;
    ctx->held = NULL;

    /* a copied answer: the copy first, then what did not fit in it */
    if (ctx->answer != NULL) {
        b = ctx->answer;
        ctx->answer = NULL;

        b->last_buf = ctx->last && ctx->rest == NULL;
        b->flush = 1;

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        cl->next = ctx->rest;
        ctx->rest = NULL;

        for (ll = &cl; *ll; ll = &(*ll)->next) { /* void */ }

        *ll = held;
        held = cl;
    }

    if (held == NULL) {
        return rc;
    }

    return ngx_http_loyalty_next_body_filter(r, held);
}


/* The request ends: the job, if any, goes on alone. */

static void
ngx_http_loyalty_confirm_cleanup(void *data)
{
    ngx_http_loyalty_confirm_t  *ctx = data;

    if (ctx->job != NULL) {
        ctx->job->ctx = NULL;
        ctx->job = NULL;
    }
}


static ngx_str_t
ngx_http_loyalty_job_str(ngx_pool_t *pool, const char *fmt, ...)
{
    u_char     *p;
    va_list     args;
    ngx_str_t   s;
    u_char      buf[NGX_MAX_ERROR_STR];

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    s.len = p - buf;
    s.data = ngx_pnalloc(pool, s.len + 1);

    if (s.data == NULL) {
        s.len = 0;
        s.data = (u_char *) "";
        return s;
    }

    ngx_memcpy(s.data, buf, s.len);
    s.data[s.len] = '\0';

    return s;
}


/* prefix and str, NUL-terminated, in the job's pool: no printf */

static ngx_str_t
ngx_http_loyalty_job_copy(ngx_pool_t *pool, const char *prefix,
    ngx_str_t *str)
{
    size_t     n;
    ngx_str_t  s;

    n = ngx_strlen(prefix);
    s.len = n + str->len;
    s.data = ngx_pnalloc(pool, s.len + 1);

    if (s.data == NULL) {
        s.len = 0;
        s.data = (u_char *) "";
        return s;
    }

    ngx_memcpy(s.data, prefix, n);

    /* an empty string (no coupon, a guest) may come without a pointer */
    if (str->len) {
        ngx_memcpy(s.data + n, str->data, str->len);
    }

    s.data[s.len] = '\0';

    return s;
}


static ngx_str_t
ngx_http_loyalty_job_int(ngx_pool_t *pool, int64_t n)
{
    ngx_str_t  s;

    s.data = ngx_pnalloc(pool, LOYALTY_INT_TEXT_MAX + 1);

    if (s.data == NULL) {
        s.len = 0;
        s.data = (u_char *) "";
        return s;
    }

    s.len = loyalty_str_int((char *) s.data, n);
    s.data[s.len] = '\0';

    return s;
}
