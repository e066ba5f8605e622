//! Without pcscd: the PC/SC layer says `NoService`, and the CLI says so clearly while
//! simulated readers keep working. pcsc-lite is pointed at a socket nobody serves
//! (`PCSCLITE_CSOCK_NAME`), so the test holds even where a pcscd is running.

use apdu::transport::pcsc::{Pcsc, ReaderMonitor};
use apdu::TransportError;
use idcardd_e2e::run_idcardd;

const NO_SOCKET: &str = "/nonexistent/idcardd-test/pcscd.comm";

#[test]
fn no_pcscd_is_no_service_everywhere() {
    // This test binary has one test, so changing the environment affects nothing else.
    std::env::set_var("PCSCLITE_CSOCK_NAME", NO_SOCKET);
    assert_eq!(Pcsc::establish().unwrap_err(), TransportError::NoService);
    assert_eq!(
        ReaderMonitor::start().unwrap_err(),
        TransportError::NoService
    );

    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().to_str().unwrap();
    let env = [("PCSCLITE_CSOCK_NAME", NO_SOCKET)];
    let (code, out, err) = run_idcardd(&["readers", "--sim", "2", "--sim-dir", sim_dir], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("PC/SC: no service (pcscd not running)"),
        "{out}"
    );
    assert!(out.contains("sim:0") && out.contains("sim:1"), "{out}");
    let (code, out, _) = run_idcardd(
        &["readers", "--json", "--sim", "1", "--sim-dir", sim_dir],
        &env,
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["pcsc"]["status"], "no_service");
    assert_eq!(v["sim"][0]["name"], "sim:0");

    let (code, _, err) = run_idcardd(&["apdu", "--reader", "Virtual PCD 00 00", "00A4000C"], &env);
    assert_eq!(code, 1);
    assert!(
        err.contains("no PC/SC service") && err.contains("sim:0"),
        "{err}"
    );
    let (code, _, err) = run_idcardd(
        &["card", "info", "--reader", "sim:0", "--sim-dir", sim_dir],
        &env,
    );
    assert_eq!(code, 0, "{err}");
}
