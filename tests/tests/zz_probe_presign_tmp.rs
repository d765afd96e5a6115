use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};

#[test]
fn probe() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let k = proxy.key();
    let out = python(&std::fs::read_to_string("/tmp/probe/p.py").unwrap(), &[("ENDPOINT", &proxy.endpoint()), ("AK", &k.access_key_id), ("SK", &k.secret_access_key)]);
    println!("OUT {}", serde_json::to_string_pretty(&out).unwrap());
    println!("LOG {}", proxy.log());
}
