/*
 * loyalty_metrics: the module's counters and the program's figures in the
 * Prometheus text format (0.0.4).
 *
 * The counters live in one shared memory zone, "loyalty_metrics", so that
 * whichever worker answers a scrape reports what all of them counted.
 * They are ngx_atomic_t moved with ngx_atomic_fetch_add: no lock, nothing
 * to wait for on a request's path.  A reload keeps them (nginx reuses a
 * zone of the same name and size); a restart starts them at 0 again,
 * which Prometheus takes for the counter reset it is.
 *
 * The program's figures (the totals behind GET /program/metrics) and what
 * loyalty-worker counts are read from Redis on every scrape, in one round
 * trip (metrics_get.lua).  When Redis does not answer, the counters are
 * still served, with loyalty_redis_up 0 and without those figures.
 */

#include "ngx_http_loyalty_admin.h"
#include "ngx_http_loyalty_metrics.h"
#include "loyalty_keys.h"


/* a few hundred bytes of counters; the rest is the slab pool's own */
#define NGX_HTTP_LOYALTY_METRICS_SIZE  (64 * 1024)

/* the whole text is about 10 KB */
#define NGX_HTTP_LOYALTY_METRICS_TEXT  (32 * 1024)

#define NGX_HTTP_LOYALTY_METRICS_ARGS  5


typedef struct {
    ngx_atomic_t                     counters[NGX_HTTP_LOYALTY_M_N];
} ngx_http_loyalty_metrics_sh_t;


typedef struct {
    ngx_http_loyalty_metrics_sh_t   *sh;
} ngx_http_loyalty_metrics_ctx_t;


/* a counter family: one sample, or one per value of its label */
typedef struct {
    const char                      *name;
    const char                      *help;
    ngx_uint_t                       counter;   /* the first */
    const char                      *label;     /* NULL: one sample */
    const char                    *(*value)(ngx_uint_t i);
    ngx_uint_t                       from;      /* label values from..to-1 */
    ngx_uint_t                       to;
} ngx_http_loyalty_family_t;


/* one scrape */
typedef struct {
    ngx_http_request_t              *request;
    ngx_http_loyalty_redis_cmd_t    *cmd;
    const char                      *argv[NGX_HTTP_LOYALTY_METRICS_ARGS];
    size_t                           argvlen[NGX_HTTP_LOYALTY_METRICS_ARGS];
    char                             totals[LOYALTY_KEY_MAX];
} ngx_http_loyalty_scrape_t;


static ngx_int_t ngx_http_loyalty_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_http_loyalty_metrics_sh_t *ngx_http_loyalty_metrics_shared(
    ngx_cycle_t *cycle);
static void ngx_http_loyalty_metrics_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static ngx_int_t ngx_http_loyalty_metrics_send(ngx_http_request_t *r,
    redisReply *reply);
static u_char *ngx_http_loyalty_metrics_counters(u_char *p, u_char *last,
    ngx_http_loyalty_metrics_sh_t *sh);
static u_char *ngx_http_loyalty_metrics_program(u_char *p, u_char *last,
    ngx_http_loyalty_main_conf_t *lmcf, redisReply *reply);
static u_char *ngx_http_loyalty_metrics_head(u_char *p, u_char *last,
    const char *name, const char *type, const char *help);
static u_char *ngx_http_loyalty_metrics_money(u_char *p, u_char *last,
    ngx_http_loyalty_main_conf_t *lmcf, int64_t minor);
static u_char *ngx_http_loyalty_metrics_ratio(u_char *p, u_char *last,
    const char *name, const char *help, int64_t a, int64_t b);
static void ngx_http_loyalty_metrics_cleanup(void *data);

static const char *ngx_http_loyalty_metrics_coupon(ngx_uint_t i);
static const char *ngx_http_loyalty_metrics_points(ngx_uint_t i);
static const char *ngx_http_loyalty_metrics_result(ngx_uint_t i);
static const char *ngx_http_loyalty_metrics_kind(ngx_uint_t i);


/* upper bounds of the round-trip buckets, in microseconds and as labelled */
static const uint64_t  ngx_http_loyalty_rtt_bounds[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000
};

static const char  *ngx_http_loyalty_rtt_le[] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "+Inf"
};

