# SPDX-License-Identifier: Apache-2.0
# ftpatch: build, tests, fixtures, demo and bench. GNU make, bash.
#
#   make demo       the whole job on testdata/src/e2e: compile, link with the
#                   emitted trampoline, scan, init, enable, run under qemu,
#                   verify, disable (scripts/demo.sh; installs missing packages)
#   make test       vet, all tests (-race), a short run of every fuzz target
#   make testdata   rebuild testdata/fixtures with the pinned Debian compilers
#   make testdata-check  rebuild into a temporary folder and compare bytes
#   make kernel-check  the whole flow on Debian's arm64 cloud kernels 6.12
#                   and 6.1, downloaded into build/kernels (opt-in, slow,
#                   needs the network; scripts/kernel-check.sh)
#   make kernel-53-check  the linux/ patch series (5,3 layout) applied to
#                   Debian's linux-source-6.12: GCC+BTI, clang-16+kCFI and a
#                   negative build, booted on qemu with ftrace's startup
#                   tests, then scanned, patched and verified (opt-in, slow,
#                   needs the network; scripts/kernel-53-check.sh)
#   make kernel-build-check  cross-compile Linux 6.12 (Debian's
#                   linux-source-6.12) in three flavours and run
#                   examples/kernel-ci.sh and a record-count oracle on each
#                   build tree (opt-in, slow, needs the network;
#                   scripts/linux-build-check.sh)
#   make bench      scan, patch and verify on a large kernel-like image and on
#                   1,000 small objects, against binutils and cp (scripts/bench.sh)
#   make install    the binary, a man page per command and bash/zsh/fish
#                   completions under DESTDIR/PREFIX (PREFIX=/usr/local)
#   make dist       build/ftpatch-VERSION.tar.gz: the sources (git archive)
#                   with a VERSION file, which a build from it stamps
#   make redteam    the hostile campaign of issue 22 in full (root for every
#                   group: tmpfs, chattr, FUSE; long kill loop, 8 GiB bombs):
#                   a table of case groups and results (scripts/redteam.sh)
#
# Every target that needs system packages first runs scripts/deps.sh, which
# installs only what is missing (apt-get; sudo when not root).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

export GOTOOLCHAIN := local
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := /usr/local/go/bin:$(PATH)
endif
GO ?= go

BIN ?= bin/ftpatch
GEN ?= build/gen

# The version every build stamps (ftpatch --version, every JSON line): a
# source tarball's VERSION file, else `git describe` of the work tree. Go's
# own VCS stamping is off on many build machines (-buildvcs=false, a
# tarball), so the Makefile does not rely on it.
VERSION ?= $(shell if [ -f VERSION ]; then cat VERSION; else git describe --tags --always --dirty 2>/dev/null || echo unknown; fi)
LDFLAGS := -X github.com/ftpatch/ftpatch/internal/cli.buildVersion=$(VERSION)

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
DISTDIR ?= build
# A count, not a duration: Go 1.26's fuzz coordinator can fail a run with
# "context deadline exceeded" when a -fuzztime duration ends while a worker is
# mid-input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
# 20000 inputs take 2-10 s per target on two cores.
FUZZTIME ?= 20000x
FIXTURES := testdata/fixtures
KTREE := testdata/ktree

.PHONY: deps build test vet unit fuzz testdata testdata-check demo bench redteam kernel-check kernel-build-check kernel-53-check clean man completions install dist

deps:
	@scripts/deps.sh

# Always rebuilt: go's own cache makes that cheap, and make cannot see
# which Go files changed.
build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/ftpatch

# A man page per command, generated from the command tree (cobra/doc); the
# date is the commit's, so a rebuild gives the same pages.
man: deps
	rm -rf $(GEN)/man
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} \
		$(GO) run ./internal/tools/genman -version '$(VERSION)' $(GEN)/man

# Shell completions, as the binary generates them (cobra).
completions: build
	mkdir -p $(GEN)/completions
	$(BIN) completion bash >$(GEN)/completions/ftpatch.bash
	$(BIN) completion zsh >$(GEN)/completions/_ftpatch
	$(BIN) completion fish >$(GEN)/completions/ftpatch.fish

