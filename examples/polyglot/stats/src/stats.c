/* The `stats` interface of kiln-examples:text, in C. kiln generates stats_lib.h (the
 * bindings for wit/world.wit) with wit-bindgen-c at build time. */
#include <stdlib.h>
#include <string.h>

#include "stats_lib.h"

static int is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void exports_kiln_examples_text_stats_count(stats_lib_string_t *text,
                                            exports_kiln_examples_text_stats_counts_t *ret) {
    uint32_t lines = 0, words = 0;
    int in_word = 0;
    for (size_t i = 0; i < text->len; i++) {
        uint8_t c = text->ptr[i];
        if (c == '\n') lines++;
        if (is_space(c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    /* A last line without a newline is a line. */
    if (text->len > 0 && text->ptr[text->len - 1] != '\n') lines++;
    ret->lines = lines;
    ret->words = words;
    ret->bytes = (uint32_t)text->len;
    stats_lib_string_free(text);
}

void exports_kiln_examples_text_stats_longest(stats_lib_string_t *text, uint32_t n,
                                              stats_lib_list_string_t *ret) {
    if (n > text->len) n = (uint32_t)text->len;
    stats_lib_string_t *best = calloc(n ? n : 1, sizeof *best);
    size_t found = 0;
    size_t i = 0;
    while (i < text->len) {
        while (i < text->len && is_space(text->ptr[i])) i++;
        size_t start = i;
        while (i < text->len && !is_space(text->ptr[i])) i++;
        size_t len = i - start;
        if (len == 0) break;
        /* Insert after every word at least as long (stable: earlier words first). */
        size_t at = found;
        while (at > 0 && best[at - 1].len < len) at--;
        if (at >= n) continue;
        if (found < n) found++;
        memmove(&best[at + 1], &best[at], (found - 1 - at) * sizeof *best);
        best[at].ptr = text->ptr + start;
        best[at].len = len;
    }
    /* Copy the words out: `text` is freed below. */
    for (size_t k = 0; k < found; k++) {
        uint8_t *copy = malloc(best[k].len);
        memcpy(copy, best[k].ptr, best[k].len);
        best[k].ptr = copy;
    }
    ret->ptr = best;
    ret->len = found;
    stats_lib_string_free(text);
}
