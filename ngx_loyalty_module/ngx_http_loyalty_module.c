/*
 * ngx_http_loyalty_module: the module definition, its directives and their
 * configuration, and the per-worker start and stop of the Redis adapter.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_checkout.h"
#include "ngx_http_loyalty_confirm.h"
#include "ngx_http_loyalty_coupon.h"
#include "ngx_http_loyalty_coupon_batch.h"
#include "ngx_http_loyalty_metrics.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_json.h"


static void *ngx_http_loyalty_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_loyalty_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_loyalty_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_loyalty_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_loyalty_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_loyalty_init_process(ngx_cycle_t *cycle);
static void ngx_http_loyalty_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_loyalty_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_checkout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_admin_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_currency(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_point_value(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_attempts(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_field(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_cart_limits(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_header_prefix(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_loyalty_spool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_order_confirm(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_conf_enum_t  ngx_http_loyalty_modes[] = {
    { ngx_string("enforce"), NGX_HTTP_LOYALTY_MODE_ENFORCE },
    { ngx_string("shadow"), NGX_HTTP_LOYALTY_MODE_SHADOW },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_loyalty_roundings[] = {
    { ngx_string("half_up"), LOYALTY_ROUND_HALF_UP },
    { ngx_string("half_even"), LOYALTY_ROUND_HALF_EVEN },
    { ngx_string("down"), LOYALTY_ROUND_DOWN },
    { ngx_string("up"), LOYALTY_ROUND_UP },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_loyalty_sources[] = {
    { ngx_string("request"), NGX_HTTP_LOYALTY_SOURCE_REQUEST },
    { ngx_string("response"), NGX_HTTP_LOYALTY_SOURCE_RESPONSE },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_loyalty_downgrades[] = {
    { ngx_string("full"), 0 },
    { ngx_string("one"), 1 },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_loyalty_clv_years_bounds = {
    ngx_conf_check_num_bounds, 1, 100
};

static ngx_conf_num_bounds_t  ngx_http_loyalty_birthday_bounds = {
    ngx_conf_check_num_bounds, 1, 1000000000
};


static ngx_conf_enum_t  ngx_http_loyalty_amounts[] = {
    { ngx_string("decimal"), 0 },
    { ngx_string("minor"), 1 },
    { ngx_null_string, 0 }
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_command_t  ngx_http_loyalty_commands[] = {

    { ngx_string("loyalty_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1234,
      ngx_http_loyalty_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("loyalty_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, redis_connect_timeout),
      NULL },

    { ngx_string("loyalty_currency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_currency,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_point_value"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_loyalty_point_value,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_rounding"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, round),
      &ngx_http_loyalty_roundings },

    { ngx_string("loyalty_reservation_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, reservation_ttl),
      NULL },

    { ngx_string("loyalty_coupon_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_loyalty_attempts,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_shm_size"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, shm_size),
      NULL },

    { ngx_string("loyalty_earn"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_loyalty_earn,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_earn_include"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_loyalty_earn_include,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_multiplier"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_loyalty_multiplier,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_campaign"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE4|NGX_CONF_TAKE5,
      ngx_http_loyalty_campaign,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_timezone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_timezone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_tier"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_loyalty_tier,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_tier_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, tier_window),
      NULL },

    { ngx_string("loyalty_tier_downgrade"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, tier_downgrade),
      &ngx_http_loyalty_downgrades },

    { ngx_string("loyalty_birthday_reward"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, birthday_points),
      &ngx_http_loyalty_birthday_bounds },

    { ngx_string("loyalty_return_window"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, return_window),
      NULL },

    { ngx_string("loyalty_points_expire"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_loyalty_points_expire,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_order_reward"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_loyalty_order_reward,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_referral_reward"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_loyalty_referral_reward,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_bonus"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2|NGX_CONF_TAKE6,
      ngx_http_loyalty_bonus,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_clv_years"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, clv_years),
      &ngx_http_loyalty_clv_years_bounds },

    { ngx_string("loyalty_referral_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_loyalty_referral_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_spool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_loyalty_spool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_events_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, events_max),
      NULL },

    { ngx_string("loyalty_order_source"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, order_source),
      &ngx_http_loyalty_sources },

    { ngx_string("loyalty_order_confirm"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_loyalty_order_confirm,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, confirm),
      NULL },

    { ngx_string("loyalty_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_checkout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_loyalty_checkout,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, checkout),
      NULL },

    { ngx_string("loyalty_customer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, customer),
      NULL },

    { ngx_string("loyalty_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, mode),
      &ngx_http_loyalty_modes },

    { ngx_string("loyalty_coupon_reject"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, coupon_reject),
      NULL },

    { ngx_string("loyalty_header_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_header_prefix,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, header_prefix),
      NULL },

    { ngx_string("loyalty_field"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_loyalty_field,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_amounts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, amounts_minor),
      &ngx_http_loyalty_amounts },

    { ngx_string("loyalty_cart_limits"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_loyalty_cart_limits,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_admin_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_loyalty_admin_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_loyalty_loc_conf_t, admin_token),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_loyalty_module_ctx = {
    ngx_http_loyalty_preconfiguration,     /* preconfiguration */
    ngx_http_loyalty_postconfiguration,    /* postconfiguration */

    ngx_http_loyalty_create_main_conf,     /* create main configuration */
    ngx_http_loyalty_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_loyalty_create_loc_conf,      /* create location configuration */
    ngx_http_loyalty_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_loyalty_module = {
    NGX_MODULE_V1,
    &ngx_http_loyalty_module_ctx,          /* module context */
    ngx_http_loyalty_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_loyalty_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_loyalty_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_loyalty_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->redis_name = { 0, NULL };
     *     lmcf->redis_unix = { 0, NULL };
     *     lmcf->redis_password = { 0, NULL };
     *     lmcf->currency = { 0, NULL };
     *     lmcf->point_value = 0;
     *     lmcf->attempts = 0;
     *     lmcf->used_by = { 0, NULL };
     */

    lmcf->redis_db = NGX_CONF_UNSET;
    lmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    lmcf->redis_connect_timeout = NGX_CONF_UNSET_MSEC;
    lmcf->round = NGX_CONF_UNSET_UINT;
    lmcf->reservation_ttl = NGX_CONF_UNSET;
    lmcf->shm_size = NGX_CONF_UNSET_SIZE;
    lmcf->return_window = NGX_CONF_UNSET;
    lmcf->tier_window = NGX_CONF_UNSET;
    lmcf->tier_downgrade = NGX_CONF_UNSET_UINT;
    lmcf->birthday_points = NGX_CONF_UNSET;
    lmcf->clv_years = NGX_CONF_UNSET;
    lmcf->events_max = NGX_CONF_UNSET_UINT;
    lmcf->spool_fsync = NGX_CONF_UNSET;

    loyalty_program_init(&lmcf->program);

    return lmcf;
}


