/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-json.h"
#include "string-util.h"

typedef struct JsonParser {
        const char *start, *p, *end;
        Arena *arena;
        unsigned values;
        char *error;
        size_t error_size;
} JsonParser;

static Json *json_fail(JsonParser *P, const char *what) {
        if (P->error[0] == 0)
                snprintf(P->error, P->error_size, "malformed JSON: %s at byte %zu", what, (size_t) (P->p - P->start));
        return NULL;
}

static void json_skip_ws(JsonParser *P) {
        while (P->p < P->end && (*P->p == ' ' || *P->p == '\t' || *P->p == '\r' || *P->p == '\n'))
                P->p++;
}

static size_t utf8_put(char *out, uint32_t cp) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xC0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xE0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char) (0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char) (0xF0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char) (0x80 | (cp & 0x3F));
        return 4;
}

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = s[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -1;
        }
        *ret = v;
        return 0;
}

/* P->p is at the opening quote. The decoded string is never longer than its
 * escaped form, so one allocation of the source span suffices. */
static bool json_parse_string(JsonParser *P, const char **ret, size_t *ret_len) {
        const char *q = P->p + 1, *r, *stop;
        char *out, *o;

        while (q < P->end && *q != '"') {
                if (*q == '\\' && q + 1 < P->end)
                        q++;
                q++;
        }
        if (q >= P->end)
                return json_fail(P, "unterminated string"), false;
        stop = q;
        out = arena_alloc(P->arena, (size_t) (stop - P->p));
        if (!out)
                return json_fail(P, "out of memory"), false;
        o = out;
        for (r = P->p + 1; r < stop;) {
                unsigned char c = (unsigned char) *r;

                if (c == '\\') {
                        uint32_t cp, lo;

                        P->p = r;
                        switch (r[1]) {
                        case '"': *o++ = '"'; r += 2; break;
                        case '\\': *o++ = '\\'; r += 2; break;
                        case '/': *o++ = '/'; r += 2; break;
                        case 'b': *o++ = '\b'; r += 2; break;
                        case 'f': *o++ = '\f'; r += 2; break;
                        case 'n': *o++ = '\n'; r += 2; break;
                        case 'r': *o++ = '\r'; r += 2; break;
                        case 't': *o++ = '\t'; r += 2; break;
                        case 'u':
                                if (stop - r < 6 || hex4(r + 2, &cp) < 0)
                                        return json_fail(P, "bad \\u escape"), false;
                                r += 6;
                                if (cp >= 0xDC00 && cp <= 0xDFFF)
                                        return json_fail(P, "lone low surrogate"), false;
                                if (cp >= 0xD800 && cp <= 0xDBFF) {
                                        if (stop - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, &lo) < 0 ||
                                            lo < 0xDC00 || lo > 0xDFFF)
                                                return json_fail(P, "high surrogate without its low half"), false;
                                        r += 6;
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                }
                                o += utf8_put(o, cp);
                                break;
                        default:
                                return json_fail(P, "bad escape"), false;
                        }
                } else if (c < 0x20) {
                        P->p = r;
                        return json_fail(P, "control character in string"), false;
                } else {
                        size_t n = utf8_char_len(r, (size_t) (stop - r));

                        if (n == 0) {
                                P->p = r;
                                return json_fail(P, "invalid UTF-8 in string"), false;
                        }
                        memcpy(o, r, n);
                        o += n;
                        r += n;
                }
        }
        *o = 0;
        *ret = out;
        *ret_len = (size_t) (o - out);
        P->p = stop + 1;
        return true;
}

