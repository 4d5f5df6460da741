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
#include "loyalty_keys.h"


/* the backend's JSON answer is read only for the order id: bounded */
#define NGX_HTTP_LOYALTY_ANSWER_MAX  (64 * 1024)


static void ngx_http_loyalty_confirm_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_confirm_read(ngx_http_request_t *r,
    ngx_http_loyalty_confirm_t *ctx);
static void ngx_http_loyalty_confirm_copy(ngx_http_loyalty_confirm_t *ctx,
    ngx_chain_t *in);
static void ngx_http_loyalty_confirm_answer(ngx_http_loyalty_confirm_t *ctx);
static void ngx_http_loyalty_confirm_record(ngx_http_loyalty_confirm_t *ctx);
static ngx_int_t ngx_http_loyalty_confirm_release(
    ngx_http_loyalty_confirm_t *ctx);
static void ngx_http_loyalty_confirm_cleanup(void *data);
static void ngx_http_loyalty_confirm_skip(ngx_http_loyalty_confirm_t *ctx,
    const char *fmt, ...);

static ngx_int_t ngx_http_loyalty_job_send(ngx_http_loyalty_job_t *job,
    ngx_int_t script, int argc, const char **argv, size_t *argvlen);
static void ngx_http_loyalty_job_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_job_finish(ngx_http_loyalty_job_t *job);
static void ngx_http_loyalty_job_event(ngx_http_loyalty_job_t *job);
static void ngx_http_loyalty_job_free(ngx_http_loyalty_job_t *job);
static ngx_str_t ngx_http_loyalty_job_str(ngx_pool_t *pool, const char *fmt,
    ...);


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
    ngx_http_loyalty_confirm_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    ctx->readable = (ngx_http_loyalty_confirm_read(r, ctx) == NGX_OK);

    ctx->done = 1;
    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * What loyalty needs of the confirmation.  A confirmation it cannot read
 * is still the shop's order: it goes on, unrecorded, with a warning.
 */

static ngx_int_t
ngx_http_loyalty_confirm_read(ngx_http_request_t *r,
    ngx_http_loyalty_confirm_t *ctx)
{
    ngx_str_t                     body;
    ngx_http_loyalty_error_t      err;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ngx_http_loyalty_check_body(r, llcf->max_body, &err) != NGX_OK
        || ngx_http_loyalty_body(r, llcf->max_body, &body, &err) != NGX_OK
        || ngx_http_loyalty_read_cart(r, llcf, &body, &ctx->cart, &err)
           != NGX_OK
        || ngx_http_loyalty_customer(r, llcf, &ctx->customer, &err)
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
        ngx_http_loyalty_confirm_skip(ctx, "the cart names customer "
                                      "\"%*s\", the request is from "
                                      "another", ctx->cart.customer.len,
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
        ngx_http_loyalty_confirm_skip(ctx, "%s is required",
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

    ctx->status = NGX_HTTP_LOYALTY_ORDER_INVALID;

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
    ngx_http_loyalty_confirm_t   *ctx;
    ngx_http_loyalty_loc_conf_t  *llcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);

    if (ctx == NULL || ctx->flow != NGX_HTTP_LOYALTY_FLOW_CONFIRM
        || r != r->main || !ctx->readable || ctx->job || ctx->status)
    {
        return next(r);
    }

    if (r->headers_out.status < 200 || r->headers_out.status >= 300) {
        ctx->status = NGX_HTTP_LOYALTY_ORDER_REFUSED;

        if (ctx->checkout.len) {
            ngx_http_loyalty_release(ctx->coupon.len ? &ctx->coupon : NULL,
                                     ctx->customer.len ? &ctx->customer
                                                       : NULL,
                                     &ctx->checkout);
        }

        return next(r);
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    ctx->holding = 1;
    r->buffered |= NGX_HTTP_LOYALTY_BUFFERED;

    if (llcf->response_order_id.len == 0) {
        ngx_http_loyalty_confirm_record(ctx);

    } else if (r->header_only) {
        ngx_http_loyalty_confirm_skip(ctx, "no answer to read the order id "
                                      "from");
    }

    /* released at once (Redis down, nothing to read): send it now */
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

    /* held: the buffers stay unconsumed, so nginx keeps them */
    if (in != NULL && ngx_chain_add_copy(r->pool, &ctx->held, in) != NGX_OK) {
        return NGX_ERROR;
    }

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            ctx->last = 1;
        }
    }

    if (ctx->job == NULL && ctx->status == 0) {
        ngx_http_loyalty_confirm_copy(ctx, in);

        if (ctx->last) {
            ngx_http_loyalty_confirm_answer(ctx);
        }
    }

    if (!ctx->holding || ctx->status == NGX_HTTP_LOYALTY_ORDER_INVALID) {
        return ngx_http_loyalty_confirm_release(ctx);
    }

    return NGX_OK;
}