static const char  *ngx_http_loyalty_redis_kinds[] = {
    "connect", "timeout", "error_reply", "protocol", "disconnect"
};


static ngx_http_loyalty_family_t  ngx_http_loyalty_families[] = {

    { "loyalty_checkouts_total",
      "Checkouts (POST to a loyalty_checkout location) the module handled.",
      NGX_HTTP_LOYALTY_M_CHECKOUTS, NULL, NULL, 0, 1 },

    { "loyalty_checkouts_refused_total",
      "Checkouts the module answered itself with a JSON error: bad input, "
      "a checkout of another customer, a coupon refused by "
      "loyalty_coupon_reject.",
      NGX_HTTP_LOYALTY_M_CHECKOUTS_REFUSED, NULL, NULL, 0, 1 },

    { "loyalty_checkout_coupons_total",
      "Coupons checked at checkout, by the status given to the backend "
      "($loyalty_coupon_status).",
      NGX_HTTP_LOYALTY_M_COUPONS, "status", ngx_http_loyalty_metrics_coupon,
      0, LOYALTY_COUPON_STATUS_N },

    { "loyalty_coupon_reserve_calls_total",
      "Calls of coupon_reserve.lua sent to Redis; the checkouts of one "
      "coupon that reach a worker process in the same turn of its event "
      "loop share one.",
      NGX_HTTP_LOYALTY_M_COUPON_CALLS, NULL, NULL, 0, 1 },

    { "loyalty_checkout_redemptions_total",
      "Points redemptions asked for at checkout, by status "
      "($loyalty_points_status).",
      NGX_HTTP_LOYALTY_M_REDEMPTIONS, "status",
      ngx_http_loyalty_metrics_points, 0, NGX_HTTP_LOYALTY_POINTS_STATUS_N },

    { "loyalty_confirmations_total",
      "Order confirmations, by outcome ($loyalty_order_status).",
      NGX_HTTP_LOYALTY_M_CONFIRMATIONS, "status",
      ngx_http_loyalty_order_status_name, NGX_HTTP_LOYALTY_ORDER_RECORDED,
      NGX_HTTP_LOYALTY_ORDER_STATUS_N },

    { "loyalty_accruals_total",
      "Orders whose earned points nginx wrote to Redis as a pending "
      "accrual.",
      NGX_HTTP_LOYALTY_M_ACCRUALS, NULL, NULL, 0, 1 },

    { "loyalty_accrued_points_total",
      "The points of those accruals.",
      NGX_HTTP_LOYALTY_M_ACCRUED_POINTS, NULL, NULL, 0, 1 },

    { "loyalty_spool_writes_total",
      "Orders written to the spool because Redis did not take them "
      "(failed: logged at crit with the line instead).",
      NGX_HTTP_LOYALTY_M_SPOOL_WRITES, "result",
      ngx_http_loyalty_metrics_result, 0, 2 },

    { "loyalty_spool_written_bytes_total",
      "Bytes appended to the spool.",
      NGX_HTTP_LOYALTY_M_SPOOL_BYTES, NULL, NULL, 0, 1 },

    { "loyalty_redis_errors_total",
      "Redis failures seen by the worker processes' connections, by kind.",
      NGX_HTTP_LOYALTY_M_REDIS_ERRORS, "kind", ngx_http_loyalty_metrics_kind,
      0, NGX_HTTP_LOYALTY_REDIS_ERR_N },

    { NULL, NULL, 0, NULL, NULL, 0, 0 }
};


