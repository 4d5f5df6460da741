/*
 * Visits: what waits for a time.  The schedule, loyalty:{due:S} for each
 * shard S, says when each customer next needs the worker (an order's
 * return window ends, a lot expires, a reminder, a tier drops, the monthly
 * statement, a birthday).  A pass takes every customer due now, in
 * batches, and for each:
 *
 *   1. the account is read, what is due decided in C (worker_account.c),
 *      and account_apply.lua writes it, with the events into the
 *      account's outbox, only if the account is still what was read
 *      (otherwise it is read again);
 *   2. the outbox goes to the events stream, then is emptied;
 *   3. due_next.lua moves the customer's entry to the next time, unless
 *      nginx touched it meanwhile (then the customer is visited again):
 *      one call for the whole batch;
 *   4. a referred customer's first order credited: the referral is
 *      settled (referral_settle.lua) and both sides paid, each once.
 *
 * A worker killed between the steps leaves the entry due: the next visit
 * finds the work done, sends the outbox again (consumers dedupe by event
 * id) and moves on.  A shard is worked by one worker at a time, under a
 * lease that the worker renews every batch and loses when it dies.
 *
 * The worker follows the program nginx published to loyalty:{program}.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loyalty_json.h"
#include "loyalty_keys.h"
#include "loyalty_rules.h"
#include "loyalty_script.h"
#include "loyalty_worker.h"
#include "worker_account.h"


#define VISIT_TRIES    5        /* reads of an account that keeps changing */
#define VISIT_SEND     32       /* visits decided between two sends */
#define VISIT_ARENA_MAX  (256 * 1024 * 1024)  /* for one account's visit */
#define EVENT_FIELDS   64       /* fields and values of one event */


struct worker_program_s {
    char                version[64];
    worker_arena_t      arena;
    char               *json;
    loyalty_program_t   p;
    char                expire[24];
};


/* the shop's calendar at the time of a pass */
typedef struct {
    long long           now;
    char                now_text[24];
    char                month[16];      /* "2026-11" */
    char                today[16];      /* "11-27", or "02-28,02-29" */
    char                year[8];
    long long           next_month;     /* unix time the next one starts */
    int                 year_number;
} worker_calendar_t;


typedef struct {
    int                 visited;
    int                 events;
} worker_tally_t;


/* one customer of a batch */
typedef struct {
    redisReply             *account;    /* HGETALL */
    redisReply             *head;       /* the ledger's newest entry */
    redisReply             *applied;    /* account_apply.lua's answer */
    worker_arena_t          arena;      /* the visit's strings */
    worker_account_visit_t  v;
    char                   *referral;   /* v's, NUL-terminated */
    char                   *referral_order;
    int                     state;      /* VISIT_* */
} worker_visit_one_t;


enum {
    VISIT_READ = 0,     /* to read (again) */
    VISIT_APPLY,        /* decided, to write */
    VISIT_DONE,         /* written */
    VISIT_GONE,         /* no account: its outbox sent, its entry gone */
    VISIT_FAILED        /* left due for the next pass */
};


static int program_load(worker_t *w);
static void calendar(worker_calendar_t *cal, long long now);
static long long next_birthday(const worker_calendar_t *cal,
    const char *bd);
static int visit_shard(worker_t *w, unsigned shard,
    const worker_calendar_t *cal, worker_tally_t *tally);
static int shard_lease(worker_t *w, const char *lease, long ms);
static int visit_batch(worker_t *w, const char *due, redisReply *entries,
    const worker_calendar_t *cal, worker_tally_t *tally);
static void visit_read(worker_t *w, redisReply *entries,
    worker_visit_one_t *visits, size_t n);
static int visit_got(worker_t *w, redisReply *customer,
    worker_visit_one_t *one);
static int visit_decide(worker_t *w, redisReply *customer,
    worker_visit_one_t *one, const worker_calendar_t *cal);
static int visit_decide_in(worker_visit_one_t *one,
    const worker_account_conf_t *conf, const loyalty_str_t *head,
    const char **why);
static int visit_apply(worker_t *w, redisReply *entries,
    worker_visit_one_t *visits, size_t n, const worker_calendar_t *cal);
static void visit_reset(worker_visit_one_t *one);
static int visit_events(worker_t *w, worker_visit_one_t *one,
    const char **argv, size_t *argvlen);
static int settle_referral(worker_t *w, redisReply *customer,
    const char *code, const char *order, const worker_calendar_t *cal);
static int count_visits(worker_t *w, worker_visit_one_t *visits, size_t n);
static int give_bonus(worker_t *w, const char *customer, size_t len,
    const char *id, long long points, const char *rr, const char *type,
    const char *role, const char *other, size_t other_len,
    const char *order, const worker_calendar_t *cal);
static int leap(int year);


/*
 * One pass over every shard.  Returns 0, or -1 when Redis failed (what
 * was not finished stays due).
 */