/* Keeps a copy of the answer, up to a bound, to read the order id from. */

static void
ngx_http_loyalty_confirm_copy(ngx_http_loyalty_confirm_t *ctx,
    ngx_chain_t *in)
{
    size_t        size;
    ssize_t       n;
    ngx_buf_t    *b, *a;
    ngx_chain_t  *cl;

    if (ctx->answer == NULL) {
        ctx->answer = ngx_create_temp_buf(ctx->request->pool,
                                          NGX_HTTP_LOYALTY_ANSWER_MAX);
        if (ctx->answer == NULL) {
            return;
        }
    }

    a = ctx->answer;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            size = (size_t) (b->file_last - b->file_pos);

            if (size > (size_t) (a->end - a->last)) {
                size = a->end - a->last;
            }

            n = ngx_read_file(b->file, a->last, size, b->file_pos);
            a->last += n > 0 ? n : 0;
            continue;
        }

        size = ngx_min((size_t) (b->last - b->pos),
                       (size_t) (a->end - a->last));

        if (size) {
            a->last = ngx_cpymem(a->last, b->pos, size);
        }
    }
}


static void
ngx_http_loyalty_confirm_answer(ngx_http_loyalty_confirm_t *ctx)
{
    size_t                        bad;
    ngx_http_request_t           *r = ctx->request;
    loyalty_json_error_t          jerr;
    loyalty_json_limits_t         limits;
    const loyalty_json_t         *root, *v;
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (ctx->answer == NULL || ctx->answer->last == ctx->answer->end) {
        ngx_http_loyalty_confirm_skip(ctx, "the backend's answer is not a "
                                      "JSON document of at most %d bytes",
                                      NGX_HTTP_LOYALTY_ANSWER_MAX);
        return;
    }

    limits.alloc = ngx_http_loyalty_palloc;
    limits.ctx = r->pool;
    limits.max_depth = 32;
    limits.max_values = 100000;
    limits.max_members = 1024;
    limits.max_string = NGX_HTTP_LOYALTY_ANSWER_MAX;

    root = loyalty_json_parse((char *) ctx->answer->pos,
                              ctx->answer->last - ctx->answer->pos, &limits,
                              &jerr);
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
 * The job: the due-index entry before the accrual (an entry without an
 * accrual is harmless, the reverse would never be credited), the accrual,
 * the coupon's use.  All pipelined on the worker's connection.
 */

static void
ngx_http_loyalty_confirm_record(ngx_http_loyalty_confirm_t *ctx)
{
    int64_t                        now, base, redeemed, due;
    uint64_t                       h;
    ngx_str_t                      s;
    ngx_uint_t                     i;
    ngx_pool_t                    *pool;
    loyalty_earning_t              how;
    ngx_http_request_t            *r = ctx->request;
    ngx_http_loyalty_job_t        *job;
    ngx_http_loyalty_main_conf_t  *lmcf;
    const char                    *argv[19];
    size_t                         argvlen[19];
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
    job->record = NGX_HTTP_LOYALTY_JOB_CALLS;
    ctx->job = job;

    job->order = ngx_http_loyalty_job_str(pool, "%V", &ctx->order);
    job->customer = ngx_http_loyalty_job_str(pool, "%V", &ctx->customer);

    now = ngx_time();
    redeemed = 0;

    if (lmcf->point_value_per) {
        (void) loyalty_muldiv(ctx->cart.points, lmcf->point_value,
                              lmcf->point_value_per, LOYALTY_ROUND_DOWN,
                              &redeemed);
    }

    base = loyalty_points_earned(&lmcf->program, &ctx->cart,
                                 ctx->cart.discount, redeemed, now, &how);

    /* shown until Redis applies the tier, and if Redis cannot */
    job->points = base;
    ctx->points = base;

    if (ctx->customer.len) {
        due = now + lmcf->program.return_window;

        lens[0] = loyalty_key_due(keys[0], (char *) ctx->customer.data,
                                  ctx->customer.len, due);
        lens[1] = loyalty_due_member(keys[1], LOYALTY_KEY_MAX,
                                     (char *) ctx->customer.data,
                                     ctx->customer.len,
                                     (char *) ctx->order.data,
                                     ctx->order.len);

        argv[0] = "SADD";
        argvlen[0] = 4;
        argv[1] = keys[0];
        argvlen[1] = lens[0];
        argv[2] = keys[1];
        argvlen[2] = lens[1];

        (void) ngx_http_loyalty_job_send(job, -1, 3, argv, argvlen);

        ngx_http_loyalty_points_keys(&ctx->customer, keys, lens);

        /* the same order with other content is a conflict */
        h = 0xcbf29ce484222325ULL;
        s = ngx_http_loyalty_job_str(pool, "%V|%V|%L|%L|%V|%V|%L|%L",
                                     &ctx->customer, &ctx->order,
                                     how.basis, base, &ctx->checkout,
                                     &ctx->coupon, ctx->cart.points,
                                     ctx->cart.subtotal);

        for (i = 0; i < s.len; i++) {
            h = (h ^ s.data[i]) * 0x100000001b3ULL;
        }

        argv[2] = "3";
        argvlen[2] = 1;

        for (i = 0; i < 3; i++) {
            argv[3 + i] = keys[i];
            argvlen[3 + i] = lens[i];
        }

        argv[6] = (char *) ctx->order.data;
        argvlen[6] = ctx->order.len;

        s = ngx_http_loyalty_job_str(pool, "%016xL", h);
        argv[7] = (char *) s.data;
        argvlen[7] = s.len;

        s = ngx_http_loyalty_job_str(pool, "%L", base);
        argv[8] = (char *) s.data;
        argvlen[8] = s.len;

        argv[9] = (char *) lmcf->tiers_arg.data;
        argvlen[9] = lmcf->tiers_arg.len;

        s = ngx_http_loyalty_job_str(pool, "%L", how.basis);
        argv[10] = (char *) s.data;
        argvlen[10] = s.len;

        s = ngx_http_loyalty_job_str(pool, "%L", due);
        argv[11] = (char *) s.data;
        argvlen[11] = s.len;

        s = ngx_http_loyalty_job_str(pool, "%L", now);
        argv[12] = (char *) s.data;
        argvlen[12] = s.len;

        argv[13] = (char *) lmcf->program_version.data;
        argvlen[13] = lmcf->program_version.len;
        argv[14] = (char *) ctx->checkout.data;
        argvlen[14] = ctx->checkout.len;

        s = ngx_http_loyalty_job_str(pool, "%L", lmcf->program.order_every);
        argv[15] = (char *) s.data;
        argvlen[15] = s.len;

        s = ngx_http_loyalty_job_str(pool, "%L", lmcf->program.order_points);
        argv[16] = (char *) s.data;
        argvlen[16] = s.len;

        argv[17] = (char *) ctx->cart.referral.data;
        argvlen[17] = ctx->cart.referral.len;

        s = ngx_http_loyalty_job_str(pool, "%L", ctx->cart.points);
        argv[18] = (char *) s.data;
        argvlen[18] = s.len;

        job->record = job->ncalls;
        (void) ngx_http_loyalty_job_send(job, LOYALTY_SCRIPT_order_record, 19,
                                         argv, argvlen);
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

        (void) ngx_http_loyalty_job_send(job, LOYALTY_SCRIPT_coupon_commit,
                                         12, argv, argvlen);
    }

    job->status = ctx->customer.len ? NGX_HTTP_LOYALTY_ORDER_SPOOLED
                                    : NGX_HTTP_LOYALTY_ORDER_GUEST;

    if (job->pending == 0) {
        ngx_http_loyalty_job_finish(job);
    }
}


/*
 * Queues a call with a copy of its argv in the job's pool, so the call can
 * be retried (NOSCRIPT) and spooled whatever becomes of the request.
 */

static ngx_int_t
ngx_http_loyalty_job_send(ngx_http_loyalty_job_t *job, ngx_int_t script,
    int argc, const char **argv, size_t *argvlen)
{
    int                           i;
    u_char                       *p;
    ngx_http_loyalty_job_call_t  *call;

    call = &job->calls[job->ncalls++];
    call->job = job;
    call->script = script;
    call->argc = argc;
    call->argv = ngx_palloc(job->pool, argc * sizeof(char *));
    call->argvlen = ngx_palloc(job->pool, argc * sizeof(size_t));

    if (call->argv == NULL || call->argvlen == NULL) {
        call->failed = 1;
        return NGX_ERROR;
    }

    for (i = (script >= 0) ? 2 : 0; i < argc; i++) {
        p = ngx_pnalloc(job->pool, argvlen[i] + 1);
        if (p == NULL) {
            call->failed = 1;
            return NGX_ERROR;
        }

        ngx_memcpy(p, argv[i], argvlen[i]);
        call->argv[i] = (char *) p;
        call->argvlen[i] = argvlen[i];
    }

    if (script >= 0) {
        call->cmd = ngx_http_loyalty_redis_eval(script, argc, call->argv,
                                                call->argvlen,
                                                ngx_http_loyalty_job_reply,
                                                call);
    } else {
        call->cmd = ngx_http_loyalty_redis_command(argc, call->argv,
                                                   call->argvlen,
                                                   ngx_http_loyalty_job_reply,
                                                   call);
    }

    if (call->cmd == NULL) {
        call->failed = 1;
        return NGX_ERROR;
    }

    job->pending++;

    return NGX_OK;
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

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type == REDIS_REPLY_ERROR)
    {
        call->failed = 1;

    } else if (call == &job->calls[job->record]) {
        head.len = 0;

        if (reply->type == REDIS_REPLY_ARRAY && reply->elements
            && reply->element[0]->type == REDIS_REPLY_STRING)
        {
            head.data = (u_char *) reply->element[0]->str;
            head.len = reply->element[0]->len;
        }

        if (head.len == 8 && ngx_strncmp(head.data, "conflict", 8) == 0) {
            job->status = NGX_HTTP_LOYALTY_ORDER_CONFLICT;
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "loyalty: order \"%V\" of customer \"%V\" was "
                          "confirmed before with other content; not "
                          "recorded again", &job->order, &job->customer);

        } else if (reply->elements == 5 && head.len == 8) {
            job->status = ngx_strncmp(head.data, "recorded", 8) == 0
                          ? NGX_HTTP_LOYALTY_ORDER_RECORDED
                          : NGX_HTTP_LOYALTY_ORDER_REPLAYED;
            job->points = reply->element[1]->integer;
            job->total = reply->element[2]->integer;

        } else {
            call->failed = 1;
        }
    }

    if (job->pending == 0) {
        ngx_http_loyalty_job_finish(job);
    }
}


