/*
 * Unpadded base64url (RFC 4648, section 5): text that travels in URLs and
 * headers untouched, for tokens and cursors.
 */
#ifndef LK_BASE64URL_H
#define LK_BASE64URL_H

#include <stddef.h>
#include <stdint.h>

/* Writes `len` bytes as unpadded base64url and a NUL into `out`, which
 * takes (len * 4 + 2) / 3 + 1 bytes. */
void lk_base64url_encode(const unsigned char *data, size_t len, char *out);

/* Decodes `len` characters of unpadded base64url into `out` (at least
 * len * 3 / 4 bytes). Returns the number of bytes, or -1 for a character
 * outside the alphabet or a length no encoding has. */
int lk_base64url_decode(const char *text, size_t len, unsigned char *out);

#endif
