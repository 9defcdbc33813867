// SPDX-License-Identifier: Apache-2.0

// Package dl loads a shared library with dlopen on first use, so that the
// ftpatch binary never names it in DT_NEEDED: it starts on a system without
// the library, and a command that does not need it does not pay for
// loading it. liblzma, libzstd and zlib (package input) and libunicorn
// (package verify/uc) come through here.
//
// A Library tries its file names in order; each package's C side binds the
// addresses of the symbols it asked for into its own table, and may reject a
// file (a wrong version), which is closed and the next name tried. A failed
// load binds nothing, so whatever was bound before (or the caller's
// fallback: the pure-Go decoders) keeps working.
//
// Without cgo the package is empty: nothing can be loaded.
package dl
