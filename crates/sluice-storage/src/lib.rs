//! Object storage for sluice: originals, outputs and job records on a local folder or S3
