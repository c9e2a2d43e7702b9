//! dkimpy (PyPI), the independent DKIM/ARC implementation the mail-authentication
//! tests check against, signing (verification tests) and verifying (what Sluice signs).
//! scripts/test installs it, with PyNaCl (Ed25519) and dnspython (lookups from the
//! loopback DNS server), in a venv at `target/dkimpy`; `SLUICE_DKIMPY` names another venv.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn venv() -> PathBuf {
    std::env::var_os("SLUICE_DKIMPY")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dkimpy"))
}

fn python() -> PathBuf {
    let python = venv().join("bin/python");
    assert!(python.exists(), "dkimpy is not installed at {} (scripts/test installs it)", python.display());
    python
}

/// A signing key: the PEM file and the DNS TXT record publishing it.
pub struct Key {
    pub pem: PathBuf,
    pub record: String,
}

/// An RSA-2048 key in `dir`, made by openssl.
pub fn rsa_key(dir: &Path, name: &str) -> Key {
    let pem = dir.join(format!("{name}.pem"));
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let path = pem.to_str().expect("path");
    run(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path]);
    let public = String::from_utf8(run(&["pkey", "-in", path, "-pubout"])).expect("PEM");
    let base64: String = public.lines().filter(|l| !l.starts_with("-----")).collect();
    Key { pem, record: format!("v=DKIM1; k=rsa; p={base64}") }
}

fn sign(args: &[&str], message: &[u8]) -> Vec<u8> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/support/dkimpy.py");
    let mut command = Command::new(python());
    command.arg(script).args(args);
    run(command, message, &format!("{args:?}"))
}

/// Runs dkimpy with `message` on its standard input; its standard output.
fn run(mut command: Command, message: &[u8], what: &str) -> Vec<u8> {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start dkimpy");
    child.stdin.take().expect("stdin").write_all(message).expect("write message");
    let out = child.wait_with_output().expect("dkimpy");
    assert!(out.status.success(), "dkimpy {what}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `message` with a DKIM-Signature by `domain` (`l=` when `length`).
pub fn dkim_sign(key: &Key, domain: &str, selector: &str, message: &[u8], length: bool) -> Vec<u8> {
    let pem = key.pem.to_str().expect("path");
    let mut args = vec!["dkim", pem, domain, selector];
    if length {
        args.push("--length");
    }
    sign(&args, message)
}

/// `message` (which carries an Authentication-Results by `srv_id`) with an ARC set
/// sealed by `domain`.
pub fn arc_sign(key: &Key, domain: &str, selector: &str, srv_id: &str, message: &[u8]) -> Vec<u8> {
    sign(&["arc", key.pem.to_str().expect("path"), domain, selector, srv_id], message)
}

/// A `dnsfunc` for dkimpy asking the loopback DNS server at argv[1]:argv[2].
const RESOLVER: &str = r#"
import sys, dns.resolver
_r = dns.resolver.Resolver(configure=False)
_r.nameservers = [sys.argv[1]]
_r.port = int(sys.argv[2])
_r.timeout = _r.lifetime = 5
def dnsfunc(name, timeout=5):
    try:
        answer = _r.resolve(name.decode().rstrip('.'), 'TXT')
    except Exception:
        return b''
    for record in answer:
        return b''.join(record.strings)
    return b''
"#;

/// dkimpy's verdict on every DKIM-Signature of `message`, keys looked up from the
/// loopback DNS server at `dns`: one `pass DOMAIN` or `fail DOMAIN` line each.
pub fn verify(message: &[u8], dns: std::net::SocketAddr) -> Vec<String> {
    let script = format!(
        "{RESOLVER}
import dkim
message = sys.stdin.buffer.read()
d = dkim.DKIM(message)
count = len([h for h in d.headers if h[0].lower() == b'dkim-signature'])
for i in range(count):
    try:
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
    except dkim.ValidationError:
        ok = False
    print(('pass ' if ok else 'fail ') + (d.domain or b'').decode())
"
    );
    let mut command = Command::new(python());
    command.arg("-c").arg(script).args([dns.ip().to_string(), dns.port().to_string()]);
    String::from_utf8_lossy(&run(command, message, "verify")).lines().map(str::to_string).collect()
}
