/*
 * The visit of one account (worker_account.h): everything of one customer
 * that was waiting for a time.
 *
 *   credit     orders whose return window ended: pending -> available, a
 *              lot that expires points_expire later, lifetime, tier spend;
 *              a shortfall left by a return (sf) is paid from it first
 *   birthday   the birthday points, once a year
 *   expiry     lots whose time came: removed from available
 *   reminder   lots expiring within the notice, once per lot
 *   tier       recomputed over the rolling window; up at once, down in
 *              full or at most one level per window
 *   statement  once a month, unless the customer opted out
 *
 * Every step is decided by the account's own state, so a visit done twice
 * (a worker killed after it, two workers at once) changes nothing more.
 *
 * The account's fields are order_record.lua's (a, p, L, o:<order>, ...)
 * and: lt lifetime points credited, S tier spend "time:amount:order,..."
 * (credited orders in the window), tc when the tier last changed, xr the
 * latest expiry reminded, sm the month of the last statement, bd birthday
 * "MM-DD", by the year of the last birthday bonus, mo "1" when opted out
 * of marketing, rr a referral settled ("rewarded" or why not), sf points a
 * return could not claw back (order_return.lua).
 *
 * An order's record: state|points|due|basis|version|fingerprint|redeemed|
 * bonus|referral|coupon|returned, state P (pending), C (credited) or V
 * (voided); records from before coupons or returns end earlier.
 *
 * The ledger's entries are "seq\nat\ntype\npoints\npending\nref\ndetail"
 * without empty fields at the end, seq one more than the newest entry's.
 */

#include <string.h>

#include "worker_account.h"


#define RECORD_FIELDS  11

/* digits of a number read: sums over thousands of orders stay in range */
#define ACCOUNT_DIGITS_MAX  13


typedef struct {
    long long       expiry;             /* 0: never */
    long long       points;
} account_lot_t;


typedef struct {
    long long       at;
    long long       amount;
    loyalty_str_t   order;
} account_spend_t;


typedef struct {
    char           *data;
    size_t          len;
    size_t          size;
} account_text_t;


/* one visit under way */
typedef struct {
    const worker_account_conf_t  *conf;
    worker_account_visit_t       *v;
    const loyalty_str_t          *fields;
    const loyalty_str_t          *head;
    char                          now[LOYALTY_INT_TEXT_MAX + 1];
    size_t                        now_len;

    /* the account's fields the visit reads */
    loyalty_str_t   a_s, p_s, lt_s, sf_s, mo, L, S, t, tc_s, xr_s, sm, e,
                    bd, by, rr;

    long long       a, p, lt, debt, sf, tc, xr;
    int             opted_out;
    long long       seq;                /* the ledger's newest; -1 unread */
    long long       soonest;            /* 0: nothing */

    size_t         *orders;             /* indexes of the o: fields */
    size_t          norders;
    size_t         *credited;           /* of orders[] */
    size_t          ncredited;

    account_lot_t  *lots;
    size_t          nlots;
    account_spend_t  *spend;
    size_t          nspend;
    int             by_set;

    loyalty_str_t   tier_name, next_tier;
    long long       to_next;
} account_visit_t;


static int account_read(account_visit_t *av, size_t n);
static int account_lots(account_visit_t *av);
static int account_spend(account_visit_t *av);
static int account_credit(account_visit_t *av, const char **why);
static int account_birthday(account_visit_t *av);
static int account_expiry(account_visit_t *av);
static int account_tier(account_visit_t *av);
static int account_statement(account_visit_t *av);
static int account_write(account_visit_t *av);

static void account_split(const loyalty_str_t *record, loyalty_str_t *f);
static int account_cut(loyalty_str_t *s, char sep, loyalty_str_t *part);
static size_t account_count(const loyalty_str_t *s, char c);
static int account_number(const loyalty_str_t *s, long long *n);
static void account_sooner(account_visit_t *av, long long t);
static void account_lot_add(account_visit_t *av, long long points);
static int account_ledger(account_visit_t *av, const char *kind,
    long long points, long long pending, const loyalty_str_t *ref,
    const char *detail);
static int account_event(account_visit_t *av, const char *type,
    const loyalty_str_t *id_tail, const loyalty_str_t *pairs,
    size_t npairs);
static int account_set(account_visit_t *av, const char *field,
    const loyalty_str_t *value);
