//! Collations: the ones the simulator has, how each compares strings, and
//! the five bytes that carry each on the wire.
//!
//! SQL Server names a collation `<family>_<case>_<accent>` ("Collation and
//! Unicode support", learn.microsoft.com/sql/relational-databases/collations).
//! The simulator has three families, each case-insensitive (`_CI_AS`) and
//! case-sensitive (`_CS_AS`), all accent-sensitive and all on code page
//! 1252:
//!
//! - `SQL_Latin1_General_CP1` (SQL Server's default server collation),
//! - `Latin1_General` (the Windows collation for English and most of
//!   western Europe),
//! - `Finnish_Swedish` (where å, ä and ö are letters of their own that come
//!   after z, and æ and ø are variants of ä and ö).
//!
//! A comparison works as Windows collations do, level by level: first the
//! letters without accents or case (so "ab" < "Ác" < "ad"), then the
//! accents, then (in `_CS_` only) the case, where a lower-case letter
//! comes before its capital. Trailing blanks are ignored at every level,
//! as SQL Server's padding rule says. Not modelled: the "word sort" that
//! ignores hyphens and apostrophes, expansions beyond æ, œ and ß, and the
//! SQL collations' own order (upper case first) for varchar data under
//! `SQL_Latin1_General_CP1_CS_AS`.

use crate::error::SqlError;
use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    SqlLatin1General,
    Latin1General,
    FinnishSwedish,
}

/// A collation the simulator supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collation {
    pub family: Family,
    pub case_sensitive: bool,
}

/// SQL Server's default server collation.
pub const DEFAULT: Collation = Collation {
    family: Family::SqlLatin1General,
    case_sensitive: false,
};

impl Default for Collation {
    fn default() -> Self {
        DEFAULT
    }
}

impl fmt::Display for Collation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Collation {
    /// Every collation the simulator has.
    pub const ALL: [Collation; 6] = [
        Collation {
            family: Family::SqlLatin1General,
            case_sensitive: false,
        },
        Collation {
            family: Family::SqlLatin1General,
            case_sensitive: true,
        },
        Collation {
            family: Family::Latin1General,
            case_sensitive: false,
        },
        Collation {
            family: Family::Latin1General,
            case_sensitive: true,
        },
        Collation {
            family: Family::FinnishSwedish,
            case_sensitive: false,
        },
        Collation {
            family: Family::FinnishSwedish,
            case_sensitive: true,
        },
    ];

