/*
 * The program's rules, written once in nginx.conf: how points are earned
 * (base rate, multipliers, campaigns, tiers), when they are credited and
 * expire, and the rewards.  Published to Redis with a version on every
 * (re)connection, so the worker follows exactly these rules, and every
 * accrual records the version it was earned under.
 */

#include "ngx_http_loyalty_module.h"
#include "loyalty_time.h"


static ngx_int_t ngx_http_loyalty_factor(ngx_str_t *text, int64_t *out);
static ngx_int_t ngx_http_loyalty_match(ngx_str_t *text, int *kind,
    loyalty_str_t *value);
static ngx_int_t ngx_http_loyalty_local_time(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, ngx_str_t *text, int64_t *out);
static char *ngx_http_loyalty_program_money(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, ngx_str_t *text, int64_t *out);


/* loyalty_earn 10 per 1.00 [rounding=down]; */

char *
ngx_http_loyalty_earn(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (lmcf->earn_text.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);

    if (n <= 0 || ngx_strcmp(value[2].data, "per") != 0) {
        return "expects for example \"loyalty_earn 10 per 1.00;\"";
    }

    lmcf->program.earn_points = n;
    lmcf->earn_text = value[3];

    if (cf->args->nelts == 5) {
        if (ngx_strcmp(value[4].data, "rounding=down") == 0) {
            lmcf->program.earn_round = LOYALTY_ROUND_DOWN;

        } else if (ngx_strcmp(value[4].data, "rounding=up") == 0) {
            lmcf->program.earn_round = LOYALTY_ROUND_UP;

        } else if (ngx_strcmp(value[4].data, "rounding=half_up") == 0) {
            lmcf->program.earn_round = LOYALTY_ROUND_HALF_UP;

        } else if (ngx_strcmp(value[4].data, "rounding=half_even") == 0) {
            lmcf->program.earn_round = LOYALTY_ROUND_HALF_EVEN;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "rounding=down, up, half_up or half_even",
                               &value[4]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* loyalty_earn_include shipping tax discounts redeemed; */

char *
ngx_http_loyalty_earn_include(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_strcmp(value[i].data, "shipping") == 0) {
            lmcf->program.include |= LOYALTY_EARN_SHIPPING;

        } else if (ngx_strcmp(value[i].data, "tax") == 0) {
            lmcf->program.include |= LOYALTY_EARN_TAX;

        } else if (ngx_strcmp(value[i].data, "discounts") == 0) {
            lmcf->program.include |= LOYALTY_EARN_DISCOUNTS;

        } else if (ngx_strcmp(value[i].data, "redeemed") == 0) {
            lmcf->program.include |= LOYALTY_EARN_REDEEMED;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\", expected shipping, "
                               "tax, discounts or redeemed", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* loyalty_multiplier brand acme 2;  (sku, brand or category; factor) */

char *
ngx_http_loyalty_multiplier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_str_t             *value;
    loyalty_multiplier_t  *m;

    if (lmcf->program.nmultipliers == LOYALTY_PROGRAM_MAX) {
        return "is given too often (at most 64)";
    }

    value = cf->args->elts;
    m = &lmcf->program.multipliers[lmcf->program.nmultipliers];

    if (ngx_strcmp(value[1].data, "sku") == 0) {
        m->kind = LOYALTY_MATCH_SKU;

    } else if (ngx_strcmp(value[1].data, "brand") == 0) {
        m->kind = LOYALTY_MATCH_BRAND;

    } else if (ngx_strcmp(value[1].data, "category") == 0) {
        m->kind = LOYALTY_MATCH_CATEGORY;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\", expected sku, brand or category",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    m->value.data = (char *) value[2].data;
    m->value.len = value[2].len;

    if (ngx_http_loyalty_factor(&value[3], &m->factor) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid factor \"%V\", expected a number from "
                           "0 to 100 with at most 3 decimals", &value[3]);
        return NGX_CONF_ERROR;
    }

    lmcf->program.nmultipliers++;

    return NGX_CONF_OK;
}


/*
 * loyalty_campaign black-friday 2 2026-11-27T00:00 2026-11-30T00:00
 *                  [sku=X | brand=X | category=X];
 * Times without an offset are in loyalty_timezone.
 */

char *
ngx_http_loyalty_campaign(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_str_t           *value;
    loyalty_campaign_t  *c;

    if (lmcf->program.ncampaigns == LOYALTY_PROGRAM_MAX) {
        return "is given too often (at most 64)";
    }

    value = cf->args->elts;
    c = &lmcf->program.campaigns[lmcf->program.ncampaigns];

    c->name.data = (char *) value[1].data;
    c->name.len = value[1].len;
    c->kind = LOYALTY_ANY_LINE;

    if (ngx_http_loyalty_factor(&value[2], &c->factor) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid factor \"%V\" in campaign \"%V\"",
                           &value[2], &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_loyalty_local_time(cf, lmcf, &value[3], &c->starts_at)
        != NGX_OK
        || ngx_http_loyalty_local_time(cf, lmcf, &value[4], &c->ends_at)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (c->ends_at <= c->starts_at) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "campaign \"%V\" ends before it starts",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 6
        && ngx_http_loyalty_match(&value[5], &c->kind, &c->value) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid scope \"%V\" in campaign \"%V\", "
                           "expected sku=, brand= or category=", &value[5],
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    lmcf->program.ncampaigns++;

    return NGX_CONF_OK;
}


/* loyalty_tier gold 500.00 1.5 [perks=free_shipping,early_access]; */

char *
ngx_http_loyalty_tier(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_str_t       *value;
    ngx_uint_t       i;
    loyalty_tier_t  *t;

    if (lmcf->program.ntiers == LOYALTY_PROGRAM_MAX) {
        return "is given too often (at most 64)";
    }

    value = cf->args->elts;
    t = &lmcf->program.tiers[lmcf->program.ntiers];

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] == ':' || value[1].data[i] == ','
            || value[1].data[i] == '|')
        {
            return "has a name with ':', ',' or '|'";
        }
    }

    t->name.data = (char *) value[1].data;
    t->name.len = value[1].len;

    /* the threshold is money: read once the currency is known */
    lmcf->tier_text[lmcf->program.ntiers] = value[2];

    if (ngx_http_loyalty_factor(&value[3], &t->factor) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid multiplier \"%V\" in tier \"%V\"",
                           &value[3], &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 5) {
        if (ngx_strncmp(value[4].data, "perks=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected perks=",
                               &value[4]);
            return NGX_CONF_ERROR;
        }

        t->perks.data = (char *) value[4].data + 6;
        t->perks.len = value[4].len - 6;
    }

    lmcf->program.ntiers++;

    return NGX_CONF_OK;
}


/* loyalty_order_reward 5 500;  (every 5th order earns 500 points) */

char *
ngx_http_loyalty_order_reward(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   every, points;
    ngx_str_t  *value;

    value = cf->args->elts;
    every = ngx_atoi(value[1].data, value[1].len);
    points = ngx_atoi(value[2].data, value[2].len);

    if (every < 2 || points <= 0) {
        return "expects for example \"loyalty_order_reward 5 500;\": "
               "every 5th order earns 500 points";
    }

    lmcf->program.order_every = every;
    lmcf->program.order_points = points;

    return NGX_CONF_OK;
}


/* loyalty_referral_reward 500 250;  (the referrer, the referred) */

char *
ngx_http_loyalty_referral_reward(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   referrer, referred;
    ngx_str_t  *value;

    value = cf->args->elts;
    referrer = ngx_atoi(value[1].data, value[1].len);
    referred = ngx_atoi(value[2].data, value[2].len);

    if (referrer < 0 || referred < 0 || referrer + referred == 0) {
        return "expects the points of the referrer and of the referred, "
               "for example \"loyalty_referral_reward 500 250;\"";
    }

    lmcf->program.referrer_points = referrer;
    lmcf->program.referred_points = referred;

    return NGX_CONF_OK;
}


/* loyalty_referral_limit 10 per 365d; */

char *
ngx_http_loyalty_referral_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   n, period;
    ngx_str_t  *value;

    value = cf->args->elts;
    n = ngx_atoi(value[1].data, value[1].len);
    period = ngx_parse_time(&value[3], 1);

    if (n <= 0 || ngx_strcmp(value[2].data, "per") != 0
        || period == NGX_ERROR || period == 0)
    {
        return "expects for example \"loyalty_referral_limit 10 per 365d;\"";
    }

    lmcf->program.referral_limit = n;
    lmcf->program.referral_period = period;

    return NGX_CONF_OK;
}


