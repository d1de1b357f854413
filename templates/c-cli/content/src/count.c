#include <ctype.h>

#include "count.h"

int count_stream(FILE *in, struct counts *out) {
    int c, in_word = 0;
    out->lines = out->words = out->bytes = 0;
    while ((c = fgetc(in)) != EOF) {
        out->bytes++;
        if (c == '\n') out->lines++;
        if (isspace(c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            out->words++;
        }
    }
    return ferror(in) ? -1 : 0;
}

void print_counts(const struct counts *c, const char *name) {
    printf("%7lu %7lu %7lu", c->lines, c->words, c->bytes);
    if (name) printf(" %s", name);
    printf("\n");
}
