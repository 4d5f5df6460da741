/*
 * Coupon reservations, batched.  On Black Friday most checkouts carry one
 * of a few codes; each used to cost Redis a script call of its own, and
 * the call's fixed cost (the EVALSHA, the limits read, the expiry sweep)
 * was most of it.  Checkouts queue here instead; at the end of the event
 * loop's turn (a posted event) each coupon's queue goes out as one call
 * of coupon_reserve.lua, and the answers come back in order.  A lone
 * checkout waits for nothing: its call leaves in the same turn as before.
 *
 * A batch owns copies of its checkouts' strings, as a request may end
 * while Redis answers (and a NOSCRIPT answer is retried with the same
 * arguments); the batches are reused from a free list.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_checkout.h"
#include "ngx_http_loyalty_coupon.h"
#include "ngx_http_loyalty_coupon_batch.h"
#include "ngx_http_loyalty_metrics.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_str.h"


/* the coupon's version is a decimal counter */
#define NGX_HTTP_LOYALTY_VERSION_MAX  32

/* EVALSHA, the hash, the key count, the keys, now and the expiry */
#define NGX_HTTP_LOYALTY_BATCH_HEAD   (3 + NGX_HTTP_LOYALTY_COUPON_KEYS + 2)
#define NGX_HTTP_LOYALTY_BATCH_ARGS   (NGX_HTTP_LOYALTY_BATCH_HEAD          \
                                       + 4 * NGX_HTTP_LOYALTY_BATCH_MAX)


typedef struct ngx_http_loyalty_batch_s  ngx_http_loyalty_batch_t;

struct ngx_http_loyalty_reserve_s {
    ngx_http_loyalty_reserve_handler_pt   handler;   /* NULL once detached */
    void                                 *data;
    const char                           *mode;
    size_t                                checkout_len;
    size_t                                customer_len;
    size_t                                version_len;
    u_char                                checkout[LOYALTY_ID_MAX];
    u_char                                customer[LOYALTY_ID_MAX];
    u_char                                version[NGX_HTTP_LOYALTY_VERSION_MAX];
};


struct ngx_http_loyalty_batch_s {
    ngx_queue_t                           queue;     /* open, or free */
    ngx_uint_t                            n;
    time_t                                expires;
    ngx_str_t                             code;
    u_char                                code_data[LOYALTY_CODE_MAX];
    ngx_http_loyalty_reserve_t            items[NGX_HTTP_LOYALTY_BATCH_MAX];
    char                                  keys[NGX_HTTP_LOYALTY_COUPON_KEYS]
                                              [LOYALTY_KEY_MAX];
    size_t                                keylens[NGX_HTTP_LOYALTY_COUPON_KEYS];
    u_char                                nums[3][NGX_INT64_LEN + 1];
    const char                           *argv[NGX_HTTP_LOYALTY_BATCH_ARGS];
    size_t                                argvlen[NGX_HTTP_LOYALTY_BATCH_ARGS];
};


typedef struct {
    ngx_pool_t                           *pool;
    ngx_queue_t                           open;      /* to send this turn */
    ngx_queue_t                           free;
    ngx_uint_t                            count;     /* allocated */
    ngx_event_t                           flush;
} ngx_http_loyalty_batches_t;


static ngx_http_loyalty_batch_t *ngx_http_loyalty_coupon_batch_open(
    ngx_str_t *code, time_t ttl);
static void ngx_http_loyalty_coupon_batch_flush(ngx_event_t *ev);
static void ngx_http_loyalty_coupon_batch_send(ngx_http_loyalty_batch_t *b);
static void ngx_http_loyalty_coupon_batch_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_coupon_batch_answer(ngx_http_loyalty_batch_t *b,
    ngx_uint_t i, ngx_uint_t status, ngx_str_t *answer, ngx_str_t *version,
    ngx_str_t *def);


static ngx_http_loyalty_batches_t  ngx_http_loyalty_batches;


ngx_http_loyalty_reserve_t *
ngx_http_loyalty_coupon_reserve(ngx_str_t *code, ngx_str_t *checkout,
    ngx_str_t *customer, ngx_str_t *version, const char *mode, time_t ttl,
    ngx_http_loyalty_reserve_handler_pt handler, void *data)
{
    ngx_http_loyalty_batch_t    *b;
    ngx_http_loyalty_reserve_t  *res;

    if (ngx_http_loyalty_redis_stats()->state
        == NGX_HTTP_LOYALTY_REDIS_DISCONNECTED)
    {
        return NULL;
    }

    /* the cart reader and the cache bound these; a longer one is a bug */
    if (code->len > LOYALTY_CODE_MAX
        || checkout->len > LOYALTY_ID_MAX
        || customer->len > LOYALTY_ID_MAX
        || version->len > NGX_HTTP_LOYALTY_VERSION_MAX)
    {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "loyalty: coupon \"%V\" not checked: an identifier is "
                      "too long", code);
        return NULL;
    }

    b = ngx_http_loyalty_coupon_batch_open(code, ttl);
    if (b == NULL) {
        return NULL;
    }

    res = &b->items[b->n++];

    res->handler = handler;
    res->data = data;
    res->mode = mode;
    res->checkout_len = checkout->len;
    res->customer_len = customer->len;
    res->version_len = version->len;
    /* a guest and an uncached coupon have empty strings, perhaps NULL */
    ngx_memcpy(res->checkout, checkout->data, checkout->len);

    if (customer->len) {
        ngx_memcpy(res->customer, customer->data, customer->len);
    }

    if (version->len) {
        ngx_memcpy(res->version, version->data, version->len);
    }

    return res;
}