static bool json_parse_number(JsonParser *P, Json *v) {
        const char *s = P->p, *q = P->p;
        char tmp[JSON_MAX_NUMBER_LEN + 1];
        bool real = false;
        size_t len;

        if (q < P->end && *q == '-')
                q++;
        if (q < P->end && *q == '0')
                q++;
        else if (q < P->end && *q >= '1' && *q <= '9')
                while (q < P->end && isdigit((unsigned char) *q))
                        q++;
        else
                return json_fail(P, "bad number"), false;
        if (q < P->end && *q == '.') {
                real = true;
                q++;
                if (q >= P->end || !isdigit((unsigned char) *q))
                        return json_fail(P, "bad number"), false;
                while (q < P->end && isdigit((unsigned char) *q))
                        q++;
        }
        if (q < P->end && (*q == 'e' || *q == 'E')) {
                real = true;
                q++;
                if (q < P->end && (*q == '+' || *q == '-'))
                        q++;
                if (q >= P->end || !isdigit((unsigned char) *q))
                        return json_fail(P, "bad number"), false;
                while (q < P->end && isdigit((unsigned char) *q))
                        q++;
        }
        len = (size_t) (q - s);
        if (len > JSON_MAX_NUMBER_LEN)
                return json_fail(P, "number too long"), false;
        memcpy(tmp, s, len);
        tmp[len] = 0;
        if (!real) {
                char *e;
                long long x;

                errno = 0;
                x = strtoll(tmp, &e, 10);
                if (errno == 0 && *e == 0) {
                        v->type = JSON_INT;
                        v->i = x;
                        v->d = (double) x;
                        P->p = q;
                        return true;
                }
        }
        v->type = JSON_REAL;
        v->d = strtod(tmp, NULL);
        P->p = q;
        return true;
}

static Json *json_parse_value(JsonParser *P, unsigned depth);

static Json *json_new(JsonParser *P) {
        Json *v;

        if (++P->values > JSON_MAX_VALUES)
                return json_fail(P, "too many values");
        v = arena_alloc(P->arena, sizeof(Json));
        if (!v)
                return json_fail(P, "out of memory");
        *v = (Json) {};
        return v;
}

static void json_append(Json *parent, Json *child) {
        if (parent->last)
                parent->last->next = child;
        else
                parent->first = child;
        parent->last = child;
        parent->n++;
}

