/*
 * Images: an upload becomes a display image (longest side at most 1080)
 * and a thumbnail (at most 320), both baseline JPEG without any metadata,
 * named by the SHA-256 of their bytes; GET /media/{name} serves them.
 *
 * Uploads are hostile until proven otherwise: only the loaders libvips
 * trusts with untrusted input run, only common photo formats are taken,
 * the cost of JPEG scans and TIFF pages is judged first (image_cost.c),
 * and the pixel count is checked from the header before any pixel is
 * decoded. Storing runs on the workers of image_pool.c.
 */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#define DISPLAY_MAX_SIDE 1080
#define THUMB_MAX_SIDE   320
#define JPEG_QUALITY     85

/* A truncated file must fail rather than come out half grey. */
#define LOAD_OPTIONS "fail_on=truncated"

static const char *const accepted_loaders[] = {
    "jpegload_buffer", "pngload_buffer",  "webpload_buffer",
    "gifload_buffer",  "tiffload_buffer", "heifload_buffer",
};

static int vips_started;

/* Moves libvips' error text into `err` and clears it for the next caller. */
static void take_vips_error(const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", what, vips_error_buffer());
    for (char *p = err; *p != '\0'; p++) {
        if (*p == '\n')
            *p = ' ';
    }
    vips_error_clear();
}

/* Setup */

static int make_directories(const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "media directory path too long");
        return -1;
    }

    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "creating %s failed: %s", path, strerror(errno));
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

int ingest_media_init(const lk_config *cfg, char *err, size_t errlen)
{
    if (VIPS_INIT("likes-ingest") != 0) {
        take_vips_error("libvips failed to start", err, errlen);
        return -1;
    }
    vips_started = 1;
    vips_block_untrusted_set(TRUE);

    /* Every upload is new bytes: cached operations would only hold on to
     * old uploads. */
    vips_cache_set_max(0);

    return make_directories(cfg->media_dir, err, errlen);
}

void ingest_media_shutdown(void)
{
    if (vips_started)
        vips_shutdown();
    vips_started = 0;
}

/* Decoding */

/* `loader` is a class name; its nickname ("pngload_buffer") is stable
 * across libvips versions where class names are not. */
static int is_accepted_loader(const char *loader)
{
    const char *nickname = vips_nickname_find(g_type_from_name(loader));
    if (nickname == NULL)
        return 0;

    for (size_t i = 0; i < sizeof(accepted_loaders) / sizeof(accepted_loaders[0]); i++) {
        if (strcmp(nickname, accepted_loaders[i]) == 0)
            return 1;
    }
    return 0;
}

static ingest_media_status check_header(const char *data, size_t len, int64_t max_pixels, char *err,
                                        size_t errlen)
{
    const char *loader = vips_foreign_find_load_buffer(data, len);
    if (loader == NULL || !is_accepted_loader(loader)) {
        vips_error_clear();
        snprintf(err, errlen, "no accepted image format recognised (%s)",
                 loader != NULL ? loader : "unknown");
        return INGEST_MEDIA_NOT_IMAGE;
    }

    VipsImage *header =
        vips_image_new_from_buffer(data, len, LOAD_OPTIONS, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (header == NULL) {
        take_vips_error("reading the image header failed", err, errlen);
        return INGEST_MEDIA_NOT_IMAGE;
    }

    int width = vips_image_get_width(header);
    int height = vips_image_get_height(header);
    g_object_unref(header);
    if ((int64_t)width * height > max_pixels) {
        snprintf(err, errlen, "the image has %dx%d pixels, more than the %lld accepted", width,
                 height, (long long)max_pixels);
        return INGEST_MEDIA_TOO_LARGE;
    }
    return INGEST_MEDIA_OK;
}

/* vips_thumbnail leaves 8-bit sRGB or grey, perhaps with alpha: JPEG has
 * no alpha, so flatten it onto white. */
static int flatten_alpha(VipsImage *in, VipsImage **out)
{
    if (!vips_image_hasalpha(in)) {
        g_object_ref(in);
        *out = in;
        return 0;
    }

    double max_alpha = in->BandFmt == VIPS_FORMAT_USHORT ? 65535.0 : 255.0;
    double white[3] = {max_alpha, max_alpha, max_alpha};
    int colour_bands = in->Bands - 1 < 3 ? in->Bands - 1 : 3;
    VipsArrayDouble *background = vips_array_double_new(white, colour_bands);
    int rc = vips_flatten(in, out, "background", background, "max_alpha", max_alpha, NULL);
    vips_area_unref(VIPS_AREA(background));
    return rc;
}

/* Brings what is left (16-bit, say) to 8-bit sRGB or grey. */
static int to_8bit(VipsImage *in, VipsImage **out)
{
    if (in->BandFmt == VIPS_FORMAT_UCHAR &&
        (in->Type == VIPS_INTERPRETATION_sRGB || in->Type == VIPS_INTERPRETATION_B_W)) {
        g_object_ref(in);
        *out = in;
        return 0;
    }

    VipsInterpretation space = in->Bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    VipsImage *converted;
    if (vips_colourspace(in, &converted, space, NULL) != 0)
        return -1;
    int rc = vips_cast_uchar(converted, out, NULL);
    g_object_unref(converted);
    return rc;
}

/* The display image, decoded into memory: the thumbnail and the save both
 * read it. Only the first page or frame of a multi-page file is loaded,
 * and the EXIF orientation is applied. */
static ingest_media_status make_display(const char *data, size_t len, VipsImage **out, char *err,
                                        size_t errlen)
{
    VipsImage *resized = NULL;
    VipsImage *flat = NULL;
    VipsImage *ready = NULL;

    if (vips_thumbnail_buffer((void *)data, len, &resized, DISPLAY_MAX_SIDE, "height",
                              DISPLAY_MAX_SIDE, "size", VIPS_SIZE_DOWN, "option_string",
                              LOAD_OPTIONS, NULL) != 0 ||
        to_8bit(resized, &flat) != 0 || flatten_alpha(flat, &ready) != 0 ||
        (*out = vips_image_copy_memory(ready)) == NULL) {
        take_vips_error("decoding the image failed", err, errlen);
        *out = NULL;
    }

    if (resized != NULL)
        g_object_unref(resized);
    if (flat != NULL)
        g_object_unref(flat);
    if (ready != NULL)
        g_object_unref(ready);
    return *out != NULL ? INGEST_MEDIA_OK : INGEST_MEDIA_NOT_IMAGE;
}

/* Saving */

static void content_name(const void *data, size_t len, const char *extension, char *name)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_Digest(data, len, digest, &digest_len, EVP_sha256(), NULL);

    for (unsigned int i = 0; i < digest_len; i++)
        snprintf(name + 2 * i, 3, "%02x", digest[i]);
    snprintf(name + 2 * digest_len, INGEST_MEDIA_NAME_LEN - 2 * digest_len, ".%s", extension);
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t written = write(fd, data, len);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            return -1;
        data += written;
        len -= (size_t)written;
    }
    return 0;
}

