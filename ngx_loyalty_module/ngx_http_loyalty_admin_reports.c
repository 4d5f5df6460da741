/*
 * The admin API's reports, read from the program's running counts
 * (ngx_http_loyalty_stats.c), never from a scan of the accounts:
 *
 *   GET /program/metrics   liability, points issued, redeemed and expired
 *                          per day, redemption and repeat-purchase rates,
 *                          order value of members and guests, lifetime
 *                          value, coupon use by code
 *   GET /leaderboard       the members who earned most in a month or a
 *                          year
 */

#include "ngx_http_loyalty_admin.h"
#include "loyalty_keys.h"
#include "loyalty_time.h"


#define NGX_HTTP_LOYALTY_BOARD_MAX    100     /* members on one page */
#define NGX_HTTP_LOYALTY_DAYS_MAX     31      /* days of one report */
#define NGX_HTTP_LOYALTY_COUPONS_TOP  20


typedef struct {
    ngx_int_t                        days;
    ngx_str_t                        period;
} ngx_http_loyalty_report_t;


static void ngx_http_loyalty_program_metrics(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_program_read(void *data, ngx_uint_t status,
    redisReply *reply);
static json_t *ngx_http_loyalty_report_money(
    ngx_http_loyalty_main_conf_t *lmcf, int64_t minor);
static json_t *ngx_http_loyalty_report_points_value(
    ngx_http_loyalty_main_conf_t *lmcf, int64_t points);
static json_t *ngx_http_loyalty_report_ratio(int64_t a, int64_t b);
static void ngx_http_loyalty_leaderboard(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_board_read(void *data, ngx_uint_t status,
    redisReply *reply);


/* the fields of loyalty:{stats}, in the order of NGX_HTTP_LOYALTY_TOTAL_* */
const char  *ngx_http_loyalty_total_names[] = {
    "available", "pending", "issued", "redeemed", "expired", "returned",
    "adjusted", "member_orders", "member_value", "guest_orders",
    "guest_value", "customers", "repeat_customers", "since"
};


ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_report_routes[] = {
    { NGX_HTTP_GET, "program/metrics", ngx_http_loyalty_program_metrics },
    { NGX_HTTP_GET, "leaderboard", ngx_http_loyalty_leaderboard },
    { 0, NULL, NULL }
};


/* --- GET /program/metrics?days=7 ----------------------------------------- */

static void
ngx_http_loyalty_program_metrics(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t                   value, *keys, args[1];
    ngx_int_t                   i, days;
    ngx_pool_t                 *pool;
    ngx_http_loyalty_report_t  *rep;

    pool = ctx->request->pool;
    days = 7;

    if (ngx_http_arg(ctx->request, (u_char *) "days", 4, &value) == NGX_OK) {
        days = ngx_atoi(value.data, value.len);

        if (days < 1 || days > NGX_HTTP_LOYALTY_DAYS_MAX) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_limit",
                                         "days is 1 to %d",
                                         NGX_HTTP_LOYALTY_DAYS_MAX);
            return;
        }
    }

    rep = ngx_pcalloc(pool, sizeof(ngx_http_loyalty_report_t));
    keys = ngx_palloc(pool, (2 + days) * sizeof(ngx_str_t));
    args[0] = ngx_http_loyalty_admin_num(pool, NGX_HTTP_LOYALTY_COUPONS_TOP);

    if (rep == NULL || keys == NULL || args[0].data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rep->days = days;
    ctx->data = rep;

    for (i = 0; i < 2 + days; i++) {
        keys[i].data = ngx_pnalloc(pool, LOYALTY_KEY_MAX);
        if (keys[i].data == NULL) {
            ngx_http_finalize_request(ctx->request,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        keys[i].len = loyalty_key_stats((char *) keys[i].data,
                                        i == 0 ? LOYALTY_STATS_TOTALS
                                        : i == 1 ? LOYALTY_STATS_COUPONS
                                        : LOYALTY_STATS_DAY,
                                        ngx_time() - (i - 2) * 86400);
    }

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_stats_get, keys,
                                    2 + days, args, 1,
                                    ngx_http_loyalty_program_read, 0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_program_read(void *data, ngx_uint_t status,
    redisReply *reply)
{
    char                           text[LOYALTY_TIME_TEXT_MAX];
    size_t                         i, j;
    json_t                        *o, *points, *orders, *m, *list;
    time_t                         since;
    int64_t                        t[NGX_HTTP_LOYALTY_TOTALS], years,
                                   per_year, average;
    ngx_str_t                      f;
    redisReply                    *r;
    ngx_http_loyalty_admin_t      *ctx;
    ngx_http_loyalty_report_t     *rep;
    ngx_http_loyalty_main_conf_t  *lmcf;

    enum {
        AVAILABLE = NGX_HTTP_LOYALTY_TOTAL_AVAILABLE,
        PENDING = NGX_HTTP_LOYALTY_TOTAL_PENDING,
        ISSUED = NGX_HTTP_LOYALTY_TOTAL_ISSUED,
        REDEEMED = NGX_HTTP_LOYALTY_TOTAL_REDEEMED,
        ADJUSTED = NGX_HTTP_LOYALTY_TOTAL_ADJUSTED,
        MEMBER_ORDERS = NGX_HTTP_LOYALTY_TOTAL_MEMBER_ORDERS,
        MEMBER_VALUE = NGX_HTTP_LOYALTY_TOTAL_MEMBER_VALUE,
        CUSTOMERS = NGX_HTTP_LOYALTY_TOTAL_CUSTOMERS,
        REPEAT = NGX_HTTP_LOYALTY_TOTAL_REPEAT,
        SINCE = NGX_HTTP_LOYALTY_TOTAL_SINCE
    };

    static const char  *day_names[] = {
        "issued", "redeemed", "expired", "returned"
    };

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    rep = ctx->data;
    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != (size_t) (2 + rep->days)
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    ngx_http_loyalty_program_totals(reply->element[0], t);

    o = json_object();
    json_object_set_new(o, "currency",
                        json_stringn((char *) lmcf->currency.data,
                                     lmcf->currency.len));
    json_object_set_new(o, "since", t[SINCE] ? ngx_http_loyalty_admin_time(
                                                   t[SINCE])
                                             : json_null());

    points = json_object();

    for (j = AVAILABLE; j <= ADJUSTED; j++) {
        json_object_set_new(points, ngx_http_loyalty_total_names[j],
                            json_integer(t[j]));
    }

    json_object_set_new(o, "points", points);

    m = json_object();
    json_object_set_new(m, "available",
                        ngx_http_loyalty_report_points_value(lmcf,
                                                             t[AVAILABLE]));
    json_object_set_new(m, "pending",
                        ngx_http_loyalty_report_points_value(lmcf,
                                                             t[PENDING]));
    json_object_set_new(o, "liability", m);

    json_object_set_new(o, "redemption_rate",
                        ngx_http_loyalty_report_ratio(t[REDEEMED],
                                                      t[ISSUED]));

    orders = json_object();

    for (j = 0; j < 2; j++) {
        m = json_object();
        json_object_set_new(m, "count", json_integer(t[MEMBER_ORDERS
                                                       + 2 * j]));
        json_object_set_new(m, "value",
                            ngx_http_loyalty_report_money(
                                lmcf, t[MEMBER_VALUE + 2 * j]));
        json_object_set_new(m, "average",
                            t[MEMBER_ORDERS + 2 * j]
                            ? ngx_http_loyalty_report_money(
                                  lmcf, t[MEMBER_VALUE + 2 * j]
                                        / t[MEMBER_ORDERS + 2 * j])
                            : json_null());
        json_object_set_new(orders, j ? "guests" : "members", m);
    }

    json_object_set_new(o, "orders", orders);
    json_object_set_new(o, "customers", json_integer(t[CUSTOMERS]));
    json_object_set_new(o, "repeat_customers", json_integer(t[REPEAT]));
    json_object_set_new(o, "repeat_purchase_rate",
                        ngx_http_loyalty_report_ratio(t[REPEAT],
                                                      t[CUSTOMERS]));

    /*
     * lifetime value: the average member order x orders per customer and
     * year (over the years counted, at least one) x loyalty_clv_years
     */
    since = t[SINCE] ? t[SINCE] : ngx_time();
    years = ngx_max((ngx_time() - since) / (365 * 86400), 1);

    if (t[CUSTOMERS] && t[MEMBER_ORDERS]) {
        average = t[MEMBER_VALUE] / t[MEMBER_ORDERS];
        per_year = t[MEMBER_ORDERS] * 1000 / t[CUSTOMERS] / years;
        json_object_set_new(o, "clv_estimate",
                            ngx_http_loyalty_report_money(
                                lmcf, average * per_year * lmcf->clv_years
                                      / 1000));

    } else {
        json_object_set_new(o, "clv_estimate", json_null());
    }

    list = json_array();
    r = reply->element[1];

    for (i = 0; i + 1 < r->elements; i += 2) {
        m = json_object();
        f = ngx_http_loyalty_admin_reply_str(r, i);
        json_object_set_new(m, "code", json_stringn((char *) f.data, f.len));
        f = ngx_http_loyalty_admin_reply_str(r, i + 1);
        json_object_set_new(m, "uses", json_integer(ngx_atoof(f.data,
                                                              f.len)));
        json_array_append_new(list, m);
    }

    json_object_set_new(o, "coupons", list);

    list = json_array();

    for (i = 0; i < (size_t) rep->days; i++) {
        r = reply->element[2 + i];
        m = json_object();
        (void) loyalty_time_format(ngx_time() - i * 86400, text);
        json_object_set_new(m, "date", json_stringn(text, 10));

        for (j = 0; j < 4; j++) {
            f = ngx_http_loyalty_admin_reply_str(r, j);
            json_object_set_new(m, day_names[j],
                                json_integer(f.len ? ngx_atoof(f.data, f.len)
                                                   : 0));
        }

        json_array_append_new(list, m);
    }

    json_object_set_new(o, "days", list);

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


void
ngx_http_loyalty_program_totals(redisReply *hash, int64_t *t)
{
    size_t     i, j;
    ngx_str_t  f;

    ngx_memzero(t, NGX_HTTP_LOYALTY_TOTALS * sizeof(int64_t));

    for (i = 0; i + 1 < hash->elements; i += 2) {
        f = ngx_http_loyalty_admin_reply_str(hash, i);

        for (j = 0; j < NGX_HTTP_LOYALTY_TOTALS; j++) {
            if (f.len == ngx_strlen(ngx_http_loyalty_total_names[j])
                && ngx_strncmp(f.data, ngx_http_loyalty_total_names[j],
                               f.len)
                   == 0)
            {
                f = ngx_http_loyalty_admin_reply_str(hash, i + 1);
                t[j] = (f.len && f.data[0] == '-')
                       ? -ngx_atoof(f.data + 1, f.len - 1)
                       : ngx_atoof(f.data, f.len);
                break;
            }
        }
    }
}


static json_t *
ngx_http_loyalty_report_money(ngx_http_loyalty_main_conf_t *lmcf,
    int64_t minor)
{
    char  text[LOYALTY_MONEY_TEXT_MAX];

    loyalty_money_format(minor, lmcf->decimals, text);

    return json_string(text);
}


/* points at loyalty_point_value, rounded down */

static json_t *
ngx_http_loyalty_report_points_value(ngx_http_loyalty_main_conf_t *lmcf,
    int64_t points)
{
    int64_t  minor;

    if (ngx_http_loyalty_points_value(lmcf, points, &minor) != NGX_OK) {
        return json_null();
    }

    return ngx_http_loyalty_report_money(lmcf, minor);
}


ngx_int_t
ngx_http_loyalty_points_value(ngx_http_loyalty_main_conf_t *lmcf,
    int64_t points, int64_t *minor)
{
    if (lmcf->point_value_per == 0
        || loyalty_muldiv(points, lmcf->point_value, lmcf->point_value_per,
                          LOYALTY_ROUND_DOWN, minor)
           != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static json_t *
ngx_http_loyalty_report_ratio(int64_t a, int64_t b)
{
    return b > 0 ? json_real((double) a / (double) b) : json_null();
}


/* --- GET /leaderboard ---------------------------------------------------- */

static void
ngx_http_loyalty_leaderboard(ngx_http_loyalty_admin_t *ctx)
{
    ngx_int_t    limit;
    ngx_str_t    period, value, key, args[1];
    ngx_uint_t   i;

    if (ngx_http_arg(ctx->request, (u_char *) "period", 6, &period)
        != NGX_OK)
    {
        ngx_str_null(&period);
    }

    for (i = 0; i < period.len; i++) {
        if ((i == 4 && period.data[i] != '-')
            || (i != 4 && (period.data[i] < '0' || period.data[i] > '9')))
        {
            break;
        }
    }

    if ((period.len != 4 && period.len != 7) || i != period.len
        || (period.len == 7
            && ngx_atoi(period.data + 5, 2) - 1 >= 12))
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_period",
                                     "period is a month (YYYY-MM) or a year "
                                     "(YYYY), in UTC");
        return;
    }

    limit = 10;

    if (ngx_http_arg(ctx->request, (u_char *) "limit", 5, &value) == NGX_OK) {
        limit = ngx_atoi(value.data, value.len);

        if (limit < 1 || limit > NGX_HTTP_LOYALTY_BOARD_MAX) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_limit",
                                         "limit is 1 to %d",
                                         NGX_HTTP_LOYALTY_BOARD_MAX);
            return;
        }
    }

    key.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    args[0] = ngx_http_loyalty_admin_num(ctx->request->pool, limit);
    ctx->data = ngx_pnalloc(ctx->request->pool, sizeof(ngx_str_t));

    if (key.data == NULL || args[0].data == NULL || ctx->data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    *(ngx_str_t *) ctx->data = period;
    key.len = loyalty_key_board((char *) key.data, (char *) period.data,
                                period.len);

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_board_top, &key, 1,
                                    args, 1, ngx_http_loyalty_board_read, 0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/* {customer, points, customer, points, ...}, the most first */

static void
ngx_http_loyalty_board_read(void *data, ngx_uint_t status,
    redisReply *reply)
{
    size_t                     i;
    json_t                    *o, *list, *m;
    ngx_str_t                  s, *period;
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    period = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    list = json_array();

    for (i = 0; i + 1 < reply->elements; i += 2) {
        m = json_object();
        s = ngx_http_loyalty_admin_reply_str(reply, i);
        json_object_set_new(m, "rank", json_integer(i / 2 + 1));
        json_object_set_new(m, "customer",
                            json_stringn((char *) s.data, s.len));
        s = ngx_http_loyalty_admin_reply_str(reply, i + 1);
        json_object_set_new(m, "points",
                            json_integer(ngx_atoof(s.data, s.len)));
        json_array_append_new(list, m);
    }

    o = json_object();
    json_object_set_new(o, "period",
                        json_stringn((char *) period->data, period->len));
    json_object_set_new(o, "members", list);

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


