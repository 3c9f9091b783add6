//! Certificates for TLS tests: a test CA (rcgen) and a leaf it signed.

/// A leaf certificate for some names, signed by a CA made for the test.
pub struct TestCertificate {
    /// The CA's certificate (PEM): what a client must trust.
    pub ca_pem: String,
    pub cert: rcgen::Certificate,
    pub key: rcgen::KeyPair,
}

impl TestCertificate {
    /// A CA named `ca_name` and a leaf for `names` (the first is its common name).
    pub fn new(ca_name: &str, names: &[&str]) -> TestCertificate {
        use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL (curl) takes a leaf whose issuer equals its
        // subject for self-signed.
        ca_params.distinguished_name = DistinguishedName::new();
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        let cert = params.signed_by(&key, &issuer).unwrap();
        TestCertificate {
            ca_pem: ca.pem(),
            cert,
            key,
        }
    }
}
