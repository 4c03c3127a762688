//! Referenced Secrets must exist in the resource's namespace and hold a non-empty value under the
//! referenced key (SPEC A15). Values are read only to check that; they are never logged, copied
//! or returned.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::error::AdmissionError;
use crate::restore_request::{CredentialRef, FieldError};

/// Pure check of one reference against the Secret as read (`None`: it does not exist).
pub fn check_reference(
    namespace: &str,
    credential: &CredentialRef,
    secret: Option<&Secret>,
) -> Result<(), FieldError> {
    let path = credential.path();
    let (name, key) = (&credential.secret, &credential.key);
    let Some(secret) = secret else {
        return Err(FieldError::new(
            path,
            format!(
                "Secret {name:?} does not exist in namespace {namespace:?}; create it there or fix secretKeyRef.name"
            ),
        ));
    };
    let data = secret.data.as_ref();
    let Some(value) = data.and_then(|d| d.get(key)) else {
        let keys: Vec<&str> = data
            .map(|d| d.keys().map(String::as_str).collect())
            .unwrap_or_default();
        return Err(FieldError::new(
            path,
            format!(
                "Secret {name:?} has no key {key:?} (it has: {}); add the key or fix secretKeyRef.key",
                if keys.is_empty() {
                    "no keys".to_string()
                } else {
                    keys.join(", ")
                }
            ),
        ));
    };
    match std::str::from_utf8(&value.0) {
        Err(_) => Err(FieldError::new(
            path,
            format!("key {key:?} of Secret {name:?} is not UTF-8 text; store the value as text"),
        )),
        Ok(text) if text.trim().is_empty() => Err(FieldError::new(
            path,
            format!("key {key:?} of Secret {name:?} is empty; put the value into the Secret"),
        )),
        Ok(_) => Ok(()),
    }
}

/// Reads each referenced Secret once and checks every reference; all problems are returned.
pub async fn check_references(
    client: &Client,
    namespace: &str,
    credentials: &[CredentialRef],
) -> Result<Vec<FieldError>, AdmissionError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets: BTreeMap<&str, Option<Secret>> = BTreeMap::new();
    for credential in credentials {
        if !secrets.contains_key(credential.secret.as_str()) {
            let secret =
                api.get_opt(&credential.secret)
                    .await
                    .map_err(AdmissionError::kubernetes(format!(
                        "read Secret {:?} in namespace {namespace:?}",
                        credential.secret
                    )))?;
            secrets.insert(&credential.secret, secret);
        }
    }
    Ok(credentials
        .iter()
        .filter_map(|c| {
            let secret = secrets.get(c.secret.as_str()).and_then(Option::as_ref);
            check_reference(namespace, c, secret).err()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repository::StorageProvider;
    use k8s_openapi::ByteString;

    fn credential(key: &str) -> CredentialRef {
        CredentialRef {
            field: StorageProvider::Aws.credential_fields()[2],
            secret: "restore".into(),
            key: key.into(),
        }
    }

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        Secret {
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    #[test]
    fn reports_missing_secret_key_and_empty_values() {
        let s = secret(&[
            ("bucket", b"my-bucket"),
            ("blank", b"  "),
            ("binary", &[0xff, 0xfe]),
        ]);
        assert_eq!(
            check_reference("ns", &credential("bucket"), Some(&s)),
            Ok(())
        );
        let cases = [
            (
                None,
                "bucket",
                r#"spec.cluster.restoreSnapshot.bucket: Secret "restore" does not exist in namespace "ns"; create it there or fix secretKeyRef.name"#,
            ),
            (
                Some(&s),
                "bukket",
                r#"spec.cluster.restoreSnapshot.bucket: Secret "restore" has no key "bukket" (it has: binary, blank, bucket); add the key or fix secretKeyRef.key"#,
            ),
            (
                Some(&s),
                "blank",
                r#"spec.cluster.restoreSnapshot.bucket: key "blank" of Secret "restore" is empty; put the value into the Secret"#,
            ),
            (
                Some(&s),
                "binary",
                r#"spec.cluster.restoreSnapshot.bucket: key "binary" of Secret "restore" is not UTF-8 text; store the value as text"#,
            ),
        ];
        for (secret, key, expected) in cases {
            let err = check_reference("ns", &credential(key), secret).unwrap_err();
            assert_eq!(err.to_string(), expected);
            assert!(!err.to_string().contains("my-bucket"));
        }
        let empty = Secret::default();
        assert!(
            check_reference("ns", &credential("bucket"), Some(&empty))
                .unwrap_err()
                .to_string()
                .contains("(it has: no keys)")
        );
    }
}
