//! dkimpy (PyPI `dkimpy`), the independent DKIM/ARC implementation the suite checks
//! Sluice against. `scripts/test` installs it, with PyNaCl (Ed25519) and dnspython,
//! into the virtualenv at [`VENV`]; the checks look keys up from the suite's loopback
//! DNS server, never the public DNS.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The virtualenv, relative to the repository root (the one place it is named).
pub const VENV: &str = "target/pyenv";

/// The virtualenv's Python, or a panic saying how to make it.
pub fn python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(VENV).join("bin/python3");
    assert!(
        python.exists(),
        "{} missing: run scripts/test (or `python3 -m venv {VENV} && {VENV}/bin/pip install dkimpy pynacl dnspython`)",
        python.display()
    );
    python
}

/// Runs a Python snippet with `args`, `input` on stdin; (exit code, stdout, stderr).
pub fn run(script: &str, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().expect("stdin").write_all(input).expect("write message");
    let out = child.wait_with_output().expect("python");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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

/// dkimpy's verdict on every DKIM-Signature of `message`: one `pass`/`fail` line each,
/// with the signing domain (`pass example.com`).
pub fn verify(message: &[u8], dns: SocketAddr) -> Vec<String> {
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
    let (code, stdout, stderr) = run(&script, &[&dns.ip().to_string(), &dns.port().to_string()], message);
    assert_eq!(code, 0, "dkimpy failed: {stderr}");
    stdout.lines().map(str::to_string).collect()
}
