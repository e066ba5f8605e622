//! Loading scans: files via OpenCV imgcodecs, raw 8-bit buffers, resolution handling.