/* Readers never see a partial file: write a temporary one, then rename. */
static int write_atomically(const char *dir, const char *name, const void *data, size_t len,
                            char *err, size_t errlen)
{
    char final_path[PATH_MAX];
    char temp_path[PATH_MAX];
    snprintf(final_path, sizeof(final_path), "%s/%s", dir, name);
    snprintf(temp_path, sizeof(temp_path), "%s/.%s.XXXXXX", dir, name);

    /* The name is the hash of the bytes: a file already there holds them. */
    if (access(final_path, F_OK) == 0)
        return 0;

    int fd = mkstemp(temp_path);
    if (fd < 0) {
        snprintf(err, errlen, "creating %s failed: %s", temp_path, strerror(errno));
        return -1;
    }
    int failed = write_all(fd, data, len) != 0 || fchmod(fd, 0644) != 0 || fsync(fd) != 0;
    int saved_errno = errno;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        saved_errno = errno;
    }
    if (failed) {
        snprintf(err, errlen, "writing %s failed: %s", temp_path, strerror(saved_errno));
        unlink(temp_path);
        return -1;
    }
    if (rename(temp_path, final_path) != 0) {
        snprintf(err, errlen, "renaming %s failed: %s", temp_path, strerror(errno));
        unlink(temp_path);
        return -1;
    }
    return 0;
}

/* Saves `image` as JPEG without metadata (EXIF, GPS, XMP, ICC all
 * stripped) under its content name. */
static ingest_media_status save_jpeg(const char *dir, VipsImage *image, char *name, char *err,
                                     size_t errlen)
{
    void *jpeg = NULL;
    size_t jpeg_len = 0;
    if (vips_jpegsave_buffer(image, &jpeg, &jpeg_len, "Q", JPEG_QUALITY, "strip", TRUE,
                             "optimize_coding", TRUE, NULL) != 0) {
        take_vips_error("encoding JPEG failed", err, errlen);
        return INGEST_MEDIA_NOT_IMAGE;
    }

    content_name(jpeg, jpeg_len, "jpg", name);
    int rc = write_atomically(dir, name, jpeg, jpeg_len, err, errlen);
    g_free(jpeg);
    return rc == 0 ? INGEST_MEDIA_OK : INGEST_MEDIA_FAILED;
}

static ingest_media_status save_thumbnail(const char *dir, VipsImage *display, char *name,
                                          char *err, size_t errlen)
{
    VipsImage *thumb;
    if (vips_thumbnail_image(display, &thumb, THUMB_MAX_SIDE, "height", THUMB_MAX_SIDE, "size",
                             VIPS_SIZE_DOWN, "no_rotate", TRUE, NULL) != 0) {
        take_vips_error("making the thumbnail failed", err, errlen);
        return INGEST_MEDIA_FAILED;
    }

    ingest_media_status status = save_jpeg(dir, thumb, name, err, errlen);
    g_object_unref(thumb);
    return status;
}

