/*
 * The program's running counts, moved after the change they count: the
 * totals behind the program metrics (loyalty:{stats}, stats_add.lua) and
 * the leaderboards (loyalty:{board}:..., board_add.lua).
 *
 * Each nginx worker adds its counts up in memory and sends them every
 * NGX_HTTP_LOYALTY_STATS_FLUSH ms, one script call for the totals and one
 * for the leaderboards, however many orders they hold: a confirmation
 * costs Redis two scripts less.  Neither call is waited for: counts lost
 * with a connection are changes uncounted, never changes undone.  Counts
 * that could not be sent (Redis down) are kept and sent with the next
 * ones; a worker that exits sends what it has first.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_keys.h"


#define NGX_HTTP_LOYALTY_STATS_FLUSH    100     /* ms between sends */
#define NGX_HTTP_LOYALTY_STATS_FIELDS   64      /* totals in one send */
#define NGX_HTTP_LOYALTY_BOARD_ENTRIES  256     /* customers in one send */
#define NGX_HTTP_LOYALTY_STATS_NAMES    16384   /* bytes of their names */


typedef struct {
    ngx_str_t                 name;
    int64_t                   change;
} ngx_http_loyalty_count_t;


typedef struct {
    ngx_event_t               flush;
    time_t                    at;           /* the first count's time */
    ngx_uint_t                nfields;
    ngx_uint_t                nboard;
    size_t                    used;         /* of names */
    ngx_http_loyalty_count_t  fields[NGX_HTTP_LOYALTY_STATS_FIELDS];
    ngx_http_loyalty_count_t  board[NGX_HTTP_LOYALTY_BOARD_ENTRIES];
    u_char                    names[NGX_HTTP_LOYALTY_STATS_NAMES];
} ngx_http_loyalty_counts_t;


static ngx_int_t ngx_http_loyalty_counts_room(ngx_uint_t fields,
    ngx_uint_t board, size_t names);
static void ngx_http_loyalty_counts_name(ngx_str_t *dst, ngx_str_t *src);
static void ngx_http_loyalty_counts_added(void);
static void ngx_http_loyalty_counts_timer(ngx_event_t *ev);
static ngx_int_t ngx_http_loyalty_counts_send(void);
static void ngx_http_loyalty_counts_drop(const char *when);
static void ngx_http_loyalty_counts_send_totals(void);
static void ngx_http_loyalty_counts_send_board(void);


static ngx_http_loyalty_counts_t  ngx_http_loyalty_counts;


void
ngx_http_loyalty_stats_add(ngx_http_loyalty_stat_t *stats, ngx_uint_t n)
{
    size_t                      names;
    ngx_uint_t                  i, j;
    ngx_http_loyalty_count_t   *f;
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    names = 0;

    for (i = 0; i < n; i++) {
        names += stats[i].field.len;
    }

    if (ngx_http_loyalty_counts_room(n, 0, names) != NGX_OK) {
        return;
    }

    for (i = 0; i < n; i++) {
        if (stats[i].change == 0) {
            continue;
        }

        f = NULL;

        for (j = 0; j < c->nfields; j++) {
            if (c->fields[j].name.len == stats[i].field.len
                && ngx_memcmp(c->fields[j].name.data, stats[i].field.data,
                              stats[i].field.len) == 0)
            {
                f = &c->fields[j];
                break;
            }
        }

        if (f == NULL) {
            f = &c->fields[c->nfields++];
            f->change = 0;
            ngx_http_loyalty_counts_name(&f->name, &stats[i].field);
        }

        f->change += stats[i].change;
    }

    ngx_http_loyalty_counts_added();
}


void
ngx_http_loyalty_board_add(ngx_str_t *customer, int64_t points)
{
    ngx_http_loyalty_count_t   *b;
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    if (points == 0 || customer->len == 0) {
        return;
    }

    if (ngx_http_loyalty_counts_room(0, 1, customer->len) != NGX_OK) {
        return;
    }

    /* not merged per customer: two orders of one customer in one send
     * are rare, and ZINCRBY adds them up anyway */
    b = &c->board[c->nboard++];
    b->change = points;
    ngx_http_loyalty_counts_name(&b->name, customer);

    ngx_http_loyalty_counts_added();
}


/*
 * Makes room for what is about to be added: the counts held are sent
 * first when they are of another UTC day (the day's totals and the
 * month's board are named by it) or when the new ones might not fit.
 * Counts that cannot be sent then are dropped, with a warning.
 */

static ngx_int_t
ngx_http_loyalty_counts_room(ngx_uint_t fields, ngx_uint_t board,
    size_t names)
{
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    if (fields > NGX_HTTP_LOYALTY_STATS_FIELDS
        || board > NGX_HTTP_LOYALTY_BOARD_ENTRIES
        || names > NGX_HTTP_LOYALTY_STATS_NAMES)
    {
        return NGX_ERROR;
    }

    if (c->nfields + c->nboard == 0) {
        c->at = ngx_time();
        return NGX_OK;
    }

    if (c->at / 86400 == ngx_time() / 86400
        && c->nfields + fields <= NGX_HTTP_LOYALTY_STATS_FIELDS
        && c->nboard + board <= NGX_HTTP_LOYALTY_BOARD_ENTRIES
        && c->used + names <= NGX_HTTP_LOYALTY_STATS_NAMES)
    {
        return NGX_OK;
    }

    if (ngx_http_loyalty_counts_send() != NGX_OK) {
        ngx_http_loyalty_counts_drop("");
    }

    c->at = ngx_time();

    return NGX_OK;
}