ngx_int_t
ngx_http_loyalty_metrics_add_zone(ngx_conf_t *cf)
{
    ngx_str_t                        name;
    ngx_http_loyalty_main_conf_t    *lmcf;
    ngx_http_loyalty_metrics_ctx_t  *ctx;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (lmcf->metrics_zone != NULL) {
        return NGX_OK;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_metrics_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "loyalty_metrics");

    lmcf->metrics_zone = ngx_shared_memory_add(cf, &name,
                                               NGX_HTTP_LOYALTY_METRICS_SIZE,
                                               &ngx_http_loyalty_module);
    if (lmcf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    lmcf->metrics_zone->init = ngx_http_loyalty_metrics_init_zone;
    lmcf->metrics_zone->data = ctx;

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_loyalty_metrics_ctx_t  *octx = data;

    ngx_slab_pool_t                 *shpool;
    ngx_http_loyalty_metrics_ctx_t  *ctx;

    ctx = zone->data;

    if (octx != NULL) {
        /* a reload: the counting goes on */
        ctx->sh = octx->sh;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        ctx->sh = shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_calloc(shpool, sizeof(ngx_http_loyalty_metrics_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ctx->sh;

    return NGX_OK;
}


/*
 * The zone of the running cycle's configuration: a worker still finishing
 * the requests of an older one counts in that one's, which is the same
 * zone unless the reload removed it.
 */

static ngx_http_loyalty_metrics_sh_t *
ngx_http_loyalty_metrics_shared(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t    *lmcf;
    ngx_http_loyalty_metrics_ctx_t  *ctx;

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->metrics_zone == NULL) {
        return NULL;
    }

    ctx = lmcf->metrics_zone->data;

    return ctx->sh;
}


void
ngx_http_loyalty_metrics_add(ngx_uint_t counter, ngx_atomic_int_t n)
{
    ngx_http_loyalty_metrics_sh_t  *sh;

    sh = ngx_http_loyalty_metrics_shared((ngx_cycle_t *) ngx_cycle);

    if (sh != NULL && counter < NGX_HTTP_LOYALTY_M_N) {
        (void) ngx_atomic_fetch_add(&sh->counters[counter], n);
    }
}


/*
 * Each bucket counts only its own range: the scrape adds them up, so the
 * +Inf bucket and _count are one sum and always agree, even while other
 * workers count.
 */

void
ngx_http_loyalty_metrics_round_trip(uint64_t usec)
{
    ngx_uint_t                      i;
    ngx_http_loyalty_metrics_sh_t  *sh;

    sh = ngx_http_loyalty_metrics_shared((ngx_cycle_t *) ngx_cycle);

    if (sh == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_LOYALTY_RTT_BUCKETS - 1; i++) {
        if (usec <= ngx_http_loyalty_rtt_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&sh->counters[NGX_HTTP_LOYALTY_M_RTT + i], 1);
    (void) ngx_atomic_fetch_add(&sh->counters[NGX_HTTP_LOYALTY_M_RTT_SUM],
                                (ngx_atomic_int_t) usec);
}


ngx_int_t
ngx_http_loyalty_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_loyalty_scrape_t  *ctx;

    ctx = ngx_http_loyalty_get_start(r, sizeof(ngx_http_loyalty_scrape_t),
                                     ngx_http_loyalty_metrics_cleanup, &rc);
    if (ctx == NULL) {
        return rc;
    }

    ctx->request = r;

    ctx->argv[2] = "2";
    ctx->argvlen[2] = 1;
    ctx->argv[3] = ctx->totals;
    ctx->argvlen[3] = loyalty_key_stats(ctx->totals, LOYALTY_STATS_TOTALS, 0);
    ctx->argv[4] = LOYALTY_KEY_OPS;
    ctx->argvlen[4] = sizeof(LOYALTY_KEY_OPS) - 1;

    ctx->cmd = ngx_http_loyalty_redis_eval(LOYALTY_SCRIPT_metrics_get,
                                           NGX_HTTP_LOYALTY_METRICS_ARGS,
                                           ctx->argv, ctx->argvlen,
                                           ngx_http_loyalty_metrics_reply,
                                           ctx);
    if (ctx->cmd == NULL) {
        /* Redis is down: the counters alone, at once */
        return ngx_http_loyalty_metrics_send(r, NULL);
    }

    return ngx_http_loyalty_get_wait(r);
}


static void
ngx_http_loyalty_metrics_reply(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_scrape_t  *ctx = data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;
    ctx->cmd = NULL;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        reply = NULL;
    }

    ngx_http_finalize_request(r, ngx_http_loyalty_metrics_send(r, reply));
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_loyalty_metrics_send(ngx_http_request_t *r, redisReply *reply)
{
    u_char                         *body, *p, *last;
    ngx_table_elt_t                *h;
    ngx_http_loyalty_main_conf_t   *lmcf;
    ngx_http_loyalty_metrics_sh_t  *sh;

    static ngx_str_t  type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);
    sh = ((ngx_http_loyalty_metrics_ctx_t *) lmcf->metrics_zone->data)->sh;

    body = ngx_pnalloc(r->pool, NGX_HTTP_LOYALTY_METRICS_TEXT);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + NGX_HTTP_LOYALTY_METRICS_TEXT;

    p = ngx_http_loyalty_metrics_counters(body, last, sh);

    p = ngx_http_loyalty_metrics_head(p, last, "loyalty_redis_up", "gauge",
                                      "1 when this scrape read the "
                                      "program's figures from Redis, 0 when "
                                      "Redis did not answer (they are left "
                                      "out then).");
    p = ngx_slprintf(p, last, "loyalty_redis_up %d\n", reply ? 1 : 0);

    if (reply != NULL) {
        p = ngx_http_loyalty_metrics_program(p, last, lmcf, reply);
    }

    if (p == last) {
        /* a bug, not a state: the text is far below its buffer */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "loyalty: the metrics text does not fit in %uz bytes",
                      (size_t) NGX_HTTP_LOYALTY_METRICS_TEXT);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return ngx_http_loyalty_send_body(r, NGX_HTTP_OK, &type,
                                      sizeof("text/plain") - 1, body,
                                      p - body);
}


static u_char *
ngx_http_loyalty_metrics_counters(u_char *p, u_char *last,
    ngx_http_loyalty_metrics_sh_t *sh)
{
    ngx_uint_t                  i, sum_us;
    ngx_atomic_uint_t           n;
    ngx_http_loyalty_family_t  *f;

    for (f = ngx_http_loyalty_families; f->name; f++) {
        p = ngx_http_loyalty_metrics_head(p, last, f->name, "counter",
                                          f->help);

        if (f->label == NULL) {
            p = ngx_slprintf(p, last, "%s %uA\n", f->name,
                             sh->counters[f->counter]);
            continue;
        }

        for (i = f->from; i < f->to; i++) {
            p = ngx_slprintf(p, last, "%s{%s=\"%s\"} %uA\n", f->name,
                             f->label, f->value(i),
                             sh->counters[f->counter + i]);
        }
    }

    p = ngx_http_loyalty_metrics_head(p, last,
                                      "loyalty_redis_round_trip_seconds",
                                      "histogram",
                                      "Time from sending a Redis command to "
                                      "its reply, queueing on the worker's "
                                      "pipelined connection included.");
    n = 0;

    for (i = 0; i < NGX_HTTP_LOYALTY_RTT_BUCKETS; i++) {
        n += sh->counters[NGX_HTTP_LOYALTY_M_RTT + i];
        p = ngx_slprintf(p, last,
                         "loyalty_redis_round_trip_seconds_bucket"
                         "{le=\"%s\"} %uA\n", ngx_http_loyalty_rtt_le[i], n);
    }

    sum_us = sh->counters[NGX_HTTP_LOYALTY_M_RTT_SUM];

    return ngx_slprintf(p, last,
                        "loyalty_redis_round_trip_seconds_sum %ui.%06ui\n"
                        "loyalty_redis_round_trip_seconds_count %uA\n",
                        sum_us / 1000000, sum_us % 1000000, n);
}


/*
 * The totals as GET /program/metrics reads them (the same hash, the same
 * parser, the same money formatting), and the worker's counts.
 */

static u_char *
ngx_http_loyalty_metrics_program(u_char *p, u_char *last,
    ngx_http_loyalty_main_conf_t *lmcf, redisReply *reply)
{
    size_t       i;
    int64_t      t[NGX_HTTP_LOYALTY_TOTALS], minor;
    ngx_str_t    f, v;
    ngx_uint_t   j;
    redisReply  *ops;
    off_t        replayed, rejected;

    static const char  *states[] = { "available", "pending" };
    static const char  *customers[] = { "member", "guest" };

    static const struct {
        const char  *name;
        ngx_uint_t   total;
        const char  *help;
    } moved[] = {
        { "loyalty_program_points_issued_total",
          NGX_HTTP_LOYALTY_TOTAL_ISSUED,
          "Points made available in accounts: credited accruals, bonuses, "
          "grants." },
        { "loyalty_program_points_redeemed_total",
          NGX_HTTP_LOYALTY_TOTAL_REDEEMED,
          "Points spent on orders." },
        { "loyalty_program_points_expired_total",
          NGX_HTTP_LOYALTY_TOTAL_EXPIRED,
          "Points that expired." },
        { "loyalty_program_points_returned_total",
          NGX_HTTP_LOYALTY_TOTAL_RETURNED,
          "Points taken back by returns." },
        { "loyalty_program_points_adjusted_total",
          NGX_HTTP_LOYALTY_TOTAL_ADJUSTED,
          "Points taken from accounts by hand (admin adjustments)." }
    };

    ngx_http_loyalty_program_totals(reply->element[0], t);

    p = ngx_http_loyalty_metrics_head(p, last, "loyalty_program_points",
                                      "gauge",
                                      "Points in all accounts: available to "
                                      "spend, or pending until their return "
                                      "window ends.");

    for (j = 0; j < 2; j++) {
        p = ngx_slprintf(p, last, "loyalty_program_points{state=\"%s\"} %L\n",
                         states[j], t[NGX_HTTP_LOYALTY_TOTAL_AVAILABLE + j]);
    }

    if (lmcf->point_value_per) {
        p = ngx_http_loyalty_metrics_head(p, last,
                                          "loyalty_program_liability",
                                          "gauge",
                                          "What the points in all accounts "
                                          "are worth at loyalty_point_value, "
                                          "in units of the currency, rounded "
                                          "down.");

        for (j = 0; j < 2; j++) {
            if (ngx_http_loyalty_points_value(
                    lmcf, t[NGX_HTTP_LOYALTY_TOTAL_AVAILABLE + j], &minor)
                != NGX_OK)
            {
                continue;
            }

            p = ngx_slprintf(p, last, "loyalty_program_liability{currency="
                             "\"%V\",state=\"%s\"} ", &lmcf->currency,
                             states[j]);
            p = ngx_http_loyalty_metrics_money(p, last, lmcf, minor);
        }
    }

    for (j = 0; j < sizeof(moved) / sizeof(moved[0]); j++) {
        p = ngx_http_loyalty_metrics_head(p, last, moved[j].name, "counter",
                                          moved[j].help);
        p = ngx_slprintf(p, last, "%s %L\n", moved[j].name,
                         t[moved[j].total]);
    }

    p = ngx_http_loyalty_metrics_ratio(p, last,
                                       "loyalty_program_redemption_ratio",
                                       "Points redeemed per point issued "
                                       "(left out until a point is issued).",
                                       t[NGX_HTTP_LOYALTY_TOTAL_REDEEMED],
                                       t[NGX_HTTP_LOYALTY_TOTAL_ISSUED]);

    p = ngx_http_loyalty_metrics_head(p, last, "loyalty_program_orders_total",
                                      "counter",
                                      "Confirmed orders, of members or of "
                                      "guests.");

    for (j = 0; j < 2; j++) {
        p = ngx_slprintf(p, last,
                         "loyalty_program_orders_total{customer=\"%s\"} %L\n",
                         customers[j],
                         t[NGX_HTTP_LOYALTY_TOTAL_MEMBER_ORDERS + 2 * j]);
    }

    p = ngx_http_loyalty_metrics_head(p, last,
                                      "loyalty_program_order_value_total",
                                      "counter",
                                      "The value of those orders that earns "
                                      "points, in units of the currency.");

    for (j = 0; j < 2; j++) {
        p = ngx_slprintf(p, last, "loyalty_program_order_value_total{"
                         "currency=\"%V\",customer=\"%s\"} ",
                         &lmcf->currency, customers[j]);
        p = ngx_http_loyalty_metrics_money(
                p, last, lmcf, t[NGX_HTTP_LOYALTY_TOTAL_MEMBER_VALUE + 2 * j]);
    }

    p = ngx_http_loyalty_metrics_head(p, last, "loyalty_program_customers",
                                      "gauge",
                                      "Members with at least one order.");
    p = ngx_slprintf(p, last, "loyalty_program_customers %L\n",
                     t[NGX_HTTP_LOYALTY_TOTAL_CUSTOMERS]);

    p = ngx_http_loyalty_metrics_head(p, last,
                                      "loyalty_program_repeat_customers",
                                      "gauge",
                                      "Members with a second order.");
    p = ngx_slprintf(p, last, "loyalty_program_repeat_customers %L\n",
                     t[NGX_HTTP_LOYALTY_TOTAL_REPEAT]);

    p = ngx_http_loyalty_metrics_ratio(p, last,
                                       "loyalty_program_repeat_purchase_ratio",
                                       "Members with a second order per "
                                       "member with an order (left out "
                                       "until there is one).",
                                       t[NGX_HTTP_LOYALTY_TOTAL_REPEAT],
                                       t[NGX_HTTP_LOYALTY_TOTAL_CUSTOMERS]);

    if (t[NGX_HTTP_LOYALTY_TOTAL_SINCE]) {
        p = ngx_http_loyalty_metrics_head(
                p, last, "loyalty_program_since_timestamp_seconds", "gauge",
                "When the program's totals started counting, in Unix time.");
        p = ngx_slprintf(p, last,
                         "loyalty_program_since_timestamp_seconds %L\n",
                         t[NGX_HTTP_LOYALTY_TOTAL_SINCE]);
    }

    /* loyalty-worker's counts: HINCRBY only, so never negative */
    ops = reply->element[1];
    replayed = 0;
    rejected = 0;

    for (i = 0; i + 1 < ops->elements; i += 2) {
        f = ngx_http_loyalty_admin_reply_str(ops, i);
        v = ngx_http_loyalty_admin_reply_str(ops, i + 1);

        if (f.len == 14 && ngx_strncmp(f.data, "spool_replayed", 14) == 0) {
            replayed = ngx_max(ngx_atoof(v.data, v.len), 0);

        } else if (f.len == 14
                   && ngx_strncmp(f.data, "spool_rejected", 14) == 0)
        {
            rejected = ngx_max(ngx_atoof(v.data, v.len), 0);
        }
    }

    p = ngx_http_loyalty_metrics_head(p, last, "loyalty_spool_replayed_total",
                                      "counter",
                                      "Spooled orders loyalty-worker "
                                      "replayed into Redis.");
    p = ngx_slprintf(p, last, "loyalty_spool_replayed_total %O\n", replayed);

    p = ngx_http_loyalty_metrics_head(p, last, "loyalty_spool_rejected_total",
                                      "counter",
                                      "Spooled lines loyalty-worker could "
                                      "not read and set aside in "
                                      "rejected.log.");

    return ngx_slprintf(p, last, "loyalty_spool_rejected_total %O\n",
                        rejected);
}


static u_char *
ngx_http_loyalty_metrics_head(u_char *p, u_char *last, const char *name,
    const char *type, const char *help)
{
    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


/* the same text as the admin API's amounts: 12.00, -0.50 */

static u_char *
ngx_http_loyalty_metrics_money(u_char *p, u_char *last,
    ngx_http_loyalty_main_conf_t *lmcf, int64_t minor)
{
    char  text[LOYALTY_MONEY_TEXT_MAX];

    loyalty_money_format(minor, lmcf->decimals, text);

    return ngx_slprintf(p, last, "%s\n", text);
}


static u_char *
ngx_http_loyalty_metrics_ratio(u_char *p, u_char *last, const char *name,
    const char *help, int64_t a, int64_t b)
{
    if (b <= 0) {
        return p;
    }

    p = ngx_http_loyalty_metrics_head(p, last, name, "gauge", help);

    return ngx_slprintf(p, last, "%s %.9f\n", name, (double) a / (double) b);
}


static void
ngx_http_loyalty_metrics_cleanup(void *data)
{
    ngx_http_loyalty_scrape_t  *ctx = data;

    if (ctx->cmd != NULL) {
        ngx_http_loyalty_redis_cancel(ctx->cmd);
        ctx->cmd = NULL;
    }
}


/* label values */

static const char *
ngx_http_loyalty_metrics_coupon(ngx_uint_t i)
{
    return loyalty_coupon_status_name((loyalty_coupon_status_t) i);
}


static const char *
ngx_http_loyalty_metrics_points(ngx_uint_t i)
{
    return ngx_http_loyalty_points_status_name((ngx_int_t) i);
}


static const char *
ngx_http_loyalty_metrics_result(ngx_uint_t i)
{
    return i ? "failed" : "ok";
}


static const char *
ngx_http_loyalty_metrics_kind(ngx_uint_t i)
{
    return ngx_http_loyalty_redis_kinds[i];
}
