/* Counting lines, words and bytes, like wc. */
#ifndef COUNT_H
#define COUNT_H

#include <stdio.h>

struct counts {
    unsigned long lines, words, bytes;
};

/* Counts everything `in` holds until end of file. Returns 0, or -1 on a read error. */
int count_stream(FILE *in, struct counts *out);

/* Prints `lines words bytes [name]`. */
void print_counts(const struct counts *c, const char *name);

#endif