int
worker_visit(worker_t *w)
{
    int                 rc;
    unsigned            i, first;
    worker_tally_t      tally;
    worker_calendar_t   cal;

    rc = program_load(w);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    calendar(&cal, worker_now(w));

    tally.visited = 0;
    tally.events = 0;

    /* workers start at different shards, so that several share the work */
    first = (unsigned) getpid();

    for (i = 0; i < LOYALTY_DUE_SHARDS && !worker_stopping(); i++) {
        if (visit_shard(w, (first + i) % LOYALTY_DUE_SHARDS, &cal, &tally)
            != 0)
        {
            return -1;
        }
    }

    if (tally.visited) {
        worker_log(WORKER_LOG_INFO, "visited %d customers, %d events",
                   tally.visited, tally.events);
    }

    return 0;
}


/*
 * The program nginx published, read again when its version changes.
 * Returns 0, 1 when there is none (yet) to follow, -1 when Redis failed.
 */

static int
program_load(worker_t *w)
{
    int                     rc;
    char                    field[72];
    redisReply             *current, *json;
    loyalty_json_t         *root;
    worker_program_t       *prog;
    loyalty_json_limits_t   limits;
    loyalty_json_error_t    err;

    current = worker_command(w->redis, 3, (const char *[]) {
                                 "HGET", LOYALTY_KEY_PROGRAM, "current" },
                             NULL);
    if (current == NULL) {
        worker_redis_error(w, w->redis->errstr);
        return -1;
    }

    if (current->type != REDIS_REPLY_STRING || current->len >= 64) {
        if (!w->no_program) {
            w->no_program = 1;
            worker_log(WORKER_LOG_WARN, "no program in %s yet: nginx "
                       "publishes it once it connects to Redis; nothing "
                       "is credited until then", LOYALTY_KEY_PROGRAM);
        }

        freeReplyObject(current);
        return 1;
    }

    w->no_program = 0;

    if (w->program != NULL && strcmp(w->program->version, current->str) == 0)
    {
        freeReplyObject(current);
        return 0;
    }

    snprintf(field, sizeof(field), "v:%s", current->str);
    json = worker_command(w->redis, 3, (const char *[]) {
                              "HGET", LOYALTY_KEY_PROGRAM, field }, NULL);
    if (json == NULL) {
        freeReplyObject(current);
        worker_redis_error(w, w->redis->errstr);
        return -1;
    }

    prog = calloc(1, sizeof(worker_program_t));
    rc = 1;

    if (prog == NULL || json->type != REDIS_REPLY_STRING) {
        worker_log(WORKER_LOG_ERROR, "program %s is not in %s", current->str,
                   LOYALTY_KEY_PROGRAM);
        goto done;
    }

    strcpy(prog->version, current->str);

    prog->json = malloc(json->len + 1);
    prog->arena.size = 16 * json->len + 4096;
    prog->arena.buf = malloc(prog->arena.size);

    if (prog->json == NULL || prog->arena.buf == NULL) {
        worker_log(WORKER_LOG_ERROR, "out of memory");
        goto done;
    }

    memcpy(prog->json, json->str, json->len);
    prog->json[json->len] = '\0';

    limits.alloc = worker_arena_alloc;
    limits.ctx = &prog->arena;
    limits.max_depth = 8;
    limits.max_values = 100000;
    limits.max_members = 256;
    limits.max_string = 4096;

    root = loyalty_json_parse(prog->json, json->len, &limits, &err);

    if (root == NULL || loyalty_program_read(root, &prog->p) != 0) {
        worker_log(WORKER_LOG_ERROR, "program %s in %s cannot be read; "
                   "is this loyalty-worker older than the module?",
                   current->str, LOYALTY_KEY_PROGRAM);
        goto done;
    }

    snprintf(prog->expire, sizeof(prog->expire), "%lld",
             (long long) prog->p.points_expire);

    /* the shop's calendar: statements and birthdays follow its days */
    setenv("TZ", prog->p.timezone.len ? prog->p.timezone.data : "UTC", 1);
    tzset();

    worker_program_free(w->program);
    w->program = prog;
    prog = NULL;
    rc = 0;

    worker_log(WORKER_LOG_INFO, "following program %s", current->str);

done:

    worker_program_free(prog);
    freeReplyObject(json);
    freeReplyObject(current);

    return rc;
}


void
worker_program_free(worker_program_t *p)
{
    if (p != NULL) {
        free(p->json);
        free(p->arena.buf);
        free(p);
    }
}


static void
calendar(worker_calendar_t *cal, long long now)
{
    time_t     t;
    struct tm  tm;

    t = (time_t) now;
    localtime_r(&t, &tm);

    cal->now = now;
    cal->year_number = tm.tm_year + 1900;
    snprintf(cal->now_text, sizeof(cal->now_text), "%lld", now);
    strftime(cal->month, sizeof(cal->month), "%Y-%m", &tm);
    strftime(cal->year, sizeof(cal->year), "%Y", &tm);

    if (tm.tm_mon == 1 && tm.tm_mday == 28 && !leap(cal->year_number)) {
        strcpy(cal->today, "02-28,02-29");

    } else {
        strftime(cal->today, sizeof(cal->today), "%m-%d", &tm);
    }

    tm.tm_mday = 1;
    tm.tm_mon++;
    tm.tm_hour = 0;
    tm.tm_min = 0;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    cal->next_month = (long long) mktime(&tm);
}


