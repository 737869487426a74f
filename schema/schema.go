// Package schema embeds the GraphQL SDL of Circuit Breaker: the contract
// between the edge and its clients. The .graphql files are the source.
package schema

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed *.graphql
var files embed.FS

// File is one SDL file.
type File struct {
	Name string
	Text string
}

// Files returns the SDL files in name order.
func Files() []File {
	names, _ := fs.Glob(files, "*.graphql")
	sort.Strings(names)
	out := make([]File, 0, len(names))
	for _, n := range names {
		b, _ := files.ReadFile(n)
		out = append(out, File{Name: n, Text: string(b)})
	}
	return out
}
