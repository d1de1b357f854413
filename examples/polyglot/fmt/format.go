// The `format` interface of kiln-examples:text, in Go. kiln's glue (generated from
// wit/world.wit at build time) exports FormatTitle and FormatTable and declares FormatRow.
package main

import (
	"fmt"
	"strings"
)

func FormatTitle(text string) string {
	return text + "\n" + strings.Repeat("=", len(text))
}

func FormatTable(rows []FormatRow) string {
	width := 0
	for _, row := range rows {
		width = max(width, len(row.Label))
	}
	var out strings.Builder
	for _, row := range rows {
		fmt.Fprintf(&out, "%-*s %6d\n", width, row.Label, row.Value)
	}
	return out.String()
}

func main() {}
