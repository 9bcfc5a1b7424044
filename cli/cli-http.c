/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <curl/curl.h>
#include <errno.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "cli-http.h"
#include "cli-output.h"
#include "cli-text.h"
#include "cli-tls.h"
#include "cli-util.h"
#include "log.h"
#include "string-util.h"
#include "zvm-config.h"

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *) NULL)->sun_path)

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

typedef struct HttpBuffer {
        char *data;
        size_t size, allocated;
        bool too_large;
} HttpBuffer;

/* Collects the answer, refusing to grow it past CLI_RESPONSE_MAX: returning
 * less than we were given makes libcurl fail the transfer. */
static size_t http_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        HttpBuffer *b = userdata;
        size_t n = size * nmemb;

        if (n > CLI_RESPONSE_MAX - b->size) {
                b->too_large = true;
                return 0;
        }
        if (b->size + n + 1 > b->allocated) {
                size_t a = MIN(MAX(b->allocated * 2, b->size + n + 1), (size_t) CLI_RESPONSE_MAX + 1);
                char *p = realloc(b->data, a);

                if (!p)
                        return 0;
                b->data = p;
                b->allocated = a;
        }
        memcpy(b->data + b->size, ptr, n);
        b->size += n;
        b->data[b->size] = '\0';
        return n;
}

/* "http://localhost/api/v1/vms" on the unix socket; with --url, the URL as
 * given, with or without a trailing "/api/v1". */
static char *http_url_full(const Cli *cli, const char *prefix, const char *path) {
        _cleanup_free_ char *base = strdup(cli->url ?: "http://localhost");
        size_t l;

        if (!base)
                return NULL;
        l = strlen(base);
        while (l > 0 && base[l - 1] == '/')
                base[--l] = '\0';
        if (l >= strlen(ZVM_API_PREFIX) && streq(base + l - strlen(ZVM_API_PREFIX), ZVM_API_PREFIX))
                base[l - strlen(ZVM_API_PREFIX)] = '\0';
        return strjoin(base, prefix, path);
}

static char *http_url(const Cli *cli, const char *path) {
        return http_url_full(cli, ZVM_API_PREFIX, path);
}

char *cli_http_url_root(const Cli *cli, const char *path) {
        return http_url_full(cli, "", path);
}

static const char *http_endpoint(const Cli *cli) {
        return cli->url ?: cli->socket_path;
}

/* Whether a failed transfer means zvmd's unix socket is not there yet or
 * not listening yet: nothing was sent, so the request can be tried again. */
