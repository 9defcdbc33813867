// SPDX-License-Identifier: Apache-2.0

//go:build !cgo

// Command floorplan needs verify's emulator side, built only with cgo.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "floorplan: built without cgo: rebuild with CGO_ENABLED=1")
	os.Exit(2)
}
