//! The answer to an AlterUserScramCredentials request while its scram-credentials
//! record is written (user_scram.rs): per user, accepted or refused, confirmed against
//! the applied state once the record is applied.

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::error::ErrorCode;
use crate::metadata::ClusterState;
use crate::scram::{ScramDeletion, ScramUpsertion};

/// One user's changes of an AlterUserScramCredentials request, or why they are refused.
pub(crate) type UserOutcome =
    Result<(Vec<ScramUpsertion>, Vec<ScramDeletion>), (ErrorCode, String)>;

/// The answer to AlterUserScramCredentials while its record is written: per user, in
/// the order the request first names them, the changes accepted or the refusal.
pub(crate) struct ScramAnswer {
    users: Vec<(String, UserOutcome)>,
}

impl ScramAnswer {
    /// The answer for these users' outcomes, in the request's order.
    pub(crate) fn new(users: Vec<(String, UserOutcome)>) -> ScramAnswer {
        ScramAnswer { users }
    }

    /// Every accepted change, for the record.
    pub(crate) fn changes(&self) -> (Vec<ScramUpsertion>, Vec<ScramDeletion>) {
        let mut upsertions = Vec::new();
        let mut deletions = Vec::new();
        for (_, outcome) in &self.users {
            if let Ok((upserted, deleted)) = outcome {
                upsertions.extend(upserted.iter().cloned());
                deletions.extend(deleted.iter().cloned());
            }
        }
        (upsertions, deletions)
    }

    /// The record was not written, or cut: every accepted user gets `error`.
    pub(crate) fn fail_written(&mut self, error: ErrorCode, message: &str) {
        for (_, outcome) in &mut self.users {
            if outcome.is_ok() {
                *outcome = Err((error, message.to_string()));
            }
        }
    }

    /// Keeps "done" only for users whose changes the applied state shows.
    pub(crate) fn confirm(&mut self, cluster: &ClusterState) {
        let applied = |(upserted, deleted): &(Vec<ScramUpsertion>, Vec<ScramDeletion>)| {
            upserted.iter().all(|upsertion| {
                cluster.scram.get(&upsertion.user, upsertion.mechanism)
                    == Some(&upsertion.credential)
            }) && deleted.iter().all(|deletion| {
                cluster
                    .scram
                    .get(&deletion.user, deletion.mechanism)
                    .is_none()
            })
        };
        for (_, outcome) in &mut self.users {
            if let Ok(changes) = outcome
                && !applied(changes)
            {
                let message = "the change was cut by a controller change; retry";
                *outcome = Err((ErrorCode::NotController, message.to_string()));
            }
        }
    }

    /// The response.
    pub(crate) fn into_response(self) -> ResponseKind {
        let results = self
            .users
            .into_iter()
            .map(|(user, outcome)| {
                let (code, message) = match outcome {
                    Ok(_) => (ErrorCode::None, None),
                    Err((code, message)) => (code, Some(StrBytes::from_string(message))),
                };
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(code.code())
                    .with_error_message(message)
            })
            .collect();
        ResponseKind::AlterUserScramCredentials(
            AlterUserScramCredentialsResponse::default().with_results(results),
        )
    }
}
