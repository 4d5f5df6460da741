/* Writing JSON into a fixed buffer: append, and notice when it is full. */

#ifndef LOYALTY_OUT_H
#define LOYALTY_OUT_H

#include <stddef.h>


typedef struct {
    char    *p;
    char    *end;
    int      overflow;
} loyalty_out_t;


void loyalty_out_init(loyalty_out_t *o, char *buf, size_t size);

void loyalty_out(loyalty_out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A JSON string: '"', '\' and control characters escaped. */
void loyalty_out_string(loyalty_out_t *o, const char *s, size_t len);

/* The length written, or 0 when it did not fit. */
size_t loyalty_out_done(loyalty_out_t *o, const char *buf);

#endif /* LOYALTY_OUT_H */
