/*
 * The worker's visit of one account (worker/worker_account.c) on any
 * account: what Redis holds is written by the scripts, but a worker that
 * crashes on one account it cannot read stops crediting everyone.  The
 * input is the account's HGETALL, one field or value per line; its first
 * byte picks the program (tiers, downgrade, birthday points, expiry).
 * Every string the visit writes has its own malloc(), so AddressSanitizer
 * sees its bounds.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_alloc.h"
#include "worker_account.h"


#define FIELDS_MAX  4096


static int
lines(const loyalty_str_t *s, size_t n)
{
    size_t  i, nl;

    for (i = 0, nl = 0; i < n; i++) {
        nl += memchr(s[i].data, '\n', s[i].len) != NULL;
    }

    return (int) nl;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                      rc;
    size_t                   i, n, parts;
    const char              *p, *end, *nl, *why;
    fuzz_alloc_t             a;
    loyalty_str_t            head;
    loyalty_tier_t           tiers[3];
    worker_account_conf_t    conf;
    worker_account_visit_t   v;
    static loyalty_str_t     fields[FIELDS_MAX];

    if (size == 0) {
        return 0;
    }

    memset(&conf, 0, sizeof(conf));
    memset(tiers, 0, sizeof(tiers));

    tiers[0].name.data = "member";
    tiers[0].name.len = 6;
    tiers[1].name.data = "silver";
    tiers[1].name.len = 6;
    tiers[1].threshold = 10000;
    tiers[2].name.data = "gold";
    tiers[2].name.len = 4;
    tiers[2].threshold = 50000;

    conf.now = 1800000000;
    conf.customer.data = "c-1";
    conf.customer.len = 3;
    conf.expire = (data[0] & 1) ? 31536000 : 0;
    conf.notice = 1209600;
    conf.tiers = (data[0] & 2) ? tiers : NULL;
    conf.ntiers = (data[0] & 2) ? 3 : 0;
    conf.window = 31536000;
    conf.downgrade_one = (data[0] & 4) != 0;
    conf.month = (data[0] & 8) ? "2027-01" : "";
    conf.today = (data[0] & 16) ? "02-28,02-29" : "01-15";
    conf.year = "2027";
    conf.birthday_points = (data[0] & 32) ? 100 : 0;
    conf.alloc = fuzz_alloc;

    memset(&a, 0, sizeof(a));
    a.max = (data[0] & 64) ? 512 : 64 * size + 65536;
    conf.ctx = &a;

    /* the ledger's newest entry, then the fields, one per line */
    p = (const char *) data + 1;
    end = (const char *) data + size;
    head.data = "";
    head.len = 0;
    n = 0;

    for (parts = 0; p < end && n < FIELDS_MAX; parts++) {
        nl = memchr(p, '\n', (size_t) (end - p));
        if (nl == NULL) {
            nl = end;
        }

        if (parts == 0) {
            head.data = p;
            head.len = (size_t) (nl - p);

        } else {
            fields[n].data = p;
            fields[n].len = (size_t) (nl - p);
            n++;
        }

        p = nl + 1;
    }

    n -= n % 2;

    if (n == 0) {
        return 0;
    }

    rc = worker_account_visit(&conf, fields, n, &head, &v, &why);

    if (rc != 0) {
        FUZZ_CHECK((rc == -1 || rc == -2) && why != NULL);
        fuzz_alloc_free(&a);
        return 0;
    }

    FUZZ_CHECK(v.ndel <= WORKER_ACCOUNT_DELS);
    FUZZ_CHECK(v.nevents <= WORKER_ACCOUNT_EVENTS);
    FUZZ_CHECK(v.nentries <= n / 2 + 2);
    FUZZ_CHECK(v.nset <= n / 2 + 12);
    FUZZ_CHECK(v.next >= 0);

    for (i = 0; i < 2 * v.nset; i++) {
        FUZZ_CHECK(v.set[i].data != NULL);
    }

    /* a field the visit writes is one it knows, or an order's record */
    for (i = 0; i < v.nset; i++) {
        FUZZ_CHECK(v.set[2 * i].len > 0 && v.set[2 * i].len <= 2
                   || (v.set[2 * i].len > 2
                       && memcmp(v.set[2 * i].data, "o:", 2) == 0));
    }

    /* an event is "field\nvalue..." with fields and values in pairs,
     * unless a value read from the account holds a newline */
    for (i = 0; i < v.nevents; i++) {
        FUZZ_CHECK(v.events[i].len > 0);
        FUZZ_CHECK(memcmp(v.events[i].data, "type\n", 5) == 0);
    }

    /* no value written holds a newline the account did not have */
    if (lines(fields, n) == 0) {
        for (i = 0; i < 2 * v.nset; i++) {
            FUZZ_CHECK(memchr(v.set[i].data, '\n', v.set[i].len) == NULL);
        }
    }

    fuzz_alloc_free(&a);

    return 0;
}
