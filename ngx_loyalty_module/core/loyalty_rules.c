#include <string.h>

#include "loyalty_out.h"
#include "loyalty_rules.h"


static int64_t loyalty_best_multiplier(const loyalty_program_t *p,
    const loyalty_line_t *line);
static int64_t loyalty_best_campaign(const loyalty_program_t *p,
    const loyalty_line_t *line, int64_t now);
static const loyalty_str_t *loyalty_line_key(const loyalty_line_t *line,
    int kind);
static int loyalty_json_scoped(const loyalty_json_t *obj);
static int64_t loyalty_json_int(const loyalty_json_t *obj, const char *key);
static int loyalty_json_str(const loyalty_json_t *obj, const char *key,
    loyalty_str_t *out);
static int loyalty_json_match(const loyalty_json_t *obj, int *kind,
    loyalty_str_t *value);


static const char  *loyalty_match_keys[LOYALTY_MATCH_N] = {
    "sku", "brand", "category"
};

static const char  *loyalty_round_names[] = {
    "half_up", "half_even", "down", "up", "exact"
};


void
loyalty_program_init(loyalty_program_t *p)
{
    memset(p, 0, sizeof(loyalty_program_t));

    p->earn_round = LOYALTY_ROUND_DOWN;
    p->return_window = 30 * 86400;
    p->tier_window = 365 * 86400;
    p->referral_period = 365 * 86400;
}


/*
 * The lines earn at the base rate times the best multiplier and the best
 * live campaign that match each; shipping and tax (when included) earn at
 * the base rate times the best campaign for every line.  What is taken
 * off (discount, redeemed value) is spread over the lines in proportion
 * to them, by cumulative rounding so that the shares add up exactly.  One
 * rounding, at the end, over the exact sum.
 */

int64_t
loyalty_points_earned(const loyalty_program_t *p, const loyalty_cart_t *cart,
    int64_t discount, int64_t redeemed, int64_t now, loyalty_earning_t *how)
{
    size_t        i;
    int64_t       off, cum, share, prev, net, factor, points, extra, camp;
    __int128      num, den, q, r;

    memset(how, 0, sizeof(loyalty_earning_t));

    if (p->earn_points <= 0 || p->earn_amount <= 0) {
        return 0;
    }

    off = 0;

    if (!(p->include & LOYALTY_EARN_DISCOUNTS)) {
        off += discount;
    }

    if (!(p->include & LOYALTY_EARN_REDEEMED)) {
        off += redeemed;
    }

    if (off > cart->subtotal) {
        off = cart->subtotal;
    }

    num = 0;
    cum = 0;
    prev = 0;

    for (i = 0; i < cart->nlines; i++) {
        cum += cart->lines[i].total;
        share = cart->subtotal
                ? (int64_t) ((__int128) off * cum / cart->subtotal) : 0;
        net = cart->lines[i].total - (share - prev);
        prev = share;

        camp = loyalty_best_campaign(p, &cart->lines[i], now);
        factor = loyalty_best_multiplier(p, &cart->lines[i]) * camp;

        if (camp > how->campaign) {
            how->campaign = camp;
        }

        how->basis += net;
        num += (__int128) net * factor;
    }

    extra = 0;

    if (p->include & LOYALTY_EARN_SHIPPING) {
        extra += cart->shipping;
    }

    if (p->include & LOYALTY_EARN_TAX) {
        extra += cart->tax;
    }

    if (extra) {
        camp = loyalty_best_campaign(p, NULL, now);
        how->basis += extra;
        num += (__int128) extra * LOYALTY_FACTOR_ONE * camp;
    }

    /* points = num * earn_points / (earn_amount * 1000 * 1000) */
    num *= p->earn_points;
    den = (__int128) p->earn_amount * LOYALTY_FACTOR_ONE
          * LOYALTY_FACTOR_ONE;

    q = num / den;
    r = num % den;

    switch (p->earn_round) {
    case LOYALTY_ROUND_UP:
        q += (r != 0);
        break;
    case LOYALTY_ROUND_HALF_UP:
        q += (2 * r >= den);
        break;
    case LOYALTY_ROUND_HALF_EVEN:
        q += (2 * r > den || (2 * r == den && (q & 1)));
        break;
    default:
        break;
    }

    /* the most 64 bits hold rather than a wrapped number */
    points = q > INT64_MAX ? INT64_MAX : (int64_t) q;
    how->points = points;

    return points;
}