/* The start of the customer's next birthday in the shop's time zone. */

static long long
next_birthday(const worker_calendar_t *cal, const char *bd)
{
    int        y, month, day;
    time_t     t;
    struct tm  tm;

    if (sscanf(bd, "%2d-%2d", &month, &day) != 2) {
        return 0;
    }

    for (y = cal->year_number; y <= cal->year_number + 1; y++) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = month - 1;
        tm.tm_mday = (month == 2 && day == 29 && !leap(y)) ? 28 : day;
        tm.tm_isdst = -1;

        t = mktime(&tm);

        if ((long long) t > cal->now) {
            return (long long) t;
        }
    }

    return 0;
}


static int
leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}


/*
 * Every customer of a shard due now, batch by batch, under the shard's
 * lease: taken (or skipped when another worker has it), renewed every
 * batch, given back when the shard is done.
 */

static int
visit_shard(worker_t *w, unsigned shard, const worker_calendar_t *cal,
    worker_tally_t *tally)
{
    int          rc;
    char         due[LOYALTY_KEY_MAX], lease[LOYALTY_KEY_MAX], batch[24];
    size_t       n;
    redisReply  *reply;

    loyalty_key_shard(due, shard, "");
    loyalty_key_shard(lease, shard, ":lease");
    snprintf(batch, sizeof(batch), "%ld", w->conf.batch);

    for ( ;; ) {
        rc = shard_lease(w, lease, w->conf.lease);

        if (rc <= 0) {
            if (rc == 0) {
                worker_log(WORKER_LOG_DEBUG, "shard %u is another "
                           "worker's", shard);
            }

            return rc;
        }

        if (worker_stopping()) {
            break;
        }

        reply = worker_command(w->redis, 8, (const char *[]) {
                                   "ZRANGEBYSCORE", due, "-inf",
                                   cal->now_text, "WITHSCORES", "LIMIT", "0",
                                   batch }, NULL);

        if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
            (void) worker_reply_ok(w, w->redis, reply);
            return -1;
        }

        n = reply->elements / 2;
        rc = n ? visit_batch(w, due, reply, cal, tally) : 0;
        freeReplyObject(reply);

        if (rc != 0) {
            return rc;
        }

        if (n < (size_t) w->conf.batch) {
            break;
        }
    }

    return shard_lease(w, lease, 0) < 0 ? -1 : 0;
}


/* 1 held, 0 another worker's, -1 Redis failed; ms 0 gives it back. */

static int
shard_lease(worker_t *w, const char *lease, long ms)
{
    int          rc;
    char         msec[24];
    redisReply  *reply;

    snprintf(msec, sizeof(msec), "%ld", ms);
    reply = worker_command(w->redis, 6, (const char *[]) {
                               "EVALSHA",
                               loyalty_scripts[LOYALTY_SCRIPT_lease].sha1,
                               "1", lease, w->id, msec }, NULL);

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        (void) worker_reply_ok(w, w->redis, reply);
        return -1;
    }

    rc = (int) reply->integer;
    freeReplyObject(reply);

    return rc;
}


