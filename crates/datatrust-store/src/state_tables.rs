//! The commit path's tables on sled (`datatrust_core::commit::StateTables`): each table is a
//! sled tree of the same database as the log, so the sequencer commits a decision's writes
//! in the same transaction as its log entries.

use datatrust_core::commit::{StateTables, TableRead, TableWrite, Write, version_of};
use datatrust_core::governance::Consent;
use datatrust_core::store::{Invitation, RecordKind, StoreError};
use datatrust_core::{CollectorAuthorization, Principal, PublicKey};

use crate::SledStore;
use crate::sled_store::{
    COLLECTORS_BY_MEMBER, INVITATIONS, MEMBERS_BY_COLLECTOR, PRINCIPALS, PRINCIPALS_BY_ROLE,
    decode, encode, role_byte, store_error,
};

/// `RecordKind::Consent`'s tree (`records_<kind name>`).
const CONSENTS: &str = "records_consents";

fn consent_key(member: &PublicKey, purpose: &str) -> Vec<u8> {
    [member.as_bytes().as_slice(), purpose.as_bytes()].concat()
}

fn pair_key(first: &PublicKey, second: &PublicKey) -> Vec<u8> {
    [first.as_bytes().as_slice(), second.as_bytes()].concat()
}

impl SledStore {
    fn versioned(
        &self,
        table: &'static str,
        key: Vec<u8>,
    ) -> Result<(Option<Vec<u8>>, TableRead), StoreError> {
        let stored = self.table_get(table, &key)?;
        let read = TableRead {
            table,
            version: version_of(stored.as_deref()),
            key,
        };
        Ok((stored, read))
    }
}

impl StateTables for SledStore {
    fn read_principal(
        &self,
        key: &PublicKey,
    ) -> Result<(Option<Principal>, TableRead), StoreError> {
        let (stored, read) = self.versioned(PRINCIPALS, key.as_bytes().to_vec())?;
        let principal = stored
            .map(|bytes| self.decode_principal(key.as_bytes(), &bytes))
            .transpose()?;
        Ok((principal, read))
    }

    fn read_invitation(
        &self,
        code_hash: &[u8; 32],
    ) -> Result<(Option<Invitation>, TableRead), StoreError> {
        let (stored, read) = self.versioned(INVITATIONS, code_hash.to_vec())?;
        Ok((stored.map(|bytes| decode(&bytes)).transpose()?, read))
    }

    fn read_consent(
        &self,
        member: &PublicKey,
        purpose: &str,
    ) -> Result<(Option<Consent>, TableRead), StoreError> {
        debug_assert_eq!(CONSENTS, RecordKind::Consent.table());
        let (stored, read) = self.versioned(CONSENTS, consent_key(member, purpose))?;
        Ok((stored.map(|bytes| decode(&bytes)).transpose()?, read))
    }

    fn read_collector_authorization(
        &self,
        member: &PublicKey,
        collector: &PublicKey,
    ) -> Result<(Option<CollectorAuthorization>, TableRead), StoreError> {
        let (stored, read) = self.versioned(COLLECTORS_BY_MEMBER, pair_key(member, collector))?;
        Ok((stored.map(|bytes| decode(&bytes)).transpose()?, read))
    }

    fn table_get(&self, table: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .database()
            .open_tree(table)
            .map_err(store_error)?
            .get(key)
            .map_err(store_error)?
            .map(|value| value.to_vec()))
    }

    fn read_record(
        &self,
        kind: RecordKind,
        key: &[u8],
    ) -> Result<(Option<Vec<u8>>, TableRead), StoreError> {
        let (stored, read) = self.versioned(kind.table(), key.to_vec())?;
        let value = stored
            .map(|bytes| self.open_record(kind, key, &bytes))
            .transpose()?;
        Ok((value, read))
    }

    fn encode(&self, write: &Write, first_index: u64) -> Result<Vec<TableWrite>, StoreError> {
        if let Some((kind, key, value)) = write.record_at(first_index)? {
            // Ballots are sealed under the data key; other records are stored as they are.
            let value = value
                .map(|value| self.seal_record(kind, &key, value))
                .transpose()?;
            return Ok(vec![TableWrite {
                table: kind.table(),
                key,
                value,
            }]);
        }
        Ok(match write {
            Write::Principal(principal) => {
                let key = principal.public_key.as_bytes();
                vec![
                    TableWrite {
                        table: PRINCIPALS,
                        key: key.to_vec(),
                        value: Some(self.encode_principal(principal)?),
                    },
                    TableWrite {
                        table: PRINCIPALS_BY_ROLE,
                        key: [&[role_byte(principal.role)][..], key].concat(),
                        value: Some(Vec::new()),
                    },
                ]
            }
            Write::Invitation(invitation) => vec![TableWrite {
                table: INVITATIONS,
                key: invitation.code_hash.to_vec(),
                value: Some(encode(invitation)?),
            }],
            Write::Consent { member, consent } => vec![TableWrite {
                table: CONSENTS,
                key: consent_key(member, &consent.purpose),
                value: Some(encode(consent)?),
            }],
            Write::CollectorAuthorized(authorization) => {
                let value = encode(authorization)?;
                vec![
                    TableWrite {
                        table: COLLECTORS_BY_MEMBER,
                        key: pair_key(&authorization.member, &authorization.collector),
                        value: Some(value.clone()),
                    },
                    TableWrite {
                        table: MEMBERS_BY_COLLECTOR,
                        key: pair_key(&authorization.collector, &authorization.member),
                        value: Some(value),
                    },
                ]
            }
            Write::CollectorRevoked { member, collector } => vec![
                TableWrite {
                    table: COLLECTORS_BY_MEMBER,
                    key: pair_key(member, collector),
                    value: None,
                },
                TableWrite {
                    table: MEMBERS_BY_COLLECTOR,
                    key: pair_key(collector, member),
                    value: None,
                },
            ],
            Write::Record { .. }
            | Write::RecordWithIndex { .. }
            | Write::LicenseRevoked(_)
            | Write::Payment(_) => Vec::new(), // encoded above, by `record_at`
        })
    }

    fn apply(&self, writes: &[TableWrite]) -> Result<(), StoreError> {
        use sled::Transactional as _;
        self.check_space()?;
        let mut tables: Vec<&'static str> = writes.iter().map(|write| write.table).collect();
        tables.sort_unstable();
        tables.dedup();
        let trees = tables
            .iter()
            .map(|table| self.database().open_tree(table).map_err(store_error))
            .collect::<Result<Vec<_>, _>>()?;
        trees
            .as_slice()
            .transaction(|views| {
                for write in writes {
                    let view = &views[tables.binary_search(&write.table).unwrap_or_default()];
                    match &write.value {
                        Some(value) => view.insert(write.key.as_slice(), value.as_slice())?,
                        None => view.remove(write.key.as_slice())?,
                    };
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|error| StoreError::new(format!("applying writes: {error:?}")))?;
        self.database().flush().map_err(store_error)?;
        Ok(())
    }
}