static void
ngx_http_loyalty_counts_name(ngx_str_t *dst, ngx_str_t *src)
{
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    dst->data = c->names + c->used;
    dst->len = src->len;
    c->used += src->len;

    ngx_memcpy(dst->data, src->data, src->len);
}


/*
 * A worker on its way out sends at once; otherwise the timer does.  The
 * timer is not cancelable, so that a worker shutting down gracefully
 * waits for it.
 */

static void
ngx_http_loyalty_counts_added(void)
{
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    if (c->nfields + c->nboard == 0) {
        return;
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_http_loyalty_counts_timer(&c->flush);
        return;
    }

    if (!c->flush.timer_set) {
        c->flush.handler = ngx_http_loyalty_counts_timer;
        c->flush.log = ngx_cycle->log;
        c->flush.data = c;
        ngx_add_timer(&c->flush, NGX_HTTP_LOYALTY_STATS_FLUSH);
    }
}


static void
ngx_http_loyalty_counts_timer(ngx_event_t *ev)
{
    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ngx_http_loyalty_counts_send() == NGX_OK) {
        return;
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        ngx_http_loyalty_counts_drop(" at exit");
        return;
    }

    /* kept for the next try, which new counts do not delay */
    ngx_add_timer(ev, NGX_HTTP_LOYALTY_STATS_FLUSH);
}


/*
 * NGX_OK once both calls are on their way (or had nothing to send): the
 * counts are then let go.  Otherwise they are kept.
 */

static ngx_int_t
ngx_http_loyalty_counts_send(void)
{
    const ngx_http_loyalty_redis_stats_t  *rs;

    rs = ngx_http_loyalty_redis_stats();

    if (rs->state != NGX_HTTP_LOYALTY_REDIS_READY
        || rs->in_flight + 2 > NGX_HTTP_LOYALTY_REDIS_MAX_IN_FLIGHT)
    {
        return NGX_ERROR;
    }

    ngx_http_loyalty_counts_send_totals();
    ngx_http_loyalty_counts_send_board();

    ngx_http_loyalty_counts_drop(NULL);

    return NGX_OK;
}


/* Lets the counts go; when unsent ("when" not NULL), with a warning. */

static void
ngx_http_loyalty_counts_drop(const char *when)
{
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    if (when != NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "loyalty: %ui program totals and %ui leaderboard "
                      "entries not counted: redis unavailable%s",
                      c->nfields, c->nboard, when);
    }

    c->nfields = 0;
    c->nboard = 0;
    c->used = 0;
}


static void
ngx_http_loyalty_counts_send_totals(void)
{
    u_char                      now[NGX_INT64_LEN];
    u_char                      nums[NGX_HTTP_LOYALTY_STATS_FIELDS]
                                    [NGX_INT64_LEN];
    char                        keys[3][LOYALTY_KEY_MAX];
    ngx_str_t                   k[3], args[1 + 2
                                           * NGX_HTTP_LOYALTY_STATS_FIELDS];
    ngx_uint_t                  i, nargs;
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    nargs = 1;

    for (i = 0; i < c->nfields; i++) {
        if (c->fields[i].change == 0) {
            continue;
        }

        args[nargs] = c->fields[i].name;
        args[nargs + 1].data = nums[i];
        args[nargs + 1].len = ngx_sprintf(nums[i], "%L", c->fields[i].change)
                              - nums[i];
        nargs += 2;
    }

    if (nargs == 1) {
        return;
    }

    for (i = 0; i < 3; i++) {
        k[i].data = (u_char *) keys[i];
        k[i].len = loyalty_key_stats(keys[i], (int) i, c->at);
    }

    args[0].data = now;
    args[0].len = ngx_sprintf(now, "%T", c->at) - now;

    ngx_http_loyalty_redis_fire(LOYALTY_SCRIPT_stats_add, k, 3, args, nargs);
}


static void
ngx_http_loyalty_counts_send_board(void)
{
    u_char                      nums[NGX_HTTP_LOYALTY_BOARD_ENTRIES]
                                    [NGX_INT64_LEN];
    char                        month[LOYALTY_KEY_MAX], year[LOYALTY_KEY_MAX];
    ngx_str_t                   keys[2],
                                args[2 * NGX_HTTP_LOYALTY_BOARD_ENTRIES];
    ngx_uint_t                  i;
    ngx_http_loyalty_counts_t  *c = &ngx_http_loyalty_counts;

    if (c->nboard == 0) {
        return;
    }

    keys[0].data = (u_char *) month;
    keys[0].len = loyalty_key_board_at(month, c->at, 0);
    keys[1].data = (u_char *) year;
    keys[1].len = loyalty_key_board_at(year, c->at, 1);

    for (i = 0; i < c->nboard; i++) {
        args[2 * i] = c->board[i].name;
        args[2 * i + 1].data = nums[i];
        args[2 * i + 1].len = ngx_sprintf(nums[i], "%L", c->board[i].change)
                              - nums[i];
    }

    ngx_http_loyalty_redis_fire(LOYALTY_SCRIPT_board_add, keys, 2, args,
                                2 * c->nboard);
}
