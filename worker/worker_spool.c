/*
 * Replaying the spool: the order writes nginx could not give Redis, one
 * JSON line per order in files orders.<pid>.log (see ngx_http_loyalty_spool.c
 * for the writer's side).
 *
 * A file is claimed by renaming it to <name>.replay-<pid>; the exclusive
 * lock then waits for a writer that opened the old name.  Every call of a
 * line is idempotent, so a file is replayed whole, again, until every line
 * went through: a worker killed half way, or Redis failing half way, only
 * means some calls run twice.  A line that cannot be read is moved to
 * rejected.log, never dropped.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loyalty_json.h"
#include "loyalty_keys.h"
#include "loyalty_script.h"
#include "loyalty_worker.h"
#include "worker_spool_record.h"


static int spool_replay_file(worker_t *w, int fd, const char *path);
static int spool_replay_line(worker_t *w, char *line, size_t len,
    const char **why);
static int spool_call(worker_t *w, const worker_spool_record_t *rec,
    const worker_spool_call_t *call);
static int spool_event(worker_t *w, const worker_spool_record_t *rec,
    redisReply *reply);
static int spool_count(worker_t *w, const worker_spool_record_t *rec,
    const worker_spool_call_t *call, redisReply *reply);
static int spool_count_coupon(worker_t *w, const worker_spool_call_t *call);
static int spool_reply_is(redisReply *reply, size_t elements,
    const char *status);
static void spool_reject(const char *dir, const char *line, size_t len,
    const char *why);
static void spool_count_ops(worker_t *w, int replayed, int rejected);


/*
 * Replays every spool file of the directory.  Returns the number of lines
 * replayed, or -1 when Redis failed (the rest waits for the next pass).
 */

int
worker_spool_replay(worker_t *w)
{
    int             fd, n, total;
    DIR            *d;
    char          **names;
    size_t          i, count, cap;
    struct dirent  *e;
    char            from[512], claimed[512];

    if (w->conf.spool == NULL) {
        return 0;
    }

    d = opendir(w->conf.spool);
    if (d == NULL) {
        worker_log(WORKER_LOG_ERROR, "cannot read the spool \"%s\": %s",
                   w->conf.spool, strerror(errno));
        return -1;
    }

    /* the names first: claiming renames entries under readdir() */
    names = NULL;
    count = 0;
    cap = 0;

    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "orders.", 7) != 0
            || strstr(e->d_name, ".log") == NULL)
        {
            continue;
        }

        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            names = realloc(names, cap * sizeof(char *));
            if (names == NULL) {
                closedir(d);
                return -1;
            }
        }

        names[count++] = strdup(e->d_name);
    }

    closedir(d);

    total = 0;

    for (i = 0; i < count; i++) {

        if (names[i] == NULL || total < 0) {
            free(names[i]);
            continue;
        }

        snprintf(from, sizeof(from), "%s/%s", w->conf.spool, names[i]);
        snprintf(claimed, sizeof(claimed), "%s/%.*s.replay-%ld",
                 w->conf.spool,
                 (int) (strstr(names[i], ".log") + 4 - names[i]), names[i],
                 (long) getpid());
        free(names[i]);

        fd = open(from, O_RDONLY);
        if (fd == -1) {
            continue;
        }

        /*
         * Held: a writer is appending right now, or another worker
         * replays it.  Next pass.  Once ours, the new name keeps writers
         * out: one that opened the old name waits for the lock, then sees
         * the name moved and writes to a new file.
         */
        if (flock(fd, LOCK_EX | LOCK_NB) == -1
            || (strcmp(from, claimed) != 0 && rename(from, claimed) != 0))
        {
            close(fd);
            continue;
        }

        n = spool_replay_file(w, fd, claimed);
        total = (n < 0) ? -1 : total + n;
    }

    free(names);

    return total;
}


static int
spool_replay_file(worker_t *w, int fd, const char *path)
{
    int          n, rejected;
    FILE        *f;
    char        *line;
    size_t       cap;
    ssize_t      len;
    const char  *why;

    f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return 0;
    }

    line = NULL;
    cap = 0;
    n = 0;
    rejected = 0;

    while ((len = getline(&line, &cap, f)) != -1) {

        if (len == 0 || line[len - 1] != '\n') {
            spool_reject(w->conf.spool, line, (size_t) len,
                         "the line is cut short");
            rejected++;
            continue;
        }

        switch (spool_replay_line(w, line, (size_t) len - 1, &why)) {

        case 0:
            n++;
            break;

        case -1:
            /* Redis failed: the whole file again next time */
            free(line);
            fclose(f);
            return -1;

        default:
            spool_reject(w->conf.spool, line, (size_t) len - 1, why);
            rejected++;
        }
    }

    free(line);

    /* removed under the lock: no writer can have it open for writing */
    if (unlink(path) != 0) {
        worker_log(WORKER_LOG_ERROR, "cannot remove \"%s\": %s", path,
                   strerror(errno));
    }

    fclose(f);

    if (n) {
        worker_log(WORKER_LOG_INFO, "replayed %d spooled orders from %s",
                   n, path);
    }

    spool_count_ops(w, n, rejected);

    return n;
}