install: build man completions
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/ftpatch
	install -m 0644 $(GEN)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(GEN)/completions/ftpatch.bash $(DESTDIR)$(BASHCOMPDIR)/ftpatch
	install -m 0644 $(GEN)/completions/_ftpatch $(DESTDIR)$(ZSHCOMPDIR)/_ftpatch
	install -m 0644 $(GEN)/completions/ftpatch.fish $(DESTDIR)$(FISHCOMPDIR)/ftpatch.fish

# The sources of HEAD (git archive) and a VERSION file naming them: a build
# from the tarball stamps that version, with no git to ask.
dist:
	@v=$$(git describe --tags --always); name=ftpatch-$$v; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	git archive --format=tar --prefix=$$name/ -o "$$tmp/src.tar" HEAD; \
	mkdir "$$tmp/$$name"; echo "$$v" >"$$tmp/$$name/VERSION"; \
	tar --owner=0 --group=0 --numeric-owner -rf "$$tmp/src.tar" -C "$$tmp" $$name/VERSION; \
	mkdir -p $(DISTDIR); gzip -n -9 <"$$tmp/src.tar" >$(DISTDIR)/$$name.tar.gz; \
	echo "dist: $(DISTDIR)/$$name.tar.gz"

# One after another, even under make -j: vet first, fuzz last. Tests run
# under the race detector: the file pool, the JSON chunk writers and
# verify's engines all share data between goroutines.
test: deps
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) tool staticcheck ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/ftpatch
	$(GO) test -race -count=1 -timeout 40m ./...
	@$(MAKE) --no-print-directory fuzz

# staticcheck is pinned in go.mod (a tool directive); the layer table and
# the limits on a function's size (gocyclo 20, 80 lines) are tests:
# cmd/ftpatch/house_test.go.
vet: deps
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

unit: deps
	$(GO) test -count=1 -timeout 40m ./...

# Every fuzz target in the tree, found by name so new ones run too.
fuzz: deps
	@{ grep -rl --include='*_test.go' --exclude-dir=testdata --exclude-dir=build --exclude-dir=.git '^func Fuzz' . || true; } | sort | while read -r f; do \
		pkg=./$$(dirname "$${f#./}"); \
		for fn in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=0 "$$pkg"; \
		done; \
	done

testdata: deps
	scripts/fixtures.sh $(FIXTURES) $(KTREE)

# diff -r names each file that differs, and each one only one side has.
testdata-check: deps
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	scripts/fixtures.sh "$$tmp/fixtures" "$$tmp/ktree"; \
	bad=0; \
	diff -r -q "$$tmp/fixtures" $(FIXTURES) || bad=1; \
	diff -r -q "$$tmp/ktree" $(KTREE) || bad=1; \
	if ((bad)); then echo "testdata-check: committed fixtures differ from a rebuild (run make testdata)"; exit 1; fi; \
	echo "testdata-check: $$(find "$$tmp" -type f | wc -l) files identical"

# Everything in build/demo/; exits non-zero if any step or check fails.
demo: build
	scripts/demo.sh

bench: build
	scripts/bench.sh

# Not part of test: root-only, FUSE and long cases (make test runs the cheap ones).
redteam: deps
	scripts/redteam.sh

# Not part of test: downloads ~1 GB once, then runs for a few minutes.
kernel-check: build
	scripts/kernel-check.sh

# Not part of test nor CI: downloads ~150 MB once and builds three kernels
# (~25 min on 2 idle cores, ~2.1 GB), reused by the next run (CACHE=DIR to share).
kernel-build-check: build
	scripts/deps.sh kernel-build
	scripts/linux-build-check.sh

# Not part of test nor CI: downloads ~150 MB once, builds four small kernels
# (~30 min on 2 cores, ~3 GB) and boots two; reused by the next run
# (CACHE=DIR to share the sources and trees with make kernel-build-check).
kernel-53-check: build
	scripts/deps.sh kernel-build kernel-53
	scripts/kernel-53-check.sh

clean:
	rm -rf bin build