    /// The collation a name denotes, compared case-insensitively as SQL
    /// Server does; a name the simulator does not have is refused (class
    /// 16) with the list of those it has.
    pub fn parse(name: &str) -> Result<Collation, SqlError> {
        let n = name.trim().trim_matches(['[', ']']);
        Collation::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(n))
            .ok_or_else(|| {
                let have: Vec<&str> = Collation::ALL.iter().map(|c| c.name()).collect();
                SqlError::unsupported(format!("the collation '{n}' (it has {})", have.join(", ")))
            })
    }

    /// The collation a `COLLATE` clause names: `DATABASE_DEFAULT` is the
    /// current database's, anything else as `parse` reads it.
    pub fn named(name: &str, database_default: Collation) -> Result<Collation, SqlError> {
        if name.trim().eq_ignore_ascii_case("DATABASE_DEFAULT") {
            Ok(database_default)
        } else {
            Collation::parse(name)
        }
    }

    /// 447: a COLLATE clause on a value of a type that has no collation.
    pub fn not_collatable(type_name: &str) -> SqlError {
        SqlError::new(
            447,
            16,
            format!("Expression type {type_name} is invalid for COLLATE clause."),
        )
    }

    /// The name SQL Server prints (sys.columns.collation_name).
    pub fn name(&self) -> &'static str {
        match (self.family, self.case_sensitive) {
            (Family::SqlLatin1General, false) => "SQL_Latin1_General_CP1_CI_AS",
            (Family::SqlLatin1General, true) => "SQL_Latin1_General_CP1_CS_AS",
            (Family::Latin1General, false) => "Latin1_General_CI_AS",
            (Family::Latin1General, true) => "Latin1_General_CS_AS",
            (Family::FinnishSwedish, false) => "Finnish_Swedish_CI_AS",
            (Family::FinnishSwedish, true) => "Finnish_Swedish_CS_AS",
        }
    }

    /// The Windows locale of the collation (COLLATIONPROPERTY 'LCID').
    pub fn lcid(&self) -> u32 {
        match self.family {
            Family::SqlLatin1General | Family::Latin1General => 0x0409,
            Family::FinnishSwedish => 0x040B,
        }
    }

    /// The code page of char and varchar data (COLLATIONPROPERTY 'CodePage').
    pub fn code_page(&self) -> u32 {
        1252
    }

    /// The SQL sort order id: 52 (CI) and 51 (CS) for the SQL collations,
    /// 0 for Windows collations.
    pub fn sort_id(&self) -> u8 {
        match (self.family, self.case_sensitive) {
            (Family::SqlLatin1General, false) => 52,
            (Family::SqlLatin1General, true) => 51,
            _ => 0,
        }
    }

    /// COLLATIONPROPERTY 'ComparisonStyle': IgnoreCase 1, IgnoreKanaType
    /// 65536, IgnoreWidth 131072 (accents are never ignored here).
    pub fn comparison_style(&self) -> u32 {
        let case = if self.case_sensitive { 0 } else { 1 };
        case | 65536 | 131072
    }

    /// The collation on the wire (MS-TDS 2.2.5.1.2): LCID in the low 20
    /// bits, then the flags fIgnoreCase, fIgnoreAccent, fIgnoreKana,
    /// fIgnoreWidth, fBinary, fBinary2, fUTF8, a reserved bit, a 4-bit
    /// version, then the SortId byte.
    pub fn tds_bytes(&self) -> [u8; 5] {
        let ignore_case = if self.case_sensitive { 0 } else { 1 };
        let flags: u32 = ignore_case | 0x4 | 0x8;
        let info = self.lcid() | (flags << 20);
        let b = info.to_le_bytes();
        [b[0], b[1], b[2], b[3], self.sort_id()]
    }

    /// The name of the SQLite collation that compares as this one.
    pub fn sqlite_name(&self) -> &'static str {
        self.name()
    }

    /// Compares two strings as the collation does (see the module doc).
    pub fn compare(&self, a: &str, b: &str) -> Ordering {
        let a = a.trim_end_matches(' ');
        let b = b.trim_end_matches(' ');
        if a.is_ascii() && b.is_ascii() {
            return self.compare_ascii(a.as_bytes(), b.as_bytes());
        }
        self.compare_by_keys(a, b)
    }

    /// `compare` by the sort keys, level by level (any characters; trailing
    /// blanks already trimmed).
    fn compare_by_keys(&self, a: &str, b: &str) -> Ordering {
        let ka = self.sort_key(a);
        let kb = self.sort_key(b);
        let primary = |k: &[Weight]| k.iter().map(|w| w.primary).collect::<Vec<_>>();
        let accent = |k: &[Weight]| k.iter().map(|w| w.accent).collect::<Vec<_>>();
        let case = |k: &[Weight]| k.iter().map(|w| w.upper).collect::<Vec<_>>();
        primary(&ka)
            .cmp(&primary(&kb))
            .then_with(|| accent(&ka).cmp(&accent(&kb)))
            .then_with(|| {
                if self.case_sensitive {
                    case(&ka).cmp(&case(&kb))
                } else {
                    Ordering::Equal
                }
            })
    }

    /// `compare` for two ASCII strings (trailing blanks trimmed), without
    /// building sort keys: every ASCII character weighs one weight with no
    /// accent, so the levels are the letters' primary weights, then (both
    /// equal in length once the primaries are equal) the case. A query's
    /// `WHERE Hsa IN (...)` calls this for every row it reads; it must
    /// answer exactly as the general path (tested against it).
    fn compare_ascii(&self, a: &[u8], b: &[u8]) -> Ordering {
        let primary = |c: &u8| {
            if c.is_ascii_alphabetic() {
                LETTERS + u32::from(c.to_ascii_lowercase() - b'a')
            } else if c.is_ascii_digit() {
                DIGITS + u32::from(c - b'0')
            } else {
                u32::from(*c)
            }
        };
        a.iter()
            .map(primary)
            .cmp(b.iter().map(primary))
            .then_with(|| {
                if self.case_sensitive {
                    a.iter()
                        .map(u8::is_ascii_uppercase)
                        .cmp(b.iter().map(u8::is_ascii_uppercase))
                } else {
                    Ordering::Equal
                }
            })
    }

    /// Whether two characters are equal under the collation (LIKE).
    pub fn chars_equal(&self, a: char, b: char) -> bool {
        let mut x = [0u8; 4];
        let mut y = [0u8; 4];
        self.compare(a.encode_utf8(&mut x), b.encode_utf8(&mut y)) == Ordering::Equal
    }

    /// `value LIKE pattern [ESCAPE escape]` under the collation: `%` any
    /// run, `_` one character, `[abc]`, `[a-f]` (by the collation's order)
    /// and `[^abc]`; every other character matches by `chars_equal`.
    /// Trailing blanks are significant, as in SQL Server's LIKE.
    pub fn like(&self, value: &str, pattern: &str, escape: Option<char>) -> bool {
        let pat = like_pattern(pattern, escape);
        let v: Vec<char> = value.chars().collect();
        // reach[i]: the pattern so far can consume exactly v[..i].
        let mut reach = vec![false; v.len() + 1];
        reach[0] = true;
        for p in &pat {
            let mut next = vec![false; v.len() + 1];
            match p {
                LikeItem::Any => {
                    let mut on = false;
                    for i in 0..=v.len() {
                        on |= reach[i];
                        next[i] = on;
                    }
                }
                item => {
                    for i in 0..v.len() {
                        if reach[i] && self.like_one(item, v[i]) {
                            next[i + 1] = true;
                        }
                    }
                }
            }
            reach = next;
        }
        reach[v.len()]
    }

    fn like_one(&self, item: &LikeItem, c: char) -> bool {
        match item {
            LikeItem::Any => true,
            LikeItem::One => true,
            LikeItem::Char(p) => self.chars_equal(*p, c),
            LikeItem::Set { negated, members } => {
                let mut b1 = [0u8; 4];
                let cs = &*c.encode_utf8(&mut b1);
                let hit = members.iter().any(|(lo, hi)| {
                    let (mut b2, mut b3) = ([0u8; 4], [0u8; 4]);
                    self.compare(lo.encode_utf8(&mut b2), cs) != Ordering::Greater
                        && self.compare(cs, hi.encode_utf8(&mut b3)) != Ordering::Greater
                });
                hit != *negated
            }
        }
    }

    fn sort_key(&self, s: &str) -> Vec<Weight> {
        let mut out = Vec::with_capacity(s.len());
        for c in s.chars() {
            self.weigh(c, &mut out);
        }
        out
    }

    /// Appends the weights of one character.
    fn weigh(&self, c: char, out: &mut Vec<Weight>) {
        let upper = c.is_uppercase();
        let lower: char = c.to_lowercase().next().unwrap_or(c);
        if self.family == Family::FinnishSwedish {
            let swedish = match lower {
                'å' => Some((1, 0)),
                'ä' => Some((2, 0)),
                'æ' => Some((2, 1)),
                'ö' => Some((3, 0)),
                'ø' => Some((3, 1)),
                _ => None,
            };
            if let Some((after_z, accent)) = swedish {
                out.push(Weight {
                    primary: LETTERS + 26 + after_z,
                    accent,
                    upper,
                });
                return;
            }
        }
        let (base, accent) = decompose(lower);
        for (i, b) in base.chars().enumerate() {
            let primary = if b.is_ascii_lowercase() {
                LETTERS + (b as u32 - 'a' as u32)
            } else if b.is_ascii_digit() {
                DIGITS + (b as u32 - '0' as u32)
            } else if b.is_alphabetic() {
                OTHER_LETTERS + b as u32
            } else {
                b as u32
            };
            out.push(Weight {
                primary,
                accent: if i == 0 { accent } else { 0 },
                upper,
            });
        }
    }
}