/* Every answer is in: spool what failed, tell the request, send events. */

static void
ngx_http_loyalty_job_finish(ngx_http_loyalty_job_t *job)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i, failed;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_loyalty_confirm_t  *ctx;

    failed = 0;

    for (i = 0; i < job->ncalls; i++) {
        failed += job->calls[i].failed;
    }

    if (failed) {
        ngx_http_loyalty_spool_write(job, ngx_cycle->log);

        /* the event waits: it goes once the spool is replayed */
        for (i = 0; i < job->ncalls; i++) {
            job->calls[i].failed = 0;
        }
    }

    ctx = job->ctx;

    if (ctx != NULL && ctx->holding) {
        ctx->status = job->status;
        ctx->points = job->points;
        ctx->total = job->total;

        r = ctx->request;
        c = r->connection;

        rc = ngx_http_loyalty_confirm_release(ctx);

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);

        } else {
            /* wake whoever waits on the answer: the upstream or writer */
            ngx_post_event(c->write, &ngx_posted_events);
        }

        ngx_http_run_posted_requests(c);
    }

    if (job->status == NGX_HTTP_LOYALTY_ORDER_RECORDED && !job->event) {
        ngx_http_loyalty_job_event(job);

        if (job->pending) {
            return;
        }
    }

    ngx_http_loyalty_job_free(job);
}


