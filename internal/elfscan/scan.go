package elfscan

import (
	"errors"
	"io"
	"os"
)

// ScanFile scans the ELF file at path.
func ScanFile(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	return Scan(fd, path)
}

// Scan finds every patch site in the ELF file read from r. path is recorded
// in the result and used in messages only.
func Scan(r io.ReaderAt, path string) (*File, error) {
	return nil, errors.New("elfscan: not implemented yet")
}