/* loyalty_bonus review 50 [max 3 per 1d]; */

char *
ngx_http_loyalty_bonus(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    u_char                    *p;
    ngx_int_t                  n, period;
    ngx_str_t                 *value;
    ngx_http_loyalty_bonus_t  *b;

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_' || *p == '-'))
        {
            break;
        }
    }

    if (value[1].len == 0 || value[1].len > NGX_HTTP_LOYALTY_BONUS_TYPE_MAX
        || p != value[1].data + value[1].len)
    {
        return "expects a type of 1 to 32 lower-case letters, digits, '_' "
               "or '-', such as \"review\"";
    }

    if (ngx_http_loyalty_bonus_find(lmcf, value[1].data, value[1].len)) {
        return "is duplicate for this type";
    }

    n = ngx_atoi(value[2].data, value[2].len);

    if (n <= 0 || n > NGX_HTTP_LOYALTY_POINTS_MAX) {
        return "expects whole points from 1 to 1000000000";
    }

    if (lmcf->bonuses == NULL) {
        lmcf->bonuses = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_loyalty_bonus_t));
        if (lmcf->bonuses == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    b = ngx_array_push(lmcf->bonuses);
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    b->type = value[1];
    b->points = n;
    b->max = 0;
    b->period = 0;

    if (cf->args->nelts == 3) {
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[4].data, value[4].len);
    period = ngx_parse_time(&value[6], 1);

    if (ngx_strcmp(value[3].data, "max") != 0 || n <= 0
        || ngx_strcmp(value[5].data, "per") != 0
        || period == NGX_ERROR || period == 0)
    {
        return "expects for example \"loyalty_bonus review 50 max 3 per "
               "1d;\"";
    }

    b->max = n;
    b->period = period;

    return NGX_CONF_OK;
}