static int64_t
loyalty_best_multiplier(const loyalty_program_t *p, const loyalty_line_t *line)
{
    size_t                       i;
    int64_t                      best;
    const loyalty_str_t         *key;
    const loyalty_multiplier_t  *m;

    best = -1;

    for (i = 0; i < p->nmultipliers; i++) {
        m = &p->multipliers[i];
        key = loyalty_line_key(line, m->kind);

        if (key->len && loyalty_str_eq(key, &m->value) && m->factor > best) {
            best = m->factor;
        }
    }

    /* a line no multiplier names earns 1x; a named one may earn less */
    return (best < 0) ? LOYALTY_FACTOR_ONE : best;
}


/* The best live campaign for a line (NULL: shipping and tax). */

static int64_t
loyalty_best_campaign(const loyalty_program_t *p, const loyalty_line_t *line,
    int64_t now)
{
    size_t                     i;
    int64_t                    best;
    const loyalty_str_t       *key;
    const loyalty_campaign_t  *c;

    best = -1;

    for (i = 0; i < p->ncampaigns; i++) {
        c = &p->campaigns[i];

        if (now < c->starts_at || now >= c->ends_at) {
            continue;
        }

        if (c->kind != LOYALTY_ANY_LINE) {
            if (line == NULL) {
                continue;
            }

            key = loyalty_line_key(line, c->kind);

            if (key->len == 0 || !loyalty_str_eq(key, &c->value)) {
                continue;
            }
        }

        if (c->factor > best) {
            best = c->factor;
        }
    }

    return (best < 0) ? LOYALTY_FACTOR_ONE : best;
}


static const loyalty_str_t *
loyalty_line_key(const loyalty_line_t *line, int kind)
{
    switch (kind) {
    case LOYALTY_MATCH_SKU:
        return &line->sku;
    case LOYALTY_MATCH_BRAND:
        return &line->brand;
    default:
        return &line->category;
    }
}


const loyalty_tier_t *
loyalty_tier_for(const loyalty_program_t *p, int64_t spend)
{
    size_t                 i;
    const loyalty_tier_t  *tier;

    tier = NULL;

    for (i = 0; i < p->ntiers; i++) {
        if (spend >= p->tiers[i].threshold) {
            tier = &p->tiers[i];
        }
    }

    return tier;
}


