#!/usr/bin/env bash
#   One entry point for people and CI.
#   usage: deploy/run.sh demo     install what is missing, build, run the multi-agency demo
#          deploy/run.sh test     install what is missing, build, run the whole test suite
#          deploy/run.sh asan     the same tests built with AddressSanitizer + UBSan
#          deploy/run.sh fuzz     build the libFuzzer targets with clang and run each briefly
#          deploy/run.sh bench    build in release mode and run the benchmark
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc 2>/dev/null || echo 2)

build() { # dir cmake-args...
    local dir=$1; shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
    demo)
        deploy/install-deps.sh
        build build
        deploy/demo.sh --bin build
        ;;
    test)
        deploy/install-deps.sh
        build build
        ctest --test-dir build --output-on-failure -j "$jobs"
        ;;
    asan)
        deploy/install-deps.sh
        build build-asan -DVD_SANITIZE=ON -DVD_BUILD_BENCH=OFF
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --test-dir build-asan --output-on-failure -j "$jobs"
        ;;
    fuzz)
        deploy/install-deps.sh --with-clang
        CC=clang build build-fuzz -DVD_FUZZ=ON -DVD_BUILD_TESTS=OFF -DVD_BUILD_BENCH=OFF
        for target in build-fuzz/fuzz_*; do
            name=$(basename "$target"); corpus="tests/fuzz/seeds/${name#fuzz_}"
            mkdir -p "build-fuzz/corpus-$name"
            "$target" -max_total_time="${FUZZ_SECONDS:-60}" "build-fuzz/corpus-$name" \
                $( [ -d "$corpus" ] && echo "$corpus" )
        done
        ;;
    bench)
        deploy/install-deps.sh
        build build-release -DCMAKE_BUILD_TYPE=Release -DVD_BUILD_TESTS=OFF
        build-release/vedetta-bench "${@:2}"
        ;;
    *)
        sed -n '2,8p' "$0" | sed 's/^#//'
        exit 1
        ;;
esac
