//! What the gateway keeps on disk between runs, beside the record of objects
//! (`objects::store`): today, each client key's spend.

pub mod spend;
