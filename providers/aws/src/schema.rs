//! What the `aws` block accepts, what each kind outputs, and the naming rules AWS enforces, so lint
//! rejects a bad bucket name or RDS identifier before any request is made.
//!
//! Outputs are what other declarations reference as `.resources.<id>.outputs.<name>`; a Ready row
//! carries every one declared here (s3.rs and rds.rs fill them). None is sensitive: the RDS master
//! password is never an output.

use orkestra_provider::schema::OutputSchema as O;
use orkestra_provider::{FieldSchema as F, FieldType as T, KindSchema, ProviderSchema, Validator};

/// Block key in a Katalog.
pub const NAME: &str = "aws";

const DELETION_POLICIES: &[&str] = &["Delete", "Orphan"];
const MANAGEMENT_POLICIES: &[&str] = &["Manage", "Observe"];

/// The fields every kind accepts: tags, the policies, adoption, credentials.
pub(crate) fn common() -> Vec<F> {
    vec![
        F::new("tags", T::StringMap),
        F::new("deletionPolicy", T::String).validate(Validator::OneOf(DELETION_POLICIES)),
        F::new("managementPolicy", T::String).validate(Validator::OneOf(MANAGEMENT_POLICIES)),
        F::new("adopt", T::Boolean),
        F::new("credentials", T::Object).children(vec![F::new("secretName", T::String).required()]),
    ]
}

/// The schema of the `aws` provider.
pub fn schema() -> ProviderSchema {
    let mut s3 = vec![
        F::new("bucket", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(bucket_name)),
        F::new("region", T::String)
            .immutable()
            .validate(Validator::Rule(region)),
        F::new("versioning", T::Boolean),
        F::new("encryption", T::String).validate(Validator::OneOf(&[
            "AES256",
            "aws:kms",
            "aws:kms:dsse",
        ])),
        F::new("kmsKeyId", T::String),
        F::new("publicAccessBlock", T::Boolean),
        F::new("forceDestroy", T::Boolean),
    ];
    s3.extend(common());
    let mut rds = vec![
        F::new("identifier", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(rds_identifier)),
        F::new("region", T::String)
            .immutable()
            .validate(Validator::Rule(region)),
        F::new("instanceClass", T::String)
            .required()
            .validate(Validator::Rule(instance_class)),
        F::new("engine", T::String)
            .required()
            .immutable()
            .validate(Validator::OneOf(&[
                "postgres",
                "mysql",
                "mariadb",
                "aurora-postgresql",
                "aurora-mysql",
                "oracle-ee",
                "oracle-se2",
                "sqlserver-ee",
                "sqlserver-se",
                "sqlserver-ex",
                "sqlserver-web",
            ])),
        F::new("engineVersion", T::String),
        F::new("allocatedStorage", T::Integer).validate(Validator::Range(20, 65536)),
        F::new("multiAZ", T::Boolean),
        F::new("masterUsername", T::String)
            .immutable()
            .validate(Validator::Rule(master_username)),
        F::new("masterPasswordSecret", T::Object)
            .sensitive()
            .children(vec![
                F::new("name", T::String).required(),
                F::new("key", T::String),
            ]),
        F::new("dbName", T::String),
        F::new("deletionProtection", T::Boolean),
        F::new("skipFinalSnapshot", T::Boolean),
        F::new("applyImmediately", T::Boolean),
    ];
    rds.extend(common());
    let mut kinds = vec![
        KindSchema {
            name: "s3",
            name_field: "bucket",
            fields: s3,
            outputs: vec![
                O::new("bucket", T::String, "the bucket's name"),
                O::new(
                    "arn",
                    T::String,
                    "the bucket's ARN (arn:aws:s3:::BUCKET, or its partition's)",
                ),
                O::new("region", T::String, "the region the bucket lives in"),
                O::new(
                    "domainName",
                    T::String,
                    "the bucket's regional domain name (BUCKET.s3.REGION.amazonaws.com)",
                ),
            ],
        },
        KindSchema {
            name: "rds",
            name_field: "identifier",
            fields: rds,
            outputs: vec![
                O::new("endpoint", T::String, "the instance's DNS address"),
                O::new("port", T::Integer, "the port the instance listens on"),
                O::new("arn", T::String, "the instance's ARN"),
                O::new(
                    "status",
                    T::String,
                    "the instance's status (available, ...)",
                ),
                O::new(
                    "engineVersion",
                    T::String,
                    "the engine version running (16.4 for a declared 16)",
                ),
            ],
        },
    ];
    kinds.extend(crate::sqs::kinds());
    kinds.extend(crate::iam::kinds());
    kinds.extend(crate::route53::kinds());
    ProviderSchema { name: NAME, kinds }
}

