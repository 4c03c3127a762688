//! Referenced Secrets must be readable by the requester (SPEC A24), exist in the resource's
//! namespace and hold a non-empty value under the referenced key (SPEC A15). Values are read only
//! to check that; they are never logged, copied or returned.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    authentication::v1::UserInfo,
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::Secret,
};
use kube::{Api, Client, api::PostParams};

use super::{budget::Budget, error::AdmissionError};
use crate::restore_request::{CredentialRef, FieldError};

/// The Secrets a request references, each with the fields that point at it.
fn referenced(credentials: &[CredentialRef]) -> BTreeMap<&str, Vec<String>> {
    let mut secrets: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for credential in credentials {
        secrets
            .entry(credential.secret.as_str())
            .or_default()
            .push(credential.path.clone());
    }
    secrets
}

/// The question put to the API server: may this user `get` this Secret?
pub fn access_review(user: &UserInfo, namespace: &str, secret: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups.clone(),
            uid: user.uid.clone(),
            extra: user.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some("get".into()),
                resource: Some("secrets".into()),
                name: Some(secret.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The denial for one Secret the requester may not read: its name and the missing permission,
/// never its keys.
pub fn forbidden_reference(
    user: &UserInfo,
    namespace: &str,
    secret: &str,
    paths: &[String],
) -> FieldError {
    let who = user.username.as_deref().unwrap_or("(anonymous)");
    FieldError::new(
        paths.join(", "),
        format!(
            "user {who:?} may not get Secret {secret:?} in namespace {namespace:?}; grant that user get on secrets/{secret} in {namespace:?} (a Role and RoleBinding), or reference a Secret the user can read"
        ),
    )
}

/// Asks, before any Secret is read, whether the requester may read each referenced one (SPEC
/// A24): the webhook must not read on a user's behalf what the user could not read.
pub async fn check_requester_access(
    client: &Client,
    budget: &Budget,
    namespace: &str,
    user: &UserInfo,
    credentials: &[CredentialRef],
) -> Result<Vec<FieldError>, AdmissionError> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut denied = Vec::new();
    for (secret, paths) in referenced(credentials) {
        let answer = budget
            .call(
                &format!("check whether the requester may read Secret {secret:?}"),
                api.create(
                    &PostParams::default(),
                    &access_review(user, namespace, secret),
                ),
            )
            .await?;
        if !answer.status.is_some_and(|s| s.allowed) {
            denied.push(forbidden_reference(user, namespace, secret, &paths));
        }
    }
    Ok(denied)
}

/// Pure check of one reference against the Secret as read (`None`: it does not exist).
pub fn check_reference(
    namespace: &str,
    credential: &CredentialRef,
    secret: Option<&Secret>,
) -> Result<(), FieldError> {
    let path = credential.path.clone();
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
    budget: &Budget,
    namespace: &str,
    credentials: &[CredentialRef],
) -> Result<Vec<FieldError>, AdmissionError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut secrets: BTreeMap<&str, Option<Secret>> = BTreeMap::new();
    for secret in referenced(credentials).into_keys() {
        let read = budget
            .call(
                &format!("read Secret {secret:?} in namespace {namespace:?}"),
                api.get_opt(secret),
            )
            .await?;
        secrets.insert(secret, read);
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
        let field = StorageProvider::Aws.credential_fields()[2];
        CredentialRef {
            setting: field.setting,
            path: format!("{}.{}", crate::restore_request::SPEC_PATH, field.crd_field),
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
    fn a_forbidden_secret_is_named_with_the_missing_permission_and_nothing_else() {
        let user = UserInfo {
            username: Some("alice".into()),
            groups: Some(vec!["team-a".into()]),
            uid: Some("u-1".into()),
            extra: Some([("scopes".to_string(), vec!["x".to_string()])].into()),
        };
        let review = access_review(&user, "ns", "prod-keys");
        let spec = serde_json::to_value(&review.spec).unwrap();
        assert_eq!(
            spec,
            serde_json::json!({"user": "alice", "groups": ["team-a"], "uid": "u-1",
                "extra": {"scopes": ["x"]},
                "resourceAttributes": {"namespace": "ns", "verb": "get", "resource": "secrets",
                    "name": "prod-keys"}})
        );
        let fields = vec![
            format!("{}.accessKeyId", crate::restore_request::SPEC_PATH),
            format!("{}.secretAccessKey", crate::restore_request::SPEC_PATH),
        ];
        assert_eq!(
            forbidden_reference(&user, "ns", "prod-keys", &fields).to_string(),
            r#"spec.cluster.restoreSnapshot.accessKeyId, spec.cluster.restoreSnapshot.secretAccessKey: user "alice" may not get Secret "prod-keys" in namespace "ns"; grant that user get on secrets/prod-keys in "ns" (a Role and RoleBinding), or reference a Secret the user can read"#
        );
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
