//! Idempotent modules (gather → diff → apply). Filled by the engine issue.
