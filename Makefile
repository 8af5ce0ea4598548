# EtherPly: the two commands of the README, and the ones they are made of.
#   make run    install what is missing, build, start the server on a local default
#   make test   install what is missing, build, run every test
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: setup build test test-asan test-tsan bench fuzz run clean

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The sanitizer build runs the unit tests and the fixture suite under ASan and UBSan.
test-asan: setup
	@cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DETHERPLY_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS) --target etherply etherply_unit_tests etherply_client_tests etherply_fuzz_change_chunk etherply_fuzz_sync_message etherply_fuzz_client_input etherply_fuzz_history
	@cd $(BUILD)-asan && ctest --output-on-failure -j $(JOBS) -R '^(Columns|Coding|PackedValue|Op\.|Slot|Deflate|Chunk|Change|Document|Json|Jwt|Sequence|BlockIndex|BlockArray|HugePages|Sync|Bloom|Outbox|CheckOptions|ParseDuration|ParseMillis|Committer|Layout|MemoryAndRocksDb/StoreTest|Webhooks|Workspace|GatherWriteStream|WsFrame|WebSocketSession|ParseJson|ParseClientMessage|HistoryPage|Log\.|ThrottledWarning|WaitingList|Backups|RocksDbStore|MemoryStore|Client|interop\.fixtures|fuzz\.)'

# The unit tests of the modules that share memory between threads, under
# ThreadSanitizer. Not part of `make test` (its build takes as long again):
# run it after changing how threads meet. RocksDB and nats.c are not
# instrumented, so TSan cannot see their own synchronization: reports inside
# them are suppressed (scripts/tsan.supp).
test-tsan: setup
	@cmake -S . -B $(BUILD)-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DETHERPLY_TSAN=ON >/dev/null
	@cmake --build $(BUILD)-tsan -j $(JOBS) --target etherply_unit_tests
	@cd $(BUILD)-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/scripts/tsan.supp" \
	  ctest --output-on-failure -j $(JOBS) -R '^(Committer|MemoryAndRocksDb/StoreTest|Outbox|Webhooks|Workspace|GatherWriteStream|WebSocketSession|WaitingList|Backups)'

test: build test-asan
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Each script is one scenario group, side by side with its peer; doc/benchmarks.md.
bench: build
	@bench/run.sh $(BUILD)
	@bench/run_load.sh $(BUILD)
	@bench/run_ingest.sh $(BUILD)
	@bench/run_peers.sh $(BUILD)
	@bench/run_scale.sh $(BUILD)
	@bench/save_bench.sh $(BUILD)
	@bench/run_replication.sh $(BUILD)
	@bench/run_growth.sh $(BUILD)

# Searches for new findings with libFuzzer for FUZZ_SECONDS a target (fuzz/run.sh).
fuzz:
	@scripts/setup.sh clang
	@fuzz/run.sh

run: build
	@scripts/run-dev.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan build-fuzz
