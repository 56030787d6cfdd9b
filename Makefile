# The front door (Neovim's convention). Every target installs missing Debian
# packages first, so on a fresh Debian 12 machine these are the only commands:
#   make demo    build and run the main example
#   make test    build and run every test (CTest)
#   make check   build the libFuzzer targets with clang, fuzz each briefly
BUILD      ?= build
BUILD_TYPE ?= Release
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build test check demo install bench format tidy clean
all: build

deps:
	@tools/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Fuzzing (tests/fuzz/README.md): a build directory of its own, clang with
# libFuzzer + ASan + UBSan, only the fuzz targets and the proto library built.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 20
check:
	@tools/install-deps.sh fuzz
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPRITESCRIPT_FUZZ=ON -DBUILD_TESTING=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(JOBS)

demo: build
	$(BUILD)/spritescript run scripts/examples/nightly.lua nightly-demo- $(BUILD)/nightly-receipt.json --demo

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@tools/install-deps.sh bench
	bench/run.sh $(BUILD)/spritescript
	bench/engine.sh $(BUILD)/spritescript
	bench/client.sh $(BUILD)/spritescript
	bench/checkpoint.sh $(BUILD)/spritescript
	bench/fs_api.sh $(BUILD)/spritescript
	bench/lua_api.sh $(BUILD)/spritescript
	bench/proxy.sh $(BUILD)/spritescript
	bench/egress.sh $(BUILD)/spritescript
	bench/cli.sh $(BUILD)/spritescript

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp')

tidy: build
	clang-tidy -p $(BUILD) $$(git ls-files 'src/*.cpp')

clean:
	rm -rf $(BUILD)
