/*
 * The web app: GET / and the files of its build in cfg.app_dir (index.html,
 * the service worker, the manifest and icons at the top, the bundles under
 * assets/). Only regular files inside that directory are served: a name
 * that could step out of it is refused before the file system sees it, and
 * a symbolic link that leads out of it is refused once resolved.
 */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The bundler names every file under assets/ by a hash of its content, so
 * a name never changes meaning. The other files keep their names from one
 * build to the next and must be asked for again each time, or a browser
 * would hold on to an index.html that points at bundles long gone. */
#define CACHE_IMMUTABLE  "public, max-age=31536000, immutable"
#define CACHE_REVALIDATE "no-cache"

#define ASSETS_PREFIX "/assets/"

/* The page loads nothing from elsewhere and runs no inline script. Images
 * chosen for upload are previewed from blob: URLs. */
#define PAGE_POLICY                                                                                \
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "         \
    "frame-ancestors 'none'; form-action 'self'"

typedef struct app_file_type {
    const char *extension;
    const char *content_type;
} app_file_type;

static const app_file_type file_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".webmanifest", "application/manifest+json"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".webp", "image/webp"},
    {".jpg", "image/jpeg"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *content_type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return "application/octet-stream";

    for (size_t i = 0; i < sizeof(file_types) / sizeof(file_types[0]); i++) {
        if (strcmp(dot, file_types[i].extension) == 0)
            return file_types[i].content_type;
    }
    return "application/octet-stream";
}

/* One path segment of letters, digits, '-', '_' and '.', not starting with
 * a dot: no "..", no hidden file, no separator, nothing to decode. */
static int name_is_safe(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX || name[0] == '.')
        return 0;

    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

/* Resolves `relative` under the app directory into `out`. Returns 0, 1 when
 * there is no such file inside the directory, or -1 with errno set when
 * the file system failed otherwise. */
static int resolve_inside(const char *app_dir, const char *relative, char *out)
{
    char root[PATH_MAX];
    if (realpath(app_dir, root) == NULL)
        return errno == ENOENT || errno == ENOTDIR ? 1 : -1;

    char joined[PATH_MAX];
    if (snprintf(joined, sizeof(joined), "%s/%s", root, relative) >= (int)sizeof(joined))
        return 1;
    if (realpath(joined, out) == NULL)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 1 : -1;

    size_t root_len = strlen(root);
    if (strncmp(out, root, root_len) != 0 || out[root_len] != '/')
        return 1;
    return 0;
}

/* Which file the route of the request names, as a path under the app
 * directory; 0, or -1 when the name is not one that may be served. */
static int relative_path(const ingest_request *req, char *out, size_t outlen)
{
    const char *pattern = req->route->pattern;
    if (strcmp(pattern, "/") == 0) {
        snprintf(out, outlen, "index.html");
        return 0;
    }
    if (!name_is_safe(req->path_name))
        return -1;

    int assets = strncmp(pattern, ASSETS_PREFIX, strlen(ASSETS_PREFIX)) == 0;
    int written = snprintf(out, outlen, "%s%s", assets ? "assets/" : "", req->path_name);
    return written < (int)outlen ? 0 : -1;
}

static int add_headers(struct MHD_Response *response, const char *relative)
{
    const char *content_type = content_type_of(relative);
    const char *cache = strncmp(relative, "assets/", 7) == 0 ? CACHE_IMMUTABLE : CACHE_REVALIDATE;

    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, cache) != MHD_YES ||
        MHD_add_response_header(response, "X-Content-Type-Options", "nosniff") != MHD_YES)
        return -1;

    if (strncmp(content_type, "text/html", 9) == 0 &&
        MHD_add_response_header(response, "Content-Security-Policy", PAGE_POLICY) != MHD_YES)
        return -1;
    return 0;
}

static enum MHD_Result reply_not_found(ingest_request *req)
{
    if (strcmp(req->route->pattern, "/") == 0)
        return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found",
                                  "the app is not built here: run make app");
    return ingest_reply_error(req, MHD_HTTP_NOT_FOUND, "not_found", "no such file");
}

enum MHD_Result ingest_app_files_get(ingest_request *req)
{
    char relative[NAME_MAX + 16];
    if (relative_path(req, relative, sizeof(relative)) != 0)
        return reply_not_found(req);

    char path[PATH_MAX];
    int found = resolve_inside(req->app->cfg.app_dir, relative, path);
    if (found > 0)
        return reply_not_found(req);
    if (found < 0)
        return ingest_reply_internal(req, "resolving %s under %s failed: %s", relative,
                                     req->app->cfg.app_dir, strerror(errno));

    /* O_NONBLOCK: a FIFO must not hold this thread in open (a socket
     * fails with ENXIO); fstat below turns away all but regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && (errno == ENOENT || errno == ELOOP || errno == ENXIO))
        return reply_not_found(req);
    if (fd < 0)
        return ingest_reply_internal(req, "opening %s failed: %s", path, strerror(errno));

    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return reply_not_found(req);
    }

    /* The response owns `fd` from here on, and closes it. */
    struct MHD_Response *response = MHD_create_response_from_fd64((uint64_t)st.st_size, fd);
    if (response == NULL) {
        close(fd);
        return ingest_reply_internal(req, "no memory to answer with %s", relative);
    }
    if (add_headers(response, relative) != 0) {
        MHD_destroy_response(response);
        return ingest_reply_internal(req, "no memory for the headers of %s", relative);
    }
    return ingest_reply_response(req, MHD_HTTP_OK, response);
}
