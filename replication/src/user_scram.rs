//! AlterUserScramCredentials and DescribeUserScramCredentials (KIP-554): users' SCRAM
//! credentials in the metadata log.
//!
//! ```text
//!  alter ──► each user: named once? mechanism known? iterations in range? salt and
//!            salted password given? deleting one that exists?
//!               refused ─► its result carries Kafka's error (the others go on)
//!               accepted ─► StoredKey/ServerKey derived from the salted password
//!        ──► one scram-credentials record, appended here if this broker is the
//!            controller, else forwarded to it (forward.rs)
//!        ──► answered once this broker applied it, for what the applied state shows
//!  describe ──► the applied credentials (mechanism and iterations, never keys)
//! ```

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeClientQuotasResponse, DescribeUserScramCredentialsResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use crate::error::ErrorCode;
use crate::metadata::MetadataRecord;
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};
use crate::scram::{
    ITERATIONS_MAX, ITERATIONS_MIN, ScramCredential, ScramDeletion, ScramMechanism, ScramUpsertion,
    UserScramCredentials,
};
use crate::scram_answer::{ScramAnswer, UserOutcome};

impl Node {
    pub(crate) fn handle_alter_user_scram_credentials(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::AlterUserScramCredentials(alter) = &request.body else {
            unreachable!("routed by kind")
        };
        if let Some((error, message)) = self.scram_credentials_refusal(&request, true) {
            io.respond(id, refused_alteration(alter, error, &message));
            return;
        }
        let mut answer = ScramAnswer::new(check_alterations(alter, &self.cluster.scram));
        let (upsertions, deletions) = answer.changes();
        if upsertions.is_empty() && deletions.is_empty() {
            io.respond(id, answer.into_response());
            return;
        }
        let record = MetadataRecord::ScramCredentials {
            upsertions,
            deletions,
        };
        match self.append_or_forward(io, None, record) {
            Ok(written) => self.wait_for_creation(id, written, MetadataWait::Scram(answer)),
            Err(error) => {
                answer.fail_written(error.error_code(), &error.to_string());
                io.respond(id, answer.into_response());
            }
        }
    }

    pub(crate) fn handle_describe_user_scram_credentials(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DescribeUserScramCredentials(describe) = &request.body else {
            unreachable!("routed by kind")
        };
        if let Some((error, message)) = self.scram_credentials_refusal(&request, false) {
            let response = DescribeUserScramCredentialsResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message)));
            io.respond(id, ResponseKind::DescribeUserScramCredentials(response));
            return;
        }
        let credentials = &self.cluster.scram;
        let results = match &describe.users {
            None => credentials
                .users()
                .into_iter()
                .map(|user| describe_user(credentials, user, false))
                .collect(),
            Some(users) => {
                let names: Vec<&str> = users.iter().map(|user| user.name.as_str()).collect();
                names
                    .iter()
                    .enumerate()
                    .map(|(index, user)| {
                        let twice =
                            names[..index].contains(user) || names[index + 1..].contains(user);
                        describe_user(credentials, user, twice)
                    })
                    .collect()
            }
        };
        let response = DescribeUserScramCredentialsResponse::default().with_results(results);
        io.respond(id, ResponseKind::DescribeUserScramCredentials(response));
    }
}

/// An AlterUserScramCredentials answer refusing every user the request names.
fn refused_alteration(
    alter: &AlterUserScramCredentialsRequest,
    error: ErrorCode,
    message: &str,
) -> ResponseKind {
    let mut users: Vec<&str> = (alter.deletions.iter().map(|d| d.name.as_str()))
        .chain(alter.upsertions.iter().map(|u| u.name.as_str()))
        .collect();
    users.sort_unstable();
    users.dedup();
    let results = users
        .into_iter()
        .map(|user| {
            AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.to_string()))
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message.to_string())))
        })
        .collect();
    let response = AlterUserScramCredentialsResponse::default().with_results(results);
    ResponseKind::AlterUserScramCredentials(response)
}

impl Node {
    /// DescribeClientQuotas: odradek enforces no client quotas, so there are none to
    /// list (kafka-configs asks before it lists a user's SCRAM credentials).
    pub(crate) fn handle_describe_client_quotas(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        _request: Request,
    ) {
        let response = DescribeClientQuotasResponse::default().with_entries(Some(Vec::new()));
        io.respond(id, ResponseKind::DescribeClientQuotas(response));
    }
}

/// One user's DescribeUserScramCredentials result.
fn describe_user(
    credentials: &UserScramCredentials,
    user: &str,
    named_twice: bool,
) -> DescribeUserScramCredentialsResult {
    let result = DescribeUserScramCredentialsResult::default()
        .with_user(StrBytes::from_string(user.to_string()));
    let refuse = |code: ErrorCode, message: &str| {
        result
            .clone()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message.to_string())))
    };
    if named_twice {
        return refuse(
            ErrorCode::DuplicateResource,
            "Cannot describe SCRAM credentials for the same user twice in a single request",
        );
    }
    let infos: Vec<CredentialInfo> = credentials
        .of_user(user)
        .map(|(mechanism, credential)| {
            CredentialInfo::default()
                .with_mechanism(mechanism.wire_type())
                .with_iterations(credential.iterations)
        })
        .collect();
    if infos.is_empty() {
        return refuse(
            ErrorCode::ResourceNotFound,
            "Attempt to describe a user credential that does not exist",
        );
    }
    result.clone().with_credential_infos(infos)
}

