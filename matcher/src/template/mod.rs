//! Template formats: ISO/IEC 19794-2:2005 record and card formats, ANSI INCITS 378-2004.