size_t
loyalty_program_write(const loyalty_program_t *p, char *buf, size_t size)
{
    size_t                       i;
    loyalty_out_t                o;
    const loyalty_tier_t        *t;
    const loyalty_campaign_t    *c;
    const loyalty_multiplier_t  *m;

    loyalty_out_init(&o, buf, size);

    loyalty_out(&o, "{\"currency\":\"%s\",\"decimals\":%u,"
                "\"earn_points\":%lld,\"earn_amount\":%lld,"
                "\"earn_rounding\":\"%s\",\"earn_include\":%u,",
                p->currency, p->decimals, (long long) p->earn_points,
                (long long) p->earn_amount,
                loyalty_round_names[p->earn_round], p->include);

    loyalty_out(&o, "\"multipliers\":[");

    for (i = 0; i < p->nmultipliers; i++) {
        m = &p->multipliers[i];
        loyalty_out(&o, "%s{\"%s\":", i ? "," : "",
                    loyalty_match_keys[m->kind]);
        loyalty_out_string(&o, m->value.data, m->value.len);
        loyalty_out(&o, ",\"factor\":%lld}", (long long) m->factor);
    }

    loyalty_out(&o, "],\"campaigns\":[");

    for (i = 0; i < p->ncampaigns; i++) {
        c = &p->campaigns[i];
        loyalty_out(&o, "%s{\"name\":", i ? "," : "");
        loyalty_out_string(&o, c->name.data, c->name.len);
        loyalty_out(&o, ",\"factor\":%lld,\"starts_at\":%lld,"
                    "\"ends_at\":%lld", (long long) c->factor,
                    (long long) c->starts_at, (long long) c->ends_at);

        if (c->kind != LOYALTY_ANY_LINE) {
            loyalty_out(&o, ",\"%s\":", loyalty_match_keys[c->kind]);
            loyalty_out_string(&o, c->value.data, c->value.len);
        }

        loyalty_out(&o, "}");
    }

    loyalty_out(&o, "],\"tiers\":[");

    for (i = 0; i < p->ntiers; i++) {
        t = &p->tiers[i];
        loyalty_out(&o, "%s{\"name\":", i ? "," : "");
        loyalty_out_string(&o, t->name.data, t->name.len);
        loyalty_out(&o, ",\"threshold\":%lld,\"factor\":%lld,\"perks\":",
                    (long long) t->threshold, (long long) t->factor);
        loyalty_out_string(&o, t->perks.data, t->perks.len);
        loyalty_out(&o, "}");
    }

    loyalty_out(&o, "],\"return_window\":%lld,\"points_expire\":%lld,"
                "\"expire_notice\":%lld,\"tier_window\":%lld,"
                "\"tier_downgrade\":%d,\"order_every\":%lld,"
                "\"order_points\":%lld,\"referrer_points\":%lld,"
                "\"referred_points\":%lld,\"referral_limit\":%lld,"
                "\"referral_period\":%lld,\"birthday_points\":%lld,"
                "\"timezone\":",
                (long long) p->return_window, (long long) p->points_expire,
                (long long) p->expire_notice, (long long) p->tier_window,
                p->tier_downgrade, (long long) p->order_every,
                (long long) p->order_points, (long long) p->referrer_points,
                (long long) p->referred_points,
                (long long) p->referral_limit,
                (long long) p->referral_period,
                (long long) p->birthday_points);
    loyalty_out_string(&o, p->timezone.data, p->timezone.len);
    loyalty_out(&o, "}");

    return loyalty_out_done(&o, buf);
}


int
loyalty_program_read(const loyalty_json_t *root, loyalty_program_t *p)
{
    size_t                 i, n;
    loyalty_str_t          s;
    const loyalty_json_t  *v, *list;

    loyalty_program_init(p);

    if (root == NULL || root->type != LOYALTY_JSON_OBJECT) {
        return -1;
    }

    /* "" when ops set no currency: the program then earns nothing */
    if (loyalty_json_str(root, "currency", &s) != 0
        || (s.len != 0 && s.len != 3))
    {
        return -1;
    }

    memcpy(p->currency, s.data, s.len);
    p->decimals = (unsigned) loyalty_json_int(root, "decimals");
    p->earn_points = loyalty_json_int(root, "earn_points");
    p->earn_amount = loyalty_json_int(root, "earn_amount");
    p->include = (unsigned) loyalty_json_int(root, "earn_include");

    if (loyalty_json_str(root, "earn_rounding", &s) != 0) {
        return -1;
    }

    for (i = 0; i < sizeof(loyalty_round_names) / sizeof(char *); i++) {
        if (strlen(loyalty_round_names[i]) == s.len
            && memcmp(loyalty_round_names[i], s.data, s.len) == 0)
        {
            p->earn_round = (loyalty_round_t) i;
            break;
        }
    }

    if (i == sizeof(loyalty_round_names) / sizeof(char *)) {
        return -1;
    }

    list = loyalty_json_get(root, "multipliers", 11);
    n = 0;

    for (v = list ? list->child : NULL; v && n < LOYALTY_PROGRAM_MAX;
         v = v->next)
    {
        if (loyalty_json_match(v, &p->multipliers[n].kind,
                               &p->multipliers[n].value) != 0)
        {
            return -1;
        }

        p->multipliers[n++].factor = loyalty_json_int(v, "factor");
    }

    if (v != NULL) {
        return -1;    /* more than the program holds */
    }

    p->nmultipliers = n;

    list = loyalty_json_get(root, "campaigns", 9);
    n = 0;

    for (v = list ? list->child : NULL; v && n < LOYALTY_PROGRAM_MAX;
         v = v->next)
    {
        if (loyalty_json_str(v, "name", &p->campaigns[n].name) != 0) {
            return -1;
        }

        if (loyalty_json_match(v, &p->campaigns[n].kind,
                               &p->campaigns[n].value) != 0)
        {
            /* a scope that is not a string must not widen to every line */
            if (loyalty_json_scoped(v)) {
                return -1;
            }

            p->campaigns[n].kind = LOYALTY_ANY_LINE;
        }

        p->campaigns[n].factor = loyalty_json_int(v, "factor");
        p->campaigns[n].starts_at = loyalty_json_int(v, "starts_at");
        p->campaigns[n++].ends_at = loyalty_json_int(v, "ends_at");
    }

    if (v != NULL) {
        return -1;    /* more than the program holds */
    }

    p->ncampaigns = n;

    list = loyalty_json_get(root, "tiers", 5);
    n = 0;

    for (v = list ? list->child : NULL; v && n < LOYALTY_PROGRAM_MAX;
         v = v->next)
    {
        if (loyalty_json_str(v, "name", &p->tiers[n].name) != 0
            || loyalty_json_str(v, "perks", &p->tiers[n].perks) != 0)
        {
            return -1;
        }

        p->tiers[n].threshold = loyalty_json_int(v, "threshold");
        p->tiers[n++].factor = loyalty_json_int(v, "factor");
    }

    if (v != NULL) {
        return -1;    /* more than the program holds */
    }

    p->ntiers = n;

    p->return_window = loyalty_json_int(root, "return_window");
    p->points_expire = loyalty_json_int(root, "points_expire");
    p->expire_notice = loyalty_json_int(root, "expire_notice");
    p->tier_window = loyalty_json_int(root, "tier_window");
    p->tier_downgrade = (int) loyalty_json_int(root, "tier_downgrade");
    p->order_every = loyalty_json_int(root, "order_every");
    p->order_points = loyalty_json_int(root, "order_points");
    p->referrer_points = loyalty_json_int(root, "referrer_points");
    p->referred_points = loyalty_json_int(root, "referred_points");
    p->referral_limit = loyalty_json_int(root, "referral_limit");
    p->referral_period = loyalty_json_int(root, "referral_period");
    p->birthday_points = loyalty_json_int(root, "birthday_points");

    if (loyalty_json_str(root, "timezone", &p->timezone) != 0) {
        return -1;
    }

    return 0;
}


