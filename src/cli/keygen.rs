//! `craton keygen --out DIR`: a new Ed25519 key pair for signing builds:
//! DIR/craton.key.pem (PKCS#8, mode 600) and DIR/craton.pub.pem (SPKI).

use std::path::PathBuf;

use anyhow::Result;

use crate::sign;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder for the two files (made if missing); existing key files
    /// are never replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    let (private, public) = sign::keygen(&args.out)?;
    let id = sign::PublicKey::read(&public)?.id()?;
    println!("private key: {} (keep it secret)", private.display());
    println!("public key:  {}", public.display());
    println!("key id:      {id}");
    Ok(())
}
