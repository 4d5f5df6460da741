/*
 * Reading a spool line.  The spool is a file on local disk that anything
 * with write access to the directory could add lines to, and a line the
 * worker replays runs with the worker's Redis rights; so a line is taken
 * only when every part of it is what the module writes:
 *
 *   {"v":1,"at":T,"order":"O","customer":"C","calls":[CALL,...]}
 *
 * where a CALL is {"script":NAME,"argv":[...]} for one of the scripts a
 * confirmation runs, or {"command":["XADD","loyalty:{events}",...]}, the
 * points_earned event.  Nothing else is sent to Redis.
 */

#include <string.h>

#include "loyalty_code.h"
#include "loyalty_keys.h"
#include "loyalty_script.h"
#include "worker_spool_record.h"


static int worker_spool_record_call(const loyalty_json_t *v,
    worker_spool_call_t *call, const char **why);
static int worker_spool_record_args(const loyalty_json_t *args, int max,
    worker_spool_call_t *call, const char **why);
static int worker_spool_record_id(const loyalty_json_t *v, int empty,
    const char **text, size_t *len);


/* what a confirmation may leave in the spool (ngx_http_loyalty_confirm.c) */
static const int  worker_spool_scripts[] = {
    LOYALTY_SCRIPT_order_claim,
    LOYALTY_SCRIPT_order_record,
    LOYALTY_SCRIPT_due_add,
    LOYALTY_SCRIPT_coupon_commit
};


int
worker_spool_record_read(const char *line, size_t len,
    loyalty_alloc_pt alloc, void *ctx, worker_spool_record_t *rec,
    const char **why)
{
    int                     seen;
    loyalty_json_t         *root;
    loyalty_json_error_t    err;
    loyalty_json_limits_t   limits;
    const loyalty_json_t   *m, *c;

    memset(rec, 0, sizeof(worker_spool_record_t));

    if (len > WORKER_SPOOL_LINE_MAX) {
        *why = "the line is too long";
        return -1;
    }

    /* root, calls, a call, its arguments */
    limits.alloc = alloc;
    limits.ctx = ctx;
    limits.max_depth = 4;
    limits.max_values = 8 + WORKER_SPOOL_CALLS_MAX
                            * (3 + WORKER_SPOOL_ARGS_MAX);
    limits.max_members = 5;
    limits.max_string = len;

    root = loyalty_json_parse(line, len, &limits, &err);

    if (root == NULL) {
        *why = (err.reason == NULL) ? "out of memory" : "not valid JSON";
        return (err.reason == NULL) ? -2 : -1;
    }

    if (root->type != LOYALTY_JSON_OBJECT) {
        *why = "not an object";
        return -1;
    }

    seen = 0;

    for (m = root->child; m != NULL; m = m->next) {

        if (m->key_len == 1 && memcmp(m->key, "v", 1) == 0) {
            if (m->type != LOYALTY_JSON_NUMBER || strcmp(m->text, "1") != 0) {
                *why = "\"v\" is not 1";
                return -1;
            }

            seen |= 1;

        } else if (m->key_len == 2 && memcmp(m->key, "at", 2) == 0) {
            if (m->type != LOYALTY_JSON_NUMBER) {
                *why = "\"at\" is not a number";
                return -1;
            }

            seen |= 2;

        } else if (m->key_len == 5 && memcmp(m->key, "order", 5) == 0) {
            if (worker_spool_record_id(m, 0, &rec->order, &rec->order_len)
                != 0)
            {
                *why = "\"order\" is not an order id";
                return -1;
            }

            seen |= 4;

        } else if (m->key_len == 8 && memcmp(m->key, "customer", 8) == 0) {
            if (worker_spool_record_id(m, 1, &rec->customer,
                                       &rec->customer_len)
                != 0)
            {
                *why = "\"customer\" is not a customer id";
                return -1;
            }

            seen |= 8;

        } else if (m->key_len == 5 && memcmp(m->key, "calls", 5) == 0) {
            if (m->type != LOYALTY_JSON_ARRAY || m->count == 0
                || m->count > WORKER_SPOOL_CALLS_MAX)
            {
                *why = "\"calls\" is not a list of 1 to 5 calls";
                return -1;
            }

            for (c = m->child; c != NULL; c = c->next) {
                if (worker_spool_record_call(c, &rec->calls[rec->ncalls++],
                                             why)
                    != 0)
                {
                    return -1;
                }
            }

            seen |= 16;

        } else {
            *why = "an unknown member";
            return -1;
        }
    }

    if (seen != 31) {
        *why = "a member is missing";
        return -1;
    }

    return 0;
}


