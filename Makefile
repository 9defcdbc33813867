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
#   make bench      scan, patch and verify on a large kernel-like image and on
#                   1,000 small objects, against binutils and cp (scripts/bench.sh)
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

BIN := bin/ftpatch
# A count, not a duration: Go 1.26's fuzz coordinator can fail a run with
# "context deadline exceeded" when a -fuzztime duration ends while a worker is
# mid-input (golang/go#75804, fixed in Go 1.27); a count has no deadline.
# 20000 inputs take 2-10 s per target on two cores.
FUZZTIME ?= 20000x
FIXTURES := testdata/fixtures

.PHONY: deps build test vet unit fuzz testdata testdata-check demo bench redteam kernel-check kernel-53-check clean

deps:
	@scripts/deps.sh

# Always rebuilt: go's own cache makes that cheap, and make cannot see
# which Go files changed.
build: deps
	$(GO) build -o $(BIN) ./cmd/ftpatch

# One after another, even under make -j: vet first, fuzz last. Tests run
# under the race detector: the file pool, the JSON chunk writers and
# verify's engines all share data between goroutines.
test: deps
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/ftpatch
	$(GO) test -race -count=1 -timeout 40m ./...
	@$(MAKE) --no-print-directory fuzz

vet: deps
	$(GO) vet ./...

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
	scripts/fixtures.sh $(FIXTURES)

testdata-check: deps
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	scripts/fixtures.sh "$$tmp"; \
	bad=0; \
	for f in "$$tmp"/*; do \
		cmp -s "$$f" $(FIXTURES)/$$(basename "$$f") || { echo "differs: $(FIXTURES)/$$(basename "$$f")"; bad=1; }; \
	done; \
	for f in $(FIXTURES)/*; do \
		[[ -e $$tmp/$$(basename "$$f") ]] || { echo "not built by make testdata: $$f"; bad=1; }; \
	done; \
	if ((bad)); then echo "testdata-check: committed fixtures differ from a rebuild (run make testdata)"; exit 1; fi; \
	echo "testdata-check: $$(ls "$$tmp" | wc -l) files identical"

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

# Not part of test nor CI: downloads ~150 MB once, builds four small kernels
# (~30 min on 2 cores, ~3 GB) and boots two; reused by the next run
# (CACHE=DIR to share the sources and trees with make kernel-build-check).
kernel-53-check: build
	scripts/deps.sh kernel-build kernel-53
	scripts/kernel-53-check.sh

clean:
	rm -rf bin build
