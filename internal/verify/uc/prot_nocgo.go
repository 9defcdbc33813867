// SPDX-License-Identifier: Apache-2.0

//go:build !cgo

package uc

// Memory protections, for builds without cgo (see prot.go).
const (
	PROT_NONE  = protNone
	PROT_READ  = protRead
	PROT_WRITE = protWrite
	PROT_EXEC  = protExec
	PROT_ALL   = protAll
)
