# Sourced by the other scripts: the Rust toolchain on PATH and OpenCV's locations for the opencv
# crate (Debian's narrow OpenCV packages ship no pkg-config file).
export PATH="$HOME/.cargo/bin:$PATH"
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
export OPENCV_LINK_LIBS="opencv_core,opencv_imgproc,opencv_imgcodecs"
export OPENCV_LINK_PATHS="/usr/lib/$multiarch"
export OPENCV_INCLUDE_PATHS="/usr/include/opencv4,/usr/include/$multiarch/opencv4"
# .cargo/config.toml builds for x86-64-v2; a processor without its features gets the plain
# x86-64 baseline instead (the same results, about 7 % slower comparisons) rather than a
# program that stops at its first SSE4 or POPCNT instruction.
if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ] && [ -z "${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS+set}" ]; then
    cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for flag in cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3; do
        case "$cpu_flags" in
        *" $flag "*) ;;
        *)
            echo "note: this processor lacks $flag (x86-64-v2): building for the plain x86-64 baseline" >&2
            export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=x86-64"
            break
            ;;
        esac
    done
    unset cpu_flags
fi
