// SPDX-License-Identifier: Apache-2.0

//go:build !race

package testutil

// Race is true when the tests run under the race detector, which makes
// sync.Pool drop items at random: allocation bounds allow for that.
const Race = false