static bool http_socket_not_ready(const Cli *cli, CURL *curl, CURLcode code) {
        long os_errno = 0;

        if (cli->url || code != CURLE_COULDNT_CONNECT)
                return false;
        (void) curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        return os_errno == ENOENT || os_errno == ECONNREFUSED;
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

/* Runs the transfer. A zvmd that was just started (by a script, or by
 * systemd at boot) binds its socket only after probing the host: while the
 * socket is missing or refuses, wait for it, at most CLI_START_WAIT_MS, so
 * "zvmd & zvm list" works. A zvmd that is not running at all costs that
 * wait once before the error. */
static CURLcode http_perform(const Cli *cli, CURL *curl) {
        uint64_t deadline = now_ms() + CLI_START_WAIT_MS;
        bool said = false;
        CURLcode code;

        for (;;) {
                code = curl_easy_perform(curl);
                if (!http_socket_not_ready(cli, curl, code) || now_ms() >= deadline)
                        return code;
                if (!said)
                        log_debug("zvmd's socket %s is not ready, waiting up to %u ms", cli->socket_path,
                                  CLI_START_WAIT_MS);
                said = true;
                cli_sleep_ms(CLI_START_POLL_MS);
        }
}

/* Turns a failed transfer into a message about reaching zvmd. */
int cli_http_log_transport_error(const Cli *cli, CURL *curl, CURLcode code, const char *errbuf,
                                 bool too_large) {
        const char *why = !isempty(errbuf) ? errbuf : curl_easy_strerror(code);
        curl_off_t connect_time = 0;
        long os_errno = 0;
        int r;

        r = cli_tls_log_error(cli, code, errbuf);      /* a pin mismatch, an unknown CA: said there */
        if (r != 0)
                return r;

        (void) curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        (void) curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_time);

        switch (code) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                if (os_errno == EACCES) {
                        (void) log_error_errno((int) os_errno, "cannot reach zvmd at %s: %m (only root and group zvm "
                                               "may use it: adduser $USER zvm, then log in again)",
                                               http_endpoint(cli));
                        return -EHOSTUNREACH;
                }
                if (os_errno > 0) {
                        (void) log_error_errno((int) os_errno, "cannot reach zvmd at %s: %m (is zvmd running?%s)",
                                               http_endpoint(cli),
                                               http_socket_not_ready(cli, curl, code) ?
                                               " zvm waited 5 s for it to start" : "");
                        return -EHOSTUNREACH;
                }
                /* On a unix socket, libcurl's own text names "localhost port 80". */
                log_error("cannot reach zvmd at %s: %s (is zvmd running?)", http_endpoint(cli),
                          cli->url ? why : curl_easy_strerror(code));
                return -EHOSTUNREACH;

        case CURLE_OPERATION_TIMEDOUT:
                if (connect_time == 0)
                        log_error("cannot reach zvmd at %s: no connection within %u s (is zvmd running?)",
                                  http_endpoint(cli), CLI_CONNECT_TIMEOUT_SEC);
                else
                        log_error("zvmd at %s did not answer within %u s", http_endpoint(cli), cli->timeout_sec);
                return -ETIMEDOUT;

        case CURLE_WRITE_ERROR:
        case CURLE_FILESIZE_EXCEEDED:
                if (too_large || code == CURLE_FILESIZE_EXCEEDED) {
                        log_error("the answer of zvmd is larger than %u MiB, refusing it", CLI_RESPONSE_MAX >> 20);
                        return -EFBIG;
                }
                return log_oom();

        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
                log_error("connection to zvmd at %s failed: %s", http_endpoint(cli), why);
                return -EHOSTUNREACH;

        default:
                log_error("request to zvmd at %s failed: %s", http_endpoint(cli), why);
                return -EIO;
        }
}

/* Shows zvmd's {"error": Name, "message": ..., "key": ...}, or the first
 * line of what we got instead. */
static int http_log_api_error(const Cli *cli, long status, const HttpBuffer *b) {
        _cleanup_(json_object_putp) json_object *o = b->data ? json_tokener_parse(b->data) : NULL;
        json_object *message = NULL, *error = NULL, *key = NULL;
        _cleanup_free_ char *mine = NULL;
        const char *m, *k;

        if (json_object_object_get_ex(o, "message", &message) && json_object_is_type(message, json_type_string)) {
                (void) json_object_object_get_ex(o, "error", &error);
                (void) json_object_object_get_ex(o, "key", &key);
                log_debug("zvmd: HTTP %ld %s", status, strnull(json_object_get_string(error)));

                m = json_object_get_string(message);
                /* zvmd says "VM 100"; the user typed a name. */
                mine = cli_message_for_user(m, cli->vm_name);
                if (mine)
                        m = mine;
                k = json_object_is_type(key, json_type_string) ? json_object_get_string(key) : NULL;
                log_error("%s%s%s%s%s", m,
                          k && !strstr(m, k) ? " (key '" : "", k && !strstr(m, k) ? k : "",
                          k && !strstr(m, k) ? "')" : "",
                          status == 401 && !cli->token ? " (give a token with --token-file, $ZVM_TOKEN_FILE or $ZVM_TOKEN)" : "");
        } else {
                int n = b->data ? (int) MIN(strcspn(b->data, "\r\n"), (size_t) 200) : 0;

                log_error("zvmd answered HTTP %ld%s%.*s", status, n > 0 ? ": " : "", n, strempty(b->data));
        }
        return cli_errno_from_http_status(status);
}

/* A file sent as the body (cli_http_upload()). */
typedef struct HttpUpload {
        int fd;
        uint64_t size, sent;
        const char *label;
        bool progress;
        uint64_t last_ms;
} HttpUpload;