void
ngx_http_loyalty_coupon_reserve_cancel(ngx_http_loyalty_reserve_t *res)
{
    res->handler = NULL;
    res->data = NULL;
}


void
ngx_http_loyalty_coupon_batch_free(void)
{
    ngx_http_loyalty_batches_t  *bs = &ngx_http_loyalty_batches;

    if (bs->flush.posted) {
        ngx_delete_posted_event(&bs->flush);
    }

    if (bs->pool != NULL) {
        ngx_destroy_pool(bs->pool);
    }

    ngx_memzero(bs, sizeof(ngx_http_loyalty_batches_t));
}


/* The batch this turn's checkouts of the coupon join, with room left. */

static ngx_http_loyalty_batch_t *
ngx_http_loyalty_coupon_batch_open(ngx_str_t *code, time_t ttl)
{
    ngx_queue_t                 *q;
    ngx_http_loyalty_batch_t    *b;
    ngx_http_loyalty_batches_t  *bs = &ngx_http_loyalty_batches;

    if (bs->pool == NULL) {
        bs->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
        if (bs->pool == NULL) {
            return NULL;
        }

        ngx_queue_init(&bs->open);
        ngx_queue_init(&bs->free);

        bs->flush.handler = ngx_http_loyalty_coupon_batch_flush;
        bs->flush.log = ngx_cycle->log;
        bs->flush.data = bs;
    }

    for (q = ngx_queue_head(&bs->open);
         q != ngx_queue_sentinel(&bs->open);
         q = ngx_queue_next(q))
    {
        b = ngx_queue_data(q, ngx_http_loyalty_batch_t, queue);

        if (b->n < NGX_HTTP_LOYALTY_BATCH_MAX
            && b->code.len == code->len
            && ngx_memcmp(b->code.data, code->data, code->len) == 0)
        {
            return b;
        }
    }

    if (!ngx_queue_empty(&bs->free)) {
        q = ngx_queue_head(&bs->free);
        ngx_queue_remove(q);
        b = ngx_queue_data(q, ngx_http_loyalty_batch_t, queue);

    } else {
        if (bs->count == NGX_HTTP_LOYALTY_BATCHES_MAX) {
            /* Redis is that far behind: as overloaded as a full queue */
            return NULL;
        }

        b = ngx_palloc(bs->pool, sizeof(ngx_http_loyalty_batch_t));
        if (b == NULL) {
            return NULL;
        }

        bs->count++;
    }

    b->n = 0;
    b->expires = ngx_time() + ttl;
    b->code.data = b->code_data;
    b->code.len = code->len;
    ngx_memcpy(b->code_data, code->data, code->len);

    ngx_queue_insert_tail(&bs->open, &b->queue);

    if (!bs->flush.posted) {
        ngx_post_event(&bs->flush, &ngx_posted_events);
    }

    return b;
}


/* The end of the turn: every open batch goes out. */

static void
ngx_http_loyalty_coupon_batch_flush(ngx_event_t *ev)
{
    ngx_queue_t                 *q;
    ngx_http_loyalty_batches_t  *bs = ev->data;

    while (!ngx_queue_empty(&bs->open)) {
        q = ngx_queue_head(&bs->open);
        ngx_queue_remove(q);

        ngx_http_loyalty_coupon_batch_send(
            ngx_queue_data(q, ngx_http_loyalty_batch_t, queue));
    }
}


