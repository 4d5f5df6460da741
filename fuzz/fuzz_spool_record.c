/*
 * The worker's spool record reader on any line.  A line it accepts must
 * hold only what nginx writes: ids that pass loyalty_id_check, 1 to 5
 * calls, each one of the confirmation's scripts with keys of the program,
 * or the events XADD; and every argument a string without NUL, since the
 * worker sends them as they are.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_alloc.h"
#include "loyalty_code.h"
#include "loyalty_keys.h"
#include "loyalty_script.h"
#include "worker_spool_record.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                     rc, j, nkeys;
    size_t                  i, bad;
    const char             *why;
    fuzz_alloc_t            a;
    worker_spool_call_t    *c;
    worker_spool_record_t   rec;

    memset(&a, 0, sizeof(a));
    a.max = 16 * size + 4096;           /* as the worker's arena */
    why = NULL;

    rc = worker_spool_record_read((const char *) data, size, fuzz_alloc, &a,
                                  &rec, &why);

    if (rc != 0) {
        FUZZ_CHECK((rc == -1 || rc == -2) && why != NULL);
        fuzz_alloc_free(&a);
        return 0;
    }

    FUZZ_CHECK(loyalty_id_check(rec.order, rec.order_len, LOYALTY_ID_MAX,
                                &bad) == LOYALTY_CODE_OK);
    FUZZ_CHECK(rec.customer_len == 0
               || loyalty_id_check(rec.customer, rec.customer_len,
                                   LOYALTY_ID_MAX, &bad) == LOYALTY_CODE_OK);
    FUZZ_CHECK(rec.ncalls >= 1 && rec.ncalls <= WORKER_SPOOL_CALLS_MAX);

    for (i = 0; i < rec.ncalls; i++) {
        c = &rec.calls[i];

        FUZZ_CHECK(c->argc >= 1 && c->argc <= WORKER_SPOOL_ARGS_MAX);

        for (j = 0; j < c->argc; j++) {
            FUZZ_CHECK(strlen(c->argv[j]) == c->argvlen[j]);
        }

        if (c->script == -1) {
            FUZZ_CHECK(strcmp(c->argv[0], "XADD") == 0);
            FUZZ_CHECK(strcmp(c->argv[1], LOYALTY_KEY_EVENTS) == 0);
            continue;
        }

        FUZZ_CHECK(c->script == LOYALTY_SCRIPT_order_claim
                   || c->script == LOYALTY_SCRIPT_order_record
                   || c->script == LOYALTY_SCRIPT_due_add
                   || c->script == LOYALTY_SCRIPT_coupon_commit);

        nkeys = atoi(c->argv[0]);
        FUZZ_CHECK(nkeys >= 0 && nkeys < c->argc);

        for (j = 1; j <= nkeys; j++) {
            FUZZ_CHECK(strncmp(c->argv[j], LOYALTY_KEY_PREFIX "{",
                               sizeof(LOYALTY_KEY_PREFIX)) == 0);
        }
    }

    fuzz_alloc_free(&a);

    return 0;
}
