//! CloudTrail log files (S3 data events) and their digest files.
