/*
 * A strict JSON reader for untrusted input (carts, admin requests).
 *
 * Unlike a general-purpose library it keeps every number as the text that
 * was sent, so money is converted exactly (loyalty_money_parse), and it
 * refuses what would let two readers of the same body disagree: duplicate
 * keys, invalid UTF-8, NUL characters.  Every dimension is bounded.
 */

#ifndef LOYALTY_JSON_H
#define LOYALTY_JSON_H

#include <stddef.h>


typedef enum {
    LOYALTY_JSON_NULL = 0,
    LOYALTY_JSON_FALSE,
    LOYALTY_JSON_TRUE,
    LOYALTY_JSON_NUMBER,
    LOYALTY_JSON_STRING,
    LOYALTY_JSON_ARRAY,
    LOYALTY_JSON_OBJECT
} loyalty_json_type_t;


typedef struct loyalty_json_s  loyalty_json_t;

struct loyalty_json_s {
    loyalty_json_type_t   type;
    const char           *key;      /* member name inside an object */
    size_t                key_len;
    const char           *text;     /* a number as written, or a string
                                       decoded; NUL-terminated */
    size_t                len;
    size_t                count;    /* members or elements */
    loyalty_json_t       *child;    /* the first member or element */
    loyalty_json_t       *next;
};


/* Memory for the tree; freed all at once by the caller (a pool, an arena). */
typedef void *(*loyalty_alloc_pt)(void *ctx, size_t size);


typedef struct {
    loyalty_alloc_pt      alloc;
    void                 *ctx;
    unsigned              max_depth;    /* nesting of arrays and objects */
    size_t                max_values;   /* values in the whole document */
    size_t                max_members;  /* members of one object */
    size_t                max_string;   /* bytes of one decoded string */
} loyalty_json_limits_t;


typedef struct {
    size_t                offset;       /* byte of the input at fault */
    const char           *reason;       /* static text */
    int                   limit;        /* valid JSON, beyond a limit */
} loyalty_json_error_t;


/* NULL on error, with err filled in (reason NULL: out of memory). */
loyalty_json_t *loyalty_json_parse(const char *text, size_t len,
    const loyalty_json_limits_t *limits, loyalty_json_error_t *err);

/* A member of an object by name, or NULL. */
const loyalty_json_t *loyalty_json_get(const loyalty_json_t *object,
    const char *key, size_t key_len);

/*
 * RFC 6901: "" is the whole document, "/lines/0/sku" a nested value, "~1"
 * and "~0" stand for "/" and "~".  NULL when nothing is there.
 */
const loyalty_json_t *loyalty_json_pointer(const loyalty_json_t *root,
    const char *pointer, size_t len);

/* 0 when the pointer is well formed (empty or starting with "/"). */
int loyalty_json_pointer_check(const char *pointer, size_t len);

const char *loyalty_json_type_name(loyalty_json_type_t type);

#endif /* LOYALTY_JSON_H */
