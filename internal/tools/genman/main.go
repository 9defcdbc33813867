// SPDX-License-Identifier: Apache-2.0

// Command genman writes a man page per ftpatch command into a folder,
// generated from the command tree itself (cobra/doc), so the pages say
// what --help says: `go run ./internal/tools/genman -version V DIR` (make
// man, make install). The date is SOURCE_DATE_EPOCH's when it is set, so a
// rebuild of one commit gives the same pages.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra/doc"

	"github.com/ftpatch/ftpatch/internal/cli"
)

func main() {
	version := flag.String("version", "", "the version the pages' footer names")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: genman [-version V] DIR")
		os.Exit(2)
	}
	if err := genMan(flag.Arg(0), *version); err != nil {
		fmt.Fprintf(os.Stderr, "genman: %v\n", err)
		os.Exit(1)
	}
}

// genMan writes the pages into dir.
func genMan(dir, version string) error {
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(sec, 0).UTC()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := cli.NewRoot(&cli.IO{Out: io.Discard, Err: io.Discard})
	root.DisableAutoGenTag = true   // the date is in the header; no "Auto generated" line
	root.InitDefaultCompletionCmd() // cobra adds it when run: its pages too
	source := "ftpatch"
	if version != "" {
		source += " " + version
	}
	return doc.GenManTree(root, &doc.GenManHeader{Title: "FTPATCH", Section: "1", Date: &date, Source: source, Manual: "ftpatch manual"}, dir)
}