const ngx_http_loyalty_bonus_t *
ngx_http_loyalty_bonus_find(ngx_http_loyalty_main_conf_t *lmcf, u_char *type,
    size_t len)
{
    ngx_uint_t                 i;
    ngx_http_loyalty_bonus_t  *b;

    if (lmcf->bonuses == NULL) {
        return NULL;
    }

    b = lmcf->bonuses->elts;

    for (i = 0; i < lmcf->bonuses->nelts; i++) {
        if (b[i].type.len == len && ngx_strncmp(b[i].type.data, type, len) == 0)
        {
            return &b[i];
        }
    }

    return NULL;
}


/* loyalty_points_expire 365d [notice=30d]; */

char *
ngx_http_loyalty_points_expire(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_int_t   t;
    ngx_str_t  *value, notice;

    value = cf->args->elts;
    t = ngx_parse_time(&value[1], 1);

    if (t == NGX_ERROR || t == 0) {
        return "expects a time such as 365d";
    }

    lmcf->program.points_expire = t;
    lmcf->program.expire_notice = 30 * 86400;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "notice=", 7) != 0) {
            return "expects notice= after the time";
        }

        notice.data = value[2].data + 7;
        notice.len = value[2].len - 7;
        t = ngx_parse_time(&notice, 1);

        if (t == NGX_ERROR || t >= lmcf->program.points_expire) {
            return "has a notice= that is not a time shorter than the "
                   "expiry";
        }

        lmcf->program.expire_notice = t;
    }

    return NGX_CONF_OK;
}


