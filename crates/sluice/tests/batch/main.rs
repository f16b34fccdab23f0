//! Integration tests of `sluice convert` and `sluice submit`: the real binary on a temp copy of some samples,
//! with bad files, hostile names and symbolic links mixed in; `submit` against a real server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod convert;
mod submit;
