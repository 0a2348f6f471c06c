//! Certificates for a TLS lab: a throwaway CA and one certificate for every lab node
//! (valid for 127.0.0.1 and localhost), which clients present too. For trying TLS
//! locally and for tests; never for real clusters.

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a lab's certificate files are (saved in `lab.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabCerts {
    /// The CA certificate (PEM): `--cacert`, and the nodes' `tls-ca-cert-file`.
    pub ca: PathBuf,
    /// The node (and client) certificate (PEM): `--cert`, `tls-cert-file`.
    pub cert: PathBuf,
    /// Its private key (PEM): `--key`, `tls-key-file`.
    pub key: PathBuf,
}

impl LabCerts {
    /// The files in `dir` (whether written yet or not).
    pub fn in_dir(dir: &Path) -> LabCerts {
        LabCerts {
            ca: dir.join("ca.crt"),
            cert: dir.join("node.crt"),
            key: dir.join("node.key"),
        }
    }

    /// Generates a CA and a node certificate signed by it into `dir`.
    pub fn generate(dir: &Path) -> Result<LabCerts> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "redis-trib lab CA");
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::from_params(&ca, &ca_key);
        let node_key = KeyPair::generate()?;
        let mut node =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
        node.distinguished_name
            .push(DnType::CommonName, "redis-trib lab node");
        let node_cert = node.signed_by(&node_key, &issuer)?;
        let files = LabCerts::in_dir(dir);
        let write = |p: &Path, text: String| {
            std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display()))
        };
        write(&files.ca, ca_cert.pem())?;
        write(&files.cert, node_cert.pem())?;
        write(&files.key, node_key.serialize_pem())?;
        Ok(files)
    }

    /// The redis-trib (and redis-cli) options that reach the lab's nodes.
    pub fn client_flags(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.ca.display().to_string(),
            "--cert".into(),
            self.cert.display().to_string(),
            "--key".into(),
            self.key.display().to_string(),
        ]
    }
}