static int
visit_batch(worker_t *w, const char *due, redisReply *entries,
    const worker_calendar_t *cal, worker_tally_t *tally)
{
    int                  rc, tries;
    char                 outbox[LOYALTY_KEY_MAX], trim[24], (*nexts)[24];
    size_t               i, n, moves, left, sent, *movelen;
    long long            t, soonest;
    redisReply          *customer, *reply;
    worker_visit_one_t  *visits, *one;
    const char         **move;

    n = entries->elements / 2;

    /* the visits; due_next.lua's arguments for the whole batch */
    visits = calloc(n, sizeof(worker_visit_one_t));
    nexts = calloc(n, sizeof(*nexts));
    move = calloc(4 + 3 * n, sizeof(const char *));
    movelen = calloc(4 + 3 * n, sizeof(size_t));

    rc = -1;

    if (visits == NULL || nexts == NULL || move == NULL || movelen == NULL) {
        worker_log(WORKER_LOG_ERROR, "out of memory");
        goto done;
    }

    /* 1. read, decide, write; those whose account changed meanwhile are
     * read again */
    for (tries = 0; tries < VISIT_TRIES; tries++) {
        visit_read(w, entries, visits, n);

        if (visit_apply(w, entries, visits, n, cal) != 0) {
            goto done;
        }

        left = 0;
        for (i = 0; i < n; i++) {
            left += visits[i].state == VISIT_READ;
        }

        if (left == 0) {
            break;
        }
    }

    for (i = 0; i < n; i++) {
        if (visits[i].state == VISIT_READ) {
            worker_log(WORKER_LOG_WARN, "the account of customer \"%s\" "
                       "changed each of the %d times it was read; it is "
                       "visited again next pass",
                       entries->element[2 * i]->str, VISIT_TRIES);
            visits[i].state = VISIT_FAILED;
        }
    }

    /* the program's totals, once for the batch */
    if (count_visits(w, visits, n) != 0) {
        goto done;
    }

    /* 2. the outboxes emptied, now that their events are in the stream
     * (visit_apply sent them), the entries moved on: one due_next.lua for
     * the batch, whose customers share the schedule's shard */
    move[0] = "EVALSHA";
    movelen[0] = 7;
    move[1] = loyalty_scripts[LOYALTY_SCRIPT_due_next].sha1;
    movelen[1] = 40;
    move[2] = "1";
    movelen[2] = 1;
    move[3] = due;
    movelen[3] = strlen(due);
    moves = 0;
    sent = 0;

    for (i = 0; i < n; i++) {
        one = &visits[i];

        if (one->state != VISIT_DONE && one->state != VISIT_GONE) {
            continue;
        }

        customer = entries->element[2 * i];

        if (one->applied->elements - 1 + one->v.nevents > 0) {
            loyalty_key(outbox, "customer", customer->str, customer->len,
                        ":out");
            snprintf(trim, sizeof(trim), "%zu",
                     one->applied->elements - 1 + one->v.nevents);
            worker_append(w->redis, 4, (const char *[]) {
                              "LTRIM", outbox, trim, "-1" }, NULL);
            tally->events += (int) (one->applied->elements - 1
                                    + one->v.nevents);
            sent++;
        }

        nexts[i][0] = '\0';

        if (one->state == VISIT_DONE) {
            soonest = one->v.next;

            if (soonest == 0 || cal->next_month < soonest) {
                soonest = cal->next_month;
            }

            if (one->v.birthday.len) {
                t = next_birthday(cal, one->v.birthday.data);

                if (t != 0 && t < soonest) {
                    soonest = t;
                }
            }

            snprintf(nexts[i], sizeof(*nexts), "%lld", soonest);
        }

        move[4 + 3 * moves] = customer->str;
        movelen[4 + 3 * moves] = customer->len;
        move[5 + 3 * moves] = entries->element[2 * i + 1]->str;
        movelen[5 + 3 * moves] = entries->element[2 * i + 1]->len;
        move[6 + 3 * moves] = nexts[i];
        movelen[6 + 3 * moves] = strlen(nexts[i]);
        moves++;

        tally->visited++;
    }

    if (moves > 0) {
        redisAppendCommandArgv(w->redis, (int) (4 + 3 * moves), move,
                               movelen);
    }

    for (i = 0; i < sent + (moves > 0); i++) {
        if (redisGetReply(w->redis, (void **) &reply) != REDIS_OK
            || worker_reply_ok(w, w->redis, reply) != 0)
        {
            goto done;
        }
    }

    /* 3. referrals, rare: one customer at a time */
    for (i = 0; i < n; i++) {
        if (visits[i].state != VISIT_DONE || visits[i].referral == NULL) {
            continue;
        }

        if (settle_referral(w, entries->element[2 * i], visits[i].referral,
                            visits[i].referral_order, cal)
            != 0)
        {
            goto done;
        }
    }

    rc = 0;

done:

    for (i = 0; visits != NULL && i < n; i++) {
        visit_reset(&visits[i]);
    }

    free(visits);
    free(nexts);
    free(move);
    free(movelen);

    return rc;
}


/* The accounts still to read and their ledgers' newest entries, asked. */

static void
visit_read(worker_t *w, redisReply *entries, worker_visit_one_t *visits,
    size_t n)
{
    char         account[LOYALTY_KEY_MAX], log[LOYALTY_KEY_MAX];
    size_t       i;
    redisReply  *customer;

    for (i = 0; i < n; i++) {
        if (visits[i].state != VISIT_READ) {
            continue;
        }

        customer = entries->element[2 * i];
        loyalty_key(account, "customer", customer->str, customer->len, "");
        loyalty_key(log, "customer", customer->str, customer->len, ":log");

        worker_append(w->redis, 2, (const char *[]) { "HGETALL", account },
                      NULL);
        worker_append(w->redis, 3, (const char *[]) { "LINDEX", log, "0" },
                      NULL);
    }
}


/* One account and its ledger's newest entry, as read: 0, or -1. */

static int
visit_got(worker_t *w, redisReply *customer, worker_visit_one_t *one)
{
    if (redisGetReply(w->redis, (void **) &one->account) != REDIS_OK
        || redisGetReply(w->redis, (void **) &one->head) != REDIS_OK)
    {
        worker_redis_error(w, w->redis->errstr);
        return -1;
    }

    if (one->account->type != REDIS_REPLY_ARRAY
        || (one->head->type != REDIS_REPLY_STRING
            && one->head->type != REDIS_REPLY_NIL))
    {
        worker_log(WORKER_LOG_ERROR, "reading customer \"%s\": %s",
                   customer->str,
                   one->account->type == REDIS_REPLY_ERROR
                   ? one->account->str
                   : one->head->type == REDIS_REPLY_ERROR
                   ? one->head->str : "unexpected reply");
        one->state = VISIT_FAILED;
    }

    return 0;
}


/*
 * What is due in one account, in memory of its own: 0, or -1 when memory
 * ran out.  An account that cannot be read is logged and left due.
 */

