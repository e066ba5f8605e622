# Sourced by the other scripts: the Rust toolchain on PATH and OpenCV's locations for the opencv
# crate (Debian's narrow OpenCV packages ship no pkg-config file).
export PATH="$HOME/.cargo/bin:$PATH"
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
export OPENCV_LINK_LIBS="opencv_core,opencv_imgproc,opencv_imgcodecs"
export OPENCV_LINK_PATHS="/usr/lib/$multiarch"
export OPENCV_INCLUDE_PATHS="/usr/include/opencv4,/usr/include/$multiarch/opencv4"
