// SPDX-License-Identifier: Apache-2.0

package render

import "strconv"

// Count is n and its noun, singular for exactly one: "1 site", "2 sites",
// "0 sites". The plural adds "s" unless plural says otherwise: Count(2,
// "intermediate state") is "2 intermediate states", Count(3, "was", "were")
// "3 were".
func Count(n int, noun string, plural ...string) string {
	return strconv.Itoa(n) + " " + Noun(n, noun, plural...)
}

// Noun is noun as Count writes it after n, without the number.
func Noun(n int, noun string, plural ...string) string {
	switch {
	case n == 1 || n == -1:
		return noun
	case len(plural) > 0:
		return plural[0]
	}
	return noun + "s"
}
