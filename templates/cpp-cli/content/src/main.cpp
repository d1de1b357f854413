// A command-line WebAssembly component in C++, scaffolded by `kiln new --template cpp-cli`.
//
//   kiln run -- world                            Hello, world!
//   echo "a b a" | kiln run -- --words           counts the words of stdin, most frequent first
//   kiln run --dir .::/work -- --words /work/src counts the words of every file named, or of
//                                                the files listed in a directory's index
//
// C++ is built against libc++ with exceptions off (`-fno-exceptions`). On WASI,
// std::filesystem::path works everywhere; directory iteration, file status and <fstream>
// need a libc++ built with filesystem support (wasi-sdk's), so files are read with <cstdio>.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

using Counts = std::map<std::string, int>;

static void count_words(std::istream &in, Counts &counts) {
    std::string word;
    while (in >> word) {
        std::transform(word.begin(), word.end(), word.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        ++counts[word];
    }
}

// Reads a whole file through <cstdio>; false (with errno set) when it cannot.
static bool read_file(const fs::path &path, std::string &out) {
    std::FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) {
        return false;
    }
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.append(buf, n);
    }
    bool ok = !std::ferror(f);
    std::fclose(f);
    return ok;
}

static void print_counts(const Counts &counts) {
    std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto &a, const auto &b) { return a.second > b.second; });
    for (const auto &[word, n] : sorted) {
        std::cout << n << ' ' << word << '\n';
    }
}

static int words(const std::vector<std::string> &args) {
    Counts counts;
    if (args.empty()) {
        count_words(std::cin, counts);
        print_counts(counts);
        return 0;
    }
    int status = 0;
    for (const auto &arg : args) {
        fs::path path = fs::path(arg).lexically_normal();
        std::string text;
        if (!read_file(path, text)) {
            std::cerr << "error: " << path.string() << ": " << std::strerror(errno) << '\n';
            status = 1;
            continue;
        }
        std::istringstream in(text);
        count_words(in, counts);
        std::cerr << "read " << path.filename().string() << " (" << text.size() << " bytes) from "
                  << path.parent_path().string() << '\n';
    }
    print_counts(counts);
    return status;
}

int main(int argc, char **argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
        std::cout << "usage: NAME...             print a greeting\n"
                     "       --words [FILE...]   count the words of FILEs, or of stdin\n";
        return 0;
    }
    if (!args.empty() && args[0] == "--words") {
        return words({args.begin() + 1, args.end()});
    }
    std::string name;
    for (const auto &arg : args) {
        name += (name.empty() ? "" : " ") + arg;
    }
    std::cout << "Hello, " << (name.empty() ? std::string("world") : name) << "!\n";
    return 0;
}