static Json *json_parse_container(JsonParser *P, unsigned depth, bool object) {
        Json *v = json_new(P);
        char close = object ? '}' : ']';

        if (!v)
                return NULL;
        if (depth > JSON_MAX_DEPTH)
                return json_fail(P, "nested deeper than 16");
        v->type = object ? JSON_OBJECT : JSON_ARRAY;
        P->p++;
        json_skip_ws(P);
        if (P->p < P->end && *P->p == close) {
                P->p++;
                return v;
        }
        for (;;) {
                const char *key = NULL;
                size_t key_len = 0;
                Json *child;

                json_skip_ws(P);
                if (object) {
                        if (P->p >= P->end || *P->p != '"')
                                return json_fail(P, "expected a member name");
                        if (!json_parse_string(P, &key, &key_len))
                                return NULL;
                        json_skip_ws(P);
                        if (P->p >= P->end || *P->p != ':')
                                return json_fail(P, "expected ':'");
                        P->p++;
                }
                child = json_parse_value(P, depth);
                if (!child)
                        return NULL;
                child->key = key;
                child->key_len = key_len;
                json_append(v, child);
                json_skip_ws(P);
                if (P->p < P->end && *P->p == ',') {
                        P->p++;
                        continue;
                }
                if (P->p < P->end && *P->p == close) {
                        P->p++;
                        return v;
                }
                return json_fail(P, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
}

static bool json_literal(JsonParser *P, const char *word) {
        size_t n = strlen(word);

        if ((size_t) (P->end - P->p) < n || memcmp(P->p, word, n) != 0)
                return false;
        P->p += n;
        return true;
}

static Json *json_parse_value(JsonParser *P, unsigned depth) {
        Json *v;

        json_skip_ws(P);
        if (P->p >= P->end)
                return json_fail(P, "unexpected end");
        switch (*P->p) {
        case '{':
                return json_parse_container(P, depth + 1, true);
        case '[':
                return json_parse_container(P, depth + 1, false);
        case '"':
                v = json_new(P);
                if (!v)
                        return NULL;
                v->type = JSON_STRING;
                return json_parse_string(P, &v->s, &v->len) ? v : NULL;
        case 't':
        case 'f':
        case 'n':
                v = json_new(P);
                if (!v)
                        return NULL;
                if (json_literal(P, "true"))
                        *v = (Json) { .type = JSON_BOOL, .b = true };
                else if (json_literal(P, "false"))
                        *v = (Json) { .type = JSON_BOOL, .b = false };
                else if (json_literal(P, "null"))
                        *v = (Json) { .type = JSON_NULL };
                else
                        return json_fail(P, "unexpected word");
                return v;
        default:
                if (*P->p == '-' || isdigit((unsigned char) *P->p)) {
                        v = json_new(P);
                        if (!v)
                                return NULL;
                        return json_parse_number(P, v) ? v : NULL;
                }
                return json_fail(P, "unexpected character");
        }
}

/* Parses one complete JSON text. Returns NULL with a message in error. */
Json *json_parse(Arena *arena, const char *text, size_t len, char *error, size_t error_size) {
        JsonParser P = {
                .start = text, .p = text, .end = text + len,
                .arena = arena, .error = error, .error_size = error_size,
        };
        Json *v;

        error[0] = 0;
        v = json_parse_value(&P, 0);
        if (!v)
                return NULL;
        json_skip_ws(&P);
        if (P.p != P.end)
                return json_fail(&P, "trailing data");
        return v;
}

const Json *json_get(const Json *obj, const char *key) {
        size_t n = strlen(key);

        if (!obj || obj->type != JSON_OBJECT)
                return NULL;
        for (const Json *m = obj->first; m; m = m->next)
                if (m->key_len == n && memcmp(m->key, key, n) == 0)
                        return m;
        return NULL;
}

bool json_is_cstring(const Json *v) {
        return v && v->type == JSON_STRING && strlen(v->s) == v->len;
}

/* Writes s as a JSON string. Bytes that are not valid UTF-8 (file names,
 * hostnames, messages are not ours to trust) become U+FFFD. */
void json_put_string(Buf *b, const char *s, size_t len) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        if (!buf_reserve(b, len + 2))
                return;
        buf_putc(b, '"');
        while (p < end) {
                const unsigned char *run = p;
                size_t n;

                while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
                        p++;
                buf_put(b, run, (size_t) (p - run));
                if (p >= end)
                        break;
                switch (*p) {
                case '"': buf_puts(b, "\\\""); p++; continue;
                case '\\': buf_puts(b, "\\\\"); p++; continue;
                case '\n': buf_puts(b, "\\n"); p++; continue;
                case '\r': buf_puts(b, "\\r"); p++; continue;
                case '\t': buf_puts(b, "\\t"); p++; continue;
                case '\b': buf_puts(b, "\\b"); p++; continue;
                case '\f': buf_puts(b, "\\f"); p++; continue;
                default:
                        break;
                }
                if (*p < 0x20) {
                        char e[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };

                        buf_put(b, e, sizeof(e));
                        p++;
                        continue;
                }
                n = utf8_char_len((const char *) p, (size_t) (end - p));
                if (n == 0) {
                        buf_puts(b, "\xef\xbf\xbd");
                        p++;
                } else {
                        buf_put(b, p, n);
                        p += n;
                }
        }
        buf_putc(b, '"');
}

void json_put_cstring(Buf *b, const char *s) {
        json_put_string(b, s, strlen(s));
}

void json_put_double(Buf *b, double d, int decimals) {
        if (!isfinite(d))
                buf_puts(b, "null");
        else
                buf_printf(b, "%.*f", decimals, d);
}

/* Re-serializes a parsed value (the request's id, echoed). */
void json_put_value(Buf *b, const Json *v) {
        if (!v) {
                buf_puts(b, "null");
                return;
        }
        switch (v->type) {
        case JSON_NULL:
                buf_puts(b, "null");
                break;
        case JSON_BOOL:
                buf_puts(b, v->b ? "true" : "false");
                break;
        case JSON_INT:
                buf_printf(b, "%lld", (long long) v->i);
                break;
        case JSON_REAL:
                if (isfinite(v->d)) {
                        char tmp[32];

                        /* Keep a real a real: 1.0 must not come back as 1. */
                        snprintf(tmp, sizeof(tmp), "%.17g", v->d);
                        buf_puts(b, tmp);
                        if (!strpbrk(tmp, ".eE"))
                                buf_puts(b, ".0");
                } else
                        buf_puts(b, "null");
                break;
        case JSON_STRING:
                json_put_string(b, v->s, v->len);
                break;
        case JSON_ARRAY:
        case JSON_OBJECT:
                buf_putc(b, v->type == JSON_ARRAY ? '[' : '{');
                for (const Json *c = v->first; c; c = c->next) {
                        if (c != v->first)
                                buf_putc(b, ',');
                        if (v->type == JSON_OBJECT) {
                                json_put_string(b, c->key, c->key_len);
                                buf_putc(b, ':');
                        }
                        json_put_value(b, c);
                }
                buf_putc(b, v->type == JSON_ARRAY ? ']' : '}');
                break;
        }
}


void json_put_key(Buf *b, const char *key) {
        buf_putc(b, ',');
        json_put_cstring(b, key);
        buf_putc(b, ':');
}