static int account_set_int(account_visit_t *av, const char *field,
    long long n);
static void account_del(account_visit_t *av, const char *field);

static int account_text(account_visit_t *av, account_text_t *t,
    size_t size);
static void account_put(account_text_t *t, const char *s, size_t len);
static void account_put_str(account_text_t *t, const loyalty_str_t *s);
static void account_put_int(account_text_t *t, long long n);
static loyalty_str_t account_int(account_visit_t *av, long long n);
static loyalty_str_t account_customer_id(account_visit_t *av,
    const char *what, size_t len);


#define account_cstr(s)  ((loyalty_str_t) { s, sizeof(s) - 1 })


int
worker_account_visit(const worker_account_conf_t *conf,
    const loyalty_str_t *fields, size_t n, const loyalty_str_t *head,
    worker_account_visit_t *v, const char **why)
{
    int              rc;
    account_visit_t  av;

    memset(v, 0, sizeof(*v));
    memset(&av, 0, sizeof(av));

    av.conf = conf;
    av.v = v;
    av.fields = fields;
    av.head = head;
    av.seq = -1;
    av.tier_name = account_cstr("");
    av.next_tier = account_cstr("");
    av.now_len = loyalty_str_int(av.now, conf->now);

    *why = "out of memory";

    rc = account_read(&av, n);

    if (rc == -1) {
        *why = "a field of the account is not what the module writes";
    }

    if (rc == 0) {
        rc = account_credit(&av, why);
    }

    if (rc == 0) {
        rc = account_birthday(&av);
    }

    if (rc == 0) {
        rc = account_expiry(&av);
    }

    if (rc == 0) {
        rc = account_tier(&av);
    }

    if (rc == 0) {
        rc = account_statement(&av);
    }

    if (rc == 0) {
        rc = account_write(&av);
    }

    v->next = av.soonest;

    return rc;
}


/* The fields the visit needs, and the arrays sized by them. */

static int
account_read(account_visit_t *av, size_t n)
{
    int                           rc;
    size_t                        i;
    const loyalty_str_t          *k, *val;
    const worker_account_conf_t  *conf = av->conf;

    av->orders = conf->alloc(conf->ctx, (n + 2) * sizeof(size_t));
    if (av->orders == NULL) {
        return -2;
    }

    av->credited = av->orders + n / 2 + 1;

    for (i = 0; i + 1 < n; i += 2) {
        k = &av->fields[i];
        val = &av->fields[i + 1];

        if (k->len > 2 && k->data[0] == 'o' && k->data[1] == ':') {
            av->orders[av->norders++] = i;
            continue;
        }

#define account_field(name, into)                                            \
        if (k->len == sizeof(name) - 1                                       \
            && memcmp(k->data, name, sizeof(name) - 1) == 0)                 \
        {                                                                    \
            av->into = *val;                                                 \
            continue;                                                        \
        }

        account_field("a", a_s)
        account_field("p", p_s)
        account_field("lt", lt_s)
        account_field("sf", sf_s)
        account_field("mo", mo)
        account_field("L", L)
        account_field("S", S)
        account_field("t", t)
        account_field("tc", tc_s)
        account_field("xr", xr_s)
        account_field("sm", sm)
        account_field("e", e)
        account_field("bd", bd)
        account_field("by", by)
        account_field("rr", rr)

#undef account_field
    }

    if ((av->a_s.data && account_number(&av->a_s, &av->a) != 0)
        || (av->p_s.data && account_number(&av->p_s, &av->p) != 0)
        || (av->lt_s.data && account_number(&av->lt_s, &av->lt) != 0)
        || (av->sf_s.data && account_number(&av->sf_s, &av->sf) != 0)
        || (av->xr_s.data && account_number(&av->xr_s, &av->xr) != 0)
        || (av->tc_s.data && account_number(&av->tc_s, &av->tc) != 0))
    {
        return -1;
    }

    av->debt = av->sf;
    av->opted_out = av->mo.len == 1 && av->mo.data[0] == '1';

    av->v->set = conf->alloc(conf->ctx,
                             2 * (av->norders + 12) * sizeof(loyalty_str_t));
    av->v->entries = conf->alloc(conf->ctx,
                                 (av->norders + 3) * sizeof(loyalty_str_t));

    if (av->v->set == NULL || av->v->entries == NULL) {
        return -2;
    }

    rc = account_lots(av);

    return rc != 0 ? rc : account_spend(av);
}


