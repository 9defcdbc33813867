// SPDX-License-Identifier: Apache-2.0

//go:build cgo

// Command floorplan writes the floor plan of an image for the bench's
// emulator floor (scripts/verify-floor.c): the runs `ftpatch verify IMAGE`
// makes, as verify.WriteFloorPlan lays them out. Built and run by
// scripts/bench.sh and scripts/kernel-check.sh; not installed.
//
//	floorplan [-trampoline SYM] [-seed N] IMAGE PLAN
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ftpatch/ftpatch/internal/elfscan"
	"github.com/ftpatch/ftpatch/internal/input"
	"github.com/ftpatch/ftpatch/internal/verify"
)

func main() {
	tramp := flag.String("trampoline", verify.DefaultTrampoline, "the trampoline enabled sites call")
	seed := flag.Uint64("seed", 1, "the seed of the register values (ftpatch verify --seed; default as there)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: floorplan [-trampoline SYM] [-seed N] IMAGE PLAN")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), verify.Options{Trampoline: *tramp, Seed: *seed}); err != nil {
		fmt.Fprintln(os.Stderr, "floorplan:", err)
		os.Exit(1)
	}
}

func run(path, plan string, opts verify.Options) error {
	o, err := elfscan.Open(path)
	if err != nil {
		return err
	}
	defer o.Close()
	if o.Compression != input.None {
		return fmt.Errorf("%s: the floor reads a plain image, not %s", path, o.Compression)
	}
	img, err := verify.LoadObject(o, opts)
	if err != nil {
		return err
	}
	defer img.Close()
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := os.Create(plan)
	if err != nil {
		return err
	}
	if err := verify.WriteFloorPlan(img, opts, f, out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
