/*
 * A visit of one account, decided in C: what the worker does when the
 * schedule says a customer is due (credit, birthday, expiry, reminders,
 * tier, statement), computed from the account as read.  Pure: no Redis,
 * so that the unit tests drive it alone.  account_apply.lua writes the
 * result, only if the account is still what was read.
 */

#ifndef WORKER_ACCOUNT_H
#define WORKER_ACCOUNT_H

#include <stddef.h>

#include "loyalty_json.h"
#include "loyalty_rules.h"
#include "loyalty_str.h"


#define WORKER_ACCOUNT_DELS    4    /* t, L, S, sf */
#define WORKER_ACCOUNT_EVENTS  6    /* one of each type a visit sends */


typedef struct {
    long long               now;
    loyalty_str_t           customer;
    long long               expire;     /* seconds a lot lives, 0 never */
    long long               notice;     /* seconds before expiry: reminder */
    const loyalty_tier_t   *tiers;      /* lowest first; none: no tiers */
    size_t                  ntiers;
    long long               window;     /* the tier window, seconds */
    int                     downgrade_one;
    const char             *month;      /* "YYYY-MM" in the shop's zone */
    const char             *today;      /* "MM-DD", or "02-28,02-29" */
    const char             *year;       /* "YYYY" */
    long long               birthday_points;
    loyalty_alloc_pt        alloc;      /* the result's memory */
    void                   *ctx;
} worker_account_conf_t;


typedef struct {
    loyalty_str_t  *set;        /* field, value, field, value, ... */
    size_t          nset;       /* pairs */
    loyalty_str_t   del[WORKER_ACCOUNT_DELS];
    size_t          ndel;
    loyalty_str_t  *entries;    /* the ledger's new entries, oldest first */
    size_t          nentries;
    loyalty_str_t   events[WORKER_ACCOUNT_EVENTS];
    size_t          nevents;    /* each "field\nvalue\nfield\nvalue..." */

    long long       next;       /* the earliest time something is due, 0
                                   for nothing but the monthly statement
                                   and the birthday */
    loyalty_str_t   birthday;   /* "MM-DD", or empty */
    loyalty_str_t   referral;   /* the code of a credited first order
                                   still to settle, and that order */
    loyalty_str_t   referral_order;

    /* for the program's totals */
    long long       issued;     /* made available */
    long long       credited;   /* pending points credited */
    long long       expired;
} worker_account_visit_t;


/*
 * The visit of the account whose HGETALL is fields[0..n) (field, value,
 * ...; n > 0), the ledger's newest entry `head` (empty for none).
 * Returns 0 with v filled, -1 with *why a static reason when the account
 * cannot be read, -2 when alloc ran out.
 */
int worker_account_visit(const worker_account_conf_t *conf,
    const loyalty_str_t *fields, size_t n, const loyalty_str_t *head,
    worker_account_visit_t *v, const char **why);

#endif /* WORKER_ACCOUNT_H */
