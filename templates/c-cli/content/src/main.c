/*
 * A command-line WebAssembly component in C, scaffolded by `kiln new --template c-cli`.
 *
 *   kiln run -- world                            Hello, world!
 *   kiln run --env GREETING=Howdy -- partner     Howdy, partner!
 *   echo "some text" | kiln run -- --count       counts lines, words and bytes of stdin
 *   kiln run --dir . -- --count Kiln.toml        counts a file (its directory must be granted)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "count.h"

static const char *usage =
    "usage: NAME...             print a greeting ($GREETING, default \"Hello\")\n"
    "       --count [FILE...]   count lines, words and bytes of FILEs, or of stdin\n";

static int count(int argc, char **argv) {
    struct counts c;
    if (argc == 0) {
        if (count_stream(stdin, &c) != 0) {
            fprintf(stderr, "error: reading stdin: %s\n", strerror(errno));
            return 1;
        }
        print_counts(&c, NULL);
        return 0;
    }
    int status = 0;
    for (int i = 0; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "error: %s: %s\n", argv[i], strerror(errno));
            status = 1;
            continue;
        }
        if (count_stream(f, &c) == 0) {
            print_counts(&c, argv[i]);
        } else {
            fprintf(stderr, "error: %s: %s\n", argv[i], strerror(errno));
            status = 1;
        }
        fclose(f);
    }
    return status;
}

int main(int argc, char **argv) {
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--count") == 0) {
        return count(argc - 2, argv + 2);
    }
    if (argc > 1 && argv[1][0] == '-') {
        fprintf(stderr, "error: unknown option `%s`\n%s", argv[1], usage);
        return 2;
    }
    const char *greeting = getenv("GREETING");
    printf("%s, ", greeting ? greeting : "Hello");
    if (argc == 1) {
        printf("world");
    }
    for (int i = 1; i < argc; i++) {
        printf("%s%s", i > 1 ? " " : "", argv[i]);
    }
    printf("!\n");
    return 0;
}