static int
visit_decide(worker_t *w, redisReply *customer, worker_visit_one_t *one,
    const worker_calendar_t *cal)
{
    int                     rc;
    size_t                  i, size;
    const char             *why;
    loyalty_str_t           head;
    worker_account_conf_t   conf;
    loyalty_program_t      *p = &w->program->p;

    if (one->account->elements == 0) {
        one->state = VISIT_APPLY;
        return 0;
    }

    head.data = one->head->type == REDIS_REPLY_STRING ? one->head->str : "";
    head.len = one->head->type == REDIS_REPLY_STRING ? one->head->len : 0;

    conf.now = cal->now;
    conf.customer.data = customer->str;
    conf.customer.len = customer->len;
    conf.expire = p->points_expire;
    conf.notice = p->expire_notice;
    conf.tiers = p->tiers;
    conf.ntiers = p->ntiers;
    conf.window = p->tier_window;
    conf.downgrade_one = p->tier_downgrade;
    conf.month = cal->month;
    conf.today = cal->today;
    conf.year = cal->year;
    conf.birthday_points = p->birthday_points;
    conf.alloc = worker_arena_alloc;
    conf.ctx = &one->arena;

    /* room for what a visit writes, about twice what it read; an account
     * of many short records needs more, and gets it */
    size = 8192 + one->head->len;
    for (i = 0; i < one->account->elements; i++) {
        size += 4 * one->account->element[i]->len + 128;
    }

    rc = -2;

    for ( ;; ) {
        one->arena.buf = malloc(size);
        one->arena.size = size;
        one->arena.used = 0;

        if (one->arena.buf == NULL) {
            break;
        }

        rc = visit_decide_in(one, &conf, &head, &why);

        if (rc != -2 || size > VISIT_ARENA_MAX) {
            break;
        }

        free(one->arena.buf);
        one->arena.buf = NULL;
        size *= 4;
    }

    if (one->arena.buf == NULL || rc == -2) {
        worker_log(WORKER_LOG_ERROR, "visiting customer \"%s\": out of "
                   "memory", customer->str);
        return -1;
    }

    if (rc == -1) {
        worker_log(WORKER_LOG_ERROR, "visiting customer \"%s\": %s",
                   customer->str, why);
        one->state = VISIT_FAILED;
        return 0;
    }

    one->state = VISIT_APPLY;

    return 0;
}


/*
 * The visit of one account read into its arena, with the referral's code
 * and order copied as C strings for what settles it: worker_account_visit's
 * 0, -1 or -2.
 */

static int
visit_decide_in(worker_visit_one_t *one, const worker_account_conf_t *conf,
    const loyalty_str_t *head, const char **why)
{
    int             rc;
    size_t          i, len;
    loyalty_str_t  *fields;

    fields = worker_arena_alloc(&one->arena, one->account->elements
                                             * sizeof(loyalty_str_t));
    if (fields == NULL) {
        return -2;
    }

    for (i = 0; i < one->account->elements; i++) {
        fields[i].data = one->account->element[i]->str;
        fields[i].len = one->account->element[i]->len;
    }

    rc = worker_account_visit(conf, fields, one->account->elements, head,
                              &one->v, why);

    if (rc != 0 || one->v.referral.len == 0) {
        return rc;
    }

    len = one->v.referral.len + one->v.referral_order.len + 2;
    one->referral = worker_arena_alloc(&one->arena, len);

    if (one->referral == NULL) {
        return -2;
    }

    memcpy(one->referral, one->v.referral.data, one->v.referral.len);
    one->referral[one->v.referral.len] = '\0';
    one->referral_order = one->referral + one->v.referral.len + 1;
    memcpy(one->referral_order, one->v.referral_order.data,
           one->v.referral_order.len);
    one->referral_order[one->v.referral_order.len] = '\0';

    return 0;
}


/*
 * Every account read decided as its reply comes, and account_apply.lua
 * for each, pipelined: the calls go to Redis while the next visits are
 * decided; then, as each answer comes, the visit's events XADDed.  A
 * visit whose account changed since it was read goes back to be read
 * again.
 */

