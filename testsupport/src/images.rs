//! Hand-made image files for the tests of image limits: TIFFs whose header says what a test
//! needs (sizes that disagree with the data, repeated tags, a second page).

/// A little-endian single-strip 8-bit gray TIFF of `w` x `h` with `entries` extra
/// (tag, value) LONG entries appended after the real ones, and `next` as next-IFD offset.
pub fn tiff(w: u32, h: u32, extra: &[(u16, u32)], next: u32) -> Vec<u8> {
    let pixels = vec![128u8; (w * h) as usize];
    let mut entries: Vec<(u16, u16, u32)> = vec![
        (256, 4, w),
        (257, 4, h),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 0), // patched below
        (277, 3, 1),
        (278, 4, h),
        (279, 4, w * h),
    ];
    entries.extend(extra.iter().map(|&(t, v)| (t, 4, v)));
    let ifd_len = 2 + 12 * entries.len() + 4;
    let data_at = 8 + ifd_len as u32;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, value) in entries {
        let value = if tag == 273 { data_at } else { value };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&typ.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if typ == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&next.to_le_bytes());
    out.extend_from_slice(&pixels);
    out
}

/// `tiff` with the first width and length tags patched to say `w` x `h` (the data stays
/// what it was): with repeated size tags after them, the image bomb of issue 18, whose first
/// tags (what libtiff reads) and last ones (what a last-wins reader keeps) disagree.
pub fn with_declared_size(mut tiff: Vec<u8>, w: u32, h: u32) -> Vec<u8> {
    tiff[8 + 2 + 8..8 + 2 + 12].copy_from_slice(&w.to_le_bytes());
    tiff[8 + 2 + 12 + 8..8 + 2 + 24].copy_from_slice(&h.to_le_bytes());
    tiff
}