/* A whole number member; 0 when absent or not one. */

static int64_t
loyalty_json_int(const loyalty_json_t *obj, const char *key)
{
    size_t                 i;
    int64_t                n;
    int                    negative;
    const loyalty_json_t  *v;

    v = loyalty_json_get(obj, key, strlen(key));

    if (v == NULL || v->type != LOYALTY_JSON_NUMBER || v->len > 19) {
        return 0;
    }

    negative = (v->text[0] == '-');
    n = 0;

    for (i = negative; i < v->len; i++) {
        if (v->text[i] < '0' || v->text[i] > '9'
            || n > (INT64_MAX - (v->text[i] - '0')) / 10)
        {
            return 0;
        }

        n = n * 10 + (v->text[i] - '0');
    }

    return negative ? -n : n;
}


static int
loyalty_json_str(const loyalty_json_t *obj, const char *key,
    loyalty_str_t *out)
{
    const loyalty_json_t  *v;

    v = loyalty_json_get(obj, key, strlen(key));

    if (v == NULL || v->type != LOYALTY_JSON_STRING) {
        return -1;
    }

    out->data = v->text;
    out->len = v->len;

    return 0;
}


/* {"sku": "X"} or {"brand": ...} or {"category": ...} */

static int
loyalty_json_match(const loyalty_json_t *obj, int *kind, loyalty_str_t *value)
{
    int  k;

    for (k = 0; k < LOYALTY_MATCH_N; k++) {
        if (loyalty_json_str(obj, loyalty_match_keys[k], value) == 0) {
            *kind = k;
            return 0;
        }
    }

    return -1;
}


/* Whether an object names a line scope, whatever the value's type. */

static int
loyalty_json_scoped(const loyalty_json_t *obj)
{
    int  k;

    for (k = 0; k < LOYALTY_MATCH_N; k++) {
        if (loyalty_json_get(obj, loyalty_match_keys[k],
                             strlen(loyalty_match_keys[k])) != NULL)
        {
            return 1;
        }
    }

    return 0;
}