static int
visit_apply(worker_t *w, redisReply *entries, worker_visit_one_t *visits,
    size_t n, const worker_calendar_t *cal)
{
    int                      rc, done, events;
    char                     keys[3][LOYALTY_KEY_MAX], counts[3][24], *read;
    char                     max[24];
    size_t                   i, j, k, argc, size, *argvlen, applied, sent;
    size_t                   eargvlen[6 + EVENT_FIELDS];
    const char              *eargv[6 + EVENT_FIELDS];
    redisReply              *customer, *r;
    worker_visit_one_t      *one;
    worker_account_visit_t  *v;
    const char             **argv;

    rc = 0;

    for (i = 0; i < n; i++) {
        one = &visits[i];

        if (one->state == VISIT_READ
            && (visit_got(w, entries->element[2 * i], one) != 0
                || (one->state == VISIT_READ
                    && visit_decide(w, entries->element[2 * i], one, cal)
                       != 0)))
        {
            return -1;
        }

        if (one->state != VISIT_APPLY) {
            continue;
        }

        v = &one->v;
        customer = entries->element[2 * i];
        loyalty_key(keys[0], "customer", customer->str, customer->len, "");
        loyalty_key(keys[1], "customer", customer->str, customer->len,
                    ":out");
        loyalty_key(keys[2], "customer", customer->str, customer->len,
                    ":log");

        argc = 11 + 2 * v->nset + v->ndel + v->nentries + v->nevents;

        /* the account as read, joined as the script joins it */
        size = 1;
        for (j = 0; j < one->account->elements; j++) {
            size += one->account->element[j]->len + 1;
        }

        argv = malloc(argc * (sizeof(const char *) + sizeof(size_t)) + size);
        if (argv == NULL) {
            worker_log(WORKER_LOG_ERROR, "out of memory");
            return -1;
        }

        argvlen = (size_t *) (argv + argc);
        read = (char *) (argvlen + argc);
        size = 0;

        for (j = 0; j < one->account->elements; j++) {
            if (j) {
                read[size++] = '\n';
            }

            r = one->account->element[j];
            memcpy(read + size, r->str, r->len);
            size += r->len;
        }

        snprintf(counts[0], sizeof(counts[0]), "%zu", v->nset);
        snprintf(counts[1], sizeof(counts[1]), "%zu", v->ndel);
        snprintf(counts[2], sizeof(counts[2]), "%zu", v->nentries);

        argv[0] = "EVALSHA";
        argv[1] = loyalty_scripts[LOYALTY_SCRIPT_account_apply].sha1;
        argv[2] = "3";
        argv[3] = keys[0];
        argv[4] = keys[1];
        argv[5] = keys[2];

        for (j = 0; j < 6; j++) {
            argvlen[j] = strlen(argv[j]);
        }

        argv[6] = read;
        argvlen[6] = size;
        argv[7] = one->head->type == REDIS_REPLY_STRING ? one->head->str : "";
        argvlen[7] = one->head->type == REDIS_REPLY_STRING ? one->head->len
                                                           : 0;

        for (j = 0; j < 3; j++) {
            argv[8 + j] = counts[j];
            argvlen[8 + j] = strlen(counts[j]);
        }

        k = 11;

#define visit_arg(s)                                                         \
        argv[k] = (s).data;                                                  \
        argvlen[k] = (s).len;                                                \
        k++

        for (j = 0; j < 2 * v->nset; j++) {
            visit_arg(v->set[j]);
        }

        for (j = 0; j < v->ndel; j++) {
            visit_arg(v->del[j]);
        }

        for (j = 0; j < v->nentries; j++) {
            visit_arg(v->entries[j]);
        }

        for (j = 0; j < v->nevents; j++) {
            visit_arg(v->events[j]);
        }

#undef visit_arg

        redisAppendCommandArgv(w->redis, (int) argc, argv, argvlen);
        free(argv);

        if (i % VISIT_SEND == VISIT_SEND - 1
            && redisBufferWrite(w->redis, &done) != REDIS_OK)
        {
            worker_redis_error(w, w->redis->errstr);
            return -1;
        }
    }

    (void) worker_event_head(w, eargv, max, sizeof(max));

    for (j = 0; j < 6; j++) {
        eargvlen[j] = strlen(eargv[j]);
    }

    applied = 0;
    sent = 0;

    for (i = 0; i < n; i++) {
        one = &visits[i];

        if (one->state != VISIT_APPLY) {
            continue;
        }

        if (redisGetReply(w->redis, (void **) &one->applied) != REDIS_OK) {
            worker_redis_error(w, w->redis->errstr);
            return -1;
        }

        r = one->applied;

        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
        {
            /* Redis lost its scripts: a new connection loads them */
            worker_redis_error(w, r->str);
            rc = -1;
            one->state = VISIT_FAILED;
            continue;
        }

        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1
            && r->element[0]->type == REDIS_REPLY_STRING)
        {
            if (strcmp(r->element[0]->str, "applied") == 0) {
                one->state = one->account->elements ? VISIT_DONE : VISIT_GONE;

                /* its events go to the stream while the next replies come */
                events = visit_events(w, one, eargv, eargvlen);
                if (events < 0) {
                    return -1;
                }

                sent += (size_t) events;

                if (++applied % VISIT_SEND == 0
                    && redisBufferWrite(w->redis, &done) != REDIS_OK)
                {
                    worker_redis_error(w, w->redis->errstr);
                    return -1;
                }

                continue;
            }

            if (strcmp(r->element[0]->str, "stale") == 0) {
                visit_reset(one);
                continue;
            }
        }

        worker_log(WORKER_LOG_ERROR, "visiting customer \"%s\": %s",
                   entries->element[2 * i]->str,
                   r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
        one->state = VISIT_FAILED;
    }

    /* the events in the stream, before any outbox is emptied */
    for (i = 0; i < sent; i++) {
        if (redisGetReply(w->redis, (void **) &r) != REDIS_OK
            || worker_reply_ok(w, w->redis, r) != 0)
        {
            return -1;
        }
    }

    return rc;
}


/* A visit back to be read again: what it read and decided let go. */

static void
visit_reset(worker_visit_one_t *one)
{
    if (one->account) {
        freeReplyObject(one->account);
    }

    if (one->head) {
        freeReplyObject(one->head);
    }

    if (one->applied) {
        freeReplyObject(one->applied);
    }

    free(one->arena.buf);
    memset(one, 0, sizeof(*one));
}


