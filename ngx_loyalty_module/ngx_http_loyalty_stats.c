/*
 * The program's running counts, moved just after the change they count:
 * the totals behind the program metrics (loyalty:{stats}, stats_add.lua)
 * and the leaderboards (loyalty:{board}:..., board_add.lua).  Neither is
 * waited for: a count lost with a connection is one change uncounted,
 * never a change undone.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_keys.h"


#define NGX_HTTP_LOYALTY_STATS_MAX  6       /* pairs in one call */


void
ngx_http_loyalty_stats_add(ngx_http_loyalty_stat_t *stats, ngx_uint_t n)
{
    u_char      nums[NGX_HTTP_LOYALTY_STATS_MAX][NGX_INT64_LEN];
    u_char      now[NGX_INT64_LEN];
    char        keys[3][LOYALTY_KEY_MAX];
    ngx_str_t   k[3], args[1 + 2 * NGX_HTTP_LOYALTY_STATS_MAX];
    ngx_uint_t  i, nargs;

    nargs = 1;

    for (i = 0; i < n && nargs + 2 <= 1 + 2 * NGX_HTTP_LOYALTY_STATS_MAX;
         i++)
    {
        if (stats[i].change == 0) {
            continue;
        }

        args[nargs] = stats[i].field;
        args[nargs + 1].data = nums[nargs / 2];
        args[nargs + 1].len = ngx_sprintf(nums[nargs / 2], "%L",
                                          stats[i].change)
                              - nums[nargs / 2];
        nargs += 2;
    }

    if (nargs == 1) {
        return;
    }

    for (i = 0; i < 3; i++) {
        k[i].data = (u_char *) keys[i];
        k[i].len = loyalty_key_stats(keys[i], (int) i, ngx_time());
    }

    args[0].data = now;
    args[0].len = ngx_sprintf(now, "%T", ngx_time()) - now;

    ngx_http_loyalty_redis_fire(LOYALTY_SCRIPT_stats_add, k, 3, args, nargs);
}


void
ngx_http_loyalty_board_add(ngx_str_t *customer, int64_t points)
{
    u_char     n[NGX_INT64_LEN];
    ngx_str_t  keys[2], args[2];
    char       month[LOYALTY_KEY_MAX], year[LOYALTY_KEY_MAX];

    if (points == 0 || customer->len == 0) {
        return;
    }

    keys[0].data = (u_char *) month;
    keys[0].len = loyalty_key_board_at(month, ngx_time(), 0);
    keys[1].data = (u_char *) year;
    keys[1].len = loyalty_key_board_at(year, ngx_time(), 1);
    args[0] = *customer;
    args[1].data = n;
    args[1].len = ngx_sprintf(n, "%L", points) - n;

    ngx_http_loyalty_redis_fire(LOYALTY_SCRIPT_board_add, keys, 2, args, 2);
}
