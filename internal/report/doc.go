// SPDX-License-Identifier: Apache-2.0

// Package report owns everything ftpatch prints about its results: every
// --json shape (scan, show, verify, verify --against, diff, the error line
// of an input that failed), every text renderer (tables, verdicts, site
// listings) and the reports CI systems read (JUnit XML, SARIF 2.1.0, with
// the rules they name), so that a shape is defined once and its forms sit
// side by side. It also reads back the one shape a later run takes as
// input: a saved scan --json (diff's base build). The data packages
// (elfscan, livesafe, verify, sitediff) return plain values and print
// nothing; the command line (package cli) calls this package to show them.
//
// It imports the data types it renders; nothing below it imports it. The
// leaf formatting primitives stay in package render (the one Hex type,
// places, relocation expressions, JSON string quoting) because the data
// packages need them too, for their error messages and problem details,
// and cannot import this package without a cycle. The data packages carry
// words, addresses and typed codes (verify's failed site words as
// encode.Placed, livesafe's change values and problem codes); this package
// says them. Disassembly is encode.Disasm, the one disassembler; this
// package adds only how a site's words are annotated (a BL's resolved
// target, a literal's value). Messages (errors, warnings, what a signal
// did) and the progress bars are written here too.
//
// Invariants:
//   - JUnit and SARIF are written as the results come: a JUnit suite's
//     testcases spool past 1 MiB to an unnamed temporary file, SARIF
//     results go out one by one; a kernel's sites never gather.
//   - --json shapes are a contract (docs/json.md): fields are added, never
//     renamed or reordered.
//   - The hand-written scan encoder (AppendScan, WriteScan, ScanStream)
//     writes byte for byte what encoding/json writes for the ScanFile value
//     its tests build (Scan, scanref_test.go); they
//     check that over every fixture and hostile names.
package report