ingest_media_status ingest_media_store(const lk_config *cfg, const char *data, size_t len,
                                       ingest_media *out, char *err, size_t errlen)
{
    VipsImage *display = NULL;
    ingest_media_status status = ingest_image_check_cost(data, len, err, errlen);
    if (status != INGEST_MEDIA_OK)
        goto done;

    status = check_header(data, len, cfg->max_image_pixels, err, errlen);
    if (status != INGEST_MEDIA_OK)
        goto done;

    status = make_display(data, len, &display, err, errlen);
    if (status != INGEST_MEDIA_OK)
        goto done;

    out->width = vips_image_get_width(display);
    out->height = vips_image_get_height(display);
    status = save_jpeg(cfg->media_dir, display, out->image_name, err, errlen);
    if (status == INGEST_MEDIA_OK)
        status = save_thumbnail(cfg->media_dir, display, out->thumb_name, err, errlen);
    g_object_unref(display);

done:
    /* This thread lives on: release libvips' per-thread buffers now. */
    vips_thread_shutdown();
    return status;
}

/* Serving */

/* Exactly 64 lowercase hex digits and a known extension: nothing else can
 * name a file here, so no path can leave the media directory. */
static const char *media_content_type(const char *name)
{
    if (strspn(name, "0123456789abcdef") != 64)
        return NULL;
    if (strcmp(name + 64, ".jpg") == 0)
        return "image/jpeg";
    if (strcmp(name + 64, ".webp") == 0)
        return "image/webp";
    return NULL;
}

/* The entity tag of a file is its name's hash, quoted: `etag` takes 67
 * bytes. */
static void media_etag(const char *name, char *etag)
{
    snprintf(etag, 67, "\"%.64s\"", name);
}

/* True when `list`, the value of an If-None-Match header, is "*" or names
 * `etag`. A weak tag (W/"...") counts as its strong twin, the weak
 * comparison RFC 9110 asks for here. Reading stops at a member that is
 * neither. */
static int etag_listed(const char *list, const char *etag)
{
    size_t etag_len = strlen(etag);
    const char *p = list;
    for (;;) {
        p += strspn(p, " \t,");
        if (*p == '\0')
            return 0;

        const char *tag = p;
        int any = *p == '*';
        if (any) {
            p++;
        } else {
            if (strncmp(tag, "W/", 2) == 0)
                tag += 2;
            const char *closing = *tag == '"' ? strchr(tag + 1, '"') : NULL;
            if (closing == NULL)
                return 0;
            p = closing + 1;
        }

        const char *after = p + strspn(p, " \t");
        if (*after != ',' && *after != '\0')
            return 0;
        if (any || ((size_t)(p - tag) == etag_len && memcmp(tag, etag, etag_len) == 0))
            return 1;
        p = after;
    }
}

typedef struct etag_search {
    const char *etag;
    int found;
} etag_search;

static enum MHD_Result search_if_none_match(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value)
{
    (void)kind;
    etag_search *search = cls;
    if (value != NULL && strcasecmp(key, MHD_HTTP_HEADER_IF_NONE_MATCH) == 0 &&
        etag_listed(value, search->etag)) {
        search->found = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

/* A client may send the header more than once: each counts. */
static int client_has_current(ingest_request *req, const char *etag)
{
    etag_search search = {etag, 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, search_if_none_match, &search);
    return search.found;
}

/* A name is a hash of the content: it never changes, and neither does what
 * a cache keeps of it. Sent with the 200 and with the 304 alike. */
static int add_cache_headers(struct MHD_Response *response, const char *etag)
{
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_ETAG, etag) != MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "public, max-age=31536000, immutable") != MHD_YES)
        return -1;
    return 0;
}

/* A 304 is built like the 200 it stands for, so that its Content-Length
 * is the file's, as RFC 9110 wants; libmicrohttpd sends no body with it. */
static enum MHD_Result reply_file(ingest_request *req, int fd, off_t size, const char *content_type)
{
    char etag[67];
    media_etag(req->path_name, etag);
    unsigned status = client_has_current(req, etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;

    /* The response owns `fd` from here on, and closes it. */
    struct MHD_Response *response = MHD_create_response_from_fd64((uint64_t)size, fd);
    if (response == NULL) {
        close(fd);
        return ingest_reply_internal(req, "no memory to answer with %s", req->path_name);
    }

    if (add_cache_headers(response, etag) != 0 ||
        (status == MHD_HTTP_OK &&
         (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) !=
              MHD_YES ||
          MHD_add_response_header(response, "X-Content-Type-Options", "nosniff") != MHD_YES))) {
        MHD_destroy_response(response);
        return ingest_reply_internal(req, "no memory for the headers of %s", req->path_name);
    }
    return ingest_reply_response(req, status, response);
}

enum MHD_Result ingest_media_get(ingest_request *req)
{
    const char *content_type = media_content_type(req->path_name);
    if (content_type == NULL)
        return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no such media file");

    /* Only a regular file of the media directory is served: not a
     * symbolic link (ELOOP), and not a FIFO or device, which O_NONBLOCK
     * keeps from blocking this thread in open (ENXIO for a socket). */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", req->app->cfg.media_dir, req->path_name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENXIO))
        return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no such media file");
    if (fd < 0)
        return ingest_reply_internal(req, "opening %s failed: %s", path, strerror(errno));

    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no such media file");
    }
    return reply_file(req, fd, st.st_size, content_type);
}