/// One element of a LIKE pattern.
#[derive(Debug, Clone, PartialEq)]
enum LikeItem {
    Any,
    One,
    Char(char),
    /// `[...]`: ranges (a single character is a range of one).
    Set {
        negated: bool,
        members: Vec<(char, char)>,
    },
}

fn like_pattern(pattern: &str, escape: Option<char>) -> Vec<LikeItem> {
    let p: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        if Some(c) == escape && i + 1 < p.len() {
            out.push(LikeItem::Char(p[i + 1]));
            i += 2;
            continue;
        }
        match c {
            '%' => {
                if out.last() != Some(&LikeItem::Any) {
                    out.push(LikeItem::Any);
                }
            }
            '_' => out.push(LikeItem::One),
            '[' => {
                // A set runs to the next ']' after its first member; an
                // unclosed '[' is a literal.
                let Some(end) = (i + 2..p.len()).find(|&j| p[j] == ']') else {
                    out.push(LikeItem::Char('['));
                    i += 1;
                    continue;
                };
                let mut body = &p[i + 1..end];
                let negated = body.first() == Some(&'^') && body.len() > 1;
                if negated {
                    body = &body[1..];
                }
                let mut members = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    if k + 2 < body.len() && body[k + 1] == '-' {
                        members.push((body[k], body[k + 2]));
                        k += 3;
                    } else {
                        members.push((body[k], body[k]));
                        k += 1;
                    }
                }
                out.push(LikeItem::Set { negated, members });
                i = end;
            }
            other => out.push(LikeItem::Char(other)),
        }
        i += 1;
    }
    out
}

