//! The run's record (SPEC A28): what a run must keep exactly for its whole life but that does
//! not belong in `status.restore` — the admitted request, and a plan too large to show there.
//! Kept as gzip-compressed JSON in ConfigMaps owned by the run, split so that each stays well
//! under the API server's 1 MiB limit, and named after the content's digest so that writing the
//! same value twice (a Pod replaced mid-write) is harmless. Pure: encoding, naming, checking.

use std::{collections::BTreeMap, io::Write};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::plan::StoredRef;

/// Compressed bytes per ConfigMap: under the 1 MiB a ConfigMap may hold, with room for the
/// base64 of `binaryData` in the request body.
pub const CHUNK_BYTES: usize = 700 * 1024;

/// The key of the compressed bytes in each ConfigMap's `binaryData`.
pub const DATA_KEY: &str = "record.json.gz";

/// The admitted request of a run: `spec.cluster.restoreSnapshot` (secret references, never
/// values) and the `restore.cloud.crate.io/` option annotations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmittedRequest {
    pub restore_snapshot: Value,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    #[error("the run's record {names} is incomplete: {detail}")]
    Incomplete { names: String, detail: String },
    #[error(
        "the run's record {names} does not match its digest (expected sha256 {expected}, found {found}); it was changed after it was written"
    )]
    Digest {
        names: String,
        expected: String,
        found: String,
    },
    #[error("the run's record {names} cannot be read: {detail}")]
    Unreadable { names: String, detail: String },
}

/// A value ready to be kept: its compressed chunks and how to find and check them again.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub chunks: Vec<Vec<u8>>,
    pub reference: StoredRef,
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Encodes `value` to be kept under `base` (the run's Job name) as `kind` (`request`, `plan`).
pub fn encode(base: &str, kind: &str, value: &impl Serialize) -> Encoded {
    let json = serde_json::to_vec(value).expect("records are JSON values");
    let sha256 = sha256_hex(&json);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&json).expect("writing to memory");
    let compressed = gz.finish().expect("writing to memory");
    let chunks: Vec<Vec<u8>> = compressed.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect();
    let config_maps = (0..chunks.len())
        .map(|i| format!("{base}-{kind}-{}-{i}", &sha256[..10]))
        .collect();
    Encoded {
        chunks,
        reference: StoredRef {
            config_maps,
            sha256,
            bytes: json.len() as u64,
        },
    }
}

/// Reads a kept value back from its chunks, in the order of `reference.config_maps`, and checks
/// it against the digest it was written with.
pub fn decode<T: DeserializeOwned>(
    reference: &StoredRef,
    chunks: &[Vec<u8>],
) -> Result<T, RecordError> {
    let names = reference.config_maps.join(", ");
    if chunks.len() != reference.config_maps.len() {
        return Err(RecordError::Incomplete {
            names,
            detail: format!(
                "{} of {} parts found",
                chunks.len(),
                reference.config_maps.len()
            ),
        });
    }
    let compressed: Vec<u8> = chunks.concat();
    let mut json = Vec::with_capacity(reference.bytes as usize);
    let mut gz = flate2::write::GzDecoder::new(&mut json);
    gz.write_all(&compressed)
        .and_then(|_| gz.finish().map(|_| ()))
        .map_err(|e| RecordError::Unreadable {
            names: names.clone(),
            detail: e.to_string(),
        })?;
    let found = sha256_hex(&json);
    if found != reference.sha256 {
        return Err(RecordError::Digest {
            names,
            expected: reference.sha256.clone(),
            found,
        });
    }
    serde_json::from_slice(&json).map_err(|e| RecordError::Unreadable {
        names,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan::Plan, sql::TableIdent};

    fn plan(tables: usize, name_len: usize) -> Plan {
        // Names that do not compress: a run of digits from a cheap generator.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut name = || {
            (0..name_len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (b'a' + (seed % 26) as u8) as char
                })
                .collect::<String>()
        };
        Plan {
            keyword: "ALL".into(),
            relations: (0..tables)
                .map(|_| TableIdent::new(name(), name()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_small_value_is_one_config_map_named_after_its_digest() {
        let request = AdmittedRequest {
            restore_snapshot: serde_json::json!({"snapshot": "s1", "type": "all"}),
            options: BTreeMap::new(),
        };
        let encoded = encode("restore-c1-r1", "request", &request);
        assert_eq!(encoded.chunks.len(), 1);
        let name = &encoded.reference.config_maps[0];
        assert!(name.starts_with("restore-c1-r1-request-"), "{name}");
        assert_eq!(name.len(), "restore-c1-r1-request-".len() + 10 + 2);
        let back: AdmittedRequest = decode(&encoded.reference, &encoded.chunks).unwrap();
        assert_eq!(back, request);
        // The same value always gets the same names: writing it again is harmless.
        assert_eq!(
            encode("restore-c1-r1", "request", &request).reference,
            encoded.reference
        );
    }

    #[test]
    fn ten_thousand_long_random_names_are_split_and_read_back() {
        let plan = plan(10_000, 255);
        let encoded = encode("restore-c1-r1", "plan", &plan);
        assert!(encoded.chunks.len() >= 2, "{} chunks", encoded.chunks.len());
        assert!(encoded.chunks.iter().all(|c| c.len() <= CHUNK_BYTES));
        let back: Plan = decode(&encoded.reference, &encoded.chunks).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn a_changed_or_missing_part_is_refused() {
        let plan = plan(10_000, 255);
        let encoded = encode("b", "plan", &plan);
        let missing = decode::<Plan>(&encoded.reference, &encoded.chunks[..1]).unwrap_err();
        assert!(
            matches!(missing, RecordError::Incomplete { .. }),
            "{missing}"
        );
        let mut other = encode("b", "plan", &Plan::default());
        other.reference = encoded.reference.clone();
        other.reference.config_maps.truncate(1);
        let changed = decode::<Plan>(&other.reference, &other.chunks).unwrap_err();
        assert!(matches!(changed, RecordError::Digest { .. }), "{changed}");
    }
}
