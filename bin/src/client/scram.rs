//! Users' SCRAM credentials: AlterUserScramCredentials (the salted password computed
//! here, as KIP-554 wants: the password never leaves the client) and
//! DescribeUserScramCredentials, as `odradek configs --entity-type users` uses them.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use odradek_replication::scram::ScramMechanism;

use super::{Client, ClientError, ClientResult};

/// Kafka's `RESOURCE_NOT_FOUND`: a user without credentials.
const RESOURCE_NOT_FOUND: i16 = 91;

/// Random bytes of a salt made here.
const SALT_BYTES: usize = 32;

/// One credential to set: the mechanism, the password and the iterations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramPassword {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The password (salted and hashed here before it is sent).
    pub password: String,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// A user's credentials as DescribeUserScramCredentials lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCredentials {
    /// The user.
    pub user: String,
    /// Each mechanism with its iterations.
    pub credentials: Vec<(ScramMechanism, i32)>,
}

impl Client {
    /// Sets `user`'s credentials for `set` and removes those for `delete`.
    pub async fn alter_user_scram(
        &self,
        user: &str,
        set: &[ScramPassword],
        delete: &[ScramMechanism],
    ) -> ClientResult<()> {
        let name = || StrBytes::from_string(user.to_string());
        let random = ring::rand::SystemRandom::new();
        let mut upsertions = Vec::new();
        for wanted in set {
            let mut salt = vec![0u8; SALT_BYTES];
            ring::rand::SecureRandom::fill(&random, &mut salt)
                .map_err(|_| ClientError::Other("the OS random source failed".to_string()))?;
            let rounds = u32::try_from(wanted.iterations.max(1)).unwrap_or(1);
            let salted =
                wanted
                    .mechanism
                    .salted_password(wanted.password.as_bytes(), &salt, rounds);
            upsertions.push(
                ScramCredentialUpsertion::default()
                    .with_name(name())
                    .with_mechanism(wanted.mechanism.wire_type())
                    .with_iterations(wanted.iterations)
                    .with_salt(salt.into())
                    .with_salted_password(salted.into()),
            );
        }
        let deletions = delete
            .iter()
            .map(|mechanism| {
                ScramCredentialDeletion::default()
                    .with_name(name())
                    .with_mechanism(mechanism.wire_type())
            })
            .collect();
        let request = AlterUserScramCredentialsRequest::default()
            .with_upsertions(upsertions)
            .with_deletions(deletions);
        let response = self.controller().await?.request(&request).await?;
        for result in &response.results {
            if result.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("alter SCRAM credentials of user {}", result.user.as_str()),
                    result.error_code,
                    result.error_message.as_deref(),
                ));
            }
        }
        Ok(())
    }

    /// The SCRAM credentials of `users` (every user's when `None`); a named user
    /// without any is left out.
    pub async fn describe_user_scram(
        &self,
        users: Option<&[String]>,
    ) -> ClientResult<Vec<UserCredentials>> {
        let names = users.map(|users| {
            users
                .iter()
                .map(|user| UserName::default().with_name(StrBytes::from_string(user.clone())))
                .collect()
        });
        let request = DescribeUserScramCredentialsRequest::default().with_users(names);
        let response = self.controller().await?.request(&request).await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                "describe SCRAM credentials",
                response.error_code,
                response.error_message.as_deref(),
            ));
        }
        let mut described = Vec::new();
        for result in &response.results {
            match result.error_code {
                0 => {}
                RESOURCE_NOT_FOUND => continue,
                code => {
                    return Err(ClientError::kafka(
                        format!("describe SCRAM credentials of {}", result.user.as_str()),
                        code,
                        result.error_message.as_deref(),
                    ));
                }
            }
            let credentials = result
                .credential_infos
                .iter()
                .filter_map(|info| {
                    Some((
                        ScramMechanism::from_wire_type(info.mechanism)?,
                        info.iterations,
                    ))
                })
                .collect();
            described.push(UserCredentials {
                user: result.user.to_string(),
                credentials,
            });
        }
        Ok(described)
    }
}