static size_t upload_read(char *buf, size_t size, size_t nitems, void *userdata) {
        HttpUpload *up = userdata;
        ssize_t n;

        do
                n = read(up->fd, buf, size * nitems);
        while (n < 0 && errno == EINTR);
        return n < 0 ? CURL_READFUNC_ABORT : (size_t) n;
}

/* "Uploading m.gguf: 45% (238M of 529M)", rewritten in place twice a second. */
static int upload_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow) {
        HttpUpload *up = userdata;
        uint64_t now = now_ms();
        char a[32], b[32];

        if (!up->progress || ultotal <= 0 || (now - up->last_ms < 500 && ulnow < ultotal))
                return 0;
        up->last_ms = now;
        cli_format_bytes(a, sizeof(a), (uint64_t) ulnow);
        cli_format_bytes(b, sizeof(b), (uint64_t) ultotal);
        fprintf(stderr, "\rUploading %s: %3u%% (%s of %s)%s", up->label,
                (unsigned) ((uint64_t) ulnow * 100U / (uint64_t) ultotal), a, b, ulnow >= ultotal ? "\n" : "");
        fflush(stderr);
        if (ulnow >= ultotal)
                up->progress = false;
        return 0;
}

/* Sends the file: no overall deadline (it may be large), but a transfer
 * that moves nothing for CLI_UPLOAD_STALL_SEC is given up. */
static int http_setup_upload(CURL *curl, HttpUpload *up) {
        if (curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, upload_read) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_READDATA, up) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t) up->size) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 0L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long) CLI_UPLOAD_STALL_SEC) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, upload_progress) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_XFERINFODATA, up) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L) != CURLE_OK)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to set up libcurl for the upload");
        return 0;
}

int cli_http_setup(const Cli *cli, CURL *curl, const char *url, const char *content_type, const char *accept,
                   bool expect_continue, char *errbuf, struct curl_slist **ret_headers) {
        int r;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_free_ char *auth = NULL, *ctype = NULL, *acc = NULL;
        CURLcode code;

        if (!cli->url) {
                if (strlen(cli->socket_path) >= SUN_PATH_MAX)
                        return log_error_errno(SYNTHETIC_ERRNO(ENAMETOOLONG),
                                               "cannot reach zvmd at %s: socket path too long", cli->socket_path);
                code = curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, cli->socket_path);
                if (code != CURLE_OK)
                        return log_error_errno(SYNTHETIC_ERRNO(EOPNOTSUPP),
                                               "libcurl cannot talk over unix sockets: %s", curl_easy_strerror(code));
        }

        acc = strjoin("Accept: ", accept);
        if (!acc)
                return log_oom();
        headers = curl_slist_append(headers, acc);
        /* No "Expect: 100-continue" round trip for larger bodies, but for
         * an upload: zvmd may refuse it (name taken, no room) before the
         * file is sent, which it can say only if the client waits. */
        headers = curl_slist_append(headers, expect_continue ? "Expect: 100-continue" : "Expect:");
        /* Without a body, drop the form Content-Type libcurl would add to a POST. */
        ctype = strjoin("Content-Type:", content_type ? " " : "", strempty(content_type));
        if (!ctype)
                return log_oom();
        headers = curl_slist_append(headers, ctype);
        if (cli->token) {
                auth = strjoin("Authorization: Bearer ", cli->token);
                if (!auth)
                        return log_oom();
                headers = curl_slist_append(headers, auth);
        }
        if (!headers)
                return log_oom();

        if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
#if LIBCURL_VERSION_NUM >= 0x075500
            curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
#else
            curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS)) != CURLE_OK ||
#endif
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) CLI_CONNECT_TIMEOUT_SEC * 1000L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_USERAGENT, "zvm/" ZVM_VERSION) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to set up libcurl");
        r = cli_tls_setup(cli, curl);
        if (r < 0)
                return r;

        *ret_headers = TAKE_PTR(headers);
        return 0;
}