/*
 * The money of the program (the earn amount, tier thresholds) is read
 * once loyalty_currency is known; then the program is complete.
 */

char *
ngx_http_loyalty_program_init(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    int64_t              amount;
    ngx_uint_t           i;
    loyalty_program_t   *p = &lmcf->program;

    if (lmcf->currency.len) {
        ngx_memcpy(p->currency, lmcf->currency.data, 3);
        p->decimals = lmcf->decimals;
    }

    if (lmcf->earn_text.len) {
        if (ngx_http_loyalty_program_money(cf, lmcf, &lmcf->earn_text,
                                           &amount)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (amount == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"loyalty_earn\" needs an amount above 0");
            return NGX_CONF_ERROR;
        }

        p->earn_amount = amount;
    }

    for (i = 0; i < p->ntiers; i++) {
        if (ngx_http_loyalty_program_money(cf, lmcf, &lmcf->tier_text[i],
                                           &p->tiers[i].threshold)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (i > 0 && p->tiers[i].threshold <= p->tiers[i - 1].threshold) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"loyalty_tier\" \"%s\" must have a higher "
                          "threshold than the tier before it",
                          p->tiers[i].name.data);
            return NGX_CONF_ERROR;
        }
    }

    if (p->ntiers && p->tiers[0].threshold != 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the first \"loyalty_tier\" is the entry tier every "
                      "member starts in: its threshold must be 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_loyalty_program_money(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, ngx_str_t *text, int64_t *out)
{
    loyalty_money_spec_t  ms;

    if (lmcf->currency.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the amount \"%V\" of the program needs "
                      "\"loyalty_currency\"", text);
        return NGX_CONF_ERROR;
    }

    ms.decimals = lmcf->decimals;
    ms.round = LOYALTY_ROUND_EXACT;
    ms.min = 0;
    ms.max = LOYALTY_MONEY_LIMIT;

    if (loyalty_money_parse((char *) text->data, text->len, &ms, out)
        != LOYALTY_MONEY_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid amount \"%V\", expected an amount in %V with "
                      "at most %ui decimals", text, &lmcf->currency,
                      (ngx_uint_t) lmcf->decimals);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "2" or "1.5" or "1.25" to thousandths; 0 to 100. */

static ngx_int_t
ngx_http_loyalty_factor(ngx_str_t *text, int64_t *out)
{
    loyalty_money_spec_t  ms;

    ms.decimals = 3;
    ms.round = LOYALTY_ROUND_EXACT;
    ms.min = 0;
    ms.max = 100 * LOYALTY_FACTOR_ONE;

    return loyalty_money_parse((char *) text->data, text->len, &ms, out)
           == LOYALTY_MONEY_OK ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_loyalty_match(ngx_str_t *text, int *kind, loyalty_str_t *value)
{
    size_t  skip;

    if (ngx_strncmp(text->data, "sku=", 4) == 0) {
        *kind = LOYALTY_MATCH_SKU;
        skip = 4;

    } else if (ngx_strncmp(text->data, "brand=", 6) == 0) {
        *kind = LOYALTY_MATCH_BRAND;
        skip = 6;

    } else if (ngx_strncmp(text->data, "category=", 9) == 0) {
        *kind = LOYALTY_MATCH_CATEGORY;
        skip = 9;

    } else {
        return NGX_ERROR;
    }

    if (text->len == skip) {
        return NGX_ERROR;
    }

    value->data = (char *) text->data + skip;
    value->len = text->len - skip;

    return NGX_OK;
}


/*
 * An RFC 3339 time, or a local time "2026-11-27T00:00[:00]" in
 * loyalty_timezone (resolved now, with the system's zone database).
 */

static ngx_int_t
ngx_http_loyalty_local_time(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf, ngx_str_t *text, int64_t *out)
{
    char       *saved, buf[32];
    time_t      t;
    struct tm   tm;

    if (loyalty_time_parse((char *) text->data, text->len, out) == 0) {
        return NGX_OK;
    }

    ngx_memzero(&tm, sizeof(struct tm));

    if (text->len >= sizeof(buf)
        || (ngx_cpystrn((u_char *) buf, text->data, text->len + 1),
            strptime(buf, "%Y-%m-%dT%H:%M", &tm) == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\", expected "
                           "2026-11-27T00:00 (in loyalty_timezone) or an "
                           "RFC 3339 time", text);
        return NGX_ERROR;
    }

    if (strchr(buf + 14, ':') != NULL) {
        (void) strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    }

    tm.tm_isdst = -1;
    lmcf->local_times = 1;

    /* mktime() reads TZ: point it at the shop's zone for this call */
    saved = getenv("TZ");
    saved = saved ? strdup(saved) : NULL;

    if (lmcf->timezone.len) {
        setenv("TZ", (char *) lmcf->timezone.data, 1);
    } else {
        setenv("TZ", "UTC", 1);
    }

    tzset();
    t = mktime(&tm);

    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }

    tzset();

    if (t == (time_t) -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "time \"%V\" does not exist in %V", text,
                           &lmcf->timezone);
        return NGX_ERROR;
    }

    *out = t;

    return NGX_OK;
}