/// S3's general purpose bucket naming rules.
pub fn bucket_name(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("bucket name {s:?} {why}"));
    if s.len() < 3 || s.len() > 63 {
        return bad("must be 3 to 63 characters long");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("may contain only lowercase letters, digits, dots and hyphens");
    }
    let (first, last) = (s.as_bytes()[0], s.as_bytes()[s.len() - 1]);
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("must begin and end with a letter or digit");
    }
    if s.contains("..") {
        return bad("must not contain two adjacent dots");
    }
    if s.split('.').count() == 4 && s.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return bad("must not be formatted as an IP address");
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if s.starts_with(p) {
            return bad(&format!("must not start with {p:?}"));
        }
    }
    for p in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if s.ends_with(p) {
            return bad(&format!("must not end with {p:?}"));
        }
    }
    Ok(())
}

/// RDS DB instance identifier rules.
pub fn rds_identifier(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("RDS identifier {s:?} {why}"));
    if s.is_empty() || s.len() > 63 {
        return bad("must be 1 to 63 characters long");
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return bad("may contain only letters, digits and hyphens");
    }
    if !s.as_bytes()[0].is_ascii_alphabetic() {
        return bad("must begin with a letter");
    }
    if s.ends_with('-') || s.contains("--") {
        return bad("must not end with a hyphen or contain two consecutive hyphens");
    }
    Ok(())
}

/// An AWS region name (`eu-west-1`).
pub(crate) fn region(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!("{s:?} is not an AWS region name (like eu-west-1)"))
    }
}

fn instance_class(s: &str) -> Result<(), String> {
    if s.starts_with("db.") && s.split('.').count() == 3 {
        Ok(())
    } else {
        Err(format!("instance class {s:?} must look like db.t3.micro"))
    }
}

fn master_username(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > 63
        || !s.as_bytes()[0].is_ascii_alphabetic()
        || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Err(format!("master username {s:?} must start with a letter and contain only letters, digits and underscores (1 to 63)"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["my-bucket", "a.b.c", "abc", "shop-prod-assets", "0abc"] {
            assert!(bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "a_b",
        ] {
            assert!(bucket_name(bad).is_err(), "{bad}");
        }
        assert!(bucket_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn rds_identifiers() {
        assert!(rds_identifier("shop-db-1").is_ok());
        for bad in ["1db", "db-", "db--x", "db_x", ""] {
            assert!(rds_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outputs_are_declared_and_none_is_sensitive() {
        let s = schema();
        let names = |kind: &str| -> Vec<&str> {
            s.kind(kind)
                .unwrap()
                .outputs
                .iter()
                .map(|o| o.name)
                .collect()
        };
        assert_eq!(names("s3"), ["bucket", "arn", "region", "domainName"]);
        assert_eq!(
            names("rds"),
            ["endpoint", "port", "arn", "status", "engineVersion"]
        );
        assert_eq!(
            s.kind("rds").unwrap().output("port").map(|o| o.ty),
            Some(T::Integer)
        );
        for k in &s.kinds {
            assert!(k.output("password").is_none());
            assert!(k.outputs.iter().all(|o| !o.sensitive), "{k:?}");
        }
    }

    #[test]
    fn regions() {
        assert!(region("eu-west-1").is_ok());
        assert!(region("us-gov-west-1").is_ok());
        assert!(region("europe").is_err());
    }
}