static int http_request_full(const Cli *cli, const char *method, const char *path, const char *data, size_t data_size,
                             const char *content_type, HttpUpload *up, char **ret_body, size_t *ret_size) {
        _cleanup_(curl_easy_cleanupp) CURL *curl = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_free_ char *url = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        HttpBuffer b = {};
        CURLcode code;
        long status = 0;
        int r;

        assert_return(cli && method && path, -EINVAL);

        url = http_url(cli, path);
        if (!url)
                return log_oom();

        curl = curl_easy_init();
        if (!curl)
                return log_oom();

        r = cli_http_setup(cli, curl, url, data || up ? content_type : NULL, "application/json", up != NULL, errbuf,
                           &headers);
        if (r < 0)
                return r;
        if (curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long) cli->timeout_sec * 1000L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) CLI_RESPONSE_MAX) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_write) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b) != CURLE_OK)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "failed to set up libcurl");

        if (up) {
                r = http_setup_upload(curl, up);
                if (r < 0)
                        return r;
        } else if (streq(method, "POST") || data) {
                /* POST with an empty body when there is none: Content-Length: 0. */
                if (curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) (data ? data_size : 0)) != CURLE_OK ||
                    curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, strempty(data)) != CURLE_OK)
                        return log_oom();
        }
        if (!streq(method, "GET") && !streq(method, "POST") && !(up && streq(method, "PUT")) &&
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK)
                return log_oom();

        log_debug("%s %s (%zu bytes of %s)", method, url, data ? data_size : 0, data ? content_type : "nothing");

        code = http_perform(cli, curl);
        if (code != CURLE_OK) {
                r = cli_http_log_transport_error(cli, curl, code, errbuf, b.too_large);
                free(b.data);
                return r;
        }

        (void) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        log_debug("HTTP %ld, %zu bytes", status, b.size);

        if (status < 200 || status >= 300) {
                r = http_log_api_error(cli, status, &b);
                free(b.data);
                return r;
        }

        if (ret_body)
                *ret_body = b.data ?: strdup("");
        else
                free(b.data);
        if (ret_body && !*ret_body)
                return log_oom();
        if (ret_size)
                *ret_size = b.size;
        return 0;
}

int cli_http_request_data(const Cli *cli, const char *method, const char *path, const char *data, size_t data_size,
                          const char *content_type, char **ret_body, size_t *ret_size) {
        return http_request_full(cli, method, path, data, data_size, content_type, NULL, ret_body, ret_size);
}

int cli_http_upload(const Cli *cli, const char *path, int fd, uint64_t size, const char *label, bool progress,
                    json_object **ret) {
        _cleanup_free_ char *answer = NULL;
        HttpUpload up = { .fd = fd, .size = size, .label = label, .progress = progress };
        int r;

        r = http_request_full(cli, "PUT", path, NULL, 0, "application/octet-stream", &up, &answer, NULL);
        if (r < 0)
                return r;
        if (ret) {
                *ret = json_tokener_parse(answer);
                if (!*ret)
                        return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "zvmd's answer is not JSON");
        }
        return 0;
}

int cli_http_request(const Cli *cli, const char *method, const char *path, json_object *body,
                     char **ret_body, size_t *ret_size) {
        _cleanup_free_ char *data = NULL;

        if (body) {
                data = strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
                if (!data)
                        return log_oom();
        }
        return cli_http_request_data(cli, method, path, data, data ? strlen(data) : 0, "application/json", ret_body,
                                     ret_size);
}

int cli_http_call(const Cli *cli, const char *method, const char *path, json_object *body,
                  json_object **ret) {
        _cleanup_free_ char *answer = NULL;
        json_tokener *tok;
        json_object *o;
        size_t size = 0;
        int r;

        r = cli_http_request(cli, method, path, body, &answer, &size);
        if (r < 0)
                return r;
        if (!ret)
                return 0;

        tok = json_tokener_new();
        if (!tok)
                return log_oom();
        o = json_tokener_parse_ex(tok, answer, (int) size);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != size) {
                json_tokener_free(tok);
                json_object_put(o);
                return log_error_errno(SYNTHETIC_ERRNO(EBADMSG), "zvmd sent an answer that is not JSON");
        }
        json_tokener_free(tok);

        *ret = o;
        return 0;
}
