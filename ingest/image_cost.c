/*
 * What an upload would cost libvips, judged from its structure before any
 * loader runs.
 *
 * The pixel count bounds most of the work, but not all of it: libjpeg
 * decodes every scan of a progressive JPEG over the whole image (a valid
 * file can hold thousands, one per coefficient bit), and libtiff walks
 * every page of a TIFF just to read its header, though only the first is
 * shown. Both counts are read here by walking markers and page offsets,
 * which costs a pass over the bytes at most.
 */
#include "ingest.h"

#include <stdio.h>
#include <string.h>

/* Encoders write 1 to 3 scans for a baseline JPEG and about 10 for a
 * progressive one; each scan costs a pass over every pixel. */
#define JPEG_MAX_SCANS 100

/* Multi-page scans and faxes run to a few hundred. */
#define TIFF_MAX_PAGES 1000

#define JPEG_SOI  0xD8
#define JPEG_EOI  0xD9
#define JPEG_SOS  0xDA
#define JPEG_TEM  0x01
#define JPEG_RST0 0xD0
#define JPEG_RST7 0xD7

static int is_restart(unsigned char marker)
{
    return marker >= JPEG_RST0 && marker <= JPEG_RST7;
}

/* From `pos` inside entropy-coded data to the next marker: a 0xFF that is
 * neither a stuffed zero nor a restart marker. */
static size_t skip_entropy_data(const unsigned char *data, size_t len, size_t pos)
{
    while (pos < len) {
        const unsigned char *ff = memchr(data + pos, 0xFF, len - pos);
        if (ff == NULL || (size_t)(ff - data) + 1 >= len)
            return len;

        pos = (size_t)(ff - data);
        unsigned char next = data[pos + 1];
        if (next == 0x00 || is_restart(next))
            pos += 2;
        else if (next == 0xFF)
            pos += 1; /* fill byte before a marker */
        else
            return pos;
    }
    return len;
}

/* Counts the scans (SOS markers) up to EOI the way libjpeg reads them:
 * segments skipped by their length, bytes between markers ignored.
 * Stops counting past JPEG_MAX_SCANS. */
static int count_jpeg_scans(const unsigned char *data, size_t len)
{
    size_t pos = 2;
    int scans = 0;

    while (pos + 1 < len && scans <= JPEG_MAX_SCANS) {
        if (data[pos] != 0xFF) {
            const unsigned char *ff = memchr(data + pos, 0xFF, len - pos);
            if (ff == NULL)
                break;
            pos = (size_t)(ff - data);
            continue;
        }

        unsigned char marker = data[pos + 1];
        if (marker == JPEG_EOI)
            break;
        if (marker == 0xFF) {
            pos += 1;
            continue;
        }
        if (marker == 0x00 || marker == JPEG_TEM || marker == JPEG_SOI || is_restart(marker)) {
            pos += 2;
            continue;
        }
        if (pos + 4 > len)
            break;

        size_t segment = ((size_t)data[pos + 2] << 8) | data[pos + 3];
        pos += 2 + segment;
        if (marker == JPEG_SOS) {
            scans++;
            pos = skip_entropy_data(data, len, pos);
        }
    }
    return scans;
}

static uint64_t read_uint(const unsigned char *p, size_t bytes, int big_endian)
{
    uint64_t value = 0;
    for (size_t i = 0; i < bytes; i++) {
        size_t k = big_endian ? i : bytes - 1 - i;
        value = (value << 8) | p[k];
    }
    return value;
}

/* Follows the chain of image file directories, classic or BigTIFF, and
 * counts them; stops past TIFF_MAX_PAGES, at a loop's end, or where the
 * file is cut (libtiff judges that). */
static int count_tiff_pages(const unsigned char *data, size_t len)
{
    int big_endian = data[0] == 'M';
    int bigtiff = read_uint(data + 2, 2, big_endian) == 43;
    size_t count_size = bigtiff ? 8 : 2;
    size_t entry_size = bigtiff ? 20 : 12;
    size_t offset_size = bigtiff ? 8 : 4;
    if (len < 8 + (bigtiff ? 8 : 0))
        return 0;

    uint64_t offset = read_uint(data + (bigtiff ? 8 : 4), offset_size, big_endian);
    int pages = 0;
    while (offset != 0 && pages <= TIFF_MAX_PAGES) {
        if (offset >= len || len - offset < count_size)
            break;
        uint64_t entries = read_uint(data + offset, count_size, big_endian);
        if (entries > (len - offset - count_size) / entry_size)
            break;

        pages++;
        uint64_t next_field = offset + count_size + entries * entry_size;
        if (len - next_field < offset_size)
            break;
        offset = read_uint(data + next_field, offset_size, big_endian);
    }
    return pages;
}

static int is_tiff(const unsigned char *data, size_t len)
{
    return len >= 4 && (memcmp(data, "II*\0", 4) == 0 || memcmp(data, "MM\0*", 4) == 0 ||
                        memcmp(data, "II+\0", 4) == 0 || memcmp(data, "MM\0+", 4) == 0);
}

ingest_media_status ingest_image_check_cost(const char *bytes, size_t len, char *err, size_t errlen)
{
    const unsigned char *data = (const unsigned char *)bytes;

    if (len >= 3 && data[0] == 0xFF && data[1] == JPEG_SOI && data[2] == 0xFF &&
        count_jpeg_scans(data, len) > JPEG_MAX_SCANS) {
        snprintf(err, errlen, "the JPEG has more than %d scans", JPEG_MAX_SCANS);
        return INGEST_MEDIA_TOO_LARGE;
    }
    if (is_tiff(data, len) && count_tiff_pages(data, len) > TIFF_MAX_PAGES) {
        snprintf(err, errlen, "the TIFF has more than %d pages", TIFF_MAX_PAGES);
        return INGEST_MEDIA_TOO_LARGE;
    }
    return INGEST_MEDIA_OK;
}
