/*
 * The Lua scripts that change state in Redis, embedded at build time from
 * the .lua files in ngx_loyalty_module/lua (see tools/embed-lua.sh).  The
 * module and the worker call them by EVALSHA with the hash computed then.
 */

#ifndef LOYALTY_SCRIPT_H
#define LOYALTY_SCRIPT_H

#include <stddef.h>


typedef enum {
#define LOYALTY_SCRIPT(name, sha1, source)  LOYALTY_SCRIPT_##name,
#include "loyalty_lua.h"
#undef LOYALTY_SCRIPT
    LOYALTY_SCRIPT_N
} loyalty_script_id_t;


typedef struct {
    const char  *name;
    const char  *sha1;              /* 40 hex digits */
    const char  *source;
    size_t       len;
} loyalty_script_t;


extern const loyalty_script_t  loyalty_scripts[LOYALTY_SCRIPT_N];

#endif /* LOYALTY_SCRIPT_H */
