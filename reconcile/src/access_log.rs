//! S3 server access logs: the line parser and the log object key layouts.
