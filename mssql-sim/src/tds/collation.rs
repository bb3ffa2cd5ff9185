//! The collation on the wire (MS-TDS 2.2.5.1.2): five bytes that follow
//! the TYPE_INFO of every character column and that the server reports in
//! its ENVCHANGE.

/// The collation every character column and the server report:
/// SQL_Latin1_General_CP1_CI_AS.
pub const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];