/*
 * One visit's events appended as XADDs, argv's first six the command's
 * head: those an earlier visit left in the outbox first, then this
 * visit's.  Returns how many, or -1 for a malformed one.
 */

static int
visit_events(worker_t *w, worker_visit_one_t *one, const char **argv,
    size_t *argvlen)
{
    int             argc;
    const char     *p, *nl, *end;
    size_t          j, nold;
    loyalty_str_t   e;

    nold = one->applied->elements - 1;

    for (j = 0; j < nold + one->v.nevents; j++) {
        if (j < nold) {
            e.data = one->applied->element[1 + j]->str;
            e.len = one->applied->element[1 + j]->len;

        } else {
            e = one->v.events[j - nold];
        }

        /* "field\nvalue\n...": fields and values in place */
        end = e.data + e.len;
        argc = 6;

        for (p = e.data; p != NULL && argc < 6 + EVENT_FIELDS; argc++) {
            nl = memchr(p, '\n', (size_t) (end - p));
            argv[argc] = p;
            argvlen[argc] = nl ? (size_t) (nl - p) : (size_t) (end - p);
            p = nl ? nl + 1 : NULL;
        }

        if (argc % 2 != 0) {
            worker_log(WORKER_LOG_ERROR, "an event in an outbox is "
                       "malformed: %.*s", (int) e.len, e.data);
            return -1;
        }

        redisAppendCommandArgv(w->redis, argc, argv, argvlen);
    }

    return (int) j;
}


/*
 * The referral a customer came with, once their first order is credited:
 * referral_settle.lua decides once per customer; the referrer is paid,
 * then the customer, whose account then records the referral settled
 * (rr).  A worker dying half way leaves rr unset: the next visit settles
 * again, and every step answers as the first time.
 */

static int
settle_referral(worker_t *w, redisReply *customer, const char *code,
    const char *order, const worker_calendar_t *cal)
{
    int                 rc;
    char                key[LOYALTY_KEY_MAX], id[LOYALTY_KEY_MAX];
    char                limit[24], period[24];
    redisReply         *reply, *decision, *referrer;
    loyalty_program_t  *p = &w->program->p;

    loyalty_key(key, "referral", code, strlen(code), "");

    snprintf(limit, sizeof(limit), "%lld", (long long) p->referral_limit);
    snprintf(period, sizeof(period), "%lld",
             (long long) p->referral_period);

    reply = worker_command(w->redis, 8, (const char *[]) {
                               "EVALSHA",
                               loyalty_scripts
                                   [LOYALTY_SCRIPT_referral_settle].sha1,
                               "1", key, customer->str, cal->now_text,
                               limit, period },
                           (size_t []) {
                               7, 40, 1, WORKER_CSTR, customer->len,
                               WORKER_CSTR, WORKER_CSTR, WORKER_CSTR });

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2)
    {
        (void) worker_reply_ok(w, w->redis, reply);
        return -1;
    }

    decision = reply->element[0];
    referrer = reply->element[1];
    snprintf(id, sizeof(id), "referral:%.*s", (int) customer->len,
             customer->str);

    if (strcmp(decision->str, "rewarded") == 0) {
        rc = give_bonus(w, referrer->str, referrer->len, id,
                        p->referrer_points, "", "referral_reward",
                        "referrer", customer->str, customer->len,
                        order, cal)
             || give_bonus(w, customer->str, customer->len, id,
                           p->referred_points, "rewarded",
                           "referral_reward", "referred", referrer->str,
                           referrer->len, order, cal);

    } else {
        worker_log(strcmp(decision->str, "self") == 0 ? WORKER_LOG_WARN
                                                       : WORKER_LOG_INFO,
                   "referral code \"%s\" of customer \"%s\" refused: %s",
                   code, customer->str,
                   strcmp(decision->str, "self") == 0
                   ? "the referrer's own code"
                   : strcmp(decision->str, "limit") == 0
                   ? "the code's limit for the period is reached"
                   : "no customer has this code");

        rc = give_bonus(w, customer->str, customer->len, id, 0,
                        decision->str, "", "", "", 0, order, cal);
    }

    freeReplyObject(reply);

    return rc ? -1 : 0;
}


/* account_bonus.lua, then a visit soon to send the event it queued. */

/* what the visits changed of the program's totals, summed */

static int
count_visits(worker_t *w, worker_visit_one_t *visits, size_t n)
{
    size_t              i;
    long long           changes[4];
    const char         *fields[4];
    static const char  *names[] = {
        "issued", "available", "pending", "expired"
    };

    changes[0] = changes[2] = changes[3] = 0;

    for (i = 0; i < n; i++) {
        if (visits[i].state == VISIT_DONE) {
            changes[0] += visits[i].v.issued;
            changes[2] -= visits[i].v.credited;
            changes[3] += visits[i].v.expired;
        }
    }

    /* available: what was issued less what expired */
    changes[1] = changes[0] - changes[3];
    memcpy(fields, names, sizeof(fields));

    return worker_stats_add(w, 4, fields, changes);
}


