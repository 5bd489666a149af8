//! Table tests: data in, data out.

mod errors;
mod host;
mod load;
mod parse;
mod resolve;
mod roundtrip;
mod units;
