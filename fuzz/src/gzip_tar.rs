//! A `.plinth`-shaped archive from arbitrary entries: raw ustar headers (any name bytes, any
//! entry type) compressed exactly as `Package::to_bytes` compresses, so the reader gets past
//! the gzip checks and has to judge the entries themselves.

use std::io::Write as _;

use arbitrary::Arbitrary;
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// The fixed gzip header every `.plinth` file starts with.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// What an entry is called: mostly the names a package may hold, or names that try to escape.
#[derive(Debug, Clone, Arbitrary)]
pub enum EntryName {
    /// `plinth.toml`.
    Manifest,
    /// `plugin.wasm`.
    Wasm,
    /// `README.md`.
    Readme,
    /// `CHANGELOG.md`.
    Changelog,
    /// `signature.json`.
    Signature,
    /// A known name behind `../`, `/`, `./` or a directory.
    Prefixed(u8, Box<EntryName>),
    /// Any bytes.
    Raw(Vec<u8>),
}

impl EntryName {
    /// The name's bytes as written in the header: cut to the 100 of a ustar name.
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.full_bytes();
        bytes.truncate(100);
        bytes
    }

    fn full_bytes(&self) -> Vec<u8> {
        match self {
            EntryName::Manifest => b"plinth.toml".to_vec(),
            EntryName::Wasm => b"plugin.wasm".to_vec(),
            EntryName::Readme => b"README.md".to_vec(),
            EntryName::Changelog => b"CHANGELOG.md".to_vec(),
            EntryName::Signature => b"signature.json".to_vec(),
            EntryName::Prefixed(which, inner) => {
                let prefix: &[u8] = match which % 6 {
                    0 => b"../",
                    1 => b"/",
                    2 => b"./",
                    3 => b"dir/",
                    4 => b"..\\",
                    _ => b"a/../",
                };
                [prefix, &inner.full_bytes()].concat()
            }
            EntryName::Raw(bytes) => bytes.clone(),
        }
    }
}

/// One tar entry.
#[derive(Debug, Clone, Arbitrary)]
pub struct Entry {
    /// Its name.
    pub name: EntryName,
    /// The ustar type flag (`0` regular, `1` hard link, `2` symlink, `5` directory, `L`, `x`, …).
    pub type_flag: u8,
    /// Its content.
    pub content: Vec<u8>,
    /// A link target, for link types.
    pub link: Vec<u8>,
}

impl Entry {
    /// Whether the entry's type flag marks a regular file.
    pub fn is_regular(&self) -> bool {
        self.type_flag == b'0' || self.type_flag == 0
    }
}

/// The type flags worth trying, indexed by a fuzzed byte.
const TYPE_FLAGS: [u8; 9] = [b'0', b'0', b'0', 0, b'1', b'2', b'5', b'L', b'x'];

/// Normalises an arbitrary byte into one of [`TYPE_FLAGS`].
pub fn type_flag(byte: u8) -> u8 {
    TYPE_FLAGS[usize::from(byte) % TYPE_FLAGS.len()]
}

/// The ustar bytes of `entries` (each entry's `type_flag` used as given), ended by two zero
/// blocks.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        let name = entry.name.bytes();
        header.as_old_mut().name[..name.len()].copy_from_slice(&name);
        let link: Vec<u8> = entry.link.iter().copied().take(100).collect();
        header.as_old_mut().linkname[..link.len()].copy_from_slice(&link);
        header.set_size(entry.content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.as_old_mut().linkflag = [entry.type_flag];
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&entry.content);
        let padding = (512 - entry.content.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0, padding));
    }
    out.extend(std::iter::repeat_n(0, 1024));
    out
}

/// `tar_bytes` compressed as a `.plinth` file: the fixed header, deflate, CRC32 and length.
pub fn gzip(tar_bytes: &[u8]) -> Vec<u8> {
    let mut encoder = DeflateEncoder::new(GZIP_HEADER.to_vec(), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(tar_bytes);
    let mut out = encoder.finish().unwrap_or_default();
    let mut crc = flate2::Crc::new();
    crc.update(tar_bytes);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(tar_bytes.len() as u32).to_le_bytes());
    out
}