/*
 * For nginx's /metrics, which has no other way to learn what this process
 * did: counted once the file is done, since a file Redis failed half way
 * is replayed whole again.  A count lost with Redis is a count, not an
 * order.
 */

static void
spool_count_ops(worker_t *w, int replayed, int rejected)
{
    char         n[2][16];
    const char  *argv[2][4] = {
        { "HINCRBY", LOYALTY_KEY_OPS, "spool_replayed", n[0] },
        { "HINCRBY", LOYALTY_KEY_OPS, "spool_rejected", n[1] }
    };

    snprintf(n[0], sizeof(n[0]), "%d", replayed);
    snprintf(n[1], sizeof(n[1]), "%d", rejected);

    if (replayed) {
        (void) worker_reply_ok(w, w->redis,
                               worker_command(w->redis, 4, argv[0], NULL));
    }

    if (rejected) {
        (void) worker_reply_ok(w, w->redis,
                               worker_command(w->redis, 4, argv[1], NULL));
    }
}


/*
 * 0 when done, -1 when Redis failed, 1 when the line is not a record (why
 * says how).  A call answering "conflict" ends its line: what follows it
 * was for an order that is not this customer's.
 */

static int
spool_replay_line(worker_t *w, char *line, size_t len, const char **why)
{
    int                     rc;
    size_t                  i;
    worker_arena_t          arena;
    worker_spool_record_t   rec;

    if (len > WORKER_SPOOL_LINE_MAX) {
        *why = "the line is too long";
        return 1;
    }

    arena.size = 16 * len + 4096;
    arena.used = 0;
    arena.buf = malloc(arena.size);
    if (arena.buf == NULL) {
        return -1;
    }

    rc = worker_spool_record_read(line, len, worker_arena_alloc, &arena,
                                  &rec, why);
    if (rc != 0) {
        free(arena.buf);
        return rc == -1 ? 1 : -1;
    }

    for (i = 0; i < rec.ncalls && rc == 0; i++) {
        rc = spool_call(w, &rec, &rec.calls[i]);
    }

    free(arena.buf);

    /* a conflict ends the line as done */
    return rc == 2 ? 0 : rc;
}


static int
spool_call(worker_t *w, const worker_spool_record_t *rec,
    const worker_spool_call_t *call)
{
    int          argc, i, rc;
    size_t       argvlen[WORKER_SPOOL_ARGS_MAX + 2];
    redisReply  *reply;
    const char  *argv[WORKER_SPOOL_ARGS_MAX + 2];

    argc = 0;

    if (call->script >= 0) {
        argv[argc] = "EVALSHA";
        argvlen[argc++] = 7;
        argv[argc] = loyalty_scripts[call->script].sha1;
        argvlen[argc++] = 40;
    }

    for (i = 0; i < call->argc; i++) {
        argv[argc] = call->argv[i];
        argvlen[argc++] = call->argvlen[i];
    }

    reply = worker_redis_argv(w, argc, argv, argvlen);
    if (reply == NULL) {
        return -1;
    }

    rc = 0;

    if (reply->type == REDIS_REPLY_ERROR) {
        worker_redis_error(w, reply->str);
        rc = -1;

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements
               && reply->element[0]->type == REDIS_REPLY_STRING
               && strcmp(reply->element[0]->str, "conflict") == 0)
    {
        /* the order is another customer's, or was other: nothing more */
        worker_log(WORKER_LOG_ERROR, "spooled order \"%s\" of customer "
                   "\"%s\" conflicts with one recorded before; not "
                   "recorded again", rec->order, rec->customer);
        rc = 2;

    } else if (call->script == LOYALTY_SCRIPT_order_record
               && spool_reply_is(reply, 6, "recorded"))
    {
        /* the first time this order is recorded: its event goes now */
        rc = spool_event(w, rec, reply);

        if (rc == 0) {
            rc = spool_count(w, rec, call, reply);
        }

    } else if (call->script == LOYALTY_SCRIPT_coupon_commit
               && spool_reply_is(reply, 2, "committed"))
    {
        rc = spool_count_coupon(w, call);
    }

    freeReplyObject(reply);

    return rc;
}


