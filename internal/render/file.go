// SPDX-License-Identifier: Apache-2.0

package render

import "io/fs"

// FileKind names the kind of file m is, for the messages that refuse
// anything but a regular file: "a folder", "a FIFO", "a socket",
// "a character device", "a block device", "a regular file", else
// "a special file".
func FileKind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}
