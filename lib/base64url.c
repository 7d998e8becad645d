#include "base64url.h"

#include <string.h>

static const char base64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void lk_base64url_encode(const unsigned char *data, size_t len, char *out)
{
    size_t used = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t group = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            group |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            group |= data[i + 2];

        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t c = 0; c < chars; c++)
            out[used++] = base64url[(group >> (18 - 6 * c)) & 0x3f];
    }
    out[used] = '\0';
}

int lk_base64url_decode(const char *text, size_t len, unsigned char *out)
{
    if (len % 4 == 1)
        return -1;

    uint32_t group = 0;
    int bits = 0;
    int used = 0;
    for (size_t i = 0; i < len; i++) {
        const char *found = text[i] != '\0' ? strchr(base64url, text[i]) : NULL;
        if (found == NULL)
            return -1;
        group = (group << 6) | (uint32_t)(found - base64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[used++] = (unsigned char)(group >> bits);
            group &= (1u << bits) - 1;
        }
    }
    return used;
}