/// Each user the request names, once, in first-named order, with its checked changes.
/// A user may change several mechanisms in one request (kafka-configs sends
/// `SCRAM-SHA-256=[..],SCRAM-SHA-512=[..]` so); one user and mechanism named twice is
/// DUPLICATE_RESOURCE.
fn check_alterations(
    alter: &AlterUserScramCredentialsRequest,
    current: &UserScramCredentials,
) -> Vec<(String, UserOutcome)> {
    let named: Vec<(&str, i8)> = alter
        .deletions
        .iter()
        .map(|deletion| (deletion.name.as_str(), deletion.mechanism))
        .chain(
            alter
                .upsertions
                .iter()
                .map(|u| (u.name.as_str(), u.mechanism)),
        )
        .collect();
    let mut users: Vec<(String, UserOutcome)> = Vec::new();
    for (user, _) in &named {
        if users.iter().any(|(seen, _)| seen == user) {
            continue;
        }
        let mut mechanisms: Vec<i8> = named
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, m)| *m)
            .collect();
        let count = mechanisms.len();
        mechanisms.sort_unstable();
        mechanisms.dedup();
        let outcome = if mechanisms.len() < count {
            Err((
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else {
            check_user(alter, current, user)
        };
        users.push((user.to_string(), outcome));
    }
    users
}

/// Every change the request asks for `user` (each mechanism named once).
fn check_user(
    alter: &AlterUserScramCredentialsRequest,
    current: &UserScramCredentials,
    user: &str,
) -> UserOutcome {
    if user.is_empty() {
        return Err(unacceptable("Username must not be empty"));
    }
    let mut deletions = Vec::new();
    for deletion in alter.deletions.iter().filter(|d| d.name.as_str() == user) {
        let mechanism = known_mechanism(deletion.mechanism)?;
        if current.get(user, mechanism).is_none() {
            return Err((
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".to_string(),
            ));
        }
        deletions.push(ScramDeletion {
            user: user.to_string(),
            mechanism,
        });
    }
    let mut upsertions = Vec::new();
    for upsertion in alter.upsertions.iter().filter(|u| u.name.as_str() == user) {
        let mechanism = known_mechanism(upsertion.mechanism)?;
        if upsertion.iterations < ITERATIONS_MIN {
            return Err(unacceptable(&format!(
                "Too few iterations (minimum {ITERATIONS_MIN})"
            )));
        }
        if upsertion.iterations > ITERATIONS_MAX {
            return Err(unacceptable(&format!(
                "Too many iterations (maximum {ITERATIONS_MAX})"
            )));
        }
        if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
            return Err(unacceptable("Salt and salted password must not be empty"));
        }
        let credential = ScramCredential::from_salted_password(
            mechanism,
            &upsertion.salt,
            &upsertion.salted_password,
            upsertion.iterations,
        );
        upsertions.push(ScramUpsertion {
            user: user.to_string(),
            mechanism,
            credential,
        });
    }
    Ok((upsertions, deletions))
}

fn unacceptable(message: &str) -> (ErrorCode, String) {
    (ErrorCode::UnacceptableCredential, message.to_string())
}

fn known_mechanism(wire_type: i8) -> Result<ScramMechanism, (ErrorCode, String)> {
    ScramMechanism::from_wire_type(wire_type).ok_or_else(|| {
        (
            ErrorCode::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramCredentialUpsertion {
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(b"salt".to_vec().into())
            .with_salted_password(b"salted".to_vec().into())
    }

    fn delete(user: &str, mechanism: i8) -> ScramCredentialDeletion {
        ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism)
    }

    fn codes(outcomes: &[(String, UserOutcome)]) -> Vec<(&str, i16)> {
        outcomes
            .iter()
            .map(|(user, outcome)| {
                let code = match outcome {
                    Ok(_) => 0,
                    Err((code, _)) => code.code(),
                };
                (user.as_str(), code)
            })
            .collect()
    }

    #[test]
    fn alterations_get_kafkas_error_codes() {
        let mut current = UserScramCredentials::default();
        let credential =
            ScramCredential::from_salted_password(ScramMechanism::Sha256, b"s", b"p", 4096);
        let existing = ScramUpsertion {
            user: "dave".to_string(),
            mechanism: ScramMechanism::Sha256,
            credential,
        };
        current.apply(&[existing], &[]);
        let alter = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![
                delete("carol", 1),
                delete("dave", 1),
                delete("erin", 3),
            ])
            .with_upsertions(vec![
                upsert("alice", 1, 8192),
                upsert("bob", 2, 4095),
                upsert("frank", 2, 16385),
                upsert("", 1, 4096),
                upsert("gina", 2, 4096),
                upsert("gina", 2, 4096),
                upsert("hal", 1, 4096),
                upsert("hal", 2, 4096),
            ]);
        let outcomes = check_alterations(&alter, &current);
        assert_eq!(
            codes(&outcomes),
            [
                ("carol", 91),
                ("dave", 0),
                ("erin", 33),
                ("alice", 0),
                ("bob", 93),
                ("frank", 93),
                ("", 93),
                ("gina", 92),
                ("hal", 0),
            ]
        );
    }
}