static int
give_bonus(worker_t *w, const char *customer, size_t len, const char *id,
    long long points, const char *rr, const char *type, const char *role,
    const char *other, size_t other_len, const char *order,
    const worker_calendar_t *cal)
{
    char         account[LOYALTY_KEY_MAX], outbox[LOYALTY_KEY_MAX];
    char         log[LOYALTY_KEY_MAX], due[LOYALTY_KEY_MAX], amount[24];
    int          given;
    long long    change, changes[2];
    const char  *fields[2];
    redisReply  *reply;

    loyalty_key(account, "customer", customer, len, "");
    loyalty_key(outbox, "customer", customer, len, ":out");
    loyalty_key(log, "customer", customer, len, ":log");
    loyalty_key_due(due, customer, len, "");

    snprintf(amount, sizeof(amount), "%lld", points);

    reply = worker_command(w->redis, 19, (const char *[]) {
                               "EVALSHA",
                               loyalty_scripts
                                   [LOYALTY_SCRIPT_account_bonus].sha1,
                               "3", account, outbox, log, id, amount,
                               cal->now_text, w->program->expire, customer,
                               rr, type, "role", role,
                               strcmp(role, "referrer") == 0 ? "referred"
                                                             : "referrer",
                               other, "order", order },
                           (size_t []) {
                               7, 40, 1, WORKER_CSTR, WORKER_CSTR,
                               WORKER_CSTR, WORKER_CSTR, WORKER_CSTR,
                               WORKER_CSTR, WORKER_CSTR, len, WORKER_CSTR,
                               WORKER_CSTR, 4, WORKER_CSTR, WORKER_CSTR,
                               other_len, 5, WORKER_CSTR });

    given = reply != NULL && reply->type == REDIS_REPLY_ARRAY
            && reply->elements == 2
            && reply->element[0]->type == REDIS_REPLY_STRING
            && reply->element[1]->type == REDIS_REPLY_INTEGER
            && strcmp(reply->element[0]->str, "given") == 0;
    change = given ? reply->element[1]->integer : 0;

    if (worker_reply_ok(w, w->redis, reply) != 0) {
        return -1;
    }

    if (points == 0) {
        return 0;
    }

    /* a replay was counted by the call that gave it */
    if (given) {
        fields[0] = "issued";
        fields[1] = "available";
        changes[0] = changes[1] = change;

        if (worker_stats_add(w, 2, fields, changes) != 0
            || worker_board_add(w, customer, len, points) != 0)
        {
            return -1;
        }
    }

    reply = worker_command(w->redis, 6, (const char *[]) {
                               "EVALSHA",
                               loyalty_scripts[LOYALTY_SCRIPT_due_add].sha1,
                               "1", due, customer, cal->now_text },
                           (size_t []) {
                               7, 40, 1, WORKER_CSTR, len, WORKER_CSTR });

    return worker_reply_ok(w, w->redis, reply);
}


int
worker_board_add(worker_t *w, const char *customer, size_t len,
    long long points)
{
    char         month[LOYALTY_KEY_MAX], year[LOYALTY_KEY_MAX], amount[24];
    redisReply  *reply;

    loyalty_key_board_at(month, worker_now(w), 0);
    loyalty_key_board_at(year, worker_now(w), 1);
    snprintf(amount, sizeof(amount), "%lld", points);

    reply = worker_command(w->redis, 7, (const char *[]) {
                               "EVALSHA",
                               loyalty_scripts[LOYALTY_SCRIPT_board_add].sha1,
                               "2", month, year, customer, amount },
                           (size_t []) {
                               7, 40, 1, WORKER_CSTR, WORKER_CSTR, len,
                               WORKER_CSTR });

    return worker_reply_ok(w, w->redis, reply);
}


int
worker_stats_add(worker_t *w, int n, const char **fields,
    const long long *changes)
{
    int          i, argc;
    char         keys[3][LOYALTY_KEY_MAX], nums[8][24];
    size_t       argvlen[8 + 2 * 8];
    const char  *argv[8 + 2 * 8];

    argv[0] = "EVALSHA";
    argv[1] = loyalty_scripts[LOYALTY_SCRIPT_stats_add].sha1;
    argv[2] = "3";

    for (i = 0; i < 3; i++) {
        loyalty_key_stats(keys[i], i, worker_now(w));
        argv[3 + i] = keys[i];
    }

    snprintf(nums[0], sizeof(nums[0]), "%lld", worker_now(w));
    argv[6] = nums[0];
    argc = 7;

    for (i = 0; i < n && i < 7; i++) {
        if (changes[i] == 0) {
            continue;
        }

        snprintf(nums[i + 1], sizeof(nums[i + 1]), "%lld", changes[i]);
        argv[argc++] = fields[i];
        argv[argc++] = nums[i + 1];
    }

    if (argc == 7) {
        return 0;
    }

    for (i = 0; i < argc; i++) {
        argvlen[i] = strlen(argv[i]);
    }

    return worker_reply_ok(w, w->redis,
                           redisCommandArgv(w->redis, argc, argv, argvlen));
}
