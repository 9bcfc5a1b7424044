/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Scalars as zvm prints them: durations, CPU time, sizes, timestamps, a
 * config value as its .conf text. Pure; each writes into the caller's
 * buffer (CLI_FORMAT_MAX bytes is enough) and returns it. */

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_FORMAT_MAX 32

/* "0s", "45s", "3m12s", "1h05m", "2d03h": the two most significant units,
 * the second zero-padded. Negative or NaN: "-". Returns buf. */
char *cli_format_duration(char *buf, size_t l, double seconds);

/* CPU time: "0.52s" below a minute, else as cli_format_duration(). */
char *cli_format_cpu(char *buf, size_t l, double seconds);

/* Powers of 1024 with one-letter units: "512B", "256M", "1G", "1.5G",
 * "223M" (exact values as integers, else one decimal below 10). */
char *cli_format_bytes(char *buf, size_t l, uint64_t bytes);

/* A MiB count as cli_format_bytes() does: 256 → "256M", 2048 → "2G". */
char *cli_format_mib(char *buf, size_t l, uint64_t mib);

/* Seconds since the epoch as "2024-05-01T12:00:00Z" (UTC, so the output does
 * not depend on the reader's time zone). */
char *cli_format_timestamp(char *buf, size_t l, int64_t t);

/* A config value as it appears in the .conf file: strings as they are,
 * integers in decimal, booleans as 1/0, null as "", anything else as
 * compact JSON. New string, NULL on OOM. */
char *cli_json_to_value_string(json_object *v);
