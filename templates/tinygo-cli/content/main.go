// A command-line WebAssembly component in Go, scaffolded by `kiln new --template tinygo-cli`.
//
//	kiln run -- world                               Hello, world!
//	kiln run --env GREETING=Howdy -- partner        Howdy, partner!
//	echo "some text" | kiln run -- --count          counts lines, words and bytes of stdin
//	kiln run --dir .::/work -- --count /work/go.mod counts a file (its directory must be granted)
//
// Go's WASI port resolves relative paths against "/", so grant directories at absolute
// guest paths (`--dir data::/data`) and open files by those paths.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `usage: NAME...             print a greeting ($GREETING, default "Hello")
       --count [FILE...]   count lines, words and bytes of FILEs, or of stdin
`

func counts(b []byte) string {
	return fmt.Sprintf("%7d %7d %7d", bytes.Count(b, []byte{'\n'}), len(strings.Fields(string(b))), len(b))
}

func count(files []string) int {
	if len(files) == 0 {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: reading stdin: %v\n", err)
			return 1
		}
		fmt.Println(counts(b))
		return 0
	}
	status := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %v\n", err)
			status = 1
			continue
		}
		fmt.Printf("%s %s\n", counts(b), file)
	}
	return status
}

func main() {
	args := os.Args[1:]
	switch {
	case len(args) > 0 && (args[0] == "--help" || args[0] == "-h"):
		fmt.Print(usage)
	case len(args) > 0 && args[0] == "--count":
		os.Exit(count(args[1:]))
	case len(args) > 0 && strings.HasPrefix(args[0], "-"):
		fmt.Fprintf(os.Stderr, "error: unknown option `%s`\n%s", args[0], usage)
		os.Exit(2)
	default:
		greeting := os.Getenv("GREETING")
		if greeting == "" {
			greeting = "Hello"
		}
		name := "world"
		if len(args) > 0 {
			name = strings.Join(args, " ")
		}
		fmt.Printf("%s, %s!\n", greeting, name)
	}
}