static int
worker_spool_record_call(const loyalty_json_t *v, worker_spool_call_t *call,
    const char **why)
{
    size_t                 i;
    const loyalty_json_t  *script, *args;

    call->script = -1;

    if (v->type != LOYALTY_JSON_OBJECT) {
        *why = "a call is not an object";
        return -1;
    }

    script = loyalty_json_get(v, "script", 6);

    if (script == NULL) {
        args = loyalty_json_get(v, "command", 7);

        if (args == NULL || v->count != 1) {
            *why = "a call is malformed";
            return -1;
        }

        if (worker_spool_record_args(args, 20, call, why) != 0) {
            return -1;
        }

        /* the one command the module spools: the points_earned event */
        if (call->argc < 4 || strcmp(call->argv[0], "XADD") != 0
            || strcmp(call->argv[1], LOYALTY_KEY_EVENTS) != 0)
        {
            *why = "a command other than the events XADD";
            return -1;
        }

        return 0;
    }

    args = loyalty_json_get(v, "argv", 4);

    if (args == NULL || v->count != 2 || script->type != LOYALTY_JSON_STRING) {
        *why = "a script call is malformed";
        return -1;
    }

    for (i = 0; i < sizeof(worker_spool_scripts) / sizeof(int); i++) {
        if (strcmp(loyalty_scripts[worker_spool_scripts[i]].name,
                   script->text) == 0)
        {
            call->script = worker_spool_scripts[i];
            break;
        }
    }

    if (call->script == -1) {
        *why = "a script a confirmation does not run";
        return -1;
    }

    return worker_spool_record_args(args, WORKER_SPOOL_ARGS_MAX, call, why);
}


/*
 * The arguments: strings.  For a script, the first is the number of keys
 * and each key is one of ours.
 */

static int
worker_spool_record_args(const loyalty_json_t *args, int max,
    worker_spool_call_t *call, const char **why)
{
    int                    i, nkeys;
    const loyalty_json_t  *a;

    if (args->type != LOYALTY_JSON_ARRAY || args->count == 0
        || args->count > (size_t) max)
    {
        *why = "arguments are not a list of the right length";
        return -1;
    }

    for (a = args->child; a != NULL; a = a->next) {
        if (a->type != LOYALTY_JSON_STRING) {
            *why = "an argument is not a string";
            return -1;
        }

        call->argv[call->argc] = a->text;
        call->argvlen[call->argc++] = a->len;
    }

    if (call->script == -1) {
        return 0;
    }

    nkeys = 0;

    for (i = 0; i < (int) call->argvlen[0]; i++) {
        if (call->argv[0][i] < '0' || call->argv[0][i] > '9' || i >= 2) {
            *why = "the number of keys is not a number";
            return -1;
        }

        nkeys = nkeys * 10 + call->argv[0][i] - '0';
    }

    if (call->argvlen[0] == 0 || nkeys >= call->argc) {
        *why = "the number of keys is not a number of the arguments";
        return -1;
    }

    for (i = 1; i <= nkeys; i++) {
        if (call->argvlen[i] <= sizeof(LOYALTY_KEY_PREFIX "{") - 1
            || memcmp(call->argv[i], LOYALTY_KEY_PREFIX "{",
                      sizeof(LOYALTY_KEY_PREFIX "{") - 1) != 0)
        {
            *why = "a key is not one of the program's";
            return -1;
        }
    }

    return 0;
}


/* An order or customer id as the module checked it (loyalty_id_check). */

static int
worker_spool_record_id(const loyalty_json_t *v, int empty, const char **text,
    size_t *len)
{
    size_t  bad;

    if (v->type != LOYALTY_JSON_STRING) {
        return -1;
    }

    if (!(empty && v->len == 0)
        && loyalty_id_check(v->text, v->len, LOYALTY_ID_MAX, &bad)
           != LOYALTY_CODE_OK)
    {
        return -1;
    }

    *text = v->text;
    *len = v->len;

    return 0;
}
