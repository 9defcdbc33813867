// SPDX-License-Identifier: Apache-2.0

package patch

import (
	"encoding/binary"
	"fmt"
	"iter"

	"github.com/ftpatch/ftpatch/internal/elfscan"
)

// Slot names the word a write touches.
type Slot uint8

const (
	SlotLiteral Slot = iota
	SlotSlot1
	SlotSlot2
)

var slotNames = [...]string{SlotLiteral: "literal", SlotSlot1: "slot1", SlotSlot2: "slot2"}

func (s Slot) String() string {
	if int(s) < len(slotNames) {
		return slotNames[s]
	}
	return fmt.Sprintf("slot(%d)", uint8(s))
}

// Write replaces the word Old by New at one slot of a site: 8 bytes for
// the literal, 4 for slot1 and slot2, little-endian in the file at Off().
// Its place comes from the site. Writes are made as a plan is read (see
// Changes.Writes), not stored.
type Write struct {
	site     *elfscan.Site
	Old, New uint64
	Slot     Slot
}

// Func is the function holding the site.
func (w *Write) Func() string { return w.site.Func }

// Section is the section holding the site.
func (w *Write) Section() string { return w.site.Section }

// Addr is the address of the word; ET_REL: its offset in Section.
func (w *Write) Addr() uint64 {
	switch w.Slot {
	case SlotLiteral:
		return w.site.Literal()
	case SlotSlot1:
		return w.site.Slot1()
	}
	return w.site.CallSite()
}

// Off is the word's file offset.
func (w *Write) Off() int64 {
	switch w.Slot {
	case SlotLiteral:
		return w.site.LiteralOff()
	case SlotSlot1:
		return w.site.Slot1Off()
	}
	return w.site.Slot2Off()
}

// Size is the word's size in bytes.
func (w *Write) Size() int {
	if w.Slot == SlotLiteral {
		return 8
	}
	return 4
}

// OldBytes and NewBytes are the words as the file holds them.
func (w *Write) OldBytes() []byte { return w.bytes(w.Old) }
func (w *Write) NewBytes() []byte { return w.bytes(w.New) }

func (w *Write) bytes(v uint64) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8), v)
	return b[:w.Size()]
}

// Matches reports whether b (Size() bytes) holds Old.
func (w *Write) Matches(b []byte) bool {
	if len(b) != w.Size() {
		return false
	}
	if w.Size() == 8 {
		return binary.LittleEndian.Uint64(b) == w.Old
	}
	return uint64(binary.LittleEndian.Uint32(b)) == w.Old
}

// Put stores New in b (Size() bytes).
func (w *Write) Put(b []byte) {
	if w.Size() == 8 {
		binary.LittleEndian.PutUint64(b, w.New)
		return
	}
	binary.LittleEndian.PutUint32(b, uint32(w.New))
}

// writes are a plan's words, kept small: a kernel's plan has a few hundred
// thousand sites, up to three words each. Per site, 16 bytes: which slots
// change and the new slot words; the old words are the site's (a write
// replaces what the scan read), and the literal's new value is the same for
// every site of a plan (the ops, or the default ops), so it is kept once,
// with the rare exceptions aside.
type writes struct {
	sites []elfscan.Site // the scan's, which plans index
	op    Op             // the order of a site's words (see siteOrder)
	plans []sitePlan     // in plan order
	n     int            // words

	lit    uint64           // the literal's new value ...
	litSet bool             // ... once one is planned
	lits   map[int32]uint64 // plans index -> the literal's new value, where it is not lit
}

// sitePlan is the words planned for one site.
type sitePlan struct {
	site         int32  // index in writes.sites
	slot1, slot2 uint32 // new words, when set says so
	set          uint8  // 1<<Slot for each slot written
}

// add appends a site's plan; lit is its literal's new value when it plans
// one.
func (ws *writes) add(sp sitePlan, lit uint64) {
	if sp.set&(1<<SlotLiteral) != 0 {
		switch {
		case !ws.litSet:
			ws.lit, ws.litSet = lit, true
		case lit != ws.lit:
			if ws.lits == nil {
				ws.lits = map[int32]uint64{}
			}
			ws.lits[int32(len(ws.plans))] = lit
		}
	}
	for s := SlotLiteral; s <= SlotSlot2; s++ {
		if sp.set&(1<<s) != 0 {
			ws.n++
		}
	}
	ws.plans = append(ws.plans, sp)
}

// siteOrder is the order of a site's words in a plan, Linux's at run time:
// enable writes the literal before the BL (ftrace_make_call), disable
// removes the BL before the literal.
func siteOrder(op Op) [3]Slot {
	if op == OpDisable {
		return [3]Slot{SlotSlot2, SlotSlot1, SlotLiteral}
	}
	return [3]Slot{SlotLiteral, SlotSlot1, SlotSlot2}
}

// fileOrder is the order of a site's words in the file.
var fileOrder = [3]Slot{SlotLiteral, SlotSlot1, SlotSlot2}

// write makes the write of slot at plan k.
func (ws *writes) write(k int, slot Slot) Write {
	sp := &ws.plans[k]
	s := &ws.sites[sp.site]
	switch slot {
	case SlotLiteral:
		lit := ws.lit
		if v, ok := ws.lits[int32(k)]; ok {
			lit = v
		}
		return Write{site: s, Slot: slot, Old: s.LiteralWord, New: lit}
	case SlotSlot1:
		return Write{site: s, Slot: slot, Old: uint64(s.Slot1Word), New: uint64(sp.slot1)}
	}
	return Write{site: s, Slot: slot, Old: uint64(s.Slot2Word), New: uint64(sp.slot2)}
}

// each calls f with the writes (by value: a pointer would make each one
// escape to the heap) of plans [lo, hi), each site's in order,
// until f returns false.
func (ws *writes) each(lo, hi int, order [3]Slot, f func(k int, w Write) bool) {
	for k := lo; k < hi; k++ {
		set := ws.plans[k].set
		for _, slot := range order {
			if set&(1<<slot) == 0 {
				continue
			}
			if !f(k, ws.write(k, slot)) {
				return
			}
		}
	}
}

// Words is the number of words the plan writes.
func (c *Changes) Words() int { return c.writes.n }

// Writes yields the plan's words in plan order: sites in scan order, and
// within a site the order Linux uses (see the package comment).
func (c *Changes) Writes() iter.Seq[Write] {
	return func(yield func(Write) bool) {
		c.writes.each(0, len(c.writes.plans), siteOrder(c.writes.op), func(_ int, w Write) bool { return yield(w) })
	}
}
