/*
 * ngx_http_loyalty_module: loyalty points and coupons inside nginx.
 *
 * Shared declarations of the module's parts: configuration, the request
 * helpers, the JSON responses, and the entry points of each request flow.
 */

#ifndef NGX_HTTP_LOYALTY_MODULE_H
#define NGX_HTTP_LOYALTY_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "loyalty_cart.h"
#include "loyalty_money.h"
#include "loyalty_rules.h"


/* nginx 1.22 names no 422 */
#define NGX_HTTP_LOYALTY_UNPROCESSABLE  422

/* the most points one bonus or adjustment moves */
#define NGX_HTTP_LOYALTY_POINTS_MAX      1000000000

/* an engagement bonus: loyalty_bonus review 50 max 3 per 1d; */
#define NGX_HTTP_LOYALTY_BONUS_TYPE_MAX  32

typedef struct {
    ngx_str_t                 type;
    ngx_int_t                 points;
    ngx_uint_t                max;              /* 0: no cap */
    time_t                    period;
} ngx_http_loyalty_bonus_t;

#define NGX_HTTP_LOYALTY_MODE_ENFORCE  0
#define NGX_HTTP_LOYALTY_MODE_SHADOW   1


typedef struct {
    ngx_str_t                 redis_name;       /* as configured, for logs */
    ngx_str_t                 redis_host;       /* numeric, NUL-terminated */
    int                       redis_port;
    ngx_str_t                 redis_unix;       /* NUL-terminated */
    ngx_str_t                 redis_user;
    ngx_str_t                 redis_password;
    ngx_int_t                 redis_db;
    ngx_msec_t                redis_timeout;
    ngx_msec_t                redis_connect_timeout;

    /* the program */
    ngx_str_t                 currency;         /* "" when not set */
    unsigned                  decimals;
    ngx_str_t                 point_value_text; /* read once decimals are */
    int64_t                   point_value;      /* minor units ... */
    int64_t                   point_value_per;  /* ... per this many points */
    ngx_uint_t                round;            /* loyalty_round_t */
    time_t                    reservation_ttl;
    loyalty_program_t         program;
    ngx_str_t                 earn_text;        /* money read at init */
    ngx_str_t                 tier_text[LOYALTY_PROGRAM_MAX];
    ngx_str_t                 timezone;
    unsigned                  local_times:1;    /* a time used the zone */
    time_t                    return_window;
    time_t                    tier_window;
    ngx_uint_t                tier_downgrade;   /* 0 full, 1 one level */
    ngx_int_t                 birthday_points;
    ngx_str_t                 program_json;     /* as published */
    ngx_str_t                 program_version;
    ngx_str_t                 tiers_arg;        /* "name:factor,..." */
    ngx_array_t              *bonuses;          /* ngx_http_loyalty_bonus_t */
    ngx_int_t                 clv_years;        /* for the metrics' CLV */

    /* the spool of order writes Redis did not take */
    ngx_str_t                 spool;            /* directory, "" for none */
    ngx_flag_t                spool_fsync;
    ngx_uint_t                events_max;       /* stream length cap */

    /* guessing: failed coupon attempts per customer and per address */
    ngx_uint_t                attempts;         /* 0: not limited */
    ngx_msec_t                attempts_period;
    size_t                    shm_size;
    ngx_shm_zone_t           *shm_zone;

    /* the counters of /metrics: NULL unless a location says so */
    ngx_shm_zone_t           *metrics_zone;

    /* the first directive that needs Redis, for the nginx -t message */
    ngx_str_t                 used_by;
    ngx_str_t                 used_file;
    ngx_uint_t                used_line;
} ngx_http_loyalty_main_conf_t;


typedef struct {
    ngx_flag_t                health;
    ngx_flag_t                checkout;
    ngx_flag_t                confirm;
    ngx_flag_t                admin;
    ngx_flag_t                metrics;          /* this location only */
    ngx_http_complex_value_t *customer;
    ngx_uint_t                mode;
    ngx_flag_t                coupon_reject;
    ngx_str_t                 header_prefix;
    ngx_str_t                 admin_token;

    /* the cart: where each field is, and its limits */
    loyalty_cart_spec_t       cart;
    ngx_uint_t                fields_set;       /* LOYALTY_FIELD_BIT()s */
    ngx_int_t                 amounts_minor;
    size_t                    max_body;
    ngx_uint_t                max_depth;
    ngx_uint_t                max_lines;
    ngx_int_t                 max_quantity;
    ngx_int_t                 max_units;

    /* the order id from the backend's JSON answer ("response:/id"), or
     * the whole order (loyalty_order_source response) */
    ngx_str_t                 response_order_id;
    ngx_uint_t                order_source;

    /* where the flows are switched on, for nginx -t */
    ngx_str_t                 checkout_file;
    ngx_uint_t                checkout_line;
    ngx_str_t                 confirm_file;
    ngx_uint_t                confirm_line;
    ngx_str_t                 admin_file;
    ngx_uint_t                admin_line;
    ngx_str_t                 metrics_file;
    ngx_uint_t                metrics_line;
} ngx_http_loyalty_loc_conf_t;