/* loyalty_timezone Europe/Paris;  checked against the zone database */

char *
ngx_http_loyalty_timezone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    u_char     *path;
    ngx_str_t  *value;

    if (lmcf->timezone.len) {
        return "is duplicate";
    }

    if (lmcf->local_times) {
        return "must come before the local times it applies to";
    }

    value = cf->args->elts;

    path = ngx_pnalloc(cf->pool, sizeof("/usr/share/zoneinfo/")
                                 + value[1].len);
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(path, "/usr/share/zoneinfo/%V%Z", &value[1]);

    if (ngx_strstr(value[1].data, "..") != NULL
        || access((char *) path, R_OK) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown time zone \"%V\", expected a name of "
                           "the zone database such as Europe/Paris",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    lmcf->timezone = value[1];

    return NGX_CONF_OK;
}


/*
 * The program as JSON, with a version that changes whenever it does: the
 * 64-bit FNV-1a hash of the JSON.  Every worker publishes it when its
 * connection becomes ready.
 */

ngx_int_t
ngx_http_loyalty_program_publish(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    u_char    *p;
    size_t     len, size;
    uint64_t   h;

    size = 64 * 1024;

    p = ngx_pnalloc(cf->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = loyalty_program_write(&lmcf->program, (char *) p, size);
    if (len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "the loyalty program is larger than %uz bytes", size);
        return NGX_ERROR;
    }

    lmcf->program_json.data = p;
    lmcf->program_json.len = len;

    h = 0xcbf29ce484222325ULL;

    while (len--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }

    lmcf->program_version.data = ngx_pnalloc(cf->pool, 16);
    if (lmcf->program_version.data == NULL) {
        return NGX_ERROR;
    }

    lmcf->program_version.len = ngx_sprintf(lmcf->program_version.data,
                                            "%016xL", h)
                                - lmcf->program_version.data;

    /* the tiers as order_record.lua takes them: "name:factor,..." */
    len = 1;

    for (size = 0; size < lmcf->program.ntiers; size++) {
        len += lmcf->program.tiers[size].name.len + NGX_INT64_LEN + 2;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    lmcf->tiers_arg.data = p;

    for (size = 0; size < lmcf->program.ntiers; size++) {
        p = ngx_sprintf(p, "%s%*s:%L", size ? "," : "",
                        lmcf->program.tiers[size].name.len,
                        lmcf->program.tiers[size].name.data,
                        lmcf->program.tiers[size].factor);
    }

    lmcf->tiers_arg.len = p - lmcf->tiers_arg.data;

    return NGX_OK;
}
