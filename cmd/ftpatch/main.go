// SPDX-License-Identifier: Apache-2.0

// Command ftpatch patches arm64 ELF function entries for call-ops tracing.
package main

import (
	"os"

	"github.com/ftpatch/ftpatch/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