/*
 * points_earned, for the shop's mailer: after the accrual, by the first
 * request that recorded it (a replay sends none).  A lost event is
 * spooled like any other write; consumers dedupe by the id.
 */

static void
ngx_http_loyalty_job_event(ngx_http_loyalty_job_t *job)
{
    ngx_uint_t                     i;
    ngx_str_t                      v[20];
    const char                    *argv[20];
    size_t                         argvlen[20];
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_loyalty_module);

    job->event = 1;
    job->ncalls = 0;

    ngx_str_set(&v[0], "XADD");
    ngx_str_set(&v[1], LOYALTY_KEY_EVENTS);
    ngx_str_set(&v[2], "MAXLEN");
    ngx_str_set(&v[3], "~");
    v[4] = ngx_http_loyalty_job_str(job->pool, "%ui", lmcf->events_max);
    ngx_str_set(&v[5], "*");
    ngx_str_set(&v[6], "type");
    ngx_str_set(&v[7], "points_earned");
    ngx_str_set(&v[8], "id");
    v[9] = ngx_http_loyalty_job_str(job->pool, "points_earned:%V",
                                    &job->order);
    ngx_str_set(&v[10], "customer");
    v[11] = job->customer;
    ngx_str_set(&v[12], "order");
    v[13] = job->order;
    ngx_str_set(&v[14], "points");
    v[15] = ngx_http_loyalty_job_str(job->pool, "%L", job->points);
    ngx_str_set(&v[16], "pending");
    v[17] = ngx_http_loyalty_job_str(job->pool, "%L", job->total);
    ngx_str_set(&v[18], "at");
    v[19] = ngx_http_loyalty_job_str(job->pool, "%T", ngx_time());

    for (i = 0; i < 20; i++) {
        argv[i] = (char *) v[i].data;
        argvlen[i] = v[i].len;
    }

    if (ngx_http_loyalty_job_send(job, -1, 20, argv, argvlen) != NGX_OK) {
        ngx_http_loyalty_spool_write(job, ngx_cycle->log);
    }
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
    ngx_chain_t         *held;
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

    if (held == NULL) {
        return rc;
    }

    return ngx_http_loyalty_next_body_filter(r, held);
}


/*
 * The request ends (or is torn down): the job, if any, goes on alone.  An
 * answer still held can only mean an aborted request: nothing to send.
 */

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