/// Symbols and punctuation weigh their code point (below 0x110000), then
/// come digits, Latin letters and other letters.
const DIGITS: u32 = 0x11_0000;
const LETTERS: u32 = 0x12_0000;
const OTHER_LETTERS: u32 = 0x13_0000;

#[derive(Debug, Clone, Copy)]
struct Weight {
    primary: u32,
    accent: u8,
    upper: bool,
}

/// A lower-case Latin letter's base letters and its accent (0 = none), for
/// the letters of Windows-1252.
fn decompose(c: char) -> (std::borrow::Cow<'static, str>, u8) {
    use std::borrow::Cow::{Borrowed, Owned};
    const GRAVE: u8 = 1;
    const ACUTE: u8 = 2;
    const CIRCUMFLEX: u8 = 3;
    const TILDE: u8 = 4;
    const DIAERESIS: u8 = 5;
    const RING: u8 = 6;
    const CEDILLA: u8 = 7;
    const STROKE: u8 = 8;
    const CARON: u8 = 9;
    let (base, accent) = match c {
        'à' => ("a", GRAVE),
        'á' => ("a", ACUTE),
        'â' => ("a", CIRCUMFLEX),
        'ã' => ("a", TILDE),
        'ä' => ("a", DIAERESIS),
        'å' => ("a", RING),
        'æ' => ("ae", 0),
        'ç' => ("c", CEDILLA),
        'è' => ("e", GRAVE),
        'é' => ("e", ACUTE),
        'ê' => ("e", CIRCUMFLEX),
        'ë' => ("e", DIAERESIS),
        'ì' => ("i", GRAVE),
        'í' => ("i", ACUTE),
        'î' => ("i", CIRCUMFLEX),
        'ï' => ("i", DIAERESIS),
        'ñ' => ("n", TILDE),
        'ò' => ("o", GRAVE),
        'ó' => ("o", ACUTE),
        'ô' => ("o", CIRCUMFLEX),
        'õ' => ("o", TILDE),
        'ö' => ("o", DIAERESIS),
        'ø' => ("o", STROKE),
        'œ' => ("oe", 0),
        'ù' => ("u", GRAVE),
        'ú' => ("u", ACUTE),
        'û' => ("u", CIRCUMFLEX),
        'ü' => ("u", DIAERESIS),
        'ý' => ("y", ACUTE),
        'ÿ' => ("y", DIAERESIS),
        'š' => ("s", CARON),
        'ž' => ("z", CARON),
        'ß' => ("ss", 0),
        other => return (Owned(other.to_string()), 0),
    };
    (Borrowed(base), accent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn c(name: &str) -> Collation {
        Collation::parse(name).unwrap()
    }

    proptest::proptest! {
        /// The ASCII path answers as the sort keys do, in every collation:
        /// letters of both cases, digits, blanks (inside and trailing) and
        /// punctuation that sorts between them.
        #[test]
        fn the_ascii_path_orders_as_the_sort_keys(a in "[aAbBzZ09 _.-]{0,6}", b in "[aAbBzZ09 _.-]{0,6}") {
            for k in Collation::ALL {
                let (ta, tb) = (a.trim_end_matches(' '), b.trim_end_matches(' '));
                proptest::prop_assert_eq!(
                    k.compare_ascii(ta.as_bytes(), tb.as_bytes()),
                    k.compare_by_keys(ta, tb),
                    "{} {:?} {:?}", k, a, b
                );
                proptest::prop_assert_eq!(k.compare(&a, &b), k.compare_by_keys(ta, tb));
            }
        }
    }

    #[test]
    fn names_round_trip_case_insensitively_and_others_are_refused() {
        for k in Collation::ALL {
            assert_eq!(Collation::parse(&k.name().to_lowercase()).unwrap(), k);
        }
        let e = Collation::parse("Japanese_CI_AS").unwrap_err();
        assert!(e.message.contains("Finnish_Swedish_CI_AS"), "{}", e.message);
    }

    #[test]
    fn case_insensitive_ignores_case_and_trailing_blanks_but_not_accents() {
        let ci = c("SQL_Latin1_General_CP1_CI_AS");
        assert_eq!(ci.compare("abc", "ABC  "), Equal);
        assert_eq!(ci.compare("resume", "résumé"), Less);
        assert_eq!(ci.compare("a", "B"), Less);
    }

    #[test]
    fn accents_sort_next_to_their_letter_in_latin1_and_after_z_in_swedish() {
        let latin = c("Latin1_General_CI_AS");
        assert_eq!(latin.compare("Åsa", "Bengt"), Less);
        assert_eq!(latin.compare("ab", "Ác"), Less);
        let sv = c("Finnish_Swedish_CI_AS");
        assert_eq!(sv.compare("Åsa", "Zorn"), Greater);
        assert_eq!(sv.compare("Åsa", "Äng"), Less);
        assert_eq!(sv.compare("Äng", "Östen"), Less);
        assert_eq!(sv.compare("Øre", "Öre"), Greater);
        assert_eq!(sv.compare("Øre", "Östen"), Less);
    }

    #[test]
    fn case_sensitive_puts_lower_case_first_and_keeps_them_apart() {
        let cs = c("Finnish_Swedish_CS_AS");
        assert_eq!(cs.compare("a", "A"), Less);
        assert_eq!(cs.compare("A", "b"), Less);
        assert_eq!(cs.compare("abc ", "abc"), Equal);
        assert!(!cs.chars_equal('å', 'Å'));
        assert!(c("Finnish_Swedish_CI_AS").chars_equal('å', 'Å'));
    }

    #[test]
    fn like_follows_the_collation() {
        let ci = c("Finnish_Swedish_CI_AS");
        let cs = c("Finnish_Swedish_CS_AS");
        assert!(ci.like("Åsa Berg", "å%", None));
        assert!(!cs.like("Åsa Berg", "å%", None));
        assert!(ci.like("abc", "a_c", None));
        assert!(
            !ci.like("abc ", "abc", None),
            "trailing blanks count in LIKE"
        );
        assert!(ci.like("50%", "50!%", Some('!')));
        assert!(!ci.like("500", "50!%", Some('!')));
        assert!(ci.like("b1", "[a-c][0-9]", None));
        assert!(!ci.like("d1", "[a-c][0-9]", None));
        assert!(ci.like("x", "[^a-c]", None));
        assert!(ci.like("[x", "[[]x", None));
        assert!(ci.like("Östen", "[å-ö]%", None), "Ö is in å-ö in Swedish");
        assert!(!ci.like("Bengt", "[å-ö]%", None));
        assert!(
            c("Latin1_General_CI_AS").like("Bengt", "[å-ö]%", None),
            "a-o there"
        );
        assert!(ci.like("", "%", None));
        assert!(!ci.like("", "_", None));
    }

    #[test]
    fn wire_bytes_are_sql_servers() {
        // SQL_Latin1_General_CP1_CI_AS as SQL Server sends it in ENVCHANGE 7.
        assert_eq!(DEFAULT.tds_bytes(), [0x09, 0x04, 0xD0, 0x00, 0x34]);
        assert_eq!(
            c("Finnish_Swedish_CI_AS").tds_bytes(),
            [0x0B, 0x04, 0xD0, 0x00, 0x00]
        );
        assert_eq!(
            c("Latin1_General_CS_AS").tds_bytes(),
            [0x09, 0x04, 0xC0, 0x00, 0x00]
        );
    }
}
