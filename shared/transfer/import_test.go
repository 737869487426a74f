package transfer

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReadLine: lines end at '\n' (a '\r' before it is JSON space), the
// last may lack it, and a line over the bound is refused with its number
// whatever the reader's buffer size.
func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	for _, tc := range []struct {
		in   string
		max  int
		want []string
		err  string
	}{
		{"a\nb\r\n\nc", 10, []string{"a", "b\r", "", "c"}, ""},
		{long + "\n", 100, []string{long}, ""},
		{"ok\n" + long + "x\n", 100, []string{"ok"}, "line 2: longer than 100 bytes"},
		{long + "x", 100, nil, "line 1: longer than 100 bytes"},
		{"", 10, nil, ""},
	} {
		im := &importer{o: ImportOptions{MaxLineBytes: tc.max}, in: bufio.NewReaderSize(strings.NewReader(tc.in), 16)}
		var got []string
		var err error
		for {
			var l []byte
			if l, err = im.readLine(); err != nil {
				break
			}
			got = append(got, string(l))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: lines %q, want %q", tc.in, got, tc.want)
		}
		if tc.err == "" && !errors.Is(err, io.EOF) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
		}
	}
}