/*
 * A script's answer: an array of so many elements, a status string, then
 * integers.
 */

static int
spool_reply_is(redisReply *reply, size_t elements, const char *status)
{
    size_t  i;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != elements
        || reply->element[0]->type != REDIS_REPLY_STRING
        || strcmp(reply->element[0]->str, status) != 0)
    {
        return 0;
    }

    for (i = 1; i < elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
            return 0;
        }
    }

    return 1;
}


/* as ngx_http_loyalty_job_event() writes it, by argv like every command */

static int
spool_event(worker_t *w, const worker_spool_record_t *rec, redisReply *reply)
{
    int          i;
    char         id[256], points[32], pending[32], at[32], maxlen[32];
    size_t       argvlen[20];
    redisReply  *r;
    const char  *argv[20];

    snprintf(id, sizeof(id), "points_earned:%s", rec->order);
    snprintf(points, sizeof(points), "%lld", reply->element[1]->integer);
    snprintf(pending, sizeof(pending), "%lld", reply->element[2]->integer);
    snprintf(at, sizeof(at), "%lld", (long long) time(NULL));
    (void) worker_event_head(w, argv, maxlen, sizeof(maxlen));
    argv[6] = "type";
    argv[7] = "points_earned";
    argv[8] = "id";
    argv[9] = id;
    argv[10] = "customer";
    argv[11] = rec->customer;
    argv[12] = "order";
    argv[13] = rec->order;
    argv[14] = "points";
    argv[15] = points;
    argv[16] = "pending";
    argv[17] = pending;
    argv[18] = "at";
    argv[19] = at;

    for (i = 0; i < 20; i++) {
        argvlen[i] = strlen(argv[i]);
    }

    r = worker_redis_argv(w, 20, argv, argvlen);

    return worker_reply_ok(w, w->redis, r);
}


/*
 * The program's totals and the leaderboard, as nginx would have moved
 * them (ngx_http_loyalty_confirm.c): the order's value is its basis,
 * ARGV[5] of order_record.lua, after the keys.
 */

static int
spool_count(worker_t *w, const worker_spool_record_t *rec,
    const worker_spool_call_t *call, redisReply *reply)
{
    int          basis;
    long long    n, changes[6];
    const char  *fields[6];

    basis = atoi(call->argv[0]) + 5;

    n = reply->element[5]->integer;

    fields[0] = "pending";
    changes[0] = reply->element[1]->integer;
    fields[1] = "available";
    changes[1] = -reply->element[3]->integer;
    fields[2] = "redeemed";
    changes[2] = reply->element[3]->integer;
    fields[3] = "member_orders";
    changes[3] = 1;
    fields[4] = "member_value";
    changes[4] = basis < call->argc ? atoll(call->argv[basis]) : 0;
    fields[5] = n == 2 ? "repeat_customers" : "customers";
    changes[5] = (n == 1 || n == 2);

    if (worker_stats_add(w, 6, fields, changes) != 0) {
        return -1;
    }

    return worker_board_add(w, rec->customer, rec->customer_len,
                            reply->element[1]->integer);
}


/* A coupon's use: its code is in its key, loyalty:{coupon:CODE}. */

static int
spool_count_coupon(worker_t *w, const worker_spool_call_t *call)
{
    char         field[LOYALTY_KEY_MAX];
    long long    one;
    const char  *fields[1], *start, *end;

    if (call->argc < 2
        || (start = strstr(call->argv[1], "{coupon:")) == NULL
        || (end = strchr(start, '}')) == NULL)
    {
        return 0;
    }

    start += sizeof("{coupon:") - 1;
    snprintf(field, sizeof(field), "coupon:%.*s", (int) (end - start), start);
    fields[0] = field;
    one = 1;

    return worker_stats_add(w, 1, fields, &one);
}


static void
spool_reject(const char *dir, const char *line, size_t len, const char *why)
{
    FILE  *f;
    char   path[512];

    snprintf(path, sizeof(path), "%s/rejected.log", dir);

    f = fopen(path, "a");
    if (f == NULL) {
        worker_log(WORKER_LOG_ERROR, "a spooled line (%s) could not be set "
                   "aside: %.*s", why, (int) len, line);
        return;
    }

    fprintf(f, "%.*s\n", (int) (len && line[len - 1] == '\n' ? len - 1 : len),
            line);
    fclose(f);

    worker_log(WORKER_LOG_ERROR, "a spooled line is not a spool record; set "
               "aside in %s: %s", path, why);
}
