//! Provisioning of the upstream AWS side (being written).

/// Applies provisioning specs with the AWS SDK.
#[derive(Debug)]
pub struct Provisioner {
    pub aws_endpoint: Option<String>,
    pub region: String,
    pub specs: sled::Tree,
}

impl Provisioner {
    /// AWS clients come from the standard chain; `aws_endpoint` points all of
    /// them at an emulator (moto) for dev and tests.
    pub async fn new(aws_endpoint: Option<String>, region: String, specs: sled::Tree) -> Provisioner {
        Provisioner { aws_endpoint, region, specs }
    }
}
