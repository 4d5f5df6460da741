#include "loyalty_code.h"


static int
loyalty_code_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
           || c == '\v';
}


loyalty_code_rc_t
loyalty_code_normalize(const char *in, size_t len, char *out,
    size_t *out_len, size_t *bad)
{
    char         c;
    size_t       n;
    const char  *p, *end;

    p = in;
    end = in + len;

    while (p < end && loyalty_code_space(*p)) {
        p++;
    }

    while (end > p && loyalty_code_space(end[-1])) {
        end--;
    }

    if (p == end) {
        return LOYALTY_CODE_EMPTY;
    }

    if ((size_t) (end - p) > LOYALTY_CODE_MAX) {
        return LOYALTY_CODE_TOO_LONG;
    }

    for (n = 0; p < end; p++) {
        c = *p;

        if (c >= 'a' && c <= 'z') {
            c = (char) (c - 'a' + 'A');
        }

        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '.'))
        {
            *bad = (size_t) (p - in);
            return LOYALTY_CODE_BAD_CHAR;
        }

        out[n++] = c;
    }

    out[n] = '\0';
    *out_len = n;

    return LOYALTY_CODE_OK;
}


loyalty_code_rc_t
loyalty_id_check(const char *id, size_t len, size_t max, size_t *bad)
{
    size_t  i;

    if (len == 0) {
        return LOYALTY_CODE_EMPTY;
    }

    if (len > max) {
        return LOYALTY_CODE_TOO_LONG;
    }

    for (i = 0; i < len; i++) {
        if (id[i] <= 0x20 || id[i] >= 0x7f || id[i] == '{' || id[i] == '}') {
            *bad = i;
            return LOYALTY_CODE_BAD_CHAR;
        }
    }

    return LOYALTY_CODE_OK;
}


const char *
loyalty_code_strerror(loyalty_code_rc_t rc)
{
    switch (rc) {
    case LOYALTY_CODE_OK:
        return "ok";
    case LOYALTY_CODE_EMPTY:
        return "is empty";
    case LOYALTY_CODE_TOO_LONG:
        return "is too long";
    case LOYALTY_CODE_BAD_CHAR:
        return "has a character that is not allowed";
    }

    return "is invalid";
}
