#include <stdarg.h>
#include <stdio.h>

#include "loyalty_out.h"


void
loyalty_out_init(loyalty_out_t *o, char *buf, size_t size)
{
    o->p = buf;
    o->end = buf + size;
    o->overflow = 0;
}


void
loyalty_out(loyalty_out_t *o, const char *fmt, ...)
{
    int      n;
    va_list  args;

    if (o->overflow) {
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(o->p, (size_t) (o->end - o->p), fmt, args);
    va_end(args);

    if (n < 0 || n >= o->end - o->p) {
        o->overflow = 1;
        return;
    }

    o->p += n;
}


void
loyalty_out_string(loyalty_out_t *o, const char *s, size_t len)
{
    size_t         i;
    unsigned char  ch;

    loyalty_out(o, "\"");

    for (i = 0; i < len && !o->overflow; i++) {
        ch = (unsigned char) s[i];

        if (ch == '"' || ch == '\\') {
            loyalty_out(o, "\\%c", ch);

        } else if (ch < 0x20) {
            loyalty_out(o, "\\u%04x", ch);

        } else {
            loyalty_out(o, "%c", ch);
        }
    }

    loyalty_out(o, "\"");
}


size_t
loyalty_out_done(loyalty_out_t *o, const char *buf)
{
    return o->overflow ? 0 : (size_t) (o->p - buf);
}
