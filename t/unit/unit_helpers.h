/*
 * What the unit tests of the core share; included after cmocka.h.
 *
 *   arena           a bump allocator that a test frees in one go
 *                   (UNIT_ARENA_SIZE bytes, 1 MB unless defined first)
 *   quoted()        printf with ' written for ", so that JSON reads as
 *                   it is in a C string
 *   json()          with UNIT_QUOTED_JSON: JSON written with ' for ", so
 *                   that carts and coupons read as they are, parsed into
 *                   the arena under `limits`; with UNIT_JSON_FRESH_ARENA
 *                   each call empties the arena first
 */

#ifndef UNIT_HELPERS_H
#define UNIT_HELPERS_H

#include <stdarg.h>
#include <stdio.h>

#include "loyalty_json.h"


#ifndef UNIT_ARENA_SIZE
#define UNIT_ARENA_SIZE  (1 << 20)
#endif


typedef struct {
    char    buf[UNIT_ARENA_SIZE];
    size_t  used;
} arena_t;

static arena_t  arena;


static void *
arena_alloc(void *ctx, size_t size)
{
    arena_t  *a = ctx;
    void     *p;

    size = (size + 7) & ~(size_t) 7;

    if (a->used + size > sizeof(a->buf)) {
        return NULL;
    }

    p = a->buf + a->used;
    a->used += size;

    return p;
}


/* a cmocka setup: each test starts with an empty arena */
static int __attribute__((unused))
reset_arena(void **state)
{
    (void) state;

    arena.used = 0;

    return 0;
}


static void __attribute__((unused))
quoted(char *buf, size_t size, const char *fmt, va_list args)
{
    char  *p;

    vsnprintf(buf, size, fmt, args);

    for (p = buf; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
}


#ifdef UNIT_QUOTED_JSON

static loyalty_json_limits_t  limits = {
    arena_alloc, &arena, 8, 4000, 32, 256
};

static char  text[1 << 16];


static const loyalty_json_t *
json(const char *fmt, ...)
{
    va_list                args;
    loyalty_json_t        *root;
    loyalty_json_error_t   jerr;

    va_start(args, fmt);
    quoted(text, sizeof(text), fmt, args);
    va_end(args);

#ifdef UNIT_JSON_FRESH_ARENA
    arena.used = 0;
#endif

    root = loyalty_json_parse(text, strlen(text), &limits, &jerr);
    assert_non_null(root);

    return root;
}

#endif /* UNIT_QUOTED_JSON */

#endif /* UNIT_HELPERS_H */
