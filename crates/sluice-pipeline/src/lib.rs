//! The running stages of sluice: convert and notify, channels, recovery, shutdown