static char *
ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    int64_t               minor;
    loyalty_money_spec_t  ms;

    ngx_conf_init_value(lmcf->redis_db, 0);
    ngx_conf_init_msec_value(lmcf->redis_timeout, 100);
    ngx_conf_init_msec_value(lmcf->redis_connect_timeout, 1000);
    ngx_conf_init_uint_value(lmcf->round, LOYALTY_ROUND_HALF_UP);
    ngx_conf_init_value(lmcf->reservation_ttl, 900);
    ngx_conf_init_size_value(lmcf->shm_size, 1024 * 1024);
    ngx_conf_init_value(lmcf->return_window, 30 * 86400);
    ngx_conf_init_value(lmcf->tier_window, 365 * 86400);
    ngx_conf_init_uint_value(lmcf->tier_downgrade, 0);
    ngx_conf_init_value(lmcf->birthday_points, 0);
    ngx_conf_init_value(lmcf->clv_years, 3);
    ngx_conf_init_uint_value(lmcf->events_max, 1000000);
    ngx_conf_init_value(lmcf->spool_fsync, 0);

    lmcf->program.return_window = lmcf->return_window;
    lmcf->program.tier_window = lmcf->tier_window;
    lmcf->program.tier_downgrade = (int) lmcf->tier_downgrade;
    lmcf->program.birthday_points = lmcf->birthday_points;
    lmcf->program.timezone.data = (char *) lmcf->timezone.data;
    lmcf->program.timezone.len = lmcf->timezone.len;

    if (ngx_http_loyalty_program_init(cf, lmcf) != NGX_CONF_OK
        || ngx_http_loyalty_program_publish(cf, lmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the point value is money: it is read once the currency is known */
    if (lmcf->point_value_text.len) {
        if (lmcf->currency.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"loyalty_point_value\" needs \"loyalty_currency\"");
            return NGX_CONF_ERROR;
        }

        ms.decimals = lmcf->decimals;
        ms.round = LOYALTY_ROUND_EXACT;
        ms.min = 1;
        ms.max = LOYALTY_MONEY_LIMIT;

        if (loyalty_money_parse((char *) lmcf->point_value_text.data,
                                lmcf->point_value_text.len, &ms, &minor)
            != LOYALTY_MONEY_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "invalid amount \"%V\" in \"loyalty_point_value\", "
                          "expected a positive amount in %V with at most "
                          "%ui decimals", &lmcf->point_value_text,
                          &lmcf->currency, (ngx_uint_t) lmcf->decimals);
            return NGX_CONF_ERROR;
        }

        lmcf->point_value = minor;
    }

    if (lmcf->attempts
        && ngx_http_loyalty_limit_add_zone(cf, lmcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     llcf->customer = NULL;
     *     llcf->header_prefix = { 0, NULL };
     *     llcf->admin_token = { 0, NULL };
     *     llcf->fields_set = 0;
     *     llcf->cart.pointer[] = NULL;
     */

    llcf->health = NGX_CONF_UNSET;
    llcf->checkout = NGX_CONF_UNSET;
    llcf->confirm = NGX_CONF_UNSET;
    llcf->order_source = NGX_CONF_UNSET_UINT;
    llcf->admin = NGX_CONF_UNSET;
    llcf->customer = NGX_CONF_UNSET_PTR;
    llcf->mode = NGX_CONF_UNSET_UINT;
    llcf->coupon_reject = NGX_CONF_UNSET;
    llcf->amounts_minor = NGX_CONF_UNSET;
    llcf->max_body = NGX_CONF_UNSET_SIZE;
    llcf->max_depth = NGX_CONF_UNSET_UINT;
    llcf->max_lines = NGX_CONF_UNSET_UINT;
    llcf->max_quantity = NGX_CONF_UNSET;
    llcf->max_units = NGX_CONF_UNSET;

    return llcf;
}


static char *
ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_loyalty_loc_conf_t  *prev = parent;
    ngx_http_loyalty_loc_conf_t  *conf = child;

    ngx_uint_t                     i;
    loyalty_cart_spec_t            defaults;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    ngx_conf_merge_value(conf->health, prev->health, 0);
    ngx_conf_merge_value(conf->checkout, prev->checkout, 0);
    ngx_conf_merge_value(conf->confirm, prev->confirm, 0);
    ngx_conf_merge_str_value(conf->response_order_id,
                             prev->response_order_id, "");
    ngx_conf_merge_uint_value(conf->order_source, prev->order_source,
                              NGX_HTTP_LOYALTY_SOURCE_REQUEST);

    if (conf->checkout_file.len == 0) {
        conf->checkout_file = prev->checkout_file;
        conf->checkout_line = prev->checkout_line;
    }

    if (conf->confirm_file.len == 0) {
        conf->confirm_file = prev->confirm_file;
        conf->confirm_line = prev->confirm_line;
    }

    ngx_conf_merge_value(conf->admin, prev->admin, 0);
    ngx_conf_merge_ptr_value(conf->customer, prev->customer, NULL);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_LOYALTY_MODE_ENFORCE);
    ngx_conf_merge_value(conf->coupon_reject, prev->coupon_reject, 0);
    ngx_conf_merge_str_value(conf->header_prefix, prev->header_prefix,
                             "X-Loyalty-");
    ngx_conf_merge_str_value(conf->admin_token, prev->admin_token, "");
    ngx_conf_merge_value(conf->amounts_minor, prev->amounts_minor, 0);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body, 64 * 1024);
    ngx_conf_merge_uint_value(conf->max_depth, prev->max_depth, 16);
    ngx_conf_merge_uint_value(conf->max_lines, prev->max_lines, 200);
    ngx_conf_merge_value(conf->max_quantity, prev->max_quantity, 10000);
    ngx_conf_merge_value(conf->max_units, prev->max_units, 1000000);

    /* each field not mapped here is mapped as in the enclosing level */
    loyalty_cart_spec_init(&defaults);

    for (i = 0; i < LOYALTY_FIELD_N; i++) {
        if (conf->cart.pointer[i] == NULL) {
            conf->cart.pointer[i] = prev->cart.pointer[i]
                                    ? prev->cart.pointer[i]
                                    : defaults.pointer[i];
        }
    }

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    conf->cart.required = defaults.required;
    conf->cart.currency = lmcf->currency.len ? (char *) lmcf->currency.data
                                             : NULL;
    conf->cart.amounts_minor = (int) conf->amounts_minor;
    conf->cart.round = (loyalty_round_t) lmcf->round;
    conf->cart.max_lines = conf->max_lines;
    conf->cart.max_units = conf->max_units;
    conf->cart.max_quantity = conf->max_quantity;
    conf->cart.max_points = defaults.max_points;

    if (conf->checkout && conf->customer == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"loyalty_checkout\" in %V:%ui needs "
                      "\"loyalty_customer\": the variable that holds the "
                      "signed-in customer's id", &conf->checkout_file,
                      conf->checkout_line);
        return NGX_CONF_ERROR;
    }

    if (conf->confirm && conf->customer == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"loyalty_order_confirm\" in %V:%ui needs "
                      "\"loyalty_customer\": the variable that holds the "
                      "signed-in customer's id", &conf->confirm_file,
                      conf->confirm_line);
        return NGX_CONF_ERROR;
    }

    if (conf->confirm && lmcf->spool.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"loyalty_order_confirm\" in %V:%ui needs "
                      "\"loyalty_spool\": where an order goes when Redis "
                      "cannot take it", &conf->confirm_file,
                      conf->confirm_line);
        return NGX_CONF_ERROR;
    }

    if (conf->confirm && conf->checkout) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"loyalty_order_confirm\" in %V:%ui and "
                      "\"loyalty_checkout\" cannot share a location",
                      &conf->confirm_file, conf->confirm_line);
        return NGX_CONF_ERROR;
    }

    /* a handler set after ours, as proxy_pass does without a word */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (conf->metrics && clcf->handler != ngx_http_loyalty_metrics_handler) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"loyalty_metrics\" in %V:%ui cannot share a "
                      "location with another handler such as "
                      "\"proxy_pass\"", &conf->metrics_file,
                      conf->metrics_line);
        return NGX_CONF_ERROR;
    }

    if (conf->admin && conf->admin_token.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"loyalty_admin\" in %V:%ui needs "
                      "\"loyalty_admin_token\"", &conf->admin_file,
                      conf->admin_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * loyalty_redis 127.0.0.1:6379 [user=NAME] [password=SECRET] [db=N];
 * loyalty_redis unix:/run/redis/redis.sock ...;
 *
 * A host name is resolved here, once, at configuration time, like the
 * servers of an upstream block: resolving in a worker would block it.
 */

static char *
ngx_http_loyalty_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    u_char      *p;
    ngx_str_t   *value;
    ngx_url_t    u;
    ngx_uint_t   i;

    if (lmcf->redis_name.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->redis_name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            lmcf->redis_user.data = value[i].data + 5;
            lmcf->redis_user.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            lmcf->redis_password.data = value[i].data + 9;
            lmcf->redis_password.len = value[i].len - 9;

            if (lmcf->redis_password.len == 0) {
                return "has an empty \"password=\"";
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            lmcf->redis_db = ngx_atoi(value[i].data + 3, value[i].len - 3);

            if (lmcf->redis_db == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid database number \"%V\" in "
                                   "\"loyalty_redis\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"loyalty_redis\", "
                           "expected user=, password= or db=", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (lmcf->redis_user.len && lmcf->redis_password.len == 0) {
        return "has \"user=\" without \"password=\"";
    }

    if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        if (value[1].len == 5) {
            return "has an empty unix socket path";
        }

        /* value[] strings are NUL-terminated by the parser */
        lmcf->redis_unix.data = value[1].data + 5;
        lmcf->redis_unix.len = value[1].len - 5;
        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"loyalty_redis\" address \"%V\"",
                               u.err, &u.url);
        }

        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    lmcf->redis_host.data = p;
    lmcf->redis_host.len = ngx_sock_ntop(u.addrs[0].sockaddr,
                                         u.addrs[0].socklen, p,
                                         NGX_SOCKADDR_STRLEN, 0);
    p[lmcf->redis_host.len] = '\0';
    lmcf->redis_port = ngx_inet_get_port(u.addrs[0].sockaddr);

    if (u.naddrs > 1) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"loyalty_redis\" host \"%V\" has %ui addresses, "
                           "using %V", &u.host, u.naddrs, &lmcf->redis_host);
    }

    return NGX_CONF_OK;
}