/* an error answer in the making: status, stable code, message */
typedef struct {
    ngx_uint_t                status;
    const char               *code;
    size_t                    len;
    u_char                    message[512];
} ngx_http_loyalty_error_t;


extern ngx_module_t  ngx_http_loyalty_module;


/* ngx_http_loyalty_module.c */
void ngx_http_loyalty_needs_redis(ngx_conf_t *cf, ngx_command_t *cmd);
ngx_int_t ngx_http_loyalty_next_header_filter(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_next_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);

/* ngx_http_loyalty_program.c */
char *ngx_http_loyalty_earn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_loyalty_earn_include(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_multiplier(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_campaign(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_loyalty_order_reward(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_referral_reward(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_referral_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
/* a change to one of the program's totals (see stats_add.lua) */
typedef struct {
    ngx_str_t                 field;
    int64_t                   change;
} ngx_http_loyalty_stat_t;

/*
 * Moves the program's totals (changes of 0 are left out) and the
 * leaderboards of this month and year: added up in the worker and sent
 * every 100 ms, never waited for (ngx_http_loyalty_stats.c).
 */
void ngx_http_loyalty_stats_add(ngx_http_loyalty_stat_t *stats,
    ngx_uint_t n);
void ngx_http_loyalty_board_add(ngx_str_t *customer, int64_t points);

char *ngx_http_loyalty_bonus(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
const ngx_http_loyalty_bonus_t *ngx_http_loyalty_bonus_find(
    ngx_http_loyalty_main_conf_t *lmcf, u_char *type, size_t len);
char *ngx_http_loyalty_points_expire(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_timezone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_loyalty_program_init(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf);
ngx_int_t ngx_http_loyalty_program_publish(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf);

/* ngx_http_loyalty_health.c */
ngx_int_t ngx_http_loyalty_health_handler(ngx_http_request_t *r);

/* ngx_http_loyalty_checkout.c */
ngx_int_t ngx_http_loyalty_checkout_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_checkout_header_filter(ngx_http_request_t *r);

/* ngx_http_loyalty_admin.c */
ngx_int_t ngx_http_loyalty_admin_handler(ngx_http_request_t *r);

/* ngx_http_loyalty_variables.c */
ngx_int_t ngx_http_loyalty_add_variables(ngx_conf_t *cf);

/* ngx_http_loyalty_limit.c */
ngx_int_t ngx_http_loyalty_limit_add_zone(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf);
ngx_int_t ngx_http_loyalty_limit_exceeded(ngx_http_request_t *r,
    ngx_str_t *customer);
void ngx_http_loyalty_limit_count(ngx_http_request_t *r,
    ngx_str_t *customer);

/* ngx_http_loyalty_request.c */
void ngx_http_loyalty_strip_headers(ngx_http_request_t *r,
    ngx_str_t *prefix);
ngx_int_t ngx_http_loyalty_check_body(ngx_http_request_t *r, size_t max,
    ngx_http_loyalty_error_t *err);
ngx_int_t ngx_http_loyalty_body(ngx_http_request_t *r, size_t max,
    ngx_str_t *body, ngx_http_loyalty_error_t *err);
ngx_int_t ngx_http_loyalty_read_cart(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_str_t *body,
    loyalty_cart_t *cart, ngx_http_loyalty_error_t *err);
ngx_int_t ngx_http_loyalty_customer(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_str_t *customer,
    ngx_http_loyalty_error_t *err);
void ngx_http_loyalty_error(ngx_http_loyalty_error_t *err, ngx_uint_t status,
    const char *code, const char *fmt, ...);
void *ngx_http_loyalty_palloc(void *pool, size_t size);
ngx_str_t *ngx_http_loyalty_money(ngx_pool_t *pool, int64_t minor,
    unsigned decimals);

/* ngx_http_loyalty_json.c */
ngx_int_t ngx_http_loyalty_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
ngx_int_t ngx_http_loyalty_send_body(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *type, size_t type_len, u_char *body,
    size_t len);
void *ngx_http_loyalty_get_start(ngx_http_request_t *r, size_t size,
    ngx_pool_cleanup_pt cleanup, ngx_int_t *rc);
ngx_int_t ngx_http_loyalty_get_wait(ngx_http_request_t *r);
ngx_int_t ngx_http_loyalty_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, ...);
ngx_int_t ngx_http_loyalty_send_err(ngx_http_request_t *r,
    ngx_http_loyalty_error_t *err);
ngx_int_t ngx_http_loyalty_send_not_allowed(ngx_http_request_t *r,
    ngx_uint_t methods);
u_char *ngx_http_loyalty_json_string(u_char *p, u_char *src, size_t len);
size_t ngx_http_loyalty_json_string_len(u_char *src, size_t len);

#endif /* NGX_HTTP_LOYALTY_MODULE_H */
