/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "json-util.h"
#include "log.h"
#include "macro.h"

int json_prescan(const char *s, size_t len, unsigned max_depth, size_t max_values) {
        size_t values = 0;
        unsigned depth = 0;
        bool in_string = false;

        assert_return(s || len == 0, -EINVAL);

        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (in_string) {
                        if (c == '\\')
                                i++;            /* the escaped byte cannot end the string */
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '{':
                case '[':
                        if (++depth > max_depth || ++values > max_values)
                                return -E2BIG;
                        break;
                case ',':
                        if (++values > max_values)
                                return -E2BIG;
                        break;
                case '}':
                case ']':
                        if (depth == 0)
                                return -EBADMSG;
                        depth--;
                        break;
                case '\0':
                        return -EBADMSG;
                default:
                        break;
                }
        }
        return in_string || depth != 0 ? -EBADMSG : 0;
}

int json_parse_bounded(const char *s, size_t len, unsigned max_depth, size_t max_values, json_object **ret) {
        struct json_tokener *tok;
        json_object *o;
        enum json_tokener_error jerr;
        size_t end;
        int r;

        assert_return(s, -EINVAL);
        assert_return(s[len] == '\0', -EINVAL);
        assert_return(max_depth > 0 && max_depth < INT_MAX, -EINVAL);
        assert_return(ret, -EINVAL);

        if (len >= INT_MAX)
                return -E2BIG;
        r = json_prescan(s, len, max_depth, max_values);
        if (r < 0)
                return r;

        tok = json_tokener_new_ex((int) max_depth);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* With the NUL: the end of input, so that a bare number ends too. */
        o = json_tokener_parse_ex(tok, s, (int) len + 1);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                log_debug("Refusing JSON: %s", json_tokener_error_desc(jerr));
                json_object_put(o);
                return -EBADMSG;
        }
        for (; end < len; end++)
                if (!strchr(" \t\r\n", s[end])) {
                        json_object_put(o);
                        return -EBADMSG;
                }
        *ret = o;
        return 0;
}

json_object *json_object_new_fixed(double v, unsigned decimals) {
        char buf[64];

        /* json-c writes the string it is given as the number's text. */
        (void) snprintf(buf, sizeof(buf), "%.*f", (int) MIN(decimals, 9U), v);
        return json_object_new_double_s(v, buf);
}

int json_parse_bounded_object(const char *s, size_t len, unsigned max_depth, size_t max_values, json_object **ret) {
        json_object *o = NULL;
        int r;

        r = json_parse_bounded(s, len, max_depth, max_values, &o);
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

const char *json_get_string_member(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}