/* Remembers the first directive that needs Redis, for a precise error. */

void
ngx_http_loyalty_needs_redis(ngx_conf_t *cf, ngx_command_t *cmd)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (lmcf->used_by.len == 0) {
        lmcf->used_by = cmd->name;
        lmcf->used_file = cf->conf_file->file.name;
        lmcf->used_line = cf->conf_file->line;
    }
}


static char *
ngx_http_loyalty_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (llcf->health != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    llcf->health = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_loyalty_health_handler;

    ngx_http_loyalty_needs_redis(cf, cmd);

    return NGX_CONF_OK;
}


/*
 * The counters' zone exists once a location serves them: without one,
 * counting costs nothing.
 */

static char *
ngx_http_loyalty_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (llcf->metrics) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "cannot share a location with another handler such as "
               "\"loyalty_admin\", \"loyalty_health\" or \"proxy_pass\"";
    }

    if (ngx_http_loyalty_metrics_add_zone(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    clcf->handler = ngx_http_loyalty_metrics_handler;

    llcf->metrics = 1;
    llcf->metrics_file = cf->conf_file->file.name;
    llcf->metrics_line = cf->conf_file->line;

    ngx_http_loyalty_needs_redis(cf, cmd);

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_checkout(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    llcf->checkout_file = cf->conf_file->file.name;
    llcf->checkout_line = cf->conf_file->line;

    if (llcf->checkout) {
        ngx_http_loyalty_needs_redis(cf, cmd);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (llcf->admin != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->regex || clcf->named || clcf->exact_match) {
        return "needs a prefix location such as \"location /loyalty/admin/\"";
    }

    llcf->admin = 1;
    llcf->admin_file = cf->conf_file->file.name;
    llcf->admin_line = cf->conf_file->line;

    clcf->handler = ngx_http_loyalty_admin_handler;

    ngx_http_loyalty_needs_redis(cf, cmd);

    return NGX_CONF_OK;
}


/* The admin token guards every write: a short one is refused. */

static char *
ngx_http_loyalty_admin_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ngx_str_t  *value;

    if (llcf->admin_token.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len < 16) {
        return "needs a token of at least 16 characters";
    }

    llcf->admin_token = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_currency(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    int         decimals;
    ngx_str_t  *value;

    if (lmcf->currency.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    decimals = loyalty_currency_decimals((char *) value[1].data,
                                         value[1].len);
    if (decimals < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid currency \"%V\", expected an ISO 4217 "
                           "code such as EUR", &value[1]);
        return NGX_CONF_ERROR;
    }

    lmcf->currency = value[1];
    lmcf->decimals = (unsigned) decimals;

    return NGX_CONF_OK;
}


/* loyalty_point_value 1.00 per 100;  (100 points are worth 1.00) */

static char *
ngx_http_loyalty_point_value(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (lmcf->point_value_text.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[3].data, value[3].len);

    if (ngx_strcmp(value[2].data, "per") != 0 || n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"loyalty_point_value\", expected for "
                           "example \"loyalty_point_value 1.00 per 100;\"");
        return NGX_CONF_ERROR;
    }

    lmcf->point_value_text = value[1];
    lmcf->point_value_per = n;

    return NGX_CONF_OK;
}


/* loyalty_coupon_attempts 10 per 10m; */

static char *
ngx_http_loyalty_attempts(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   n, period;
    ngx_str_t  *value;

    if (lmcf->attempts) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    period = ngx_parse_time(&value[3], 0);

    if (n <= 0 || ngx_strcmp(value[2].data, "per") != 0
        || period == NGX_ERROR || period == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"loyalty_coupon_attempts\", expected "
                           "for example \"loyalty_coupon_attempts 10 per "
                           "10m;\"");
        return NGX_CONF_ERROR;
    }

    lmcf->attempts = n;
    lmcf->attempts_period = (ngx_msec_t) period;

    return NGX_CONF_OK;
}


/* loyalty_field coupon /discount/code;  loyalty_field line.price /unit; */

static char *
ngx_http_loyalty_field(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ngx_int_t   field;
    ngx_str_t  *value;

    value = cf->args->elts;

    field = loyalty_field_by_name((char *) value[1].data, value[1].len);

    if (field < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown field \"%V\" in \"loyalty_field\", "
                           "expected one of customer, checkout_id, order_id, "
                           "currency, lines, shipping, tax, coupon, points, "
                           "referral, discount, line.sku, line.brand, "
                           "line.category, "
                           "line.price, line.quantity", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (llcf->fields_set & LOYALTY_FIELD_BIT(field)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "field \"%V\" is mapped twice", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* the order id may come from the backend's JSON answer */
    if (ngx_strncmp(value[2].data, "response:", 9) == 0) {
        if (field != LOYALTY_FIELD_ORDER_ID) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "only order_id can be read from the "
                               "response, not \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        if (loyalty_json_pointer_check((char *) value[2].data + 9,
                                       value[2].len - 9)
            != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid JSON pointer \"%V\" in "
                               "\"loyalty_field\", expected for example "
                               "\"response:/order/id\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        llcf->response_order_id.data = value[2].data + 9;
        llcf->response_order_id.len = value[2].len - 9;
        llcf->fields_set |= LOYALTY_FIELD_BIT(field);

        return NGX_CONF_OK;
    }

    if (value[2].len == 0
        || loyalty_json_pointer_check((char *) value[2].data, value[2].len)
           != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid JSON pointer \"%V\" in \"loyalty_field\", "
                           "expected for example \"/cart/items\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    /* value strings are NUL-terminated by the parser */
    llcf->cart.pointer[field] = (char *) value[2].data;
    llcf->fields_set |= LOYALTY_FIELD_BIT(field);

    return NGX_CONF_OK;
}


/* loyalty_cart_limits body=64k lines=200 quantity=10000 amount=1000000
 *                     depth=16; */

static char *
ngx_http_loyalty_cart_limits(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ssize_t      size;
    ngx_int_t    n;
    ngx_str_t   *value, v;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "body=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;
            size = ngx_parse_size(&v);

            if (size <= 0 || size > 16 * 1024 * 1024) {
                goto invalid;
            }

            llcf->max_body = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "lines=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (n <= 0 || n > 10000) {
                goto invalid;
            }

            llcf->max_lines = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "quantity=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n <= 0 || n > 1000000000) {
                goto invalid;
            }

            llcf->max_quantity = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "amount=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (n <= 0 || n > 1000000000000LL) {
                goto invalid;
            }

            llcf->max_units = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "depth=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (n < 2 || n > 64) {
                goto invalid;
            }

            llcf->max_depth = n;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"loyalty_cart_limits\", "
                       "expected body=SIZE (at most 16m), lines=N (at most "
                       "10000), quantity=N, amount=UNITS or depth=N (2 to 64)",
                       &value[i]);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_loyalty_header_prefix(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char        *rv;
    u_char       ch;
    ngx_str_t   *value;
    ngx_uint_t   i;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    for (i = 0; i < value[1].len; i++) {
        ch = value[1].data[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
        {
            return "needs a header name prefix such as \"X-Loyalty-\"";
        }
    }

    if (value[1].len == 0) {
        return "needs a header name prefix such as \"X-Loyalty-\"";
    }

    return NGX_CONF_OK;
}


/* loyalty_spool /var/spool/nginx-loyalty [fsync=on|off]; */

static char *
ngx_http_loyalty_spool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_str_t        *value;
    ngx_file_info_t   fi;

    if (lmcf->spool.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->spool = value[1];

    if (ngx_conf_full_name(cf->cycle, &lmcf->spool, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(lmcf->spool.data, &fi) == NGX_FILE_ERROR
        || !ngx_is_dir(&fi))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"loyalty_spool\" directory \"%V\" does not "
                           "exist: create it, writable by the worker "
                           "processes' user", &lmcf->spool);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "fsync=on") == 0) {
            lmcf->spool_fsync = 1;

        } else if (ngx_strcmp(value[2].data, "fsync=off") == 0) {
            lmcf->spool_fsync = 0;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "fsync=on or fsync=off", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_order_confirm(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    llcf->confirm_file = cf->conf_file->file.name;
    llcf->confirm_line = cf->conf_file->line;

    if (llcf->confirm) {
        ngx_http_loyalty_needs_redis(cf, cmd);
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_loyalty_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_loyalty_add_variables(cf);
}


static ngx_int_t
ngx_http_loyalty_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt           *h;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (lmcf->used_by.len && lmcf->redis_name.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%V\" in %V:%ui needs \"loyalty_redis\" in the "
                      "http block", &lmcf->used_by, &lmcf->used_file,
                      lmcf->used_line);
        return NGX_ERROR;
    }

    /*
     * The checkout runs in the precontent phase: after every access
     * module, so that the customer variable an auth subrequest sets is
     * there, and so that "satisfy any" cannot skip it.
     */
    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_loyalty_checkout_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_loyalty_confirm_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_loyalty_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_loyalty_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_header_filter(ngx_http_request_t *r)
{
    ngx_http_loyalty_checkout_header_filter(r);

    return ngx_http_loyalty_confirm_header_filter(r,
                                                  ngx_http_next_header_filter);
}


static ngx_int_t
ngx_http_loyalty_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    return ngx_http_loyalty_confirm_body_filter(r, in,
                                                ngx_http_next_body_filter);
}


/* The filters after this module's, for a held answer let go later. */

ngx_int_t
ngx_http_loyalty_next_header_filter(ngx_http_request_t *r)
{
    return ngx_http_next_header_filter(r);
}


ngx_int_t
ngx_http_loyalty_next_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    return ngx_http_next_body_filter(r, in);
}


static ngx_int_t
ngx_http_loyalty_init_process(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    /* workers only: not the cache manager or loader */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->redis_name.len == 0) {
        return NGX_OK;
    }

    return ngx_http_loyalty_redis_init_process(cycle, lmcf);
}


static void
ngx_http_loyalty_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_redis_exit_process(cycle);
    ngx_http_loyalty_coupon_batch_free();
    ngx_http_loyalty_coupon_cache_free();
}
