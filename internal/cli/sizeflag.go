// SPDX-License-Identifier: Apache-2.0

package cli

// --max-decompressed SIZE.

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ftpatch/ftpatch/internal/input"
)

// addMaxDecompressedFlag adds --max-decompressed to a command that reads
// inputs (scan, verify, show): the cap on one compressed input's
// decompressed size, applied before the command runs.
func addMaxDecompressedFlag(cmd *cobra.Command) {
	v := &sizeFlag{n: input.DefaultMaxDecompressed}
	cmd.Flags().Var(v, "max-decompressed",
		"refuse a compressed input that decompresses to more than `SIZE` bytes (suffix K, M, G: powers of 1024)")
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		input.SetMaxDecompressed(v.n)
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// sizeFlag is a byte count given as digits with an optional K, M or G
// suffix (powers of 1024; KiB, MiB, GiB and a trailing B accepted).
type sizeFlag struct{ n int64 }

func (s *sizeFlag) String() string { return formatSize(s.n) }
func (s *sizeFlag) Type() string   { return "size" }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	s.n = n
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if k := len(t); k > 0 {
		switch t[k-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift > 0 {
			t = t[:k-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("bad size %q: want a positive number of bytes, optionally with K, M or G (e.g. 512M, 4G)", v)
	}
	return n << shift, nil
}

func formatSize(n int64) string {
	for _, u := range []struct {
		s     string
		shift uint
	}{{"G", 30}, {"M", 20}, {"K", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.s
		}
	}
	return strconv.FormatInt(n, 10)
}
