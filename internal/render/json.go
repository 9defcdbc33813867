// SPDX-License-Identifier: Apache-2.0

package render

import "unicode/utf8"

// AppendJSONString appends s quoted as encoding/json quotes strings
// (escaping <, > and & too when html, as json.Marshal does by default).
func AppendJSONString(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	b = AppendJSONStringBody(b, s, html)
	return append(b, '"')
}

// jsonSafe marks the ASCII bytes encoding/json copies as they are (its
// safeSet): everything but control characters, '"' and '\\'. jsonHTMLSafe
// also excludes '<', '>' and '&', which it escapes when escaping HTML.
var jsonSafe, jsonHTMLSafe = func() (s, h [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
		h[c] = s[c] && c != '<' && c != '>' && c != '&'
	}
	return
}()

// AppendJSONStringBody is encoding/json's appendString without the quotes:
// \" \\ \b \f \n \r \t, \u00XX for other control characters (and <, >, &
// when html), \ufffd for each byte of invalid UTF-8, and \u2028, \u2029.
func AppendJSONStringBody(b []byte, s string, html bool) []byte {
	const hex = "0123456789abcdef"
	safe := &jsonSafe
	if html {
		safe = &jsonHTMLSafe
	}
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