/* The lots, oldest first: "expiry:points,...". */

static int
account_lots(account_visit_t *av)
{
    loyalty_str_t                 rest, lot, expiry;
    const worker_account_conf_t  *conf = av->conf;

    /* a visit adds at most one lot, then merges into it */
    av->lots = conf->alloc(conf->ctx, (account_count(&av->L, ',') + 2)
                                      * sizeof(account_lot_t));
    if (av->lots == NULL) {
        return -2;
    }

    for (rest = av->L; rest.len; av->nlots++) {
        (void) account_cut(&rest, ',', &lot);

        if (account_cut(&lot, ':', &expiry) != 0
            || account_number(&expiry, &av->lots[av->nlots].expiry) != 0
            || account_number(&lot, &av->lots[av->nlots].points) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/* The tier spend: "time:amount:order,...", credited orders first. */

static int
account_spend(account_visit_t *av)
{
    loyalty_str_t                 rest, item, at, amount;
    account_spend_t              *s;
    const worker_account_conf_t  *conf = av->conf;

    av->spend = conf->alloc(conf->ctx,
                            (account_count(&av->S, ',') + av->norders + 1)
                            * sizeof(account_spend_t));
    if (av->spend == NULL) {
        return -2;
    }

    for (rest = av->S; rest.len; av->nspend++) {
        (void) account_cut(&rest, ',', &item);
        s = &av->spend[av->nspend];

        if (account_cut(&item, ':', &at) != 0
            || account_cut(&item, ':', &amount) != 0
            || account_number(&at, &s->at) != 0
            || account_number(&amount, &s->amount) != 0)
        {
            return -1;
        }

        s->order = item;
    }

    return 0;
}


/* Orders whose return window ended: their points made available. */

static int
account_credit(account_visit_t *av, const char **why)
{
    size_t                        i, j;
    long long                     points, due, basis, returned, lot, pay;
    loyalty_str_t                 f[RECORD_FIELDS + 1], id, value, pairs[6];
    loyalty_str_t                 orders;
    account_text_t                t;
    const loyalty_str_t          *key, *record;
    const worker_account_conf_t  *conf = av->conf;
    worker_account_visit_t       *v = av->v;

    for (i = 0; i < av->norders; i++) {
        key = &av->fields[av->orders[i]];
        record = key + 1;
        id.data = key->data + 2;
        id.len = key->len - 2;

        if (record->len == 0) {
            continue;
        }

        if (record->data[0] == 'C' && av->rr.data == NULL) {
            /* credited by a visit whose referral the worker did not
             * settle */
            account_split(record, f);

            if (f[9].len) {
                v->referral = f[9];
                v->referral_order = id;
            }

            continue;
        }

        if (record->data[0] != 'P') {
            continue;
        }

        account_split(record, f);

        if (account_number(&f[3], &due) != 0) {
            *why = "an order's due time is not a number";
            return -1;
        }

        if (due > conf->now) {
            account_sooner(av, due);
            continue;
        }

        basis = 0;

        if (account_number(&f[2], &points) != 0
            || (conf->ntiers && account_number(&f[4], &basis) != 0))
        {
            *why = "an order's points or basis is not a number";
            return -1;
        }

        /* what was returned before credit: its digits, 0 for none */
        returned = 0;
        for (j = 0; j < f[11].len && f[11].data[j] >= '0'
                    && f[11].data[j] <= '9'; j++)
        {
            if (j == ACCOUNT_DIGITS_MAX) {
                *why = "an order's returned amount is not a number";
                return -1;
            }

            returned = returned * 10 + (f[11].data[j] - '0');
        }

        if (account_text(av, &t, record->len) != 0) {
            return -2;
        }

        account_put(&t, "C", 1);
        account_put(&t, record->data + 1, record->len - 1);
        value.data = t.data;
        value.len = t.len;

        v->set[2 * v->nset] = *key;
        v->set[2 * v->nset + 1] = value;
        v->nset++;

        av->p -= points;
        av->a += points;
        av->lt += points;
        v->credited += points;
        av->credited[av->ncredited++] = i;

        /* a shortfall of a return after credit is paid first */
        lot = points;
        if (lot > 0 && av->debt > 0) {
            pay = av->debt < lot ? av->debt : lot;
            lot -= pay;
            av->debt -= pay;
            av->a -= pay;
        }

        if (lot > 0) {
            account_lot_add(av, lot);
        }

        v->issued += lot;

        if (account_ledger(av, "credit", lot, -points, &id, NULL) != 0) {
            return -2;
        }

        if (conf->ntiers && basis - returned > 0) {
            av->spend[av->nspend].at = conf->now;
            av->spend[av->nspend].amount = basis - returned;
            av->spend[av->nspend].order = id;
            av->nspend++;
        }

        if (f[9].len && av->rr.data == NULL) {
            v->referral = f[9];
            v->referral_order = id;
        }
    }

    if (av->ncredited == 0) {
        return 0;
    }

    j = 0;
    for (i = 0; i < av->ncredited; i++) {
        j += av->fields[av->orders[av->credited[i]]].len - 2 + 1;
    }

    if (account_text(av, &t, j) != 0) {
        return -2;
    }

    for (i = 0; i < av->ncredited; i++) {
        key = &av->fields[av->orders[av->credited[i]]];
        account_put(&t, ",", i ? 1 : 0);
        account_put(&t, key->data + 2, key->len - 2);
    }

    orders.data = t.data;
    orders.len = t.len;

    key = &av->fields[av->orders[av->credited[0]]];
    id.data = key->data + 2;
    id.len = key->len - 2;

    pairs[0] = account_cstr("orders");
    pairs[1] = orders;
    pairs[2] = account_cstr("points");
    pairs[3] = account_int(av, v->credited);
    pairs[4] = account_cstr("available");
    pairs[5] = account_int(av, av->a);

    return account_event(av, "points_credited", &id, pairs, 6);
}


/* The birthday points, once a year, on the day in the shop's zone. */

static int
account_birthday(account_visit_t *av)
{
    const char                   *d;
    size_t                        len;
    loyalty_str_t                 ref, year, tail, pairs[4];
    account_text_t                t;
    const worker_account_conf_t  *conf = av->conf;

    if (conf->birthday_points <= 0 || av->bd.data == NULL || av->bd.len == 0
        || (av->by.data && av->by.len == strlen(conf->year)
            && memcmp(av->by.data, conf->year, av->by.len) == 0))
    {
        return 0;
    }

    /* today is one day, or "02-28,02-29" */
    for (d = conf->today; *d; d += len + (d[len] == ',')) {
        len = strcspn(d, ",");

        if (len == av->bd.len && memcmp(d, av->bd.data, len) == 0) {
            break;
        }
    }

    if (*d == '\0') {
        return 0;
    }

    account_lot_add(av, conf->birthday_points);
    av->a += conf->birthday_points;
    av->lt += conf->birthday_points;
    av->v->issued += conf->birthday_points;

    year.data = conf->year;
    year.len = strlen(conf->year);

    if (account_set(av, "by", &year) != 0) {
        return -2;
    }

    av->by_set = 1;

    if (account_text(av, &t, sizeof("birthday:") + year.len) != 0) {
        return -2;
    }

    account_put(&t, "birthday:", sizeof("birthday:") - 1);
    account_put_str(&t, &year);
    ref.data = t.data;
    ref.len = t.len;

    if (account_ledger(av, "bonus", conf->birthday_points, 0, &ref,
                       "birthday")
        != 0)
    {
        return -2;
    }

    tail = account_customer_id(av, year.data, year.len);

    pairs[0] = account_cstr("points");
    pairs[1] = account_int(av, conf->birthday_points);
    pairs[2] = account_cstr("available");
    pairs[3] = account_int(av, av->a);

    return account_event(av, "birthday_bonus", &tail, pairs, 4);
}


/* Lots whose time came; the reminder of those soon to, once per lot. */

static int
account_expiry(account_visit_t *av)
{
    size_t                        i, kept;
    long long                     expired, expiring, first, last, expiry;
    loyalty_str_t                 tail, value, pairs[6];
    const worker_account_conf_t  *conf = av->conf;

    expired = expiring = first = last = 0;
    kept = 0;

    for (i = 0; i < av->nlots; i++) {
        expiry = av->lots[i].expiry;

        if (expiry != 0 && expiry <= conf->now) {
            expired += av->lots[i].points;
            continue;
        }

        av->lots[kept++] = av->lots[i];

        if (expiry == 0) {
            continue;
        }

        account_sooner(av, expiry);

        if (expiry > av->xr) {
            if (expiry - conf->notice <= conf->now) {
                expiring += av->lots[i].points;
                first = first == 0 || expiry < first ? expiry : first;
                last = expiry > last ? expiry : last;

            } else {
                account_sooner(av, expiry - conf->notice);
            }
        }
    }

    av->nlots = kept;
    av->v->expired = expired;

    if (expired > 0) {
        av->a -= expired;

        if (account_ledger(av, "expiry", -expired, 0, NULL, NULL) != 0) {
            return -2;
        }

        tail = account_customer_id(av, av->now, av->now_len);

        pairs[0] = account_cstr("points");
        pairs[1] = account_int(av, expired);
        pairs[2] = account_cstr("available");
        pairs[3] = account_int(av, av->a);

        if (account_event(av, "points_expired", &tail, pairs, 4) != 0) {
            return -2;
        }
    }

    if (expiring == 0) {
        return 0;
    }

    if (account_set_int(av, "xr", last) != 0) {
        return -2;
    }

    if (av->opted_out) {
        return 0;
    }

    value = account_int(av, last);

    tail = account_customer_id(av, value.data, value.len);

    pairs[0] = account_cstr("points");
    pairs[1] = account_int(av, expiring);
    pairs[2] = account_cstr("expires_at");
    pairs[3] = account_int(av, first);
    pairs[4] = account_cstr("available");
    pairs[5] = account_int(av, av->a);

    return account_event(av, "points_expiring", &tail, pairs, 6);
}


/* The tier over the rolling window: up at once, down as configured. */

static int
account_tier(account_visit_t *av)
{
    size_t                        i, kept, current, target, to;
    long long                     total;
    loyalty_str_t                 tail, pairs[6];
    const loyalty_tier_t         *tiers = av->conf->tiers;
    const worker_account_conf_t  *conf = av->conf;

    if (conf->ntiers == 0) {
        return 0;
    }

    total = 0;
    kept = 0;

    for (i = 0; i < av->nspend; i++) {
        if (av->spend[i].at > conf->now - conf->window) {
            av->spend[kept++] = av->spend[i];
            total += av->spend[i].amount;
            account_sooner(av, av->spend[i].at + conf->window);
        }
    }

    av->nspend = kept;

    current = 0;
    target = 0;

    for (i = 0; i < conf->ntiers; i++) {
        if (av->t.data && loyalty_str_eq(&tiers[i].name, &av->t)) {
            current = i;
        }

        if (total >= tiers[i].threshold) {
            target = i;
        }
    }

    to = target;

    if (target < current && conf->downgrade_one) {
        if (conf->now >= av->tc + conf->window) {
            to = current - 1;

        } else {
            to = current;
            account_sooner(av, av->tc + conf->window);
        }
    }

    if (to != current) {
        if (to == 0) {
            account_del(av, "t");

        } else if (account_set(av, "t", &tiers[to].name) != 0) {
            return -2;
        }

        if (account_set_int(av, "tc", conf->now) != 0) {
            return -2;
        }

        tail = account_customer_id(av, av->now, av->now_len);

        pairs[0] = account_cstr("from");
        pairs[1] = tiers[current].name;
        pairs[2] = account_cstr("to");
        pairs[3] = tiers[to].name;
        pairs[4] = account_cstr("direction");
        pairs[5] = to > current ? account_cstr("up") : account_cstr("down");

        if (account_event(av, "tier_changed", &tail, pairs, 6) != 0) {
            return -2;
        }

        if (to > target) {
            account_sooner(av, conf->now + conf->window);
        }
    }

    av->tier_name = tiers[to].name;

    if (to + 1 < conf->ntiers) {
        av->next_tier = tiers[to + 1].name;
        av->to_next = tiers[to + 1].threshold > total
                      ? tiers[to + 1].threshold - total : 0;
    }

    return 0;
}


/* The monthly statement: from the first month after the first visit. */

static int
account_statement(account_visit_t *av)
{
    size_t                        i, mlen;
    long long                     soon, soon_at;
    loyalty_str_t                 month, tail, pairs[14];
    const worker_account_conf_t  *conf = av->conf;

    mlen = strlen(conf->month);

    if (mlen == 0 || av->e.data == NULL) {
        return 0;
    }

    month.data = conf->month;
    month.len = mlen;

    if (av->sm.data == NULL) {
        return account_set(av, "sm", &month) != 0 ? -2 : 0;
    }

    if (loyalty_str_eq(&av->sm, &month) || av->opted_out) {
        return 0;
    }

    soon = soon_at = 0;

    for (i = 0; i < av->nlots; i++) {
        if (av->lots[i].expiry != 0
            && av->lots[i].expiry - conf->notice <= conf->now)
        {
            soon += av->lots[i].points;
            soon_at = soon_at == 0 || av->lots[i].expiry < soon_at
                      ? av->lots[i].expiry : soon_at;
        }
    }

    if (account_set(av, "sm", &month) != 0) {
        return -2;
    }

    tail = account_customer_id(av, month.data, month.len);

    pairs[0] = account_cstr("month");
    pairs[1] = month;
    pairs[2] = account_cstr("available");
    pairs[3] = account_int(av, av->a);
    pairs[4] = account_cstr("pending");
    pairs[5] = account_int(av, av->p);
    pairs[6] = account_cstr("expiring_soon");
    pairs[7] = account_int(av, soon);
    pairs[8] = account_cstr("expiring_at");
    pairs[9] = soon_at ? account_int(av, soon_at) : account_cstr("");
    pairs[10] = account_cstr("tier");
    pairs[11] = av->tier_name;
    pairs[12] = account_cstr("next_tier");
    pairs[13] = av->next_tier;

    /* to_next_tier follows the fourteen */
    return account_event(av, "monthly_statement", &tail, pairs, 14);
}


/* The account's new fields: lots, spend, shortfall, balances. */

static int
account_write(account_visit_t *av)
{
    size_t           i, size;
    loyalty_str_t    value;
    account_text_t   t;

    if (av->nlots > 0) {
        if (account_text(av, &t, av->nlots * (2 * LOYALTY_INT_TEXT_MAX + 2))
            != 0)
        {
            return -2;
        }

        for (i = 0; i < av->nlots; i++) {
            account_put(&t, ",", i ? 1 : 0);
            account_put_int(&t, av->lots[i].expiry);
            account_put(&t, ":", 1);
            account_put_int(&t, av->lots[i].points);
        }

        value.data = t.data;
        value.len = t.len;

        if (!(av->L.data && loyalty_str_eq(&av->L, &value))
            && account_set(av, "L", &value) != 0)
        {
            return -2;
        }

    } else if (av->L.data) {
        account_del(av, "L");
    }

    if (av->conf->ntiers) {
        if (av->nspend > 0) {
            size = 0;
            for (i = 0; i < av->nspend; i++) {
                size += 2 * LOYALTY_INT_TEXT_MAX + 3
                        + av->spend[i].order.len;
            }

            if (account_text(av, &t, size) != 0) {
                return -2;
            }

            for (i = 0; i < av->nspend; i++) {
                account_put(&t, ",", i ? 1 : 0);
                account_put_int(&t, av->spend[i].at);
                account_put(&t, ":", 1);
                account_put_int(&t, av->spend[i].amount);
                account_put(&t, ":", 1);
                account_put_str(&t, &av->spend[i].order);
            }

            value.data = t.data;
            value.len = t.len;

            if (!(av->S.data && loyalty_str_eq(&av->S, &value))
                && account_set(av, "S", &value) != 0)
            {
                return -2;
            }

        } else if (av->S.data) {
            account_del(av, "S");
        }
    }

    if (av->debt != av->sf) {
        if (av->debt > 0) {
            if (account_set_int(av, "sf", av->debt) != 0) {
                return -2;
            }

        } else {
            account_del(av, "sf");
        }
    }

    if (av->ncredited > 0 || av->v->expired > 0 || av->by_set) {
        if (account_set_int(av, "a", av->a) != 0
            || account_set_int(av, "p", av->p) != 0
            || account_set_int(av, "lt", av->lt) != 0)
        {
            return -2;
        }
    }

    if (av->bd.data && av->bd.len) {
        av->v->birthday = av->bd;
    }

    return 0;
}


/*
 * A record's fields: f[1] the state .. f[11] returned; those a record
 * does not have are empty.
 */

static void
account_split(const loyalty_str_t *record, loyalty_str_t *f)
{
    int            more;
    size_t         i;
    loyalty_str_t  rest;

    rest = *record;
    more = 1;

    for (i = 1; i <= RECORD_FIELDS; i++) {
        if (!more) {
            f[i].data = "";
            f[i].len = 0;
            continue;
        }

        more = account_cut(&rest, '|', &f[i]) == 0;
    }
}


/*
 * The part of s before sep, and s moved past it: 0, or -1 when s has no
 * sep (the part is then all of s, and s is left empty).
 */

static int
account_cut(loyalty_str_t *s, char sep, loyalty_str_t *part)
{
    const char  *p;

    p = memchr(s->data, sep, s->len);
    part->data = s->data;
    part->len = p ? (size_t) (p - s->data) : s->len;
    s->data += part->len + (p != NULL);
    s->len -= part->len + (p != NULL);

    return p ? 0 : -1;
}


static size_t
account_count(const loyalty_str_t *s, char c)
{
    size_t  i, n;

    for (i = 0, n = 0; i < s->len; i++) {
        n += s->data[i] == c;
    }

    return n;
}


/* A decimal integer, '-' allowed, of at most ACCOUNT_DIGITS_MAX digits:
 * what the scripts write. */

static int
account_number(const loyalty_str_t *s, long long *n)
{
    size_t     i;
    int        neg;
    long long  v;

    neg = s->len > 0 && s->data[0] == '-';
    i = (size_t) neg;

    if (i == s->len || s->len - i > ACCOUNT_DIGITS_MAX) {
        return -1;
    }

    v = 0;
    for ( /* void */ ; i < s->len; i++) {
        if (s->data[i] < '0' || s->data[i] > '9') {
            return -1;
        }

        v = v * 10 + (s->data[i] - '0');
    }

    *n = neg ? -v : v;

    return 0;
}


static void
account_sooner(account_visit_t *av, long long t)
{
    if (av->soonest == 0 || t < av->soonest) {
        av->soonest = t;
    }
}


/* What one visit makes available expires at one time: one lot for it. */

static void
account_lot_add(account_visit_t *av, long long points)
{
    long long  expiry;

    expiry = av->conf->expire > 0 ? av->conf->now + av->conf->expire : 0;

    if (av->nlots > 0 && av->lots[av->nlots - 1].expiry == expiry) {
        av->lots[av->nlots - 1].points += points;
        return;
    }

    av->lots[av->nlots].expiry = expiry;
    av->lots[av->nlots].points = points;
    av->nlots++;
}


static int
account_ledger(account_visit_t *av, const char *kind, long long points,
    long long pending, const loyalty_str_t *ref, const char *detail)
{
    size_t          i, size;
    account_text_t  t;

    if (av->seq < 0) {
        av->seq = 0;

        for (i = 0; i < av->head->len && i < 18 && av->head->data[i] >= '0'
                    && av->head->data[i] <= '9'; i++)
        {
            av->seq = av->seq * 10 + (av->head->data[i] - '0');
        }
    }

    av->seq++;

    size = 3 * LOYALTY_INT_TEXT_MAX + av->now_len + strlen(kind) + 8
           + (ref ? ref->len : 0) + (detail ? strlen(detail) : 0);

    if (account_text(av, &t, size) != 0) {
        return -2;
    }

    account_put_int(&t, av->seq);
    account_put(&t, "\n", 1);
    account_put(&t, av->now, av->now_len);
    account_put(&t, "\n", 1);
    account_put(&t, kind, strlen(kind));
    account_put(&t, "\n", 1);
    account_put_int(&t, points);
    account_put(&t, "\n", 1);
    account_put_int(&t, pending);

    if (ref) {
        account_put(&t, "\n", 1);
        account_put_str(&t, ref);

        if (detail) {
            account_put(&t, "\n", 1);
            account_put(&t, detail, strlen(detail));
        }
    }

    av->v->entries[av->v->nentries].data = t.data;
    av->v->entries[av->v->nentries].len = t.len;
    av->v->nentries++;

    return 0;
}


/*
 * An event: type, id "<type>:<id_tail>", customer, at, then the pairs;
 * the monthly statement ends with to_next_tier.
 */

static int
account_event(account_visit_t *av, const char *type,
    const loyalty_str_t *id_tail, const loyalty_str_t *pairs, size_t npairs)
{
    int                           statement;
    size_t                        i, size, tlen;
    account_text_t                t;
    const worker_account_conf_t  *conf = av->conf;

    if (id_tail->data == NULL) {
        return -2;
    }

    tlen = strlen(type);
    statement = strcmp(type, "monthly_statement") == 0;

    size = 2 * tlen + id_tail->len + conf->customer.len + av->now_len
           + sizeof("type\n\nid\n:\ncustomer\n\nat\n")
           + (statement ? sizeof("\nto_next_tier\n") + LOYALTY_INT_TEXT_MAX
                        : 0);

    for (i = 0; i < npairs; i++) {
        if (pairs[i].data == NULL) {
            return -2;
        }

        size += pairs[i].len + 1;
    }

    if (account_text(av, &t, size) != 0) {
        return -2;
    }

    account_put(&t, "type\n", 5);
    account_put(&t, type, tlen);
    account_put(&t, "\nid\n", 4);
    account_put(&t, type, tlen);
    account_put(&t, ":", 1);
    account_put_str(&t, id_tail);
    account_put(&t, "\ncustomer\n", 10);
    account_put_str(&t, &conf->customer);
    account_put(&t, "\nat\n", 4);
    account_put(&t, av->now, av->now_len);

    for (i = 0; i < npairs; i++) {
        account_put(&t, "\n", 1);
        account_put_str(&t, &pairs[i]);
    }

    if (statement) {
        account_put(&t, "\nto_next_tier\n", 14);
        account_put_int(&t, av->to_next);
    }

    av->v->events[av->v->nevents].data = t.data;
    av->v->events[av->v->nevents].len = t.len;
    av->v->nevents++;

    return 0;
}


static int
account_set(account_visit_t *av, const char *field,
    const loyalty_str_t *value)
{
    worker_account_visit_t  *v = av->v;

    if (value->data == NULL) {
        return -2;
    }

    v->set[2 * v->nset].data = field;
    v->set[2 * v->nset].len = strlen(field);
    v->set[2 * v->nset + 1] = *value;
    v->nset++;

    return 0;
}


static int
account_set_int(account_visit_t *av, const char *field, long long n)
{
    loyalty_str_t  value;

    value = account_int(av, n);

    return account_set(av, field, &value);
}


static void
account_del(account_visit_t *av, const char *field)
{
    av->v->del[av->v->ndel].data = field;
    av->v->del[av->v->ndel].len = strlen(field);
    av->v->ndel++;
}


/* room for one string of the result, at most size bytes */

static int
account_text(account_visit_t *av, account_text_t *t, size_t size)
{
    t->data = av->conf->alloc(av->conf->ctx, size ? size : 1);
    t->len = 0;
    t->size = size;

    return t->data == NULL ? -2 : 0;
}


static void
account_put(account_text_t *t, const char *s, size_t len)
{
    if (len > t->size - t->len) {
        len = t->size - t->len;     /* the sizes above make this dead */
    }

    memcpy(t->data + t->len, s, len);
    t->len += len;
}


static void
account_put_str(account_text_t *t, const loyalty_str_t *s)
{
    account_put(t, s->data, s->len);
}


static void
account_put_int(account_text_t *t, long long n)
{
    char    buf[LOYALTY_INT_TEXT_MAX];
    size_t  len;

    len = loyalty_str_int(buf, n);
    account_put(t, buf, len);
}


/* "<customer>:<what>", the tail of most events' ids; data NULL when
 * memory ran out */

static loyalty_str_t
account_customer_id(account_visit_t *av, const char *what, size_t len)
{
    loyalty_str_t   s;
    account_text_t  t;

    s.data = NULL;
    s.len = 0;

    if (what == NULL
        || account_text(av, &t, av->conf->customer.len + 1 + len) != 0)
    {
        return s;
    }

    account_put_str(&t, &av->conf->customer);
    account_put(&t, ":", 1);
    account_put(&t, what, len);
    s.data = t.data;
    s.len = t.len;

    return s;
}


/* n in decimal, in the result's memory; data NULL when it ran out */

static loyalty_str_t
account_int(account_visit_t *av, long long n)
{
    loyalty_str_t   s;
    account_text_t  t;

    if (account_text(av, &t, LOYALTY_INT_TEXT_MAX) != 0) {
        s.data = NULL;
        s.len = 0;
        return s;
    }

    account_put_int(&t, n);
    s.data = t.data;
    s.len = t.len;

    return s;
}