static void
ngx_http_loyalty_coupon_batch_send(ngx_http_loyalty_batch_t *b)
{
    int                          argc;
    ngx_uint_t                   i;
    ngx_http_loyalty_reserve_t  *res;

    ngx_http_loyalty_coupon_keys(&b->code, b->keys, b->keylens);

    b->argv[2] = (char *) b->nums[0];
    b->argvlen[2] = loyalty_str_int((char *) b->nums[0],
                                    NGX_HTTP_LOYALTY_COUPON_KEYS);

    for (i = 0; i < NGX_HTTP_LOYALTY_COUPON_KEYS; i++) {
        b->argv[3 + i] = b->keys[i];
        b->argvlen[3 + i] = b->keylens[i];
    }

    argc = 3 + NGX_HTTP_LOYALTY_COUPON_KEYS;

    b->argv[argc] = (char *) b->nums[1];
    b->argvlen[argc++] = loyalty_str_int((char *) b->nums[1], ngx_time());
    b->argv[argc] = (char *) b->nums[2];
    b->argvlen[argc++] = loyalty_str_int((char *) b->nums[2], b->expires);

    for (i = 0; i < b->n; i++) {
        res = &b->items[i];

        b->argv[argc] = (char *) res->checkout;
        b->argvlen[argc++] = res->checkout_len;
        b->argv[argc] = (char *) res->customer;
        b->argvlen[argc++] = res->customer_len;
        b->argv[argc] = (char *) res->version;
        b->argvlen[argc++] = res->version_len;
        b->argv[argc] = res->mode;
        b->argvlen[argc++] = ngx_strlen(res->mode);
    }

    if (ngx_http_loyalty_redis_eval(LOYALTY_SCRIPT_coupon_reserve, argc,
                                    b->argv, b->argvlen,
                                    ngx_http_loyalty_coupon_batch_reply, b)
        == NULL)
    {
        ngx_http_loyalty_coupon_batch_reply(b, NGX_HTTP_LOYALTY_REDIS_FAILED,
                                            NULL);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "loyalty: coupon \"%V\": %ui checkouts in one call",
                   &b->code, b->n);

    ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_COUPON_CALLS, 1);
}


/*
 * {'not_found'}, or {'answers', version, definition, answer ...}: one
 * answer per checkout, in the order sent.
 */

static void
ngx_http_loyalty_coupon_batch_reply(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_batch_t  *b = data;

    ngx_uint_t                   i, each;
    ngx_str_t                    answer, version, def, stale_def;
    redisReply                  *e;
    ngx_http_loyalty_batches_t  *bs = &ngx_http_loyalty_batches;

    ngx_str_null(&answer);
    ngx_str_null(&version);
    ngx_str_null(&stale_def);

    /* one answer for every checkout, or one each after the head */
    each = 0;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK) {
        /* no reply: a timeout, or the connection went away */

    } else if (reply->type == REDIS_REPLY_ARRAY
               && reply->elements == 1
               && reply->element[0]->type == REDIS_REPLY_STRING
               && reply->element[0]->len == sizeof("not_found") - 1
               && ngx_strncmp(reply->element[0]->str, "not_found",
                              sizeof("not_found") - 1) == 0)
    {
        ngx_str_set(&answer, "not_found");

    } else {
        each = (reply->type == REDIS_REPLY_ARRAY
                && reply->elements == 3 + b->n);

        for (i = 0; each && i < 3 + b->n; i++) {
            each = (reply->element[i]->type == REDIS_REPLY_STRING);
        }

        if (!each) {
            if (reply->type != REDIS_REPLY_ERROR) {
                /* an error reply is logged by the connection */
                ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                              "loyalty: coupon_reserve answered %ui "
                              "checkouts of coupon \"%V\" with a malformed "
                              "reply", b->n, &b->code);
            }

            status = NGX_HTTP_LOYALTY_REDIS_FAILED;

        } else {
            version.data = (u_char *) reply->element[1]->str;
            version.len = reply->element[1]->len;
            stale_def.data = (u_char *) reply->element[2]->str;
            stale_def.len = reply->element[2]->len;
        }
    }

    for (i = 0; i < b->n; i++) {
        ngx_str_null(&def);

        if (each) {
            e = reply->element[3 + i];

            answer.data = (u_char *) e->str;
            answer.len = e->len;

            if (answer.len == 5 && ngx_strncmp(answer.data, "stale", 5) == 0)
            {
                def = stale_def;
            }
        }

        ngx_http_loyalty_coupon_batch_answer(b, i, status, &answer, &version,
                                             &def);
    }

    ngx_queue_insert_head(&bs->free, &b->queue);
}


static void
ngx_http_loyalty_coupon_batch_answer(ngx_http_loyalty_batch_t *b,
    ngx_uint_t i, ngx_uint_t status, ngx_str_t *answer, ngx_str_t *version,
    ngx_str_t *def)
{
    ngx_str_t                            checkout;
    ngx_http_loyalty_reserve_t          *res = &b->items[i];
    ngx_http_loyalty_reserve_handler_pt  handler;

    handler = res->handler;

    if (handler != NULL) {
        res->handler = NULL;
        handler(res->data, status, answer, version, def);
        return;
    }

    /* its request ended meanwhile: give back what was reserved for it */
    if (answer->len == 5 && ngx_strncmp(answer->data, "valid", 5) == 0
        && ngx_strcmp(res->mode, "reserve") == 0)
    {
        checkout.data = res->checkout;
        checkout.len = res->checkout_len;

        ngx_http_loyalty_release(&b->code, NULL, &checkout);
    }
}
