# The front door (Neovim's convention). Every target installs missing Debian
# packages first, so on a fresh Debian 12 machine these are the only commands:
#   make demo    build and run the main example
#   make test    build and run every test (CTest)
BUILD      ?= build
BUILD_TYPE ?= Release
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all deps build test demo install bench format tidy clean
all: build

deps:
	@tools/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	$(BUILD)/spritescript run scripts/examples/demo.lua

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@tools/install-deps.sh bench
	bench/run.sh $(BUILD)/spritescript
	bench/engine.sh $(BUILD)/spritescript

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.hpp' 'tests/*.cpp')

tidy: build
	clang-tidy -p $(BUILD) $$(git ls-files 'src/*.cpp')

clean:
	rm -rf $(BUILD)
