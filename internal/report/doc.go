// Package report owns everything ftpatch prints about its results: every
// --json shape (scan, show, verify, verify --against, the error line of an
// input that failed) and every text renderer (tables, verdicts, site
// listings), so that a shape is defined once and its JSON and text forms
// sit side by side. The data packages (elfscan, livesafe, verify) return
// plain values and print nothing; the command line (package cli) calls
// this package to show them.
//
// It imports the data types it renders; nothing below it imports it. The
// leaf formatting primitives stay in package render (the one Hex type,
// places, relocation expressions, JSON string quoting) because the data
// packages need them too, for their error messages and problem details,
// and cannot import this package without a cycle. Disassembly is
// encode.Disasm, the one disassembler; this package adds only how a site's
// words are annotated (a BL's resolved target, a literal's value).
//
// Invariants:
//   - --json shapes are a contract (docs/json.md): fields are added, never
//     renamed or reordered.
//   - The hand-written scan encoder (AppendScan, WriteScan, StreamScan)
//     writes byte for byte what encoding/json writes for Scan(f); its tests
//     check that over every fixture and hostile names.
package report
