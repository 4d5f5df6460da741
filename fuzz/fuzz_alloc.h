/*
 * What the harnesses share: an allocator for the JSON reader that gives
 * each node its own malloc(), so that AddressSanitizer sees the bounds of
 * every one (a bump arena would hide an overrun into the next node), and
 * frees them all after each input.
 */

#ifndef FUZZ_ALLOC_H
#define FUZZ_ALLOC_H

#include <stdlib.h>


typedef struct {
    void    **blocks;
    size_t    n;
    size_t    cap;
    size_t    bytes;
    size_t    max;          /* bytes in all, as a pool would run out */
} fuzz_alloc_t;


static void * __attribute__((unused))
fuzz_alloc(void *ctx, size_t size)
{
    void          *p;
    fuzz_alloc_t  *a = ctx;

    if (a->bytes + size > a->max) {
        return NULL;
    }

    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->blocks = realloc(a->blocks, a->cap * sizeof(void *));
        if (a->blocks == NULL) {
            abort();
        }
    }

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    a->blocks[a->n++] = p;
    a->bytes += size;

    return p;
}


static void __attribute__((unused))
fuzz_alloc_free(fuzz_alloc_t *a)
{
    size_t  i;

    for (i = 0; i < a->n; i++) {
        free(a->blocks[i]);
    }

    free(a->blocks);
    a->blocks = NULL;
    a->n = 0;
    a->cap = 0;
    a->bytes = 0;
}


/* A property broken: a crash libFuzzer reports with the input. */
#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "property failed: %s (%s:%d)\n", #cond,         \
                    __FILE__, __LINE__);                                    \
            abort();                                                        \
        }                                                                   \
    } while (0)

#endif /* FUZZ_ALLOC_H */
